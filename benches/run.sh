#!/usr/bin/env bash
# End-to-end benchmark: shadowmcp vs Suricata on a generated mixed capture.
#
#   benches/run.sh [--size 1GiB] [--seed 1] [--dir /tmp/shadowmcp-bench]
#                  [--repeat 5] [--no-flowload] [--no-record] [--no-install]
#
# Builds shadowmcp and the generator (release), generates the capture and
# its labels, installs Suricata 7 from bookworm-backports and GNU time if they
# are missing (Debian 12, as root or with sudo), runs Suricata single-
# threaded and with 2 threads and shadowmcp (with --threads only if
# `shadowmcp scan --help` lists it), in rounds of one run each, and prints
# the median wall time, MB/s, peak RSS and detections per flow against the
# labels. Then the flow-load runs:
# 10 000 concurrent flows (a 2 GiB capture: the budget must cover 10 000
# open connections) and a 1-million-SYN flood, with the connection
# cap at its default and lowered so evictions are counted. The tables are
# appended to docs/performance.md with the date, commit and machine unless
# --no-record. See benches/README.md.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SIZE=1GiB
SEED=1
DIR=/tmp/shadowmcp-bench
FLOWLOAD=1
REPEAT=5
RECORD=1
INSTALL=1
while [ $# -gt 0 ]; do
  case "$1" in
    --size) SIZE=$2; shift 2 ;;
    --seed) SEED=$2; shift 2 ;;
    --dir) DIR=$2; shift 2 ;;
    --repeat) REPEAT=$2; shift 2 ;;
    --no-flowload) FLOWLOAD=0; shift ;;
    --no-record) RECORD=0; shift ;;
    --no-install) INSTALL=0; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
mkdir -p "$DIR"
log() { echo "[run.sh $(date -u +%H:%M:%S)] $*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "run.sh: need root (or sudo) to install packages: $*" >&2; exit 1; fi
}
apt_updated=0
apt_install() { # apt_install [-t suite] pkg...
  if [ "$apt_updated" = 0 ]; then as_root apt-get update -q; apt_updated=1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"
}

if [ "$INSTALL" = 1 ]; then
  [ -x /usr/bin/time ] || { log "installing GNU time"; apt_install time; }
  command -v python3 >/dev/null || { log "installing python3"; apt_install python3; }
  if ! command -v suricata >/dev/null; then
    log "installing Suricata 7 from bookworm-backports"
    if ! grep -rqs '^[^#]*bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
      echo 'deb http://deb.debian.org/debian bookworm-backports main' |
        as_root tee /etc/apt/sources.list.d/shadowmcp-bookworm-backports.list >/dev/null
      apt_updated=0
    fi
    apt_install -t bookworm-backports suricata
  fi
fi
for tool in /usr/bin/time python3 suricata cargo; do
  command -v "$tool" >/dev/null || { echo "run.sh: $tool is missing" >&2; exit 1; }
done

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
log "building (release) in $CARGO_TARGET_DIR"
(cd "$ROOT" && cargo build --release -q -p shadowmcp -p shadowmcp-benches)
BIN=$CARGO_TARGET_DIR/release

PCAP=$DIR/mixed-$SIZE-seed$SEED.pcap
LABELS=$DIR/mixed-$SIZE-seed$SEED.labels.jsonl
# Always regenerated (about 15 s per GiB): a file left by an older
# generator would not match the labels this one means.
log "generating $PCAP"
"$BIN/shadowmcp-trafficgen" --size "$SIZE" --seed "$SEED" --out "$PCAP" --labels "$LABELS" 2> "$DIR/trafficgen.log" ||
  { cat "$DIR/trafficgen.log" >&2; exit 1; }
head -1 "$DIR/trafficgen.log" >&2 2>/dev/null || true

cat > "$DIR/suricata.yaml" <<YAML
%YAML 1.1
---
vars:
  address-groups:
    HOME_NET: "[10.0.0.0/8,192.168.0.0/16,172.16.0.0/12]"
    EXTERNAL_NET: "any"
  port-groups:
    HTTP_PORTS: "80"
default-rule-path: $ROOT/benches/suricata
rule-files:
  - shadowmcp.rules
classification-file: /etc/suricata/classification.config
reference-config-file: /etc/suricata/reference.config
outputs:
  - eve-log:
      enabled: yes
      filetype: regular
      filename: eve.json
      types:
        - alert
stats:
  enabled: no
logging:
  default-log-level: notice
  outputs:
    - console:
        enabled: yes
app-layer:
  protocols:
    http:
      enabled: yes
      libhtp:
        default-config:
          personality: IDS
          request-body-limit: 100kb
          response-body-limit: 100kb
stream:
  memcap: 256mb
  checksum-validation: no
  reassembly:
    memcap: 512mb
    depth: 1mb
unix-command:
  enabled: no
YAML

: > "$DIR/runs.tsv"
# run_once NAME ENGINE THREADS EVE ROUND CMD... : one run of CMD under GNU
# time -v. Every round runs every configuration once, so a slow spell of a
# shared machine hits one-thread and two-thread runs (and both engines)
# alike; the report takes each configuration's median wall time.
run_once() {
  local name=$1 engine=$2 threads=$3 eve=$4 r=$5; shift 5
  local code=0
  log "$name (run $r/$REPEAT): $*"
  rm -f "$eve" # Suricata appends to an existing eve.json
  /usr/bin/time -v -o "$DIR/$name.$r.time" "$@" > "$DIR/$name.stdout" 2> "$DIR/$name.stderr" || code=$?
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$engine" "$threads" "$eve" "$DIR/$name.$r.time" "$code" >> "$DIR/runs.tsv"
}
cat "$PCAP" > /dev/null # same warm page cache for every engine

NPROC=$(nproc)
RATIO=$(python3 -c "print(2 / $NPROC)")
SURICATA="Suricata $(suricata -V | awk '{print $5}')"
HAS_THREADS=0
"$BIN/shadowmcp" scan --help | grep -q -- '--threads' && HAS_THREADS=1
for r in $(seq "$REPEAT"); do
  for n in 1 2; do
    rm -rf "$DIR/suricata-$n"; mkdir -p "$DIR/suricata-$n"
  done
  run_once suricata-1 "$SURICATA" 1 "$DIR/suricata-1/eve.json" "$r" \
    suricata -c "$DIR/suricata.yaml" -r "$PCAP" -l "$DIR/suricata-1" -k none --runmode single
  run_once suricata-2 "$SURICATA" "2 (autofp)" "$DIR/suricata-2/eve.json" "$r" \
    suricata -c "$DIR/suricata.yaml" -r "$PCAP" -l "$DIR/suricata-2" -k none --runmode autofp \
    --set "threading.detect-thread-ratio=$RATIO"
  if [ "$HAS_THREADS" = 1 ]; then
    run_once shadowmcp-1 shadowmcp 1 "$DIR/shadowmcp-1.eve" "$r" \
      "$BIN/shadowmcp" scan --threads 1 -o "$DIR/shadowmcp-1.eve" "$PCAP"
    run_once shadowmcp-2 shadowmcp 2 "$DIR/shadowmcp-2.eve" "$r" \
      "$BIN/shadowmcp" scan --threads 2 -o "$DIR/shadowmcp-2.eve" "$PCAP"
  else
    run_once shadowmcp-1 shadowmcp "1 (no --threads yet)" "$DIR/shadowmcp-1.eve" "$r" \
      "$BIN/shadowmcp" scan -o "$DIR/shadowmcp-1.eve" "$PCAP"
  fi
done

: > "$DIR/flowload.tsv"
if [ "$FLOWLOAD" = 1 ]; then
  # flowrun NAME CAPTURE TOOL CMD...
  flowrun() {
    local name=$1 capture=$2 tool=$3; shift 3
    log "$name: $*"
    /usr/bin/time -v -o "$DIR/$name.time" "$@" > "$DIR/$name.stdout" 2> "$DIR/$name.stderr" || true
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$capture" "$tool" "$DIR/$name.time" "$DIR/$name.stdout" "$DIR/$name.stderr" >> "$DIR/flowload.tsv"
  }
  CONC=$DIR/concurrent10k-seed$SEED.pcap
  FLOOD=$DIR/synflood1m-seed$SEED.pcap
  log "generating $CONC"
  "$BIN/shadowmcp-trafficgen" --size 2GiB --seed "$SEED" --concurrent-flows 10000 \
    --out "$CONC" --labels "$CONC.labels.jsonl" 2> "$DIR/concurrent.log"
  log "generating $FLOOD"
  "$BIN/shadowmcp-trafficgen" --size 64MiB --seed "$SEED" --syn-flood 1000000 \
    --out "$FLOOD" --labels "$FLOOD.labels.jsonl" 2> "$DIR/flood.log"
  # `scan` at its defaults (threads: one per core), then with the
  # connection cap lowered when it has one (--max-flows); shadowmcp-flowload
  # (one thread, capture path only) adds connections opened and exchanges.
  HAS_CAP=0
  "$BIN/shadowmcp" scan --help | grep -q -- '--max-flows' && HAS_CAP=1
  flowrun conc-scan "10k concurrent flows" "shadowmcp scan" "$BIN/shadowmcp" scan -o "$DIR/conc.eve" "$CONC"
  [ "$HAS_CAP" = 1 ] && flowrun conc-scan-cap "10k concurrent flows" "shadowmcp scan --max-flows 5000" \
    "$BIN/shadowmcp" scan --max-flows 5000 -o "$DIR/conc-cap.eve" "$CONC"
  flowrun conc-load "10k concurrent flows" "flowload" "$BIN/shadowmcp-flowload" "$CONC"
  flowrun conc-load-cap "10k concurrent flows" "flowload --max-conns 5000" "$BIN/shadowmcp-flowload" --max-conns 5000 "$CONC"
  flowrun flood-scan "1M SYN flood" "shadowmcp scan" "$BIN/shadowmcp" scan -o "$DIR/flood.eve" "$FLOOD"
  [ "$HAS_CAP" = 1 ] && flowrun flood-scan-cap "1M SYN flood" "shadowmcp scan --max-flows 20000" \
    "$BIN/shadowmcp" scan --max-flows 20000 -o "$DIR/flood-cap.eve" "$FLOOD"
  flowrun flood-load "1M SYN flood" "flowload" "$BIN/shadowmcp-flowload" "$FLOOD"
  flowrun flood-load-cap "1M SYN flood" "flowload --max-conns 20000" "$BIN/shadowmcp-flowload" --max-conns 20000 "$FLOOD"
fi

REPORT=$DIR/report.md
{
  echo "### $(date -u +'%Y-%m-%d %H:%M UTC'), commit $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)$(cd "$ROOT" && git diff --quiet HEAD -- crates benches 2>/dev/null || echo ' (working tree modified)'), --size $SIZE --seed $SEED"
  echo
  echo "Machine: $NPROC CPUs, $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(awk '/MemTotal/ {printf "%.1f GiB RAM", $2/1048576}' /proc/meminfo), $(uname -sr); load average before the runs: $(cut -d' ' -f1-3 /proc/loadavg)."
  echo "Suricata $(suricata -V | awk '{print $5}') (\`--runmode single\` and \`--runmode autofp\` with 2 detect threads, \`-k none\`, checksum validation off, rules \`benches/suricata/shadowmcp.rules\`); shadowmcp \`scan\`, default rules, $(rustc -V 2>/dev/null)."
  echo
  python3 "$ROOT/benches/report.py" "$DIR" "$PCAP" "$LABELS"
  echo
} > "$REPORT"
cat "$REPORT"
if [ "$RECORD" = 1 ]; then
  [ -s "$ROOT/docs/performance.md" ] || printf '# Performance\n\nRuns of `benches/run.sh` (newest last). How to read them: benches/README.md.\n\n' > "$ROOT/docs/performance.md"
  cat "$REPORT" >> "$ROOT/docs/performance.md"
  log "appended to docs/performance.md"
fi

#!/usr/bin/env python3
"""Builds the markdown tables of a benches/run.sh run.

usage: report.py DIR PCAP LABELS

Reads DIR/runs.tsv (name, engine, threads, eve path, time -v file, exit
code), the pcap's size and the labels, and prints the result table, the
targets and their status, then the flow-load table (DIR/flowload.tsv) if
present.
"""
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare import load_labels, detected_flows  # noqa: E402


def time_v(path):
    wall, rss = None, None
    for line in open(path, errors="replace"):
        line = line.strip()
        if line.startswith("Elapsed (wall clock) time"):
            t = line.rsplit(" ", 1)[1]
            parts = [float(p) for p in t.split(":")]
            wall = 0.0
            for p in parts:
                wall = wall * 60 + p
        elif line.startswith("Maximum resident set size"):
            rss = int(line.rsplit(" ", 1)[1]) / 1024
    return wall, rss


def main():
    d, pcap, labels_path = sys.argv[1:4]
    size = os.path.getsize(pcap)
    labels = load_labels(labels_path)
    mcp = {k for k, v in labels.items() if v["mcp"]}
    rows, results = [], {}
    runs = {}
    for line in open(os.path.join(d, "runs.tsv")):
        name, engine, threads, eve, tfile, code = line.rstrip("\n").split("\t")
        wall, rss = time_v(tfile)
        runs.setdefault(name, []).append((wall or 0.0, rss or 0.0, engine, threads, eve, code))
    for name, rs in runs.items():
        walls = sorted(r[0] for r in rs)
        wall, _, engine, threads, eve, code = sorted(rs)[len(rs) // 2]
        rss = max(r[1] for r in rs)  # the worst peak of the repeats
        spread = f" ({walls[0]:.2f}–{walls[-1]:.2f})" if len(rs) > 1 else ""
        alerts, flows, _ = detected_flows(eve, labels)
        tp, fp, fn = len(flows & mcp), len(flows - mcp), len(mcp - flows)
        mbs = size / 1e6 / wall if wall else 0.0
        results[name] = dict(wall=wall, rss=rss, mbs=mbs, flows=flows, code=code)
        rows.append(f"| {engine} | {threads} | {wall:.2f}{spread} | {mbs:.0f} | {rss:.0f} | {alerts} | {len(flows)} | {tp} | {fp} | {fn} | {code} |")
    print(f"Capture: `{os.path.basename(pcap)}`, {size} bytes ({size / 2**30:.2f} GiB), "
          f"{len(labels)} labelled flows, {len(mcp)} MCP.\n")
    print(f"Median of {max(len(r) for r in runs.values())} runs each (wall-time range in parentheses), peak RSS the highest of them; "
          "MB/s = pcap bytes / 10^6 / median wall time.\n")
    print("| engine | threads | wall s | MB/s | peak RSS MB | alerts | flows alerted | MCP flows found | false-positive flows | MCP flows missed | exit |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    print()
    s1, u1 = results.get("shadowmcp-1"), results.get("suricata-1")
    s2 = results.get("shadowmcp-2")
    checks = []
    if s1 and u1:
        ratio = s1["mbs"] / u1["mbs"] if u1["mbs"] else 0
        checks.append(("single-threaded throughput >= 5x Suricata single-threaded", f"{ratio:.2f}x", ratio >= 5))
        same = s1["flows"] == u1["flows"]
        exact = s1["flows"] == mcp
        checks.append(("identical detections (flows alerted) to Suricata", "identical" if same else "different", same))
        checks.append(("shadowmcp alerts exactly the MCP-labelled flows", "exact" if exact else "not exact", exact))
    if s1 and s2:
        r = s2["mbs"] / s1["mbs"] if s1["mbs"] else 0
        checks.append(("two threads >= 1.8x one thread", f"{r:.2f}x", r >= 1.8))
    else:
        checks.append(("two threads >= 1.8x one thread", "not measured: `shadowmcp scan` has no --threads yet", False))
    if s1:
        worst = max(v["rss"] for k, v in results.items() if k.startswith("shadowmcp"))
        checks.append(("peak RSS <= 150 MB", f"{worst:.0f} MB", worst <= 150))
    print("| target | measured | met |")
    print("|---|---|---|")
    for what, val, ok in checks:
        print(f"| {what} | {val} | {'yes' if ok else 'no'} |")
    fl = os.path.join(d, "flowload.tsv")
    if os.path.exists(fl) and os.path.getsize(fl) > 0:
        print()
        print("| flow-load run | capture | tool | wall s | peak RSS MB | connections opened | evictions | exchanges | MCP exchanges (scan) |")
        print("|---|---|---|---|---|---|---|---|---|")
        for line in open(fl):
            name, capture, tool, tfile, out, err = line.rstrip("\n").split("\t")
            wall, rss = time_v(tfile)
            st = flow_stats(out, err)
            print(f"| {name} | {capture} | `{tool}` | {wall or 0:.2f} | {rss or 0:.0f} | "
                  f"{st.get('conns_opened', '-')} | {st.get('evictions', '-')} | {st.get('exchanges', '-')} | {st.get('mcp', '-')} |")


def flow_stats(out, err):
    """flowload's JSON line, or the counts in `shadowmcp scan`'s summary."""
    try:
        return json.loads(open(out).read().strip().splitlines()[-1])
    except (OSError, ValueError, IndexError):
        pass
    st = {}
    try:
        text = open(err, errors="replace").read()
    except OSError:
        return st
    m = re.search(r"(\d+) exchanges; (\d+) MCP", text)
    if m:
        st["exchanges"], st["mcp"] = int(m.group(1)), int(m.group(2))
    m = re.search(r"(\d+) connections evicted", text)
    st["evictions"] = int(m.group(1)) if m else 0
    return st

if __name__ == "__main__":
    main()

#!/usr/bin/env bash
# Regenerates the TLS fixtures of this directory from real traffic on 127.0.0.1:
# `openssl s_server -HTTP` with a fresh self-signed certificate, `curl` with
# SSLKEYLOGFILE, `tcpdump` on lo. Each case leaves NAME.pcap (the capture) and
# NAME.keys (NSS key log). When tshark is installed, each decryption is
# cross-checked: tshark must decrypt the same request line with the key log.
#
# Needs: openssl, curl, tcpdump (root), optionally tshark. Run from anywhere:
#   bash crates/tls/tests/data/gen.sh
set -euo pipefail
cd "$(dirname "$0")"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/key.pem" -out "$work/cert.pem" \
    -days 2 -subj /CN=mcp.test -addext subjectAltName=DNS:mcp.test 2>/dev/null

# The JSON-RPC answer s_server sends for GET /mcp (-HTTP: the file holds the
# whole HTTP response).
body='{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-06-18","serverInfo":{"name":"fixture"}}}'
printf 'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s' \
    "${#body}" "$body" >"$work/mcp"
# A response spanning several TLS records (more than 16 KiB).
{
    printf 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n'
    for i in $(seq 1 900); do printf 'line %04d of a long response body\n' "$i"; done
    printf 'END-OF-BIG-BODY\n'
} >"$work/big"

port=44300
# run_case NAME PATH "server args" "curl args"
run_case() {
    local name=$1 path=$2 sargs=$3 cargs=$4
    port=$((port + 1))
    rm -f "$name.pcap" "$name.keys"
    tcpdump -i lo -U -s 0 -w "$work/$name.pcap" "tcp port $port" 2>/dev/null &
    local dump=$!
    sleep 1
    (cd "$work" && exec timeout 20 openssl s_server -quiet -HTTP -naccept 1 -accept "127.0.0.1:$port" \
        -cert cert.pem -key key.pem -alpn http/1.1 $sargs) &
    local server=$!
    sleep 0.5
    # shellcheck disable=SC2086
    SSLKEYLOGFILE="$work/$name.keys" timeout 20 curl -sk --resolve "mcp.test:$port:127.0.0.1" \
        -H 'Accept: application/json, text/event-stream' $cargs \
        "https://mcp.test:$port$path" -o "$work/$name.out"
    wait "$server" || true
    sleep 0.5
    kill "$dump"
    wait "$dump" || true
    cp "$work/$name.pcap" "$name.pcap"
    cp "$work/$name.keys" "$name.keys"
    if command -v tshark >/dev/null; then
        if ! tshark -r "$name.pcap" -o "tls.keylog_file:$name.keys" -q -z follow,tls,ascii,0 2>/dev/null |
            grep -q "GET $path HTTP/1.1"; then
            echo "tshark could not decrypt $name" >&2
            exit 1
        fi
    fi
    echo "$name: $(stat -c %s "$name.pcap") bytes"
}

run_case tls13_aes128 /mcp "-tls1_3 -ciphersuites TLS_AES_128_GCM_SHA256" "--tlsv1.3 --tls13-ciphers TLS_AES_128_GCM_SHA256"
run_case tls13_aes256 /mcp "-tls1_3 -ciphersuites TLS_AES_256_GCM_SHA384" "--tlsv1.3 --tls13-ciphers TLS_AES_256_GCM_SHA384"
run_case tls13_chacha /mcp "-tls1_3 -ciphersuites TLS_CHACHA20_POLY1305_SHA256" "--tlsv1.3 --tls13-ciphers TLS_CHACHA20_POLY1305_SHA256"
# Responses over many small records (for gap recovery).
run_case tls13_big /big "-tls1_3 -ciphersuites TLS_AES_128_GCM_SHA256 -max_send_frag 1000" "--tlsv1.3"
run_case tls12_big /big "-tls1_2 -cipher ECDHE-RSA-AES128-GCM-SHA256 -max_send_frag 1000" "--tls-max 1.2"
run_case tls12_chacha_big /big "-tls1_2 -cipher ECDHE-RSA-CHACHA20-POLY1305 -max_send_frag 1000" "--tls-max 1.2"
run_case tls12_aes128 /mcp "-tls1_2 -cipher ECDHE-RSA-AES128-GCM-SHA256" "--tls-max 1.2 --ciphers ECDHE-RSA-AES128-GCM-SHA256"
run_case tls12_aes256 /mcp "-tls1_2 -cipher ECDHE-RSA-AES256-GCM-SHA384" "--tls-max 1.2 --ciphers ECDHE-RSA-AES256-GCM-SHA384"
run_case tls12_chacha /mcp "-tls1_2 -cipher ECDHE-RSA-CHACHA20-POLY1305" "--tls-max 1.2 --ciphers ECDHE-RSA-CHACHA20-POLY1305"
run_case tls12_cbc /mcp "-tls1_2 -cipher ECDHE-RSA-AES128-SHA256" "--tls-max 1.2 --ciphers ECDHE-RSA-AES128-SHA256"

# TLS 1.3 KeyUpdate in both directions: s_client's "K" command sends a
# KeyUpdate asking the peer to update too; data flows before and after.
keyupdate_case() {
    local name=tls13_keyupdate
    port=$((port + 1))
    tcpdump -i lo -U -s 0 -w "$work/$name.pcap" "tcp port $port" 2>/dev/null &
    local dump=$!
    sleep 1
    (sleep 1; echo "server before update"; sleep 1.5; echo "server after update"; sleep 1) |
        timeout 20 openssl s_server -quiet -naccept 1 -accept "127.0.0.1:$port" -tls1_3 \
            -cert "$work/cert.pem" -key "$work/key.pem" >/dev/null 2>&1 &
    local server=$!
    sleep 0.5
    (echo "client before update"; sleep 1.2; echo K; sleep 0.5; echo "client after update"; sleep 2) |
        timeout 20 openssl s_client -connect "127.0.0.1:$port" -servername mcp.test -tls1_3 \
            -keylogfile "$work/$name.keys" >/dev/null 2>&1
    wait "$server" || true
    sleep 0.5
    kill "$dump"
    wait "$dump" || true
    cp "$work/$name.pcap" "$name.pcap"
    grep -v '^#' "$work/$name.keys" >"$name.keys"
    if command -v tshark >/dev/null; then
        tshark -r "$name.pcap" -o "tls.keylog_file:$name.keys" -q -z follow,tls,ascii,0 2>/dev/null |
            grep -q "server after update" || { echo "tshark could not decrypt $name" >&2; exit 1; }
    fi
    echo "$name: $(stat -c %s "$name.pcap") bytes"
}
keyupdate_case

# TLS 1.2 renegotiation: s_server's "R" command sends a HelloRequest, the
# client renegotiates inside the encrypted connection (a second
# CLIENT_RANDOM in the key log); data flows before and after.
renegotiation_case() {
    local name=tls12_renegotiation
    port=$((port + 1))
    tcpdump -i lo -U -s 0 -w "$work/$name.pcap" "tcp port $port" 2>/dev/null &
    local dump=$!
    sleep 1
    (sleep 1; echo "server before"; sleep 0.5; echo R; sleep 1; echo "server after"; sleep 1.5) |
        timeout 20 openssl s_server -naccept 1 -accept "127.0.0.1:$port" -tls1_2 \
            -cipher ECDHE-RSA-AES128-GCM-SHA256 -cert "$work/cert.pem" -key "$work/key.pem" \
            >/dev/null 2>&1 &
    local server=$!
    sleep 0.5
    (echo "client before"; sleep 2.5; echo "client after"; sleep 1.5) |
        timeout 20 openssl s_client -connect "127.0.0.1:$port" -servername mcp.test -tls1_2 \
            -keylogfile "$work/$name.keys" >/dev/null 2>&1 || true # the server closes first
    wait "$server" || true
    sleep 0.5
    kill "$dump"
    wait "$dump" || true
    cp "$work/$name.pcap" "$name.pcap"
    grep -v '^#' "$work/$name.keys" >"$name.keys"
    [ "$(grep -c CLIENT_RANDOM "$name.keys")" = 2 ] || { echo "$name: no renegotiation" >&2; exit 1; }
    if command -v tshark >/dev/null; then
        tshark -r "$name.pcap" -o "tls.keylog_file:$name.keys" -q -z follow,tls,ascii,0 2>/dev/null |
            grep -q "client after" || { echo "tshark could not decrypt $name" >&2; exit 1; }
    fi
    echo "$name: $(stat -c %s "$name.pcap") bytes"
}
renegotiation_case

# TLS 1.3 0-RTT: a first connection (not captured) gets a session ticket
# from a server that allows early data; the captured second one resumes it
# and sends a request as early data, then a line after the handshake.
# `early_case NAME accept|reject`: the second connection goes to the same
# server (which accepts the early data) or to another s_server process,
# which cannot decrypt the ticket and so rejects the early data (the client
# sends it all the same).
early_case() {
    local name=$1 mode=$2
    port=$((port + 1))
    local first=$port second=$port
    printf 'GET /early HTTP/1.1\r\nHost: mcp.test\r\n\r\n' >"$work/early.txt"
    local naccept=2 servers=()
    if [ "$mode" = reject ]; then
        naccept=1
        port=$((port + 1))
        second=$port
        (sleep 5) | timeout 20 openssl s_server -naccept 1 -accept "127.0.0.1:$second" -tls1_3 \
            -cert "$work/cert.pem" -key "$work/key.pem" >/dev/null 2>&1 &
        servers+=($!)
    fi
    (sleep 5) | timeout 20 openssl s_server -naccept "$naccept" -accept "127.0.0.1:$first" -tls1_3 -early_data \
        -cert "$work/cert.pem" -key "$work/key.pem" >/dev/null 2>&1 &
    servers+=($!)
    sleep 0.5
    (sleep 1) | timeout 20 openssl s_client -connect "127.0.0.1:$first" -servername mcp.test -tls1_3 \
        -sess_out "$work/sess.pem" >/dev/null 2>&1
    tcpdump -i lo -U -s 0 -w "$work/$name.pcap" "tcp port $second" 2>/dev/null &
    local dump=$!
    sleep 1
    (echo "after handshake"; sleep 1) | timeout 20 openssl s_client -connect "127.0.0.1:$second" \
        -servername mcp.test -tls1_3 -sess_in "$work/sess.pem" -early_data "$work/early.txt" \
        -keylogfile "$work/$name.keys" >/dev/null 2>&1
    wait "${servers[@]}" || true
    sleep 0.5
    kill "$dump"
    wait "$dump" || true
    cp "$work/$name.pcap" "$name.pcap"
    grep -v '^#' "$work/$name.keys" >"$name.keys"
    if command -v tshark >/dev/null; then
        tshark -r "$name.pcap" -o "tls.keylog_file:$name.keys" -q -z follow,tls,ascii,0 2>/dev/null |
            grep -q "after handshake" || { echo "tshark could not decrypt $name" >&2; exit 1; }
    fi
    echo "$name: $(stat -c %s "$name.pcap") bytes"
}
early_case tls13_early_accepted accept
early_case tls13_early_rejected reject

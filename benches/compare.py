#!/usr/bin/env python3
"""Per-flow detections of EVE alert files against the generator's labels.

usage: compare.py LABELS.jsonl NAME=EVE.json [NAME=EVE.json ...]

A flow counts as detected when at least one `event_type: alert` names its
address pair (either direction: Suricata reports some alerts server to
client). Prints one JSON object per engine: alerts, flows detected, true
positives, false positives (by kind), missed MCP flows (by kind), and a
hash of the detected set so two engines can be compared for identity.
"""
import hashlib
import json
import sys


def pair(a, b):
    return "-".join(sorted((a, b)))


def load_labels(path):
    labels = {}
    for line in open(path):
        if line.strip():
            lab = json.loads(line)
            c, s = lab["flow"].split("-")
            labels[pair(c, s)] = lab
    return labels


def detected_flows(eve_path, labels):
    """(alerts, set of labelled flows alerted, alerts on unlabelled flows)."""
    alerts, flows, unknown = 0, set(), 0
    try:
        f = open(eve_path, errors="replace")
    except OSError:
        return 0, set(), 0
    for line in f:
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        if ev.get("event_type") != "alert":
            continue
        alerts += 1
        k = pair(f"{ev.get('src_ip')}:{ev.get('src_port')}", f"{ev.get('dest_ip')}:{ev.get('dest_port')}")
        if k in labels:
            flows.add(k)
        else:
            unknown += 1
    return alerts, flows, unknown


def count(items):
    out = {}
    for i in items:
        out[i] = out.get(i, 0) + 1
    return dict(sorted(out.items()))


def main():
    labels = load_labels(sys.argv[1])
    mcp = {k for k, v in labels.items() if v["mcp"]}
    for arg in sys.argv[2:]:
        name, path = arg.split("=", 1)
        alerts, flows, unknown = detected_flows(path, labels)
        tp, fp, fn = flows & mcp, flows - mcp, mcp - flows
        print(json.dumps({
            "engine": name,
            "alerts": alerts,
            "alerts_on_unlabelled_flows": unknown,
            "flows_detected": len(flows),
            "mcp_flows": len(mcp),
            "true_positives": len(tp),
            "false_positives": len(fp),
            "false_positives_by_kind": count(labels[k]["kind"] for k in fp),
            "missed": len(fn),
            "missed_by_kind": count(labels[k]["kind"] for k in fn),
            "detected_set_sha1": hashlib.sha1("\n".join(sorted(flows)).encode()).hexdigest()[:12],
        }))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Per-flow detections of EVE alert files against the generator's labels.

usage: compare.py LABELS.jsonl NAME=EVE.json [NAME=EVE.json ...]

A flow counts as detected when at least one `event_type: alert` names its
address pair (either direction: Suricata reports some alerts server to
client). Prints one JSON object per engine: alerts, flows detected, true
positives, false positives (by kind), missed MCP flows (by kind), and the
set of detected flows' hash so two engines can be compared for identity.
"""
import hashlib
import json
import sys


def key(a, ap, b, bp):
    x, y = f"{a}:{ap}", f"{b}:{bp}"
    return "-".join(sorted((x, y)))


def main():
    labels = {}
    for line in open(sys.argv[1]):
        if not line.strip():
            continue
        lab = json.loads(line)
        c, s = lab["flow"].split("-")
        labels["-".join(sorted((c, s)))] = lab
    mcp_flows = {k for k, v in labels.items() if v["mcp"]}
    for arg in sys.argv[2:]:
        name, path = arg.split("=", 1)
        alerts, flows, unknown = 0, set(), 0
        for line in open(path, errors="replace"):
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            if ev.get("event_type") != "alert":
                continue
            alerts += 1
            k = key(ev.get("src_ip"), ev.get("src_port"), ev.get("dest_ip"), ev.get("dest_port"))
            if k in labels:
                flows.add(k)
            else:
                unknown += 1
        tp = flows & mcp_flows
        fp = flows - mcp_flows
        fn = mcp_flows - flows
        by = lambda ks: dict(sorted(_count(labels[k]["kind"] for k in ks).items()))
        print(json.dumps({
            "engine": name,
            "alerts": alerts,
            "alerts_on_unlabelled_flows": unknown,
            "flows_detected": len(flows),
            "mcp_flows": len(mcp_flows),
            "true_positives": len(tp),
            "false_positives": len(fp),
            "false_positives_by_kind": by(fp),
            "missed": len(fn),
            "missed_by_kind": by(fn),
            "detected_set_sha1": hashlib.sha1("\n".join(sorted(flows)).encode()).hexdigest()[:12],
        }))


def _count(items):
    out = {}
    for i in items:
        out[i] = out.get(i, 0) + 1
    return out


if __name__ == "__main__":
    main()

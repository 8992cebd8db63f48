//! Every capture under fixtures/pcap/{real,adversarial} yields exactly the
//! exchanges its `.expected.json` lists. Those lists come from an oracle
//! independent of shadowmcp: tshark for the real captures, the generating
//! script for the hand-built ones (see fixtures/gen/README.md).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde_json::Value;
use shadowmcp_engine::{process_capture, CaptureConfig, CaptureReport};
use shadowmcp_exchange::{Exchange, Record};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/pcap")
}

struct Seen {
    exchanges: Vec<Exchange>,
    /// SSE events per exchange id, counting those of later updates.
    sse_events: HashMap<u64, usize>,
    report: CaptureReport,
}

fn run(path: &Path) -> Seen {
    let mut exchanges = Vec::new();
    let mut sse_events: HashMap<u64, usize> = HashMap::new();
    let report = process_capture(
        path.to_str().unwrap(),
        &CaptureConfig::default(),
        &mut |r| match r {
            Record::Exchange(ex) => {
                let n = ex.response.as_ref().map_or(0, |r| r.sse_events.len());
                *sse_events.entry(ex.id).or_default() += n;
                exchanges.push(*ex);
            }
            Record::SseUpdate(up) => {
                *sse_events.entry(up.exchange_id).or_default() += up.events.len();
            }
        },
    )
    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Seen {
        exchanges,
        sse_events,
        report,
    }
}

/// Compares one capture with its expectations; returns the differences.
fn check(pcap: &Path, expected: &Value) -> Vec<String> {
    let seen = run(pcap);
    let mut problems = Vec::new();
    let mut by_client: BTreeMap<SocketAddr, Vec<&Exchange>> = BTreeMap::new();
    for ex in &seen.exchanges {
        let flow = ex.flow.as_ref().expect("capture exchanges have a flow");
        by_client.entry(flow.client).or_default().push(ex);
    }
    let conns = expected["connections"].as_array().expect("connections");
    let mut expected_total = 0;
    for conn in conns {
        let client: SocketAddr = conn["client"].as_str().unwrap().parse().unwrap();
        let server: SocketAddr = conn["server"].as_str().unwrap().parse().unwrap();
        let want = conn["exchanges"].as_array().unwrap();
        expected_total += want.len();
        let got = by_client.get(&client).cloned().unwrap_or_default();
        if got.len() != want.len() {
            problems.push(format!(
                "{client}: expected {} exchanges, got {}: {:?}",
                want.len(),
                got.len(),
                got.iter()
                    .map(|e| (e.method(), e.path(), e.status()))
                    .collect::<Vec<_>>()
            ));
            continue;
        }
        for (i, (w, g)) in want.iter().zip(&got).enumerate() {
            let at = format!("{client} exchange {}", i + 1);
            let flow = g.flow.as_ref().unwrap();
            if flow.server != server {
                problems.push(format!("{at}: server {} != {server}", flow.server));
            }
            let req = g.request.as_ref();
            if req.map(|r| r.method.as_str()) != w["method"].as_str() {
                problems.push(format!(
                    "{at}: method {:?} != {}",
                    req.map(|r| &r.method),
                    w["method"]
                ));
            }
            if req.map(|r| r.target.as_str()) != w["target"].as_str() {
                problems.push(format!(
                    "{at}: target {:?} != {}",
                    req.map(|r| &r.target),
                    w["target"]
                ));
            }
            if g.host() != w["host"].as_str() {
                problems.push(format!("{at}: host {:?} != {}", g.host(), w["host"]));
            }
            if g.status().map(u64::from) != w["status"].as_u64() {
                problems.push(format!("{at}: status {:?} != {}", g.status(), w["status"]));
            }
            let want_len = w
                .get("request_body_captured_len")
                .or(w.get("request_body_len"))
                .and_then(Value::as_u64);
            let got_len = req.map(|r| r.body.data.len() as u64);
            if want_len.is_some() && got_len != want_len {
                problems.push(format!(
                    "{at}: request body {got_len:?} bytes != {want_len:?}"
                ));
            }
            if let Some(ct) = w["response_content_type"].as_str() {
                let got_ct = g
                    .response
                    .as_ref()
                    .and_then(|r| r.headers.get_str("content-type"));
                if got_ct != Some(ct) {
                    problems.push(format!("{at}: content-type {got_ct:?} != {ct:?}"));
                }
            }
            if let Some(n) = w["sse_events"]["count"].as_u64() {
                let got_n = seen.sse_events.get(&g.id).copied().unwrap_or(0) as u64;
                if got_n != n {
                    problems.push(format!("{at}: {got_n} SSE events != {n}"));
                }
            }
        }
    }
    let extra = seen.exchanges.len().saturating_sub(expected_total);
    let unexpected_clients: Vec<_> = by_client
        .keys()
        .filter(|c| {
            !conns
                .iter()
                .any(|x| x["client"].as_str() == Some(&c.to_string()))
        })
        .collect();
    if !unexpected_clients.is_empty() {
        problems.push(format!(
            "{extra} exchanges on unexpected connections {unexpected_clients:?}"
        ));
    }
    let _ = &seen.report;
    problems
}

fn check_dir(dir: &str) {
    let mut failures = Vec::new();
    let mut checked = 0;
    let mut entries: Vec<_> = std::fs::read_dir(fixtures().join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let Some(stem) = name.strip_suffix(".expected.json") else {
            continue;
        };
        let expected: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        if expected.get("connections").is_none() {
            continue;
        }
        // Expectations without a capture (not-a-capture.txt) are checked
        // by the command-line tests.
        let Some(pcap) = ["pcap", "pcapng", "pcap.gz"]
            .iter()
            .map(|ext| path.with_file_name(format!("{stem}.{ext}")))
            .find(|p| p.exists())
        else {
            continue;
        };
        checked += 1;
        for p in check(&pcap, &expected) {
            failures.push(format!("{stem}: {p}"));
        }
    }
    assert!(checked > 0, "no fixtures checked in {dir}");
    assert!(
        failures.is_empty(),
        "{} problems:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn real_captures_yield_the_oracles_exchanges() {
    check_dir("real");
}

#[test]
fn adversarial_captures_yield_the_scripted_exchanges() {
    check_dir("adversarial");
}

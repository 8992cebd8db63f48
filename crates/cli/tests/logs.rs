//! Proxy logs as input: every log under fixtures/logs (a real mitmproxy
//! session, and Squid/Zeek logs written from it) gives the verdicts, users
//! and servers its `.expected.json` lists; malformed records are counted and
//! reported; a log read from a pipe yields events before the pipe closes.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

fn logs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/logs")
}

struct Scanned {
    code: Option<i32>,
    stderr: String,
    /// Alerts by the log position (line, or 1-based HAR entry) they came from.
    alerts: BTreeMap<u64, Vec<Value>>,
}

fn scan(log: &Path) -> Scanned {
    let policy = logs_dir().join("policy.toml");
    let o = Command::new(env!("CARGO_BIN_EXE_shadowmcp"))
        .args(["scan", "--threads", "1", "--policy"])
        .arg(&policy)
        .arg(log)
        .output()
        .unwrap();
    let mut alerts: BTreeMap<u64, Vec<Value>> = BTreeMap::new();
    for line in String::from_utf8_lossy(&o.stdout).lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let pos = v["mcp"]["position"]
            .as_u64()
            .expect("alerts from logs carry their position");
        alerts.entry(pos).or_default().push(v);
    }
    Scanned {
        code: o.status.code(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        alerts,
    }
}

fn expected(name: &str) -> Value {
    let path = logs_dir().join(format!("{name}.expected.json"));
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Position of an expected exchange as shadowmcp counts it.
fn position(e: &Value) -> u64 {
    match (e.get("line"), e.get("entry")) {
        (Some(l), _) => l.as_u64().unwrap(),
        (None, Some(n)) => n.as_u64().unwrap() + 1,
        _ => panic!("no position in {e}"),
    }
}

/// Checks one log; `bodies`: the format logs bodies, so every alert must be
/// on an MCP exchange; without bodies, host- or path-only alerts on other
/// lines are allowed at low confidence.
fn check(name: &str, bodies: bool) -> Scanned {
    let s = scan(&logs_dir().join(name));
    let want = expected(name);
    let exchanges = want["exchanges"].as_array().unwrap();
    let mut problems = Vec::new();
    let by_pos: BTreeMap<u64, &Value> = exchanges.iter().map(|e| (position(e), e)).collect();
    for e in exchanges.iter().filter(|e| e["mcp"] == true) {
        let pos = position(e);
        let Some(alerts) = s.alerts.get(&pos) else {
            problems.push(format!(
                "{name}:{pos}: MCP exchange {} {} not alerted",
                e["method"], e["url"]
            ));
            continue;
        };
        let a = &alerts[0]["mcp"];
        // Alerts name servers canonically: no trailing slash.
        let want_server = e["mcp_server"]
            .as_str()
            .unwrap_or_default()
            .trim_end_matches('/');
        if a["server"] != want_server {
            problems.push(format!(
                "{name}:{pos}: server {} != {}",
                a["server"], e["mcp_server"]
            ));
        }
        if a["verdict"] != e["policy"] {
            problems.push(format!(
                "{name}:{pos}: verdict {} != {}",
                a["verdict"], e["policy"]
            ));
        }
        if !e["user"].is_null() && a["user"] != e["user"] {
            problems.push(format!("{name}:{pos}: user {} != {}", a["user"], e["user"]));
        }
    }
    for (pos, alerts) in &s.alerts {
        let e = by_pos.get(pos);
        if e.is_some_and(|e| e["mcp"] == true) {
            continue;
        }
        for a in alerts {
            let conf = &a["mcp"]["confidence"];
            if bodies || conf != "low" {
                problems.push(format!(
                    "{name}:{pos}: alert on a non-MCP exchange ({:?}) at {conf} confidence: {}",
                    e.map(|e| (&e["method"], &e["url"])),
                    a["mcp"]["rules"]
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    s
}

#[test]
fn har_from_mitmproxy() {
    let s = check("mitm.har", true);
    assert_eq!(s.code, Some(0), "{}", s.stderr);
    assert!(s.alerts.len() >= 30);
}

#[test]
fn ndjson_from_the_mitmproxy_addon_with_users() {
    let s = check("mitm.ndjson", true);
    assert_eq!(s.code, Some(0), "{}", s.stderr);
    // bob is in group eng (tools.internal.test allowed), mallory is not.
    let verdicts: Vec<(String, String)> = s
        .alerts
        .values()
        .flatten()
        .filter(|a| a["mcp"]["server"] == "tools.internal.test/mcp")
        .map(|a| {
            (
                a["mcp"]["user"].as_str().unwrap().to_string(),
                a["mcp"]["verdict"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(verdicts.contains(&("bob".into(), "allow".into())));
    assert!(verdicts.contains(&("mallory".into(), "block".into())));
    assert!(!verdicts.contains(&("mallory".into(), "allow".into())));
}

#[test]
fn squid_and_zeek_logs_without_bodies() {
    for name in [
        "squid-native.log",
        "squid-combined.log",
        "zeek-http.log",
        "zeek-http.json",
    ] {
        let s = check(name, false);
        assert_eq!(s.code, Some(0), "{name}: {}", s.stderr);
    }
}

#[test]
fn malformed_lines_are_reported_counted_and_skipped() {
    let name = "mitm-malformed.ndjson";
    let s = check(name, true);
    assert_eq!(s.code, Some(0), "{}", s.stderr);
    let want = expected(name);
    for bad in want["bad_lines"].as_array().unwrap() {
        let line = format!("{name}:{}:", bad["line"]);
        assert!(
            s.stderr.contains(&line),
            "warning for {line} missing: {}",
            s.stderr
        );
    }
    assert!(
        s.stderr.contains(", 2 malformed ones skipped"),
        "{}",
        s.stderr
    );
}

#[test]
fn truncated_har_yields_every_complete_entry() {
    let name = "mitm-truncated.har";
    let s = check(name, true);
    assert_eq!(s.code, Some(3), "{}", s.stderr);
    assert!(s.stderr.contains("truncated HAR"), "{}", s.stderr);
    let complete = expected(name)["complete_entries_before_cut"]
        .as_u64()
        .unwrap();
    assert_eq!(s.alerts.keys().copied().max(), Some(complete));
}

#[test]
fn events_from_a_pipe_come_before_it_closes() {
    let lines: Vec<String> = std::fs::read_to_string(logs_dir().join("mitm.ndjson"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let mut child = Command::new(env!("CARGO_BIN_EXE_shadowmcp"))
        .args(["scan", "-q", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    // The first line is an MCP initialize: its alert must arrive while the
    // writer still holds the pipe open.
    writeln!(stdin, "{}", lines[0]).unwrap();
    stdin.flush().unwrap();
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let v: Value = serde_json::from_str(&first).unwrap();
    assert_eq!(v["mcp"]["methods"][0], "initialize");
    assert_eq!(v["mcp"]["position"], 1);
    // More lines, then close: the rest follows.
    for l in &lines[1..5] {
        writeln!(stdin, "{l}").unwrap();
    }
    drop(stdin);
    let rest: Vec<String> = stdout.lines().map(Result::unwrap).collect();
    assert!(!rest.is_empty());
    assert!(child.wait().unwrap().success());
}

#[test]
fn several_logs_read_in_parallel_give_the_same_events() {
    let names = [
        "mitm.ndjson",
        "mitm.har",
        "squid-native.log",
        "zeek-http.log",
        "zeek-http.json",
    ];
    let run_with = |threads: &str| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_shadowmcp"));
        cmd.args(["scan", "-q", "--sort", "--threads", threads, "--policy"])
            .arg(logs_dir().join("policy.toml"));
        for n in names {
            cmd.arg(logs_dir().join(n));
        }
        let o = cmd.output().unwrap();
        assert!(o.status.success());
        String::from_utf8(o.stdout).unwrap()
    };
    let one = run_with("1");
    assert!(one.lines().count() > 200);
    assert_eq!(run_with("3"), one);
}

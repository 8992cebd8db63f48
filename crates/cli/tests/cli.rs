//! The command as users run it: exit codes, one-line errors, streaming, the
//! fixture regression run.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_shadowmcp"))
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixture(rel: &str) -> String {
    root()
        .join("fixtures")
        .join(rel)
        .to_str()
        .unwrap()
        .to_string()
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("run shadowmcp")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json_lines(o: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

#[test]
fn fixture_regression_cases_all_pass() {
    // The whole fixtures folder, as a user would point it at theirs.
    let o = run(&["test", root().join("fixtures").to_str().unwrap()]);
    let out = String::from_utf8_lossy(&o.stdout);
    let last = out.lines().last().unwrap_or_default();
    assert!(
        o.status.success(),
        "shadowmcp test fixtures/cases failed:\n{out}"
    );
    assert!(last.ends_with(" passed, 0 failed"), "closing line: {last}");
    let passed: usize = last.split_whitespace().next().unwrap().parse().unwrap();
    assert!(passed >= 100, "only {passed} cases ran");
}

#[test]
fn regression_runner_reports_failures_with_exit_1() {
    let dir = std::env::temp_dir().join(format!("shadowmcp-cases-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // A decoy that must not alert, and an MCP capture wrongly expected silent.
    std::fs::write(
        dir.join("decoy.case.toml"),
        format!(
            "input = {:?}\n[expect]\nmcp = false\n",
            fixture("pcap/decoys/ethereum-jsonrpc.pcap")
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("wrong.case.toml"),
        format!(
            "input = {:?}\n[expect]\nmcp = false\n",
            fixture("pcap/real/py-streamable-json.pcap")
        ),
    )
    .unwrap();
    std::fs::write(dir.join("broken.case.toml"), "input = 3\n").unwrap();
    let o = run(&["test", dir.to_str().unwrap()]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("ok    decoy.case.toml"), "{out}");
    assert!(
        out.contains("FAIL  wrong.case.toml: expected no events"),
        "{out}"
    );
    assert!(out.contains("FAIL  broken.case.toml: line 1"), "{out}");
    assert_eq!(out.lines().last(), Some("1 passed, 2 failed"));
}

#[test]
fn not_a_capture_is_a_one_line_error_with_exit_2() {
    let path = fixture("pcap/adversarial/not-a-capture.txt");
    for cmd in ["exchanges", "scan"] {
        let o = run(&[cmd, &path]);
        assert_eq!(o.status.code(), Some(2), "{cmd}");
        let err = stderr(&o);
        assert_eq!(err.lines().count(), 1, "{cmd}: {err}");
        assert!(err.starts_with("shadowmcp: error: "), "{err}");
        assert!(err.contains("not-a-capture.txt"), "names the input: {err}");
        assert!(err.contains("not a capture"), "gives the reason: {err}");
    }
}

#[test]
fn missing_and_empty_inputs_are_errors() {
    let o = run(&["scan", "/nonexistent/x.pcap"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("/nonexistent/x.pcap"), "{}", stderr(&o));
    let empty = std::env::temp_dir().join(format!("shadowmcp-empty-{}.pcap", std::process::id()));
    std::fs::write(&empty, b"").unwrap();
    let o = run(&["scan", empty.to_str().unwrap()]);
    std::fs::remove_file(&empty).ok();
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
}

#[test]
fn truncated_capture_processes_every_complete_packet_and_exits_3() {
    let o = run(&["scan", &fixture("pcap/adversarial/truncated.pcap")]);
    assert_eq!(o.status.code(), Some(3));
    let err = stderr(&o);
    assert!(
        err.contains("shadowmcp: warning: ") && err.contains("truncated"),
        "{err}"
    );
    // The packets before the cut still hold the MCP session.
    let events = json_lines(&o);
    assert!(
        !events.is_empty(),
        "complete packets before the cut were processed"
    );
}

#[test]
fn reads_standard_input() {
    // A pipe is read once, by a reader thread that hands segments to the
    // workers; a file is read by every worker on its own. Same events.
    for capture in [
        "pcap/real/py-streamable-json.pcap",
        "pcap/real/py-legacy-sse.pcap",
    ] {
        let data = std::fs::read(fixture(capture)).unwrap();
        for threads in ["1", "2"] {
            let mut child = bin()
                .args(["scan", "-q", "--sort", "--threads", threads, "-"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            child.stdin.take().unwrap().write_all(&data).unwrap();
            let o = child.wait_with_output().unwrap();
            assert!(o.status.success());
            let strip = |events: Vec<serde_json::Value>| -> Vec<serde_json::Value> {
                events
                    .into_iter()
                    .map(|mut e| {
                        e["mcp"]["input"] = serde_json::Value::Null;
                        e
                    })
                    .collect()
            };
            let from_pipe = strip(json_lines(&o));
            let from_file = strip(json_lines(&run(&[
                "scan",
                "-q",
                "--sort",
                "--threads",
                "2",
                &fixture(capture),
            ])));
            assert!(!from_pipe.is_empty());
            assert_eq!(from_pipe, from_file, "{capture} with {threads} threads");
        }
    }
}

#[test]
fn scan_alerts_follow_eve_and_hide_payloads_by_default() {
    let path = fixture("pcap/real/py-streamable-json.pcap");
    let o = run(&["scan", &path]);
    assert!(o.status.success(), "{}", stderr(&o));
    let events = json_lines(&o);
    assert!(!events.is_empty());
    for e in &events {
        assert_eq!(e["event_type"], "alert");
        for key in [
            "timestamp",
            "flow_id",
            "src_ip",
            "src_port",
            "dest_ip",
            "dest_port",
            "proto",
            "app_proto",
        ] {
            assert!(!e[key].is_null(), "missing {key}: {e}");
        }
        assert!(e["alert"]["signature_id"].is_u64());
        assert_eq!(e["alert"]["action"], "allowed");
        assert_eq!(e["mcp"]["verdict"], "would-block");
        assert_eq!(e["mcp"]["sanctioned"], false);
    }
    let calls: Vec<&serde_json::Value> = events
        .iter()
        .flat_map(|e| e["mcp"]["tools_called"].as_array().unwrap())
        .collect();
    assert!(!calls.is_empty(), "the capture calls tools");
    assert!(
        calls.iter().all(|c| c.get("arguments").is_none()),
        "arguments hidden by default"
    );
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(!text.contains("body_printable"));

    let o = run(&["scan", "--include-payload", &path]);
    let events = json_lines(&o);
    let with_args = events
        .iter()
        .flat_map(|e| e["mcp"]["tools_called"].as_array().unwrap().clone())
        .filter(|c| c.get("arguments").is_some())
        .count();
    assert!(with_args > 0, "--include-payload shows arguments");
    // The summary goes to stderr.
    assert!(stderr(&o).contains("MCP"), "{}", stderr(&o));
}

#[test]
fn fail_on_block_exits_1_and_policy_allows_the_portal() {
    let shadow = fixture("pcap/real/py-streamable-json.pcap");
    let o = run(&["scan", "-q", "--fail-on", "block", &shadow]);
    assert_eq!(o.status.code(), Some(1));
    let policy = fixture("cases/policy-enforce.toml");
    let portal = fixture("pcap/real/py-stateless-json.pcap");
    let o = run(&[
        "scan",
        "-q",
        "--fail-on",
        "block",
        "--policy",
        &policy,
        &portal,
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let events = json_lines(&o);
    assert!(!events.is_empty());
    assert!(events
        .iter()
        .all(|e| e["mcp"]["verdict"] == "allow" && e["mcp"]["sanctioned"] == true));
    let o = run(&["scan", "-q", "--policy", &policy, &shadow]);
    let events = json_lines(&o);
    assert!(events.iter().all(|e| e["alert"]["action"] == "blocked"));
}

#[test]
fn bad_policy_and_rules_are_one_line_errors() {
    let dir = std::env::temp_dir().join(format!("shadowmcp-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let policy = dir.join("policy.toml");
    std::fs::write(&policy, "version = 1\nmode = \"loud\"\n").unwrap();
    let o = run(&[
        "scan",
        "--policy",
        policy.to_str().unwrap(),
        &fixture("pcap/real/curl-plain.pcap"),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("policy.toml:2:"), "{err}");

    let rules = dir.join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(rules.join("bad.toml"), "format = 1\n[[rule]]\nid = \"x\"\n").unwrap();
    let o = run(&["rules", "lint", rules.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.lines().count() >= 1, "{out}");
    assert!(out.lines().all(|l| l.contains("bad.toml:3: ")), "{out}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn all_emits_http_events_for_non_mcp() {
    let o = run(&["scan", "-q", "--all", &fixture("pcap/real/curl-plain.pcap")]);
    assert!(o.status.success());
    let events = json_lines(&o);
    assert_eq!(events.len(), 5, "3 GETs, a HEAD and a 404");
    assert!(events.iter().all(|e| e["event_type"] == "http"));
    let o = run(&["scan", "-q", &fixture("pcap/real/curl-plain.pcap")]);
    assert!(json_lines(&o).is_empty(), "no events without --all");
}

#[test]
fn exchanges_prints_every_exchange() {
    let o = run(&["exchanges", &fixture("pcap/real/curl-pipelined.pcap")]);
    assert!(o.status.success());
    let lines = json_lines(&o);
    let targets: Vec<&str> = lines
        .iter()
        .filter(|l| l["type"] == "exchange")
        .map(|l| l["request"]["target"].as_str().unwrap())
        .collect();
    assert_eq!(targets.len(), 3, "{targets:?}");
}

#[test]
fn same_events_whatever_the_thread_count() {
    let mut files: Vec<String> = Vec::new();
    for dir in ["real", "mcp", "decoys", "adversarial", "tls"] {
        for e in std::fs::read_dir(root().join("fixtures/pcap").join(dir)).unwrap() {
            let p = e.unwrap().path();
            let name = p.to_str().unwrap().to_string();
            if name.ends_with(".pcap") || name.ends_with(".pcapng") || name.ends_with(".pcap.gz") {
                files.push(name);
            }
        }
    }
    files.sort();
    let run_with = |threads: &str| {
        let mut args = vec!["scan", "-q", "--sort", "--all", "--threads", threads];
        args.extend(files.iter().map(String::as_str));
        let o = run(&args);
        assert_eq!(
            o.status.code(),
            Some(3),
            "the truncated fixture makes it 3: {}",
            stderr(&o)
        );
        String::from_utf8(o.stdout).unwrap()
    };
    let one = run_with("1");
    assert!(one.lines().count() > 150, "{} events", one.lines().count());
    assert_eq!(run_with("2"), one);
    assert_eq!(run_with("3"), one);
}

#[test]
fn metrics_file_counts_what_was_processed() {
    let path = std::env::temp_dir().join(format!("shadowmcp-{}.prom", std::process::id()));
    let capture = fixture("pcap/real/py-streamable-json.pcap");
    for threads in ["1", "2"] {
        let o = run(&[
            "scan",
            "-q",
            "--threads",
            threads,
            "--metrics-file",
            path.to_str().unwrap(),
            &capture,
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let text = std::fs::read_to_string(&path).unwrap();
        let value = |name: &str| -> f64 {
            text.lines()
                .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
                .and_then(|l| l.rsplit(' ').next())
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{name} missing:\n{text}"))
        };
        assert_eq!(
            value("shadowmcp_packets_total"),
            77.0,
            "tcpdump wrote 77 packets"
        );
        assert_eq!(value("shadowmcp_exchanges_total"), 10.0);
        assert_eq!(value("shadowmcp_flows_active"), 0.0);
        // One observation per record: 10 exchanges and the end of the GET stream.
        assert_eq!(value("shadowmcp_processing_seconds_count"), 11.0);
        let alerts = json_lines(&o).len() as f64;
        assert_eq!(
            value(
                r#"shadowmcp_verdicts_total{server="tools.internal.test:28102/mcp",verdict="would-block"}"#
            ),
            alerts
        );
        assert!(text.contains(r#"shadowmcp_detections_total{rule="3001"}"#));
    }
    std::fs::remove_file(&path).ok();
}

#[test]
fn metrics_listen_on_a_busy_address_is_an_error() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let o = run(&[
        "scan",
        "--metrics-listen",
        &addr,
        &fixture("pcap/real/curl-plain.pcap"),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains(&addr), "{}", stderr(&o));
}

#[test]
fn syn_flood_stays_within_the_flow_cap_and_counts_evictions() {
    use shadowmcp_capture::writer::{PcapWriter, TcpSegment};
    use shadowmcp_capture::{LinkType, TcpFlags};
    let dir = std::env::temp_dir().join(format!("shadowmcp-flood-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pcap = dir.join("flood.pcap");
    let mut w = PcapWriter::new(std::fs::File::create(&pcap).unwrap(), LinkType::ETHERNET).unwrap();
    let server: std::net::SocketAddr = "10.9.0.1:443".parse().unwrap();
    for i in 0..20_000u32 {
        let client = std::net::SocketAddr::from((
            [10, 8, (i >> 8) as u8, i as u8],
            1024 + (i % 60_000) as u16,
        ));
        let syn = TcpSegment::new(client, server).seq(i).flags(TcpFlags {
            syn: true,
            ..TcpFlags::default()
        });
        let ts = shadowmcp_exchange::Timestamp::from_nanos(
            1_700_000_000_000_000_000 + i64::from(i) * 1000,
        );
        w.write_packet(ts, &syn.to_ethernet()).unwrap();
    }
    drop(w);
    // A memory figure caps the connections as well: this many fit.
    let fit = (4usize << 20) / shadowmcp_engine::flow_state_bytes();
    assert!(fit > 100 && fit < 20_000, "{fit}");
    let o = run(&[
        "scan",
        "--threads",
        "1",
        "--max-flow-memory",
        "4MiB",
        pcap.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("{} connections evicted", 20_000 - fit)),
        "{}",
        stderr(&o)
    );
    let prom = dir.join("m.prom");
    let o = run(&[
        "scan",
        "--max-flows",
        "1000",
        "--metrics-file",
        prom.to_str().unwrap(),
        pcap.to_str().unwrap(),
    ]);
    let text = std::fs::read_to_string(&prom).unwrap();
    std::fs::remove_dir_all(&dir).ok();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("19000 connections evicted"),
        "{}",
        stderr(&o)
    );
    assert!(
        text.contains("shadowmcp_flows_evicted_total 19000"),
        "{text}"
    );
    assert!(text.contains("shadowmcp_flows_total 20000"), "{text}");
}

#[cfg(not(feature = "live"))]
#[test]
fn live_without_the_feature_says_how_to_build_it() {
    let o = run(&["live", "-i", "lo"]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("--features live"), "{err}");
}

/// Writes one TCP connection (handshake, then each request and its
/// response in 1400-byte segments, then FIN) to `w`.
fn write_connection(
    w: &mut shadowmcp_capture::writer::PcapWriter<std::fs::File>,
    client: std::net::SocketAddr,
    server: std::net::SocketAddr,
    exchanges: &[(Vec<u8>, Vec<u8>)],
    t0: i64,
) {
    use shadowmcp_capture::writer::TcpSegment;
    use shadowmcp_capture::TcpFlags;
    let mut t = t0;
    let mut put = |w: &mut shadowmcp_capture::writer::PcapWriter<std::fs::File>, s: TcpSegment| {
        t += 1000;
        w.write_packet(
            shadowmcp_exchange::Timestamp::from_nanos(t),
            &s.to_ethernet(),
        )
        .unwrap();
    };
    let flags = |syn, ack, fin| TcpFlags {
        syn,
        ack,
        fin,
        psh: !syn && !fin,
        ..TcpFlags::default()
    };
    let (mut cseq, mut sseq) = (1000u32, 9000u32);
    put(
        w,
        TcpSegment::new(client, server)
            .seq(cseq)
            .flags(flags(true, false, false)),
    );
    put(
        w,
        TcpSegment::new(server, client)
            .seq(sseq)
            .ack(cseq + 1)
            .flags(flags(true, true, false)),
    );
    cseq += 1;
    sseq += 1;
    for (req, resp) in exchanges {
        for piece in req.chunks(1400) {
            put(
                w,
                TcpSegment::new(client, server)
                    .seq(cseq)
                    .ack(sseq)
                    .payload(piece),
            );
            cseq += piece.len() as u32;
        }
        for piece in resp.chunks(1400) {
            put(
                w,
                TcpSegment::new(server, client)
                    .seq(sseq)
                    .ack(cseq)
                    .payload(piece),
            );
            sseq += piece.len() as u32;
        }
    }
    put(
        w,
        TcpSegment::new(client, server)
            .seq(cseq)
            .ack(sseq)
            .flags(flags(false, true, true)),
    );
    put(
        w,
        TcpSegment::new(server, client)
            .seq(sseq)
            .ack(cseq + 1)
            .flags(flags(false, true, true)),
    );
}

#[test]
fn skipping_response_bodies_by_media_type_changes_no_alert() {
    use shadowmcp_capture::writer::PcapWriter;
    use shadowmcp_capture::LinkType;
    use std::io::Write;
    let gzip = |data: &[u8]| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    };
    let post = |body: &str| {
        format!(
            "POST /mcp HTTP/1.1\r\nHost: tools.shadow.test\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    };
    let answer = |ct: &str, body: &[u8]| {
        let gz = gzip(body);
        let mut r = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: {ct}\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
            gz.len()
        )
        .into_bytes();
        r.extend_from_slice(&gz);
        r
    };
    let init = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"agent","version":"1"}}}"#;
    let init_result = br#"{"jsonrpc":"2.0","id":0,"result":{"protocolVersion":"2025-06-18","capabilities":{"tools":{}},"serverInfo":{"name":"shadow","version":"2"}}}"#;
    let call = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"/etc/passwd"}}}"#;
    let call_result =
        br#"{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"root:x:0:0"}]}}"#;
    let page = b"<html><body>docs: {\"jsonrpc\":\"2.0\",\"method\":\"tools/list\"}</body></html>"
        .repeat(50);

    let dir = std::env::temp_dir().join(format!("shadowmcp-mislabel-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pcap = dir.join("mislabelled.pcap");
    let mut w = PcapWriter::new(std::fs::File::create(&pcap).unwrap(), LinkType::ETHERNET).unwrap();
    let server: std::net::SocketAddr = "198.51.100.7:80".parse().unwrap();
    // A shadow server that labels its answers as pages, one that labels
    // them correctly, and a docs page quoting MCP in a gzip HTML answer.
    for (i, ct) in ["text/html", "application/json", "image/png"]
        .into_iter()
        .enumerate()
    {
        let client = std::net::SocketAddr::from(([10, 1, 0, i as u8 + 1], 40_000 + i as u16));
        write_connection(
            &mut w,
            client,
            server,
            &[
                (post(init), answer(ct, init_result)),
                (post(call), answer(ct, call_result)),
            ],
            1_700_000_000_000_000_000 + i as i64 * 1_000_000,
        );
    }
    let docs_client: std::net::SocketAddr = "10.1.0.9:41000".parse().unwrap();
    let docs_server: std::net::SocketAddr = "203.0.113.5:80".parse().unwrap();
    let get = b"GET /docs/mcp HTTP/1.1\r\nHost: docs.example\r\n\r\n".to_vec();
    write_connection(
        &mut w,
        docs_client,
        docs_server,
        &[(get, answer("text/html; charset=utf-8", &page))],
        1_700_000_010_000_000_000,
    );
    drop(w);

    let mut captures: Vec<String> = vec![pcap.to_str().unwrap().to_string()];
    for dir in ["real", "mcp", "decoys"] {
        for e in std::fs::read_dir(root().join("fixtures/pcap").join(dir)).unwrap() {
            let name = e.unwrap().path().to_str().unwrap().to_string();
            if name.ends_with(".pcap") || name.ends_with(".pcapng") {
                captures.push(name);
            }
        }
    }
    captures.sort();
    let scan = |extra: &[&str]| {
        let mut args = vec!["scan", "-q", "--sort"];
        args.extend_from_slice(extra);
        args.extend(captures.iter().map(String::as_str));
        let o = run(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        json_lines(&o)
    };
    let fast = scan(&[]);
    let full = scan(&["--inspect-all-bodies"]);
    std::fs::remove_dir_all(&dir).ok();
    let (ours, fixtures): (Vec<_>, Vec<_>) = fast.iter().partition(|e| {
        e["mcp"]["input"]
            .as_str()
            .unwrap()
            .ends_with("mislabelled.pcap")
    });
    let (ours_full, fixtures_full): (Vec<_>, Vec<_>) = full.iter().partition(|e| {
        e["mcp"]["input"]
            .as_str()
            .unwrap()
            .ends_with("mislabelled.pcap")
    });
    // Real software labels its bodies: nothing changes on the fixtures.
    assert!(fixtures.len() > 100, "{} alerts", fixtures.len());
    assert_eq!(fixtures, fixtures_full);
    // Every request of the three shadow sessions alerts with the same
    // verdict either way (a mislabelled answer only loses the details it
    // would have added); the docs page alerts in neither.
    let verdicts = |alerts: &[&serde_json::Value]| -> Vec<String> {
        alerts
            .iter()
            .map(|e| {
                let m = &e["mcp"];
                format!(
                    "{} {} {} {} {} {} {}",
                    e["flow_id"],
                    m["exchange_id"],
                    e["alert"]["signature_id"],
                    m["verdict"],
                    m["confidence"],
                    m["methods"],
                    m["tools_called"]
                )
            })
            .collect()
    };
    assert_eq!(ours.len(), 6, "{ours:?}");
    assert!(ours.iter().all(|e| e["dest_ip"] == "198.51.100.7"));
    assert_eq!(verdicts(&ours), verdicts(&ours_full));
    // The correctly labelled session keeps everything.
    let labelled = |alerts: &[&serde_json::Value]| -> Vec<String> {
        alerts
            .iter()
            .filter(|e| e["http"]["http_content_type"] == "application/json")
            .map(|e| e.to_string())
            .collect()
    };
    assert_eq!(labelled(&ours).len(), 2);
    assert_eq!(labelled(&ours), labelled(&ours_full));
}

#[test]
fn key_logs_decrypt_tls_and_bad_ones_are_reported() {
    let pcap = fixture("pcap/tls/curl-h2-tls.pcap");
    let keys = fixture("pcap/tls/curl-h2-tls.keys");
    // Without keys: the handshake only (SNI, TLS version), no HTTP.
    let o = run(&["scan", "--all", &pcap]);
    let events = json_lines(&o);
    assert_eq!(events.len(), 1, "{}", stderr(&o));
    assert_eq!(events[0]["app_proto"], "tls");
    assert_eq!(events[0]["tls"]["sni"], "mcp.shadow-vendor.test");
    assert!(stderr(&o).contains("missing_keys"), "{}", stderr(&o));
    // With them: the HTTP/2 exchange, alerted on its content.
    let o = run(&["scan", "--keylog", &keys, &pcap]);
    let events = json_lines(&o);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["app_proto"], "http2");
    assert_eq!(events[0]["mcp"]["confidence"], "high");
    // A key log with bad lines: warned about and skipped, the good ones used.
    let dir = std::env::temp_dir().join(format!("shadowmcp-keylog-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mixed = dir.join("mixed.keys");
    let mut text = String::from("CLIENT_RANDOM zz not-hex\nGARBAGE\n");
    text.push_str(&std::fs::read_to_string(&keys).unwrap());
    std::fs::write(&mixed, text).unwrap();
    let o = run(&["scan", "--keylog", mixed.to_str().unwrap(), &pcap]);
    assert_eq!(json_lines(&o).len(), 1);
    assert!(stderr(&o).contains("key log line 1"), "{}", stderr(&o));
    // An unreadable key log is a one-line error, exit 2.
    let o = run(&[
        "scan",
        "--keylog",
        dir.join("none").to_str().unwrap(),
        &pcap,
    ]);
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("cannot read key log"));
}

#[test]
fn metrics_count_tls_and_http2() {
    let dir = std::env::temp_dir().join(format!("shadowmcp-tlsmetrics-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let prom = dir.join("m.prom");
    let pcap = fixture("pcap/tls/py-streamable-h2.pcap");
    let o = run(&[
        "scan",
        "-q",
        "--metrics-file",
        prom.to_str().unwrap(),
        &pcap,
    ]);
    assert!(o.status.success());
    let without = std::fs::read_to_string(&prom).unwrap();
    let keys = fixture("pcap/tls/py-streamable-h2.keys");
    let o = run(&[
        "scan",
        "-q",
        "--keylog",
        &keys,
        "--metrics-file",
        prom.to_str().unwrap(),
        &pcap,
    ]);
    assert!(o.status.success());
    let with = std::fs::read_to_string(&prom).unwrap();
    std::fs::remove_dir_all(&dir).ok();
    assert!(
        without.contains("shadowmcp_parse_errors_total{kind=\"missing_keys\",layer=\"tls\"}"),
        "{without}"
    );
    assert!(without.contains("shadowmcp_drops_total{reason=\"tls_not_decrypted\"}"));
    assert!(with.contains("shadowmcp_exchanges_total 10"), "{with}");
    assert!(!with.contains("missing_keys"));
}

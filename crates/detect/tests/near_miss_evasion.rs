//! Traffic that is not MCP must not be reported (mcp-facts.md §d), and the
//! evasions of Cloudflare's public regexes (§a.8) must still be caught.

mod common;

use common::*;
use shadowmcp_detect::{transport, Confidence, DetectConfig, Detector};
use shadowmcp_exchange::Exchange;
use shadowmcp_rules::RulePack;

fn assert_not_mcp(name: &str, ex: &shadowmcp_exchange::Exchange) {
    let d = inspect(ex);
    assert!(
        !d.is_mcp(),
        "{name}: {:?} (signals {:?})",
        d.matches,
        d.signals
    );
    assert!(d.tools_called.is_empty() && d.transport.is_none(), "{name}");
}

#[test]
fn near_miss_json_rpc_bodies() {
    let cases = [
        (
            "ethereum",
            "eth.example",
            "/",
            r#"{"jsonrpc":"2.0","method":"eth_blockNumber","params":[],"id":1}"#,
        ),
        (
            "ethereum call",
            "rpc.example",
            "/v1/key",
            r#"{"jsonrpc":"2.0","method":"eth_call","params":[{"to":"0x1"},"latest"],"id":7}"#,
        ),
        (
            "lsp initialize",
            "lsp.example",
            "/rpc",
            r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"processId":42,"clientInfo":{"name":"vscode","version":"1.90"},"rootUri":"file:///src","capabilities":{"textDocument":{}},"workspaceFolders":null}}"#,
        ),
        (
            "acp initialize",
            "agent.example",
            "/acp",
            r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":1,"clientCapabilities":{"fs":{"readTextFile":true,"writeTextFile":true},"terminal":true},"clientInfo":{"name":"my-client","title":"My Client","version":"1.0.0"}}}"#,
        ),
        (
            "acp prompt",
            "agent.example",
            "/acp",
            r#"{"jsonrpc":"2.0","id":3,"method":"session/prompt","params":{"sessionId":"s1","prompt":[{"type":"text","text":"hi"}]}}"#,
        ),
        (
            "a2a send",
            "agent.example",
            "/a2a",
            r#"{"jsonrpc":"2.0","id":1,"method":"message/send","params":{"message":{"role":"user","parts":[{"kind":"text","text":"tell me a joke"}],"messageId":"9229e770"},"metadata":{}}}"#,
        ),
        (
            "a2a tasks/get",
            "agent.example",
            "/a2a",
            r#"{"jsonrpc":"2.0","id":2,"method":"tasks/get","params":{"id":"task-1","historyLength":10}}"#,
        ),
        (
            "a2a v1",
            "agent.example",
            "/a2a",
            r#"{"jsonrpc":"2.0","id":2,"method":"GetTask","params":{"id":"task-uuid","historyLength":10}}"#,
        ),
        (
            "aria2",
            "localhost:6800",
            "/jsonrpc",
            r#"{"jsonrpc":"2.0","method":"aria2.addUri","id":"1","params":[["http://x.example/f"],{}]}"#,
        ),
        (
            "kodi",
            "kodi.local",
            "/jsonrpc",
            r#"{"jsonrpc":"2.0","method":"Player.GetActivePlayers","id":1}"#,
        ),
    ];
    for (name, host, path, body) in cases {
        assert_not_mcp(name, &post(host, path, body));
    }
    // Bitcoin Core: JSON-RPC 1.0 framing, text/plain.
    let btc = exchange(
        Some(req(
            "POST",
            "localhost:8332",
            "/",
            &[("Content-Type", "text/plain;")],
            br#"{"jsonrpc": "1.0", "id": "curltest", "method": "getblockchaininfo", "params": []}"#,
        )),
        Some(resp(
            200,
            &[JSON],
            br#"{"result":{"chain":"main","blocks":1},"error":null,"id":"curltest"}"#,
        )),
    );
    assert_not_mcp("bitcoin", &btc);
}

#[test]
fn near_miss_initialize_rule_is_suppressed_not_silently_lost() {
    let lsp = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"processId":42,"rootUri":"file:///src","capabilities":{}}}"#;
    let d = inspect(&post("lsp.example", "/mcp", lsp));
    assert!(!d.is_mcp());
    assert_eq!(
        d.suppressed.iter().map(|m| m.id).collect::<Vec<_>>(),
        [1010]
    );
    assert_eq!(d.counter_evidence, Some("near_miss_lsp"));
}

#[test]
fn near_miss_llm_tool_calling() {
    let openai = r#"{"model":"gpt-4o","messages":[{"role":"user","content":"weather?"}],"tools":[{"type":"function","function":{"name":"get_weather","description":"d","parameters":{"type":"object","properties":{}}}}]}"#;
    let reply = r#"{"choices":[{"message":{"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Oslo\"}"}}]},"finish_reason":"tool_calls"}]}"#;
    let ex = exchange(
        Some(req(
            "POST",
            "api.openai.com",
            "/v1/chat/completions",
            &[JSON],
            openai.as_bytes(),
        )),
        Some(resp(200, &[JSON], reply.as_bytes())),
    );
    assert_not_mcp("openai chat tools", &ex);
    let anthropic = r#"{"model":"claude","max_tokens":10,"tools":[{"name":"get_weather","description":"d","input_schema":{"type":"object"}}],"messages":[{"role":"user","content":"hi"}]}"#;
    let reply = r#"{"content":[{"type":"tool_use","id":"t","name":"get_weather","input":{"city":"Oslo"}}],"stop_reason":"tool_use"}"#;
    let ex = exchange(
        Some(req(
            "POST",
            "api.anthropic.com",
            "/v1/messages",
            &[JSON, ("anthropic-version", "2023-06-01")],
            anthropic.as_bytes(),
        )),
        Some(resp(200, &[JSON], reply.as_bytes())),
    );
    assert_not_mcp("anthropic tools", &ex);
}

#[test]
fn docs_pages_quoting_mcp_json_are_not_mcp() {
    let quoted = r#"<p>Send <code>{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x"}}</code> with "protocolVersion": "2025-06-18", "serverInfo" and "tools": [ "inputSchema" ]</p>"#;
    let html = exchange(
        Some(req("GET", "docs.example.com", "/docs/mcp", &[], b"")),
        Some(resp(
            200,
            &[("Content-Type", "text/html; charset=utf-8")],
            format!("<html><body>{quoted}</body></html>").as_bytes(),
        )),
    );
    let d = inspect(&html);
    assert!(!d.is_mcp(), "{:?}", d.matches);
    assert!(d.suppressed.iter().any(|m| m.id == 1010));
    let md = exchange(
        Some(req("GET", "raw.example.com", "/spec.md", &[], b"")),
        Some(resp(
            200,
            &[("Content-Type", "text/markdown")],
            format!("# MCP\n```json\n{quoted}\n```\n").as_bytes(),
        )),
    );
    assert_not_mcp("markdown", &md);
    // Quoted MCP JSON uploaded as a form field is not an MCP request either.
    let form = exchange(
        Some(req(
            "POST",
            "paste.example",
            "/new",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            br#"text={"jsonrpc":"2.0","method":"tools/call"}"#,
        )),
        None,
    );
    assert_not_mcp("form", &form);
}

#[test]
fn rest_api_on_an_mcp_host_is_not_mcp() {
    let ex = exchange(
        Some(req("GET", "mcp.example.com", "/api/v1/users", &[], b"")),
        Some(resp(200, &[JSON], br#"[{"id":1,"name":"ann"}]"#)),
    );
    let d = inspect(&ex);
    assert!(!d.is_mcp());
    assert_eq!(d.counter_evidence, Some("non_mcp_payload"));
    assert_eq!(d.suppressed.len(), 1);
    // Without a response body there is nothing against it: host-only low.
    let d = inspect(&exchange(
        Some(req("GET", "mcp.example.com", "/api/v1/users", &[], b"")),
        None,
    ));
    assert_eq!(d.confidence, Some(Confidence::Low));
}

#[test]
fn other_sse_feed_on_sse_path_is_not_mcp() {
    let ex = exchange(
        Some(req(
            "GET",
            "stocks.example",
            "/sse",
            &[("Accept", "text/event-stream")],
            b"",
        )),
        Some(sse_resp(vec![
            event(Some("tick"), r#"{"sym":"ACME","price":12.5}"#),
            event(None, "heartbeat"),
        ])),
    );
    assert_not_mcp("stock feed", &ex);
    // Later events of the same feed are not MCP either.
    let d = detector().inspect_sse(&ex, &[event(None, r#"{"sym":"X","price":1}"#)]);
    assert!(!d.is_mcp());
    // An open stream is first inspected with no events (path-only: low);
    // the events that follow show it is not MCP, and merging says so.
    let head = exchange(
        Some(req(
            "GET",
            "stocks.example",
            "/sse",
            &[("Accept", "text/event-stream")],
            b"",
        )),
        Some(sse_resp(vec![])),
    );
    let mut d = detector().inspect(&head);
    assert_eq!(d.confidence, Some(Confidence::Low));
    d.merge(detector().inspect_sse(
        &head,
        &[event(Some("tick"), r#"{"sym":"ACME","price":12.5}"#)],
    ));
    assert!(!d.is_mcp());
    assert_eq!(d.counter_evidence, Some("non_mcp_payload"));
    assert_eq!(
        d.suppressed.iter().map(|m| m.id).collect::<Vec<_>>(),
        [1011]
    );
}

#[test]
fn evasions_of_literal_regexes_are_caught() {
    let bodies = [
        ("escaped slash", r#"{"jsonrpc":"2.0","id":1,"method":"tools\/call","params":{"name":"read_file"}}"#.to_string()),
        ("unicode escape", r#"{"jsonrpc":"2.0","id":1,"m\u0065thod":"\u0074ools/call","params":{"name":"read_file"}}"#.to_string()),
        ("whitespace", "{\"jsonrpc\" : \"2.0\", \"id\":1,\n  \"method\"      \n\n  :     \n\t \"tools/call\",\"params\":{\"name\":\"read_file\"}}".to_string()),
        (
            "method after a large params",
            format!(
                r#"{{"params":{{"name":"read_file","arguments":{{"pad":"{}"}}}},"jsonrpc":"2.0","id":1,"method":"tools/call"}}"#,
                "A".repeat(2 << 20)
            ),
        ),
    ];
    for (name, body) in bodies {
        // No content type at all: the body's shape selects it.
        let ex = exchange(
            Some(req(
                "POST",
                "internal-tools.company.example",
                "/api/assistant",
                &[],
                body.as_bytes(),
            )),
            None,
        );
        let d = inspect(&ex);
        assert_eq!(
            d.confidence,
            Some(Confidence::High),
            "{name}: {:?}",
            d.matches
        );
        assert!(d.matches.iter().any(|m| m.id == 3001), "{name}");
        assert_eq!(d.methods, ["tools/call"], "{name}");
        assert_eq!(d.tools_called[0].name, "read_file", "{name}");
    }
}

#[test]
fn gzip_decoded_bodies_are_inspected() {
    // Sources decode Content-Encoding; the detector sees the decoded bytes.
    let mut r = req(
        "POST",
        "h.example",
        "/rpc",
        &[JSON, ("Content-Encoding", "gzip")],
        br#"{"jsonrpc":"2.0","id":5,"method":"prompts/get","params":{"name":"p"}}"#,
    );
    r.body.encodings = vec!["gzip".into()];
    r.body.wire_len = 60;
    let d = inspect(&exchange(Some(r), None));
    assert_eq!(d.confidence, Some(Confidence::High));
}

#[test]
fn every_spec_era_is_detected() {
    for version in ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"] {
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"initialize","params":{{"protocolVersion":"{version}","capabilities":{{}},"clientInfo":{{"name":"c","version":"1"}}}}}}"#
        );
        let d = inspect(&post("h.example", "/x", &body));
        assert_eq!(d.confidence, Some(Confidence::High), "{version}");
        assert_eq!(d.protocol_version.as_deref(), Some(version));
    }
    // 2026-07-28: no initialize; server/discover with _meta.
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#;
    let d = inspect(&post("h.example", "/x", body));
    assert_eq!(d.confidence, Some(Confidence::High));
    assert_eq!(d.protocol_version.as_deref(), Some("2026-07-28"));
    // 2025-03-26 batch.
    let batch = r#"[{"jsonrpc":"2.0","id":1,"method":"tools/list"},{"jsonrpc":"2.0","method":"notifications/initialized"}]"#;
    let d = inspect(&post("h.example", "/x", batch));
    assert_eq!(d.confidence, Some(Confidence::High));
    assert_eq!(d.methods, ["tools/list", "notifications/initialized"]);
}

#[test]
fn legacy_transport_session_across_exchange_and_updates() {
    let ex = exchange(
        Some(req(
            "GET",
            "h.example",
            "/sse",
            &[("Accept", "text/event-stream")],
            b"",
        )),
        Some(sse_resp(vec![event(
            Some("endpoint"),
            "/messages/?session_id=9a0b",
        )])),
    );
    let mut d = inspect(&ex);
    assert_eq!(d.transport, Some(transport::LEGACY_SSE));
    let later = detector().inspect_sse(
        &ex,
        &[event(
            Some("message"),
            r#"{"jsonrpc":"2.0","id":0,"result":{"protocolVersion":"2024-11-05","capabilities":{},"serverInfo":{"name":"srv","version":"2"}}}"#,
        )],
    );
    assert!(later.matches.iter().any(|m| m.id == 4001));
    d.merge(later);
    assert_eq!(d.session_id.as_deref(), Some("9a0b"));
    assert_eq!(d.server_info.as_ref().map(|s| s.name.as_str()), Some("srv"));
    assert_eq!(d.confidence, Some(Confidence::High));
    assert_eq!(d.transport, Some(transport::LEGACY_SSE));
}

#[test]
fn adversarial_5mb_bodies_scan_without_blowup() {
    let det = detector();
    let five = 5 << 20;
    // 1. Endless near-matches of the method regex.
    let mut near = Vec::with_capacity(five + 64);
    near.extend_from_slice(b"{\"x\":\"");
    while near.len() < five {
        near.extend_from_slice(b"\"method\"  :   \"tools/ca");
    }
    let d = det.inspect(&exchange(
        Some(req("POST", "h.example", "/x", &[JSON], &near)),
        None,
    ));
    assert!(!d.is_mcp(), "{:?}", d.matches);
    assert!(d.scan_truncated);
    // 2. Deep nesting.
    let deep = vec![b'['; five];
    let d = det.inspect(&exchange(
        Some(req("POST", "h.example", "/x", &[JSON], &deep)),
        None,
    ));
    assert!(!d.is_mcp());
    // 3. Whitespace runs between key and value.
    let mut ws = b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\"".to_vec();
    ws.resize(five, b' ');
    ws.extend_from_slice(b":\"tools/call\"}");
    let d = det.inspect(&exchange(
        Some(req("POST", "h.example", "/x", &[JSON], &ws)),
        None,
    ));
    assert!(d.scan_truncated);
    // Past the 1 MiB scan cap the raw regex cannot see it, the 4 MiB
    // analyzer cap cuts it too: nothing is claimed.
    assert!(!d.matches.iter().any(|m| m.id == 3101));
    // 4. The same in SSE events: many events, each large.
    let ev: Vec<_> = (0..64)
        .map(|_| event(None, &"\"inputSchema\"".repeat(8192)))
        .collect();
    let d = det.inspect_sse(
        &exchange(Some(req("GET", "h.example", "/x", &[], b"")), None),
        &ev,
    );
    assert!(!d.is_mcp());
    assert!(d.scan_truncated);
    // 5. A real MCP message at the start of 5 MB still counts.
    let mut real =
        br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{"p":""#
            .to_vec();
    real.resize(five, b'a');
    let d = det.inspect(&exchange(
        Some(req("POST", "h.example", "/x", &[JSON], &real)),
        None,
    ));
    assert!(d.matches.iter().any(|m| m.id == 3101));
    assert!(d.is_mcp());
}

#[test]
fn scan_caps_are_configurable() {
    let config = DetectConfig {
        max_body_scan: 64,
        ..DetectConfig::default()
    };
    let det = Detector::new(&RulePack::default_pack(), config).unwrap();
    // The raw rule needs the method within the first 64 bytes.
    let pad = "x".repeat(100);
    let body = format!(r#"{{"pad":"{pad}","jsonrpc":"2.0","method":"tools/list","id":1}}"#);
    let d = det.inspect(&post("h.example", "/x", &body));
    assert!(!d.matches.iter().any(|m| m.id == 3101));
    // The analyzer has its own limit and still parses the whole body.
    assert!(d.matches.iter().any(|m| m.id == 3001));
    assert!(d.scan_truncated);
}

#[test]
fn large_bodies_are_parsed_only_when_they_can_hold_mcp() {
    let pad = r#"{"id":12345,"name":"some user","tags":["a","b"]},"#.repeat(3000);
    // A large REST answer with no marker: not parsed (no analyzer signals), still judged.
    let rest = format!("[{pad}{{}}]");
    let ex = exchange(
        Some(req("GET", "mcp.example.com", "/v1/users", &[], b"")),
        Some(resp(200, &[JSON], rest.as_bytes())),
    );
    let d = inspect(&ex);
    assert!(!d.is_mcp());
    assert_eq!(d.counter_evidence, Some("non_mcp_payload"));
    assert!(d.signals.is_empty(), "{:?}", d.signals);
    // Escapes can spell "jsonrpc" without the literal: such a body is parsed.
    let escaped = format!(
        r#"{{"pad":[{pad}{{}}],"json\u0072pc":"2.0","id":1,"\u006dethod":"tools/call","params":{{"name":"x"}}}}"#
    );
    let d = inspect(&post("h.example", "/x", &escaped));
    assert_eq!(d.confidence, Some(Confidence::High), "{:?}", d.matches);
    // Provider-side MCP in a large LLM request is parsed too ("mcp" literal).
    let provider = format!(
        r#"{{"model":"m","messages":[{pad}{{}}],"mcp_servers":[{{"type":"url","url":"https://mcp.x.example/mcp","name":"x"}}]}}"#
    );
    let d = inspect(&post("api.anthropic.com", "/v1/messages", &provider));
    assert_eq!(d.provider_mcp_servers, ["https://mcp.x.example/mcp"]);
    // Only parsed payloads feed json_pointer; raising the threshold parses
    // the plain body again.
    let text = "format = 1\n[[rule]]\nid = 9\nname = \"n\"\nconfidence = \"high\"\nseverity = 1\ncategory = \"t\"\ncondition = { field = \"json_pointer\", pointer = \"/0/id\", equals = \"12345\" }\n";
    let pack = RulePack::parse_str("t.toml", text).unwrap();
    let default = Detector::new(&pack, DetectConfig::default()).unwrap();
    assert!(!default.inspect(&ex).is_mcp());
    let raised = Detector::new(
        &pack,
        DetectConfig {
            always_analyze_below: 1 << 20,
            ..DetectConfig::default()
        },
    )
    .unwrap();
    assert!(raised.inspect(&ex).is_mcp());
}

#[test]
fn skipping_bodies_that_cannot_hold_json_rpc_changes_no_verdict() {
    // The shortcut skips non-JSON bodies without `jsonrpc` or `\u`. With it
    // on and off, every detection is the same: it changes cost, not verdicts.
    let full = Detector::new(
        &RulePack::default_pack(),
        DetectConfig {
            skip_non_jsonrpc_bodies: false,
            ..DetectConfig::default()
        },
    )
    .unwrap();
    let call = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x"}}"#;
    let escaped =
        r#"{"json\u0072pc":"2.0","id":1,"\u006dethod":"tools/call","params":{"name":"x"}}"#;
    let gz_like = [0x1f_u8, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0x4b, 0x4c];
    let mut cases: Vec<(String, Exchange)> = Vec::new();
    for ct in [
        "text/html",
        "text/plain",
        "application/octet-stream",
        "application/x-www-form-urlencoded",
    ] {
        for body in [
            call.as_bytes(),
            escaped.as_bytes(),
            format!("payload={call}").as_bytes(),
            &gz_like[..],
            b"<p>tools/call method</p>",
        ] {
            cases.push((
                format!("{ct} request {:?}", String::from_utf8_lossy(body)),
                exchange(
                    Some(req(
                        "POST",
                        "mcp.example.com",
                        "/mcp",
                        &[("Content-Type", ct)],
                        body,
                    )),
                    None,
                ),
            ));
            cases.push((
                format!("{ct} response {:?}", String::from_utf8_lossy(body)),
                exchange(
                    Some(req("GET", "mcp.example.com", "/docs", &[], b"")),
                    Some(resp(200, &[("Content-Type", ct)], body)),
                ),
            ));
        }
    }
    let mut mcp = 0;
    for (name, ex) in &cases {
        let (fast, slow) = (inspect(ex), full.inspect(ex));
        assert_eq!(fast.confidence, slow.confidence, "{name}");
        assert_eq!(ids(&fast), ids(&slow), "{name}");
        assert_eq!(fast.methods, slow.methods, "{name}");
        mcp += usize::from(fast.is_mcp());
    }
    // MCP bodies under a wrong label are still found (JSON-looking bodies and
    // escaped keys are parsed whatever the content type says).
    assert!(mcp >= 8, "{mcp} of {} cases found MCP", cases.len());
}

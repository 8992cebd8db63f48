//! Each default-pack rule: at least one exchange it must match and, where
//! meaningful, a close one it must not.

mod common;

use common::*;
use shadowmcp_detect::{transport, Confidence, DetectConfig, Detector, JsonRpcLimits};
use shadowmcp_rules::RulePack;

#[test]
fn every_default_rule_is_covered_by_a_positive_test() {
    // Keep this list in step with the tests below: a new rule needs a test.
    let tested = [
        1001, 1002, 1003, 1004, 1010, 1011, 1012, 1020, 1021, 2001, 2002, 2003, 2004, 2005, 2010,
        2011, 3001, 3002, 3003, 3004, 3101, 3102, 3103, 4001, 4002, 4003, 4004, 4101, 4102, 5001,
        5002, 5101, 5102, 5103,
    ];
    let mut ids: Vec<u32> = RulePack::default_pack()
        .rules()
        .iter()
        .map(|r| r.id)
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, tested);
}

// ---- 10xx host and path -------------------------------------------------------

#[test]
fn r1001_mcp_host_label() {
    let d = inspect(&exchange(
        Some(req("GET", "mcp.datadog.com", "/v1/x", &[], b"")),
        None,
    ));
    assert_eq!(ids(&d), [1001]);
    assert_eq!(d.confidence, Some(Confidence::Low));
    assert_eq!(d.category.as_deref(), Some("mcp-host"));
    assert_eq!(d.transport, Some(transport::UNKNOWN));
    for host in [
        "api.mcp-tools.io:8443",
        "acme-mcp.example.org",
        "MCP.Example.com",
    ] {
        let d = inspect(&exchange(Some(req("GET", host, "/x", &[], b"")), None));
        assert!(has(&d, 1001), "{host}");
    }
    for host in ["mcpherson.edu", "smcp.example.com", "example.com"] {
        let d = inspect(&exchange(Some(req("GET", host, "/x", &[], b"")), None));
        assert!(!d.is_mcp(), "{host}: {d:?}");
    }
}

#[test]
fn r1004_tls_server_name_of_a_known_server_when_nothing_was_decrypted() {
    use shadowmcp_exchange::TlsInfo;
    let tls = |sni: &str| TlsInfo {
        sni: Some(sni.into()),
        version: Some("TLSv1.3".into()),
        ..TlsInfo::default()
    };
    // Handshake only: the SNI names a catalog host.
    let mut ex = exchange(None, None);
    ex.tls = Some(tls("mcp.asana.com"));
    let d = inspect(&ex);
    assert!(has(&d, 1004) && has(&d, 1002), "{:?}", ids(&d));
    assert_eq!(d.confidence, Some(Confidence::Medium));
    // Any other name: nothing.
    ex.tls = Some(tls("www.example.com"));
    assert!(!inspect(&ex).is_mcp());
    // No SNI (or ECH without a catalog public name): nothing.
    ex.tls = Some(TlsInfo::default());
    assert!(!inspect(&ex).is_mcp());
    // Decrypted: judged on the HTTP exchange, as plaintext would be.
    let mut ex = exchange(
        Some(req("GET", "mcp.asana.com", "/", &[], b"")),
        Some(resp(
            200,
            &[("Content-Type", "text/html")],
            b"<html></html>",
        )),
    );
    ex.tls = Some(tls("mcp.asana.com"));
    let d = inspect(&ex);
    assert!(!has(&d, 1004), "{:?}", ids(&d));
}

#[test]
fn r1002_r1003_known_server_and_endpoint() {
    // Host only: low.
    let d = inspect(&exchange(
        Some(req("GET", "api.githubcopilot.com", "/chat", &[], b"")),
        None,
    ));
    assert_eq!(ids(&d), [1002]);
    assert_eq!(d.confidence, Some(Confidence::Low));
    // Host and the catalogued path: medium, with the path rule.
    let d = inspect(&exchange(
        Some(req("POST", "api.githubcopilot.com", "/mcp/", &[], b"")),
        None,
    ));
    assert_eq!(ids(&d), [1002, 1003, 1010]);
    assert_eq!(d.confidence, Some(Confidence::Medium));
    assert_eq!(d.category.as_deref(), Some("mcp-known-server"));
    // Root-path servers only match the root.
    let d = inspect(&exchange(
        Some(req("POST", "mcp.stripe.com", "/", &[], b"")),
        None,
    ));
    assert!(has(&d, 1003));
    let d = inspect(&exchange(
        Some(req("POST", "mcp.stripe.com", "/v1/charges", &[], b"")),
        None,
    ));
    assert!(!has(&d, 1003) && has(&d, 1002));
    // Not in the catalog.
    let d = inspect(&exchange(
        Some(req(
            "POST",
            "githubcopilot.com.evil.example",
            "/x",
            &[],
            b"",
        )),
        None,
    ));
    assert!(!d.is_mcp());
}

#[test]
fn r1010_r1011_paths() {
    for p in ["/mcp", "/api/mcp/", "/v2/MCP?x=1"] {
        let d = inspect(&exchange(
            Some(req("POST", "internal.example", p, &[], b"")),
            None,
        ));
        assert_eq!(ids(&d), [1010], "{p}");
        assert_eq!(d.confidence, Some(Confidence::Low));
    }
    for p in ["/sse", "/mcp/sse", "/sse/?token=1"] {
        let d = inspect(&exchange(
            Some(req("GET", "internal.example", p, &[], b"")),
            None,
        ));
        assert_eq!(ids(&d), [1011], "{p}");
    }
    for p in ["/mcpx", "/docs/mcp-guide", "/ssex", "/q?next=/mcp"] {
        let d = inspect(&exchange(
            Some(req("GET", "internal.example", p, &[], b"")),
            None,
        ));
        assert!(!d.is_mcp(), "{p}");
    }
}

#[test]
fn host_and_path_corroborate_to_medium() {
    let d = inspect(&exchange(
        Some(req("POST", "mcp.acme.example", "/mcp", &[], b"")),
        None,
    ));
    assert_eq!(ids(&d), [1001, 1010]);
    assert_eq!(d.confidence, Some(Confidence::Medium));
    // Two host-layer rules alone stay low.
    let d = inspect(&exchange(
        Some(req("GET", "mcp.linear.app", "/other", &[], b"")),
        None,
    ));
    assert_eq!(ids(&d), [1001, 1002]);
    assert_eq!(d.confidence, Some(Confidence::Low));
}

#[test]
fn r1012_legacy_message_endpoint() {
    let body = r#"{"jsonrpc":"2.0","id":3,"method":"ping"}"#;
    let ex = exchange(
        Some(req(
            "POST",
            "tools.example",
            "/messages/?session_id=0f8e2a",
            &[JSON],
            body.as_bytes(),
        )),
        Some(resp(202, &[], b"Accepted")),
    );
    let d = inspect(&ex);
    assert!(has(&d, 1012));
    assert_eq!(d.session_id.as_deref(), Some("0f8e2a"));
    assert_eq!(d.transport, Some(transport::LEGACY_SSE));
    let d = inspect(&exchange(
        Some(req(
            "GET",
            "tools.example",
            "/messages?sessionId=1",
            &[],
            b"",
        )),
        None,
    ));
    assert!(!has(&d, 1012));
}

#[test]
fn r1020_r1021_oauth_discovery() {
    let d = inspect(&exchange(
        Some(req(
            "GET",
            "api.example",
            "/.well-known/oauth-protected-resource/mcp",
            &[],
            b"",
        )),
        None,
    ));
    // Path-only evidence, however many path rules: low.
    assert_eq!(ids(&d), [1010, 1020]);
    assert_eq!(d.confidence, Some(Confidence::Low));
    let d = inspect(&exchange(
        Some(req(
            "GET",
            "api.example",
            "/.well-known/oauth-protected-resource",
            &[],
            b"",
        )),
        None,
    ));
    assert_eq!(ids(&d), [1020]);
    assert_eq!(d.category.as_deref(), Some("mcp-oauth"));
    let ex = exchange(
        Some(req("POST", "mcp.example.com", "/mcp", &[], b"")),
        Some(resp(
            401,
            &[(
                "WWW-Authenticate",
                r#"Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource""#,
            )],
            br#"{"error":"invalid_token"}"#,
        )),
    );
    let d = inspect(&ex);
    assert_eq!(ids(&d), [1001, 1010, 1021]);
    assert_eq!(d.confidence, Some(Confidence::Medium));
    let plain = exchange(
        Some(req("GET", "api.example", "/x", &[], b"")),
        Some(resp(
            401,
            &[("WWW-Authenticate", "Bearer realm=\"x\"")],
            b"",
        )),
    );
    assert!(!inspect(&plain).is_mcp());
}

// ---- 20xx headers --------------------------------------------------------------

#[test]
fn r2001_protocol_version_header() {
    let ex = exchange(
        Some(req(
            "GET",
            "h.example",
            "/x",
            &[("MCP-Protocol-Version", "2025-06-18")],
            b"",
        )),
        None,
    );
    let d = inspect(&ex);
    assert_eq!(ids(&d), [2001]);
    assert_eq!(d.confidence, Some(Confidence::High));
    assert_eq!(d.protocol_version.as_deref(), Some("2025-06-18"));
    assert_eq!(d.transport, Some(transport::STREAMABLE_HTTP));
    let ex = exchange(
        Some(req(
            "GET",
            "h.example",
            "/x",
            &[("MCP-Protocol-Version", "1.0")],
            b"",
        )),
        None,
    );
    assert!(!inspect(&ex).is_mcp());
}

#[test]
fn r2002_session_header_on_either_side() {
    let ex = exchange(
        Some(req(
            "DELETE",
            "h.example",
            "/x",
            &[("Mcp-Session-Id", "abc123")],
            b"",
        )),
        None,
    );
    let d = inspect(&ex);
    assert_eq!(ids(&d), [2002]);
    assert_eq!(d.confidence, Some(Confidence::Medium));
    assert_eq!(d.session_id.as_deref(), Some("abc123"));
    let ex = exchange(
        Some(req("POST", "h.example", "/x", &[], b"")),
        Some(resp(200, &[("mcp-session-id", "s-9")], b"")),
    );
    let d = inspect(&ex);
    assert!(has(&d, 2002));
    assert_eq!(d.session_id.as_deref(), Some("s-9"));
}

#[test]
fn r2003_r2004_stateless_headers() {
    let ex = exchange(
        Some(req(
            "POST",
            "h.example",
            "/x",
            &[("Mcp-Method", "tools/call"), ("Mcp-Name", "get_weather")],
            b"",
        )),
        None,
    );
    assert_eq!(ids(&inspect(&ex)), [2003, 2004]);
    let ex = exchange(
        Some(req(
            "POST",
            "h.example",
            "/x",
            &[("Mcp-Method", "not a method!")],
            b"",
        )),
        None,
    );
    assert!(!inspect(&ex).is_mcp());
}

#[test]
fn r2005_streamable_accept() {
    let accept = ("Accept", "application/json, text/event-stream");
    let d = inspect(&exchange(
        Some(req("POST", "h.example", "/x", &[accept], b"")),
        None,
    ));
    assert_eq!(ids(&d), [2005]);
    assert_eq!(d.confidence, Some(Confidence::Low));
    let d = inspect(&exchange(
        Some(req("POST", "h.example", "/mcp", &[accept], b"")),
        None,
    ));
    assert_eq!(d.confidence, Some(Confidence::Medium));
    let d = inspect(&exchange(
        Some(req("GET", "h.example", "/x", &[accept], b"")),
        None,
    ));
    assert!(!d.is_mcp());
    let d = inspect(&exchange(
        Some(req(
            "POST",
            "h.example",
            "/x",
            &[("Accept", "text/event-stream")],
            b"",
        )),
        None,
    ));
    assert!(!d.is_mcp());
}

#[test]
fn r2010_r2011_websocket_subprotocol() {
    let up = [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Protocol", "chat, mcp"),
    ];
    let ex = exchange(
        Some(req("GET", "h.example", "/ws", &up, b"")),
        Some(resp(
            101,
            &[("Upgrade", "WebSocket"), ("Sec-WebSocket-Protocol", "mcp")],
            b"",
        )),
    );
    let d = inspect(&ex);
    assert_eq!(ids(&d), [2010, 2011]);
    assert_eq!(d.confidence, Some(Confidence::High));
    assert_eq!(d.category.as_deref(), Some("mcp-websocket"));
    assert_eq!(d.transport, Some(transport::WEBSOCKET));
    let other = [
        ("Upgrade", "websocket"),
        ("Sec-WebSocket-Protocol", "mcpx, graphql-ws"),
    ];
    assert!(!inspect(&exchange(
        Some(req("GET", "h.example", "/ws", &other, b"")),
        None
    ))
    .is_mcp());
}

// ---- 30xx JSON-RPC request bodies ---------------------------------------------------

const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{"roots":{"listChanged":true}},"clientInfo":{"name":"ExampleClient","version":"1.0.0"}}}"#;

#[test]
fn r3001_mcp_method() {
    let d = inspect(&post(
        "h.example",
        "/x",
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
    ));
    assert!(has(&d, 3001) && has(&d, 3101));
    assert_eq!(d.confidence, Some(Confidence::High));
    assert_eq!(d.category.as_deref(), Some("mcp-jsonrpc"));
    assert_eq!(d.methods, ["tools/list"]);
    // Not framed as JSON-RPC 2.0: the analyzer-based rule stays quiet.
    let d = inspect(&post(
        "h.example",
        "/x",
        r#"{"method":"tools/list","id":2}"#,
    ));
    assert!(!has(&d, 3001));
    // Shared task methods are not MCP-only.
    let d = inspect(&post(
        "h.example",
        "/x",
        r#"{"jsonrpc":"2.0","id":2,"method":"tasks/get","params":{"id":"t1"}}"#,
    ));
    assert!(!d.is_mcp(), "{d:?}");
}

#[test]
fn r3002_r3004_r3103_initialize() {
    let d = inspect(&post("h.example", "/x", INIT));
    assert_eq!(ids(&d), [3002, 3004, 3103]);
    assert_eq!(d.confidence, Some(Confidence::High));
    assert_eq!(d.protocol_version.as_deref(), Some("2025-06-18"));
    assert_eq!(
        d.client.as_ref().map(|c| c.name.as_str()),
        Some("ExampleClient")
    );
    // Version not a date (ACP-like integer): no 3002/3103.
    let acp = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":1,"clientCapabilities":{"fs":{"readTextFile":true}},"clientInfo":{"name":"c","version":"1"}}}"#;
    let d = inspect(&post("h.example", "/mcp", acp));
    assert!(!d.is_mcp(), "{d:?}");
    assert_eq!(d.counter_evidence, Some("near_miss_acp"));
    assert!(d.suppressed.iter().any(|m| m.id == 1010));
    // A generic JSON-RPC API's initialize (no MCP params) is not MCP.
    let crm =
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"apiKey":"k","locale":"en"}}"#;
    assert!(!inspect(&post("rpc.crm.example", "/rpc", crm)).is_mcp());
}

#[test]
fn r3102_raw_initialize_when_the_analyzer_cannot_read_the_method() {
    // The analyzer's own cap cuts the body before the method; the raw scan sees it.
    let config = DetectConfig {
        jsonrpc_limits: JsonRpcLimits {
            max_bytes: 16,
            ..JsonRpcLimits::default()
        },
        ..DetectConfig::default()
    };
    let det = Detector::new(&RulePack::default_pack(), config).unwrap();
    let d = det.inspect(&post("h.example", "/x", INIT));
    assert!(has(&d, 3102) && has(&d, 3103), "{:?}", ids(&d));
    assert_eq!(d.confidence, Some(Confidence::Medium));
    // When the analyzer reads the method, the parsed rules decide instead.
    assert!(!has(&inspect(&post("h.example", "/x", INIT)), 3102));
}

#[test]
fn r3003_stateless_meta() {
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_weather","arguments":{"city":"Oslo"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"ExampleClient","version":"1.0.0"},"io.modelcontextprotocol/clientCapabilities":{}}}}"#;
    let ex = exchange(
        Some(req(
            "POST",
            "weather.example",
            "/mcp",
            &[JSON, ("MCP-Protocol-Version", "2026-07-28"), ("Mcp-Method", "tools/call"), ("Mcp-Name", "get_weather")],
            body.as_bytes(),
        )),
        Some(resp(200, &[JSON], br#"{"jsonrpc":"2.0","id":1,"result":{"resultType":"complete","content":[{"type":"text","text":"4C"}],"isError":false}}"#)),
    );
    let d = inspect(&ex);
    for id in [1010, 2001, 2003, 2004, 3001, 3003, 3004, 3101, 3103, 4004] {
        assert!(has(&d, id), "{id}: {:?}", ids(&d));
    }
    assert_eq!(d.protocol_version.as_deref(), Some("2026-07-28"));
    assert_eq!(d.session_id, None);
    assert_eq!(d.tools_called[0].name, "get_weather");
    assert_eq!(d.transport, Some(transport::STREAMABLE_HTTP));
}

#[test]
fn r3101_raw_regex_catches_truncated_body() {
    // Cut by a capture cap in the middle of the params.
    let body =
        r#"{"jsonrpc":"2.0","id":9,"method":"resources/read","params":{"uri":"file:///etc/pass"#;
    let d = inspect(&post("h.example", "/x", body));
    assert!(has(&d, 3101), "{:?}", ids(&d));
    assert!(d.is_mcp());
}

// ---- 40xx responses ------------------------------------------------------------------

#[test]
fn r4001_r4101_initialize_result() {
    let result = r#"{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-06-18","capabilities":{"tools":{"listChanged":true}},"serverInfo":{"name":"ExampleServer","version":"1.0.0"}}}"#;
    let ex = exchange(
        Some(req("POST", "h.example", "/x", &[JSON], INIT.as_bytes())),
        Some(resp(
            200,
            &[JSON, ("Mcp-Session-Id", "1868a90c")],
            result.as_bytes(),
        )),
    );
    let d = inspect(&ex);
    assert!(has(&d, 4001) && has(&d, 4101) && has(&d, 2002));
    assert_eq!(
        d.server_info.as_ref().map(|s| s.name.as_str()),
        Some("ExampleServer")
    );
    assert_eq!(d.session_id.as_deref(), Some("1868a90c"));
    // The raw rule needs both serverInfo and a dated version.
    let lsp_result = r#"{"jsonrpc":"2.0","id":1,"result":{"capabilities":{"hoverProvider":true},"serverInfo":{"name":"rust-analyzer"}}}"#;
    let d = inspect(&exchange(
        None,
        Some(resp(200, &[JSON], lsp_result.as_bytes())),
    ));
    assert!(!d.is_mcp(), "{d:?}");
}

#[test]
fn r4002_r4102_tools_list_in_sse() {
    let data = r#"{"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"get_weather","description":"d","inputSchema":{"type":"object","properties":{}}}]}}"#;
    let ex = exchange(
        Some(req(
            "POST",
            "h.example",
            "/x",
            &[JSON],
            br#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
        )),
        Some(sse_resp(vec![event(Some("message"), data)])),
    );
    let d = inspect(&ex);
    assert!(has(&d, 4002) && has(&d, 4102), "{:?}", ids(&d));
    // The same result as a plain JSON body.
    let d = inspect(&exchange(None, Some(resp(200, &[JSON], data.as_bytes()))));
    assert!(has(&d, 4002) && has(&d, 4102));
    // OpenAI-style function tools are not an MCP tool list.
    let llm =
        r#"{"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}]}"#;
    assert!(!inspect(&exchange(None, Some(resp(200, &[JSON], llm.as_bytes())))).is_mcp());
}

#[test]
fn r4003_legacy_endpoint_event() {
    let ex = exchange(
        Some(req(
            "GET",
            "h.example",
            "/events",
            &[("Accept", "text/event-stream")],
            b"",
        )),
        Some(sse_resp(vec![event(
            Some("endpoint"),
            "/messages?sessionId=5c2f-11",
        )])),
    );
    let d = inspect(&ex);
    assert!(has(&d, 4003));
    assert_eq!(d.confidence, Some(Confidence::High));
    assert_eq!(d.category.as_deref(), Some("mcp-legacy-sse"));
    assert_eq!(d.session_id.as_deref(), Some("5c2f-11"));
    assert_eq!(d.transport, Some(transport::LEGACY_SSE));
    // An endpoint event without a session id, or a session id in a message event, is not it.
    let ex = exchange(
        Some(req("GET", "h.example", "/events", &[], b"")),
        Some(sse_resp(vec![
            event(Some("endpoint"), "/messages"),
            event(None, "?sessionId=1"),
        ])),
    );
    assert!(!has(&inspect(&ex), 4003));
}

#[test]
fn r4004_tool_result() {
    let body = r#"{"jsonrpc":"2.0","id":4,"result":{"content":[{"type":"text","text":"ok"}],"isError":false}}"#;
    let d = inspect(&exchange(None, Some(resp(200, &[JSON], body.as_bytes()))));
    assert!(has(&d, 4004));
}

// ---- 50xx provider-side MCP ---------------------------------------------------------------

#[test]
fn r5001_r5101_r5103_anthropic_mcp_connector() {
    let body = r#"{"model":"claude-sonnet-4","max_tokens":1000,"messages":[{"role":"user","content":"hi"}],"mcp_servers":[{"type":"url","url":"https://mcp.example-crm.com/sse","name":"crm","authorization_token":"t"}]}"#;
    let ex = exchange(
        Some(req(
            "POST",
            "api.anthropic.com",
            "/v1/messages",
            &[JSON, ("anthropic-beta", "mcp-client-2025-04-04")],
            body.as_bytes(),
        )),
        None,
    );
    let d = inspect(&ex);
    assert_eq!(ids(&d), [5001, 5101, 5103]);
    assert_eq!(d.category.as_deref(), Some("mcp-provider"));
    assert_eq!(d.provider_mcp_servers, ["https://mcp.example-crm.com/sse"]);
    assert_eq!(d.transport, Some(transport::PROVIDER));
}

#[test]
fn r5001_r5102_openai_responses_mcp_tool() {
    let body = r#"{"model":"gpt-5","input":"hi","tools":[{"type":"mcp","server_label":"deepwiki","server_url":"https://mcp.deepwiki.com/mcp","require_approval":"never"}]}"#;
    let d = inspect(&post("api.openai.com", "/v1/responses", body));
    assert_eq!(ids(&d), [5001, 5102]);
    assert_eq!(d.provider_mcp_servers, ["https://mcp.deepwiki.com/mcp"]);
    // A function tool is ordinary tool calling.
    let body = r#"{"model":"gpt-5","input":"hi","tools":[{"type":"function","name":"f","parameters":{}}]}"#;
    assert!(!inspect(&post("api.openai.com", "/v1/responses", body)).is_mcp());
}

#[test]
fn r5002_provider_activity() {
    let body = r#"{"id":"msg_1","type":"message","role":"assistant","content":[{"type":"mcp_tool_use","id":"t1","name":"echo","server_name":"crm","input":{"x":1}}],"stop_reason":"end_turn"}"#;
    let d = inspect(&exchange(None, Some(resp(200, &[JSON], body.as_bytes()))));
    assert!(has(&d, 5002), "{:?}", ids(&d));
}

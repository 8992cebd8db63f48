//! Hostile input never panics, and a Detection is always self-consistent.

mod common;

use common::*;
use proptest::prelude::*;
use shadowmcp_exchange::SseEvent;

const CONTENT_TYPES: &[&str] = &[
    "application/json",
    "text/plain",
    "text/html",
    "text/event-stream",
    "application/x-www-form-urlencoded",
    "",
];

/// Bytes that are mostly JSON-RPC fragments, so the analyzer and the
/// rules are actually exercised, mixed with arbitrary bytes.
fn body_strategy() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"{\"jsonrpc\":\"2.0\",".to_vec()),
        Just(b"\"method\":\"tools/call\"".to_vec()),
        Just(b"\"method\":\"initialize\"".to_vec()),
        Just(
            b"\"params\":{\"protocolVersion\":\"2025-06-18\",\"clientInfo\":{\"name\":\"x\"}}"
                .to_vec()
        ),
        Just(b"\"result\":{\"tools\":[{\"name\":\"t\",\"inputSchema\":{}}]}".to_vec()),
        Just(b"\"mcp_servers\":[{\"url\":\"https://m.example/mcp\"}]".to_vec()),
        Just(b"\\u0074".to_vec()),
        Just(b"}".to_vec()),
        Just(b"[".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..16),
    ];
    proptest::collection::vec(piece, 0..24).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn inspect_never_panics_and_is_consistent(
        host in "[a-zA-Z0-9.:\\-\\[\\]]{0,40}",
        path in "/[ -~]{0,60}",
        method in prop_oneof![Just("POST"), Just("GET"), Just("DELETE")],
        req_ct in 0..CONTENT_TYPES.len(),
        resp_ct in 0..CONTENT_TYPES.len(),
        status in prop_oneof![Just(200u16), Just(202), Just(400), Just(101)],
        req_body in body_strategy(),
        resp_body in body_strategy(),
        events in proptest::collection::vec((proptest::option::of("[a-z]{0,10}"), "[ -~]{0,80}"), 0..6),
        header_value in proptest::collection::vec(any::<u8>(), 0..40),
    ) {
        let mut hdrs = vec![("Mcp-Session-Id", "")];
        if !CONTENT_TYPES[req_ct].is_empty() {
            hdrs.push(("Content-Type", CONTENT_TYPES[req_ct]));
        }
        let mut request = req(method, &host, &path, &hdrs, &req_body);
        request.headers.push("MCP-Protocol-Version", header_value.clone());
        request.headers.push("Sec-WebSocket-Protocol", header_value);
        let mut response = resp(status, &[("Content-Type", CONTENT_TYPES[resp_ct])], &resp_body);
        let evs: Vec<SseEvent> = events.iter().map(|(k, d)| event(k.as_deref(), d)).collect();
        response.sse_events = evs.clone();
        let ex = exchange(Some(request), Some(response));
        let mut d = detector().inspect(&ex);
        check(&d);
        let later = detector().inspect_sse(&ex, &evs);
        check(&later);
        d.merge(later);
        check(&d);
    }
}

fn check(d: &shadowmcp_detect::Detection) {
    assert_eq!(d.is_mcp(), !d.matches.is_empty(), "{d:?}");
    assert_eq!(d.transport.is_some(), d.is_mcp(), "{d:?}");
    assert_eq!(d.category.is_some(), d.is_mcp());
    let max = d.matches.iter().map(|m| m.confidence).max();
    assert!(d.confidence >= max, "{d:?}");
    for m in &d.matches {
        assert!(!d.suppressed.iter().any(|s| s.id == m.id), "{d:?}");
    }
    if !d.is_mcp() {
        assert!(d.tools_called.is_empty() && d.session_id.is_none());
    }
}

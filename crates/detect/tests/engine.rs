//! Fields, operators and combinators, each on a one-rule pack.

mod common;

use common::*;
use shadowmcp_detect::{Confidence, DetectConfig, Detector};
use shadowmcp_exchange::Exchange;
use shadowmcp_rules::RulePack;

fn pack(condition: &str) -> Detector {
    pack_with(condition, "")
}

fn pack_with(condition: &str, extra: &str) -> Detector {
    let text = format!(
        "format = 1\n[[rule]]\nid = 77\nname = \"t\"\nconfidence = \"medium\"\nseverity = 2\ncategory = \"test\"\ncondition = {condition}\n{extra}"
    );
    let pack = RulePack::parse_str("t.toml", &text).unwrap_or_else(|e| panic!("{e:?}"));
    Detector::new(&pack, DetectConfig::default()).unwrap()
}

fn fires(det: &Detector, ex: &Exchange) -> bool {
    let d = det.inspect(ex);
    assert_eq!(d.is_mcp(), d.matches.iter().any(|m| m.id == 77));
    d.is_mcp()
}

fn get(host: &str, target: &str, hdrs: &[(&str, &str)]) -> Exchange {
    exchange(Some(req("GET", host, target, hdrs, b"")), None)
}

#[test]
fn host_operators() {
    let d = pack(r#"{ field = "host", equals = "mcp.a.example" }"#);
    assert!(fires(&d, &get("MCP.A.example:8443", "/", &[])));
    assert!(!fires(&d, &get("mcp.a.example.evil", "/", &[])));
    let d = pack(r#"{ field = "host", glob = ["*.mcp.*", "mcp.*"] }"#);
    assert!(fires(&d, &get("docs.mcp.cloudflare.com", "/", &[])));
    assert!(fires(&d, &get("mcp.x", "/", &[])));
    assert!(!fires(&d, &get("xmcp.x", "/", &[])));
    let d = pack(r#"{ field = "host", suffix = ".googleapis.com" }"#);
    assert!(fires(&d, &get("bigquery.googleapis.com", "/", &[])));
    assert!(!fires(&d, &get("googleapis.com.evil", "/", &[])));
    // Host from an absolute-form target when there is no Host header.
    let mut ex = get("ignored", "/", &[]);
    if let Some(r) = ex.request.as_mut() {
        r.headers = Default::default();
        r.target = "http://proxy.mcp.example/x".into();
    }
    assert!(fires(&d, &get("a.googleapis.com", "/", &[])));
    assert!(fires(
        &pack(r#"{ field = "host", prefix = "proxy.mcp" }"#),
        &ex
    ));
}

#[test]
fn path_and_method_operators() {
    let d = pack(
        r#"{ all = [ { field = "http_method", equals = "post", nocase = true }, { field = "path", prefix = "/api/" }, { field = "path", contains = "assist" } ] }"#,
    );
    assert!(fires(
        &d,
        &exchange(Some(req("POST", "h", "/api/assistant?x", &[], b"")), None)
    ));
    assert!(!fires(
        &d,
        &exchange(Some(req("GET", "h", "/api/assistant", &[], b"")), None)
    ));
    assert!(!fires(
        &d,
        &exchange(Some(req("POST", "h", "/v1/api/assistant", &[], b"")), None)
    ));
    // Case-sensitive by default.
    let d = pack(r#"{ field = "path", suffix = "/MCP" }"#);
    assert!(fires(&d, &get("h", "/x/MCP", &[])));
    assert!(!fires(&d, &get("h", "/x/mcp", &[])));
    let d = pack(r#"{ field = "path", glob = "/v?/*/mcp" }"#);
    assert!(fires(&d, &get("h", "/v1/team/a/mcp", &[])));
    assert!(!fires(&d, &get("h", "/v12/mcp", &[])));
}

#[test]
fn header_fields_and_exists() {
    let d = pack(r#"{ field = "request_header.x-api-key", exists = true }"#);
    assert!(fires(&d, &get("h", "/", &[("X-API-Key", "k")])));
    assert!(!fires(&d, &get("h", "/", &[])));
    let d = pack(r#"{ field = "request_header.x-api-key", exists = false }"#);
    assert!(fires(&d, &get("h", "/", &[])));
    // Every value of a repeated header is tried; values are trimmed.
    let d = pack(r#"{ field = "request_header.accept", equals = "text/event-stream" }"#);
    assert!(fires(
        &d,
        &get(
            "h",
            "/",
            &[
                ("Accept", "application/json"),
                ("Accept", "  text/event-stream ")
            ]
        )
    ));
    let d = pack(r#"{ field = "response_header.content-type", prefix = "text/event-stream" }"#);
    let ex = exchange(
        Some(req("GET", "h", "/", &[], b"")),
        Some(resp(
            200,
            &[("Content-Type", "text/event-stream; charset=utf-8")],
            b"",
        )),
    );
    assert!(fires(&d, &ex));
    assert!(!fires(
        &d,
        &get("h", "/", &[("Content-Type", "text/event-stream")])
    ));
}

#[test]
fn combinators() {
    let d = pack(
        r#"{ any = [
  { all = [ { field = "host", equals = "a" }, { not = { field = "path", equals = "/health" } } ] },
  { field = "request_header.x-mcp", exists = true },
] }"#,
    );
    assert!(fires(&d, &get("a", "/x", &[])));
    assert!(!fires(&d, &get("a", "/health", &[])));
    assert!(fires(&d, &get("b", "/health", &[("x-mcp", "1")])));
    assert!(!fires(&d, &get("b", "/x", &[])));
}

#[test]
fn body_fields_are_gated_by_atoms_and_json_shape() {
    let d = pack(r#"{ field = "request_body", regex = '"op"\s*:\s*"launch"' }"#);
    assert!(fires(&d, &post("h", "/", r#"{"op" :  "launch"}"#)));
    assert!(!fires(&d, &post("h", "/", r#"{"op":"land"}"#)));
    // Same bytes in an HTML body: body rules do not look at it.
    let html = exchange(
        Some(req(
            "POST",
            "h",
            "/",
            &[("Content-Type", "text/html")],
            br#"<p>{"op":"launch"}</p>"#,
        )),
        None,
    );
    assert!(!fires(&d, &html));
    // No content type, but shaped like JSON (after a BOM and whitespace).
    let bare = exchange(
        Some(req(
            "POST",
            "h",
            "/",
            &[],
            b"\xEF\xBB\xBF \n{\"op\":\"launch\"}",
        )),
        None,
    );
    assert!(fires(&d, &bare));
    // Author-given atoms gate a regex the extractor could not.
    let d = pack(r#"{ field = "response_body", regex = '\d{3}-launch', atoms = ["-launch"] }"#);
    let ex = exchange(
        None,
        Some(resp(
            200,
            &[JSON],
            br#"{"a":"123-LAUNCH","b":"123-launch"}"#,
        )),
    );
    assert!(fires(&d, &ex));
    let d = pack(r#"{ field = "response_body", contains = "LAUNCH", nocase = true }"#);
    let ex = exchange(None, Some(resp(200, &[JSON], br#"{"a":"launch"}"#)));
    assert!(fires(&d, &ex));
    let d = pack(r#"{ field = "response_body", contains = "LAUNCH" }"#);
    assert!(!fires(&d, &ex));
    let d = pack(r#"{ field = "request_body", exists = true }"#);
    assert!(fires(&d, &post("h", "/", "{}")));
    assert!(!fires(&d, &get("h", "/", &[])));
}

#[test]
fn sse_fields_pair_event_and_data_of_one_event() {
    let d = pack(
        r#"{ all = [ { field = "sse_event", equals = "status" }, { field = "sse_data", prefix = "up" } ] }"#,
    );
    let ex = |events| exchange(Some(req("GET", "h", "/", &[], b"")), Some(sse_resp(events)));
    assert!(fires(
        &d,
        &ex(vec![event(Some("status"), "up 3"), event(None, "x")])
    ));
    assert!(!fires(
        &d,
        &ex(vec![event(Some("status"), "down"), event(None, "up")])
    ));
    let d = pack(r#"{ field = "sse_event", equals = "message" }"#);
    assert!(fires(&d, &ex(vec![event(None, "x")])));
    assert!(!fires(&d, &get("h", "/", &[])));
    // inspect_sse looks at the given events only.
    let det = pack(r#"{ field = "sse_data", contains = "ready" }"#);
    let base = ex(vec![event(None, "ready")]);
    assert!(det.inspect(&base).is_mcp());
    assert!(!det.inspect_sse(&base, &[event(None, "later")]).is_mcp());
    assert!(det
        .inspect_sse(&base, &[event(None, "ready again")])
        .is_mcp());
}

#[test]
fn json_pointer_and_analyzer_fields() {
    let d =
        pack(r#"{ field = "json_pointer", pointer = "/params/arguments/path", prefix = "/etc/" }"#);
    assert!(fires(
        &d,
        &post(
            "h",
            "/",
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read","arguments":{"path":"/etc/passwd"}}}"#
        )
    ));
    assert!(!fires(
        &d,
        &post(
            "h",
            "/",
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read","arguments":{"path":"/tmp/x"}}}"#
        )
    ));
    // Each batch element is addressed too.
    assert!(fires(
        &d,
        &post(
            "h",
            "/",
            r#"[{"jsonrpc":"2.0","id":1,"method":"x"},{"jsonrpc":"2.0","id":2,"method":"y","params":{"arguments":{"path":"/etc/x"}}}]"#
        )
    ));
    // Numbers compare as their JSON text; objects only satisfy exists.
    let d = pack(r#"{ field = "json_pointer", pointer = "/id", equals = "42" }"#);
    assert!(fires(&d, &post("h", "/", r#"{"id":42}"#)));
    let d = pack(r#"{ field = "json_pointer", pointer = "/params", exists = true }"#);
    assert!(fires(&d, &post("h", "/", r#"{"params":{}}"#)));
    let d = pack(r#"{ field = "json_pointer", pointer = "/params", regex = "." }"#);
    assert!(!fires(&d, &post("h", "/", r#"{"params":{}}"#)));
    // SSE data is addressed too.
    let d =
        pack(r#"{ field = "json_pointer", pointer = "/result/serverInfo/name", equals = "srv" }"#);
    let ex = exchange(
        None,
        Some(sse_resp(vec![event(
            None,
            r#"{"jsonrpc":"2.0","id":1,"result":{"serverInfo":{"name":"srv"}}}"#,
        )])),
    );
    assert!(fires(&d, &ex));

    let d = pack(r#"{ field = "jsonrpc_method", prefix = "eth_" }"#);
    assert!(fires(
        &d,
        &post(
            "h",
            "/",
            r#"{"jsonrpc":"2.0","method":"eth_call","params":[],"id":1}"#
        )
    ));
    let d = pack(r#"{ field = "analyzer_signal", equals = "near_miss_ethereum" }"#);
    assert!(fires(
        &d,
        &post(
            "h",
            "/",
            r#"{"jsonrpc":"2.0","method":"eth_call","params":[],"id":1}"#
        )
    ));
}

#[test]
fn unknown_analyzer_signal_is_a_build_error() {
    let text = "format = 1\n[[rule]]\nid = 5\nname = \"t\"\nconfidence = \"low\"\nseverity = 3\ncategory = \"t\"\ncondition = { field = \"analyzer_signal\", equals = \"mcp_methd\" }\n";
    let pack = RulePack::parse_str("t.toml", text).unwrap();
    let err = Detector::new(&pack, DetectConfig::default()).unwrap_err();
    assert_eq!(err.rule_id, 5);
    assert!(err.to_string().contains("mcp_methd"), "{err}");
}

#[test]
fn known_server_fields_use_the_pack_catalog() {
    let catalog = "[[server]]\nhost = \"mcp.corp.example\"\npath = \"/v1/mcp\"\nvendor = \"Corp\"\nsource = \"internal wiki\"\n";
    let d = pack_with(r#"{ field = "known_endpoint", equals = "Corp" }"#, catalog);
    assert!(fires(&d, &get("mcp.corp.example", "/v1/mcp/", &[])));
    assert!(!fires(&d, &get("mcp.corp.example", "/v1", &[])));
    let d = pack_with(r#"{ field = "known_server", exists = true }"#, catalog);
    assert!(fires(&d, &get("MCP.corp.example.", "/x", &[])));
    assert!(!fires(&d, &get("corp.example", "/x", &[])));
}

#[test]
fn circumstantial_rules_yield_to_counter_evidence() {
    let det = pack_with(
        r#"{ field = "path", equals = "/rpc" }"#,
        "[[rule]]\nid = 78\nname = \"c\"\nconfidence = \"low\"\nseverity = 3\ncategory = \"test\"\ncondition = { field = \"path\", equals = \"/rpc\" }\n",
    );
    let eth = post(
        "h",
        "/rpc",
        r#"{"jsonrpc":"2.0","method":"eth_call","params":[],"id":1}"#,
    );
    let d = det.inspect(&eth);
    // 77 (medium, not circumstantial) stays; 78 (low, circumstantial by default) is suppressed.
    assert_eq!(d.matches.iter().map(|m| m.id).collect::<Vec<_>>(), [77]);
    assert_eq!(d.suppressed.iter().map(|m| m.id).collect::<Vec<_>>(), [78]);
    assert_eq!(d.confidence, Some(Confidence::Medium));
    assert_eq!(d.counter_evidence, Some("near_miss_ethereum"));
}

#[test]
fn missing_request_or_response_is_handled() {
    let d = pack(r#"{ not = { field = "host", exists = true } }"#);
    assert!(fires(&d, &exchange(None, Some(resp(200, &[], b"")))));
    assert!(fires(&d, &exchange(None, None)));
    let d = detector();
    assert!(!d.inspect(&exchange(None, None)).is_mcp());
}

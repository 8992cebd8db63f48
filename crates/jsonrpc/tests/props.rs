//! Property tests: no input panics; the bytes of a message (key order,
//! whitespace, escapes, BOM) never change its analysis; truncation never
//! invents a method.

use proptest::prelude::*;
use serde_json::Value;
use shadowmcp_jsonrpc::{analyze, Limits};

/// MCP messages of every era, plus near-misses and provider bodies: the
/// re-serialisation property holds for any JSON.
const BODIES: &[&str] = &[
    r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2024-11-05","capabilities":{"roots":{"listChanged":true},"sampling":{}},"clientInfo":{"name":"claude-ai","version":"0.1.0"}}}"#,
    r#"{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-06-18","capabilities":{"logging":{},"tools":{"listChanged":true}},"serverInfo":{"name":"ExampleServer","title":"Example Server","version":"1.0.0"},"instructions":"Use \"quotes\" / slashes \\ and ünïcödé 🦀"}}"#,
    r#"[{"jsonrpc":"2.0","method":"notifications/initialized"},{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{"cursor":"c/1"}}]"#,
    r#"{"jsonrpc":"2.0","id":"a-1","method":"tools/call","params":{"name":"read_file","arguments":{"path":"/etc/passwd","n":[1,2.5,-3,true,null]}}}"#,
    r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"get_weather","inputSchema":{"type":"object","properties":{"location":{"type":"string"}}}}],"nextCursor":"n"}}"#,
    r#"{"jsonrpc":"2.0","id":2,"result":{"content":[{"type":"text","text":"72F\nsunny"}],"isError":false}}"#,
    r#"{"jsonrpc":"2.0","id":9,"method":"tasks/get","params":{"taskId":"786512e2"}}"#,
    r#"{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"ExampleClient","version":"1.0.0"},"io.modelcontextprotocol/clientCapabilities":{}}}}"#,
    r#"{"jsonrpc":"2.0","id":1,"result":{"resultType":"complete","supportedVersions":["2026-07-28"],"capabilities":{},"_meta":{"io.modelcontextprotocol/serverInfo":{"name":"weather","version":"3.1.0"}}}}"#,
    r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"Unsupported protocol version","data":{"supported":["2024-11-05"],"requested":"1.0.0"}}}"#,
    r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"processId":1234,"rootUri":"file:///src","capabilities":{}}}"#,
    r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":1,"clientCapabilities":{"fs":{"readTextFile":true}},"clientInfo":{"name":"zed"}}}"#,
    r#"{"jsonrpc":"2.0","id":3,"method":"tasks/get","params":{"id":"363422be","historyLength":10}}"#,
    r#"{"jsonrpc": "1.0", "id": "curltest", "method": "getblockchaininfo", "params": []}"#,
    r#"{"model":"claude","mcp_servers":[{"type":"url","url":"https://mcp.example.com/sse","name":"ex"}],"tools":[{"name":"f","input_schema":{}}]}"#,
    r#"{"object":"response","output":[{"type":"mcp_call","name":"ask","server_label":"dw","arguments":"{\"q\":1}"}]}"#,
    r#"{"id":123456789012345678901234567890,"jsonrpc":"2.0","method":"ping"}"#,
];

/// Deterministic choices drawn from proptest bytes.
struct Choices<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Choices<'_> {
    fn next(&mut self, n: usize) -> usize {
        let b = if self.bytes.is_empty() {
            0
        } else {
            self.bytes[self.at % self.bytes.len()]
        };
        self.at += 1;
        usize::from(b) % n.max(1)
    }
}

fn ws(c: &mut Choices, out: &mut String) {
    out.push_str(["", " ", "\n", "\r\n\t", "          ", "\n\n\n\n\n\n\n"][c.next(6)]);
}

/// A JSON string with randomly chosen (but equivalent) escapes.
fn write_str(s: &str, c: &mut Choices, out: &mut String) {
    out.push('"');
    for ch in s.chars() {
        let k = c.next(4);
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '/' if k == 0 => out.push_str("\\/"),
            ch if (ch as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", ch as u32)),
            ch if k == 1 => {
                let mut units = [0u16; 2];
                for u in ch.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{:04X}", u));
                }
            }
            ch => out.push(ch),
        }
    }
    out.push('"');
}

/// Serialises `v` with shuffled object keys, random whitespace and escapes.
fn write(v: &Value, c: &mut Choices, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            for i in (1..entries.len()).rev() {
                let j = c.next(i + 1);
                entries.swap(i, j);
            }
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                ws(c, out);
                write_str(k, c, out);
                ws(c, out);
                out.push(':');
                ws(c, out);
                write(v, c, out);
                ws(c, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                ws(c, out);
                write(item, c, out);
                ws(c, out);
            }
            out.push(']');
        }
        Value::String(s) => write_str(s, c, out),
        other => out.push_str(&other.to_string()),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(
        body in prop::collection::vec(any::<u8>(), 0..512),
        max_bytes in 0usize..600,
        max_depth in 0usize..200,
        max_messages in 0usize..8,
    ) {
        let a = analyze(&body, &Limits { max_bytes, max_depth, max_messages });
        prop_assert!(a.messages.len() <= max_messages);
        let _ = analyze(&body, &Limits::default());
    }

    #[test]
    fn json_ish_bytes_never_panic(body in r#"[\[\]{}":,0-9a-z\\ ./-]{0,300}"#) {
        let _ = analyze(body.as_bytes(), &Limits { max_depth: 5, ..Limits::default() });
        let _ = analyze(format!("data: {body}").as_bytes(), &Limits::default());
    }

    #[test]
    fn reserialising_never_changes_the_analysis(
        which in 0..BODIES.len(),
        choices in prop::collection::vec(any::<u8>(), 1..64),
        bom in any::<bool>(),
    ) {
        let original = BODIES[which];
        let value: Value = serde_json::from_str(original).unwrap();
        let mut c = Choices { bytes: &choices, at: 0 };
        let mut out = String::new();
        if bom {
            out.push('\u{feff}');
        }
        ws(&mut c, &mut out);
        write(&value, &mut c, &mut out);
        ws(&mut c, &mut out);
        let want = analyze(original.as_bytes(), &Limits::default());
        let got = analyze(out.as_bytes(), &Limits::default());
        prop_assert_eq!(&got, &want, "re-serialised: {}", out);
        let pretty = serde_json::to_string_pretty(&value).unwrap();
        prop_assert_eq!(analyze(pretty.as_bytes(), &Limits::default()), want);
    }

    #[test]
    fn truncation_never_invents_a_method(which in 0..BODIES.len(), cut in any::<prop::sample::Index>()) {
        let full = BODIES[which].as_bytes();
        let cut = cut.index(full.len() + 1);
        let whole = analyze(full, &Limits::default());
        let part = analyze(&full[..cut], &Limits::default());
        for m in &part.methods {
            prop_assert!(whole.methods.contains(m), "{} from {:?}", m, String::from_utf8_lossy(&full[..cut]));
        }
        for t in &part.tools_called {
            prop_assert!(whole.tools_called.iter().any(|w| w.name == t.name));
        }
        prop_assert!(part.messages.len() <= whole.messages.len());
        let capped = analyze(full, &Limits { max_bytes: cut, ..Limits::default() });
        prop_assert_eq!(capped.truncated, cut < full.len());
        prop_assert_eq!(capped.methods, part.methods);
    }
}

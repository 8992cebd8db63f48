//! JSON rendering of records, as `shadowmcp exchanges` prints them: what the
//! engine sees, one object per line.

use base64::Engine as _;
use serde_json::{json, Map, Value};

use crate::{Body, Exchange, Flags, Headers, Record, SseEvent, SseUpdate};

/// How much of each body to show.
#[derive(Clone, Copy, Debug)]
pub struct JsonOptions {
    /// Bytes of each decoded body to include (`0` shows none).
    pub max_body: usize,
}

impl Default for JsonOptions {
    fn default() -> JsonOptions {
        JsonOptions { max_body: 4096 }
    }
}

/// One record as a JSON object.
pub fn record_to_json(record: &Record, opts: &JsonOptions) -> Value {
    match record {
        Record::Exchange(ex) => exchange_to_json(ex, opts),
        Record::SseUpdate(up) => sse_update_to_json(up),
    }
}

pub fn exchange_to_json(ex: &Exchange, opts: &JsonOptions) -> Value {
    let mut o = Map::new();
    o.insert("type".into(), json!("exchange"));
    o.insert("id".into(), json!(ex.id));
    o.insert("input".into(), json!(ex.origin.input));
    if ex.origin.position > 0 {
        o.insert("position".into(), json!(ex.origin.position));
    }
    if let Some(flow) = &ex.flow {
        o.insert("flow_id".into(), json!(flow.id));
    }
    insert_addresses(&mut o, ex);
    if let Some(user) = &ex.user {
        o.insert("user".into(), json!(user));
    }
    if let Some(ts) = ex.request_ts {
        o.insert("request_ts".into(), json!(ts.to_rfc3339()));
    }
    if let Some(ts) = ex.response_ts {
        o.insert("response_ts".into(), json!(ts.to_rfc3339()));
    }
    o.insert("flags".into(), flags_json(&ex.flags));
    if let Some(req) = &ex.request {
        o.insert(
            "request".into(),
            json!({
                "method": req.method,
                "target": req.target,
                "version": req.version.as_str(),
                "headers": headers_json(&req.headers),
                "body": body_json(&req.body, opts),
                "trailers": headers_json(&req.trailers),
            }),
        );
    }
    if let Some(resp) = &ex.response {
        o.insert(
            "response".into(),
            json!({
                "version": resp.version.as_str(),
                "status": resp.status,
                "reason": resp.reason,
                "headers": headers_json(&resp.headers),
                "body": body_json(&resp.body, opts),
                "trailers": headers_json(&resp.trailers),
                "sse_events": resp.sse_events.iter().map(sse_json).collect::<Vec<_>>(),
            }),
        );
    }
    if let Some(tls) = &ex.tls {
        o.insert(
            "tls".into(),
            json!({"sni": tls.sni, "alpn": tls.alpn, "version": tls.version, "ech": tls.ech}),
        );
    }
    Value::Object(o)
}

/// Suricata EVE's address fields (`src_ip`, `src_port`, `dest_ip`,
/// `dest_port`, `proto`) from the flow, or only `src_ip` from a client
/// address a log recorded.
pub fn insert_addresses(o: &mut Map<String, Value>, ex: &Exchange) {
    if let Some(flow) = &ex.flow {
        o.insert("src_ip".into(), json!(flow.client.ip().to_string()));
        o.insert("src_port".into(), json!(flow.client.port()));
        o.insert("dest_ip".into(), json!(flow.server.ip().to_string()));
        o.insert("dest_port".into(), json!(flow.server.port()));
        o.insert("proto".into(), json!(flow.transport.as_str()));
    } else if let Some(ip) = ex.client_ip {
        o.insert("src_ip".into(), json!(ip.to_string()));
    }
}

pub fn sse_update_to_json(up: &SseUpdate) -> Value {
    json!({
        "type": "sse_update",
        "exchange_id": up.exchange_id,
        "flow_id": up.flow_id,
        "ts": up.ts.to_rfc3339(),
        "events": up.events.iter().map(sse_json).collect::<Vec<_>>(),
        "end": up.end,
        "flags": flags_json(&up.flags),
    })
}

fn flags_json(flags: &Flags) -> Value {
    json!(flags.names())
}

fn headers_json(headers: &Headers) -> Value {
    Value::Array(
        headers
            .iter()
            .map(|h| json!([h.name, h.value_lossy()]))
            .collect(),
    )
}

fn sse_json(ev: &SseEvent) -> Value {
    let mut o = Map::new();
    if let Some(e) = &ev.event {
        o.insert("event".into(), json!(e));
    }
    o.insert("data".into(), json!(ev.data));
    if let Some(id) = &ev.id {
        o.insert("id".into(), json!(id));
    }
    if let Some(r) = ev.retry {
        o.insert("retry".into(), json!(r));
    }
    Value::Object(o)
}

/// A body: sizes and flags always; the first `max_body` bytes as `text`
/// when they are UTF-8, else as `base64`; `elided` when not all is shown.
fn body_json(body: &Body, opts: &JsonOptions) -> Value {
    let mut o = Map::new();
    o.insert("len".into(), json!(body.data.len()));
    o.insert("wire_len".into(), json!(body.wire_len));
    o.insert("decoded_len".into(), json!(body.decoded_len));
    if !body.encodings.is_empty() {
        o.insert("encodings".into(), json!(body.encodings));
    }
    if body.truncated {
        o.insert("truncated".into(), json!(true));
    }
    if body.skipped {
        o.insert("skipped".into(), json!(true));
    }
    if let Some(e) = &body.decode_error {
        o.insert("decode_error".into(), json!(e));
    }
    if !body.data.is_empty() && opts.max_body > 0 {
        let mut cut = body.data.len().min(opts.max_body);
        let shown = match std::str::from_utf8(&body.data[..cut]) {
            Ok(s) => Some(s),
            // A cut inside a multi-byte character: back off to its start.
            Err(e) if e.error_len().is_none() && cut < body.data.len() => {
                cut = e.valid_up_to();
                std::str::from_utf8(&body.data[..cut]).ok()
            }
            Err(_) => None,
        };
        match shown {
            Some(text) => o.insert("text".into(), json!(text)),
            None => o.insert(
                "base64".into(),
                json!(base64::engine::general_purpose::STANDARD.encode(&body.data[..cut])),
            ),
        };
        if cut < body.data.len() {
            o.insert("elided".into(), json!(body.data.len() - cut));
        }
    }
    Value::Object(o)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::*;

    #[test]
    fn body_text_base64_and_elision() {
        let opts = JsonOptions { max_body: 4 };
        let b = Body {
            data: b"hello".to_vec(),
            ..Body::default()
        };
        let v = body_json(&b, &opts);
        assert_eq!(v["text"], "hell");
        assert_eq!(v["elided"], 1);
        let b = Body {
            data: vec![0xff, 0xfe, 0x00],
            ..Body::default()
        };
        let v = body_json(&b, &opts);
        assert_eq!(v["base64"], "//4A");
        assert!(v.get("elided").is_none());
        // "é" is two bytes; a cut after its first byte backs off.
        let b = Body {
            data: "abcé".as_bytes().to_vec(),
            ..Body::default()
        };
        let v = body_json(&b, &opts);
        assert_eq!(v["text"], "abc");
        assert_eq!(v["elided"], 2);
    }

    #[test]
    fn exchange_json_has_flow_and_messages() {
        let mut ex = Exchange::new(7);
        ex.flow = Some(Flow {
            id: 42,
            client: "10.0.0.1:5555".parse().unwrap(),
            server: "10.0.0.2:80".parse().unwrap(),
            transport: Transport::Tcp,
        });
        ex.flags.gap = true;
        let mut headers = Headers::default();
        headers.push("Host", "h.test");
        ex.request = Some(Request {
            method: "POST".into(),
            target: "/mcp".into(),
            version: HttpVersion::Http11,
            headers,
            body: Body::default(),
            trailers: Headers::default(),
        });
        let v = exchange_to_json(&ex, &JsonOptions::default());
        assert_eq!(v["flow_id"], 42);
        assert_eq!(v["src_port"], 5555);
        assert_eq!(v["dest_ip"], "10.0.0.2");
        assert_eq!(v["flags"], json!(["gap"]));
        assert_eq!(v["request"]["headers"][0], json!(["Host", "h.test"]));
        assert!(v.get("response").is_none());
    }
}

//! Suricata EVE JSON rendering.
//!
//! Field names and types follow Suricata's EVE output (`alert` and `http`
//! event types) so SIEM pipelines built for Suricata ingest these events
//! unchanged; everything MCP-specific lives under the extra `mcp` object.
//! `docs/alerts.md` documents every field.

use serde_json::{json, Map, Value};
use shadowmcp_detect::Detection;
use shadowmcp_exchange::json::insert_addresses;
use shadowmcp_exchange::{Exchange, HttpVersion, SseUpdate, Timestamp};
use shadowmcp_policy::{Decision, ServerRef};

use crate::ScanOptions;

/// Everything one alert is made of.
pub struct AlertContext<'a> {
    pub exchange: &'a Exchange,
    pub detection: &'a Detection,
    pub decision: &'a Decision,
    pub server: &'a ServerRef,
    /// The server was named to an LLM provider in this request.
    pub via_provider: bool,
    /// The SSE update that raised this alert, if one did.
    pub update: Option<&'a SseUpdate>,
    pub groups: Vec<String>,
    pub options: &'a ScanOptions,
}

/// Fields shared by every event: time, flow, protocol.
fn common(ex: &Exchange, ts: Option<Timestamp>, event_type: &str) -> Map<String, Value> {
    let mut o = Map::new();
    let ts = ts.or(ex.timestamp()).unwrap_or_default();
    o.insert("timestamp".into(), json!(ts.to_eve()));
    if let Some(flow) = &ex.flow {
        o.insert("flow_id".into(), json!(flow.id));
    }
    o.insert("event_type".into(), json!(event_type));
    insert_addresses(&mut o, ex);
    let app_proto = match ex.http_version() {
        Some(HttpVersion::Http2) => "http2",
        None if ex.tls.is_some() => "tls",
        _ => "http",
    };
    o.insert("app_proto".into(), json!(app_proto));
    if let Some(tls) = &ex.tls {
        // Suricata's `tls` object (sni, version), plus what the handshake
        // said about ALPN and Encrypted Client Hello.
        let mut t = Map::new();
        if let Some(sni) = &tls.sni {
            t.insert("sni".into(), json!(sni));
        }
        if let Some(version) = &tls.version {
            t.insert("version".into(), json!(version));
        }
        if !tls.alpn.is_empty() {
            t.insert("alpn".into(), json!(tls.alpn));
        }
        if tls.ech {
            t.insert("ech".into(), json!(true));
        }
        o.insert("tls".into(), Value::Object(t));
    }
    o
}

/// Suricata's `http` object.
fn http_object(ex: &Exchange, options: Option<&ScanOptions>) -> Value {
    let mut h = Map::new();
    if let Some(host) = ex.hostname() {
        h.insert("hostname".into(), json!(host));
    }
    if let Some(flow) = &ex.flow {
        h.insert("http_port".into(), json!(flow.server.port()));
    }
    if let Some(req) = &ex.request {
        h.insert("url".into(), json!(req.target));
        if let Some(ua) = req.headers.get("user-agent") {
            h.insert("http_user_agent".into(), json!(String::from_utf8_lossy(ua)));
        }
        h.insert("http_method".into(), json!(req.method));
        h.insert("protocol".into(), json!(req.version.as_str()));
    }
    if let Some(resp) = &ex.response {
        if let Some(ct) = resp.headers.get("content-type") {
            h.insert(
                "http_content_type".into(),
                json!(String::from_utf8_lossy(ct)),
            );
        }
        h.insert("status".into(), json!(resp.status));
        // A skipped body was never decoded: its length on the wire is all
        // that is known.
        let length = if resp.body.skipped {
            resp.body.wire_len
        } else {
            resp.body.decoded_len
        };
        h.insert("length".into(), json!(length));
        if ex.request.is_none() {
            h.insert("protocol".into(), json!(resp.version.as_str()));
        }
    }
    if let Some(opts) = options.filter(|o| o.include_payload) {
        let printable = |data: &[u8]| {
            let cut = data.len().min(opts.max_payload);
            String::from_utf8_lossy(&data[..cut]).into_owned()
        };
        if let Some(req) = ex.request.as_ref().filter(|r| !r.body.data.is_empty()) {
            h.insert(
                "http_request_body_printable".into(),
                json!(printable(&req.body.data)),
            );
        }
        if let Some(resp) = ex.response.as_ref().filter(|r| !r.body.data.is_empty()) {
            h.insert(
                "http_response_body_printable".into(),
                json!(printable(&resp.body.data)),
            );
        }
    }
    Value::Object(h)
}

/// An EVE `http` event, for `--all`.
pub fn http_event(ex: &Exchange) -> Value {
    let mut o = common(ex, None, "http");
    o.insert("http".into(), http_object(ex, None));
    Value::Object(o)
}

/// An EVE `alert` event with the `mcp` object.
pub fn alert_event(cx: &AlertContext<'_>) -> Value {
    let ex = cx.exchange;
    let d = cx.detection;
    let mut o = common(ex, cx.update.map(|u| u.ts), "alert");
    if let Some(m) = d.strongest() {
        o.insert(
            "alert".into(),
            json!({
                "action": cx.decision.verdict.eve_action(),
                "gid": 1,
                "signature_id": m.id,
                "rev": 1,
                "signature": m.name,
                "category": m.category,
                "severity": m.severity,
            }),
        );
    }
    if ex.request.is_some() || ex.response.is_some() {
        o.insert("http".into(), http_object(ex, Some(cx.options)));
    }

    let mut m = Map::new();
    m.insert("verdict".into(), json!(cx.decision.verdict.as_str()));
    m.insert(
        "confidence".into(),
        json!(d.confidence.map(|c| c.as_str()).unwrap_or("none")),
    );
    m.insert("server".into(), json!(cx.server.canonical()));
    m.insert("sanctioned".into(), json!(cx.decision.sanctioned));
    if let Some(name) = &cx.decision.matched {
        m.insert("policy_match".into(), json!(name));
    }
    if let Some(t) = d.transport {
        m.insert("transport".into(), json!(t));
    }
    if cx.via_provider {
        m.insert("via_provider".into(), json!(ex.hostname()));
    }
    m.insert(
        "rules".into(),
        Value::Array(
            d.matches
                .iter()
                .map(|r| {
                    json!({"id": r.id, "name": r.name, "category": r.category,
                           "confidence": r.confidence.as_str()})
                })
                .collect(),
        ),
    );
    m.insert("methods".into(), json!(d.methods));
    if let Some(v) = &d.protocol_version {
        m.insert("protocol_version".into(), json!(v));
    }
    if let Some(s) = &d.session_id {
        m.insert("session_id".into(), json!(s));
    }
    if let Some(c) = &d.client {
        m.insert(
            "client".into(),
            json!({"name": c.name, "version": c.version}),
        );
    }
    if let Some(s) = &d.server_info {
        m.insert(
            "server_info".into(),
            json!({"name": s.name, "version": s.version}),
        );
    }
    m.insert(
        "tools_called".into(),
        Value::Array(
            d.tools_called
                .iter()
                .map(|t| {
                    if cx.options.include_payload {
                        json!({"name": t.name, "arguments": t.arguments})
                    } else {
                        json!({"name": t.name})
                    }
                })
                .collect(),
        ),
    );
    if let Some(user) = &ex.user {
        m.insert("user".into(), json!(user));
        if !cx.groups.is_empty() {
            m.insert("groups".into(), json!(cx.groups));
        }
    }
    if !d.signals.is_empty() {
        m.insert("signals".into(), json!(d.signals));
    }
    if cx.update.is_some() {
        m.insert("from_stream_update".into(), json!(true));
    }
    let flags = ex.flags.names();
    if !flags.is_empty() {
        m.insert("flags".into(), json!(flags));
    }
    m.insert("exchange_id".into(), json!(ex.id));
    m.insert("input".into(), json!(ex.origin.input));
    if ex.origin.position > 0 {
        m.insert("position".into(), json!(ex.origin.position));
    }
    o.insert("mcp".into(), Value::Object(m));
    Value::Object(o)
}

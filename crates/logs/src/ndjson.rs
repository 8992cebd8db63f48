//! shadowmcp's NDJSON schema: one JSON object a line, one exchange each.
//!
//! ```json
//! {"version": 1, "ts": "2026-11-29T07:25:34.147Z", "client_ip": "10.1.2.3", "client_port": 50123,
//!  "server_ip": "203.0.113.9", "server_port": 443, "user": "alice",
//!  "method": "POST", "url": "https://mcp.example.com/mcp?x=1", "http_version": "HTTP/1.1",
//!  "request_headers": [["Content-Type", "application/json"]], "request_body": "{...}",
//!  "request_body_encoding": "utf8",
//!  "status": 200, "response_headers": {"Content-Type": "text/event-stream"},
//!  "response_body": "ZGF0YTogLi4uCgo=", "response_body_encoding": "base64", "truncated": false}
//! ```
//!
//! - `version`: optional, default 1; a higher version is refused (the line
//!   is malformed), so a future incompatible schema is never misread.
//! - `ts`: RFC 3339 string or epoch seconds (number); optional.
//! - `client_ip`, `user`: optional. With `client_port`, `server_ip` and
//!   `server_port` too, the exchange gets a flow (id: a stable hash of the
//!   four).
//! - `method`, `url`: required. `url` is the request target as logged
//!   (absolute URL, or a path with a `Host` header).
//! - `http_version`: optional, default HTTP/1.1.
//! - `*_headers`: `[[name, value], …]` (order and repeats kept) or
//!   `{name: value | [values]}`.
//! - `*_body`: optional; `*_body_encoding`: `utf8` (default) or `base64`.
//! - `*_body_content_encoded`: optional bool. The bodies are as the proxy
//!   saw them: when still content-encoded (gzip, deflate, br, zstd, per
//!   `Content-Encoding`) they are decoded. Absent: decided from the bytes
//!   (the coding's magic number, or non-UTF-8 bytes for br); `true`:
//!   always decode; `false`: never.
//! - `status`: optional; absent or 0 means no response (flag
//!   `incomplete`). `reason`: optional status text.
//! - `truncated`: optional bool, the proxy cut a body (flag `truncated`).
//!
//! Unknown fields are ignored.

use base64::Engine;
use serde::Deserialize;
use serde_json::Value;
use shadowmcp_exchange::{Flow, Headers, HttpVersion, Transport};
use std::net::{IpAddr, SocketAddr};

use crate::common::{self, Encoded};
use crate::time::{from_json_number, parse_rfc3339};
use crate::{LineOutcome, LogConfig};

/// The schema version this parser reads.
pub(crate) const SCHEMA_VERSION: u64 = 1;

#[derive(Deserialize)]
struct NdRecord {
    version: Option<u64>,
    ts: Option<Value>,
    client_ip: Option<String>,
    client_port: Option<u16>,
    server_ip: Option<String>,
    server_port: Option<u16>,
    user: Option<String>,
    method: Option<String>,
    url: Option<String>,
    http_version: Option<String>,
    request_headers: Option<Value>,
    request_body: Option<String>,
    request_body_encoding: Option<String>,
    request_body_content_encoded: Option<bool>,
    status: Option<u16>,
    reason: Option<String>,
    response_headers: Option<Value>,
    response_body: Option<String>,
    response_body_encoding: Option<String>,
    response_body_content_encoded: Option<bool>,
    truncated: Option<bool>,
}

pub(crate) fn parse_line(line: &[u8], config: &LogConfig) -> LineOutcome {
    match parse(line, config) {
        Ok(ex) => LineOutcome::Exchange(ex),
        Err(reason) => LineOutcome::Malformed(reason),
    }
}

fn headers(v: Option<&Value>, field: &str) -> Result<Headers, String> {
    let mut h = Headers::default();
    let bad = || format!("{field}: expected [[name, value], ...] or {{name: value}}");
    match v {
        None | Some(Value::Null) => {}
        Some(Value::Array(pairs)) => {
            for p in pairs {
                match p.as_array().map(Vec::as_slice) {
                    Some([Value::String(n), Value::String(v)]) => h.push(n.as_str(), v.as_str()),
                    _ => return Err(bad()),
                }
            }
        }
        Some(Value::Object(map)) => {
            for (n, v) in map {
                match v {
                    Value::String(s) => h.push(n.as_str(), s.as_str()),
                    Value::Array(vs) => {
                        for s in vs {
                            h.push(n.as_str(), s.as_str().ok_or_else(bad)?);
                        }
                    }
                    _ => return Err(bad()),
                }
            }
        }
        Some(_) => return Err(bad()),
    }
    Ok(h)
}

fn body_bytes(text: Option<&str>, encoding: Option<&str>, field: &str) -> Result<Vec<u8>, String> {
    let Some(text) = text else {
        return Ok(Vec::new());
    };
    match encoding.map(|e| e.trim().to_ascii_lowercase()).as_deref() {
        None | Some("utf8") | Some("utf-8") => Ok(text.as_bytes().to_vec()),
        Some("base64") => base64::engine::general_purpose::STANDARD
            .decode(text.as_bytes())
            .map_err(|e| format!("{field}: invalid base64: {e}")),
        Some(other) => Err(format!("{field}_encoding: unknown encoding '{other}'")),
    }
}

fn encoded(flag: Option<bool>) -> Encoded {
    match flag {
        None => Encoded::Auto,
        Some(true) => Encoded::Yes,
        Some(false) => Encoded::No,
    }
}

fn ip(s: &str, field: &str) -> Result<IpAddr, String> {
    s.trim()
        .parse()
        .map_err(|_| format!("{field}: invalid IP address '{s}'"))
}

fn parse(line: &[u8], config: &LogConfig) -> Result<Box<shadowmcp_exchange::Exchange>, String> {
    let r: NdRecord =
        serde_json::from_slice(line).map_err(|e| format!("invalid JSON record: {e}"))?;
    if let Some(v) = r.version {
        if v > SCHEMA_VERSION {
            return Err(format!(
                "schema version {v} is newer than this reader ({SCHEMA_VERSION})"
            ));
        }
    }
    let method = r
        .method
        .as_deref()
        .filter(|m| !m.is_empty())
        .ok_or("missing method")?;
    let url = r
        .url
        .as_deref()
        .filter(|u| !u.is_empty())
        .ok_or("missing url")?;
    let mut ex = common::exchange();
    ex.request_ts = match &r.ts {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => {
            Some(parse_rfc3339(s).ok_or_else(|| format!("ts: invalid time '{s}'"))?)
        }
        Some(Value::Number(n)) => {
            Some(from_json_number(n).ok_or_else(|| format!("ts: invalid time {n}"))?)
        }
        Some(_) => return Err("ts: expected an RFC 3339 string or epoch seconds".into()),
    };
    let client = r
        .client_ip
        .as_deref()
        .filter(|v| !v.trim().is_empty())
        .map(|s| ip(s, "client_ip"))
        .transpose()?;
    let server = r
        .server_ip
        .as_deref()
        .filter(|v| !v.trim().is_empty())
        .map(|s| ip(s, "server_ip"))
        .transpose()?;
    ex.client_ip = client;
    if let (Some(c), Some(cp), Some(s), Some(sp)) = (client, r.client_port, server, r.server_port) {
        let client = SocketAddr::new(c, cp);
        let server = SocketAddr::new(s, sp);
        ex.flow = Some(Flow {
            id: common::stable_id(format!("{client}-{server}").as_bytes()),
            client,
            server,
            transport: Transport::Tcp,
        });
    }
    ex.user = r.user.filter(|u| !u.is_empty());
    let version = match r.http_version.as_deref() {
        None => HttpVersion::Http11,
        Some(v) => {
            common::parse_version(v).ok_or_else(|| format!("http_version: unknown '{v}'"))?
        }
    };
    let mut truncated = r.truncated == Some(true);

    let mut req_headers = headers(r.request_headers.as_ref(), "request_headers")?;
    if !req_headers.contains("host") {
        common::push_host(&mut req_headers, url);
    }
    let raw = body_bytes(
        r.request_body.as_deref(),
        r.request_body_encoding.as_deref(),
        "request_body",
    )?;
    let body = common::make_body(
        &req_headers,
        &raw,
        encoded(r.request_body_content_encoded),
        config.max_body,
    );
    truncated |= body.truncated;
    ex.request = Some(common::request(method, url, version, req_headers, body));

    match r.status {
        None | Some(0) => ex.flags.incomplete = true,
        Some(status) if status > 999 => {
            return Err(format!("status: invalid HTTP status {status}"))
        }
        Some(status) => {
            let headers = headers(r.response_headers.as_ref(), "response_headers")?;
            let raw = body_bytes(
                r.response_body.as_deref(),
                r.response_body_encoding.as_deref(),
                "response_body",
            )?;
            let body = common::make_body(
                &headers,
                &raw,
                encoded(r.response_body_content_encoded),
                config.max_body,
            );
            ex.response = Some(common::response(
                version,
                status,
                r.reason.as_deref().unwrap_or(""),
                headers,
                body,
                config,
                &mut truncated,
            ));
            if status == 101
                || (method.eq_ignore_ascii_case("CONNECT") && (200..300).contains(&status))
            {
                ex.flags.tunnel = true;
            }
        }
    }
    ex.flags.truncated = truncated;
    Ok(ex)
}

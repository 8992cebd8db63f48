//! Zeek http.log (fields of `HTTP::Info`, docs.zeek.org,
//! scripts/base/protocols/http/main.zeek): one line per request/response
//! pair. Two writers:
//!
//! - ASCII (TSV): `#separator \x09`, `#set_separator`, `#empty_field`,
//!   `#unset_field`, `#path http`, `#fields ts uid id.orig_h …`, `#types …`
//!   header lines, then one tab-separated line per record; unset fields are
//!   `-`, empty ones `(empty)`, non-printable bytes `\xHH`.
//! - JSON (`LogAscii::use_json`): one object a line with the same field
//!   names (`"id.orig_h"` flat), `ts` as epoch seconds or ISO 8601.
//!
//! Mapping: `ts` → `request_ts`; `uid` and `id.*` → `flow` (id: stable
//! 52-bit hash of the uid); `username` → `user`; `method`, `uri`,
//! `version` → request line (the target is `uri` as logged); `host`,
//! `user_agent`, `referrer`, `origin` → `Host`, `User-Agent`, `Referer`,
//! `Origin` headers; `status_code`/`status_msg` → response (absent: no
//! response, `incomplete`). Bodies are not logged: `request_body_len` and
//! `response_body_len` become the bodies' `wire_len`/`decoded_len`, with
//! empty `data`. Zeek's `orig_mime_types`/`resp_mime_types` are sniffed
//! by its file analysis, not Content-Type headers, so they are not used.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use serde_json::Value;
use shadowmcp_exchange::{Body, Exchange, Flow, Headers, HttpVersion, Transport};

use crate::common::{self, stable_id};
use crate::time::{from_json_number, parse_epoch, parse_rfc3339};
use crate::LineOutcome;

/// The fields of one http.log record this crate uses, as text (unset
/// fields absent).
#[derive(Default, Debug)]
struct Fields(HashMap<String, String>);

impl Fields {
    fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str).filter(|v| !v.is_empty())
    }
}

/// Names read from a record (others are ignored).
const USED: [&str; 17] = [
    "ts",
    "uid",
    "id.orig_h",
    "id.orig_p",
    "id.resp_h",
    "id.resp_p",
    "method",
    "host",
    "uri",
    "referrer",
    "version",
    "user_agent",
    "origin",
    "request_body_len",
    "response_body_len",
    "status_code",
    "status_msg",
];

fn used(name: &str) -> bool {
    USED.contains(&name) || name == "username"
}

fn build(f: &Fields, ts: Option<shadowmcp_exchange::Timestamp>) -> Result<LineOutcome, String> {
    let mut ex = common::exchange();
    ex.request_ts = ts;
    let orig_h: Option<IpAddr> = f.get("id.orig_h").and_then(|s| s.parse().ok());
    let resp_h: Option<IpAddr> = f.get("id.resp_h").and_then(|s| s.parse().ok());
    let orig_p: Option<u16> = f.get("id.orig_p").and_then(|s| s.parse().ok());
    let resp_p: Option<u16> = f.get("id.resp_p").and_then(|s| s.parse().ok());
    ex.client_ip = orig_h;
    if let (Some(uid), Some(oh), Some(op), Some(rh), Some(rp)) =
        (f.get("uid"), orig_h, orig_p, resp_h, resp_p)
    {
        ex.flow = Some(Flow {
            id: stable_id(uid.as_bytes()),
            client: SocketAddr::new(oh, op),
            server: SocketAddr::new(rh, rp),
            transport: Transport::Tcp,
        });
    }
    ex.user = f.get("username").map(str::to_string);
    let version = f
        .get("version")
        .and_then(common::parse_version)
        .unwrap_or(HttpVersion::Http11);
    let len = |k: &str| -> Body {
        let n = f.get(k).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
        Body {
            wire_len: n,
            decoded_len: n,
            ..Body::default()
        }
    };
    match (f.get("method"), f.get("uri")) {
        (Some(method), uri) => {
            let target = uri.unwrap_or("/");
            let mut h = Headers::default();
            match f.get("host") {
                Some(host) => h.push("Host", host),
                None => common::push_host(&mut h, target),
            }
            for (field, name) in [
                ("user_agent", "User-Agent"),
                ("referrer", "Referer"),
                ("origin", "Origin"),
            ] {
                if let Some(v) = f.get(field) {
                    h.push(name, v);
                }
            }
            ex.request = Some(common::request(
                method,
                target,
                version,
                h,
                len("request_body_len"),
            ));
        }
        (None, Some(_)) => return Err("uri without method".into()),
        // A response Zeek could not pair with a request.
        (None, None) => ex.flags.midstream = true,
    }
    match f.get("status_code") {
        Some(code) => {
            let status = code
                .parse::<u16>()
                .ok()
                .filter(|s| *s <= 999)
                .ok_or_else(|| format!("invalid status_code '{code}'"))?;
            ex.response = Some(shadowmcp_exchange::Response {
                version,
                status,
                reason: f.get("status_msg").unwrap_or("").to_string(),
                headers: Headers::default(),
                body: len("response_body_len"),
                trailers: Headers::default(),
                sse_events: Vec::new(),
            });
            if status == 101
                || (f
                    .get("method")
                    .is_some_and(|m| m.eq_ignore_ascii_case("CONNECT"))
                    && (200..300).contains(&status))
            {
                ex.flags.tunnel = true;
            }
        }
        None => ex.flags.incomplete = true,
    }
    if ex.request.is_none() && ex.response.is_none() {
        return Err("neither a request nor a response".into());
    }
    Ok(LineOutcome::Exchange(ex))
}

/// Zeek ASCII escapes: `\xHH` → the byte; anything else kept.
fn unescape(s: &str) -> String {
    if !s.contains("\\x") {
        return s.to_string();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'\\' && b.get(i + 1) == Some(&b'x') {
            let hex = b
                .get(i + 2..i + 4)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(v) = hex {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Users of connections. Zeek logs a proxy user (`username`, from
/// Proxy-Authorization) only on the request that carried the credentials:
/// for a forward proxy, the CONNECT. The requests decrypted inside that
/// tunnel share its `uid` but carry no username, so they inherit it here.
#[derive(Debug, Default)]
pub(crate) struct ConnUsers {
    users: HashMap<u64, String>,
    order: std::collections::VecDeque<u64>,
}

/// Connections remembered at once; the oldest is forgotten first.
const MAX_CONN_USERS: usize = 100_000;

impl ConnUsers {
    pub(crate) fn attribute(&mut self, ex: &mut Exchange) {
        let Some(flow) = ex.flow.as_ref().map(|f| f.id) else {
            return;
        };
        match &ex.user {
            Some(user) => {
                if !self.users.contains_key(&flow) {
                    if self.users.len() >= MAX_CONN_USERS {
                        if let Some(old) = self.order.pop_front() {
                            self.users.remove(&old);
                        }
                    }
                    self.order.push_back(flow);
                }
                self.users.insert(flow, user.clone());
            }
            None => ex.user = self.users.get(&flow).cloned(),
        }
    }
}

/// Header state of a TSV http.log.
#[derive(Debug)]
pub(crate) struct TsvState {
    separator: String,
    empty: String,
    unset: String,
    fields: Option<Vec<String>>,
    /// `#path` of the current section, when it is not `http`.
    wrong_path: Option<String>,
}

impl Default for TsvState {
    fn default() -> Self {
        TsvState {
            separator: "\t".into(),
            empty: "(empty)".into(),
            unset: "-".into(),
            fields: None,
            wrong_path: None,
        }
    }
}

impl TsvState {
    /// One line. `Err` when the log is not an http.log at all (a `#path`
    /// other than `http` before any record).
    pub(crate) fn line(&mut self, line: &[u8], first: bool) -> Result<LineOutcome, String> {
        let text = String::from_utf8_lossy(line);
        if let Some(header) = text.strip_prefix('#') {
            self.header(header, first)?;
            return Ok(LineOutcome::Skip);
        }
        if let Some(p) = &self.wrong_path {
            return Ok(LineOutcome::Malformed(format!(
                "record of a Zeek '{p}' log, not http"
            )));
        }
        let Some(names) = &self.fields else {
            return Ok(LineOutcome::Malformed(
                "record before the #fields header".into(),
            ));
        };
        let values: Vec<&str> = text.split(self.separator.as_str()).collect();
        if values.len() != names.len() {
            return Ok(LineOutcome::Malformed(format!(
                "{} fields, the #fields header names {}",
                values.len(),
                names.len()
            )));
        }
        let mut f = Fields::default();
        for (name, v) in names.iter().zip(values) {
            if !used(name) || v == self.unset {
                continue;
            }
            let v = if v == self.empty { "" } else { v };
            f.0.insert(name.clone(), unescape(v));
        }
        let ts = match f.get("ts") {
            Some(t) => match parse_epoch(t) {
                Some(ts) => Some(ts),
                None => return Ok(LineOutcome::Malformed(format!("invalid ts '{t}'"))),
            },
            None => None,
        };
        Ok(build(&f, ts).unwrap_or_else(LineOutcome::Malformed))
    }

    fn header(&mut self, header: &str, first: bool) -> Result<(), String> {
        // `#separator` is followed by a space, the others by the separator.
        if let Some(v) = header.strip_prefix("separator") {
            let sep = unescape(v.trim());
            if !sep.is_empty() {
                self.separator = sep;
            }
            return Ok(());
        }
        let (key, value) = header
            .split_once(self.separator.as_str())
            .unwrap_or((header, ""));
        match key {
            "empty_field" => self.empty = value.to_string(),
            "unset_field" => self.unset = value.to_string(),
            "fields" => {
                self.fields = Some(
                    value
                        .split(self.separator.as_str())
                        .map(str::to_string)
                        .collect(),
                )
            }
            "path" => {
                if value == "http" {
                    self.wrong_path = None;
                } else if first {
                    return Err(format!("a Zeek '{value}' log, not http.log"));
                } else {
                    self.wrong_path = Some(value.to_string());
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// One line of a JSON http.log.
pub(crate) fn parse_json_line(line: &[u8]) -> LineOutcome {
    let obj = match serde_json::from_slice::<Value>(line) {
        Ok(Value::Object(o)) => o,
        Ok(_) => return LineOutcome::Malformed("not a JSON object".into()),
        Err(e) => return LineOutcome::Malformed(format!("invalid JSON: {e}")),
    };
    let mut f = Fields::default();
    for (k, v) in &obj {
        if !used(k) {
            continue;
        }
        let s = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => continue,
        };
        f.0.insert(k.clone(), s);
    }
    if !obj.contains_key("uid") && !obj.contains_key("id.orig_h") {
        return LineOutcome::Malformed("not a Zeek record (no uid or id.orig_h)".into());
    }
    let ts = match obj.get("ts") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => match from_json_number(n) {
            Some(t) => Some(t),
            None => return LineOutcome::Malformed(format!("invalid ts {n}")),
        },
        Some(Value::String(s)) => match parse_rfc3339(s) {
            Some(t) => Some(t),
            None => return LineOutcome::Malformed(format!("invalid ts '{s}'")),
        },
        Some(_) => return LineOutcome::Malformed("invalid ts".into()),
    };
    build(&f, ts).unwrap_or_else(LineOutcome::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_in_a_tunnel_inherit_the_connect_user() {
        let mut users = ConnUsers::default();
        let flow = Flow {
            id: 7,
            client: "10.0.0.1:5000".parse().unwrap(),
            server: "10.0.0.2:443".parse().unwrap(),
            transport: Transport::Tcp,
        };
        let mut connect = Exchange::new(1);
        connect.flow = Some(flow.clone());
        connect.user = Some("alice".into());
        users.attribute(&mut connect);
        let mut inner = Exchange::new(2);
        inner.flow = Some(flow.clone());
        users.attribute(&mut inner);
        assert_eq!(inner.user.as_deref(), Some("alice"));
        let mut other = Exchange::new(3);
        other.flow = Some(Flow { id: 8, ..flow });
        users.attribute(&mut other);
        assert_eq!(other.user, None);
    }

    #[test]
    fn unescape_hex() {
        assert_eq!(unescape("a\\x09b\\x2"), "a\tb\\x2");
        assert_eq!(unescape("plain"), "plain");
    }
}

//! The `Exchange`: one HTTP request and its response, as every shadowmcp source
//! produces it.
//!
//! Sources (pcap reassembly, proxy logs, later HTTP/2, TLS decryption and ICAP)
//! all turn their input into [`Record`]s. Everything downstream (detection,
//! policy, verdicts, sinks) only ever sees these types, so it never needs to know
//! where traffic came from.
//!
//! An exchange is emitted once its response is complete, or when the source
//! gives up on it (the connection closed, the capture ended, a gap made the rest
//! unparseable); [`Flags`] say which. A `text/event-stream` response may never
//! end, so it is emitted as soon as its head is known, with
//! [`Flags::streaming`] set; events that arrive later follow as
//! [`Record::SseUpdate`]s carrying the same exchange id, and a last update with
//! `end: true` closes it.
//!
//! ```
//! use shadowmcp_exchange::{Headers, Timestamp};
//! let mut headers = Headers::default();
//! headers.push("Mcp-Session-Id", "abc");
//! assert_eq!(headers.get_str("mcp-session-id"), Some("abc"));
//! assert_eq!(Timestamp::from_nanos(1_700_000_000_123_456_789).to_eve(), "2023-11-14T22:13:20.123456+0000");
//! ```

use std::fmt;
use std::net::{IpAddr, SocketAddr};

pub mod json;
mod time;
pub use time::Timestamp;

/// A network flow, oriented client → server.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Flow {
    /// Stable id of the flow: the same connection in the same capture always
    /// gets the same id, whatever the thread count.
    pub id: u64,
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub transport: Transport,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    Tcp,
    Udp,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Tcp => "TCP",
            Transport::Udp => "UDP",
        }
    }
}

/// Where an exchange was read from, for error messages and alerts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Origin {
    /// Input name as the user gave it (a path, or `-` for stdin).
    pub input: String,
    /// Position inside the input: packet number, line number or entry index
    /// of the record that started the exchange (1-based; 0 when unknown).
    pub position: u64,
}

/// HTTP protocol version of an exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HttpVersion {
    Http10,
    Http11,
    Http2,
    Http3,
}

impl HttpVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            HttpVersion::Http10 => "HTTP/1.0",
            HttpVersion::Http11 => "HTTP/1.1",
            HttpVersion::Http2 => "HTTP/2",
            HttpVersion::Http3 => "HTTP/3",
        }
    }
}

impl fmt::Display for HttpVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One header field, name in its original case, value as raw bytes (header
/// values are not guaranteed to be UTF-8).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub name: String,
    pub value: Vec<u8>,
}

impl Header {
    /// The value as text, with invalid UTF-8 replaced.
    pub fn value_lossy(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.value)
    }
}

/// Header fields in wire order; lookups ignore ASCII case.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Headers(pub Vec<Header>);

impl Headers {
    pub fn push(&mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) {
        self.0.push(Header {
            name: name.into(),
            value: value.into(),
        });
    }

    /// The first value of `name`, as bytes.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.0
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_slice())
    }

    /// The first value of `name`, if it is valid UTF-8; surrounding
    /// whitespace trimmed.
    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.get(name)
            .and_then(|v| std::str::from_utf8(v).ok())
            .map(str::trim)
    }

    /// Every value of `name`, in order.
    pub fn iter_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.0
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_slice())
    }

    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Header> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A message body after transfer decoding (chunked) and content decoding
/// (gzip, deflate, br, zstd). Bounded: `data` holds at most the configured
/// cap and `truncated` says when more existed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Body {
    /// Decoded bytes (possibly truncated).
    pub data: Vec<u8>,
    /// Bytes of the body as they were on the wire (after de-chunking, before
    /// content decoding).
    pub wire_len: u64,
    /// Total decoded length seen, including what was dropped by the cap.
    pub decoded_len: u64,
    /// Content-Encoding values applied, in the order the sender applied them.
    pub encodings: Vec<String>,
    /// The decoded body exceeded the cap; `data` is a prefix.
    pub truncated: bool,
    /// Content decoding failed; `data` holds what decoded before the error.
    pub decode_error: Option<String>,
    /// Neither decoded nor kept: its declared media type cannot carry an
    /// MCP message (a page, script, image or download answering a request
    /// that was seen). Only sources asked to skip such bodies set it.
    pub skipped: bool,
}

impl Body {
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The decoded body as text, if it is valid UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.data).ok()
    }
}

/// One server-sent event (WHATWG HTML, "Server-sent events").
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SseEvent {
    /// `event:` field; `None` means the default type `message`.
    pub event: Option<String>,
    /// `data:` lines joined with `\n`.
    pub data: String,
    /// `id:` field.
    pub id: Option<String>,
    /// `retry:` field, in milliseconds.
    pub retry: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// The request target as sent (origin form `/path?q`, absolute form
    /// `http://host/path` through a proxy, authority form for CONNECT).
    pub target: String,
    pub version: HttpVersion,
    pub headers: Headers,
    pub body: Body,
    /// Trailer fields of a chunked body.
    pub trailers: Headers,
}

impl Request {
    /// Host the request was addressed to: the Host header, else the authority
    /// of an absolute or authority-form target (HTTP/2 `:authority` is
    /// stored as `Host` by its source).
    pub fn host(&self) -> Option<&str> {
        if let Some(h) = self.headers.get_str("host") {
            if !h.is_empty() {
                return Some(h);
            }
        }
        authority_of(&self.target)
    }

    /// Path and query of the target, whatever its form (`/` when absent).
    pub fn path(&self) -> &str {
        path_of(&self.target)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub version: HttpVersion,
    pub status: u16,
    pub reason: String,
    pub headers: Headers,
    pub body: Body,
    pub trailers: Headers,
    /// Events of a `text/event-stream` body parsed so far (later ones come as
    /// [`SseUpdate`]s).
    pub sse_events: Vec<SseEvent>,
}

/// Why an exchange is less than a clean request/response pair.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Flags {
    /// A body exceeded the decoded-size cap.
    pub truncated: bool,
    /// Bytes were missing from the stream (a lost segment, snaplen).
    pub gap: bool,
    /// The input ended or the connection closed before the exchange was
    /// complete (e.g. no response, or a body cut short).
    pub incomplete: bool,
    /// The stream was picked up after its start; the first message seen may
    /// not be the first one sent.
    pub midstream: bool,
    /// The response is an open event stream; more events follow as
    /// [`SseUpdate`]s.
    pub streaming: bool,
    /// The source could not parse part of this exchange's messages.
    pub malformed: bool,
    /// The connection was switched to another protocol (CONNECT tunnel,
    /// `101 Switching Protocols`): what follows is not HTTP/1.
    pub tunnel: bool,
}

impl Flags {
    /// Names of the flags that are set, for output.
    pub fn names(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        let all = [
            (self.truncated, "truncated"),
            (self.gap, "gap"),
            (self.incomplete, "incomplete"),
            (self.midstream, "midstream"),
            (self.streaming, "streaming"),
            (self.malformed, "malformed"),
            (self.tunnel, "tunnel"),
        ];
        for (set, name) in all {
            if set {
                v.push(name);
            }
        }
        v
    }

    /// Sets every flag that is set in `other`.
    pub fn merge(&mut self, other: Flags) {
        self.truncated |= other.truncated;
        self.gap |= other.gap;
        self.incomplete |= other.incomplete;
        self.midstream |= other.midstream;
        self.streaming |= other.streaming;
        self.malformed |= other.malformed;
        self.tunnel |= other.tunnel;
    }
}

/// TLS facts about the connection that carried an exchange (later issues).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsInfo {
    pub sni: Option<String>,
    pub alpn: Vec<String>,
    pub version: Option<String>,
    pub ech: bool,
}

/// One HTTP request and its response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exchange {
    /// Id unique within one run; [`SseUpdate`]s refer to it.
    pub id: u64,
    pub origin: Origin,
    /// The network flow, when the source knows it (proxy logs may only know a
    /// client address, kept in `client_ip`).
    pub flow: Option<Flow>,
    /// Client address when there is no flow (proxy logs).
    pub client_ip: Option<IpAddr>,
    /// Authenticated user, when the source knows one (proxy logs).
    pub user: Option<String>,
    /// Time the request started (or the response, with no request).
    pub request_ts: Option<Timestamp>,
    /// Time the response head arrived.
    pub response_ts: Option<Timestamp>,
    /// `None` when only the response was seen (mid-stream pickup, gap).
    pub request: Option<Request>,
    /// `None` when no response was seen.
    pub response: Option<Response>,
    pub tls: Option<TlsInfo>,
    pub flags: Flags,
}

impl Exchange {
    /// An empty exchange with the given id; sources fill in the rest.
    pub fn new(id: u64) -> Exchange {
        Exchange {
            id,
            origin: Origin::default(),
            flow: None,
            client_ip: None,
            user: None,
            request_ts: None,
            response_ts: None,
            request: None,
            response: None,
            tls: None,
            flags: Flags::default(),
        }
    }

    /// Earliest known timestamp of the exchange.
    pub fn timestamp(&self) -> Option<Timestamp> {
        self.request_ts.or(self.response_ts)
    }

    /// The request's host; for a TLS connection whose traffic was not
    /// decrypted (no request), the server name of its ClientHello.
    pub fn host(&self) -> Option<&str> {
        match &self.request {
            Some(r) => r.host(),
            None => self.tls.as_ref().and_then(|t| t.sni.as_deref()),
        }
    }

    /// Hostname without port, lower-cased.
    pub fn hostname(&self) -> Option<String> {
        self.host().map(|h| strip_port(h).to_ascii_lowercase())
    }

    pub fn method(&self) -> Option<&str> {
        self.request.as_ref().map(|r| r.method.as_str())
    }

    pub fn path(&self) -> Option<&str> {
        self.request.as_ref().map(Request::path)
    }

    pub fn status(&self) -> Option<u16> {
        self.response.as_ref().map(|r| r.status)
    }

    pub fn http_version(&self) -> Option<HttpVersion> {
        self.request
            .as_ref()
            .map(|r| r.version)
            .or(self.response.as_ref().map(|r| r.version))
    }

    /// Client address: the flow's, else the one a log recorded.
    pub fn client_addr(&self) -> Option<IpAddr> {
        self.flow.as_ref().map(|f| f.client.ip()).or(self.client_ip)
    }
}

/// Events of an open `text/event-stream` response that arrived after its
/// exchange was emitted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SseUpdate {
    pub exchange_id: u64,
    pub flow_id: Option<u64>,
    pub ts: Timestamp,
    pub events: Vec<SseEvent>,
    /// The stream ended (closed, or the input ended); no more updates follow.
    pub end: bool,
    /// Problems met since the exchange was emitted (gap, truncation,
    /// incomplete when the input ended with the stream open).
    pub flags: Flags,
}

/// What a source produces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    Exchange(Box<Exchange>),
    SseUpdate(SseUpdate),
}

/// The authority (`host[:port]`) of an absolute-form (`http://h/p`) or
/// authority-form (`h:443`) request target.
pub fn authority_of(target: &str) -> Option<&str> {
    if let Some(idx) = target.find("://") {
        let rest = &target[idx + 3..];
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let auth = &rest[..end];
        // Drop userinfo.
        let auth = auth.rsplit_once('@').map(|(_, h)| h).unwrap_or(auth);
        return (!auth.is_empty()).then_some(auth);
    }
    if !target.starts_with('/') && !target.is_empty() && target != "*" {
        return Some(target);
    }
    None
}

/// Path and query of a request target in any form; `/` when it has none.
pub fn path_of(target: &str) -> &str {
    if let Some(idx) = target.find("://") {
        let rest = &target[idx + 3..];
        return match rest.find(['/', '?']) {
            Some(p) => &rest[p..],
            None => "/",
        };
    }
    if target.starts_with('/') {
        target
    } else {
        "/"
    }
}

/// `host:port` → `host`, `[v6]:port` → `v6`.
pub fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') && p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_lookup_ignores_case_and_keeps_original() {
        let mut h = Headers::default();
        h.push("Content-Type", "text/event-stream");
        h.push("X-A", "1");
        h.push("x-a", "2");
        assert_eq!(h.get_str("content-type"), Some("text/event-stream"));
        assert_eq!(h.0[0].name, "Content-Type");
        let all: Vec<_> = h.iter_named("X-A").collect();
        assert_eq!(all, vec![b"1".as_slice(), b"2".as_slice()]);
        assert!(!h.contains("missing"));
    }

    #[test]
    fn target_forms() {
        assert_eq!(
            authority_of("http://mcp.example.com:8080/mcp?x=1"),
            Some("mcp.example.com:8080")
        );
        assert_eq!(authority_of("http://u:p@h.example/"), Some("h.example"));
        assert_eq!(authority_of("h.example:443"), Some("h.example:443"));
        assert_eq!(authority_of("/mcp"), None);
        assert_eq!(authority_of("*"), None);
        assert_eq!(path_of("http://h/mcp?x"), "/mcp?x");
        assert_eq!(path_of("http://h"), "/");
        assert_eq!(path_of("http://h?q"), "?q");
        assert_eq!(path_of("/sse"), "/sse");
        assert_eq!(path_of("h:443"), "/");
    }

    #[test]
    fn strip_port_forms() {
        assert_eq!(strip_port("a.example:80"), "a.example");
        assert_eq!(strip_port("a.example"), "a.example");
        assert_eq!(strip_port("[::1]:8080"), "::1");
        assert_eq!(strip_port("::1"), "::1");
    }

    #[test]
    fn request_host_prefers_header_then_target() {
        let mut r = Request {
            method: "GET".into(),
            target: "http://proxy-target.example/x".into(),
            version: HttpVersion::Http11,
            headers: Headers::default(),
            body: Body::default(),
            trailers: Headers::default(),
        };
        assert_eq!(r.host(), Some("proxy-target.example"));
        r.headers.push("Host", "h.example");
        assert_eq!(r.host(), Some("h.example"));
        assert_eq!(r.path(), "/x");
    }

    #[test]
    fn flag_names_and_merge() {
        let mut f = Flags {
            gap: true,
            ..Flags::default()
        };
        f.merge(Flags {
            truncated: true,
            ..Flags::default()
        });
        assert_eq!(f.names(), vec!["truncated", "gap"]);
    }
}

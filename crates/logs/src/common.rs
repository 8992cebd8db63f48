//! Building exchanges from logged fields: versions, bodies (content
//! decoding, caps), event streams, synthesized headers.

use shadowmcp_exchange::{
    authority_of, Body, Exchange, Headers, HttpVersion, Request, Response, SseEvent,
};
use shadowmcp_http1::{decode_body, SseParser};

use crate::LogConfig;

/// `HTTP/1.1`, `1.1`, `HTTP/2.0`, `h2`, `http/3`… (case-insensitive).
pub(crate) fn parse_version(s: &str) -> Option<HttpVersion> {
    let l = s.trim().to_ascii_lowercase();
    let v = l.strip_prefix("http/").unwrap_or(&l);
    match v {
        "1.0" => Some(HttpVersion::Http10),
        "1.1" => Some(HttpVersion::Http11),
        "2" | "2.0" | "h2" | "h2c" => Some(HttpVersion::Http2),
        "3" | "3.0" | "h3" => Some(HttpVersion::Http3),
        _ => None,
    }
}

/// Whether a logged body is still content-encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Encoded {
    /// Decide from the bytes: the outermost Content-Encoding's magic
    /// number (gzip, zstd, zlib), or for codings without one (br, raw
    /// deflate) bytes that are not UTF-8 text.
    Auto,
    /// The log says the bytes are as sent: decode.
    Yes,
    /// The log says the bytes are already decoded.
    No,
}

fn content_codings(headers: &Headers) -> Vec<String> {
    headers
        .iter_named("content-encoding")
        .flat_map(|v| v.split(|&b| b == b','))
        .map(|v| String::from_utf8_lossy(v).trim().to_ascii_lowercase())
        .filter(|v| !v.is_empty())
        .collect()
}

fn looks_encoded(coding: &str, raw: &[u8]) -> bool {
    match coding {
        "gzip" | "x-gzip" => raw.starts_with(&[0x1f, 0x8b]),
        "zstd" => raw.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]),
        "deflate" => match raw {
            [b0, b1, ..] => {
                let zlib = b0 & 0x0f == 8
                    && b0 >> 4 <= 7
                    && (u16::from(*b0) << 8 | u16::from(*b1)) % 31 == 0;
                zlib || std::str::from_utf8(raw).is_err()
            }
            _ => false,
        },
        "br" => std::str::from_utf8(raw).is_err(),
        _ => false,
    }
}

/// A body from logged bytes: content-decoded when it still is encoded
/// (see [`Encoded`]), capped at `max`. `encodings` lists the
/// Content-Encoding the sender applied even when the log had already
/// undone it.
pub(crate) fn make_body(headers: &Headers, raw: &[u8], encoded: Encoded, max: usize) -> Body {
    let codings = content_codings(headers);
    let outer = codings
        .iter()
        .rev()
        .find(|c| c.as_str() != "identity")
        .map(String::as_str);
    let decode = match (encoded, outer) {
        (_, None) | (Encoded::No, _) => false,
        (Encoded::Yes, Some(_)) => true,
        (Encoded::Auto, Some(c)) => looks_encoded(c, raw),
    };
    if decode {
        let body = decode_body(headers, raw, max);
        // A guess that did not hold (binary bytes that were already
        // decoded): keep them as logged.
        if !(encoded == Encoded::Auto && body.decode_error.is_some() && body.data.is_empty()) {
            return body;
        }
    }
    let keep = raw.len().min(max);
    Body {
        data: raw.get(..keep).unwrap_or_default().to_vec(),
        wire_len: raw.len() as u64,
        decoded_len: raw.len() as u64,
        encodings: codings,
        truncated: raw.len() > max,
        decode_error: None,
        skipped: false,
    }
}

/// Media type of Content-Type, lower-cased, without parameters.
pub(crate) fn media_type(headers: &Headers) -> Option<String> {
    let v = headers.get_str("content-type")?;
    let mt = v.split(';').next().unwrap_or_default().trim();
    Some(mt.to_ascii_lowercase())
}

pub(crate) fn is_event_stream(headers: &Headers) -> bool {
    media_type(headers).as_deref() == Some("text/event-stream")
}

/// Splits a complete event-stream body into events, as the HTTP/1 parser
/// does: `body.data` is emptied (the content is in the events). Returns
/// the events and whether any was cut or dropped.
pub(crate) fn split_sse(body: &mut Body, config: &LogConfig) -> (Vec<SseEvent>, bool) {
    let mut parser = SseParser::new(config.max_sse_event_bytes);
    let mut events = Vec::new();
    // Pieces keep the parser's pending events under its own limit.
    let piece = config.max_sse_event_bytes.clamp(1, 16 << 10);
    for chunk in body.data.chunks(piece) {
        parser.feed(chunk);
        events.extend(parser.take_events());
    }
    parser.finish();
    let cut = parser.truncated_events() > 0 || parser.overflowed();
    body.data = Vec::new();
    (events, cut)
}

/// A request with no trailers.
pub(crate) fn request(
    method: &str,
    target: &str,
    version: HttpVersion,
    headers: Headers,
    body: Body,
) -> Request {
    Request {
        method: method.to_string(),
        target: target.to_string(),
        version,
        headers,
        body,
        trailers: Headers::default(),
    }
}

/// A response with no trailers; an event-stream body is split into events
/// (`truncated` is set on `ex_flags_truncated` when events were cut).
pub(crate) fn response(
    version: HttpVersion,
    status: u16,
    reason: &str,
    headers: Headers,
    mut body: Body,
    config: &LogConfig,
    truncated: &mut bool,
) -> Response {
    let mut sse_events = Vec::new();
    if is_event_stream(&headers) && !body.data.is_empty() {
        let (events, cut) = split_sse(&mut body, config);
        sse_events = events;
        *truncated |= cut;
    }
    *truncated |= body.truncated;
    Response {
        version,
        status,
        reason: reason.to_string(),
        headers,
        body,
        trailers: Headers::default(),
        sse_events,
    }
}

/// A `Host` header for a log that only has the URL (or a host field).
pub(crate) fn push_host(headers: &mut Headers, target: &str) {
    if let Some(a) = authority_of(target) {
        headers.push("Host", a);
    }
}

/// An exchange without id or origin (the driver sets them).
pub(crate) fn exchange() -> Box<Exchange> {
    Box::new(Exchange::new(0))
}

/// `%XX` decoding (Squid escapes user names and some fields this way);
/// invalid escapes are kept as they are.
pub(crate) fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%' {
            let hex = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(v) = hex {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// FNV-1a 64 folded to 52 bits (exact in JSON numbers), never 0: a flow
/// id that stays the same across runs and Rust versions.
pub(crate) fn stable_id(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    ((h ^ (h >> 52)) & ((1 << 52) - 1)).max(1)
}

/// `-` (and empty) mean "not logged" in Squid and Zeek.
pub(crate) fn dash_none(s: &str) -> Option<&str> {
    let t = s.trim();
    (!t.is_empty() && t != "-").then_some(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn with_encoding(enc: &str) -> Headers {
        let mut h = Headers::default();
        h.push("Content-Encoding", enc);
        h
    }

    #[test]
    fn auto_decodes_only_when_the_bytes_are_still_encoded() {
        let h = with_encoding("gzip");
        let body = make_body(&h, &gz(b"{\"a\":1}"), Encoded::Auto, 100);
        assert_eq!(body.data, b"{\"a\":1}");
        assert_eq!(body.encodings, vec!["gzip"]);
        // Already decoded by the proxy: kept.
        let body = make_body(&h, b"{\"a\":1}", Encoded::Auto, 100);
        assert_eq!(body.data, b"{\"a\":1}");
        assert_eq!(body.decode_error, None);
        // The log says it was decoded: never touched.
        let raw = gz(b"x");
        assert_eq!(make_body(&h, &raw, Encoded::No, 100).data, raw);
        // The log says it is encoded, but it is not: an error, as on the wire.
        assert!(make_body(&h, b"plain", Encoded::Yes, 100)
            .decode_error
            .is_some());
        // br has no magic: UTF-8 text is taken as decoded.
        let br = with_encoding("br");
        assert_eq!(make_body(&br, b"text", Encoded::Auto, 100).data, b"text");
        // Binary that is not brotli either: kept as logged.
        let b = make_body(&br, &[0xff, 0xfe, 0x00], Encoded::Auto, 100);
        assert_eq!((b.data, b.decode_error), (vec![0xff, 0xfe, 0x00], None));
    }

    #[test]
    fn plain_body_is_capped() {
        let b = make_body(&Headers::default(), b"abcdef", Encoded::Auto, 4);
        assert_eq!(b.data, b"abcd");
        assert!(b.truncated);
        assert_eq!((b.wire_len, b.decoded_len), (6, 6));
    }

    #[test]
    fn versions_and_helpers() {
        assert_eq!(parse_version("HTTP/1.0"), Some(HttpVersion::Http10));
        assert_eq!(parse_version("1.1"), Some(HttpVersion::Http11));
        assert_eq!(parse_version("h2"), Some(HttpVersion::Http2));
        assert_eq!(parse_version("HTTP/2.0"), Some(HttpVersion::Http2));
        assert_eq!(parse_version("http/3"), Some(HttpVersion::Http3));
        assert_eq!(parse_version("HTTP/0.9"), None);
        assert_eq!(percent_decode("al%20ice%zz%4"), "al ice%zz%4");
        assert_eq!(
            stable_id(b"CHhAvVGS1DHFjwGM9"),
            stable_id(b"CHhAvVGS1DHFjwGM9")
        );
        assert_ne!(stable_id(b"a"), stable_id(b"b"));
        assert!(stable_id(b"a") < 1 << 52);
        assert_eq!(dash_none(" - "), None);
        assert_eq!(dash_none("x"), Some("x"));
    }

    #[test]
    fn sse_split_into_events() {
        let mut body = Body {
            data:
                b"event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1}\n\ndata: b\n\ndata: partial"
                    .to_vec(),
            ..Body::default()
        };
        let cfg = LogConfig::default();
        let (events, cut) = split_sse(&mut body, &cfg);
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].event.as_deref(), Some("message"));
        assert_eq!(events[1].data, "b");
        assert!(!cut);
        assert!(body.data.is_empty());
    }
}

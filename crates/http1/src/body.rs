//! Content decoding of a whole body held in memory, for sources that get
//! bodies in one piece (proxy logs) rather than from a TCP stream.

use shadowmcp_exchange::{Body, Headers};

use crate::decode::{ContentDecoder, Sink};
use crate::parse::list_values;

/// zstd window limit for HTTP (RFC 9659): 2^23 = 8 MiB.
const ZSTD_WINDOW_LOG_MAX: u32 = 23;

/// Collects decoded bytes up to a cap, counting the rest.
struct CappedSink {
    data: Vec<u8>,
    cap: usize,
    decoded_len: u64,
    truncated: bool,
}

impl Sink for CappedSink {
    fn accept(&mut self, d: &[u8]) -> bool {
        self.decoded_len = self.decoded_len.saturating_add(d.len() as u64);
        let room = self.cap.saturating_sub(self.data.len());
        if d.len() > room {
            self.data
                .extend_from_slice(d.get(..room).unwrap_or_default());
            self.truncated = true;
            return false;
        }
        self.data.extend_from_slice(d);
        true
    }
}

/// Undoes the `Content-Encoding` of `headers` (gzip, x-gzip, deflate, br,
/// zstd, stacked in any order) on a complete body `raw`, keeping at most
/// `max` decoded bytes, exactly as [`Connection`](crate::Connection) does for
/// bodies read from the wire: the same decoders, the same bomb protection
/// (decoding stops at the cap, `truncated`), the same `decode_error` on bad
/// or unknown codings (then `data` holds what decoded before the error, or
/// the raw bytes for an unknown coding).
///
/// ```
/// use shadowmcp_exchange::Headers;
/// use shadowmcp_http1::decode_body;
/// let mut h = Headers::default();
/// h.push("Content-Type", "application/json");
/// let body = decode_body(&h, b"{\"jsonrpc\":\"2.0\"}", 8 << 20);
/// assert_eq!(body.data, b"{\"jsonrpc\":\"2.0\"}");
/// assert_eq!(body.wire_len, 17);
/// assert!(body.encodings.is_empty() && body.decode_error.is_none());
/// ```
pub fn decode_body(headers: &Headers, raw: &[u8], max: usize) -> Body {
    let encodings = list_values(headers, "content-encoding");
    let mut decoder = ContentDecoder::new(&encodings, ZSTD_WINDOW_LOG_MAX);
    let mut sink = CappedSink {
        data: Vec::new(),
        cap: max,
        decoded_len: 0,
        truncated: false,
    };
    decoder.push(raw, &mut sink);
    if !raw.is_empty() {
        decoder.finish(&mut sink);
    }
    Body {
        data: sink.data,
        wire_len: raw.len() as u64,
        decoded_len: sink.decoded_len,
        encodings,
        truncated: sink.truncated,
        decode_error: decoder.error().cloned(),
        skipped: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn headers(encoding: &str) -> Headers {
        let mut h = Headers::default();
        h.push("Content-Encoding", encoding);
        h
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn gzip_body_is_decoded_and_lengths_kept() {
        let wire = gzip(b"{\"jsonrpc\":\"2.0\",\"method\":\"initialize\"}");
        let body = decode_body(&headers("gzip"), &wire, 1 << 20);
        assert_eq!(
            body.data,
            b"{\"jsonrpc\":\"2.0\",\"method\":\"initialize\"}"
        );
        assert_eq!(body.wire_len, wire.len() as u64);
        assert_eq!(body.decoded_len, 39);
        assert_eq!(body.encodings, vec!["gzip".to_string()]);
        assert!(!body.truncated);
        assert_eq!(body.decode_error, None);
    }

    #[test]
    fn stacked_codings_are_undone_in_reverse() {
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&gzip(b"inner")).unwrap();
        let wire = z.finish().unwrap();
        let body = decode_body(&headers("gzip, deflate"), &wire, 100);
        assert_eq!(body.data, b"inner");
        assert_eq!(body.decode_error, None);
    }

    #[test]
    fn cap_stops_decoding_and_flags_truncation() {
        let wire = gzip(&vec![b'a'; 1 << 20]);
        let body = decode_body(&headers("gzip"), &wire, 1000);
        assert_eq!(body.data.len(), 1000);
        assert!(body.truncated);
        // Decoding stopped near the cap instead of inflating everything.
        assert!(body.decoded_len < 1 << 20);
        let plain = decode_body(&Headers::default(), b"abcdef", 4);
        assert_eq!(plain.data, b"abcd");
        assert!(plain.truncated);
        assert_eq!(plain.decoded_len, 6);
    }

    #[test]
    fn bad_and_unknown_codings_set_decode_error() {
        let bad = decode_body(&headers("gzip"), b"not gzip", 100);
        assert!(bad.decode_error.is_some());
        let unknown = decode_body(&headers("compress"), b"raw", 100);
        assert_eq!(unknown.data, b"raw");
        assert!(unknown.decode_error.unwrap().contains("compress"));
        let empty = decode_body(&headers("gzip"), b"", 100);
        assert_eq!(empty.decode_error, None);
        assert!(empty.data.is_empty());
    }
}

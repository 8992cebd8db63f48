//! HTTP/1.x over TCP: turns the two reassembled byte streams of one
//! connection into [`shadowmcp_exchange::Record`]s.
//!
//! One [`Connection`] per TCP connection. Feed it each direction's bytes in
//! order, in any split ([`Connection::on_data`]), tell it about holes
//! ([`Connection::on_gap`]), half closes ([`Connection::on_fin`]) and the end
//! ([`Connection::on_close`]). It emits one [`Exchange`](shadowmcp_exchange::Exchange)
//! per request/response pair, requests matched to responses in order
//! (pipelining), bodies de-chunked and content-decoded under a cap, and
//! `text/event-stream` responses as a streaming exchange followed by
//! [`SseUpdate`](shadowmcp_exchange::SseUpdate)s.
//!
//! Hostile input is expected: every buffer is capped ([`Http1Config`]),
//! lengths from the wire are never trusted, malformed input is counted in
//! [`Http1Stats`] and flagged on the exchange, and the parser resynchronises
//! on the next message start.
//!
//! ```
//! use std::sync::Arc;
//! use shadowmcp_exchange::{Flow, Origin, Record, Timestamp, Transport};
//! use shadowmcp_http1::{Connection, Direction, ExchangeIds, Http1Config};
//!
//! let flow = Flow {
//!     id: 1,
//!     client: "10.0.0.1:50000".parse().unwrap(),
//!     server: "10.0.0.2:80".parse().unwrap(),
//!     transport: Transport::Tcp,
//! };
//! let mut conn = Connection::new(
//!     flow,
//!     Origin::default(),
//!     false,
//!     Arc::new(Http1Config::default()),
//!     ExchangeIds::new(),
//! );
//! let ts = Timestamp::from_nanos(0);
//! let mut out = Vec::new();
//! conn.on_data(Direction::ToServer, ts, b"GET /mcp HTTP/1.1\r\nHost: a.example\r\n\r\n", &mut out);
//! conn.on_data(Direction::ToClient, ts, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", &mut out);
//! let Record::Exchange(ex) = &out[0] else { panic!() };
//! assert_eq!(ex.host(), Some("a.example"));
//! assert_eq!(ex.response.as_ref().unwrap().body.data, b"ok");
//! ```

#![forbid(unsafe_code)]

mod body;
mod conn;
mod decode;
mod parse;
mod parts;
mod sse;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

pub use body::decode_body;
pub use conn::{Connection, H2cUpgrade};
pub use parts::ExchangeParts;
pub use sse::{EventStreamOut, Flushed, SseParser};

/// Direction of bytes on the connection, as the transport saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From the connection's initiator (the client) to the server.
    ToServer,
    /// From the server to the client.
    ToClient,
}

/// Limits and switches. Every buffer the parser keeps is bounded by one of
/// these.
#[derive(Clone, Debug)]
pub struct Http1Config {
    /// Decoded bytes kept per body; the rest is counted, not kept
    /// (`Body::truncated`). Default 8 MiB.
    pub max_body: usize,
    /// Largest request/response head (start line + header fields), and
    /// largest trailer section. Default 64 KiB.
    pub max_header_bytes: usize,
    /// Header fields kept per head; more are dropped and flagged. Default 256.
    pub max_headers: usize,
    /// Requests waiting for their response (pipelining). When full the
    /// oldest is emitted without a response. Default 128.
    pub max_pending_requests: usize,
    /// Decoded request-body bytes kept across all requests waiting for a
    /// response; a new request body gets `max_body` or what is left of
    /// this, whichever is less (the rest is counted, `truncated`).
    /// Default 32 MiB.
    pub max_pending_body_bytes: usize,
    /// Largest server-sent event (and SSE line); bigger ones are cut and
    /// flagged `truncated`. Also the batch size at which queued events are
    /// handed out early. Default 1 MiB.
    pub max_sse_event_bytes: usize,
    /// Largest chunk-size line (with chunk extensions). Default 4 KiB.
    pub max_chunk_line: usize,
    /// Longest line kept while scanning for a message start after lost
    /// sync. Default 8 KiB.
    pub max_resync_line: usize,
    /// Client bytes held while a CONNECT or Upgrade request waits for its
    /// response (they may be tunnel data). Default 64 KiB.
    pub max_held_bytes: usize,
    /// Largest zstd window accepted, as a power of two. Default 23 (8 MiB,
    /// the limit RFC 9659 sets for HTTP).
    pub zstd_window_log_max: u32,
    /// Decode Content-Encoding (gzip, deflate, br, zstd). Default true.
    pub decode_content: bool,
    /// Memory shared by the bodies being received on every connection that
    /// uses this config (see [`BodyBudget`]). `None`: only `max_body`
    /// bounds each body. Default: 32 MiB.
    pub body_budget: Option<Arc<BodyBudget>>,
    /// Response bodies whose Content-Type is declared and is neither JSON
    /// (any media type naming `json`), an event stream nor plain text
    /// (pages, scripts, images, downloads) are not decoded or kept when
    /// their request was seen: only their wire length is counted and
    /// `Body::skipped` is set. MCP clients read messages only from JSON
    /// bodies and event streams, and the request, which carries the
    /// client's messages, is always kept. Default false (every body kept).
    pub skip_non_mcp_response_bodies: bool,
}

/// Bytes of bodies being received, all connections together. Each body
/// always keeps its first [`BodyBudget::FLOOR`] bytes (MCP messages are
/// small and must not be starved by downloads); beyond that, bodies draw on
/// the shared limit and are cut (`Body::truncated`, counted by
/// [`BodyBudget::cuts`]) when it is spent. A body's bytes
/// return to the budget when it is complete.
#[derive(Debug)]
pub struct BodyBudget {
    limit: usize,
    used: AtomicUsize,
    cuts: AtomicU64,
}

impl BodyBudget {
    /// Bytes each body keeps whatever the budget.
    pub const FLOOR: usize = 16 << 10;

    pub fn new(limit: usize) -> BodyBudget {
        BodyBudget {
            limit,
            used: AtomicUsize::new(0),
            cuts: AtomicU64::new(0),
        }
    }

    /// Bodies cut because the budget was spent.
    pub fn cuts(&self) -> u64 {
        self.cuts.load(Ordering::Relaxed)
    }

    pub(crate) fn count_cut(&self) {
        self.cuts.fetch_add(1, Ordering::Relaxed);
    }

    /// Takes up to `want` bytes; returns how many were granted.
    pub fn take(&self, want: usize) -> usize {
        let mut granted = 0;
        let _ = self
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                granted = want.min(self.limit.saturating_sub(used));
                Some(used + granted)
            });
        granted
    }

    pub fn give_back(&self, n: usize) {
        let _ = self
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                Some(used.saturating_sub(n))
            });
    }

    /// Bytes currently taken.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }
}

impl Default for Http1Config {
    fn default() -> Self {
        Http1Config {
            max_body: 8 << 20,
            max_header_bytes: 64 << 10,
            max_headers: 256,
            max_pending_requests: 128,
            max_pending_body_bytes: 32 << 20,
            max_sse_event_bytes: 1 << 20,
            max_chunk_line: 4 << 10,
            max_resync_line: 8 << 10,
            max_held_bytes: 64 << 10,
            zstd_window_log_max: 23,
            decode_content: true,
            body_budget: Some(Arc::new(BodyBudget::new(32 << 20))),
            skip_non_mcp_response_bodies: false,
        }
    }
}

/// Allocates exchange ids. Cloning shares the counter.
///
/// [`ExchangeIds::new`] counts 1, 2, 3… across every connection that shares
/// it: fine for one sequential source. [`ExchangeIds::for_flow`] derives the
/// ids of one connection from its flow id and the exchange's place on the
/// connection, so the same capture gives the same ids however its flows are
/// spread over threads.
#[derive(Clone, Debug)]
pub struct ExchangeIds {
    next: Arc<AtomicU64>,
    flow: Option<u64>,
}

impl ExchangeIds {
    /// A counter whose first id is 1.
    pub fn new() -> ExchangeIds {
        ExchangeIds::starting_at(1)
    }

    pub fn starting_at(first: u64) -> ExchangeIds {
        ExchangeIds {
            next: Arc::new(AtomicU64::new(first)),
            flow: None,
        }
    }

    /// Ids for the exchanges of one connection: a 52-bit mix of `flow_id`
    /// and the exchange's number on the connection (exact in JSON numbers,
    /// never 0; distinct ids may collide with probability about n²/2⁵³).
    pub fn for_flow(flow_id: u64) -> ExchangeIds {
        ExchangeIds {
            next: Arc::new(AtomicU64::new(0)),
            flow: Some(flow_id),
        }
    }

    pub fn next_id(&self) -> u64 {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        match self.flow {
            None => n,
            Some(flow) => {
                // SplitMix64 finaliser over the pair.
                let mut z = flow ^ n.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                z ^= z >> 31;
                (z & ((1 << 52) - 1)).max(1)
            }
        }
    }
}

impl Default for ExchangeIds {
    fn default() -> Self {
        ExchangeIds::new()
    }
}

/// Kinds of malformed input, counted in [`Http1Stats::parse_errors`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ParseErrorKind {
    InvalidRequestLine,
    InvalidStatusLine,
    InvalidHeaderLine,
    /// Whitespace between a field name and its colon (a smuggling vector).
    WhitespaceInHeaderName,
    HeadTooLarge,
    TooManyHeaders,
    InvalidContentLength,
    ConflictingContentLength,
    /// Both Transfer-Encoding and Content-Length (RFC 9112 §6.3: TE wins).
    TransferEncodingWithContentLength,
    TransferEncodingInHttp10,
    /// A transfer coding other than a final `chunked`.
    UnsupportedTransferEncoding,
    InvalidChunkSize,
    ChunkSizeOverflow,
    ChunkLineTooLong,
    /// Chunk data not followed by CRLF.
    MissingChunkDelimiter,
    TrailersTooLarge,
    /// A response with no request waiting for it (not on a mid-stream
    /// connection and not after a gap).
    UnsolicitedResponse,
    /// More client bytes than `max_held_bytes` while waiting for a
    /// CONNECT/Upgrade response.
    HeldBytesOverflow,
}

impl ParseErrorKind {
    pub const ALL: [ParseErrorKind; 18] = [
        ParseErrorKind::InvalidRequestLine,
        ParseErrorKind::InvalidStatusLine,
        ParseErrorKind::InvalidHeaderLine,
        ParseErrorKind::WhitespaceInHeaderName,
        ParseErrorKind::HeadTooLarge,
        ParseErrorKind::TooManyHeaders,
        ParseErrorKind::InvalidContentLength,
        ParseErrorKind::ConflictingContentLength,
        ParseErrorKind::TransferEncodingWithContentLength,
        ParseErrorKind::TransferEncodingInHttp10,
        ParseErrorKind::UnsupportedTransferEncoding,
        ParseErrorKind::InvalidChunkSize,
        ParseErrorKind::ChunkSizeOverflow,
        ParseErrorKind::ChunkLineTooLong,
        ParseErrorKind::MissingChunkDelimiter,
        ParseErrorKind::TrailersTooLarge,
        ParseErrorKind::UnsolicitedResponse,
        ParseErrorKind::HeldBytesOverflow,
    ];

    /// Stable snake_case name, for stats output.
    pub fn name(self) -> &'static str {
        match self {
            ParseErrorKind::InvalidRequestLine => "invalid_request_line",
            ParseErrorKind::InvalidStatusLine => "invalid_status_line",
            ParseErrorKind::InvalidHeaderLine => "invalid_header_line",
            ParseErrorKind::WhitespaceInHeaderName => "whitespace_in_header_name",
            ParseErrorKind::HeadTooLarge => "head_too_large",
            ParseErrorKind::TooManyHeaders => "too_many_headers",
            ParseErrorKind::InvalidContentLength => "invalid_content_length",
            ParseErrorKind::ConflictingContentLength => "conflicting_content_length",
            ParseErrorKind::TransferEncodingWithContentLength => {
                "transfer_encoding_with_content_length"
            }
            ParseErrorKind::TransferEncodingInHttp10 => "transfer_encoding_in_http10",
            ParseErrorKind::UnsupportedTransferEncoding => "unsupported_transfer_encoding",
            ParseErrorKind::InvalidChunkSize => "invalid_chunk_size",
            ParseErrorKind::ChunkSizeOverflow => "chunk_size_overflow",
            ParseErrorKind::ChunkLineTooLong => "chunk_line_too_long",
            ParseErrorKind::MissingChunkDelimiter => "missing_chunk_delimiter",
            ParseErrorKind::TrailersTooLarge => "trailers_too_large",
            ParseErrorKind::UnsolicitedResponse => "unsolicited_response",
            ParseErrorKind::HeldBytesOverflow => "held_bytes_overflow",
        }
    }

    fn index(self) -> usize {
        ParseErrorKind::ALL
            .iter()
            .position(|k| *k == self)
            .unwrap_or(0)
    }
}

/// Parse error counts by kind.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ParseErrors([u64; ParseErrorKind::ALL.len()]);

impl ParseErrors {
    pub fn get(&self, kind: ParseErrorKind) -> u64 {
        self.0.get(kind.index()).copied().unwrap_or(0)
    }

    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// Kinds with a non-zero count.
    pub fn iter(&self) -> impl Iterator<Item = (ParseErrorKind, u64)> + '_ {
        ParseErrorKind::ALL
            .iter()
            .map(|k| (*k, self.get(*k)))
            .filter(|(_, n)| *n > 0)
    }

    pub(crate) fn add(&mut self, kind: ParseErrorKind) {
        if let Some(n) = self.0.get_mut(kind.index()) {
            *n += 1;
        }
    }
}

/// Counters of one connection (add them up across connections).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Http1Stats {
    /// Request heads parsed.
    pub requests: u64,
    /// Final response heads parsed.
    pub responses: u64,
    /// 1xx interim responses skipped (not 101).
    pub interim_responses: u64,
    /// Exchange records emitted.
    pub exchanges: u64,
    /// Server-sent events handed out.
    pub sse_events: u64,
    /// Server-sent events cut by `max_sse_event_bytes`.
    pub sse_events_truncated: u64,
    pub parse_errors: ParseErrors,
    /// Messages whose framing was ambiguous in a way request smuggling uses
    /// (TE with CL, conflicting CL, unknown request framing, whitespace
    /// before a colon).
    pub smuggling_indicators: u64,
    /// obs-fold continuation lines joined.
    pub obs_folds: u64,
    /// Bytes reported missing by `on_gap`.
    pub gap_bytes: u64,
    /// Times a direction lost sync and started scanning for a message start.
    pub sync_losses: u64,
    /// Message starts found by scanning (after lost sync or mid-stream).
    pub resyncs: u64,
    /// Bytes skipped while scanning for a message start.
    pub bytes_skipped: u64,
    /// Bytes after a CONNECT/101 switch or an HTTP/2 preface (not parsed).
    pub tunnel_bytes: u64,
    pub tunnels: u64,
    /// `PRI * HTTP/2.0` seen: the connection speaks HTTP/2 (not parsed).
    pub http2_prior_knowledge: u64,
    pub responses_without_request: u64,
    pub requests_without_response: u64,
    /// Requests emitted without response because the pending queue was full.
    pub pending_overflow: u64,
    /// Bodies whose decoded size exceeded `max_body`.
    pub bodies_truncated: u64,
    /// Bodies whose content decoding failed or was not possible.
    pub decode_errors: u64,
    /// Mid-stream connections whose directions were found reversed.
    pub direction_swaps: u64,
    /// Bytes received after `on_close` (ignored).
    pub bytes_after_close: u64,
}

impl Http1Stats {
    /// Adds another connection's counters to these.
    pub fn merge(&mut self, other: &Http1Stats) {
        let Http1Stats {
            requests,
            responses,
            interim_responses,
            exchanges,
            sse_events,
            sse_events_truncated,
            parse_errors,
            smuggling_indicators,
            obs_folds,
            gap_bytes,
            sync_losses,
            resyncs,
            bytes_skipped,
            tunnel_bytes,
            tunnels,
            http2_prior_knowledge,
            responses_without_request,
            requests_without_response,
            pending_overflow,
            bodies_truncated,
            decode_errors,
            direction_swaps,
            bytes_after_close,
        } = other;
        self.requests += requests;
        self.responses += responses;
        self.interim_responses += interim_responses;
        self.exchanges += exchanges;
        self.sse_events += sse_events;
        self.sse_events_truncated += sse_events_truncated;
        for (a, b) in self.parse_errors.0.iter_mut().zip(parse_errors.0.iter()) {
            *a += b;
        }
        self.smuggling_indicators += smuggling_indicators;
        self.obs_folds += obs_folds;
        self.gap_bytes += gap_bytes;
        self.sync_losses += sync_losses;
        self.resyncs += resyncs;
        self.bytes_skipped += bytes_skipped;
        self.tunnel_bytes += tunnel_bytes;
        self.tunnels += tunnels;
        self.http2_prior_knowledge += http2_prior_knowledge;
        self.responses_without_request += responses_without_request;
        self.requests_without_response += requests_without_response;
        self.pending_overflow += pending_overflow;
        self.bodies_truncated += bodies_truncated;
        self.decode_errors += decode_errors;
        self.direction_swaps += direction_swaps;
        self.bytes_after_close += bytes_after_close;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn flow_ids_are_deterministic_and_distinct() {
        let a = super::ExchangeIds::for_flow(42);
        let b = super::ExchangeIds::for_flow(42);
        let first: Vec<u64> = (0..100).map(|_| a.next_id()).collect();
        let again: Vec<u64> = (0..100).map(|_| b.next_id()).collect();
        assert_eq!(first, again);
        let mut sorted = first.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 100);
        assert!(first.iter().all(|&id| id > 0 && id < 1 << 52));
        let other = super::ExchangeIds::for_flow(43);
        assert!(!first.contains(&other.next_id()));
    }

    use super::*;

    #[test]
    fn stats_merge_adds_every_counter() {
        let mut a = Http1Stats {
            requests: 2,
            bytes_after_close: 1,
            ..Http1Stats::default()
        };
        a.parse_errors.add(ParseErrorKind::HeadTooLarge);
        let mut b = a.clone();
        b.parse_errors.add(ParseErrorKind::InvalidChunkSize);
        a.merge(&b);
        assert_eq!(a.requests, 4);
        assert_eq!(a.bytes_after_close, 2);
        assert_eq!(a.parse_errors.get(ParseErrorKind::HeadTooLarge), 2);
        assert_eq!(a.parse_errors.get(ParseErrorKind::InvalidChunkSize), 1);
        assert_eq!(a.parse_errors.total(), 3);
    }

    #[test]
    fn error_kind_names_are_distinct() {
        let names: std::collections::HashSet<_> =
            ParseErrorKind::ALL.iter().map(|k| k.name()).collect();
        assert_eq!(names.len(), ParseErrorKind::ALL.len());
        for (i, k) in ParseErrorKind::ALL.iter().enumerate() {
            assert_eq!(k.index(), i);
        }
    }

    #[test]
    fn ids_are_shared_between_clones() {
        let a = ExchangeIds::starting_at(10);
        let b = a.clone();
        assert_eq!((a.next_id(), b.next_id(), a.next_id()), (10, 11, 12));
    }
}

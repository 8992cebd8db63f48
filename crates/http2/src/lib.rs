//! HTTP/2 over TCP (RFC 9113, HPACK RFC 7541): turns the two reassembled
//! byte streams of one connection into [`shadowmcp_exchange::Record`]s.
//!
//! One [`Connection`] per TCP connection, driven exactly like
//! `shadowmcp_http1::Connection`: feed each direction's bytes in order, in
//! any split ([`Connection::on_data`]), report holes ([`Connection::on_gap`]),
//! half closes ([`Connection::on_fin`]) and the end
//! ([`Connection::on_close`]). Each HTTP/2 stream becomes one
//! [`Exchange`](shadowmcp_exchange::Exchange) with
//! `version: HttpVersion::Http2`: `:method` → `method`, `:path` → `target`
//! (`:authority` for CONNECT), `:authority` → a `Host` header when the
//! request has none, `:status` → `status`; `:scheme` and `:protocol` stay in
//! the headers under their own names. Bodies are content-decoded under a
//! cap, and `text/event-stream` responses are emitted as soon as their head
//! arrives, flagged `streaming`, followed by
//! [`SseUpdate`](shadowmcp_exchange::SseUpdate)s, as HTTP/1 does.
//!
//! An exchange is emitted once both its request and its response have
//! ended (END_STREAM), when RST_STREAM cuts it short (`incomplete`), when
//! [`Http2Config::max_streams`] forces out the oldest stream, or when the
//! connection ends. A response seen before its request (captures merged
//! with skewed clocks) waits for it.
//!
//! Three ways in: [`Connection::new`] with `midstream: false` for a
//! connection seen from its start (prior knowledge, or TLS with ALPN `h2`;
//! the client preface may be present or already stripped),
//! [`Connection::new`] with `midstream: true` for a capture that starts
//! mid-connection, and [`Connection::upgraded`] for `Upgrade: h2c` (the
//! HTTP/1.1 request becomes stream 1).
//!
//! Hostile input is expected: every buffer is capped ([`Http2Config`]),
//! lengths from the wire are checked before use, protocol errors are counted
//! ([`Http2Stats::errors`]) and flagged on the exchange. Mid-connection,
//! frame boundaries are found by requiring several consecutive well-formed
//! frame headers, and header fields that refer to HPACK table entries from
//! before the capture are dropped and counted, never guessed. A gap stops
//! the framing of that direction (frame boundaries and the HPACK state are
//! lost); what was already seen is still reported, flagged `gap`, and the
//! other direction is still read. HPACK is decoded by this crate's own
//! [`hpack`] module (RFC 7541, with its Appendix C vectors as tests).
//!
//! ```
//! use std::sync::Arc;
//! use shadowmcp_exchange::{Flow, Origin, Record, Timestamp, Transport};
//! use shadowmcp_http2::{Connection, Direction, ExchangeIds, Http2Config, PREFACE};
//!
//! fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
//!     let len = payload.len() as u32;
//!     let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
//!     f.extend_from_slice(&stream.to_be_bytes());
//!     f.extend_from_slice(payload);
//!     f
//! }
//! let flow = Flow {
//!     id: 1,
//!     client: "10.0.0.1:50000".parse().unwrap(),
//!     server: "10.0.0.2:443".parse().unwrap(),
//!     transport: Transport::Tcp,
//! };
//! let mut conn = Connection::new(
//!     flow,
//!     Origin::default(),
//!     false,
//!     Arc::new(Http2Config::default()),
//!     ExchangeIds::new(),
//! );
//! let ts = Timestamp::from_nanos(0);
//! let mut out = Vec::new();
//! // GET https://a.example/mcp: :method GET, :scheme https, :path (literal),
//! // :authority (literal), all HPACK-coded without the dynamic table.
//! let mut block = vec![0x82, 0x87, 0x04, 4];
//! block.extend_from_slice(b"/mcp");
//! block.extend_from_slice(&[0x01, 9]);
//! block.extend_from_slice(b"a.example");
//! let mut client = PREFACE.to_vec();
//! client.extend(frame(4, 0, 0, &[])); // SETTINGS
//! client.extend(frame(1, 0x5, 1, &block)); // HEADERS, END_STREAM|END_HEADERS
//! conn.on_data(Direction::ToServer, ts, &client, &mut out);
//! let mut server = frame(4, 0, 0, &[]);
//! server.extend(frame(1, 0x4, 1, &[0x88])); // :status 200
//! server.extend(frame(0, 0x1, 1, b"ok")); // DATA, END_STREAM
//! conn.on_data(Direction::ToClient, ts, &server, &mut out);
//! let Record::Exchange(ex) = &out[0] else { panic!() };
//! assert_eq!(ex.method(), Some("GET"));
//! assert_eq!(ex.host(), Some("a.example"));
//! assert_eq!(ex.path(), Some("/mcp"));
//! assert_eq!(ex.status(), Some(200));
//! assert_eq!(ex.response.as_ref().unwrap().body.data, b"ok");
//! ```

#![forbid(unsafe_code)]

mod conn;
mod frame;
pub mod hpack;
#[doc(hidden)]
pub mod testutil;

use std::sync::Arc;

pub use conn::Connection;
pub use frame::PREFACE;
pub use shadowmcp_http1::{BodyBudget, Direction, ExchangeIds, Http1Config};

/// Limits and switches. Every buffer the parser keeps is bounded by one of
/// these.
#[derive(Clone, Debug)]
pub struct Http2Config {
    /// Decoded bytes kept per body (and wire bytes held per body before
    /// decoding); the rest is counted, not kept (`Body::truncated`).
    /// Default 8 MiB.
    pub max_body: usize,
    /// Wire body bytes held across all open streams of one connection; a
    /// body that finds it spent is cut (`truncated`). Default 32 MiB.
    pub max_connection_body: usize,
    /// Streams tracked at once per connection; when full, the oldest is
    /// emitted as it stands (`incomplete`) and counted in
    /// [`Http2Stats::streams_evicted`]. Default 256.
    pub max_streams: usize,
    /// Largest payload of a non-DATA frame that is held and parsed (DATA is
    /// never held whole); bigger frames are skipped and counted. Default
    /// 1 MiB.
    pub max_frame_payload: usize,
    /// Largest header block (HEADERS or PUSH_PROMISE with its
    /// CONTINUATIONs), encoded. Default 256 KiB.
    pub max_header_block: usize,
    /// Largest decoded header list (RFC 9113 size: name + value + 32 per
    /// field); fields past it are dropped (`truncated`). Default 64 KiB.
    pub max_header_list: usize,
    /// Header fields kept per header list. Default 256.
    pub max_headers: usize,
    /// Memory for each direction's HPACK dynamic table. A peer announcing a
    /// bigger table still decodes; references to entries that did not fit
    /// are counted as unknown fields. Default 64 KiB.
    pub max_header_table: usize,
    /// Largest server-sent event; bigger ones are cut (`truncated`).
    /// Default 1 MiB.
    pub max_sse_event_bytes: usize,
    /// Bytes held per direction while looking for frame boundaries (a
    /// capture that starts mid-connection). Default 64 KiB.
    pub max_sync_bytes: usize,
    /// Decode Content-Encoding (gzip, deflate, br, zstd). Default true.
    pub decode_content: bool,
    /// Memory shared by the bodies being received on every connection that
    /// uses it (the same budget as HTTP/1: pass the HTTP/1 config's to
    /// share it). Each body keeps its first [`BodyBudget::FLOOR`] bytes
    /// whatever the budget. Default: its own 32 MiB budget.
    pub body_budget: Option<Arc<BodyBudget>>,
}

impl Default for Http2Config {
    fn default() -> Self {
        Http2Config {
            max_body: 8 << 20,
            max_connection_body: 32 << 20,
            max_streams: 256,
            max_frame_payload: 1 << 20,
            max_header_block: 256 << 10,
            max_header_list: 64 << 10,
            max_headers: 256,
            max_header_table: 64 << 10,
            max_sse_event_bytes: 1 << 20,
            max_sync_bytes: 64 << 10,
            decode_content: true,
            body_budget: Some(Arc::new(BodyBudget::new(32 << 20))),
        }
    }
}

impl Http2Config {
    /// Defaults, with the body caps, SSE event cap, header count, content
    /// decoding switch and shared body budget of an HTTP/1 config, so both
    /// parsers of one engine keep the same limits.
    pub fn from_http1(h1: &Http1Config) -> Http2Config {
        Http2Config {
            max_body: h1.max_body,
            max_headers: h1.max_headers,
            max_sse_event_bytes: h1.max_sse_event_bytes,
            decode_content: h1.decode_content,
            body_budget: h1.body_budget.clone(),
            ..Http2Config::default()
        }
    }
}

/// Kinds of protocol errors, counted in [`Http2Stats::errors`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The client's first bytes were not the connection preface (nor a
    /// frame, when the preface was already stripped).
    BadPreface,
    /// A frame longer than the receiver's SETTINGS_MAX_FRAME_SIZE (skipped).
    FrameTooLarge,
    /// A non-DATA frame longer than `max_frame_payload` (skipped).
    FrameOverCap,
    /// Padding longer than the frame.
    InvalidPadding,
    /// A frame whose length its type forbids.
    InvalidFrameLength,
    /// Stream 0 where a stream is required, or the reverse, or a stream id
    /// of the wrong parity for its sender.
    InvalidStreamId,
    /// A header block not followed by its CONTINUATION.
    ContinuationExpected,
    /// CONTINUATION with no header block open.
    UnexpectedContinuation,
    /// A SETTINGS value out of its range.
    InvalidSetting,
    /// A header block over `max_header_block`.
    HeaderBlockTooLarge,
    /// An undecodable HPACK block (the direction's table is then partly
    /// unknown).
    Hpack,
    /// An HPACK table size update not at a block start or above the setting.
    HpackTableSizeUpdate,
    /// A header list over `max_header_list` or `max_headers`.
    HeaderListTooLarge,
    /// Missing, unknown, repeated or misplaced pseudo-header fields.
    InvalidPseudoHeader,
    /// Uppercase or connection-specific header field names (RFC 9113
    /// §8.2).
    InvalidHeaderName,
    InvalidStatus,
    /// `content-length` disagrees with the DATA received.
    ContentLengthMismatch,
    /// HEADERS or DATA on a stream that already ended.
    FrameOnClosedStream,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 18] = [
        ErrorKind::BadPreface,
        ErrorKind::FrameTooLarge,
        ErrorKind::FrameOverCap,
        ErrorKind::InvalidPadding,
        ErrorKind::InvalidFrameLength,
        ErrorKind::InvalidStreamId,
        ErrorKind::ContinuationExpected,
        ErrorKind::UnexpectedContinuation,
        ErrorKind::InvalidSetting,
        ErrorKind::HeaderBlockTooLarge,
        ErrorKind::Hpack,
        ErrorKind::HpackTableSizeUpdate,
        ErrorKind::HeaderListTooLarge,
        ErrorKind::InvalidPseudoHeader,
        ErrorKind::InvalidHeaderName,
        ErrorKind::InvalidStatus,
        ErrorKind::ContentLengthMismatch,
        ErrorKind::FrameOnClosedStream,
    ];

    /// Stable snake_case name, for stats output.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::BadPreface => "bad_preface",
            ErrorKind::FrameTooLarge => "frame_too_large",
            ErrorKind::FrameOverCap => "frame_over_cap",
            ErrorKind::InvalidPadding => "invalid_padding",
            ErrorKind::InvalidFrameLength => "invalid_frame_length",
            ErrorKind::InvalidStreamId => "invalid_stream_id",
            ErrorKind::ContinuationExpected => "continuation_expected",
            ErrorKind::UnexpectedContinuation => "unexpected_continuation",
            ErrorKind::InvalidSetting => "invalid_setting",
            ErrorKind::HeaderBlockTooLarge => "header_block_too_large",
            ErrorKind::Hpack => "hpack",
            ErrorKind::HpackTableSizeUpdate => "hpack_table_size_update",
            ErrorKind::HeaderListTooLarge => "header_list_too_large",
            ErrorKind::InvalidPseudoHeader => "invalid_pseudo_header",
            ErrorKind::InvalidHeaderName => "invalid_header_name",
            ErrorKind::InvalidStatus => "invalid_status",
            ErrorKind::ContentLengthMismatch => "content_length_mismatch",
            ErrorKind::FrameOnClosedStream => "frame_on_closed_stream",
        }
    }

    fn index(self) -> usize {
        ErrorKind::ALL.iter().position(|k| *k == self).unwrap_or(0)
    }
}

/// Protocol error counts by kind.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Errors([u64; ErrorKind::ALL.len()]);

impl Errors {
    pub fn get(&self, kind: ErrorKind) -> u64 {
        self.0.get(kind.index()).copied().unwrap_or(0)
    }

    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// Kinds with a non-zero count.
    pub fn iter(&self) -> impl Iterator<Item = (ErrorKind, u64)> + '_ {
        ErrorKind::ALL
            .iter()
            .map(|k| (*k, self.get(*k)))
            .filter(|(_, n)| *n > 0)
    }

    pub(crate) fn add(&mut self, kind: ErrorKind) {
        if let Some(n) = self.0.get_mut(kind.index()) {
            *n += 1;
        }
    }
}

/// Frames seen, by type.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FrameCounts {
    pub data: u64,
    pub headers: u64,
    pub priority: u64,
    pub rst_stream: u64,
    pub settings: u64,
    pub push_promise: u64,
    pub ping: u64,
    pub goaway: u64,
    pub window_update: u64,
    pub continuation: u64,
    /// Frame types this parser does not know (ignored, RFC 9113 §4.1).
    pub unknown: u64,
}

impl FrameCounts {
    pub fn total(&self) -> u64 {
        self.data
            + self.headers
            + self.priority
            + self.rst_stream
            + self.settings
            + self.push_promise
            + self.ping
            + self.goaway
            + self.window_update
            + self.continuation
            + self.unknown
    }

    fn merge(&mut self, o: &FrameCounts) {
        self.data += o.data;
        self.headers += o.headers;
        self.priority += o.priority;
        self.rst_stream += o.rst_stream;
        self.settings += o.settings;
        self.push_promise += o.push_promise;
        self.ping += o.ping;
        self.goaway += o.goaway;
        self.window_update += o.window_update;
        self.continuation += o.continuation;
        self.unknown += o.unknown;
    }
}

/// Counters of one connection (add them up across connections).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Http2Stats {
    pub frames: FrameCounts,
    /// Client connection prefaces seen.
    pub prefaces: u64,
    /// Connections picked up mid-connection (HPACK state unknown at first).
    pub midstream: u64,
    /// Connections that started as an `Upgrade: h2c`.
    pub upgrades: u64,
    /// Streams opened (requests, pushes, responses of unseen streams).
    pub streams: u64,
    /// Request heads decoded (including pushed requests).
    pub requests: u64,
    /// Final response heads decoded.
    pub responses: u64,
    /// 1xx interim response heads skipped.
    pub interim_responses: u64,
    /// PUSH_PROMISEs whose promised request was decoded.
    pub pushes: u64,
    /// Exchange records emitted.
    pub exchanges: u64,
    /// Streams ended early by RST_STREAM (emitted `incomplete`).
    pub resets: u64,
    /// Streams emitted early because `max_streams` were open.
    pub streams_evicted: u64,
    pub sse_events: u64,
    pub sse_events_truncated: u64,
    pub errors: Errors,
    /// Header fields dropped because they referred to HPACK table entries
    /// this parser never saw (mid-connection start, or after a lost block).
    pub header_fields_unknown: u64,
    /// Header fields dropped by `max_header_list`/`max_headers`.
    pub header_fields_dropped: u64,
    /// Header blocks that could not be decoded at all (too large, bad
    /// framing, HPACK error).
    pub header_blocks_lost: u64,
    /// Times a direction's HPACK table was declared partly unknown.
    pub hpack_resets: u64,
    /// HEADERS, DATA and PUSH_PROMISE frames for streams not tracked
    /// (closed, evicted, or begun before the capture).
    pub frames_untracked_stream: u64,
    /// Frame boundaries found by scanning (mid-connection start).
    pub syncs: u64,
    /// Mid-connection pickups whose directions were found reversed.
    pub direction_swaps: u64,
    /// Bytes skipped while looking for frame boundaries, or after framing
    /// was lost.
    pub bytes_skipped: u64,
    /// Bytes reported missing by `on_gap`.
    pub gap_bytes: u64,
    /// Directions whose framing stopped because of a gap.
    pub framing_lost: u64,
    /// Bodies cut by `max_body`, `max_connection_body` or the budget.
    pub bodies_truncated: u64,
    /// Bodies whose content decoding failed or was not possible.
    pub decode_errors: u64,
    /// Bytes received after `on_close` (ignored).
    pub bytes_after_close: u64,
}

impl Http2Stats {
    /// Adds another connection's counters to these.
    pub fn merge(&mut self, other: &Http2Stats) {
        let Http2Stats {
            frames,
            prefaces,
            midstream,
            upgrades,
            streams,
            requests,
            responses,
            interim_responses,
            pushes,
            exchanges,
            resets,
            streams_evicted,
            sse_events,
            sse_events_truncated,
            errors,
            header_fields_unknown,
            header_fields_dropped,
            header_blocks_lost,
            hpack_resets,
            frames_untracked_stream,
            syncs,
            direction_swaps,
            bytes_skipped,
            gap_bytes,
            framing_lost,
            bodies_truncated,
            decode_errors,
            bytes_after_close,
        } = other;
        self.frames.merge(frames);
        self.prefaces += prefaces;
        self.midstream += midstream;
        self.upgrades += upgrades;
        self.streams += streams;
        self.requests += requests;
        self.responses += responses;
        self.interim_responses += interim_responses;
        self.pushes += pushes;
        self.exchanges += exchanges;
        self.resets += resets;
        self.streams_evicted += streams_evicted;
        self.sse_events += sse_events;
        self.sse_events_truncated += sse_events_truncated;
        for (a, b) in self.errors.0.iter_mut().zip(errors.0.iter()) {
            *a += b;
        }
        self.header_fields_unknown += header_fields_unknown;
        self.header_fields_dropped += header_fields_dropped;
        self.header_blocks_lost += header_blocks_lost;
        self.hpack_resets += hpack_resets;
        self.frames_untracked_stream += frames_untracked_stream;
        self.syncs += syncs;
        self.direction_swaps += direction_swaps;
        self.bytes_skipped += bytes_skipped;
        self.gap_bytes += gap_bytes;
        self.framing_lost += framing_lost;
        self.bodies_truncated += bodies_truncated;
        self.decode_errors += decode_errors;
        self.bytes_after_close += bytes_after_close;
    }
}

/// Whether `data`, the first bytes seen of one direction of a connection
/// picked up mid-stream, starts with HTTP/2 frames: at least three
/// consecutive strictly plausible frame headers (or fewer that end exactly
/// at the end of `data`, at least two), as a well-behaved peer sends them.
/// HTTP/1 text never passes (its bytes make lengths, types or stream ids
/// that are not plausible together). `from_client`: the direction.
pub fn looks_like_frames(data: &[u8], from_client: bool) -> bool {
    let mut at = 0usize;
    let mut frames = 0;
    while frames < 3 {
        let Some(head) = data
            .get(at..at + frame::HEADER_LEN)
            .and_then(|h| <&[u8; frame::HEADER_LEN]>::try_from(h).ok())
        else {
            return frames >= 1 && at == data.len();
        };
        let h = frame::FrameHeader::parse(head);
        if !h.plausible(from_client, 1 << 14) {
            return false;
        }
        frames += 1;
        at = at + frame::HEADER_LEN + h.len as usize;
    }
    true
}

#[cfg(test)]
mod tests {
    #[test]
    fn frames_are_told_from_http1_mid_stream() {
        use super::looks_like_frames;
        // SETTINGS (6 bytes), WINDOW_UPDATE, HEADERS on stream 1.
        let mut h2 = vec![0, 0, 6, 4, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 100];
        h2.extend_from_slice(&[0, 0, 4, 8, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        h2.extend_from_slice(&[0, 0, 1, 1, 4, 0, 0, 0, 1, 0x82, 0xff]);
        assert!(looks_like_frames(&h2, true));
        assert!(!looks_like_frames(
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
            false
        ));
        assert!(!looks_like_frames(
            b"POST /mcp HTTP/1.1\r\nHost: x\r\n\r\n",
            true
        ));
        assert!(
            !looks_like_frames(&[0; 64], true),
            "zeros: DATA on stream 0"
        );
        assert!(
            !looks_like_frames(&h2[..9], true),
            "a header cut from its payload"
        );
        assert!(looks_like_frames(&h2[..15], true), "one whole frame");
    }

    use super::*;

    #[test]
    fn error_kind_names_are_distinct_and_indexed() {
        let names: std::collections::HashSet<_> = ErrorKind::ALL.iter().map(|k| k.name()).collect();
        assert_eq!(names.len(), ErrorKind::ALL.len());
        for (i, k) in ErrorKind::ALL.iter().enumerate() {
            assert_eq!(k.index(), i);
        }
    }

    #[test]
    fn stats_merge_adds_every_counter() {
        let mut a = Http2Stats {
            streams: 2,
            bytes_after_close: 1,
            ..Http2Stats::default()
        };
        a.frames.data = 3;
        a.errors.add(ErrorKind::Hpack);
        let b = a.clone();
        a.merge(&b);
        assert_eq!(a.streams, 4);
        assert_eq!(a.bytes_after_close, 2);
        assert_eq!(a.frames.data, 6);
        assert_eq!(a.frames.total(), 6);
        assert_eq!(a.errors.get(ErrorKind::Hpack), 2);
        assert_eq!(a.errors.total(), 2);
    }

    #[test]
    fn config_from_http1_shares_limits_and_budget() {
        let h1 = Http1Config {
            max_body: 1234,
            ..Http1Config::default()
        };
        let h2 = Http2Config::from_http1(&h1);
        assert_eq!(h2.max_body, 1234);
        assert!(Arc::ptr_eq(
            h1.body_budget.as_ref().unwrap(),
            h2.body_budget.as_ref().unwrap()
        ));
    }
}

//! The per-connection state machine: two directions, a queue of requests
//! waiting for responses, and the open event stream if any.

use std::collections::VecDeque;
use std::sync::Arc;

use shadowmcp_exchange::{
    Body, Flags, Flow, Headers, Origin, Record, Request, Response, Timestamp,
};

use crate::decode::{ContentDecoder, Sink};
use crate::parse::{
    framing, is_request_line, is_status_line, lines, list_values, media_type, media_type_of,
    parse_header_lines, parse_request_line, parse_status_line, section_end, Framing, HeaderNotes,
    RequestStart,
};
use crate::parts::ExchangeParts;
use crate::sse::{EventStreamOut, SseParser};
use crate::{BodyBudget, Direction, ExchangeIds, Http1Config, Http1Stats, ParseErrorKind};

/// Index of the half that carries requests.
const CLIENT: usize = 0;
/// Index of the half that carries responses.
const SERVER: usize = 1;

/// Guard against a state machine bug turning into an endless loop: after
/// this many steps without progress a byte is skipped.
const MAX_STALLED_STEPS: u32 = 8;

/// Bound on nested rescans of a rejected head (each is shorter than the
/// last; a start line found by scanning always parses, so one level is the
/// norm).
const MAX_RESCAN_DEPTH: u32 = 4;

/// SSE bodies are fed in pieces of at most this size, with events handed
/// out in between.
const SSE_FEED_PIECE: usize = 16 << 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Chunk {
    /// Reading a chunk-size line.
    Size,
    Data(u64),
    /// Expecting the CRLF after chunk data.
    DataEnd {
        seen_cr: bool,
    },
    Trailers,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Between messages (empty lines are skipped).
    Start,
    Head,
    Length(u64),
    Chunked(Chunk),
    UntilClose,
    /// Lost sync: scanning lines for a message start. `line_ok` is false
    /// while inside a line whose start was not seen.
    Resync {
        line_ok: bool,
    },
    /// Client side after a CONNECT/Upgrade request: bytes are held until
    /// the response says whether the connection switches protocols.
    Held,
    /// Not HTTP/1 any more.
    Tunnel,
}

struct BufferSink {
    data: Vec<u8>,
    cap: usize,
    decoded_len: u64,
    truncated: bool,
    /// Shared memory budget and what this body took from it.
    budget: Option<Arc<BodyBudget>>,
    taken: usize,
    /// The budget, not `cap`, cut this body.
    cut_by_budget: bool,
}

impl BufferSink {
    /// Room for `want` more bytes: the per-body cap, then beyond the floor
    /// the shared budget.
    fn room(&mut self, want: usize) -> usize {
        if self.cut_by_budget {
            // A cut body stays a prefix of the real one.
            return 0;
        }
        let by_cap = self.cap.saturating_sub(self.data.len()).min(want);
        let Some(budget) = &self.budget else {
            return by_cap;
        };
        let free = BodyBudget::FLOOR
            .saturating_sub(self.data.len())
            .min(by_cap);
        let granted = budget.take(by_cap - free);
        self.taken += granted;
        if free + granted < by_cap && !self.cut_by_budget {
            self.cut_by_budget = true;
            budget.count_cut();
        }
        free + granted
    }

    /// The body is done (or dropped): its budget goes back.
    fn release(&mut self) {
        if let Some(budget) = &self.budget {
            budget.give_back(std::mem::take(&mut self.taken));
        }
    }
}

impl Drop for BufferSink {
    fn drop(&mut self) {
        self.release();
    }
}

enum BodySink {
    Buffer(BufferSink),
    Sse {
        parser: SseParser,
        decoded_len: u64,
    },
    /// Neither decoded nor kept (see `Http1Config::skip_non_mcp_response_bodies`).
    Skip,
}

impl Sink for BodySink {
    fn accept(&mut self, d: &[u8]) -> bool {
        match self {
            BodySink::Buffer(b) => {
                b.decoded_len = b.decoded_len.saturating_add(d.len() as u64);
                let room = b.room(d.len());
                if d.len() > room {
                    b.data.extend_from_slice(d.get(..room).unwrap_or_default());
                    b.truncated = true;
                    return false;
                }
                b.data.extend_from_slice(d);
                true
            }
            BodySink::Sse {
                parser,
                decoded_len,
            } => {
                *decoded_len = decoded_len.saturating_add(d.len() as u64);
                parser.feed(d);
                // An overflow means a decoder expands without bound: stop it.
                !parser.overflowed()
            }
            BodySink::Skip => true,
        }
    }
}

/// False when the response declares only media types that no MCP client
/// reads messages from. The SDKs accept a JSON body or an event stream and
/// fail on anything else (docs/performance.md, "Shortcuts"); text and
/// undeclared types are kept for lenient custom clients.
fn may_carry_mcp(headers: &Headers) -> bool {
    let mut declared = false;
    for value in headers.iter_named("content-type") {
        declared = true;
        let media = media_type_of(value);
        if media.is_empty()
            || media.contains("json")
            || media == "text/event-stream"
            || media.starts_with("text/plain")
        {
            return true;
        }
    }
    !declared
}

/// A body being received: transfer-decoded bytes go in, content-decoded
/// bytes land in the sink.
struct BodyReader {
    decoder: ContentDecoder,
    sink: BodySink,
    wire_len: u64,
    encodings: Vec<String>,
}

impl BodyReader {
    /// A body that is only counted: no decoding, nothing kept.
    fn skipped(headers: &Headers) -> BodyReader {
        BodyReader {
            decoder: ContentDecoder::new(&[], 0),
            sink: BodySink::Skip,
            wire_len: 0,
            encodings: list_values(headers, "content-encoding"),
        }
    }

    /// `cap`: decoded bytes to keep (for SSE, unused).
    fn new(headers: &Headers, sse: bool, cap: usize, cfg: &Http1Config) -> BodyReader {
        let encodings = list_values(headers, "content-encoding");
        let decoder = if cfg.decode_content {
            ContentDecoder::new(&encodings, cfg.zstd_window_log_max)
        } else {
            ContentDecoder::new(&[], cfg.zstd_window_log_max)
        };
        let sink = if sse {
            BodySink::Sse {
                parser: SseParser::new(cfg.max_sse_event_bytes),
                decoded_len: 0,
            }
        } else {
            BodySink::Buffer(BufferSink {
                data: Vec::new(),
                cap,
                decoded_len: 0,
                truncated: false,
                budget: cfg.body_budget.clone(),
                taken: 0,
                cut_by_budget: false,
            })
        };
        BodyReader {
            decoder,
            sink,
            wire_len: 0,
            encodings,
        }
    }

    fn feed(&mut self, data: &[u8]) {
        self.wire_len = self.wire_len.saturating_add(data.len() as u64);
        self.decoder.push(data, &mut self.sink);
    }

    /// `len` bytes of the body are missing.
    fn gap(&mut self, len: u64) {
        self.wire_len = self.wire_len.saturating_add(len);
        if !self.decoder.is_passthrough() {
            self.decoder
                .fail("bytes missing from the encoded body (gap)");
        }
        if let BodySink::Sse { parser, .. } = &mut self.sink {
            parser.reset_partial();
        }
    }

    fn buffered_bytes(&self) -> usize {
        match &self.sink {
            BodySink::Buffer(b) => b.data.len(),
            BodySink::Sse { parser, .. } => parser.buffered_bytes(),
            BodySink::Skip => 0,
        }
    }

    fn sse(&mut self) -> Option<&mut SseParser> {
        match &mut self.sink {
            BodySink::Sse { parser, .. } => Some(parser),
            BodySink::Buffer(_) | BodySink::Skip => None,
        }
    }

    /// The body so far, without ending it.
    fn snapshot(&self) -> Body {
        self.body_with(match &self.sink {
            BodySink::Buffer(b) => b.data.clone(),
            BodySink::Sse { .. } | BodySink::Skip => Vec::new(),
        })
    }

    /// Ends the body; stream-end checks run only when it is `complete`.
    fn finish(&mut self, complete: bool) -> Body {
        if complete && self.wire_len > 0 {
            self.decoder.finish(&mut self.sink);
        }
        let data = match &mut self.sink {
            BodySink::Buffer(b) => {
                b.release();
                std::mem::take(&mut b.data)
            }
            BodySink::Sse { .. } | BodySink::Skip => Vec::new(),
        };
        self.body_with(data)
    }

    fn body_with(&self, data: Vec<u8>) -> Body {
        let (decoded_len, truncated) = match &self.sink {
            BodySink::Buffer(b) => (b.decoded_len, b.truncated),
            BodySink::Sse { decoded_len, .. } => (*decoded_len, false),
            BodySink::Skip => (0, false),
        };
        Body {
            data,
            wire_len: self.wire_len,
            decoded_len,
            encodings: self.encodings.clone(),
            truncated,
            decode_error: self.decoder.error().cloned(),
            skipped: matches!(self.sink, BodySink::Skip),
        }
    }
}

/// One direction of the connection.
struct Half {
    state: State,
    /// Head, trailer section, chunk-size line or resync line being read.
    buf: Vec<u8>,
    /// Where to resume looking for the end of the section in `buf`.
    scan_from: usize,
    /// Time of the first byte of the message being read.
    msg_ts: Option<Timestamp>,
    /// Input position (see [`Connection::set_position`]) of that byte.
    msg_pos: u64,
    body: Option<BodyReader>,
    /// Flags of the message being read.
    flags: Flags,
    trailers: Headers,
    /// Client side: sequence number of the request being read.
    cur_seq: Option<u64>,
    held: Vec<u8>,
    held_ts: Option<Timestamp>,
    /// Bytes that did not fit in `held` (or went missing while held).
    held_lost: u64,
    /// The next message found is the first after a mid-stream pickup.
    midstream_pending: bool,
    gap_seen: bool,
    /// Flags the next parsed head starts with (a head cut by a gap).
    head_mark: Flags,
}

impl Half {
    fn new(midstream: bool) -> Half {
        Half {
            state: if midstream {
                State::Resync { line_ok: true }
            } else {
                State::Start
            },
            buf: Vec::new(),
            scan_from: 0,
            msg_ts: None,
            msg_pos: 0,
            body: None,
            flags: Flags::default(),
            trailers: Headers::default(),
            cur_seq: None,
            held: Vec::new(),
            held_ts: None,
            held_lost: 0,
            midstream_pending: midstream,
            gap_seen: false,
            head_mark: Flags::default(),
        }
    }
}

/// A request waiting for its response.
struct Pending {
    seq: u64,
    id: u64,
    request: Request,
    ts: Timestamp,
    position: u64,
    flags: Flags,
    /// The whole request has been read.
    done: bool,
    /// CONNECT or Upgrade: the response may switch protocols.
    may_switch: bool,
}

/// A response being read, with its request.
struct CurResponse {
    id: u64,
    request: Option<Request>,
    request_ts: Option<Timestamp>,
    response: Response,
    response_ts: Timestamp,
    position: u64,
    flags: Flags,
}

/// The open `text/event-stream` response.
/// The HTTP/1 parser of one TCP connection. See the crate docs.
pub struct Connection {
    flow: Flow,
    origin: Origin,
    midstream: bool,
    config: Arc<Http1Config>,
    ids: ExchangeIds,
    halves: [Half; 2],
    /// The transport's ToServer direction carries responses.
    swapped: bool,
    /// Which side is the client is settled (always, unless mid-stream).
    roles_fixed: bool,
    queue: VecDeque<Pending>,
    next_seq: u64,
    cur_resp: Option<CurResponse>,
    stream: Option<EventStreamOut>,
    stats: Http1Stats,
    last_ts: Timestamp,
    position: u64,
    /// Nesting of `rescan_after_first_line`.
    rescan_depth: u32,
    /// A response was paired with a request.
    paired: bool,
    closed: bool,
    /// The connection switched to HTTP/2 (`Upgrade: h2c`, 101): what the
    /// HTTP/2 parser that takes over needs, until it is taken.
    upgrade: Option<H2cUpgrade>,
}

/// A connection that switched to cleartext HTTP/2 with `Upgrade: h2c`
/// (RFC 7540 §3.2): the upgrade request, answered on HTTP/2 stream 1, and
/// the bytes each side sent after the switch so far (bounded by
/// `max_held_bytes`; more are counted as tunnel bytes). See
/// [`Connection::take_h2c_upgrade`].
#[derive(Debug)]
pub struct H2cUpgrade {
    pub flow: Flow,
    pub origin: Origin,
    /// The connection's id allocator (shared), so HTTP/2 exchanges keep
    /// numbering after the HTTP/1 ones.
    pub ids: ExchangeIds,
    pub request: Request,
    pub request_ts: Timestamp,
    /// Client bytes after the upgrade request (the HTTP/2 preface first).
    pub client_bytes: Vec<u8>,
    /// Server bytes after the 101 response head.
    pub server_bytes: Vec<u8>,
}

impl Connection {
    /// A parser for one connection. `midstream`: the capture started after
    /// the connection did, so the first bytes may be inside a message.
    pub fn new(
        flow: Flow,
        origin: Origin,
        midstream: bool,
        config: Arc<Http1Config>,
        ids: ExchangeIds,
    ) -> Connection {
        let origin_position = origin.position;
        Connection {
            flow,
            origin,
            midstream,
            config,
            ids,
            halves: [Half::new(midstream), Half::new(midstream)],
            swapped: false,
            roles_fixed: !midstream,
            queue: VecDeque::new(),
            next_seq: 0,
            cur_resp: None,
            stream: None,
            stats: Http1Stats::default(),
            last_ts: Timestamp::default(),
            position: origin_position,
            rescan_depth: 0,
            paired: false,
            closed: false,
            upgrade: None,
        }
    }

    /// Sets the input position (e.g. packet number) of the data fed next;
    /// each exchange's `origin.position` is the position of its first byte
    /// (the request's, else the response's). Starts at `origin.position`.
    pub fn set_position(&mut self, position: u64) {
        self.position = position;
    }

    pub fn stats(&self) -> &Http1Stats {
        &self.stats
    }

    /// The flow, oriented client → server as this parser decided (reversed
    /// from the one given when a mid-stream connection was found swapped).
    pub fn flow(&self) -> &Flow {
        &self.flow
    }

    /// The switch to HTTP/2 if the server accepted `Upgrade: h2c`: the
    /// caller hands the connection to an HTTP/2 parser with it (the
    /// upgrade request itself is not emitted here: it is HTTP/2 stream 1).
    /// Returns `None` after the first call.
    pub fn take_h2c_upgrade(&mut self) -> Option<H2cUpgrade> {
        self.upgrade.take()
    }

    /// True once the connection switched to a tunnel (CONNECT, 101) or
    /// HTTP/2: further bytes are only counted, so callers may stop feeding.
    pub fn is_tunnel(&self) -> bool {
        self.halves.iter().all(|h| h.state == State::Tunnel)
    }

    /// Bytes this connection holds in its buffers (heads, bodies kept so
    /// far, held bytes, SSE state), excluding the fixed-size decoder
    /// windows. Bounded by the [`Http1Config`] limits.
    pub fn buffered_bytes(&self) -> usize {
        let halves: usize = self
            .halves
            .iter()
            .map(|h| {
                h.buf.len() + h.held.len() + h.body.as_ref().map_or(0, BodyReader::buffered_bytes)
            })
            .sum();
        let queued: usize = self.queue.iter().map(|p| p.request.body.data.len()).sum();
        halves + queued
    }

    /// Bytes of one direction, in order.
    pub fn on_data(&mut self, dir: Direction, ts: Timestamp, data: &[u8], out: &mut Vec<Record>) {
        if self.closed {
            self.stats.bytes_after_close += data.len() as u64;
            return;
        }
        self.last_ts = ts;
        self.feed(dir, ts, data, out);
        self.flush_stream(ts, out);
    }

    /// `len` bytes of one direction are missing (lost segments).
    pub fn on_gap(&mut self, dir: Direction, len: u64, out: &mut Vec<Record>) {
        if self.closed || len == 0 {
            return;
        }
        let ts = self.last_ts;
        let role = self.role(dir);
        self.stats.gap_bytes = self.stats.gap_bytes.saturating_add(len);
        if role == CLIENT {
            self.halves[CLIENT].gap_seen = true;
        }
        let gap = Flags {
            gap: true,
            ..Flags::default()
        };
        if self.halves[role].state == State::Head
            && role == CLIENT
            && self.salvage_request_head(ts, out)
        {
            self.flush_stream(ts, out);
            return;
        }
        let h = &mut self.halves[role];
        match h.state {
            State::Tunnel => {}
            State::Held => h.held_lost = h.held_lost.saturating_add(len),
            State::Length(remaining) => {
                let in_body = len.min(remaining);
                if let Some(b) = h.body.as_mut() {
                    b.gap(in_body);
                }
                h.flags.gap = true;
                if len < remaining {
                    h.state = State::Length(remaining - len);
                } else {
                    self.end_message(role, true, ts, out);
                    if len > remaining && self.halves[role].state == State::Start {
                        // The gap runs into whatever followed the body.
                        self.stats.sync_losses += 1;
                        self.resync(role, true);
                    }
                }
            }
            State::Chunked(Chunk::Data(remaining)) if len < remaining => {
                if let Some(b) = h.body.as_mut() {
                    b.gap(len);
                }
                h.flags.gap = true;
                h.state = State::Chunked(Chunk::Data(remaining - len));
            }
            State::UntilClose => {
                if let Some(b) = h.body.as_mut() {
                    b.gap(len);
                }
                h.flags.gap = true;
            }
            State::Resync { .. } => self.resync(role, true),
            State::Start => {
                self.stats.sync_losses += 1;
                self.resync(role, true);
            }
            State::Head | State::Chunked(_) => self.lose_sync(role, true, gap, ts, out),
        }
        self.flush_stream(ts, out);
    }

    /// A gap cut a request head: when its request line and some header
    /// lines arrived whole, keep them as a request flagged `gap` and
    /// `incomplete` (its method, target and host still tell where it went:
    /// a capture cut by a small snaplen holds little else), then look for
    /// the next message. Returns false when there is nothing to keep.
    fn salvage_request_head(&mut self, ts: Timestamp, out: &mut Vec<Record>) -> bool {
        let h = &mut self.halves[CLIENT];
        let Some(last_lf) = h.buf.iter().rposition(|&b| b == b'\n') else {
            return false;
        };
        let first_line = lines(&h.buf).next().unwrap_or_default();
        if !is_request_line(first_line) {
            return false;
        }
        h.buf.truncate(last_lf + 1);
        h.buf.extend_from_slice(b"\r\n");
        h.head_mark = Flags {
            gap: true,
            incomplete: true,
            ..Flags::default()
        };
        self.head_complete(CLIENT, ts, out);
        self.halves[CLIENT].head_mark = Flags::default();
        if self.halves[CLIENT].state == State::Start {
            // No body announced in what arrived; the gap may hide the rest
            // of the head and a body, so what follows is scanned.
            self.stats.sync_losses += 1;
            self.resync(CLIENT, true);
        } else if self.halves[CLIENT].state != State::Tunnel {
            let mark = Flags {
                gap: true,
                incomplete: true,
                ..Flags::default()
            };
            self.lose_sync(CLIENT, true, mark, ts, out);
        }
        true
    }

    /// One direction was closed (FIN): ends a close-delimited response; a
    /// message cut short is emitted as incomplete.
    pub fn on_fin(&mut self, dir: Direction, ts: Timestamp, out: &mut Vec<Record>) {
        if self.closed {
            return;
        }
        self.last_ts = ts;
        let role = self.role(dir);
        self.fin_role(role, ts, out);
        self.flush_stream(ts, out);
    }

    /// The connection ended (or the input did): everything pending is
    /// emitted, incomplete where it is.
    pub fn on_close(&mut self, ts: Timestamp, out: &mut Vec<Record>) {
        if self.closed {
            return;
        }
        self.last_ts = ts;
        self.fin_role(CLIENT, ts, out);
        self.fin_role(SERVER, ts, out);
        if self.stream.is_some() {
            self.end_stream(
                Flags {
                    incomplete: true,
                    ..Flags::default()
                },
                ts,
                out,
            );
        }
        while let Some(p) = self.queue.pop_front() {
            self.emit_unanswered(p, Flags::default(), out);
        }
        self.closed = true;
    }

    fn role(&self, dir: Direction) -> usize {
        let role = match dir {
            Direction::ToServer => CLIENT,
            Direction::ToClient => SERVER,
        };
        if self.swapped {
            1 - role
        } else {
            role
        }
    }

    fn dir_of(&self, role: usize) -> Direction {
        if (role == CLIENT) != self.swapped {
            Direction::ToServer
        } else {
            Direction::ToClient
        }
    }

    fn feed(&mut self, dir: Direction, ts: Timestamp, mut data: &[u8], out: &mut Vec<Record>) {
        let mut stalled = 0;
        while !data.is_empty() {
            let role = self.role(dir);
            let used = self.step(role, ts, data, out).min(data.len());
            if used == 0 {
                stalled += 1;
                if stalled > MAX_STALLED_STEPS {
                    // Cannot happen by design; never loop forever if it does.
                    debug_assert!(false, "http1 parser made no progress");
                    self.stats.bytes_skipped += 1;
                    data = data.get(1..).unwrap_or_default();
                    stalled = 0;
                }
            } else {
                stalled = 0;
                data = data.get(used..).unwrap_or_default();
            }
        }
    }

    /// Consumes a prefix of `data` in the current state; returns its length
    /// (0 only on a state change that consumes nothing).
    fn step(&mut self, role: usize, ts: Timestamp, data: &[u8], out: &mut Vec<Record>) -> usize {
        let len = data.len();
        match self.halves[role].state {
            State::Tunnel => {
                if let Some(up) = &mut self.upgrade {
                    let kept = if role == CLIENT {
                        &mut up.client_bytes
                    } else {
                        &mut up.server_bytes
                    };
                    let room = self.config.max_held_bytes.saturating_sub(kept.len());
                    kept.extend_from_slice(data.get(..room.min(len)).unwrap_or_default());
                    if room >= len {
                        return len;
                    }
                }
                self.stats.tunnel_bytes = self.stats.tunnel_bytes.saturating_add(len as u64);
                len
            }
            State::Held => {
                self.hold(role, ts, data);
                len
            }
            State::Resync { line_ok } => self.step_resync(role, ts, data, line_ok),
            State::Start => {
                let blank = data
                    .iter()
                    .take_while(|&&b| b == b'\r' || b == b'\n')
                    .count();
                if blank == 0 {
                    let h = &mut self.halves[role];
                    h.state = State::Head;
                    h.buf.clear();
                    h.scan_from = 0;
                    h.msg_ts = Some(ts);
                    h.msg_pos = self.position;
                }
                blank
            }
            State::Head => self.step_head(role, ts, data, out),
            State::Length(remaining) => {
                let take = usize::try_from(remaining).unwrap_or(usize::MAX).min(len);
                self.feed_body(role, ts, data.get(..take).unwrap_or_default(), out);
                let left = remaining - take as u64;
                if left == 0 {
                    self.end_message(role, true, ts, out);
                } else {
                    self.halves[role].state = State::Length(left);
                }
                take
            }
            State::UntilClose => {
                self.feed_body(role, ts, data, out);
                len
            }
            State::Chunked(chunk) => self.step_chunked(role, chunk, ts, data, out),
        }
    }

    fn feed_body(&mut self, role: usize, ts: Timestamp, data: &[u8], out: &mut Vec<Record>) {
        let limit = self.config.max_sse_event_bytes.max(1);
        let is_sse = self.halves[role]
            .body
            .as_mut()
            .is_some_and(|b| b.sse().is_some());
        // SSE bodies go in pieces so a big read cannot pile up events.
        let piece = if is_sse {
            limit.min(SSE_FEED_PIECE)
        } else {
            data.len().max(1)
        };
        for part in data.chunks(piece) {
            let Some(b) = self.halves[role].body.as_mut() else {
                return;
            };
            b.feed(part);
            if b.sse().is_some_and(|p| p.pending_bytes() >= limit) {
                // Hand out a big batch early so memory stays bounded.
                self.flush_stream(ts, out);
            }
        }
    }

    fn hold(&mut self, role: usize, ts: Timestamp, data: &[u8]) {
        let max = self.config.max_held_bytes;
        let h = &mut self.halves[role];
        h.held_ts.get_or_insert(ts);
        let room = max.saturating_sub(h.held.len());
        h.held
            .extend_from_slice(data.get(..room.min(data.len())).unwrap_or_default());
        if data.len() > room {
            if h.held_lost == 0 {
                self.stats
                    .parse_errors
                    .add(ParseErrorKind::HeldBytesOverflow);
            }
            h.held_lost = h.held_lost.saturating_add((data.len() - room) as u64);
        }
    }

    fn step_head(
        &mut self,
        role: usize,
        ts: Timestamp,
        data: &[u8],
        out: &mut Vec<Record>,
    ) -> usize {
        let max = self.config.max_header_bytes.max(16);
        let h = &mut self.halves[role];
        let prev = h.buf.len();
        let take = max.saturating_sub(prev).min(data.len());
        h.buf
            .extend_from_slice(data.get(..take).unwrap_or_default());
        match section_end(&h.buf, h.scan_from) {
            Some(end) => {
                h.buf.truncate(end);
                let used = end.saturating_sub(prev).max(1);
                self.head_complete(role, ts, out);
                used
            }
            None => {
                h.scan_from = h.buf.len().saturating_sub(2);
                if h.buf.len() >= max {
                    self.count(ParseErrorKind::HeadTooLarge);
                    let mark = Flags {
                        malformed: true,
                        ..Flags::default()
                    };
                    self.lose_sync(role, false, mark, ts, out);
                }
                take
            }
        }
    }

    fn head_complete(&mut self, role: usize, ts: Timestamp, out: &mut Vec<Record>) {
        let buf = std::mem::take(&mut self.halves[role].buf);
        let msg_ts = self.halves[role].msg_ts.take().unwrap_or(ts);
        let msg_pos = self.halves[role].msg_pos;
        self.halves[role].scan_from = 0;
        if role == CLIENT {
            self.request_head(&buf, (msg_ts, msg_pos), ts, out);
        } else {
            self.response_head(&buf, (msg_ts, msg_pos), ts, out);
        }
        // Keep the allocation for the next head.
        let h = &mut self.halves[role];
        if h.buf.is_empty() {
            h.buf = buf;
            h.buf.clear();
        }
    }

    fn request_head(
        &mut self,
        buf: &[u8],
        (msg_ts, msg_pos): (Timestamp, u64),
        ts: Timestamp,
        out: &mut Vec<Record>,
    ) {
        let mut lines = lines(buf);
        let first = lines.next().unwrap_or_default();
        let mut errors = Vec::new();
        let start = match parse_request_line(first, &mut errors) {
            Ok(RequestStart::Http1(line)) => line,
            Ok(RequestStart::Http2Preface) => {
                self.stats.http2_prior_knowledge += 1;
                self.enter_tunnel();
                return;
            }
            Err(kind) => {
                self.count(kind);
                let mark = Flags {
                    malformed: true,
                    ..Flags::default()
                };
                self.lose_sync(CLIENT, true, mark, ts, out);
                self.rescan_after_first_line(CLIENT, buf, ts, out);
                return;
            }
        };
        self.roles_fixed = true;
        let mut notes = HeaderNotes::default();
        let headers = parse_header_lines(lines, self.config.max_headers, &mut errors, &mut notes);
        let mut smuggling = errors.contains(&ParseErrorKind::WhitespaceInHeaderName);
        let framing = framing(&headers, true, start.version, &mut errors, &mut smuggling);
        let mut flags = self.note_head(&errors, smuggling, &notes);
        flags.merge(self.halves[CLIENT].head_mark);
        if std::mem::take(&mut self.halves[CLIENT].midstream_pending) {
            flags.midstream = true;
        }
        self.stats.requests += 1;
        let may_switch =
            start.method.eq_ignore_ascii_case("CONNECT") || headers.contains("upgrade");
        let body = match framing {
            Framing::Length(n) if n > 0 => Some(BodyReader::new(
                &headers,
                false,
                self.request_body_cap(),
                &self.config,
            )),
            Framing::Chunked => Some(BodyReader::new(
                &headers,
                false,
                self.request_body_cap(),
                &self.config,
            )),
            _ => None,
        };
        let request = Request {
            method: start.method,
            target: start.target,
            version: start.version,
            headers,
            body: Body::default(),
            trailers: Headers::default(),
        };
        if self.queue.len() >= self.config.max_pending_requests.max(1) {
            if let Some(oldest) = self.queue.pop_front() {
                self.stats.pending_overflow += 1;
                self.emit_unanswered(oldest, Flags::default(), out);
            }
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let id = self.ids.next_id();
        self.queue.push_back(Pending {
            seq,
            id,
            request,
            ts: msg_ts,
            position: msg_pos,
            flags: Flags::default(),
            done: false,
            may_switch,
        });
        let h = &mut self.halves[CLIENT];
        h.cur_seq = Some(seq);
        h.flags = flags;
        h.body = body;
        h.trailers = Headers::default();
        match framing {
            Framing::Length(n) if n > 0 => h.state = State::Length(n),
            Framing::Chunked => h.state = State::Chunked(Chunk::Size),
            Framing::Unknown => {
                // The body length cannot be known: what follows is scanned
                // for the next request line.
                h.flags.malformed = true;
                self.end_message(CLIENT, true, ts, out);
                if self.halves[CLIENT].state == State::Start {
                    self.stats.sync_losses += 1;
                    self.resync(CLIENT, true);
                }
            }
            _ => self.end_message(CLIENT, true, ts, out),
        }
    }

    fn response_head(
        &mut self,
        buf: &[u8],
        (msg_ts, msg_pos): (Timestamp, u64),
        ts: Timestamp,
        out: &mut Vec<Record>,
    ) {
        let mut lines = lines(buf);
        let first = lines.next().unwrap_or_default();
        let status_line = match parse_status_line(first) {
            Ok(s) => s,
            Err(kind) => {
                self.count(kind);
                let mark = Flags {
                    malformed: true,
                    ..Flags::default()
                };
                if looks_like_response(first) {
                    self.response_lost(mark, out);
                }
                self.lose_sync(SERVER, true, mark, ts, out);
                self.rescan_after_first_line(SERVER, buf, ts, out);
                return;
            }
        };
        self.roles_fixed = true;
        let status = status_line.status;
        let mut errors = Vec::new();
        let mut notes = HeaderNotes::default();
        let headers = parse_header_lines(lines, self.config.max_headers, &mut errors, &mut notes);
        if (100..200).contains(&status) && status != 101 {
            // Interim (100 Continue, 103 Early Hints): the final response
            // for the same request follows.
            self.stats.interim_responses += 1;
            self.halves[SERVER].state = State::Start;
            return;
        }
        self.stats.responses += 1;
        let mut flags = Flags::default();
        let mut request = None;
        let mut request_ts = None;
        let mut position = msg_pos;
        let mut method = String::new();
        let mut release_held = false;
        // Mid-stream, until a first pair is made: a response cannot start
        // before its request did, so a waiting request that began later
        // belongs to a later response. (Not applied otherwise: the two
        // directions of a tap may have skewed clocks.)
        let answerable = self
            .queue
            .front()
            .is_some_and(|p| !self.midstream || self.paired || p.ts <= msg_ts);
        let waiting = if answerable {
            self.queue.pop_front()
        } else {
            None
        };
        let id = match waiting {
            Some(mut p) => {
                if !p.done {
                    // Answered before the request finished arriving.
                    flags.incomplete = true;
                    let h = &self.halves[CLIENT];
                    if h.cur_seq == Some(p.seq) {
                        if let Some(b) = &h.body {
                            p.request.body = b.snapshot();
                        }
                        flags.merge(h.flags);
                    }
                }
                flags.merge(p.flags);
                release_held = p.may_switch && p.done;
                method = p.request.method.clone();
                request_ts = Some(p.ts);
                position = p.position;
                self.paired = true;
                request = Some(p.request);
                p.id
            }
            None => {
                self.stats.responses_without_request += 1;
                if self.midstream {
                    flags.midstream = true;
                } else if self.halves[CLIENT].gap_seen || self.halves[SERVER].gap_seen {
                    flags.gap = true;
                } else {
                    flags.malformed = true;
                    self.count(ParseErrorKind::UnsolicitedResponse);
                }
                self.ids.next_id()
            }
        };
        if std::mem::take(&mut self.halves[SERVER].midstream_pending) {
            flags.midstream = true;
        }
        let tunnel = status == 101
            || (method.eq_ignore_ascii_case("CONNECT") && (200..300).contains(&status));
        let mut smuggling = errors.contains(&ParseErrorKind::WhitespaceInHeaderName);
        let framing =
            if tunnel || method.eq_ignore_ascii_case("HEAD") || status == 204 || status == 304 {
                Framing::None
            } else {
                framing(
                    &headers,
                    false,
                    status_line.version,
                    &mut errors,
                    &mut smuggling,
                )
            };
        flags.merge(self.note_head(&errors, smuggling, &notes));
        let sse = framing != Framing::None
            && media_type(&headers).as_deref() == Some("text/event-stream");
        let skip = self.config.skip_non_mcp_response_bodies
            && request.is_some()
            && !may_carry_mcp(&headers);
        let body = match framing {
            Framing::None | Framing::Length(0) | Framing::Unknown => None,
            _ if skip => Some(BodyReader::skipped(&headers)),
            _ => Some(BodyReader::new(
                &headers,
                sse,
                self.config.max_body,
                &self.config,
            )),
        };
        let mut response = Response {
            version: status_line.version,
            status,
            reason: status_line.reason,
            headers,
            body: Body::default(),
            trailers: Headers::default(),
            sse_events: Vec::new(),
        };
        let h2c = status == 101
            && request.is_some()
            && response
                .headers
                .iter_named("upgrade")
                .any(|v| v.trim_ascii().eq_ignore_ascii_case(b"h2c"));
        if h2c {
            if let Some(request) = request {
                // Held client bytes (sent before the 101) come first.
                let held = std::mem::take(&mut self.halves[CLIENT].held);
                self.upgrade = Some(H2cUpgrade {
                    flow: self.flow.clone(),
                    origin: Origin {
                        input: self.origin.input.clone(),
                        position,
                    },
                    ids: self.ids.clone(),
                    request,
                    request_ts: request_ts.unwrap_or(msg_ts),
                    client_bytes: held,
                    server_bytes: Vec::new(),
                });
                self.enter_tunnel();
                return;
            }
        }
        if tunnel {
            flags.tunnel = true;
            let parts = ExchangeParts {
                id,
                request,
                request_ts,
                response: Some(response),
                response_ts: Some(msg_ts),
                flags,
                position,
            };
            self.emit(parts, out);
            self.enter_tunnel();
            return;
        }
        if sse {
            flags.streaming = true;
            response.body.encodings = list_values(&response.headers, "content-encoding");
            let ex = ExchangeParts {
                id,
                request,
                request_ts,
                response: Some(response),
                response_ts: Some(msg_ts),
                flags,
                position,
            }
            .build(&self.origin, &self.flow);
            self.stream = Some(EventStreamOut::new(ex));
        } else {
            self.cur_resp = Some(CurResponse {
                id,
                request,
                request_ts,
                response,
                response_ts: msg_ts,
                position,
                flags,
            });
        }
        let h = &mut self.halves[SERVER];
        h.body = body;
        h.flags = Flags::default();
        h.trailers = Headers::default();
        match framing {
            Framing::Length(n) if n > 0 => h.state = State::Length(n),
            Framing::Chunked => h.state = State::Chunked(Chunk::Size),
            Framing::UntilClose => h.state = State::UntilClose,
            _ => self.end_message(SERVER, true, ts, out),
        }
        if release_held {
            self.release_held(ts, out);
        }
    }

    /// Body cap of a new request: `max_body`, lowered so that the bodies of
    /// all requests waiting for a response stay within
    /// `max_pending_body_bytes`.
    fn request_body_cap(&self) -> usize {
        let queued: usize = self.queue.iter().map(|p| p.request.body.data.len()).sum();
        self.config
            .max_body
            .min(self.config.max_pending_body_bytes.saturating_sub(queued))
    }

    /// Counts a head's errors; returns the flags they imply.
    fn note_head(
        &mut self,
        errors: &[ParseErrorKind],
        smuggling: bool,
        notes: &HeaderNotes,
    ) -> Flags {
        for e in errors {
            self.count(*e);
        }
        if smuggling {
            self.stats.smuggling_indicators += 1;
        }
        self.stats.obs_folds += notes.obs_folds;
        Flags {
            malformed: !errors.is_empty(),
            ..Flags::default()
        }
    }

    fn step_chunked(
        &mut self,
        role: usize,
        chunk: Chunk,
        ts: Timestamp,
        data: &[u8],
        out: &mut Vec<Record>,
    ) -> usize {
        let malformed = Flags {
            malformed: true,
            ..Flags::default()
        };
        match chunk {
            Chunk::Size => {
                let max = self.config.max_chunk_line.max(16);
                let h = &mut self.halves[role];
                let lf = data.iter().position(|&b| b == b'\n');
                let text_len = lf.unwrap_or(data.len());
                if h.buf.len().saturating_add(text_len) > max {
                    self.count(ParseErrorKind::ChunkLineTooLong);
                    let used = lf.map_or(data.len(), |i| i + 1);
                    self.lose_sync(role, lf.is_some(), malformed, ts, out);
                    return used;
                }
                h.buf
                    .extend_from_slice(data.get(..text_len).unwrap_or_default());
                let Some(i) = lf else {
                    return data.len();
                };
                let line = std::mem::take(&mut h.buf);
                match chunk_size(&line) {
                    Ok(0) => {
                        h.state = State::Chunked(Chunk::Trailers);
                        h.scan_from = 0;
                    }
                    Ok(n) => h.state = State::Chunked(Chunk::Data(n)),
                    Err(kind) => {
                        self.count(kind);
                        self.lose_sync(role, true, malformed, ts, out);
                    }
                }
                let h = &mut self.halves[role];
                if h.buf.is_empty() {
                    h.buf = line;
                    h.buf.clear();
                }
                i + 1
            }
            Chunk::Data(remaining) => {
                let take = usize::try_from(remaining)
                    .unwrap_or(usize::MAX)
                    .min(data.len());
                self.feed_body(role, ts, data.get(..take).unwrap_or_default(), out);
                let left = remaining - take as u64;
                self.halves[role].state = State::Chunked(if left == 0 {
                    Chunk::DataEnd { seen_cr: false }
                } else {
                    Chunk::Data(left)
                });
                take
            }
            Chunk::DataEnd { seen_cr } => {
                let h = &mut self.halves[role];
                match data.first() {
                    Some(b'\r') if !seen_cr => {
                        h.state = State::Chunked(Chunk::DataEnd { seen_cr: true });
                        1
                    }
                    Some(b'\n') => {
                        h.state = State::Chunked(Chunk::Size);
                        1
                    }
                    _ => {
                        // Tolerated: read on as the next chunk-size line.
                        h.flags.malformed = true;
                        h.state = State::Chunked(Chunk::Size);
                        self.count(ParseErrorKind::MissingChunkDelimiter);
                        0
                    }
                }
            }
            Chunk::Trailers => {
                let max = self.config.max_header_bytes.max(16);
                let h = &mut self.halves[role];
                let prev = h.buf.len();
                let take = max.saturating_sub(prev).min(data.len());
                h.buf
                    .extend_from_slice(data.get(..take).unwrap_or_default());
                match section_end(&h.buf, h.scan_from) {
                    Some(end) => {
                        let section = h.buf.get(..end).unwrap_or_default();
                        let mut errors = Vec::new();
                        let mut notes = HeaderNotes::default();
                        h.trailers = parse_header_lines(
                            lines(section),
                            self.config.max_headers,
                            &mut errors,
                            &mut notes,
                        );
                        h.buf.clear();
                        h.scan_from = 0;
                        let smuggling = errors.contains(&ParseErrorKind::WhitespaceInHeaderName);
                        let flags = self.note_head(&errors, smuggling, &notes);
                        self.halves[role].flags.merge(flags);
                        self.end_message(role, true, ts, out);
                        end.saturating_sub(prev).max(1)
                    }
                    None => {
                        h.scan_from = h.buf.len().saturating_sub(2);
                        if h.buf.len() >= max {
                            self.count(ParseErrorKind::TrailersTooLarge);
                            self.lose_sync(role, false, malformed, ts, out);
                        }
                        take
                    }
                }
            }
        }
    }

    fn step_resync(&mut self, role: usize, ts: Timestamp, data: &[u8], line_ok: bool) -> usize {
        let max_line = self.config.max_resync_line.max(64);
        let lf = data.iter().position(|&b| b == b'\n');
        let seg_len = lf.map_or(data.len(), |i| i + 1);
        let seg = data.get(..seg_len).unwrap_or_default();
        let h = &mut self.halves[role];
        if !line_ok || h.buf.len().saturating_add(seg.len()) > max_line {
            // Inside a line whose start we did not see, or one too long to
            // be a start line: skip to its end.
            self.stats.bytes_skipped += (h.buf.len() + seg.len()) as u64;
            h.buf.clear();
            h.state = State::Resync {
                line_ok: lf.is_some(),
            };
            return seg_len;
        }
        if h.buf.is_empty() {
            h.msg_ts = Some(ts);
            h.msg_pos = self.position;
        }
        h.buf.extend_from_slice(seg);
        if lf.is_none() {
            return seg_len;
        }
        let line = h.buf.strip_suffix(b"\n").unwrap_or(&h.buf);
        let (own, other) = if role == CLIENT {
            (is_request_line(line), is_status_line(line))
        } else {
            (is_status_line(line), is_request_line(line))
        };
        let target = if own {
            role
        } else if other && !self.roles_fixed {
            // Mid-stream pickup with the directions reversed: the side the
            // transport called the client sends responses.
            self.halves.swap(CLIENT, SERVER);
            self.swapped = !self.swapped;
            std::mem::swap(&mut self.flow.client, &mut self.flow.server);
            self.stats.direction_swaps += 1;
            1 - role
        } else {
            self.stats.bytes_skipped += h.buf.len() as u64;
            h.buf.clear();
            return seg_len;
        };
        self.roles_fixed = true;
        self.stats.resyncs += 1;
        let h = &mut self.halves[target];
        h.state = State::Head;
        h.scan_from = 0;
        seg_len
    }

    /// Ends the message being read in `role`.
    fn end_message(&mut self, role: usize, complete: bool, ts: Timestamp, out: &mut Vec<Record>) {
        if role == CLIENT {
            self.end_request(complete);
        } else {
            self.end_response(complete, ts, out);
        }
    }

    fn end_request(&mut self, complete: bool) {
        let h = &mut self.halves[CLIENT];
        let body = h.body.as_mut().map(|b| b.finish(complete));
        h.body = None;
        let mut flags = std::mem::take(&mut h.flags);
        flags.incomplete |= !complete;
        let trailers = std::mem::take(&mut h.trailers);
        let seq = h.cur_seq.take();
        if h.state != State::Tunnel {
            h.state = State::Start;
        }
        if let Some(b) = &body {
            flags.truncated |= b.truncated;
            self.note_body(b);
        }
        let Some(p) = seq.and_then(|s| self.queue.iter_mut().find(|p| p.seq == s)) else {
            // Already answered (or evicted); nothing left to fill in.
            return;
        };
        if let Some(b) = body {
            p.request.body = b;
        }
        p.request.trailers = trailers;
        p.flags.merge(flags);
        p.done = true;
        if p.may_switch && self.halves[CLIENT].state == State::Start {
            self.halves[CLIENT].state = State::Held;
        }
    }

    fn end_response(&mut self, complete: bool, ts: Timestamp, out: &mut Vec<Record>) {
        let h = &mut self.halves[SERVER];
        let mut flags = std::mem::take(&mut h.flags);
        flags.incomplete |= !complete;
        let trailers = std::mem::take(&mut h.trailers);
        if h.state != State::Tunnel {
            h.state = State::Start;
        }
        let body = h.body.as_mut().map(|b| b.finish(complete));
        if self.stream.is_some() {
            let partial = self.halves[SERVER]
                .body
                .as_mut()
                .and_then(BodyReader::sse)
                .is_some_and(SseParser::finish);
            flags.incomplete |= partial;
            if let Some(b) = &body {
                flags.malformed |= b.decode_error.is_some();
                self.note_body(b);
            }
            self.flush_stream(ts, out);
            self.halves[SERVER].body = None;
            self.end_stream(flags, ts, out);
            return;
        }
        self.halves[SERVER].body = None;
        let Some(cur) = self.cur_resp.take() else {
            return;
        };
        let mut response = cur.response;
        if let Some(b) = body {
            flags.truncated |= b.truncated;
            self.note_body(&b);
            response.body = b;
        }
        response.trailers = trailers;
        let mut all = cur.flags;
        all.merge(flags);
        let parts = ExchangeParts {
            id: cur.id,
            request: cur.request,
            request_ts: cur.request_ts,
            response: Some(response),
            response_ts: Some(cur.response_ts),
            flags: all,
            position: cur.position,
        };
        self.emit(parts, out);
    }

    fn note_body(&mut self, b: &Body) {
        if b.truncated {
            self.stats.bodies_truncated += 1;
        }
        if b.decode_error.is_some() {
            self.stats.decode_errors += 1;
        }
    }

    /// A response head was lost (gap, garbage): its request, if one is
    /// waiting, is emitted without a response.
    fn response_lost(&mut self, mark: Flags, out: &mut Vec<Record>) {
        if let Some(p) = self.queue.pop_front() {
            let mut flags = mark;
            flags.incomplete = true;
            self.emit_unanswered(p, flags, out);
        }
    }

    /// `role` lost track of message boundaries: the message being read is
    /// emitted incomplete with `mark`, then lines are scanned for the next
    /// message start.
    fn lose_sync(
        &mut self,
        role: usize,
        line_ok: bool,
        mark: Flags,
        ts: Timestamp,
        out: &mut Vec<Record>,
    ) {
        self.stats.sync_losses += 1;
        let state = self.halves[role].state;
        self.halves[role].flags.merge(mark);
        match state {
            State::Length(_) | State::Chunked(_) | State::UntilClose => {
                self.end_message(role, false, ts, out)
            }
            State::Head if role == SERVER && looks_like_response(&self.halves[SERVER].buf) => {
                self.halves[SERVER].flags = Flags::default();
                self.response_lost(mark, out);
            }
            _ => self.halves[role].flags = Flags::default(),
        }
        if self.halves[role].state != State::Tunnel {
            self.resync(role, line_ok);
        }
    }

    /// A "head" whose first line was not a start line may hold the real
    /// next message after that line (e.g. after a body longer than
    /// announced): scan the rest of it again.
    fn rescan_after_first_line(
        &mut self,
        role: usize,
        head: &[u8],
        ts: Timestamp,
        out: &mut Vec<Record>,
    ) {
        let Some(lf) = head.iter().position(|&b| b == b'\n') else {
            return;
        };
        let rest = head.get(lf + 1..).unwrap_or_default();
        if rest.is_empty() {
            return;
        }
        if self.rescan_depth >= MAX_RESCAN_DEPTH {
            self.stats.bytes_skipped += rest.len() as u64;
            return;
        }
        self.rescan_depth += 1;
        let dir = self.dir_of(role);
        self.feed(dir, ts, rest, out);
        self.rescan_depth -= 1;
    }

    fn resync(&mut self, role: usize, line_ok: bool) {
        let h = &mut self.halves[role];
        h.state = State::Resync { line_ok };
        h.buf.clear();
        h.scan_from = 0;
    }

    fn fin_role(&mut self, role: usize, ts: Timestamp, out: &mut Vec<Record>) {
        match self.halves[role].state {
            State::UntilClose => self.end_message(role, true, ts, out),
            State::Length(_) | State::Chunked(_) => self.end_message(role, false, ts, out),
            State::Head => {
                let h = &mut self.halves[role];
                let was_response = role == SERVER && looks_like_response(&h.buf);
                self.stats.bytes_skipped += h.buf.len() as u64;
                h.buf.clear();
                h.state = State::Start;
                if was_response {
                    let mark = Flags {
                        incomplete: true,
                        ..Flags::default()
                    };
                    self.response_lost(mark, out);
                }
            }
            State::Held => {
                let h = &mut self.halves[role];
                self.stats.bytes_skipped += h.held.len() as u64;
                h.held.clear();
            }
            _ => {}
        }
    }

    /// The response to a CONNECT/Upgrade request did not switch protocols:
    /// the held client bytes are HTTP after all.
    fn release_held(&mut self, ts: Timestamp, out: &mut Vec<Record>) {
        let h = &mut self.halves[CLIENT];
        if h.state != State::Held {
            return;
        }
        let held = std::mem::take(&mut h.held);
        let lost = std::mem::take(&mut h.held_lost);
        let held_ts = h.held_ts.take().unwrap_or(ts);
        h.state = State::Start;
        let dir = self.dir_of(CLIENT);
        // The held bytes start at a message boundary; what was dropped
        // after them is a gap.
        self.feed(dir, held_ts, &held, out);
        if lost > 0 {
            self.on_gap(dir, lost, out);
        }
    }

    fn enter_tunnel(&mut self) {
        self.stats.tunnels += 1;
        for h in &mut self.halves {
            self.stats.tunnel_bytes = self.stats.tunnel_bytes.saturating_add(h.held.len() as u64);
            h.state = State::Tunnel;
            h.buf = Vec::new();
            h.held = Vec::new();
            h.body = None;
            h.cur_seq = None;
        }
    }

    /// Hands out the open stream's exchange or its new events.
    fn flush_stream(&mut self, ts: Timestamp, out: &mut Vec<Record>) {
        let Some(stream) = self.stream.as_mut() else {
            return;
        };
        if self.halves[SERVER].flags.gap {
            stream.flags.gap = true;
        }
        let parser = self.halves[SERVER].body.as_mut().and_then(BodyReader::sse);
        let done = stream.flush(parser, self.flow.id, ts, out);
        self.stats.sse_events_truncated += done.truncated_events;
        self.stats.sse_events += done.events;
        self.stats.exchanges += u64::from(done.exchange);
    }

    fn end_stream(&mut self, flags: Flags, ts: Timestamp, out: &mut Vec<Record>) {
        self.flush_stream(ts, out);
        if let Some(stream) = self.stream.take() {
            stream.finish(flags, self.flow.id, ts, out);
        }
    }

    fn emit_unanswered(&mut self, p: Pending, mark: Flags, out: &mut Vec<Record>) {
        self.stats.requests_without_response += 1;
        let mut flags = p.flags;
        flags.merge(mark);
        flags.incomplete = true;
        let parts = ExchangeParts {
            id: p.id,
            request: Some(p.request),
            request_ts: Some(p.ts),
            response: None,
            response_ts: None,
            flags,
            position: p.position,
        };
        self.emit(parts, out);
    }

    fn emit(&mut self, parts: ExchangeParts, out: &mut Vec<Record>) {
        let ex = parts.build(&self.origin, &self.flow);
        self.stats.exchanges += 1;
        out.push(Record::Exchange(ex));
    }

    fn count(&mut self, kind: ParseErrorKind) {
        self.stats.parse_errors.add(kind);
    }
}

/// `buf` starts like a status line (or is a prefix of `HTTP/`): a response
/// was being sent, so a lost head still used up a waiting request. Other
/// bytes (e.g. a body longer than announced) do not.
fn looks_like_response(buf: &[u8]) -> bool {
    let n = buf.len().min(5);
    n > 0 && buf.get(..n) == b"HTTP/".get(..n)
}

/// The size of a chunk-size line (`1*HEXDIG [BWS] [; ext]`).
fn chunk_size(line: &[u8]) -> Result<u64, ParseErrorKind> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 {
        return Err(ParseErrorKind::InvalidChunkSize);
    }
    let rest = line.get(digits..).unwrap_or_default();
    let rest_ok = rest
        .iter()
        .find(|&&b| b != b' ' && b != b'\t')
        .is_none_or(|&b| b == b';');
    if !rest_ok {
        return Err(ParseErrorKind::InvalidChunkSize);
    }
    let mut size: u64 = 0;
    for &b in line.get(..digits).unwrap_or_default() {
        let d = (b as char).to_digit(16).unwrap_or(0);
        size = size
            .checked_mul(16)
            .and_then(|s| s.checked_add(u64::from(d)))
            .ok_or(ParseErrorKind::ChunkSizeOverflow)?;
    }
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::chunk_size;
    use crate::ParseErrorKind;

    #[test]
    fn chunk_size_lines() {
        assert_eq!(chunk_size(b"1a"), Ok(26));
        assert_eq!(chunk_size(b"0000000000000000000010\r"), Ok(16));
        assert_eq!(chunk_size(b"5 ; name=\"v\""), Ok(5));
        assert_eq!(chunk_size(b"5;ext"), Ok(5));
        assert_eq!(chunk_size(b""), Err(ParseErrorKind::InvalidChunkSize));
        assert_eq!(chunk_size(b"5x"), Err(ParseErrorKind::InvalidChunkSize));
        assert_eq!(
            chunk_size(b"10000000000000000"),
            Err(ParseErrorKind::ChunkSizeOverflow)
        );
        assert_eq!(chunk_size(b"ffffffffffffffff"), Ok(u64::MAX));
    }
}

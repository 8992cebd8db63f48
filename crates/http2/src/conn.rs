//! The per-connection state machine: framing of each direction, HPACK
//! contexts, and the streams being assembled into exchanges.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use shadowmcp_exchange::{
    Body, Exchange, Flags, Flow, Headers, HttpVersion, Origin, Record, Request, Response, Timestamp,
};
use shadowmcp_http1::{decode_body, BodyBudget, EventStreamOut, ExchangeParts, SseParser};

use crate::frame::{
    flag, kind, setting, unpad, FrameHeader, DEFAULT_MAX_FRAME_SIZE, HEADER_LEN,
    MAX_MAX_FRAME_SIZE, PREFACE,
};
use crate::hpack::{self, Block, ListLimits};
use crate::{Direction, ErrorKind, ExchangeIds, Http2Config, Http2Stats};

/// Index of the half sent by the client.
const CLIENT: usize = 0;
/// Index of the half sent by the server.
const SERVER: usize = 1;

/// Consecutive well-formed frame headers required to accept a frame
/// boundary found by scanning.
const SYNC_FRAMES: usize = 3;

/// SSE bodies are fed in pieces of at most this size, with events handed
/// out in between.
const SSE_FEED_PIECE: usize = 16 << 10;

/// A payload buffer bigger than this is released after use.
const KEEP_BUFFER: usize = 64 << 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    /// Client side at connection start: matching the preface.
    Preface {
        matched: usize,
    },
    /// Looking for frame boundaries.
    Sync,
    Frames,
    /// Framing lost (gap): bytes are counted and dropped.
    Lost,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct DataState {
    stream: u32,
    /// The pad length byte is still to come.
    need_pad_len: bool,
    /// Content bytes still to come.
    content_left: u32,
    /// The frame is broken (bad padding): the rest is skipped.
    broken: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Payload collected in `payload`, handled when complete.
    Buffer,
    /// Payload ignored.
    Skip,
    Data(DataState),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BlockKind {
    Headers { end_stream: bool },
    PushPromise { promised: u32 },
}

/// A header block waiting for CONTINUATION frames.
struct PendingBlock {
    stream: u32,
    kind: BlockKind,
    data: Vec<u8>,
    /// Went over `max_header_block`; the data is dropped.
    too_large: bool,
}

/// One direction of the connection.
struct Half {
    framing: Framing,
    hdr: [u8; HEADER_LEN],
    hdr_len: usize,
    frame: Option<FrameHeader>,
    /// Payload bytes of `frame` still to come.
    left: u32,
    mode: Mode,
    payload: Vec<u8>,
    block: Option<PendingBlock>,
    sync: Vec<u8>,
    /// Offsets of `sync` below this were rejected as frame starts.
    sync_from: usize,
    /// The direction was fed from its first byte (a frame found at offset
    /// 0 then means the HPACK state is known).
    pristine: bool,
    /// SETTINGS_MAX_FRAME_SIZE announced by the receiver of this direction.
    max_frame_size: u32,
    hpack: hpack::Decoder,
    /// No more bytes come (FIN, gap or close).
    done: bool,
}

impl Half {
    fn new(framing: Framing, midstream: bool, cfg: &Http2Config) -> Half {
        Half {
            framing,
            hdr: [0; HEADER_LEN],
            hdr_len: 0,
            frame: None,
            left: 0,
            mode: Mode::Skip,
            payload: Vec::new(),
            block: None,
            sync: Vec::new(),
            sync_from: 0,
            pristine: !midstream,
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            hpack: if midstream {
                hpack::Decoder::unknown_state(cfg.max_header_table)
            } else {
                hpack::Decoder::new(cfg.max_header_table)
            },
            done: false,
        }
    }
}

/// Wire bytes of a body, held until the body ends.
#[derive(Default)]
struct RawBody {
    data: Vec<u8>,
    wire_len: u64,
    truncated: bool,
    /// Taken from the shared budget.
    taken: usize,
}

/// One side (request or response) of a stream.
#[derive(Default)]
struct Side {
    body: RawBody,
    trailers: Headers,
    ended: bool,
    /// DATA payload bytes received (for the content-length check).
    data_len: u64,
}

/// The live event stream of a `text/event-stream` response.
struct Sse {
    parser: SseParser,
    out: EventStreamOut,
}

struct Stream {
    exchange_id: u64,
    /// Creation order, for eviction.
    order: u64,
    request: Option<Request>,
    request_ts: Option<Timestamp>,
    response: Option<Response>,
    response_ts: Option<Timestamp>,
    position: u64,
    /// The request head was seen (or cannot come).
    req_head: bool,
    req: Side,
    resp: Side,
    flags: Flags,
    sse: Option<Sse>,
}

/// The HTTP/2 parser of one TCP connection. See the crate docs.
pub struct Connection {
    flow: Flow,
    origin: Origin,
    midstream: bool,
    config: Arc<Http2Config>,
    ids: ExchangeIds,
    halves: [Half; 2],
    streams: BTreeMap<u32, Stream>,
    /// Event streams with something to hand out.
    sse_dirty: BTreeSet<u32>,
    next_order: u64,
    /// Highest stream id opened by each side.
    last_stream: [u32; 2],
    /// The transport's ToServer direction carries the server's frames
    /// (found mid-connection).
    swapped: bool,
    /// Which side is the client is settled (always, unless mid-stream).
    roles_fixed: bool,
    /// First stream the client was seen opening.
    first_client_stream: Option<u32>,
    /// Wire body bytes held across streams.
    body_bytes: usize,
    stats: Http2Stats,
    now: Timestamp,
    position: u64,
    closed: bool,
}

impl Connection {
    /// A parser for one connection. `midstream: false`: the connection is
    /// seen from its start (the client preface may be there or already
    /// stripped by the caller). `midstream: true`: the capture started
    /// after the connection did; frame boundaries are searched for and the
    /// HPACK state starts unknown.
    pub fn new(
        flow: Flow,
        origin: Origin,
        midstream: bool,
        config: Arc<Http2Config>,
        ids: ExchangeIds,
    ) -> Connection {
        let client_framing = if midstream {
            Framing::Sync
        } else {
            Framing::Preface { matched: 0 }
        };
        let server_framing = if midstream {
            Framing::Sync
        } else {
            Framing::Frames
        };
        let halves = [
            Half::new(client_framing, midstream, &config),
            Half::new(server_framing, midstream, &config),
        ];
        let position = origin.position;
        let mut stats = Http2Stats::default();
        if midstream {
            stats.midstream = 1;
        }
        Connection {
            flow,
            origin,
            midstream,
            config,
            ids,
            halves,
            streams: BTreeMap::new(),
            sse_dirty: BTreeSet::new(),
            next_order: 0,
            last_stream: [0, 0],
            swapped: false,
            roles_fixed: !midstream,
            first_client_stream: None,
            body_bytes: 0,
            stats,
            now: Timestamp::default(),
            position,
            closed: false,
        }
    }

    /// A parser for a connection upgraded from HTTP/1.1 (`Upgrade: h2c`,
    /// RFC 7540 §3.2): `request` is the HTTP/1.1 request that asked for the
    /// upgrade, already parsed (its body included); it becomes stream 1,
    /// whose response comes in HTTP/2. Feed the bytes that follow the
    /// `101` response (server) and the upgrade request (client: the
    /// preface, then frames). The request's `HTTP2-Settings` header is
    /// applied as the client's first SETTINGS.
    pub fn upgraded(
        flow: Flow,
        origin: Origin,
        config: Arc<Http2Config>,
        ids: ExchangeIds,
        request: Request,
        request_ts: Timestamp,
    ) -> Connection {
        let mut conn = Connection::new(flow, origin, false, config, ids);
        conn.stats.upgrades = 1;
        conn.now = request_ts;
        if let Some(payload) = request
            .headers
            .get("http2-settings")
            .and_then(base64url_decode)
        {
            if payload.len() % 6 == 0 {
                conn.apply_settings(CLIENT, &payload);
            } else {
                conn.error(ErrorKind::InvalidSetting);
            }
        }
        conn.stats.requests += 1;
        let s = conn.open_stream(Some(CLIENT), 1, &mut Vec::new());
        s.req_head = true;
        s.request = Some(request);
        s.request_ts = Some(request_ts);
        s.req.ended = true;
        conn
    }

    /// Sets the input position (e.g. packet number) of the data fed next;
    /// each exchange's `origin.position` is the position of the frame that
    /// opened its stream. Starts at `origin.position`.
    pub fn set_position(&mut self, position: u64) {
        self.position = position;
    }

    pub fn stats(&self) -> &Http2Stats {
        &self.stats
    }

    /// The flow, oriented client → server as this parser decided (reversed
    /// from the one given when a mid-connection pickup was found swapped).
    pub fn flow(&self) -> &Flow {
        &self.flow
    }

    /// Bytes this connection holds in its buffers (frame payloads, header
    /// blocks, HPACK tables, bodies kept so far, SSE state). Bounded by the
    /// [`Http2Config`] limits.
    pub fn buffered_bytes(&self) -> usize {
        let halves: usize = self
            .halves
            .iter()
            .map(|h| {
                h.payload.len()
                    + h.sync.len()
                    + h.block.as_ref().map_or(0, |b| b.data.len())
                    + h.hpack.table_size()
            })
            .sum();
        let streams: usize = self
            .streams
            .values()
            .map(|s| {
                s.req.body.data.len()
                    + s.resp.body.data.len()
                    + s.sse.as_ref().map_or(0, |e| {
                        e.parser.buffered_bytes() + e.out.unsent().map_or(0, exchange_size)
                    })
                    + s.request.as_ref().map_or(0, |r| headers_size(&r.headers))
                    + s.response.as_ref().map_or(0, |r| headers_size(&r.headers))
                    + headers_size(&s.req.trailers)
                    + headers_size(&s.resp.trailers)
            })
            .sum();
        halves + streams
    }

    /// Bytes of one direction, in order.
    pub fn on_data(&mut self, dir: Direction, ts: Timestamp, data: &[u8], out: &mut Vec<Record>) {
        if self.closed {
            self.stats.bytes_after_close += data.len() as u64;
            return;
        }
        self.now = ts;
        let role = role(dir);
        self.feed(role, data, out);
        self.flush_all_sse(out);
    }

    /// `len` bytes of one direction are missing: its frame boundaries and
    /// HPACK state are lost, so nothing more is read from it. Streams still
    /// waiting on it are flagged `gap` and emitted with what was seen.
    pub fn on_gap(&mut self, dir: Direction, len: u64, out: &mut Vec<Record>) {
        if self.closed || len == 0 {
            return;
        }
        let role = role(dir);
        self.stats.gap_bytes = self.stats.gap_bytes.saturating_add(len);
        let h = &mut self.halves[role];
        if h.framing == Framing::Lost {
            return;
        }
        self.stats.framing_lost += 1;
        self.stats.bytes_skipped += (h.sync.len() + h.payload.len()) as u64;
        h.framing = Framing::Lost;
        h.sync = Vec::new();
        h.payload = Vec::new();
        h.frame = None;
        h.hdr_len = 0;
        if h.block.take().is_some() {
            self.stats.header_blocks_lost += 1;
        }
        let mark = Flags {
            gap: true,
            incomplete: true,
            ..Flags::default()
        };
        self.end_direction(role, mark, out);
        self.flush_all_sse(out);
    }

    /// One direction was closed (FIN): streams still waiting on it are
    /// emitted as `incomplete`.
    pub fn on_fin(&mut self, dir: Direction, ts: Timestamp, out: &mut Vec<Record>) {
        if self.closed {
            return;
        }
        self.now = ts;
        self.fin_role(role(dir), out);
        self.flush_all_sse(out);
    }

    /// The connection ended (or the input did): everything pending is
    /// emitted, `incomplete` where it is.
    pub fn on_close(&mut self, ts: Timestamp, out: &mut Vec<Record>) {
        if self.closed {
            return;
        }
        self.now = ts;
        self.fin_role(CLIENT, out);
        self.fin_role(SERVER, out);
        let ids: Vec<u32> = self.streams.keys().copied().collect();
        let mark = Flags {
            incomplete: true,
            ..Flags::default()
        };
        for id in ids {
            self.finish_stream(id, mark, out);
        }
        for h in &mut self.halves {
            h.hpack.forget();
        }
        self.closed = true;
    }

    fn fin_role(&mut self, role: usize, out: &mut Vec<Record>) {
        let h = &mut self.halves[role];
        if h.done {
            return;
        }
        if h.framing == Framing::Sync && !h.sync.is_empty() {
            // No more bytes come: a chain of frames ending exactly at the
            // end is accepted.
            self.try_sync(role, true, out);
        }
        let h = &mut self.halves[role];
        if h.frame.is_some() || h.hdr_len > 0 {
            self.stats.bytes_skipped += (h.hdr_len + h.payload.len()) as u64;
        }
        h.frame = None;
        h.hdr_len = 0;
        h.payload = Vec::new();
        self.stats.bytes_skipped += h.sync.len() as u64;
        h.sync = Vec::new();
        if h.block.take().is_some() {
            self.stats.header_blocks_lost += 1;
        }
        let mark = Flags {
            incomplete: true,
            ..Flags::default()
        };
        self.end_direction(role, mark, out);
    }

    /// No more frames come from `role`: every stream side it still owed is
    /// ended with `mark`.
    fn end_direction(&mut self, role: usize, mark: Flags, out: &mut Vec<Record>) {
        self.halves[role].done = true;
        let client_side = self.sem(role) == CLIENT;
        let ids: Vec<u32> = self.streams.keys().copied().collect();
        for id in ids {
            let Some(s) = self.streams.get_mut(&id) else {
                continue;
            };
            let side = if client_side { &mut s.req } else { &mut s.resp };
            if side.ended {
                continue;
            }
            side.ended = true;
            s.flags.merge(mark);
            if let Some(sse) = s.sse.as_mut() {
                if !client_side {
                    sse.out.flags.merge(mark);
                }
            }
            self.maybe_finish(id, out);
        }
    }

    fn feed(&mut self, role: usize, mut data: &[u8], out: &mut Vec<Record>) {
        while !data.is_empty() {
            let used = match self.halves[role].framing {
                Framing::Lost => {
                    self.stats.bytes_skipped += data.len() as u64;
                    data.len()
                }
                Framing::Preface { matched } => self.step_preface(role, matched, data, out),
                Framing::Sync => {
                    self.step_sync(role, data, out);
                    data.len()
                }
                Framing::Frames => self.step_frames(role, data, out),
            };
            // Every step consumes at least one byte; guard anyway.
            data = data.get(used.max(1)..).unwrap_or_default();
        }
    }

    fn step_preface(
        &mut self,
        role: usize,
        matched: usize,
        data: &[u8],
        out: &mut Vec<Record>,
    ) -> usize {
        let want = PREFACE.get(matched..).unwrap_or_default();
        let n = want.len().min(data.len());
        let same = want
            .iter()
            .zip(data.iter())
            .take_while(|(a, b)| a == b)
            .count();
        if same == n {
            let h = &mut self.halves[role];
            if matched + n == PREFACE.len() {
                self.stats.prefaces += 1;
                h.framing = Framing::Frames;
            } else {
                h.framing = Framing::Preface {
                    matched: matched + n,
                };
            }
            return n;
        }
        // Not the preface: maybe it was stripped and frames start here,
        // else we are somewhere unknown. Scan from the first byte.
        if matched + same > 0 {
            // A broken preface: whatever follows is not at a known start.
            self.error(ErrorKind::BadPreface);
            let h = &mut self.halves[role];
            h.pristine = false;
            h.sync
                .extend_from_slice(PREFACE.get(..matched).unwrap_or_default());
        }
        self.halves[role].framing = Framing::Sync;
        self.sync_consume(role, data, out)
    }

    /// Sync state: buffers bytes and looks for a frame boundary.
    fn step_sync(&mut self, role: usize, data: &[u8], out: &mut Vec<Record>) {
        self.sync_consume(role, data, out);
    }

    fn sync_consume(&mut self, role: usize, data: &[u8], out: &mut Vec<Record>) -> usize {
        let max = self.config.max_sync_bytes.max(64);
        let mut rest = data;
        while !rest.is_empty() {
            let h = &mut self.halves[role];
            if h.framing != Framing::Sync {
                // Synced: the rest is frames.
                self.feed(role, rest, out);
                return data.len();
            }
            let room = max.saturating_sub(h.sync.len()).max(1);
            let take = room.min(rest.len());
            h.sync
                .extend_from_slice(rest.get(..take).unwrap_or_default());
            rest = rest.get(take..).unwrap_or_default();
            self.try_sync(role, false, out);
            let h = &mut self.halves[role];
            if h.framing == Framing::Sync && h.sync.len() >= max {
                // Nothing found in a full window: drop what was rejected.
                let drop = h.sync_from.max(1).min(h.sync.len());
                h.sync.drain(..drop);
                h.sync_from = 0;
                h.pristine = false;
                self.stats.bytes_skipped += drop as u64;
            }
        }
        data.len()
    }

    /// Looks for a frame start in the sync buffer; on success switches to
    /// framing and parses the buffered bytes. `at_end`: no more bytes will
    /// come.
    fn try_sync(&mut self, role: usize, at_end: bool, out: &mut Vec<Record>) {
        let from_client = self.sem(role) == CLIENT;
        let h = &mut self.halves[role];
        let buf = &h.sync;
        let mut found = None;
        let mut o = h.sync_from;
        if h.pristine && o == 0 && opens_connection(buf, from_client) {
            // The connection's first frame, SETTINGS (RFC 9113 §3.4): the
            // client preface was stripped by whoever fed us.
            found = Some(0);
        }
        while found.is_none() && o < buf.len() {
            match chain_at(buf, o, from_client, at_end) {
                Chain::Accept => {
                    found = Some(o);
                    break;
                }
                Chain::Reject => o += 1,
                Chain::NeedMore => break,
            }
        }
        h.sync_from = o;
        let Some(start) = found else {
            if at_end {
                self.stats.bytes_skipped += h.sync.len() as u64;
                h.sync.clear();
                h.sync_from = 0;
            }
            return;
        };
        let known = h.pristine && start == 0;
        if !known && !h.hpack.is_lossy() {
            h.hpack.forget();
            self.stats.hpack_resets += 1;
        }
        let buf = std::mem::take(&mut h.sync);
        h.sync_from = 0;
        h.framing = Framing::Frames;
        self.stats.syncs += 1;
        self.stats.bytes_skipped += start as u64;
        self.feed(role, buf.get(start..).unwrap_or_default(), out);
    }

    fn step_frames(&mut self, role: usize, data: &[u8], out: &mut Vec<Record>) -> usize {
        let h = &mut self.halves[role];
        if h.frame.is_none() {
            let want = HEADER_LEN - h.hdr_len;
            let n = want.min(data.len());
            h.hdr[h.hdr_len..h.hdr_len + n].copy_from_slice(data.get(..n).unwrap_or_default());
            h.hdr_len += n;
            if h.hdr_len == HEADER_LEN {
                h.hdr_len = 0;
                let fh = FrameHeader::parse(&h.hdr);
                self.start_frame(role, fh, out);
            }
            return n;
        }
        let left = usize::try_from(h.left).unwrap_or(usize::MAX);
        let n = left.min(data.len());
        let chunk = data.get(..n).unwrap_or_default();
        match h.mode {
            Mode::Buffer => {
                h.payload.extend_from_slice(chunk);
                h.left -= n as u32;
            }
            Mode::Skip => h.left -= n as u32,
            Mode::Data(ds) => {
                self.data_bytes(role, ds, chunk, out);
            }
        }
        if self.halves[role].left == 0 {
            self.end_frame(role, out);
        }
        n
    }

    fn start_frame(&mut self, role: usize, fh: FrameHeader, out: &mut Vec<Record>) {
        self.count_frame(fh.kind);
        let is_block = matches!(
            fh.kind,
            kind::HEADERS | kind::CONTINUATION | kind::PUSH_PROMISE
        );
        // A header block in progress must continue on the same stream.
        if let Some(b) = &self.halves[role].block {
            if fh.kind != kind::CONTINUATION || fh.stream != b.stream {
                let stream = b.stream;
                self.halves[role].block = None;
                self.stats.errors.add(ErrorKind::ContinuationExpected);
                self.block_lost(role, stream);
            }
        }
        let h = &mut self.halves[role];
        h.frame = Some(fh);
        h.left = fh.len;
        h.payload.clear();
        let max_frame = h.max_frame_size;
        if fh.len > max_frame {
            h.mode = Mode::Skip;
            self.stats.errors.add(ErrorKind::FrameTooLarge);
            if is_block {
                self.block_lost(role, fh.stream);
            }
        } else if fh.kind == kind::DATA {
            let padded = fh.has(flag::PADDED);
            let ds = DataState {
                stream: fh.stream,
                need_pad_len: padded,
                content_left: if padded { 0 } else { fh.len },
                broken: false,
            };
            h.mode = Mode::Data(ds);
            if fh.stream == 0 {
                h.mode = Mode::Skip;
                self.stats.errors.add(ErrorKind::InvalidStreamId);
            } else if padded && fh.len == 0 {
                h.mode = Mode::Skip;
                self.stats.errors.add(ErrorKind::InvalidPadding);
            } else if !self.streams.contains_key(&fh.stream) {
                self.stats.frames_untracked_stream += 1;
            }
        } else if usize::try_from(fh.len).unwrap_or(usize::MAX) > self.config.max_frame_payload {
            h.mode = Mode::Skip;
            self.stats.errors.add(ErrorKind::FrameOverCap);
            if is_block {
                self.block_lost(role, fh.stream);
            }
        } else {
            h.mode = Mode::Buffer;
        }
        if fh.len == 0 {
            self.end_frame(role, out);
        }
    }

    fn count_frame(&mut self, k: u8) {
        let f = &mut self.stats.frames;
        match k {
            kind::DATA => f.data += 1,
            kind::HEADERS => f.headers += 1,
            kind::PRIORITY => f.priority += 1,
            kind::RST_STREAM => f.rst_stream += 1,
            kind::SETTINGS => f.settings += 1,
            kind::PUSH_PROMISE => f.push_promise += 1,
            kind::PING => f.ping += 1,
            kind::GOAWAY => f.goaway += 1,
            kind::WINDOW_UPDATE => f.window_update += 1,
            kind::CONTINUATION => f.continuation += 1,
            _ => f.unknown += 1,
        }
    }

    /// DATA payload bytes (a piece of the frame).
    fn data_bytes(&mut self, role: usize, mut ds: DataState, chunk: &[u8], out: &mut Vec<Record>) {
        let h = &mut self.halves[role];
        h.left -= chunk.len() as u32;
        let mut rest = chunk;
        if ds.need_pad_len {
            if let Some((&pad, r)) = rest.split_first() {
                rest = r;
                ds.need_pad_len = false;
                // The pad length byte is counted in the frame length.
                let after = h.left + rest.len() as u32;
                match after.checked_sub(u32::from(pad)) {
                    Some(content) => ds.content_left = content,
                    None => {
                        ds.broken = true;
                        self.stats.errors.add(ErrorKind::InvalidPadding);
                    }
                }
            }
        }
        let n = usize::try_from(ds.content_left)
            .unwrap_or(usize::MAX)
            .min(rest.len());
        let content = rest.get(..n).unwrap_or_default();
        ds.content_left -= n as u32;
        if let Mode::Data(d) = &mut self.halves[role].mode {
            *d = ds;
        }
        if !ds.broken && !content.is_empty() {
            self.stream_data(role, ds.stream, content, out);
        }
    }

    /// Body bytes of a stream.
    fn stream_data(&mut self, half: usize, id: u32, data: &[u8], out: &mut Vec<Record>) {
        let role = self.sem(half);
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        let side = if role == CLIENT {
            &mut s.req
        } else {
            &mut s.resp
        };
        if side.ended {
            return;
        }
        side.data_len = side.data_len.saturating_add(data.len() as u64);
        let is_sse = s.sse.is_some();
        if role == SERVER && is_sse {
            let limit = self.config.max_sse_event_bytes.max(1);
            let piece = limit.min(SSE_FEED_PIECE);
            for part in data.chunks(piece) {
                let Some(sse) = self.streams.get_mut(&id).and_then(|s| s.sse.as_mut()) else {
                    return;
                };
                sse.parser.feed(part);
                self.sse_dirty.insert(id);
                if sse.parser.pending_bytes() >= limit {
                    // Hand out a big batch early so memory stays bounded.
                    self.flush_sse(id, out);
                }
            }
            return;
        }
        if is_sse {
            // The exchange already went out with the request as it was.
            return;
        }
        self.add_body(role, id, data);
    }

    /// Keeps wire body bytes under the per-body cap, the connection cap
    /// and the shared budget. `role`: the side (CLIENT: request body).
    fn add_body(&mut self, role: usize, id: u32, data: &[u8]) {
        let cap = self.config.max_body;
        let conn_room = self
            .config
            .max_connection_body
            .saturating_sub(self.body_bytes);
        let budget = self.config.body_budget.clone();
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        let body = if role == CLIENT {
            &mut s.req.body
        } else {
            &mut s.resp.body
        };
        body.wire_len = body.wire_len.saturating_add(data.len() as u64);
        if body.truncated {
            return;
        }
        let by_cap = cap.saturating_sub(body.data.len()).min(data.len());
        let mut room = by_cap.min(conn_room);
        if let Some(budget) = &budget {
            let free = BodyBudget::FLOOR.saturating_sub(body.data.len()).min(room);
            let granted = budget.take(room - free);
            body.taken += granted;
            room = free + granted;
        }
        body.data
            .extend_from_slice(data.get(..room).unwrap_or_default());
        self.body_bytes += room;
        if room < data.len() {
            // A cut body stays a prefix of the real one.
            body.truncated = true;
        }
    }

    fn end_frame(&mut self, role: usize, out: &mut Vec<Record>) {
        let h = &mut self.halves[role];
        let Some(fh) = h.frame.take() else {
            return;
        };
        let mode = h.mode;
        let payload = std::mem::take(&mut h.payload);
        match mode {
            Mode::Skip => {}
            Mode::Data(ds) => {
                if !ds.broken && fh.has(flag::END_STREAM) {
                    self.end_side(self.sem(role), fh.stream, out);
                }
            }
            Mode::Buffer => self.frame(role, fh, &payload, out),
        }
        let h = &mut self.halves[role];
        if payload.capacity() <= KEEP_BUFFER {
            h.payload = payload;
            h.payload.clear();
        }
    }

    /// A complete non-DATA frame.
    fn frame(&mut self, role: usize, fh: FrameHeader, payload: &[u8], out: &mut Vec<Record>) {
        match fh.kind {
            kind::HEADERS => {
                if fh.stream == 0 {
                    self.error(ErrorKind::InvalidStreamId);
                    self.block_lost(role, 0);
                    return;
                }
                let skip = if fh.has(flag::PRIORITY) { 5 } else { 0 };
                let Some(fragment) = unpad(payload, fh.has(flag::PADDED), skip) else {
                    self.error(ErrorKind::InvalidPadding);
                    self.block_lost(role, fh.stream);
                    return;
                };
                let block = PendingBlock {
                    stream: fh.stream,
                    kind: BlockKind::Headers {
                        end_stream: fh.has(flag::END_STREAM),
                    },
                    data: Vec::new(),
                    too_large: false,
                };
                self.block_fragment(role, block, fragment, fh.has(flag::END_HEADERS), out);
            }
            kind::PUSH_PROMISE => {
                if self.sem(role) == CLIENT || fh.stream == 0 {
                    self.error(ErrorKind::InvalidStreamId);
                    self.block_lost(role, fh.stream);
                    return;
                }
                let Some(content) = unpad(payload, fh.has(flag::PADDED), 0) else {
                    self.error(ErrorKind::InvalidPadding);
                    self.block_lost(role, fh.stream);
                    return;
                };
                let (Some(id), Some(fragment)) = (content.get(..4), content.get(4..)) else {
                    self.error(ErrorKind::InvalidFrameLength);
                    self.block_lost(role, fh.stream);
                    return;
                };
                let promised = u32::from_be_bytes([id[0], id[1], id[2], id[3]]) & 0x7fff_ffff;
                let block = PendingBlock {
                    stream: fh.stream,
                    kind: BlockKind::PushPromise { promised },
                    data: Vec::new(),
                    too_large: false,
                };
                self.block_fragment(role, block, fragment, fh.has(flag::END_HEADERS), out);
            }
            kind::CONTINUATION => {
                let Some(block) = self.halves[role].block.take() else {
                    self.error(ErrorKind::UnexpectedContinuation);
                    self.block_lost(role, fh.stream);
                    return;
                };
                self.block_fragment(role, block, payload, fh.has(flag::END_HEADERS), out);
            }
            kind::PRIORITY => {
                if fh.len != 5 {
                    self.error(ErrorKind::InvalidFrameLength);
                } else if fh.stream == 0 {
                    self.error(ErrorKind::InvalidStreamId);
                }
            }
            kind::RST_STREAM => {
                if fh.len != 4 {
                    self.error(ErrorKind::InvalidFrameLength);
                } else if fh.stream == 0 {
                    self.error(ErrorKind::InvalidStreamId);
                } else if self.streams.contains_key(&fh.stream) {
                    self.stats.resets += 1;
                    let mark = Flags {
                        incomplete: true,
                        ..Flags::default()
                    };
                    self.finish_stream(fh.stream, mark, out);
                }
            }
            kind::SETTINGS => {
                if fh.stream != 0 {
                    self.error(ErrorKind::InvalidStreamId);
                } else if fh.has(flag::ACK) {
                    if fh.len != 0 {
                        self.error(ErrorKind::InvalidFrameLength);
                    }
                } else if !fh.len.is_multiple_of(6) {
                    self.error(ErrorKind::InvalidFrameLength);
                } else {
                    self.apply_settings(role, payload);
                }
            }
            kind::PING => {
                if fh.len != 8 {
                    self.error(ErrorKind::InvalidFrameLength);
                } else if fh.stream != 0 {
                    self.error(ErrorKind::InvalidStreamId);
                }
            }
            kind::GOAWAY => {
                if fh.len < 8 {
                    self.error(ErrorKind::InvalidFrameLength);
                } else if fh.stream != 0 {
                    self.error(ErrorKind::InvalidStreamId);
                }
            }
            kind::WINDOW_UPDATE if fh.len != 4 => self.error(ErrorKind::InvalidFrameLength),
            // Unknown types are ignored (RFC 9113 §4.1, §5.5).
            _ => {}
        }
    }

    /// SETTINGS sent by `role` bind what the other side sends.
    fn apply_settings(&mut self, role: usize, payload: &[u8]) {
        let other = 1 - role;
        for p in payload.chunks_exact(6) {
            let id = u16::from_be_bytes([p[0], p[1]]);
            let v = u32::from_be_bytes([p[2], p[3], p[4], p[5]]);
            match id {
                setting::HEADER_TABLE_SIZE => {
                    let v = usize::try_from(v).unwrap_or(usize::MAX);
                    self.halves[other].hpack.set_allowed(v);
                }
                setting::MAX_FRAME_SIZE => {
                    if (DEFAULT_MAX_FRAME_SIZE..=MAX_MAX_FRAME_SIZE).contains(&v) {
                        self.halves[other].max_frame_size = v;
                    } else {
                        self.error(ErrorKind::InvalidSetting);
                    }
                }
                setting::ENABLE_PUSH if v > 1 => self.error(ErrorKind::InvalidSetting),
                setting::INITIAL_WINDOW_SIZE if v > 0x7fff_ffff => {
                    self.error(ErrorKind::InvalidSetting)
                }
                // MAX_CONCURRENT_STREAMS, MAX_HEADER_LIST_SIZE and unknown
                // settings do not change how the bytes are read.
                _ => {}
            }
        }
    }

    /// Adds a fragment to a header block; decodes it once complete.
    fn block_fragment(
        &mut self,
        role: usize,
        mut block: PendingBlock,
        fragment: &[u8],
        end_headers: bool,
        out: &mut Vec<Record>,
    ) {
        if !block.too_large {
            if block.data.len().saturating_add(fragment.len()) > self.config.max_header_block {
                block.too_large = true;
                block.data = Vec::new();
                self.error(ErrorKind::HeaderBlockTooLarge);
            } else {
                block.data.extend_from_slice(fragment);
            }
        }
        if !end_headers {
            self.halves[role].block = Some(block);
            return;
        }
        if block.too_large {
            self.block_lost(role, block.stream);
            return;
        }
        self.decode_block(role, block, out);
    }

    /// A header block of `role` on `stream` cannot be decoded: the
    /// direction's HPACK table is now partly unknown.
    fn block_lost(&mut self, role: usize, stream: u32) {
        self.stats.header_blocks_lost += 1;
        let h = &mut self.halves[role];
        if !h.hpack.is_lossy() {
            self.stats.hpack_resets += 1;
        }
        h.hpack.forget();
        if let Some(s) = self.streams.get_mut(&stream) {
            s.flags.malformed = true;
        }
    }

    fn decode_block(&mut self, role: usize, block: PendingBlock, out: &mut Vec<Record>) {
        let limits = ListLimits {
            max_list_size: self.config.max_header_list,
            max_fields: self.config.max_headers,
        };
        let mut decoded = Block::default();
        let mut flags = Flags::default();
        let result = self.halves[role]
            .hpack
            .decode(&block.data, limits, &mut decoded);
        if result.is_err() {
            self.error(ErrorKind::Hpack);
            self.stats.header_blocks_lost += 1;
            let h = &mut self.halves[role];
            if !h.hpack.is_lossy() {
                self.stats.hpack_resets += 1;
            }
            h.hpack.forget();
            flags.malformed = true;
        }
        if decoded.violations > 0 {
            self.error(ErrorKind::HpackTableSizeUpdate);
        }
        if decoded.dropped > 0 {
            self.error(ErrorKind::HeaderListTooLarge);
            self.stats.header_fields_dropped += decoded.dropped as u64;
            flags.truncated = true;
        }
        if decoded.unknown > 0 {
            self.stats.header_fields_unknown += decoded.unknown as u64;
            if self.midstream {
                flags.midstream = true;
            } else {
                flags.malformed = true;
            }
        }
        let unknown = decoded.unknown > 0 || result.is_err();
        let fields: Vec<(Vec<u8>, Vec<u8>)> = decoded
            .fields
            .into_iter()
            .filter_map(|f| Some((f.name?, f.value?)))
            .collect();
        if !self.roles_fixed {
            self.settle_roles(role, block.kind, &fields);
        }
        match block.kind {
            BlockKind::PushPromise { promised } => {
                self.push_promise(block.stream, promised, fields, unknown, flags, out)
            }
            BlockKind::Headers { end_stream } if self.sem(role) == CLIENT => {
                self.client_headers(block.stream, fields, unknown, end_stream, flags, out)
            }
            BlockKind::Headers { end_stream } => {
                self.server_headers(block.stream, fields, unknown, end_stream, flags, out)
            }
        }
    }

    /// Mid-connection, the first request or response head tells which side
    /// is the client; the transport's guess is reversed if it disagrees.
    fn settle_roles(&mut self, half: usize, kind: BlockKind, fields: &[(Vec<u8>, Vec<u8>)]) {
        let has = |name: &[u8]| fields.iter().any(|(n, _)| n == name);
        let sender_is_client = match kind {
            BlockKind::PushPromise { .. } => false,
            BlockKind::Headers { .. } => match (has(b":method"), has(b":status")) {
                (true, false) => true,
                (false, true) => false,
                _ => return,
            },
        };
        self.roles_fixed = true;
        if (self.sem(half) == CLIENT) != sender_is_client {
            self.swapped = !self.swapped;
            std::mem::swap(&mut self.flow.client, &mut self.flow.server);
            self.stats.direction_swaps += 1;
        }
    }

    /// The role (CLIENT or SERVER) of the side that sends the bytes of
    /// `half` (halves are indexed by transport direction).
    fn sem(&self, half: usize) -> usize {
        if self.swapped {
            1 - half
        } else {
            half
        }
    }

    /// The half the client sends.
    fn client_half(&self) -> usize {
        self.sem(CLIENT)
    }

    fn push_promise(
        &mut self,
        parent: u32,
        promised: u32,
        fields: Vec<(Vec<u8>, Vec<u8>)>,
        unknown: bool,
        flags: Flags,
        out: &mut Vec<Record>,
    ) {
        if promised == 0 || promised % 2 == 1 || self.streams.contains_key(&promised) {
            self.error(ErrorKind::InvalidStreamId);
            return;
        }
        if !self.streams.contains_key(&parent) {
            self.stats.frames_untracked_stream += 1;
        }
        let (request, errors) = request_from(fields, unknown);
        self.note_errors(&errors);
        self.stats.pushes += 1;
        self.stats.requests += 1;
        let now = self.now;
        let s = self.open_stream(Some(SERVER), promised, out);
        s.req_head = true;
        s.request = Some(request);
        s.request_ts = Some(now);
        s.req.ended = true;
        s.flags.merge(flags);
        s.flags.malformed |= !errors.is_empty();
    }

    fn client_headers(
        &mut self,
        id: u32,
        fields: Vec<(Vec<u8>, Vec<u8>)>,
        unknown: bool,
        end_stream: bool,
        flags: Flags,
        out: &mut Vec<Record>,
    ) {
        if let Some(s) = self.streams.get_mut(&id) {
            if !s.req_head && !s.req.ended {
                // The response came first (the capture reordered the
                // directions): this is its request.
                s.req_head = true;
                self.last_stream[CLIENT] = self.last_stream[CLIENT].max(id);
                self.first_client_stream.get_or_insert(id);
                let (request, errors) = request_from(fields, unknown);
                self.note_errors(&errors);
                self.stats.requests += 1;
                let now = self.now;
                let Some(s) = self.streams.get_mut(&id) else {
                    return;
                };
                s.flags.merge(flags);
                s.flags.malformed |= !errors.is_empty();
                if s.sse.is_some() {
                    // Its exchange already went out without it.
                    self.stats.frames_untracked_stream += 1;
                } else {
                    s.request = Some(request);
                    s.request_ts = Some(now);
                }
                if end_stream {
                    self.end_side(CLIENT, id, out);
                }
                return;
            }
            if s.req.ended {
                self.error(ErrorKind::FrameOnClosedStream);
                return;
            }
            // Trailers.
            let (trailers, bad) = trailers_from(fields);
            s.req.trailers = trailers;
            s.flags.merge(flags);
            s.flags.malformed |= bad || !end_stream;
            if bad {
                self.error(ErrorKind::InvalidPseudoHeader);
            }
            if !end_stream {
                self.error(ErrorKind::InvalidPseudoHeader);
            }
            self.end_side(CLIENT, id, out);
            return;
        }
        if id.is_multiple_of(2) {
            self.error(ErrorKind::InvalidStreamId);
            return;
        }
        if id <= self.last_stream[CLIENT] {
            self.stats.frames_untracked_stream += 1;
            return;
        }
        let (request, errors) = request_from(fields, unknown);
        self.note_errors(&errors);
        self.stats.requests += 1;
        self.first_client_stream.get_or_insert(id);
        let now = self.now;
        let s = self.open_stream(Some(CLIENT), id, out);
        s.req_head = true;
        s.request = Some(request);
        s.request_ts = Some(now);
        s.flags.merge(flags);
        s.flags.malformed |= !errors.is_empty();
        if end_stream {
            self.end_side(CLIENT, id, out);
        }
    }

    fn server_headers(
        &mut self,
        id: u32,
        fields: Vec<(Vec<u8>, Vec<u8>)>,
        unknown: bool,
        end_stream: bool,
        flags: Flags,
        out: &mut Vec<Record>,
    ) {
        let has_status = fields.iter().any(|(n, _)| n == b":status");
        if !self.streams.contains_key(&id) {
            // A response to a request not seen (yet): only for a head
            // (trailers of an unseen response say nothing useful) on a
            // stream the client could have opened.
            let client_blind = self.midstream
                || self.halves[self.client_half()].framing == Framing::Lost
                || self.halves[self.client_half()].hpack.is_lossy();
            // Mid-connection, streams below the first one seen opening
            // may have begun before the capture.
            let before_capture = self.midstream && self.first_client_stream.is_none_or(|f| id < f);
            let fresh = id % 2 == 1 && (id > self.last_stream[CLIENT] || before_capture);
            if !(fresh && (has_status || unknown)) {
                self.stats.frames_untracked_stream += 1;
                return;
            }
            let mut mark = flags;
            if self.midstream {
                mark.midstream = true;
            } else if client_blind {
                mark.gap |= self.halves[self.client_half()].framing == Framing::Lost;
                mark.malformed |= !mark.gap;
            }
            let s = self.open_stream(None, id, out);
            // Unless its request cannot be read, it may still come (a
            // capture can put a response before its request).
            s.req.ended = client_blind;
            s.flags.merge(mark);
        }
        let now = self.now;
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        if s.resp.ended {
            self.error(ErrorKind::FrameOnClosedStream);
            return;
        }
        if s.response.is_some() || s.sse.is_some() {
            let (trailers, bad) = trailers_from(fields);
            s.resp.trailers = trailers;
            s.flags.merge(flags);
            s.flags.malformed |= bad || !end_stream;
            if bad || !end_stream {
                self.error(ErrorKind::InvalidPseudoHeader);
            }
            self.end_side(SERVER, id, out);
            return;
        }
        let (response, errors) = response_from(fields, unknown);
        if (100..200).contains(&response.status) {
            // Interim (100 Continue, 103 Early Hints); the final head follows.
            self.stats.interim_responses += 1;
            if end_stream {
                self.stats.errors.add(ErrorKind::InvalidStatus);
                s.flags.malformed = true;
                self.end_side(SERVER, id, out);
            }
            return;
        }
        for e in &errors {
            self.stats.errors.add(*e);
        }
        self.stats.responses += 1;
        s.flags.merge(flags);
        s.flags.malformed |= !errors.is_empty();
        s.response_ts = Some(now);
        let sse = is_event_stream(s.request.as_ref(), &response);
        s.response = Some(response);
        if sse {
            self.start_sse(id);
        }
        if end_stream {
            self.end_side(SERVER, id, out);
        }
    }

    /// The response of `id` is a live event stream: its exchange is built
    /// now and handed out at the next flush.
    fn start_sse(&mut self, id: u32) {
        let request = self.take_request(id, false);
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        let mut flags = s.flags;
        flags.streaming = true;
        if !s.req.ended {
            flags.incomplete = true;
        }
        let mut response = s.response.take();
        if let Some(r) = response.as_mut() {
            r.body.encodings = content_encodings(&r.headers);
        }
        let parts = ExchangeParts {
            id: s.exchange_id,
            request,
            request_ts: s.request_ts,
            response,
            response_ts: s.response_ts,
            flags,
            position: s.position,
        };
        let ex = parts.build(&self.origin, &self.flow);
        if let Some(s) = self.streams.get_mut(&id) {
            self.sse_dirty.insert(id);
            s.sse = Some(Sse {
                parser: SseParser::new(self.config.max_sse_event_bytes),
                out: EventStreamOut::new(ex),
            });
        }
    }

    /// The request of stream `id` with its body as received so far.
    /// `complete`: the request side ended normally.
    fn take_request(&mut self, id: u32, complete: bool) -> Option<Request> {
        let s = self.streams.get_mut(&id)?;
        let raw = std::mem::take(&mut s.req.body);
        let Some(mut request) = s.request.take() else {
            self.release(&raw);
            return None;
        };
        let trailers = std::mem::take(&mut s.req.trailers);
        let data_len = s.req.data_len;
        let mut bad_length = false;
        if complete && !s.flags.gap && !raw.truncated {
            bad_length = content_length(&request.headers).is_some_and(|cl| cl != data_len);
        }
        if bad_length {
            s.flags.malformed = true;
            self.error(ErrorKind::ContentLengthMismatch);
        }
        if raw.wire_len > 0 || request.body == Body::default() {
            request.body = self.finish_body(&request.headers, raw);
        } else {
            // A body that came with the request (h2c upgrade).
            self.release(&raw);
        }
        if request.body.truncated {
            if let Some(s) = self.streams.get_mut(&id) {
                s.flags.truncated = true;
            }
        }
        request.trailers = trailers;
        Some(request)
    }

    /// Undoes content coding of a complete (or cut) body and returns its
    /// memory.
    fn release(&mut self, raw: &RawBody) {
        self.body_bytes = self.body_bytes.saturating_sub(raw.data.len());
        if let Some(budget) = &self.config.body_budget {
            budget.give_back(raw.taken);
        }
    }

    fn finish_body(&mut self, headers: &Headers, raw: RawBody) -> Body {
        self.release(&raw);
        let mut body = if self.config.decode_content {
            decode_body(headers, &raw.data, self.config.max_body)
        } else {
            Body {
                decoded_len: raw.data.len() as u64,
                encodings: content_encodings(headers),
                data: raw.data,
                ..Body::default()
            }
        };
        body.wire_len = raw.wire_len;
        if raw.truncated {
            body.truncated = true;
            body.decoded_len = body.decoded_len.max(raw.wire_len);
        }
        if body.truncated {
            self.stats.bodies_truncated += 1;
        }
        if body.decode_error.is_some() {
            self.stats.decode_errors += 1;
        }
        body
    }

    /// Opens a stream (evicting the oldest when full) and returns it.
    /// `opener`: the side whose HEADERS (or PUSH_PROMISE) opened it, `None`
    /// for a response whose request is not known.
    fn open_stream(
        &mut self,
        opener: Option<usize>,
        id: u32,
        out: &mut Vec<Record>,
    ) -> &mut Stream {
        if self.streams.len() >= self.config.max_streams.max(1) && !self.streams.contains_key(&id) {
            let oldest = self
                .streams
                .iter()
                .min_by_key(|(_, s)| s.order)
                .map(|(k, _)| *k);
            if let Some(old) = oldest {
                self.stats.streams_evicted += 1;
                let mark = Flags {
                    incomplete: true,
                    ..Flags::default()
                };
                self.finish_stream(old, mark, out);
            }
        }
        if let Some(o) = opener {
            self.last_stream[o] = self.last_stream[o].max(id);
        }
        self.stats.streams += 1;
        let order = self.next_order;
        self.next_order += 1;
        let exchange_id = self.ids.next_id();
        let position = self.position;
        self.streams.entry(id).or_insert_with(|| Stream {
            exchange_id,
            order,
            request: None,
            request_ts: None,
            response: None,
            response_ts: None,
            position,
            req_head: false,
            req: Side::default(),
            resp: Side::default(),
            flags: Flags::default(),
            sse: None,
        })
    }

    /// One side of stream `id` ended (END_STREAM).
    fn end_side(&mut self, role: usize, id: u32, out: &mut Vec<Record>) {
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        let side = if role == CLIENT {
            &mut s.req
        } else {
            &mut s.resp
        };
        side.ended = true;
        self.maybe_finish(id, out);
    }

    fn maybe_finish(&mut self, id: u32, out: &mut Vec<Record>) {
        let done = self
            .streams
            .get(&id)
            .is_some_and(|s| s.req.ended && s.resp.ended);
        if done {
            self.finish_stream(id, Flags::default(), out);
        }
    }

    /// Emits stream `id` as it stands (with `mark` when cut short) and
    /// forgets it.
    fn finish_stream(&mut self, id: u32, mark: Flags, out: &mut Vec<Record>) {
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        let cut = !(s.req.ended && s.resp.ended);
        if cut {
            s.flags.merge(mark);
        }
        if s.sse.is_some() {
            self.flush_sse(id, out);
            let Some(mut s) = self.streams.remove(&id) else {
                return;
            };
            if let Some(mut sse) = s.sse.take() {
                let mut flags = Flags::default();
                if cut {
                    flags.merge(mark);
                }
                if sse.parser.finish() {
                    flags.incomplete = true;
                }
                sse.out.finish(flags, self.flow.id, self.now, out);
            }
            return;
        }
        let req_complete = s.req.ended && !cut;
        let request = self.take_request(id, req_complete);
        let Some(mut s) = self.streams.remove(&id) else {
            return;
        };
        let mut response = s.response.take();
        if let Some(r) = response.as_mut() {
            let raw = std::mem::take(&mut s.resp.body);
            let complete = s.resp.ended && !cut && !s.flags.gap && !raw.truncated;
            let bodiless = r.status == 204
                || r.status == 304
                || request
                    .as_ref()
                    .is_some_and(|q| q.method.eq_ignore_ascii_case("HEAD"));
            if complete
                && !bodiless
                && content_length(&r.headers).is_some_and(|cl| cl != s.resp.data_len)
            {
                s.flags.malformed = true;
                self.error(ErrorKind::ContentLengthMismatch);
            }
            r.body = self.finish_body(&r.headers, raw);
            r.trailers = std::mem::take(&mut s.resp.trailers);
            if r.body.truncated {
                s.flags.truncated = true;
            }
            if r.body.decode_error.is_some() {
                s.flags.malformed = true;
            }
            if media_type(&r.headers).as_deref() == Some("text/event-stream") {
                // An event stream read whole (content-coded): its events.
                let mut p = SseParser::new(self.config.max_sse_event_bytes);
                for piece in r.body.data.chunks(SSE_FEED_PIECE) {
                    p.feed(piece);
                    r.sse_events.extend(p.take_events());
                }
                p.finish();
                if p.truncated_events() > 0 {
                    self.stats.sse_events_truncated += p.truncated_events();
                    s.flags.truncated = true;
                }
                self.stats.sse_events += r.sse_events.len() as u64;
            }
        }
        let flags = s.flags;
        let parts = ExchangeParts {
            id: s.exchange_id,
            request,
            request_ts: s.request_ts,
            response,
            response_ts: s.response_ts,
            flags,
            position: s.position,
        };
        let ex = parts.build(&self.origin, &self.flow);
        self.stats.exchanges += 1;
        out.push(Record::Exchange(ex));
    }

    fn flush_all_sse(&mut self, out: &mut Vec<Record>) {
        while let Some(id) = self.sse_dirty.pop_first() {
            self.flush_sse(id, out);
        }
    }

    /// Hands out the stream's exchange or its new events.
    fn flush_sse(&mut self, id: u32, out: &mut Vec<Record>) {
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        let Some(sse) = s.sse.as_mut() else {
            return;
        };
        let done = sse
            .out
            .flush(Some(&mut sse.parser), self.flow.id, self.now, out);
        self.stats.sse_events_truncated += done.truncated_events;
        self.stats.sse_events += done.events;
        self.stats.exchanges += u64::from(done.exchange);
    }

    fn note_errors(&mut self, errors: &[ErrorKind]) {
        for e in errors {
            self.error(*e);
        }
    }

    fn error(&mut self, kind: ErrorKind) {
        self.stats.errors.add(kind);
    }
}

fn role(dir: Direction) -> usize {
    match dir {
        Direction::ToServer => CLIENT,
        Direction::ToClient => SERVER,
    }
}

enum Chain {
    Accept,
    Reject,
    NeedMore,
}

/// Whether a chain of well-formed frame headers starts at `o`.
fn chain_at(buf: &[u8], o: usize, from_client: bool, at_end: bool) -> Chain {
    let mut p = o;
    let mut n = 0;
    loop {
        if p == buf.len() && at_end && n > 0 {
            return Chain::Accept;
        }
        let Some(hdr) = buf
            .get(p..p.saturating_add(HEADER_LEN))
            .and_then(|s| <&[u8; HEADER_LEN]>::try_from(s).ok())
        else {
            return if at_end {
                Chain::Reject
            } else {
                Chain::NeedMore
            };
        };
        let fh = FrameHeader::parse(hdr);
        if !fh.plausible(from_client, DEFAULT_MAX_FRAME_SIZE) {
            return Chain::Reject;
        }
        n += 1;
        if n >= SYNC_FRAMES {
            return Chain::Accept;
        }
        p = p + HEADER_LEN + fh.len as usize;
        if p > buf.len() && at_end {
            return Chain::Reject;
        }
    }
}

/// `buf` starts with a SETTINGS frame (not an ACK), as every connection
/// does in both directions.
fn opens_connection(buf: &[u8], from_client: bool) -> bool {
    buf.get(..HEADER_LEN)
        .and_then(|s| <&[u8; HEADER_LEN]>::try_from(s).ok())
        .map(FrameHeader::parse)
        .is_some_and(|fh| {
            fh.kind == kind::SETTINGS
                && !fh.has(flag::ACK)
                && fh.plausible(from_client, DEFAULT_MAX_FRAME_SIZE)
        })
}

/// Lower-cased media type of `content-type`, without parameters.
fn media_type(headers: &Headers) -> Option<String> {
    let ct = headers.get_str("content-type")?;
    let mt = ct.split(';').next().unwrap_or_default().trim();
    Some(mt.to_ascii_lowercase())
}

/// Content-Encoding values, in the order applied (identity dropped).
fn content_encodings(headers: &Headers) -> Vec<String> {
    headers
        .iter_named("content-encoding")
        .flat_map(|v| {
            String::from_utf8_lossy(v)
                .split(',')
                .map(|s| s.trim().to_ascii_lowercase())
                .collect::<Vec<_>>()
        })
        .filter(|s| !s.is_empty() && s != "identity")
        .collect()
}

/// Bytes held by an exchange's heads and bodies.
fn exchange_size(ex: &Exchange) -> usize {
    ex.request.as_ref().map_or(0, |r| {
        headers_size(&r.headers) + headers_size(&r.trailers) + r.body.data.len()
    }) + ex
        .response
        .as_ref()
        .map_or(0, |r| headers_size(&r.headers) + r.body.data.len())
}

fn headers_size(headers: &Headers) -> usize {
    headers.iter().map(|h| h.name.len() + h.value.len()).sum()
}

fn content_length(headers: &Headers) -> Option<u64> {
    let v = headers.get_str("content-length")?;
    v.parse().ok()
}

/// A response to stream live as events: `text/event-stream`, a body
/// allowed, and no content coding (a coded stream is read whole).
fn is_event_stream(request: Option<&Request>, response: &Response) -> bool {
    let head = request.is_some_and(|r| r.method.eq_ignore_ascii_case("HEAD"));
    !head
        && response.status != 204
        && response.status != 304
        && media_type(&response.headers).as_deref() == Some("text/event-stream")
        && content_encodings(&response.headers).is_empty()
}

/// Header fields that HTTP/2 forbids (RFC 9113 §8.2.2).
fn connection_specific(name: &str) -> bool {
    matches!(
        name,
        "connection" | "proxy-connection" | "keep-alive" | "transfer-encoding" | "upgrade"
    )
}

/// Splits a header list into pseudo-headers and regular fields, noting
/// errors. `unknown`: some fields could not be decoded (missing
/// pseudo-headers are then not errors).
fn split_fields(
    fields: Vec<(Vec<u8>, Vec<u8>)>,
    errors: &mut Vec<ErrorKind>,
) -> (Vec<(String, Vec<u8>)>, Headers) {
    let mut pseudo = Vec::new();
    let mut headers = Headers::default();
    let mut regular_seen = false;
    for (name, value) in fields {
        let name = String::from_utf8_lossy(&name).into_owned();
        if name.starts_with(':') {
            if regular_seen {
                errors.push(ErrorKind::InvalidPseudoHeader);
            }
            pseudo.push((name, value));
            continue;
        }
        regular_seen = true;
        if name.bytes().any(|b| b.is_ascii_uppercase()) || connection_specific(&name) {
            errors.push(ErrorKind::InvalidHeaderName);
        }
        headers.push(name, value);
    }
    (pseudo, headers)
}

fn request_from(fields: Vec<(Vec<u8>, Vec<u8>)>, unknown: bool) -> (Request, Vec<ErrorKind>) {
    let mut errors = Vec::new();
    let (pseudo, regular) = split_fields(fields, &mut errors);
    let mut method = None;
    let mut path = None;
    let mut authority = None;
    let mut kept = Headers::default();
    for (name, value) in pseudo {
        let slot = match name.as_str() {
            ":method" => &mut method,
            ":path" => &mut path,
            ":authority" => &mut authority,
            ":scheme" | ":protocol" => {
                if kept.contains(&name) {
                    errors.push(ErrorKind::InvalidPseudoHeader);
                }
                kept.push(name, value);
                continue;
            }
            _ => {
                errors.push(ErrorKind::InvalidPseudoHeader);
                continue;
            }
        };
        if slot.is_some() {
            errors.push(ErrorKind::InvalidPseudoHeader);
        } else {
            *slot = Some(String::from_utf8_lossy(&value).into_owned());
        }
    }
    let method_str = method.unwrap_or_default();
    let is_connect = method_str.eq_ignore_ascii_case("CONNECT");
    if !unknown && (method_str.is_empty() || (path.is_none() && !is_connect)) {
        errors.push(ErrorKind::InvalidPseudoHeader);
    }
    let mut headers = Headers::default();
    if let Some(a) = &authority {
        if !regular.contains("host") {
            headers.push("Host", a.as_bytes().to_vec());
        } else {
            headers.push(":authority", a.as_bytes().to_vec());
        }
    }
    headers.0.extend(kept.0);
    headers.0.extend(regular.0);
    let target = match path {
        Some(p) => p,
        None if is_connect => authority.unwrap_or_default(),
        None => String::new(),
    };
    let request = Request {
        method: method_str,
        target,
        version: HttpVersion::Http2,
        headers,
        body: Body::default(),
        trailers: Headers::default(),
    };
    (request, errors)
}

fn response_from(fields: Vec<(Vec<u8>, Vec<u8>)>, unknown: bool) -> (Response, Vec<ErrorKind>) {
    let mut errors = Vec::new();
    let (pseudo, headers) = split_fields(fields, &mut errors);
    let mut status = None;
    for (name, value) in pseudo {
        if name == ":status" && status.is_none() {
            let parsed = std::str::from_utf8(&value)
                .ok()
                .filter(|s| s.len() == 3 && s.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|s| s.parse::<u16>().ok())
                .filter(|s| *s >= 100);
            if parsed.is_none() {
                errors.push(ErrorKind::InvalidStatus);
            }
            status = Some(parsed.unwrap_or(0));
        } else {
            errors.push(ErrorKind::InvalidPseudoHeader);
        }
    }
    if status.is_none() && !unknown {
        errors.push(ErrorKind::InvalidStatus);
    }
    let response = Response {
        version: HttpVersion::Http2,
        status: status.unwrap_or(0),
        reason: String::new(),
        headers,
        body: Body::default(),
        trailers: Headers::default(),
        sse_events: Vec::new(),
    };
    (response, errors)
}

/// Trailer fields; true when a pseudo-header was among them.
fn trailers_from(fields: Vec<(Vec<u8>, Vec<u8>)>) -> (Headers, bool) {
    let mut errors = Vec::new();
    let (pseudo, headers) = split_fields(fields, &mut errors);
    (headers, !pseudo.is_empty() || !errors.is_empty())
}

/// Decodes unpadded base64url (the `HTTP2-Settings` header, RFC 7540
/// §3.2.1); tolerates padding. `None` on any other byte.
fn base64url_decode(input: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(input.len() * 3 / 4 + 1);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for &c in input.iter().filter(|&&c| c != b'=') {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            b' ' | b'\t' => continue,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_settings() {
        // SETTINGS_MAX_CONCURRENT_STREAMS 100, SETTINGS_INITIAL_WINDOW_SIZE 65535
        // as curl sends them.
        assert_eq!(
            base64url_decode(b"AAMAAABkAAQAAP__").unwrap(),
            vec![0, 3, 0, 0, 0, 0x64, 0, 4, 0, 0, 0xff, 0xff]
        );
        assert_eq!(base64url_decode(b"AA!"), None);
    }

    #[test]
    fn request_pseudo_headers_map_to_fields() {
        let f = |n: &str, v: &str| (n.as_bytes().to_vec(), v.as_bytes().to_vec());
        let (r, e) = request_from(
            vec![
                f(":method", "POST"),
                f(":scheme", "https"),
                f(":authority", "mcp.example:443"),
                f(":path", "/mcp"),
                f("content-type", "application/json"),
            ],
            false,
        );
        assert!(e.is_empty());
        assert_eq!(r.method, "POST");
        assert_eq!(r.target, "/mcp");
        assert_eq!(r.host(), Some("mcp.example:443"));
        assert_eq!(r.headers.get_str(":scheme"), Some("https"));
        assert_eq!(r.headers.0[0].name, "Host");
        let (r, e) = request_from(
            vec![f(":method", "CONNECT"), f(":authority", "h.example:443")],
            false,
        );
        assert!(e.is_empty());
        assert_eq!(r.target, "h.example:443");
        let (_, e) = request_from(vec![f("x", "1"), f(":method", "GET")], false);
        assert!(e.contains(&ErrorKind::InvalidPseudoHeader));
        let (_, e) = request_from(
            vec![f(":method", "GET"), f(":path", "/"), f("Upper", "1")],
            false,
        );
        assert_eq!(e, vec![ErrorKind::InvalidHeaderName]);
        let (_, e) = request_from(vec![f(":method", "GET")], true);
        assert!(
            e.is_empty(),
            "missing :path is expected when fields are unknown"
        );
    }

    #[test]
    fn status_must_be_three_digits() {
        let f = |v: &str| vec![(b":status".to_vec(), v.as_bytes().to_vec())];
        assert_eq!(response_from(f("204"), false).0.status, 204);
        assert_eq!(
            response_from(f("20"), false).1,
            vec![ErrorKind::InvalidStatus]
        );
        assert_eq!(response_from(f("099"), false).0.status, 0);
        assert_eq!(
            response_from(vec![], false).1,
            vec![ErrorKind::InvalidStatus]
        );
        assert!(response_from(vec![], true).1.is_empty());
    }
}

//! One direction of a connection: sequence tracking, out-of-order buffer,
//! overlap policy and gap skipping.
//!
//! Positions are kept as 64-bit stream offsets (`delivered` is the offset of
//! the next byte to deliver, `next_seq` its 32-bit sequence number), so
//! sequence wraparound only matters when a 32-bit number is converted, which
//! [`Half::offset_of`] does with serial arithmetic (RFC 1982 style signed
//! distance).

use std::collections::BTreeMap;

use shadowmcp_exchange::Timestamp;

use crate::types::{ConnId, Direction, ReassemblyStats, StreamEvent, StreamSink};

/// Bookkeeping charged per buffered piece on top of its bytes (map node,
/// `Vec` header, allocator slack), so floods of tiny segments are bounded by
/// the same caps as floods of bytes.
pub const PIECE_OVERHEAD: usize = 64;

/// Data further ahead than this from the next expected byte is not
/// plausible TCP (the largest scaled window is 2^30).
const MAX_AHEAD: i64 = 1 << 30;
/// Data further behind than this is not a plausible retransmission.
const MAX_BEHIND: i64 = 1 << 30;
/// A RST is believed when its sequence number is within this distance of
/// the next expected byte of its sender (loose on purpose: a tap cannot see
/// the receiver's window).
const RST_WINDOW: i64 = 1 << 24;
/// After this many consecutive out-of-window data segments the direction is
/// resynchronised on the new sequence numbers (after a long capture outage
/// the old position would otherwise stall the stream forever).
const RESYNC_STRIKES: u8 = 8;

/// Where events go: connection, direction, sink and counters.
pub(crate) struct Out<'a, S: ?Sized> {
    pub conn: ConnId,
    pub dir: Direction,
    pub sink: &'a mut S,
    pub stats: &'a mut ReassemblyStats,
}

impl<S: StreamSink + ?Sized> Out<'_, S> {
    fn data(&mut self, ts: Timestamp, data: &[u8]) {
        if !data.is_empty() {
            self.sink.event(StreamEvent::Data {
                conn: self.conn,
                dir: self.dir,
                ts,
                data,
            });
        }
    }

    fn gap(&mut self, len: u64) {
        if len > 0 {
            self.stats.gaps += 1;
            self.stats.gap_bytes = self.stats.gap_bytes.saturating_add(len);
            self.sink.event(StreamEvent::Gap {
                conn: self.conn,
                dir: self.dir,
                len,
            });
        }
    }
}

enum Content {
    Bytes(Vec<u8>),
    /// Sequence space known to be lost (snaplen): becomes a gap.
    Missing(u64),
}

struct Piece {
    /// Capture time of the segment that brought the piece's first byte.
    ts: Timestamp,
    content: Content,
}

impl Piece {
    fn len(&self) -> u64 {
        match &self.content {
            Content::Bytes(v) => v.len() as u64,
            Content::Missing(n) => *n,
        }
    }

    fn cost(&self) -> usize {
        match &self.content {
            Content::Bytes(v) => v.len().saturating_add(PIECE_OVERHEAD),
            Content::Missing(_) => PIECE_OVERHEAD,
        }
    }
}

/// The bytes of one segment, positioned at stream offset `start`: captured
/// `payload` followed by `missing` lost bytes.
struct SegBytes<'p> {
    start: u64,
    payload: &'p [u8],
    missing: u64,
}

impl<'p> SegBytes<'p> {
    fn payload_end(&self) -> u64 {
        self.start + self.payload.len() as u64
    }

    fn end(&self) -> u64 {
        self.payload_end() + self.missing
    }

    /// Captured bytes of `[a, b)` (clipped to the payload part).
    fn bytes(&self, a: u64, b: u64) -> &'p [u8] {
        let b = b.min(self.payload_end());
        if a >= b {
            return &[];
        }
        let from = (a - self.start) as usize;
        let to = (b - self.start) as usize;
        self.payload.get(from..to).unwrap_or(&[])
    }
}

#[derive(Default)]
pub(crate) struct Half {
    /// `next_seq`/`delivered` are meaningful.
    pub initialized: bool,
    /// A SYN from this side was seen; `isn` holds its sequence number.
    pub syn_seen: bool,
    pub isn: u32,
    fin_seen: bool,
    pub fin_emitted: bool,
    strikes: u8,
    /// Sequence number of the byte at offset `delivered`.
    next_seq: u32,
    /// Stream offset of the next byte to deliver (bytes delivered plus
    /// bytes reported as gaps).
    delivered: u64,
    /// Offset of the FIN (valid when `fin_seen`): the stream ends there.
    fin_off: u64,
    /// Cost of `pieces` (bytes plus [`PIECE_OVERHEAD`] each).
    pub buffered: usize,
    /// Out-of-order pieces keyed by start offset; never overlapping, all
    /// starting after `delivered`, none past the FIN.
    pieces: BTreeMap<u64, Piece>,
}

impl Half {
    pub fn init(&mut self, next_seq: u32) {
        self.initialized = true;
        self.next_seq = next_seq;
    }

    /// A SYN from this side: the stream starts after it.
    pub fn syn(&mut self, seq: u32) {
        if !self.initialized {
            self.init(seq.wrapping_add(1));
            self.syn_seen = true;
            self.isn = seq;
        }
    }

    pub fn fin_seen(&self) -> bool {
        self.fin_seen
    }

    /// Stream offset of sequence number `seq` (negative: before the first
    /// byte tracked), if it is within a plausible distance of the next
    /// expected byte.
    fn offset_of(&self, seq: u32) -> Option<i64> {
        let rel = i64::from(seq.wrapping_sub(self.next_seq) as i32);
        if !(-MAX_BEHIND..MAX_AHEAD).contains(&rel) {
            return None;
        }
        Some((self.delivered as i64).saturating_add(rel))
    }

    /// Whether `seq` is within a plausible distance of this stream.
    pub fn near(&self, seq: u32) -> bool {
        self.offset_of(seq).is_some()
    }

    /// Whether a RST from this side with sequence number `seq` is
    /// believable.
    pub fn rst_acceptable(&self, seq: u32) -> bool {
        if !self.initialized {
            return true;
        }
        let rel = i64::from(seq.wrapping_sub(self.next_seq) as i32);
        (-RST_WINDOW..=RST_WINDOW).contains(&rel)
    }

    fn advance(&mut self, n: u64) {
        self.delivered = self.delivered.saturating_add(n);
        self.next_seq = self.next_seq.wrapping_add(n as u32);
    }

    fn gap<S: StreamSink + ?Sized>(&mut self, len: u64, out: &mut Out<'_, S>) {
        out.gap(len);
        self.advance(len);
    }

    fn release<S: ?Sized>(&mut self, cost: usize, out: &mut Out<'_, S>) {
        self.buffered = self.buffered.saturating_sub(cost);
        out.stats.buffered_bytes = out.stats.buffered_bytes.saturating_sub(cost as u64);
    }

    fn charge<S: ?Sized>(&mut self, cost: usize, out: &mut Out<'_, S>) {
        self.buffered = self.buffered.saturating_add(cost);
        out.stats.buffered_bytes = out.stats.buffered_bytes.saturating_add(cost as u64);
    }

    /// Payload (and snaplen-missing bytes) of a segment whose data starts at
    /// sequence number `seq`. The direction must be initialized.
    pub fn data<S: StreamSink + ?Sized>(
        &mut self,
        seq: u32,
        payload: &[u8],
        missing: u32,
        ts: Timestamp,
        out: &mut Out<'_, S>,
    ) {
        let Some(start) = self.offset_of(seq) else {
            self.out_of_window(seq, payload, missing, ts, out);
            return;
        };
        self.strikes = 0;
        let delivered = self.delivered as i64;
        let total = payload.len() as u64 + u64::from(missing);
        if start.saturating_add(total as i64) <= delivered {
            out.stats.retransmissions += 1;
            return;
        }
        let mut seg = SegBytes {
            start: self.delivered,
            payload,
            missing: u64::from(missing),
        };
        // Bytes already delivered: first data wins, the old copy is gone, so
        // they are only counted as an overlap.
        let overlapped = start < delivered;
        if overlapped {
            let cut = (delivered - start) as u64;
            if cut <= seg.payload.len() as u64 {
                seg.payload = seg.payload.get(cut as usize..).unwrap_or(&[]);
            } else {
                seg.missing = seg.missing.saturating_sub(cut - seg.payload.len() as u64);
                seg.payload = &[];
            }
        } else {
            seg.start = start as u64;
        }
        if self.fin_seen && seg.end() > self.fin_off {
            // Bytes after the FIN cannot be part of the stream.
            out.stats.out_of_window += 1;
            if seg.start >= self.fin_off {
                return;
            }
            let keep = self.fin_off - seg.start;
            if keep <= seg.payload.len() as u64 {
                seg.payload = seg.payload.get(..keep as usize).unwrap_or(&[]);
                seg.missing = 0;
            } else {
                seg.missing = keep - seg.payload.len() as u64;
            }
        }
        if self.pieces.is_empty() && seg.start == self.delivered {
            // Hot path: in order, nothing buffered; deliver the borrowed
            // payload directly.
            if overlapped {
                out.stats.overlaps += 1;
            }
            out.data(ts, seg.payload);
            self.advance(seg.payload.len() as u64);
            self.gap(seg.missing, out);
            self.check_fin(out);
            return;
        }
        self.merge(seg, ts, overlapped, out);
    }

    /// Slow path: the segment overlaps buffered pieces or lies beyond a
    /// hole. Policy: first data wins; only the segment's new bytes are kept.
    fn merge<S: StreamSink + ?Sized>(
        &mut self,
        seg: SegBytes<'_>,
        ts: Timestamp,
        mut overlapped: bool,
        out: &mut Out<'_, S>,
    ) {
        let (start, end) = (seg.start, seg.end());
        // Pass 1: compare with what is buffered, find the new regions.
        let mut conflict = false;
        let mut regions: Vec<(u64, u64)> = Vec::new();
        let mut cursor = start;
        let before = self
            .pieces
            .range(..=start)
            .next_back()
            .filter(|(ps, p)| **ps + p.len() > start);
        let inside = self.pieces.range(start.saturating_add(1)..end);
        for (&ps, piece) in before.into_iter().chain(inside) {
            let pe = ps + piece.len();
            let (a, b) = (ps.max(start), pe.min(end));
            if a > cursor {
                regions.push((cursor, a));
            }
            cursor = cursor.max(b);
            overlapped = true;
            if let Content::Bytes(old) = &piece.content {
                let new = seg.bytes(a, b);
                let from = (a - ps) as usize;
                let old = old.get(from..from + new.len()).unwrap_or(&[]);
                conflict |= old != new;
            }
        }
        if cursor < end {
            regions.push((cursor, end));
        }
        if conflict {
            out.stats.overlap_conflicts += 1;
        }
        if regions.is_empty() {
            out.stats.retransmissions += 1;
            return;
        }
        if overlapped {
            out.stats.overlaps += 1;
        }
        if start > self.delivered {
            out.stats.out_of_order += 1;
        }
        // Pass 2: deliver regions that are now in order (borrowed, after
        // draining the pieces before them), buffer the rest.
        for (a, b) in regions {
            if a == self.delivered {
                let bytes = seg.bytes(a, b);
                out.data(ts, bytes);
                self.advance(bytes.len() as u64);
                let lost = (b - a) - bytes.len() as u64;
                self.gap(lost, out);
                self.drain(out);
            } else {
                let mid = b.min(seg.payload_end()).max(a);
                if mid > a {
                    self.insert_bytes(a, seg.bytes(a, mid), ts, out);
                }
                if b > mid {
                    self.insert_piece(mid, ts, Content::Missing(b - mid), out);
                }
            }
        }
        self.check_fin(out);
    }

    fn insert_bytes<S: ?Sized>(
        &mut self,
        at: u64,
        bytes: &[u8],
        ts: Timestamp,
        out: &mut Out<'_, S>,
    ) {
        // Coalesce with a piece ending exactly here: in-order arrivals after a
        // hole then cost one piece, not one per segment.
        if let Some((&ps, prev)) = self.pieces.range_mut(..at).next_back() {
            if let Content::Bytes(v) = &mut prev.content {
                if ps + v.len() as u64 == at {
                    v.extend_from_slice(bytes);
                    self.charge(bytes.len(), out);
                    return;
                }
            }
        }
        self.insert_piece(at, ts, Content::Bytes(bytes.to_vec()), out);
    }

    fn insert_piece<S: ?Sized>(
        &mut self,
        at: u64,
        ts: Timestamp,
        content: Content,
        out: &mut Out<'_, S>,
    ) {
        let piece = Piece { ts, content };
        self.charge(piece.cost(), out);
        self.pieces.insert(at, piece);
    }

    /// Delivers buffered pieces that are now in order.
    fn drain<S: StreamSink + ?Sized>(&mut self, out: &mut Out<'_, S>) {
        while let Some(entry) = self.pieces.first_entry() {
            let ps = *entry.key();
            if ps > self.delivered {
                break;
            }
            let piece = entry.remove();
            self.release(piece.cost(), out);
            // Pieces never start before `delivered`; stay correct anyway.
            let skip = self.delivered - ps;
            match piece.content {
                Content::Bytes(v) => {
                    let rest = v.get(skip as usize..).unwrap_or(&[]);
                    out.data(piece.ts, rest);
                    self.advance(rest.len() as u64);
                }
                Content::Missing(n) => self.gap(n.saturating_sub(skip), out),
            }
        }
    }

    fn check_fin<S: StreamSink + ?Sized>(&mut self, out: &mut Out<'_, S>) {
        if self.fin_seen && !self.fin_emitted && self.delivered >= self.fin_off {
            self.fin_emitted = true;
            out.sink.event(StreamEvent::Fin {
                conn: out.conn,
                dir: out.dir,
            });
        }
    }

    /// End of the first hole: the first buffered piece, else the FIN.
    fn hole_end(&self) -> Option<u64> {
        match self.pieces.first_key_value() {
            Some((&k, _)) => Some(k),
            None if self.fin_seen && !self.fin_emitted => Some(self.fin_off),
            None => None,
        }
    }

    /// Reports the first hole as a gap and delivers what follows it.
    /// Returns false when there is no hole.
    pub fn skip_hole<S: StreamSink + ?Sized>(&mut self, out: &mut Out<'_, S>) -> bool {
        let Some(end) = self.hole_end() else {
            return false;
        };
        if end > self.delivered {
            self.gap(end - self.delivered, out);
        }
        self.drain(out);
        self.check_fin(out);
        true
    }

    /// Skips every hole: all buffered data is delivered (used at close).
    pub fn flush<S: StreamSink + ?Sized>(&mut self, out: &mut Out<'_, S>) {
        while self.skip_hole(out) {}
    }

    /// Skips holes until at most `cap` is buffered.
    pub fn enforce_cap<S: StreamSink + ?Sized>(&mut self, cap: usize, out: &mut Out<'_, S>) {
        while self.buffered > cap && self.skip_hole(out) {}
    }

    /// The receiver acknowledged up to `ack`: holes it covers entirely were
    /// lost by the capture, not the network (the receiver has them).
    pub fn acked<S: StreamSink + ?Sized>(&mut self, ack: u32, out: &mut Out<'_, S>) {
        if !self.initialized {
            return;
        }
        let rel = i64::from(ack.wrapping_sub(self.next_seq) as i32);
        if rel <= 0 || rel >= MAX_AHEAD {
            return;
        }
        let ack_off = self.delivered.saturating_add(rel as u64);
        while let Some(end) = self.hole_end() {
            if end > ack_off || !self.skip_hole(out) {
                break;
            }
        }
    }

    /// A FIN from this side at sequence number `seq` (the FIN occupies it).
    pub fn fin<S: StreamSink + ?Sized>(&mut self, seq: u32, out: &mut Out<'_, S>) {
        if self.fin_seen {
            // First FIN wins; retransmissions carry the same number.
            return;
        }
        let off = match self.offset_of(seq) {
            Some(off) if off >= self.delivered as i64 => off as u64,
            _ => {
                out.stats.out_of_window += 1;
                return;
            }
        };
        self.fin_seen = true;
        self.fin_off = off;
        // Buffered bytes past the FIN cannot be part of the stream.
        let beyond = self.pieces.split_off(&off);
        if !beyond.is_empty() {
            out.stats.out_of_window += 1;
        }
        for piece in beyond.into_values() {
            self.release(piece.cost(), out);
        }
        if let Some((&ps, last)) = self.pieces.last_key_value() {
            let excess = (ps + last.len()).saturating_sub(off);
            if excess > 0 {
                if let Some(mut last) = self.pieces.remove(&ps) {
                    let old_cost = last.cost();
                    let keep = off - ps;
                    match &mut last.content {
                        Content::Bytes(v) => v.truncate(keep as usize),
                        Content::Missing(n) => *n = keep,
                    }
                    self.release(old_cost, out);
                    self.charge(last.cost(), out);
                    self.pieces.insert(ps, last);
                }
            }
        }
        self.check_fin(out);
    }

    fn out_of_window<S: StreamSink + ?Sized>(
        &mut self,
        seq: u32,
        payload: &[u8],
        missing: u32,
        ts: Timestamp,
        out: &mut Out<'_, S>,
    ) {
        out.stats.out_of_window += 1;
        if self.fin_seen {
            return;
        }
        self.strikes = self.strikes.saturating_add(1);
        if self.strikes < RESYNC_STRIKES {
            return;
        }
        // The sender is consistently somewhere else: the capture missed a
        // stretch longer than any window. Deliver what we have, report the
        // jump (its true length is only known modulo 2^32) and follow.
        out.stats.resyncs += 1;
        self.flush(out);
        let jump = u64::from(seq.wrapping_sub(self.next_seq));
        self.gap(jump, out);
        self.strikes = 0;
        self.data(seq, payload, missing, ts, out);
    }
}

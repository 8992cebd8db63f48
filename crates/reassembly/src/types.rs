//! Input segments, output events, configuration and counters.

use std::net::SocketAddr;
use std::time::Duration;

use shadowmcp_exchange::{Flow, Timestamp};

/// Connection id: the [`Flow::id`] of the connection (52-bit, stable for the
/// same capture).
pub type ConnId = u64;

/// TCP header flags the reassembler looks at.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TcpFlags {
    pub syn: bool,
    pub ack: bool,
    pub fin: bool,
    pub rst: bool,
    /// Carried for completeness; reassembly does not use it (delivery is
    /// always immediate when data is in order).
    pub psh: bool,
}

impl TcpFlags {
    /// From the TCP header's flags byte (FIN 0x01, SYN 0x02, RST 0x04,
    /// PSH 0x08, ACK 0x10; other bits ignored).
    ///
    /// ```
    /// use shadowmcp_reassembly::TcpFlags;
    /// let f = TcpFlags::from_bits(0x12);
    /// assert!(f.syn && f.ack && !f.fin);
    /// ```
    pub const fn from_bits(bits: u8) -> TcpFlags {
        TcpFlags {
            fin: bits & 0x01 != 0,
            syn: bits & 0x02 != 0,
            rst: bits & 0x04 != 0,
            psh: bits & 0x08 != 0,
            ack: bits & 0x10 != 0,
        }
    }
}

/// One TCP segment as captured.
#[derive(Clone, Copy, Debug)]
pub struct Segment<'a> {
    /// Capture time.
    pub ts: Timestamp,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub seq: u32,
    /// Acknowledgment number; only meaningful when `flags.ack` is set.
    pub ack: u32,
    pub flags: TcpFlags,
    /// Captured payload bytes.
    pub payload: &'a [u8],
    /// Payload bytes cut off by the capture's snaplen: they follow `payload`
    /// in sequence space and are reported as a gap.
    pub missing: u32,
}

/// Direction of data within a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    /// Client → server (requests).
    ToServer,
    /// Server → client (responses).
    ToClient,
}

impl Direction {
    pub(crate) const fn index(self) -> usize {
        match self {
            Direction::ToServer => 0,
            Direction::ToClient => 1,
        }
    }

    /// The other direction.
    pub const fn reverse(self) -> Direction {
        match self {
            Direction::ToServer => Direction::ToClient,
            Direction::ToClient => Direction::ToServer,
        }
    }
}

/// Why a connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// Both sides' FINs were delivered (or one side's FIN and then a new
    /// handshake reused the tuple).
    Fin,
    /// A RST was seen.
    Rst,
    /// No segment for [`ReassemblyConfig::idle_timeout`] of capture time.
    Timeout,
    /// Dropped to stay within [`ReassemblyConfig::max_conns`] or
    /// [`ReassemblyConfig::max_buffered_total`].
    Evicted,
    /// [`Reassembler::finish`](crate::Reassembler::finish) was called.
    EndOfInput,
    /// A new handshake (SYN with another ISN) started on the same tuple
    /// while this connection was open with no FIN or RST seen: its end was
    /// not captured.
    Reused,
}

impl CloseReason {
    pub const fn as_str(self) -> &'static str {
        match self {
            CloseReason::Fin => "fin",
            CloseReason::Rst => "rst",
            CloseReason::Timeout => "timeout",
            CloseReason::Evicted => "evicted",
            CloseReason::EndOfInput => "end_of_input",
            CloseReason::Reused => "reused",
        }
    }
}

/// What the reassembler reports, per connection, in order: one `Opened`,
/// then `Data`/`Gap`/`Fin` per direction, then one `Closed`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamEvent<'a> {
    /// A new connection. `flow` is oriented client → server and
    /// `flow.id == conn`.
    Opened {
        conn: ConnId,
        flow: Flow,
        ts: Timestamp,
        /// No SYN or SYN+ACK was seen: the streams were picked up after
        /// their start and the orientation comes from the port rule.
        midstream: bool,
    },
    /// The next in-order bytes of one direction; each byte is delivered
    /// exactly once.
    Data {
        conn: ConnId,
        dir: Direction,
        /// Capture time of the segment that carried these bytes.
        ts: Timestamp,
        data: &'a [u8],
    },
    /// `len` bytes of one direction are missing; the next `Data` of that
    /// direction follows them.
    Gap {
        conn: ConnId,
        dir: Direction,
        len: u64,
    },
    /// The direction's sender closed its side; all its data came before.
    Fin { conn: ConnId, dir: Direction },
    /// Last event of the connection; every buffered byte was delivered (or
    /// reported as a gap) before it.
    Closed {
        conn: ConnId,
        reason: CloseReason,
        ts: Timestamp,
    },
}

impl StreamEvent<'_> {
    /// The connection the event belongs to.
    pub fn conn(&self) -> ConnId {
        match *self {
            StreamEvent::Opened { conn, .. }
            | StreamEvent::Data { conn, .. }
            | StreamEvent::Gap { conn, .. }
            | StreamEvent::Fin { conn, .. }
            | StreamEvent::Closed { conn, .. } => conn,
        }
    }

    /// A copy that owns its data (for tests and queues).
    pub fn to_owned(&self) -> OwnedStreamEvent {
        match self {
            StreamEvent::Opened {
                conn,
                flow,
                ts,
                midstream,
            } => OwnedStreamEvent::Opened {
                conn: *conn,
                flow: flow.clone(),
                ts: *ts,
                midstream: *midstream,
            },
            StreamEvent::Data {
                conn,
                dir,
                ts,
                data,
            } => OwnedStreamEvent::Data {
                conn: *conn,
                dir: *dir,
                ts: *ts,
                data: data.to_vec(),
            },
            StreamEvent::Gap { conn, dir, len } => OwnedStreamEvent::Gap {
                conn: *conn,
                dir: *dir,
                len: *len,
            },
            StreamEvent::Fin { conn, dir } => OwnedStreamEvent::Fin {
                conn: *conn,
                dir: *dir,
            },
            StreamEvent::Closed { conn, reason, ts } => OwnedStreamEvent::Closed {
                conn: *conn,
                reason: *reason,
                ts: *ts,
            },
        }
    }
}

/// [`StreamEvent`] with owned data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OwnedStreamEvent {
    Opened {
        conn: ConnId,
        flow: Flow,
        ts: Timestamp,
        midstream: bool,
    },
    Data {
        conn: ConnId,
        dir: Direction,
        ts: Timestamp,
        data: Vec<u8>,
    },
    Gap {
        conn: ConnId,
        dir: Direction,
        len: u64,
    },
    Fin {
        conn: ConnId,
        dir: Direction,
    },
    Closed {
        conn: ConnId,
        reason: CloseReason,
        ts: Timestamp,
    },
}

/// Receives [`StreamEvent`]s. Implemented for every `FnMut(StreamEvent<'_>)`
/// and for `Vec<OwnedStreamEvent>` (collects copies).
pub trait StreamSink {
    fn event(&mut self, event: StreamEvent<'_>);
}

impl<F: FnMut(StreamEvent<'_>)> StreamSink for F {
    fn event(&mut self, event: StreamEvent<'_>) {
        self(event)
    }
}

impl StreamSink for Vec<OwnedStreamEvent> {
    fn event(&mut self, event: StreamEvent<'_>) {
        self.push(event.to_owned());
    }
}

/// Limits and policies. Every field has a documented default
/// ([`ReassemblyConfig::default`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReassemblyConfig {
    /// A connection with no segment for longer than this (capture time) is
    /// closed with [`CloseReason::Timeout`]. Default 120 s.
    pub idle_timeout: Duration,
    /// How long a tuple closed by FIN or RST is remembered, so that late
    /// segments (the last ACK, retransmitted FINs, data after a RST) are
    /// dropped instead of opening a mid-stream connection. Default 30 s.
    pub closed_linger: Duration,
    /// Out-of-order bytes buffered per connection and direction before the
    /// first hole is skipped (reported as a [`StreamEvent::Gap`]). Each
    /// buffered piece is also charged a fixed bookkeeping cost
    /// (`PIECE_OVERHEAD`, 64 bytes) so floods of tiny segments are bounded
    /// too. Default 1 MiB.
    pub max_buffer_per_direction: usize,
    /// Out-of-order bytes buffered over all connections. Above it, the
    /// connections holding buffered data that have been idle longest are
    /// evicted until usage is below 7/8 of the cap. Default 256 MiB.
    pub max_buffered_total: usize,
    /// Connections tracked at once (open ones plus closed tuples still
    /// lingering). At the cap, the oldest lingering closed tuple is
    /// forgotten first, else the open connection idle longest is evicted.
    /// Default 1,000,000 (values below 1 act as 1).
    pub max_conns: usize,
    /// When the receiver acknowledges past a hole that is bounded by data or
    /// a FIN the sender already sent, the bytes reached the receiver but not
    /// the capture: skip the hole at once instead of waiting for the buffer
    /// cap, a FIN or the timeout. Turn off if the capture can reorder the two
    /// directions by more than a round trip. Default true.
    pub skip_acked_holes: bool,
}

impl Default for ReassemblyConfig {
    fn default() -> Self {
        ReassemblyConfig {
            idle_timeout: Duration::from_secs(120),
            closed_linger: Duration::from_secs(30),
            max_buffer_per_direction: 1 << 20,
            max_buffered_total: 256 << 20,
            max_conns: 1_000_000,
            skip_acked_holes: true,
        }
    }
}

/// Counters. All fields are totals since creation except `buffered_bytes`
/// and `active_conns`, which are current values. [`merge`](Self::merge) adds
/// every field, so merging per-thread stats gives global totals.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReassemblyStats {
    /// Segments given to `process`.
    pub segments: u64,
    /// Captured payload bytes given to `process`.
    pub bytes: u64,
    pub conns_opened: u64,
    /// Connections opened without a SYN or SYN+ACK.
    pub conns_midstream: u64,
    pub closed_fin: u64,
    pub closed_rst: u64,
    pub closed_timeout: u64,
    pub closed_end_of_input: u64,
    pub closed_reused: u64,
    /// Connections closed with [`CloseReason::Evicted`].
    pub evictions: u64,
    /// Data segments that brought no new byte (all already delivered or
    /// buffered).
    pub retransmissions: u64,
    /// Data segments that brought new bytes and also re-sent some bytes
    /// already delivered or buffered.
    pub overlaps: u64,
    /// Segments whose re-sent bytes differ from the buffered bytes for the
    /// same sequence range (a possible evasion attempt). Only bytes still
    /// buffered can be compared: delivered data is not kept.
    pub overlap_conflicts: u64,
    /// Data segments that arrived ahead of a hole and were buffered.
    pub out_of_order: u64,
    /// Gap events emitted.
    pub gaps: u64,
    /// Bytes reported missing by gap events.
    pub gap_bytes: u64,
    /// Segments dropped because their sequence number is implausibly far
    /// from the stream's (more than 1 GiB away), data after a FIN, or a RST
    /// outside the window.
    pub out_of_window: u64,
    /// Times a direction was resynchronised after repeated out-of-window
    /// segments (reported as a gap).
    pub resyncs: u64,
    /// Segments that belong to no open connection: a RST for an unknown
    /// tuple, or anything but a pure ACK on a tuple that recently closed.
    pub stray_segments: u64,
    /// Out-of-order bytes currently buffered, plus the per-piece charge.
    pub buffered_bytes: u64,
    /// Connections currently open.
    pub active_conns: u64,
}

impl ReassemblyStats {
    /// Adds every counter of `other` to `self`.
    pub fn merge(&mut self, other: &ReassemblyStats) {
        let ReassemblyStats {
            segments,
            bytes,
            conns_opened,
            conns_midstream,
            closed_fin,
            closed_rst,
            closed_timeout,
            closed_end_of_input,
            closed_reused,
            evictions,
            retransmissions,
            overlaps,
            overlap_conflicts,
            out_of_order,
            gaps,
            gap_bytes,
            out_of_window,
            resyncs,
            stray_segments,
            buffered_bytes,
            active_conns,
        } = *other;
        self.segments = self.segments.saturating_add(segments);
        self.bytes = self.bytes.saturating_add(bytes);
        self.conns_opened = self.conns_opened.saturating_add(conns_opened);
        self.conns_midstream = self.conns_midstream.saturating_add(conns_midstream);
        self.closed_fin = self.closed_fin.saturating_add(closed_fin);
        self.closed_rst = self.closed_rst.saturating_add(closed_rst);
        self.closed_timeout = self.closed_timeout.saturating_add(closed_timeout);
        self.closed_end_of_input = self.closed_end_of_input.saturating_add(closed_end_of_input);
        self.closed_reused = self.closed_reused.saturating_add(closed_reused);
        self.evictions = self.evictions.saturating_add(evictions);
        self.retransmissions = self.retransmissions.saturating_add(retransmissions);
        self.overlaps = self.overlaps.saturating_add(overlaps);
        self.overlap_conflicts = self.overlap_conflicts.saturating_add(overlap_conflicts);
        self.out_of_order = self.out_of_order.saturating_add(out_of_order);
        self.gaps = self.gaps.saturating_add(gaps);
        self.gap_bytes = self.gap_bytes.saturating_add(gap_bytes);
        self.out_of_window = self.out_of_window.saturating_add(out_of_window);
        self.resyncs = self.resyncs.saturating_add(resyncs);
        self.stray_segments = self.stray_segments.saturating_add(stray_segments);
        self.buffered_bytes = self.buffered_bytes.saturating_add(buffered_bytes);
        self.active_conns = self.active_conns.saturating_add(active_conns);
    }

    /// Connections closed, for any reason.
    pub fn conns_closed(&self) -> u64 {
        self.closed_fin
            + self.closed_rst
            + self.closed_timeout
            + self.closed_end_of_input
            + self.closed_reused
            + self.evictions
    }
}

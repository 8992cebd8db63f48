//! The connection table: orientation, lifecycle, timeouts and memory caps.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};

/// Flow tables are keyed by addresses and ports an attacker chooses:
/// foldhash with a per-process random seed is several times cheaper than
/// SipHash and still keeps keys unpredictable.
type FlowHasher = foldhash::fast::RandomState;

use shadowmcp_exchange::{Flow, Timestamp, Transport};

use crate::flow::{flow_id, midstream_server_is_dst, TupleKey};
use crate::half::{Half, Out};
use crate::types::{
    CloseReason, ConnId, Direction, ReassemblyConfig, ReassemblyStats, Segment, StreamEvent,
    StreamSink,
};

/// One tracked tuple: an open connection, or a closed one lingering so late
/// segments are recognised.
struct Conn {
    id: ConnId,
    /// Creation order; tells a connection from a later one on the same tuple
    /// in the timer queues, and orders ties deterministically.
    serial: u64,
    last_seen: Timestamp,
    /// The client is the key's `a` endpoint.
    client_is_a: bool,
    closed: bool,
    /// Indexed by [`Direction::index`]: client→server, server→client.
    halves: [Half; 2],
}

impl Conn {
    fn buffered(&self) -> usize {
        self.halves[0]
            .buffered
            .saturating_add(self.halves[1].buffered)
    }

    fn any_fin(&self) -> bool {
        self.halves.iter().any(Half::fin_seen)
    }

    fn dir(&self, src_is_a: bool) -> Direction {
        if src_is_a == self.client_is_a {
            Direction::ToServer
        } else {
            Direction::ToClient
        }
    }

    /// Both halves, the sender's first.
    fn halves_mut(&mut self, dir: Direction) -> (&mut Half, &mut Half) {
        let [to_server, to_client] = &mut self.halves;
        match dir {
            Direction::ToServer => (to_server, to_client),
            Direction::ToClient => (to_client, to_server),
        }
    }

    /// Delivers everything buffered, both directions (gaps for holes).
    fn flush<S: StreamSink + ?Sized>(&mut self, sink: &mut S, stats: &mut ReassemblyStats) {
        let id = self.id;
        for dir in [Direction::ToServer, Direction::ToClient] {
            let mut out = Out {
                conn: id,
                dir,
                sink: &mut *sink,
                stats: &mut *stats,
            };
            self.halves[dir.index()].flush(&mut out);
        }
    }
}

enum Action {
    Open,
    /// A closed tuple lingering, but this segment starts a new handshake.
    ReplaceClosed,
    /// An open connection superseded by a new handshake.
    Supersede(CloseReason),
    Existing,
    Stray,
    Ignore,
}

impl Reassembler {
    /// Memory one tracked connection costs the reassembler, buffered data
    /// aside (bounded by `max_buffered_total`): its table slot (counted
    /// twice, for a table that has just doubled), its idle-timer entry and
    /// one stale timer entry. For sizing `max_conns` from a memory figure.
    pub fn conn_state_bytes() -> usize {
        let slot = std::mem::size_of::<(TupleKey, Conn)>() + 1;
        let timer = std::mem::size_of::<Reverse<(i64, u64, TupleKey)>>();
        2 * slot + 2 * timer
    }
}

/// TCP stream reassembler for many connections. See the crate docs.
pub struct Reassembler {
    config: ReassemblyConfig,
    conns: HashMap<TupleKey, Conn, FlowHasher>,
    /// Idle deadlines, lazily refreshed: an entry may be older than its
    /// connection's real deadline, which is checked when it is popped.
    idle: BinaryHeap<Reverse<(i64, u64, TupleKey)>>,
    /// Closed tuples in closing order: (forget at, serial, key).
    lingering: VecDeque<(i64, u64, TupleKey)>,
    closed_count: usize,
    next_serial: u64,
    latest: Timestamp,
    stats: ReassemblyStats,
}

impl Default for Reassembler {
    fn default() -> Self {
        Reassembler::new(ReassemblyConfig::default())
    }
}

fn nanos(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

impl Reassembler {
    pub fn new(config: ReassemblyConfig) -> Reassembler {
        Reassembler {
            config,
            conns: HashMap::default(),
            idle: BinaryHeap::new(),
            lingering: VecDeque::new(),
            closed_count: 0,
            next_serial: 0,
            latest: Timestamp::from_nanos(i64::MIN),
            stats: ReassemblyStats::default(),
        }
    }

    pub fn config(&self) -> &ReassemblyConfig {
        &self.config
    }

    /// Counters so far (`buffered_bytes` and `active_conns` are current).
    pub fn stats(&self) -> ReassemblyStats {
        self.stats
    }

    /// Connections currently open.
    pub fn active_conns(&self) -> usize {
        self.conns.len().saturating_sub(self.closed_count)
    }

    /// Estimate of the heap memory held, in bytes: the connection table and
    /// timer queues at their current capacity plus buffered data (with the
    /// per-piece charge). For monitoring; allocator overhead is not counted.
    pub fn memory_estimate(&self) -> usize {
        let table = self.conns.capacity()
            * (std::mem::size_of::<TupleKey>() + std::mem::size_of::<Conn>() + 1);
        let idle = self.idle.capacity() * std::mem::size_of::<Reverse<(i64, u64, TupleKey)>>();
        let lingering = self.lingering.capacity() * std::mem::size_of::<(i64, u64, TupleKey)>();
        let buffered = usize::try_from(self.stats.buffered_bytes).unwrap_or(usize::MAX);
        table
            .saturating_add(idle)
            .saturating_add(lingering)
            .saturating_add(buffered)
    }

    /// Drops queue entries of connections that no longer exist, once stale
    /// entries outnumber live ones, so the queues stay proportional to the
    /// table (connections closed by FIN or RST leave their idle entry behind
    /// until it would have expired).
    fn compact_queues(&mut self) {
        let conns = &self.conns;
        let live = |serial: u64, key: &TupleKey, closed: bool| {
            conns
                .get(key)
                .is_some_and(|c| c.serial == serial && c.closed == closed)
        };
        if self.idle.len() > 2 * conns.len() + 1024 {
            self.idle
                .retain(|Reverse((_, serial, key))| live(*serial, key, false));
        }
        if self.lingering.len() > 2 * self.closed_count + 1024 {
            self.lingering
                .retain(|(_, serial, key)| live(*serial, key, true));
        }
    }

    fn idle_deadline(&self, last_seen: Timestamp) -> i64 {
        last_seen
            .as_nanos()
            .saturating_add(nanos(self.config.idle_timeout))
    }

    /// Feeds one segment. Calls [`advance`](Self::advance) with its
    /// timestamp first, so idle connections time out as capture time passes.
    pub fn process<S: StreamSink + ?Sized>(&mut self, seg: &Segment<'_>, sink: &mut S) {
        self.advance(seg.ts, sink);
        self.stats.segments += 1;
        self.stats.bytes = self.stats.bytes.saturating_add(seg.payload.len() as u64);
        let (key, src_is_a) = TupleKey::new(seg.src, seg.dst);
        let f = seg.flags;
        let pure_syn = f.syn && !f.ack;
        let action = match self.conns.get(&key) {
            None if f.rst => Action::Stray,
            None => Action::Open,
            Some(c) if c.closed => {
                let sender = &c.halves[c.dir(src_is_a).index()];
                let same_syn = sender.syn_seen && sender.isn == seg.seq;
                if f.syn && !same_syn {
                    Action::ReplaceClosed
                } else if f.ack && !f.syn && !f.fin && seg.payload.is_empty() && seg.missing == 0 {
                    // The closing handshake's last ACK: expected, not stray.
                    Action::Ignore
                } else {
                    Action::Stray
                }
            }
            Some(c) => {
                let sender = &c.halves[c.dir(src_is_a).index()];
                let new_isn = if sender.syn_seen {
                    sender.isn != seg.seq
                } else {
                    // Picked up mid-stream: a SYN far from the stream we
                    // follow is a new connection, a late copy of the
                    // original SYN is not.
                    sender.initialized && !sender.near(seg.seq.wrapping_add(1))
                };
                if pure_syn && new_isn {
                    Action::Supersede(if c.any_fin() {
                        CloseReason::Fin
                    } else {
                        CloseReason::Reused
                    })
                } else {
                    Action::Existing
                }
            }
        };
        match action {
            Action::Stray => {
                self.stats.stray_segments += 1;
                return;
            }
            Action::Ignore => return,
            Action::ReplaceClosed => {
                self.conns.remove(&key);
                self.closed_count = self.closed_count.saturating_sub(1);
                self.open(key, src_is_a, seg, sink);
            }
            Action::Supersede(reason) => {
                self.close(key, reason, seg.ts, false, sink);
                self.open(key, src_is_a, seg, sink);
            }
            Action::Open => self.open(key, src_is_a, seg, sink),
            Action::Existing => {}
        }
        let closing = {
            let Reassembler {
                conns,
                stats,
                config,
                ..
            } = self;
            match conns.get_mut(&key) {
                Some(conn) => handle(conn, seg, src_is_a, config, stats, sink),
                None => None,
            }
        };
        if let Some(reason) = closing {
            self.close(key, reason, seg.ts, true, sink);
        } else if self.stats.buffered_bytes > self.config.max_buffered_total as u64 {
            self.relieve_pressure(key, seg.ts, sink);
        }
    }

    /// Moves the capture clock to `now`: connections idle for longer than
    /// [`ReassemblyConfig::idle_timeout`] close with
    /// [`CloseReason::Timeout`], closed tuples are forgotten after
    /// [`ReassemblyConfig::closed_linger`]. Cheap when nothing is due.
    pub fn advance<S: StreamSink + ?Sized>(&mut self, now: Timestamp, sink: &mut S) {
        if now > self.latest {
            self.latest = now;
        }
        let now = now.as_nanos();
        while let Some(&(forget_at, serial, key)) = self.lingering.front() {
            if forget_at > now {
                break;
            }
            self.lingering.pop_front();
            self.forget_closed(key, serial);
        }
        while let Some(&Reverse((deadline, serial, key))) = self.idle.peek() {
            if deadline >= now {
                break;
            }
            self.idle.pop();
            let Some(conn) = self.conns.get(&key) else {
                continue;
            };
            if conn.serial != serial || conn.closed {
                continue;
            }
            let actual = self.idle_deadline(conn.last_seen);
            if actual > deadline {
                self.idle.push(Reverse((actual, serial, key)));
                continue;
            }
            self.close(
                key,
                CloseReason::Timeout,
                Timestamp::from_nanos(deadline),
                false,
                sink,
            );
        }
    }

    /// End of input: every open connection is flushed and closed with
    /// [`CloseReason::EndOfInput`] (in the order they were opened), and all
    /// state is dropped. The reassembler can be used again afterwards.
    pub fn finish<S: StreamSink + ?Sized>(&mut self, sink: &mut S) {
        let mut open: Vec<(u64, TupleKey)> = self
            .conns
            .iter()
            .filter(|(_, c)| !c.closed)
            .map(|(k, c)| (c.serial, *k))
            .collect();
        open.sort_unstable();
        let ts = self.latest;
        for (_, key) in open {
            self.close(key, CloseReason::EndOfInput, ts, false, sink);
        }
        self.conns.clear();
        self.idle.clear();
        self.lingering.clear();
        self.closed_count = 0;
    }

    fn open<S: StreamSink + ?Sized>(
        &mut self,
        key: TupleKey,
        src_is_a: bool,
        seg: &Segment<'_>,
        sink: &mut S,
    ) {
        self.make_room(seg.ts, sink);
        self.compact_queues();
        let client_is_a = if seg.flags.syn {
            // SYN sender is the client; SYN+ACK sender the server.
            src_is_a != seg.flags.ack
        } else {
            let (src_port, dst_port) = (seg.src.port(), seg.dst.port());
            src_is_a == midstream_server_is_dst(src_port, dst_port)
        };
        let (client, server) = if client_is_a {
            (key.a, key.b)
        } else {
            (key.b, key.a)
        };
        let midstream = !seg.flags.syn;
        let id = flow_id(client.addr(), server.addr(), seg.ts);
        let serial = self.next_serial;
        self.next_serial += 1;
        self.stats.conns_opened += 1;
        self.stats.conns_midstream += u64::from(midstream);
        self.stats.active_conns += 1;
        sink.event(StreamEvent::Opened {
            conn: id,
            flow: Flow {
                id,
                client: client.addr(),
                server: server.addr(),
                transport: Transport::Tcp,
            },
            ts: seg.ts,
            midstream,
        });
        let deadline = self.idle_deadline(seg.ts);
        self.idle.push(Reverse((deadline, serial, key)));
        self.conns.insert(
            key,
            Conn {
                id,
                serial,
                last_seen: seg.ts,
                client_is_a,
                closed: false,
                halves: [Half::default(), Half::default()],
            },
        );
    }

    /// Flushes and closes the connection on `key`. With `linger`, the tuple
    /// is remembered (closed) for `closed_linger`; otherwise it is dropped.
    fn close<S: StreamSink + ?Sized>(
        &mut self,
        key: TupleKey,
        reason: CloseReason,
        ts: Timestamp,
        linger: bool,
        sink: &mut S,
    ) {
        let Some(conn) = self.conns.get_mut(&key) else {
            return;
        };
        if conn.closed {
            return;
        }
        conn.flush(sink, &mut self.stats);
        sink.event(StreamEvent::Closed {
            conn: conn.id,
            reason,
            ts,
        });
        let s = &mut self.stats;
        match reason {
            CloseReason::Fin => s.closed_fin += 1,
            CloseReason::Rst => s.closed_rst += 1,
            CloseReason::Timeout => s.closed_timeout += 1,
            CloseReason::Evicted => s.evictions += 1,
            CloseReason::EndOfInput => s.closed_end_of_input += 1,
            CloseReason::Reused => s.closed_reused += 1,
        }
        s.active_conns = s.active_conns.saturating_sub(1);
        if linger {
            conn.closed = true;
            self.closed_count += 1;
            let forget_at = ts
                .as_nanos()
                .saturating_add(nanos(self.config.closed_linger));
            self.lingering.push_back((forget_at, conn.serial, key));
        } else {
            self.conns.remove(&key);
        }
    }

    fn forget_closed(&mut self, key: TupleKey, serial: u64) -> bool {
        match self.conns.get(&key) {
            Some(c) if c.closed && c.serial == serial => {
                self.conns.remove(&key);
                self.closed_count = self.closed_count.saturating_sub(1);
                true
            }
            _ => false,
        }
    }

    /// Makes space for one more tuple under `max_conns`: forget the oldest
    /// closed tuple, else evict the open connection idle longest.
    fn make_room<S: StreamSink + ?Sized>(&mut self, ts: Timestamp, sink: &mut S) {
        let max = self.config.max_conns.max(1);
        while self.conns.len() >= max {
            if !(self.forget_oldest_closed() || self.evict_oldest_idle(ts, sink)) {
                break;
            }
        }
    }

    fn forget_oldest_closed(&mut self) -> bool {
        while let Some((_, serial, key)) = self.lingering.pop_front() {
            if self.forget_closed(key, serial) {
                return true;
            }
        }
        false
    }

    fn evict_oldest_idle<S: StreamSink + ?Sized>(&mut self, ts: Timestamp, sink: &mut S) -> bool {
        while let Some(Reverse((deadline, serial, key))) = self.idle.pop() {
            let Some(conn) = self.conns.get(&key) else {
                continue;
            };
            if conn.serial != serial || conn.closed {
                continue;
            }
            let actual = self.idle_deadline(conn.last_seen);
            if actual > deadline {
                self.idle.push(Reverse((actual, serial, key)));
                continue;
            }
            self.close(key, CloseReason::Evicted, ts, false, sink);
            return true;
        }
        false
    }

    /// Over the global buffer cap: evict the connections holding buffered
    /// data that were idle longest (not `current`) down to 7/8 of the cap;
    /// if `current` alone is still over, skip its holes.
    fn relieve_pressure<S: StreamSink + ?Sized>(
        &mut self,
        current: TupleKey,
        ts: Timestamp,
        sink: &mut S,
    ) {
        let cap = self.config.max_buffered_total as u64;
        let low_water = cap - cap / 8;
        let own = self.conns.get(&current).map_or(0, |c| c.buffered() as u64);
        // Scan for victims only when others hold data: when `current` alone
        // is over (a cap below the per-direction one), scanning every
        // segment would make the table walk per packet.
        let mut victims: Vec<(Timestamp, u64, TupleKey)> = Vec::new();
        if self.stats.buffered_bytes > own {
            victims = self
                .conns
                .iter()
                .filter(|(k, c)| !c.closed && c.buffered() > 0 && **k != current)
                .map(|(k, c)| (c.last_seen, c.serial, *k))
                .collect();
        }
        victims.sort_unstable();
        for (_, _, key) in victims {
            if self.stats.buffered_bytes <= low_water {
                break;
            }
            self.close(key, CloseReason::Evicted, ts, false, sink);
        }
        if self.stats.buffered_bytes > cap {
            let Reassembler { conns, stats, .. } = self;
            if let Some(conn) = conns.get_mut(&current) {
                let id = conn.id;
                for dir in [Direction::ToServer, Direction::ToClient] {
                    let mut out = Out {
                        conn: id,
                        dir,
                        sink: &mut *sink,
                        stats: &mut *stats,
                    };
                    let half = &mut conn.halves[dir.index()];
                    while out.stats.buffered_bytes > cap && half.skip_hole(&mut out) {}
                }
            }
        }
    }
}

/// Applies one segment to its connection. Returns the reason to close it,
/// if the segment ends it.
fn handle<S: StreamSink + ?Sized>(
    conn: &mut Conn,
    seg: &Segment<'_>,
    src_is_a: bool,
    config: &ReassemblyConfig,
    stats: &mut ReassemblyStats,
    sink: &mut S,
) -> Option<CloseReason> {
    if seg.ts > conn.last_seen {
        conn.last_seen = seg.ts;
    }
    let id = conn.id;
    let dir = conn.dir(src_is_a);
    let (half, other) = conn.halves_mut(dir);
    let f = seg.flags;
    if f.rst {
        // Payload on a RST is not stream data (receivers discard it).
        if half.rst_acceptable(seg.seq) {
            return Some(CloseReason::Rst);
        }
        stats.out_of_window += 1;
        return None;
    }
    if f.syn {
        half.syn(seg.seq);
        if f.ack && !other.initialized {
            // The SYN+ACK acknowledges the client's ISN + 1.
            other.init(seg.ack);
        }
    } else if !half.initialized {
        half.init(seg.seq);
    }
    let mut out = Out {
        conn: id,
        dir,
        sink,
        stats,
    };
    // SYN occupies one sequence number; data (TCP Fast Open) follows it.
    let data_seq = seg.seq.wrapping_add(u32::from(f.syn));
    if !seg.payload.is_empty() || seg.missing > 0 {
        half.data(data_seq, seg.payload, seg.missing, seg.ts, &mut out);
    }
    if f.fin {
        let fin_seq = data_seq
            .wrapping_add(seg.payload.len() as u32)
            .wrapping_add(seg.missing);
        half.fin(fin_seq, &mut out);
    }
    half.enforce_cap(config.max_buffer_per_direction, &mut out);
    if f.ack && config.skip_acked_holes {
        out.dir = dir.reverse();
        other.acked(seg.ack, &mut out);
    }
    (half.fin_emitted && other.fin_emitted).then_some(CloseReason::Fin)
}

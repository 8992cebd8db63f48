//! IP fragment reassembly (IPv4 and IPv6), bounded in memory and time.
//!
//! Policy, chosen to be simple and predictable:
//! - A datagram is keyed by (source, destination, protocol / next header,
//!   identification); IPv4 and IPv6 share one table.
//! - Its reassembled size is at most 65535 bytes; a fragment reaching past
//!   that, a non-final fragment whose length is not a multiple of 8, or a
//!   fragment contradicting the known end of the datagram is dropped and
//!   counted in [`DefragStats::invalid`].
//! - **Overlaps: first data wins.** Bytes already received are never
//!   overwritten; a fragment that overlaps earlier data only fills the holes
//!   and is counted in [`DefragStats::overlapping`]. (Overlapping fragments
//!   are an evasion technique; the count makes them visible.)
//! - A datagram not complete `timeout_nanos` after its first fragment (in
//!   capture time) is dropped ([`DefragStats::expired`]).
//! - When `max_datagrams` or `max_bytes` would be exceeded, the oldest
//!   datagrams are dropped first ([`DefragStats::evicted`]).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

use shadowmcp_exchange::Timestamp;

/// Largest reassembled payload (the IP length fields are 16 bits).
pub const MAX_DATAGRAM: usize = 65_535;

/// Limits of a [`Defragmenter`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DefragConfig {
    /// Datagrams being reassembled at once. Default: 4096.
    pub max_datagrams: usize,
    /// Payload bytes held across all datagrams. Default: 16 MiB.
    pub max_bytes: usize,
    /// Capture-time nanoseconds a datagram may wait for its missing
    /// fragments, from its first fragment. Default: 30 s (Linux
    /// `ipfrag_time`).
    pub timeout_nanos: i64,
}

impl Default for DefragConfig {
    fn default() -> Self {
        DefragConfig {
            max_datagrams: 4096,
            max_bytes: 16 << 20,
            timeout_nanos: 30_000_000_000,
        }
    }
}

/// Identifies the datagram a fragment belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FragmentKey {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IPv4 protocol, or the IPv6 fragment header's next header.
    pub protocol: u8,
    /// IPv4 identification (16 bits) or IPv6 fragment identification.
    pub id: u32,
}

/// One fragment: its payload and where it goes.
#[derive(Clone, Copy, Debug)]
pub struct Fragment<'a> {
    pub key: FragmentKey,
    /// Byte offset of `data` in the reassembled payload.
    pub offset: usize,
    /// More fragments follow (the MF / M flag).
    pub more: bool,
    pub data: &'a [u8],
}

/// Counters of a [`Defragmenter`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DefragStats {
    /// Fragments offered.
    pub fragments: u64,
    /// Datagrams completed.
    pub reassembled: u64,
    /// Datagrams dropped incomplete after the timeout (or at the end).
    pub expired: u64,
    /// Datagrams dropped incomplete to respect the memory limits.
    pub evicted: u64,
    /// Fragments that overlapped data already received.
    pub overlapping: u64,
    /// Fragments dropped as invalid.
    pub invalid: u64,
}

#[derive(Debug)]
struct Datagram {
    generation: u64,
    first_seen: Timestamp,
    data: Vec<u8>,
    /// One bit per 8-byte unit received.
    covered: Vec<u64>,
    covered_units: usize,
    total_len: Option<usize>,
}

impl Datagram {
    fn is_covered(&self, unit: usize) -> bool {
        self.covered
            .get(unit / 64)
            .is_some_and(|w| w & (1 << (unit % 64)) != 0)
    }

    fn cover(&mut self, unit: usize) {
        // The bitmap grows with the datagram (at most 1 KiB for 64 KiB).
        if self.covered.len() <= unit / 64 {
            self.covered.resize(unit / 64 + 1, 0);
        }
        if let Some(w) = self.covered.get_mut(unit / 64) {
            *w |= 1 << (unit % 64);
            self.covered_units += 1;
        }
    }

    fn is_complete(&self) -> bool {
        self.total_len
            .is_some_and(|t| self.covered_units == t.div_ceil(8))
    }
}

/// Reassembles fragmented IP payloads. See the module docs for the policy.
///
/// ```
/// use shadowmcp_capture::defrag::{Defragmenter, Fragment, FragmentKey};
/// use shadowmcp_exchange::Timestamp;
/// let key = FragmentKey { src: [10, 0, 0, 1].into(), dst: [10, 0, 0, 2].into(), protocol: 6, id: 7 };
/// let mut d = Defragmenter::default();
/// let t = Timestamp::from_nanos(0);
/// assert!(d.insert(t, Fragment { key, offset: 8, more: false, data: b"world" }).is_none());
/// let whole = d.insert(t, Fragment { key, offset: 0, more: true, data: b"hello, _" }).unwrap();
/// assert_eq!(whole, b"hello, _world");
/// ```
#[derive(Debug, Default)]
pub struct Defragmenter {
    config: DefragConfig,
    table: HashMap<FragmentKey, Datagram>,
    /// Keys in arrival order of their first fragment; entries whose
    /// generation no longer matches the table are stale and skipped.
    order: VecDeque<(FragmentKey, u64)>,
    next_generation: u64,
    bytes: usize,
    stats: DefragStats,
}

impl Defragmenter {
    pub fn new(config: DefragConfig) -> Defragmenter {
        Defragmenter {
            config,
            ..Defragmenter::default()
        }
    }

    pub fn stats(&self) -> &DefragStats {
        &self.stats
    }

    /// Datagrams waiting for fragments.
    pub fn pending(&self) -> usize {
        self.table.len()
    }

    /// Payload bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Adds a fragment seen at `now`; returns the whole payload when this
    /// fragment completes its datagram.
    pub fn insert(&mut self, now: Timestamp, frag: Fragment<'_>) -> Option<Vec<u8>> {
        self.stats.fragments += 1;
        self.expire(now);
        let end = frag.offset.saturating_add(frag.data.len());
        let misaligned = frag.more && frag.data.len() % 8 != 0;
        if end > MAX_DATAGRAM || frag.offset % 8 != 0 || misaligned || frag.data.is_empty() {
            self.stats.invalid += 1;
            return None;
        }
        if !self.table.contains_key(&frag.key) {
            while self.table.len() >= self.config.max_datagrams.max(1) {
                if !self.evict_oldest(None) {
                    break;
                }
            }
            let generation = self.next_generation;
            self.next_generation += 1;
            self.table.insert(
                frag.key,
                Datagram {
                    generation,
                    first_seen: now,
                    data: Vec::new(),
                    covered: Vec::new(),
                    covered_units: 0,
                    total_len: None,
                },
            );
            self.order.push_back((frag.key, generation));
            self.compact_order();
        }
        // Validate against what is known before touching memory.
        let (known_total, held) = match self.table.get(&frag.key) {
            Some(d) => (d.total_len, d.data.len()),
            None => return None,
        };
        let contradicts = match known_total {
            Some(total) => end > total || (!frag.more && end != total),
            None => !frag.more && held > end,
        };
        if contradicts {
            self.stats.invalid += 1;
            return None;
        }
        let growth = end.saturating_sub(held);
        while self.bytes.saturating_add(growth) > self.config.max_bytes {
            if !self.evict_oldest(Some(frag.key)) {
                // Only this datagram is left and it does not fit.
                self.remove(&frag.key);
                self.stats.evicted += 1;
                return None;
            }
        }
        let dgram = self.table.get_mut(&frag.key)?;
        if dgram.data.len() < end {
            dgram.data.resize(end, 0);
        }
        self.bytes += growth;
        if !frag.more {
            dgram.total_len = Some(end);
        }
        let mut overlapped = false;
        let first_unit = frag.offset / 8;
        for unit in first_unit..end.div_ceil(8) {
            if dgram.is_covered(unit) {
                overlapped = true;
                continue;
            }
            let from = unit * 8;
            let to = (from + 8).min(end);
            let src_from = from - frag.offset;
            let src_to = to - frag.offset;
            if let (Some(dst), Some(src)) = (
                dgram.data.get_mut(from..to),
                frag.data.get(src_from..src_to),
            ) {
                dst.copy_from_slice(src);
            }
            dgram.cover(unit);
        }
        if overlapped {
            self.stats.overlapping += 1;
        }
        if !dgram.is_complete() {
            return None;
        }
        let mut done = self.remove(&frag.key)?;
        self.stats.reassembled += 1;
        if let Some(total) = done.total_len {
            done.data.truncate(total);
        }
        Some(done.data)
    }

    /// Drops every datagram still incomplete (end of input), counting them
    /// as expired.
    pub fn expire_all(&mut self) {
        self.stats.expired += self.table.len() as u64;
        self.table.clear();
        self.order.clear();
        self.bytes = 0;
    }

    fn remove(&mut self, key: &FragmentKey) -> Option<Datagram> {
        let d = self.table.remove(key)?;
        self.bytes = self.bytes.saturating_sub(d.data.len());
        Some(d)
    }

    fn is_live(&self, key: &FragmentKey, generation: u64) -> bool {
        self.table
            .get(key)
            .is_some_and(|d| d.generation == generation)
    }

    fn expire(&mut self, now: Timestamp) {
        while let Some(&(key, generation)) = self.order.front() {
            let Some(d) = self.table.get(&key).filter(|d| d.generation == generation) else {
                self.order.pop_front();
                continue;
            };
            let age = now.as_nanos().saturating_sub(d.first_seen.as_nanos());
            if age <= self.config.timeout_nanos {
                break;
            }
            self.order.pop_front();
            self.remove(&key);
            self.stats.expired += 1;
        }
    }

    /// Evicts the oldest datagram other than `keep`; false if there is none.
    fn evict_oldest(&mut self, keep: Option<FragmentKey>) -> bool {
        let mut skipped = None;
        let mut evicted = false;
        while let Some((key, generation)) = self.order.pop_front() {
            if !self.is_live(&key, generation) {
                continue;
            }
            if Some(key) == keep {
                skipped = Some((key, generation));
                continue;
            }
            self.remove(&key);
            self.stats.evicted += 1;
            evicted = true;
            break;
        }
        if let Some(entry) = skipped {
            self.order.push_front(entry);
        }
        evicted
    }

    /// Drops stale entries when they outnumber live ones, keeping `order`
    /// proportional to the table.
    fn compact_order(&mut self) {
        if self.order.len() > 2 * self.table.len() + 64 {
            let table = &self.table;
            self.order
                .retain(|(k, g)| table.get(k).is_some_and(|d| d.generation == *g));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: u32) -> FragmentKey {
        FragmentKey {
            src: [192, 0, 2, 1].into(),
            dst: [192, 0, 2, 2].into(),
            protocol: 6,
            id,
        }
    }

    fn frag(id: u32, offset: usize, more: bool, data: &[u8]) -> Fragment<'_> {
        Fragment {
            key: key(id),
            offset,
            more,
            data,
        }
    }

    const T0: Timestamp = Timestamp::from_nanos(0);

    #[test]
    fn reassembles_out_of_order_and_frees_memory() {
        let mut d = Defragmenter::default();
        assert!(d.insert(T0, frag(1, 16, false, b"end")).is_none());
        assert!(d.insert(T0, frag(1, 8, true, b"89abcdef")).is_none());
        assert_eq!(d.pending(), 1);
        let out = d.insert(T0, frag(1, 0, true, b"01234567")).unwrap();
        assert_eq!(out, b"0123456789abcdefend");
        assert_eq!((d.pending(), d.bytes()), (0, 0));
        assert_eq!(d.stats().reassembled, 1);
    }

    #[test]
    fn overlap_keeps_first_data() {
        let mut d = Defragmenter::default();
        assert!(d.insert(T0, frag(1, 0, true, b"AAAAAAAA")).is_none());
        // Rewrites [0, 16): the first 8 bytes must stay "A".
        assert!(d
            .insert(T0, frag(1, 0, true, b"BBBBBBBBCCCCCCCC"))
            .is_none());
        let out = d.insert(T0, frag(1, 16, false, b"Z")).unwrap();
        assert_eq!(out, b"AAAAAAAACCCCCCCCZ");
        assert_eq!(d.stats().overlapping, 1);
    }

    #[test]
    fn rejects_invalid_fragments() {
        let mut d = Defragmenter::default();
        assert!(d.insert(T0, frag(1, 0, true, b"odd")).is_none());
        assert!(d.insert(T0, frag(1, 65_528, false, &[0; 16])).is_none());
        assert_eq!(d.stats().invalid, 2);
        // A known end cannot move.
        assert!(d.insert(T0, frag(2, 8, false, b"x")).is_none());
        assert!(d.insert(T0, frag(2, 16, true, &[0; 8])).is_none());
        assert!(d.insert(T0, frag(2, 8, false, b"xy")).is_none());
        assert_eq!(d.stats().invalid, 4);
        assert_eq!(d.insert(T0, frag(2, 0, true, &[1; 8])).unwrap().len(), 9);
    }

    #[test]
    fn expires_after_timeout() {
        let mut d = Defragmenter::new(DefragConfig {
            timeout_nanos: 1_000,
            ..DefragConfig::default()
        });
        assert!(d.insert(T0, frag(1, 0, true, &[0; 8])).is_none());
        let later = Timestamp::from_nanos(2_000);
        assert!(d.insert(later, frag(1, 8, false, b"x")).is_none());
        assert_eq!(d.stats().expired, 1);
        // The late fragment started a new datagram, which is still waiting.
        assert_eq!(d.pending(), 1);
    }

    #[test]
    fn memory_limits_evict_oldest() {
        let mut d = Defragmenter::new(DefragConfig {
            max_datagrams: 2,
            max_bytes: 100,
            ..DefragConfig::default()
        });
        for id in 0..3 {
            assert!(d.insert(T0, frag(id, 0, true, &[0; 8])).is_none());
        }
        assert_eq!((d.pending(), d.stats().evicted), (2, 1));
        // 96 more bytes for id 2 force out id 1, the oldest other one.
        assert!(d.insert(T0, frag(2, 8, true, &[0; 88])).is_none());
        assert_eq!(d.stats().evicted, 2);
        assert!(d.bytes() <= 100);
        // A datagram that alone exceeds the limit is dropped.
        assert!(d.insert(T0, frag(2, 96, true, &[0; 64])).is_none());
        assert_eq!((d.pending(), d.bytes()), (0, 0));
    }
}

//! Property tests: random segmentation, reordering, duplication and loss.

mod common;

use std::net::SocketAddr;

use common::*;
use proptest::prelude::*;
use shadowmcp_exchange::Timestamp;
use shadowmcp_reassembly::{
    CloseReason, Direction, OwnedStreamEvent, Reassembler, ReassemblyConfig, Segment, TcpFlags,
};

/// Deterministic shuffle (xorshift64*), so a failing case replays exactly.
fn shuffle<T>(v: &mut [T], mut seed: u64) {
    seed |= 1;
    for i in (1..v.len()).rev() {
        seed ^= seed >> 12;
        seed ^= seed << 25;
        seed ^= seed >> 27;
        let j = (seed.wrapping_mul(0x2545_f491_4f6c_dd1d) % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
}

/// Byte ranges covering `0..len` (from `cuts`) plus extra overlapping
/// ranges (re-segmentations and duplicates, from `extra`).
fn ranges(len: usize, cuts: &[u16], extra: &[(u16, u16)]) -> Vec<(usize, usize)> {
    let mut points: Vec<usize> = cuts.iter().map(|c| *c as usize % (len + 1)).collect();
    points.push(0);
    points.push(len);
    points.sort_unstable();
    points.dedup();
    let mut out: Vec<(usize, usize)> = points.windows(2).map(|w| (w[0], w[1])).collect();
    if len > 0 {
        for &(a, b) in extra {
            let (a, b) = (a as usize % len, b as usize % len);
            out.push((a.min(b), a.max(b) + 1));
        }
    }
    out
}

#[derive(Debug, Clone)]
struct Dir {
    data: Vec<u8>,
    cuts: Vec<u16>,
    extra: Vec<(u16, u16)>,
    isn: u32,
}

fn arb_dir() -> impl Strategy<Value = Dir> {
    (
        prop::collection::vec(any::<u8>(), 0..1500),
        prop::collection::vec(any::<u16>(), 0..40),
        prop::collection::vec((any::<u16>(), any::<u16>()), 0..12),
        prop_oneof![any::<u32>(), (u32::MAX - 3000)..=u32::MAX],
    )
        .prop_map(|(data, cuts, extra, isn)| Dir {
            data,
            cuts,
            extra,
            isn,
        })
}

struct Raw {
    from_client: bool,
    seq: u32,
    ack: u32,
    flags: u8,
    payload: Vec<u8>,
}

/// Data segments (and the FIN) of one direction.
fn dir_segments(d: &Dir, other_isn: u32, from_client: bool, drop: &[bool]) -> Vec<Raw> {
    let base = d.isn.wrapping_add(1);
    let mut segs: Vec<Raw> = ranges(d.data.len(), &d.cuts, &d.extra)
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !drop.get(*i).copied().unwrap_or(false))
        .map(|(_, (a, b))| Raw {
            from_client,
            seq: base.wrapping_add(a as u32),
            ack: other_isn.wrapping_add(1),
            flags: ACK,
            payload: d.data[a..b].to_vec(),
        })
        .collect();
    segs.push(Raw {
        from_client,
        seq: base.wrapping_add(d.data.len() as u32),
        ack: other_isn.wrapping_add(1),
        flags: FIN | ACK,
        payload: Vec::new(),
    });
    segs
}

fn run(r: &mut Reassembler, c: &Dir, s: &Dir, segs: &[Raw]) -> Vec<OwnedStreamEvent> {
    run_with(r, c, s, segs, true)
}

fn run_with(
    r: &mut Reassembler,
    c: &Dir,
    s: &Dir,
    segs: &[Raw],
    handshake: bool,
) -> Vec<OwnedStreamEvent> {
    let client: SocketAddr = addr("192.0.2.10:41000");
    let server: SocketAddr = addr("198.51.100.20:8000");
    let mut events = Vec::new();
    let mut now = 1_000 * SEC;
    let mut feed = |r: &mut Reassembler, from_client: bool, seq, ack, flags, payload: &[u8]| {
        let (src, dst) = if from_client {
            (client, server)
        } else {
            (server, client)
        };
        now += 1_000;
        let seg = Segment {
            ts: Timestamp::from_nanos(now),
            src,
            dst,
            seq,
            ack,
            flags: TcpFlags::from_bits(flags),
            payload,
            missing: 0,
        };
        r.process(&seg, &mut events);
    };
    if handshake {
        feed(r, true, c.isn, 0, SYN, b"");
        feed(r, false, s.isn, c.isn.wrapping_add(1), SYN | ACK, b"");
    }
    for seg in segs {
        feed(
            r,
            seg.from_client,
            seg.seq,
            seg.ack,
            seg.flags,
            &seg.payload,
        );
    }
    r.finish(&mut events);
    events
}

/// Walks one direction's Data/Gap events and checks each data byte sits at
/// its offset in `original`; returns (bytes delivered, gap bytes).
fn check_positions(events: &[OwnedStreamEvent], dir: Direction, original: &[u8]) -> (usize, u64) {
    let mut off = 0u64;
    let mut delivered = 0usize;
    let mut gaps = 0u64;
    for e in events {
        match e {
            OwnedStreamEvent::Data { dir: d, data, .. } if *d == dir => {
                let at = off as usize;
                assert_eq!(
                    original.get(at..at + data.len()),
                    Some(data.as_slice()),
                    "data at offset {at} does not match the original"
                );
                off += data.len() as u64;
                delivered += data.len();
            }
            OwnedStreamEvent::Gap { dir: d, len, .. } if *d == dir => {
                off += len;
                gaps += len;
            }
            _ => {}
        }
    }
    assert!(off <= original.len() as u64, "stream longer than sent");
    (delivered, gaps)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Any segmentation, order, duplication and overlapping re-segmentation
    /// of two streams reassembles to exactly the streams sent.
    #[test]
    fn random_order_and_duplicates_reassemble_exactly(
        c in arb_dir(),
        s in arb_dir(),
        seed in any::<u64>(),
    ) {
        let mut segs = dir_segments(&c, s.isn, true, &[]);
        segs.extend(dir_segments(&s, c.isn, false, &[]));
        shuffle(&mut segs, seed);
        let mut r = Reassembler::default();
        let events = run(&mut r, &c, &s, &segs);
        check_grammar(&events);
        let mut h = Harness::new();
        h.events = events;
        let id = h.only();
        prop_assert_eq!(h.stream(id, Direction::ToServer), c.data.clone());
        prop_assert_eq!(h.stream(id, Direction::ToClient), s.data.clone());
        prop_assert_eq!(h.render(id, Direction::ToServer).matches("<fin>").count(), 1);
        prop_assert_eq!(h.closed(id), Some(CloseReason::Fin));
        let st = r.stats();
        prop_assert_eq!(st.gaps, 0);
        prop_assert_eq!(st.buffered_bytes, 0);
        prop_assert_eq!(st.overlap_conflicts, 0);
    }

    /// Mid-stream pickup (no handshake): once each direction's first
    /// segment fixes its start, any order of the rest reassembles exactly,
    /// and the port rule makes port 8000 the server.
    #[test]
    fn midstream_pickup_reassembles_after_the_first_segment(
        c in arb_dir(),
        s in arb_dir(),
        seed in any::<u64>(),
    ) {
        let mut cs = dir_segments(&c, s.isn, true, &[]);
        let mut ss = dir_segments(&s, c.isn, false, &[]);
        // `ranges` lists the segment starting at offset 0 first.
        let mut segs = vec![cs.remove(0), ss.remove(0)];
        let mut rest: Vec<Raw> = cs.into_iter().chain(ss).collect();
        shuffle(&mut rest, seed);
        segs.extend(rest);
        let mut r = Reassembler::default();
        let events = run_with(&mut r, &c, &s, &segs, false);
        check_grammar(&events);
        let mut h = Harness::new();
        h.events = events;
        let id = h.only();
        match &h.events[0] {
            OwnedStreamEvent::Opened { flow, midstream, .. } => {
                prop_assert!(*midstream);
                prop_assert_eq!(flow.server.port(), 8000);
            }
            e => prop_assert!(false, "unexpected first event {:?}", e),
        }
        prop_assert_eq!(h.stream(id, Direction::ToServer), c.data.clone());
        prop_assert_eq!(h.stream(id, Direction::ToClient), s.data.clone());
        prop_assert_eq!(h.closed(id), Some(CloseReason::Fin));
        prop_assert_eq!(r.stats().gaps, 0);
    }

    /// With segments lost, tiny buffers and ACK-driven skipping, every
    /// delivered byte is still at its true position, delivered once, and
    /// data plus gaps never exceed what was sent.
    #[test]
    fn lost_segments_yield_gaps_never_wrong_bytes(
        c in arb_dir(),
        s in arb_dir(),
        drops in prop::collection::vec(any::<bool>(), 0..64),
        acks in prop::collection::vec((any::<bool>(), any::<u16>()), 0..16),
        cap in 0usize..600,
        seed in any::<u64>(),
    ) {
        let mut segs = dir_segments(&c, s.isn, true, &drops);
        let s_drops: Vec<bool> = drops.iter().rev().copied().collect();
        segs.extend(dir_segments(&s, c.isn, false, &s_drops));
        // Pure ACKs acknowledging random amounts of the other direction.
        for (from_client, n) in acks {
            let (me, other) = if from_client { (&c, &s) } else { (&s, &c) };
            segs.push(Raw {
                from_client,
                seq: me.isn.wrapping_add(1),
                ack: other.isn.wrapping_add(1).wrapping_add(u32::from(n) % 1600),
                flags: ACK,
                payload: Vec::new(),
            });
        }
        shuffle(&mut segs, seed);
        let mut r = Reassembler::new(ReassemblyConfig {
            max_buffer_per_direction: cap,
            ..ReassemblyConfig::default()
        });
        let events = run(&mut r, &c, &s, &segs);
        check_grammar(&events);
        check_positions(&events, Direction::ToServer, &c.data);
        check_positions(&events, Direction::ToClient, &s.data);
        let st = r.stats();
        prop_assert_eq!(st.buffered_bytes, 0);
        prop_assert_eq!(st.active_conns, 0);
        if !drops.iter().any(|d| *d) && st.gaps == 0 {
            // Nothing lost and nothing skipped: everything arrived.
            let mut h = Harness::new();
            h.events = events;
            let id = h.only();
            prop_assert_eq!(h.stream(id, Direction::ToServer), c.data.clone());
        }
    }

    /// Arbitrary segments never panic, respect the caps, keep the event
    /// grammar, and leave nothing behind after finish.
    #[test]
    fn garbage_segments_never_panic(
        segs in prop::collection::vec(
            (
                0usize..4,
                any::<bool>(),
                prop_oneof![any::<u32>(), 0u32..200, (u32::MAX - 100)..=u32::MAX],
                prop_oneof![any::<u32>(), 0u32..200],
                any::<u8>(),
                prop::collection::vec(any::<u8>(), 0..80),
                prop_oneof![Just(0u32), 0u32..100, any::<u32>()],
                -2i64..40,
            ),
            0..200,
        ),
        max_conns in 1usize..5,
        per_dir in 0usize..400,
        total in 0usize..900,
        skip_acked_holes in any::<bool>(),
    ) {
        let eps = [
            addr("10.0.0.1:40000"),
            addr("10.0.0.2:80"),
            addr("[2001:db8::1]:443"),
            addr("10.0.0.1:40001"),
        ];
        let mut r = Reassembler::new(ReassemblyConfig {
            idle_timeout: std::time::Duration::from_secs(5),
            closed_linger: std::time::Duration::from_secs(2),
            max_buffer_per_direction: per_dir,
            max_buffered_total: total,
            max_conns,
            skip_acked_holes,
        });
        let mut events = Vec::new();
        let mut now = 0i64;
        for (i, (pair, rev, seq, ack, flags, payload, missing, dt)) in segs.iter().enumerate() {
            let (mut src, mut dst) = (eps[*pair], eps[(*pair + 1) % 4]);
            if *rev {
                std::mem::swap(&mut src, &mut dst);
            }
            now += dt * SEC / 4; // sometimes backwards, sometimes long idle
            let seg = Segment {
                ts: Timestamp::from_nanos(now),
                src,
                dst,
                seq: *seq,
                ack: *ack,
                flags: TcpFlags::from_bits(*flags),
                payload,
                missing: *missing,
            };
            r.process(&seg, &mut events);
            if i % 17 == 0 {
                r.advance(Timestamp::from_nanos(now), &mut events);
            }
            let st = r.stats();
            prop_assert!(st.buffered_bytes <= total as u64);
            prop_assert!(r.active_conns() <= max_conns);
        }
        r.finish(&mut events);
        check_grammar(&events);
        let opened = events.iter().filter(|e| matches!(e, OwnedStreamEvent::Opened { .. })).count();
        let closed = events.iter().filter(|e| matches!(e, OwnedStreamEvent::Closed { .. })).count();
        prop_assert_eq!(opened, closed);
        let st = r.stats();
        prop_assert_eq!(st.buffered_bytes, 0);
        prop_assert_eq!(st.active_conns, 0);
        prop_assert_eq!(st.conns_opened, st.conns_closed());
        prop_assert_eq!(st.segments, segs.len() as u64);
    }
}

//! One test per reassembly behaviour, through the public API.

mod common;

use common::*;
use shadowmcp_exchange::Timestamp;
use shadowmcp_reassembly::{
    CloseReason, Direction, OwnedStreamEvent, Reassembler, ReassemblyConfig, ReassemblyStats,
    Segment, StreamEvent, TcpFlags, PIECE_OVERHEAD,
};

use Direction::{ToClient, ToServer};

#[test]
fn in_order_connection_lifecycle() {
    let mut h = Harness::new();
    h.handshake(1000, 5000);
    h.c(1001, 5001, ACK | PSH, b"GET / HTTP/1.1\r\n\r\n");
    h.s(5001, 1019, ACK | PSH, b"HTTP/1.1 200 OK\r\n\r\n");
    h.c(1019, 5020, FIN | ACK, b"");
    h.s(5020, 1020, FIN | ACK, b"");
    h.c(1020, 5021, ACK, b""); // last ACK, after close
    check_grammar(&h.events);
    let id = h.only();
    let start = Timestamp::from_nanos(1_700_000_000 * SEC);
    assert_eq!(
        h.events,
        vec![
            OwnedStreamEvent::Opened {
                conn: id,
                flow: shadowmcp_exchange::Flow {
                    id,
                    client: h.client,
                    server: h.server,
                    transport: shadowmcp_exchange::Transport::Tcp,
                },
                ts: start,
                midstream: false,
            },
            OwnedStreamEvent::Data {
                conn: id,
                dir: ToServer,
                ts: Timestamp::from_nanos(start.as_nanos() + 3_000_000),
                data: b"GET / HTTP/1.1\r\n\r\n".to_vec(),
            },
            OwnedStreamEvent::Data {
                conn: id,
                dir: ToClient,
                ts: Timestamp::from_nanos(start.as_nanos() + 4_000_000),
                data: b"HTTP/1.1 200 OK\r\n\r\n".to_vec(),
            },
            OwnedStreamEvent::Fin {
                conn: id,
                dir: ToServer
            },
            OwnedStreamEvent::Fin {
                conn: id,
                dir: ToClient
            },
            OwnedStreamEvent::Closed {
                conn: id,
                reason: CloseReason::Fin,
                ts: Timestamp::from_nanos(start.as_nanos() + 6_000_000),
            },
        ]
    );
    assert!(id < (1 << 52));
    let st = h.r.stats();
    assert_eq!(st.segments, 8);
    assert_eq!(st.bytes, 37);
    assert_eq!(st.conns_opened, 1);
    assert_eq!(st.closed_fin, 1);
    assert_eq!(st.conns_closed(), 1);
    assert_eq!(st.stray_segments, 0, "the last ACK is expected");
    assert_eq!(st.active_conns, 0);
    assert_eq!(st.buffered_bytes, 0);
    assert_eq!(st.out_of_order + st.retransmissions + st.gaps, 0);
}

#[test]
fn out_of_order_segments_are_buffered_then_delivered_in_order() {
    let mut h = Harness::new();
    h.handshake(0, 100);
    let t_late = h.now;
    h.c(11, 101, ACK, b"klmno");
    assert_eq!(
        h.r.stats().buffered_bytes,
        (5 + PIECE_OVERHEAD) as u64,
        "buffered with its bookkeeping charge"
    );
    h.c(6, 101, ACK, b"fghij");
    assert_eq!(h.stream(h.only(), ToServer), b"");
    h.c(1, 101, ACK, b"abcde");
    let id = h.only();
    assert_eq!(h.stream(id, ToServer), b"abcdefghijklmno");
    let st = h.r.stats();
    assert_eq!(st.out_of_order, 2);
    assert_eq!(st.buffered_bytes, 0);
    assert_eq!(st.gaps, 0);
    // Buffered bytes keep the capture time of the segment that brought them.
    let ts_of_klmno = h.events.iter().find_map(|e| match e {
        OwnedStreamEvent::Data { ts, data, .. } if data == b"klmno" => Some(*ts),
        _ => None,
    });
    assert_eq!(ts_of_klmno, Some(Timestamp::from_nanos(t_late)));
}

#[test]
fn retransmissions_are_dropped_and_counted() {
    let mut h = Harness::new();
    h.handshake(0, 100);
    h.c(1, 101, ACK, b"hello");
    h.c(1, 101, ACK, b"hello");
    h.c(1, 101, ACK, b"hel");
    h.c(3, 101, ACK, b"llo");
    assert_eq!(h.stream(h.only(), ToServer), b"hello");
    assert_eq!(h.r.stats().retransmissions, 3);
    assert_eq!(h.r.stats().overlaps, 0);
}

#[test]
fn overlap_with_delivered_bytes_keeps_only_new_bytes() {
    let mut h = Harness::new();
    h.handshake(0, 100);
    h.c(1, 101, ACK, b"hello");
    h.c(4, 101, ACK, b"LOworld"); // "LO" re-sends delivered "lo" (cannot be compared)
    assert_eq!(h.stream(h.only(), ToServer), b"helloworld");
    let st = h.r.stats();
    assert_eq!(st.overlaps, 1);
    assert_eq!(st.overlap_conflicts, 0);
    assert_eq!(st.retransmissions, 0);
}

#[test]
fn identical_overlap_with_buffered_bytes_is_not_a_conflict() {
    let mut h = Harness::new();
    h.handshake(0, 100);
    h.c(6, 101, ACK, b"fghij"); // buffered
    h.c(4, 101, ACK, b"defgh"); // "fgh" identical, "de" new
    h.c(1, 101, ACK, b"abc");
    assert_eq!(h.stream(h.only(), ToServer), b"abcdefghij");
    let st = h.r.stats();
    assert_eq!(st.overlaps, 1);
    assert_eq!(st.overlap_conflicts, 0);
    assert_eq!(st.buffered_bytes, 0);
}

#[test]
fn conflicting_overlap_keeps_first_data_and_counts_conflict() {
    let mut h = Harness::new();
    h.handshake(0, 100);
    h.c(6, 101, ACK, b"fghij"); // first copy of 5..10
    h.c(4, 101, ACK, b"deXYZ"); // overlaps 5..8 with different bytes
    h.c(6, 101, ACK, b"FGHIJ"); // full different copy: nothing new
    h.c(1, 101, ACK, b"abc");
    assert_eq!(h.stream(h.only(), ToServer), b"abcdefghij");
    let st = h.r.stats();
    assert_eq!(st.overlap_conflicts, 2);
    assert_eq!(st.overlaps, 1);
    assert_eq!(st.retransmissions, 1);
}

#[test]
fn in_order_segment_conflicting_with_buffered_bytes_loses() {
    let mut h = Harness::new();
    h.handshake(0, 100);
    h.c(6, 101, ACK, b"fghij");
    h.c(1, 101, ACK, b"abcdeFGH"); // in order, but 5..8 differ from the buffer
    assert_eq!(h.stream(h.only(), ToServer), b"abcdefghij");
    let st = h.r.stats();
    assert_eq!((st.overlaps, st.overlap_conflicts), (1, 1));
}

#[test]
fn hole_filler_spanning_buffered_pieces_is_delivered_without_duplicates() {
    let mut h = Harness::new();
    h.handshake(0, 100);
    h.c(6, 101, ACK, b"fg"); // 5..7
    h.c(10, 101, ACK, b"jk"); // 9..11
    h.c(1, 101, ACK, b"abcdefghijklm"); // 0..13 covers both pieces and more
    assert_eq!(h.stream(h.only(), ToServer), b"abcdefghijklm");
    assert_eq!(h.r.stats().overlaps, 1);
    assert_eq!(h.r.stats().buffered_bytes, 0);
    // Continues in order afterwards.
    h.c(14, 101, ACK, b"n");
    assert_eq!(h.stream(h.only(), ToServer), b"abcdefghijklmn");
}

#[test]
fn gap_when_per_direction_buffer_cap_is_exceeded() {
    let mut h = Harness::with(ReassemblyConfig {
        max_buffer_per_direction: 100,
        ..ReassemblyConfig::default()
    });
    h.handshake(0, 100);
    h.c(11, 101, ACK, &[b'x'; 60]); // 60 + 64 > 100: skip the 10-byte hole
    let id = h.only();
    assert_eq!(
        h.render(id, ToServer),
        format!("<gap 10>{}", "x".repeat(60))
    );
    h.c(1, 101, ACK, b"0123456789"); // the hole arrives too late
    h.c(71, 101, ACK, b"after");
    assert_eq!(
        h.render(id, ToServer),
        format!("<gap 10>{}after", "x".repeat(60))
    );
    let st = h.r.stats();
    assert_eq!((st.gaps, st.gap_bytes), (1, 10));
    assert_eq!(st.retransmissions, 1);
    assert_eq!(st.buffered_bytes, 0);
}

#[test]
fn gap_before_fin_is_skipped_once_the_receiver_acks_the_fin() {
    let mut h = Harness::new();
    h.handshake(0, 100);
    h.c(6, 101, ACK, b"fghij"); // 0..5 never captured
    h.c(11, 101, FIN | ACK, b""); // FIN at offset 10
    let id = h.only();
    assert_eq!(h.render(id, ToServer), "");
    h.s(101, 3, ACK, b""); // acks into the hole only: not enough
    assert_eq!(h.render(id, ToServer), "");
    h.s(101, 12, ACK, b""); // acks the FIN: the receiver has everything
    assert_eq!(h.render(id, ToServer), "<gap 5>fghij<fin>");
    assert_eq!(h.closed(id), None);
}

#[test]
fn acked_hole_between_data_is_skipped() {
    let mut h = Harness::new();
    h.handshake(0, 100);
    h.c(1, 101, ACK, b"abcde");
    h.c(11, 101, ACK, b"klmno"); // 5..10 lost by the capture
    h.s(101, 16, ACK, b"");
    let id = h.only();
    assert_eq!(h.render(id, ToServer), "abcde<gap 5>klmno");
    // An ACK beyond everything seen, with no data or FIN after the hole, is
    // not evidence of what the sender sent: nothing is skipped.
    h.s(101, 500, ACK, b"");
    assert_eq!(h.render(id, ToServer), "abcde<gap 5>klmno");
    assert_eq!(h.r.stats().gap_bytes, 5);
}

#[test]
fn acked_holes_wait_for_close_when_ack_skipping_is_off() {
    let mut h = Harness::with(ReassemblyConfig {
        skip_acked_holes: false,
        ..ReassemblyConfig::default()
    });
    h.handshake(0, 100);
    h.c(6, 101, ACK, b"fghij");
    h.c(11, 101, FIN | ACK, b"");
    h.s(101, 12, FIN | ACK, b"");
    let id = h.only();
    assert_eq!(h.render(id, ToServer), "");
    assert_eq!(h.render(id, ToClient), "<fin>");
    h.finish();
    assert_eq!(h.render(id, ToServer), "<gap 5>fghij<fin>");
    assert_eq!(h.closed(id), Some(CloseReason::EndOfInput));
    check_grammar(&h.events);
    // The gap and data come before Closed.
    assert!(matches!(
        h.events.last(),
        Some(OwnedStreamEvent::Closed { .. })
    ));
}

#[test]
fn fin_seen_before_the_last_data_waits_for_it() {
    let mut h = Harness::new();
    h.handshake(0, 100);
    h.c(6, 101, FIN | ACK, b"fgh"); // FIN at 8, reordered before 0..5
    h.c(1, 101, ACK, b"abcde");
    assert_eq!(h.render(h.only(), ToServer), "abcdefgh<fin>");
}

#[test]
fn data_after_fin_is_dropped() {
    let mut h = Harness::new();
    h.handshake(0, 100);
    h.c(1, 101, FIN | ACK, b"abc");
    h.c(4, 101, ACK, b"zzz");
    h.c(2, 101, ACK, b"bcXX"); // re-sends "bc", then 2 bytes past the FIN
    assert_eq!(h.render(h.only(), ToServer), "abc<fin>");
    assert_eq!(h.r.stats().out_of_window, 2);
}

#[test]
fn snaplen_missing_bytes_become_gaps() {
    let mut h = Harness::new();
    h.handshake(0, 100);
    h.send(true, 1, 101, ACK, b"abc", 7); // 3 captured, 7 cut
    h.c(11, 101, ACK, b"next");
    let id = h.only();
    assert_eq!(h.render(id, ToServer), "abc<gap 7>next");
    // Out of order with missing bytes: the cut part waits its turn.
    h.send(true, 20, 101, ACK, b"xyz", 2); // 19..24
    h.c(15, 101, ACK, b"01234"); // 14..19
    h.c(25, 101, ACK, b"end");
    assert_eq!(h.render(id, ToServer), "abc<gap 7>next01234xyz<gap 2>end");
    assert_eq!(h.r.stats().gap_bytes, 9);
}

#[test]
fn midstream_pickup_orients_by_port() {
    let mut h = Harness::new();
    // First segment seen goes server → client.
    h.s(7000, 300, ACK | PSH, b"HTTP/1.1 200 OK\r\n");
    h.c(300, 7017, ACK | PSH, b"GET /next HTTP/1.1\r\n");
    let id = h.only();
    match &h.events[0] {
        OwnedStreamEvent::Opened {
            flow, midstream, ..
        } => {
            assert!(*midstream);
            assert_eq!(flow.client, h.client);
            assert_eq!(flow.server, h.server);
        }
        e => panic!("unexpected {e:?}"),
    }
    assert_eq!(h.stream(id, ToClient), b"HTTP/1.1 200 OK\r\n");
    assert_eq!(h.stream(id, ToServer), b"GET /next HTTP/1.1\r\n");
    assert_eq!(h.r.stats().conns_midstream, 1);

    // Both ports unlisted and high: the lower port is the server.
    let mut h = Harness::new();
    h.client = addr("10.0.0.1:51000");
    h.server = addr("10.0.0.2:12345");
    h.c(1, 1, ACK, b"x");
    match &h.events[0] {
        OwnedStreamEvent::Opened { flow, .. } => assert_eq!(flow.server, h.server),
        e => panic!("unexpected {e:?}"),
    }
}

#[test]
fn bytes_from_before_a_midstream_pickup_are_old() {
    let mut h = Harness::new();
    h.c(1000, 1, ACK, b"world"); // pickup at seq 1000
    h.c(990, 1, ACK, b"0123456789"); // entirely before the pickup
    h.c(995, 1, ACK, b"56789world!"); // straddles it: only "!" is new
    assert_eq!(h.stream(h.only(), ToServer), b"world!");
    let st = h.r.stats();
    assert_eq!(st.retransmissions, 1);
    assert_eq!(st.overlaps, 1);
}

#[test]
fn pure_ack_pickup_then_data() {
    let mut h = Harness::new();
    h.c(500, 900, ACK, b"");
    h.c(500, 900, ACK | PSH, b"GET");
    assert_eq!(h.stream(h.only(), ToServer), b"GET");
    assert_eq!(h.r.stats().buffered_bytes, 0);
}

#[test]
fn syn_ack_without_syn_is_not_midstream() {
    let mut h = Harness::new();
    h.s(5000, 1001, SYN | ACK, b"");
    h.c(1001, 5001, ACK | PSH, b"GET");
    let id = h.only();
    match &h.events[0] {
        OwnedStreamEvent::Opened {
            flow, midstream, ..
        } => {
            assert!(!*midstream);
            assert_eq!(flow.client, h.client);
        }
        e => panic!("unexpected {e:?}"),
    }
    assert_eq!(h.stream(id, ToServer), b"GET");
}

#[test]
fn syn_payload_tcp_fast_open_is_delivered() {
    let mut h = Harness::new();
    h.c(1000, 0, SYN, b"GET");
    h.s(5000, 1004, SYN | ACK, b"");
    h.c(1004, 5001, ACK, b" /");
    assert_eq!(h.stream(h.only(), ToServer), b"GET /");
}

#[test]
fn sequence_wraparound() {
    let mut h = Harness::new();
    let m = u32::MAX;
    h.handshake(m - 3, m - 1);
    // Client data occupies MAX-2, MAX-1, MAX, 0, 1, ...
    h.c(0, m, ACK, b"def"); // after the wrap, arrives first
    h.c(m - 2, m, ACK, b"abc");
    h.c(3, m, ACK, b"ghi");
    // Server data starts at MAX and wraps within one segment.
    h.s(m, 6, ACK, b"0123");
    h.s(3, 6, ACK, b"45");
    h.c(6, 5, FIN | ACK, b"");
    h.s(5, 7, FIN | ACK, b"");
    let id = h.only();
    assert_eq!(h.render(id, ToServer), "abcdefghi<fin>");
    assert_eq!(h.render(id, ToClient), "012345<fin>");
    assert_eq!(h.closed(id), Some(CloseReason::Fin));
    assert_eq!(h.r.stats().gaps, 0);
}

#[test]
fn rst_flushes_and_closes_then_late_segments_are_stray() {
    let mut h = Harness::new();
    h.handshake(0, 100);
    h.c(1, 101, ACK, b"abc");
    h.c(6, 101, ACK, b"fghij"); // hole 3..5
    h.s(101, 1, RST | ACK, b"");
    let id = h.only();
    assert_eq!(h.render(id, ToServer), "abc<gap 2>fghij");
    assert_eq!(h.closed(id), Some(CloseReason::Rst));
    check_grammar(&h.events);
    let n = h.events.len();
    h.c(11, 101, ACK, b"more"); // after the RST: ignored
    h.s(101, 11, ACK, b""); // pure ACK: ignored silently
    assert_eq!(h.events.len(), n);
    assert_eq!(h.r.stats().stray_segments, 1);
    assert_eq!(h.r.stats().closed_rst, 1);
    // Once the closed tuple is forgotten, a segment starts a new pickup.
    h.now += 31 * SEC;
    h.c(11, 101, ACK, b"more");
    let ids = h.ids();
    assert_eq!(ids.len(), 2);
    assert_ne!(ids[0], ids[1]);
    assert_eq!(h.stream(ids[1], ToServer), b"more");
}

#[test]
fn rst_far_outside_the_window_is_ignored() {
    let mut h = Harness::new();
    h.handshake(0, 100);
    h.s(100 + (1 << 25), 1, RST, b"");
    h.c(1, 101, ACK, b"abc");
    let id = h.only();
    assert_eq!(h.closed(id), None);
    assert_eq!(h.stream(id, ToServer), b"abc");
    assert_eq!(h.r.stats().out_of_window, 1);
}

#[test]
fn rst_for_unknown_tuple_opens_nothing() {
    let mut h = Harness::new();
    h.c(5, 0, RST, b"");
    assert!(h.events.is_empty());
    assert_eq!(h.r.stats().stray_segments, 1);
    assert_eq!(h.r.active_conns(), 0);
}

#[test]
fn new_syn_after_fin_close_starts_a_new_connection() {
    let mut h = Harness::new();
    h.handshake(1000, 5000);
    h.c(1001, 5001, ACK, b"one");
    h.c(1004, 5001, FIN | ACK, b"");
    h.s(5001, 1005, FIN | ACK, b"");
    h.c(1000, 0, SYN, b""); // late copy of the old SYN: not a new connection
    assert_eq!(h.ids().len(), 1);
    h.handshake(9000, 7000);
    h.c(9001, 7001, ACK, b"two");
    let ids = h.ids();
    assert_eq!(ids.len(), 2);
    assert_ne!(ids[0], ids[1]);
    assert_eq!(h.closed(ids[0]), Some(CloseReason::Fin));
    assert_eq!(h.stream(ids[0], ToServer), b"one");
    assert_eq!(h.stream(ids[1], ToServer), b"two");
    check_grammar(&h.events);
}

#[test]
fn new_syn_on_open_connection_supersedes_it() {
    let mut h = Harness::new();
    h.handshake(1000, 5000);
    h.c(1001, 5001, ACK, b"abc");
    h.c(7777, 0, SYN, b"");
    let ids = h.ids();
    assert_eq!(ids.len(), 2);
    assert_eq!(h.closed(ids[0]), Some(CloseReason::Reused));
    assert_eq!(h.r.stats().closed_reused, 1);

    // Half-closed (one FIN seen): the old connection ended by FIN.
    let mut h = Harness::new();
    h.handshake(1000, 5000);
    h.c(1001, 5001, FIN | ACK, b"");
    h.c(8888, 0, SYN, b"");
    let ids = h.ids();
    assert_eq!(ids.len(), 2);
    assert_eq!(h.render(ids[0], ToServer), "<fin>");
    assert_eq!(h.closed(ids[0]), Some(CloseReason::Fin));
    // A retransmitted SYN with the same ISN stays in the new connection.
    h.c(8888, 0, SYN, b"");
    assert_eq!(h.ids().len(), 2);
    check_grammar(&h.events);
}

#[test]
fn idle_timeout_closes_after_flushing() {
    let mut h = Harness::new();
    h.handshake(0, 100);
    h.c(1, 101, ACK, b"abc");
    h.c(6, 101, ACK, b"fg"); // hole 3..5
    let last = h.now - 1_000_000;
    let id = h.only();
    h.r.advance(Timestamp::from_nanos(last + 119 * SEC), &mut h.events);
    assert_eq!(h.closed(id), None);
    h.r.advance(Timestamp::from_nanos(last + 121 * SEC), &mut h.events);
    assert_eq!(h.render(id, ToServer), "abc<gap 2>fg");
    assert_eq!(
        h.events.last(),
        Some(&OwnedStreamEvent::Closed {
            conn: id,
            reason: CloseReason::Timeout,
            ts: Timestamp::from_nanos(last + 120 * SEC),
        })
    );
    assert_eq!(h.r.stats().closed_timeout, 1);
    assert_eq!(h.r.active_conns(), 0);
}

#[test]
fn activity_postpones_the_timeout_and_segments_drive_the_clock() {
    let mut h = Harness::new();
    h.handshake(0, 100);
    let id = h.only();
    h.now += 100 * SEC;
    h.c(1, 101, ACK, b"abc"); // still alive at +100 s
    h.now += 100 * SEC;
    h.s(101, 4, ACK, b"ok"); // +200 s overall, 100 s idle: still open
    assert_eq!(h.closed(id), None);
    // A segment of another connection 121 s later closes it first.
    h.now += 121 * SEC;
    h.client = addr("10.0.0.9:40000");
    h.c(1, 1, ACK, b"x");
    let ids = h.ids();
    assert_eq!(ids.len(), 2);
    let closed_at = h
        .events
        .iter()
        .position(|e| matches!(e, OwnedStreamEvent::Closed { conn, .. } if *conn == id))
        .unwrap();
    let opened_at = h
        .events
        .iter()
        .position(|e| matches!(e, OwnedStreamEvent::Opened { conn, .. } if *conn == ids[1]))
        .unwrap();
    assert!(closed_at < opened_at);
    assert_eq!(h.closed(id), Some(CloseReason::Timeout));
}

#[test]
fn global_buffer_cap_evicts_oldest_idle_connections() {
    let cap = 1000;
    let mut h = Harness::with(ReassemblyConfig {
        max_buffered_total: cap,
        ..ReassemblyConfig::default()
    });
    let cost = (200 + PIECE_OVERHEAD) as u64;
    for i in 0..10u16 {
        h.client = addr(&format!("10.0.1.{}:40000", i + 1));
        h.handshake(0, 100);
        h.c(11, 101, ACK, &[b'a' + i as u8; 200]); // hole 0..10
        assert!(h.r.stats().buffered_bytes <= cap as u64);
    }
    let ids = h.ids();
    let st = h.r.stats();
    // Each conn adds 264 bytes; from the 4th on, each new one pushes the
    // total over 1000 and the oldest is evicted (down to <= 875).
    assert_eq!(st.evictions, 7);
    assert_eq!(st.buffered_bytes, 3 * cost);
    assert_eq!(st.active_conns, 3);
    for (i, id) in ids.iter().enumerate() {
        if i < 7 {
            assert_eq!(h.closed(*id), Some(CloseReason::Evicted), "conn {i}");
            let fill = ((b'a' + i as u8) as char).to_string().repeat(200);
            assert_eq!(h.render(*id, ToServer), format!("<gap 10>{fill}"));
        } else {
            assert_eq!(h.closed(*id), None, "conn {i}");
        }
    }
    check_grammar(&h.events);
}

#[test]
fn connection_cap_forgets_closed_tuples_before_evicting_open_ones() {
    let mut h = Harness::with(ReassemblyConfig {
        max_conns: 2,
        ..ReassemblyConfig::default()
    });
    // Conn A closes by RST (lingers), conn B stays open.
    h.handshake(0, 100);
    h.s(101, 1, RST, b"");
    h.client = addr("10.0.0.3:40000");
    h.handshake(0, 100);
    // Conn C: the lingering A is forgotten, B survives.
    h.client = addr("10.0.0.4:40000");
    h.handshake(0, 100);
    assert_eq!(h.r.stats().evictions, 0);
    assert_eq!(h.r.active_conns(), 2);
    // Conn D: now B, the idlest open one, is evicted.
    h.client = addr("10.0.0.5:40000");
    h.handshake(0, 100);
    let ids = h.ids();
    assert_eq!(h.closed(ids[1]), Some(CloseReason::Evicted));
    assert_eq!(h.closed(ids[2]), None);
    assert_eq!(h.r.stats().evictions, 1);
}

#[test]
fn segments_of_an_evicted_connection_start_a_new_pickup() {
    let mut h = Harness::with(ReassemblyConfig {
        max_conns: 1,
        ..ReassemblyConfig::default()
    });
    h.handshake(0, 100);
    let server = h.server;
    let client = h.client;
    h.client = addr("10.0.0.3:40000");
    h.handshake(0, 100); // evicts the first connection
    h.client = client;
    h.server = server;
    h.c(1, 101, ACK, b"late");
    let ids = h.ids();
    assert_eq!(ids.len(), 3);
    assert_eq!(h.closed(ids[0]), Some(CloseReason::Evicted));
    assert_eq!(h.closed(ids[1]), Some(CloseReason::Evicted));
    assert_eq!(h.stream(ids[2], ToServer), b"late");
    match &h.events[h.events.len() - 2] {
        OwnedStreamEvent::Opened { midstream, .. } => assert!(*midstream),
        e => panic!("unexpected {e:?}"),
    }
    check_grammar(&h.events);
}

#[test]
fn syn_flood_stays_within_the_connection_cap() {
    let max_conns = 1000;
    let mut r = Reassembler::new(ReassemblyConfig {
        max_conns,
        ..ReassemblyConfig::default()
    });
    let server = addr("10.0.0.2:443");
    let (mut opened, mut evicted) = (0u64, 0u64);
    let mut sink = |e: StreamEvent<'_>| match e {
        StreamEvent::Opened { .. } => opened += 1,
        StreamEvent::Closed {
            reason: CloseReason::Evicted,
            ..
        } => evicted += 1,
        other => panic!("unexpected {other:?}"),
    };
    let n = 100_000u32;
    let mut last_client = server;
    for i in 0..n {
        last_client = std::net::SocketAddr::new(
            std::net::Ipv4Addr::from(0x0a00_0000 + i / 1000).into(),
            (20_000 + i % 1000) as u16,
        );
        let seg = Segment {
            ts: Timestamp::from_nanos(i64::from(i) * 1000),
            src: last_client,
            dst: server,
            seq: i.wrapping_mul(2_654_435_761),
            ack: 0,
            flags: TcpFlags::from_bits(SYN),
            payload: b"",
            missing: 0,
        };
        r.process(&seg, &mut sink);
    }
    assert_eq!(opened, u64::from(n));
    assert_eq!(evicted, u64::from(n) - max_conns as u64);
    let st = r.stats();
    assert_eq!(st.evictions, u64::from(n) - max_conns as u64);
    assert_eq!(st.active_conns, max_conns as u64);
    assert_eq!(st.buffered_bytes, 0);
    assert!(
        r.memory_estimate() < 1 << 20,
        "memory estimate {} bytes",
        r.memory_estimate()
    );
    // The newest connections survived: the SYN+ACK of the last SYN finds its
    // connection (no new Opened, no eviction).
    let mut events = Vec::new();
    let seg = Segment {
        ts: Timestamp::from_nanos(i64::from(n) * 1000),
        src: server,
        dst: last_client,
        seq: 1,
        ack: (n - 1).wrapping_mul(2_654_435_761).wrapping_add(1),
        flags: TcpFlags::from_bits(SYN | ACK),
        payload: b"",
        missing: 0,
    };
    r.process(&seg, &mut events);
    assert!(events.is_empty(), "{events:?}");
}

#[test]
fn idle_connections_are_small() {
    let mut r = Reassembler::default();
    let server = addr("10.0.0.2:443");
    let mut sink = |_e: StreamEvent<'_>| {};
    for i in 0..20_000u32 {
        let seg = Segment {
            ts: Timestamp::from_nanos(i64::from(i)),
            src: std::net::SocketAddr::new(
                std::net::Ipv6Addr::from(0x2001_0db8_u128 << 96 | u128::from(i)).into(),
                40_000,
            ),
            dst: server,
            seq: i,
            ack: 0,
            flags: TcpFlags::from_bits(SYN),
            payload: b"",
            missing: 0,
        };
        r.process(&seg, &mut sink);
    }
    assert_eq!(r.active_conns(), 20_000);
    let per_conn = r.memory_estimate() / r.active_conns();
    assert!(per_conn < 512, "{per_conn} bytes per idle connection");
}

#[test]
fn finish_closes_everything_in_open_order() {
    let mut h = Harness::new();
    h.handshake(0, 100);
    h.client = addr("10.0.0.7:40000");
    h.handshake(0, 100);
    h.c(3, 101, ACK, b"x"); // hole 0..2
    h.finish();
    let ids = h.ids();
    let closes: Vec<_> = h
        .events
        .iter()
        .filter_map(|e| match e {
            OwnedStreamEvent::Closed { conn, reason, ts } => Some((*conn, *reason, *ts)),
            _ => None,
        })
        .collect();
    let end = Timestamp::from_nanos(h.now - 1_000_000);
    assert_eq!(
        closes,
        vec![
            (ids[0], CloseReason::EndOfInput, end),
            (ids[1], CloseReason::EndOfInput, end)
        ]
    );
    assert_eq!(h.render(ids[1], ToServer), "<gap 2>x");
    assert_eq!(h.r.active_conns(), 0);
    assert_eq!(h.r.stats().closed_end_of_input, 2);
    check_grammar(&h.events);
}

#[test]
fn resync_after_a_capture_outage_longer_than_any_window() {
    let mut h = Harness::new();
    h.handshake(0, 100);
    h.c(1, 101, ACK, b"abc");
    let far: u32 = 0x8000_0000;
    for k in 0..8u32 {
        h.c(far + 3 * k, 101, ACK, b"xyz");
    }
    let id = h.only();
    let jump = u64::from(far + 21 - 4);
    assert_eq!(h.render(id, ToServer), format!("abc<gap {jump}>xyz"));
    h.c(far + 24, 101, ACK, b"!");
    assert_eq!(h.render(id, ToServer), format!("abc<gap {jump}>xyz!"));
    let st = h.r.stats();
    assert_eq!(st.resyncs, 1);
    assert_eq!(st.out_of_window, 8);
}

#[test]
fn flow_ids_do_not_depend_on_other_flows() {
    fn run(with_other: bool) -> u64 {
        let mut h = Harness::new();
        let other = addr("10.9.9.9:50000");
        let a_client = h.client;
        if with_other {
            h.client = other;
            h.handshake(0, 100);
        }
        h.now = 1_700_000_010 * SEC;
        h.client = a_client;
        h.c(10, 0, SYN, b"");
        if with_other {
            h.client = other;
            h.c(1, 101, ACK, b"noise");
        }
        let ids = h.ids();
        assert_eq!(ids.len(), 1 + usize::from(with_other));
        ids[usize::from(with_other)]
    }
    assert_eq!(run(false), run(true));
}

#[test]
fn stats_merge_adds_every_field() {
    let a = ReassemblyStats {
        segments: 1,
        bytes: 2,
        gaps: 3,
        buffered_bytes: 4,
        active_conns: 5,
        overlap_conflicts: 6,
        ..ReassemblyStats::default()
    };
    let mut b = a;
    b.merge(&a);
    assert_eq!(
        b,
        ReassemblyStats {
            segments: 2,
            bytes: 4,
            gaps: 6,
            buffered_bytes: 8,
            active_conns: 10,
            overlap_conflicts: 12,
            ..ReassemblyStats::default()
        }
    );
}

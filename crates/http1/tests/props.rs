mod common;

use common::*;
use proptest::prelude::*;
use shadowmcp_exchange::Record;
use shadowmcp_http1::{Direction, Http1Config, SseParser};

/// Delivers both streams in pieces of the given sizes, interleaved by
/// `order`, never sending bytes of response `i` before request `i` is
/// complete (a server cannot answer what it has not received).
fn interleaved(sizes: &[usize], order: &[bool]) -> Vec<Record> {
    let (qparts, rparts) = pipelined_parts();
    let req: Vec<u8> = qparts.concat();
    let resp: Vec<u8> = rparts.concat();
    let req_ends: Vec<usize> = qparts
        .iter()
        .scan(0, |acc, p| {
            *acc += p.len();
            Some(*acc)
        })
        .collect();
    let resp_ends: Vec<usize> = rparts
        .iter()
        .scan(0, |acc, p| {
            *acc += p.len();
            Some(*acc)
        })
        .collect();
    let mut c = conn();
    let mut out = Vec::new();
    let (mut qp, mut rp) = (0usize, 0usize);
    let mut i = 0usize;
    while qp < req.len() || rp < resp.len() {
        let size = sizes[i % sizes.len()].max(1);
        let want_resp = order[i % order.len()];
        i += 1;
        let answered = req_ends.iter().filter(|&&e| e <= qp).count();
        let resp_limit = if answered == 0 {
            0
        } else {
            resp_ends[answered - 1]
        };
        if (want_resp || qp == req.len()) && rp < resp_limit {
            let end = (rp + size).min(resp_limit);
            c.on_data(Direction::ToClient, ts(2), &resp[rp..end], &mut out);
            rp = end;
        } else if qp < req.len() {
            let end = (qp + size).min(req.len());
            c.on_data(Direction::ToServer, ts(1), &req[qp..end], &mut out);
            qp = end;
        }
    }
    c.on_close(ts(3), &mut out);
    out
}

fn op_strategy() -> impl Strategy<Value = (u8, bool, Vec<u8>)> {
    (
        0u8..10,
        any::<bool>(),
        proptest::collection::vec(any::<u8>(), 0..64),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn any_split_and_causal_interleaving_gives_the_same_exchanges(
        sizes in proptest::collection::vec(1usize..40, 1..20),
        order in proptest::collection::vec(any::<bool>(), 1..20),
    ) {
        let (req, resp) = pipelined_mix();
        let want = normalize(&run(&mut conn(), &req, &resp, usize::MAX));
        let got = normalize(&interleaved(&sizes, &order));
        // Timestamps differ with the interleaving only in SSE update ts,
        // which normalize drops.
        prop_assert_eq!(got, want);
    }

    #[test]
    fn sse_events_do_not_depend_on_splits(
        cuts in proptest::collection::vec(0usize..400, 0..12),
    ) {
        let stream = b"\xef\xbb\xbfevent: a\r\ndata: 1\r\n\r\n: c\n\ndata: 2\rdata: 3\r\r\nid: x\ndata\n\nretry: 10\ndata: {}\n\n";
        let mut whole = SseParser::new(1 << 20);
        whole.feed(stream);
        let want = whole.take_events();
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (stream.len() + 1)).collect();
        cuts.sort_unstable();
        let mut p = SseParser::new(1 << 20);
        let mut got = Vec::new();
        let mut prev = 0;
        for c in cuts.into_iter().chain([stream.len()]) {
            p.feed(&stream[prev..c]);
            got.extend(p.take_events());
            prev = c;
        }
        prop_assert_eq!(want.len(), 4);
        prop_assert_eq!(got, want);
    }

    #[test]
    fn random_input_never_panics_and_stays_bounded(
        midstream in any::<bool>(),
        ops in proptest::collection::vec(op_strategy(), 0..60),
    ) {
        let config = Http1Config {
            max_body: 512,
            max_header_bytes: 256,
            max_sse_event_bytes: 128,
            max_held_bytes: 128,
            max_resync_line: 256,
            max_pending_requests: 4,
            ..Http1Config::default()
        };
        let mut c = conn_with(midstream, config);
        let mut out = Vec::new();
        // Mix random bytes with fragments of valid messages so the parser
        // gets deep into its states.
        let (req, resp) = pipelined_mix();
        for (kind, to_server, bytes) in ops {
            let dir = if to_server { Direction::ToServer } else { Direction::ToClient };
            match kind {
                0 => c.on_gap(dir, u64::from(bytes.len() as u8) * 3 + 1, &mut out),
                1 => c.on_fin(dir, ts(5), &mut out),
                2..=4 => c.on_data(dir, ts(4), &bytes, &mut out),
                _ => {
                    let src = if to_server { &req } else { &resp };
                    let start = bytes.first().map_or(0, |&b| usize::from(b) * src.len() / 256);
                    let end = (start + bytes.len() * 4).min(src.len());
                    c.on_data(dir, ts(4), &src[start..end], &mut out);
                }
            }
            prop_assert!(c.buffered_bytes() <= 8 * 1024, "{}", c.buffered_bytes());
        }
        c.on_close(ts(6), &mut out);
        // Ids unique, updates after their exchange, every stream ended.
        normalize(&out);
        prop_assert_eq!(c.stats().exchanges as usize, out.iter().filter(|r| matches!(r, Record::Exchange(_))).count());
    }

    #[test]
    fn mutated_messages_never_panic(
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
        step in 1usize..50,
    ) {
        let (mut req, mut resp) = pipelined_mix();
        for (i, (pos, val)) in flips.into_iter().enumerate() {
            let target = if i % 2 == 0 { &mut req } else { &mut resp };
            let n = target.len();
            target[pos % n] = val;
        }
        let out = run(&mut conn(), &req, &resp, step);
        let exchanges = normalize(&out);
        prop_assert!(exchanges.len() <= 16);
    }
}

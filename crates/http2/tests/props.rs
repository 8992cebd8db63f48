//! Property tests: any segmentation of a realistic conversation gives the
//! same records (and the right ones); hostile bytes never panic and never
//! grow memory past the caps.

mod common;

use common::*;
use proptest::prelude::*;
use shadowmcp_exchange::Record;
use shadowmcp_http2::testutil::{flag, frame, kind, padded, HpackEncoder, PREFACE};
use shadowmcp_http2::{Connection, Direction, Http2Config};

#[derive(Clone, Debug)]
struct StreamSpec {
    post: bool,
    req_body: Vec<u8>,
    status: u16,
    sse: bool,
    resp_body: Vec<u8>,
    /// Pieces to cut bodies into.
    pieces: usize,
    /// Padding for DATA frames (0: unpadded).
    pad: u8,
    /// Header blocks are split into this many frames (HEADERS +
    /// CONTINUATIONs).
    block_frames: usize,
    extra_header: String,
}

fn stream_spec() -> impl Strategy<Value = StreamSpec> {
    (
        any::<bool>(),
        proptest::collection::vec(b'a'..=b'z', 0..200),
        prop::sample::select(vec![200u16, 201, 404, 500]),
        any::<bool>(),
        proptest::collection::vec(b' '..=b'~', 0..300),
        1usize..4,
        prop::sample::select(vec![0u8, 0, 1, 9]),
        1usize..4,
        "[a-z0-9]{0,40}",
    )
        .prop_map(
            |(post, req_body, status, sse, resp_body, pieces, pad, block_frames, extra)| {
                StreamSpec {
                    post,
                    req_body: if post { req_body } else { Vec::new() },
                    status,
                    sse,
                    resp_body,
                    pieces,
                    pad,
                    block_frames,
                    extra_header: extra,
                }
            },
        )
}

/// One frame of the conversation, in global order.
struct Piece {
    dir: Direction,
    bytes: Vec<u8>,
}

fn sse_body(spec: &StreamSpec) -> Vec<u8> {
    // Events whose data are the printable body cut in lines of 20.
    let mut out = Vec::new();
    for chunk in spec.resp_body.chunks(20) {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\n\n");
    }
    out
}

fn event_texts(spec: &StreamSpec) -> Vec<String> {
    spec.resp_body
        .chunks(20)
        // "data: " + chunk: the parser drops only the space after the colon.
        .map(|c| String::from_utf8(c.to_vec()).unwrap())
        .collect()
}

fn header_frames(id: u32, block: &[u8], frames: usize, end_stream: bool) -> Vec<u8> {
    let size = block.len().div_ceil(frames).max(1);
    let parts: Vec<&[u8]> = if block.is_empty() {
        vec![block]
    } else {
        block.chunks(size).collect()
    };
    let mut out = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        let mut flags = if last { flag::END_HEADERS } else { 0 };
        let k = if i == 0 {
            if end_stream {
                flags |= flag::END_STREAM;
            }
            kind::HEADERS
        } else {
            kind::CONTINUATION
        };
        out.extend(frame(k, flags, id, p));
    }
    out
}

fn data_frames(id: u32, body: &[u8], pieces: usize, pad: u8) -> Vec<Vec<u8>> {
    let size = body.len().div_ceil(pieces).max(1);
    let parts: Vec<&[u8]> = body.chunks(size).collect();
    let n = parts.len();
    parts
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            let end = if i + 1 == n { flag::END_STREAM } else { 0 };
            if pad > 0 {
                frame(kind::DATA, end | flag::PADDED, id, &padded(p, pad))
            } else {
                frame(kind::DATA, end, id, p)
            }
        })
        .collect()
}

/// Builds the conversation: streams interleaved by `order` (each value
/// picks the stream whose next step comes), a stream's response after its
/// request, HPACK encoded in wire order with the dynamic table.
fn conversation(specs: &[StreamSpec], order: &[usize], huffman: bool) -> Vec<Piece> {
    let mut ce = HpackEncoder::new(huffman);
    let mut se = HpackEncoder::new(huffman);
    let mut pieces = vec![
        Piece {
            dir: C,
            bytes: client_start(),
        },
        Piece {
            dir: S,
            bytes: server_start(),
        },
    ];
    // Steps per stream: 0 = request head, then request DATA frames,
    // then response head, then response DATA frames.
    let nreq: Vec<usize> = specs
        .iter()
        .map(|s| {
            s.req_body
                .len()
                .div_ceil(s.req_body.len().div_ceil(s.pieces).max(1))
        })
        .collect();
    let nresp: Vec<usize> = specs
        .iter()
        .map(|s| {
            let len = if s.sse {
                sse_body(s).len()
            } else {
                s.resp_body.len()
            };
            len.div_ceil(len.div_ceil(s.pieces).max(1))
        })
        .collect();
    let total: Vec<usize> = (0..specs.len()).map(|i| 2 + nreq[i] + nresp[i]).collect();
    // The interleaving, then stream ids in the order streams open (a
    // client must open streams in increasing id order).
    let mut step = vec![0usize; specs.len()];
    let mut seq = Vec::new();
    let mut ids = vec![0u32; specs.len()];
    let mut next_id = 1;
    let mut pick = order.iter().cycle();
    loop {
        let live: Vec<usize> = (0..specs.len()).filter(|&i| step[i] < total[i]).collect();
        if live.is_empty() {
            break;
        }
        let i = live[pick.next().copied().unwrap_or(0) % live.len()];
        if step[i] == 0 {
            ids[i] = next_id;
            next_id += 2;
        }
        seq.push((i, step[i]));
        step[i] += 1;
    }
    let mut req_frames: Vec<Vec<Vec<u8>>> = Vec::new();
    let mut resp_frames: Vec<Vec<Vec<u8>>> = Vec::new();
    for (i, s) in specs.iter().enumerate() {
        let id = ids[i];
        req_frames.push(if s.req_body.is_empty() {
            Vec::new()
        } else {
            data_frames(id, &s.req_body, s.pieces, s.pad)
        });
        let body = if s.sse {
            sse_body(s)
        } else {
            s.resp_body.clone()
        };
        resp_frames.push(if body.is_empty() {
            Vec::new()
        } else {
            data_frames(id, &body, s.pieces, s.pad)
        });
        assert_eq!(req_frames[i].len(), nreq[i]);
        assert_eq!(resp_frames[i].len(), nresp[i]);
    }
    for (i, k) in seq {
        let s = &specs[i];
        let id = ids[i];
        let nreq = nreq[i];
        if k == 0 {
            let path = format!("/s{i}");
            let mut f = vec![
                (":method", if s.post { "POST" } else { "GET" }),
                (":scheme", "https"),
                (":authority", "mcp.example.com"),
                (":path", path.as_str()),
                ("x-extra", s.extra_header.as_str()),
            ];
            if s.post {
                f.push(("content-type", "application/json"));
            }
            let block = ce.encode(&f);
            pieces.push(Piece {
                dir: C,
                bytes: header_frames(id, &block, s.block_frames, nreq == 0),
            });
        } else if k <= nreq {
            pieces.push(Piece {
                dir: C,
                bytes: req_frames[i][k - 1].clone(),
            });
        } else if k == nreq + 1 {
            let status = s.status.to_string();
            let mut f = vec![
                (":status", status.as_str()),
                ("x-extra", s.extra_header.as_str()),
            ];
            if s.sse {
                f.push(("content-type", "text/event-stream"));
            }
            let block = se.encode(&f);
            pieces.push(Piece {
                dir: S,
                bytes: header_frames(id, &block, s.block_frames, resp_frames[i].is_empty()),
            });
        } else {
            pieces.push(Piece {
                dir: S,
                bytes: resp_frames[i][k - nreq - 2].clone(),
            });
        }
    }
    pieces
}

/// Feeds frame by frame in global order.
fn feed_reference(pieces: &[Piece]) -> Vec<Record> {
    let mut c = conn();
    let mut out = Vec::new();
    for p in pieces {
        c.on_data(p.dir, ts(), &p.bytes, &mut out);
    }
    c.on_close(ts(), &mut out);
    out
}

/// Feeds each direction cut at arbitrary points, interleaving the two
/// directions at random but never feeding a byte before the bytes of the
/// other direction that came before it on the wire (a frame of one side
/// may still be cut anywhere while the other side moves on).
fn feed_segmented(pieces: &[Piece], cuts: &[usize], choices: &[bool]) -> Vec<Record> {
    // Per direction: bytes, and for each frame its end offset and how many
    // bytes of the other direction must be fed before it.
    let mut bytes: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
    let mut frames: [Vec<(usize, usize)>; 2] = [Vec::new(), Vec::new()];
    for p in pieces {
        let d = idx(p.dir);
        let need = bytes[1 - d].len();
        bytes[d].extend_from_slice(&p.bytes);
        frames[d].push((bytes[d].len(), need));
    }
    let mut fed = [0usize, 0usize];
    let mut c = conn();
    let mut out = Vec::new();
    let mut cut = cuts.iter().cycle();
    let mut choice = choices.iter().cycle();
    while fed[0] < bytes[0].len() || fed[1] < bytes[1].len() {
        let allowed = |d: usize, fed: &[usize; 2]| -> usize {
            // End of the last frame of `d` whose prerequisites are fed.
            let mut end = fed[d];
            for &(frame_end, need) in &frames[d] {
                if frame_end <= fed[d] {
                    continue;
                }
                if need > fed[1 - d] {
                    break;
                }
                end = frame_end;
            }
            end
        };
        let mut d = if *choice.next().unwrap_or(&true) {
            0
        } else {
            1
        };
        if allowed(d, &fed) == fed[d] {
            d = 1 - d;
        }
        let limit = allowed(d, &fed);
        assert!(limit > fed[d], "scheduler stuck");
        let n = (*cut.next().unwrap_or(&1)).clamp(1, limit - fed[d]);
        let dir = if d == 0 { C } else { S };
        c.on_data(dir, ts(), &bytes[d][fed[d]..fed[d] + n], &mut out);
        fed[d] += n;
    }
    c.on_close(ts(), &mut out);
    out
}

/// Feeds each direction cut at arbitrary points, the two directions
/// interleaved at random with no regard for which came first.
fn feed_unordered(pieces: &[Piece], cuts: &[usize], choices: &[bool]) -> Vec<Record> {
    let mut bytes: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
    for p in pieces {
        bytes[idx(p.dir)].extend_from_slice(&p.bytes);
    }
    let mut fed = [0usize, 0usize];
    let mut c = conn();
    let mut out = Vec::new();
    let mut cut = cuts.iter().cycle();
    let mut choice = choices.iter().cycle();
    while fed[0] < bytes[0].len() || fed[1] < bytes[1].len() {
        let mut d = if *choice.next().unwrap_or(&true) {
            0
        } else {
            1
        };
        if fed[d] == bytes[d].len() {
            d = 1 - d;
        }
        let n = (*cut.next().unwrap_or(&1)).clamp(1, bytes[d].len() - fed[d]);
        let dir = if d == 0 { C } else { S };
        c.on_data(dir, ts(), &bytes[d][fed[d]..fed[d] + n], &mut out);
        fed[d] += n;
    }
    c.on_close(ts(), &mut out);
    out
}

fn idx(d: Direction) -> usize {
    match d {
        Direction::ToServer => 0,
        Direction::ToClient => 1,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn any_segmentation_gives_the_same_records(
        specs in proptest::collection::vec(stream_spec(), 1..6),
        order in proptest::collection::vec(any::<usize>(), 1..40),
        huffman in any::<bool>(),
        cuts in proptest::collection::vec(1usize..64, 1..50),
        choices in proptest::collection::vec(any::<bool>(), 1..50),
    ) {
        let pieces = conversation(&specs, &order, huffman);
        let reference = fold(&feed_reference(&pieces));
        // The reference is right.
        prop_assert_eq!(reference.len(), specs.len());
        for (i, spec) in specs.iter().enumerate() {
            let path = format!("/s{i}");
            let f = reference
                .values()
                .find(|f| f.exchange.path() == Some(path.as_str()))
                .expect("exchange for every stream");
            let ex = &f.exchange;
            prop_assert_eq!(ex.method(), Some(if spec.post { "POST" } else { "GET" }));
            prop_assert_eq!(ex.host(), Some("mcp.example.com"));
            let req = ex.request.as_ref().unwrap();
            prop_assert_eq!(req.headers.get_str("x-extra"), Some(spec.extra_header.as_str()));
            prop_assert_eq!(&req.body.data, &spec.req_body);
            let resp = ex.response.as_ref().unwrap();
            prop_assert_eq!(resp.status, spec.status);
            if spec.sse {
                prop_assert!(ex.flags.streaming);
                prop_assert!(f.ended);
                let got: Vec<&str> = resp.sse_events.iter().map(|e| e.data.as_str()).collect();
                let want = event_texts(spec);
                prop_assert_eq!(got, want.iter().map(String::as_str).collect::<Vec<_>>());
            } else {
                prop_assert_eq!(&resp.body.data, &spec.resp_body);
            }
            let mut flags = ex.flags;
            flags.streaming = false;
            prop_assert_eq!(flags, Default::default());
            prop_assert_eq!(f.updates_after_end, 0);
        }
        // Any segmentation gives the same.
        let segmented = fold(&feed_segmented(&pieces, &cuts, &choices));
        prop_assert_eq!(&segmented, &reference);
        // Byte by byte too.
        let bytewise = fold(&feed_segmented(&pieces, &[1], &choices));
        prop_assert_eq!(&bytewise, &reference);
    }

    #[test]
    fn any_interleaving_of_directions_pairs_the_same_exchanges(
        specs in proptest::collection::vec(stream_spec(), 1..6),
        order in proptest::collection::vec(any::<usize>(), 1..40),
        cuts in proptest::collection::vec(1usize..64, 1..50),
        choices in proptest::collection::vec(any::<bool>(), 1..50),
    ) {
        // Without event streams (an event stream is handed out when its
        // head arrives, with or without its request), the two directions
        // may be fed in any relative order, as merged captures with skewed
        // clocks do: every exchange still pairs its request and response.
        let specs: Vec<StreamSpec> = specs
            .into_iter()
            .map(|s| StreamSpec { sse: false, ..s })
            .collect();
        let pieces = conversation(&specs, &order, true);
        let by_path = |records: &[Record]| {
            let mut v: Vec<_> = fold(records)
                .into_values()
                .map(|f| {
                    let mut ex = f.exchange;
                    ex.id = 0;
                    ex
                })
                .collect();
            v.sort_by_key(|e| e.path().map(str::to_string));
            v
        };
        let reference = by_path(&feed_reference(&pieces));
        let any_order = by_path(&feed_unordered(&pieces, &cuts, &choices));
        prop_assert_eq!(any_order, reference);
    }

    #[test]
    fn hostile_bytes_never_panic_and_stay_bounded(
        client in proptest::collection::vec(any::<u8>(), 0..4096),
        server in proptest::collection::vec(any::<u8>(), 0..4096),
        cuts in proptest::collection::vec(1usize..300, 1..20),
        midstream in any::<bool>(),
        preface in any::<bool>(),
    ) {
        let config = small_config();
        let bound = memory_bound(&config);
        let mut c = conn_with(config, midstream);
        let mut out = Vec::new();
        let mut cbytes = if preface { PREFACE.to_vec() } else { Vec::new() };
        cbytes.extend_from_slice(&client);
        let mut cut = cuts.iter().cycle();
        let (mut i, mut j) = (0, 0);
        while i < cbytes.len() || j < server.len() {
            let n = *cut.next().unwrap();
            if i < cbytes.len() {
                let e = (i + n).min(cbytes.len());
                c.on_data(C, ts(), &cbytes[i..e], &mut out);
                i = e;
            }
            if j < server.len() {
                let e = (j + n).min(server.len());
                c.on_data(S, ts(), &server[j..e], &mut out);
                j = e;
            }
            prop_assert!(c.buffered_bytes() <= bound, "{} > {}", c.buffered_bytes(), bound);
        }
        c.on_close(ts(), &mut out);
        prop_assert!(c.buffered_bytes() <= bound);
    }

    #[test]
    fn random_well_framed_frames_never_panic(
        frames in proptest::collection::vec(
            (any::<bool>(), 0u8..12, any::<u8>(), 0u32..8, proptest::collection::vec(any::<u8>(), 0..80)),
            0..60,
        ),
        midstream in any::<bool>(),
    ) {
        let config = small_config();
        let bound = memory_bound(&config);
        let mut c = conn_with(config, midstream);
        let mut out = Vec::new();
        if !midstream {
            c.on_data(C, ts(), PREFACE, &mut out);
        }
        for (to_server, k, flags, stream, payload) in &frames {
            let dir = if *to_server { C } else { S };
            c.on_data(dir, ts(), &frame(*k, *flags, *stream, payload), &mut out);
            prop_assert!(c.buffered_bytes() <= bound);
        }
        c.on_close(ts(), &mut out);
        fold(&out);
        let s = c.stats();
        prop_assert!(s.exchanges <= s.streams);
    }

    #[test]
    fn mutated_conversations_never_panic(
        specs in proptest::collection::vec(stream_spec(), 1..4),
        order in proptest::collection::vec(any::<usize>(), 1..20),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        gap_at in proptest::option::of(any::<usize>()),
    ) {
        let pieces = conversation(&specs, &order, true);
        let config = small_config();
        let bound = memory_bound(&config);
        let mut c = conn_with(config, false);
        let mut out = Vec::new();
        let total: usize = pieces.iter().map(|p| p.bytes.len()).sum();
        let mut offset = 0usize;
        let flips: Vec<(usize, u8)> = flips.iter().map(|(at, x)| (at % total, *x)).collect();
        for (k, p) in pieces.iter().enumerate() {
            let mut b = p.bytes.clone();
            for (at, x) in &flips {
                if (offset..offset + b.len()).contains(at) {
                    b[at - offset] ^= x | 1;
                }
            }
            offset += b.len();
            if gap_at.is_some_and(|g| g % pieces.len() == k) {
                c.on_gap(p.dir, b.len() as u64, &mut out);
                continue;
            }
            c.on_data(p.dir, ts(), &b, &mut out);
            prop_assert!(c.buffered_bytes() <= bound);
        }
        c.on_close(ts(), &mut out);
        // Every exchange is emitted once, and updates follow their exchange.
        fold(&out);
    }
}

fn small_config() -> Http2Config {
    Http2Config {
        max_body: 512,
        max_connection_body: 2048,
        max_streams: 8,
        max_frame_payload: 1024,
        max_header_block: 1024,
        max_header_list: 1024,
        max_headers: 32,
        max_header_table: 1024,
        max_sse_event_bytes: 256,
        max_sync_bytes: 1024,
        ..Http2Config::default()
    }
}

/// What `buffered_bytes` may reach under `config`.
fn memory_bound(config: &Http2Config) -> usize {
    let per_half = config.max_frame_payload
        + config.max_header_block
        + config.max_sync_bytes
        + config.max_header_table
        + 64;
    // SSE parser: line, event data and pending events (4x the event cap).
    // SSE parser: line, event data and pending events (4x the event cap);
    // header lists of both sides and their trailers (the SSE exchange
    // waiting to go out holds the request's and response's).
    let per_stream = 6 * config.max_sse_event_bytes + 6 * config.max_header_list + 16;
    2 * per_half + config.max_connection_body + config.max_streams * per_stream
}

#[test]
fn conversation_builder_makes_interleaved_streams() {
    let spec = StreamSpec {
        post: true,
        req_body: b"abcdef".to_vec(),
        status: 200,
        sse: false,
        resp_body: b"xyz".to_vec(),
        pieces: 2,
        pad: 1,
        block_frames: 2,
        extra_header: "e".into(),
    };
    let pieces = conversation(&[spec.clone(), spec], &[0, 1, 0, 1, 1, 0], false);
    // Preface and SETTINGS, then both streams' frames interleaved.
    let dirs: Vec<bool> = pieces.iter().map(|p| p.dir == C).collect();
    assert_eq!(pieces.len(), 2 + 2 * (1 + 2 + 1 + 2));
    assert!(dirs.iter().filter(|d| **d).count() == 1 + 2 * 3);
    let out = feed_reference(&pieces);
    assert_eq!(exchanges(&out).len(), 2);
    let _ = Connection::flow;
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn hpack_round_trips_with_a_changing_table(
        lists in proptest::collection::vec(
            proptest::collection::vec(
                (
                    prop::sample::select(vec![
                        ":path", "content-type", "x-a", "x-b", "authorization", "cookie",
                        "mcp-session-id", "user-agent",
                    ]),
                    "[ -~]{0,60}",
                ),
                0..12,
            ),
            1..12,
        ),
        sizes in proptest::collection::vec(prop::option::of(0usize..600), 1..12),
        huffman in any::<bool>(),
    ) {
        use shadowmcp_http2::hpack::{Block, Decoder, ListLimits};
        let mut enc = HpackEncoder::new(huffman);
        let mut dec = Decoder::new(1 << 16);
        let limits = ListLimits { max_list_size: usize::MAX, max_fields: usize::MAX };
        for (i, list) in lists.iter().enumerate() {
            if let Some(Some(size)) = sizes.get(i) {
                enc.set_max_size(*size);
            }
            let fields: Vec<(&str, &str)> = list.iter().map(|(n, v)| (*n, v.as_str())).collect();
            let block = enc.encode(&fields);
            let mut out = Block::default();
            dec.decode(&block, limits, &mut out).unwrap();
            prop_assert_eq!(out.unknown, 0);
            prop_assert_eq!(out.violations, 0);
            let got: Vec<(String, String)> = out
                .fields
                .into_iter()
                .map(|f| {
                    (
                        String::from_utf8(f.name.unwrap()).unwrap(),
                        String::from_utf8(f.value.unwrap()).unwrap(),
                    )
                })
                .collect();
            let want: Vec<(String, String)> =
                list.iter().map(|(n, v)| (n.to_string(), v.clone())).collect();
            prop_assert_eq!(got, want);
            prop_assert!(dec.table_size() <= 4096);
        }
    }

    #[test]
    fn hpack_random_blocks_never_panic_and_stay_bounded(
        blocks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 1..20),
        cap in 0usize..5000,
    ) {
        use shadowmcp_http2::hpack::{Block, Decoder, ListLimits};
        let mut dec = Decoder::new(cap);
        let limits = ListLimits { max_list_size: 4096, max_fields: 64 };
        for b in &blocks {
            let mut out = Block::default();
            if dec.decode(b, limits, &mut out).is_err() {
                dec.forget();
            }
            prop_assert!(dec.table_size() <= cap.max(1));
            prop_assert!(out.fields.len() <= 64);
        }
    }
}

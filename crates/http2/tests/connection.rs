mod common;

use common::*;
use shadowmcp_exchange::{Body, Flags, Headers, HttpVersion, Record, Request};
use shadowmcp_http2::testutil::{flag, frame, kind, padded, settings, HpackEncoder};
use shadowmcp_http2::{Connection, ErrorKind, ExchangeIds, Http2Config};
use std::sync::Arc;

fn mcp_post(path: &str) -> Vec<(&'static str, String)> {
    vec![
        (":method", "POST".into()),
        (":scheme", "https".into()),
        (":authority", "mcp.example.com".into()),
        (":path", path.into()),
        ("content-type", "application/json".into()),
    ]
}

#[test]
fn get_with_huffman_headers_and_body() {
    let mut c = conn();
    let mut ce = HpackEncoder::new(true);
    let mut se = HpackEncoder::new(true);
    let mut client = client_start();
    client.extend(headers(&mut ce, 1, &fields(&get("/mcp")), true));
    let mut server = server_start();
    server.extend(headers(
        &mut se,
        1,
        &[(":status", "200"), ("content-type", "application/json")],
        false,
    ));
    server.extend(data(1, b"{\"a\":", false));
    server.extend(data(1, b"1}", true));
    let out = run(&mut c, &[(C, client), (S, server)]);
    let ex = exchanges(&out);
    assert_eq!(ex.len(), 1);
    let ex = ex[0];
    assert_eq!(ex.method(), Some("GET"));
    assert_eq!(ex.path(), Some("/mcp"));
    assert_eq!(ex.host(), Some("mcp.example.com"));
    assert_eq!(ex.http_version(), Some(HttpVersion::Http2));
    let req = ex.request.as_ref().unwrap();
    assert_eq!(req.headers.get_str(":scheme"), Some("https"));
    let resp = ex.response.as_ref().unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.version, HttpVersion::Http2);
    assert_eq!(resp.body.data, b"{\"a\":1}");
    assert_eq!(ex.flags, Flags::default());
    assert_eq!(c.stats().prefaces, 1);
    assert_eq!(c.stats().exchanges, 1);
    assert_eq!(c.stats().errors.total(), 0);
    assert_eq!(c.stats().frames.settings, 2);
    assert_eq!(ex.flow.as_ref().unwrap().id, 7);
}

#[test]
fn post_body_padded_and_gzip_decoded() {
    let mut c = conn();
    let mut ce = HpackEncoder::new(false);
    let mut se = HpackEncoder::new(false);
    let json = br#"{"jsonrpc":"2.0","id":1,"method":"initialize"}"#;
    let mut req_fields = mcp_post("/mcp");
    req_fields.push(("content-encoding", "gzip".into()));
    let z = gzip(json);
    let (a, b) = z.split_at(z.len() / 2);
    let mut client = client_start();
    client.extend(headers(&mut ce, 1, &fields(&req_fields), false));
    client.extend(frame(kind::DATA, flag::PADDED, 1, &padded(a, 7)));
    client.extend(frame(
        kind::DATA,
        flag::PADDED | flag::END_STREAM,
        1,
        &padded(b, 0),
    ));
    let mut server = server_start();
    server.extend(headers(&mut se, 1, &[(":status", "202")], true));
    let out = run(&mut c, &[(C, client), (S, server)]);
    let ex = exchanges(&out)[0];
    let body = &ex.request.as_ref().unwrap().body;
    assert_eq!(body.data, json);
    assert_eq!(body.wire_len, z.len() as u64);
    assert_eq!(body.encodings, vec!["gzip".to_string()]);
    assert_eq!(ex.status(), Some(202));
    assert_eq!(ex.flags, Flags::default());
}

#[test]
fn header_block_split_over_continuations() {
    let mut c = conn();
    let mut ce = HpackEncoder::new(true);
    let g_f = get("/split");
    let mut f = fields(&g_f);
    f.push(("x-long", "abcdefghijklmnopqrstuvwxyz0123456789"));
    let block = ce.encode(&f);
    let (a, rest) = block.split_at(3);
    let (b, d) = rest.split_at(rest.len() / 2);
    let mut client = client_start();
    client.extend(frame(kind::HEADERS, flag::END_STREAM, 1, a));
    client.extend(frame(kind::CONTINUATION, 0, 1, b));
    client.extend(frame(kind::CONTINUATION, flag::END_HEADERS, 1, d));
    let mut se = HpackEncoder::new(true);
    let mut server = server_start();
    server.extend(headers(&mut se, 1, &[(":status", "204")], true));
    let out = run(&mut c, &[(C, client), (S, server)]);
    let ex = exchanges(&out)[0];
    assert_eq!(ex.path(), Some("/split"));
    let h = &ex.request.as_ref().unwrap().headers;
    assert_eq!(
        h.get_str("x-long"),
        Some("abcdefghijklmnopqrstuvwxyz0123456789")
    );
    assert_eq!(c.stats().frames.continuation, 2);
    assert_eq!(c.stats().errors.total(), 0);
}

#[test]
fn headers_with_priority_and_padding() {
    let mut c = conn();
    let mut ce = HpackEncoder::new(false);
    let block = ce.encode(&fields(&get("/p")));
    // PADDED and PRIORITY: pad length, 5 priority bytes, block, padding.
    let mut payload = vec![3u8, 0, 0, 0, 0, 16];
    payload.extend_from_slice(&block);
    payload.extend_from_slice(&[0, 0, 0]);
    let mut client = client_start();
    client.extend(frame(
        kind::HEADERS,
        flag::END_HEADERS | flag::END_STREAM | flag::PADDED | flag::PRIORITY,
        1,
        &payload,
    ));
    let out = run(&mut c, &[(C, client)]);
    assert!(out.is_empty());
    let mut out = Vec::new();
    c.on_close(ts(), &mut out);
    let ex = exchanges(&out)[0];
    assert_eq!(ex.path(), Some("/p"));
    assert!(ex.response.is_none());
    assert!(ex.flags.incomplete);
}

#[test]
fn interleaved_streams_are_kept_apart() {
    let mut c = conn();
    let mut ce = HpackEncoder::new(true);
    let mut se = HpackEncoder::new(true);
    let mut client = client_start();
    for id in [1u32, 3, 5] {
        client.extend(headers(
            &mut ce,
            id,
            &fields(&mcp_post(&format!("/s{id}"))),
            false,
        ));
    }
    for id in [5u32, 1, 3] {
        client.extend(data(id, format!("req{id}-a ").as_bytes(), false));
    }
    for id in [3u32, 5, 1] {
        client.extend(data(id, format!("req{id}-b").as_bytes(), true));
    }
    let mut server = server_start();
    for id in [3u32, 1, 5] {
        server.extend(headers(&mut se, id, &[(":status", "200")], false));
    }
    for id in [1u32, 5, 3] {
        server.extend(data(id, format!("resp{id}").as_bytes(), true));
    }
    let out = run(&mut c, &[(C, client), (S, server)]);
    let ex = exchanges(&out);
    assert_eq!(ex.len(), 3);
    // Emitted in the order the streams finished.
    let paths: Vec<_> = ex.iter().map(|e| e.path().unwrap()).collect();
    assert_eq!(paths, vec!["/s1", "/s5", "/s3"]);
    for e in ex {
        let id = &e.path().unwrap()[2..];
        let req = e.request.as_ref().unwrap();
        assert_eq!(
            req.body.as_str(),
            Some(format!("req{id}-a req{id}-b").as_str())
        );
        let resp = e.response.as_ref().unwrap();
        assert_eq!(resp.body.as_str(), Some(format!("resp{id}").as_str()));
    }
    assert_eq!(c.stats().streams, 3);
}

#[test]
fn event_stream_is_emitted_then_updated() {
    let mut c = conn();
    let mut ce = HpackEncoder::new(true);
    let mut se = HpackEncoder::new(true);
    let mut client = client_start();
    let mut f = get("/sse");
    f.push(("accept", "text/event-stream".into()));
    client.extend(headers(&mut ce, 1, &fields(&f), true));
    let mut server = server_start();
    server.extend(headers(
        &mut se,
        1,
        &[(":status", "200"), ("content-type", "text/event-stream")],
        false,
    ));
    server.extend(data(1, b"event: endpoint\ndata: /messages?s=1\n\n", false));
    let out = run(&mut c, &[(C, client), (S, server)]);
    assert_eq!(out.len(), 1);
    let ex = exchanges(&out)[0];
    assert!(ex.flags.streaming);
    let resp = ex.response.as_ref().unwrap();
    assert_eq!(event_data(&resp.sse_events), vec!["/messages?s=1"]);
    assert_eq!(resp.sse_events[0].event.as_deref(), Some("endpoint"));
    let id = ex.id;
    let out = run(
        &mut c,
        &[(S, data(1, b"data: {\"jsonrpc\":\"2.0\"}\n\ndata: x", false))],
    );
    let [Record::SseUpdate(u)] = &out[..] else {
        panic!("{out:?}")
    };
    assert_eq!(u.exchange_id, id);
    assert_eq!(event_data(&u.events), vec!["{\"jsonrpc\":\"2.0\"}"]);
    assert!(!u.end);
    let out = run(&mut c, &[(S, data(1, b"\n\n", true))]);
    assert_eq!(out.len(), 2);
    let Record::SseUpdate(u) = &out[1] else {
        panic!()
    };
    assert!(u.end);
    assert_eq!(u.flags, Flags::default());
    assert_eq!(c.stats().sse_events, 3);
}

#[test]
fn gzip_event_stream_is_read_whole() {
    let mut c = conn();
    let mut ce = HpackEncoder::new(false);
    let mut se = HpackEncoder::new(false);
    let mut client = client_start();
    client.extend(headers(&mut ce, 1, &fields(&get("/sse")), true));
    let mut server = server_start();
    server.extend(headers(
        &mut se,
        1,
        &[
            (":status", "200"),
            ("content-type", "text/event-stream"),
            ("content-encoding", "gzip"),
        ],
        false,
    ));
    server.extend(data(1, &gzip(b"data: one\n\ndata: two\n\n"), true));
    let out = run(&mut c, &[(C, client), (S, server)]);
    let ex = exchanges(&out)[0];
    assert!(!ex.flags.streaming);
    let resp = ex.response.as_ref().unwrap();
    assert_eq!(event_data(&resp.sse_events), vec!["one", "two"]);
}

#[test]
fn rst_stream_emits_what_was_seen() {
    let mut c = conn();
    let mut ce = HpackEncoder::new(true);
    let mut se = HpackEncoder::new(true);
    let mut client = client_start();
    client.extend(headers(&mut ce, 1, &fields(&get("/big")), true));
    let mut server = server_start();
    server.extend(headers(&mut se, 1, &[(":status", "200")], false));
    server.extend(data(1, b"partial", false));
    server.extend(frame(kind::RST_STREAM, 0, 1, &8u32.to_be_bytes()));
    let out = run(&mut c, &[(C, client), (S, server)]);
    let ex = exchanges(&out)[0];
    assert!(ex.flags.incomplete);
    assert_eq!(ex.response.as_ref().unwrap().body.data, b"partial");
    assert_eq!(c.stats().resets, 1);
    // Frames for the reset stream are ignored.
    let out = run(&mut c, &[(S, data(1, b"more", true))]);
    assert!(out.is_empty());
    assert_eq!(c.stats().frames_untracked_stream, 1);
    // A malformed RST_STREAM is counted.
    run(&mut c, &[(C, frame(kind::RST_STREAM, 0, 3, &[0, 0]))]);
    run(&mut c, &[(C, frame(kind::RST_STREAM, 0, 0, &[0, 0, 0, 0]))]);
    assert_eq!(c.stats().errors.get(ErrorKind::InvalidFrameLength), 1);
    assert_eq!(c.stats().errors.get(ErrorKind::InvalidStreamId), 1);
}

#[test]
fn push_promise_carries_the_promised_request() {
    let mut c = conn();
    let mut ce = HpackEncoder::new(true);
    let mut se = HpackEncoder::new(true);
    let mut client = client_start();
    client.extend(headers(&mut ce, 1, &fields(&get("/index")), true));
    let mut server = server_start();
    let promise = se.encode(&fields(&get("/style.css")));
    let mut payload = 2u32.to_be_bytes().to_vec();
    payload.extend_from_slice(&promise);
    server.extend(frame(
        kind::PUSH_PROMISE,
        flag::END_HEADERS | flag::PADDED,
        1,
        &padded(&payload, 4),
    ));
    server.extend(headers(&mut se, 1, &[(":status", "200")], true));
    server.extend(headers(
        &mut se,
        2,
        &[(":status", "200"), ("content-type", "text/css")],
        false,
    ));
    server.extend(data(2, b"body{}", true));
    let out = run(&mut c, &[(C, client), (S, server)]);
    let ex = exchanges(&out);
    assert_eq!(ex.len(), 2);
    assert_eq!(ex[0].path(), Some("/index"));
    assert_eq!(ex[1].path(), Some("/style.css"));
    assert_eq!(ex[1].host(), Some("mcp.example.com"));
    assert_eq!(ex[1].response.as_ref().unwrap().body.data, b"body{}");
    assert_eq!(c.stats().pushes, 1);
    assert_eq!(c.stats().errors.total(), 0);
}

#[test]
fn header_table_size_setting_bounds_updates() {
    let mut c = conn();
    let mut ce = HpackEncoder::new(false);
    let mut se = HpackEncoder::new(false);
    // The client allows the server a 256-byte table; the server shrinks
    // to it, evicts, and later asks for more than allowed.
    let mut client = client_start_with(&[(1, 256)]);
    client.extend(headers(&mut ce, 1, &fields(&get("/a")), true));
    client.extend(headers(&mut ce, 3, &fields(&get("/b")), true));
    se.set_max_size(256);
    let big = "x".repeat(150);
    let mut server = server_start();
    server.extend(headers(
        &mut se,
        1,
        &[(":status", "200"), ("x-big", &big)],
        true,
    ));
    server.extend(headers(
        &mut se,
        3,
        &[(":status", "200"), ("x-big", &big), ("x-other", &big)],
        true,
    ));
    let out = run(&mut c, &[(C, client), (S, server)]);
    let ex = exchanges(&out);
    assert_eq!(ex.len(), 2);
    let h = &ex[1].response.as_ref().unwrap().headers;
    assert_eq!(h.get_str("x-big"), Some(big.as_str()));
    assert_eq!(h.get_str("x-other"), Some(big.as_str()));
    assert_eq!(c.stats().errors.total(), 0);
    se.set_max_size(1024);
    let mut client = Vec::new();
    client.extend(headers(&mut ce, 5, &fields(&get("/c")), true));
    run(&mut c, &[(C, client)]);
    run(
        &mut c,
        &[(S, headers(&mut se, 5, &[(":status", "200")], true))],
    );
    assert_eq!(c.stats().errors.get(ErrorKind::HpackTableSizeUpdate), 1);
}

fn client_start_with(pairs: &[(u16, u32)]) -> Vec<u8> {
    let mut v = shadowmcp_http2::PREFACE.to_vec();
    v.extend(frame(kind::SETTINGS, 0, 0, &settings(pairs)));
    v
}

#[test]
fn max_frame_size_setting_is_honoured() {
    let big = vec![b'a'; 20_000];
    let run_with = |client_max: Option<u32>| {
        let mut c = conn();
        let mut ce = HpackEncoder::new(false);
        let mut se = HpackEncoder::new(false);
        let mut client = match client_max {
            Some(m) => client_start_with(&[(5, m)]),
            None => client_start(),
        };
        client.extend(headers(&mut ce, 1, &fields(&get("/dl")), true));
        let mut server = server_start();
        server.extend(headers(&mut se, 1, &[(":status", "200")], false));
        server.extend(data(1, &big, true));
        let out = run(&mut c, &[(C, client), (S, server)]);
        let mut out2 = Vec::new();
        c.on_close(ts(), &mut out2);
        let all: Vec<_> = out.into_iter().chain(out2).collect();
        let body_len = exchanges(&all)[0]
            .response
            .as_ref()
            .unwrap()
            .body
            .data
            .len();
        (body_len, c.stats().errors.get(ErrorKind::FrameTooLarge))
    };
    assert_eq!(run_with(Some(32_768)), (20_000, 0));
    assert_eq!(run_with(None), (0, 1));
    // Out of range values are ignored and counted.
    let mut c = conn();
    run(&mut c, &[(C, client_start_with(&[(5, 100)]))]);
    assert_eq!(c.stats().errors.get(ErrorKind::InvalidSetting), 1);
}

#[test]
fn control_frames_are_counted_and_validated() {
    let mut c = conn();
    let mut client = client_start();
    client.extend(frame(kind::PING, 0, 0, &[0; 8]));
    client.extend(frame(kind::WINDOW_UPDATE, 0, 0, &[0, 0, 1, 0]));
    client.extend(frame(kind::PRIORITY, 0, 3, &[0, 0, 0, 1, 16]));
    client.extend(frame(0x42, 0xff, 9, b"unknown extension"));
    client.extend(frame(kind::SETTINGS, flag::ACK, 0, &[]));
    let mut server = server_start();
    server.extend(frame(kind::PING, flag::ACK, 0, &[0; 8]));
    server.extend(frame(kind::GOAWAY, 0, 0, &[0, 0, 0, 0, 0, 0, 0, 0]));
    // Malformed ones.
    server.extend(frame(kind::PING, 0, 0, &[0; 7]));
    server.extend(frame(kind::PING, 0, 1, &[0; 8]));
    server.extend(frame(kind::WINDOW_UPDATE, 0, 0, &[0; 3]));
    server.extend(frame(kind::PRIORITY, 0, 0, &[0; 5]));
    server.extend(frame(kind::GOAWAY, 0, 0, &[0; 4]));
    server.extend(frame(kind::SETTINGS, 0, 0, &[0; 5]));
    server.extend(frame(kind::SETTINGS, flag::ACK, 0, &[0; 6]));
    server.extend(frame(kind::SETTINGS, 0, 1, &[]));
    let out = run(&mut c, &[(C, client), (S, server)]);
    assert!(out.is_empty());
    let s = c.stats();
    assert_eq!(s.frames.ping, 4);
    assert_eq!(s.frames.window_update, 2);
    assert_eq!(s.frames.priority, 2);
    assert_eq!(s.frames.goaway, 2);
    assert_eq!(s.frames.unknown, 1);
    assert_eq!(s.frames.settings, 6);
    assert_eq!(s.errors.get(ErrorKind::InvalidFrameLength), 5);
    assert_eq!(s.errors.get(ErrorKind::InvalidStreamId), 3);
}

#[test]
fn invalid_padding_is_counted_and_the_frame_ignored() {
    let mut c = conn();
    let mut ce = HpackEncoder::new(false);
    let mut se = HpackEncoder::new(false);
    let mut client = client_start();
    client.extend(headers(&mut ce, 1, &fields(&mcp_post("/x")), false));
    // Pad length 10 in a 4-byte payload.
    client.extend(frame(kind::DATA, flag::PADDED, 1, &[10, b'a', b'b', b'c']));
    client.extend(frame(kind::DATA, flag::PADDED, 1, &[]));
    client.extend(data(1, b"ok", true));
    let mut server = server_start();
    server.extend(headers(&mut se, 1, &[(":status", "200")], true));
    // HEADERS whose padding overruns.
    let out = run(&mut c, &[(C, client), (S, server)]);
    let ex = exchanges(&out)[0];
    assert_eq!(ex.request.as_ref().unwrap().body.data, b"ok");
    assert_eq!(c.stats().errors.get(ErrorKind::InvalidPadding), 2);
    run(
        &mut c,
        &[(
            C,
            frame(
                kind::HEADERS,
                flag::END_HEADERS | flag::PADDED,
                3,
                &[9, 0x82],
            ),
        )],
    );
    assert_eq!(c.stats().errors.get(ErrorKind::InvalidPadding), 3);
    assert_eq!(c.stats().header_blocks_lost, 1);
}

#[test]
fn lost_header_block_makes_later_dynamic_references_unknown() {
    let mut c = conn();
    let mut ce = HpackEncoder::new(true);
    let mut client = client_start();
    // Stream 1 head enters "x-session: abc" into the table; its block is
    // cut off by a DATA frame instead of CONTINUATION.
    let g_f1 = get("/one");
    let mut f1 = fields(&g_f1);
    f1.push(("x-session", "abc"));
    let block = ce.encode(&f1);
    client.extend(frame(kind::HEADERS, flag::END_STREAM, 1, &block));
    client.extend(data(1, b"oops", false));
    // Stream 3 refers to the entries by index: they are unknown now.
    let g_f3 = get("/one");
    let mut f3 = fields(&g_f3);
    f3.push(("x-session", "abc"));
    f3.push(("x-new", "fresh"));
    client.extend(headers(&mut ce, 3, &f3, true));
    let out = run(&mut c, &[(C, client)]);
    assert!(out.is_empty());
    let s = c.stats();
    assert_eq!(s.errors.get(ErrorKind::ContinuationExpected), 1);
    assert_eq!(s.hpack_resets, 1);
    assert!(s.header_fields_unknown >= 3);
    let mut out = Vec::new();
    c.on_close(ts(), &mut out);
    let ex = exchanges(&out);
    assert_eq!(ex.len(), 1);
    let req = ex[0].request.as_ref().unwrap();
    // Static-table and literal fields survive; nothing is guessed.
    assert_eq!(req.method, "GET");
    assert_eq!(req.headers.get_str("x-new"), Some("fresh"));
    assert_eq!(req.headers.get_str("x-session"), None);
    assert!(ex[0].flags.malformed);
}

#[test]
fn unexpected_continuation_is_counted() {
    let mut c = conn();
    let mut client = client_start();
    client.extend(frame(kind::CONTINUATION, flag::END_HEADERS, 1, &[0x82]));
    run(&mut c, &[(C, client)]);
    assert_eq!(c.stats().errors.get(ErrorKind::UnexpectedContinuation), 1);
}

#[test]
fn preface_may_be_already_stripped() {
    let mut c = conn();
    let mut ce = HpackEncoder::new(true);
    let mut client = frame(kind::SETTINGS, 0, 0, &[]);
    client.extend(headers(&mut ce, 1, &fields(&get("/np")), true));
    client.extend(headers(&mut ce, 3, &fields(&get("/np")), true));
    let mut se = HpackEncoder::new(true);
    let mut server = server_start();
    server.extend(headers(&mut se, 1, &[(":status", "200")], true));
    server.extend(headers(&mut se, 3, &[(":status", "200")], true));
    let out = run(&mut c, &[(C, client), (S, server)]);
    let ex = exchanges(&out);
    assert_eq!(ex.len(), 2);
    // The second request used the dynamic table: the state is known.
    assert_eq!(ex[1].host(), Some("mcp.example.com"));
    assert_eq!(c.stats().errors.total(), 0);
    assert_eq!(c.stats().header_fields_unknown, 0);
}

#[test]
fn stripped_preface_is_recognised_by_its_settings_frame() {
    let mut c = conn();
    let mut ce = HpackEncoder::new(true);
    let mut client = frame(kind::SETTINGS, 0, 0, &settings(&[(4, 65_535)]));
    client.extend(headers(&mut ce, 1, &fields(&get("/one")), true));
    let mut se = HpackEncoder::new(true);
    let mut server = server_start();
    server.extend(headers(&mut se, 1, &[(":status", "200")], true));
    // Two frames only: no waiting for more to be sure of the framing.
    let out = run(&mut c, &[(C, client), (S, server)]);
    assert_eq!(exchanges(&out).len(), 1);
    assert_eq!(c.stats().syncs, 1);
    assert_eq!(c.stats().errors.total(), 0);
}

#[test]
fn bad_preface_is_counted_and_frames_found_after_it() {
    let mut c = conn();
    let mut client = b"PRI * HTTP/1.1\r\n".to_vec();
    let mut ce = HpackEncoder::new(false);
    client.extend(frame(kind::SETTINGS, 0, 0, &[]));
    client.extend(frame(kind::PING, 0, 0, &[0; 8]));
    client.extend(headers(&mut ce, 1, &fields(&get("/after")), true));
    run(&mut c, &[(C, client)]);
    let mut out = Vec::new();
    c.on_close(ts(), &mut out);
    assert_eq!(c.stats().errors.get(ErrorKind::BadPreface), 1);
    assert_eq!(c.stats().syncs, 1);
    assert_eq!(exchanges(&out)[0].path(), Some("/after"));
}

#[test]
fn midstream_pickup_finds_frames_and_drops_unknown_fields() {
    // The connection is already going: both encoders have history.
    let mut ce = HpackEncoder::new(true);
    let mut se = HpackEncoder::new(true);
    ce.encode(&fields(&get("/before")));
    se.encode(&[(":status", "200"), ("server", "old")]);
    let mut c = conn_with(Http2Config::default(), true);
    // The capture starts inside a DATA frame.
    let mut client = data(1, b"tail of an earlier body", false)[12..].to_vec();
    client.extend(frame(kind::WINDOW_UPDATE, 0, 0, &[0, 0, 1, 0]));
    client.extend(frame(kind::PING, 0, 0, &[0; 8]));
    client.extend(headers(&mut ce, 5, &fields(&get("/before")), true));
    let g_f = get("/new");
    let mut f = fields(&g_f);
    f[2] = (":authority", "other.example");
    client.extend(headers(&mut ce, 7, &f, true));
    let mut server = frame(kind::PING, flag::ACK, 0, &[0; 8]);
    server.extend(frame(kind::WINDOW_UPDATE, 0, 0, &[0, 0, 1, 0]));
    server.extend(headers(
        &mut se,
        5,
        &[(":status", "200"), ("server", "old")],
        false,
    ));
    server.extend(data(5, b"five", true));
    server.extend(headers(&mut se, 7, &[(":status", "404")], true));
    server.extend(headers(&mut se, 3, &[(":status", "500")], true));
    let out = run(&mut c, &[(C, client), (S, server)]);
    let ex = exchanges(&out);
    assert_eq!(ex.len(), 3, "{ex:#?}");
    assert_eq!(c.stats().midstream, 1);
    assert_eq!(c.stats().syncs, 2);
    assert!(c.stats().header_fields_unknown > 0);
    // Stream 5: every request field was a table reference to old entries.
    assert!(ex[0].flags.midstream);
    assert_eq!(ex[0].method(), Some("GET"));
    assert_eq!(ex[0].response.as_ref().unwrap().body.data, b"five");
    // Stream 7: the literal authority is known.
    assert_eq!(ex[1].host(), Some("other.example"));
    assert_eq!(ex[1].status(), Some(404));
    // Stream 3 began before the capture: response only.
    assert!(ex[2].request.is_none());
    assert_eq!(ex[2].status(), Some(500));
    assert!(ex[2].flags.midstream);
}

#[test]
fn gap_stops_a_direction_but_the_other_is_still_read() {
    let mut c = conn();
    let mut ce = HpackEncoder::new(true);
    let mut se = HpackEncoder::new(true);
    let mut client = client_start();
    client.extend(headers(&mut ce, 1, &fields(&mcp_post("/a")), false));
    client.extend(data(1, b"first half ", false));
    let mut out = run(&mut c, &[(C, client)]);
    c.on_gap(C, 100, &mut out);
    // Bytes after the gap are not framed.
    c.on_data(C, ts(), &data(1, b"rest", true), &mut out);
    assert_eq!(c.stats().framing_lost, 1);
    assert_eq!(c.stats().gap_bytes, 100);
    let mut server = server_start();
    server.extend(headers(&mut se, 1, &[(":status", "200")], false));
    server.extend(data(1, b"answer", true));
    // A response to a request lost in the gap.
    server.extend(headers(&mut se, 3, &[(":status", "201")], true));
    c.on_data(S, ts(), &server, &mut out);
    let ex = exchanges(&out);
    assert_eq!(ex.len(), 2);
    assert!(ex[0].flags.gap && ex[0].flags.incomplete);
    assert_eq!(ex[0].request.as_ref().unwrap().body.data, b"first half ");
    assert_eq!(ex[0].response.as_ref().unwrap().body.data, b"answer");
    assert!(ex[1].request.is_none());
    assert_eq!(ex[1].status(), Some(201));
    assert!(ex[1].flags.gap);
}

#[test]
fn stream_cap_evicts_the_oldest() {
    let config = Http2Config {
        max_streams: 2,
        ..Http2Config::default()
    };
    let mut c = conn_with(config, false);
    let mut ce = HpackEncoder::new(true);
    let mut client = client_start();
    for id in [1u32, 3, 5, 7] {
        client.extend(headers(&mut ce, id, &fields(&get(&format!("/{id}"))), true));
    }
    let out = run(&mut c, &[(C, client)]);
    let ex = exchanges(&out);
    assert_eq!(ex.len(), 2);
    assert_eq!(ex[0].path(), Some("/1"));
    assert_eq!(ex[1].path(), Some("/3"));
    assert!(ex[0].flags.incomplete);
    assert_eq!(c.stats().streams_evicted, 2);
}

#[test]
fn header_list_cap_truncates() {
    let config = Http2Config {
        max_headers: 5,
        ..Http2Config::default()
    };
    let mut c = conn_with(config, false);
    let mut ce = HpackEncoder::new(true);
    let g_f = get("/h");
    let mut f = fields(&g_f);
    f.extend([("a", "1"), ("b", "2"), ("c", "3")]);
    let mut client = client_start();
    client.extend(headers(&mut ce, 1, &f, true));
    run(&mut c, &[(C, client)]);
    let mut out = Vec::new();
    c.on_close(ts(), &mut out);
    let ex = exchanges(&out)[0];
    assert!(ex.flags.truncated);
    assert_eq!(ex.request.as_ref().unwrap().headers.get_str("a"), Some("1"));
    assert_eq!(ex.request.as_ref().unwrap().headers.get_str("b"), None);
    assert_eq!(c.stats().header_fields_dropped, 2);
    assert_eq!(c.stats().errors.get(ErrorKind::HeaderListTooLarge), 1);
}

#[test]
fn body_cap_truncates() {
    let config = Http2Config {
        max_body: 10,
        ..Http2Config::default()
    };
    let mut c = conn_with(config, false);
    let mut ce = HpackEncoder::new(true);
    let mut se = HpackEncoder::new(true);
    let mut client = client_start();
    client.extend(headers(&mut ce, 1, &fields(&get("/b")), true));
    let mut server = server_start();
    server.extend(headers(&mut se, 1, &[(":status", "200")], false));
    server.extend(data(1, b"0123456789abcdef", true));
    let out = run(&mut c, &[(C, client), (S, server)]);
    let ex = exchanges(&out)[0];
    let body = &ex.response.as_ref().unwrap().body;
    assert_eq!(body.data, b"0123456789");
    assert!(body.truncated && ex.flags.truncated);
    assert_eq!(body.wire_len, 16);
    assert_eq!(c.stats().bodies_truncated, 1);
}

#[test]
fn trailers_interim_and_content_length() {
    let mut c = conn();
    let mut ce = HpackEncoder::new(true);
    let mut se = HpackEncoder::new(true);
    let mut f = mcp_post("/t");
    f.push(("content-length", "5".into()));
    let mut client = client_start();
    client.extend(headers(&mut ce, 1, &fields(&f), false));
    client.extend(data(1, b"abc", false));
    client.extend(headers(&mut ce, 1, &[("x-checksum", "42")], true));
    let mut server = server_start();
    server.extend(headers(&mut se, 1, &[(":status", "100")], false));
    server.extend(headers(
        &mut se,
        1,
        &[(":status", "200"), ("content-length", "2")],
        false,
    ));
    server.extend(data(1, b"ok", false));
    server.extend(headers(&mut se, 1, &[("grpc-status", "0")], true));
    let out = run(&mut c, &[(C, client), (S, server)]);
    let ex = exchanges(&out)[0];
    let req = ex.request.as_ref().unwrap();
    assert_eq!(req.trailers.get_str("x-checksum"), Some("42"));
    let resp = ex.response.as_ref().unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.trailers.get_str("grpc-status"), Some("0"));
    assert_eq!(c.stats().interim_responses, 1);
    // The request said 5 bytes and sent 3.
    assert!(ex.flags.malformed);
    assert_eq!(c.stats().errors.get(ErrorKind::ContentLengthMismatch), 1);
}

#[test]
fn connect_and_explicit_host() {
    let mut c = conn();
    let mut ce = HpackEncoder::new(true);
    let mut client = client_start();
    client.extend(headers(
        &mut ce,
        1,
        &[(":method", "CONNECT"), (":authority", "tunnel.example:443")],
        false,
    ));
    client.extend(headers(
        &mut ce,
        3,
        &[
            (":method", "GET"),
            (":scheme", "https"),
            (":authority", "auth.example"),
            (":path", "/"),
            ("host", "host.example"),
        ],
        true,
    ));
    run(&mut c, &[(C, client)]);
    let mut out = Vec::new();
    c.on_close(ts(), &mut out);
    let ex = exchanges(&out);
    assert_eq!(ex[0].method(), Some("CONNECT"));
    assert_eq!(ex[0].request.as_ref().unwrap().target, "tunnel.example:443");
    assert_eq!(ex[0].host(), Some("tunnel.example:443"));
    assert_eq!(ex[1].host(), Some("host.example"));
    let h = &ex[1].request.as_ref().unwrap().headers;
    assert_eq!(h.get_str(":authority"), Some("auth.example"));
    assert_eq!(c.stats().errors.total(), 0);
}

#[test]
fn h2c_upgrade_makes_the_http1_request_stream_one() {
    let mut headers_in = Headers::default();
    headers_in.push("Host", "mcp.example.com");
    headers_in.push("Connection", "Upgrade, HTTP2-Settings");
    headers_in.push("Upgrade", "h2c");
    // SETTINGS_MAX_FRAME_SIZE = 32768.
    headers_in.push("HTTP2-Settings", "AAUAAIAA");
    let request = Request {
        method: "POST".into(),
        target: "/mcp".into(),
        version: HttpVersion::Http11,
        headers: headers_in,
        body: Body {
            data: b"{}".to_vec(),
            wire_len: 2,
            decoded_len: 2,
            ..Body::default()
        },
        trailers: Headers::default(),
    };
    let mut c = Connection::upgraded(
        flow(),
        Default::default(),
        Arc::new(Http2Config::default()),
        ExchangeIds::new(),
        request,
        ts(),
    );
    let mut se = HpackEncoder::new(true);
    let mut server = server_start();
    server.extend(headers(&mut se, 1, &[(":status", "200")], false));
    // Bigger than the default frame size: allowed by HTTP2-Settings.
    server.extend(data(1, &vec![b'z'; 20_000], true));
    let out = run(&mut c, &[(C, client_start()), (S, server)]);
    let ex = exchanges(&out)[0];
    assert_eq!(ex.method(), Some("POST"));
    assert_eq!(ex.host(), Some("mcp.example.com"));
    assert_eq!(ex.request.as_ref().unwrap().body.data, b"{}");
    assert_eq!(ex.response.as_ref().unwrap().version, HttpVersion::Http2);
    assert_eq!(ex.response.as_ref().unwrap().body.data.len(), 20_000);
    assert_eq!(c.stats().upgrades, 1);
    assert_eq!(c.stats().errors.total(), 0);
}

#[test]
fn byte_by_byte_equals_whole() {
    let mut ce = HpackEncoder::new(true);
    let mut se = HpackEncoder::new(true);
    let mut client = client_start();
    client.extend(headers(&mut ce, 1, &fields(&mcp_post("/mcp")), false));
    client.extend(frame(
        kind::DATA,
        flag::PADDED | flag::END_STREAM,
        1,
        &padded(b"{\"id\":1}", 3),
    ));
    let mut server = server_start();
    server.extend(headers(
        &mut se,
        1,
        &[(":status", "200"), ("content-type", "text/event-stream")],
        false,
    ));
    server.extend(data(1, b"data: a\n\ndata: b\n\n", true));
    let mut whole = conn();
    let a = run(&mut whole, &[(C, client.clone()), (S, server.clone())]);
    let mut bytes = conn();
    let mut b = Vec::new();
    for x in client.chunks(1) {
        bytes.on_data(C, ts(), x, &mut b);
    }
    for x in server.chunks(1) {
        bytes.on_data(S, ts(), x, &mut b);
    }
    assert_eq!(fold(&a), fold(&b));
    assert_eq!(fold(&a).len(), 1);
    assert!(fold(&a).values().all(|f| f.ended));
}

#[test]
fn close_with_open_streams_and_bytes_after_close() {
    let mut c = conn();
    let mut ce = HpackEncoder::new(true);
    let mut se = HpackEncoder::new(true);
    let mut client = client_start();
    client.extend(headers(&mut ce, 1, &fields(&get("/sse")), true));
    let mut server = server_start();
    server.extend(headers(
        &mut se,
        1,
        &[(":status", "200"), ("content-type", "text/event-stream")],
        false,
    ));
    server.extend(data(1, b"data: 1\n\ndata: par", false));
    let mut out = run(&mut c, &[(C, client), (S, server)]);
    c.on_close(ts(), &mut out);
    let Some(Record::SseUpdate(last)) = out.last() else {
        panic!()
    };
    assert!(last.end && last.flags.incomplete);
    c.on_data(C, ts(), b"late", &mut out);
    assert_eq!(c.stats().bytes_after_close, 4);
    assert!(c.buffered_bytes() == 0);
}

#[test]
fn fin_ends_waiting_streams() {
    let mut c = conn();
    let mut ce = HpackEncoder::new(true);
    let mut client = client_start();
    client.extend(headers(&mut ce, 1, &fields(&get("/f")), true));
    let mut out = run(&mut c, &[(C, client)]);
    c.on_data(S, ts(), &server_start(), &mut out);
    c.on_fin(S, ts(), &mut out);
    let ex = exchanges(&out);
    assert_eq!(ex.len(), 1);
    assert!(ex[0].flags.incomplete && ex[0].response.is_none());
}

#[test]
fn oversized_frames_are_skipped() {
    let config = Http2Config {
        max_frame_payload: 100,
        ..Http2Config::default()
    };
    let mut c = conn_with(config, false);
    let mut client = client_start();
    client.extend(frame(kind::SETTINGS, 0, 0, &[0; 120]));
    client.extend(frame(kind::PING, 0, 0, &[0; 8]));
    run(&mut c, &[(C, client)]);
    assert_eq!(c.stats().errors.get(ErrorKind::FrameOverCap), 1);
    assert_eq!(c.stats().frames.ping, 1);
}

#[test]
fn header_block_errors_are_counted() {
    let config = Http2Config {
        max_header_block: 64,
        ..Http2Config::default()
    };
    let mut c = conn_with(config, false);
    let mut ce = HpackEncoder::new(false);
    let mut client = client_start();
    // Over max_header_block across HEADERS + CONTINUATION.
    let long = "y".repeat(50);
    let g = get("/big");
    let mut f = fields(&g);
    f.push(("x-long", &long));
    let block = ce.encode(&f);
    let (a, b) = block.split_at(40);
    client.extend(frame(kind::HEADERS, flag::END_STREAM, 1, a));
    client.extend(frame(kind::CONTINUATION, flag::END_HEADERS, 1, b));
    // Undecodable HPACK: a name literal that runs past the block.
    client.extend(frame(
        kind::HEADERS,
        flag::END_HEADERS | flag::END_STREAM,
        3,
        &[0x82, 0x40, 0x05, b'a'],
    ));
    // PUSH_PROMISE from the client.
    client.extend(frame(
        kind::PUSH_PROMISE,
        flag::END_HEADERS,
        3,
        &[0, 0, 0, 2, 0x82],
    ));
    run(&mut c, &[(C, client)]);
    let s = c.stats();
    assert_eq!(s.errors.get(ErrorKind::HeaderBlockTooLarge), 1);
    assert_eq!(s.errors.get(ErrorKind::Hpack), 1);
    assert_eq!(s.errors.get(ErrorKind::InvalidStreamId), 1);
    assert_eq!(s.header_blocks_lost, 3);
    let mut out = Vec::new();
    c.on_close(ts(), &mut out);
    // Stream 3 kept the field decoded before the error.
    let ex = exchanges(&out);
    assert_eq!(ex.len(), 1);
    assert_eq!(ex[0].method(), Some("GET"));
    assert!(ex[0].flags.malformed);
}

#[test]
fn frames_after_end_stream_are_counted() {
    let mut c = conn();
    let mut ce = HpackEncoder::new(false);
    let mut client = client_start();
    client.extend(headers(&mut ce, 1, &fields(&get("/x")), true));
    client.extend(headers(&mut ce, 1, &[("x-late", "1")], true));
    client.extend(data(1, b"late", true));
    let out = run(&mut c, &[(C, client)]);
    assert!(out.is_empty());
    assert_eq!(c.stats().errors.get(ErrorKind::FrameOnClosedStream), 1);
    let mut out = Vec::new();
    c.on_close(ts(), &mut out);
    let ex = exchanges(&out)[0];
    assert!(ex.request.as_ref().unwrap().body.data.is_empty());
    assert!(ex.request.as_ref().unwrap().trailers.is_empty());
}

#[test]
fn oversized_events_are_cut_and_flagged() {
    let config = Http2Config {
        max_sse_event_bytes: 16,
        ..Http2Config::default()
    };
    let mut c = conn_with(config, false);
    let mut ce = HpackEncoder::new(false);
    let mut se = HpackEncoder::new(false);
    let mut client = client_start();
    client.extend(headers(&mut ce, 1, &fields(&get("/sse")), true));
    let mut server = server_start();
    server.extend(headers(
        &mut se,
        1,
        &[
            (":status", "200"),
            ("content-type", "text/event-stream; charset=utf-8"),
        ],
        false,
    ));
    server.extend(data(
        1,
        b"data: short\n\ndata: this one is much too long\n\n",
        true,
    ));
    let out = run(&mut c, &[(C, client), (S, server)]);
    let folded = fold(&out);
    let f = folded.values().next().unwrap();
    assert!(f.ended);
    assert!(f.exchange.flags.truncated);
    assert_eq!(c.stats().sse_events_truncated, 1);
    assert_eq!(
        f.exchange.response.as_ref().unwrap().sse_events[0].data,
        "short"
    );
}

#[test]
fn body_budget_is_shared_and_given_back() {
    let budget = Arc::new(shadowmcp_http2::BodyBudget::new(1000));
    let config = Http2Config {
        body_budget: Some(budget.clone()),
        ..Http2Config::default()
    };
    let mut c = conn_with(config, false);
    let mut ce = HpackEncoder::new(false);
    let mut se = HpackEncoder::new(false);
    let floor = shadowmcp_http2::BodyBudget::FLOOR;
    let body = vec![b'b'; floor + 5000];
    let mut client = client_start();
    client.extend(headers(&mut ce, 1, &fields(&get("/dl")), true));
    let mut server = server_start();
    server.extend(headers(&mut se, 1, &[(":status", "200")], false));
    for chunk in body.chunks(16_000) {
        server.extend(data(1, chunk, false));
    }
    let mut out = run(&mut c, &[(C, client), (S, server)]);
    assert_eq!(budget.used(), 1000);
    c.on_data(S, ts(), &data(1, b"", true), &mut out);
    let ex = exchanges(&out)[0];
    let b = &ex.response.as_ref().unwrap().body;
    // The floor is always kept, then what the budget allowed.
    assert_eq!(b.data.len(), floor + 1000);
    assert!(b.truncated);
    assert_eq!(b.wire_len, body.len() as u64);
    assert_eq!(budget.used(), 0);
}

#[test]
fn midstream_pickup_with_reversed_directions_is_swapped() {
    let mut ce = HpackEncoder::new(true);
    let mut se = HpackEncoder::new(true);
    let mut c = conn_with(Http2Config::default(), true);
    let mut client = frame(kind::PING, 0, 0, &[0; 8]);
    client.extend(frame(kind::WINDOW_UPDATE, 0, 0, &[0, 0, 1, 0]));
    client.extend(headers(&mut ce, 9, &fields(&mcp_post("/mcp")), false));
    client.extend(data(9, b"{}", true));
    let mut server = frame(kind::PING, flag::ACK, 0, &[0; 8]);
    server.extend(frame(kind::WINDOW_UPDATE, 0, 0, &[0, 0, 1, 0]));
    server.extend(headers(&mut se, 9, &[(":status", "200")], false));
    server.extend(data(9, b"ok", true));
    // The transport got the directions the wrong way round.
    let out = run(&mut c, &[(S, client), (C, server)]);
    let ex = exchanges(&out);
    assert_eq!(ex.len(), 1);
    assert_eq!(ex[0].method(), Some("POST"));
    assert_eq!(ex[0].request.as_ref().unwrap().body.data, b"{}");
    assert_eq!(ex[0].response.as_ref().unwrap().body.data, b"ok");
    assert_eq!(c.stats().direction_swaps, 1);
    assert_eq!(c.flow().client, flow().server);
    assert_eq!(ex[0].flow.as_ref().unwrap().client, flow().server);
}

#[test]
fn response_seen_before_its_request_is_paired() {
    // Two taps merged with skewed clocks: the server's frames come first.
    let mut c = conn();
    let mut ce = HpackEncoder::new(true);
    let mut se = HpackEncoder::new(true);
    let mut server = server_start();
    server.extend(headers(&mut se, 3, &[(":status", "200")], false));
    server.extend(data(3, b"three", true));
    server.extend(headers(&mut se, 1, &[(":status", "404")], true));
    let mut client = client_start();
    client.extend(headers(&mut ce, 1, &fields(&get("/one")), true));
    client.extend(headers(&mut ce, 3, &fields(&mcp_post("/three")), false));
    client.extend(data(3, b"{}", true));
    let out = run(&mut c, &[(S, server), (C, client)]);
    let ex = exchanges(&out);
    assert_eq!(ex.len(), 2);
    assert_eq!(ex[0].path(), Some("/one"));
    assert_eq!(ex[0].status(), Some(404));
    assert_eq!(ex[1].path(), Some("/three"));
    assert_eq!(ex[1].request.as_ref().unwrap().body.data, b"{}");
    assert_eq!(ex[1].response.as_ref().unwrap().body.data, b"three");
    assert!(ex.iter().all(|e| e.flags == Flags::default()));
    // A response whose request never comes is reported at the end.
    let mut out = run(
        &mut c,
        &[(S, headers(&mut se, 7, &[(":status", "200")], true))],
    );
    assert!(out.is_empty());
    c.on_close(ts(), &mut out);
    let ex = exchanges(&out);
    assert!(ex[0].request.is_none() && ex[0].flags.incomplete);
}

#[test]
fn connection_can_move_between_threads() {
    fn is_send<T: Send>() {}
    is_send::<Connection>();
}

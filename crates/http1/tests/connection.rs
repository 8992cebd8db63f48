mod common;

use common::*;
use shadowmcp_exchange::{HttpVersion, Record};
use shadowmcp_http1::{Direction, Http1Config, ParseErrorKind};

#[test]
fn simple_exchange_keeps_case_and_timestamps() {
    let mut c = conn();
    let mut out = Vec::new();
    c.on_data(
        Direction::ToServer,
        ts(10),
        b"POST /mcp HTTP/1.1\r\nHost: mcp.example\r\nMcp-Session-Id: abc\r\nContent-Length: 4\r\n\r\n{}",
        &mut out,
    );
    c.on_data(Direction::ToServer, ts(11), b"\r\n\r\n", &mut out);
    assert!(out.is_empty());
    c.on_data(
        Direction::ToClient,
        ts(20),
        b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n",
        &mut out,
    );
    let ex = exchanges(&out);
    assert_eq!(ex.len(), 1);
    let e = ex[0];
    assert_eq!(e.request_ts, Some(ts(10)));
    assert_eq!(e.response_ts, Some(ts(20)));
    let req = e.request.as_ref().unwrap();
    assert_eq!(req.headers.0[1].name, "Mcp-Session-Id");
    assert_eq!(req.body.data, b"{}\r\n");
    assert_eq!(req.body.wire_len, 4);
    assert_eq!(e.status(), Some(202));
    assert_eq!(e.response.as_ref().unwrap().reason, "Accepted");
    assert_eq!(e.flags, Default::default());
    assert_eq!(e.flow.as_ref().unwrap().id, 7);
    assert_eq!(e.origin.input, "test.pcap");
    assert_eq!(c.stats().exchanges, 1);
    assert_eq!(c.stats().parse_errors.total(), 0);
}

#[test]
fn pipelined_mix_is_parsed_in_order() {
    let (reqs, resps) = pipelined_mix();
    let mut c = conn();
    let out = run(&mut c, &reqs, &resps, usize::MAX);
    let ex = normalize(&out);
    let paths: Vec<_> = ex.iter().map(|e| e.path().unwrap().to_string()).collect();
    assert_eq!(
        paths,
        ["/chunked", "/gz", "/head", "/nc", "/nm", "/mcp", "/sse", "/last"]
    );
    let resp = |i: usize| ex[i].response.as_ref().unwrap();
    assert_eq!(resp(0).body.data, b"Wikipedia");
    assert_eq!(resp(0).trailers.get_str("x-trailer"), Some("yes"));
    assert_eq!(
        resp(1).body.data,
        b"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}".repeat(20)
    );
    assert_eq!(resp(1).body.encodings, vec!["gzip".to_string()]);
    assert!(resp(1).body.wire_len < resp(1).body.decoded_len);
    assert!(resp(2).body.data.is_empty());
    assert_eq!(resp(3).status, 204);
    assert_eq!(resp(4).status, 304);
    assert_eq!(resp(5).status, 200, "the 100 Continue is skipped");
    assert_eq!(ex[5].request.as_ref().unwrap().body.data, b"hello");
    assert_eq!(resp(6).sse_events, vec![ev("one"), ev("two")]);
    assert!(ex[6].flags.streaming);
    assert_eq!(resp(7).body.data, b"until the end");
    assert_eq!(resp(7).version, HttpVersion::Http10);
    for e in &ex {
        assert!(!e.flags.incomplete && !e.flags.malformed, "{:?}", e.path());
    }
    assert_eq!(c.stats().interim_responses, 1);
    assert_eq!(c.stats().parse_errors.total(), 0);
}

#[test]
fn byte_at_a_time_equals_one_shot() {
    let (reqs, resps) = pipelined_mix();
    let one = normalize(&run(&mut conn(), &reqs, &resps, usize::MAX));
    for step in [1, 2, 3, 7, 64] {
        let many = normalize(&run(&mut conn(), &reqs, &resps, step));
        assert_eq!(one, many, "step {step}");
    }
}

#[test]
fn close_delimited_response_ends_at_fin() {
    let mut c = conn();
    let mut out = Vec::new();
    c.on_data(
        Direction::ToServer,
        ts(1),
        b"GET / HTTP/1.0\r\n\r\n",
        &mut out,
    );
    c.on_data(
        Direction::ToClient,
        ts(2),
        b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nabc",
        &mut out,
    );
    c.on_data(Direction::ToClient, ts(3), b"def", &mut out);
    assert!(out.is_empty());
    c.on_fin(Direction::ToClient, ts(4), &mut out);
    let ex = exchanges(&out);
    assert_eq!(ex[0].response.as_ref().unwrap().body.data, b"abcdef");
    assert!(!ex[0].flags.incomplete);
}

#[test]
fn cut_content_length_body_is_incomplete_at_close() {
    let mut c = conn();
    let out = run(
        &mut c,
        b"GET / HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
        usize::MAX,
    );
    let ex = exchanges(&out);
    assert_eq!(ex.len(), 2);
    assert!(ex[0].flags.incomplete);
    assert_eq!(ex[0].response.as_ref().unwrap().body.data, b"abc");
    assert_eq!(ex[1].path(), Some("/2"));
    assert!(ex[1].response.is_none() && ex[1].flags.incomplete);
    assert_eq!(c.stats().requests_without_response, 1);
}

#[test]
fn transfer_encoding_beats_content_length_and_is_flagged() {
    let mut c = conn();
    let out = run(
        &mut c,
        b"POST /x HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET /y HTTP/1.1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        usize::MAX,
    );
    let ex = exchanges(&out);
    assert_eq!(ex.len(), 2);
    assert_eq!(ex[0].request.as_ref().unwrap().body.data, b"abc");
    assert!(ex[0].flags.malformed);
    assert_eq!(ex[1].path(), Some("/y"));
    assert!(!ex[1].flags.malformed);
    let s = c.stats();
    assert_eq!(s.smuggling_indicators, 1);
    assert_eq!(
        s.parse_errors
            .get(ParseErrorKind::TransferEncodingWithContentLength),
        1
    );
}

#[test]
fn conflicting_content_length_uses_first_and_flags() {
    let mut c = conn();
    let out = run(
        &mut c,
        b"POST /x HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 5\r\n\r\nabGET /y HTTP/1.1\r\n\r\n",
        b"",
        usize::MAX,
    );
    let ex = exchanges(&out);
    assert_eq!(ex.len(), 2);
    assert_eq!(ex[0].request.as_ref().unwrap().body.data, b"ab");
    assert!(ex[0].flags.malformed);
    assert_eq!(ex[1].path(), Some("/y"));
    assert_eq!(
        c.stats()
            .parse_errors
            .get(ParseErrorKind::ConflictingContentLength),
        1
    );
    assert_eq!(c.stats().smuggling_indicators, 1);
}

#[test]
fn obs_fold_bare_lf_and_leading_blank_lines() {
    let mut c = conn();
    let out = run(
        &mut c,
        b"\r\n\nGET /f HTTP/1.1\nHost: h.example\nX-Folded: one\n\ttwo\n\n",
        b"HTTP/1.1 200 OK\nContent-Length: 1\n\nz",
        1,
    );
    let ex = exchanges(&out);
    assert_eq!(ex.len(), 1);
    let req = ex[0].request.as_ref().unwrap();
    assert_eq!(req.headers.get_str("x-folded"), Some("one two"));
    assert_eq!(ex[0].host(), Some("h.example"));
    assert_eq!(ex[0].response.as_ref().unwrap().body.data, b"z");
    assert_eq!(c.stats().obs_folds, 1);
}

#[test]
fn connect_tunnel_stops_parsing() {
    let mut c = conn();
    let mut out = Vec::new();
    c.on_data(
        Direction::ToServer,
        ts(1),
        b"CONNECT mcp.example:443 HTTP/1.1\r\nHost: mcp.example:443\r\n\r\n\x16\x03\x01\x00\x05hello",
        &mut out,
    );
    c.on_data(
        Direction::ToClient,
        ts(2),
        b"HTTP/1.1 200 Connection Established\r\n\r\n\x16\x03\x03garbage",
        &mut out,
    );
    c.on_data(
        Direction::ToServer,
        ts(3),
        b"GET / HTTP/1.1\r\n\r\n",
        &mut out,
    );
    c.on_close(ts(4), &mut out);
    let ex = exchanges(&out);
    assert_eq!(ex.len(), 1);
    assert!(ex[0].flags.tunnel);
    assert_eq!(ex[0].host(), Some("mcp.example:443"));
    assert!(c.is_tunnel());
    assert!(c.stats().tunnel_bytes > 20);
    assert_eq!(c.stats().parse_errors.total(), 0);
}

#[test]
fn refused_connect_goes_on_as_http() {
    let mut c = conn();
    let out = run(
        &mut c,
        b"CONNECT a.example:443 HTTP/1.1\r\n\r\nGET /next HTTP/1.1\r\n\r\n",
        b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi",
        usize::MAX,
    );
    let ex = exchanges(&out);
    assert_eq!(ex.len(), 2);
    assert_eq!(ex[0].status(), Some(407));
    assert!(!ex[0].flags.tunnel);
    assert_eq!(ex[1].path(), Some("/next"));
    assert_eq!(ex[1].response.as_ref().unwrap().body.data, b"hi");
}

#[test]
fn websocket_upgrade_is_recorded_as_tunnel() {
    let mut c = conn();
    let out = run(
        &mut c,
        b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Protocol: mcp\r\n\r\n\x81\x05hello",
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Protocol: mcp\r\n\r\n\x81\x02hi",
        usize::MAX,
    );
    let ex = exchanges(&out);
    assert_eq!(ex.len(), 1);
    assert!(ex[0].flags.tunnel);
    let resp = ex[0].response.as_ref().unwrap();
    assert_eq!(resp.status, 101);
    assert_eq!(resp.headers.get_str("sec-websocket-protocol"), Some("mcp"));
    assert_eq!(
        ex[0].request.as_ref().unwrap().headers.get_str("upgrade"),
        Some("websocket")
    );
}

#[test]
fn http2_prior_knowledge_is_not_parsed() {
    let mut c = conn();
    let out = run(
        &mut c,
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x12\x04",
        b"\x00\x00\x00\x04\x00\x00\x00\x00\x00",
        usize::MAX,
    );
    assert!(out.is_empty());
    assert_eq!(c.stats().http2_prior_knowledge, 1);
    assert_eq!(c.stats().parse_errors.total(), 0);
}

#[test]
fn content_codings_br_zstd_deflate_and_stacked() {
    let text = b"{\"jsonrpc\":\"2.0\",\"method\":\"tools/list\"}".repeat(30);
    let mut deflate = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut deflate, &text).unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("br", brotli(&text)),
        ("zstd", zstd(&text)),
        ("deflate", deflate.finish().unwrap()),
        ("gzip, br", brotli(&gzip(&text))),
        ("zstd, gzip", gzip(&zstd(&text))),
    ];
    for (enc, wire) in cases {
        let resp = response(
            &format!(
                "HTTP/1.1 200 OK\nContent-Encoding: {enc}\nContent-Length: {}\n\n",
                wire.len()
            ),
            &wire,
        );
        for step in [1, 1000] {
            let out = run(&mut conn(), b"GET / HTTP/1.1\r\n\r\n", &resp, step);
            let body = &exchanges(&out)[0].response.as_ref().unwrap().body;
            assert_eq!(body.decode_error, None, "{enc}");
            assert_eq!(body.data, text, "{enc}");
            assert_eq!(body.wire_len, wire.len() as u64);
            assert_eq!(body.decoded_len, text.len() as u64);
        }
    }
}

#[test]
fn unknown_coding_keeps_raw_bytes() {
    let out = run(
        &mut conn(),
        b"GET / HTTP/1.1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Encoding: compress\r\nContent-Length: 3\r\n\r\nxyz",
        usize::MAX,
    );
    let body = &exchanges(&out)[0].response.as_ref().unwrap().body;
    assert_eq!(body.data, b"xyz");
    assert!(body.decode_error.as_ref().unwrap().contains("compress"));
}

#[test]
fn gzip_bomb_stays_under_the_cap() {
    // 1 GiB of zeros as 1024 gzip members of 1 MiB each.
    let member = gzip(&vec![0u8; 1 << 20]);
    let wire = member.repeat(1024);
    let cap = 1 << 20;
    let config = Http1Config {
        max_body: cap,
        ..Http1Config::default()
    };
    let mut c = conn_with(false, config);
    let resp = response(
        &format!(
            "HTTP/1.1 200 OK\nContent-Encoding: gzip\nContent-Length: {}\n\n",
            wire.len()
        ),
        &wire,
    );
    let out = run(&mut c, b"GET / HTTP/1.1\r\n\r\n", &resp, 64 << 10);
    let e = exchanges(&out)[0];
    let body = &e.response.as_ref().unwrap().body;
    assert!(body.truncated && e.flags.truncated);
    assert_eq!(body.data.len(), cap);
    assert!(body.data.iter().all(|&b| b == 0));
    // Decoding stopped at the cap: far less than the 1 GiB was inflated.
    assert!(body.decoded_len < 2 * cap as u64, "{}", body.decoded_len);
    assert_eq!(body.wire_len, wire.len() as u64);
    assert_eq!(c.stats().bodies_truncated, 1);
}

#[test]
fn identity_body_over_cap_is_counted_not_kept() {
    let config = Http1Config {
        max_body: 10,
        ..Http1Config::default()
    };
    let body = vec![b'a'; 1000];
    let resp = response("HTTP/1.1 200 OK\nContent-Length: 1000\n\n", &body);
    let out = run(
        &mut conn_with(false, config),
        b"GET / HTTP/1.1\r\n\r\n",
        &resp,
        7,
    );
    let b = &exchanges(&out)[0].response.as_ref().unwrap().body;
    assert_eq!(b.data.len(), 10);
    assert_eq!((b.wire_len, b.decoded_len), (1000, 1000));
    assert!(b.truncated);
}

#[test]
fn huge_content_length_is_not_trusted() {
    let mut c = conn();
    let out = run(
        &mut c,
        b"GET / HTTP/1.1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551615\r\n\r\nsome bytes",
        usize::MAX,
    );
    let e = exchanges(&out)[0];
    assert!(e.flags.incomplete);
    assert_eq!(e.response.as_ref().unwrap().body.data, b"some bytes");
    assert!(c.buffered_bytes() < 100);
}

#[test]
fn sse_stream_is_emitted_at_head_and_updated() {
    let mut c = conn();
    let mut out = Vec::new();
    c.on_data(
        Direction::ToServer,
        ts(1),
        b"GET /sse HTTP/1.1\r\nAccept: text/event-stream\r\n\r\n",
        &mut out,
    );
    c.on_data(
        Direction::ToClient,
        ts(2),
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\nevent: endpoint\ndata: /messages?s=1\n\n",
        &mut out,
    );
    let ex = exchanges(&out);
    assert_eq!(ex.len(), 1);
    assert!(ex[0].flags.streaming);
    let first = &ex[0].response.as_ref().unwrap().sse_events;
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].event.as_deref(), Some("endpoint"));
    assert_eq!(first[0].data, "/messages?s=1");
    let id = ex[0].id;
    out.clear();
    c.on_data(Direction::ToClient, ts(3), b"data: {\"a\":", &mut out);
    assert!(out.is_empty(), "no record for a partial event");
    c.on_data(
        Direction::ToClient,
        ts(4),
        b"1}\nid: 9\n\n: ping\n\n",
        &mut out,
    );
    let up = updates(&out);
    assert_eq!(up.len(), 1);
    assert_eq!(up[0].exchange_id, id);
    assert_eq!(up[0].ts, ts(4));
    assert!(!up[0].end);
    assert_eq!(up[0].events[0].data, "{\"a\":1}");
    assert_eq!(up[0].events[0].id.as_deref(), Some("9"));
    out.clear();
    c.on_data(Direction::ToClient, ts(5), b"data: cut", &mut out);
    c.on_fin(Direction::ToClient, ts(6), &mut out);
    let up = updates(&out);
    assert_eq!(up.len(), 1);
    assert!(up[0].end);
    assert!(up[0].flags.incomplete, "the partial event was discarded");
    assert_eq!(c.stats().sse_events, 2);
}

#[test]
fn sse_stream_ended_by_fin_after_whole_events_is_complete() {
    let mut c = conn();
    let mut out = Vec::new();
    c.on_data(
        Direction::ToServer,
        ts(1),
        b"GET /sse HTTP/1.1\r\n\r\n",
        &mut out,
    );
    c.on_data(
        Direction::ToClient,
        ts(2),
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\ndata: a\n\n",
        &mut out,
    );
    c.on_fin(Direction::ToClient, ts(3), &mut out);
    let up = updates(&out);
    assert_eq!(up.len(), 1);
    assert!(up[0].end && up[0].events.is_empty());
    assert_eq!(up[0].flags, Default::default());
    assert_eq!(
        exchanges(&out)[0].response.as_ref().unwrap().sse_events,
        vec![ev("a")]
    );
}

#[test]
fn sse_stream_cut_by_close_is_incomplete() {
    let mut c = conn();
    let mut out = Vec::new();
    c.on_data(
        Direction::ToServer,
        ts(1),
        b"GET /sse HTTP/1.1\r\n\r\n",
        &mut out,
    );
    c.on_data(
        Direction::ToClient,
        ts(2),
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n5\r\ndata:",
        &mut out,
    );
    c.on_close(ts(3), &mut out);
    let up = updates(&out);
    assert_eq!(up.len(), 1);
    assert!(up[0].end && up[0].flags.incomplete);
}

#[test]
fn sse_gzip_stream_across_splits() {
    let events: String = (0..50)
        .map(|i| format!("id: {i}\ndata: event {i}\n\n"))
        .collect();
    let wire = gzip(events.as_bytes());
    let resp = response(
        "HTTP/1.1 200 OK\nContent-Type: text/event-stream\nContent-Encoding: gzip\nTransfer-Encoding: chunked\n\n",
        &chunked(&wire.chunks(37).collect::<Vec<_>>()),
    );
    let want: Vec<_> = (0..50).map(|i| format!("event {i}")).collect();
    for step in [1, 5, 100000] {
        let out = run(&mut conn(), b"GET / HTTP/1.1\r\n\r\n", &resp, step);
        let ex = normalize(&out);
        let got: Vec<_> = ex[0]
            .response
            .as_ref()
            .unwrap()
            .sse_events
            .iter()
            .map(|e| e.data.clone())
            .collect();
        assert_eq!(got, want, "step {step}");
        assert!(!ex[0].flags.incomplete);
    }
}

#[test]
fn endless_sse_stream_stays_bounded() {
    let config = Http1Config {
        max_sse_event_bytes: 4096,
        ..Http1Config::default()
    };
    let mut c = conn_with(false, config);
    let mut out = Vec::new();
    c.on_data(
        Direction::ToServer,
        ts(1),
        b"GET /sse HTTP/1.1\r\n\r\n",
        &mut out,
    );
    c.on_data(
        Direction::ToClient,
        ts(2),
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n",
        &mut out,
    );
    let batch = "data: tick tock tick tock\n\n".repeat(1000);
    let mut total = 0;
    for _ in 0..200 {
        out.clear();
        c.on_data(Direction::ToClient, ts(3), batch.as_bytes(), &mut out);
        total += updates(&out).iter().map(|u| u.events.len()).sum::<usize>();
        assert!(c.buffered_bytes() < 8192, "{}", c.buffered_bytes());
    }
    assert_eq!(total, 200 * 1000);
    // One event that never ends: cut at the cap, still bounded.
    c.on_data(Direction::ToClient, ts(4), b"data: ", &mut out);
    for _ in 0..1000 {
        c.on_data(Direction::ToClient, ts(4), &[b'x'; 1000], &mut out);
    }
    assert!(c.buffered_bytes() < 8192 * 2);
    out.clear();
    c.on_data(Direction::ToClient, ts(5), b"\n\n", &mut out);
    let up = updates(&out);
    assert!(up[0].events[0].data.len() <= 4096);
    assert!(up[0].flags.truncated);
    assert_eq!(c.stats().sse_events_truncated, 1);
}

#[test]
fn gap_in_content_length_body_continues() {
    let mut c = conn();
    let mut out = Vec::new();
    c.on_data(
        Direction::ToServer,
        ts(1),
        b"GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n",
        &mut out,
    );
    c.on_data(
        Direction::ToClient,
        ts(2),
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
        &mut out,
    );
    c.on_gap(Direction::ToClient, 4, &mut out);
    c.on_data(Direction::ToClient, ts(3), b"hij" as &[u8], &mut out);
    c.on_data(
        Direction::ToClient,
        ts(3),
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nz",
        &mut out,
    );
    let ex = exchanges(&out);
    assert_eq!(ex.len(), 2);
    assert!(ex[0].flags.gap && !ex[0].flags.incomplete);
    let b = &ex[0].response.as_ref().unwrap().body;
    assert_eq!(b.data, b"abchij");
    assert_eq!(b.wire_len, 10);
    assert_eq!(ex[1].response.as_ref().unwrap().body.data, b"z");
    assert!(!ex[1].flags.gap);
    assert_eq!(c.stats().gap_bytes, 4);
}

#[test]
fn gap_in_chunked_framing_resyncs() {
    let mut c = conn();
    let mut out = Vec::new();
    c.on_data(
        Direction::ToServer,
        ts(1),
        b"GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n",
        &mut out,
    );
    c.on_data(
        Direction::ToClient,
        ts(2),
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n",
        &mut out,
    );
    // The next chunk-size line is lost: framing is gone.
    c.on_gap(Direction::ToClient, 50, &mut out);
    c.on_data(
        Direction::ToClient,
        ts(3),
        b"lost chunk tail\r\n0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nz",
        &mut out,
    );
    let ex = exchanges(&out);
    assert_eq!(ex.len(), 2);
    assert!(ex[0].flags.gap && ex[0].flags.incomplete);
    assert_eq!(ex[0].response.as_ref().unwrap().body.data, b"abc");
    assert_eq!(ex[1].path(), Some("/b"));
    assert_eq!(ex[1].response.as_ref().unwrap().body.data, b"z");
    assert_eq!(c.stats().resyncs, 1);
}

#[test]
fn gap_inside_chunk_data_continues() {
    let mut c = conn();
    let mut out = Vec::new();
    c.on_data(
        Direction::ToServer,
        ts(1),
        b"GET /a HTTP/1.1\r\n\r\n",
        &mut out,
    );
    c.on_data(
        Direction::ToClient,
        ts(2),
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\nabc",
        &mut out,
    );
    c.on_gap(Direction::ToClient, 3, &mut out);
    c.on_data(Direction::ToClient, ts(3), b"ghij\r\n0\r\n\r\n", &mut out);
    let ex = exchanges(&out);
    assert_eq!(ex.len(), 1);
    assert!(ex[0].flags.gap && !ex[0].flags.incomplete);
    assert_eq!(ex[0].response.as_ref().unwrap().body.data, b"abcghij");
}

#[test]
fn gap_in_request_head_keeps_its_whole_lines_and_resyncs() {
    let mut c = conn();
    let mut out = Vec::new();
    c.on_data(
        Direction::ToServer,
        ts(1),
        b"POST /mcp HTTP/1.1\r\nHost: mcp.example\r\nContent-Le",
        &mut out,
    );
    c.on_gap(Direction::ToServer, 100, &mut out);
    c.on_data(
        Direction::ToServer,
        ts(2),
        b"st: x\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n",
        &mut out,
    );
    c.on_close(ts(3), &mut out);
    let ex = exchanges(&out);
    assert_eq!(ex.len(), 2);
    // The cut head still tells where the request went.
    assert_eq!(ex[0].method(), Some("POST"));
    assert_eq!(ex[0].path(), Some("/mcp"));
    assert_eq!(ex[0].host(), Some("mcp.example"));
    assert!(ex[0].flags.gap && ex[0].flags.incomplete);
    assert_eq!(ex[0].request.as_ref().unwrap().headers.len(), 1);
    assert_eq!(ex[1].path(), Some("/b"));
    assert!(!ex[1].flags.gap);
}

#[test]
fn gap_before_the_request_line_ends_keeps_nothing() {
    let mut c = conn();
    let mut out = Vec::new();
    c.on_data(Direction::ToServer, ts(1), b"POST /mc", &mut out);
    c.on_gap(Direction::ToServer, 100, &mut out);
    c.on_data(
        Direction::ToServer,
        ts(2),
        b"x\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n",
        &mut out,
    );
    c.on_close(ts(3), &mut out);
    let ex = exchanges(&out);
    assert_eq!(ex.len(), 1);
    assert_eq!(ex[0].path(), Some("/b"));
}

#[test]
fn midstream_pickup_finds_the_next_message() {
    let mut c = conn_with(true, Http1Config::default());
    let mut out = Vec::new();
    c.on_data(
        Direction::ToClient,
        ts(1),
        b"e rest of an earlier body\r\nmore\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi",
        &mut out,
    );
    c.on_data(
        Direction::ToServer,
        ts(2),
        b"dy\": 1}POST /mcp HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}",
        &mut out,
    );
    c.on_data(
        Direction::ToServer,
        ts(2),
        b"\r\nGET /x HTTP/1.1\r\n\r\n",
        &mut out,
    );
    c.on_data(
        Direction::ToClient,
        ts(3),
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nyes",
        &mut out,
    );
    let ex = exchanges(&out);
    assert_eq!(ex.len(), 2);
    assert!(ex[0].request.is_none());
    assert!(ex[0].flags.midstream);
    assert_eq!(ex[0].response.as_ref().unwrap().body.data, b"hi");
    assert_eq!(
        ex[1].path(),
        Some("/x"),
        "POST line was inside another line"
    );
    assert_eq!(ex[1].response.as_ref().unwrap().body.data, b"yes");
    assert!(c.stats().bytes_skipped > 0);
}

#[test]
fn midstream_reversed_directions_are_swapped() {
    let mut c = conn_with(true, Http1Config::default());
    let mut out = Vec::new();
    c.on_data(
        Direction::ToServer,
        ts(1),
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi",
        &mut out,
    );
    c.on_data(
        Direction::ToClient,
        ts(2),
        b"GET /two HTTP/1.1\r\n\r\n",
        &mut out,
    );
    c.on_data(
        Direction::ToServer,
        ts(3),
        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
        &mut out,
    );
    let ex = exchanges(&out);
    assert_eq!(ex.len(), 2);
    assert!(ex[0].request.is_none() && ex[0].flags.midstream);
    assert_eq!(ex[1].path(), Some("/two"));
    assert_eq!(ex[1].status(), Some(404));
    let f = ex[1].flow.as_ref().unwrap();
    assert_eq!(f.client.port(), 80, "flow re-oriented");
    assert_eq!(c.stats().direction_swaps, 1);
}

#[test]
fn unsolicited_response_is_malformed() {
    let mut c = conn();
    let out = run(
        &mut c,
        b"",
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        1,
    );
    let ex = exchanges(&out);
    assert!(ex[0].request.is_none() && ex[0].flags.malformed);
    assert_eq!(
        c.stats()
            .parse_errors
            .get(ParseErrorKind::UnsolicitedResponse),
        1
    );
}

#[test]
fn oversized_head_is_counted_and_skipped() {
    let config = Http1Config {
        max_header_bytes: 256,
        ..Http1Config::default()
    };
    let mut c = conn_with(false, config);
    let mut reqs = b"GET /big HTTP/1.1\r\nX-Big: ".to_vec();
    reqs.extend(vec![b'a'; 5000]);
    reqs.extend_from_slice(b"\r\n\r\nGET /ok HTTP/1.1\r\n\r\n");
    let out = run(
        &mut c,
        &reqs,
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        100,
    );
    let ex = exchanges(&out);
    assert_eq!(ex.len(), 1);
    assert_eq!(ex[0].path(), Some("/ok"));
    assert_eq!(c.stats().parse_errors.get(ParseErrorKind::HeadTooLarge), 1);
}

#[test]
fn too_many_headers_are_dropped_and_flagged() {
    let config = Http1Config {
        max_headers: 4,
        ..Http1Config::default()
    };
    let mut c = conn_with(false, config);
    let mut reqs = b"GET / HTTP/1.1\r\n".to_vec();
    for i in 0..10 {
        reqs.extend(format!("X-{i}: v\r\n").into_bytes());
    }
    reqs.extend_from_slice(b"\r\n");
    let out = run(&mut c, &reqs, b"", usize::MAX);
    let ex = exchanges(&out);
    assert_eq!(ex[0].request.as_ref().unwrap().headers.len(), 4);
    assert!(ex[0].flags.malformed);
}

#[test]
fn chunk_size_overflow_is_an_error_and_resyncs() {
    let mut c = conn();
    let out = run(
        &mut c,
        b"GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff0\r\nxx\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nq",
        3,
    );
    let ex = exchanges(&out);
    assert_eq!(ex.len(), 2);
    assert!(ex[0].flags.malformed && ex[0].flags.incomplete);
    assert_eq!(ex[1].response.as_ref().unwrap().body.data, b"q");
    assert_eq!(
        c.stats()
            .parse_errors
            .get(ParseErrorKind::ChunkSizeOverflow),
        1
    );
}

#[test]
fn invalid_status_line_drops_that_response() {
    let mut c = conn();
    let out = run(
        &mut c,
        b"GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n",
        b"HTTP/1.1 2x0 Bad\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        usize::MAX,
    );
    let ex = exchanges(&out);
    assert_eq!(ex.len(), 2);
    assert_eq!(ex[0].path(), Some("/a"));
    assert!(ex[0].response.is_none() && ex[0].flags.malformed);
    assert_eq!(ex[1].path(), Some("/b"));
    assert_eq!(ex[1].status(), Some(200));
}

#[test]
fn early_response_marks_request_incomplete() {
    let mut c = conn();
    let mut out = Vec::new();
    c.on_data(
        Direction::ToServer,
        ts(1),
        b"POST /up HTTP/1.1\r\nContent-Length: 100\r\n\r\npartial",
        &mut out,
    );
    c.on_data(
        Direction::ToClient,
        ts(2),
        b"HTTP/1.1 413 Too Large\r\nContent-Length: 0\r\n\r\n",
        &mut out,
    );
    let ex = exchanges(&out);
    assert_eq!(ex.len(), 1);
    assert!(ex[0].flags.incomplete);
    assert_eq!(ex[0].request.as_ref().unwrap().body.data, b"partial");
    // The rest of the upload is consumed without another record.
    c.on_data(Direction::ToServer, ts(3), &[b'x'; 93], &mut out);
    c.on_close(ts(4), &mut out);
    assert_eq!(exchanges(&out).len(), 1);
}

#[test]
fn pending_queue_is_capped() {
    let config = Http1Config {
        max_pending_requests: 2,
        ..Http1Config::default()
    };
    let mut c = conn_with(false, config);
    let reqs = b"GET /1 HTTP/1.1\r\n\r\n".repeat(5);
    let mut out = Vec::new();
    c.on_data(Direction::ToServer, ts(1), &reqs, &mut out);
    assert_eq!(exchanges(&out).len(), 3);
    assert!(exchanges(&out)
        .iter()
        .all(|e| e.flags.incomplete && e.response.is_none()));
    assert_eq!(c.stats().pending_overflow, 3);
}

#[test]
fn data_after_close_is_ignored() {
    let mut c = conn();
    let mut out = Vec::new();
    c.on_close(ts(1), &mut out);
    c.on_data(
        Direction::ToServer,
        ts(2),
        b"GET / HTTP/1.1\r\n\r\n",
        &mut out,
    );
    assert!(out.is_empty());
    assert_eq!(c.stats().bytes_after_close, 18);
}

#[test]
fn exchange_ids_are_unique_across_connections() {
    let ids = shadowmcp_http1::ExchangeIds::new();
    let mut seen = std::collections::HashSet::new();
    for _ in 0..3 {
        let mut c = shadowmcp_http1::Connection::new(
            flow(),
            Default::default(),
            false,
            std::sync::Arc::new(Http1Config::default()),
            ids.clone(),
        );
        let out = run(
            &mut c,
            &b"GET / HTTP/1.1\r\n\r\n".repeat(3),
            b"",
            usize::MAX,
        );
        for r in &out {
            if let Record::Exchange(e) = r {
                assert!(seen.insert(e.id));
            }
        }
    }
    assert_eq!(seen.len(), 9);
}

#[test]
fn origin_position_is_that_of_the_first_byte() {
    let mut c = conn();
    let mut out = Vec::new();
    c.set_position(5);
    c.on_data(Direction::ToServer, ts(1), b"GET /a HTTP/1.1\r\n", &mut out);
    c.set_position(6);
    c.on_data(
        Direction::ToServer,
        ts(1),
        b"\r\nGET /b HTTP/1.1\r\n\r\n",
        &mut out,
    );
    c.set_position(9);
    c.on_data(
        Direction::ToClient,
        ts(2),
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        &mut out,
    );
    let ex = exchanges(&out);
    let pos: Vec<u64> = ex.iter().map(|e| e.origin.position).collect();
    assert_eq!(pos, vec![5, 6, 9], "the third response has no request");
}

fn bomb_body(enc: &str, wire: &[u8], cap: usize) -> (shadowmcp_exchange::Body, usize) {
    let config = Http1Config {
        max_body: cap,
        ..Http1Config::default()
    };
    let mut c = conn_with(false, config);
    let resp = response(
        &format!(
            "HTTP/1.1 200 OK\nContent-Encoding: {enc}\nContent-Length: {}\n\n",
            wire.len()
        ),
        wire,
    );
    let mut out = Vec::new();
    c.on_data(
        Direction::ToServer,
        ts(1),
        b"GET / HTTP/1.1\r\n\r\n",
        &mut out,
    );
    let mut peak = 0;
    for piece in resp.chunks(4096) {
        c.on_data(Direction::ToClient, ts(2), piece, &mut out);
        peak = peak.max(c.buffered_bytes());
    }
    c.on_close(ts(3), &mut out);
    let body = exchanges(&out)[0].response.as_ref().unwrap().body.clone();
    (body, peak)
}

#[test]
fn brotli_zstd_and_stacked_bombs_stay_under_the_cap() {
    let zeros = vec![0u8; 64 << 20];
    let cap = 256 << 10;
    for (enc, wire) in [
        ("br", brotli(&zeros)),
        ("zstd", zstd(&zeros)),
        ("gzip, zstd", zstd(&gzip(&zeros))),
    ] {
        let (body, peak) = bomb_body(enc, &wire, cap);
        assert!(body.truncated, "{enc}");
        assert_eq!(body.data.len(), cap, "{enc}");
        assert!(
            body.decoded_len < 2 * cap as u64,
            "{enc}: {}",
            body.decoded_len
        );
        assert!(peak <= cap, "{enc}: {peak}");
    }
}

#[test]
fn compressed_sse_bomb_is_cut_not_buffered() {
    let config = Http1Config {
        max_sse_event_bytes: 64 << 10,
        ..Http1Config::default()
    };
    let events = "data: ping\n\n".repeat(100_000);
    let member = gzip(events.as_bytes());
    let wire = member.repeat(50);
    let resp = response(
        &format!(
            "HTTP/1.1 200 OK\nContent-Type: text/event-stream\nContent-Encoding: gzip\nContent-Length: {}\n\n",
            wire.len()
        ),
        &wire,
    );
    let mut c = conn_with(false, config);
    let mut out = Vec::new();
    c.on_data(
        Direction::ToServer,
        ts(1),
        b"GET / HTTP/1.1\r\n\r\n",
        &mut out,
    );
    let mut delivered = 0;
    let mut end = None;
    for piece in resp.chunks(64 << 10) {
        c.on_data(Direction::ToClient, ts(2), piece, &mut out);
        assert!(
            c.buffered_bytes() <= 4 * (64 << 10),
            "{}",
            c.buffered_bytes()
        );
        delivered += normalize_events(&out);
        if let Some(u) = updates(&out).into_iter().find(|u| u.end) {
            end = Some(u.clone());
        }
        out.clear();
    }
    let end = end.expect("the stream ended with its body");
    assert!(end.flags.truncated);
    assert!(delivered < 50 * 100_000);
    assert!(c.stats().sse_events_truncated > 0);
}

fn normalize_events(out: &[Record]) -> usize {
    out.iter()
        .map(|r| match r {
            Record::Exchange(e) => e.response.as_ref().map_or(0, |r| r.sse_events.len()),
            Record::SseUpdate(u) => u.events.len(),
        })
        .sum()
}

#[test]
fn body_longer_than_announced_does_not_eat_the_next_request() {
    let mut c = conn();
    let out = run(
        &mut c,
        b"HEAD /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nz",
        usize::MAX,
    );
    let ex = exchanges(&out);
    assert_eq!(ex.len(), 2);
    assert_eq!(ex[0].path(), Some("/a"));
    assert!(ex[0].response.as_ref().unwrap().body.is_empty());
    assert_eq!(ex[1].path(), Some("/b"));
    assert_eq!(ex[1].response.as_ref().unwrap().body.data, b"z");
    assert_eq!(
        c.stats()
            .parse_errors
            .get(ParseErrorKind::InvalidStatusLine),
        1
    );
}

#[test]
fn response_older_than_the_waiting_request_is_not_paired_with_it() {
    let mut c = conn_with(true, Http1Config::default());
    let mut out = Vec::new();
    // Picked up mid-stream: the request of the first response was missed,
    // and the next request was captured before that response's bytes were
    // delivered by the transport.
    c.on_data(
        Direction::ToServer,
        ts(20),
        b"GET /next HTTP/1.1\r\n\r\n",
        &mut out,
    );
    c.on_data(
        Direction::ToClient,
        ts(10),
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nold",
        &mut out,
    );
    c.on_data(
        Direction::ToClient,
        ts(30),
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nnew",
        &mut out,
    );
    let ex = exchanges(&out);
    assert_eq!(ex.len(), 2);
    assert!(ex[0].request.is_none() && ex[0].flags.midstream);
    assert_eq!(ex[0].response.as_ref().unwrap().body.data, b"old");
    assert_eq!(ex[1].path(), Some("/next"));
    assert_eq!(ex[1].response.as_ref().unwrap().body.data, b"new");
}

#[test]
fn connection_can_move_between_threads() {
    fn assert_send<T: Send>() {}
    assert_send::<shadowmcp_http1::Connection>();
    let mut c = conn();
    let handle = std::thread::spawn(move || {
        let out = run(&mut c, b"GET / HTTP/1.1\r\n\r\n", b"", 1);
        exchanges(&out).len()
    });
    assert_eq!(handle.join().unwrap(), 1);
}

#[test]
fn pipelined_request_bodies_share_one_budget() {
    let config = Http1Config {
        max_body: 100,
        max_pending_body_bytes: 250,
        ..Http1Config::default()
    };
    let mut c = conn_with(false, config);
    let mut reqs = Vec::new();
    for _ in 0..4 {
        reqs.extend_from_slice(b"POST /u HTTP/1.1\r\nContent-Length: 100\r\n\r\n");
        reqs.extend_from_slice(&[b'b'; 100]);
    }
    let mut out = Vec::new();
    c.on_data(Direction::ToServer, ts(1), &reqs, &mut out);
    assert!(c.buffered_bytes() <= 250);
    c.on_close(ts(2), &mut out);
    let kept: Vec<usize> = exchanges(&out)
        .iter()
        .map(|e| e.request.as_ref().unwrap().body.data.len())
        .collect();
    assert_eq!(kept, vec![100, 100, 50, 0]);
    let last = &exchanges(&out)[3].request.as_ref().unwrap().body;
    assert!(last.truncated && last.decoded_len == 100);
}

#[test]
fn clock_skew_between_directions_does_not_break_pairing() {
    let mut c = conn();
    let mut out = Vec::new();
    c.on_data(
        Direction::ToServer,
        ts(20),
        b"GET /a HTTP/1.1\r\n\r\n",
        &mut out,
    );
    // The response's timestamp is slightly earlier (tap clock skew).
    c.on_data(
        Direction::ToClient,
        ts(19),
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        &mut out,
    );
    let ex = exchanges(&out);
    assert_eq!(ex[0].path(), Some("/a"));
    assert_eq!(ex[0].status(), Some(200));
}

#[test]
fn request_with_unknown_framing_is_flagged_and_skipped() {
    for head in [
        "POST /x HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
        "POST /x HTTP/1.1\r\nContent-Length: 12abc\r\n\r\n",
    ] {
        let mut c = conn();
        let mut reqs = head.as_bytes().to_vec();
        reqs.extend_from_slice(b"opaque body bytes\r\nGET /y HTTP/1.1\r\n\r\n");
        let out = run(&mut c, &reqs, b"", usize::MAX);
        let ex = exchanges(&out);
        assert_eq!(ex.len(), 2, "{head}");
        assert!(ex[0].flags.malformed);
        assert_eq!(ex[1].path(), Some("/y"));
        assert_eq!(c.stats().smuggling_indicators, 1);
        assert_eq!(c.stats().resyncs, 1);
    }
}

#[test]
fn held_bytes_overflow_resyncs_after_a_refused_upgrade() {
    let config = Http1Config {
        max_held_bytes: 32,
        ..Http1Config::default()
    };
    let mut c = conn_with(false, config);
    let mut reqs = b"GET / HTTP/1.1\r\nUpgrade: h2c\r\n\r\n".to_vec();
    reqs.extend_from_slice(&[b'x'; 100]);
    reqs.extend_from_slice(b"\r\nGET /after HTTP/1.1\r\n\r\n");
    let mut out = Vec::new();
    c.on_data(Direction::ToServer, ts(1), &reqs, &mut out);
    assert!(c.buffered_bytes() <= 32);
    c.on_data(
        Direction::ToClient,
        ts(2),
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        &mut out,
    );
    // The request after the held bytes was dropped with the overflow.
    c.on_data(
        Direction::ToServer,
        ts(3),
        b"GET /later HTTP/1.1\r\n\r\n",
        &mut out,
    );
    c.on_close(ts(4), &mut out);
    let paths: Vec<_> = exchanges(&out)
        .iter()
        .map(|e| e.path().unwrap().to_string())
        .collect();
    assert_eq!(paths, ["/", "/later"]);
    assert_eq!(
        c.stats()
            .parse_errors
            .get(ParseErrorKind::HeldBytesOverflow),
        1
    );
}

#[test]
fn long_chunk_line_and_huge_trailers_are_errors() {
    let config = Http1Config {
        max_chunk_line: 64,
        max_header_bytes: 128,
        ..Http1Config::default()
    };
    let mut long_ext = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;".to_vec();
    long_ext.extend(vec![b'e'; 200]);
    long_ext.extend_from_slice(b"\r\nx\r\n0\r\n\r\n");
    let mut big_trailer =
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: ".to_vec();
    big_trailer.extend(vec![b't'; 300]);
    big_trailer.extend_from_slice(b"\r\n\r\n");
    for (resp, kind) in [
        (long_ext, ParseErrorKind::ChunkLineTooLong),
        (big_trailer, ParseErrorKind::TrailersTooLarge),
    ] {
        let mut c = conn_with(false, config.clone());
        let out = run(&mut c, b"GET / HTTP/1.1\r\n\r\n", &resp, 9);
        let ex = exchanges(&out);
        assert_eq!(ex.len(), 1);
        assert!(ex[0].flags.malformed && ex[0].flags.incomplete, "{kind:?}");
        assert_eq!(c.stats().parse_errors.get(kind), 1);
    }
}

#[test]
fn content_decoding_can_be_switched_off() {
    let config = Http1Config {
        decode_content: false,
        ..Http1Config::default()
    };
    let wire = gzip(b"hello");
    let resp = response(
        &format!(
            "HTTP/1.1 200 OK\nContent-Encoding: gzip\nContent-Length: {}\n\n",
            wire.len()
        ),
        &wire,
    );
    let out = run(
        &mut conn_with(false, config),
        b"GET / HTTP/1.1\r\n\r\n",
        &resp,
        3,
    );
    let body = &exchanges(&out)[0].response.as_ref().unwrap().body;
    assert_eq!(body.data, wire);
    assert_eq!(body.encodings, vec!["gzip".to_string()]);
    assert_eq!(body.decode_error, None);
}

#[test]
fn head_of_an_event_stream_is_not_a_stream() {
    let out = run(
        &mut conn(),
        b"HEAD /sse HTTP/1.1\r\n\r\nGET /n HTTP/1.1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nn",
        usize::MAX,
    );
    let ex = exchanges(&out);
    assert_eq!(ex.len(), 2);
    assert!(!ex[0].flags.streaming);
    assert!(updates(&out).is_empty());
    assert_eq!(ex[1].response.as_ref().unwrap().body.data, b"n");
}

#[test]
fn event_stream_with_content_length_ends_cleanly() {
    let body = b"data: a\n\ndata: b\n\n";
    let resp = response(
        &format!(
            "HTTP/1.1 200 OK\nContent-Type: Text/Event-Stream\nContent-Length: {}\n\n",
            body.len()
        ),
        body,
    );
    for step in [1, 4, 1000] {
        let out = run(&mut conn(), b"GET / HTTP/1.1\r\n\r\n", &resp, step);
        let ex = normalize(&out);
        assert_eq!(
            ex[0].response.as_ref().unwrap().sse_events,
            vec![ev("a"), ev("b")]
        );
        assert!(!ex[0].flags.incomplete);
        assert_eq!(updates(&out).iter().filter(|u| u.end).count(), 1);
    }
}

#[test]
fn body_budget_is_shared_keeps_a_floor_and_comes_back() {
    use shadowmcp_http1::BodyBudget;
    use std::sync::Arc;
    let budget = Arc::new(BodyBudget::new(100 << 10));
    let config = Http1Config {
        body_budget: Some(budget.clone()),
        ..Http1Config::default()
    };
    let big = 300 << 10;
    let head = |n: usize| {
        format!("HTTP/1.1 200 OK\r\nContent-Type: application/zip\r\nContent-Length: {n}\r\n\r\n")
    };
    let mut a = conn_with(false, config.clone());
    let mut b = conn_with(false, config.clone());
    let mut out = Vec::new();
    for c in [&mut a, &mut b] {
        c.on_data(
            Direction::ToServer,
            ts(1),
            b"GET /f HTTP/1.1\r\nHost: h\r\n\r\n",
            &mut out,
        );
        c.on_data(Direction::ToClient, ts(2), head(big).as_bytes(), &mut out);
        // Half of each body arrives: `a` spends the budget, `b` gets its floor.
        c.on_data(Direction::ToClient, ts(3), &vec![b'x'; big / 2], &mut out);
    }
    assert_eq!(
        budget.used(),
        100 << 10,
        "the budget is spent, not exceeded"
    );
    for c in [&mut a, &mut b] {
        c.on_data(Direction::ToClient, ts(4), &vec![b'x'; big / 2], &mut out);
    }
    let ex = exchanges(&out);
    assert_eq!(ex.len(), 2);
    let body = |i: usize| &ex[i].response.as_ref().unwrap().body;
    assert_eq!(body(0).data.len(), BodyBudget::FLOOR + (100 << 10));
    assert_eq!(
        body(1).data.len(),
        BodyBudget::FLOOR,
        "a body always keeps its floor"
    );
    assert!(body(0).truncated && body(1).truncated);
    assert_eq!(
        body(0).decoded_len,
        big as u64,
        "what was cut is still counted"
    );
    assert_eq!(budget.cuts(), 2);
    assert_eq!(budget.used(), 0, "complete bodies give their budget back");
    // A connection dropped mid-body gives it back too.
    let mut c = conn_with(false, config);
    c.on_data(
        Direction::ToServer,
        ts(1),
        b"GET /f HTTP/1.1\r\nHost: h\r\n\r\n",
        &mut out,
    );
    c.on_data(Direction::ToClient, ts(2), head(big).as_bytes(), &mut out);
    c.on_data(Direction::ToClient, ts(3), &vec![b'x'; 50 << 10], &mut out);
    assert!(budget.used() > 0);
    drop(c);
    assert_eq!(budget.used(), 0);
}

#[test]
fn responses_that_cannot_carry_mcp_are_counted_not_decoded_when_asked() {
    let csv = gzip(&b"a,b,c\n".repeat(10_000));
    let page = gzip(b"<html>{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}</html>");
    let json = gzip(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}");
    let mut resps = Vec::new();
    for (ct, body) in [
        ("text/csv", &csv),
        ("Text/HTML; charset=utf-8", &page),
        ("application/json", &json),
        ("application/vnd.api+json", &json),
        ("text/plain", &json),
        ("", &json),
    ] {
        let ct_line = if ct.is_empty() {
            String::new()
        } else {
            format!("Content-Type: {ct}\n")
        };
        resps.extend(response(
            &format!(
                "HTTP/1.1 200 OK\n{ct_line}Content-Encoding: gzip\nContent-Length: {}\n\n",
                body.len()
            ),
            body,
        ));
    }
    let reqs = b"GET /a HTTP/1.1\r\n\r\n".repeat(6);
    for skip in [false, true] {
        let config = Http1Config {
            skip_non_mcp_response_bodies: skip,
            ..Http1Config::default()
        };
        let mut c = conn_with(false, config);
        let out = run(&mut c, &reqs, &resps, 1000);
        let ex = exchanges(&out);
        assert_eq!(ex.len(), 6);
        let bodies: Vec<_> = ex
            .iter()
            .map(|e| &e.response.as_ref().unwrap().body)
            .collect();
        for (i, b) in bodies.iter().enumerate() {
            let skipped = skip && i < 2;
            assert_eq!(b.skipped, skipped, "response {i}");
            assert_eq!(b.data.is_empty(), skipped, "response {i}");
            assert_eq!(b.encodings, ["gzip"]);
            assert!(b.wire_len > 0 && b.decode_error.is_none());
        }
        assert_eq!(bodies[0].decoded_len, if skip { 0 } else { 60_000 });
    }
    // Without its request a response is always kept: nothing else on the
    // connection shows what it carried.
    let config = Http1Config {
        skip_non_mcp_response_bodies: true,
        ..Http1Config::default()
    };
    let mut c = conn_with(true, config);
    let out = run(&mut c, b"", &resps, 1000);
    let ex = exchanges(&out);
    assert!(!ex.is_empty());
    assert!(ex.iter().all(|e| e.request.is_none()
        && !e.response.as_ref().unwrap().body.skipped
        && !e.response.as_ref().unwrap().body.data.is_empty()));
}

#[test]
fn h2c_upgrade_hands_over_the_request_and_what_follows() {
    let mut c = conn();
    let mut out = Vec::new();
    let body = r#"{"jsonrpc":"2.0","id":0,"method":"initialize"}"#;
    let req = format!(
        "POST /mcp HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    c.on_data(Direction::ToServer, ts(1), req.as_bytes(), &mut out);
    assert!(c.take_h2c_upgrade().is_none());
    c.on_data(
        Direction::ToClient,
        ts(2),
        b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00",
        &mut out,
    );
    c.on_data(
        Direction::ToServer,
        ts(3),
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        &mut out,
    );
    // The upgrade request is HTTP/2 stream 1: not emitted here.
    assert!(exchanges(&out).is_empty());
    let up = c.take_h2c_upgrade().expect("upgrade");
    assert_eq!(up.request.target, "/mcp");
    assert_eq!(up.request.body.data, body.as_bytes());
    assert_eq!(up.server_bytes, b"\x00\x00\x00\x04\x00\x00\x00\x00\x00");
    assert_eq!(up.client_bytes, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    assert!(c.take_h2c_upgrade().is_none());
    // A 101 to another protocol stays a tunnel, emitted as before.
    let mut c = conn();
    let mut out = Vec::new();
    c.on_data(
        Direction::ToServer,
        ts(1),
        b"GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
        &mut out,
    );
    c.on_data(
        Direction::ToClient,
        ts(2),
        b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
        &mut out,
    );
    assert_eq!(exchanges(&out).len(), 1);
    assert!(c.take_h2c_upgrade().is_none() && c.is_tunnel());
}

//! HTTP/1.x parsing: a pipelined keep-alive mix (JSON, HTML, chunked and
//! gzip bodies) and one long SSE stream, fed in MSS-sized pieces.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use shadowmcp_benches::http::{self, Framing};
use shadowmcp_benches::rng::Rng;
use shadowmcp_exchange::Timestamp;
use shadowmcp_http1::Direction;

fn pipelined() -> (Vec<u8>, Vec<u8>) {
    let mut rng = Rng::new(1);
    let (mut req, mut resp) = (Vec::new(), Vec::new());
    for i in 0..60 {
        let (r, s) = match i % 4 {
            0 => {
                let body = http::json_items(&mut rng, 8 << 10);
                (
                    http::request("GET", "/api/v1/items?page=1", "api.example", &[], b""),
                    http::response(
                        200,
                        "OK",
                        &[("Content-Type", "application/json")],
                        &body,
                        Framing::ContentLength,
                        &mut rng,
                    ),
                )
            }
            1 => {
                let body = http::json_items(&mut rng, 1 << 10);
                let answer = http::json_items(&mut rng, 4 << 10);
                (
                    http::request(
                        "POST",
                        "/api/v1/orders",
                        "api.example",
                        &[("Content-Type", "application/json")],
                        &body,
                    ),
                    http::response(
                        201,
                        "Created",
                        &[("Content-Type", "application/json")],
                        &answer,
                        Framing::Chunked,
                        &mut rng,
                    ),
                )
            }
            2 => {
                let page = http::html_page(&mut rng, "t", 40 << 10);
                (
                    http::request("GET", "/articles/1", "www.example", &[], b""),
                    http::response(
                        200,
                        "OK",
                        &[("Content-Type", "text/html"), ("Content-Encoding", "gzip")],
                        &http::gzip(&page),
                        Framing::Chunked,
                        &mut rng,
                    ),
                )
            }
            _ => {
                let bin = http::binary(&mut rng, 64 << 10);
                (
                    http::request("GET", "/files/a.zip", "dl.example", &[], b""),
                    http::response(
                        200,
                        "OK",
                        &[("Content-Type", "application/zip")],
                        &bin,
                        Framing::ContentLength,
                        &mut rng,
                    ),
                )
            }
        };
        req.extend_from_slice(&r);
        resp.extend_from_slice(&s);
    }
    (req, resp)
}

fn sse_stream() -> (Vec<u8>, Vec<u8>) {
    let mut rng = Rng::new(2);
    let req = http::request(
        "GET",
        "/mcp",
        "mcp.example",
        &[("Accept", "text/event-stream")],
        b"",
    );
    let events: Vec<Vec<u8>> = (0..4000)
        .map(|i| {
            format!(
                "event: message\r\nid: {i}\r\ndata: {{\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{{\"progressToken\":\"{}\",\"progress\":{i}}}}}\r\n\r\n",
                rng.hex(16)
            )
            .into_bytes()
        })
        .collect();
    let resp = http::chunked_pieces(
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n",
        &events,
        true,
    );
    (req, resp)
}

fn parse(req: &[u8], resp: &[u8]) -> usize {
    let mut conn = shadowmcp_benches::bench_connection();
    let mut out = Vec::new();
    let ts = Timestamp::from_nanos(0);
    for piece in req.chunks(1448) {
        conn.on_data(Direction::ToServer, ts, piece, &mut out);
    }
    for piece in resp.chunks(1448) {
        conn.on_data(Direction::ToClient, ts, piece, &mut out);
    }
    conn.on_close(ts, &mut out);
    out.len()
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("http1");
    let (req, resp) = pipelined();
    assert_eq!(parse(&req, &resp), 60);
    g.throughput(Throughput::Bytes((req.len() + resp.len()) as u64));
    g.bench_function("pipelined_mix", |b| {
        b.iter(|| black_box(parse(&req, &resp)))
    });
    let (req, resp) = sse_stream();
    assert!(parse(&req, &resp) > 1);
    g.throughput(Throughput::Bytes((req.len() + resp.len()) as u64));
    g.bench_function("sse_stream", |b| b.iter(|| black_box(parse(&req, &resp))));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

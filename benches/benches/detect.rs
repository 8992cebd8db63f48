//! The detector on whole exchanges: the prefilter (one aho-corasick pass
//! per body) and, where it lets them through, JSON analysis and rules.
//! Non-MCP and MCP exchanges with 1 KiB and 1 MiB bodies.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use shadowmcp_benches::http::{self, Framing};
use shadowmcp_benches::rng::Rng;
use shadowmcp_detect::{DetectConfig, Detector};
use shadowmcp_exchange::{Exchange, Flow, Origin, Record, Timestamp, Transport};
use shadowmcp_http1::{Connection, Direction, ExchangeIds, Http1Config};
use shadowmcp_rules::RulePack;

/// The exchange shadowmcp's HTTP parser makes of these two messages.
fn exchange(req: &[u8], resp: &[u8]) -> Exchange {
    let flow = Flow {
        id: 1,
        client: "10.0.0.1:50000".parse().unwrap(),
        server: "10.0.0.2:80".parse().unwrap(),
        transport: Transport::Tcp,
    };
    let mut conn = Connection::new(
        flow,
        Origin::default(),
        false,
        Arc::new(Http1Config::default()),
        ExchangeIds::new(),
    );
    let mut out = Vec::new();
    let ts = Timestamp::from_nanos(0);
    conn.on_data(Direction::ToServer, ts, req, &mut out);
    conn.on_data(Direction::ToClient, ts, resp, &mut out);
    conn.on_close(ts, &mut out);
    match out.into_iter().next() {
        Some(Record::Exchange(ex)) => *ex,
        _ => panic!("no exchange"),
    }
}

/// A REST call with a JSON request body of about `len` bytes.
fn rest(rng: &mut Rng, len: usize) -> Exchange {
    let body = http::json_items(rng, len);
    let req = http::request(
        "POST",
        "/api/v1/orders",
        "api.contoso.example",
        &[("Content-Type", "application/json")],
        &body,
    );
    let resp = http::response(
        201,
        "Created",
        &[("Content-Type", "application/json")],
        br#"{"id":42}"#,
        Framing::ContentLength,
        rng,
    );
    exchange(&req, &resp)
}

/// An MCP tools/call with arguments padding the request body to about `len`.
fn mcp(rng: &mut Rng, len: usize) -> Exchange {
    let mut text = Vec::new();
    http::prose(rng, &mut text, len.saturating_sub(200));
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{{"name":"summarize","arguments":{{"text":"{}"}}}}}}"#,
        String::from_utf8_lossy(&text)
    );
    let req = http::request(
        "POST",
        "/mcp",
        "tools.acme-ai.example",
        &[
            ("Content-Type", "application/json"),
            ("Accept", "application/json, text/event-stream"),
            ("mcp-protocol-version", "2025-06-18"),
        ],
        body.as_bytes(),
    );
    let resp = http::response(
        200,
        "OK",
        &[("content-type", "application/json")],
        br#"{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"ok"}]}}"#,
        Framing::ContentLength,
        rng,
    );
    exchange(&req, &resp)
}

/// A download of `len` incompressible bytes (nothing for the analyzer).
fn download(rng: &mut Rng, len: usize) -> Exchange {
    let body = http::binary(rng, len);
    let req = http::request("GET", "/files/a.zip", "downloads.example", &[], b"");
    let resp = http::response(
        200,
        "OK",
        &[("Content-Type", "application/zip")],
        &body,
        Framing::ContentLength,
        rng,
    );
    exchange(&req, &resp)
}

fn bench(c: &mut Criterion) {
    let detector = Detector::new(&RulePack::default_pack(), DetectConfig::default()).unwrap();
    let mut rng = Rng::new(9);
    let cases = [
        ("rest_json_1KiB", rest(&mut rng, 1 << 10), false),
        ("rest_json_1MiB", rest(&mut rng, 1 << 20), false),
        ("download_1MiB", download(&mut rng, 1 << 20), false),
        ("mcp_tools_call_1KiB", mcp(&mut rng, 1 << 10), true),
        ("mcp_tools_call_1MiB", mcp(&mut rng, 1 << 20), true),
    ];
    let mut g = c.benchmark_group("detect");
    for (name, ex, is_mcp) in &cases {
        assert_eq!(detector.inspect(ex).is_mcp(), *is_mcp, "{name}");
        let bytes = ex.request.as_ref().map_or(0, |r| r.body.data.len())
            + ex.response.as_ref().map_or(0, |r| r.body.data.len());
        g.throughput(Throughput::Bytes(bytes as u64));
        g.bench_function(*name, |b| b.iter(|| black_box(detector.inspect(ex))));
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

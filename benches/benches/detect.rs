//! The detector on whole exchanges: the prefilter (one aho-corasick pass
//! per body) and, where it lets them through, JSON analysis and rules.
//! Non-MCP and MCP exchanges with 1 KiB and 1 MiB bodies, and for scale a
//! bare aho-corasick pass with MCP literals over the 1 MiB binary and JSON
//! bodies.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use shadowmcp_benches::http::{self, Framing};
use shadowmcp_benches::rng::Rng;
use shadowmcp_detect::{DetectConfig, Detector};
use shadowmcp_exchange::{Exchange, Record, Timestamp};
use shadowmcp_http1::Direction;
use shadowmcp_rules::RulePack;

/// The exchange shadowmcp's HTTP parser makes of these two messages.
fn exchange(req: &[u8], resp: &[u8]) -> Exchange {
    let mut conn = shadowmcp_benches::bench_connection();
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
    // Reference: what one non-overlapping aho-corasick pass costs on the
    // same 1 MiB body that nothing matches.
    let body = &cases[2].1.response.as_ref().unwrap().body.data;
    let atoms = [
        "jsonrpc",
        "tools/call",
        "tools/list",
        "initialize",
        "protocolVersion",
        "mcp",
        "Mcp-",
        "event: endpoint",
        "mcp_servers",
        "server_url",
        "resources/",
        "prompts/",
        "notifications/",
    ];
    let ac = aho_corasick::AhoCorasick::new(atoms).unwrap();
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function("reference_aho_corasick_find_iter_binary_1MiB", |b| {
        b.iter(|| black_box(ac.find_iter(&body[..]).count()))
    });
    let json = &cases[1].1.request.as_ref().unwrap().body.data;
    g.throughput(Throughput::Bytes(json.len() as u64));
    g.bench_function("reference_aho_corasick_find_iter_json_1MiB", |b| {
        b.iter(|| black_box(ac.find_iter(&json[..]).count()))
    });
    // The same without the short atoms (`mcp`, `Mcp-`): how much they cost.
    let long = aho_corasick::AhoCorasick::new(atoms.iter().filter(|a| a.len() > 4)).unwrap();
    g.bench_function(
        "reference_aho_corasick_find_iter_json_1MiB_long_atoms",
        |b| b.iter(|| black_box(long.find_iter(&json[..]).count())),
    );
    // And a single rare literal (memmem-speed): the cheapest first pass.
    let one = aho_corasick::AhoCorasick::new(["jsonrpc"]).unwrap();
    g.bench_function("reference_aho_corasick_find_iter_json_1MiB_one_atom", |b| {
        b.iter(|| black_box(one.find_iter(&json[..]).count()))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

//! JSON-RPC analysis (`shadowmcp_jsonrpc::analyze`) of MCP and non-MCP
//! bodies, 1 KiB and 1 MiB.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use shadowmcp_benches::http;
use shadowmcp_benches::rng::Rng;
use shadowmcp_jsonrpc::{analyze, Evidence, Limits};

fn tools_call(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut text = Vec::new();
    http::prose(rng, &mut text, len.saturating_sub(200));
    format!(
        r#"{{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{{"name":"summarize","arguments":{{"text":"{}"}}}}}}"#,
        String::from_utf8_lossy(&text)
    )
    .into_bytes()
}

/// A batch of tools/list results: many small objects, deep enough to walk.
fn tools_list(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut b = String::from(r#"{"jsonrpc":"2.0","id":1,"result":{"tools":["#);
    let mut i = 0;
    while b.len() < len {
        if i > 0 {
            b.push(',');
        }
        b.push_str(&format!(
            r#"{{"name":"tool_{i}_{}","description":"Does thing {i}.","inputSchema":{{"type":"object","properties":{{"q":{{"type":"string"}},"n":{{"type":"integer"}}}},"required":["q"]}}}}"#,
            rng.hex(4)
        ));
        i += 1;
    }
    b.push_str("]}}");
    b.into_bytes()
}

fn bench(c: &mut Criterion) {
    let limits = Limits::default();
    let mut rng = Rng::new(5);
    let cases = [
        ("mcp_tools_call_1KiB", tools_call(&mut rng, 1 << 10), true),
        ("mcp_tools_call_1MiB", tools_call(&mut rng, 1 << 20), true),
        (
            "mcp_tools_list_result_1MiB",
            tools_list(&mut rng, 1 << 20),
            true,
        ),
        ("rest_json_1KiB", http::json_items(&mut rng, 1 << 10), false),
        ("rest_json_1MiB", http::json_items(&mut rng, 1 << 20), false),
    ];
    let mut g = c.benchmark_group("jsonrpc_analyze");
    for (name, body, is_mcp) in &cases {
        assert_eq!(
            analyze(body, &limits).is_mcp(Evidence::Weak),
            *is_mcp,
            "{name}"
        );
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_function(*name, |b| b.iter(|| black_box(analyze(body, &limits))));
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

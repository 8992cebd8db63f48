//! Benchmark support for shadowmcp: a deterministic generator of realistic
//! mixed HTTP captures with ground-truth labels.
//!
//! [`generate`] writes an Ethernet/IPv4 pcap of many interleaved keep-alive
//! TCP flows (real handshakes, MSS-sized segments, delayed ACKs, FINs):
//! web pages, JSON APIs and downloads (some gzip-compressed, some chunked),
//! about 5 % MCP sessions over every transport (Streamable HTTP with JSON
//! and SSE responses, legacy HTTP+SSE, the stateless 2026-07-28 revision,
//! WebSocket, MCP requested through an LLM provider) and about 5 %
//! near-miss decoys (Ethereum JSON-RPC, LSP, A2A, OpenAI tool calling, a
//! docs page quoting MCP JSON, REST on an `mcp.` host, an `/sse` ticker).
//! Each flow gets a [`Label`] line saying what it is. Same [`GenConfig`] →
//! byte-identical output.
//!
//! ```
//! use shadowmcp_benches::{generate, GenConfig};
//!
//! let config = GenConfig { size: 200_000, seed: 7, ..GenConfig::default() };
//! let (mut pcap, mut labels) = (Vec::new(), Vec::new());
//! let summary = generate(&config, &mut pcap, &mut labels).unwrap();
//! assert_eq!(summary.bytes, pcap.len() as u64);
//! assert_eq!(summary.flows as usize, labels.split(|&b| b == b'\n').filter(|l| !l.is_empty()).count());
//! ```
//!
//! The `shadowmcp-trafficgen` binary wraps it; `benches/run.sh` uses it for
//! the end-to-end comparison with Suricata (see `benches/README.md`).

#![forbid(unsafe_code)]

mod gen;
pub mod http;
pub mod rng;
pub mod scenario;

pub use gen::{generate, GenConfig, Label, Summary};
pub use scenario::{Mix, DECOY_KINDS, MCP_KINDS};

/// A fresh HTTP/1 parser for one bench connection (10.0.0.1:50000 →
/// 10.0.0.2:80), default limits.
pub fn bench_connection() -> shadowmcp_http1::Connection {
    let flow = shadowmcp_exchange::Flow {
        id: 1,
        client: std::net::SocketAddr::from(([10, 0, 0, 1], 50_000)),
        server: std::net::SocketAddr::from(([10, 0, 0, 2], 80)),
        transport: shadowmcp_exchange::Transport::Tcp,
    };
    shadowmcp_http1::Connection::new(
        flow,
        shadowmcp_exchange::Origin::default(),
        false,
        std::sync::Arc::new(shadowmcp_http1::Http1Config::default()),
        shadowmcp_http1::ExchangeIds::new(),
    )
}

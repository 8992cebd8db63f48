//! Prometheus metrics of a shadowmcp run.
//!
//! Sources (the capture reader, each worker thread) report **running
//! totals** under a name of their own; [`Metrics`] turns them into counter
//! increments, so a source can report as often as it likes and counters
//! still only grow. Detections, verdicts and processing times are recorded
//! as they happen. [`Metrics::render`] gives the text exposition format.
//!
//! ```
//! use shadowmcp_metrics::{Metrics, SourceTotals};
//! let m = Metrics::new();
//! m.report_totals("a.pcap/reader", &SourceTotals { packets: 10, bytes: 1500, ..Default::default() });
//! m.report_totals("a.pcap/reader", &SourceTotals { packets: 25, bytes: 3000, ..Default::default() });
//! m.record_alert(&[3001, 2002], "would-block", "mcp.example.test/mcp");
//! let text = m.render();
//! assert!(text.contains("shadowmcp_packets_total 25"));
//! assert!(text.contains(r#"shadowmcp_detections_total{rule="3001"} 1"#));
//! ```

use std::collections::{HashMap, HashSet};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus::{
    Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

/// Distinct `server` label values kept; further servers are counted under
/// `server="other"` so a scan of hostile traffic cannot blow up the series.
pub const MAX_SERVER_LABELS: usize = 1000;

/// Running totals of one source. Fields it does not know stay 0.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceTotals {
    pub packets: u64,
    pub bytes: u64,
    pub flows_opened: u64,
    /// Current value, not a total: open connections of this source.
    pub flows_active: u64,
    pub flows_evicted: u64,
    pub gaps: u64,
    pub gap_bytes: u64,
    pub exchanges: u64,
    /// `(layer, kind, count)`, e.g. `("packet", "tcp_header", 3)`.
    pub parse_errors: Vec<(&'static str, &'static str, u64)>,
    /// `(reason, count)`, e.g. `("flow_evicted", 2)`.
    pub drops: Vec<(&'static str, u64)>,
}

/// Every metric shadowmcp exports; see `docs/metrics.md`.
pub struct Metrics {
    registry: Registry,
    packets: IntCounter,
    bytes: IntCounter,
    flows: IntCounter,
    flows_active: IntGauge,
    flows_evicted: IntCounter,
    gaps: IntCounter,
    gap_bytes: IntCounter,
    exchanges: IntCounter,
    parse_errors: IntCounterVec,
    drops: IntCounterVec,
    detections: IntCounterVec,
    verdicts: IntCounterVec,
    processing: Histogram,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Last reported value per (source, metric key).
    last: HashMap<(String, String), u64>,
    /// Open connections per source.
    active: HashMap<String, u64>,
    servers: HashSet<String>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::with_opts(Opts::new(name, help)).expect("valid metric name");
    registry
        .register(Box::new(c.clone()))
        .expect("metric registered once");
    c
}

fn counter_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric name");
    registry
        .register(Box::new(c.clone()))
        .expect("metric registered once");
    c
}

impl Metrics {
    pub fn new() -> Metrics {
        let r = Registry::new();
        let flows_active = IntGauge::with_opts(Opts::new(
            "shadowmcp_flows_active",
            "TCP connections currently tracked.",
        ))
        .expect("valid metric name");
        r.register(Box::new(flows_active.clone()))
            .expect("metric registered once");
        let processing = Histogram::with_opts(
            HistogramOpts::new(
                "shadowmcp_processing_seconds",
                "Time to inspect one exchange or stream update (detection and policy).",
            )
            .buckets(vec![
                1e-6, 5e-6, 1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 1e-2, 5e-2, 0.1, 0.5, 1.0,
            ]),
        )
        .expect("valid histogram");
        r.register(Box::new(processing.clone()))
            .expect("metric registered once");
        Metrics {
            packets: counter(&r, "shadowmcp_packets_total", "Packets read from captures."),
            bytes: counter(
                &r,
                "shadowmcp_bytes_total",
                "Bytes of packets read from captures.",
            ),
            flows: counter(&r, "shadowmcp_flows_total", "TCP connections seen."),
            flows_active,
            flows_evicted: counter(
                &r,
                "shadowmcp_flows_evicted_total",
                "TCP connections dropped to stay within the memory or connection caps.",
            ),
            gaps: counter(
                &r,
                "shadowmcp_reassembly_gaps_total",
                "Holes in reassembled TCP streams.",
            ),
            gap_bytes: counter(
                &r,
                "shadowmcp_reassembly_gap_bytes_total",
                "Bytes missing from reassembled TCP streams.",
            ),
            exchanges: counter(
                &r,
                "shadowmcp_exchanges_total",
                "HTTP exchanges reconstructed.",
            ),
            parse_errors: counter_vec(
                &r,
                "shadowmcp_parse_errors_total",
                "Malformed input counted and skipped, by layer and kind.",
                &["layer", "kind"],
            ),
            drops: counter_vec(
                &r,
                "shadowmcp_drops_total",
                "Traffic not inspected, by reason.",
                &["reason"],
            ),
            detections: counter_vec(
                &r,
                "shadowmcp_detections_total",
                "Rules that fired in MCP alerts, by rule id.",
                &["rule"],
            ),
            verdicts: counter_vec(
                &r,
                "shadowmcp_verdicts_total",
                "MCP alerts by verdict and server (host[:port]/path).",
                &["verdict", "server"],
            ),
            processing,
            registry: r,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves plain numbers
        // behind; they are still fine to use.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes `source`'s running totals; counters grow by what is new since
    /// its last report (a total that went down is ignored).
    pub fn report_totals(&self, source: &str, t: &SourceTotals) {
        let mut st = self.state();
        let mut bump = |key: String, value: u64, inc: &dyn Fn(u64)| {
            let last = st.last.entry((source.to_string(), key)).or_insert(0);
            if value > *last {
                inc(value - *last);
                *last = value;
            }
        };
        bump("packets".into(), t.packets, &|d| self.packets.inc_by(d));
        bump("bytes".into(), t.bytes, &|d| self.bytes.inc_by(d));
        bump("flows".into(), t.flows_opened, &|d| self.flows.inc_by(d));
        bump("evicted".into(), t.flows_evicted, &|d| {
            self.flows_evicted.inc_by(d)
        });
        bump("gaps".into(), t.gaps, &|d| self.gaps.inc_by(d));
        bump("gap_bytes".into(), t.gap_bytes, &|d| {
            self.gap_bytes.inc_by(d)
        });
        bump("exchanges".into(), t.exchanges, &|d| {
            self.exchanges.inc_by(d)
        });
        for &(layer, kind, n) in &t.parse_errors {
            bump(format!("parse/{layer}/{kind}"), n, &|d| {
                self.parse_errors
                    .with_label_values(&[layer, kind])
                    .inc_by(d)
            });
        }
        for &(reason, n) in &t.drops {
            bump(format!("drop/{reason}"), n, &|d| {
                self.drops.with_label_values(&[reason]).inc_by(d)
            });
        }
        st.active.insert(source.to_string(), t.flows_active);
        let active: u64 = st.active.values().sum();
        self.flows_active
            .set(i64::try_from(active).unwrap_or(i64::MAX));
    }

    /// Adds drops that are not running totals of a source (e.g. a kernel
    /// drop count delta).
    pub fn add_drops(&self, reason: &str, n: u64) {
        self.drops.with_label_values(&[reason]).inc_by(n);
    }

    /// One MCP alert: the rules that fired, its verdict and server.
    pub fn record_alert(&self, rule_ids: &[u32], verdict: &str, server: &str) {
        for id in rule_ids {
            self.detections.with_label_values(&[&id.to_string()]).inc();
        }
        let server = {
            let mut st = self.state();
            if st.servers.contains(server) {
                server.to_string()
            } else if st.servers.len() < MAX_SERVER_LABELS {
                st.servers.insert(server.to_string());
                server.to_string()
            } else {
                "other".to_string()
            }
        };
        self.verdicts.with_label_values(&[verdict, &server]).inc();
    }

    pub fn observe_processing(&self, seconds: f64) {
        self.processing.observe(seconds);
    }

    /// The text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Err(e) = TextEncoder::new().encode_utf8(&self.registry.gather(), &mut out) {
            out = format!("# error encoding metrics: {e}\n");
        }
        out
    }

    /// Writes the exposition to `path` atomically (a temporary file renamed
    /// over it), as the node_exporter textfile collector expects.
    pub fn write_file(&self, path: &Path) -> io::Result<()> {
        let tmp = path.with_extension("prom.tmp");
        std::fs::write(&tmp, self.render())?;
        std::fs::rename(&tmp, path)
    }

    /// Serves `GET /metrics` on `addr` from a background thread; returns the
    /// bound address (`127.0.0.1:0` picks a free port).
    pub fn serve(self: &Arc<Self>, addr: SocketAddr) -> io::Result<SocketAddr> {
        let listener = TcpListener::bind(addr)?;
        let bound = listener.local_addr()?;
        let metrics = Arc::clone(self);
        std::thread::Builder::new()
            .name("metrics-http".into())
            .spawn(move || {
                for stream in listener.incoming().flatten() {
                    // One slow client must not stall the others for long.
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                    let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
                    let _ = answer(&metrics, stream);
                }
            })?;
        Ok(bound)
    }
}

/// Answers one HTTP/1 request: `/metrics` gets the exposition, anything
/// else 404. Reads at most the head (capped), never a body.
fn answer(metrics: &Metrics, stream: TcpStream) -> io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?).take(16 * 1024);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut line = String::new();
    while reader.read_line(&mut line)? > 2 {
        line.clear();
    }
    let mut parts = request_line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = path.split('?').next().unwrap_or("");
    let mut stream = stream;
    let (status, ctype, body) = match (method, path) {
        ("GET" | "HEAD", "/metrics") => (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            metrics.render(),
        ),
        ("GET" | "HEAD", _) => ("404 Not Found", "text/plain", "not found\n".to_string()),
        _ => (
            "405 Method Not Allowed",
            "text/plain",
            "method not allowed\n".to_string(),
        ),
    };
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    if method != "HEAD" {
        stream.write_all(body.as_bytes())?;
    }
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_totals_become_increments_per_source() {
        let m = Metrics::new();
        let t = |packets, active| SourceTotals {
            packets,
            flows_active: active,
            parse_errors: vec![("http", "bad_header", packets / 10)],
            ..SourceTotals::default()
        };
        m.report_totals("w0", &t(10, 3));
        m.report_totals("w1", &t(5, 2));
        m.report_totals("w0", &t(30, 1));
        m.report_totals("w0", &t(20, 1)); // a lower total is ignored
        let text = m.render();
        assert!(text.contains("shadowmcp_packets_total 35"), "{text}");
        assert!(text.contains("shadowmcp_flows_active 3"), "{text}");
        assert!(
            text.contains(r#"shadowmcp_parse_errors_total{kind="bad_header",layer="http"} 3"#),
            "{text}"
        );
    }

    #[test]
    fn server_labels_are_capped() {
        let m = Metrics::new();
        for i in 0..MAX_SERVER_LABELS + 5 {
            m.record_alert(&[1], "block", &format!("h{i}.test/mcp"));
        }
        let text = m.render();
        assert!(text.contains(r#"shadowmcp_verdicts_total{server="other",verdict="block"} 5"#));
        assert!(text.contains(r#"shadowmcp_detections_total{rule="1"} 1005"#));
    }

    #[test]
    fn serves_metrics_over_http_on_loopback() {
        let m = Arc::new(Metrics::new());
        m.report_totals(
            "r",
            &SourceTotals {
                packets: 7,
                ..SourceTotals::default()
            },
        );
        m.observe_processing(0.000_02);
        let addr = m.serve("127.0.0.1:0".parse().unwrap()).unwrap();
        let get = |path: &str| {
            let mut s = TcpStream::connect(addr).unwrap();
            write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).unwrap();
            out
        };
        let r = get("/metrics");
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
        assert!(r.contains("shadowmcp_packets_total 7"));
        assert!(r.contains("shadowmcp_processing_seconds_count 1"));
        assert!(get("/other").starts_with("HTTP/1.1 404"));
    }

    #[test]
    fn writes_the_textfile_atomically() {
        let m = Metrics::new();
        m.report_totals(
            "r",
            &SourceTotals {
                bytes: 99,
                ..SourceTotals::default()
            },
        );
        let dir = std::env::temp_dir().join(format!("shadowmcp-metrics-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("shadowmcp.prom");
        m.write_file(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_dir_all(&dir).ok();
        assert!(text.contains("shadowmcp_bytes_total 99"));
        assert!(text.contains("# TYPE shadowmcp_processing_seconds histogram"));
    }
}

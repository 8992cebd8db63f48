//! Feeds the engine's running totals into the Prometheus metrics.

use std::sync::Arc;

use shadowmcp_capture::{DecodeStats, ReaderStats};
use shadowmcp_engine::Observer;
use shadowmcp_http1::Http1Stats;
use shadowmcp_metrics::{Metrics, SourceTotals};
use shadowmcp_reassembly::ReassemblyStats;

/// The engine's observer: each reader and worker is one metrics source.
pub struct MetricsObserver(pub Arc<Metrics>);

impl Observer for MetricsObserver {
    fn reader(&self, input: &str, reader: &ReaderStats, decode: &DecodeStats) {
        let mut parse_errors: Vec<(&'static str, &'static str, u64)> = decode
            .malformed_by_kind()
            .map(|(kind, n)| ("packet", kind.as_str(), n))
            .collect();
        if reader.unknown_interface > 0 {
            parse_errors.push(("capture", "unknown_interface", reader.unknown_interface));
        }
        let totals = SourceTotals {
            packets: reader.packets,
            bytes: decode.bytes,
            parse_errors,
            drops: vec![
                ("unknown_linktype", decode.unknown_linktype),
                ("not_ip", decode.non_ip),
                ("not_tcp", decode.non_tcp),
                (
                    "fragments_expired",
                    decode.fragments_expired + decode.fragments_evicted,
                ),
            ],
            ..SourceTotals::default()
        };
        self.0.report_totals(&format!("{input}/reader"), &totals);
    }

    fn worker(&self, input: &str, worker: usize, r: &ReassemblyStats, http: &Http1Stats) {
        let totals = SourceTotals {
            flows_opened: r.conns_opened,
            flows_active: r.active_conns,
            flows_evicted: r.evictions,
            gaps: r.gaps,
            gap_bytes: r.gap_bytes,
            exchanges: http.exchanges,
            parse_errors: http
                .parse_errors
                .iter()
                .map(|(kind, n)| ("http", kind.name(), n))
                .collect(),
            ..SourceTotals::default()
        };
        self.0
            .report_totals(&format!("{input}/worker{worker}"), &totals);
    }

    fn capture_drops(&self, input: &str, kernel: u64, interface: u64) {
        let totals = SourceTotals {
            drops: vec![("kernel", kernel), ("interface", interface)],
            ..SourceTotals::default()
        };
        self.0.report_totals(&format!("{input}/capture"), &totals);
    }
}

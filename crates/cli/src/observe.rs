//! Feeds the engine's running totals into the Prometheus metrics and the
//! progress bar.

use std::io::IsTerminal;
use std::sync::Arc;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use shadowmcp_capture::{DecodeStats, ReaderStats};
use shadowmcp_engine::{Http2Stats, Observer, TlsStats};
use shadowmcp_http1::Http1Stats;
use shadowmcp_metrics::{Metrics, SourceTotals};
use shadowmcp_reassembly::ReassemblyStats;

/// The engine's observer: each reader and worker is one metrics source;
/// the reader's progress also moves the progress bar.
#[derive(Default)]
pub struct CliObserver {
    pub metrics: Option<Arc<Metrics>>,
    pub progress: Option<ProgressBar>,
}

/// A progress bar on standard error for an offline input of `len` bytes,
/// when standard error is a terminal.
pub fn progress_bar(len: u64) -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() || len == 0 {
        return None;
    }
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr_with_hz(4));
    let style = ProgressStyle::with_template(
        "{spinner} {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta} {wide_bar}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    Some(bar)
}

impl Observer for CliObserver {
    fn reader(&self, input: &str, reader: &ReaderStats, decode: &DecodeStats) {
        if let Some(bar) = &self.progress {
            bar.set_position(reader.bytes);
        }
        let Some(metrics) = &self.metrics else {
            return;
        };
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
        metrics.report_totals(&format!("{input}/reader"), &totals);
    }

    fn worker(&self, input: &str, worker: usize, r: &ReassemblyStats, http: &Http1Stats) {
        let Some(metrics) = &self.metrics else {
            return;
        };
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
        metrics.report_totals(&format!("{input}/worker{worker}"), &totals);
    }

    fn worker_tls_http2(&self, input: &str, worker: usize, tls: &TlsStats, http2: &Http2Stats) {
        let Some(metrics) = &self.metrics else {
            return;
        };
        let mut parse_errors: Vec<(&'static str, &'static str, u64)> = http2
            .errors
            .iter()
            .map(|(kind, n)| ("http2", kind.name(), n))
            .collect();
        parse_errors.extend(tls.issues().map(|(kind, n)| ("tls", kind.as_str(), n)));
        let totals = SourceTotals {
            exchanges: http2.exchanges,
            parse_errors,
            drops: vec![("tls_not_decrypted", tls.records_not_decrypted)],
            ..SourceTotals::default()
        };
        metrics.report_totals(&format!("{input}/worker{worker}/tls-http2"), &totals);
    }

    fn capture_drops(&self, input: &str, kernel: u64, interface: u64) {
        let Some(metrics) = &self.metrics else {
            return;
        };
        let totals = SourceTotals {
            drops: vec![("kernel", kernel), ("interface", interface)],
            ..SourceTotals::default()
        };
        metrics.report_totals(&format!("{input}/capture"), &totals);
    }
}

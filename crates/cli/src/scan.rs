//! `shadowmcp scan FILE…`: MCP verdicts as EVE alerts.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use indicatif::ProgressBar;
use rayon::prelude::*;
use shadowmcp_capture::CaptureError;
use shadowmcp_detect::{DetectConfig, Detector};
use shadowmcp_engine::{
    process_capture_sharded, process_source, CaptureConfig, CaptureReport, ObserverHandle,
    PacketSource, RecordHandler, ShardConfig,
};
use shadowmcp_metrics::Metrics;

use crate::input::{log_error, open_input, parse_input_format, read_log, Input, InputFormat};
use crate::observe::{progress_bar, CliObserver};
use shadowmcp_exchange::Record;
use shadowmcp_http1::BodyBudget;
use shadowmcp_logs::{LogError, LogFormat, LogReport};
use shadowmcp_policy::{Policy, Verdict};
use shadowmcp_rules::RulePack;
use shadowmcp_scan::{Event, ScanOptions, ScanStats, Scanner};

use crate::{error, exit, size::parse_size, warning};

/// When `scan` exits with code 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FailOn {
    /// Something was (or, in monitor mode, would be) blocked.
    Block,
    /// Any MCP was found, sanctioned or not.
    Mcp,
}

#[derive(clap::Args)]
pub struct Args {
    /// Captures (pcap, pcapng, optionally gzip-compressed) or proxy logs (HAR, NDJSON,
    /// Squid, Zeek); `-` reads standard input.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<String>,
    #[command(flatten)]
    pub opts: ScanOpts,
}

/// Everything `scan` and `live` share.
#[derive(clap::Args)]
pub struct ScanOpts {
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Write events to FILE instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Also emit an EVE `http` event for every exchange that is not MCP.
    #[arg(long)]
    pub all: bool,
    /// Put tool-call arguments and bodies into alerts (they may hold secrets).
    #[arg(long)]
    pub include_payload: bool,
    /// Exit with code 1 when this is found.
    #[arg(long, value_enum, value_name = "WHAT")]
    pub fail_on: Option<FailOn>,
    /// Worker threads (default: one per core; 1 runs everything on one thread).
    #[arg(long, short = 'j', value_name = "N")]
    pub threads: Option<usize>,
    /// Write events sorted by time, flow and exchange (held until the end).
    #[arg(long)]
    pub sort: bool,
    /// Serve Prometheus metrics at http://ADDR/metrics while running (e.g. 127.0.0.1:9464).
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Write Prometheus metrics (text format) to PATH at the end (node_exporter textfile collector).
    #[arg(long, value_name = "PATH")]
    pub metrics_file: Option<PathBuf>,
    /// Do not print the summary on standard error.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

/// Rules, policy and limits shared by `scan` and `test`.
#[derive(clap::Args, Clone)]
pub struct EngineArgs {
    /// Use the rule pack in DIR instead of the embedded default pack.
    #[arg(long, value_name = "DIR")]
    pub rules: Option<PathBuf>,
    /// Add the rules in DIR to the pack (repeatable).
    #[arg(long, value_name = "DIR")]
    pub rules_extend: Vec<PathBuf>,
    /// What the inputs are: auto (from their content), pcap, har, ndjson, squid,
    /// squid-combined, zeek, zeek-json.
    #[arg(long, default_value = "auto", value_parser = parse_input_format, value_name = "FORMAT")]
    pub input_format: InputFormat,
    /// Policy file (TOML, docs/policy.md). Without one: monitor mode, nothing sanctioned.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Decoded-size cap per body; larger bodies are cut and flagged `truncated`.
    #[arg(long, default_value = "8MiB", value_parser = parse_size, value_name = "SIZE")]
    pub max_body: usize,
    /// Memory for bodies being received, all connections together; each body keeps
    /// its first 16 KiB regardless, beyond that bodies are cut (flagged, counted)
    /// when it is spent.
    #[arg(long, default_value = "32MiB", value_parser = parse_size, value_name = "SIZE")]
    pub max_body_memory: usize,
    /// Most TCP connections tracked at once; beyond it the idlest are evicted (counted).
    #[arg(long, default_value = "1000000", value_name = "N")]
    pub max_flows: usize,
    /// Memory for connection state (reassembly, timers, HTTP parsers), all
    /// connections together: caps the connections tracked at this divided by
    /// the most one connection's state can take (`--max-flows` still applies).
    /// Bodies and out-of-order data have their own caps.
    #[arg(long, default_value = "512MiB", value_parser = parse_size, value_name = "SIZE")]
    pub max_flow_memory: usize,
    /// Memory for out-of-order stream data, all connections together; beyond it the
    /// idlest connections with buffered data are evicted (counted).
    #[arg(long, default_value = "256MiB", value_parser = parse_size, value_name = "SIZE")]
    pub max_stream_memory: usize,
    /// Idle seconds (of capture time) before a connection is closed.
    #[arg(long, default_value = "120", value_name = "SECONDS")]
    pub flow_timeout: u64,
    /// Decode and scan every body. By default responses declared as pages,
    /// scripts, images or downloads are skipped, and bodies that cannot hold
    /// JSON-RPC are not run through the rules (docs/performance.md,
    /// "Shortcuts"); custom rules that match arbitrary body text need this.
    #[arg(long)]
    pub inspect_all_bodies: bool,
    /// NSS key log (SSLKEYLOGFILE format) with the secrets of TLS connections in
    /// the input: they are decrypted and their HTTP/1.x or HTTP/2 scanned like
    /// plaintext. Repeatable. Without keys, TLS connections still show their
    /// server name (SNI). Bad lines are reported and skipped.
    #[arg(long, value_name = "FILE")]
    pub keylog: Vec<PathBuf>,
}

/// The built detector and policy.
pub struct Setup {
    pub detector: Arc<Detector>,
    pub policy: Arc<Policy>,
    pub capture: CaptureConfig,
}

impl EngineArgs {
    pub fn setup(&self) -> Result<Setup, String> {
        let mut pack = match &self.rules {
            Some(dir) => RulePack::load_dir(dir).map_err(|errs| lint_summary(&errs))?,
            None => RulePack::default_pack(),
        };
        for dir in &self.rules_extend {
            let extra = RulePack::load_dir(dir).map_err(|errs| lint_summary(&errs))?;
            pack.extend(extra).map_err(|errs| lint_summary(&errs))?;
        }
        let detect_config = DetectConfig {
            skip_non_jsonrpc_bodies: !self.inspect_all_bodies,
            ..DetectConfig::default()
        };
        let detector = Detector::new(&pack, detect_config).map_err(|e| e.to_string())?;
        let policy = match &self.policy {
            Some(p) => Policy::load(p).map_err(|e| e.to_string())?,
            None => Policy::default(),
        };
        let mut capture = CaptureConfig::default();
        capture.http1.max_body = self.max_body;
        capture.http1.skip_non_mcp_response_bodies = !self.inspect_all_bodies;
        capture.http1.body_budget = Some(Arc::new(BodyBudget::new(self.max_body_memory)));
        let by_memory = self.max_flow_memory / shadowmcp_engine::flow_state_bytes();
        capture.reassembly.max_conns = self.max_flows.min(by_memory).max(1);
        capture.reassembly.max_buffered_total = self.max_stream_memory;
        capture.reassembly.idle_timeout = std::time::Duration::from_secs(self.flow_timeout.max(1));
        capture.http2 = shadowmcp_engine::Http2Config::from_http1(&capture.http1);
        if !self.keylog.is_empty() {
            capture.tls.keylog = Some(Arc::new(load_keylogs(&self.keylog)?));
        }
        Ok(Setup {
            detector: Arc::new(detector),
            policy: Arc::new(policy),
            capture,
        })
    }
}

/// Adds the key log file at `path` to `log`; the lines it skipped. An
/// unreadable file is a one-line error naming it.
pub(crate) fn add_keylog_file(
    log: &mut shadowmcp_engine::KeyLog,
    path: &std::path::Path,
) -> Result<Vec<shadowmcp_engine::KeyLogError>, String> {
    let bytes =
        std::fs::read(path).map_err(|e| format!("{}: cannot read key log: {e}", path.display()))?;
    Ok(log.add_bytes(&bytes))
}

/// Reads every key log into one. An unreadable file is an error; bad lines
/// are warnings (the first few each, then a count), never fatal.
pub(crate) fn load_keylogs(paths: &[PathBuf]) -> Result<shadowmcp_engine::KeyLog, String> {
    const SHOWN: usize = 3;
    let mut log = shadowmcp_engine::KeyLog::default();
    for path in paths {
        let name = path.display();
        let errors = add_keylog_file(&mut log, path)?;
        for e in errors.iter().take(SHOWN) {
            crate::warning(format!("{name}: {e} (skipped)"));
        }
        if errors.len() > SHOWN {
            crate::warning(format!(
                "{name}: {} more key log lines skipped",
                errors.len() - SHOWN
            ));
        }
    }
    if log.is_empty() {
        crate::warning("the key logs hold no usable secret: TLS is not decrypted");
    }
    Ok(log)
}

fn lint_summary(errs: &[impl std::fmt::Display]) -> String {
    let mut s = errs.first().map(|e| e.to_string()).unwrap_or_default();
    if errs.len() > 1 {
        s.push_str(&format!(
            " (and {} more problems; run `shadowmcp rules lint`)",
            errs.len() - 1
        ));
    }
    s
}

pub fn run(args: Args) -> u8 {
    let mut run = match ScanRun::start(&args.opts) {
        Ok(r) => r,
        Err(code) => return code,
    };
    // Consecutive proxy logs are independent inputs: they are read in
    // parallel (rayon), one scanner each. A capture uses the worker
    // threads on its own.
    let mut logs: Vec<LogInput> = Vec::new();
    for file in &args.files {
        let input = match open_input(file, args.opts.engine.input_format, &run.setup.capture) {
            Ok(i) => i,
            Err(e) => {
                error(e);
                return exit::ERROR;
            }
        };
        match input {
            Input::Log {
                name,
                reader,
                format,
            } => {
                logs.push(LogInput {
                    name,
                    reader,
                    format,
                });
                continue;
            }
            Input::Capture(reader) => {
                if let Err(code) = run.logs(std::mem::take(&mut logs)) {
                    return code;
                }
                // The reader's position is in decompressed bytes: no bar to
                // measure it against the size of a gzip'd file.
                let bar = if args.opts.quiet || file == "-" || reader.is_gzip() {
                    None
                } else {
                    std::fs::metadata(file)
                        .ok()
                        .and_then(|m| progress_bar(m.len()))
                };
                run.set_progress(bar.clone());
                let result = run.input(*reader);
                if let Some(bar) = bar {
                    bar.finish_and_clear();
                }
                if let Err(code) = run.account(result) {
                    return code;
                }
            }
        }
    }
    if let Err(code) = run.logs(logs) {
        return code;
    }
    run.finish()
}

/// An opened proxy log waiting to be read.
pub struct LogInput {
    name: String,
    reader: Box<dyn std::io::BufRead + Send>,
    format: Option<LogFormat>,
}

fn emit(sink: &Mutex<EventSink>, ev: Event) {
    sink.lock().unwrap_or_else(|p| p.into_inner()).emit(ev);
}

/// One `scan` (or `live`) invocation: detector, policy, output, metrics and
/// the totals of every input.
pub struct ScanRun<'a> {
    opts: &'a ScanOpts,
    pub setup: Setup,
    options: ScanOptions,
    threads: usize,
    metrics: Option<Arc<Metrics>>,
    sink: Mutex<EventSink>,
    out_name: String,
    scan_stats: Mutex<ScanStats>,
    totals: Totals,
    code: u8,
}

impl<'a> ScanRun<'a> {
    /// Loads rules and policy, opens the output, starts the metrics
    /// endpoint. `Err` holds the exit code after the error was printed.
    pub fn start(opts: &'a ScanOpts) -> Result<ScanRun<'a>, u8> {
        let mut setup = opts.engine.setup().map_err(|e| {
            error(e);
            exit::ERROR
        })?;
        let metrics = (opts.metrics_listen.is_some() || opts.metrics_file.is_some())
            .then(|| Arc::new(Metrics::new()));
        if let Some(m) = &metrics {
            setup.capture.observer = Some(ObserverHandle(Arc::new(CliObserver {
                metrics: Some(m.clone()),
                progress: None,
            })));
            if let Some(addr) = opts.metrics_listen {
                let bound = m.serve(addr).map_err(|e| {
                    error(format!("--metrics-listen {addr}: {e}"));
                    exit::ERROR
                })?;
                if !opts.quiet {
                    eprintln!("shadowmcp: metrics at http://{bound}/metrics");
                }
            }
        }
        let (out, out_name): (Box<dyn Write + Send>, String) = match &opts.output {
            Some(path) => match File::create(path) {
                Ok(f) => (Box::new(BufWriter::new(f)), path.display().to_string()),
                Err(e) => {
                    error(format!("{}: cannot write output: {e}", path.display()));
                    return Err(exit::ERROR);
                }
            },
            None => (Box::new(std::io::stdout()), "standard output".to_string()),
        };
        Ok(ScanRun {
            opts,
            setup,
            options: ScanOptions {
                include_payload: opts.include_payload,
                all: opts.all,
                ..ScanOptions::default()
            },
            threads: opts.threads.unwrap_or_else(default_threads).max(1),
            metrics,
            sink: Mutex::new(EventSink {
                out,
                sort: opts.sort,
                held: Vec::new(),
                fail_on: opts.fail_on,
                found: false,
                write_error: None,
            }),
            out_name,
            scan_stats: Mutex::new(ScanStats::default()),
            totals: Totals::default(),
            code: exit::OK,
        })
    }

    /// Shows (or stops showing) a progress bar for the next input.
    pub fn set_progress(&mut self, progress: Option<ProgressBar>) {
        if progress.is_none() && self.metrics.is_none() {
            self.setup.capture.observer = None;
            return;
        }
        self.setup.capture.observer = Some(ObserverHandle(Arc::new(CliObserver {
            metrics: self.metrics.clone(),
            progress,
        })));
    }

    /// Scans one source to its end. Each input gets its own scanners: what
    /// one capture says about a session never leaks into another, whatever
    /// the thread count.
    pub fn input<S: PacketSource>(&mut self, source: S) -> Result<CaptureReport, CaptureError> {
        let ScanRun {
            setup,
            options,
            threads,
            metrics,
            sink,
            scan_stats,
            ..
        } = self;
        let new_handler = || ScanHandler::new(setup, options, scan_stats, metrics);
        if *threads == 1 {
            let mut handler = new_handler();
            let mut events = Vec::new();
            process_source(source, &setup.capture, &mut |record| {
                handler.on_record(record, &mut events);
                for ev in events.drain(..) {
                    emit(sink, ev);
                }
            })
        } else {
            process_capture_sharded(
                source,
                &setup.capture,
                ShardConfig {
                    workers: *threads,
                    ..ShardConfig::default()
                },
                |_| new_handler(),
                |ev| emit(sink, ev),
            )
        }
    }

    /// Scans one proxy log to its end, on this thread (one record at a
    /// time: a log piped from `tail -F` gets each verdict as its line
    /// arrives). Malformed records are reported as warnings and counted.
    pub fn log(
        &self,
        name: &str,
        reader: Box<dyn std::io::BufRead + Send>,
        format: Option<LogFormat>,
    ) -> Result<LogReport, LogError> {
        let ScanRun {
            setup,
            options,
            metrics,
            sink,
            scan_stats,
            ..
        } = self;
        let mut handler = ScanHandler::new(setup, options, scan_stats, metrics);
        let mut events = Vec::new();
        read_log(
            name,
            reader,
            format,
            &setup.capture,
            &mut |record| {
                handler.on_record(record, &mut events);
                for ev in events.drain(..) {
                    emit(sink, ev);
                }
            },
            &mut |w| warning(w),
        )
    }

    /// Reads proxy logs, in parallel when there are several and more than
    /// one thread, and adds their outcomes to the totals in input order.
    pub fn logs(&mut self, logs: Vec<LogInput>) -> Result<(), u8> {
        if logs.is_empty() {
            return Ok(());
        }
        let guessed: Vec<bool> = logs.iter().map(|l| l.format.is_none()).collect();
        let results: Vec<Result<LogReport, LogError>> = if logs.len() > 1 && self.threads > 1 {
            let this: &ScanRun<'_> = self;
            match rayon::ThreadPoolBuilder::new()
                .num_threads(this.threads)
                .build()
            {
                Ok(pool) => pool.install(|| {
                    logs.into_par_iter()
                        .map(|l| this.log(&l.name, l.reader, l.format))
                        .collect()
                }),
                Err(_) => logs
                    .into_iter()
                    .map(|l| this.log(&l.name, l.reader, l.format))
                    .collect(),
            }
        } else {
            logs.into_iter()
                .map(|l| self.log(&l.name, l.reader, l.format))
                .collect()
        };
        for (result, guessed) in results.into_iter().zip(guessed) {
            self.account_log(result, guessed)?;
        }
        Ok(())
    }

    /// Adds a log's outcome to the totals, like [`ScanRun::account`];
    /// `guessed`: the format was sniffed, not given.
    pub fn account_log(
        &mut self,
        result: Result<LogReport, LogError>,
        guessed: bool,
    ) -> Result<(), u8> {
        self.account_output()?;
        match result {
            Ok(report) => {
                let t = &mut self.totals;
                t.inputs += 1;
                t.log_records += report.records;
                t.log_malformed += report.malformed;
                if report.truncated.is_some() {
                    // Already reported through the warning callback.
                    self.code = self.code.max(exit::TRUNCATED);
                }
                Ok(())
            }
            Err(e) => {
                error(log_error(&e, guessed));
                Err(exit::ERROR)
            }
        }
    }

    fn account_output(&self) -> Result<(), u8> {
        let sink = self.sink.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = &sink.write_error {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Err(self.code);
            }
            error(format!("{}: {e}", self.out_name));
            return Err(exit::ERROR);
        }
        Ok(())
    }

    /// Adds an input's outcome to the totals; `Err` holds the exit code of
    /// a fatal problem (already printed).
    pub fn account(&mut self, result: Result<CaptureReport, CaptureError>) -> Result<(), u8> {
        self.account_output()?;
        match result {
            Ok(report) => {
                let t = &mut self.totals;
                t.inputs += 1;
                t.packets += report.reader.packets;
                t.malformed_packets += report.decode.malformed_total();
                t.http_errors += report.http.parse_errors.total();
                t.gaps += report.reassembly.gaps;
                t.flows_evicted += report.reassembly.evictions;
                t.kernel_drops += report.kernel_drops;
                t.interface_drops += report.interface_drops;
                t.tls.merge(&report.tls);
                if report.secrets_skipped > 0 {
                    warning(format!(
                        "{}: {} lines of embedded TLS secrets skipped (not NSS key log lines)",
                        report.input, report.secrets_skipped
                    ));
                }
                if let Some(w) = report.truncated {
                    warning(w);
                    self.code = self.code.max(exit::TRUNCATED);
                }
                Ok(())
            }
            Err(e) => {
                error(e);
                Err(exit::ERROR)
            }
        }
    }

    /// Writes held events and metrics, prints the summary; the exit code.
    pub fn finish(mut self) -> u8 {
        let sink = self.sink.get_mut().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = sink.finish() {
            if e.kind() != std::io::ErrorKind::BrokenPipe {
                error(format!("{}: {e}", self.out_name));
                return exit::ERROR;
            }
        }
        let stats = std::mem::take(&mut *self.scan_stats.lock().unwrap_or_else(|p| p.into_inner()));
        if let (Some(m), Some(path)) = (&self.metrics, &self.opts.metrics_file) {
            if let Err(e) = m.write_file(path) {
                error(format!("{}: cannot write metrics: {e}", path.display()));
                return exit::ERROR;
            }
        }
        let budget_cuts = self
            .setup
            .capture
            .http1
            .body_budget
            .as_ref()
            .map_or(0, |b| b.cuts());
        if !self.opts.quiet {
            print_summary(&self.totals, &stats);
            if budget_cuts > 0 {
                eprintln!("shadowmcp: {budget_cuts} bodies cut to stay within --max-body-memory");
            }
        }
        if sink.found && self.code == exit::OK {
            self.code = exit::FINDING;
        }
        self.code
    }
}

/// Worker threads when `--threads` is not given: one per core.
fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// A worker thread's scanner; its counters join the run's when it is done.
struct ScanHandler<'a> {
    scanner: Scanner,
    totals: &'a Mutex<ScanStats>,
    metrics: Option<Arc<Metrics>>,
}

impl<'a> ScanHandler<'a> {
    /// A scanner of its own, adding to the run's totals and metrics.
    fn new(
        setup: &Setup,
        options: &ScanOptions,
        totals: &'a Mutex<ScanStats>,
        metrics: &Option<Arc<Metrics>>,
    ) -> ScanHandler<'a> {
        ScanHandler {
            scanner: Scanner::new(
                setup.detector.clone(),
                setup.policy.clone(),
                options.clone(),
            ),
            totals,
            metrics: metrics.clone(),
        }
    }
}

impl RecordHandler for ScanHandler<'_> {
    type Output = Event;
    fn on_record(&mut self, record: Record, out: &mut Vec<Event>) {
        let Some(m) = &self.metrics else {
            self.scanner.on_record(&record, out);
            return;
        };
        let start = std::time::Instant::now();
        let before = out.len();
        self.scanner.on_record(&record, out);
        m.observe_processing(start.elapsed().as_secs_f64());
        for ev in &out[before..] {
            if let (Some(verdict), Some(server)) = (ev.verdict, &ev.server) {
                m.record_alert(&ev.rule_ids, verdict.as_str(), server);
            }
        }
    }
}

impl Drop for ScanHandler<'_> {
    fn drop(&mut self) {
        if let Ok(mut t) = self.totals.lock() {
            t.merge(self.scanner.stats());
        }
    }
}

/// Where events go: written and flushed one by one (a SIEM tailing the
/// output sees each verdict at once), or held and sorted with `--sort`.
struct EventSink {
    out: Box<dyn Write + Send>,
    sort: bool,
    held: Vec<Event>,
    fail_on: Option<FailOn>,
    found: bool,
    write_error: Option<std::io::Error>,
}

impl EventSink {
    fn emit(&mut self, ev: Event) {
        self.found |= matches_fail_on(&ev, self.fail_on);
        if self.sort {
            self.held.push(ev);
        } else {
            self.write(&ev);
        }
    }

    fn write(&mut self, ev: &Event) {
        if self.write_error.is_none() {
            let r = writeln!(self.out, "{}", ev.json).and_then(|_| self.out.flush());
            self.write_error = r.err();
        }
    }

    /// Writes held events in a stable order: time, flow, exchange, rule.
    fn finish(&mut self) -> std::io::Result<()> {
        let mut held = std::mem::take(&mut self.held);
        held.sort_by_cached_key(|e| {
            (
                e.json["timestamp"].as_str().unwrap_or_default().to_string(),
                e.json["flow_id"].as_u64().unwrap_or_default(),
                e.json["mcp"]["exchange_id"].as_u64().unwrap_or_default(),
                e.server.clone(),
                e.json.to_string(),
            )
        });
        for ev in &held {
            self.write(ev);
        }
        match self.write_error.take() {
            Some(e) => Err(e),
            None => self.out.flush(),
        }
    }
}

fn matches_fail_on(ev: &Event, fail_on: Option<FailOn>) -> bool {
    matches!(
        (fail_on, ev.verdict),
        (Some(FailOn::Mcp), Some(_))
            | (
                Some(FailOn::Block),
                Some(Verdict::Block | Verdict::WouldBlock)
            )
    )
}

#[derive(Default)]
struct Totals {
    inputs: u64,
    packets: u64,
    malformed_packets: u64,
    http_errors: u64,
    gaps: u64,
    log_records: u64,
    log_malformed: u64,
    flows_evicted: u64,
    kernel_drops: u64,
    interface_drops: u64,
    tls: shadowmcp_engine::TlsStats,
}

fn print_summary(t: &Totals, s: &ScanStats) {
    eprintln!(
        "shadowmcp: {} input(s), {} packets, {} exchanges; {} MCP; alerts: {} allowed, {} would-block, {} blocked",
        t.inputs, t.packets, s.exchanges, s.mcp_exchanges, s.allowed, s.would_block, s.blocked
    );
    if t.log_records > 0 {
        eprintln!(
            "shadowmcp: {} log records read, {} malformed ones skipped",
            t.log_records, t.log_malformed
        );
    }
    if t.flows_evicted > 0 {
        eprintln!(
            "shadowmcp: {} connections evicted to stay within --max-flows / --max-flow-memory / --max-stream-memory",
            t.flows_evicted
        );
    }
    if t.tls.records > 0 {
        let issues: Vec<String> = t
            .tls
            .issues()
            .map(|(kind, n)| format!("{} {n}", kind.as_str()))
            .collect();
        eprintln!(
            "shadowmcp: TLS: {} records, {} decrypted, {} not decrypted{}",
            t.tls.records,
            t.tls.records_decrypted,
            t.tls.records_not_decrypted,
            if issues.is_empty() {
                String::new()
            } else {
                format!(" ({})", issues.join(", "))
            }
        );
    }
    if t.kernel_drops + t.interface_drops > 0 {
        eprintln!(
            "shadowmcp: capture lost {} packets in the kernel, {} at the interface",
            t.kernel_drops, t.interface_drops
        );
    }
    if t.malformed_packets + t.http_errors + t.gaps > 0 {
        eprintln!(
            "shadowmcp: skipped: {} malformed packets, {} HTTP parse errors, {} stream gaps",
            t.malformed_packets, t.http_errors, t.gaps
        );
    }
}

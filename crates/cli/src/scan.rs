//! `shadowmcp scan FILE…`: MCP verdicts as EVE alerts.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::Arc;

use shadowmcp_detect::{DetectConfig, Detector};
use shadowmcp_engine::{process_capture, CaptureConfig};
use shadowmcp_http1::ExchangeIds;
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
    /// Capture files (pcap, pcapng, optionally gzip-compressed); `-` reads standard input.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<String>,
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
    /// Policy file (TOML, docs/policy.md). Without one: monitor mode, nothing sanctioned.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Decoded-size cap per body; larger bodies are cut and flagged `truncated`.
    #[arg(long, default_value = "8MiB", value_parser = parse_size, value_name = "SIZE")]
    pub max_body: usize,
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
        let detector = Detector::new(&pack, DetectConfig::default()).map_err(|e| e.to_string())?;
        let policy = match &self.policy {
            Some(p) => Policy::load(p).map_err(|e| e.to_string())?,
            None => Policy::default(),
        };
        let mut capture = CaptureConfig::default();
        capture.http1.max_body = self.max_body;
        Ok(Setup {
            detector: Arc::new(detector),
            policy: Arc::new(policy),
            capture,
        })
    }
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
    let setup = match args.engine.setup() {
        Ok(s) => s,
        Err(e) => {
            error(e);
            return exit::ERROR;
        }
    };
    let mut out: Box<dyn Write> = match &args.output {
        Some(path) => match File::create(path) {
            Ok(f) => Box::new(BufWriter::new(f)),
            Err(e) => {
                error(format!("{}: cannot write output: {e}", path.display()));
                return exit::ERROR;
            }
        },
        None => Box::new(std::io::stdout().lock()),
    };
    let options = ScanOptions {
        include_payload: args.include_payload,
        all: args.all,
        ..ScanOptions::default()
    };
    let mut scanner = Scanner::new(setup.detector.clone(), setup.policy.clone(), options);
    let ids = ExchangeIds::new();
    let mut code = exit::OK;
    let mut found = false;
    let mut events = Vec::new();
    let mut totals = Totals::default();
    for file in &args.files {
        let mut write_error = None;
        let result = process_capture(file, &setup.capture, &ids, &mut |record| {
            scanner.on_record(&record, &mut events);
            for ev in events.drain(..) {
                found |= matches_fail_on(&ev, args.fail_on);
                if write_error.is_none() {
                    // One event per line, flushed at once: a SIEM tailing the
                    // output sees each verdict as soon as it is made.
                    let r = writeln!(out, "{}", ev.json).and_then(|_| out.flush());
                    write_error = r.err();
                }
            }
        });
        if let Some(e) = write_error {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return code;
            }
            let name = args
                .output
                .as_ref()
                .map_or("standard output".to_string(), |p| p.display().to_string());
            error(format!("{name}: {e}"));
            return exit::ERROR;
        }
        match result {
            Ok(report) => {
                totals.inputs += 1;
                totals.packets += report.reader.packets;
                totals.malformed_packets += report.decode.malformed_total();
                totals.http_errors += report.http.parse_errors.total();
                totals.gaps += report.reassembly.gaps;
                if let Some(t) = report.truncated {
                    warning(t);
                    code = code.max(exit::TRUNCATED);
                }
            }
            Err(e) => {
                error(e);
                return exit::ERROR;
            }
        }
    }
    if !args.quiet {
        print_summary(&totals, scanner.stats());
    }
    if found && code == exit::OK {
        code = exit::FINDING;
    }
    code
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
}

fn print_summary(t: &Totals, s: &ScanStats) {
    eprintln!(
        "shadowmcp: {} input(s), {} packets, {} exchanges; {} MCP; alerts: {} allowed, {} would-block, {} blocked",
        t.inputs, t.packets, s.exchanges, s.mcp_exchanges, s.allowed, s.would_block, s.blocked
    );
    if t.malformed_packets + t.http_errors + t.gaps > 0 {
        eprintln!(
            "shadowmcp: skipped: {} malformed packets, {} HTTP parse errors, {} stream gaps",
            t.malformed_packets, t.http_errors, t.gaps
        );
    }
}

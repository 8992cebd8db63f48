//! `shadowmcp test DIR`: rule regression cases for users' CI.
//!
//! Every `*.case.toml` file below DIR is one case: an input, optionally a
//! policy, and what the scan of that input must produce (format in
//! docs/testing.md). One line per case, then `N passed, N failed`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use shadowmcp_detect::Confidence;
use shadowmcp_policy::Policy;
use shadowmcp_scan::{Event, ScanOptions, Scanner};

use crate::input::{open_input, parse_input_format, process_input, InputFormat};
use crate::scan::EngineArgs;
use crate::{error, exit};

#[derive(clap::Args)]
pub struct Args {
    /// Folder searched recursively for `*.case.toml` files.
    #[arg(value_name = "DIR")]
    dir: PathBuf,
    #[command(flatten)]
    engine: EngineArgs,
    /// Print every event of failing cases.
    #[arg(long, short = 'v')]
    verbose: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    /// Input file, relative to the case file.
    input: String,
    /// Policy file, relative to the case file.
    #[serde(default)]
    policy: Option<String>,
    /// `--input-format` for the input (default: from its content).
    #[serde(default)]
    input_format: Option<String>,
    /// NSS key log for the input's TLS connections, relative to the case
    /// file (`--keylog`).
    #[serde(default)]
    keylog: Option<String>,
    #[serde(default)]
    description: Option<String>,
    expect: Expect,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Expect {
    /// true: at least one alert; false: no event at all.
    mcp: bool,
    /// Exact number of alerts.
    alerts: Option<usize>,
    /// Every alert has at least this confidence.
    min_confidence: Option<String>,
    /// The strongest alert has exactly this confidence.
    confidence: Option<String>,
    /// Each of these rules fired in some alert.
    #[serde(default)]
    signature_ids: Vec<u32>,
    /// None of these rules fired in any alert.
    #[serde(default)]
    not_signature_ids: Vec<u32>,
    /// The set of verdicts seen equals this.
    verdicts: Option<BTreeSet<String>>,
    /// The set of servers alerted on equals this.
    servers: Option<BTreeSet<String>>,
    /// Every server alerted on is one of these.
    servers_within: Option<BTreeSet<String>>,
    /// Each of these MCP methods appears in some alert.
    #[serde(default)]
    methods: Vec<String>,
    /// Each of these tool names appears in some alert.
    #[serde(default)]
    tools_called: Vec<String>,
    /// The set of transports named in alerts equals this.
    transports: Option<BTreeSet<String>>,
    /// Malformed log records reported (logs only).
    malformed: Option<usize>,
}

pub fn run(args: Args) -> u8 {
    let setup = match args.engine.setup() {
        Ok(s) => s,
        Err(e) => {
            error(e);
            return exit::ERROR;
        }
    };
    let mut cases = Vec::new();
    if let Err(e) = find_cases(&args.dir, &mut cases) {
        error(format!("{}: {e}", args.dir.display()));
        return exit::ERROR;
    }
    cases.sort();
    if cases.is_empty() {
        error(format!(
            "{}: no *.case.toml files found",
            args.dir.display()
        ));
        return exit::ERROR;
    }
    let (mut passed, mut failed) = (0usize, 0usize);
    for path in &cases {
        let name = path
            .strip_prefix(&args.dir)
            .unwrap_or(path)
            .display()
            .to_string();
        match run_case(path, &setup) {
            Ok((problems, events)) if problems.is_empty() => {
                passed += 1;
                println!("ok    {name} ({} events)", events.len());
            }
            Ok((problems, events)) => {
                failed += 1;
                println!("FAIL  {name}: {}", problems.join("; "));
                if args.verbose {
                    for e in events {
                        println!("      {}", e.json);
                    }
                }
            }
            Err(e) => {
                failed += 1;
                println!("FAIL  {name}: {e}");
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    if failed > 0 {
        exit::FINDING
    } else {
        exit::OK
    }
}

fn find_cases(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            find_cases(&path, out)?;
        } else if path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.ends_with(".case.toml"))
        {
            out.push(path);
        }
    }
    Ok(())
}

fn parse_confidence(s: &str) -> Result<Confidence, String> {
    Confidence::parse(s).ok_or_else(|| format!("unknown confidence {s:?} (low, medium, high)"))
}

fn run_case(path: &Path, setup: &crate::scan::Setup) -> Result<(Vec<String>, Vec<Event>), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read case: {e}"))?;
    let case: Case = toml::from_str(&text).map_err(|e| {
        let msg = e.message().replace('\n', " ");
        match e.span() {
            Some(s) => format!(
                "line {}: {msg}",
                text[..s.start.min(text.len())].lines().count().max(1)
            ),
            None => msg,
        }
    })?;
    let _ = &case.description;
    let base = path.parent().unwrap_or(Path::new("."));
    let policy = match &case.policy {
        Some(p) => std::sync::Arc::new(Policy::load(&base.join(p)).map_err(|e| e.to_string())?),
        None => setup.policy.clone(),
    };
    let mut scanner = Scanner::new(setup.detector.clone(), policy, ScanOptions::default());
    let input = base.join(&case.input);
    let input = input.to_str().ok_or("input path is not UTF-8")?;
    let format = match &case.input_format {
        Some(f) => parse_input_format(f)?,
        None => InputFormat::Auto,
    };
    let mut capture = setup.capture.clone();
    if let Some(k) = &case.keylog {
        let path = base.join(k);
        let mut log = shadowmcp_engine::KeyLog::default();
        // A regression case's key log must be clean.
        if let Some(e) = crate::scan::add_keylog_file(&mut log, &path)?.first() {
            return Err(format!("{}: {e}", path.display()));
        }
        capture.tls.keylog = Some(std::sync::Arc::new(log));
    }
    let opened = open_input(input, format, &capture)?;
    let mut events = Vec::new();
    let mut warnings = 0usize;
    process_input(
        opened,
        &capture,
        &mut |record| scanner.on_record(&record, &mut events),
        &mut |_| warnings += 1,
    )?;
    let mut problems = check(&case.expect, &events)?;
    if let Some(want) = case.expect.malformed {
        if warnings != want {
            problems.push(format!("expected {want} malformed records, got {warnings}"));
        }
    }
    Ok((problems, events))
}

fn check(expect: &Expect, events: &[Event]) -> Result<Vec<String>, String> {
    let mut problems = Vec::new();
    let alerts: Vec<&Event> = events.iter().filter(|e| e.verdict.is_some()).collect();
    if expect.mcp && alerts.is_empty() {
        problems.push("expected MCP alerts, got none".to_string());
    }
    if !expect.mcp && !events.is_empty() {
        let sids: Vec<String> = alerts.iter().map(|e| format!("{:?}", e.rule_ids)).collect();
        problems.push(format!(
            "expected no events, got {} (rules {})",
            events.len(),
            sids.join(", ")
        ));
    }
    if let Some(n) = expect.alerts {
        if alerts.len() != n {
            problems.push(format!("expected {n} alerts, got {}", alerts.len()));
        }
    }
    let confidence_of = |e: &Event| {
        e.json["mcp"]["confidence"]
            .as_str()
            .and_then(Confidence::parse)
    };
    if let Some(min) = &expect.min_confidence {
        let min = parse_confidence(min)?;
        let weak = alerts
            .iter()
            .filter(|e| confidence_of(e) < Some(min))
            .count();
        if weak > 0 {
            problems.push(format!("{weak} alerts below confidence {}", min.as_str()));
        }
    }
    if let Some(want) = &expect.confidence {
        let want = parse_confidence(want)?;
        let best = alerts.iter().filter_map(|e| confidence_of(e)).max();
        if best != Some(want) {
            problems.push(format!(
                "expected strongest confidence {}, got {}",
                want.as_str(),
                best.map_or("none", |c| c.as_str())
            ));
        }
    }
    let fired: BTreeSet<u32> = alerts
        .iter()
        .flat_map(|e| e.rule_ids.iter().copied())
        .collect();
    for sid in &expect.signature_ids {
        if !fired.contains(sid) {
            problems.push(format!("rule {sid} did not fire (fired: {fired:?})"));
        }
    }
    for sid in &expect.not_signature_ids {
        if fired.contains(sid) {
            problems.push(format!("rule {sid} fired but must not"));
        }
    }
    if let Some(want) = &expect.verdicts {
        let got: BTreeSet<String> = alerts
            .iter()
            .filter_map(|e| e.verdict.map(|v| v.as_str().to_string()))
            .collect();
        if &got != want {
            problems.push(format!("expected verdicts {want:?}, got {got:?}"));
        }
    }
    if let Some(want) = &expect.servers {
        let got: BTreeSet<String> = alerts.iter().filter_map(|e| e.server.clone()).collect();
        if &got != want {
            problems.push(format!("expected servers {want:?}, got {got:?}"));
        }
    }
    if let Some(allowed) = &expect.servers_within {
        let outside: BTreeSet<String> = alerts
            .iter()
            .filter_map(|e| e.server.clone())
            .filter(|s| !allowed.contains(s))
            .collect();
        if !outside.is_empty() {
            problems.push(format!("alerts on unexpected servers {outside:?}"));
        }
    }
    let strings_in = |key: &str, field: Option<&str>| -> BTreeSet<String> {
        alerts
            .iter()
            .filter_map(|e| e.json["mcp"][key].as_array())
            .flatten()
            .filter_map(|v| match field {
                Some(f) => v[f].as_str(),
                None => v.as_str(),
            })
            .map(str::to_string)
            .collect()
    };
    let methods = strings_in("methods", None);
    for m in &expect.methods {
        if !methods.contains(m) {
            problems.push(format!("method {m:?} not seen (seen: {methods:?})"));
        }
    }
    let tools = strings_in("tools_called", Some("name"));
    for t in &expect.tools_called {
        if !tools.contains(t) {
            problems.push(format!("tool {t:?} not seen (seen: {tools:?})"));
        }
    }
    if let Some(want) = &expect.transports {
        let got: BTreeSet<String> = alerts
            .iter()
            .filter_map(|e| e.json["mcp"]["transport"].as_str().map(str::to_string))
            .collect();
        if &got != want {
            problems.push(format!("expected transports {want:?}, got {got:?}"));
        }
    }
    Ok(problems)
}

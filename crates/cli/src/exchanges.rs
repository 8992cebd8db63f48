//! `shadowmcp exchanges FILE…`: what the engine sees, one JSON object per line.

use std::io::{BufWriter, Write};

use shadowmcp_engine::CaptureConfig;

use crate::input::{open_input, parse_input_format, process_input, InputFormat, Outcome};
use shadowmcp_exchange::json::{record_to_json, JsonOptions};

use crate::{error, exit, size::parse_size, warning};

#[derive(clap::Args)]
pub struct Args {
    /// Captures (pcap, pcapng, optionally gzip-compressed) or proxy logs (HAR, NDJSON,
    /// Squid, Zeek); `-` reads standard input.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<String>,
    /// Bytes of each body to print (0 prints none; sizes and flags are always shown).
    #[arg(long, default_value = "4096", value_parser = parse_size, value_name = "SIZE")]
    max_body_print: usize,
    /// Decoded-size cap per body; larger bodies are cut and flagged `truncated`.
    #[arg(long, default_value = "8MiB", value_parser = parse_size, value_name = "SIZE")]
    max_body: usize,
    /// What the inputs are: auto (from their content), pcap, har, ndjson, squid,
    /// squid-combined, zeek, zeek-json.
    #[arg(long, default_value = "auto", value_parser = parse_input_format, value_name = "FORMAT")]
    input_format: InputFormat,
    /// Print the statistics of each input on standard error at the end.
    #[arg(long)]
    stats: bool,
    /// NSS key log for the TLS connections of the inputs (repeatable), as for `scan`.
    #[arg(long, value_name = "FILE")]
    keylog: Vec<std::path::PathBuf>,
}

pub fn run(args: Args) -> u8 {
    let mut config = CaptureConfig::default();
    config.http1.max_body = args.max_body;
    config.http2 = shadowmcp_engine::Http2Config::from_http1(&config.http1);
    if !args.keylog.is_empty() {
        match crate::scan::load_keylogs(&args.keylog) {
            Ok(log) => config.tls.keylog = Some(std::sync::Arc::new(log)),
            Err(e) => {
                error(e);
                return exit::ERROR;
            }
        }
    }
    let opts = JsonOptions {
        max_body: args.max_body_print,
    };
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut code = exit::OK;
    for file in &args.files {
        let mut write_failed = None;
        let input = match open_input(file, args.input_format, &config) {
            Ok(i) => i,
            Err(e) => {
                error(e);
                return exit::ERROR;
            }
        };
        let result = process_input(
            input,
            &config,
            &mut |record| {
                if write_failed.is_some() {
                    return;
                }
                let line = record_to_json(&record, &opts);
                // A log read from a pipe shows each exchange at once.
                let r = writeln!(out, "{line}").and_then(|_| out.flush());
                write_failed = r.err();
            },
            &mut |w| warning(w),
        );
        if let Some(e) = write_failed {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return code;
            }
            error(format!("standard output: {e}"));
            return exit::ERROR;
        }
        match result {
            Ok(outcome) => {
                if let Some(t) = outcome.truncated() {
                    // A log reports its own cut through the warnings.
                    if matches!(outcome, Outcome::Capture(_)) {
                        warning(t);
                    }
                    code = code.max(exit::TRUNCATED);
                }
                if args.stats {
                    print_stats(&outcome);
                }
            }
            Err(e) => {
                error(e);
                return exit::ERROR;
            }
        }
    }
    if let Err(e) = out.flush() {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            error(format!("standard output: {e}"));
            return exit::ERROR;
        }
    }
    code
}

fn print_stats(outcome: &Outcome) {
    match outcome {
        Outcome::Capture(r) => eprintln!(
            "{}: {} records; decode {:?}; reassembly {:?}; http {:?}",
            r.input, r.records, r.decode, r.reassembly, r.http
        ),
        Outcome::Log(r) => eprintln!(
            "{}: {} log, {} records, {} exchanges, {} malformed",
            r.input,
            r.format.as_str(),
            r.records,
            r.exchanges,
            r.malformed
        ),
    }
}

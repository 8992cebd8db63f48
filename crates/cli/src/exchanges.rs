//! `shadowmcp exchanges FILE…`: what the engine sees, one JSON object per line.

use std::io::{BufWriter, Write};

use shadowmcp_engine::{process_capture, CaptureConfig, CaptureReport};
use shadowmcp_exchange::json::{record_to_json, JsonOptions};

use crate::{error, exit, size::parse_size, warning};

#[derive(clap::Args)]
pub struct Args {
    /// Capture files (pcap, pcapng, optionally gzip-compressed); `-` reads standard input.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<String>,
    /// Bytes of each body to print (0 prints none; sizes and flags are always shown).
    #[arg(long, default_value = "4096", value_parser = parse_size, value_name = "SIZE")]
    max_body_print: usize,
    /// Decoded-size cap per body; larger bodies are cut and flagged `truncated`.
    #[arg(long, default_value = "8MiB", value_parser = parse_size, value_name = "SIZE")]
    max_body: usize,
    /// Print the statistics of each input on standard error at the end.
    #[arg(long)]
    stats: bool,
}

pub fn run(args: Args) -> u8 {
    let mut config = CaptureConfig::default();
    config.http1.max_body = args.max_body;
    let opts = JsonOptions {
        max_body: args.max_body_print,
    };
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut code = exit::OK;
    for file in &args.files {
        let mut write_failed = None;
        let result = process_capture(file, &config, &mut |record| {
            if write_failed.is_some() {
                return;
            }
            let line = record_to_json(&record, &opts);
            if let Err(e) = writeln!(out, "{line}") {
                write_failed = Some(e);
            }
        });
        if let Some(e) = write_failed {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return code;
            }
            error(format!("standard output: {e}"));
            return exit::ERROR;
        }
        match result {
            Ok(report) => {
                if let Some(t) = &report.truncated {
                    warning(t);
                    code = code.max(exit::TRUNCATED);
                }
                if args.stats {
                    print_stats(&report);
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

fn print_stats(r: &CaptureReport) {
    eprintln!(
        "{}: {} records; decode {:?}; reassembly {:?}; http {:?}",
        r.input, r.records, r.decode, r.reassembly, r.http
    );
}

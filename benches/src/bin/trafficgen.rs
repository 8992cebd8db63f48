//! `shadowmcp-trafficgen`: writes a deterministic mixed HTTP capture and
//! its per-flow labels (see the `shadowmcp_benches` crate docs).

use std::fs::File;
use std::process::ExitCode;

use shadowmcp_benches::{generate, GenConfig};

const USAGE: &str = "usage: shadowmcp-trafficgen --out FILE.pcap [--labels FILE.jsonl] [--size SIZE] [--seed N]
                            [--concurrent-flows N] [--syn-flood N] [--mcp-per-mille N] [--decoy-per-mille N]
SIZE: bytes with an optional unit (KiB, MiB, GiB, KB, MB, GB); default 64MiB.
Same options -> byte-identical output. A summary goes to standard error.";

fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("{text:?} is not a size"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "kb" => 1000,
        "m" | "mib" => 1 << 20,
        "mb" => 1_000_000,
        "g" | "gib" => 1 << 30,
        "gb" => 1_000_000_000,
        other => return Err(format!("unknown size unit {other:?}")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("size {text:?} is too large"))
}

fn num(text: &str) -> Result<u64, String> {
    text.replace('_', "")
        .parse()
        .map_err(|_| format!("{text:?} is not a number"))
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shadowmcp-trafficgen: {e}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<(), String> {
    let mut config = GenConfig::default();
    let (mut out, mut labels) = (None, None);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "-h" || flag == "--help" {
            println!("{USAGE}");
            return Ok(());
        }
        let value = args
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        match flag.as_str() {
            "--out" | "-o" => out = Some(value),
            "--labels" => labels = Some(value),
            "--size" => config.size = parse_size(&value)?,
            "--seed" => config.seed = num(&value)?,
            "--concurrent-flows" => config.concurrent_flows = num(&value)? as usize,
            "--syn-flood" => config.syn_flood = num(&value)?,
            "--mcp-per-mille" => config.mix.mcp_per_mille = num(&value)?,
            "--decoy-per-mille" => config.mix.decoy_per_mille = num(&value)?,
            other => return Err(format!("unknown option {other}\n{USAGE}")),
        }
    }
    let out = out.ok_or_else(|| format!("--out is required\n{USAGE}"))?;
    let pcap = File::create(&out).map_err(|e| format!("{out}: {e}"))?;
    let labels_file: Box<dyn std::io::Write> = match &labels {
        Some(path) => Box::new(File::create(path).map_err(|e| format!("{path}: {e}"))?),
        None => Box::new(std::io::sink()),
    };
    let s = generate(&config, pcap, labels_file).map_err(|e| format!("{out}: {e}"))?;
    eprintln!(
        "shadowmcp-trafficgen: {out}: {} bytes, {} packets, {} flows ({} MCP, {} decoys), {} exchanges, {} SYN-flood packets, peak {} concurrent flows",
        s.bytes, s.packets, s.flows, s.mcp_flows, s.decoy_flows, s.exchanges, s.syn_flood_packets, s.peak_concurrent
    );
    for (kind, n) in &s.by_kind {
        eprintln!("  {kind}: {n}");
    }
    Ok(())
}

//! `shadowmcp-flowload`: runs shadowmcp's capture path (decode, reassembly,
//! HTTP/1) over a capture with configurable connection and buffer caps and
//! prints the counters that show how it coped (connections opened,
//! evicted, exchanges). For the SYN-flood and concurrent-flow runs of
//! `benches/run.sh`; `shadowmcp scan` does not expose these caps.

use std::process::ExitCode;

use shadowmcp_engine::{process_capture, CaptureConfig};
use shadowmcp_exchange::Record;

const USAGE: &str = "usage: shadowmcp-flowload [--max-conns N] [--max-buffered-total BYTES] FILE";

fn main() -> ExitCode {
    let mut config = CaptureConfig::default();
    let mut file = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let parsed = match a.as_str() {
            "--max-conns" => args
                .next()
                .and_then(|v| v.parse().ok())
                .map(|v| config.reassembly.max_conns = v),
            "--max-buffered-total" => args
                .next()
                .and_then(|v| v.parse().ok())
                .map(|v| config.reassembly.max_buffered_total = v),
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            _ if file.is_none() => {
                file = Some(a.clone());
                Some(())
            }
            _ => None,
        };
        if parsed.is_none() {
            eprintln!("shadowmcp-flowload: bad argument {a:?}\n{USAGE}");
            return ExitCode::from(2);
        }
    }
    let Some(file) = file else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let (mut exchanges, mut updates) = (0u64, 0u64);
    let result = process_capture(&file, &config, &mut |r| match r {
        Record::Exchange(_) => exchanges += 1,
        _ => updates += 1,
    });
    match result {
        Ok(rep) => {
            let r = &rep.reassembly;
            println!(
                "{{\"input\":{:?},\"max_conns\":{},\"packets\":{},\"conns_opened\":{},\"evictions\":{},\"closed_fin\":{},\"closed_end_of_input\":{},\"gaps\":{},\"exchanges\":{},\"other_records\":{}}}",
                file, config.reassembly.max_conns, rep.reader.packets, r.conns_opened, r.evictions, r.closed_fin, r.closed_end_of_input, r.gaps, exchanges, updates
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("shadowmcp-flowload: {e}");
            ExitCode::from(1)
        }
    }
}

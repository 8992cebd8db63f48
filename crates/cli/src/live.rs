//! `shadowmcp live -i IFACE`: scan a network interface as traffic passes.
//!
//! Needs the `live` build feature (libpcap) and the right to capture
//! (root or CAP_NET_RAW). SIGINT and SIGTERM stop the capture cleanly: open
//! connections are flushed, their exchanges decided, events and metrics
//! written, the summary printed.

use crate::scan::ScanOpts;

#[derive(clap::Args)]
pub struct Args {
    /// The interface to capture on (e.g. eth1, lo).
    #[arg(short = 'i', long, value_name = "IFACE")]
    interface: String,
    /// A BPF capture filter (tcpdump syntax), e.g. "tcp port 80 or tcp port 8080".
    #[arg(long, value_name = "FILTER")]
    bpf: Option<String>,
    /// Put the interface in promiscuous mode.
    #[arg(long)]
    promisc: bool,
    /// Stop after this many seconds (default: until SIGINT/SIGTERM).
    #[arg(long, value_name = "SECONDS")]
    duration: Option<f64>,
    #[command(flatten)]
    opts: ScanOpts,
}

#[cfg(not(feature = "live"))]
pub fn run(args: Args) -> u8 {
    let _ = (
        &args.interface,
        &args.bpf,
        args.promisc,
        args.duration,
        &args.opts,
    );
    crate::error(
        "this shadowmcp was built without live capture; rebuild with `cargo build --release --features live` (needs libpcap-dev)",
    );
    crate::exit::ERROR
}

#[cfg(feature = "live")]
pub fn run(args: Args) -> u8 {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    use shadowmcp_engine::live::{LiveConfig, LiveSource};

    use crate::scan::ScanRun;
    use crate::{error, exit};

    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        if let Err(e) = ctrlc::set_handler(move || stop.store(true, Ordering::Relaxed)) {
            error(format!("cannot install the SIGINT/SIGTERM handler: {e}"));
            return exit::ERROR;
        }
    }
    if let Some(secs) = args.duration {
        if !(secs.is_finite() && secs >= 0.0) {
            error(format!("--duration {secs}: not a number of seconds"));
            return exit::ERROR;
        }
        let stop = stop.clone();
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_secs_f64(secs));
            stop.store(true, Ordering::Relaxed);
        });
    }
    let mut run = match ScanRun::start(&args.opts) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let mut config = LiveConfig::new(&args.interface);
    config.filter = args.bpf.clone();
    config.promiscuous = args.promisc;
    let result = LiveSource::open(&config, stop).and_then(|source| {
        if !args.opts.quiet {
            // Tells a human (and tests) that packets are now being captured.
            eprintln!("shadowmcp: capturing on {}", args.interface);
        }
        run.input(source)
    });
    if let Err(code) = run.account(result) {
        return code;
    }
    run.finish()
}

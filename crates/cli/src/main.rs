//! `shadowmcp`: a thin command line over the shadowmcp crates.

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod exchanges;
mod input;
mod live;
mod observe;
mod rules_cmd;
mod scan;
mod size;
mod test_cmd;

/// Exit codes, documented in docs/cli.md.
pub mod exit {
    /// Everything read and processed.
    pub const OK: u8 = 0;
    /// `scan --fail-on`: a matching verdict was found; `test`: a case failed.
    pub const FINDING: u8 = 1;
    /// Fatal: bad usage, an input that is not a capture, unreadable rules or
    /// policy, an output that cannot be written.
    pub const ERROR: u8 = 2;
    /// Finished, but an input was cut short (a truncated capture): every
    /// complete packet before the cut was processed.
    pub const TRUNCATED: u8 = 3;
}

#[derive(Parser)]
#[command(name = "shadowmcp", version, about = "Find shadow MCP in decrypted HTTP traffic", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print every HTTP exchange the engine reconstructs, one JSON object per line.
    Exchanges(exchanges::Args),
    /// Detect MCP, apply the policy and write EVE alerts, one JSON object per line.
    Scan(scan::Args),
    /// Capture from a network interface (a decryption mirror port) and scan it live.
    Live(live::Args),
    /// Run rule regression cases (`*.case.toml`) and report `N passed, N failed`.
    Test(test_cmd::Args),
    /// Work with rule packs.
    #[command(subcommand)]
    Rules(rules_cmd::RulesCommand),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::ERROR
            } else {
                exit::OK
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let code = match cli.command {
        Command::Exchanges(args) => exchanges::run(args),
        Command::Scan(args) => scan::run(args),
        Command::Test(args) => test_cmd::run(args),
        Command::Live(args) => live::run(args),
        Command::Rules(cmd) => rules_cmd::run(cmd),
    };
    let _ = std::io::stdout().flush();
    ExitCode::from(code)
}

/// Prints a one-line error, prefixed with the program name.
pub fn error(msg: impl std::fmt::Display) {
    eprintln!("shadowmcp: error: {msg}");
}

pub fn warning(msg: impl std::fmt::Display) {
    eprintln!("shadowmcp: warning: {msg}");
}

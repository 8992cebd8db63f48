//! `shadowmcp rules lint DIR` and `shadowmcp rules list`.

use std::path::PathBuf;

use shadowmcp_rules::{lint_dir, RulePack};

use crate::{error, exit};

#[derive(clap::Subcommand)]
pub enum RulesCommand {
    /// Check every rule file in DIR; print problems as `file:line: what is wrong`.
    Lint {
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
    /// List the rules of the embedded default pack (or of --rules DIR).
    List {
        #[arg(long, value_name = "DIR")]
        rules: Option<PathBuf>,
    },
}

pub fn run(cmd: RulesCommand) -> u8 {
    match cmd {
        RulesCommand::Lint { dir } => {
            if !dir.is_dir() {
                error(format!("{}: not a directory", dir.display()));
                return exit::ERROR;
            }
            let problems = lint_dir(&dir);
            for p in &problems {
                println!("{p}");
            }
            if problems.is_empty() {
                eprintln!("shadowmcp: {}: no problems", dir.display());
                exit::OK
            } else {
                eprintln!(
                    "shadowmcp: {}: {} problem(s)",
                    dir.display(),
                    problems.len()
                );
                exit::FINDING
            }
        }
        RulesCommand::List { rules } => {
            let pack = match rules {
                Some(dir) => match RulePack::load_dir(&dir) {
                    Ok(p) => p,
                    Err(errs) => {
                        for e in &errs {
                            error(e);
                        }
                        return exit::ERROR;
                    }
                },
                None => RulePack::default_pack(),
            };
            for r in pack.rules() {
                println!(
                    "{}\t{}\t{}\t{}",
                    r.id,
                    r.confidence.as_str(),
                    r.category,
                    r.name
                );
            }
            exit::OK
        }
    }
}

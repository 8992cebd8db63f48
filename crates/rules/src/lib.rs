//! shadowmcp detection rules: this crate's one job is to turn rule files
//! (TOML, format documented in `docs/rules.md`) into validated [`Rule`]s and
//! a [`KnownServer`] catalog, and to say precisely (`file:line: what`) what is
//! wrong with a rule file. Matching is done by `shadowmcp-detect`.
//!
//! The default pack (the repository's `rules/` directory) is compiled into
//! the binary.
//!
//! ```
//! use shadowmcp_rules::{Confidence, RulePack};
//!
//! let mut pack = RulePack::default_pack();
//! assert!(pack.rules().iter().any(|r| r.category == "mcp-jsonrpc"));
//! assert!(pack.known_servers().iter().any(|s| s.host == "mcp.stripe.com"));
//!
//! let extra = RulePack::parse_str("site.toml", r#"
//! format = 1
//! [[rule]]
//! id = 900001
//! name = "Internal assistant endpoint"
//! confidence = "medium"
//! severity = 2
//! category = "site-local"
//! condition = { all = [
//!   { field = "host", glob = "*.corp.example" },
//!   { field = "path", prefix = "/api/assistant" },
//! ] }
//! "#).unwrap();
//! pack.extend(extra).unwrap();
//! assert_eq!(pack.rule(900001).unwrap().confidence, Confidence::Medium);
//!
//! // Problems come back as `file:line: message`.
//! let errors = shadowmcp_rules::lint_str("bad.toml", "format = 1\n[[rule]]\nid = 1\nbogus = 2\n");
//! assert!(errors[0].to_string().starts_with("bad.toml:"));
//! ```

mod atoms;
mod load;
mod model;

use std::path::Path;

pub use atoms::{extract_regex_atoms, MAX_ATOMS_PER_REGEX, MIN_ATOM_LEN};
pub use load::{glob_to_regex, LintError, FORMAT_VERSION, REGEX_SIZE_LIMIT};
pub use model::{
    Condition, Confidence, Field, KnownServer, Matcher, Operator, Rule, SourceLocation,
};

use load::{parse_file, toml_files, DuplicateCheck};

/// The default pack's files, embedded at build time (`rules/` at the
/// repository root). A test checks that this list matches the directory.
pub const DEFAULT_PACK_FILES: &[(&str, &str)] = &[
    (
        "host-path.toml",
        include_str!("../../../rules/host-path.toml"),
    ),
    ("headers.toml", include_str!("../../../rules/headers.toml")),
    ("jsonrpc.toml", include_str!("../../../rules/jsonrpc.toml")),
    (
        "responses.toml",
        include_str!("../../../rules/responses.toml"),
    ),
    (
        "provider.toml",
        include_str!("../../../rules/provider.toml"),
    ),
    (
        "known-servers.toml",
        include_str!("../../../rules/known-servers.toml"),
    ),
];

/// A set of rules plus the known-servers catalog.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RulePack {
    rules: Vec<Rule>,
    known_servers: Vec<KnownServer>,
}

impl RulePack {
    /// The embedded default pack. Its files are validated by this crate's
    /// tests, so loading cannot fail in a released build.
    pub fn default_pack() -> RulePack {
        match RulePack::try_default_pack() {
            Ok(p) => p,
            // Unreachable unless the embedded files were edited without
            // running the tests; fail loudly rather than detect nothing.
            Err(errors) => panic!(
                "embedded default rule pack is invalid: {}",
                errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        }
    }

    /// The embedded default pack, or its problems.
    pub fn try_default_pack() -> Result<RulePack, Vec<LintError>> {
        RulePack::from_sources(DEFAULT_PACK_FILES.iter().copied())
    }

    /// Loads every `*.toml` file of `dir` (not recursive, in name order) as
    /// a complete pack, replacing the default one (`--rules DIR`).
    pub fn load_dir(dir: impl AsRef<Path>) -> Result<RulePack, Vec<LintError>> {
        let files = toml_files(dir.as_ref()).map_err(|e| vec![e])?;
        let mut sources = Vec::with_capacity(files.len());
        let mut errors = Vec::new();
        for f in files {
            match std::fs::read_to_string(&f) {
                Ok(text) => sources.push((f.display().to_string(), text)),
                Err(e) => errors.push(LintError {
                    file: f.display().to_string(),
                    line: 0,
                    message: format!("cannot read: {e}"),
                }),
            }
        }
        let loaded = RulePack::from_sources(sources.iter().map(|(n, t)| (n.as_str(), t.as_str())));
        match loaded {
            Ok(p) if errors.is_empty() => Ok(p),
            Ok(_) => Err(errors),
            Err(mut e) => {
                errors.append(&mut e);
                Err(errors)
            }
        }
    }

    /// Parses one rule file's text; `file` names it in errors.
    pub fn parse_str(file: &str, text: &str) -> Result<RulePack, Vec<LintError>> {
        RulePack::from_sources(std::iter::once((file, text)))
    }

    /// Parses several `(file name, text)` pairs into one pack; rule ids and
    /// catalog endpoints must be unique across all of them.
    pub fn from_sources<'a>(
        sources: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<RulePack, Vec<LintError>> {
        let mut pack = RulePack::default();
        let mut errors = Vec::new();
        let mut dup = DuplicateCheck::default();
        for (file, text) in sources {
            match parse_file(file, text) {
                Ok(parsed) => {
                    for r in parsed.rules {
                        match dup.rule(&r) {
                            Some(e) => errors.push(e),
                            None => pack.rules.push(r),
                        }
                    }
                    for s in parsed.servers {
                        match dup.server(&s) {
                            Some(e) => errors.push(e),
                            None => pack.known_servers.push(s),
                        }
                    }
                }
                Err(mut e) => errors.append(&mut e),
            }
        }
        if errors.is_empty() {
            Ok(pack)
        } else {
            Err(errors)
        }
    }

    /// Adds another pack's rules and catalog entries (`--rules-extend DIR`).
    /// A rule id already present is an error (rules are never silently
    /// overridden); on error `self` is unchanged. Catalog entries already
    /// present are skipped.
    pub fn extend(&mut self, other: RulePack) -> Result<(), Vec<LintError>> {
        let mut dup = DuplicateCheck::default();
        for r in &self.rules {
            dup.rule(r);
        }
        let errors: Vec<LintError> = other.rules.iter().filter_map(|r| dup.rule(r)).collect();
        if !errors.is_empty() {
            return Err(errors);
        }
        self.rules.extend(other.rules);
        for s in other.known_servers {
            if dup.server(&s).is_none()
                && !self
                    .known_servers
                    .iter()
                    .any(|k| k.host == s.host && k.path == s.path)
            {
                self.known_servers.push(s);
            }
        }
        Ok(())
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn rule(&self, id: u32) -> Option<&Rule> {
        self.rules.iter().find(|r| r.id == id)
    }

    pub fn known_servers(&self) -> &[KnownServer] {
        &self.known_servers
    }
}

/// Every problem in the `*.toml` files of `dir`, as `file:line: what`.
/// Empty means the directory loads.
pub fn lint_dir(dir: impl AsRef<Path>) -> Vec<LintError> {
    match RulePack::load_dir(dir) {
        Ok(_) => Vec::new(),
        Err(e) => e,
    }
}

/// Every problem in one rule file's text.
pub fn lint_str(file: &str, text: &str) -> Vec<LintError> {
    match RulePack::parse_str(file, text) {
        Ok(_) => Vec::new(),
        Err(e) => e,
    }
}

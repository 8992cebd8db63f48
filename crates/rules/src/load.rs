//! Reading rule files: TOML → validated [`Rule`]s and [`KnownServer`]s, with
//! every problem reported as a [`LintError`] carrying `file:line`.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use crate::atoms::{extract_regex_atoms, MIN_ATOM_LEN};
use crate::model::{
    Condition, Confidence, Field, KnownServer, Matcher, Operator, Rule, SourceLocation,
};

/// The rule-file format version this crate reads (`format = 1`).
pub const FORMAT_VERSION: i64 = 1;

/// Compiled size cap for one rule regex; keeps a hostile rule file from
/// exhausting memory.
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// One problem in a rule file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LintError {
    pub file: String,
    /// 1-based line; 0 when the problem concerns the whole file.
    pub line: usize,
    pub message: String,
}

impl fmt::Display for LintError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}:{}: {}", self.file, self.line, self.message)
        }
    }
}

impl std::error::Error for LintError {}

// ---- raw (serde) form ------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    format: Option<Spanned<i64>>,
    #[serde(default)]
    rule: Vec<Spanned<RawRule>>,
    #[serde(default)]
    server: Vec<Spanned<RawServer>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    id: Spanned<i64>,
    rev: Option<Spanned<i64>>,
    name: Spanned<String>,
    #[serde(default)]
    description: String,
    confidence: Spanned<String>,
    severity: Spanned<i64>,
    category: Spanned<String>,
    #[serde(default)]
    references: Vec<String>,
    circumstantial: Option<bool>,
    condition: Spanned<RawCond>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Strings {
    One(String),
    Many(Vec<String>),
}

impl Strings {
    fn into_vec(self) -> Vec<String> {
        match self {
            Strings::One(s) => vec![s],
            Strings::Many(v) => v,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCond {
    all: Option<Vec<Spanned<RawCond>>>,
    any: Option<Vec<Spanned<RawCond>>>,
    not: Option<Box<Spanned<RawCond>>>,
    field: Option<Spanned<String>>,
    pointer: Option<Spanned<String>>,
    equals: Option<Spanned<Strings>>,
    contains: Option<Spanned<Strings>>,
    prefix: Option<Spanned<Strings>>,
    suffix: Option<Spanned<Strings>>,
    regex: Option<Spanned<String>>,
    glob: Option<Spanned<Strings>>,
    exists: Option<Spanned<bool>>,
    nocase: Option<bool>,
    atoms: Option<Spanned<Vec<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    host: Spanned<String>,
    path: Spanned<String>,
    vendor: Spanned<String>,
    transport: Option<String>,
    source: Spanned<String>,
}

// ---- conversion ------------------------------------------------------------

/// Rules and catalog entries read from one file, or its problems.
pub(crate) struct Parsed {
    pub rules: Vec<Rule>,
    pub servers: Vec<KnownServer>,
}

struct Ctx<'a> {
    file: &'a str,
    text: &'a str,
    errors: Vec<LintError>,
}

impl Ctx<'_> {
    fn line(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    fn err(&mut self, offset: usize, message: impl Into<String>) {
        let line = self.line(offset);
        self.errors.push(LintError {
            file: self.file.to_string(),
            line,
            message: message.into(),
        });
    }
}

/// Parses and validates one rule file. Errors are returned all at once
/// (after the first TOML-structure error, which stops parsing).
pub(crate) fn parse_file(file: &str, text: &str) -> Result<Parsed, Vec<LintError>> {
    let mut ctx = Ctx {
        file,
        text,
        errors: Vec::new(),
    };
    let raw: RawFile = match toml::from_str(text) {
        Ok(r) => r,
        Err(e) => {
            let offset = e.span().map(|s| s.start).unwrap_or(0);
            ctx.err(offset, e.message().trim().replace('\n', " "));
            return Err(ctx.errors);
        }
    };
    match &raw.format {
        None => ctx.err(0, "missing `format = 1` at the top of the file"),
        Some(v) if *v.get_ref() != FORMAT_VERSION => {
            let msg = format!(
                "unsupported format version {} (this build reads {FORMAT_VERSION})",
                v.get_ref()
            );
            ctx.err(v.span().start, msg)
        }
        Some(_) => {}
    }
    let mut rules = Vec::new();
    for raw_rule in raw.rule {
        if let Some(rule) = convert_rule(&mut ctx, raw_rule) {
            rules.push(rule);
        }
    }
    let mut servers = Vec::new();
    for raw_server in raw.server {
        if let Some(s) = convert_server(&mut ctx, raw_server) {
            servers.push(s);
        }
    }
    let mut dup = DuplicateCheck::default();
    for rule in &rules {
        if let Some(e) = dup.rule(rule) {
            ctx.errors.push(e);
        }
    }
    for server in &servers {
        if let Some(e) = dup.server(server) {
            ctx.errors.push(e);
        }
    }
    if ctx.errors.is_empty() {
        Ok(Parsed { rules, servers })
    } else {
        Err(ctx.errors)
    }
}

/// Finds rule ids and catalog endpoints defined twice, across files.
#[derive(Default)]
pub(crate) struct DuplicateCheck {
    ids: HashMap<u32, SourceLocation>,
    endpoints: HashMap<(String, String), SourceLocation>,
}

impl DuplicateCheck {
    pub(crate) fn rule(&mut self, rule: &Rule) -> Option<LintError> {
        if let Some(first) = self.ids.get(&rule.id) {
            return Some(LintError {
                file: rule.location.file.clone(),
                line: rule.location.line,
                message: format!("duplicate rule id {} (first defined at {first})", rule.id),
            });
        }
        self.ids.insert(rule.id, rule.location.clone());
        None
    }

    pub(crate) fn server(&mut self, s: &KnownServer) -> Option<LintError> {
        let key = (s.host.clone(), s.path.clone());
        if let Some(first) = self.endpoints.get(&key) {
            return Some(LintError {
                file: s.location.file.clone(),
                line: s.location.line,
                message: format!(
                    "duplicate known server {}{} (first defined at {first})",
                    s.host, s.path
                ),
            });
        }
        self.endpoints.insert(key, s.location.clone());
        None
    }
}

fn convert_rule(ctx: &mut Ctx<'_>, raw: Spanned<RawRule>) -> Option<Rule> {
    let start = raw.span().start;
    let raw = raw.into_inner();
    let before = ctx.errors.len();
    let id = *raw.id.get_ref();
    if !(1..=i64::from(u32::MAX)).contains(&id) {
        ctx.err(
            raw.id.span().start,
            format!("id must be 1..=4294967295, not {id}"),
        );
    }
    let rev = raw.rev.as_ref().map(|r| *r.get_ref()).unwrap_or(1);
    if !(1..=i64::from(u32::MAX)).contains(&rev) {
        let off = raw.rev.as_ref().map(|r| r.span().start).unwrap_or(start);
        ctx.err(off, format!("rev must be a positive integer, not {rev}"));
    }
    if raw.name.get_ref().trim().is_empty() {
        ctx.err(raw.name.span().start, "name must not be empty");
    }
    let confidence = Confidence::parse(raw.confidence.get_ref());
    if confidence.is_none() {
        let msg = format!(
            "confidence must be \"high\", \"medium\" or \"low\", not {:?}",
            raw.confidence.get_ref()
        );
        ctx.err(raw.confidence.span().start, msg);
    }
    let severity = *raw.severity.get_ref();
    if !(1..=3).contains(&severity) {
        ctx.err(
            raw.severity.span().start,
            format!("severity must be 1 (high), 2 or 3 (low), not {severity}"),
        );
    }
    let category = raw.category.get_ref();
    if category.is_empty()
        || !category
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        ctx.err(
            raw.category.span().start,
            format!("category must be lower-case letters, digits and '-', not {category:?}"),
        );
    }
    let condition = convert_cond(ctx, raw.condition);
    if ctx.errors.len() != before {
        return None;
    }
    let confidence = confidence?;
    Some(Rule {
        id: u32::try_from(id).ok()?,
        rev: u32::try_from(rev).ok()?,
        name: raw.name.into_inner(),
        description: raw.description,
        confidence,
        severity: u8::try_from(severity).ok()?,
        category: raw.category.into_inner(),
        references: raw.references,
        circumstantial: raw.circumstantial.unwrap_or(confidence == Confidence::Low),
        condition: condition?,
        location: SourceLocation {
            file: ctx.file.to_string(),
            line: ctx.line(start),
        },
    })
}

fn convert_cond(ctx: &mut Ctx<'_>, raw: Spanned<RawCond>) -> Option<Condition> {
    let start = raw.span().start;
    let raw = raw.into_inner();
    let kinds = [
        raw.all.is_some(),
        raw.any.is_some(),
        raw.not.is_some(),
        raw.field.is_some(),
    ]
    .iter()
    .filter(|&&k| k)
    .count();
    if kinds != 1 {
        ctx.err(
            start,
            "a condition needs exactly one of `all`, `any`, `not` or `field`",
        );
        return None;
    }
    let RawCond {
        all,
        any,
        not,
        field,
        pointer,
        equals,
        contains,
        prefix,
        suffix,
        regex,
        glob,
        exists,
        nocase,
        atoms,
    } = raw;
    let ops: Vec<(&'static str, usize, OpValue)> = [
        ("equals", equals.map(spanned_strings)),
        ("contains", contains.map(spanned_strings)),
        ("prefix", prefix.map(spanned_strings)),
        ("suffix", suffix.map(spanned_strings)),
        ("glob", glob.map(spanned_strings)),
        (
            "regex",
            regex.map(|r| (r.span().start, OpValue::Text(r.into_inner()))),
        ),
        (
            "exists",
            exists.map(|e| (e.span().start, OpValue::Bool(*e.get_ref()))),
        ),
    ]
    .into_iter()
    .filter_map(|(name, v)| v.map(|(off, val)| (name, off, val)))
    .collect();

    let Some(field) = field else {
        let stray = if pointer.is_some() {
            Some("pointer")
        } else if nocase.is_some() {
            Some("nocase")
        } else if atoms.is_some() {
            Some("atoms")
        } else {
            ops.first().map(|o| o.0)
        };
        if let Some(name) = stray {
            ctx.err(start, format!("`{name}` only goes with `field`"));
            return None;
        }
        let is_all = all.is_some();
        if let Some(list) = if is_all { all } else { any } {
            if list.is_empty() {
                ctx.err(start, "`all`/`any` needs at least one condition");
                return None;
            }
            let mut out = Vec::with_capacity(list.len());
            let mut ok = true;
            for c in list {
                match convert_cond(ctx, c) {
                    Some(c) => out.push(c),
                    None => ok = false,
                }
            }
            if !ok {
                return None;
            }
            return Some(if is_all {
                Condition::All(out)
            } else {
                Condition::Any(out)
            });
        }
        let inner = convert_cond(ctx, *not?)?;
        return Some(Condition::Not(Box::new(inner)));
    };

    let field_off = field.span().start;
    let line = ctx.line(start);
    let Some(mut parsed) = Field::parse(field.get_ref()) else {
        let msg = format!("unknown field {:?}", field.get_ref());
        ctx.err(field_off, msg);
        return None;
    };
    match (&mut parsed, pointer) {
        (Field::JsonPointer(p), Some(ptr)) => {
            let text = ptr.get_ref();
            if !(text.is_empty() || text.starts_with('/')) {
                ctx.err(
                    ptr.span().start,
                    "pointer must be empty or start with '/' (RFC 6901)",
                );
                return None;
            }
            *p = text.clone();
        }
        (Field::JsonPointer(_), None) => {
            ctx.err(
                field_off,
                "field \"json_pointer\" needs `pointer = \"/...\"`",
            );
            return None;
        }
        (_, Some(ptr)) => {
            ctx.err(
                ptr.span().start,
                "`pointer` only goes with field \"json_pointer\"",
            );
            return None;
        }
        (_, None) => {}
    }
    if ops.len() != 1 {
        ctx.err(
            start,
            "a field condition needs exactly one of equals, contains, prefix, suffix, regex, glob, exists",
        );
        return None;
    }
    let (op_name, op_off, value) = ops.into_iter().next()?;
    let nocase = nocase.unwrap_or(false);
    let op = match (op_name, value) {
        (_, OpValue::Strings(list)) => {
            if list.is_empty() {
                ctx.err(op_off, format!("`{op_name}` needs at least one string"));
                return None;
            }
            if op_name != "equals" && list.iter().any(String::is_empty) {
                ctx.err(op_off, format!("`{op_name}` strings must not be empty"));
                return None;
            }
            match op_name {
                "equals" => Operator::Equals(list),
                "contains" => Operator::Contains(list),
                "prefix" => Operator::Prefix(list),
                "suffix" => Operator::Suffix(list),
                _ => {
                    if parsed.is_body() {
                        ctx.err(
                            op_off,
                            "`glob` is for short fields (host, path, headers, ...), not bodies",
                        );
                        return None;
                    }
                    for g in &list {
                        if let Err(e) = check_regex(&glob_to_regex(g), true) {
                            ctx.err(op_off, format!("bad glob {g:?}: {e}"));
                            return None;
                        }
                    }
                    Operator::Glob(list)
                }
            }
        }
        (_, OpValue::Text(re)) => {
            if let Err(e) = check_regex(&re, nocase) {
                ctx.err(op_off, format!("bad regex: {e}"));
                return None;
            }
            Operator::Regex(re)
        }
        (_, OpValue::Bool(b)) => Operator::Exists(b),
    };

    let mut atom_list = Vec::new();
    if let Some(given) = atoms {
        if !parsed.is_body() {
            ctx.err(
                given.span().start,
                "`atoms` only apply to request_body, response_body and sse_data",
            );
            return None;
        }
        if given.get_ref().is_empty() || given.get_ref().iter().any(|a| a.len() < MIN_ATOM_LEN) {
            ctx.err(
                given.span().start,
                format!("`atoms` needs at least one literal, each of {MIN_ATOM_LEN}+ bytes"),
            );
            return None;
        }
        atom_list = given.into_inner();
    } else if parsed.is_body() {
        match &op {
            Operator::Equals(l)
            | Operator::Contains(l)
            | Operator::Prefix(l)
            | Operator::Suffix(l) => {
                atom_list = l.clone();
            }
            Operator::Regex(re) => match extract_regex_atoms(re) {
                Some(a) => atom_list = a,
                None => {
                    ctx.err(
                        op_off,
                        format!(
                            "regex on body field {:?} has no literal atom of {MIN_ATOM_LEN}+ bytes \
                             for the prefilter; add `atoms = [...]`",
                            parsed.name()
                        ),
                    );
                    return None;
                }
            },
            Operator::Glob(_) | Operator::Exists(_) => {}
        }
    }
    let mut lowered: Vec<String> = Vec::new();
    for a in atom_list {
        let a = a.to_ascii_lowercase();
        if !a.is_empty() && !lowered.contains(&a) {
            lowered.push(a);
        }
    }
    Some(Condition::Match(Matcher {
        field: parsed,
        op,
        nocase,
        atoms: lowered,
        line,
    }))
}

enum OpValue {
    Strings(Vec<String>),
    Text(String),
    Bool(bool),
}

fn spanned_strings(s: Spanned<Strings>) -> (usize, OpValue) {
    (s.span().start, OpValue::Strings(s.into_inner().into_vec()))
}

/// Compiles `pattern` the way the detector will, to report errors early.
fn check_regex(pattern: &str, nocase: bool) -> Result<(), String> {
    regex::bytes::RegexBuilder::new(pattern)
        .case_insensitive(nocase)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map(|_| ())
        .map_err(|e| {
            let text = e.to_string();
            text.lines()
                .find_map(|l| l.strip_prefix("error: "))
                .unwrap_or(text.lines().next().unwrap_or("invalid"))
                .to_string()
        })
}

/// Translates a glob (`*` = any run, `?` = one character, everything else
/// literal) into an anchored regex.
pub fn glob_to_regex(glob: &str) -> String {
    let mut out = String::with_capacity(glob.len() + 8);
    out.push('^');
    let mut lit = String::new();
    for c in glob.chars() {
        match c {
            '*' | '?' => {
                out.push_str(&regex::escape(&lit));
                lit.clear();
                out.push_str(if c == '*' { "(?s:.*)" } else { "(?s:.)" });
            }
            _ => lit.push(c),
        }
    }
    out.push_str(&regex::escape(&lit));
    out.push('$');
    out
}

fn convert_server(ctx: &mut Ctx<'_>, raw: Spanned<RawServer>) -> Option<KnownServer> {
    let start = raw.span().start;
    let raw = raw.into_inner();
    let before = ctx.errors.len();
    let host = raw.host.get_ref().trim().to_ascii_lowercase();
    if host.is_empty()
        || !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
    {
        ctx.err(
            raw.host.span().start,
            format!("host must be a bare hostname (no scheme, port or path), not {host:?}"),
        );
    }
    if !raw.path.get_ref().starts_with('/') {
        ctx.err(raw.path.span().start, "path must start with '/'");
    }
    if raw.vendor.get_ref().trim().is_empty() {
        ctx.err(raw.vendor.span().start, "vendor must not be empty");
    }
    if raw.source.get_ref().trim().is_empty() {
        ctx.err(raw.source.span().start, "source must not be empty");
    }
    if ctx.errors.len() != before {
        return None;
    }
    Some(KnownServer {
        host,
        path: raw.path.into_inner(),
        vendor: raw.vendor.into_inner(),
        transport: raw.transport,
        source: raw.source.into_inner(),
        location: SourceLocation {
            file: ctx.file.to_string(),
            line: ctx.line(start),
        },
    })
}

/// Lists the `*.toml` files of a directory, sorted by name.
pub(crate) fn toml_files(dir: &Path) -> Result<Vec<std::path::PathBuf>, LintError> {
    let entries = std::fs::read_dir(dir).map_err(|e| LintError {
        file: dir.display().to_string(),
        line: 0,
        message: format!("cannot read directory: {e}"),
    })?;
    let mut files: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(LintError {
            file: dir.display().to_string(),
            line: 0,
            message: "no *.toml rule files".into(),
        });
    }
    Ok(files)
}

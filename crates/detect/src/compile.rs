//! Turning a [`RulePack`] into the matcher the detector runs: one
//! aho-corasick automaton per body field holding every rule's atoms for that
//! field, and per rule a tree of compiled tests.

use std::collections::HashMap;
use std::fmt;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, Input, MatchKind};
use regex::bytes::{Regex, RegexBuilder};
use shadowmcp_jsonrpc::Signal;
use shadowmcp_rules::{
    glob_to_regex, Condition, Confidence, Field, Matcher, Operator, RulePack, REGEX_SIZE_LIMIT,
};

/// Why a [`crate::Detector`] could not be built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildError {
    /// Rule id, 0 when the problem is not tied to one rule.
    pub rule_id: u32,
    pub message: String,
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.rule_id == 0 {
            f.write_str(&self.message)
        } else {
            write!(f, "rule {}: {}", self.rule_id, self.message)
        }
    }
}

impl std::error::Error for BuildError {}

/// The three body fields that get a prefilter automaton.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BodyField {
    Request = 0,
    Response = 1,
    Sse = 2,
}

/// Field of a compiled test.
#[derive(Clone, Debug)]
pub(crate) enum CField {
    Host,
    Path,
    HttpMethod,
    RequestHeader(String),
    ResponseHeader(String),
    Body(BodyField),
    SseEvent,
    JsonrpcMethod,
    JsonPointer(String),
    AnalyzerSignal,
    KnownServer,
    KnownEndpoint,
    TlsSni,
}

#[derive(Debug)]
pub(crate) enum COp {
    Equals(Vec<Vec<u8>>),
    Prefix(Vec<Vec<u8>>),
    Suffix(Vec<Vec<u8>>),
    /// `regex`, and `contains`/`glob` translated to a regex.
    Regex(Regex),
    Exists(bool),
}

#[derive(Debug)]
pub(crate) struct CTest {
    pub field: CField,
    pub op: COp,
    pub nocase: bool,
    /// Pattern ids in the field's automaton; the test can only match when
    /// one of them was seen. Empty for non-body fields and `exists`.
    pub atom_ids: Vec<usize>,
}

#[derive(Debug)]
pub(crate) enum CCond {
    All(Vec<CCond>),
    /// An `all` mentioning both `sse_event` and `sse_data`: true when one
    /// single event satisfies every part (event type and data of the same
    /// event, not of two different ones).
    AllSameEvent(Vec<CCond>),
    Any(Vec<CCond>),
    Not(Box<CCond>),
    Test(CTest),
}

#[derive(Debug)]
pub(crate) struct CRule {
    pub id: u32,
    pub name: String,
    pub category: String,
    pub severity: u8,
    pub confidence: Confidence,
    pub circumstantial: bool,
    /// Evidence layers (bits of [`layer`]) the rule's fields belong to.
    pub layers: u8,
    pub cond: CCond,
}

/// Independent evidence layers, for corroboration of low-confidence rules.
pub(crate) mod layer {
    pub const HOST: u8 = 1;
    pub const PATH: u8 = 2;
    pub const HEADER: u8 = 4;
    pub const PAYLOAD: u8 = 8;
}

fn layers_of(cond: &Condition) -> u8 {
    cond.matchers().iter().fold(0, |acc, m| {
        acc | match m.field {
            Field::Host | Field::KnownServer | Field::TlsSni => layer::HOST,
            Field::KnownEndpoint => layer::HOST | layer::PATH,
            Field::Path => layer::PATH,
            Field::HttpMethod => 0,
            Field::RequestHeader(_) | Field::ResponseHeader(_) => layer::HEADER,
            _ => layer::PAYLOAD,
        }
    })
}

thread_local! {
    /// Scratch for the lower-cased haystack of [`Prefilter::scan`].
    static LOWERED: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Scratch capacity kept between scans.
const LOWERED_KEEP: usize = 1 << 20;

/// One automaton over all atoms of one body field.
#[derive(Default)]
pub(crate) struct Prefilter {
    pub automaton: Option<AhoCorasick>,
    pub atoms: Vec<String>,
    /// For each atom, the atoms it contains (itself included): finding it
    /// means finding them.
    implied: Vec<Vec<usize>>,
}

impl Prefilter {
    fn atom_id(&mut self, atom: &str) -> usize {
        if let Some(i) = self.atoms.iter().position(|a| a == atom) {
            return i;
        }
        self.atoms.push(atom.to_string());
        self.atoms.len() - 1
    }

    fn build(&mut self) -> Result<(), BuildError> {
        if self.atoms.is_empty() {
            return Ok(());
        }
        // Leftmost-longest, not overlapping, and case-sensitive over a
        // lower-cased copy of the haystack: that way aho-corasick can skip
        // ahead with its SIMD (Teddy) prefilter between candidates, which
        // it does neither for overlapping nor for case-insensitive searches
        // (the overlapping case-insensitive search was the detector's
        // costliest step). `scan` restarts one byte after each match's
        // start, so no occurrence is missed (see there).
        let lower: Vec<String> = self.atoms.iter().map(|a| a.to_ascii_lowercase()).collect();
        let ac = AhoCorasickBuilder::new()
            .match_kind(MatchKind::LeftmostLongest)
            .kind(Some(AhoCorasickKind::DFA))
            .build(&lower)
            .map_err(|e| BuildError {
                rule_id: 0,
                message: format!("prefilter automaton: {e}"),
            })?;
        self.implied = lower
            .iter()
            .map(|outer| {
                (0..lower.len())
                    .filter(|&j| outer.contains(lower[j].as_str()))
                    .collect()
            })
            .collect();
        self.automaton = Some(ac);
        Ok(())
    }

    /// Which atoms occur in `hay` (ASCII case-insensitively), marked in
    /// `hits` (indexed by atom id). Stops early once every atom was seen.
    pub fn scan(&self, hay: &[u8], hits: &mut [bool]) {
        let Some(ac) = &self.automaton else { return };
        let mut missing = hits.iter().filter(|h| !**h).count();
        if missing == 0 {
            return;
        }
        LOWERED.with_borrow_mut(|lowered| {
            lowered.clear();
            lowered.extend(hay.iter().map(u8::to_ascii_lowercase));
            self.scan_lowered(ac, lowered, hits, &mut missing);
            // Keep the scratch buffer, but not one huge body's worth.
            if lowered.capacity() > LOWERED_KEEP {
                *lowered = Vec::new();
            }
        });
    }

    /// Every occurrence is accounted for: a search from `pos` reports the
    /// longest atom starting at the leftmost start `s >= pos`; any other
    /// atom starting at `s` is a prefix of it, so it is in `implied`, and
    /// atoms starting after `s` are found by the next search, from `s + 1`.
    fn scan_lowered(&self, ac: &AhoCorasick, hay: &[u8], hits: &mut [bool], missing: &mut usize) {
        let mut pos = 0;
        while *missing > 0 && pos < hay.len() {
            let Some(m) = ac.find(Input::new(hay).span(pos..hay.len())) else {
                return;
            };
            let implied = self.implied.get(m.pattern().as_usize());
            for &j in implied.into_iter().flatten() {
                if let Some(slot) = hits.get_mut(j) {
                    if !*slot {
                        *slot = true;
                        *missing -= 1;
                    }
                }
            }
            pos = m.start() + 1;
        }
    }
}

/// Atoms every request/response prefilter carries. `jsonrpc` selects a
/// body for JSON-RPC analysis whatever its content type. Together with `mcp`
/// and `\u` they tell when a large JSON body cannot hold an MCP message:
/// MCP messages carry the `jsonrpc` key and provider-side MCP the text `mcp`,
/// and only a `\u` escape could spell either without the literal.
pub(crate) const MARKER_ATOMS: [&str; 3] = ["jsonrpc", "mcp", "\\u"];
pub(crate) const MARK_JSONRPC: usize = 0;
pub(crate) const MARK_MCP: usize = 1;
pub(crate) const MARK_ESCAPE: usize = 2;

pub(crate) struct Compiled {
    pub rules: Vec<CRule>,
    pub prefilters: [Prefilter; 3],
    /// Atom ids of [`MARKER_ATOMS`] in the request and response prefilters.
    pub markers: [[usize; 3]; 2],
    pub uses_json_pointer: bool,
    /// host → (catalog path, vendor) entries.
    pub known: HashMap<String, Vec<shadowmcp_rules::KnownServer>>,
}

pub(crate) fn compile(pack: &RulePack) -> Result<Compiled, BuildError> {
    let mut prefilters: [Prefilter; 3] = Default::default();
    let mut markers = [[0; 3]; 2];
    for (side, ids) in markers.iter_mut().enumerate() {
        for (slot, atom) in ids.iter_mut().zip(MARKER_ATOMS) {
            *slot = prefilters[side].atom_id(atom);
        }
    }
    let mut uses_json_pointer = false;
    let mut rules = Vec::with_capacity(pack.rules().len());
    for rule in pack.rules() {
        let cond = compile_cond(
            rule.id,
            &rule.condition,
            &mut prefilters,
            &mut uses_json_pointer,
        )?;
        rules.push(CRule {
            id: rule.id,
            name: rule.name.clone(),
            category: rule.category.clone(),
            severity: rule.severity,
            confidence: rule.confidence,
            circumstantial: rule.circumstantial,
            layers: layers_of(&rule.condition),
            cond,
        });
    }
    for p in &mut prefilters {
        p.build()?;
    }
    let mut known: HashMap<String, Vec<_>> = HashMap::new();
    for s in pack.known_servers() {
        known.entry(s.host.clone()).or_default().push(s.clone());
    }
    Ok(Compiled {
        rules,
        prefilters,
        markers,
        uses_json_pointer,
        known,
    })
}

fn compile_cond(
    rule_id: u32,
    cond: &Condition,
    prefilters: &mut [Prefilter; 3],
    uses_json_pointer: &mut bool,
) -> Result<CCond, BuildError> {
    Ok(match cond {
        Condition::All(list) => {
            let parts = list
                .iter()
                .map(|c| compile_cond(rule_id, c, prefilters, uses_json_pointer))
                .collect::<Result<_, _>>()?;
            let fields: Vec<Field> = cond.matchers().iter().map(|m| m.field.clone()).collect();
            if fields.contains(&Field::SseEvent) && fields.contains(&Field::SseData) {
                CCond::AllSameEvent(parts)
            } else {
                CCond::All(parts)
            }
        }
        Condition::Any(list) => CCond::Any(
            list.iter()
                .map(|c| compile_cond(rule_id, c, prefilters, uses_json_pointer))
                .collect::<Result<_, _>>()?,
        ),
        Condition::Not(c) => CCond::Not(Box::new(compile_cond(
            rule_id,
            c,
            prefilters,
            uses_json_pointer,
        )?)),
        Condition::Match(m) => {
            CCond::Test(compile_test(rule_id, m, prefilters, uses_json_pointer)?)
        }
    })
}

fn compile_test(
    rule_id: u32,
    m: &Matcher,
    prefilters: &mut [Prefilter; 3],
    uses_json_pointer: &mut bool,
) -> Result<CTest, BuildError> {
    let err = |message: String| BuildError { rule_id, message };
    let field = match &m.field {
        Field::Host => CField::Host,
        Field::Path => CField::Path,
        Field::HttpMethod => CField::HttpMethod,
        Field::RequestHeader(n) => CField::RequestHeader(n.clone()),
        Field::ResponseHeader(n) => CField::ResponseHeader(n.clone()),
        Field::RequestBody => CField::Body(BodyField::Request),
        Field::ResponseBody => CField::Body(BodyField::Response),
        Field::SseData => CField::Body(BodyField::Sse),
        Field::SseEvent => CField::SseEvent,
        Field::JsonrpcMethod => CField::JsonrpcMethod,
        Field::JsonPointer(p) => {
            *uses_json_pointer = true;
            CField::JsonPointer(p.clone())
        }
        Field::AnalyzerSignal => {
            // Signal names are only known here, where the analyzer is.
            if let Operator::Equals(names) = &m.op {
                if let Some(bad) = names.iter().find(|n| Signal::from_name(n).is_none()) {
                    return Err(err(format!(
                        "unknown analyzer signal {bad:?} (line {})",
                        m.line
                    )));
                }
            }
            CField::AnalyzerSignal
        }
        Field::KnownServer => CField::KnownServer,
        Field::KnownEndpoint => CField::KnownEndpoint,
        Field::TlsSni => CField::TlsSni,
    };
    let bytes = |l: &Vec<String>| l.iter().map(|s| s.as_bytes().to_vec()).collect();
    let regex = |pattern: &str, nocase: bool| {
        RegexBuilder::new(pattern)
            .case_insensitive(nocase)
            .size_limit(REGEX_SIZE_LIMIT)
            .build()
            .map_err(|e| err(format!("regex (line {}): {e}", m.line)))
    };
    let op = match &m.op {
        Operator::Equals(l) => COp::Equals(bytes(l)),
        Operator::Prefix(l) => COp::Prefix(bytes(l)),
        Operator::Suffix(l) => COp::Suffix(bytes(l)),
        Operator::Contains(l) => {
            let alt: Vec<String> = l.iter().map(|s| regex::escape(s)).collect();
            COp::Regex(regex(&alt.join("|"), m.nocase)?)
        }
        Operator::Glob(l) => {
            let alt: Vec<String> = l.iter().map(|g| glob_to_regex(g)).collect();
            // Host names compare case-insensitively by nature.
            let nocase = m.nocase || matches!(m.field, Field::Host);
            COp::Regex(regex(&alt.join("|"), nocase)?)
        }
        Operator::Regex(r) => COp::Regex(regex(r, m.nocase)?),
        Operator::Exists(b) => COp::Exists(*b),
    };
    let mut atom_ids = Vec::new();
    if let CField::Body(which) = field {
        if !matches!(op, COp::Exists(_)) {
            if m.atoms.is_empty() {
                return Err(err(format!(
                    "body condition at line {} has no prefilter atom",
                    m.line
                )));
            }
            let pf = &mut prefilters[which as usize];
            atom_ids = m.atoms.iter().map(|a| pf.atom_id(a)).collect();
        }
    }
    Ok(CTest {
        field,
        op,
        nocase: m.nocase,
        atom_ids,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn prefilter(atoms: &[&str]) -> Prefilter {
        let mut p = Prefilter::default();
        for a in atoms {
            p.atom_id(a);
        }
        p.build().unwrap();
        p
    }

    /// The default pack's request atoms plus ones that overlap each other.
    const ATOMS: &[&str] = &[
        "jsonrpc",
        "mcp",
        "\\u",
        "\"method\"",
        "protocolversion\"",
        "\"mcp_servers\"",
        "\"type\"",
        "\"server_url\"",
        "\"tools\"",
        "ls\"",
        "s\"se",
    ];

    fn naive(atoms: &[&str], hay: &[u8]) -> Vec<bool> {
        let hay = hay.to_ascii_lowercase();
        atoms
            .iter()
            .map(|a| {
                let a = a.to_ascii_lowercase();
                hay.windows(a.len()).any(|w| w == a.as_bytes())
            })
            .collect()
    }

    #[test]
    fn overlapping_and_nested_atoms_are_all_found() {
        let p = prefilter(ATOMS);
        for hay in [
            &b"{\"MCP_servers\":[]}"[..],
            b"\"tools\"server_url\"",
            b"\"type\"method\"",
            b"xx\"toOls\"se",
            b"protocolVersion\"",
        ] {
            let mut hits = vec![false; ATOMS.len()];
            p.scan(hay, &mut hits);
            assert_eq!(hits, naive(ATOMS, hay), "{}", String::from_utf8_lossy(hay));
        }
    }

    proptest! {
        #[test]
        fn scan_finds_exactly_the_atoms_that_occur(
            pieces in prop::collection::vec(
                prop_oneof![
                    prop::sample::select(ATOMS).prop_map(|a| a.as_bytes().to_vec()),
                    prop::sample::select(ATOMS).prop_map(|a| a.to_ascii_uppercase().into_bytes()),
                    prop::sample::select(ATOMS).prop_map(|a| a.as_bytes()[1..].to_vec()),
                    prop::collection::vec(prop::sample::select(&b"\"ms_ul:{}ptc\\ "[..]), 0..4),
                ],
                0..24,
            )
        ) {
            let hay: Vec<u8> = pieces.concat();
            let p = prefilter(ATOMS);
            let mut hits = vec![false; ATOMS.len()];
            p.scan(&hay, &mut hits);
            prop_assert_eq!(hits, naive(ATOMS, &hay));
        }
    }
}

//! Prefilter atoms: literals one of which must occur wherever a matcher can
//! match, so a body is only run through a regex when the one shared
//! aho-corasick pass saw one of them.

use regex_syntax::hir::literal::{ExtractKind, Extractor, Seq};

/// Atoms shorter than this hit too often to be a useful prefilter.
pub const MIN_ATOM_LEN: usize = 3;
/// More distinct atoms than this for one regex means extraction exploded
/// (large classes, case variants); the author should give atoms.
pub const MAX_ATOMS_PER_REGEX: usize = 64;

/// Required literals of `pattern`, ASCII-lower-cased and deduplicated: every
/// match starts (or ends) with one of them. `None` when no usable set exists.
pub fn extract_regex_atoms(pattern: &str) -> Option<Vec<String>> {
    let hir = regex_syntax::ParserBuilder::new()
        .utf8(false)
        .build()
        .parse(pattern)
        .ok()?;
    for prefix in [true, false] {
        let mut extractor = Extractor::new();
        extractor.kind(if prefix {
            ExtractKind::Prefix
        } else {
            ExtractKind::Suffix
        });
        let mut seq = extractor.extract(&hir);
        if prefix {
            seq.optimize_for_prefix_by_preference();
        } else {
            seq.optimize_for_suffix_by_preference();
        }
        if let Some(atoms) = usable(&seq) {
            return Some(atoms);
        }
    }
    None
}

fn usable(seq: &Seq) -> Option<Vec<String>> {
    let lits = seq.literals()?;
    if lits.is_empty() {
        return None;
    }
    let mut out: Vec<String> = Vec::new();
    for lit in lits {
        if lit.len() < MIN_ATOM_LEN {
            return None;
        }
        // The automaton works on bytes; lossy text is fine because atoms
        // only gate, and a replacement character never hides a real hit
        // for the ASCII-dominated MCP markers (non-UTF-8 literals are rare).
        let text = String::from_utf8(lit.as_bytes().to_vec()).ok()?;
        let lower = text.to_ascii_lowercase();
        if !out.contains(&lower) {
            out.push(lower);
        }
    }
    (out.len() <= MAX_ATOMS_PER_REGEX).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cloudflare_style_regex_yields_method_atom() {
        let atoms = extract_regex_atoms(r#""method"\s{0,5}:\s{0,5}"tools/call""#).unwrap();
        assert!(
            atoms.iter().all(|a| a.starts_with("\"method\"")),
            "{atoms:?}"
        );
    }

    #[test]
    fn alternation_yields_each_branch() {
        let atoms = extract_regex_atoms(r"[?&](?:sessionId|session_id)=").unwrap();
        assert!(atoms.contains(&"?sessionid=".to_string()), "{atoms:?}");
        assert!(atoms.contains(&"&session_id=".to_string()), "{atoms:?}");
    }

    #[test]
    fn suffix_used_when_prefix_is_open() {
        let atoms = extract_regex_atoms(r"\w+serverInfo").unwrap();
        assert_eq!(atoms, vec!["serverinfo".to_string()]);
    }

    #[test]
    fn no_atom_for_open_patterns() {
        assert_eq!(extract_regex_atoms(r"\d+-\d+"), None);
        assert_eq!(extract_regex_atoms(r".*"), None);
        assert_eq!(extract_regex_atoms(r"ab"), None);
        assert_eq!(extract_regex_atoms(r"("), None);
    }
}

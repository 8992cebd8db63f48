use std::path::PathBuf;

use shadowmcp_rules::{
    glob_to_regex, lint_dir, lint_str, Condition, Confidence, Field, KnownServer, LintError,
    Operator, RulePack, SourceLocation, DEFAULT_PACK_FILES,
};

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "shadowmcp-rules-test-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn one_error(file: &str, text: &str) -> LintError {
    let errors = lint_str(file, text);
    assert_eq!(errors.len(), 1, "{errors:?}");
    errors.into_iter().next().unwrap()
}

const HEAD: &str = "format = 1\n";

fn rule(id: u32, extra: &str, condition: &str) -> String {
    format!(
        "[[rule]]\nid = {id}\nname = \"r{id}\"\nconfidence = \"high\"\nseverity = 1\ncategory = \"test\"\n{extra}condition = {condition}\n"
    )
}

#[test]
fn default_pack_loads_and_matches_rules_dir() {
    let pack = RulePack::try_default_pack().expect("default pack");
    assert!(pack.rules().len() >= 20);
    assert_eq!(pack.known_servers().len(), 142);
    // The embedded list and the directory must not drift apart.
    let mut on_disk: Vec<String> = std::fs::read_dir(repo_root().join("rules"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".toml"))
        .collect();
    on_disk.sort();
    let mut embedded: Vec<String> = DEFAULT_PACK_FILES
        .iter()
        .map(|(n, _)| n.to_string())
        .collect();
    embedded.sort();
    assert_eq!(on_disk, embedded);
    for (name, text) in DEFAULT_PACK_FILES {
        let disk = std::fs::read_to_string(repo_root().join("rules").join(name)).unwrap();
        assert_eq!(&disk, text, "{name}");
    }
    // Loading the directory gives the same pack as the embedded copy.
    let from_dir = RulePack::load_dir(repo_root().join("rules")).expect("rules dir");
    assert_eq!(from_dir.rules().len(), pack.rules().len());
    assert!(lint_dir(repo_root().join("rules")).is_empty());
}

#[test]
fn every_default_rule_has_metadata_and_sources_cited() {
    let pack = RulePack::default_pack();
    for r in pack.rules() {
        assert!(!r.name.is_empty() && !r.description.is_empty(), "{}", r.id);
        assert!(!r.references.is_empty(), "rule {} cites nothing", r.id);
        assert!((1..=3).contains(&r.severity));
        assert!(r.category.starts_with("mcp-"), "{}", r.category);
    }
    for s in pack.known_servers() {
        assert!(s.source.starts_with("https://"), "{}: {}", s.host, s.source);
    }
}

#[test]
fn body_matchers_of_default_pack_all_have_atoms() {
    let pack = RulePack::default_pack();
    let mut body = 0;
    for r in pack.rules() {
        for m in r.condition.matchers() {
            if m.field.is_body() && !matches!(m.op, Operator::Exists(_)) {
                body += 1;
                assert!(!m.atoms.is_empty(), "rule {} line {}", r.id, m.line);
                assert!(m.atoms.iter().all(|a| *a == a.to_ascii_lowercase()));
            } else {
                assert!(m.atoms.is_empty());
            }
        }
    }
    assert!(body >= 8);
}

#[test]
fn parses_fields_operators_and_combinators() {
    let text = format!(
        "{HEAD}{}",
        rule(
            7,
            "circumstantial = true\nreferences = [\"x\"]\n",
            r#"{ all = [
  { field = "host", glob = ["mcp.*", "*.mcp.*"] },
  { not = { field = "request_header.X-Thing", exists = true } },
  { any = [
    { field = "json_pointer", pointer = "/params/name", equals = "a" },
    { field = "request_body", contains = "Tools/Call", nocase = true },
    { field = "sse_data", regex = 'abc\d+', atoms = ["abc"] },
  ] },
] }"#
        )
    );
    let pack = RulePack::parse_str("t.toml", &text).unwrap();
    let r = pack.rule(7).unwrap();
    assert!(r.circumstantial);
    assert_eq!(
        r.location,
        SourceLocation {
            file: "t.toml".into(),
            line: 2
        }
    );
    let Condition::All(parts) = &r.condition else {
        panic!()
    };
    assert_eq!(parts.len(), 3);
    let ms = r.condition.matchers();
    assert_eq!(ms[0].field, Field::Host);
    assert_eq!(
        ms[0].op,
        Operator::Glob(vec!["mcp.*".into(), "*.mcp.*".into()])
    );
    assert_eq!(ms[1].field, Field::RequestHeader("x-thing".into()));
    assert_eq!(ms[1].op, Operator::Exists(true));
    assert!(matches!(&parts[1], Condition::Not(_)));
    assert_eq!(ms[2].field, Field::JsonPointer("/params/name".into()));
    assert_eq!(ms[3].atoms, vec!["tools/call".to_string()]);
    assert!(ms[3].nocase);
    assert_eq!(ms[4].atoms, vec!["abc".to_string()]);
    assert_eq!(ms[4].line, 16);
}

#[test]
fn circumstantial_defaults_to_low_confidence() {
    let text = format!(
        "{HEAD}[[rule]]\nid = 1\nname = \"a\"\nconfidence = \"low\"\nseverity = 3\ncategory = \"c\"\ncondition = {{ field = \"path\", equals = \"/mcp\" }}\n{}",
        rule(2, "", r#"{ field = "path", equals = "/x" }"#)
    );
    let pack = RulePack::parse_str("t.toml", &text).unwrap();
    assert!(pack.rule(1).unwrap().circumstantial);
    assert_eq!(pack.rule(1).unwrap().confidence, Confidence::Low);
    assert!(!pack.rule(2).unwrap().circumstantial);
}

#[test]
fn lint_unknown_key_names_its_line() {
    let text = format!(
        "{HEAD}{}",
        rule(
            1,
            "colour = \"red\"\n",
            r#"{ field = "path", equals = "/" }"#
        )
    );
    let e = one_error("a.toml", &text);
    assert_eq!(e.line, 8, "{e}");
    assert!(e.to_string().starts_with("a.toml:8: "), "{e}");
    assert!(e.message.contains("colour"), "{e}");
}

#[test]
fn lint_unknown_key_inside_condition() {
    let text = format!(
        "{HEAD}{}",
        rule(1, "", "{ all = [\n  { field = \"path\", equals = \"/\" },\n  { field = \"path\", equalz = \"/\" },\n] }")
    );
    let e = one_error("a.toml", &text);
    assert_eq!(e.line, 10, "{e}");
    assert!(e.message.contains("equalz"), "{e}");
}

#[test]
fn lint_bad_confidence() {
    let text = format!(
        "{HEAD}[[rule]]\nid = 1\nname = \"a\"\nconfidence = \"certain\"\nseverity = 1\ncategory = \"c\"\ncondition = {{ field = \"path\", equals = \"/\" }}\n"
    );
    let e = one_error("c.toml", &text);
    assert_eq!(e.to_string().split(": ").next(), Some("c.toml:5"));
    assert!(e.message.contains("certain"), "{e}");
}

#[test]
fn lint_bad_severity_and_field() {
    let text = format!(
        "{HEAD}[[rule]]\nid = 1\nname = \"a\"\nconfidence = \"low\"\nseverity = 4\ncategory = \"c\"\ncondition = {{ field = \"cookie\", equals = \"/\" }}\n"
    );
    let errors = lint_str("s.toml", &text);
    let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, vec![6, 8], "{errors:?}");
    assert!(errors[1].message.contains("unknown field \"cookie\""));
}

#[test]
fn lint_bad_regex() {
    let text = format!(
        "{HEAD}{}",
        rule(1, "", r#"{ field = "path", regex = "(unclosed" }"#)
    );
    let e = one_error("r.toml", &text);
    assert_eq!(e.line, 8);
    assert!(e.message.starts_with("bad regex"), "{e}");
}

#[test]
fn lint_regex_without_atom_on_body_field() {
    let text = format!(
        "{HEAD}{}",
        rule(1, "", r#"{ field = "request_body", regex = '\d+-\d+' }"#)
    );
    let e = one_error("b.toml", &text);
    assert_eq!(e.line, 8);
    assert!(e.message.contains("no literal atom"), "{e}");
    // The same regex is fine on a short field, and with explicit atoms.
    let ok = format!(
        "{HEAD}{}",
        rule(1, "", r#"{ field = "path", regex = '\d+-\d+' }"#)
    );
    assert!(lint_str("b.toml", &ok).is_empty());
    let ok = format!(
        "{HEAD}{}",
        rule(
            1,
            "",
            r#"{ field = "request_body", regex = '\d+-\d+', atoms = ["-0", "-1"] }"#
        )
    );
    // Atoms shorter than the minimum are rejected too.
    assert!(lint_str("b.toml", &ok)[0].message.contains("atoms"));
}

#[test]
fn lint_duplicate_id_within_and_across_files() {
    let text = format!(
        "{HEAD}{}{}",
        rule(5, "", r#"{ field = "path", equals = "/" }"#),
        rule(5, "", r#"{ field = "path", equals = "/x" }"#)
    );
    let e = one_error("d.toml", &text);
    assert_eq!(e.line, 9);
    assert!(
        e.message
            .contains("duplicate rule id 5 (first defined at d.toml:2)"),
        "{e}"
    );

    let dir = temp_dir("dup");
    std::fs::write(
        dir.join("a.toml"),
        format!(
            "{HEAD}{}",
            rule(9, "", r#"{ field = "path", equals = "/" }"#)
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("b.toml"),
        format!(
            "{HEAD}\n{}",
            rule(9, "", r#"{ field = "path", equals = "/" }"#)
        ),
    )
    .unwrap();
    let errors = lint_dir(&dir);
    assert_eq!(errors.len(), 1, "{errors:?}");
    let shown = errors[0].to_string();
    assert!(
        shown.ends_with(
            "b.toml:3: duplicate rule id 9 (first defined at "
                .to_string()
                .as_str()
        ) || shown.contains("b.toml:3: duplicate rule id 9"),
        "{shown}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn lint_format_version() {
    let e = one_error(
        "f.toml",
        &rule(1, "", r#"{ field = "path", equals = "/" }"#),
    );
    assert!(e.message.contains("format = 1"));
    let e = one_error(
        "f.toml",
        &format!(
            "# c\nformat = 2\n{}",
            rule(1, "", r#"{ field = "path", equals = "/" }"#)
        ),
    );
    assert_eq!(e.line, 2);
}

#[test]
fn lint_condition_shape_errors() {
    let cases = [
        (r#"{ field = "path" }"#, "exactly one of equals"),
        (
            r#"{ field = "path", equals = "/", prefix = "/" }"#,
            "exactly one of equals",
        ),
        (r#"{ all = [] }"#, "at least one condition"),
        (
            r#"{ all = [{ field = "path", equals = "/" }], any = [{ field = "path", equals = "/" }] }"#,
            "exactly one of `all`",
        ),
        (r#"{ equals = "/" }"#, "exactly one of `all`"),
        (
            r#"{ not = { field = "path", equals = "/" }, nocase = true }"#,
            "only goes with `field`",
        ),
        (
            r#"{ field = "json_pointer", exists = true }"#,
            "needs `pointer",
        ),
        (
            r#"{ field = "json_pointer", pointer = "params", exists = true }"#,
            "RFC 6901",
        ),
        (
            r#"{ field = "path", pointer = "/a", exists = true }"#,
            "only goes with field",
        ),
        (
            r#"{ field = "request_body", glob = "*x*" }"#,
            "short fields",
        ),
        (r#"{ field = "host", contains = "" }"#, "must not be empty"),
        (
            r#"{ field = "host", contains = [] }"#,
            "at least one string",
        ),
        (
            r#"{ field = "host", equals = "a", atoms = ["abc"] }"#,
            "only apply",
        ),
        (
            r#"{ field = "request_header.bad name", exists = true }"#,
            "unknown field",
        ),
    ];
    for (cond, want) in cases {
        let text = format!("{HEAD}{}", rule(1, "", cond));
        let errors = lint_str("x.toml", &text);
        assert_eq!(errors.len(), 1, "{cond}: {errors:?}");
        assert!(errors[0].message.contains(want), "{cond}: {}", errors[0]);
        assert_eq!(errors[0].line, 8, "{cond}");
    }
}

#[test]
fn lint_catalog_entries() {
    let text = "format = 1\n[[server]]\nhost = \"https://x.example\"\npath = \"mcp\"\nvendor = \"X\"\nsource = \"s\"\n\n[[server]]\nhost = \"a.example\"\npath = \"/mcp\"\nvendor = \"A\"\nsource = \"s\"\n[[server]]\nhost = \"A.example\"\npath = \"/mcp\"\nvendor = \"A\"\nsource = \"s\"\n";
    let errors = lint_str("k.toml", text);
    let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(shown.len(), 3, "{shown:?}");
    assert!(shown[0].starts_with("k.toml:3: host must be a bare hostname"));
    assert!(shown[1].starts_with("k.toml:4: path must start"));
    assert!(shown[2].starts_with("k.toml:13: duplicate known server a.example/mcp"));
}

#[test]
fn load_dir_errors_on_missing_or_empty_dir() {
    let dir = temp_dir("empty");
    let e = RulePack::load_dir(&dir).unwrap_err();
    assert!(e[0].message.contains("no *.toml"));
    assert!(!e[0].to_string().contains(":0:"));
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(lint_dir(&dir)[0].message.contains("cannot read directory"));
}

#[test]
fn extend_adds_rules_and_refuses_duplicates() {
    let mut pack = RulePack::default_pack();
    let before = pack.rules().len();
    let clash = RulePack::parse_str(
        "x.toml",
        &format!(
            "{HEAD}{}",
            rule(1001, "", r#"{ field = "path", equals = "/" }"#)
        ),
    )
    .unwrap();
    let errors = pack.extend(clash).unwrap_err();
    assert!(errors[0].message.contains("duplicate rule id 1001"));
    assert_eq!(pack.rules().len(), before);
    let extra = RulePack::parse_str(
        "x.toml",
        &format!(
            "{HEAD}{}[[server]]\nhost = \"mcp.stripe.com\"\npath = \"/\"\nvendor = \"dup\"\nsource = \"s\"\n[[server]]\nhost = \"mcp.corp.example\"\npath = \"/mcp\"\nvendor = \"Corp\"\nsource = \"internal\"\n",
            rule(900_000, "", r#"{ field = "path", equals = "/" }"#)
        ),
    )
    .unwrap();
    pack.extend(extra).unwrap();
    assert_eq!(pack.rules().len(), before + 1);
    assert_eq!(pack.known_servers().len(), 143);
}

#[test]
fn known_server_path_matching() {
    let ks = |path: &str| KnownServer {
        host: "h".into(),
        path: path.into(),
        vendor: "v".into(),
        transport: None,
        source: "s".into(),
        location: SourceLocation::default(),
    };
    assert!(ks("/mcp").matches_path("/mcp"));
    assert!(ks("/mcp").matches_path("/mcp/?x=1"));
    assert!(ks("/mcp").matches_path("/MCP/sub"));
    assert!(!ks("/mcp").matches_path("/mcpx"));
    assert!(!ks("/mcp").matches_path("/api/mcp"));
    assert!(ks("/api/mcp/").matches_path("/api/mcp"));
    assert!(ks("/").matches_path("/"));
    assert!(ks("/").matches_path("/?q"));
    assert!(!ks("/").matches_path("/docs"));
    assert!(ks("/mcp").matches_path("/mcp/é"));
}

#[test]
fn glob_translation() {
    let re = |g: &str| regex::Regex::new(&glob_to_regex(g)).unwrap();
    assert!(re("mcp.*").is_match("mcp.stripe.com"));
    assert!(!re("mcp.*").is_match("xmcp.stripe.com"));
    assert!(re("*.mcp.*").is_match("docs.mcp.cloudflare.com"));
    assert!(re("a?c").is_match("abc"));
    assert!(!re("a.c").is_match("abc"));
    assert!(re("[x]").is_match("[x]"));
}

#[test]
fn docs_examples_load() {
    let docs = std::fs::read_to_string(repo_root().join("docs/rules.md")).unwrap();
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in docs.lines() {
        match &mut current {
            None if line.trim_start() == "```toml" => current = Some(String::new()),
            Some(buf) if line.trim_start() == "```" => {
                blocks.push(std::mem::take(buf));
                current = None;
            }
            Some(buf) => {
                buf.push_str(line);
                buf.push('\n');
            }
            None => {}
        }
    }
    assert!(blocks.len() >= 4, "found {} toml blocks", blocks.len());
    for (i, b) in blocks.iter().enumerate() {
        let name = format!("docs/rules.md block {}", i + 1);
        // Blocks marked as showing an error must fail; the others must load.
        if b.contains("# lint error") {
            assert!(!lint_str(&name, b).is_empty(), "{name} should fail");
        } else if let Err(e) = RulePack::parse_str(&name, b) {
            panic!("{name}: {e:?}");
        }
    }
}

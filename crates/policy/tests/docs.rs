//! Every TOML example in docs/policy.md loads: a policy, or a group file.

use shadowmcp_policy::{Policy, ServerRef, Subject, Verdict};

fn toml_blocks(doc: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in doc.lines() {
        match (&mut current, line.trim_start()) {
            (None, l) if l.starts_with("```toml") => current = Some(String::new()),
            (Some(_), l) if l.starts_with("```") => blocks.push(current.take().unwrap()),
            (Some(b), _) => {
                b.push_str(line);
                b.push('\n');
            }
            _ => {}
        }
    }
    blocks
}

#[test]
fn docs_policy_examples_load_and_behave_as_described() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/policy.md"))
        .expect("docs/policy.md");
    let blocks = toml_blocks(&doc);
    assert!(blocks.len() >= 2, "docs/policy.md lost its examples");

    let policy = Policy::from_toml_str(&blocks[0], "docs/policy.md").expect("main example loads");
    assert_eq!(policy.sanctioned_len(), 2);
    let anyone = Subject::default();
    let portal = ServerRef::new("a.portal.corp.example", "/mcp/sse");
    assert_eq!(policy.decide(&portal, &anyone).verdict, Verdict::Allow);
    let lookalike = ServerRef::new("mcp-portal.corp.example.attacker.test", "/mcp");
    assert_eq!(
        policy.decide(&lookalike, &anyone).verdict,
        Verdict::WouldBlock
    );
    // The GitHub entry needs a platform user from 10.20/16.
    let gh = ServerRef::new("api.githubcopilot.com", "/mcp");
    let alice = Subject {
        user: Some("Alice"),
        client_ip: Some("10.20.1.2".parse().unwrap()),
    };
    assert!(policy.decide(&gh, &alice).sanctioned);
    let alice_elsewhere = Subject {
        user: Some("alice"),
        client_ip: Some("192.0.2.1".parse().unwrap()),
    };
    assert!(!policy.decide(&gh, &alice_elsewhere).sanctioned);

    // The group file example is a valid groups_file.
    let dir = std::env::temp_dir().join(format!("shadowmcp-policy-doc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("groups.toml"), &blocks[1]).unwrap();
    std::fs::write(
        dir.join("policy.toml"),
        "version = 1\ngroups_file = \"groups.toml\"\n[[sanctioned]]\nname = \"s\"\nhosts = [\"h.test\"]\ngroups = [\"security\"]\n",
    )
    .unwrap();
    let p = Policy::load(&dir.join("policy.toml")).expect("policy with groups_file loads");
    let dave = Subject {
        user: Some("dave"),
        client_ip: None,
    };
    assert!(p.decide(&ServerRef::new("h.test", "/"), &dave).sanctioned);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn docs_policy_error_examples_are_real() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/policy.md"))
        .unwrap();
    let e = Policy::from_toml_str("version = 1\nmode = \"loud\"\n", "policy.toml").unwrap_err();
    let line = format!("shadowmcp: error: {e}");
    assert!(doc.contains(&line), "docs/policy.md should show: {line}");
    let e = Policy::from_toml_str(
        "version = 1\n[[sanctioned]]\nname = \"portal\"\nhosts = [\"a.*.test\"]\n",
        "policy.toml",
    )
    .unwrap_err();
    let line = format!("shadowmcp: error: {e}");
    assert!(doc.contains(&line), "docs/policy.md should show: {line}");
}

//! The alert example in docs/alerts.md is what `shadowmcp scan` writes.

use std::path::Path;
use std::process::Command;

#[test]
fn docs_alert_example_is_current() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let doc = std::fs::read_to_string(root.join("docs/alerts.md")).unwrap();
    let start = doc.find("```json\n").expect("a json example") + "```json\n".len();
    let end = start + doc[start..].find("\n```").unwrap();
    let example: serde_json::Value = serde_json::from_str(&doc[start..end]).unwrap();
    let input = example["mcp"]["input"].as_str().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_shadowmcp"))
        .current_dir(&root)
        .args(["scan", "-q", input])
        .output()
        .unwrap();
    assert!(o.status.success());
    let events: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let actual = events
        .iter()
        .find(|e| e["mcp"]["exchange_id"] == example["mcp"]["exchange_id"])
        .expect("the example's exchange still alerts");
    assert_eq!(
        actual,
        &example,
        "docs/alerts.md is out of date; the alert is now:\n{}",
        serde_json::to_string_pretty(actual).unwrap()
    );
}

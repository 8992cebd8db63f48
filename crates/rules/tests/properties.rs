//! Rule files are input too: linting arbitrary text never panics, and every
//! error names a line inside the file.

use proptest::prelude::*;
use shadowmcp_rules::lint_str;

fn toml_ish() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("format = 1\n".to_string()),
        Just("[[rule]]\n".to_string()),
        Just("[[server]]\n".to_string()),
        Just("id = 7\n".to_string()),
        Just("name = \"n\"\nconfidence = \"high\"\nseverity = 1\ncategory = \"c\"\n".to_string()),
        Just("condition = { field = \"request_body\", regex = '(a|b)+' }\n".to_string()),
        Just("condition = { all = [ { field = \"host\", glob = \"*\" }, { not = { any = [] } } ] }\n".to_string()),
        Just("condition = { field = \"json_pointer\", pointer = \"/a~1b\", exists = true }\n".to_string()),
        Just("host = \"h\"\npath = \"/\"\nvendor = \"v\"\nsource = \"s\"\n".to_string()),
        "[ -~\n]{0,30}",
    ];
    proptest::collection::vec(piece, 0..12).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn lint_never_panics_and_lines_are_in_range(text in toml_ish()) {
        let lines = text.lines().count().max(1) + 1;
        for e in lint_str("p.toml", &text) {
            prop_assert!(e.line <= lines, "{e} (file has {lines} lines)");
            prop_assert!(e.to_string().starts_with("p.toml"));
        }
    }
}

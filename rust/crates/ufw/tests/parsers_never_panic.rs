//! ufw's files are hand-edited on real hosts: whatever they hold, parsing them gives a result or
//! a clear error, never a panic.

use proptest::prelude::*;
use vorfw_core::policy::Family;
use vorfw_ufw::model::{describe_tuple, hex_decode, plan_file, read_output_record, read_settings, RulesFile};

/// Lines near ufw's format, so the parser's deeper paths are reached, mixed with noise.
fn rules_text() -> impl Strategy<Value = String> {
    let line = prop_oneof![
        Just("### RULES ###".to_string()),
        Just("### END RULES ###".to_string()),
        Just(String::new()),
        Just("*filter".to_string()),
        Just("COMMIT".to_string()),
        "### tuple ### (allow|deny|limit) (tcp|udp|any) [0-9a-z]{0,5} [0-9./:a-f]{0,18} any [0-9./:a-f]{0,18} (in|out|in_lo)( comment=[0-9a-fé]{0,9})?",
        "-A ufw-user-(input|output) [ -~]{0,40}",
        ".{0,60}",
    ];
    prop::collection::vec(line, 0..40).prop_map(|v| v.join("\n"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn rules_files_parse_or_fail_cleanly(text in rules_text()) {
        if let Ok(f) = RulesFile::parse(&text) {
            let _ = f.render();
        }
        for fam in [Family::V4, Family::V6] {
            let _ = plan_file(fam, &text, &[]);
        }
    }

    #[test]
    fn tuples_comments_and_settings_never_panic(s in ".{0,80}") {
        let _ = hex_decode(&s);
        let _ = describe_tuple(&s, Family::V4);
        let _ = describe_tuple(&s, Family::V6);
        let _ = read_output_record(&s);
        let _ = read_settings(&[&s]);
    }
}

#[test]
fn an_odd_hex_comment_ending_in_a_multibyte_character_is_not_a_panic() {
    // The hand-edited user.rules of the review: "byte index 4 is not a char boundary".
    assert_eq!(hex_decode("767é"), None);
    assert_eq!(hex_decode("7676f").as_deref(), Some("vv"));
    let text = "*filter\n### RULES ###\n\n### tuple ### allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 in comment=767é\n-A ufw-user-input -p tcp --dport 22 -j ACCEPT\n\n### END RULES ###\nCOMMIT\n";
    let _ = plan_file(Family::V4, text, &[]);
}

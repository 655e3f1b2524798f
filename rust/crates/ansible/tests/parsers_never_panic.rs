//! Module arguments come from whatever a playbook passes: parsing them gives a module or a
//! clear failure, never a panic.

use proptest::prelude::*;
use vorfw_ansible::Module;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn args_files_parse_or_fail_cleanly(text in "(\\{|\\}|\\[|\\]|\"_ansible_check_mode\"|\"_ansible_diff\"|\"a\"|:|,|true|\"yes\"|1|null|[ -~]){0,40}") {
        if let Ok(m) = Module::from_json(&text) {
            let _ = m.allow_only(&["a"]);
            let _ = m.str_arg("a");
            let _ = m.bool_arg("a", false);
        }
    }
}

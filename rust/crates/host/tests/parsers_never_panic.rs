//! resolv.conf is the host's, in any shape: reading it never panics.

use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn resolv_conf_never_panics(text in "((nameserver|search|options|#)[ \\t]{0,3}([0-9a-f.:%]{0,20}|[ -~]{0,20})\\n?){0,8}") {
        for a in vorfw_host::nameservers(&text) {
            prop_assert!(text.contains(&a.to_string()) || a.is_ipv6());
        }
    }
}

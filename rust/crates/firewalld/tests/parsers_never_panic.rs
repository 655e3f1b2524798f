//! What `firewall-offline-cmd` prints is read back when firewalld is not running: whatever it
//! prints (another release's layout, a half-written line), reading it never panics, and what
//! it prints for our objects reads back as them.

use proptest::prelude::*;
use std::collections::BTreeSet;
use vorfw_core::policy::Family;
use vorfw_firewalld::model::{is_owned_rule, PolicyObject};
use vorfw_firewalld::offline::{parse_ipset_info, parse_policy_info};

fn words(re: &'static str) -> impl Strategy<Value = BTreeSet<String>> {
    prop::collection::btree_set(re, 0..6)
}

fn policy() -> impl Strategy<Value = PolicyObject> {
    (
        "(REJECT|ACCEPT|DROP|CONTINUE)",
        words("[A-Za-z][A-Za-z0-9_-]{0,8}"),
        words("[A-Za-z][A-Za-z0-9_-]{0,8}"),
        words(r#"rule family="ipv[46]" destination ipset="vorfw-[a-z]{1,6}-[46]" port port="[0-9]{1,5}" protocol="(tcp|udp)" accept"#),
    )
        .prop_map(|(target, ingress_zones, egress_zones, rich)| PolicyObject { target, ingress_zones, egress_zones, rich })
}

/// As firewall-offline-cmd 1.x prints `--info-policy`.
fn info_policy(p: &PolicyObject) -> String {
    let join = |s: &BTreeSet<String>| s.iter().cloned().collect::<Vec<_>>().join(" ");
    let mut t = format!(
        "vorfw-egress\n  priority: -1\n  target: {}\n  ingress-zones: {}\n  egress-zones: {}\n  services: \n  ports: \n  \
         protocols: \n  masquerade: no\n  forward-ports: \n  source-ports: \n  icmp-blocks: \n  rich rules: \n",
        p.target,
        join(&p.ingress_zones),
        join(&p.egress_zones)
    );
    for r in &p.rich {
        t.push_str(&format!("\t{r}\n"));
    }
    t
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn any_output_reads_without_panic(s in "(.{0,40}\n){0,12}") {
        let _ = parse_ipset_info(&s);
        let _ = parse_policy_info(&s);
        for l in s.lines() {
            let _ = is_owned_rule(l);
        }
    }

    #[test]
    fn an_ipset_reads_back(v6 in any::<bool>(), entries in words("[0-9a-f.:]{1,20}/[0-9]{1,3}"), maxelem in 1u32..2_000_000) {
        let family = if v6 { "inet6" } else { "inet" };
        let text = format!(
            "vorfw-x-{}\n  type: hash:net\n  options: family={family} maxelem={maxelem}\n  entries: {}\n",
            if v6 { 6 } else { 4 },
            entries.iter().cloned().collect::<Vec<_>>().join(" ")
        );
        let set = parse_ipset_info(&text);
        prop_assert_eq!(set.family, if v6 { Family::V6 } else { Family::V4 });
        prop_assert_eq!(set.maxelem, Some(maxelem));
        prop_assert_eq!(set.entries, entries);
    }

    #[test]
    fn a_policy_reads_back(p in policy()) {
        prop_assert_eq!(parse_policy_info(&info_policy(&p)), p);
    }
}

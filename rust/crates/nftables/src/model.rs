//! Pure part: the policy as an nft script, and as lines a person reads.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use vorfw_core::policy::{object_name, Accept, Family, Policy, NFTABLES_NAMING};
use vorfw_core::Proto;

/// Our table, in the `inet` family (IPv4 and IPv6 in one).
pub const TABLE: &str = "inet vorstream";

fn set_name(key: &str, fam: Family) -> String {
    object_name(NFTABLES_NAMING.prefix, key, fam, NFTABLES_NAMING.max)
}

/// Ports per (set, family, protocol): one rule each, with an anonymous port set.
fn grouped<'a>(accepts: impl Iterator<Item = &'a Accept>) -> BTreeMap<(String, Family, Proto), BTreeSet<u16>> {
    let mut g: BTreeMap<(String, Family, Proto), BTreeSet<u16>> = BTreeMap::new();
    for a in accepts {
        g.entry((a.set.clone(), a.family, a.protocol)).or_default().insert(a.port);
    }
    g
}

/// One accept line per (set, family, protocol): `ip saddr @set tcp dport { … } accept`.
fn accept_lines(s: &mut String, accepts: &BTreeMap<Accept, BTreeSet<String>>, dir: &str) {
    for ((key, fam, proto), ports) in grouped(accepts.keys()) {
        let addr = match fam {
            Family::V4 => "ip",
            Family::V6 => "ip6",
        };
        let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
        let ports = if ports.len() == 1 { ports[0].clone() } else { format!("{{ {} }}", ports.join(", ")) };
        let _ = writeln!(s, "\t\t{addr} {dir} @{} {} dport {ports} accept", set_name(&key, fam), proto.as_str());
    }
}

/// Whether the table needs an output chain: restricted egress, or sets kept current (Entra ID).
fn has_output(p: &Policy) -> bool {
    p.egress.restricted || !p.egress.accepts.is_empty()
}

/// The whole table as an `nft -f` script that replaces it atomically (the empty `table`
/// line makes `delete` safe when the table does not exist yet; nft 1.0.6 has no `destroy`).
pub fn script(p: &Policy) -> String {
    let (t_family, t_name) = TABLE.split_once(' ').expect("TABLE is 'family name'");
    let mut s = String::new();
    let _ = writeln!(s, "# Owned by vorstream.firewall: generated, replaced as a whole on every change.");
    let _ = writeln!(s, "table {t_family} {t_name} {{}}");
    let _ = writeln!(s, "delete table {t_family} {t_name}");
    let _ = writeln!(s, "table {t_family} {t_name} {{");
    let _ = writeln!(s, "\tcomment \"Owned by vorstream.firewall\"");
    for ((key, fam), nets) in &p.sets {
        let ty = match fam {
            Family::V4 => "ipv4_addr",
            Family::V6 => "ipv6_addr",
        };
        let elems: Vec<String> = nets.iter().map(|n| n.to_string()).collect();
        let _ = writeln!(s, "\tset {} {{", set_name(key, *fam));
        let _ = writeln!(s, "\t\ttype {ty}");
        let _ = writeln!(s, "\t\tflags interval");
        if !elems.is_empty() {
            let _ = writeln!(s, "\t\telements = {{ {} }}", elems.join(", "));
        }
        let _ = writeln!(s, "\t}}");
    }
    let _ = writeln!(s, "\tchain input {{");
    let _ = writeln!(s, "\t\ttype filter hook input priority filter; policy drop;");
    let _ = writeln!(s, "\t\tiif \"lo\" accept");
    let _ = writeln!(s, "\t\tct state established,related accept");
    let _ = writeln!(s, "\t\tct state invalid drop");
    let _ = writeln!(
        s,
        "\t\tip protocol icmp icmp type {{ destination-unreachable, time-exceeded, parameter-problem }} accept"
    );
    let _ = writeln!(
        s,
        "\t\tip6 nexthdr ipv6-icmp icmpv6 type {{ destination-unreachable, packet-too-big, time-exceeded, parameter-problem, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert }} accept"
    );
    accept_lines(&mut s, &p.accepts, "saddr");
    let _ = writeln!(s, "\t\treject with icmpx type admin-prohibited");
    let _ = writeln!(s, "\t}}");
    if has_output(p) {
        // Restricted: reject what is not accepted. Open: the accepts only keep the sets visible
        // and current (the chain's policy accepts everything anyway).
        let _ = writeln!(s, "\tchain output {{");
        let _ = writeln!(s, "\t\ttype filter hook output priority filter; policy accept;");
        let _ = writeln!(s, "\t\toif \"lo\" accept");
        let _ = writeln!(s, "\t\tct state established,related accept");
        if p.egress.restricted {
            let _ = writeln!(s, "\t\tip protocol icmp icmp type {{ echo-reply, destination-unreachable, time-exceeded, parameter-problem }} accept");
            let _ = writeln!(
                s,
                "\t\tip6 nexthdr ipv6-icmp icmpv6 type {{ echo-reply, destination-unreachable, packet-too-big, time-exceeded, parameter-problem, nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert, mld-listener-report, mld2-listener-report }} accept"
            );
        }
        accept_lines(&mut s, &p.egress.accepts, "daddr");
        if p.egress.restricted {
            // Replies of management SSH sessions that began before conntrack saw them (a
            // host's first converge over Ansible's own SSH connection).
            for a in p.egress.replies.keys() {
                let addr = if a.family == Family::V4 { "ip" } else { "ip6" };
                let _ = writeln!(
                    s,
                    "\t\t{addr} daddr @{} {} sport {} accept",
                    set_name(&a.set, a.family),
                    a.protocol.as_str(),
                    a.port
                );
            }
            let _ = writeln!(s, "\t\treject with icmpx type admin-prohibited");
        }
        let _ = writeln!(s, "\t}}");
    }
    let _ = writeln!(s, "}}");
    s
}

/// One line per set member and per accepted port, for `--diff`.
pub fn render(p: &Policy) -> String {
    let mut s = String::new();
    for ((key, fam), nets) in &p.sets {
        for n in nets {
            let _ = writeln!(s, "set {}: {n}", set_name(key, *fam));
        }
    }
    for a in p.accepts.keys() {
        let _ = writeln!(s, "accept {}/{} from @{}", a.port, a.protocol, set_name(&a.set, a.family));
    }
    if has_output(p) {
        let mode = if p.egress.restricted { "restricted: reject the rest" } else { "open" };
        let _ = writeln!(s, "egress {mode}");
    }
    for a in p.egress.accepts.keys() {
        let _ = writeln!(s, "accept out {}/{} to @{}", a.port, a.protocol, set_name(&a.set, a.family));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        let mut p = Policy::default();
        p.sets
            .insert(("g-all".into(), Family::V4), vec!["10.0.0.1/32".parse().unwrap(), "10.0.1.0/24".parse().unwrap()]);
        p.sets.insert(("a-user".into(), Family::V6), vec!["::/0".parse().unwrap()]);
        for port in [100, 200] {
            p.accepts.insert(
                Accept { set: "g-all".into(), family: Family::V4, protocol: Proto::Tcp, port },
                Default::default(),
            );
        }
        p.accepts.insert(
            Accept { set: "a-user".into(), family: Family::V6, protocol: Proto::Udp, port: 300 },
            Default::default(),
        );
        p
    }

    #[test]
    fn script_replaces_the_table_atomically_and_groups_ports() {
        let s = script(&policy());
        assert!(s.contains("table inet vorstream {}\ndelete table inet vorstream\ntable inet vorstream {"));
        assert!(s.contains("elements = { 10.0.0.1/32, 10.0.1.0/24 }"));
        assert!(s.contains("\t\tip saddr @g-all-4 tcp dport { 100, 200 } accept\n"));
        assert!(s.contains("\t\tip6 saddr @a-user-6 udp dport 300 accept\n"));
        assert!(s.trim_end().ends_with("reject with icmpx type admin-prohibited\n\t}\n}"));
    }

    #[test]
    fn output_chain_only_with_egress_and_rejects_only_when_restricted() {
        let mut p = policy();
        assert!(!script(&p).contains("chain output"));
        p.sets.insert(("entra".into(), Family::V4), vec!["10.231.0.0/24".parse().unwrap()]);
        p.egress.accepts.insert(
            Accept { set: "entra".into(), family: Family::V4, protocol: Proto::Tcp, port: 4430 },
            Default::default(),
        );
        let open = script(&p);
        let out = &open[open.find("chain output").unwrap()..];
        assert!(out.contains("policy accept;"));
        assert!(out.contains("\t\tip daddr @entra-4 tcp dport 4430 accept\n"));
        assert!(!out.contains("reject"));
        p.set_egress_restricted(true);
        let restricted = script(&p);
        let out = &restricted[restricted.find("chain output").unwrap()..];
        assert!(out.contains("ct state established,related accept"));
        assert!(out.contains("nd-neighbor-solicit"));
        assert!(out.trim_end().ends_with("reject with icmpx type admin-prohibited\n\t}\n}"));
        assert!(render(&p).contains("accept out 4430/tcp to @entra-4\n"));
    }

    #[test]
    fn render_is_line_per_object() {
        assert_eq!(render(&policy()).lines().count(), 3 + 3);
    }
}

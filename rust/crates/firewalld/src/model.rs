//! Pure part of the firewalld backend: desired owned state, diff into operations, rendering.

use ipnet::IpNet;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use vorfw_core::policy::{object_name, Family, Policy};

/// Every object this collection owns in firewalld starts with this prefix.
pub const PREFIX: &str = "vorfw-";
/// ipset names are limited to 31 characters by the kernel.
pub const MAX_NAME: usize = 31;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Layer {
    Runtime,
    Permanent,
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Layer::Runtime => "runtime",
            Layer::Permanent => "permanent",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ipset {
    pub family: Family,
    pub entries: BTreeSet<String>,
}

/// The objects we own in one layer of firewalld.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Owned {
    pub ipsets: BTreeMap<String, Ipset>,
    /// zone → owned rich rules (firewalld's canonical string form).
    pub rich: BTreeMap<String, BTreeSet<String>>,
    /// zone → services present that the operator asked us to remove
    /// (`host_firewall_remove_zone_services`); always empty in the wanted state.
    pub services: BTreeMap<String, BTreeSet<String>>,
}

pub fn is_owned_ipset(name: &str) -> bool {
    name.starts_with(PREFIX)
}

pub fn is_owned_rule(rule: &str) -> bool {
    rule.contains(&format!("source ipset=\"{PREFIX}"))
}

pub fn family_name(f: Family) -> &'static str {
    match f {
        Family::V4 => "ipv4",
        Family::V6 => "ipv6",
    }
}

/// ipset's `family` option value.
pub fn ipset_family(f: Family) -> &'static str {
    match f {
        Family::V4 => "inet",
        Family::V6 => "inet6",
    }
}

/// `hash:net` refuses a /0 entry; two /1 halves cover the same space.
fn ipset_entries(nets: &[IpNet]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for n in nets {
        if n.prefix_len() == 0 {
            for half in n.subnets(1).expect("a /0 has /1 halves") {
                out.insert(half.to_string());
            }
        } else {
            out.insert(n.to_string());
        }
    }
    out
}

/// The rich rule accepting `port/protocol` from an owned ipset, in firewalld's canonical form
/// (exactly what `getRichRules` returns, so comparisons are string comparisons).
pub fn rich_rule(family: Family, ipset: &str, port: u16, protocol: &str) -> String {
    format!(
        "rule family=\"{}\" source ipset=\"{ipset}\" port port=\"{port}\" protocol=\"{protocol}\" accept",
        family_name(family)
    )
}

/// What we want to own, in every given zone.
pub fn desired(policy: &Policy, zones: &[String]) -> Owned {
    let mut o = Owned::default();
    for ((key, fam), nets) in &policy.sets {
        o.ipsets.insert(object_name(PREFIX, key, *fam, MAX_NAME), Ipset { family: *fam, entries: ipset_entries(nets) });
    }
    for zone in zones {
        let rules = o.rich.entry(zone.clone()).or_default();
        for a in policy.accepts.keys() {
            let name = object_name(PREFIX, &a.set, a.family, MAX_NAME);
            rules.insert(rich_rule(a.family, &name, a.port, a.protocol.as_str()));
        }
    }
    o
}

/// One write to firewalld. Every op names its layer, so a person can read the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Permanent only: firewalld cannot create ipsets at runtime.
    NewIpset {
        name: String,
        family: Family,
    },
    SetEntries {
        layer: Layer,
        name: String,
        entries: BTreeSet<String>,
    },
    /// Permanent only.
    DeleteIpset {
        name: String,
    },
    AddRich {
        layer: Layer,
        zone: String,
        rule: String,
    },
    RemoveRich {
        layer: Layer,
        zone: String,
        rule: String,
    },
    AddService {
        layer: Layer,
        zone: String,
        service: String,
    },
    RemoveService {
        layer: Layer,
        zone: String,
        service: String,
    },
    /// Make the permanent configuration the runtime one (needed when an ipset is new).
    Reload,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::NewIpset { name, family } => {
                write!(f, "permanent: create ipset {name} (hash:net, {})", ipset_family(*family))
            }
            Op::SetEntries { layer, name, entries } => {
                write!(f, "{layer}: set ipset {name} to {} entries", entries.len())
            }
            Op::DeleteIpset { name } => write!(f, "permanent: delete ipset {name}"),
            Op::AddRich { layer, zone, rule } => write!(f, "{layer}: zone {zone}: add {rule}"),
            Op::RemoveRich { layer, zone, rule } => {
                write!(f, "{layer}: zone {zone}: remove {rule}")
            }
            Op::AddService { layer, zone, service } => write!(f, "{layer}: zone {zone}: add service {service}"),
            Op::RemoveService { layer, zone, service } => write!(f, "{layer}: zone {zone}: remove service {service}"),
            Op::Reload => write!(f, "reload firewalld (new ipsets exist only in the permanent configuration)"),
        }
    }
}

fn layer_ops(layer: Layer, cur: &Owned, want: &Owned, ops: &mut Vec<Op>) {
    // Sets first (new rules must find their members), then rules, then stale sets.
    for (name, w) in &want.ipsets {
        match cur.ipsets.get(name) {
            Some(c) if c.family == w.family => {
                if c.entries != w.entries {
                    ops.push(Op::SetEntries { layer, name: name.clone(), entries: w.entries.clone() });
                }
            }
            Some(_) => {
                // Family changed (cannot happen with our names, but never leave a wrong set).
                ops.push(Op::DeleteIpset { name: name.clone() });
                ops.push(Op::NewIpset { name: name.clone(), family: w.family });
                ops.push(Op::SetEntries { layer, name: name.clone(), entries: w.entries.clone() });
            }
            None => {
                if layer == Layer::Permanent {
                    ops.push(Op::NewIpset { name: name.clone(), family: w.family });
                }
                if !w.entries.is_empty() {
                    ops.push(Op::SetEntries { layer, name: name.clone(), entries: w.entries.clone() });
                }
            }
        }
    }
    let empty = BTreeSet::new();
    let zones: BTreeSet<&String> = cur.rich.keys().chain(want.rich.keys()).collect();
    for zone in &zones {
        let c = cur.rich.get(*zone).unwrap_or(&empty);
        let w = want.rich.get(*zone).unwrap_or(&empty);
        for rule in w.difference(c) {
            ops.push(Op::AddRich { layer, zone: (*zone).clone(), rule: rule.clone() });
        }
    }
    for zone in &zones {
        let c = cur.rich.get(*zone).unwrap_or(&empty);
        let w = want.rich.get(*zone).unwrap_or(&empty);
        for rule in c.difference(w) {
            ops.push(Op::RemoveRich { layer, zone: (*zone).clone(), rule: rule.clone() });
        }
    }
    for (zone, services) in &cur.services {
        for service in services {
            if !want.services.get(zone).is_some_and(|w| w.contains(service)) {
                ops.push(Op::RemoveService { layer, zone: zone.clone(), service: service.clone() });
            }
        }
    }
    for (name, c) in &cur.ipsets {
        if want.ipsets.contains_key(name) {
            continue;
        }
        match layer {
            Layer::Permanent => ops.push(Op::DeleteIpset { name: name.clone() }),
            // A runtime ipset can only go away with a reload; emptying it is as good.
            Layer::Runtime if !c.entries.is_empty() => {
                ops.push(Op::SetEntries { layer, name: name.clone(), entries: BTreeSet::new() })
            }
            Layer::Runtime => {}
        }
    }
}

/// The operations that turn the current owned state into the wanted one. `runtime` is `None`
/// when firewalld is not running (permanent configuration only).
pub fn diff(runtime: Option<&Owned>, permanent: &Owned, want: &Owned) -> Vec<Op> {
    let mut ops = vec![];
    layer_ops(Layer::Permanent, permanent, want, &mut ops);
    if let Some(rt) = runtime {
        let missing = want.ipsets.keys().any(|n| !rt.ipsets.contains_key(n));
        if missing {
            // New ipsets reach the runtime only through a reload, which also makes every
            // owned runtime object equal to the (by then updated) permanent configuration.
            ops.push(Op::Reload);
        } else {
            layer_ops(Layer::Runtime, rt, want, &mut ops);
        }
    }
    ops
}

/// The owned state as lines a person reads (and Ansible's --diff compares).
pub fn render(o: &Owned) -> String {
    let mut s = String::new();
    for (name, set) in &o.ipsets {
        if set.entries.is_empty() {
            s.push_str(&format!("ipset {name} ({}): (empty)\n", ipset_family(set.family)));
        }
        for e in &set.entries {
            s.push_str(&format!("ipset {name} ({}): {e}\n", ipset_family(set.family)));
        }
    }
    for (zone, rules) in &o.rich {
        for r in rules {
            s.push_str(&format!("zone {zone}: {r}\n"));
        }
    }
    for (zone, services) in &o.services {
        for svc in services {
            s.push_str(&format!("zone {zone}: service {svc}\n"));
        }
    }
    s
}

/// Runtime leftovers that are harmless: empty owned ipsets no rule uses (they vanish with
/// the next reload). Drop them before comparing or rendering.
pub fn without_empty_leftovers(mut rt: Owned, want: &Owned) -> Owned {
    rt.ipsets.retain(|n, s| !s.entries.is_empty() || want.ipsets.contains_key(n));
    rt.rich.retain(|_, r| !r.is_empty());
    rt.services.retain(|_, r| !r.is_empty());
    rt
}

#[cfg(test)]
mod tests {
    use super::*;
    use vorfw_core::policy::Accept;
    use vorfw_core::Proto;

    fn policy(sets: &[(&str, &[&str])], accepts: &[(&str, u16)]) -> Policy {
        let mut p = Policy::default();
        for (k, nets) in sets {
            let nets: Vec<IpNet> = nets.iter().map(|n| n.parse().unwrap()).collect();
            p.sets.insert((k.to_string(), Family::of(&nets[0])), nets);
        }
        for (k, port) in accepts {
            p.accepts.insert(
                Accept { set: k.to_string(), family: Family::V4, protocol: Proto::Tcp, port: *port },
                Default::default(),
            );
        }
        p
    }

    #[test]
    fn desired_names_sets_and_rules_and_splits_slash_zero() {
        let p = policy(&[("a-user", &["0.0.0.0/0"])], &[("a-user", 8081)]);
        let d = desired(&p, &["public".into()]);
        let set = &d.ipsets["vorfw-a-user-4"];
        assert_eq!(set.entries.iter().collect::<Vec<_>>(), ["0.0.0.0/1", "128.0.0.0/1"]);
        assert_eq!(
            d.rich["public"].iter().next().unwrap(),
            "rule family=\"ipv4\" source ipset=\"vorfw-a-user-4\" port port=\"8081\" protocol=\"tcp\" accept"
        );
        assert!(is_owned_rule(d.rich["public"].iter().next().unwrap()));
    }

    #[test]
    fn unchanged_state_needs_no_ops_and_new_sets_need_a_reload() {
        let p = policy(&[("g-x", &["10.0.0.1/32"])], &[("g-x", 100)]);
        let want = desired(&p, &["public".into()]);
        assert!(diff(Some(&want), &want, &want).is_empty());
        let ops = diff(Some(&Owned::default()), &Owned::default(), &want);
        assert_eq!(ops[0], Op::NewIpset { name: "vorfw-g-x-4".into(), family: Family::V4 });
        assert_eq!(ops.last(), Some(&Op::Reload));
        assert!(diff(None, &Owned::default(), &want).iter().all(|o| *o != Op::Reload));
    }

    #[test]
    fn membership_changes_update_in_place_and_stale_objects_go() {
        let old = desired(
            &policy(&[("g-x", &["10.0.0.1/32"]), ("g-old", &["10.0.0.9/32"])], &[("g-x", 100), ("g-old", 200)]),
            &["public".into()],
        );
        let new = desired(&policy(&[("g-x", &["10.0.0.1/32", "10.0.0.2/32"])], &[("g-x", 100)]), &["public".into()]);
        let ops = diff(Some(&old), &old, &new);
        assert!(!ops.contains(&Op::Reload));
        assert!(ops
            .iter()
            .any(|o| matches!(o, Op::SetEntries { layer: Layer::Runtime, name, .. } if name == "vorfw-g-x-4")));
        assert!(ops.iter().any(|o| matches!(o, Op::DeleteIpset { name } if name == "vorfw-g-old-4")));
        assert!(ops.iter().any(|o| matches!(o, Op::RemoveRich { layer: Layer::Runtime, .. })));
        // Stale runtime set is emptied, not deleted (that needs a reload).
        assert!(ops.iter().any(|o| matches!(o, Op::SetEntries { layer: Layer::Runtime, name, entries } if name == "vorfw-g-old-4" && entries.is_empty())));
        // rules are removed before their set is deleted
        let rm = ops.iter().position(|o| matches!(o, Op::RemoveRich { layer: Layer::Permanent, .. })).unwrap();
        let del = ops.iter().position(|o| matches!(o, Op::DeleteIpset { .. })).unwrap();
        assert!(rm < del);
    }

    #[test]
    fn render_is_line_per_object() {
        let want = desired(&policy(&[("g-x", &["10.0.0.1/32"])], &[("g-x", 100)]), &["public".into()]);
        let r = render(&want);
        assert_eq!(r.lines().count(), 2);
        assert!(r.starts_with("ipset vorfw-g-x-4 (inet): 10.0.0.1/32\n"));
    }
}

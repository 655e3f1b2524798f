//! Pure part of the firewalld backend: desired owned state, diff into operations, rendering.

use ipnet::IpNet;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use vorfw_core::policy::{object_name, Family, Policy};

/// Every object this collection owns in firewalld starts with this prefix.
pub const PREFIX: &str = vorfw_core::policy::FIREWALLD_NAMING.prefix;
/// ipset names are limited to 31 characters by the kernel.
pub const MAX_NAME: usize = vorfw_core::policy::FIREWALLD_NAMING.max;
/// The one firewalld policy object this collection owns: what the host itself sends
/// (ingress zone `HOST`, egress zone `ANY`). Everything in it is ours.
pub const EGRESS_POLICY: &str = "vorfw-egress";
/// firewalld's pseudo zones for the host itself and for any zone.
pub const ZONE_HOST: &str = "HOST";
pub const ZONE_ANY: &str = "ANY";
/// Policy targets: reject what no rule accepted, or fall through to firewalld's default
/// (accept) for the host's own traffic.
pub const TARGET_REJECT: &str = "REJECT";
pub const TARGET_CONTINUE: &str = "CONTINUE";

/// What a restricted egress policy always admits besides the plan, so that IPv6 keeps working.
///
/// With target `REJECT` on HOST → ANY, firewalld's `filter_OUTPUT` chain still accepts
/// `ct state established,related` and `oifname "lo"` before it jumps to any policy chain
/// (verified with `nft list chain inet firewalld filter_OUTPUT`, firewalld 1.3), so loopback,
/// replies to inbound connections, the rest of our own accepted connections and ICMP errors
/// about them need no rule. Neighbour discovery does: conntrack does not track NS/NA/RS, so
/// without these rules the host cannot resolve any IPv6 neighbour (its neighbour entries go
/// FAILED and every IPv6 connection times out, seen in the lab) nor answer its neighbours'
/// solicitations. The last rule admits ICMPv6 to link-local multicast (ff02::/16): solicited-node
/// solicitations, router solicitations and MLD listener reports (firewalld has no icmptype for
/// MLD), which switches with MLD snooping need to keep delivering our multicast.
///
/// Not covered on purpose (restricted means restricted): DHCP clients using UDP sockets
/// (DHCPv6, and DHCPv4 unicast renewals), IGMP and outbound ping. Add them as egress rules when
/// a host needs them.
pub const EGRESS_BASE_RULES: [&str; 4] = [
    "rule family=\"ipv6\" icmp-type name=\"neighbour-solicitation\" accept",
    "rule family=\"ipv6\" icmp-type name=\"neighbour-advertisement\" accept",
    "rule family=\"ipv6\" icmp-type name=\"router-solicitation\" accept",
    "rule family=\"ipv6\" destination address=\"ff02::/16\" protocol value=\"ipv6-icmp\" accept",
];

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

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Ipset {
    pub family: Family,
    /// The `maxelem` option; `None` when not set (firewalld's default, [`DEFAULT_MAXELEM`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maxelem: Option<u32>,
    pub entries: BTreeSet<String>,
}

/// What an ipset holds without a `maxelem` option (ipset's and firewalld's default).
pub const DEFAULT_MAXELEM: u32 = 65_536;

impl Ipset {
    /// How many entries it can hold.
    pub fn capacity(&self) -> usize {
        self.maxelem.unwrap_or(DEFAULT_MAXELEM) as usize
    }
}

/// The `maxelem` a set of `n` entries is created with: room to double (so a growing fleet does
/// not resize it at every change), never below the default. Sized explicitly, never the
/// default by omission: a set above 65,536 entries would otherwise fail to load.
pub fn maxelem_for(n: usize) -> u32 {
    let room = n.saturating_mul(2).checked_next_power_of_two().unwrap_or(usize::MAX);
    room.clamp(DEFAULT_MAXELEM as usize, u32::MAX as usize) as u32
}

/// A firewalld policy object (firewalld 0.9 or later), as far as we manage it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PolicyObject {
    pub target: String,
    pub ingress_zones: BTreeSet<String>,
    pub egress_zones: BTreeSet<String>,
    /// All its rich rules (firewalld's canonical string form): the object is ours entirely.
    pub rich: BTreeSet<String>,
}

impl PolicyObject {
    /// Same object apart from its rules and target (else it is deleted and created anew).
    fn same_zones(&self, other: &PolicyObject) -> bool {
        self.ingress_zones == other.ingress_zones && self.egress_zones == other.egress_zones
    }
}

/// The objects we own in one layer of firewalld.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Owned {
    pub ipsets: BTreeMap<String, Ipset>,
    /// zone → owned rich rules (firewalld's canonical string form).
    pub rich: BTreeMap<String, BTreeSet<String>>,
    /// zone → services present that the operator asked us to remove
    /// (`host_firewall_remove_zone_services`); always empty in the wanted state.
    pub services: BTreeMap<String, BTreeSet<String>>,
    /// The egress policy object [`EGRESS_POLICY`], if it exists.
    pub egress: Option<PolicyObject>,
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

/// The rich rule accepting `port/protocol` to an owned ipset (egress), in firewalld's canonical
/// form (verified against `getPolicySettings` of firewalld 1.3).
pub fn egress_rule(family: Family, ipset: &str, port: u16, protocol: &str) -> String {
    format!(
        "rule family=\"{}\" destination ipset=\"{ipset}\" port port=\"{port}\" protocol=\"{protocol}\" accept",
        family_name(family)
    )
}

/// What a firewalld release's rich rules can say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Features {
    /// `destination ipset=` (firewalld 1.0 and later). Before, a policy's rule names each
    /// destination CIDR (`destination address=`), one rule per CIDR and port.
    pub destination_ipset: bool,
}

impl Default for Features {
    fn default() -> Features {
        Features { destination_ipset: true }
    }
}

impl Features {
    /// From a version string ("0.9.11", "1.3.3", "2.5.0"); unreadable: the current release's.
    pub fn of_version(v: &str) -> Features {
        let major = v.trim().split('.').next().and_then(|m| m.parse::<u32>().ok());
        Features { destination_ipset: major.is_none_or(|m| m >= 1) }
    }
}

/// The same to one destination CIDR, for firewalld before 1.0 (no `destination ipset`), in
/// firewalld's canonical form.
pub fn egress_address_rule(family: Family, net: &str, port: u16, protocol: &str) -> String {
    format!(
        "rule family=\"{}\" destination address=\"{net}\" port port=\"{port}\" protocol=\"{protocol}\" accept",
        family_name(family)
    )
}

/// The egress policy object for `policy`: present when egress is restricted (target REJECT,
/// plus [`EGRESS_BASE_RULES`]) or has accepts (target CONTINUE: they admit what is admitted
/// anyway, and keep their sets in use).
pub fn desired_egress(policy: &Policy, features: Features) -> Option<PolicyObject> {
    let e = &policy.egress;
    if !e.restricted && e.accepts.is_empty() {
        return None;
    }
    let mut rich = BTreeSet::new();
    for a in e.accepts.keys() {
        let (port, proto) = (a.port, a.protocol.as_str());
        if features.destination_ipset {
            rich.insert(egress_rule(a.family, &object_name(PREFIX, &a.set, a.family, MAX_NAME), port, proto));
        } else {
            let nets = policy.sets.get(&(a.set.clone(), a.family)).map(Vec::as_slice).unwrap_or_default();
            rich.extend(ipset_entries(nets).iter().map(|n| egress_address_rule(a.family, n, port, proto)));
        }
    }
    if e.restricted {
        rich.extend(EGRESS_BASE_RULES.iter().map(|r| r.to_string()));
    }
    Some(PolicyObject {
        target: if e.restricted { TARGET_REJECT } else { TARGET_CONTINUE }.to_string(),
        ingress_zones: BTreeSet::from([ZONE_HOST.to_string()]),
        egress_zones: BTreeSet::from([ZONE_ANY.to_string()]),
        rich,
    })
}

/// What we want to own, in every given zone, on a current firewalld.
pub fn desired(policy: &Policy, zones: &[String]) -> Owned {
    desired_with(policy, zones, Features::default())
}

/// What we want to own, in every given zone, on a firewalld with `features`.
pub fn desired_with(policy: &Policy, zones: &[String], features: Features) -> Owned {
    let mut o = Owned::default();
    for ((key, fam), nets) in &policy.sets {
        let entries = ipset_entries(nets);
        let maxelem = Some(maxelem_for(entries.len()));
        o.ipsets.insert(object_name(PREFIX, key, *fam, MAX_NAME), Ipset { family: *fam, maxelem, entries });
    }
    for zone in zones {
        let rules = o.rich.entry(zone.clone()).or_default();
        for a in policy.accepts.keys() {
            let name = object_name(PREFIX, &a.set, a.family, MAX_NAME);
            rules.insert(rich_rule(a.family, &name, a.port, a.protocol.as_str()));
        }
    }
    o.egress = desired_egress(policy, features);
    o
}

/// One write to firewalld. Every op names its layer, so a person can read the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Permanent only: firewalld cannot create ipsets at runtime.
    NewIpset {
        name: String,
        family: Family,
        maxelem: u32,
    },
    /// Permanent only: a set that outgrew its `maxelem` gets a larger one (a reload makes it
    /// the runtime's; the kernel's set cannot grow in place).
    ResizeIpset {
        name: String,
        maxelem: u32,
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
    /// Permanent only: firewalld cannot create policy objects at runtime.
    NewPolicy {
        name: String,
        target: String,
        ingress_zones: BTreeSet<String>,
        egress_zones: BTreeSet<String>,
    },
    /// Permanent only: firewalld cannot change a policy's target at runtime (a reload does).
    SetPolicyTarget {
        name: String,
        target: String,
    },
    /// Permanent only.
    DeletePolicy {
        name: String,
    },
    AddPolicyRich {
        layer: Layer,
        policy: String,
        rule: String,
    },
    RemovePolicyRich {
        layer: Layer,
        policy: String,
        rule: String,
    },
    /// Make the permanent configuration the runtime one (needed when an ipset or the policy
    /// object is new, or the policy's target changes).
    Reload,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::NewIpset { name, family, maxelem } => {
                write!(f, "permanent: create ipset {name} (hash:net, {}, maxelem {maxelem})", ipset_family(*family))
            }
            Op::ResizeIpset { name, maxelem } => write!(f, "permanent: ipset {name}: set maxelem {maxelem}"),
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
            Op::NewPolicy { name, target, ingress_zones, egress_zones } => write!(
                f,
                "permanent: create policy {name} ({} -> {}, target {target})",
                join(ingress_zones),
                join(egress_zones)
            ),
            Op::SetPolicyTarget { name, target } => write!(f, "permanent: policy {name}: set target {target}"),
            Op::DeletePolicy { name } => write!(f, "permanent: delete policy {name}"),
            Op::AddPolicyRich { layer, policy, rule } => write!(f, "{layer}: policy {policy}: add {rule}"),
            Op::RemovePolicyRich { layer, policy, rule } => write!(f, "{layer}: policy {policy}: remove {rule}"),
            Op::Reload => write!(
                f,
                "reload firewalld (new ipsets, policy objects and policy targets reach the runtime only this way)"
            ),
        }
    }
}

fn join(s: &BTreeSet<String>) -> String {
    s.iter().map(String::as_str).collect::<Vec<_>>().join(",")
}

fn new_policy(name: &str, p: &PolicyObject) -> Op {
    Op::NewPolicy {
        name: name.to_string(),
        target: p.target.clone(),
        ingress_zones: p.ingress_zones.clone(),
        egress_zones: p.egress_zones.clone(),
    }
}

/// Policy rules to add (after the sets exist) and to remove (before stale sets go), and whether
/// a stale policy object must be deleted. Only rules change at runtime; everything else needs
/// the permanent configuration and a reload (see [`diff`]).
fn policy_ops(layer: Layer, cur: Option<&PolicyObject>, want: Option<&PolicyObject>) -> (Vec<Op>, Vec<Op>, bool) {
    let name = EGRESS_POLICY.to_string();
    let (mut add, mut remove) = (vec![], vec![]);
    let rules = |p: &PolicyObject, layer: Layer| -> Vec<Op> {
        p.rich.iter().map(|r| Op::AddPolicyRich { layer, policy: name.clone(), rule: r.clone() }).collect()
    };
    match (cur, want) {
        (None, None) => {}
        (Some(_), None) => return (add, remove, layer == Layer::Permanent),
        (None, Some(w)) => {
            if layer == Layer::Permanent {
                add.push(new_policy(&name, w));
                add.extend(rules(w, layer));
            }
        }
        (Some(c), Some(w)) if !c.same_zones(w) => {
            if layer == Layer::Permanent {
                add.push(Op::DeletePolicy { name: name.clone() });
                add.push(new_policy(&name, w));
                add.extend(rules(w, layer));
            }
        }
        (Some(c), Some(w)) => {
            if c.target != w.target && layer == Layer::Permanent {
                add.push(Op::SetPolicyTarget { name: name.clone(), target: w.target.clone() });
            }
            for rule in w.rich.difference(&c.rich) {
                add.push(Op::AddPolicyRich { layer, policy: name.clone(), rule: rule.clone() });
            }
            for rule in c.rich.difference(&w.rich) {
                remove.push(Op::RemovePolicyRich { layer, policy: name.clone(), rule: rule.clone() });
            }
        }
    }
    (add, remove, false)
}

/// The `maxelem` to create or resize `w` with: its own (a snapshot's), at least room for its entries.
fn wanted_maxelem(w: &Ipset) -> u32 {
    match w.maxelem {
        Some(m) if m as usize >= w.entries.len() => m,
        _ => maxelem_for(w.entries.len()),
    }
}

fn layer_ops(layer: Layer, cur: &Owned, want: &Owned, ops: &mut Vec<Op>) {
    // Sets first (new rules must find their members), then rules, then stale sets.
    for (name, w) in &want.ipsets {
        match cur.ipsets.get(name) {
            Some(c) if c.family == w.family => {
                // Too small for the wanted entries: a larger maxelem first (permanent; the
                // runtime gets it with the reload `diff_layers` adds).
                if c.capacity() < w.entries.len() && layer == Layer::Permanent {
                    ops.push(Op::ResizeIpset { name: name.clone(), maxelem: wanted_maxelem(w) });
                }
                if c.entries != w.entries {
                    ops.push(Op::SetEntries { layer, name: name.clone(), entries: w.entries.clone() });
                }
            }
            Some(_) => {
                // Family changed (cannot happen with our names, but never leave a wrong set).
                ops.push(Op::DeleteIpset { name: name.clone() });
                ops.push(Op::NewIpset { name: name.clone(), family: w.family, maxelem: wanted_maxelem(w) });
                ops.push(Op::SetEntries { layer, name: name.clone(), entries: w.entries.clone() });
            }
            None => {
                if layer == Layer::Permanent {
                    ops.push(Op::NewIpset { name: name.clone(), family: w.family, maxelem: wanted_maxelem(w) });
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
    let (add, remove, delete_policy) = policy_ops(layer, cur.egress.as_ref(), want.egress.as_ref());
    ops.extend(add);
    ops.extend(remove);
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
    // Only a snapshot being put back wants services (those a converge removed).
    for (zone, services) in &want.services {
        for service in services {
            if !cur.services.get(zone).is_some_and(|c| c.contains(service)) {
                ops.push(Op::AddService { layer, zone: zone.clone(), service: service.clone() });
            }
        }
    }
    if delete_policy {
        ops.push(Op::DeletePolicy { name: EGRESS_POLICY.to_string() });
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
    diff_layers(runtime, permanent, want, want)
}

/// The operations that turn the current owned state into `want_rt` at runtime and `want_perm`
/// in the permanent configuration (commit-confirm puts back a snapshot whose layers may
/// differ; a converge wants the same in both).
pub fn diff_layers(runtime: Option<&Owned>, permanent: &Owned, want_rt: &Owned, want_perm: &Owned) -> Vec<Op> {
    let mut ops = vec![];
    layer_ops(Layer::Permanent, permanent, want_perm, &mut ops);
    if let Some(rt) = runtime {
        let want = want_rt;
        let missing = want.ipsets.keys().any(|n| !rt.ipsets.contains_key(n));
        // A runtime set too small for its entries takes the permanent one's larger maxelem only
        // through a reload.
        let undersized =
            want.ipsets.iter().any(|(n, w)| rt.ipsets.get(n).is_some_and(|c| c.capacity() < w.entries.len()));
        // A policy object can neither be created nor deleted at runtime, nor its target changed.
        let policy = match (&rt.egress, &want.egress) {
            (None, None) => false,
            (Some(r), Some(w)) => r.target != w.target || !r.same_zones(w),
            _ => true,
        };
        if missing || undersized || policy {
            // New ipsets (and policy changes) reach the runtime only through a reload, which
            // also makes every owned runtime object equal to the (by then updated) permanent
            // configuration; then what the runtime wants beyond that.
            ops.push(Op::Reload);
            layer_ops(Layer::Runtime, want_perm, want, &mut ops);
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
    if let Some(p) = &o.egress {
        s.push_str(&format!(
            "policy {EGRESS_POLICY}: {} -> {}, target {}\n",
            join(&p.ingress_zones),
            join(&p.egress_zones),
            p.target
        ));
        for r in &p.rich {
            s.push_str(&format!("policy {EGRESS_POLICY}: {r}\n"));
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

    /// What firewalld does with ops, on owned state (runtime, permanent): enough to follow a
    /// converge and a restore. Ops firewalld would refuse panic.
    fn run(state: &mut (Option<Owned>, Owned), ops: &[Op]) {
        fn layer(state: &mut (Option<Owned>, Owned), l: Layer) -> &mut Owned {
            match l {
                Layer::Runtime => state.0.as_mut().expect("runtime op on a stopped firewalld"),
                Layer::Permanent => &mut state.1,
            }
        }
        for op in ops {
            match op {
                Op::NewIpset { name, family, maxelem } => {
                    let set = Ipset { family: *family, maxelem: Some(*maxelem), entries: Default::default() };
                    assert!(state.1.ipsets.insert(name.clone(), set).is_none())
                }
                Op::ResizeIpset { name, maxelem } => {
                    state.1.ipsets.get_mut(name).expect("no such ipset").maxelem = Some(*maxelem)
                }
                Op::SetEntries { layer: l, name, entries } => {
                    let set = layer(state, *l).ipsets.get_mut(name).expect("no such ipset");
                    assert!(entries.len() <= set.capacity(), "ipset {name} is full");
                    set.entries = entries.clone()
                }
                Op::DeleteIpset { name } => assert!(state.1.ipsets.remove(name).is_some()),
                Op::AddRich { layer: l, zone, rule } => {
                    layer(state, *l).rich.entry(zone.clone()).or_default().insert(rule.clone());
                }
                Op::RemoveRich { layer: l, zone, rule } => {
                    assert!(layer(state, *l).rich.get_mut(zone).unwrap().remove(rule))
                }
                Op::AddService { layer: l, zone, service } => {
                    layer(state, *l).services.entry(zone.clone()).or_default().insert(service.clone());
                }
                Op::RemoveService { layer: l, zone, service } => {
                    assert!(layer(state, *l).services.get_mut(zone).unwrap().remove(service))
                }
                Op::NewPolicy { target, ingress_zones, egress_zones, .. } => {
                    assert!(state.1.egress.is_none());
                    state.1.egress = Some(PolicyObject {
                        target: target.clone(),
                        ingress_zones: ingress_zones.clone(),
                        egress_zones: egress_zones.clone(),
                        rich: Default::default(),
                    })
                }
                Op::SetPolicyTarget { target, .. } => state.1.egress.as_mut().unwrap().target = target.clone(),
                Op::DeletePolicy { .. } => assert!(state.1.egress.take().is_some()),
                Op::AddPolicyRich { layer: l, rule, .. } => {
                    layer(state, *l).egress.as_mut().unwrap().rich.insert(rule.clone());
                }
                Op::RemovePolicyRich { layer: l, rule, .. } => {
                    assert!(layer(state, *l).egress.as_mut().unwrap().rich.remove(rule))
                }
                Op::Reload => state.0 = Some(state.1.clone()),
            }
            // Empty collections are absent, as firewalld reads them.
            for o in [state.0.as_mut(), Some(&mut state.1)].into_iter().flatten() {
                o.rich.retain(|_, r| !r.is_empty());
                o.services.retain(|_, r| !r.is_empty());
            }
        }
    }

    #[test]
    fn a_snapshot_put_back_after_a_converge_is_the_state_before_it() {
        let zones = ["public".to_string()];
        let mut egress = policy(&[("g-x", &["10.0.0.1/32"])], &[("g-x", 100)]);
        egress.egress.restricted = true;
        egress.egress.accepts = egress.accepts.clone();
        let policies = [
            Policy::default(),
            policy(&[("g-x", &["10.0.0.1/32"])], &[("g-x", 100)]),
            policy(
                &[("g-x", &["10.0.0.1/32", "10.0.0.2/32"]), ("g-y", &["10.9.0.0/16"])],
                &[("g-x", 100), ("g-y", 22)],
            ),
            egress,
        ];
        // Each starting point: nothing owned yet (with the zone's ssh service the converge
        // removes), or what one of the policies left.
        let mut starts = vec![];
        let mut bare = Owned::default();
        bare.services.insert("public".into(), ["ssh".to_string()].into());
        starts.push(bare);
        let desired = |p: &Policy, z: &[String]| {
            let mut o = desired(p, z);
            o.rich.retain(|_, r| !r.is_empty());
            o
        };
        starts.extend(policies.iter().map(|p| desired(p, &zones)));
        for start in &starts {
            for p in &policies {
                for running in [true, false] {
                    let before = (running.then(|| start.clone()), start.clone());
                    let want = desired(p, &zones);
                    let mut state = before.clone();
                    let ops = diff(state.0.as_ref(), &state.1, &want);
                    run(&mut state, &ops);
                    // The converge's result, without the services it removed.
                    assert_eq!(state.1, want);
                    let back =
                        diff_layers(state.0.as_ref(), &state.1, before.0.as_ref().unwrap_or(&before.1), &before.1);
                    run(&mut state, &back);
                    // Runtime ipsets cannot be deleted: emptied, they wait for the next reload.
                    state.0 = state.0.map(|rt| without_empty_leftovers(rt, &before.1));
                    assert_eq!(state, before, "from {start:?} to {p:?}: {ops:?} then {back:?}");
                }
            }
        }
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
        assert_eq!(ops[0], Op::NewIpset { name: "vorfw-g-x-4".into(), family: Family::V4, maxelem: DEFAULT_MAXELEM });
        assert_eq!(ops.last(), Some(&Op::Reload));
        assert!(diff(None, &Owned::default(), &want).iter().all(|o| *o != Op::Reload));
    }

    /// `n` distinct /32s in 10.0.0.0/8.
    fn peers(n: u32) -> Vec<String> {
        (0..n).map(|i| std::net::Ipv4Addr::from(0x0a00_0000 + i).to_string() + "/32").collect()
    }

    #[test]
    fn sets_are_sized_explicitly_and_a_set_that_outgrows_its_maxelem_is_resized() {
        assert_eq!(maxelem_for(0), DEFAULT_MAXELEM);
        assert_eq!(maxelem_for(10_000), DEFAULT_MAXELEM);
        assert_eq!(maxelem_for(40_000), 131_072);
        assert_eq!(maxelem_for(100_000), 262_144);
        assert_eq!(maxelem_for(usize::MAX), u32::MAX);
        let zones = ["public".to_string()];
        let big = peers(100_000);
        let refs: Vec<&str> = big.iter().map(String::as_str).collect();
        let want = desired(&policy(&[("g-x", &refs)], &[("g-x", 8301)]), &zones);
        assert_eq!(want.ipsets["vorfw-g-x-4"].maxelem, Some(262_144));
        // A new set is created with room for its entries (the model refuses a full set).
        let mut state = (Some(Owned::default()), Owned::default());
        let ops = diff(state.0.as_ref(), &state.1, &want);
        assert!(ops.contains(&Op::NewIpset { name: "vorfw-g-x-4".into(), family: Family::V4, maxelem: 262_144 }));
        run(&mut state, &ops);
        assert_eq!(state.1, want);
        // A set made before sizing (no maxelem: 65,536) that fits is left as it is ...
        let small = peers(60_000);
        let refs: Vec<&str> = small.iter().map(String::as_str).collect();
        let mut old = desired(&policy(&[("g-x", &refs)], &[("g-x", 8301)]), &zones);
        old.ipsets.get_mut("vorfw-g-x-4").unwrap().maxelem = None;
        let grown = desired(&policy(&[("g-x", &refs[..59_999])], &[("g-x", 8301)]), &zones);
        let ops = diff(Some(&old), &old, &grown);
        assert!(!ops.iter().any(|o| matches!(o, Op::ResizeIpset { .. } | Op::Reload)), "{ops:?}");
        // ... and when it outgrows it, it is resized before its entries are set, in the
        // permanent configuration, and a reload brings it to the runtime.
        let ops = diff(Some(&old), &old, &want);
        let resize = ops.iter().position(|o| *o == Op::ResizeIpset { name: "vorfw-g-x-4".into(), maxelem: 262_144 });
        let set = ops.iter().position(|o| matches!(o, Op::SetEntries { layer: Layer::Permanent, .. }));
        let reload = ops.iter().position(|o| *o == Op::Reload);
        assert!(resize < set && set < reload && resize.is_some(), "{ops:?}");
        assert!(!ops[..reload.unwrap()].iter().any(|o| matches!(o, Op::SetEntries { layer: Layer::Runtime, .. })));
        let mut state = (Some(old.clone()), old.clone());
        run(&mut state, &ops);
        assert_eq!((state.0.as_ref(), &state.1), (Some(&want), &want));
        // Stopped firewalld (offline): the same, without the reload.
        let ops = diff(None, &old, &want);
        assert!(
            ops.contains(&Op::ResizeIpset { name: "vorfw-g-x-4".into(), maxelem: 262_144 })
                && !ops.contains(&Op::Reload)
        );
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

    fn egress(p: &mut Policy, restricted: bool, accepts: &[(&str, &str, u16)]) {
        p.set_egress_restricted(restricted);
        for (k, net, port) in accepts {
            let n: IpNet = net.parse().unwrap();
            p.sets.insert((k.to_string(), Family::of(&n)), vec![n]);
            p.egress.accepts.insert(
                Accept { set: k.to_string(), family: Family::of(&n), protocol: Proto::Tcp, port: *port },
                Default::default(),
            );
        }
    }

    fn has_egress_rule(ops: &[Op], layer: Layer, add: bool, rule: &str) -> bool {
        ops.iter().any(|o| match o {
            Op::AddPolicyRich { layer: l, policy, rule: r } if add => {
                *l == layer && policy == EGRESS_POLICY && r == rule
            }
            Op::RemovePolicyRich { layer: l, policy, rule: r } if !add => {
                *l == layer && policy == EGRESS_POLICY && r == rule
            }
            _ => false,
        })
    }

    #[test]
    fn no_egress_policy_without_restriction_or_accepts() {
        assert_eq!(desired(&Policy::default(), &["public".into()]).egress, None);
        let mut p = Policy::default();
        egress(&mut p, true, &[]);
        let e = desired(&p, &[]).egress.unwrap();
        assert_eq!(e.target, "REJECT");
        assert_eq!(e.ingress_zones.iter().collect::<Vec<_>>(), ["HOST"]);
        assert_eq!(e.egress_zones.iter().collect::<Vec<_>>(), ["ANY"]);
        // Restricted always keeps IPv6 neighbour discovery working.
        assert_eq!(e.rich, EGRESS_BASE_RULES.iter().map(|r| r.to_string()).collect());
    }

    #[test]
    fn before_firewalld_1_0_egress_rules_name_each_destination() {
        // firewalld 0.9 (RHEL 8) refuses `destination ipset` in a rich rule ("attribute 'ipset'
        // outside of any element"); it takes `destination address`.
        assert!(!Features::of_version("0.9.11").destination_ipset);
        for v in ["1.3.3", "2.5.0", "", "unknown"] {
            assert!(Features::of_version(v).destination_ipset, "{v}");
        }
        let mut p = Policy::default();
        egress(&mut p, true, &[("entra", "20.190.128.0/18", 443), ("entra", "2603:1006::/40", 443)]);
        let old = desired_with(&p, &[], Features { destination_ipset: false }).egress.unwrap();
        let mine: Vec<&String> = old.rich.iter().filter(|r| !EGRESS_BASE_RULES.contains(&r.as_str())).collect();
        assert_eq!(
            mine,
            [
                "rule family=\"ipv4\" destination address=\"20.190.128.0/18\" port port=\"443\" protocol=\"tcp\" accept",
                "rule family=\"ipv6\" destination address=\"2603:1006::/40\" port port=\"443\" protocol=\"tcp\" accept",
            ]
        );
        assert!(!old.rich.iter().any(|r| r.contains("ipset")));
        // A list that changes changes rules, not set entries.
        let mut q = p.clone();
        q.sets.get_mut(&("entra".into(), Family::V4)).unwrap().push("40.126.0.0/18".parse().unwrap());
        let new = desired_with(&q, &[], Features { destination_ipset: false });
        let want_old = desired_with(&p, &[], Features { destination_ipset: false });
        let ops = diff(Some(&want_old), &want_old, &new);
        let added =
            "rule family=\"ipv4\" destination address=\"40.126.0.0/18\" port port=\"443\" protocol=\"tcp\" accept";
        assert!(has_egress_rule(&ops, Layer::Runtime, true, added), "{ops:?}");
        assert!(!ops.contains(&Op::Reload), "{ops:?}");
    }

    #[test]
    fn egress_accepts_become_destination_rules_on_their_sets() {
        let mut p = Policy::default();
        egress(&mut p, false, &[("entra", "20.190.128.0/18", 443), ("entra", "2603:1006::/40", 443)]);
        let d = desired(&p, &[]);
        assert!(d.ipsets.contains_key("vorfw-entra-4") && d.ipsets.contains_key("vorfw-entra-6"));
        let e = d.egress.unwrap();
        assert_eq!(e.target, "CONTINUE");
        assert_eq!(
            e.rich.iter().collect::<Vec<_>>(),
            [
                "rule family=\"ipv4\" destination ipset=\"vorfw-entra-4\" port port=\"443\" protocol=\"tcp\" accept",
                "rule family=\"ipv6\" destination ipset=\"vorfw-entra-6\" port port=\"443\" protocol=\"tcp\" accept",
            ]
        );
        // Not ours in a zone: the inbound ownership test looks at sources only.
        assert!(!is_owned_rule(e.rich.iter().next().unwrap()));
    }

    #[test]
    fn new_egress_policy_is_created_permanently_after_its_sets_then_reloaded() {
        let mut p = Policy::default();
        egress(&mut p, true, &[("dns", "10.0.0.53/32", 53)]);
        let want = desired(&p, &[]);
        assert!(diff(Some(&want), &want, &want).is_empty());
        let ops = diff(Some(&Owned::default()), &Owned::default(), &want);
        let set = ops.iter().position(|o| matches!(o, Op::NewIpset { name, .. } if name == "vorfw-dns-4")).unwrap();
        let new = ops.iter().position(|o| matches!(o, Op::NewPolicy { .. })).unwrap();
        let rule = "rule family=\"ipv4\" destination ipset=\"vorfw-dns-4\" port port=\"53\" protocol=\"tcp\" accept";
        let add = ops
            .iter()
            .position(|o| matches!(o, Op::AddPolicyRich { layer: Layer::Permanent, rule: r, .. } if r == rule))
            .unwrap();
        assert!(set < new && new < add);
        assert_eq!(
            ops[new],
            Op::NewPolicy {
                name: EGRESS_POLICY.into(),
                target: "REJECT".into(),
                ingress_zones: BTreeSet::from(["HOST".into()]),
                egress_zones: BTreeSet::from(["ANY".into()]),
            }
        );
        assert_eq!(ops.last(), Some(&Op::Reload));
        // Even when every ipset exists at runtime already, a missing runtime policy needs a reload.
        let mut rt = want.clone();
        rt.egress = None;
        assert_eq!(diff(Some(&rt), &want, &want), vec![Op::Reload]);
        // Offline: permanent only, no reload.
        assert!(diff(None, &Owned::default(), &want).iter().all(|o| *o != Op::Reload));
    }

    #[test]
    fn egress_rules_change_in_place_at_runtime() {
        let mut p = Policy::default();
        egress(&mut p, true, &[("ntp", "10.0.0.123/32", 123)]);
        let old = desired(&p, &[]);
        let mut p = Policy::default();
        egress(&mut p, true, &[("ntp", "10.0.0.123/32", 1123)]);
        let new = desired(&p, &[]);
        let ops = diff(Some(&old), &old, &new);
        assert!(!ops.contains(&Op::Reload));
        let added = "rule family=\"ipv4\" destination ipset=\"vorfw-ntp-4\" port port=\"1123\" protocol=\"tcp\" accept";
        let removed =
            "rule family=\"ipv4\" destination ipset=\"vorfw-ntp-4\" port port=\"123\" protocol=\"tcp\" accept";
        for layer in [Layer::Permanent, Layer::Runtime] {
            assert!(has_egress_rule(&ops, layer, true, added), "{layer}: {ops:?}");
            assert!(has_egress_rule(&ops, layer, false, removed), "{layer}: {ops:?}");
        }
        assert_eq!(ops.len(), 4);
    }

    #[test]
    fn egress_target_flip_is_permanent_then_reload() {
        let mut p = Policy::default();
        egress(&mut p, false, &[("entra", "10.0.0.0/24", 443)]);
        let open = desired(&p, &[]);
        p.set_egress_restricted(true);
        let restricted = desired(&p, &[]);
        let ops = diff(Some(&open), &open, &restricted);
        assert!(ops.contains(&Op::SetPolicyTarget { name: EGRESS_POLICY.into(), target: "REJECT".into() }));
        for r in EGRESS_BASE_RULES {
            assert!(has_egress_rule(&ops, Layer::Permanent, true, r));
        }
        assert_eq!(ops.last(), Some(&Op::Reload));
        assert!(!ops.iter().any(|o| matches!(o, Op::AddPolicyRich { layer: Layer::Runtime, .. })));
        // And back: the base rules go, the target is CONTINUE again.
        let ops = diff(Some(&restricted), &restricted, &open);
        assert!(ops.contains(&Op::SetPolicyTarget { name: EGRESS_POLICY.into(), target: "CONTINUE".into() }));
        assert!(has_egress_rule(&ops, Layer::Permanent, false, EGRESS_BASE_RULES[0]));
        assert_eq!(ops.last(), Some(&Op::Reload));
    }

    #[test]
    fn egress_policy_is_purged_when_egress_is_empty() {
        let mut p = Policy::default();
        egress(&mut p, true, &[("t-1", "10.0.0.9/32", 5432)]);
        let old = desired(&p, &[]);
        let new = desired(&Policy::default(), &[]);
        assert_eq!(new.egress, None);
        let ops = diff(Some(&old), &old, &new);
        let del = ops.iter().position(|o| *o == Op::DeletePolicy { name: EGRESS_POLICY.into() }).unwrap();
        let set = ops.iter().position(|o| matches!(o, Op::DeleteIpset { name } if name == "vorfw-t-1-4")).unwrap();
        // The policy (whose rules use the set) goes before the set.
        assert!(del < set);
        assert_eq!(ops.last(), Some(&Op::Reload));
        // A policy reshaped by hand is deleted and created anew.
        let mut odd = old.clone();
        odd.egress.as_mut().unwrap().egress_zones = BTreeSet::from(["public".into()]);
        let ops = diff(None, &odd, &old);
        assert_eq!(ops[0], Op::DeletePolicy { name: EGRESS_POLICY.into() });
        assert!(matches!(ops[1], Op::NewPolicy { .. }));
        assert_eq!(ops.len(), 2 + old.egress.as_ref().unwrap().rich.len());
    }

    #[test]
    fn render_shows_the_policy_line_by_line() {
        let mut p = Policy::default();
        egress(&mut p, true, &[]);
        let r = render(&desired(&p, &[]));
        assert!(r.starts_with("policy vorfw-egress: HOST -> ANY, target REJECT\n"));
        assert_eq!(r.lines().count(), 1 + EGRESS_BASE_RULES.len());
        assert!(r.lines().skip(1).all(|l| l.starts_with("policy vorfw-egress: rule ")));
    }

    #[test]
    fn render_is_line_per_object() {
        let want = desired(&policy(&[("g-x", &["10.0.0.1/32"])], &[("g-x", 100)]), &["public".into()]);
        let r = render(&want);
        assert_eq!(r.lines().count(), 2);
        assert!(r.starts_with("ipset vorfw-g-x-4 (inet): 10.0.0.1/32\n"));
    }
}

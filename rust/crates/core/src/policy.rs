//! A host's policy in backend-neutral terms: named address sets per family and the
//! (set, family, protocol, port) pairs to accept, inbound and outbound. firewalld, ufw and nftables each translate
//! this into their own objects; computing it is pure.

use crate::error::{Error, Result};
use crate::matrix::Matrix;
use crate::plan::Proto;
use crate::wire;
use ipnet::IpNet;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn of(n: &IpNet) -> Family {
        match n {
            IpNet::V4(_) => Family::V4,
            IpNet::V6(_) => Family::V6,
        }
    }
    pub fn suffix(self) -> &'static str {
        match self {
            Family::V4 => "4",
            Family::V6 => "6",
        }
    }
}

/// The set key and rule id of the lockout guard (SSH from the controller).
pub const GUARD_SET: &str = "ctl";
pub const GUARD_ID: &str = "lockout-guard";

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Accept {
    pub set: String,
    pub family: Family,
    pub protocol: Proto,
    pub port: u16,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// Address sets: (key, family) → aggregated, sorted, non-overlapping networks. Inbound
    /// (sources) and outbound (destinations) sets share this map; their keys never collide.
    pub sets: BTreeMap<(String, Family), Vec<IpNet>>,
    /// What to accept inbound (the set holds sources), with the plan rule ids behind each entry.
    pub accepts: BTreeMap<Accept, BTreeSet<String>>,
    pub egress: Egress,
    /// Not errors, but worth a word to the operator.
    pub warnings: Vec<String>,
}

/// Outbound traffic. With `restricted`, everything the host sends is rejected except loopback,
/// established traffic and `accepts`; otherwise `accepts` only keeps the Entra ID set current.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Egress {
    pub restricted: bool,
    /// What to accept outbound (the set holds destinations), with rule ids.
    pub accepts: BTreeMap<Accept, BTreeSet<String>>,
}

/// What only the host itself knows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostFacts {
    /// The Entra ID list the host holds (`None`: no list yet).
    pub entra: Option<Vec<IpNet>>,
    /// The resolvers the host uses (resolv.conf), for DNS when `host_firewall_dns_servers` is unset.
    pub nameservers: Vec<IpAddr>,
}

/// The set key of the Entra ID list.
pub fn entra_set() -> &'static str {
    &Matrix::embedded().egress.identity_provider.set
}

/// Collects sets and accepts, checking that a set key always names the same members.
#[derive(Default)]
struct Builder {
    raw: BTreeMap<(String, Family), Vec<IpNet>>,
    seen: BTreeMap<String, Vec<IpNet>>,
}

impl Builder {
    fn add(
        &mut self,
        accepts: &mut BTreeMap<Accept, BTreeSet<String>>,
        set: &str,
        id: &str,
        port: u16,
        protocol: &str,
        nets: Vec<IpNet>,
    ) -> Result<()> {
        let protocol =
            Proto::parse(protocol).ok_or_else(|| Error::new(format!("rule {id}: invalid protocol '{protocol}'")))?;
        if port == 0 {
            return Err(Error::new(format!("rule {id}: port 0 is out of range 1-65535")));
        }
        let mut sorted = nets.clone();
        sorted.sort();
        sorted.dedup();
        match self.seen.get(set) {
            Some(prev) if *prev != sorted => {
                return Err(Error::new(format!("rule {id}: peer set {set} has different members in different rules")))
            }
            Some(_) => {}
            None => {
                self.seen.insert(set.to_string(), sorted);
            }
        }
        for fam in [Family::V4, Family::V6] {
            let members: Vec<IpNet> = nets.iter().filter(|n| Family::of(n) == fam).copied().collect();
            if members.is_empty() {
                continue;
            }
            self.raw.entry((set.to_string(), fam)).or_default().extend(members);
            accepts
                .entry(Accept { set: set.to_string(), family: fam, protocol, port })
                .or_default()
                .insert(id.to_string());
        }
        Ok(())
    }

    fn finish(self, p: &mut Policy) {
        for (k, v) in self.raw {
            p.sets.insert(k, IpNet::aggregate(&v));
        }
    }
}

fn parse_nets(id: &str, list: &[String]) -> Result<Vec<IpNet>> {
    list.iter()
        .map(|s| {
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                .map(|n| n.trunc())
                .map_err(|_| Error::new(format!("rule {id}: malformed CIDR '{s}'")))
        })
        .collect()
}

/// The inbound policy of one host. `controller` is the controller's address as the host sees
/// it: when `host_firewall_management_sources` is unset, SSH stays open from it.
pub fn inbound(plan: &wire::HostPlan, controller: Option<IpAddr>) -> Result<Policy> {
    let mut p = Policy::default();
    let mut b = Builder::default();
    for r in &plan.inbound {
        b.add(&mut p.accepts, &r.set, &r.id, r.port, &r.protocol, parse_nets(&r.id, &r.sources)?)?;
    }
    if let (None, Some(ctl)) = (&plan.management_sources, controller) {
        let m = &Matrix::embedded().management;
        for proto in &m.protocols {
            b.add(&mut p.accepts, GUARD_SET, GUARD_ID, m.port, proto, vec![IpNet::from(ctl)])?;
        }
    }
    b.finish(&mut p);
    Ok(p)
}

/// The whole policy of one host: inbound, and outbound (see [`Egress`]).
///
/// Restricted egress admits the plan's outbound flows, DNS to `host_firewall_dns_servers` (else
/// the host's resolvers), NTP to `host_firewall_ntp_servers`, the extra egress rules and, on
/// OIDC clients, HTTPS to the Entra ID list. Open egress keeps only the Entra ID set (so the
/// list stays current and switching to restricted is immediate).
pub fn host(plan: &wire::HostPlan, controller: Option<IpAddr>, facts: &HostFacts) -> Result<Policy> {
    let mut p = inbound(plan, controller)?;
    let restricted = match plan.egress.as_str() {
        "open" => false,
        "restricted" => true,
        other => {
            return Err(Error::new(format!(
                "host_firewall_egress: invalid value '{other}' (expected one of: open, restricted)"
            )))
        }
    };
    p.egress.restricted = restricted;
    let m = Matrix::embedded();
    let mut b = Builder::default();
    let mut acc = BTreeMap::new();
    if plan.entra {
        let idp = &m.egress.identity_provider;
        match &facts.entra {
            Some(list) if !list.is_empty() => {
                for proto in &idp.protocols {
                    b.add(&mut acc, &idp.set, &idp.id, idp.port, proto, list.clone())?;
                }
            }
            _ if restricted => {
                return Err(Error::new(
                    "host_firewall_egress is restricted and the host runs an OIDC client, but it holds no Entra ID \
                     list yet, so sign-in would break: run the vorstream.firewall.entra_egress role first (or set \
                     host_firewall_entra: false and allow your OIDC provider with host_firewall_egress_extra_rules)",
                ))
            }
            _ => p.warnings.push(
                "no Entra ID list on this host yet: the Entra ID set is not installed (run the entra_egress role)"
                    .into(),
            ),
        }
    }
    if restricted {
        for r in &plan.outbound {
            b.add(&mut acc, &r.set, &r.id, r.port, &r.protocol, parse_nets(&r.id, &r.destinations)?)?;
        }
        for r in &plan.egress_extra {
            b.add(&mut acc, &r.set, &r.id, r.port, &r.protocol, parse_nets(&r.id, &r.destinations)?)?;
        }
        let dns = &m.egress.dns;
        let servers: Vec<IpNet> = match &plan.dns_servers {
            Some(list) => parse_nets(&dns.id, list)?,
            None => facts.nameservers.iter().map(|a| IpNet::from(*a)).collect(),
        };
        // Loopback resolvers (systemd-resolved, dnsmasq) are reached over lo, always allowed.
        let servers: Vec<IpNet> = servers.into_iter().filter(|n| !n.addr().is_loopback()).collect();
        if servers.is_empty() && plan.dns_servers.is_none() && facts.nameservers.is_empty() {
            p.warnings.push(
                "restricted egress: no DNS servers (host_firewall_dns_servers unset, none in resolv.conf)".into(),
            );
        }
        for proto in &dns.protocols {
            b.add(&mut acc, &dns.set, &dns.id, dns.port, proto, servers.clone())?;
        }
        let ntp = &m.egress.ntp;
        let servers = parse_nets(&ntp.id, &plan.ntp_servers)?;
        for proto in &ntp.protocols {
            b.add(&mut acc, &ntp.set, &ntp.id, ntp.port, proto, servers.clone())?;
        }
    }
    // Outbound keys must not collide with inbound ones (they never do with planner output).
    for ((key, _), _) in b.raw.iter() {
        if p.sets.keys().any(|(k, _)| k == key) {
            return Err(Error::new(format!("set {key} is used both for sources and for destinations")));
        }
    }
    b.finish(&mut p);
    p.egress.accepts = acc;
    Ok(p)
}

/// A backend object name for a set key: `<prefix><key>-<4|6>`, at most `max` characters,
/// using only `[A-Za-z0-9_-]`. A key that is not clean or does not fit gets a short hash
/// (`<prefix><start>_<6 hex>-<4|6>`); so does a clean key that already ends like a hashed one, so
/// a group named `dc1_web_61076b` can never take the name of group `dc1.web`. Hash collisions
/// between two keys of one host are refused by the planner ([`naming_collisions`]).
pub fn object_name(prefix: &str, key: &str, family: Family, max: usize) -> String {
    let clean: String =
        key.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
    let tail = format!("-{}", family.suffix());
    let full = format!("{prefix}{clean}{tail}");
    if full.len() <= max && clean == key && !looks_hashed(key) {
        return full;
    }
    // FNV-1a: stable across builds and platforms.
    let mut h: u32 = 0x811c9dc5;
    for b in key.bytes() {
        h = (h ^ u32::from(b)).wrapping_mul(0x01000193);
    }
    let hash = format!("{:06x}", h & 0xffffff);
    let room = max.saturating_sub(prefix.len() + tail.len() + hash.len() + 1);
    let short: String = clean.chars().take(room).collect();
    format!("{prefix}{short}_{hash}{tail}")
}

/// `…_<6 lowercase hex>`: the shape [`object_name`] gives hashed keys.
fn looks_hashed(key: &str) -> bool {
    let b = key.as_bytes();
    b.len() > 7 && b[b.len() - 7] == b'_' && b[b.len() - 6..].iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

/// How one backend names its objects: a prefix and a length limit.
#[derive(Clone, Copy, Debug)]
pub struct Naming {
    pub backend: &'static str,
    pub what: &'static str,
    pub prefix: &'static str,
    pub max: usize,
}

/// firewalld ipsets: `vorfw-…`, at most 31 characters (the kernel's limit).
pub const FIREWALLD_NAMING: Naming = Naming { backend: "firewalld", what: "ipset", prefix: "vorfw-", max: 31 };
/// nftables named sets in table `inet vorstream`.
pub const NFTABLES_NAMING: Naming = Naming { backend: "nftables", what: "set", prefix: "", max: 64 };

/// Pairs of distinct set keys that one backend would give the same object name, with that name.
pub fn naming_collisions<'a>(keys: impl IntoIterator<Item = &'a str>) -> Vec<(String, String, String)> {
    let keys: BTreeSet<&str> = keys.into_iter().collect();
    let mut out = Vec::new();
    for n in [FIREWALLD_NAMING, NFTABLES_NAMING] {
        for fam in [Family::V4, Family::V6] {
            let mut seen: BTreeMap<String, &str> = BTreeMap::new();
            for k in &keys {
                let name = object_name(n.prefix, k, fam, n.max);
                if let Some(other) = seen.insert(name.clone(), k) {
                    out.push((other.to_string(), k.to_string(), format!("{} {} {name}", n.backend, n.what)));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(set: &str, id: &str, port: u16, proto: &str, sources: &[&str]) -> wire::InRule {
        wire::InRule {
            id: id.into(),
            port,
            protocol: proto.into(),
            sources: sources.iter().map(|s| s.to_string()).collect(),
            set: set.into(),
            purpose: "p".into(),
            label: "l".into(),
        }
    }

    fn plan(rules: Vec<wire::InRule>, mgmt: Option<Vec<String>>) -> wire::HostPlan {
        wire::HostPlan {
            name: "h".into(),
            addresses: vec!["10.0.0.1".into()],
            groups: vec![],
            services: vec![],
            backend: "auto".into(),
            management_sources: mgmt,
            remove_zone_services: vec![],
            inbound: rules,
            outbound: vec![],
            egress: "open".into(),
            dns_servers: None,
            ntp_servers: vec![],
            entra: false,
            egress_extra: vec![],
        }
    }

    #[test]
    fn sets_are_split_by_family_aggregated_and_rules_merge() {
        let p = inbound(
            &plan(
                vec![
                    rule("a-admin", "r1", 100, "tcp", &["10.0.0.0/8", "10.1.0.0/16", "fd00::/8"]),
                    rule("a-admin", "r2", 100, "tcp", &["10.0.0.0/8", "10.1.0.0/16", "fd00::/8"]),
                ],
                Some(vec![]),
            ),
            Some("10.9.9.9".parse().unwrap()),
        )
        .unwrap();
        assert_eq!(p.sets[&("a-admin".into(), Family::V4)], vec!["10.0.0.0/8".parse::<IpNet>().unwrap()]);
        assert_eq!(p.sets.len(), 2);
        assert_eq!(p.accepts.len(), 2);
        let ids = p.accepts.values().next().unwrap();
        assert_eq!(ids.len(), 2);
    }

    #[test]
    fn lockout_guard_only_without_management_sources() {
        let ctl = Some("10.9.9.9".parse().unwrap());
        let p = inbound(&plan(vec![], None), ctl).unwrap();
        assert!(p.sets.contains_key(&(GUARD_SET.into(), Family::V4)));
        let p = inbound(&plan(vec![], Some(vec!["10.0.0.0/8".into()])), ctl).unwrap();
        assert!(p.sets.is_empty());
    }

    #[test]
    fn inconsistent_sets_and_bad_cidrs_are_errors() {
        let e = inbound(&plan(vec![rule("s", "r", 1, "tcp", &["10.0.0.0/33"])], None), None).unwrap_err();
        assert_eq!(e.0, "rule r: malformed CIDR '10.0.0.0/33'");
        let e = inbound(
            &plan(vec![rule("s", "r1", 1, "tcp", &["10.0.0.1"]), rule("s", "r2", 1, "tcp", &["10.0.0.2"])], None),
            None,
        )
        .unwrap_err();
        assert!(e.0.contains("different members"), "{e}");
    }

    fn out_rule(set: &str, id: &str, port: u16, dests: &[&str]) -> wire::OutRule {
        wire::OutRule {
            id: id.into(),
            port,
            protocol: "tcp".into(),
            destinations: dests.iter().map(|s| s.to_string()).collect(),
            set: set.into(),
            purpose: "p".into(),
            label: "l".into(),
        }
    }

    #[test]
    fn open_egress_keeps_only_the_entra_set() {
        let mut pl = plan(vec![], Some(vec![]));
        pl.entra = true;
        pl.outbound = vec![out_rule("t-x", "x", 1000, &["10.0.0.2"])];
        let facts = HostFacts { entra: Some(vec!["10.231.0.0/28".parse().unwrap()]), nameservers: vec![] };
        let p = host(&pl, None, &facts).unwrap();
        assert!(!p.egress.restricted);
        let idp = &Matrix::embedded().egress.identity_provider;
        let keys: Vec<_> = p.egress.accepts.keys().map(|a| (a.set.as_str(), a.port)).collect();
        assert_eq!(keys, vec![(idp.set.as_str(), idp.port)]);
        assert_eq!(p.sets[&(idp.set.clone(), Family::V4)], vec!["10.231.0.0/28".parse::<IpNet>().unwrap()]);
        // No list yet: a warning, no set.
        let p = host(&pl, None, &HostFacts::default()).unwrap();
        assert!(p.egress.accepts.is_empty() && p.warnings[0].contains("no Entra ID list"), "{:?}", p.warnings);
        // Not an OIDC client: nothing.
        pl.entra = false;
        assert!(host(&pl, None, &facts).unwrap().egress.accepts.is_empty());
    }

    #[test]
    fn restricted_egress_admits_plan_dns_ntp_extras_and_entra() {
        let mut pl = plan(vec![], Some(vec![]));
        pl.entra = true;
        pl.egress = "restricted".into();
        pl.outbound = vec![out_rule("t-x", "x", 1000, &["10.0.0.2", "fd00::2"])];
        pl.egress_extra = vec![out_rule("o-repo", "repo", 8443, &["192.0.2.0/24"])];
        pl.ntp_servers = vec!["10.0.0.123".into()];
        let facts = HostFacts {
            entra: Some(vec!["10.231.0.0/28".parse().unwrap()]),
            nameservers: vec!["127.0.0.53".parse().unwrap(), "10.0.0.53".parse().unwrap()],
        };
        let p = host(&pl, None, &facts).unwrap();
        assert!(p.egress.restricted);
        let m = Matrix::embedded();
        let sets: BTreeSet<&str> = p.egress.accepts.keys().map(|a| a.set.as_str()).collect();
        let want: BTreeSet<&str> =
            ["t-x", "o-repo", &m.egress.dns.set, &m.egress.ntp.set, &m.egress.identity_provider.set].into();
        assert_eq!(sets, want);
        // The loopback resolver is reached over lo; only the real one is a set member.
        assert_eq!(p.sets[&(m.egress.dns.set.clone(), Family::V4)], vec!["10.0.0.53/32".parse::<IpNet>().unwrap()]);
        // Configured DNS servers win over resolv.conf.
        pl.dns_servers = Some(vec!["10.9.9.9".into()]);
        let p = host(&pl, None, &facts).unwrap();
        assert_eq!(p.sets[&(m.egress.dns.set.clone(), Family::V4)], vec!["10.9.9.9/32".parse::<IpNet>().unwrap()]);
        // Restricted OIDC client without a list: refused, sign-in would break.
        let e = host(&pl, None, &HostFacts::default()).unwrap_err();
        assert!(e.0.contains("no Entra ID") && e.0.contains("entra_egress"), "{e}");
        pl.egress = "closed".into();
        assert!(host(&pl, None, &facts).unwrap_err().0.contains("invalid value 'closed'"));
    }

    #[test]
    fn object_names_fit_and_stay_unique() {
        assert_eq!(object_name("vorfw-", "g-super", Family::V4, 31), "vorfw-g-super-4");
        let a = object_name("vorfw-", "g-a-very-long-group-name-indeed-1", Family::V6, 31);
        let b = object_name("vorfw-", "g-a-very-long-group-name-indeed-2", Family::V6, 31);
        assert!(a.len() <= 31 && b.len() <= 31 && a != b, "{a} {b}");
        let c = object_name("vorfw-", "g-odd.name", Family::V4, 31);
        assert!(c.starts_with("vorfw-g-odd_name_") && c.ends_with("-4"), "{c}");
        // A group named like another's hashed name does not take it.
        let dotted = object_name("vorfw-", "g-dc1.web", Family::V4, 31);
        let lookalike = dotted.trim_start_matches("vorfw-").trim_end_matches("-4").to_string();
        assert_eq!(lookalike, "g-dc1_web_61076b");
        assert_ne!(object_name("vorfw-", &lookalike, Family::V4, 31), dotted);
        assert!(naming_collisions(["g-dc1.web", lookalike.as_str(), "g-super"]).is_empty());
        // A real hash collision is reported with both keys.
        let (a, b) = find_fnv_collision();
        let c = naming_collisions([a.as_str(), b.as_str()]);
        assert!(!c.is_empty() && c[0].2.starts_with("firewalld ipset vorfw-"), "{c:?}");
    }

    /// Two long keys whose 24-bit hashes and truncated starts agree.
    fn find_fnv_collision() -> (String, String) {
        let mut seen: std::collections::HashMap<String, String> = std::collections::HashMap::new();
        for i in 0u32.. {
            let k = format!("g-a-group-name-longer-than-the-limit-{i}");
            let n = object_name("vorfw-", &k, Family::V4, 31);
            if let Some(prev) = seen.insert(n, k.clone()) {
                return (prev, k);
            }
        }
        unreachable!()
    }
}

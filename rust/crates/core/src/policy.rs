//! A host's inbound policy in backend-neutral terms: named address sets per family and the
//! (set, family, protocol, port) pairs to accept. firewalld, ufw and nftables each translate
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
    /// Address sets: (key, family) → aggregated, sorted, non-overlapping networks.
    pub sets: BTreeMap<(String, Family), Vec<IpNet>>,
    /// What to accept, with the plan rule ids behind each entry.
    pub accepts: BTreeMap<Accept, BTreeSet<String>>,
}

/// The inbound policy of one host. `controller` is the controller's address as the host sees
/// it: when `host_firewall_management_sources` is unset, SSH stays open from it.
pub fn inbound(plan: &wire::HostPlan, controller: Option<IpAddr>) -> Result<Policy> {
    let mut raw: BTreeMap<(String, Family), Vec<IpNet>> = BTreeMap::new();
    let mut seen_key: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut p = Policy::default();
    let mut add = |set: &str, id: &str, port: u16, protocol: &str, sources: &[String]| -> Result<()> {
        let protocol =
            Proto::parse(protocol).ok_or_else(|| Error::new(format!("rule {id}: invalid protocol '{protocol}'")))?;
        if port == 0 {
            return Err(Error::new(format!("rule {id}: port 0 is out of range 1-65535")));
        }
        let mut nets = vec![];
        for s in sources {
            let n: IpNet = s
                .parse()
                .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| Error::new(format!("rule {id}: malformed CIDR '{s}'")))?;
            nets.push(n.trunc());
        }
        let mut sorted = sources.to_vec();
        sorted.sort();
        match seen_key.get(set) {
            Some(prev) if *prev != sorted => {
                return Err(Error::new(format!("rule {id}: peer set {set} has different members in different rules")))
            }
            _ => {
                seen_key.insert(set.to_string(), sorted);
            }
        }
        for fam in [Family::V4, Family::V6] {
            let members: Vec<IpNet> = nets.iter().filter(|n| Family::of(n) == fam).copied().collect();
            if members.is_empty() {
                continue;
            }
            raw.entry((set.to_string(), fam)).or_default().extend(members);
            p.accepts
                .entry(Accept { set: set.to_string(), family: fam, protocol, port })
                .or_default()
                .insert(id.to_string());
        }
        Ok(())
    };
    for r in &plan.inbound {
        add(&r.set, &r.id, r.port, &r.protocol, &r.sources)?;
    }
    if let (None, Some(ctl)) = (&plan.management_sources, controller) {
        let m = &Matrix::embedded().management;
        for proto in &m.protocols {
            add(GUARD_SET, GUARD_ID, m.port, proto, &[ctl.to_string()])?;
        }
    }
    for (k, v) in raw {
        p.sets.insert(k, IpNet::aggregate(&v));
    }
    Ok(p)
}

/// A backend object name for a set key: `<prefix><key>-<4|6>`, at most `max` characters,
/// using only `[A-Za-z0-9_-]` (a short hash keeps long or unusual keys unique).
pub fn object_name(prefix: &str, key: &str, family: Family, max: usize) -> String {
    let clean: String =
        key.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
    let tail = format!("-{}", family.suffix());
    let full = format!("{prefix}{clean}{tail}");
    if full.len() <= max && clean == key {
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

    #[test]
    fn object_names_fit_and_stay_unique() {
        assert_eq!(object_name("vorfw-", "g-super", Family::V4, 31), "vorfw-g-super-4");
        let a = object_name("vorfw-", "g-a-very-long-group-name-indeed-1", Family::V6, 31);
        let b = object_name("vorfw-", "g-a-very-long-group-name-indeed-2", Family::V6, 31);
        assert!(a.len() <= 31 && b.len() <= 31 && a != b, "{a} {b}");
        let c = object_name("vorfw-", "g-odd.name", Family::V4, 31);
        assert!(c.starts_with("vorfw-g-odd_name_") && c.ends_with("-4"), "{c}");
    }
}

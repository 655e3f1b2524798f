//! What to probe to prove a host's firewall: from each host, every port the matrix (and the
//! plans' extra rules) uses, on every other host, with the verdict the plans imply.

use crate::matrix::Matrix;
use crate::plan::HostPlan;
use crate::plan::{Plans, Proto};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Probe {
    pub dst: IpAddr,
    pub port: u16,
    pub protocol: &'static str,
    /// `allowed`, `blocked`, or `blocked-at-source` (the source's restricted egress stops it).
    pub expect: &'static str,
    pub label: String,
    /// The rule ids that admit it, or why not (what classes of sources are told apart by).
    #[serde(skip)]
    pub why: String,
}

/// Every (port, protocol) worth probing: the matrix's rows and every planned inbound rule.
fn ports(plans: &Plans, m: &Matrix, include_management: bool) -> BTreeSet<(u16, Proto)> {
    let mut out = BTreeSet::new();
    let rows = m
        .internal
        .iter()
        .map(|r| (r.port, &r.protocols))
        .chain(m.external.iter().map(|r| (r.port, &r.protocols)))
        .chain(std::iter::once((m.management.port, &m.management.protocols)));
    for (port, protos) in rows {
        for p in protos {
            out.insert((port, Proto::of(p)));
        }
    }
    for h in &plans.hosts {
        for r in &h.inbound {
            out.insert((r.port, r.protocol));
        }
    }
    if !include_management {
        for p in &m.management.protocols {
            out.remove(&(m.management.port, Proto::of(p)));
        }
    }
    out
}

/// How much to probe. `Full`: every port of every host from every other host (hosts² ×
/// ports). `Covering`: for each target, one source of each class of sources, a class being
/// the sources for which the target's plan gives the same verdicts on every port (the same
/// rules admit them, the same ports are forbidden, the same egress stops them): every rule
/// is still proven with a source host of each kind it admits, and every forbidden class with
/// one it refuses. Representatives rotate over the class, so the probing is spread.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Coverage {
    #[default]
    Full,
    Covering,
}

impl Coverage {
    pub fn parse(what: &str, s: &str) -> crate::error::Result<Coverage> {
        match s {
            "full" => Ok(Coverage::Full),
            "covering" => Ok(Coverage::Covering),
            other => {
                Err(crate::Error::new(format!("{what}: invalid value '{other}' (expected one of: full, covering)")))
            }
        }
    }
}

/// What a probe plan covers, for its summary.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Covered {
    pub coverage: Coverage,
    /// Targets, and (target, source class) pairs probed.
    pub targets: usize,
    pub classes: usize,
    pub probes: usize,
    /// What full coverage would probe.
    pub full_probes: usize,
}

impl Covered {
    pub fn sentence(&self) -> String {
        match self.coverage {
            Coverage::Full => format!(
                "full: {} probes, every port of each of {} targets from every other host",
                self.probes, self.targets
            ),
            Coverage::Covering => format!(
                "covering: {} probes of the {} of full coverage; each of {} targets from one source of each of its \
                 {} source classes (sources the target's plan treats alike on every port)",
                self.probes, self.full_probes, self.targets, self.classes
            ),
        }
    }
}

/// What a probe tells apart: port, protocol, expected verdict, the rules (or why not), family.
type Verdict = (u16, &'static str, &'static str, String, bool);

/// The probes each host of `sources` should run, and what they cover.
pub fn plan_probes(
    plans: &Plans,
    m: &Matrix,
    sources: &[&str],
    include_management: bool,
    coverage: Coverage,
) -> (BTreeMap<String, Vec<Probe>>, Covered) {
    let ports = ports(plans, m, include_management);
    let mut out: BTreeMap<String, Vec<Probe>> = sources.iter().map(|s| (s.to_string(), vec![])).collect();
    let srcs: Vec<&HostPlan> = plans.hosts.iter().filter(|h| sources.contains(&h.name.as_str())).collect();
    let mut covered = Covered { coverage, targets: plans.hosts.len(), ..Default::default() };
    for (ti, t) in plans.hosts.iter().enumerate() {
        // Sources by the verdicts the target gives them (label and address aside).
        let mut classes: BTreeMap<Vec<Verdict>, Vec<(&str, Vec<Probe>)>> = BTreeMap::new();
        for s in srcs.iter().filter(|s| s.name != t.name) {
            let probes = pair(s, t, &ports);
            covered.full_probes += probes.len();
            let sig = probes.iter().map(|p| (p.port, p.protocol, p.expect, p.why.clone(), p.dst.is_ipv4())).collect();
            classes.entry(sig).or_default().push((&s.name, probes));
        }
        for (_, mut members) in classes {
            covered.classes += 1;
            let chosen = match coverage {
                Coverage::Full => members,
                Coverage::Covering => {
                    let i = ti % members.len();
                    vec![members.swap_remove(i)]
                }
            };
            for (name, probes) in chosen {
                covered.probes += probes.len();
                out.get_mut(name).expect("a source").extend(probes);
            }
        }
    }
    (out, covered)
}

/// The probes host `src` should run (full coverage). Each says whether the target's plan
/// admits `src` there.
pub fn probes(plans: &Plans, m: &Matrix, src: &str, include_management: bool) -> Vec<Probe> {
    plan_probes(plans, m, &[src], include_management, Coverage::Full).0.remove(src).unwrap_or_default()
}

/// The probes from `s` to `t`: every port on each of `t`'s addresses of a family `s` has.
fn pair(s: &HostPlan, t: &HostPlan, ports: &BTreeSet<(u16, Proto)>) -> Vec<Probe> {
    let restricted = s.options.egress == crate::request::EgressMode::Restricted;
    let mut out = vec![];
    for dst in &t.addresses {
        let mine: Vec<IpAddr> = s.addresses.iter().filter(|a| a.is_ipv4() == dst.is_ipv4()).copied().collect();
        if mine.is_empty() || s.addresses.contains(dst) {
            continue;
        }
        for &(port, proto) in ports {
            let ids: BTreeSet<&str> = t
                .inbound
                .iter()
                .filter(|r| r.port == port && r.protocol == proto)
                .filter(|r| t.peers(r).any(|net| mine.iter().any(|a| net.contains(a))))
                .map(|r| &*r.id)
                .collect();
            let admitted = !ids.is_empty();
            let leaves = !restricted
                || s.outbound
                    .iter()
                    .any(|r| r.port == port && r.protocol == proto && s.peers(r).any(|net| net.contains(dst)))
                || s.options.egress_extra_rules.iter().any(|x| {
                    x.port == port
                        && x.protocols.iter().any(|p| p == proto.as_str())
                        && x.destinations.iter().any(|net| net.contains(dst))
                });
            let (expect, why) = match (admitted, leaves) {
                (true, true) => ("allowed", ids.into_iter().collect::<Vec<_>>().join(",")),
                (_, false) => ("blocked-at-source", "not in the source's egress".to_string()),
                (false, true) => ("blocked", "not in plan".to_string()),
            };
            out.push(Probe {
                dst: *dst,
                port,
                protocol: proto.as_str(),
                expect,
                label: format!("{} -> {} {port}/{proto} ({why})", s.name, t.name),
                why,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{plan, Inventory};
    use serde_json::json;

    fn fleet() -> Plans {
        // Five compute hosts (one class for every target), two consul servers, one web host.
        let mut hostvars = serde_json::Map::new();
        let mut compute = vec![];
        for i in 1..=5 {
            hostvars.insert(format!("c{i}"), json!({"ansible_host": format!("10.0.1.{i}")}));
            compute.push(format!("c{i}"));
        }
        for (h, a) in [("s1", "10.0.2.1"), ("s2", "10.0.2.2"), ("w1", "10.0.3.1")] {
            hostvars.insert(h.into(), json!({"ansible_host": a}));
        }
        let inv = json!({"_meta": {"hostvars": hostvars}, "compute": {"hosts": compute},
                         "consul": {"hosts": ["s1", "s2"]}, "web": {"hosts": ["w1"]}});
        let inv = Inventory::from_ansible_json(&inv).unwrap();
        plan(&inv, Matrix::embedded(), &mut |_: &str| Err("no DNS".to_string())).unwrap()
    }

    /// Per target, the verdict classes the probes exercise: (port, protocol, verdict, rules).
    fn verdicts(p: &BTreeMap<String, Vec<Probe>>) -> BTreeSet<(String, u16, &'static str, &'static str, String)> {
        p.values()
            .flatten()
            .map(|x| (x.label.split(' ').nth(2).unwrap().to_string(), x.port, x.protocol, x.expect, x.why.clone()))
            .collect()
    }

    #[test]
    fn covering_probes_every_verdict_of_every_target_with_fewer_probes() {
        let plans = fleet();
        let all: Vec<&str> = plans.hosts.iter().map(|h| h.name.as_str()).collect();
        let m = Matrix::embedded();
        let (full, f) = plan_probes(&plans, m, &all, false, Coverage::Full);
        let (cover, c) = plan_probes(&plans, m, &all, false, Coverage::Covering);
        assert_eq!(verdicts(&full), verdicts(&cover));
        assert!(verdicts(&full).iter().any(|v| v.3 == "allowed") && verdicts(&full).iter().any(|v| v.3 == "blocked"));
        assert_eq!((f.probes, f.full_probes), (c.full_probes, c.full_probes));
        assert!(c.probes * 2 < f.probes, "{c:?} {f:?}");
        assert_eq!(c.probes, cover.values().map(Vec::len).sum::<usize>());
        // A compute target: the other four compute hosts are one class, probed by one of them.
        let from_compute = |p: &BTreeMap<String, Vec<Probe>>| {
            p.iter().filter(|(s, v)| s.starts_with('c') && v.iter().any(|x| x.label.contains("-> c3 "))).count()
        };
        assert_eq!((from_compute(&full), from_compute(&cover)), (4, 1));
        // The representatives rotate: more than one compute host probes.
        assert!(cover.iter().filter(|(s, v)| s.starts_with('c') && !v.is_empty()).count() > 1);
        assert!(c.sentence().starts_with("covering: ") && f.sentence().starts_with("full: "));
        // One source only: the same probes as before.
        assert_eq!(probes(&plans, m, "w1", false), full["w1"]);
    }
}

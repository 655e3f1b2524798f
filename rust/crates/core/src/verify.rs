//! What to probe to prove a host's firewall: from each host, every port the matrix (and the
//! plans' extra rules) uses, on every other host, with the verdict the plans imply.

use crate::matrix::Matrix;
use crate::plan::{Plans, Proto};
use serde::Serialize;
use std::collections::BTreeSet;
use std::net::IpAddr;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Probe {
    pub dst: IpAddr,
    pub port: u16,
    pub protocol: &'static str,
    /// `allowed`, `blocked`, or `blocked-at-source` (the source's restricted egress stops it).
    pub expect: &'static str,
    pub label: String,
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

/// The probes host `src` should run. Each says whether the target's plan admits `src` there.
pub fn probes(plans: &Plans, m: &Matrix, src: &str, include_management: bool) -> Vec<Probe> {
    let Some(s) = plans.hosts.iter().find(|h| h.name == src) else { return vec![] };
    let ports = ports(plans, m, include_management);
    let restricted = s.options.egress == crate::request::EgressMode::Restricted;
    let mut out = vec![];
    for t in plans.hosts.iter().filter(|t| t.name != s.name) {
        for dst in &t.addresses {
            let mine: Vec<IpAddr> = s.addresses.iter().filter(|a| a.is_ipv4() == dst.is_ipv4()).copied().collect();
            if mine.is_empty() || s.addresses.contains(dst) {
                continue;
            }
            for &(port, proto) in &ports {
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
                });
            }
        }
    }
    out
}

//! One host's plan as it travels from the planner to the apply modules (JSON).
//!
//! `vorfw plan --format json` and the `plan` module print exactly these structures; the
//! backends read them back. Keep field names stable: they are the modules' interface.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostPlan {
    pub name: String,
    pub addresses: Vec<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub services: Vec<String>,
    #[serde(default = "auto")]
    pub backend: String,
    /// `host_firewall_management_sources`; `None` when unset (the lockout guard applies).
    #[serde(default)]
    pub management_sources: Option<Vec<String>>,
    /// firewalld services to remove from the managed zones.
    #[serde(default)]
    pub remove_zone_services: Vec<String>,
    #[serde(default)]
    pub inbound: Vec<InRule>,
    #[serde(default)]
    pub outbound: Vec<OutRule>,
    /// `host_firewall_egress`: `open` or `restricted`.
    #[serde(default = "open")]
    pub egress: String,
    /// `host_firewall_dns_servers`; `None` when unset (the host's resolv.conf is used).
    #[serde(default)]
    pub dns_servers: Option<Vec<String>>,
    #[serde(default)]
    pub ntp_servers: Vec<String>,
    /// The host runs an OIDC client and keeps the Entra ID allow-list (`host_firewall_entra`).
    #[serde(default)]
    pub entra: bool,
    /// `host_firewall_egress_extra_rules`, one rule per protocol.
    #[serde(default)]
    pub egress_extra: Vec<OutRule>,
}

fn auto() -> String {
    "auto".into()
}

fn open() -> String {
    "open".into()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InRule {
    pub id: String,
    pub port: u16,
    pub protocol: String,
    pub sources: Vec<String>,
    /// The peer set's stable key (see [`crate::plan::Rule::set`]).
    pub set: String,
    pub purpose: String,
    pub label: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutRule {
    pub id: String,
    pub port: u16,
    pub protocol: String,
    pub destinations: Vec<String>,
    pub set: String,
    pub purpose: String,
    pub label: String,
}

impl HostPlan {
    pub fn from_plan(h: &crate::plan::HostPlan) -> HostPlan {
        let o = &h.options;
        let peers = |r: &crate::plan::Rule| h.peers(r).map(|p| p.to_string()).collect::<Vec<_>>();
        HostPlan {
            name: h.name.clone(),
            addresses: h.addresses.iter().map(|a| a.to_string()).collect(),
            groups: h.groups.clone(),
            services: h.services.clone(),
            backend: o.backend.clone(),
            management_sources: o.management_sources.as_ref().map(|v| v.iter().map(|n| n.to_string()).collect()),
            remove_zone_services: o.remove_zone_services.clone(),
            inbound: h
                .inbound
                .iter()
                .map(|r| InRule {
                    id: r.id.to_string(),
                    port: r.port,
                    protocol: r.protocol.as_str().into(),
                    sources: peers(r),
                    set: r.set.to_string(),
                    purpose: r.purpose.to_string(),
                    label: r.label.to_string(),
                })
                .collect(),
            outbound: h
                .outbound
                .iter()
                .map(|r| OutRule {
                    id: r.id.to_string(),
                    port: r.port,
                    protocol: r.protocol.as_str().into(),
                    destinations: peers(r),
                    set: r.set.to_string(),
                    purpose: r.purpose.to_string(),
                    label: r.label.to_string(),
                })
                .collect(),
            egress: o.egress.clone(),
            dns_servers: o.dns_servers.as_ref().map(|v| v.iter().map(|n| n.to_string()).collect()),
            ntp_servers: o.ntp_servers.iter().map(|n| n.to_string()).collect(),
            entra: o.entra && crate::Matrix::embedded().is_oidc_client(&h.services),
            egress_extra: o
                .egress_extra_rules
                .iter()
                .flat_map(|x| {
                    x.protocols.iter().map(move |p| OutRule {
                        id: x.id.clone(),
                        port: x.port,
                        protocol: p.clone(),
                        destinations: x.destinations.iter().map(|n| n.to_string()).collect(),
                        set: format!("o-{}", x.id),
                        purpose: x.purpose.clone(),
                        label: "host_firewall_egress_extra_rules".into(),
                    })
                })
                .collect(),
        }
    }
}

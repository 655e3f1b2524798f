//! One host's request: the contract between the controller's plan of the fleet and the host.
//!
//! The controller prints a [`Fleet`]: a table of peer sets, each written once, and one
//! [`Entry`] per host whose rules name sets (`vorfw plan --format json` and the `plan` module).
//! A host receives its [`Request`]: its entry with the sets its rules use ([`Entry::resolve`]).
//! Everything here is parsed once, at the edge, into enums and addresses; later stages never
//! see an invalid backend, egress mode, protocol, port or CIDR.
//!
//! Keep field names stable: they are the modules' interface. Format `…/request/v1` (each rule
//! listing its own peers, no `format` field) is still read, so a host upgraded before its next
//! playbook run re-applies its recorded request.

use crate::error::{Error, Result};
use crate::matrix::Matrix;
use crate::plan::{HostPlan, NetSet, Plans, Rule};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

/// The format of a whole plan (`vorfw plan --format json`, the `plan` module's result).
pub const PLAN_FORMAT: &str = "vorstream.firewall/plan/v2";
/// The format of one host's request (the `apply` module's input, the host's record).
pub const REQUEST_FORMAT: &str = "vorstream.firewall/request/v2";

/// Declares a closed set of lowercase words: parsed once, with an error listing the choices.
macro_rules! words {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident = $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "lowercase")]
        pub enum $name { $($(#[$vm])* $v),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$v),+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$v => $s),+ }
            }
            /// `what` names the variable or argument in the error.
            pub fn parse(what: &str, s: &str) -> Result<$name> {
                match s { $($s => Ok($name::$v),)+
                    other => Err(Error::new(format!(
                        "{what}: invalid value '{other}' (expected one of: {})",
                        [$($s),+].join(", ")
                    ))),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

words!(
    /// A transport protocol of a rule.
    Proto { Tcp = "tcp", Udp = "udp" }
);
words!(
    /// `host_firewall_backend`.
    #[derive(Default)]
    BackendKind { #[default] Auto = "auto", Firewalld = "firewalld", Ufw = "ufw", Nftables = "nftables" }
);
words!(
    /// `host_firewall_egress`: `open` (only the Entra ID set is kept) or `restricted`.
    EgressMode { Open = "open", Restricted = "restricted" }
);
words!(
    /// What a peer set holds. `hosts`: the addresses of inventory hosts, from which each host
    /// leaves out its own; `networks`: CIDRs the operator wrote.
    Members { Hosts = "hosts", Networks = "networks" }
);

impl Proto {
    /// For data already checked (the matrix, validated options).
    pub fn of(s: &str) -> Proto {
        Proto::parse("protocol", s).expect("checked data holds tcp or udp")
    }
}

/// A peer set: aggregated to the fewest CIDRs covering exactly its addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerSet {
    pub members: Members,
    pub nets: Vec<IpNet>,
}

impl PeerSet {
    pub fn new(members: Members, nets: &[IpNet]) -> PeerSet {
        PeerSet { members, nets: IpNet::aggregate(&nets.to_vec()) }
    }

    /// The set as one host sees it: without its own addresses (loopback is always allowed).
    /// A `hosts` set leaves out every own address, splitting a CIDR that covers one; a
    /// `networks` set leaves out only entries that are exactly an own address.
    pub fn without(&self, own: &[IpAddr]) -> Vec<IpNet> {
        let own_nets: Vec<IpNet> = own.iter().map(|a| IpNet::from(*a)).collect();
        match self.members {
            Members::Networks => self.nets.iter().filter(|n| !own_nets.contains(n)).copied().collect(),
            Members::Hosts => {
                let mut nets = self.nets.clone();
                for a in own {
                    if nets.iter().any(|n| n.contains(a)) {
                        nets = nets.into_iter().flat_map(|n| exclude(n, *a)).collect();
                    }
                }
                IpNet::aggregate(&nets)
            }
        }
    }
}

/// `net` without the one address `a`: the siblings along the path from `net` down to `a`.
fn exclude(net: IpNet, a: IpAddr) -> Vec<IpNet> {
    if !net.contains(&a) {
        return vec![net];
    }
    let max = net.max_prefix_len();
    let mut out = Vec::new();
    for len in net.prefix_len() + 1..=max {
        let path = IpNet::new(a, len).expect("length within the family").trunc();
        // The sibling of `path` under its parent: flip the last bit of the prefix.
        let sibling = match path {
            IpNet::V4(n) => {
                let bit = 1u32 << (32 - u32::from(len));
                IpNet::new(IpAddr::from((u32::from(n.network()) ^ bit).to_be_bytes()), len)
            }
            IpNet::V6(n) => {
                let bit = 1u128 << (128 - u32::from(len));
                IpNet::new(IpAddr::from((u128::from(n.network()) ^ bit).to_be_bytes()), len)
            }
        };
        out.push(sibling.expect("length within the family"));
    }
    out
}

/// One rule of a request: what to admit, from (or to) which set, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleRef {
    pub id: String,
    pub port: u16,
    pub protocol: Proto,
    /// The set's key: backends name their address sets after it, so membership changes
    /// update a set in place.
    pub set: String,
    pub purpose: String,
    /// Who the peers are, in words ("Mid-Tier (group super)").
    pub label: String,
}

/// One host's part of the plan. `S` is what a set key maps to: a table id in a [`Fleet`]
/// ([`Entry`]), the set itself in a [`Request`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostRequest<S> {
    pub format: String,
    pub name: String,
    pub addresses: Vec<IpAddr>,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub services: Vec<String>,
    #[serde(default)]
    pub backend: BackendKind,
    /// `host_firewall_management_sources` is unset: keep SSH open from the controller.
    #[serde(default)]
    pub lockout_guard: bool,
    /// firewalld services to remove from the managed zones.
    #[serde(default)]
    pub remove_zone_services: Vec<String>,
    #[serde(default)]
    pub inbound: Vec<RuleRef>,
    /// The mirror image of inbound rules of other hosts whose peers include this host.
    #[serde(default)]
    pub outbound: Vec<RuleRef>,
    #[serde(default = "open")]
    pub egress: EgressMode,
    /// `host_firewall_dns_servers`; `None` when unset (the host's resolv.conf is used).
    #[serde(default)]
    pub dns_servers: Option<Vec<IpNet>>,
    #[serde(default)]
    pub ntp_servers: Vec<IpNet>,
    /// The host runs an OIDC client and keeps the Entra ID allow-list (`host_firewall_entra`).
    #[serde(default)]
    pub entra: bool,
    /// `host_firewall_egress_extra_rules`, one rule per protocol.
    #[serde(default)]
    pub egress_extra: Vec<RuleRef>,
    /// The OIDC providers (`host_firewall_oidc_providers`) whose addresses this OIDC client
    /// keeps: each one's set (`oidc-<id>`) comes from the host's own state.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub oidc_providers: Vec<crate::options::OidcProvider>,
    /// Set key → table id ([`Entry`]) or set ([`Request`]).
    #[serde(default = "BTreeMap::new")]
    pub sets: BTreeMap<String, S>,
}

fn open() -> EgressMode {
    EgressMode::Open
}

/// A host's entry in a [`Fleet`]: its sets are ids in the fleet's table.
pub type Entry = HostRequest<String>;
/// What one host converges to: its rules and the sets they use.
pub type Request = HostRequest<PeerSet>;

impl<S> HostRequest<S> {
    /// Every rule, with its direction (`in`, `out`, `egress-extra`).
    pub fn rules(&self) -> impl Iterator<Item = (&'static str, &RuleRef)> {
        let tag = |d: &'static str| move |r| (d, r);
        self.inbound
            .iter()
            .map(tag("in"))
            .chain(self.outbound.iter().map(tag("out")))
            .chain(self.egress_extra.iter().map(tag("egress-extra")))
    }

    fn shape(&self) -> Result<()> {
        let host = &self.name;
        let fail = |m: String| Err(Error::new(format!("host {host}: {m}")));
        if self.format != REQUEST_FORMAT {
            return fail(format!("request format '{}' is not {REQUEST_FORMAT}", self.format));
        }
        if self.addresses.is_empty() {
            return fail("the request has no addresses".into());
        }
        let mut inbound_keys = BTreeSet::new();
        for (dir, r) in self.rules() {
            if r.port == 0 {
                return fail(format!("rule {}: port 0 is out of range 1-65535", r.id));
            }
            if !self.sets.contains_key(&r.set) {
                return fail(format!("rule {}: peer set {} is not in the request", r.id, r.set));
            }
            if dir == "in" {
                inbound_keys.insert(r.set.as_str());
            } else if inbound_keys.contains(r.set.as_str()) {
                return fail(format!("set {} is used both for sources and for destinations", r.set));
            }
        }
        if let Some((a, b, name)) = crate::policy::naming_collisions(self.sets.keys().map(String::as_str)).first() {
            return fail(format!("the peer sets {a} and {b} would both be the {name}"));
        }
        Ok(())
    }
}

impl Entry {
    /// This host's request: its entry with the sets it uses, taken from the fleet's table.
    pub fn resolve(&self, table: &BTreeMap<String, PeerSet>) -> Result<Request> {
        let mut sets = BTreeMap::new();
        for (key, id) in &self.sets {
            let set = table.get(id).ok_or_else(|| {
                Error::new(format!("host {}: peer set {key} names table entry {id}, which the plan lacks", self.name))
            })?;
            sets.insert(key.clone(), set.clone());
        }
        let HostRequest {
            format,
            name,
            addresses,
            groups,
            services,
            backend,
            lockout_guard,
            remove_zone_services,
            inbound,
            outbound,
            egress,
            dns_servers,
            ntp_servers,
            entra,
            egress_extra,
            oidc_providers,
            sets: _,
        } = self.clone();
        let req = HostRequest {
            format,
            name,
            addresses,
            groups,
            services,
            backend,
            lockout_guard,
            remove_zone_services,
            inbound,
            outbound,
            egress,
            dns_servers,
            ntp_servers,
            entra,
            egress_extra,
            oidc_providers,
            sets,
        };
        req.shape()?;
        Ok(req)
    }
}

impl Request {
    /// A request from JSON: this format, or (no `format` field) the v1 host plan, whose rules
    /// list their peers.
    pub fn from_json(v: &Value) -> Result<Request> {
        if v.is_object() && v.get("format").is_none() {
            return v1::upgrade(v);
        }
        let req: Request = serde_json::from_value(v.clone()).map_err(|e| {
            let host = v.get("name").and_then(Value::as_str).unwrap_or("?");
            Error::new(format!("host {host}: not a {REQUEST_FORMAT} request: {e}"))
        })?;
        req.shape()?;
        Ok(req)
    }

    /// A rule's peers as this host sees them (see [`PeerSet::without`]).
    pub fn peers(&self, r: &RuleRef) -> Vec<IpNet> {
        self.sets.get(&r.set).map(|s| s.without(&self.addresses)).unwrap_or_default()
    }
}

/// A whole plan: every set once, and one entry per host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fleet {
    pub format: String,
    /// Table id → set. An id is the set's key, or `key~N` where hosts use one key for
    /// different sets (say, different `host_firewall_admin_sources`).
    pub sets: BTreeMap<String, PeerSet>,
    pub hosts: BTreeMap<String, Entry>,
    #[serde(default)]
    pub warnings: Vec<String>,
}

impl Fleet {
    /// The contract for `hosts` (a selection of `plans`; peers come from the whole fleet).
    pub fn from_plans<'a>(plans: &'a Plans, hosts: impl IntoIterator<Item = &'a HostPlan>) -> Fleet {
        let mut table = Table::default();
        let mut entries = BTreeMap::new();
        let m = Matrix::embedded();
        for h in hosts {
            let o = &h.options;
            let mut sets = BTreeMap::new();
            let mut rules = |list: &[Rule], table: &mut Table| -> Vec<RuleRef> {
                list.iter()
                    .map(|r| {
                        sets.insert(r.set.to_string(), table.id(&r.set, r.members, &r.peers));
                        RuleRef {
                            id: r.id.to_string(),
                            port: r.port,
                            protocol: r.protocol,
                            set: r.set.to_string(),
                            purpose: r.purpose.to_string(),
                            label: r.label.to_string(),
                        }
                    })
                    .collect()
            };
            let inbound = rules(&h.inbound, &mut table);
            let outbound = rules(&h.outbound, &mut table);
            let mut egress_extra = vec![];
            for x in &o.egress_extra_rules {
                let key = format!("o-{}", x.id);
                sets.insert(key.clone(), table.id(&key, Members::Networks, &Arc::new(x.destinations.clone())));
                for p in &x.protocols {
                    egress_extra.push(RuleRef {
                        id: x.id.clone(),
                        port: x.port,
                        protocol: Proto::of(p),
                        set: key.clone(),
                        purpose: x.purpose.clone(),
                        label: "host_firewall_egress_extra_rules".into(),
                    });
                }
            }
            let entry = Entry {
                format: REQUEST_FORMAT.into(),
                name: h.name.clone(),
                addresses: h.addresses.clone(),
                groups: h.groups.clone(),
                services: h.services.clone(),
                backend: o.backend,
                lockout_guard: o.management_sources.is_none(),
                remove_zone_services: o.remove_zone_services.clone(),
                inbound,
                outbound,
                egress: o.egress,
                dns_servers: o.dns_servers.clone(),
                ntp_servers: o.ntp_servers.clone(),
                entra: o.entra && m.is_oidc_client(&h.services),
                egress_extra,
                oidc_providers: match &o.oidc_providers {
                    Some(l) if m.is_oidc_client(&h.services) => l.clone(),
                    _ => vec![],
                },
                sets,
            };
            entries.insert(h.name.clone(), entry);
        }
        Fleet { format: PLAN_FORMAT.into(), sets: table.sets, hosts: entries, warnings: plans.warnings.clone() }
    }

    /// One host's request.
    pub fn request(&self, host: &str) -> Result<Request> {
        self.hosts.get(host).ok_or_else(|| Error::new(format!("host {host} is not in the plan")))?.resolve(&self.sets)
    }
}

/// The fleet's set table under construction: one id per (key, content).
#[derive(Default)]
struct Table {
    by_key: HashMap<String, Vec<(NetSet, String)>>,
    sets: BTreeMap<String, PeerSet>,
}

impl Table {
    fn id(&mut self, key: &str, members: Members, nets: &NetSet) -> String {
        let known = self.by_key.entry(key.to_string()).or_default();
        // Planner sets are interned by content, so the pointer test settles nearly every case.
        if let Some((_, id)) = known.iter().find(|(s, _)| Arc::ptr_eq(s, nets) || **s == **nets) {
            return id.clone();
        }
        let mut n = known.len() + 1;
        let mut id = if n == 1 { key.to_string() } else { format!("{key}~{n}") };
        while self.sets.contains_key(&id) {
            n += 1;
            id = format!("{key}~{n}");
        }
        self.sets.insert(id.clone(), PeerSet::new(members, nets));
        known.push((nets.clone(), id.clone()));
        id
    }
}

/// Reads the v1 host plan: every rule spelled out its peers, already without the host's own.
mod v1 {
    use super::*;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Plan {
        name: String,
        addresses: Vec<String>,
        #[serde(default)]
        groups: Vec<String>,
        #[serde(default)]
        services: Vec<String>,
        #[serde(default = "auto")]
        backend: String,
        #[serde(default)]
        management_sources: Option<Vec<String>>,
        #[serde(default)]
        remove_zone_services: Vec<String>,
        #[serde(default)]
        inbound: Vec<Rule>,
        #[serde(default)]
        outbound: Vec<Rule>,
        #[serde(default = "open")]
        egress: String,
        #[serde(default)]
        dns_servers: Option<Vec<String>>,
        #[serde(default)]
        ntp_servers: Vec<String>,
        #[serde(default)]
        entra: bool,
        #[serde(default)]
        egress_extra: Vec<Rule>,
    }

    fn auto() -> String {
        "auto".into()
    }
    fn open() -> String {
        "open".into()
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Rule {
        id: String,
        port: u16,
        protocol: String,
        #[serde(alias = "destinations")]
        sources: Vec<String>,
        set: String,
        purpose: String,
        label: String,
    }

    fn nets(what: &str, list: &[String]) -> Result<Vec<IpNet>> {
        list.iter()
            .map(|s| {
                s.parse::<IpNet>()
                    .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                    .map(|n| n.trunc())
                    .map_err(|_| Error::new(format!("{what}: malformed CIDR '{s}'")))
            })
            .collect()
    }

    pub(super) fn upgrade(v: &Value) -> Result<Request> {
        let p: Plan = serde_json::from_value(v.clone()).map_err(|e| {
            let host = v.get("name").and_then(Value::as_str).unwrap_or("?");
            Error::new(format!("host {host}: not a host plan: {e}"))
        })?;
        let fail = |e: Error| e.context(format!("host {}", p.name));
        let mut sets: BTreeMap<String, PeerSet> = BTreeMap::new();
        let mut rules = |list: &[Rule]| -> Result<Vec<RuleRef>> {
            list.iter()
                .map(|r| {
                    let what = format!("rule {}", r.id);
                    let set = PeerSet::new(Members::Networks, &nets(&what, &r.sources)?);
                    match sets.get(&r.set) {
                        Some(prev) if *prev != set => {
                            return Err(Error::new(format!(
                                "{what}: peer set {} has different members in different rules",
                                r.set
                            )))
                        }
                        _ => sets.insert(r.set.clone(), set),
                    };
                    Ok(RuleRef {
                        id: r.id.clone(),
                        port: r.port,
                        protocol: Proto::parse(&what, &r.protocol)?,
                        set: r.set.clone(),
                        purpose: r.purpose.clone(),
                        label: r.label.clone(),
                    })
                })
                .collect()
        };
        let inbound = rules(&p.inbound).map_err(fail)?;
        let outbound = rules(&p.outbound).map_err(fail)?;
        let egress_extra = rules(&p.egress_extra).map_err(fail)?;
        let addresses = p
            .addresses
            .iter()
            .map(|a| a.parse().map_err(|_| fail(Error::new(format!("address '{a}' is not an IP address")))))
            .collect::<Result<Vec<IpAddr>>>()?;
        let req = Request {
            format: REQUEST_FORMAT.into(),
            addresses,
            groups: p.groups.clone(),
            services: p.services.clone(),
            backend: BackendKind::parse("host_firewall_backend", &p.backend).map_err(fail)?,
            lockout_guard: p.management_sources.is_none(),
            remove_zone_services: p.remove_zone_services.clone(),
            inbound,
            outbound,
            egress: EgressMode::parse("host_firewall_egress", &p.egress).map_err(fail)?,
            dns_servers: p
                .dns_servers
                .as_ref()
                .map(|l| nets("host_firewall_dns_servers", l))
                .transpose()
                .map_err(fail)?,
            ntp_servers: nets("host_firewall_ntp_servers", &p.ntp_servers).map_err(fail)?,
            entra: p.entra,
            egress_extra,
            oidc_providers: vec![],
            sets,
            name: p.name.clone(),
        };
        req.shape()?;
        Ok(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(s: &[&str]) -> Vec<IpNet> {
        s.iter().map(|n| n.parse().unwrap()).collect()
    }

    #[test]
    fn host_sets_leave_out_own_addresses_even_inside_an_aggregate() {
        let s = PeerSet::new(Members::Hosts, &nets(&["10.0.0.0/32", "10.0.0.1/32", "10.0.0.2/32", "10.0.0.3/32"]));
        assert_eq!(s.nets, nets(&["10.0.0.0/30"]));
        let own: Vec<IpAddr> = vec!["10.0.0.1".parse().unwrap()];
        assert_eq!(s.without(&own), nets(&["10.0.0.0/32", "10.0.0.2/31"]));
        let v6 = PeerSet::new(Members::Hosts, &nets(&["fd00::/126"]));
        assert_eq!(v6.without(&["fd00::3".parse().unwrap()]), nets(&["fd00::/127", "fd00::2/128"]));
        // An operator's CIDR that covers the host stays whole; only an exact entry goes.
        let n = PeerSet::new(Members::Networks, &nets(&["10.0.0.0/8", "192.0.2.7/32"]));
        assert_eq!(n.without(&["10.0.0.1".parse().unwrap(), "192.0.2.7".parse().unwrap()]), nets(&["10.0.0.0/8"]));
    }

    #[test]
    fn words_parse_once_with_the_choices_in_the_error() {
        assert_eq!(BackendKind::parse("host_firewall_backend", "ufw").unwrap(), BackendKind::Ufw);
        let e = BackendKind::parse("host_firewall_backend", "pf").unwrap_err();
        assert_eq!(e.0, "host_firewall_backend: invalid value 'pf' (expected one of: auto, firewalld, ufw, nftables)");
        let bad =
            serde_json::json!({"format": REQUEST_FORMAT, "name": "h", "addresses": ["10.0.0.1"], "egress": "closed"});
        let e = Request::from_json(&bad).unwrap_err();
        assert!(
            e.0.starts_with("host h: not a vorstream.firewall/request/v2 request") && e.0.contains("closed"),
            "{e}"
        );
    }

    #[test]
    fn a_request_names_only_sets_it_holds() {
        let v = serde_json::json!({"format": REQUEST_FORMAT, "name": "h", "addresses": ["10.0.0.1"],
            "inbound": [{"id": "r", "port": 1, "protocol": "tcp", "set": "g-x", "purpose": "p", "label": "l"}]});
        assert_eq!(Request::from_json(&v).unwrap_err().0, "host h: rule r: peer set g-x is not in the request");
    }

    #[test]
    fn v1_plans_are_upgraded() {
        let v = serde_json::json!({"name": "h", "addresses": ["10.0.0.1"], "management_sources": ["10.9.0.0/16"],
            "inbound": [{"id": "r", "port": 22, "protocol": "tcp", "sources": ["10.9.0.0/16"], "set": "mgmt",
                         "purpose": "p", "label": "l"}],
            "outbound": [{"id": "o", "port": 80, "protocol": "udp", "destinations": ["10.0.0.2"], "set": "t-o",
                          "purpose": "p", "label": "l"}]});
        let r = Request::from_json(&v).unwrap();
        assert!(!r.lockout_guard && r.egress == EgressMode::Open && r.backend == BackendKind::Auto);
        assert_eq!(r.peers(&r.outbound[0]), nets(&["10.0.0.2/32"]));
        assert_eq!(r.outbound[0].protocol, Proto::Udp);
    }
}

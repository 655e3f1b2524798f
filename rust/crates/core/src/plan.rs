//! Inventory + matrix → one plan per host: the services it runs, the inbound flows it admits
//! (port, protocol, peers, purpose, matrix row id) and the outbound flows it opens.
//!
//! Outbound rules are the mirror image of inbound rules whose peers are inventory hosts, so
//! the plan is globally consistent: every outbound flow is admitted by its target.
//! Peer sets are shared (`Arc`) between hosts, so planning stays linear in the number of
//! hosts even when every host admits every other host (Consul Serf LAN).

use crate::error::{Error, Result};
use crate::inventory::Inventory;
use crate::matrix::{Matrix, When};
use crate::options::{parse_ip, ExtraRule, Options, Peer, Warnings};
use ipnet::IpNet;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

pub use crate::request::{Members, Proto};

/// A sorted, deduplicated set of networks shared between rules and hosts.
pub type NetSet = Arc<Vec<IpNet>>;

/// What a rule stands for, for people and diagrams.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A row of the internal matrix (or an extra rule between services/groups).
    Flow { source: Arc<str>, target: Arc<str> },
    /// A row of the external matrix.
    Audience { audience: Arc<str>, target: Arc<str> },
    /// SSH from `host_firewall_management_sources`.
    Management,
    /// An extra rule whose peers are CIDRs.
    Extra { target: Arc<str> },
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub id: Arc<str>,
    pub port: u16,
    pub protocol: Proto,
    /// Peers (sources for inbound, destinations for outbound). May contain the host's own
    /// addresses; use [`HostPlan::peers`], which leaves them out.
    pub peers: NetSet,
    pub purpose: Arc<str>,
    /// Who the peers are, in words ("Mid-Tier (group super)").
    pub label: Arc<str>,
    /// A stable key naming the peer set (`g-super`, `a-admin`, `mgmt`, `x-<id>`): backends
    /// name their address sets after it, so membership changes update a set in place.
    pub set: Arc<str>,
    /// Inventory hosts (each host leaves out its own addresses) or the operator's CIDRs.
    pub members: Members,
    pub origin: Origin,
}

#[derive(Debug, Clone)]
pub struct HostPlan {
    pub name: String,
    pub addresses: Vec<IpAddr>,
    /// The host's own addresses as /32 and /128 networks.
    pub own: Vec<IpNet>,
    pub groups: Vec<String>,
    pub services: Vec<String>,
    pub options: Options,
    pub inbound: Vec<Rule>,
    pub outbound: Vec<Rule>,
}

impl HostPlan {
    /// A rule's peers without the host's own addresses (loopback is always allowed).
    pub fn peers<'a>(&'a self, rule: &'a Rule) -> impl Iterator<Item = &'a IpNet> + 'a {
        rule.peers.iter().filter(move |n| !self.own.contains(n))
    }

    /// How many peers [`HostPlan::peers`] yields, without walking the set.
    pub fn peer_count(&self, rule: &Rule) -> usize {
        rule.peers.len() - self.own.iter().filter(|o| rule.peers.binary_search(o).is_ok()).count()
    }
}

#[derive(Debug, Clone, Default)]
pub struct Plans {
    pub hosts: Vec<HostPlan>,
    pub warnings: Vec<String>,
}

/// How the shell resolves a host name to addresses (the system resolver, in practice).
pub type Resolver<'a> = dyn FnMut(&str) -> std::result::Result<Vec<IpAddr>, String> + 'a;

/// Interns peer sets by content so equal sets are shared.
#[derive(Default)]
struct Sets {
    by_content: HashMap<Vec<IpNet>, NetSet>,
}

impl Sets {
    fn intern(&mut self, mut nets: Vec<IpNet>) -> NetSet {
        nets.sort_unstable();
        nets.dedup();
        self.by_content.entry(nets).or_insert_with_key(|k| Arc::new(k.clone())).clone()
    }
}

/// The key under which inbound rules with inventory-host peers are mirrored as outbound rules.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct MirrorKey {
    source_group: String,
    id: Arc<str>,
    port: u16,
    protocol: Proto,
}

struct Mirror {
    purpose: Arc<str>,
    label: Arc<str>,
    set: Arc<str>,
    origin: Origin,
    targets: Vec<usize>,
}

fn holds(when: &When, o: &Options) -> bool {
    when.database.as_ref().is_none_or(|d| *d == o.database)
        && when.vault_dynamic_secrets.as_ref().is_none_or(|s| o.vault_dynamic_secrets.contains(s))
}

/// A host's addresses: `host_firewall_address`, else `ansible_host` if it is an IP literal,
/// else the name (`ansible_host` or the inventory name) through the resolver.
fn host_addresses(
    name: &str,
    opts: &Options,
    vars: &serde_json::Map<String, Value>,
    resolve: &mut Resolver,
) -> Result<Vec<IpAddr>> {
    if let Some(a) = &opts.address {
        return Ok(a.clone());
    }
    let ansible_host = vars.get("ansible_host").and_then(Value::as_str).map(str::trim);
    if let Some(h) = ansible_host {
        if let Ok(ip) = parse_ip(h) {
            return Ok(vec![ip]);
        }
    }
    let lookup = ansible_host.unwrap_or(name);
    let mut addrs = resolve(lookup).map_err(|why| {
        Error::new(format!(
            "no address: {} '{lookup}' does not resolve ({why}); set host_firewall_address or ansible_host to an IP address",
            if ansible_host.is_some() { "ansible_host" } else { "the host name" }
        ))
    })?;
    addrs.sort();
    addrs.dedup();
    if addrs.is_empty() {
        return Err(Error::new(format!(
            "no address: '{lookup}' resolves to nothing; set host_firewall_address or ansible_host to an IP address"
        )));
    }
    Ok(addrs)
}

/// Compute every host's plan: the named steps of [`Planner`], in order.
pub fn plan(inv: &Inventory, m: &Matrix, resolve: &mut Resolver) -> Result<Plans> {
    let mut warnings: Warnings = vec![];
    let hosts = host_entries(inv, m, resolve, &mut warnings)?;
    let mut p = Planner::new(inv, m, hosts);
    p.check_extra_rule_ids()?;
    for hi in 0..p.hosts.len() {
        let rules = p.inbound(hi)?;
        p.hosts[hi].inbound = rules;
    }
    p.mirror_outbound();
    p.check_sets()?;
    Ok(Plans { hosts: p.hosts, warnings })
}

/// Step 1. Options, addresses, groups and services of every host (rules come later).
fn host_entries(inv: &Inventory, m: &Matrix, resolve: &mut Resolver, warnings: &mut Warnings) -> Result<Vec<HostPlan>> {
    let empty = serde_json::Map::new();
    let mut hosts: Vec<HostPlan> = Vec::with_capacity(inv.hosts.len());
    let group_names: Vec<&String> = inv.groups.keys().filter(|g| g.as_str() != "all").collect();
    let mut addr_owner: HashMap<IpAddr, &str> = HashMap::new();
    for name in &inv.hosts {
        let vars = inv.hostvars.get(name).unwrap_or(&empty);
        let mut w = vec![];
        let options = Options::from_hostvars(m, vars, &mut w).map_err(|e| e.context(format!("host {name}")))?;
        warnings.extend(w.into_iter().map(|x| format!("host {name}: {x}")));
        let addresses = host_addresses(name, &options, vars, resolve).map_err(|e| e.context(format!("host {name}")))?;
        for a in &addresses {
            if let Some(other) = addr_owner.insert(*a, name) {
                warnings.push(format!("hosts {other} and {name} share the address {a}"));
            }
        }
        let own = addresses.iter().map(|a| IpNet::from(*a)).collect();
        let groups =
            group_names.iter().filter(|g| inv.groups[g.as_str()].contains(name)).map(|g| g.to_string()).collect();
        let services = m
            .services
            .iter()
            .filter(|s| s.group == "all" || inv.group_hosts(&s.group).is_some_and(|hs| hs.contains(name)))
            .map(|s| s.name.clone())
            .collect();
        hosts.push(HostPlan {
            name: name.clone(),
            addresses,
            own,
            groups,
            services,
            options,
            inbound: vec![],
            outbound: vec![],
        });
    }
    Ok(hosts)
}

/// The fields of a rule before its protocols are known (one [`Rule`] per protocol).
struct RuleSpec<'p> {
    id: &'p str,
    port: u16,
    protocols: &'p [String],
    peers: NetSet,
    purpose: &'p str,
    label: String,
    set: String,
    members: Members,
    origin: Origin,
    /// The group whose hosts are the peers: the rule is mirrored onto them as outbound rules.
    mirror_group: Option<&'p str>,
}

/// The planner's shared state across steps 2–5.
struct Planner<'a> {
    inv: &'a Inventory,
    m: &'a Matrix,
    hosts: Vec<HostPlan>,
    index: HashMap<String, usize>,
    sets: Sets,
    group_sets: HashMap<String, NetSet>,
    labels: HashMap<String, Arc<str>>,
    mirrors: BTreeMap<MirrorKey, Mirror>,
}

impl<'a> Planner<'a> {
    fn new(inv: &'a Inventory, m: &'a Matrix, hosts: Vec<HostPlan>) -> Self {
        let index = hosts.iter().enumerate().map(|(i, h)| (h.name.clone(), i)).collect();
        Planner {
            inv,
            m,
            hosts,
            index,
            sets: Sets::default(),
            group_sets: HashMap::new(),
            labels: HashMap::new(),
            mirrors: BTreeMap::new(),
        }
    }

    fn label(&mut self, s: String) -> Arc<str> {
        self.labels.entry(s.clone()).or_insert_with(|| Arc::from(s)).clone()
    }

    fn service_group(&self, service: &str) -> &'a str {
        self.m.service(service).map(|s| s.group.as_str()).expect("checked matrix or validated option")
    }

    fn label_for(&self, service: &str) -> String {
        format!("{service} (group {})", self.m.service(service).map(|s| s.group.as_str()).unwrap_or("?"))
    }

    /// Step 2. The addresses of every host in a group, computed once per group.
    fn group_set(&mut self, g: &str) -> NetSet {
        if let Some(s) = self.group_sets.get(g) {
            return s.clone();
        }
        let nets: Vec<IpNet> = self
            .inv
            .group_hosts(g)
            .map(|hs| {
                hs.iter()
                    .filter_map(|h| self.index.get(h.as_str()))
                    .flat_map(|&i| self.hosts[i].own.iter().copied())
                    .collect()
            })
            .unwrap_or_default();
        let s = self.sets.intern(nets);
        self.group_sets.insert(g.to_string(), s.clone());
        s
    }

    /// An extra rule whose source is inventory hosts is mirrored onto those hosts under its id
    /// (set `t-<id>`): the same id defined differently on another host would give a source host
    /// two rules under one name, which `apply` refuses there. One id, one such rule, fleet-wide.
    fn check_extra_rule_ids(&self) -> Result<()> {
        let mirrored = |x: &ExtraRule| matches!(x.source, Peer::Service(_) | Peer::Group(_));
        let mut defs: HashMap<&str, (&ExtraRule, &str)> = HashMap::new();
        for host in &self.hosts {
            for x in host.options.extra_rules.iter().filter(|x| mirrored(x)) {
                match defs.get(x.id.as_str()) {
                    Some((first, on)) if *first != x => {
                        return Err(Error::new(format!(
                            "host {}: host_firewall_extra_rules: id '{}' is defined differently on host {on} \
                             ({} against {}); one id must name one rule across the inventory",
                            host.name,
                            x.id,
                            describe_extra(x),
                            describe_extra(first)
                        )));
                    }
                    Some(_) => {}
                    None => {
                        defs.insert(x.id.as_str(), (x, host.name.as_str()));
                    }
                }
            }
        }
        Ok(())
    }

    /// Extra rules and disabled ids of one host are valid, whether or not they target it.
    fn check_options(&self, host: &HostPlan) -> Result<BTreeSet<&'a str>> {
        let (o, m) = (&host.options, self.m);
        let err = |msg: String| Error::new(format!("host {}: {msg}", host.name));
        let matrix_ids: BTreeSet<&str> = m.row_ids().collect();
        let mut extra_ids = BTreeSet::new();
        for x in &o.extra_rules {
            if matrix_ids.contains(x.id.as_str()) {
                return Err(err(format!("host_firewall_extra_rules: id '{}' is already a matrix row id", x.id)));
            }
            if !extra_ids.insert(x.id.as_str()) {
                return Err(err(format!("host_firewall_extra_rules: id '{}' is used twice", x.id)));
            }
            for (what, p) in [("service/group", &x.target), ("source", &x.source)] {
                match p {
                    Peer::Service(s) if m.service(s).is_none() => {
                        let known: Vec<&str> = m.services.iter().map(|s| s.name.as_str()).collect();
                        return Err(err(format!(
                            "host_firewall_extra_rules (id {}): {what} names unknown service '{s}' (known: {})",
                            x.id,
                            known.join(", ")
                        )));
                    }
                    Peer::Group(g) if !self.inv.has_group(g) => {
                        return Err(err(format!(
                            "host_firewall_extra_rules (id {}): {what} names group '{g}', which is not in the inventory",
                            x.id
                        )));
                    }
                    _ => {}
                }
            }
        }
        for d in &o.disabled_rules {
            if !matrix_ids.contains(d.as_str()) && !extra_ids.contains(d.as_str()) {
                return Err(err(format!("host_firewall_disabled_rules: unknown rule id '{d}'")));
            }
        }
        Ok(matrix_ids)
    }

    /// The one rule constructor: one [`Rule`] per protocol of `spec`, none when the host
    /// itself is the only peer; rules with host peers are remembered for mirroring.
    fn add(&mut self, hi: usize, spec: RuleSpec, out: &mut Vec<Rule>) {
        let template = Rule {
            id: Arc::from(spec.id),
            port: spec.port,
            protocol: Proto::Tcp,
            peers: spec.peers,
            purpose: Arc::from(spec.purpose),
            label: self.label(spec.label),
            set: self.label(spec.set),
            members: spec.members,
            origin: spec.origin,
        };
        if self.hosts[hi].peer_count(&template) == 0 {
            return;
        }
        for p in spec.protocols {
            let rule = Rule { protocol: Proto::of(p), ..template.clone() };
            if let Some(g) = spec.mirror_group {
                let key = MirrorKey {
                    source_group: g.to_string(),
                    id: rule.id.clone(),
                    port: rule.port,
                    protocol: rule.protocol,
                };
                self.mirrors
                    .entry(key)
                    .or_insert_with(|| Mirror {
                        purpose: rule.purpose.clone(),
                        set: Arc::from(format!("t-{}", rule.id)),
                        label: match &rule.origin {
                            Origin::Flow { target, .. } => target.clone(),
                            _ => rule.label.clone(),
                        },
                        origin: rule.origin.clone(),
                        targets: vec![],
                    })
                    .targets
                    .push(hi);
            }
            out.push(rule);
        }
    }

    /// Step 3. One host's inbound rules: management SSH, the internal and external matrix rows
    /// that apply to it, and its extra rules.
    fn inbound(&mut self, hi: usize) -> Result<Vec<Rule>> {
        let m = self.m;
        let host = self.hosts[hi].clone();
        let o = &host.options;
        self.check_options(&host)?;
        let enabled = |id: &str| !o.disabled_rules.contains(id);
        let mut inbound: Vec<Rule> = vec![];
        if let (Some(ms), true) = (&o.management_sources, enabled(&m.management.id)) {
            let spec = RuleSpec {
                id: &m.management.id,
                port: m.management.port,
                protocols: &m.management.protocols,
                peers: self.sets.intern(ms.clone()),
                purpose: &m.management.purpose,
                label: "host_firewall_management_sources".into(),
                set: "mgmt".into(),
                members: Members::Networks,
                origin: Origin::Management,
                mirror_group: None,
            };
            self.add(hi, spec, &mut inbound);
        }
        for r in &m.internal {
            if !host.services.contains(&r.service) || !enabled(&r.id) || !holds(&r.when, o) {
                continue;
            }
            let src_group = self.service_group(&r.source);
            let spec = RuleSpec {
                id: &r.id,
                port: r.port,
                protocols: &r.protocols,
                peers: self.group_set(src_group),
                purpose: &r.purpose,
                label: self.label_for(&r.source),
                set: format!("g-{src_group}"),
                members: Members::Hosts,
                origin: Origin::Flow {
                    source: Arc::from(self.label_for(&r.source)),
                    target: Arc::from(self.label_for(&r.service)),
                },
                mirror_group: Some(src_group),
            };
            self.add(hi, spec, &mut inbound);
        }
        for r in &m.external {
            if !host.groups.contains(&r.group) || !enabled(&r.id) {
                continue;
            }
            let aud = m.audience(&r.audience).expect("checked matrix");
            let nets: Vec<IpNet> = aud.variables.iter().flat_map(|v| o.sources_var(v).iter().copied()).collect();
            if nets.is_empty() {
                continue;
            }
            let target = m
                .services
                .iter()
                .find(|s| s.group == r.group)
                .map(|s| self.label_for(&s.name))
                .unwrap_or_else(|| format!("group {}", r.group));
            let spec = RuleSpec {
                id: &r.id,
                port: r.port,
                protocols: &r.protocols,
                peers: self.sets.intern(nets),
                purpose: &r.purpose,
                label: format!("{} ({})", r.audience, aud.variables.join(" + ")),
                set: audience_set_key(&aud.variables),
                members: Members::Networks,
                origin: Origin::Audience { audience: Arc::from(r.audience.as_str()), target: Arc::from(target) },
                mirror_group: None,
            };
            self.add(hi, spec, &mut inbound);
        }
        for x in &o.extra_rules {
            if !enabled(&x.id) || !extra_targets(x, &host, m) {
                continue;
            }
            let target = match &x.target {
                Peer::Service(s) => self.label_for(s),
                Peer::Group(g) => format!("group {g}"),
                Peer::Cidrs(_) => unreachable!("targets are services or groups"),
            };
            let (peers, mirror_group, who, set, members) = match &x.source {
                Peer::Service(s) => {
                    let g = self.service_group(s);
                    (self.group_set(g), Some(g), self.label_for(s), format!("g-{g}"), Members::Hosts)
                }
                Peer::Group(g) => {
                    (self.group_set(g), Some(g.as_str()), format!("group {g}"), format!("g-{g}"), Members::Hosts)
                }
                Peer::Cidrs(c) => (
                    self.sets.intern(c.clone()),
                    None,
                    "host_firewall_extra_rules".to_string(),
                    format!("x-{}", x.id),
                    Members::Networks,
                ),
            };
            let origin = match mirror_group {
                Some(_) => Origin::Flow { source: Arc::from(who.as_str()), target: Arc::from(target.as_str()) },
                None => Origin::Extra { target: Arc::from(target.as_str()) },
            };
            let spec = RuleSpec {
                id: &x.id,
                port: x.port,
                protocols: &x.protocols,
                peers,
                purpose: &x.purpose,
                label: who,
                set,
                members,
                origin,
                mirror_group,
            };
            self.add(hi, spec, &mut inbound);
        }
        inbound.sort_by(|a, b| (a.port, a.protocol, &a.id).cmp(&(b.port, b.protocol, &b.id)));
        Ok(inbound)
    }

    /// Step 4. Outbound rules: the mirror image of inbound rules whose peers are inventory hosts.
    fn mirror_outbound(&mut self) {
        for (key, mir) in std::mem::take(&mut self.mirrors) {
            let dest = self.sets.intern(mir.targets.iter().flat_map(|&t| self.hosts[t].own.iter().copied()).collect());
            let Some(sources) = self.inv.group_hosts(&key.source_group) else {
                continue;
            };
            for s in sources {
                let hi = self.index[s.as_str()];
                let rule = Rule {
                    id: key.id.clone(),
                    port: key.port,
                    protocol: key.protocol,
                    peers: dest.clone(),
                    purpose: mir.purpose.clone(),
                    label: mir.label.clone(),
                    set: mir.set.clone(),
                    members: Members::Hosts,
                    origin: mir.origin.clone(),
                };
                let h = &mut self.hosts[hi];
                if h.peer_count(&rule) > 0 {
                    h.outbound.push(rule);
                }
            }
        }
        for h in &mut self.hosts {
            h.outbound.sort_by(|a, b| (a.port, a.protocol, &a.id).cmp(&(b.port, b.protocol, &b.id)));
        }
    }

    /// Step 5. Every set a host's rules use has one content, and a name of its own on every
    /// backend: what `apply` would refuse on one host is refused here, before any host is touched.
    fn check_sets(&self) -> Result<()> {
        // Hosts of the same groups have the same set keys: each distinct list of keys is checked
        // for name collisions once (10,000 hosts have a few dozen such lists).
        let mut collision_free: HashSet<(Vec<&str>, Vec<&str>)> = HashSet::new();
        for h in &self.hosts {
            let mut by_key: BTreeMap<&str, &Rule> = BTreeMap::new();
            for r in h.inbound.iter().chain(&h.outbound) {
                if let Some(prev) = by_key.insert(&r.set, r) {
                    if prev.peers != r.peers {
                        return Err(Error::new(format!(
                            "host {}: rules {} and {} use the peer set {} with different peers",
                            h.name, prev.id, r.id, r.set
                        )));
                    }
                }
            }
            // The request's sets: its rules' and its extra egress rules' (`o-<id>`).
            let keys: Vec<&str> = by_key.keys().copied().collect();
            let egress_ids: Vec<&str> = h.options.egress_extra_rules.iter().map(|x| x.id.as_str()).collect();
            let seen = (keys, egress_ids);
            if collision_free.contains(&seen) {
                continue;
            }
            let egress_keys: Vec<String> = seen.1.iter().map(|id| format!("o-{id}")).collect();
            let all = seen.0.iter().copied().chain(egress_keys.iter().map(String::as_str));
            if let Some((a, b, name)) = crate::policy::naming_collisions(all).into_iter().next() {
                return Err(Error::new(format!(
                    "host {}: the peer sets {a} and {b} would both be the {name}; rename one of the groups \
                     (or extra rule ids) they come from",
                    h.name
                )));
            }
            collision_free.insert(seen);
        }
        Ok(())
    }
}

/// An extra rule in words, for messages.
fn describe_extra(x: &ExtraRule) -> String {
    let peer = |p: &Peer| match p {
        Peer::Service(s) => format!("service {s}"),
        Peer::Group(g) => format!("group {g}"),
        Peer::Cidrs(c) => c.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(","),
    };
    format!("port {}/{} on {} from {}", x.port, x.protocols.join("+"), peer(&x.target), peer(&x.source))
}

/// The set key of an audience: its variables without the common prefix and suffix.
fn audience_set_key(vars: &[String]) -> String {
    let parts: Vec<&str> =
        vars.iter().map(|v| v.trim_start_matches("host_firewall_").trim_end_matches("_sources")).collect();
    format!("a-{}", parts.join("-"))
}

fn extra_targets(x: &ExtraRule, host: &HostPlan, m: &Matrix) -> bool {
    match &x.target {
        Peer::Service(s) => host.services.iter().any(|hs| hs == s) && m.service(s).is_some(),
        Peer::Group(g) => g == "all" || host.groups.contains(g),
        Peer::Cidrs(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn plans(inv: Value) -> Result<Plans> {
        let inv = Inventory::from_ansible_json(&inv).unwrap();
        let mut resolve = |name: &str| match name {
            "db.example" => Ok(vec!["10.9.9.9".parse().unwrap(), "fd00::9".parse().unwrap()]),
            _ => Err("Name or service not known".to_string()),
        };
        plan(&inv, Matrix::embedded(), &mut resolve)
    }

    fn host<'a>(p: &'a Plans, name: &str) -> &'a HostPlan {
        p.hosts.iter().find(|h| h.name == name).unwrap()
    }

    fn rule_peers(h: &HostPlan, dir: &str, id: &str, proto: Proto) -> Vec<String> {
        let rules = if dir == "in" { &h.inbound } else { &h.outbound };
        rules
            .iter()
            .filter(|r| &*r.id == id && r.protocol == proto)
            .flat_map(|r| h.peers(r).map(|p| p.to_string()))
            .collect()
    }

    fn two_tier() -> Value {
        json!({
            "_meta": {"hostvars": {
                "c1": {"ansible_host": "10.0.0.1"}, "c2": {"ansible_host": "10.0.0.2"},
                "pg": {"ansible_host": "db.example"},
                "v": {"ansible_host": "10.0.0.4", "host_firewall_vault_dynamic_secrets": ["postgres"]},
                "dj": {"ansible_host": "10.0.0.5"}
            }},
            "consul": {"hosts": ["c1", "c2"]},
            "postgres": {"hosts": ["pg"]},
            "vault": {"hosts": ["v"]},
            "django": {"hosts": ["dj"]}
        })
    }

    #[test]
    fn own_addresses_are_never_peers_and_outbound_mirrors_inbound() {
        let p = plans(two_tier()).unwrap();
        let c1 = host(&p, "c1");
        let serf = rule_peers(c1, "in", "consul-server-8301-from-consul-server", Proto::Udp);
        assert_eq!(serf, ["10.0.0.2/32"]);
        let c2 = host(&p, "c2");
        assert_eq!(rule_peers(c2, "out", "consul-server-8301-from-consul-server", Proto::Udp), ["10.0.0.1/32"]);
        // Every outbound flow is admitted by its target, and vice versa.
        for h in &p.hosts {
            for r in &h.outbound {
                for dst in h.peers(r) {
                    let t = p.hosts.iter().find(|t| t.own.contains(dst)).unwrap();
                    let back = rule_peers(t, "in", &r.id, r.protocol);
                    assert!(h.own.iter().any(|o| back.contains(&o.to_string())), "{} {} -> {}", h.name, r.id, t.name);
                }
            }
        }
    }

    #[test]
    fn resolved_names_give_every_address_and_conditions_gate_rows() {
        let p = plans(two_tier()).unwrap();
        let pg = host(&p, "pg");
        assert_eq!(pg.addresses.len(), 2);
        assert_eq!(rule_peers(pg, "in", "postgres-5432-from-django", Proto::Tcp), ["10.0.0.5/32"]);
        // Vault -> Postgres is gated by the *target's* view of dynamic secrets (unset on pg).
        assert!(rule_peers(pg, "in", "postgres-5432-from-vault", Proto::Tcp).is_empty());
        assert_eq!(
            rule_peers(host(&p, "dj"), "out", "postgres-5432-from-django", Proto::Tcp),
            ["10.9.9.9/32", "fd00::9/128"]
        );
    }

    #[test]
    fn oidc_providers_reach_the_oidc_clients_only_and_replace_entra_unless_listed() {
        let mut inv = two_tier();
        let kc = json!({"issuer": "https://kc.example.com/realms/vor", "name": "kc"});
        inv["_meta"]["hostvars"]["dj"]["host_firewall_oidc_providers"] = json!([kc]);
        inv["_meta"]["hostvars"]["c1"]["host_firewall_oidc_providers"] = json!([kc]);
        let p = plans(inv.clone()).unwrap();
        let fleet = crate::request::Fleet::from_plans(&p, &p.hosts);
        let ids = |h: &crate::request::Entry| h.oidc_providers.iter().map(|p| p.id.clone()).collect::<Vec<_>>();
        // Django is an OIDC client: the provider's set, beside the Entra ID set (host_firewall_entra).
        let dj = &fleet.hosts["dj"];
        assert_eq!((ids(dj), dj.entra), (vec!["kc".to_string()], true));
        // A Consul server is not: nothing, whatever its variables say.
        assert!(fleet.hosts["c1"].oidc_providers.is_empty());
        // Unset: Entra ID alone, as before.
        let v = &fleet.hosts["v"];
        assert_eq!((v.oidc_providers.is_empty(), v.entra), (true, true));
        // Another provider instead of Entra ID.
        inv["_meta"]["hostvars"]["dj"]["host_firewall_entra"] = json!(false);
        let p = plans(inv.clone()).unwrap();
        let dj = &crate::request::Fleet::from_plans(&p, &p.hosts).hosts["dj"];
        assert_eq!((ids(dj), dj.entra), (vec!["kc".to_string()], false));
        // An Entra ID provider in the list with host_firewall_entra false contradicts itself.
        inv["_meta"]["hostvars"]["dj"]["host_firewall_oidc_providers"] =
            json!([{"issuer": "https://login.microsoftonline.com/T/v2.0", "addresses": "entra", "name": "entra"}, kc]);
        let e = plans(inv.clone()).unwrap_err();
        assert!(e.0.contains("dj") && e.0.contains("host_firewall_entra is false"), "{e}");
        inv["_meta"]["hostvars"]["dj"]["host_firewall_entra"] = json!(true);
        let p = plans(inv.clone()).unwrap();
        let dj = &crate::request::Fleet::from_plans(&p, &p.hosts).hosts["dj"];
        assert_eq!(dj.oidc_providers[0], crate::options::OidcProvider { id: "entra".into(), entra: true });
        // A bad entry names the host and the variable.
        inv["_meta"]["hostvars"]["dj"]["host_firewall_oidc_providers"] = json!([{"issuer": "http://kc.example.com"}]);
        let e = plans(inv).unwrap_err();
        assert!(e.0.contains("dj") && e.0.contains("host_firewall_oidc_providers"), "{e}");
    }

    #[test]
    fn unresolvable_host_is_an_error_naming_it() {
        let mut inv = two_tier();
        inv["_meta"]["hostvars"]["dj"]["ansible_host"] = json!("nowhere.invalid");
        let e = plans(inv).unwrap_err();
        assert!(e.0.starts_with("host dj: no address: ansible_host 'nowhere.invalid' does not resolve"), "{e}");
    }

    #[test]
    fn peer_sets_one_backend_would_name_alike_are_refused_on_every_host_that_has_them() {
        use crate::policy::{object_name, Family, FIREWALLD_NAMING};
        // Two extra egress rule ids whose sets (`o-<id>`) get the same hashed ipset name.
        let mut seen: HashMap<String, String> = HashMap::new();
        let (a, b) = (0u32..)
            .find_map(|i| {
                let id = format!("an-egress-rule-id-longer-than-any-limit-{i}");
                let n = object_name(FIREWALLD_NAMING.prefix, &format!("o-{id}"), Family::V4, FIREWALLD_NAMING.max);
                seen.insert(n, id.clone()).map(|prev| (prev, id))
            })
            .unwrap();
        let egress = |ids: &[&str]| {
            json!(ids
                .iter()
                .map(|id| json!({"id": id, "destinations": ["192.0.2.0/24"], "port": 443}))
                .collect::<Vec<_>>())
        };
        // a1 and c1 have one of the two sets each (checked once: the same keys), b1 has both.
        let inv = json!({
            "_meta": {"hostvars": {
                "a1": {"ansible_host": "10.0.0.1", "host_firewall_egress_extra_rules": egress(&[&a])},
                "b1": {"ansible_host": "10.0.0.2", "host_firewall_egress_extra_rules": egress(&[&a, &b])},
                "c1": {"ansible_host": "10.0.0.3", "host_firewall_egress_extra_rules": egress(&[&a])}
            }},
            "web": {"hosts": ["a1", "b1", "c1"]}
        });
        let e = plans(inv.clone()).unwrap_err();
        assert!(
            e.0.starts_with(&format!("host b1: the peer sets o-{a} and o-{b} would both be the firewalld ipset ")),
            "{e}"
        );
        let mut fine = inv;
        fine["_meta"]["hostvars"]["b1"]["host_firewall_egress_extra_rules"] = egress(&[&a]);
        assert!(plans(fine).is_ok());
    }

    #[test]
    fn look_alike_group_names_get_distinct_sets_on_every_backend() {
        use crate::policy::{object_name, Family, FIREWALLD_NAMING, NFTABLES_NAMING};
        let rules = json!([
            {"id": "a", "group": "web", "port": 9001, "source_group": "dc1.web", "purpose": "A"},
            {"id": "b", "group": "web", "port": 9002, "source_group": "dc1_web_61076b", "purpose": "B"}
        ]);
        let p = plans(json!({
            "_meta": {"hostvars": {
                "w1": {"ansible_host": "10.0.0.4"}, "w2": {"ansible_host": "10.0.0.5"},
                "w3": {"ansible_host": "10.0.0.6", "host_firewall_extra_rules": rules}
            }},
            "dc1.web": {"hosts": ["w1"]}, "dc1_web_61076b": {"hosts": ["w2"]}, "web": {"hosts": ["w3"]}
        }))
        .unwrap();
        let w3 = host(&p, "w3");
        let set = |id: &str| w3.inbound.iter().find(|r| &*r.id == id).unwrap().set.to_string();
        for n in [FIREWALLD_NAMING, NFTABLES_NAMING] {
            let (a, b) = (
                object_name(n.prefix, &set("a"), Family::V4, n.max),
                object_name(n.prefix, &set("b"), Family::V4, n.max),
            );
            assert_ne!(a, b, "{}: {a}", n.backend);
        }
        assert_eq!(rule_peers(w3, "in", "a", Proto::Tcp), ["10.0.0.4/32"]);
        assert_eq!(rule_peers(w3, "in", "b", Proto::Tcp), ["10.0.0.5/32"]);
    }

    #[test]
    fn one_extra_rule_id_is_one_rule_across_the_inventory() {
        let rule =
            |port: u16| json!([{"id": "x", "group": "web", "port": port, "source_group": "django", "purpose": "P"}]);
        let inv = |p3: u16, p4: u16| {
            json!({
                "_meta": {"hostvars": {
                    "w3": {"ansible_host": "10.0.0.6", "host_firewall_extra_rules": rule(p3)},
                    "w4": {"ansible_host": "10.0.0.7", "host_firewall_extra_rules": rule(p4)},
                    "d1": {"ansible_host": "10.0.0.3"}
                }},
                "web": {"hosts": ["w3", "w4"]}, "django": {"hosts": ["d1"]}
            })
        };
        let e = plans(inv(9001, 9002)).unwrap_err();
        assert!(e.0.contains("host w4: host_firewall_extra_rules: id 'x' is defined differently on host w3"), "{e}");
        assert!(e.0.contains("port 9002/tcp on group web from group django against port 9001/tcp"), "{e}");
        // The same definition on both hosts is one rule: d1 reaches both on 9001.
        let p = plans(inv(9001, 9001)).unwrap();
        assert_eq!(rule_peers(host(&p, "d1"), "out", "x", Proto::Tcp), ["10.0.0.6/32", "10.0.0.7/32"]);
    }

    #[test]
    fn single_host_has_no_internal_peers() {
        let p = plans(json!({
            "_meta": {"hostvars": {"solo": {"ansible_host": "10.1.1.1"}}},
            "consul": {"hosts": ["solo"]}, "super": {"hosts": ["solo"]}, "web": {"hosts": ["solo"]}
        }))
        .unwrap();
        let solo = host(&p, "solo");
        assert!(solo.outbound.is_empty());
        assert!(solo.inbound.iter().all(|r| matches!(r.origin, Origin::Audience { .. })));
    }

    #[test]
    fn large_inventories_share_peer_sets() {
        let n = 2000;
        let mut hv = serde_json::Map::new();
        let mut hosts = vec![];
        for i in 0..n {
            hv.insert(
                format!("h{i}"),
                json!({"ansible_host": format!("10.{}.{}.{}", i / 65536, (i / 256) % 256, i % 256)}),
            );
            hosts.push(format!("h{i}"));
        }
        let p = plans(json!({"_meta": {"hostvars": hv}, "compute": {"hosts": hosts}})).unwrap();
        let a = &p.hosts[0].inbound[0].peers;
        let b = &p.hosts[1].inbound[0].peers;
        assert!(Arc::ptr_eq(a, b));
        assert_eq!(p.hosts[0].peer_count(&p.hosts[0].inbound[0]), n - 1);
    }
}

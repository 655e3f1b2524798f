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
use std::collections::{BTreeMap, BTreeSet, HashMap};
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

/// Compute every host's plan.
pub fn plan(inv: &Inventory, m: &Matrix, resolve: &mut Resolver) -> Result<Plans> {
    let mut warnings: Warnings = vec![];
    let empty = serde_json::Map::new();

    // 1. Options, addresses and services of every host.
    let mut hosts: Vec<HostPlan> = Vec::with_capacity(inv.hosts.len());
    let index: HashMap<&str, usize> = inv.hosts.iter().enumerate().map(|(i, h)| (h.as_str(), i)).collect();
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

    // 2. Peer sets: the addresses of every host in a group, computed once per group.
    let mut sets = Sets::default();
    let mut group_sets: HashMap<String, NetSet> = HashMap::new();
    let mut group_set = |g: &str, sets: &mut Sets| -> NetSet {
        if let Some(s) = group_sets.get(g) {
            return s.clone();
        }
        let nets: Vec<IpNet> = inv
            .group_hosts(g)
            .map(|hs| hs.iter().flat_map(|h| hosts_own(&hosts, &index, h)).collect())
            .unwrap_or_default();
        let s = sets.intern(nets);
        group_sets.insert(g.to_string(), s.clone());
        s
    };
    let service_group = |name: &str| m.service(name).map(|s| s.group.as_str());
    let label_for = |service: &str| format!("{service} (group {})", service_group(service).unwrap_or("?"));
    let matrix_ids: BTreeSet<&str> = m.row_ids().collect();
    // An extra rule whose source is inventory hosts is mirrored onto those hosts under its id
    // (set `t-<id>`): the same id defined differently on another host would give a source host
    // two rules under one name, which `apply` refuses there. One id, one such rule, fleet-wide.
    let mirrored = |x: &ExtraRule| matches!(x.source, Peer::Service(_) | Peer::Group(_));
    let mut extra_defs: HashMap<&str, (&ExtraRule, &str)> = HashMap::new();
    for host in &hosts {
        for x in host.options.extra_rules.iter().filter(|x| mirrored(x)) {
            match extra_defs.get(x.id.as_str()) {
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
                    extra_defs.insert(x.id.as_str(), (x, host.name.as_str()));
                }
            }
        }
    }

    // 3. Inbound rules, host by host; remember inbound rules with host peers for mirroring.
    let mut mirrors: BTreeMap<MirrorKey, Mirror> = BTreeMap::new();
    let mut inbound_all: Vec<Vec<Rule>> = Vec::with_capacity(hosts.len());
    let mut labels: HashMap<String, Arc<str>> = HashMap::new();
    let mut label = |s: String| labels.entry(s.clone()).or_insert_with(|| Arc::from(s)).clone();
    for (hi, host) in hosts.iter().enumerate() {
        let o = &host.options;
        let name = &host.name;
        let err = |msg: String| Error::new(format!("host {name}: {msg}"));
        // Validate extra rules and disabled ids first, whether or not they target this host.
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
                    Peer::Group(g) if !inv.has_group(g) => {
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
        let enabled = |id: &str| !o.disabled_rules.contains(id);
        let mut inbound: Vec<Rule> = vec![];
        let mut add_one = |rule: Rule, mirror_group: Option<&str>, inbound: &mut Vec<Rule>| {
            if let Some(g) = mirror_group {
                let key = MirrorKey {
                    source_group: g.to_string(),
                    id: rule.id.clone(),
                    port: rule.port,
                    protocol: rule.protocol,
                };
                mirrors
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
            inbound.push(rule);
        };
        // One rule per protocol (the template's own protocol is a placeholder); rules without a
        // peer other than the host itself are dropped.
        let mut add = |template: Rule, protocols: &[String], mirror_group: Option<&str>, inbound: &mut Vec<Rule>| {
            if host.peer_count(&template) == 0 {
                return;
            }
            for p in protocols {
                let rule =
                    Rule { protocol: Proto::of(p), ..template.clone() };
                add_one(rule, mirror_group, inbound);
            }
        };

        if let (Some(ms), true) = (&o.management_sources, enabled(&m.management.id)) {
            let peers = sets.intern(ms.clone());
            let rule = Rule {
                id: Arc::from(m.management.id.as_str()),
                port: m.management.port,
                protocol: Proto::Tcp,
                peers: peers.clone(),
                purpose: Arc::from(m.management.purpose.as_str()),
                label: label("host_firewall_management_sources".into()),
                set: label("mgmt".into()),
                members: Members::Networks,
                origin: Origin::Management,
            };
            add(rule, &m.management.protocols, None, &mut inbound);
        }
        for r in &m.internal {
            if !host.services.contains(&r.service) || !enabled(&r.id) || !holds(&r.when, o) {
                continue;
            }
            let src_group = service_group(&r.source).expect("checked matrix");
            let peers = group_set(src_group, &mut sets);
            let origin =
                Origin::Flow { source: Arc::from(label_for(&r.source)), target: Arc::from(label_for(&r.service)) };
            let rule = Rule {
                id: Arc::from(r.id.as_str()),
                port: r.port,
                protocol: Proto::Tcp,
                peers: peers.clone(),
                purpose: Arc::from(r.purpose.as_str()),
                label: label(label_for(&r.source)),
                set: label(format!("g-{src_group}")),
                members: Members::Hosts,
                origin: origin.clone(),
            };
            add(rule, &r.protocols, Some(src_group), &mut inbound);
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
            let peers = sets.intern(nets);
            let rule = Rule {
                id: Arc::from(r.id.as_str()),
                port: r.port,
                protocol: Proto::Tcp,
                peers: peers.clone(),
                purpose: Arc::from(r.purpose.as_str()),
                label: label(format!("{} ({})", r.audience, aud.variables.join(" + "))),
                set: label(audience_set_key(&aud.variables)),
                members: Members::Networks,
                origin: Origin::Audience {
                    audience: Arc::from(r.audience.as_str()),
                    target: Arc::from(
                        m.services
                            .iter()
                            .find(|s| s.group == r.group)
                            .map(|s| label_for(&s.name))
                            .unwrap_or_else(|| format!("group {}", r.group)),
                    ),
                },
            };
            add(rule, &r.protocols, None, &mut inbound);
        }
        for x in &o.extra_rules {
            if !enabled(&x.id) || !extra_targets(x, host, m) {
                continue;
            }
            let (peers, mirror_group, who, set) = match &x.source {
                Peer::Service(s) => {
                    let g = service_group(s).expect("validated above");
                    (group_set(g, &mut sets), Some(g), label_for(s), format!("g-{g}"))
                }
                Peer::Group(g) => (group_set(g, &mut sets), Some(g.as_str()), format!("group {g}"), format!("g-{g}")),
                Peer::Cidrs(c) => {
                    (sets.intern(c.clone()), None, "host_firewall_extra_rules".to_string(), format!("x-{}", x.id))
                }
            };
            let target = match &x.target {
                Peer::Service(s) => label_for(s),
                Peer::Group(g) => format!("group {g}"),
                Peer::Cidrs(_) => unreachable!("targets are services or groups"),
            };
            let origin = match mirror_group {
                Some(_) => Origin::Flow { source: Arc::from(who.as_str()), target: Arc::from(target.as_str()) },
                None => Origin::Extra { target: Arc::from(target.as_str()) },
            };
            let rule = Rule {
                id: Arc::from(x.id.as_str()),
                port: x.port,
                protocol: Proto::Tcp,
                peers: peers.clone(),
                purpose: Arc::from(x.purpose.as_str()),
                label: label(who.clone()),
                set: label(set.clone()),
                members: if mirror_group.is_some() { Members::Hosts } else { Members::Networks },
                origin: origin.clone(),
            };
            add(rule, &x.protocols, mirror_group, &mut inbound);
        }
        inbound.sort_by(|a, b| (a.port, a.protocol, &a.id).cmp(&(b.port, b.protocol, &b.id)));
        inbound_all.push(inbound);
    }
    for (h, rules) in hosts.iter_mut().zip(inbound_all) {
        h.inbound = rules;
    }

    // 4. Outbound rules: the mirror image of inbound rules whose peers are inventory hosts.
    for (key, mir) in mirrors {
        let dest = sets.intern(mir.targets.iter().flat_map(|&t| hosts[t].own.iter().copied()).collect());
        let Some(sources) = inv.group_hosts(&key.source_group) else {
            continue;
        };
        for s in sources {
            let hi = index[s.as_str()];
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
            let h = &mut hosts[hi];
            if h.peer_count(&rule) > 0 {
                h.outbound.push(rule);
            }
        }
    }
    for h in &mut hosts {
        h.outbound.sort_by(|a, b| (a.port, a.protocol, &a.id).cmp(&(b.port, b.protocol, &b.id)));
    }
    // 5. Every set a host's rules use has one content, and a name of its own on every backend:
    //    what `apply` would refuse on one host is refused here, before any host is touched.
    for h in &hosts {
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
        if let Some((a, b, name)) = crate::policy::naming_collisions(by_key.keys().copied()).into_iter().next() {
            return Err(Error::new(format!(
                "host {}: the peer sets {a} and {b} would both be the {name}; rename one of the groups \
                 (or extra rule ids) they come from",
                h.name
            )));
        }
    }
    Ok(Plans { hosts, warnings })
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

fn hosts_own<'a>(hosts: &'a [HostPlan], index: &HashMap<&str, usize>, h: &str) -> impl Iterator<Item = IpNet> + 'a {
    index.get(h).map(|&i| hosts[i].own.iter().copied()).into_iter().flatten()
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
    fn unresolvable_host_is_an_error_naming_it() {
        let mut inv = two_tier();
        inv["_meta"]["hostvars"]["dj"]["ansible_host"] = json!("nowhere.invalid");
        let e = plans(inv).unwrap_err();
        assert!(e.0.starts_with("host dj: no address: ansible_host 'nowhere.invalid' does not resolve"), "{e}");
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

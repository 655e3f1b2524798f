//! The plan as cloud security policy: one group per inventory group that the plan's rules
//! name (an AWS security group, an Azure application security group), internal rows as "from
//! the group of the source service" and external audiences as CIDRs.
//!
//! [`policy`] folds every host's plan into group rules: a rule is identified by the group it
//! is attached to, its direction, its matrix (or extra) row id and its protocol, so the number
//! of rules depends on the groups and rows, never on the number of hosts. [`azure_nsg`] and
//! [`aws_sg`] render it; both check the providers' limits and fail with a message naming the
//! group, the rule and the limit.

use crate::error::{Error, Result};
use crate::matrix::Matrix;
use crate::options::Peer;
use crate::plan::{HostPlan, Origin, Plans, Rule};
use crate::request::{EgressMode, Members, Proto};
use ipnet::IpNet;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// Every cloud object this collection creates is named with this prefix and carries
/// [`OWNER_TAG`]: the role changes and purges only such objects.
pub const NAME_PREFIX: &str = "vorfw-";
/// The tag (key, value) marking objects as ours.
pub const OWNER_TAG: (&str, &str) = ("managed-by", "vorstream.firewall");
/// The rule id of the allow-all outbound rule rendered when egress is open.
pub const EGRESS_OPEN_ID: &str = "egress-open";
/// Azure: rule priorities of hashed rules (inclusive); the fixed deny rules sit above them.
pub const AZURE_PRIORITY_RANGE: (u32, u32) = (100, 4000);
/// Azure: the priority of the deny-all rules (the last one users may set).
pub const AZURE_DENY_PRIORITY: u32 = 4096;
/// Azure limits: security rules per NSG, characters in a resource or rule name, in a description.
pub const AZURE_MAX_RULES: usize = 1000;
pub const AZURE_MAX_NAME: usize = 80;
pub const AZURE_MAX_DESCRIPTION: usize = 140;
/// AWS limits: a security group's name and description, a rule's description; security groups
/// per network interface (default quota and maximum); rules per group (default quota; the
/// hard ceiling is 1,000 = rules per group × groups per interface).
pub const AWS_MAX_NAME: usize = 255;
pub const AWS_MAX_DESCRIPTION: usize = 255;
pub const AWS_DEFAULT_GROUPS_PER_ENI: usize = 5;
pub const AWS_MAX_GROUPS_PER_ENI: usize = 16;
pub const AWS_DEFAULT_RULES_QUOTA: usize = 60;
pub const AWS_MAX_RULES: usize = 1000;
pub const AZURE_API_VERSION: &str = "2023-09-01";

/// Where the external audiences' rules go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExternalAt {
    /// In the security groups / NSGs, with the audiences' CIDRs as sources.
    Group,
    /// At a perimeter (firewall, reverse proxy, WAF): listed apart, not in the groups.
    Perimeter,
}

/// How Azure NSGs are cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NsgMode {
    /// One NSG per subnet ([`CloudOptions::subnets`]; default one subnet holding every group).
    Subnet,
    /// One NSG per group (for NICs or subnets dedicated to one service).
    Service,
}

/// AWS: the Entra ID prefix lists' default `max_entries`. Microsoft's AzureActiveDirectory tag
/// held 200 IPv4 and 16 IPv6 prefixes in 2025's public files (tests/fixtures/servicetags), and a
/// list cannot hold more entries than its `max_entries`; the rest is room to grow.
pub const AWS_DEFAULT_PREFIX_LIST_ENTRIES: usize = 300;

#[derive(Debug, Clone)]
pub struct CloudOptions {
    pub external: ExternalAt,
    pub nsg_mode: NsgMode,
    /// Subnet name → the inventory groups whose hosts it holds (NsgMode::Subnet).
    pub subnets: Vec<(String, Vec<String>)>,
    /// `None`: restricted when every host's `host_firewall_egress` is restricted.
    pub egress: Option<EgressMode>,
    /// AWS: rules per security group and direction allowed (the account's quota).
    pub aws_rules_quota: usize,
    /// AWS: the Entra ID prefix lists' `max_entries` (each reference counts as that many rules).
    pub aws_prefix_list_entries: usize,
    /// The inventory groups that are cloud groups (empty: every group the plan's rules name).
    pub groups: Vec<String>,
}

impl Default for CloudOptions {
    fn default() -> Self {
        CloudOptions {
            external: ExternalAt::Group,
            nsg_mode: NsgMode::Subnet,
            subnets: vec![],
            egress: None,
            aws_rules_quota: AWS_MAX_RULES,
            aws_prefix_list_entries: AWS_DEFAULT_PREFIX_LIST_ENTRIES,
            groups: vec![],
        }
    }
}

impl CloudOptions {
    /// The options as the plan module takes them (`cloud:`): `nsg_mode` (`subnet`, `service`),
    /// `subnets` (name → groups), `external` (`group`, `perimeter`), `egress` (`auto`, `open`,
    /// `restricted`), `aws_rules_quota`, `aws_prefix_list_entries`; `format` is the caller's.
    pub fn from_json(v: &Value) -> Result<CloudOptions> {
        let mut o = CloudOptions::default();
        let Some(map) = v.as_object() else {
            return Err(Error::new("cloud: expected a dictionary"));
        };
        let word = |k: &str, allowed: &[&str]| -> Result<Option<String>> {
            match map.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if allowed.contains(&s.as_str()) => Ok(Some(s.clone())),
                Some(x) => Err(Error::new(format!("cloud.{k}: {x} is not one of {}", allowed.join(", ")))),
            }
        };
        let count = |k: &str| -> Result<Option<usize>> {
            match map.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(x) => x
                    .as_u64()
                    .or_else(|| x.as_str().and_then(|s| s.trim().parse().ok()))
                    .filter(|n| *n > 0)
                    .map(|n| Some(n as usize))
                    .ok_or_else(|| Error::new(format!("cloud.{k}: {x} is not a positive integer"))),
            }
        };
        for k in map.keys() {
            if ![
                "format",
                "nsg_mode",
                "subnets",
                "external",
                "egress",
                "aws_rules_quota",
                "aws_prefix_list_entries",
                "groups",
            ]
            .contains(&k.as_str())
            {
                return Err(Error::new(format!("cloud: unknown option {k}")));
            }
        }
        if word("nsg_mode", &["subnet", "service"])?.as_deref() == Some("service") {
            o.nsg_mode = NsgMode::Service;
        }
        if word("external", &["group", "perimeter"])?.as_deref() == Some("perimeter") {
            o.external = ExternalAt::Perimeter;
        }
        o.egress = match word("egress", &["auto", "open", "restricted"])?.as_deref() {
            Some("open") => Some(EgressMode::Open),
            Some("restricted") => Some(EgressMode::Restricted),
            _ => None,
        };
        if let Some(n) = count("aws_rules_quota")? {
            o.aws_rules_quota = n;
        }
        if let Some(n) = count("aws_prefix_list_entries")? {
            o.aws_prefix_list_entries = n;
        }
        match map.get("groups") {
            None | Some(Value::Null) => {}
            Some(Value::Array(a)) if a.iter().all(Value::is_string) => {
                o.groups = a.iter().filter_map(|g| g.as_str().map(String::from)).collect();
            }
            Some(x) => return Err(Error::new(format!("cloud.groups: {x} is not a list of inventory groups"))),
        }
        match map.get("subnets") {
            None | Some(Value::Null) => {}
            Some(Value::Object(subnets)) => {
                for (name, groups) in subnets {
                    let gs: Option<Vec<String>> =
                        groups.as_array().map(|a| a.iter().filter_map(|g| g.as_str().map(String::from)).collect());
                    match gs {
                        Some(gs) if !gs.is_empty() => o.subnets.push((name.clone(), gs)),
                        _ => {
                            return Err(Error::new(format!(
                                "cloud.subnets.{name}: expected a list of inventory groups"
                            )))
                        }
                    }
                }
            }
            Some(x) => return Err(Error::new(format!("cloud.subnets: {x} is not a dictionary of subnet to groups"))),
        }
        Ok(o)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Dir {
    In,
    Out,
}

impl Dir {
    pub fn as_str(self) -> &'static str {
        match self {
            Dir::In => "in",
            Dir::Out => "out",
        }
    }
}

/// The other end of a cloud rule.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum CloudPeer {
    /// The group of an inventory group (the source service's, or the target's for egress).
    Group(String),
    /// CIDRs (external audiences, management sources, extra rules with sources).
    Networks(BTreeSet<IpNet>),
    /// The identity provider: Azure's service tag, AWS's customer-managed prefix lists.
    IdentityProvider,
    /// Anywhere (the open-egress rule).
    Anywhere,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudRule {
    /// The matrix or extra row id.
    pub id: String,
    pub dir: Dir,
    /// `None`: every protocol (the open-egress rule only).
    pub protocol: Option<Proto>,
    pub port: Option<u16>,
    /// The inventory group the rule is attached to: the target (inbound), the source (outbound).
    pub group: String,
    pub peer: CloudPeer,
    pub purpose: String,
    /// A row of the external matrix (an audience).
    pub external: bool,
}

impl CloudRule {
    fn proto_str(&self) -> &'static str {
        self.protocol.map_or("all", Proto::as_str)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudGroup {
    /// The inventory group (`all` for the Consul Client, on every host).
    pub group: String,
    /// The matrix service the group runs, if it is a service's group.
    pub service: Option<String>,
    /// The cloud object's name (`vorfw-<group>`).
    pub name: String,
    /// How many inventory hosts are members.
    pub hosts: usize,
}

impl CloudGroup {
    pub fn label(&self) -> String {
        match &self.service {
            Some(s) => format!("{s} (group {})", self.group),
            None => format!("group {}", self.group),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct CloudPolicy {
    pub groups: Vec<CloudGroup>,
    /// Sorted by (group, direction, id, protocol).
    pub rules: Vec<CloudRule>,
    /// External rules kept for a perimeter (ExternalAt::Perimeter).
    pub perimeter: Vec<CloudRule>,
    pub egress_restricted: bool,
    /// The identity provider's service tag (from the matrix data file).
    pub idp_service_tag: String,
    /// The host that is a member of the most cloud groups, and how many.
    pub busiest_host: Option<(String, usize)>,
    pub warnings: Vec<String>,
}

impl CloudPolicy {
    pub fn group(&self, g: &str) -> Option<&CloudGroup> {
        self.groups.iter().find(|x| x.group == g)
    }
}

/// A cloud object name for an inventory group: `vorfw-` and the group, characters other than
/// letters, digits, `_`, `.` and `-` as `-`.
pub fn object_name(group: &str) -> String {
    let body: String =
        group.chars().map(|c| if c.is_ascii_alphanumeric() || "_.-".contains(c) { c } else { '-' }).collect();
    format!("{NAME_PREFIX}{body}")
}

/// The group a host's inbound rule targets, from the row that made it.
fn target_group(m: &Matrix, h: &HostPlan, r: &Rule) -> Result<String> {
    if matches!(r.origin, Origin::Management) {
        return Ok("all".into());
    }
    if let Some(row) = m.internal.iter().find(|x| x.id == *r.id) {
        return Ok(m.service(&row.service).map(|s| s.group.clone()).expect("checked matrix"));
    }
    if let Some(row) = m.external.iter().find(|x| x.id == *r.id) {
        return Ok(row.group.clone());
    }
    if let Some(x) = h.options.extra_rules.iter().find(|x| x.id == *r.id) {
        return match &x.target {
            Peer::Service(s) => Ok(m.service(s).map(|s| s.group.clone()).expect("validated by the planner")),
            Peer::Group(g) => Ok(g.clone()),
            Peer::Cidrs(_) => Err(Error::new(format!("host {}: rule {} has no target group", h.name, r.id))),
        };
    }
    Err(Error::new(format!("host {}: rule {}: no matrix or extra row has this id", h.name, r.id)))
}

type Key = (String, Dir, String, Option<Proto>, u8);

/// Every host's plan folded into group rules.
pub fn policy(plans: &Plans, m: &Matrix, o: &CloudOptions) -> Result<CloudPolicy> {
    let mut rules: BTreeMap<Key, CloudRule> = BTreeMap::new();
    let mut add = |r: CloudRule| -> Result<()> {
        // Networks of both families go into one rule here; renderings split them.
        let kind = match r.peer {
            CloudPeer::Group(_) => 0,
            CloudPeer::Networks(_) => 1,
            CloudPeer::IdentityProvider => 2,
            CloudPeer::Anywhere => 3,
        };
        let key = (r.group.clone(), r.dir, r.id.clone(), r.protocol, kind);
        match rules.get_mut(&key) {
            None => {
                rules.insert(key, r);
            }
            Some(have) => match (&mut have.peer, r.peer) {
                (CloudPeer::Networks(a), CloudPeer::Networks(b)) => a.extend(b),
                (a, b) if *a == b => {}
                (a, b) => {
                    return Err(Error::new(format!(
                        "rule {} on group {}: one row with two sources ({a:?} and {b:?})",
                        r.id, r.group
                    )))
                }
            },
        }
        Ok(())
    };
    let restricted = match o.egress {
        Some(e) => e == EgressMode::Restricted,
        None => !plans.hosts.is_empty() && plans.hosts.iter().all(|h| h.options.egress == EgressMode::Restricted),
    };
    let mut egress_extras = false;
    for h in &plans.hosts {
        for r in &h.inbound {
            let target = target_group(m, h, r)?;
            let external = matches!(r.origin, Origin::Audience { .. });
            let peer = match r.members {
                Members::Hosts => {
                    let Some(g) = r.set.strip_prefix("g-") else {
                        return Err(Error::new(format!(
                            "host {}: rule {}: peer set {} is not a group's",
                            h.name, r.id, r.set
                        )));
                    };
                    CloudPeer::Group(g.to_string())
                }
                Members::Networks => CloudPeer::Networks(h.peers(r).copied().collect()),
            };
            if let (true, CloudPeer::Group(src)) = (restricted, &peer) {
                add(CloudRule {
                    id: r.id.to_string(),
                    dir: Dir::Out,
                    protocol: Some(r.protocol),
                    port: Some(r.port),
                    group: src.clone(),
                    peer: CloudPeer::Group(target.clone()),
                    purpose: r.purpose.to_string(),
                    external: false,
                })?;
            }
            add(CloudRule {
                id: r.id.to_string(),
                dir: Dir::In,
                protocol: Some(r.protocol),
                port: Some(r.port),
                group: target,
                peer,
                purpose: r.purpose.to_string(),
                external,
            })?;
        }
        egress_extras |= !h.options.egress_extra_rules.is_empty();
        if restricted && h.options.entra {
            let idp = &m.egress.identity_provider;
            for svc in h.services.iter().filter(|s| m.oidc_clients.contains(s)) {
                let g = m.service(svc).map(|s| s.group.clone()).expect("a matrix service");
                for p in &idp.protocols {
                    add(CloudRule {
                        id: idp.id.clone(),
                        dir: Dir::Out,
                        protocol: Some(Proto::of(p)),
                        port: Some(idp.port),
                        group: g.clone(),
                        peer: CloudPeer::IdentityProvider,
                        purpose: idp.purpose.clone(),
                        external: false,
                    })?;
                }
            }
        }
    }
    if !restricted && !plans.hosts.is_empty() {
        add(CloudRule {
            id: EGRESS_OPEN_ID.into(),
            dir: Dir::Out,
            protocol: None,
            port: None,
            group: "all".into(),
            peer: CloudPeer::Anywhere,
            purpose: "host_firewall_egress is open: any destination".into(),
            external: false,
        })?;
    }
    let mut warnings = vec![];
    if restricted && egress_extras {
        warnings.push(
            "host_firewall_egress_extra_rules are per host and are not rendered as cloud rules; add them to the \
             groups yourself"
                .to_string(),
        );
    }
    let (mut kept, mut perimeter) = (vec![], vec![]);
    for r in rules.into_values() {
        if !o.groups.is_empty() {
            if !o.groups.contains(&r.group) {
                continue;
            }
            if let CloudPeer::Group(g) = &r.peer {
                if !o.groups.contains(g) {
                    return Err(Error::new(format!(
                        "rule {} of group {} names group {g}, which is not a cloud group; add it to the cloud groups",
                        r.id, r.group
                    )));
                }
            }
        }
        if r.external && o.external == ExternalAt::Perimeter {
            perimeter.push(r);
        } else {
            kept.push(r);
        }
    }
    // Groups: every group a rule names, with its members counted.
    let mut names: BTreeSet<String> = BTreeSet::new();
    for r in kept.iter().chain(&perimeter) {
        names.insert(r.group.clone());
        if let CloudPeer::Group(g) = &r.peer {
            names.insert(g.clone());
        }
    }
    let mut groups = vec![];
    let mut by_name: BTreeMap<String, String> = BTreeMap::new();
    for g in names {
        let name = object_name(&g);
        if let Some(other) = by_name.insert(name.clone(), g.clone()) {
            return Err(Error::new(format!(
                "groups {other} and {g} would both be the cloud group {name}; rename one of them"
            )));
        }
        let hosts = plans.hosts.iter().filter(|h| g == "all" || h.groups.contains(&g)).count();
        let service = m.services.iter().find(|s| s.group == g).map(|s| s.name.clone());
        groups.push(CloudGroup { group: g, service, name, hosts });
    }
    let idp_service_tag = m.egress.identity_provider.service_tag.clone().unwrap_or_default();
    let mut busiest_host: Option<(String, usize)> = None;
    for h in &plans.hosts {
        let n = groups.iter().filter(|g| g.group == "all" || h.groups.contains(&g.group)).count();
        if busiest_host.as_ref().is_none_or(|b| n > b.1) {
            busiest_host = Some((h.name.clone(), n));
        }
    }
    Ok(CloudPolicy {
        groups,
        rules: kept,
        perimeter,
        egress_restricted: restricted,
        idp_service_tag,
        busiest_host,
        warnings,
    })
}

/// FNV-1a, 64 bits: a hash that never changes between builds, platforms or releases.
pub fn stable_hash(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Priorities for rule names (one direction of one NSG): each name's home slot is its stable
/// hash in [`AZURE_PRIORITY_RANGE`]; on a collision the name sorting later by (home, name)
/// probes upward (wrapping). Adding a rule moves no other rule unless it lands in a cluster.
pub fn priorities<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<BTreeMap<String, u32>> {
    let (lo, hi) = AZURE_PRIORITY_RANGE;
    let span = u64::from(hi - lo + 1);
    let mut homes: Vec<(u32, &str)> =
        names.into_iter().map(|n| (lo + (stable_hash(n) % span) as u32, n)).collect::<Vec<_>>();
    homes.sort();
    homes.dedup();
    if homes.len() as u64 > span {
        return Err(Error::new(format!("{} rules do not fit priorities {lo}-{hi}", homes.len())));
    }
    let mut taken: BTreeSet<u32> = BTreeSet::new();
    let mut out = BTreeMap::new();
    for (home, name) in homes {
        let mut p = home;
        while taken.contains(&p) {
            p = if p == hi { lo } else { p + 1 };
        }
        taken.insert(p);
        out.insert(name.to_string(), p);
    }
    Ok(out)
}

fn families(nets: &BTreeSet<IpNet>) -> [(&'static str, Vec<String>); 2] {
    let v4 = nets.iter().filter(|n| matches!(n, IpNet::V4(_))).map(|n| n.to_string()).collect();
    let v6 = nets.iter().filter(|n| matches!(n, IpNet::V6(_))).map(|n| n.to_string()).collect();
    [("", v4), ("-v6", v6)]
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut t: String = s.chars().take(max - 1).collect();
    t.push('…');
    t
}

fn asg_ref(name: &str) -> Value {
    json!({"id": format!("[resourceId('Microsoft.Network/applicationSecurityGroups', '{name}')]")})
}

fn azure_name_ok(what: &str, name: &str) -> Result<()> {
    let chars: Vec<char> = name.chars().collect();
    let valid = !chars.is_empty()
        && chars.len() <= AZURE_MAX_NAME
        && chars[0].is_ascii_alphanumeric()
        && chars.last().is_some_and(|c| c.is_ascii_alphanumeric() || *c == '_')
        && chars.iter().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(*c));
    if !valid {
        return Err(Error::new(format!(
            "azure-nsg: {what} name '{name}' is not a valid Azure name (1-{AZURE_MAX_NAME} characters: letters, \
             digits, '_', '.', '-'; starting with a letter or digit, ending with a letter, digit or '_'); \
             shorten or rename the group or rule id"
        )));
    }
    Ok(())
}

/// The NSGs to render: name → the groups whose rules they hold.
fn nsgs(p: &CloudPolicy, o: &CloudOptions) -> Result<Vec<(String, BTreeSet<String>)>> {
    let all: BTreeSet<String> = p.groups.iter().map(|g| g.group.clone()).collect();
    match o.nsg_mode {
        NsgMode::Service => Ok(p
            .groups
            .iter()
            .map(|g| (g.name.clone(), BTreeSet::from([g.group.clone(), "all".to_string()])))
            .collect()),
        NsgMode::Subnet if o.subnets.is_empty() => Ok(vec![(format!("{NAME_PREFIX}vorstream"), all)]),
        NsgMode::Subnet => {
            let mut out = vec![];
            let mut covered: BTreeSet<String> = BTreeSet::from(["all".to_string()]);
            for (subnet, groups) in &o.subnets {
                let mut gs: BTreeSet<String> = groups.iter().cloned().collect();
                gs.insert("all".into());
                covered.extend(gs.iter().cloned());
                out.push((format!("{NAME_PREFIX}{subnet}"), gs));
            }
            let missing: Vec<&String> = all.difference(&covered).collect();
            if !missing.is_empty() {
                let m: Vec<&str> = missing.iter().map(|s| s.as_str()).collect();
                return Err(Error::new(format!("azure-nsg: the groups {} are in no --subnet", m.join(", "))));
            }
            Ok(out)
        }
    }
}

fn tags(g: Option<&CloudGroup>) -> Value {
    let mut t = Map::new();
    t.insert(OWNER_TAG.0.into(), OWNER_TAG.1.into());
    if let Some(g) = g {
        t.insert("vorstream-group".into(), g.group.clone().into());
        if let Some(s) = &g.service {
            t.insert("vorstream-service".into(), s.clone().into());
        }
    }
    Value::Object(t)
}

/// An ARM template: one application security group per cloud group, NSGs per [`NsgMode`].
pub fn azure_nsg(p: &CloudPolicy, o: &CloudOptions) -> Result<Value> {
    let mut resources = vec![];
    for g in &p.groups {
        azure_name_ok("application security group", &g.name)?;
        resources.push(json!({
            "type": "Microsoft.Network/applicationSecurityGroups",
            "apiVersion": AZURE_API_VERSION,
            "name": g.name,
            "location": "[parameters('location')]",
            "tags": tags(Some(g)),
            "properties": {}
        }));
    }
    let asg = |group: &str| p.group(group).map(|g| g.name.clone()).expect("every rule's group is a cloud group");
    for (nsg, groups) in nsgs(p, o)? {
        azure_name_ok("network security group", &nsg)?;
        let mut rules: Vec<(String, Dir, Map<String, Value>)> = vec![];
        let mut used: BTreeSet<String> = BTreeSet::new();
        for r in p.rules.iter().filter(|r| groups.contains(&r.group)) {
            let mine = asg(&r.group);
            used.insert(mine.clone());
            let peers: Vec<(&str, Value)> = match &r.peer {
                CloudPeer::Group(g) => {
                    used.insert(asg(g));
                    vec![("", json!({"asg": asg(g)}))]
                }
                CloudPeer::Networks(n) => families(n)
                    .into_iter()
                    .filter(|(_, v)| !v.is_empty())
                    .map(|(suffix, v)| (suffix, json!({"prefixes": v})))
                    .collect(),
                CloudPeer::IdentityProvider => vec![("", json!({"prefix": p.idp_service_tag}))],
                CloudPeer::Anywhere => vec![("", json!({"prefix": "*"}))],
            };
            for (suffix, peer) in peers {
                let mut name = format!("{NAME_PREFIX}{}-{}-{}", r.id, r.proto_str(), r.dir.as_str());
                if r.dir == Dir::Out {
                    name = format!("{name}-{}", r.group);
                }
                name.push_str(suffix);
                azure_name_ok("security rule", &name)?;
                let (mine_side, peer_side) = match r.dir {
                    Dir::In => ("destination", "source"),
                    Dir::Out => ("source", "destination"),
                };
                let mut props = Map::new();
                props.insert(
                    "description".into(),
                    truncate(&format!("{}: {}", r.id, r.purpose), AZURE_MAX_DESCRIPTION).into(),
                );
                props.insert(
                    "protocol".into(),
                    match r.protocol {
                        Some(Proto::Tcp) => "Tcp",
                        Some(Proto::Udp) => "Udp",
                        None => "*",
                    }
                    .into(),
                );
                props.insert("sourcePortRange".into(), "*".into());
                props.insert("destinationPortRange".into(), r.port.map_or("*".to_string(), |x| x.to_string()).into());
                props.insert(format!("{mine_side}ApplicationSecurityGroups"), json!([asg_ref(&mine)]));
                if let Some(g) = peer.get("asg").and_then(Value::as_str) {
                    props.insert(format!("{peer_side}ApplicationSecurityGroups"), json!([asg_ref(g)]));
                } else if let Some(v) = peer.get("prefixes").and_then(Value::as_array) {
                    if v.len() == 1 {
                        props.insert(format!("{peer_side}AddressPrefix"), v[0].clone());
                    } else {
                        props.insert(format!("{peer_side}AddressPrefixes"), Value::Array(v.clone()));
                    }
                } else if let Some(x) = peer.get("prefix") {
                    props.insert(format!("{peer_side}AddressPrefix"), x.clone());
                }
                props.insert("access".into(), "Allow".into());
                props.insert("direction".into(), if r.dir == Dir::In { "Inbound" } else { "Outbound" }.into());
                rules.push((name, r.dir, props));
            }
        }
        let mut out_rules = vec![];
        for dir in [Dir::In, Dir::Out] {
            let names: Vec<&str> = rules.iter().filter(|x| x.1 == dir).map(|x| x.0.as_str()).collect();
            if names.len() != names.iter().collect::<BTreeSet<_>>().len() {
                return Err(Error::new(format!("azure-nsg: NSG {nsg}: two rules share a name")));
            }
            let prio = priorities(names).map_err(|e| e.context(format!("azure-nsg: NSG {nsg}")))?;
            for (name, _, props) in rules.iter().filter(|x| x.1 == dir) {
                let mut props = props.clone();
                props.insert("priority".into(), prio[name].into());
                out_rules.push((dir, prio[name], json!({"name": name, "properties": props})));
            }
            // Azure's default rules admit the whole virtual network: deny the rest explicitly.
            if dir == Dir::In || p.egress_restricted {
                let (n, d) = if dir == Dir::In { ("deny-all-in", "Inbound") } else { ("deny-all-out", "Outbound") };
                out_rules.push((
                    dir,
                    AZURE_DENY_PRIORITY,
                    json!({"name": format!("{NAME_PREFIX}{n}"), "properties": {
                        "description": "vorstream.firewall: everything the plan does not allow",
                        "protocol": "*", "sourcePortRange": "*", "destinationPortRange": "*",
                        "sourceAddressPrefix": "*", "destinationAddressPrefix": "*",
                        "access": "Deny", "priority": AZURE_DENY_PRIORITY, "direction": d}}),
                ));
            }
        }
        if out_rules.len() > AZURE_MAX_RULES {
            return Err(Error::new(format!(
                "azure-nsg: NSG {nsg} would hold {} rules, more than Azure's {AZURE_MAX_RULES} per NSG; \
                 use --nsg-mode service or more --subnet NSGs",
                out_rules.len()
            )));
        }
        out_rules.sort_by_key(|x| (x.0, x.1));
        let depends: Vec<String> = used
            .iter()
            .map(|n| format!("[resourceId('Microsoft.Network/applicationSecurityGroups', '{n}')]"))
            .collect();
        let mut t = tags(None);
        t["vorstream-groups"] = groups.iter().cloned().collect::<Vec<_>>().join(" ").into();
        resources.push(json!({
            "type": "Microsoft.Network/networkSecurityGroups",
            "apiVersion": AZURE_API_VERSION,
            "name": nsg,
            "location": "[parameters('location')]",
            "tags": t,
            "dependsOn": depends,
            "properties": {"securityRules": out_rules.into_iter().map(|x| x.2).collect::<Vec<_>>()}
        }));
    }
    Ok(json!({
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "metadata": {
            "generator": "vorstream.firewall (vorfw plan --format azure-nsg)",
            "egress": if p.egress_restricted { "restricted" } else { "open" },
            "perimeter": perimeter_json(p),
            "warnings": p.warnings,
        },
        "parameters": {"location": {"type": "string", "defaultValue": "[resourceGroup().location]"}},
        "resources": resources
    }))
}

fn perimeter_json(p: &CloudPolicy) -> Value {
    p.perimeter
        .iter()
        .map(|r| {
            let nets: Vec<String> = match &r.peer {
                CloudPeer::Networks(n) => n.iter().map(|x| x.to_string()).collect(),
                _ => vec![],
            };
            json!({"id": r.id, "group": r.group, "protocol": r.proto_str(), "port": r.port, "sources": nets, "purpose": r.purpose})
        })
        .collect()
}

/// Text AWS accepts in descriptions: letters, digits, spaces and `._-:/()#,@[]+=&;{}!$*`;
/// anything else becomes `-`.
pub fn aws_text(s: &str, max: usize) -> String {
    let t: String = s
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || " ._-:/()#,@[]+=&;{}!$*".contains(c) { c } else { '-' })
        .collect();
    t.chars().take(max).collect()
}

/// An AWS rule's identity: port, protocol, source kind and source.
type AwsKey = (Option<u16>, &'static str, &'static str, String);

/// Security groups in the shape `amazon.aws.ec2_security_group` takes, and the Entra ID
/// customer-managed prefix lists the OIDC clients' egress names.
pub fn aws_sg(p: &CloudPolicy, o: &CloudOptions) -> Result<Value> {
    let idp_lists = [("IPv4", format!("{NAME_PREFIX}entra-ipv4")), ("IPv6", format!("{NAME_PREFIX}entra-ipv6"))];
    let mut groups = vec![];
    let mut uses_idp = false;
    for g in &p.groups {
        if g.name.len() > AWS_MAX_NAME {
            return Err(Error::new(format!(
                "aws-sg: security group name '{}' is longer than {AWS_MAX_NAME} characters",
                g.name
            )));
        }
        let mut dirs: [BTreeMap<AwsKey, Value>; 2] = [BTreeMap::new(), BTreeMap::new()];
        let mut counts = [0usize; 2];
        for r in p.rules.iter().filter(|r| r.group == g.group) {
            let d = usize::from(r.dir == Dir::Out);
            let desc = aws_text(&format!("vorfw {}: {}", r.id, r.purpose), AWS_MAX_DESCRIPTION);
            let mut base = Map::new();
            base.insert("proto".into(), r.proto_str().into());
            if let Some(port) = r.port {
                base.insert("from_port".into(), port.into());
                base.insert("to_port".into(), port.into());
            }
            let sources: Vec<(&str, Value, usize)> = match &r.peer {
                CloudPeer::Group(x) => {
                    vec![("group_name", p.group(x).map(|c| c.name.clone()).expect("a cloud group").into(), 1)]
                }
                CloudPeer::Networks(n) => n
                    .iter()
                    .map(|x| (if matches!(x, IpNet::V4(_)) { "cidr_ip" } else { "cidr_ipv6" }, x.to_string().into(), 1))
                    .collect(),
                CloudPeer::IdentityProvider => {
                    uses_idp = true;
                    idp_lists.iter().map(|(_, n)| ("ip_prefix", n.clone().into(), o.aws_prefix_list_entries)).collect()
                }
                CloudPeer::Anywhere => vec![("cidr_ip", "0.0.0.0/0".into(), 1), ("cidr_ipv6", "::/0".into(), 1)],
            };
            for (kind, src, weight) in sources {
                let mut e = base.clone();
                e.insert(kind.into(), src.clone());
                // One AWS rule per (protocol, port, source): rows that coincide share it.
                let key = (r.port, r.proto_str(), kind, src.as_str().unwrap_or_default().to_string());
                match dirs[d].get_mut(&key) {
                    Some(have) => {
                        let old = have["rule_desc"].as_str().unwrap_or_default().to_string();
                        let more = aws_text(&format!("{old}; {desc}"), AWS_MAX_DESCRIPTION);
                        have["rule_desc"] = more.into();
                    }
                    None => {
                        e.insert("rule_desc".into(), desc.clone().into());
                        dirs[d].insert(key, Value::Object(e));
                        counts[d] += weight;
                    }
                }
            }
        }
        for (d, n) in counts.iter().enumerate() {
            let dir = if d == 0 { "inbound" } else { "outbound" };
            if *n > o.aws_rules_quota {
                return Err(Error::new(format!(
                    "aws-sg: security group {} would hold {n} {dir} rules (a prefix list counts as its max_entries, {}), \
                     more than the quota of {} (--aws-rules-quota; AWS's ceiling is {AWS_MAX_RULES})",
                    g.name, o.aws_prefix_list_entries, o.aws_rules_quota
                )));
            }
        }
        let [inb, outb] = dirs;
        groups.push(json!({
            "name": g.name,
            "description": aws_text(&format!("vorstream.firewall: {}", g.label()), AWS_MAX_DESCRIPTION),
            "group": g.group,
            "service": g.service,
            "hosts": g.hosts,
            "tags": tags(Some(g)),
            "rules": inb.into_values().collect::<Vec<_>>(),
            "rules_egress": outb.into_values().collect::<Vec<_>>(),
        }));
    }
    let mut warnings = p.warnings.clone();
    // Security groups per network interface: a host is in each of its groups' security groups.
    if let Some((host, n)) = p.busiest_host.clone() {
        if n > AWS_MAX_GROUPS_PER_ENI {
            return Err(Error::new(format!(
                "aws-sg: host {host} would need {n} security groups on its interface, more than AWS's maximum of \
                 {AWS_MAX_GROUPS_PER_ENI}"
            )));
        }
        if n > AWS_DEFAULT_GROUPS_PER_ENI {
            warnings.push(format!(
                "host {host} needs {n} security groups on its interface; AWS's default quota is \
                 {AWS_DEFAULT_GROUPS_PER_ENI} per interface (raise it, up to {AWS_MAX_GROUPS_PER_ENI})"
            ));
        }
    }
    for g in &groups {
        for (k, dir) in [("rules", "inbound"), ("rules_egress", "outbound")] {
            let n = g[k].as_array().map_or(0, Vec::len);
            if n > AWS_DEFAULT_RULES_QUOTA {
                warnings.push(format!(
                    "security group {} has {n} {dir} rules; AWS's default quota is {AWS_DEFAULT_RULES_QUOTA}",
                    g["name"].as_str().unwrap_or_default()
                ));
            }
        }
    }
    let prefix_lists: Vec<Value> = if uses_idp {
        idp_lists
            .iter()
            .map(|(family, name)| {
                json!({
                    "name": name,
                    "address_family": family,
                    "max_entries": o.aws_prefix_list_entries,
                    "service_tag": p.idp_service_tag,
                    "tags": tags(None),
                })
            })
            .collect()
    } else {
        vec![]
    };
    Ok(json!({
        "format": "vorstream.firewall/aws-sg/v1",
        "egress": if p.egress_restricted { "restricted" } else { "open" },
        "owner_tag": {OWNER_TAG.0: OWNER_TAG.1},
        "prefix_lists": prefix_lists,
        "security_groups": groups,
        "perimeter": perimeter_json(p),
        "warnings": warnings,
    }))
}

/// Pretty JSON with a final newline, for files and diffs.
pub fn to_text(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v).expect("plain data serializes");
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::Inventory;
    use crate::plan::plan;
    use serde_json::json;

    fn plans(n: usize, vars: Value) -> Plans {
        let mut hv = Map::new();
        let groups = ["consul", "super", "django", "web", "sdk", "compute", "rabbitmq", "vault", "postgres"];
        let mut members: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for i in 0..n {
            let name = format!("h{i}");
            let mut v = vars.as_object().cloned().unwrap_or_default();
            v.insert("ansible_host".into(), format!("10.{}.{}.{}", i / 65536, (i / 256) % 256 + 1, i % 256).into());
            hv.insert(name.clone(), Value::Object(v));
            members.entry(groups[i % groups.len()]).or_default().push(name);
        }
        let mut inv = json!({"_meta": {"hostvars": hv}});
        for (g, hs) in members {
            inv[g] = json!({"hosts": hs});
        }
        let inv = Inventory::from_ansible_json(&inv).unwrap();
        plan(&inv, Matrix::embedded(), &mut |_: &str| Err("no resolver".to_string())).unwrap()
    }

    fn vars() -> Value {
        json!({"host_firewall_admin_sources": ["198.51.100.0/24"], "host_firewall_management_sources": ["198.51.100.10/32"]})
    }

    #[test]
    fn rule_counts_stay_flat_as_hosts_grow() {
        let o = CloudOptions::default();
        let small = policy(&plans(18, vars()), Matrix::embedded(), &o).unwrap();
        let large = policy(&plans(1000, vars()), Matrix::embedded(), &o).unwrap();
        assert_eq!(small.rules, large.rules);
        assert_eq!(small.groups.len(), large.groups.len());
        let a = aws_sg(&large, &o).unwrap();
        let b = aws_sg(&small, &o).unwrap();
        assert_eq!(a["security_groups"][0]["rules"], b["security_groups"][0]["rules"]);
    }

    #[test]
    fn priorities_do_not_move_when_a_rule_is_added() {
        let names: Vec<String> = (0..200).map(|i| format!("vorfw-rule-{i}-tcp-in")).collect();
        let before = priorities(names.iter().map(String::as_str)).unwrap();
        let mut more = names.clone();
        more.push("vorfw-a-new-rule-tcp-in".into());
        let after = priorities(more.iter().map(String::as_str)).unwrap();
        let moved = names.iter().filter(|n| before[*n] != after[*n]).count();
        assert!(moved <= 1, "{moved} rules renumbered");
        let unique: BTreeSet<u32> = after.values().copied().collect();
        assert_eq!(unique.len(), after.len());
        assert!(after.values().all(|p| (100..=4000).contains(p)));
        // The same names give the same priorities, whatever their order.
        let rev = priorities(names.iter().rev().map(String::as_str)).unwrap();
        assert_eq!(before, rev);
    }

    #[test]
    fn restricted_egress_mirrors_flows_and_names_the_identity_provider() {
        let o = CloudOptions { egress: Some(EgressMode::Restricted), ..CloudOptions::default() };
        let p = policy(&plans(18, vars()), Matrix::embedded(), &o).unwrap();
        assert!(p
            .rules
            .iter()
            .any(|r| r.dir == Dir::Out && r.group == "super" && r.peer == CloudPeer::IdentityProvider));
        assert!(p.rules.iter().any(|r| r.id == "compute-23234-from-mid-tier"
            && r.dir == Dir::Out
            && r.group == "super"
            && r.peer == CloudPeer::Group("compute".into())));
        let arm = azure_nsg(&p, &o).unwrap();
        let text = arm.to_string();
        assert!(text.contains("\"destinationAddressPrefix\":\"AzureActiveDirectory\""), "{text}");
        let aws = aws_sg(&p, &o).unwrap();
        assert_eq!(aws["prefix_lists"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn limits_fail_with_a_message() {
        let o = CloudOptions {
            egress: Some(EgressMode::Restricted),
            aws_rules_quota: 60,
            aws_prefix_list_entries: 100,
            ..CloudOptions::default()
        };
        let p = policy(&plans(18, vars()), Matrix::embedded(), &o).unwrap();
        let e = aws_sg(&p, &o).unwrap_err();
        assert!(e.0.contains("outbound rules") && e.0.contains("quota of 60"), "{e}");
        let long = json!({"host_firewall_extra_rules": [{"id": "x".repeat(90), "group": "web", "port": 9001, "source_group": "django", "purpose": "P"}]});
        let p = policy(&plans(18, long), Matrix::embedded(), &CloudOptions::default()).unwrap();
        let e = azure_nsg(&p, &CloudOptions::default()).unwrap_err();
        assert!(e.0.contains("is not a valid Azure name"), "{e}");
        assert!(priorities((0..4000).map(|i| format!("r{i}")).collect::<Vec<_>>().iter().map(String::as_str)).is_err());
    }

    #[test]
    fn perimeter_mode_takes_the_audiences_out_of_the_groups() {
        let o = CloudOptions { external: ExternalAt::Perimeter, ..CloudOptions::default() };
        let p = policy(&plans(18, vars()), Matrix::embedded(), &o).unwrap();
        assert!(p.rules.iter().all(|r| !r.external));
        assert!(p.perimeter.iter().any(|r| r.id == "ext-web-8081-users"));
    }
}

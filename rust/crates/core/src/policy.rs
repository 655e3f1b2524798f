//! A host's policy in backend-neutral terms: named address sets per family and the
//! (set, family, protocol, port) pairs to accept, inbound and outbound. firewalld, ufw and nftables each translate
//! this into their own objects; computing it is pure.

use crate::error::{Error, Result};
use crate::matrix::Matrix;
use crate::request::{EgressMode, Proto, Request};
use ipnet::IpNet;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
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

/// Accepts, each with the plan rule ids behind it.
pub type Accepts = BTreeMap<Accept, BTreeSet<String>>;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// Address sets: (key, family) → aggregated, sorted, non-overlapping networks. Inbound
    /// (sources) and outbound (destinations) sets share this map; their keys never collide.
    pub sets: BTreeMap<(String, Family), Vec<IpNet>>,
    /// What to accept inbound (the set holds sources), with the plan rule ids behind each entry.
    pub accepts: Accepts,
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
    pub accepts: Accepts,
    /// With restricted egress: replies of management SSH (the lockout guard or
    /// `host_firewall_management_sources`), sent from the SSH port to the inbound set. An SSH
    /// session that began before conntrack saw it (Ansible's own, on a host's first converge)
    /// is picked up mid-stream; its next packet from the host is `NEW`, and without these the
    /// session hangs. Every backend that filters egress itself renders them.
    pub replies: Accepts,
}

/// What only the host itself knows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostFacts {
    /// The Entra ID list the host holds (`None`: no list yet).
    pub entra: Option<Vec<IpNet>>,
    /// The resolvers the host uses (resolv.conf), for DNS when `host_firewall_dns_servers` is unset.
    pub nameservers: Vec<IpAddr>,
    /// The controller's address as the host sees it: with the lockout guard, SSH stays open from it.
    pub controller: Option<IpAddr>,
    /// The addresses the host holds for each OIDC provider of its request (by id; absent: none
    /// yet), from its own refresher's state.
    pub oidc: BTreeMap<String, OidcAddresses>,
}

/// One OIDC provider's destinations on a host: its discovery names' addresses and its
/// published ranges, and the ports of its URLs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OidcAddresses {
    pub nets: Vec<IpNet>,
    pub ports: BTreeSet<u16>,
}

/// The set key of an OIDC provider's addresses: `oidc-<id>`.
pub fn oidc_set(id: &str) -> String {
    format!("{}-{id}", Matrix::embedded().egress.oidc_provider.set)
}

/// The set key of the Entra ID list.
pub fn entra_set() -> &'static str {
    &Matrix::embedded().egress.identity_provider.set
}

/// Collects sets and accepts.
#[derive(Default)]
struct Builder {
    raw: BTreeMap<(String, Family), Vec<IpNet>>,
}

impl Builder {
    fn add(&mut self, accepts: &mut Accepts, set: &str, id: &str, port: u16, protocol: Proto, nets: &[IpNet]) {
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
    }

    fn finish(self, p: &mut Policy) {
        for (k, v) in self.raw {
            p.sets.insert(k, IpNet::aggregate(&v));
        }
    }
}

impl Policy {
    /// Restrict egress (or not), with the replies of the management SSH accepts already in
    /// [`Policy::accepts`] (see [`Egress::replies`]).
    pub fn set_egress_restricted(&mut self, restricted: bool) {
        let mgmt = &Matrix::embedded().management.id;
        self.egress.restricted = restricted;
        self.egress.replies = if restricted {
            self.accepts
                .iter()
                .filter(|(_, ids)| ids.contains(GUARD_ID) || ids.contains(mgmt))
                .map(|(a, ids)| (a.clone(), ids.clone()))
                .collect()
        } else {
            Accepts::new()
        };
    }

    /// One host's policy, from its request and what only it knows.
    ///
    /// Inbound: the request's rules, and SSH from the controller when the request asks for the
    /// lockout guard. Restricted egress admits the request's outbound flows, DNS to
    /// `host_firewall_dns_servers` (else the host's resolvers), NTP to
    /// `host_firewall_ntp_servers`, the extra egress rules and, on OIDC clients, HTTPS to the
    /// Entra ID list. Open egress keeps only the Entra ID set (so the list stays current and
    /// switching to restricted is immediate).
    pub fn for_host(req: &Request, facts: &HostFacts) -> Result<Policy> {
        let m = Matrix::embedded();
        let mut p = Policy::default();
        let mut b = Builder::default();
        for r in &req.inbound {
            b.add(&mut p.accepts, &r.set, &r.id, r.port, r.protocol, &req.peers(r));
        }
        if let (true, Some(ctl)) = (req.lockout_guard, facts.controller) {
            let mg = &m.management;
            for proto in &mg.protocols {
                b.add(&mut p.accepts, GUARD_SET, GUARD_ID, mg.port, Proto::of(proto), &[IpNet::from(ctl)]);
            }
        }
        b.finish(&mut p);
        let restricted = req.egress == EgressMode::Restricted;
        p.set_egress_restricted(restricted);
        let mut b = Builder::default();
        let mut acc = Accepts::new();
        if req.entra {
            let idp = &m.egress.identity_provider;
            match &facts.entra {
                Some(list) if !list.is_empty() => {
                    for proto in &idp.protocols {
                        b.add(&mut acc, &idp.set, &idp.id, idp.port, Proto::of(proto), list);
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
        let row = &m.egress.oidc_provider;
        for op in &req.oidc_providers {
            let id = &op.id;
            // An Entra ID provider signs in through the Entra ID set; its names only add to it.
            let covered = op.entra && facts.entra.as_ref().is_some_and(|l| !l.is_empty());
            match facts.oidc.get(id).filter(|a| !a.nets.is_empty()) {
                Some(a) => {
                    let rule = format!("{}-{id}", row.id);
                    let ports: Vec<u16> =
                        if a.ports.is_empty() { vec![row.port] } else { a.ports.iter().copied().collect() };
                    for port in ports {
                        for proto in &row.protocols {
                            b.add(&mut acc, &oidc_set(id), &rule, port, Proto::of(proto), &a.nets);
                        }
                    }
                }
                None if restricted && !covered => {
                    return Err(Error::new(format!(
                        "host_firewall_egress is restricted and the host runs an OIDC client, but it holds no \
                         addresses for the OIDC provider {id} yet, so sign-in would break: run the \
                         vorstream.firewall.entra_egress role first (its OIDC refresh resolves the provider), or \
                         check `vorfw-entra oidc status` on the host"
                    )))
                }
                None => p.warnings.push(format!(
                    "no addresses for the OIDC provider {id} on this host yet: its set is not installed \
                     (run the entra_egress role)"
                )),
            }
        }
        if restricted {
            for r in req.outbound.iter().chain(&req.egress_extra) {
                b.add(&mut acc, &r.set, &r.id, r.port, r.protocol, &req.peers(r));
            }
            let dns = &m.egress.dns;
            let servers: Vec<IpNet> = match &req.dns_servers {
                Some(list) => list.clone(),
                None => facts.nameservers.iter().map(|a| IpNet::from(*a)).collect(),
            };
            // Loopback resolvers (systemd-resolved, dnsmasq) are reached over lo, always allowed.
            let servers: Vec<IpNet> = servers.into_iter().filter(|n| !n.addr().is_loopback()).collect();
            if servers.is_empty() && req.dns_servers.is_none() && facts.nameservers.is_empty() {
                p.warnings.push(
                    "restricted egress: no DNS servers (host_firewall_dns_servers unset, none in resolv.conf)".into(),
                );
            }
            for proto in &dns.protocols {
                b.add(&mut acc, &dns.set, &dns.id, dns.port, Proto::of(proto), &servers);
            }
            let ntp = &m.egress.ntp;
            for proto in &ntp.protocols {
                b.add(&mut acc, &ntp.set, &ntp.id, ntp.port, Proto::of(proto), &req.ntp_servers);
            }
        }
        // Outbound keys must not collide with inbound ones (the request's shape rules it out
        // for its own sets; this covers the fixed egress keys).
        for (key, _) in b.raw.keys() {
            if p.sets.keys().any(|(k, _)| k == key) {
                return Err(Error::new(format!("set {key} is used both for sources and for destinations")));
            }
        }
        b.finish(&mut p);
        p.egress.accepts = acc;
        Ok(p)
    }
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
    use crate::request::{Members, PeerSet, RuleRef, REQUEST_FORMAT};

    fn nets(s: &[&str]) -> Vec<IpNet> {
        s.iter().map(|n| n.parse().unwrap()).collect()
    }

    fn rule(set: &str, id: &str, port: u16, protocol: Proto) -> RuleRef {
        RuleRef { id: id.into(), port, protocol, set: set.into(), purpose: "p".into(), label: "l".into() }
    }

    /// A request for host `h` (10.0.0.1) with these inbound rules and sets.
    fn request(rules: Vec<RuleRef>, sets: &[(&str, Members, &[&str])], guard: bool) -> Request {
        Request {
            format: REQUEST_FORMAT.into(),
            name: "h".into(),
            addresses: vec!["10.0.0.1".parse().unwrap()],
            groups: vec![],
            services: vec![],
            backend: Default::default(),
            lockout_guard: guard,
            remove_zone_services: vec![],
            inbound: rules,
            outbound: vec![],
            egress: EgressMode::Open,
            dns_servers: None,
            ntp_servers: vec![],
            entra: false,
            egress_extra: vec![],
            oidc_providers: vec![],
            sets: sets.iter().map(|(k, m, n)| (k.to_string(), PeerSet::new(*m, &nets(n)))).collect(),
        }
    }

    fn ctl(a: &str) -> HostFacts {
        HostFacts { controller: Some(a.parse().unwrap()), ..Default::default() }
    }

    #[test]
    fn sets_are_split_by_family_aggregated_and_rules_merge() {
        let admin: &[&str] = &["10.0.0.0/8", "10.1.0.0/16", "fd00::/8"];
        let req = request(
            vec![rule("a-admin", "r1", 100, Proto::Tcp), rule("a-admin", "r2", 100, Proto::Tcp)],
            &[("a-admin", Members::Networks, admin)],
            false,
        );
        let p = Policy::for_host(&req, &ctl("10.9.9.9")).unwrap();
        assert_eq!(p.sets[&("a-admin".into(), Family::V4)], nets(&["10.0.0.0/8"]));
        assert_eq!(p.sets.len(), 2);
        assert_eq!(p.accepts.len(), 2);
        let ids = p.accepts.values().next().unwrap();
        assert_eq!(ids.len(), 2);
    }

    #[test]
    fn host_sets_leave_out_the_host_itself() {
        let req = request(
            vec![rule("g-all", "serf", 8301, Proto::Udp)],
            &[("g-all", Members::Hosts, &["10.0.0.0/32", "10.0.0.1/32", "10.0.0.2/32", "10.0.0.3/32"])],
            false,
        );
        let p = Policy::for_host(&req, &HostFacts::default()).unwrap();
        assert_eq!(p.sets[&("g-all".into(), Family::V4)], nets(&["10.0.0.0/32", "10.0.0.2/31"]));
    }

    #[test]
    fn lockout_guard_only_when_asked_and_replies_only_when_restricted() {
        let p = Policy::for_host(&request(vec![], &[], true), &ctl("10.9.9.9")).unwrap();
        assert!(p.sets.contains_key(&(GUARD_SET.into(), Family::V4)));
        assert!(p.egress.replies.is_empty());
        let p = Policy::for_host(&request(vec![], &[], false), &ctl("10.9.9.9")).unwrap();
        assert!(p.sets.is_empty());
        let mgmt = &Matrix::embedded().management;
        let mut req = request(
            vec![rule("mgmt", &mgmt.id, mgmt.port, Proto::Tcp), rule("a-x", "web", 443, Proto::Tcp)],
            &[("mgmt", Members::Networks, &["10.8.0.0/16"]), ("a-x", Members::Networks, &["0.0.0.0/0"])],
            false,
        );
        req.egress = EgressMode::Restricted;
        let p = Policy::for_host(&req, &HostFacts::default()).unwrap();
        let replies: Vec<(&str, u16)> = p.egress.replies.keys().map(|a| (a.set.as_str(), a.port)).collect();
        assert_eq!(replies, [("mgmt", mgmt.port)]);
    }

    fn egress_request() -> Request {
        let mut req = request(vec![], &[("t-x", Members::Hosts, &["10.0.0.2/32", "fd00::2/128"])], false);
        req.entra = true;
        req.outbound = vec![rule("t-x", "x", 1000, Proto::Tcp)];
        req
    }

    #[test]
    fn each_oidc_provider_gets_its_own_set_on_the_ports_of_its_urls() {
        let mut req = egress_request();
        req.entra = false;
        let op = |id: &str, entra| crate::options::OidcProvider { id: id.into(), entra };
        req.oidc_providers = vec![op("kc", false), op("okta", false)];
        req.egress = EgressMode::Restricted;
        let row = &Matrix::embedded().egress.oidc_provider;
        let kc = OidcAddresses { nets: nets(&["192.0.2.10/32", "2001:db8::10/128"]), ports: [443, 8443].into() };
        let okta = OidcAddresses { nets: nets(&["198.51.100.0/24"]), ports: BTreeSet::new() };
        let facts = HostFacts { oidc: [("kc".into(), kc), ("okta".into(), okta)].into(), ..Default::default() };
        let p = Policy::for_host(&req, &facts).unwrap();
        let got: BTreeSet<(String, Family, u16)> = p
            .egress
            .accepts
            .iter()
            .filter(|(_, ids)| ids.iter().any(|i| i.starts_with(&row.id)))
            .map(|(a, _)| (a.set.clone(), a.family, a.port))
            .collect();
        let want: BTreeSet<(String, Family, u16)> = [
            (oidc_set("kc"), Family::V4, 443),
            (oidc_set("kc"), Family::V4, 8443),
            (oidc_set("kc"), Family::V6, 443),
            (oidc_set("kc"), Family::V6, 8443),
            // No ports recorded: the matrix's default.
            (oidc_set("okta"), Family::V4, row.port),
        ]
        .into();
        assert_eq!(got, want);
        assert_eq!(oidc_set("kc"), "oidc-kc");
        assert_eq!(p.sets[&(oidc_set("kc"), Family::V6)], nets(&["2001:db8::10/128"]));
        // Restricted, one provider without addresses yet: refused, naming it.
        let facts = HostFacts { oidc: [("kc".into(), OidcAddresses::default())].into(), ..Default::default() };
        let e = Policy::for_host(&req, &facts).unwrap_err().to_string();
        assert!(e.contains("OIDC provider kc") && e.contains("entra_egress"), "{e}");
        // Open egress: a warning per missing provider; the one it has is kept current.
        req.egress = EgressMode::Open;
        let facts = HostFacts {
            oidc: [("okta".into(), OidcAddresses { nets: nets(&["198.51.100.0/24"]), ports: [443].into() })].into(),
            ..Default::default()
        };
        let p = Policy::for_host(&req, &facts).unwrap();
        assert!(p.warnings.iter().any(|w| w.contains("OIDC provider kc")), "{:?}", p.warnings);
        let sets: BTreeSet<&str> = p.egress.accepts.keys().map(|a| a.set.as_str()).collect();
        assert_eq!(sets, ["oidc-okta"].into());
        // An Entra ID provider without its names resolved yet still signs in through the Entra set.
        req.egress = EgressMode::Restricted;
        req.entra = true;
        req.oidc_providers = vec![op("entra", true)];
        let facts = HostFacts { entra: Some(nets(&["10.231.0.0/28"])), ..Default::default() };
        let p = Policy::for_host(&req, &facts).unwrap();
        assert!(p.warnings.iter().any(|w| w.contains("OIDC provider entra")), "{:?}", p.warnings);
        req.oidc_providers = vec![op("entra", false)];
        assert!(Policy::for_host(&req, &facts).is_err());
    }

    #[test]
    fn open_egress_keeps_only_the_entra_set() {
        let mut req = egress_request();
        let facts = HostFacts { entra: Some(nets(&["10.231.0.0/28"])), ..Default::default() };
        let p = Policy::for_host(&req, &facts).unwrap();
        assert!(!p.egress.restricted);
        let idp = &Matrix::embedded().egress.identity_provider;
        let keys: Vec<_> = p.egress.accepts.keys().map(|a| (a.set.as_str(), a.port)).collect();
        assert_eq!(keys, vec![(idp.set.as_str(), idp.port)]);
        assert_eq!(p.sets[&(idp.set.clone(), Family::V4)], nets(&["10.231.0.0/28"]));
        // No list yet: a warning, no set.
        let p = Policy::for_host(&req, &HostFacts::default()).unwrap();
        assert!(p.egress.accepts.is_empty() && p.warnings[0].contains("no Entra ID list"), "{:?}", p.warnings);
        // Not an OIDC client: nothing.
        req.entra = false;
        assert!(Policy::for_host(&req, &facts).unwrap().egress.accepts.is_empty());
    }

    #[test]
    fn restricted_egress_admits_plan_dns_ntp_extras_and_entra() {
        let mut req = egress_request();
        req.egress = EgressMode::Restricted;
        req.egress_extra = vec![rule("o-repo", "repo", 8443, Proto::Tcp)];
        req.sets.insert("o-repo".into(), PeerSet::new(Members::Networks, &nets(&["192.0.2.0/24"])));
        req.ntp_servers = nets(&["10.0.0.123/32"]);
        let facts = HostFacts {
            entra: Some(nets(&["10.231.0.0/28"])),
            nameservers: vec!["127.0.0.53".parse().unwrap(), "10.0.0.53".parse().unwrap()],
            ..Default::default()
        };
        let p = Policy::for_host(&req, &facts).unwrap();
        assert!(p.egress.restricted);
        let m = Matrix::embedded();
        let sets: BTreeSet<&str> = p.egress.accepts.keys().map(|a| a.set.as_str()).collect();
        let want: BTreeSet<&str> =
            ["t-x", "o-repo", &m.egress.dns.set, &m.egress.ntp.set, &m.egress.identity_provider.set].into();
        assert_eq!(sets, want);
        // The loopback resolver is reached over lo; only the real one is a set member.
        assert_eq!(p.sets[&(m.egress.dns.set.clone(), Family::V4)], nets(&["10.0.0.53/32"]));
        // Configured DNS servers win over resolv.conf.
        req.dns_servers = Some(nets(&["10.9.9.9/32"]));
        let p = Policy::for_host(&req, &facts).unwrap();
        assert_eq!(p.sets[&(m.egress.dns.set.clone(), Family::V4)], nets(&["10.9.9.9/32"]));
        // Restricted OIDC client without a list: refused, sign-in would break.
        let e = Policy::for_host(&req, &HostFacts::default()).unwrap_err();
        assert!(e.0.contains("no Entra ID") && e.0.contains("entra_egress"), "{e}");
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

//! The resolved addresses of a `dns` provider's names, kept current: a pure update from the
//! previous state, the time and the answers of the host's resolvers.
//!
//! * an address in an answer is allowed at once;
//! * an address that leaves the answers stays allowed for `grace` from its first absence, and is
//!   restored if it comes back;
//! * a failed lookup, an empty answer, or an answer refused (special-use addresses) never changes
//!   that name: its previous addresses stay, grace included, and the report warns;
//! * a name no longer asked about (the discovery document or the extra names changed) has its
//!   addresses enter the grace period;
//! * TTLs set the next refresh: the smallest TTL of the successful answers, clamped between
//!   `min_refresh` and `max_refresh` (hourly by default); after failures, `min_refresh`;
//! * more than `max_addresses` in all refuses the update: the state stays as it was.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, SystemTime};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use vorfw_entra::plausible::special_use;

use crate::error::{Error, ErrorKind, Result};

/// The state file's format version.
pub const DNS_STATE_VERSION: u32 = 1;

/// The longest `grace` and `max_refresh` accepted.
pub const MAX_POLICY_DURATION: Duration = Duration::from_secs(366 * 24 * 3600);

/// The update policy for resolved addresses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsPolicy {
    /// How long an address stays allowed after it left the answers (default 1 day: longer than
    /// any cached answer an application may still use).
    #[serde(with = "secs")]
    pub grace: Duration,
    /// Most addresses (all names, grace included) a provider may hold (default 1024).
    pub max_addresses: usize,
    /// Accept private, loopback, documentation... addresses (a lab resolver only).
    pub allow_special_use: bool,
    /// The earliest next refresh, whatever the TTLs (default 5 minutes).
    #[serde(with = "secs")]
    pub min_refresh: Duration,
    /// The latest next refresh, whatever the TTLs (default 1 hour).
    #[serde(with = "secs")]
    pub max_refresh: Duration,
}

impl Default for DnsPolicy {
    fn default() -> Self {
        DnsPolicy {
            grace: Duration::from_secs(24 * 3600),
            max_addresses: 1024,
            allow_special_use: false,
            min_refresh: Duration::from_secs(300),
            max_refresh: Duration::from_secs(3600),
        }
    }
}

impl DnsPolicy {
    /// Refused: a zero or inverted refresh window, a zero cap, a grace or refresh over a year.
    pub fn validate(&self) -> Result<()> {
        if self.min_refresh.is_zero() {
            return Err(Error::new(ErrorKind::Config, "min_refresh must be more than 0"));
        }
        if self.min_refresh > self.max_refresh {
            return Err(Error::new(
                ErrorKind::Config,
                format!(
                    "min_refresh ({}s) is more than max_refresh ({}s)",
                    self.min_refresh.as_secs(),
                    self.max_refresh.as_secs()
                ),
            ));
        }
        for (what, d) in [("grace", self.grace), ("max_refresh", self.max_refresh)] {
            if d > MAX_POLICY_DURATION {
                return Err(Error::new(
                    ErrorKind::Config,
                    format!("{what} ({}s) is more than a year ({}s)", d.as_secs(), MAX_POLICY_DURATION.as_secs()),
                ));
            }
        }
        if self.max_addresses == 0 {
            return Err(Error::new(ErrorKind::Config, "max_addresses must be at least 1"));
        }
        Ok(())
    }
}

/// One lookup's result for a name: its A and AAAA answers with their TTLs (seconds), or why it
/// failed (timeout, SERVFAIL, NXDOMAIN...).
pub type Answer = std::result::Result<Vec<(IpAddr, u32)>, String>;

/// One address of a name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressEntry {
    #[serde(with = "vorfw_entra::time::ts")]
    pub first_seen: SystemTime,
    #[serde(with = "vorfw_entra::time::ts")]
    pub last_seen: SystemTime,
    /// The TTL of the last answer that held it.
    pub ttl: u32,
    /// Set while the address is in grace: no longer answered, still allowed.
    #[serde(default, with = "vorfw_entra::time::ts_opt", skip_serializing_if = "Option::is_none")]
    pub gone_since: Option<SystemTime>,
}

/// One name's addresses and lookup record.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NameState {
    pub addresses: BTreeMap<IpAddr, AddressEntry>,
    #[serde(default, with = "vorfw_entra::time::ts_opt", skip_serializing_if = "Option::is_none")]
    pub last_success: Option<SystemTime>,
    /// Consecutive failed (or refused, or empty) lookups.
    #[serde(default)]
    pub failures: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// No longer asked about: its addresses are in grace and the name goes with the last one.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dropped: bool,
}

/// A provider's resolved addresses (the state file).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsState {
    pub version: u32,
    #[serde(with = "vorfw_entra::time::ts")]
    pub updated: SystemTime,
    #[serde(with = "vorfw_entra::time::ts")]
    pub next_refresh: SystemTime,
    pub names: BTreeMap<String, NameState>,
}

/// The effective addresses by family.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressSets {
    pub ipv4: BTreeSet<Ipv4Addr>,
    pub ipv6: BTreeSet<Ipv6Addr>,
}

impl AddressSets {
    pub fn len(&self) -> usize {
        self.ipv4.len() + self.ipv6.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// As host routes (`/32`, `/128`), for a firewall set of prefixes.
    pub fn nets(&self) -> BTreeSet<IpNet> {
        self.ipv4
            .iter()
            .map(|a| IpNet::from(IpAddr::V4(*a)))
            .chain(self.ipv6.iter().map(|a| IpNet::from(IpAddr::V6(*a))))
            .collect()
    }
}

impl DnsState {
    /// A state with no name yet.
    pub fn empty(now: SystemTime) -> DnsState {
        DnsState { version: DNS_STATE_VERSION, updated: now, next_refresh: now, names: BTreeMap::new() }
    }

    /// Every address a firewall should allow (answered and in grace, all names).
    pub fn effective(&self) -> BTreeSet<IpAddr> {
        self.names.values().flat_map(|n| n.addresses.keys().copied()).collect()
    }

    /// [`DnsState::effective`] by family.
    pub fn sets(&self) -> AddressSets {
        let mut s = AddressSets::default();
        for a in self.effective() {
            match a {
                IpAddr::V4(a) => s.ipv4.insert(a),
                IpAddr::V6(a) => s.ipv6.insert(a),
            };
        }
        s
    }

    /// Addresses in grace, with when they stop being allowed.
    pub fn in_grace(&self, grace: Duration) -> BTreeMap<IpAddr, SystemTime> {
        let mut out: BTreeMap<IpAddr, SystemTime> = BTreeMap::new();
        for n in self.names.values() {
            for (a, e) in &n.addresses {
                if let Some(g) = e.gone_since {
                    let until = g + grace;
                    out.entry(*a).and_modify(|t| *t = (*t).max(until)).or_insert(until);
                }
            }
        }
        // An address another name still answers is not in grace.
        let answered: BTreeSet<IpAddr> = self
            .names
            .values()
            .flat_map(|n| n.addresses.iter().filter(|(_, e)| e.gone_since.is_none()).map(|(a, _)| *a))
            .collect();
        out.retain(|a, _| !answered.contains(a));
        out
    }
}

/// Address counts of a state, for status files and metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsCounts {
    /// What a firewall allows: answered and in grace.
    pub effective: usize,
    pub in_grace: usize,
    pub ipv4: usize,
    pub ipv6: usize,
    pub names: usize,
    /// Names whose last lookup failed (their previous addresses are kept).
    pub failing: usize,
}

impl DnsState {
    pub fn counts(&self, grace: Duration) -> DnsCounts {
        let s = self.sets();
        DnsCounts {
            effective: s.len(),
            in_grace: self.in_grace(grace).len(),
            ipv4: s.ipv4.len(),
            ipv6: s.ipv6.len(),
            names: self.names.values().filter(|n| !n.dropped).count(),
            failing: self.failing_names().len(),
        }
    }

    /// Names whose last lookup failed, with the reason.
    pub fn failing_names(&self) -> Vec<(&str, &str)> {
        self.names
            .iter()
            .filter(|(_, n)| n.failures > 0 && !n.dropped)
            .map(|(k, n)| (k.as_str(), n.last_error.as_deref().unwrap_or("")))
            .collect()
    }

    /// The refresh is overdue by more than `slack` (a timer that stopped running).
    pub fn overdue(&self, now: SystemTime, slack: Duration) -> bool {
        now.duration_since(self.next_refresh).is_ok_and(|late| late > slack)
    }
}

/// A name whose lookup did not change it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NameFailure {
    pub name: String,
    pub message: String,
    /// Addresses kept for it.
    pub kept: usize,
}

/// What an update changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsReport {
    /// Newly allowed addresses.
    pub added: Vec<IpAddr>,
    /// Addresses no longer allowed (their grace ended).
    pub removed: Vec<IpAddr>,
    /// Addresses that left the answers in this update (still allowed, in grace).
    pub entered_grace: Vec<IpAddr>,
    /// Addresses in grace that an answer holds again.
    pub restored: Vec<IpAddr>,
    /// Names whose lookup failed, came back empty or was refused: kept as they were.
    pub failed: Vec<NameFailure>,
    /// Names no longer asked about, and names forgotten (their last address expired).
    pub dropped_names: Vec<String>,
    pub warnings: Vec<String>,
    #[serde(with = "vorfw_entra::time::ts")]
    pub next_refresh: SystemTime,
    /// The effective set changed (a firewall has work to do).
    pub changed: bool,
}

/// Fold one round of answers into the state. `answers` holds every name the provider has now
/// (the discovery names and the extra names); `prev` is `None` for a first run.
///
/// Refused ([`ErrorKind::Implausible`], the state stays as it was): more than `max_addresses`
/// in all. [`ErrorKind::Config`]: an invalid policy.
pub fn update(
    prev: Option<&DnsState>,
    now: SystemTime,
    answers: &BTreeMap<String, Answer>,
    policy: &DnsPolicy,
) -> Result<(DnsState, DnsReport)> {
    policy.validate()?;
    let empty = DnsState::empty(now);
    let prev = prev.unwrap_or(&empty);
    let before = prev.effective();
    let grace_before: BTreeSet<IpAddr> = prev.in_grace(policy.grace).into_keys().collect();
    let mut report = DnsReport {
        added: Vec::new(),
        removed: Vec::new(),
        entered_grace: Vec::new(),
        restored: Vec::new(),
        failed: Vec::new(),
        dropped_names: Vec::new(),
        warnings: Vec::new(),
        next_refresh: now,
        changed: false,
    };
    let mut names: BTreeMap<String, NameState> = BTreeMap::new();
    let mut min_ttl: Option<u32> = None;
    let mut any_failed = false;

    for (name, answer) in answers {
        let old = prev.names.get(name).cloned().unwrap_or_default();
        let accepted = match answer {
            Err(e) => Err(format!("lookup failed: {e}")),
            Ok(list) => screen(list, policy),
        };
        let mut st = old.clone();
        st.dropped = false;
        match accepted {
            Err(why) => {
                any_failed = true;
                st.failures = st.failures.saturating_add(1);
                st.last_error = Some(why.clone());
                report
                    .warnings
                    .push(format!("{name}: {why}; keeping its {} previous address(es)", old.addresses.len()));
                report.failed.push(NameFailure { name: name.clone(), message: why, kept: old.addresses.len() });
            }
            Ok(list) => {
                st.failures = 0;
                st.last_error = None;
                st.last_success = Some(now);
                let mut fresh: BTreeMap<IpAddr, u32> = BTreeMap::new();
                for (a, ttl) in list {
                    let t = fresh.entry(a).or_insert(ttl);
                    *t = (*t).min(ttl);
                }
                for ttl in fresh.values() {
                    min_ttl = Some(min_ttl.map_or(*ttl, |m| m.min(*ttl)));
                }
                for (a, e) in st.addresses.iter_mut() {
                    if !fresh.contains_key(a) && e.gone_since.is_none() {
                        e.gone_since = Some(now);
                    }
                }
                for (a, ttl) in fresh {
                    let e = st.addresses.entry(a).or_insert(AddressEntry {
                        first_seen: now,
                        last_seen: now,
                        ttl,
                        gone_since: None,
                    });
                    e.last_seen = now;
                    e.ttl = ttl;
                    e.gone_since = None;
                }
                expire(&mut st, now, policy.grace);
            }
        }
        names.insert(name.clone(), st);
    }
    // Names no longer asked about: into grace, gone with their last address.
    for (name, old) in &prev.names {
        if answers.contains_key(name) {
            continue;
        }
        let mut st = old.clone();
        if !st.dropped {
            st.dropped = true;
            report.dropped_names.push(name.clone());
        }
        for e in st.addresses.values_mut() {
            e.gone_since.get_or_insert(now);
        }
        expire(&mut st, now, policy.grace);
        if st.addresses.is_empty() {
            if !report.dropped_names.contains(name) {
                report.dropped_names.push(name.clone());
            }
        } else {
            names.insert(name.clone(), st);
        }
    }

    let next = DnsState {
        version: DNS_STATE_VERSION,
        updated: now,
        next_refresh: now + refresh_after(min_ttl, any_failed, policy),
        names,
    };
    let after = next.effective();
    if after.len() > policy.max_addresses {
        return Err(Error::new(
            ErrorKind::Implausible,
            format!(
                "{} addresses (answered and in grace) for {} name(s), more than the {} allowed (max_addresses); \
                 the update is refused and the addresses in force stay",
                after.len(),
                answers.len(),
                policy.max_addresses
            ),
        ));
    }
    let grace_after: BTreeSet<IpAddr> = next.in_grace(policy.grace).into_keys().collect();
    report.added = after.difference(&before).copied().collect();
    report.removed = before.difference(&after).copied().collect();
    report.entered_grace = grace_after.difference(&grace_before).copied().collect();
    report.restored = grace_before.iter().filter(|a| after.contains(a) && !grace_after.contains(a)).copied().collect();
    report.changed = before != after;
    report.next_refresh = next.next_refresh;
    Ok((next, report))
}

/// The answer's addresses, canonical (IPv4-mapped IPv6 as IPv4), or why the whole answer is
/// refused: empty, an unspecified address, or a special-use one unless allowed.
fn screen(list: &[(IpAddr, u32)], policy: &DnsPolicy) -> std::result::Result<Vec<(IpAddr, u32)>, String> {
    if list.is_empty() {
        return Err("the answer holds no address".into());
    }
    let mut out = Vec::with_capacity(list.len());
    let mut bad = Vec::new();
    for (a, ttl) in list {
        let a = a.to_canonical();
        if a.is_unspecified() {
            bad.push(format!("{a} (unspecified)"));
        } else if !policy.allow_special_use {
            if let Some(block) = special_use(&IpNet::from(a)) {
                bad.push(format!("{a} (in {block})"));
            }
        }
        out.push((a, *ttl));
    }
    if !bad.is_empty() {
        let n = bad.len();
        bad.truncate(5);
        return Err(format!(
            "answer refused: {n} special-use address(es), which no Internet service uses: {} \
             (only a lab resolver sets allow_special_use)",
            bad.join(", ")
        ));
    }
    Ok(out)
}

fn expire(st: &mut NameState, now: SystemTime, grace: Duration) {
    // A clock that went backwards keeps the address (duration_since fails).
    st.addresses.retain(|_, e| match e.gone_since {
        Some(g) => now.duration_since(g).map(|age| age < grace).unwrap_or(true),
        None => true,
    });
}

fn refresh_after(min_ttl: Option<u32>, any_failed: bool, policy: &DnsPolicy) -> Duration {
    let want = match (min_ttl, any_failed) {
        (_, true) | (None, _) => policy.min_refresh,
        (Some(t), false) => Duration::from_secs(u64::from(t)),
    };
    want.clamp(policy.min_refresh, policy.max_refresh)
}

pub(crate) mod secs {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_780_000_000;

    fn t(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(T0 + secs)
    }

    fn ok(addrs: &[(&str, u32)]) -> Answer {
        Ok(addrs.iter().map(|(a, ttl)| (a.parse().unwrap(), *ttl)).collect())
    }

    fn answers(v: Vec<(&str, Answer)>) -> BTreeMap<String, Answer> {
        v.into_iter().map(|(n, a)| (n.to_string(), a)).collect()
    }

    fn ips(v: &[IpAddr]) -> Vec<String> {
        v.iter().map(|a| a.to_string()).collect()
    }

    fn eff(s: &DnsState) -> Vec<String> {
        s.effective().iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn rotation_with_grace() {
        let p = DnsPolicy::default();
        let (s1, r1) = update(
            None,
            t(0),
            &answers(vec![("idp.example.com", ok(&[("20.0.0.1", 600), ("2603:1000::1", 900)]))]),
            &p,
        )
        .unwrap();
        assert_eq!(ips(&r1.added), ["20.0.0.1", "2603:1000::1"]);
        assert!(r1.changed);
        assert_eq!(r1.next_refresh, t(600));
        assert_eq!(s1.sets().ipv4.len(), 1);
        assert_eq!(s1.sets().ipv6.len(), 1);
        // The CDN rotates: the new address at once, the old one still allowed.
        let (s2, r2) = update(
            Some(&s1),
            t(3600),
            &answers(vec![("idp.example.com", ok(&[("20.0.0.2", 60), ("2603:1000::1", 900)]))]),
            &p,
        )
        .unwrap();
        assert_eq!(ips(&r2.added), ["20.0.0.2"]);
        assert!(r2.removed.is_empty());
        assert_eq!(ips(&r2.entered_grace), ["20.0.0.1"]);
        assert_eq!(eff(&s2), ["20.0.0.1", "20.0.0.2", "2603:1000::1"]);
        assert_eq!(r2.next_refresh, t(3600 + 300), "a TTL of 60 s is clamped to min_refresh");
        // Back again before the grace ends: restored.
        let (s3, r3) =
            update(Some(&s2), t(7200), &answers(vec![("idp.example.com", ok(&[("20.0.0.1", 7200)]))]), &p).unwrap();
        assert_eq!(ips(&r3.restored), ["20.0.0.1"]);
        assert!(!r3.changed);
        assert_eq!(r3.next_refresh, t(7200 + 3600), "a TTL of 2 h is clamped to max_refresh");
        // A day later the others are gone.
        let (s4, r4) =
            update(Some(&s3), t(7200 + 86400), &answers(vec![("idp.example.com", ok(&[("20.0.0.1", 300)]))]), &p)
                .unwrap();
        assert_eq!(ips(&r4.removed), ["20.0.0.2", "2603:1000::1"]);
        assert_eq!(eff(&s4), ["20.0.0.1"]);
        // The state file round-trips.
        let text = serde_json::to_string_pretty(&s3).unwrap();
        assert_eq!(serde_json::from_str::<DnsState>(&text).unwrap(), s3);
        assert!(text.contains("\"gone_since\""), "{text}");
        let c = s3.counts(p.grace);
        assert_eq!((c.effective, c.in_grace, c.ipv4, c.ipv6, c.names, c.failing), (3, 2, 2, 1, 1, 0));
        assert!(!s3.overdue(t(7200 + 3600), Duration::ZERO));
        assert!(s3.overdue(t(7200 + 3600 + 61), Duration::from_secs(60)));
    }

    #[test]
    fn failures_never_empty() {
        let p = DnsPolicy { grace: Duration::from_secs(600), ..DnsPolicy::default() };
        let (s1, _) = update(
            None,
            t(0),
            &answers(vec![("a.example.com", ok(&[("20.0.0.1", 300)])), ("b.example.com", ok(&[("20.0.1.1", 300)]))]),
            &p,
        )
        .unwrap();
        // A timeout, an empty answer: nothing moves, even long after the grace period.
        let (s2, r2) = update(
            Some(&s1),
            t(100_000),
            &answers(vec![("a.example.com", Err("timed out".into())), ("b.example.com", Ok(vec![]))]),
            &p,
        )
        .unwrap();
        assert_eq!(s2.effective(), s1.effective());
        assert!(!r2.changed);
        assert_eq!(r2.failed.len(), 2);
        assert_eq!(r2.failed[0].kept, 1);
        assert!(
            r2.warnings[0].contains("a.example.com: lookup failed: timed out; keeping its 1 previous"),
            "{:?}",
            r2.warnings
        );
        assert!(r2.warnings[1].contains("holds no address"), "{:?}", r2.warnings);
        assert_eq!(r2.next_refresh, t(100_000 + 300), "failures retry at min_refresh");
        assert_eq!(s2.names["a.example.com"].failures, 1);
        assert_eq!(s2.names["a.example.com"].last_success, Some(t(0)));
        assert_eq!(
            s2.failing_names(),
            [("a.example.com", "lookup failed: timed out"), ("b.example.com", "the answer holds no address")]
        );
        assert_eq!(s2.counts(p.grace).failing, 2);
        // A first lookup that fails: nothing yet, and no error.
        let (s3, r3) = update(None, t(0), &answers(vec![("a.example.com", Err("SERVFAIL".into()))]), &p).unwrap();
        assert!(s3.effective().is_empty());
        assert_eq!(r3.failed.len(), 1);
    }

    #[test]
    fn special_use_refused_unless_allowed() {
        let p = DnsPolicy::default();
        let (s1, _) = update(None, t(0), &answers(vec![("idp.example.com", ok(&[("20.0.0.1", 300)]))]), &p).unwrap();
        let (s2, r2) = update(
            Some(&s1),
            t(60),
            &answers(vec![("idp.example.com", ok(&[("20.0.0.9", 300), ("10.1.2.3", 300), ("::1", 1)]))]),
            &p,
        )
        .unwrap();
        assert_eq!(eff(&s2), ["20.0.0.1"], "the whole answer is refused");
        assert!(r2.failed[0].message.contains("10.1.2.3 (in 10.0.0.0/8 private-use"), "{:?}", r2.failed);
        assert!(r2.failed[0].message.contains("::1"), "{:?}", r2.failed);
        let lab = DnsPolicy { allow_special_use: true, ..DnsPolicy::default() };
        let (s3, _) = update(
            Some(&s1),
            t(60),
            &answers(vec![("idp.example.com", ok(&[("10.1.2.3", 300), ("::ffff:10.1.2.4", 300)]))]),
            &lab,
        )
        .unwrap();
        assert_eq!(eff(&s3), ["10.1.2.3", "10.1.2.4", "20.0.0.1"], "IPv4-mapped addresses count as IPv4");
        let (_, r4) = update(None, t(0), &answers(vec![("idp.example.com", ok(&[("0.0.0.0", 300)]))]), &lab).unwrap();
        assert!(r4.failed[0].message.contains("unspecified"));
    }

    #[test]
    fn cap_refuses_the_update() {
        let p = DnsPolicy { max_addresses: 3, ..DnsPolicy::default() };
        let (s1, _) =
            update(None, t(0), &answers(vec![("a.example.com", ok(&[("20.0.0.1", 300), ("20.0.0.2", 300)]))]), &p)
                .unwrap();
        // Two new addresses while the old two are in grace: 4 > 3.
        let e = update(
            Some(&s1),
            t(60),
            &answers(vec![("a.example.com", ok(&[("20.0.0.3", 300), ("20.0.0.4", 300)]))]),
            &p,
        )
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Implausible);
        assert!(e.message().contains("4 addresses") && e.message().contains("3 allowed (max_addresses)"), "{e}");
        assert!(update(None, t(0), &BTreeMap::new(), &DnsPolicy { min_refresh: Duration::ZERO, ..p.clone() }).is_err());
        let e = update(None, t(0), &BTreeMap::new(), &DnsPolicy { min_refresh: Duration::from_secs(7200), ..p })
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
    }

    #[test]
    fn a_clock_that_goes_back_keeps_everything() {
        let p = DnsPolicy { grace: Duration::from_secs(600), ..DnsPolicy::default() };
        let (s1, _) = update(None, t(10_000), &answers(vec![("a.example.com", ok(&[("20.0.0.1", 300)]))]), &p).unwrap();
        let (s2, _) =
            update(Some(&s1), t(10_100), &answers(vec![("a.example.com", ok(&[("20.0.0.2", 300)]))]), &p).unwrap();
        let (s3, r3) =
            update(Some(&s2), t(0), &answers(vec![("a.example.com", ok(&[("20.0.0.2", 300)]))]), &p).unwrap();
        assert_eq!(eff(&s3), ["20.0.0.1", "20.0.0.2"]);
        assert!(r3.removed.is_empty());
        let e =
            update(None, t(0), &BTreeMap::new(), &DnsPolicy { grace: Duration::from_secs(u64::MAX), ..p }).unwrap_err();
        assert!(e.message().contains("grace"), "{e}");
    }

    #[test]
    fn dropped_names_go_through_grace() {
        let p = DnsPolicy { grace: Duration::from_secs(600), ..DnsPolicy::default() };
        let (s1, _) = update(
            None,
            t(0),
            &answers(vec![
                ("a.example.com", ok(&[("20.0.0.1", 300)])),
                ("b.example.com", ok(&[("20.0.0.1", 300), ("20.0.1.1", 300)])),
            ]),
            &p,
        )
        .unwrap();
        let (s2, r2) =
            update(Some(&s1), t(60), &answers(vec![("a.example.com", ok(&[("20.0.0.1", 300)]))]), &p).unwrap();
        assert_eq!(r2.dropped_names, ["b.example.com"]);
        assert_eq!(ips(&r2.entered_grace), ["20.0.1.1"], "20.0.0.1 is still answered by a.example.com");
        assert_eq!(eff(&s2), ["20.0.0.1", "20.0.1.1"]);
        let (s3, r3) =
            update(Some(&s2), t(60 + 600), &answers(vec![("a.example.com", ok(&[("20.0.0.1", 300)]))]), &p).unwrap();
        assert_eq!(ips(&r3.removed), ["20.0.1.1"]);
        assert!(!s3.names.contains_key("b.example.com"));
        assert_eq!(eff(&s3), ["20.0.0.1"]);
    }
}

//! The Entra feed's update policy, applied to a provider's published ranges: additions at once,
//! removals after a grace period, mass removals and removals from an older file held until later
//! files confirm them, at most `max_additions` new prefixes to an existing list. The state is
//! the feed's own [`vorfw_entra::State`], so its state-directory functions (`save_state`,
//! `load_state`, `Status`, `render_text`/`render_json`, metrics) serve published ranges as
//! they serve Entra's.
//!
//! A range set goes through [`vorfw_entra::validate_and_merge`] as a one-tag service-tags file:
//! the tag is `google` or `okta:<cell>`, the changeNumber Google's `syncToken` (milliseconds;
//! the jump limit does not apply) or, for Okta's file that has no version, a counter raised when
//! the list changes. The state's `cloud` is `Public` and means nothing here.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use vorfw_entra::{
    plausible::MAX_CHANGE_NUMBER, validate_and_merge, Cloud, Diff, FeedConfig, Limits, ServiceTag, ServiceTags, State,
    TagProperties,
};

use crate::error::{Error, ErrorKind, Result};
use crate::ranges::RangeSet;

/// The update policy of a published range list (the Entra feed's defaults).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PublishedPolicy {
    /// How long a removed prefix stays allowed (14 days).
    #[serde(with = "crate::dns::secs")]
    pub grace: Duration,
    /// A file removing more than this share (0.1) of the published prefixes has its removal held.
    pub max_removal_share: f64,
    /// A held removal takes effect on this many consecutive new files without the prefixes (4).
    pub hold_refreshes: u32,
    /// Apply held removals now.
    pub force: bool,
    /// `max_additions` applies (500); the file's own limits were checked when it was parsed.
    pub max_additions: usize,
}

impl Default for PublishedPolicy {
    fn default() -> Self {
        let f = FeedConfig::new(Cloud::Public);
        PublishedPolicy {
            grace: f.grace,
            max_removal_share: f.max_removal_share,
            hold_refreshes: f.hold_refreshes,
            force: false,
            max_additions: f.limits.max_additions,
        }
    }
}

/// The tag a range set is recorded under: `google`, `okta:<cell>`.
pub fn published_tag(set: &RangeSet) -> String {
    match &set.cell {
        Some(c) => format!("{}:{c}", set.format),
        None => set.format.clone(),
    }
}

/// The changeNumber of `set` given the state in force: Google's numeric `syncToken`; otherwise
/// the previous number, raised by one when the list differs (1 for a first list).
pub fn published_change_number(prev: Option<&State>, set: &RangeSet) -> u64 {
    if let Some(n) = set.version.as_deref().and_then(|v| v.trim().parse::<u64>().ok()) {
        if n < MAX_CHANGE_NUMBER {
            return n;
        }
    }
    match prev {
        None => 1,
        Some(p) if p.content_sha256 == set.sha256 => p.change_number,
        Some(p) => p.change_number.saturating_add(1),
    }
}

/// Fold a validated range set into the state in force. The returned state's `source` and
/// `file_name` are empty; the caller fills them (the URL or path), as with the Entra feed.
pub fn merge_published(
    prev: Option<&State>,
    set: &RangeSet,
    policy: &PublishedPolicy,
    now: SystemTime,
) -> Result<(State, Diff)> {
    if set.prefixes.is_empty() {
        return Err(Error::new(ErrorKind::Empty, format!("the {} list holds no prefix", published_tag(set))));
    }
    let tag = published_tag(set);
    let change_number = published_change_number(prev, set);
    let doc = ServiceTags {
        change_number,
        cloud: Cloud::Public.name().to_string(),
        values: vec![ServiceTag {
            name: tag.clone(),
            id: tag.clone(),
            properties: TagProperties {
                change_number,
                address_prefixes: set.prefixes.iter().map(|p| p.to_string()).collect(),
                ..TagProperties::default()
            },
        }],
    };
    let mut cfg = FeedConfig::new(Cloud::Public);
    cfg.tags = vec![tag];
    cfg.grace = policy.grace;
    cfg.max_removal_share = policy.max_removal_share;
    cfg.hold_refreshes = policy.hold_refreshes;
    cfg.force = policy.force;
    // The set passed its format's limits when parsed (Google's are wider than Entra's); here
    // only the additions count, and the changeNumber is a timestamp or a counter.
    cfg.limits = Limits {
        widest_ipv4: 0,
        widest_ipv6: 0,
        allow_special_use: true,
        max_additions: policy.max_additions,
        max_prefixes: usize::MAX,
        max_change_number_jump: MAX_CHANGE_NUMBER,
    };
    validate_and_merge(prev, &doc, &cfg, now).map_err(Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    use ipnet::IpNet;
    use vorfw_entra::content_hash;

    fn set(format: &str, version: Option<&str>, cell: Option<&str>, v: &[&str]) -> RangeSet {
        let prefixes: BTreeSet<IpNet> = v.iter().map(|s| s.parse().unwrap()).collect();
        RangeSet {
            format: format.into(),
            version: version.map(String::from),
            created: None,
            cell: cell.map(String::from),
            sha256: content_hash(&prefixes),
            prefixes,
        }
    }

    fn t(days: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_780_000_000 + days * 86400)
    }

    fn eff(s: &State) -> Vec<String> {
        s.effective().iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn google_removals_wait_for_the_grace_period() {
        let p = PublishedPolicy::default();
        let many: Vec<String> = (0..20).map(|i| format!("142.{i}.0.0/16")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let (s1, d1) = merge_published(None, &set("google", Some("1764720000000"), None, &many), &p, t(0)).unwrap();
        assert_eq!(d1.added.len(), 20);
        assert_eq!(s1.change_number, 1764720000000);
        assert_eq!(s1.tag_names(), ["google"]);
        // One of 20 removed (5%): into grace, still allowed.
        let (s2, d2) =
            merge_published(Some(&s1), &set("google", Some("1765324800000"), None, &many[1..]), &p, t(7)).unwrap();
        assert_eq!(d2.removed.len(), 1);
        assert_eq!(s2.effective().len(), 20);
        let (s3, d3) =
            merge_published(Some(&s2), &set("google", Some("1765929600000"), None, &many[1..]), &p, t(21)).unwrap();
        assert_eq!(d3.expired.len(), 1);
        assert_eq!(s3.effective().len(), 19);
        // Half removed at once: held, nothing leaves the firewall.
        let (s4, d4) =
            merge_published(Some(&s3), &set("google", Some("1766534400000"), None, &many[10..]), &p, t(28)).unwrap();
        assert_eq!(d4.held.len(), 9);
        assert_eq!(s4.effective().len(), 19);
        // An older syncToken removing something: held too.
        let (_, d5) =
            merge_published(Some(&s4), &set("google", Some("1764720000001"), None, &many[11..]), &p, t(29)).unwrap();
        assert!(d5.warnings.iter().any(|w| w.contains("lower")), "{:?}", d5.warnings);
    }

    #[test]
    fn okta_counts_its_own_versions() {
        let p = PublishedPolicy::default();
        let a = set("okta", None, Some("us_cell_1"), &["52.6.85.0/24", "54.144.102.0/24"]);
        let (s1, _) = merge_published(None, &a, &p, t(0)).unwrap();
        assert_eq!((s1.change_number, s1.tag_names()), (1, vec!["okta:us_cell_1".to_string()]));
        let (s2, d2) = merge_published(Some(&s1), &a, &p, t(1)).unwrap();
        assert_eq!(s2.change_number, 1);
        assert!(d2.is_noop());
        let b = set("okta", None, Some("us_cell_1"), &["52.6.85.0/24", "54.144.102.0/24", "3.209.55.200/32"]);
        let (s3, d3) = merge_published(Some(&s2), &b, &p, t(2)).unwrap();
        assert_eq!(s3.change_number, 2);
        assert_eq!(d3.added.len(), 1);
        assert_eq!(eff(&s3), ["3.209.55.200/32", "52.6.85.0/24", "54.144.102.0/24"]);
        let mut big = a.clone();
        big.prefixes = (0..600u32).map(|i| format!("52.{}.{}.0/24", i / 256, i % 256).parse().unwrap()).collect();
        big.sha256 = content_hash(&big.prefixes);
        let e = merge_published(Some(&s3), &big, &p, t(3)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Implausible);
        assert!(e.message().contains("more than the 500 allowed"), "{e}");
    }
}

//! Range files providers publish: Google's `goog.json`/`cloud.json` (Google's own services are
//! goog.json minus cloud.json) and Okta's `ip_ranges.json` (by cell). Every prefix must be a CIDR
//! network; each file must pass the Entra feed's plausibility rules ([`vorfw_entra::plausible`]:
//! width, special-use ranges, count) and the result must not be empty.

use std::collections::BTreeSet;
use std::net::IpAddr;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use vorfw_entra::{content_hash, parse_prefix, plausible, Limits};

use crate::discovery::parse_object;
use crate::error::{Error, ErrorKind, Result};

/// 16 MiB, as the Entra feed (cloud.json is about 100 KiB, Okta's file about 30 KiB).
pub const DEFAULT_MAX_RANGE_BYTES: usize = 16 << 20;

/// Caps for one range file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RangeLimits {
    /// The Entra feed's plausibility limits (width, special use, count); `max_additions` and
    /// `max_change_number_jump` do not apply to one file.
    pub limits: Limits,
    pub max_bytes: usize,
}

impl RangeLimits {
    /// Google's files hold wide blocks (goog.json: IPv4 up to a /10, IPv6 up to a /28, from
    /// memory of the published file): IPv4 /8 and IPv6 /24 at the widest; the rest as Entra's.
    pub fn google() -> RangeLimits {
        RangeLimits {
            limits: Limits { widest_ipv4: 8, widest_ipv6: 24, ..Limits::default() },
            max_bytes: DEFAULT_MAX_RANGE_BYTES,
        }
    }

    /// Okta's cells are narrow (mostly /32 to /24): the Entra feed's limits (IPv4 /16, IPv6 /32).
    pub fn okta() -> RangeLimits {
        RangeLimits { limits: Limits::default(), max_bytes: DEFAULT_MAX_RANGE_BYTES }
    }

    /// The same limits, accepting special-use prefixes (a lab's synthetic file only).
    pub fn allowing_special_use(mut self) -> RangeLimits {
        self.limits.allow_special_use = true;
        self
    }
}

/// A validated list of prefixes from a provider's file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeSet {
    /// `google` or `okta`.
    pub format: String,
    /// Google's `syncToken`; Okta's file has none.
    pub version: Option<String>,
    /// Google's `creationTime`.
    pub created: Option<String>,
    /// Okta's cell.
    pub cell: Option<String>,
    pub prefixes: BTreeSet<IpNet>,
    /// [`vorfw_entra::content_hash`] of `prefixes`.
    pub sha256: String,
}

impl RangeSet {
    pub fn ipv4(&self) -> Vec<Ipv4Net> {
        split_families(&self.prefixes).0
    }

    pub fn ipv6(&self) -> Vec<Ipv6Net> {
        split_families(&self.prefixes).1
    }
}

/// One file in Google's format (`goog.json` or `cloud.json`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GoogleFile {
    pub sync_token: String,
    pub creation_time: String,
    pub prefixes: BTreeSet<IpNet>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawGoogle {
    sync_token: Value,
    creation_time: String,
    prefixes: Vec<RawGooglePrefix>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawGooglePrefix {
    ipv4_prefix: Option<String>,
    ipv6_prefix: Option<String>,
}

/// Parse and check one Google file. `what` names it in messages (`goog.json`, a path, a URL).
pub fn parse_google(bytes: &[u8], what: &str, limits: &RangeLimits) -> Result<GoogleFile> {
    let ctx = |e: Error| e.context(format!("google range file {what}"));
    let obj = parse_object(bytes, limits.max_bytes).map_err(ctx)?;
    let raw: RawGoogle = serde_json::from_value(Value::Object(obj)).map_err(|e| {
        ctx(Error::new(
            ErrorKind::Parse,
            format!("not in Google's format {{syncToken, creationTime, prefixes: [{{ipv4Prefix | ipv6Prefix}}]}}: {e}"),
        ))
    })?;
    let sync_token = match raw.sync_token {
        Value::String(s) => s,
        Value::Number(n) => n.to_string(),
        other => return Err(ctx(Error::new(ErrorKind::Parse, format!("syncToken is not a string: {other}")))),
    };
    plausible::check_raw_count(raw.prefixes.len(), &limits.limits).map_err(|e| ctx(e.into()))?;
    let mut prefixes = BTreeSet::new();
    let mut bad = Vec::new();
    let mut bad_count = 0usize;
    for (i, p) in raw.prefixes.iter().enumerate() {
        let r = match (&p.ipv4_prefix, &p.ipv6_prefix) {
            (Some(s), None) => parse_prefix(s)
                .and_then(|n| if matches!(n, IpNet::V4(_)) { Ok(n) } else { Err("not IPv4") })
                .map_err(|w| (s, w)),
            (None, Some(s)) => parse_prefix(s)
                .and_then(|n| if matches!(n, IpNet::V6(_)) { Ok(n) } else { Err("not IPv6") })
                .map_err(|w| (s, w)),
            (Some(s), Some(_)) => Err((s, "both ipv4Prefix and ipv6Prefix")),
            (None, None) => {
                bad_count += 1;
                if bad.len() < 5 {
                    bad.push(format!("prefixes[{i}]: neither ipv4Prefix nor ipv6Prefix"));
                }
                continue;
            }
        };
        match r {
            Ok(n) => {
                prefixes.insert(n);
            }
            Err((s, why)) => {
                bad_count += 1;
                if bad.len() < 5 {
                    bad.push(format!("prefixes[{i}]: {s:?} ({why})"));
                }
            }
        }
    }
    if bad_count > 0 {
        return Err(ctx(Error::new(
            ErrorKind::InvalidPrefix,
            format!("{bad_count} invalid prefix(es), e.g. {}", bad.join("; ")),
        )));
    }
    if prefixes.is_empty() {
        return Err(ctx(Error::new(ErrorKind::Empty, "the file lists no prefix")));
    }
    plausible::check_prefixes(&prefixes, &limits.limits).map_err(|e| ctx(e.into()))?;
    Ok(GoogleFile { sync_token, creation_time: raw.creation_time, prefixes })
}

/// Google's own services: `goog` minus `cloud` (CIDR set subtraction, aggregated), checked
/// again (not empty, plausible).
pub fn google_services(goog: &GoogleFile, cloud: &GoogleFile, limits: &RangeLimits) -> Result<RangeSet> {
    let prefixes = subtract(&goog.prefixes, &cloud.prefixes);
    if prefixes.is_empty() {
        return Err(Error::new(
            ErrorKind::Empty,
            format!(
                "goog.json (syncToken {}) minus cloud.json (syncToken {}) is empty: the files are swapped or wrong",
                goog.sync_token, cloud.sync_token
            ),
        ));
    }
    plausible::check_prefixes(&prefixes, &limits.limits)
        .map_err(|e| Error::from(e).context("goog.json minus cloud.json"))?;
    Ok(RangeSet {
        format: "google".into(),
        version: Some(goog.sync_token.clone()),
        created: Some(goog.creation_time.clone()),
        cell: None,
        sha256: content_hash(&prefixes),
        prefixes,
    })
}

/// The cells of an Okta `ip_ranges.json`, sorted.
pub fn okta_cells(bytes: &[u8], limits: &RangeLimits) -> Result<Vec<String>> {
    let obj = parse_object(bytes, limits.max_bytes).map_err(|e| e.context("okta range file"))?;
    Ok(obj.keys().cloned().collect())
}

/// The ranges of `cell` in Okta's `{"<cell>": {"ip_ranges": [cidr, ...]}, ...}`. An unknown cell
/// is refused with the list of the file's cells.
pub fn parse_okta(bytes: &[u8], cell: &str, what: &str, limits: &RangeLimits) -> Result<RangeSet> {
    let ctx = |e: Error| e.context(format!("okta range file {what}"));
    let obj = parse_object(bytes, limits.max_bytes).map_err(ctx)?;
    if obj.is_empty() {
        return Err(ctx(Error::new(ErrorKind::Empty, "the file lists no cell")));
    }
    let Some(entry) = obj.get(cell) else {
        let known: Vec<&str> = obj.keys().map(String::as_str).collect();
        let near = known.iter().find(|k| k.eq_ignore_ascii_case(cell)).map(|k| format!(" (did you mean {k:?}?)"));
        let shown = known.iter().take(40).map(|k| format!("{k:?}")).collect::<Vec<_>>().join(", ");
        let more = if known.len() > 40 { format!(" and {} more", known.len() - 40) } else { String::new() };
        return Err(ctx(Error::new(
            ErrorKind::UnknownCell,
            format!("cell {cell:?} is not in the file{}; its cells: {shown}{more}", near.unwrap_or_default()),
        )));
    };
    let list = entry.get("ip_ranges").and_then(Value::as_array).ok_or_else(|| {
        ctx(Error::new(
            ErrorKind::Parse,
            format!("cell {cell:?} has no ip_ranges list (expected {{\"ip_ranges\": [...]}})"),
        ))
    })?;
    plausible::check_raw_count(list.len(), &limits.limits).map_err(|e| ctx(e.into()))?;
    let mut prefixes = BTreeSet::new();
    let mut bad = Vec::new();
    for (i, v) in list.iter().enumerate() {
        match v.as_str().map(parse_prefix) {
            Some(Ok(n)) => {
                prefixes.insert(n);
            }
            Some(Err(why)) => bad.push(format!("ip_ranges[{i}]: {v} ({why})")),
            None => bad.push(format!("ip_ranges[{i}]: {v} (not a string)")),
        }
    }
    if !bad.is_empty() {
        let n = bad.len();
        bad.truncate(5);
        return Err(ctx(Error::new(
            ErrorKind::InvalidPrefix,
            format!("cell {cell:?}: {n} invalid prefix(es), e.g. {}", bad.join("; ")),
        )));
    }
    if prefixes.is_empty() {
        return Err(ctx(Error::new(ErrorKind::Empty, format!("cell {cell:?} lists no prefix"))));
    }
    plausible::check_prefixes(&prefixes, &limits.limits)
        .map_err(|e| ctx(Error::from(e).context(format!("cell {cell:?}"))))?;
    Ok(RangeSet {
        format: "okta".into(),
        version: None,
        created: None,
        cell: Some(cell.to_string()),
        sha256: content_hash(&prefixes),
        prefixes,
    })
}

/// `a` minus `b` as a set of addresses, returned as the fewest CIDR networks (aggregated).
pub fn subtract(a: &BTreeSet<IpNet>, b: &BTreeSet<IpNet>) -> BTreeSet<IpNet> {
    let a = IpNet::aggregate(&a.iter().copied().collect());
    let b = IpNet::aggregate(&b.iter().copied().collect());
    let mut out = Vec::new();
    for net in a {
        let inside: Vec<IpNet> = b.iter().copied().filter(|x| net.contains(x) || x.contains(&net)).collect();
        minus(net, &inside, &mut out);
    }
    IpNet::aggregate(&out).into_iter().collect()
}

/// `net` minus `bs`, where every element of `bs` overlaps `net` (contains it or lies in it).
fn minus(net: IpNet, bs: &[IpNet], out: &mut Vec<IpNet>) {
    if bs.iter().any(|b| b.contains(&net)) {
        return;
    }
    if bs.is_empty() {
        out.push(net);
        return;
    }
    // Some b lies strictly inside net, so net is not a host route and has two halves.
    let Ok(halves) = net.subnets(net.prefix_len() + 1) else {
        return;
    };
    for half in halves {
        let sub: Vec<IpNet> = bs.iter().copied().filter(|b| half.contains(b) || b.contains(&half)).collect();
        minus(half, &sub, out);
    }
}

/// IPv4 and IPv6 prefixes apart, sorted.
pub fn split_families<'a>(nets: impl IntoIterator<Item = &'a IpNet>) -> (Vec<Ipv4Net>, Vec<Ipv6Net>) {
    let (mut v4, mut v6) = (Vec::new(), Vec::new());
    for n in nets {
        match n {
            IpNet::V4(n) => v4.push(*n),
            IpNet::V6(n) => v6.push(*n),
        }
    }
    v4.sort();
    v6.sort();
    (v4, v6)
}

/// The addresses none of `ranges` contains: for a provider with ranges, the resolved addresses
/// of its discovery names that the ranges miss (Entra's `graph.microsoft.com`).
pub fn outside_ranges(addresses: &BTreeSet<IpAddr>, ranges: &BTreeSet<IpNet>) -> BTreeSet<IpAddr> {
    addresses.iter().copied().filter(|a| !ranges.iter().any(|r| r.contains(a))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(v: &[&str]) -> BTreeSet<IpNet> {
        v.iter().map(|s| s.parse().unwrap()).collect()
    }

    fn strs(s: &BTreeSet<IpNet>) -> Vec<String> {
        s.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn subtraction() {
        assert_eq!(
            strs(&subtract(&set(&["8.8.0.0/16"]), &set(&["8.8.4.0/24"]))),
            [
                "8.8.0.0/22",
                "8.8.5.0/24",
                "8.8.6.0/23",
                "8.8.8.0/21",
                "8.8.16.0/20",
                "8.8.32.0/19",
                "8.8.64.0/18",
                "8.8.128.0/17"
            ]
        );
        assert!(subtract(&set(&["8.8.4.0/24"]), &set(&["8.8.0.0/16"])).is_empty());
        assert_eq!(
            strs(&subtract(&set(&["8.8.4.0/24", "2001:4860::/32"]), &set(&["9.9.9.0/24", "2001:4860:8000::/33"]))),
            ["8.8.4.0/24", "2001:4860::/33"]
        );
        // Adjacent remainders are merged; the family never leaks.
        assert_eq!(strs(&subtract(&set(&["8.8.4.0/24", "8.8.5.0/24"]), &set(&["::/0"]))), ["8.8.4.0/23"]);
        assert!(subtract(&set(&["8.8.4.0/24"]), &set(&["8.8.4.0/24"])).is_empty());
        assert_eq!(strs(&subtract(&set(&["8.8.4.0/24"]), &set(&["8.8.4.7/32"]))).len(), 8);
    }

    #[test]
    fn families_and_outside() {
        let s = set(&["2001:4860::/32", "8.8.4.0/24", "8.8.8.0/24"]);
        let (v4, v6) = split_families(&s);
        assert_eq!(v4.len(), 2);
        assert_eq!(v6.len(), 1);
        let addrs: BTreeSet<IpAddr> = ["8.8.8.8", "20.190.1.1"].iter().map(|a| a.parse().unwrap()).collect();
        assert_eq!(outside_ranges(&addrs, &s).into_iter().map(|a| a.to_string()).collect::<Vec<_>>(), ["20.190.1.1"]);
    }
}

//! Properties of the set algebra and of the resolved-address update.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, SystemTime};

use ipnet::{IpNet, Ipv4Net};
use proptest::prelude::*;
use vorfw_oidc::*;

fn net_in_24() -> impl Strategy<Value = IpNet> {
    (0u8..=255, 24u8..=32)
        .prop_map(|(host, len)| IpNet::V4(Ipv4Net::new(Ipv4Addr::new(198, 51, 100, host), len).unwrap().trunc()))
}

/// Names, each answered per round with: a failure, an empty answer, or some of 12 addresses
/// (two of them special-use).
fn answer() -> impl Strategy<Value = Answer> {
    prop_oneof![
        1 => Just(Err("SERVFAIL".to_string())),
        1 => Just(Ok(vec![])),
        4 => proptest::collection::vec((0usize..12, 0u32..10_000), 1..5).prop_map(|v| {
            Ok(v.into_iter().map(|(i, ttl)| (addr(i), ttl)).collect())
        }),
    ]
}

fn addr(i: usize) -> IpAddr {
    match i {
        10 => "10.0.0.1".parse().unwrap(),
        11 => "::1".parse().unwrap(),
        i if i % 2 == 0 => IpAddr::V4(Ipv4Addr::new(20, 0, 0, i as u8)),
        i => format!("2603:1000::{i}").parse().unwrap(),
    }
}

/// A clock step (sometimes backwards) and the answers.
fn round() -> impl Strategy<Value = (i64, BTreeMap<String, Answer>)> {
    (-3_000i64..20_000, proptest::collection::btree_map("[a-c]\\.example\\.com", answer(), 0..4))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// Exactly the addresses of `a` not in `b`, checked address by address over a /24.
    #[test]
    fn subtraction_is_set_difference(a in proptest::collection::btree_set(net_in_24(), 0..6),
                                     b in proptest::collection::btree_set(net_in_24(), 0..6)) {
        let d = subtract(&a, &b);
        for host in 0u8..=255 {
            let ip = IpAddr::V4(Ipv4Addr::new(198, 51, 100, host));
            let want = a.iter().any(|n| n.contains(&ip)) && !b.iter().any(|n| n.contains(&ip));
            prop_assert_eq!(d.iter().any(|n| n.contains(&ip)), want, "{}", ip);
        }
        // Aggregated: no two results overlap or could merge into one.
        let v: Vec<IpNet> = d.iter().copied().collect();
        prop_assert_eq!(IpNet::aggregate(&v), v);
    }

    #[test]
    fn the_update_never_empties_a_name_and_never_exceeds_the_cap(
        rounds in proptest::collection::vec(round(), 1..12),
        cap in 1usize..12,
        allow in any::<bool>(),
    ) {
        let policy = DnsPolicy { grace: Duration::from_secs(3600), max_addresses: cap, allow_special_use: allow, ..DnsPolicy::default() };
        let mut now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_780_000_000);
        let mut state: Option<DnsState> = None;
        for (step, answers) in rounds {
            if step >= 0 {
                now += Duration::from_secs(step as u64);
            } else {
                now -= Duration::from_secs(step.unsigned_abs());
            }
            match update(state.as_ref(), now, &answers, &policy) {
                Ok((next, report)) => {
                    prop_assert!(next.effective().len() <= cap, "{} > cap {}", next.effective().len(), cap);
                    prop_assert!(next.next_refresh >= now + policy.min_refresh && next.next_refresh <= now + policy.max_refresh);
                    let failed: BTreeSet<&str> = report.failed.iter().map(|f| f.name.as_str()).collect();
                    for (name, answer) in &answers {
                        let before = state.as_ref().and_then(|s| s.names.get(name)).map(|n| n.addresses.keys().copied().collect::<BTreeSet<_>>()).unwrap_or_default();
                        let after = next.names.get(name).map(|n| n.addresses.keys().copied().collect::<BTreeSet<_>>()).unwrap_or_default();
                        if failed.contains(name.as_str()) {
                            // A failed, empty or refused answer changes nothing for the name.
                            prop_assert_eq!(&before, &after, "{} changed on a failure", name);
                        } else {
                            let got: BTreeSet<IpAddr> = answer.as_ref().unwrap().iter().map(|(a, _)| a.to_canonical()).collect();
                            prop_assert!(!got.is_empty());
                            prop_assert!(got.is_subset(&after), "{}: answered addresses allowed at once", name);
                        }
                        if !before.is_empty() {
                            prop_assert!(!after.is_empty(), "{} emptied", name);
                        }
                    }
                    if !allow {
                        prop_assert!(next.effective().iter().all(|a| !a.is_loopback() && *a != "10.0.0.1".parse::<IpAddr>().unwrap()));
                    }
                    let s = next.sets();
                    prop_assert_eq!(s.len(), next.effective().len());
                    let text = serde_json::to_string(&next).unwrap();
                    prop_assert_eq!(serde_json::from_str::<DnsState>(&text).unwrap(), next.clone());
                    state = Some(next);
                }
                Err(e) => {
                    // Only the cap refuses an update; the caller keeps the state in force.
                    prop_assert_eq!(e.kind(), ErrorKind::Implausible, "{}", e);
                }
            }
        }
    }
}

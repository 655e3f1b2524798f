//! Resolving through a real DNS server (dnsmasq on 127.0.0.77, a free port, records given by
//! the test) into the per-provider state: A and AAAA with TTLs, a changed answer (the new
//! address at once, the old one kept until its grace ends), a stopped server (nothing lost).
//! The answers are documentation addresses: special-use, so the lab switch allows them, and one
//! test shows they are refused without it.

#[path = "../../entra/tests/common/mod.rs"]
mod common;
mod dns;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

use common::{day, TempDir};
use dns::{rec, Dnsmasq};
use vorfw_oidc::{
    load_provider_state, load_provider_status, parse_provider, refresh_provider, resolve, state_path, update,
    DnsPolicy, FetchOptions, Health, Provider, PublishedPolicy, RefreshOptions,
};

const IDP: &str = "idp.vorfw.test";
const KEYS: &str = "keys.vorfw.test";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn names(v: &[&str]) -> BTreeSet<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn lab_policy() -> DnsPolicy {
    DnsPolicy { allow_special_use: true, ..DnsPolicy::default() }
}

fn provider() -> Provider {
    parse_provider(&serde_json::json!({"issuer": format!("https://{IDP}"), "name": "lab"})).unwrap()
}

fn discovery_file(dir: &TempDir) -> std::path::PathBuf {
    let doc = serde_json::json!({
        "issuer": format!("https://{IDP}"),
        "authorization_endpoint": format!("https://{IDP}/auth"),
        "token_endpoint": format!("https://{IDP}/token"),
        "jwks_uri": format!("https://{KEYS}/jwks"),
    });
    dir.write("openid-configuration.json", doc.to_string().as_bytes())
}

fn opts(dir: &TempDir, d: &Dnsmasq) -> RefreshOptions {
    RefreshOptions {
        state_dir: dir.path().join("state"),
        fetch: FetchOptions::default().direct(),
        resolver: d.resolver(),
        dns: lab_policy(),
        published: PublishedPolicy::default(),
        discovery_file: Some(discovery_file(dir)),
        discovery_dir: None,
        check: false,
    }
}

#[test]
fn a_and_aaaa_answers_with_their_ttls() {
    let dir = TempDir::new("oidc-a-aaaa");
    let d =
        Dnsmasq::start(dir.path(), &[rec(IDP, &["192.0.2.10", "2001:db8::10"], 120), rec(KEYS, &["192.0.2.20"], 300)]);
    let answers = resolve(&names(&[IDP, KEYS, "missing.vorfw.test"]), &d.resolver()).unwrap();
    let idp: BTreeSet<(IpAddr, u32)> = answers[IDP].clone().unwrap().into_iter().collect();
    assert_eq!(idp, [(ip("192.0.2.10"), 120), (ip("2001:db8::10"), 120)].into_iter().collect());
    assert_eq!(answers[KEYS].clone().unwrap(), vec![(ip("192.0.2.20"), 300)], "NODATA for AAAA is not a failure");
    let missing = answers["missing.vorfw.test"].clone().unwrap_err();
    assert!(missing.contains("NXDOMAIN"), "{missing}");

    // Through the state: both families, the TTL sets the next refresh (120 s, clamped up to 5 min).
    let (st, report) = update(None, day(0), &answers, &lab_policy()).unwrap();
    let v4: Vec<String> = st.sets().ipv4.iter().map(|a| a.to_string()).collect();
    let v6: Vec<String> = st.sets().ipv6.iter().map(|a| a.to_string()).collect();
    assert_eq!((v4, v6), (vec!["192.0.2.10".to_string(), "192.0.2.20".into()], vec!["2001:db8::10".to_string()]));
    assert_eq!(report.failed.len(), 1, "{report:?}");
    assert_eq!(st.next_refresh, day(0) + Duration::from_secs(300));
}

#[test]
fn special_use_answers_are_refused_without_the_lab_switch() {
    let dir = TempDir::new("oidc-special");
    let d = Dnsmasq::start(dir.path(), &[rec(IDP, &["192.0.2.10"], 60), rec(KEYS, &["10.1.2.3"], 60)]);
    let answers = resolve(&names(&[IDP, KEYS]), &d.resolver()).unwrap();
    let (st, report) = update(None, day(0), &answers, &DnsPolicy::default()).unwrap();
    assert!(st.effective().is_empty(), "{st:?}");
    assert_eq!(report.failed.len(), 2);
    assert!(report.warnings.iter().any(|w| w.contains("192.0.2.10")), "{:?}", report.warnings);
}

#[test]
fn a_changed_answer_adds_the_new_address_and_keeps_the_old_one_until_grace_ends() {
    let dir = TempDir::new("oidc-change");
    let mut d =
        Dnsmasq::start(dir.path(), &[rec(IDP, &["192.0.2.10"], 60), rec(KEYS, &["192.0.2.20", "2001:db8::20"], 60)]);
    let o = opts(&dir, &d);
    let p = provider();
    let first = refresh_provider(&p, &o, day(0)).unwrap();
    assert!(first.saved);
    let want: BTreeSet<IpAddr> = [ip("192.0.2.10"), ip("192.0.2.20"), ip("2001:db8::20")].into_iter().collect();
    assert_eq!(first.state.dns.effective(), want);
    assert_eq!(first.state.names, names(&[IDP, KEYS]));

    // The CDN moves idp to another address.
    d.restart(&[rec(IDP, &["192.0.2.11"], 60), rec(KEYS, &["192.0.2.20", "2001:db8::20"], 60)]);
    let later = day(0) + Duration::from_secs(3600);
    let second = refresh_provider(&p, &o, later).unwrap();
    let eff = second.state.dns.effective();
    assert!(eff.contains(&ip("192.0.2.11")), "the new address is allowed at once: {eff:?}");
    assert!(eff.contains(&ip("192.0.2.10")), "the old one stays during the grace period: {eff:?}");
    assert_eq!(second.report.entered_grace, vec![ip("192.0.2.10")]);
    assert_eq!(second.address_changes(), (vec![ip("192.0.2.11")], vec![]));
    let stored = load_provider_state(&o.state_dir, "lab").unwrap().unwrap();
    assert_eq!(stored.dns.effective(), eff, "saved");
    let grace = stored.dns.in_grace(stored.policy.grace);
    assert_eq!(grace.get(&ip("192.0.2.10")), Some(&(later + Duration::from_secs(24 * 3600))));

    // After the grace period the old address goes.
    let after = later + Duration::from_secs(24 * 3600 + 60);
    let third = refresh_provider(&p, &o, after).unwrap();
    assert!(!third.state.dns.effective().contains(&ip("192.0.2.10")));
    assert_eq!(third.address_changes().1, vec![ip("192.0.2.10")]);
    assert!(third.report.removed.contains(&ip("192.0.2.10")));
}

#[test]
fn a_stopped_server_leaves_the_set_as_it_was() {
    let dir = TempDir::new("oidc-stop");
    let mut d =
        Dnsmasq::start(dir.path(), &[rec(IDP, &["192.0.2.10", "2001:db8::10"], 60), rec(KEYS, &["192.0.2.20"], 60)]);
    let o = opts(&dir, &d);
    let p = provider();
    let before = refresh_provider(&p, &o, day(0)).unwrap().state;
    assert_eq!(before.dns.effective().len(), 3);
    d.stop();
    let o2 = refresh_provider(&p, &o, day(1)).unwrap();
    assert_eq!(o2.state.dns.effective(), before.dns.effective(), "nothing lost to a dead resolver");
    assert_eq!(o2.state.sets, before.sets);
    assert_eq!(o2.report.failed.len(), 2, "{:?}", o2.report);
    assert!(o2.report.failed.iter().all(|f| f.kept >= 1 && f.message.contains("lookup failed")), "{:?}", o2.report);
    // Even long after the grace period: failed lookups never start it.
    let o3 = refresh_provider(&p, &o, day(30)).unwrap();
    assert_eq!(o3.state.dns.effective(), before.dns.effective());
    let status = load_provider_status(&o.state_dir, "lab").unwrap().unwrap();
    assert_eq!(status.failing_names.len(), 2);
    assert_eq!(status.health(day(30), Duration::from_secs(3600)), Health::Degraded);
    assert!(state_path(&o.state_dir, "lab").is_file());
}

#[test]
fn a_cname_chain_gives_the_target_addresses() {
    let dir = TempDir::new("oidc-cname");
    let d = Dnsmasq::start_with_cnames(
        dir.path(),
        &[rec("edge.cdn.vorfw.test", &["192.0.2.30", "2001:db8::30"], 90)],
        &[(IDP, "edge.cdn.vorfw.test")],
    );
    let answers = resolve(&names(&[IDP]), &d.resolver()).unwrap();
    let got: BTreeSet<IpAddr> = answers[IDP].clone().unwrap().into_iter().map(|(a, _)| a).collect();
    assert_eq!(got, [ip("192.0.2.30"), ip("2001:db8::30")].into_iter().collect());
}

//! The published shapes (tests/fixtures/oidc): discovery documents of the four provider kinds,
//! Google's and Okta's range files, and the files and documents that must be refused.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde_json::json;
use vorfw_oidc::*;

fn fixture(rel: &str) -> Vec<u8> {
    let p: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../tests/fixtures/oidc").join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn issuer(s: &str) -> Issuer {
    Issuer::parse(s).unwrap()
}

fn names(d: &Discovery) -> Vec<String> {
    d.names().into_iter().collect()
}

fn strs(s: &BTreeSet<IpNet>) -> Vec<String> {
    s.iter().map(|n| n.to_string()).collect()
}

#[test]
fn discovery_documents_of_each_provider() {
    let l = DiscoveryLimits::default();
    let g = validate_discovery(&fixture("discovery/google.json"), &issuer("https://accounts.google.com"), &l).unwrap();
    assert_eq!(
        names(&g),
        ["accounts.google.com", "oauth2.googleapis.com", "openidconnect.googleapis.com", "www.googleapis.com"]
    );

    let tenant = "https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000/v2.0";
    let e = validate_discovery(&fixture("discovery/entra.json"), &issuer(tenant), &l).unwrap();
    assert_eq!(names(&e), ["graph.microsoft.com", "login.microsoftonline.com"], "userinfo is on graph.microsoft.com");
    assert!(e.endpoints.iter().any(|x| x.field == "kerberos_endpoint"), "other *_endpoint fields are collected");
    assert!(!e.endpoints.iter().any(|x| x.url.contains("pas.windows.net")), "rbac_url is not an endpoint");

    let o = validate_discovery(&fixture("discovery/okta.json"), &issuer("https://example.okta.com"), &l).unwrap();
    assert_eq!(names(&o), ["example.okta.com"]);
    assert_eq!(o.hosts().len(), 1);

    let k = validate_discovery(&fixture("discovery/keycloak.json"), &issuer("https://kc.example.com/realms/vor"), &l)
        .unwrap();
    let hosts: Vec<String> = k.hosts().iter().map(|h| h.to_string()).collect();
    assert_eq!(hosts, ["kc.example.com:443", "mtls.kc.example.com:8443"]);
    assert_eq!(k.ports().into_iter().collect::<Vec<_>>(), [443, 8443]);
    assert!(!k.endpoints.iter().any(|x| x.url.contains("login-status-iframe")), "the browser's iframe is not egress");
    assert!(k.warnings.is_empty());
}

#[test]
fn discovery_refusals() {
    let l = DiscoveryLimits::default();
    let google = fixture("discovery/google.json");

    // The issuer does not match.
    let e = validate_discovery(&google, &issuer("https://accounts.example.com"), &l).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::IssuerMismatch);
    assert!(e.message().contains("names issuer \"https://accounts.google.com\", not the configured"), "{e}");

    // Served over HTTP: the issuer cannot be configured so, and an http endpoint is refused.
    let e = parse_providers(&json!([{"issuer": "http://accounts.google.com"}])).unwrap_err();
    assert!(e.message().contains("not an https URL"), "{e}");
    let http = String::from_utf8(google.clone())
        .unwrap()
        .replace("https://oauth2.googleapis.com/token", "http://oauth2.googleapis.com/token");
    let e = validate_discovery(http.as_bytes(), &issuer("https://accounts.google.com"), &l).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Insecure);
    assert!(e.message().contains("token_endpoint \"http://oauth2.googleapis.com/token\" is not an https URL"), "{e}");
    let e = check_redirect(
        "https://accounts.google.com/.well-known/openid-configuration",
        "http://accounts.google.com/.well-known/openid-configuration",
        1,
        DEFAULT_MAX_REDIRECTS,
        false,
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Redirect);

    // 50 MB: refused before parsing (it is not even JSON past the first bytes).
    let mut big = b"{\"issuer\": \"https://accounts.google.com\", \"x\": \"".to_vec();
    big.resize(50 * 1000 * 1000, b'a');
    let e = validate_discovery(&big, &issuer("https://accounts.google.com"), &l).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TooLarge);
    assert!(e.message().contains("50000000 bytes, more than the 1048576 allowed; refused before parsing"), "{e}");

    // 10,000 hosts.
    let mut doc = serde_json::from_slice::<serde_json::Value>(&google).unwrap();
    let aliases: serde_json::Map<String, serde_json::Value> =
        (0..10_000).map(|i| (format!("e{i}_endpoint"), json!(format!("https://h{i}.example.com/x")))).collect();
    doc["mtls_endpoint_aliases"] = serde_json::Value::Object(aliases);
    let body = doc.to_string();
    assert!(body.len() < DEFAULT_MAX_DISCOVERY_BYTES, "within the size cap: the host cap refuses it");
    let e = validate_discovery(body.as_bytes(), &issuer("https://accounts.google.com"), &l).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TooManyHosts);
    assert!(e.message().contains("names more than 32 hosts"), "{e}");
    // The same hosts as top-level fields.
    let mut doc = serde_json::from_slice::<serde_json::Value>(&google).unwrap();
    for i in 0..10_000 {
        doc[format!("x{i}_endpoint")] = json!(format!("https://h{i}.example.com/x"));
    }
    let e = validate_discovery(doc.to_string().as_bytes(), &issuer("https://accounts.google.com"), &l).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TooManyHosts);

    for bad in ["bad/empty.json", "bad/captive_portal.html"] {
        let e = validate_discovery(&fixture(bad), &issuer("https://accounts.google.com"), &l).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::WrongContent, "{bad}: {e}");
    }
}

#[test]
fn google_services_are_goog_minus_cloud() {
    let l = RangeLimits::google();
    let goog = parse_google(&fixture("google/goog.json"), "goog.json", &l).unwrap();
    let cloud = parse_google(&fixture("google/cloud.json"), "cloud.json", &l).unwrap();
    assert_eq!(goog.sync_token, "1764720000000");
    assert_eq!(goog.prefixes.len(), 12);
    let s = google_services(&goog, &cloud, &l).unwrap();
    assert_eq!(
        strs(&s.prefixes),
        [
            "8.8.4.0/24",
            "8.8.8.0/24",
            "34.125.0.0/16",
            "34.126.0.0/15",
            "74.125.0.0/16",
            "142.250.0.0/15",
            "172.217.0.0/16",
            "216.239.32.0/19",
            "2001:4860::/32",
            "2600:190f::/32",
            "2607:f8b0::/32",
            "2a00:1450::/32",
        ]
    );
    assert_eq!(s.ipv4().len(), 8);
    assert_eq!(s.ipv6().len(), 4);
    assert_eq!(s.version.as_deref(), Some("1764720000000"));
    assert_eq!(s.sha256, vorfw_entra::content_hash(&s.prefixes));
    // No address of cloud.json is left, none of goog.json outside cloud.json is lost.
    for c in &cloud.prefixes {
        assert!(!s.prefixes.iter().any(|p| p.contains(c) || c.contains(p)), "{c} left in the result");
    }
    // Swapped files: cloud minus goog is empty.
    let e = google_services(&cloud, &goog, &l).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Empty);
    assert!(e.message().contains("swapped"), "{e}");
}

#[test]
fn okta_cells() {
    let l = RangeLimits::okta();
    let bytes = fixture("okta/ip_ranges.json");
    let s = parse_okta(&bytes, "us_cell_2", "ip_ranges.json", &l).unwrap();
    assert_eq!(strs(&s.prefixes), ["18.214.232.0/24", "34.194.52.0/24", "44.193.7.0/26"]);
    assert_eq!(s.cell.as_deref(), Some("us_cell_2"));
    let e = parse_okta(&bytes, "US_CELL_1", "ip_ranges.json", &l).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::UnknownCell);
    assert!(e.message().contains("(did you mean \"us_cell_1\"?)"), "{e}");
    assert!(
        e.message().contains("\"apac_cell_1\", \"emea_cell_1\", \"preview_cell_1\", \"us_cell_1\", \"us_cell_2\""),
        "{e}"
    );
    assert_eq!(vorfw_oidc::okta_cells(&bytes, &l).unwrap().len(), 5);
}

#[test]
fn bad_range_files_are_refused() {
    let g = RangeLimits::google();
    let cases = [
        ("bad/empty.json", ErrorKind::WrongContent, "empty"),
        ("bad/goog_truncated.json", ErrorKind::Parse, "ends early"),
        ("bad/captive_portal.html", ErrorKind::WrongContent, "markup"),
        ("bad/goog_special_use.json", ErrorKind::Implausible, "10.0.0.0/16 (in 10.0.0.0/8 private-use"),
        ("bad/goog_everything.json", ErrorKind::Implausible, "0.0.0.0/0"),
        ("bad/goog_host_bits.json", ErrorKind::InvalidPrefix, "3 invalid prefix(es)"),
        ("okta/ip_ranges.json", ErrorKind::Parse, "not in Google's format"),
    ];
    for (file, kind, want) in cases {
        let e = parse_google(&fixture(file), file, &g).unwrap_err();
        assert_eq!(e.kind(), kind, "{file}: {e}");
        assert!(e.message().contains(want) && e.message().contains(file), "{file}: {e}");
    }
    let e = parse_google(&fixture("bad/goog_special_use.json"), "x", &g).unwrap_err();
    assert!(e.message().contains("2001:db8::/32 (in 2001:db8::/32 documentation"), "{e}");
    // A lab's file may hold special-use prefixes; never the whole Internet.
    assert!(parse_google(&fixture("bad/goog_special_use.json"), "x", &g.clone().allowing_special_use()).is_ok());
    assert!(parse_google(&fixture("bad/goog_everything.json"), "x", &g.clone().allowing_special_use()).is_err());

    let o = RangeLimits::okta();
    let bytes = fixture("bad/okta_special_use.json");
    for (cell, kind, want) in [
        ("us_cell_1", ErrorKind::Implausible, "192.168.0.0/24"),
        ("us_cell_2", ErrorKind::Implausible, "0.0.0.0/0"),
        ("us_cell_3", ErrorKind::Parse, "has no ip_ranges"),
        ("us_cell_4", ErrorKind::Empty, "lists no prefix"),
    ] {
        let e = parse_okta(&bytes, cell, "ip_ranges.json", &o).unwrap_err();
        assert_eq!(e.kind(), kind, "{cell}: {e}");
        assert!(e.message().contains(want) && e.message().contains(cell), "{cell}: {e}");
    }
    assert_eq!(parse_okta(b"{}", "us_cell_1", "x", &o).unwrap_err().kind(), ErrorKind::Empty);
    assert_eq!(
        parse_okta(&fixture("bad/empty.json"), "us_cell_1", "x", &o).unwrap_err().kind(),
        ErrorKind::WrongContent
    );
    let many =
        json!({"c": {"ip_ranges": (0..6000).map(|i| format!("52.{}.{}.0/24", i / 256, i % 256)).collect::<Vec<_>>()}});
    let e = parse_okta(many.to_string().as_bytes(), "c", "x", &o).unwrap_err();
    assert!(e.message().contains("6000 prefixes"), "{e}");
    let e = parse_okta(&fixture("okta/ip_ranges.json"), "us_cell_1", "x", &RangeLimits { max_bytes: 100, ..o })
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TooLarge);
}

#[test]
fn providers_with_ranges_resolve_what_the_ranges_miss() {
    let tenant = "https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000/v2.0";
    let ps = parse_providers(&json!([{"issuer": tenant, "addresses": "entra"}])).unwrap();
    let d = validate_discovery(&fixture("discovery/entra.json"), &ps[0].issuer, &DiscoveryLimits::default()).unwrap();
    assert!(d.names().contains("graph.microsoft.com"));
    let ps2 = parse_providers(&json!([{"issuer": tenant, "addresses": "entra", "extra_names": ["graph.microsoft.com", "aadcdn.msftauth.net:8443"]}])).unwrap();
    let all: Vec<String> = ps2[0].names(&d).into_iter().collect();
    assert_eq!(all, ["aadcdn.msftauth.net", "graph.microsoft.com", "login.microsoftonline.com"]);
    assert_eq!(ps2[0].ports(&d).into_iter().collect::<Vec<_>>(), [443, 8443]);
    let entra: BTreeSet<IpNet> = ["20.190.128.0/18", "40.126.0.0/18"].iter().map(|s| s.parse().unwrap()).collect();
    let resolved = ["20.190.151.7", "20.190.190.1", "52.96.0.1"].iter().map(|s| s.parse().unwrap()).collect();
    let extra: Vec<String> = outside_ranges(&resolved, &entra).iter().map(|a| a.to_string()).collect();
    assert_eq!(extra, ["52.96.0.1"]);
}

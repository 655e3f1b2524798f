//! Discovery documents, range files, provider lists, names and redirects come from outside:
//! parsing them gives a result or a clear error, never a panic.

use proptest::prelude::*;
use vorfw_oidc::*;

const DISCOVERY_TOKENS: &str = "(\\{|\\}|\\[|\\]|\"issuer\"|\"jwks_uri\"|\"token_endpoint\"|\"x_endpoint\"|\"mtls_endpoint_aliases\"|\"https://accounts\\.google\\.com\"|\"https://[a-z0-9.:@\\[\\]_-]{0,20}/x\"|\"http://a\\.example\\.com\"|null|:|,|[0-9]{1,5}|[ -~]){0,60}";
const GOOGLE_TOKENS: &str = "(\\{|\\}|\\[|\\]|\"syncToken\"|\"creationTime\"|\"prefixes\"|\"ipv4Prefix\"|\"ipv6Prefix\"|\"service\"|\"8\\.8\\.8\\.0/24\"|\"2001:4860::/32\"|\"0\\.0\\.0\\.0/0\"|\"10\\.0\\.0\\.0/8\"|\"[0-9./:a-f]{0,18}\"|null|:|,|[0-9]{1,12}|[ -~]){0,60}";
const OKTA_TOKENS: &str = "(\\{|\\}|\\[|\\]|\"us_cell_1\"|\"ip_ranges\"|\"52\\.6\\.85\\.0/24\"|\"[0-9./:a-f]{0,18}\"|null|:|,|[0-9]{1,5}|[ -~]){0,50}";

fn google_issuer() -> Issuer {
    Issuer::parse("https://accounts.google.com").unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn discovery_documents(text in DISCOVERY_TOKENS, lab in any::<bool>()) {
        let l = DiscoveryLimits { allow_ip_literals: lab, ..DiscoveryLimits::default() };
        if let Ok(d) = validate_discovery(text.as_bytes(), &google_issuer(), &l) {
            prop_assert_eq!(d.issuer.as_str(), "https://accounts.google.com");
            prop_assert!(d.hosts().len() <= l.max_hosts);
        }
    }

    #[test]
    fn discovery_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = validate_discovery(&bytes, &google_issuer(), &DiscoveryLimits::default());
    }

    #[test]
    fn google_files(text in GOOGLE_TOKENS, bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        for l in [RangeLimits::google(), RangeLimits::google().allowing_special_use()] {
            if let Ok(f) = parse_google(text.as_bytes(), "goog.json", &l) {
                prop_assert!(!f.prefixes.is_empty());
                let _ = google_services(&f, &f, &l);
            }
            let _ = parse_google(&bytes, "goog.json", &l);
        }
    }

    #[test]
    fn okta_files(text in OKTA_TOKENS, bytes in proptest::collection::vec(any::<u8>(), 0..200), cell in "[a-z_0-9]{0,10}") {
        let l = RangeLimits::okta();
        if let Ok(s) = parse_okta(text.as_bytes(), "us_cell_1", "ip_ranges.json", &l) {
            prop_assert!(!s.prefixes.is_empty());
        }
        let _ = parse_okta(&bytes, &cell, "ip_ranges.json", &l);
        let _ = vorfw_oidc::okta_cells(&bytes, &l);
    }

    #[test]
    fn names_urls_and_redirects(s in "(https?://|[a-z0-9.:@/\\[\\]%_?#-]|é|\\.\\.){0,40}", t in ".{0,40}", hop in 0usize..8) {
        let _ = dns_name(&s);
        let _ = dns_name(&t);
        let _ = name_and_port(&s);
        let _ = https_url("f", &s, true);
        let _ = https_url("f", &t, false);
        if let Ok(i) = Issuer::parse(&s) {
            prop_assert!(i.discovery_url().ends_with("/.well-known/openid-configuration"));
        }
        let _ = check_redirect("https://idp.example.com/.well-known/openid-configuration", &s, hop, 5, false);
        let _ = check_redirect(&t, &s, hop, 5, true);
    }

    #[test]
    fn provider_lists(text in "(\\{|\\}|\\[|\\]|\"issuer\"|\"addresses\"|\"kind\"|\"published\"|\"format\"|\"okta\"|\"google\"|\"cell\"|\"entra\"|\"dns\"|\"name\"|\"extra_names\"|\"url\"|\"file\"|\"https://a\\.example\\.com\"|\"/x\"|:|,|null|[0-9]{1,3}|[ -~]){0,40}") {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
            if let Ok(ps) = parse_providers(&v) {
                for p in ps {
                    prop_assert!(!p.id.is_empty() && p.id.len() <= MAX_ID_LEN);
                }
            }
        }
    }
}

//! The OpenID Connect Discovery document (`<issuer>/.well-known/openid-configuration`): validated
//! and reduced to the hosts and ports a client must reach.
//!
//! Refused, each with a message naming the field and the value: a body over the size cap (before
//! parsing), something that is not a JSON object, an `issuer` that is not exactly the configured
//! one (OpenID Connect Discovery 1.0 §4.3, RFC 8414 §3.3), an endpoint that is not `https`, a URL
//! with user information, an IP literal (unless allowed), a host that is not a DNS name, more
//! distinct hosts than the cap, no `jwks_uri`.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use url::Url;

use crate::config::Issuer;
use crate::error::{Error, ErrorKind, Result};
use crate::names::{https_url, HostPort};

/// 1 MiB: real documents are 1 to 6 KiB.
pub const DEFAULT_MAX_DISCOVERY_BYTES: usize = 1 << 20;
/// Real documents name 1 (Okta, Keycloak) to 4 (Google) hosts; mTLS aliases add a few.
pub const DEFAULT_MAX_HOSTS: usize = 32;
/// Redirects a fetcher may follow for one document.
pub const DEFAULT_MAX_REDIRECTS: usize = 5;

/// The fields whose hosts are collected, beside every other top-level `*_endpoint` field and the
/// values of `mtls_endpoint_aliases` (RFC 8705 §5). Human-facing URLs (`service_documentation`,
/// `op_policy_uri`, `op_tos_uri`) and the browser's `check_session_iframe` are not egress of the
/// services and are not collected.
pub const ENDPOINT_FIELDS: &[&str] = &[
    "issuer",
    "authorization_endpoint",
    "token_endpoint",
    "userinfo_endpoint",
    "jwks_uri",
    "end_session_endpoint",
    "registration_endpoint",
    "introspection_endpoint",
    "revocation_endpoint",
    "device_authorization_endpoint",
    "pushed_authorization_request_endpoint",
    "backchannel_authentication_endpoint",
];

/// Caps and switches of the validation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscoveryLimits {
    /// Largest document accepted, in bytes, checked before parsing.
    pub max_bytes: usize,
    /// Most distinct hosts (host and port) a document may name.
    pub max_hosts: usize,
    /// Accept endpoints whose host is an IP address (a lab); names otherwise.
    pub allow_ip_literals: bool,
}

impl Default for DiscoveryLimits {
    fn default() -> Self {
        DiscoveryLimits {
            max_bytes: DEFAULT_MAX_DISCOVERY_BYTES,
            max_hosts: DEFAULT_MAX_HOSTS,
            allow_ip_literals: false,
        }
    }
}

/// One URL of the document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// `token_endpoint`, or `mtls_endpoint_aliases.token_endpoint`.
    pub field: String,
    pub url: String,
    pub host: HostPort,
}

/// A validated discovery document, reduced to what egress needs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Discovery {
    pub issuer: String,
    /// Every collected URL, in field order (`issuer` first, mTLS aliases last).
    pub endpoints: Vec<Endpoint>,
    /// Not refusals: a missing `authorization_endpoint` or `token_endpoint`.
    pub warnings: Vec<String>,
}

impl Discovery {
    /// The distinct hosts and ports.
    pub fn hosts(&self) -> BTreeSet<HostPort> {
        self.endpoints.iter().map(|e| e.host.clone()).collect()
    }

    /// The DNS names to resolve (IP literals left out).
    pub fn names(&self) -> BTreeSet<String> {
        self.endpoints.iter().filter_map(|e| e.host.host.name().map(str::to_string)).collect()
    }

    /// The ports egress must allow to the provider's addresses (443 in practice).
    pub fn ports(&self) -> BTreeSet<u16> {
        self.endpoints.iter().map(|e| e.host.port).collect()
    }
}

/// Validate a discovery document fetched for `issuer`.
pub fn validate_discovery(bytes: &[u8], issuer: &Issuer, limits: &DiscoveryLimits) -> Result<Discovery> {
    let url = issuer.discovery_url();
    let doc = parse_object(bytes, limits.max_bytes).map_err(|e| e.context(format!("discovery document {url}")))?;
    let got = match doc.get("issuer") {
        Some(Value::String(s)) => s.as_str(),
        Some(other) => {
            return Err(Error::new(
                ErrorKind::Parse,
                format!("discovery document {url}: issuer is not a string: {other}"),
            ))
        }
        None => return Err(Error::new(ErrorKind::Parse, format!("discovery document {url} has no issuer"))),
    };
    if got != issuer.as_str() {
        let hint = if got.trim_end_matches('/') == issuer.as_str().trim_end_matches('/') {
            " (they differ only in the trailing '/'; the issuer must be configured exactly as the provider writes it)"
        } else {
            ""
        };
        return Err(Error::new(
            ErrorKind::IssuerMismatch,
            format!(
                "discovery document {url} names issuer {got:?}, not the configured {:?}{hint}; \
                 the document is refused (OpenID Connect Discovery 1.0 section 4.3)",
                issuer.as_str()
            ),
        ));
    }

    let mut fields: Vec<(String, &Value)> = Vec::new();
    for f in ENDPOINT_FIELDS {
        if let Some(v) = doc.get(*f) {
            fields.push((f.to_string(), v));
        }
    }
    for (k, v) in &doc {
        if k.ends_with("_endpoint") && !ENDPOINT_FIELDS.contains(&k.as_str()) {
            fields.push((k.clone(), v));
        }
    }
    match doc.get("mtls_endpoint_aliases") {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            for (k, v) in m {
                fields.push((format!("mtls_endpoint_aliases.{k}"), v));
            }
        }
        Some(other) => {
            return Err(Error::new(
                ErrorKind::Parse,
                format!("discovery document {url}: mtls_endpoint_aliases is not an object: {}", short(other)),
            ))
        }
    }

    let mut endpoints = Vec::with_capacity(fields.len().min(limits.max_hosts * 4));
    let mut hosts: BTreeSet<HostPort> = BTreeSet::new();
    for (field, v) in fields {
        let raw = match v {
            Value::Null => continue,
            Value::String(s) => s,
            other => {
                return Err(Error::new(
                    ErrorKind::Parse,
                    format!("discovery document {url}: {field} is not a string: {}", short(other)),
                ))
            }
        };
        let (_, host) = https_url(&field, raw, limits.allow_ip_literals)
            .map_err(|e| e.context(format!("discovery document {url}")))?;
        hosts.insert(host.clone());
        if hosts.len() > limits.max_hosts {
            return Err(Error::new(
                ErrorKind::TooManyHosts,
                format!(
                    "discovery document {url} names more than {} hosts (the cap, max_hosts); real documents \
                     name 1 to 4; refused",
                    limits.max_hosts
                ),
            ));
        }
        endpoints.push(Endpoint { field, url: raw.clone(), host });
    }
    if !endpoints.iter().any(|e| e.field == "jwks_uri") {
        return Err(Error::new(
            ErrorKind::Parse,
            format!("discovery document {url} has no jwks_uri (required: the clients fetch the signing keys there)"),
        ));
    }
    let mut warnings = Vec::new();
    for f in ["authorization_endpoint", "token_endpoint"] {
        if !endpoints.iter().any(|e| e.field == f) {
            warnings.push(format!("discovery document {url} has no {f}"));
        }
    }
    Ok(Discovery { issuer: got.to_string(), endpoints, warnings })
}

/// A JSON object from untrusted bytes: the size cap first, then a BOM, emptiness and markup are
/// told apart from malformed JSON. Shared with the range files.
pub(crate) fn parse_object(bytes: &[u8], max_bytes: usize) -> Result<Map<String, Value>> {
    if bytes.len() > max_bytes {
        return Err(Error::new(
            ErrorKind::TooLarge,
            format!("{} bytes, more than the {max_bytes} allowed; refused before parsing", bytes.len()),
        ));
    }
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let Some(start) = body.iter().position(|b| !b.is_ascii_whitespace()) else {
        return Err(Error::new(ErrorKind::WrongContent, "the document is empty"));
    };
    if body[start] == b'<' {
        let head = String::from_utf8_lossy(&body[start..body.len().min(start + 60)]).replace(['\r', '\n'], " ");
        return Err(Error::new(ErrorKind::WrongContent, format!("expected JSON, got markup starting with {head:?}")));
    }
    if body[start] != b'{' {
        return Err(Error::new(
            ErrorKind::WrongContent,
            format!("expected a JSON object, got a document starting with byte {:#04x}", body[start]),
        ));
    }
    serde_json::from_slice::<Map<String, Value>>(body).map_err(|e| {
        let what = if e.is_eof() { "the document ends early (truncated download?)" } else { "invalid JSON" };
        Error::new(ErrorKind::Parse, format!("{what}: {e} ({} bytes)", bytes.len()))
    })
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 60 {
        format!("{}...", s.chars().take(60).collect::<String>())
    } else {
        s
    }
}

/// Whether a fetcher may follow a redirect from `from` to `location` (the `Location` header,
/// absolute or relative), as its `hop`-th redirect (1-based). Refused ([`ErrorKind::Redirect`]):
/// a scheme other than `https` (a downgrade to `http`), user information, an IP literal unless
/// allowed, an invalid host, more than `max_redirects` hops. The target's host and port are
/// returned: the host fetching the document needs egress to it too.
pub fn check_redirect(
    from: &str,
    location: &str,
    hop: usize,
    max_redirects: usize,
    allow_ip_literals: bool,
) -> Result<(Url, HostPort)> {
    let redirect =
        |why: String| Error::new(ErrorKind::Redirect, format!("redirect from {from} to {location:?}: {why}"));
    if hop > max_redirects {
        return Err(redirect(format!("more than {max_redirects} redirects; refused")));
    }
    let base = Url::parse(from).map_err(|e| redirect(format!("the original URL is invalid ({e})")))?;
    let target = base.join(location.trim()).map_err(|e| redirect(format!("not a URL ({e})")))?;
    if target.scheme() != "https" {
        return Err(redirect(format!(
            "changes the scheme from {} to {}; refused (discovery is fetched over HTTPS only)",
            base.scheme(),
            target.scheme()
        )));
    }
    https_url("redirect", target.as_str(), allow_ip_literals).map_err(|e| redirect(e.message().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn issuer(s: &str) -> Issuer {
        Issuer::parse(s).unwrap()
    }

    fn google() -> Value {
        json!({
            "issuer": "https://accounts.google.com",
            "authorization_endpoint": "https://accounts.google.com/o/oauth2/v2/auth",
            "device_authorization_endpoint": "https://oauth2.googleapis.com/device/code",
            "token_endpoint": "https://oauth2.googleapis.com/token",
            "userinfo_endpoint": "https://openidconnect.googleapis.com/v1/userinfo",
            "revocation_endpoint": "https://oauth2.googleapis.com/revoke",
            "jwks_uri": "https://www.googleapis.com/oauth2/v3/certs",
            "response_types_supported": ["code", "id_token"],
            "service_documentation": "http://docs.example/not-collected",
        })
    }

    #[test]
    fn google_shape() {
        let d = validate_discovery(
            google().to_string().as_bytes(),
            &issuer("https://accounts.google.com"),
            &DiscoveryLimits::default(),
        )
        .unwrap();
        let names: Vec<String> = d.names().into_iter().collect();
        assert_eq!(
            names,
            ["accounts.google.com", "oauth2.googleapis.com", "openidconnect.googleapis.com", "www.googleapis.com"]
        );
        assert_eq!(d.ports().into_iter().collect::<Vec<_>>(), [443]);
        assert_eq!(d.endpoints[0].field, "issuer");
        assert!(d.warnings.is_empty());
    }

    #[test]
    fn issuer_must_match_exactly() {
        let body = google().to_string();
        let e =
            validate_discovery(body.as_bytes(), &issuer("https://accounts.google.com/"), &DiscoveryLimits::default())
                .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::IssuerMismatch);
        assert!(e.message().contains("trailing '/'"), "{e}");
        let e = validate_discovery(body.as_bytes(), &issuer("https://evil.example.com"), &DiscoveryLimits::default())
            .unwrap_err();
        assert!(
            e.message().contains("\"https://accounts.google.com\", not the configured \"https://evil.example.com\""),
            "{e}"
        );
        assert!(!e.message().contains("trailing"), "{e}");
        // Auth0 writes its issuer with the slash; configured so, it matches.
        let auth0 = json!({"issuer": "https://t.auth0.com/", "jwks_uri": "https://t.auth0.com/.well-known/jwks.json",
            "authorization_endpoint": "https://t.auth0.com/authorize", "token_endpoint": "https://t.auth0.com/oauth/token"});
        let d = validate_discovery(
            auth0.to_string().as_bytes(),
            &issuer("https://t.auth0.com/"),
            &DiscoveryLimits::default(),
        )
        .unwrap();
        assert_eq!(d.hosts().len(), 1);
    }

    #[test]
    fn every_endpoint_must_be_https() {
        let mut doc = google();
        doc["pushed_authorization_request_endpoint"] = json!("http://accounts.google.com/par");
        let e = validate_discovery(
            doc.to_string().as_bytes(),
            &issuer("https://accounts.google.com"),
            &DiscoveryLimits::default(),
        )
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Insecure);
        assert!(
            e.message().contains("pushed_authorization_request_endpoint \"http://accounts.google.com/par\""),
            "{e}"
        );
        let mut doc = google();
        doc["mtls_endpoint_aliases"] = json!({"token_endpoint": "http://mtls.example.com/token"});
        let e = validate_discovery(
            doc.to_string().as_bytes(),
            &issuer("https://accounts.google.com"),
            &DiscoveryLimits::default(),
        )
        .unwrap_err();
        assert!(e.message().contains("mtls_endpoint_aliases.token_endpoint"), "{e}");
        let mut doc = google();
        doc["custom_thing_endpoint"] = json!("ftp://x.example.com/");
        let e = validate_discovery(
            doc.to_string().as_bytes(),
            &issuer("https://accounts.google.com"),
            &DiscoveryLimits::default(),
        )
        .unwrap_err();
        assert!(e.message().contains("custom_thing_endpoint"), "{e}");
        let mut doc = google();
        doc["mtls_endpoint_aliases"] = json!({"token_endpoint": "https://mtls.example.com:8443/token"});
        doc["end_session_endpoint"] = Value::Null;
        let d = validate_discovery(
            doc.to_string().as_bytes(),
            &issuer("https://accounts.google.com"),
            &DiscoveryLimits::default(),
        )
        .unwrap();
        assert!(d.hosts().iter().any(|h| h.to_string() == "mtls.example.com:8443"));
        assert_eq!(d.ports().into_iter().collect::<Vec<_>>(), [443, 8443]);
    }

    #[test]
    fn hosts_are_names() {
        for (value, want) in [
            ("https://192.0.2.7/keys", "IP address"),
            ("https://admin:pw@www.googleapis.com/keys", "user information"),
            ("https://intranet/keys", "single label"),
            (r"https://bad_host.example.com/keys", "bad_host"),
        ] {
            let mut doc = google();
            doc["jwks_uri"] = json!(value);
            let e = validate_discovery(
                doc.to_string().as_bytes(),
                &issuer("https://accounts.google.com"),
                &DiscoveryLimits::default(),
            )
            .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidHost, "{value}: {e}");
            assert!(e.message().contains(want) && e.message().contains("jwks_uri"), "{value}: {e}");
        }
        let mut doc = google();
        doc["jwks_uri"] = json!("https://192.0.2.7/keys");
        let lab = DiscoveryLimits { allow_ip_literals: true, ..DiscoveryLimits::default() };
        let d = validate_discovery(doc.to_string().as_bytes(), &issuer("https://accounts.google.com"), &lab).unwrap();
        assert!(!d.names().contains("192.0.2.7"));
        assert_eq!(d.hosts().len(), 4);
    }

    #[test]
    fn shape_and_required_fields() {
        let iss = issuer("https://accounts.google.com");
        let l = DiscoveryLimits::default();
        assert_eq!(validate_discovery(b"", &iss, &l).unwrap_err().kind(), ErrorKind::WrongContent);
        assert_eq!(validate_discovery(b"<html>", &iss, &l).unwrap_err().kind(), ErrorKind::WrongContent);
        assert_eq!(validate_discovery(b"[]", &iss, &l).unwrap_err().kind(), ErrorKind::WrongContent);
        assert_eq!(validate_discovery(b"{\"issuer\": ", &iss, &l).unwrap_err().kind(), ErrorKind::Parse);
        assert_eq!(validate_discovery(b"{}", &iss, &l).unwrap_err().kind(), ErrorKind::Parse);
        let e = validate_discovery(br#"{"issuer": "https://accounts.google.com"}"#, &iss, &l).unwrap_err();
        assert!(e.message().contains("no jwks_uri"), "{e}");
        let e =
            validate_discovery(br#"{"issuer": "https://accounts.google.com", "jwks_uri": 7}"#, &iss, &l).unwrap_err();
        assert!(e.message().contains("jwks_uri is not a string: 7"), "{e}");
        let d = validate_discovery(
            br#"{"issuer": "https://accounts.google.com", "jwks_uri": "https://www.googleapis.com/oauth2/v3/certs"}"#,
            &iss,
            &l,
        )
        .unwrap();
        assert_eq!(d.warnings.len(), 2);
    }

    #[test]
    fn redirects() {
        let from = "https://idp.example.com/.well-known/openid-configuration";
        let (u, hp) = check_redirect(from, "/realms/x/.well-known/openid-configuration", 1, 5, false).unwrap();
        assert_eq!(u.as_str(), "https://idp.example.com/realms/x/.well-known/openid-configuration");
        assert_eq!(hp.to_string(), "idp.example.com:443");
        let (_, hp) = check_redirect(from, "https://cdn.example.net/oidc", 2, 5, false).unwrap();
        assert_eq!(hp.to_string(), "cdn.example.net:443");
        let e = check_redirect(from, "http://idp.example.com/x", 1, 5, false).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Redirect);
        assert!(e.message().contains("changes the scheme from https to http"), "{e}");
        assert!(check_redirect(from, "https://u:p@idp.example.com/x", 1, 5, false)
            .unwrap_err()
            .message()
            .contains("user information"));
        assert!(check_redirect(from, "https://idp.example.com/x", 6, 5, false)
            .unwrap_err()
            .message()
            .contains("more than 5"));
        assert!(check_redirect(from, "https://10.0.0.1/x", 1, 5, false).is_err());
        assert!(check_redirect(from, "file:///etc/passwd", 1, 5, false).is_err());
    }
}

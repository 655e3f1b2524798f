//! Providers as data: the role variable `host_firewall_oidc_providers`, a list of
//! `{issuer, addresses, extra_names, name}`, validated into [`Provider`]s.
//!
//! ```yaml
//! host_firewall_oidc_providers:
//!   - issuer: https://login.microsoftonline.com/TENANT/v2.0
//!     addresses: entra                 # or {kind: entra, cloud: azure-government}
//!     extra_names: [graph.microsoft.com]
//!   - issuer: https://accounts.google.com
//!     addresses: {kind: published, format: google}        # goog.json minus cloud.json
//!   - issuer: https://example.okta.com
//!     addresses: {kind: published, format: okta, cell: us_cell_1, file: /srv/okta/ip_ranges.json}
//!   - issuer: https://kc.example.com/realms/vor           # addresses: dns (the default)
//! ```
//!
//! The Ansible side hands the list over as JSON; [`parse_providers`] reads it from a
//! [`serde_json::Value`] so that every refusal names the provider, the key and the value.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use url::Url;
use vorfw_entra::Cloud;

use crate::error::{Error, ErrorKind, Result};
use crate::names::{https_url, name_and_port, HostPort};

/// Google's list of its own ranges (services and Cloud customers).
pub const GOOGLE_GOOG_URL: &str = "https://www.gstatic.com/ipranges/goog.json";
/// Google Cloud's customer ranges; Google's own services are goog.json minus cloud.json.
pub const GOOGLE_CLOUD_URL: &str = "https://www.gstatic.com/ipranges/cloud.json";
/// Okta's ranges, by cell.
pub const OKTA_URL: &str = "https://s3.amazonaws.com/okta-ip-ranges/ip_ranges.json";
/// The longest provider id: it goes into set and file names (an ipset name holds 31 characters).
pub const MAX_ID_LEN: usize = 16;

/// An issuer exactly as configured (the string the applications use, compared byte for byte
/// with the discovery document's `issuer`), and parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issuer {
    raw: String,
    url: Url,
    host: HostPort,
}

impl Issuer {
    /// An `https` URL with a host that is a DNS name, no user information, no query and no
    /// fragment (OpenID Connect Discovery 1.0, section 2; RFC 8414, section 2).
    pub fn parse(raw: &str) -> Result<Issuer> {
        if raw != raw.trim() || raw.is_empty() {
            return Err(Error::new(ErrorKind::Config, format!("issuer {raw:?} is empty or has surrounding spaces")));
        }
        let (url, host) = https_url("issuer", raw, false)?;
        if url.query().is_some() || url.fragment().is_some() || raw.contains('?') || raw.contains('#') {
            return Err(Error::new(ErrorKind::Config, format!("issuer {raw:?} has a query or fragment; it must not")));
        }
        Ok(Issuer { raw: raw.to_string(), url, host })
    }

    /// The issuer exactly as configured.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The issuer's host and port.
    pub fn host(&self) -> &HostPort {
        &self.host
    }

    /// `<issuer>/.well-known/openid-configuration`: OpenID Connect Discovery 1.0, section 4
    /// (a terminating `/` of the issuer is removed before the suffix is appended).
    pub fn discovery_url(&self) -> String {
        discovery_url(&self.raw)
    }
}

impl fmt::Display for Issuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl Serialize for Issuer {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.raw)
    }
}

impl<'de> Deserialize<'de> for Issuer {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Issuer::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// The discovery URL of an issuer string: one terminating `/` removed, then
/// `/.well-known/openid-configuration` appended (`https://accounts.google.com` and
/// `https://tenant.auth0.com/` alike).
pub fn discovery_url(issuer: &str) -> String {
    format!("{}/.well-known/openid-configuration", issuer.strip_suffix('/').unwrap_or(issuer))
}

/// Where a range file comes from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RangeSource {
    /// The provider's URL or a mirror's (`https` only).
    Url(String),
    /// A local copy (absolute path).
    File(PathBuf),
}

impl fmt::Display for RangeSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RangeSource::Url(u) => f.write_str(u),
            RangeSource::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// A provider's published range file, by format.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "format", rename_all = "snake_case")]
pub enum Published {
    /// Google: `goog` minus `cloud` (both in the `goog.json` format).
    Google { goog: RangeSource, cloud: RangeSource },
    /// Okta: the ranges of `cell` in `ip_ranges.json`.
    Okta { cell: String, source: RangeSource },
}

/// How a provider's addresses are known.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Addresses {
    /// Microsoft's service-tag feed (`vorfw-entra`), for this cloud.
    Entra { cloud: Cloud },
    /// A range file the provider publishes.
    Published(Published),
    /// The discovery document's host names, resolved on each host (the default).
    #[default]
    Dns,
}

impl Addresses {
    pub fn kind(&self) -> &'static str {
        match self {
            Addresses::Entra { .. } => "entra",
            Addresses::Published(_) => "published",
            Addresses::Dns => "dns",
        }
    }
}

/// One validated provider.
///
/// Every kind has its discovery names resolved (for `dns` they are all its addresses; for
/// `entra` and `published` they are resolved in addition to the ranges, and
/// [`crate::outside_ranges`] keeps only the addresses the ranges miss, such as Entra's
/// `graph.microsoft.com`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provider {
    /// Short, unique, `[a-z0-9-]`, at most [`MAX_ID_LEN`]: for set, state and metric names.
    pub id: String,
    pub issuer: Issuer,
    pub addresses: Addresses,
    /// Names allowed beside the discovery document's, with their ports.
    pub extra_names: Vec<HostPort>,
}

impl Provider {
    pub fn discovery_url(&self) -> String {
        self.issuer.discovery_url()
    }

    /// Every host and port the provider's clients connect to: the discovery document's and the
    /// extra names.
    pub fn hosts(&self, discovery: &crate::Discovery) -> std::collections::BTreeSet<HostPort> {
        let mut h = discovery.hosts();
        h.extend(self.extra_names.iter().cloned());
        h
    }

    /// The DNS names to resolve on each host (the keys of [`crate::update`]'s answers): the
    /// discovery document's names and the extra names.
    pub fn names(&self, discovery: &crate::Discovery) -> std::collections::BTreeSet<String> {
        self.hosts(discovery).iter().filter_map(|h| h.host.name().map(str::to_string)).collect()
    }

    /// The ports egress allows to the provider's addresses.
    pub fn ports(&self, discovery: &crate::Discovery) -> std::collections::BTreeSet<u16> {
        self.hosts(discovery).iter().map(|h| h.port).collect()
    }
}

/// Parse and validate `host_firewall_oidc_providers` (a JSON array). Refused, naming the
/// provider and the key: an issuer that is not an `https` URL with a DNS host (no query,
/// fragment or user information), an unknown key, an unknown `addresses` kind or format, `okta`
/// without `cell`, `url` together with `file`, a source that is neither `https` nor an
/// absolute path, a bad extra name, a bad or duplicate `name`, a duplicate issuer.
pub fn parse_providers(v: &Value) -> Result<Vec<Provider>> {
    let list = v.as_array().ok_or_else(|| {
        Error::new(ErrorKind::Config, format!("host_firewall_oidc_providers must be a list, got {}", type_name(v)))
    })?;
    let mut out: Vec<Provider> = Vec::with_capacity(list.len());
    for (i, item) in list.iter().enumerate() {
        let p = parse_provider(item).map_err(|e| e.context(format!("host_firewall_oidc_providers[{i}]")))?;
        if let Some(o) = out.iter().find(|o| o.issuer.as_str() == p.issuer.as_str()) {
            return Err(Error::new(
                ErrorKind::Config,
                format!("host_firewall_oidc_providers[{i}]: issuer {} is listed twice (also as {})", p.issuer, o.id),
            ));
        }
        if let Some(o) = out.iter().find(|o| o.id == p.id) {
            return Err(Error::new(
                ErrorKind::Config,
                format!(
                    "host_firewall_oidc_providers[{i}]: id {:?} of {} is also the id of {}; set `name` on one of them",
                    p.id, p.issuer, o.issuer
                ),
            ));
        }
        out.push(p);
    }
    Ok(out)
}

/// One provider (an object of the list).
pub fn parse_provider(v: &Value) -> Result<Provider> {
    let obj = object(v, "a provider")?;
    known_keys(obj, &["issuer", "addresses", "extra_names", "name"], "a provider")?;
    let issuer_raw = obj
        .get("issuer")
        .ok_or_else(|| Error::new(ErrorKind::Config, "issuer is missing"))?
        .as_str()
        .ok_or_else(|| Error::new(ErrorKind::Config, "issuer must be a string"))?;
    let issuer = Issuer::parse(issuer_raw).map_err(config)?;
    let ctx = |e: Error| e.context(format!("provider {issuer_raw}"));
    let addresses = match obj.get("addresses") {
        None | Some(Value::Null) => Addresses::Dns,
        Some(a) => parse_addresses(a).map_err(ctx)?,
    };
    let mut extra_names = Vec::new();
    match obj.get("extra_names") {
        None | Some(Value::Null) => {}
        Some(Value::Array(a)) => {
            for n in a {
                let s =
                    n.as_str().ok_or_else(|| ctx(Error::new(ErrorKind::Config, "extra_names holds a non-string")))?;
                let hp = name_and_port(s).map_err(|e| ctx(config(e).context("extra_names")))?;
                if !extra_names.contains(&hp) {
                    extra_names.push(hp);
                }
            }
        }
        Some(other) => {
            return Err(ctx(Error::new(
                ErrorKind::Config,
                format!("extra_names must be a list of names, got {}", type_name(other)),
            )))
        }
    }
    let id = match obj.get("name") {
        None | Some(Value::Null) => derive_id(issuer.host().host.name().unwrap_or("provider")),
        Some(Value::String(s)) => check_id(s).map_err(ctx)?,
        Some(other) => return Err(ctx(Error::new(ErrorKind::Config, format!("name must be a string, got {other}")))),
    };
    Ok(Provider { id, issuer, addresses, extra_names })
}

fn parse_addresses(v: &Value) -> Result<Addresses> {
    let kinds = "dns, entra or published";
    let (kind, obj) = match v {
        Value::String(s) => (s.as_str(), None),
        Value::Object(o) => {
            let k = o.get("kind").and_then(Value::as_str).ok_or_else(|| {
                Error::new(
                    ErrorKind::Config,
                    format!("addresses needs a kind ({kinds}), as in {{kind: published, ...}}"),
                )
            })?;
            (k, Some(o))
        }
        other => {
            return Err(Error::new(
                ErrorKind::Config,
                format!("addresses must be {kinds} or an object with a kind, got {}", type_name(other)),
            ))
        }
    };
    let empty = serde_json::Map::new();
    let o = obj.unwrap_or(&empty);
    match kind {
        "dns" => {
            known_keys(o, &["kind"], "addresses dns")?;
            Ok(Addresses::Dns)
        }
        "entra" => {
            known_keys(o, &["kind", "cloud"], "addresses entra")?;
            let cloud = match o.get("cloud") {
                None | Some(Value::Null) => Cloud::Public,
                Some(Value::String(c)) => c.parse::<Cloud>().map_err(|e| Error::new(ErrorKind::Config, e.message()))?,
                Some(other) => {
                    return Err(Error::new(ErrorKind::Config, format!("addresses.cloud must be a string, got {other}")))
                }
            };
            Ok(Addresses::Entra { cloud })
        }
        "published" => {
            if obj.is_none() {
                return Err(Error::new(
                    ErrorKind::Config,
                    "addresses published needs a format: {kind: published, format: google} or \
                     {kind: published, format: okta, cell: CELL}",
                ));
            }
            parse_published(o).map(Addresses::Published)
        }
        other => Err(Error::new(ErrorKind::Config, format!("unknown addresses kind {other:?} (expected {kinds})"))),
    }
}

fn parse_published(o: &serde_json::Map<String, Value>) -> Result<Published> {
    let format = o.get("format").and_then(Value::as_str).ok_or_else(|| {
        Error::new(
            ErrorKind::Config,
            "addresses published needs format: google or okta (the providers that publish ranges)",
        )
    })?;
    match format {
        "google" => {
            known_keys(o, &["kind", "format", "url", "file", "cloud_url", "cloud_file"], "addresses published google")?;
            let goog = source(o, "url", "file")?;
            let cloud = source(o, "cloud_url", "cloud_file")?;
            match (goog, cloud) {
                (None, None) => Ok(Published::Google {
                    goog: RangeSource::Url(GOOGLE_GOOG_URL.into()),
                    cloud: RangeSource::Url(GOOGLE_CLOUD_URL.into()),
                }),
                (Some(goog), Some(cloud)) => Ok(Published::Google { goog, cloud }),
                (Some(_), None) => Err(Error::new(
                    ErrorKind::Config,
                    "google's own ranges are goog.json minus cloud.json: with url or file, set cloud_url or \
                     cloud_file too",
                )),
                (None, Some(_)) => Err(Error::new(
                    ErrorKind::Config,
                    "cloud_url or cloud_file is set without url or file (goog.json); set both or neither",
                )),
            }
        }
        "okta" => {
            known_keys(o, &["kind", "format", "cell", "url", "file"], "addresses published okta")?;
            let cell = match o.get("cell") {
                Some(Value::String(c)) if !c.trim().is_empty() => c.trim().to_string(),
                _ => {
                    return Err(Error::new(
                        ErrorKind::Config,
                        "okta requires cell: the org's cell as named in ip_ranges.json (such as us_cell_1); \
                         Okta support or the org's admin console tells which",
                    ))
                }
            };
            let source = source(o, "url", "file")?.unwrap_or_else(|| RangeSource::Url(OKTA_URL.into()));
            Ok(Published::Okta { cell, source })
        }
        other => Err(Error::new(
            ErrorKind::Config,
            format!("unknown published format {other:?} (expected google or okta; other providers use addresses: dns)"),
        )),
    }
}

fn source(o: &serde_json::Map<String, Value>, url_key: &str, file_key: &str) -> Result<Option<RangeSource>> {
    let get = |k: &str| -> Result<Option<&str>> {
        match o.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.trim())),
            Some(other) => Err(Error::new(ErrorKind::Config, format!("{k} must be a non-empty string, got {other}"))),
        }
    };
    match (get(url_key)?, get(file_key)?) {
        (Some(_), Some(_)) => {
            Err(Error::new(ErrorKind::Config, format!("{url_key} and {file_key} are exclusive; set one")))
        }
        (Some(u), None) => {
            https_url(url_key, u, true).map_err(config)?;
            Ok(Some(RangeSource::Url(u.to_string())))
        }
        (None, Some(f)) => {
            if !f.starts_with('/') {
                return Err(Error::new(ErrorKind::Config, format!("{file_key} {f:?} must be an absolute path")));
            }
            Ok(Some(RangeSource::File(PathBuf::from(f))))
        }
        (None, None) => Ok(None),
    }
}

/// A provider id from its issuer's host: the first label, or the second after a generic first
/// one (`login.microsoftonline.com` → `microsoftonline`, `accounts.google.com` → `google`,
/// `dev-1234.okta.com` → `dev-1234`), cut to [`MAX_ID_LEN`].
pub fn derive_id(host: &str) -> String {
    const GENERIC: &[&str] = &["www", "login", "accounts", "account", "auth", "sso", "id", "idp", "oidc", "signin"];
    let labels: Vec<&str> = host.split('.').collect();
    let pick = match labels.as_slice() {
        [first, second, _, ..] if GENERIC.contains(first) => second,
        [first, ..] => first,
        [] => "provider",
    };
    let mut id: String = pick.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').take(MAX_ID_LEN).collect();
    id.make_ascii_lowercase();
    let id = id.trim_matches('-').to_string();
    if id.is_empty() || !id.starts_with(|c: char| c.is_ascii_lowercase()) {
        let p: String = format!("p{id}").chars().take(MAX_ID_LEN).collect();
        p.trim_end_matches('-').to_string()
    } else {
        id
    }
}

fn check_id(s: &str) -> Result<String> {
    let ok = !s.is_empty()
        && s.len() <= MAX_ID_LEN
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && !s.ends_with('-')
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(s.to_string())
    } else {
        Err(Error::new(
            ErrorKind::Config,
            format!(
                "name {s:?} must be 1 to {MAX_ID_LEN} characters of a-z, 0-9 and '-', starting with a letter \
                 (it goes into set and file names)"
            ),
        ))
    }
}

fn config(e: Error) -> Error {
    Error::new(ErrorKind::Config, e.message())
}

fn object<'a>(v: &'a Value, what: &str) -> Result<&'a serde_json::Map<String, Value>> {
    v.as_object()
        .ok_or_else(|| Error::new(ErrorKind::Config, format!("{what} must be an object, got {}", type_name(v))))
}

fn known_keys(o: &serde_json::Map<String, Value>, known: &[&str], what: &str) -> Result<()> {
    let unknown: BTreeMap<&str, ()> =
        o.keys().filter(|k| !known.contains(&k.as_str())).map(|k| (k.as_str(), ())).collect();
    if unknown.is_empty() {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::Config,
        format!(
            "unknown key(s) {} in {what} (known: {})",
            unknown.keys().map(|k| format!("{k:?}")).collect::<Vec<_>>().join(", "),
            known.join(", ")
        ),
    ))
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(v: Value) -> Error {
        parse_providers(&v).unwrap_err()
    }

    #[test]
    fn the_four_kinds() {
        let ps = parse_providers(&json!([
            {"issuer": "https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000/v2.0",
             "addresses": "entra", "extra_names": ["graph.microsoft.com"]},
            {"issuer": "https://accounts.google.com", "addresses": {"kind": "published", "format": "google"}},
            {"issuer": "https://example.okta.com",
             "addresses": {"kind": "published", "format": "okta", "cell": "us_cell_1", "file": "/srv/okta.json"}},
            {"issuer": "https://kc.example.com/realms/vor"},
            {"issuer": "https://tenant.auth0.com/", "addresses": {"kind": "entra", "cloud": "gov"}, "name": "auth0"},
        ]))
        .unwrap();
        let ids: Vec<&str> = ps.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["microsoftonline", "google", "example", "kc", "auth0"]);
        assert_eq!(ps[0].addresses, Addresses::Entra { cloud: Cloud::Public });
        assert_eq!(ps[0].extra_names[0].to_string(), "graph.microsoft.com:443");
        assert_eq!(
            ps[1].addresses,
            Addresses::Published(Published::Google {
                goog: RangeSource::Url(GOOGLE_GOOG_URL.into()),
                cloud: RangeSource::Url(GOOGLE_CLOUD_URL.into())
            })
        );
        assert_eq!(
            ps[2].addresses,
            Addresses::Published(Published::Okta {
                cell: "us_cell_1".into(),
                source: RangeSource::File("/srv/okta.json".into())
            })
        );
        assert_eq!(ps[3].addresses, Addresses::Dns);
        assert_eq!(ps[4].addresses, Addresses::Entra { cloud: Cloud::AzureGovernment });
        assert_eq!(ps[1].discovery_url(), "https://accounts.google.com/.well-known/openid-configuration");
        assert_eq!(ps[4].discovery_url(), "https://tenant.auth0.com/.well-known/openid-configuration");
        assert_eq!(ps[3].discovery_url(), "https://kc.example.com/realms/vor/.well-known/openid-configuration");
        // The configured string is kept exactly: no trailing slash is added.
        assert_eq!(ps[1].issuer.as_str(), "https://accounts.google.com");
        let j = serde_json::to_value(&ps[2]).unwrap();
        assert_eq!(j["addresses"]["kind"], "published");
        assert_eq!(j["addresses"]["format"], "okta");
        let back: Provider = serde_json::from_value(j).unwrap();
        assert_eq!(back, ps[2]);
    }

    #[test]
    fn refusals_name_the_value() {
        let cases = [
            (json!([{"issuer": "http://idp.example.com"}]), "not an https URL"),
            (json!([{"issuer": "https://idp.example.com?x=1"}]), "query or fragment"),
            (json!([{"issuer": "https://192.0.2.10"}]), "IP address"),
            (json!([{"issuer": "https://u@idp.example.com"}]), "user information"),
            (json!([{"issuer": "idp.example.com"}]), "not a URL"),
            (json!([{}]), "issuer is missing"),
            (json!([{"issuer": "https://idp.example.com", "adresses": "dns"}]), "unknown key(s) \"adresses\""),
            (
                json!([{"issuer": "https://idp.example.com", "addresses": "ranges"}]),
                "unknown addresses kind \"ranges\"",
            ),
            (
                json!([{"issuer": "https://x.okta.com", "addresses": {"kind": "published", "format": "okta"}}]),
                "okta requires cell",
            ),
            (
                json!([{"issuer": "https://x.okta.com", "addresses": {"kind": "published", "format": "ping"}}]),
                "unknown published format \"ping\"",
            ),
            (json!([{"issuer": "https://x.okta.com", "addresses": "published"}]), "needs a format"),
            (
                json!([{"issuer": "https://a.google.com", "addresses": {"kind": "published", "format": "google", "file": "/g.json"}}]),
                "cloud_url or cloud_file",
            ),
            (
                json!([{"issuer": "https://x.okta.com", "addresses": {"kind": "published", "format": "okta", "cell": "c", "file": "rel.json"}}]),
                "absolute path",
            ),
            (
                json!([{"issuer": "https://x.okta.com", "addresses": {"kind": "published", "format": "okta", "cell": "c", "url": "http://m.example/x.json"}}]),
                "not an https URL",
            ),
            (
                json!([{"issuer": "https://x.okta.com", "addresses": {"kind": "published", "format": "okta", "cell": "c", "url": "https://m.example/x", "file": "/x"}}]),
                "exclusive",
            ),
            (
                json!([{"issuer": "https://x.okta.com", "addresses": {"kind": "entra", "cloud": "mars"}}]),
                "unknown cloud \"mars\"",
            ),
            (json!([{"issuer": "https://x.okta.com", "extra_names": ["bad_name.example"]}]), "bad_name.example"),
            (json!([{"issuer": "https://x.okta.com", "name": "Bad Name"}]), "name \"Bad Name\""),
            (json!([{"issuer": "https://a.example.com"}, {"issuer": "https://a.example.com"}]), "listed twice"),
            (json!([{"issuer": "https://a.example.com"}, {"issuer": "https://a.example.org"}]), "set `name`"),
            (json!({"issuer": "https://a.example.com"}), "must be a list"),
        ];
        for (v, want) in cases {
            let e = err(v.clone());
            assert_eq!(e.kind(), ErrorKind::Config, "{v}: {e}");
            assert!(e.message().contains(want), "{v}: {e} (want {want:?})");
        }
        assert!(err(json!([{"issuer": "https://x.okta.com", "addresses": "bogus"}]))
            .message()
            .contains("provider https://x.okta.com"));
    }

    #[test]
    fn ids() {
        assert_eq!(derive_id("login.microsoftonline.com"), "microsoftonline");
        assert_eq!(derive_id("accounts.google.com"), "google");
        assert_eq!(derive_id("dev-1234.okta.com"), "dev-1234");
        assert_eq!(derive_id("auth.example.com"), "example");
        assert_eq!(derive_id("a-very-long-keycloak-hostname.example.com"), "a-very-long-keyc");
        assert_eq!(derive_id("123.example.com"), "p123");
        assert_eq!(derive_id("12345678901234-x.example.com"), "p12345678901234");
        for h in ["login.microsoftonline.com", "12345678901234-x.example.com", "---.example.com", "x.example.com"] {
            assert!(check_id(&derive_id(h)).is_ok(), "{h}: {}", derive_id(h));
        }
        assert!(check_id("a".repeat(17).as_str()).is_err());
        assert!(check_id("kc-1").is_ok());
    }
}

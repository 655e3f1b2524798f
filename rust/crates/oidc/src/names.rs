//! Host names and URLs as egress needs them: a DNS name to resolve (or, where allowed, an IP
//! literal) and a port. Shared by the provider configuration and the discovery document.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use url::Url;

use crate::error::{Error, ErrorKind, Result};

/// A host an OIDC client connects to: a DNS name (lower case, ASCII, no trailing dot) that the
/// host's resolvers turn into addresses, or an IP literal.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum Host {
    Name(String),
    Ip(IpAddr),
}

impl Host {
    /// The DNS name, when this is one.
    pub fn name(&self) -> Option<&str> {
        match self {
            Host::Name(n) => Some(n),
            Host::Ip(_) => None,
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(n) => f.write_str(n),
            Host::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

impl From<Host> for String {
    fn from(h: Host) -> String {
        h.to_string()
    }
}

impl TryFrom<String> for Host {
    type Error = Error;
    fn try_from(s: String) -> Result<Host> {
        s.parse()
    }
}

impl FromStr for Host {
    type Err = Error;
    /// An IP address (IPv6 without brackets) or a DNS name ([`dns_name`]).
    fn from_str(s: &str) -> Result<Host> {
        match s.parse::<IpAddr>() {
            Ok(ip) => Ok(Host::Ip(ip)),
            Err(_) => dns_name(s).map(Host::Name),
        }
    }
}

/// A host and the TCP port HTTPS goes to (443 unless the URL says otherwise).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct HostPort {
    pub host: Host,
    pub port: u16,
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]:{}", self.port),
            h => write!(f, "{h}:{}", self.port),
        }
    }
}

/// The HTTPS port.
pub const HTTPS_PORT: u16 = 443;

/// Validate a DNS host name and return it in canonical form: IDNA (A-labels), lower case, no
/// trailing dot. Refused: IP addresses, names longer than 253 characters, labels empty or longer
/// than 63, characters other than letters, digits and inner hyphens, single-label names (their
/// meaning depends on each host's search domains), and an all-numeric last label.
pub fn dns_name(raw: &str) -> Result<String> {
    let bad = |why: &str| Error::new(ErrorKind::InvalidHost, format!("{raw:?} is not a valid DNS name: {why}"));
    let t = raw.trim();
    if t.is_empty() {
        return Err(bad("empty"));
    }
    if t.parse::<IpAddr>().is_ok() || t.starts_with('[') {
        return Err(Error::new(ErrorKind::InvalidHost, format!("{raw:?} is an IP address, not a DNS name")));
    }
    let t = t.strip_suffix('.').unwrap_or(t);
    // IDNA and lower-casing as browsers and HTTP clients do (url's host parser); it also tells
    // numeric forms of IPv4 addresses (`0x7f.1`) apart from names.
    let ascii = match url::Host::parse(t) {
        Ok(url::Host::Domain(d)) => d,
        Ok(_) => return Err(Error::new(ErrorKind::InvalidHost, format!("{raw:?} is an IP address, not a DNS name"))),
        Err(e) => return Err(bad(&e.to_string())),
    };
    if ascii.len() > 253 {
        return Err(bad(&format!("{} characters, more than 253", ascii.len())));
    }
    let labels: Vec<&str> = ascii.split('.').collect();
    for l in &labels {
        if l.is_empty() {
            return Err(bad("empty label"));
        }
        if l.len() > 63 {
            return Err(bad(&format!("label {l:?} longer than 63 characters")));
        }
        if !l.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
            return Err(bad(&format!("label {l:?} has characters other than letters, digits and '-'")));
        }
        if l.starts_with('-') || l.ends_with('-') {
            return Err(bad(&format!("label {l:?} starts or ends with '-'")));
        }
    }
    if labels.len() < 2 {
        return Err(bad("a single label (its meaning depends on each host's search domains; use the full name)"));
    }
    if labels.last().is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit())) {
        return Err(bad("the last label is numeric"));
    }
    Ok(ascii)
}

/// Parse `raw` (the value of `field`) as an `https` URL and return it with its host and port.
///
/// Refused with a message naming the field and the value: not a URL, another scheme than
/// `https` ([`ErrorKind::Insecure`]), user information (`user:pass@`), an IP literal unless
/// `allow_ip`, a host that is not a valid DNS name ([`ErrorKind::InvalidHost`]).
pub fn https_url(field: &str, raw: &str, allow_ip: bool) -> Result<(Url, HostPort)> {
    let url = Url::parse(raw.trim())
        .map_err(|e| Error::new(ErrorKind::Parse, format!("{field} {raw:?} is not a URL ({e})")))?;
    if url.scheme() != "https" {
        return Err(Error::new(
            ErrorKind::Insecure,
            format!("{field} {raw:?} is not an https URL (scheme {:?}); only HTTPS is allowed", url.scheme()),
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::new(ErrorKind::InvalidHost, format!("{field} {raw:?} carries user information (user@)")));
    }
    let host = match url.host() {
        Some(url::Host::Domain(d)) => Host::Name(dns_name(d).map_err(|e| e.context(field))?),
        Some(url::Host::Ipv4(ip)) if allow_ip => Host::Ip(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) if allow_ip => Host::Ip(IpAddr::V6(ip)),
        Some(_) => {
            return Err(Error::new(
                ErrorKind::InvalidHost,
                format!("{field} {raw:?} names an IP address; a DNS name is required (IP literals are not allowed)"),
            ))
        }
        None => return Err(Error::new(ErrorKind::InvalidHost, format!("{field} {raw:?} has no host"))),
    };
    let port = url.port_or_known_default().unwrap_or(HTTPS_PORT);
    Ok((url, HostPort { host, port }))
}

/// `name` or `name:port` (a configured extra name). The port defaults to 443.
pub fn name_and_port(raw: &str) -> Result<HostPort> {
    let t = raw.trim();
    let (name, port) = match t.rsplit_once(':') {
        Some((n, p)) if !n.contains(':') => {
            let port: u16 =
                p.parse().ok().filter(|p| *p != 0).ok_or_else(|| {
                    Error::new(ErrorKind::InvalidHost, format!("{raw:?}: {p:?} is not a port (1-65535)"))
                })?;
            (n, port)
        }
        _ => (t, HTTPS_PORT),
    };
    Ok(HostPort { host: Host::Name(dns_name(name)?), port })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_names() {
        assert_eq!(dns_name("Login.MicrosoftOnline.com.").unwrap(), "login.microsoftonline.com");
        assert_eq!(dns_name("bücher.example").unwrap(), "xn--bcher-kva.example");
        for bad in [
            "",
            "localhost",
            "10.0.0.1",
            "::1",
            "[::1]",
            "a..b",
            "-a.example",
            "a-.example",
            "a_b.example",
            "1.2.3.4.5",
            "example.123",
            "0x7f.1",
        ] {
            let e = dns_name(bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidHost, "{bad}: {e}");
        }
        assert!(dns_name(&format!("{}.example", "a".repeat(64))).unwrap_err().message().contains("longer than 63"));
        let long = vec!["a".repeat(60); 5].join(".");
        assert!(dns_name(&long).unwrap_err().message().contains("more than 253"));
    }

    #[test]
    fn https_urls() {
        let (_, hp) = https_url("token_endpoint", "https://Oauth2.GoogleAPIs.com/token", false).unwrap();
        assert_eq!(hp.to_string(), "oauth2.googleapis.com:443");
        let (_, hp) = https_url("jwks_uri", "https://kc.example.com:8443/certs", false).unwrap();
        assert_eq!(hp.port, 8443);
        let e = https_url("token_endpoint", "http://idp.example.com/token", false).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Insecure);
        assert!(e.message().contains("token_endpoint") && e.message().contains("http://idp.example.com"), "{e}");
        let e = https_url("jwks_uri", "https://u:p@idp.example.com/", false).unwrap_err();
        assert!(e.message().contains("user information"), "{e}");
        let e = https_url("jwks_uri", "https://192.0.2.1/keys", false).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidHost);
        let (_, hp) = https_url("jwks_uri", "https://[2001:db8::1]:8443/keys", true).unwrap();
        assert_eq!(hp.to_string(), "[2001:db8::1]:8443");
        assert_eq!(https_url("x", "not a url", false).unwrap_err().kind(), ErrorKind::Parse);
    }

    #[test]
    fn extra_names() {
        assert_eq!(name_and_port("graph.microsoft.com").unwrap().to_string(), "graph.microsoft.com:443");
        assert_eq!(name_and_port("kc.example.com:8443").unwrap().port, 8443);
        assert!(name_and_port("kc.example.com:0").is_err());
        assert!(name_and_port("kc.example.com:x").is_err());
        assert!(name_and_port("2001:db8::1").is_err());
        let h: Host = "192.0.2.1".parse().unwrap();
        assert_eq!(h, Host::Ip("192.0.2.1".parse().unwrap()));
        assert_eq!(serde_json::to_string(&h).unwrap(), "\"192.0.2.1\"");
    }
}

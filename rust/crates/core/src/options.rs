//! Per-host options, read from the host's variables as Ansible resolved them.
//!
//! Every `host_firewall_*` variable is validated here; a bad value is an error that names the
//! host, the variable and the value. List variables accept a real list, a string holding a
//! JSON list (INI `[group:vars]` values are strings), or a comma-separated string.

use crate::error::{Error, Result};
use crate::matrix::Matrix;
use crate::request::{BackendKind, EgressMode};
use ipnet::IpNet;
use serde_json::{Map, Value};
use std::collections::BTreeSet;
use std::net::IpAddr;

/// Every variable the collection reads. Anything else starting with `host_firewall_` is a typo.
pub const KNOWN_VARIABLES: &[&str] = &[
    "host_firewall_database",
    "host_firewall_vault_dynamic_secrets",
    "host_firewall_admin_sources",
    "host_firewall_power_user_sources",
    "host_firewall_user_sources",
    "host_firewall_management_sources",
    "host_firewall_address",
    "host_firewall_extra_rules",
    "host_firewall_disabled_rules",
    "host_firewall_backend",
    "host_firewall_remove_zone_services",
    "host_firewall_egress",
    "host_firewall_dns_servers",
    "host_firewall_ntp_servers",
    "host_firewall_egress_extra_rules",
    "host_firewall_entra",
    "host_firewall_oidc_providers",
    // Read by the roles, not by the planner:
    "host_firewall_controller_address",
    "host_firewall_plan_only",
    "host_firewall_confirm_timeout",
    "host_firewall_metrics_dir",
];

pub const DEFAULT_DATABASE: &str = "postgres";
pub const DEFAULT_USER_SOURCES: &[&str] = &["0.0.0.0/0", "::/0"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub database: String,
    pub vault_dynamic_secrets: BTreeSet<String>,
    pub admin_sources: Vec<IpNet>,
    pub power_user_sources: Vec<IpNet>,
    pub user_sources: Vec<IpNet>,
    /// `None` when unset: the role then keeps SSH open from the controller.
    pub management_sources: Option<Vec<IpNet>>,
    pub address: Option<Vec<IpAddr>>,
    pub extra_rules: Vec<ExtraRule>,
    pub disabled_rules: BTreeSet<String>,
    pub backend: BackendKind,
    /// firewalld services to remove from the zones we manage (e.g. `ssh`), for hosts that
    /// must admit nothing but the plan.
    pub remove_zone_services: Vec<String>,
    /// `host_firewall_egress`: `open` (default) or `restricted` (deny outbound but the plan's).
    pub egress: EgressMode,
    /// `None` when unset: the host's resolv.conf nameservers are used.
    pub dns_servers: Option<Vec<IpNet>>,
    pub ntp_servers: Vec<IpNet>,
    pub egress_extra_rules: Vec<EgressExtra>,
    /// `host_firewall_entra` (default true): OIDC clients keep the Entra ID allow-list.
    pub entra: bool,
    /// `host_firewall_oidc_providers` (validated by `vorfw-oidc`): providers beside (or, with
    /// `host_firewall_entra` false, instead of) Entra ID, each with a set of its own.
    pub oidc_providers: Option<Vec<OidcProvider>>,
}

/// What the planner keeps of one `host_firewall_oidc_providers` entry (and what a host's
/// request carries): the host fetches and resolves the rest itself (`vorfw-entra oidc refresh`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OidcProvider {
    /// The provider's id: its set is `oidc-<id>`, its state `<id>.json`.
    pub id: String,
    /// `addresses: entra`: its ranges are the Entra ID list (the `entra` set); its set adds the
    /// addresses of its discovery names (`graph.microsoft.com`, which the tag may not cover).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub entra: bool,
}

/// `host_firewall_egress_extra_rules` entries: more destinations a restricted host may reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressExtra {
    pub id: String,
    pub destinations: Vec<IpNet>,
    pub port: u16,
    pub protocols: Vec<String>,
    pub purpose: String,
}

/// Where an extra rule applies, or where its traffic comes from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Peer {
    Service(String),
    Group(String),
    Cidrs(Vec<IpNet>),
}

/// `host_firewall_extra_rules` entries: the same shape as a matrix row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraRule {
    pub id: String,
    pub target: Peer,
    pub port: u16,
    pub protocols: Vec<String>,
    pub purpose: String,
    pub source: Peer,
}

/// Option values that are not errors but deserve a word to the operator.
pub type Warnings = Vec<String>;

impl Options {
    pub fn from_hostvars(m: &Matrix, vars: &Map<String, Value>, warnings: &mut Warnings) -> Result<Options> {
        for k in vars.keys() {
            if k.starts_with("host_firewall_") && !KNOWN_VARIABLES.contains(&k.as_str()) {
                let hint = closest(k, KNOWN_VARIABLES).map(|s| format!(" (did you mean {s}?)")).unwrap_or_default();
                return Err(Error::new(format!("unknown variable {k}{hint}")));
            }
        }
        let get = |k: &str| vars.get(k).filter(|v| !v.is_null());

        let databases: BTreeSet<&str> = m.internal.iter().filter_map(|r| r.when.database.as_deref()).collect();
        let database = match get("host_firewall_database") {
            None => DEFAULT_DATABASE.to_string(),
            Some(v) => one_of("host_firewall_database", &scalar("host_firewall_database", v)?, &databases)?,
        };
        let secret_targets: BTreeSet<&str> =
            m.internal.iter().filter_map(|r| r.when.vault_dynamic_secrets.as_deref()).collect();
        let mut vault_dynamic_secrets = BTreeSet::new();
        if let Some(v) = get("host_firewall_vault_dynamic_secrets") {
            for s in string_list("host_firewall_vault_dynamic_secrets", v)? {
                vault_dynamic_secrets.insert(one_of("host_firewall_vault_dynamic_secrets", &s, &secret_targets)?);
            }
        }
        let cidrs = |k: &str, warnings: &mut Warnings| -> Result<Option<Vec<IpNet>>> {
            get(k).map(|v| cidr_list(k, v, warnings)).transpose()
        };
        let admin_sources = cidrs("host_firewall_admin_sources", warnings)?.unwrap_or_default();
        let power_user_sources = cidrs("host_firewall_power_user_sources", warnings)?.unwrap_or_default();
        let user_sources = match cidrs("host_firewall_user_sources", warnings)? {
            Some(v) => v,
            None => DEFAULT_USER_SOURCES.iter().map(|s| s.parse().expect("default CIDR")).collect(),
        };
        let management_sources = cidrs("host_firewall_management_sources", warnings)?;
        let address = match get("host_firewall_address") {
            None => None,
            Some(v) => {
                let list = string_list("host_firewall_address", v)?;
                if list.is_empty() {
                    return Err(Error::new("host_firewall_address is empty; give one address or a list"));
                }
                Some(
                    list.iter()
                        .map(|s| parse_ip(s).map_err(|e| e.context("host_firewall_address")))
                        .collect::<Result<Vec<_>>>()?,
                )
            }
        };
        let extra_rules = match get("host_firewall_extra_rules") {
            None => vec![],
            Some(v) => extra_rules(v, warnings)?,
        };
        let disabled_rules = match get("host_firewall_disabled_rules") {
            None => BTreeSet::new(),
            Some(v) => string_list("host_firewall_disabled_rules", v)?.into_iter().collect(),
        };
        let backend = match get("host_firewall_backend") {
            None => BackendKind::Auto,
            Some(v) => BackendKind::parse("host_firewall_backend", &scalar("host_firewall_backend", v)?)?,
        };
        let remove_zone_services = match get("host_firewall_remove_zone_services") {
            None => vec![],
            Some(v) => {
                let list = string_list("host_firewall_remove_zone_services", v)?;
                if let Some(bad) = list
                    .iter()
                    .find(|s| s.is_empty() || !s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)))
                {
                    return Err(Error::new(format!(
                        "host_firewall_remove_zone_services: invalid service name '{bad}'"
                    )));
                }
                list
            }
        };
        let egress = match get("host_firewall_egress") {
            None => EgressMode::Open,
            Some(v) => EgressMode::parse("host_firewall_egress", &scalar("host_firewall_egress", v)?)?,
        };
        let dns_servers = cidrs("host_firewall_dns_servers", warnings)?;
        let ntp_servers = cidrs("host_firewall_ntp_servers", warnings)?.unwrap_or_default();
        let egress_extra_rules = match get("host_firewall_egress_extra_rules") {
            None => vec![],
            Some(v) => egress_extra_rules(v, warnings)?,
        };
        let entra = match get("host_firewall_entra") {
            None => true,
            Some(v) => boolean("host_firewall_entra", v)?,
        };
        let oidc_providers = get("host_firewall_oidc_providers").map(oidc_providers).transpose()?;
        if let (false, Some(p)) = (entra, oidc_providers.iter().flatten().find(|p| p.entra)) {
            return Err(Error::new(format!(
                "host_firewall_oidc_providers lists the Entra ID provider {} but host_firewall_entra is false: \
                 its ranges are the Entra ID list; remove it from the list or set host_firewall_entra true",
                p.id
            )));
        }
        Ok(Options {
            egress,
            dns_servers,
            ntp_servers,
            egress_extra_rules,
            entra,
            oidc_providers,
            remove_zone_services,
            database,
            vault_dynamic_secrets,
            admin_sources,
            power_user_sources,
            user_sources,
            management_sources,
            address,
            extra_rules,
            disabled_rules,
            backend,
        })
    }

    /// The CIDR list a matrix audience variable names.
    pub fn sources_var(&self, var: &str) -> &[IpNet] {
        match var {
            "host_firewall_admin_sources" => &self.admin_sources,
            "host_firewall_power_user_sources" => &self.power_user_sources,
            "host_firewall_user_sources" => &self.user_sources,
            _ => &[],
        }
    }
}

fn scalar(var: &str, v: &Value) -> Result<String> {
    match v {
        Value::String(s) => Ok(s.trim().to_string()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(Error::new(format!("{var} must be a single value, got {other}"))),
    }
}

fn one_of(var: &str, value: &str, allowed: &BTreeSet<&str>) -> Result<String> {
    if allowed.contains(value) {
        Ok(value.to_string())
    } else {
        let list: Vec<&str> = allowed.iter().copied().collect();
        Err(Error::new(format!("{var}: invalid value '{value}' (expected one of: {})", list.join(", "))))
    }
}

/// A list variable: a real list, a string holding a JSON list, or a comma/space separated string.
pub fn list_value(var: &str, v: &Value) -> Result<Vec<Value>> {
    match v {
        Value::Null => Ok(vec![]),
        Value::Array(a) => Ok(a.clone()),
        Value::String(s) => {
            let t = s.trim();
            if t.starts_with('[') {
                match serde_json::from_str::<Value>(t) {
                    Ok(Value::Array(a)) => Ok(a),
                    // Python-literal lists (['a', 'b']) or lists whose quotes a shell ate ([a, b]).
                    _ => match t.strip_prefix('[').and_then(|x| x.strip_suffix(']')) {
                        Some(inner) if !inner.contains(['[', ']', '{', '}']) => Ok(inner
                            .split(',')
                            .map(|x| x.trim().trim_matches(|c| c == '\'' || c == '"').trim())
                            .filter(|x| !x.is_empty())
                            .map(|x| Value::String(x.to_string()))
                            .collect()),
                        _ => Err(Error::new(format!("{var}: the string {t:?} is not a valid list"))),
                    },
                }
            } else {
                Ok(t.split(|c: char| c == ',' || c.is_whitespace())
                    .filter(|x| !x.is_empty())
                    .map(|x| Value::String(x.to_string()))
                    .collect())
            }
        }
        other => Err(Error::new(format!("{var} must be a list, got {other}"))),
    }
}

fn string_list(var: &str, v: &Value) -> Result<Vec<String>> {
    list_value(var, v)?.iter().map(|x| scalar(var, x)).collect()
}

pub fn parse_ip(s: &str) -> Result<IpAddr> {
    let t = s.trim();
    let bare = t.strip_prefix('[').and_then(|x| x.strip_suffix(']')).unwrap_or(t);
    bare.parse::<IpAddr>().map_err(|_| Error::new(format!("'{s}' is not an IPv4 or IPv6 address")))
}

/// One CIDR (or a bare address, taken as /32 or /128). Host bits are cleared with a warning.
pub fn parse_cidr(var: &str, s: &str, warnings: &mut Warnings) -> Result<IpNet> {
    let t = s.trim();
    let net = if t.contains('/') {
        t.parse::<IpNet>().map_err(|_| Error::new(format!("{var}: malformed CIDR '{s}'")))?
    } else {
        IpNet::from(t.parse::<IpAddr>().map_err(|_| Error::new(format!("{var}: malformed CIDR '{s}'")))?)
    };
    let trunc = net.trunc();
    if trunc != net {
        warnings.push(format!("{var}: '{s}' has host bits set; using {trunc}"));
    }
    Ok(trunc)
}

fn cidr_list(var: &str, v: &Value, warnings: &mut Warnings) -> Result<Vec<IpNet>> {
    let mut out: Vec<IpNet> =
        string_list(var, v)?.iter().map(|s| parse_cidr(var, s, warnings)).collect::<Result<_>>()?;
    out.sort();
    out.dedup();
    Ok(out)
}

/// A boolean as Ansible writes them (YAML booleans, or INI strings like `yes`/`false`).
fn boolean(var: &str, v: &Value) -> Result<bool> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::Number(n) if n.as_i64() == Some(0) || n.as_i64() == Some(1) => Ok(n.as_i64() == Some(1)),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "yes" | "true" | "on" | "1" | "y" | "t" => Ok(true),
            "no" | "false" | "off" | "0" | "n" | "f" => Ok(false),
            other => Err(Error::new(format!("{var}: invalid value '{other}' (expected true or false)"))),
        },
        other => Err(Error::new(format!("{var}: invalid value {other} (expected true or false)"))),
    }
}

/// A rule's `protocols` (default tcp), validated.
fn protocols(at: &str, v: Option<&Value>) -> Result<Vec<String>> {
    match v {
        None | Some(Value::Null) => Ok(vec!["tcp".to_string()]),
        Some(v) => {
            let list = string_list(&format!("{at}: protocols"), v)?;
            let mut p = vec![];
            for s in list {
                let s = s.to_ascii_lowercase();
                if s != "tcp" && s != "udp" {
                    return Err(Error::new(format!("{at}: invalid protocol '{s}' (expected tcp or udp)")));
                }
                if !p.contains(&s) {
                    p.push(s);
                }
            }
            if p.is_empty() {
                return Err(Error::new(format!("{at}: 'protocols' is empty")));
            }
            Ok(p)
        }
    }
}

/// A rule's `port`, validated.
fn port(at: &str, v: Option<&Value>) -> Result<u16> {
    let port = match v {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.trim().parse::<i64>().ok(),
        _ => None,
    }
    .ok_or_else(|| Error::new(format!("{at}: 'port' must be a number, got {}", v.unwrap_or(&Value::Null))))?;
    if !(1..=65535).contains(&port) {
        return Err(Error::new(format!("{at}: port {port} is out of range 1-65535")));
    }
    Ok(port as u16)
}

/// Text that ends up in reports and rule comments (purposes, host and group names) may hold
/// no control characters: a newline or tab would split a `flows` line or a report row.
pub fn no_control(what: &str, s: &str) -> Result<()> {
    match s.chars().find(|c| c.is_control()) {
        Some(c) => Err(Error::new(format!(
            "{what} '{}' holds a control character (U+{:04X}); use plain text",
            s.escape_debug(),
            u32::from(c)
        ))),
        None => Ok(()),
    }
}

/// A rule's `id`: required, letters, digits, '-', '_' and '.'. Returns (id, where-prefix).
fn rule_id(var: &str, i: usize, obj: &Map<String, Value>) -> Result<(String, String)> {
    let id = obj.get("id").and_then(Value::as_str).unwrap_or("").trim().to_string();
    let at = if id.is_empty() { format!("{var}[{i}]") } else { format!("{var}[{i}] (id {id})") };
    if id.is_empty() {
        return Err(Error::new(format!("{at}: 'id' is required")));
    }
    if !id.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
        return Err(Error::new(format!("{at}: id may hold only letters, digits, '-', '_' and '.'")));
    }
    Ok((id, at))
}

fn egress_extra_rules(v: &Value, warnings: &mut Warnings) -> Result<Vec<EgressExtra>> {
    const VAR: &str = "host_firewall_egress_extra_rules";
    let mut out: Vec<EgressExtra> = vec![];
    for (i, item) in list_value(VAR, v)?.iter().enumerate() {
        let obj = item.as_object().ok_or_else(|| Error::new(format!("{VAR}[{i}] must be a mapping, got {item}")))?;
        let (id, at) = rule_id(VAR, i, obj)?;
        if out.iter().any(|r| r.id == id) {
            return Err(Error::new(format!("{at}: duplicate id")));
        }
        for k in obj.keys() {
            if !["id", "destinations", "port", "protocols", "purpose"].contains(&k.as_str()) {
                return Err(Error::new(format!("{at}: unknown key '{k}'")));
            }
        }
        let destinations = match obj.get("destinations") {
            None | Some(Value::Null) => return Err(Error::new(format!("{at}: 'destinations' (CIDRs) is required"))),
            Some(v) => cidr_list(&format!("{at}: destinations"), v, warnings)?,
        };
        if destinations.is_empty() {
            return Err(Error::new(format!("{at}: 'destinations' is empty")));
        }
        let port = port(&at, obj.get("port"))?;
        let protocols = protocols(&at, obj.get("protocols"))?;
        let purpose = match obj.get("purpose") {
            None | Some(Value::Null) => id.clone(),
            Some(Value::String(s)) => s.trim().to_string(),
            Some(o) => return Err(Error::new(format!("{at}: 'purpose' must be a string, got {o}"))),
        };
        no_control(&format!("{at}: purpose"), &purpose)?;
        out.push(EgressExtra { id, destinations, port, protocols, purpose });
    }
    Ok(out)
}

fn extra_rules(v: &Value, warnings: &mut Warnings) -> Result<Vec<ExtraRule>> {
    const VAR: &str = "host_firewall_extra_rules";
    let mut out = vec![];
    for (i, item) in list_value(VAR, v)?.iter().enumerate() {
        let obj = item.as_object().ok_or_else(|| Error::new(format!("{VAR}[{i}] must be a mapping, got {item}")))?;
        let (id, at) = rule_id(VAR, i, obj)?;
        for k in obj.keys() {
            if !["id", "service", "group", "port", "protocols", "purpose", "source", "source_group", "sources"]
                .contains(&k.as_str())
            {
                return Err(Error::new(format!("{at}: unknown key '{k}'")));
            }
        }
        let text = |k: &str| -> Result<Option<String>> {
            match obj.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
                Some(o) => Err(Error::new(format!("{at}: '{k}' must be a string, got {o}"))),
            }
        };
        let target = match (text("service")?, text("group")?) {
            (Some(s), None) => Peer::Service(s),
            (None, Some(g)) => Peer::Group(g),
            _ => {
                return Err(Error::new(format!(
                    "{at}: give exactly one of 'service' or 'group' (where the rule applies)"
                )))
            }
        };
        let source = match (text("source")?, text("source_group")?, obj.get("sources")) {
            (Some(s), None, None) => Peer::Service(s),
            (None, Some(g), None) => Peer::Group(g),
            (None, None, Some(v)) => Peer::Cidrs(cidr_list(&format!("{at}: sources"), v, warnings)?),
            _ => {
                return Err(Error::new(format!(
                    "{at}: give exactly one of 'source' (service), 'source_group' or 'sources' (CIDRs)"
                )))
            }
        };
        let port = port(&at, obj.get("port"))?;
        let protocols = protocols(&at, obj.get("protocols"))?;
        let purpose = text("purpose")?.unwrap_or_else(|| id.clone());
        no_control(&format!("{at}: purpose"), &purpose)?;
        out.push(ExtraRule { id, target, port, protocols, purpose, source });
    }
    Ok(out)
}

/// The known name closest to a typo, if it is close enough to be a plausible suggestion.
fn closest<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    known.iter().map(|k| (levenshtein(word, k), *k)).filter(|(d, _)| *d <= 4).min().map(|(_, k)| k)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// `host_firewall_oidc_providers`: a list (or its JSON text, as `-e key=value` gives it), each
/// entry validated by `vorfw-oidc` (the issuer, the address kind, extra names; ids unique).
fn oidc_providers(v: &Value) -> Result<Vec<OidcProvider>> {
    const VAR: &str = "host_firewall_oidc_providers";
    let parsed;
    let v = match v {
        Value::String(t) => {
            parsed = serde_json::from_str::<Value>(t)
                .map_err(|e| Error::new(format!("{VAR} must be a list of providers, got the text '{t}' ({e})")))?;
            &parsed
        }
        v => v,
    };
    let list = vorfw_oidc::parse_providers(v).map_err(|e| {
        let m = e.to_string();
        Error::new(if m.contains(VAR) { m } else { format!("{VAR}: {m}") })
    })?;
    Ok(list
        .into_iter()
        .map(|p| OidcProvider { entra: matches!(p.addresses, vorfw_oidc::Addresses::Entra { .. }), id: p.id })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn opts(v: Value) -> Result<Options> {
        let mut w = vec![];
        Options::from_hostvars(Matrix::embedded(), v.as_object().unwrap(), &mut w)
    }

    #[test]
    fn defaults() {
        let o = opts(json!({})).unwrap();
        assert_eq!(o.database, "postgres");
        assert!(o.vault_dynamic_secrets.is_empty());
        assert!(o.admin_sources.is_empty());
        assert_eq!(o.user_sources.len(), 2);
        assert_eq!(o.management_sources, None);
        assert_eq!(o.backend, BackendKind::Auto);
    }

    #[test]
    fn lists_accept_json_strings_and_comma_strings() {
        let o = opts(json!({
            "host_firewall_admin_sources": "[\"10.0.0.0/8\", \"fd00::/8\"]",
            "host_firewall_power_user_sources": "192.168.1.0/24, 192.168.2.7",
            "host_firewall_vault_dynamic_secrets": ["rabbitmq"],
            "host_firewall_user_sources": "['10.9.0.0/16', '10.8.0.0/16']",
        }))
        .unwrap();
        assert_eq!(o.admin_sources.len(), 2);
        assert_eq!(o.power_user_sources[1].to_string(), "192.168.2.7/32");
        assert!(o.vault_dynamic_secrets.contains("rabbitmq"));
        assert_eq!(o.user_sources.iter().map(|n| n.to_string()).collect::<Vec<_>>(), ["10.8.0.0/16", "10.9.0.0/16"]);
    }

    #[test]
    fn bad_values_name_the_variable_and_value() {
        let e = opts(json!({"host_firewall_database": "mysql"})).unwrap_err();
        assert_eq!(e.0, "host_firewall_database: invalid value 'mysql' (expected one of: postgres, sqlserver)");
        let e = opts(json!({"host_firewall_admin_sources": ["10.0.0.0/33"]})).unwrap_err();
        assert_eq!(e.0, "host_firewall_admin_sources: malformed CIDR '10.0.0.0/33'");
        let e = opts(json!({"host_firewall_vault_dynamic_secrets": "[\"mongodb\"]"})).unwrap_err();
        assert!(e.0.contains("invalid value 'mongodb'"), "{e}");
        let e = opts(json!({"host_firewall_databse": "postgres"})).unwrap_err();
        assert_eq!(e.0, "unknown variable host_firewall_databse (did you mean host_firewall_database?)");
        let e = opts(json!({"host_firewall_address": "10.0.0.300"})).unwrap_err();
        assert!(e.0.contains("'10.0.0.300' is not an IPv4 or IPv6 address"), "{e}");
    }

    #[test]
    fn host_bits_are_cleared_with_a_warning() {
        let mut w = vec![];
        let o = Options::from_hostvars(
            Matrix::embedded(),
            json!({"host_firewall_admin_sources": ["10.1.2.3/8"]}).as_object().unwrap(),
            &mut w,
        )
        .unwrap();
        assert_eq!(o.admin_sources[0].to_string(), "10.0.0.0/8");
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn oidc_providers_are_validated_and_keep_their_ids() {
        assert_eq!(opts(json!({})).unwrap().oidc_providers, None);
        let list = json!([
            {"issuer": "https://login.microsoftonline.com/T/v2.0", "addresses": "entra"},
            {"issuer": "https://kc.example.com/realms/vor", "name": "keycloak"},
        ]);
        let want = vec![
            OidcProvider {
                id: opts(json!({"host_firewall_oidc_providers": [list[0].clone()]})).unwrap().oidc_providers.unwrap()
                    [0]
                .id
                .clone(),
                entra: true,
            },
            OidcProvider { id: "keycloak".into(), entra: false },
        ];
        assert_eq!(opts(json!({"host_firewall_oidc_providers": list})).unwrap().oidc_providers, Some(want.clone()));
        // The JSON text `-e host_firewall_oidc_providers=[...]` gives.
        let text = json!({"host_firewall_oidc_providers": list.to_string()});
        assert_eq!(opts(text).unwrap().oidc_providers, Some(want));
        for (bad, words) in [
            (json!([{"issuer": "http://kc.example.com"}]), "https"),
            (json!([{"issuer": "https://kc.example.com", "adresses": "dns"}]), "adresses"),
            (json!({"issuer": "https://kc.example.com"}), "must be a list"),
            (json!("not json"), "not json"),
        ] {
            let e = opts(json!({"host_firewall_oidc_providers": bad})).unwrap_err();
            assert!(e.0.contains("host_firewall_oidc_providers") && e.0.contains(words), "{e}");
        }
    }

    #[test]
    fn egress_options_are_validated() {
        let o = opts(json!({})).unwrap();
        assert_eq!((o.egress, o.dns_servers.is_none(), o.entra), (EgressMode::Open, true, true));
        let o = opts(json!({
            "host_firewall_egress": "restricted",
            "host_firewall_dns_servers": "10.0.0.53",
            "host_firewall_entra": "no",
            "host_firewall_egress_extra_rules": [{"id": "repo", "destinations": ["192.0.2.0/24"], "port": "8443"}],
        }))
        .unwrap();
        assert_eq!(o.egress, EgressMode::Restricted);
        assert_eq!(o.dns_servers, Some(vec!["10.0.0.53/32".parse().unwrap()]));
        assert!(!o.entra);
        assert_eq!(
            (o.egress_extra_rules[0].port, o.egress_extra_rules[0].protocols.clone()),
            (8443, vec!["tcp".into()])
        );
        for (v, msg) in [
            (
                json!({"host_firewall_egress": "closed"}),
                "host_firewall_egress: invalid value 'closed' (expected one of: open, restricted)",
            ),
            (
                json!({"host_firewall_entra": "maybe"}),
                "host_firewall_entra: invalid value 'maybe' (expected true or false)",
            ),
            (
                json!({"host_firewall_egress_extra_rules": [{"id": "x", "port": 1}]}),
                "host_firewall_egress_extra_rules[0] (id x): 'destinations' (CIDRs) is required",
            ),
            (
                json!({"host_firewall_egress_extra_rules": [{"id": "x", "destinations": ["10.0.0.0/8"], "port": 70000}]}),
                "host_firewall_egress_extra_rules[0] (id x): port 70000 is out of range 1-65535",
            ),
            (
                json!({"host_firewall_ntp_servers": ["pool.ntp.org"]}),
                "host_firewall_ntp_servers: malformed CIDR 'pool.ntp.org'",
            ),
        ] {
            assert_eq!(opts(v).unwrap_err().0, msg);
        }
    }

    #[test]
    fn extra_rules_are_validated() {
        let ok = opts(json!({"host_firewall_extra_rules": [
            {"id": "consul-wan", "service": "Consul Server", "port": 8302, "protocols": ["tcp", "udp"], "source": "Consul Server"},
            {"id": "django-tls", "group": "django", "port": "8443", "sources": ["10.0.0.0/8"]}
        ]}))
        .unwrap();
        assert_eq!(ok.extra_rules.len(), 2);
        assert_eq!(ok.extra_rules[1].port, 8443);
        let e = opts(
            json!({"host_firewall_extra_rules": [{"id": "x", "group": "web", "port": 70000, "source_group": "web"}]}),
        )
        .unwrap_err();
        assert_eq!(e.0, "host_firewall_extra_rules[0] (id x): port 70000 is out of range 1-65535");
        let e = opts(json!({"host_firewall_extra_rules": [{"id": "x", "group": "web", "port": 1, "protocols": "sctp", "source_group": "web"}]})).unwrap_err();
        assert!(e.0.contains("invalid protocol 'sctp'"), "{e}");
        let e =
            opts(json!({"host_firewall_extra_rules": [{"id": "x", "port": 1, "source_group": "web"}]})).unwrap_err();
        assert!(e.0.contains("exactly one of 'service' or 'group'"), "{e}");
    }

    #[test]
    fn the_known_variables_are_the_roles_documented_ones() {
        // The role's argument specs document every variable; the planner knows exactly those.
        let specs = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../../roles/host_firewall/meta/argument_specs.yml"),
        )
        .unwrap();
        let documented: BTreeSet<&str> = specs
            .lines()
            .filter_map(|l| l.strip_prefix("      host_firewall_").map(|_| l.trim().trim_end_matches(':')))
            .collect();
        assert!(documented.len() > 10, "{documented:?}");
        assert_eq!(documented, KNOWN_VARIABLES.iter().copied().collect::<BTreeSet<_>>());
    }
}

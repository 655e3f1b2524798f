//! The per-provider files of the state directory (`/var/lib/vorstream-firewall/oidc` by
//! default): `<id>.json`, the provider's accepted state, replaced atomically
//! (`vorfw_sys::replace`) only when a refresh succeeds, so a bad fetch or a refusal leaves it
//! byte for byte as it was; and `<id>.status.json`, written on every refresh, for monitoring.
//! A refresh holds `.<id>.lock` (flock) while it runs.
//! Reading them needs no network stack (the firewall side reads the sets without `fetch`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::config::Provider;
use crate::discovery::Discovery;
use crate::dns::{AddressSets, DnsCounts, DnsPolicy, DnsState};
use crate::error::{Error, ErrorKind, Result};
use crate::names::HostPort;

/// The default state directory.
pub const DEFAULT_OIDC_STATE_DIR: &str = "/var/lib/vorstream-firewall/oidc";
/// The format version of both files.
pub const PROVIDER_STATE_VERSION: u32 = 1;
const STATE_SUFFIX: &str = ".json";
const STATUS_SUFFIX: &str = ".status.json";

/// `<id>.json`: what the last successful refresh accepted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProviderState {
    pub version: u32,
    pub provider: Provider,
    /// The accepted discovery document, reduced to its endpoints.
    pub discovery: Discovery,
    /// Hosts the discovery fetch was redirected to (their names are resolved too).
    #[serde(default)]
    pub redirect_hosts: Vec<HostPort>,
    /// The names resolved: the discovery document's, the extra and the redirect names.
    pub names: BTreeSet<String>,
    /// The ports the provider's clients connect to.
    pub ports: BTreeSet<u16>,
    /// The update policy in force (its grace tells `show` what is in grace).
    pub policy: DnsPolicy,
    /// Per name: addresses with first and last seen, TTL, grace; lookup successes and failures.
    pub dns: DnsState,
    /// The effective resolved addresses by family (derived from `dns`, for readers).
    pub sets: AddressSets,
    /// A published provider's range list (the Entra feed's state, its update policy applied).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ranges: Option<vorfw_entra::State>,
    /// Where the range list came from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub range_sources: Vec<String>,
    #[serde(with = "vorfw_entra::time::ts")]
    pub last_success: SystemTime,
}

impl ProviderState {
    /// The published prefixes in force (empty for `dns` and `entra` providers).
    pub fn range_prefixes(&self) -> BTreeSet<ipnet::IpNet> {
        self.ranges.as_ref().map(|r| r.effective()).unwrap_or_default()
    }
}

/// `<id>.status.json`: the last refresh's outcome.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProviderStatus {
    pub version: u32,
    pub provider: String,
    pub issuer: String,
    /// The last refresh succeeded.
    pub ok: bool,
    #[serde(with = "vorfw_entra::time::ts")]
    pub last_attempt: SystemTime,
    #[serde(default, with = "vorfw_entra::time::ts_opt")]
    pub last_success: Option<SystemTime>,
    #[serde(default, with = "vorfw_entra::time::ts_opt")]
    pub last_failure: Option<SystemTime>,
    /// Failed refreshes since the last success.
    #[serde(default)]
    pub consecutive_failures: u32,
    #[serde(default)]
    pub error_kind: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
    /// When the next refresh is due (from the TTLs; the last success's).
    #[serde(default, with = "vorfw_entra::time::ts_opt")]
    pub next_refresh: Option<SystemTime>,
    /// Names whose last lookup failed (they keep their addresses), with the reason.
    #[serde(default)]
    pub failing_names: Vec<(String, String)>,
    #[serde(default)]
    pub counts: DnsCounts,
    #[serde(default)]
    pub prefixes: usize,
    #[serde(default)]
    pub warnings: Vec<String>,
    /// The discovery document could not be fetched (`<kind>: <message>`): the names of the
    /// stored one were resolved instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovery_error: Option<String>,
}

/// Health for monitoring.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    Ok,
    /// The last refresh failed, or no refresh ever succeeded.
    Failing,
    /// The last refresh succeeded but some names' lookups failed (they keep their addresses),
    /// or the discovery document could not be fetched (the stored one's names were resolved).
    Degraded,
    /// No refresh ran since the next one was due (plus the slack).
    Overdue,
}

impl ProviderStatus {
    /// Failing beats overdue beats degraded.
    pub fn health(&self, now: SystemTime, slack: Duration) -> Health {
        if !self.ok || self.last_success.is_none() {
            return Health::Failing;
        }
        if self.next_refresh.is_some_and(|t| now > t + slack) {
            return Health::Overdue;
        }
        if !self.failing_names.is_empty() || self.discovery_error.is_some() {
            return Health::Degraded;
        }
        Health::Ok
    }
}

pub fn state_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}{STATE_SUFFIX}"))
}

pub fn status_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}{STATUS_SUFFIX}"))
}

fn load<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    let Some(bytes) = vorfw_sys::read_optional(path).map_err(|e| Error::new(ErrorKind::State, e))? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| Error::new(ErrorKind::State, format!("{} is unreadable: {e}", path.display())))
}

fn save<T: Serialize>(path: &Path, v: &T) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(v).map_err(|e| Error::new(ErrorKind::State, e.to_string()))?;
    bytes.push(b'\n');
    vorfw_sys::replace(path, &bytes, 0o644).map_err(|e| Error::new(ErrorKind::State, e))
}

pub fn load_provider_state(dir: &Path, id: &str) -> Result<Option<ProviderState>> {
    let s: Option<ProviderState> = load(&state_path(dir, id))?;
    if let Some(s) = &s {
        if s.version != PROVIDER_STATE_VERSION || s.provider.id != id {
            return Err(Error::new(
                ErrorKind::State,
                format!(
                    "{}: version {} of provider {:?}, expected version {PROVIDER_STATE_VERSION} of {id:?}",
                    state_path(dir, id).display(),
                    s.version,
                    s.provider.id
                ),
            ));
        }
    }
    Ok(s)
}

pub fn save_provider_state(dir: &Path, s: &ProviderState) -> Result<()> {
    save(&state_path(dir, &s.provider.id), s)
}

pub fn load_provider_status(dir: &Path, id: &str) -> Result<Option<ProviderStatus>> {
    load(&status_path(dir, id))
}

pub fn save_provider_status(dir: &Path, s: &ProviderStatus) -> Result<()> {
    save(&status_path(dir, &s.provider), s)
}

/// The provider ids with a state or status file in `dir`, sorted (none when it is missing).
pub fn stored_ids(dir: &Path) -> Result<Vec<String>> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::new(ErrorKind::State, format!("cannot list {}: {e}", dir.display()))),
    };
    let mut ids = BTreeSet::new();
    for e in rd.flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        let id = n.strip_suffix(STATUS_SUFFIX).or_else(|| n.strip_suffix(STATE_SUFFIX));
        if let Some(id) = id {
            if !id.is_empty() && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
                ids.insert(id.to_string());
            }
        }
    }
    Ok(ids.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(ok: bool, next: Option<SystemTime>, failing: usize) -> ProviderStatus {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        ProviderStatus {
            version: PROVIDER_STATE_VERSION,
            provider: "lab".into(),
            issuer: "https://idp.vorfw.test".into(),
            ok,
            last_attempt: t0,
            last_success: ok.then_some(t0),
            last_failure: None,
            consecutive_failures: 0,
            error_kind: None,
            error: None,
            next_refresh: next,
            failing_names: (0..failing).map(|i| (format!("n{i}.vorfw.test"), "timeout".into())).collect(),
            counts: DnsCounts::default(),
            prefixes: 0,
            warnings: Vec::new(),
            discovery_error: None,
        }
    }

    #[test]
    fn health_failing_beats_overdue_beats_degraded() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let slack = Duration::from_secs(600);
        let due = Some(t0 + Duration::from_secs(300));
        assert_eq!(status(true, due, 0).health(t0, slack), Health::Ok);
        assert_eq!(status(true, due, 1).health(t0, slack), Health::Degraded);
        assert_eq!(status(true, due, 0).health(t0 + Duration::from_secs(899), slack), Health::Ok);
        assert_eq!(status(true, due, 1).health(t0 + Duration::from_secs(901), slack), Health::Overdue);
        assert_eq!(status(false, due, 1).health(t0 + Duration::from_secs(901), slack), Health::Failing);
        let mut stale = status(true, due, 0);
        stale.discovery_error = Some("network: connection refused".into());
        assert_eq!(stale.health(t0, slack), Health::Degraded);
        let mut never = status(true, due, 0);
        never.last_success = None;
        assert_eq!(never.health(t0, slack), Health::Failing);
    }

    #[test]
    fn stored_ids_and_status_round_trip() {
        let dir = std::env::temp_dir().join(format!("vorfw-oidc-state-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        assert!(stored_ids(&dir).unwrap().is_empty(), "a missing directory holds none");
        let s = status(true, None, 2);
        save_provider_status(&dir, &s).unwrap();
        std::fs::write(dir.join("kc.json"), b"{}").unwrap();
        std::fs::write(dir.join(".lab.lock"), b"").unwrap();
        std::fs::write(dir.join("Notes.json"), b"{}").unwrap();
        assert_eq!(stored_ids(&dir).unwrap(), vec!["kc".to_string(), "lab".to_string()]);
        assert_eq!(load_provider_status(&dir, "lab").unwrap(), Some(s));
        let e = load_provider_state(&dir, "kc").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::State);
        assert!(e.message().contains("kc.json is unreadable"), "{e}");
        assert_eq!(load_provider_state(&dir, "none").unwrap(), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

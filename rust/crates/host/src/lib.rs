//! One host's firewall, converged: pick the backend, gather what only the host knows (the
//! Entra ID list it holds, its resolvers), build the policy, converge, and record what was
//! applied so the Entra ID refresher can re-apply the same plan with a new list.
//!
//! Shared by the `apply` module and the `vorfw-entra apply` refresher; it carries no network
//! stack (the refresher's HTTPS client stays in `vorfw-entra`). [`confirm`]: commit-confirm.

pub mod confirm;
pub mod metrics;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use vorfw_core::policy::{self, HostFacts, OidcAddresses, Policy};
use vorfw_core::{Backend, BackendKind, Report, Request};
use vorfw_firewalld::apply::Target;
use vorfw_firewalld::FirewalldBackend;

/// Where the Entra ID refresher keeps its state (the effective list is read from `state.json`):
/// the feed's own default, its one home.
pub use vorfw_entra::DEFAULT_STATE_DIR as DEFAULT_ENTRA_DIR;
/// Where the OIDC refresher (`vorfw-entra oidc refresh`) keeps each provider's addresses.
pub use vorfw_oidc::DEFAULT_OIDC_STATE_DIR as DEFAULT_OIDC_DIR;
/// Where the last applied request is recorded.
pub const DEFAULT_RECORD: &str = "/etc/vorstream-firewall/applied.json";

/// Everything needed to converge one host (and, recorded, to do it again later).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    /// The host's request (records before format v2 called it `plan`).
    #[serde(alias = "plan", deserialize_with = "any_request")]
    pub request: Request,
    /// The backend to use instead of the request's.
    #[serde(default)]
    pub backend: Option<BackendKind>,
    #[serde(default)]
    pub controller: Option<IpAddr>,
    /// firewalld zones to manage (default: the zones of the plan addresses' interfaces).
    #[serde(default)]
    pub zones: Vec<String>,
    /// Where the host's Entra ID and OIDC provider state is (default: the refreshers' own
    /// defaults): recorded so a refresher re-applies with the same lists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entra_state_dir: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oidc_state_dir: Option<PathBuf>,
}

impl Job {
    pub fn entra_dir(&self) -> PathBuf {
        self.entra_state_dir.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_ENTRA_DIR))
    }

    pub fn oidc_dir(&self) -> PathBuf {
        self.oidc_state_dir.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_OIDC_DIR))
    }

    /// What only the host knows, read from its state: the Entra ID list (unless `entra` is
    /// given: a refresher's new one), the OIDC providers' addresses, the resolvers.
    pub fn facts(&self, entra: Option<&[IpNet]>) -> Result<HostFacts, String> {
        let entra = match entra {
            Some(l) => Some(l.to_vec()),
            None if self.request.entra => entra_list(&self.entra_dir())?,
            None => None,
        };
        Ok(HostFacts {
            entra,
            oidc: oidc_addresses(&self.oidc_dir(), self.request.oidc_providers.iter().map(|p| p.id.as_str()))?,
            nameservers: host_nameservers(),
            controller: None,
        })
    }
}

/// The addresses this host holds for these OIDC providers (`vorfw-entra oidc refresh` keeps
/// them in `dir`): each one's resolved addresses and published ranges, and its URLs' ports.
/// A provider without state yet is absent.
pub fn oidc_addresses<'a>(
    dir: &Path,
    ids: impl IntoIterator<Item = &'a str>,
) -> Result<BTreeMap<String, OidcAddresses>, String> {
    let mut out = BTreeMap::new();
    for id in ids {
        let Some(s) = vorfw_oidc::load_provider_state(dir, id).map_err(|e| format!("OIDC provider {id}: {e}"))? else {
            continue;
        };
        let mut nets: Vec<IpNet> = s.sets.ipv4.iter().map(|a| IpNet::from(IpAddr::V4(*a))).collect();
        nets.extend(s.sets.ipv6.iter().map(|a| IpNet::from(IpAddr::V6(*a))));
        nets.extend(s.range_prefixes());
        out.insert(id.to_string(), OidcAddresses { nets, ports: s.ports.clone() });
    }
    Ok(out)
}

/// A request of any format [`Request::from_json`] reads.
fn any_request<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Request, D::Error> {
    let v = Value::deserialize(d)?;
    Request::from_json(&v).map_err(serde::de::Error::custom)
}

/// The result of one converge.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The backend that was used (never `Auto`).
    pub backend: Option<BackendKind>,
    /// What the diff compares ("table inet vorstream", "owned firewalld objects", "ufw").
    pub what: String,
    pub report: Report,
    pub policy: Policy,
    /// With commit-confirm, when something changed: what the controller confirms with.
    pub ticket: Option<confirm::Ticket>,
}

/// The Entra ID list a host holds: the effective prefixes of the refresher's state in `dir`
/// (published, in grace, and those of held removals), or `None` when it has none yet.
pub fn entra_list(dir: &Path) -> Result<Option<Vec<IpNet>>, String> {
    let state = vorfw_entra::load_state(dir).map_err(|e| format!("Entra ID state: {e}"))?;
    Ok(state.map(|s| s.effective().into_iter().collect()))
}

/// The resolvers in resolv.conf text.
pub fn nameservers(text: &str) -> Vec<IpAddr> {
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some("nameserver")).then(|| w.next()).flatten()
        })
        .filter_map(|a| a.split('%').next().and_then(|a| a.parse().ok()))
        .collect()
}

/// The host's resolvers: /etc/resolv.conf, plus systemd-resolved's upstream servers when the
/// stub (127.0.0.53) is in use.
pub fn host_nameservers() -> Vec<IpAddr> {
    let mut out = vec![];
    for f in ["/etc/resolv.conf", "/run/systemd/resolve/resolv.conf"] {
        if let Ok(t) = std::fs::read_to_string(f) {
            for a in nameservers(&t) {
                if !out.contains(&a) {
                    out.push(a);
                }
            }
        }
    }
    out
}

/// Which backend to use, given what runs on the host (never `Auto`).
fn choose(backend: BackendKind, firewalld_running: bool, ufw_active: bool) -> Result<BackendKind, String> {
    Ok(match backend {
        BackendKind::Auto => match (firewalld_running, ufw_active) {
            (true, true) => {
                return Err(
                    "both firewalld and ufw are active; stop one, or set host_firewall_backend to the one to use"
                        .into(),
                )
            }
            (true, false) => BackendKind::Firewalld,
            (false, true) => BackendKind::Ufw,
            (false, false) => BackendKind::Nftables,
        },
        BackendKind::Ufw if firewalld_running => {
            return Err("host_firewall_backend is ufw but firewalld is running; stop firewalld or use it".into())
        }
        BackendKind::Nftables if firewalld_running || ufw_active => {
            return Err(format!(
                "host_firewall_backend is nftables but {} is active; stop it or choose it as the backend",
                if ufw_active { "ufw" } else { "firewalld" }
            ))
        }
        b => b,
    })
}

/// An exclusive lock next to the record, held while the firewall is changed, so the weekly
/// refresher and a playbook run never converge the same host at once. Released on drop.
pub fn lock() -> Result<vorfw_sys::Lock, String> {
    let path = record_path().with_file_name("lock");
    vorfw_sys::Lock::take(&path, vorfw_sys::LockKind::Wait)?.ok_or_else(|| format!("{}: not locked", path.display()))
}

/// How a converge runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Run {
    /// Check mode: report, change nothing.
    pub check: bool,
    /// Commit-confirm: seconds the controller has to confirm before the host rolls back.
    pub confirm: Option<u64>,
}

/// Converge the host to `job` with the host's facts (the controller's address comes from the
/// job), and record the job for the refresher. Errors are plain sentences (the caller adds
/// the host name); on error the backend has restored the previous state. Unless checking,
/// holds the host lock (see [`lock`]), and reads the facts under it: a playbook racing the
/// weekly refresh never applies a list read before the refresh changed it. With
/// `run.confirm`, a change is armed for commit-confirm ([`confirm::arm`]) before it is made.
pub fn converge(job: &Job, facts: impl FnOnce() -> Result<HostFacts, String>, run: Run) -> Result<Outcome, String> {
    let check = run.check;
    let started = std::time::Instant::now();
    let _lock = if check { None } else { Some(lock()?) };
    let req = &job.request;
    let facts = HostFacts { controller: job.controller, ..facts()? };
    let pol = Policy::for_host(req, &facts).map_err(|e| e.to_string())?;
    let target = Target::detect()?;
    let ufw = vorfw_ufw::UfwBackend::default();
    let chosen =
        choose(job.backend.unwrap_or(req.backend), target.is_running(), vorfw_ufw::detect_at(&ufw.paths).enabled)?;
    let mut warnings = pol.warnings.clone();
    let mut zones_used = vec![];
    let backend: Box<dyn Backend> = match chosen {
        BackendKind::Firewalld => {
            zones_used = zones(&target, job, &mut warnings)?;
            Box::new(FirewalldBackend {
                target: Some(target),
                zones: zones_used.clone(),
                remove_services: req.remove_zone_services.clone(),
            })
        }
        BackendKind::Nftables => Box::new(vorfw_nftables::NftablesBackend::default()),
        BackendKind::Ufw | BackendKind::Auto => Box::new(ufw),
    };
    let armed = match run.confirm.filter(|_| !check) {
        Some(t) => Some(confirm::arm(&req.name, &*backend, &zones_used, &req.remove_zone_services, t)?),
        None => None,
    };
    let mut report = match backend.converge(&pol, check) {
        Ok(r) => r,
        Err(e) => {
            // The backend put the previous state back itself.
            if let Some(a) = armed {
                a.disarm("the apply failed and restored the previous state")?;
            }
            return Err(e);
        }
    };
    let mut ticket = None;
    if !check {
        // The backend this run chose is recorded with the request: a later re-apply (the Entra
        // ID refresher) converges the same firewall even while its daemon is stopped (firewalld
        // offline) instead of choosing again and building a second one (nftables).
        let done = Job { backend: Some(chosen), ..job.clone() };
        if let Err(e) = record(&record_path(), &done) {
            let undone = match armed {
                Some(a) => match a.roll_back_now() {
                    Ok(_) => "; the change was rolled back".to_string(),
                    Err(r) => format!("; rolling the change back failed too: {r}"),
                },
                None => String::new(),
            };
            return Err(format!("applied, but recording the request failed: {e}{undone}"));
        }
        match armed {
            Some(a) if report.changed() => ticket = Some(a.ticket()?),
            Some(a) => a.disarm("nothing changed")?,
            None => {}
        }
    }
    report.warnings.splice(0..0, warnings);
    let d = &mut report.data;
    d.insert("backend".into(), json!(chosen));
    d.insert("changes".into(), json!(report.changes));
    // The host's own time for the whole converge (lock, facts, read, diff, apply), without
    // the connection and the upload: what the backend and the release cost.
    d.insert("seconds".into(), json!((started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0));
    d.insert("accepts".into(), accepts_json(&pol.accepts));
    d.insert(
        "egress".into(),
        json!({
            "mode": req.egress,
            "accepts": accepts_json(&pol.egress.accepts),
            "entra_prefixes": facts.entra.as_ref().filter(|_| req.entra).map(Vec::len),
            "oidc_providers": req.oidc_providers.iter().map(|p| {
                (p.id.clone(), json!({"set": policy::oidc_set(&p.id), "addresses": facts.oidc.get(&p.id).map(|a| a.nets.len())}))
            }).collect::<serde_json::Map<String, Value>>(),
        }),
    );
    Ok(Outcome { backend: Some(chosen), what: backend.what(), report, policy: pol, ticket })
}

fn accepts_json(a: &policy::Accepts) -> Value {
    json!(a
        .iter()
        .map(|(a, ids)| json!({
            "set": a.set, "family": a.family.suffix(), "protocol": a.protocol, "port": a.port,
            "rule_ids": ids,
        }))
        .collect::<Vec<_>>())
}

/// The zones serving the host's addresses (the default zone for unbound interfaces).
fn zones(t: &Target, job: &Job, warnings: &mut Vec<String>) -> Result<Vec<String>, String> {
    if !job.zones.is_empty() {
        return Ok(job.zones.clone());
    }
    let addresses = &job.request.addresses;
    let wanted: BTreeSet<IpAddr> = addresses.iter().copied().collect();
    let ifs = vorfw_shell::interfaces()?;
    let mut names: BTreeSet<String> = ifs.iter().filter(|(_, a)| wanted.contains(a)).map(|(n, _)| n.clone()).collect();
    if names.is_empty() {
        let list: Vec<String> = addresses.iter().map(IpAddr::to_string).collect();
        warnings.push(format!(
            "none of the host's plan addresses ({}) is on a local interface (NAT?); using every non-loopback interface's zone",
            list.join(", ")
        ));
        names = ifs.iter().filter(|(n, a)| n != "lo" && !a.is_loopback()).map(|(n, _)| n.clone()).collect();
    }
    let mut zones = BTreeSet::new();
    for n in names {
        match t.zone_of_interface(&n)? {
            Some(z) => zones.insert(z),
            None => zones.insert(t.default_zone()?),
        };
    }
    if zones.is_empty() {
        zones.insert(t.default_zone()?);
    }
    Ok(zones.into_iter().collect())
}

/// Record the job that was just applied (atomically; an unchanged record is not rewritten).
pub fn record(path: &Path, job: &Job) -> Result<(), String> {
    let text = serde_json::to_string_pretty(job).map_err(|e| e.to_string())? + "\n";
    if std::fs::read_to_string(path).ok().as_deref() == Some(text.as_str()) {
        return Ok(());
    }
    vorfw_sys::replace(path, text.as_bytes(), 0o600)
}

/// The last applied job, if any (a record of any request format [`Request::from_json`] reads).
pub fn recorded(path: &Path) -> Result<Option<Job>, String> {
    match vorfw_sys::read_optional(path)? {
        Some(t) => serde_json::from_slice(&t)
            .map(Some)
            .map_err(|e| format!("{}: unreadable ({e}); re-run the host_firewall role", path.display())),
        None => Ok(None),
    }
}

/// What re-applying the record with a new Entra ID list or new OIDC addresses did.
#[derive(Debug)]
pub struct Reapplied {
    pub changed: bool,
    /// One line for people.
    pub line: String,
    pub detail: Value,
}

/// Re-apply the recorded job with the host's current lists (a refresher's apply step): the
/// Entra ID refresher passes its new list as `entra`; the OIDC refresher passes `None` (its
/// providers' new addresses are already in their state). Without a record (the host_firewall
/// role never ran here), or when the host keeps neither an Entra ID set nor OIDC provider sets,
/// there is nothing to apply: the list is only saved, for later runs and perimeter firewalls.
pub fn reapply(entra: Option<&[IpNet]>, check: bool) -> Result<Reapplied, String> {
    let path = record_path();
    let Some(job) = recorded(&path)? else {
        return Ok(Reapplied {
            changed: false,
            line: format!(
                "no host firewall managed by vorstream.firewall here ({} absent): list saved only",
                path.display()
            ),
            detail: json!({"applied": false}),
        });
    };
    let name = &job.request.name;
    let keeps = if entra.is_some() { job.request.entra } else { !job.request.oidc_providers.is_empty() };
    if !keeps {
        let what = if entra.is_some() {
            "no Entra ID set (not an OIDC client, or host_firewall_entra false)"
        } else {
            "no OIDC provider sets (not an OIDC client, or host_firewall_oidc_providers unset)"
        };
        return Ok(Reapplied {
            changed: false,
            line: format!("host {name} keeps {what}"),
            detail: json!({"applied": false}),
        });
    }
    let facts = || job.facts(entra);
    let out = converge(&job, facts, Run { check, confirm: None }).map_err(|e| format!("host {name}: {e}"))?;
    let r = &out.report;
    let verb = match (r.changed(), check) {
        (false, _) => "unchanged",
        (true, true) => "would change",
        (true, false) => "changed",
    };
    let backend = out.backend.map(|b| b.as_str()).unwrap_or("?");
    let what = match entra {
        Some(p) => format!("{} Entra ID prefixes", p.len()),
        None => format!(
            "OIDC providers {}",
            job.request.oidc_providers.iter().map(|p| p.id.as_str()).collect::<Vec<_>>().join(", ")
        ),
    };
    Ok(Reapplied {
        changed: r.changed(),
        line: format!("{name} ({backend}): {verb}, {what}"),
        detail: json!({"applied": !check, "host": name, "backend": backend, "changes": r.changes,
                       "warnings": r.warnings, "before": r.before, "after": r.after}),
    })
}

/// Default paths, overridable by environment for tests and unusual layouts.
pub fn record_path() -> PathBuf {
    std::env::var_os("VORFW_APPLIED_RECORD").map_or_else(|| PathBuf::from(DEFAULT_RECORD), PathBuf::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nameservers_are_read_from_resolv_conf() {
        let t =
            "# comment\nnameserver 10.0.0.2\nsearch lab\nnameserver fe80::1%eth0\nnameserver  127.0.0.53\noptions x\n";
        let want: Vec<IpAddr> =
            vec!["10.0.0.2".parse().unwrap(), "fe80::1".parse().unwrap(), "127.0.0.53".parse().unwrap()];
        assert_eq!(nameservers(t), want);
    }

    #[test]
    fn backend_choice_refuses_conflicts() {
        use BackendKind::*;
        assert_eq!(choose(Auto, true, false).unwrap(), Firewalld);
        assert_eq!(choose(Auto, false, true).unwrap(), Ufw);
        assert_eq!(choose(Auto, false, false).unwrap(), Nftables);
        assert!(choose(Auto, true, true).unwrap_err().contains("both firewalld and ufw"));
        assert!(choose(Nftables, false, true).unwrap_err().contains("ufw is active"));
        assert!(choose(Ufw, true, false).unwrap_err().contains("firewalld is running"));
    }

    #[test]
    fn entra_list_reads_the_effective_prefixes() {
        use vorfw_entra::{parse, save_state, validate_and_merge, Cloud, FeedConfig};
        let dir = std::env::temp_dir().join(format!("vorfw-host-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(entra_list(&dir).unwrap(), None);
        let doc = |cn: u32, prefixes: &[&str]| {
            parse(
                serde_json::json!({"changeNumber": cn, "cloud": "Public", "values": [{"name": "AzureActiveDirectory",
                    "properties": {"addressPrefixes": prefixes}}]})
                .to_string()
                .as_bytes(),
            )
            .unwrap()
        };
        let mut cfg = FeedConfig::new(Cloud::Public);
        cfg.limits.allow_special_use = true; // lab addresses
        let now = std::time::SystemTime::now();
        let all = ["10.231.0.0/28", "10.231.0.16/28", "fd00:231::/120"];
        let (first, _) = validate_and_merge(None, &doc(1, &all), &cfg, now).unwrap();
        // Two of three removed at once: held, still allowed.
        let (held, diff) = validate_and_merge(Some(&first), &doc(2, &all[..1]), &cfg, now).unwrap();
        assert_eq!(diff.held.len(), 2);
        save_state(&dir, &held).unwrap();
        let l = entra_list(&dir).unwrap().unwrap();
        assert_eq!(l.iter().map(|p| p.to_string()).collect::<Vec<_>>(), all);
        std::fs::write(dir.join("state.json"), "{").unwrap();
        assert!(entra_list(&dir).unwrap_err().contains("is unreadable (fix or remove it"), "{:?}", entra_list(&dir));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn jobs_round_trip_through_the_record_and_v1_records_are_read() {
        let dir = std::env::temp_dir().join(format!("vorfw-host-rec-{}", std::process::id()));
        let path = dir.join("applied.json");
        assert_eq!(recorded(&path).unwrap(), None);
        let request = Request::from_json(&json!({"format": vorfw_core::request::REQUEST_FORMAT, "name": "h",
            "addresses": ["10.0.0.1"]}))
        .unwrap();
        let job = Job {
            request,
            backend: Some(BackendKind::Nftables),
            controller: None,
            zones: vec![],
            entra_state_dir: None,
            oidc_state_dir: None,
        };
        record(&path, &job).unwrap();
        assert_eq!(recorded(&path).unwrap(), Some(job));
        // A record written before the request format had a version: its rules list their peers.
        std::fs::write(
            &path,
            r#"{"plan": {"name": "h", "addresses": ["10.0.0.1"], "inbound": [{"id": "r",
            "port": 22, "protocol": "tcp", "sources": ["10.9.0.0/16"], "set": "mgmt", "purpose": "p",
            "label": "l"}]}, "backend": "ufw", "controller": null, "zones": []}"#,
        )
        .unwrap();
        let old = recorded(&path).unwrap().unwrap();
        assert_eq!((old.backend, old.request.inbound.len()), (Some(BackendKind::Ufw), 1));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

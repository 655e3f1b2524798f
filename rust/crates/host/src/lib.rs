//! One host's firewall, converged: pick the backend, gather what only the host knows (the
//! Entra ID list it holds, its resolvers), build the policy, converge, and record what was
//! applied so the Entra ID refresher can re-apply the same plan with a new list.
//!
//! Shared by the `apply` module and the `vorfw-entra apply` refresher; it carries no network
//! stack (the refresher's HTTPS client stays in `vorfw-entra`).

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use vorfw_core::policy::{self, HostFacts, Policy};
use vorfw_core::wire::HostPlan;
use vorfw_firewalld::apply::Target;

/// Where the Entra ID refresher keeps its state (the effective list is read from `state.json`).
pub const DEFAULT_ENTRA_DIR: &str = "/var/lib/vorstream-firewall/entra";
/// Where the last applied request is recorded.
pub const DEFAULT_RECORD: &str = "/etc/vorstream-firewall/applied.json";

/// Everything needed to converge one host (and, recorded, to do it again later).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub plan: HostPlan,
    /// `auto`, `firewalld`, `ufw` or `nftables` (default: the plan's).
    #[serde(default)]
    pub backend: Option<String>,
    #[serde(default)]
    pub controller: Option<IpAddr>,
    /// firewalld zones to manage (default: the zones of the plan addresses' interfaces).
    #[serde(default)]
    pub zones: Vec<String>,
}

/// The result of one converge.
#[derive(Debug, Default)]
pub struct Outcome {
    pub backend: String,
    pub changed: bool,
    pub before: String,
    pub after: String,
    /// What the diff compares ("table inet vorstream", "owned firewalld objects", "ufw").
    pub what: String,
    pub changes: Vec<String>,
    pub warnings: Vec<String>,
    /// Backend-specific result keys.
    pub data: Map<String, Value>,
    pub policy: Policy,
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

/// Which backend to use, given what runs on the host.
fn choose(backend: &str, firewalld_running: bool, ufw_active: bool) -> Result<&'static str, String> {
    Ok(match backend {
        "auto" => match (firewalld_running, ufw_active) {
            (true, true) => {
                return Err(
                    "both firewalld and ufw are active; stop one, or set host_firewall_backend to the one to use"
                        .into(),
                )
            }
            (true, false) => "firewalld",
            (false, true) => "ufw",
            (false, false) => "nftables",
        },
        "firewalld" => "firewalld",
        "ufw" if firewalld_running => {
            return Err("host_firewall_backend is ufw but firewalld is running; stop firewalld or use it".into())
        }
        "ufw" => "ufw",
        "nftables" if firewalld_running || ufw_active => {
            return Err(format!(
                "host_firewall_backend is nftables but {} is active; stop it or choose it as the backend",
                if ufw_active { "ufw" } else { "firewalld" }
            ))
        }
        "nftables" => "nftables",
        other => {
            return Err(format!(
                "host_firewall_backend: invalid value '{other}' (expected one of: auto, firewalld, ufw, nftables)"
            ))
        }
    })
}

/// An exclusive lock next to the record, held while the firewall is changed, so the weekly
/// refresher and a playbook run never converge the same host at once. Released on drop.
pub struct HostLock(#[allow(dead_code)] std::fs::File);

pub fn lock() -> Result<HostLock, String> {
    use std::os::unix::io::AsRawFd;
    let path = record_path().with_file_name("lock");
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    // SAFETY: flock on a descriptor we own; blocks until the other converge is done.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(format!("{}: cannot lock: {}", path.display(), std::io::Error::last_os_error()));
    }
    Ok(HostLock(f))
}

/// Converge the host to `req` with `facts`. Errors are plain sentences (the caller adds the
/// host name); on error the backend has restored the previous state. Unless checking, holds
/// the host lock (see [`lock`]).
pub fn converge(req: &Request, facts: &HostFacts, check: bool) -> Result<Outcome, String> {
    let _lock = if check { None } else { Some(lock()?) };
    let plan = &req.plan;
    let pol = policy::host(plan, req.controller, facts).map_err(|e| e.to_string())?;
    let backend = req.backend.clone().unwrap_or_else(|| plan.backend.clone());
    let target = Target::detect()?;
    let ufw_active = vorfw_ufw::detect().enabled;
    let chosen = choose(&backend, target.is_running(), ufw_active)?;
    let mut out = match chosen {
        "firewalld" => firewalld(req, &pol, target, check)?,
        "nftables" => {
            let paths = vorfw_nftables::apply::Paths::default();
            let r = vorfw_nftables::apply::converge(&paths, &pol, check).map_err(|e| format!("nftables: {e}"))?;
            Outcome {
                changed: !r.changes.is_empty(),
                before: r.before,
                after: r.after,
                what: format!("table {}", vorfw_nftables::TABLE),
                changes: r.changes,
                warnings: r.warnings,
                ..Default::default()
            }
        }
        _ => {
            if !vorfw_ufw::detect().installed {
                return Err("host_firewall_backend is ufw but ufw is not installed".into());
            }
            let r = vorfw_ufw::converge(&pol, check).map_err(|e| format!("ufw: {e}"))?;
            let mut data = Map::new();
            data.insert("rules_added".into(), json!(r.added));
            data.insert("rules_removed".into(), json!(r.removed));
            Outcome {
                changed: r.changed,
                before: r.before,
                after: r.after,
                what: "ufw".into(),
                changes: r.changes,
                warnings: r.warnings,
                data,
                ..Default::default()
            }
        }
    };
    out.backend = chosen.to_string();
    out.warnings.splice(0..0, pol.warnings.iter().cloned());
    out.data.insert("backend".into(), json!(chosen));
    out.data.insert("changes".into(), json!(out.changes));
    out.data.insert("accepts".into(), accepts_json(&pol.accepts));
    out.data.insert(
        "egress".into(),
        json!({
            "mode": if pol.egress.restricted { "restricted" } else { "open" },
            "accepts": accepts_json(&pol.egress.accepts),
            "entra_prefixes": facts.entra.as_ref().filter(|_| plan.entra).map(Vec::len),
        }),
    );
    out.policy = pol;
    Ok(out)
}

fn accepts_json(a: &std::collections::BTreeMap<policy::Accept, BTreeSet<String>>) -> Value {
    json!(a
        .iter()
        .map(|(a, ids)| json!({
            "set": a.set, "family": a.family.suffix(), "protocol": a.protocol.as_str(), "port": a.port,
            "rule_ids": ids,
        }))
        .collect::<Vec<_>>())
}

/// The zones serving the host's plan addresses (the default zone for unbound interfaces).
fn zones(t: &Target, req: &Request, warnings: &mut Vec<String>) -> Result<Vec<String>, String> {
    if !req.zones.is_empty() {
        return Ok(req.zones.clone());
    }
    let plan = &req.plan;
    let wanted: BTreeSet<IpAddr> = plan.addresses.iter().filter_map(|a| a.parse().ok()).collect();
    let ifs = vorfw_shell::interfaces()?;
    let mut names: BTreeSet<String> = ifs.iter().filter(|(_, a)| wanted.contains(a)).map(|(n, _)| n.clone()).collect();
    if names.is_empty() {
        warnings.push(format!(
            "none of the host's plan addresses ({}) is on a local interface (NAT?); using every non-loopback interface's zone",
            plan.addresses.join(", ")
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

fn firewalld(req: &Request, pol: &Policy, t: Target, check: bool) -> Result<Outcome, String> {
    let mut warnings = vec![];
    let zones = zones(&t, req, &mut warnings)?;
    let r = vorfw_firewalld::apply::converge(&t, pol, &zones, &req.plan.remove_zone_services, check)
        .map_err(|e| format!("firewalld: {e}"))?;
    warnings.extend(r.warnings);
    let mut data = Map::new();
    data.insert("firewalld_running".into(), json!(t.is_running()));
    data.insert("zones".into(), json!(zones));
    data.insert("restored".into(), json!(r.restored));
    Ok(Outcome {
        changed: !r.ops.is_empty(),
        before: r.before,
        after: r.after,
        what: "owned firewalld objects".into(),
        changes: r.ops.iter().map(|o| o.to_string()).collect(),
        warnings,
        data,
        ..Default::default()
    })
}

/// Record the request that was just applied (atomically; unchanged records are not rewritten).
pub fn record(path: &Path, req: &Request) -> Result<(), String> {
    let text = serde_json::to_string_pretty(req).map_err(|e| e.to_string())? + "\n";
    if std::fs::read_to_string(path).ok().as_deref() == Some(text.as_str()) {
        return Ok(());
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, &text).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
}

/// The last applied request, if any.
pub fn recorded(path: &Path) -> Result<Option<Request>, String> {
    match std::fs::read_to_string(path) {
        Ok(t) => serde_json::from_str(&t)
            .map(Some)
            .map_err(|e| format!("{}: unreadable ({e}); re-run the host_firewall role", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Re-apply the recorded request with a new Entra ID list (the refresher's apply step).
/// Returns `(changed, one line, details)`. Without a record (the host_firewall role never ran
/// here), or when the host keeps no Entra ID set, there is nothing to apply: the list is only
/// saved, for later runs and perimeter firewalls.
pub fn reapply(prefixes: &[IpNet], check: bool) -> Result<(bool, String, Value), String> {
    let path = record_path();
    let Some(req) = recorded(&path)? else {
        return Ok((
            false,
            format!("no host firewall managed by vorstream.firewall here ({} absent): list saved only", path.display()),
            json!({"applied": false}),
        ));
    };
    if !req.plan.entra {
        return Ok((
            false,
            format!("host {} keeps no Entra ID set (not an OIDC client, or host_firewall_entra false)", req.plan.name),
            json!({"applied": false}),
        ));
    }
    let facts = HostFacts { entra: Some(prefixes.to_vec()), nameservers: host_nameservers() };
    let out = converge(&req, &facts, check).map_err(|e| format!("host {}: {e}", req.plan.name))?;
    let verb = match (out.changed, check) {
        (false, _) => "unchanged",
        (true, true) => "would change",
        (true, false) => "changed",
    };
    let line = format!("{} ({}): {verb}, {} Entra ID prefixes", req.plan.name, out.backend, prefixes.len());
    Ok((
        out.changed,
        line,
        json!({"applied": !check, "host": req.plan.name, "backend": out.backend, "changes": out.changes,
               "warnings": out.warnings, "before": out.before, "after": out.after}),
    ))
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
        assert_eq!(choose("auto", true, false).unwrap(), "firewalld");
        assert_eq!(choose("auto", false, true).unwrap(), "ufw");
        assert_eq!(choose("auto", false, false).unwrap(), "nftables");
        assert!(choose("auto", true, true).unwrap_err().contains("both firewalld and ufw"));
        assert!(choose("nftables", false, true).unwrap_err().contains("ufw is active"));
        assert!(choose("pf", false, false).unwrap_err().contains("invalid value 'pf'"));
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
    fn requests_round_trip_through_the_record() {
        let dir = std::env::temp_dir().join(format!("vorfw-host-rec-{}", std::process::id()));
        let path = dir.join("applied.json");
        assert_eq!(recorded(&path).unwrap(), None);
        let plan: HostPlan = serde_json::from_value(json!({"name": "h", "addresses": ["10.0.0.1"]})).unwrap();
        let req = Request { plan, backend: Some("nftables".into()), controller: None, zones: vec![] };
        record(&path, &req).unwrap();
        assert_eq!(recorded(&path).unwrap(), Some(req));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

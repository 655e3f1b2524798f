//! Ansible module `vorstream.firewall.apply`: make one host's firewall admit exactly its plan.

use serde_json::{json, Map, Value};
use std::collections::BTreeSet;
use std::net::IpAddr;
use vorfw_ansible::{Failure, Module, Outcome};
use vorfw_core::policy;
use vorfw_core::wire::HostPlan;
use vorfw_firewalld::apply::{converge, Target};

fn main() {
    vorfw_ansible::run(body)
}

fn body(m: &mut Module) -> Result<Outcome, Failure> {
    m.allow_only(&["plan", "backend", "controller_address", "zones"])?;
    let plan: HostPlan = match m.args.get("plan") {
        Some(v) => {
            serde_json::from_value(v.clone()).map_err(|e| Failure::new(format!("plan: not a host plan: {e}")))?
        }
        None => return Err(Failure::new("missing required argument: plan")),
    };
    let backend = m.str_arg("backend")?.unwrap_or(&plan.backend).to_string();
    let controller = match m.str_arg("controller_address")? {
        None | Some("") => None,
        Some(s) => Some(
            s.trim()
                .parse::<IpAddr>()
                .map_err(|_| Failure::new(format!("controller_address: '{s}' is not an IP address")))?,
        ),
    };
    let pol = policy::inbound(&plan, controller).map_err(|e| Failure::new(format!("host {}: {e}", plan.name)))?;
    let host = plan.name.clone();
    let fail = |msg: String| Failure::new(format!("host {host}: {msg}"));
    let firewalld_running = Target::detect().map_err(&fail)?;
    let ufw_active = vorfw_ufw::detect().enabled;
    let chosen = match backend.as_str() {
        "auto" => match (firewalld_running.is_running(), ufw_active) {
            (true, true) => {
                return Err(fail(
                    "both firewalld and ufw are active; stop one, or set host_firewall_backend to the one to use"
                        .into(),
                ))
            }
            (true, false) => "firewalld",
            (false, true) => "ufw",
            (false, false) => "nftables",
        },
        "firewalld" => "firewalld",
        "ufw" if firewalld_running.is_running() => {
            return Err(fail("host_firewall_backend is ufw but firewalld is running; stop firewalld or use it".into()))
        }
        "ufw" => "ufw",
        "nftables" if firewalld_running.is_running() || ufw_active => {
            return Err(fail(format!(
                "host_firewall_backend is nftables but {} is active; stop it or choose it as the backend",
                if ufw_active { "ufw" } else { "firewalld" }
            )))
        }
        "nftables" => "nftables",
        other => {
            return Err(fail(format!(
                "host_firewall_backend: invalid value '{other}' (expected one of: auto, firewalld, ufw, nftables)"
            )))
        }
    };
    match chosen {
        "firewalld" => firewalld(m, &plan, &pol, firewalld_running),
        "nftables" => nftables(m, &plan, &pol),
        _ => ufw(m, &plan, &pol),
    }
}

fn ufw(m: &mut Module, plan: &HostPlan, pol: &policy::Policy) -> Result<Outcome, Failure> {
    if !vorfw_ufw::detect().installed {
        return Err(Failure::new(format!("host {}: host_firewall_backend is ufw but ufw is not installed", plan.name)));
    }
    let report =
        vorfw_ufw::converge(pol, m.check_mode).map_err(|e| Failure::new(format!("host {}: ufw: {e}", plan.name)))?;
    for w in &report.warnings {
        m.warn(w.clone());
    }
    let mut data = common(pol);
    data.insert("backend".into(), json!("ufw"));
    data.insert("changes".into(), json!(report.changes));
    data.insert("rules_added".into(), json!(report.added));
    data.insert("rules_removed".into(), json!(report.removed));
    Ok(outcome(plan, report.changed, report.before, report.after, "ufw".to_string(), data))
}

fn nftables(m: &mut Module, plan: &HostPlan, pol: &policy::Policy) -> Result<Outcome, Failure> {
    let paths = vorfw_nftables::apply::Paths::default();
    let report = vorfw_nftables::apply::converge(&paths, pol, m.check_mode)
        .map_err(|e| Failure::new(format!("host {}: nftables: {e}", plan.name)))?;
    for w in &report.warnings {
        m.warn(w.clone());
    }
    let mut data = common(pol);
    data.insert("backend".into(), json!("nftables"));
    data.insert("changes".into(), json!(report.changes));
    Ok(outcome(
        plan,
        !report.changes.is_empty(),
        report.before,
        report.after,
        format!("table {}", vorfw_nftables::TABLE),
        data,
    ))
}

/// The module result: `changed`, the before/after diff of the owned objects, and `data`.
fn outcome(
    plan: &HostPlan,
    changed: bool,
    before: String,
    after: String,
    what: String,
    data: Map<String, Value>,
) -> Outcome {
    Outcome {
        changed,
        diff: Some(json!({
            "before": before, "after": after,
            "before_header": format!("{} ({what})", plan.name),
            "after_header": format!("{} (plan)", plan.name),
        })),
        facts: None,
        data,
    }
}

/// Result keys every backend returns.
fn common(pol: &policy::Policy) -> Map<String, Value> {
    let mut data = Map::new();
    data.insert(
        "accepts".into(),
        json!(pol
            .accepts
            .iter()
            .map(|(a, ids)| json!({
                "set": a.set, "family": a.family.suffix(), "protocol": a.protocol.as_str(), "port": a.port,
                "rule_ids": ids,
            }))
            .collect::<Vec<_>>()),
    );
    data
}

/// The zones serving the host's plan addresses (the default zone for unbound interfaces).
fn zones(t: &Target, plan: &HostPlan, m: &mut Module) -> Result<Vec<String>, Failure> {
    if let Some(Value::Array(z)) = m.args.get("zones") {
        let z: Vec<String> = z.iter().filter_map(Value::as_str).map(str::to_string).collect();
        if !z.is_empty() {
            return Ok(z);
        }
    }
    let wanted: BTreeSet<IpAddr> = plan.addresses.iter().filter_map(|a| a.parse().ok()).collect();
    let ifs = vorfw_shell::interfaces().map_err(Failure::new)?;
    let mut names: BTreeSet<String> = ifs.iter().filter(|(_, a)| wanted.contains(a)).map(|(n, _)| n.clone()).collect();
    if names.is_empty() {
        m.warn(format!(
            "none of the host's plan addresses ({}) is on a local interface (NAT?); using every non-loopback interface's zone",
            plan.addresses.join(", ")
        ));
        names = ifs.iter().filter(|(n, a)| n != "lo" && !a.is_loopback()).map(|(n, _)| n.clone()).collect();
    }
    let mut zones = BTreeSet::new();
    for n in names {
        match t.zone_of_interface(&n).map_err(Failure::new)? {
            Some(z) => zones.insert(z),
            None => zones.insert(t.default_zone().map_err(Failure::new)?),
        };
    }
    if zones.is_empty() {
        zones.insert(t.default_zone().map_err(Failure::new)?);
    }
    Ok(zones.into_iter().collect())
}

fn firewalld(m: &mut Module, plan: &HostPlan, pol: &policy::Policy, t: Target) -> Result<Outcome, Failure> {
    let zones = zones(&t, plan, m)?;
    let report = converge(&t, pol, &zones, &plan.remove_zone_services, m.check_mode)
        .map_err(|e| Failure::new(format!("host {}: firewalld: {e}", plan.name)))?;
    for w in &report.warnings {
        m.warn(w.clone());
    }
    let mut data = common(pol);
    data.insert("backend".into(), json!("firewalld"));
    data.insert("firewalld_running".into(), json!(t.is_running()));
    data.insert("zones".into(), json!(zones));
    data.insert("changes".into(), json!(report.ops.iter().map(|o| o.to_string()).collect::<Vec<_>>()));
    data.insert("restored".into(), json!(report.restored));
    Ok(outcome(plan, !report.ops.is_empty(), report.before, report.after, "owned firewalld objects".to_string(), data))
}

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
    match backend.as_str() {
        "auto" | "firewalld" => firewalld(m, &plan, &pol),
        "ufw" | "nftables" => Err(Failure::new(format!(
            "host {}: host_firewall_backend {backend} is not supported yet by this version of vorstream.firewall",
            plan.name
        ))),
        other => Err(Failure::new(format!(
            "host {}: host_firewall_backend: invalid value '{other}' (expected one of: auto, firewalld, ufw, nftables)",
            plan.name
        ))),
    }
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

fn firewalld(m: &mut Module, plan: &HostPlan, pol: &policy::Policy) -> Result<Outcome, Failure> {
    let t = Target::detect().map_err(|e| Failure::new(format!("host {}: {e}", plan.name)))?;
    let zones = zones(&t, plan, m)?;
    let report = converge(&t, pol, &zones, &plan.remove_zone_services, m.check_mode)
        .map_err(|e| Failure::new(format!("host {}: firewalld: {e}", plan.name)))?;
    for w in &report.warnings {
        m.warn(w.clone());
    }
    let mut data = Map::new();
    data.insert("backend".into(), json!("firewalld"));
    data.insert("firewalld_running".into(), json!(t.is_running()));
    data.insert("zones".into(), json!(zones));
    data.insert("changes".into(), json!(report.ops.iter().map(|o| o.to_string()).collect::<Vec<_>>()));
    data.insert("restored".into(), json!(report.restored));
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
    Ok(Outcome {
        changed: !report.ops.is_empty(),
        diff: Some(json!({
            "before": report.before, "after": report.after,
            "before_header": format!("{} (owned firewalld objects)", plan.name),
            "after_header": format!("{} (plan)", plan.name),
        })),
        facts: None,
        data,
    })
}

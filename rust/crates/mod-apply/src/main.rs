//! Ansible module `vorstream.firewall.apply`: make one host's firewall admit exactly its plan
//! (inbound, and outbound with `host_firewall_egress`), and keep the Entra ID set current.

use ipnet::IpNet;
use serde_json::{json, Value};
use std::net::IpAddr;
use std::path::PathBuf;
use vorfw_ansible::{Failure, Module, Outcome};
use vorfw_core::policy::HostFacts;
use vorfw_core::wire::HostPlan;
use vorfw_host::Request;

fn main() {
    vorfw_ansible::run(body)
}

fn body(m: &mut Module) -> Result<Outcome, Failure> {
    m.allow_only(&["plan", "backend", "controller_address", "zones", "entra_state_dir", "entra_prefixes"])?;
    let plan: HostPlan = match m.args.get("plan") {
        Some(v) => {
            serde_json::from_value(v.clone()).map_err(|e| Failure::new(format!("plan: not a host plan: {e}")))?
        }
        None => return Err(Failure::new("missing required argument: plan")),
    };
    let host = plan.name.clone();
    let fail = |msg: String| Failure::new(format!("host {host}: {msg}"));
    let backend = m.str_arg("backend")?.map(str::to_string);
    let controller = match m.str_arg("controller_address")? {
        None | Some("") => None,
        Some(s) => Some(
            s.trim()
                .parse::<IpAddr>()
                .map_err(|_| Failure::new(format!("controller_address: '{s}' is not an IP address")))?,
        ),
    };
    let zones = match m.args.get("zones") {
        Some(Value::Array(z)) => z.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        _ => vec![],
    };
    let entra_dir = PathBuf::from(m.str_arg("entra_state_dir")?.unwrap_or(vorfw_host::DEFAULT_ENTRA_DIR));
    let entra = match m.args.get("entra_prefixes") {
        None | Some(Value::Null) => vorfw_host::entra_list(&entra_dir).map_err(&fail)?,
        Some(Value::Array(list)) => Some(
            list.iter()
                .map(|v| {
                    v.as_str()
                        .and_then(|s| s.trim().parse::<IpNet>().ok())
                        .ok_or_else(|| Failure::new(format!("entra_prefixes: '{v}' is not a CIDR")))
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
        Some(other) => return Err(Failure::new(format!("entra_prefixes must be a list of CIDRs, got {other}"))),
    };
    let facts = HostFacts { entra, nameservers: vorfw_host::host_nameservers() };
    let req = Request { plan, backend, controller, zones };
    let out = vorfw_host::converge(&req, &facts, m.check_mode).map_err(&fail)?;
    if !m.check_mode {
        // What the Entra ID refresher re-applies with each new list.
        vorfw_host::record(&vorfw_host::record_path(), &req)
            .map_err(|e| fail(format!("applied, but recording the request failed: {e}")))?;
    }
    for w in &out.warnings {
        m.warn(w.clone());
    }
    let name = &req.plan.name;
    Ok(Outcome {
        changed: out.changed,
        diff: Some(json!({
            "before": out.before, "after": out.after,
            "before_header": format!("{name} ({})", out.what),
            "after_header": format!("{name} (plan)"),
        })),
        facts: None,
        data: out.data,
    })
}

//! Ansible module `vorstream.firewall.apply`: make one host's firewall admit exactly its plan
//! (inbound, and outbound with `host_firewall_egress`), and keep the Entra ID set current.

use ipnet::IpNet;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use vorfw_ansible::{Failure, Module, Outcome};
use vorfw_core::policy::HostFacts;
use vorfw_core::request::{Entry, PeerSet, PLAN_FORMAT};
use vorfw_core::{BackendKind, Request};
use vorfw_host::Job;

fn main() {
    vorfw_ansible::run(body)
}

/// The host's request: `plan` is its entry in the plan with `sets` the plan's set table (what
/// the role passes), or a whole request (any format [`Request::from_json`] reads).
fn request(m: &Module) -> Result<Request, Failure> {
    let Some(plan) = m.args.get("plan") else { return Err(Failure::new("missing required argument: plan")) };
    let req = match m.args.get("sets") {
        None | Some(Value::Null) => Request::from_json(plan)?,
        Some(table) => {
            let entry: Entry = serde_json::from_value(plan.clone())
                .map_err(|e| Failure::new(format!("plan: not a host's entry of a {PLAN_FORMAT} plan: {e}")))?;
            let table: BTreeMap<String, PeerSet> = serde_json::from_value(table.clone())
                .map_err(|e| Failure::new(format!("sets: not the set table of a {PLAN_FORMAT} plan: {e}")))?;
            entry.resolve(&table)?
        }
    };
    Ok(req)
}

fn body(m: &mut Module) -> Result<Outcome, Failure> {
    m.allow_only(&["plan", "sets", "backend", "controller_address", "zones", "entra_state_dir", "entra_prefixes"])?;
    let request = request(m)?;
    let host = request.name.clone();
    let fail = |msg: String| Failure::new(format!("host {host}: {msg}"));
    let backend = m.str_arg("backend")?.map(|b| BackendKind::parse("backend", b)).transpose()?;
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
    // Given prefixes, or `None`: the list the host holds, read under the host lock (below).
    let given = match m.args.get("entra_prefixes") {
        None | Some(Value::Null) => None,
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
    let facts = || -> Result<HostFacts, String> {
        let entra = match &given {
            Some(list) => Some(list.clone()),
            None => vorfw_host::entra_list(&entra_dir)?,
        };
        Ok(HostFacts { entra, nameservers: vorfw_host::host_nameservers(), controller: None })
    };
    let job = Job { request, backend, controller, zones };
    let out = vorfw_host::converge(&job, facts, m.check_mode).map_err(&fail)?;
    if !m.check_mode {
        // What the Entra ID refresher re-applies with each new list.
        vorfw_host::record(&vorfw_host::record_path(), &job)
            .map_err(|e| fail(format!("applied, but recording the request failed: {e}")))?;
    }
    let r = out.report;
    for w in &r.warnings {
        m.warn(w.clone());
    }
    Ok(Outcome {
        changed: r.changed(),
        diff: Some(json!({
            "before": r.before, "after": r.after,
            "before_header": format!("{host} ({})", out.what),
            "after_header": format!("{host} (plan)"),
        })),
        facts: None,
        data: r.data,
    })
}

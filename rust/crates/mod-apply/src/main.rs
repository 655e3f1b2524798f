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
    // Started by `apply` itself with commit-confirm: the host's watchdog, not a module run.
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    if args.first().is_some_and(|a| a == vorfw_host::confirm::WATCHDOG_FLAG) {
        vorfw_host::confirm::watchdog_main(&args[1..]);
    }
    vorfw_ansible::run(body)
}

/// The action plugin's second call, over a new connection: confirm the change (`confirm`) or
/// ask how it ended (`confirm_status`).
fn settle(m: &Module) -> Result<Option<Outcome>, Failure> {
    let (Some(token), status) =
        (m.str_arg("confirm")?.or(m.str_arg("confirm_status")?), m.args.contains_key("confirm_status"))
    else {
        return Ok(None);
    };
    m.allow_only(&["confirm", "confirm_status"])?;
    let data = if status { vorfw_host::confirm::status(token) } else { vorfw_host::confirm::confirm(token) };
    // A confirm that comes too late says how the change ended.
    let data = data.map_err(|e| match vorfw_host::confirm::status(token) {
        Ok(state) => Failure::new(e).with("state", state),
        Err(_) => Failure::new(e),
    })?;
    let data = match data {
        Value::Object(o) => o,
        _ => Default::default(),
    };
    Ok(Some(Outcome { changed: false, diff: None, facts: None, data }))
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
    if let Some(done) = settle(m)? {
        return Ok(done);
    }
    m.allow_only(&[
        "plan",
        "sets",
        "backend",
        "controller_address",
        "zones",
        "entra_state_dir",
        "oidc_state_dir",
        "entra_prefixes",
        "confirm_timeout",
        "metrics_dir",
    ])?;
    // node_exporter's textfile directory ("" for none); written only when it exists.
    let metrics_dir = PathBuf::from(m.str_arg("metrics_dir")?.unwrap_or(vorfw_host::metrics::DEFAULT_DIR));
    let started = std::time::Instant::now();
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
    let entra_state_dir = m.str_arg("entra_state_dir")?.map(PathBuf::from);
    let oidc_state_dir = m.str_arg("oidc_state_dir")?.map(PathBuf::from);
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
    let confirm = match m.args.get("confirm_timeout") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64().or_else(|| v.as_str().and_then(|s| s.trim().parse().ok())) {
            Some(0) => None,
            Some(t) => Some(t),
            None => return Err(Failure::new(format!("confirm_timeout: '{v}' is not a number of seconds"))),
        },
    };
    let job = Job { request, backend, controller, zones, entra_state_dir, oidc_state_dir };
    // The lists the host holds are read under the host lock (in converge).
    let facts = || -> Result<HostFacts, String> { job.facts(given.as_deref()) };
    // Records the job too: what the Entra ID refresher re-applies with each new list.
    let run = vorfw_host::Run { check: m.check_mode, confirm };
    let result = vorfw_host::converge(&job, facts, run);
    let metrics = vorfw_host::metrics::RunMetrics {
        host: &host,
        check: m.check_mode,
        at: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0),
        seconds: started.elapsed().as_secs_f64(),
        ok: result.is_ok(),
        changes: result.as_ref().map(|o| o.report.changes.len()).unwrap_or(0),
        backend: result.as_ref().ok().and_then(|o| o.backend).map(|b| b.as_str()),
        policy: result.as_ref().ok().map(|o| &o.policy),
    };
    let written =
        if metrics_dir.as_os_str().is_empty() { Ok(None) } else { vorfw_host::metrics::write(&metrics_dir, &metrics) };
    let out = result.map_err(&fail)?;
    let mut r = out.report;
    match written {
        Ok(Some(path)) => {
            r.data.insert("metrics_file".into(), json!(path));
        }
        Ok(None) => {}
        Err(e) => r.warnings.push(format!("metrics not written: {e}")),
    }
    if let Some(t) = &out.ticket {
        r.data.insert("confirm".into(), json!(t));
    }
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

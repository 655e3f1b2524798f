//! Ansible module `vorstream.firewall.plan`: every host's plan, computed once on the controller.
//!
//! The action plugin passes the inventory as Ansible resolved it (`groups` and the relevant
//! `hostvars`); the module returns the plan exactly as the apply modules consume it: the set
//! table once (`sets`) and each host's entry (`plans`).

use serde_json::{json, Map, Value};
use vorfw_ansible::{Failure, Module, Outcome};
use vorfw_core::{Fleet, Inventory, Matrix};

fn main() {
    vorfw_ansible::run(body)
}

fn body(m: &mut Module) -> Result<Outcome, Failure> {
    m.allow_only(&[
        "groups",
        "hostvars",
        "inventory",
        "hosts",
        "probes",
        "probe_management",
        "probe_coverage",
        "report",
        "verify_results",
        "cloud",
    ])?;
    let inv_json = match (m.args.get("inventory"), m.args.get("groups"), m.args.get("hostvars")) {
        (Some(inv), None, None) => inv.clone(),
        (None, Some(Value::Object(groups)), Some(Value::Object(hostvars))) => {
            let mut top = Map::new();
            for (g, hosts) in groups {
                top.insert(g.clone(), json!({ "hosts": hosts }));
            }
            top.insert("_meta".into(), json!({ "hostvars": hostvars }));
            Value::Object(top)
        }
        _ => return Err(Failure::new(
            "give either 'inventory' (the JSON of ansible-inventory --list) or both 'groups' and 'hostvars' as objects",
        )),
    };
    let inv = Inventory::from_ansible_json(&inv_json)?;
    let mut resolve = vorfw_shell::resolve;
    let plans = vorfw_core::plan(&inv, Matrix::embedded(), &mut resolve)?;
    for w in &plans.warnings {
        m.warn(w.clone());
    }
    // Plans (and probes) only for the hosts asked for; render the rest never.
    let wanted: Option<Vec<&str>> = match m.args.get("hosts") {
        Some(Value::Array(w)) => Some(w.iter().filter_map(Value::as_str).collect()),
        _ => None,
    };
    let selected: Vec<&vorfw_core::HostPlan> =
        plans.hosts.iter().filter(|h| wanted.as_ref().is_none_or(|w| w.contains(&h.name.as_str()))).collect();
    let mut data = Map::new();
    if m.bool_arg("probes", false)? {
        use vorfw_core::verify::{plan_probes, Coverage};
        let with_mgmt = m.bool_arg("probe_management", false)?;
        let coverage = m.str_arg("probe_coverage")?.map(|c| Coverage::parse("probe_coverage", c)).transpose()?;
        let sources: Vec<&str> = selected.iter().map(|h| h.name.as_str()).collect();
        let (probes, covered) =
            plan_probes(&plans, Matrix::embedded(), &sources, with_mgmt, coverage.unwrap_or_default());
        data.insert("probes".into(), json!(probes));
        data.insert("probe_coverage".into(), json!({"summary": covered.sentence(), "counts": covered}));
    }
    // The sign-off page of the whole inventory, with the probe results when given.
    if m.bool_arg("report", false)? {
        use vorfw_core::report::{html, Extras, VerifyResults};
        let verify = match m.args.get("verify_results") {
            None | Some(Value::Null) => None,
            Some(v) => Some(VerifyResults::from_json(v)?),
        };
        data.insert("report_html".into(), json!(html(&plans, Extras { against: None, verify: verify.as_ref() })));
    }
    // The whole inventory as cloud security policy (roles/cloud_security_groups).
    if let Some(c) = m.args.get("cloud").filter(|c| !c.is_null()) {
        use vorfw_core::cloud;
        let o = cloud::CloudOptions::from_json(c)?;
        let p = cloud::policy(&plans, Matrix::embedded(), &o)?;
        let v = match c.get("format").and_then(Value::as_str) {
            Some("azure-nsg") => cloud::azure_nsg(&p, &o)?,
            Some("aws-sg") => cloud::aws_sg(&p, &o)?,
            other => return Err(Failure::new(format!("cloud.format: {other:?} is not one of aws-sg, azure-nsg"))),
        };
        for w in v["warnings"]
            .as_array()
            .into_iter()
            .flatten()
            .chain(v["metadata"]["warnings"].as_array().into_iter().flatten())
        {
            m.warn(w.as_str().unwrap_or_default().to_string());
        }
        data.insert("cloud".into(), v);
    }
    // Each peer set once (`sets`), and per host its rules naming them (`plans`): the apply
    // module takes a host's entry and the table.
    let fleet = Fleet::from_plans(&plans, selected.iter().copied());
    data.insert("format".into(), json!(fleet.format));
    data.insert("host_count".into(), json!(plans.hosts.len()));
    data.insert("sets".into(), json!(fleet.sets));
    data.insert("plans".into(), json!(fleet.hosts));
    Ok(Outcome { changed: false, data, ..Default::default() })
}

//! What the planner and the host read from outside — inventories, host variables, requests
//! (module arguments, records) — gives a result or a clear error, never a panic.

use proptest::prelude::*;
use serde_json::{json, Value};
use vorfw_core::{plan, Inventory, Matrix, Request};

/// Arbitrary JSON, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "[ -~]{0,12}".prop_map(Value::from),
        "(10\\.0\\.0\\.[0-9]{1,3}(/[0-9]{1,2})?|fd00::[0-9a-f]{0,4}|tcp|udp|web|all)".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::from),
            prop::collection::btree_map("[a-z_]{1,8}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// One of the collection's variables, with an arbitrary value.
fn host_var() -> impl Strategy<Value = (String, Value)> {
    let names = vorfw_core::options::KNOWN_VARIABLES.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    (prop::sample::select(names), any_json())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn requests_parse_or_fail_cleanly(v in any_json(), name in "[a-z]{1,6}") {
        let _ = Request::from_json(&v);
        let mut obj = json!({"format": vorfw_core::request::REQUEST_FORMAT, "name": name, "addresses": ["10.0.0.1"]});
        if let (Value::Object(o), Value::Object(extra)) = (&mut obj, &v) {
            o.extend(extra.clone());
        }
        let _ = Request::from_json(&obj);
    }

    #[test]
    fn inventories_and_host_variables_plan_or_fail_cleanly(vars in prop::collection::vec(host_var(), 0..4), top in any_json()) {
        let _ = Inventory::from_ansible_json(&top);
        let hv: serde_json::Map<String, Value> = vars.into_iter().collect();
        let mut h1 = hv.clone();
        h1.insert("ansible_host".into(), json!("10.0.0.1"));
        let inv = json!({"_meta": {"hostvars": {"h1": h1, "h2": {"ansible_host": "10.0.0.2"}}},
                         "web": {"hosts": ["h1", "h2"]}, "consul": {"hosts": ["h2"]}});
        let inv = Inventory::from_ansible_json(&inv).expect("well-formed inventory");
        let mut resolve = |_: &str| Err("no resolver in this test".to_string());
        if let Ok(p) = plan(&inv, Matrix::embedded(), &mut resolve) {
            let _ = vorfw_core::render::json_text(&p);
            let _ = vorfw_core::render::markdown(&p);
        }
    }
}

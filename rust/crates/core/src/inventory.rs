//! The inventory as Ansible resolves it: the JSON printed by `ansible-inventory --list`
//! (groups with hosts and children, and `_meta.hostvars` holding every host's variables with
//! group and host vars already merged). Parsing inventory *sources* is Ansible's job, not ours.

use crate::error::{Error, Result};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, Default)]
pub struct Inventory {
    /// Host names, sorted.
    pub hosts: Vec<String>,
    /// Every group (including `all`) and the hosts in it, children included transitively.
    pub groups: BTreeMap<String, BTreeSet<String>>,
    /// Each host's variables as Ansible resolved them.
    pub hostvars: BTreeMap<String, Map<String, Value>>,
}

impl Inventory {
    /// Build from the output of `ansible-inventory --list`.
    pub fn from_ansible_json(v: &Value) -> Result<Inventory> {
        let top = v
            .as_object()
            .ok_or_else(|| Error::new("inventory: expected a JSON object as printed by `ansible-inventory --list`"))?;
        let mut direct: BTreeMap<&str, (Vec<&str>, Vec<&str>)> = BTreeMap::new();
        for (name, g) in top {
            if name == "_meta" {
                continue;
            }
            let g = g.as_object().ok_or_else(|| Error::new(format!("inventory: group {name} is not an object")))?;
            let list = |key: &str| -> Result<Vec<&str>> {
                match g.get(key) {
                    None | Some(Value::Null) => Ok(vec![]),
                    Some(Value::Array(a)) => a
                        .iter()
                        .map(|x| {
                            x.as_str().ok_or_else(|| {
                                Error::new(format!("inventory: group {name}: {key} must be a list of names"))
                            })
                        })
                        .collect(),
                    Some(_) => Err(Error::new(format!("inventory: group {name}: {key} must be a list"))),
                }
            };
            let (hosts, children) = (list("hosts")?, list("children")?);
            crate::options::no_control("inventory: group name", name)?;
            for h in &hosts {
                crate::options::no_control(&format!("inventory: group {name}: host name"), h)?;
            }
            direct.insert(name.as_str(), (hosts, children));
        }
        let mut hostvars: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
        if let Some(meta) = top.get("_meta") {
            if let Some(hv) = meta.get("hostvars").and_then(Value::as_object) {
                for (h, vars) in hv {
                    crate::options::no_control("inventory: host name", h)?;
                    let vars = vars.as_object().cloned().unwrap_or_default();
                    hostvars.insert(h.clone(), vars);
                }
            }
        }

        // Resolve children transitively (cycle-safe: Ansible forbids cycles, we just stop).
        let mut groups: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for &name in direct.keys() {
            let mut hosts = BTreeSet::new();
            let mut seen = BTreeSet::new();
            let mut stack = vec![name];
            while let Some(g) = stack.pop() {
                if !seen.insert(g) {
                    continue;
                }
                if let Some((hs, children)) = direct.get(g) {
                    hosts.extend(hs.iter().map(|h| h.to_string()));
                    stack.extend(children.iter().copied());
                }
            }
            groups.insert(name.to_string(), hosts);
        }
        let mut all: BTreeSet<String> = groups.values().flatten().cloned().collect();
        all.extend(hostvars.keys().cloned());
        groups.insert("all".to_string(), all.clone());
        for h in &all {
            hostvars.entry(h.clone()).or_default();
        }
        Ok(Inventory { hosts: all.into_iter().collect(), groups, hostvars })
    }

    /// Apply `-e KEY=VALUE` style overrides to every host (extra vars win over everything).
    pub fn override_vars(&mut self, extra: &Map<String, Value>) {
        for vars in self.hostvars.values_mut() {
            for (k, v) in extra {
                vars.insert(k.clone(), v.clone());
            }
        }
    }

    pub fn has_group(&self, g: &str) -> bool {
        self.groups.contains_key(g)
    }

    pub fn group_hosts(&self, g: &str) -> Option<&BTreeSet<String>> {
        self.groups.get(g)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn children_are_resolved_transitively_and_all_has_everyone() {
        let inv = Inventory::from_ansible_json(&json!({
            "_meta": {"hostvars": {"a": {"x": 1}, "b": {}, "c": {}}},
            "all": {"children": ["ungrouped", "backend"]},
            "backend": {"children": ["db"]},
            "db": {"children": ["postgres"]},
            "postgres": {"hosts": ["a"]},
            "ungrouped": {"hosts": ["c"]},
            "super": {"hosts": ["b"]}
        }))
        .unwrap();
        assert_eq!(inv.hosts, vec!["a", "b", "c"]);
        assert!(inv.groups["backend"].contains("a"));
        assert_eq!(inv.groups["all"].len(), 3);
        assert_eq!(inv.hostvars["a"]["x"], 1);
    }

    #[test]
    fn non_object_is_rejected() {
        let e = Inventory::from_ansible_json(&json!([1, 2])).unwrap_err();
        assert!(e.0.contains("ansible-inventory --list"), "{e}");
    }
}

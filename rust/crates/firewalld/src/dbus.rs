//! A running firewalld, over its D-Bus API (org.fedoraproject.FirewallD1).

use crate::model::{is_owned_ipset, is_owned_rule, Ipset, Layer, Op, Owned, PolicyObject, EGRESS_POLICY};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};
use vorfw_core::policy::Family;
use zbus::blocking::Connection;
use zbus::zvariant::{DynamicType, OwnedObjectPath, OwnedValue, Value};

const BUS: &str = "org.fedoraproject.FirewallD1";
const PATH: &str = "/org/fedoraproject/FirewallD1";
const CONFIG_PATH: &str = "/org/fedoraproject/FirewallD1/config";
const IF_MAIN: &str = "org.fedoraproject.FirewallD1";
const IF_ZONE: &str = "org.fedoraproject.FirewallD1.zone";
const IF_IPSET: &str = "org.fedoraproject.FirewallD1.ipset";
const IF_CONFIG: &str = "org.fedoraproject.FirewallD1.config";
const IF_CONFIG_ZONE: &str = "org.fedoraproject.FirewallD1.config.zone";
const IF_CONFIG_IPSET: &str = "org.fedoraproject.FirewallD1.config.ipset";
/// Policy objects (firewalld 0.9 or later).
const IF_POLICY: &str = "org.fedoraproject.FirewallD1.policy";
const IF_CONFIG_POLICY: &str = "org.fedoraproject.FirewallD1.config.policy";

const DESCRIPTION: &str = "Owned by vorstream.firewall: do not edit; changes are overwritten";

/// ipset settings as firewalld passes them: (version, short, description, type, options, entries).
type IpsetSettings = (String, String, String, String, HashMap<String, String>, Vec<String>);
/// Policy settings as firewalld passes them (`getPolicySettings`, `config.policy.getSettings`):
/// keys such as `target`, `ingress_zones`, `egress_zones`, `rich_rules`, `services`, `ports`;
/// empty lists are left out. Setting them (`setPolicySettings`, `update`) changes only the keys
/// given; at runtime a list replaces the current one, and `target` cannot be set at all.
type PolicySettings = HashMap<String, OwnedValue>;

pub struct Firewalld {
    conn: Connection,
}

/// Items in the runtime zones and policies that are not ours: kept across a reload.
#[derive(Debug, Clone, Default)]
pub struct Extras {
    pub zones: Vec<ZoneItems>,
    /// Every policy object but ours (none on firewalld before 0.9).
    pub policies: Vec<PolicyItems>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyItems {
    pub policy: String,
    pub services: BTreeSet<String>,
    pub ports: BTreeSet<(String, String)>,
    pub rich: BTreeSet<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ZoneItems {
    pub zone: String,
    pub interfaces: BTreeSet<String>,
    pub sources: BTreeSet<String>,
    pub services: BTreeSet<String>,
    pub ports: BTreeSet<(String, String)>,
    pub rich: BTreeSet<String>,
}

/// A list of strings from policy settings (absent: empty).
fn strings(s: &PolicySettings, key: &str) -> Result<Vec<String>, String> {
    match s.get(key) {
        None => Ok(vec![]),
        Some(v) => v
            .try_clone()
            .map_err(|e| e.to_string())
            .and_then(|v| Vec::<String>::try_from(v).map_err(|e| e.to_string()))
            .map_err(|e| format!("firewalld policy setting {key}: unexpected value: {e}")),
    }
}

/// Port/protocol pairs from policy settings (absent: empty).
fn port_pairs(s: &PolicySettings) -> Result<BTreeSet<(String, String)>, String> {
    match s.get("ports") {
        None => Ok(BTreeSet::new()),
        Some(v) => v
            .try_clone()
            .map_err(|e| e.to_string())
            .and_then(|v| Vec::<(String, String)>::try_from(v).map_err(|e| e.to_string()))
            .map(|v| v.into_iter().collect())
            .map_err(|e| format!("firewalld policy setting ports: unexpected value: {e}")),
    }
}

fn policy_object(s: &PolicySettings) -> Result<PolicyObject, String> {
    let target = match s.get("target") {
        Some(v) => String::try_from(v.try_clone().map_err(|e| e.to_string())?)
            .map_err(|e| format!("firewalld policy setting target: unexpected value: {e}"))?,
        None => String::new(),
    };
    Ok(PolicyObject {
        target,
        ingress_zones: strings(s, "ingress_zones")?.into_iter().collect(),
        egress_zones: strings(s, "egress_zones")?.into_iter().collect(),
        rich: strings(s, "rich_rules")?.into_iter().collect(),
    })
}

/// Settings that set one list.
fn list_setting(key: &str, items: impl IntoIterator<Item = String>) -> HashMap<&str, Value<'static>> {
    HashMap::from([(key, Value::from(items.into_iter().collect::<Vec<String>>()))])
}

/// Whether a D-Bus error says the daemon has no such method or interface (firewalld < 0.9 has
/// no policy objects).
fn unsupported(e: &str) -> bool {
    e.contains("UnknownMethod") || e.contains("UnknownInterface") || e.contains("UnknownObject")
}

/// The `maxelem` option, if set (a value firewalld would not accept reads as unset).
fn maxelem_of(settings: &IpsetSettings) -> Option<u32> {
    settings.4.get("maxelem").and_then(|v| v.trim().parse().ok())
}

fn family_of(settings: &IpsetSettings) -> Family {
    match settings.4.get("family").map(String::as_str) {
        Some("inet6") => Family::V6,
        _ => Family::V4,
    }
}

impl Firewalld {
    /// Connect to the system bus; `Ok(None)` when firewalld is not running there.
    pub fn connect() -> Result<Option<Firewalld>, String> {
        let conn = match Connection::system() {
            Ok(c) => c,
            // No system bus at all: firewalld cannot be running.
            Err(_) => return Ok(None),
        };
        let fw = Firewalld { conn };
        let owned: bool = fw
            .call("/org/freedesktop/DBus", "org.freedesktop.DBus", "NameHasOwner", &(BUS,), "org.freedesktop.DBus")
            .map_err(|e| format!("D-Bus: {e}"))?;
        if !owned {
            return Ok(None);
        }
        let state: OwnedValue = fw.call(PATH, "org.freedesktop.DBus.Properties", "Get", &(IF_MAIN, "state"), BUS)?;
        let state: String = state.try_into().map_err(|e| format!("firewalld state: {e}"))?;
        if state != "RUNNING" {
            return Err(format!("firewalld is {state}, not RUNNING; try again when it has started"));
        }
        Ok(Some(fw))
    }

    fn call<B, R>(&self, path: &str, iface: &str, method: &str, body: &B, dest: &str) -> Result<R, String>
    where
        B: Serialize + DynamicType,
        R: DeserializeOwned + zbus::zvariant::Type,
    {
        let short = iface.rsplit('.').next().unwrap_or(iface);
        let msg = self
            .conn
            .call_method(Some(dest), path, Some(iface), method, body)
            .map_err(|e| format!("firewalld {short}.{method}: {}", describe(&e)))?;
        msg.body().deserialize::<R>().map_err(|e| format!("firewalld {short}.{method}: unexpected reply: {e}"))
    }

    fn fw<B, R>(&self, path: &str, iface: &str, method: &str, body: &B) -> Result<R, String>
    where
        B: Serialize + DynamicType,
        R: DeserializeOwned + zbus::zvariant::Type,
    {
        self.call(path, iface, method, body, BUS)
    }

    fn unit<B: Serialize + DynamicType>(&self, path: &str, iface: &str, method: &str, body: &B) -> Result<(), String> {
        let short = iface.rsplit('.').next().unwrap_or(iface);
        self.conn
            .call_method(Some(BUS), path, Some(iface), method, body)
            .map(|_| ())
            .map_err(|e| format!("firewalld {short}.{method}: {}", describe(&e)))
    }

    pub fn default_zone(&self) -> Result<String, String> {
        self.fw(PATH, IF_MAIN, "getDefaultZone", &())
    }

    /// The daemon's version (its `version` property, "1.3.3").
    pub fn version(&self) -> Result<String, String> {
        let v: OwnedValue = self.call(PATH, "org.freedesktop.DBus.Properties", "Get", &(IF_MAIN, "version"), BUS)?;
        v.try_into().map_err(|e| format!("firewalld version: {e}"))
    }

    /// The zone an interface is bound to, `None` if unbound (then the default zone serves it).
    pub fn zone_of_interface(&self, iface: &str) -> Result<Option<String>, String> {
        let z: String = self.fw(PATH, IF_ZONE, "getZoneOfInterface", &(iface,))?;
        Ok(if z.is_empty() { None } else { Some(z) })
    }

    fn config_zone(&self, zone: &str) -> Result<OwnedObjectPath, String> {
        self.fw(CONFIG_PATH, IF_CONFIG, "getZoneByName", &(zone,))
    }

    fn config_ipset(&self, name: &str) -> Result<OwnedObjectPath, String> {
        self.fw(CONFIG_PATH, IF_CONFIG, "getIPSetByName", &(name,))
    }

    fn config_policy(&self, name: &str) -> Result<OwnedObjectPath, String> {
        self.fw(CONFIG_PATH, IF_CONFIG, "getPolicyByName", &(name,))
    }

    /// The names of the policy objects in one layer; empty when firewalld predates them.
    fn policy_names(&self, layer: Layer) -> Result<Vec<String>, String> {
        let r: Result<Vec<String>, String> = match layer {
            Layer::Runtime => self.fw(PATH, IF_POLICY, "getPolicies", &()),
            Layer::Permanent => self.fw(CONFIG_PATH, IF_CONFIG, "getPolicyNames", &()),
        };
        match r {
            Err(e) if unsupported(&e) => Ok(vec![]),
            r => r,
        }
    }

    fn policy_settings(&self, layer: Layer, name: &str) -> Result<PolicySettings, String> {
        match layer {
            Layer::Runtime => self.fw(PATH, IF_POLICY, "getPolicySettings", &(name,)),
            Layer::Permanent => {
                let p = self.config_policy(name)?;
                self.fw(p.as_str(), IF_CONFIG_POLICY, "getSettings", &())
            }
        }
    }

    /// Set some settings of a policy object (only the keys given change).
    fn set_policy_settings(&self, layer: Layer, name: &str, settings: HashMap<&str, Value<'_>>) -> Result<(), String> {
        match layer {
            Layer::Runtime => self.unit(PATH, IF_POLICY, "setPolicySettings", &(name, settings)),
            Layer::Permanent => {
                let p = self.config_policy(name)?;
                self.unit(p.as_str(), IF_CONFIG_POLICY, "update", &(settings,))
            }
        }
    }

    /// Add or remove one rich rule of a policy object. firewalld's D-Bus API has no per-rule
    /// call for policies, so the whole list is read and written back.
    fn edit_policy_rule(&self, layer: Layer, name: &str, rule: &str, add: bool) -> Result<(), String> {
        let mut rules = strings(&self.policy_settings(layer, name)?, "rich_rules")?;
        if add {
            if rules.iter().any(|r| r == rule) {
                return Ok(());
            }
            rules.push(rule.to_string());
        } else {
            rules.retain(|r| r != rule);
        }
        self.set_policy_settings(layer, name, list_setting("rich_rules", rules))
    }

    /// Our policy object in one layer, if it exists.
    fn read_egress(&self, layer: Layer) -> Result<Option<PolicyObject>, String> {
        if !self.policy_names(layer)?.iter().any(|n| n == EGRESS_POLICY) {
            return Ok(None);
        }
        policy_object(&self.policy_settings(layer, EGRESS_POLICY)?).map(Some)
    }

    /// Our objects in one layer, for the given zones, plus which of `remove_services` are
    /// still enabled there.
    pub fn read(&self, layer: Layer, zones: &[String], remove_services: &[String]) -> Result<Owned, String> {
        let mut o = Owned::default();
        match layer {
            Layer::Runtime => {
                let names: Vec<String> = self.fw(PATH, IF_IPSET, "getIPSets", &())?;
                for n in names.into_iter().filter(|n| is_owned_ipset(n)) {
                    let s: IpsetSettings = self.fw(PATH, IF_IPSET, "getIPSetSettings", &(n.as_str(),))?;
                    let entries: Vec<String> = self.fw(PATH, IF_IPSET, "getEntries", &(n.as_str(),))?;
                    let (family, maxelem) = (family_of(&s), maxelem_of(&s));
                    o.ipsets.insert(n, Ipset { family, maxelem, entries: entries.into_iter().collect() });
                }
                for z in zones {
                    let rules: Vec<String> = self.fw(PATH, IF_ZONE, "getRichRules", &(z.as_str(),))?;
                    o.rich.insert(z.clone(), rules.into_iter().filter(|r| is_owned_rule(r)).collect());
                    if !remove_services.is_empty() {
                        let svcs: Vec<String> = self.fw(PATH, IF_ZONE, "getServices", &(z.as_str(),))?;
                        o.services
                            .insert(z.clone(), svcs.into_iter().filter(|s| remove_services.contains(s)).collect());
                    }
                }
            }
            Layer::Permanent => {
                let names: Vec<String> = self.fw(CONFIG_PATH, IF_CONFIG, "getIPSetNames", &())?;
                for n in names.into_iter().filter(|n| is_owned_ipset(n)) {
                    let p = self.config_ipset(&n)?;
                    let s: IpsetSettings = self.fw(p.as_str(), IF_CONFIG_IPSET, "getSettings", &())?;
                    let (family, maxelem) = (family_of(&s), maxelem_of(&s));
                    o.ipsets.insert(n, Ipset { family, maxelem, entries: s.5.into_iter().collect() });
                }
                for z in zones {
                    let p = self.config_zone(z)?;
                    let rules: Vec<String> = self.fw(p.as_str(), IF_CONFIG_ZONE, "getRichRules", &())?;
                    o.rich.insert(z.clone(), rules.into_iter().filter(|r| is_owned_rule(r)).collect());
                    if !remove_services.is_empty() {
                        let svcs: Vec<String> = self.fw(p.as_str(), IF_CONFIG_ZONE, "getServices", &())?;
                        o.services
                            .insert(z.clone(), svcs.into_iter().filter(|s| remove_services.contains(s)).collect());
                    }
                }
            }
        }
        o.egress = self.read_egress(layer)?;
        Ok(o)
    }

    pub fn exec(&self, op: &Op) -> Result<(), String> {
        match op {
            Op::NewIpset { name, family, maxelem } => {
                let mut options = HashMap::from([("maxelem".to_string(), maxelem.to_string())]);
                if *family == Family::V6 {
                    options.insert("family".to_string(), "inet6".to_string());
                }
                let settings: IpsetSettings = (
                    String::new(),
                    String::new(),
                    "Owned by vorstream.firewall: do not edit; changes are overwritten".into(),
                    "hash:net".into(),
                    options,
                    vec![],
                );
                let _: OwnedObjectPath = self.fw(CONFIG_PATH, IF_CONFIG, "addIPSet", &(name.as_str(), settings))?;
                Ok(())
            }
            Op::SetEntries { layer: Layer::Runtime, name, entries } => {
                let e: Vec<&str> = entries.iter().map(String::as_str).collect();
                self.unit(PATH, IF_IPSET, "setEntries", &(name.as_str(), e))
            }
            Op::SetEntries { layer: Layer::Permanent, name, entries } => {
                let p = self.config_ipset(name)?;
                let e: Vec<&str> = entries.iter().map(String::as_str).collect();
                self.unit(p.as_str(), IF_CONFIG_IPSET, "setEntries", &(e,))
            }
            Op::ResizeIpset { name, maxelem } => {
                let p = self.config_ipset(name)?;
                let mut s: IpsetSettings = self.fw(p.as_str(), IF_CONFIG_IPSET, "getSettings", &())?;
                s.4.insert("maxelem".to_string(), maxelem.to_string());
                self.unit(p.as_str(), IF_CONFIG_IPSET, "update", &(s,))
            }
            Op::DeleteIpset { name } => {
                let p = self.config_ipset(name)?;
                self.unit(p.as_str(), IF_CONFIG_IPSET, "remove", &())
            }
            Op::AddRich { layer: Layer::Runtime, zone, rule } => {
                let _: String = self.fw(PATH, IF_ZONE, "addRichRule", &(zone.as_str(), rule.as_str(), 0i32))?;
                Ok(())
            }
            Op::RemoveRich { layer: Layer::Runtime, zone, rule } => {
                let _: String = self.fw(PATH, IF_ZONE, "removeRichRule", &(zone.as_str(), rule.as_str()))?;
                Ok(())
            }
            Op::AddRich { layer: Layer::Permanent, zone, rule } => {
                let p = self.config_zone(zone)?;
                self.unit(p.as_str(), IF_CONFIG_ZONE, "addRichRule", &(rule.as_str(),))
            }
            Op::RemoveRich { layer: Layer::Permanent, zone, rule } => {
                let p = self.config_zone(zone)?;
                self.unit(p.as_str(), IF_CONFIG_ZONE, "removeRichRule", &(rule.as_str(),))
            }
            Op::AddService { layer: Layer::Runtime, zone, service } => {
                let _: String = self.fw(PATH, IF_ZONE, "addService", &(zone.as_str(), service.as_str(), 0i32))?;
                Ok(())
            }
            Op::RemoveService { layer: Layer::Runtime, zone, service } => {
                let _: String = self.fw(PATH, IF_ZONE, "removeService", &(zone.as_str(), service.as_str()))?;
                Ok(())
            }
            Op::AddService { layer: Layer::Permanent, zone, service } => {
                let p = self.config_zone(zone)?;
                self.unit(p.as_str(), IF_CONFIG_ZONE, "addService", &(service.as_str(),))
            }
            Op::RemoveService { layer: Layer::Permanent, zone, service } => {
                let p = self.config_zone(zone)?;
                self.unit(p.as_str(), IF_CONFIG_ZONE, "removeService", &(service.as_str(),))
            }
            Op::NewPolicy { name, target, ingress_zones, egress_zones } => {
                let settings: HashMap<&str, Value<'_>> = HashMap::from([
                    ("description", Value::from(DESCRIPTION)),
                    ("target", Value::from(target.as_str())),
                    ("ingress_zones", Value::from(ingress_zones.iter().cloned().collect::<Vec<String>>())),
                    ("egress_zones", Value::from(egress_zones.iter().cloned().collect::<Vec<String>>())),
                ]);
                let r: Result<OwnedObjectPath, String> =
                    self.fw(CONFIG_PATH, IF_CONFIG, "addPolicy", &(name.as_str(), settings));
                match r {
                    Err(e) if unsupported(&e) => Err(format!("{e}: policy objects need firewalld 0.9 or later")),
                    r => r.map(|_| ()),
                }
            }
            Op::SetPolicyTarget { name, target } => self.set_policy_settings(
                Layer::Permanent,
                name,
                HashMap::from([("target", Value::from(target.as_str()))]),
            ),
            Op::DeletePolicy { name } => {
                let p = self.config_policy(name)?;
                self.unit(p.as_str(), IF_CONFIG_POLICY, "remove", &())
            }
            Op::AddPolicyRich { layer, policy, rule } => self.edit_policy_rule(*layer, policy, rule, true),
            Op::RemovePolicyRich { layer, policy, rule } => self.edit_policy_rule(*layer, policy, rule, false),
            Op::Reload => self.unit(PATH, IF_MAIN, "reload", &()),
        }
    }

    /// Every runtime zone's items that are not ours (a reload would drop runtime-only ones).
    pub fn extras(&self) -> Result<Extras, String> {
        let zones: Vec<String> = self.fw(PATH, IF_ZONE, "getZones", &())?;
        let mut out = Extras::default();
        for z in zones {
            let zs = z.as_str();
            let interfaces: Vec<String> = self.fw(PATH, IF_ZONE, "getInterfaces", &(zs,))?;
            let sources: Vec<String> = self.fw(PATH, IF_ZONE, "getSources", &(zs,))?;
            let services: Vec<String> = self.fw(PATH, IF_ZONE, "getServices", &(zs,))?;
            let ports: Vec<Vec<String>> = self.fw(PATH, IF_ZONE, "getPorts", &(zs,))?;
            let rich: Vec<String> = self.fw(PATH, IF_ZONE, "getRichRules", &(zs,))?;
            out.zones.push(ZoneItems {
                zone: z.clone(),
                interfaces: interfaces.into_iter().collect(),
                sources: sources.into_iter().collect(),
                services: services.into_iter().collect(),
                ports: ports
                    .into_iter()
                    .filter_map(|p| match p.as_slice() {
                        [port, proto] => Some((port.clone(), proto.clone())),
                        _ => None,
                    })
                    .collect(),
                rich: rich.into_iter().filter(|r| !is_owned_rule(r)).collect(),
            });
        }
        for p in self.policy_names(Layer::Runtime)? {
            if p == EGRESS_POLICY {
                continue;
            }
            let s = self.policy_settings(Layer::Runtime, &p)?;
            out.policies.push(PolicyItems {
                policy: p,
                services: strings(&s, "services")?.into_iter().collect(),
                ports: port_pairs(&s)?,
                rich: strings(&s, "rich_rules")?.into_iter().collect(),
            });
        }
        Ok(out)
    }

    /// Put back runtime items a reload dropped. Returns what was restored, in words.
    pub fn restore(&self, before: &Extras) -> Result<Vec<String>, String> {
        let now = self.extras()?;
        let mut restored = vec![];
        for b in &before.zones {
            let n = now.zones.iter().find(|z| z.zone == b.zone).cloned().unwrap_or_default();
            let z = b.zone.as_str();
            for i in b.interfaces.difference(&n.interfaces) {
                let _: String = self.fw(PATH, IF_ZONE, "changeZoneOfInterface", &(z, i.as_str()))?;
                restored.push(format!("zone {z}: interface {i}"));
            }
            for s in b.sources.difference(&n.sources) {
                let _: String = self.fw(PATH, IF_ZONE, "changeZoneOfSource", &(z, s.as_str()))?;
                restored.push(format!("zone {z}: source {s}"));
            }
            for s in b.services.difference(&n.services) {
                let _: String = self.fw(PATH, IF_ZONE, "addService", &(z, s.as_str(), 0i32))?;
                restored.push(format!("zone {z}: service {s}"));
            }
            for (port, proto) in b.ports.difference(&n.ports) {
                let _: String = self.fw(PATH, IF_ZONE, "addPort", &(z, port.as_str(), proto.as_str(), 0i32))?;
                restored.push(format!("zone {z}: port {port}/{proto}"));
            }
            for r in b.rich.difference(&n.rich) {
                let _: String = self.fw(PATH, IF_ZONE, "addRichRule", &(z, r.as_str(), 0i32))?;
                restored.push(format!("zone {z}: {r}"));
            }
        }
        for b in &before.policies {
            // A policy that is gone was deleted from the permanent configuration: leave it be.
            let Some(n) = now.policies.iter().find(|p| p.policy == b.policy) else { continue };
            let p = b.policy.as_str();
            // Runtime lists replace the current ones: give back the union, so nothing goes.
            let mut settings: HashMap<&str, Value<'_>> = HashMap::new();
            if !b.services.is_subset(&n.services) {
                restored.extend(b.services.difference(&n.services).map(|s| format!("policy {p}: service {s}")));
                settings.extend(list_setting("services", n.services.union(&b.services).cloned()));
            }
            if !b.ports.is_subset(&n.ports) {
                restored.extend(
                    b.ports.difference(&n.ports).map(|(port, proto)| format!("policy {p}: port {port}/{proto}")),
                );
                settings
                    .insert("ports", Value::from(n.ports.union(&b.ports).cloned().collect::<Vec<(String, String)>>()));
            }
            if !b.rich.is_subset(&n.rich) {
                restored.extend(b.rich.difference(&n.rich).map(|r| format!("policy {p}: {r}")));
                settings.extend(list_setting("rich_rules", n.rich.union(&b.rich).cloned()));
            }
            if !settings.is_empty() {
                self.set_policy_settings(Layer::Runtime, p, settings)?;
            }
        }
        Ok(restored)
    }

    /// What the zones admit besides our rules (services, ports): for the operator to know.
    /// What else `zones` admit from anywhere once the run is done: their services and ports,
    /// less the services of `removed` (`host_firewall_remove_zone_services`, removed by it).
    pub fn foreign_openings(&self, zones: &[String], removed: &[String]) -> Result<Vec<String>, String> {
        let mut out = vec![];
        for z in zones {
            let mut services: Vec<String> = self.fw(PATH, IF_ZONE, "getServices", &(z.as_str(),))?;
            services.retain(|s| !removed.contains(s));
            let ports: Vec<Vec<String>> = self.fw(PATH, IF_ZONE, "getPorts", &(z.as_str(),))?;
            if !services.is_empty() {
                out.push(format!(
                    "zone {z} also admits services {} from anywhere (not managed by vorstream.firewall)",
                    services.join(", ")
                ));
            }
            if !ports.is_empty() {
                let p: Vec<String> = ports.iter().map(|p| p.join("/")).collect();
                out.push(format!(
                    "zone {z} also admits ports {} from anywhere (not managed by vorstream.firewall)",
                    p.join(", ")
                ));
            }
        }
        Ok(out)
    }
}

fn describe(e: &zbus::Error) -> String {
    match e {
        zbus::Error::MethodError(name, Some(detail), _) => format!("{detail} ({})", name.as_str()),
        other => other.to_string(),
    }
}

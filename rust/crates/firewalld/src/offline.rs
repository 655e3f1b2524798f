//! firewalld's permanent configuration when the daemon is not running, edited with
//! `firewall-offline-cmd` (firewalld's own offline tool, so the XML stays firewalld's).

use crate::model::{is_owned_ipset, is_owned_rule, Ipset, Layer, Op, Owned, PolicyObject, EGRESS_POLICY};
use vorfw_core::policy::Family;

const DESCRIPTION: &str = "Owned by vorstream.firewall: do not edit; changes are overwritten";

pub struct Offline {
    program: String,
}

impl Offline {
    pub fn new() -> Result<Offline, String> {
        let program = "firewall-offline-cmd".to_string();
        Ok(Offline { program })
    }

    fn run(&self, args: &[&str]) -> Result<String, String> {
        vorfw_sys::Cmd::new(&self.program, args).run().map(|o| o.stdout).map_err(|e| {
            if e.starts_with("cannot run") {
                format!("{e} (is firewalld installed?)")
            } else {
                e
            }
        })
    }

    /// `firewall-offline-cmd --version`.
    pub fn version(&self) -> Result<String, String> {
        Ok(self.run(&["--version"])?.trim().to_string())
    }

    pub fn default_zone(&self) -> Result<String, String> {
        Ok(self.run(&["--get-default-zone"])?.trim().to_string())
    }

    pub fn zone_of_interface(&self, iface: &str) -> Result<Option<String>, String> {
        match self.run(&[&format!("--get-zone-of-interface={iface}")]) {
            Ok(z) if !z.trim().is_empty() && z.trim() != "no zone" => Ok(Some(z.trim().to_string())),
            _ => Ok(None),
        }
    }

    pub fn read(&self, zones: &[String], remove_services: &[String]) -> Result<Owned, String> {
        let mut o = Owned::default();
        for name in self.run(&["--get-ipsets"])?.split_whitespace().filter(|n| is_owned_ipset(n)) {
            let info = self.run(&[&format!("--info-ipset={name}")])?;
            o.ipsets.insert(name.to_string(), parse_ipset_info(&info));
        }
        for z in zones {
            let rules = self.run(&[&format!("--zone={z}"), "--list-rich-rules"])?;
            let owned = rules.lines().map(str::trim).filter(|r| is_owned_rule(r)).map(str::to_string);
            o.rich.insert(z.clone(), owned.collect());
            if !remove_services.is_empty() {
                let svcs = self.run(&[&format!("--zone={z}"), "--list-services"])?;
                let present =
                    svcs.split_whitespace().filter(|s| remove_services.iter().any(|r| r == s)).map(str::to_string);
                o.services.insert(z.clone(), present.collect());
            }
        }
        o.egress = self.read_egress()?;
        Ok(o)
    }

    /// Our policy object, if it exists (never on firewalld before 0.9, which has no policies).
    fn read_egress(&self) -> Result<Option<PolicyObject>, String> {
        let names = match self.run(&["--get-policies"]) {
            Ok(n) => n,
            Err(e) if e.contains("unrecognized arguments") => return Ok(None),
            Err(e) => return Err(e),
        };
        if !names.split_whitespace().any(|n| n == EGRESS_POLICY) {
            return Ok(None);
        }
        // One run (each costs the better part of a second): the info lists `key: value` lines,
        // rich rules last, one per line after `rich rules:`.
        let info = self.run(&[&format!("--info-policy={EGRESS_POLICY}")])?;
        Ok(Some(parse_policy_info(&info)))
    }

    /// Create a policy object; one setting per run (firewall-offline-cmd takes one action at a
    /// time). A half-made policy is deleted again, so a failure leaves nothing behind.
    fn new_policy(
        &self,
        name: &str,
        target: &str,
        ingress: &std::collections::BTreeSet<String>,
        egress: &std::collections::BTreeSet<String>,
    ) -> Result<(), String> {
        self.run(&[&format!("--new-policy={name}")])?;
        let policy = format!("--policy={name}");
        let mut steps = vec![format!("--set-target={target}"), format!("--set-description={DESCRIPTION}")];
        steps.extend(ingress.iter().map(|z| format!("--add-ingress-zone={z}")));
        steps.extend(egress.iter().map(|z| format!("--add-egress-zone={z}")));
        for step in &steps {
            if let Err(e) = self.run(&[&policy, step]) {
                let _ = self.run(&[&format!("--delete-policy={name}")]);
                return Err(e);
            }
        }
        Ok(())
    }

    fn new_ipset(&self, name: &str, family: Family, maxelem: u32) -> Result<(), String> {
        let mut args =
            vec![format!("--new-ipset={name}"), "--type=hash:net".to_string(), format!("--option=maxelem={maxelem}")];
        if family == Family::V6 {
            args.push("--option=family=inet6".into());
        }
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        self.run(&a).map(|_| ())
    }

    pub fn exec(&self, op: &Op) -> Result<(), String> {
        let zone_arg = |zone: &str, what: String| -> Result<(), String> {
            self.run(&[&format!("--zone={zone}"), &what]).map(|_| ())
        };
        match op {
            Op::NewIpset { name, family, maxelem } => self.new_ipset(name, *family, *maxelem),
            Op::ResizeIpset { name, maxelem } => {
                // firewall-offline-cmd cannot change an option: the set is made again, larger,
                // with its entries (the zones' rules name it, and nothing runs meanwhile).
                let info = parse_ipset_info(&self.run(&[&format!("--info-ipset={name}")])?);
                self.run(&[&format!("--delete-ipset={name}")])?;
                self.new_ipset(name, info.family, *maxelem)?;
                if !info.entries.is_empty() {
                    let list: Vec<String> = info.entries.into_iter().collect();
                    let f = temp_list(&list)?;
                    self.run(&[&format!("--ipset={name}"), &format!("--add-entries-from-file={}", f.display())])?;
                }
                Ok(())
            }
            Op::SetEntries { layer: Layer::Permanent, name, entries } => {
                // Replace the entries: remove what is there, then add from a file (one run each).
                let current = self.read_entries(name)?;
                if !current.is_empty() {
                    let f = temp_list(&current)?;
                    self.run(&[&format!("--ipset={name}"), &format!("--remove-entries-from-file={}", f.display())])?;
                }
                if !entries.is_empty() {
                    let list: Vec<String> = entries.iter().cloned().collect();
                    let f = temp_list(&list)?;
                    self.run(&[&format!("--ipset={name}"), &format!("--add-entries-from-file={}", f.display())])?;
                }
                Ok(())
            }
            Op::DeleteIpset { name } => self.run(&[&format!("--delete-ipset={name}")]).map(|_| ()),
            Op::AddRich { layer: Layer::Permanent, zone, rule } => zone_arg(zone, format!("--add-rich-rule={rule}")),
            Op::RemoveRich { layer: Layer::Permanent, zone, rule } => {
                zone_arg(zone, format!("--remove-rich-rule={rule}"))
            }
            Op::AddService { layer: Layer::Permanent, zone, service } => {
                zone_arg(zone, format!("--add-service={service}"))
            }
            Op::RemoveService { layer: Layer::Permanent, zone, service } => {
                zone_arg(zone, format!("--remove-service-from-zone={service}"))
            }
            Op::NewPolicy { name, target, ingress_zones, egress_zones } => {
                self.new_policy(name, target, ingress_zones, egress_zones)
            }
            Op::SetPolicyTarget { name, target } => {
                self.run(&[&format!("--policy={name}"), &format!("--set-target={target}")]).map(|_| ())
            }
            Op::DeletePolicy { name } => self.run(&[&format!("--delete-policy={name}")]).map(|_| ()),
            Op::AddPolicyRich { layer: Layer::Permanent, policy, rule } => {
                self.run(&[&format!("--policy={policy}"), &format!("--add-rich-rule={rule}")]).map(|_| ())
            }
            Op::RemovePolicyRich { layer: Layer::Permanent, policy, rule } => {
                self.run(&[&format!("--policy={policy}"), &format!("--remove-rich-rule={rule}")]).map(|_| ())
            }
            // Without a daemon there is no runtime layer to change.
            Op::SetEntries { layer: Layer::Runtime, .. }
            | Op::AddPolicyRich { layer: Layer::Runtime, .. }
            | Op::RemovePolicyRich { layer: Layer::Runtime, .. }
            | Op::AddRich { layer: Layer::Runtime, .. }
            | Op::RemoveRich { layer: Layer::Runtime, .. }
            | Op::AddService { layer: Layer::Runtime, .. }
            | Op::RemoveService { layer: Layer::Runtime, .. }
            | Op::Reload => Ok(()),
        }
    }

    fn read_entries(&self, name: &str) -> Result<Vec<String>, String> {
        Ok(self.run(&[&format!("--ipset={name}"), "--get-entries"])?.split_whitespace().map(str::to_string).collect())
    }
}

fn temp_list(items: &[String]) -> Result<vorfw_sys::TempPath, String> {
    let text: String = items.iter().map(|i| format!("{i}\n")).collect();
    vorfw_sys::private_file(text.as_bytes())
}

/// `firewall-offline-cmd --info-ipset=NAME`: the family (`options: family=inet6`) and the
/// entries (`entries: a b c`). Anything else is ignored.
pub fn parse_ipset_info(info: &str) -> Ipset {
    let mut family = Family::V4;
    let mut maxelem = None;
    let mut entries = Default::default();
    for line in info.lines() {
        let line = line.trim();
        if let Some(opts) = line.strip_prefix("options:") {
            if opts.split_whitespace().any(|o| o == "family=inet6") {
                family = Family::V6;
            }
            maxelem = opts.split_whitespace().find_map(|o| o.strip_prefix("maxelem=")?.parse().ok());
        } else if let Some(e) = line.strip_prefix("entries:") {
            entries = e.split_whitespace().map(str::to_string).collect();
        }
    }
    Ipset { family, maxelem, entries }
}

/// `firewall-offline-cmd --info-policy=NAME`: `key: value` lines, rich rules last, one per
/// line after `rich rules:`.
pub fn parse_policy_info(info: &str) -> PolicyObject {
    let mut p = PolicyObject {
        target: String::new(),
        ingress_zones: Default::default(),
        egress_zones: Default::default(),
        rich: Default::default(),
    };
    let mut in_rules = false;
    for line in info.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if in_rules {
            p.rich.insert(line.to_string());
        } else if let Some(t) = line.strip_prefix("target:") {
            p.target = t.trim().to_string();
        } else if let Some(z) = line.strip_prefix("ingress-zones:") {
            p.ingress_zones = z.split_whitespace().map(str::to_string).collect();
        } else if let Some(z) = line.strip_prefix("egress-zones:") {
            p.egress_zones = z.split_whitespace().map(str::to_string).collect();
        } else if line.starts_with("rich rules:") {
            in_rules = true;
        }
    }
    p
}

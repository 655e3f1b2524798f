//! Converge firewalld to a policy: read, diff, and (unless checking) apply with rollback.

use crate::dbus::{Extras, Firewalld};
use crate::model::{self, Features, Layer, Op, Owned};
use crate::offline::Offline;
use vorfw_core::policy::Policy;

/// A running firewalld over D-Bus, or its permanent configuration offline.
pub enum Target {
    Running(Firewalld),
    Offline(Offline),
}

impl Target {
    /// The running daemon if there is one, else the offline configuration.
    pub fn detect() -> Result<Target, String> {
        match Firewalld::connect()? {
            Some(fw) => Ok(Target::Running(fw)),
            None => Ok(Target::Offline(Offline::new()?)),
        }
    }

    pub fn is_running(&self) -> bool {
        matches!(self, Target::Running(_))
    }

    /// The firewalld release: the daemon's `version` property, or `firewall-offline-cmd --version`.
    pub fn version(&self) -> Result<String, String> {
        match self {
            Target::Running(f) => f.version(),
            Target::Offline(o) => o.version(),
        }
    }

    /// What this firewalld's rich rules can say ([`Features::of_version`] of its version).
    pub fn features(&self) -> Result<Features, String> {
        Ok(Features::of_version(&self.version()?))
    }

    pub fn default_zone(&self) -> Result<String, String> {
        match self {
            Target::Running(f) => f.default_zone(),
            Target::Offline(o) => o.default_zone(),
        }
    }

    pub fn zone_of_interface(&self, iface: &str) -> Result<Option<String>, String> {
        match self {
            Target::Running(f) => f.zone_of_interface(iface),
            Target::Offline(o) => o.zone_of_interface(iface),
        }
    }

    fn exec(&self, op: &Op) -> Result<(), String> {
        match self {
            Target::Running(f) => f.exec(op),
            Target::Offline(o) => o.exec(op),
        }
    }
}

#[derive(Debug, Default)]
pub struct Report {
    pub ops: Vec<Op>,
    pub before: String,
    pub after: String,
    /// Runtime items of others that a reload dropped and that were put back.
    pub restored: Vec<String>,
    pub warnings: Vec<String>,
}

/// The inverse of an op, given the state before it ran.
fn inverse(op: &Op, rt: Option<&Owned>, perm: &Owned) -> Vec<Op> {
    let entries = |layer: Layer, name: &str| {
        let state = if layer == Layer::Runtime { rt } else { Some(perm) };
        state.and_then(|s| s.ipsets.get(name)).map(|s| s.entries.clone()).unwrap_or_default()
    };
    match op {
        Op::NewIpset { name, .. } => vec![Op::DeleteIpset { name: name.clone() }],
        // Back to the size it had (its entries are put back first: ops are undone in reverse).
        Op::ResizeIpset { name, .. } => match perm.ipsets.get(name) {
            Some(s) => {
                vec![Op::ResizeIpset { name: name.clone(), maxelem: s.maxelem.unwrap_or(model::DEFAULT_MAXELEM) }]
            }
            None => vec![],
        },
        Op::SetEntries { layer, name, .. } => {
            vec![Op::SetEntries { layer: *layer, name: name.clone(), entries: entries(*layer, name) }]
        }
        Op::DeleteIpset { name } => match perm.ipsets.get(name) {
            Some(s) => vec![
                Op::SetEntries { layer: Layer::Permanent, name: name.clone(), entries: s.entries.clone() },
                Op::NewIpset {
                    name: name.clone(),
                    family: s.family,
                    maxelem: s.maxelem.unwrap_or(model::DEFAULT_MAXELEM),
                },
            ],
            None => vec![],
        },
        Op::AddRich { layer, zone, rule } => {
            vec![Op::RemoveRich { layer: *layer, zone: zone.clone(), rule: rule.clone() }]
        }
        Op::RemoveRich { layer, zone, rule } => {
            vec![Op::AddRich { layer: *layer, zone: zone.clone(), rule: rule.clone() }]
        }
        Op::AddService { layer, zone, service } => {
            vec![Op::RemoveService { layer: *layer, zone: zone.clone(), service: service.clone() }]
        }
        Op::RemoveService { layer, zone, service } => {
            vec![Op::AddService { layer: *layer, zone: zone.clone(), service: service.clone() }]
        }
        Op::NewPolicy { name, .. } => vec![Op::DeletePolicy { name: name.clone() }],
        Op::SetPolicyTarget { name, .. } => match &perm.egress {
            Some(p) => vec![Op::SetPolicyTarget { name: name.clone(), target: p.target.clone() }],
            None => vec![],
        },
        // Run in reverse: create the policy as it was, then give back its rules.
        Op::DeletePolicy { name } => match &perm.egress {
            Some(p) => {
                let mut v: Vec<Op> = p
                    .rich
                    .iter()
                    .map(|r| Op::AddPolicyRich { layer: Layer::Permanent, policy: name.clone(), rule: r.clone() })
                    .collect();
                v.push(Op::NewPolicy {
                    name: name.clone(),
                    target: p.target.clone(),
                    ingress_zones: p.ingress_zones.clone(),
                    egress_zones: p.egress_zones.clone(),
                });
                v
            }
            None => vec![],
        },
        Op::AddPolicyRich { layer, policy, rule } => {
            vec![Op::RemovePolicyRich { layer: *layer, policy: policy.clone(), rule: rule.clone() }]
        }
        Op::RemovePolicyRich { layer, policy, rule } => {
            vec![Op::AddPolicyRich { layer: *layer, policy: policy.clone(), rule: rule.clone() }]
        }
        Op::Reload => vec![],
    }
}

/// Bring the owned objects in `zones` to `policy`. In check mode nothing is written and the
/// report says exactly what would be. On failure the previous state is restored and the error
/// names the step that failed.
pub fn converge(
    t: &Target,
    policy: &Policy,
    zones: &[String],
    remove_services: &[String],
    check: bool,
) -> Result<Report, String> {
    let want = model::desired_with(policy, zones, t.features()?);
    let (rt, perm) = read(t, zones, remove_services)?;
    let rt = rt.map(|rt| model::without_empty_leftovers(rt, &want));
    let ops = model::diff(rt.as_ref(), &perm, &want);
    let mut report = Report {
        before: render_layers(rt.as_ref(), &perm),
        after: render_layers(rt.as_ref().map(|_| &want), &want),
        ..Default::default()
    };
    if let Target::Running(f) = t {
        report.warnings.extend(f.foreign_openings(zones, remove_services)?);
    } else {
        report.warnings.push("firewalld is not running: changed its permanent configuration only".into());
    }
    report.ops = ops.clone();
    if check || ops.is_empty() {
        return Ok(report);
    }
    report.restored = execute(t, &ops, rt.as_ref(), &perm, remove_services)?;
    Ok(report)
}

/// Run `ops` in order; on a failure undo what ran and say which step failed. A reload puts
/// back what others had at runtime, except the services in `remove_services`. Returns those
/// runtime items, in words.
fn execute(
    t: &Target,
    ops: &[Op],
    rt: Option<&Owned>,
    perm: &Owned,
    remove_services: &[String],
) -> Result<Vec<String>, String> {
    let mut undo: Vec<Op> = vec![];
    let mut extras: Option<Extras> = None;
    let mut restored = vec![];
    for (i, op) in ops.iter().enumerate() {
        let step = |e: String| format!("step {} of {} ({op}) failed: {e}", i + 1, ops.len());
        let result = match (op, t) {
            (Op::Reload, Target::Running(f)) => f.extras().and_then(|x| {
                extras = Some(x.clone());
                f.exec(op)?;
                let mut keep = x;
                for z in &mut keep.zones {
                    z.services.retain(|s| !remove_services.contains(s));
                }
                restored.extend(f.restore(&keep)?);
                Ok(())
            }),
            _ => t.exec(op),
        };
        if let Err(e) = result {
            let msg = step(e);
            let rollback = roll_back(t, &undo, extras.as_ref());
            return Err(match rollback {
                Ok(()) => format!("{msg}; the previous state was restored"),
                Err(r) => format!("{msg}; restoring the previous state failed too: {r}"),
            });
        }
        undo.extend(inverse(op, rt, perm));
    }
    Ok(restored)
}

/// Both layers of the owned objects of `zones` as they are (with the services of
/// `remove_services` they hold): commit-confirm's rollback point.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Snapshot {
    pub zones: Vec<String>,
    pub remove_services: Vec<String>,
    /// `None`: firewalld was not running (permanent configuration only).
    pub runtime: Option<Owned>,
    pub permanent: Owned,
}

fn read(t: &Target, zones: &[String], remove_services: &[String]) -> Result<(Option<Owned>, Owned), String> {
    let (rt, mut perm) = match t {
        Target::Running(f) => {
            (Some(f.read(Layer::Runtime, zones, remove_services)?), f.read(Layer::Permanent, zones, remove_services)?)
        }
        Target::Offline(o) => (None, o.read(zones, remove_services)?),
    };
    perm.services.retain(|_, s| !s.is_empty());
    Ok((rt, perm))
}

impl Snapshot {
    pub fn take(t: &Target, zones: &[String], remove_services: &[String]) -> Result<Snapshot, String> {
        let (rt, permanent) = read(t, zones, remove_services)?;
        let runtime = rt.map(|rt| model::without_empty_leftovers(rt, &permanent));
        Ok(Snapshot { zones: zones.to_vec(), remove_services: remove_services.to_vec(), runtime, permanent })
    }
}

/// Put a snapshot back: both layers diffed with what they hold now, the difference applied
/// (with rollback on failure). Returns the ops run.
pub fn restore(t: &Target, snap: &Snapshot) -> Result<Vec<Op>, String> {
    let (rt, perm) = read(t, &snap.zones, &snap.remove_services)?;
    let rt = rt.map(|rt| model::without_empty_leftovers(rt, &snap.permanent));
    // A snapshot taken offline is put back into the permanent configuration only.
    let want_rt = snap.runtime.as_ref().unwrap_or(&snap.permanent);
    let ops = model::diff_layers(rt.as_ref(), &perm, want_rt, &snap.permanent);
    execute(t, &ops, rt.as_ref(), &perm, &[])?;
    Ok(ops)
}

fn roll_back(t: &Target, undo: &[Op], extras: Option<&Extras>) -> Result<(), String> {
    let mut errors = vec![];
    for op in undo.iter().rev() {
        if let Err(e) = t.exec(op) {
            errors.push(format!("{op}: {e}"));
        }
    }
    if let (Some(x), Target::Running(f)) = (extras, t) {
        // The reload made runtime = permanent; now that permanent is back, do it again.
        if let Err(e) = f.exec(&Op::Reload).and_then(|_| f.restore(x).map(|_| ())) {
            errors.push(format!("reload: {e}"));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

/// Both layers, labelled, so that before and after diff line by line.
fn render_layers(rt: Option<&Owned>, perm: &Owned) -> String {
    match rt {
        Some(rt) => format!("[runtime]\n{}[permanent]\n{}", model::render(rt), model::render(perm)),
        None => format!("[permanent]\n{}", model::render(perm)),
    }
}

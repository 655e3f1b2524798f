//! The firewalld backend.
//!
//! A host's [`Policy`](vorfw_core::policy::Policy) becomes owned firewalld objects: one
//! `hash:net` ipset per peer set and address family (named `vorfw-<set>-<4|6>`) and rich rules
//! pairing an owned ipset with a port, in the zones that serve the host's interfaces; outbound,
//! the policy object [`EGRESS_POLICY`] (HOST → ANY, firewalld 0.9 or later) whose rich rules
//! pair an owned ipset (as destination) with a port, and whose target is REJECT when egress is
//! restricted. Objects are owned by name: ipsets whose name starts with [`PREFIX`], rich rules
//! whose source is such an ipset, and the policy object with all its rules. Nothing else is
//! read for change or ever written.
//!
//! [`model`] is pure (desired state, diff, human-readable rendering); [`dbus`] talks to a
//! running firewalld; [`offline`] edits the permanent configuration when it is not running;
//! [`apply`] runs a diff with rollback.

pub mod apply;
pub mod dbus;
pub mod model;
pub mod offline;

pub use model::{Layer, Op, Owned, EGRESS_POLICY, PREFIX};

use serde_json::json;
use vorfw_core::{policy::Policy, Backend, BackendKind, Report};

/// firewalld behind the [`Backend`] seam: the running daemon over D-Bus, else its permanent
/// configuration offline; the owned ipsets, rich rules and egress policy of `zones`.
pub struct FirewalldBackend {
    /// `None`: rendering only (`vorfw render`), nothing to converge.
    pub target: Option<apply::Target>,
    pub zones: Vec<String>,
    /// firewalld services to remove from `zones` (`host_firewall_remove_zone_services`).
    pub remove_services: Vec<String>,
}

impl Backend for FirewalldBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Firewalld
    }
    fn what(&self) -> String {
        "owned firewalld objects".into()
    }
    fn render(&self, policy: &Policy) -> String {
        model::render(&model::desired(policy, &self.zones))
    }
    fn converge(&self, policy: &Policy, check: bool) -> Result<Report, String> {
        let target = self.target.as_ref().ok_or("firewalld: no daemon or configuration to converge")?;
        let r = apply::converge(target, policy, &self.zones, &self.remove_services, check)
            .map_err(|e| format!("firewalld: {e}"))?;
        let mut data = serde_json::Map::new();
        data.insert("firewalld_running".into(), json!(target.is_running()));
        data.insert("firewalld_version".into(), json!(target.version().ok().map(|v| v.trim().to_string())));
        data.insert("zones".into(), json!(self.zones));
        data.insert("restored".into(), json!(r.restored));
        Ok(Report {
            changes: r.ops.iter().map(|o| o.to_string()).collect(),
            before: r.before,
            after: r.after,
            warnings: r.warnings,
            data,
        })
    }
    fn snapshot(&self) -> Result<serde_json::Value, String> {
        let target = self.target.as_ref().ok_or("firewalld: no daemon or configuration to read")?;
        let s =
            apply::Snapshot::take(target, &self.zones, &self.remove_services).map_err(|e| format!("firewalld: {e}"))?;
        Ok(serde_json::to_value(s).expect("a snapshot serializes"))
    }
    fn restore(&self, snapshot: &serde_json::Value) -> Result<Report, String> {
        let target = self.target.as_ref().ok_or("firewalld: no daemon or configuration to converge")?;
        let snap: apply::Snapshot = vorfw_core::backend::snapshot_of(self.kind(), snapshot)?;
        let ops = apply::restore(target, &snap).map_err(|e| format!("firewalld: {e}"))?;
        Ok(Report { changes: ops.iter().map(|o| o.to_string()).collect(), ..Default::default() })
    }
}

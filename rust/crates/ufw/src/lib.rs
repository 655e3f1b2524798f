//! The ufw backend (ufw 0.36, as on Debian 12 and Ubuntu 22.04/24.04).
//!
//! A host's [`Policy`](vorfw_core::policy::Policy) becomes one ufw rule per (source network,
//! port, protocol, family): `allow in` to any address, commented `vorfw:<set>`; and one per
//! (destination network, port, protocol, family) of its egress: `allow out` from any address.
//! Restricted egress sets ufw's default outgoing policy to reject (`ufw default reject
//! outgoing`) after recording the operator's, which is put back when egress is open again (see
//! [`model::plan_output`]); with it, the management SSH accepts also get `allow out` rules for
//! their replies. ufw stays the
//! source of truth: the rules live in ufw's own files (`/etc/ufw/user.rules` for IPv4,
//! `user6.rules` for IPv6), written byte-for-byte as ufw writes them, so `ufw status` lists
//! them, and `ufw reload`, a reboot and any later ufw command keep them.
//!
//! Rules are owned by comment: a rule whose comment starts with [`COMMENT_PREFIX`] is ours,
//! every other rule is the operator's and is never changed or reordered. Ours are written
//! after the operator's (see [`model`] for why).
//!
//! Instead of one ufw process per rule, both files are rewritten in one batch and ufw loads
//! them once: `ufw --force enable` when it is disabled, or `ufw reload` when it is enabled,
//! plus `ufw default deny incoming` / `ufw default <policy> outgoing` when a default differs
//! (which restart an enabled ufw, so no reload is needed then). ufw is never enabled before the
//! rules are written, so the lockout guard (the Accept for the controller's address that the
//! caller adds to the policy) is in place the moment ufw starts filtering. The guard is what
//! keeps the controller's session: ufw's before.rules accept `ESTABLISHED,RELATED`, but a
//! connection opened while nothing used conntrack in the network namespace is picked up
//! mid-stream as `NEW` and dropped without a rule that allows it (seen in
//! tests/netns-integration.sh).
//!
//! [`model`] is pure (desired rules, file parsing, new contents, rendering); [`apply`] reads,
//! plans and writes with rollback.

pub mod apply;
pub mod model;

pub use apply::{converge, converge_at, detect, detect_at, Paths, Report, Status};
pub use model::COMMENT_PREFIX;

use serde_json::json;
use vorfw_core::{policy::Policy, Backend, BackendKind};

/// ufw behind the [`Backend`] seam.
#[derive(Debug, Clone, Default)]
pub struct UfwBackend {
    pub paths: Paths,
}

impl Backend for UfwBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Ufw
    }
    fn what(&self) -> String {
        "ufw".into()
    }
    /// The owned rules, as `ufw` would add them, and the default policies they need.
    fn render(&self, policy: &Policy) -> String {
        let outgoing = if policy.egress.restricted { "reject" } else { "(the operator's)" };
        format!("# default incoming: deny; default outgoing: {outgoing}\n{}", model::render(&model::desired(policy)))
    }
    fn converge(&self, policy: &Policy, check: bool) -> Result<vorfw_core::Report, String> {
        if !detect_at(&self.paths).installed {
            return Err("host_firewall_backend is ufw but ufw is not installed".into());
        }
        let r = converge_at(&self.paths, policy, check).map_err(|e| format!("ufw: {e}"))?;
        let mut data = serde_json::Map::new();
        data.insert("rules_added".into(), json!(r.added));
        data.insert("rules_removed".into(), json!(r.removed));
        Ok(vorfw_core::Report { changes: r.changes, before: r.before, after: r.after, warnings: r.warnings, data })
    }
    fn snapshot(&self) -> Result<serde_json::Value, String> {
        let b = apply::Backup::take(&self.paths).map_err(|e| format!("ufw: {e}"))?;
        Ok(serde_json::to_value(b).expect("a snapshot serializes"))
    }
    fn restore(&self, snapshot: &serde_json::Value) -> Result<vorfw_core::Report, String> {
        let b: apply::Backup = vorfw_core::backend::snapshot_of(self.kind(), snapshot)?;
        let changes = apply::restore(&self.paths, &b).map_err(|e| format!("ufw: {e}"))?;
        Ok(vorfw_core::Report { changes, ..Default::default() })
    }
}

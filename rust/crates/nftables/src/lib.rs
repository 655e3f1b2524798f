//! The nftables backend, for hosts where neither firewalld nor ufw is active.
//!
//! The policy becomes one table of our own, `inet vorstream`: a named interval set per peer set
//! and address family, and an input chain (policy drop) that accepts loopback, established
//! traffic, the ICMP that IP needs, and exactly the plan's ports from those sets; everything
//! else is rejected (admin-prohibited, so peers fail fast). The table is replaced in one atomic
//! `nft -f` transaction and persisted in a file that the boot-time nftables configuration
//! includes. No other table is ever read for change or written.

pub mod apply;
pub mod model;

pub use model::{script, TABLE};

use vorfw_core::{policy::Policy, Backend, BackendKind, Report};

/// nftables behind the [`Backend`] seam: table `inet vorstream`, persisted for boot.
#[derive(Debug, Clone, Default)]
pub struct NftablesBackend {
    pub paths: apply::Paths,
}

impl Backend for NftablesBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Nftables
    }
    fn what(&self) -> String {
        format!("table {TABLE}")
    }
    fn render(&self, policy: &Policy) -> String {
        script(policy)
    }
    fn converge(&self, policy: &Policy, check: bool) -> Result<Report, String> {
        let r = apply::converge(&self.paths, policy, check).map_err(|e| format!("nftables: {e}"))?;
        Ok(Report { changes: r.changes, before: r.before, after: r.after, warnings: r.warnings, ..Default::default() })
    }
    fn snapshot(&self) -> Result<serde_json::Value, String> {
        let s = apply::Snapshot::take(&self.paths).map_err(|e| format!("nftables: {e}"))?;
        Ok(serde_json::to_value(s).expect("a snapshot serializes"))
    }
    fn restore(&self, snapshot: &serde_json::Value) -> Result<Report, String> {
        let snap: apply::Snapshot = vorfw_core::backend::snapshot_of(self.kind(), snapshot)?;
        let changes = apply::restore(&self.paths, &snap).map_err(|e| format!("nftables: {e}"))?;
        Ok(Report { changes, ..Default::default() })
    }
}

//! The seam between a host's [`Policy`] and the firewall that enforces it.
//!
//! firewalld, ufw and nftables each implement [`Backend`]: they translate a policy into the
//! objects they own and back, and nothing else. Choosing a backend, gathering the host's facts
//! and recording what was applied happen once, in `vorfw-host`.

use crate::policy::Policy;
use crate::request::BackendKind;
use serde_json::{Map, Value};

/// What one converge did (or, checking, would do), whatever the backend.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    /// One line per change, in the order it was (or would be) made; empty: nothing to do.
    pub changes: Vec<String>,
    /// The owned state before and after, rendered for a diff.
    pub before: String,
    pub after: String,
    pub warnings: Vec<String>,
    /// Backend-specific result keys (firewalld's zones, ufw's rule counts, …).
    pub data: Map<String, Value>,
}

impl Report {
    pub fn changed(&self) -> bool {
        !self.changes.is_empty()
    }
}

/// One firewall a host can run.
pub trait Backend {
    fn kind(&self) -> BackendKind;
    /// What the diff compares, in words ("table inet vorstream", "owned firewalld objects").
    fn what(&self) -> String;
    /// What this backend would own for `policy`, exactly as `converge` would write it: for
    /// review and sign-off (`vorfw render`). Pure.
    fn render(&self, policy: &Policy) -> String;
    /// Read the owned state, diff it with `policy` and, unless `check`, apply the difference.
    /// On error the previous state has been restored and the message names the failed step.
    fn converge(&self, policy: &Policy, check: bool) -> Result<Report, String>;
    /// The owned state as it is now, as JSON that [`Backend::restore`] puts back exactly:
    /// commit-confirm's rollback point, written to disk and read back by the host's watchdog
    /// in another process.
    fn snapshot(&self) -> Result<Value, String>;
    /// Bring the owned state back to `snapshot` (read, diff, apply, as `converge` does); on
    /// error what could be put back has been, and the message names the failed step.
    fn restore(&self, snapshot: &Value) -> Result<Report, String>;
}

/// A snapshot as a backend's own type, or an error naming the backend.
pub fn snapshot_of<T: serde::de::DeserializeOwned>(backend: BackendKind, v: &Value) -> Result<T, String> {
    T::deserialize(v).map_err(|e| format!("{backend}: not a snapshot of this backend: {e}"))
}

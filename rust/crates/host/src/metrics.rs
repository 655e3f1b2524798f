//! Prometheus metrics for node_exporter's textfile collector: each `apply` run (and each check,
//! which is how drift is found) leaves one text-format file in the collector's directory.
//!
//! Two files, so that a check never hides the last apply and the reverse:
//! `vorstream_firewall_apply.prom` and `vorstream_firewall_check.prom`. Written only when the
//! directory exists (node_exporter is installed and configured for it); replaced atomically, so
//! the collector never reads half a file.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use vorfw_core::policy::Family;
use vorfw_core::policy::Policy;

/// Debian's and Ubuntu's `prometheus-node-exporter` textfile directory.
pub const DEFAULT_DIR: &str = "/var/lib/prometheus/node-exporter";

/// What one run of `apply` leaves for monitoring.
#[derive(Debug, Clone, PartialEq)]
pub struct RunMetrics<'a> {
    pub host: &'a str,
    pub check: bool,
    /// Unix seconds when the run ended.
    pub at: f64,
    pub seconds: f64,
    pub ok: bool,
    /// Steps done (or, in check mode, found to do: the drift).
    pub changes: usize,
    /// The backend used ("firewalld", "ufw", "nftables"); none when the run failed early.
    pub backend: Option<&'a str>,
    /// The host's policy, when planning got that far.
    pub policy: Option<&'a Policy>,
}

impl RunMetrics<'_> {
    pub fn file_name(&self) -> &'static str {
        if self.check {
            "vorstream_firewall_check.prom"
        } else {
            "vorstream_firewall_apply.prom"
        }
    }
}

/// A label value in the text format: backslash, double quote and newline escaped.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn metric(out: &mut String, name: &str, help: &str, samples: &[(String, f64)]) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} gauge");
    for (labels, v) in samples {
        let _ = writeln!(out, "{name}{{{labels}}} {v}");
    }
}

/// The text-format file for one run.
pub fn render(r: &RunMetrics) -> String {
    let mode = if r.check { "check" } else { "apply" };
    let base = format!("host=\"{}\",mode=\"{mode}\",backend=\"{}\"", label(r.host), label(r.backend.unwrap_or("")));
    let one = |v: f64| vec![(base.clone(), v)];
    let mut out = String::new();
    metric(
        &mut out,
        "vorstream_firewall_last_run_timestamp_seconds",
        "When the last run ended (Unix time).",
        &one(r.at),
    );
    metric(
        &mut out,
        "vorstream_firewall_last_run_success",
        "1 if the last run succeeded, 0 if it failed.",
        &one(f64::from(u8::from(r.ok))),
    );
    metric(
        &mut out,
        "vorstream_firewall_last_run_duration_seconds",
        "The host's own time for the last run.",
        &one(r.seconds),
    );
    metric(
        &mut out,
        "vorstream_firewall_last_run_changes",
        "Steps the last run made (apply) or found to make (check: the drift from the plan).",
        &one(r.changes as f64),
    );
    if r.check {
        metric(
            &mut out,
            "vorstream_firewall_drift",
            "1 if the last check found the firewall differing from the plan.",
            &one(f64::from(u8::from(r.ok && r.changes > 0))),
        );
    }
    if let Some(p) = r.policy {
        let rules = p.accepts.len() + p.egress.accepts.len();
        metric(
            &mut out,
            "vorstream_firewall_owned_rules",
            "Accept rules the plan owns (inbound and outbound).",
            &one(rules as f64),
        );
        let sets: Vec<(String, f64)> = p
            .sets
            .iter()
            .map(|((key, fam), nets)| {
                let fam = if *fam == Family::V4 { "ipv4" } else { "ipv6" };
                (format!("{base},set=\"{}\",family=\"{fam}\"", label(key)), nets.len() as f64)
            })
            .collect();
        metric(&mut out, "vorstream_firewall_owned_set_entries", "Networks in each owned address set.", &sets);
    }
    out
}

/// Write the run's file into `dir`, if `dir` exists: `Ok(Some(path))` when written.
pub fn write(dir: &Path, r: &RunMetrics) -> Result<Option<PathBuf>, String> {
    if !dir.is_dir() {
        return Ok(None);
    }
    let path = dir.join(r.file_name());
    vorfw_sys::replace(&path, render(r).as_bytes(), 0o644)?;
    Ok(Some(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(check: bool) -> RunMetrics<'static> {
        RunMetrics {
            host: "web\"1",
            check,
            at: 1.5e9,
            seconds: 0.25,
            ok: true,
            changes: 3,
            backend: Some("ufw"),
            policy: None,
        }
    }

    #[test]
    fn one_file_per_mode_and_drift_only_in_the_check() {
        assert_eq!(run(false).file_name(), "vorstream_firewall_apply.prom");
        assert!(!render(&run(false)).contains("vorstream_firewall_drift"));
        let text = render(&run(true));
        assert!(
            text.contains("vorstream_firewall_drift{host=\"web\\\"1\",mode=\"check\",backend=\"ufw\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("vorstream_firewall_last_run_changes{host=\"web\\\"1\",mode=\"check\",backend=\"ufw\"} 3\n")
        );
    }

    #[test]
    fn a_failed_check_is_no_drift() {
        let text = render(&RunMetrics { ok: false, ..run(true) });
        assert!(
            text.contains("vorstream_firewall_drift{host=\"web\\\"1\",mode=\"check\",backend=\"ufw\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("vorstream_firewall_last_run_success{host=\"web\\\"1\",mode=\"check\",backend=\"ufw\"} 0\n")
        );
    }

    #[test]
    fn nothing_is_written_without_the_collector_directory() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(write(&d.path().join("missing"), &run(false)).unwrap(), None);
        let p = write(d.path(), &run(false)).unwrap().unwrap();
        assert_eq!(std::fs::read_to_string(p).unwrap(), render(&run(false)));
    }
}

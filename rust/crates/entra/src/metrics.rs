//! Prometheus metrics of the refresher, for node_exporter's textfile collector: every refresh
//! that writes `status.json` also leaves `vorstream_firewall_entra.prom` in the collector's
//! directory (when it exists), rendered from the same [`Status`], so the two never disagree.
//! The host is node_exporter's `instance` label; these carry the cloud only.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::model::Cloud;
use crate::state::{Condition, Status};

/// The file's name in the collector's directory.
pub const METRICS_FILE: &str = "vorstream_firewall_entra.prom";

fn unix(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

fn gauge(out: &mut String, name: &str, help: &str, samples: &[(String, f64)]) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} gauge");
    for (labels, v) in samples {
        let _ = writeln!(out, "{name}{{{labels}}} {v}");
    }
}

/// The text-format file for `status` (the refresher's last outcome) on `cloud`.
pub fn render(status: &Status, cloud: Cloud) -> String {
    let base = format!("cloud=\"{}\"", cloud.name());
    let one = |v: f64| vec![(base.clone(), v)];
    let mut out = String::new();
    gauge(
        &mut out,
        "vorstream_firewall_entra_last_refresh_timestamp_seconds",
        "When the last refresh ran (Unix time).",
        &one(unix(status.time)),
    );
    gauge(
        &mut out,
        "vorstream_firewall_entra_last_refresh_success",
        "1 if the last refresh succeeded, 0 if it failed (the last good list stays in force).",
        &one(f64::from(u8::from(status.ok))),
    );
    let conditions: Vec<(String, f64)> = [Condition::Ok, Condition::Held, Condition::Failed]
        .iter()
        .map(|c| {
            let name = match c {
                Condition::Ok => "ok",
                Condition::Held => "held",
                Condition::Failed => "failed",
            };
            (format!("{base},condition=\"{name}\""), f64::from(u8::from(*c == status.condition)))
        })
        .collect();
    gauge(
        &mut out,
        "vorstream_firewall_entra_condition",
        "1 for the refresher's condition: ok, held (removals held back, still allowed) or failed.",
        &conditions,
    );
    if let Some(t) = status.last_success {
        gauge(
            &mut out,
            "vorstream_firewall_entra_last_success_timestamp_seconds",
            "When a refresh last succeeded (Unix time).",
            &one(unix(t)),
        );
    }
    if let Some(n) = status.change_number {
        gauge(
            &mut out,
            "vorstream_firewall_entra_change_number",
            "The changeNumber of the service-tag file in force.",
            &one(n as f64),
        );
    }
    if let Some(f) = &status.newest_file {
        gauge(
            &mut out,
            "vorstream_firewall_entra_list_accepted_timestamp_seconds",
            "When the file in force was first accepted (Unix time): its age shows a feed that stopped publishing.",
            &one(unix(f.accepted_at)),
        );
        gauge(
            &mut out,
            "vorstream_firewall_entra_list_age_seconds",
            "Age of the file in force when the last refresh ran.",
            &one(f.age_secs as f64),
        );
    }
    let c = &status.prefixes;
    let prefixes: Vec<(String, f64)> = [
        ("effective", c.effective),
        ("published", c.published),
        ("in_grace", c.in_grace),
        ("held", c.held),
        ("ipv4", c.ipv4),
        ("ipv6", c.ipv6),
    ]
    .iter()
    .map(|(k, v)| (format!("{base},kind=\"{k}\""), *v as f64))
    .collect();
    gauge(
        &mut out,
        "vorstream_firewall_entra_prefixes",
        "Prefixes of the list in force: effective (allowed) = published + in_grace + held; by family ipv4, ipv6.",
        &prefixes,
    );
    gauge(
        &mut out,
        "vorstream_firewall_entra_held_removals",
        "Removals held back (mass removal or a lower changeNumber): their prefixes stay allowed.",
        &one(status.held.len() as f64),
    );
    gauge(
        &mut out,
        "vorstream_firewall_entra_warnings",
        "Warnings of the last refresh.",
        &one(status.warnings.len() as f64),
    );
    out
}

/// Write the file into `dir`, if `dir` exists: `Ok(Some(path))` when written.
pub fn write(dir: &Path, status: &Status, cloud: Cloud) -> Result<Option<PathBuf>, String> {
    if !dir.is_dir() {
        return Ok(None);
    }
    let path = dir.join(METRICS_FILE);
    vorfw_sys::replace(&path, render(status, cloud).as_bytes(), 0o644)?;
    Ok(Some(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{Counts, NewestFile};
    use std::time::Duration;

    fn status(ok: bool) -> Status {
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        Status {
            ok,
            condition: if ok { Condition::Held } else { Condition::Failed },
            time: t,
            message: "m".into(),
            error_kind: None,
            change_number: Some(412),
            source: None,
            prefixes: Counts { effective: 9, published: 7, in_grace: 1, held: 1, ipv4: 6, ipv6: 3 },
            last_success: Some(t - Duration::from_secs(60)),
            warnings: vec![],
            held: vec![],
            newest_file: Some(NewestFile {
                file_name: None,
                change_number: 412,
                accepted_at: t - Duration::from_secs(3600),
                age_secs: 3600,
            }),
        }
    }

    #[test]
    fn the_condition_is_one_hot_and_figures_come_from_the_status() {
        let text = render(&status(false), Cloud::Public);
        assert!(
            text.contains("vorstream_firewall_entra_condition{cloud=\"Public\",condition=\"failed\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("vorstream_firewall_entra_condition{cloud=\"Public\",condition=\"ok\"} 0\n"));
        assert!(text.contains("vorstream_firewall_entra_last_refresh_success{cloud=\"Public\"} 0\n"));
        assert!(text.contains("vorstream_firewall_entra_change_number{cloud=\"Public\"} 412\n"));
        assert!(text.contains("vorstream_firewall_entra_list_age_seconds{cloud=\"Public\"} 3600\n"));
        assert!(text.contains("vorstream_firewall_entra_last_success_timestamp_seconds{cloud=\"Public\"} 1699999940\n"));
        assert!(text.contains("vorstream_firewall_entra_prefixes{cloud=\"Public\",kind=\"held\"} 1\n"));
    }

    #[test]
    fn nothing_is_written_without_the_collector_directory() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(write(&d.path().join("missing"), &status(true), Cloud::Public).unwrap(), None);
        let p = write(d.path(), &status(true), Cloud::Public).unwrap().unwrap();
        assert_eq!(std::fs::read_to_string(p).unwrap(), render(&status(true), Cloud::Public));
    }
}

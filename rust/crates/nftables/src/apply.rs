//! Converge the host's nftables to a policy: one atomic transaction, persisted for boot.

use crate::model::{render, script, TABLE};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use vorfw_core::policy::Policy;

/// Where things live (overridable for tests).
#[derive(Debug, Clone)]
pub struct Paths {
    pub nft: String,
    /// Our directory: the persisted script and what we last wrote.
    pub dir: PathBuf,
    /// Boot-time nftables configurations, first existing one wins (RHEL, then Debian/Ubuntu).
    pub boot_confs: Vec<PathBuf>,
}

impl Default for Paths {
    fn default() -> Self {
        Paths {
            nft: "nft".into(),
            dir: "/etc/vorstream-firewall".into(),
            boot_confs: vec!["/etc/sysconfig/nftables.conf".into(), "/etc/nftables.conf".into()],
        }
    }
}

impl Paths {
    fn script_file(&self) -> PathBuf {
        self.dir.join("vorstream.nft")
    }
    fn state_file(&self) -> PathBuf {
        self.dir.join("nftables-state.json")
    }
    fn boot_conf(&self) -> PathBuf {
        self.boot_confs
            .iter()
            .find(|p| p.exists())
            .cloned()
            .unwrap_or_else(|| self.boot_confs.last().cloned().unwrap_or_default())
    }
    fn include_line(&self) -> String {
        format!("include \"{}\"", self.script_file().display())
    }
}

/// What we last wrote: the script, and the table as the kernel printed it back.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
struct State {
    script: String,
    canonical: String,
    lines: String,
}

#[derive(Debug, Default)]
pub struct Report {
    pub changes: Vec<String>,
    pub before: String,
    pub after: String,
    pub warnings: Vec<String>,
}

fn nft(paths: &Paths, args: &[&str], input: Option<&str>) -> Result<String, String> {
    let mut cmd = vorfw_sys::Cmd::new(&paths.nft, args);
    if let Some(text) = input {
        cmd = cmd.stdin(vorfw_sys::Stdin::Bytes(text.as_bytes()));
    }
    cmd.run().map(|o| o.stdout).map_err(|e| {
        if e.starts_with("cannot run") {
            format!("{e} (is nftables installed?)")
        } else {
            e
        }
    })
}

/// The table as the kernel has it, or `None` if it does not exist.
pub fn current_table(paths: &Paths) -> Result<Option<String>, String> {
    let (family, name) = TABLE.split_once(' ').expect("TABLE");
    match nft(paths, &["list", "table", family, name], None) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.contains("No such file or directory") || e.contains("does not exist") => Ok(None),
        Err(e) => Err(e),
    }
}

fn write_atomic(path: &Path, text: &str) -> Result<(), String> {
    vorfw_sys::replace(path, text.as_bytes(), 0o644)
}

fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// Everything a converge may change, as it is: the table as the kernel prints it and our
/// files. [`restore`] puts it back; a failed converge does the same with the state it read.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Snapshot {
    pub table: Option<String>,
    /// path → content (`None`: absent): the persisted script, the state, the boot configuration.
    pub files: Vec<(PathBuf, Option<String>)>,
}

impl Snapshot {
    pub fn take(paths: &Paths) -> Result<Snapshot, String> {
        let mut files = vec![];
        for p in [paths.script_file(), paths.state_file(), paths.boot_conf()] {
            let text = vorfw_sys::read_optional(&p)?
                .map(|b| String::from_utf8(b).map_err(|_| format!("{}: not UTF-8 text", p.display())))
                .transpose()?;
            files.push((p, text));
        }
        Ok(Snapshot { table: current_table(paths)?, files })
    }
}

/// Load `table` (the kernel's own listing) in place of ours in one transaction, or delete ours.
fn load_table(paths: &Paths, table: Option<&str>) -> Result<(), String> {
    let (f, n) = TABLE.split_once(' ').expect("TABLE");
    let script = match table {
        Some(prev) => format!("table {f} {n} {{}}\ndelete table {f} {n}\n{prev}"),
        None => format!("table {f} {n} {{}}\ndelete table {f} {n}\n"),
    };
    nft(paths, &["-f", "-"], Some(&script)).map(|_| ())
}

/// Put a snapshot back: the table if it differs, each file that differs. Returns the changes.
pub fn restore(paths: &Paths, snap: &Snapshot) -> Result<Vec<String>, String> {
    let mut changes = vec![];
    let mut errors = vec![];
    if current_table(paths)? != snap.table {
        match load_table(paths, snap.table.as_deref()) {
            Ok(()) if snap.table.is_some() => changes.push(format!("put back table {TABLE} as it was")),
            Ok(()) => changes.push(format!("delete table {TABLE}")),
            Err(e) => errors.push(format!("table {TABLE}: {e}")),
        }
    }
    for (path, prev) in &snap.files {
        if read(path) == *prev {
            continue;
        }
        let r = match prev {
            Some(p) => write_atomic(path, p),
            None => std::fs::remove_file(path).map_err(|e| format!("cannot remove {}: {e}", path.display())),
        };
        match r {
            Ok(()) => changes.push(format!("put back {}", path.display())),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(changes)
    } else {
        Err(errors.join("; "))
    }
}

/// Bring `inet vorstream` (and its boot-time copy) to `policy`. Check mode writes nothing.
pub fn converge(paths: &Paths, policy: &Policy, check: bool) -> Result<Report, String> {
    let want = script(policy);
    let lines = render(policy);
    let before = Snapshot::take(paths)?;
    let current = &before.table;
    let file = |p: PathBuf| before.files.iter().find(|(f, _)| *f == p).and_then(|(_, t)| t.clone());
    let state: Option<State> = file(paths.state_file()).and_then(|s| serde_json::from_str(&s).ok());
    let table_ok = matches!((&state, current), (Some(s), Some(c)) if s.script == want && s.canonical == *c);
    let persist_ok = file(paths.script_file()).as_deref() == Some(want.as_str());
    let boot = paths.boot_conf();
    let boot_text = file(boot.clone()).unwrap_or_default();
    let include = paths.include_line();
    let include_ok = boot_text.lines().any(|l| l.trim() == include);

    let mut report = Report { after: lines.clone(), ..Default::default() };
    report.before = match (&state, current) {
        (Some(s), Some(c)) if s.canonical == *c => s.lines.clone(),
        (_, Some(c)) => format!("# table {TABLE} differs from what vorstream.firewall last wrote:\n{c}"),
        (_, None) => String::new(),
    };
    if !table_ok {
        report.changes.push(format!(
            "replace table {TABLE} ({} sets, {} accepted ports) in one transaction",
            policy.sets.len(),
            policy.accepts.len()
        ));
    }
    if !persist_ok {
        report.changes.push(format!("write {}", paths.script_file().display()));
    }
    if !include_ok {
        report.changes.push(format!("add '{include}' to {}", boot.display()));
    }
    if check || report.changes.is_empty() {
        return Ok(report);
    }

    // 1. The table, atomically. A failed transaction changes nothing.
    if !table_ok {
        nft(paths, &["-f", "-"], Some(&want)).map_err(|e| format!("step 1 (replace table {TABLE}) failed: {e}"))?;
    }
    let rest = (|| -> Result<(), String> {
        let canonical = current_table(paths)?.unwrap_or_default();
        let st = State { script: want.clone(), canonical, lines };
        write_atomic(&paths.state_file(), &serde_json::to_string_pretty(&st).expect("state serializes"))
            .map_err(|e| format!("step 2 (record state) failed: {e}"))?;
        if !persist_ok {
            write_atomic(&paths.script_file(), &want).map_err(|e| format!("step 3 (persist script) failed: {e}"))?;
        }
        if !include_ok {
            let mut text = if boot_text.is_empty() { "#!/usr/sbin/nft -f\n".to_string() } else { boot_text.clone() };
            if !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(&format!("# Added by vorstream.firewall: its table, restored at boot.\n{include}\n"));
            write_atomic(&boot, &text).map_err(|e| format!("step 4 (include in {}) failed: {e}", boot.display()))?;
        }
        Ok(())
    })();
    if let Err(e) = rest {
        return Err(match restore(paths, &before) {
            Ok(_) => format!("{e}; the previous state was restored"),
            Err(r) => format!("{e}; restoring the previous state failed too: {r}"),
        });
    }
    Ok(report)
}

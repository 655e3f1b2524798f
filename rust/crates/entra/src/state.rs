//! The state directory: the last good list (`state.json`), the monitoring status
//! (`status.json`), the published outputs (`prefixes.txt`, `prefixes.json` by default) and a lock.
//! Every file is written atomically (temporary file in the same directory, fsync, rename).

use std::collections::BTreeSet;
use std::fs::{self};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::error::{state_err, Error, ErrorKind, Result};
use crate::model::{Cloud, TagInfo};

pub const STATE_FILE: &str = "state.json";
pub const STATUS_FILE: &str = "status.json";
pub const TEXT_FILE: &str = "prefixes.txt";
pub const JSON_FILE: &str = "prefixes.json";
pub const LOCK_FILE: &str = ".lock";
/// How many updates the state's history keeps.
pub const HISTORY_LEN: usize = 10;
/// The state file's format version. Version 1 (no holds, no file age) is read and upgraded.
pub const STATE_VERSION: u32 = 2;
/// Used to estimate when a held removal takes effect: Microsoft publishes weekly.
pub const FILE_INTERVAL: Duration = Duration::from_secs(7 * 24 * 3600);

/// The last good list and how it came to be.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub version: u32,
    pub cloud: Cloud,
    /// The configured tags, with their own changeNumber and counts in the applied file.
    pub tags: Vec<TagInfo>,
    /// The applied file's top-level changeNumber.
    pub change_number: u64,
    /// SHA-256 of the sorted published prefix list (see [`crate::content_hash`]).
    pub content_sha256: String,
    /// URL or path the applied file came from.
    pub source: String,
    pub file_name: Option<String>,
    /// When this state was produced (the last successful refresh).
    #[serde(with = "crate::time::ts")]
    pub updated: SystemTime,
    /// The grace period in force when this state was produced, in seconds.
    pub grace_secs: u64,
    /// The effective list: published prefixes, and removed ones still in grace (with `removed_at`).
    pub prefixes: Vec<PrefixEntry>,
    /// The last [`HISTORY_LEN`] updates, oldest first.
    pub history: Vec<HistoryEntry>,
    /// The highest top-level changeNumber ever accepted: the baseline of the jump limit.
    #[serde(default)]
    pub highest_change_number: u64,
    /// When the file now in force (its changeNumber and list) was first accepted; its age shows a
    /// feed that silently stopped publishing.
    #[serde(default, with = "crate::time::ts_opt", skip_serializing_if = "Option::is_none")]
    pub file_accepted: Option<SystemTime>,
    /// Removals held back: their prefixes stay allowed until later files confirm the removal.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub holds: Vec<Hold>,
    /// The number of consecutive new files that confirm a held removal (in force when this state
    /// was produced).
    #[serde(default = "default_hold_refreshes")]
    pub hold_refreshes: u32,
}

fn default_hold_refreshes() -> u32 {
    crate::config::DEFAULT_HOLD_REFRESHES
}

/// Why a removal is held instead of entering the grace period.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldReason {
    /// The file removes more than the allowed share of the published prefixes at once.
    MassRemoval,
    /// The file's changeNumber is lower than the applied one (an older file, or a renumbering).
    ChangeNumberBackwards,
}

impl HoldReason {
    pub fn as_str(self) -> &'static str {
        match self {
            HoldReason::MassRemoval => "mass_removal",
            HoldReason::ChangeNumberBackwards => "change_number_backwards",
        }
    }
}

/// Prefixes one file removed, held: still allowed until `needed` consecutive new files lack them
/// (then they enter the grace period, counted from `since`), or until `--force`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    pub reason: HoldReason,
    /// The figures behind the reason, for people.
    pub detail: String,
    /// When the first file without these prefixes was accepted.
    #[serde(with = "crate::time::ts")]
    pub since: SystemTime,
    /// Consecutive new files without these prefixes, the one that held them included.
    pub files: u32,
    pub prefixes: Vec<IpNet>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrefixEntry {
    pub prefix: IpNet,
    /// Set while the prefix is in grace: no longer published, still allowed.
    #[serde(default, with = "crate::time::ts_opt", skip_serializing_if = "Option::is_none")]
    pub removed_at: Option<SystemTime>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    #[serde(with = "crate::time::ts")]
    pub time: SystemTime,
    pub change_number: u64,
    pub added: usize,
    pub removed: usize,
    #[serde(default)]
    pub restored: usize,
    #[serde(default)]
    pub expired: usize,
    #[serde(default)]
    pub held: usize,
    #[serde(default)]
    pub confirmed: usize,
    #[serde(default)]
    pub file_name: Option<String>,
}

/// Prefix counts, for the status file and reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Published, in grace and held: what a firewall should allow.
    pub effective: usize,
    pub published: usize,
    pub in_grace: usize,
    /// Removed by a file but held (still allowed).
    #[serde(default)]
    pub held: usize,
    pub ipv4: usize,
    pub ipv6: usize,
}

impl State {
    /// Every prefix a firewall should allow now (published, in grace, and held).
    pub fn effective(&self) -> BTreeSet<IpNet> {
        self.prefixes.iter().map(|e| e.prefix).chain(self.held()).collect()
    }

    /// The effective list as text, IPv4 and IPv6 apart (sorted), as prefix lists and sets take it.
    pub fn effective_by_family(&self) -> (Vec<String>, Vec<String>) {
        let (v4, v6): (Vec<IpNet>, Vec<IpNet>) = self.effective().into_iter().partition(|p| matches!(p, IpNet::V4(_)));
        (v4.iter().map(ToString::to_string).collect(), v6.iter().map(ToString::to_string).collect())
    }

    /// The prefixes of held removals.
    pub fn held(&self) -> impl Iterator<Item = IpNet> + '_ {
        self.holds.iter().flat_map(|h| h.prefixes.iter().copied())
    }

    /// The file now in force: its changeNumber and the hash of its list.
    pub fn file_id(&self) -> (u64, &str) {
        (self.change_number, self.content_sha256.as_str())
    }

    /// When the file in force was first accepted (states from version 1: the last update).
    pub fn file_accepted(&self) -> SystemTime {
        self.file_accepted.unwrap_or(self.updated)
    }

    /// The held removals as the status file shows them, with when each takes effect.
    pub fn held_status(&self) -> Vec<HeldStatus> {
        self.holds
            .iter()
            .map(|h| {
                let needed = self.hold_refreshes.max(1);
                let remaining = needed.saturating_sub(h.files);
                // The confirming file is expected `remaining` weeks after the last one; the
                // prefixes then enter the grace period counted from `since`.
                let confirm = self.file_accepted() + FILE_INTERVAL * remaining;
                HeldStatus {
                    prefixes: h.prefixes.clone(),
                    reason: h.reason.as_str().to_string(),
                    detail: h.detail.clone(),
                    since: h.since,
                    files: h.files,
                    needed,
                    remaining_files: remaining,
                    expected_at: confirm.max(h.since + self.grace()),
                }
            })
            .collect()
    }

    /// The prefixes the applied file publishes.
    pub fn published(&self) -> BTreeSet<IpNet> {
        self.prefixes.iter().filter(|e| e.removed_at.is_none()).map(|e| e.prefix).collect()
    }

    /// Removed prefixes still allowed, with their removal time.
    pub fn in_grace(&self) -> Vec<(IpNet, SystemTime)> {
        self.prefixes.iter().filter_map(|e| e.removed_at.map(|t| (e.prefix, t))).collect()
    }

    pub fn grace(&self) -> Duration {
        Duration::from_secs(self.grace_secs)
    }

    pub fn counts(&self) -> Counts {
        let in_grace = self.prefixes.iter().filter(|e| e.removed_at.is_some()).count();
        let eff = self.effective();
        let ipv4 = eff.iter().filter(|p| matches!(p, IpNet::V4(_))).count();
        Counts {
            effective: eff.len(),
            published: self.prefixes.len() - in_grace,
            in_grace,
            held: self.held().count(),
            ipv4,
            ipv6: eff.len() - ipv4,
        }
    }

    /// The tag names, in configured order.
    pub fn tag_names(&self) -> Vec<String> {
        self.tags.iter().map(|t| t.name.clone()).collect()
    }

    /// Plain-text output: the effective list, one CIDR per line, IPv4 first, sorted.
    pub fn render_text(&self) -> String {
        let mut out = String::with_capacity(self.prefixes.len() * 20);
        for p in self.effective() {
            out.push_str(&p.to_string());
            out.push('\n');
        }
        out
    }

    /// JSON output for perimeter firewalls and other consumers.
    pub fn render_json(&self) -> String {
        let eff = self.effective();
        let (v4, v6) = self.effective_by_family();
        let grace: Vec<serde_json::Value> = self
            .in_grace()
            .into_iter()
            .map(|(p, t)| {
                serde_json::json!({
                    "prefix": p.to_string(),
                    "removed_at": crate::time::format(t),
                    "expires_at": crate::time::format(t + self.grace()),
                })
            })
            .collect();
        let doc = serde_json::json!({
            "cloud": self.cloud.name(),
            "tags": self.tag_names(),
            "change_number": self.change_number,
            "updated": crate::time::format(self.updated),
            "source": self.source,
            "sha256": crate::model::content_hash(&eff),
            "prefixes": eff.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
            "ipv4": v4,
            "ipv6": v6,
            "grace": grace,
            "held": self.held_status(),
        });
        let mut s = serde_json::to_string_pretty(&doc).unwrap_or_default();
        s.push('\n');
        s
    }
}

/// A held removal as the status file and `status` show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldStatus {
    pub prefixes: Vec<IpNet>,
    /// `mass_removal` or `change_number_backwards`.
    pub reason: String,
    pub detail: String,
    /// When the first file without these prefixes was accepted.
    #[serde(with = "crate::time::ts")]
    pub since: SystemTime,
    /// Consecutive new files without them so far, and how many take the removal into effect.
    pub files: u32,
    pub needed: u32,
    pub remaining_files: u32,
    /// When they are expected to stop being allowed, if a new file comes every week.
    #[serde(with = "crate::time::ts")]
    pub expected_at: SystemTime,
}

/// The three conditions monitoring tells apart.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// The last refresh succeeded and nothing is held.
    #[default]
    Ok,
    /// The last refresh succeeded; some removals are held (their prefixes stay allowed).
    Held,
    /// The last refresh failed; the list in force is the last good one.
    Failed,
}

/// The file in force and when it was first accepted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewestFile {
    pub file_name: Option<String>,
    pub change_number: u64,
    #[serde(with = "crate::time::ts")]
    pub accepted_at: SystemTime,
    /// Seconds from `accepted_at` to the status time.
    pub age_secs: u64,
}

impl NewestFile {
    pub fn of(state: &State, now: SystemTime) -> NewestFile {
        let accepted_at = state.file_accepted();
        NewestFile {
            file_name: state.file_name.clone(),
            change_number: state.change_number,
            accepted_at,
            age_secs: now.duration_since(accepted_at).map(|d| d.as_secs()).unwrap_or(0),
        }
    }
}

/// What a monitoring system reads: the outcome of the last refresh.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub ok: bool,
    /// `ok`, `held` or `failed`.
    #[serde(default)]
    pub condition: Condition,
    #[serde(with = "crate::time::ts")]
    pub time: SystemTime,
    pub message: String,
    /// The [`ErrorKind`] name when `ok` is false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<String>,
    /// The changeNumber of the list in force (unchanged by a failure).
    pub change_number: Option<u64>,
    /// Where the list in force came from.
    #[serde(default)]
    pub source: Option<String>,
    /// Counts of the list in force.
    pub prefixes: Counts,
    /// The last successful refresh.
    #[serde(with = "crate::time::ts_opt")]
    pub last_success: Option<SystemTime>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Held removals of the list in force.
    #[serde(default)]
    pub held: Vec<HeldStatus>,
    /// The file in force and its age.
    #[serde(default)]
    pub newest_file: Option<NewestFile>,
}

impl Status {
    /// The status of a successful refresh that produced `state`.
    pub fn success(state: &State, now: SystemTime, message: String, warnings: Vec<String>) -> Status {
        let held = state.held_status();
        Status {
            ok: true,
            condition: if held.is_empty() { Condition::Ok } else { Condition::Held },
            time: now,
            message,
            error_kind: None,
            change_number: Some(state.change_number),
            source: Some(state.source.clone()),
            prefixes: state.counts(),
            last_success: Some(now),
            warnings,
            held,
            newest_file: Some(NewestFile::of(state, now)),
        }
    }
}

/// Where the outputs go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputPaths {
    pub text: PathBuf,
    pub json: PathBuf,
}

impl OutputPaths {
    pub fn resolve(state_dir: &Path, text: Option<&Path>, json: Option<&Path>) -> Self {
        OutputPaths {
            text: text.map_or_else(|| state_dir.join(TEXT_FILE), Path::to_path_buf),
            json: json.map_or_else(|| state_dir.join(JSON_FILE), Path::to_path_buf),
        }
    }
}

/// The saved state, if any. A state file that exists but cannot be read is an error, never
/// silently replaced.
pub fn load_state(dir: &Path) -> Result<Option<State>> {
    let Some(text) = read_optional(&dir.join(STATE_FILE))? else { return Ok(None) };
    let state: State = serde_json::from_str(&text).map_err(|e| {
        state_err(format!("{} is unreadable (fix or remove it to start over)", dir.join(STATE_FILE).display()), e)
    })?;
    let mut state = state;
    match state.version {
        1 => {
            // Version 1 knew neither holds nor the highest changeNumber.
            state.highest_change_number = state.change_number;
            state.version = STATE_VERSION;
        }
        STATE_VERSION => state.highest_change_number = state.highest_change_number.max(state.change_number),
        v => {
            return Err(Error::new(
                ErrorKind::State,
                format!("{}: unsupported state version {v}", dir.join(STATE_FILE).display()),
            ))
        }
    }
    Ok(Some(state))
}

pub fn load_status(dir: &Path) -> Result<Option<Status>> {
    let path = dir.join(STATUS_FILE);
    let Some(text) = read_optional(&path)? else { return Ok(None) };
    let mut status: Status = serde_json::from_str(&text).map_err(|e| state_err(path.display(), e))?;
    // A status written before `condition` existed.
    if !status.ok {
        status.condition = Condition::Failed;
    }
    Ok(Some(status))
}

fn read_optional(path: &Path) -> Result<Option<String>> {
    match fs::read_to_string(path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(state_err(format!("cannot read {}", path.display()), e)),
    }
}

pub fn save_state(dir: &Path, state: &State) -> Result<()> {
    let mut text = serde_json::to_string_pretty(state).map_err(|e| state_err("cannot encode the state", e))?;
    text.push('\n');
    atomic_write(&dir.join(STATE_FILE), text.as_bytes())
}

pub fn write_status(dir: &Path, status: &Status) -> Result<()> {
    let mut text = serde_json::to_string_pretty(status).map_err(|e| state_err("cannot encode the status", e))?;
    text.push('\n');
    atomic_write(&dir.join(STATUS_FILE), text.as_bytes())
}

pub fn write_outputs(state: &State, paths: &OutputPaths) -> Result<()> {
    atomic_write(&paths.text, state.render_text().as_bytes())?;
    atomic_write(&paths.json, state.render_json().as_bytes())
}

/// Write `path` so that readers, and the disk after a crash, see the old content or the new,
/// never a mix (see [`vorfw_sys::replace`]); a new file is 0644.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    vorfw_sys::replace(path, bytes, 0o644).map_err(|e| Error::new(ErrorKind::State, format!("cannot write {e}")))
}

/// An exclusive lock on the state directory, released on drop.
#[derive(Debug)]
pub struct DirLock {
    _lock: vorfw_sys::Lock,
}

/// Take the state directory's lock without waiting: a second refresh at the same time fails with
/// [`ErrorKind::Locked`] instead of interleaving its writes.
pub fn lock_dir(dir: &Path) -> Result<DirLock> {
    let path = dir.join(LOCK_FILE);
    match vorfw_sys::Lock::take(&path, vorfw_sys::LockKind::Try) {
        Ok(Some(l)) => Ok(DirLock { _lock: l }),
        Ok(None) => {
            Err(Error::new(ErrorKind::Locked, format!("another refresh holds {} ; try again later", path.display())))
        }
        Err(e) => Err(Error::new(ErrorKind::State, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("vorfw-entra-state-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    fn sample() -> State {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_753_077_600);
        State {
            version: STATE_VERSION,
            cloud: Cloud::Public,
            tags: vec![TagInfo { name: "AzureActiveDirectory".into(), change_number: 24, ipv4: 1, ipv6: 1 }],
            change_number: 363,
            content_sha256: "x".into(),
            source: "file".into(),
            file_name: None,
            updated: t,
            grace_secs: 86400,
            prefixes: vec![
                PrefixEntry { prefix: "10.0.0.0/8".parse().unwrap(), removed_at: None },
                PrefixEntry { prefix: "192.0.2.0/24".parse().unwrap(), removed_at: Some(t) },
                PrefixEntry { prefix: "2001:db8::/32".parse().unwrap(), removed_at: None },
            ],
            history: vec![],
            highest_change_number: 363,
            file_accepted: Some(t),
            holds: vec![],
            hold_refreshes: 4,
        }
    }

    #[test]
    fn state_round_trip_and_outputs() {
        let d = tmp("rt");
        assert_eq!(load_state(&d).unwrap(), None);
        let s = sample();
        save_state(&d, &s).unwrap();
        assert_eq!(load_state(&d).unwrap(), Some(s.clone()));
        assert_eq!(s.counts(), Counts { effective: 3, published: 2, in_grace: 1, held: 0, ipv4: 2, ipv6: 1 });
        assert_eq!(s.render_text(), "10.0.0.0/8\n192.0.2.0/24\n2001:db8::/32\n");
        let j: serde_json::Value = serde_json::from_str(&s.render_json()).unwrap();
        assert_eq!(j["ipv4"].as_array().unwrap().len(), 2);
        assert_eq!(j["grace"][0]["expires_at"], "2025-07-22T06:00:00Z");
        let names: Vec<_> = fs::read_dir(&d).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from(STATE_FILE)], "no temporary file left behind");
        fs::write(d.join(STATE_FILE), "{").unwrap();
        assert_eq!(load_state(&d).unwrap_err().kind(), ErrorKind::State);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn lock_is_exclusive() {
        let d = tmp("lock");
        let l = lock_dir(&d).unwrap();
        assert_eq!(lock_dir(&d).unwrap_err().kind(), ErrorKind::Locked);
        drop(l);
        lock_dir(&d).unwrap();
        fs::remove_dir_all(&d).unwrap();
    }
}

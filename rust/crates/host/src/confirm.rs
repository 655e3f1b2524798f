//! Commit-confirm: a change the host undoes by itself unless the controller confirms, over a
//! new connection, that it can still reach the host.
//!
//! [`arm`] runs under the host lock before the firewall changes: it writes the pending record
//! ([`Pending`]: the backend's snapshot of the owned state and the previous applied record,
//! 0600, atomically) and starts the watchdog, a detached copy of the running binary
//! ([`WATCHDOG_FLAG`]). The watchdog polls the record; when it is gone or names another token
//! (confirmed or disarmed) it exits; at the deadline it takes the host lock and puts the
//! snapshot back ([`Backend::restore`]) and the previous record with it, so the weekly
//! refresher never re-applies a change that was rolled back. [`confirm`], run by the action
//! plugin over a new connection, removes the record under the same lock (so exactly one of
//! the two wins) and waits for the watchdog to exit. The last outcome is kept in
//! `confirm.json` for [`status`].
//!
//! The deadline is written again when the apply has finished, so a slow apply (firewalld
//! offline) never eats the controller's time to confirm; if the apply process dies first, the
//! first deadline holds and the watchdog rolls back after the lock is released.

use crate::{lock, record_path};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use vorfw_core::{Backend, BackendKind};

/// The first argument that makes a module binary run as the watchdog.
pub const WATCHDOG_FLAG: &str = "--vorfw-watchdog";
/// The shortest and longest confirm timeouts accepted (seconds).
pub const MIN_TIMEOUT: u64 = 5;
pub const MAX_TIMEOUT: u64 = 3600;
/// How often the watchdog looks at the pending record.
const POLL: Duration = Duration::from_millis(200);

/// A change awaiting confirmation: what the watchdog puts back unless it is confirmed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pending {
    pub token: String,
    pub host: String,
    /// Unix milliseconds.
    pub armed_at: u64,
    pub deadline: u64,
    pub timeout: u64,
    /// The watchdog's pid (0 until it is started).
    pub watchdog: u32,
    pub backend: BackendKind,
    /// How to build the backend again (firewalld's zones and services to remove).
    pub zones: Vec<String>,
    pub remove_services: Vec<String>,
    pub snapshot: Value,
    /// The applied record before the change (`None`: there was none).
    pub record: Option<String>,
}

/// How a pending change ended, kept for [`status`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settled {
    pub token: String,
    pub host: String,
    /// `confirmed`, `disarmed` (nothing changed, or the apply failed and restored the previous
    /// state itself), `rolled back`, `rollback failed`.
    pub outcome: String,
    /// Unix milliseconds: when it ended, and when the rollback was due.
    pub at: u64,
    pub deadline: u64,
    pub detail: Vec<String>,
}

/// What the controller needs to confirm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ticket {
    pub token: String,
    /// Seconds from now (the apply's end) to the rollback.
    pub timeout: u64,
}

pub fn pending_path() -> PathBuf {
    record_path().with_file_name("pending.json")
}

fn settled_path() -> PathBuf {
    record_path().with_file_name("confirm.json")
}

pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// A time for people (UTC, to the second).
pub fn clock(ms: u64) -> String {
    let s = ms / 1000;
    format!("{:02}:{:02}:{:02} UTC", s / 3600 % 24, s / 60 % 60, s % 60)
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>, String> {
    match vorfw_sys::read_optional(path)? {
        None => Ok(None),
        Some(b) => serde_json::from_slice(&b).map(Some).map_err(|e| format!("{}: unreadable ({e})", path.display())),
    }
}

fn write_json(path: &Path, v: &impl Serialize) -> Result<(), String> {
    let text = serde_json::to_string(v).map_err(|e| e.to_string())? + "\n";
    vorfw_sys::replace(path, text.as_bytes(), 0o600)
}

fn remove(path: &Path) -> Result<(), String> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(format!("cannot remove {}: {e}", path.display())),
        _ => Ok(()),
    }
}

/// Is `pid` the watchdog of `token`?
fn watchdog_alive(pid: u32, token: &str) -> bool {
    pid != 0
        && std::fs::read(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|c| c.split(|b| *b == 0).any(|w| w == token.as_bytes()))
            // A zombie (exited, not yet reaped by its parent) is not a watchdog.
            && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| s.rsplit_once(')').is_some_and(|(_, r)| r.trim_start().starts_with('Z')))
}

fn settle(p: &Pending, outcome: &str, detail: Vec<String>) -> Result<(), String> {
    let s = Settled {
        token: p.token.clone(),
        host: p.host.clone(),
        outcome: outcome.into(),
        at: now_ms(),
        deadline: p.deadline,
        detail,
    };
    write_json(&settled_path(), &s)
}

/// An armed change, not yet settled; call with the host lock held.
#[derive(Debug)]
pub struct Armed {
    pending: Pending,
}

/// Arm commit-confirm for the change about to be made by `backend`: snapshot, pending record,
/// watchdog. Refused while another change awaits confirmation.
pub fn arm(
    host: &str,
    backend: &dyn Backend,
    zones: &[String],
    remove_services: &[String],
    timeout: u64,
) -> Result<Armed, String> {
    if !(MIN_TIMEOUT..=MAX_TIMEOUT).contains(&timeout) {
        return Err(format!(
            "host_firewall_confirm_timeout: {timeout} is out of range ({MIN_TIMEOUT} to {MAX_TIMEOUT} seconds, or 0 for off)"
        ));
    }
    let path = pending_path();
    if let Some(old) = read_json::<Pending>(&path)? {
        if watchdog_alive(old.watchdog, &old.token) {
            return Err(format!(
                "a change of {} awaits confirmation (its watchdog, pid {}, rolls it back at {}); \
                 wait for it, or run again after that",
                clock(old.armed_at),
                old.watchdog,
                clock(old.deadline)
            ));
        }
        // Its watchdog is gone (a reboot, or it was killed): the state it would have put back
        // is history; what the host runs now is the rollback point of this change.
        settle(&old, "abandoned", vec!["its watchdog was gone when the next change was armed".into()])?;
    }
    let armed_at = now_ms();
    let mut pending = Pending {
        token: vorfw_sys::random_token()?,
        host: host.to_string(),
        armed_at,
        deadline: armed_at + timeout * 1000,
        timeout,
        watchdog: 0,
        backend: backend.kind(),
        zones: zones.to_vec(),
        remove_services: remove_services.to_vec(),
        snapshot: backend.snapshot()?,
        record: vorfw_sys::read_optional(&record_path())?
            .map(|b| String::from_utf8(b).map_err(|_| format!("{}: not UTF-8 text", record_path().display())))
            .transpose()?,
    };
    write_json(&path, &pending)?;
    let exe = std::env::current_exe().map_err(|e| format!("commit-confirm: cannot find this program: {e}"))?;
    let spawned = vorfw_sys::detach(&exe, &[WATCHDOG_FLAG.as_ref(), path.as_os_str(), pending.token.as_ref()]);
    match spawned {
        Ok(pid) => pending.watchdog = pid,
        Err(e) => {
            let _ = remove(&path);
            return Err(format!("commit-confirm: {e}"));
        }
    }
    write_json(&path, &pending)?;
    Ok(Armed { pending })
}

impl Armed {
    /// The change is made: the controller has `timeout` seconds from now to confirm.
    pub fn ticket(mut self) -> Result<Ticket, String> {
        self.pending.deadline = now_ms() + self.pending.timeout * 1000;
        write_json(&pending_path(), &self.pending)?;
        Ok(Ticket { token: self.pending.token, timeout: self.pending.timeout })
    }

    /// Nothing to confirm (nothing changed, or the apply failed and restored the previous
    /// state itself): the watchdog exits at its next look.
    pub fn disarm(self, why: &str) -> Result<(), String> {
        remove(&pending_path())?;
        settle(&self.pending, "disarmed", vec![why.into()])?;
        wait_gone(&self.pending);
        Ok(())
    }

    /// Put the snapshot back now (the change was made but could not be recorded).
    pub fn roll_back_now(self) -> Result<Vec<String>, String> {
        let r = roll_back(&self.pending);
        finish(&self.pending, &r)?;
        wait_gone(&self.pending);
        r
    }
}

/// Wait (briefly) for the watchdog to notice and exit.
fn wait_gone(p: &Pending) -> bool {
    let t0 = std::time::Instant::now();
    while watchdog_alive(p.watchdog, &p.token) {
        if t0.elapsed() > POLL * 25 {
            return false;
        }
        std::thread::sleep(POLL / 4);
    }
    true
}

/// The backend a pending record names, built as the apply built it.
fn backend_of(p: &Pending) -> Result<Box<dyn Backend>, String> {
    Ok(match p.backend {
        BackendKind::Firewalld => Box::new(vorfw_firewalld::FirewalldBackend {
            target: Some(vorfw_firewalld::apply::Target::detect()?),
            zones: p.zones.clone(),
            remove_services: p.remove_services.clone(),
        }),
        BackendKind::Nftables => Box::new(vorfw_nftables::NftablesBackend::default()),
        BackendKind::Ufw | BackendKind::Auto => Box::new(vorfw_ufw::UfwBackend::default()),
    })
}

/// Put the firewall and the applied record back as they were before the change.
fn roll_back(p: &Pending) -> Result<Vec<String>, String> {
    let mut changes = backend_of(p)?.restore(&p.snapshot)?.changes;
    let record = record_path();
    match &p.record {
        Some(text) => vorfw_sys::replace(&record, text.as_bytes(), 0o600)?,
        None => remove(&record)?,
    }
    changes.push(format!("put back {}", record.display()));
    Ok(changes)
}

fn finish(p: &Pending, r: &Result<Vec<String>, String>) -> Result<(), String> {
    match r {
        Ok(changes) => settle(p, "rolled back", changes.clone())?,
        Err(e) => settle(p, "rollback failed", vec![e.clone()])?,
    }
    remove(&pending_path())
}

/// The watchdog: `WATCHDOG_FLAG PENDING TOKEN`. Exits 0 when the change was settled by
/// someone else or rolled back, 1 when the rollback failed.
pub fn watchdog_main(args: &[OsString]) -> ! {
    let code = match args {
        [path, token] => match watchdog(Path::new(path), &token.to_string_lossy()) {
            Ok(()) => 0,
            Err(_) => 1,
        },
        _ => 2,
    };
    std::process::exit(code)
}

fn watchdog(path: &Path, token: &str) -> Result<(), String> {
    let mine = |p: &Option<Pending>| p.as_ref().is_some_and(|p| p.token == token);
    loop {
        // An unreadable record (being replaced this instant is impossible: it is renamed over)
        // is treated as present: only a confirm or a disarm ends the watch early.
        let p = match read_json::<Pending>(path) {
            Ok(p) if !mine(&p) => return Ok(()),
            Ok(p) => p.expect("mine"),
            Err(_) => {
                std::thread::sleep(POLL);
                continue;
            }
        };
        let now = now_ms();
        if now >= p.deadline {
            break;
        }
        std::thread::sleep(POLL.min(Duration::from_millis(p.deadline - now)));
    }
    let _lock = lock()?;
    let p = read_json::<Pending>(path)?;
    if !mine(&p) {
        return Ok(());
    }
    let p = p.expect("mine");
    let r = roll_back(&p);
    finish(&p, &r)?;
    r.map(|_| ())
}

/// Confirm the change `token` names: the controller reached the host over a new connection.
pub fn confirm(token: &str) -> Result<Value, String> {
    let lock = lock()?;
    let pending = read_json::<Pending>(&pending_path())?;
    match pending {
        Some(p) if p.token == token => {
            remove(&pending_path())?;
            settle(&p, "confirmed", vec![])?;
            drop(lock);
            let exited = wait_gone(&p);
            Ok(json!({"confirmed": true, "host": p.host, "watchdog_exited": exited}))
        }
        _ => Err(match read_json::<Settled>(&settled_path())?.filter(|s| s.token == token) {
            Some(s) if s.outcome == "rolled back" => {
                format!("not confirmed in time: the host rolled the change back at {}", clock(s.at))
            }
            Some(s) => format!("the change is no longer pending ({}: {})", s.outcome, s.detail.join("; ")),
            None => "no change awaits confirmation with this token".into(),
        }),
    }
}

/// Where the change `token` names stands: `pending` (with seconds left), or how it ended.
pub fn status(token: &str) -> Result<Value, String> {
    if let Some(p) = read_json::<Pending>(&pending_path())?.filter(|p| p.token == token) {
        let left = p.deadline.saturating_sub(now_ms()) / 1000;
        return Ok(
            json!({"state": "pending", "seconds_left": left, "watchdog_alive": watchdog_alive(p.watchdog, token)}),
        );
    }
    Ok(match read_json::<Settled>(&settled_path())?.filter(|s| s.token == token) {
        Some(s) => json!({"state": s.outcome, "at": clock(s.at), "detail": s.detail}),
        None => json!({"state": "unknown"}),
    })
}

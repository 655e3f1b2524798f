//! One refresh: fetch → parse → validate and merge → (apply hook) → save outputs, state, status.
//! A failure at any step leaves the state and the outputs as they were and records why in the
//! status file.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use ipnet::IpNet;

use crate::config::FeedConfig;
use crate::error::{Error, ErrorKind, Result};
use crate::fetch::fetch;
use crate::merge::{validate_and_merge, Diff};
use crate::model::parse;
use crate::state::{self, Condition, NewestFile, OutputPaths, State, Status};

/// The result of a successful refresh (or dry run).
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The new state (saved unless `dry_run`).
    pub state: State,
    pub diff: Diff,
    /// Where the file came from (URL after redirects, or path).
    pub source: String,
    pub dry_run: bool,
    /// The outputs written (empty for a dry run).
    pub written: Vec<PathBuf>,
    /// Notes from fetching (e.g. several links on the details page).
    pub notes: Vec<String>,
    /// The validated file, byte for byte (controller mode pushes it to the hosts).
    pub raw: std::sync::Arc<Vec<u8>>,
}

impl Outcome {
    /// The effective list to enforce: published prefixes plus those in grace. This is what an
    /// `apply` step pushes into the host firewall (as one atomic set replacement).
    pub fn effective(&self) -> BTreeSet<IpNet> {
        self.state.effective()
    }
}

/// Refresh the feed into `state_dir` (see [`refresh_with`]; no apply hook).
pub fn refresh(cfg: &FeedConfig, state_dir: &Path, now: SystemTime, dry_run: bool) -> Result<Outcome> {
    refresh_with(cfg, state_dir, now, dry_run, |_, _| Ok(()))
}

/// Refresh with an apply hook.
///
/// Steps: lock the state directory (not for a dry run), load the last state, fetch, parse,
/// [`validate_and_merge`], then call `apply(&new_state, &diff)` — the place to push
/// `new_state.effective()` into a firewall. The outputs and the state are written before the
/// hook runs (and put back when it fails), then an `ok` status. The hook is not called for a
/// dry run.
///
/// On any error nothing but the status file is written: it gets `ok: false`, the reason, and the
/// counts and changeNumber of the list still in force. A dry run writes nothing at all.
pub fn refresh_with<F>(cfg: &FeedConfig, state_dir: &Path, now: SystemTime, dry_run: bool, apply: F) -> Result<Outcome>
where
    F: FnOnce(&State, &Diff) -> std::result::Result<(), String>,
{
    if dry_run {
        let prev = state::load_state(state_dir)?;
        return prepare(cfg, prev.as_ref(), now, true);
    }
    let _lock = state::lock_dir(state_dir)?;
    let prev = match state::load_state(state_dir) {
        Ok(p) => p,
        Err(e) => {
            record_failure(cfg, state_dir, None, &e, now);
            return Err(e);
        }
    };
    let result = prepare(cfg, prev.as_ref(), now, false).and_then(|mut outcome| {
        // The state first, then the firewall: a crash in between leaves a saved list that every
        // later apply (a playbook's, the next refresh's) converges to, never an older one
        // re-applied over a newer firewall. A failed apply puts the previous files back.
        let paths = OutputPaths::resolve(state_dir, cfg.text_output.as_deref(), cfg.json_output.as_deref());
        let files = [state_dir.join(state::STATE_FILE), paths.text.clone(), paths.json.clone()];
        let before: Vec<Option<Vec<u8>>> = files
            .iter()
            .map(|f| vorfw_sys::read_optional(f).map_err(|e| Error::new(ErrorKind::State, e)))
            .collect::<Result<_>>()?;
        state::write_outputs(&outcome.state, &paths)?;
        state::save_state(state_dir, &outcome.state)?;
        if let Err(m) = apply(&outcome.state, &outcome.diff) {
            for (f, b) in files.iter().zip(&before) {
                let _ = match b {
                    Some(b) => state::atomic_write(f, b),
                    None => std::fs::remove_file(f).map_err(|e| Error::new(ErrorKind::State, e.to_string())),
                };
            }
            return Err(Error::new(ErrorKind::Apply, m));
        }
        outcome.written = vec![paths.text, paths.json];
        Ok(outcome)
    });
    match result {
        Ok(outcome) => {
            let warnings = outcome.diff.warnings.iter().chain(&outcome.notes).cloned().collect();
            let mut status = Status::success(&outcome.state, now, summary(&outcome), warnings);
            // Metrics are best effort: a collector directory that cannot be written is a warning
            // in the status, never a failed refresh (the firewall and the state are committed).
            if let Err(e) = publish_metrics(cfg, &status) {
                status.warnings.push(e);
            }
            state::write_status(state_dir, &status)?;
            Ok(outcome)
        }
        Err(e) => {
            record_failure(cfg, state_dir, prev.as_ref(), &e, now);
            Err(e)
        }
    }
}

fn prepare(cfg: &FeedConfig, prev: Option<&State>, now: SystemTime, dry_run: bool) -> Result<Outcome> {
    let fetched = fetch(cfg)?;
    if let Some(want) = &cfg.expect_sha256 {
        let got = sha256_hex(&fetched.bytes);
        if !got.eq_ignore_ascii_case(want.trim()) {
            return Err(Error::new(
                ErrorKind::Checksum,
                format!("{}: SHA-256 {got} is not the pinned {} (--sha256)", fetched.url, want.trim()),
            ));
        }
    }
    let doc = parse(&fetched.bytes).map_err(|e| e.context(&fetched.url))?;
    let (mut state, diff) = validate_and_merge(prev, &doc, cfg, now).map_err(|e| e.context(&fetched.url))?;
    state.source = fetched.url.clone();
    state.file_name = fetched.file_name.clone();
    if let Some(h) = state.history.last_mut() {
        if h.time == now && h.file_name.is_none() {
            h.file_name = fetched.file_name.clone();
        }
    }
    Ok(Outcome {
        state,
        diff,
        source: fetched.url,
        dry_run,
        written: Vec::new(),
        notes: fetched.notes,
        raw: std::sync::Arc::new(fetched.bytes),
    })
}

/// Write a failed status that keeps describing the list still in force. Errors writing it are
/// ignored: the refresh error is the one to report.
fn record_failure(cfg: &FeedConfig, state_dir: &Path, prev: Option<&State>, e: &Error, now: SystemTime) {
    let old = state::load_status(state_dir).ok().flatten();
    let status = Status {
        ok: false,
        condition: Condition::Failed,
        time: now,
        message: e.to_string(),
        error_kind: Some(e.kind().as_str().to_string()),
        change_number: prev.map(|p| p.change_number),
        source: prev.map(|p| p.source.clone()),
        prefixes: prev.map(State::counts).unwrap_or_default(),
        last_success: old.and_then(|s| s.last_success).or(prev.map(|p| p.updated)),
        warnings: Vec::new(),
        held: prev.map(State::held_status).unwrap_or_default(),
        newest_file: prev.map(|p| NewestFile::of(p, now)),
    };
    let _ = state::write_status(state_dir, &status);
    let _ = publish_metrics(cfg, &status);
}

/// The status as metrics, when a collector directory is configured (see [`crate::metrics`]).
fn publish_metrics(cfg: &FeedConfig, status: &Status) -> std::result::Result<(), String> {
    let Some(dir) = &cfg.metrics_dir else { return Ok(()) };
    crate::metrics::write(dir, status, cfg.cloud).map(|_| ()).map_err(|e| format!("cannot write the metrics: {e}"))
}

/// One line about a successful refresh.
pub fn summary(o: &Outcome) -> String {
    let d = &o.diff;
    let c = o.state.counts();
    let from = match d.previous_change_number {
        Some(p) if p != d.change_number => format!("changeNumber {p} -> {}", d.change_number),
        Some(_) => format!("changeNumber {} (unchanged)", d.change_number),
        None => format!("changeNumber {} (first list)", d.change_number),
    };
    let held = if d.held.is_empty() && d.confirmed.is_empty() && c.held == 0 {
        String::new()
    } else {
        format!(", {} removal(s) held, {} confirmed", d.held.len(), d.confirmed.len())
    };
    format!(
        "{from}: {} added, {} removed into grace{held}, {} restored, {} expired; {} effective ({} IPv4, {} IPv6, \
         {} in grace, {} held)",
        d.added.len(),
        d.removed.len(),
        d.restored.len(),
        d.expired.len(),
        c.effective,
        c.ipv4,
        c.ipv6,
        c.in_grace,
        c.held
    )
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

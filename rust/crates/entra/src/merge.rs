//! Validation of a new file against the last applied state, and the merge that produces the next
//! state: additions at once, removals after a grace period, mass removals and backwards
//! changeNumbers refused unless forced. Everything compares parsed prefixes, never bytes.

use std::collections::{BTreeMap, BTreeSet};
use std::time::SystemTime;

use ipnet::IpNet;
use serde::Serialize;

use crate::config::FeedConfig;
use crate::error::{Error, ErrorKind, Result};
use crate::model::{content_hash, extract_detailed, Cloud, ServiceTags};
use crate::state::{HistoryEntry, PrefixEntry, State, HISTORY_LEN, STATE_VERSION};

/// What an update changes.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Diff {
    /// New prefixes, allowed at once.
    pub added: Vec<IpNet>,
    /// Prefixes the file no longer publishes; they stay allowed for the grace period.
    pub removed: Vec<IpNet>,
    /// Prefixes in grace that the file publishes again.
    pub restored: Vec<IpNet>,
    /// Prefixes whose grace period is over; no longer allowed.
    pub expired: Vec<IpNet>,
    /// All prefixes in grace after the update, with removal and expiry times.
    pub in_grace: Vec<GraceEntry>,
    pub warnings: Vec<String>,
    pub previous_change_number: Option<u64>,
    pub change_number: u64,
    /// The file publishes a different list than the last applied one.
    pub content_changed: bool,
    /// The effective list (what a firewall allows) changes.
    pub effective_changed: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GraceEntry {
    pub prefix: IpNet,
    #[serde(with = "crate::time::ts")]
    pub removed_at: SystemTime,
    #[serde(with = "crate::time::ts")]
    pub expires_at: SystemTime,
}

impl Diff {
    /// Nothing for a firewall to do and nothing new recorded.
    pub fn is_noop(&self) -> bool {
        !self.effective_changed && !self.content_changed && self.previous_change_number == Some(self.change_number)
    }
}

/// Validate `new` against the configuration and the last applied state `prev`, and compute the
/// next state. The returned state's `source` and `file_name` are empty; the caller fills them.
///
/// Refused (never overridable): a file for another cloud, a missing tag, an invalid prefix, an
/// empty list. Refused unless `cfg.force`: a changeNumber lower than the applied one, removing
/// more than `cfg.max_removal_share` of the published prefixes at once, and a saved state for
/// another cloud. Accepted with a warning: an equal changeNumber with different content.
pub fn validate_and_merge(
    prev: Option<&State>,
    new: &ServiceTags,
    cfg: &FeedConfig,
    now: SystemTime,
) -> Result<(State, Diff)> {
    let file_cloud: Option<Cloud> = new.cloud();
    if file_cloud != Some(cfg.cloud) {
        return Err(Error::new(
            ErrorKind::WrongCloud,
            format!("the file is for cloud {:?}, expected {}", new.cloud, cfg.cloud),
        ));
    }
    let (published, tags) = extract_detailed(new, &cfg.tags)?;
    if published.is_empty() {
        return Err(Error::new(
            ErrorKind::Empty,
            format!("service tag(s) {} hold no prefix (changeNumber {})", cfg.tags.join(", "), new.change_number),
        ));
    }
    if !(0.0..=1.0).contains(&cfg.max_removal_share) {
        return Err(Error::new(ErrorKind::Config, "max_removal_share must be between 0 and 1"));
    }
    let hash = content_hash(&published);
    let mut warnings = Vec::new();

    let mut prev = prev;
    if let Some(p) = prev {
        if p.cloud != cfg.cloud {
            if !cfg.force {
                return Err(Error::new(
                    ErrorKind::WrongCloud,
                    format!(
                        "the saved state is for cloud {}, the configuration says {} (force to start over)",
                        p.cloud, cfg.cloud
                    ),
                ));
            }
            warnings.push(format!("forced: replacing the saved {} state with a new {} list", p.cloud, cfg.cloud));
            prev = None;
        }
    }

    if let Some(p) = prev {
        let old_tags = p.tag_names();
        let new_tags: Vec<String> = tags.iter().map(|t| t.name.clone()).collect();
        if old_tags != new_tags {
            warnings.push(format!("tags changed from {} to {}", old_tags.join(", "), new_tags.join(", ")));
        }
        if new.change_number < p.change_number {
            let msg = format!(
                "the file's changeNumber {} is lower than the applied {} (an older file?)",
                new.change_number, p.change_number
            );
            if !cfg.force {
                return Err(Error::new(ErrorKind::ChangeNumberBackwards, msg));
            }
            warnings.push(format!("forced: {msg}"));
        } else if new.change_number == p.change_number && hash != p.content_sha256 {
            warnings.push(format!(
                "changeNumber {} is unchanged but the prefix list differs; accepting the new list",
                new.change_number
            ));
        }
        for t in &tags {
            if let Some(old) = p.tags.iter().find(|o| o.name == t.name) {
                if t.change_number < old.change_number {
                    warnings.push(format!(
                        "tag {} changeNumber went back from {} to {}",
                        t.name, old.change_number, t.change_number
                    ));
                }
            }
        }
    }

    // The merge proper.
    let old: BTreeMap<IpNet, Option<SystemTime>> =
        prev.map(|p| p.prefixes.iter().map(|e| (e.prefix, e.removed_at)).collect()).unwrap_or_default();
    let old_published: BTreeSet<IpNet> = old.iter().filter(|(_, r)| r.is_none()).map(|(p, _)| *p).collect();
    let mut next: BTreeMap<IpNet, Option<SystemTime>> = BTreeMap::new();
    let mut diff = Diff {
        previous_change_number: prev.map(|p| p.change_number),
        change_number: new.change_number,
        ..Diff::default()
    };
    for p in &published {
        match old.get(p) {
            None => diff.added.push(*p),
            Some(Some(_)) => diff.restored.push(*p),
            Some(None) => {}
        }
        next.insert(*p, None);
    }
    for (p, removed_at) in &old {
        if published.contains(p) {
            continue;
        }
        let since = match removed_at {
            None => {
                diff.removed.push(*p);
                now
            }
            Some(t) => *t,
        };
        // A clock that went backwards keeps the prefix (duration_since fails).
        let expired = now.duration_since(since).map(|age| age >= cfg.grace).unwrap_or(false);
        if expired {
            diff.expired.push(*p);
        } else {
            next.insert(*p, Some(since));
        }
    }

    if prev.is_some() && !diff.removed.is_empty() {
        let share = diff.removed.len() as f64 / old_published.len().max(1) as f64;
        if share > cfg.max_removal_share {
            let msg = format!(
                "the update removes {} of {} published prefixes ({:.0}%), more than the {:.0}% allowed",
                diff.removed.len(),
                old_published.len(),
                share * 100.0,
                cfg.max_removal_share * 100.0
            );
            if !cfg.force {
                return Err(Error::new(ErrorKind::MassRemoval, format!("{msg}; force to accept")));
            }
            warnings.push(format!("forced: {msg}"));
        }
    }

    diff.content_changed = prev.is_none_or(|p| p.content_sha256 != hash);
    diff.effective_changed = prev.is_none() || !diff.added.is_empty() || !diff.expired.is_empty();
    diff.in_grace = next
        .iter()
        .filter_map(|(p, r)| r.map(|t| GraceEntry { prefix: *p, removed_at: t, expires_at: t + cfg.grace }))
        .collect();
    diff.warnings = warnings;

    let mut history = prev.map(|p| p.history.clone()).unwrap_or_default();
    let changed_number = prev.is_none_or(|p| p.change_number != new.change_number);
    if diff.content_changed || diff.effective_changed || changed_number || !diff.restored.is_empty() {
        history.push(HistoryEntry {
            time: now,
            change_number: new.change_number,
            added: diff.added.len(),
            removed: diff.removed.len(),
            restored: diff.restored.len(),
            expired: diff.expired.len(),
            file_name: None,
        });
    }
    if history.len() > HISTORY_LEN {
        history.drain(..history.len() - HISTORY_LEN);
    }

    let state = State {
        version: STATE_VERSION,
        cloud: cfg.cloud,
        tags,
        change_number: new.change_number,
        content_sha256: hash,
        source: String::new(),
        file_name: None,
        updated: now,
        grace_secs: cfg.grace.as_secs(),
        prefixes: next.into_iter().map(|(prefix, removed_at)| PrefixEntry { prefix, removed_at }).collect(),
        history,
    };
    Ok((state, diff))
}

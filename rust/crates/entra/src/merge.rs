//! Validation of a new file against the last applied state, and the merge that produces the next
//! state. The update policy:
//!
//! * additions from a valid file apply at once, whatever else the file does;
//! * a removal enters the grace period (the prefix stays allowed for `grace`);
//! * a removal of more than `max_removal_share` of the published prefixes at once, or one from a
//!   file whose changeNumber is lower than the applied one, is *held*: the prefixes stay allowed,
//!   and the removal takes effect (enters the grace period, counted from the first absence) on
//!   the `hold_refreshes`-th consecutive new file that still lacks them, or at once with `force`;
//!   a file that publishes a held prefix again releases it;
//! * a file that fails a plausibility limit ([`crate::Limits`]) is refused as a whole.
//!
//! Everything compares parsed prefixes, never bytes.

use std::collections::{BTreeMap, BTreeSet};
use std::time::SystemTime;

use ipnet::IpNet;
use serde::Serialize;

use crate::config::FeedConfig;
use crate::error::{Error, ErrorKind, Result};
use crate::model::{content_hash, extract_detailed, Cloud, ServiceTags};
use crate::plausible;
use crate::state::{HistoryEntry, Hold, HoldReason, PrefixEntry, State, HISTORY_LEN, STATE_VERSION};

/// What an update changes.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Diff {
    /// New prefixes, allowed at once.
    pub added: Vec<IpNet>,
    /// Prefixes the file no longer publishes that entered the grace period (still allowed).
    pub removed: Vec<IpNet>,
    /// Prefixes the file no longer publishes whose removal is held (still allowed).
    pub held: Vec<IpNet>,
    /// Held prefixes whose removal this file confirmed (or `force` applied): they entered the
    /// grace period, counted from their first absence (and may have expired at once).
    pub confirmed: Vec<IpNet>,
    /// Prefixes in grace or held that the file publishes again.
    pub restored: Vec<IpNet>,
    /// Prefixes whose grace period is over; no longer allowed.
    pub expired: Vec<IpNet>,
    /// All prefixes in grace after the update, with removal and expiry times.
    pub in_grace: Vec<GraceEntry>,
    /// The file differs from the one in force (a new changeNumber or list): it counts towards
    /// confirming held removals.
    pub new_file: bool,
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
/// Refused (the state stays as it was): a file for another cloud, a missing tag, an invalid or
/// implausible prefix, an empty list, a plausibility limit exceeded, a saved state for another
/// cloud (unless `cfg.force`). Never refused: a lower changeNumber or a mass removal; those
/// removals are held (see the module documentation).
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
    if !(0.0..=1.0).contains(&cfg.max_removal_share) {
        return Err(Error::new(ErrorKind::Config, "max_removal_share must be between 0 and 1"));
    }
    if cfg.hold_refreshes == 0 {
        return Err(Error::new(ErrorKind::Config, "hold_refreshes must be at least 1"));
    }
    // The raw count first: a huge file is refused before a set of it is built.
    let raw: usize = cfg.tags.iter().filter_map(|t| new.tag(t)).map(|t| t.properties.address_prefixes.len()).sum();
    plausible::check_raw_count(raw, &cfg.limits)?;
    let (published, tags) = extract_detailed(new, &cfg.tags)?;
    if published.is_empty() {
        return Err(Error::new(
            ErrorKind::Empty,
            format!("service tag(s) {} hold no prefix (changeNumber {})", cfg.tags.join(", "), new.change_number),
        ));
    }
    plausible::check_prefixes(&published, &cfg.limits)?;
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
    plausible::check_change_number(new.change_number, prev.map(|p| p.highest_change_number), &cfg.limits)?;

    let backwards = prev.is_some_and(|p| new.change_number < p.change_number);
    let new_file = prev.is_none_or(|p| p.file_id() != (new.change_number, hash.as_str()));
    if let Some(p) = prev {
        let old_tags = p.tag_names();
        let new_tags: Vec<String> = tags.iter().map(|t| t.name.clone()).collect();
        if old_tags != new_tags {
            warnings.push(format!("tags changed from {} to {}", old_tags.join(", "), new_tags.join(", ")));
        }
        if new.change_number == p.change_number && hash != p.content_sha256 {
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

    // What the previous state allowed, by kind.
    let old_published: BTreeSet<IpNet> = prev.map(State::published).unwrap_or_default();
    let old_grace: BTreeMap<IpNet, SystemTime> = prev.map(|p| p.in_grace().into_iter().collect()).unwrap_or_default();
    let old_holds: Vec<Hold> = prev.map(|p| p.holds.clone()).unwrap_or_default();
    let old_held: BTreeSet<IpNet> = old_holds.iter().flat_map(|h| h.prefixes.iter().copied()).collect();

    let mut diff = Diff {
        previous_change_number: prev.map(|p| p.change_number),
        change_number: new.change_number,
        new_file,
        ..Diff::default()
    };
    for p in &published {
        if old_grace.contains_key(p) || old_held.contains(p) {
            diff.restored.push(*p);
        } else if !old_published.contains(p) {
            diff.added.push(*p);
        }
    }
    if prev.is_some() {
        plausible::check_additions(&diff.added, &cfg.limits)?;
    }

    // Removals in this file: into grace, or held.
    let missing: Vec<IpNet> = old_published.difference(&published).copied().collect();
    let mut grace: BTreeMap<IpNet, SystemTime> = BTreeMap::new();
    let mut new_hold: Option<Hold> = None;
    if !missing.is_empty() {
        let share = missing.len() as f64 / old_published.len().max(1) as f64;
        let mut why: Vec<(HoldReason, String)> = Vec::new();
        if share > cfg.max_removal_share {
            why.push((
                HoldReason::MassRemoval,
                format!(
                    "{} of {} published prefixes ({:.0}%) removed at once, more than the {:.0}% allowed",
                    missing.len(),
                    old_published.len(),
                    share * 100.0,
                    cfg.max_removal_share * 100.0
                ),
            ));
        }
        if backwards {
            why.push((
                HoldReason::ChangeNumberBackwards,
                format!(
                    "removed by a file whose changeNumber {} is lower than the applied {}",
                    new.change_number,
                    prev.map_or(0, |p| p.change_number)
                ),
            ));
        }
        let reason = why.first().map(|(r, _)| (*r, why.iter().map(|(_, d)| d.as_str()).collect::<Vec<_>>().join("; ")));
        match reason {
            Some((reason, detail)) if !cfg.force => {
                warnings.push(format!(
                    "removal held: {detail}; the {} prefix(es) stay allowed until {} consecutive new file(s) \
                     confirm it (or --force)",
                    missing.len(),
                    cfg.hold_refreshes
                ));
                diff.held.extend(&missing);
                new_hold = Some(Hold { reason, detail, since: now, files: 1, prefixes: missing });
            }
            Some((_, detail)) => {
                warnings.push(format!("forced: {detail}; the removal enters the grace period"));
                diff.removed.extend(&missing);
                grace.extend(missing.iter().map(|p| (*p, now)));
            }
            None => {
                diff.removed.extend(&missing);
                grace.extend(missing.iter().map(|p| (*p, now)));
            }
        }
    }

    // Holds from before: released by the file, counted, confirmed.
    let mut holds: Vec<Hold> = Vec::new();
    for mut h in old_holds {
        h.prefixes.retain(|p| !published.contains(p));
        if h.prefixes.is_empty() {
            continue;
        }
        if new_file {
            h.files += 1;
        }
        if cfg.force || h.files >= cfg.hold_refreshes {
            if cfg.force {
                warnings.push(format!("forced: applying the held removal of {} prefix(es)", h.prefixes.len()));
            }
            diff.confirmed.extend(&h.prefixes);
            grace.extend(h.prefixes.iter().map(|p| (*p, h.since)));
        } else {
            holds.push(h);
        }
    }
    match new_hold {
        // With hold_refreshes == 1 the file that holds a removal also confirms it.
        Some(h) if cfg.hold_refreshes <= 1 => {
            diff.confirmed.extend(&h.prefixes);
            grace.extend(h.prefixes.iter().map(|p| (*p, h.since)));
        }
        Some(h) => holds.push(h),
        None => {}
    }
    // Grace from before continues.
    for (p, since) in &old_grace {
        if !published.contains(p) {
            grace.insert(*p, *since);
        }
    }

    let mut next: BTreeMap<IpNet, Option<SystemTime>> = published.iter().map(|p| (*p, None)).collect();
    for (p, since) in grace {
        // A clock that went backwards keeps the prefix (duration_since fails).
        let expired = now.duration_since(since).map(|age| age >= cfg.grace).unwrap_or(false);
        if expired {
            diff.expired.push(p);
        } else {
            next.insert(p, Some(since));
        }
    }
    diff.confirmed.sort();
    diff.expired.sort();

    diff.content_changed = prev.is_none_or(|p| p.content_sha256 != hash);
    diff.effective_changed = prev.is_none() || !diff.added.is_empty() || !diff.expired.is_empty();
    diff.in_grace = next
        .iter()
        .filter_map(|(p, r)| r.map(|t| GraceEntry { prefix: *p, removed_at: t, expires_at: t + cfg.grace }))
        .collect();
    for h in &holds {
        if h.files > 1 {
            warnings.push(format!(
                "removal of {} prefix(es) held since {} ({}): {} of {} confirming files seen",
                h.prefixes.len(),
                crate::time::format(h.since),
                h.detail,
                h.files,
                cfg.hold_refreshes
            ));
        }
    }
    diff.warnings = warnings;

    let mut history = prev.map(|p| p.history.clone()).unwrap_or_default();
    let changed_number = prev.is_none_or(|p| p.change_number != new.change_number);
    if diff.content_changed
        || diff.effective_changed
        || changed_number
        || !diff.restored.is_empty()
        || !diff.confirmed.is_empty()
    {
        history.push(HistoryEntry {
            time: now,
            change_number: new.change_number,
            added: diff.added.len(),
            removed: diff.removed.len(),
            restored: diff.restored.len(),
            expired: diff.expired.len(),
            held: diff.held.len(),
            confirmed: diff.confirmed.len(),
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
        highest_change_number: prev.map_or(new.change_number, |p| p.highest_change_number.max(new.change_number)),
        file_accepted: if new_file { Some(now) } else { prev.map(State::file_accepted) },
        holds,
        hold_refreshes: cfg.hold_refreshes,
    };
    Ok((state, diff))
}

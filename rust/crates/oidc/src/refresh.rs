//! One provider's refresh (feature `fetch`): discover, fetch its range files (published
//! providers), resolve its names, fold the answers into its state with the pure update policy,
//! and save. The state file is replaced only when everything succeeded; the status file records
//! every attempt. Check mode computes the same and writes nothing.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::config::{Addresses, Provider};
use crate::discovery::Discovery;
use crate::dns::{update, DnsPolicy, DnsReport};
use crate::error::{Error, ErrorKind, Result};
use crate::fetch::{fetch_discovery, fetch_ranges, read_discovery, FetchOptions, FetchedDiscovery};
use crate::names::HostPort;
use crate::published::{merge_published, PublishedPolicy};
use crate::resolve::{resolve, ResolverOptions};
use crate::state::{
    load_provider_state, load_provider_status, save_provider_state, save_provider_status, ProviderState,
    ProviderStatus, PROVIDER_STATE_VERSION,
};

/// Everything a refresh needs besides the provider.
#[derive(Clone, Debug)]
pub struct RefreshOptions {
    pub state_dir: PathBuf,
    pub fetch: FetchOptions,
    pub resolver: ResolverOptions,
    pub dns: DnsPolicy,
    pub published: PublishedPolicy,
    /// Read the discovery document from this file instead of fetching it (one provider).
    pub discovery_file: Option<PathBuf>,
    /// Read each provider's discovery document from `<dir>/<id>.json` instead of fetching it
    /// (controller mode: the controller's `discover --save-dir` wrote it, the role pushed it).
    pub discovery_dir: Option<PathBuf>,
    /// Compute and report; write nothing.
    pub check: bool,
}

/// What a refresh found and did.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub state: ProviderState,
    pub previous: Option<ProviderState>,
    pub report: DnsReport,
    /// The range list's diff, for published providers.
    pub ranges_diff: Option<vorfw_entra::Diff>,
    /// The state file was written (false in check mode).
    pub saved: bool,
    /// The discovery document could not be fetched (a network, TLS, HTTP or time-out failure):
    /// the names of the stored document were resolved instead, so a provider whose addresses
    /// moved stays reachable even where restricted egress only admits its old ones.
    pub discovery_error: Option<Error>,
}

impl Outcome {
    /// Effective resolved addresses added and removed against the stored state.
    pub fn address_changes(&self) -> (Vec<std::net::IpAddr>, Vec<std::net::IpAddr>) {
        let before: BTreeSet<_> = self.previous.as_ref().map(|p| p.dns.effective()).unwrap_or_default();
        let after = self.state.dns.effective();
        (after.difference(&before).copied().collect(), before.difference(&after).copied().collect())
    }

    /// Whether the state differs from the stored one (beyond times).
    pub fn changed(&self) -> bool {
        let Some(p) = &self.previous else { return true };
        let (a, r) = self.address_changes();
        !a.is_empty()
            || !r.is_empty()
            || self.report.changed
            || p.names != self.state.names
            || p.range_prefixes() != self.state.range_prefixes()
    }
}

/// Where a provider's pushed discovery document is read from: `<dir>/<id>.json`.
pub fn pushed_discovery_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}.json"))
}

/// The discovery document: from the configured file, the provider's file in the configured
/// directory, or fetched.
pub fn discovery_of(p: &Provider, opts: &RefreshOptions) -> Result<(Discovery, Vec<HostPort>)> {
    let f = fetched_discovery_of(p, opts)?;
    Ok((f.discovery, f.redirect_hosts))
}

/// [`discovery_of`], keeping the bytes fetched or read.
pub fn fetched_discovery_of(p: &Provider, opts: &RefreshOptions) -> Result<FetchedDiscovery> {
    if let Some(f) = &opts.discovery_file {
        return read_discovery(f, &p.issuer, &opts.fetch.discovery);
    }
    let Some(dir) = &opts.discovery_dir else { return fetch_discovery(&p.issuer, &opts.fetch) };
    let path = pushed_discovery_path(dir, &p.id);
    match std::fs::symlink_metadata(&path) {
        Ok(_) => read_discovery(&path, &p.issuer, &opts.fetch.discovery)
            .map_err(|e| e.context(format!("provider {:?}", p.id))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::new(
            ErrorKind::Config,
            format!(
                "provider {:?}: no discovery document {} (--discovery-dir: the controller's `oidc discover \
                 --save-dir` writes <id>.json and controller mode pushes it; is the provider in the \
                 controller's list?)",
                p.id,
                path.display()
            ),
        )),
        Err(e) => {
            Err(Error::new(ErrorKind::Config, format!("provider {:?}: cannot read {}: {e}", p.id, path.display())))
        }
    }
}

/// Whether the discovery document is fetched (not read from a file, which is never a transport
/// failure to fall back from).
fn fetches(opts: &RefreshOptions) -> bool {
    opts.discovery_file.is_none() && opts.discovery_dir.is_none()
}

fn compute(p: &Provider, opts: &RefreshOptions, now: SystemTime) -> Result<Outcome> {
    let dir = &opts.state_dir;
    let previous = load_provider_state(dir, &p.id)?;
    let (discovery, redirect_hosts, discovery_error) = match (discovery_of(p, opts), &previous) {
        (Ok((d, r)), _) => (d, r, None),
        // Only a failure to fetch falls back to the stored document, never a refused one (an
        // issuer mismatch, http, too large, too many hosts): that keeps the state unchanged. A
        // document read from a file (pushed by the controller) is not fetched: no fallback.
        (Err(e), Some(prev)) if fetches(opts) && e.kind().is_transport() && prev.provider.issuer == p.issuer => {
            (prev.discovery.clone(), prev.redirect_hosts.clone(), Some(e))
        }
        (Err(e), _) => return Err(e),
    };
    let mut names = p.names(&discovery);
    names.extend(redirect_hosts.iter().filter_map(|h| h.host.name().map(str::to_string)));
    let mut ports = p.ports(&discovery);
    ports.extend(redirect_hosts.iter().map(|h| h.port));

    let (ranges, range_sources, ranges_diff) = match &p.addresses {
        Addresses::Published(pubd) => {
            let f = fetch_ranges(pubd, &opts.fetch)?;
            let (mut st, diff) =
                merge_published(previous.as_ref().and_then(|s| s.ranges.as_ref()), &f.set, &opts.published, now)?;
            st.source = f.sources.join(" ");
            for h in &f.redirect_hosts {
                if let Some(n) = h.host.name() {
                    names.insert(n.to_string());
                }
            }
            (Some(st), f.sources, Some(diff))
        }
        Addresses::Entra { .. } | Addresses::Dns => (None, Vec::new(), None),
    };

    let answers = resolve(&names, &opts.resolver)?;
    let (dns, report) = update(previous.as_ref().map(|s| &s.dns), now, &answers, &opts.dns)?;
    let state = ProviderState {
        version: PROVIDER_STATE_VERSION,
        provider: p.clone(),
        discovery,
        redirect_hosts,
        names,
        ports,
        policy: opts.dns.clone(),
        sets: dns.sets(),
        dns,
        ranges,
        range_sources,
        last_success: now,
    };
    Ok(Outcome { state, previous, report, ranges_diff, saved: false, discovery_error })
}

/// Refresh one provider. On failure the state file is untouched and the status file says why
/// (not in check mode).
pub fn refresh_provider(p: &Provider, opts: &RefreshOptions, now: SystemTime) -> Result<Outcome> {
    if opts.check {
        return compute(p, opts, now);
    }
    let dir = &opts.state_dir;
    // One refresh of a provider at a time (the timer and an operator): the second waits.
    let lock_path = dir.join(format!(".{}.lock", p.id));
    let _lock =
        vorfw_sys::Lock::take(&lock_path, vorfw_sys::LockKind::Wait).map_err(|e| Error::new(ErrorKind::State, e))?;
    let result = compute(p, opts, now);
    let prev_status = load_provider_status(dir, &p.id).ok().flatten();
    match result {
        Ok(mut o) => {
            save_provider_state(dir, &o.state)?;
            o.saved = true;
            let st = &o.state;
            let status = ProviderStatus {
                version: PROVIDER_STATE_VERSION,
                provider: p.id.clone(),
                issuer: p.issuer.as_str().to_string(),
                ok: true,
                last_attempt: now,
                last_success: Some(now),
                last_failure: prev_status.as_ref().and_then(|s| s.last_failure),
                consecutive_failures: 0,
                error_kind: None,
                error: None,
                next_refresh: Some(st.dns.next_refresh),
                failing_names: st
                    .dns
                    .failing_names()
                    .into_iter()
                    .map(|(n, e)| (n.to_string(), e.to_string()))
                    .collect(),
                counts: st.dns.counts(st.policy.grace),
                prefixes: st.range_prefixes().len(),
                warnings: o.report.warnings.clone(),
                discovery_error: o.discovery_error.as_ref().map(|e| format!("{}: {}", e.kind().as_str(), e.message())),
            };
            save_provider_status(dir, &status)?;
            Ok(o)
        }
        Err(e) => {
            let status = failed_status(p, prev_status, dir, &e, now);
            // The refresh's error matters more than a status file that cannot be written.
            let _ = save_provider_status(dir, &status);
            Err(e)
        }
    }
}

fn failed_status(p: &Provider, prev: Option<ProviderStatus>, dir: &Path, e: &Error, now: SystemTime) -> ProviderStatus {
    let stored = load_provider_state(dir, &p.id).ok().flatten();
    ProviderStatus {
        version: PROVIDER_STATE_VERSION,
        provider: p.id.clone(),
        issuer: p.issuer.as_str().to_string(),
        ok: false,
        last_attempt: now,
        last_success: prev.as_ref().and_then(|s| s.last_success).or(stored.as_ref().map(|s| s.last_success)),
        last_failure: Some(now),
        consecutive_failures: prev.as_ref().map_or(0, |s| s.consecutive_failures).saturating_add(1),
        error_kind: Some(e.kind().as_str().to_string()),
        error: Some(e.message().to_string()),
        next_refresh: prev.as_ref().and_then(|s| s.next_refresh),
        failing_names: prev.as_ref().map(|s| s.failing_names.clone()).unwrap_or_default(),
        counts: stored.as_ref().map(|s| s.dns.counts(s.policy.grace)).unwrap_or_default(),
        prefixes: stored.as_ref().map_or(0, |s| s.range_prefixes().len()),
        warnings: Vec::new(),
        discovery_error: None,
    }
}

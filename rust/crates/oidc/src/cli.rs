//! The `vorfw oidc` command line (also `vorfw-entra oidc` on hosts): `discover`, `resolve`,
//! `diff`, `show`, `status`, `refresh`.
//!
//! Exit codes: 0 success; 1 a provider failed (for `status`: its last refresh failed or none
//! succeeded); 2 usage error; 3 (`status`) some names' lookups failed, their addresses kept;
//! 4 (`status`) a refresh is overdue.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use clap::{Args, Parser, Subcommand};
use serde_json::{json, Value};

use crate::config::{parse_provider, parse_providers, Provider};
use crate::dns::DnsPolicy;
use crate::error::{Error, ErrorKind, Result};
use crate::fetch::{FetchOptions, FetchedDiscovery};
use crate::published::PublishedPolicy;
use crate::refresh::{fetched_discovery_of, pushed_discovery_path, refresh_provider, Outcome, RefreshOptions};
use crate::resolve::{ResolverOptions, DEFAULT_RESOLV_CONF};
use crate::state::{
    load_provider_state, load_provider_status, stored_ids, Health, ProviderState, DEFAULT_OIDC_STATE_DIR,
};

pub const EXIT_OK: i32 = 0;
pub const EXIT_FAILED: i32 = 1;
pub const EXIT_DEGRADED: i32 = 3;
pub const EXIT_OVERDUE: i32 = 4;

#[derive(Parser, Debug)]
#[command(
    name = "vorfw oidc",
    version,
    about = "OIDC provider egress: discovery names, their addresses through this host's resolvers, per-provider state"
)]
struct Cli {
    /// State directory: <provider>.json (the accepted state) and <provider>.status.json.
    #[arg(long, global = true, env = "VORFW_OIDC_STATE_DIR", default_value = DEFAULT_OIDC_STATE_DIR)]
    state_dir: PathBuf,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

/// What `resolve`, `diff` and `refresh` take: the providers, how to fetch, how to resolve.
#[derive(clap::Args, Debug)]
struct ResolveArgs {
    #[command(flatten)]
    providers: ProviderArgs,
    #[command(flatten)]
    fetch: FetchArgs,
    #[command(flatten)]
    resolver: ResolverArgs,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Fetch and validate each provider's discovery document; print the names and ports.
    Discover {
        #[command(flatten)]
        providers: ProviderArgs,
        #[command(flatten)]
        fetch: FetchArgs,
        /// Write each accepted document, its bytes unchanged, to DIR/<id>.json (created; replaced
        /// atomically), for hosts that read them with --discovery-dir (controller mode). A
        /// refused document writes nothing.
        #[arg(long, value_name = "DIR")]
        save_dir: Option<PathBuf>,
    },
    /// Discover, resolve the names and update the state (--check: show what would change).
    Resolve {
        #[command(flatten)]
        args: ResolveArgs,
        /// Report what would change; write nothing.
        #[arg(long)]
        check: bool,
    },
    /// What a refresh would add and remove against the stored state; writes nothing.
    Diff {
        #[command(flatten)]
        args: ResolveArgs,
    },
    /// `resolve` for every configured provider (what the timer runs).
    Refresh {
        #[command(flatten)]
        args: ResolveArgs,
        /// Skip a provider whose last refresh succeeded and whose next one (from the answers'
        /// TTLs, 5 min to 1 h) is not due yet: a timer running every few minutes then honours
        /// the TTLs without asking more often than they say.
        #[arg(long)]
        if_due: bool,
    },
    /// Print the stored names, address sets and ranges.
    Show {
        /// Only this provider (default: every provider in the state directory).
        #[arg(long)]
        provider: Vec<String>,
    },
    /// Per-provider health. Exit 0 healthy; 1 failing (or never refreshed); 3 names failing,
    /// their addresses kept; 4 overdue.
    Status {
        /// Only this provider (default: every provider in the state directory).
        #[arg(long)]
        provider: Vec<String>,
        /// How late past its due time a refresh may be before it is overdue.
        #[arg(long, default_value = "1h", value_parser = parse_duration)]
        slack: Duration,
        /// Pretend the current time is this (RFC 3339), for tests.
        #[arg(long, hide = true, value_parser = parse_time)]
        now: Option<SystemTime>,
    },
}

#[derive(Args, Debug)]
struct ProviderArgs {
    /// The providers: a JSON list of {issuer, addresses, extra_names, name}, or an object holding
    /// it as `host_firewall_oidc_providers`.
    #[arg(long, value_name = "FILE", required_unless_present = "issuer", conflicts_with = "issuer")]
    providers: Option<PathBuf>,
    /// One provider by its issuer.
    #[arg(long)]
    issuer: Option<String>,
    /// Its addresses: dns (default), entra, or the JSON of an `addresses` object.
    #[arg(long, requires = "issuer")]
    addresses: Option<String>,
    /// Its id (default: derived from the issuer's host).
    #[arg(long, requires = "issuer")]
    name: Option<String>,
    /// Names allowed beside the document's (NAME or NAME:PORT; repeatable).
    #[arg(long = "extra-name", requires = "issuer")]
    extra_names: Vec<String>,
    /// Read the discovery document from this file (fetched elsewhere) instead of fetching it;
    /// one provider only.
    #[arg(long, value_name = "FILE", conflicts_with = "discovery_dir")]
    discovery_file: Option<PathBuf>,
    /// Read each provider's discovery document from DIR/<id>.json (written by `discover
    /// --save-dir` elsewhere: the controller) instead of fetching it; validated the same way.
    #[arg(long, value_name = "DIR")]
    discovery_dir: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct FetchArgs {
    /// PEM bundle of CA certificates trusted beside the system's.
    #[arg(long, value_name = "PEM")]
    ca_bundle: Option<PathBuf>,
    /// Use this proxy instead of HTTPS_PROXY/NO_PROXY from the environment.
    #[arg(long, conflicts_with = "no_proxy")]
    proxy: Option<String>,
    /// Connect directly, ignoring proxy environment variables.
    #[arg(long)]
    no_proxy: bool,
    /// Limit for one request (e.g. 30s).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    timeout: Duration,
    /// Extra attempts for transient failures.
    #[arg(long, default_value_t = 2)]
    retries: u32,
    /// Connect to HOST at ADDR instead of resolving it (HOST:ADDR; the port stays the URL's):
    /// a lab without DNS for the fetch.
    #[arg(long = "connect-to", value_name = "HOST:ADDR", value_parser = parse_connect_to)]
    connect_to: Vec<(String, SocketAddr)>,
    /// Accept special-use prefixes in range files and special-use resolved addresses (a lab).
    #[arg(long)]
    allow_special_use: bool,
}

#[derive(Args, Debug)]
struct ResolverArgs {
    /// The resolver configuration whose nameservers are asked.
    #[arg(long, value_name = "FILE", default_value = DEFAULT_RESOLV_CONF)]
    resolv_conf: PathBuf,
    /// Ask the nameservers on this port instead of 53 (a lab or test resolver).
    #[arg(long, value_name = "PORT")]
    dns_port: Option<u16>,
    /// Override resolv.conf's timeout per query (e.g. 2s).
    #[arg(long, value_parser = parse_duration)]
    dns_timeout: Option<Duration>,
    /// How long an address stays allowed after it left the answers (e.g. 1d).
    #[arg(long, default_value = "1d", value_parser = parse_duration)]
    grace: Duration,
    /// Refuse an update holding more addresses than this.
    #[arg(long, default_value_t = DnsPolicy::default().max_addresses)]
    max_addresses: usize,
    /// Pretend the current time is this (RFC 3339), for tests.
    #[arg(long, hide = true, value_parser = parse_time)]
    now: Option<SystemTime>,
}

fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    vorfw_entra::time::parse_duration(s)
}
fn parse_time(s: &str) -> std::result::Result<SystemTime, String> {
    vorfw_entra::time::parse(s)
}
fn parse_connect_to(s: &str) -> std::result::Result<(String, SocketAddr), String> {
    let (host, addr) = s.split_once(':').ok_or_else(|| format!("{s:?} is not HOST:ADDR"))?;
    let ip: std::net::IpAddr =
        addr.trim_matches(['[', ']']).parse().map_err(|_| format!("{addr:?} is not an IP address"))?;
    Ok((host.to_ascii_lowercase(), SocketAddr::new(ip, 0)))
}

fn fmt_time(t: SystemTime) -> String {
    vorfw_entra::time::format(t)
}

impl ProviderArgs {
    fn load(&self) -> Result<Vec<Provider>> {
        let list = if let Some(path) = &self.providers {
            let bytes = std::fs::read(path)
                .map_err(|e| Error::new(ErrorKind::Config, format!("cannot read {}: {e}", path.display())))?;
            let v: Value = serde_json::from_slice(&bytes)
                .map_err(|e| Error::new(ErrorKind::Config, format!("{} is not JSON: {e}", path.display())))?;
            let v = match v {
                Value::Object(mut o) if o.contains_key("host_firewall_oidc_providers") => {
                    o.remove("host_firewall_oidc_providers").unwrap_or_default()
                }
                v => v,
            };
            parse_providers(&v).map_err(|e| e.context(path.display()))?
        } else {
            let issuer = self.issuer.clone().unwrap_or_default();
            let mut o = serde_json::Map::new();
            o.insert("issuer".into(), issuer.into());
            if let Some(a) = &self.addresses {
                let v = if a.trim_start().starts_with('{') {
                    serde_json::from_str(a)
                        .map_err(|e| Error::new(ErrorKind::Config, format!("--addresses {a:?} is not JSON: {e}")))?
                } else {
                    Value::String(a.clone())
                };
                o.insert("addresses".into(), v);
            }
            if let Some(n) = &self.name {
                o.insert("name".into(), n.clone().into());
            }
            if !self.extra_names.is_empty() {
                o.insert("extra_names".into(), self.extra_names.clone().into());
            }
            vec![parse_provider(&Value::Object(o))?]
        };
        if self.discovery_file.is_some() && list.len() != 1 {
            return Err(Error::new(
                ErrorKind::Config,
                format!("--discovery-file is for one provider; {} are configured", list.len()),
            ));
        }
        Ok(list)
    }
}

fn options(dir: &Path, p: &ProviderArgs, f: &FetchArgs, r: Option<&ResolverArgs>, check: bool) -> RefreshOptions {
    let mut fetch = FetchOptions::default();
    fetch.http.extra_ca = f.ca_bundle.clone();
    fetch.http.timeout = f.timeout;
    fetch.http.retries = f.retries;
    fetch.http.proxy = match (&f.proxy, f.no_proxy) {
        (Some(p), _) => vorfw_entra::ProxyMode::Url(p.clone()),
        (None, true) => vorfw_entra::ProxyMode::Direct,
        (None, false) => vorfw_entra::ProxyMode::Env,
    };
    fetch.resolve = f.connect_to.clone();
    fetch.allow_special_use = f.allow_special_use;
    let mut dns = DnsPolicy { allow_special_use: f.allow_special_use, ..DnsPolicy::default() };
    let mut resolver = ResolverOptions::default();
    if let Some(r) = r {
        dns.grace = r.grace;
        dns.max_addresses = r.max_addresses;
        resolver.resolv_conf = r.resolv_conf.clone();
        resolver.port = r.dns_port;
        resolver.timeout = r.dns_timeout;
    }
    RefreshOptions {
        state_dir: dir.to_path_buf(),
        fetch,
        resolver,
        dns,
        published: PublishedPolicy::default(),
        discovery_file: p.discovery_file.clone(),
        discovery_dir: p.discovery_dir.clone(),
        check,
    }
}

/// Run the command line; returns the exit code. `args[0]` is the program name.
pub fn cli(args: Vec<String>) -> i32 {
    cli_with(args, None)
}

/// Re-applies this host's firewall with the providers' new addresses: `check -> report`
/// (`vorfw-entra oidc refresh` on a host: `vorfw_refresher::host_oidc_applier`).
pub type Applier<'a> = &'a dyn Fn(bool) -> std::result::Result<vorfw_entra::ApplyReport, String>;

/// [`cli`], with `refresh` re-applying the host firewall through `applier` when a provider's
/// addresses changed (without one, `refresh` updates the state only).
pub fn cli_with(args: Vec<String>, applier: Option<Applier>) -> i32 {
    let parsed = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return e.exit_code();
        }
    };
    let mut out = String::new();
    let mut err = String::new();
    let code = run(parsed, applier, &mut out, &mut err);
    use std::io::Write;
    let _ = std::io::stderr().write_all(err.as_bytes());
    let _ = std::io::stdout().write_all(out.as_bytes()).and_then(|_| std::io::stdout().flush());
    code
}

fn run(cli: Cli, applier: Option<Applier>, out: &mut String, err: &mut String) -> i32 {
    let dir = cli.state_dir.as_path();
    let json = cli.json;
    let result = match &cli.cmd {
        Cmd::Discover { providers, fetch, save_dir } => {
            discover_cmd(dir, providers, fetch, save_dir.as_deref(), json, out, err)
        }
        Cmd::Resolve { args, check } => {
            let mode = if *check { Mode::Check } else { Mode::Apply };
            resolve_cmd(dir, args, mode, json, out, err, &mut false)
        }
        Cmd::Diff { args } => resolve_cmd(dir, args, Mode::Diff, json, out, err, &mut false),
        Cmd::Refresh { args, if_due } => {
            let mode = if *if_due { Mode::IfDue } else { Mode::Apply };
            let mut changed = false;
            let code = resolve_cmd(dir, args, mode, json, out, err, &mut changed);
            match (code, applier) {
                // The firewall follows what the state now holds, even when one provider failed
                // (the others' new addresses apply; the failed one kept its own).
                (Ok(c), Some(apply)) if changed => match apply(false) {
                    Ok(r) => {
                        if json {
                            let _ = writeln!(
                                out,
                                "{}",
                                json!({"firewall": {"changed": r.changed, "summary": r.summary, "detail": r.detail}})
                            );
                        } else {
                            let _ = writeln!(out, "firewall: {}", r.summary);
                        }
                        Ok(c)
                    }
                    Err(e) => {
                        let _ = writeln!(err, "vorfw oidc: applying the new addresses to the firewall failed: {e}");
                        Ok(EXIT_FAILED)
                    }
                },
                (code, _) => code,
            }
        }
        Cmd::Show { provider } => show_cmd(dir, provider, json, out),
        Cmd::Status { provider, slack, now } => {
            status_cmd(dir, provider, *slack, now.unwrap_or_else(SystemTime::now), json, out)
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            let _ = writeln!(err, "vorfw oidc: error [{}]: {e}", e.kind());
            EXIT_FAILED
        }
    }
}

/// Write a provider's accepted document to `<dir>/<id>.json`, its bytes unchanged.
fn save_discovery(dir: &Path, id: &str, bytes: &[u8]) -> Result<PathBuf> {
    let path = pushed_discovery_path(dir, id);
    vorfw_sys::replace(&path, bytes, 0o644).map_err(|e| Error::new(ErrorKind::State, e))?;
    Ok(path)
}

fn discover_cmd(
    dir: &Path,
    p: &ProviderArgs,
    f: &FetchArgs,
    save_dir: Option<&Path>,
    json: bool,
    out: &mut String,
    err: &mut String,
) -> Result<i32> {
    let providers = p.load()?;
    let opts = options(dir, p, f, None, true);
    if let Some(s) = save_dir {
        std::fs::create_dir_all(s)
            .map_err(|e| Error::new(ErrorKind::State, format!("cannot create {}: {e}", s.display())))?;
    }
    let mut code = EXIT_OK;
    let mut docs = Vec::new();
    for pr in &providers {
        let fetched = fetched_discovery_of(pr, &opts).and_then(|fd| match save_dir {
            Some(s) => save_discovery(s, &pr.id, &fd.bytes).map(|path| (fd, Some(path))),
            None => Ok((fd, None)),
        });
        match fetched {
            Ok((FetchedDiscovery { discovery: d, redirect_hosts: redirects, .. }, saved)) => {
                let names = pr.names(&d);
                let ports = pr.ports(&d);
                if json {
                    docs.push(json!({
                        "provider": pr.id, "issuer": pr.issuer.as_str(), "ok": true,
                        "names": names, "ports": ports,
                        "hosts": pr.hosts(&d).iter().map(|h| h.to_string()).collect::<Vec<_>>(),
                        "redirect_hosts": redirects.iter().map(|h| h.to_string()).collect::<Vec<_>>(),
                        "endpoints": d.endpoints, "warnings": d.warnings,
                        "saved": saved.as_ref().map(|p| p.display().to_string()),
                    }));
                } else {
                    let _ = writeln!(out, "{} ({}):", pr.id, pr.issuer);
                    for h in pr.hosts(&d) {
                        let _ = writeln!(out, "  {h}");
                    }
                    for h in &redirects {
                        let _ = writeln!(out, "  {h} (redirect)");
                    }
                    for w in &d.warnings {
                        let _ = writeln!(out, "  warning: {w}");
                    }
                    if let Some(path) = &saved {
                        let _ = writeln!(out, "  saved to {}", path.display());
                    }
                }
            }
            Err(e) => {
                code = EXIT_FAILED;
                let _ = writeln!(err, "vorfw oidc: {}: error [{}]: {e}", pr.id, e.kind());
                if json {
                    docs.push(json!({"provider": pr.id, "issuer": pr.issuer.as_str(), "ok": false,
                                     "error_kind": e.kind().as_str(), "error": e.message()}));
                }
            }
        }
    }
    if json {
        let _ = writeln!(out, "{}", serde_json::to_string_pretty(&docs).unwrap_or_default());
    }
    Ok(code)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Apply,
    IfDue,
    Check,
    Diff,
}

/// When a provider's next refresh is due, if its last refresh succeeded and it is not due yet.
fn not_due(dir: &Path, id: &str, now: SystemTime) -> Option<SystemTime> {
    let st = load_provider_status(dir, id).ok().flatten()?;
    let next = st.next_refresh?;
    (st.ok && now < next && load_provider_state(dir, id).ok().flatten().is_some()).then_some(next)
}

fn resolve_cmd(
    dir: &Path,
    a: &ResolveArgs,
    mode: Mode,
    json: bool,
    out: &mut String,
    err: &mut String,
    changed: &mut bool,
) -> Result<i32> {
    let (p, f, r) = (&a.providers, &a.fetch, &a.resolver);
    let providers = p.load()?;
    let check = matches!(mode, Mode::Check | Mode::Diff);
    let diff_only = mode == Mode::Diff;
    let opts = options(dir, p, f, Some(r), check);
    let now = r.now.unwrap_or_else(SystemTime::now);
    let mut code = EXIT_OK;
    let mut docs = Vec::new();
    for pr in &providers {
        if mode == Mode::IfDue {
            if let Some(next) = not_due(dir, &pr.id, now) {
                if json {
                    docs.push(json!({"provider": pr.id, "ok": true, "skipped": true, "next_refresh": fmt_time(next)}));
                } else {
                    let _ = writeln!(out, "{}: not due until {}", pr.id, fmt_time(next));
                }
                continue;
            }
        }
        match refresh_provider(pr, &opts, now) {
            Ok(o) => {
                *changed |= o.saved && o.changed();
                if json {
                    docs.push(outcome_json(&o, check));
                } else if diff_only {
                    diff_text(&o, out);
                } else {
                    outcome_text(&o, check, out);
                }
                for w in &o.report.warnings {
                    let _ = writeln!(err, "vorfw oidc: {}: warning: {w}", pr.id);
                }
                if let Some(e) = &o.discovery_error {
                    let _ = writeln!(
                        err,
                        "vorfw oidc: {}: warning: discovery failed [{}]: {e}; resolved the stored document's names",
                        pr.id,
                        e.kind()
                    );
                }
            }
            Err(e) => {
                code = EXIT_FAILED;
                let kept = if check { "" } else { "; the stored state is unchanged" };
                let _ = writeln!(err, "vorfw oidc: {}: error [{}]: {e}{kept}", pr.id, e.kind());
                if json {
                    docs.push(json!({"provider": pr.id, "ok": false, "error_kind": e.kind().as_str(),
                                     "error": e.message()}));
                }
            }
        }
    }
    if json {
        let _ = writeln!(out, "{}", serde_json::to_string_pretty(&docs).unwrap_or_default());
    }
    Ok(code)
}

fn ips(v: &[std::net::IpAddr]) -> Vec<String> {
    v.iter().map(|a| a.to_string()).collect()
}

fn outcome_json(o: &Outcome, check: bool) -> Value {
    let (added, removed) = o.address_changes();
    let s = &o.state;
    json!({
        "provider": s.provider.id,
        "issuer": s.provider.issuer.as_str(),
        "ok": true,
        "check": check,
        "saved": o.saved,
        "changed": o.changed(),
        "names": s.names,
        "ports": s.ports,
        "added": ips(&added),
        "removed": ips(&removed),
        "entered_grace": ips(&o.report.entered_grace),
        "restored": ips(&o.report.restored),
        "failed": o.report.failed.iter().map(|f| json!({"name": f.name, "error": f.message, "kept": f.kept})).collect::<Vec<_>>(),
        "warnings": o.report.warnings,
        "discovery_error": o.discovery_error.as_ref().map(|e| format!("{}: {}", e.kind().as_str(), e.message())),
        "ipv4": s.sets.ipv4,
        "ipv6": s.sets.ipv6,
        "prefixes": s.range_prefixes().iter().map(|p| p.to_string()).collect::<Vec<_>>(),
        "next_refresh": fmt_time(s.dns.next_refresh),
    })
}

fn outcome_text(o: &Outcome, check: bool, out: &mut String) {
    let s = &o.state;
    let (added, removed) = o.address_changes();
    let verb = if check { "would change" } else { "changed" };
    let head = if o.changed() { verb } else { "unchanged" };
    let _ = writeln!(
        out,
        "{}: {head}: {} names, {} IPv4 and {} IPv6 addresses ({} in grace){}; next refresh {}",
        s.provider.id,
        s.names.len(),
        s.sets.ipv4.len(),
        s.sets.ipv6.len(),
        s.dns.in_grace(s.policy.grace).len(),
        if s.ranges.is_some() { format!(", {} published prefixes", s.range_prefixes().len()) } else { String::new() },
        fmt_time(s.dns.next_refresh)
    );
    diff_lines(o, &added, &removed, out);
}

fn diff_text(o: &Outcome, out: &mut String) {
    let (added, removed) = o.address_changes();
    let _ = writeln!(out, "{}: {} added, {} removed", o.state.provider.id, added.len(), removed.len());
    diff_lines(o, &added, &removed, out);
}

fn diff_lines(o: &Outcome, added: &[std::net::IpAddr], removed: &[std::net::IpAddr], out: &mut String) {
    for a in added {
        let _ = writeln!(out, "+ {a}");
    }
    for a in removed {
        let _ = writeln!(out, "- {a}");
    }
    for a in &o.report.entered_grace {
        let _ = writeln!(out, "~ {a} (no longer answered; kept for the grace period)");
    }
    for f in &o.report.failed {
        let _ = writeln!(out, "! {}: {} (its {} address(es) kept)", f.name, f.message, f.kept);
    }
    if let Some(d) = &o.ranges_diff {
        for p in &d.added {
            let _ = writeln!(out, "+ {p} (published)");
        }
        for p in &d.removed {
            let _ = writeln!(out, "- {p} (published)");
        }
    }
}

fn ids(dir: &Path, wanted: &[String]) -> Result<Vec<String>> {
    if !wanted.is_empty() {
        return Ok(wanted.to_vec());
    }
    let ids = stored_ids(dir)?;
    if ids.is_empty() {
        return Err(Error::new(ErrorKind::State, format!("no provider state in {}", dir.display())));
    }
    Ok(ids)
}

fn show_cmd(dir: &Path, wanted: &[String], json: bool, out: &mut String) -> Result<i32> {
    let mut docs = Vec::new();
    for id in ids(dir, wanted)? {
        let s: ProviderState = load_provider_state(dir, &id)?.ok_or_else(|| {
            Error::new(ErrorKind::State, format!("no state for provider {id:?} in {}", dir.display()))
        })?;
        let grace = s.dns.in_grace(s.policy.grace);
        if json {
            let per_name: BTreeMap<&String, Value> = s
                .dns
                .names
                .iter()
                .map(|(n, st)| {
                    let addrs: BTreeMap<String, Value> = st
                        .addresses
                        .iter()
                        .map(|(a, e)| {
                            (
                                a.to_string(),
                                json!({"last_seen": fmt_time(e.last_seen), "ttl": e.ttl,
                                "grace_until": grace.get(a).map(|t| fmt_time(*t))}),
                            )
                        })
                        .collect();
                    (n, json!({"addresses": addrs, "last_error": st.last_error, "failures": st.failures}))
                })
                .collect();
            docs.push(json!({
                "provider": s.provider.id, "issuer": s.provider.issuer.as_str(), "kind": s.provider.addresses.kind(),
                "names": s.names, "ports": s.ports, "ipv4": s.sets.ipv4, "ipv6": s.sets.ipv6,
                "prefixes": s.range_prefixes().iter().map(|p| p.to_string()).collect::<Vec<_>>(),
                "dns": per_name, "last_success": fmt_time(s.last_success),
                "next_refresh": fmt_time(s.dns.next_refresh),
            }));
            continue;
        }
        let _ = writeln!(
            out,
            "{} ({}, {}): last success {}, next refresh {}",
            s.provider.id,
            s.provider.issuer,
            s.provider.addresses.kind(),
            fmt_time(s.last_success),
            fmt_time(s.dns.next_refresh)
        );
        for (n, st) in &s.dns.names {
            let err = st.last_error.as_deref().map(|e| format!(" (last lookup failed: {e})")).unwrap_or_default();
            let _ = writeln!(out, "  {n}{err}");
            for a in st.addresses.keys() {
                let g = grace.get(a).map(|t| format!(" (in grace until {})", fmt_time(*t))).unwrap_or_default();
                let _ = writeln!(out, "    {a}{g}");
            }
        }
        for p in s.range_prefixes() {
            let _ = writeln!(out, "  {p} (published)");
        }
    }
    if json {
        let _ = writeln!(out, "{}", serde_json::to_string_pretty(&docs).unwrap_or_default());
    }
    Ok(EXIT_OK)
}

fn status_cmd(
    dir: &Path,
    wanted: &[String],
    slack: Duration,
    now: SystemTime,
    json: bool,
    out: &mut String,
) -> Result<i32> {
    let mut docs = Vec::new();
    let mut code = EXIT_OK;
    let rank = |c: i32| match c {
        EXIT_FAILED => 3,
        EXIT_OVERDUE => 2,
        EXIT_DEGRADED => 1,
        _ => 0,
    };
    for id in ids(dir, wanted)? {
        let (health, doc, line) = match load_provider_status(dir, &id)? {
            None => (
                Health::Failing,
                json!({"provider": id, "health": Health::Failing, "error": "never refreshed"}),
                format!("{id}: failing: never refreshed (no {id}.status.json)"),
            ),
            Some(st) => {
                let h = st.health(now, slack);
                let mut doc = serde_json::to_value(&st).unwrap_or_default();
                doc["health"] = json!(h);
                let detail = match h {
                    Health::Failing => format!(
                        "last refresh {} failed [{}]: {}; last success {}",
                        fmt_time(st.last_attempt),
                        st.error_kind.as_deref().unwrap_or("?"),
                        st.error.as_deref().unwrap_or("?"),
                        st.last_success.map(fmt_time).unwrap_or_else(|| "never".into())
                    ),
                    Health::Overdue => format!(
                        "next refresh was due {}, last attempt {}",
                        st.next_refresh.map(fmt_time).unwrap_or_default(),
                        fmt_time(st.last_attempt)
                    ),
                    Health::Degraded => {
                        let mut d = Vec::new();
                        if let Some(e) = &st.discovery_error {
                            d.push(format!("discovery failing ({e}), the stored document's names resolved"));
                        }
                        if !st.failing_names.is_empty() {
                            d.push(format!(
                                "lookups failing (addresses kept): {}",
                                st.failing_names
                                    .iter()
                                    .map(|(n, e)| format!("{n}: {e}"))
                                    .collect::<Vec<_>>()
                                    .join("; ")
                            ));
                        }
                        d.join("; ")
                    }
                    Health::Ok => format!(
                        "last success {}, {} addresses ({} in grace), {} names, next refresh {}",
                        st.last_success.map(fmt_time).unwrap_or_default(),
                        st.counts.effective,
                        st.counts.in_grace,
                        st.counts.names,
                        st.next_refresh.map(fmt_time).unwrap_or_default()
                    ),
                };
                let word =
                    serde_json::to_value(h).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
                (h, doc, format!("{id}: {word}: {detail}"))
            }
        };
        let c = match health {
            Health::Ok => EXIT_OK,
            Health::Degraded => EXIT_DEGRADED,
            Health::Overdue => EXIT_OVERDUE,
            Health::Failing => EXIT_FAILED,
        };
        if rank(c) > rank(code) {
            code = c;
        }
        docs.push(doc);
        if !json {
            let _ = writeln!(out, "{line}");
        }
    }
    if json {
        let _ = writeln!(out, "{}", serde_json::to_string_pretty(&docs).unwrap_or_default());
    }
    Ok(code)
}

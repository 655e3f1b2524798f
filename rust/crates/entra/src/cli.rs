//! The `vorfw-entra` command line: `fetch`, `show`, `diff`, `apply`, `status`.
//!
//! Exit codes: 0 success; 1 the refresh failed (or, for `status`, the last one did, or none ran);
//! 2 usage error.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::{
    FeedConfig, Limits, ProxyMode, Source, DEFAULT_LINK_PREFIX, DEFAULT_STATE_DIR, DEFAULT_USER_AGENT,
};
use crate::error::{Error, ErrorKind};
use crate::model::Cloud;
use crate::refresh::{refresh, summary, Outcome};
use crate::state;

#[derive(Parser, Debug)]
#[command(
    name = "vorfw-entra",
    version,
    about = "Microsoft Entra ID address feed: the AzureActiveDirectory service-tag prefixes, validated",
    long_about = "Downloads Microsoft's weekly \"Azure IP Ranges and Service Tags\" file, validates it against the \
                  last applied list (cloud, tags, CIDRs, changeNumber, mass removals), keeps removed prefixes \
                  for a grace period, and writes the effective list as text and JSON."
)]
struct Cli {
    /// State directory: state.json, status.json and the default outputs.
    #[arg(long, global = true, env = "VORFW_ENTRA_STATE_DIR", default_value = DEFAULT_STATE_DIR)]
    state_dir: PathBuf,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Download, validate and save the list (state, outputs, status).
    Fetch {
        #[command(flatten)]
        feed: FeedArgs,
        /// Validate and report, write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Also keep the validated file here (controller mode pushes it to the hosts).
        #[arg(long, value_name = "PATH")]
        save_source: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Print the current effective list.
    Show {
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// What a refresh would add and remove, without saving anything.
    Diff {
        #[command(flatten)]
        feed: FeedArgs,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Fetch, validate, apply the effective list to this host's firewall, then save it
    /// (what the weekly timer runs). A failed apply leaves the firewall and the state as they were.
    Apply {
        #[command(flatten)]
        feed: FeedArgs,
        /// Report what would change in the list and in the firewall; write nothing.
        #[arg(long)]
        check: bool,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Print the last refresh's status. Exit 0 ok; 1 the last refresh failed or none ran;
    /// 3 ok, with removals held; 4 the newest accepted file is older than --max-age.
    Status {
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        /// The newest accepted file is stale past this age (0 turns the check off).
        #[arg(long, default_value = "30d", value_parser = parse_duration)]
        max_age: Duration,
        /// Pretend the current time is this (RFC 3339), for tests and replays.
        #[arg(long, hide = true, value_parser = parse_time)]
        now: Option<SystemTime>,
    },
}

/// Exit codes of `status`, for monitoring.
pub const EXIT_OK: i32 = 0;
pub const EXIT_FAILED: i32 = 1;
pub const EXIT_HELD: i32 = 3;
pub const EXIT_STALE: i32 = 4;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Format {
    Text,
    Json,
}

#[derive(Args, Debug)]
struct FeedArgs {
    /// Azure cloud: public, azure-government or china.
    #[arg(long, default_value = "public", value_parser = parse_cloud)]
    cloud: Cloud,
    /// Service tag to include (repeat for several; the union is used).
    #[arg(long = "tag", value_name = "TAG", default_value = crate::config::DEFAULT_TAG)]
    tags: Vec<String>,
    /// Download this file URL (a known file or an internal mirror) instead of discovering it.
    #[arg(long, conflicts_with_all = ["file", "details_url"])]
    url: Option<String>,
    /// Read this local file instead of downloading.
    #[arg(long, conflicts_with = "details_url")]
    file: Option<PathBuf>,
    /// Discover the file from this details page (default: Microsoft's page for the cloud).
    #[arg(long)]
    details_url: Option<String>,
    /// Accept discovered links only under this prefix.
    #[arg(long, default_value = DEFAULT_LINK_PREFIX)]
    link_prefix: String,
    #[arg(long, default_value = DEFAULT_USER_AGENT)]
    user_agent: String,
    /// Limit for one request, connect to last byte (e.g. 60s, 2m).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    timeout: Duration,
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    connect_timeout: Duration,
    /// Extra attempts for transient failures.
    #[arg(long, default_value_t = 3)]
    retries: u32,
    /// Wait before the first retry (doubles each time, at most 30s).
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    retry_backoff: Duration,
    /// Largest accepted body (e.g. 16MiB).
    #[arg(long, default_value = "16MiB", value_parser = parse_size)]
    max_bytes: u64,
    /// PEM bundle of CA certificates trusted in addition to the system's.
    #[arg(long, value_name = "PEM")]
    ca_file: Option<PathBuf>,
    /// Use this proxy instead of HTTPS_PROXY/NO_PROXY from the environment.
    #[arg(long, conflicts_with = "no_proxy")]
    proxy: Option<String>,
    /// Connect directly, ignoring proxy environment variables.
    #[arg(long)]
    no_proxy: bool,
    /// Accept http:// URLs (internal mirror without TLS).
    #[arg(long)]
    allow_http: bool,
    /// Largest share of published prefixes one file may remove before the removal is held
    /// (0.1 or 10%).
    #[arg(long, default_value = "10%", value_parser = parse_share)]
    max_removal_share: f64,
    /// How long removed prefixes stay allowed (e.g. 14d).
    #[arg(long, default_value = "14d", value_parser = parse_duration)]
    grace: Duration,
    /// A held removal takes effect on this many consecutive new files without its prefixes
    /// (the file that held it included).
    #[arg(long, default_value_t = crate::config::DEFAULT_HOLD_REFRESHES, value_parser = clap::value_parser!(u32).range(1..))]
    hold_refreshes: u32,
    /// Apply held removals now (they enter the grace period), hold none of this file's, and
    /// accept a state saved for another cloud.
    #[arg(long)]
    force: bool,
    /// Refuse IPv4 prefixes wider than this length.
    #[arg(long, default_value_t = Limits::default().widest_ipv4, value_parser = clap::value_parser!(u8).range(0..=32))]
    widest_ipv4: u8,
    /// Refuse IPv6 prefixes wider than this length.
    #[arg(long, default_value_t = Limits::default().widest_ipv6, value_parser = clap::value_parser!(u8).range(0..=128))]
    widest_ipv6: u8,
    /// Accept prefixes in special-use ranges (private, loopback, documentation, ULA...): lab feeds only.
    #[arg(long)]
    allow_special_use: bool,
    /// Refuse a file that adds more prefixes than this at once.
    #[arg(long, default_value_t = Limits::default().max_additions)]
    max_additions: usize,
    /// Refuse a list with more prefixes than this.
    #[arg(long, default_value_t = Limits::default().max_prefixes)]
    max_prefixes: usize,
    /// Refuse a changeNumber more than this above the highest accepted.
    #[arg(long, default_value_t = Limits::default().max_change_number_jump)]
    max_change_number_jump: u64,
    /// Refuse the file unless its SHA-256 is this (a pinned mirror file).
    #[arg(long, value_name = "HEX", value_parser = parse_sha256)]
    sha256: Option<String>,
    /// Plain-text output path (default <state-dir>/prefixes.txt).
    #[arg(long)]
    text_out: Option<PathBuf>,
    /// JSON output path (default <state-dir>/prefixes.json).
    #[arg(long)]
    json_out: Option<PathBuf>,
    /// node_exporter's textfile collector directory: the refresh's outcome as Prometheus metrics
    /// (vorstream_firewall_entra.prom), written only when the directory exists.
    #[arg(long, value_name = "DIR", env = "VORFW_ENTRA_METRICS_DIR")]
    metrics_dir: Option<PathBuf>,
    /// Pretend the current time is this (RFC 3339), for tests and replays.
    #[arg(long, hide = true, value_parser = parse_time)]
    now: Option<SystemTime>,
}

fn parse_cloud(s: &str) -> Result<Cloud, String> {
    s.parse().map_err(|e: Error| e.to_string())
}
fn parse_duration(s: &str) -> Result<Duration, String> {
    crate::time::parse_duration(s)
}
fn parse_size(s: &str) -> Result<u64, String> {
    crate::time::parse_size(s)
}
fn parse_share(s: &str) -> Result<f64, String> {
    crate::time::parse_share(s)
}
fn parse_time(s: &str) -> Result<SystemTime, String> {
    crate::time::parse(s)
}
fn parse_sha256(s: &str) -> Result<String, String> {
    let t = s.trim();
    if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(t.to_ascii_lowercase())
    } else {
        Err(format!("{s:?} is not a SHA-256 (64 hex digits)"))
    }
}

impl FeedArgs {
    fn config(&self) -> FeedConfig {
        let source = if let Some(u) = &self.url {
            Source::Url(u.clone())
        } else if let Some(f) = &self.file {
            Source::File(f.clone())
        } else {
            Source::Discover {
                details_url: self.details_url.clone().unwrap_or_else(|| self.cloud.details_url()),
                link_prefix: self.link_prefix.clone(),
            }
        };
        FeedConfig {
            source,
            cloud: self.cloud,
            tags: self.tags.clone(),
            user_agent: self.user_agent.clone(),
            timeout: self.timeout,
            connect_timeout: self.connect_timeout,
            retries: self.retries,
            retry_backoff: self.retry_backoff,
            max_bytes: self.max_bytes,
            extra_ca: self.ca_file.clone(),
            proxy: match (&self.proxy, self.no_proxy) {
                (Some(p), _) => ProxyMode::Url(p.clone()),
                (None, true) => ProxyMode::Direct,
                (None, false) => ProxyMode::Env,
            },
            allow_http: self.allow_http,
            max_removal_share: self.max_removal_share,
            grace: self.grace,
            hold_refreshes: self.hold_refreshes,
            force: self.force,
            limits: Limits {
                widest_ipv4: self.widest_ipv4,
                widest_ipv6: self.widest_ipv6,
                allow_special_use: self.allow_special_use,
                max_additions: self.max_additions,
                max_prefixes: self.max_prefixes,
                max_change_number_jump: self.max_change_number_jump,
            },
            expect_sha256: self.sha256.clone(),
            text_output: self.text_out.clone(),
            json_output: self.json_out.clone(),
            metrics_dir: self.metrics_dir.clone().filter(|d| !d.as_os_str().is_empty()),
        }
    }
}

/// What applying a list to the host firewall did (or would do, when checking).
#[derive(Clone, Debug, Default)]
pub struct ApplyReport {
    pub changed: bool,
    /// One line for people.
    pub summary: String,
    /// Details for `--format json` (backend, changes, warnings).
    pub detail: serde_json::Value,
}

/// Applies an effective list to the host firewall: `(prefixes, check) -> report`.
pub type Applier<'a> = &'a dyn Fn(&[ipnet::IpNet], bool) -> std::result::Result<ApplyReport, String>;

/// Run the command line (`args[0]` is the program name). Returns the exit code.
pub fn cli(args: Vec<String>) -> i32 {
    cli_with(args, None)
}

/// [`cli`], with the firewall applier that `apply` uses (binaries that link a firewall backend
/// pass one; without it `apply` is refused).
///
/// Nothing here panics on a closed stdout or stderr (`vorfw-entra show | head`): everything a
/// command prints is written once, after its work (and the state) is complete, and a write error
/// on a closed pipe ends the command quietly with its exit code.
pub fn cli_with(args: Vec<String>, applier: Option<Applier>) -> i32 {
    let parsed = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return e.exit_code();
        }
    };
    let mut out = Output::default();
    let code = match run(parsed, applier, &mut out) {
        Ok(code) => code,
        Err(e) => {
            out.err(format_args!("vorfw-entra: error [{}]: {e}", e.kind()));
            EXIT_FAILED
        }
    };
    out.flush();
    code
}

/// What a command prints, written at the end. Writes to a closed pipe are ignored.
#[derive(Default)]
struct Output {
    stdout: String,
    stderr: String,
}

impl Output {
    fn line(&mut self, args: std::fmt::Arguments) {
        use std::fmt::Write;
        let _ = writeln!(self.stdout, "{args}");
    }
    fn err(&mut self, args: std::fmt::Arguments) {
        use std::fmt::Write;
        let _ = writeln!(self.stderr, "{args}");
    }
    fn flush(&mut self) {
        use std::io::Write;
        // Errors here (EPIPE from `| head`, a closed descriptor) are deliberately ignored: the
        // command's work is done and its state consistent; there is nobody left to tell.
        let _ = std::io::stderr().write_all(self.stderr.as_bytes());
        let mut so = std::io::stdout().lock();
        let _ = so.write_all(self.stdout.as_bytes()).and_then(|()| so.flush());
    }
}

macro_rules! outln {
    ($o:expr, $($t:tt)*) => { $o.line(format_args!($($t)*)) };
}
macro_rules! errln {
    ($o:expr, $($t:tt)*) => { $o.err(format_args!($($t)*)) };
}

fn json_text(v: &impl serde::Serialize) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

fn run(cli: Cli, applier: Option<Applier>, out: &mut Output) -> Result<i32, Error> {
    let dir = cli.state_dir;
    match cli.cmd {
        Cmd::Apply { feed, check, format } => {
            let Some(applier) = applier else {
                return Err(Error::new(ErrorKind::Apply, "this build of vorfw-entra cannot apply to a firewall"));
            };
            let cfg = feed.config();
            let now = feed.now.unwrap_or_else(SystemTime::now);
            let previous: Vec<String> = state::load_state(&dir)?
                .map(|s| s.effective().iter().map(|p| p.to_string()).collect())
                .unwrap_or_default();
            let mut fw = ApplyReport::default();
            let outcome = if check {
                let o = refresh(&cfg, &dir, now, true)?;
                let eff: Vec<ipnet::IpNet> = o.effective().into_iter().collect();
                fw = applier(&eff, true).map_err(|m| Error::new(ErrorKind::Apply, m))?;
                o
            } else {
                crate::refresh::refresh_with(&cfg, &dir, now, false, |st, _| {
                    let eff: Vec<ipnet::IpNet> = st.effective().into_iter().collect();
                    fw = applier(&eff, false)?;
                    Ok(())
                })?
            };
            let d = &outcome.diff;
            let list_changed = !d.is_noop();
            match format {
                Format::Json => {
                    let doc = serde_json::json!({
                        "ok": true,
                        "check": check,
                        "changed": list_changed || fw.changed,
                        "list_changed": list_changed,
                        "summary": summary(&outcome),
                        "source": outcome.source,
                        "file_name": outcome.state.file_name,
                        "change_number": outcome.state.change_number,
                        "prefixes": outcome.state.counts(),
                        "diff": d,
                        "held": outcome.state.held_status(),
                        "previous_effective": previous,
                        "effective": outcome.state.effective().iter().map(|p| p.to_string()).collect::<Vec<_>>(),
                        "firewall": {"changed": fw.changed, "summary": fw.summary, "detail": fw.detail},
                        "written": outcome.written,
                    });
                    outln!(out, "{}", json_text(&doc));
                }
                Format::Text => {
                    report(out, &outcome, Format::Text, check);
                    outln!(out, "firewall: {}", fw.summary);
                }
            }
            Ok(EXIT_OK)
        }
        Cmd::Fetch { feed, dry_run, save_source, format } => {
            let cfg = feed.config();
            let outcome = refresh(&cfg, &dir, feed.now.unwrap_or_else(SystemTime::now), dry_run)?;
            // Also in a dry run: the saved copy is the caller's (the controller's), not the state.
            if let Some(path) = &save_source {
                state::atomic_write(path, &outcome.raw)?;
            }
            report(out, &outcome, format, dry_run);
            Ok(EXIT_OK)
        }
        Cmd::Diff { feed, format } => {
            let cfg = feed.config();
            let outcome = refresh(&cfg, &dir, feed.now.unwrap_or_else(SystemTime::now), true)?;
            report(out, &outcome, format, true);
            Ok(EXIT_OK)
        }
        Cmd::Show { format } => {
            let Some(st) = state::load_state(&dir)? else {
                return Err(Error::new(
                    ErrorKind::State,
                    format!("no saved list in {} (run `vorfw-entra fetch` first)", dir.display()),
                ));
            };
            match format {
                Format::Text => out.stdout.push_str(&st.render_text()),
                Format::Json => out.stdout.push_str(&st.render_json()),
            }
            Ok(EXIT_OK)
        }
        Cmd::Status { format, max_age, now } => status(out, &dir, format, max_age, now.unwrap_or_else(SystemTime::now)),
    }
}

/// `status`: the last refresh, the held removals, the age of the newest accepted file.
fn status(
    out: &mut Output,
    dir: &std::path::Path,
    format: Format,
    max_age: Duration,
    now: SystemTime,
) -> Result<i32, Error> {
    let Some(mut s) = state::load_status(dir)? else {
        match format {
            Format::Text => outln!(out, "no refresh recorded in {}", dir.display()),
            Format::Json => outln!(
                out,
                "{}",
                json_text(&serde_json::json!({"ok": false, "condition": "failed", "message": "no refresh recorded"}))
            ),
        }
        return Ok(EXIT_FAILED);
    };
    // The age is the file's age now, not when the status was written.
    if let Some(f) = s.newest_file.as_mut() {
        f.age_secs = now.duration_since(f.accepted_at).map(|d| d.as_secs()).unwrap_or(0);
    }
    let age = s.newest_file.as_ref().map(|f| Duration::from_secs(f.age_secs));
    let stale = !max_age.is_zero() && age.is_some_and(|a| a > max_age);
    let code = if !s.ok {
        EXIT_FAILED
    } else if stale {
        EXIT_STALE
    } else if !s.held.is_empty() {
        EXIT_HELD
    } else {
        EXIT_OK
    };
    match format {
        Format::Json => {
            let mut v = serde_json::to_value(&s).unwrap_or_default();
            v["stale"] = stale.into();
            v["max_age_secs"] = max_age.as_secs().into();
            v["exit_code"] = code.into();
            outln!(out, "{}", json_text(&v));
        }
        Format::Text => {
            let when = crate::time::format(s.time);
            let last = s.last_success.map_or("never".to_string(), crate::time::format);
            let word = match s.condition {
                crate::state::Condition::Ok => "OK",
                crate::state::Condition::Held => "OK, REMOVALS HELD",
                crate::state::Condition::Failed => "FAILED",
            };
            outln!(out, "{word} at {when}: {}", s.message);
            if let Some(k) = &s.error_kind {
                outln!(out, "error kind: {k}");
            }
            outln!(
                out,
                "list in force: changeNumber {}, {} prefixes ({} IPv4, {} IPv6, {} in grace, {} held); last success {last}",
                s.change_number.map_or("-".to_string(), |n| n.to_string()),
                s.prefixes.effective,
                s.prefixes.ipv4,
                s.prefixes.ipv6,
                s.prefixes.in_grace,
                s.prefixes.held
            );
            for h in &s.held {
                outln!(
                    out,
                    "held since {}: {} prefix(es) ({}; {}): still allowed; the removal takes effect on the {} \
                     consecutive new file without them ({} more, expected {}), or with --force",
                    crate::time::format(h.since),
                    h.prefixes.len(),
                    h.reason,
                    h.detail,
                    ordinal(h.needed),
                    h.remaining_files,
                    crate::time::format(h.expected_at)
                );
                outln!(out, "  {}", h.prefixes.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(" "));
            }
            if let Some(f) = &s.newest_file {
                outln!(
                    out,
                    "newest accepted file: {} (changeNumber {}), first accepted {}, {} ago{}",
                    f.file_name.as_deref().unwrap_or("-"),
                    f.change_number,
                    crate::time::format(f.accepted_at),
                    humantime::format_duration(Duration::from_secs(f.age_secs / 3600 * 3600)),
                    if stale {
                        format!(" - STALE (older than {})", humantime::format_duration(max_age))
                    } else {
                        String::new()
                    }
                );
            }
            s.warnings.iter().for_each(|w| outln!(out, "warning: {w}"));
        }
    }
    Ok(code)
}

fn ordinal(n: u32) -> String {
    let suffix = match (n % 10, n % 100) {
        (1, 11) | (2, 12) | (3, 13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

fn report(out: &mut Output, o: &Outcome, format: Format, dry_run: bool) {
    let d = &o.diff;
    match format {
        Format::Json => {
            // The effective list itself too: the controller converges cloud prefix lists from it,
            // in check mode (a dry run, nothing saved) as well.
            let (ipv4, ipv6) = o.state.effective_by_family();
            let doc = serde_json::json!({
                "ok": true,
                "dry_run": dry_run,
                "summary": summary(o),
                "source": o.source,
                "file_name": o.state.file_name,
                "change_number": o.state.change_number,
                "prefixes": o.state.counts(),
                "effective": {"ipv4": ipv4, "ipv6": ipv6},
                "diff": d,
                "held": o.state.held_status(),
                "notes": o.notes,
                "written": o.written,
            });
            outln!(out, "{}", json_text(&doc));
        }
        Format::Text => {
            let verb = if dry_run { "would apply" } else { "applied" };
            outln!(out, "{verb} {} from {}", o.state.file_name.as_deref().unwrap_or("file"), o.source);
            outln!(out, "{}", summary(o));
            if d.previous_change_number.is_none() {
                // A first list is all additions; `show` lists it.
                outln!(out, "(first list for this state directory; `vorfw-entra show` lists it)");
            } else {
                for p in &d.added {
                    outln!(out, "+ {p}");
                }
            }
            // A removal into grace: until when the prefix stays allowed (unless it expired at once).
            let mut removal = |p: &ipnet::IpNet, what: &str| match d
                .in_grace
                .iter()
                .find(|g| g.prefix == *p)
                .map(|g| crate::time::format(g.expires_at))
            {
                Some(t) => outln!(out, "- {p} ({what}; allowed until {t})"),
                None => outln!(out, "- {p} ({what})"),
            };
            d.removed.iter().for_each(|p| removal(p, "removed"));
            d.confirmed.iter().for_each(|p| removal(p, "held removal confirmed"));
            for p in &d.held {
                outln!(out, "! {p} (removal held; still allowed)");
            }
            for p in &d.restored {
                outln!(out, "= {p} (published again)");
            }
            for p in &d.expired {
                outln!(out, "x {p} (grace over)");
            }
            for w in d.warnings.iter().chain(&o.notes) {
                errln!(out, "warning: {w}");
            }
        }
    }
}

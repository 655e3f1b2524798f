//! The `vorfw-entra` command line: `fetch`, `show`, `diff`, `apply`, `status`.
//!
//! Exit codes: 0 success; 1 the refresh failed (or, for `status`, the last one did, or none ran);
//! 2 usage error.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::{FeedConfig, ProxyMode, Source, DEFAULT_LINK_PREFIX, DEFAULT_STATE_DIR, DEFAULT_USER_AGENT};
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
    /// Print the last refresh's status (exit 1 if it failed or none ran).
    Status {
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
}

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
    /// Largest share of published prefixes one update may remove (0.1 or 10%).
    #[arg(long, default_value = "10%", value_parser = parse_share)]
    max_removal_share: f64,
    /// How long removed prefixes stay allowed (e.g. 14d).
    #[arg(long, default_value = "14d", value_parser = parse_duration)]
    grace: Duration,
    /// Accept a mass removal, a backwards changeNumber, or a state for another cloud.
    #[arg(long)]
    force: bool,
    /// Plain-text output path (default <state-dir>/prefixes.txt).
    #[arg(long)]
    text_out: Option<PathBuf>,
    /// JSON output path (default <state-dir>/prefixes.json).
    #[arg(long)]
    json_out: Option<PathBuf>,
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
            force: self.force,
            text_output: self.text_out.clone(),
            json_output: self.json_out.clone(),
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

/// The applier of this host: re-apply the request the `apply` module last recorded, with the
/// new list (see `vorfw_host::reapply`).
pub fn host_applier(prefixes: &[ipnet::IpNet], check: bool) -> std::result::Result<ApplyReport, String> {
    vorfw_host::reapply(prefixes, check).map(|(changed, summary, detail)| ApplyReport { changed, summary, detail })
}

/// Run the command line (`args[0]` is the program name). Returns the exit code.
pub fn cli(args: Vec<String>) -> i32 {
    cli_with(args, None)
}

/// [`cli`], with the firewall applier that `apply` uses (binaries that link a firewall backend
/// pass one; without it `apply` is refused).
pub fn cli_with(args: Vec<String>, applier: Option<Applier>) -> i32 {
    let parsed = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return e.exit_code();
        }
    };
    match run(parsed, applier) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("vorfw-entra: error [{}]: {e}", e.kind());
            1
        }
    }
}

fn run(cli: Cli, applier: Option<Applier>) -> Result<i32, Error> {
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
                        "previous_effective": previous,
                        "effective": outcome.state.effective().iter().map(|p| p.to_string()).collect::<Vec<_>>(),
                        "firewall": {"changed": fw.changed, "summary": fw.summary, "detail": fw.detail},
                        "written": outcome.written,
                    });
                    println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
                }
                Format::Text => {
                    report(&outcome, Format::Text, check);
                    println!("firewall: {}", fw.summary);
                }
            }
            Ok(0)
        }
        Cmd::Fetch { feed, dry_run, save_source, format } => {
            let cfg = feed.config();
            let outcome = refresh(&cfg, &dir, feed.now.unwrap_or_else(SystemTime::now), dry_run)?;
            // Also in a dry run: the saved copy is the caller's (the controller's), not the state.
            if let Some(path) = &save_source {
                state::atomic_write(path, &outcome.raw)?;
            }
            report(&outcome, format, dry_run);
            Ok(0)
        }
        Cmd::Diff { feed, format } => {
            let cfg = feed.config();
            let outcome = refresh(&cfg, &dir, feed.now.unwrap_or_else(SystemTime::now), true)?;
            report(&outcome, format, true);
            Ok(0)
        }
        Cmd::Show { format } => {
            let Some(st) = state::load_state(&dir)? else {
                return Err(Error::new(
                    ErrorKind::State,
                    format!("no saved list in {} (run `vorfw-entra fetch` first)", dir.display()),
                ));
            };
            match format {
                Format::Text => print!("{}", st.render_text()),
                Format::Json => print!("{}", st.render_json()),
            }
            Ok(0)
        }
        Cmd::Status { format } => {
            let Some(s) = state::load_status(&dir)? else {
                match format {
                    Format::Text => println!("no refresh recorded in {}", dir.display()),
                    Format::Json => println!("{{\"ok\": false, \"message\": \"no refresh recorded\"}}"),
                }
                return Ok(1);
            };
            match format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&s).unwrap_or_default()),
                Format::Text => {
                    let when = crate::time::format(s.time);
                    let last = s.last_success.map_or("never".to_string(), crate::time::format);
                    let word = if s.ok { "OK" } else { "FAILED" };
                    println!("{word} at {when}: {}", s.message);
                    if let Some(k) = &s.error_kind {
                        println!("error kind: {k}");
                    }
                    println!(
                        "list in force: changeNumber {}, {} prefixes ({} IPv4, {} IPv6, {} in grace); last success {last}",
                        s.change_number.map_or("-".to_string(), |n| n.to_string()),
                        s.prefixes.effective,
                        s.prefixes.ipv4,
                        s.prefixes.ipv6,
                        s.prefixes.in_grace
                    );
                    for w in &s.warnings {
                        println!("warning: {w}");
                    }
                }
            }
            Ok(if s.ok { 0 } else { 1 })
        }
    }
}

fn report(o: &Outcome, format: Format, dry_run: bool) {
    let d = &o.diff;
    match format {
        Format::Json => {
            let doc = serde_json::json!({
                "ok": true,
                "dry_run": dry_run,
                "summary": summary(o),
                "source": o.source,
                "file_name": o.state.file_name,
                "change_number": o.state.change_number,
                "prefixes": o.state.counts(),
                "diff": d,
                "notes": o.notes,
                "written": o.written,
            });
            println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        }
        Format::Text => {
            let verb = if dry_run { "would apply" } else { "applied" };
            println!("{verb} {} from {}", o.state.file_name.as_deref().unwrap_or("file"), o.source);
            println!("{}", summary(o));
            if d.previous_change_number.is_none() {
                // A first list is all additions; `show` lists it.
                println!("(first list for this state directory; `vorfw-entra show` lists it)");
            } else {
                for p in &d.added {
                    println!("+ {p}");
                }
            }
            for p in &d.removed {
                let until = d.in_grace.iter().find(|g| g.prefix == *p).map(|g| crate::time::format(g.expires_at));
                match until {
                    Some(t) => println!("- {p} (removed; allowed until {t})"),
                    None => println!("- {p} (removed)"),
                }
            }
            for p in &d.restored {
                println!("= {p} (published again)");
            }
            for p in &d.expired {
                println!("x {p} (grace over)");
            }
            for w in d.warnings.iter().chain(&o.notes) {
                eprintln!("warning: {w}");
            }
        }
    }
}

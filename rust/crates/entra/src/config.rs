//! What to fetch, from where, how carefully, and how strictly to validate it.

use std::path::PathBuf;
use std::time::Duration;

use crate::model::Cloud;

/// The host prefix of Microsoft's download links. Discovery accepts only links that start with
/// the configured prefix (this one by default); tests point it at their local server.
pub const DEFAULT_LINK_PREFIX: &str = "https://download.microsoft.com/download/";
/// The default tag: Microsoft Entra ID (formerly Azure Active Directory).
pub const DEFAULT_TAG: &str = "AzureActiveDirectory";
/// The default state directory.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/vorstream-firewall/entra";
/// The default cap on a downloaded body (the public file is about 4 MiB).
pub const DEFAULT_MAX_BYTES: u64 = 16 * 1024 * 1024;
/// The default User-Agent. Microsoft refuses requests without one.
pub const DEFAULT_USER_AGENT: &str = concat!("vorfw-entra/", env!("CARGO_PKG_VERSION"), " (vorstream.firewall)");

/// Where the service-tags file comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// Fetch Microsoft's download details page and follow its link to the current file.
    ///
    /// The link is found by its text: an absolute URL that starts with `link_prefix` and whose
    /// last segment is `ServiceTags_<Cloud>_<YYYYMMDD>.json` for the configured cloud.
    /// `link_prefix` is [`DEFAULT_LINK_PREFIX`] in production; tests set it to their own
    /// `https://127.0.0.1:PORT/download/` so that a page served locally can be followed.
    Discover { details_url: String, link_prefix: String },
    /// Fetch this URL: a known file URL, or an internal mirror's.
    Url(String),
    /// Read this local file (sites without internet access).
    File(PathBuf),
}

impl Source {
    /// Discovery from Microsoft's details page for `cloud`.
    pub fn discover(cloud: Cloud) -> Source {
        Source::Discover { details_url: cloud.details_url(), link_prefix: DEFAULT_LINK_PREFIX.to_string() }
    }
}

/// A held removal takes effect on this many consecutive new files without its prefixes.
pub const DEFAULT_HOLD_REFRESHES: u32 = 4;

/// What a plausible file looks like. Microsoft's real AzureActiveDirectory lists (2019-2025, all
/// three clouds) hold 37 to 216 prefixes, the widest a /18 (IPv4) and a /48 (IPv6); at most 53
/// were added in one week; the top-level changeNumber grows by about one a week. The defaults
/// leave a wide margin around that and stop what would widen egress to a large part of the
/// Internet (`0.0.0.0/0`), to the operator's own networks (private, loopback, ... ranges), or
/// overflow a firewall (ufw makes one rule per prefix, a firewalld ipset holds 65,536).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The shortest IPv4 prefix length accepted (16: nothing wider than a /16).
    pub widest_ipv4: u8,
    /// The shortest IPv6 prefix length accepted (32).
    pub widest_ipv6: u8,
    /// Accept prefixes in special-use ranges (RFC 6890 and the IANA registries: private,
    /// loopback, link-local, multicast, documentation, CGNAT, ULA, ...). Only a lab feed whose
    /// addresses are lab addresses sets it.
    pub allow_special_use: bool,
    /// Most prefixes one file may add to an existing list.
    pub max_additions: usize,
    /// Most prefixes a list may hold (after the union of the tags).
    pub max_prefixes: usize,
    /// How far the top-level changeNumber may move past the highest one accepted.
    pub max_change_number_jump: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            widest_ipv4: 16,
            widest_ipv6: 32,
            allow_special_use: false,
            max_additions: 500,
            max_prefixes: 5000,
            max_change_number_jump: 1000,
        }
    }
}

/// Which HTTP(S) proxy to use.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum ProxyMode {
    /// `HTTPS_PROXY`/`https_proxy`, `ALL_PROXY`, `NO_PROXY`/`no_proxy` from the environment.
    #[default]
    Env,
    /// Connect directly, whatever the environment says.
    Direct,
    /// This proxy for every request (`http://host:port`, optionally with `user:pass@`).
    Url(String),
}

/// The feed's configuration. [`FeedConfig::new`] gives the defaults.
#[derive(Clone, Debug)]
pub struct FeedConfig {
    pub source: Source,
    pub cloud: Cloud,
    /// Tags whose prefixes are wanted; several tags give the union.
    pub tags: Vec<String>,
    /// Sent with every request; must not be empty.
    pub user_agent: String,
    /// Limit for one request, from connecting to the last body byte.
    pub timeout: Duration,
    /// Limit for the TCP + TLS connect of one request.
    pub connect_timeout: Duration,
    /// Extra attempts after the first, for transient failures only (connect errors, timeouts,
    /// cut-off bodies, 5xx, 408, 429); never for other 4xx, TLS failures or an oversized body.
    pub retries: u32,
    /// Wait before the first retry; doubled for each further one, at most 30 s.
    pub retry_backoff: Duration,
    /// Largest accepted body, in bytes (the details page and the file alike).
    pub max_bytes: u64,
    /// A PEM bundle of CA certificates trusted in addition to the system's roots.
    pub extra_ca: Option<PathBuf>,
    pub proxy: ProxyMode,
    /// Accept `http://` URLs (an internal mirror without TLS). Off by default.
    pub allow_http: bool,
    /// Largest share (0.0..=1.0) of the published prefixes one file may remove without the
    /// removal being held.
    pub max_removal_share: f64,
    /// How long a removed prefix stays in the effective list.
    pub grace: Duration,
    /// A held removal takes effect on the `hold_refreshes`-th consecutive new file that still
    /// lacks its prefixes (the file that held it counts as the first). At least 1.
    pub hold_refreshes: u32,
    /// Apply held removals now (they enter the grace period, counted from their first absence),
    /// do not hold this file's removals, and accept a state saved for another cloud.
    pub force: bool,
    /// Plausibility limits: every one is a refusal that names the prefix or figure.
    pub limits: Limits,
    /// The file's SHA-256 (hex), when the source is pinned (a mirror serving a known file).
    pub expect_sha256: Option<String>,
    /// The plain-text output (one CIDR per line); default `<state dir>/prefixes.txt`.
    pub text_output: Option<PathBuf>,
    /// The JSON output; default `<state dir>/prefixes.json`.
    pub json_output: Option<PathBuf>,
    /// node_exporter's textfile collector directory: each refresh that writes the status also
    /// writes [`crate::metrics::METRICS_FILE`] there, when the directory exists.
    pub metrics_dir: Option<PathBuf>,
}

impl FeedConfig {
    /// Defaults: discovery from Microsoft's page for `cloud`, tag `AzureActiveDirectory`,
    /// 60 s per request, 10 s connect, 3 retries from 2 s, 16 MiB cap, 10 % removal share,
    /// 14 days grace, held removals take effect on the 4th file, [`Limits::default`].
    pub fn new(cloud: Cloud) -> Self {
        FeedConfig {
            source: Source::discover(cloud),
            cloud,
            tags: vec![DEFAULT_TAG.to_string()],
            user_agent: DEFAULT_USER_AGENT.to_string(),
            timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            retries: 3,
            retry_backoff: Duration::from_secs(2),
            max_bytes: DEFAULT_MAX_BYTES,
            extra_ca: None,
            proxy: ProxyMode::Env,
            allow_http: false,
            max_removal_share: 0.10,
            grace: Duration::from_secs(14 * 24 * 3600),
            hold_refreshes: DEFAULT_HOLD_REFRESHES,
            force: false,
            limits: Limits::default(),
            expect_sha256: None,
            text_output: None,
            json_output: None,
            metrics_dir: None,
        }
    }

    /// The same configuration with another source.
    pub fn with_source(mut self, source: Source) -> Self {
        self.source = source;
        self
    }
}

impl Default for FeedConfig {
    fn default() -> Self {
        FeedConfig::new(Cloud::Public)
    }
}

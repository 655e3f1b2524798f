//! Fetching (feature `fetch`): a provider's discovery document and its published range files,
//! through vorfw-entra's HTTPS client (rustls with graviola, the system roots plus an optional
//! bundle, proxies, time limits, retries of transient failures, the body cap enforced while
//! streaming). Redirects are not left to the client: each one goes through [`check_redirect`]
//! (no change of scheme, no user information, at most `max_redirects`), and its target host is
//! reported, since the fetching host needs egress to it too. The bytes then go to the pure
//! validators ([`validate_discovery`], [`parse_google`], [`parse_okta`]).

use std::io::Read;
use std::net::SocketAddr;
use std::path::Path;

use vorfw_entra::{FeedConfig, Got, ProxyMode};

use crate::config::{Issuer, Published, RangeSource};
use crate::discovery::{check_redirect, validate_discovery, Discovery, DiscoveryLimits, DEFAULT_MAX_REDIRECTS};
use crate::error::{Error, ErrorKind, Result};
use crate::names::HostPort;
use crate::ranges::{google_services, parse_google, parse_okta, RangeLimits, RangeSet};

/// The User-Agent of the OIDC fetcher.
pub const OIDC_USER_AGENT: &str = concat!("vorfw-oidc/", env!("CARGO_PKG_VERSION"), " (vorstream.firewall)");

/// How to fetch.
#[derive(Clone, Debug)]
pub struct FetchOptions {
    /// The HTTP settings, as the Entra feed has them: User-Agent, time limits, retries and
    /// backoff, the extra CA bundle, the proxy. Its source, tags, merge settings and `max_bytes`
    /// are not used (each document has its own cap); `allow_http` is ignored (HTTPS only).
    pub http: FeedConfig,
    /// The discovery document's caps (its size cap is the streaming cap of the download).
    pub discovery: DiscoveryLimits,
    /// Redirects followed for one document.
    pub max_redirects: usize,
    /// Accept special-use prefixes in range files (a lab's files only).
    pub allow_special_use: bool,
    /// Host names connected to at these addresses instead of resolving them (curl's
    /// `--resolve`; the port of the address is ignored, the URL's is used): tests and a lab
    /// without its own DNS. The TLS name stays the host name.
    pub resolve: Vec<(String, SocketAddr)>,
}

impl Default for FetchOptions {
    fn default() -> Self {
        let http = FeedConfig {
            user_agent: OIDC_USER_AGENT.to_string(),
            timeout: std::time::Duration::from_secs(30),
            retries: 2,
            ..FeedConfig::default()
        };
        FetchOptions {
            http,
            discovery: DiscoveryLimits::default(),
            max_redirects: DEFAULT_MAX_REDIRECTS,
            allow_special_use: false,
            resolve: Vec::new(),
        }
    }
}

impl FetchOptions {
    fn client(&self) -> Result<vorfw_entra::reqwest::Client> {
        let mut b = vorfw_entra::client_builder(&self.http_for(0))?
            .redirect(vorfw_entra::reqwest::redirect::Policy::none())
            .https_only(true);
        for (name, addr) in &self.resolve {
            b = b.resolve(name, *addr);
        }
        b.build().map_err(|e| Error::new(ErrorKind::Config, format!("cannot build the HTTP client: {e}")))
    }

    fn http_for(&self, max_bytes: usize) -> FeedConfig {
        let mut c = self.http.clone();
        c.max_bytes = max_bytes as u64;
        c.allow_http = false;
        c
    }

    /// Direct connections, whatever the environment says (tests).
    pub fn direct(mut self) -> Self {
        self.http.proxy = ProxyMode::Direct;
        self
    }
}

/// GET `url`, following redirects through [`check_redirect`]; the body is capped at `max_bytes`
/// while it streams. Returns the body and the hosts redirected to.
async fn get_following(
    client: &vorfw_entra::reqwest::Client,
    opts: &FetchOptions,
    url: &str,
    max_bytes: usize,
    what: &str,
) -> Result<(Vec<u8>, Vec<HostPort>)> {
    let cfg = opts.http_for(max_bytes);
    let mut url = url.to_string();
    let mut hosts: Vec<HostPort> = Vec::new();
    let mut hop = 0;
    loop {
        match vorfw_entra::get_manual(client, &cfg, &url, what).await.map_err(Error::from)? {
            Got::Body { bytes, .. } => return Ok((bytes, hosts)),
            Got::Redirect { location, .. } => {
                hop += 1;
                let (next, host) =
                    check_redirect(&url, &location, hop, opts.max_redirects, opts.discovery.allow_ip_literals)
                        .map_err(|e| e.context(what))?;
                if !hosts.contains(&host) {
                    hosts.push(host);
                }
                url = next.to_string();
            }
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::new(ErrorKind::Config, format!("cannot start the I/O runtime: {e}")))
}

/// A discovery document, validated, with the bytes it was validated from (unchanged: what
/// `vorfw oidc discover --save-dir` writes for the hosts of controller mode).
#[derive(Clone, Debug)]
pub struct FetchedDiscovery {
    pub discovery: Discovery,
    /// The hosts it was redirected through (other than the issuer's); none for a file.
    pub redirect_hosts: Vec<HostPort>,
    pub bytes: Vec<u8>,
}

/// Fetch `<issuer>/.well-known/openid-configuration` and validate it. Returns the document and
/// the hosts it was redirected through (other than the issuer's). Blocking (its own runtime).
pub fn discover(issuer: &Issuer, opts: &FetchOptions) -> Result<(Discovery, Vec<HostPort>)> {
    runtime()?.block_on(discover_async(issuer, opts))
}

/// [`discover`] for callers inside a tokio runtime.
pub async fn discover_async(issuer: &Issuer, opts: &FetchOptions) -> Result<(Discovery, Vec<HostPort>)> {
    let f = fetch_discovery_async(issuer, opts).await?;
    Ok((f.discovery, f.redirect_hosts))
}

/// [`discover`], keeping the fetched bytes. Blocking (its own runtime).
pub fn fetch_discovery(issuer: &Issuer, opts: &FetchOptions) -> Result<FetchedDiscovery> {
    runtime()?.block_on(fetch_discovery_async(issuer, opts))
}

/// [`fetch_discovery`] for callers inside a tokio runtime.
pub async fn fetch_discovery_async(issuer: &Issuer, opts: &FetchOptions) -> Result<FetchedDiscovery> {
    let client = opts.client()?;
    let url = issuer.discovery_url();
    let (bytes, mut redirect_hosts) =
        get_following(&client, opts, &url, opts.discovery.max_bytes, "fetching the discovery document").await?;
    let discovery = validate_discovery(&bytes, issuer, &opts.discovery)?;
    redirect_hosts.retain(|h| h != issuer.host());
    Ok(FetchedDiscovery { discovery, redirect_hosts, bytes })
}

/// Read a discovery document from a file (fetched elsewhere: the controller, an operator) with
/// the same cap and validation.
pub fn discovery_from_file(path: &Path, issuer: &Issuer, limits: &DiscoveryLimits) -> Result<Discovery> {
    Ok(read_discovery(path, issuer, limits)?.discovery)
}

/// [`discovery_from_file`], keeping the bytes read.
pub fn read_discovery(path: &Path, issuer: &Issuer, limits: &DiscoveryLimits) -> Result<FetchedDiscovery> {
    let bytes = read_capped(path, limits.max_bytes)?;
    let discovery = validate_discovery(&bytes, issuer, limits).map_err(|e| e.context(path.display()))?;
    Ok(FetchedDiscovery { discovery, redirect_hosts: Vec::new(), bytes })
}

fn read_capped(path: &Path, max: usize) -> Result<Vec<u8>> {
    let err = |e: std::io::Error| Error::new(ErrorKind::Config, format!("cannot read {}: {e}", path.display()));
    let f = std::fs::File::open(path).map_err(err)?;
    let mut bytes = Vec::new();
    f.take(max as u64 + 1).read_to_end(&mut bytes).map_err(err)?;
    if bytes.len() > max {
        return Err(Error::new(
            ErrorKind::TooLarge,
            format!("{}: larger than the {max}-byte cap; refused before parsing", path.display()),
        ));
    }
    Ok(bytes)
}

/// A published range file, fetched and validated, with where it came from.
#[derive(Clone, Debug)]
pub struct FetchedRanges {
    pub set: RangeSet,
    /// The URLs or paths read (Google: goog.json, then cloud.json).
    pub sources: Vec<String>,
    /// Hosts redirected to.
    pub redirect_hosts: Vec<HostPort>,
}

/// Fetch a provider's published range file(s) and reduce them to its [`RangeSet`] (Google:
/// goog.json minus cloud.json; Okta: the configured cell). Blocking.
pub fn fetch_ranges(published: &Published, opts: &FetchOptions) -> Result<FetchedRanges> {
    runtime()?.block_on(fetch_ranges_async(published, opts))
}

/// [`fetch_ranges`] for callers inside a tokio runtime.
pub async fn fetch_ranges_async(published: &Published, opts: &FetchOptions) -> Result<FetchedRanges> {
    let mut client = None;
    let mut hosts = Vec::new();
    let special = |l: RangeLimits| if opts.allow_special_use { l.allowing_special_use() } else { l };
    match published {
        Published::Google { goog, cloud } => {
            let limits = special(RangeLimits::google());
            let g = read_source(goog, opts, &mut client, &mut hosts, limits.max_bytes).await?;
            let c = read_source(cloud, opts, &mut client, &mut hosts, limits.max_bytes).await?;
            let gf = parse_google(&g, &goog.to_string(), &limits)?;
            let cf = parse_google(&c, &cloud.to_string(), &limits)?;
            let set = google_services(&gf, &cf, &limits)?;
            Ok(FetchedRanges { set, sources: vec![goog.to_string(), cloud.to_string()], redirect_hosts: hosts })
        }
        Published::Okta { cell, source } => {
            let limits = special(RangeLimits::okta());
            let b = read_source(source, opts, &mut client, &mut hosts, limits.max_bytes).await?;
            let set = parse_okta(&b, cell, &source.to_string(), &limits)?;
            Ok(FetchedRanges { set, sources: vec![source.to_string()], redirect_hosts: hosts })
        }
    }
}

async fn read_source(
    src: &RangeSource,
    opts: &FetchOptions,
    client: &mut Option<vorfw_entra::reqwest::Client>,
    hosts: &mut Vec<HostPort>,
    max_bytes: usize,
) -> Result<Vec<u8>> {
    match src {
        RangeSource::File(p) => read_capped(p, max_bytes),
        RangeSource::Url(u) => {
            if client.is_none() {
                *client = Some(opts.client()?);
            }
            let c = client.as_ref().expect("set above");
            let (bytes, h) = get_following(c, opts, u, max_bytes, &format!("fetching the range file {u}")).await?;
            for x in h {
                if !hosts.contains(&x) {
                    hosts.push(x);
                }
            }
            Ok(bytes)
        }
    }
}

//! Getting the service-tags file: discovery from Microsoft's details page, a direct or mirror URL,
//! or a local file.
//!
//! HTTPS only (unless `allow_http`), rustls with the pure-Rust graviola provider, the system's
//! roots (rustls-native-certs: `SSL_CERT_FILE`, `SSL_CERT_DIR`, /etc/ssl/certs) plus an optional
//! PEM bundle, a User-Agent on every request, proxies from the environment, a connect and a
//! per-request time limit, bounded retries with exponential backoff for transient failures only,
//! and a body cap enforced while streaming.

use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::config::{FeedConfig, ProxyMode, Source};
use crate::error::{Error, ErrorKind, Result};
use crate::model::Cloud;

const MAX_BACKOFF: Duration = Duration::from_secs(30);
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// A downloaded (or read) service-tags file, not yet parsed.
#[derive(Clone, Debug)]
pub struct Fetched {
    pub bytes: Vec<u8>,
    /// The URL the bytes came from, after redirects, or the local path.
    pub url: String,
    /// The file name (`ServiceTags_Public_20250721.json`), when the URL or path has one.
    pub file_name: Option<String>,
    /// The details page the link was discovered on, for [`Source::Discover`].
    pub details_url: Option<String>,
    /// Things worth telling the operator that are not errors.
    pub notes: Vec<String>,
}

/// Fetch the file the configuration points at. Blocking: runs its own current-thread tokio
/// runtime, so call it from synchronous code (or `spawn_blocking`), not from inside a runtime.
pub fn fetch(cfg: &FeedConfig) -> Result<Fetched> {
    if let Source::File(path) = &cfg.source {
        return read_file(path, cfg.max_bytes);
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::new(ErrorKind::Config, format!("cannot start the I/O runtime: {e}")))?;
    rt.block_on(fetch_async(cfg))
}

/// [`fetch`] for callers that already run a tokio runtime.
pub async fn fetch_async(cfg: &FeedConfig) -> Result<Fetched> {
    match &cfg.source {
        Source::File(path) => read_file(path, cfg.max_bytes),
        Source::Url(url) => {
            let url = check_url(url, cfg.allow_http)?;
            let client = client(cfg)?;
            let (bytes, final_url) = get(&client, cfg, &url, "downloading the service-tags file").await?;
            let file_name = last_segment(&final_url);
            Ok(Fetched { bytes, url: final_url, file_name, details_url: None, notes: Vec::new() })
        }
        Source::Discover { details_url, link_prefix } => {
            let page_url = check_url(details_url, cfg.allow_http)?;
            check_url(link_prefix, cfg.allow_http).map_err(|e| e.context("link prefix"))?;
            let client = client(cfg)?;
            let (page, page_final) = get(&client, cfg, &page_url, "fetching the download details page").await?;
            let page = String::from_utf8_lossy(&page);
            let (link, notes) = find_download_link(&page, link_prefix, cfg.cloud)
                .map_err(|e| e.context(format!("download details page {page_final}")))?;
            let link = check_url(&link, cfg.allow_http)?;
            let (bytes, final_url) = get(&client, cfg, &link, "downloading the service-tags file").await?;
            let file_name = last_segment(&link);
            Ok(Fetched { bytes, url: final_url, file_name, details_url: Some(page_final), notes })
        }
    }
}

fn read_file(path: &Path, max_bytes: u64) -> Result<Fetched> {
    let open_err = |e: std::io::Error| Error::new(ErrorKind::Config, format!("cannot read {}: {e}", path.display()));
    let f = std::fs::File::open(path).map_err(open_err)?;
    let mut bytes = Vec::new();
    f.take(max_bytes.saturating_add(1)).read_to_end(&mut bytes).map_err(open_err)?;
    if bytes.len() as u64 > max_bytes {
        return Err(too_large(&path.display().to_string(), max_bytes));
    }
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    Ok(Fetched { bytes, url: path.display().to_string(), file_name, details_url: None, notes: Vec::new() })
}

fn too_large(what: &str, max: u64) -> Error {
    Error::new(ErrorKind::TooLarge, format!("{what}: body larger than the {max}-byte cap (max_bytes)"))
}

fn check_url(url: &str, allow_http: bool) -> Result<String> {
    let parsed =
        reqwest::Url::parse(url).map_err(|e| Error::new(ErrorKind::Config, format!("invalid URL {url:?}: {e}")))?;
    match parsed.scheme() {
        "https" => Ok(url.to_string()),
        "http" if allow_http => Ok(url.to_string()),
        "http" => Err(Error::new(ErrorKind::Config, format!("refusing plain-HTTP URL {url} (allow_http is off)"))),
        s => Err(Error::new(ErrorKind::Config, format!("unsupported URL scheme {s:?} in {url}"))),
    }
}

fn last_segment(url: &str) -> Option<String> {
    let parsed = reqwest::Url::parse(url).ok()?;
    let seg = parsed.path_segments()?.next_back()?;
    (!seg.is_empty()).then(|| seg.to_string())
}

/// Find the link to `ServiceTags_<Cloud>_<YYYYMMDD>.json` under `link_prefix` in a download
/// details page. Tolerates the link being written inside a script as JSON (`\/` or `\u002f`
/// for `/`). With several different links, the one with the latest date wins (and a note says so).
///
/// One pass over the page (linear in its size, whatever the number of links): the page is cut
/// into runs of URL characters, and every run that mentions `ServiceTags_` is classified. When no
/// link is usable, the error lists the `ServiceTags_` links seen and why each was rejected.
pub fn find_download_link(page: &str, link_prefix: &str, cloud: Cloud) -> Result<(String, Vec<String>)> {
    let page = page.replace("\\/", "/").replace("\\u002f", "/").replace("\\u002F", "/");
    let prefix = link_prefix.to_ascii_lowercase();
    let want = format!("ServiceTags_{}_", cloud.name());
    let mut found: std::collections::BTreeMap<String, String> = std::collections::BTreeMap::new(); // url -> date
    let mut rejected: Vec<(String, String)> = Vec::new(); // (link, why), the first few
    let mut rejected_count = 0usize;
    let mut seen_rejected: std::collections::HashSet<&str> = std::collections::HashSet::new();
    let url_char = |c: char| c.is_ascii_alphanumeric() || "-._~/:%?=&+".contains(c);
    for token in page.split(|c: char| !url_char(c)) {
        // Cheap filter first: most runs are words.
        if token.len() < 12 || !contains_ignore_case(token, "servicetags_") {
            continue;
        }
        if !token.contains("://") {
            continue; // the file name as text, not a link
        }
        let why = link_rejection(token, &prefix, &want);
        match why {
            None => {
                let name = token.rsplit('/').next().unwrap_or("");
                let date = name[want.len()..name.len() - ".json".len()].to_string();
                found.insert(token.to_string(), date);
            }
            Some(why) => {
                if seen_rejected.insert(token) {
                    rejected_count += 1;
                    if rejected.len() < 10 {
                        rejected.push((token.to_string(), why));
                    }
                }
            }
        }
    }
    let mut notes = Vec::new();
    if found.is_empty() {
        let seen = if rejected.is_empty() {
            " (the page mentions no ServiceTags_ link at all)".to_string()
        } else {
            let more = if rejected_count > rejected.len() {
                format!("; and {} more", rejected_count - rejected.len())
            } else {
                String::new()
            };
            format!(
                "; ServiceTags_ links seen: {}{more}",
                rejected.iter().map(|(l, w)| format!("{l} ({w})")).collect::<Vec<_>>().join("; ")
            )
        };
        return Err(Error::new(
            ErrorKind::Discovery,
            format!("no link to {want}<YYYYMMDD>.json under {link_prefix} found{seen}"),
        ));
    }
    let mut by_date: Vec<(&String, &String)> = found.iter().map(|(u, d)| (d, u)).collect();
    by_date.sort();
    if by_date.len() > 1 {
        notes.push(format!(
            "the details page links {} different files ({}); using the latest",
            by_date.len(),
            by_date.iter().map(|(_, u)| u.as_str()).collect::<Vec<_>>().join(", ")
        ));
    }
    Ok((by_date.last().map(|(_, u)| (*u).clone()).unwrap_or_default(), notes))
}

fn contains_ignore_case(hay: &str, needle_lower: &str) -> bool {
    let n = needle_lower.as_bytes();
    hay.as_bytes().windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
}

/// Why a run of URL characters that mentions `ServiceTags_` is not the wanted link (None: it is).
fn link_rejection(token: &str, prefix_lower: &str, want: &str) -> Option<String> {
    let starts = token.len() >= prefix_lower.len()
        && token.as_bytes()[..prefix_lower.len()].eq_ignore_ascii_case(prefix_lower.as_bytes());
    let name = token.rsplit('/').next().unwrap_or("");
    if !starts {
        return Some(format!("not under {prefix_lower}"));
    }
    let Some(rest) = name.strip_prefix(want) else {
        let cloud = name.split('_').nth(1).unwrap_or("");
        return Some(if name.starts_with("ServiceTags_") {
            format!("another cloud's file ({cloud})")
        } else {
            format!("the file name {name:?} is not {want}<YYYYMMDD>.json")
        });
    };
    let Some(date) = rest.strip_suffix(".json") else {
        return Some(format!("the file name {name:?} does not end in .json"));
    };
    if !is_date(date) {
        return Some(format!("{date:?} is not a YYYYMMDD date"));
    }
    None
}

fn is_date(s: &str) -> bool {
    s.len() == 8
        && s.bytes().all(|b| b.is_ascii_digit())
        && matches!(s[4..6].parse::<u8>(), Ok(1..=12))
        && matches!(s[6..8].parse::<u8>(), Ok(1..=31))
}

/// The rustls client configuration: graviola crypto, system roots plus the extra bundle.
pub fn tls_config(extra_ca: Option<&Path>) -> Result<rustls::ClientConfig> {
    check_cpu()?;
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    if let Some(path) = extra_ca {
        use rustls_pki_types::pem::PemObject;
        use rustls_pki_types::CertificateDer;
        let bad =
            |e: &dyn std::fmt::Display| Error::new(ErrorKind::Config, format!("CA bundle {}: {e}", path.display()));
        let certs = CertificateDer::pem_file_iter(path).map_err(|e| bad(&e))?;
        let mut n = 0;
        for cert in certs {
            let cert = cert.map_err(|e| bad(&e))?;
            roots.add(cert).map_err(|e| bad(&e))?;
            n += 1;
        }
        if n == 0 {
            return Err(bad(&"no PEM certificate in the file"));
        }
    }
    if roots.is_empty() {
        let errs: Vec<String> = native.errors.iter().map(|e| e.to_string()).collect();
        return Err(Error::new(
            ErrorKind::Tls,
            format!(
                "no trusted CA certificate: none in the system store (SSL_CERT_FILE, SSL_CERT_DIR, /etc/ssl/certs){} \
                 and no extra CA bundle",
                if errs.is_empty() { String::new() } else { format!(" [{}]", errs.join("; ")) }
            ),
        ));
    }
    let provider = Arc::new(rustls_graviola::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::new(ErrorKind::Tls, format!("TLS setup: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

/// graviola asserts its CPU requirements when first used (a panic); say so cleanly instead.
fn check_cpu() -> Result<()> {
    if graviola::util::is_cpu_supported() {
        return Ok(());
    }
    let needs =
        if cfg!(target_arch = "aarch64") { "aes, neon, pmull, sha2" } else { "adx, aes, avx, avx2, bmi1, pclmulqdq" };
    Err(Error::new(
        ErrorKind::Tls,
        format!(
            "this CPU lacks features the TLS crypto (graviola) needs ({needs}); \
             download the file elsewhere and use a local file source"
        ),
    ))
}

/// The HTTP client for one fetch (redirects followed, at most 5).
pub fn client(cfg: &FeedConfig) -> Result<reqwest::Client> {
    client_builder(cfg)?
        .redirect(reqwest::redirect::Policy::limited(5))
        .build()
        .map_err(|e| Error::new(ErrorKind::Config, format!("cannot build the HTTP client: {}", chain(&e))))
}

/// The HTTP client without following redirects: [`get_manual`] returns each one to the caller,
/// which decides whether to follow it (the OIDC discovery fetcher refuses a change of scheme).
pub fn client_no_redirects(cfg: &FeedConfig) -> Result<reqwest::Client> {
    client_builder(cfg)?
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| Error::new(ErrorKind::Config, format!("cannot build the HTTP client: {}", chain(&e))))
}

/// The client settings every fetch shares: [`tls_config`] (graviola, system roots and the extra
/// bundle), the User-Agent, the time limits, HTTPS only unless `allow_http`, the proxy. Test
/// name overrides (`resolve`) are added by the caller.
pub fn client_builder(cfg: &FeedConfig) -> Result<reqwest::ClientBuilder> {
    if cfg.user_agent.trim().is_empty() {
        return Err(Error::new(
            ErrorKind::Config,
            "the User-Agent must not be empty (Microsoft refuses such requests)",
        ));
    }
    let tls = tls_config(cfg.extra_ca.as_deref())?;
    let mut b = reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .user_agent(cfg.user_agent.clone())
        .timeout(cfg.timeout)
        .connect_timeout(cfg.connect_timeout)
        .https_only(!cfg.allow_http);
    match &cfg.proxy {
        ProxyMode::Env => {}
        ProxyMode::Direct => b = b.no_proxy(),
        ProxyMode::Url(u) => {
            let p = reqwest::Proxy::all(u)
                .map_err(|e| Error::new(ErrorKind::Config, format!("invalid proxy URL {u:?}: {e}")))?;
            b = b.proxy(p);
        }
    }
    Ok(b)
}

/// What one GET gave, with a client that does not follow redirects ([`client_no_redirects`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Got {
    /// A success status and the body (under `cfg.max_bytes`, enforced while streaming).
    Body { bytes: Vec<u8>, url: String },
    /// A 3xx with a `Location`, not followed.
    Redirect { status: u16, location: String, url: String },
}

/// GET `url` once more per retry (transient failures only, as every fetch of the feed), with the
/// body cap, returning a redirect instead of following it.
pub async fn get_manual(client: &reqwest::Client, cfg: &FeedConfig, url: &str, what: &str) -> Result<Got> {
    retrying(cfg, what, || get_once(client, url, cfg.max_bytes)).await
}

struct Failure {
    err: Error,
    retryable: bool,
    retry_after: Option<Duration>,
}

impl Failure {
    fn fatal(err: Error) -> Self {
        Failure { err, retryable: false, retry_after: None }
    }
}

/// GET with retries; returns the body and the final URL.
async fn get(client: &reqwest::Client, cfg: &FeedConfig, url: &str, what: &str) -> Result<(Vec<u8>, String)> {
    match retrying(cfg, what, || get_once(client, url, cfg.max_bytes)).await? {
        Got::Body { bytes, url } => Ok((bytes, url)),
        // A 3xx the client did not follow (300, or a Location it refused): an HTTP error, as before.
        Got::Redirect { status, location, url } => {
            Err(Error::http(status, format!("{what}: {url}: HTTP {status} redirect to {location:?} not followed")))
        }
    }
}

async fn retrying<F, Fut>(cfg: &FeedConfig, what: &str, mut once: F) -> Result<Got>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = std::result::Result<Got, Failure>>,
{
    let attempts = cfg.retries.saturating_add(1);
    let mut backoff = cfg.retry_backoff;
    let mut n = 1;
    loop {
        match once().await {
            Ok(ok) => return Ok(ok),
            Err(f) if f.retryable && n < attempts => {
                let wait = backoff.max(f.retry_after.unwrap_or_default()).min(MAX_RETRY_AFTER);
                tokio::time::sleep(wait).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                n += 1;
            }
            Err(f) => {
                let ctx = if n > 1 { format!("{what} failed after {n} attempts") } else { what.to_string() };
                return Err(f.err.context(ctx));
            }
        }
    }
}

async fn get_once(client: &reqwest::Client, url: &str, max: u64) -> std::result::Result<Got, Failure> {
    let mut resp = client.get(url).send().await.map_err(|e| classify(&e, url))?;
    let status = resp.status();
    let final_url = resp.url().to_string();
    if status.is_redirection() {
        if let Some(location) = resp.headers().get(reqwest::header::LOCATION) {
            let location = String::from_utf8_lossy(location.as_bytes()).into_owned();
            return Ok(Got::Redirect { status: status.as_u16(), location, url: final_url });
        }
    }
    if !status.is_success() {
        let code = status.as_u16();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let retryable = status.is_server_error() || code == 408 || code == 429;
        return Err(Failure { err: Error::http(code, format!("{final_url}: HTTP {status}")), retryable, retry_after });
    }
    if let Some(len) = resp.content_length() {
        if len > max {
            return Err(Failure::fatal(too_large(&format!("{final_url} (Content-Length {len})"), max)));
        }
    }
    let mut body = Vec::with_capacity(resp.content_length().unwrap_or(0).min(max) as usize);
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if (body.len() + chunk.len()) as u64 > max {
                    return Err(Failure::fatal(too_large(&final_url, max)));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) => {
                let mut f = classify(&e, &final_url);
                f.err = f.err.context(format!("body cut off after {} bytes", body.len()));
                return Err(f);
            }
        }
    }
    Ok(Got::Body { bytes: body, url: final_url })
}

/// Sort a reqwest error into kind and retryability.
fn classify(e: &reqwest::Error, url: &str) -> Failure {
    let text = format!("{url}: {}", chain(e));
    if let Some(tls) = tls_cause(e) {
        return Failure::fatal(Error::new(ErrorKind::Tls, format!("{url}: TLS: {tls}")));
    }
    if e.is_timeout() {
        return Failure { err: Error::new(ErrorKind::Timeout, text), retryable: true, retry_after: None };
    }
    if e.is_builder() {
        return Failure::fatal(Error::new(ErrorKind::Config, text));
    }
    if e.is_redirect() {
        return Failure::fatal(Error::new(ErrorKind::Network, text));
    }
    Failure { err: Error::new(ErrorKind::Network, text), retryable: true, retry_after: None }
}

/// The rustls error somewhere in the chain. io::Error hides its inner error from `source()`
/// (and hyper-rustls nests io::Errors), so step into it explicitly.
fn tls_cause(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<rustls::Error>() {
            return Some(r.to_string());
        }
        cur = match err.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()) {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => err.source(),
        };
    }
    None
}

/// An error and its causes, joined with ": " (skipping repeats).
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        let s = err.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = err.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINK: &str =
        "https://download.microsoft.com/download/7/1/d/71d86715-5596-4529-9b13-da13a5de5b63/ServiceTags_Public_20250721.json";

    #[test]
    fn finds_plain_and_escaped_links() {
        let prefix = crate::config::DEFAULT_LINK_PREFIX;
        let html = format!("<a href=\"{LINK}\" class=\"mscom-link\">click here</a>");
        assert_eq!(find_download_link(&html, prefix, Cloud::Public).unwrap().0, LINK);
        let script = format!("<script>window.__DLCDetails__={{\"url\":\"{}\"}}</script>", LINK.replace('/', "\\/"));
        assert_eq!(find_download_link(&script, prefix, Cloud::Public).unwrap().0, LINK);
        let upper = html.replace("https://download.microsoft.com", "HTTPS://Download.Microsoft.com");
        assert!(find_download_link(&upper, prefix, Cloud::Public).is_ok());
    }

    #[test]
    fn picks_latest_and_checks_cloud() {
        let prefix = crate::config::DEFAULT_LINK_PREFIX;
        let older = LINK.replace("20250721", "20250714");
        let html = format!("{older} {LINK} {LINK}");
        let (link, notes) = find_download_link(&html, prefix, Cloud::Public).unwrap();
        assert_eq!(link, LINK);
        assert_eq!(notes.len(), 1);
        let e = find_download_link(&html, prefix, Cloud::China).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Discovery);
        assert!(e.message().contains("another cloud"), "{e}");
        let evil = LINK.replace("download.microsoft.com", "download.microsoft.com.evil.example");
        assert!(find_download_link(&evil, prefix, Cloud::Public).is_err());
        let bad_date = LINK.replace("20250721", "20251341");
        assert!(find_download_link(&bad_date, prefix, Cloud::Public).is_err());
        assert!(find_download_link("<html>nothing</html>", prefix, Cloud::Public).is_err());
    }

    #[test]
    fn a_failed_discovery_lists_the_links_it_saw_and_why() {
        let prefix = crate::config::DEFAULT_LINK_PREFIX;
        let page = format!(
            "<a href=\"{}\">x</a> <a href='{}'>y</a> {} {} ServiceTags_Public_20250721.json",
            LINK.replace("download.microsoft.com", "mirror.example"),
            LINK.replace("Public", "China"),
            LINK.replace("20250721", "2025072"),
            LINK.replace(".json", ".zip"),
        );
        let e = find_download_link(&page, prefix, Cloud::Public).unwrap_err();
        let m = e.message();
        assert!(
            m.contains("https://mirror.example/download/")
                && m.contains("(not under https://download.microsoft.com/download/)"),
            "{m}"
        );
        assert!(m.contains("another cloud's file (China)"), "{m}");
        assert!(m.contains("\"2025072\" is not a YYYYMMDD date"), "{m}");
        assert!(m.contains("does not end in .json"), "{m}");
        let e = find_download_link("<html>no links</html>", prefix, Cloud::Public).unwrap_err();
        assert!(e.message().contains("mentions no ServiceTags_ link"), "{e}");
    }

    #[test]
    fn discovery_is_linear_in_the_page_size() {
        // 40,000 distinct links took 36 s with the old quadratic de-duplication. Compare 10,000
        // with 40,000 links: linear work grows 4x, quadratic 16x.
        let prefix = crate::config::DEFAULT_LINK_PREFIX;
        let page = |n: usize| -> String {
            (0..n)
                .map(|i| format!("<a href=\"https://download.microsoft.com/download/{i}/ServiceTags_Public_20{:06}.json\">f</a>\n", 250101 + i % 28))
                .collect()
        };
        let time = |p: &str| {
            (0..3)
                .map(|_| {
                    let t = std::time::Instant::now();
                    let (link, notes) = find_download_link(p, prefix, Cloud::Public).unwrap();
                    assert!(link.ends_with("_20250128.json") && notes.len() == 1, "{link}");
                    t.elapsed()
                })
                .min()
                .unwrap()
        };
        let (small, big) = (page(10_000), page(40_000));
        let (a, b) = (time(&small), time(&big));
        let ratio = b.as_secs_f64() / a.as_secs_f64().max(1e-6);
        eprintln!("discovery: 10,000 links {a:?}, 40,000 links {b:?} (ratio {ratio:.1})");
        assert!(ratio < 9.0, "40,000 links took {ratio:.1}x the time of 10,000: not linear");
    }

    #[test]
    fn url_checks() {
        assert!(check_url("https://example.invalid/x", false).is_ok());
        assert_eq!(check_url("http://mirror/x", false).unwrap_err().kind(), ErrorKind::Config);
        assert!(check_url("http://mirror/x", true).is_ok());
        assert!(check_url("ftp://mirror/x", true).is_err());
        assert!(check_url("not a url", true).is_err());
        assert_eq!(last_segment(LINK).as_deref(), Some("ServiceTags_Public_20250721.json"));
    }

    #[test]
    fn file_source_cap() {
        let dir = std::env::temp_dir().join(format!("vorfw-entra-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("f.json");
        std::fs::write(&p, b"0123456789").unwrap();
        assert_eq!(read_file(&p, 10).unwrap().bytes.len(), 10);
        assert_eq!(read_file(&p, 9).unwrap_err().kind(), ErrorKind::TooLarge);
        assert_eq!(read_file(&dir.join("missing"), 9).unwrap_err().kind(), ErrorKind::Config);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn empty_user_agent_refused() {
        let cfg = FeedConfig { user_agent: " ".into(), ..FeedConfig::default() };
        assert_eq!(client(&cfg).unwrap_err().kind(), ErrorKind::Config);
    }
}

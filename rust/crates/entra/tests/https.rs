//! The network path against a local HTTPS server on 127.0.0.1 (certificates generated at test
//! time): discovery, the weekly update sequence, and every failure mode leaving the state alone.
//!
//! Discovery is pointed at the local server by the link prefix: the test details page links to
//! `https://127.0.0.1:PORT/download/.../ServiceTags_Public_YYYYMMDD.json` and the configuration's
//! `link_prefix` is `https://127.0.0.1:PORT/download/` (production: https://download.microsoft.com/download/).

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{
    bytes, crafted, day, details_page, pki, pki_named, snapshot, ConnectProxy, Reply, Server, TempDir, PUBLIC,
};
use vorfw_entra::{
    load_state, load_status, refresh, Cloud, ErrorKind, FeedConfig, ProxyMode, Source, DEFAULT_USER_AGENT, STATUS_FILE,
};

const PAGE: &str = "/en-us/download/details.aspx?id=56519";

fn file_path(name: &str) -> String {
    format!("/download/7/1/d/71d86715-5596-4529-9b13-da13a5de5b63/{name}")
}

struct Lab {
    server: Server,
    state: TempDir,
    _etc: TempDir,
    ca: PathBuf,
}

impl Lab {
    fn new(name: &str) -> Lab {
        let pki = pki();
        let etc = TempDir::new(&format!("{name}-etc"));
        let ca = etc.write("ca.pem", pki.ca_pem.as_bytes());
        Lab { server: Server::start(pki.server), state: TempDir::new(name), _etc: etc, ca }
    }

    fn dir(&self) -> &Path {
        self.state.path()
    }

    /// A configuration that discovers from the local details page, trusting the test CA.
    fn cfg(&self) -> FeedConfig {
        let mut c = FeedConfig::new(Cloud::Public).with_source(Source::Discover {
            details_url: self.server.url(PAGE),
            link_prefix: self.server.url("/download/"),
        });
        c.extra_ca = Some(self.ca.clone());
        c.proxy = ProxyMode::Direct;
        c.timeout = Duration::from_secs(20);
        c.connect_timeout = Duration::from_secs(5);
        c.retries = 2;
        c.retry_backoff = Duration::from_millis(20);
        c
    }

    /// Put `body` on the server as `name` and link it from the details page.
    fn publish(&self, name: &str, reply: Reply) {
        self.server.set(&file_path(name), reply);
        self.server.set(PAGE, Reply::html(details_page(&self.server.url(&file_path(name)))));
    }

    fn publish_real(&self, name: &str) {
        self.publish(name, Reply::json(bytes(name)));
    }

    /// A refresh that must fail: only the status file may change, and it must say why.
    fn refused(&self, cfg: &FeedConfig, kind: ErrorKind, needle: &str) -> vorfw_entra::Error {
        let before = snapshot(self.dir(), &[STATUS_FILE]);
        let last = load_status(self.dir()).unwrap().and_then(|s| s.last_success);
        let Err(err) = refresh(cfg, self.dir(), day(30), false) else { panic!("accepted, expected {kind} ({needle})") };
        assert_eq!(err.kind(), kind, "{err}");
        assert!(err.message().contains(needle), "{err}");
        assert_eq!(snapshot(self.dir(), &[STATUS_FILE]), before, "state and outputs unchanged");
        let status = load_status(self.dir()).unwrap().unwrap();
        assert!(!status.ok);
        assert_eq!(status.error_kind.as_deref(), Some(kind.as_str()));
        assert!(status.message.contains(needle), "{}", status.message);
        assert_eq!(status.last_success, last);
        err
    }

    /// Apply the 2025-07-14 file so that failures have a state to leave alone.
    fn baseline(&self) {
        self.publish_real(PUBLIC[0]);
        refresh(&self.cfg(), self.dir(), day(0), false).unwrap();
    }
}

#[test]
fn discovery_follows_the_weekly_link_through_the_real_sequence() {
    let lab = Lab::new("discover");
    let expect = [(214, 0, 214), (216, 3, 219), (217, 3, 220), (216, 1, 217), (216, 0, 216)];
    let days = [0, 7, 14, 21, 106];
    for (i, name) in PUBLIC.iter().enumerate() {
        lab.publish_real(name);
        let o = refresh(&lab.cfg(), lab.dir(), day(days[i]), false).unwrap_or_else(|e| panic!("{name}: {e}"));
        let c = o.state.counts();
        assert_eq!((c.published, c.in_grace, c.effective), expect[i], "{name}");
        assert_eq!(o.state.file_name.as_deref(), Some(*name));
        assert_eq!(o.source, lab.server.url(&file_path(name)));
    }
    let st = load_state(lab.dir()).unwrap().unwrap();
    assert_eq!(st.change_number, 375);
    assert_eq!(st.history.len(), 5);
    // Two requests per refresh (page, file), each with our User-Agent.
    let reqs = lab.server.requests();
    assert_eq!(reqs.len(), 10);
    assert!(reqs.iter().all(|r| r.method == "GET" && r.user_agent.as_deref() == Some(DEFAULT_USER_AGENT)), "{reqs:?}");

    // A configured User-Agent is the one sent.
    let mut cfg = lab.cfg();
    cfg.user_agent = "site-ops/1.0".into();
    refresh(&cfg, lab.dir(), day(107), true).unwrap();
    assert_eq!(lab.server.requests().last().unwrap().user_agent.as_deref(), Some("site-ops/1.0"));

    // An explicit URL (a mirror) works too.
    let mut cfg = lab.cfg();
    cfg.source = Source::Url(lab.server.url(&file_path(PUBLIC[4])));
    let o = refresh(&cfg, lab.dir(), day(108), true).unwrap();
    assert!(o.diff.is_noop());
}

#[test]
fn not_found_is_not_retried() {
    let lab = Lab::new("404");
    lab.baseline();
    // The page links a file the server does not have.
    lab.server.set(PAGE, Reply::html(details_page(&lab.server.url(&file_path("ServiceTags_Public_20250721.json")))));
    lab.server.set(&file_path("ServiceTags_Public_20250721.json"), Reply::status(404));
    let err = lab.refused(&lab.cfg(), ErrorKind::Http, "HTTP 404");
    assert_eq!(err.http_status(), Some(404));
    assert_eq!(lab.server.hits(&file_path("ServiceTags_Public_20250721.json")), 1, "4xx is final");
}

#[test]
fn transient_errors_are_retried_with_a_bound() {
    let lab = Lab::new("retry");
    let name = PUBLIC[1];
    lab.publish(name, Reply::json(bytes(name)));
    lab.server.set_seq(&file_path(name), vec![Reply::status(503), Reply::status(429), Reply::json(bytes(name))]);
    refresh(&lab.cfg(), lab.dir(), day(0), false).unwrap();
    assert_eq!(lab.server.hits(&file_path(name)), 3);

    lab.server.set(&file_path(name), Reply::status(500));
    let mut cfg = lab.cfg();
    cfg.force = true;
    lab.refused(&cfg, ErrorKind::Http, "failed after 3 attempts");
    assert_eq!(lab.server.hits(&file_path(name)), 6, "3 more attempts, then give up");
}

#[test]
fn truncated_body_is_refused() {
    let lab = Lab::new("truncated");
    lab.baseline();
    let name = PUBLIC[1];
    // Content-Length says the whole file, the connection closes after half of it.
    let half = bytes(name).len() / 2;
    lab.publish(name, Reply::Truncated { body: bytes(name), send: half });
    lab.refused(&lab.cfg(), ErrorKind::Network, "body cut off");
    assert_eq!(lab.server.hits(&file_path(name)), 3, "a cut-off body is retried");
    // No Content-Length and the connection closes early: the JSON is incomplete.
    lab.publish(name, Reply::Unsized { body: Arc::new(bytes(name)[..half].to_vec()) });
    lab.refused(&lab.cfg(), ErrorKind::Parse, "ends early");
}

#[test]
fn html_instead_of_json_is_refused() {
    let lab = Lab::new("html");
    lab.baseline();
    lab.publish(PUBLIC[1], Reply::html("<!DOCTYPE html>\n<html><body>Please sign in</body></html>".into()));
    lab.refused(&lab.cfg(), ErrorKind::WrongContent, "markup");
}

#[test]
fn page_without_link_is_refused() {
    let lab = Lab::new("nolink");
    lab.baseline();
    lab.server
        .set(PAGE, Reply::html("<html><body>We're sorry, this download is no longer available.</body></html>".into()));
    lab.refused(&lab.cfg(), ErrorKind::Discovery, "no link to ServiceTags_Public_<YYYYMMDD>.json");
    // A link to another cloud's file, or to another host, does not count.
    let china = lab.server.url(&file_path("ServiceTags_China_20250721.json"));
    lab.server.set(PAGE, Reply::html(details_page(&china)));
    lab.refused(&lab.cfg(), ErrorKind::Discovery, "another cloud");
    let elsewhere = format!("https://download.example.invalid/download/x/{}", PUBLIC[1]);
    lab.server.set(PAGE, Reply::html(details_page(&elsewhere)));
    lab.refused(&lab.cfg(), ErrorKind::Discovery, "no link");
}

#[test]
fn slow_server_times_out() {
    let lab = Lab::new("slow");
    lab.baseline();
    let name = PUBLIC[1];
    lab.publish(name, Reply::Slow { delay: Duration::from_secs(30), then: Box::new(Reply::json(bytes(name))) });
    let mut cfg = lab.cfg();
    cfg.timeout = Duration::from_millis(700);
    cfg.retries = 1;
    let t = Instant::now();
    lab.refused(&cfg, ErrorKind::Timeout, "failed after 2 attempts");
    assert!(t.elapsed() < Duration::from_secs(5), "took {:?}", t.elapsed());
}

#[test]
fn untrusted_certificate_is_refused() {
    let lab = Lab::new("untrusted");
    lab.baseline();
    // Another server whose certificate comes from a CA not in the bundle.
    let rogue = Server::start(pki_named("rogue CA").server);
    rogue.set(PAGE, Reply::html(details_page(&rogue.url(&file_path(PUBLIC[1])))));
    rogue.set(&file_path(PUBLIC[1]), Reply::json(bytes(PUBLIC[1])));
    let mut cfg = lab.cfg();
    cfg.source = Source::Discover { details_url: rogue.url(PAGE), link_prefix: rogue.url("/download/") };
    lab.refused(&cfg, ErrorKind::Tls, "UnknownIssuer");
    assert_eq!(rogue.connections(), 1, "TLS failures are not retried");
    assert!(rogue.requests().is_empty(), "no request sent over an untrusted connection");
    // An impostor CA with the trusted CA's name: the signature does not verify.
    let impostor = Server::start(pki().server);
    impostor.set(PAGE, Reply::html(details_page(&impostor.url(&file_path(PUBLIC[1])))));
    let mut cfg = lab.cfg();
    cfg.source = Source::Discover { details_url: impostor.url(PAGE), link_prefix: impostor.url("/download/") };
    lab.refused(&cfg, ErrorKind::Tls, "BadSignature");
    assert!(impostor.requests().is_empty());
    // Without the extra bundle the test CA is not trusted either (system roots only).
    let mut cfg = lab.cfg();
    cfg.extra_ca = None;
    lab.refused(&cfg, ErrorKind::Tls, "certificate");
    // A bundle without certificates is a configuration error.
    let mut cfg = lab.cfg();
    let junk = TempDir::new("junk");
    cfg.extra_ca = Some(junk.write("junk.pem", b"not a certificate\n"));
    lab.refused(&cfg, ErrorKind::Config, "no PEM certificate");
}

#[test]
fn requests_without_user_agent_are_refused_by_the_server() {
    let lab = Lab::new("ua");
    lab.publish_real(PUBLIC[0]);
    let path = file_path(PUBLIC[0]);
    let raw = |ua: Option<&str>| -> String {
        let tls = Arc::new(vorfw_entra::tls_config(Some(&lab.ca)).unwrap());
        let addr = lab.server.addr;
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{}Connection: close\r\n\r\n",
            ua.map(|u| format!("User-Agent: {u}\r\n")).unwrap_or_default()
        );
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
            let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
            let mut s = tokio_rustls::TlsConnector::from(tls).connect(name, tcp).await.unwrap();
            s.write_all(req.as_bytes()).await.unwrap();
            let mut head = vec![0u8; 64];
            s.read_exact(&mut head).await.unwrap();
            String::from_utf8_lossy(&head).into_owned()
        })
    };
    assert!(raw(None).starts_with("HTTP/1.1 403"), "{}", raw(None));
    assert!(raw(Some("curl/8")).starts_with("HTTP/1.1 200"));
    // Our client always sends one, so the same server serves it.
    refresh(&lab.cfg(), lab.dir(), day(0), false).unwrap();
    let reqs = lab.server.requests();
    assert_eq!(reqs.len(), 4, "{reqs:?}");
    assert!(reqs[2..].iter().all(|r| r.user_agent.as_deref() == Some(DEFAULT_USER_AGENT)), "{reqs:?}");
}

#[test]
fn oversized_body_is_refused() {
    let lab = Lab::new("big");
    lab.baseline();
    let mut cfg = lab.cfg();
    cfg.max_bytes = 4096;
    // Declared by Content-Length: refused before reading.
    lab.publish_real(PUBLIC[1]);
    lab.refused(&cfg, ErrorKind::TooLarge, &format!("Content-Length {}", bytes(PUBLIC[1]).len()));
    assert_eq!(lab.server.hits(&file_path(PUBLIC[1])), 1, "not retried");
    // Not declared: the stream is cut at the cap.
    lab.publish(PUBLIC[1], Reply::Unsized { body: bytes(PUBLIC[1]) });
    lab.refused(&cfg, ErrorKind::TooLarge, "4096-byte cap");
    // The details page is capped too.
    let mut tiny = lab.cfg();
    tiny.max_bytes = 200;
    lab.refused(&tiny, ErrorKind::TooLarge, "cap");
}

#[test]
fn backwards_change_number_and_mass_removal_over_https_are_held() {
    let lab = Lab::new("validate");
    lab.publish_real(PUBLIC[3]);
    refresh(&lab.cfg(), lab.dir(), day(0), false).unwrap();
    // An older file (changeNumber 364) adds a prefix back at once; it removes nothing.
    lab.publish_real(PUBLIC[2]);
    let o = refresh(&lab.cfg(), lab.dir(), day(1), false).unwrap();
    assert_eq!(o.diff.added.len(), 1);
    assert!(o.diff.held.is_empty());
    let gutted = "ServiceTags_Public_20250811.json";
    lab.publish(gutted, Reply::json(Arc::new(crafted(PUBLIC[3], 366, |p| p.truncate(50)))));
    let o = refresh(&lab.cfg(), lab.dir(), day(7), false).unwrap();
    assert_eq!((o.diff.held.len(), o.state.counts().effective), (167, 217));
    let status = load_status(lab.dir()).unwrap().unwrap();
    assert!(status.ok && status.condition == vorfw_entra::Condition::Held, "{status:?}");
    assert!(status.held[0].detail.contains("167 of 217"), "{:?}", status.held);
    let mut forced = lab.cfg();
    forced.force = true;
    let o = refresh(&forced, lab.dir(), day(8), false).unwrap();
    assert_eq!(o.state.counts().in_grace, 167);
    assert_eq!(load_status(lab.dir()).unwrap().unwrap().condition, vorfw_entra::Condition::Ok);
}

#[test]
fn explicit_proxy_is_used() {
    let lab = Lab::new("proxy");
    lab.publish_real(PUBLIC[0]);
    let proxy = ConnectProxy::start();
    let mut cfg = lab.cfg();
    cfg.proxy = ProxyMode::Url(proxy.url());
    refresh(&cfg, lab.dir(), day(0), false).unwrap();
    let targets = proxy.targets.lock().unwrap().clone();
    assert!(!targets.is_empty() && targets.iter().all(|t| *t == lab.server.addr.to_string()), "{targets:?}");
}

#[test]
fn plain_http_is_refused_unless_allowed() {
    let lab = Lab::new("http");
    let mut cfg = lab.cfg();
    cfg.source = Source::Url("http://127.0.0.1:9/ServiceTags_Public_20250721.json".into());
    let err = refresh(&cfg, lab.dir(), day(0), true).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.message().contains("plain-HTTP"), "{err}");
}

#[test]
fn ipv6_loopback_server() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("SKIPPED: no IPv6 loopback");
        return;
    }
    let pki = pki();
    let etc = TempDir::new("v6-etc");
    let ca = etc.write("ca.pem", pki.ca_pem.as_bytes());
    let server = Server::start_on("[::1]:0", pki.server);
    server.set("/f/ServiceTags_Public_20250714.json", Reply::json(bytes(PUBLIC[0])));
    let state = TempDir::new("v6");
    let mut cfg =
        FeedConfig::new(Cloud::Public).with_source(Source::Url(server.url("/f/ServiceTags_Public_20250714.json")));
    cfg.extra_ca = Some(ca);
    cfg.proxy = ProxyMode::Direct;
    let o = refresh(&cfg, state.path(), day(0), false).unwrap();
    assert_eq!(o.state.counts().effective, 214);
}

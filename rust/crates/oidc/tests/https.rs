//! Discovery over HTTPS against a local server (vorfw-entra's test server on 127.0.0.1, a CA
//! made at test time, a certificate for idp.vorfw.test and keys.vorfw.test, which the client is
//! told to connect to at 127.0.0.1), and the names resolved by a real dnsmasq on 127.0.0.77.
//! A good document with its jwks_uri on a second name is accepted; an issuer mismatch, plain
//! HTTP, a 50 MB body, 10,000 hosts and a redirect to http are each refused with a clear message,
//! the state file left byte for byte as it was and the status file saying why. Controller mode:
//! `discover --save-dir` writes the fetched bytes, and a refresh reading them with
//! `discovery_dir` resolves the same names as one that fetches.

#[path = "../../entra/tests/common/mod.rs"]
mod common;
mod dns;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{day, pki_for, Reply, Server, TempDir};
use dns::{rec, Dnsmasq};
use serde_json::{json, Value};
use vorfw_oidc::{
    discover, load_provider_state, load_provider_status, parse_provider, refresh_provider, state_path, DnsPolicy,
    ErrorKind, FetchOptions, Issuer, Provider, PublishedPolicy, RefreshOptions,
};

const IDP: &str = "idp.vorfw.test";
const KEYS: &str = "keys.vorfw.test";
const WELL_KNOWN: &str = "/.well-known/openid-configuration";

struct Lab {
    server: Server,
    dns: Dnsmasq,
    dir: TempDir,
    ca: PathBuf,
}

impl Lab {
    fn new(name: &str) -> Lab {
        let pki = pki_for("vorfw-oidc test CA", &[IDP, KEYS]);
        let dir = TempDir::new(name);
        let ca = dir.write("ca.pem", pki.ca_pem.as_bytes());
        let dns = Dnsmasq::start(
            dir.path(),
            &[rec(IDP, &["192.0.2.10", "2001:db8::10"], 60), rec(KEYS, &["192.0.2.20"], 60)],
        );
        Lab { server: Server::start(pki.server), dns, dir, ca }
    }

    fn port(&self) -> u16 {
        self.server.addr.port()
    }

    fn issuer(&self) -> String {
        format!("https://{IDP}:{}", self.port())
    }

    fn url(&self, host: &str, path: &str) -> String {
        format!("https://{host}:{}{path}", self.port())
    }

    fn provider(&self) -> Provider {
        parse_provider(&json!({"issuer": self.issuer(), "name": "lab"})).unwrap()
    }

    fn fetch(&self) -> FetchOptions {
        let mut f = FetchOptions::default().direct();
        f.http.extra_ca = Some(self.ca.clone());
        f.http.retries = 0;
        f.http.timeout = Duration::from_secs(20);
        let lo = SocketAddr::from(([127, 0, 0, 1], 0));
        f.resolve = vec![(IDP.to_string(), lo), (KEYS.to_string(), lo)];
        f
    }

    fn opts(&self) -> RefreshOptions {
        RefreshOptions {
            state_dir: self.dir.path().join("state"),
            fetch: self.fetch(),
            resolver: self.dns.resolver(),
            dns: DnsPolicy { allow_special_use: true, ..DnsPolicy::default() },
            published: PublishedPolicy::default(),
            discovery_file: None,
            discovery_dir: None,
            check: false,
        }
    }

    /// `vorfw oidc discover` against the lab's server, as the controller runs it; the exit code.
    fn discover_cli(&self, extra: &[&str]) -> i32 {
        let connect = |h: &str| format!("{h}:127.0.0.1");
        let mut args: Vec<String> = ["vorfw oidc", "--state-dir"].iter().map(|s| s.to_string()).collect();
        args.push(self.dir.path().join("controller-state").display().to_string());
        let issuer = self.issuer();
        args.extend(
            ["--json", "discover", "--issuer", issuer.as_str(), "--name", "lab", "--no-proxy"].map(String::from),
        );
        args.extend(["--retries", "0", "--ca-bundle"].map(String::from));
        args.push(self.ca.display().to_string());
        args.extend(["--connect-to".to_string(), connect(IDP), "--connect-to".to_string(), connect(KEYS)]);
        args.extend(extra.iter().map(|s| s.to_string()));
        vorfw_oidc::cli(args)
    }

    fn good_doc(&self) -> Value {
        json!({
            "issuer": self.issuer(),
            "authorization_endpoint": self.url(IDP, "/auth"),
            "token_endpoint": self.url(IDP, "/token"),
            "userinfo_endpoint": self.url(IDP, "/userinfo"),
            "end_session_endpoint": self.url(IDP, "/logout"),
            "jwks_uri": self.url(KEYS, "/jwks"),
            "response_types_supported": ["code"],
        })
    }

    fn serve(&self, doc: &Value) {
        self.server.set(WELL_KNOWN, Reply::json(Arc::new(doc.to_string().into_bytes())));
    }

    /// A good refresh, so that the refusals have a state file to leave alone.
    fn good_refresh(&self) -> Vec<u8> {
        self.serve(&self.good_doc());
        let o = refresh_provider(&self.provider(), &self.opts(), day(0)).unwrap();
        assert!(o.saved && o.state.names.contains(KEYS), "{:?}", o.state.names);
        std::fs::read(state_path(&self.opts().state_dir, "lab")).unwrap()
    }

    /// A refresh that must be refused with `kind` and a message holding `needle`; the state file
    /// stays byte for byte, the status file records the failure.
    fn refused(&self, before: &[u8], kind: ErrorKind, needle: &str) -> String {
        let opts = self.opts();
        let e = refresh_provider(&self.provider(), &opts, day(1)).unwrap_err();
        assert_eq!(e.kind(), kind, "{e}");
        assert!(e.message().contains(needle), "{e}");
        assert_eq!(std::fs::read(state_path(&opts.state_dir, "lab")).unwrap(), before, "state file unchanged");
        let st = load_provider_status(&opts.state_dir, "lab").unwrap().unwrap();
        assert!(!st.ok && st.error_kind.as_deref() == Some(kind.as_str()), "{st:?}");
        assert_eq!(st.last_success, Some(day(0)));
        assert_eq!(st.last_failure, Some(day(1)));
        e.message().to_string()
    }
}

#[test]
fn a_good_document_with_jwks_on_a_second_name() {
    let lab = Lab::new("oidc-good");
    lab.serve(&lab.good_doc());
    let (d, redirects) = discover(&Issuer::parse(&lab.issuer()).unwrap(), &lab.fetch()).unwrap();
    let names: Vec<String> = d.names().into_iter().collect();
    assert_eq!(names, vec![IDP.to_string(), KEYS.to_string()]);
    assert_eq!(d.ports().into_iter().collect::<Vec<_>>(), vec![lab.port()]);
    assert!(redirects.is_empty());
    let ua = lab.server.requests().last().unwrap().user_agent.clone().unwrap();
    assert!(ua.starts_with("vorfw-oidc/"), "{ua}");

    // The whole refresh: the names resolved, the state and status files written.
    let state_bytes = lab.good_refresh();
    let opts = lab.opts();
    let st = load_provider_state(&opts.state_dir, "lab").unwrap().unwrap();
    assert_eq!(serde_json::to_vec_pretty(&st).unwrap(), state_bytes[..state_bytes.len() - 1].to_vec());
    let v4: Vec<String> = st.sets.ipv4.iter().map(|a| a.to_string()).collect();
    let v6: Vec<String> = st.sets.ipv6.iter().map(|a| a.to_string()).collect();
    assert_eq!((v4, v6), (vec!["192.0.2.10".into(), "192.0.2.20".into()], vec!["2001:db8::10".to_string()]));
    assert_eq!(st.ports.iter().copied().collect::<Vec<_>>(), vec![lab.port()]);
    let status = load_provider_status(&opts.state_dir, "lab").unwrap().unwrap();
    assert!(status.ok && status.counts.effective == 3 && status.failing_names.is_empty(), "{status:?}");
}

/// The issuer moved and the host's restricted egress only admits its old address: the fetch
/// fails, so the names of the stored document are resolved again (its new address joins the
/// set, and the next fetch gets through), the status says the refresh was degraded. A document
/// that is fetched and refused never falls back.
#[test]
fn an_unreachable_discovery_endpoint_resolves_the_stored_names_again() {
    let mut lab = Lab::new("oidc-stale-doc");
    lab.good_refresh();
    lab.dns.restart(&[rec(IDP, &["192.0.2.11"], 60), rec(KEYS, &["192.0.2.20"], 60)]);
    let mut opts = lab.opts();
    let nobody = SocketAddr::from(([127, 0, 0, 2], 0)); // nothing listens there: refused
    opts.fetch.resolve = vec![(IDP.to_string(), nobody)];
    let o = refresh_provider(&lab.provider(), &opts, day(1)).unwrap();
    let e = o.discovery_error.as_ref().expect("the fetch failed");
    assert_eq!(e.kind(), ErrorKind::Network, "{e}");
    assert!(o.saved && o.state.names.contains(KEYS) && o.state.names.contains(IDP), "{:?}", o.state.names);
    let eff: Vec<String> = o.state.dns.effective().iter().map(|a| a.to_string()).collect();
    assert!(eff.contains(&"192.0.2.11".to_string()), "the issuer's new address: {eff:?}");
    assert!(eff.contains(&"192.0.2.10".to_string()), "the old one, in its grace: {eff:?}");
    let st = load_provider_status(&opts.state_dir, "lab").unwrap().unwrap();
    assert!(st.ok && st.discovery_error.as_deref().is_some_and(|m| m.starts_with("network: ")), "{st:?}");
    assert_eq!(st.health(day(1), Duration::from_secs(3600)), vorfw_oidc::Health::Degraded);

    // Reachable again, but the document is refused: no fallback, the state stays as it is.
    let before = std::fs::read(state_path(&opts.state_dir, "lab")).unwrap();
    let mut doc = lab.good_doc();
    doc["issuer"] = json!(format!("https://evil.vorfw.test:{}", lab.port()));
    lab.serve(&doc);
    let e = refresh_provider(&lab.provider(), &lab.opts(), day(2)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::IssuerMismatch, "{e}");
    assert_eq!(std::fs::read(state_path(&opts.state_dir, "lab")).unwrap(), before, "state file unchanged");
}

#[test]
fn an_issuer_mismatch_is_refused() {
    let lab = Lab::new("oidc-mismatch");
    let before = lab.good_refresh();
    let mut doc = lab.good_doc();
    doc["issuer"] = json!(format!("https://evil.vorfw.test:{}", lab.port()));
    lab.serve(&doc);
    let m = lab.refused(&before, ErrorKind::IssuerMismatch, "not the configured");
    assert!(m.contains("evil.vorfw.test"), "{m}");
    // Only a trailing slash apart: said so.
    doc["issuer"] = json!(format!("{}/", lab.issuer()));
    lab.serve(&doc);
    lab.refused(&before, ErrorKind::IssuerMismatch, "differ only in the trailing '/'");
}

#[test]
fn plain_http_is_refused() {
    // An http issuer is refused before anything is fetched.
    let e = Issuer::parse("http://idp.vorfw.test").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Insecure, "{e}");
    assert!(e.message().contains("https"), "{e}");

    let lab = Lab::new("oidc-http");
    let before = lab.good_refresh();
    // A document naming an http endpoint.
    let mut doc = lab.good_doc();
    doc["token_endpoint"] = json!(format!("http://{IDP}:{}/token", lab.port()));
    lab.serve(&doc);
    lab.refused(&before, ErrorKind::Insecure, "token_endpoint");

    // The issuer's port answering plain HTTP instead of TLS.
    let plain = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = plain.local_addr().unwrap().port();
    let t = std::thread::spawn(move || {
        if let Ok((mut s, _)) = plain.accept() {
            let mut b = [0u8; 1024];
            let _ = s.read(&mut b);
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}");
        }
    });
    let issuer = Issuer::parse(&format!("https://{IDP}:{port}")).unwrap();
    let e = discover(&issuer, &lab.fetch()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Tls, "{e}");
    t.join().unwrap();
}

#[test]
fn a_50_mb_document_is_refused_while_it_streams() {
    let lab = Lab::new("oidc-50mb");
    let before = lab.good_refresh();
    let mut big = lab.good_doc().to_string().into_bytes();
    big.pop();
    big.extend_from_slice(b",\"padding\":\"");
    big.resize(50 << 20, b'x');
    let big = Arc::new(big);
    // Declared length: refused on the header.
    lab.server.set(WELL_KNOWN, Reply::json(big.clone()));
    let m = lab.refused(&before, ErrorKind::TooLarge, "1048576-byte cap");
    assert!(m.contains("Content-Length 52428800"), "{m}");
    // No length: refused once the cap is passed, without reading the rest.
    lab.server.set(WELL_KNOWN, Reply::Unsized { body: big });
    let t = Instant::now();
    lab.refused(&before, ErrorKind::TooLarge, "1048576-byte cap");
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
}

#[test]
fn a_document_naming_10000_hosts_is_refused() {
    let lab = Lab::new("oidc-10k");
    let before = lab.good_refresh();
    let mut doc = lab.good_doc();
    for i in 0..10_000 {
        doc[format!("x{i}_endpoint")] = json!(format!("https://h{i}.vorfw.test/"));
    }
    assert!(doc.to_string().len() < 1 << 20, "under the size cap: the host cap refuses it");
    lab.serve(&doc);
    lab.refused(&before, ErrorKind::TooManyHosts, "32");
}

#[test]
fn redirects_to_https_are_followed_and_to_http_refused() {
    let lab = Lab::new("oidc-redirect");
    // A redirect to the second name over https: followed, its host reported.
    lab.server.set(WELL_KNOWN, Reply::Redirect { status: 302, location: lab.url(KEYS, "/moved") });
    lab.server.set("/moved", Reply::json(Arc::new(lab.good_doc().to_string().into_bytes())));
    let (d, redirects) = discover(&Issuer::parse(&lab.issuer()).unwrap(), &lab.fetch()).unwrap();
    assert_eq!(d.issuer, lab.issuer());
    assert_eq!(redirects.iter().map(|h| h.to_string()).collect::<Vec<_>>(), vec![format!("{KEYS}:{}", lab.port())]);

    let before = lab.good_refresh();
    lab.server.set(WELL_KNOWN, Reply::Redirect { status: 301, location: format!("http://{IDP}:{}/plain", lab.port()) });
    lab.refused(&before, ErrorKind::Redirect, "changes the scheme from https to http");
    // A loop: more than 5 hops.
    lab.server.set(WELL_KNOWN, Reply::Redirect { status: 307, location: WELL_KNOWN.into() });
    lab.refused(&before, ErrorKind::Redirect, "more than 5 redirects");
}

#[test]
fn published_okta_ranges_over_https() {
    let lab = Lab::new("oidc-okta");
    let okta =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../tests/fixtures/oidc/okta/ip_ranges.json"))
            .expect("the Okta fixture");
    lab.server.set("/okta/ip_ranges.json", Reply::json(Arc::new(okta)));
    lab.serve(&lab.good_doc());
    let p = parse_provider(&json!({
        "issuer": lab.issuer(), "name": "lab",
        "addresses": {"kind": "published", "format": "okta", "cell": "us_cell_1",
                      "url": lab.url(KEYS, "/okta/ip_ranges.json")},
    }))
    .unwrap();
    let o = refresh_provider(&p, &lab.opts(), day(0)).unwrap();
    let prefixes: Vec<String> = o.state.range_prefixes().iter().map(|p| p.to_string()).collect();
    assert_eq!(prefixes, vec!["3.209.55.200/32", "3.209.55.201/32", "52.6.85.0/24", "54.144.102.0/24"]);
    assert_eq!(o.state.dns.effective().len(), 3, "the discovery names are resolved too");
    // A bad file afterwards: refused, the state file unchanged.
    let before = std::fs::read(state_path(&lab.opts().state_dir, "lab")).unwrap();
    lab.server.set("/okta/ip_ranges.json", Reply::html("<html>captive portal</html>".into()));
    let e = refresh_provider(&p, &lab.opts(), day(1)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::WrongContent, "{e}");
    assert_eq!(std::fs::read(state_path(&lab.opts().state_dir, "lab")).unwrap(), before);
}

#[test]
fn published_google_ranges_over_https_are_goog_minus_cloud() {
    let lab = Lab::new("oidc-google");
    let fix = |n: &str| {
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../tests/fixtures/oidc/google").join(n))
            .expect("the Google fixtures")
    };
    let (goog, cloud) = (fix("goog.json"), fix("cloud.json"));
    lab.server.set("/ipranges/goog.json", Reply::json(Arc::new(goog.clone())));
    lab.server.set("/ipranges/cloud.json", Reply::json(Arc::new(cloud.clone())));
    lab.serve(&lab.good_doc());
    let p = parse_provider(&json!({
        "issuer": lab.issuer(), "name": "lab",
        "addresses": {"kind": "published", "format": "google",
                      "url": lab.url(KEYS, "/ipranges/goog.json"), "cloud_url": lab.url(KEYS, "/ipranges/cloud.json")},
    }))
    .unwrap();
    let o = refresh_provider(&p, &lab.opts(), day(0)).unwrap();
    let l = vorfw_oidc::RangeLimits::google();
    let want = vorfw_oidc::google_services(
        &vorfw_oidc::parse_google(&goog, "goog.json", &l).unwrap(),
        &vorfw_oidc::parse_google(&cloud, "cloud.json", &l).unwrap(),
        &l,
    )
    .unwrap();
    assert!(!want.prefixes.is_empty());
    assert_eq!(o.state.range_prefixes(), want.prefixes);
    assert_eq!(o.state.range_sources.len(), 2);
    assert_eq!(lab.server.hits("/ipranges/goog.json") + lab.server.hits("/ipranges/cloud.json"), 2);
    // The files swapped: the subtraction leaves nothing and the refresh is refused.
    let before = std::fs::read(state_path(&lab.opts().state_dir, "lab")).unwrap();
    lab.server.set("/ipranges/goog.json", Reply::json(Arc::new(cloud)));
    lab.server.set("/ipranges/cloud.json", Reply::json(Arc::new(goog)));
    let e = refresh_provider(&p, &lab.opts(), day(1)).unwrap_err();
    assert!(e.message().contains("swapped") || e.kind() == ErrorKind::Empty, "{e}");
    assert_eq!(std::fs::read(state_path(&lab.opts().state_dir, "lab")).unwrap(), before);
}

/// Controller mode: the controller's `discover --save-dir` writes the document as it was served;
/// a host reading it from the directory (`--discovery-dir`) resolves exactly what a fetch gives.
#[test]
fn a_saved_document_is_the_fetched_bytes_and_resolves_as_a_fetch() {
    let lab = Lab::new("oidc-save-dir");
    let served = lab.good_doc().to_string().into_bytes();
    let fetched_state = lab.good_refresh(); // serves good_doc and refreshes by fetching
    let save = lab.dir.path().join("controller/oidc");
    assert_eq!(lab.discover_cli(&["--save-dir", save.to_str().unwrap()]), 0);
    let saved = save.join("lab.json");
    assert_eq!(std::fs::read(&saved).unwrap(), served, "the bytes unchanged");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&saved).unwrap().permissions().mode() & 0o7777, 0o644);
    assert!(!lab.dir.path().join("controller-state").exists(), "discover keeps no state");

    // The host: no fetch (the server would count it), the same names and addresses.
    let hits = lab.server.hits(WELL_KNOWN);
    let mut opts = lab.opts();
    opts.state_dir = lab.dir.path().join("host-state");
    opts.discovery_dir = Some(save.clone());
    let o = refresh_provider(&lab.provider(), &opts, day(0)).unwrap();
    assert_eq!(lab.server.hits(WELL_KNOWN), hits, "read from the directory, not fetched");
    let fetched: vorfw_oidc::ProviderState = serde_json::from_slice(&fetched_state).unwrap();
    assert!(o.saved && o.discovery_error.is_none());
    assert_eq!(o.state.names, fetched.names);
    assert_eq!(o.state.ports, fetched.ports);
    assert_eq!(o.state.sets, fetched.sets);
    assert_eq!(o.state.discovery, fetched.discovery);
}

/// A refused document writes nothing: a new directory gets no file, an existing file stays
/// byte for byte.
#[test]
fn a_refused_document_is_not_saved() {
    let lab = Lab::new("oidc-save-refused");
    let save = lab.dir.path().join("controller/oidc");
    let mut doc = lab.good_doc();
    doc["issuer"] = json!(format!("https://evil.vorfw.test:{}", lab.port()));
    lab.serve(&doc);
    assert_eq!(lab.discover_cli(&["--save-dir", save.to_str().unwrap()]), 1);
    assert!(!save.join("lab.json").exists(), "nothing written for a refused document");
    assert_eq!(std::fs::read_dir(&save).unwrap().count(), 0, "no temporary file left either");

    lab.serve(&lab.good_doc());
    assert_eq!(lab.discover_cli(&["--save-dir", save.to_str().unwrap()]), 0);
    let before = std::fs::read(save.join("lab.json")).unwrap();
    lab.serve(&doc);
    assert_eq!(lab.discover_cli(&["--save-dir", save.to_str().unwrap()]), 1);
    assert_eq!(std::fs::read(save.join("lab.json")).unwrap(), before, "the last good document stays");
    assert_eq!(std::fs::read_dir(&save).unwrap().count(), 1);
}

/// A pushed document is validated like a fetched one, and a missing or refused one is an error
/// that names the provider and the path; the state stays byte for byte, and nothing falls back
/// to the stored document (reading a file is not a fetch).
#[test]
fn a_missing_or_refused_pushed_document_leaves_the_state() {
    let lab = Lab::new("oidc-pushed-missing");
    let before = lab.good_refresh();
    let pushed = lab.dir.path().join("pushed");
    std::fs::create_dir_all(&pushed).unwrap();
    let mut opts = lab.opts();
    opts.discovery_dir = Some(pushed.clone());
    let state = state_path(&opts.state_dir, "lab");

    let e = refresh_provider(&lab.provider(), &opts, day(1)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    let want = pushed.join("lab.json").display().to_string();
    assert!(e.message().contains("\"lab\"") && e.message().contains(&want), "{e}");
    assert_eq!(std::fs::read(&state).unwrap(), before, "state file unchanged");
    let st = load_provider_status(&opts.state_dir, "lab").unwrap().unwrap();
    assert!(!st.ok && st.error_kind.as_deref() == Some("config") && st.last_success == Some(day(0)), "{st:?}");

    // Check mode says the same and writes nothing.
    let mut check = opts.clone();
    check.check = true;
    assert_eq!(refresh_provider(&lab.provider(), &check, day(1)).unwrap_err().kind(), ErrorKind::Config);

    // A pushed document for another issuer.
    let mut doc = lab.good_doc();
    doc["issuer"] = json!(format!("https://evil.vorfw.test:{}", lab.port()));
    std::fs::write(pushed.join("lab.json"), doc.to_string()).unwrap();
    let e = refresh_provider(&lab.provider(), &opts, day(2)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::IssuerMismatch, "{e}");
    assert!(e.message().contains("lab.json"), "{e}");
    assert_eq!(std::fs::read(&state).unwrap(), before, "state file unchanged");

    // The good one: accepted.
    std::fs::write(pushed.join("lab.json"), lab.good_doc().to_string()).unwrap();
    let o = refresh_provider(&lab.provider(), &opts, day(3)).unwrap();
    assert!(o.saved && o.state.names.contains(KEYS), "{:?}", o.state.names);
}

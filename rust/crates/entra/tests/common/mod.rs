//! Shared helpers: the real data files, temporary directories, crafted files, and a local HTTPS
//! test server (127.0.0.1 only) with a CA generated at test time.
#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const PUBLIC: [&str; 5] = [
    "ServiceTags_Public_20250714.json",
    "ServiceTags_Public_20250721.json",
    "ServiceTags_Public_20250728.json",
    "ServiceTags_Public_20250804.json",
    "ServiceTags_Public_20251028.json",
];
pub const GOV: &str = "ServiceTags_AzureGovernment_20260720.json";
pub const CHINA: &str = "ServiceTags_China_20260720.json";
pub const AAD: &str = "AzureActiveDirectory";

/// Microsoft's real files, reduced to the tags the tests use (tests/fixtures/servicetags/microsoft,
/// made by its reduce.py; MANIFEST.json describes the originals). Part of the repository: a
/// missing directory is a broken checkout, and every test that needs it fails.
pub fn data_dir() -> PathBuf {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../tests/fixtures/servicetags/microsoft");
    assert!(d.join(PUBLIC[0]).is_file(), "the real service-tag fixtures are missing from {}", d.display());
    d
}

/// The unreduced originals in ../shared/data/servicetags, when this machine has them.
pub fn shared_dir() -> Option<PathBuf> {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../../shared/data/servicetags");
    d.join(PUBLIC[0]).is_file().then_some(d)
}

pub fn bytes(name: &str) -> Arc<Vec<u8>> {
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<Vec<u8>>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut c = cache.lock().unwrap();
    c.entry(name.to_string())
        .or_insert_with(|| Arc::new(std::fs::read(data_dir().join(name)).expect("read data file")))
        .clone()
}

/// A real file as a JSON value, for crafting variants.
pub fn json(name: &str) -> serde_json::Value {
    serde_json::from_slice(&bytes(name)).unwrap()
}

/// The AzureActiveDirectory prefix array of a JSON value.
pub fn aad_prefixes(doc: &mut serde_json::Value) -> &mut Vec<serde_json::Value> {
    doc["values"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|t| t["name"] == AAD)
        .unwrap()
        .pointer_mut("/properties/addressPrefixes")
        .unwrap()
        .as_array_mut()
        .unwrap()
}

/// A real file with its AzureActiveDirectory prefixes and changeNumber changed.
pub fn crafted(base: &str, change_number: u64, edit: impl FnOnce(&mut Vec<serde_json::Value>)) -> Vec<u8> {
    let mut doc = json(base);
    doc["changeNumber"] = change_number.into();
    edit(aad_prefixes(&mut doc));
    serde_json::to_vec(&doc).unwrap()
}

/// 2025-07-14T06:00:00Z plus `days`.
pub fn day(days: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_752_472_800 + days * 86400)
}

/// A temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let d = std::env::temp_dir().join(format!(
            "vorfw-entra-test-{}-{}-{name}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
    pub fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Every file in a directory, name → bytes (to prove a failure changed nothing but the status).
pub fn snapshot(dir: &Path, except: &[&str]) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap()))
        .filter(|(n, _)| !except.contains(&n.as_str()))
        .collect();
    v.sort();
    v
}

// ---------------------------------------------------------------------------------------------
// PKI

pub struct Pki {
    pub ca_pem: String,
    pub server: Arc<rustls::ServerConfig>,
}

/// A fresh CA and a server certificate for localhost, 127.0.0.1 and ::1 signed by it.
pub fn pki() -> Pki {
    pki_named("vorfw-entra test CA")
}

/// An ECDSA P-256 key from graviola, for rcgen without its ring/aws-lc backends: the tests, like
/// the crate, need no C compiler (so `cargo test --target x86_64-unknown-linux-musl` works too).
struct TestKey {
    key: graviola::signing::ecdsa::SigningKey<graviola::signing::ecdsa::P256>,
    spki: Vec<u8>,
}

impl TestKey {
    fn generate() -> TestKey {
        let key = graviola::signing::ecdsa::SigningKey::<graviola::signing::ecdsa::P256>::generate().unwrap();
        let mut buf = [0u8; 256];
        let spki = key.to_spki_der(&mut buf).unwrap().to_vec();
        TestKey { key, spki }
    }

    fn pkcs8(&self) -> Vec<u8> {
        let mut buf = [0u8; 512];
        self.key.to_pkcs8_der(&mut buf).unwrap().to_vec()
    }

    /// A subject key identifier: the first 20 bytes of SHA-256 of the public key info.
    fn key_id(&self) -> Vec<u8> {
        use sha2::Digest;
        sha2::Sha256::digest(&self.spki)[..20].to_vec()
    }
}

impl rcgen::PublicKeyData for TestKey {
    /// The uncompressed point: the last 65 bytes of the SubjectPublicKeyInfo.
    fn der_bytes(&self) -> &[u8] {
        &self.spki[self.spki.len() - 65..]
    }
    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_ECDSA_P256_SHA256
    }
}

impl rcgen::SigningKey for TestKey {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        let mut buf = [0u8; 128];
        let sig = self
            .key
            .sign_asn1::<graviola::hashing::Sha256>(&[msg], &mut buf)
            .map_err(|_| rcgen::Error::RemoteKeyError)?;
        Ok(sig.to_vec())
    }
}

/// [`pki`] with the CA's common name chosen.
pub fn pki_named(ca_name: &str) -> Pki {
    pki_for(ca_name, &["localhost", "127.0.0.1", "::1"])
}

/// A fresh CA and a server certificate for these names (DNS names or IP addresses).
pub fn pki_for(ca_name: &str, names: &[&str]) -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyIdMethod, SerialNumber};
    static SERIAL: AtomicUsize = AtomicUsize::new(1);
    let serial = || SerialNumber::from(vec![0x10, (SERIAL.fetch_add(1, Ordering::SeqCst) % 250) as u8 + 1]);
    let ca_key = TestKey::generate();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, ca_name);
    ca_params.serial_number = Some(serial());
    ca_params.key_identifier_method = KeyIdMethod::PreSpecified(ca_key.key_id());
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let key = TestKey::generate();
    let mut params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    params.serial_number = Some(serial());
    params.key_identifier_method = KeyIdMethod::PreSpecified(key.key_id());
    let cert = params.signed_by(&key, &ca).unwrap();
    let provider = Arc::new(rustls_graviola::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone(), ca.der().clone()],
            rustls_pki_types::PrivateKeyDer::Pkcs8(key.pkcs8().into()),
        )
        .unwrap();
    Pki { ca_pem: ca.pem(), server: Arc::new(server) }
}

// ---------------------------------------------------------------------------------------------
// HTTPS server

/// How the server answers one request.
#[derive(Clone)]
pub enum Reply {
    /// A complete response.
    Body { status: u16, content_type: &'static str, body: Arc<Vec<u8>> },
    /// Declares the full Content-Length, sends only `send` bytes, then closes.
    Truncated { body: Arc<Vec<u8>>, send: usize },
    /// No Content-Length: the body runs until the connection closes.
    Unsized { body: Arc<Vec<u8>> },
    /// Wait, then answer.
    Slow { delay: Duration, then: Box<Reply> },
    /// A redirect (301, 302, 307, 308) to `location`.
    Redirect { status: u16, location: String },
}

impl Reply {
    pub fn json(body: Arc<Vec<u8>>) -> Reply {
        Reply::Body { status: 200, content_type: "application/octet-stream", body }
    }
    pub fn html(body: String) -> Reply {
        Reply::Body { status: 200, content_type: "text/html; charset=utf-8", body: Arc::new(body.into_bytes()) }
    }
    pub fn status(status: u16) -> Reply {
        Reply::Body { status, content_type: "text/plain", body: Arc::new(format!("status {status}\n").into_bytes()) }
    }
}

#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub user_agent: Option<String>,
}

#[derive(Default)]
struct Shared {
    /// path → replies; the last one repeats.
    routes: Mutex<HashMap<String, VecDeque<Reply>>>,
    requests: Mutex<Vec<Request>>,
    connections: AtomicUsize,
}

pub struct Server {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Serve HTTPS on 127.0.0.1 with `tls`. Requests without a User-Agent get 403, unknown paths 404.
    pub fn start(tls: Arc<rustls::ServerConfig>) -> Server {
        Self::start_on("127.0.0.1:0", tls)
    }

    pub fn start_on(bind: &str, tls: Arc<rustls::ServerConfig>) -> Server {
        let std_listener = std::net::TcpListener::bind(bind).unwrap();
        assert!(std_listener.local_addr().unwrap().ip().is_loopback());
        std_listener.set_nonblocking(true).unwrap();
        let addr = std_listener.local_addr().unwrap();
        let shared = Arc::new(Shared::default());
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let sh = shared.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
                let acceptor = tokio_rustls::TlsAcceptor::from(tls);
                loop {
                    tokio::select! {
                        _ = &mut stopped => break,
                        conn = listener.accept() => {
                            let Ok((tcp, _)) = conn else { continue };
                            sh.connections.fetch_add(1, Ordering::SeqCst);
                            let acceptor = acceptor.clone();
                            let sh = sh.clone();
                            tokio::spawn(async move {
                                if let Ok(tls) = acceptor.accept(tcp).await {
                                    let _ = serve(tls, sh).await;
                                }
                            });
                        }
                    }
                }
            });
            rt.shutdown_timeout(Duration::from_millis(100));
        });
        Server { addr, shared, stop: Some(stop), thread: Some(thread) }
    }

    pub fn url(&self, path: &str) -> String {
        match self.addr {
            SocketAddr::V4(a) => format!("https://127.0.0.1:{}{path}", a.port()),
            SocketAddr::V6(a) => format!("https://[::1]:{}{path}", a.port()),
        }
    }

    pub fn set(&self, path: &str, reply: Reply) {
        self.set_seq(path, vec![reply]);
    }

    /// Answer `path` with these replies in turn; the last one repeats.
    pub fn set_seq(&self, path: &str, replies: Vec<Reply>) {
        self.shared.routes.lock().unwrap().insert(path.to_string(), replies.into());
    }

    pub fn requests(&self) -> Vec<Request> {
        self.shared.requests.lock().unwrap().clone()
    }

    pub fn hits(&self, path: &str) -> usize {
        self.requests().iter().filter(|r| r.path == path).count()
    }

    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn read_head<S: tokio::io::AsyncRead + Unpin>(s: &mut S) -> Option<String> {
    let mut buf = Vec::new();
    let mut b = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut b).await.ok()?;
        if n == 0 || buf.len() > 64 * 1024 {
            return None;
        }
        buf.extend_from_slice(&b[..n]);
    }
    Some(String::from_utf8_lossy(&buf).into_owned())
}

async fn serve<S>(mut s: S, sh: Arc<Shared>) -> std::io::Result<()>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
{
    let Some(head) = read_head(&mut s).await else { return Ok(()) };
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let method = first.next().unwrap_or("").to_string();
    let path = first.next().unwrap_or("").to_string();
    let user_agent = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("user-agent"))
        .map(|(_, v)| v.trim().to_string());
    sh.requests.lock().unwrap().push(Request { method, path: path.clone(), user_agent: user_agent.clone() });
    let reply = if user_agent.as_deref().is_none_or(str::is_empty) {
        // Like download.microsoft.com: no User-Agent, no file.
        Reply::status(403)
    } else {
        let mut routes = sh.routes.lock().unwrap();
        match routes.get_mut(&path) {
            Some(q) if q.len() > 1 => q.pop_front().unwrap(),
            Some(q) => q.front().cloned().unwrap(),
            None => Reply::status(404),
        }
    };
    write_reply(&mut s, reply).await
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        301 => "Moved Permanently",
        302 => "Found",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

fn write_reply<'a, S>(
    s: &'a mut S,
    reply: Reply,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<()>> + Send + 'a>>
where
    S: tokio::io::AsyncWrite + Unpin + Send,
{
    Box::pin(async move {
        match reply {
            Reply::Body { status, content_type, body } => {
                let head = format!(
                    "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    reason(status),
                    body.len()
                );
                s.write_all(head.as_bytes()).await?;
                s.write_all(&body).await?;
            }
            Reply::Truncated { body, send } => {
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                s.write_all(head.as_bytes()).await?;
                s.write_all(&body[..send.min(body.len())]).await?;
            }
            Reply::Unsized { body } => {
                let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n";
                s.write_all(head.as_bytes()).await?;
                for chunk in body.chunks(64 * 1024) {
                    s.write_all(chunk).await?;
                }
            }
            Reply::Redirect { status, location } => {
                let head = format!(
                    "HTTP/1.1 {status} {}\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    reason(status)
                );
                s.write_all(head.as_bytes()).await?;
            }
            Reply::Slow { delay, then } => {
                tokio::time::sleep(delay).await;
                return write_reply(s, *then).await;
            }
        }
        s.flush().await?;
        s.shutdown().await
    })
}

/// The details page as Microsoft's download center writes it (a button link and the same URL,
/// JSON-escaped, in a script), with `link` as the file's URL.
pub fn details_page(link: &str) -> String {
    let name = link.rsplit('/').next().unwrap();
    format!(
        r#"<!DOCTYPE html>
<html lang="en-us" dir="ltr"><head><meta charset="utf-8"/>
<title>Download Azure IP Ranges and Service Tags – Public Cloud from Official Microsoft Download Center</title></head>
<body><main id="mainContent"><h1>Azure IP Ranges and Service Tags – Public Cloud</h1>
<div class="dlcdetail__download-btn"><a href="{link}" class="mscom-link button" aria-label="Download {name}">Download</a></div>
<p>This file contains the IP address ranges for Public Azure as a whole, each Azure region within Public, and ranges for several Azure Services.</p>
</main>
<script>window.__DLCDetails__={{"dlcDetailsView":{{"downloadFile":[{{"name":"{name}","url":"{escaped}","size":"4128469"}}]}}}};</script>
</body></html>
"#,
        escaped = link.replace('/', "\\/")
    )
}

/// A minimal HTTP CONNECT proxy on 127.0.0.1 that only tunnels to loopback addresses.
pub struct ConnectProxy {
    pub addr: SocketAddr,
    pub targets: Arc<Mutex<Vec<String>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ConnectProxy {
    pub fn start() -> ConnectProxy {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let addr = std_listener.local_addr().unwrap();
        let targets = Arc::new(Mutex::new(Vec::new()));
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let t = targets.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
                loop {
                    tokio::select! {
                        _ = &mut stopped => break,
                        conn = listener.accept() => {
                            let Ok((mut tcp, _)) = conn else { continue };
                            let t = t.clone();
                            tokio::spawn(async move {
                                let Some(head) = read_head(&mut tcp).await else { return };
                                let target = head.split(' ').nth(1).unwrap_or("").to_string();
                                t.lock().unwrap().push(target.clone());
                                let ok = head.starts_with("CONNECT ")
                                    && target.parse::<SocketAddr>().is_ok_and(|a| a.ip().is_loopback());
                                if !ok {
                                    let _ = tcp.write_all(b"HTTP/1.1 403 Forbidden\r\n\r\n").await;
                                    return;
                                }
                                let Ok(mut up) = tokio::net::TcpStream::connect(&target).await else { return };
                                let _ = tcp.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n").await;
                                let _ = tokio::io::copy_bidirectional(&mut tcp, &mut up).await;
                            });
                        }
                    }
                }
            });
        });
        ConnectProxy { addr, targets, stop: Some(stop), thread: Some(thread) }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for ConnectProxy {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

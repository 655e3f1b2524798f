//! A real DNS server for the tests: dnsmasq (Debian package dnsmasq-base; `make setup` installs
//! it) on a loopback address and a free port, answering only the records it is given. Nothing
//! is forwarded anywhere (`--no-resolv`, no upstream servers), so no query leaves the machine.
#![allow(dead_code)]

use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The loopback address the test servers listen on (not 127.0.0.1, where other tests' servers
/// are, nor 127.0.0.53, systemd-resolved's).
pub const DNS_ADDR: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 77);

/// The test names' domain (RFC 6761 reserves `.test`).
pub const DOMAIN: &str = "vorfw.test";

/// One name's answers: addresses (IPv4 and IPv6) and the TTL.
#[derive(Clone, Debug)]
pub struct Record {
    pub name: String,
    pub addrs: Vec<String>,
    pub ttl: u32,
}

pub fn rec(name: &str, addrs: &[&str], ttl: u32) -> Record {
    Record { name: name.to_string(), addrs: addrs.iter().map(|a| a.to_string()).collect(), ttl }
}

pub struct Dnsmasq {
    child: Option<Child>,
    pub port: u16,
    dir: PathBuf,
    /// (alias, target): CNAME records (as CDNs answer), kept across restarts.
    cnames: Vec<(String, String)>,
}

fn binary() -> PathBuf {
    for p in ["/usr/sbin/dnsmasq", "/usr/bin/dnsmasq", "/sbin/dnsmasq"] {
        if Path::new(p).is_file() {
            return PathBuf::from(p);
        }
    }
    panic!(
        "dnsmasq is missing: the resolver tests need a real DNS server. Install it with \
         `apt-get install dnsmasq-base` (or `make setup`, which installs the Makefile's APT_PACKAGES)"
    );
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(1) == Some("0")))
        .unwrap_or(false)
}

fn free_port() -> u16 {
    // A port free for UDP and TCP on DNS_ADDR (dnsmasq takes both).
    loop {
        let u = UdpSocket::bind((DNS_ADDR, 0)).unwrap();
        let port = u.local_addr().unwrap().port();
        if std::net::TcpListener::bind((DNS_ADDR, port)).is_ok() {
            return port;
        }
    }
}

impl Dnsmasq {
    /// Start on a free port with these records; `dir` holds the resolv.conf and the log.
    pub fn start(dir: &Path, records: &[Record]) -> Dnsmasq {
        Self::start_with_cnames(dir, records, &[])
    }

    /// [`Dnsmasq::start`] with CNAME records (alias, target): the target must be one of `records`.
    pub fn start_with_cnames(dir: &Path, records: &[Record], cnames: &[(&str, &str)]) -> Dnsmasq {
        let cnames = cnames.iter().map(|(a, t)| (a.to_string(), t.to_string())).collect();
        let mut d = Dnsmasq { child: None, port: free_port(), dir: dir.to_path_buf(), cnames };
        std::fs::write(d.resolv_conf(), format!("nameserver {DNS_ADDR}\noptions timeout:1 attempts:1\n")).unwrap();
        d.spawn(records);
        d
    }

    /// The resolv.conf naming this server (its port is given separately: `ResolverOptions::port`).
    pub fn resolv_conf(&self) -> PathBuf {
        self.dir.join("resolv.conf")
    }

    pub fn resolver(&self) -> vorfw_oidc::ResolverOptions {
        vorfw_oidc::ResolverOptions { resolv_conf: self.resolv_conf(), port: Some(self.port), ..Default::default() }
    }

    fn spawn(&mut self, records: &[Record]) {
        let mut c = Command::new(binary());
        c.args(["--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts", "--bind-interfaces"])
            .arg("--pid-file=")
            .arg(format!("--listen-address={DNS_ADDR}"))
            .arg(format!("--port={}", self.port))
            .arg(format!("--log-facility={}", self.dir.join("dnsmasq.log").display()))
            .arg("--log-queries")
            // Answered here, never forwarded: NXDOMAIN for unknown names, NODATA for a family a
            // name has no address of (without it dnsmasq answers REFUSED, having no upstream).
            .arg(format!("--local=/{DOMAIN}/"));
        if is_root() {
            c.arg("--user=root");
        }
        for r in records {
            let (v4, v6): (Vec<&String>, Vec<&String>) = r.addrs.iter().partition(|a| !a.contains(':'));
            assert!(v4.len() <= 1 && v6.len() <= 1, "one address per family and record: {r:?}");
            let v4 = v4.first().map(|s| s.as_str()).unwrap_or("");
            let v6 = v6.first().map(|s| s.as_str()).unwrap_or("");
            let mut spec = r.name.clone();
            for a in [v4, v6] {
                if !a.is_empty() {
                    spec.push(',');
                    spec.push_str(a);
                }
            }
            c.arg(format!("--host-record={spec},{}", r.ttl));
        }
        for (alias, target) in &self.cnames {
            c.arg(format!("--cname={alias},{target}"));
        }
        let child = c.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        let addr = SocketAddr::from((DNS_ADDR, self.port));
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                let out = self.child.take().unwrap().wait_with_output().unwrap();
                panic!("dnsmasq exited ({status}): {}", String::from_utf8_lossy(&out.stderr));
            }
            assert!(Instant::now() < deadline, "dnsmasq did not listen on {addr} within 10 s");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Restart with other records (same port, same resolv.conf).
    pub fn restart(&mut self, records: &[Record]) {
        self.stop();
        self.spawn(records);
    }

    /// Stop the server (lookups then time out).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        self.stop();
    }
}

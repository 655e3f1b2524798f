//! Probe network flows from the local host and say whether a firewall let them through.
//!
//! A [`Probe`] names a destination (address, port, protocol) and what the firewall plan
//! expects of it ([`Expect::Allowed`] or [`Expect::Blocked`]). [`probe_one`] sends real
//! packets and classifies what came back into a [`State`]:
//!
//! | protocol | what happened                                              | state      |
//! |----------|------------------------------------------------------------|------------|
//! | TCP      | the connection was established                             | `open`     |
//! | TCP      | ECONNREFUSED: a RST came back (reachable, nothing listens)  | `closed`   |
//! | TCP      | timeout, EHOSTUNREACH, ENETUNREACH, EACCES, EPERM          | `filtered` |
//! | UDP      | any reply datagram                                         | `open`     |
//! | UDP      | ECONNREFUSED on send/recv: ICMP port unreachable           | `closed`   |
//! | UDP      | EHOSTUNREACH, ENETUNREACH, EACCES, EPERM                   | `filtered` |
//! | UDP      | no answer at all, after every retry                        | `no-reply` |
//! | either   | a local error that says nothing about the network          | `error`    |
//!
//! `open` and `closed` mean the firewall let the packet through ([`State::is_allowed`]);
//! `filtered` and `no-reply` mean it did not ([`State::is_blocked`]). UDP without a responder is
//! ambiguous (a silent service and a dropping firewall look the same), hence the distinct
//! `no-reply` state. `error` (e.g. the address family is not supported on this host) is neither
//! allowed nor blocked, so a probe in that state never matches its expectation.
//!
//! Note the limits of probing from user space: a firewall that rejects with a TCP reset or an
//! ICMP port-unreachable is indistinguishable from an open firewall in front of a closed port,
//! and is reported as `closed` (allowed). Rejects with ICMP admin-/host-prohibited (firewalld's
//! default) and silent drops (ufw's default) are reported as `filtered`.
//!
//! [`probe_all`] runs many probes on a fixed pool of threads and returns the results in input
//! order. Only `std` is used (no async runtime), to keep module binaries small.

use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// The datagram sent by UDP probes.
pub const UDP_PAYLOAD: &[u8] = b"vorfw-probe\n";

/// Stack size of the probe worker threads: probing needs almost none.
const WORKER_STACK: usize = 128 * 1024;

/// The transport protocol of a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

/// What the firewall plan expects of a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Expect {
    /// The firewall lets the flow through (the port may still be closed).
    Allowed,
    /// The firewall drops or rejects the flow.
    Blocked,
    /// The source's own restricted egress rejects the flow before it leaves. ufw rejects
    /// outgoing traffic with a port-unreachable, which a local connect reports as refused, so
    /// `closed` also satisfies this (the target's firewall would not admit a leak from here
    /// anyway: the target side is proven by the probes of hosts whose egress lets it out).
    #[serde(rename = "blocked-at-source")]
    BlockedAtSource,
}

/// The observed outcome of a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// Connected (TCP) or got a reply (UDP).
    Open,
    /// Refused: a TCP RST or an ICMP port unreachable came back. Reachable, nothing listening.
    Closed,
    /// Timed out (TCP), or an ICMP unreachable/prohibited or a local reject came back.
    Filtered,
    /// UDP only: no answer of any kind to any datagram. Counted as blocked.
    NoReply,
    /// The probe could not be run (a local error that says nothing about the firewall).
    Error,
}

impl State {
    /// The firewall let the packet through: `open` or `closed`.
    pub fn is_allowed(self) -> bool {
        matches!(self, State::Open | State::Closed)
    }

    /// The firewall stopped the packet: `filtered` or `no-reply`.
    pub fn is_blocked(self) -> bool {
        matches!(self, State::Filtered | State::NoReply)
    }

    /// Whether this state satisfies an expectation. `error` satisfies none.
    pub fn satisfies(self, expect: Expect) -> bool {
        match expect {
            Expect::Allowed => self.is_allowed(),
            Expect::Blocked => self.is_blocked(),
            Expect::BlockedAtSource => self.is_blocked() || self == State::Closed,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            State::Open => "open",
            State::Closed => "closed",
            State::Filtered => "filtered",
            State::NoReply => "no-reply",
            State::Error => "error",
        }
    }
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

impl Expect {
    pub fn as_str(self) -> &'static str {
        match self {
            Expect::Allowed => "allowed",
            Expect::Blocked => "blocked",
            Expect::BlockedAtSource => "blocked-at-source",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// The error of parsing a [`Protocol`] or an [`Expect`]: names the accepted values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub value: String,
    pub expected: &'static str,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "'{}' is not one of {}", self.value, self.expected)
    }
}

impl std::error::Error for ParseError {}

impl FromStr for Protocol {
    type Err = ParseError;
    /// `tcp` or `udp`, case-insensitive.
    fn from_str(s: &str) -> Result<Self, ParseError> {
        match s.to_ascii_lowercase().as_str() {
            "tcp" => Ok(Protocol::Tcp),
            "udp" => Ok(Protocol::Udp),
            _ => Err(ParseError { value: s.to_string(), expected: "tcp, udp" }),
        }
    }
}

impl FromStr for Expect {
    type Err = ParseError;
    /// `allowed` or `blocked`, case-insensitive.
    fn from_str(s: &str) -> Result<Self, ParseError> {
        match s.to_ascii_lowercase().as_str() {
            "allowed" => Ok(Expect::Allowed),
            "blocked" => Ok(Expect::Blocked),
            "blocked-at-source" => Ok(Expect::BlockedAtSource),
            _ => Err(ParseError { value: s.to_string(), expected: "allowed, blocked, blocked-at-source" }),
        }
    }
}

/// One flow to probe from the local host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probe {
    pub dst: IpAddr,
    pub port: u16,
    pub protocol: Protocol,
    pub expect: Expect,
    /// Free text naming the flow in reports; may be empty.
    #[serde(default)]
    pub label: String,
}

impl Probe {
    pub fn new(dst: IpAddr, port: u16, protocol: Protocol, expect: Expect) -> Probe {
        Probe { dst, port, protocol, expect, label: String::new() }
    }

    pub fn with_label(mut self, label: impl Into<String>) -> Probe {
        self.label = label.into();
        self
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.dst, self.port)
    }

    /// `10.231.0.22:8001/tcp`, `[fd00:231::22]:8001/udp`.
    pub fn target(&self) -> String {
        format!("{}/{}", self.addr(), self.protocol)
    }
}

/// The outcome of one probe.
///
/// Serializes flat, as the `verify` module returns it: `dst`, `port`, `protocol`, `expect`,
/// `state`, `allowed`, `ok`, `label`, `detail`, `elapsed_ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeResult {
    pub probe: Probe,
    pub state: State,
    /// What happened, with the raw OS error text when there was one.
    pub detail: String,
    pub elapsed_ms: u64,
    /// The state satisfies the probe's expectation.
    pub ok: bool,
}

impl ProbeResult {
    /// Build a result; `ok` is derived from the state and the probe's expectation.
    pub fn new(probe: Probe, state: State, detail: String, elapsed: Duration) -> ProbeResult {
        let ok = state.satisfies(probe.expect);
        ProbeResult { probe, state, detail, elapsed_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX), ok }
    }

    /// The firewall let the packet through (`open` or `closed`).
    pub fn allowed(&self) -> bool {
        self.state.is_allowed()
    }
}

impl Serialize for ProbeResult {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("ProbeResult", 10)?;
        st.serialize_field("dst", &self.probe.dst)?;
        st.serialize_field("port", &self.probe.port)?;
        st.serialize_field("protocol", &self.probe.protocol)?;
        st.serialize_field("expect", &self.probe.expect)?;
        st.serialize_field("state", &self.state)?;
        st.serialize_field("allowed", &self.allowed())?;
        st.serialize_field("ok", &self.ok)?;
        st.serialize_field("label", &self.probe.label)?;
        st.serialize_field("detail", &self.detail)?;
        st.serialize_field("elapsed_ms", &self.elapsed_ms)?;
        st.end()
    }
}

/// How probes are run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Per-probe time limit: the TCP connect timeout, and the whole UDP exchange (all retries).
    pub timeout: Duration,
    /// UDP: how many times the datagram is re-sent after the first one without an answer.
    pub udp_retries: u32,
    /// How many probes run at once (threads). At least one is used.
    pub concurrency: usize,
}

impl Default for Options {
    /// 1500 ms timeout, 2 UDP retries, 64 concurrent probes.
    fn default() -> Options {
        Options { timeout: Duration::from_millis(1500), udp_retries: 2, concurrency: 64 }
    }
}

/// Linux errno values that classify a probe (the `libc` crate is not a dependency).
#[cfg(target_os = "linux")]
mod errno {
    pub const EPERM: i32 = 1;
    pub const EACCES: i32 = 13;
    pub const ENETUNREACH: i32 = 101;
    pub const ECONNRESET: i32 = 104;
    pub const ETIMEDOUT: i32 = 110;
    pub const ECONNREFUSED: i32 = 111;
    pub const EHOSTDOWN: i32 = 112;
    pub const EHOSTUNREACH: i32 = 113;
}

#[cfg(target_os = "linux")]
fn classify_errno(code: i32) -> Option<State> {
    use errno::{EACCES, ECONNREFUSED, ECONNRESET, EHOSTDOWN, EHOSTUNREACH, ENETUNREACH, EPERM, ETIMEDOUT};
    match code {
        ECONNREFUSED | ECONNRESET => Some(State::Closed),
        EHOSTUNREACH | ENETUNREACH | EHOSTDOWN | EACCES | EPERM | ETIMEDOUT => Some(State::Filtered),
        _ => None,
    }
}

#[cfg(not(target_os = "linux"))]
fn classify_errno(_code: i32) -> Option<State> {
    None
}

/// Classify the error of a connect, send or receive.
///
/// - ECONNREFUSED (a TCP RST, or an ICMP port unreachable for UDP) and ECONNRESET: `closed`;
/// - EHOSTUNREACH, ENETUNREACH, EHOSTDOWN (ICMP unreachable or admin-/host-prohibited),
///   EACCES, EPERM (a local firewall reject), ETIMEDOUT and timeouts: `filtered`;
/// - anything else (e.g. EAFNOSUPPORT, EMFILE): `error`.
pub fn classify_io_error(e: &io::Error) -> State {
    if let Some(state) = e.raw_os_error().and_then(classify_errno) {
        return state;
    }
    match e.kind() {
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset => State::Closed,
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock | io::ErrorKind::PermissionDenied => State::Filtered,
        _ => State::Error,
    }
}

/// Probe one flow (blocking, at most about `opts.timeout`).
pub fn probe_one(probe: &Probe, opts: &Options) -> ProbeResult {
    let start = Instant::now();
    // A zero timeout would make connect_timeout fail with EINVAL.
    let timeout = opts.timeout.max(Duration::from_millis(1));
    let (state, detail) = match probe.protocol {
        Protocol::Tcp => probe_tcp(probe.addr(), timeout),
        Protocol::Udp => probe_udp(probe.addr(), timeout, opts.udp_retries),
    };
    ProbeResult::new(probe.clone(), state, detail, start.elapsed())
}

fn millis(d: Duration) -> u128 {
    d.as_millis()
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted)
}

fn probe_tcp(addr: SocketAddr, timeout: Duration) -> (State, String) {
    match TcpStream::connect_timeout(&addr, timeout) {
        Ok(stream) => {
            let _ = stream.shutdown(Shutdown::Both);
            (State::Open, "connected".to_string())
        }
        Err(e) if e.kind() == io::ErrorKind::TimedOut => {
            (State::Filtered, format!("connect: {e} (no answer within {} ms)", millis(timeout)))
        }
        Err(e) => (classify_io_error(&e), format!("connect: {e}")),
    }
}

fn probe_udp(addr: SocketAddr, timeout: Duration, retries: u32) -> (State, String) {
    let local: SocketAddr = match addr {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let sock = match UdpSocket::bind(local) {
        Ok(s) => s,
        Err(e) => return (State::Error, format!("cannot open a UDP socket: {e}")),
    };
    // connect() on UDP sends nothing, but routes: ENETUNREACH shows up here.
    if let Err(e) = sock.connect(addr) {
        return (classify_io_error(&e), format!("connect: {e}"));
    }
    let deadline = Instant::now() + timeout;
    let attempts = retries.saturating_add(1);
    let mut buf = [0u8; 2048];
    let mut sent = 0u32;
    while sent < attempts {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        // Split what is left of the timeout evenly over the remaining attempts.
        let wait = ((deadline - now) / (attempts - sent)).max(Duration::from_millis(1));
        // A pending ICMP error from an earlier datagram is reported by send() as well.
        if let Err(e) = sock.send(UDP_PAYLOAD) {
            return (classify_io_error(&e), format!("send: {e}"));
        }
        sent += 1;
        if let Err(e) = sock.set_read_timeout(Some(wait)) {
            return (State::Error, format!("cannot set the receive timeout: {e}"));
        }
        let attempt_end = Instant::now() + wait;
        loop {
            match sock.recv(&mut buf) {
                Ok(n) => return (State::Open, format!("{n}-byte reply after {sent} datagram(s)")),
                // EINTR: wait for the rest of this attempt.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                    let now = Instant::now();
                    if now >= attempt_end
                        || sock.set_read_timeout(Some((attempt_end - now).max(Duration::from_millis(1)))).is_err()
                    {
                        break;
                    }
                }
                Err(e) if is_timeout(&e) => break,
                Err(e) => return (classify_io_error(&e), format!("recv: {e}")),
            }
        }
    }
    (State::NoReply, format!("no reply to {sent} datagram(s) within {} ms", millis(timeout)))
}

/// Probe every flow, `opts.concurrency` at a time, on a fixed pool of scoped threads.
/// The results are in the order of `probes`.
pub fn probe_all(probes: &[Probe], opts: &Options) -> Vec<ProbeResult> {
    let workers = opts.concurrency.max(1).min(probes.len());
    if workers <= 1 {
        return probes.iter().map(|p| probe_one(p, opts)).collect();
    }
    let next = AtomicUsize::new(0);
    let mut slots: Vec<Option<ProbeResult>> = vec![None; probes.len()];
    let (tx, rx) = mpsc::channel::<(usize, ProbeResult)>();
    thread::scope(|scope| {
        let mut spawned = 0usize;
        for i in 0..workers {
            let tx = tx.clone();
            let next = &next;
            let worker = move || loop {
                let idx = next.fetch_add(1, Ordering::Relaxed);
                let Some(p) = probes.get(idx) else { break };
                if tx.send((idx, probe_one(p, opts))).is_err() {
                    break;
                }
            };
            match thread::Builder::new().name(format!("probe-{i}")).stack_size(WORKER_STACK).spawn_scoped(scope, worker)
            {
                Ok(_) => spawned += 1,
                // Out of threads: run with the ones we have.
                Err(_) => break,
            }
        }
        drop(tx);
        if spawned == 0 {
            // Not even one thread: probe on this one.
            for (idx, p) in probes.iter().enumerate() {
                slots[idx] = Some(probe_one(p, opts));
            }
        }
        for (idx, r) in rx {
            slots[idx] = Some(r);
        }
    });
    slots
        .into_iter()
        .zip(probes)
        .map(|(slot, p)| {
            slot.unwrap_or_else(|| {
                ProbeResult::new(
                    p.clone(),
                    State::Error,
                    "internal error: the probe did not complete".into(),
                    Duration::ZERO,
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    // Each test's role gets its own loopback address, so that tests running in parallel
    // cannot answer each other's probes (a port released by one may be bound by another).
    /// Listeners and echo servers.
    const LO: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
    /// Ports bound and released: closed.
    const UNUSED: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 4);
    /// A socket that reads nothing and answers nothing.
    const SILENT: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);

    fn opts(ms: u64) -> Options {
        Options { timeout: Duration::from_millis(ms), ..Options::default() }
    }

    /// Ports that were free a moment ago (bound, then released).
    fn unused_tcp_ports(n: usize) -> Vec<u16> {
        let ls: Vec<TcpListener> = (0..n).map(|_| TcpListener::bind((UNUSED, 0)).unwrap()).collect();
        ls.iter().map(|l| l.local_addr().unwrap().port()).collect()
    }

    fn unused_udp_port() -> u16 {
        UdpSocket::bind((UNUSED, 0)).unwrap().local_addr().unwrap().port()
    }

    fn udp_echo() -> (u16, thread::JoinHandle<()>) {
        let s = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = s.local_addr().unwrap().port();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let h = thread::spawn(move || {
            let mut buf = [0u8; 512];
            if let Ok((n, from)) = s.recv_from(&mut buf) {
                let _ = s.send_to(&buf[..n], from);
            }
        });
        (port, h)
    }

    #[test]
    fn classify_errno_values() {
        let c = |n| classify_io_error(&io::Error::from_raw_os_error(n));
        assert_eq!(c(111), State::Closed); // ECONNREFUSED
        assert_eq!(c(113), State::Filtered); // EHOSTUNREACH
        assert_eq!(c(101), State::Filtered); // ENETUNREACH
        assert_eq!(c(13), State::Filtered); // EACCES
        assert_eq!(c(1), State::Filtered); // EPERM
        assert_eq!(c(110), State::Filtered); // ETIMEDOUT
        assert_eq!(c(97), State::Error); // EAFNOSUPPORT says nothing about the firewall
        assert_eq!(c(22), State::Error); // EINVAL
    }

    #[test]
    fn classify_error_kinds() {
        let c = |k| classify_io_error(&io::Error::new(k, "x"));
        assert_eq!(c(io::ErrorKind::ConnectionRefused), State::Closed);
        assert_eq!(c(io::ErrorKind::TimedOut), State::Filtered);
        assert_eq!(c(io::ErrorKind::PermissionDenied), State::Filtered);
        assert_eq!(c(io::ErrorKind::Other), State::Error);
    }

    #[test]
    fn allowed_blocked_and_ok() {
        for s in [State::Open, State::Closed] {
            assert!(s.is_allowed() && !s.is_blocked());
            assert!(s.satisfies(Expect::Allowed) && !s.satisfies(Expect::Blocked));
        }
        for s in [State::Filtered, State::NoReply] {
            assert!(s.is_blocked() && !s.is_allowed());
            assert!(s.satisfies(Expect::Blocked) && !s.satisfies(Expect::Allowed));
        }
        assert!(!State::Error.satisfies(Expect::Allowed));
        assert!(!State::Error.satisfies(Expect::Blocked));
        assert!(State::Closed.satisfies(Expect::BlockedAtSource) && State::Filtered.satisfies(Expect::BlockedAtSource));
        assert!(!State::Open.satisfies(Expect::BlockedAtSource));
        assert_eq!("blocked-at-source".parse::<Expect>().unwrap(), Expect::BlockedAtSource);
    }

    #[test]
    fn parse_and_display() {
        assert_eq!("TCP".parse::<Protocol>().unwrap(), Protocol::Tcp);
        assert_eq!("udp".parse::<Protocol>().unwrap(), Protocol::Udp);
        assert_eq!("icmp".parse::<Protocol>().unwrap_err().to_string(), "'icmp' is not one of tcp, udp");
        assert_eq!("Blocked".parse::<Expect>().unwrap(), Expect::Blocked);
        assert!("open".parse::<Expect>().is_err());
        assert_eq!(State::NoReply.to_string(), "no-reply");
        let p = Probe::new("::1".parse().unwrap(), 53, Protocol::Udp, Expect::Allowed);
        assert_eq!(p.target(), "[::1]:53/udp");
    }

    #[test]
    fn result_serializes_flat() {
        let p = Probe::new(LO, 80, Protocol::Tcp, Expect::Blocked).with_label("web");
        let r = ProbeResult::new(p, State::NoReply, "d".into(), Duration::from_millis(7));
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"dst": "127.0.0.1", "port": 80, "protocol": "tcp",
                "expect": "blocked", "state": "no-reply", "allowed": false, "ok": true,
                "label": "web", "detail": "d", "elapsed_ms": 7})
        );
        let back: Probe = serde_json::from_value(
            serde_json::json!({"dst": "::1", "port": 1, "protocol": "udp", "expect": "allowed"}),
        )
        .unwrap();
        assert_eq!(back.label, "");
    }

    #[test]
    fn tcp_listener_is_open() {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = l.local_addr().unwrap().port();
        let r = probe_one(&Probe::new(LO, port, Protocol::Tcp, Expect::Allowed), &opts(1000));
        assert_eq!(r.state, State::Open, "{}", r.detail);
        assert!(r.ok && r.allowed());
    }

    #[test]
    fn tcp_unused_port_is_closed() {
        let port = unused_tcp_ports(1)[0];
        let r = probe_one(&Probe::new(UNUSED.into(), port, Protocol::Tcp, Expect::Blocked), &opts(1000));
        assert_eq!(r.state, State::Closed, "{}", r.detail);
        assert!(r.detail.contains("refused"), "{}", r.detail);
        assert!(r.allowed() && !r.ok);
    }

    #[test]
    fn udp_echo_is_open() {
        let (port, h) = udp_echo();
        let r = probe_one(&Probe::new(LO, port, Protocol::Udp, Expect::Allowed), &opts(2000));
        h.join().unwrap();
        assert_eq!(r.state, State::Open, "{}", r.detail);
        assert!(r.ok);
    }

    #[test]
    fn udp_unused_port_is_closed() {
        let port = unused_udp_port();
        let r = probe_one(&Probe::new(UNUSED.into(), port, Protocol::Udp, Expect::Allowed), &opts(1000));
        assert_eq!(r.state, State::Closed, "{}", r.detail);
        assert!(r.ok);
    }

    #[test]
    fn udp_silent_port_is_no_reply_after_retries() {
        let silent = UdpSocket::bind((SILENT, 0)).unwrap();
        let port = silent.local_addr().unwrap().port();
        let o = Options { timeout: Duration::from_millis(300), udp_retries: 2, concurrency: 1 };
        let r = probe_one(&Probe::new(SILENT.into(), port, Protocol::Udp, Expect::Blocked), &o);
        assert_eq!(r.state, State::NoReply, "{}", r.detail);
        assert!(r.ok && !r.allowed());
        assert!(r.elapsed_ms >= 250 && r.elapsed_ms < 1000, "{}", r.elapsed_ms);
        // The first datagram and both retries arrived.
        silent.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 64];
        let mut got = 0;
        while let Ok(n) = silent.recv(&mut buf) {
            assert_eq!(&buf[..n], UDP_PAYLOAD);
            got += 1;
        }
        assert_eq!(got, 3);
    }

    #[test]
    fn probe_all_keeps_input_order() {
        let listeners: Vec<TcpListener> =
            (0..5).map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap()).collect();
        let closed = unused_tcp_ports(5);
        let mut probes = Vec::new();
        for i in 0..50 {
            let (dst, port, expect) = if i % 2 == 0 {
                let port = listeners[i % 5].local_addr().unwrap().port();
                (LO, port, Expect::Allowed)
            } else {
                (UNUSED.into(), closed[i % 5], Expect::Blocked)
            };
            probes.push(Probe::new(dst, port, Protocol::Tcp, expect).with_label(i.to_string()));
        }
        let o = Options { concurrency: 7, ..opts(1000) };
        let rs = probe_all(&probes, &o);
        assert_eq!(rs.len(), probes.len());
        for (i, r) in rs.iter().enumerate() {
            assert_eq!(r.probe, probes[i]);
            let want = if i % 2 == 0 { State::Open } else { State::Closed };
            assert_eq!(r.state, want, "probe {i}: {}", r.detail);
        }
        assert!(probe_all(&[], &o).is_empty());
    }

    #[test]
    fn two_hundred_closed_probes_are_fast() {
        let ports = unused_tcp_ports(100);
        let udp: Vec<u16> = (0..100).map(|_| unused_udp_port()).collect();
        let probes: Vec<Probe> = ports
            .iter()
            .map(|&p| Probe::new(UNUSED.into(), p, Protocol::Tcp, Expect::Allowed))
            .chain(udp.iter().map(|&p| Probe::new(UNUSED.into(), p, Protocol::Udp, Expect::Allowed)))
            .collect();
        let start = Instant::now();
        let rs = probe_all(&probes, &Options::default());
        let took = start.elapsed();
        assert!(rs.iter().all(|r| r.state == State::Closed && r.ok));
        assert!(took < Duration::from_secs(2), "took {took:?}");
    }
}

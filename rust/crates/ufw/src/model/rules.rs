//! The owned rules a policy needs, and how ufw spells them (tuples, addresses, comments).

use ipnet::IpNet;
use std::collections::BTreeSet;
use std::fmt;
use std::net::Ipv6Addr;
use vorfw_core::policy::{Family, Policy};
use vorfw_core::Proto;

/// Every rule this collection owns has a ufw comment starting with this.
pub const COMMENT_PREFIX: &str = "vorfw:";

pub(super) const RULES_START: &str = "### RULES ###";
pub(super) const RULES_END: &str = "### END RULES ###";
pub(super) const TUPLE: &str = "### tuple ###";

/// ufw's file name for a family's rules.
pub fn file_name(f: Family) -> &'static str {
    match f {
        Family::V4 => "user.rules",
        Family::V6 => "user6.rules",
    }
}

/// ufw's chain prefix for a family.
pub(super) fn chain_prefix(f: Family) -> &'static str {
    match f {
        Family::V4 => "ufw",
        Family::V6 => "ufw6",
    }
}

/// ufw's spelling of "any address" in a family's tuples.
pub(super) fn any(f: Family) -> &'static str {
    match f {
        Family::V4 => "0.0.0.0/0",
        Family::V6 => "::/0",
    }
}

/// `binascii.hexlify(s.encode('utf-8'))`, as ufw stores comments.
pub fn hex_encode(s: &str) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(s.len() * 2);
    for b in s.bytes() {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
}

/// ufw's `hex_decode`: an odd trailing digit is dropped; `None` when not hex at all.
pub fn hex_decode(h: &str) -> Option<String> {
    // Bytes, not chars: a hand-edited file may hold anything, and slicing a `str` at an odd
    // byte inside a multibyte character would panic.
    let b = h.as_bytes();
    let b = &b[..b.len() - b.len() % 2];
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let bytes: Option<Vec<u8>> = b.chunks(2).map(|p| Some(digit(p[0])? << 4 | digit(p[1])?)).collect();
    bytes.map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// An IPv6 address as glibc's `inet_ntop` (and so Python's `socket.inet_ntop`, which ufw uses
/// to normalise addresses) writes it. It differs from Rust's `Display` only for the deprecated
/// IPv4-compatible addresses (`::a.b.c.d`).
pub(super) fn ntop6(a: &Ipv6Addr) -> String {
    let s = a.segments();
    if s[..6] == [0; 6] && s[6] != 0 {
        let o = a.octets();
        return format!("::{}.{}.{}.{}", o[12], o[13], o[14], o[15]);
    }
    a.to_string()
}

/// A source as ufw normalises it: `0.0.0.0/0`/`::/0` for everyone, a bare address for a
/// host, else `network/prefix`.
pub fn ufw_address(n: &IpNet) -> String {
    let n = n.trunc();
    match n {
        IpNet::V4(v) if v.prefix_len() == 32 => v.addr().to_string(),
        IpNet::V4(v) => format!("{}/{}", v.addr(), v.prefix_len()),
        IpNet::V6(v) if v.prefix_len() == 128 => ntop6(&v.addr()),
        IpNet::V6(v) => format!("{}/{}", ntop6(&v.addr()), v.prefix_len()),
    }
}

/// What an owned rule allows, and so which of ufw's user chains it is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Direction {
    /// `allow in` (`ufw-user-input`) to `port` from the peer (a source).
    In,
    /// `allow out` (`ufw-user-output`) to `port` of the peer (a destination).
    Out,
    /// `allow out` (`ufw-user-output`) from local `port` to the peer: the replies of the
    /// management SSH accepts when egress is restricted (see [`desired`]).
    Reply,
}

impl Direction {
    /// ufw's word in the tuple.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out | Direction::Reply => "out",
        }
    }
}

/// One owned ufw rule, `port/protocol` with one peer network: `allow in` from `peer` to any
/// address, `allow out` to `peer` from any address, or (`Reply`) `allow out` from local `port`
/// to `peer`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UfwRule {
    pub family: Family,
    pub direction: Direction,
    /// The source (inbound) or destination (outbound) network.
    pub peer: IpNet,
    pub port: u16,
    pub protocol: Proto,
    /// The full comment, `vorfw:<set>`.
    pub comment: String,
}

impl UfwRule {
    /// The peer as ufw writes it in tuples.
    fn peer_address(&self) -> String {
        if self.peer.prefix_len() == 0 {
            any(self.family).to_string()
        } else {
            ufw_address(&self.peer)
        }
    }

    /// The `### tuple ###` line (without newline), as ufw 0.36 writes it.
    pub fn tuple_line(&self) -> String {
        self.block().lines().nth(1).unwrap_or_default().to_string()
    }

    /// The iptables-restore line (without newline), as ufw 0.36 writes it.
    pub fn iptables_line(&self) -> String {
        self.block().lines().nth(2).unwrap_or_default().to_string()
    }

    /// The whole block as ufw 0.36 writes it: an empty line, the tuple, the iptables line.
    ///
    /// ```text
    ///
    /// ### tuple ### allow tcp 8301 0.0.0.0/0 any 10.0.0.5 in comment=<hex>
    /// -A ufw-user-input -p tcp --dport 8301 -s 10.0.0.5 -j ACCEPT
    ///
    /// ### tuple ### allow tcp 443 20.190.128.0/18 any 0.0.0.0/0 out comment=<hex>
    /// -A ufw-user-output -p tcp -d 20.190.128.0/18 --dport 443 -j ACCEPT
    /// ```
    ///
    /// and for a reply rule (`ufw allow out proto tcp from any port 22 to 10.0.0.1`):
    ///
    /// ```text
    ///
    /// ### tuple ### allow tcp any 10.0.0.1 22 0.0.0.0/0 out comment=<hex>
    /// -A ufw-user-output -p tcp -d 10.0.0.1 --sport 22 -j ACCEPT
    /// ```
    ///
    /// (tuple: `action protocol dport dst sport src direction`; iptables: ufw's
    /// `format_rule` order `-p`, `-d`, `--dport`, `-s`, `--sport`; "any" is left out.)
    pub fn block(&self) -> String {
        let peer = self.peer_address();
        let any = any(self.family);
        let proto = self.protocol.as_str();
        let port = self.port.to_string();
        let (dst, src, chain) = match self.direction {
            Direction::In => (any, peer.as_str(), "-user-input -p "),
            Direction::Out | Direction::Reply => (peer.as_str(), any, "-user-output -p "),
        };
        let (dport, sport) = match self.direction {
            Direction::Reply => ("any", port.as_str()),
            _ => (port.as_str(), "any"),
        };
        let mut s = String::with_capacity(112 + 2 * peer.len() + 2 * self.comment.len());
        for part in ["\n", TUPLE, " allow ", proto, " ", dport, " ", dst, " ", sport, " ", src, " "] {
            s.push_str(part);
        }
        s.push_str(self.direction.as_str());
        s.push_str(" comment=");
        s.push_str(&hex_encode(&self.comment));
        for part in ["\n-A ", chain_prefix(self.family), chain, proto] {
            s.push_str(part);
        }
        if dst != any {
            s.push_str(" -d ");
            s.push_str(dst);
        }
        if dport != "any" {
            s.push_str(" --dport ");
            s.push_str(dport);
        }
        if src != any {
            s.push_str(" -s ");
            s.push_str(src);
        }
        if sport != "any" {
            s.push_str(" --sport ");
            s.push_str(sport);
        }
        s.push_str(" -j ACCEPT\n");
        s
    }
}

/// The same words as [`describe_tuple`] gives for the rule's tuple line:
/// `allow 8301/tcp from 10.0.0.5 (vorfw:g-all)`, `allow out 443/tcp to 20.190.128.0/18 (vorfw:entra)`,
/// `allow out from port 22/tcp to 10.0.0.1 (vorfw:ctl)`.
impl fmt::Display for UfwRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (dir, word) = match self.direction {
            Direction::In => ("", "from"),
            Direction::Out => (" out", "to"),
            Direction::Reply => (" out from port", "to"),
        };
        write!(f, "allow{dir} {}/{} {word} ", self.port, self.protocol.as_str())?;
        match (self.peer.prefix_len(), self.family) {
            (0, Family::V4) => f.write_str("any")?,
            (0, Family::V6) => f.write_str("any (v6)")?,
            _ => f.write_str(&ufw_address(&self.peer))?,
        }
        write!(f, " ({})", self.comment)
    }
}

/// The owned rules a policy needs, in file order: every IPv4 rule (user.rules), then every
/// IPv6 rule (user6.rules). Within a family: the inbound rules (`policy.accepts`, the sets
/// hold sources), then the outbound ones (`policy.egress.accepts`, the sets hold
/// destinations), then the reply rules; each in the policy's order (set, family, protocol,
/// port), with the set's networks in order. A (peer, port, protocol) reached from several
/// sets in one direction becomes one rule, commented with the first set.
///
/// Outbound accepts become rules whether or not egress is restricted: with an open egress they
/// change nothing (the outgoing policy allows everything) but keep, for example, the Entra ID
/// set current, so that restricting egress later is only a policy switch.
///
/// With restricted egress, each management SSH accept (the lockout guard or
/// `host_firewall_management_sources`, known by its rule id) also gets a reply rule: `allow
/// out` from the SSH port to the same networks. ufw's before.rules accept the replies of
/// tracked connections, but an SSH session opened while nothing in the network namespace used
/// conntrack (ufw disabled, a fresh host) is picked up mid-stream when ufw starts: the host's
/// next packet is `NEW`, the outgoing policy rejects it and the session (Ansible's own) hangs
/// (seen in tests/netns-integration.sh).
pub fn desired(policy: &Policy) -> Vec<UfwRule> {
    let replies = &policy.egress.replies;
    let mut out = vec![];
    for fam in [Family::V4, Family::V6] {
        for (direction, accepts) in
            [(Direction::In, &policy.accepts), (Direction::Out, &policy.egress.accepts), (Direction::Reply, replies)]
        {
            let mut seen: BTreeSet<(IpNet, u16, Proto)> = BTreeSet::new();
            for a in accepts.keys().filter(|a| a.family == fam) {
                let Some(nets) = policy.sets.get(&(a.set.clone(), fam)) else { continue };
                for n in nets.iter().filter(|n| Family::of(n) == fam) {
                    let peer = n.trunc();
                    if seen.insert((peer, a.port, a.protocol)) {
                        out.push(UfwRule {
                            family: fam,
                            direction,
                            peer,
                            port: a.port,
                            protocol: a.protocol,
                            comment: format!("{COMMENT_PREFIX}{}", a.set),
                        });
                    }
                }
            }
        }
    }
    out
}

/// Owned rules, one line each, for people and Ansible's `--diff`.
pub fn render(rules: &[UfwRule]) -> String {
    rules.iter().map(|r| format!("{r}\n")).collect()
}

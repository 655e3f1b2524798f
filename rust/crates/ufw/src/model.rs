//! Pure part of the ufw backend: the owned rules a policy needs, ufw's rules files
//! (`/etc/ufw/user.rules`, `user6.rules`) parsed into the operator's and our tuples, the new
//! file contents, a line-per-rule rendering for Ansible's `--diff`, and what the outgoing
//! default policy must become ([`plan_output`]).
//!
//! # The file format (ufw 0.36)
//!
//! ufw keeps its rules in iptables-restore files. Between `### RULES ###` and
//! `### END RULES ###` every rule is a block: an empty line, a `### tuple ###` line that ufw
//! parses back into the rule, and the `-A` lines it loads into the kernel:
//!
//! ```text
//!
//! ### tuple ### allow tcp 8301 0.0.0.0/0 any 10.0.0.5 in comment=766f7266773a672d616c6c
//! -A ufw-user-input -p tcp --dport 8301 -s 10.0.0.5 -j ACCEPT
//!
//! ### tuple ### allow tcp 443 20.190.128.0/18 any 0.0.0.0/0 out comment=766f7266773a656e747261
//! -A ufw-user-output -p tcp -d 20.190.128.0/18 --dport 443 -j ACCEPT
//! ```
//!
//! The tuple is `action protocol dport dst sport src [dapp sapp] direction[ comment=<hex>]`.
//! The comment is the hex-encoded UTF-8 of the rule's comment. Our blocks are written
//! byte-for-byte as ufw itself writes them for
//! `ufw allow proto tcp from 10.0.0.5 to any port 8301 comment 'vorfw:g-all'` (inbound) and
//! `ufw allow out proto tcp to 20.190.128.0/18 port 443 comment 'vorfw:entra'` (outbound), so
//! ufw reads them back as its own rules (`ufw status`, `ufw delete`, `ufw reload` and any later ufw command,
//! which rewrites the whole file from what it read, keep them unchanged).
//!
//! # Ownership and order
//!
//! A block is ours when its comment decodes to a string starting with [`COMMENT_PREFIX`].
//! Every other block is the operator's: kept byte-for-byte and in its order. Ours are always
//! written **after** the operator's blocks, in a canonical order. ufw's chains are evaluated
//! first match wins and we only ever `allow`, so an operator's `deny`/`reject`/`limit` rule for
//! the same traffic stays effective; a rule the operator adds later with `ufw allow|deny ...`
//! lands after ours (ufw appends), and the next converge moves ours back to the end (reported
//! as a change).

use ipnet::IpNet;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::Ipv6Addr;
use vorfw_core::policy::{Family, Policy};
use vorfw_core::Proto;

/// Every rule this collection owns has a ufw comment starting with this.
pub const COMMENT_PREFIX: &str = "vorfw:";

const RULES_START: &str = "### RULES ###";
const RULES_END: &str = "### END RULES ###";
const TUPLE: &str = "### tuple ###";

/// ufw's file name for a family's rules.
pub fn file_name(f: Family) -> &'static str {
    match f {
        Family::V4 => "user.rules",
        Family::V6 => "user6.rules",
    }
}

/// ufw's chain prefix for a family.
fn chain_prefix(f: Family) -> &'static str {
    match f {
        Family::V4 => "ufw",
        Family::V6 => "ufw6",
    }
}

/// ufw's spelling of "any address" in a family's tuples.
fn any(f: Family) -> &'static str {
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
    let h = if h.len() % 2 == 1 { &h[..h.len() - 1] } else { h };
    let bytes: Option<Vec<u8>> =
        (0..h.len()).step_by(2).map(|i| h.get(i..i + 2).and_then(|d| u8::from_str_radix(d, 16).ok())).collect();
    bytes.map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// An IPv6 address as glibc's `inet_ntop` (and so Python's `socket.inet_ntop`, which ufw uses
/// to normalise addresses) writes it. It differs from Rust's `Display` only for the deprecated
/// IPv4-compatible addresses (`::a.b.c.d`).
fn ntop6(a: &Ipv6Addr) -> String {
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

/// One rule block of a rules file, byte-for-byte (its leading empty line included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub text: String,
    /// The decoded comment, when the tuple has one.
    pub comment: Option<String>,
}

impl Block {
    pub fn new(text: String) -> Block {
        let comment = tuple_of(&text).split_once(" comment=").and_then(|(_, hex)| hex_decode(hex.trim()));
        Block { text, comment }
    }

    /// The `### tuple ###` line, without its line ending.
    pub fn tuple_line(&self) -> &str {
        tuple_of(&self.text)
    }

    pub fn is_owned(&self) -> bool {
        self.comment.as_deref().is_some_and(|c| c.starts_with(COMMENT_PREFIX))
    }
}

fn tuple_of(text: &str) -> &str {
    text.lines().find(|l| l.starts_with(TUPLE)).unwrap_or("")
}

/// A ufw rules file split into what we keep verbatim and the rule blocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RulesFile {
    /// Everything up to and including the `### RULES ###` line.
    pub head: String,
    pub blocks: Vec<Block>,
    /// From the empty line before `### END RULES ###` to the end of the file.
    pub tail: String,
    /// False for the file as the package ships it, which has no rules and no end marker.
    pub has_end: bool,
}

fn is_blank(l: &str) -> bool {
    l.trim().is_empty()
}

impl RulesFile {
    pub fn parse(text: &str) -> Result<RulesFile, String> {
        let lines: Vec<&str> = text.split_inclusive('\n').collect();
        let start = lines
            .iter()
            .position(|l| l.trim_end() == RULES_START)
            .ok_or_else(|| format!("no '{RULES_START}' line: not a ufw rules file"))?;
        let end = lines[start + 1..].iter().position(|l| l.trim_end() == RULES_END).map(|i| i + start + 1);
        let mut head: String = lines[..=start].concat();
        let Some(end) = end else {
            let rest = &lines[start + 1..];
            if rest.iter().any(|l| l.starts_with(TUPLE)) {
                return Err(format!(
                    "rules without a '{RULES_END}' line (edited by hand?); `ufw reload` makes ufw rewrite the file"
                ));
            }
            return Ok(RulesFile { head, blocks: vec![], tail: rest.concat(), has_end: false });
        };
        let mut blocks: Vec<Block> = vec![];
        let mut blanks = String::new();
        for l in &lines[start + 1..end] {
            if is_blank(l) {
                blanks.push_str(l);
                continue;
            }
            let text = std::mem::take(&mut blanks) + l;
            if l.starts_with(TUPLE) {
                blocks.push(Block::new(text));
            } else if let Some(b) = blocks.last_mut() {
                b.text.push_str(&text);
            } else {
                head.push_str(&text);
            }
        }
        Ok(RulesFile { head, blocks, tail: blanks + &lines[end..].concat(), has_end: true })
    }

    pub fn owned(&self) -> impl Iterator<Item = &Block> {
        self.blocks.iter().filter(|b| b.is_owned())
    }

    pub fn operator(&self) -> impl Iterator<Item = &Block> {
        self.blocks.iter().filter(|b| !b.is_owned())
    }

    /// The file as it is (parse → render is byte-exact).
    pub fn render(&self) -> String {
        let mut s = self.head.clone();
        for b in &self.blocks {
            s.push_str(&b.text);
        }
        s.push_str(&self.tail);
        s
    }

    /// The file with the owned blocks replaced by `rules` (of this file's family), after the
    /// operator's blocks.
    pub fn with_owned(&self, rules: &[UfwRule]) -> String {
        let blocks: Vec<String> = rules.iter().map(UfwRule::block).collect();
        self.with_owned_blocks(&blocks)
    }

    fn with_owned_blocks(&self, blocks: &[String]) -> String {
        if !self.has_end && blocks.is_empty() {
            return self.render();
        }
        let mut s = String::with_capacity(self.head.len() + self.tail.len() + blocks.len() * 160);
        s.push_str(&self.head);
        for b in self.operator() {
            s.push_str(&b.text);
        }
        for b in blocks {
            s.push_str(b);
        }
        if !self.has_end {
            s.push('\n');
            s.push_str(RULES_END);
            s.push('\n');
        }
        s.push_str(&self.tail);
        s
    }
}

/// A tuple line in words: `allow 8301/tcp from 10.0.0.5 (vorfw:g-all)` inbound,
/// `allow out 443/tcp to 20.190.128.0/18 (vorfw:entra)` outbound. Fields other than the ones
/// we write are shown when they are not the default, so hand-edited owned rules differ.
pub fn describe_tuple(line: &str, family: Family) -> String {
    let (body, comment) = match line.split_once(" comment=") {
        Some((b, h)) => (b, hex_decode(h.trim())),
        None => (line, None),
    };
    let f: Vec<&str> = body.trim_start_matches(TUPLE).split_whitespace().collect();
    if f.len() != 7 {
        return line.to_string();
    }
    let (action, proto, dport, dst, sport, src, dir) = (f[0], f[1], f[2], f[3], f[4], f[5], f[6]);
    let is_any = |a: &str| a == "0.0.0.0/0" || a == "::/0";
    let out = dir == "out";
    // The peer (source inbound, destination outbound) is always shown; the other address only
    // when it is not "any".
    let (peer_word, peer, other_word, other) =
        if out { (" to ", dst, " from ", src) } else { (" from ", src, " to ", dst) };
    // An outbound rule from a local port only (a reply rule): `allow out from port 22/tcp to ...`.
    let reply = out && dport == "any" && sport != "any";
    let mut s = String::with_capacity(line.len());
    s.push_str(action);
    s.push_str(if reply {
        " out from port "
    } else if out {
        " out "
    } else {
        " "
    });
    let port = if reply { sport } else { dport };
    if port != "any" {
        s.push_str(port);
        s.push('/');
    }
    s.push_str(proto);
    s.push_str(peer_word);
    if !is_any(peer) {
        s.push_str(peer);
    } else if family == Family::V6 {
        s.push_str("any (v6)");
    } else {
        s.push_str("any");
    }
    let odd_dir = dir != "in" && !out;
    let show_sport = sport != "any" && !reply;
    for (show, a, b) in [(!is_any(other), other_word, other), (show_sport, " sport ", sport), (odd_dir, " ", dir)] {
        if show {
            s.push_str(a);
            s.push_str(b);
        }
    }
    if let Some(c) = comment {
        s.push_str(" (");
        s.push_str(&c);
        s.push(')');
    }
    s
}

/// Owned rules, one line each, for people and Ansible's `--diff`.
pub fn render(rules: &[UfwRule]) -> String {
    rules.iter().map(|r| format!("{r}\n")).collect()
}

/// The owned blocks of a parsed file, one line each.
pub fn render_owned(file: &RulesFile, family: Family) -> String {
    file.owned().map(|b| describe_tuple(b.tuple_line(), family) + "\n").collect()
}

/// What converging one rules file takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilePlan {
    pub family: Family,
    /// The new content; equal to the current one when nothing changes.
    pub content: String,
    pub changed: bool,
    /// Owned rules to add and remove (a rule whose block differs counts as both).
    pub added: usize,
    pub removed: usize,
    /// Operator rules kept as they are.
    pub kept: usize,
    /// Current owned rules, one line each.
    pub before: String,
    /// Wanted owned rules, one line each.
    pub after: String,
}

impl FilePlan {
    /// The change in words, `None` when there is none.
    pub fn describe(&self) -> Option<String> {
        if !self.changed {
            return None;
        }
        let name = file_name(self.family);
        Some(if self.added == 0 && self.removed == 0 {
            format!("{name}: move the owned rules after the {} operator rules (same rules)", self.kept)
        } else {
            format!(
                "{name}: add {} and remove {} owned rules, keep {} operator rules",
                self.added, self.removed, self.kept
            )
        })
    }
}

/// Plan one rules file: `current` is its content, `want` the owned rules of its family.
pub fn plan_file(family: Family, current: &str, want: &[UfwRule]) -> Result<FilePlan, String> {
    let file = RulesFile::parse(current).map_err(|e| format!("{}: {e}", file_name(family)))?;
    let blocks: Vec<String> = want.iter().map(UfwRule::block).collect();
    let content = file.with_owned_blocks(&blocks);
    let mut have: Vec<&str> = file.owned().map(|b| b.text.as_str()).collect();
    let after = render(want);
    // The common case, nothing changed in our rules, needs no sorting and no second rendering.
    let same = have.len() == blocks.len() && have.iter().zip(&blocks).all(|(h, b)| *h == b.as_str());
    let (added, removed, before) = if same {
        (0, 0, after.clone())
    } else {
        let mut wanted: Vec<&str> = blocks.iter().map(String::as_str).collect();
        have.sort_unstable();
        wanted.sort_unstable();
        let (mut i, mut j, mut common) = (0, 0, 0);
        while i < have.len() && j < wanted.len() {
            match have[i].cmp(wanted[j]) {
                std::cmp::Ordering::Equal => (i, j, common) = (i + 1, j + 1, common + 1),
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
            }
        }
        (wanted.len() - common, have.len() - common, render_owned(&file, family))
    };
    Ok(FilePlan {
        family,
        changed: content != current,
        content,
        added,
        removed,
        kept: file.operator().count(),
        before,
        after,
    })
}

/// ufw's word (`ufw default <word> ...`, `ufw status`) for a `DEFAULT_*_POLICY` value as
/// [`read_settings`] gives it (lower-cased); `None` for a value ufw's CLI cannot set.
pub fn policy_word(value: &str) -> Option<&'static str> {
    match value {
        "accept" => Some("allow"),
        "drop" => Some("deny"),
        "reject" => Some("reject"),
        _ => None,
    }
}

/// The settings key of the outgoing default policy, in `/etc/default/ufw` and in our record.
pub const OUTPUT_POLICY_KEY: &str = "DEFAULT_OUTPUT_POLICY";

/// What restricted egress sets the outgoing default policy to (`ufw default reject outgoing`).
pub const RESTRICTED_OUTPUT: &str = "reject";

/// The content of our record of the operator's outgoing policy (`value` lower-cased, as read).
pub fn output_record(value: &str) -> String {
    format!(
        "# vorstream.firewall (ufw backend): ufw's default outgoing policy before host_firewall_egress\n\
         # restricted set it to REJECT. It is put back when egress is open again; without this file\n\
         # the outgoing policy is never changed back.\n\
         {OUTPUT_POLICY_KEY}=\"{}\"\n",
        value.to_uppercase()
    )
}

/// The value (lower-cased) in a record written by [`output_record`]: one ufw's CLI can set.
pub fn read_output_record(text: &str) -> Result<String, String> {
    let value = read_settings(&[text])
        .remove(&OUTPUT_POLICY_KEY.to_lowercase())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| format!("no {OUTPUT_POLICY_KEY}=... line"))?;
    match policy_word(&value) {
        Some(_) => Ok(value),
        None => Err(format!("the recorded outgoing policy '{value}' is not one ufw can set (ACCEPT, DROP or REJECT)")),
    }
}

/// What becomes of our record of the outgoing policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// Leave it as it is (or absent).
    Keep,
    /// Write it with this value (lower-cased).
    Write(String),
    Remove,
}

/// What converging the outgoing default policy takes. See [`plan_output`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputPlan {
    /// The value (lower-cased) to set, `None` to leave the policy alone.
    pub set: Option<String>,
    /// What to do with the record.
    pub record: Record,
    /// The outgoing policy afterwards.
    pub after: String,
}

/// Plan the outgoing default policy. `current` is `DEFAULT_OUTPUT_POLICY` (lower-cased),
/// `recorded` what our record holds (`None`: no record).
///
/// * Restricted egress: the policy must be `reject`. If it is not, it is set, and the value it
///   had is recorded, unless a record exists already (the policy the operator had before we
///   first restricted egress stays the one to put back).
/// * Open egress: with a record, the recorded policy is put back if the policy is still
///   `reject`, and the record is removed; if the operator changed the policy since, it is left
///   as it is (and the record removed). Without a record it is never changed: we never
///   restricted it (an operator's own `reject` stays).
pub fn plan_output(restricted: bool, current: &str, recorded: Option<&str>) -> Result<OutputPlan, String> {
    if restricted {
        if current == RESTRICTED_OUTPUT {
            return Ok(OutputPlan { set: None, record: Record::Keep, after: current.into() });
        }
        let record = match recorded {
            Some(_) => Record::Keep,
            None if policy_word(current).is_none() => {
                return Err(format!(
                    "{OUTPUT_POLICY_KEY} is '{current}', not a policy ufw knows (ACCEPT, DROP or REJECT): \
                     set it with `ufw default allow|deny|reject outgoing` first"
                ))
            }
            None => Record::Write(current.into()),
        };
        return Ok(OutputPlan { set: Some(RESTRICTED_OUTPUT.into()), record, after: RESTRICTED_OUTPUT.into() });
    }
    let Some(recorded) = recorded else {
        return Ok(OutputPlan { set: None, record: Record::Keep, after: current.into() });
    };
    if current != RESTRICTED_OUTPUT || recorded == current {
        return Ok(OutputPlan { set: None, record: Record::Remove, after: current.into() });
    }
    if policy_word(recorded).is_none() {
        return Err(format!(
            "the recorded outgoing policy '{recorded}' is not one ufw can set (allow, deny or reject)"
        ));
    }
    Ok(OutputPlan { set: Some(recorded.into()), record: Record::Remove, after: recorded.into() })
}

/// ufw's settings files (`/etc/default/ufw`, `/etc/ufw/ufw.conf`) as its `_get_defaults` reads
/// them: lines matching `^\w+="?\w+"?`, key and value lower-cased, quotes stripped; a later file
/// overrides an earlier one.
pub fn read_settings(texts: &[&str]) -> BTreeMap<String, String> {
    let word = |c: char| c.is_alphanumeric() || c == '_';
    let mut m = BTreeMap::new();
    for t in texts {
        for line in t.lines() {
            let key_len = line.find(|c: char| !word(c)).unwrap_or(line.len());
            let Some(rest) = line[key_len..].strip_prefix('=') else { continue };
            if key_len == 0 || !rest.trim_start_matches('"').starts_with(word) {
                continue;
            }
            let value = line.trim().split('=').nth(1).unwrap_or("").to_lowercase();
            m.insert(line[..key_len].to_lowercase(), value.trim_matches(|c| c == '"' || c == '\'').to_string());
        }
    }
    m
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::time::Instant;
    use vorfw_core::policy::{Accept, GUARD_ID};
    use vorfw_core::Matrix;

    fn fixture(dir: &str, f: &str) -> String {
        let p = format!("{}/tests/fixtures/{dir}/{f}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
    }

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn accept(p: &mut Policy, set: &str, fam: Family, proto: Proto, port: u16) {
        p.accepts.insert(Accept { set: set.into(), family: fam, protocol: proto, port }, Default::default());
    }

    /// The policy behind tests/fixtures/{owned,mixed,mixed2} (see generate.sh).
    pub(crate) fn fixture_policy() -> Policy {
        let mut p = Policy::default();
        p.sets.insert(("a-user".into(), Family::V4), vec![net("0.0.0.0/0")]);
        p.sets.insert(("a-user".into(), Family::V6), vec![net("::/0")]);
        p.sets.insert(("g-all".into(), Family::V4), vec![net("10.0.0.5/32"), net("10.1.0.0/16")]);
        p.sets.insert(("g-all".into(), Family::V6), vec![net("2001:db8::5/128"), net("fd00::/8")]);
        accept(&mut p, "a-user", Family::V4, Proto::Tcp, 8081);
        accept(&mut p, "a-user", Family::V6, Proto::Tcp, 8081);
        accept(&mut p, "g-all", Family::V4, Proto::Tcp, 8301);
        accept(&mut p, "g-all", Family::V4, Proto::Udp, 8301);
        accept(&mut p, "g-all", Family::V6, Proto::Tcp, 8302);
        p
    }

    fn of(rules: &[UfwRule], fam: Family) -> Vec<UfwRule> {
        rules.iter().filter(|r| r.family == fam).cloned().collect()
    }

    /// [`fixture_policy`] with the egress accepts behind the egress fixtures
    /// (the inbound accepts of [`fixture_policy`] plus the lockout guard, set `ctl`),
    /// tests/fixtures/{mixed-egress,mixed-restricted,restricted}.
    pub(crate) fn egress_policy(restricted: bool) -> Policy {
        let mut p = fixture_policy();
        p.sets.insert(("ctl".into(), Family::V4), vec![net("10.0.0.1/32")]);
        p.sets.insert(("ctl".into(), Family::V6), vec![net("2001:db8::1/128")]);
        for fam in [Family::V4, Family::V6] {
            let a = Accept { set: "ctl".into(), family: fam, protocol: Proto::Tcp, port: 22 };
            p.accepts.insert(a, [GUARD_ID.to_string()].into());
        }
        p.sets.insert(("dns".into(), Family::V4), vec![net("10.0.0.53/32")]);
        p.sets.insert(("entra".into(), Family::V4), vec![net("20.190.128.0/18"), net("40.126.0.0/18")]);
        p.sets.insert(("entra".into(), Family::V6), vec![net("2603:1006:2000::/48")]);
        p.sets.insert(("o-any".into(), Family::V4), vec![net("0.0.0.0/0")]);
        p.sets.insert(("o-any".into(), Family::V6), vec![net("::/0")]);
        for (set, fam, proto, port) in [
            ("o-any", Family::V6, Proto::Tcp, 8080),
            ("entra", Family::V4, Proto::Tcp, 443),
            ("dns", Family::V4, Proto::Udp, 53),
            ("o-any", Family::V4, Proto::Tcp, 8080),
            ("dns", Family::V4, Proto::Tcp, 53),
            ("entra", Family::V6, Proto::Tcp, 443),
        ] {
            let a = Accept { set: set.into(), family: fam, protocol: proto, port };
            p.egress.accepts.insert(a, Default::default());
        }
        p.set_egress_restricted(restricted);
        p
    }

    const DIRS: [&str; 10] = [
        "pristine",
        "operator",
        "owned",
        "mixed",
        "stale",
        "mixed2",
        "enabled",
        "mixed-egress",
        "mixed-restricted",
        "restricted",
    ];

    #[test]
    fn parse_render_roundtrip_is_byte_exact() {
        for dir in DIRS {
            for fam in [Family::V4, Family::V6] {
                let text = fixture(dir, file_name(fam));
                let f = RulesFile::parse(&text).unwrap();
                assert_eq!(f.render(), text, "{dir}/{}", file_name(fam));
                assert_eq!(f.has_end, dir != "pristine");
                for b in &f.blocks {
                    assert!(b.text.starts_with("\n### tuple ### ") && b.text.ends_with('\n'), "{b:?}");
                }
            }
        }
    }

    #[test]
    fn blocks_are_split_and_owned_ones_recognised() {
        let f = RulesFile::parse(&fixture("stale", "user.rules")).unwrap();
        let ops: Vec<&str> = f.operator().map(|b| b.tuple_line()).collect();
        assert_eq!(ops.len(), 6);
        assert_eq!(ops[0], "### tuple ### allow tcp 2222 0.0.0.0/0 any 0.0.0.0/0 in");
        // limit: one tuple, three iptables lines
        let limit = f.blocks.iter().find(|b| b.tuple_line().contains(" limit ")).unwrap();
        assert_eq!(limit.text.lines().count(), 5);
        // the operator's commented deny is not ours
        let deny = f.blocks.iter().find(|b| b.tuple_line().contains(" deny ")).unwrap();
        assert_eq!(deny.comment.as_deref(), Some("operator deny"));
        assert!(!deny.is_owned());
        let owned: Vec<&str> = f.owned().map(|b| b.comment.as_deref().unwrap()).collect();
        assert_eq!(owned, ["vorfw:a-user", "vorfw:g-all", "vorfw:g-all", "vorfw:g-all", "vorfw:g-all", "vorfw:g-old"]);
        assert!(f.tail.starts_with("\n### END RULES ###\n"));
    }

    #[test]
    fn generated_blocks_are_what_ufw_writes() {
        // owned/ was written by ufw's CLI from the pristine files; we write the same bytes,
        // END RULES marker aside (ufw rewrites the whole file, we only insert our blocks).
        let want = desired(&fixture_policy());
        for fam in [Family::V4, Family::V6] {
            let ufw = RulesFile::parse(&fixture("owned", file_name(fam))).unwrap();
            let ours: String = of(&want, fam).iter().map(UfwRule::block).collect();
            let theirs: String = ufw.blocks.iter().map(|b| b.text.as_str()).collect();
            assert_eq!(ours, theirs, "{}", file_name(fam));
        }
        let r = &want[1];
        assert_eq!(
            r.tuple_line(),
            "### tuple ### allow tcp 8301 0.0.0.0/0 any 10.0.0.5 in comment=766f7266773a672d616c6c"
        );
        assert_eq!(r.iptables_line(), "-A ufw-user-input -p tcp --dport 8301 -s 10.0.0.5 -j ACCEPT");
    }

    #[test]
    fn converging_operator_rules_gives_what_ufw_writes() {
        // From the operator's files, the result is ufw's own file for "operator rules, then
        // ours": every byte, header and trailer included.
        let want = desired(&fixture_policy());
        for fam in [Family::V4, Family::V6] {
            let p = plan_file(fam, &fixture("operator", file_name(fam)), &of(&want, fam)).unwrap();
            assert_eq!(p.content, fixture("mixed", file_name(fam)), "{}", file_name(fam));
            assert!(p.changed);
            assert_eq!(p.removed, 0);
            assert_eq!(p.added, of(&want, fam).len());
            assert_eq!(p.kept, 5);
        }
    }

    #[test]
    fn converged_files_and_ufws_rewrite_need_nothing() {
        let want = desired(&fixture_policy());
        for dir in ["mixed", "enabled", "mixed2", "owned"] {
            for fam in [Family::V4, Family::V6] {
                let cur = fixture(dir, file_name(fam));
                let p = plan_file(fam, &cur, &of(&want, fam)).unwrap();
                assert!(!p.changed, "{dir}/{}", file_name(fam));
                assert_eq!(p.content, cur);
                assert_eq!((p.added, p.removed), (0, 0));
                assert_eq!(p.before, p.after);
                assert_eq!(p.describe(), None);
            }
        }
    }

    #[test]
    fn stale_owned_rules_are_purged_and_operator_rules_kept_in_place() {
        let want = desired(&fixture_policy());
        let p = plan_file(Family::V4, &fixture("stale", "user.rules"), &of(&want, Family::V4)).unwrap();
        // the operator's 7777 rule (added after ours) stays after the other operator rules,
        // ours move to the end, the stale g-old rule is gone
        assert_eq!(p.content, fixture("mixed2", "user.rules"));
        assert_eq!((p.added, p.removed, p.kept), (0, 1, 6));
        assert!(p.before.contains("allow 9000/tcp from 10.9.9.9 (vorfw:g-old)\n"));
        assert!(!p.after.contains("g-old"));
        assert_eq!(p.describe().unwrap(), "user.rules: add 0 and remove 1 owned rules, keep 6 operator rules");
        // user6.rules (no stale rule there) only needs the reorder: `ufw allow 7777/tcp` added
        // its v6 rule after ours too
        let p = plan_file(Family::V6, &fixture("stale", "user6.rules"), &of(&want, Family::V6)).unwrap();
        assert_eq!(p.content, fixture("mixed2", "user6.rules"));
        assert_eq!((p.added, p.removed, p.kept, p.changed), (0, 0, 6, true));
        assert!(p.describe().unwrap().starts_with("user6.rules: move the owned rules after the 6 operator rules"));
    }

    #[test]
    fn operator_rule_after_ours_is_a_reorder() {
        let want = desired(&fixture_policy());
        let mixed = fixture("mixed", "user.rules");
        let extra = "\n### tuple ### allow tcp 7777 0.0.0.0/0 any 0.0.0.0/0 in\n-A ufw-user-input -p tcp --dport 7777 -j ACCEPT\n";
        let appended = mixed.replacen("\n### END RULES ###", &format!("{extra}\n### END RULES ###"), 1);
        let p = plan_file(Family::V4, &appended, &of(&want, Family::V4)).unwrap();
        assert!(p.changed);
        assert_eq!((p.added, p.removed), (0, 0));
        assert!(p.describe().unwrap().contains("move the owned rules after the 6 operator rules"));
        let f = RulesFile::parse(&p.content).unwrap();
        assert!(f.blocks[5].text == extra && f.blocks[6].is_owned());
    }

    #[test]
    fn a_hand_edited_owned_rule_is_replaced() {
        let want = desired(&fixture_policy());
        let edited =
            fixture("mixed", "user.rules").replace("-p tcp --dport 8301 -s 10.0.0.5 -j", "-p tcp --dport 8301 -j");
        let p = plan_file(Family::V4, &edited, &of(&want, Family::V4)).unwrap();
        assert_eq!((p.added, p.removed, p.changed), (1, 1, true));
        assert_eq!(p.content, fixture("mixed", "user.rules"));
        // the words only show the tuple, which was not edited
        assert_eq!(p.before, p.after);
    }

    #[test]
    fn removing_everything_leaves_the_operator_file() {
        for fam in [Family::V4, Family::V6] {
            let p = plan_file(fam, &fixture("mixed", file_name(fam)), &[]).unwrap();
            let f = RulesFile::parse(&p.content).unwrap();
            assert_eq!(f.owned().count(), 0);
            assert_eq!(p.content, fixture("operator", file_name(fam)));
            assert_eq!(p.after, "");
        }
        // nothing wanted on the pristine file: not even the marker is added
        let pristine = fixture("pristine", "user.rules");
        assert!(!plan_file(Family::V4, &pristine, &[]).unwrap().changed);
    }

    #[test]
    fn pristine_file_gets_blocks_and_an_end_marker() {
        let want = desired(&fixture_policy());
        let text = fixture("pristine", "user.rules");
        let p = plan_file(Family::V4, &text, &of(&want, Family::V4)).unwrap();
        let f = RulesFile::parse(&p.content).unwrap();
        assert!(f.has_end);
        assert_eq!(f.owned().count(), 5);
        assert!(p.content.starts_with(&text[..text.find("### RULES ###\n").unwrap() + 14]));
        assert!(p.content.ends_with("\n### END RULES ###\n-A ufw-user-limit -m limit --limit 3/minute -j LOG --log-prefix \"[UFW LIMIT BLOCK] \"\n-A ufw-user-limit -j REJECT\n-A ufw-user-limit-accept -j ACCEPT\nCOMMIT\n"));
        // and the result is stable
        assert!(!plan_file(Family::V4, &p.content, &of(&want, Family::V4)).unwrap().changed);
    }

    #[test]
    fn hand_edited_tuples_without_end_marker_are_refused() {
        let text = "*filter\n### RULES ###\n\n### tuple ### allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 in\n-A ufw-user-input -p tcp --dport 22 -j ACCEPT\nCOMMIT\n";
        assert!(RulesFile::parse(text).unwrap_err().contains("END RULES"));
        assert!(RulesFile::parse("*filter\nCOMMIT\n").unwrap_err().contains("not a ufw rules file"));
    }

    #[test]
    fn any_sources_and_ipv6() {
        let want = desired(&fixture_policy());
        let any4 = &want[0];
        assert_eq!(
            any4.tuple_line(),
            "### tuple ### allow tcp 8081 0.0.0.0/0 any 0.0.0.0/0 in comment=766f7266773a612d75736572"
        );
        assert_eq!(any4.iptables_line(), "-A ufw-user-input -p tcp --dport 8081 -j ACCEPT");
        assert_eq!(any4.to_string(), "allow 8081/tcp from any (vorfw:a-user)");
        let v6: Vec<&UfwRule> = want.iter().filter(|r| r.family == Family::V6).collect();
        assert_eq!(
            v6[0].tuple_line(),
            "### tuple ### allow tcp 8081 ::/0 any ::/0 in comment=766f7266773a612d75736572"
        );
        assert_eq!(v6[0].iptables_line(), "-A ufw6-user-input -p tcp --dport 8081 -j ACCEPT");
        assert_eq!(v6[0].to_string(), "allow 8081/tcp from any (v6) (vorfw:a-user)");
        assert_eq!(v6[1].iptables_line(), "-A ufw6-user-input -p tcp --dport 8302 -s 2001:db8::5 -j ACCEPT");
        assert_eq!(v6[2].to_string(), "allow 8302/tcp from fd00::/8 (vorfw:g-all)");
        // ufw's (glibc's) address forms
        assert_eq!(ufw_address(&net("2001:0db8:0:0::1/128")), "2001:db8::1");
        assert_eq!(ufw_address(&net("::ffff:10.0.0.1/128")), "::ffff:10.0.0.1");
        assert_eq!(ufw_address(&net("::10.0.0.1/128")), "::10.0.0.1");
        assert_eq!(ufw_address(&net("::1/128")), "::1");
        assert_eq!(ufw_address(&net("10.1.2.3/16")), "10.1.0.0/16");
        assert_eq!(ufw_address(&net("10.1.2.3/32")), "10.1.2.3");
    }

    #[test]
    fn rule_words_match_the_words_for_its_tuple() {
        for r in desired(&fixture_policy()) {
            assert_eq!(r.to_string(), describe_tuple(&r.tuple_line(), r.family));
        }
        let op = "### tuple ### deny any any 0.0.0.0/0 any 10.0.0.99 in comment=6f70657261746f722064656e79";
        assert_eq!(describe_tuple(op, Family::V4), "deny any from 10.0.0.99 (operator deny)");
        let odd = "### tuple ### allow tcp 22 10.0.0.1 53 ::/0 out";
        assert_eq!(describe_tuple(odd, Family::V6), "allow out 22/tcp to 10.0.0.1 sport 53");
        let odd = "### tuple ### allow tcp 22 ::/0 any fd00::1 out";
        assert_eq!(describe_tuple(odd, Family::V6), "allow out 22/tcp to any (v6) from fd00::1");
        let odd = "### tuple ### allow tcp 22 10.0.0.1 any 0.0.0.0/0 in_eth0";
        assert_eq!(describe_tuple(odd, Family::V4), "allow 22/tcp from any to 10.0.0.1 in_eth0");
    }

    #[test]
    fn outbound_blocks_are_what_ufw_writes() {
        // mixed-egress/ and mixed-restricted/ were written by ufw's CLI: the operator's rules,
        // then `ufw allow proto ... comment 'vorfw:...'` for the inbound accepts,
        // `ufw allow out proto tcp to 20.190.128.0/18 port 443 comment 'vorfw:entra'` etc. for
        // the outbound ones and (restricted) `ufw allow out proto tcp from any port 22 to
        // 10.0.0.1 comment 'vorfw:ctl'` for the guard's replies, in converge's order. From
        // operator/, converge writes every byte.
        for (restricted, dir) in [(false, "mixed-egress"), (true, "mixed-restricted")] {
            let want = desired(&egress_policy(restricted));
            for fam in [Family::V4, Family::V6] {
                let p = plan_file(fam, &fixture("operator", file_name(fam)), &of(&want, fam)).unwrap();
                assert_eq!(p.content, fixture(dir, file_name(fam)), "{dir}/{}", file_name(fam));
                assert_eq!((p.added, p.removed, p.kept), (of(&want, fam).len(), 0, 5));
            }
        }
        let want = desired(&egress_policy(true));
        let out: Vec<&UfwRule> = want.iter().filter(|r| r.direction == Direction::Out).collect();
        let entra = out.iter().find(|r| r.comment == "vorfw:entra").unwrap();
        assert_eq!(
            entra.tuple_line(),
            "### tuple ### allow tcp 443 20.190.128.0/18 any 0.0.0.0/0 out comment=766f7266773a656e747261"
        );
        assert_eq!(entra.iptables_line(), "-A ufw-user-output -p tcp -d 20.190.128.0/18 --dport 443 -j ACCEPT");
        assert_eq!(entra.to_string(), "allow out 443/tcp to 20.190.128.0/18 (vorfw:entra)");
        let any4 = out.iter().find(|r| r.family == Family::V4 && r.comment == "vorfw:o-any").unwrap();
        assert_eq!(
            any4.tuple_line(),
            "### tuple ### allow tcp 8080 0.0.0.0/0 any 0.0.0.0/0 out comment=766f7266773a6f2d616e79"
        );
        assert_eq!(any4.iptables_line(), "-A ufw-user-output -p tcp --dport 8080 -j ACCEPT");
        assert_eq!(any4.to_string(), "allow out 8080/tcp to any (vorfw:o-any)");
        let v6: Vec<&&UfwRule> = out.iter().filter(|r| r.family == Family::V6).collect();
        assert_eq!(
            v6[0].tuple_line(),
            "### tuple ### allow tcp 443 2603:1006:2000::/48 any ::/0 out comment=766f7266773a656e747261"
        );
        assert_eq!(v6[0].iptables_line(), "-A ufw6-user-output -p tcp -d 2603:1006:2000::/48 --dport 443 -j ACCEPT");
        assert_eq!(v6[1].iptables_line(), "-A ufw6-user-output -p tcp --dport 8080 -j ACCEPT");
        assert_eq!(v6[1].to_string(), "allow out 8080/tcp to any (v6) (vorfw:o-any)");
        let replies: Vec<&UfwRule> = want.iter().filter(|r| r.direction == Direction::Reply).collect();
        assert_eq!(replies.len(), 2);
        assert_eq!(
            replies[0].tuple_line(),
            "### tuple ### allow tcp any 10.0.0.1 22 0.0.0.0/0 out comment=766f7266773a63746c"
        );
        assert_eq!(replies[0].iptables_line(), "-A ufw-user-output -p tcp -d 10.0.0.1 --sport 22 -j ACCEPT");
        assert_eq!(replies[0].to_string(), "allow out from port 22/tcp to 10.0.0.1 (vorfw:ctl)");
        assert_eq!(replies[1].iptables_line(), "-A ufw6-user-output -p tcp -d 2001:db8::1 --sport 22 -j ACCEPT");
        for r in &want {
            assert_eq!(r.to_string(), describe_tuple(&r.tuple_line(), r.family));
        }
        // a reply rule to everyone (management sources 0.0.0.0/0)
        let r = UfwRule { peer: net("0.0.0.0/0"), ..replies[0].clone() };
        assert_eq!(r.tuple_line(), "### tuple ### allow tcp any 0.0.0.0/0 22 0.0.0.0/0 out comment=766f7266773a63746c");
        assert_eq!(r.iptables_line(), "-A ufw-user-output -p tcp --sport 22 -j ACCEPT");
        assert_eq!(r.to_string(), describe_tuple(&r.tuple_line(), r.family));
    }

    #[test]
    fn outbound_rules_follow_the_inbound_ones_in_policy_order() {
        let open = desired(&egress_policy(false));
        let restricted = desired(&egress_policy(true));
        let v4_in = "allow 8081/tcp from any (vorfw:a-user)\n\
                     allow 22/tcp from 10.0.0.1 (vorfw:ctl)\n\
                     allow 8301/tcp from 10.0.0.5 (vorfw:g-all)\n\
                     allow 8301/tcp from 10.1.0.0/16 (vorfw:g-all)\n\
                     allow 8301/udp from 10.0.0.5 (vorfw:g-all)\n\
                     allow 8301/udp from 10.1.0.0/16 (vorfw:g-all)\n";
        let v4_out = "allow out 53/tcp to 10.0.0.53 (vorfw:dns)\n\
                      allow out 53/udp to 10.0.0.53 (vorfw:dns)\n\
                      allow out 443/tcp to 20.190.128.0/18 (vorfw:entra)\n\
                      allow out 443/tcp to 40.126.0.0/18 (vorfw:entra)\n\
                      allow out 8080/tcp to any (vorfw:o-any)\n";
        let v6_in = "allow 8081/tcp from any (v6) (vorfw:a-user)\n\
                     allow 22/tcp from 2001:db8::1 (vorfw:ctl)\n\
                     allow 8302/tcp from 2001:db8::5 (vorfw:g-all)\n\
                     allow 8302/tcp from fd00::/8 (vorfw:g-all)\n";
        let v6_out = "allow out 443/tcp to 2603:1006:2000::/48 (vorfw:entra)\n\
                      allow out 8080/tcp to any (v6) (vorfw:o-any)\n";
        assert_eq!(render(&open), format!("{v4_in}{v4_out}{v6_in}{v6_out}"));
        assert_eq!(
            render(&restricted),
            format!(
                "{v4_in}{v4_out}allow out from port 22/tcp to 10.0.0.1 (vorfw:ctl)\n\
                 {v6_in}{v6_out}allow out from port 22/tcp to 2001:db8::1 (vorfw:ctl)\n"
            )
        );
        // ufw read its files back as written: the --diff rendering of the converged files is
        // the same text, and nothing is to be done
        for (want, dir) in [(&open, "mixed-egress"), (&restricted, "mixed-restricted"), (&restricted, "restricted")] {
            for fam in [Family::V4, Family::V6] {
                let p = plan_file(fam, &fixture(dir, file_name(fam)), &of(want, fam)).unwrap();
                assert!(!p.changed, "{dir}/{}", file_name(fam));
                assert_eq!(p.before, p.after);
                assert_eq!(p.after, render(&of(want, fam)));
            }
        }
        // open → restricted adds the replies only
        let p = plan_file(Family::V4, &fixture("mixed-egress", "user.rules"), &of(&restricted, Family::V4)).unwrap();
        assert_eq!((p.added, p.removed), (1, 0));
    }

    #[test]
    fn replies_only_for_management_accepts() {
        let mut p = Policy::default();
        p.sets.insert(("mgmt".into(), Family::V4), vec![net("10.0.0.0/24")]);
        p.sets.insert(("g".into(), Family::V4), vec![net("10.0.1.0/24")]);
        let mgmt = Matrix::embedded().management.clone();
        let a = Accept { set: "mgmt".into(), family: Family::V4, protocol: Proto::Tcp, port: mgmt.port };
        p.accepts.insert(a, [mgmt.id.clone()].into());
        let a = Accept { set: "g".into(), family: Family::V4, protocol: Proto::Tcp, port: mgmt.port };
        p.accepts.insert(a, ["some-rule".to_string()].into());
        assert!(desired(&p).iter().all(|r| r.direction == Direction::In));
        p.set_egress_restricted(true);
        let replies: Vec<String> =
            desired(&p).iter().filter(|r| r.direction == Direction::Reply).map(|r| r.to_string()).collect();
        assert_eq!(replies, [format!("allow out from port {}/tcp to 10.0.0.0/24 (vorfw:mgmt)", mgmt.port)]);
    }

    #[test]
    fn the_same_peer_in_and_out_makes_two_rules() {
        let mut p = Policy::default();
        p.sets.insert(("g".into(), Family::V4), vec![net("10.0.0.1/32")]);
        p.sets.insert(("o".into(), Family::V4), vec![net("10.0.0.1/32"), net("10.0.0.2/32")]);
        p.sets.insert(("o2".into(), Family::V4), vec![net("10.0.0.2/32")]);
        accept(&mut p, "g", Family::V4, Proto::Tcp, 22);
        for set in ["o", "o2"] {
            let a = Accept { set: set.into(), family: Family::V4, protocol: Proto::Tcp, port: 22 };
            p.egress.accepts.insert(a, Default::default());
        }
        assert_eq!(
            render(&desired(&p)),
            "allow 22/tcp from 10.0.0.1 (vorfw:g)\nallow out 22/tcp to 10.0.0.1 (vorfw:o)\nallow out 22/tcp to 10.0.0.2 (vorfw:o)\n"
        );
    }

    #[test]
    fn open_egress_removes_outbound_rules_only_when_the_policy_drops_them() {
        // from mixed-egress/, the policy without the guard and egress accepts leaves mixed/
        let want = desired(&fixture_policy());
        for fam in [Family::V4, Family::V6] {
            let p = plan_file(fam, &fixture("mixed-egress", file_name(fam)), &of(&want, fam)).unwrap();
            assert_eq!(p.content, fixture("mixed", file_name(fam)));
            let gone = if fam == Family::V4 { 1 + 5 } else { 1 + 2 };
            assert_eq!((p.added, p.removed), (0, gone));
            assert_eq!(
                p.describe().unwrap(),
                format!("{}: add 0 and remove {gone} owned rules, keep 5 operator rules", file_name(fam))
            );
            assert!(p.before.contains("allow out 8080/tcp to any"));
            assert!(!p.after.contains(" out "));
        }
    }

    #[test]
    fn ufw_default_reject_outgoing_changes_one_line() {
        // restricted/default-ufw is pristine/default-ufw after `ufw default reject outgoing`
        let (before, after) = (fixture("pristine", "default-ufw"), fixture("restricted", "default-ufw"));
        let changed: Vec<(&str, &str)> = before.lines().zip(after.lines()).filter(|(a, b)| a != b).collect();
        assert_eq!(changed, [("DEFAULT_OUTPUT_POLICY=\"ACCEPT\"", "DEFAULT_OUTPUT_POLICY=\"REJECT\"")]);
        assert_eq!(before.lines().count(), after.lines().count());
        assert_eq!(read_settings(&[&before])["default_output_policy"], "accept");
        assert_eq!(read_settings(&[&after])["default_output_policy"], RESTRICTED_OUTPUT);
        assert!(fixture("restricted", "status-verbose.txt").contains("Default: deny (incoming), reject (outgoing)"));
    }

    #[test]
    fn outgoing_policy_is_recorded_and_put_back() {
        let plan = |r, c, rec| plan_output(r, c, rec).unwrap();
        let out = |set: Option<&str>, record: Record, after: &str| OutputPlan {
            set: set.map(String::from),
            record,
            after: after.into(),
        };
        // restricting: set reject, record what it was (once)
        assert_eq!(plan(true, "accept", None), out(Some("reject"), Record::Write("accept".into()), "reject"));
        assert_eq!(plan(true, "drop", None), out(Some("reject"), Record::Write("drop".into()), "reject"));
        assert_eq!(plan(true, "accept", Some("drop")), out(Some("reject"), Record::Keep, "reject"));
        assert_eq!(plan(true, "reject", Some("accept")), out(None, Record::Keep, "reject"));
        // the operator's own reject: nothing to record, nothing to put back later
        assert_eq!(plan(true, "reject", None), out(None, Record::Keep, "reject"));
        assert_eq!(plan(false, "reject", None), out(None, Record::Keep, "reject"));
        // open again: put back what was recorded
        assert_eq!(plan(false, "reject", Some("accept")), out(Some("accept"), Record::Remove, "accept"));
        assert_eq!(plan(false, "reject", Some("drop")), out(Some("drop"), Record::Remove, "drop"));
        // ... unless the operator changed it since: leave it, forget the record
        assert_eq!(plan(false, "drop", Some("accept")), out(None, Record::Remove, "drop"));
        assert_eq!(plan(false, "reject", Some("reject")), out(None, Record::Remove, "reject"));
        // never changed when never restricted
        assert_eq!(plan(false, "accept", None), out(None, Record::Keep, "accept"));
        assert_eq!(plan(false, "drop", None), out(None, Record::Keep, "drop"));
        // values ufw's CLI cannot set
        assert!(plan_output(true, "", None).unwrap_err().contains("DEFAULT_OUTPUT_POLICY is ''"));
        assert!(plan_output(false, "reject", Some("bogus")).unwrap_err().contains("'bogus'"));
        assert_eq!(plan(true, "bogus", Some("accept")), out(Some("reject"), Record::Keep, "reject"));
    }

    #[test]
    fn the_record_reads_back() {
        let text = output_record("accept");
        assert!(text.ends_with("\nDEFAULT_OUTPUT_POLICY=\"ACCEPT\"\n"), "{text}");
        assert!(text.lines().filter(|l| !l.starts_with('#')).count() == 1);
        assert_eq!(read_output_record(&text).unwrap(), "accept");
        assert_eq!(read_output_record("DEFAULT_OUTPUT_POLICY=DROP\n").unwrap(), "drop");
        assert!(read_output_record("# nothing\n").unwrap_err().contains("no DEFAULT_OUTPUT_POLICY"));
        assert!(read_output_record("DEFAULT_OUTPUT_POLICY=\"BOGUS\"\n").unwrap_err().contains("'bogus' is not one"));
        assert_eq!(policy_word("accept"), Some("allow"));
        assert_eq!(policy_word("drop"), Some("deny"));
        assert_eq!(policy_word("reject"), Some("reject"));
        assert_eq!(policy_word("accept_no_track"), None);
    }

    #[test]
    fn duplicates_across_sets_become_one_rule() {
        let mut p = Policy::default();
        p.sets.insert(("a".into(), Family::V4), vec![net("10.0.0.1/32")]);
        p.sets.insert(("b".into(), Family::V4), vec![net("10.0.0.1/32"), net("10.0.0.2/32")]);
        accept(&mut p, "a", Family::V4, Proto::Tcp, 22);
        accept(&mut p, "b", Family::V4, Proto::Tcp, 22);
        let d = desired(&p);
        assert_eq!(render(&d), "allow 22/tcp from 10.0.0.1 (vorfw:a)\nallow 22/tcp from 10.0.0.2 (vorfw:b)\n");
    }

    #[test]
    fn comments_are_hex_encoded_like_ufw() {
        assert_eq!(hex_encode("vorfw:g-all"), "766f7266773a672d616c6c");
        assert_eq!(hex_decode("766f7266773a672d616c6c").as_deref(), Some("vorfw:g-all"));
        assert_eq!(hex_decode("766f7266773a672d616c6").as_deref(), Some("vorfw:g-al")); // odd: dropped
        assert_eq!(hex_decode("zz"), None);
        assert_eq!(hex_encode("é x"), "c3a92078");
        assert_eq!(hex_decode("c3a92078").as_deref(), Some("é x"));
        // a comment that merely contains the prefix is not ours
        let b = Block::new(format!(
            "\n### tuple ### allow any 22 0.0.0.0/0 any 0.0.0.0/0 in comment={}\n",
            hex_encode("x vorfw:y")
        ));
        assert!(!b.is_owned());
    }

    #[test]
    fn settings_are_read_like_ufw() {
        let s = read_settings(&[
            "# c\nIPV6=yes\nDEFAULT_INPUT_POLICY=\"DROP\"\n",
            "ENABLED=yes\nLOGLEVEL=low\n#ENABLED=no\n",
        ]);
        assert_eq!(s["enabled"], "yes");
        assert_eq!(s["default_input_policy"], "drop");
        assert_eq!(s["ipv6"], "yes");
        assert!(!s.contains_key("#enabled"));
        assert!(!read_settings(&[" ENABLED=yes\nENABLED=\"\"\n"]).contains_key("enabled"));
    }

    #[test]
    fn large_policy_is_fast() {
        // 500 sources × 3 ports, both families: plan from scratch, then re-plan the result.
        let mut p = Policy::default();
        let v4: Vec<IpNet> =
            (0..500).map(|i| net(&format!("10.{}.{}.{}/32", i / 65536, (i / 256) % 256, i % 256))).collect();
        let v6: Vec<IpNet> = (0..500).map(|i| net(&format!("fd00::{i:x}/128"))).collect();
        p.sets.insert(("g-big".into(), Family::V4), v4);
        p.sets.insert(("g-big".into(), Family::V6), v6);
        for port in [8300, 8301, 8302] {
            accept(&mut p, "g-big", Family::V4, Proto::Tcp, port);
            accept(&mut p, "g-big", Family::V6, Proto::Tcp, port);
        }
        let (op4, op6) = (fixture("operator", "user.rules"), fixture("operator", "user6.rules"));
        let run = || {
            let t = Instant::now();
            let want = desired(&p);
            let first = plan_file(Family::V4, &op4, &of(&want, Family::V4)).unwrap();
            let again = plan_file(Family::V4, &first.content, &of(&want, Family::V4)).unwrap();
            let first6 = plan_file(Family::V6, &op6, &of(&want, Family::V6)).unwrap();
            let again6 = plan_file(Family::V6, &first6.content, &of(&want, Family::V6)).unwrap();
            (t.elapsed(), want, first, again, first6, again6)
        };
        // The best of three: this machine may be busy with other work.
        let (took, want, first, again, first6, again6) = (0..3).map(|_| run()).min_by_key(|r| r.0).unwrap();
        assert_eq!(want.len(), 3000);
        assert_eq!((first.added, again.added, first6.added), (1500, 0, 1500));
        assert!(!again.changed && !again6.changed);
        // A gross bound only (a quadratic plan takes seconds here); on a loaded 2-core CI machine
        // a debug build needs well over 100 ms. bench/scale.py measures properly.
        let limit = if cfg!(debug_assertions) { 1500 } else { 200 };
        assert!(took.as_millis() < limit, "took {took:?}");
        eprintln!("3000 rules: desired + 4 plans in {took:?}");
    }
}

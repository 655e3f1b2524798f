//! ufw's rules files parsed into the operator's blocks and ours, and the new contents.

use super::rules::*;
use vorfw_core::policy::Family;

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

pub(super) fn tuple_of(text: &str) -> &str {
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

pub(super) fn is_blank(l: &str) -> bool {
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

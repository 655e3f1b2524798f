//! Renderings of a set of plans: flows (the stable line contract), JSON (what the modules
//! consume), Markdown (for sign-off), CSV and Mermaid.

use crate::plan::{HostPlan, NetSet, Origin, Plans, Rule};
use ipnet::IpNet;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write;
use std::sync::Arc;

/// One allowed flow: the five contract columns plus merged purposes and rule ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flow {
    pub line: String,
    pub host: String,
    pub direction: &'static str,
    pub protocol: &'static str,
    pub port: u16,
    pub peer: String,
    pub purposes: Vec<String>,
    pub ids: Vec<String>,
}

/// One host's flows, unique by (direction, protocol, port, peer), sorted like `LC_ALL=C sort`.
pub fn host_flows(h: &HostPlan) -> Vec<Flow> {
    type Key = (&'static str, &'static str, u16, String);
    let mut merged: HashMap<Key, (BTreeSet<String>, BTreeSet<String>)> = HashMap::new();
    for (dir, rules) in [("in", &h.inbound), ("out", &h.outbound)] {
        for r in rules.iter() {
            for p in h.peers(r) {
                let e = merged.entry((dir, r.protocol.as_str(), r.port, p.to_string())).or_default();
                e.0.insert(r.purpose.to_string());
                e.1.insert(r.id.to_string());
            }
        }
    }
    let host = &h.name;
    let mut out: Vec<Flow> = merged
        .into_iter()
        .map(|((direction, protocol, port, peer), (purposes, ids))| {
            let purposes: Vec<String> = purposes.into_iter().collect();
            let ids: Vec<String> = ids.into_iter().collect();
            let line =
                format!("{host}\t{direction}\t{protocol}\t{port}\t{peer}\t{}\t{}", purposes.join("; "), ids.join(","));
            Flow { line, host: host.clone(), direction, protocol, port, peer, purposes, ids }
        })
        .collect();
    out.sort_by(|a, b| a.line.as_bytes().cmp(b.line.as_bytes()));
    out
}

/// The hosts in the order their flow lines sort (a line starts with the name and a tab).
fn line_order(plans: &Plans) -> Vec<&HostPlan> {
    let mut hosts: Vec<&HostPlan> = plans.hosts.iter().collect();
    hosts.sort_by_cached_key(|h| [h.name.as_bytes(), b"\t"].concat());
    hosts
}

/// All flows, unique by (host, direction, protocol, port, peer), sorted like `LC_ALL=C sort`.
pub fn flows(plans: &Plans) -> Vec<Flow> {
    line_order(plans).into_iter().flat_map(host_flows).collect()
}

/// Peer sets' members as text, computed once per set (equal sets are one shared `Arc`, so a
/// fleet's hosts share a handful of sets).
#[derive(Default)]
struct SetTexts(HashMap<*const Vec<IpNet>, Vec<(String, IpNet)>>);

impl SetTexts {
    /// The set's members as `text(net)`, sorted by text if `sorted`, else in set order.
    fn get(&mut self, set: &NetSet, sorted: bool, text: impl Fn(&IpNet) -> String) -> &[(String, IpNet)] {
        self.0.entry(Arc::as_ptr(set)).or_insert_with(|| {
            let mut v: Vec<(String, IpNet)> = set.iter().map(|n| (text(n), *n)).collect();
            if sorted {
                v.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            }
            v
        })
    }
}

/// `line` := a flow line: the first columns, the peer, the purposes and the rule ids.
fn flow_line<'a>(
    line: &mut Vec<u8>,
    prefix: &str,
    peer: &str,
    purposes: impl IntoIterator<Item = &'a str>,
    ids: impl IntoIterator<Item = &'a str>,
) {
    line.clear();
    line.extend_from_slice(prefix.as_bytes());
    line.extend_from_slice(peer.as_bytes());
    fn column<'a>(line: &mut Vec<u8>, sep: &str, items: impl IntoIterator<Item = &'a str>) {
        line.push(b'\t');
        for (i, item) in items.into_iter().enumerate() {
            if i > 0 {
                line.extend_from_slice(sep.as_bytes());
            }
            line.extend_from_slice(item.as_bytes());
        }
    }
    column(line, "; ", purposes);
    column(line, ",", ids);
    line.push(b'\n');
}

/// The flow lines, written host by host: memory holds one host's rules at a time (and each
/// shared peer set's text once). The same lines as [`flows`], without building them.
pub fn write_flows(plans: &Plans, w: &mut impl std::io::Write) -> std::io::Result<()> {
    let mut texts = SetTexts::default();
    let mut line: Vec<u8> = Vec::with_capacity(256);
    for h in line_order(plans) {
        // Rules by the line's first columns: lines sort by them first, since none holds a tab.
        let mut groups: BTreeMap<String, Vec<&Rule>> = BTreeMap::new();
        for (dir, rules) in [("in", &h.inbound), ("out", &h.outbound)] {
            for r in rules.iter() {
                let prefix = format!("{}\t{dir}\t{}\t{}\t", h.name, r.protocol.as_str(), r.port);
                groups.entry(prefix).or_default().push(r);
            }
        }
        for (prefix, rules) in &groups {
            if let [r] = rules.as_slice() {
                for (text, net) in texts.get(&r.peers, true, IpNet::to_string) {
                    if !h.own.contains(net) {
                        flow_line(&mut line, prefix, text, [&*r.purpose], [&*r.id]);
                        w.write_all(&line)?;
                    }
                }
                continue;
            }
            // Several rules on one port: a peer's line names every purpose and rule id.
            for r in rules {
                texts.get(&r.peers, true, IpNet::to_string);
            }
            let mut merged: Vec<(&str, usize)> = Vec::new();
            for (i, r) in rules.iter().enumerate() {
                let set = &texts.0[&Arc::as_ptr(&r.peers)];
                merged.extend(set.iter().filter(|(_, n)| !h.own.contains(n)).map(|(t, _)| (t.as_str(), i)));
            }
            merged.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()).then(a.1.cmp(&b.1)));
            for run in merged.chunk_by(|a, b| a.0 == b.0) {
                let purposes: BTreeSet<&str> = run.iter().map(|&(_, i)| &*rules[i].purpose).collect();
                let ids: BTreeSet<&str> = run.iter().map(|&(_, i)| &*rules[i].id).collect();
                flow_line(&mut line, prefix, run[0].0, purposes, ids);
                w.write_all(&line)?;
            }
        }
    }
    Ok(())
}

pub fn flows_text(plans: &Plans) -> String {
    let mut v = Vec::new();
    write_flows(plans, &mut v).expect("writing to memory");
    String::from_utf8(v).expect("flow lines are UTF-8")
}

/// The plan as the modules consume it: every peer set once, one entry per host.
pub fn json(plans: &Plans) -> Value {
    serde_json::to_value(crate::request::Fleet::from_plans(plans, &plans.hosts)).expect("plain data serializes")
}

/// [`json`] as text, one line per set and per host entry: `grep` and `diff` find a host's
/// entry, and the file stays compact (the same JSON value as [`json`]).
pub fn json_text(plans: &Plans) -> String {
    fn line<T: serde::Serialize + ?Sized>(v: &T) -> String {
        serde_json::to_string(v).expect("plain data serializes")
    }
    fn entries<V: serde::Serialize>(m: &BTreeMap<String, V>) -> String {
        let body: Vec<String> = m.iter().map(|(k, v)| format!("\n  {}: {}", line(k), line(v))).collect();
        if body.is_empty() {
            "{}".into()
        } else {
            format!("{{{}\n}}", body.join(","))
        }
    }
    let fleet = crate::request::Fleet::from_plans(plans, &plans.hosts);
    format!(
        "{{\n\"format\": {},\n\"sets\": {},\n\"hosts\": {},\n\"warnings\": {}\n}}\n",
        line(&fleet.format),
        entries(&fleet.sets),
        entries(&fleet.hosts),
        line(&fleet.warnings)
    )
}

/// Address → host name, to show peers as people know them.
fn names(plans: &Plans) -> HashMap<String, &str> {
    let mut m = HashMap::new();
    for h in &plans.hosts {
        for n in &h.own {
            m.entry(n.to_string()).or_insert(h.name.as_str());
        }
    }
    m
}

/// `s` with some characters replaced: `f` gives a character's replacement, or `None` to keep it.
pub(crate) fn replace_chars(s: &str, f: impl Fn(char) -> Option<&'static str>) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match f(c) {
            Some(r) => out.push_str(r),
            None => out.push(c),
        }
    }
    out
}

/// Text as literal markdown: HTML's `& < >` as entities (no comment, tag or link can open),
/// and markdown's inline markup characters backslash-escaped (no emphasis, code or table cell).
fn md_escape(s: &str) -> String {
    replace_chars(s, |c| {
        Some(match c {
            '&' => "&amp;",
            '<' => "&lt;",
            '>' => "&gt;",
            '\\' => "\\\\",
            '`' => "\\`",
            '*' => "\\*",
            '_' => "\\_",
            '[' => "\\[",
            ']' => "\\]",
            '|' => "\\|",
            '~' => "\\~",
            _ => return None,
        })
    })
}

pub fn markdown(plans: &Plans) -> String {
    let mut v = Vec::new();
    write_markdown(plans, &mut v).expect("writing to memory");
    String::from_utf8(v).expect("markdown is UTF-8")
}

/// [`markdown`], written host by host: memory holds one host's section at a time (and each
/// shared peer set's text once).
pub fn write_markdown(plans: &Plans, w: &mut impl std::io::Write) -> std::io::Result<()> {
    let names = names(plans);
    // A peer as people know it, escaped (escaping is per character, so joined cells stay escaped).
    let peer_text = |p: &IpNet| {
        let p = p.to_string();
        md_escape(&match names.get(&p) {
            Some(n) => format!("{n} ({p})"),
            None => p,
        })
    };
    let mut texts = SetTexts::default();
    let mut s = String::new();
    let _ = writeln!(s, "# VOR Stream host firewall plan\n");
    let _ = writeln!(
        s,
        "Generated by vorstream.firewall from the VOR Stream port matrix. Every host admits loopback, \
         established traffic and exactly the inbound flows listed for it; everything else inbound is refused.\n"
    );
    for warning in &plans.warnings {
        let _ = writeln!(s, "> **Warning:** {}\n", md_escape(warning));
    }
    w.write_all(s.as_bytes())?;
    for h in &plans.hosts {
        s.clear();
        let _ = writeln!(s, "## {}\n", md_escape(&h.name));
        let addrs: Vec<String> = h.addresses.iter().map(|a| a.to_string()).collect();
        let _ = writeln!(s, "- Addresses: {}", addrs.join(", "));
        let groups = if h.groups.is_empty() { "(none)".into() } else { md_escape(&h.groups.join(", ")) };
        let _ = writeln!(s, "- Groups: {groups}");
        let _ = writeln!(s, "- Services: {}\n", h.services.join(", "));
        for (title, col, rules) in [("Inbound", "From", &h.inbound), ("Outbound", "To", &h.outbound)] {
            let _ = writeln!(s, "### {title}\n");
            // (port, rule id) → (protocols, the first such rule): rules differing only by protocol
            // share a row.
            let mut rows: BTreeMap<(u16, &str), (BTreeSet<&str>, &Rule)> = BTreeMap::new();
            for r in rules.iter() {
                rows.entry((r.port, &r.id)).or_insert_with(|| (BTreeSet::new(), r)).0.insert(r.protocol.as_str());
            }
            if rows.is_empty() {
                let _ = writeln!(s, "_None._\n");
                continue;
            }
            let _ = writeln!(s, "| Port | Protocol | {col} | Peers | Purpose | Rule |");
            let _ = writeln!(s, "|---:|---|---|---|---|---|");
            for ((port, id), (protos, r)) in rows {
                let protos: Vec<&str> = protos.into_iter().collect();
                let _ = write!(s, "| {port} | {} | {} | ", protos.join("+"), md_escape(&r.label));
                let peers = texts.get(&r.peers, false, peer_text).iter().filter(|(_, n)| !h.own.contains(n));
                for (i, (text, _)) in peers.enumerate() {
                    if i > 0 {
                        s.push_str(", ");
                    }
                    s.push_str(text);
                }
                let _ = writeln!(s, " | {} | `{id}` |", md_escape(&r.purpose));
            }
            s.push('\n');
        }
        w.write_all(s.as_bytes())?;
    }
    Ok(())
}

pub fn csv(plans: &Plans) -> Result<String, String> {
    let mut w = ::csv::Writer::from_writer(vec![]);
    let err = |e: ::csv::Error| e.to_string();
    w.write_record(["host", "direction", "protocol", "port", "peer", "purpose", "rule_ids"]).map_err(err)?;
    for f in flows(plans) {
        w.write_record([
            csv_cell(&f.host).as_ref(),
            f.direction,
            f.protocol,
            &f.port.to_string(),
            &f.peer,
            &csv_cell(&f.purposes.join("; ")),
            &f.ids.join(","),
        ])
        .map_err(err)?;
    }
    let bytes = w.into_inner().map_err(|e| e.to_string())?;
    String::from_utf8(bytes).map_err(|e| e.to_string())
}

/// A Mermaid node id for a name: letters and digits as they are, every other character as
/// `_` and its code in hex, so distinct names (`web-1`, `web_1`, `web.1`) stay distinct nodes.
fn mermaid_id(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else {
            let _ = write!(out, "_{:x}", u32::from(c));
        }
    }
    out
}

/// Text inside a quoted Mermaid label, with Mermaid's entity codes: a quote cannot end the
/// label and no markup can start.
fn mermaid_label(s: &str) -> String {
    replace_chars(s, |c| {
        Some(match c {
            '#' => "#35;",
            '"' => "#quot;",
            '<' => "#lt;",
            '>' => "#gt;",
            '&' => "#amp;",
            _ => return None,
        })
    })
}

/// A CSV cell a spreadsheet shows as text: one starting like a formula gets a leading `'`.
fn csv_cell(s: &str) -> std::borrow::Cow<'_, str> {
    match s.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{s}").into(),
        _ => s.into(),
    }
}

/// The deployment's flows as a Mermaid flowchart: one subgraph per service holding its hosts,
/// one edge per (source, target) carrying the ports, audiences as external nodes.
pub fn mermaid(plans: &Plans) -> String {
    let mut s = String::from("flowchart LR\n");
    let mut members: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for h in &plans.hosts {
        for svc in &h.services {
            members.entry(svc.as_str()).or_default().push(&h.name);
        }
    }
    for (svc, hosts) in &members {
        let sid = mermaid_id(svc);
        let _ = writeln!(s, "  subgraph {sid}[\"{}\"]", mermaid_label(svc));
        let _ = writeln!(s, "    direction TB");
        for h in hosts {
            let _ = writeln!(s, "    {sid}__{}[\"{}\"]", mermaid_id(h), mermaid_label(h));
        }
        let _ = writeln!(s, "  end");
    }
    let svc_of = |label: &str| label.split(" (").next().unwrap_or(label).to_string();
    let mut edges: BTreeMap<(String, String), BTreeSet<u16>> = BTreeMap::new();
    let mut audiences: BTreeSet<String> = BTreeSet::new();
    let mut mgmt_hosts: BTreeMap<String, &str> = BTreeMap::new();
    for h in &plans.hosts {
        for r in &h.inbound {
            let (from, to) = match &r.origin {
                Origin::Flow { source, target } => (mermaid_id(&svc_of(source)), mermaid_id(&svc_of(target))),
                Origin::Audience { audience, target } => {
                    audiences.insert(audience.to_string());
                    (format!("aud_{}", mermaid_id(audience)), mermaid_id(&svc_of(target)))
                }
                Origin::Management => {
                    audiences.insert("Management".into());
                    mgmt_hosts.insert(mermaid_id(&h.name), h.name.as_str());
                    ("aud_Management".into(), format!("host_{}", mermaid_id(&h.name)))
                }
                Origin::Extra { target } => {
                    audiences.insert("Extra sources".into());
                    ("aud_Extra_sources".into(), mermaid_id(&svc_of(target)))
                }
            };
            edges.entry((from, to)).or_default().insert(r.port);
        }
    }
    for a in &audiences {
        let _ = writeln!(s, "  aud_{}((\"{}\"))", mermaid_id(a), mermaid_label(a));
    }
    for ((from, to), ports) in &edges {
        let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
        let _ = writeln!(s, "  {from} -->|{}| {to}", ports.join(","));
    }
    for (id, name) in mgmt_hosts {
        let _ = writeln!(s, "  host_{id}[\"{}\"]", mermaid_label(name));
    }
    s
}

/// Per-host counts, for large inventories where listing every flow is not useful.
pub fn summary(plans: &Plans) -> String {
    let mut s = String::new();
    let mut total = 0usize;
    for h in &plans.hosts {
        let inn: usize = h.inbound.iter().map(|r| h.peer_count(r)).sum();
        let out: usize = h.outbound.iter().map(|r| h.peer_count(r)).sum();
        total += inn + out;
        let _ = writeln!(
            s,
            "{}\t{} inbound rules ({inn} peer entries)\t{} outbound rules ({out} peer entries)",
            h.name,
            h.inbound.len(),
            h.outbound.len()
        );
    }
    let _ = writeln!(s, "# {} hosts, {total} rule-peer entries", plans.hosts.len());
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::Inventory;
    use crate::matrix::Matrix;

    /// Two hosts in every group of the matrix, one of them also in every other group (so
    /// several rules share a port and a peer), and one host with an IPv6 address.
    fn every_group_plans() -> Plans {
        let m = Matrix::embedded();
        let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut hostvars = serde_json::Map::new();
        let mut n = 0;
        for s in &m.services {
            for _ in 0..2 {
                n += 1;
                let name = format!("{}{n}", s.group);
                hostvars.insert(
                    name.clone(),
                    serde_json::json!({"ansible_host": format!("10.0.{}.{}", n / 200, n % 200 + 1)}),
                );
                groups.entry(s.group.clone()).or_default().push(name);
            }
        }
        hostvars.insert("all1".into(), serde_json::json!({"ansible_host": "fd00::1"}));
        for hosts in groups.values_mut() {
            hosts.push("all1".into());
        }
        let mut inv = serde_json::json!({"_meta": {"hostvars": hostvars}});
        for (g, hosts) in groups {
            inv[g] = serde_json::json!({ "hosts": hosts });
        }
        let inv = Inventory::from_ansible_json(&inv).expect("well-formed inventory");
        let mut resolve = |_: &str| Err("no resolver in this test".to_string());
        crate::plan::plan(&inv, m, &mut resolve).expect("the plan")
    }

    #[test]
    fn streamed_flows_are_the_sorted_merged_flows() {
        let plans = every_group_plans();
        let built: String = flows(&plans).iter().map(|f| format!("{}\n", f.line)).collect();
        let streamed = flows_text(&plans);
        assert_eq!(streamed, built);
        // The data exercises both paths: lines of one rule and lines merging several.
        assert!(streamed.lines().any(|l| l.rsplit('\t').next().is_some_and(|ids| ids.contains(','))));
        assert!(streamed.lines().count() > 1000);
        let mut sorted: Vec<&str> = streamed.lines().collect();
        sorted.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        assert_eq!(sorted, streamed.lines().collect::<Vec<_>>());
    }

    #[test]
    fn hostile_text_stays_text() {
        // No HTML comment can open and hide rows; no cell, emphasis or link can start.
        assert_eq!(md_escape("FTP <!-- x | *y* [z](javascript:q)"), "FTP &lt;!-- x \\| \\*y\\* \\[z\\](javascript:q)");
        assert_eq!(csv_cell("=HYPERLINK(\"http://x\")"), "'=HYPERLINK(\"http://x\")");
        assert_eq!(csv_cell("web1"), "web1");
        assert_eq!(mermaid_label("a\"]\n  click x"), "a#quot;]\n  click x");
        let ids: BTreeSet<String> = ["web-1", "web_1", "web.1", "web1"].iter().map(|n| mermaid_id(n)).collect();
        assert_eq!(ids.len(), 4);
        assert!(ids.iter().all(|i| i.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')));
    }
}

//! Renderings of a set of plans: flows (the stable line contract), JSON (what the modules
//! consume), Markdown (for sign-off), CSV and Mermaid.

use crate::plan::{HostPlan, Origin, Plans};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write;

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

/// The flow lines, written host by host: memory holds one host's flows at a time.
pub fn write_flows(plans: &Plans, w: &mut impl std::io::Write) -> std::io::Result<()> {
    for h in line_order(plans) {
        for f in host_flows(h) {
            w.write_all(f.line.as_bytes())?;
            w.write_all(b"\n")?;
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
    let names = names(plans);
    let mut s = String::new();
    let _ = writeln!(s, "# VOR Stream host firewall plan\n");
    let _ = writeln!(
        s,
        "Generated by vorstream.firewall from the VOR Stream port matrix. Every host admits loopback, \
         established traffic and exactly the inbound flows listed for it; everything else inbound is refused.\n"
    );
    for w in &plans.warnings {
        let _ = writeln!(s, "> **Warning:** {}\n", md_escape(w));
    }
    for h in &plans.hosts {
        let _ = writeln!(s, "## {}\n", md_escape(&h.name));
        let addrs: Vec<String> = h.addresses.iter().map(|a| a.to_string()).collect();
        let _ = writeln!(s, "- Addresses: {}", addrs.join(", "));
        let groups = if h.groups.is_empty() { "(none)".into() } else { md_escape(&h.groups.join(", ")) };
        let _ = writeln!(s, "- Groups: {groups}");
        let _ = writeln!(s, "- Services: {}\n", h.services.join(", "));
        for (title, col, rules) in [("Inbound", "From", &h.inbound), ("Outbound", "To", &h.outbound)] {
            let _ = writeln!(s, "### {title}\n");
            // Merge rules that differ only by protocol.
            // (port, rule id) → (protocols, peers, purpose, label): rules differing only by protocol.
            type Row<'a> = (BTreeSet<&'a str>, Vec<String>, String, String);
            let mut rows: BTreeMap<(u16, String), Row> = BTreeMap::new();
            for r in rules.iter() {
                let peers: Vec<String> = h
                    .peers(r)
                    .map(|p| {
                        let p = p.to_string();
                        match names.get(&p) {
                            Some(n) => format!("{n} ({p})"),
                            None => p,
                        }
                    })
                    .collect();
                let e = rows
                    .entry((r.port, r.id.to_string()))
                    .or_insert_with(|| (BTreeSet::new(), peers, r.purpose.to_string(), r.label.to_string()));
                e.0.insert(r.protocol.as_str());
            }
            if rows.is_empty() {
                let _ = writeln!(s, "_None._\n");
                continue;
            }
            let _ = writeln!(s, "| Port | Protocol | {col} | Peers | Purpose | Rule |");
            let _ = writeln!(s, "|---:|---|---|---|---|---|");
            for ((port, id), (protos, peers, purpose, label)) in rows {
                let protos: Vec<&str> = protos.into_iter().collect();
                let _ = writeln!(
                    s,
                    "| {port} | {} | {} | {} | {} | `{id}` |",
                    protos.join("+"),
                    md_escape(&label),
                    md_escape(&peers.join(", ")),
                    md_escape(&purpose)
                );
            }
            s.push('\n');
        }
    }
    s
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

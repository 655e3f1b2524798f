//! The sign-off report: one self-contained HTML page of a deployment's plan (`vorfw report`,
//! the verify role's `verify_report`). It shows the flows as a diagram ([`crate::diagram`]),
//! the rules per service and per host (sortable and filterable by the page's own small
//! script), the probe results as a host × host matrix when they are given, and what a change
//! adds and removes against an older plan. Nothing is fetched: the page needs no network, and
//! its content security policy allows none.
//!
//! Every value from the inventory is escaped: as text and in attributes by [`esc`], inside the
//! page's JSON by [`script_json`].

use crate::error::{Error, Result};
use crate::plan::{HostPlan, Members, Origin, Plans, Proto};
use crate::render::replace_chars;
use crate::request::Fleet;
use ipnet::IpNet;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write;
use std::net::IpAddr;

/// The format of the data block the page carries (`<script id="report-data">`).
pub const REPORT_FORMAT: &str = "vorstream.firewall/report/v1";
/// Up to this many hosts with probe results, the matrix is host × host; past it, a table of
/// the pairs probed.
pub const MATRIX_HOSTS: usize = 80;
/// How many peers a diff row and how many hosts a service row spell out.
const LISTED: usize = 12;

/// Text as HTML, for element content and double-quoted attributes alike.
pub fn esc(s: &str) -> String {
    replace_chars(s, |c| {
        Some(match c {
            '&' => "&amp;",
            '<' => "&lt;",
            '>' => "&gt;",
            '"' => "&quot;",
            '\'' => "&#39;",
            _ => return None,
        })
    })
}

/// A JSON value as the text of a `<script>` element: no `</script>` or `<!--` can end or
/// change it, and no line separator can end a JavaScript string.
pub fn script_json(v: &Value) -> String {
    replace_chars(&v.to_string(), |c| {
        Some(match c {
            '<' => "\\u003c",
            '>' => "\\u003e",
            '&' => "\\u0026",
            '\u{2028}' => "\\u2028",
            '\u{2029}' => "\\u2029",
            _ => return None,
        })
    })
}

/// One probe's outcome, as the `verify` module returns it in `results` (other fields ignored).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Probed {
    pub dst: IpAddr,
    pub port: u16,
    pub protocol: Proto,
    /// `allowed`, `blocked` or `blocked-at-source`.
    pub expect: String,
    /// `open`, `closed`, `filtered`, `no-reply` or `error`.
    pub state: String,
    pub ok: bool,
    #[serde(default)]
    pub detail: String,
}

/// Probe results by source host: what the verify role gathers from every play host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyResults(pub BTreeMap<String, Vec<Probed>>);

impl VerifyResults {
    /// An object whose keys are source hosts and whose values are the `verify` module's result
    /// for that host (`{"results": [...], ...}`) or its `results` list alone.
    pub fn from_json(v: &Value) -> Result<VerifyResults> {
        let Value::Object(hosts) = v else {
            return Err(Error::new("verify results: expected an object of source host → results"));
        };
        let mut out = BTreeMap::new();
        for (host, r) in hosts {
            let list = match r {
                Value::Object(o) => o.get("results").cloned().unwrap_or(Value::Null),
                other => other.clone(),
            };
            let probed: Vec<Probed> = serde_json::from_value(list)
                .map_err(|e| Error::new(format!("verify results of host {host}: not a list of probe results: {e}")))?;
            out.insert(host.clone(), probed);
        }
        Ok(VerifyResults(out))
    }
}

/// What the report shows besides the plan.
#[derive(Default, Clone, Copy)]
pub struct Extras<'a> {
    /// An older plan (`vorfw plan --format json`): the report lists what changed since.
    pub against: Option<&'a Fleet>,
    pub verify: Option<&'a VerifyResults>,
}

/// The page. Deterministic: the same plans and extras give the same bytes.
pub fn html(plans: &Plans, extras: Extras) -> String {
    let mut s = String::with_capacity(4096 + plans.hosts.len() * 4096);
    let services: BTreeSet<&str> = plans.hosts.iter().flat_map(|h| h.services.iter().map(String::as_str)).collect();
    let inbound: usize = plans.hosts.iter().map(|h| h.inbound.len()).sum();
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; \
         script-src 'unsafe-inline'\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>VOR Stream host firewall report</title><style>{STYLE}</style></head><body>\n\
         <header><h1>VOR Stream host firewall report</h1><p>{} hosts, {} services, {inbound} inbound rules. \
         Every host admits loopback, established traffic and exactly the inbound flows listed for it; \
         everything else inbound is refused. Generated by vorstream.firewall from the VOR Stream port matrix.</p>",
        plans.hosts.len(),
        services.len()
    );
    for w in &plans.warnings {
        let _ = write!(s, "<p class=\"warning\">Warning: {}</p>", esc(w));
    }
    s.push_str("<nav><a href=\"#flows\">Flows</a> <a href=\"#services\">By service</a> <a href=\"#hosts\">By host</a>");
    if extras.verify.is_some() {
        s.push_str(" <a href=\"#verify\">Probe results</a>");
    }
    if extras.against.is_some() {
        s.push_str(" <a href=\"#changes\">Changes</a>");
    }
    s.push_str("</nav></header>\n");
    let mut data = json!({"format": REPORT_FORMAT, "hosts": plans.hosts.iter().map(|h| &h.name).collect::<Vec<_>>(),
                          "services": services, "inbound_rules": inbound});
    if let Some(v) = extras.verify {
        data["verify"] = verify_section(&mut s, plans, v);
    }
    if let Some(old) = extras.against {
        data["changes"] = changes_section(&mut s, plans, old);
    }
    let _ = writeln!(
        s,
        "<section id=\"flows\"><h2>Flows</h2><p>Services as boxes with their hosts, audiences as rounded nodes; \
         each arrow carries the ports its source reaches on its target (hover for protocols and rule ids).</p>\
         <div class=\"scroll\">{}</div></section>",
        crate::diagram::svg(plans)
    );
    services_section(&mut s, plans);
    hosts_section(&mut s, plans);
    let _ = write!(
        s,
        "<script type=\"application/json\" id=\"report-data\">{}</script>\n<script>{SCRIPT}</script>\n</body></html>\n",
        script_json(&data)
    );
    s
}

/// A rule's peers in words: who they are, and an external audience's CIDRs.
fn peers_cell(h: &HostPlan, r: &crate::plan::Rule) -> String {
    match r.members {
        Members::Networks => {
            let nets: Vec<String> = h.peers(r).map(ToString::to_string).collect();
            format!(
                "<span class=\"badge\">external</span> {} <span class=\"nets\">{}</span>",
                esc(&r.label),
                esc(&nets.join(", "))
            )
        }
        Members::Hosts => {
            let n = h.peer_count(r);
            format!("{} <span class=\"nets\">({n} host{})</span>", esc(&r.label), if n == 1 { "" } else { "s" })
        }
    }
}

/// A filter box and the head of a sortable table; the caller writes the rows and [`TABLE_END`].
fn table_start(s: &mut String, id: &str, what: &str, columns: &[&str]) {
    let _ = write!(
        s,
        "<p><input class=\"filter\" type=\"search\" data-table=\"{id}\" placeholder=\"Filter {what}: words a row must \
         hold\" aria-label=\"Filter {what}\"> <span class=\"count\" id=\"{id}-count\"></span></p>\
         <table class=\"sortable\" id=\"{id}\"><thead><tr>"
    );
    for c in columns {
        let _ = write!(s, "<th scope=\"col\">{c}</th>");
    }
    s.push_str("</tr></thead><tbody>\n");
}

const TABLE_END: &str = "</tbody></table>\n";

/// Escaped cells as one row; `class` marks it (`ext`, `bad`) or is empty.
fn row(s: &mut String, class: &str, cells: &[&str]) {
    if class.is_empty() {
        s.push_str("<tr>");
    } else {
        let _ = write!(s, "<tr class=\"{class}\">");
    }
    for c in cells {
        let _ = write!(s, "<td>{c}</td>");
    }
    s.push_str("</tr>\n");
}

/// A host's rule without its protocol: (direction, port, rule id, set key).
type Merged<'a> = (&'static str, u16, &'a str, &'a str);

/// A host's rules merged over protocols: each with its protocols and one of its rules.
fn merged(h: &HostPlan) -> BTreeMap<Merged<'_>, (BTreeSet<&'static str>, &crate::plan::Rule)> {
    let mut rows = BTreeMap::new();
    for (dir, rules) in [("in", &h.inbound), ("out", &h.outbound)] {
        for r in rules {
            rows.entry((dir, r.port, &*r.id, &*r.set))
                .or_insert_with(|| (BTreeSet::new(), r))
                .0
                .insert(r.protocol.as_str());
        }
    }
    rows
}

fn joined(protos: &BTreeSet<&str>) -> String {
    protos.iter().copied().collect::<Vec<_>>().join("+")
}

fn hosts_section(s: &mut String, plans: &Plans) {
    s.push_str(
        "<section id=\"hosts\"><h2>Rules by host</h2><p>Every host's inbound rules (who may reach it) and outbound \
         rules (what it reaches), with the purpose and the matrix row.</p>",
    );
    table_start(s, "host-rules", "host rules", &["Host", "Direction", "Port", "Protocol", "Peers", "Purpose", "Rule"]);
    for h in &plans.hosts {
        let name = esc(&h.name);
        for ((dir, port, id, _), (protos, r)) in merged(h) {
            let class = if r.members == Members::Networks { "ext" } else { "" };
            let cells: &[&str] =
                &[&*name, dir, &port.to_string(), &joined(&protos), &peers_cell(h, r), &esc(&r.purpose), &esc(id)];
            row(s, class, cells);
        }
    }
    s.push_str(TABLE_END);
    s.push_str("</section>\n");
}

/// The service a rule belongs to from one side: the target's for inbound, the source's for
/// outbound (management SSH belongs to every host).
fn rule_service(origin: &Origin, dir: &str) -> String {
    let svc = crate::diagram::service_of;
    match (origin, dir) {
        (Origin::Flow { target, .. } | Origin::Audience { target, .. } | Origin::Extra { target }, "in") => {
            svc(target).to_string()
        }
        (Origin::Flow { source, .. }, _) => svc(source).to_string(),
        (Origin::Management, _) => "every host".into(),
        (Origin::Audience { target, .. } | Origin::Extra { target }, _) => svc(target).to_string(),
    }
}

fn services_section(s: &mut String, plans: &Plans) {
    type Key<'a> = (String, &'static str, u16, &'a str, &'a str);
    let mut rows: BTreeMap<Key, (BTreeSet<&str>, &crate::plan::Rule, BTreeSet<&str>)> = BTreeMap::new();
    for h in &plans.hosts {
        for ((dir, port, id, _), (protos, r)) in merged(h) {
            let e = rows
                .entry((rule_service(&r.origin, dir), dir, port, id, &*r.label))
                .or_insert_with(|| (BTreeSet::new(), r, BTreeSet::new()));
            e.0.extend(protos);
            e.2.insert(&h.name);
        }
    }
    s.push_str(
        "<section id=\"services\"><h2>Rules by service</h2><p>The same rules per service: inbound to the hosts \
         running it, outbound from them, and which hosts hold each rule.</p>",
    );
    let columns = ["Service", "Direction", "Port", "Protocol", "Peers", "Purpose", "Rule", "Hosts"];
    table_start(s, "service-rules", "service rules", &columns);
    for ((svc, dir, port, id, label), (protos, r, hosts)) in rows {
        let external = r.members == Members::Networks;
        let peers = if external { format!("<span class=\"badge\">external</span> {}", esc(label)) } else { esc(label) };
        let mut names: Vec<String> = hosts.iter().take(LISTED).map(|h| esc(h)).collect();
        if hosts.len() > LISTED {
            names.push(format!("and {} more", hosts.len() - LISTED));
        }
        let held = format!("{}: {}", hosts.len(), names.join(", "));
        let cells: &[&str] =
            &[&*esc(&svc), dir, &port.to_string(), &joined(&protos), &peers, &esc(&r.purpose), &esc(id), &held];
        row(s, if external { "ext" } else { "" }, cells);
    }
    s.push_str(TABLE_END);
    s.push_str("</section>\n");
}

/// Probe counts of one (source, target) pair.
#[derive(Default, Clone, Copy)]
struct Pair {
    open: usize,
    blocked: usize,
    mismatches: usize,
}

fn verify_section(s: &mut String, plans: &Plans, v: &VerifyResults) -> Value {
    let owner: HashMap<IpAddr, &str> =
        plans.hosts.iter().flat_map(|h| h.addresses.iter().map(move |a| (*a, h.name.as_str()))).collect();
    let target = |p: &Probed| owner.get(&p.dst).map_or_else(|| p.dst.to_string(), |h| (*h).to_string());
    let mut pairs: BTreeMap<(&str, String), Pair> = BTreeMap::new();
    let mut total = Pair::default();
    for (src, list) in &v.0 {
        for p in list {
            let c = pairs.entry((src.as_str(), target(p))).or_default();
            for c in [c, &mut total] {
                match (p.ok, p.expect.as_str()) {
                    (false, _) => c.mismatches += 1,
                    (true, "allowed") => c.open += 1,
                    (true, _) => c.blocked += 1,
                }
            }
        }
    }
    let _ = write!(
        s,
        "<section id=\"verify\"><h2>Probe results</h2><p class=\"{}\">{} required flows open, {} forbidden flows \
         blocked, {} mismatches.</p>",
        if total.mismatches > 0 { "bad" } else { "good" },
        total.open,
        total.blocked,
        total.mismatches
    );
    if total.mismatches > 0 {
        s.push_str("<h3>Mismatches</h3>");
        let columns = ["Source", "Target", "Address", "Port", "Protocol", "Expected", "Got", "Detail"];
        table_start(s, "mismatches", "mismatches", &columns);
        for (src, list) in &v.0 {
            for p in list.iter().filter(|p| !p.ok) {
                let cells: &[&str] = &[
                    &*esc(src),
                    &esc(&target(p)),
                    &p.dst.to_string(),
                    &p.port.to_string(),
                    p.protocol.as_str(),
                    &esc(&p.expect),
                    &esc(&p.state),
                    &esc(&p.detail),
                ];
                row(s, "bad", cells);
            }
        }
        s.push_str(TABLE_END);
    }
    // Hosts with mismatches first, then by name: as sources (rows) and as targets (columns).
    let bad_first = |names: BTreeMap<String, usize>| {
        let mut v: Vec<(String, usize)> = names.into_iter().collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v.into_iter().map(|(n, _)| n).collect::<Vec<String>>()
    };
    let (mut srcs, mut dsts) = (BTreeMap::new(), BTreeMap::new());
    for ((src, dst), c) in &pairs {
        *srcs.entry(src.to_string()).or_insert(0) += c.mismatches;
        *dsts.entry(dst.clone()).or_insert(0) += c.mismatches;
    }
    let (srcs, dsts) = (bad_first(srcs), bad_first(dsts));
    let cell = |c: &Pair| {
        let title = format!("{} required open, {} forbidden blocked, {} mismatches", c.open, c.blocked, c.mismatches);
        let (class, text) = if c.mismatches > 0 {
            ("bad", format!("✗ {}", c.mismatches))
        } else {
            ("good", format!("{}/{}", c.open, c.blocked))
        };
        (class, title, text)
    };
    if srcs.len().max(dsts.len()) <= MATRIX_HOSTS {
        s.push_str(
            "<h3>Host × host</h3><p>A row per source, a column per target: required flows open / forbidden flows \
             blocked, or ✗ and the number of mismatches.</p><div class=\"scroll\"><table class=\"matrix\" \
             id=\"verify-matrix\"><thead><tr><th>from \\ to</th>",
        );
        for d in &dsts {
            let _ = write!(s, "<th scope=\"col\"><span>{}</span></th>", esc(d));
        }
        s.push_str("</tr></thead><tbody>\n");
        for src in &srcs {
            let _ = write!(s, "<tr><th scope=\"row\">{}</th>", esc(src));
            for d in &dsts {
                match pairs.get(&(src.as_str(), d.clone())) {
                    Some(c) => {
                        let (class, title, text) = cell(c);
                        let _ = write!(s, "<td class=\"{class}\" title=\"{}\">{}</td>", esc(&title), esc(&text));
                    }
                    None => s.push_str("<td class=\"none\"></td>"),
                }
            }
            s.push_str("</tr>\n");
        }
        s.push_str("</tbody></table></div>");
    } else {
        s.push_str("<h3>Pairs probed</h3>");
        let columns = ["Source", "Target", "Required open", "Forbidden blocked", "Mismatches"];
        table_start(s, "verify-pairs", "pairs", &columns);
        let mut list: Vec<(&(&str, String), &Pair)> = pairs.iter().collect();
        list.sort_by(|a, b| b.1.mismatches.cmp(&a.1.mismatches).then_with(|| a.0.cmp(b.0)));
        for ((src, dst), c) in list {
            let cells: &[&str] =
                &[&*esc(src), &esc(dst), &c.open.to_string(), &c.blocked.to_string(), &c.mismatches.to_string()];
            row(s, if c.mismatches > 0 { "bad" } else { "" }, cells);
        }
        s.push_str(TABLE_END);
    }
    s.push_str("</section>\n");
    json!({"required_open": total.open, "forbidden_blocked": total.blocked, "mismatches": total.mismatches})
}

/// A rule as a diff compares it: (host, direction, rule id, port, protocol).
type RuleKey = (String, &'static str, String, u16, Proto);

/// Every rule of a plan with its peers as the host sees them, and its purpose.
fn rule_map(f: &Fleet) -> Result<BTreeMap<RuleKey, (Vec<IpNet>, String)>> {
    let mut out = BTreeMap::new();
    for name in f.hosts.keys() {
        let req = f.request(name)?;
        for (dir, r) in req.rules() {
            let key = (name.clone(), dir, r.id.clone(), r.port, r.protocol);
            out.insert(key, (req.peers(r), r.purpose.clone()));
        }
    }
    Ok(out)
}

fn nets_text(nets: &[IpNet]) -> String {
    let mut v: Vec<String> = nets.iter().take(LISTED).map(ToString::to_string).collect();
    if nets.len() > LISTED {
        v.push(format!("and {} more", nets.len() - LISTED));
    }
    v.join(", ")
}

fn changes_section(s: &mut String, plans: &Plans, old: &Fleet) -> Value {
    s.push_str("<section id=\"changes\"><h2>Changes against the older plan</h2>");
    let new = Fleet::from_plans(plans, &plans.hosts);
    let (before, after) = match (rule_map(old), rule_map(&new)) {
        (Ok(b), Ok(a)) => (b, a),
        (Err(e), _) | (_, Err(e)) => {
            let _ = writeln!(s, "<p class=\"bad\">The older plan cannot be read: {}</p></section>", esc(&e.0));
            return json!({"error": e.0});
        }
    };
    let mut changes: Vec<(&str, &RuleKey, String, &str)> = vec![];
    for (k, (nets, purpose)) in &after {
        match before.get(k) {
            None => changes.push(("added", k, nets_text(nets), purpose)),
            Some((was, _)) if was != nets => {
                let gone: Vec<IpNet> = was.iter().filter(|n| !nets.contains(n)).copied().collect();
                let came: Vec<IpNet> = nets.iter().filter(|n| !was.contains(n)).copied().collect();
                let mut text = vec![];
                if !came.is_empty() {
                    text.push(format!("+ {}", nets_text(&came)));
                }
                if !gone.is_empty() {
                    text.push(format!("− {}", nets_text(&gone)));
                }
                changes.push(("peers", k, text.join("; "), purpose));
            }
            Some(_) => {}
        }
    }
    for (k, (nets, purpose)) in &before {
        if !after.contains_key(k) {
            changes.push(("removed", k, nets_text(nets), purpose));
        }
    }
    let count = |what: &str| changes.iter().filter(|c| c.0 == what).count();
    let (added, removed, peers) = (count("added"), count("removed"), count("peers"));
    let hosts_new = new.hosts.keys().filter(|h| !old.hosts.contains_key(*h)).count();
    let hosts_gone = old.hosts.keys().filter(|h| !new.hosts.contains_key(*h)).count();
    let _ = write!(
        s,
        "<p>{added} rules added, {removed} removed, {peers} with other peers; {hosts_new} hosts new, {hosts_gone} \
         hosts gone.</p>"
    );
    if !changes.is_empty() {
        let columns = ["Change", "Host", "Direction", "Port", "Protocol", "Rule", "Peers", "Purpose"];
        table_start(s, "changes-table", "changes", &columns);
        for (what, (host, dir, id, port, proto), peers, purpose) in &changes {
            let cells: &[&str] =
                &[*what, &esc(host), dir, &port.to_string(), proto.as_str(), &esc(id), &esc(peers), &esc(purpose)];
            row(s, what, cells);
        }
        s.push_str(TABLE_END);
    }
    s.push_str("</section>\n");
    json!({"added": added, "removed": removed, "peers_changed": peers})
}

const STYLE: &str = "\
body{font:14px/1.4 system-ui,sans-serif;margin:0 1.5em 2em;color:#1d2330}\
section{content-visibility:auto;contain-intrinsic-size:auto 2000px}\
h1{font-size:1.5em;margin:.6em 0 .2em}h2{margin-top:1.4em;border-bottom:1px solid #ccd}\
nav a{margin-right:1em}.warning,.bad{color:#a11}.good{color:#161}\
.scroll{overflow:auto;max-width:100%}\
table{border-collapse:collapse;margin:.4em 0}th,td{border:1px solid #ccd;padding:2px 6px;text-align:left;\
vertical-align:top}thead th{background:#eef;position:sticky;top:0}\
table.sortable thead th{cursor:pointer;user-select:none}\
th[aria-sort=ascending]::after{content:' ▲'}th[aria-sort=descending]::after{content:' ▼'}\
tr.ext td{background:#fff6e0}tr.bad td,td.bad{background:#fde2e2}td.good{background:#e4f5e4}\
tr.added td{background:#e4f5e4}tr.removed td{background:#fde2e2}tr.peers td{background:#fff6e0}\
.badge{background:#c60;color:#fff;border-radius:3px;padding:0 4px;font-size:.8em}.nets{color:#556}\
input.filter{width:28em;padding:3px}\
table.matrix td{text-align:center;min-width:3em}\
svg text{font:12px system-ui,sans-serif;text-anchor:middle;fill:#1d2330}svg .name{font-weight:bold}\
svg .service>rect{fill:#eef2fb;stroke:#6b7fb3}svg .group>rect{fill:#f3f3f3;stroke:#888}\
svg .audience>rect{fill:#fff6e0;stroke:#c60}svg .host rect{fill:#fff;stroke:#9aa6c8}\
svg .note{fill:#556;font-style:italic}svg .flow path{fill:none;stroke:#6b7fb3;stroke-width:1.3}\
svg .ports rect{fill:#fff;stroke:#c9d1e6}svg .ports text{font-size:11px;fill:#334}\
svg marker path{fill:#6b7fb3}svg .flow:hover path{stroke:#c60;stroke-width:2.5}";

/// The page's own script: click (or Enter on) a column header to sort by it, type in a filter
/// box to show only the rows holding every word. It reads only the page.
const SCRIPT: &str = r#"(function () {
  "use strict";
  var each = function (list, f) { Array.prototype.forEach.call(list, f); };
  function sortBy(table, i, th) {
    var asc = th.getAttribute("aria-sort") !== "ascending";
    var rows = Array.prototype.map.call(table.tBodies[0].rows, function (r, n) {
      var k = r.cells[i] ? r.cells[i].textContent : "";
      return { r: r, n: n, k: k, x: /^-?[0-9.]+$/.test(k) ? Number(k) : null };
    });
    rows.sort(function (a, b) {
      var d = a.x !== null && b.x !== null ? a.x - b.x : a.k < b.k ? -1 : a.k > b.k ? 1 : 0;
      return (asc ? d : -d) || a.n - b.n;
    });
    var frag = document.createDocumentFragment();
    rows.forEach(function (x) { frag.appendChild(x.r); });
    table.tBodies[0].appendChild(frag);
    each(table.tHead.rows[0].cells, function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", asc ? "ascending" : "descending");
  }
  each(document.querySelectorAll("table.sortable"), function (t) {
    each(t.tHead.rows[0].cells, function (th, i) {
      th.tabIndex = 0;
      th.addEventListener("click", function () { sortBy(t, i, th); });
      th.addEventListener("keydown", function (e) { if (e.key === "Enter") { sortBy(t, i, th); } });
    });
  });
  each(document.querySelectorAll("input.filter"), function (box) {
    var id = box.getAttribute("data-table"), t = document.getElementById(id);
    var count = document.getElementById(id + "-count"), rows = null, texts = null;
    box.addEventListener("input", function () {
      if (rows === null) {
        rows = Array.prototype.slice.call(t.tBodies[0].rows);
        texts = rows.map(function (r) { return r.textContent.toLowerCase(); });
      }
      var words = box.value.toLowerCase().split(/\s+/).filter(Boolean), shown = 0;
      rows.forEach(function (r, n) {
        var hit = words.every(function (w) { return texts[n].indexOf(w) >= 0; });
        r.hidden = !hit;
        if (hit) { shown += 1; }
      });
      count.textContent = words.length ? shown + " of " + rows.length + " rows" : "";
    });
  });
})();
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_text_stays_text() {
        assert_eq!(esc("\"><img src=x onerror=alert(1)>"), "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;");
        assert_eq!(esc("a'b&c"), "a&#39;b&amp;c");
        let v = json!({"h": "</script><!--\u{2028}\u{2029}&"});
        let t = script_json(&v);
        assert!(!t.contains('<') && !t.contains('>') && !t.contains('&'), "{t}");
        assert!(!t.contains('\u{2028}') && !t.contains('\u{2029}'), "{t}");
        assert_eq!(serde_json::from_str::<Value>(&t).unwrap(), v);
    }

    #[test]
    fn verify_results_take_the_module_result_or_its_list() {
        let one = json!({"dst": "10.0.0.1", "port": 22, "protocol": "tcp", "expect": "allowed", "state": "open",
                         "ok": true, "allowed": true, "label": "a -> b", "elapsed_ms": 3});
        let a = VerifyResults::from_json(&json!({"a": {"results": [one], "summary": {}}})).unwrap();
        let b = VerifyResults::from_json(&json!({"a": [one]})).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.0["a"][0].port, 22);
        let e = VerifyResults::from_json(&json!({"a": [{"dst": "x"}]})).unwrap_err();
        assert!(e.0.starts_with("verify results of host a: not a list of probe results"), "{e}");
        assert!(VerifyResults::from_json(&json!([])).is_err());
    }
}

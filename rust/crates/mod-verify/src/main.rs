//! Ansible module `vorstream.firewall.verify`: probe flows from the target host and check that
//! the firewall allows or blocks each one as the plan says.
//!
//! Probing is read-only: the module never changes anything (`changed: false`) and runs the same
//! in check mode. See `vorfw_probe` for how a probe's outcome is classified.

use serde_json::{json, Map, Value};
use std::net::IpAddr;
use std::time::Duration;
use vorfw_ansible::{Failure, Module, Outcome};
use vorfw_probe::{Expect, Options, Probe, ProbeResult, Protocol, State};

const ARGS: &[&str] = &["probes", "timeout_ms", "udp_retries", "concurrency", "fail_on_mismatch"];
const PROBE_KEYS: &[&str] = &["dst", "port", "protocol", "expect", "label"];

/// How many mismatches the failure message spells out.
const LISTED_MISMATCHES: usize = 5;
/// How many argument errors one failure message reports.
const LISTED_ARG_ERRORS: usize = 10;

fn main() {
    vorfw_ansible::run(body)
}

fn body(m: &mut Module) -> Result<Outcome, Failure> {
    m.allow_only(ARGS)?;
    let probes = parse_probes(m.args.get("probes"))?;
    let timeout_ms = int_arg(m, "timeout_ms", 1500, 1, 300_000)?;
    let udp_retries = int_arg(m, "udp_retries", 2, 0, 10)?;
    let concurrency = int_arg(m, "concurrency", 64, 1, 1024)?;
    let fail_on_mismatch = m.bool_arg("fail_on_mismatch", true)?;
    let opts = Options {
        timeout: Duration::from_millis(timeout_ms),
        udp_retries: u32::try_from(udp_retries)?,
        concurrency: usize::try_from(concurrency)?,
    };

    let mut results = vorfw_probe::probe_all(&probes, &opts);
    // A mismatch is confirmed by a second probe, one at a time, so that a transient local
    // failure (a burst of parallel connects) is not reported as a firewall fault.
    let again: Vec<usize> = (0..results.len()).filter(|&i| !results[i].ok).collect();
    if !again.is_empty() {
        let retry: Vec<_> = again.iter().map(|&i| probes[i].clone()).collect();
        let one = vorfw_probe::Options { concurrency: 1, ..opts.clone() };
        for (i, r) in again.into_iter().zip(vorfw_probe::probe_all(&retry, &one)) {
            if r.ok {
                results[i] = r;
            } else {
                results[i].detail = format!("{} (confirmed by a second probe: {})", results[i].detail, r.detail);
            }
        }
    }
    let report = Report::new(&results);

    let mut data = Map::new();
    data.insert("results".into(), serde_json::to_value(&results)?);
    data.insert("summary".into(), report.summary);
    data.insert("mismatches".into(), serde_json::to_value(results.iter().filter(|r| !r.ok).collect::<Vec<_>>())?);
    data.insert("matrix".into(), Value::String(matrix(&results)));

    if fail_on_mismatch && report.mismatches > 0 {
        let mut f = Failure::new(report.msg);
        f.extra = data;
        return Err(f);
    }
    data.insert("msg".into(), Value::String(report.msg));
    Ok(Outcome { changed: false, data, ..Default::default() })
}

/// The counts and the one-line verdict of a run.
struct Report {
    summary: Value,
    mismatches: usize,
    msg: String,
}

impl Report {
    fn new(results: &[ProbeResult]) -> Report {
        let count = |f: &dyn Fn(&ProbeResult) -> bool| results.iter().filter(|r| f(r)).count();
        let total = results.len();
        let ok = count(&|r| r.ok);
        let mismatches = total - ok;
        let summary = json!({
            "total": total,
            "ok": ok,
            "mismatches": mismatches,
            "allowed_ok": count(&|r| r.ok && r.probe.expect == Expect::Allowed),
            "blocked_ok": count(&|r| r.ok && r.probe.expect != Expect::Allowed),
            "open": count(&|r| r.state == State::Open),
            "closed": count(&|r| r.state == State::Closed),
            "filtered": count(&|r| r.state == State::Filtered),
            "no_reply": count(&|r| r.state == State::NoReply),
            "error": count(&|r| r.state == State::Error),
        });
        let msg = if total == 0 {
            "no flows to verify".to_string()
        } else if mismatches == 0 {
            format!("all {total} flows match the plan")
        } else {
            let bad: Vec<&ProbeResult> = results.iter().filter(|r| !r.ok).collect();
            let mut listed: Vec<String> = bad.iter().take(LISTED_MISMATCHES).map(|r| describe_mismatch(r)).collect();
            if bad.len() > LISTED_MISMATCHES {
                listed.push(format!("and {} more (see mismatches)", bad.len() - LISTED_MISMATCHES));
            }
            format!("{mismatches} of {total} flows do not match the plan: {}", listed.join("; "))
        };
        Report { summary, mismatches, msg }
    }
}

/// `10.231.0.22:8001/tcp expected allowed, got filtered [web to django]`.
fn describe_mismatch(r: &ProbeResult) -> String {
    let detail = if r.state == State::Error { format!(" ({})", r.detail) } else { String::new() };
    let label = if r.probe.label.is_empty() { String::new() } else { format!(" [{}]", r.probe.label) };
    format!("{} expected {}, got {}{detail}{label}", r.probe.target(), r.probe.expect, r.state)
}

/// One aligned line per probe: `label  dst:port/proto  expect  state  OK|MISMATCH`.
fn matrix(results: &[ProbeResult]) -> String {
    let rows: Vec<[String; 5]> = results
        .iter()
        .map(|r| {
            let label = if r.probe.label.is_empty() { "-".to_string() } else { r.probe.label.clone() };
            let verdict = if r.ok { "OK" } else { "MISMATCH" };
            [label, r.probe.target(), r.probe.expect.to_string(), r.state.to_string(), verdict.to_string()]
        })
        .collect();
    let mut widths = [0usize; 4];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row.iter()) {
            *w = (*w).max(cell.chars().count());
        }
    }
    rows.iter()
        .map(|[label, target, expect, state, verdict]| {
            format!(
                "{label:<w0$}  {target:<w1$}  {expect:<w2$}  {state:<w3$}  {verdict}",
                w0 = widths[0],
                w1 = widths[1],
                w2 = widths[2],
                w3 = widths[3],
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// An integer from a JSON number or a decimal string (Ansible templating may give either).
fn as_int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| n.as_u64().map(|u| i64::try_from(u).unwrap_or(i64::MAX))),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Check an integer against `lo..=hi`; `what` names it in messages.
fn int_in_range(what: &str, v: &Value, lo: i64, hi: i64) -> Result<i64, String> {
    match as_int(v) {
        None => Err(format!("{what}: {v} is not an integer")),
        Some(i) if i < lo || i > hi => Err(format!("{what}: {i} is out of range {lo}-{hi}")),
        Some(i) => Ok(i),
    }
}

/// A top-level integer argument with a default.
fn int_arg(m: &Module, key: &str, default: u64, lo: u64, hi: u64) -> Result<u64, Failure> {
    match m.args.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => {
            let lo_i = i64::try_from(lo)?;
            let hi_i = i64::try_from(hi)?;
            let i = int_in_range(key, v, lo_i, hi_i).map_err(Failure::new)?;
            Ok(u64::try_from(i)?)
        }
    }
}

/// Validate `probes`, collecting every error (up to a limit) into one message.
fn parse_probes(v: Option<&Value>) -> Result<Vec<Probe>, Failure> {
    let items = match v {
        None | Some(Value::Null) => {
            return Err(Failure::new("missing required argument: probes"));
        }
        Some(Value::Array(items)) => items,
        Some(other) => {
            return Err(Failure::new(format!("probes must be a list of dicts, got {other}")));
        }
    };
    let mut probes = Vec::with_capacity(items.len());
    let mut errors = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match parse_probe(i, item) {
            Ok(p) => probes.push(p),
            Err(mut e) => errors.append(&mut e),
        }
    }
    if errors.is_empty() {
        return Ok(probes);
    }
    let total = errors.len();
    errors.truncate(LISTED_ARG_ERRORS);
    if total > LISTED_ARG_ERRORS {
        errors.push(format!("and {} more errors", total - LISTED_ARG_ERRORS));
    }
    Err(Failure::new(format!("invalid probes: {}", errors.join("; "))))
}

/// One probe dict, or every error found in it.
fn parse_probe(i: usize, item: &Value) -> Result<Probe, Vec<String>> {
    let Value::Object(d) = item else {
        return Err(vec![format!("probes[{i}] must be a dict, got {item}")]);
    };
    let mut errors = Vec::new();
    for k in d.keys() {
        if !PROBE_KEYS.contains(&k.as_str()) {
            errors.push(format!("probes[{i}]: unsupported key '{k}' (supported: {})", PROBE_KEYS.join(", ")));
        }
    }
    let field = |name: &str| match d.get(name) {
        None | Some(Value::Null) => None,
        Some(v) => Some(v),
    };
    let required = |name: &str, errors: &mut Vec<String>| {
        let v = field(name);
        if v.is_none() {
            errors.push(format!("probes[{i}].{name} is required"));
        }
        v
    };

    let dst = required("dst", &mut errors).and_then(|v| match parse_dst(v) {
        Ok(ip) => Some(ip),
        Err(e) => {
            errors.push(format!("probes[{i}].dst: {e}"));
            None
        }
    });
    let port =
        required("port", &mut errors).and_then(|v| match int_in_range(&format!("probes[{i}].port"), v, 1, 65535) {
            Ok(p) => u16::try_from(p).ok(),
            Err(e) => {
                errors.push(e);
                None
            }
        });
    let protocol = required("protocol", &mut errors).and_then(|v| match v.as_str().map(str::parse::<Protocol>) {
        Some(Ok(p)) => Some(p),
        Some(Err(e)) => {
            errors.push(format!("probes[{i}].protocol: {e}"));
            None
        }
        None => {
            errors.push(format!("probes[{i}].protocol must be a string (tcp or udp), got {v}"));
            None
        }
    });
    let expect = required("expect", &mut errors).and_then(|v| match v.as_str().map(str::parse::<Expect>) {
        Some(Ok(e)) => Some(e),
        Some(Err(e)) => {
            errors.push(format!("probes[{i}].expect: {e}"));
            None
        }
        None => {
            errors
                .push(format!("probes[{i}].expect must be a string (allowed, blocked or blocked-at-source), got {v}"));
            None
        }
    });
    let label = match field("label") {
        None => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(v) => {
            errors.push(format!("probes[{i}].label must be a string, got {v}"));
            String::new()
        }
    };

    match (dst, port, protocol, expect) {
        (Some(dst), Some(port), Some(protocol), Some(expect)) if errors.is_empty() => {
            Ok(Probe::new(dst, port, protocol, expect).with_label(label))
        }
        _ => Err(errors),
    }
}

/// A unicast IP address literal.
fn parse_dst(v: &Value) -> Result<IpAddr, String> {
    let Some(s) = v.as_str() else {
        return Err(format!("must be a string (an IP address), got {v}"));
    };
    let ip: IpAddr = s.trim().parse().map_err(|_| format!("'{s}' is not an IP address"))?;
    let broadcast = matches!(ip, IpAddr::V4(v4) if v4.is_broadcast());
    if ip.is_unspecified() || ip.is_multicast() || broadcast {
        return Err(format!("{ip} is not a unicast address; only unicast destinations can be probed"));
    }
    Ok(ip)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, TcpListener};

    fn module(args: Value) -> Module {
        Module::from_json(&args.to_string()).unwrap()
    }

    fn run(args: Value) -> (Value, i32) {
        let mut m = module(args);
        let r = body(&mut m);
        m.result(r)
    }

    fn closed_port() -> u16 {
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap().local_addr().unwrap().port()
    }

    #[test]
    fn validation_names_index_and_field() {
        let (v, code) = run(json!({"probes": [
            {"dst": "127.0.0.1", "port": 22, "protocol": "tcp", "expect": "allowed"},
            {"dst": "127.0.0.1", "port": 70000, "protocol": "tcp", "expect": "allowed"},
            {"dst": "10.0.0.300", "port": "http", "protocol": "icmp", "expect": "open", "label": 5},
            {"port": 1, "protocol": "udp", "expect": "blocked", "expected": "x"},
            {"dst": "224.0.0.1", "port": 1, "protocol": "udp", "expect": "blocked"},
            "nope",
        ]}));
        assert_eq!(code, 1);
        let msg = v["msg"].as_str().unwrap();
        for want in [
            "probes[1].port: 70000 is out of range 1-65535",
            "probes[2].dst: '10.0.0.300' is not an IP address",
            "probes[2].port: \"http\" is not an integer",
            "probes[2].protocol: 'icmp' is not one of tcp, udp",
            "probes[2].expect: 'open' is not one of allowed, blocked, blocked-at-source",
            "probes[2].label must be a string, got 5",
            "probes[3]: unsupported key 'expected'",
            "probes[3].dst is required",
            "probes[4].dst: 224.0.0.1 is not a unicast address",
            "probes[5] must be a dict, got \"nope\"",
        ] {
            assert!(msg.contains(want), "{want:?} not in {msg}");
        }
        assert!(!msg.contains("probes[0]"), "{msg}");
    }

    #[test]
    fn top_level_args_are_checked() {
        let (v, _) = run(json!({"probes": [], "bogus": 1}));
        assert!(v["msg"].as_str().unwrap().starts_with("Unsupported parameters: bogus"));
        let (v, _) = run(json!({}));
        assert_eq!(v["msg"], "missing required argument: probes");
        let (v, _) = run(json!({"probes": "x"}));
        assert_eq!(v["msg"], "probes must be a list of dicts, got \"x\"");
        let (v, _) = run(json!({"probes": [], "timeout_ms": 0}));
        assert_eq!(v["msg"], "timeout_ms: 0 is out of range 1-300000");
        let (v, _) = run(json!({"probes": [], "concurrency": -3}));
        assert_eq!(v["msg"], "concurrency: -3 is out of range 1-1024");
        let (v, _) = run(json!({"probes": [], "fail_on_mismatch": "maybe"}));
        assert_eq!(v["failed"], true);
        let (v, code) = run(json!({"probes": [], "timeout_ms": "200", "udp_retries": 0}));
        assert_eq!(code, 0, "{v}");
        assert_eq!(v["summary"]["total"], 0);
        assert_eq!(v["changed"], false);
    }

    #[test]
    fn mismatches_fail_with_results() {
        let port = closed_port();
        let probes = json!([
            {"dst": "127.0.0.1", "port": port, "protocol": "tcp", "expect": "allowed", "label": "a"},
            {"dst": "127.0.0.1", "port": port, "protocol": "tcp", "expect": "blocked", "label": "b"},
        ]);
        let (v, code) = run(json!({"probes": probes, "timeout_ms": 500, "_ansible_check_mode": true}));
        assert_eq!(code, 1);
        assert_eq!(v["changed"], false);
        assert_eq!(
            v["msg"],
            format!("1 of 2 flows do not match the plan: 127.0.0.1:{port}/tcp expected blocked, got closed [b]")
        );
        assert_eq!(v["results"].as_array().unwrap().len(), 2);
        assert_eq!(v["results"][0]["ok"], true);
        assert_eq!(v["results"][0]["allowed"], true);
        assert_eq!(v["mismatches"][0]["label"], "b");
        assert_eq!(v["summary"]["closed"], 2);
        assert_eq!(v["summary"]["allowed_ok"], 1);
        let lines: Vec<&str> = v["matrix"].as_str().unwrap().lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].ends_with("  OK") && lines[1].ends_with("  MISMATCH"));
        assert!(lines[0].starts_with(&format!("a  127.0.0.1:{port}/tcp  allowed  closed  ")));

        let (v, code) = run(json!({"probes": probes, "fail_on_mismatch": false}));
        assert_eq!(code, 0);
        assert!(v.get("failed").is_none());
        assert!(v["msg"].as_str().unwrap().starts_with("1 of 2 flows"));
    }

    #[test]
    fn many_mismatches_are_abbreviated() {
        let port = closed_port();
        let probes: Vec<Value> =
            (0..8).map(|_| json!({"dst": "::1", "port": port, "protocol": "tcp", "expect": "blocked"})).collect();
        let (v, _) = run(json!({"probes": probes}));
        let msg = v["msg"].as_str().unwrap();
        assert!(msg.starts_with("8 of 8 flows do not match the plan: [::1]:"), "{msg}");
        assert!(msg.ends_with("; and 3 more (see mismatches)"), "{msg}");
    }

    #[test]
    fn matrix_is_aligned() {
        let p = |label: &str, port| {
            ProbeResult::new(
                Probe::new(Ipv4Addr::LOCALHOST.into(), port, Protocol::Udp, Expect::Blocked).with_label(label),
                State::NoReply,
                String::new(),
                Duration::ZERO,
            )
        };
        let m = matrix(&[p("long label", 53), p("", 8600)]);
        assert_eq!(
            m,
            "long label  127.0.0.1:53/udp    blocked  no-reply  OK\n\
             -           127.0.0.1:8600/udp  blocked  no-reply  OK"
        );
    }
}

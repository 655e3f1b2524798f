//! Converge firewalld to a policy given on the command line (for manual lab testing).
//!
//! usage: firewalld-converge [--check] [--diff] [--restricted] [--keep-existing] [--zone=ZONE]...
//!                           [out:]SET=CIDR[,CIDR...]:PORT/PROTO[,PORT/PROTO...]...
//!
//! A spec accepts inbound from the set's networks (in every `--zone`); with `out:`, outbound to
//! them (the policy's egress accepts, in the `vorfw-egress` policy object). `--restricted`
//! restricts egress (policy target REJECT). Without `--zone`, no zone's rich rules are read or
//! touched. `--keep-existing` adds every owned ipset in the permanent configuration, with its
//! entries, to the policy (as a set without accepts), so that a lab host's other owned sets
//! survive the experiment.
//!
//! Prints `changed: true|false`, one `op:`/`restored:`/`warning:` line per item and
//! `elapsed: <ms>`; with `--diff`, the before/after renderings. Exits 1 with the error on failure.

use ipnet::IpNet;
use std::time::Instant;
use vorfw_core::policy::{Accept, Family, Policy};
use vorfw_core::Proto;
use vorfw_firewalld::apply::{converge, Target};
use vorfw_firewalld::model::PREFIX;
use vorfw_firewalld::Layer;

fn parse(spec: &str, p: &mut Policy) -> Result<(), String> {
    let (out, spec) = match spec.strip_prefix("out:") {
        Some(s) => (true, s),
        None => (false, spec),
    };
    let (set, rest) = spec.split_once('=').ok_or("missing '='")?;
    let (nets, ports) = rest.rsplit_once(':').ok_or("missing ':'")?;
    let mut fams = vec![];
    for n in nets.split(',').filter(|n| !n.is_empty()) {
        let net: IpNet =
            n.parse().or_else(|_| n.parse::<std::net::IpAddr>().map(IpNet::from)).map_err(|e| format!("{n}: {e}"))?;
        let fam = Family::of(&net);
        p.sets.entry((set.to_string(), fam)).or_default().push(net);
        if !fams.contains(&fam) {
            fams.push(fam);
        }
    }
    for pp in ports.split(',') {
        let (port, proto) = pp.split_once('/').ok_or("port without /proto")?;
        let port: u16 = port.parse().map_err(|e| format!("{port}: {e}"))?;
        let protocol = Proto::parse("protocol", proto).map_err(|e| e.to_string())?;
        for &family in &fams {
            let accepts = if out { &mut p.egress.accepts } else { &mut p.accepts };
            accepts.insert(Accept { set: set.to_string(), family, protocol, port }, Default::default());
        }
    }
    Ok(())
}

/// Owned permanent ipsets as policy sets (key: the name without prefix and family suffix).
fn keep_existing(t: &Target, p: &mut Policy) -> Result<(), String> {
    let owned = match t {
        Target::Running(f) => f.read(Layer::Permanent, &[], &[])?,
        Target::Offline(o) => o.read(&[], &[])?,
    };
    for (name, set) in owned.ipsets {
        let key = name.strip_prefix(PREFIX).and_then(|k| k.rsplit_once('-')).map(|(k, _)| k.to_string());
        let Some(key) = key else { continue };
        let nets: Result<Vec<IpNet>, String> =
            set.entries.iter().map(|e| e.parse::<IpNet>().map_err(|err| format!("{name}: {e}: {err}"))).collect();
        p.sets.entry((key, set.family)).or_insert(nets?);
    }
    Ok(())
}

fn main() {
    let mut check = false;
    let mut diff = false;
    let mut keep = false;
    let mut zones = vec![];
    let mut policy = Policy::default();
    let mut restricted = false;
    for a in std::env::args().skip(1) {
        match a.as_str() {
            "--check" => check = true,
            "--diff" => diff = true,
            "--restricted" => restricted = true,
            "--keep-existing" => keep = true,
            z if z.starts_with("--zone=") => zones.push(z["--zone=".len()..].to_string()),
            spec => {
                if let Err(e) = parse(spec, &mut policy) {
                    eprintln!("bad spec '{spec}': {e}");
                    std::process::exit(2);
                }
            }
        }
    }
    policy.set_egress_restricted(restricted);
    for nets in policy.sets.values_mut() {
        *nets = IpNet::aggregate(nets);
    }
    let t = Instant::now();
    let result = Target::detect().and_then(|target| {
        if keep {
            keep_existing(&target, &mut policy)?;
        }
        converge(&target, &policy, &zones, &[], check)
    });
    match result {
        Ok(r) => {
            let ms = t.elapsed().as_secs_f64() * 1000.0;
            println!("changed: {}", !r.ops.is_empty());
            for op in &r.ops {
                println!("op: {op}");
            }
            for x in &r.restored {
                println!("restored: {x}");
            }
            for w in &r.warnings {
                println!("warning: {w}");
            }
            if diff {
                print!("--- before\n{}+++ after\n{}", r.before, r.after);
            }
            println!("elapsed: {ms:.1} ms");
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}

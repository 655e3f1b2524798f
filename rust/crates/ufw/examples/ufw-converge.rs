//! Converge ufw to a policy given on the command line (used by tests/netns-integration.sh).
//!
//! usage: ufw-converge [--check] [--diff] [--restricted] [out:]SET=CIDR[,CIDR...]:PORT/PROTO[,PORT/PROTO...]...
//!
//! A spec accepts inbound from the set's networks; with `out:`, outbound to them (the policy's
//! egress accepts). `--restricted` restricts egress (default outgoing policy reject). The
//! inbound set `ctl` is the lockout guard (rule id `lockout-guard`), whose replies restricted
//! egress allows.
//!
//! `VORFW_UFW_OUTPUT_RECORD` overrides where the outgoing policy is recorded (default
//! `/etc/vorstream-firewall/ufw-output-policy`), for sandboxes that only have private copies
//! of ufw's own files.
//!
//! Prints `changed: true|false`, one `change:`/`warning:` line per item and `elapsed: <ms>`;
//! with `--diff`, the before/after renderings. Exits 1 with the error on failure.

use ipnet::IpNet;
use std::time::Instant;
use vorfw_core::policy::{Accept, Family, Policy, GUARD_ID, GUARD_SET};
use vorfw_core::Proto;

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
            let ids = accepts.entry(Accept { set: set.to_string(), family, protocol, port }).or_default();
            if !out && set == GUARD_SET {
                ids.insert(GUARD_ID.to_string());
            }
        }
    }
    Ok(())
}

fn main() {
    let mut check = false;
    let mut diff = false;
    let mut policy = Policy::default();
    let mut restricted = false;
    for a in std::env::args().skip(1) {
        match a.as_str() {
            "--check" => check = true,
            "--diff" => diff = true,
            "--restricted" => restricted = true,
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
    let mut paths = vorfw_ufw::Paths::default();
    if let Some(p) = std::env::var_os("VORFW_UFW_OUTPUT_RECORD") {
        paths.output_record = p.into();
    }
    match vorfw_ufw::converge_at(&paths, &policy, check) {
        Ok(r) => {
            let ms = t.elapsed().as_secs_f64() * 1000.0;
            println!("changed: {}", r.changed);
            for c in &r.changes {
                println!("change: {c}");
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

//! The `vorfw-entra` binary: subcommands, exit codes, and proxy settings from the environment.

#[path = "../../entra/tests/common/mod.rs"]
mod common;

use std::process::{Command, Output};

use common::{bytes, pki, ConnectProxy, Reply, Server, TempDir, GOV, PUBLIC};

const PROXY_VARS: [&str; 8] =
    ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"];

fn bin(state: &std::path::Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_vorfw-entra"));
    c.arg("--state-dir").arg(state).args(args);
    for v in PROXY_VARS {
        c.env_remove(v);
    }
    c.env_remove("VORFW_ENTRA_STATE_DIR");
    c
}

fn run(mut c: impl std::borrow::BorrowMut<Command>) -> (i32, String, String) {
    let Output { status, stdout, stderr } = c.borrow_mut().output().unwrap();
    (status.code().unwrap_or(-1), String::from_utf8_lossy(&stdout).into(), String::from_utf8_lossy(&stderr).into())
}

#[test]
fn fetch_show_diff_status() {
    let dd = common::data_dir();
    let d = TempDir::new("cli");
    let f = |n: &str| dd.join(n).display().to_string();

    let (code, out, _) = run(bin(d.path(), &["status"]));
    assert_eq!(code, 1);
    assert!(out.contains("no refresh recorded"));

    let (code, out, err) = run(bin(d.path(), &["fetch", "--file", &f(PUBLIC[0]), "--now", "2025-07-14T06:00:00Z"]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("applied ServiceTags_Public_20250714.json"), "{out}");
    assert!(out.contains("changeNumber 362 (first list): 214 added"), "{out}");

    let (code, out, _) = run(bin(d.path(), &["show"]));
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 214);
    assert!(out.lines().all(|l| l.parse::<ipnet::IpNet>().is_ok()));
    let (_, out, _) = run(bin(d.path(), &["show", "--format", "json"]));
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["change_number"], 362);
    assert_eq!(j["ipv4"].as_array().unwrap().len(), 199);

    // diff: what 07-21 would change, nothing written.
    let before = common::snapshot(d.path(), &[]);
    let (code, out, err) = run(bin(d.path(), &["diff", "--file", &f(PUBLIC[1]), "--now", "2025-07-21T06:00:00Z"]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("would apply"), "{out}");
    assert!(out.contains("+ 13.87.32.18/32"), "{out}");
    assert!(out.contains("- 13.87.16.0/26 (removed; allowed until 2025-08-04T06:00:00Z)"), "{out}");
    assert_eq!(common::snapshot(d.path(), &[]), before);
    let (_, out, _) =
        run(bin(d.path(), &["diff", "--file", &f(PUBLIC[1]), "--format", "json", "--now", "2025-07-21T06:00:00Z"]));
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["diff"]["added"].as_array().unwrap().len(), 5);
    assert_eq!(j["dry_run"], true);

    // A failing fetch: exit 1, reason on stderr and in the status.
    let (code, _, err) = run(bin(d.path(), &["fetch", "--file", &f(GOV)]));
    assert_eq!(code, 1);
    assert!(err.contains("[wrong_cloud]") && err.contains("expected Public"), "{err}");
    let (code, out, _) = run(bin(d.path(), &["status"]));
    assert_eq!(code, 1);
    assert!(out.starts_with("FAILED"), "{out}");
    assert!(out.contains("changeNumber 362, 214 prefixes"), "{out}");
    assert!(out.contains("last success 2025-07-14T06:00:00Z"), "{out}");

    // Options: a 50% removal share and a short grace, through the command line.
    let (code, _, err) = run(bin(
        d.path(),
        &[
            "fetch",
            "--file",
            &f(PUBLIC[1]),
            "--grace",
            "1d",
            "--max-removal-share",
            "50%",
            "--now",
            "2025-07-21T06:00:00Z",
        ],
    ));
    assert_eq!(code, 0, "{err}");
    let (code, out, _) = run(bin(d.path(), &["status", "--format", "json", "--now", "2025-07-21T07:00:00Z"]));
    assert_eq!(code, 0, "{out}");
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["ok"], true);
    assert_eq!(j["prefixes"]["in_grace"], 3);
    let (_, out, _) =
        run(bin(d.path(), &["fetch", "--file", &f(PUBLIC[2]), "--grace", "1d", "--now", "2025-07-28T06:00:00Z"]));
    assert!(out.contains("x 13.87.16.0/26 (grace over)"), "{out}");
}

#[test]
fn usage_errors_exit_2() {
    let d = TempDir::new("usage");
    let (code, _, err) = run(bin(d.path(), &["fetch", "--url", "https://x.invalid/a.json", "--file", "a.json"]));
    assert_eq!(code, 2, "{err}");
    let (code, _, _) = run(bin(d.path(), &["fetch", "--grace", "soon"]));
    assert_eq!(code, 2);
    let (code, _, _) = run(bin(d.path(), &["fetch", "--cloud", "mars"]));
    assert_eq!(code, 2);
    let (code, out, _) = run(bin(d.path(), &["--help"]));
    assert_eq!(code, 0);
    for sub in ["fetch", "show", "diff", "status"] {
        assert!(out.contains(sub), "{out}");
    }
}

#[test]
fn proxy_from_the_environment() {
    let pki = pki();
    let etc = TempDir::new("envproxy-etc");
    let ca = etc.write("ca.pem", pki.ca_pem.as_bytes());
    let server = Server::start(pki.server);
    let path = format!("/mirror/{}", PUBLIC[0]);
    server.set(&path, Reply::json(bytes(PUBLIC[0])));
    let url = server.url(&path);
    let proxy = ConnectProxy::start();
    let args = ["fetch", "--dry-run", "--url", &url, "--ca-file", ca.to_str().unwrap()];

    let d = TempDir::new("envproxy");
    let (code, _, err) = run(bin(d.path(), &args).env("HTTPS_PROXY", proxy.url()));
    assert_eq!(code, 0, "{err}");
    assert_eq!(proxy.targets.lock().unwrap().clone(), vec![server.addr.to_string()]);

    let (code, _, err) = run(bin(d.path(), &args).env("https_proxy", proxy.url()).env("NO_PROXY", "127.0.0.1"));
    assert_eq!(code, 0, "{err}");
    assert_eq!(proxy.targets.lock().unwrap().len(), 1, "NO_PROXY bypasses the proxy");

    let (code, _, err) =
        run(bin(d.path(), &["fetch", "--dry-run", "--no-proxy", "--url", &url, "--ca-file", ca.to_str().unwrap()])
            .env("HTTPS_PROXY", proxy.url()));
    assert_eq!(code, 0, "{err}");
    assert_eq!(proxy.targets.lock().unwrap().len(), 1, "--no-proxy ignores the environment");
    assert_eq!(server.hits(&path), 3);
}

#[test]
fn status_tells_ok_held_failed_and_stale_apart() {
    let dd = common::data_dir();
    let d = TempDir::new("cli-status");
    let f = |n: &str| dd.join(n).display().to_string();
    let status = |now: &str, extra: &[&str]| {
        let mut args = vec!["status", "--now", now];
        args.extend(extra);
        run(bin(d.path(), &args))
    };
    let (code, _, err) = run(bin(d.path(), &["fetch", "--file", &f(PUBLIC[3]), "--now", "2025-08-04T06:00:00Z"]));
    assert_eq!(code, 0, "{err}");
    let (code, out, _) = status("2025-08-05T06:00:00Z", &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("OK at 2025-08-04T06:00:00Z"), "{out}");
    assert!(out.contains("newest accepted file: ServiceTags_Public_20250804.json (changeNumber 365), first accepted 2025-08-04T06:00:00Z, 1day ago"), "{out}");

    // A mass removal: the refresh succeeds, the removal is held, status exits 3.
    let gutted = d.write("ServiceTags_Public_20250811.json", &common::crafted(PUBLIC[3], 366, |p| p.truncate(100)));
    let (code, out, err) =
        run(bin(d.path(), &["fetch", "--file", gutted.to_str().unwrap(), "--now", "2025-08-11T06:00:00Z"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("! ") && l.ends_with("(removal held; still allowed)")).count(),
        116,
        "{out}"
    );
    assert!(err.contains("removal held: 116 of 216 published prefixes (54%)"), "{err}");
    let (code, out, _) = status("2025-08-12T06:00:00Z", &[]);
    assert_eq!(code, 3, "{out}");
    assert!(out.starts_with("OK, REMOVALS HELD at 2025-08-11T06:00:00Z"), "{out}");
    assert!(out.contains("held since 2025-08-11T06:00:00Z: 116 prefix(es) (mass_removal;"), "{out}");
    assert!(
        out.contains(
            "takes effect on the 4th consecutive new file without them (3 more, expected 2025-09-01T06:00:00Z)"
        ),
        "{out}"
    );
    let (code, out, _) = status("2025-08-12T06:00:00Z", &["--format", "json"]);
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!((code, j["condition"].as_str(), j["exit_code"].as_i64()), (3, Some("held"), Some(3)));
    assert_eq!(j["held"][0]["prefixes"].as_array().unwrap().len(), 116);
    assert_eq!(j["newest_file"]["age_secs"], 86400);

    // No new file for five weeks: stale (exit 4), unless the check is off.
    let (code, out, _) = status("2025-09-15T06:00:00Z", &[]);
    assert_eq!(code, 4, "{out}");
    assert!(out.contains("STALE (older than 30days)"), "{out}");
    assert_eq!(status("2025-09-15T06:00:00Z", &["--max-age", "0"]).0, 3);

    // A refused file: failed (exit 1), the held removal still listed.
    let wide = d.write("wide.json", &common::crafted(PUBLIC[3], 367, |p| p.push("0.0.0.0/0".into())));
    let (code, _, err) =
        run(bin(d.path(), &["fetch", "--file", wide.to_str().unwrap(), "--now", "2025-08-18T06:00:00Z"]));
    assert_eq!(code, 1);
    assert!(err.contains("[implausible]") && err.contains("0.0.0.0/0"), "{err}");
    let (code, out, _) = status("2025-08-18T07:00:00Z", &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.starts_with("FAILED") && out.contains("held since"), "{out}");
}

#[test]
fn a_closed_stdout_ends_quietly() {
    let dd = common::data_dir();
    let d = TempDir::new("cli-pipe");
    let file = dd.join(PUBLIC[0]).display().to_string();
    // `vorfw-entra fetch ... | head -0` and `show | head -1`: the reader is gone before we write.
    for args in [
        vec!["fetch", "--file", file.as_str(), "--now", "2025-07-14T06:00:00Z"],
        vec!["show"],
        vec!["show", "--format", "json"],
    ] {
        let mut c = bin(d.path(), &args);
        c.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
        let mut child = c.spawn().unwrap();
        drop(child.stdout.take()); // close the read end at once
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
        assert!(!err.contains("panicked") && !err.contains("Broken pipe"), "{args:?}: {err}");
    }
    // The fetch completed: the state is there and consistent.
    let (code, out, _) = run(bin(d.path(), &["show"]));
    assert_eq!((code, out.lines().count()), (0, 214));
}

/// `vorfw-entra oidc refresh` (the hourly timer's entry) and `oidc status`: a resolver that never
/// answers (a bound, silent UDP socket on loopback) allows nothing on a first run, which is not
/// an error; status then says the names are failing (exit 3).
#[test]
fn oidc_refresh_and_status() {
    let dir = TempDir::new("oidc-refresh");
    let silent = std::net::UdpSocket::bind("127.0.0.77:0").unwrap();
    let port = silent.local_addr().unwrap().port().to_string();
    let resolv = dir.write("resolv.conf", b"nameserver 127.0.0.77\noptions timeout:1 attempts:1\n");
    let doc = serde_json::json!({
        "issuer": "https://idp.vorfw.test",
        "token_endpoint": "https://idp.vorfw.test/token",
        "jwks_uri": "https://keys.vorfw.test/jwks",
    });
    let discovery = dir.write("openid-configuration.json", doc.to_string().as_bytes());
    let state = dir.path().join("oidc");
    let oidc = |args: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_vorfw-entra"));
        c.arg("oidc").arg("--state-dir").arg(&state).args(args);
        run(c)
    };
    let (code, out, err) = oidc(&[
        "refresh",
        "--issuer",
        "https://idp.vorfw.test",
        "--name",
        "lab",
        "--discovery-file",
        discovery.to_str().unwrap(),
        "--resolv-conf",
        resolv.to_str().unwrap(),
        "--dns-port",
        &port,
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("lab: changed: 2 names, 0 IPv4 and 0 IPv6 addresses"), "{out}");
    assert!(err.contains("idp.vorfw.test: lookup failed"), "{err}");
    assert!(state.join("lab.json").is_file() && state.join("lab.status.json").is_file());
    let (code, out, _) = oidc(&["status"]);
    assert_eq!(code, 3, "{out}");
    assert!(out.starts_with("lab: degraded: lookups failing (addresses kept): idp.vorfw.test"), "{out}");
    drop(silent);
}

/// `vorfw-entra oidc discover` over HTTPS: the CLI's fetch options (--ca-bundle, --connect-to,
/// --no-proxy) reach the fetcher; a refused document exits 1 naming the kind.
#[test]
fn oidc_discover_over_https() {
    let pki = common::pki_for("vorfw-oidc CLI test CA", &["idp.vorfw.test", "keys.vorfw.test"]);
    let dir = TempDir::new("oidc-discover");
    let ca = dir.write("ca.pem", pki.ca_pem.as_bytes());
    let server = Server::start(pki.server);
    let port = server.addr.port();
    let issuer = format!("https://idp.vorfw.test:{port}");
    let doc = |iss: &str| {
        let d = serde_json::json!({
            "issuer": iss,
            "token_endpoint": format!("{issuer}/token"),
            "jwks_uri": format!("https://keys.vorfw.test:{port}/jwks"),
        });
        Reply::json(std::sync::Arc::new(d.to_string().into_bytes()))
    };
    server.set("/.well-known/openid-configuration", doc(&issuer));
    let discover = || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_vorfw-entra"));
        c.args(["oidc", "--state-dir"]).arg(dir.path().join("oidc")).args(["discover", "--issuer", &issuer]);
        c.arg("--ca-bundle").arg(&ca).args(["--no-proxy", "--retries", "0"]);
        c.args(["--connect-to", "idp.vorfw.test:127.0.0.1", "--connect-to", "keys.vorfw.test:127.0.0.1"]);
        run(c)
    };
    let (code, out, err) = discover();
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        vec![
            format!("vorfw ({issuer}):"),
            format!("  idp.vorfw.test:{port}"),
            format!("  keys.vorfw.test:{port}"),
            format!(
                "  warning: discovery document {issuer}/.well-known/openid-configuration has no authorization_endpoint"
            ),
        ]
    );
    server.set("/.well-known/openid-configuration", doc("https://other.vorfw.test"));
    let (code, _, err) = discover();
    assert_eq!(code, 1);
    assert!(err.contains("error [issuer_mismatch]") && err.contains("other.vorfw.test"), "{err}");
}

"""`vorfw oidc` as an operator and the timer run it: discovery documents from files (the
controller's mode; the HTTPS fetch is tested in rust/crates/oidc/tests/https.rs), names resolved
by a real dnsmasq on 127.0.0.78 and a free port (never forwarding anywhere), the per-provider
state and status files, exit codes for monitoring. The answers are documentation addresses,
which only a lab may allow (--allow-special-use)."""
from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

DNS_ADDR = "127.0.0.78"
IDP = "idp.vorfw.test"
KEYS = "keys.vorfw.test"
ISSUER = f"https://{IDP}"


def dnsmasq_binary() -> str:
    found = shutil.which("dnsmasq") or next(
        (p for p in ("/usr/sbin/dnsmasq", "/sbin/dnsmasq") if Path(p).is_file()), None)
    if not found:
        pytest.fail("dnsmasq is missing: install it with `apt-get install dnsmasq-base` (make setup does)")
    return found


class Dns:
    """dnsmasq answering only the given host records, for `vorfw.test` only."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.proc = None
        with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_DGRAM)) as s:
            s.bind((DNS_ADDR, 0))
            self.port = s.getsockname()[1]
        self.resolv_conf = tmp / "resolv.conf"
        self.resolv_conf.write_text(f"nameserver {DNS_ADDR}\noptions timeout:1 attempts:1\n")

    def start(self, records: dict[str, list[str]]):
        args = [dnsmasq_binary(), "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
                "--bind-interfaces", "--pid-file=", f"--listen-address={DNS_ADDR}", f"--port={self.port}",
                "--local=/vorfw.test/", f"--log-facility={self.tmp / 'dnsmasq.log'}"]
        if Path("/proc/self").stat().st_uid == 0:
            args.append("--user=root")
        args += [f"--host-record={name},{','.join(addrs)},60" for name, addrs in records.items()]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while True:
            with contextlib.closing(socket.socket()) as s:
                if s.connect_ex((DNS_ADDR, self.port)) == 0:
                    return
            assert self.proc.poll() is None, self.proc.stderr.read().decode()
            assert time.monotonic() < deadline, "dnsmasq did not start"
            time.sleep(0.05)

    def stop(self):
        if self.proc:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def args(self):
        return ["--resolv-conf", self.resolv_conf, "--dns-port", self.port]


@pytest.fixture
def dns(tmp_path):
    d = Dns(tmp_path)
    d.start({IDP: ["192.0.2.10", "2001:db8::10"], KEYS: ["192.0.2.20"]})
    yield d
    d.stop()


def discovery_doc(tmp_path, issuer=ISSUER, **extra) -> Path:
    doc = {"issuer": issuer, "authorization_endpoint": f"{ISSUER}/auth", "token_endpoint": f"{ISSUER}/token",
           "jwks_uri": f"https://{KEYS}/jwks", **extra}
    p = tmp_path / "openid-configuration.json"
    p.write_text(json.dumps(doc))
    return p


def oidc(vorfw, tmp_path, *args):
    return subprocess.run([str(vorfw), "oidc", "--state-dir", str(tmp_path / "state"), *map(str, args)],
                          capture_output=True, text=True, check=False)


def one(tmp_path, doc=None):
    return ["--issuer", ISSUER, "--name", "lab", "--discovery-file", doc or discovery_doc(tmp_path)]


def test_discover_prints_the_names_and_ports(vorfw, tmp_path):
    r = oidc(vorfw, tmp_path, "discover", *one(tmp_path), "--extra-name", "cdn.vorfw.test:8443")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["lab (https://idp.vorfw.test):", "  cdn.vorfw.test:8443",
                                     "  idp.vorfw.test:443", "  keys.vorfw.test:443"], r.stdout
    r = oidc(vorfw, tmp_path, "--json", "discover", *one(tmp_path))
    doc = json.loads(r.stdout)
    assert doc[0]["names"] == [IDP, KEYS] and doc[0]["ports"] == [443] and doc[0]["ok"], doc
    assert not (tmp_path / "state").exists(), "discover writes nothing"


def test_discover_refusals_exit_1_with_the_reason(vorfw, tmp_path):
    r = oidc(vorfw, tmp_path, "discover", *one(tmp_path, discovery_doc(tmp_path, issuer="https://evil.vorfw.test")))
    assert r.returncode == 1 and "[issuer_mismatch]" in r.stderr and "evil.vorfw.test" in r.stderr, r.stderr
    r = oidc(vorfw, tmp_path, "discover",
             *one(tmp_path, discovery_doc(tmp_path, token_endpoint=f"http://{IDP}/token")))
    assert r.returncode == 1 and "[insecure]" in r.stderr and "token_endpoint" in r.stderr, r.stderr
    r = oidc(vorfw, tmp_path, "discover", "--issuer", "http://idp.vorfw.test", "--discovery-file",
             discovery_doc(tmp_path))
    assert r.returncode == 1 and "is not an https URL" in r.stderr and "only HTTPS is allowed" in r.stderr, r.stderr
    r = oidc(vorfw, tmp_path, "discover")
    assert r.returncode == 2 and "--providers" in r.stderr, r.stderr


def test_a_providers_file(vorfw, tmp_path):
    providers = tmp_path / "providers.json"
    providers.write_text(json.dumps({"host_firewall_oidc_providers": [
        {"issuer": ISSUER, "name": "lab"}, {"issuer": "https://kc.vorfw.test/realms/vor"}]}))
    r = oidc(vorfw, tmp_path, "discover", "--providers", providers, "--discovery-file", discovery_doc(tmp_path))
    assert r.returncode == 1 and "--discovery-file is for one provider; 2 are configured" in r.stderr, r.stderr
    providers.write_text(json.dumps([{"issuer": ISSUER, "adresses": "dns"}]))
    r = oidc(vorfw, tmp_path, "discover", "--providers", providers)
    assert r.returncode == 1 and "adresses" in r.stderr and "[config]" in r.stderr, r.stderr


def test_resolve_show_diff_status(vorfw, tmp_path, dns):
    lab = ["--allow-special-use", *dns.args()]
    r = oidc(vorfw, tmp_path, "resolve", *one(tmp_path), *lab)
    assert r.returncode == 0, r.stderr
    assert "lab: changed: 2 names, 2 IPv4 and 1 IPv6 addresses" in r.stdout, r.stdout
    assert {"+ 192.0.2.10", "+ 192.0.2.20", "+ 2001:db8::10"} <= set(r.stdout.splitlines()), r.stdout
    state = tmp_path / "state" / "lab.json"
    saved = json.loads(state.read_text())
    assert saved["sets"] == {"ipv4": ["192.0.2.10", "192.0.2.20"], "ipv6": ["2001:db8::10"]}, saved["sets"]
    r = oidc(vorfw, tmp_path, "show")
    assert r.returncode == 0 and "  idp.vorfw.test" in r.stdout and "    2001:db8::10" in r.stdout, r.stdout
    r = oidc(vorfw, tmp_path, "status")
    assert r.returncode == 0 and r.stdout.startswith("lab: ok: "), r.stdout

    # The answer changes: check mode and diff show it and write nothing.
    dns.stop()
    dns.start({IDP: ["192.0.2.11", "2001:db8::10"], KEYS: ["192.0.2.20"]})
    before = state.read_bytes()
    r = oidc(vorfw, tmp_path, "resolve", "--check", *one(tmp_path), *lab)
    assert r.returncode == 0 and "lab: would change:" in r.stdout and "+ 192.0.2.11" in r.stdout, r.stdout
    assert "~ 192.0.2.10 (no longer answered; kept for the grace period)" in r.stdout, r.stdout
    r = oidc(vorfw, tmp_path, "diff", *one(tmp_path), *lab)
    assert r.returncode == 0 and r.stdout.splitlines()[0] == "lab: 1 added, 0 removed", r.stdout
    r = oidc(vorfw, tmp_path, "--json", "diff", *one(tmp_path), *lab)
    doc = json.loads(r.stdout)[0]
    assert doc["added"] == ["192.0.2.11"] and doc["entered_grace"] == ["192.0.2.10"] and not doc["saved"], doc
    assert state.read_bytes() == before, "check and diff write nothing"
    r = oidc(vorfw, tmp_path, "resolve", *one(tmp_path), *lab)
    assert r.returncode == 0, r.stderr
    r = oidc(vorfw, tmp_path, "show")
    assert "    192.0.2.10 (in grace until " in r.stdout and "    192.0.2.11\n" in r.stdout, r.stdout

    # The resolver stops: the addresses stay, status says degraded (exit 3).
    dns.stop()
    r = oidc(vorfw, tmp_path, "resolve", *one(tmp_path), *lab)
    assert r.returncode == 0 and "lookup failed" in r.stderr, r.stderr
    assert json.loads(state.read_text())["sets"]["ipv4"] == ["192.0.2.10", "192.0.2.11", "192.0.2.20"]
    r = oidc(vorfw, tmp_path, "--json", "status")
    assert r.returncode == 3 and json.loads(r.stdout)[0]["health"] == "degraded", r.stdout

    # A refused document: the state stays byte for byte, status fails (exit 1).
    before = state.read_bytes()
    r = oidc(vorfw, tmp_path, "resolve", *one(tmp_path, discovery_doc(tmp_path, issuer="https://evil.vorfw.test")),
             *lab)
    assert r.returncode == 1 and "the stored state is unchanged" in r.stderr, r.stderr
    assert state.read_bytes() == before
    r = oidc(vorfw, tmp_path, "--json", "status")
    st = json.loads(r.stdout)[0]
    assert r.returncode == 1 and st["health"] == "failing" and st["error_kind"] == "issuer_mismatch", st
    assert st["last_success"] and st["consecutive_failures"] == 1, st


def test_status_overdue_and_never_refreshed(vorfw, tmp_path, dns):
    r = oidc(vorfw, tmp_path, "status")
    assert r.returncode == 1 and "no provider state in" in r.stderr, r.stderr
    r = oidc(vorfw, tmp_path, "resolve", *one(tmp_path), "--allow-special-use", *dns.args())
    assert r.returncode == 0, r.stderr
    r = oidc(vorfw, tmp_path, "status", "--now", "2099-01-01T00:00:00Z")
    assert r.returncode == 4 and "lab: overdue: next refresh was due" in r.stdout, r.stdout
    r = oidc(vorfw, tmp_path, "status", "--provider", "other")
    assert r.returncode == 1 and "other: failing: never refreshed" in r.stdout, r.stdout


def test_special_use_answers_are_refused_without_the_lab_switch(vorfw, tmp_path, dns):
    r = oidc(vorfw, tmp_path, "--json", "resolve", *one(tmp_path), *dns.args())
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)[0]
    assert doc["ipv4"] == [] and doc["ipv6"] == [] and len(doc["failed"]) == 2, doc
    assert "192.0.2.10" in r.stderr, r.stderr


def test_refresh_if_due_honours_the_ttls(vorfw, tmp_path, dns):
    lab = ["--allow-special-use", *dns.args()]
    r = oidc(vorfw, tmp_path, "refresh", "--if-due", *one(tmp_path), *lab, "--now", "2026-01-01T00:00:00Z")
    assert r.returncode == 0 and r.stdout.startswith("lab: changed:"), r.stdout + r.stderr
    # TTL 60 s, clamped to the 5-minute minimum: not due 4 minutes later, due 6 minutes later.
    r = oidc(vorfw, tmp_path, "refresh", "--if-due", *one(tmp_path), *lab, "--now", "2026-01-01T00:04:00Z")
    assert r.returncode == 0 and r.stdout == "lab: not due until 2026-01-01T00:05:00Z\n", r.stdout
    r = oidc(vorfw, tmp_path, "refresh", "--if-due", *one(tmp_path), *lab, "--now", "2026-01-01T00:06:00Z")
    assert r.returncode == 0 and r.stdout.startswith("lab: unchanged:"), r.stdout
    saved = json.loads((tmp_path / "state" / "lab.json").read_text())
    assert saved["last_success"] == "2026-01-01T00:06:00Z", saved["last_success"]


def test_controller_mode_saves_and_reads_a_discovery_dir(vorfw, tmp_path, dns):
    """The controller's `discover --save-dir` keeps each accepted document's bytes as
    `<id>.json`; a host's `resolve`/`refresh --discovery-dir` reads them (validated the same way),
    and a missing one fails naming the provider and the path, the state left as it was."""
    lab = ["--allow-special-use", *dns.args()]
    source = discovery_doc(tmp_path)
    pushed = tmp_path / "pushed"
    r = oidc(vorfw, tmp_path, "--json", "discover", *one(tmp_path, source), "--save-dir", pushed)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)[0]
    assert doc["provider"] == "lab" and doc["ok"] and doc["saved"] == str(pushed / "lab.json"), doc
    assert (pushed / "lab.json").read_bytes() == source.read_bytes()
    assert not (tmp_path / "state").exists(), "discover keeps no state"

    by_dir = ["--issuer", ISSUER, "--name", "lab", "--discovery-dir", pushed]
    r = oidc(vorfw, tmp_path, "--json", "resolve", *by_dir, *lab)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)[0]["names"] == [IDP, KEYS], r.stdout
    state = tmp_path / "state" / "lab.json"
    before = state.read_bytes()

    (pushed / "lab.json").unlink()
    r = oidc(vorfw, tmp_path, "refresh", *by_dir, *lab)
    assert r.returncode == 1 and "[config]" in r.stderr and '"lab"' in r.stderr, r.stderr
    assert str(pushed / "lab.json") in r.stderr and "the stored state is unchanged" in r.stderr, r.stderr
    assert state.read_bytes() == before

    # A refused document saves nothing.
    r = oidc(vorfw, tmp_path, "discover", *one(tmp_path, discovery_doc(tmp_path, issuer="https://evil.vorfw.test")),
             "--save-dir", pushed)
    assert r.returncode == 1 and "[issuer_mismatch]" in r.stderr and not (pushed / "lab.json").exists(), r.stderr

    r = oidc(vorfw, tmp_path, "resolve", *one(tmp_path), "--discovery-dir", pushed, *lab)
    assert r.returncode == 2 and "cannot be used with" in r.stderr, r.stderr

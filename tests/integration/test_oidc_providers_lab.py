"""Another OIDC provider in the lab, beside Entra ID: a `dns` provider (host_firewall_oidc_providers)
whose discovery document is served over HTTPS with a test CA on a lab address, its jwks_uri on a
second name, and whose names a real DNS server answers: dnsmasq in a network namespace of its own
(vl-oidcdns) on the lab bridge. Each restricted OIDC client (one per backend: firewalld on 0.9 with
iptables, Debian's firewalld, nftables, ufw) reaches the issuer and the jwks host on 443 and
nothing else; a non-client reaches neither. A changed DNS answer: after the next refresh (the
timer's own command) the new address is reachable and the old one still is, until its grace
ends. The DNS server stopped: the set stays. No packet leaves the lab. Runs after
test_oidc_egress_lab.py and leaves the lab with open egress again."""
from __future__ import annotations

import http.server
import json
import re
import shlex
import ssl
import subprocess
import threading
import time
from pathlib import Path

import pytest

from helpers import ROOT
from labkit import BACKENDS, on, playbook, reach, recap

pytestmark = pytest.mark.usefixtures("lab_up")

OIDC = ["super1", "django1", "vault1", "sdk1"]
PORT = json.loads((ROOT / "data" / "port_matrix.json").read_text())["egress"]["oidc_provider"]["port"]
ISSUER_HOST, KEYS_HOST = "idp.vorlab.test", "keys.vorlab.test"
ISSUER = f"https://{ISSUER_HOST}/realms/vor"
IDP_ADDR, KEYS_ADDR, KEYS_NEW, OUTSIDE = "10.231.0.211", "10.231.0.212", "10.231.0.213", "10.231.0.214"
DNS_ADDR = "10.231.0.53"
NS, VETH = "vl-oidcdns", "vloidcdns"
SHARED = Path("/var/lib/vorlab")           # the lab hosts see the root file system's /var/lib/vorlab
CA = SHARED / "oidc-lab-ca.pem"
RESOLV = SHARED / "oidc-lab-resolv.conf"
STATE = "/var/lib/vorstream-firewall/oidc"
UNIT = "/etc/systemd/system/vorstream-oidc-refresh"
GRACE = 20                                  # seconds an address stays after it left the answers
WEEK2 = ROOT / "tests" / "fixtures" / "servicetags" / "ServiceTags_Public_lab_week2.json"
EXTRA = {
    "host_firewall_egress": "restricted",
    "entra_egress_file": str(WEEK2),        # the Entra ID list as test_oidc_egress_lab.py left it
    "host_firewall_dns_servers": [DNS_ADDR],
    "host_firewall_oidc_providers": [{"issuer": ISSUER, "name": "labidp"}],
    "entra_egress_ca_file": str(CA),
    # The fetch resolves through the system resolver, which the lab does not have; the set's
    # names are resolved through the lab's DNS server.
    "entra_egress_oidc_args": ["--connect-to", f"{ISSUER_HOST}:{IDP_ADDR}", "--resolv-conf", str(RESOLV),
                               "--grace", f"{GRACE}s"],
}
DISCOVERY = {
    "issuer": ISSUER,
    "authorization_endpoint": f"{ISSUER}/protocol/openid-connect/auth",
    "token_endpoint": f"{ISSUER}/protocol/openid-connect/token",
    "userinfo_endpoint": f"{ISSUER}/protocol/openid-connect/userinfo",
    "end_session_endpoint": f"{ISSUER}/protocol/openid-connect/logout",
    "jwks_uri": f"https://{KEYS_HOST}/realms/vor/certs",
    "response_types_supported": ["code"],
}


def ok(r):
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-2000:]
    return r


def sh(*args, check=True):
    return subprocess.run(list(map(str, args)), capture_output=True, text=True, check=check)


def make_pki(tmp: Path) -> tuple[Path, Path]:
    """A test CA (written where the lab hosts read it) and a server certificate for both names."""
    ca_key, srv_key, csr, srv = tmp / "ca.key", tmp / "srv.key", tmp / "srv.csr", tmp / "srv.pem"
    ext = tmp / "ext.cnf"
    ext.write_text(f"subjectAltName=DNS:{ISSUER_HOST},DNS:{KEYS_HOST}\nbasicConstraints=CA:FALSE\n"
                   "keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    sh("openssl", "req", "-x509", *ec, "-keyout", ca_key, "-out", CA, "-days", "2", "-subj", "/CN=vorlab OIDC test CA")
    sh("openssl", "req", *ec, "-keyout", srv_key, "-out", csr, "-subj", f"/CN={ISSUER_HOST}")
    sh("openssl", "x509", "-req", "-in", csr, "-CA", CA, "-CAkey", ca_key, "-CAcreateserial", "-out", srv,
       "-days", "2", "-extfile", ext)
    return srv, srv_key


class Dns:
    """dnsmasq in its own network namespace on the lab bridge, answering only vorlab.test."""

    def __init__(self, tmp: Path):
        self.tmp, self.proc = tmp, None

    def up(self):
        sh("ip", "netns", "add", NS)
        sh("ip", "link", "add", VETH + "0", "type", "veth", "peer", "name", VETH + "1")
        sh("ip", "link", "set", VETH + "1", "netns", NS)
        sh("ip", "link", "set", VETH + "0", "master", "vorlab0", "up")
        for c in (["addr", "add", f"{DNS_ADDR}/24", "dev", VETH + "1"], ["link", "set", VETH + "1", "up"],
                  ["link", "set", "lo", "up"]):
            sh("ip", "-n", NS, *c)
        RESOLV.write_text(f"nameserver {DNS_ADDR}\noptions timeout:1 attempts:2\n")

    def start(self, keys_addr: str):
        args = ["ip", "netns", "exec", NS, "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv",
                "--no-hosts", "--bind-interfaces", "--pid-file=", f"--listen-address={DNS_ADDR}", "--user=root",
                "--local=/vorlab.test/", f"--log-facility={self.tmp / 'dnsmasq.log'}",
                f"--host-record={ISSUER_HOST},{IDP_ADDR},30", f"--host-record={KEYS_HOST},{keys_addr},30"]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while sh("ip", "netns", "exec", NS, "ss", "-Hlun", f"src {DNS_ADDR}", check=False).stdout.strip() == "":
            assert self.proc.poll() is None, self.proc.stderr.read().decode()
            assert time.monotonic() < deadline, "dnsmasq did not start"
            time.sleep(0.1)

    def stop(self):
        if self.proc:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def down(self):
        self.stop()
        sh("ip", "link", "del", VETH + "0", check=False)
        sh("ip", "netns", "del", NS, check=False)
        RESOLV.unlink(missing_ok=True)


class Discovery(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        body = json.dumps(DISCOVERY).encode() if self.path.endswith("/.well-known/openid-configuration") else b"{}"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def idp(tmp_path_factory):
    """The provider: HTTPS on the issuer's and the jwks host's lab addresses (the 'Internet'),
    a listener outside the provider, and its DNS server."""
    tmp = tmp_path_factory.mktemp("oidc-lab")
    srv, key = make_pki(tmp)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(srv, key)
    servers, addrs = [], [IDP_ADDR, KEYS_ADDR, KEYS_NEW, OUTSIDE]
    for a in addrs:
        sh("ip", "addr", "replace", f"{a}/32", "dev", "vorlab0")
        s = http.server.ThreadingHTTPServer((a, PORT), Discovery)
        s.socket = ctx.wrap_socket(s.socket, server_side=True, do_handshake_on_connect=False)
        threading.Thread(target=s.serve_forever, daemon=True).start()
        servers.append(s)
    dns = Dns(tmp)
    dns.down()  # a run that was killed may have left it
    dns.up()
    dns.start(KEYS_ADDR)
    yield dns
    dns.down()
    for s in servers:
        s.shutdown()
        s.server_close()
    for a in addrs:
        sh("ip", "addr", "del", f"{a}/32", "dev", "vorlab0", check=False)
    CA.unlink(missing_ok=True)


def site(*extra):
    return playbook("site.yml", "-e", json.dumps(EXTRA), *extra)


def refresh(host) -> str:
    """The OIDC timer's own command, run now (without --if-due: the next refresh, whenever due)."""
    line = re.search(r"^ExecStart=(.*)$", on(host, f"cat {UNIT}.service"), re.M).group(1)
    words = [w.replace("%%", "%").replace("$$", "$") for w in shlex.split(line) if w != "--if-due"]
    return on(host, shlex.join(words) + "; echo rc=$?")


def test_restricted_oidc_clients_reach_the_provider_and_nothing_else(idp):
    r = ok(site("-v"))
    for h in OIDC:
        for a in (IDP_ADDR, KEYS_ADDR):
            assert reach(h, a, PORT), f"{h} ({BACKENDS[h]}) cannot reach the provider's {a}:{PORT}"
        assert not reach(h, OUTSIDE, PORT), f"{h} ({BACKENDS[h]}) reaches {OUTSIDE}, outside the provider"
        assert not reach(h, IDP_ADDR, 8443), f"{h} reaches the issuer on a port its URLs do not name"
        state = json.loads(on(h, f"cat {STATE}/labidp.json"))
        assert sorted(state["names"]) == [ISSUER_HOST, KEYS_HOST], state["names"]
        assert sorted(state["sets"]["ipv4"]) == [IDP_ADDR, KEYS_ADDR]
    # Every other host is restricted too (-e applies to all) but is no OIDC client.
    assert not reach("web1", IDP_ADDR, PORT) and not reach("web1", KEYS_ADDR, PORT)
    # One set per provider and family, named after it.
    assert "oidc-labidp-4" in on("vault1", "nft list table inet vorstream")
    assert "vorfw-oidc-labidp-4" in on("django1", "firewall-cmd --get-ipsets")
    assert re.search(r"443/tcp.*10\.231\.0\.212.*vorfw:oidc-labidp", on("sdk1", "ufw status"), re.I | re.S)
    assert "changed: [django1]" in r.stdout  # the first converge with the provider changed the clients
    # The re-run changes nothing.
    again = ok(site())
    assert all(v["changed"] == 0 for v in recap(again.stdout).values()), recap(again.stdout)


def test_a_changed_answer_is_reachable_and_the_old_one_stays_for_its_grace(idp):
    idp.stop()
    idp.start(KEYS_NEW)
    for h in OIDC:
        out = refresh(h)
        assert "rc=0" in out, out
        assert reach(h, KEYS_NEW, PORT), f"{h} ({BACKENDS[h]}): the new address is not reachable: {out}"
        assert reach(h, KEYS_ADDR, PORT), f"{h} ({BACKENDS[h]}): the old address went before its grace ended"
    time.sleep(GRACE + 2)
    for h in OIDC:
        out = refresh(h)
        assert "rc=0" in out, out
        assert not reach(h, KEYS_ADDR, PORT), f"{h} ({BACKENDS[h]}): the old address outlived its grace: {out}"
        assert reach(h, KEYS_NEW, PORT) and reach(h, IDP_ADDR, PORT)


def test_the_dns_server_stopped_keeps_the_set(idp):
    idp.stop()
    for h in OIDC:
        out = refresh(h)
        assert reach(h, KEYS_NEW, PORT) and reach(h, IDP_ADDR, PORT), f"{h} ({BACKENDS[h]}) lost addresses: {out}"
        status = json.loads(on(h, f"cat {STATE}/labidp.status.json"))
        assert sorted(name for name, _why in status["failing_names"]) == [ISSUER_HOST, KEYS_HOST], status
    idp.start(KEYS_NEW)


def test_back_to_open_egress_without_the_provider():
    vars_ = {"entra_egress_file": str(WEEK2)}
    ok(playbook("site.yml", "-e", json.dumps(vars_)))
    for h in OIDC:
        assert "oidc-labidp" not in on(h, "nft list ruleset 2>/dev/null; ufw status 2>/dev/null; "
                                          "firewall-cmd --get-ipsets 2>/dev/null; true")

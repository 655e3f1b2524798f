#!/usr/bin/env python3
"""The lab's OIDC provider: a `dns` provider for host_firewall_oidc_providers, started and
stopped with the lab (tests/lab/lab.sh up/down).

- DNS: dnsmasq (Debian's dnsmasq-base) in a network namespace of its own (vorlab-dns) on the
  lab bridge, at DNS_ADDR. It answers for vorlab.test only, from a hosts file under the state
  dir (TTL 30 s); every lab host's /etc/resolv.conf names it.
- HTTPS: the discovery document of ISSUER on the issuer's address, its jwks_uri on a second
  name (KEYS_HOST), with a certificate of a test CA (CA_FILE under the state dir, which the lab
  hosts see). The same server also answers on SPARE (where the keys host may move) and on
  OUTSIDE (a server that is not the provider), so tests can show what is and is not reachable.

Every address is a lab address on the lab bridge: no packet leaves the lab.

usage: idp.py up|down|status|serve|dns-stop|dns-start|answer NAME ADDR|dns-address|vars  [--state DIR]
"""
from __future__ import annotations

import argparse
import contextlib
import http.server
import json
import os
import signal
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

LAB_DIR = Path(__file__).resolve().parent
BRIDGE = "vorlab0"
NS, VETH = "vorlab-dns", "vorlabdns"
DNS_ADDR = "10.231.0.250"
ISSUER_HOST, KEYS_HOST = "idp.vorlab.test", "keys.vorlab.test"
ISSUER = f"https://{ISSUER_HOST}/realms/vor"
ISSUER_ADDR, KEYS_ADDR, SPARE, OUTSIDE = "10.231.0.211", "10.231.0.212", "10.231.0.213", "10.231.0.214"
NAME = "labidp"                         # its id in host_firewall_oidc_providers
SERVED = (ISSUER_ADDR, KEYS_ADDR, SPARE, OUTSIDE)  # the HTTPS server answers on each
ANSWERS = {ISSUER_HOST: ISSUER_ADDR, KEYS_HOST: KEYS_ADDR}
TTL = 30
PORT = json.loads((LAB_DIR.parent.parent / "data" / "port_matrix.json").read_text())["egress"]["oidc_provider"]["port"]
DISCOVERY = {
    "issuer": ISSUER,
    "authorization_endpoint": f"{ISSUER}/protocol/openid-connect/auth",
    "token_endpoint": f"{ISSUER}/protocol/openid-connect/token",
    "userinfo_endpoint": f"{ISSUER}/protocol/openid-connect/userinfo",
    "end_session_endpoint": f"{ISSUER}/protocol/openid-connect/logout",
    "jwks_uri": f"https://{KEYS_HOST}/realms/vor/certs",
    "response_types_supported": ["code"],
}


class Idp:
    """The provider's files and processes under <state>/idp."""

    def __init__(self, state: str):
        self.state = state.rstrip("/")
        self.dir = Path(self.state) / "idp"
        self.ca = self.dir / "ca.pem"
        self.hosts = self.dir / "hosts"
        self.dns_pid = self.dir / "dnsmasq.pid"
        self.srv_pid = self.dir / "https.pid"
        self.marker = f"{self.state}|idp"     # lab.sh down finds every lab process by it

    # -- processes ---------------------------------------------------------------------------
    def _alive(self, pidfile: Path) -> int | None:
        try:
            pid = int(pidfile.read_text().split()[0])
            env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1]
        except (OSError, ValueError, IndexError):
            return None
        return pid if f"_VORLAB_DAEMON={self.marker}".encode() in env and not stat.startswith("Z") else None

    def _env(self) -> dict:
        return {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "_VORLAB_DAEMON": self.marker}

    @staticmethod
    def _kill(pid: int | None):
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        for _attempt in range(30):
            if not Path(f"/proc/{pid}").exists():
                return
            time.sleep(0.1)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)

    # -- the pieces --------------------------------------------------------------------------
    def pki(self):
        """A test CA and a server certificate for both names, kept while valid for a day."""
        srv, key = self.dir / "server.pem", self.dir / "server.key"
        if srv.exists() and run("openssl", "x509", "-checkend", "86400", "-noout", "-in", srv, check=False).returncode == 0:
            return
        ext = self.dir / "server.ext"
        ext.write_text(f"subjectAltName=DNS:{ISSUER_HOST},DNS:{KEYS_HOST}\nbasicConstraints=CA:FALSE\n"
                       "keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n")
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
        ca_key, csr = self.dir / "ca.key", self.dir / "server.csr"
        run("openssl", "req", "-x509", *ec, "-keyout", ca_key, "-out", self.ca, "-days", "30",
            "-subj", "/CN=vorlab OIDC test CA")
        run("openssl", "req", *ec, "-keyout", key, "-out", csr, "-subj", f"/CN={ISSUER_HOST}")
        run("openssl", "x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", ca_key, "-CAcreateserial",
            "-out", srv, "-days", "30", "-extfile", ext)
        self.ca.chmod(0o644)

    def net(self):
        for a in SERVED:
            run("ip", "addr", "replace", f"{a}/32", "dev", BRIDGE)
        if not Path(f"/run/netns/{NS}").exists():
            run("ip", "link", "del", VETH + "0", check=False)
            run("ip", "netns", "add", NS)
        if run("ip", "link", "show", VETH + "0", check=False).returncode != 0:
            run("ip", "link", "add", VETH + "0", "type", "veth", "peer", "name", "eth0", "netns", NS)
        run("ip", "link", "set", VETH + "0", "master", BRIDGE, "up")
        run("ip", "-n", NS, "addr", "replace", f"{DNS_ADDR}/24", "dev", "eth0")
        run("ip", "-n", NS, "link", "set", "eth0", "up")
        run("ip", "-n", NS, "link", "set", "lo", "up")

    def answer(self, answers: dict[str, str]):
        """Set the DNS answers (name → address) and make dnsmasq re-read them (SIGHUP)."""
        text = "".join(f"{a} {n}\n" for n, a in sorted(answers.items()))
        tmp = self.hosts.with_name(".hosts.tmp")
        tmp.write_text(text)
        os.replace(tmp, self.hosts)
        pid = self._alive(self.dns_pid)
        if pid:
            os.kill(pid, signal.SIGHUP)
            wait(lambda: all(query_a(n) == [a] for n, a in answers.items()), "dnsmasq's new answers")

    def dns_start(self):
        if self._alive(self.dns_pid):
            return
        self.dns_pid.unlink(missing_ok=True)
        subprocess.run(
            ["ip", "netns", "exec", NS, "dnsmasq", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
             "--bind-interfaces", f"--listen-address={DNS_ADDR}", "--user=root", "--group=root",
             f"--pid-file={self.dns_pid}", "--local=/vorlab.test/", f"--addn-hosts={self.hosts}",
             f"--local-ttl={TTL}", f"--log-facility={self.dir / 'dnsmasq.log'}"],
            env=self._env(), stdin=subprocess.DEVNULL, check=True, capture_output=True)
        wait(lambda: self._alive(self.dns_pid) and udp_bound(), "dnsmasq")

    def dns_stop(self):
        self._kill(self._alive(self.dns_pid))
        self.dns_pid.unlink(missing_ok=True)

    def https_start(self):
        if self._alive(self.srv_pid):
            return
        log = open(self.dir / "https.log", "ab")  # noqa: SIM115 (the daemon's, kept open by it)
        p = subprocess.Popen([sys.executable, __file__, "serve", "--state", self.state], env=self._env(),
                             stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        log.close()
        self.srv_pid.write_text(f"{p.pid}\n")

        def ready() -> bool:
            if p.poll() is not None:
                raise SystemExit(f"idp: the HTTPS server exited: {(self.dir / 'https.log').read_text()[-2000:]}")
            return all(tcp_open(a) for a in SERVED)
        wait(ready, "the HTTPS server")

    # -- commands ----------------------------------------------------------------------------
    def up(self):
        self.dir.mkdir(parents=True, exist_ok=True)
        self.pki()
        self.net()
        self.answer(ANSWERS)        # every `up` starts from the provider's own answers
        self.dns_start()
        self.https_start()

    def down(self):
        self._kill(self._alive(self.srv_pid))
        self.dns_stop()
        run("ip", "link", "del", VETH + "0", check=False)
        if Path(f"/run/netns/{NS}").exists():
            run("ip", "netns", "del", NS, check=False)
        if run("ip", "link", "show", BRIDGE, check=False).returncode == 0:
            for a in SERVED:
                run("ip", "addr", "del", f"{a}/32", "dev", BRIDGE, check=False)
        if self.dir.is_dir():
            for f in self.dir.iterdir():
                f.unlink()
            self.dir.rmdir()

    def vars(self) -> dict:
        """The inventory variables that make this the lab hosts' second OIDC provider."""
        return {"host_firewall_oidc_providers": [{"issuer": ISSUER, "name": NAME}],
                "entra_egress_ca_file": str(self.ca)}

    def status(self) -> bool:
        dns, srv = self._alive(self.dns_pid), self._alive(self.srv_pid)
        print(f"lab: OIDC provider {ISSUER}: dns {DNS_ADDR} {'up' if dns else 'down'}, "
              f"https {'up' if srv else 'down'}")
        return bool(dns and srv)


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        if self.path.endswith("/.well-known/openid-configuration"):
            body = json.dumps(DISCOVERY).encode()
        elif self.path.endswith("/certs"):
            body = b'{"keys": []}'
        else:
            body = b"{}"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def serve(idp: Idp):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(idp.dir / "server.pem", idp.dir / "server.key")
    servers = []
    for a in SERVED:
        s = http.server.ThreadingHTTPServer((a, PORT), Handler)
        s.socket = ctx.wrap_socket(s.socket, server_side=True, do_handshake_on_connect=False)
        servers.append(s)
    for s in servers[1:]:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    servers[0].serve_forever()


def run(*args, check=True):
    r = subprocess.run(list(map(str, args)), capture_output=True, text=True, check=False)
    if check and r.returncode != 0:
        raise SystemExit(f"idp: {' '.join(map(str, args))}: {r.stderr.strip()}")
    return r


def udp_bound() -> bool:
    return run("ip", "netns", "exec", NS, "ss", "-Hlun", f"src {DNS_ADDR}", check=False).stdout.strip() != ""


def query_a(name: str) -> list[str]:
    """The A records DNS_ADDR answers for name (from the root namespace, over the bridge)."""
    q = struct.pack(">6H", 0x7E57, 0x0100, 1, 0, 0, 0)
    q += b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0" + struct.pack(">2H", 1, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(1)
        try:
            s.sendto(q, (DNS_ADDR, 53))
            r = s.recv(4096)
        except OSError:
            return []
    count, i, out = struct.unpack(">H", r[6:8])[0], len(q), []
    for _record in range(count):
        while r[i] and r[i] & 0xC0 != 0xC0:          # the owner name: labels, or a pointer
            i += r[i] + 1
        i += 2 if r[i] else 1
        kind, _cls, _ttl, size = struct.unpack(">2HIH", r[i:i + 10])
        i += 10
        if kind == 1 and size == 4:
            out.append(socket.inet_ntoa(r[i:i + 4]))
        i += size
    return sorted(out)


def tcp_open(addr: str) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((addr, PORT)) == 0


def wait(cond, what: str, timeout: float = 10):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise SystemExit(f"idp: {what} did not start")
        time.sleep(0.05)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    ap.add_argument("command", choices=["up", "down", "status", "serve", "dns-stop", "dns-start", "answer",
                                        "dns-address", "vars"])
    ap.add_argument("args", nargs="*")
    ap.add_argument("--state", default=os.environ.get("VORLAB_STATE", "/var/lib/vorlab"))
    a = ap.parse_args(argv)
    if a.command == "dns-address":      # for lab.sh: the hosts' resolv.conf
        print(DNS_ADDR)
        return 0
    idp = Idp(a.state)
    if a.command == "answer":
        if len(a.args) != 2 or a.args[0] not in ANSWERS:
            ap.error(f"answer NAME ADDR: NAME is one of {', '.join(ANSWERS)}")
        current = dict(line.split()[::-1] for line in idp.hosts.read_text().splitlines())
        idp.answer({**current, a.args[0]: a.args[1]})
        return 0
    if a.command == "vars":             # for the demo: -e @<file>
        print(json.dumps(idp.vars(), indent=2))
        return 0
    if a.command == "status":
        return 0 if idp.status() else 1
    {"up": idp.up, "down": idp.down, "serve": lambda: serve(idp), "dns-stop": idp.dns_stop,
     "dns-start": idp.dns_start}[a.command]()
    return 0


if __name__ == "__main__":
    sys.exit(main())

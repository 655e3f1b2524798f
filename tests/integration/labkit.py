"""Helpers to drive the namespace lab (tests/lab/lab.sh)."""
from __future__ import annotations

import re
import shlex
import subprocess
from concurrent.futures import ThreadPoolExecutor

from helpers import ROOT, env

LAB = ROOT / "tests" / "lab" / "lab.sh"
INVENTORY = ROOT / "tests" / "lab" / "inventory.ini"
DEMO = ROOT / "tests" / "lab" / "demo.yml"
_LAB_LINES = INVENTORY.read_text().split("[lab]")[1].split("\n\n")[0].strip().splitlines()
HOSTS = [l.split()[0] for l in _LAB_LINES]
BACKENDS = {l.split()[0]: re.search(r"lab_backend=(\w+)", l).group(1) for l in _LAB_LINES}


def _release(line: str) -> str:
    m = re.search(r"\blab_firewalld=(\S+)", line)
    return (m.group(1) if m else "debian") + ("-iptables" if "lab_firewalld_backend=iptables" in line else "")


# Each firewalld host's release: an upstream one the lab built ("0.9.11", "0.9.11-iptables" on
# its iptables backend) or "debian" (the distribution's package).
RELEASES = {l.split()[0]: _release(l) for l in _LAB_LINES if BACKENDS[l.split()[0]] == "firewalld"}


def lab(*args, check=True, input=None) -> subprocess.CompletedProcess:
    r = subprocess.run([str(LAB), *args], capture_output=True, text=True, input=input, check=False)
    if check and r.returncode != 0:
        raise AssertionError(f"lab.sh {' '.join(args)} failed: {r.stdout}\n{r.stderr}")
    return r


def on(host, script, check=True) -> str:
    """Run a shell script inside a lab host (its network and mount namespaces)."""
    return lab("exec", host, "sh", "-c", script, check=check).stdout


def playbook(name, *extra, inventories=(INVENTORY, DEMO)) -> subprocess.CompletedProcess:
    e = env()
    e["ANSIBLE_FORKS"] = "16"
    # Pipelining, as a tuned ansible.cfg has it (README, "Performance"): each Python module (the
    # entra_egress role's file, copy, template and stat tasks) is one SSH round trip instead of
    # four. It roughly halves that role's share of a run on the 2-core CI machine. The collection's
    # own modules are binaries, which Ansible always transfers: they are run the same either way.
    e.setdefault("ANSIBLE_PIPELINING", "True")
    args = ["ansible-playbook"]
    for i in inventories:
        args += ["-i", str(i)]
    args += [str(ROOT / "playbooks" / name), *map(str, extra)]  # an absolute path stays as it is
    return subprocess.run(args, capture_output=True, text=True, env=e, check=False)


def recap(out: str) -> dict:
    """PLAY RECAP → {host: {'ok': n, 'changed': n, 'failed': n, ...}}."""
    res = {}
    for m in re.finditer(r"^(\S+)\s+: ((?:\w+=\d+\s*)+)$", out, re.M):
        res[m.group(1)] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(2))}
    return res


# The whole truth of a host's firewall: the kernel's ruleset (runtime) and firewalld's
# configuration files (permanent).
SNAPSHOT = r"""
nft -s list ruleset
echo ==permanent
find /etc/firewalld /etc/ufw /etc/vorstream-firewall /etc/default/ufw /etc/nftables.conf -type f 2>/dev/null | sort |
  while read -r f; do echo "## $f"; cat "$f"; done
"""


def snapshot(hosts=None) -> dict:
    """Every host's firewalld state (runtime and permanent, all zones and ipsets), as text."""
    hosts = hosts or HOSTS
    with ThreadPoolExecutor(len(hosts)) as ex:
        return dict(zip(hosts, ex.map(lambda h: on(h, SNAPSHOT), hosts)))


def reach(host, addr, port) -> bool:
    """Whether a TCP connection from the lab host to addr:port is accepted (2 s)."""
    fam = "AF_INET6" if ":" in addr else "AF_INET"
    script = (f"import socket; s=socket.socket(socket.{fam}); s.settimeout(2); "
              f"print('open' if s.connect_ex(({addr!r}, {port})) == 0 else 'closed')")
    return on(host, f"python3 -c {shlex.quote(script)}").strip() == "open"

"""vorstream.firewall.verify in a real ansible-playbook run against localhost, probing loopback only."""
from __future__ import annotations

import json
import socket
import sys
import textwrap
import threading

import pytest

from helpers import ROOT, run

LO = "127.0.0.1"
BINARY = ROOT / "plugins" / "modules" / "__bin__" / "verify_x86_64"


@pytest.fixture
def tcp_listener():
    """A loopback TCP port that accepts connections; yields the port."""
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind((LO, 0))
    srv.listen(16)
    srv.settimeout(0.2)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _peer = srv.accept()
                conn.close()
            except OSError:
                continue

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield srv.getsockname()[1]
    stop.set()
    t.join()
    srv.close()


@pytest.fixture
def udp_echo():
    """A loopback UDP port that echoes every datagram; yields the port."""
    srv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    srv.bind((LO, 0))
    srv.settimeout(0.2)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                data, peer = srv.recvfrom(2048)
                srv.sendto(data, peer)
            except OSError:
                continue

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield srv.getsockname()[1]
    stop.set()
    t.join()
    srv.close()


def unused_port(kind) -> int:
    """A loopback port nothing listens on (bound a moment ago, then released)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((LO, 0))
        return s.getsockname()[1]


def probe(port, protocol, expect, label=""):
    return {"dst": LO, "port": port, "protocol": protocol, "expect": expect, "label": label}


def playbook(tmp_path, tasks: str, *extra):
    """Run the tasks on localhost; `out` in the tasks is a file to dump results into."""
    pb = tmp_path / "pb.yml"
    pb.write_text(
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n" + textwrap.indent(textwrap.dedent(tasks), "    ")
    )
    # The copy tasks need a Python on "the target"; use this one rather than discovery.
    py = f"ansible_python_interpreter={sys.executable}"
    return run(["ansible-playbook", "-i", "localhost,", "-c", "local", "-e", py, pb, *extra])


def dump(var: str, out) -> str:
    return f"""
    - ansible.builtin.copy:
        content: "{{{{ {var} | to_json }}}}"
        dest: {out}
      check_mode: false
    """


@pytest.mark.parametrize("check", [False, True], ids=["run", "check-mode"])
def test_allowed_flows_pass(tmp_path, tcp_listener, udp_echo, check):
    closed_tcp = unused_port(socket.SOCK_STREAM)
    closed_udp = unused_port(socket.SOCK_DGRAM)
    probes = [
        probe(tcp_listener, "tcp", "allowed", "tcp listener"),
        probe(udp_echo, "udp", "allowed", "udp echo"),
        probe(closed_tcp, "tcp", "allowed", "closed tcp"),
        probe(closed_udp, "udp", "allowed"),
    ]
    out = tmp_path / "res.json"
    tasks = f"""
    - vorstream.firewall.verify:
        probes: {json.dumps(probes)}
        timeout_ms: 1000
      register: v
    """ + dump("v", out)
    r = playbook(tmp_path, tasks, *(["--check"] if check else []))
    assert r.returncode == 0, r.stdout + r.stderr
    res = json.loads(out.read_text())
    assert res["changed"] is False and "skipped" not in res
    assert [x["state"] for x in res["results"]] == ["open", "open", "closed", "closed"]
    assert all(x["ok"] and x["allowed"] for x in res["results"])
    assert res["summary"] == {
        "total": 4, "ok": 4, "mismatches": 0, "allowed_ok": 4, "blocked_ok": 0,
        "open": 2, "closed": 2, "filtered": 0, "no_reply": 0, "error": 0,
    }
    assert res["mismatches"] == []
    assert res["msg"] == "all 4 flows match the plan"
    lines = res["matrix"].splitlines()
    assert len(lines) == 4 and all(line.endswith("  OK") for line in lines)
    assert lines[0].startswith(f"tcp listener  {LO}:{tcp_listener}/tcp")
    assert lines[3].startswith("-  ")
    first = res["results"][0]
    assert set(first) == {"dst", "port", "protocol", "expect", "state", "allowed", "ok", "label", "detail", "elapsed_ms"}


def test_mismatch_fails_the_task_and_keeps_results(tmp_path, tcp_listener):
    closed = unused_port(socket.SOCK_STREAM)
    probes = [probe(tcp_listener, "tcp", "allowed", "ok one"), probe(closed, "tcp", "blocked", "should be shut")]
    want = f"1 of 2 flows do not match the plan: {LO}:{closed}/tcp expected blocked, got closed [should be shut]"

    tasks = f"""
    - vorstream.firewall.verify:
        probes: {json.dumps(probes)}
    """
    r = playbook(tmp_path, tasks)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "FAILED!" in r.stdout and want in r.stdout

    out = tmp_path / "res.json"
    tasks = f"""
    - vorstream.firewall.verify:
        probes: {json.dumps(probes)}
      register: v
      ignore_errors: true
    """ + dump("v", out)
    r = playbook(tmp_path, tasks)
    assert r.returncode == 0, r.stdout + r.stderr
    res = json.loads(out.read_text())
    assert res["failed"] is True and res["changed"] is False
    assert res["msg"] == want
    assert [x["ok"] for x in res["results"]] == [True, False]
    assert [x["label"] for x in res["mismatches"]] == ["should be shut"]
    assert res["summary"]["mismatches"] == 1 and res["summary"]["allowed_ok"] == 1
    assert res["matrix"].splitlines()[1].endswith("  MISMATCH")

    # fail_on_mismatch=false: the same verdict, reported without failing.
    tasks = f"""
    - vorstream.firewall.verify:
        probes: {json.dumps(probes)}
        fail_on_mismatch: false
      register: v
    """ + dump("v", out)
    r = playbook(tmp_path, tasks)
    assert r.returncode == 0, r.stdout + r.stderr
    res = json.loads(out.read_text())
    assert not res.get("failed") and res["msg"] == want


def test_bad_arguments_fail_clearly(tmp_path):
    cases = {
        "port": ({"probes": [probe(22, "tcp", "allowed"), probe(70000, "tcp", "allowed")]},
                 "probes[1].port: 70000 is out of range 1-65535"),
        "dst": ({"probes": [{"dst": "localhost", "port": 1, "protocol": "tcp", "expect": "allowed"}]},
                "probes[0].dst: 'localhost' is not an IP address"),
        "protocol": ({"probes": [probe(1, "icmp", "allowed")]}, "probes[0].protocol: 'icmp' is not one of tcp, udp"),
        "expect": ({"probes": [{"dst": LO, "port": 1, "protocol": "tcp"}]}, "probes[0].expect is required"),
        "unknown": ({"probes": [], "bogus": 1}, "Unsupported parameters: bogus"),
        "missing": ({}, "missing required argument: probes"),
        "timeout": ({"probes": [], "timeout_ms": 0}, "timeout_ms: 0 is out of range 1-300000"),
    }
    tasks = "".join(
        f"\n    - vorstream.firewall.verify: {json.dumps(args)}\n      register: r_{name}\n      ignore_errors: true\n"
        for name, (args, _want) in cases.items()
    )
    out = tmp_path / "res.json"
    names = ", ".join(f"'{n}': r_{n}" for n in cases)
    tasks += dump("{" + names + "}", out)
    r = playbook(tmp_path, tasks)
    assert r.returncode == 0, r.stdout + r.stderr
    got = json.loads(out.read_text())
    for name, (_args, want) in cases.items():
        assert got[name]["failed"] is True, name
        assert want in got[name]["msg"], (name, got[name]["msg"])
        assert "results" not in got[name], name  # nothing was probed


def test_verify_module_protocol_directly(tmp_path):
    """The binary alone: args file in, exactly one JSON object out, nothing on stderr."""
    closed = unused_port(socket.SOCK_STREAM)
    cases = {
        "not json": ("{", 1),
        "unknown arg": (json.dumps({"bogus": 1, "_ansible_check_mode": True}), 1),
        "no probes": (json.dumps({}), 1),
        "ok": (json.dumps({"probes": [probe(closed, "tcp", "allowed")], "_ansible_check_mode": True}), 0),
    }
    for name, (text, code) in cases.items():
        args = tmp_path / "args"
        args.write_text(text)
        r = run([BINARY, args])
        assert r.returncode == code, name
        assert len(r.stdout.strip().splitlines()) == 1, name
        res = json.loads(r.stdout)
        assert res["changed"] is False, name
        assert bool(res.get("failed")) == (code != 0) and res["msg"], name
        assert r.stderr == "", name


def test_an_unreachable_host_makes_the_proof_incomplete_by_name(tmp_path):
    # h2 cannot be reached (nothing listens on port 1): the summary names it instead of
    # failing on its missing results, and no report claims a complete proof.
    inv = tmp_path / "inventory.ini"
    inv.write_text(
        "[consul]\n"
        f"h1 ansible_connection=local ansible_host={LO} ansible_python_interpreter={sys.executable}\n"
        f"h2 ansible_connection=ssh ansible_host={LO} ansible_port=1 ansible_user=nobody\n"
    )
    r = run(["ansible-playbook", "-i", inv, ROOT / "playbooks" / "verify.yml", "-e", "verify_timeout_ms=200"])
    assert r.returncode != 0
    assert "UNREACHABLE" in r.stdout, r.stdout[-3000:]
    assert "not probed (unreachable, or failed before probing): h2" in r.stdout, r.stdout[-3000:]
    assert "undefined variable" not in r.stdout

"""Entra ID egress in the lab: the OIDC clients (super1 and django1 on firewalld, vault1 on
nftables, sdk1 on ufw) with restricted egress reach a listener inside the Entra ID set and
cannot reach one outside it; the weekly refresher (the timer's own command) applies a new week;
a bad file changes nothing; check mode and diff mode show the prefixes; controller mode pushes.

"Entra ID" here is a synthetic service-tag file whose prefixes are lab addresses
(tests/fixtures/servicetags): listeners on extra addresses of the lab bridge. No packet ever
goes to a Microsoft address. Runs after test_mixed_backends.py and leaves the lab with open
egress again."""
from __future__ import annotations

import json
import re
import shlex
import socket
import subprocess
import threading

import pytest

from helpers import ROOT
import labkit
from labkit import BACKENDS, HOSTS, on, playbook, recap, snapshot

pytestmark = pytest.mark.usefixtures("lab_up")

OIDC = ["super1", "django1", "vault1", "sdk1"]
FIXTURES = ROOT / "tests" / "fixtures" / "servicetags"
WEEK1 = FIXTURES / "ServiceTags_Public_lab_week1.json"
WEEK2 = FIXTURES / "ServiceTags_Public_lab_week2.json"
FEED = "/var/lib/vorstream-firewall/lab-feed.json"  # private per lab host
PORT = json.loads((ROOT / "data" / "port_matrix.json").read_text())["egress"]["identity_provider"]["port"]
IN_SET = ["10.231.0.201", "fd00:231::c9"]            # week 1 and week 2
IN_WEEK2 = "10.231.0.209"                             # week 2 only
OUTSIDE = "10.231.0.1"                                # AzureCloud in the file, not AzureActiveDirectory
UNIT = "/etc/systemd/system/vorstream-entra-refresh"
STATE = "/var/lib/vorstream-firewall/entra"
REFRESHER = "/usr/local/libexec/vorstream-firewall/vorfw-entra"

# Restricted egress on the OIDC clients, and the refresher reading a per-host staged file.
RESTRICTED = {"host_firewall_egress": "restricted", "entra_egress_file": FEED}


def ok(r):
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-2000:]
    return r


@pytest.fixture(scope="module")
def listeners():
    """TCP listeners on lab-bridge addresses, in the root namespace (the 'Internet')."""
    added = []
    for a in IN_SET + [IN_WEEK2]:
        plen = 128 if ":" in a else 32
        subprocess.run(["ip", "addr", "replace", f"{a}/{plen}", "dev", "vorlab0"] + (["nodad"] if ":" in a else []),
                       check=True)
        added.append((a, plen))
    socks = []
    for a in IN_SET + [IN_WEEK2, OUTSIDE]:
        fam = socket.AF_INET6 if ":" in a else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((a, PORT))
        s.listen(64)
        socks.append(s)

        def serve(sock=s):
            while True:
                try:
                    c, _peer = sock.accept()
                except OSError:
                    return
                c.close()
        threading.Thread(target=serve, daemon=True).start()
    yield
    for s in socks:
        s.close()
    for a, plen in added:
        subprocess.run(["ip", "addr", "del", f"{a}/{plen}", "dev", "vorlab0"], check=False)


def reach(host, addr, port=PORT) -> bool:
    return labkit.reach(host, addr, port)


def timer_command(host) -> str:
    """The unit's ExecStart as a shell command line: its double-quoted words read as systemd
    reads them (backslash escapes; a literal % written %%, a literal $ written $$)."""
    line = re.search(r"^ExecStart=(.*)$", on(host, f"cat {UNIT}.service"), re.M).group(1)
    words = [w.replace("%%", "%").replace("$$", "$") for w in shlex.split(line)]
    return shlex.join(words)


def sandboxed(host, command) -> str:
    """`command` under the unit's own confinement, as far as it can be had without systemd as
    PID 1 (the lab's hosts are namespaces): every mount read-only but the unit's
    ReadWritePaths= (ProtectSystem=strict), only its CapabilityBoundingSet=, no new
    privileges, its UMask=. What the unit forbids and the refresh needs fails here too."""
    unit = on(host, f"cat {UNIT}.service")

    def setting(k):
        return re.search(rf"^{k}=(.*)$", unit, re.M).group(1).split()

    writable = [p.lstrip("-") for p in setting("ReadWritePaths")]
    caps = ",".join("+" + c.lower().removeprefix("cap_") for c in setting("CapabilityBoundingSet"))
    assert setting("ProtectSystem") == ["strict"] and setting("NoNewPrivileges") == ["yes"], unit
    script = f"""
set -e
mount --make-rprivate /
awk '{{print $2}}' /proc/self/mounts | sort -u | while read -r m; do
  case "$m" in /proc|/proc/*|/sys|/sys/*|/dev|/dev/*) ;; *) mount -o remount,bind,ro "$m" ;; esac
done
for p in {shlex.join(writable)}; do
  if [ -e "$p" ]; then mount --bind "$p" "$p"; mount -o remount,bind,rw "$p"; fi
done
touch /etc/vorfw-sandbox-probe 2>/dev/null && {{ echo "the root file system is writable" >&2; exit 97; }}
umask {setting("UMask")[0]}
exec setpriv --no-new-privs --inh-caps=-all --bounding-set=-all,{caps} -- {command}
"""
    return f"unshare -m sh -c {shlex.quote(script)}"


def stage(week, hosts=tuple(OIDC)):
    for h in hosts:
        on(h, f"cp {week} {FEED}")


def site(*extra):
    return playbook("site.yml", "-e", json.dumps(RESTRICTED), *extra)


def test_restricted_oidc_clients_reach_entra_and_nothing_else(listeners):
    stage(WEEK1)
    r = ok(site("-v"))
    for h in OIDC:
        assert reach(h, IN_SET[0]), f"{h} ({BACKENDS[h]}) cannot reach Entra ID {IN_SET[0]}"
        assert reach(h, IN_SET[1]), f"{h} ({BACKENDS[h]}) cannot reach Entra ID {IN_SET[1]}"
        assert not reach(h, OUTSIDE), f"{h} ({BACKENDS[h]}) reaches {OUTSIDE}:{PORT} outside the Entra ID set"
        assert not reach(h, IN_WEEK2), f"{h} reaches {IN_WEEK2}, which week 1 does not publish"
    # Every other host also runs restricted egress (-e applies to all) but keeps no Entra ID set.
    assert not reach("web1", IN_SET[0])
    # The refresher saved the list for perimeter firewalls too.
    assert on("django1", f"cat {STATE}/prefixes.txt").split() == ["10.231.0.200/30", "fd00:231::c8/126"]
    assert '"ok": true' in on("django1", f"cat {STATE}/status.json")
    # Restricted egress breaks none of the matrix's flows: the packet-level verification passes.
    v = ok(playbook("verify.yml", "-e", json.dumps(RESTRICTED)))
    assert re.search(r"\b0 mismatches", v.stdout), v.stdout[-3000:]
    # And the whole thing is idempotent.
    r = ok(site())
    assert all(v["changed"] == 0 for v in recap(r.stdout).values()), recap(r.stdout)


def test_timer_units_are_valid_and_the_timers_command_applies_a_new_week(listeners):
    unit = on("django1", f"cat {UNIT}.timer")
    assert "OnCalendar=weekly" in unit and "Persistent=true" in unit and "RandomizedDelaySec=" in unit
    out = subprocess.run(["tests/lab/lab.sh", "exec", "django1", "systemd-analyze", "verify",
                          f"{UNIT}.service", f"{UNIT}.timer"], cwd=ROOT, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    stage(WEEK2)
    for h in OIDC:
        on(h, sandboxed(h, timer_command(h)))   # exactly what the timer runs, confined as it is
        assert reach(h, IN_WEEK2), f"{h} ({BACKENDS[h]}): the new week's prefix is not reachable"
        assert reach(h, IN_SET[0]) and not reach(h, OUTSIDE)
        assert json.loads(on(h, f"cat {STATE}/status.json"))["change_number"] == 502


def test_a_bad_file_changes_nothing_and_is_reported(listeners):
    before = snapshot(OIDC)
    for h in OIDC:
        on(h, f"head -c 300 {WEEK2} > {FEED}")           # truncated
        rc = on(h, f"{timer_command(h)} >/dev/null 2>&1; echo $?").strip()
        assert rc == "1", f"{h}: a truncated file must fail the refresh (exit {rc})"
        status = json.loads(on(h, f"cat {STATE}/status.json"))
        assert status["ok"] is False and status["change_number"] == 502, status
        assert reach(h, IN_WEEK2)
    assert snapshot(OIDC) == before
    # A file that would widen egress to everywhere is refused by the play, naming the host and
    # the prefixes, and changes nothing.
    FEEDS.mkdir(parents=True, exist_ok=True)
    wide = FEEDS / "wide.json"
    wide.write_text(json.dumps(lab_file(WEEK2, 503, extra=["0.0.0.0/0", "::/0"])))
    stage(wide, ["django1"])
    r = site("-l", "django1")
    assert r.returncode != 0 and "django1" in r.stdout and "0.0.0.0/0, ::/0" in r.stdout, r.stdout[-3000:]
    assert snapshot(["django1"]) == {"django1": before["django1"]}
    assert not reach("django1", OUTSIDE)


FEEDS = ROOT / "build" / "lab-feeds"   # generated feed files (the lab hosts see the checkout)


def lab_file(base, change_number, extra=()):
    """A lab feed file: `base` with another changeNumber and extra AzureActiveDirectory prefixes."""
    doc = json.loads(base.read_text())
    doc["changeNumber"] = change_number
    for t in doc["values"]:
        if t["name"] == "AzureActiveDirectory":
            t["properties"]["addressPrefixes"] += list(extra)
    return doc


def test_a_held_removal_stays_reachable_until_later_files_confirm_it(listeners):
    # The hosts hold week 2 (changeNumber 502). Week 1 comes back with a lower changeNumber and
    # without 10.231.0.208/30 (a third of the list): the play succeeds, the removal is held, and
    # the prefix stays reachable on every backend.
    stage(WEEK1)
    r = ok(site())
    assert "removal held" in r.stdout + r.stderr, (r.stdout + r.stderr)[-3000:]
    for h in OIDC:
        assert reach(h, IN_WEEK2), f"{h} ({BACKENDS[h]}): a held removal must keep {IN_WEEK2} reachable"
        status = json.loads(on(h, f"cat {STATE}/status.json"))
        assert status["ok"] and status["condition"] == "held", status
        assert status["held"][0]["prefixes"] == ["10.231.0.208/30"] and status["held"][0]["remaining_files"] == 3
        assert on(h, f"{REFRESHER} --state-dir {STATE} status --max-age 0 >/dev/null; echo $?").strip() == "3"
    # Three new weekly files that still lack it (changeNumbers 503-505). Grace 0 here, so the
    # confirmed removal takes effect at once instead of 14 days from now.
    FEEDS.mkdir(parents=True, exist_ok=True)
    for n in (503, 504, 505):
        f = FEEDS / f"week1-{n}.json"
        f.write_text(json.dumps(lab_file(WEEK1, n)))
        stage(f)
        for h in OIDC:
            on(h, timer_command(h).replace("--grace 14d", "--grace 0s"))
            if n < 505:
                assert reach(h, IN_WEEK2), f"{h} ({BACKENDS[h]}): still held after file {n}"
    for h in OIDC:
        assert not reach(h, IN_WEEK2), f"{h} ({BACKENDS[h]}): the confirmed removal must block {IN_WEEK2}"
        assert reach(h, IN_SET[0]) and reach(h, IN_SET[1]) and not reach(h, OUTSIDE)
        status = json.loads(on(h, f"cat {STATE}/status.json"))
        assert status["condition"] == "ok" and status["change_number"] == 505, status


def test_controller_mode_check_and_diff_show_the_prefixes_then_apply(listeners, tmp_path):
    # Back to week 1 from scratch on two hosts, so week 2 is news to them.
    for h in ["vault1", "sdk1"]:
        on(h, f"rm -rf {STATE}")
    stage(WEEK1, ["vault1", "sdk1"])
    ok(site("-l", "vault1,sdk1"))
    assert not reach("vault1", IN_WEEK2)
    limit = ("-l", "vault1,sdk1", "-e", json.dumps({"entra_egress_file": str(WEEK2),
                                                    "entra_egress_controller_dir": str(tmp_path)}))
    before = snapshot(["vault1", "sdk1"])
    r = ok(playbook("entra_refresh.yml", "--check", "--diff", *limit))
    assert "+10.231.0.208/30" in r.stdout, r.stdout[-4000:]
    assert snapshot(["vault1", "sdk1"]) == before
    ok(playbook("entra_refresh.yml", *limit))
    assert reach("vault1", IN_WEEK2) and reach("sdk1", IN_WEEK2)
    r = ok(playbook("entra_refresh.yml", *limit))
    assert all(v["changed"] == 0 for v in recap(r.stdout).values()), recap(r.stdout)


def test_back_to_open_egress_keeps_the_set_current(listeners):
    # Back to week 2 (a lower changeNumber than 505 that only adds): applied at once.
    r = ok(playbook("site.yml", "-e", json.dumps({"entra_egress_file": str(WEEK2)})))
    assert all(v["failed"] == 0 for v in recap(r.stdout).values())
    for h in OIDC:
        assert reach(h, OUTSIDE), f"{h}: open egress again, yet {OUTSIDE}:{PORT} is blocked"
    # The Entra ID set stays installed (and current) with open egress.
    assert "10.231.0.200/30" in on("vault1", "nft list table inet vorstream")
    for h in HOSTS:
        on(h, f"rm -f {FEED}")

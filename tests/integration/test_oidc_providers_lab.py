"""Another OIDC provider in the lab, beside Entra ID: the lab's own `dns` provider
(tests/lab/idp.py, up with the lab), in host_firewall_oidc_providers. Its discovery document is
served over HTTPS with a test CA on a lab address, its jwks_uri on a second name, and a real DNS
server answers its names: dnsmasq in a network namespace of its own (vorlab-dns) on the lab
bridge, the resolver of every lab host. Each restricted OIDC client (one per backend: firewalld on
0.9 with iptables, Debian's firewalld, nftables, ufw) reaches the issuer and the jwks host on 443
and nothing else; a non-client reaches neither. A changed DNS answer: after the next refresh (the
timer's own command) the new address is reachable and the old one still is, until its grace
ends. The DNS server stopped: the set stays. No packet leaves the lab. Runs after
test_oidc_egress_lab.py and leaves the lab with open egress again."""
from __future__ import annotations

import json
import re
import shlex
import sys
import time

import pytest

from helpers import ROOT
from labkit import BACKENDS, on, playbook, reach, recap

sys.path.insert(0, str(ROOT / "tests" / "lab"))
import idp as lab_idp  # noqa: E402  (the lab's OIDC provider, tests/lab/idp.py)

pytestmark = pytest.mark.usefixtures("lab_up")

OIDC = ["super1", "django1", "vault1", "sdk1"]
PORT = lab_idp.PORT
ISSUER_HOST, KEYS_HOST, ISSUER = lab_idp.ISSUER_HOST, lab_idp.KEYS_HOST, lab_idp.ISSUER
IDP_ADDR, KEYS_ADDR, KEYS_NEW, OUTSIDE = lab_idp.ISSUER_ADDR, lab_idp.KEYS_ADDR, lab_idp.SPARE, lab_idp.OUTSIDE
STATE = "/var/lib/vorstream-firewall/oidc"
UNIT = "/etc/systemd/system/vorstream-oidc-refresh"
GRACE = 20                                  # seconds an address stays after it left the answers
WEEK2 = ROOT / "tests" / "fixtures" / "servicetags" / "ServiceTags_Public_lab_week2.json"
PROVIDER = lab_idp.Idp("/var/lib/vorlab")   # the lab's default state dir (conftest's lab_up)
EXTRA = {
    "host_firewall_egress": "restricted",
    "entra_egress_file": str(WEEK2),        # the Entra ID list as test_oidc_egress_lab.py left it
    **PROVIDER.vars(),                      # host_firewall_oidc_providers: the lab's provider (labidp)
    # DNS servers: the hosts' own resolv.conf (the lab's DNS server), as on a real host.
    "entra_egress_oidc_args": ["--grace", f"{GRACE}s"],
}


def ok(r):
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-2000:]
    return r


@pytest.fixture(scope="module")
def idp():
    """The lab's provider, with its own answers again afterwards."""
    PROVIDER.dns_start()
    PROVIDER.answer(lab_idp.ANSWERS)
    yield PROVIDER
    PROVIDER.dns_start()
    PROVIDER.answer(lab_idp.ANSWERS)


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
    idp.answer({**lab_idp.ANSWERS, KEYS_HOST: KEYS_NEW})
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
    idp.dns_stop()
    for h in OIDC:
        out = refresh(h)
        assert reach(h, KEYS_NEW, PORT) and reach(h, IDP_ADDR, PORT), f"{h} ({BACKENDS[h]}) lost addresses: {out}"
        status = json.loads(on(h, f"cat {STATE}/labidp.status.json"))
        assert sorted(name for name, _why in status["failing_names"]) == [ISSUER_HOST, KEYS_HOST], status
    idp.dns_start()


def test_controller_mode_pushes_the_discovery_documents(idp):
    """Controller mode: the controller fetches and validates the discovery document once (the
    lab's controller has no DNS for vorlab.test: --connect-to, for its fetch only) and pushes it;
    each host resolves its names through its own resolver, now and from its timer."""
    idp.answer(lab_idp.ANSWERS)
    vars_ = {**EXTRA, "entra_egress_mode": "controller",
             "entra_egress_controller_oidc_args": ["--connect-to", f"{ISSUER_HOST}:{IDP_ADDR}"]}
    r = ok(playbook("site.yml", "-e", json.dumps(vars_)))
    assert "fetch and validate the discovery documents once, on the controller" in r.stdout
    for h in OIDC:
        pushed = json.loads(on(h, "cat /var/lib/vorstream-firewall/oidc-discovery/labidp.json"))
        assert pushed["issuer"] == ISSUER and pushed["jwks_uri"].startswith(f"https://{KEYS_HOST}/")
        unit = on(h, f"cat {UNIT}.service")
        assert "--discovery-dir" in unit, unit
        out = refresh(h)
        assert "rc=0" in out, out
        assert reach(h, IDP_ADDR, PORT) and reach(h, KEYS_ADDR, PORT), f"{h} ({BACKENDS[h]}): {out}"
        assert not reach(h, OUTSIDE, PORT)
    again = ok(playbook("site.yml", "-e", json.dumps(vars_)))
    assert all(v["changed"] == 0 for v in recap(again.stdout).values()), recap(again.stdout)


def test_back_to_open_egress_without_the_provider():
    vars_ = {"entra_egress_file": str(WEEK2)}
    ok(playbook("site.yml", "-e", json.dumps(vars_)))
    for h in OIDC:
        assert "oidc-labidp" not in on(h, "nft list ruleset 2>/dev/null; ufw status 2>/dev/null; "
                                          "firewall-cmd --get-ipsets 2>/dev/null; true")
        # Nothing keeps refreshing the provider that was removed.
        assert on(h, f"ls {UNIT}.service {UNIT}.timer /etc/vorstream-firewall/oidc-providers.json 2>&1; true").count(
            "No such file") == 3

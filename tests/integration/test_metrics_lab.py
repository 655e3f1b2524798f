"""Monitoring: every lab host writes Prometheus text-format metrics for node_exporter's textfile
collector, read back here with Prometheus's own parser (prometheus-client). A check-mode run
reports drift: a set entry added by hand shows as drift on the next check and is gone after the
next apply. The OIDC clients' Entra ID refresher writes its own file: the list's changeNumber and
age, held removals and the last refresh's result (a failed refresh shows as failed, the list in
force unchanged)."""
from __future__ import annotations

import json
import re
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from helpers import ROOT
from labkit import BACKENDS, HOSTS, on, playbook

pytestmark = pytest.mark.usefixtures("lab_up")

# Private per lab host (its /var/lib/vorstream-firewall); on a real host the default is Debian's
# textfile directory, /var/lib/prometheus/node-exporter.
METRICS = "/var/lib/vorstream-firewall/node-exporter"
EXTRA = ("-e", f"host_firewall_metrics_dir={METRICS}")
STRAY = "192.0.2.77"
OIDC = ["super1", "django1", "vault1", "sdk1"]
ENTRA = "vorstream_firewall_entra.prom"
WEEK1 = json.loads((ROOT / "tests" / "fixtures" / "servicetags" / "ServiceTags_Public_lab_week1.json").read_text())
REFRESHER = "/usr/local/libexec/vorstream-firewall/vorfw-entra"
STATE = "/var/lib/vorstream-firewall/entra"


def ok(r):
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    return r


def families(host, name) -> dict:
    return {f.name: f for f in text_string_to_metric_families(on(host, f"cat {METRICS}/{name}"))}


def value(fams, name) -> float:
    samples = fams[name].samples
    assert len(samples) == 1, samples
    return samples[0].value


def check(hosts) -> dict:
    ok(playbook("site.yml", "--check", *EXTRA))
    return {h: families(h, "vorstream_firewall_check.prom") for h in hosts}


def test_every_host_writes_its_metrics_and_a_check_reports_drift():
    for h in HOSTS:
        on(h, f"rm -rf {METRICS} && mkdir -p {METRICS}")
    start = time.time()
    ok(playbook("site.yml", *EXTRA))
    checked = check(HOSTS)
    for h in HOSTS:
        a = families(h, "vorstream_firewall_apply.prom")
        assert a["vorstream_firewall_last_run_success"].samples[0].labels == {"host": h, "mode": "apply", "backend": BACKENDS[h]}
        assert value(a, "vorstream_firewall_last_run_success") == 1
        assert start - 1 <= value(a, "vorstream_firewall_last_run_timestamp_seconds") <= time.time() + 1
        assert value(a, "vorstream_firewall_owned_rules") > 0
        assert sum(s.value for s in a["vorstream_firewall_owned_set_entries"].samples) > 0
        c = checked[h]
        assert value(c, "vorstream_firewall_drift") == 0 and value(c, "vorstream_firewall_last_run_changes") == 0, h
        assert on(h, f"stat -c %a {METRICS}/vorstream_firewall_apply.prom").strip() == "644"
        want = ["vorstream_firewall_apply.prom", "vorstream_firewall_check.prom"] + ([ENTRA] if h in OIDC else [])
        assert on(h, f"ls -A {METRICS}").split() == sorted(want), h
    # Drift by hand: a stray management source on a firewalld host and on an nftables host.
    fw = next(h for h in HOSTS if BACKENDS[h] == "firewalld")
    nft = next(h for h in HOSTS if BACKENDS[h] == "nftables")
    on(fw, f"firewall-cmd -q --ipset=vorfw-mgmt-4 --add-entry={STRAY}")
    nft_set = re.search(r"set (\S*mgmt\S*4\S*) \{", on(nft, "nft list table inet vorstream")).group(1)
    on(nft, f"nft add element inet vorstream {nft_set} '{{ {STRAY} }}'")
    checked = check([fw, nft])
    for h in (fw, nft):
        assert value(checked[h], "vorstream_firewall_drift") == 1, h
        assert value(checked[h], "vorstream_firewall_last_run_changes") >= 1, h
    # The next apply removes it; the check after finds nothing.
    ok(playbook("site.yml", *EXTRA))
    checked = check([fw, nft])
    assert all(value(checked[h], "vorstream_firewall_drift") == 0 for h in (fw, nft))
    for h in HOSTS:
        on(h, f"rm -rf {METRICS}")


def test_the_entra_refresher_reports_its_list_and_a_failed_refresh():
    for h in OIDC:
        on(h, f"rm -rf {METRICS} && mkdir -p {METRICS}")
    start = time.time()
    ok(playbook("site.yml", *EXTRA))
    for h in OIDC:
        e = families(h, ENTRA)
        labels = e["vorstream_firewall_entra_last_refresh_success"].samples[0].labels
        assert labels == {"cloud": WEEK1["cloud"]}, labels
        assert value(e, "vorstream_firewall_entra_last_refresh_success") == 1, h
        # The same figures as the refresher's status.json (the lab feed is week 1's file).
        status = json.loads(on(h, f"cat {STATE}/status.json"))
        assert value(e, "vorstream_firewall_entra_change_number") == status["change_number"] == WEEK1["changeNumber"], h
        assert start - 1 <= value(e, "vorstream_firewall_entra_last_refresh_timestamp_seconds") <= time.time() + 1
        assert value(e, "vorstream_firewall_entra_list_age_seconds") >= 0
        cond = {s.labels["condition"]: s.value for s in e["vorstream_firewall_entra_condition"].samples}
        assert cond == {"ok": 1, "held": 0, "failed": 0} and status["condition"] == "ok", (h, cond)
        kinds = {s.labels["kind"]: s.value for s in e["vorstream_firewall_entra_prefixes"].samples}
        assert kinds["effective"] == status["prefixes"]["effective"] > 0, (h, kinds)
        assert kinds["effective"] == kinds["ipv4"] + kinds["ipv6"], (h, kinds)
        assert value(e, "vorstream_firewall_entra_held_removals") == len(status["held"]) == 0
    # A refresh that fails (its file is gone): the metrics say so; the list in force stays.
    h = OIDC[0]
    r = on(h, f"{REFRESHER} --state-dir {STATE} apply --file /nonexistent/ServiceTags.json "
              f"--metrics-dir {METRICS} >/dev/null 2>&1; echo $?")
    assert r.strip() == "1", r
    e = families(h, ENTRA)
    assert value(e, "vorstream_firewall_entra_last_refresh_success") == 0
    cond = {s.labels["condition"]: s.value for s in e["vorstream_firewall_entra_condition"].samples}
    assert cond == {"ok": 0, "held": 0, "failed": 1}, cond
    assert value(e, "vorstream_firewall_entra_change_number") == WEEK1["changeNumber"]
    assert value(e, "vorstream_firewall_entra_last_success_timestamp_seconds") >= start - 1
    for h in OIDC:
        on(h, f"rm -rf {METRICS}")

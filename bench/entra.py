#!/usr/bin/env python
"""Entra ID benchmark, side by side in one run.

1. Parse the real 4 MB public service-tag file and extract AzureActiveDirectory: vorfw-entra's
   parser (best of N, in-process) against the seed's own `jq` command (best of N).
   Target: well under 100 ms.
2. A full refresh and atomic apply on lab hosts, one per backend (django1 firewalld, vault1
   nftables, sdk1 ufw), after site.yml converged them: `vorfw-entra apply --file` (read,
   validate against the saved state, apply to the firewall, save state, outputs and status)
   with Microsoft's real weekly files: the first list (20250714), then the next week's update
   (20250721). Against it, what an operator would do by hand on the same host: the seed's `jq`
   extraction, then firewall-cmd (permanent ipset entries from a file + reload), nft (flush +
   add elements in one transaction) or one `ufw allow out` per prefix.
   Target: well under a second.
3. Discovery on a download details page with 40,000 `ServiceTags_` links (the old code was
   quadratic: 36 s): vorfw-entra's link finder against `grep -oE ... | sort | tail -1`.
No traffic is sent anywhere: the prefixes only become set members and rules in lab namespaces.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

from labbench import ENV, LAB, LAB_INV, ROOT

FILES = ROOT.parent / "shared" / "data" / "servicetags"
WEEK_A = FILES / "ServiceTags_Public_20250714.json"
WEEK_B = FILES / "ServiceTags_Public_20250721.json"
HOSTS = {"django1": "firewalld", "vault1": "nftables", "sdk1": "ufw"}
BIN = "/usr/local/libexec/vorstream-firewall/vorfw-entra"
STATE = "/var/lib/vorstream-firewall/bench-entra"
JQ = """jq -r '.values[] | select(.name == "AzureActiveDirectory") | .properties.addressPrefixes[]'"""
ITER = int(os.environ.get("BENCH_ENTRA_ITERATIONS", "10"))
PORT = json.loads((ROOT / "data" / "port_matrix.json").read_text())["egress"]["identity_provider"]["port"]


def on(host: str, script: str) -> str:
    r = subprocess.run([LAB, "exec", host, "bash", "-c", script], capture_output=True, text=True, check=False)
    if r.returncode != 0:
        sys.exit(f"{host}: {script}\n{r.stdout}\n{r.stderr}")
    return r.stdout


def timed_on(host: str, script: str) -> float:
    """Seconds the script takes inside the host (the lab's own entry cost excluded)."""
    out = on(host, f"s=$(date +%s.%N); {{ {script} ; }} >/dev/null 2>&1; e=$(date +%s.%N); echo \"$s $e\"")
    s, e = map(float, out.split()[-2:])
    return e - s


def parse_bench() -> tuple[float, float]:
    r = subprocess.run(["cargo", "run", "-q", "--release", "-p", "vorfw-entra", "--example", "parse_bench",
                        str(WEEK_A), "--iterations", str(ITER)], cwd=ROOT / "rust", capture_output=True, text=True,
                       check=False)
    if r.returncode != 0:
        sys.exit(r.stderr)
    m = re.search(r"best\s+([\d.]+)\s*ms", r.stdout)
    if not m:
        sys.exit(f"parse_bench printed no 'best N ms':\n{r.stdout}")
    ours = float(m.group(1)) / 1000
    jq = min(_timed(["bash", "-c", f"{JQ} {WEEK_A} >/dev/null"]) for _i in range(ITER))
    return ours, jq


def discovery_bench(links: int = 40_000) -> tuple[float, float, float]:
    page = ROOT / "build" / "bench-details-page.html"
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text("".join(
        f'<a href="https://download.microsoft.com/download/{i}/ServiceTags_Public_2025{1 + i % 12:02}{1 + i % 28:02}.json">'
        f"ServiceTags_Public_{i}.json</a>\n" for i in range(links)))
    r = subprocess.run(["cargo", "run", "-q", "--release", "-p", "vorfw-entra", "--example", "parse_bench", "--",
                        "--discovery-page", str(page), "--iterations", str(ITER)], cwd=ROOT / "rust",
                       capture_output=True, text=True, check=False)
    m = re.search(r"best\s+([\d.]+)\s*ms", r.stdout)
    if r.returncode != 0 or not m:
        sys.exit(f"discovery bench failed:\n{r.stdout}{r.stderr}")
    grep = ("grep -oE 'https://download\\.microsoft\\.com/download/[^\"]*ServiceTags_Public_[0-9]{8}\\.json' "
            f"{page} | sort -u -t_ -k3 | tail -1")
    by_hand = min(_timed(["bash", "-c", grep + " >/dev/null"]) for _i in range(ITER))
    return float(m.group(1)) / 1000, by_hand, page.stat().st_size


def _timed(cmd) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True)
    return time.perf_counter() - t


MANUAL = {
    # The seed's jq, then the backend's own tools.
    "firewalld": f"""{JQ} {{f}} | grep -v : > /tmp/entra4.txt;
        firewall-cmd -q --permanent --ipset=vorfw-entra-4 --remove-entries-from-file=/tmp/entra4.old 2>/dev/null;
        firewall-cmd -q --permanent --ipset=vorfw-entra-4 --add-entries-from-file=/tmp/entra4.txt;
        firewall-cmd -q --reload; cp /tmp/entra4.txt /tmp/entra4.old""",
    "nftables": (f"""{{ echo 'flush set inet vorstream entra-4'; """
                 f"""echo "add element inet vorstream entra-4 {{ $({JQ} {{f}} | grep -v : | paste -sd,) }}"; }} | nft -f -"""),
    "ufw": f"""for p in $({JQ} {{f}} | grep -v :); do ufw allow out proto tcp to $p port {PORT} >/dev/null; done""",
}


def main() -> None:
    for f in (WEEK_A, WEEK_B):
        if not f.is_file():
            sys.exit(f"missing {f} (see ../shared/data/servicetags/README.md)")
    ours_parse, jq_parse = parse_bench()
    print(f"parse + extract AzureActiveDirectory from the 4 MB public file (best of {ITER}):")
    print(f"  vorfw-entra {ours_parse * 1000:7.1f} ms    jq (the seed's command) {jq_parse * 1000:7.1f} ms"
          f"    ratio {ours_parse / jq_parse:.2f}x")

    ours_disc, grep_disc, size = discovery_bench()
    print(f"\nfind the download link on a {size / 1e6:.1f} MB details page with 40,000 links (best of {ITER}):")
    print(f"  vorfw-entra {ours_disc * 1000:7.1f} ms    grep -oE | sort | tail {grep_disc * 1000:7.1f} ms"
          f"    ratio {ours_disc / grep_disc:.2f}x")

    subprocess.run([LAB, "up", "--fresh"], check=True, capture_output=True)
    r = subprocess.run(["ansible-playbook", "-i", LAB_INV, "-i", ROOT / "tests" / "lab" / "demo.yml",
                        "-l", ",".join(HOSTS), ROOT / "playbooks" / "site.yml"], env=ENV, capture_output=True, text=True,
                       check=False)
    if r.returncode != 0:
        sys.exit(f"site.yml failed:\n{r.stdout[-3000:]}")
    print(f"\nrefresh + atomic apply on a lab host (real weekly files; {len(HOSTS)} hosts converged by site.yml):")
    print(f"  {'host (backend)':22} {'first list':>11} {'weekly update':>14} {'unchanged':>10}   by hand (jq + tool): first / update")
    worst = 0.0
    for host, backend in HOSTS.items():
        on(host, f"rm -rf {STATE}")
        first = timed_on(host, f"{BIN} --state-dir {STATE} apply --file {WEEK_A}")
        update = timed_on(host, f"{BIN} --state-dir {STATE} apply --file {WEEK_B}")
        same = timed_on(host, f"{BIN} --state-dir {STATE} apply --file {WEEK_B}")
        ok = on(host, f"{BIN} --state-dir {STATE} status")
        if not ok.startswith("OK"):
            sys.exit(f"{host}: the refresh did not succeed: {ok}")
        worst = max(worst, first, update, same)
        manual_first = timed_on(host, MANUAL[backend].replace("{f}", str(WEEK_A)))
        manual_update = timed_on(host, MANUAL[backend].replace("{f}", str(WEEK_B)))
        print(f"  {host + ' (' + backend + ')':22} {first:10.2f}s {update:13.2f}s {same:9.2f}s   "
              f"{manual_first:.2f}s / {manual_update:.2f}s  (ratio {first / manual_first:.3f}x / {update / manual_update:.3f}x)")
    print(f"\nslowest full refresh + apply: {worst:.2f} s (target: well under 1 s)")
    subprocess.run([LAB, "down"], check=True, capture_output=True)


if __name__ == "__main__":
    main()

"""The collection as users get it: the Galaxy tarball (with its binaries) installed into an empty
collections path, its playbooks run by name (vorstream.firewall.site, vorstream.firewall.verify)
against the lab, by ansible-playbook and by ansible-runner as AWX runs a job template (a
private data directory: project, inventory, env). A file left out of the build fails here,
not at a user's."""
from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
import yaml

from helpers import ROOT, VENV_BIN, env
from labkit import DEMO, INVENTORY, recap

pytestmark = pytest.mark.usefixtures("lab_up")


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The collections path holding the tarball's installed copy."""
    d = tmp_path_factory.mktemp("installed")
    e = env()
    e["ANSIBLE_COLLECTIONS_PATH"] = str(d / "collections")   # empty: never the checkout's link

    def run(*args):
        r = subprocess.run(list(map(str, args)), capture_output=True, text=True, env=e, check=False)
        assert r.returncode == 0, r.stdout + r.stderr

    run("ansible-galaxy", "collection", "build", "--output-path", d / "dist", ROOT)
    tarball = next((d / "dist").glob("vorstream-firewall-*.tar.gz"))
    run("ansible-galaxy", "collection", "install", "--offline", "-p", d / "collections", tarball)
    copy = d / "collections" / "ansible_collections" / "vorstream" / "firewall"
    assert (copy / "MANIFEST.json").is_file() and not copy.is_symlink()
    return d / "collections"


def test_the_installed_tarball_converges_and_verifies_the_lab(installed, tmp_path):
    e = env()
    e["ANSIBLE_COLLECTIONS_PATH"] = str(installed)
    e["ANSIBLE_FORKS"] = "16"

    def run(*args):
        r = subprocess.run(args, capture_output=True, text=True, env=e, cwd=tmp_path, check=False)
        assert r.returncode == 0, (r.stdout[-5000:], r.stderr[-2000:])
        return r

    installed = installed / "ansible_collections" / "vorstream" / "firewall"
    inv = ("-i", str(INVENTORY), "-i", str(DEMO))
    r = run("ansible-playbook", *inv, "vorstream.firewall.site")
    assert all(v["failed"] == 0 and v["unreachable"] == 0 for v in recap(r.stdout).values()), r.stdout[-3000:]
    # The installed copy's binaries did the work (not the checkout's).
    assert str(installed) in run("ansible-doc", "-F", "vorstream.firewall").stdout
    v = run("ansible-playbook", *inv, "vorstream.firewall.verify")
    assert re.search(r'"msg": "\d+ required flows open, \d+ forbidden flows blocked, 0 mismatches"', v.stdout), v.stdout[-3000:]


def runner_job(tmp_path, installed, playbook: str, extravars: dict) -> dict:
    """One job as AWX runs it: ansible-runner on a private data directory (a project with a
    playbook importing the collection's, the lab's inventory, the EE's environment)."""
    pdd = tmp_path / "runner"
    (pdd / "project").mkdir(parents=True)
    (pdd / "project" / "job.yml").write_text(yaml.safe_dump([{"import_playbook": playbook}]))
    (pdd / "inventory").mkdir()
    # An inventory directory is read in name order, and a file ending in .ini is skipped there
    # (INVENTORY_IGNORE_EXTS), as in AWX's project inventories: the hosts file has no extension.
    shutil.copy(INVENTORY, pdd / "inventory" / "10-hosts")
    shutil.copy(DEMO, pdd / "inventory" / "20-demo.yml")
    (pdd / "env").mkdir()
    (pdd / "env" / "envvars").write_text(yaml.safe_dump({
        "ANSIBLE_COLLECTIONS_PATH": str(installed), "ANSIBLE_FORKS": "16", "ANSIBLE_HOST_KEY_CHECKING": "False"}))
    (pdd / "env" / "extravars").write_text(yaml.safe_dump(extravars))
    r = subprocess.run([str(VENV_BIN / "ansible-runner"), "run", str(pdd), "-p", "job.yml", "--ident", "job"],
                       capture_output=True, text=True, env=env(), check=False)
    art = pdd / "artifacts" / "job"
    status, rc = (art / "status").read_text().strip(), int((art / "rc").read_text())
    assert (status, rc) == ("successful", 0), r.stdout[-5000:]
    events = [json.loads(f.read_text()) for f in sorted((art / "job_events").glob("*.json"))]
    return {"stdout": (art / "stdout").read_text(), "events": events}


def test_ansible_runner_runs_the_refresh_and_verify_jobs(installed, tmp_path):
    # The weekly Entra ID refresh in controller mode, as an AWX schedule runs it.
    feed = ROOT / "tests" / "fixtures" / "servicetags" / "ServiceTags_Public_lab_week1.json"
    job = runner_job(tmp_path / "refresh", installed, "vorstream.firewall.entra_refresh",
                     {"entra_egress_file": str(feed), "entra_egress_controller_dir": str(tmp_path / "entra")})
    ok_hosts = {e["event_data"]["host"] for e in job["events"] if e["event"] == "runner_on_ok"}
    assert {"super1", "django1", "vault1", "sdk1"} <= ok_hosts, job["stdout"][-3000:]
    # And a verify run: the probes' totals in the job's events.
    job = runner_job(tmp_path / "verify", installed, "vorstream.firewall.verify", {})
    assert re.search(r"\d+ required flows open, \d+ forbidden flows blocked, 0 mismatches", job["stdout"]), job["stdout"][-3000:]

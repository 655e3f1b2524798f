"""The collection as users get it: the Galaxy tarball (with its binaries) installed into an empty
collections path, its playbooks run by name (vorstream.firewall.site, vorstream.firewall.verify)
against the lab. A file left out of the build fails here, not at a user's."""
from __future__ import annotations

import re
import subprocess

import pytest

from helpers import ROOT, env
from labkit import DEMO, INVENTORY, recap

pytestmark = pytest.mark.usefixtures("lab_up")


def test_the_installed_tarball_converges_and_verifies_the_lab(tmp_path):
    e = env()
    e["ANSIBLE_COLLECTIONS_PATH"] = str(tmp_path / "collections")
    e["ANSIBLE_FORKS"] = "16"

    def run(*args):
        r = subprocess.run(args, capture_output=True, text=True, env=e, cwd=tmp_path, check=False)
        assert r.returncode == 0, (r.stdout[-5000:], r.stderr[-2000:])
        return r

    run("ansible-galaxy", "collection", "build", "--output-path", str(tmp_path / "dist"), str(ROOT))
    tarball = next((tmp_path / "dist").glob("vorstream-firewall-*.tar.gz"))
    run("ansible-galaxy", "collection", "install", "--offline", "-p", str(tmp_path / "collections"), str(tarball))
    installed = tmp_path / "collections" / "ansible_collections" / "vorstream" / "firewall"
    assert (installed / "MANIFEST.json").is_file() and not installed.is_symlink()
    inv = ("-i", str(INVENTORY), "-i", str(DEMO))
    r = run("ansible-playbook", *inv, "vorstream.firewall.site")
    assert all(v["failed"] == 0 and v["unreachable"] == 0 for v in recap(r.stdout).values()), r.stdout[-3000:]
    # The installed copy's binaries did the work (not the checkout's).
    assert str(installed) in run("ansible-doc", "-F", "vorstream.firewall").stdout
    v = run("ansible-playbook", *inv, "vorstream.firewall.verify")
    assert re.search(r'"msg": "\d+ required flows open, \d+ forbidden flows blocked, 0 mismatches"', v.stdout), v.stdout[-3000:]

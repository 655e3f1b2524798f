"""The AWX / AAP execution environment: ansible-builder (v3) turns execution-environment.yml
into a build context that carries the Galaxy tarball, with its module binaries and refresher,
and installs it where AWX's ansible-runner finds collections. No image is built here (no
registry is reachable); the context is what `ansible-builder build` would feed podman."""
from __future__ import annotations

import shutil
import tarfile

import yaml

from helpers import ROOT, VENV_BIN, run

EE = ROOT / "execution-environment.yml"


def pinned(name: str) -> str:
    return next(l for l in (ROOT / "requirements.txt").read_text().splitlines() if l.startswith(name + "=="))


def test_ansible_builder_creates_a_context_carrying_the_collection(tmp_path):
    spec = yaml.safe_load(EE.read_text())
    assert spec["version"] == 3
    image = spec["images"]["base_image"]["name"]
    assert ":" in image and not image.endswith(":latest"), image      # a pinned base image
    # The EE runs the ansible-core and ansible-runner this collection is tested with.
    assert spec["dependencies"]["ansible_core"]["package_pip"] == pinned("ansible-core")
    assert spec["dependencies"]["ansible_runner"]["package_pip"] == pinned("ansible-runner")
    shutil.copy(EE, tmp_path / EE.name)
    r = run(["ansible-galaxy", "collection", "build", "--output-path", tmp_path / "build" / "dist", ROOT])
    assert r.returncode == 0, r.stderr
    ctx = tmp_path / "context"
    r = run([VENV_BIN / "ansible-builder", "create", "-f", tmp_path / EE.name, "-c", ctx,
             "--output-filename", "Containerfile"], cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    containerfile = (ctx / "Containerfile").read_text()
    assert f'ARG EE_BASE_IMAGE="{image}"' in containerfile and "FROM $EE_BASE_IMAGE" in containerfile
    assert "COPY _build/collection/ /tmp/vorstream-collection/" in containerfile
    assert "ansible-galaxy collection install --offline -p /usr/share/ansible/collections" in containerfile
    tarballs = list((ctx / "_build" / "collection").glob("vorstream-firewall-*.tar.gz"))
    assert len(tarballs) == 1, tarballs
    names = set(tarfile.open(tarballs[0]).getnames())
    for arch in ("x86_64", "aarch64"):
        assert {f"plugins/modules/__bin__/{m}_{arch}" for m in ("plan", "apply", "verify")} <= names
        assert f"roles/entra_egress/files/vorfw-entra_{arch}" in names
    assert {"playbooks/site.yml", "playbooks/verify.yml", "playbooks/entra_refresh.yml"} <= names

"""The data file mirrors the seed's tables row by row, and no code repeats its port numbers."""
from __future__ import annotations

import json
import re

from helpers import ROOT
from oracle import SEED, parse_seed

MATRIX = json.loads((ROOT / "data" / "port_matrix.json").read_text())


def test_fixture_is_the_shared_seed():
    shared = ROOT.parent / "shared" / "seeds" / "000_5f27d9908696f469.txt"
    if shared.exists():
        assert shared.read_bytes() == SEED.read_bytes()


def test_internal_rows_mirror_the_seed_in_order():
    seed = parse_seed()
    assert len(seed["internal"]) == 29 == len(MATRIX["internal"])
    for s, d in zip(seed["internal"], MATRIX["internal"]):
        assert (d["service"], d["port"], d["purpose"], d["source"]) == (s["target"], s["port"], s["purpose"], s["source"])
        assert d["protocols"] == s["protocols"], d["id"]


def test_external_rows_mirror_the_seed_in_order():
    seed = parse_seed()
    assert len(seed["external"]) == 6 == len(MATRIX["external"])
    for s, d in zip(seed["external"], MATRIX["external"]):
        assert (d["audience"], d["group"], d["port"]) == (s["audience"], s["group"], s["port"])
        assert " ".join(x for x in (d["purpose"], d["notes"]) if x) == s["rest"]
        assert d["optional"] == s["rest"].startswith(d["purpose"] + " Optional"), d["id"]


def test_service_mapping_mirrors_the_seed():
    seed = parse_seed()
    ours = {s["name"]: s["group"] for s in MATRIX["services"] if s.get("in_seed_mapping", True)}
    assert ours == seed["mapping"]
    extra = [s for s in MATRIX["services"] if not s.get("in_seed_mapping", True)]
    assert [(s["name"], s["group"]) for s in extra] == [("SQL Server", "sqlserver")]


def test_conditions_follow_the_seed_text():
    for r in MATRIX["internal"]:
        when = r.get("when", {})
        if "Postgres is selected" in r["purpose"]:
            assert when.get("database") == "postgres", r["id"]
        elif "SQL Server is selected" in r["purpose"]:
            assert when.get("database") == "sqlserver", r["id"]
        else:
            assert "database" not in when, r["id"]
        # Vault-originated flows only with dynamic secrets for the destination.
        assert ("vault_dynamic_secrets" in when) == (r["source"] == "Vault"), r["id"]


def test_row_ids_are_unique_and_stable_slugs():
    ids = [r["id"] for r in MATRIX["internal"] + MATRIX["external"]] + [MATRIX["management"]["id"]]
    assert len(ids) == len(set(ids))

    def slug(s):
        return s.lower().replace(" ", "-")

    for r in MATRIX["internal"]:
        assert r["id"] == f"{slug(r['service'])}-{r['port']}-from-{slug(r['source'])}"


def test_code_never_repeats_a_matrix_port():
    ports = {r["port"] for r in MATRIX["internal"] + MATRIX["external"]} - {22}
    pat = re.compile(r"(?<![\w.])(" + "|".join(str(p) for p in sorted(ports)) + r")(?![\w.])")
    offenders = []
    for base in ("rust/crates", "plugins", "roles", "playbooks"):
        for f in (ROOT / base).rglob("*"):
            if not f.is_file() or f.suffix not in {".rs", ".py", ".yml", ".yaml", ".j2"}:
                continue
            if f.parent == ROOT / "plugins" / "modules":
                continue  # documentation stubs: their examples may show ports
            if {"tests", "examples", "fixtures"} & set(f.relative_to(ROOT).parts):
                continue  # test code and data may name ports in their expectations
            text = f.read_text(errors="replace")
            # Unit tests may name ports in their expectations.
            text = text.split("#[cfg(test)]")[0]
            for n, line in enumerate(text.splitlines(), 1):
                if line.strip().startswith(("//", "#")):
                    continue  # comments and doc comments may show examples
                if pat.search(line):
                    offenders.append(f"{f.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not offenders, "port numbers from the matrix outside data/port_matrix.json:\n" + "\n".join(offenders)

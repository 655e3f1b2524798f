"""The sign-off report in a real browser: Debian's headless Chromium, driven by Playwright, opens
the report of the multi-tier example (and one of hostile names) from a file, with no server and
no network. It fails, never skips, when Chromium or Playwright is missing: `make setup`
installs both."""
from __future__ import annotations

import json
import re

from helpers import ROOT, browser_page, run

MULTI = ROOT / "examples" / "multi-tier.yml"
VERIFY = ROOT / "tests" / "fixtures" / "report" / "verify-multi-tier.json"
SHOT = ROOT / "build" / "report-multi-tier.png"


def column(page, table: str, i: int) -> list[str]:
    """The visible cells of column i of a table, top to bottom."""
    return page.eval_on_selector(
        f"#{table}",
        f"t => Array.from(t.tBodies[0].rows).filter(r => !r.hidden).map(r => r.cells[{i}].textContent)",
    )


def test_the_multi_tier_report_works_in_chromium(vorfw, tmp_path):
    report = tmp_path / "report.html"
    run([vorfw, "report", "-i", MULTI, "--verify", VERIFY, "-o", report], check=True)
    hosts = set(json.loads(run([vorfw, "plan", "-i", MULTI, "--format", "json"], check=True).stdout)["hosts"])
    with browser_page() as page:
        page.goto(report.as_uri())
        # The diagram: one SVG, a node for every host, arrows between the services.
        assert page.locator("svg#diagram").is_visible()
        assert set(page.eval_on_selector_all("svg#diagram g.host", "gs => gs.map(g => g.dataset.host)")) == hosts
        assert page.locator("svg#diagram g.flow").count() > 10
        box = page.locator("svg#diagram").bounding_box()
        assert box["width"] > 600 and box["height"] > 200, box
        # Sorting: a click on Port orders the rows by port, numerically; a second click reverses.
        before = column(page, "host-rules", 2)
        page.locator("#host-rules th", has_text="Port").click()
        ports = [int(p) for p in column(page, "host-rules", 2)]
        assert ports == sorted(ports) and ports != [int(p) for p in before]
        page.locator("#host-rules th", has_text="Port").click()
        assert [int(p) for p in column(page, "host-rules", 2)] == sorted(ports, reverse=True)
        # Filtering: typing hides every row without the words.
        total = len(column(page, "host-rules", 0))
        page.locator('input[data-table="host-rules"]').fill("pg1 5432")
        shown = column(page, "host-rules", 0)
        assert 0 < len(shown) < total and set(shown) == {"pg1"}
        assert page.locator("#host-rules-count").text_content() == f"{len(shown)} of {total} rows"
        page.locator('input[data-table="host-rules"]').fill("")
        assert len(column(page, "host-rules", 0)) == total
        # External audiences are marked; the probe matrix shows the mismatches.
        assert page.locator("#host-rules tr.ext .badge", has_text="external").count() > 0
        assert page.locator("#verify-matrix td.bad").count() == 1
        assert page.errors == [] and page.dialogs == []
        SHOT.parent.mkdir(parents=True, exist_ok=True)
        # The top of the page: the probe results and the diagram (docs/report.png is one).
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(SHOT), full_page=True, clip={"x": 0, "y": 0, "width": 1400, "height": 1250})
    assert SHOT.stat().st_size > 10_000


HOSTILE = ["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>', "</script>", "a'b&amp;c\u2028d"]


def test_hostile_names_and_purposes_render_as_text(vorfw, tmp_path):
    hostvars = {}
    for i, name in enumerate(HOSTILE, 1):
        rules = [{"id": f"x{i}", "group": "web", "port": 9000 + i, "sources": ["10.0.0.0/8"], "purpose": name}]
        hostvars[name] = {"ansible_host": f"10.1.0.{i}", "host_firewall_extra_rules": rules}
    inv = tmp_path / "inv.json"
    inv.write_text(json.dumps({"_meta": {"hostvars": hostvars}, "web": {"hosts": list(hostvars)}}))
    report = tmp_path / "report.html"
    run([vorfw, "report", "-i", inv, "-o", report], check=True)
    with browser_page() as page:
        page.goto(report.as_uri())
        page.wait_for_timeout(300)
        assert page.dialogs == [] and page.errors == []
        # Nothing was injected: no image, only the page's own two scripts.
        assert page.locator("img").count() == 0
        assert page.locator("script").count() == 2
        cells = page.eval_on_selector_all("#host-rules tbody td:first-child", "ts => ts.map(t => t.textContent)")
        assert set(cells) == set(HOSTILE)
        purposes = page.eval_on_selector_all("#host-rules tbody td:nth-child(6)", "ts => ts.map(t => t.textContent)")
        assert set(HOSTILE) <= set(purposes)
        assert set(page.eval_on_selector_all("svg#diagram g.host", "gs => gs.map(g => g.dataset.host)")) == set(HOSTILE)
        data = json.loads(page.locator("#report-data").text_content())
        assert set(data["hosts"]) == set(HOSTILE)
    assert not re.search(r"<img|<script>alert", report.read_text())

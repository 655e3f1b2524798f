#!/usr/bin/env python
"""Report benchmark: `vorfw report` of a 1,000-host inventory (bench/plan.py's generator;
BENCH_REPORT_HOSTS), opened from its file in Debian's headless Chromium.

Prints the time to write the report, its size, and the time until the page has loaded and its
script has run (the median of BENCH_RUNS loads in a fresh page), then whether it meets the
targets: under 10 MB, open in under 3 s.
"""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from plan import ENV, ROOT, VORFW, inventory

sys.path.insert(0, str(ROOT / "tests"))
from helpers import browser_page  # noqa: E402

HOSTS = int(os.environ.get("BENCH_REPORT_HOSTS", "1000"))
RUNS = int(os.environ.get("BENCH_RUNS", "5"))
MAX_BYTES = 10 * 1000 * 1000
MAX_OPEN_S = 3.0


def main() -> int:
    with tempfile.TemporaryDirectory() as d:
        inv, out = Path(d) / "inv.ini", Path(d) / "report.html"
        inv.write_text(inventory(HOSTS))
        t = time.perf_counter()
        subprocess.run([str(VORFW), "report", "-i", str(inv), "-o", str(out)], check=True, env=ENV)
        write_s = time.perf_counter() - t
        size = out.stat().st_size
        opens, rows = [], 0
        with browser_page() as page:
            for _run in range(RUNS):
                t = time.perf_counter()
                page.goto(out.as_uri(), wait_until="load")
                rows = page.evaluate("document.querySelectorAll('#host-rules tbody tr').length")
                opens.append(time.perf_counter() - t)
            assert page.errors == [], page.errors
        open_s = statistics.median(opens)
    print(f"report of {HOSTS} hosts: written in {write_s:.2f} s (ansible-inventory included), "
          f"{size / 1e6:.2f} MB, {rows} host-rule rows")
    print(f"opened in headless chromium in {open_s:.2f} s (median of {RUNS}; min {min(opens):.2f}, max {max(opens):.2f})")
    ok = size < MAX_BYTES and open_s < MAX_OPEN_S
    print(f"targets (under {MAX_BYTES / 1e6:.0f} MB, open under {MAX_OPEN_S:.0f} s): {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

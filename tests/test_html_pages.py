"""The evaluator's report.html and a decision-trace page, loaded in a real headless Chromium.

Each page is opened in an iframe of a checker page served from localhost (same origin, so the
checker can read the frames): every ``<img>`` must have decoded (``naturalWidth > 0``) and hold a
drawing (enough non-white pixels). A page with a broken image path and one with a blank image
must fail the same checks. Needs Debian's ``chromium``: ``scripts/test.sh`` installs it when run
as root; without it the test fails, unless LIVEKIT_BARGEIN_BROWSER_TESTS_OPTIONAL=1 says the
browser checks may be skipped on this machine.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pytest
from matplotlib.image import imsave
from synthetic_call import FakeSession, run_call
from synthetic_run import make_run_dir

from livekit_bargein import BargeIn
from livekit_bargein.cli import main
from livekit_bargein.debug_trace import DecisionTrace
from livekit_bargein.eval.html_report import write_html_report

OPTIONAL_ENV = "LIVEKIT_BARGEIN_BROWSER_TESTS_OPTIONAL"
MIN_INKED = 0.02
"""Fraction of sampled pixels that are not white: a rendered plot has far more, a blank none."""

_CHECKER = """<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>
<pre id="result">pending</pre>
<script>
const pages = JSON.parse(decodeURIComponent(location.hash.slice(1)));
const results = {};
let left = pages.length;
function inked(img) {
  if (!(img.complete && img.naturalWidth > 0)) return 0;
  const c = document.createElement("canvas");
  c.width = img.naturalWidth; c.height = img.naturalHeight;
  const ctx = c.getContext("2d");
  ctx.drawImage(img, 0, 0);
  const d = ctx.getImageData(0, 0, c.width, c.height).data;
  let n = 0, seen = 0;
  for (let i = 0; i < d.length; i += 4 * 5) {
    seen++;
    if (d[i + 3] > 0 && (d[i] < 230 || d[i + 1] < 230 || d[i + 2] < 230)) n++;
  }
  return n / seen;
}
function inspect(frame, page) {
  const doc = frame.contentDocument;
  results[page] = {
    title: doc.title,
    tables: doc.querySelectorAll("table").length,
    images: Array.from(doc.images).map(img => ({
      src: img.getAttribute("src"),
      complete: img.complete,
      naturalWidth: img.naturalWidth,
      renderedWidth: img.getBoundingClientRect().width,
      inked: inked(img),
    })),
  };
  if (--left === 0) document.getElementById("result").textContent = JSON.stringify(results);
}
for (const page of pages) {
  const f = document.createElement("iframe");
  f.width = 1400; f.height = 900;
  f.onload = () => inspect(f, page);
  f.src = page;
  document.body.appendChild(f);
}
</script></body></html>
"""


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        if path := shutil.which(name):
            return path
    if os.environ.get(OPTIONAL_ENV) == "1":
        pytest.skip(f"chromium not installed and {OPTIONAL_ENV}=1")
    pytest.fail(
        "chromium is not installed: the HTML pages must be checked in a real browser. "
        "Install Debian's package (apt-get install chromium; scripts/test.sh does it as root), "
        f"or set {OPTIONAL_ENV}=1 to skip the browser checks on this machine."
    )


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """tmp_path served over http://127.0.0.1 (a file:// page could not read its frames)."""

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(tmp_path)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield tmp_path, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _load_in_chromium(chromium: str, root: Path, base_url: str, pages: list[str]) -> dict[str, Any]:
    (root / "check.html").write_text(_CHECKER)
    url = f"{base_url}/check.html#{quote(json.dumps(pages))}"
    profile = root / "chromium-profile"
    cmd = [
        chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--disable-dev-shm-usage", f"--user-data-dir={profile}",
        "--virtual-time-budget=20000", "--dump-dom", url,
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=90, check=False)
    m = re.search(r'<pre id="result">(.*?)</pre>', proc.stdout, re.S)
    assert m is not None and m.group(1) != "pending", (
        f"chromium did not finish the checks (rc {proc.returncode}):\n{proc.stderr[-2000:]}"
    )
    return dict(json.loads(html.unescape(m.group(1))))


def _plots_rendered(result: dict[str, Any]) -> bool:
    imgs = result["images"]
    return bool(imgs) and all(
        i["complete"] and i["naturalWidth"] > 0 and i["renderedWidth"] > 0
        and i["inked"] > MIN_INKED
        for i in imgs
    )  # fmt: skip


def test_report_and_trace_pages_render_their_plots(served: tuple[Path, str]) -> None:
    chromium = _chromium()  # first: fail (or skip) before building anything
    root, base_url = served
    # a decision trace rendered by the CLI, as a user would
    bargein, session = BargeIn(), FakeSession()
    jsonl = root / "calls" / "call.jsonl"
    with DecisionTrace(bargein, jsonl, session=session):
        run_call(bargein, session)
    assert main(["trace", str(jsonl), "--out", str(root / "view")]) == 0
    # an evaluator run's report, with the timeline pages it renders for failing scenarios
    run = make_run_dir(root)
    report = write_html_report(run).read_text()
    linked = sorted(
        h for h in re.findall(r'href="([^"]+\.html)"', report) if "decision_traces" in h
    )
    assert linked, "the report links no timeline page"
    # negative controls: a broken image path, and an image that decodes but is blank
    (root / "broken.html").write_text('<html><body><img src="no-such-plot.png"></body></html>')
    imsave(root / "blank.png", np.ones((60, 80, 3)))
    (root / "blank.html").write_text('<html><body><img src="blank.png"></body></html>')

    pages = ["view/call.html", "run/report.html", *(f"run/{h}" for h in linked)]
    results = _load_in_chromium(chromium, root, base_url, [*pages, "broken.html", "blank.html"])

    for page in pages:
        r = results[page]
        assert _plots_rendered(r), f"{page}: {r['images']}"
        assert r["title"] and r["tables"] >= 1, page
    assert [i["src"] for i in results["view/call.html"]["images"]] == ["call.png"]
    assert {i["src"] for i in results["run/report.html"]["images"]} == {"ttfy_cdf.png"}
    broken = results["broken.html"]["images"]
    assert broken[0]["naturalWidth"] == 0 and not _plots_rendered(results["broken.html"])
    blank = results["blank.html"]["images"]
    assert blank[0]["naturalWidth"] == 80 and not _plots_rendered(results["blank.html"])

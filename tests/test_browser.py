"""The reports aekit writes, opened in a real headless browser: every image loads, every table has rows.

Needs the system Chromium and chromedriver (``make browser``); see tests/browser.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import aekit
import browser
from browser import open_page_checks, page_problems

pytestmark = pytest.mark.browser
chromium = browser.chromium  # the fixture: one headless Chromium for this module (per xdist worker)

TINY = {"latent_dim": 2, "hidden": (32,), "epochs": 2, "progress": False}


def check_report(driver, run) -> dict:
    """Open ``run``'s report.html in the browser and assert that it rendered whole."""
    page = open_page_checks(driver, run.path / "report.html")
    assert page["ready_state"] == "complete"
    assert page["images"], f"no images in {page['url']}"
    assert page["tables"], f"no tables in {page['url']}"
    assert page_problems(page) == [], f"{page['url']}: {page_problems(page)}"
    assert page["console_errors"] == [], f"{page['url']}: {page['console_errors']}"
    return page


def test_vae_report_renders(chromium, tmp_path):
    run = aekit.train(model="vae", data="digits", out=tmp_path / "vae", **TINY)
    page = check_report(chromium, run)
    assert len(page["tables"]) >= 2  # the summary and the test metrics


def test_ae_report_renders(chromium, tmp_path):
    run = aekit.train(model="ae", data="digits", out=tmp_path / "ae", **TINY)
    page = check_report(chromium, run)
    # The same report with one of its plots deleted fails the check, naming that plot.
    src = page["images"][0]["src"]
    (run.path / src).unlink()
    with pytest.raises(AssertionError, match=f"image '{src}' did not load"):
        check_report(chromium, run)


def test_tabular_report_renders(chromium, tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 6)) @ rng.normal(size=(6, 6))
    csv = tmp_path / "table.csv"
    np.savetxt(csv, x, delimiter=",", fmt="%.5f", header=",".join(f"f{j}" for j in range(6)), comments="")
    run = aekit.train(model="ae", data=str(csv), out=tmp_path / "tabular", **TINY)
    check_report(chromium, run)


def test_compare_page_renders(chromium, tmp_path, capsys):
    from aekit.cli import main

    runs = [aekit.train(model=m, data="digits", out=tmp_path / m, report=False, **TINY).path for m in ("vae", "ae")]
    out = tmp_path / "cmp"
    args = ["compare", *map(str, runs), "--out", str(out), "--num-samples", "200", "--iw-samples", "5"]
    assert main(args) == 0
    page = open_page_checks(chromium, out / "compare.html")
    assert page_problems(page) == [] and page["console_errors"] == []
    assert [img["src"] for img in page["images"]] == ["compare.png"]
    results = page["tables"][0]
    assert results["filled_rows"] == 3  # two runs and the PCA baseline at k = 2


def test_check_finds_broken_image_and_empty_tables(chromium, tmp_path):
    """The negative control: a page with a missing image and two empty tables fails the checks."""
    Image.new("RGB", (8, 4), "red").save(tmp_path / "ok.png")
    page_file = tmp_path / "broken.html"
    page_file.write_text(
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>broken</title></head><body>"
        '<img src="ok.png" alt="ok"><img src="missing.png" alt="missing">'
        "<h2>Filled</h2><table><tr><th>loss</th><td>0.5</td></tr></table>"
        "<h2>Empty</h2><table></table>"
        "<h2>Blank</h2><table><tr><td></td><td> </td></tr></table>"
        "</body></html>",
        encoding="utf-8",
    )
    page = open_page_checks(chromium, page_file)

    loaded = {image["src"]: image["loaded"] for image in page["images"]}
    assert loaded == {"ok.png": True, "missing.png": False}
    assert [(t["rows"], t["filled_rows"]) for t in page["tables"]] == [(1, 1), (0, 0), (1, 0)]
    problems = page_problems(page)
    assert len(problems) == 3, problems
    assert "image 'missing.png' did not load" in problems[0]
    assert "table 1 (Empty) has no body row" in problems[1]
    assert "table 2 (Blank) has no body row" in problems[2]
    assert any("missing.png" in message for message in page["console_errors"]), page["console_errors"]

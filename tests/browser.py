"""Open the HTML pages aekit writes in a real headless browser and report what did not render.

Debian's Chromium driven by Selenium, always the system browser and the system chromedriver (the
Makefile's ``browser`` target installs them): Selenium Manager, which downloads browsers and drivers,
is never used. Tests take the module-scoped ``chromium`` fixture (import it from here) and call
:func:`page_problems` or :func:`open_page_checks` on a page.

Without the browser the tests skip, unless ``AEKIT_REQUIRE_BROWSER=1`` (as ``make test`` sets where it
can install the browser, as on CI), where they fail instead.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
PAGE_TIMEOUT = 30  # seconds for a local page and its images

# Run in the page once it has loaded: every image and every table, as plain data.
_INSPECT_JS = """
const text = (cell) => cell.textContent.trim();
const images = Array.from(document.images, (img) => ({
  src: img.getAttribute("src"),
  url: img.currentSrc || img.src,
  complete: img.complete,
  natural_width: img.naturalWidth,
  natural_height: img.naturalHeight,
}));
const tables = Array.from(document.querySelectorAll("table"), (table) => {
  const rows = Array.from(table.tBodies).flatMap((body) => Array.from(body.rows));
  return {
    rows: rows.length,
    filled_rows: rows.filter((row) => row.cells.length && Array.from(row.cells).every((c) => text(c) !== "")).length,
    empty_cells: rows.reduce((n, row) => n + Array.from(row.cells).filter((c) => text(c) === "").length, 0),
    caption: table.previousElementSibling ? table.previousElementSibling.textContent.trim() : "",
  };
});
return {title: document.title, ready_state: document.readyState, images: images, tables: tables};
"""


def browser_required() -> bool:
    """Whether a missing browser fails the tests (``AEKIT_REQUIRE_BROWSER=1``) instead of skipping them."""
    return os.environ.get("AEKIT_REQUIRE_BROWSER", "").strip().lower() in ("1", "true", "yes")


def missing_browser() -> str | None:
    """Why the browser cannot be started here, or None when Selenium, Chromium and chromedriver are all present."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[dev]')"
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if missing:
        return (
            f"{' and '.join(missing)} not installed; as root run `make browser` "
            "(apt-get install chromium chromium-driver)"
        )
    return None


def start_chromium(user_data_dir: str | os.PathLike) -> Any:
    """Start headless system Chromium under the system chromedriver; return the Selenium driver."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={user_data_dir}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # console messages for get_log
    # An explicit driver path: Selenium Manager (which would download one) is never consulted.
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(PAGE_TIMEOUT)
    return driver


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """One headless Chromium per test module (and per xdist worker), with its own fresh profile."""
    reason = missing_browser()
    if reason is not None:
        if browser_required():
            pytest.fail(f"AEKIT_REQUIRE_BROWSER=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    profile = tempfile.mkdtemp(prefix="aekit-chromium-")
    try:
        driver = start_chromium(profile)
        try:
            yield driver
        finally:
            driver.quit()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def console_messages(driver: Any) -> list[dict[str, Any]]:
    """The browser console's messages since the last call (empty where the driver cannot read them)."""
    try:
        return list(driver.get_log("browser"))
    except Exception:  # not every driver offers the log
        return []


def open_page_checks(driver: Any, html_path: str | os.PathLike) -> dict[str, Any]:
    """Load a local HTML page in ``driver``, wait until it and its images have loaded, and describe it.

    Returns a dict with ``title``, ``url``, ``images`` (``src``, ``url``, ``complete``, ``natural_width``,
    ``natural_height`` and ``loaded``: complete with a natural width above 0), ``tables`` (``rows``: body
    rows, ``filled_rows``: body rows whose cells all have text, ``empty_cells``, ``caption``: the heading
    before it) and ``console_errors`` (the console's SEVERE messages).
    """
    from selenium.webdriver.support.ui import WebDriverWait

    path = Path(html_path).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"no page at {path}")
    console_messages(driver)  # drop messages left by an earlier page
    driver.get(path.as_uri())
    WebDriverWait(driver, PAGE_TIMEOUT).until(
        lambda d: d.execute_script(
            "return document.readyState === 'complete' && Array.from(document.images).every((i) => i.complete);"
        )
    )
    page = driver.execute_script(_INSPECT_JS)
    for image in page["images"]:
        image["loaded"] = bool(image["complete"]) and image["natural_width"] > 0
    page["url"] = path.as_uri()
    page["console_errors"] = [m.get("message", "") for m in console_messages(driver) if m.get("level") == "SEVERE"]
    return page


def page_problems(page: dict[str, Any]) -> list[str]:
    """What is wrong with a page described by :func:`open_page_checks`: broken images and empty tables."""
    problems = [
        f"image {image['src']!r} did not load (complete={image['complete']}, naturalWidth={image['natural_width']})"
        for image in page["images"]
        if not image["loaded"]
    ]
    for i, table in enumerate(page["tables"]):
        if table["filled_rows"] == 0:
            problems.append(
                f"table {i} ({table['caption'] or 'no heading'}) has no body row with non-empty cells "
                f"({table['rows']} body rows, {table['empty_cells']} empty cells)"
            )
    return problems

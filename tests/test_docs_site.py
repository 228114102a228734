"""The built documentation site, opened in a real browser (headless Chromium).

`make docs` builds the site into ``site/``; these tests serve it on a loopback port and
open the home page, the API reference and the Django guide as a reader would: each page
must render its content (the DOM after scripts ran) and give a screenshot with something
on it. Screenshots are kept in ``.docs-screenshots/`` to look at.

Without a built site or without Chromium the tests skip, saying why; in CI they fail.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import struct
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SITE = Path(os.environ.get("TOCSIN_DOCS_SITE", ROOT / "site"))
SHOTS = ROOT / ".docs-screenshots"
WIDTH, HEIGHT = 1280, 900

# page -> what a reader must see on it once it has rendered
PAGES = {
    "": ["Django's signal dispatcher, for any Python program", "Install"],
    "reference/tocsin/": ["tocsin.Signal", "send_robust", "dispatch_uid"],
    "guides/django/": ["INSTALLED_APPS", "tocsin.contrib.django"],
}


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (required in CI)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    _unavailable("Chromium is not installed (apt-get install chromium)")
    raise AssertionError("unreachable")


@pytest.fixture(scope="module")
def site_url() -> Iterator[str]:
    if not (SITE / "index.html").exists():
        _unavailable(f"the documentation site is not built in {SITE} (run `make docs`)")
    handler = functools.partial(_QuietHandler, directory=str(SITE))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def _browser(chromium: str, tmp_path: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",  # CI runs as root
            "--disable-gpu",
            "--hide-scrollbars",
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--window-size={WIDTH},{HEIGHT}",
            *arguments,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@pytest.mark.parametrize("page", list(PAGES), ids=lambda page: page or "home")
def test_page_renders_in_a_browser(page: str, chromium: str, site_url: str, tmp_path: Path):
    url = site_url + page
    dom = _browser(chromium, tmp_path, "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr
    for text in PAGES[page]:
        assert text in dom.stdout, f"{url} does not show {text!r}"
    assert "404 - Not found" not in dom.stdout

    SHOTS.mkdir(exist_ok=True)
    shot = SHOTS / f"{page.strip('/').replace('/', '-') or 'home'}.png"
    shot.unlink(missing_ok=True)
    result = _browser(chromium, tmp_path, f"--screenshot={shot}", url)
    assert result.returncode == 0, result.stderr
    data = shot.read_bytes()
    assert _png_size(data) == (WIDTH, HEIGHT)
    # A blank page compresses to a few kilobytes; text, navigation and code do not.
    assert len(data) > 40_000, f"{shot} looks blank ({len(data)} bytes)"

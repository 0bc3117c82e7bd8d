"""Headless Chromium (Debian's chromium + chromedriver, driven by selenium) and a static server.

Skipped when Chromium is missing, unless LIAISON_REQUIRE_BROWSER is set (CI): then they fail.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conftest import require_tool

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")

# evil.test resolves to 127.0.0.1 inside this browser only: a "foreign" site on this machine.
FOREIGN_HOST = "evil.test"


@pytest.fixture(scope="module")
def browser_scratch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The browser's own folder: its profile (``profile``) and its TMPDIR, where Chromium
    makes its ``org.chromium.Chromium.*`` folders (the singleton socket's); removed after."""
    scratch = tmp_path_factory.mktemp("chromium")
    yield scratch
    shutil.rmtree(scratch, ignore_errors=True)


@pytest.fixture(scope="module")
def browser(browser_scratch: Path) -> Iterator[object]:
    """A headless Chromium where ``evil.test`` maps to 127.0.0.1."""
    found = bool(CHROMIUM and CHROMEDRIVER)
    require_tool(found, "LIAISON_REQUIRE_BROWSER", "needs chromium and chromedriver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM or ""
    for argument in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root, where Chromium's sandbox refuses to start
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--host-resolver-rules=MAP {FOREIGN_HOST} 127.0.0.1",
        f"--user-data-dir={browser_scratch / 'profile'}",
    ):
        options.add_argument(argument)
    # Chromium and chromedriver put their temporary folders in TMPDIR: in the system temp
    # directory they outlived every run.
    service = Service(CHROMEDRIVER or "", env={**os.environ, "TMPDIR": str(browser_scratch)})
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_script_timeout(20)
    try:
        yield driver
    finally:
        driver.quit()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def static_server() -> Iterator[Callable[[str], int]]:
    """``serve(directory)`` serves a directory on 127.0.0.1 and returns the port.

    The page can then be loaded as ``http://127.0.0.1:PORT/`` (an allowed origin) or
    ``http://evil.test:PORT/`` (a foreign one, same files).
    """
    servers: list[http.server.ThreadingHTTPServer] = []

    def serve(directory: str) -> int:
        handler = functools.partial(_QuietHandler, directory=directory)
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server.server_address[1]

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()

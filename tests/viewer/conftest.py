"""A real browser for the viewer tests: Debian's Chromium driven by Playwright, against the session's live
server (tests/conftest.py `live_server`) on loopback.

Chromium is /usr/bin/chromium (or TIERSERVE_CHROMIUM); Playwright's own browser download is never used.
Without Chromium or the playwright package the browser tests skip, naming what is missing, unless
TIERSERVE_REQUIRE_BROWSER=1 (set by .ci/run, which installs both), where they fail instead.

Every page a test opens records console errors, uncaught exceptions, failed requests, HTTP errors and
requests to any other origin; the test fails at teardown if there was one.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image

from tests.compat.conftest import client_python  # noqa: F401  (the AllenSDK environment, for the snippet)

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Request, Response

CHROMIUM = Path(os.environ.get("TIERSERVE_CHROMIUM", "/usr/bin/chromium"))
#: No GPU, no sandbox (root in a container), nothing fetched by the browser on its own.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--force-color-profile=srgb",
]
#: Small enough that the test images (1500 x 1100) open below half a screen pixel per image pixel.
VIEWPORT = {"width": 1000, "height": 700}
SETTLED = "() => !!(window.tierserveViewer && window.tierserveViewer.view && window.tierserveViewer.view.isSettled())"


def _missing(reason: str) -> None:
    if os.environ.get("TIERSERVE_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason} (TIERSERVE_REQUIRE_BROWSER=1)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        _missing(f"{CHROMIUM} is missing: the browser tests need Debian's Chromium (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the playwright package is missing: pip install -e '.[test]'")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=60_000)
        yield launched
        launched.close()


@dataclass
class Tab:
    """A page of a fresh browser context on the live server, and what it has seen."""

    page: Page
    base: str
    problems: list[str] = field(default_factory=list)
    image_requests: list[str] = field(default_factory=list)

    def open(self, hash_: str = "") -> None:
        self.page.goto(f"{self.base}/viewer/{hash_}")

    def settle(self, timeout: float = 60_000) -> None:
        """Wait until the section view has drawn everything (twice, 150 ms apart, as animations start late)."""
        for _ in range(2):
            self.page.wait_for_timeout(150)
            self.page.wait_for_function(SETTLED, timeout=timeout)

    def view(self, script: str, *args: Any) -> Any:
        """Evaluate `script`, a function of the SectionView (and `args`), in the page."""
        return self.page.evaluate(f"([args]) => ({script})(window.tierserveViewer.view, ...args)", [list(args)])

    def to_page(self, x: float, y: float) -> tuple[float, float]:
        """Page (CSS pixel) coordinates of section pixel (x, y)."""
        point = self.view(
            """(v, x, y) => {
                const p = v.primary.imageToViewerElementCoordinates(new OpenSeadragon.Point(x, y));
                const box = v.osdElement.getBoundingClientRect();
                return [box.left + p.x, box.top + p.y];
            }""",
            x,
            y,
        )
        return float(point[0]), float(point[1])

    def to_image(self, x: float, y: float) -> tuple[float, float]:
        """Section pixel coordinates of page (CSS pixel) point (x, y), by OpenSeadragon's transform."""
        point = self.view(
            """(v, x, y) => {
                const box = v.osdElement.getBoundingClientRect();
                const p = v.primary.viewerElementToImageCoordinates(new OpenSeadragon.Point(x - box.left, y - box.top));
                return [p.x, p.y];
            }""",
            x,
            y,
        )
        return float(point[0]), float(point[1])

    def hide_chrome(self) -> None:
        """Hide what is drawn over the image (controls, navigator, status, region boxes) for pixel checks."""
        drawn_over = ".controls, .navigator, .status, .region-selection, .region-returned"
        self.page.add_style_tag(content=f"{drawn_over} {{ visibility: hidden !important; }}")

    def screenshot(self) -> npt.NDArray[np.float64]:
        """The viewport as an RGB float array (CSS pixels: the tests run at devicePixelRatio 1)."""
        data = self.page.screenshot(type="png")
        return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.float64)


@pytest.fixture
def tab(browser: Browser, live_server: str) -> Iterator[Tab]:
    context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
    page = context.new_page()
    page.set_default_timeout(60_000)
    found = Tab(page, live_server)

    def on_console(message: Any) -> None:
        if message.type == "error":
            found.problems.append(f"console error: {message.text}")

    def on_request(request: Request) -> None:
        url = request.url
        if url.startswith(("data:", "blob:")):
            return
        if not url.startswith(live_server + "/"):
            found.problems.append(f"request outside the server: {url}")
        if "/iiif/3/" in url and not url.endswith("/info.json"):
            found.image_requests.append(url)

    def on_response(response: Response) -> None:
        if response.status >= 400:
            found.problems.append(f"HTTP {response.status}: {response.url}")

    def on_failed(request: Request) -> None:
        if request.failure != "net::ERR_ABORTED":  # a tile OpenSeadragon no longer needs, or a page left
            found.problems.append(f"failed: {request.url} {request.failure}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: found.problems.append(f"page error: {error}"))
    page.on("requestfailed", on_failed)
    page.on("request", on_request)
    page.on("response", on_response)
    yield found
    context.close()
    assert not found.problems, "\n".join(found.problems)

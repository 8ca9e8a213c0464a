"""Screenshots of the viewer for docs/iiif.md, taken with Debian's Chromium through Playwright.

    tierserve demo --scale 0.5 --no-serve --data-dir DIR && tierserve serve --data-dir DIR --port 8000 &
    python scripts/viewer_screenshots.py --base http://127.0.0.1:8000 --out docs/images

Needs the `test` extra (playwright) and /usr/bin/chromium (apt-get install chromium). Writes
viewer-*.jpg and prints, for each section view, the time from navigation to the first screen of tiles
drawn (the viewer's own measure; a cold browser cache each time).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, sync_playwright

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
SETTLED = "() => !!(window.tierserveViewer && window.tierserveViewer.view && window.tierserveViewer.view.isSettled())"
VIEWPORT = {"width": 1280, "height": 780}


def settle(page: Page) -> None:
    for _ in range(2):
        page.wait_for_timeout(200)
        page.wait_for_function(SETTLED, timeout=60_000)


def drag(page: Page, start: tuple[float, float], end: tuple[float, float]) -> None:
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(*end, steps=8)
    page.mouse.up()


def page_point(page: Page, x: float, y: float) -> tuple[float, float]:
    """Page coordinates of section pixel (x, y)."""
    point: list[float] = page.evaluate(
        """([x, y]) => {
            const v = window.tierserveViewer.view;
            const p = v.primary.imageToViewerElementCoordinates(new OpenSeadragon.Point(x, y));
            const box = v.osdElement.getBoundingClientRect();
            return [box.left + p.x, box.top + p.y];
        }""",
        [x, y],
    )
    return point[0], point[1]


def section(page: Page, base: str, hash_: str) -> Any:
    page.goto(f"{base}/viewer/{hash_}")
    settle(page)
    timings = page.evaluate("window.tierserveViewer.timings")
    print(f"{hash_}: first screen of tiles {timings['firstScreenSinceNavigation']:.0f} ms after navigation")
    return timings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="http://127.0.0.1:8000", help="the server (a demo collection)")
    parser.add_argument("--out", type=Path, default=Path("docs/images"))
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args(argv)
    base: str = args.base.rstrip("/")
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)

    def shot(page: Page, name: str) -> None:
        page.screenshot(path=str(out / f"viewer-{name}.jpg"), type="jpeg", quality=80)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)

        def fresh() -> Page:
            return browser.new_context(viewport=VIEWPORT, device_scale_factor=1).new_page()

        page = fresh()
        page.goto(f"{base}/viewer/")
        page.locator(".data-sets a").first.wait_for()
        shot(page, "data-sets")

        page = fresh()
        page.goto(f"{base}/viewer/#/69750000")
        page.wait_for_function(
            "() => [...document.querySelectorAll('.thumbnails img')].every((i) => i.complete && i.naturalWidth > 0)"
        )
        shot(page, "thumbnails")

        # ISH: a region selected for download.
        page = fresh()
        section(page, base, "#/69750000/69750516?z=0.35&x=4350&y=2300")
        page.locator("#select-region").click()
        drag(page, page_point(page, 3900, 1900), page_point(page, 4600, 2500))
        page.locator("#select-region").click()
        settle(page)
        page.locator(".region").scroll_into_view_if_needed()
        shot(page, "section-region")

        # Connectivity (12-bit): a narrower green window and a colormap.
        page = fresh()
        section(page, base, "#/100141599/102146167?range=0,923,60,620,0,4095&layers=projection:0.7:screen")
        shot(page, "window")
        page.select_option("#colormap", "hotmetal")
        settle(page)
        shot(page, "colormap")

        # Atlas plate with an annotation overlay.
        page = fresh()
        section(page, base, "#/100000001/100883869?layers=annotation-1:0.5")
        shot(page, "atlas-annotation")
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The viewer in a real browser (Chromium through Playwright, tests/viewer/conftest.py) against a real server
serving the synthetic collection of tests/conftest.py, whose pixels are known: pages load without a console
error or a request elsewhere; tiles draw the image's colours; zooming fetches deeper tiles; layers, window
sliders and colormap change the picture; the rectangle tool's URL and AllenSDK script download exactly the
region it draws; the URL restores the view. Prints the time until the first screen of tiles is drawn.
"""

from __future__ import annotations

import math
import random
import re
import subprocess
from pathlib import Path
from urllib.parse import parse_qs

import httpx2
import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image

from tests.conftest import EQUALIZATION, SUB_RECT, Collection
from tests.images import decode_jpeg, expected_region, psnr, window
from tests.viewer.conftest import Tab
from tierserve.core.tiers import Window, level_count, max_downsample, plan_read

Array = npt.NDArray[np.float64]
#: Mean absolute difference (0-255) of 8 x 8 block means between what is drawn and what is expected:
#: the drawn image is a resampled JPEG tier, so single pixels differ, blocks do not.
BLOCK_MATCH = 6.0
#: How much worse a wrong picture (the expectation mirrored, or shifted) must score, at least.
MISMATCH_FACTOR = 3.0


def block_means(pixels: Array, block: int = 8) -> Array:
    h, w = pixels.shape[0] // block * block, pixels.shape[1] // block * block
    means: Array = pixels[:h, :w].reshape(h // block, block, w // block, block, -1).mean(axis=(1, 3))
    return means


def block_difference(drawn: Array, expected: Array) -> float:
    return float(np.abs(block_means(drawn) - block_means(expected)).mean())


def as_image(pixels: Array | npt.NDArray[np.int64]) -> Image.Image:
    array = np.asarray(pixels, dtype=np.float64)
    if array.ndim == 3 and array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    return Image.fromarray(np.clip(np.round(array), 0, 255).astype(np.uint8))


def drawn_and_expected(tab: Tab, full: Array | npt.NDArray[np.int64], inset: int = 4) -> tuple[Array, Array]:
    """The screenshot inside the drawn image (`inset` pixels in from its edges and the viewer's) and
    `full` (the whole section, full resolution) resampled by area to exactly those screen pixels."""
    height, width = full.shape[:2]
    x0, y0 = tab.to_page(0, 0)
    x1, y1 = tab.to_page(width, height)
    stage = tab.page.locator("#osd").bounding_box()
    assert stage is not None
    left = math.ceil(max(x0, stage["x"])) + inset
    top = math.ceil(max(y0, stage["y"])) + inset
    right = math.floor(min(x1, stage["x"] + stage["width"])) - inset
    bottom = math.floor(min(y1, stage["y"] + stage["height"])) - inset
    assert right - left > 64 and bottom - top > 64, "the image is hardly on screen"
    drawn = tab.screenshot()[top:bottom, left:right]
    scale = (x1 - x0) / width
    box = ((left - x0) / scale, (top - y0) / scale, (right - x0) / scale, (bottom - y0) / scale)
    expected = as_image(full).resize((right - left, bottom - top), Image.Resampling.BOX, box=box)
    return drawn, np.asarray(expected, dtype=np.float64)


def assert_draws(tab: Tab, full: Array | npt.NDArray[np.int64]) -> float:
    """The viewer shows `full` (its colours, where they are), and not its mirror image."""
    drawn, expected = drawn_and_expected(tab, full)
    difference = block_difference(drawn, expected)
    assert difference < BLOCK_MATCH, f"drawn pixels differ from the image by {difference:.1f} per block"
    mirrored = block_difference(drawn, expected[:, ::-1])
    assert mirrored > MISMATCH_FACTOR * max(difference, 2.0), f"cannot tell the image from its mirror ({mirrored:.1f})"
    return difference


def scale_factors(urls: list[str]) -> set[int]:
    """The scale factor (region size / output size) of each IIIF tile request."""
    factors = set()
    for url in urls:
        match = re.search(r"/iiif/3/[^/]+/(\d+),(\d+),(\d+),(\d+)/(\d+),(\d+)/0/default\.jpg", url)
        if match:
            region_width, size_width = int(match[3]), int(match[5])
            factors.add(round(region_width / size_width))
        elif "/full/" in url:
            factors.add(0)  # the whole image in one tile: the coarsest level
    return factors


def hash_params(tab: Tab) -> dict[str, str]:
    query = tab.page.evaluate("location.hash").partition("?")[2]
    return {name: values[0] for name, values in parse_qs(query).items()}


# ---- time to first tiles, pages, tiles -------------------------------------------------------------


def test_first_screen_of_tiles(tab: Tab, capsys: pytest.CaptureFixture[str], collection: Collection) -> None:
    """Cold browser: from navigation to the first screen of tiles drawn (the viewer's own measure, at the
    primary image's first fully-loaded event), printed."""
    tab.open("#/1004/3001")
    tab.settle()
    timings = tab.page.evaluate("window.tierserveViewer.timings")
    since_navigation, since_view = timings["firstScreenSinceNavigation"], timings["firstScreen"]
    tiles = len(tab.image_requests)
    with capsys.disabled():
        print(
            f"\nviewer: first screen of tiles drawn {since_navigation:.0f} ms after navigation "
            f"({since_view:.0f} ms after the section view started; {tiles} IIIF tile requests)"
        )
    assert 0 < since_view <= since_navigation < 30_000
    tab.hide_chrome()
    assert_draws(tab, collection.plate)


def test_data_sets_thumbnails_and_a_section(tab: Tab) -> None:
    tab.open()
    links = tab.page.locator(".data-sets a")
    links.first.wait_for()
    names = [text.strip() for text in tab.page.locator(".data-sets .name").all_inner_texts()]
    assert names == ["ISH", "Connectivity", "Connectivity without equalization", "Plates"]
    tab.page.get_by_text("ISH", exact=True).click()
    thumbnails = tab.page.locator(".thumbnails img")
    thumbnails.first.wait_for()
    assert thumbnails.count() == 2
    tab.page.wait_for_function(
        "() => [...document.querySelectorAll('.thumbnails img')].every((img) => img.complete && img.naturalWidth > 0)"
    )
    sizes = tab.page.eval_on_selector_all(
        ".thumbnails img", "(images) => images.map((i) => [i.naturalWidth, i.naturalHeight])"
    )
    assert sizes == [[256, 188], [256, 179]]  # !256,256 of 1500 x 1100 and of the 1000 x 700 sub-rectangle
    assert tab.page.locator(".thumbnails .caption").all_inner_texts()[0].startswith("Section 1")
    thumbnails.nth(1).click()
    tab.settle()
    assert tab.page.evaluate("location.hash").startswith("#/1001/2002?")
    assert tab.page.locator(".panel h1").inner_text().startswith("Section 2")
    assert "Data sets" in tab.page.locator("#crumbs").inner_text()


def test_section_draws_the_image(tab: Tab, collection: Collection) -> None:
    tab.open("#/1001/2001")
    tab.settle()
    tab.hide_chrome()
    assert_draws(tab, collection.rgb)


def test_sub_rectangle_section_draws_its_rectangle(tab: Tab, collection: Collection) -> None:
    x, y, w, h = SUB_RECT
    tab.open("#/1001/2002")
    tab.settle()
    tab.hide_chrome()
    assert_draws(tab, collection.rgb[y : y + h, x : x + w])


def test_zooming_fetches_deeper_tiles(tab: Tab, collection: Collection) -> None:
    tab.open("#/1001/2001")
    tab.settle()
    at_home = scale_factors(tab.image_requests)
    assert at_home and 1 not in at_home, at_home  # about 0.43 screen pixels per image pixel: a coarser level
    count = len(tab.image_requests)
    tab.page.get_by_title("One image pixel per screen pixel").click()
    tab.settle()
    deeper = scale_factors(tab.image_requests[count:])
    assert deeper == {1}, deeper
    assert tab.view("(v) => v.imageZoom()") == pytest.approx(1.0)
    assert float(hash_params(tab)["z"]) == pytest.approx(1.0)
    tab.hide_chrome()
    # At 1:1 the full-resolution tiles are drawn pixel for pixel (within JPEG error and a sub-pixel offset).
    drawn, expected = drawn_and_expected(tab, collection.rgb)
    assert block_difference(drawn, expected) < BLOCK_MATCH / 2
    assert psnr(drawn, expected) > 24


def test_layer_toggle_and_opacity(tab: Tab, collection: Collection) -> None:
    tab.open("#/1001/2001")
    tab.settle()
    tab.hide_chrome()
    before = tab.screenshot()
    tab.page.locator("input[data-opacity=expression]").fill("100")
    tab.page.locator("input[data-layer=expression]").check()
    tab.settle()
    after = tab.screenshot()
    assert float(np.abs(after - before).mean()) > 20, "the layer toggle did not change the picture"
    assert_draws(tab, collection.expression)
    assert any("/iiif/3/2001~expression/" in url for url in tab.image_requests)
    tab.page.locator("input[data-opacity=expression]").fill("50")
    tab.settle()
    mix = 0.5 * collection.expression + 0.5 * collection.rgb
    assert_draws(tab, mix)
    assert hash_params(tab)["layers"] == "expression:0.5"
    # "screen": black in the layer leaves the image as it is
    tab.page.locator("select[data-blend=expression]").select_option("screen")
    tab.page.locator("input[data-opacity=expression]").fill("100")
    tab.settle()
    assert_draws(tab, 255 - (255 - collection.expression) * (255 - collection.rgb) / 255)
    assert hash_params(tab)["layers"] == "expression:1:screen"
    tab.page.locator("input[data-layer=expression]").uncheck()
    tab.settle()
    assert_draws(tab, collection.rgb)
    assert "layers" not in hash_params(tab)


def test_annotation_layers_of_an_atlas_plate(tab: Tab, collection: Collection) -> None:
    tab.open("#/1004/3001")
    tab.settle()
    tab.hide_chrome()
    labels = tab.page.locator(".layer-row label").all_inner_texts()
    assert [label.strip() for label in labels] == ["Annotation: Test atlas A", "Annotation: Test atlas B"]
    tab.page.locator("input[data-opacity=annotation-2]").fill("100")
    tab.page.locator("input[data-layer=annotation-2]").check()
    tab.settle()
    assert_draws(tab, collection.annotations[2])


def test_window_sliders_and_colormap_of_a_12_bit_image(tab: Tab, collection: Collection) -> None:
    tab.open("#/1002/2101")
    tab.settle()
    tab.hide_chrome()
    assert not any("?" in url for url in tab.image_requests), "the Equalization is the server's default"
    assert_draws(tab, window(collection.fluorescence.astype(np.float64), EQUALIZATION))
    assert tab.page.locator(".channel output").all_inner_texts() == ["0–923", "0–987", "0–4095"]
    tab.page.get_by_label("Green upper").fill("2000")
    tab.settle()
    count = len(tab.image_requests)
    tab.page.get_by_label("Red lower").fill("100")
    tab.settle()
    ranged = [(100, 923), (0, 2000), (0, 4095)]
    new = tab.image_requests[count:]
    assert new and all(url.endswith("?range=100,923,0,2000,0,4095") for url in new), new
    assert_draws(tab, window(collection.fluorescence.astype(np.float64), ranged))
    assert hash_params(tab)["range"] == "100,923,0,2000,0,4095"
    before = tab.screenshot()
    count = len(tab.image_requests)
    tab.page.select_option("#colormap", "hotmetal")
    tab.settle()
    assert all(url.endswith("?range=100,923,0,2000,0,4095&colormap=hotmetal") for url in tab.image_requests[count:])
    assert float(np.abs(tab.screenshot() - before).mean()) > 5, "the colormap did not change the picture"
    tab.page.get_by_role("button", name="Equalization").click()
    tab.settle()
    assert hash_params(tab).get("range") is None and hash_params(tab)["colormap"] == "hotmetal"


def test_previous_and_next(tab: Tab) -> None:
    tab.open("#/1001/2001")
    tab.settle()
    assert tab.page.locator("button.prev").is_disabled()
    assert tab.page.locator(".neighbours .position").inner_text() == "1 / 2"
    tab.page.locator("input[data-layer=expression]").check()
    tab.page.select_option("#colormap", "jet")
    tab.settle()
    tab.page.locator("button.next").click()
    tab.settle()
    assert tab.page.evaluate("location.hash").startswith("#/1001/2002?")
    assert "layers" not in hash_params(tab)  # 2002 has no expression layer
    assert hash_params(tab)["colormap"] == "jet"  # the display options go along
    assert tab.page.locator("button.next").is_disabled()
    tab.page.locator("button.prev").click()
    tab.settle()
    assert tab.page.evaluate("location.hash").startswith("#/1001/2001?")
    tab.page.go_back()  # the browser's history holds each section
    tab.settle()
    assert tab.page.evaluate("location.hash").startswith("#/1001/2002")


# ---- the rectangle tool ----------------------------------------------------------------------------


def test_rectangle_tool_downloads_what_it_draws(
    tab: Tab, collection: Collection, live_server: str, client_python: Path, tmp_path: Path
) -> None:
    """On the sub-rectangle section (x=200, y=150 in a 1500 x 1100 scan) at 0.3 screen pixels per image
    pixel, the stored tier at least as dense as the screen is downsample 1 (3.3 image pixels per screen
    pixel); a selection starting at an odd pixel shows the Allen snapping."""
    sx, sy, _, _ = SUB_RECT
    tab.open("#/1001/2002?z=0.3&x=500&y=350")
    tab.settle()
    assert tab.view("(v) => v.imageZoom()") == pytest.approx(0.3)
    tab.page.locator("#select-region").click()
    # Mouse events land on whole CSS pixels: start where the image column and row are odd.
    start = next(
        (px, py)
        for px in range(round(tab.to_page(300, 0)[0]), 10_000)
        for py in range(round(tab.to_page(0, 210)[1]), round(tab.to_page(0, 210)[1]) + 8)
        if all(math.floor(v) % 2 for v in tab.to_image(px, py))
    )
    end = (start[0] + 90, start[1] + 70)
    (ax, ay), (bx, by) = tab.to_image(*start), tab.to_image(*end)
    sel_left, sel_top = math.floor(ax), math.floor(ay)
    sel_width, sel_height = math.ceil(bx) - sel_left, math.ceil(by) - sel_top
    tab.page.mouse.move(*start)
    tab.page.mouse.down()
    tab.page.mouse.move(start[0] + 45, start[1] + 35, steps=4)
    tab.page.mouse.move(*end, steps=4)
    tab.page.mouse.up()
    tab.page.locator("#region-urls a").first.wait_for()
    assert hash_params(tab)["region"] == f"{sel_left},{sel_top},{sel_width},{sel_height}"

    # The URL: the selection's left/top in scan pixels (odd: the tier grid starts one pixel before),
    # the tier pixels that cover it.
    left, top, downsample = sx + sel_left, sy + sel_top, 1
    width, height = -(-(left + sel_width) // 2) - left // 2, -(-(top + sel_height) // 2) - top // 2
    url = tab.page.locator("#region-urls a[data-layer=primary]").get_attribute("href")
    assert url == (
        f"{live_server}/api/v2/section_image_download/2002"
        f"?downsample={downsample}&left={left}&top={top}&width={width}&height={height}"
    )
    # What the server returns for it, by tierserve's own planner, and the pixels of that region.
    image_height, image_width = collection.rgb.shape[:2]
    plan = plan_read(
        image_width, image_height, level_count(image_width, image_height), Window(1, left, top, width, height)
    )
    returned = plan.output.scaled(2)
    assert (returned.x, returned.y, returned.width, returned.height) == (left - 1, top - 1, 2 * width, 2 * height)
    body = httpx2.get(url, timeout=30).content
    got = decode_jpeg(body)
    assert got.shape[:2] == (height, width)
    assert psnr(got, expected_region(collection.rgb, downsample, left, top, width, height)) > 35

    # The rectangle drawn is that region (section pixels: scan pixels minus the section's origin).
    box = tab.page.locator(".region-returned").bounding_box()
    assert box is not None
    x0, y0 = tab.to_page(returned.x - sx, returned.y - sy)
    x1, y1 = tab.to_page(returned.right - sx, returned.bottom - sy)
    assert box["x"] == pytest.approx(x0, abs=1) and box["y"] == pytest.approx(y0, abs=1)
    assert box["width"] == pytest.approx(x1 - x0, abs=1) and box["height"] == pytest.approx(y1 - y0, abs=1)
    assert tab.page.locator(".region-label").inner_text() == f"{width} × {height} at downsample 1"

    # ... and what the screen shows inside it is what the URL downloads.
    tab.hide_chrome()
    screen = tab.screenshot()
    inside = (math.ceil(x0) + 3, math.ceil(y0) + 3, math.floor(x1) - 3, math.floor(y1) - 3)
    drawn = screen[inside[1] : inside[3], inside[0] : inside[2]]
    per_pixel = (x1 - x0) / width
    source = tuple((edge - origin) / per_pixel for edge, origin in zip(inside, (x0, y0, x0, y0), strict=True))
    downloaded = as_image(got).resize((inside[2] - inside[0], inside[3] - inside[1]), Image.Resampling.BOX, box=source)
    difference = block_difference(drawn, np.asarray(downloaded, dtype=np.float64))
    assert difference < BLOCK_MATCH
    shifted = screen[inside[1] + 20 : inside[3] + 20, inside[0] + 20 : inside[2] + 20]
    assert block_difference(shifted, np.asarray(downloaded, dtype=np.float64)) > MISMATCH_FACTOR * max(difference, 2.0)

    # The AllenSDK script, run as shown by the real AllenSDK, downloads the same bytes.
    snippet = tab.page.locator("#region-snippet").inner_text()
    assert "download_section_image(" in snippet and f'base_uri="{live_server}"' in snippet
    (tmp_path / "snippet.py").write_text(snippet)
    completed = subprocess.run(
        [str(client_python), "snippet.py"], cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False
    )
    assert completed.returncode == 0, completed.stderr
    assert (tmp_path / f"2002_{left}_{top}_d1.jpg").read_bytes() == body


def test_rectangle_tool_follows_the_zoom_and_the_layers(tab: Tab, live_server: str) -> None:
    tab.open("#/1002/2101?z=1&x=650&y=450&region=600,400,100,60&layers=projection:0.5&colormap=jet")
    tab.settle()
    urls = tab.page.eval_on_selector_all("#region-urls a", "(links) => links.map((a) => [a.dataset.layer, a.href])")
    base = f"{live_server}/api/v2/section_image_download/2101?downsample=0"
    region = "left=600&top=400&width=100&height=60"
    assert urls == [["primary", f"{base}&colormap=jet&{region}"], ["projection", f"{base}&view=projection&{region}"]]
    for _, url in urls:
        assert httpx2.get(url, timeout=30).status_code == 200
    tab.page.get_by_role("button", name="Zoom out").click()
    tab.settle()
    # 0.5 screen pixels per image pixel: downsample 1, tier pixels [300, 350) x [200, 230)
    assert tab.view("(v) => v.imageZoom()") == pytest.approx(0.5)
    href = tab.page.locator("#region-urls a[data-layer=primary]").get_attribute("href")
    assert href == f"{base.replace('downsample=0', 'downsample=1')}&colormap=jet&left=600&top=400&width=50&height=30"


def test_region_arithmetic_is_the_servers(tab: Tab) -> None:
    """region.js against tierserve's own planner (core.tiers.plan_read) on random sections and selections:
    the URL covers the selection and returns exactly the rectangle the viewer draws."""
    rng = random.Random(12)
    cases = []
    for _ in range(400):
        image_width, image_height = rng.randint(1, 5000), rng.randint(1, 5000)
        w, h = rng.randint(1, image_width), rng.randint(1, image_height)
        x, y = rng.randint(0, image_width - w), rng.randint(0, image_height - h)
        sel_w, sel_h = rng.randint(1, w), rng.randint(1, h)
        selection = {
            "left": rng.randint(0, w - sel_w),
            "top": rng.randint(0, h - sel_h),
            "width": sel_w,
            "height": sel_h,
        }
        section = {"x": x, "y": y, "imageWidth": image_width, "imageHeight": image_height}
        cases.append((selection, section, rng.randint(0, max_downsample(image_width, image_height))))
    tab.open()
    tab.page.locator(".data-sets a").first.wait_for()
    results = tab.page.evaluate(
        """async (cases) => {
            const region = await import(new URL("js/region.js", location.href));
            return cases.map(([selection, section, d]) => region.allenRegion(selection, section, d));
        }""",
        cases,
    )
    for (selection, section, wanted), got in zip(cases, results, strict=True):
        d = got["downsample"]
        s = 1 << d
        assert d <= wanted
        assert (got["left"], got["top"]) == (section["x"] + selection["left"], section["y"] + selection["top"])
        plan = plan_read(
            section["imageWidth"],
            section["imageHeight"],
            level_count(section["imageWidth"], section["imageHeight"]),
            Window(d, got["left"], got["top"], got["width"], got["height"]),
        )
        returned = plan.output.scaled(s)
        assert got["returned"] == {
            "left": returned.x,
            "top": returned.y,
            "width": returned.width,
            "height": returned.height,
        }
        assert got["output"] == {"width": plan.output.width, "height": plan.output.height}
        # It covers the selection, as far as the tier reaches, with no tier pixel to spare.
        right, bottom = got["left"] + selection["width"], got["top"] + selection["height"]
        assert returned.x <= got["left"] and returned.y <= got["top"]
        assert returned.right >= min(right, section["imageWidth"] // s * s)
        assert returned.bottom >= min(bottom, section["imageHeight"] // s * s)
        assert got["width"] == -(-right // s) - got["left"] // s and got["height"] == -(-bottom // s) - got["top"] // s
        if d < wanted:  # a coarser tier held nothing of the selection
            coarser = 1 << (d + 1)
            assert (
                got["left"] // coarser >= section["imageWidth"] // coarser
                or got["top"] // coarser >= section["imageHeight"] // coarser
            )
    tiers = tab.page.evaluate(
        """async () => {
            const region = await import(new URL("js/region.js", location.href));
            const cases = [[0.5, 5], [1, 5], [1.99, 5], [2, 5], [3.99, 5], [4, 5], [1000, 5], [4, 1]];
            return cases.map(([perPixel, maxLevel]) => region.screenTier(perPixel, maxLevel));
        }"""
    )
    assert tiers == [0, 0, 0, 1, 1, 2, 5, 1]


# ---- the URL restores the view ---------------------------------------------------------------------


def test_url_restores_the_view(tab: Tab, live_server: str) -> None:
    tab.open("#/1001/2001")
    tab.settle()
    tab.page.get_by_role("button", name="Zoom in").click()
    tab.settle()
    stage = tab.page.locator("#osd").bounding_box()
    assert stage is not None
    cx, cy = stage["x"] + stage["width"] / 2, stage["y"] + stage["height"] / 2
    tab.page.mouse.move(cx, cy)
    tab.page.mouse.down()
    tab.page.mouse.move(cx - 120, cy - 70, steps=6)
    tab.page.mouse.up()
    tab.settle()
    tab.page.locator("input[data-opacity=expression]").fill("40")
    tab.page.locator("input[data-layer=expression]").check()
    tab.page.locator("#select-region").click()
    a, b = tab.to_page(700, 500), tab.to_page(760, 540)
    tab.page.mouse.move(*a)
    tab.page.mouse.down()
    tab.page.mouse.move(*b, steps=4)
    tab.page.mouse.up()
    tab.settle()
    url = tab.page.url
    params = hash_params(tab)
    assert params["layers"] == "expression:0.4" and re.fullmatch(r"\d+,\d+,\d+,\d+", params["region"])
    state = "(v) => [v.imageZoom(), v.primary.viewportToImageCoordinates(v.viewer.viewport.getCenter(true))]"
    zoom, center = tab.view(state)
    links = tab.page.eval_on_selector_all("#region-urls a", "(links) => links.map((a) => a.href)")
    tab.hide_chrome()
    top, bottom, left, right = (
        int(stage["y"]),
        int(stage["y"] + stage["height"]),
        int(stage["x"]),
        int(stage["x"] + stage["width"]),
    )
    picture = tab.screenshot()[top:bottom, left:right]

    other = tab.page.context.new_page()  # the same URL in another tab
    other.goto(url)
    again = Tab(other, live_server)
    again.settle()
    assert hash_params(again) == params
    zoom_again, center_again = again.view(state)
    assert zoom_again == pytest.approx(zoom, rel=1e-4)
    assert center_again["x"] == pytest.approx(center["x"], abs=0.1)
    assert center_again["y"] == pytest.approx(center["y"], abs=0.1)
    assert other.locator("input[data-layer=expression]").is_checked()
    assert other.locator("input[data-opacity=expression]").input_value() == "40"
    assert other.eval_on_selector_all("#region-urls a", "(links) => links.map((a) => a.href)") == links
    again.hide_chrome()
    restored = again.screenshot()[top:bottom, left:right]  # the centre is kept to 0.1 image pixel
    assert block_difference(restored, picture) < 1.0
    assert float(np.abs(restored - picture).mean()) < 3.0

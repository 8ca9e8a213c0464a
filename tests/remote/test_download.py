"""`tierserve download` from a live tierserve on loopback (the test collection), through a FaultProxy:
the files are the source's own answers to the URLs the manifest records (byte for byte) and show the
right pixels; re-runs skip complete files and fetch truncated ones again; injected 503s and dropped
connections, and a kill -9 mid-run, change nothing in the result; failures exit 1, usage errors 2."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
import numpy as np
import numpy.typing as npt
import pytest
import pyvips
import tifffile
from rich.console import Console
from starlette.types import ASGIApp, Receive, Scope, Send
from typer.testing import CliRunner, Result

from tests.conftest import Collection, running_server
from tests.images import tier
from tests.s3 import FaultProxy, fault_proxy
from tierserve.cli import app
from tierserve.remote.catalog import Selection
from tierserve.remote.download import JOURNAL, DecodeError, FileFormat, FileOptions, decode, download_to_folder
from tierserve.remote.progress import TransferProgress
from tierserve.remote.source import SourceClient

#: ISH data set 1001 (images 2001, and 2002 a sub-image; only 2001 has an expression layer),
#: connectivity 1002 (12-bit 2101, with an Equalization record) and atlas 1's plate 3001.
SELECTION = ["--data-set", "1001", "--data-set", "1002", "--atlas", "1"]
FILES = ["2001.jpg", "2002.jpg", "2101.jpg", "3001.jpg"]
#: Full-resolution width x height of each image's record.
SIZES = {2001: (1500, 1100), 2002: (1000, 700), 2101: (1300, 900), 2102: (1300, 900), 3001: (700, 500)}


@pytest.fixture
def proxy(live_server: str) -> Iterator[FaultProxy]:
    with fault_proxy(live_server) as fault:
        yield fault


def download(source: str, out: Path, *args: str) -> Result:
    """`tierserve download` in process, as a user types it."""
    command = ["download", "--source", source, "--out", str(out), *args]
    return CliRunner().invoke(app, command, catch_exceptions=False)


def manifest(out: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((out / "manifest.json").read_text())
    return document


def image_requests(proxy: FaultProxy) -> list[str]:
    """Targets of the image downloads the proxy received (data-API queries left out)."""
    return [request.target for request in proxy.requests if "_download/" in request.target]


def pixels(data: bytes | Path) -> npt.NDArray[np.float64]:
    """Every pixel of an image file or body, decoded by libvips: height x width x bands."""
    image = pyvips.Image.new_from_buffer(data, "") if isinstance(data, bytes) else pyvips.Image.new_from_file(str(data))
    return np.asarray(image.numpy(), dtype=np.float64).reshape(image.height, image.width, image.bands)


def fetch(url: str) -> httpx2.Response:
    response = httpx2.get(url, timeout=30)
    response.raise_for_status()
    return response


def params(url: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


def test_every_image_becomes_a_file_that_is_the_sources_answer_to_its_url(
    proxy: FaultProxy, collection: Collection, tmp_path: Path
) -> None:
    result = download(proxy.url, tmp_path, *SELECTION, "--downsample", "2")
    requested = sorted(urlsplit(target).path.rsplit("/", 1)[1] for target in image_requests(proxy))

    assert result.exit_code == 0, result.output
    assert "downloaded 4, already present 0, failed 0 of 4 images" in result.output
    assert requested == ["2001", "2002", "2101", "3001"]  # each once
    assert sorted(path.name for path in tmp_path.iterdir()) == [*FILES, "manifest.json"]  # no .part, no journal
    document = manifest(tmp_path)
    assert document["source"] == proxy.url
    assert document["selection"] == {"data_sets": [1001, 1002], "atlases": [1], "query": None}
    assert document["options"]["downsample"] == 2
    assert document["options"]["format"] == "jpeg"
    assert document["failures"] == []
    assert document["summary"]["downloaded"] == 4
    images = document["images"]
    assert [(e["id"], e["data_set_id"], e["section_number"]) for e in images] == [
        (2001, 1001, 1),
        (2002, 1001, 2),
        (2101, 1002, 1),
        (3001, 1004, 5),
    ]
    for entry in images:
        width, height = SIZES[entry["id"]]
        path = tmp_path / entry["file"]
        assert (entry["record_width"], entry["record_height"]) == (width, height)
        assert (entry["pixel_width"], entry["pixel_height"], entry["bands"]) == (width // 4, height // 4, 3)
        assert entry["bytes"] == path.stat().st_size
        assert entry["content_type"] == "image/jpeg"
        assert entry["status"] == "downloaded"
        assert params(entry["url"]) == {"downsample": "2"}
        assert path.read_bytes() == fetch(entry["url"]).content
    # the right image in each file: 2001 is the whole 8-bit scan (JPEG: within a few levels)
    assert np.abs(pixels(tmp_path / "2001.jpg") - tier(collection.rgb, 2)).mean() < 4


def test_a_rerun_skips_complete_files_and_fetches_a_truncated_one_again(proxy: FaultProxy, tmp_path: Path) -> None:
    assert download(proxy.url, tmp_path, *SELECTION, "--downsample", "2").exit_code == 0
    originals = {name: (tmp_path / name).read_bytes() for name in FILES}
    proxy.reset()

    again = download(proxy.url, tmp_path, *SELECTION, "--downsample", "2")

    assert again.exit_code == 0, again.output
    assert image_requests(proxy) == []
    assert "downloaded 0, already present 4, failed 0 of 4 images" in again.output
    assert {entry["status"] for entry in manifest(tmp_path)["images"]} == {"already present"}

    data = originals["2002.jpg"]
    (tmp_path / "2002.jpg").write_bytes(data[: len(data) // 2])
    proxy.reset()
    third = download(proxy.url, tmp_path, *SELECTION, "--downsample", "2")

    assert third.exit_code == 0, third.output
    assert [urlsplit(target).path for target in image_requests(proxy)] == ["/api/v2/section_image_download/2002"]
    assert {name: (tmp_path / name).read_bytes() for name in FILES} == originals
    statuses = {entry["file"]: entry["status"] for entry in manifest(tmp_path)["images"]}
    assert statuses == {**dict.fromkeys(FILES, "already present"), "2002.jpg": "downloaded"}

    # the recorded size, but the end zero-filled: only decoding the file tells
    (tmp_path / "3001.jpg").write_bytes(_zero_tail(originals["3001.jpg"], 100))
    proxy.reset()
    fourth = download(proxy.url, tmp_path, *SELECTION, "--downsample", "2")

    assert fourth.exit_code == 0, fourth.output
    assert [urlsplit(target).path for target in image_requests(proxy)] == ["/api/v2/atlas_image_download/3001"]
    assert (tmp_path / "3001.jpg").read_bytes() == originals["3001.jpg"]


def test_a_file_of_other_options_is_fetched_again(proxy: FaultProxy, tmp_path: Path) -> None:
    assert download(proxy.url, tmp_path, "--data-set", "1001", "--downsample", "2").exit_code == 0
    proxy.reset()

    result = download(proxy.url, tmp_path, "--data-set", "1001", "--downsample", "3")

    assert result.exit_code == 0, result.output
    assert len(image_requests(proxy)) == 2
    assert [(e["pixel_width"], e["status"]) for e in manifest(tmp_path)["images"]] == [
        (1500 // 8, "downloaded"),
        (1000 // 8, "downloaded"),
    ]


def _zero_tail(data: bytes, count: int) -> bytes:
    """`data` with its last `count` bytes zeroed, as a crash can leave a file: same size, end lost."""
    return data[:-count] + bytes(count)


@pytest.mark.parametrize("fmt", ["jpeg", "png", "tiff"])
def test_decode_reads_every_pixel_and_refuses_a_damaged_file(live_server: str, tmp_path: Path, fmt: str) -> None:
    body = fetch(f"{live_server}/api/v2/section_image_download/2101?downsample=1&format={fmt}").content
    whole = tmp_path / "whole"
    whole.write_bytes(body)

    decoded = decode(whole)

    assert (decoded.format, decoded.width, decoded.height) == (FileFormat(fmt), 650, 450)
    assert decoded.sample_format == ("ushort" if fmt == "tiff" else "uchar")
    damaged = [body[: len(body) * 9 // 10], body[:-1], _zero_tail(body, 10), _zero_tail(body, len(body) // 3)]
    for number, data in enumerate(damaged):
        path = tmp_path / f"damaged-{number}"
        path.write_bytes(data)
        with pytest.raises(DecodeError):
            decode(path)


def test_503s_and_dropped_connections_change_nothing(proxy: FaultProxy, tmp_path: Path) -> None:
    clean = tmp_path / "clean"
    assert download(proxy.url, clean, *SELECTION, "--downsample", "2").exit_code == 0
    proxy.reset()
    proxy.drop(1)
    proxy.slow_down(2)  # the first query: dropped, then 503 twice, then answered

    result = download(proxy.url, tmp_path / "faults", *SELECTION, "--downsample", "2")

    assert result.exit_code == 0, result.output
    assert [request.fate for request in proxy.requests[:4]] == ["dropped", "slowdown", "slowdown", "passed"]
    assert "(3 retried)" in result.output
    _assert_same_result(clean, tmp_path / "faults")


class _FaultsOnceListed(TransferProgress):
    """Progress that switches the proxy's faults on when the images are listed: the downloads meet them."""

    def __init__(self, proxy: FaultProxy, source: SourceClient) -> None:
        super().__init__(Console(quiet=True), source.stats, None)
        self.proxy = proxy

    def add_images(self, count: int) -> None:
        super().add_images(count)
        self.proxy.drop(3)
        self.proxy.slow_down(3)


def test_faults_during_the_downloads_change_nothing(proxy: FaultProxy, tmp_path: Path) -> None:
    clean = tmp_path / "clean"
    assert download(proxy.url, clean, *SELECTION, "--downsample", "2").exit_code == 0
    proxy.reset()

    async def run() -> None:
        async with SourceClient(proxy.url, concurrency=2, attempts=10, backoff=0.01) as source:
            progress = _FaultsOnceListed(proxy, source)
            selection = Selection((1001, 1002), (1,))
            report = await download_to_folder(
                source, selection, FileOptions(downsample=2), tmp_path / "faults", progress=progress
            )
            assert report.ok and source.stats.retries == 6

    asyncio.run(run())

    faulted = [request.fate for request in proxy.requests if "_download/" in request.target]
    assert sorted(faulted) == sorted(["dropped"] * 3 + ["slowdown"] * 3 + ["passed"] * 4)
    _assert_same_result(clean, tmp_path / "faults")


def _assert_same_result(clean: Path, other: Path) -> None:
    for name in FILES:
        assert (other / name).read_bytes() == (clean / name).read_bytes(), name
    keep = ("id", "file", "url", "bytes", "pixel_width", "pixel_height")
    listed = [[{key: entry[key] for key in keep} for entry in manifest(out)["images"]] for out in (clean, other)]
    assert listed[0] == listed[1]


def test_a_download_killed_with_kill_9_completes_on_a_rerun_without_fetching_complete_files_again(
    proxy: FaultProxy, tmp_path: Path
) -> None:
    proxy.delay = 0.4  # every request: the kill lands between two files
    command = [sys.executable, "-m", "tierserve", "download", "--source", proxy.url, "--out", str(tmp_path)]
    command += [*SELECTION, "--downsample", "2", "--concurrency", "1"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    journal = tmp_path / JOURNAL
    try:
        deadline = time.monotonic() + 60
        while not (journal.exists() and journal.read_text().count("\n") >= 1):
            assert process.poll() is None and time.monotonic() < deadline, "no file completed"
            time.sleep(0.02)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    done = {json.loads(line)["file"] for line in journal.read_text().splitlines()}
    assert 1 <= len(done) < len(FILES)
    assert not (tmp_path / "manifest.json").exists()
    proxy.reset()

    result = download(proxy.url, tmp_path, *SELECTION, "--downsample", "2")

    assert result.exit_code == 0, result.output
    fetched = {urlsplit(target).path.rsplit("/", 1)[1] + ".jpg" for target in image_requests(proxy)}
    assert fetched == set(FILES) - done
    statuses = {entry["file"]: entry["status"] for entry in manifest(tmp_path)["images"]}
    assert statuses == {name: "already present" if name in done else "downloaded" for name in FILES}
    assert sorted(path.name for path in tmp_path.iterdir()) == [*FILES, "manifest.json"]
    for entry in manifest(tmp_path)["images"]:
        assert (tmp_path / entry["file"]).read_bytes() == fetch(entry["url"]).content


def test_an_unknown_data_set_is_a_usage_error(proxy: FaultProxy, tmp_path: Path) -> None:
    result = download(proxy.url, tmp_path / "out", "--data-set", "1001", "--data-set", "424242")

    assert result.exit_code == 2
    assert "no SectionDataSet with id 424242" in result.output
    assert image_requests(proxy) == []
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data-set", "1001", "--range", "0,100,0,100"], "six integers"),
        (["--data-set", "1001", "--range", "0,100,50,20,0,100"], "gl < gu"),
        (["--data-set", "1001", "--range", "0,100,0,100,0,70000"], "bl < bu <= 65535"),
        (["--range", "equalization"], "select something"),
    ],
)
def test_unusable_options_exit_2_before_any_request(
    proxy: FaultProxy, tmp_path: Path, args: list[str], message: str
) -> None:
    result = download(proxy.url, tmp_path, *args)

    assert result.exit_code == 2
    assert message in result.output
    assert proxy.requests == []


def test_an_image_that_lacks_the_view_fails_and_the_run_exits_1(proxy: FaultProxy, tmp_path: Path) -> None:
    result = download(proxy.url, tmp_path, "--data-set", "1001", "--view", "expression", "--downsample", "3")

    assert result.exit_code == 1
    assert "downloaded 1, already present 0, failed 1 of 2 images" in result.output
    assert sorted(path.name for path in tmp_path.iterdir()) == ["2001.jpg", "manifest.json"]
    document = manifest(tmp_path)
    assert [entry["id"] for entry in document["images"]] == [2001]
    [failure] = document["failures"]
    assert failure["id"] == 2002 and failure["data_set_id"] == 1001
    assert params(failure["url"]) == {"downsample": "3", "view": "expression"}
    assert "HTTP 404" in failure["error"] and "image 2002 has no expression layer" in failure["error"]
    assert len([t for t in image_requests(proxy) if "/2002?" in t]) == 1  # a 404 is not asked again
    assert (tmp_path / "2001.jpg").read_bytes() == fetch(document["images"][0]["url"]).content


def test_atlas_plates_with_view_annotation_ask_for_that_atlas(
    proxy: FaultProxy, collection: Collection, tmp_path: Path
) -> None:
    result = download(proxy.url, tmp_path, "--atlas", "2", "--view", "annotation", "--downsample", "1")

    assert result.exit_code == 0, result.output
    [entry] = manifest(tmp_path)["images"]
    assert (entry["file"], entry["atlas"]) == ("3001.jpg", 2)
    assert urlsplit(entry["url"]).path == "/api/v2/atlas_image_download/3001"
    assert params(entry["url"]) == {"downsample": "1", "annotation": "true", "atlas": "2"}
    saved = pixels(tmp_path / "3001.jpg")
    assert np.abs(saved - tier(collection.annotations[2], 1)).mean() < 6  # JPEG at sharp edges
    assert np.abs(saved - tier(collection.annotations[1], 1)).mean() > 20

    both = download(proxy.url, tmp_path / "both", "--atlas", "1", "--atlas", "2", "--view", "annotation")
    assert both.exit_code == 0, both.output
    files = {entry["file"]: params(entry["url"])["atlas"] for entry in manifest(tmp_path / "both")["images"]}
    assert files == {"3001-atlas1.jpg": "1", "3001-atlas2.jpg": "2"}


def test_range_equalization_sends_each_data_sets_record(proxy: FaultProxy, live_server: str, tmp_path: Path) -> None:
    result = download(
        proxy.url, tmp_path, "--data-set", "1002", "--data-set", "1003", "--range", "equalization", "--format", "png"
    )

    assert result.exit_code == 0, result.output
    assert "SectionDataSet 1003 has no Equalization record" in " ".join(result.output.split())
    document = manifest(tmp_path)
    assert document["options"]["range"] == "equalization"
    assert document["warnings"] == [
        "SectionDataSet 1003 has no Equalization record: its images are fetched without range"
    ]
    equalized, plain = document["images"]
    assert (equalized["file"], equalized["range"]) == ("2101.png", [0, 923, 0, 987, 0, 4095])
    assert params(equalized["url"]) == {"range": "0,923,0,987,0,4095", "format": "png"}
    assert (plain["file"], plain["range"]) == ("2102.png", None)
    assert params(plain["url"]) == {"format": "png"}
    # the source's default rendering of 2101 is its Equalization: the same pixels, exactly (PNG)
    saved = pixels(tmp_path / "2101.png")
    assert np.array_equal(saved, pixels(fetch(f"{live_server}/api/v2/section_image_download/2101?format=png").content))
    full_scale = f"{live_server}/api/v2/section_image_download/2101?format=png&range=0,4095,0,4095,0,4095"
    assert not np.array_equal(saved, pixels(fetch(full_scale).content))


def test_tiff_files_keep_the_native_depth(proxy: FaultProxy, collection: Collection, tmp_path: Path) -> None:
    result = download(proxy.url, tmp_path, "--data-set", "1003", "--format", "tiff", "--downsample", "2")

    assert result.exit_code == 0, result.output
    [entry] = manifest(tmp_path)["images"]
    assert (entry["file"], entry["content_type"], entry["sample_format"]) == ("2102.tif", "image/tiff", "ushort")
    samples = tifffile.imread(tmp_path / "2102.tif")
    assert samples.dtype == np.uint16 and samples.max() > 255
    assert np.abs(samples - tier(collection.fluorescence, 2)).max() <= 1


def test_a_region_is_cut_as_the_allen_api_does(proxy: FaultProxy, collection: Collection, tmp_path: Path) -> None:
    region = ["--left", "100", "--top", "50", "--width", "200", "--height", "100"]
    result = download(proxy.url, tmp_path, "--data-set", "1001", "--downsample", "1", *region, "--quality", "95")

    assert result.exit_code == 0, result.output
    first, second = manifest(tmp_path)["images"]
    asked = {"downsample": "1", "quality": "95", "left": "100", "top": "50", "width": "200", "height": "100"}
    assert params(first["url"]) == params(second["url"]) == asked
    for entry in (first, second):
        assert (entry["pixel_width"], entry["pixel_height"]) == (200, 100)
    expected = tier(collection.rgb, 1)[25:125, 50:250]
    assert np.abs(pixels(tmp_path / "2001.jpg") - expected).mean() < 4


def _strip_format(app: ASGIApp) -> ASGIApp:
    """The app behind a front that drops `format`, as the Allen API ignores it: JPEG whatever is asked."""

    async def front(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            query = b"&".join(part for part in scope["query_string"].split(b"&") if not part.startswith(b"format="))
            scope = {**scope, "query_string": query}
        await app(scope, receive, send)

    return front


def test_a_source_that_ignores_format_is_refused(collection: Collection, tmp_path: Path) -> None:
    with running_server(collection.settings, wrap=_strip_format) as base, fault_proxy(base) as proxy:
        args = ["--data-set", "1001", "--data-set", "1002", "--format", "png"]  # 4 requests in flight at most
        result = download(proxy.url, tmp_path, *args)

        assert result.exit_code == 1
        assert len(image_requests(proxy)) == 1  # refused at the first answer: nothing more is asked
    assert sorted(path.name for path in tmp_path.iterdir()) == ["manifest.json"]
    document = manifest(tmp_path)
    assert document["images"] == []
    first, *rest = document["failures"]
    assert "the source answered jpeg (image/jpeg) to format=png: it does not honour --format" in first["error"]
    assert [failure["file"] for failure in rest] == ["2002.png", "2101.png"]
    assert all(failure["error"].startswith("not requested: the source answered jpeg") for failure in rest)

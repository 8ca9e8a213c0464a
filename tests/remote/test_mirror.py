"""`tierserve mirror` from a live tierserve on loopback (the test collection) into a second collection,
served by a second real server: the same records for the queries AllenSDK sends, the same pixels
(exact for native-depth samples, PSNR >= 35 dB for JPEG answers), through injected 503s and dropped
connections, after kill -9 and a re-run, and refusing ids that hold other content locally."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx2
import numpy as np
import numpy.typing as npt
import pytest
import tifffile
from PIL import Image
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from typer.testing import CliRunner

from tests.conftest import Collection, running_server
from tests.s3 import FaultProxy, fault_proxy
from tierserve.cli import app
from tierserve.settings import Settings

Q = "/api/v2/data/query.json?q="
#: What the tests mirror: ISH data set 1001 (8-bit, expression, a sub-image), connectivity 1002
#: (12-bit, Equalization, projection) and atlas 1's plates (data set 1004, annotations of atlases 1, 2).
SELECTION = ["--data-set", "1001", "--data-set", "1002", "--atlas", "1"]
IMAGES = (2001, 2002, 2101, 3001)
#: Regions of 256 pixels: the 1500 x 1100 image is 30 regions a layer.
REGION = ["--region-size", "256"]
#: The queries AllenSDK's ImageDownloadApi and the Allen web tools send (see tests/api/test_data.py).
QUERIES = (
    "model::SectionImage,rma::criteria,[data_set_id$eq1001],rma::options[num_rows$eq'all'][count$eqfalse]",
    "model::Equalization,rma::criteria,section_data_set(section_images[id$in2101,2001])",
    "model::AtlasImage,rma::criteria,[annotated$eqtrue],atlas_data_set(atlases[id$eq1]),"
    "alternate_images[image_type$eq'Atlas - Test B'],rma::options[order$eq'sub_images.section_number']",
    "model::SectionDataSet,rma::criteria,[id$in1001,1002],rma::include,equalization,section_images(alternate_images)",
    "model::AtlasDataSet,rma::criteria,[id$eq1004],rma::include,atlases,atlas_images(alternate_images)",
    "model::Atlas,rma::criteria,[id$in1,2]",
)
#: Local names: the store path of a layer, a layer row's id and an Equalization's id belong to each server.
LOCAL_FIELDS = {"path", "expression_path"}


@dataclass(frozen=True)
class Mirrored:
    base: str
    data_dir: Path
    output: str


def mirror(data_dir: Path, source: str, *args: str) -> tuple[int, str]:
    """Run `tierserve mirror` in this process; its exit code and output."""
    arguments = ["mirror", "--source", source, *args, "--data-dir", str(data_dir), "--quality", "95"]
    result = CliRunner().invoke(app, arguments, env={"COLUMNS": "400"})  # tables unwrapped
    return result.exit_code, result.output


def region_requests(proxy: FaultProxy) -> set[tuple[str, str, str]]:
    """(image id, layer, region file stem) of every full-resolution region the proxy was asked for
    (the one-pixel format probe left out)."""
    asked = set()
    for request in proxy.requests:
        url = urlsplit(request.target)
        params = dict(parse_qsl(url.query))
        if params.get("width") in (None, "1"):
            continue
        layer = params.get("view") or (f"annotation-{params['atlas']}" if "atlas" in params else "primary")
        stem = f"r{int(params['top']) // 256:04d}-c{int(params['left']) // 256:04d}"
        asked.add((url.path.rsplit("/", 1)[1], layer, stem))
    return asked


@contextlib.contextmanager
def faults_later(proxy: FaultProxy, after: int) -> Iterator[None]:
    """Drop two connections and answer two 503s once the proxy has seen `after` requests."""
    done = threading.Event()

    def inject() -> None:
        while not done.is_set() and len(proxy.requests) < after:
            time.sleep(0.005)
        proxy.drop(2)
        proxy.slow_down(2)

    thread = threading.Thread(target=inject, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def mirrored(collection: Collection, live_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mirrored]:
    data_dir = tmp_path_factory.mktemp("mirror")
    with fault_proxy(live_server) as proxy:
        proxy.drop(1)  # the first query: a dropped connection, then a 503
        proxy.slow_down(1)
        with faults_later(proxy, after=40):  # and a few among the region requests
            code, output = mirror(data_dir, proxy.url, *SELECTION, *REGION)
        fates = Counter(request.fate for request in proxy.requests)
    assert code == 0, output
    assert fates["dropped"] == fates["slowdown"] == 3
    with running_server(Settings(data_dir=data_dir)) as base:
        yield Mirrored(base, data_dir, output)


def strip_local(value: Any) -> Any:
    """`value` without the fields that each server names for itself (store paths, layer and Equalization ids)."""
    if isinstance(value, list):
        return [strip_local(item) for item in value]
    if not isinstance(value, dict):
        return value
    own_id = "sub_image_id" in value or "section_data_set_id" in value
    return {
        key: strip_local(item)
        for key, item in value.items()
        if key not in LOCAL_FIELDS and not (own_id and key == "id")
    }


def records(base: str, query: str) -> Any:
    body = httpx2.get(base + Q + query, timeout=30).json()
    assert body["success"], body
    return strip_local(body["msg"])


def test_mirror_reports_every_image(mirrored: Mirrored) -> None:
    assert "mirrored 4, already present 0, failed 0" in mirrored.output
    assert "retried" in mirrored.output


@pytest.mark.parametrize("query", QUERIES)
def test_the_mirror_answers_the_same_records(mirrored: Mirrored, live_server: str, query: str) -> None:
    source, local = records(live_server, query), records(mirrored.base, query)
    assert local, query
    assert local == source


def decode(body: bytes) -> npt.NDArray[np.uint8]:
    return np.asarray(Image.open(io.BytesIO(body)).convert("RGB"))


def psnr(a: npt.NDArray[Any], b: npt.NDArray[Any]) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


@pytest.mark.parametrize(
    "url",
    [
        "section_image_download/2001?downsample=0",
        "section_image_download/2001?downsample=1",
        "section_image_download/2001?downsample=3",
        "section_image_download/2001?left=700&top=300&width=200&height=150&downsample=1",
        "section_image_download/2002",
        "section_image_download/2001?expression=true&downsample=1",
        "section_image_download/2101?downsample=1",
        "section_image_download/2101?range=0,2000,0,3000,0,4095&downsample=2",
        "projection_image_download/2101?projection=true",
        "atlas_image_download/3001?annotation=true&atlas=2&downsample=1",
        "atlas_image_download/3001?downsample=2&quality=50",
    ],
)
def test_the_mirror_serves_the_sources_pixels(mirrored: Mirrored, live_server: str, url: str) -> None:
    source = httpx2.get(f"{live_server}/api/v2/{url}", timeout=30)
    local = httpx2.get(f"{mirrored.base}/api/v2/{url}", timeout=30)
    assert (source.status_code, local.status_code) == (200, 200)
    a, b = decode(source.content), decode(local.content)
    assert a.shape == b.shape
    assert psnr(a, b) >= 35


@pytest.mark.parametrize("downsample", [0, 1, 2])
def test_native_samples_are_copied_exactly(mirrored: Mirrored, live_server: str, downsample: int) -> None:
    url = f"/api/v2/section_image_download/2101?format=tiff&downsample={downsample}"
    source = tifffile.imread(io.BytesIO(httpx2.get(live_server + url, timeout=30).content))
    local = tifffile.imread(io.BytesIO(httpx2.get(mirrored.base + url, timeout=30).content))
    assert source.dtype == local.dtype == np.uint16
    assert np.array_equal(source, local)


def test_a_rerun_fetches_nothing_and_publishes_nothing(mirrored: Mirrored, live_server: str) -> None:
    with fault_proxy(live_server) as proxy:
        code, output = mirror(mirrored.data_dir, proxy.url, *SELECTION, *REGION)
        assert code == 0, output
        assert region_requests(proxy) == set()
    assert "mirrored 0, already present 4, failed 0" in output
    assert not (mirrored.data_dir / "mirror" / "2001").exists()  # regions go once the image is in


def test_kill_9_then_rerun_fetches_only_what_is_missing(
    collection: Collection, live_server: str, tmp_path: Path
) -> None:
    work = tmp_path / "data" / "mirror"
    with fault_proxy(live_server) as proxy:
        proxy.delay = 0.03
        command = [sys.executable, "-m", "tierserve", "mirror", "--source", proxy.url, "--data-set", "1001"]
        command += [*REGION, "--concurrency", "2", "--data-dir", str(tmp_path / "data")]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            while len(list(work.glob("*/*/*.tif"))) < 20:
                assert process.poll() is None, "the mirror ended before it was killed"
                assert time.monotonic() < deadline
                time.sleep(0.02)
            os.kill(process.pid, signal.SIGKILL)
        finally:
            process.wait(timeout=30)
        kept = {(path.parent.parent.name, path.parent.name, path.stem) for path in work.glob("*/*/*.tif")}
        proxy.reset()
        proxy.delay = 0.0
        code, output = mirror(tmp_path / "data", proxy.url, "--data-set", "1001", *REGION)
        assert code == 0, output
        again = region_requests(proxy)
    assert kept and not kept & again
    with running_server(Settings(data_dir=tmp_path / "data")) as base:
        for url in ("section_image_download/2001?downsample=1", "section_image_download/2001?expression=true"):
            source = decode(httpx2.get(f"{live_server}/api/v2/{url}", timeout=30).content)
            assert psnr(source, decode(httpx2.get(f"{base}/api/v2/{url}", timeout=30).content)) >= 35
    with sqlite3.connect(tmp_path / "data" / "tierserve.db") as db:
        assert db.execute("SELECT id FROM sub_images ORDER BY id").fetchall() == [(2001,), (2002,)]


def test_an_id_holding_other_content_is_refused(live_server: str, tmp_path: Path) -> None:
    code, output = mirror(tmp_path, live_server, "--data-set", "1002", *REGION)
    assert code == 0, output
    with sqlite3.connect(tmp_path / "tierserve.db") as db:
        db.execute("UPDATE sub_images SET section_number = 99 WHERE id = 2101")
    code, output = mirror(tmp_path, live_server, "--data-set", "1002", *REGION)
    assert code == 1
    assert "refused" in output and "2101" in output
    with sqlite3.connect(tmp_path / "tierserve.db") as db:
        db.execute("UPDATE data_sets SET name = 'something else' WHERE id = 1002")
    code, output = mirror(tmp_path, live_server, "--data-set", "1002", *REGION)
    assert code == 1
    assert "data set id 1002 exists locally" in output


def test_an_unknown_id_at_the_source_is_an_error(live_server: str, tmp_path: Path) -> None:
    code, output = mirror(tmp_path, live_server, "--data-set", "424242")
    assert code == 1
    assert "no SectionDataSet with id 424242" in output


def test_nothing_selected_is_a_usage_error(tmp_path: Path) -> None:
    code, output = mirror(tmp_path, "http://127.0.0.1:9")
    assert code == 2
    assert "--data-set" in output


class JpegOnly:
    """A source without native-depth output, as the Allen API: `format` is an unknown parameter (400)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and b"format=" in scope.get("query_string", b""):
            await JSONResponse({"success": False, "msg": "unknown parameter format"}, 400)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def test_a_jpeg_only_source_keeps_its_8_bit_data(collection: Collection, tmp_path: Path) -> None:
    with running_server(collection.settings, wrap=JpegOnly) as source:
        code, output = mirror(tmp_path, source, "--data-set", "1002", *REGION)
        assert code == 0, output
        assert "8-bit data of a 12-bit image" in output
        with running_server(Settings(data_dir=tmp_path)) as base:
            image = httpx2.get(f"{base}/api/v2/data/SectionImage/2101.json", timeout=30).json()["msg"][0]
            assert image["bits_per_component"] == 8
            ranges = records(base, "model::Equalization,rma::criteria,[section_data_set_id$eq1002]")
            assert [ranges[0][f"{c}_{end}"] for c in ("red", "green", "blue") for end in ("lower", "upper")] == [
                0,
                255,
                0,
                255,
                0,
                255,
            ]
            # full resolution and the 8-bit projection layer: the source's own 8-bit answers, stored again
            # (PSNR >= 35); a tier is the mean of samples the source clipped to its window before the mirror
            # saw them, where the source clips the mean (measured 34.7 dB): the 8-bit fallback's known cost
            for url, floor in (
                ("section_image_download/2101?left=300&top=200&width=600&height=400", 35),
                ("projection_image_download/2101?projection=true", 35),
                ("section_image_download/2101?downsample=1", 32),
            ):
                expected = decode(httpx2.get(f"{source}/api/v2/{url}", timeout=30).content)
                assert psnr(expected, decode(httpx2.get(f"{base}/api/v2/{url}", timeout=30).content)) >= floor


class DamagesOneRegion:
    """A source that once answers the region at left=256, top=0 with the first 300 bytes of its TIFF
    (a whole answer by HTTP's measure: Content-Length says 300)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.damaged = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        query = dict(parse_qsl(scope.get("query_string", b"").decode()))
        if self.damaged or scope["type"] != "http" or (query.get("left"), query.get("top")) != ("256", "0"):
            await self.app(scope, receive, send)
            return
        self.damaged = True
        start: dict[str, Any] = {}
        body = bytearray()

        async def cut(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
                return
            body.extend(message.get("body", b""))
            if not message.get("more_body", False):
                headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
                await send({**start, "headers": [*headers, (b"content-length", b"300")]})
                await send({"type": "http.response.body", "body": bytes(body[:300])})

        await self.app(scope, receive, cut)


def test_a_damaged_region_fails_its_image_and_is_fetched_again(collection: Collection, tmp_path: Path) -> None:
    with running_server(collection.settings, wrap=DamagesOneRegion) as source:
        code, output = mirror(tmp_path, source, "--data-set", "1002", *REGION)
        assert code == 1
        assert "r0000-c0001.tif" in output and "fetched again by a re-run" in output
        code, output = mirror(tmp_path, source, "--data-set", "1002", *REGION)
        assert code == 0, output
        assert "mirrored 1, already present 0, failed 0" in output
        with running_server(Settings(data_dir=tmp_path)) as base:
            url = "/api/v2/section_image_download/2101?format=tiff"
            expected = tifffile.imread(io.BytesIO(httpx2.get(source + url, timeout=30).content))
            assert np.array_equal(tifffile.imread(io.BytesIO(httpx2.get(base + url, timeout=30).content)), expected)

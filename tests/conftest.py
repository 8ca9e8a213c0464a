"""Shared fixtures: a synthetic collection with known pixels, ingested into a real SQLite database and
real pyramid files, served in-process (TestClient) and by a real uvicorn server on loopback."""

from __future__ import annotations

import contextlib
import functools
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import numpy as np
import numpy.typing as npt
import pytest
import pyvips
import uvicorn
import yaml
from fastapi.testclient import TestClient
from hypothesis import settings
from sqlalchemy import create_engine, text
from starlette.types import ASGIApp

from tests.images import multiscale_pattern, slide_pattern
from tierserve.api.app import create_app
from tierserve.api.http_protocol import BoundedHttpToolsProtocol, HeadLimits
from tierserve.cli import run_ingest
from tierserve.db.models import Base
from tierserve.settings import Settings

# CI runs the same hypothesis examples every time (a landing must not depend on luck); the long,
# exploring runs are on demand (python -m bench.fuzz).
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

EQUALIZATION = [(0, 923), (0, 987), (0, 4095)]
SUB_RECT = (200, 150, 1000, 700)


@dataclass(frozen=True)
class Collection:
    """The synthetic collection: full-resolution source arrays and the settings it is served with."""

    settings: Settings
    manifest: Path
    rgb: npt.NDArray[np.int64]  # 1100 x 1500 x 3, 8-bit: image 2001 (and the scan of sub-image 2002)
    expression: npt.NDArray[np.int64]  # expression mask of 2001
    fluorescence: npt.NDArray[np.int64]  # 900 x 1300 x 3, 12-bit: images 2101 (equalized) and 2102
    projection: npt.NDArray[np.int64]  # 1-band 8-bit projection layer of 2101
    plate: npt.NDArray[np.int64]  # 500 x 700 x 3 atlas plate 3001
    annotations: dict[int, npt.NDArray[np.int64]]  # atlas id -> annotation of 3001


def _save(array: npt.NDArray[np.int64], path: Path, dtype: str) -> str:
    image = pyvips.Image.new_from_array(np.ascontiguousarray(array.astype(dtype)))
    if path.suffix == ".png":
        image.pngsave(str(path))
    else:
        image.tiffsave(str(path), compression="deflate", tile=True, bigtiff=path.name.startswith("big"))
    return path.name


def _manifest(directory: Path, arrays: dict[str, npt.NDArray[np.int64]]) -> dict[str, object]:
    x, y, w, h = SUB_RECT
    return {
        "version": 1,
        "quality": 95,
        "atlases": [
            {"id": 1, "name": "Test atlas A", "image_type": "Atlas - Test A"},
            {"id": 2, "name": "Test atlas B", "image_type": "Atlas - Test B"},
        ],
        "section_data_sets": [
            {
                "id": 1001,
                "name": "ISH",
                "images": [
                    {
                        "id": 2001,
                        "section_number": 1,
                        "resolution": 1.0,
                        "source": _save(arrays["rgb"], directory / "rgb.png", "uint8"),
                        "layers": [
                            {
                                "kind": "expression",
                                "source": _save(arrays["expression"], directory / "expr.png", "uint8"),
                            }
                        ],
                    },
                    {
                        "id": 2002,
                        "section_number": 2,
                        "x": x,
                        "y": y,
                        "width": w,
                        "height": h,
                        "source": _save(arrays["rgb"], directory / "big-scan.tif", "uint8"),
                    },
                ],
            },
            {
                "id": 1002,
                "name": "Connectivity",
                "equalization": dict(
                    zip(
                        ["red_lower", "red_upper", "green_lower", "green_upper", "blue_lower", "blue_upper"],
                        [v for pair in EQUALIZATION for v in pair],
                        strict=True,
                    )
                ),
                "images": [
                    {
                        "id": 2101,
                        "section_number": 1,
                        "bits_per_component": 12,
                        "resolution": 0.35,
                        "source": _save(arrays["fluorescence"], directory / "fluo.tif", "uint16"),
                        "layers": [
                            {
                                "kind": "projection",
                                "source": _save(arrays["projection"], directory / "proj.png", "uint8"),
                            }
                        ],
                    },
                ],
            },
            {
                "id": 1003,
                "name": "Connectivity without equalization",
                "images": [
                    {"id": 2102, "section_number": 1, "bits_per_component": 12, "source": "fluo.tif"},
                ],
            },
        ],
        "atlas_data_sets": [
            {
                "id": 1004,
                "name": "Plates",
                "atlases": [1, 2],
                "images": [
                    {
                        "id": 3001,
                        "section_number": 5,
                        "source": _save(arrays["plate"], directory / "plate.tif", "uint8"),
                        "layers": [
                            {
                                "kind": "annotation",
                                "atlas": atlas,
                                "source": _save(
                                    arrays[f"annotation{atlas}"], directory / f"annotation{atlas}.png", "uint8"
                                ),
                            }
                            for atlas in (2, 1)
                        ],
                    },
                ],
            },
        ],
    }


def database_url(data_dir: Path) -> str | None:
    """`TIERSERVE_TEST_DATABASE_URL` (emptied first) when set, e.g. a PostgreSQL URL; else the SQLite default."""
    url = os.environ.get("TIERSERVE_TEST_DATABASE_URL")
    if not url:
        return None
    engine = create_engine(url)
    with engine.begin() as connection:
        Base.metadata.drop_all(connection)
        connection.execute(text("DROP TABLE IF EXISTS alembic_version"))
    engine.dispose()
    return url


@pytest.fixture(scope="session")
def collection(tmp_path_factory: pytest.TempPathFactory) -> Collection:
    root = tmp_path_factory.mktemp("collection")
    sources = root / "sources"
    sources.mkdir()
    rgb = slide_pattern(1100, 1500, seed=1)
    luminance = rgb.mean(axis=2, keepdims=True).round().astype(np.int64)
    expression = np.repeat(np.where(luminance > 140, 255 - luminance, 0), 3, axis=2)
    fluorescence = multiscale_pattern(900, 1300, 3, 4095, seed=3)
    projection = np.clip(fluorescence[..., 1] // 16, 0, 255)
    plate = slide_pattern(500, 700, seed=4)
    palette = np.array([[230, 230, 230], [200, 60, 60], [60, 160, 80], [70, 90, 210], [220, 190, 60]])
    ys, xs = np.mgrid[0:500, 0:700]
    annotations = {atlas: palette[(ys // 50 + xs // 70 * atlas) % len(palette)] for atlas in (1, 2)}
    arrays = {
        "rgb": rgb,
        "expression": expression,
        "fluorescence": fluorescence,
        "projection": projection,
        "plate": plate,
        "annotation1": annotations[1],
        "annotation2": annotations[2],
    }
    manifest = sources / "manifest.yaml"
    manifest.write_text(yaml.safe_dump(_manifest(sources, arrays), sort_keys=False))
    settings = Settings(data_dir=root / "data", database_url=database_url(root / "data"))
    report = run_ingest(settings, manifest)
    assert report.ok, report.failed
    return Collection(settings, manifest, rgb, expression, fluorescence, projection, plate, annotations)


@pytest.fixture(scope="session")
def client(collection: Collection) -> Iterator[TestClient]:
    with TestClient(create_app(collection.settings), raise_server_exceptions=False) as test_client:
        yield test_client


#: The `tierserve` command, run by this interpreter.
TIERSERVE = [sys.executable, "-m", "tierserve"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_healthy(base: str, process: subprocess.Popen[Any], why: Callable[[], str] = str) -> None:
    """Wait (at most 60 s) until `base`/healthz answers 200; fail the test, with `why()`, when `process`
    exits first or time runs out."""
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx2.get(f"{base}/healthz", timeout=2).raise_for_status()
            return
        except httpx2.TransportError:
            if time.monotonic() > deadline or process.poll() is not None:
                pytest.fail(f"server did not start: {why()}")
            time.sleep(0.2)


@dataclass
class ServeProcess:
    """A running `tierserve serve`: its process, base URL, and the files its stdout and stderr go to."""

    process: subprocess.Popen[bytes]
    base: str
    stdout: Path
    stderr: Path


@contextlib.contextmanager
def serve_process(collection: Collection, folder: Path, *args: str, **variables: str) -> Iterator[ServeProcess]:
    """`tierserve serve ARGS` on a free port with `variables` in its environment and TMPDIR in `folder`
    (its temporary folders land there); its output goes to files in `folder`. Stopped (SIGTERM) on exit."""
    port = free_port()
    (folder / "tmp").mkdir(parents=True)
    env = {
        **os.environ,
        "TIERSERVE_DATA_DIR": str(collection.settings.data_dir),
        "TIERSERVE_DATABASE_URL": collection.settings.resolved_database_url,
        "TIERSERVE_PORT": str(port),
        "TMPDIR": str(folder / "tmp"),
        **variables,
    }
    stdout, stderr = folder / "stdout", folder / "stderr"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen([*TIERSERVE, "serve", *args], env=env, stdout=out, stderr=err)
        served = ServeProcess(process, f"http://127.0.0.1:{port}", stdout, stderr)
        try:
            wait_until_healthy(served.base, process, stderr.read_text)
            yield served
        finally:
            process.terminate()
            process.wait(timeout=30)


def bounded_config(app: ASGIApp, settings: Settings, port: int) -> uvicorn.Config:
    """uvicorn on 127.0.0.1:`port` with the protocol and limits `tierserve serve` runs with."""
    protocol = functools.partial(BoundedHttpToolsProtocol, limits=HeadLimits.from_settings(settings))
    # uvicorn calls `http` as it would call the protocol class
    return uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", http=protocol)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def live_server(collection: Collection) -> Iterator[str]:
    """A real uvicorn server on loopback serving the collection; yields its base URL."""
    with running_server(collection.settings) as base:
        yield base


@contextlib.contextmanager
def serving(app: ASGIApp, settings: Settings) -> Iterator[uvicorn.Server]:
    """`app` in a real uvicorn server with tierserve's protocol and the limits of `settings`, on a free
    loopback port (`server.config.port`), in a thread; stopped on exit."""
    server = uvicorn.Server(bounded_config(app, settings, free_port()))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield server
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextlib.contextmanager
def running_server(settings: Settings, wrap: Callable[[ASGIApp], ASGIApp] | None = None) -> Iterator[str]:
    """A real uvicorn server on loopback serving what `settings` name (the app inside `wrap`, if given),
    in a thread; yields its base URL."""
    app = create_app(settings)
    with serving(wrap(app) if wrap else app, settings) as server:
        yield f"http://127.0.0.1:{server.config.port}"

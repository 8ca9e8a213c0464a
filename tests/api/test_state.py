"""A worker's state is built from the settings, the core's knobs included."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Collection
from tests.images import decode_jpeg, psnr
from tierserve.api.app import create_app
from tierserve.api.state import AppState
from tierserve.core import area_kernel
from tierserve.settings import Settings


def test_a_worker_decodes_with_the_threads_of_its_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tierserve.settings.cpu_cores", lambda: 6)
    for settings, expected in (
        (Settings(data_dir=tmp_path, workers=2), 6),
        (Settings(data_dir=tmp_path, decode_threads=5), 5),
    ):
        state = AppState.from_settings(settings)
        try:
            assert state.tiles.decode_threads == expected
        finally:
            state.close()


def test_a_worker_decodes_jpeg_tiles_with_the_dct_of_its_settings(
    collection: Collection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TIERSERVE_JPEG_DCT=fast: a region read tile by tile has other bytes, close pixels, another ETag."""
    region = "/api/v2/section_image_download/2001?left=100&top=50&width=600&height=400&quality=100"
    answers = {}
    for dct in ("accurate", "fast"):
        monkeypatch.setenv("TIERSERVE_JPEG_DCT", dct)
        settings = Settings(data_dir=collection.settings.data_dir, database_url=collection.settings.database_url)
        with TestClient(create_app(settings)) as client:
            answers[dct] = client.get(region)
    accurate, fast = answers["accurate"], answers["fast"]
    assert accurate.status_code == fast.status_code == 200
    assert fast.content != accurate.content and fast.headers["etag"] != accurate.headers["etag"]
    assert psnr(decode_jpeg(fast.content), decode_jpeg(accurate.content)) >= 40


def test_the_health_check_names_the_area_average(collection: Collection, monkeypatch: pytest.MonkeyPatch) -> None:
    """Operators see whether the install built the compiled kernel or resamples with NumPy."""
    with TestClient(create_app(collection.settings)) as client:
        for built, name in ((True, "compiled"), (False, "numpy")):
            monkeypatch.setattr(area_kernel, "available", lambda built=built: built)
            assert client.get("/healthz").json()["area_average"] == name


def test_a_worker_without_the_compiled_kernel_says_so_at_start(
    collection: Collection, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(area_kernel, "available", lambda: False)
    with caplog.at_level("WARNING", logger="tierserve.api.app"), TestClient(create_app(collection.settings)):
        pass
    assert "C area average (core/area.c) was not built" in caplog.text

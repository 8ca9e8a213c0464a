"""A worker's state is built from the settings, the core's knobs included."""

from __future__ import annotations

from pathlib import Path

import pytest

from tierserve.api.state import AppState
from tierserve.settings import Settings


def test_a_worker_decodes_with_the_threads_of_its_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 6)
    for settings, expected in (
        (Settings(data_dir=tmp_path, workers=2), 6),
        (Settings(data_dir=tmp_path, decode_threads=5), 5),
    ):
        state = AppState.from_settings(settings)
        try:
            assert state.tiles.decode_threads == expected
        finally:
            state.close()

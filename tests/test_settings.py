"""Settings come from TIERSERVE_* variables and survive the hand-over to worker processes."""

from __future__ import annotations

from pathlib import Path

import pytest

from tierserve.settings import Settings


def test_environment_round_trip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    original = Settings(
        data_dir=tmp_path, port=9001, workers=3, cors_origins=["https://a.org", "https://b.org"], queue_timeout=2.5
    )
    for name in Settings.model_fields:
        monkeypatch.delenv(f"TIERSERVE_{name.upper()}", raising=False)
    original.export_environment()
    assert Settings() == original
    assert Settings().resolved_database_url == f"sqlite:///{tmp_path / 'tierserve.db'}"

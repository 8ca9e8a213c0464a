"""atldld's data-set and image listing and its image download, against a real tierserve on loopback."""

from __future__ import annotations

from pathlib import Path

from tests.compat.conftest import run_client

CLIENT = Path(__file__).with_name("atldld_client.py")


def test_atldld_lists_and_downloads(client_python: Path, live_server: str, tmp_path: Path) -> None:
    result = run_client(client_python, CLIENT, live_server, tmp_path)
    assert result["data_sets"] == [1001]
    assert result["images"] == [2001, 2002]
    assert result["by_data_set"] == [2101]
    assert result["primary"] == [[275, 375, 3], "uint8"]
    assert result["expression"] == [[137, 187, 3], "uint8"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2001-2.jpg", "2001-3-expression.jpg"]

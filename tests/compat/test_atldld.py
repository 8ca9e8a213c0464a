"""atldld's data-set and image listing and its image download, against a real tierserve on loopback."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

CLIENT = Path(__file__).with_name("atldld_client.py")


def test_atldld_lists_and_downloads(client_python: Path, live_server: str, tmp_path: Path) -> None:
    completed = subprocess.run(
        [str(client_python), str(CLIENT), live_server, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert result["data_sets"] == [1001]
    assert result["images"] == [2001, 2002]
    assert result["by_data_set"] == [2101]
    assert result["primary"] == [[275, 375, 3], "uint8"]
    assert result["expression"] == [[137, 187, 3], "uint8"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2001-2.jpg", "2001-3-expression.jpg"]

"""A missing or corrupt pyramid is a 500 naming the image; other images keep being served."""

from __future__ import annotations

import shutil
from pathlib import Path

from fastapi.testclient import TestClient

from tests.conftest import Collection
from tierserve.api.app import create_app
from tierserve.settings import Settings


def test_missing_and_corrupt_files_name_the_image_and_spare_the_rest(collection: Collection, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(collection.settings.data_dir, data)
    layers = data / "store" / "sub_images"
    next((layers / "2001").rglob("expression.ome.tif")).unlink()
    primary = next((layers / "2102").rglob("primary.ome.tif"))
    primary.write_bytes(primary.read_bytes()[:20_000])
    with TestClient(
        create_app(Settings(data_dir=data, database_url=collection.settings.database_url)),
        raise_server_exceptions=False,
    ) as client:
        missing = client.get("/api/v2/section_image_download/2001?expression=true")
        assert missing.status_code == 500
        assert missing.json() == {
            "success": False,
            "msg": "image 2001: stored pyramid is missing",
        }
        corrupt = client.get("/api/v2/section_image_download/2102")
        assert corrupt.status_code == 500
        assert corrupt.json()["msg"].startswith("image 2102: stored pyramid")
        assert str(data) not in corrupt.text
        assert client.get("/api/v2/section_image_download/2001?downsample=3").status_code == 200
        # A request a stored tile may answer as it is reads the file on the event loop: the same answers.
        one_tile = "left=256&top=256&width=256&height=256&quality=95"
        missing_tile = client.get(f"/api/v2/section_image_download/2001?expression=true&{one_tile}")
        assert missing_tile.status_code == 500
        assert missing_tile.json() == {"success": False, "msg": "image 2001: stored pyramid is missing"}
        corrupt_tile = client.get(f"/api/v2/section_image_download/2102?{one_tile}")
        assert corrupt_tile.status_code == 500
        assert corrupt_tile.json()["msg"].startswith("image 2102: stored pyramid")
        assert client.get(f"/api/v2/section_image_download/2001?{one_tile}").status_code == 200

"""AllenSDK's ImageDownloadApi, unchanged, pointed at a real tierserve on loopback by base URL alone."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from tests.compat.conftest import run_client
from tests.conftest import EQUALIZATION, Collection
from tests.images import expected_region, psnr, window

CLIENT = Path(__file__).with_name("allensdk_client.py")


def test_allensdk_queries_and_downloads(
    client_python: Path, live_server: str, collection: Collection, tmp_path: Path
) -> None:
    result = run_client(client_python, CLIENT, live_server, tmp_path)
    assert result["section_image_query"] == [2001, 2002]
    (record,) = result["section_image_query_records"]  # type: ignore[misc]
    assert record["id"] == 2101 and record["bits_per_component"] == 12
    assert result["get_section_image_ranges"] == [[v for pair in EQUALIZATION for v in pair]]
    assert result["get_section_image_ranges_dicts"] == [
        {"red_lower": 0, "red_upper": 923, "green_lower": 0, "green_upper": 987, "blue_lower": 0, "blue_upper": 4095}
    ]
    assert result["atlas_image_query"] == [3001]
    assert result["atlas_image_query_typed"] == [3001]
    assert result["atlas_image_query_other_type"] == []
    assert result["missing"] == "HTTPError"
    assert not (tmp_path / "missing.jpg").exists()

    def image(name: str) -> np.ndarray:
        return np.asarray(Image.open(tmp_path / name).convert("RGB"))

    assert psnr(image("section.jpg"), expected_region(collection.rgb, 2, 0, 0, 375, 275)) > 35
    assert psnr(image("region.jpg"), expected_region(collection.rgb, 2, 600, 200, 100, 50)) > 33
    assert psnr(image("expression.jpg"), expected_region(collection.expression, 1, 0, 0, 750, 550)) > 30
    atlas = image("atlas.jpg")  # hard colour edges in 4:2:0 JPEG tiles: a lower bar, but far from atlas 1's
    assert psnr(atlas, expected_region(collection.annotations[2], 1, 0, 0, 350, 250)) > 25
    assert psnr(atlas, expected_region(collection.annotations[1], 1, 0, 0, 350, 250)) < 15
    projection = expected_region(collection.projection[..., np.newaxis], 1, 0, 0, 650, 450)
    assert psnr(image("projection.jpg"), np.repeat(projection, 3, axis=2)) > 35
    ranged = window(expected_region(collection.fluorescence, 1, 0, 0, 650, 450), EQUALIZATION)
    assert psnr(image("ranged.jpg"), ranged) > 40
    assert image("colormap.jpg").shape == (275, 375, 3)
    assert image("filters.jpg").shape == (225, 325, 3)

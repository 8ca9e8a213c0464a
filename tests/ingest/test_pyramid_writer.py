"""Stored pyramids open in standard tools: tifffile (OME-XML, SubIFD levels) and libvips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import pyvips
import tifffile

from tests.images import multiscale_pattern, psnr, slide_pattern, tier
from tierserve.ingest.pyramid_writer import tiles_in_pyramid, write_pyramid


def written(tmp_path: Path, array: np.ndarray, quality: int = 90) -> Path:
    path = tmp_path / "p.ome.tif"
    counted: list[int] = []
    write_pyramid(
        pyvips.Image.new_from_array(array), path, tmp_path, quality=quality, resolution_um=0.35, on_tiles=counted.append
    )
    assert sum(counted) == tiles_in_pyramid(array.shape[1], array.shape[0])
    return path


def test_rgb_pyramid_is_ome_tiff_with_ycbcr_420_jpeg_tiles(tmp_path: Path) -> None:
    array = slide_pattern(1200, 2100, seed=1).astype(np.uint8)
    path = written(tmp_path, array)
    with tifffile.TiffFile(path) as tif:
        assert tif.is_ome and tif.is_bigtiff
        series = tif.series[0]
        shapes = [level.shape for level in series.levels]
        assert shapes == [(1200, 2100, 3), (600, 1050, 3), (300, 525, 3), (150, 262, 3)]
        page = tif.pages[0]
        assert page.compression == tifffile.COMPRESSION.JPEG
        assert page.photometric == tifffile.PHOTOMETRIC.YCBCR
        assert page.subsampling == (2, 2)
        assert page.tile == (256, 256)
        assert len(page.subifds) == 3
        assert 'PhysicalSizeX="0.35"' in tif.ome_metadata
        level1 = series.levels[1].asarray()
    assert psnr(level1, tier(array, 1)) > 30
    for n, level in enumerate(series.levels):
        image = pyvips.Image.tiffload(str(path), subifd=n - 1, fail_on="warning")
        assert (image.width, image.height, image.bands) == (level.shape[1], level.shape[0], 3)


def test_deep_pyramid_is_lossless_deflate_with_predictor(tmp_path: Path) -> None:
    array = multiscale_pattern(700, 600, 3, 4095, seed=2).astype(np.uint16)
    path = written(tmp_path, array)
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        assert page.compression == tifffile.COMPRESSION.ADOBE_DEFLATE
        assert page.predictor == tifffile.PREDICTOR.HORIZONTAL
        assert (tif.series[0].levels[0].asarray() == array).all()
        level1 = tif.series[0].levels[1].asarray().astype(float)
    assert np.abs(level1 - tier(array, 1)).max() <= 1  # 2x2 mean, rounded
    vips = pyvips.Image.tiffload(str(path), fail_on="warning")
    assert (vips.numpy() == array).all()


@pytest.mark.parametrize(("height", "width"), [(1, 1), (300, 7), (513, 1025)])
def test_single_band_and_odd_sizes(tmp_path: Path, height: int, width: int) -> None:
    array = (np.arange(height * width) % 256).astype(np.uint8).reshape(height, width)
    path = written(tmp_path, array)
    with tifffile.TiffFile(path) as tif:
        shapes = [level.shape for level in tif.series[0].levels]
    expected = [(height, width)]
    while max(expected[-1]) >= 512 and min(expected[-1]) >= 2:
        expected.append((expected[-1][0] // 2, expected[-1][1] // 2))
    assert shapes == expected

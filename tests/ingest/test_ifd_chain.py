"""Pyramids are readable both as OME-TIFF SubIFDs and as a main-chain page pyramid, on the same tiles."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import pyvips
import tifffile

from tests.images import slide_pattern
from tierserve.core.tiers import level_count
from tierserve.ingest.ifd_chain import chain_levels
from tierserve.ingest.pyramid_writer import write_pyramid

WIDTH, HEIGHT = 1300, 900


@pytest.fixture(scope="module")
def pyramid(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("chain")
    path = directory / "rgb.ome.tif"
    image = pyvips.Image.new_from_array(slide_pattern(HEIGHT, WIDTH, seed=2).astype(np.uint8))
    write_pyramid(image, path, directory, quality=90)
    return path


def test_ome_readers_still_see_one_image_with_its_levels(pyramid: Path) -> None:
    with tifffile.TiffFile(pyramid) as tif:
        assert tif.is_ome
        assert len(tif.series) == 1
        shapes = [level.shape[:2] for level in tif.series[0].levels]
    assert shapes == [(HEIGHT >> n, WIDTH >> n) for n in range(level_count(WIDTH, HEIGHT))]


def test_main_chain_pages_are_the_levels_on_the_same_tiles(pyramid: Path) -> None:
    levels = level_count(WIDTH, HEIGHT)
    with tifffile.TiffFile(pyramid) as tif:
        tif.pages.useframes = False
        assert len(tif.pages) == levels
        for n in range(1, levels):
            page, sub = tif.pages.get(n), tif.series[0].levels[n].pages[0]
            assert page.dataoffsets == sub.dataoffsets  # no tile data is copied
            assert page.subfiletype == 1
            assert np.array_equal(page.asarray(), sub.asarray())


def test_libvips_reads_each_level_as_a_page_and_as_a_subifd(pyramid: Path) -> None:
    for n in range(1, level_count(WIDTH, HEIGHT)):
        page = pyvips.Image.tiffload(str(pyramid), page=n, fail_on="warning")
        sub = pyvips.Image.tiffload(str(pyramid), subifd=n - 1, fail_on="warning")
        assert (page.width, page.height) == (WIDTH >> n, HEIGHT >> n)
        assert np.array_equal(page.numpy(), sub.numpy())


def test_a_chained_file_is_not_chained_twice(pyramid: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy.ome.tif"
    copy.write_bytes(pyramid.read_bytes())
    with pytest.raises(ValueError, match="more than one main directory"):
        chain_levels(copy)
    assert copy.read_bytes() == pyramid.read_bytes()


def test_classic_tiff_and_non_tiff_are_refused(tmp_path: Path) -> None:
    classic = tmp_path / "classic.tif"
    tifffile.imwrite(classic, np.zeros((8, 8), np.uint8))
    with pytest.raises(ValueError, match="not a BigTIFF"):
        chain_levels(classic)
    other = tmp_path / "other.tif"
    other.write_bytes(b"GIF89a" + bytes(32))
    with pytest.raises(ValueError, match="not a TIFF"):
        chain_levels(other)


def test_a_single_level_image_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "small.ome.tif"
    write_pyramid(pyvips.Image.new_from_array(np.zeros((100, 120), np.uint8)), path, tmp_path, quality=90)
    with tifffile.TiffFile(path) as tif:
        assert len(tif.pages) == 1
    assert chain_levels(path) == 0

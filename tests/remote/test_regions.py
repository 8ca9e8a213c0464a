"""Regions of a mirrored image: they tile it exactly, and joining their files gives back its pixels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import pyvips
import tifffile

from tierserve.errors import IngestError
from tierserve.remote import regions
from tierserve.remote.regions import Region, join_regions, plan_regions


@pytest.mark.parametrize(
    ("width", "height", "size"), [(1500, 1100, 256), (512, 512, 256), (1, 1, 2048), (3000, 700, 1024)]
)
def test_regions_tile_the_image_once(width: int, height: int, size: int) -> None:
    covered = np.zeros((height, width), dtype=np.int64)
    for region in plan_regions(width, height, size):
        assert 0 < region.width <= size and 0 < region.height <= size
        assert (region.left, region.top) == (region.column * size, region.row * size)
        covered[region.top : region.top + region.height, region.left : region.left + region.width] += 1
    assert (covered == 1).all()


@pytest.mark.parametrize(("width", "height", "size"), [(0, 10, 256), (10, 10, 300), (10, 10, 0)])
def test_bad_plans_are_refused(width: int, height: int, size: int) -> None:
    with pytest.raises(ValueError):
        plan_regions(width, height, size)


def test_region_params_ask_for_full_resolution() -> None:
    region = Region(1, 2, 512, 256, 100, 50)
    assert region.params() == {"downsample": 0, "left": 512, "top": 256, "width": 100, "height": 50}
    assert region.stem == "r0001-c0002"


def write_regions(image: npt.NDArray[np.generic], size: int, folder: Path) -> tuple[list[Path], list[Region]]:
    """Each region of `image` as a TIFF file of its own (what a mirror fetches)."""
    planned = plan_regions(image.shape[1], image.shape[0], size)
    files = []
    for region in planned:
        path = folder / f"{region.stem}.tif"
        part = image[region.top : region.top + region.height, region.left : region.left + region.width]
        tifffile.imwrite(path, np.ascontiguousarray(part))
        files.append(path)
    return files, planned


@pytest.mark.parametrize("max_open", [256, 4])  # 4: more regions than that are joined through row strips
@pytest.mark.parametrize(
    "image",
    [
        np.random.default_rng(1).integers(0, 256, (700, 1100, 3), dtype=np.uint8),
        np.random.default_rng(2).integers(0, 4096, (600, 530), dtype=np.uint16),
    ],
    ids=["rgb8", "grey12"],
)
def test_joining_gives_back_the_pixels(
    image: npt.NDArray[np.generic], max_open: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(regions, "MAX_OPEN_FILES", max_open)
    files, planned = write_regions(image, 256, tmp_path)
    out = tmp_path / "joined.tif"
    join_regions(files, planned, image.shape[1], image.shape[0], out, 0.5)
    with tifffile.TiffFile(out) as tif:
        page = tif.pages[0]
        assert page.is_tiled and (page.tilewidth, page.tilelength) == (256, 256)
        numerator, denominator = page.tags["XResolution"].value
        assert numerator / denominator == pytest.approx(20000)  # pixels per cm at 0.5 µm per pixel
        assert np.array_equal(page.asarray(), image)
    assert sorted(path.name for path in tmp_path.iterdir() if not path.name.startswith("r0")) == ["joined.tif"]


def test_an_unknown_pixel_size_is_written_as_the_placeholder(tmp_path: Path) -> None:
    image = np.zeros((300, 300, 3), dtype=np.uint8)
    files, planned = write_regions(image, 256, tmp_path)
    join_regions(files, planned, 300, 300, tmp_path / "joined.tif", None)
    with tifffile.TiffFile(tmp_path / "joined.tif") as tif:
        numerator, denominator = tif.pages[0].tags["XResolution"].value
        assert round(numerator / denominator) == 72
        assert tif.pages[0].tags["ResolutionUnit"].value == 2  # inch: 72 dpi, which ingest reads as unstated


def test_a_region_of_the_wrong_size_is_refused(tmp_path: Path) -> None:
    image = np.zeros((300, 600, 3), dtype=np.uint8)
    files, planned = write_regions(image, 256, tmp_path)
    pyvips.Image.black(10, 10, bands=3).tiffsave(str(files[1]))
    with pytest.raises(IngestError, match=r"r0000-c0001.tif is 10x10, expected 256x256"):
        join_regions(files, planned, 600, 300, tmp_path / "joined.tif", None)
    assert not (tmp_path / "joined.tif").exists()


def test_a_damaged_region_is_refused(tmp_path: Path) -> None:
    image = np.zeros((300, 600, 3), dtype=np.uint8)
    files, planned = write_regions(image, 256, tmp_path)
    files[2].write_bytes(files[2].read_bytes()[:200])
    with pytest.raises(IngestError, match=r"r0000-c0002\.tif"):
        join_regions(files, planned, 600, 300, tmp_path / "joined.tif", None)
    assert not (tmp_path / "joined.tif").exists()
    assert not list(tmp_path.glob("*.part"))

"""Small boxes decoded tile by tile equal what libvips reads from the same stored level."""

from __future__ import annotations

import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import pyvips
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.images import multiscale_pattern, slide_pattern
from tierserve.core import tiles as tiles_module
from tierserve.core.pyramid import PyramidFile
from tierserve.core.tiers import Box, level_count
from tierserve.core.tiles import LevelTiles, TileIndex, set_decode_threads, tile_index
from tierserve.errors import StorageError
from tierserve.ingest.pyramid_writer import write_pyramid

SIZE = (1100, 700)  # width, height: edge tiles are partial at every level


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    directory = tmp_path_factory.mktemp("tiles")
    width, height = SIZE
    arrays = {
        "rgb8": slide_pattern(height, width, seed=5).astype(np.uint8),
        "grey8": slide_pattern(height, width, seed=6)[..., 1].astype(np.uint8),
        "rgb12": multiscale_pattern(height, width, 3, 4095, seed=7).astype(np.uint16),
    }
    paths = {}
    for name, array in arrays.items():
        path = directory / f"{name}.ome.tif"
        write_pyramid(pyvips.Image.new_from_array(array), path, directory, quality=90)
        paths[name] = str(path)
    return paths


@st.composite
def boxes(draw: st.DrawFn) -> tuple[int, Box]:
    level = draw(st.integers(0, level_count(*SIZE) - 1))
    width, height = SIZE[0] >> level, SIZE[1] >> level
    x, y = draw(st.integers(0, width - 1)), draw(st.integers(0, height - 1))
    return level, Box(x, y, draw(st.integers(1, width - x)), draw(st.integers(1, height - y)))


@pytest.mark.parametrize("name", ["rgb8", "grey8", "rgb12"])
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(box=boxes())
def test_decoded_tiles_equal_the_libvips_read(files: dict[str, str], name: str, box: tuple[int, Box]) -> None:
    level, b = box
    pyramid = PyramidFile(files[name])
    got = pyramid.read(level, b)
    expected = pyramid.level(level).crop(b.x, b.y, b.width, b.height)
    assert (got.width, got.height, got.bands, got.format) == (b.width, b.height, expected.bands, expected.format)
    assert got.interpretation == expected.interpretation
    assert np.array_equal(got.numpy(), expected.numpy())


def test_reads_alone_and_side_by_side_agree(files: dict[str, str]) -> None:
    """A read alone in the process decodes its tile rows on several threads; reads that overlap decode
    their own tiles. Both give libvips's pixels."""
    pyramid = PyramidFile(files["rgb12"])
    boxes = [Box(x, y, 1100 - x - 7 * x // 10, 700 - y - y // 2) for x in range(0, 300, 37) for y in (0, 90, 301)]
    expected = [pyramid.level(0).crop(b.x, b.y, b.width, b.height).numpy() for b in boxes]
    alone = [pyramid.read_array(0, b) for b in boxes]
    with ThreadPoolExecutor(4) as pool:
        side_by_side = list(pool.map(lambda b: pyramid.read_array(0, b), boxes * 3))
    for got, want in zip(alone + side_by_side, expected * 4, strict=True):
        assert np.array_equal(got, want)


@pytest.mark.parametrize(("threads", "decoded_elsewhere"), [(1, False), (2, True)])
def test_decode_threads_decide_where_rows_are_decoded(
    files: dict[str, str], threads: int, decoded_elsewhere: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read alone decodes its rows of tiles on the reading thread with 1 decode thread, on the pool
    with more; the pixels are the same."""
    index = TileIndex(files["rgb12"])
    decoding_threads: set[str] = set()
    decode_tile = index._tile

    def recording(tiles: LevelTiles, number: int) -> np.ndarray:
        decoding_threads.add(threading.current_thread().name)
        return decode_tile(tiles, number)

    monkeypatch.setattr(index, "_tile", recording)
    monkeypatch.setattr(tiles_module, "_decode_threads", 1)  # restored after the test
    set_decode_threads(threads)
    box = Box(10, 20, 900, 600)  # 3 rows of 256-pixel tiles
    got = index.read(0, box)
    expected = PyramidFile(files["rgb12"]).level(0).crop(box.x, box.y, box.width, box.height).numpy()
    assert np.array_equal(got, expected)
    assert (decoding_threads != {threading.current_thread().name}) is decoded_elsewhere


def test_decode_threads_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1, not 0"):
        set_decode_threads(0)


def test_a_replaced_file_is_read_anew(files: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "layer.ome.tif"
    shutil.copy(files["rgb8"], path)
    box = Box(100, 100, 50, 40)
    first = PyramidFile(str(path)).read(0, box).numpy()
    replacement = tmp_path / "replacement.ome.tif"
    shutil.copy(files["grey8"], replacement)
    replacement.replace(path)  # how the store publishes: a new inode under the same name
    second = PyramidFile(str(path)).read(0, box).numpy()
    assert first.shape == (40, 50, 3)
    assert second.shape == (40, 50)
    assert tile_index(str(path)).levels[0].bands == 1


def test_truncated_tiles_raise_storage_error(files: dict[str, str], tmp_path: Path) -> None:
    data = Path(files["rgb8"]).read_bytes()
    index = tile_index(files["rgb8"])
    last = index.levels[0]
    last_tile = int(last.offsets.argmax())
    cut = int(last.offsets[last_tile]) + 10  # the directories stay whole, the last tile of level 0 does not
    path = tmp_path / "cut.ome.tif"
    path.write_bytes(data[:cut])
    row, col = divmod(last_tile, last.columns)
    with pytest.raises(StorageError, match="truncated"):
        PyramidFile(str(path)).read(0, Box(col * 256, row * 256, 10, 10))
    with pytest.raises(StorageError, match="truncated"):  # the same tile among several rows of tiles
        PyramidFile(str(path)).read(0, Box(0, 0, last.width, last.height))


def test_unreadable_files_raise_storage_error(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.ome.tif"
    garbage.write_bytes(b"II*\x00" + bytes(100))
    with pytest.raises(StorageError, match="cannot be opened"):
        tile_index(str(garbage))
    with pytest.raises(StorageError, match="missing"):
        tile_index(str(tmp_path / "absent.ome.tif"))

"""Small boxes decoded tile by tile equal what libvips and tifffile read from the same stored level;
libjpeg-turbo's fast DCT, when chosen, stays close to them."""

from __future__ import annotations

import dataclasses
import functools
import struct
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import pyvips
import tifffile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.images import decode_jpeg, multiscale_pattern, psnr, slide_pattern, stored_tile
from tierserve.core.pyramid import PyramidFile
from tierserve.core.tiers import Box, level_count
from tierserve.core.tiles import TileReader
from tierserve.errors import StorageError
from tierserve.ingest.pyramid_writer import write_pyramid
from tierserve.storage import ObjectInfo, StoredFile, local_file
from tierserve.storage.memory import MemoryStore

SIZE = (1100, 700)  # width, height: edge tiles are partial at every level
#: Files whose tiles are 8-bit JPEG: tierserve's own (whole JFIF streams, YCbCr 4:2:0 or grey) and
#: libvips' (abbreviated streams after the file's JPEGTables).
JPEG_FILES = ["rgb8", "grey8", "rgb8-tables", "grey8-tables"]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    directory = tmp_path_factory.mktemp("tiles")
    width, height = SIZE
    rgb = pyvips.Image.new_from_array(slide_pattern(height, width, seed=5).astype(np.uint8))
    grey = pyvips.Image.new_from_array(slide_pattern(height, width, seed=6)[..., 1].astype(np.uint8))
    written = {
        "rgb8": rgb,
        "grey8": grey,
        "rgb12": pyvips.Image.new_from_array(multiscale_pattern(height, width, 3, 4095, seed=7).astype(np.uint16)),
    }
    paths = {}
    for name, image in written.items():
        path = directory / f"{name}.ome.tif"
        write_pyramid(image, path, directory, quality=90)
        paths[name] = str(path)
    for name, image in {"rgb8-tables": rgb.copy(interpretation="srgb"), "grey8-tables": grey}.items():
        path = directory / f"{name}.tif"
        # below Q90 libvips writes YCbCr 4:2:0 (from Q90 on, RGB: tifffile decodes those)
        image.tiffsave(
            path, tile=True, tile_width=256, tile_height=256, pyramid=True, subifd=True, Q=75, compression="jpeg"
        )
        paths[name] = str(path)
    return paths


@functools.cache
def tifffile_level(path: str, level: int) -> npt.NDArray[Any]:
    """Level `level` of `path` as tifffile decodes it (imagecodecs), as (height, width, bands)."""
    with tifffile.TiffFile(path) as tif:
        pixels = tif.series[0].levels[level].asarray()
    return pixels.reshape(*pixels.shape[:2], -1)


@pytest.fixture(scope="module")
def tiles() -> Iterator[TileReader]:
    reader = TileReader()
    yield reader
    reader.close()


@pytest.fixture(scope="module")
def remote(files: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> MemoryStore:
    """The same files in a store without local paths: libvips reads them through ranged reads."""
    store = MemoryStore(tmp_path_factory.mktemp("memory-scratch"))
    for name, path in files.items():
        store.put(name, Path(path).read_bytes())
    return store


Opener = Callable[[str], StoredFile]


@pytest.fixture(params=["local", "remote"])
def opener(request: pytest.FixtureRequest, files: dict[str, str], remote: MemoryStore) -> Opener:
    if request.param == "local":
        return lambda name: local_file(Path(files[name]))
    return lambda name: remote.open(remote.stat(name))


@st.composite
def boxes(draw: st.DrawFn) -> tuple[int, Box]:
    level = draw(st.integers(0, level_count(*SIZE) - 1))
    width, height = SIZE[0] >> level, SIZE[1] >> level
    x, y = draw(st.integers(0, width - 1)), draw(st.integers(0, height - 1))
    return level, Box(x, y, draw(st.integers(1, width - x)), draw(st.integers(1, height - y)))


@pytest.mark.parametrize("name", [*JPEG_FILES, "rgb12"])
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(box=boxes())
def test_decoded_tiles_equal_the_libvips_and_tifffile_reads(
    files: dict[str, str], opener: Opener, tiles: TileReader, name: str, box: tuple[int, Box]
) -> None:
    level, b = box
    pyramid = PyramidFile(opener(name), tiles)
    got = pyramid.read(level, b)
    expected = pyramid.level(level).crop(b.x, b.y, b.width, b.height)
    assert (got.width, got.height, got.bands, got.format) == (b.width, b.height, expected.bands, expected.format)
    assert got.interpretation == expected.interpretation
    assert np.array_equal(got.numpy(), expected.numpy())
    by_tifffile = tifffile_level(files[name], level)[b.y : b.y + b.height, b.x : b.x + b.width]
    assert np.array_equal(got.numpy().reshape(by_tifffile.shape), by_tifffile)
    assert pyramid.read_array(level, b).flags.c_contiguous  # handed to the encoder without a copy


@pytest.mark.parametrize("name", [*JPEG_FILES, "rgb12"])
@pytest.mark.parametrize(
    ("level", "box"), [(0, Box(256, 256, 256, 256)), (0, Box(768, 0, 256, 256)), (1, Box(256, 0, 256, 256))]
)
def test_a_box_that_is_one_whole_tile_is_its_decoded_tile(
    files: dict[str, str], opener: Opener, name: str, level: int, box: Box
) -> None:
    """The decoder's array itself, not a copy into a canvas, with the pixels tifffile and libvips read."""
    reader = TileReader(1)
    file = opener(name)
    decoded = recorded_decodes(reader, file, level)
    got = reader.read(file, level, box)
    pyramid = PyramidFile(file, reader)  # held while libvips reads: its images read through its source
    by_libvips = pyramid.level(level).crop(box.x, box.y, box.width, box.height).numpy()
    reader.close()
    by_tifffile = tifffile_level(files[name], level)[box.y : box.y + box.height, box.x : box.x + box.width]
    assert len(decoded) == 1 and np.shares_memory(got, decoded[0])
    assert got.shape == by_tifffile.shape and got.dtype == by_tifffile.dtype and got.flags.c_contiguous
    assert np.array_equal(got, by_tifffile)
    assert np.array_equal(got.reshape(by_libvips.shape), by_libvips)


@pytest.fixture(scope="module")
def oblong(tmp_path_factory: pytest.TempPathFactory) -> str:
    """An 8-bit RGB file of 512 x 128 JPEG tiles (libvips, one level)."""
    path = tmp_path_factory.mktemp("oblong") / "oblong.tif"
    image = pyvips.Image.new_from_array(slide_pattern(SIZE[1], SIZE[0], seed=8).astype(np.uint8))
    image.copy(interpretation="srgb").tiffsave(
        path, tile=True, tile_width=512, tile_height=128, compression="jpeg", Q=75
    )
    return str(path)


@pytest.mark.parametrize(
    ("box", "one_tile"),
    [(Box(512, 128, 512, 128), True), (Box(256, 256, 256, 256), False), (Box(1024, 0, 76, 128), False)],
)
def test_one_whole_tile_of_another_size_is_its_decoded_tile(oblong: str, box: Box, one_tile: bool) -> None:
    """Tiles of 512 x 128: a box that is one of them is its decoded array; a 256 x 256 box across four,
    and the edge tile the level's edge cuts to 76 x 128, are assembled. All have tifffile's pixels."""
    reader = TileReader(1)
    file = local_file(Path(oblong))
    decoded = recorded_decodes(reader, file, 0)
    got = reader.read(file, 0, box)
    reader.close()
    assert np.array_equal(got, tifffile_level(oblong, 0)[box.y : box.y + box.height, box.x : box.x + box.width])
    assert any(np.shares_memory(got, tile) for tile in decoded) is one_tile


def recorded_decodes(reader: TileReader, file: StoredFile, level: int) -> list[npt.NDArray[Any]]:
    """The arrays `reader`'s decoder returns for tiles of `level` of `file` from now on, in order."""
    index = reader.index(file)
    tiles = index.levels[level]
    decode_tile = tiles.decode
    decoded: list[npt.NDArray[Any]] = []

    def recording(data: bytes, tile: int) -> npt.NDArray[Any]:
        decoded.append(decode_tile(data, tile))
        return decoded[-1]

    index.levels = tuple(
        dataclasses.replace(tiles, decode=recording) if n == level else t for n, t in enumerate(index.levels)
    )
    return decoded


@pytest.mark.parametrize("name", [*JPEG_FILES, "rgb12"])
def test_the_fast_dct_decodes_8_bit_jpeg_tiles_close_to_the_accurate_one(
    files: dict[str, str], tiles: TileReader, name: str
) -> None:
    """Every level of the 8-bit JPEG files differs, at 40 dB or better; deflate tiles are untouched."""
    fast = TileReader(jpeg_dct="fast")
    file = local_file(Path(files[name]))
    for level in range(level_count(*SIZE)):
        box = Box(0, 0, SIZE[0] >> level, SIZE[1] >> level)
        got, accurate = fast.read(file, level, box), tiles.read(file, level, box)
        if name in JPEG_FILES:
            assert not np.array_equal(got, accurate), level
            assert psnr(got, accurate) >= 40, level
        else:
            assert np.array_equal(got, accurate), level
    fast.close()


def test_remote_levels_equal_local_ones(files: dict[str, str], remote: MemoryStore, tiles: TileReader) -> None:
    for name in files:
        local = PyramidFile(local_file(Path(files[name])), tiles)
        far = PyramidFile(remote.open(remote.stat(name)), tiles)
        for level in range(level_count(*SIZE)):
            assert np.array_equal(local.level(level).numpy(), far.level(level).numpy()), (name, level)


def test_a_small_read_fetches_its_tiles_in_one_batch(remote: MemoryStore) -> None:
    reader = TileReader()
    file = remote.open(remote.stat("rgb8"))
    reader.index(file)  # parsing the header reads a few blocks, once per file
    before = remote.reads
    reader.read(file, 0, Box(10, 20, 900, 600))  # 12 tiles in 3 rows
    reader.read(file, 1, Box(0, 0, 300, 300))
    assert remote.reads - before == 2
    reader.close()


def test_libvips_opens_a_remote_level_from_the_cached_header(remote: MemoryStore) -> None:
    reader = TileReader()
    file = remote.open(remote.stat("rgb12"))
    reader.index(file)
    before = remote.reads
    PyramidFile(file, reader).level(1)  # directories only: no pixel is read yet
    assert remote.reads == before
    reader.close()


def test_reads_alone_and_side_by_side_agree(files: dict[str, str], tiles: TileReader) -> None:
    """A read alone in the process decodes its tile rows on several threads; reads that overlap decode
    their own tiles. Both give libvips's pixels."""
    pyramid = PyramidFile(local_file(Path(files["rgb12"])), tiles)
    boxes = [Box(x, y, 1100 - x - 7 * x // 10, 700 - y - y // 2) for x in range(0, 300, 37) for y in (0, 90, 301)]
    expected = [pyramid.level(0).crop(b.x, b.y, b.width, b.height).numpy() for b in boxes]
    alone = [pyramid.read_array(0, b) for b in boxes]
    with ThreadPoolExecutor(4) as pool:
        side_by_side = list(pool.map(lambda b: pyramid.read_array(0, b), boxes * 3))
    for got, want in zip(alone + side_by_side, expected * 4, strict=True):
        assert np.array_equal(got, want)


@pytest.mark.parametrize(
    ("threads", "spare", "decoded_elsewhere"), [(1, True, False), (2, True, True), (2, False, False)]
)
def test_decode_threads_decide_where_rows_are_decoded(
    files: dict[str, str], threads: int, spare: bool, decoded_elsewhere: bool
) -> None:
    """A read alone decodes its rows of tiles on the reading thread with 1 decode thread or no spare
    core, on the pool with more threads and spare cores; the pixels are the same."""
    reader = TileReader(threads, spare_cores=lambda: spare)
    file = local_file(Path(files["rgb12"]))
    index = reader.index(file)
    level = index.levels[0]
    decoding_threads: set[str] = set()
    decode_tile = level.decode

    def recording(data: bytes, index: int) -> npt.NDArray[Any]:
        decoding_threads.add(threading.current_thread().name)
        return decode_tile(data, index)

    index.levels = (dataclasses.replace(level, decode=recording), *index.levels[1:])
    box = Box(10, 20, 900, 600)  # 3 rows of 256-pixel tiles
    got = reader.read(file, 0, box)
    expected = PyramidFile(file, reader).level(0).crop(box.x, box.y, box.width, box.height).numpy()
    reader.close()
    assert np.array_equal(got, expected)
    assert (decoding_threads != {threading.current_thread().name}) is decoded_elsewhere


def test_decode_threads_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1, not 0"):
        TileReader(0)


def test_tile_tables_are_kept_per_version(files: dict[str, str], tmp_path: Path, tiles: TileReader) -> None:
    store = MemoryStore(tmp_path)
    first = store.put("layer", Path(files["rgb8"]).read_bytes())
    box = Box(100, 100, 50, 40)
    assert tiles.read(store.open(first), 0, box).shape == (40, 50, 3)
    second = store.put("layer", Path(files["grey8"]).read_bytes())
    assert second.version != first.version
    assert tiles.read(store.open(second), 0, box).shape == (40, 50, 1)
    assert tiles.index(store.open(first)).levels[0].bands == 3  # the old version's tables are still its own


def test_truncated_tiles_raise_storage_error(files: dict[str, str], tmp_path: Path, tiles: TileReader) -> None:
    data = Path(files["rgb8"]).read_bytes()
    last = tiles.index(local_file(Path(files["rgb8"]))).levels[0]
    last_tile = int(last.offsets.argmax())
    cut = int(last.offsets[last_tile]) + 10  # the directories stay whole, the last tile of level 0 does not
    path = tmp_path / "cut.ome.tif"
    path.write_bytes(data[:cut])
    row, col = divmod(last_tile, last.columns)
    with pytest.raises(StorageError, match="truncated"):
        PyramidFile(local_file(path), tiles).read(0, Box(col * 256, row * 256, 10, 10))
    with pytest.raises(StorageError, match="truncated"):  # the same tile among several rows of tiles
        PyramidFile(local_file(path), tiles).read(0, Box(0, 0, last.width, last.height))


@pytest.mark.parametrize("name", ["rgb8", "rgb8-tables"])
@pytest.mark.parametrize(
    ("damage", "fatal"),
    [
        (lambda tile: tile[: len(tile) // 2] + bytes(len(tile) - len(tile) // 2), False),  # its second half lost
        (lambda tile: tile[:-100] + bytes([tile[-100] ^ 0x5A]) + tile[-99:], False),  # a flipped byte
        (lambda tile: tile[:2] + bytes(30) + tile[32:], True),  # its headers lost
    ],
    ids=["cut", "flipped", "headers"],
)
def test_damaged_jpeg_tiles_decode_as_tifffile_decodes_them(
    files: dict[str, str], tmp_path: Path, tiles: TileReader, name: str, damage: Callable[[bytes], bytes], fatal: bool
) -> None:
    """A JPEG tile damaged in place: libjpeg's warnings give tifffile's (imagecodecs') pixels, its fatal
    errors a `StorageError`, as before tiles were decoded by simplejpeg."""
    data = bytearray(Path(files[name]).read_bytes())
    level = tiles.index(local_file(Path(files[name]))).levels[0]
    tile = 5
    start, end = int(level.offsets[tile]), int(level.offsets[tile] + level.byte_counts[tile])
    data[start:end] = damage(bytes(data[start:end]))
    path = tmp_path / "damaged.tif"
    path.write_bytes(data)
    row, col = divmod(tile, level.columns)
    box = Box(col * 256, row * 256, 256, 256)
    if fatal:
        with pytest.raises(StorageError, match="could not be decoded"):
            tiles.read(local_file(path), 0, box)
    else:
        expected = tifffile_level(str(path), 0)[box.y : box.y + box.height, box.x : box.x + box.width]
        assert np.array_equal(tiles.read(local_file(path), 0, box), expected)


def test_unreadable_files_raise_storage_error(tmp_path: Path, tiles: TileReader) -> None:
    garbage = tmp_path / "garbage.ome.tif"
    garbage.write_bytes(b"II*\x00" + bytes(100))
    with pytest.raises(StorageError, match="cannot be opened"):
        tiles.index(local_file(garbage))
    absent = MemoryStore(tmp_path).open(ObjectInfo("absent.ome.tif", 1000, "v1"))
    with pytest.raises(StorageError, match="missing"):
        tiles.index(absent)


@pytest.mark.parametrize(("name", "quality"), [("rgb8", 90), ("rgb8-tables", 75)])
def test_a_whole_tile_at_its_stored_quality_is_its_stored_stream(
    files: dict[str, str], opener: Opener, name: str, quality: int
) -> None:
    """Every whole tile of every level, asked for at the quality it was written at, is the stream stored
    for it, which decodes to the pixels a read decodes."""
    reader = TileReader()
    file = opener(name)
    for level in range(level_count(*SIZE)):
        width, height = SIZE[0] >> level, SIZE[1] >> level
        for row in range(height // 256):
            for col in range(width // 256):
                box = Box(col * 256, row * 256, 256, 256)
                stream = reader.stored_jpeg(file, level, box, quality)
                assert stream == stored_tile(Path(files[name]), level, row, col), (level, row, col)
                assert np.array_equal(decode_jpeg(stream), reader.read(file, level, box))
    reader.close()


@pytest.mark.parametrize(
    ("name", "level", "box", "quality"),
    [
        ("rgb8", 0, Box(256, 256, 256, 256), 89),  # another quality
        ("rgb8-tables", 0, Box(256, 256, 256, 256), 90),
        ("rgb8", 0, Box(128, 256, 256, 256), 90),  # not on the tile grid
        ("rgb8", 0, Box(256, 256, 255, 256), 90),  # part of a tile
        ("rgb8", 0, Box(1024, 512, 76, 188), 90),  # an edge tile, all the image has there
        ("rgb8", 0, Box(256, 256, 512, 256), 90),  # two tiles
        ("grey8", 0, Box(256, 256, 256, 256), 90),  # grey: answers are RGB
        ("grey8-tables", 0, Box(256, 256, 256, 256), 75),
        ("rgb12", 0, Box(256, 256, 256, 256), 90),  # deflate
    ],
)
def test_no_stored_stream_answers_other_requests(
    files: dict[str, str], tiles: TileReader, name: str, level: int, box: Box, quality: int
) -> None:
    assert tiles.stored_jpeg(local_file(Path(files[name])), level, box, quality) is None


def test_stored_tiles_are_read_only_at_their_quality_and_when_allowed(remote: MemoryStore) -> None:
    reader, off = TileReader(), TileReader(passthrough=False)
    file = remote.open(remote.stat("rgb8"))
    box = Box(256, 0, 256, 256)
    assert reader.stored_jpeg(file, 0, box, 90) is not None  # parses the file, reads a first tile and this one
    before = remote.reads
    assert reader.stored_jpeg(file, 0, box, 75) is None
    assert off.stored_jpeg(file, 0, box, 90) is None
    assert remote.reads == before  # neither read a tile
    assert reader.stored_jpeg(file, 0, box, 90) is not None
    assert remote.reads == before + 1  # the tile alone
    reader.close()
    off.close()


def test_a_tile_whose_tables_differ_from_its_level_is_not_an_answer(files: dict[str, str], tmp_path: Path) -> None:
    """The first tile decides whether a level may answer; each answer's own tables are checked too."""
    reader = TileReader()
    level = reader.index(local_file(Path(files["rgb8"]))).levels[0]
    data = bytearray(Path(files["rgb8"]).read_bytes())
    tile = 6
    start = int(level.offsets[tile])
    table = data.index(b"\xff\xdb", start) + 5  # the first entry of the tile's luminance table
    data[table] += 1
    path = tmp_path / "mixed.ome.tif"
    path.write_bytes(data)
    row, col = divmod(tile, level.columns)
    assert reader.stored_jpeg(local_file(path), 0, Box(col * 256, row * 256, 256, 256), 90) is None
    assert reader.stored_jpeg(local_file(path), 0, Box(256, 0, 256, 256), 90) is not None
    reader.close()


def test_a_level_whose_first_tile_cannot_be_read_renders_its_other_tiles(
    files: dict[str, str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The first tile tells a level's quality: when it is unreadable (its offset past the end of the
    file), no stored tile answers (logged once) and the level's other tiles still read."""
    data = bytearray(Path(files["rgb8"]).read_bytes())
    with tifffile.TiffFile(files["rgb8"]) as tif:
        offsets = tif.pages[0].tags["TileOffsets"]
        entry = tif.byteorder + tifffile.TIFF.DATA_FORMATS[offsets.dtype]  # e.g. "<1Q"
        struct.pack_into(entry, data, offsets.valueoffset, len(data) + 4096)
    path = tmp_path / "first-tile-lost.ome.tif"
    path.write_bytes(data)
    reader = TileReader()
    file, box = local_file(path), Box(256, 256, 256, 256)
    assert reader.stored_jpeg(file, 0, box, 90) is None
    assert reader.stored_jpeg(file, 0, box, 90) is None
    assert [record.getMessage() for record in caplog.records].count(
        f"{file.info.key}, level 0: no stored tile answers: stored pyramid is truncated"
    ) == 1
    assert np.array_equal(reader.read(file, 0, box), tifffile_level(files["rgb8"], 0)[256:512, 256:512])
    assert reader.stored_jpeg(file, 1, box, 90) is not None  # other levels are theirs
    reader.close()

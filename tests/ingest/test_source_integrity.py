"""Damaged sources are refused by name and publish nothing; valid but unusual ones ingest exactly."""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

import imagecodecs
import numpy as np
import pytest
import pyvips
import tifffile

from tests.ingest.test_pipeline import ingest, rows, stored_level0, write_manifest
from tierserve.db.database import Database
from tierserve.db.models import SubImage

RGB = np.stack(np.meshgrid(np.arange(700) % 256, np.arange(500) % 256), -1)
RGB = np.concatenate([RGB, (RGB.sum(-1, keepdims=True) % 256)], -1).astype(np.uint8)
DEEP = (np.arange(500 * 700 * 3).reshape(500, 700, 3) % 4096).astype(np.uint16)


def _tiff(**options: object) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        tifffile.imwrite(path, RGB, photometric="rgb", **options)  # type: ignore[arg-type]

    return write


def _vips(suffix_options: dict[str, object]) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        pyvips.Image.new_from_array(RGB).copy(interpretation="srgb").write_to_file(str(path), **suffix_options)

    return write


#: Every supported container, tiled and stripped, compressed and not.
FORMATS: dict[str, tuple[str, Callable[[Path], None]]] = {
    "tiff-strips-raw": ("tif", _tiff(rowsperstrip=32)),
    "tiff-strips-lzw": ("tif", _tiff(rowsperstrip=32, compression="lzw")),
    "tiff-tiles-raw": ("tif", _tiff(tile=(128, 128))),
    "tiff-tiles-deflate": ("tif", _tiff(tile=(128, 128), compression="zlib")),
    "tiff-tiles-jpeg": ("tif", _tiff(tile=(128, 128), compression="jpeg")),
    "bigtiff-tiles-raw": ("tif", _tiff(tile=(128, 128), bigtiff=True)),
    "tiff-tiles-zstd": ("tif", _tiff(tile=(128, 128), compression="zstd")),
    "jpeg": ("jpg", _vips({"Q": 90})),
    "png": ("png", _vips({})),
    "jpeg2000": ("jp2", lambda path: path.write_bytes(imagecodecs.jpeg2k_encode(RGB, level=0))),
}


def _damaged(tmp_path: Path, make: Callable[[Path], None], suffix: str, damage: Callable[[bytes], bytes]) -> None:
    src = tmp_path / "src"
    src.mkdir()
    whole = src / f"whole.{suffix}"
    make(whole)
    (src / f"damaged.{suffix}").write_bytes(damage(whole.read_bytes()))


def _assert_refused(tmp_path: Path, suffix: str, *expected: str) -> str:
    manifest = write_manifest(tmp_path / "src", [{"id": 7, "section_number": 1, "source": f"damaged.{suffix}"}])
    report = ingest(tmp_path / "data", manifest)
    assert report.ingested == []
    [(entry, message)] = report.failed
    assert entry == "section_data_sets[0].images[0] (id 7)"
    assert f"damaged.{suffix}" in message
    assert any(word in message for word in expected), message
    assert rows(tmp_path / "data") == []
    assert not (tmp_path / "data" / "store" / "sub_images").exists()
    return message


@pytest.mark.parametrize("name", list(FORMATS))
def test_a_truncated_source_is_refused_and_nothing_is_published(tmp_path: Path, name: str) -> None:
    suffix, make = FORMATS[name]
    _damaged(tmp_path, make, suffix, lambda data: data[: len(data) * 6 // 10])
    _assert_refused(tmp_path, suffix, "truncated", "damaged", "premature end", "read error")


def test_a_truncated_tiled_tiff_names_the_first_tile_past_the_end(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    whole = src / "whole.tif"
    tifffile.imwrite(whole, RGB, photometric="rgb", tile=(128, 128), bigtiff=True)
    with tifffile.TiffFile(whole) as tif:
        page = tif.pages.first
        cut = page.dataoffsets[9] + page.databytecounts[9] // 2
        total = len(page.dataoffsets)
    (src / "damaged.tif").write_bytes(whole.read_bytes()[:cut])
    message = _assert_refused(tmp_path, "tif", "truncated")
    assert f"truncated: tile 10 of {total} ends past the end of the file" in message


@pytest.mark.parametrize(
    ("name", "target"),
    [("tiff-tiles-deflate", "segment"), ("tiff-strips-lzw", "segment"), ("png", "middle")],
)
def test_a_corrupt_compressed_stream_is_refused(tmp_path: Path, name: str, target: str) -> None:
    suffix, make = FORMATS[name]

    def flip(data: bytes) -> bytes:
        corrupt = bytearray(data)
        start = len(data) // 2
        if target == "segment":
            with tifffile.TiffFile(tmp_path / "src" / f"whole.{suffix}") as tif:
                page = tif.pages.first
                start = page.dataoffsets[3] + 4
        for i in range(start, start + 64):
            corrupt[i] ^= 0x5A
        return bytes(corrupt)

    _damaged(tmp_path, make, suffix, flip)
    _assert_refused(tmp_path, suffix, "damaged", "error", "corrupt")


def test_a_tiff_tile_without_bytes_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    tifffile.imwrite(src / "damaged.tif", RGB, photometric="rgb", tile=(128, 128))
    with tifffile.TiffFile(src / "damaged.tif") as tif:
        counts = tif.pages.first.tags["TileByteCounts"]
        position, kind = counts.valueoffset, counts.dtype
    data = bytearray((src / "damaged.tif").read_bytes())
    size = struct.calcsize("<" + tifffile.DATATYPE(kind).name.replace("LONG", "I").replace("SHORT", "H"))
    data[position + 2 * size : position + 3 * size] = bytes(size)
    (src / "damaged.tif").write_bytes(bytes(data))
    message = _assert_refused(tmp_path, "tif", "missing")
    assert "tile 3 of 24 is missing" in message


def test_a_tiff_compression_nobody_decodes_is_refused_by_name(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    tifffile.imwrite(src / "damaged.tif", RGB, photometric="rgb", tile=(128, 128))
    with tifffile.TiffFile(src / "damaged.tif") as tif:
        position = tif.pages.first.tags["Compression"].valueoffset
    data = bytearray((src / "damaged.tif").read_bytes())
    data[position : position + 2] = struct.pack("<H", 32809)  # ThunderScan: no decoder in imagecodecs
    (src / "damaged.tif").write_bytes(bytes(data))
    _assert_refused(tmp_path, "tif", "THUNDERSCAN")


@pytest.mark.parametrize("name", ["tiff-tiles-zstd", "tiff-strips-lzw", "bigtiff-tiles-raw"])
def test_valid_tiffs_ingest_pixel_exact_whatever_their_compression(tmp_path: Path, name: str) -> None:
    suffix, make = FORMATS[name]
    (tmp_path / "src").mkdir()
    make(tmp_path / "src" / f"s.{suffix}")
    manifest = write_manifest(tmp_path / "src", [{"id": 8, "section_number": 1, "source": f"s.{suffix}"}])
    assert ingest(tmp_path / "data", manifest).ingested == [8]
    decoded = stored_level0(tmp_path / "data", 8).astype(float)
    # The stored tiles are JPEG (quality 95 in write_manifest): compare against the source loosely,
    # but an all-black or shifted image would be off by far more than this.
    assert np.abs(decoded - RGB).mean() < 3


def test_a_deep_zstd_tiff_ingests_losslessly(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    tifffile.imwrite(tmp_path / "src" / "deep.tif", DEEP, photometric="rgb", tile=(128, 128), compression="zstd")
    manifest = write_manifest(tmp_path / "src", [{"id": 9, "section_number": 1, "source": "deep.tif"}])
    assert ingest(tmp_path / "data", manifest).ingested == [9]
    assert (stored_level0(tmp_path / "data", 9) == DEEP).all()


def _resolution_of(data: Path, image_id: int) -> float | None:
    database = Database(f"sqlite:///{data / 'db.sqlite'}")
    with database.session() as session:
        value = session.get_one(SubImage, image_id).resolution
    database.dispose()
    return value


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"resolution": (20000, 20000), "resolutionunit": "CENTIMETER"}, 0.5),
        ({"resolution": (50800, 50800), "resolutionunit": "INCH"}, 0.5),
        ({"resolution": (72, 72), "resolutionunit": "INCH"}, None),
        ({"resolution": (1, 1), "resolutionunit": "NONE"}, None),
        ({"metadata": {"PhysicalSizeX": 0.35, "PhysicalSizeY": 0.35, "PhysicalSizeXUnit": "µm"}, "ome": True}, 0.35),
        (
            {
                "metadata": {
                    "PhysicalSizeX": 350,
                    "PhysicalSizeY": 350,
                    "PhysicalSizeXUnit": "nm",
                    "PhysicalSizeYUnit": "nm",
                },
                "ome": True,
            },
            0.35,
        ),
    ],
)
def test_a_stated_pixel_size_becomes_the_resolution(
    tmp_path: Path, options: dict[str, object], expected: float | None
) -> None:
    (tmp_path / "src").mkdir()
    tifffile.imwrite(tmp_path / "src" / "s.tif", RGB, photometric="rgb", **options)  # type: ignore[arg-type]
    manifest = write_manifest(tmp_path / "src", [{"id": 10, "section_number": 1, "source": "s.tif"}])
    report = ingest(tmp_path / "data", manifest)
    assert report.ingested == [10] and report.warnings == []
    assert _resolution_of(tmp_path / "data", 10) == pytest.approx(expected)


def test_a_manifest_resolution_wins_with_a_warning_when_more_than_1_percent_off(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    tifffile.imwrite(tmp_path / "src" / "s.tif", RGB, photometric="rgb", resolution=(20000, 20000), resolutionunit=3)
    images = [
        {"id": 11, "section_number": 1, "source": "s.tif", "resolution": 0.6},
        {"id": 12, "section_number": 2, "source": "s.tif", "resolution": 0.503},
    ]
    report = ingest(tmp_path / "data", write_manifest(tmp_path / "src", images))
    assert sorted(report.ingested) == [11, 12]
    assert report.warnings == [
        (
            "section_data_sets[0].images[0] (id 11)",
            "resolution 0.6 µm from the manifest is used; the source states 0.5 µm",
        )
    ]
    assert _resolution_of(tmp_path / "data", 11) == 0.6
    assert _resolution_of(tmp_path / "data", 12) == 0.503

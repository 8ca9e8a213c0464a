"""JPEG headers are read as the standard writes them, and the tables of a quality are libjpeg's (IJG scaling
of the standard's example tables)."""

from __future__ import annotations

import io

import imagecodecs
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from tierserve.core.stored_jpeg import Frame, quantization_tables, read_header

#: ITU T.81 Annex K tables K.1 (luminance) and K.2 (chrominance), in natural (row by row) order.
LUMINANCE = [
    *(16, 11, 10, 16, 24, 40, 51, 61), *(12, 12, 14, 19, 26, 58, 60, 55),
    *(14, 13, 16, 24, 40, 57, 69, 56), *(14, 17, 22, 29, 51, 87, 80, 62),
    *(18, 22, 37, 56, 68, 109, 103, 77), *(24, 35, 55, 64, 81, 104, 113, 92),
    *(49, 64, 78, 87, 103, 121, 120, 101), *(72, 92, 95, 98, 112, 100, 103, 99),
]  # fmt: skip
CHROMINANCE = [
    *(17, 18, 24, 47, 99, 99, 99, 99), *(18, 21, 26, 66, 99, 99, 99, 99),
    *(24, 26, 56, 99, 99, 99, 99, 99), *(47, 66, 99, 99, 99, 99, 99, 99),
    *([99] * 32),
]  # fmt: skip


def zigzag() -> list[int]:
    """Natural-order indices of the 64 coefficients in zigzag order (T.81 figure 5): anti-diagonals,
    alternating direction."""
    cells = [(row, col) for row in range(8) for col in range(8)]
    cells.sort(key=lambda rc: (rc[0] + rc[1], rc[0] if (rc[0] + rc[1]) % 2 else rc[1]))
    return [row * 8 + col for row, col in cells]


def ijg_table(base: list[int], quality: int) -> bytes:
    """libjpeg's `jpeg_set_quality`: scale 5000/q below 50, else 200 - 2q percent, clamped to 1-255
    (baseline), written in zigzag order."""
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    values = [min(255, max(1, (value * scale + 50) // 100)) for value in base]
    return bytes(values[i] for i in zigzag())


@pytest.mark.parametrize("quality", [1, 10, 49, 50, 75, 90, 95, 100])
def test_the_tables_of_a_quality_are_the_scaled_standard_tables(quality: int) -> None:
    tables = quantization_tables(quality)
    assert tables == {0: ijg_table(LUMINANCE, quality), 1: ijg_table(CHROMINANCE, quality)}


def encoded(quality: int = 83, subsampling: str = "420", bands: int = 3) -> bytes:
    """A 40 x 24 JPEG as libjpeg-turbo encodes answers."""
    shape = (24, 40, bands) if bands > 1 else (24, 40)
    return bytes(imagecodecs.jpeg8_encode(np.zeros(shape, np.uint8), level=quality, subsampling=subsampling))


@pytest.mark.parametrize("subsampling", ["420", "444"])
def test_a_baseline_stream_answers_its_size_and_quality_only(subsampling: str) -> None:
    header = read_header(encoded(subsampling=subsampling))
    assert header is not None
    assert header.frame == Frame(0xC0, 40, 24, (0, 1, 1))
    assert (header.scan_components, header.metadata) == (3, False)
    assert header.answers(40, 24, 83)
    assert not header.answers(40, 24, 84)
    assert not header.answers(24, 40, 83)


def test_a_progressive_stream_is_read_and_answers_nothing() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 16), (10, 200, 30)).save(buffer, "JPEG", quality=75, progressive=True)
    header = read_header(buffer.getvalue())
    assert header is not None and header.frame is not None and header.frame.marker == 0xC2
    assert not header.answers(32, 16, 75)


def segment(marker: int, payload: bytes) -> bytes:
    """A marker segment: the marker, its length (the payload's and its own two bytes), the payload."""
    return bytes([0xFF, marker]) + (len(payload) + 2).to_bytes(2, "big") + payload


@pytest.mark.parametrize(
    "app",
    [
        segment(0xE1, b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x01\x01\x12\x00\x03\x00\x00\x00\x01\x00\x06\x00\x00"),
        segment(0xE2, b"ICC_PROFILE\x00\x01\x01" + bytes(128)),
        segment(0xEE, b"Adobe\x00\x64\x00\x00\x00\x00\x00"),
    ],
    ids=["exif-orientation", "icc", "adobe"],
)
def test_a_stream_with_metadata_an_encode_leaves_out_answers_nothing(app: bytes) -> None:
    """EXIF (an orientation browsers apply), ICC profiles and Adobe colour transforms change what a
    decoder shows, and no answer carries them."""
    stream = encoded()
    header = read_header(stream[:2] + app + stream[2:])
    assert header is not None and header.metadata
    assert header.frame == Frame(0xC0, 40, 24, (0, 1, 1))
    assert not header.answers(40, 24, 83)


def test_a_grey_stream_or_other_table_selectors_answer_nothing() -> None:
    grey = read_header(encoded(bands=1))
    assert grey is not None and grey.frame == Frame(0xC0, 40, 24, (0,)) and grey.scan_components == 1
    assert not grey.answers(40, 24, 83)
    stream = bytearray(encoded())
    sof = stream.index(b"\xff\xc0")
    stream[sof + 2 + 2 + 6 + 3 + 2] = 0  # the first chrominance component quantized by table 0
    header = read_header(bytes(stream))
    assert header is not None and header.frame is not None and header.frame.table_selectors == (0, 0, 1)
    assert not header.answers(40, 24, 83)


def test_a_scan_of_fewer_components_answers_nothing() -> None:
    stream = bytearray(encoded())
    stream[stream.index(b"\xff\xda") + 4] = 1  # a first scan of one component: not one interleaved scan
    header = read_header(bytes(stream))
    assert header is not None and header.scan_components == 1
    assert not header.answers(40, 24, 83)


@given(st.binary(max_size=300))
def test_any_bytes_after_an_soi_read_as_a_header_or_none(tail: bytes) -> None:
    for stream in (b"\xff\xd8" + tail, encoded()[:20] + tail):
        header = read_header(stream)
        assert header is None or header.tables.keys() <= {0, 1, 2, 3}


def test_fill_bytes_and_standalone_markers_are_stepped_over() -> None:
    stream = encoded()
    padded = stream[:2] + b"\xff\xff\xff\x01\xff\xd0" + stream[2:]  # fill bytes, TEM, RST0
    assert read_header(padded) == read_header(stream)


def test_sixteen_bit_tables_and_several_tables_per_segment_are_read() -> None:
    wide = bytes(range(128))
    stream = b"\xff\xd8" + segment(0xDB, b"\x10" + wide + b"\x02" + bytes(64)) + b"\xff\xd9"
    header = read_header(stream)
    assert header is not None
    assert header.tables == {0: wide, 2: bytes(64)} and header.frame is None


@pytest.mark.parametrize(
    "stream",
    [
        b"",
        b"\x89PNG\r\n\x1a\n" + bytes(16),  # no SOI
        b"\xff\xd8" + segment(0xDB, b"\x00" + bytes(64))[:-10],  # a segment cut short
        b"\xff\xd8" + segment(0xDB, b"\x20" + bytes(64)),  # precision 2: none such
        b"\xff\xd8" + segment(0xDB, b"\x04" + bytes(64)),  # table id 4: none such
        b"\xff\xd8" + segment(0xDB, b"\x00" + bytes(63)),  # a table one entry short
        b"\xff\xd8\x00\x00" + segment(0xDB, b"\x00" + bytes(64)),  # no marker where one must start
        b"\xff\xd8\xff\xdb\x00\x01" + bytes(64),  # a length shorter than its own two bytes
        b"\xff\xd8" + segment(0xC0, b"\x08\x00\x10"),  # a frame cut before its component count
        b"\xff\xd8" + segment(0xC0, b"\x08\x00\x10\x00\x10\x03\x01\x22\x00"),  # three components, one given
    ],
    ids=[
        "empty",
        "no-soi",
        "cut",
        "precision",
        "table-id",
        "short-table",
        "no-marker",
        "length",
        "frame",
        "components",
    ],
)
def test_malformed_headers_are_none(stream: bytes) -> None:
    assert read_header(stream) is None

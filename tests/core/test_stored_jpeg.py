"""JPEG headers are read as the standard writes them, and the tables of a quality are libjpeg's (IJG scaling
of the standard's example tables)."""

from __future__ import annotations

import io

import imagecodecs
import numpy as np
import pytest
from PIL import Image

from tierserve.core.stored_jpeg import quantization_tables, read_header

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


def test_a_baseline_stream_answers_its_size_and_quality_only() -> None:
    stream = bytes(imagecodecs.jpeg8_encode(np.zeros((24, 40, 3), np.uint8), level=83, subsampling="420"))
    header = read_header(stream)
    assert header is not None
    assert header.frame == (0xC0, 40, 24)
    assert header.answers(40, 24, 83)
    assert not header.answers(40, 24, 84)
    assert not header.answers(24, 40, 83)


def test_a_progressive_stream_is_read_and_answers_nothing() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 16), (10, 200, 30)).save(buffer, "JPEG", quality=75, progressive=True)
    header = read_header(buffer.getvalue())
    assert header is not None and header.frame == (0xC2, 32, 16)
    assert not header.answers(32, 16, 75)


def segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + (len(payload) + 2).to_bytes(2, "big") + payload


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
    ],
    ids=["empty", "no-soi", "cut", "precision", "table-id", "short-table", "no-marker"],
)
def test_malformed_headers_are_none(stream: bytes) -> None:
    assert read_header(stream) is None

from __future__ import annotations

import numpy as np
import pytest

from tierserve.core.palettes import PALETTES, palette_id, palette_table
from tierserve.errors import InvalidRequest

SEQUENTIAL = ["gray", "hotmetal", "redtemp", "expression", "red", "blue", "green", "projection", "aba", "aibsmap_alt"]
ALLENSDK_IDS = {
    "gray": 0,
    "hotmetal": 1,
    "jet": 2,
    "redtemp": 3,
    "expression": 4,
    "red": 5,
    "blue": 6,
    "green": 7,
    "aba": 8,
    "aibsmap_alt": 9,
    "colormap": 10,
    "projection": 11,
}


def luminance(table: np.ndarray) -> np.ndarray:
    return table.astype(float) @ np.array([0.299, 0.587, 0.114])


def test_ids_and_names_match_allensdk() -> None:
    assert {name: pid for pid, name, _ in PALETTES} == ALLENSDK_IDS
    for name, pid in ALLENSDK_IDS.items():
        assert palette_id(name) == pid == palette_id(str(pid)) == palette_id(name.upper())
    assert palette_id("4.0") == 4


@pytest.mark.parametrize("pid", range(12))
def test_tables_are_256_rgb_and_start_black(pid: int) -> None:
    table = palette_table(pid)
    assert table.shape == (256, 3) and table.dtype == np.uint8
    if pid != 2:  # jet starts dark blue
        assert tuple(table[0]) == (0, 0, 0)


@pytest.mark.parametrize("name", SEQUENTIAL)
def test_sequential_palettes_have_non_decreasing_luminance(name: str) -> None:
    lum = luminance(palette_table(palette_id(name)))
    assert (np.diff(lum) >= -0.5).all()
    assert lum[-1] > lum[0] + 25  # pure blue is the darkest end: 29


def test_endpoints() -> None:
    assert tuple(palette_table(0)[255]) == (255, 255, 255)
    assert tuple(palette_table(5)[255]) == (255, 0, 0)
    assert tuple(palette_table(6)[255]) == (0, 0, 255)
    assert tuple(palette_table(7)[255]) == (0, 255, 0)
    assert tuple(palette_table(2)[0]) == (0, 0, 128) and tuple(palette_table(2)[255]) == (128, 0, 0)
    assert (palette_table(0)[:, 0] == np.arange(256)).all()


@pytest.mark.parametrize("text", ["rainbow", "12", "-1", "1.5", ""])
def test_unknown_palettes(text: str) -> None:
    with pytest.raises(InvalidRequest, match="unknown colormap palette"):
        palette_id(text)

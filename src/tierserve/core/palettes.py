"""The twelve colour maps of the Allen ``colormap`` filter, each a 256 x 3 table of 8-bit RGB.

Ids and names follow AllenSDK's ``ImageDownloadApi.COLORMAPS``. The Allen service does not publish
its tables; ours are defined here, piecewise-linear between the listed stops:

- sequential maps (gray, hotmetal, redtemp, red, green, blue, projection, expression) run from
  black at 0 to their brightest colour at 255, with luminance never decreasing;
- jet is the classic blue-cyan-yellow-red rainbow; aba, aibsmap_alt and colormap are
  diverging/categorical-looking maps for atlas-style display.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import numpy.typing as npt

from tierserve.errors import InvalidRequest

Stops = tuple[tuple[float, tuple[int, int, int]], ...]

#: (id, name, stops): position 0-1 and the colour there.
PALETTES: tuple[tuple[int, str, Stops], ...] = (
    (0, "gray", ((0, (0, 0, 0)), (1, (255, 255, 255)))),
    (1, "hotmetal", ((0, (0, 0, 0)), (0.4, (255, 0, 0)), (0.8, (255, 255, 0)), (1, (255, 255, 255)))),
    (
        2,
        "jet",
        (
            (0, (0, 0, 128)),
            (0.125, (0, 0, 255)),
            (0.375, (0, 255, 255)),
            (0.625, (255, 255, 0)),
            (0.875, (255, 0, 0)),
            (1, (128, 0, 0)),
        ),
    ),
    (3, "redtemp", ((0, (0, 0, 0)), (0.5, (200, 40, 0)), (0.8, (255, 160, 40)), (1, (255, 255, 220)))),
    (
        4,
        "expression",
        ((0, (0, 0, 0)), (0.25, (0, 60, 200)), (0.5, (0, 200, 90)), (0.75, (240, 220, 0)), (1, (255, 255, 255))),
    ),
    (5, "red", ((0, (0, 0, 0)), (1, (255, 0, 0)))),
    (6, "blue", ((0, (0, 0, 0)), (1, (0, 0, 255)))),
    (7, "green", ((0, (0, 0, 0)), (1, (0, 255, 0)))),
    (
        8,
        "aba",
        ((0, (0, 0, 0)), (0.2, (40, 40, 140)), (0.45, (60, 150, 160)), (0.7, (200, 200, 80)), (1, (250, 240, 230))),
    ),
    (9, "aibsmap_alt", ((0, (0, 0, 0)), (0.3, (120, 0, 140)), (0.6, (230, 60, 60)), (1, (255, 230, 120)))),
    (10, "colormap", ((0, (0, 0, 0)), (0.33, (0, 0, 255)), (0.66, (0, 255, 0)), (1, (255, 0, 0)))),
    (11, "projection", ((0, (0, 0, 0)), (0.6, (0, 200, 60)), (1, (220, 255, 220)))),
)
_BY_ID = {pid: (name, stops) for pid, name, stops in PALETTES}
_BY_NAME = {name: pid for pid, name, _ in PALETTES}


def palette_id(text: str) -> int:
    """A palette id from its id (``4``, ``4.0``) or its name (``expression``)."""
    key = text.strip().lower()
    if key in _BY_NAME:
        return _BY_NAME[key]
    try:
        number = float(key)
    except ValueError:
        number = -1.0
    if number.is_integer() and int(number) in _BY_ID:
        return int(number)
    names = ", ".join(f"{name} {pid}" for pid, name, _ in PALETTES)
    raise InvalidRequest(f"unknown colormap palette {text!r}; use one of: {names}")


@lru_cache(maxsize=len(PALETTES))
def palette_table(pid: int) -> npt.NDArray[np.uint8]:
    """The 256 x 3 table of palette `pid` (read-only)."""
    _, stops = _BY_ID[pid]
    positions = np.array([p for p, _ in stops]) * 255
    colours = np.array([c for _, c in stops], dtype=np.float64)
    index = np.arange(256)
    table = np.stack([np.interp(index, positions, colours[:, c]) for c in range(3)], axis=-1)
    result = np.round(table).astype(np.uint8)
    result.setflags(write=False)
    return result

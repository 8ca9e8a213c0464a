from __future__ import annotations

import numpy as np
import pytest

from tierserve.core.windowing import ChannelWindow, window_lut
from tierserve.errors import InvalidRequest


def test_lut_maps_window_linearly_with_rounding_and_clipping() -> None:
    lut = window_lut(ChannelWindow(((0, 923), (100, 1100), (0, 4095))), 65536)
    assert lut.shape == (65536, 3) and lut.dtype == np.uint8
    assert lut[0, 0] == 0 and lut[923, 0] == 255 and lut[4095, 0] == 255
    assert lut[461, 0] == int(np.floor(461 * 255 / 923 + 0.5))
    assert lut[99, 1] == 0 and lut[100, 1] == 0 and lut[1100, 1] == 255
    assert lut[2048, 2] == 128  # 2048 * 255 / 4095 = 127.56


def test_full_scale_window_is_identity_for_8_bit() -> None:
    lut = window_lut(ChannelWindow.full_scale(8), 256)
    assert (lut[:, 0] == np.arange(256)).all()


@pytest.mark.parametrize("bounds", [(5, 5), (6, 5), (0, 70000)])
def test_invalid_windows_are_rejected(bounds: tuple[int, int]) -> None:
    with pytest.raises(InvalidRequest, match="range for red"):
        ChannelWindow((bounds, (0, 1), (0, 1)))

from __future__ import annotations

import numpy as np
import pytest

from tierserve.core.filters import ChannelWeights, Colormap, Contrast, colormap_lut, contrast_lut
from tierserve.core.palettes import palette_table
from tierserve.errors import InvalidRequest


def test_contrast_then_weights() -> None:
    lut = contrast_lut(Contrast(0.5, 0.25), ChannelWeights(1, 0.5, 0))
    v = np.arange(256) / 255
    expected = np.clip(0.5 * v + 0.25, 0, 1)
    assert (lut[:, 0] == np.floor(expected * 255 + 0.5)).all()
    assert (lut[:, 1] == np.floor(expected * 0.5 * 255 + 0.5)).all()
    assert (lut[:, 2] == 0).all()


def test_contrast_clips() -> None:
    lut = contrast_lut(Contrast(2, -0.5), None)
    assert lut[0, 0] == 0 and lut[63, 0] == 0 and lut[255, 0] == 255 and lut[200, 0] == 255


def test_identity() -> None:
    lut = contrast_lut(None, None)
    assert (lut == np.arange(256)[:, None]).all()


def test_colormap_threshold_range_and_opacity() -> None:
    cmap = Colormap(0.5, 0.9, 0, 256, 4)
    lut = colormap_lut(cmap)
    t = np.clip(np.arange(256) / 256, 0, 1)
    below = t < 0.9
    assert (lut[below] == 0).all()
    i = 250
    colour = palette_table(4)[int(np.floor(t[i] * 255 + 0.5))].astype(float)
    assert (lut[i] == np.floor(0.5 * colour + 0.5 * 255 * t[i] + 0.5)).all()


def test_plain_colormap_is_the_palette() -> None:
    assert (colormap_lut(Colormap.plain(1)) == palette_table(1)).all()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Contrast(-1, 0), "contrast gain"),
        (lambda: Contrast(1, 2), "contrast bias"),
        (lambda: ChannelWeights(1, 1, 2), "rgb blue weight"),
        (lambda: Colormap(0.5, 1.5, 0, 256, 4), "lower_threshold"),
        (lambda: Colormap(0.5, 0.5, 10, 10, 4), "input_min and input_max"),
    ],
)
def test_validation(make: object, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        make()  # type: ignore[operator]

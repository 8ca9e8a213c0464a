"""The compiled area average (core/area.c through core.area_kernel): built, the same pixels as the NumPy
path, and safe with raw pointers."""

from __future__ import annotations

import platform

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.core.resamples import eighths
from tests.images import multiscale_pattern
from tierserve.core import area_kernel
from tierserve.core.resample import Resample, _axis_weights, resample_array


@pytest.fixture(scope="module")
def pattern() -> npt.NDArray[np.int64]:
    return multiscale_pattern(240, 320, 3, 4095, seed=21)


def test_the_compiled_kernel_is_built() -> None:
    """`pip install` compiles core/area.c (hatch_build.py); CI must test it, not only the fallback."""
    assert area_kernel.available() and area_kernel.LIBRARY.is_file()


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="NumPy fuses multiply-adds here")
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_the_kernel_and_numpy_give_the_same_pixels(
    pattern: npt.NDArray[np.int64], dtype: type[np.unsignedinteger], data: st.DataObject
) -> None:
    """The same float64 sums in the same order: the same samples, not merely within the tolerance (on
    x86-64, where neither fuses multiply-adds; NumPy does on ARM, which may move a tie's rounding)."""
    full = (pattern * int(np.iinfo(dtype).max) // 4095).astype(dtype)
    r = data.draw(eighths(320, 240, 120))
    compiled = resample_array(full, r)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(area_kernel, "supports", lambda dtype: False)
        np.testing.assert_array_equal(resample_array(full, r), compiled)


def test_the_kernel_refuses_arguments_outside_its_arrays() -> None:
    """It reads raw pointers: taps past the box or the block, and mismatched strips, raise before a call."""
    taps, weights = _axis_weights(0.0, 10.0, 5, 10)
    with pytest.raises(ValueError, match="column taps"):
        area_kernel.StripKernel(taps + 1, weights, 10, 3, np.dtype(np.uint8))
    with pytest.raises(ValueError, match="column taps and weights"):
        area_kernel.StripKernel(taps, weights[:, :1], 10, 3, np.dtype(np.uint8))
    kernel = area_kernel.StripKernel(taps, weights, 10, 3, np.dtype(np.uint8))
    block = np.zeros((4, 10, 3), np.uint8)
    rows, row_weights = _axis_weights(0.0, 4.0, 2, 4)
    out = np.empty((2, 5, 3), np.uint8)
    with pytest.raises(ValueError, match="row taps"):
        kernel(block[:3], 0, rows, row_weights, out)
    with pytest.raises(ValueError, match="row taps"):
        kernel(block, 1, rows, row_weights, out)
    with pytest.raises(ValueError, match="row taps outside"):  # no tap for an output row
        kernel(block, 0, rows[:, :0], row_weights[:, :0], out)
    with pytest.raises(ValueError, match="row taps and weights"):
        kernel(block, 0, rows, row_weights[:1], out)
    with pytest.raises(ValueError, match="output strip"):
        kernel(block, 0, rows, row_weights, out[:1])
    with pytest.raises(ValueError, match="output strip"):
        kernel(block, 0, rows, row_weights, np.empty((2, 10, 3), np.uint8)[:, ::2])
    with pytest.raises(ValueError, match="block"):
        kernel(block.astype(np.uint16), 0, rows, row_weights, out)
    with pytest.raises(ValueError, match="overlaps the block"):
        kernel(block, 0, rows, row_weights, block.reshape(-1)[:30].reshape(2, 5, 3))


def test_a_block_inside_a_wider_array_is_read_by_its_strides() -> None:
    """A level box is a view of the decoded tiles' canvas: rows further apart than the box is wide."""
    canvas = np.arange(6 * 20 * 3, dtype=np.uint16).reshape(6, 20, 3) * 97
    box = canvas[1:5, 3:13]
    taps, weights = _axis_weights(0.5, 9.0, 4, 10)
    rows, row_weights = _axis_weights(0.0, 4.0, 3, 4)
    out = np.empty((3, 4, 3), np.uint16)
    area_kernel.StripKernel(taps, weights, 10, 3, np.dtype(np.uint16))(box, 0, rows, row_weights, out)
    np.testing.assert_array_equal(out, resample_array(np.ascontiguousarray(box), Resample(0.5, 0.0, 9.0, 4.0, 4, 3)))

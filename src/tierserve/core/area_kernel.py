"""The compiled area average (`core/area.c`), loaded with ctypes; absent where it was not built.

`pip install` compiles `area.c` into `_area.so` beside this module (the build hook, `hatch_build.py`);
where no C compiler was found the package installs without it and `core.resample` averages with NumPy
(the same float64 sums: the same samples on x86-64, tested; about twice the CPU, docs/performance.md).
The kernel reads raw pointers, so `StripKernel` checks the shapes, dtypes and layouts of its arrays
and that every tap lies inside them before a call: a wrong argument raises ValueError rather than
reading outside an array.
"""

from __future__ import annotations

import ctypes
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[Any]
LIBRARY = Path(__file__).with_name("_area.so")
_P, _N = ctypes.c_void_p, ctypes.c_ssize_t
#: Argument types of tierserve_area_u8 and tierserve_area_u16 (area.c).
_ARGUMENTS = [_P, _N, _N, _N, _N, _N, _P, _P, _N, _N, _P, _P, _N, _P, _P]


def _load() -> dict[np.dtype[Any], Any]:
    """The kernel's functions by sample dtype, or none if the library is missing or does not load."""
    functions = {}
    try:
        library = ctypes.CDLL(str(LIBRARY))
        for dtype, name in ((np.dtype(np.uint8), "tierserve_area_u8"), (np.dtype(np.uint16), "tierserve_area_u16")):
            function = getattr(library, name)
            function.argtypes, function.restype = _ARGUMENTS, None
            functions[dtype] = function
    except (OSError, AttributeError):  # not built, or a stale library without these functions
        return {}
    return functions


_FUNCTIONS = _load()


def available() -> bool:
    """Whether the compiled kernel was built and loads."""
    return bool(_FUNCTIONS)


def supports(dtype: np.dtype[Any]) -> bool:
    """Whether the compiled kernel averages samples of `dtype` (native-order uint8 and uint16, if built)."""
    return dtype in _FUNCTIONS


class StripKernel:
    """Averages strips of output rows of one `Resample` with the compiled kernel: box columns `taps_x`
    (output columns, taps) weighted by `weights_x`, for boxes `width` pixels wide of `bands` samples of
    `dtype` (uint8 or uint16). Holds one row of `width` x `bands` float64 sums, so one instance serves
    one thread (the call releases the GIL)."""

    def __init__(self, taps_x: Array, weights_x: Array, width: int, bands: int, dtype: np.dtype[Any]) -> None:
        if not supports(dtype):
            raise ValueError(f"no compiled area average for {dtype} samples")
        self._taps_x, self._weights_x = _taps(taps_x, weights_x, 0, width, "column")
        self._function = _FUNCTIONS[dtype]
        self._width, self._bands, self._dtype = width, bands, dtype
        self._row = np.empty(width * bands, np.float64)

    def __call__(self, block: Array, y0: int, taps_y: Array, weights_y: Array, out: Array) -> None:
        """Write into `out` (rows, out columns, bands) the output rows whose box-row taps are `taps_y`
        (rows, taps; ascending) with `weights_y`; `block` holds box rows y0 onwards."""
        rows, width, bands = block.shape
        itemsize = self._dtype.itemsize
        if (width, bands, block.dtype) != (self._width, self._bands, self._dtype):
            raise ValueError("block does not match the kernel's box")
        if block.strides[1:] != (bands * itemsize, itemsize) or block.strides[0] % itemsize or block.strides[0] < 0:
            block = np.ascontiguousarray(block)
        if out.shape != (len(taps_y), len(self._taps_x), bands) or out.dtype != self._dtype:
            raise ValueError("output strip does not match its taps")
        if not out.flags.c_contiguous or np.may_share_memory(out, block):
            raise ValueError("output strip is not contiguous or overlaps the block")
        taps, weights = _taps(taps_y, weights_y, y0, y0 + rows, "row")
        self._function(
            block.ctypes.data,
            block.strides[0] // itemsize,
            width,
            bands,
            y0,
            len(taps),
            taps.ctypes.data,
            weights.ctypes.data,
            taps.shape[1],
            len(self._taps_x),
            self._taps_x.ctypes.data,
            self._weights_x.ctypes.data,
            self._taps_x.shape[1],
            out.ctypes.data,
            self._row.ctypes.data,
        )


def _taps(taps: Array, weights: Array, low: int, high: int, axis: str) -> tuple[Array, Array]:
    """`taps` (outputs, taps per output) as contiguous intp in [low, high) and `weights` of the same
    shape as contiguous float64; at least one tap per output. Raises ValueError otherwise."""
    indices = np.ascontiguousarray(taps, dtype=np.intp)  # cast first: NaN would pass the range check
    if indices.ndim != 2 or np.shape(weights) != indices.shape:
        raise ValueError(f"{axis} taps and weights are not (outputs, taps) arrays of one shape")
    if len(indices) and (indices.shape[1] == 0 or indices.min() < low or indices.max() >= high):
        raise ValueError(f"{axis} taps outside the block")
    return indices, np.ascontiguousarray(weights, dtype=np.float64)

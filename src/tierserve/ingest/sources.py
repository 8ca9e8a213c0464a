"""Opening source images as libvips images with 1 or 3 bands of 8- or 16-bit samples.

TIFF/BigTIFF/OME-TIFF (page 0, the full-resolution level of a pyramid), JPEG and PNG are read by
libvips sequentially, so a huge source streams.  JPEG 2000, which the libvips wheel does not read,
is decoded by imagecodecs when its OpenJPEG codec is present (the whole image, once, in memory).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyvips

from tierserve.errors import IngestError

JPEG2000_SUFFIXES = frozenset({".jp2", ".j2k", ".j2c", ".jpx", ".jpf"})
_FORMATS = {"uchar": 8, "ushort": 16}


def open_source(path: Path) -> pyvips.Image:
    """The source at `path`, normalised: grey or RGB (alpha dropped), uchar or ushort samples.

    Raises `IngestError` for a missing, unreadable, truncated or unsupported file.
    """
    if not path.is_file():
        raise IngestError(f"source {path} does not exist or is not a file")
    image = _load_jpeg2000(path) if path.suffix.lower() in JPEG2000_SUFFIXES else _load_with_vips(path)
    return _normalise(image, path)


def _load_with_vips(path: Path) -> pyvips.Image:
    try:
        return pyvips.Image.new_from_file(str(path), access="sequential", fail_on="error")
    except pyvips.Error as exc:
        raise IngestError(f"source {path} is not a readable image: {_first_line(exc)}") from exc


def _load_jpeg2000(path: Path) -> pyvips.Image:
    import imagecodecs

    if not getattr(imagecodecs, "JPEG2K", None) or not imagecodecs.JPEG2K.available:
        raise IngestError(f"source {path}: JPEG 2000 needs imagecodecs built with OpenJPEG")
    try:
        array = imagecodecs.jpeg2k_decode(path.read_bytes())
    except (imagecodecs.Jpeg2kError, OSError) as exc:
        raise IngestError(f"source {path} is not a readable JPEG 2000 image: {exc}") from exc
    return pyvips.Image.new_from_array(np.ascontiguousarray(array))


def _normalise(image: pyvips.Image, path: Path) -> pyvips.Image:
    fmt = str(image.format)
    if fmt not in _FORMATS:
        raise IngestError(f"source {path} has {fmt} samples; only 8-bit and 16-bit unsigned are supported")
    if str(image.interpretation) == "cmyk":
        raise IngestError(f"source {path} is CMYK; convert it to RGB first")
    if image.bands == 2:
        image = image.extract_band(0)
    elif image.bands == 4:
        image = image.extract_band(0, n=3)
    elif image.bands not in (1, 3):
        raise IngestError(f"source {path} has {image.bands} bands; expected 1 (grey) or 3 (RGB)")
    return image


def sample_bits(image: pyvips.Image) -> int:
    """Bits per stored sample: 8 (uchar) or 16 (ushort)."""
    return _FORMATS[str(image.format)]


def _first_line(exc: pyvips.Error) -> str:
    text = str(exc.detail or exc.message).strip()
    return text.splitlines()[0] if text else "unknown error"

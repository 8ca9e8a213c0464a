"""Encoding a rendered image chunk by chunk into a sink: JPEG (the Allen output), PNG, TIFF, WebP.

JPEG and PNG stream while libvips decodes; TIFF needs to seek while it is written, so it goes to a
temporary file first and is then sent from there (memory stays bounded either way).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import imagecodecs
import numpy as np
import numpy.typing as npt
import pyvips

from tierserve.core.vips_errors import is_read_failure, vips_reason
from tierserve.errors import EncodeFailed, InvalidRequest, StorageError

#: A sink takes the next chunk of output and returns False to abort the encode (client gone).
Sink = Callable[[bytes], bool]
_FILE_CHUNK = 256 * 1024
#: JPEG chroma: "auto" subsamples 4:2:0 below quality 90 and keeps 4:4:4 from 90 up (libvips' rule);
#: "420" subsamples at every quality, as the stored tiers and IIPImage do.
ChromaSubsampling = Literal["auto", "420"]
#: Quality from which "auto" keeps chroma whole (libvips' rule).
_FULL_CHROMA_FROM = 90


class EncodeAborted(Exception):
    """The sink asked to stop (the client went away)."""


@dataclass(frozen=True, slots=True)
class Encoding:
    """How to encode: JPEG and WebP `quality` 0-100, JPEG chroma subsampling (PNG and TIFF ignore both)."""

    quality: int = 100
    chroma: ChromaSubsampling = "auto"

    @property
    def encoder_quality(self) -> int:
        """`quality` as the JPEG and WebP encoders take it, 1-100: libvips reads 0 as its default (75), so 0 is 1."""
        return max(1, self.quality)


@dataclass(frozen=True, slots=True)
class OutputFormat:
    """An output encoding: its media type, file extension, longest side the format can hold (pixels),
    and encoders (image or array, encoding, sink); `encode_array` is None where only libvips encodes
    the format."""

    name: str
    media_type: str
    extension: str
    max_side: int
    encode: Callable[[pyvips.Image, Encoding, Sink], None]
    encode_array: Callable[[npt.NDArray[np.uint8], Encoding, Sink], None] | None = None

    def check_size(self, width: int, height: int) -> None:
        """Raise `InvalidRequest` when a `width` x `height` output does not fit the format."""
        if width > self.max_side or height > self.max_side:
            raise InvalidRequest(
                f"output of {width}x{height} tier pixels exceeds the {self.name.upper()} limit of "
                f"{self.max_side} pixels per side"
            )


def _target(sink: Sink) -> tuple[pyvips.TargetCustom, Callable[[], bool]]:
    aborted = False

    def on_write(chunk: bytes) -> int:
        nonlocal aborted
        if aborted or not sink(bytes(chunk)):
            aborted = True
            return -1
        return len(chunk)

    target = pyvips.TargetCustom()
    target.on_write(on_write)
    return target, lambda: aborted


def _run(save: Callable[[], None], was_aborted: Callable[[], bool]) -> None:
    try:
        save()
    except pyvips.Error as exc:
        if was_aborted():
            raise EncodeAborted() from exc
        if is_read_failure(exc):
            raise StorageError("stored pyramid could not be decoded") from exc
        raise EncodeFailed(f"the output could not be encoded: {vips_reason(exc)}") from exc


def encode_jpeg(image: pyvips.Image, encoding: Encoding, sink: Sink) -> None:
    """Baseline JPEG (8-bit, 1 or 3 bands) at `encoding.quality`; metadata is not copied.

    Quality 0 is sent as 1 (`Encoding.encoder_quality`).  Chroma follows `encoding.chroma` (see
    `ChromaSubsampling`).
    Raises `EncodeAborted` when the sink refused a chunk, `StorageError` when decoding failed,
    `EncodeFailed` when encoding did.
    """
    target, aborted = _target(sink)
    subsample = "on" if encoding.chroma == "420" else "auto"
    _run(lambda: image.jpegsave_target(target, Q=encoding.encoder_quality, subsample_mode=subsample, keep=0), aborted)


def encode_jpeg_array(pixels: npt.NDArray[np.uint8], encoding: Encoding, sink: Sink) -> None:
    """`encode_jpeg` for an in-memory (height, width, 3 or 1) array, by imagecodecs' libjpeg-turbo (the
    same library and accurate DCT as libvips): one chunk, no pipeline to set up."""
    quality = encoding.encoder_quality
    subsampling = "420" if encoding.chroma == "420" or quality < _FULL_CHROMA_FROM else "444"
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[..., 0]  # grey: libjpeg's one component
    if not sink(bytes(imagecodecs.jpeg8_encode(pixels, level=quality, subsampling=subsampling))):
        raise EncodeAborted()


def encode_png(image: pyvips.Image, _encoding: Encoding, sink: Sink) -> None:
    """Lossless PNG of the rendered 8-bit image (quality does not apply)."""
    target, aborted = _target(sink)
    _run(lambda: image.pngsave_target(target, compression=3, keep=0), aborted)


def encode_webp(image: pyvips.Image, encoding: Encoding, sink: Sink) -> None:
    """Lossy WebP at `encoding.quality` (libvips' libwebp); metadata is not copied."""
    target, aborted = _target(sink)
    _run(lambda: image.webpsave_target(target, Q=encoding.encoder_quality, keep=0), aborted)


def encode_tiff(image: pyvips.Image, _encoding: Encoding, sink: Sink) -> None:
    """Lossless TIFF (deflate, horizontal predictor) at the image's sample depth, e.g. 16-bit."""
    with tempfile.TemporaryDirectory(prefix="tierserve-") as directory:
        path = Path(directory) / "out.tif"
        _run(
            lambda: image.tiffsave(
                str(path), compression="deflate", predictor="horizontal", tile=True, bigtiff=True, keep=0
            ),
            lambda: False,
        )
        with path.open("rb") as handle:
            while chunk := handle.read(_FILE_CHUNK):
                if not sink(chunk):
                    raise EncodeAborted()


FORMATS: dict[str, OutputFormat] = {
    # JPEG stores sides in 16 bits; PNG in 31 bits; TIFF in 32 bits, of which libvips addresses 31.
    "jpeg": OutputFormat("jpeg", "image/jpeg", "jpg", 65_535, encode_jpeg, encode_jpeg_array),
    "png": OutputFormat("png", "image/png", "png", 2**31 - 1, encode_png),
    "tiff": OutputFormat("tiff", "image/tiff", "tif", 2**31 - 1, encode_tiff),
    # WebP stores sides in 14 bits.
    "webp": OutputFormat("webp", "image/webp", "webp", 16_383, encode_webp),
}

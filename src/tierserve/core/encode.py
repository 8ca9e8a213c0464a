"""Encoding a rendered image, streamed chunk by chunk to a sink as libvips produces it."""

from __future__ import annotations

from collections.abc import Callable

import pyvips

from tierserve.errors import StorageError

#: A sink takes the next chunk of output and returns False to abort the encode (client gone).
Sink = Callable[[bytes], bool]


class EncodeAborted(Exception):
    """The sink asked to stop (the client went away)."""


def encode_jpeg(image: pyvips.Image, quality: int, sink: Sink) -> None:
    """Encode `image` (8-bit, 1 or 3 bands) as baseline JPEG at `quality` 0-100 into `sink`.

    libvips treats Q=0 as its default (75), so quality 0 is sent as 1.  Metadata is not copied.
    Chroma is subsampled 4:2:0 below quality 90 and kept whole at 90 and above (libvips' rule).
    Raises `EncodeAborted` when the sink refused a chunk, `StorageError` when decoding failed.
    """
    aborted = False

    def on_write(chunk: bytes) -> int:
        nonlocal aborted
        if aborted or not sink(bytes(chunk)):
            aborted = True
            return -1
        return len(chunk)

    target = pyvips.TargetCustom()
    target.on_write(on_write)
    try:
        image.jpegsave_target(target, Q=max(1, quality), keep=0)
    except pyvips.Error as exc:
        if aborted:
            raise EncodeAborted() from exc
        raise StorageError("stored pyramid could not be decoded") from exc

"""Reading libvips errors: the line that says what went wrong, and whether a read or a write failed.

A `pyvips.Error` carries a generic first line ("unable to call VipsForeignSaveTiffFile") and, in
its detail, the messages of the operations underneath, each prefixed by its domain
("tiff2vips: Read error at row 3584, ..."). Loaders have their own domains, so a failure can be
told apart from a failure of the writer it was streaming into.
"""

from __future__ import annotations

import pyvips

#: Domains of libvips' image loaders (the readers of a file's pixels).
_LOADER_DOMAINS = ("tiff2vips", "VipsJpeg", "vipspng", "spng", "gifload", "webp2vips", "heif", "VipsForeignLoad")


def _detail_lines(exc: pyvips.Error) -> list[str]:
    text = str(exc.detail or "")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("unable to call")]


def vips_reason(exc: pyvips.Error) -> str:
    """The most specific line of a libvips error, e.g. "tiff2vips: Read error at row 3584, ...";
    the first line of the message when libvips left no detail."""
    lines = _detail_lines(exc)
    if lines:
        return lines[0]
    first = str(exc.message or "").strip().splitlines()
    return first[0] if first else "unknown libvips error"


def is_read_failure(exc: pyvips.Error) -> bool:
    """Whether a loader reported the failure: the file being read is damaged or unreadable."""
    return any(line.startswith(_LOADER_DOMAINS) for line in _detail_lines(exc))

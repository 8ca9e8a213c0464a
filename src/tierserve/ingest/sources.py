"""Opening source images as libvips images with 1 or 3 bands of 8- or 16-bit samples, refusing damage.

TIFF/BigTIFF/OME-TIFF (page 0, the full-resolution level of a pyramid), JPEG and PNG are read by
libvips sequentially, so a huge source streams. Every libvips read fails on any decoder warning
(`fail_on="warning"`): a tile that is cut short or does not inflate stops the ingest instead of
becoming black pixels. TIFFs are checked before any pixel is read: every tile or strip of page 0
must lie inside the file. TIFF compressions the libvips wheel cannot decode (zstd, LZMA, WebP, JPEG
XL, ...) are decoded by tifffile and imagecodecs into an uncompressed scratch TIFF, tile by tile, and
streamed from there. JPEG 2000, which the libvips wheel does not read, is decoded by imagecodecs
(the whole image, once, in memory).
"""

from __future__ import annotations

import logging
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyvips
import tifffile

from tierserve.core.vips_errors import vips_reason
from tierserve.errors import IngestError

#: tifffile logs what it finds wrong in a file; ingest reports a damaged source once, itself.
logging.getLogger("tifffile").setLevel(logging.ERROR)

JPEG2000_SUFFIXES = frozenset({".jp2", ".j2k", ".j2c", ".jpx", ".jpf"})
_FORMATS = {"uchar": 8, "ushort": 16}
_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
#: TIFF compressions the libvips wheel's libtiff decodes; the others go through imagecodecs.
_VIPS_TIFF_COMPRESSIONS = frozenset(
    {
        tifffile.COMPRESSION.NONE,
        tifffile.COMPRESSION.LZW,
        tifffile.COMPRESSION.JPEG,
        tifffile.COMPRESSION.ADOBE_DEFLATE,
        tifffile.COMPRESSION.DEFLATE,
        tifffile.COMPRESSION.PACKBITS,
    }
)
#: Micrometres per unit of TIFF ResolutionUnit (2 = inch, 3 = centimetre); 1 (no unit) states nothing.
_UM_PER_RESOLUTION_UNIT = {2: 25_400.0, 3: 10_000.0}
#: Pixels per inch that image programs write when nobody stated a pixel size.
_PLACEHOLDER_DPI = frozenset({72.0, 96.0})
_UM_PER_OME_UNIT = {"nm": 1e-3, "µm": 1.0, "um": 1.0, "mm": 1e3, "cm": 1e4, "m": 1e6}


@dataclass(frozen=True, slots=True)
class Source:
    """An opened source: its pixels, and the pixel size in µm that the file states (None if it states none)."""

    image: pyvips.Image
    resolution_um: float | None = None


def open_source(path: Path, label: str, scratch: Path) -> Source:
    """The source at `path`, normalised: grey or RGB (alpha dropped), uchar or ushort samples.

    `label` names the source in messages (the manifest's path); `scratch` receives decoded copies
    of TIFFs libvips cannot read, which must outlive the returned image. Raises `IngestError` for a
    missing, unreadable, truncated or unsupported file.
    """
    if not path.is_file():
        raise IngestError(f"source {label} does not exist or is not a file")
    if path.suffix.lower() in JPEG2000_SUFFIXES:
        source = Source(_load_jpeg2000(path, label))
    elif _is_tiff(path):
        source = _open_tiff(path, label, scratch)
    else:
        source = Source(_load_with_vips(path, label))
    return Source(_normalise(source.image, label), source.resolution_um)


def _is_tiff(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(4) in _TIFF_MAGIC


def _load_with_vips(path: Path, label: str) -> pyvips.Image:
    try:
        return pyvips.Image.new_from_file(str(path), access="sequential", fail_on="warning")
    except pyvips.Error as exc:
        raise IngestError(f"source {label} is not a readable image: {vips_reason(exc)}") from exc


def _load_jpeg2000(path: Path, label: str) -> pyvips.Image:
    import imagecodecs

    if not getattr(imagecodecs, "JPEG2K", None) or not imagecodecs.JPEG2K.available:
        raise IngestError(f"source {label}: JPEG 2000 needs imagecodecs built with OpenJPEG")
    try:
        array = imagecodecs.jpeg2k_decode(path.read_bytes())
    except (imagecodecs.Jpeg2kError, OSError) as exc:
        raise IngestError(f"source {label} is damaged or not a JPEG 2000 image: {exc}") from exc
    return pyvips.Image.new_from_array(np.ascontiguousarray(array))


def _open_tiff(path: Path, label: str, scratch: Path) -> Source:
    """Check page 0's layout, read the stated pixel size, and open the pixels with libvips."""
    try:
        with tifffile.TiffFile(path) as tif:
            if not tif.pages:
                raise IngestError(f"source {label} is damaged or truncated: its first image directory is unreadable")
            page = tif.pages.first
            check_segments(page, tif.filehandle.size, label)
            resolution = _ome_resolution(tif.ome_metadata) if tif.is_ome else None
            resolution = resolution or _tag_resolution(page)
            if page.compression in _VIPS_TIFF_COMPRESSIONS:
                return Source(_load_with_vips(path, label), resolution)
            return Source(_decode_to_scratch(page, scratch, label), resolution)
    except (tifffile.TiffFileError, ValueError, RuntimeError, OSError) as exc:
        raise IngestError(f"source {label} is damaged or not a readable TIFF: {exc}") from exc


def check_segments(page: tifffile.TiffPage, file_size: int, label: str) -> None:
    """Refuse a page whose tiles or strips are missing or end past the end of the file (truncated)."""
    kind = "tile" if page.is_tiled else "strip"
    offsets, counts = page.dataoffsets, page.databytecounts
    total = len(offsets)
    for n, (offset, count) in enumerate(zip(offsets, counts, strict=True), start=1):
        if offset + count > file_size:
            raise IngestError(
                f"source {label} is truncated: {kind} {n} of {total} ends past the end of the file "
                f"(at byte {offset + count}, the file has {file_size})"
            )
        if count == 0 or offset == 0:
            raise IngestError(f"source {label} is damaged: {kind} {n} of {total} is missing (no bytes stored)")


def _decode_to_scratch(page: tifffile.TiffPage, scratch: Path, label: str) -> pyvips.Image:
    """Decode `page` with imagecodecs into an uncompressed TIFF in `scratch`, segment by segment."""
    compression = tifffile.COMPRESSION(page.compression).name
    target = scratch / f"decoded-{uuid.uuid4().hex}.tif"
    photometric = "rgb" if page.samplesperpixel >= 3 else "minisblack"
    planar = "separate" if page.planarconfig == tifffile.PLANARCONFIG.SEPARATE else "contig"
    try:
        out = tifffile.memmap(target, shape=page.shape, dtype=page.dtype, photometric=photometric, planarconfig=planar)
        page.asarray(out=out)
        out.flush()
        del out
    except ValueError as exc:
        raise IngestError(f"source {label} uses {compression} compression, which cannot be decoded: {exc}") from exc
    return _load_with_vips(target, label)


def _ome_resolution(xml: str | None) -> float | None:
    """PhysicalSizeX of the first OME Pixels element in µm, when X and Y agree within 1%."""
    if not xml:
        return None
    try:
        root = ET.fromstring(xml)
    except ET.ParseError:
        return None
    pixels = next((e for e in root.iter() if e.tag.rpartition("}")[2] == "Pixels"), None)
    if pixels is None:
        return None
    sizes = [_ome_size(pixels.get(f"PhysicalSize{axis}"), pixels.get(f"PhysicalSize{axis}Unit", "µm")) for axis in "XY"]
    x, y = sizes
    if x is None or (y is not None and abs(x - y) > 0.01 * x):
        return None
    return x


def _ome_size(value: str | None, unit: str) -> float | None:
    try:
        size = float(value) * _UM_PER_OME_UNIT[unit] if value is not None else None
    except (ValueError, KeyError):
        return None
    return size if size is not None and size > 0 else None


def _tag_resolution(page: tifffile.TiffPage) -> float | None:
    """µm per pixel from XResolution with an inch or centimetre unit, ignoring the 72/96 dpi placeholders."""
    unit = int(page.tags.valueof("ResolutionUnit", 2))
    numerator, denominator = page.tags.valueof("XResolution", (0, 1))
    if unit not in _UM_PER_RESOLUTION_UNIT or numerator <= 0 or denominator <= 0:
        return None
    per_unit = float(numerator) / float(denominator)
    if unit == 2 and per_unit in _PLACEHOLDER_DPI:
        return None
    return _UM_PER_RESOLUTION_UNIT[unit] / per_unit


def _normalise(image: pyvips.Image, label: str) -> pyvips.Image:
    fmt = str(image.format)
    if fmt not in _FORMATS:
        raise IngestError(f"source {label} has {fmt} samples; only 8-bit and 16-bit unsigned are supported")
    if str(image.interpretation) == "cmyk":
        raise IngestError(f"source {label} is CMYK; convert it to RGB first")
    if image.bands == 2:
        image = image.extract_band(0)
    elif image.bands == 4:
        image = image.extract_band(0, n=3)
    elif image.bands not in (1, 3):
        raise IngestError(f"source {label} has {image.bands} bands; expected 1 (grey) or 3 (RGB)")
    return image


def sample_bits(image: pyvips.Image) -> int:
    """Bits per stored sample: 8 (uchar) or 16 (ushort)."""
    return _FORMATS[str(image.format)]

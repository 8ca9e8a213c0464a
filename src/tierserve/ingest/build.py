"""Building one image: open its sources, write and publish a pyramid per layer, describe the result.

This is the part of ingest that runs where the pixels are (in the ingesting process, or on a Dask
worker): it knows the store, not the database. Its input (`ImageJob`) and output (`BuiltImage`) are
plain, picklable values; the driver turns a `BuiltImage` into rows and commits them.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyvips

from tierserve.core.tiers import level_count
from tierserve.core.vips_errors import is_read_failure, vips_reason
from tierserve.errors import IngestError
from tierserve.ingest.manifest import ImageEntry
from tierserve.ingest.pyramid_writer import tiles_in_pyramid, write_pyramid
from tierserve.ingest.source_access import SourceAccess
from tierserve.ingest.sources import open_source, sample_bits
from tierserve.layers import LayerKind
from tierserve.storage import ObjectInfo, StoreWriter

#: Told the entry's label and how many tiles its layers hold, before the first tile is written.
StartCallback = Callable[[str, int], None]
#: Told the entry's label and how many tiles were just written.
TilesCallback = Callable[[str, int], None]


@dataclass(frozen=True, slots=True)
class ImageJob:
    """One image entry of a manifest with what building it needs.

    `name` labels the entry in messages (`section_data_sets[0].images[2] (id 13)`); `model` is
    "SectionImage" or "AtlasImage"; `quality` the JPEG quality of 8-bit tiles.
    """

    entry: ImageEntry
    name: str
    model: str
    data_set_id: int
    quality: int


@dataclass(frozen=True, slots=True)
class BuiltLayer:
    """A published layer pyramid: `file` is its store key, size and version."""

    kind: LayerKind
    atlas: int | None
    file: ObjectInfo
    width: int
    height: int
    levels: int
    bits_per_component: int
    bands: int


@dataclass(frozen=True, slots=True)
class BuiltImage:
    """What the driver commits for a built image. Sizes in full-resolution pixels; `section` is the
    SubImage rectangle (x, y, width, height); `resolution_um` is µm per pixel or None."""

    job: ImageJob
    section: tuple[int, int, int, int]
    width: int
    height: int
    levels: int
    bits_per_component: int
    bands: int
    resolution_um: float | None
    layers: tuple[BuiltLayer, ...]
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class _Source:
    """An opened layer source; `label` is its path as the manifest writes it."""

    kind: LayerKind
    atlas: int | None
    image: pyvips.Image
    label: str
    resolution_um: float | None = None


def build_image(
    job: ImageJob,
    store: StoreWriter,
    access: SourceAccess,
    scratch: Path,
    on_started: StartCallback | None = None,
    on_tiles: TilesCallback | None = None,
) -> BuiltImage:
    """Write and publish every layer of `job` under keys of this attempt (`<table>/<id>/<attempt>/...`).

    `scratch` receives this image's temporary files. Raises `IngestError` naming the source and what
    is wrong with it; what was published before a failure is left to `tierserve gc`.
    """
    entry = job.entry
    sources = _open_sources(entry, access, scratch)
    primary = sources[0].image
    section = _section_rectangle(entry, primary)
    bits = _bits_per_component(entry, primary)
    resolution, warnings = _resolution(entry.resolution, sources[0].resolution_um)
    if on_started is not None:
        on_started(job.name, tiles_in_pyramid(primary.width, primary.height) * len(sources))
    folder = f"sub_images/{entry.id}/{uuid.uuid4().hex[:12]}"

    def tiles_written(count: int) -> None:
        if on_tiles is not None:
            on_tiles(job.name, count)

    written = [
        _write_layer(
            store, source, f"{folder}/{_layer_file_name(source)}", job.quality, resolution, scratch, tiles_written
        )
        for source in sources
    ]
    layers = (dataclasses.replace(written[0], bits_per_component=bits), *written[1:])  # the primary's declared bits
    return BuiltImage(
        job=job,
        section=section,
        width=primary.width,
        height=primary.height,
        levels=level_count(primary.width, primary.height),
        bits_per_component=bits,
        bands=primary.bands,
        resolution_um=resolution,
        layers=layers,
        warnings=warnings,
    )


def _write_layer(
    store: StoreWriter,
    source: _Source,
    key: str,
    quality: int,
    resolution_um: float | None,
    scratch: Path,
    on_tiles: Callable[[int], None],
) -> BuiltLayer:
    """Write one layer's pyramid and publish it at `key`; a libvips failure names the source."""
    try:
        with store.publish(key, scratch) as publication:
            info = write_pyramid(
                source.image, publication.path, scratch, quality=quality, resolution_um=resolution_um, on_tiles=on_tiles
            )
    except pyvips.Error as exc:
        if is_read_failure(exc):
            raise IngestError(f"source {source.label} is damaged: {vips_reason(exc)}") from exc
        raise IngestError(f"writing the pyramid of {source.label} failed: {vips_reason(exc)}") from exc
    assert publication.info is not None  # set by a publish that returned normally
    return BuiltLayer(
        kind=source.kind,
        atlas=source.atlas,
        file=publication.info,
        width=info.width,
        height=info.height,
        levels=info.levels,
        bits_per_component=info.sample_bits,
        bands=info.bands,
    )


def _open_sources(entry: ImageEntry, access: SourceAccess, scratch: Path) -> list[_Source]:
    """Open the primary and every layer source; layers must match the primary's pixel size."""
    opened = open_source(access.local_file(entry.source, scratch), entry.source, scratch)
    primary = _Source(LayerKind.PRIMARY, None, opened.image, entry.source, opened.resolution_um)
    sources = [primary]
    for layer in entry.layers:
        image = open_source(access.local_file(layer.source, scratch), layer.source, scratch).image
        if (image.width, image.height) != (primary.image.width, primary.image.height):
            raise IngestError(
                f"{layer.kind.value} layer {layer.source} is {image.width}x{image.height}, "
                f"the primary image is {primary.image.width}x{primary.image.height}"
            )
        sources.append(_Source(layer.kind, layer.atlas, image, layer.source))
    return sources


def _section_rectangle(entry: ImageEntry, primary: pyvips.Image) -> tuple[int, int, int, int]:
    if entry.x is None or entry.y is None or entry.width is None or entry.height is None:
        return 0, 0, primary.width, primary.height
    if entry.x + entry.width > primary.width or entry.y + entry.height > primary.height:
        raise IngestError(
            f"section rectangle x={entry.x} y={entry.y} width={entry.width} height={entry.height} "
            f"does not fit the {primary.width}x{primary.height} source"
        )
    return entry.x, entry.y, entry.width, entry.height


def _bits_per_component(entry: ImageEntry, primary: pyvips.Image) -> int:
    stored = sample_bits(primary)
    declared = entry.bits_per_component or stored
    if (stored == 8) != (declared == 8):
        raise IngestError(f"bits_per_component={declared} does not fit {stored}-bit source samples")
    return declared


def _resolution(declared: float | None, stated: float | None) -> tuple[float | None, tuple[str, ...]]:
    """The manifest's µm per pixel, else the one the source file states; a manifest value more than
    1% off the file's wins, with a warning."""
    if declared is None:
        return stated, ()
    if stated is not None and abs(declared - stated) > 0.01 * stated:
        return declared, (f"resolution {declared:g} µm from the manifest is used; the source states {stated:.6g} µm",)
    return declared, ()


def _layer_file_name(source: _Source) -> str:
    if source.kind is LayerKind.ANNOTATION:
        return f"annotation-atlas-{source.atlas}.ome.tif"
    return f"{source.kind.value}.ome.tif"


def failure_message(exc: IngestError | pyvips.Error | OSError) -> str:
    """One line saying why building an image failed."""
    if isinstance(exc, IngestError):
        return exc.message
    if isinstance(exc, pyvips.Error):
        return vips_reason(exc)
    return f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc)


#: Exceptions `build_image` may raise for a bad entry (anything else is a bug and propagates).
BUILD_ERRORS = (IngestError, pyvips.Error, OSError)

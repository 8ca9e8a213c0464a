"""The image download service: from an image record and request options to a streamed image.

Knows the database records and the core, not HTTP: `plan_download` validates everything that can be
checked before any pixel is read, so that errors become clean responses; `run_download` then
renders and encodes into a sink.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from tierserve import __version__
from tierserve.core.encode import FORMATS, ChromaSubsampling, EncodeAborted, Encoding, OutputFormat, Sink
from tierserve.core.filters import ChannelWeights, Colormap, Contrast
from tierserve.core.orientation import UPRIGHT, Orientation
from tierserve.core.pyramid import PyramidFile, is_small
from tierserve.core.render import Quality, RenderSpec, render
from tierserve.core.render_array import render_array
from tierserve.core.resample import Resample
from tierserve.core.tiers import TILE, ReadPlan, plan_read, resolve_window
from tierserve.core.tiles import TileReader
from tierserve.core.windowing import ChannelWindow
from tierserve.db.repository import ImageRecord, LayerRecord
from tierserve.errors import LimitExceeded, StorageError
from tierserve.layers import LayerKind, select_layer
from tierserve.storage import ObjectInfo, StoreReader

log = logging.getLogger(__name__)

#: The band ``colormap`` reads in 3-channel layers deeper than 8 bits: green, the labelled signal of
#: connectivity images (red is background autofluorescence, blue is empty).
FLUORESCENCE_SIGNAL = 1


@dataclass(frozen=True, slots=True)
class DownloadOptions:
    """Parsed image-download options. left/top: full-resolution pixels; width/height: tier pixels
    (full-resolution when `downsample_dimensions`); None means the Allen default."""

    downsample: int = 0
    quality: int = 100
    left: int | None = None
    top: int | None = None
    width: int | None = None
    height: int | None = None
    downsample_dimensions: bool = False
    view: LayerKind = LayerKind.PRIMARY
    atlas: int | None = None
    range: ChannelWindow | None = None
    contrast: Contrast | None = None
    rgb: ChannelWeights | None = None
    colormap: Colormap | None = None
    format: str = "jpeg"

    @property
    def display(self) -> DisplayOptions:
        """The display filters among the options."""
        return DisplayOptions(self.range, self.contrast, self.rgb, self.colormap)


@dataclass(frozen=True, slots=True)
class DisplayOptions:
    """The display filters (Allen semantics, docs/api.md): `range` window, `contrast`, `rgb`, `colormap`."""

    range: ChannelWindow | None = None
    contrast: Contrast | None = None
    rgb: ChannelWeights | None = None
    colormap: Colormap | None = None

    @property
    def active(self) -> bool:
        """Whether any option asks for 8-bit display values."""
        return any(option is not None for option in (self.range, self.contrast, self.rgb, self.colormap))


@dataclass(frozen=True, slots=True)
class DownloadJob:
    """A validated download: which file to read and how to render and encode it."""

    image_id: int
    file: ObjectInfo
    spec: RenderSpec
    encoding: Encoding
    output: OutputFormat


def plan_download(
    record: ImageRecord, options: DownloadOptions, max_output_pixels: int, chroma: ChromaSubsampling = "auto"
) -> DownloadJob:
    """Choose the layer, apply defaults, plan the read and the channel window; JPEG chroma is `chroma`.

    Raises `LayerNotFound`, `InvalidRequest`, `RegionOutsideImage` or `LimitExceeded` (output larger
    than `max_output_pixels` tier pixels) before any file is touched.
    """
    layer = select_layer(record.id, record.layers, options.view, options.atlas)
    window = resolve_window(
        record.section,
        options.downsample,
        options.left,
        options.top,
        options.width,
        options.height,
        options.downsample_dimensions,
    )
    output = FORMATS[options.format]
    output.check_size(window.width, window.height)
    plan = plan_read(record.image_width, record.image_height, record.tier_count, window)
    pixels = plan.output.width * plan.output.height
    if pixels > max_output_pixels:
        raise LimitExceeded(
            f"output of {plan.output.width}x{plan.output.height} = {pixels} pixels exceeds "
            f"max_output_pixels={max_output_pixels}; ask for a region or a higher downsample",
            "max_output_pixels",
        )
    native = options.format == "tiff" and not options.display.active
    spec = display_spec(layer, record.equalization, plan, options.display, native=native)
    return DownloadJob(record.id, layer.file, spec, Encoding(options.quality, chroma), output)


def display_spec(
    layer: LayerRecord,
    equalization: ChannelWindow | None,
    plan: ReadPlan,
    display: DisplayOptions,
    native: bool = False,
    orientation: Orientation = UPRIGHT,
    resample: Resample | None = None,
    quality: Quality = "color",
) -> RenderSpec:
    """The render of `plan` from `layer` with the display filters: the channel window (`channel_window`),
    contrast, weights and colormap (on the signal channel of 3-channel layers deeper than 8 bits); with
    `native` the stored samples. `orientation`, `resample` and `quality` are `RenderSpec`'s."""
    deep_colour = layer.bits_per_component > 8 and layer.number_of_components == 3
    return RenderSpec(
        plan=plan,
        window=None if native else channel_window(layer, display.range, equalization),
        contrast=display.contrast,
        weights=display.rgb,
        colormap=display.colormap,
        intensity_channel=FLUORESCENCE_SIGNAL if deep_colour else None,
        native=native,
        orientation=orientation,
        resample=resample,
        quality=quality,
    )


def channel_window(
    layer: LayerRecord, requested: ChannelWindow | None, equalization: ChannelWindow | None
) -> ChannelWindow | None:
    """`range` when given; for layers deeper than 8 bits the equalization, else the full native scale."""
    if requested is not None:
        return requested
    if layer.bits_per_component <= 8:
        return None
    return equalization or ChannelWindow.full_scale(layer.bits_per_component)


def run_download(job: DownloadJob, store: StoreReader, tiles: TileReader, sink: Sink) -> None:
    """Answer `job` into `sink`: a JPEG of exactly one whole stored tile at its stored quality as stored
    (`stored_answer`), anything else rendered (`render_download`). Storage failures are re-raised
    naming the image id."""
    if (stored := stored_answer(job, store, tiles)) is None:
        render_download(job, store, tiles, sink)
    elif not sink(stored):
        raise EncodeAborted()


def render_download(job: DownloadJob, store: StoreReader, tiles: TileReader, sink: Sink) -> None:
    """Render and encode `job` into `sink`: JPEG outputs of small reads and sizes in memory
    (`core.render_array`), the rest as a libvips stream. Storage failures are re-raised naming the image id."""
    with _naming_the_image(job, store):
        pyramid = PyramidFile(store.open(job.file), tiles)
        plan = job.spec.plan
        if job.output.encode_array is not None and is_small(plan.box) and is_small(plan.output):
            job.output.encode_array(render_array(pyramid, job.spec), job.encoding, sink)
        else:
            job.output.encode(render(pyramid, job.spec), job.encoding, sink)


def stored_answer(job: DownloadJob, store: StoreReader, tiles: TileReader) -> bytes | None:
    """The stored JPEG tile that answers `job` as it is (`TileReader.stored_jpeg`: one read of the tile
    when its level's tables match the quality), or None; nothing is read unless `_may_be_stored(job)`.
    Storage failures are re-raised naming the image id."""
    if not (tiles.passthrough and _may_be_stored(job)):
        return None
    plan = job.spec.plan
    with _naming_the_image(job, store):
        return tiles.stored_jpeg(store.open(job.file), plan.level, plan.box, job.encoding.encoder_quality)


def _may_be_stored(job: DownloadJob) -> bool:
    """Whether a stored tile may answer `job`: a JPEG of stored pixels as they are, in one cell of the
    `TILE` grid that ingest writes (the file's own tile size is checked when it is read)."""
    box = job.spec.plan.box
    one_cell = box.width == box.height == TILE and box.x % TILE == box.y % TILE == 0
    return job.output.name == "jpeg" and job.spec.stored_pixels and one_cell


def entity_tag(job: DownloadJob, tiles: TileReader) -> str:
    """A strong HTTP entity tag of the job's output: a hash of everything that decides the bytes (the
    planned job, which names the stored file with the version ingest recorded, the tierserve version,
    the DCT `tiles` decodes 8-bit JPEG tiles with, and whether a stored tile may answer), computed
    without reading pixels or asking the store. Equivalent requests (parameter order, defaults spelt
    out, jpg/jpeg) plan equal jobs, so they share a tag."""
    stored = tiles.passthrough and _may_be_stored(job)
    planned = (__version__, job.image_id, job.file, job.spec, job.encoding, job.output.name, tiles.jpeg_dct, stored)
    return '"' + hashlib.blake2b(repr(planned).encode(), digest_size=16).hexdigest() + '"'


@contextmanager
def _naming_the_image(job: DownloadJob, store: StoreReader) -> Iterator[None]:
    try:
        yield
    except StorageError as exc:
        log.error("image %s: %s (%s in %s)", job.image_id, exc.message, job.file.key, store.name)
        raise StorageError(f"image {job.image_id}: {exc.message}") from exc

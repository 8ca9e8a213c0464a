"""The IIIF Image API service of an image record: identifiers, image information, planned images. No HTTP.

An identifier is an image id, ``{image id}`` for the primary layer and ``{image id}~{layer}`` for the
others (``~expression``, ``~projection``, ``~annotation-{atlas id}``, ``~tumor_feature_annotation``,
``~tumor_feature_boundary``). The IIIF image is the SubImage's section, as the Allen service defines
it (the whole stored scan unless the section is a sub-rectangle): IIIF pixel (0, 0) is full-resolution
pixel (section.x, section.y). `plan_image` turns a parsed request into the `DownloadJob` that the
download service renders, so both APIs share the render pipeline, store, ETags and limits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from tierserve.core.encode import FORMATS, Encoding
from tierserve.core.render import Quality
from tierserve.core.resample import plan_scaled_read
from tierserve.core.tiers import TILE, Box
from tierserve.db.repository import ImageRecord
from tierserve.downloads import DisplayOptions, DownloadJob, display_spec
from tierserve.errors import ImageNotFound
from tierserve.iiif.image_request import ImageRequest, Limits, Version, output_size, region_box
from tierserve.layers import LayerKind, select_layer

CONTEXTS: dict[Version, str] = {
    2: "http://iiif.io/api/image/2/context.json",
    3: "http://iiif.io/api/image/3/context.json",
}
PROFILES: dict[Version, str] = {
    2: "http://iiif.io/api/image/2/level2.json",
    3: "http://iiif.io/api/image/3/level2.json",
}
PROTOCOL = "http://iiif.io/api/image"
#: IIIF format extension -> `core.encode.FORMATS` key.
OUTPUT_FORMATS = {"jpg": "jpeg", "png": "png", "tif": "tiff", "webp": "webp"}
_QUALITIES: dict[str, Quality] = {"default": "color", "color": "color", "gray": "gray", "bitonal": "bitonal"}
_IDENTIFIER = re.compile(
    r"(?P<id>[1-9][0-9]{0,18})"
    r"(?:~(?:annotation-(?P<atlas>[1-9][0-9]{0,18})|(?P<layer>expression|projection|tumor_feature_annotation"
    r"|tumor_feature_boundary)))?"
)


@dataclass(frozen=True, slots=True)
class Identifier:
    """A parsed identifier: the image and which of its layers (`atlas` for annotation layers)."""

    text: str
    image_id: int
    layer: LayerKind
    atlas: int | None = None


def parse_identifier(text: str) -> Identifier:
    """``{image id}`` or ``{image id}~{layer}``; anything else names no image: `ImageNotFound`."""
    found = _IDENTIFIER.fullmatch(text)
    if found is None or int(found["id"]) >= 2**63 or (found["atlas"] and int(found["atlas"]) >= 2**63):
        shown = text[:40] + ("..." if len(text) > 40 else "")
        raise ImageNotFound(f"no image has the identifier {shown!r}; identifiers are IMAGE_ID or IMAGE_ID~LAYER")
    if found["atlas"]:
        return Identifier(text, int(found["id"]), LayerKind.ANNOTATION, int(found["atlas"]))
    return Identifier(text, int(found["id"]), LayerKind(found["layer"] or LayerKind.PRIMARY))


def limits_for(max_output_pixels: int) -> Limits:
    """maxArea is the output-pixel limit; maxWidth and maxHeight the JPEG format's side limit (or the
    area, when smaller)."""
    side = min(FORMATS["jpeg"].max_side, max_output_pixels)
    return Limits(side, side, max_output_pixels)


def check_layer(record: ImageRecord, identifier: Identifier) -> None:
    """Raises `LayerNotFound` when the image has no layer of the identifier."""
    select_layer(record.id, record.layers, identifier.layer, identifier.atlas)


def image_info(version: Version, service: str, record: ImageRecord, limits: Limits) -> dict[str, Any]:
    """The info.json of the image at `service` (its base URI): size, limits, `sizes` (the stored
    levels' sizes within the limits), `tiles` (TILE-pixel tiles at the stored levels' scale factors)
    and the level 2 profile with what tierserve adds to it."""
    width, height = record.section.width, record.section.height
    factors = [1 << level for level in range(record.tier_count) if width >> level and height >> level]
    sizes = [
        {"width": width // s, "height": height // s}
        for s in reversed(factors)
        if width // s <= limits.max_width
        and height // s <= limits.max_height
        and (width // s) * (height // s) <= limits.max_area
    ]
    tiles = [{"width": TILE, "height": TILE, "scaleFactors": factors}]
    extra_formats = ["tif", "webp"]
    extra_qualities = ["color", "gray", "bitonal"]
    if version == 3:
        return {
            "@context": CONTEXTS[3],
            "id": service,
            "type": "ImageService3",
            "protocol": PROTOCOL,
            "profile": "level2",
            "width": width,
            "height": height,
            "maxWidth": limits.max_width,
            "maxHeight": limits.max_height,
            "maxArea": limits.max_area,
            "sizes": sizes,
            "tiles": tiles,
            "extraQualities": extra_qualities,
            "extraFormats": extra_formats,
            "extraFeatures": ["canonicalLinkHeader", "mirroring", "profileLinkHeader", "sizeUpscaling"],
        }
    return {
        "@context": CONTEXTS[2],
        "@id": service,
        "protocol": PROTOCOL,
        "width": width,
        "height": height,
        "sizes": sizes,
        "tiles": tiles,
        "profile": [
            PROFILES[2],
            {
                "formats": extra_formats,
                "qualities": extra_qualities,
                "supports": ["canonicalLinkHeader", "mirroring", "profileLinkHeader", "regionSquare", "sizeAboveFull"],
                "maxWidth": limits.max_width,
                "maxHeight": limits.max_height,
                "maxArea": limits.max_area,
            },
        ],
    }


@dataclass(frozen=True, slots=True)
class PlannedImage:
    """A validated image request: the job to render and its canonical parameters
    (``{region}/{size}/{rotation}/{quality}.{format}``)."""

    job: DownloadJob
    canonical: str


def plan_image(
    record: ImageRecord,
    identifier: Identifier,
    request: ImageRequest,
    display: DisplayOptions,
    limits: Limits,
    encoding: Encoding,
) -> PlannedImage:
    """Resolve region and size against the section, plan the read at the level at least as dense as the
    output (`core.resample`), and the display filters and channel window as the Allen routes do.

    Raises `LayerNotFound`, `InvalidRequest` (with `RegionOutsideImage`, `LimitExceeded`) before any
    file is touched.
    """
    layer = select_layer(record.id, record.layers, identifier.layer, identifier.atlas)
    section = record.section
    region = region_box(request.region, section.width, section.height)
    width, height = output_size(request.version, request.size, region.width, region.height, limits)
    output = FORMATS[OUTPUT_FORMATS[request.format]]
    turned = request.orientation.swaps_axes
    output.check_size(height if turned else width, width if turned else height)
    stored = Box(section.x + region.x, section.y + region.y, region.width, region.height)
    plan, resample = plan_scaled_read(record.image_width, record.image_height, record.tier_count, stored, width, height)
    spec = display_spec(
        layer,
        record.equalization,
        plan,
        display,
        orientation=request.orientation,
        resample=resample,
        quality=_QUALITIES[request.quality],
    )
    job = DownloadJob(record.id, layer.file, spec, encoding, output)
    whole = region == Box(0, 0, section.width, section.height)
    return PlannedImage(job, canonical(request, region, whole, width, height))


def canonical(request: ImageRequest, region: Box, whole: bool, width: int, height: int) -> str:
    """The canonical form of a request whose region resolved to `region` (`whole`: the full image) and
    its size to `width` x `height` (Image API 3.0 section 4.8, 2.1 section 4.7)."""
    region_text = "full" if whole else f"{region.x},{region.y},{region.width},{region.height}"
    if request.version == 3:
        upscaled = width > region.width or height > region.height
        if request.size.kind == "max":
            size_text = "^max" if request.size.upscale else "max"
        else:
            size_text = ("^" if upscaled else "") + f"{width},{height}"
    elif (width, height) == (region.width, region.height):
        size_text = "full"
    elif height == (2 * region.height * width + region.width) // (2 * region.width):  # what w, gives
        size_text = f"{width},"
    else:
        size_text = f"{width},{height}"
    orientation = request.orientation
    rotation = ("!" if orientation.mirror else "") + str(90 * orientation.quarter_turns)
    return f"{region_text}/{size_text}/{rotation}/{request.quality}.{request.format}"

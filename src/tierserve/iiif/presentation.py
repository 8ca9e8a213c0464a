"""IIIF Presentation API 3.0 documents of the data sets: pure functions from database records
(`tierserve.db.repository`) to iiif-prezi3 models. No HTTP and no database here; every URL derives
from the `Links` the caller gives.

- A **Manifest** per SectionDataSet or AtlasDataSet: one Canvas per image in section-number order,
  the canvas as large as the section in full-resolution pixels; the data set's Allen fields as
  `metadata` (label = Allen field name); `seeAlso` its RMA record; `partOf` the Collection.
- A **Collection** listing every data set's manifest.

Each canvas has one painting annotation. Its body is the primary layer as an `Image` whose `service`
is the IIIF Image API 3.0 service ``{base}/iiif/3/{image id}``. An image with further stored layers
(expression, projection, annotation per atlas, tumor features; identifiers ``{image id}~{layer}``,
see `image_identifier`) gets a `Choice` body instead, the primary image first, each item an `Image`
with its own ImageService3 and a label naming the layer.

Why a `Choice` rather than several painting annotations or a second AnnotationPage: the layers are
registered alternatives of the same section (ingest requires each layer to have the primary's pixel
size), which is what the Web Annotation `Choice` means ("select one to display", most preferred
first), and it is what the two common viewers offer a switch for (IIIF cookbook recipe 0033 lists
UV and Mirador). Mirador (3 and 4, through manifesto, which expands a Choice into its items) shows
each item in its Layers panel with a visibility toggle and an opacity slider, the first item on top;
UV offers the items as a choice and starts with the first; a viewer that knows no Choice shows the
first, the primary image. Several painting annotations would instead be composed into one scene
(recipe 0036: UV draws them all, stacked, with no switch), and images in an AnnotationPage under
`annotations` are not painted by Mirador or UV at all. Annotations have no `behavior` in the
prezi3 models, so "hidden" cannot mark the overlays either.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from iiif_prezi3 import (
    Annotation,
    AnnotationBody,
    AnnotationPage,
    Canvas,
    Choice,
    Collection,
    KeyValueString,
    Manifest,
    ManifestRef,
    ServiceV3,
)

from tierserve.db.repository import DataSetRecord, DataSetSummary, LayerKey, SectionRecord
from tierserve.errors import InvalidRequest, NotFound
from tierserve.layers import LayerKind

CONTEXT = "http://iiif.io/api/presentation/3/context.json"
#: Canvas thumbnails fit in this box (pixels), never larger than the image (asked for as ``w,h``: an
#: Image API 3.0 ``!w,h`` larger than the image would be a 400 without ``^``).
THUMBNAIL_BOX = 256
IMAGE_SERVICE_TYPE = "ImageService3"
IMAGE_SERVICE_PROFILE = "level2"
#: Data set ids are positive 64-bit integers, as the manifest's and the RMA's.
_ID = re.compile(r"[0-9]{1,19}")
_LAYER_ORDER = {kind.value: index for index, kind in enumerate(LayerKind)}
_LAYER_LABELS = {
    LayerKind.PRIMARY.value: "Image",
    LayerKind.EXPRESSION.value: "Expression",
    LayerKind.PROJECTION.value: "Projection",
    LayerKind.TUMOR_FEATURE_ANNOTATION.value: "Tumor feature annotation",
    LayerKind.TUMOR_FEATURE_BOUNDARY.value: "Tumor feature boundary",
}
_DOWNLOADS = {"SectionImage": "section_image_download", "AtlasImage": "atlas_image_download"}


@dataclass(frozen=True, slots=True)
class Links:
    """The URLs of the documents and services, under `base` (scheme, host and root path, no trailing slash)."""

    base: str

    @property
    def collection(self) -> str:
        return f"{self.base}/iiif/presentation/3/collection"

    def manifest(self, data_set_id: int) -> str:
        return f"{self.base}/iiif/presentation/3/manifest/{data_set_id}"

    def canvas(self, data_set_id: int, image_id: int) -> str:
        return f"{self.manifest(data_set_id)}/canvas/{image_id}"

    def image_service(self, identifier: str) -> str:
        return f"{self.base}/iiif/3/{identifier}"

    def record(self, model: str, record_id: int) -> str:
        """The record in the RMA data API."""
        return f"{self.base}/api/v2/data/{model}/{record_id}.json"

    def download(self, model: str, image_id: int) -> str:
        """The whole section from the Allen download service."""
        return f"{self.base}/api/v2/{_DOWNLOADS.get(model, 'image_download')}/{image_id}"


def parse_data_set_id(raw: str) -> int:
    """The data set id of a path segment: decimal digits, 1 to 2^63 - 1; raises `InvalidRequest`."""
    if not _ID.fullmatch(raw) or not 0 < int(raw) < 2**63:
        raise InvalidRequest(f"data set id must be a positive integer below 2^63, got {raw[:40]!r}")
    return int(raw)


def image_identifier(image_id: int, layer: LayerKey) -> str:
    """The Image API identifier of a layer: ``{id}`` (primary), ``{id}~annotation-{atlas}``, ``{id}~{kind}``."""
    if layer.kind == LayerKind.PRIMARY:
        return str(image_id)
    if layer.kind == LayerKind.ANNOTATION:
        return f"{image_id}~annotation-{layer.atlas_id}"
    return f"{image_id}~{layer.kind}"


def data_set_label(model: str, data_set_id: int, name: str | None) -> dict[str, list[str]]:
    return {"none": [name]} if name else {"en": [f"{model} {data_set_id}"]}


def collection(data_sets: Sequence[DataSetSummary], links: Links) -> Any:
    """The Collection of every data set's manifest, in the given order."""
    return Collection(
        id=links.collection,
        label={"en": ["tierserve data sets"]},
        summary={"en": [f"{len(data_sets)} data set{'s' if len(data_sets) != 1 else ''}, one manifest each"]},
        items=[
            ManifestRef(id=links.manifest(ds.id), type="Manifest", label=data_set_label(ds.model, ds.id, ds.name))
            for ds in data_sets
        ],
    )


def manifest(data_set: DataSetRecord, links: Links) -> Any:
    """The Manifest of a data set; raises `NotFound` when it has no image (a manifest needs a canvas)."""
    if not data_set.sections:
        raise NotFound(f"data set {data_set.id} has no images")
    canvases = [_canvas(data_set, section, links) for section in data_set.sections]
    count = len(canvases)
    generated = f"{data_set.model} {data_set.id}: {count} image{'s' if count != 1 else ''}"
    return Manifest(
        id=links.manifest(data_set.id),
        label=data_set_label(data_set.model, data_set.id, data_set.name),
        summary={"none": [data_set.description]} if data_set.description else {"en": [generated]},
        metadata=[_pair(label, value) for label, value in _data_set_fields(data_set)],
        thumbnail=canvases[0].thumbnail,
        seeAlso=[
            {
                "id": links.record(data_set.model, data_set.id),
                "type": "Dataset",
                "format": "application/json",
                "label": {"en": [f"{data_set.model} record (RMA data API)"]},
            }
        ],
        partOf=[{"id": links.collection, "type": "Collection"}],
        items=canvases,
    )


def dumps(document: Any) -> bytes:
    """A manifest or collection as compact JSON-LD (UTF-8), ``@context`` first.

    The same document as prezi3's ``jsonld()``, written by pydantic's serializer (several times faster).
    """
    body: str = document.model_dump_json(by_alias=True, exclude_none=True)
    return f'{{"@context":"{CONTEXT}",{body[1:]}'.encode()


def thumbnail_size(width: int, height: int, box: int = THUMBNAIL_BOX) -> tuple[int, int]:
    """The size ``!box,box`` gives a width x height image: the longer side min(box, side), the other in
    proportion (rounded half up, at least 1)."""
    if width >= height:
        w = min(width, box)
        return w, max(1, (2 * height * w + width) // (2 * width))
    h = min(height, box)
    return max(1, (2 * width * h + height) // (2 * height)), h


def _canvas(data_set: DataSetRecord, section: SectionRecord, links: Links) -> Any:
    canvas_id = links.canvas(data_set.id, section.id)
    layers = _layers(section)
    images = [_image(section, layer, _layer_label(layer, data_set), links) for layer in layers]
    primary = links.image_service(image_identifier(section.id, layers[0]))
    thumb_w, thumb_h = thumbnail_size(section.width, section.height)
    return Canvas(
        id=canvas_id,
        label={"en": [f"Section {section.section_number}"]},
        width=section.width,
        height=section.height,
        metadata=[_pair(label, value) for label, value in _section_fields(section)],
        thumbnail=[
            AnnotationBody(
                id=f"{primary}/full/{thumb_w},{thumb_h}/0/default.jpg",
                type="Image",
                format="image/jpeg",
                width=thumb_w,
                height=thumb_h,
                service=[_service(primary)],
            )
        ],
        rendering=[
            {
                "id": links.download(section.model, section.id),
                "type": "Image",
                "format": "image/jpeg",
                "label": {"en": ["Whole section, full resolution (Allen download service)"]},
            }
        ],
        seeAlso=[
            {
                "id": links.record(section.model, section.id),
                "type": "Dataset",
                "format": "application/json",
                "label": {"en": [f"{section.model} record (RMA data API)"]},
            }
        ],
        items=[
            AnnotationPage(
                id=f"{canvas_id}/page",
                items=[
                    Annotation(
                        id=f"{canvas_id}/page/painting",
                        motivation="painting",
                        body=images[0] if len(images) == 1 else Choice(items=images),
                        target=canvas_id,
                    )
                ],
            )
        ],
    )


def _layers(section: SectionRecord) -> list[LayerKey]:
    """The primary layer first (also when its row is missing), then the others in `LayerKind` order."""
    others = sorted(
        (layer for layer in set(section.layers) if layer.kind != LayerKind.PRIMARY),
        key=lambda layer: (_LAYER_ORDER.get(layer.kind, len(_LAYER_ORDER)), layer.kind, layer.atlas_id or 0),
    )
    return [LayerKey(LayerKind.PRIMARY.value, None), *others]


def _layer_label(layer: LayerKey, data_set: DataSetRecord) -> str:
    if layer.kind == LayerKind.ANNOTATION:
        names = {atlas.id: atlas.name for atlas in data_set.atlases}
        return f"Annotation: {names.get(layer.atlas_id or 0, f'atlas {layer.atlas_id}')}"
    return _LAYER_LABELS.get(layer.kind, layer.kind.replace("_", " ").capitalize())


def _image(section: SectionRecord, layer: LayerKey, label: str, links: Links) -> Any:
    service = links.image_service(image_identifier(section.id, layer))
    return AnnotationBody(
        id=f"{service}/full/max/0/default.jpg",
        type="Image",
        format="image/jpeg",
        width=section.width,
        height=section.height,
        label={"en": [label]},
        service=[_service(service)],
    )


def _service(service_id: str) -> Any:
    return ServiceV3(id=service_id, type=IMAGE_SERVICE_TYPE, profile=IMAGE_SERVICE_PROFILE)


def _pair(label: str, value: str | list[str]) -> Any:
    return KeyValueString(label={"none": [label]}, value={"none": value if isinstance(value, list) else [value]})


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _data_set_fields(data_set: DataSetRecord) -> list[tuple[str, str | list[str]]]:
    """The data set's Allen fields that are set, by their Allen names."""
    fields: list[tuple[str, str | list[str]]] = [("type", data_set.model), ("id", str(data_set.id))]
    if data_set.name:
        fields.append(("name", data_set.name))
    optional: list[tuple[str, object]] = [
        ("failed", data_set.failed),
        ("expression", data_set.expression),
        ("delegate", data_set.delegate),
        ("plane_of_section_id", data_set.plane_of_section_id),
        ("reference_space_id", data_set.reference_space_id),
        ("specimen_id", data_set.specimen_id),
        ("section_thickness", None if data_set.section_thickness is None else f"{data_set.section_thickness:g} µm"),
        ("red_channel", data_set.red_channel),
        ("green_channel", data_set.green_channel),
        ("blue_channel", data_set.blue_channel),
        ("qc_date", data_set.qc_date),
        ("weight", data_set.weight),
    ]
    fields.extend((label, _text(value)) for label, value in optional if value is not None)
    if data_set.equalization is not None:
        channels = zip(("red", "green", "blue"), data_set.equalization, strict=True)
        fields.append(("equalization", ", ".join(f"{name} {lo}-{hi}" for name, (lo, hi) in channels)))
    if data_set.atlases:
        fields.append(
            (
                "atlases",
                [
                    f"{atlas.id} {atlas.name}" + (f" ({atlas.image_type})" if atlas.image_type else "")
                    for atlas in data_set.atlases
                ],
            )
        )
    return fields


def _section_fields(section: SectionRecord) -> list[tuple[str, str | list[str]]]:
    """The image's Allen fields, by their Allen names (`x`, `y` place the section in its scan)."""
    fields: list[tuple[str, object]] = [
        ("type", section.model),
        ("id", section.id),
        ("section_number", section.section_number),
        ("resolution", None if section.resolution is None else f"{section.resolution:g} µm/pixel"),
        ("x", section.x),
        ("y", section.y),
        ("width", section.width),
        ("height", section.height),
        ("image_width", section.image_width),
        ("image_height", section.image_height),
        ("bits_per_component", section.bits_per_component),
        ("number_of_components", section.number_of_components),
        ("failed", section.failed or None),
    ]
    return [(label, _text(value)) for label, value in fields if value is not None]

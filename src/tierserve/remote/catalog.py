"""What a selection (`--data-set`, `--atlas`, `--query`) names at a source, read through its data API.

The queries are those AllenSDK and the Allen web tools send (criteria on ids and associations,
`rma::include` of equalization, atlases and alternate images), so any Allen-compatible server answers
them. Records are kept as the source sent them; only the layers to fetch are worked out here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tierserve.layers import LayerKind
from tierserve.remote.source import SourceClient, SourceError

Record = dict[str, Any]

#: Alternate-image types (tierserve's `kind`, or the Allen `image_type`) that name a layer, lower case.
_LAYER_TYPES = {
    "expression": LayerKind.EXPRESSION,
    "projection": LayerKind.PROJECTION,
    "tumor_feature_annotation": LayerKind.TUMOR_FEATURE_ANNOTATION,
    "tumor_feature_boundary": LayerKind.TUMOR_FEATURE_BOUNDARY,
}


class SelectionError(SourceError):
    """The selection names something the source does not have (an unknown id, a query matching nothing)."""


@dataclass(frozen=True)
class Selection:
    """Section data set ids, atlas ids (their plates), and an RMA criteria string for section data sets."""

    data_sets: tuple[int, ...] = ()
    atlases: tuple[int, ...] = ()
    query: str | None = None

    @property
    def empty(self) -> bool:
        return not (self.data_sets or self.atlases or self.query)


@dataclass(frozen=True)
class Layer:
    """A layer of an image to fetch: its kind and, for an annotation, the atlas it draws."""

    kind: LayerKind
    atlas: int | None = None

    def params(self) -> dict[str, str | int]:
        """The download parameters that ask the source for this layer."""
        if self.kind is LayerKind.ANNOTATION:
            return {"annotation": "true", "atlas": self.atlas or 0}
        return {"view": self.kind.value}

    @property
    def name(self) -> str:
        """A short name for files and messages: ``expression``, ``annotation-1``."""
        return self.kind.value if self.atlas is None else f"{self.kind.value}-{self.atlas}"


@dataclass
class RemoteImage:
    """A SectionImage or AtlasImage record and the layers (besides the primary) it has."""

    model: str
    record: Record
    layers: list[Layer] = field(default_factory=list)

    @property
    def id(self) -> int:
        return int(self.record["id"])

    @property
    def endpoint(self) -> str:
        """The download service path of this image, relative to the server root."""
        name = "section_image_download" if self.model == "SectionImage" else "atlas_image_download"
        return f"api/v2/{name}/{self.id}"


@dataclass
class RemoteDataSet:
    """A SectionDataSet (with its Equalization) or AtlasDataSet (with its Atlas records) and its images."""

    model: str
    record: Record
    images: list[RemoteImage] = field(default_factory=list)
    equalization: Record | None = None
    atlases: list[Record] = field(default_factory=list)

    @property
    def id(self) -> int:
        return int(self.record["id"])


async def resolve(source: SourceClient, selection: Selection) -> list[RemoteDataSet]:
    """The data sets `selection` names at `source`, each with its images in section-number order.

    Raises SelectionError (a SourceError) when a named id does not exist at the source or the query
    matches nothing, SourceError when the source cannot answer.
    """
    data_sets: list[RemoteDataSet] = []
    if selection.data_sets:
        rows = await source.query(_section_data_sets(f"[id$in{_ids(selection.data_sets)}]"))
        _require(selection.data_sets, rows, "SectionDataSet")
        data_sets += [_section_data_set(row) for row in rows]
    if selection.query:
        rows = await source.query(_section_data_sets(selection.query))
        if not rows:
            raise SelectionError(f"no SectionDataSet at {source.base_url} matches {selection.query!r}")
        data_sets += [_section_data_set(row) for row in rows]
    if selection.atlases:
        atlases = await source.query(f"model::Atlas,rma::criteria,[id$in{_ids(selection.atlases)}]")
        _require(selection.atlases, atlases, "Atlas")
        rows = await source.query(
            f"model::AtlasDataSet,rma::criteria,atlases[id$in{_ids(selection.atlases)}],rma::include,atlases"
        )
        data_sets += [RemoteDataSet("AtlasDataSet", _without(row, "atlases"), atlases=row["atlases"]) for row in rows]
    unique = list({(data_set.model, data_set.id): data_set for data_set in data_sets}.values())
    for data_set in unique:
        data_set.images = await _images(source, data_set)
    return unique


def _section_data_sets(criteria: str) -> str:
    return f"model::SectionDataSet,rma::criteria,{criteria},rma::include,equalization"


def _section_data_set(row: Record) -> RemoteDataSet:
    return RemoteDataSet("SectionDataSet", _without(row, "equalization"), equalization=row.get("equalization"))


async def _images(source: SourceClient, data_set: RemoteDataSet) -> list[RemoteImage]:
    model = "SectionImage" if data_set.model == "SectionDataSet" else "AtlasImage"
    rows = await source.query(
        f"model::{model},rma::criteria,[data_set_id$eq{data_set.id}],rma::include,alternate_images"
    )
    images = [RemoteImage(model, _without(row, "alternate_images"), _layers(row, data_set.atlases)) for row in rows]
    return sorted(images, key=lambda image: (image.record.get("section_number", 0), image.id))


def _layers(row: Record, atlases: Sequence[Record]) -> list[Layer]:
    """The layers of an image record: from its alternate images (tierserve names their `kind` and
    `atlas_id`; the Allen API an `image_type`), else from its `expression` and `annotated` flags."""
    layers: list[Layer] = []
    atlas_by_type = {str(atlas.get("image_type", "")).lower(): int(atlas["id"]) for atlas in atlases}
    for alternate in row.get("alternate_images") or []:
        kind = str(alternate.get("kind") or alternate.get("image_type") or "").lower()
        if kind in _LAYER_TYPES:
            layers.append(Layer(_LAYER_TYPES[kind]))
        elif alternate.get("atlas_id") is not None:
            layers.append(Layer(LayerKind.ANNOTATION, int(alternate["atlas_id"])))
        elif kind in atlas_by_type:
            layers.append(Layer(LayerKind.ANNOTATION, atlas_by_type[kind]))
    if row.get("expression") and not any(layer.kind is LayerKind.EXPRESSION for layer in layers):
        layers.append(Layer(LayerKind.EXPRESSION))
    if row.get("annotated") and not any(layer.kind is LayerKind.ANNOTATION for layer in layers):
        layers += [Layer(LayerKind.ANNOTATION, int(atlas["id"])) for atlas in atlases]
    return list(dict.fromkeys(layers))


def _require(wanted: Iterable[int], rows: Sequence[Record], model: str) -> None:
    missing = sorted(set(wanted) - {int(row["id"]) for row in rows})
    if missing:
        raise SelectionError(f"no {model} with id {', '.join(map(str, missing))} at the source")


def _ids(ids: Iterable[int]) -> str:
    return ",".join(str(i) for i in ids)


def _without(row: Record, *keys: str) -> Record:
    return {key: value for key, value in row.items() if key not in keys}

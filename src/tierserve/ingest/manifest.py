"""The ingest manifest (YAML or JSON): data sets, their images, layers and equalization values.

Relative source paths are resolved against the manifest's directory.  `manifest_json_schema()`
is the published JSON Schema (docs/manifest.schema.json).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tierserve.errors import ManifestError
from tierserve.layers import LayerKind

Id = Field(gt=0, lt=2**63, description="Allen-style numeric id; it is the id used in download URLs.")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LayerEntry(_Strict):
    """An extra layer of an image, with the same pixel size as the primary source."""

    kind: Literal[
        LayerKind.EXPRESSION,
        LayerKind.PROJECTION,
        LayerKind.ANNOTATION,
        LayerKind.TUMOR_FEATURE_ANNOTATION,
        LayerKind.TUMOR_FEATURE_BOUNDARY,
    ]
    source: str = Field(description="Image file: TIFF/BigTIFF/OME-TIFF, JPEG, PNG or JPEG 2000.")
    atlas: int | None = Field(default=None, gt=0, description="Atlas id; required for annotation layers.")

    @model_validator(mode="after")
    def _atlas_only_for_annotations(self) -> LayerEntry:
        if (self.kind is LayerKind.ANNOTATION) != (self.atlas is not None):
            raise ValueError("annotation layers need an atlas id, and only they take one")
        return self


class ImageEntry(_Strict):
    """One SectionImage or AtlasImage: a section inside a scanned source image."""

    id: int = Id
    section_number: int = Field(ge=0)
    source: str = Field(description="Primary image file: 8-bit RGB/grey or 16-bit (e.g. 12-bit) samples.")
    resolution: float | None = Field(default=None, gt=0, description="Micrometres per full-resolution pixel.")
    x: int | None = Field(default=None, ge=0, description="Section rectangle inside the source (pixels).")
    y: int | None = Field(default=None, ge=0)
    width: int | None = Field(default=None, gt=0)
    height: int | None = Field(default=None, gt=0)
    bits_per_component: Literal[8, 10, 12, 14, 16] | None = Field(
        default=None, description="Significant bits of 16-bit samples (e.g. 12); default from the file."
    )
    quality: int | None = Field(default=None, ge=1, le=100, description="JPEG quality of 8-bit tiles.")
    failed: bool = False
    layers: list[LayerEntry] = Field(default_factory=list)

    @model_validator(mode="after")
    def _rectangle_all_or_none(self) -> ImageEntry:
        given = [v is not None for v in (self.x, self.y, self.width, self.height)]
        if any(given) and not all(given):
            raise ValueError("give all of x, y, width and height, or none of them")
        keys = [(layer.kind, layer.atlas) for layer in self.layers]
        if len(keys) != len(set(keys)):
            raise ValueError("an image has at most one layer of each kind (per atlas for annotations)")
        return self


class EqualizationEntry(_Strict):
    """Default per-channel display window of a data set's 12/16-bit images (native sample scale)."""

    red_lower: int = Field(ge=0, le=65535)
    red_upper: int = Field(ge=0, le=65535)
    green_lower: int = Field(ge=0, le=65535)
    green_upper: int = Field(ge=0, le=65535)
    blue_lower: int = Field(ge=0, le=65535)
    blue_upper: int = Field(ge=0, le=65535)

    @model_validator(mode="after")
    def _ordered(self) -> EqualizationEntry:
        for colour in ("red", "green", "blue"):
            if getattr(self, f"{colour}_lower") >= getattr(self, f"{colour}_upper"):
                raise ValueError(f"{colour}_lower must be below {colour}_upper")
        return self


class SectionDataSetEntry(_Strict):
    id: int = Id
    name: str | None = None
    description: str | None = None
    failed: bool = False
    expression: bool | None = None
    plane_of_section_id: int | None = None
    reference_space_id: int | None = None
    specimen_id: int | None = None
    section_thickness: float | None = Field(default=None, gt=0)
    storage_directory: str | None = None
    red_channel: str | None = None
    green_channel: str | None = None
    blue_channel: str | None = None
    equalization: EqualizationEntry | None = None
    images: list[ImageEntry] = Field(default_factory=list)


class AtlasEntry(_Strict):
    id: int = Id
    name: str
    description: str | None = None
    image_type: str | None = Field(default=None, description="e.g. 'Atlas - Adult Mouse'.")
    structure_graph_id: int | None = None


class AtlasDataSetEntry(_Strict):
    id: int = Id
    name: str | None = None
    description: str | None = None
    atlases: list[int] = Field(default_factory=list, description="Ids of the atlases drawn on these plates.")
    images: list[ImageEntry] = Field(default_factory=list)


class Manifest(_Strict):
    """A collection to ingest."""

    version: Literal[1] = 1
    quality: int = Field(default=90, ge=1, le=100, description="Default JPEG quality of 8-bit tiles.")
    atlases: list[AtlasEntry] = Field(default_factory=list)
    section_data_sets: list[SectionDataSetEntry] = Field(default_factory=list)
    atlas_data_sets: list[AtlasDataSetEntry] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent_ids(self) -> Manifest:
        data_sets = [d.id for d in self.section_data_sets] + [d.id for d in self.atlas_data_sets]
        _require_unique("data set id", data_sets)
        _require_unique("atlas id", [a.id for a in self.atlases])
        atlases = {a.id for a in self.atlases}
        for data_set in self.atlas_data_sets:
            missing = sorted(set(data_set.atlases) - atlases)
            if missing:
                raise ValueError(f"atlas data set {data_set.id} names undeclared atlases {missing}")
        all_images = [i for d in self.section_data_sets for i in d.images]
        all_images += [i for d in self.atlas_data_sets for i in d.images]
        _require_unique("image id", [image.id for image in all_images])
        for image in all_images:
            for layer in image.layers:
                if layer.atlas is not None and layer.atlas not in atlases:
                    raise ValueError(f"image {image.id}: annotation layer names undeclared atlas {layer.atlas}")
        return self


def _require_unique(what: str, values: list[int]) -> None:
    seen: set[int] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"duplicate {what} {value}")
        seen.add(value)


def load_manifest(path: Path) -> Manifest:
    """Parse and validate a YAML or JSON manifest; raises `ManifestError` with every problem listed."""
    try:
        raw: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"cannot read manifest {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ManifestError(f"manifest {path} is not valid YAML/JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise ManifestError(f"manifest {path} must be a mapping at the top level")
    try:
        return Manifest.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or '(top level)'}: {error['msg']}" for error in exc.errors()
        )
        raise ManifestError(f"manifest {path} is invalid: {problems}") from exc


def manifest_json_schema() -> dict[str, Any]:
    """The JSON Schema of the manifest format."""
    schema = Manifest.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "tierserve ingest manifest"
    return schema

"""The ingest manifest (YAML or JSON): data sets, their images, layers and equalization values.

A source is a path, relative to the manifest's directory, or an object-store URL (`s3://bucket/key`,
`gs://`, `az://`; see `tierserve.ingest.source_access`).  `manifest_json_schema()`
is the published JSON Schema (docs/manifest.schema.json).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator
from pydantic_core import ErrorDetails

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
    source: str = Field(description="Image file (path or s3:// URL): TIFF/BigTIFF/OME-TIFF, JPEG, PNG or JPEG 2000.")
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
    source: str = Field(
        description="Primary image file (path or s3:// URL): 8-bit RGB/grey or 16-bit (e.g. 12-bit) samples."
    )
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
    projection_function: str | None = Field(default=None, max_length=64, description="Allen field, kept as given.")
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
    delegate: bool | None = None
    qc_date: str | None = Field(default=None, max_length=64)
    weight: int | None = None
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
        data = self.model_dump()
        problems = consistency_problems(data)
        if problems:
            raise ValueError("; ".join(_describe(data, loc, message) for loc, message in problems))
        return self


Loc = tuple[str | int, ...]
"""Where a problem is: field names and list indices, as in pydantic's `loc`."""

_INT: TypeAdapter[int] = TypeAdapter(int)
_ENUM_REPR = re.compile(r"<\w+\.\w+: (.+?)>")


def consistency_problems(data: Mapping[str, Any]) -> list[tuple[Loc, str]]:
    """The cross-entry problems of a manifest mapping: duplicate ids and undeclared atlases.

    Works on raw (possibly invalid) data: entries and values that are not what the model expects are
    skipped, since their field errors are reported on their own.
    """
    data_sets = _entries(data, "section_data_sets") + _entries(data, "atlas_data_sets")
    atlases = _entries(data, "atlases")
    images = [((*loc, *sub), image) for loc, data_set in data_sets for sub, image in _entries(data_set, "images")]
    declared = {atlas_id for _, atlas in atlases if (atlas_id := _as_int(atlas.get("id"))) is not None}
    return [
        *_duplicates("data set id", data_sets),
        *_duplicates("atlas id", atlases),
        *_undeclared_atlases(data, declared),
        *_duplicates("image id", images),
        *_undeclared_layer_atlases(images, declared),
    ]


def _entries(data: Mapping[str, Any], key: str) -> list[tuple[Loc, Mapping[str, Any]]]:
    """The mapping elements of the list `data[key]`, with their locations relative to `data`."""
    items = data.get(key)
    if not isinstance(items, list):
        return []
    return [((key, i), item) for i, item in enumerate(items) if isinstance(item, Mapping)]


def _as_int(value: Any) -> int | None:
    """`value` as the model would read an int (pydantic's lax mode), or None if it is not one."""
    try:
        return _INT.validate_python(value)
    except ValidationError:
        return None


def _duplicates(what: str, entries: list[tuple[Loc, Mapping[str, Any]]]) -> list[tuple[Loc, str]]:
    first: dict[int, Loc] = {}
    problems: list[tuple[Loc, str]] = []
    for loc, entry in entries:
        value = _as_int(entry.get("id"))
        if value is None:
            continue
        if value in first:
            problems.append((loc, f"duplicate {what} {value} (also {_path(first[value])})"))
        else:
            first[value] = loc
    return problems


def _undeclared_atlases(data: Mapping[str, Any], declared: set[int]) -> list[tuple[Loc, str]]:
    problems: list[tuple[Loc, str]] = []
    for loc, data_set in _entries(data, "atlas_data_sets"):
        named = data_set.get("atlases")
        ids = [_as_int(value) for value in named] if isinstance(named, list) else []
        missing = sorted({value for value in ids if value is not None} - declared)
        if missing:
            problems.append(((*loc, "atlases"), f"names undeclared atlases {missing}"))
    return problems


def _undeclared_layer_atlases(images: list[tuple[Loc, Mapping[str, Any]]], declared: set[int]) -> list[tuple[Loc, str]]:
    problems: list[tuple[Loc, str]] = []
    for image_loc, image in images:
        for loc, layer in _entries(image, "layers"):
            atlas = _as_int(layer.get("atlas"))
            if atlas is not None and atlas not in declared:
                problems.append(((*image_loc, *loc, "atlas"), f"names undeclared atlas {atlas}"))
    return problems


def _path(loc: Loc) -> str:
    """`loc` written as `section_data_sets[0].images[2]`."""
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc).lstrip(".")


def _location(data: Any, loc: Loc) -> str:
    """`loc` written as `section_data_sets[0].images[2] (id 13).source`: list elements show their id."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            data = data[part] if isinstance(data, list) and 0 <= part < len(data) else None
            entry_id = _as_int(data.get("id")) if isinstance(data, Mapping) else None
            text += f"[{part}]" + (f" (id {entry_id})" if entry_id is not None else "")
        else:
            data = data.get(part) if isinstance(data, Mapping) else None
            text += f".{part}" if text else part
    return text


def _describe(data: Mapping[str, Any], loc: Loc, message: str) -> str:
    return f"{_location(data, loc)}: {message}" if loc else message


def _message(error: ErrorDetails) -> str:
    """Pydantic's error in plain words, with the offending value when it is a short scalar."""
    kind, msg, value = error["type"], error["msg"], error.get("input")
    if kind == "missing":
        return "required"
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "literal_error":
        text = f"must be {_choices(str(error.get('ctx', {}).get('expected', '')))}"
    else:
        text = msg.removeprefix("Value error, ").replace("Input should be ", "must be ", 1)
    shows_value = kind == "literal_error" or msg.startswith("Input should be ")
    if shows_value and isinstance(value, str | int | float | bool) and len(repr(value)) <= 60:
        text += f" (got {value!r})"
    return text


def _choices(expected: str) -> str:
    """Pydantic's `'a', <Kind.B: 'b'> or 'c'` as `one of a, b, c` (or just `a`)."""
    plain = _ENUM_REPR.sub(r"\1", expected).replace("'", "")
    return f"one of {plain.replace(' or ', ', ')}" if " or " in plain else plain


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
        raise ManifestError(_invalid(path, raw, exc.errors())) from exc


def _invalid(path: Path, raw: Mapping[str, Any], errors: list[ErrorDetails]) -> str:
    """The ManifestError message: field errors, then the consistency problems of the raw mapping.

    The top-level (empty `loc`) errors come from `Manifest._consistent_ids` and are replaced by
    `consistency_problems(raw)`, which also runs when field errors kept the model validator from running.
    """
    problems = [(tuple(e["loc"]), _message(e)) for e in errors if e["loc"]] + consistency_problems(raw)
    if not problems:  # cannot happen while the model validator uses consistency_problems; never hide an error
        problems = [((), _message(e)) for e in errors]
    lines = [f"  - {_describe(raw, loc, message)}" for loc, message in problems]
    count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
    return "\n".join([f"manifest {path} is invalid ({count}):", *lines])


def manifest_json_schema() -> dict[str, Any]:
    """The JSON Schema of the manifest format."""
    schema = Manifest.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "tierserve ingest manifest"
    return schema

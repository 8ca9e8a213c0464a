"""The whitelist the data API exposes: models, their fields in response order, and associations.

Each model is a selectable (a table with a type condition, or a derived subquery) plus the fields a
client may filter, order, select and receive.  An association joins a parent key to a child key,
directly or through a link table; the same description drives criteria (EXISTS subqueries) and
includes (batched IN queries).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, FromClause, Table, case, select

from tierserve.db.models import Atlas, DataSet, Equalization, ImageLayer, SubImage, atlas_data_sets_atlases
from tierserve.layers import LayerKind


@dataclass(frozen=True)
class Association:
    """Parent rows relate to child rows where ``child[child_key] == parent[parent_key]``, or, with a
    `link` table (name, parent-side column, child-side column), through a row of that table."""

    target: str
    many: bool
    parent_key: str
    child_key: str
    link: tuple[Table, str, str] | None = None


@dataclass(frozen=True)
class ModelSpec:
    name: str
    table: str
    fields: tuple[str, ...]
    associations: dict[str, Association] = field(default_factory=dict)
    plural: str = ""

    def alias(self) -> tuple[FromClause, list[ColumnElement[bool]]]:
        """A fresh alias of the model's rows and the conditions that restrict the table to them."""
        return SOURCES[self.name]()

    @property
    def element(self) -> str:
        """XML element name of one record, e.g. 'section-image'."""
        return _kebab(self.name)

    @property
    def collection(self) -> str:
        """XML element name of a list of records, e.g. 'section-images'."""
        return self.plural or _kebab(self.name) + "s"


def _kebab(name: str) -> str:
    return "".join("-" + ch.lower() if ch.isupper() and i else ch.lower() for i, ch in enumerate(name))


def _typed(table: Table, type_name: str) -> tuple[FromClause, list[ColumnElement[bool]]]:
    alias = table.alias()
    return alias, [alias.c.type == type_name]


def _plain(table: Table) -> tuple[FromClause, list[ColumnElement[bool]]]:
    return table.alias(), []


def _alternate_images() -> tuple[FromClause, list[ColumnElement[bool]]]:
    """Non-primary layers of an image; an annotation's image_type is its atlas's image_type."""
    layers, atlases = ImageLayer.__table__, Atlas.__table__
    image_type = case((layers.c.kind == LayerKind.ANNOTATION.value, atlases.c.image_type), else_=layers.c.kind)
    query = (
        select(
            layers.c.id,
            layers.c.sub_image_id,
            image_type.label("image_type"),
            layers.c.kind,
            layers.c.atlas_id,
            layers.c.width,
            layers.c.height,
            layers.c.tier_count,
            layers.c.bits_per_component,
            layers.c.number_of_components,
        )
        .select_from(layers.outerjoin(atlases, atlases.c.id == layers.c.atlas_id))
        .where(layers.c.kind != LayerKind.PRIMARY.value)
    )
    return query.subquery(), []


_DATA_SETS: Table = DataSet.__table__  # type: ignore[assignment]
_SUB_IMAGES: Table = SubImage.__table__  # type: ignore[assignment]
_EQUALIZATIONS: Table = Equalization.__table__  # type: ignore[assignment]
_ATLASES: Table = Atlas.__table__  # type: ignore[assignment]

SOURCES = {
    "SectionDataSet": lambda: _typed(_DATA_SETS, "SectionDataSet"),
    "AtlasDataSet": lambda: _typed(_DATA_SETS, "AtlasDataSet"),
    "SectionImage": lambda: _typed(_SUB_IMAGES, "SectionImage"),
    "AtlasImage": lambda: _typed(_SUB_IMAGES, "AtlasImage"),
    "Equalization": lambda: _plain(_EQUALIZATIONS),
    "Atlas": lambda: _plain(_ATLASES),
    "AlternateImage": _alternate_images,
}


def _columns(table: Table, *names: str) -> tuple[str, ...]:
    return tuple(column.name for column in table.columns if column.name not in names)


_SUB_IMAGE_FIELDS = _columns(_SUB_IMAGES, "type")
_SECTION_DATA_SET_FIELDS = _columns(_DATA_SETS, "type")
_ATLAS_LINK = (atlas_data_sets_atlases, "atlas_data_set_id", "atlas_id")
_ALTERNATES = Association("AlternateImage", True, "id", "sub_image_id")

MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            "SectionDataSet",
            "data_sets",
            _SECTION_DATA_SET_FIELDS,
            {
                "section_images": Association("SectionImage", True, "id", "data_set_id"),
                "sub_images": Association("SectionImage", True, "id", "data_set_id"),
                "equalization": Association("Equalization", False, "id", "section_data_set_id"),
            },
        ),
        ModelSpec(
            "SectionImage",
            "sub_images",
            _SUB_IMAGE_FIELDS,
            {
                "section_data_set": Association("SectionDataSet", False, "data_set_id", "id"),
                "data_set": Association("SectionDataSet", False, "data_set_id", "id"),
                "equalization": Association("Equalization", False, "data_set_id", "section_data_set_id"),
                "alternate_images": _ALTERNATES,
            },
        ),
        ModelSpec(
            "AtlasDataSet",
            "data_sets",
            ("id", "name", "description"),
            {
                "atlas_images": Association("AtlasImage", True, "id", "data_set_id"),
                "sub_images": Association("AtlasImage", True, "id", "data_set_id"),
                "atlases": Association("Atlas", True, "id", "id", _ATLAS_LINK),
            },
        ),
        ModelSpec(
            "AtlasImage",
            "sub_images",
            _SUB_IMAGE_FIELDS,
            {
                "atlas_data_set": Association("AtlasDataSet", False, "data_set_id", "id"),
                "data_set": Association("AtlasDataSet", False, "data_set_id", "id"),
                "alternate_images": _ALTERNATES,
            },
        ),
        ModelSpec(
            "Atlas",
            "atlases",
            _columns(_ATLASES),
            {
                "atlas_data_sets": Association(
                    "AtlasDataSet", True, "id", "id", (_ATLAS_LINK[0], "atlas_id", "atlas_data_set_id")
                )
            },
            plural="atlases",
        ),
        ModelSpec(
            "Equalization",
            "equalizations",
            _columns(_EQUALIZATIONS),
            {"section_data_set": Association("SectionDataSet", False, "section_data_set_id", "id")},
        ),
        ModelSpec(
            "AlternateImage",
            "alternate_images",
            (
                "id",
                "sub_image_id",
                "image_type",
                "kind",
                "atlas_id",
                "width",
                "height",
                "tier_count",
                "bits_per_component",
                "number_of_components",
            ),
        ),
    )
}

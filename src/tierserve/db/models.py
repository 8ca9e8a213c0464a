"""Tables after the Allen Brain Atlas data model.

Like the Allen database, SectionDataSet and AtlasDataSet share one table (`data_sets`) and
SectionImage and AtlasImage are rows of `sub_images`, told apart by `type`; so a SubImage id is
unique across both and `image_download/{id}` can take either.  Each image has one row per stored
layer (primary, expression, projection, annotation per atlas, ...) in `image_layers`;
`image_layers.kind` holds a `tierserve.layers.LayerKind` value.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Integer,
    String,
    Table,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


atlas_data_sets_atlases = Table(
    "atlas_data_sets_atlases",
    Base.metadata,
    Column("atlas_data_set_id", BigInteger, ForeignKey("data_sets.id", ondelete="CASCADE"), primary_key=True),
    Column("atlas_id", BigInteger, ForeignKey("atlases.id", ondelete="CASCADE"), primary_key=True),
)


class Atlas(Base):
    __tablename__ = "atlases"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(String(1024))
    image_type: Mapped[str | None] = mapped_column(String(255))
    structure_graph_id: Mapped[int | None] = mapped_column(BigInteger)


class DataSet(Base):
    """A data set; `type` is 'SectionDataSet' or 'AtlasDataSet'."""

    __tablename__ = "data_sets"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    type: Mapped[str] = mapped_column(String(32), index=True)
    name: Mapped[str | None] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(String(1024))

    __mapper_args__ = {"polymorphic_on": "type"}


class SectionDataSet(DataSet):
    failed: Mapped[bool | None] = mapped_column(Boolean, default=False)
    expression: Mapped[bool | None] = mapped_column(Boolean)
    delegate: Mapped[bool | None] = mapped_column(Boolean)
    plane_of_section_id: Mapped[int | None] = mapped_column(BigInteger)
    reference_space_id: Mapped[int | None] = mapped_column(BigInteger)
    specimen_id: Mapped[int | None] = mapped_column(BigInteger)
    section_thickness: Mapped[float | None] = mapped_column(Float)
    storage_directory: Mapped[str | None] = mapped_column(String(1024))
    red_channel: Mapped[str | None] = mapped_column(String(255))
    green_channel: Mapped[str | None] = mapped_column(String(255))
    blue_channel: Mapped[str | None] = mapped_column(String(255))
    qc_date: Mapped[str | None] = mapped_column(String(64))
    weight: Mapped[int | None] = mapped_column(Integer)

    section_images: Mapped[list[SectionImage]] = relationship(
        back_populates="section_data_set", order_by="SubImage.section_number"
    )
    equalization: Mapped[Equalization | None] = relationship(
        back_populates="section_data_set", cascade="all, delete-orphan"
    )

    __mapper_args__ = {"polymorphic_identity": "SectionDataSet"}


class AtlasDataSet(DataSet):
    atlases: Mapped[list[Atlas]] = relationship(secondary=atlas_data_sets_atlases)
    atlas_images: Mapped[list[AtlasImage]] = relationship(
        back_populates="atlas_data_set", order_by="SubImage.section_number"
    )

    __mapper_args__ = {"polymorphic_identity": "AtlasDataSet"}


class Equalization(Base):
    """Default display range of a section data set's 12/16-bit images, per channel (native scale)."""

    __tablename__ = "equalizations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    section_data_set_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("data_sets.id", ondelete="CASCADE"), unique=True
    )
    red_lower: Mapped[int] = mapped_column(Integer)
    red_upper: Mapped[int] = mapped_column(Integer)
    green_lower: Mapped[int] = mapped_column(Integer)
    green_upper: Mapped[int] = mapped_column(Integer)
    blue_lower: Mapped[int] = mapped_column(Integer)
    blue_upper: Mapped[int] = mapped_column(Integer)

    section_data_set: Mapped[SectionDataSet] = relationship(back_populates="equalization")


class SubImage(Base):
    """A section inside a scanned image: the rectangle (x, y, width, height) of an
    image_width x image_height file, in full-resolution pixels; `type` is 'SectionImage' or 'AtlasImage'."""

    __tablename__ = "sub_images"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    type: Mapped[str] = mapped_column(String(32), index=True)
    data_set_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("data_sets.id"), index=True)
    section_number: Mapped[int] = mapped_column(Integer)
    x: Mapped[int] = mapped_column(Integer)
    y: Mapped[int] = mapped_column(Integer)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    image_width: Mapped[int] = mapped_column(Integer)
    image_height: Mapped[int] = mapped_column(Integer)
    tier_count: Mapped[int] = mapped_column(Integer)
    resolution: Mapped[float | None] = mapped_column(Float)
    bits_per_component: Mapped[int] = mapped_column(Integer)
    number_of_components: Mapped[int] = mapped_column(Integer)
    path: Mapped[str] = mapped_column(String(1024))
    image_type: Mapped[str] = mapped_column(String(64), default="Primary")
    annotated: Mapped[bool] = mapped_column(Boolean, default=False)
    failed: Mapped[bool] = mapped_column(Boolean, default=False)
    expression: Mapped[bool | None] = mapped_column(Boolean)
    expression_path: Mapped[str | None] = mapped_column(String(1024))
    projection_function: Mapped[str | None] = mapped_column(String(64))

    layers: Mapped[list[ImageLayer]] = relationship(
        back_populates="sub_image", cascade="all, delete-orphan", order_by="ImageLayer.id"
    )

    __mapper_args__ = {"polymorphic_on": "type"}


class SectionImage(SubImage):
    section_data_set: Mapped[SectionDataSet] = relationship(
        back_populates="section_images", foreign_keys=[SubImage.data_set_id]
    )

    __mapper_args__ = {"polymorphic_identity": "SectionImage"}


class AtlasImage(SubImage):
    atlas_data_set: Mapped[AtlasDataSet] = relationship(
        back_populates="atlas_images", foreign_keys=[SubImage.data_set_id]
    )

    __mapper_args__ = {"polymorphic_identity": "AtlasImage"}


class ImageLayer(Base):
    """One stored pyramid of an image: its kind, the atlas it annotates (annotations only), its store key."""

    __tablename__ = "image_layers"
    __table_args__ = (UniqueConstraint("sub_image_id", "kind", "atlas_id", name="uq_image_layer"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sub_image_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("sub_images.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    atlas_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("atlases.id"))
    path: Mapped[str] = mapped_column(String(1024))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    tier_count: Mapped[int] = mapped_column(Integer)
    bits_per_component: Mapped[int] = mapped_column(Integer)
    number_of_components: Mapped[int] = mapped_column(Integer)
    byte_size: Mapped[int] = mapped_column(BigInteger)
    #: The stored file's version when ingest published it (the object's ETag on an object store).
    version: Mapped[str] = mapped_column(String(255), default="", server_default="")

    sub_image: Mapped[SubImage] = relationship(back_populates="layers")

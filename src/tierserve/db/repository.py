"""Read helpers that turn rows into plain, immutable records for the image pipeline."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from sqlalchemy import exists, select
from sqlalchemy.orm import Session, selectinload

from tierserve.core.tiers import Box
from tierserve.core.windowing import ChannelWindow
from tierserve.db.database import Database
from tierserve.db.models import AtlasDataSet, DataSet, Equalization, SectionDataSet, SubImage
from tierserve.errors import ImageNotFound
from tierserve.storage import ObjectInfo


@dataclass(frozen=True, slots=True)
class LayerRecord:
    """One stored pyramid of an image: `file` is its store key with the size and version ingest recorded."""

    kind: str
    atlas_id: int | None
    file: ObjectInfo
    bits_per_component: int
    number_of_components: int


@dataclass(frozen=True, slots=True)
class ImageRecord:
    """What serving one image needs: geometry, layers and the data set's equalization."""

    id: int
    model: str
    section: Box
    image_width: int
    image_height: int
    tier_count: int
    layers: tuple[LayerRecord, ...]
    equalization: ChannelWindow | None


def load_image(session: Session, image_id: int, model: str | None = None) -> ImageRecord:
    """The SubImage `image_id`, restricted to `model` ('SectionImage' or 'AtlasImage') when given.

    Raises `ImageNotFound` with a message naming the model and id.
    """
    return _of_model(_fetch(session, image_id), image_id, model)


def _of_model(record: ImageRecord | None, image_id: int, model: str | None) -> ImageRecord:
    if record is None or (model is not None and record.model != model):
        wanted = model or "SubImage"
        hint = f"; that id belongs to the {record.model} model: use image_download" if record is not None else ""
        raise ImageNotFound(f"no {wanted} with id {image_id}{hint}")
    return record


class ImageRecords:
    """`load_image` with a per-process memory of recently served images.

    Ingested images never change under their id (re-ingesting an id is skipped), so a record may be
    reused for `max_age` seconds, which also bounds how long a deleted row stays visible. Unknown ids
    are not remembered: an image ingested a moment ago is served at once. At most `size` records are
    kept (least recently used go first). Thread-safe.
    """

    def __init__(self, database: Database, max_age: float, size: int = 4096) -> None:
        self._database = database
        self._max_age = max_age
        self._size = size
        self._records: OrderedDict[int, tuple[float, ImageRecord]] = OrderedDict()
        self._lock = threading.Lock()

    def remembered(self, image_id: int, model: str | None = None) -> ImageRecord | None:
        """The record if it is remembered and fresh, else None; never queries (safe on an event loop).
        Raises `ImageNotFound` when the remembered image is of another model."""
        with self._lock:
            cached = self._records.get(image_id)
            if cached is None or time.monotonic() - cached[0] >= self._max_age:
                return None
            self._records.move_to_end(image_id)
        return _of_model(cached[1], image_id, model)

    def get(self, image_id: int, model: str | None = None) -> ImageRecord:
        """Like `load_image`; raises `ImageNotFound`."""
        record = self.remembered(image_id, model)
        if record is not None:
            return record
        now = time.monotonic()
        with self._database.session() as session:
            record = _fetch(session, image_id)
        if record is not None and self._max_age > 0:
            with self._lock:
                self._records[image_id] = (now, record)
                self._records.move_to_end(image_id)
                while len(self._records) > self._size:
                    self._records.popitem(last=False)
        return _of_model(record, image_id, model)


def _fetch(session: Session, image_id: int) -> ImageRecord | None:
    statement = select(SubImage).where(SubImage.id == image_id).options(selectinload(SubImage.layers))
    row = session.scalars(statement).one_or_none()
    if row is None:
        return None
    equalization = session.scalars(
        select(Equalization).where(Equalization.section_data_set_id == row.data_set_id)
    ).one_or_none()
    return ImageRecord(
        id=row.id,
        model=row.type,
        section=Box(row.x, row.y, row.width, row.height),
        image_width=row.image_width,
        image_height=row.image_height,
        tier_count=row.tier_count,
        layers=tuple(
            LayerRecord(
                kind=layer.kind,
                atlas_id=layer.atlas_id,
                file=ObjectInfo(layer.path, layer.byte_size, layer.version),
                bits_per_component=layer.bits_per_component,
                number_of_components=layer.number_of_components,
            )
            for layer in row.layers
        ),
        equalization=None if equalization is None else _window_of(equalization),
    )


def _window_of(equalization: Equalization) -> ChannelWindow:
    e = equalization
    return ChannelWindow(((e.red_lower, e.red_upper), (e.green_lower, e.green_upper), (e.blue_lower, e.blue_upper)))


# Data sets as the IIIF Presentation documents list them (tierserve.iiif.presentation).


@dataclass(frozen=True, slots=True)
class AtlasRecord:
    id: int
    name: str
    image_type: str | None


@dataclass(frozen=True, slots=True)
class LayerKey:
    """Which stored layer: its `tierserve.layers.LayerKind` value and, for annotations, the atlas."""

    kind: str
    atlas_id: int | None


@dataclass(frozen=True, slots=True)
class SectionRecord:
    """One image of a data set: the section rectangle (x, y, width, height) of an image_width x
    image_height scan, in full-resolution pixels, and its stored layers (the primary one included)."""

    id: int
    model: str
    section_number: int
    x: int
    y: int
    width: int
    height: int
    image_width: int
    image_height: int
    resolution: float | None
    bits_per_component: int
    number_of_components: int
    failed: bool
    layers: tuple[LayerKey, ...]


@dataclass(frozen=True, slots=True)
class DataSetSummary:
    id: int
    model: str
    name: str | None


@dataclass(frozen=True, slots=True)
class DataSetRecord:
    """A SectionDataSet or AtlasDataSet (`model`) with its images in section-number order.

    Fields of the other model are None; `equalization` holds the (lower, upper) pairs of red, green and
    blue as stored (not checked: a bad row is shown, not refused); `atlases` are an AtlasDataSet's.
    """

    id: int
    model: str
    name: str | None
    description: str | None
    failed: bool | None
    expression: bool | None
    delegate: bool | None
    plane_of_section_id: int | None
    reference_space_id: int | None
    specimen_id: int | None
    section_thickness: float | None
    red_channel: str | None
    green_channel: str | None
    blue_channel: str | None
    qc_date: str | None
    weight: int | None
    equalization: tuple[tuple[int, int], ...] | None
    atlases: tuple[AtlasRecord, ...]
    sections: tuple[SectionRecord, ...]


def list_data_sets(session: Session) -> tuple[DataSetSummary, ...]:
    """Every data set that has at least one image, by id."""
    has_images = exists().where(SubImage.data_set_id == DataSet.id)
    rows = session.execute(select(DataSet.id, DataSet.type, DataSet.name).where(has_images).order_by(DataSet.id))
    return tuple(DataSetSummary(id=row.id, model=row.type, name=row.name) for row in rows)


def load_data_set(session: Session, data_set_id: int) -> DataSetRecord | None:
    """The data set `data_set_id` with its images ordered by section number (then id), or None."""
    row = session.get(DataSet, data_set_id)
    if row is None:
        return None
    images = session.scalars(
        select(SubImage)
        .where(SubImage.data_set_id == data_set_id)
        .options(selectinload(SubImage.layers))
        .order_by(SubImage.section_number, SubImage.id)
    ).all()
    section = row if isinstance(row, SectionDataSet) else None
    equalization = section.equalization if section is not None else None
    atlases = sorted(row.atlases, key=lambda atlas: atlas.id) if isinstance(row, AtlasDataSet) else []
    return DataSetRecord(
        id=row.id,
        model=row.type,
        name=row.name,
        description=row.description,
        failed=section.failed if section else None,
        expression=section.expression if section else None,
        delegate=section.delegate if section else None,
        plane_of_section_id=section.plane_of_section_id if section else None,
        reference_space_id=section.reference_space_id if section else None,
        specimen_id=section.specimen_id if section else None,
        section_thickness=section.section_thickness if section else None,
        red_channel=section.red_channel if section else None,
        green_channel=section.green_channel if section else None,
        blue_channel=section.blue_channel if section else None,
        qc_date=section.qc_date if section else None,
        weight=section.weight if section else None,
        equalization=None if equalization is None else _pairs_of(equalization),
        atlases=tuple(AtlasRecord(atlas.id, atlas.name, atlas.image_type) for atlas in atlases),
        sections=tuple(_section_of(image) for image in images),
    )


def _pairs_of(e: Equalization) -> tuple[tuple[int, int], ...]:
    return ((e.red_lower, e.red_upper), (e.green_lower, e.green_upper), (e.blue_lower, e.blue_upper))


def _section_of(image: SubImage) -> SectionRecord:
    return SectionRecord(
        id=image.id,
        model=image.type,
        section_number=image.section_number,
        x=image.x,
        y=image.y,
        width=image.width,
        height=image.height,
        image_width=image.image_width,
        image_height=image.image_height,
        resolution=image.resolution,
        bits_per_component=image.bits_per_component,
        number_of_components=image.number_of_components,
        failed=image.failed,
        layers=tuple(LayerKey(layer.kind, layer.atlas_id) for layer in image.layers),
    )

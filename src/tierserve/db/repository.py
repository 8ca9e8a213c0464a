"""Read helpers that turn rows into plain, immutable records for the image pipeline."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from tierserve.core.tiers import Box
from tierserve.core.windowing import ChannelWindow
from tierserve.db.database import Database
from tierserve.db.models import Equalization, SubImage
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

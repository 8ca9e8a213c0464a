"""Read helpers that turn rows into plain, immutable records for the image pipeline."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from tierserve.core.tiers import Box
from tierserve.core.windowing import ChannelWindow
from tierserve.db.models import Equalization, SubImage
from tierserve.errors import ImageNotFound


@dataclass(frozen=True, slots=True)
class LayerRecord:
    """One stored pyramid of an image."""

    kind: str
    atlas_id: int | None
    path: str
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
    statement = select(SubImage).where(SubImage.id == image_id).options(selectinload(SubImage.layers))
    row = session.scalars(statement).one_or_none()
    if row is None or (model is not None and row.type != model):
        wanted = model or "SubImage"
        hint = f"; that id belongs to the {row.type} model: use image_download" if row is not None else ""
        raise ImageNotFound(f"no {wanted} with id {image_id}{hint}")
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
                path=layer.path,
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

"""Image layers: which stored pyramid a request wants, and finding it among an image's layers."""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Protocol, TypeVar

from tierserve.errors import LayerNotFound


class LayerKind(StrEnum):
    """What a stored layer of an image holds; the values are the Allen `view` names."""

    PRIMARY = "primary"
    EXPRESSION = "expression"
    PROJECTION = "projection"
    ANNOTATION = "annotation"
    TUMOR_FEATURE_ANNOTATION = "tumor_feature_annotation"
    TUMOR_FEATURE_BOUNDARY = "tumor_feature_boundary"


class Layer(Protocol):
    @property
    def kind(self) -> str: ...
    @property
    def atlas_id(self) -> int | None: ...


L = TypeVar("L", bound=Layer)


def select_layer(image_id: int, layers: Sequence[L], kind: LayerKind, atlas: int | None) -> L:
    """The layer of `kind`; for annotations, the one of `atlas`, or of the lowest atlas id if None.

    Raises `LayerNotFound` naming the image and the missing layer.
    """
    candidates = [layer for layer in layers if layer.kind == kind.value]
    if not candidates:
        raise LayerNotFound(f"image {image_id} has no {kind.value} layer")
    if kind is not LayerKind.ANNOTATION:
        return candidates[0]
    candidates.sort(key=lambda layer: layer.atlas_id or 0)
    if atlas is None:
        return candidates[0]
    for layer in candidates:
        if layer.atlas_id == atlas:
            return layer
    available = ", ".join(str(layer.atlas_id) for layer in candidates)
    raise LayerNotFound(f"image {image_id} has no annotation layer for atlas {atlas} (it has: {available})")

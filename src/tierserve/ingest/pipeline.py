"""Ingesting a manifest: data set rows first, then each image atomically.

Per image: every layer is written as a pyramid under a scratch name and renamed into the store;
only when all layers are in place are the image's rows committed, in one transaction.  A crash
before that commit leaves files that no row points to (invisible, overwritten by the re-run); a bad
source fails its own image with a message naming the entry, and the rest of the manifest goes on.
Images whose id is already in the database are skipped, so re-running a manifest completes it.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import pyvips
from sqlalchemy.orm import Session

from tierserve.core.tiers import level_count
from tierserve.core.vips_errors import is_read_failure, vips_reason
from tierserve.db.database import Database
from tierserve.db.models import (
    Atlas,
    AtlasDataSet,
    AtlasImage,
    Equalization,
    ImageLayer,
    SectionDataSet,
    SectionImage,
    SubImage,
)
from tierserve.errors import IngestError
from tierserve.ingest.manifest import AtlasDataSetEntry, ImageEntry, Manifest, SectionDataSetEntry
from tierserve.ingest.pyramid_writer import tiles_in_pyramid, write_pyramid
from tierserve.ingest.sources import open_source, sample_bits
from tierserve.layers import LayerKind
from tierserve.storage import Store

log = logging.getLogger(__name__)


class IngestObserver(Protocol):
    """Receives progress; the CLI draws progress bars with it, tests inject faults with it."""

    def image_started(self, entry: str, tiles: int) -> None: ...
    def tiles_written(self, count: int) -> None: ...
    def layer_published(self, entry: str, key: str) -> None: ...
    def before_commit(self, entry: str) -> None: ...
    def image_finished(self, entry: str, outcome: str) -> None: ...


class SilentObserver:
    """An observer that ignores everything."""

    def image_started(self, entry: str, tiles: int) -> None: ...
    def tiles_written(self, count: int) -> None: ...
    def layer_published(self, entry: str, key: str) -> None: ...
    def before_commit(self, entry: str) -> None: ...
    def image_finished(self, entry: str, outcome: str) -> None: ...


@dataclass
class IngestReport:
    ingested: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    #: (entry, message) of images ingested with something worth a look, e.g. a disputed resolution.
    warnings: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


@dataclass(frozen=True, slots=True)
class _Job:
    """One image entry with what is needed to ingest it."""

    entry: ImageEntry
    name: str
    model: type[SectionImage] | type[AtlasImage]
    data_set_id: int


@dataclass(frozen=True, slots=True)
class _Source:
    """An opened layer source; `label` is its path as the manifest writes it."""

    kind: LayerKind
    atlas: int | None
    image: pyvips.Image
    label: str
    resolution_um: float | None = None


class Ingestor:
    """Ingests manifests into one database and one store."""

    def __init__(
        self,
        database: Database,
        store: Store,
        observer: IngestObserver | None = None,
        roots: Sequence[Path] = (),
    ) -> None:
        self.database = database
        self.store = store
        self.observer: IngestObserver = observer or SilentObserver()
        self.roots = tuple(roots)

    def run(self, manifest: Manifest, base_dir: Path) -> IngestReport:
        """Ingest `manifest`, resolving relative source paths against `base_dir`.

        Sources must resolve (symbolic links followed) inside `base_dir` or one of the `roots`.
        """
        removed = self.store.clean_scratch()
        if removed:
            log.info("removed %d scratch files left by an interrupted ingest", removed)
        with self.database.session() as session, session.begin():
            _upsert_collections(session, manifest)
        report = IngestReport()
        for job in _jobs(manifest):
            self._ingest_one(job, manifest.quality, base_dir, report)
        return report

    def _ingest_one(self, job: _Job, default_quality: int, base_dir: Path, report: IngestReport) -> None:
        with self.database.session() as session:
            existing = session.get(SubImage, job.entry.id)
        if existing is not None:
            if existing.type != job.model.__name__ or existing.data_set_id != job.data_set_id:
                message = f"id {job.entry.id} is already used by {existing.type} of data set {existing.data_set_id}"
                report.failed.append((job.name, message))
                self.observer.image_finished(job.name, "failed")
                return
            report.skipped.append(job.entry.id)
            self.observer.image_finished(job.name, "skipped")
            return
        try:
            with tempfile.TemporaryDirectory(dir=self.store.scratch_dir(), prefix="sources-") as scratch:
                row = self._write_image(job, job.entry.quality or default_quality, base_dir, Path(scratch), report)
        except (IngestError, pyvips.Error, OSError) as exc:
            report.failed.append((job.name, _problem(exc)))
            self.observer.image_finished(job.name, "failed")
            return
        self.observer.before_commit(job.name)
        with self.database.session() as session, session.begin():
            session.add(row)
        report.ingested.append(job.entry.id)
        self.observer.image_finished(job.name, "ingested")

    def _write_image(
        self, job: _Job, quality: int, base_dir: Path, scratch: Path, report: IngestReport
    ) -> SectionImage | AtlasImage:
        """Write every layer of `job` into the store; the image's row, not yet committed."""
        entry = job.entry
        sources = _open_sources(entry, base_dir, (base_dir, *self.roots), scratch)
        primary = sources[0].image
        section = _section_rectangle(entry, primary)
        bits = _bits_per_component(entry, primary)
        resolution = _resolution(entry.resolution, sources[0].resolution_um)
        if resolution.warning:
            report.warnings.append((job.name, resolution.warning))
        self.observer.image_started(job.name, tiles_in_pyramid(primary.width, primary.height) * len(sources))
        folder = f"{job.model.__tablename__}/{entry.id}"
        layers = [
            self._write_layer(source, f"{folder}/{_layer_file_name(source)}", quality, resolution.um, job.name)
            for source in sources
        ]
        layers[0].bits_per_component = bits
        return job.model(
            id=entry.id,
            data_set_id=job.data_set_id,
            section_number=entry.section_number,
            x=section[0],
            y=section[1],
            width=section[2],
            height=section[3],
            image_width=primary.width,
            image_height=primary.height,
            tier_count=level_count(primary.width, primary.height),
            resolution=resolution.um,
            bits_per_component=bits,
            number_of_components=primary.bands,
            path=layers[0].path,
            image_type="Primary",
            annotated=any(layer.kind == LayerKind.ANNOTATION for layer in layers),
            failed=entry.failed,
            expression=any(layer.kind == LayerKind.EXPRESSION for layer in layers) or None,
            expression_path=next((la.path for la in layers if la.kind == LayerKind.EXPRESSION), None),
            layers=layers,
        )

    def _write_layer(
        self, source: _Source, key: str, quality: int, resolution_um: float | None, name: str
    ) -> ImageLayer:
        """Write one layer's pyramid at `key`; a libvips failure names the source and what was wrong."""
        try:
            with self.store.publish(key) as scratch_path:
                info = write_pyramid(
                    source.image,
                    scratch_path,
                    self.store.scratch_dir(),
                    quality=quality,
                    resolution_um=resolution_um,
                    on_tiles=self.observer.tiles_written,
                )
        except pyvips.Error as exc:
            if is_read_failure(exc):
                raise IngestError(f"source {source.label} is damaged: {vips_reason(exc)}") from exc
            raise IngestError(f"writing the pyramid of {source.label} failed: {vips_reason(exc)}") from exc
        self.observer.layer_published(name, key)
        return ImageLayer(
            kind=source.kind.value,
            atlas_id=source.atlas,
            path=key,
            width=info.width,
            height=info.height,
            tier_count=info.levels,
            bits_per_component=info.sample_bits,
            number_of_components=info.bands,
            byte_size=info.byte_size,
        )


def _jobs(manifest: Manifest) -> list[_Job]:
    jobs: list[_Job] = []
    groups: Sequence[tuple[str, Sequence[SectionDataSetEntry | AtlasDataSetEntry], type[SubImage]]] = (
        ("section_data_sets", manifest.section_data_sets, SectionImage),
        ("atlas_data_sets", manifest.atlas_data_sets, AtlasImage),
    )
    for group, data_sets, model in groups:
        for i, data_set in enumerate(data_sets):
            for j, image in enumerate(data_set.images):
                name = f"{group}[{i}].images[{j}] (id {image.id})"
                jobs.append(_Job(image, name, model, data_set.id))  # type: ignore[arg-type]
    return jobs


def allowed_source(source: str, base_dir: Path, roots: Sequence[Path]) -> Path:
    """The real path of `source` (relative to `base_dir`), if it lies inside one of `roots`."""
    path = (base_dir / source).resolve()
    if not any(path.is_relative_to(root.resolve()) for root in roots):
        allowed = ", ".join(str(root.resolve()) for root in roots)
        raise IngestError(
            f"source {source} resolves to {path}, outside the allowed folders ({allowed}); "
            "add its folder to TIERSERVE_INGEST_ROOTS"
        )
    return path


def _open_sources(entry: ImageEntry, base_dir: Path, roots: Sequence[Path], scratch: Path) -> list[_Source]:
    """Open the primary and every layer source; layers must match the primary's pixel size."""
    opened = open_source(allowed_source(entry.source, base_dir, roots), entry.source, scratch)
    primary = _Source(LayerKind.PRIMARY, None, opened.image, entry.source, opened.resolution_um)
    sources = [primary]
    for layer in entry.layers:
        image = open_source(allowed_source(layer.source, base_dir, roots), layer.source, scratch).image
        if (image.width, image.height) != (primary.image.width, primary.image.height):
            raise IngestError(
                f"{layer.kind.value} layer {layer.source} is {image.width}x{image.height}, "
                f"the primary image is {primary.image.width}x{primary.image.height}"
            )
        sources.append(_Source(layer.kind, layer.atlas, image, layer.source))
    return sources


def _section_rectangle(entry: ImageEntry, primary: pyvips.Image) -> tuple[int, int, int, int]:
    if entry.x is None or entry.y is None or entry.width is None or entry.height is None:
        return 0, 0, primary.width, primary.height
    if entry.x + entry.width > primary.width or entry.y + entry.height > primary.height:
        raise IngestError(
            f"section rectangle x={entry.x} y={entry.y} width={entry.width} height={entry.height} "
            f"does not fit the {primary.width}x{primary.height} source"
        )
    return entry.x, entry.y, entry.width, entry.height


def _bits_per_component(entry: ImageEntry, primary: pyvips.Image) -> int:
    stored = sample_bits(primary)
    declared = entry.bits_per_component or stored
    if (stored == 8) != (declared == 8):
        raise IngestError(f"bits_per_component={declared} does not fit {stored}-bit source samples")
    return declared


@dataclass(frozen=True, slots=True)
class _Resolution:
    um: float | None
    warning: str | None = None


def _resolution(declared: float | None, stated: float | None) -> _Resolution:
    """The manifest's µm per pixel, else the one the source file states; a manifest value more than
    1% off the file's wins with a warning."""
    if declared is None:
        return _Resolution(stated)
    if stated is not None and abs(declared - stated) > 0.01 * stated:
        return _Resolution(
            declared, f"resolution {declared:g} µm from the manifest is used; the source states {stated:.6g} µm"
        )
    return _Resolution(declared)


def _problem(exc: IngestError | pyvips.Error | OSError) -> str:
    if isinstance(exc, IngestError):
        return exc.message
    if isinstance(exc, pyvips.Error):
        return vips_reason(exc)
    return f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc)


def _layer_file_name(source: _Source) -> str:
    if source.kind is LayerKind.ANNOTATION:
        return f"annotation-atlas-{source.atlas}.ome.tif"
    return f"{source.kind.value}.ome.tif"


def _upsert_collections(session: Session, manifest: Manifest) -> None:
    """Insert or update atlases and data sets (with equalization) before any image."""
    for atlas in manifest.atlases:
        session.merge(Atlas(**atlas.model_dump()))
    session.flush()
    for sds in manifest.section_data_sets:
        fields = sds.model_dump(exclude={"images", "equalization"})
        data_set = session.merge(SectionDataSet(**fields))
        if sds.equalization is None:
            data_set.equalization = None
        elif data_set.equalization is None:
            data_set.equalization = Equalization(**sds.equalization.model_dump())
        else:
            for key, value in sds.equalization.model_dump().items():
                setattr(data_set.equalization, key, value)
    for ads in manifest.atlas_data_sets:
        atlas_data_set = session.merge(AtlasDataSet(**ads.model_dump(exclude={"images", "atlases"})))
        atlas_data_set.atlases = [session.get_one(Atlas, atlas_id) for atlas_id in ads.atlases]

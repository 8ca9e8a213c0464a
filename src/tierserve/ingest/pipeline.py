"""Ingesting a manifest: data set rows first, then each image atomically.

The driver (`Ingestor`) plans: it upserts the data sets and picks the entries not yet in the
database. A `Builder` builds those images (`ingest.build`: pyramids written and published under keys
of their attempt), one after another in this process (`LocalBuilder`) or in parallel on a Dask cluster
(`ingest.distributed`). The driver alone commits: an image's SubImage and layer rows in one
transaction once every layer is published, so there is one database writer and SQLite works too.
A crash before a commit leaves published files no row points to (invisible; `tierserve gc` lists
them); a bad source fails its own image with a message naming the source, and the rest goes on.
Images whose id is already in the database are skipped, so re-running a manifest completes it.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from sqlalchemy.orm import Session

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
from tierserve.ingest.build import (
    BUILD_ERRORS,
    BuiltImage,
    ImageJob,
    build_image,
    failure_message,
)
from tierserve.ingest.manifest import AtlasDataSetEntry, Manifest, SectionDataSetEntry
from tierserve.ingest.source_access import SourceAccess
from tierserve.layers import LayerKind
from tierserve.storage import StoreWriter, run_scratch


class IngestObserver(Protocol):
    """Receives progress (the CLI draws it): an entry's tile count, its tiles as they are written, outcomes.

    Entries may be under way side by side (on a cluster), so every event names its entry.
    """

    def image_started(self, entry: str, tiles: int) -> None: ...
    def tiles_written(self, entry: str, count: int) -> None: ...
    def image_finished(self, entry: str, outcome: str) -> None: ...


class SilentObserver:
    """An observer that ignores everything."""

    def image_started(self, entry: str, tiles: int) -> None: ...
    def tiles_written(self, entry: str, count: int) -> None: ...
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


#: A job's outcome: the built image, or the message saying why it failed.
Outcome = BuiltImage | str


class Builder(Protocol):
    """Builds images; results come back as each finishes, in any order."""

    def build(
        self, jobs: Sequence[ImageJob], access: SourceAccess, observer: IngestObserver
    ) -> Iterator[tuple[ImageJob, Outcome]]: ...


class LocalBuilder:
    """Builds images one after another in this process, with this run's own scratch folder."""

    def __init__(self, store: StoreWriter) -> None:
        self.store = store

    def build(
        self, jobs: Sequence[ImageJob], access: SourceAccess, observer: IngestObserver
    ) -> Iterator[tuple[ImageJob, Outcome]]:
        with run_scratch(self.store.scratch_root()) as run:
            for job in jobs:
                yield job, build_in_scratch(job, self.store, access, run, observer)


def build_in_scratch(
    job: ImageJob, store: StoreWriter, access: SourceAccess, run: Path, observer: IngestObserver
) -> Outcome:
    """`build_image` in a scratch folder of its own under `run`, removed afterwards; a bad entry's
    failure becomes its message."""
    with tempfile.TemporaryDirectory(dir=run, prefix=f"image-{job.entry.id}-") as scratch:
        try:
            return build_image(job, store, access, Path(scratch), observer.image_started, observer.tiles_written)
        except BUILD_ERRORS as exc:
            return failure_message(exc)


class Ingestor:
    """Ingests manifests into one database and one store."""

    def __init__(
        self,
        database: Database,
        store: StoreWriter,
        observer: IngestObserver | None = None,
        roots: Sequence[Path] = (),
        builder: Builder | None = None,
    ) -> None:
        self.database = database
        self.observer: IngestObserver = observer or SilentObserver()
        self.roots = tuple(roots)
        self.builder: Builder = builder or LocalBuilder(store)

    def run(self, manifest: Manifest, base_dir: Path) -> IngestReport:
        """Ingest `manifest`, resolving relative source paths against `base_dir`.

        Sources must resolve (symbolic links followed) inside `base_dir` or one of the `roots`.
        """
        with self.database.session() as session, session.begin():
            _upsert_collections(session, manifest)
        report = IngestReport()
        pending = [job for job in _jobs(manifest) if self._is_new(job, report)]
        for job, outcome in self.builder.build(pending, SourceAccess(base_dir, self.roots), self.observer):
            if isinstance(outcome, str):
                report.failed.append((job.name, outcome))
                self.observer.image_finished(job.name, "failed")
                continue
            with self.database.session() as session, session.begin():
                session.add(_row(outcome))
            report.ingested.append(job.entry.id)
            report.warnings.extend((job.name, warning) for warning in outcome.warnings)
            self.observer.image_finished(job.name, "ingested")
        return report

    def _is_new(self, job: ImageJob, report: IngestReport) -> bool:
        """Whether `job` still needs building; an id taken by another data set or model fails it."""
        with self.database.session() as session:
            existing = session.get(SubImage, job.entry.id)
        if existing is None:
            return True
        if existing.type != job.model or existing.data_set_id != job.data_set_id:
            message = f"id {job.entry.id} is already used by {existing.type} of data set {existing.data_set_id}"
            report.failed.append((job.name, message))
            self.observer.image_finished(job.name, "failed")
        else:
            report.skipped.append(job.entry.id)
            self.observer.image_finished(job.name, "skipped")
        return False


def _row(built: BuiltImage) -> SubImage:
    """The SubImage row, with its layer rows, of a built image."""
    entry = built.job.entry
    layers = [
        ImageLayer(
            kind=layer.kind.value,
            atlas_id=layer.atlas,
            path=layer.file.key,
            width=layer.width,
            height=layer.height,
            tier_count=layer.levels,
            bits_per_component=layer.bits_per_component,
            number_of_components=layer.bands,
            byte_size=layer.file.size,
            version=layer.file.version,
        )
        for layer in built.layers
    ]
    model = SectionImage if built.job.model == "SectionImage" else AtlasImage
    x, y, width, height = built.section
    return model(
        id=entry.id,
        data_set_id=built.job.data_set_id,
        section_number=entry.section_number,
        x=x,
        y=y,
        width=width,
        height=height,
        image_width=built.width,
        image_height=built.height,
        tier_count=built.levels,
        resolution=built.resolution_um,
        bits_per_component=built.bits_per_component,
        number_of_components=built.bands,
        path=layers[0].path,
        image_type="Primary",
        annotated=any(layer.kind == LayerKind.ANNOTATION for layer in layers),
        failed=entry.failed,
        expression=any(layer.kind == LayerKind.EXPRESSION for layer in layers) or None,
        expression_path=next((la.path for la in layers if la.kind == LayerKind.EXPRESSION), None),
        projection_function=entry.projection_function,
        layers=layers,
    )


def _jobs(manifest: Manifest) -> list[ImageJob]:
    jobs: list[ImageJob] = []
    groups: Sequence[tuple[str, Sequence[SectionDataSetEntry | AtlasDataSetEntry], str]] = (
        ("section_data_sets", manifest.section_data_sets, "SectionImage"),
        ("atlas_data_sets", manifest.atlas_data_sets, "AtlasImage"),
    )
    for group, data_sets, model in groups:
        for i, data_set in enumerate(data_sets):
            for j, image in enumerate(data_set.images):
                name = f"{group}[{i}].images[{j}] (id {image.id})"
                jobs.append(ImageJob(image, name, model, data_set.id, image.quality or manifest.quality))
    return jobs


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

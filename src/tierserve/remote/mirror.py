"""`tierserve mirror`: a local, servable copy of data sets from an Allen-compatible server.

Metadata comes through the source's data API (`remote.catalog`); pixels through its download service
at full resolution, as regions of bounded size (`remote.regions`) saved one file each under the work
directory, so a broken transfer loses one region and a re-run fetches only the missing ones. When an
image's regions (primary and layers) are all there, they are joined into lossless tiled TIFFs and the
image is ingested by the normal path (`Ingestor`: same store, same atomic publish) from a one-image
manifest that keeps the source's ids and fields; then its regions are removed. Joining and ingesting
run in a thread while the next image is fetched.

Samples: the source is asked for its native-depth TIFF output (tierserve's `format=tiff`); a source
that does not offer it (the Allen API) is asked for JPEG at quality 100, and images deeper than 8 bits
then keep the 8-bit data it serves, with the Equalization set to the 8-bit range and a warning.

An id that exists locally with other content (another data set, model, size or section) is refused
and reported; an image already mirrored is left as it is.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from tierserve.db.database import Database
from tierserve.db.models import Atlas, DataSet, SubImage
from tierserve.errors import IngestError
from tierserve.ingest.manifest import (
    AtlasDataSetEntry,
    AtlasEntry,
    EqualizationEntry,
    ImageEntry,
    LayerEntry,
    Manifest,
    SectionDataSetEntry,
)
from tierserve.ingest.pipeline import Ingestor
from tierserve.remote.catalog import Layer, Record, RemoteDataSet, RemoteImage, Selection, resolve
from tierserve.remote.progress import TransferProgress
from tierserve.remote.regions import REGION_SIZE, Region, join_regions, plan_regions
from tierserve.remote.source import SourceClient, SourceError
from tierserve.storage import StoreWriter

#: The layer name of an image's primary pixels in the work directory.
PRIMARY = "primary"
#: The fields of an image record that say what its pixels are; a local image must match them all.
IDENTITY_FIELDS = ("section_number", "x", "y", "width", "height", "image_width", "image_height")
#: The Equalization of 8-bit samples: every channel's whole range.
EIGHT_BIT_RANGE = EqualizationEntry(
    red_lower=0, red_upper=255, green_lower=0, green_upper=255, blue_lower=0, blue_upper=255
)


class SampleMode(Enum):
    """How regions are asked for: the source's native-depth TIFF, or its JPEG at quality 100."""

    NATIVE = "tiff"
    JPEG = "jpeg"

    def params(self) -> dict[str, str | int]:
        return {"format": "tiff"} if self is SampleMode.NATIVE else {"quality": 100}

    @property
    def suffix(self) -> str:
        return ".tif" if self is SampleMode.NATIVE else ".jpg"


@dataclass(frozen=True)
class MirrorOptions:
    """`region_size`: edge of a fetched region (full-resolution pixels, a multiple of 256);
    `quality`: JPEG quality of the local 8-bit tiles."""

    region_size: int = REGION_SIZE
    quality: int = 90


@dataclass
class MirrorReport:
    """Images mirrored, already present, refused or failed (with why), and warnings, by image name."""

    mirrored: list[int] = field(default_factory=list)
    present: list[int] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


@dataclass
class _Job:
    """An image to fetch and publish: its data set, its record, and how its samples are asked for."""

    data_set: RemoteDataSet
    image: RemoteImage
    mode: SampleMode

    @property
    def name(self) -> str:
        return f"{self.image.model} {self.image.id}"

    @property
    def layers(self) -> list[tuple[str, Layer | None]]:
        """(work-directory name, layer) of the primary (layer None) and each extra layer."""
        return [(PRIMARY, None), *((layer.name, layer) for layer in self.image.layers)]

    @property
    def keeps_depth(self) -> bool:
        """Whether the local image keeps the source's sample depth (else it is the source's 8-bit data)."""
        return self.mode is SampleMode.NATIVE or _bits(self.image.record) <= 8


class Mirror:
    """Mirrors selections from `source` into `database` and `store`, using `work_dir` for regions."""

    def __init__(
        self,
        source: SourceClient,
        database: Database,
        store: StoreWriter,
        work_dir: Path,
        progress: TransferProgress,
        options: MirrorOptions | None = None,
    ) -> None:
        self.source = source
        self.database = database
        self.store = store
        self.work_dir = work_dir
        self.progress = progress
        self.options = options or MirrorOptions()
        self.report = MirrorReport()
        self._sample_mode: SampleMode | None = None

    async def run(self, selection: Selection) -> MirrorReport:
        """Mirror everything `selection` names; raises SourceError when the selection cannot be read."""
        data_sets = await resolve(self.source, selection)
        jobs = [job for data_set in data_sets if self._admissible(data_set) for job in await self._jobs(data_set)]
        publishing: asyncio.Task[None] | None = None
        for job in jobs:
            fetched = await self._fetch(job)
            if publishing is not None:
                await publishing
            publishing = asyncio.create_task(self._publish(job)) if fetched else None
        if publishing is not None:
            await publishing
        return self.report

    # what may be mirrored

    def _admissible(self, data_set: RemoteDataSet) -> bool:
        """Whether the data set's id and atlases are free locally or hold the same records; a conflict
        fails all its images."""
        problem = self._collection_conflict(data_set)
        if problem is None:
            return True
        self.progress.add_images(len(data_set.images))
        for image in data_set.images:
            self._fail(f"{image.model} {image.id}", problem)
        return False

    def _collection_conflict(self, data_set: RemoteDataSet) -> str | None:
        with self.database.session() as session:
            local = session.get(DataSet, data_set.id)
            if local is not None and (local.type, local.name) != (data_set.model, data_set.record.get("name")):
                return (
                    f"data set id {data_set.id} exists locally as {local.type} {local.name!r}, "
                    f"the source's is {data_set.model} {data_set.record.get('name')!r}: refused"
                )
            for atlas in data_set.atlases:
                local_atlas = session.get(Atlas, int(atlas["id"]))
                if local_atlas is not None and local_atlas.name != atlas.get("name"):
                    return (
                        f"atlas id {atlas['id']} exists locally as {local_atlas.name!r}, "
                        f"the source's is {atlas.get('name')!r}: refused"
                    )
        return None

    async def _jobs(self, data_set: RemoteDataSet) -> list[_Job]:
        """The data set's images still to mirror; present ones are counted, conflicting ones failed."""
        self.progress.add_images(len(data_set.images))
        jobs: list[_Job] = []
        for image in data_set.images:
            conflict = self._image_conflict(data_set, image)
            name = f"{image.model} {image.id}"
            if conflict == "present":
                self.report.present.append(image.id)
                self.progress.image_done(name, "already present")
            elif conflict is not None:
                self._fail(name, conflict)
            else:
                try:
                    jobs.append(_Job(data_set, image, await self._mode(image)))
                except SourceError as exc:
                    self._fail(name, exc.message)
        return jobs

    def _image_conflict(self, data_set: RemoteDataSet, image: RemoteImage) -> str | None:
        """None for a new image, "present" when the same image is already local, else the refusal."""
        with self.database.session() as session:
            local = session.get(SubImage, image.id)
            if local is None:
                return None
            same = (local.type, local.data_set_id) == (image.model, data_set.id) and all(
                getattr(local, key) == image.record.get(key) for key in IDENTITY_FIELDS
            )
            if same:
                return "present"
            return (
                f"id {image.id} exists locally as {local.type} of data set {local.data_set_id} "
                f"({local.image_width}x{local.image_height}, section {local.section_number}) with other content "
                f"than the source's ({image.record.get('image_width')}x{image.record.get('image_height')}, "
                f"section {image.record.get('section_number')}): refused"
            )

    # fetching

    async def _mode(self, image: RemoteImage) -> SampleMode:
        """Whether the source serves native-depth TIFF, asked once with a one-pixel request of `image`."""
        if self._sample_mode is None:
            self.work_dir.mkdir(parents=True, exist_ok=True)
            probe = self.work_dir / f"probe-{image.id}.bin"
            params = {**Region(0, 0, 0, 0, 1, 1).params(), **SampleMode.NATIVE.params()}
            try:
                answer = await self.source.download(image.endpoint, params, probe)
            except SourceError as exc:
                if exc.status != 400:  # a source that refuses format= has no TIFF output
                    raise
                self._sample_mode = SampleMode.JPEG
            else:
                native = answer.content_type == "image/tiff"
                self._sample_mode = SampleMode.NATIVE if native else SampleMode.JPEG
            finally:
                probe.unlink(missing_ok=True)
        return self._sample_mode

    async def _fetch(self, job: _Job) -> bool:
        """Fetch the regions of every layer of `job` that are not in the work directory yet; False
        (the image failed, its fetched regions kept for a re-run) when one could not be fetched."""
        record = job.image.record
        regions = plan_regions(int(record["image_width"]), int(record["image_height"]), self.options.region_size)
        self.progress.add_regions(len(regions) * len(job.layers))
        tasks = []
        for name, layer in job.layers:
            folder = self._image_dir(job) / name
            folder.mkdir(parents=True, exist_ok=True)
            params = {**job.mode.params(), **(layer.params() if layer else {})}
            tasks += [self._region(job, folder, region, params) for region in regions]
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        errors = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
        for error in errors:
            if not isinstance(error, SourceError):
                raise error
        if errors:
            more = f" (and {len(errors) - 1} more regions)" if len(errors) > 1 else ""
            self._fail(job.name, f"{errors[0]}{more}; fetched regions are kept for a re-run")
            return False
        return True

    async def _region(self, job: _Job, folder: Path, region: Region, params: dict[str, str | int]) -> None:
        path = folder / f"{region.stem}{job.mode.suffix}"
        if not path.exists():
            answer = await self.source.download(job.image.endpoint, {**region.params(), **params}, path)
            if job.mode is SampleMode.NATIVE and answer.content_type != "image/tiff":
                path.unlink(missing_ok=True)
                raise SourceError(f"{job.image.endpoint}: answered {answer.content_type}, not the TIFF it offered")
        self.progress.region_done()

    # publishing

    async def _publish(self, job: _Job) -> None:
        """Join the regions and ingest the image (in a thread); its work directory goes once it is in."""
        try:
            warnings = await asyncio.to_thread(self._ingest, job)
        except IngestError as exc:
            self._fail(job.name, exc.message)
            return
        except ValidationError as exc:
            self._fail(job.name, f"the source's records do not make a valid manifest: {exc.errors()[0]['msg']}")
            return
        self.report.mirrored.append(job.image.id)
        self.report.warnings += [(job.name, warning) for warning in warnings]
        self.progress.image_done(job.name, "mirrored")
        shutil.rmtree(self._image_dir(job), ignore_errors=True)

    def _ingest(self, job: _Job) -> list[str]:
        """Join the regions of every layer into a TIFF and ingest the one-image manifest; the warnings."""
        record = job.image.record
        width, height = int(record["image_width"]), int(record["image_height"])
        regions = plan_regions(width, height, self.options.region_size)
        for name, _ in job.layers:
            joined = self._image_dir(job) / f"{name}.tif"
            if not joined.exists():
                folder = self._image_dir(job) / name
                files = [folder / f"{region.stem}{job.mode.suffix}" for region in regions]
                try:
                    join_regions(files, regions, width, height, joined, record.get("resolution"))
                except IngestError as exc:  # a region the source sent damaged: fetch the layer again next run
                    shutil.rmtree(folder, ignore_errors=True)
                    raise IngestError(f"{exc.message}; the {name} regions are fetched again by a re-run") from exc
        manifest = self._manifest(job)
        report = Ingestor(self.database, self.store).run(manifest, self.work_dir)
        if report.failed:
            raise IngestError("; ".join(message for _, message in report.failed))
        warnings = [message for _, message in report.warnings]
        if not job.keeps_depth:
            warnings.append(
                f"the source serves no native-depth TIFF: kept its 8-bit data of a {_bits(record)}-bit image, "
                "Equalization set to 0-255"
            )
        return warnings

    def _manifest(self, job: _Job) -> Manifest:
        """The one-image manifest of `job`: the source's records, sources in its work directory."""
        record, data_set = job.image.record, job.data_set
        folder = self._image_dir(job).relative_to(self.work_dir)
        layers = [
            LayerEntry(kind=layer.kind, source=str(folder / f"{layer.name}.tif"), atlas=layer.atlas)
            for layer in job.image.layers
        ]
        image = ImageEntry(
            **_fields(record, ImageEntry, exclude={"source", "layers", "quality", "bits_per_component"}),
            source=str(folder / f"{PRIMARY}.tif"),
            bits_per_component=_bits(record) if job.keeps_depth and _bits(record) > 8 else None,
            quality=self.options.quality,
            layers=layers,
        )
        if data_set.model == "SectionDataSet":
            entry = SectionDataSetEntry(
                **_fields(data_set.record, SectionDataSetEntry, exclude={"images", "equalization"}),
                equalization=_equalization(data_set.equalization, job.keeps_depth),
                images=[image],
            )
            return Manifest(quality=self.options.quality, section_data_sets=[entry])
        atlases = [AtlasEntry(**_fields(atlas, AtlasEntry)) for atlas in data_set.atlases]
        atlas_entry = AtlasDataSetEntry(
            **_fields(data_set.record, AtlasDataSetEntry, exclude={"images", "atlases"}),
            atlases=[atlas.id for atlas in atlases],
            images=[image],
        )
        return Manifest(quality=self.options.quality, atlases=atlases, atlas_data_sets=[atlas_entry])

    def _image_dir(self, job: _Job) -> Path:
        return self.work_dir / str(job.image.id)

    def _fail(self, name: str, message: str) -> None:
        self.report.failed.append((name, message))
        self.progress.image_done(name, "failed")


def _bits(record: Record) -> int:
    return int(record.get("bits_per_component") or 8)


def _fields(record: Record, model: Any, exclude: Sequence[str] | set[str] = ()) -> dict[str, Any]:
    """The values of `record` that `model` (a manifest entry) has fields for, nulls left out."""
    names = set(model.model_fields) - set(exclude)
    return {key: value for key, value in record.items() if key in names and value is not None}


def _equalization(record: Record | None, keeps_depth: bool) -> EqualizationEntry | None:
    """The data set's Equalization as the manifest takes it; 0-255 when the local data is 8-bit."""
    if record is None:
        return None
    if not keeps_depth:
        return EIGHT_BIT_RANGE
    return EqualizationEntry(**_fields(record, EqualizationEntry))

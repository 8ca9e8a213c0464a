"""`tierserve download`: the images a selection names at an Allen-compatible server, one file each.

The selection (`catalog.Selection`) is resolved through the source's data API; each image becomes a
`Job`: the download-service URL with the options (`FileOptions`) and the file it is written to,
``{id}.{ext}`` under the output folder. Files are fetched with the shared `SourceClient` (bounded
concurrency, retries with backoff, Retry-After), written atomically (``.part`` then renamed), and
decoded in full (pyvips, in a worker thread) before they count: the decoded pixel size goes into the
manifest, and a file that does not decode is not kept.

Re-runs skip what is complete: a file is reused when an earlier run recorded it with the same URL and
byte size (in ``manifest.json``, or in the journal a run appends to after each file, which survives a
``kill -9``) and it still decodes in full. Anything else is fetched again.

`manifest.json` (written atomically at the end) lists the selection and options, every file (ids, data
set, section number, the record's size, the decoded pixel size, byte size, the exact URL) and every
failure. A source that answers another format than ``--format`` asked for (the Allen API ignores
``format`` and always sends JPEG) is refused: the file is not kept and no further image is requested.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import pyvips
import tifffile
from rich.console import Console

from tierserve import __version__
from tierserve.layers import LayerKind
from tierserve.remote.catalog import RemoteDataSet, RemoteImage, Selection, resolve
from tierserve.remote.progress import TransferProgress, transfer_progress
from tierserve.remote.source import SourceClient, SourceError, SourceStats

#: The manifest written into the output folder at the end of a run.
MANIFEST = "manifest.json"
#: One JSON line per file completed, appended as the run goes; removed once the manifest is written.
JOURNAL = ".download-journal.jsonl"
#: The `--range` word that asks for each data set's Equalization record.
EQUALIZATION = "equalization"
#: Equalization fields in the order of the `range` parameter (rl,ru,gl,gu,bl,bu).
EQUALIZATION_FIELDS = ("red_lower", "red_upper", "green_lower", "green_upper", "blue_lower", "blue_upper")
#: Largest `range` bound: 16-bit samples.
MAX_RANGE = 65535
#: Downloads of one file (each with the client's own retries) when the answer does not decode.
DECODE_TRIES = 2


class FileFormat(StrEnum):
    """The encodings `--format` asks for; JPEG is the Allen service's only output."""

    JPEG = "jpeg"
    PNG = "png"
    TIFF = "tiff"

    @property
    def extension(self) -> str:
        return {"jpeg": "jpg", "png": "png", "tiff": "tif"}[self.value]

    @property
    def media_type(self) -> str:
        return f"image/{self.value}"


class UsageError(Exception):
    """An option value that cannot be used (the command exits 2)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class DecodeError(Exception):
    """A file does not decode in full (truncated, corrupt, not an image)."""


ChannelRange = tuple[int, int, int, int, int, int]


@dataclass(frozen=True)
class FileOptions:
    """The download options of every file: the Allen parameters (None: not sent, the source's default).

    `downsample` is the tier (halvings of width and height); `left`/`top` are full-resolution pixels,
    `width`/`height` tier pixels, as in the Allen API. `range` is six bounds rl,ru,gl,gu,bl,bu on the
    layer's native sample scale, or EQUALIZATION for each data set's Equalization record.
    """

    downsample: int | None = None
    quality: int | None = None
    view: LayerKind = LayerKind.PRIMARY
    range: ChannelRange | str | None = None
    format: FileFormat = FileFormat.JPEG
    left: int | None = None
    top: int | None = None
    width: int | None = None
    height: int | None = None

    def as_json(self) -> dict[str, Any]:
        values = asdict(self)
        values["view"] = self.view.value
        values["format"] = self.format.value
        values["range"] = list(self.range) if isinstance(self.range, tuple) else self.range
        return values


def parse_range(text: str) -> ChannelRange | str:
    """`--range`: the word ``equalization``, or six integers rl,ru,gl,gu,bl,bu with each lower bound below
    its upper bound, at most 65535; raises UsageError."""
    if text.strip().lower() == EQUALIZATION:
        return EQUALIZATION
    parts = [part.strip() for part in text.split(",")]
    if len(parts) != 6 or not all(part.isdigit() for part in parts):
        raise UsageError(f"--range must be six integers rl,ru,gl,gu,bl,bu or the word equalization, got {text!r}")
    values = tuple(int(part) for part in parts)
    for channel, lower, upper in zip("rgb", values[0::2], values[1::2], strict=True):
        if not lower < upper <= MAX_RANGE:
            raise UsageError(f"--range: {channel}l < {channel}u <= {MAX_RANGE} is needed, got {lower},{upper}")
    return values  # type: ignore[return-value]  # six values, checked above


@dataclass(frozen=True)
class Job:
    """One file to fetch: the image, the download-service path and parameters, and the file name."""

    image: RemoteImage
    data_set: RemoteDataSet
    path: str
    params: dict[str, str | int]
    file_name: str
    range: ChannelRange | None = None
    atlas: int | None = None


def plan(data_sets: Sequence[RemoteDataSet], selection: Selection, options: FileOptions) -> tuple[list[Job], list[str]]:
    """The files to fetch for `data_sets` (in their order) and warnings about the options.

    An atlas plate asked for with ``view=annotation`` gets ``annotation=true&atlas=A`` for the selected
    atlas A that its data set belongs to; a plate of a data set shared by several selected atlases gets a
    file per atlas, named ``{id}-atlas{A}.{ext}``.
    """
    jobs: list[Job] = []
    warnings: list[str] = []
    for data_set in data_sets:
        ranges = _range_of(data_set, options.range)
        if options.range == EQUALIZATION and ranges is None:
            warnings.append(
                f"{data_set.model} {data_set.id} has no Equalization record: its images are fetched without range"
            )
        atlases = _atlases_of(data_set, selection, options.view)
        for image in data_set.images:
            for atlas in atlases:
                name = f"{image.id}" if len(atlases) == 1 else f"{image.id}-atlas{atlas}"
                path, params = _request(image, options, ranges, atlas)
                jobs.append(Job(image, data_set, path, params, f"{name}.{options.format.extension}", ranges, atlas))
    return jobs, warnings


def _range_of(data_set: RemoteDataSet, asked: ChannelRange | str | None) -> ChannelRange | None:
    """The range sent for the images of `data_set`: the one asked for, or its Equalization record's."""
    if asked is None or isinstance(asked, tuple):
        return asked
    record = data_set.equalization or {}
    if any(record.get(name) is None for name in EQUALIZATION_FIELDS):
        return None
    return tuple(round(float(record[name])) for name in EQUALIZATION_FIELDS)  # type: ignore[return-value]


def _atlases_of(data_set: RemoteDataSet, selection: Selection, view: LayerKind) -> list[int | None]:
    """The atlases whose annotation each image of `data_set` is fetched with ([None]: no atlas parameter)."""
    if view is not LayerKind.ANNOTATION or data_set.model != "AtlasDataSet":
        return [None]
    own = [int(atlas["id"]) for atlas in data_set.atlases]
    chosen: list[int | None] = [atlas for atlas in selection.atlases if atlas in own]
    return chosen or [*sorted(own)] or [None]


def _request(
    image: RemoteImage, options: FileOptions, ranges: ChannelRange | None, atlas: int | None
) -> tuple[str, dict[str, str | int]]:
    """The download-service path of `image` and its parameters, in AllenSDK's order."""
    path = image.endpoint
    params: dict[str, str | int] = {}
    for name in ("downsample", "quality"):
        value = getattr(options, name)
        if value is not None:
            params[name] = value
    if options.view is LayerKind.ANNOTATION:
        params["annotation"] = "true"
        if atlas is not None:
            params["atlas"] = atlas
    elif options.view is not LayerKind.PRIMARY:
        params["view"] = options.view.value
        if options.view is LayerKind.PROJECTION and image.model == "SectionImage":
            path = f"api/v2/projection_image_download/{image.id}"  # AllenSDK's download_projection_image
    if ranges is not None:
        params["range"] = ",".join(str(value) for value in ranges)
    for name in ("left", "top", "width", "height"):
        value = getattr(options, name)
        if value is not None:
            params[name] = value
    if options.format is not FileFormat.JPEG:
        params["format"] = options.format.value  # not an Allen parameter: only sent when asked for
    return path, params


@dataclass(frozen=True)
class Decoded:
    """What a file holds, once decoded in full: its encoding, size in pixels, bands and sample format
    (libvips names: ``uchar`` 8-bit, ``ushort`` 16-bit)."""

    format: FileFormat | None
    width: int
    height: int
    bands: int
    sample_format: str


def decode(path: Path) -> Decoded:
    """Decode every pixel of the image file `path` (JPEG, PNG or TIFF); raises DecodeError when it is
    truncated, corrupt or not an image. Blocking: call it in a thread."""
    try:
        image = pyvips.Image.new_from_file(str(path), access="sequential", fail_on="truncated", revalidate=True)
        image.avg()  # reads the whole image
    except pyvips.Error as exc:
        detail = (exc.detail or exc.message or "").strip().splitlines()
        raise DecodeError(detail[-1] if detail else "unknown error") from exc
    loader = str(image.get("vips-loader"))
    kind = next((kind for kind in FileFormat if loader.startswith(kind.value)), None)
    if kind is not None and not _whole(path, kind):
        raise DecodeError(f"the {kind.value} file is cut short or its end is overwritten")
    return Decoded(kind, image.width, image.height, image.bands, str(image.format))


#: What ends a whole file: JPEG's end-of-image marker (coded data cannot hold it), PNG's IEND chunk.
_END_MARKS = {FileFormat.JPEG: b"\xff\xd9", FileFormat.PNG: b"IEND\xaeB`\x82"}


def _whole(path: Path, kind: FileFormat) -> bool:
    """Whether the file's structure is complete: the end mark in the last 64 bytes (JPEG, PNG), every
    tile or strip inside the file (TIFF). The decoders accept a file whose end is zero-filled, as a
    crash can leave it: libjpeg and libpng stop before the end, libvips reads a zeroed TIFF offset as a
    blank tile."""
    size = path.stat().st_size
    if kind is FileFormat.TIFF:
        try:
            with tifffile.TiffFile(path) as tiff:
                return all(
                    offset > 0 and count > 0 and offset + count <= size
                    for page in tiff.pages
                    for offset, count in zip(page.dataoffsets, page.databytecounts, strict=True)
                )
        except Exception:  # whatever tifffile finds wrong in the structure libvips read
            return False
    with path.open("rb") as handle:
        handle.seek(max(0, size - 64))
        return _END_MARKS[kind] in handle.read()


@dataclass(frozen=True)
class FileEntry:
    """A file in the output folder: what it holds and where it came from (`status`: downloaded or
    already present)."""

    job: Job
    url: str
    content_type: str
    size: int
    decoded: Decoded
    status: str

    def as_json(self) -> dict[str, Any]:
        return {
            **_image_json(self.job),
            "file": self.job.file_name,
            "url": self.url,
            "content_type": self.content_type,
            "bytes": self.size,
            "pixel_width": self.decoded.width,
            "pixel_height": self.decoded.height,
            "bands": self.decoded.bands,
            "sample_format": self.decoded.sample_format,
            "status": self.status,
        }


@dataclass(frozen=True)
class Failure:
    """An image that could not be fetched: its URL and why."""

    job: Job
    url: str
    error: str

    def as_json(self) -> dict[str, Any]:
        return {**_image_json(self.job), "file": self.job.file_name, "url": self.url, "error": self.error}


def _image_json(job: Job) -> dict[str, Any]:
    """The image's record fields the manifest keeps; `record_width`/`record_height` are full-resolution pixels."""
    record = job.image.record
    return {
        "id": job.image.id,
        "model": job.image.model,
        "data_set_id": job.data_set.id,
        "section_number": record.get("section_number"),
        "record_width": record.get("width"),
        "record_height": record.get("height"),
        "range": list(job.range) if job.range else None,
        "atlas": job.atlas,
    }


@dataclass
class Report:
    """What a run did: files kept (fetched or already present), failures, warnings, the source's counters."""

    out: Path
    stats: SourceStats
    files: list[FileEntry] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def manifest(self) -> Path:
        return self.out / MANIFEST

    def count(self, status: str) -> int:
        return sum(1 for entry in self.files if entry.status == status)

    def summary(self) -> str:
        """One line: the outcome of every image, what was received, where the manifest is."""
        images = len(self.files) + len(self.failures)
        return (
            f"downloaded {self.count('downloaded')}, already present {self.count('already present')}, "
            f"failed {len(self.failures)} of {images} images; {self.stats.bytes / 1e6:.1f} MB received in "
            f"{self.stats.requests} requests ({self.stats.retries} retried); manifest {self.manifest}"
        )


@dataclass(frozen=True)
class _Known:
    """What an earlier run recorded about a file it completed."""

    url: str
    size: int


class _Run:
    """One download run into `out`: fetches the jobs with `workers` tasks, keeps the journal."""

    def __init__(self, source: SourceClient, out: Path, fmt: FileFormat, progress: TransferProgress | None) -> None:
        self.source = source
        self.out = out
        self.format = fmt
        self.progress = progress
        self.known = _read_known(out)
        self.refused: str | None = None
        # the first answer shows whether the source honours the format: other downloads wait for it
        self._probe = asyncio.Lock()
        self._format_known = False

    async def fetch_all(self, jobs: Sequence[Job], workers: int) -> list[FileEntry | Failure]:
        """Every job's outcome, in the jobs' order."""
        results: list[FileEntry | Failure | None] = [None] * len(jobs)
        pending = iter(enumerate(jobs))

        async def worker() -> None:
            for index, job in pending:
                results[index] = await self.fetch(job)

        async with asyncio.TaskGroup() as group:
            for _ in range(max(1, workers)):
                group.create_task(worker())
        return [result for result in results if result is not None]

    async def fetch(self, job: Job) -> FileEntry | Failure:
        """The file of `job`: reused if complete, else fetched; a Failure says why not."""
        url = self.source.url(job.path, job.params)
        outcome = await self._present(job, url) or await self._download(job, url)
        if isinstance(outcome, FileEntry):
            self._journal(outcome)
        if self.progress is not None:
            self.progress.region_done()
            word = outcome.status if isinstance(outcome, FileEntry) else "failed"
            self.progress.image_done(job.file_name, word)
        return outcome

    async def _present(self, job: Job, url: str) -> FileEntry | None:
        """The file of `job` if an earlier run completed it from `url` and it still decodes in full."""
        known = self.known.get(job.file_name)
        dest = self.out / job.file_name
        if known is None or known.url != url or not dest.is_file() or dest.stat().st_size != known.size:
            return None
        try:
            decoded = await asyncio.to_thread(decode, dest)
        except DecodeError:
            return None
        if decoded.format is not self.format:
            return None
        return FileEntry(job, url, self.format.media_type, known.size, decoded, "already present")

    async def _download(self, job: Job, url: str) -> FileEntry | Failure:
        """Fetch the file of `job`; until an answer has shown the source's format, one at a time."""
        if not self._format_known:
            async with self._probe:
                if not self._format_known:
                    return await self._fetch_file(job, url)
        return await self._fetch_file(job, url)

    async def _fetch_file(self, job: Job, url: str) -> FileEntry | Failure:
        """Fetch the file of `job` (again when the answer does not decode); refuse another format."""
        if self.refused is not None:
            return Failure(job, url, f"not requested: {self.refused}")
        dest = self.out / job.file_name
        error = ""
        for _ in range(DECODE_TRIES):
            try:
                got = await self.source.download(job.path, job.params, dest)
                decoded = await asyncio.to_thread(decode, dest)
            except SourceError as exc:
                return Failure(job, url, exc.message.removeprefix(f"{url}: "))  # the URL is listed apart
            except DecodeError as exc:
                error = f"the answer does not decode: {exc}"
                dest.unlink(missing_ok=True)
                continue
            except OSError as exc:
                return Failure(job, url, f"cannot write {dest}: {exc}")
            self._format_known = True
            mismatch = self._mismatch(got.content_type, decoded)
            if mismatch is not None:
                dest.unlink(missing_ok=True)
                self.refused = self.refused or mismatch
                return Failure(job, url, mismatch)
            return FileEntry(job, url, got.content_type or self.format.media_type, got.size, decoded, "downloaded")
        return Failure(job, url, error)

    def _mismatch(self, content_type: str, decoded: Decoded) -> str | None:
        """Why an answer is not the format asked for (None when it is)."""
        declared = content_type.lower()
        if decoded.format is self.format and (not declared.startswith("image/") or declared == self.format.media_type):
            return None
        got = decoded.format.value if decoded.format else "another format"
        answer = f"the source answered {got} ({content_type or 'no Content-Type'})"
        if self.format is FileFormat.JPEG:
            return f"{answer} to a request for the Allen service's JPEG"
        return (
            f"{answer} to format={self.format.value}: it does not honour --format (the Allen API sends JPEG "
            f"only); run without --format, or download from a tierserve"
        )

    def _journal(self, entry: FileEntry) -> None:
        """Record a completed file (one JSON line), so that a killed run's successor can reuse it."""
        line = json.dumps({"file": entry.job.file_name, "url": entry.url, "bytes": entry.size})
        with (self.out / JOURNAL).open("a", encoding="utf-8") as journal:
            journal.write(line + "\n")


def _read_known(out: Path) -> dict[str, _Known]:
    """File name -> URL and byte size that earlier runs recorded: the last manifest, then the journal
    (later lines win; a line cut short by a kill is ignored)."""
    known: dict[str, _Known] = {}
    with contextlib.suppress(OSError, ValueError):
        manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
        for entry in manifest.get("images", []):
            known[str(entry["file"])] = _Known(str(entry["url"]), int(entry["bytes"]))
    for line in _lines(out / JOURNAL):
        with contextlib.suppress(ValueError, KeyError, TypeError):
            entry = json.loads(line)
            known[str(entry["file"])] = _Known(str(entry["url"]), int(entry["bytes"]))
    return known


def _lines(path: Path) -> Iterator[str]:
    with contextlib.suppress(FileNotFoundError), path.open(encoding="utf-8", errors="replace") as handle:
        yield from handle


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def write_manifest(report: Report, source: str, selection: Selection, options: FileOptions, started: str) -> None:
    """Write `manifest.json` atomically (a temporary file renamed), then drop the journal."""
    document = {
        "tierserve": __version__,
        "source": source,
        "selection": {
            "data_sets": list(selection.data_sets),
            "atlases": list(selection.atlases),
            "query": selection.query,
        },
        "options": options.as_json(),
        "started": started,
        "finished": _now(),
        "summary": {
            "images": len(report.files) + len(report.failures),
            "downloaded": report.count("downloaded"),
            "already_present": report.count("already present"),
            "failed": len(report.failures),
            "bytes_received": report.stats.bytes,
            "requests": report.stats.requests,
            "retries": report.stats.retries,
        },
        "images": [entry.as_json() for entry in report.files],
        "failures": [failure.as_json() for failure in report.failures],
        "warnings": report.warnings,
    }
    partial = report.out / f"{MANIFEST}.part"
    partial.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    partial.replace(report.manifest)
    (report.out / JOURNAL).unlink(missing_ok=True)


async def download_to_folder(
    source: SourceClient,
    selection: Selection,
    options: FileOptions,
    out: Path,
    *,
    progress: TransferProgress | None = None,
    workers: int = 8,
) -> Report:
    """Fetch every image `selection` names at `source` into `out` (created if absent) and write its manifest.

    `workers` files are handled at once (the client bounds the requests in flight). Raises
    SelectionError when the selection names what the source lacks, SourceError when the source cannot
    answer the data API; failures of single images are in the report.
    """
    started = _now()
    data_sets = await resolve(source, selection)
    jobs, warnings = plan(data_sets, selection, options)
    report = Report(out, source.stats, warnings=warnings)
    if progress is not None:
        for warning in warnings:
            progress.console.print(f"warning: {warning}", markup=False, highlight=False, soft_wrap=True)
        progress.add_images(len(jobs))
        progress.add_regions(len(jobs))
    out.mkdir(parents=True, exist_ok=True)
    for outcome in await _Run(source, out, options.format, progress).fetch_all(jobs, workers):
        if isinstance(outcome, FileEntry):
            report.files.append(outcome)
        else:
            report.failures.append(outcome)
    write_manifest(report, source.base_url, selection, options, started)
    return report


async def run_download(
    base_url: str,
    selection: Selection,
    options: FileOptions,
    out: Path,
    progress_console: Console,
    *,
    concurrency: int = 4,
    attempts: int = 6,
    timeout: float = 60.0,
) -> Report:
    """`download_to_folder` from the server at `base_url` with a new client (`concurrency` requests in
    flight, `attempts` tries each, `timeout` seconds per answer) and progress on `progress_console`."""
    async with SourceClient(base_url, concurrency=concurrency, timeout=timeout, attempts=attempts) as source:
        with transfer_progress(progress_console, source.stats) as progress:
            return await download_to_folder(source, selection, options, out, progress=progress, workers=2 * concurrency)

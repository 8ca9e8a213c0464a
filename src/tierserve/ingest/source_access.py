"""Where an ingest may read its sources from, and how a source becomes a local file to open.

A manifest source is a path (relative to the manifest's folder) or an object-store URL
(`s3://bucket/key`, also `gs://` and `az://`), so that Dask workers on other machines reach the same
sources. A path must resolve inside the manifest's folder or one of TIERSERVE_INGEST_ROOTS. A URL is
copied, streamed in chunks, into the image's scratch folder and opened from there, so the integrity
checks of a local file apply to it unchanged; the credentials are the store's (the AWS_* variables).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

from tierserve.errors import IngestError, StorageError, StoreUnavailable
from tierserve.storage.urls import OBJECT_STORE_SCHEMES

#: Seconds one source download may take (the read timeout of a pyramid tile read is far shorter).
DOWNLOAD_TIMEOUT = 3600.0


def is_object_url(source: str) -> bool:
    """Whether a manifest source names an object in a store (`s3://bucket/key`, `gs://...`, `az://...`)."""
    return urlsplit(source).scheme in OBJECT_STORE_SCHEMES


@dataclass(frozen=True, slots=True)
class SourceAccess:
    """Where sources may be read from: relative paths resolve against `base_dir`, and must end up
    inside `base_dir` or one of `roots` (symbolic links followed); object-store URLs are downloaded."""

    base_dir: Path
    roots: tuple[Path, ...] = ()

    def local_file(self, source: str, scratch: Path) -> Path:
        """A local file holding `source`: its real path, or a copy in `scratch` of an object-store source.

        Raises `IngestError` naming the source when a path lies outside the allowed folders or an
        object cannot be fetched.
        """
        if is_object_url(source):
            return download(source, scratch)
        return self.resolve(source)

    def resolve(self, source: str) -> Path:
        """The real path of the local `source`; raises `IngestError` naming it when it lies outside the
        allowed folders."""
        path = (self.base_dir / source).resolve()
        allowed = (self.base_dir, *self.roots)
        if not any(path.is_relative_to(root.resolve()) for root in allowed):
            folders = ", ".join(str(root.resolve()) for root in allowed)
            raise IngestError(
                f"source {source} resolves to {path}, outside the allowed folders ({folders}); "
                "add its folder to TIERSERVE_INGEST_ROOTS"
            )
        return path


def download(url: str, scratch: Path) -> Path:
    """Copy the object at `url` into `scratch` under its own file name (its suffix tells the format).

    Raises `IngestError` when the object does not exist, the store refuses or does not answer (after
    its retries), or fewer bytes arrive than the store stated.
    """
    from tierserve.storage.object_store import ObjectStore, Timeouts

    parts = urlsplit(url)
    key = unquote(parts.path.lstrip("/"))
    if not parts.netloc or not key or key.endswith("/"):
        raise IngestError(f"source {url} names no object (expected {parts.scheme}://bucket/path/to/file)")
    bucket = f"{parts.scheme}://{parts.netloc}"
    store = ObjectStore.from_url(bucket, scratch, timeouts=Timeouts(read_timeout=DOWNLOAD_TIMEOUT))
    target = scratch / f"source-{len(list(scratch.glob('source-*')))}-{PurePosixPath(key).name}"
    try:
        store.download(key, target)
    except FileNotFoundError as exc:
        raise IngestError(f"source {url} does not exist") from exc
    except (StorageError, StoreUnavailable) as exc:
        raise IngestError(f"source {url} could not be fetched: {exc.message}") from exc
    return target

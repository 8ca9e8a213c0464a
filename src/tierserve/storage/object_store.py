"""A store in S3-compatible object storage (also Google Cloud Storage and Azure Blob Storage), through obstore.

`ObjectStore.from_url("s3://bucket/prefix", scratch)` keeps every key under `prefix` of `bucket`.
The endpoint and credentials come from the standard AWS environment variables: AWS_ENDPOINT_URL
(an `http://` endpoint, e.g. a local MinIO, is allowed), AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
AWS_SESSION_TOKEN and AWS_REGION; obstore reads any other AWS_* variable itself. `gs://bucket/prefix`
and `az://container/prefix` go through the same code, with the account and credentials from the
variables obstore reads for them (GOOGLE_SERVICE_ACCOUNT, GOOGLE_APPLICATION_CREDENTIALS;
AZURE_STORAGE_ACCOUNT_NAME, AZURE_STORAGE_ACCOUNT_KEY, ...); only the s3:// path is tested.

Reads fetch all ranges of one call with `obstore.get_ranges`: ranges less than `coalesce` bytes apart
share one GET and the rest are fetched concurrently (up to 10 at a time), so a call costs one round
of GETs and no HEAD; its duration and bytes go to the metrics (`tierserve_store_read_*`, by the URL's
scheme). Throttling (5xx, e.g. 503 SlowDown), timeouts and dropped connections are
retried by obstore with exponential backoff, at most `max_retries` times and not after
`retry_timeout`; then the call raises `StoreUnavailable`. Publishing is one `obstore.put` of the
scratch file: a single PUT, or (over 5 MiB) a multipart upload completed only after every part
arrived, so the object appears whole or not at all. An upload that fails midway may leave invisible
parts behind: give the bucket a lifecycle rule that aborts incomplete multipart uploads.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import obstore
from obstore.exceptions import BaseError, PermissionDeniedError, UnauthenticatedError

from tierserve.errors import StorageError, StoreUnavailable, TierserveError
from tierserve.metrics import STORE_READ_BYTES, STORE_READ_SECONDS
from tierserve.storage.base import ByteRange, ObjectInfo, Publication, validate_key

if TYPE_CHECKING:
    from obstore import ObjectMeta
    from obstore.store import ClientConfig, RetryConfig, S3Config
    from obstore.store import ObjectStore as Client

#: URL schemes served by this store (abfs[s]://container@account.dfs.core.windows.net/prefix is Azure too).
SCHEMES = frozenset({"s3", "gs", "az", "abfs", "abfss"})
#: Seconds a client is told to wait when the store did not answer.
RETRY_AFTER = 5
#: Ranges of one read closer than this (bytes) share a GET. Tiles of neighbouring rows of a region lie
#: 20-300 KiB apart in a level, and at 1 MiB (obstore's default) a region fetched 3-16 times the bytes of
#: its tiles; at 64 KiB it fetches exactly its tiles, in one round of up to 5 concurrent GETs (bench.store).
COALESCE = 64 * 1024
#: Bytes per chunk of a streamed download (at least; the last chunk may be shorter).
DOWNLOAD_CHUNK = 8 * 1024 * 1024
#: The environment variables that set an S3 endpoint, most specific first.
ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_ENDPOINT")

_STATUS = re.compile(r"status code: (\d{3})(?: ([A-Za-z][A-Za-z -]*[a-z]))?")
_RETRIES = re.compile(r"after (\d+) retries")
_HTTP_KIND = re.compile(r"HttpError \{\s*kind: (\w+)")
_HTTP_REASONS = {
    "Timeout": "timed out",
    "Connect": "connection failed",
    "Request": "connection dropped",
    "Interrupted": "connection dropped",
    "Decode": "answer cut off",
}


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Retry and timeout settings, in seconds.

    `max_retries` and `retry_timeout` bound the retries of one request: none is started after
    `retry_timeout` from the first attempt (the last attempt may then run for up to its own timeout).
    `read_timeout` bounds each ranged GET, `write_timeout` each other request (a PUT or an upload
    part of up to 5 MiB, a HEAD, a LIST page, a DELETE). Backoff starts at `initial_backoff` and
    doubles up to `max_backoff`, with full jitter.
    """

    max_retries: int = 5
    retry_timeout: float = 10.0
    connect_timeout: float = 2.0
    read_timeout: float = 5.0
    write_timeout: float = 120.0
    initial_backoff: float = 0.1
    max_backoff: float = 2.0

    def retry_config(self) -> RetryConfig:
        return {
            "max_retries": self.max_retries,
            "retry_timeout": timedelta(seconds=self.retry_timeout),
            "backoff": {
                "init_backoff": timedelta(seconds=self.initial_backoff),
                "max_backoff": timedelta(seconds=self.max_backoff),
                "base": 2,
            },
        }

    def client_options(self, timeout: float, allow_http: bool) -> ClientConfig:
        return {
            "allow_http": allow_http,
            "connect_timeout": timedelta(seconds=self.connect_timeout),
            "timeout": timedelta(seconds=timeout),
        }


class ObjectFile:
    """A stored object read by byte ranges; opening it does no I/O."""

    def __init__(self, store: ObjectStore, info: ObjectInfo) -> None:
        self._store = store
        self._info = info

    @property
    def info(self) -> ObjectInfo:
        return self._info

    @property
    def local_path(self) -> None:
        return None

    def read_ranges(self, ranges: Sequence[ByteRange]) -> list[bytes]:
        return self._store.read(self._info, ranges)


class ObjectStore:
    """Keys under the prefix of an `s3://`, `gs://` or `az://` URL; scratch files in a local folder.

    Versions are the objects' ETags (the store's version id where there is no ETag). `name` is the
    URL without credentials, query or trailing slash. Build one with `from_url`.
    """

    def __init__(self, name: str, reader: Client, writer: Client, scratch: Path, coalesce: int = COALESCE) -> None:
        self.name = name
        self._reader = reader
        self._writer = writer
        self._scratch = scratch
        self._coalesce = coalesce
        backend = urlsplit(name).scheme
        self._read_seconds = STORE_READ_SECONDS.labels(backend)
        self._read_bytes = STORE_READ_BYTES.labels(backend)

    @classmethod
    def from_url(
        cls,
        url: str,
        scratch: Path,
        *,
        timeouts: Timeouts = Timeouts(),
        coalesce: int = COALESCE,
        environ: Mapping[str, str] | None = None,
    ) -> ObjectStore:
        """The store at `url` ("s3://bucket/prefix", "gs://bucket/prefix" or "az://container/prefix").

        `scratch` is the local folder for ingest scratch files. `coalesce` (bytes): ranges of one read
        closer than this share a GET. `environ` (default `os.environ`) supplies the AWS_* variables.
        Raises `ValueError` for another scheme or a URL without bucket.
        """
        name = public_name(url)
        env = os.environ if environ is None else environ
        config = _s3_config(env) if urlsplit(url).scheme == "s3" else None
        allow_http = any(env.get(variable, "").startswith("http://") for variable in ENDPOINT_VARIABLES)

        def client(timeout: float) -> Client:
            return obstore.store.from_url(
                url,
                config=config,
                client_options=timeouts.client_options(timeout, allow_http),
                retry_config=timeouts.retry_config(),
            )

        return cls(name, client(timeouts.read_timeout), client(timeouts.write_timeout), scratch, coalesce)

    # the read side

    def open(self, info: ObjectInfo) -> ObjectFile:
        validate_key(info.key)
        return ObjectFile(self, info)

    def read(self, info: ObjectInfo, ranges: Sequence[ByteRange]) -> list[bytes]:
        """The bytes of `ranges` of the object `info` in one round of GETs; zero-length ranges cost nothing.

        A range ending past the recorded size, or data shorter than asked for, raises
        `StorageError("stored pyramid is truncated")`.
        """
        if any(offset < 0 or length < 0 for offset, length in ranges):
            raise ValueError(f"negative byte range in {list(ranges)}")
        if any(offset + length > info.size for offset, length in ranges):
            raise StorageError("stored pyramid is truncated")
        wanted = [(offset, length) for offset, length in ranges if length]
        if not wanted:
            return [b"" for _ in ranges]
        started = time.perf_counter()
        try:
            with self._translated_errors():
                fetched = obstore.get_ranges(
                    self._reader,
                    info.key,
                    starts=[offset for offset, _ in wanted],
                    lengths=[length for _, length in wanted],
                    coalesce=self._coalesce,
                )
        finally:
            self._read_seconds.observe(time.perf_counter() - started)
        chunks = iter(bytes(chunk) for chunk in fetched)
        result = [next(chunks) if length else b"" for _, length in ranges]
        self._read_bytes.inc(sum(map(len, result)))
        if any(len(chunk) != length for chunk, (_, length) in zip(result, ranges, strict=True)):
            raise StorageError("stored pyramid is truncated")
        return result

    def download(self, key: str, target: Path) -> None:
        """Copy the object `key` (any object name, not only tierserve's keys) to the file `target`,
        streamed in chunks of `DOWNLOAD_CHUNK` bytes.

        Raises `FileNotFoundError` when there is no such object, `StoreUnavailable` or `StorageError`
        as reads do, and `StorageError` when fewer bytes arrive than the store stated.
        """
        try:
            result = obstore.get(self._reader, key)
            with target.open("wb") as out:
                for chunk in result.stream(min_chunk_size=DOWNLOAD_CHUNK):
                    out.write(chunk)
                written = out.tell()
        except FileNotFoundError:
            raise
        except BaseError as exc:
            raise translate(exc, self.name) from exc
        stated = result.meta["size"]
        if written != stated:
            raise StorageError(f"object {key} in {self.name} arrived cut short ({written} of {stated} bytes)")

    def stat(self, key: str) -> ObjectInfo:
        with self._translated_errors():
            return _info(key, obstore.head(self._writer, validate_key(key)))

    # the write side

    def scratch_root(self) -> Path:
        self._scratch.mkdir(parents=True, exist_ok=True)
        return self._scratch

    @contextmanager
    def publish(self, key: str, scratch: Path) -> Iterator[Publication]:
        publication = Publication(validate_key(key), scratch / f"{uuid.uuid4().hex}.part")
        try:
            yield publication
            size = publication.path.stat().st_size
            with self._translated_errors():
                result = obstore.put(self._writer, key, publication.path, mode="overwrite")
            version = result["e_tag"] or result["version"]
            publication.info = ObjectInfo(key, size, version) if version else self.stat(key)
        finally:
            publication.path.unlink(missing_ok=True)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Objects whose key starts with `prefix` (a plain string prefix), in key order.

        Objects whose names are not valid keys (not written by tierserve) are left out.
        """
        folder = prefix.rpartition("/")[0]  # obstore lists whole path segments
        with self._translated_errors():
            pages = iter(obstore.list(self._writer, folder or None))
        while True:
            with self._translated_errors():
                page = next(pages, None)
            if page is None:
                return
            for meta in page:
                if meta["path"].startswith(prefix) and _is_key(meta["path"]):
                    yield _info(meta["path"], meta)

    def delete(self, key: str) -> None:
        with self._translated_errors(), suppress(FileNotFoundError):
            obstore.delete(self._writer, validate_key(key))

    @contextmanager
    def _translated_errors(self) -> Iterator[None]:
        """obstore's errors as domain errors naming this store (the original is chained)."""
        try:
            yield
        except (BaseError, FileNotFoundError) as exc:
            raise translate(exc, self.name) from exc
        except BaseException as exc:
            if type(exc).__name__ != "PanicException":
                raise
            # obstore panics slicing a coalesced GET that came back shorter than the ranges in it
            raise StorageError("stored pyramid is truncated") from exc


def public_name(url: str) -> str:
    """`url` without credentials, query, fragment or trailing slash; ValueError for another scheme.

    The user part of an `abfs[s]://container@account...` URL names the container and is kept.
    """
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES or not parts.hostname:
        raise ValueError(f"object store URL must be s3://, gs:// or az://bucket[/prefix], not {url!r}")
    container = f"{parts.username}@" if parts.scheme.startswith("abfs") and parts.username else ""
    return f"{parts.scheme}://{container}{parts.hostname}{parts.path.rstrip('/')}"


def translate(exc: BaseException, store: str) -> TierserveError:
    """The domain error for an obstore error raised by the store named `store`.

    Missing object -> "stored pyramid is missing"; 416 -> "truncated"; 5xx, timeouts and failed or
    dropped connections (retried already) -> `StoreUnavailable`; a refused request -> `StorageError`.
    """
    if isinstance(exc, FileNotFoundError):
        return StorageError("stored pyramid is missing")
    if isinstance(exc, PermissionDeniedError | UnauthenticatedError):
        return StorageError(f"object store {store} refused access")
    text = str(exc)
    status = _STATUS.search(text)
    code = int(status.group(1)) if status else None
    if code == 416:
        return StorageError("stored pyramid is truncated")
    if code is not None and code < 500:
        return StorageError(f"object store {store} refused the request (HTTP {code})")
    reason = f"HTTP {' '.join(filter(None, status.groups()))}" if status else _transport_reason(text)
    retries = _RETRIES.search(text)
    if retries:
        reason += f" (after {retries.group(1)} retries)"
    return StoreUnavailable(f"object store {store} did not answer: {reason}", retry_after=RETRY_AFTER)


def _transport_reason(text: str) -> str:
    """What went wrong below HTTP, from the `HttpError { kind: ... }` in the text of an obstore error."""
    kind = _HTTP_KIND.search(text)
    return _HTTP_REASONS.get(kind.group(1) if kind else "", "request failed")


def _s3_config(env: Mapping[str, str]) -> S3Config:
    """Endpoint and credentials from the AWS_* variables of `env` (obstore reads the others itself)."""
    config: S3Config = {}
    if endpoint := next((env[variable] for variable in ENDPOINT_VARIABLES if env.get(variable)), None):
        config["endpoint"] = endpoint
    if value := env.get("AWS_ACCESS_KEY_ID"):
        config["access_key_id"] = value
    if value := env.get("AWS_SECRET_ACCESS_KEY"):
        config["secret_access_key"] = value
    if value := env.get("AWS_SESSION_TOKEN"):
        config["session_token"] = value
    if value := env.get("AWS_REGION"):
        config["region"] = value
    return config


def _info(key: str, meta: ObjectMeta) -> ObjectInfo:
    version = meta["e_tag"] or meta["version"]
    if version is None:
        raise StorageError(f"stored object {key} has neither ETag nor version")
    return ObjectInfo(key, meta["size"], version, meta["last_modified"].timestamp())


def _is_key(key: str) -> bool:
    try:
        validate_key(key)
    except ValueError:
        return False
    return True

"""Opening a store from its URL: `file:///path` (a local directory) or an object store URL."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

from tierserve.storage.base import Store
from tierserve.storage.local import LocalStore

#: URL schemes of the object stores obstore reaches with the same code.
OBJECT_STORE_SCHEMES = frozenset({"s3", "gs", "az", "abfs", "abfss"})


def store_url_scheme(url: str) -> str:
    """The scheme of a valid store URL; raises `ValueError` saying what is expected."""
    parsed = urlparse(url)
    if parsed.scheme == "file" and parsed.netloc in ("", "localhost") and parsed.path.startswith("/"):
        return "file"
    if parsed.scheme in OBJECT_STORE_SCHEMES and parsed.netloc:
        return parsed.scheme
    raise ValueError("expected file:///absolute/path, s3://bucket[/prefix], gs://bucket[/prefix] or az://container")


def open_store(url: str, data_dir: Path, retry_timeout: float = 10.0, coalesce: int | None = None) -> Store:
    """The store at `url`; object stores keep ingest scratch under `data_dir/scratch`, retry a failing
    request for at most `retry_timeout` seconds and merge ranges closer than `coalesce` bytes (default
    `object_store.COALESCE`).

    Raises `ValueError` for a URL that names no store.
    """
    if store_url_scheme(url) == "file":
        return LocalStore(Path(unquote(urlparse(url).path)))
    from tierserve.storage.object_store import COALESCE, ObjectStore, Timeouts

    timeouts = Timeouts(retry_timeout=retry_timeout)
    return ObjectStore.from_url(url, data_dir / "scratch", timeouts=timeouts, coalesce=coalesce or COALESCE)

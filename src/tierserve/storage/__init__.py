"""Where pyramid files live. Readers and the ingest pipeline talk to the protocols in `base` only."""

from tierserve.storage.base import (
    ByteRange,
    ObjectInfo,
    Publication,
    Store,
    StoredFile,
    StoreReader,
    StoreWriter,
    validate_key,
)
from tierserve.storage.local import LocalStore, local_file
from tierserve.storage.scratch import run_scratch
from tierserve.storage.urls import open_store, store_url_scheme

__all__ = [
    "ByteRange",
    "LocalStore",
    "ObjectInfo",
    "Publication",
    "Store",
    "StoreReader",
    "StoreWriter",
    "StoredFile",
    "local_file",
    "open_store",
    "run_scratch",
    "store_url_scheme",
    "validate_key",
]

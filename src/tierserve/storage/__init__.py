"""Where pyramid files live. The pipeline talks to the `Store` protocol only."""

from tierserve.storage.base import Store, validate_key
from tierserve.storage.local import LocalStore

__all__ = ["LocalStore", "Store", "validate_key"]

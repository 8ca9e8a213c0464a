"""Domain exceptions. None of them knows about HTTP; `tierserve.api.errors` maps them to statuses.

TierserveError
 ├─ InvalidRequest            a parameter is malformed or out of range
 │   ├─ RegionOutsideImage    the requested region does not touch the image
 │   └─ LimitExceeded         the request is larger than a configured limit
 ├─ NotFound
 │   ├─ ImageNotFound         no image with that id (of the endpoint's model)
 │   └─ LayerNotFound         the image has no layer for the requested view
 ├─ Unavailable               the server is too busy or a render ran out of time (retry later)
 │   └─ StoreUnavailable      the object store did not answer, even after retries
 ├─ StorageError              a stored pyramid is missing or unreadable (server fault)
 ├─ EncodeFailed              the output encoder failed on pixels read fine (server fault)
 └─ IngestError               a manifest entry cannot be ingested
     └─ ManifestError         the manifest itself is invalid
"""

from __future__ import annotations


class TierserveError(Exception):
    """Base class: `message` is safe to show to a client."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequest(TierserveError):
    """A request parameter is malformed, conflicting or out of range."""


class RegionOutsideImage(InvalidRequest):
    """The requested region lies entirely outside the stored image."""


class LimitExceeded(InvalidRequest):
    """The request asks for more than a configured limit allows; the message names the limit, `limit` is
    the setting's name (counted in the metrics)."""

    def __init__(self, message: str, limit: str) -> None:
        super().__init__(message)
        self.limit = limit


class Unavailable(TierserveError):
    """Temporarily unable to serve: too many renders waiting, or the render deadline passed; `limit` is the
    name of the setting that refused (counted in the metrics)."""

    def __init__(self, message: str, retry_after: int, limit: str) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.limit = limit


class StoreUnavailable(Unavailable):
    """The object store kept failing (throttling, timeouts, dropped connections) after its retries
    (`store_retry_timeout`).

    The message names the store (e.g. "object store s3://bucket/prefix did not answer: timed out").
    """

    def __init__(self, message: str, retry_after: int = 5) -> None:
        super().__init__(message, retry_after, "store_retry_timeout")


class NotFound(TierserveError):
    """Something addressed by the request does not exist."""


class ImageNotFound(NotFound):
    """No image with the requested id."""


class LayerNotFound(NotFound):
    """The image exists but has no layer for the requested view."""


class StorageError(TierserveError):
    """A stored file is missing or cannot be decoded; the message names the image, not the path."""


class EncodeFailed(TierserveError):
    """The output encoder failed on pixels that were read fine; the message names the encoder's reason."""


class IngestError(TierserveError):
    """An entry of an ingest manifest cannot be ingested; the message names the entry."""


class ManifestError(IngestError):
    """The manifest file is missing, unparsable or fails validation."""

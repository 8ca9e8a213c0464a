"""Domain exceptions. None of them knows about HTTP; `tierserve.api.errors` maps them to statuses.

TierserveError
 ├─ InvalidRequest            a parameter is malformed or out of range
 │   └─ RegionOutsideImage    the requested region does not touch the image
 ├─ NotFound
 │   ├─ ImageNotFound         no image with that id (of the endpoint's model)
 │   └─ LayerNotFound         the image has no layer for the requested view
 ├─ StorageError              a stored pyramid is missing or unreadable (server fault)
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


class NotFound(TierserveError):
    """Something addressed by the request does not exist."""


class ImageNotFound(NotFound):
    """No image with the requested id."""


class LayerNotFound(NotFound):
    """The image exists but has no layer for the requested view."""


class StorageError(TierserveError):
    """A stored file is missing or cannot be decoded; the message names the image, not the path."""


class IngestError(TierserveError):
    """An entry of an ingest manifest cannot be ingested; the message names the entry."""


class ManifestError(IngestError):
    """The manifest file is missing, unparsable or fails validation."""

"""The web viewer's files: plain HTML, CSS and JavaScript modules, no build step (docs/iiif.md#viewer).

`STATIC` holds ``index.html``, ``viewer.css``, ``js/`` and ``vendor/openseadragon/`` (OpenSeadragon
5.0.1 from the npm registry, unmodified, with its licence; brought in and checked by
``scripts/vendor_openseadragon.py``). `tierserve.api.routes.viewer` serves them at ``/viewer/``.
The page reads only tierserve's own documents: the IIIF Presentation collection and manifests, the
IIIF Image API, and it shows (never fetches) Allen download URLs.
"""

from __future__ import annotations

from pathlib import Path

STATIC = Path(__file__).resolve().parent / "static"

__all__ = ["STATIC"]

"""IIIF: the Image API and the Presentation API documents (no HTTP in this package)."""

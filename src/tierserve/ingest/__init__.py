"""Ingest: read a manifest, build one pyramidal OME-TIFF per image layer, record rows atomically."""

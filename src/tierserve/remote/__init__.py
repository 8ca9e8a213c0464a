"""Clients of other Allen-compatible servers: the shared HTTP client, selections, mirror and bulk download."""

"""The web layer: parses and validates requests, calls the download service, maps errors to statuses."""

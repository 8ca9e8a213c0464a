"""The demo collection: realistic, procedurally generated section images (no downloads)."""

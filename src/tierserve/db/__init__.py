"""Metadata: SQLAlchemy models named after the Allen data model, migrations, and read helpers."""

"""The per-process memory of image records, against the real database of the synthetic collection."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event

from tests.conftest import Collection
from tierserve.db.database import Database
from tierserve.db.repository import ImageRecords, load_image
from tierserve.errors import ImageNotFound


class CountingDatabase:
    """The collection's database, counting the SQL statements it executes."""

    def __init__(self, url: str) -> None:
        self.database = Database(url)
        self.statements = 0
        event.listen(self.database.engine, "before_cursor_execute", self._count)

    def _count(self, *_args: Any) -> None:
        self.statements += 1


@pytest.fixture
def db(collection: Collection) -> Iterator[CountingDatabase]:
    counting = CountingDatabase(collection.settings.resolved_database_url)
    yield counting
    counting.database.dispose()


def test_a_remembered_record_costs_no_query_and_equals_a_fresh_one(db: CountingDatabase) -> None:
    images = ImageRecords(db.database, max_age=60)
    first = images.get(2001, "SectionImage")
    queries = db.statements
    assert queries > 0
    assert images.get(2001, "SectionImage") == first
    assert images.get(2001) == first
    assert db.statements == queries
    with db.database.session() as session:
        assert load_image(session, 2001, "SectionImage") == first


def test_the_model_is_still_checked_on_a_remembered_record(db: CountingDatabase) -> None:
    images = ImageRecords(db.database, max_age=60)
    images.get(3001, "AtlasImage")
    with pytest.raises(ImageNotFound, match="no SectionImage with id 3001; that id belongs to the AtlasImage model"):
        images.get(3001, "SectionImage")


def test_unknown_ids_are_asked_for_every_time(db: CountingDatabase) -> None:
    images = ImageRecords(db.database, max_age=60)
    for expected in (1, 2):
        before = db.statements
        with pytest.raises(ImageNotFound, match="no SubImage with id 999"):
            images.get(999)
        assert db.statements > before, f"attempt {expected} did not query"


def test_records_expire_after_max_age(db: CountingDatabase) -> None:
    images = ImageRecords(db.database, max_age=0.05)
    images.get(2001)
    queries = db.statements
    time.sleep(0.1)
    images.get(2001)
    assert db.statements > queries


def test_max_age_zero_always_queries(db: CountingDatabase) -> None:
    images = ImageRecords(db.database, max_age=0)
    images.get(2001)
    queries = db.statements
    images.get(2001)
    assert db.statements > queries


def test_least_recently_used_records_are_dropped_beyond_size(db: CountingDatabase) -> None:
    images = ImageRecords(db.database, max_age=60, size=1)
    images.get(2001)
    images.get(2101)
    queries = db.statements
    images.get(2101)
    assert db.statements == queries
    images.get(2001)
    assert db.statements > queries


def test_remembered_never_queries(db: CountingDatabase) -> None:
    images = ImageRecords(db.database, max_age=60)
    assert images.remembered(2001) is None
    assert db.statements == 0
    record = images.get(2001)
    queries = db.statements
    assert images.remembered(2001, "SectionImage") == record
    with pytest.raises(ImageNotFound, match="that id belongs to the SectionImage model"):
        images.remembered(2001, "AtlasImage")
    assert db.statements == queries

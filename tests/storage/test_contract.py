"""The storage contract, run against every store: LocalStore, MemoryStore and ObjectStore on a moto S3 server."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tierserve.errors import StorageError
from tierserve.storage import ObjectInfo, Store

SIZE = 300_000
DATA = random.Random(7).randbytes(SIZE)


def publish(store: Store, key: str, data: bytes) -> ObjectInfo:
    with store.publish(key, store.scratch_root()) as publication:
        publication.path.write_bytes(data)
    assert publication.info is not None
    return publication.info


def read_all(store: Store, info: ObjectInfo) -> bytes:
    return store.open(info).read_ranges([(0, info.size)])[0]


def test_publish_makes_the_file_visible_only_on_success(store: Store) -> None:
    scratch = store.scratch_root()
    with store.publish("a/b/file.tif", scratch) as publication:
        assert publication.path.parent == scratch
        publication.path.write_bytes(DATA)
        with pytest.raises(StorageError, match="missing"):
            store.stat("a/b/file.tif")
        assert list(store.list()) == []
    assert publication.info is not None
    assert publication.info == store.stat("a/b/file.tif")
    assert publication.info.key == "a/b/file.tif"
    assert publication.info.size == SIZE
    assert read_all(store, publication.info) == DATA
    assert not publication.path.exists()
    assert list(scratch.iterdir()) == []


def test_a_failed_publish_leaves_nothing(store: Store) -> None:
    scratch = store.scratch_root()
    with pytest.raises(RuntimeError, match="crash"), store.publish("x.tif", scratch) as publication:
        publication.path.write_bytes(b"partial")
        raise RuntimeError("crash while writing")
    assert publication.info is None
    assert not publication.path.exists()
    assert list(scratch.iterdir()) == []
    with pytest.raises(StorageError, match="missing"):
        store.stat("x.tif")
    assert list(store.list()) == []


def test_republishing_replaces_the_content_and_changes_the_version(store: Store) -> None:
    first = publish(store, "k.tif", b"old content")
    assert store.stat("k.tif") == first
    second = publish(store, "k.tif", b"new content, longer")
    assert second.version != first.version
    assert store.stat("k.tif") == second
    assert read_all(store, second) == b"new content, longer"


def test_open_does_no_io_and_the_first_read_finds_the_file_missing(store: Store) -> None:
    file = store.open(ObjectInfo("never/published.tif", 1000, "v1"))
    assert file.info == ObjectInfo("never/published.tif", 1000, "v1")
    with pytest.raises(StorageError, match="stored pyramid is missing"):
        file.read_ranges([(0, 10)])


def test_read_ranges_returns_the_exact_bytes(store: Store) -> None:
    info = publish(store, "pyramid.tif", DATA)
    ranges = [
        (0, 10),
        (5, 10),  # overlaps the previous range
        (15, 5),  # adjacent to the previous range
        (100_000, 1000),
        (SIZE - 1000, 993),
        (50, 0),  # empty
        (SIZE - 7, 7),  # the very end
        (0, 10),  # repeated
    ]
    assert store.open(info).read_ranges(ranges) == [DATA[offset : offset + length] for offset, length in ranges]
    assert store.open(info).read_ranges([]) == []


@pytest.mark.parametrize("ranges", [[(SIZE - 3, 10)], [(SIZE, 1)], [(0, 10), (SIZE + 5, 1)]])
def test_a_range_past_the_end_is_truncated(store: Store, ranges: list[tuple[int, int]]) -> None:
    info = publish(store, "short.tif", DATA)
    with pytest.raises(StorageError, match="stored pyramid is truncated"):
        store.open(info).read_ranges(ranges)


def test_list_yields_the_published_files_by_prefix(store: Store) -> None:
    infos = {key: publish(store, key, key.encode()) for key in ["a/one.tif", "a/two.tif", "ab.tif", "b/three.tif"]}
    (store.scratch_root() / "leftover.part").write_bytes(b"scratch is never listed")
    assert sorted(store.list(), key=lambda info: info.key) == sorted(infos.values(), key=lambda info: info.key)
    assert sorted(info.key for info in store.list("a/")) == ["a/one.tif", "a/two.tif"]
    assert sorted(info.key for info in store.list("a")) == ["a/one.tif", "a/two.tif", "ab.tif"]
    assert [info.key for info in store.list("b/th")] == ["b/three.tif"]
    assert list(store.list("c")) == []


def test_delete_removes_and_is_idempotent(store: Store) -> None:
    publish(store, "gone/file.tif", b"data")
    publish(store, "kept.tif", b"data")
    store.delete("gone/file.tif")
    with pytest.raises(StorageError, match="missing"):
        store.stat("gone/file.tif")
    store.delete("gone/file.tif")
    store.delete("never/there.tif")
    assert [info.key for info in store.list()] == ["kept.tif"]


@pytest.mark.parametrize("key", ["", "/abs", "../up", "a/../b", "a//b", "a/./b", "sp ace", "a\\b", "a/"])
def test_invalid_keys_are_refused(store: Store, key: str) -> None:
    with pytest.raises(ValueError, match="invalid store key"):
        store.stat(key)
    with pytest.raises(ValueError, match="invalid store key"):
        store.delete(key)
    with pytest.raises(ValueError, match="invalid store key"), store.publish(key, store.scratch_root()):
        pytest.fail("publish must refuse the key before the block runs")


def test_scratch_root_is_a_folder(store: Store) -> None:
    root = store.scratch_root()
    assert isinstance(root, Path)
    assert root.is_dir()
    assert store.scratch_root() == root

from __future__ import annotations

from pathlib import Path

import pytest

from tierserve.errors import StorageError
from tierserve.storage import LocalStore, validate_key


def published(store: LocalStore, key: str) -> bool:
    return Path(store.locate(key)).is_file()


def test_publish_makes_the_file_visible_only_on_success(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    with store.publish("a/b/file.tif") as scratch:
        scratch.write_bytes(b"data")
        assert not published(store, "a/b/file.tif")
    assert published(store, "a/b/file.tif")
    assert Path(store.locate("a/b/file.tif")).read_bytes() == b"data"
    assert list(store.scratch_dir().iterdir()) == []


def test_failed_publish_leaves_nothing(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    with pytest.raises(RuntimeError), store.publish("x.tif") as scratch:
        scratch.write_bytes(b"partial")
        raise RuntimeError("crash while writing")
    assert not published(store, "x.tif")
    assert list(store.scratch_dir().iterdir()) == []


def test_publish_replaces_an_orphan_atomically(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    for content in (b"old", b"new"):
        with store.publish("k.tif") as scratch:
            scratch.write_bytes(content)
    assert Path(store.locate("k.tif")).read_bytes() == b"new"


def test_version_changes_when_the_file_is_replaced(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    with pytest.raises(StorageError, match="missing"):
        store.version("k.tif")
    with store.publish("k.tif") as scratch:
        scratch.write_bytes(b"old")
    first = store.version("k.tif")
    assert store.version("k.tif") == first
    with store.publish("k.tif") as scratch:
        scratch.write_bytes(b"new")
    assert store.version("k.tif") != first


def test_clean_scratch_removes_leftovers(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    (store.scratch_dir() / "dead.part").write_bytes(b"x")
    (store.scratch_dir() / "levels-x").mkdir()
    assert store.clean_scratch() == 2
    assert list(store.scratch_dir().iterdir()) == []


@pytest.mark.parametrize("key", ["", "/abs", "../up", "a/../b", "a//b", "a/./b", "sp ace", "a\\b"])
def test_invalid_keys_are_refused(key: str) -> None:
    with pytest.raises(ValueError, match="invalid store key"):
        validate_key(key)

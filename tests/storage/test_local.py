"""What is particular to LocalStore (the shared behaviour is in test_contract.py): files are plain files under
the root, native readers may open them, and publishing renames a scratch file from inside the root."""

from __future__ import annotations

from pathlib import Path

from tierserve.storage import LocalStore


def test_published_files_are_plain_files_under_the_root(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    with store.publish("a/b/file.tif", store.scratch_root()) as publication:
        publication.path.write_bytes(b"data")
    assert (tmp_path / "a" / "b" / "file.tif").read_bytes() == b"data"
    assert publication.info is not None
    assert store.open(publication.info).local_path == str(tmp_path / "a" / "b" / "file.tif")


def test_publishing_renames_the_scratch_file_from_inside_the_root(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    scratch = store.scratch_root()
    assert scratch == tmp_path / ".scratch"
    with store.publish("k.tif", scratch) as publication:
        publication.path.write_bytes(b"data")
        scratch_inode = publication.path.stat().st_ino
    assert (tmp_path / "k.tif").stat().st_ino == scratch_inode  # renamed, not copied
    assert list(scratch.iterdir()) == []


def test_republishing_the_same_bytes_still_changes_the_version(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    versions = []
    for _ in range(2):
        with store.publish("k.tif", store.scratch_root()) as publication:
            publication.path.write_bytes(b"same")
        assert publication.info is not None
        versions.append(publication.info.version)
    assert versions[0] != versions[1]

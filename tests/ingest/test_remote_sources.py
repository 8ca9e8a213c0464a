"""Manifest sources in an S3 bucket (moto on loopback, behind a fault proxy) ingest exactly as the same
files on disk do, pass the same integrity checks, and fail by name when missing or unreachable."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import pyvips
import tifffile

from tests.ingest.test_pipeline import ingest, rows, stored_level0, write_manifest
from tests.s3 import FaultProxy, MotoServer, aws_environment, fault_proxy
from tierserve.errors import IngestError
from tierserve.ingest.source_access import download

RGB = (np.indices((300, 420, 3)).sum(0) * 7 % 256).astype(np.uint8)
MASK = np.where(np.indices((300, 420)).sum(0) % 90 < 45, 255, 0).astype(np.uint8)


def _tiff_bytes(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    tifffile.imwrite(out, array, photometric="rgb", tile=(128, 128), compression="zlib")
    return out.getvalue()


def _png_bytes(array: np.ndarray) -> bytes:
    return bytes(pyvips.Image.new_from_array(array).write_to_buffer(".png"))


@dataclass
class Bucket:
    name: str
    moto: MotoServer
    proxy: FaultProxy

    def url(self, key: str) -> str:
        return f"s3://{self.name}/{key}"


@pytest.fixture(scope="module")
def raw_bucket() -> Iterator[Bucket]:
    """A bucket of raw sources: `slides/a.tif` (tiled, deflate), `masks/a.png`, and a truncated copy of the slide."""
    with MotoServer() as moto, fault_proxy(moto.url) as proxy, aws_environment(proxy.url):
        name = f"raw-{uuid.uuid4().hex[:12]}"
        moto.create_bucket(name)
        slide = _tiff_bytes(RGB)
        moto.put_object(name, "slides/a.tif", slide)
        moto.put_object(name, "slides/cut.tif", slide[: len(slide) * 6 // 10])
        moto.put_object(name, "masks/a.png", _png_bytes(MASK))
        yield Bucket(name, moto, proxy)


def _entry(source: str, mask: str) -> dict[str, object]:
    return {"id": 41, "section_number": 1, "source": source, "layers": [{"kind": "expression", "source": mask}]}


def test_bucket_sources_store_what_the_same_files_on_disk_store(tmp_path: Path, raw_bucket: Bucket) -> None:
    local = tmp_path / "local-src"
    local.mkdir()
    (local / "a.tif").write_bytes(_tiff_bytes(RGB))
    (local / "a.png").write_bytes(_png_bytes(MASK))
    from_disk = ingest(tmp_path / "disk", write_manifest(local, [_entry("a.tif", "a.png")]))
    manifest = write_manifest(tmp_path, [_entry(raw_bucket.url("slides/a.tif"), raw_bucket.url("masks/a.png"))])
    from_bucket = ingest(tmp_path / "bucket", manifest)

    assert from_disk.ingested == from_bucket.ingested == [41], from_bucket.failed
    for kind in ("primary", "expression"):
        expected = stored_level0(tmp_path / "disk", 41, kind)
        assert np.array_equal(stored_level0(tmp_path / "bucket", 41, kind), expected), kind
    assert not list((tmp_path / "bucket").rglob("source-*")), "downloaded sources are removed with the scratch"


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("slides/missing.tif", "does not exist"),
        ("slides/cut.tif", "is truncated: tile"),
    ],
)
def test_a_missing_or_truncated_object_is_refused_by_name(
    tmp_path: Path, raw_bucket: Bucket, key: str, expected: str
) -> None:
    source = raw_bucket.url(key)
    report = ingest(tmp_path / "data", write_manifest(tmp_path, [_entry(source, raw_bucket.url("masks/a.png"))]))
    [(entry, message)] = report.failed
    assert entry == "section_data_sets[0].images[0] (id 41)"
    assert message.startswith(f"source {source} ") and expected in message, message
    assert rows(tmp_path / "data") == []


def test_a_bucket_that_does_not_answer_fails_the_entry_after_retries(tmp_path: Path, raw_bucket: Bucket) -> None:
    source = raw_bucket.url("slides/a.tif")
    raw_bucket.proxy.reset()
    raw_bucket.proxy.drop(1000)
    try:
        report = ingest(tmp_path / "data", write_manifest(tmp_path, [_entry(source, raw_bucket.url("masks/a.png"))]))
        attempts = len(raw_bucket.proxy.requests)
    finally:
        raw_bucket.proxy.reset()
    [(_, message)] = report.failed
    assert message.startswith(f"source {source} could not be fetched: object store s3://{raw_bucket.name} did not")
    assert attempts > 1  # retried before giving up


@pytest.mark.parametrize("url", ["s3://bucket-only", "s3://bucket/folder/", "s3:///key.tif"])
def test_a_url_that_names_no_object_is_refused(tmp_path: Path, url: str) -> None:
    with pytest.raises(IngestError, match="names no object"):
        download(url, tmp_path)

"""What is particular to ObjectStore (the shared behaviour is in test_contract.py): the requests it makes, as
counted by the fault proxy in front of moto, its retries of throttling and dropped connections, and giving
up in time."""

from __future__ import annotations

import dataclasses
import random
import time
from pathlib import Path

import pytest

from tests.s3 import FaultProxy
from tests.storage.conftest import TEST_TIMEOUTS
from tierserve.errors import StorageError, StoreUnavailable, Unavailable
from tierserve.storage import ObjectInfo
from tierserve.storage.object_store import ObjectStore, public_name

MB = 1024 * 1024
Big = tuple[ObjectInfo, bytes]


def publish(store: ObjectStore, key: str, data: bytes) -> ObjectInfo:
    with store.publish(key, store.scratch_root()) as publication:
        publication.path.write_bytes(data)
    assert publication.info is not None
    return publication.info


def scattered_ranges(count: int = 20, length: int = 1024, size: int = 4 * MB) -> list[tuple[int, int]]:
    """`count` ranges of `length` bytes at distinct, sorted, random offsets (a fixed sample)."""
    offsets = sorted(random.Random(5).sample(range(0, size - length, length), count))
    return [(offset, length) for offset in offsets]


def fates(proxy: FaultProxy) -> list[tuple[str, str]]:
    return [(request.method, request.fate) for request in proxy.requests]


def with_timeouts(bucket: str, tmp_path: Path, **changes: float) -> ObjectStore:
    """An ObjectStore on `s3://<bucket>/pyramids` with TEST_TIMEOUTS changed by `changes`."""
    timeouts = dataclasses.replace(TEST_TIMEOUTS, **changes)
    return ObjectStore.from_url(f"s3://{bucket}/pyramids", tmp_path / "scratch", timeouts=timeouts)


@pytest.fixture
def big(object_store: ObjectStore, proxy: FaultProxy) -> Big:
    """A published 4 MB object and its bytes; the proxy's counters start from zero."""
    data = random.Random(3).randbytes(4 * MB)
    info = publish(object_store, "big.tif", data)
    proxy.reset()
    return info, data


def test_name_is_the_url_without_credentials() -> None:
    assert public_name("s3://bucket/prefix/") == "s3://bucket/prefix"
    assert public_name("s3://key:secret@bucket/a/b?versionId=1#x") == "s3://bucket/a/b"
    assert public_name("gs://bucket") == "gs://bucket"
    assert public_name("az://container/prefix") == "az://container/prefix"
    assert public_name("abfss://box@acct.dfs.core.windows.net/p/") == "abfss://box@acct.dfs.core.windows.net/p"
    for url in ["file:///tmp/x", "http://host/bucket", "s3:///prefix", "bucket/prefix", "memory:///"]:
        with pytest.raises(ValueError, match="object store URL"):
            public_name(url)


def test_endpoint_and_credentials_come_from_the_environment(
    object_store: ObjectStore, proxy: FaultProxy, bucket: str
) -> None:
    info = publish(object_store, "k.tif", b"data")
    assert fates(proxy) == [("PUT", "passed")]  # went to AWS_ENDPOINT_URL, the plain-http proxy
    assert proxy.requests[0].target == f"/{bucket}/pyramids/k.tif"
    assert object_store.name == f"s3://{bucket}/pyramids"
    assert info.version.strip('"') and info.size == 4


def test_keys_live_under_the_url_prefix(object_store: ObjectStore, bucket: str, tmp_path: Path) -> None:
    publish(object_store, "a/k.tif", b"data")
    whole_bucket = ObjectStore.from_url(f"s3://{bucket}", tmp_path / "other", timeouts=TEST_TIMEOUTS)
    assert [info.key for info in whole_bucket.list()] == ["pyramids/a/k.tif"]
    assert [info.key for info in object_store.list()] == ["a/k.tif"]


@pytest.mark.parametrize(("coalesce", "expected_gets"), [(MB, 1), (0, 20)])
def test_scattered_ranges_are_read_in_one_round_of_gets(
    big: Big, proxy: FaultProxy, bucket: str, tmp_path: Path, coalesce: int, expected_gets: int
) -> None:
    info, data = big
    store = ObjectStore.from_url(f"s3://{bucket}/pyramids", tmp_path / "s", timeouts=TEST_TIMEOUTS, coalesce=coalesce)
    ranges = scattered_ranges()
    assert len(ranges) == 20
    file = store.open(info)
    assert proxy.requests == []  # opening does no I/O
    assert file.read_ranges(ranges) == [data[offset : offset + length] for offset, length in ranges]
    assert set(proxy.counts) == {"GET"}  # no HEAD, no LIST
    assert proxy.counts["GET"] <= len(ranges)
    # obstore coalesces ranges less than `coalesce` bytes apart (default 1 MiB): one GET for all 20 here
    assert proxy.counts["GET"] == expected_gets


def test_a_missing_object_is_one_get(object_store: ObjectStore, proxy: FaultProxy) -> None:
    with pytest.raises(StorageError, match="stored pyramid is missing"):
        object_store.open(ObjectInfo("nothing.tif", 100, '"v"')).read_ranges([(0, 10), (50, 10)])
    assert proxy.counts == {"GET": 1}


def test_an_object_shorter_than_recorded_is_truncated(object_store: ObjectStore) -> None:
    info = publish(object_store, "short.tif", b"0123456789")
    recorded = ObjectInfo("short.tif", 100, info.version)  # replaced behind the record's back
    file = object_store.open(recorded)
    assert file.read_ranges([(0, 4), (6, 4)]) == [b"0123", b"6789"]
    with pytest.raises(StorageError, match="stored pyramid is truncated"):
        file.read_ranges([(5, 20)])  # the answer is short
    with pytest.raises(StorageError, match="stored pyramid is truncated"):
        file.read_ranges([(50, 2)])  # 416
    with pytest.raises(StorageError, match="stored pyramid is truncated"):
        file.read_ranges([(0, 2), (50, 2)])  # one coalesced GET, short for the second range


def test_stat_is_one_head(object_store: ObjectStore, proxy: FaultProxy) -> None:
    info = publish(object_store, "k.tif", b"data")
    proxy.reset()
    assert object_store.stat("k.tif") == info
    with pytest.raises(StorageError, match="stored pyramid is missing"):
        object_store.stat("other.tif")
    assert proxy.counts == {"HEAD": 2}


def test_throttling_is_retried(big: Big, object_store: ObjectStore, proxy: FaultProxy) -> None:
    info, data = big
    proxy.slow_down(2)
    assert object_store.open(info).read_ranges([(10, 5)]) == [data[10:15]]
    assert fates(proxy) == [("GET", "slowdown"), ("GET", "slowdown"), ("GET", "passed")]


def test_a_dropped_connection_is_retried(big: Big, object_store: ObjectStore, proxy: FaultProxy) -> None:
    info, data = big
    proxy.drop(1)
    assert object_store.open(info).read_ranges([(4 * MB - 5, 5)]) == [data[-5:]]
    assert fates(proxy) == [("GET", "dropped"), ("GET", "passed")]


def test_retries_are_bounded_in_number(big: Big, object_store: ObjectStore, proxy: FaultProxy) -> None:
    proxy.slow_down(1000)
    with pytest.raises(StoreUnavailable) as caught:
        object_store.open(big[0]).read_ranges([(0, 10)])
    assert caught.value.message == (
        f"object store {object_store.name} did not answer: HTTP 503 Service Unavailable (after 5 retries)"
    )
    assert proxy.counts == {"GET": 1 + TEST_TIMEOUTS.max_retries}


def test_a_store_that_keeps_throttling_gives_up_within_the_retry_timeout(
    big: Big, object_store: ObjectStore, proxy: FaultProxy, bucket: str, tmp_path: Path
) -> None:
    store = with_timeouts(bucket, tmp_path, max_retries=10_000, retry_timeout=1.0)
    proxy.slow_down(1_000_000)
    started = time.monotonic()
    with pytest.raises(StoreUnavailable) as caught:
        store.open(big[0]).read_ranges([(0, 10)])
    elapsed = time.monotonic() - started
    assert 0.9 <= elapsed <= 2.0
    assert isinstance(caught.value, Unavailable)
    assert caught.value.retry_after == 5
    assert caught.value.message.startswith(f"object store {store.name} did not answer: HTTP 503")
    assert proxy.counts["GET"] > 3


def test_a_store_that_does_not_answer_times_out(
    big: Big, object_store: ObjectStore, proxy: FaultProxy, bucket: str, tmp_path: Path
) -> None:
    store = with_timeouts(bucket, tmp_path, read_timeout=0.2, retry_timeout=0.5)
    proxy.delay = 5.0
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match=r"did not answer: timed out \(after \d+ retries\)"):
        store.open(big[0]).read_ranges([(0, 10)])
    assert time.monotonic() - started < 1.5


def test_publishing_is_retried_when_throttled(object_store: ObjectStore, proxy: FaultProxy) -> None:
    proxy.slow_down(2)
    info = publish(object_store, "k.tif", b"data")
    assert fates(proxy) == [("PUT", "slowdown"), ("PUT", "slowdown"), ("PUT", "passed")]
    assert object_store.stat("k.tif") == info


def test_a_failed_publish_sends_nothing(object_store: ObjectStore, proxy: FaultProxy) -> None:
    with pytest.raises(RuntimeError), object_store.publish("k.tif", object_store.scratch_root()) as publication:
        publication.path.write_bytes(b"partial")
        raise RuntimeError("crash")
    assert proxy.requests == []


def test_a_large_file_is_published_by_a_completed_multipart_upload(
    object_store: ObjectStore, proxy: FaultProxy
) -> None:
    data = random.Random(9).randbytes(6 * MB)
    info = publish(object_store, "large.tif", data)
    assert proxy.counts == {"POST": 2, "PUT": 2}  # create, two parts, complete
    assert info == object_store.stat("large.tif")
    assert info.size == 6 * MB
    assert object_store.open(info).read_ranges([(0, 16), (6 * MB - 16, 16)]) == [data[:16], data[-16:]]

"""Storage fixtures: a moto S3 server for the session, a fault proxy and a fresh bucket per test, and every
store of the contract (`store`, parametrized)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.s3 import CREDENTIALS, FaultProxy, MotoServer, fault_proxy
from tierserve.storage import LocalStore, Store
from tierserve.storage.memory import MemoryStore
from tierserve.storage.object_store import ObjectStore, Timeouts

#: Fast retries for tests: a fault costs milliseconds, a store that keeps failing gives up within 2 s.
TEST_TIMEOUTS = Timeouts(max_retries=5, retry_timeout=2.0, initial_backoff=0.01, max_backoff=0.1)
#: AWS variables that would redirect or re-credential the client if the developer's shell had them set.
FOREIGN_AWS_VARIABLES = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_BUCKET")


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    with MotoServer() as server:
        yield server


@pytest.fixture
def proxy(moto_server: MotoServer) -> Iterator[FaultProxy]:
    """A fault proxy in front of the moto server, passing everything through at first."""
    with fault_proxy(moto_server.url) as faults:
        yield faults


@pytest.fixture
def bucket(moto_server: MotoServer) -> str:
    """A new, empty bucket."""
    name = f"tierserve-{uuid.uuid4().hex[:16]}"
    moto_server.create_bucket(name)
    return name


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, proxy: FaultProxy) -> str:
    """Dummy credentials and AWS_ENDPOINT_URL (the proxy) in the environment; returns the endpoint."""
    for variable in FOREIGN_AWS_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    for variable, value in CREDENTIALS.items():
        monkeypatch.setenv(variable, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
    return proxy.url


@pytest.fixture
def object_store(aws_env: str, bucket: str, tmp_path: Path) -> ObjectStore:
    """An `ObjectStore` on `s3://<bucket>/pyramids` reached through the proxy, with fast retries."""
    return ObjectStore.from_url(f"s3://{bucket}/pyramids", tmp_path / "scratch", timeouts=TEST_TIMEOUTS)


@pytest.fixture(params=["local", "memory", "object"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    """Each store of the contract in turn."""
    if request.param == "local":
        return LocalStore(tmp_path / "store")
    if request.param == "memory":
        return MemoryStore(tmp_path / "scratch")
    object_store: ObjectStore = request.getfixturevalue("object_store")
    return object_store

from __future__ import annotations

from collections.abc import Iterator

import httpx2
import pytest
from fastapi.testclient import TestClient


@pytest.fixture(params=["in-process", "loopback"])
def http(request: pytest.FixtureRequest, client: TestClient) -> Iterator[httpx2.Client]:
    """The same requests through the in-process client and through a real server on loopback."""
    if request.param == "in-process":
        yield client
        return
    base = request.getfixturevalue("live_server")
    with httpx2.Client(base_url=base, timeout=30) as live:
        yield live

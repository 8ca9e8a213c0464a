"""/readyz: 200 only when the database and the store answer, 503 naming what failed; probes cached and
never blocking the event loop. /healthz stays the liveness check."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from pathlib import Path

import httpx2
import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from tests.conftest import Collection, free_port, running_server
from tierserve.api.app import create_app
from tierserve.db.database import Database

STORE_READS = ("tierserve_store_read_duration_seconds_count", {"backend": "file"})


def store_reads() -> float:
    return REGISTRY.get_sample_value(*STORE_READS) or 0.0


def test_ready_when_the_database_and_the_store_answer(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"success": True, "database": "ok", "store": "ok"}


def test_an_unreachable_database_is_503_naming_it(collection: Collection, caplog: pytest.LogCaptureFixture) -> None:
    url = f"postgresql+psycopg://tierserve:secret@127.0.0.1:{free_port()}/tierserve"
    settings = collection.settings.model_copy(update={"database_url": url})
    with TestClient(create_app(settings)) as client:
        response = client.get("/readyz")
        assert client.get("/healthz").status_code == 200  # alive all the same
    assert response.status_code == 503
    body = response.json()
    assert body["success"] is False
    assert body["database"] == "OperationalError (details in the log)"
    assert body["store"] == "not probed: the database names no stored file"
    assert body["msg"] == "not ready: database: OperationalError (details in the log)"
    assert "secret" not in response.text
    assert "readiness: the database probe failed" in caplog.text and "Connection refused" in caplog.text


def test_a_database_that_never_answers_times_out_and_the_server_keeps_answering(collection: Collection) -> None:
    """A socket that accepts connections and never answers: the probe gives up after readiness_timeout,
    and while it waits, the worker answers other requests at once."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"postgresql+psycopg://tierserve@127.0.0.1:{silent.getsockname()[1]}/tierserve"
        settings = collection.settings.model_copy(update={"database_url": url, "readiness_timeout": 1.5})
        with running_server(settings) as base:
            answers: list[httpx2.Response] = []
            asker = threading.Thread(target=lambda: answers.append(httpx2.get(f"{base}/readyz", timeout=30)))
            started = time.monotonic()
            asker.start()
            time.sleep(0.2)
            assert httpx2.get(f"{base}/healthz", timeout=30).status_code == 200
            assert asker.is_alive()  # answered while the probe was still waiting
            asker.join(timeout=30)
            waited = time.monotonic() - started
    [response] = answers
    assert response.status_code == 503
    assert response.json()["database"] == "no answer within 1.5 s"
    assert 1.5 <= waited < 6


def test_a_removed_store_is_503_naming_it_once_the_cached_result_expires(
    collection: Collection, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    shutil.copytree(collection.settings.data_dir / "store", store)
    settings = collection.settings.model_copy(update={"store_url": store.as_uri(), "readiness_cache_seconds": 2.0})
    with TestClient(create_app(settings)) as client:
        before = store_reads()
        assert client.get("/readyz").status_code == 200
        assert store_reads() == before + 1  # one small ranged read
        shutil.rmtree(store)
        cached = client.get("/readyz")  # within readiness_cache_seconds: the last probes' result
        assert store_reads() == before + 1
        time.sleep(2.1)
        gone = client.get("/readyz")
    assert cached.status_code == 200
    assert gone.status_code == 503
    assert gone.json() == {
        "success": False,
        "database": "ok",
        "store": "stored pyramid is missing",
        "msg": "not ready: store: stored pyramid is missing",
    }


def test_nothing_ingested_is_ready_without_reading_the_store(collection: Collection, tmp_path: Path) -> None:
    settings = collection.settings.model_copy(update={"data_dir": tmp_path, "database_url": None})
    database = Database(settings.resolved_database_url)
    database.migrate()  # an empty SQLite database
    database.dispose()
    with TestClient(create_app(settings)) as client:
        response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["store"] == "not probed: the database names no stored file"

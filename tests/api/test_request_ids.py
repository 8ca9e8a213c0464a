"""Every answer carries an X-Request-ID (the client's when sane, else a new one), and with
TIERSERVE_LOG_FORMAT=json the workers of `tierserve serve` write one JSON object per log line, the
access log's line of each request carrying the id its answer carried."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx2
import pytest

from tests.api.test_metrics import MISSING, QUERY, TILE
from tests.conftest import Collection, serve_process

NEW_ID = re.compile(r"[0-9a-f]{32}")


@pytest.mark.parametrize(
    ("path", "status"),
    [
        (TILE, 200),
        (MISSING, 404),
        (QUERY, 200),
        ("/iiif/3/2001/full/max/0/default.jpg", 200),
        ("/iiif/3/999999/info.json", 404),
        ("/api/v2/data/query.json?q=" + "x" * 20000, 414),
        ("/no/such/route", 404),
        ("/healthz", 200),
        ("/readyz", 200),
        ("/metrics", 200),
    ],
)
def test_every_answer_carries_a_request_id(http: httpx2.Client, path: str, status: int) -> None:
    first, second = http.get(path), http.get(path)
    assert first.status_code == second.status_code == status
    assert NEW_ID.fullmatch(first.headers["x-request-id"]) and NEW_ID.fullmatch(second.headers["x-request-id"])
    assert first.headers["x-request-id"] != second.headers["x-request-id"]
    kept = http.get(path, headers={"X-Request-ID": "lb-7f3a:42/b"})
    assert kept.headers["x-request-id"] == "lb-7f3a:42/b"


@pytest.mark.parametrize("incoming", ["x" * 129, "two words", "", "tab\there"])
def test_an_insane_request_id_is_replaced(http: httpx2.Client, incoming: str) -> None:
    response = http.get("/healthz", headers={"X-Request-ID": incoming})
    assert NEW_ID.fullmatch(response.headers["x-request-id"]), response.headers["x-request-id"]
    assert response.headers.get_list("x-request-id") == [response.headers["x-request-id"]]


def test_an_id_of_128_characters_is_kept(http: httpx2.Client) -> None:
    incoming = "A~" * 64
    assert http.get("/healthz", headers={"X-Request-ID": incoming}).headers["x-request-id"] == incoming


def test_json_logs_of_both_workers_carry_the_request_ids(collection: Collection, tmp_path: Path) -> None:
    """With the metrics off, too: the request ids do not depend on them."""
    variables = {"TIERSERVE_LOG_FORMAT": "json", "TIERSERVE_METRICS": "false"}
    with serve_process(collection, tmp_path, "--workers", "2", **variables) as served:
        kept = httpx2.get(served.base + TILE, headers={"X-Request-ID": "client-chosen.42"}, timeout=30)
        replaced = httpx2.get(served.base + QUERY, headers={"X-Request-ID": "x" * 200}, timeout=30)
        fresh = [httpx2.get(served.base + MISSING, timeout=30) for _ in range(3)]
        assert httpx2.get(served.base + "/metrics", timeout=30).status_code == 404
        assert not list((tmp_path / "tmp").iterdir())  # no folder for the metrics of the workers
    assert kept.headers["x-request-id"] == "client-chosen.42"
    assert NEW_ID.fullmatch(replaced.headers["x-request-id"])
    assert len({response.headers["x-request-id"] for response in fresh}) == 3
    lines = [line for path in (served.stdout, served.stderr) for line in path.read_text().splitlines()]
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"time", "level", "logger", "message"} <= record.keys() for record in records)
    access = {record["request_id"]: record for record in records if record["logger"] == "tierserve.access"}
    for response, path in [(kept, TILE), (replaced, QUERY), *[(response, MISSING) for response in fresh]]:
        record = access[response.headers["x-request-id"]]
        assert record["method"] == "GET" and record["path"] == path
        assert record["status"] == response.status_code and record["bytes"] == len(response.content)
        assert record["client"].startswith("127.0.0.1:") and 0 < record["duration_ms"] < 30_000
    started = [record for record in records if record["message"].startswith("Started server process")]
    assert len(started) == 2  # both workers log through the configuration
    serving = next(record for record in records if record["message"].startswith("serving "))
    assert serving["logger"] == "tierserve.serve"

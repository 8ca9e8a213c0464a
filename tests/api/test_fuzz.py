"""Bounded fuzzing through a real server on loopback (the long run: bench/fuzz.py)."""

from __future__ import annotations

import collections

import httpx2
from bench.fuzz import fuzz_query_strings, fuzz_schema

QUERY_STRINGS = 150
SCHEMA_EXAMPLES = 8


def test_random_query_strings_never_cause_a_server_error(live_server: str) -> None:
    statuses: collections.Counter[int] = collections.Counter()
    with httpx2.Client(base_url=live_server, timeout=60) as client:
        fuzz_query_strings(client, QUERY_STRINGS, statuses)
        assert client.get("/api/v2/section_image_download/2001?downsample=5").status_code == 200
    assert sum(statuses.values()) >= QUERY_STRINGS // 2
    assert all(status < 500 for status in statuses)


def test_schemathesis_cases_for_every_route(live_server: str) -> None:
    statuses: collections.Counter[int] = collections.Counter()
    with httpx2.Client(base_url=live_server, timeout=60) as client:
        fuzz_schema(live_server, client, SCHEMA_EXAMPLES, statuses)
    assert sum(statuses.values()) >= 7 * SCHEMA_EXAMPLES
    assert all(status < 500 for status in statuses)

"""Fuzzing every route through a real server: schemathesis cases from the published OpenAPI schema
(valid and invalid by the schema) and hypothesis-made query strings (random and duplicate parameters,
unicode, huge and negative numbers, empty values, wrong list lengths, RMA garbage).

    python -m bench.fuzz --data-dir DIR --examples 2000     # the long run, against `tierserve serve`

A bounded version runs in the test suite (tests/api/test_fuzz.py). The invariant: no 5xx, every
error is a JSON {"success": false, "msg": ...}, every 200 from an image endpoint is an image.
"""

from __future__ import annotations

import argparse
import collections
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable

from bench.common import free_port, start_server, stop_servers_on_sigterm

IMAGE_PATHS = ("section_image_download", "atlas_image_download", "projection_image_download", "image_download")
NAMES = (
    "downsample",
    "quality",
    "left",
    "top",
    "width",
    "height",
    "range",
    "expression",
    "projection",
    "annotation",
    "atlas",
    "view",
    "tumor_feature_annotation",
    "tumor_feature_boundary",
    "downsample_dimensions",
    "colormap",
    "rgb",
    "contrast",
    "format",
    "q",
    "criteria",
    "include",
    "num_rows",
    "start_row",
    "order",
    "only",
    "tabular",
)
RMA_GARBAGE = (
    "model::SectionImage,rma::criteria,[id$eq1",
    "model::X",
    "model::SectionImage,rma::criteria,a(b(c(d",
    "model::SectionImage,rma::options[num_rows$eq99999999999]",
    "model::Atlas,pipe::list[x$is'y']",
    "model::SectionImage,rma::criteria,[id$in" + ",".join(["9"] * 3000) + "]",
    "'; DROP TABLE sub_images; --",
    "model::SectionImage,rma::criteria,[name$li'%_\\\\']",
    "model::SectionDataSet,rma::include,equalization(x)",
)
values = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.sampled_from(["", "0", "1", "true", "false", "TRUE", "-0", "1e3", "0x10", "NaN", "inf", "1.5", " 1"]),
    st.lists(st.integers(-5, 70000), min_size=0, max_size=8).map(lambda xs: ",".join(map(str, xs))),
    st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=1, max_size=6).map(
        lambda xs: ",".join(map(str, xs))
    ),
    st.sampled_from(RMA_GARBAGE),
    st.text(max_size=40),
)
names = st.one_of(st.sampled_from(NAMES), st.text(min_size=1, max_size=12))
paths = st.one_of(
    st.builds(
        lambda p, i: f"/api/v2/{p}/{i}",
        st.sampled_from(IMAGE_PATHS),
        st.one_of(
            st.sampled_from(["2001", "2101", "3001", "1", "0", "-1", "abc", "2001&downsample=2"]),
            st.integers(-(2**65), 2**65).map(str),
        ),
    ),
    st.sampled_from(
        [
            "/api/v2/data/query.json",
            "/api/v2/data/query.xml",
            "/api/v2/data/query.csv",
            "/api/v2/data/SectionImage/query.json",
            "/api/v2/data/SectionDataSet/1002.xml",
            "/api/v2/data/Gene/query.json",
            "/api/v2/data/SectionImage/2001.csv",
        ]
    ),
)
requests_ = st.builds(
    lambda path, items: path + ("?" + "&".join(f"{quote(k)}={quote(v)}" for k, v in items) if items else ""),
    paths,
    st.lists(st.tuples(names, values), max_size=6),
)


IMAGE_TYPES = ("image/jpeg", "image/png", "image/tiff", "image/webp")


def check(url: str, response: httpx2.Response) -> None:
    """The fuzzing invariant for one response: never a 5xx; the error body of the route's own family."""
    assert response.status_code < 500, (url, response.status_code, response.text[:300])
    kind = response.headers.get("content-type", "")
    if "/iiif/" in url:
        _check_iiif(url, response, kind)
    elif response.status_code != 200:
        if "xml" in kind or "csv" in kind:
            assert "false" in response.text, (url, response.text[:300])
        else:
            body = response.json()
            assert body["success"] is False and isinstance(body["msg"], str), (url, body)
    elif "/data/" not in url and not url.endswith(("/healthz", "/readyz", "/metrics")):
        assert kind in IMAGE_TYPES, (url, kind)


def _check_iiif(url: str, response: httpx2.Response, kind: str) -> None:
    """IIIF answers: documents in JSON(-LD), images, redirects; errors with a message of IIIF's routers
    (JSON `{"error": ...}` or plain text), never the Allen body."""
    status = response.status_code
    if status == 200:
        assert kind.split(";")[0] in (*IMAGE_TYPES, "application/json", "application/ld+json"), (url, kind)
    elif status >= 400:
        if kind.startswith("application/json"):
            body = response.json()
            assert isinstance(body.get("error"), str) and "success" not in body, (url, body)
        else:
            assert response.text.strip(), (url, status)


def fuzz_query_strings(client: httpx2.Client, examples: int, statuses: collections.Counter[int]) -> None:
    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(requests_)
    def run(url: str) -> None:
        response = client.get(url)
        statuses[response.status_code] += 1
        check(url, response)

    run()


def fuzz_schema(base_url: str, client: httpx2.Client, examples: int, statuses: collections.Counter[int]) -> None:
    import schemathesis
    from schemathesis import GenerationMode
    from schemathesis.core.result import Err

    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise SystemExit(f"the OpenAPI schema has an invalid operation: {result.err()}")
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), database=None)
            @given(operation.as_strategy(generation_mode=mode))
            def run(case: schemathesis.Case[Any]) -> None:
                kwargs = case.as_transport_kwargs(base_url=base_url)
                response = client.request(
                    kwargs["method"],
                    kwargs["url"],
                    params=kwargs.get("params"),
                    headers={k: v for k, v in (kwargs.get("headers") or {}).items() if k.lower() != "user-agent"},
                )
                statuses[response.status_code] += 1
                check(str(response.request.url), response)

            try:
                run()
            except Unsatisfiable:  # an operation without parameters has no invalid inputs
                continue


def main() -> None:
    stop_servers_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--examples", type=int, default=2000, help="query strings; schema cases are a tenth")
    args = parser.parse_args()
    port = free_port()
    server = start_server(args.data_dir, port, 1)
    statuses: collections.Counter[int] = collections.Counter()
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx2.Client(base_url=base, timeout=60) as client:
            fuzz_query_strings(client, args.examples, statuses)
            fuzz_schema(base, client, max(10, args.examples // 10), statuses)
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(json.dumps({"requests": sum(statuses.values()), "statuses": dict(sorted(statuses.items()))}))


if __name__ == "__main__":
    main()

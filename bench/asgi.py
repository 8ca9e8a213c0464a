"""CPU of whole requests through the ASGI app in process: no server, no sockets, one thread.

    python -m bench.asgi --only 6-tiles 7-iiif-tiles
    python -m bench.asgi --only 6-tiles 7-iiif-tiles --output-cache-bytes 0

Calls tierserve's app (middleware, routing, parsing, planning, ETag, render or output cache) with an
ASGI scope per request path of the workloads (bench.workloads), after one unmeasured pass over the
same paths: with the output cache on (its default) the measured pass is all cache hits, which is the
work around the pixels alone. Prints CPU ms per request for each workload. Uses the benchmark
collection of bench.compare; compare two checkouts with `PYTHONPATH=<checkout>/src`.

    python -m bench.asgi --only 6-tiles-stored-q90 --output-cache-bytes 0 --layers

With `--layers`, the same requests are also sent into each layer of the middleware stack, from the
FastAPI app down to the lean image routes (`api.routes`): the difference between two lines is what
the layers between them cost.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from bench import collection
from bench.common import collection_parser
from bench.servers import BENCH_SETTINGS
from bench.workloads import standard_workloads
from tierserve.api.app import create_app
from tierserve.settings import Settings


def main() -> None:
    args = _arguments()
    images = collection.ensure(args.data_dir)
    workloads = {w.key: w for w in standard_workloads(**images)}
    settings = Settings(
        data_dir=args.data_dir,
        output_cache_bytes=args.output_cache_bytes,
        access_log=False,
        jpeg_chroma=BENCH_SETTINGS["TIERSERVE_JPEG_CHROMA"],
        iiif_jpeg_quality=int(BENCH_SETTINGS["TIERSERVE_IIIF_JPEG_QUALITY"]),
    )
    app = create_app(settings)
    paths = {key: [r.tierserve_path() for r in workloads[key].requests()][: args.requests] for key in args.only}
    asyncio.run(_measure(app, paths, args.rounds, args.layers))


async def _measure(app: Any, paths: dict[str, list[str]], rounds: int, layers: bool) -> None:
    async with app.router.lifespan_context(app):
        for key, requests in paths.items():
            for path in requests:  # unmeasured: files opened, records and (cache on) answers kept
                await _call(app, path)
            for name, target in _layers(app) if layers else [("", app)]:
                costs = []
                for _ in range(rounds):
                    started = time.process_time()
                    for path in requests:
                        await _call(target, path)
                    costs.append((time.process_time() - started) * 1000 / len(requests))
                best = f"{min(costs):.3f} ms CPU per request (best of {rounds} passes over {len(requests)})"
                print(f"{key:20} {name + ' ' if name else ''}{best}")


def _layers(app: Any) -> list[tuple[str, Any]]:
    """(name, ASGI callable) of the app and each middleware inside it, down to the last lean image route."""
    layers = [("into FastAPI", app)]
    layer = app.middleware_stack
    while layer is not None and not layers[-1][0].endswith("ImageDownloads"):
        layers.append((f"into {type(layer).__module__}.{type(layer).__name__}", layer))
        layer = getattr(layer, "app", None)
    return [(name.ljust(60), target) for name, target in layers]


async def _call(app: Any, path: str) -> None:
    """One GET of `path`; raises unless it is answered 200."""
    route, _, query = path.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": route,
        "raw_path": route.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1:8000")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 8000),
    }
    started: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            started.append(message["status"])

    await app(scope, receive, send)
    if started != [200]:
        raise SystemExit(f"{path}: answered {started}")


def _arguments() -> argparse.Namespace:
    parser = collection_parser(__doc__)
    parser.add_argument("--only", nargs="+", default=["6-tiles", "7-iiif-tiles"], help="workload keys")
    parser.add_argument("--requests", type=int, default=400, help="request paths per workload")
    parser.add_argument("--rounds", type=int, default=5, help="measured passes; the best is printed")
    parser.add_argument("--output-cache-bytes", type=int, default=32 * 1024 * 1024)
    parser.add_argument("--layers", action="store_true", help="also into each middleware of the stack")
    return parser.parse_args()


if __name__ == "__main__":
    main()

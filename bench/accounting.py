"""What the request accounting costs: CPU per request through the whole ASGI app, in process, with and
without `RequestAccounting` around it, for a cached tile and `/healthz`.

    python -m bench.accounting

Each mode runs in a process of its own (the Prometheus client picks its mode when imported): metrics
in memory (one process), in multi-process mode (PROMETHEUS_MULTIPROC_DIR, as with --workers N), and
TIERSERVE_METRICS=false (request id and header only). No access log: benchmarks run without it. Uses the
benchmark collection of bench.compare.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

from bench import collection
from bench.common import collection_parser
from bench.workloads import standard_workloads

MODES = {
    "metrics in memory": {},
    "metrics in multi-process mode": {"PROMETHEUS_MULTIPROC_DIR": ""},
    "metrics off": {"TIERSERVE_METRICS": "false"},
}


def main() -> None:
    args = _arguments()
    if args.measure:
        _measure(args)
        return
    images = collection.ensure(args.data_dir)
    tile = next(w for w in standard_workloads(**images) if w.key == "6-tiles").requests()[0].tierserve_path()
    print(f"CPU µs per request in process, median of {args.rounds} rounds of {args.requests}:", flush=True)
    for mode, variables in MODES.items():
        with tempfile.TemporaryDirectory(prefix="tierserve-bench-metrics-") as folder:
            env = {**os.environ, **{name: value or folder for name, value in variables.items()}}
            command = [sys.executable, "-m", "bench.accounting", "--measure", tile, *_passed(args)]
            output = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
        print(f"  {mode:30} {output.strip()}", flush=True)


def _measure(args: argparse.Namespace) -> None:
    """Print the CPU per request of the tile and /healthz, without and with the accounting."""
    os.environ.update({"TIERSERVE_DATA_DIR": str(args.data_dir), "TIERSERVE_ACCESS_LOG": "false"})
    from tierserve.api.accounting import RequestAccounting
    from tierserve.api.app import create_app

    app = create_app()
    accounted = app.build_middleware_stack()
    assert isinstance(accounted, RequestAccounting)
    path, _, query = args.measure.partition("?")
    results = []
    for name, target in (("/healthz", "/healthz"), ("tile", path)):
        scope = _scope(app, target, query if target == path else "")
        bare, full = asyncio.run(_cpu_us([accounted.app, accounted], scope, args))
        results.append(f"{name} {bare:.1f} -> {full:.1f} (+{full - bare:.1f})")
    print("   ".join(results))


def _scope(app: Any, path: str, query: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
        "root_path": "",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "headers": [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"bench")],
        "app": app,
    }


async def _cpu_us(targets: list[Any], scope: dict[str, Any], args: argparse.Namespace) -> list[float]:
    """For each of `targets`, the median process CPU µs per request over `args.rounds` rounds of
    `args.requests` requests; the targets take turns, round by round."""

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            assert message["status"] == 200, message

    rounds: list[list[float]] = [[] for _ in targets]
    for _ in range(args.rounds + 1):  # the first round warms up
        for target, cpu in zip(targets, rounds, strict=True):
            started = time.process_time()
            for _ in range(args.requests):
                await target(dict(scope), receive, send)
            cpu.append((time.process_time() - started) / args.requests * 1e6)
    return [statistics.median(cpu[1:]) for cpu in rounds]


def _passed(args: argparse.Namespace) -> list[str]:
    return ["--data-dir", str(args.data_dir), "--rounds", str(args.rounds), "--requests", str(args.requests)]


def _arguments() -> argparse.Namespace:
    parser = collection_parser(__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    return parser.parse_args()


if __name__ == "__main__":
    main()

"""Where the CPU of a small request goes: tierserve's render stages in process, then whole requests in a server.

    python -m bench.stages

In process (one thread, files open, median CPU over `--samples` requests of each workload): tierserve's
read of the stored tiles (`PyramidFile.read_array`), its block mean for a tier that is not stored, its JPEG
encode, and the whole small-read render (`render_array` + encode), beside bench.floor's decode and encode
of the same requests. In a server (`tierserve serve`, one worker, wrk on 4 connections): CPU per request
of an answer without pixels (`/healthz`), of a tile answered 304 (If-None-Match with its ETag) and of
the same tile answered 200, with the output cache off (rendered every time), then the tile answered
from the output cache. Uses the benchmark collection of bench.compare.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2

from bench import collection, floor, wrk
from bench.common import collection_parser, median_cpu_ms, stop_servers_on_sigterm
from bench.servers import BENCH_SETTINGS, TierServe
from bench.workloads import Request, standard_workloads
from tierserve.core.encode import Encoding, encode_jpeg_array
from tierserve.core.pyramid import PyramidFile
from tierserve.core.render import RenderSpec
from tierserve.core.render_array import block_mean, render_array
from tierserve.core.tiers import ReadPlan, Window, plan_read
from tierserve.core.tiles import TileReader
from tierserve.storage import local_file

STAGED = ("6-tiles", "3-whole-not-stored", "2-whole-ds4", "1-region-q75")


def main() -> None:
    stop_servers_on_sigterm()
    args = _arguments()
    images = collection.ensure(args.data_dir)
    store = args.data_dir / "store"
    print("in process, median CPU ms per request (one thread):", flush=True)
    for workload in standard_workloads(**images):
        if workload.key in STAGED:
            requests = workload.requests()[: args.samples]
            stages = _stages(store / requests[0].image.store_key, requests)
            print(f"  {workload.key:20} " + "  ".join(f"{name} {ms:.3f}" for name, ms in stages.items()), flush=True)
    tile = next(w for w in standard_workloads(**images) if w.key == "6-tiles").requests()[0]
    print("in a server (1 worker, 4 connections), CPU ms per request:", flush=True)
    for name, ms in _server_costs(args, tile.tierserve_path()).items():
        print(f"  {name:24} {ms:.3f}", flush=True)


def _stages(path: Path, requests: list[Request]) -> dict[str, float]:
    """Median CPU ms of each stage over `requests` (after one unmeasured pass)."""
    pyramid = PyramidFile(local_file(path), TileReader(decode_threads=1))  # thread_time counts one thread
    plans = [_plan(request) for request in requests]
    encoding = Encoding(requests[0].quality, "420")
    reads = [pyramid.read_array(plan.level, plan.box) for plan in plans]
    rendered = [render_array(pyramid, RenderSpec(plan, None)) for plan in plans]
    stages: dict[str, Callable[[int], Any]] = {
        "read": lambda i: pyramid.read_array(plans[i].level, plans[i].box),
        "encode": lambda i: encode_jpeg_array(rendered[i], encoding, lambda _: True),
        "render+encode": lambda i: encode_jpeg_array(
            render_array(pyramid, RenderSpec(plans[i], None)), encoding, lambda _: True
        ),
        "floor decode": lambda i: floor.render(path, requests[i]),
        "floor decode+encode": lambda i: floor.encode(floor.render(path, requests[i]), requests[i].quality),
    }
    if plans[0].shrink > 1:
        stages["block mean"] = lambda i: block_mean(reads[i], plans[i].shrink)
    return {name: median_cpu_ms(stage, len(requests)) for name, stage in stages.items()}


def _plan(request: Request) -> ReadPlan:
    width, height = request.output_size
    window = Window(request.downsample, request.left, request.top, width, height)
    return plan_read(request.image.width, request.image.height, request.image.levels, window)


def _server_costs(args: argparse.Namespace, tile_path: str) -> dict[str, float]:
    """CPU ms per request of small answers, each replayed by wrk for `args.seconds`: with the output
    cache off (every 200 renders), then the same tile answered from the output cache."""
    uncached = {**BENCH_SETTINGS, "TIERSERVE_OUTPUT_CACHE_BYTES": "0"}
    answers = {
        "/healthz": ("/healthz", False),
        "tile, 304 (ETag matches)": (tile_path, True),
        "tile, 200": (tile_path, False),
    }
    costs = _replayed(args, uncached, tile_path, answers)
    return costs | _replayed(args, BENCH_SETTINGS, tile_path, {"tile, 200 from the output cache": (tile_path, False)})


def _replayed(
    args: argparse.Namespace, settings: dict[str, str], tile_path: str, answers: dict[str, tuple[str, bool]]
) -> dict[str, float]:
    """CPU ms per request of each answer, name -> (path, whether to send If-None-Match with the tile's
    ETag), from a one-worker server with `settings`."""
    tierserve = TierServe(args.data_dir, 1, settings)
    server = tierserve.server
    try:
        etag = httpx2.get(server.base_url + tile_path, timeout=30).headers["etag"]
        costs = {}
        for name, (path, conditional) in answers.items():
            headers = {"If-None-Match": etag} if conditional else None
            wrk.run(server.base_url, [path], 4, 2, headers)
            before = server.cpu()
            summary = wrk.run(server.base_url, [path], 4, args.seconds, headers)
            costs[name] = (server.cpu() - before) * 1000 / summary["requests"]
        return costs
    finally:
        tierserve.stop()


def _arguments() -> argparse.Namespace:
    parser = collection_parser(__doc__)
    parser.add_argument("--samples", type=int, default=60, help="requests per workload in process")
    parser.add_argument("--seconds", type=int, default=8, help="length of each measured wrk run")
    return parser.parse_args()


if __name__ == "__main__":
    main()

"""Median latency of the issue's reference requests on the largest demo image, against a real server.

    python -m bench.latency --data-dir ~/.local/share/tierserve     # after `tierserve demo`

Starts `tierserve serve` on a free loopback port, warms up, then times sequential requests:
random 1000x1000 full-resolution regions (quality 100 and 75), the whole image at downsample=4, and
the whole full-resolution image (time to first byte, total time, peak RSS of the server process).
Prints a table and writes the same figures as JSON under bench/results/.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import httpx2

from bench.common import free_port, memory_kib, start_server, stop_servers_on_sigterm, write_results
from tierserve.db.database import Database
from tierserve.db.models import SubImage
from tierserve.settings import Settings


def timed(client: httpx2.Client, url: str) -> tuple[float, float, int]:
    """Seconds to the first body byte, seconds in total, bytes received."""
    started = time.perf_counter()
    first = 0.0
    size = 0
    with client.stream("GET", url) as response:
        response.raise_for_status()
        for chunk in response.iter_raw():
            if not first:
                first = time.perf_counter() - started
            size += len(chunk)
    return first, time.perf_counter() - started, size


def summary(samples: list[tuple[float, float, int]]) -> dict[str, float]:
    totals = sorted(s[1] for s in samples)
    return {
        "requests": len(samples),
        "median_ms": round(statistics.median(totals) * 1000, 1),
        "min_ms": round(totals[0] * 1000, 1),
        "max_ms": round(totals[-1] * 1000, 1),
        "median_first_byte_ms": round(statistics.median(s[0] for s in samples) * 1000, 1),
        "median_bytes": int(statistics.median(s[2] for s in samples)),
    }


def main() -> None:
    stop_servers_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=Settings().data_dir)
    parser.add_argument("--image", type=int, default=69750516, help="SectionImage id (default: largest demo image)")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--full-runs", type=int, default=3, help="whole full-resolution image requests")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()

    database = Database(Settings(data_dir=args.data_dir).resolved_database_url)
    with database.session() as session:
        image = session.get(SubImage, args.image)
        if image is None:
            raise SystemExit(f"no image {args.image} in {args.data_dir}: run `tierserve demo` first")
        width, height = image.image_width, image.image_height
    database.dispose()

    port = free_port()
    server = start_server(args.data_dir, port, args.workers)
    base = f"http://127.0.0.1:{port}/api/v2/section_image_download/{args.image}"
    rng = random.Random(2)

    def region(quality: int) -> str:
        left, top = rng.randrange(0, width - 1000), rng.randrange(0, height - 1000)
        return f"{base}?left={left}&top={top}&width=1000&height=1000&quality={quality}"

    workloads: dict[str, Callable[[], str]] = {
        "region 1000x1000 full-res, quality 100": lambda: region(100),
        "region 1000x1000 full-res, quality 75": lambda: region(75),
        "whole image, downsample=4": lambda: f"{base}?downsample=4",
    }
    results: dict[str, object] = {
        "image": {"id": args.image, "width": width, "height": height},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "workers": args.workers,
    }
    try:
        with httpx2.Client(timeout=120) as client:
            for make_url in workloads.values():
                for _ in range(3):
                    timed(client, make_url())
            for name, make_url in workloads.items():
                results[name] = summary([timed(client, make_url()) for _ in range(args.runs)])
            rss_before = memory_kib(server.pid, "VmRSS")
            full = [timed(client, f"{base}?quality=75") for _ in range(args.full_runs)]
            results["whole image, full resolution, quality 75"] = {
                **summary(full),
                "server_rss_before_mib": round(rss_before / 1024, 1),
                "server_peak_rss_mib": round(memory_kib(server.pid, "VmHWM") / 1024, 1),
            }
    finally:
        server.terminate()
        server.wait(timeout=30)

    print(f"image {args.image}: {width} x {height}, {args.workers} worker(s), sequential requests on loopback")
    print(f"{'workload':45} {'n':>3} {'median ms':>10} {'min':>8} {'max':>8} {'1st byte':>9} {'bytes':>10}")
    for name, row in results.items():
        if isinstance(row, dict) and "median_ms" in row:
            print(
                f"{name:45} {row['requests']:>3} {row['median_ms']:>10} {row['min_ms']:>8} {row['max_ms']:>8} "
                f"{row['median_first_byte_ms']:>9} {row['median_bytes']:>10}"
            )
    full_row = results["whole image, full resolution, quality 75"]
    assert isinstance(full_row, dict)
    print(
        f"server RSS before the full-resolution requests {full_row['server_rss_before_mib']} MiB, "
        f"peak {full_row['server_peak_rss_mib']} MiB"
    )
    print(f"written {write_results('latency', results)}")


if __name__ == "__main__":
    main()

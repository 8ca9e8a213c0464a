"""Soak test: a mixed workload at N concurrent connections against a real multi-worker server.

    python -m bench.soak --data-dir DIR --duration 600 --connections 32 --workers 2

Starts `tierserve serve --workers W` on a free loopback port over a `tierserve demo` collection and
keeps N connections busy for the given time with random full-resolution regions, downsampled whole
images, expression masks and data queries. Every `--sample` seconds it records each worker's RSS.
Prints throughput, p50/p99 latency and error counts per request kind, and the RSS timeline; writes
the same as JSON under bench/results/. Only loopback is ever contacted; the run stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import time
from collections import defaultdict
from pathlib import Path

import httpx2

from bench.common import free_port, memory_kib, start_server, stop_servers_on_sigterm, write_results

LARGEST = 69750516


def workers_of(parent: int) -> list[int]:
    """Pids of the processes whose parent is `parent`: uvicorn's workers (and multiprocessing's
    small resource tracker)."""
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == parent:
                children.append(int(entry.name))
    return sorted(children)


def request_mix(rng: random.Random, width: int, height: int) -> tuple[str, str]:
    roll = rng.random()
    if roll < 0.4:
        left, top = rng.randrange(0, width - 512), rng.randrange(0, height - 512)
        return (
            "region",
            f"/api/v2/section_image_download/{LARGEST}?left={left}&top={top}&width=512&height=512&quality=75",
        )
    if roll < 0.6:
        return "downsampled", f"/api/v2/image_download/{LARGEST}?downsample={rng.choice([4, 5, 6, 7])}"
    if roll < 0.75:
        return "mask", f"/api/v2/section_image_download/{LARGEST}?downsample=4&view=expression"
    if roll < 0.85:
        return "windowed", "/api/v2/section_image_download/102146167?downsample=3&range=0,923,0,987,0,4095"
    if roll < 0.95:
        return "data", "/api/v2/data/query.json?q=model::SectionImage,rma::criteria,[data_set_id$eq69750000]"
    return "equalization", "/api/v2/data/SectionDataSet/100141599.json?include=equalization,section_images"


async def soak(
    base: str, connections: int, duration: float, size: tuple[int, int]
) -> tuple[dict[str, list[float]], dict[str, int]]:
    """Latencies in seconds of successful requests per kind, and error counts per kind."""
    latencies: dict[str, list[float]] = defaultdict(list)
    errors: dict[str, int] = defaultdict(int)
    deadline = time.monotonic() + duration
    limits = httpx2.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx2.AsyncClient(base_url=base, timeout=60, limits=limits) as client:

        async def connection(seed: int) -> None:
            rng = random.Random(seed)
            while time.monotonic() < deadline:
                kind, url = request_mix(rng, *size)
                started = time.perf_counter()
                try:
                    response = await client.get(url)
                    ok = response.status_code == 200
                except httpx2.HTTPError:
                    ok = False
                if ok:
                    latencies[kind].append(time.perf_counter() - started)
                else:
                    errors[kind] += 1

        await asyncio.gather(*(connection(i) for i in range(connections)))
    return dict(latencies), dict(errors)


def main() -> None:
    stop_servers_on_sigterm()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--duration", type=float, default=600)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--sample", type=float, default=10)
    args = parser.parse_args()

    port = free_port()
    server = start_server(args.data_dir, port, args.workers)
    pids = workers_of(server.pid) or [server.pid]
    rss: dict[int, list[tuple[float, float]]] = {pid: [] for pid in pids}
    started = time.monotonic()

    async def run() -> tuple[dict[str, list[float]], dict[str, int]]:
        async def sampler() -> None:
            while time.monotonic() - started < args.duration + 1:
                for pid in pids:
                    rss[pid].append((round(time.monotonic() - started, 1), memory_kib(pid, "VmRSS") / 1024))
                await asyncio.sleep(args.sample)

        task = asyncio.create_task(sampler())
        result = await soak(f"http://127.0.0.1:{port}", args.connections, args.duration, (16000, 10000))
        task.cancel()
        return result

    try:
        kinds, errors = asyncio.run(run())
    finally:
        server.terminate()
        server.wait(timeout=60)
    elapsed = time.monotonic() - started
    total = sum(len(v) for v in kinds.values())
    report: dict[str, object] = {
        "duration_s": round(elapsed, 1),
        "connections": args.connections,
        "workers": args.workers,
        "cpus": os.cpu_count(),
        "requests_ok": total,
        "errors": errors,
        "throughput_rps": round(total / elapsed, 1),
        "kinds": {
            kind: {
                "requests": len(values),
                "p50_ms": round(statistics.median(values) * 1000, 1),
                "p99_ms": round(sorted(values)[int(len(values) * 0.99) - 1] * 1000, 1) if len(values) > 1 else None,
            }
            for kind, values in sorted(kinds.items())
            if values
        },
        "rss_mib": {str(pid): samples for pid, samples in rss.items()},
    }
    print(json.dumps({k: v for k, v in report.items() if k != "rss_mib"}, indent=2))
    for pid, samples in rss.items():
        values = [mib for _, mib in samples]
        third = max(1, len(values) // 3)
        middle, last = statistics.mean(values[third : 2 * third]), statistics.mean(values[2 * third :])
        print(
            f"process {pid}: RSS MiB first {values[0]:.0f}, middle third {middle:.0f}, "
            f"last third {last:.0f}, max {max(values):.0f}"
        )
    print(f"written {write_results('soak', report)}")


if __name__ == "__main__":
    main()

"""tierserve against IIPImage on the same pyramid files, and both against the codec floor.

    python -m bench.compare      # as root; otherwise first `sudo bash bench/iipimage/install.sh`

Installs IIPImage, lighttpd, spawn-fcgi and wrk (bench/iipimage/install.sh) when one is missing.

Builds (or reuses) the benchmark collection (bench/collection.py), starts `tierserve serve` and
IIPImage with the same number of worker processes on loopback, and drives both with wrk (one thread,
1/4/16 keep-alive connections) over the same random request paths, alternating tierserve, IIPImage,
tierserve, IIPImage so that drift hits both. Every JPEG is baseline with 4:2:0 chroma on both sides
(tierserve runs with TIERSERVE_JPEG_CHROMA=420; IIPImage always subsamples). IIPImage's tile cache and
tierserve's output cache are off, so both decode every tile a request touches, except in the
workloads that replay a viewer (`Workload.cached`), run last with both servers restarted with their
caches at the default setting (IIPImage 10 MB per process, tierserve 32 MiB per worker; both count
in the RSS figures). The IIIF workloads ask both servers through IIIF Image API
2 at quality 75 (tierserve's TIERSERVE_IIIF_JPEG_QUALITY=75).

Prints one table (req/s, p50/p99 ms per server, throughput ratio, bytes per response, CPU ms per
request, and tierserve's CPU over the single-thread codec floor, `bench.floor`, measured right before
and right after each workload's runs, their mean: the machine's speed drifts over minutes), then the
whole-image stream (workload 5), and writes the same as JSON under bench/results/.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx2
import pyvips

from bench import collection, floor, wrk
from bench.common import BENCH_DATA_DIR, assignment, stop_servers_on_sigterm, write_results
from bench.servers import (
    BENCH_SETTINGS,
    IIPIMAGE_DEFAULT_CACHE_MB,
    IIPImage,
    Server,
    TierServe,
    ensure_iipimage,
    memory_mib,
    reset_peak_rss,
)
from bench.workloads import BenchImage, Request, Workload, standard_workloads

#: tierserve's output cache off, as IIPImage's tile cache is, except in the `cached` workloads.
UNCACHED = {"TIERSERVE_OUTPUT_CACHE_BYTES": "0"}
#: Idle seconds before workload 5, so that both servers start it as a quiet worker would (a tierserve
#: worker gives freed heap back to the OS after one quiet second, `tierserve.api.heap`).
SETTLE_SECONDS = 3


def main() -> None:
    stop_servers_on_sigterm()
    args = _arguments()
    ensure_iipimage()
    images = collection.ensure(args.data_dir)
    store = args.data_dir / "store"
    workloads = [w for w in standard_workloads(**images) if not args.only or w.key in args.only]
    requests = {w.key: w.requests() for w in workloads}
    _warm_page_cache(store, images.values())
    results: dict[str, Any] = {"machine": _machine(args), "workloads": {}}

    settings = {**BENCH_SETTINGS, **dict(args.tierserve_env)}
    tierserve = TierServe(args.data_dir, args.workers, {**settings, **UNCACHED})
    folder, max_cvt = collection.iipimage_folder(args.data_dir), max(i.width for i in images.values())
    iipimage = IIPImage(folder, args.workers, max_cvt)
    servers = [tierserve.server, iipimage.server]
    full_resolution = not args.only or "5-whole-full-res" in args.only
    try:
        if full_resolution:
            fresh = _full_resolution(images["large"], servers, args.full_runs)
        print(_HEADER, flush=True)
        for workload in sorted(workloads, key=lambda w: w.cached):  # caches on for the last ones
            if workload.cached and iipimage.env["IIP_CACHE_MB"] == "0":
                tierserve.stop()
                iipimage.stop()
                tierserve = TierServe(args.data_dir, args.workers, settings)
                iipimage = IIPImage(folder, args.workers, max_cvt, IIPIMAGE_DEFAULT_CACHE_MB)
                servers = [tierserve.server, iipimage.server]
            active = servers if workload.iipimage else servers[:1]
            paths = {s.name: [_path(s, r) for r in requests[workload.key]] for s in active}
            sizes = {s.name: _check(s, requests[workload.key][:5]) for s in active}
            floor_before = _floor(store, workload, requests[workload.key])
            measured = {c: _measure(active, paths, c, args) for c in args.connections}
            floor_value = _bracketed(floor_before, _floor(store, workload, requests[workload.key]))
            rows = {c: _row(runs, sizes, floor_value) for c, runs in measured.items()}
            for connections, row in rows.items():
                print(_format_row(workload.key, connections, row, floor_value), flush=True)
            results["workloads"][workload.key] = {"title": workload.title, "floor": floor_value, "by_connections": rows}
        if full_resolution:
            after_load = _full_resolution(images["large"], servers, args.full_runs)
            results["workloads"]["5-whole-full-res"] = _full_resolution_result(
                images["large"], store, {"fresh": fresh, "after_load": after_load}
            )
    finally:
        tierserve.stop()
        iipimage.stop()
    _print_table(results)
    print(f"written {write_results('compare', results)}")


def _measure(
    active: list[Server], paths: dict[str, list[str]], connections: int, args: argparse.Namespace
) -> dict[str, list[tuple[dict[str, float], float]]]:
    """wrk's summary and the server's CPU seconds of each run, by server: a warm-up run each, then
    `args.rounds` rounds alternating the servers."""
    runs: dict[str, list[tuple[dict[str, float], float]]] = {s.name: [] for s in active}
    for server in active:
        wrk.run(server.base_url, paths[server.name], connections, args.warmup)
    for _ in range(args.rounds):
        for server in active:
            before = server.cpu()
            summary = wrk.run(server.base_url, paths[server.name], connections, args.seconds)
            runs[server.name].append((summary, server.cpu() - before))
    return runs


def _floor(store: Path, workload: Workload, requests: list[Request]) -> dict[str, float] | None:
    """The workload's codec floor now (`bench.floor`), or None for a workload without one."""
    if not workload.floor:
        return None
    return floor.floor_ms(store / requests[0].image.store_key, floor.floor_sample(requests))


def _bracketed(before: dict[str, float] | None, after: dict[str, float] | None) -> dict[str, float] | None:
    """The floor measured right before and right after a workload's runs: their mean as "cpu_ms", both
    kept (the machine's speed drifts over minutes)."""
    if before is None or after is None:
        return None
    mean = round((before["cpu_ms"] + after["cpu_ms"]) / 2, 3)
    return {"cpu_ms": mean, "bytes": before["bytes"], "before_ms": before["cpu_ms"], "after_ms": after["cpu_ms"]}


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=BENCH_DATA_DIR,
        help="benchmark collection (IIPImage runs as www-data: every folder on the path must be world-readable)",
    )
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="worker processes of each server")
    parser.add_argument("--connections", type=lambda s: [int(c) for c in s.split(",")], default=[1, 4, 16])
    parser.add_argument("--seconds", type=int, default=10, help="length of one measured wrk run")
    parser.add_argument("--warmup", type=int, default=2, help="unmeasured wrk run per server before each concurrency")
    parser.add_argument("--rounds", type=int, default=2, help="A B alternations per workload and concurrency")
    parser.add_argument("--full-runs", type=int, default=3, help="whole full-resolution images per server")
    parser.add_argument(
        "--tierserve-env",
        type=assignment,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment of tierserve, e.g. TIERSERVE_RENDER_THREADS=2 (repeatable)",
    )
    parser.add_argument("--only", nargs="*", default=[], help="workload keys to run (default: all)")
    return parser.parse_args()


def _path(server: Server, request: Request) -> str:
    return request.tierserve_path() if server.name == "tierserve" else request.iipimage_path()


def _warm_page_cache(store: Path, images: Any) -> None:
    for image in images:
        with (store / image.store_key).open("rb") as handle:
            while handle.read(1 << 24):
                pass


def _check(server: Server, requests: list[Request]) -> int:
    """Ask for `requests` once, check status and decoded size; return the median body size."""
    sizes = []
    with httpx2.Client(base_url=server.base_url, timeout=120) as client:
        for request in requests:
            response = client.get(_path(server, request))
            if response.status_code != 200:
                raise SystemExit(
                    f"{server.name}: {response.status_code} for {_path(server, request)}: {response.text[:200]}"
                )
            image = pyvips.Image.new_from_buffer(response.content, "")
            slack = 1 if request.fit is not None else 0  # IIIF leaves the rounding of a best fit to the server
            expected = request.output_size
            if abs(image.width - expected[0]) > slack or abs(image.height - expected[1]) > slack:
                raise SystemExit(
                    f"{server.name}: {image.width}x{image.height} for {_path(server, request)}, expected {expected}"
                )
            sizes.append(len(response.content))
    return int(statistics.median(sizes))


def _row(
    runs: dict[str, list[tuple[dict[str, float], float]]], sizes: dict[str, int], floor_value: dict[str, float] | None
) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for name, measured in runs.items():
        requests = sum(s["requests"] for s, _ in measured)
        seconds = sum(s["duration_us"] for s, _ in measured) / 1e6
        cpu = sum(c for _, c in measured)
        row[name] = {
            "rps": round(requests / seconds, 1),
            "p50_ms": round(statistics.median(s["p50_us"] for s, _ in measured) / 1000, 2),
            "p99_ms": round(statistics.median(s["p99_us"] for s, _ in measured) / 1000, 2),
            "errors": int(
                sum(s["status_errors"] + s["read_errors"] + s["timeouts"] + s["connect_errors"] for s, _ in measured)
            ),
            "bytes": sizes[name],
            "cpu_ms_per_request": round(cpu * 1000 / max(1, requests), 2),
            "runs_rps": [round(s["rps"], 1) for s, _ in measured],
        }
    if "iipimage" in row:
        row["ratio"] = round(row["tierserve"]["rps"] / row["iipimage"]["rps"], 2)
    if floor_value is not None:
        row["tierserve"]["cpu_over_floor"] = round(row["tierserve"]["cpu_ms_per_request"] / floor_value["cpu_ms"], 2)
    return row


def _full_resolution(image: BenchImage, servers: list[Server], runs: int) -> dict[str, dict[str, float]]:
    """Workload 5: the whole image at full resolution, Q75, one request at a time, alternating servers.

    Memory per server, after `SETTLE_SECONDS` idle: the largest worker's peak RSS during the streams, and
    the largest growth of one worker over what it held resident before them."""
    request = Request(image, 0, 75)
    print(f"workload 5: whole {image.width}x{image.height} image at Q75, {runs} runs per server", flush=True)
    time.sleep(SETTLE_SECONDS)
    samples: dict[str, list[dict[str, float]]] = {s.name: [] for s in servers}
    before = {s.name: memory_mib(s.workers, "VmRSS") for s in servers}
    for server in servers:
        reset_peak_rss(server.workers)
    for _ in range(runs):
        for server in servers:
            samples[server.name].append(_stream(server.base_url + _path(server, request)))
    peaks = {s.name: memory_mib(s.workers, "VmHWM") for s in servers}
    return {
        name: {
            "first_byte_ms": round(statistics.median(m["first_byte"] for m in measured) * 1000, 1),
            "total_ms": round(statistics.median(m["total"] for m in measured) * 1000, 1),
            "bytes": int(statistics.median(m["bytes"] for m in measured)),
            "rss_before_mib": round(max(before[name].values()), 1),
            "peak_worker_rss_mib": round(max(peaks[name].values()), 1),
            "peak_growth_mib": round(max(peaks[name][pid] - before[name][pid] for pid in peaks[name]), 1),
        }
        for name, measured in samples.items()
    }


def _full_resolution_result(
    image: BenchImage, store: Path, runs: dict[str, dict[str, dict[str, float]]]
) -> dict[str, Any]:
    """Workload 5 against its floor, by when it ran: "fresh" (before any other workload) and
    "after_load" (after all of them, so with the heap the workers kept)."""
    floor_value = floor.floor_ms(store / image.store_key, [Request(image, 0, 75)])
    for servers in runs.values():
        for row in servers.values():
            row["total_over_floor"] = round(row["total_ms"] / floor_value["cpu_ms"], 2)
    return {"title": f"whole image {image.width}x{image.height}, full resolution, Q75", "floor": floor_value, **runs}


def _stream(url: str) -> dict[str, float]:
    started = time.perf_counter()
    first, size = 0.0, 0
    with httpx2.stream("GET", url, timeout=300) as response:
        response.raise_for_status()
        for chunk in response.iter_raw():
            first = first or time.perf_counter() - started
            size += len(chunk)
    return {"first_byte": first, "total": time.perf_counter() - started, "bytes": size}


def _machine(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "libvips": f"{pyvips.version(0)}.{pyvips.version(1)}.{pyvips.version(2)}",
        "iipimage": _command_output(["dpkg-query", "-W", "-f=${Version}", "iipimage-server"]),
        "wrk": _command_output(["dpkg-query", "-W", "-f=${Version}", "wrk"]),
        "commit": _command_output(["git", "-C", str(Path(__file__).parent), "rev-parse", "--short", "HEAD"]),
        "cpu_model": _cpu_model(),
        "workers_per_server": args.workers,
        "seconds_per_run": args.seconds,
        "rounds": args.rounds,
    }


def _command_output(command: list[str]) -> str:
    try:
        return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


_HEADER = (
    f"{'workload':24} {'c':>3} | {'tierserve r/s':>13} {'p50':>7} {'p99':>7} |"
    f" {'IIPImage r/s':>12} {'p50':>7} {'p99':>7} |"
    f" {'ratio':>5} | {'bytes ts/iip':>17} | {'CPU ms ts/iip':>13} | {'floor':>6} {'ts/fl':>5}"
)


def _format_row(key: str, connections: int, row: dict[str, Any], floor_value: dict[str, float] | None) -> str:
    ts, iip = row["tierserve"], row.get("iipimage")
    iip_cells = f"{iip['rps']:>12} {iip['p50_ms']:>7} {iip['p99_ms']:>7}" if iip else f"{'-':>12} {'-':>7} {'-':>7}"
    ratio = f"{row['ratio']:>5}" if iip else f"{'-':>5}"
    size = f"{ts['bytes']}/{iip['bytes']}" if iip else f"{ts['bytes']}"
    cpu = f"{ts['cpu_ms_per_request']}/{iip['cpu_ms_per_request']}" if iip else f"{ts['cpu_ms_per_request']}"
    floors = f"{floor_value['cpu_ms']:>6} {ts['cpu_over_floor']:>5}" if floor_value else f"{'-':>6} {'-':>5}"
    return (
        f"{key:24} {connections:>3} | {ts['rps']:>13} {ts['p50_ms']:>7} {ts['p99_ms']:>7} | {iip_cells} | {ratio} |"
        f" {size:>17} | {cpu:>13} | {floors}"
    )


def _print_table(results: dict[str, Any]) -> None:
    print()
    print(_HEADER)
    for key, workload in results["workloads"].items():
        for connections, row in workload.get("by_connections", {}).items():
            print(_format_row(key, connections, row, workload["floor"]))
    full = results["workloads"].get("5-whole-full-res")
    if full:
        print(f"\n{full['title']} (floor: decode + encode {full['floor']['cpu_ms']} ms single thread)")
        for when in ("fresh", "after_load"):
            for name in ("tierserve", "iipimage"):
                row = full[when][name]
                print(
                    f"  {when:10} {name:10} first byte {row['first_byte_ms']} ms, total {row['total_ms']} ms "
                    f"({row['total_over_floor']}x floor), {row['bytes']} bytes, "
                    f"worker RSS {row['rss_before_mib']} MiB before, peak {row['peak_worker_rss_mib']} MiB "
                    f"(+{row['peak_growth_mib']} MiB)"
                )


if __name__ == "__main__":
    main()

"""Two tierserve configurations side by side: the same workloads, runs interleaved A B A B.

    python -m bench.ab --b TIERSERVE_DECODE_THREADS=1 --only 1-region-q75 2-whole-ds4 --connections 1,4
    python -m bench.ab --b UV_TCP_SINGLE_ACCEPT=0 --only 6-tiles --connections 4
    python -m bench.ab --only 2-whole-ds2 --connections 16 --rounds 1 --seconds 4

Both run `tierserve serve` with the settings of bench.compare plus their own environment (`--a`,
`--b`, NAME=VALUE, repeatable), on the benchmark collection of bench.compare. Per workload and
concurrency: req/s over all runs of a configuration, CPU ms per request (all its processes), the
medians over its runs of wrk's p50 and p99 latencies, the share of its workers' CPU taken by the
busiest worker in each run (printed: the mean; 1/workers when connections are spread evenly), the
resident memory of its largest worker right after its runs and again after `--quiet` idle seconds,
and the RSS its workers started with. Writes the same as JSON under bench/results/.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Any

from bench import collection, wrk
from bench.common import assignment, collection_parser, stop_servers_on_sigterm, write_results
from bench.servers import BENCH_SETTINGS, Server, TierServe, cpu_seconds, memory_mib
from bench.workloads import standard_workloads


def main() -> None:
    stop_servers_on_sigterm()
    args = _arguments()
    images = collection.ensure(args.data_dir)
    workloads = [w for w in standard_workloads(**images) if w.key in args.only]
    configs = {"A": dict(args.a), "B": dict(args.b)}
    running: dict[str, TierServe] = {}
    try:  # servers stopped whatever fails, their start included
        for name, env in configs.items():
            running[name] = TierServe(args.data_dir, args.workers, {**BENCH_SETTINGS, **env})
        servers = {name: tierserve.server for name, tierserve in running.items()}
        results: dict[str, Any] = {
            "configs": configs,
            "started_rss_mib": {name: _largest_rss(server) for name, server in servers.items()},
            "workloads": {},
        }
        print(f"A: {configs['A']}  B: {configs['B']}  workers started at {results['started_rss_mib']} MiB", flush=True)
        for workload in workloads:
            paths = [request.tierserve_path() for request in workload.requests()]
            rows = {}
            for connections in args.connections:
                rows[connections] = _measure(servers, paths, connections, args)
                print(_format(workload.key, connections, rows[connections]), flush=True)
            results["workloads"][workload.key] = rows
    finally:
        for tierserve in running.values():
            tierserve.stop()
    print(f"written {write_results('ab', results)}")


def _measure(
    servers: dict[str, Server], paths: list[str], connections: int, args: argparse.Namespace
) -> dict[str, Any]:
    requests = dict.fromkeys(servers, 0)
    seconds = dict.fromkeys(servers, 0.0)
    cpu = dict.fromkeys(servers, 0.0)
    rss_after_runs = dict.fromkeys(servers, 0.0)
    busiest_shares: dict[str, list[float]] = {name: [] for name in servers}
    latencies: dict[str, list[tuple[float, float]]] = {name: [] for name in servers}
    for server in servers.values():
        wrk.run(server.base_url, paths, connections, args.warmup)
    for _ in range(args.rounds):
        for name, server in servers.items():
            before, workers_before = server.cpu(), _worker_cpu(server)
            summary = wrk.run(server.base_url, paths, connections, args.seconds)
            cpu[name] += server.cpu() - before
            worker_cpu = [now - then for now, then in zip(_worker_cpu(server), workers_before, strict=True)]
            busiest_shares[name].append(max(worker_cpu) / max(1e-9, sum(worker_cpu)))
            requests[name] += int(summary["requests"])
            latencies[name].append((summary["p50_us"] / 1000, summary["p99_us"] / 1000))
            seconds[name] += summary["duration_us"] / 1e6
            rss_after_runs[name] = max(rss_after_runs[name], _largest_rss(server))
    time.sleep(args.quiet)
    return {
        name: {
            "rps": round(requests[name] / seconds[name], 1),
            "cpu_ms_per_request": round(cpu[name] * 1000 / max(1, requests[name]), 3),
            "p50_ms": round(statistics.median(p50 for p50, _ in latencies[name]), 2),
            "p99_ms": round(statistics.median(p99 for _, p99 in latencies[name]), 2),
            "busiest_worker_cpu_shares": [round(share, 2) for share in busiest_shares[name]],
            "rss_after_runs_mib": round(rss_after_runs[name], 1),
            "rss_after_quiet_mib": round(_largest_rss(server), 1),
        }
        for name, server in servers.items()
    }


def _worker_cpu(server: Server) -> list[float]:
    return [cpu_seconds([pid]) for pid in server.workers]


def _largest_rss(server: Server) -> float:
    return max(memory_mib(server.workers, "VmRSS").values())


def _format(key: str, connections: int, row: dict[str, Any]) -> str:
    cells = [
        f"{name}: {m['rps']:8.1f} req/s {m['cpu_ms_per_request']:7.3f} ms CPU/req, p50 / p99 "
        f"{m['p50_ms']:.2f} / {m['p99_ms']:.2f} ms, busiest worker "
        f"{statistics.mean(m['busiest_worker_cpu_shares']):.0%} of the CPU, largest worker "
        f"{m['rss_after_runs_mib']:.0f} MiB after the runs, {m['rss_after_quiet_mib']:.0f} after the pause"
        for name, m in row.items()
    ]
    return f"{key:20} c={connections:<3} " + " | ".join(cells)


def _arguments() -> argparse.Namespace:
    parser = collection_parser(__doc__)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="worker processes of each server")
    for name in ("a", "b"):
        parser.add_argument(
            f"--{name}",
            type=assignment,
            action="append",
            default=[],
            metavar="NAME=VALUE",
            help=f"environment of configuration {name.upper()} (repeatable)",
        )
    parser.add_argument("--only", nargs="+", required=True, help="workload keys of bench.workloads")
    parser.add_argument("--connections", type=lambda s: [int(c) for c in s.split(",")], default=[1, 4])
    parser.add_argument("--seconds", type=int, default=4, help="length of one measured wrk run")
    parser.add_argument("--warmup", type=int, default=2, help="unmeasured wrk run per configuration first")
    parser.add_argument("--rounds", type=int, default=4, help="A B alternations per workload and concurrency")
    parser.add_argument("--quiet", type=float, default=2.0, help="idle seconds before the last RSS reading")
    return parser.parse_args()


if __name__ == "__main__":
    main()

"""Helpers shared by the benchmarks: a real server on a free loopback port, process memory, results."""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx2
import numpy as np
import numpy.typing as npt

RESULTS = Path(__file__).parent / "results"
#: Where bench.collection builds the benchmark collection of bench.compare, unless `--data-dir` says otherwise.
BENCH_DATA_DIR = Path("/var/tmp/tierserve-bench")


def stop_servers_on_sigterm() -> None:
    """Turn SIGTERM (`kill`, `timeout`) into SystemExit, so that the `finally` blocks that stop the
    servers a benchmark started run, instead of leaving them serving."""
    signal.signal(signal.SIGTERM, lambda _signal, _frame: sys.exit(128 + signal.SIGTERM))


def collection_parser(description: str | None) -> argparse.ArgumentParser:
    """An argument parser for a benchmark on the benchmark collection: `description` (the script's
    docstring) shown as written, and `--data-dir` (default `BENCH_DATA_DIR`)."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=BENCH_DATA_DIR, help="the benchmark collection")
    return parser


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(data_dir: Path, port: int, workers: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "TIERSERVE_DATA_DIR": str(data_dir), "TIERSERVE_PORT": str(port)}
    command = [sys.executable, "-m", "tierserve", "serve", "--workers", str(workers)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx2.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return process
        except httpx2.TransportError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("server did not start")


def assignment(text: str) -> tuple[str, str]:
    """NAME=VALUE of a command-line option, as (NAME, VALUE)."""
    name, equals, value = text.partition("=")
    if not name or not equals:
        raise ValueError(f"expected NAME=VALUE, not {text!r}")
    return name, value


def memory_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def write_results(prefix: str, data: object) -> Path:
    """Write `data` as JSON to bench/results/<prefix>-<timestamp>.json and return the path."""
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(data, indent=2))
    return out


def median_cpu_ms(stage: Callable[[int], object], count: int) -> float:
    """Median CPU ms of this thread over `stage(0)` ... `stage(count - 1)`, after one unmeasured pass."""
    for i in range(count):
        stage(i)
    cpu = []
    for i in range(count):
        started = time.thread_time()
        stage(i)
        cpu.append(time.thread_time() - started)
    return statistics.median(cpu) * 1000


def psnr(image: npt.NDArray[np.generic], reference: npt.NDArray[np.generic]) -> float:
    """Peak signal-to-noise ratio of 8-bit samples in dB, rounded to 0.01 (inf when they are equal)."""
    error = float(np.mean((image.astype(np.float64) - reference.astype(np.float64)) ** 2))
    return float("inf") if error == 0 else round(10 * np.log10(255**2 / error), 2)

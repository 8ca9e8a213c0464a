"""Ingest throughput in process and on a local Dask cluster of 1, 2 and 4 worker processes.

    python -m bench.ingest_scale        # 12 images of 8000 x 5000 RGB, 3 rounds, 5-7 minutes on 2 cores
    python -m bench.ingest_scale --env DASK_CONFIG=DIR          # the workers under a Dask config file
    python -m bench.ingest_scale --images 2 --width 16000 --height 10000 --rounds 1 --workers 0,1,2

Writes (once, reused afterwards) synthetic ISH-like slides as tiled JPEG TIFFs (quality 95, as the
demo's sources) and a manifest into `--sources`. Each round then runs `tierserve ingest MANIFEST` in
every configuration (`--workers`): in process (no Dask), then `--dask-workers 1`, `2` and `4`, each
into a fresh data directory with a local store and SQLite, the order rotated from round to round so
that drift hits every configuration. The same command is run a second time on the ingested
directory: every image is then already present, so that run costs only start-up (imports, database,
cluster start and stop), reported as fixed cost.

While a run goes, the ingest process and its descendants (the Dask workers are spawned by the local
cluster inside it) are polled every 0.2 s: peak RSS (VmHWM), threads and CPU time per process; the
tree's user and system CPU come from the kernel when the run ends. The machine's busy CPU is read
from /proc/stat before and after, so the CPU used by other processes during the run is reported
(other load, in cores): runs on a shared machine are only as good as that column.

Prints one table of medians over the rounds (images/s, source megapixels/s, wall time, fixed cost,
CPU seconds of the whole process tree and their system part, peak RSS of the driver and of the
largest worker) and writes every run, with every process seen, as JSON under bench/results/.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyvips

from bench.common import BENCH_DATA_DIR, assignment, write_results
from tierserve.demo.synth import ish_section

POLL_SECONDS = 0.2
#: The configurations measured by default: Dask worker processes, 0 for the plain in-process ingest.
CONFIGURATIONS = (0, 1, 2, 4)
IN_PROCESS = "in process"
DATA_SET = 990000000
TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class ProcessPeak:
    """What polling saw of one process: its largest VmHWM and thread count, its last CPU times."""

    pid: int
    parent: int
    role: str
    peak_kib: int = 0
    threads: int = 0
    user_s: float = 0.0
    sys_s: float = 0.0


@dataclass
class Run:
    configuration: str
    round: int
    images: int
    megapixels: float
    wall_s: float
    fixed_s: float
    user_s: float
    sys_s: float
    other_load_cores: float
    driver_peak_mib: float
    worker_peak_mib: float | None
    processes: list[dict[str, Any]] = field(default_factory=list)

    @property
    def cpu_s(self) -> float:
        return self.user_s + self.sys_s

    @property
    def images_per_s(self) -> float:
        return self.images / self.wall_s

    @property
    def megapixels_per_s(self) -> float:
        return self.megapixels / self.wall_s


def main() -> None:
    args = _arguments()
    manifest = ensure_sources(args.sources, args.images, args.width, args.height)
    megapixels = args.images * args.width * args.height / 1e6
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIERSERVE_")} | dict(args.env)
    print(
        f"{args.images} images of {args.width} x {args.height} RGB ({megapixels:.0f} Mpx) from {manifest}, "
        f"{args.rounds} round(s)",
        flush=True,
    )
    runs: list[Run] = []
    for n in range(args.rounds):
        shift = n % len(args.workers)
        for workers in args.workers[shift:] + args.workers[:shift]:
            run = measure(manifest, workers, args.images, megapixels, env, args.scratch)
            run.round = n + 1
            runs.append(run)
            print(
                f"round {run.round} {run.configuration:>14}: {run.wall_s:6.1f} s (fixed {run.fixed_s:.1f} s), "
                f"CPU {run.cpu_s:6.1f} s (sys {run.sys_s:.1f}), driver {run.driver_peak_mib:.0f} MiB, "
                f"worker {_mib(run.worker_peak_mib)} MiB, other load {run.other_load_cores:.2f} cores",
                flush=True,
            )
    summary = summarise(runs)
    print()
    print(_table(summary))
    settings = {
        "images": args.images,
        "width": args.width,
        "height": args.height,
        "megapixels": megapixels,
        "rounds": args.rounds,
        "workers": args.workers,
        "env": dict(args.env),
    }
    results = {"machine": _machine(), "settings": settings, "summary": summary, "runs": [_run_dict(r) for r in runs]}
    print(f"\nwrote {write_results('ingest-scale', results)}")


def ensure_sources(folder: Path, images: int, width: int, height: int) -> Path:
    """Write the missing sources (seed n for image n) and the manifest listing `images` of them."""
    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    for n in range(1, images + 1):
        path = folder / f"slide-{width}x{height}-{n}.tif"
        if not path.exists():
            print(f"writing source {path}", flush=True)
            slide, _ = ish_section(width, height, seed=n)
            part = path.with_suffix(".part.tif")
            slide.tiffsave(str(part), tile=True, compression="jpeg", Q=95, bigtiff=True)
            part.rename(path)
        entries.append({"id": DATA_SET + n, "section_number": n, "source": path.name})
    manifest = {
        "version": 1,
        "section_data_sets": [{"id": DATA_SET, "name": "benchmark: ingest scale", "images": entries}],
    }
    path = folder / f"manifest-{images}x{width}x{height}.json"
    path.write_text(json.dumps(manifest, indent=2))
    return path


def measure(manifest: Path, workers: int, images: int, megapixels: float, env: dict[str, str], scratch: Path) -> Run:
    """Ingest `manifest` into a fresh data directory, then again (all present) for the fixed cost."""
    name = IN_PROCESS if workers == 0 else f"dask {workers} worker" + ("s" if workers > 1 else "")
    scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=scratch, prefix="ingest-scale-") as directory:
        command = [sys.executable, "-m", "tierserve", "ingest", str(manifest), "--data-dir", directory]
        if workers:
            command += ["--dask-workers", str(workers)]
        busy_before, own_before = _machine_busy_s(), _own_cpu_s()
        wall, (user, system), peaks, output = _run_polled(command, env)
        others = max(0.0, _machine_busy_s() - busy_before - user - system - (_own_cpu_s() - own_before))
        _check(output, f"ingested {images}, already present 0, failed 0", name)
        fixed, _, _, output = _run_polled(command, env)
        _check(output, f"ingested 0, already present {images}, failed 0", name)
    workers_seen = [p for p in peaks if p.role == "dask worker"]
    if len(workers_seen) < workers:
        raise SystemExit(f"{name}: saw {len(workers_seen)} worker processes")
    return Run(
        configuration=name,
        round=0,
        images=images,
        megapixels=megapixels,
        wall_s=wall,
        fixed_s=fixed,
        user_s=user,
        sys_s=system,
        other_load_cores=others / wall,
        driver_peak_mib=next(p.peak_kib for p in peaks if p.role == "driver") / 1024,
        worker_peak_mib=max(p.peak_kib for p in workers_seen) / 1024 if workers_seen else None,
        processes=[asdict(p) for p in peaks],
    )


def _run_polled(command: list[str], env: dict[str, str]) -> tuple[float, tuple[float, float], list[ProcessPeak], str]:
    """Run `command` to its end, polling its process tree; wall seconds, user and system CPU seconds
    (the whole tree, from the kernel), what polling saw per process, and the combined output."""
    with tempfile.TemporaryFile() as log:
        started = time.perf_counter()
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        seen: dict[tuple[int, bytes], ProcessPeak] = {}
        while True:
            _sample(process.pid, seen)
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            time.sleep(POLL_SECONDS)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        log.seek(0)
        output = log.read().decode(errors="replace")
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} exited with {process.returncode}:\n{output}")
    return wall, (usage.ru_utime, usage.ru_stime), list(seen.values()), output


def _sample(root: int, seen: dict[tuple[int, bytes], ProcessPeak]) -> None:
    """Update `seen` with the current peak RSS, threads and CPU time of `root` and its descendants.

    A process is known by its pid and command line: a spawned child starts as a fork of its parent
    (the parent's command line and memory) and becomes itself by exec, which resets its VmHWM.
    """
    root_cmdline = None
    for pid, parent in _descendants(root).items():
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if pid == root:
            root_cmdline = cmdline
        elif cmdline == root_cmdline:  # forked, not yet exec'd
            continue
        if "VmHWM" not in fields:  # a zombie
            continue
        peak = seen.setdefault((pid, cmdline), ProcessPeak(pid, parent, _role(pid, root, cmdline)))
        peak.peak_kib = max(peak.peak_kib, int(fields["VmHWM"].split()[0]))
        peak.threads = max(peak.threads, int(fields["Threads"]))
        peak.user_s, peak.sys_s = int(stat[11]) / TICKS, int(stat[12]) / TICKS


def _descendants(root: int) -> dict[int, int]:
    """`root` and its descendants, each with its parent's pid."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = {root: parents.get(root, 0)}, [root]
    while frontier:
        frontier = [pid for pid, parent in parents.items() if parent in frontier]
        found |= {pid: parents[pid] for pid in frontier}
    return found


def _role(pid: int, root: int, cmdline: bytes) -> str:
    if pid == root:
        return "driver"
    if b"spawn_main" in cmdline:
        return "dask worker"
    return "helper"  # multiprocessing's resource tracker


def _check(output: str, expected: str, name: str) -> None:
    if expected not in output:
        raise SystemExit(f"{name}: expected {expected!r} in the ingest output:\n{output}")


def _machine_busy_s() -> float:
    """CPU seconds the whole machine has spent busy (all cores, idle and iowait excluded)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return (sum(values[:8]) - idle) / TICKS


def _own_cpu_s() -> float:
    """CPU seconds of this process (the polling)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def summarise(runs: list[Run]) -> dict[str, dict[str, float | None]]:
    """Medians over the rounds, per configuration, in measuring order."""
    summary: dict[str, dict[str, float | None]] = {}
    for name in dict.fromkeys(r.configuration for r in runs):
        mine = [r for r in runs if r.configuration == name]
        workers = [r.worker_peak_mib for r in mine if r.worker_peak_mib is not None]
        summary[name] = {
            "runs": len(mine),
            "images_per_s": statistics.median(r.images_per_s for r in mine),
            "megapixels_per_s": statistics.median(r.megapixels_per_s for r in mine),
            "wall_s": statistics.median(r.wall_s for r in mine),
            "wall_s_min": min(r.wall_s for r in mine),
            "wall_s_max": max(r.wall_s for r in mine),
            "fixed_s": statistics.median(r.fixed_s for r in mine),
            "cpu_s": statistics.median(r.cpu_s for r in mine),
            "sys_s": statistics.median(r.sys_s for r in mine),
            "driver_peak_mib": statistics.median(r.driver_peak_mib for r in mine),
            "worker_peak_mib": statistics.median(workers) if workers else None,
            "worker_peak_mib_max": max(workers) if workers else None,
            "other_load_cores": statistics.median(r.other_load_cores for r in mine),
        }
    return summary


def _table(summary: dict[str, dict[str, float | None]]) -> str:
    baseline = summary.get(IN_PROCESS, {}).get("wall_s")
    lines = [
        f"{'configuration':14} | {'images/s':>8} | {'Mpx/s':>6} | {'wall s':>6} | {'min-max':>11} | {'speedup':>7} |"
        f" {'fixed s':>7} | {'CPU s':>6} | {'sys s':>5} | {'driver MiB':>10} | {'worker MiB':>10} | {'other load':>10}",
    ]
    for name, row in summary.items():
        assert row["wall_s"] is not None
        speedup = "-" if baseline is None else f"{baseline / row['wall_s']:.2f}"
        lines.append(
            f"{name:14} | {row['images_per_s']:8.3f} | {row['megapixels_per_s']:6.1f} | {row['wall_s']:6.1f} |"
            f" {row['wall_s_min']:5.1f}-{row['wall_s_max']:<5.1f} | {speedup:>7} |"
            f" {row['fixed_s']:7.1f} | {row['cpu_s']:6.1f} | {row['sys_s']:5.1f} | {row['driver_peak_mib']:10.0f} |"
            f" {_mib(row['worker_peak_mib']):>10} | {row['other_load_cores']:10.2f}"
        )
    return "\n".join(lines)


def _mib(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _run_dict(run: Run) -> dict[str, Any]:
    return asdict(run) | {"images_per_s": run.images_per_s, "megapixels_per_s": run.megapixels_per_s}


def _machine() -> dict[str, Any]:
    return {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "cpus": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "libvips": f"{pyvips.version(0)}.{pyvips.version(1)}.{pyvips.version(2)}",
        "distributed": importlib.metadata.version("distributed"),
        "load_average": os.getloadavg(),
    }


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--sources",
        type=Path,
        default=BENCH_DATA_DIR / "ingest-sources",
        help="folder of the synthetic sources and manifest (written once, reused)",
    )
    parser.add_argument(
        "--scratch", type=Path, default=Path("/var/tmp"), help="where each run's fresh data directory is made"
    )
    parser.add_argument("--images", type=int, default=12)
    parser.add_argument("--width", type=int, default=8000)
    parser.add_argument("--height", type=int, default=5000)
    parser.add_argument(
        "--workers",
        type=lambda text: [int(n) for n in text.split(",")],
        default=list(CONFIGURATIONS),
        help="Dask worker processes of each configuration, 0 for the in-process ingest (default: 0,1,2,4)",
    )
    parser.add_argument("--rounds", type=int, default=3, help="runs of every configuration; medians are reported")
    parser.add_argument(
        "--env",
        type=assignment,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment of the ingest runs (e.g. VIPS_CONCURRENCY=1); inherited TIERSERVE_* ones are dropped",
    )
    return parser.parse_args()


if __name__ == "__main__":
    main()

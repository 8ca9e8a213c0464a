"""Where a worker's CPU goes, by shared object: Linux `perf` on a tierserve worker under a workload.

    python -m bench.perf --only 6-tiles
    python -m bench.perf --only 6-tiles 3-whole-not-stored --connections 4 --seconds 5

Starts `tierserve serve` with one worker and the settings of bench.compare (output cache off), warms
it up with wrk, then samples the worker with `perf record` while wrk replays the workload's paths for
`--seconds`. Prints the CPU ms per request of the worker over that run and each shared object's share
of the samples (the interpreter, the JPEG decoder in simplejpeg, imagecodecs' libjpeg encoder, NumPy,
the kernel, libc, ...) with the ms per request it stands for. Sampling (999 per second) adds a little
CPU of its own: compare the shares, and take CPU per request from bench.stages or bench.ab. Needs
`perf` (linux-perf) and the right to sample (root, or kernel.perf_event_paranoid <= 1). Uses the
benchmark collection of bench.compare.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from bench import collection, wrk
from bench.common import collection_parser, stop_servers_on_sigterm
from bench.servers import BENCH_SETTINGS, TierServe, cpu_seconds
from bench.workloads import standard_workloads

#: Shared objects below this share of the samples are summed into one line.
SHOWN_PERCENT = 0.5


def main() -> None:
    stop_servers_on_sigterm()
    args = _arguments()
    if shutil.which("perf") is None:
        raise SystemExit("bench.perf needs Linux perf (apt install linux-perf)")
    workloads = {w.key: w for w in standard_workloads(**collection.ensure(args.data_dir))}
    tierserve = TierServe(args.data_dir, 1, {**BENCH_SETTINGS, "TIERSERVE_OUTPUT_CACHE_BYTES": "0"})
    try:
        server = tierserve.server
        worker = server.workers[0]
        for key in args.only:
            paths = [r.tierserve_path() for r in workloads[key].requests()]
            wrk.run(server.base_url, paths, args.connections, 2)
            with tempfile.TemporaryDirectory(prefix="tierserve-perf-") as folder:
                data = Path(folder) / "perf.data"
                record = ["perf", "record", "-q", "-F", "999", "-o", str(data), "-p", str(worker)]
                recording = subprocess.Popen(record, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                try:
                    before = cpu_seconds([worker])
                    summary = wrk.run(server.base_url, paths, args.connections, args.seconds)
                    cpu_ms = (cpu_seconds([worker]) - before) * 1000 / max(1, summary["requests"])
                finally:
                    _stop(recording)
                shares = _shares(data)
            print(f"{key}: {summary['rps']:,.0f} req/s, worker CPU {cpu_ms:.3f} ms per request")
            rest = sum(share for share in shares.values() if share < SHOWN_PERCENT)
            for name, share in shares.items():
                if share >= SHOWN_PERCENT:
                    print(f"  {share:5.1f}%  {share * cpu_ms / 100:6.3f} ms  {name}")
            print(f"  {rest:5.1f}%  {rest * cpu_ms / 100:6.3f} ms  (others)")
    finally:
        tierserve.stop()


def _stop(recording: subprocess.Popen[bytes]) -> None:
    """Stop `perf record` as Ctrl-C does (it then writes its data); raise with its message if it failed."""
    recording.send_signal(signal.SIGINT)
    try:
        _, message = recording.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        recording.kill()
        raise SystemExit("perf record did not stop within 60 s") from None
    if recording.returncode not in (0, -signal.SIGINT):
        raise SystemExit(f"perf record failed: {message.decode(errors='replace').strip()}")


def _shares(data: Path) -> dict[str, float]:
    """Percent of the samples in `data` by shared object, largest first."""
    report = ["perf", "report", "-i", str(data), "--stdio", "--no-children", "--sort", "dso", "-g", "none"]
    done = subprocess.run(report, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"perf report failed: {done.stderr.strip()}")
    shares: dict[str, float] = {}
    for line in done.stdout.splitlines():
        share, _, name = line.strip().partition(" ")
        if share.endswith("%") and name and not line.startswith("#"):
            shares[name.strip()] = float(share.rstrip("%"))
    return dict(sorted(shares.items(), key=lambda item: -item[1]))


def _arguments() -> argparse.Namespace:
    parser = collection_parser(__doc__)
    parser.add_argument("--only", nargs="+", default=["6-tiles"], help="workload keys")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--seconds", type=int, default=5, help="length of the sampled wrk run")
    return parser.parse_args()


if __name__ == "__main__":
    main()

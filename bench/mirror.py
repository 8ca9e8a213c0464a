"""Mirror throughput and memory: `tierserve mirror` from a tierserve serving the benchmark collection.

    python -m bench.mirror                                  # the 12-bit connectivity data set, then the ISH one
    python -m bench.mirror --data-set 100141599 --region-size 1024

The source is `tierserve serve --workers 2` over the benchmark collection of bench.compare (built if
absent). Each data set is mirrored by `tierserve mirror` into a fresh data directory (local store,
SQLite), as a child process whose wall time, CPU time and peak RSS (ru_maxrss from wait4) are taken
from the kernel. Prints, per data set: images, full-resolution megapixels fetched (layers included),
bytes received, wall seconds, megapixels per second, CPU seconds, and the peak RSS of the mirror
process next to the size of its largest image held raw (what a mirror that held an image whole would
need at least). Writes the runs as JSON under bench/results/.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import collection
from bench.common import collection_parser, stop_servers_on_sigterm, write_results
from bench.servers import TierServe
from tierserve.db.database import Database
from tierserve.db.models import SubImage
from tierserve.settings import Settings

DATA_SETS = (100141599, 69750000)
_RECEIVED = re.compile(r"([\d.]+) MB received in (\d+) requests \((\d+) retried\)")


def mirror(source: str, data_set: int, region_size: int, data_dir: Path) -> dict[str, Any]:
    """Run `tierserve mirror` of `data_set` into `data_dir`; the kernel's figures and the summary's."""
    command = [sys.executable, "-m", "tierserve", "mirror", "--source", source, "--data-set", str(data_set)]
    command += ["--region-size", str(region_size), "--data-dir", str(data_dir)]
    started = time.perf_counter()
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, stdout=log, stderr=log)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        log.seek(0)
        output = log.read().decode(errors="replace")
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{output}")
    received = _RECEIVED.search(output)
    if received is None:
        raise SystemExit(f"no summary line in the mirror's output:\n{output}")
    return {
        "data_set": data_set,
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_mib": usage.ru_maxrss / 1024,
        "received_mb": float(received.group(1)),
        "requests": int(received.group(2)),
        "retried": int(received.group(3)),
    }


def pixels(data_dir: Path) -> tuple[int, float, float]:
    """Images mirrored, full-resolution megapixels of all their layers, and the largest image raw (MiB)."""
    database = Database(Settings(data_dir=data_dir).resolved_database_url)
    try:
        with database.session() as session:
            images = session.query(SubImage).all()
            megapixels = sum(i.image_width * i.image_height * len(i.layers) for i in images) / 1e6
            largest = max(
                i.image_width * i.image_height * i.number_of_components * (2 if i.bits_per_component > 8 else 1)
                for i in images
            )
            return len(images), megapixels, largest / 2**20
    finally:
        database.dispose()


def main() -> None:
    stop_servers_on_sigterm()
    parser = collection_parser(__doc__)
    parser.add_argument("--data-set", type=int, action="append", help="data sets to mirror (default: both)")
    parser.add_argument("--region-size", type=int, default=2048)
    args = parser.parse_args()
    collection.ensure(args.data_dir)
    source = TierServe(args.data_dir, 2, {"TIERSERVE_ACCESS_LOG": "false"})
    runs = []
    try:
        for data_set in args.data_set or DATA_SETS:
            with tempfile.TemporaryDirectory(prefix="mirror-", dir="/var/tmp") as target:
                run = mirror(source.server.base_url, data_set, args.region_size, Path(target))
                run["images"], run["megapixels"], run["largest_raw_mib"] = pixels(Path(target))
            runs.append(run)
    finally:
        source.stop()
    print(
        f"{'data set':>10} {'images':>6} {'Mpx':>7} {'MB':>7} {'wall s':>7} {'Mpx/s':>6} {'CPU s':>7} "
        f"{'peak RSS MiB':>12} {'largest raw MiB':>15}"
    )
    for run in runs:
        print(
            f"{run['data_set']:>10} {run['images']:>6} {run['megapixels']:>7.0f} {run['received_mb']:>7.0f} "
            f"{run['wall_s']:>7.1f} {run['megapixels'] / run['wall_s']:>6.1f} {run['cpu_s']:>7.1f} "
            f"{run['peak_rss_mib']:>12.0f} {run['largest_raw_mib']:>15.0f}"
        )
    print("written to", write_results("mirror", {"region_size": args.region_size, "runs": runs}))


if __name__ == "__main__":
    main()

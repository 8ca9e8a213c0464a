"""Ingest cost of one large image, and the cost of opening a stored pyramid level.

    python -m bench.pyramid            # 16000 x 10000 RGB, in a temporary folder

Builds a slide-like 16000 x 10000 8-bit RGB image lazily with libvips (Perlin noise), writes its
pyramid with tierserve's writer, and reports wall time, output size and the process's peak RSS
(one decoded copy of the image is 480 MB). Then opens levels of the written file 50 times each and
reports the median open time.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from pathlib import Path

import pyvips

from tierserve.ingest.pyramid_writer import write_pyramid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--width", type=int, default=16000)
    parser.add_argument("--height", type=int, default=10000)
    args = parser.parse_args()
    pyvips.cache_set_max(0)
    grey = pyvips.Image.perlin(args.width, args.height, cell_size=64).linear(100, 128).cast("uchar")
    image = grey.bandjoin([grey, grey]).copy(interpretation="srgb")
    with tempfile.TemporaryDirectory(prefix="tierserve-bench-") as directory:
        path = Path(directory) / "pyramid.ome.tif"
        started = time.perf_counter()
        info = write_pyramid(image, path, Path(directory), quality=90)
        elapsed = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"{args.width} x {args.height} RGB: {info.levels} levels, {path.stat().st_size / 1e6:.1f} MB, "
            f"{elapsed:.1f} s, peak RSS {peak:.0f} MiB (one decoded copy: "
            f"{args.width * args.height * 3 / 1e6:.0f} MB)"
        )
        for level in (0, info.levels - 1):
            times = []
            for _ in range(50):
                started = time.perf_counter()
                pyvips.Image.tiffload(str(path), subifd=level - 1, access="random", fail_on="warning")
                times.append(time.perf_counter() - started)
            print(f"open level {level}: median {statistics.median(times) * 1000:.2f} ms")


if __name__ == "__main__":
    main()

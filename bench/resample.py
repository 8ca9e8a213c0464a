"""Where the CPU of an IIIF thumbnail goes: the stored level's read, the area average, the encode.

    python -m bench.resample

In process, one thread, files open: `--samples` random `full/!w,h/0/default.jpg` thumbnails (w, h in
100-400, as bench.compare's 7-iiif-thumbnails) of the benchmark's 16000 x 10000 image, planned by the
IIIF Image API code. Prints the median CPU ms of the whole render and encode (`run_download`), of
the read of the level box alone, and of the area average (`core.resample.resample_array`) alone, with
the compiled kernel where it was built (`core.area_kernel`), with NumPy given `--numpy`.
Uses the benchmark collection of bench.compare.
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Callable

from bench import collection
from bench.common import collection_parser, median_cpu_ms
from tierserve.api.params import parse_display_options
from tierserve.api.state import AppState
from tierserve.core import area_kernel
from tierserve.core.encode import Encoding
from tierserve.core.pyramid import PyramidFile
from tierserve.core.resample import Resample, resample_array
from tierserve.downloads import DownloadJob, run_download
from tierserve.iiif.image_request import parse_image_request
from tierserve.iiif.image_service import limits_for, parse_identifier, plan_image
from tierserve.settings import Settings


def main() -> None:
    args = _arguments()
    if args.numpy:
        area_kernel._FUNCTIONS.clear()  # as an install without a C compiler
    image = collection.ensure(args.data_dir)["large"]
    state = AppState.from_settings(Settings(data_dir=args.data_dir, decode_threads=1, output_cache_bytes=0))
    try:
        jobs = _thumbnails(state, image.id, args.samples)
        pyramid = PyramidFile(state.store.open(jobs[0].file), state.tiles)
        boxes = [pyramid.read_array(job.spec.plan.level, job.spec.plan.box) for job in jobs]
        stages: dict[str, Callable[[int], object]] = {
            "render + encode": lambda i: run_download(jobs[i], state.store, state.tiles, lambda _: True),
            "read level box": lambda i: pyramid.read_array(jobs[i].spec.plan.level, jobs[i].spec.plan.box),
            "area average": lambda i: resample_array(boxes[i], _resample(jobs[i])),
        }
        kernel = "compiled" if area_kernel.available() else "numpy"
        print(f"IIIF thumbnails of {image.id}, median CPU ms over {len(jobs)} (one thread, {kernel} area average):")
        for name, stage in stages.items():
            print(f"  {name:16} {median_cpu_ms(stage, len(jobs)):.3f}")
    finally:
        state.close()


def _thumbnails(state: AppState, image_id: int, count: int) -> list[DownloadJob]:
    rng = random.Random("7-iiif-thumbnails")
    record = state.images.get(image_id)
    identifier = parse_identifier(str(image_id))
    limits = limits_for(state.settings.max_output_pixels)
    jobs = []
    for _ in range(count):
        size = f"!{rng.randrange(100, 401)},{rng.randrange(100, 401)}"
        request = parse_image_request(2, "full", size, "0", "default.jpg")
        planned = plan_image(record, identifier, request, parse_display_options([]), limits, Encoding(75, "420"))
        jobs.append(planned.job)
    return jobs


def _resample(job: DownloadJob) -> Resample:
    resample = job.spec.resample
    if resample is None:
        raise SystemExit("a thumbnail that is a stored level: no area average to time")
    return resample


def _arguments() -> argparse.Namespace:
    parser = collection_parser(__doc__)
    parser.add_argument("--samples", type=int, default=100, help="thumbnails timed")
    parser.add_argument("--numpy", action="store_true", help="average with NumPy, as where area.c was not built")
    return parser.parse_args()


if __name__ == "__main__":
    main()

"""libjpeg-turbo's fast integer DCT against the accurate one, on the benchmark's own pixels.

    python -m bench.dct

IIPImage encodes every JPEG with the fast integer DCT (JDCT_IFAST); tierserve's encoders (libvips,
imagecodecs) use the accurate one (JDCT_ISLOW) and expose no switch. For the 1000 x 1000 region and
the 256 x 256 tile of the benchmark image at qualities 75, 90 and 100, this measures single-thread
CPU (median of `--samples` runs, `time.thread_time`) of:
- encoding the request's pixels (4:2:0): imagecodecs (accurate, tierserve's `encode_jpeg_array`)
  and simplejpeg with and without `fastdct`, with the sizes and the PSNR of simplejpeg's output
  against the accurate one. simplejpeg's `encode_jpeg` calls TurboJPEG's `tjCompress2` without
  TJFLAG_ACCURATEDCT, which encodes with the fast DCT below quality 96 and the accurate one from 96
  whatever `fastdct` says (libjpeg-turbo 3.1 turbojpeg.c), so `same` shows whether `fastdct`
  changed a byte;
- decoding the stored tiles the request touches: tifffile's decoder (imagecodecs, tierserve's
  before simplejpeg), and tierserve's tile decoder (`core.tiles`, simplejpeg) with the accurate and
  the fast DCT, with whether the accurate decode equals the old one sample for sample and the PSNR
  of the fast decode against it.
Uses the benchmark collection of bench.compare.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import imagecodecs
import numpy as np
import numpy.typing as npt
import simplejpeg

from bench import collection, floor
from bench.common import collection_parser, psnr, write_results
from bench.workloads import TILE, BenchImage, Request
from tierserve.core.tiles import TileIndex
from tierserve.storage import local_file

QUALITIES = (75, 90, 100)


def main() -> None:
    args = _arguments()
    image = collection.ensure(args.data_dir)["large"]
    path = args.data_dir / "store" / image.store_key
    rows = []
    for name, request in _requests(image).items():
        pixels = floor.render(path, request)
        rows.append({"request": name, **_encode_row(pixels, request.quality, args.samples)})
        rows[-1].update(_decode_row(path, request, args.samples))
    _print(rows)
    print(f"written {write_results('dct', {'samples': args.samples, 'rows': rows})}")


def _requests(image: BenchImage) -> dict[str, Request]:
    left, top = image.width // 2, image.height // 2
    requests = {}
    for quality in QUALITIES:
        requests[f"region-q{quality}"] = Request(image, 0, quality, left, top, 1000, 1000)
        requests[f"tile-q{quality}"] = Request(image, 0, quality, left // TILE * TILE, top // TILE * TILE, TILE, TILE)
    return requests


def _stored_tiles(path: Path, request: Request) -> tuple[Any, list[tuple[int, bytes]]]:
    """The level-0 page of `path` and (index, stored bytes) of every tile of it `request` touches."""
    pages, _ = floor.level_pages(path)
    page = pages[0]
    columns = -(-page.shape[1] // TILE)
    width, height = request.output_size
    with path.open("rb") as handle:
        found = []
        for row in range(request.top // TILE, (request.top + height - 1) // TILE + 1):
            for col in range(request.left // TILE, (request.left + width - 1) // TILE + 1):
                index = row * columns + col
                handle.seek(page.dataoffsets[index])
                found.append((index, handle.read(page.databytecounts[index])))
    return page, found


def _encode_row(pixels: npt.NDArray[np.uint8], quality: int, samples: int) -> dict[str, Any]:
    def encode_accurate() -> bytes:
        return bytes(imagecodecs.jpeg8_encode(pixels, level=quality, subsampling="420"))

    def encode_simplejpeg(fastdct: bool) -> Callable[[], bytes]:
        return lambda: bytes(simplejpeg.encode_jpeg(pixels, quality=quality, colorsubsampling="420", fastdct=fastdct))

    accurate, default, fast = encode_accurate(), encode_simplejpeg(False)(), encode_simplejpeg(True)()
    return {
        "encode_accurate_ms": _cpu_ms(encode_accurate, samples),
        "encode_simplejpeg_ms": _cpu_ms(encode_simplejpeg(False), samples),
        "encode_fastdct_ms": _cpu_ms(encode_simplejpeg(True), samples),
        "bytes_accurate": len(accurate),
        "bytes_simplejpeg": len(default),
        "fastdct_same_bytes": fast == default,
        "encode_psnr_db": psnr(imagecodecs.jpeg8_decode(accurate), imagecodecs.jpeg8_decode(default)),
    }


def _decode_row(path: Path, request: Request, samples: int) -> dict[str, Any]:
    page, tiles = _stored_tiles(path, request)
    file = local_file(path)
    accurate_tile, fast_tile = (TileIndex(file, dct).levels[0].decode for dct in ("accurate", "fast"))

    def tifffile_decode() -> list[npt.NDArray[np.generic]]:
        return [page.decode(data, index, jpegtables=page.jpegtables)[0] for index, data in tiles]

    def decode_accurate() -> list[npt.NDArray[np.generic]]:
        return [accurate_tile(data, index) for index, data in tiles]

    def decode_fast() -> list[npt.NDArray[np.generic]]:
        return [fast_tile(data, index) for index, data in tiles]

    accurate = np.stack(decode_accurate())
    return {
        "tiles": len(tiles),
        "decode_tifffile_ms": _cpu_ms(tifffile_decode, samples),
        "decode_accurate_ms": _cpu_ms(decode_accurate, samples),
        "decode_fast_ms": _cpu_ms(decode_fast, samples),
        "decode_equal": bool(np.array_equal(accurate, np.stack(tifffile_decode()).reshape(accurate.shape))),
        "decode_psnr_db": psnr(accurate, np.stack(decode_fast())),
    }


def _cpu_ms(work: Callable[[], object], samples: int) -> float:
    work()
    times = []
    for _ in range(samples):
        started = time.thread_time()
        work()
        times.append(time.thread_time() - started)
    return round(statistics.median(times) * 1000, 3)


def _print(rows: list[dict[str, Any]]) -> None:
    print(
        f"{'request':<13}{'enc acc ms':>11}{'enc sj ms':>10}{'fastdct ms':>11}{'bytes acc':>10}{'bytes sj':>9}"
        f"{'same':>6}{'enc dB':>7}{'tiles':>6}{'dec old ms':>11}{'dec acc ms':>11}{'dec fast ms':>12}{'equal':>6}"
        f"{'dec dB':>7}"
    )
    for r in rows:
        print(
            f"{r['request']:<13}{r['encode_accurate_ms']:>11}{r['encode_simplejpeg_ms']:>10}"
            f"{r['encode_fastdct_ms']:>11}{r['bytes_accurate']:>10}{r['bytes_simplejpeg']:>9}"
            f"{r['fastdct_same_bytes']!s:>6}{r['encode_psnr_db']:>7}{r['tiles']:>6}{r['decode_tifffile_ms']:>11}"
            f"{r['decode_accurate_ms']:>11}{r['decode_fast_ms']:>12}{r['decode_equal']!s:>6}{r['decode_psnr_db']:>7}"
        )


def _arguments() -> argparse.Namespace:
    parser = collection_parser(__doc__)
    parser.add_argument("--samples", type=int, default=40, help="timed runs per measurement")
    return parser.parse_args()


if __name__ == "__main__":
    main()

"""libjpeg-turbo's fast integer DCT against the accurate one, on the benchmark's own pixels.

    pip install simplejpeg && python -m bench.dct

IIPImage encodes every JPEG with the fast integer DCT (JDCT_IFAST); tierserve's encoders (libvips,
imagecodecs) use the accurate one (JDCT_ISLOW) and expose no switch. simplejpeg, a maintained
libjpeg-turbo binding, does (`fastdct`). For the 1000 x 1000 region and the 256 x 256 tile of the
benchmark image at qualities 75, 90 and 100, this measures single-thread CPU (median of `--samples`
runs, `time.thread_time`) of:
- encoding the request's pixels: imagecodecs (accurate) and simplejpeg with the fast DCT, with the
  sizes and the PSNR of the fast output against the accurate output;
- decoding the stored tiles the request touches: imagecodecs (accurate, as tierserve does),
  simplejpeg with the accurate DCT (to tell the binding from the DCT) and with the fast DCT (the
  tile's JPEG tables spliced in front), with the PSNR of the fast decode against the accurate one.
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
from bench.common import write_results
from bench.workloads import TILE, BenchImage, Request

QUALITIES = (75, 90, 100)


def main() -> None:
    args = _arguments()
    image = collection.ensure(args.data_dir)["large"]
    path = args.data_dir / "store" / image.store_key
    rows = []
    for name, request in _requests(image).items():
        pixels = floor.render(path, request)
        tiles = _stored_tiles(path, request)
        rows.append({"request": name, **_encode_row(pixels, request.quality, args.samples)})
        rows[-1].update(_decode_row(tiles, args.samples))
    _print(rows)
    print(f"written {write_results('dct', {'samples': args.samples, 'rows': rows})}")


def _requests(image: BenchImage) -> dict[str, Request]:
    left, top = image.width // 2, image.height // 2
    requests = {}
    for quality in QUALITIES:
        requests[f"region-q{quality}"] = Request(image, 0, quality, left, top, 1000, 1000)
        requests[f"tile-q{quality}"] = Request(image, 0, quality, left // TILE * TILE, top // TILE * TILE, TILE, TILE)
    return requests


def _stored_tiles(path: Path, request: Request) -> list[tuple[bytes, bytes]]:
    """(JPEG tables, tile data) of every stored level-0 tile `request` touches."""
    pages, _ = floor._pages(path)
    page = pages[0]
    columns = -(-page.shape[1] // TILE)
    width, height = request.output_size
    with path.open("rb") as handle:
        found = []
        for row in range(request.top // TILE, (request.top + height - 1) // TILE + 1):
            for col in range(request.left // TILE, (request.left + width - 1) // TILE + 1):
                index = row * columns + col
                handle.seek(page.dataoffsets[index])
                found.append((page.jpegtables or b"", handle.read(page.databytecounts[index])))
    return found


def _encode_row(pixels: npt.NDArray[np.uint8], quality: int, samples: int) -> dict[str, Any]:
    def encode_accurate() -> bytes:
        return bytes(imagecodecs.jpeg8_encode(pixels, level=quality, subsampling="420"))

    def encode_fast() -> bytes:
        return bytes(simplejpeg.encode_jpeg(pixels, quality=quality, colorsubsampling="420", fastdct=True))

    accurate, fast = encode_accurate(), encode_fast()
    return {
        "encode_accurate_ms": _cpu_ms(encode_accurate, samples),
        "encode_fast_ms": _cpu_ms(encode_fast, samples),
        "bytes_accurate": len(accurate),
        "bytes_fast": len(fast),
        "encode_psnr_db": _psnr(imagecodecs.jpeg8_decode(accurate), imagecodecs.jpeg8_decode(fast)),
    }


def _decode_row(tiles: list[tuple[bytes, bytes]], samples: int) -> dict[str, Any]:
    whole = [_spliced(tables, data) for tables, data in tiles]

    def accurate() -> list[npt.NDArray[np.uint8]]:
        return [imagecodecs.jpeg8_decode(data, tables=tables) for tables, data in tiles]

    def accurate_simplejpeg() -> list[npt.NDArray[np.uint8]]:
        return [simplejpeg.decode_jpeg(data, fastdct=False) for data in whole]

    def fast() -> list[npt.NDArray[np.uint8]]:
        return [simplejpeg.decode_jpeg(data, fastdct=True) for data in whole]

    return {
        "tiles": len(tiles),
        "decode_accurate_ms": _cpu_ms(accurate, samples),
        "decode_accurate_simplejpeg_ms": _cpu_ms(accurate_simplejpeg, samples),
        "decode_fast_ms": _cpu_ms(fast, samples),
        "decode_psnr_db": _psnr(np.stack(accurate()), np.stack(fast())),
    }


def _spliced(tables: bytes, data: bytes) -> bytes:
    """A whole JPEG stream from abbreviated TIFF tile data and the page's tables (both SOI...EOI)."""
    return tables[:-2] + data[2:] if tables else data


def _cpu_ms(work: Callable[[], object], samples: int) -> float:
    work()
    times = []
    for _ in range(samples):
        started = time.thread_time()
        work()
        times.append(time.thread_time() - started)
    return round(statistics.median(times) * 1000, 3)


def _psnr(a: npt.NDArray[np.generic], b: npt.NDArray[np.generic]) -> float:
    error = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if error == 0 else round(10 * np.log10(255**2 / error), 2)


def _print(rows: list[dict[str, Any]]) -> None:
    header = (
        f"{'request':<14}{'enc acc ms':>11}{'enc fast ms':>12}{'bytes acc':>11}{'bytes fast':>11}{'enc dB':>8}"
        f"{'tiles':>6}{'dec acc ms':>11}{'sj acc ms':>10}{'dec fast ms':>12}{'dec dB':>8}"
    )
    print(header)
    for r in rows:
        print(
            f"{r['request']:<14}{r['encode_accurate_ms']:>11}{r['encode_fast_ms']:>12}{r['bytes_accurate']:>11}"
            f"{r['bytes_fast']:>11}{r['encode_psnr_db']:>8}{r['tiles']:>6}{r['decode_accurate_ms']:>11}"
            f"{r['decode_accurate_simplejpeg_ms']:>10}"
            f"{r['decode_fast_ms']:>12}{r['decode_psnr_db']:>8}"
        )


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=Path("/var/tmp/tierserve-bench"))
    parser.add_argument("--samples", type=int, default=40, help="timed runs per measurement")
    return parser.parse_args()


if __name__ == "__main__":
    main()

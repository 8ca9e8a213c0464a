"""A tile at another quality by requantizing its DCT coefficients, against decoding and re-encoding it.

    python -m bench.requantize
    python -m bench.requantize --quality 50 --samples 400

A lever of the performance issue for tiles asked for at a quality other than the stored one, measured
and not adopted: `bench/requantize.c` (compiled here with the system's libjpeg, `cc` and libjpeg's
headers needed) entropy-decodes the stored tile's coefficients, scales them to the quantization tables
libjpeg writes at `--quality`, and entropy-encodes them again: no DCT, no colour conversion, no chroma
resampling. Beside it, bench.floor's decode and encode of the same tiles (the requests of workload
`6-tiles`). Prints the median CPU ms per tile of each, one thread, the median output bytes, and the
PSNR of each output's pixels against the stored tile's.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import imagecodecs

from bench import collection, floor
from bench.common import collection_parser, psnr
from bench.workloads import Request, standard_workloads

SOURCE = Path(__file__).with_name("requantize.c")


def main() -> None:
    args = _arguments()
    workload = {w.key: w for w in standard_workloads(**collection.ensure(args.data_dir))}["6-tiles"]
    requests = [replace(r, quality=args.quality) for r in workload.requests()[: args.samples]]
    path = args.data_dir / "store" / requests[0].image.store_key
    streams = [_stored_stream(path, r) for r in requests]
    with tempfile.TemporaryDirectory(prefix="tierserve-requantize-") as folder:
        requantize = _compiled(Path(folder))
        ways: dict[str, Callable[[int], bytes]] = {
            "decode + encode (bench.floor)": lambda i: floor.encode(floor.render(path, requests[i]), args.quality),
            "requantize the coefficients": lambda i: requantize(streams[i], args.quality),
        }
        stored = [imagecodecs.jpeg8_decode(stream) for stream in streams]
        for name, way in ways.items():
            outputs = [way(i) for i in range(len(requests))]  # unmeasured pass: pages parsed, caches warm
            cpu = []
            for i in range(len(requests)):
                started = time.thread_time()
                way(i)
                cpu.append(time.thread_time() - started)
            fidelity = [psnr(imagecodecs.jpeg8_decode(o), s) for o, s in zip(outputs, stored, strict=True)]
            print(
                f"{name:32} {statistics.median(cpu) * 1000:6.3f} ms CPU per tile, "
                f"{statistics.median(map(len, outputs)):8,.0f} bytes, "
                f"PSNR against the stored tile: median {statistics.median(fidelity):5.2f} dB, "
                f"lowest {min(fidelity):5.2f}"
            )


def _stored_stream(path: Path, request: Request) -> bytes:
    """The whole JPEG stream of the stored tile `request` asks for (JPEGTables spliced in if any)."""
    pages, fd = floor.level_pages(path)
    page = pages[request.downsample]
    index = (request.top >> request.downsample) // page.tilelength * -(-page.imagewidth // page.tilewidth)
    index += (request.left >> request.downsample) // page.tilewidth
    data = os.pread(fd, page.databytecounts[index], page.dataoffsets[index])
    return bytes(page.jpegtables[:-2]) + data[2:] if page.jpegtables else data


def _compiled(folder: Path) -> Callable[[bytes, int], bytes]:
    """`bench_requantize` of requantize.c, built in `folder`, as stream, quality -> stream."""
    if shutil.which("cc") is None:
        raise SystemExit("bench.requantize needs a C compiler (cc) and libjpeg's headers (libjpeg-dev)")
    library = folder / "requantize.so"
    command = ["cc", "-O2", "-shared", "-fPIC", "-o", str(library), str(SOURCE), "-ljpeg"]
    built = subprocess.run(command, capture_output=True, text=True)
    if built.returncode:
        raise SystemExit(f"could not build {SOURCE.name} (libjpeg-dev installed?):\n{built.stderr}")
    function = ctypes.CDLL(str(library)).bench_requantize
    function.argtypes = [ctypes.c_char_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_char_p, ctypes.c_ulong]
    function.restype = ctypes.c_long
    out = ctypes.create_string_buffer(1 << 22)

    def requantize(stream: bytes, quality: int) -> bytes:
        size = function(stream, len(stream), quality, out, len(out))
        if size < 0:
            raise ValueError(f"libjpeg could not requantize a stored tile ({size})")
        return ctypes.string_at(out, size)

    return requantize


def _arguments() -> argparse.Namespace:
    parser = collection_parser(__doc__)
    parser.add_argument("--quality", type=int, default=75, help="quality of the outputs")
    parser.add_argument("--samples", type=int, default=200, help="tiles of workload 6-tiles")
    return parser.parse_args()


if __name__ == "__main__":
    main()

"""tierserve reading its pyramids from an S3-compatible object store, side by side with the local store.

    python -m bench.store      # builds the benchmark collection first when it is missing (bench/collection.py)

Starts moto's S3 server (a Python process on loopback) behind a proxy that can hold every request for
a fixed delay (`tests/s3.py`), ingests the benchmark collection's two manifests into a new bucket
with `tierserve ingest` (in a data directory of its own, removed afterwards: its records name the
bucket's objects and versions), and starts two `tierserve serve` processes of one worker each: one
over the benchmark collection's local store, one over the bucket. Then, in one run:

1. Store requests per request. For the first requests of each standard workload: the GETs the
   server sent, the rounds they came in, and the bytes they fetched, beside the 256 x 256 tiles the
   request touches (from the tier maths), the stored bytes of those tiles, and the GETs and bytes
   of fetching them when only ranges less than 64 KiB apart share a GET. Requests on a fresh server
   (cold: the file's TIFF directories not parsed yet) are counted apart from requests on a server
   that has read the file before (warm). They run with the delay added to every store request; GETs
   that arrive less than half the delay after the one before belong to the same round. Median
   latency beside them: local store, bucket, bucket with the delay.
2. Latency of sequential requests from one client: 1000 x 1000 full-resolution regions and 256 x 256
   tiles (workloads 1-region-q75 and 6-tiles), warm, on the local store, on the bucket, and on the
   bucket with the delay, interleaved.
3. The whole 16000 x 10000 image at full resolution (workload 5): time to first byte, total time,
   the server's RSS before and peak while streaming, local store against bucket.

It also times single ranged GETs from this process, straight to moto and through the proxy, to
separate moto's own cost per GET from the added delay. Prints the tables and writes them as JSON
under bench/results/.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import moto
import numpy as np
import numpy.typing as npt
import obstore
import pyvips
import tifffile

from bench import collection
from bench.common import collection_parser, free_port, memory_kib, write_results
from bench.servers import BENCH_SETTINGS, reset_peak_rss
from bench.workloads import BenchImage, Request, Workload, standard_workloads
from tierserve.core.tiers import Box, plan_read, resolve_window
from tierserve.db.database import Database
from tierserve.db.models import SubImage
from tierserve.settings import Settings
from tierserve.storage import ObjectInfo
from tierserve.storage.object_store import ObjectStore

# The test suite's moto server and fault proxy (tests/s3.py), imported at run time: mypy holds bench to
# strict typing and would follow a static import into the test modules, which it does not check.
_s3: Any = importlib.import_module("tests.s3")
CREDENTIALS: dict[str, str] = _s3.CREDENTIALS

BUCKET = "tierserve-bench"
PREFIX = "collection"
#: The manifests `bench.collection` ingests, relative to the benchmark data directory (the size pair's
#: only when a size workload runs: its 64000 x 40000 image takes most of the ingest).
DEMO_MANIFEST, SIZE_PAIR_MANIFEST = "demo-sources/manifest.yaml", "bench-sources/manifest.json"
#: A GET that arrives later than this fraction of the delay after the previous one starts a new round.
ROUND_GAP = 0.5
#: Idle seconds before the whole-image streams (a worker gives freed heap back after a quiet second).
SETTLE_SECONDS = 3
#: Single GETs timed from this process, per size and route.
GET_SAMPLES = 50
GET_SIZES = {"16 KiB": 16 * 1024, "1 MiB": 1024 * 1024}


def main() -> None:
    args = _arguments()
    images = collection.ensure(args.data_dir)
    every = standard_workloads(**images)
    requests = {w.key: w.requests() for w in every}
    workloads = [w for w in every if not args.only or w.key in args.only]
    size_pair = any(w.key.startswith("size-") for w in workloads)
    manifests = [DEMO_MANIFEST, SIZE_PAIR_MANIFEST] if size_pair else [DEMO_MANIFEST]
    ingested_roles = ["large", "deep", "small", "huge"] if size_pair else ["large", "deep"]
    results: dict[str, Any] = {"machine": _machine(), "settings": vars(args) | {"data_dir": str(args.data_dir)}}
    with (
        _s3.MotoServer() as moto,
        TimedProxy(moto.url.removeprefix("http://")) as proxy,
        tempfile.TemporaryDirectory(prefix="tierserve-bench-s3-", dir="/var/tmp") as folder,
    ):
        s3_dir = Path(folder)
        moto.create_bucket(BUCKET)
        results["ingest_seconds"] = _ingest(args.data_dir, manifests, s3_dir, moto.url)
        print(f"ingested into s3://{BUCKET}/{PREFIX} in {results['ingest_seconds']} s", flush=True)
        s3_env = {**CREDENTIALS, "AWS_ENDPOINT_URL": proxy.url, "TIERSERVE_STORE_URL": f"s3://{BUCKET}/{PREFIX}"}
        stored = {role: _stored_key(s3_dir, image.id) for role, image in images.items() if role in ingested_roles}
        results["get_latency"] = _get_latency(moto.url, proxy, stored, args.rtt)
        _print_get_latency(results["get_latency"], args.rtt)
        with Serving(args.data_dir, {}) as local, Serving(s3_dir, s3_env) as remote:
            _check_same_answers(local, remote, [requests[w.key][0] for w in workloads])
            results["store_requests"] = _store_requests(args, workloads, requests, local, remote, proxy)
            results["latency"] = _latency(args, requests, local, remote, proxy)
            _print_latency(results["latency"], args.rtt)
            results["whole_image"] = _whole_image(args, images["large"], local, remote, proxy)
            _print_whole_image(results["whole_image"], args.rtt)
    print(f"written {write_results('store', results)}")


def _arguments() -> argparse.Namespace:
    parser = collection_parser(__doc__)
    parser.add_argument("--rtt", type=float, default=0.02, help="seconds added to every store request (default 0.02)")
    parser.add_argument("--warm", type=int, default=10, help="warm requests counted per workload")
    parser.add_argument("--cold", type=int, default=3, help="cold requests (each on a fresh server) per workload")
    parser.add_argument("--samples", type=int, default=50, help="timed requests per kind and store in the latency part")
    parser.add_argument("--full-runs", type=int, default=3, help="whole full-resolution images per store")
    parser.add_argument("--only", nargs="*", default=[], help="workload keys of part 1 (default: all standard ones)")
    return parser.parse_args()


# the store's side: a proxy that notes when requests arrive, and the ingest into the bucket


@dataclass(frozen=True, slots=True)
class Arrival:
    """One request the proxy received: when (`time.monotonic`), counted method, Range header."""

    at: float
    method: str
    range: str | None

    @property
    def length(self) -> int | None:
        """Bytes asked for by a `bytes=first-last` range; None without one."""
        if self.range is None or not self.range.startswith("bytes="):
            return None
        first, _, last = self.range.removeprefix("bytes=").partition("-")
        return int(last) - int(first) + 1


class TimedProxy(_s3.FaultProxy):  # type: ignore[misc]  # FaultProxy is Any here, see _s3
    """A `FaultProxy` that also notes the arrival time of each request, for counting rounds of GETs.

    `take()` returns the arrivals since the last call and forgets them; the `delay` switch stays set.
    """

    def __init__(self, upstream: str) -> None:
        super().__init__(upstream)
        self._arrivals: list[Arrival] = []
        self._arrivals_lock = threading.Lock()

    def _decide(self, method: str, target: str, headers: dict[str, str]) -> tuple[str, float]:
        decision: tuple[str, float] = super()._decide(method, target, headers)
        counted = "LIST" if method == "GET" and "list-type=" in target else method
        with self._arrivals_lock:
            self._arrivals.append(Arrival(time.monotonic(), counted, headers.get("range")))
        return decision

    def take(self) -> list[Arrival]:
        with self._arrivals_lock:
            taken, self._arrivals = self._arrivals, []
        return taken


def traffic(arrivals: Sequence[Arrival], delay: float) -> dict[str, Any]:
    """GETs, their rounds (None without a delay to tell them apart), bytes asked for, other requests."""
    gets = sorted(a.at for a in arrivals if a.method == "GET")
    rounds = None
    if delay > 0:
        rounds = sum(
            1 for earlier, later in zip([-1e9, *gets], gets, strict=False) if later - earlier > delay * ROUND_GAP
        )
    others = Counter(a.method for a in arrivals if a.method != "GET")
    return {
        "gets": len(gets),
        "rounds": rounds,
        "bytes": sum(a.length or 0 for a in arrivals if a.method == "GET"),
        "unranged_gets": sum(1 for a in arrivals if a.method == "GET" and a.length is None),
        "other": dict(others),
    }


def _ingest(data_dir: Path, manifests: list[str], s3_dir: Path, endpoint: str) -> float:
    """`tierserve ingest` of the benchmark manifests into the bucket (straight to moto); seconds taken."""
    env = {
        **os.environ,
        **CREDENTIALS,
        "AWS_ENDPOINT_URL": endpoint,
        "TIERSERVE_STORE_URL": f"s3://{BUCKET}/{PREFIX}",
        "TIERSERVE_DATA_DIR": str(s3_dir),
    }
    started = time.perf_counter()
    for manifest in manifests:
        print(f"tierserve ingest {data_dir / manifest} into s3://{BUCKET}/{PREFIX}", flush=True)
        command = [sys.executable, "-m", "tierserve", "ingest", str(data_dir / manifest)]
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"tierserve ingest failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return round(time.perf_counter() - started, 1)


def _stored_key(data_dir: Path, image_id: int) -> str:
    """The store key recorded for SubImage `image_id` in the database of `data_dir`."""
    database = Database(Settings(data_dir=data_dir).resolved_database_url)
    try:
        with database.session() as session:
            row = session.get(SubImage, image_id)
            if row is None:
                raise SystemExit(f"no SubImage {image_id} in {data_dir}")
            return row.path
    finally:
        database.dispose()


def _get_latency(endpoint: str, proxy: TimedProxy, keys: dict[str, str], rtt: float) -> dict[str, Any]:
    """Median ms of single ranged GETs at random offsets, from this process through obstore.

    "routes": GETs of each of `GET_SIZES` from the object `keys["large"]` straight to moto, through the
    proxy, and through the proxy with `rtt` added. "by_object": 16 KiB GETs straight to moto from
    objects of different sizes (a 64 KiB object written here, and the objects of `keys`): moto reads
    and copies the whole object for every ranged GET, so its cost per GET grows with the object's size.
    """
    rng = random.Random(5)
    result: dict[str, Any] = {"routes": {}, "by_object": {}}
    with tempfile.TemporaryDirectory() as scratch:

        def store(url: str) -> ObjectStore:
            environ = {**CREDENTIALS, "AWS_ENDPOINT_URL": url}
            return ObjectStore.from_url(f"s3://{BUCKET}/{PREFIX}", Path(scratch), environ=environ)

        direct = store(endpoint)
        with direct.publish("bench/get-latency", direct.scratch_root()) as publication:
            publication.path.write_bytes(bytes(64 * 1024))
        assert publication.info is not None
        objects = {"64 KiB object": publication.info, **{name: direct.stat(key) for name, key in keys.items()}}
        for name, info in objects.items():
            result["by_object"][name] = {"bytes": info.size, "ms": _median_get_ms(direct, info, 16 * 1024, rng)}
        routes = {"moto": (endpoint, 0.0), "proxy": (proxy.url, 0.0), "proxy + delay": (proxy.url, rtt)}
        for route, (url, delay) in routes.items():
            proxy.delay = delay
            client = store(url)
            result["routes"][route] = {
                name: _median_get_ms(client, objects["large"], size, rng) for name, size in GET_SIZES.items()
            }
    proxy.delay = 0.0
    proxy.take()
    return result


def _median_get_ms(store: ObjectStore, info: ObjectInfo, size: int, rng: random.Random) -> float:
    """Median ms of `GET_SAMPLES` GETs of `size` bytes (fewer, at least 5, past 10 s), after 2 unmeasured."""
    samples: list[float] = []
    deadline = time.monotonic() + 10
    for i in range(GET_SAMPLES + 2):
        if len(samples) >= 5 and time.monotonic() > deadline:
            break
        offset = rng.randrange(info.size - size + 1)
        started = time.perf_counter()
        store.read(info, [(offset, size)])
        if i >= 2:
            samples.append(time.perf_counter() - started)
    return round(statistics.median(samples) * 1000, 2)


# the servers


class Serving:
    """`tierserve serve` (one process, no worker children) over `data_dir` with `env` added."""

    def __init__(self, data_dir: Path, env: dict[str, str]) -> None:
        self.data_dir = data_dir
        self.env = env
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Serving:
        env = {
            **os.environ,
            **BENCH_SETTINGS,
            **self.env,
            "TIERSERVE_DATA_DIR": str(self.data_dir),
            "TIERSERVE_PORT": str(self.port),
            "TIERSERVE_WORKERS": "1",
        }
        command = [sys.executable, "-m", "tierserve", "serve"]
        self.process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"tierserve serve exited with status {self.process.returncode}")
            try:
                httpx2.get(f"{self.base_url}/healthz", timeout=2)
                return self
            except httpx2.TransportError:
                time.sleep(0.1)
        self.__exit__()
        raise SystemExit(f"tierserve serve did not answer on {self.base_url} within 60 s")

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid


def fetch(client: httpx2.Client, path: str) -> tuple[float, float, int]:
    """Seconds to the first body byte, seconds in total, bytes received; raises unless 200."""
    started = time.perf_counter()
    first, size = 0.0, 0
    with client.stream("GET", path) as response:
        if response.status_code != 200:
            response.read()
            raise SystemExit(f"{response.status_code} for {path}: {response.text[:300]}")
        for chunk in response.iter_raw():
            first = first or time.perf_counter() - started
            size += len(chunk)
    return first, time.perf_counter() - started, size


@contextmanager
def clients(*servers: Serving) -> Iterator[list[httpx2.Client]]:
    opened = [httpx2.Client(base_url=s.base_url, timeout=300) for s in servers]
    try:
        yield opened
    finally:
        for client in opened:
            client.close()


def _check_same_answers(local: Serving, remote: Serving, requests: list[Request]) -> None:
    """Both stores answer the first request of each workload with the same bytes."""
    with clients(local, remote) as (a, b):
        for request in requests:
            path = request.tierserve_path()
            if a.get(path).content != b.get(path).content:
                raise SystemExit(f"local store and bucket answer {path} differently")


# 1. store requests per request


@dataclass(frozen=True, slots=True)
class Level:
    """Tile size, tiles per row, and each tile's offset and stored length, of one stored level."""

    tile_width: int
    tile_height: int
    columns: int
    offsets: npt.NDArray[np.int64]
    byte_counts: npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Touched:
    """The stored tiles a request touches, their bytes, and the GETs and bytes of fetching them when
    only ranges less than `SMALL_COALESCE` apart share a GET (tierserve merges ranges up to 1 MiB apart)."""

    tiles: int
    tile_bytes: int
    small_coalesce_gets: int
    small_coalesce_bytes: int


#: The merge distance of `Touched.small_coalesce_*`.
SMALL_COALESCE = 64 * 1024


class TileTables:
    """The tile tables of each level of the benchmark images' local files."""

    def __init__(self, data_dir: Path) -> None:
        self._store = data_dir / "store"
        self._levels: dict[int, list[Level]] = {}

    def touched(self, request: Request) -> Touched:
        """What `request` reads: tier from its downsample, region from left/top (full-resolution pixels)
        and width/height (tier pixels), planned as tierserve plans it."""
        image = request.image
        whole = request.width is None
        window = resolve_window(
            Box(0, 0, image.width, image.height),
            request.downsample,
            None if whole else request.left,
            None if whole else request.top,
            request.width,
            request.height,
        )
        plan = plan_read(image.width, image.height, image.levels, window)
        level = self._level(image)[plan.level]
        box = plan.box
        rows = range(box.y // level.tile_height, (box.bottom - 1) // level.tile_height + 1)
        cols = range(box.x // level.tile_width, (box.right - 1) // level.tile_width + 1)
        indices = [row * level.columns + col for row in rows for col in cols]
        starts = level.offsets[indices]
        ranges = sorted(zip(starts.tolist(), (starts + level.byte_counts[indices]).tolist(), strict=True))
        merged: list[list[int]] = []
        for start, end in ranges:
            if merged and start <= merged[-1][1] + SMALL_COALESCE:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        return Touched(
            len(indices), int(level.byte_counts[indices].sum()), len(merged), sum(end - start for start, end in merged)
        )

    def _level(self, image: BenchImage) -> list[Level]:
        if image.id not in self._levels:
            with tifffile.TiffFile(self._store / image.store_key) as tif:
                pages: list[Any] = [level.pages[0] for level in tif.series[0].levels]
                self._levels[image.id] = [
                    Level(
                        page.tilewidth,
                        page.tilelength,
                        -(-page.imagewidth // page.tilewidth),
                        np.asarray(page.dataoffsets, np.int64),
                        np.asarray(page.databytecounts, np.int64),
                    )
                    for page in pages
                ]
        return self._levels[image.id]


def _store_requests(
    args: argparse.Namespace,
    workloads: list[Workload],
    requests: dict[str, list[Request]],
    local: Serving,
    remote: Serving,
    proxy: TimedProxy,
) -> dict[str, Any]:
    """Part 1: per workload, store traffic of cold and warm requests, tiles touched, latency at `rtt`."""
    tables = TileTables(args.data_dir)
    proxy.take()  # the requests of earlier checks
    proxy.delay = args.rtt
    results: dict[str, Any] = {}
    print(
        f"\nstore requests per request, medians ({args.cold} cold on fresh servers, {args.warm} warm), "
        f"{args.rtt * 1000:.0f} ms added per store request",
        flush=True,
    )
    for workload in workloads:
        chosen = requests[workload.key][: max(args.cold, args.warm)]
        cold, cold_ms = [], []
        for request in chosen[: args.cold]:
            with Serving(remote.data_dir, remote.env) as fresh:
                startup = proxy.take()
                with clients(fresh) as (client,):
                    cold_ms.append(fetch(client, request.tierserve_path())[1])
                cold.append(traffic(proxy.take(), args.rtt) | {"startup_requests": len(startup)})
        warm, local_ms, remote_ms, undelayed_ms = [], [], [], []
        with clients(local, remote) as (a, b):
            fetch(b, chosen[0].tierserve_path())  # the file's directories parsed in this worker
            proxy.take()
            for request in chosen[: args.warm]:
                local_ms.append(fetch(a, request.tierserve_path())[1])
                remote_ms.append(fetch(b, request.tierserve_path())[1])
                warm.append(traffic(proxy.take(), args.rtt))
                proxy.delay = 0.0
                undelayed_ms.append(fetch(b, request.tierserve_path())[1])
                proxy.take()
                proxy.delay = args.rtt
        touched = [tables.touched(r) for r in chosen[: args.warm]]
        results[workload.key] = {
            "title": workload.title,
            "tiles": _spread([t.tiles for t in touched]),
            "tile_bytes": _spread([t.tile_bytes for t in touched]),
            "small_coalesce": {
                "merge_bytes": SMALL_COALESCE,
                "gets": _spread([t.small_coalesce_gets for t in touched]),
                "bytes": _spread([t.small_coalesce_bytes for t in touched]),
            },
            "cold": _traffic_summary(cold),
            "warm": _traffic_summary(warm),
            "local_ms": round(statistics.median(local_ms) * 1000, 1),
            "bucket_ms": round(statistics.median(undelayed_ms) * 1000, 1),
            "bucket_rtt_ms": round(statistics.median(remote_ms) * 1000, 1),
            "bucket_rtt_cold_ms": round(statistics.median(cold_ms) * 1000, 1),
        }
        print(f"  {workload.key:20} {_store_row(results[workload.key])}", flush=True)
    proxy.delay = 0.0
    return results


def _spread(values: Sequence[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def _traffic_summary(samples: list[dict[str, Any]]) -> dict[str, Any]:
    others: Counter[str] = Counter()
    for sample in samples:
        others.update(sample["other"])
    rounds = [s["rounds"] for s in samples if s["rounds"] is not None]
    return {
        "requests": len(samples),
        "gets": _spread([s["gets"] for s in samples]),
        "rounds": _spread(rounds) if rounds else None,
        "bytes": _spread([s["bytes"] for s in samples]),
        "unranged_gets": sum(s["unranged_gets"] for s in samples),
        "other_requests": dict(others),
        "startup_requests": sum(s.get("startup_requests", 0) for s in samples),
    }


# 2. latency of regions and tiles


def _latency(
    args: argparse.Namespace, requests: dict[str, list[Request]], local: Serving, remote: Serving, proxy: TimedProxy
) -> dict[str, Any]:
    """Part 2: sequential requests from one client, each asked of the local store, the bucket and the
    bucket with `rtt` added, in a rotating order; ms percentiles per store."""
    kinds = {"region 1000x1000, downsample 0": "1-region-q75", "tile 256x256": "6-tiles"}
    stores = ["local", "bucket", "bucket + delay"]
    results: dict[str, Any] = {}
    with clients(local, remote) as (a, b):
        targets = {"local": (a, 0.0), "bucket": (b, 0.0), "bucket + delay": (b, args.rtt)}
        for kind, key in kinds.items():
            chosen = requests[key]
            for request in chosen[-5:]:  # warm up: files' directories parsed, connections open
                for client, _ in targets.values():
                    fetch(client, request.tierserve_path())
            times: dict[str, list[float]] = {store: [] for store in stores}
            store_gets: list[dict[str, Any]] = []
            proxy.take()
            for i, request in enumerate(chosen[: args.samples]):
                for store in stores[i % 3 :] + stores[: i % 3]:
                    client, delay = targets[store]
                    proxy.delay = delay
                    times[store].append(fetch(client, request.tierserve_path())[1])
                    if store == "bucket + delay":
                        store_gets.append(traffic(proxy.take(), delay))
                    proxy.take()
            proxy.delay = 0.0
            results[kind] = {store: _percentiles(samples) for store, samples in times.items()}
            results[kind]["store_requests"] = _traffic_summary(store_gets)
    return results


def _percentiles(samples: list[float]) -> dict[str, float]:
    deciles = statistics.quantiles(samples, n=10)
    return {
        "n": len(samples),
        "p50_ms": round(statistics.median(samples) * 1000, 1),
        "p90_ms": round(deciles[8] * 1000, 1),
        "min_ms": round(min(samples) * 1000, 1),
    }


# 3. the whole full-resolution image


def _whole_image(
    args: argparse.Namespace, image: BenchImage, local: Serving, remote: Serving, proxy: TimedProxy
) -> dict[str, Any]:
    """Part 3: the whole image at full resolution, Q75, one download at a time, alternating stores."""
    path = Request(image, 0, 75).tierserve_path()
    samples: dict[str, list[dict[str, Any]]] = {"local": [], "bucket": [], "bucket + delay": []}
    print(f"\nwhole {image.width}x{image.height} image, Q75: {args.full_runs} downloads per store", flush=True)
    with clients(local, remote) as (a, b):
        stores = {"local": (local, a, 0.0), "bucket": (remote, b, 0.0), "bucket + delay": (remote, b, args.rtt)}
        for _ in range(args.full_runs):
            for store, (server, client, delay) in stores.items():
                time.sleep(SETTLE_SECONDS)
                proxy.delay = delay
                proxy.take()
                before = memory_kib(server.pid, "VmRSS")
                reset_peak_rss([server.pid])
                first, total, size = fetch(client, path)
                sample = {
                    "first_byte": first,
                    "total": total,
                    "bytes": size,
                    "rss_before_mib": before / 1024,
                    "peak_rss_mib": memory_kib(server.pid, "VmHWM") / 1024,
                }
                samples[store].append(sample | {"store": traffic(proxy.take(), delay)})
    proxy.delay = 0.0
    return {
        "title": f"whole image {image.width}x{image.height}, full resolution, Q75",
        "path": path,
        **{
            store: {
                "runs": len(runs),
                "first_byte_ms": round(statistics.median(r["first_byte"] for r in runs) * 1000, 1),
                "total_ms": round(statistics.median(r["total"] for r in runs) * 1000, 1),
                "bytes": int(statistics.median(r["bytes"] for r in runs)),
                "rss_before_mib": round(max(r["rss_before_mib"] for r in runs), 1),
                "peak_rss_mib": round(max(r["peak_rss_mib"] for r in runs), 1),
                "store": _traffic_summary([r["store"] for r in runs]),
            }
            for store, runs in samples.items()
        },
    }


# output


def _print_get_latency(result: dict[str, Any], rtt: float) -> None:
    print(f"\nsingle ranged GETs from this process (obstore), median ms; delay {rtt * 1000:.0f} ms")
    for route, sizes in result["routes"].items():
        print(f"  large image, {route:14} " + "  ".join(f"{name} {ms:7.2f}" for name, ms in sizes.items()))
    for name, row in result["by_object"].items():
        print(f"  16 KiB straight to moto, {name} ({row['bytes'] / 2**20:,.1f} MiB): {row['ms']:.2f}")


def _store_row(row: dict[str, Any]) -> str:
    def cells(part: dict[str, Any]) -> str:
        gets, rounds, size = part["gets"], part["rounds"], part["bytes"]
        round_text = f"{rounds['median']:g} (max {rounds['max']:g})" if rounds else "-"
        extra = f" +{part['other_requests']}" if part["other_requests"] else ""
        spread = f"{gets['median']:g} ({gets['min']:g}-{gets['max']:g})"
        return f"GETs {spread} rounds {round_text} bytes {size['median']:,.0f}{extra}"

    small = row["small_coalesce"]
    return (
        f"tiles {row['tiles']['median']:g} ({row['tile_bytes']['median']:,.0f} B) | cold {cells(row['cold'])} | "
        f"warm {cells(row['warm'])} | at {SMALL_COALESCE >> 10} KiB merging: GETs {small['gets']['median']:g}, "
        f"bytes {small['bytes']['median']:,.0f} | ms local {row['local_ms']}, bucket {row['bucket_ms']}, "
        f"bucket+delay {row['bucket_rtt_ms']} (cold {row['bucket_rtt_cold_ms']})"
    )


def _rounds(part: dict[str, Any]) -> str:
    return "-" if part["rounds"] is None else f"{part['rounds']['median']:g}"


def _print_latency(results: dict[str, Any], rtt: float) -> None:
    print(f"\nlatency, sequential requests from one client (bucket + delay: {rtt * 1000:.0f} ms per store request)")
    for kind, stores in results.items():
        cells = "  ".join(
            f"{store} p50 {row['p50_ms']} p90 {row['p90_ms']}" for store, row in stores.items() if "p50_ms" in row
        )
        print(f"  {kind:32} {cells}")


def _print_whole_image(result: dict[str, Any], rtt: float) -> None:
    print(f"\n{result['title']} (bucket + delay: {rtt * 1000:.0f} ms per store request)")
    for store in ("local", "bucket", "bucket + delay"):
        row = result[store]
        print(
            f"  {store:14} first byte {row['first_byte_ms']} ms, total {row['total_ms']} ms, {row['bytes']:,} bytes, "
            f"RSS {row['rss_before_mib']} MiB before, peak {row['peak_rss_mib']} MiB; "
            f"store GETs {row['store']['gets']['median']:g} in {_rounds(row['store'])} rounds, "
            f"bytes {row['store']['bytes']['median']:,.0f}"
        )


def _machine() -> dict[str, Any]:
    def output(command: list[str]) -> str:
        try:
            return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return "unknown"

    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    models = [line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")]
    return {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "cpus": os.cpu_count(),
        "cpu_model": next(iter(models), platform.processor()),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "libvips": f"{pyvips.version(0)}.{pyvips.version(1)}.{pyvips.version(2)}",
        "moto": moto.__version__,
        "obstore": obstore.__version__,
        "commit": output(["git", "-C", str(Path(__file__).parent), "rev-parse", "--short", "HEAD"]),
    }


if __name__ == "__main__":
    main()

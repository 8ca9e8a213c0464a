"""The two servers of the side-by-side benchmark, started on loopback, and their processes' CPU and memory.

tierserve runs as `tierserve serve --workers N` (uvicorn, the production entry point); IIPImage as N
FastCGI processes behind lighttpd, started by bench/iipimage/start.sh (Debian's iipimage-server 1.1,
installed by bench/iipimage/install.sh). Both read the same pyramid files.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx2

from bench.common import free_port, memory_kib

IIPIMAGE_SCRIPTS = Path(__file__).parent / "iipimage"
#: tierserve's settings in the benchmarks: JPEG chroma 4:2:0 at every quality (as IIPImage), no access log.
BENCH_SETTINGS = {"TIERSERVE_JPEG_CHROMA": "420", "TIERSERVE_ACCESS_LOG": "false", "TIERSERVE_IIIF_JPEG_QUALITY": "75"}
#: IIPImage's own default tile cache per process (MAX_IMAGE_CACHE_SIZE, MB).
IIPIMAGE_DEFAULT_CACHE_MB = 10
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def children(parent: int) -> list[int]:
    """Pids whose parent is `parent`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == parent:
                found.append(int(entry.name))
    return found


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds consumed so far by `pids` (threads included)."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / _CLOCK_TICKS


def reset_peak_rss(pids: list[int]) -> None:
    """Reset VmHWM (peak RSS) of `pids` to their current RSS (Linux clear_refs 5; needs root or owner)."""
    for pid in pids:
        Path(f"/proc/{pid}/clear_refs").write_text("5")


def memory_mib(pids: list[int], field: str) -> dict[int, float]:
    """A /proc/<pid>/status memory field of each of `pids`, MiB: "VmRSS" (resident now) or "VmHWM" (peak
    resident since start or since `reset_peak_rss`)."""
    return {pid: memory_kib(pid, field) / 1024 for pid in pids}


def _wait_until_up(url: str, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise SystemExit(f"server exited with status {process.returncode}")
        try:
            if httpx2.get(url, timeout=2).status_code < 500:
                return
        except httpx2.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} did not answer within 60 s")


@dataclass
class Server:
    """A running server: its base URL, the pids that do its work (CPU accounting) and the pids of its
    image workers (RSS)."""

    name: str
    base_url: str
    pids: list[int] = field(default_factory=list)
    workers: list[int] = field(default_factory=list)

    def cpu(self) -> float:
        return cpu_seconds(self.pids)


class TierServe:
    """`tierserve serve --workers N` over `data_dir` with the given extra TIERSERVE_* settings.

    With ``BENCH_SERVER=granian`` among the settings, the same app runs on granian (its ASGI interface,
    N workers, uvloop) instead of uvicorn: a lever of the performance issue, measured with bench.ab.
    """

    def __init__(self, data_dir: Path, workers: int, settings: dict[str, str]) -> None:
        self.port = free_port()
        env = {**os.environ, **settings, "TIERSERVE_DATA_DIR": str(data_dir), "TIERSERVE_PORT": str(self.port)}
        command = [sys.executable, "-m", "tierserve", "serve", "--workers", str(workers)]
        if settings.get("BENCH_SERVER") == "granian":
            command = [sys.executable, "-m", "granian", "--interface", "asgi", "--factory", "--loop", "uvloop"]
            command += ["--host", "127.0.0.1", "--port", str(self.port), "--workers", str(workers)]
            command += ["--no-access-log", "tierserve.api.app:create_app"]
        self.process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{self.port}"
        try:
            _wait_until_up(f"{base}/healthz", self.process)
        except BaseException:
            self.stop()  # a server that never answered is not left running
            raise
        deadline = time.monotonic() + 30
        children_expected = workers if workers > 1 else 0  # one worker: uvicorn serves in its own process
        while len(workers_now := self._workers()) < children_expected and time.monotonic() < deadline:
            time.sleep(0.2)
        # one worker: the process started serves, and is the worker whose CPU and RSS are read
        serving = workers_now if workers > 1 else [self.process.pid]
        self.server = Server("tierserve", base, sorted({self.process.pid, *workers_now}), serving)

    def _workers(self) -> list[int]:
        return [pid for pid in children(self.process.pid) if "resource_tracker" not in _cmdline(pid)]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


class IIPImage:
    """IIPImage with `workers` FastCGI processes serving the files of `folder`, with a tile cache of
    `cache_mb` per process (0: off)."""

    def __init__(self, folder: Path, workers: int, max_cvt: int, cache_mb: int = 0) -> None:
        self.env = {
            **os.environ,
            "IIP_DATA_DIR": str(folder),
            "IIP_PROCS": str(workers),
            "IIP_CACHE_MB": str(cache_mb),
            "IIP_MAX_CVT": str(max_cvt),
            "IIP_QUALITY": "75",
            "HTTP_PORT": str(free_port()),
            "FCGI_PORT": str(free_port()),
            "IIP_RUN_DIR": "/tmp/tierserve-bench-iipimage",
        }
        subprocess.run(["bash", str(IIPIMAGE_SCRIPTS / "stop.sh")], env=self.env, check=False)
        subprocess.run(
            ["bash", str(IIPIMAGE_SCRIPTS / "start.sh")], env=self.env, check=True, stdout=subprocess.DEVNULL
        )
        run_dir = Path(self.env["IIP_RUN_DIR"])
        workers_now = [int(pid) for pid in (run_dir / "iipsrv.pid").read_text().split()]
        front = int((run_dir / "lighttpd.pid").read_text())
        base = f"http://127.0.0.1:{self.env['HTTP_PORT']}"
        _wait_until_up(f"{base}/index.html")
        self.server = Server("iipimage", base, [front, *workers_now], workers_now)

    def stop(self) -> None:
        subprocess.run(["bash", str(IIPIMAGE_SCRIPTS / "stop.sh")], env=self.env, check=False)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def ensure_iipimage() -> None:
    """Install IIPImage, lighttpd, spawn-fcgi and wrk (bench/iipimage/install.sh, Debian packages) when
    one is missing; exits with the command to run when this process cannot install them (not root)."""
    if iipimage_installed():
        return
    if os.geteuid() != 0:
        raise SystemExit("IIPImage, lighttpd, spawn-fcgi or wrk missing: run `sudo bash bench/iipimage/install.sh`")
    print("installing IIPImage, lighttpd, spawn-fcgi and wrk (bench/iipimage/install.sh)", flush=True)
    subprocess.run(["bash", str(IIPIMAGE_SCRIPTS / "install.sh")], check=True)


def iipimage_installed() -> bool:
    """IIPImage, lighttpd, spawn-fcgi and wrk are all present (bench/iipimage/install.sh installs them)."""
    programs = ("lighttpd", "spawn-fcgi", "wrk")
    return Path("/usr/lib/iipimage-server/iipsrv.fcgi").exists() and all(shutil.which(p) for p in programs)

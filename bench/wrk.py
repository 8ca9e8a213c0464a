"""Driving a server with wrk (one thread, N connections) over a fixed list of request paths."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

SCRIPT = Path(__file__).parent / "paths.lua"


def run(
    base_url: str, paths: list[str], connections: int, seconds: int, headers: dict[str, str] | None = None
) -> dict[str, float]:
    """Replay `paths` (cycling) for `seconds` on `connections` keep-alive connections.

    `headers` go with every request. Returns wrk's counts and latency percentiles (microseconds) plus
    req/s; answers of 400 and above are counted in `status_errors`.
    """
    with tempfile.TemporaryDirectory(prefix="tierserve-wrk-") as tmp:
        path_file, summary_file = Path(tmp) / "paths.txt", Path(tmp) / "summary.json"
        path_file.write_text("\n".join(paths) + "\n")
        command = [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",
            "60s",
            "-s",
            str(SCRIPT),
            *(f"-H{name}: {value}" for name, value in (headers or {}).items()),
            base_url,
        ]
        env = {**os.environ, "WRK_PATHS": str(path_file), "WRK_SUMMARY": str(summary_file)}
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env=env)
        summary: dict[str, float] = json.loads(summary_file.read_text())
    summary["rps"] = summary["requests"] / (summary["duration_us"] / 1e6)
    return summary

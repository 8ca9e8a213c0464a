"""Build hook: compiles tierserve's C area average (src/tierserve/core/area.c) into the package.

Runs for wheels and editable installs (`pip install .`, `pip install -e .`). The library is a plain
shared object loaded with ctypes (`tierserve.core.area_kernel`), so it needs a C compiler but no
Python headers, and the wheel is tagged for the platform only (py3-none-<platform>). Without a
compiler the build warns (`pip -v` shows it), the wheel stays pure Python, NumPy averages instead,
and the server says so in its log and `/healthz`.
"""

from __future__ import annotations

import shlex
import subprocess
import sysconfig
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface
from packaging.tags import sys_tags

SOURCE = "src/tierserve/core/area.c"
LIBRARY = "src/tierserve/core/_area.so"
#: Portable code (no -march): the wheel runs on any CPU of its platform. No contraction of a * b + c
#: into fused multiply-adds (clang contracts by default), so the sums round as NumPy's do on x86-64.
FLAGS = ["-O3", "-std=c99", "-ffp-contract=off", "-shared", "-fPIC"]


class CustomBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        root = Path(self.root)
        failures = []
        for compiler in _compilers():
            command = [*compiler, *FLAGS, "-o", str(root / LIBRARY), str(root / SOURCE)]
            try:
                subprocess.run(command, check=True, capture_output=True, text=True)
            except (OSError, subprocess.CalledProcessError) as exc:
                failures.append(f"{shlex.join(compiler)}: {(getattr(exc, 'stderr', None) or str(exc)).strip()}")
                continue
            build_data["pure_python"] = False
            build_data["tag"] = f"py3-none-{next(iter(sys_tags())).platform}"
            build_data["artifacts"].append(LIBRARY)
            return
        self.app.display_warning("tierserve: C area average not built, NumPy averages; " + "; ".join(failures))


def _compilers() -> list[list[str]]:
    """The compiler Python was built with (sysconfig's CC), then plain `cc` (CC may name a compiler of
    the build machine that is not installed here)."""
    configured = shlex.split(sysconfig.get_config_var("CC") or "")
    return [configured, ["cc"]] if configured and configured != ["cc"] else [["cc"]]

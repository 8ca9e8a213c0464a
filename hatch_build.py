"""Build hook: compiles tierserve's C area average (src/tierserve/core/area.c) into the package.

Runs for wheels and editable installs (`pip install .`, `pip install -e .`). The library is a plain
shared object loaded with ctypes (`tierserve.core.area_kernel`), so it needs a C compiler but no
Python headers. Without a compiler the build warns and the package averages with NumPy instead.
"""

from __future__ import annotations

import shlex
import subprocess
import sysconfig
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

SOURCE = "src/tierserve/core/area.c"
LIBRARY = "src/tierserve/core/_area.so"
#: Portable code (no -march): the wheel runs on any CPU of its platform. ISO C99 keeps the compiler
#: from contracting a * b + c into fused multiply-adds, so the sums are NumPy's.
FLAGS = ["-O3", "-std=c99", "-shared", "-fPIC"]


class CustomBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        root = Path(self.root)
        compiler = shlex.split(sysconfig.get_config_var("CC") or "cc")
        command = [*compiler, *FLAGS, "-o", str(root / LIBRARY), str(root / SOURCE)]
        try:
            subprocess.run(command, check=True, capture_output=True, text=True)
        except (OSError, subprocess.CalledProcessError) as exc:
            detail = getattr(exc, "stderr", None) or str(exc)
            self.app.display_warning(f"tierserve: C area average not built ({detail.strip()}); NumPy averages")
            return
        build_data["pure_python"] = False
        build_data["infer_tag"] = True
        build_data["artifacts"].append(LIBRARY)

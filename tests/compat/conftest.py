"""Real client libraries run in their own virtual environment (they pin numpy<2 and old pandas).

The environment is made once by `.ci/client-venv.sh` at `.venv-clients` (or TIERSERVE_CLIENT_VENV)
and reused; making it needs PyPI. Without it the compatibility tests fail, they do not skip.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


@pytest.fixture(scope="session")
def client_python() -> Path:
    venv = Path(os.environ.get("TIERSERVE_CLIENT_VENV", ROOT / ".venv-clients"))
    subprocess.run(["bash", str(ROOT / ".ci" / "client-venv.sh"), str(venv)], check=True, timeout=1200)
    return venv / "bin" / "python"

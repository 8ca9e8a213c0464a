"""Real client libraries run in their own virtual environment (they pin numpy<2 and old pandas).

The environment is made once by `.ci/client-venv.sh` at `.venv-clients` (or TIERSERVE_CLIENT_VENV)
and reused; making it needs PyPI. Without it the compatibility tests fail, they do not skip.
"""

from __future__ import annotations

import json
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


def run_client(client_python: Path, script: Path, live_server: str, out: Path) -> dict[str, object]:
    """Run a client script (`script BASE_URL OUT_DIR`) in the client environment; its last line is JSON."""
    completed = subprocess.run(
        [str(client_python), str(script), live_server, str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    result: dict[str, object] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result

"""The IIIF consortium's Image API validator (`iiif-validator`) at level 2, for 3.0 and for 2.x, against
a real server holding the validator's test image (tests/fixtures/iiif/, ingested as image 67352).

Version 1.0.5 has no 2.1 suite (``--version=2.1`` runs no test): ``--version=2.0`` is the 2.x suite.
The validator requests only the server under test.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.conftest import running_server
from tierserve.cli import run_ingest
from tierserve.settings import Settings

MANIFEST = Path(__file__).parents[1] / "fixtures" / "iiif" / "manifest.yaml"
VALIDATOR = Path(sys.executable).with_name("iiif-validate.py")
IDENTIFIER = "67352"


@pytest.fixture(scope="module")
def validator_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("iiif-validator")
    settings = Settings(
        data_dir=root, database_url=f"sqlite:///{root / 'tierserve.db'}", store_url=(root / "store").as_uri()
    )
    report = run_ingest(settings, MANIFEST)
    assert report.ok, report.failed
    with running_server(settings) as base:
        yield base


@pytest.mark.parametrize(("version", "tests"), [("3.0", 33), ("2.0", 30)])
def test_the_iiif_validator_passes_level_2(validator_server: str, version: str, tests: int) -> None:
    command = [
        sys.executable,
        str(VALIDATOR),
        f"--server={urlsplit(validator_server).netloc}",
        f"--prefix=iiif/{version[0]}",
        f"--identifier={IDENTIFIER}",
        f"--version={version}",
        "--level=2",
    ]
    run = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output  # the exit status is the number of failed tests
    assert f"Done ({tests} tests, 0 failures)" in output, output

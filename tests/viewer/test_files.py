"""The viewer's files as served (no browser): the route, headers, the vendored OpenSeadragon, and that the
page names no other origin."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tierserve.viewer import STATIC

ROOT = Path(__file__).parents[2]
OWN_FILES = sorted(path for path in STATIC.rglob("*") if path.is_file() and "vendor" not in path.parts)


def test_viewer_root_redirects_relatively(client: TestClient) -> None:
    response = client.get("/viewer", follow_redirects=False)
    assert response.status_code == 308
    assert response.headers["location"] == "viewer/"  # also right under a proxy's root path


def test_index_and_assets(client: TestClient) -> None:
    page = client.get("/viewer/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-cache"
    assert '<script src="vendor/openseadragon/openseadragon.min.js">' in page.text
    for path, media_type in [
        ("/viewer/js/main.js", "javascript"),
        ("/viewer/viewer.css", "text/css"),
        ("/viewer/vendor/openseadragon/openseadragon.min.js", "javascript"),
        ("/viewer/vendor/openseadragon/LICENSE.txt", "text/plain"),
    ]:
        response = client.get(path)
        assert response.status_code == 200, path
        assert media_type in response.headers["content-type"], path
    again = client.get(
        "/viewer/js/main.js", headers={"If-None-Match": client.get("/viewer/js/main.js").headers["etag"]}
    )
    assert again.status_code == 304


@pytest.mark.parametrize("path", ["/viewer/nothing.js", "/viewer/../pyproject.toml", "/viewer/%2e%2e/__init__.py"])
def test_unknown_and_outside_files_are_404(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 404


def test_the_page_names_no_other_origin() -> None:
    """Every URL the viewer's own files use is relative to the page (the vendored library is checked below)."""
    assert {path.name for path in OWN_FILES} >= {"index.html", "viewer.css", "main.js", "section.js", "region.js"}
    for path in OWN_FILES:
        found = re.findall(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", path.read_text())
        assert not found, f"{path.name} names {found}"


def test_vendored_openseadragon_is_the_pinned_release() -> None:
    """The committed openseadragon.min.js and LICENSE.txt are those of the npm tarball whose integrity
    scripts/vendor_openseadragon.py pins (it checks offline with --check)."""
    script = ROOT / "scripts" / "vendor_openseadragon.py"
    completed = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True, check=False)
    assert completed.returncode == 0, completed.stderr
    assert "Redistribution and use" in (STATIC / "vendor" / "openseadragon" / "LICENSE.txt").read_text()

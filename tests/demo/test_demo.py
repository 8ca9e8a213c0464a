"""`tierserve demo` builds, ingests and describes the demo collection (at the README's small scale here)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.images import decode_jpeg
from tierserve.api.app import create_app
from tierserve.db.database import Database
from tierserve.db.models import AtlasDataSet, SectionDataSet, SubImage
from tierserve.demo.collection import SOURCE_FILE_COUNT, example_urls
from tierserve.settings import Settings

SCALE = 0.1
README = Path(__file__).parents[2] / "README.md"
BASE = "http://127.0.0.1:8000"


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("demo")
    command = [sys.executable, "-m", "tierserve", "demo", "--scale", str(SCALE), "--no-serve", "--data-dir", str(data)]
    first = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert first.returncode == 0, first.stderr
    assert "ingested 13, already present 0, failed 0" in first.stderr
    assert "http://127.0.0.1:8000/api/v2/section_image_download/69750516?downsample=4" in first.stderr
    # Not on a terminal: a plain line per file generated and per image ingested.
    lines = first.stderr.splitlines()
    assert f"generated 1/{SOURCE_FILE_COUNT}: ish-69750516.tif" in lines
    assert f"generated {SOURCE_FILE_COUNT}/{SOURCE_FILE_COUNT}: atlas-100883872.jpg" in lines
    assert "ingested 1/13: section_data_sets[0].images[0] (id 69750516)" in lines
    assert "ingested 13/13: atlas_data_sets[0].images[3] (id 100883872)" in lines
    again = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert "ingested 0, already present 13, failed 0" in again.stderr
    assert "already present 13/13: atlas_data_sets[0].images[3] (id 100883872)" in again.stderr.splitlines()
    assert "generated" not in again.stderr
    return data


def readme_example_urls() -> list[str]:
    """The URLs the README's demo section lists."""
    demo_section = README.read_text(encoding="utf-8").split("## The demo")[1].split("\n## ")[0]
    return re.findall(r"^ {4}(http://\S+)$", demo_section, flags=re.MULTILINE)


def test_demo_collection_has_what_the_issue_lists(demo_dir: Path) -> None:
    database = Database(f"sqlite:///{demo_dir / 'tierserve.db'}")
    with database.session() as session:
        ish = session.get_one(SectionDataSet, 69750000)
        assert len(ish.section_images) >= 6
        assert all({la.kind for la in image.layers} == {"primary", "expression"} for image in ish.section_images)
        largest = max(ish.section_images, key=lambda image: image.width * image.height)
        assert largest.id == 69750516 and largest.bits_per_component == 8
        assert (largest.width, largest.height) == (round(16000 * SCALE), round(10000 * SCALE))
        sub = session.get_one(SubImage, 69750521)
        assert (sub.x, sub.y) == (round(1500 * SCALE), round(900 * SCALE))
        assert sub.width < sub.image_width and sub.height < sub.image_height
        connectivity = session.get_one(SectionDataSet, 100141599)
        assert connectivity.equalization is not None and connectivity.equalization.red_upper == 923
        assert all(i.bits_per_component == 12 for i in connectivity.section_images)
        assert all("projection" in {la.kind for la in i.layers} for i in connectivity.section_images)
        atlas = session.scalars(select(AtlasDataSet)).one()
        assert sorted(a.id for a in atlas.atlases) == [1, 602630314]
        assert all(i.annotated for i in atlas.atlas_images)
    database.dispose()


@pytest.mark.parametrize(
    "url",
    [
        "/api/v2/section_image_download/69750516?downsample=4",
        "/api/v2/section_image_download/69750516?downsample=4&expression=true",
        "/api/v2/section_image_download/69750516?left=61&top=22&width=100&height=100",
        "/api/v2/section_image_download/71592261&downsample=3&quality=50",
        "/api/v2/section_image_download/102146167?range=0,923,0,987,0,4095&downsample=4",
        "/api/v2/projection_image_download/126862583?downsample=4&projection=true",
        "/api/v2/atlas_image_download/100883869?downsample=4&annotation=true",
        "/api/v2/atlas_image_download/100883869?downsample=2&annotation=true&atlas=602630314",
        "/api/v2/image_download/69750521",
    ],
)
def test_seed_style_urls_work_on_the_demo(demo_dir: Path, url: str) -> None:
    with TestClient(create_app(Settings(data_dir=demo_dir))) as client:
        response = client.get(url)
        assert response.status_code == 200, response.text
        assert decode_jpeg(response.content).size > 0


def test_seed_equalization_example_on_the_demo(demo_dir: Path) -> None:
    """The seed's two-step example: look up the Equalization, then download with that range."""
    with TestClient(create_app(Settings(data_dir=demo_dir))) as client:
        body = client.get("/api/v2/data/SectionDataSet/100141599.json?include=equalization,section_images").json()
        (data_set,) = body["msg"]
        equalization = data_set["equalization"]
        ranges = [equalization[f"{c}_{b}"] for c in ("red", "green", "blue") for b in ("lower", "upper")]
        assert ranges == [0, 923, 0, 987, 0, 4095]
        assert 102146167 in [image["id"] for image in data_set["section_images"]]
        xml = client.get("/api/v2/data/SectionDataSet/100141599.xml?include=equalization,section_images").text
        assert '<red-upper type="integer">923</red-upper>' in xml
        flat = ",".join(str(v) for v in ranges)
        image = client.get(f"/api/v2/section_image_download/102146167?range={flat}&downsample=4")
        assert image.status_code == 200 and decode_jpeg(image.content).ndim == 3


def test_readme_examples_work_at_full_size_and_at_scale_0_1(demo_dir: Path) -> None:
    """The README's URLs are among those `tierserve demo` prints at both scales, and answer on this demo."""
    urls = readme_example_urls()
    assert len(urls) >= 4
    assert set(urls) <= set(example_urls(BASE, 1.0)) & set(example_urls(BASE, 0.1))
    with TestClient(create_app(Settings(data_dir=demo_dir))) as client:
        for url in urls:
            assert client.get(url.removeprefix(BASE)).status_code == 200, url


def test_the_printed_examples_work_at_the_scale_built(demo_dir: Path) -> None:
    with TestClient(create_app(Settings(data_dir=demo_dir))) as client:
        for url in example_urls(BASE, SCALE):
            response = client.get(url.removeprefix(BASE))
            assert response.status_code == 200, (url, response.text[:200])

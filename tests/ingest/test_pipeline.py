"""Ingest end to end: every source format, re-runs, bad entries, and crashes at the worst moments."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import imagecodecs
import numpy as np
import pytest
import pyvips
import tifffile
import yaml
from sqlalchemy import func, select

from tests.images import multiscale_pattern, psnr, slide_pattern
from tierserve.core.pyramid import PyramidFile
from tierserve.core.tiles import TileReader
from tierserve.db.database import Database
from tierserve.db.models import ImageLayer, SubImage
from tierserve.ingest.manifest import load_manifest
from tierserve.ingest.pipeline import Ingestor, IngestReport
from tierserve.ingest.pyramid_writer import write_pyramid
from tierserve.storage import LocalStore, local_file

RGB = slide_pattern(600, 900, seed=21)
DEEP = multiscale_pattern(600, 900, 3, 4095, seed=22)


def make_sources(directory: Path) -> dict[str, str]:
    """The same pixels in every supported source format."""
    directory.mkdir(parents=True, exist_ok=True)
    rgb = pyvips.Image.new_from_array(RGB.astype(np.uint8))
    rgb.jpegsave(str(directory / "s.jpg"), Q=98)
    rgb.pngsave(str(directory / "s.png"))
    rgb.tiffsave(str(directory / "s.tif"), compression="lzw")
    rgb.tiffsave(str(directory / "big.tif"), compression="jpeg", Q=98, tile=True, bigtiff=True)
    write_pyramid(rgb, directory / "pyramid.ome.tif", directory, quality=98)
    (directory / "s.jp2").write_bytes(imagecodecs.jpeg2k_encode(RGB.astype(np.uint8), level=0))
    tifffile.imwrite(directory / "deep.tif", DEEP.astype(np.uint16), photometric="rgb")
    pyvips.Image.new_from_array(DEEP.astype(np.uint16)).copy(interpretation="rgb16").pngsave(
        str(directory / "deep.png")
    )
    return {
        "jpg": "s.jpg",
        "png": "s.png",
        "tif": "s.tif",
        "bigtiff": "big.tif",
        "ome": "pyramid.ome.tif",
        "jp2": "s.jp2",
    }


def write_manifest(directory: Path, images: list[dict[str, object]], name: str = "manifest.yaml") -> Path:
    path = directory / name
    manifest = {"quality": 95, "section_data_sets": [{"id": 900, "name": "test", "images": images}]}
    path.write_text(yaml.safe_dump(manifest))
    return path


def ingest(data: Path, manifest: Path) -> IngestReport:
    data.mkdir(parents=True, exist_ok=True)
    database = Database(f"sqlite:///{data / 'db.sqlite'}")
    database.migrate()
    try:
        return Ingestor(database, LocalStore(data / "store")).run(load_manifest(manifest), manifest.parent)
    finally:
        database.dispose()


def stored_level0(data: Path, image_id: int, kind: str = "primary", db: str = "db.sqlite") -> np.ndarray:
    database = Database(f"sqlite:///{data / db}")
    with database.session() as session:
        path = session.scalars(
            select(ImageLayer.path).where(ImageLayer.sub_image_id == image_id, ImageLayer.kind == kind)
        ).one()
    database.dispose()
    return np.asarray(PyramidFile(local_file(data / "store" / path), TileReader()).level(0).numpy())


def rows(data: Path, db: str = "db.sqlite") -> list[int]:
    database = Database(f"sqlite:///{data / db}")
    with database.session() as session:
        ids = list(session.scalars(select(SubImage.id).order_by(SubImage.id)))
    database.dispose()
    return ids


def test_every_source_format_ingests(tmp_path: Path) -> None:
    sources = make_sources(tmp_path / "src")
    images: list[dict[str, object]] = [
        {"id": 1 + i, "section_number": i, "source": name} for i, name in enumerate(sources.values())
    ]
    images += [
        {"id": 50, "section_number": 50, "source": "deep.tif", "bits_per_component": 12},
        {"id": 51, "section_number": 51, "source": "deep.png"},
    ]
    report = ingest(tmp_path / "data", write_manifest(tmp_path / "src", images))
    assert report.failed == [] and sorted(report.ingested) == [1, 2, 3, 4, 5, 6, 50, 51]
    for image_id in range(1, 7):
        assert psnr(stored_level0(tmp_path / "data", image_id), RGB.astype(float)) > 33, image_id
    assert (stored_level0(tmp_path / "data", 50) == DEEP).all()
    assert (stored_level0(tmp_path / "data", 51) == DEEP).all()
    database = Database(f"sqlite:///{tmp_path / 'data' / 'db.sqlite'}")
    with database.session() as session:
        deep = session.get_one(SubImage, 50)
        assert (deep.bits_per_component, deep.number_of_components, deep.tier_count) == (12, 3, 2)
        assert session.get_one(SubImage, 51).bits_per_component == 16
        assert session.get_one(SubImage, 1).bits_per_component == 8
    database.dispose()


def test_rerunning_a_manifest_skips_what_is_ingested(tmp_path: Path) -> None:
    make_sources(tmp_path / "src")
    manifest = write_manifest(tmp_path / "src", [{"id": 7, "section_number": 1, "source": "s.png"}])
    assert ingest(tmp_path / "data", manifest).ingested == [7]
    stored = next((tmp_path / "data" / "store").rglob("primary.ome.tif"))
    before = stored.stat().st_mtime_ns
    again = ingest(tmp_path / "data", manifest)
    assert (again.ingested, again.skipped, again.failed) == ([], [7], [])
    assert stored.stat().st_mtime_ns == before


def test_bad_entries_are_named_and_the_rest_ingests(tmp_path: Path) -> None:
    src = tmp_path / "src"
    make_sources(src)
    full = (src / "s.tif").read_bytes()
    (src / "truncated.tif").write_bytes(full[: len(full) // 3])
    (src / "notes.tif").write_text("this is not an image")
    pyvips.Image.black(100, 100, bands=3).pngsave(str(src / "small-mask.png"))
    images = [
        {"id": 11, "section_number": 1, "source": "truncated.tif"},
        {"id": 12, "section_number": 2, "source": "notes.tif"},
        {
            "id": 13,
            "section_number": 3,
            "source": "s.png",
            "layers": [{"kind": "expression", "source": "small-mask.png"}],
        },
        {"id": 14, "section_number": 4, "source": "s.png", "x": 800, "y": 0, "width": 200, "height": 10},
        {"id": 15, "section_number": 5, "source": "s.png", "bits_per_component": 12},
        {"id": 16, "section_number": 6, "source": "absent.png"},
        {"id": 17, "section_number": 7, "source": "s.png", "layers": [{"kind": "expression", "source": "s.jpg"}]},
    ]
    report = ingest(tmp_path / "data", write_manifest(src, images))
    assert report.ingested == [17]
    problems = dict(report.failed)
    assert set(problems) == {f"section_data_sets[0].images[{i}] (id {11 + i})" for i in range(6)}
    assert "truncated.tif" in problems["section_data_sets[0].images[0] (id 11)"]
    assert "notes.tif is not a readable image" in problems["section_data_sets[0].images[1] (id 12)"]
    assert "is 100x100, the primary image is 900x600" in problems["section_data_sets[0].images[2] (id 13)"]
    assert "does not fit the 900x600 source" in problems["section_data_sets[0].images[3] (id 14)"]
    assert "bits_per_component=12 does not fit 8-bit" in problems["section_data_sets[0].images[4] (id 15)"]
    assert "absent.png does not exist" in problems["section_data_sets[0].images[5] (id 16)"]
    assert rows(tmp_path / "data") == [17]
    folders = sorted(p.name for p in (tmp_path / "data" / "store" / "sub_images").iterdir())
    assert folders == ["17"]
    assert list((tmp_path / "data" / "store" / ".scratch").iterdir()) == []


CRASHING_INGEST = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from tierserve.db.database import Database
    from tierserve.ingest.manifest import load_manifest
    from tierserve.ingest.pipeline import Ingestor, SilentObserver
    from tierserve.storage import LocalStore

    data, manifest, moment = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]

    class CrashWhileWriting(SilentObserver):
        written = 0
        def tiles_written(self, entry, count):
            self.written += count
            if moment == "mid-pyramid" and self.written > 4:
                os.kill(os.getpid(), signal.SIGKILL)

    class CrashAfterPublishing(LocalStore):
        published = 0
        def publish(self, key, scratch):
            self.published += 1
            return super().publish(key, scratch)
        def stat(self, key):
            info = super().stat(key)
            if moment == "before-commit" and self.published == 2:  # both layers are in place, no row yet
                os.kill(os.getpid(), signal.SIGKILL)
            return info

    data.mkdir(parents=True, exist_ok=True)
    database = Database(f"sqlite:///{data / 'db.sqlite'}")
    database.migrate()
    store = CrashAfterPublishing(data / "store")
    Ingestor(database, store, CrashWhileWriting()).run(load_manifest(manifest), manifest.parent)
    """
)


@pytest.mark.parametrize("moment", ["mid-pyramid", "before-commit"])
def test_a_killed_ingest_leaves_nothing_visible_and_a_rerun_completes(tmp_path: Path, moment: str) -> None:
    src = tmp_path / "src"
    make_sources(src)
    manifest = write_manifest(
        src, [{"id": 21, "section_number": 1, "source": "s.png", "layers": [{"kind": "expression", "source": "s.jpg"}]}]
    )
    data = tmp_path / "data"
    killed = subprocess.run([sys.executable, "-c", CRASHING_INGEST, str(data), str(manifest), moment], check=False)
    assert killed.returncode == -signal.SIGKILL
    assert rows(data) == []
    database = Database(f"sqlite:///{data / 'db.sqlite'}")
    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(ImageLayer)) == 0
    database.dispose()
    [dead_run] = (data / "store" / ".scratch").iterdir()
    orphans = sorted((data / "store" / "sub_images").rglob("*.ome.tif")) if moment == "before-commit" else []
    if moment == "mid-pyramid":
        assert list(dead_run.rglob("*")), "the crash should leave scratch files behind"
    else:
        assert [p.name for p in orphans] == ["expression.ome.tif", "primary.ome.tif"]  # published, no row
    report = ingest(data, manifest)
    assert report.ingested == [21]
    assert rows(data) == [21]
    # The re-run's scratch is gone; the dead run's scratch and orphans are left to `tierserve gc`, and
    # the committed row names the re-run's own keys, never an orphan of the killed attempt.
    assert list((data / "store" / ".scratch").iterdir()) == [dead_run]
    database = Database(f"sqlite:///{data / 'db.sqlite'}")
    with database.session() as session:
        paths = set(session.scalars(select(ImageLayer.path)))
    database.dispose()
    assert len(paths) == 2 and not paths & {p.relative_to(data / "store").as_posix() for p in orphans}
    assert all(orphan.exists() for orphan in orphans)
    assert psnr(stored_level0(data, 21), RGB.astype(float)) > 33


def test_an_id_taken_by_another_data_set_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "src"
    make_sources(src)
    ingest(tmp_path / "data", write_manifest(src, [{"id": 31, "section_number": 1, "source": "s.png"}]))
    other = src / "other.yaml"
    other.write_text(
        yaml.safe_dump(
            {"section_data_sets": [{"id": 901, "images": [{"id": 31, "section_number": 1, "source": "s.png"}]}]}
        )
    )
    report = ingest(tmp_path / "data", other)
    assert report.failed == [
        ("section_data_sets[0].images[0] (id 31)", "id 31 is already used by SectionImage of data set 900")
    ]


def test_sources_outside_the_allowed_folders_are_refused(tmp_path: Path) -> None:
    src = tmp_path / "src"
    make_sources(src)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "secret.png").write_bytes((src / "s.png").read_bytes())
    (src / "link.png").symlink_to(outside / "secret.png")
    images = [
        {"id": 41, "section_number": 1, "source": "../elsewhere/secret.png"},
        {"id": 42, "section_number": 2, "source": "link.png"},
        {"id": 43, "section_number": 3, "source": str(outside / "secret.png")},
        {"id": 44, "section_number": 4, "source": "s.png", "layers": [{"kind": "expression", "source": "link.png"}]},
        {"id": 45, "section_number": 5, "source": "s.png"},
    ]
    report = ingest(tmp_path / "data", write_manifest(src, images))
    assert report.ingested == [45]
    problems = dict(report.failed)
    for index, image_id in enumerate((41, 42, 43, 44)):
        message = problems[f"section_data_sets[0].images[{index}] (id {image_id})"]
        assert f"resolves to {outside / 'secret.png'}, outside the allowed folders ({src})" in message
    database = Database(f"sqlite:///{tmp_path / 'data' / 'db.sqlite'}")
    database.migrate()
    allowed = Ingestor(database, LocalStore(tmp_path / "data" / "store"), roots=[outside])
    again = allowed.run(load_manifest(src / "manifest.yaml"), src)
    database.dispose()
    assert sorted(again.ingested) == [41, 42, 43, 44]

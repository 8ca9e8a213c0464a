"""The benchmark collection: the full-size demo plus a source-size pair, ingested by tierserve, and a
folder of links through which IIPImage reads the very same pyramid files.

Built once per data directory (about 6 minutes on 2 cores), reused afterwards:
- `tierserve demo --no-serve` at full scale: SectionImage 69750516 (16000 x 10000, 8-bit RGB) and the
  12-bit 3-channel connectivity image 102146167 (6000 x 4000);
- a 4000 x 2500 crop of 69750516's source and the same crop repeated 16 x 16 (64000 x 40000), so that
  both have the same content and only the source size differs; the big source is a tiled JPEG BigTIFF
  written by libvips as a stream (about 0.5 GB), never a raw 7.7 GB image.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import pyvips

from bench.workloads import BenchImage
from tierserve.db.database import Database
from tierserve.db.models import SubImage
from tierserve.settings import Settings

LARGE, DEEP = 69750516, 102146167
SIZE_SET, SMALL, HUGE = 900000001, 900000002, 900000003
CROP = (6000, 3750, 4000, 2500)
REPEAT = 16


def ensure(data_dir: Path) -> dict[str, BenchImage]:
    """Build what is missing and return the benchmark images by role: large, deep, small, huge."""
    data_dir.mkdir(parents=True, exist_ok=True)
    if not _loaded(data_dir, [LARGE, DEEP]):
        _tierserve("demo", "--no-serve", "--data-dir", str(data_dir))
    if not _loaded(data_dir, [SMALL, HUGE]):
        _tierserve("ingest", str(_size_pair_manifest(data_dir)), "--data-dir", str(data_dir))
    images = _images(data_dir, {"large": LARGE, "deep": DEEP, "small": SMALL, "huge": HUGE})
    _link_for_iipimage(data_dir, images.values())
    return images


def iipimage_folder(data_dir: Path) -> Path:
    return data_dir / "iipimage"


def _tierserve(*args: str) -> None:
    print("building the benchmark collection: tierserve", " ".join(args), flush=True)
    subprocess.run([sys.executable, "-m", "tierserve", *args], check=True)


def _loaded(data_dir: Path, ids: list[int]) -> bool:
    if not (data_dir / "tierserve.db").exists():
        return False
    database = Database(Settings(data_dir=data_dir).resolved_database_url)
    try:
        with database.session() as session:
            return all(session.get(SubImage, image_id) is not None for image_id in ids)
    finally:
        database.dispose()


def _size_pair_manifest(data_dir: Path) -> Path:
    folder = data_dir / "bench-sources"
    folder.mkdir(exist_ok=True)
    demo_source = data_dir / "demo-sources" / f"ish-{LARGE}.tif"
    crop = pyvips.Image.new_from_file(str(demo_source)).crop(*CROP)
    small, huge = folder / "small.tif", folder / "huge.tif"
    if not small.exists():
        crop.tiffsave(str(small), compression="jpeg", Q=95, tile=True)
    if not huge.exists():
        part = huge.with_suffix(".part")
        pyvips.Image.new_from_file(str(small)).replicate(REPEAT, REPEAT).tiffsave(
            str(part), compression="jpeg", Q=95, tile=True, bigtiff=True
        )
        part.rename(huge)
    manifest = {
        "version": 1,
        "section_data_sets": [
            {
                "id": SIZE_SET,
                "name": "benchmark: one crop at two source sizes",
                "images": [
                    {"id": SMALL, "section_number": 1, "source": small.name},
                    {"id": HUGE, "section_number": 2, "source": huge.name},
                ],
            }
        ],
    }
    path = folder / "manifest.json"
    path.write_text(json.dumps(manifest, indent=2))
    return path


def _images(data_dir: Path, ids: dict[str, int]) -> dict[str, BenchImage]:
    database = Database(Settings(data_dir=data_dir).resolved_database_url)
    images = {}
    try:
        with database.session() as session:
            for role, image_id in ids.items():
                row = session.get(SubImage, image_id)
                assert row is not None
                images[role] = BenchImage(
                    image_id, row.image_width, row.image_height, row.tier_count, f"{image_id}.tif", row.path
                )
    finally:
        database.dispose()
    return images


def _link_for_iipimage(data_dir: Path, images: Iterable[BenchImage]) -> None:
    folder = iipimage_folder(data_dir)
    folder.mkdir(exist_ok=True)
    for image in images:
        link = folder / image.file_name
        target = data_dir / "store" / image.store_key
        if not link.is_symlink() or link.resolve() != target.resolve():
            link.unlink(missing_ok=True)
            link.symlink_to(target)

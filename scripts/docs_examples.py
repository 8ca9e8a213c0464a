"""Render the example pictures of docs/api.md from a demo collection.

    python scripts/docs_examples.py --data-dir DIR      # DIR holds a `tierserve demo` collection

Writes docs/images/*.jpg (about 320 pixels wide each) through the real app, in-process.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from fastapi.testclient import TestClient

from tierserve.api.app import create_app
from tierserve.core.palettes import PALETTES
from tierserve.settings import Settings

IMAGES = Path(__file__).parents[1] / "docs" / "images"
CONNECTIVITY = "/api/v2/section_image_download/102146167?quality=85"
ISH = "/api/v2/section_image_download/69750516?quality=85"

EXAMPLES = {
    "filter-none": f"{CONNECTIVITY}&range=0,4095,0,4095,0,4095",
    "filter-equalization": CONNECTIVITY,
    "filter-range": f"{CONNECTIVITY}&range=0,600,0,600,0,4095",
    "filter-contrast": f"{CONNECTIVITY}&contrast=1.8,-0.2",
    "filter-rgb": f"{CONNECTIVITY}&rgb=0.25,0.5,1",
    "filter-colormap-allensdk": f"{CONNECTIVITY}&colormap=0.5,0.3,0,256,4",
    "ish": ISH,
    "ish-expression": f"{ISH}&view=expression",
    "ish-expression-colormap": f"{ISH}&view=expression&colormap=0.5,0.1,0,256,1",
    **{f"palette-{name}": f"{CONNECTIVITY}&colormap={name}" for _, name, _ in PALETTES},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, required=True)
    args = parser.parse_args()
    IMAGES.mkdir(parents=True, exist_ok=True)
    with TestClient(create_app(Settings(data_dir=args.data_dir))) as client:
        for name, url in EXAMPLES.items():
            downsample = _downsample_for(client, url)
            response = client.get(f"{url}&downsample={downsample}")
            response.raise_for_status()
            (IMAGES / f"{name}.jpg").write_bytes(response.content)
            print(f"{name}: {url}&downsample={downsample}")


def _downsample_for(client: TestClient, url: str) -> int:
    """The tier at which the image is about 320 pixels wide."""
    image_id = url.split("?")[0].rsplit("/", 1)[1]
    record = client.get(f"/api/v2/data/SectionImage/{image_id}.json").json()["msg"][0]
    downsample = 0
    while record["width"] >> (downsample + 1) >= 320:
        downsample += 1
    return downsample


if __name__ == "__main__":
    main()

"""Building the demo collection: source files plus a manifest, then ingested like any collection.

The ids are those of the Allen documentation's examples, so the seed's URLs work on the demo:
ISH data set with SectionImages 69750516 (16000 x 10000 at scale 1) and 71592261; connectivity data
set 100141599 with Equalization 0/923, 0/987, 0/4095 and SectionImages 102146167 and 126862583;
atlas data set with AtlasImage 100883869 annotated for atlases 1 and 602630314.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyvips
import yaml

from tierserve.demo import synth

MANIFEST_NAME = "manifest.yaml"

ISH_DATA_SET = 69750000
CONNECTIVITY_DATA_SET = 100141599
ATLAS_DATA_SET = 100000001
ATLASES = (
    {"id": 1, "name": "Mouse, P56, Coronal", "image_type": "Atlas - Adult Mouse", "structure_graph_id": 1},
    {
        "id": 602630314,
        "name": "Adult Mouse, 3D Coronal",
        "image_type": "Atlas - Adult Mouse 3D",
        "structure_graph_id": 1,
    },
)
EQUALIZATION = {
    "red_lower": 0,
    "red_upper": 923,
    "green_lower": 0,
    "green_upper": 987,
    "blue_lower": 0,
    "blue_upper": 4095,
}
#: (id, width, height) of the ISH sections at scale 1; the first is the largest.
ISH_IMAGES = (
    (69750516, 16000, 10000),
    (71592261, 10000, 6400),
    (69750518, 9000, 6000),
    (69750519, 7200, 4600),
    (69750520, 6400, 4000),
)
#: The ISH section that is a sub-rectangle of a larger scan: (id, scan size, section rectangle).
ISH_SUB_IMAGE = (69750521, (12000, 8000), (1500, 900, 8000, 5000))
CONNECTIVITY_IMAGES = ((102146167, 6000, 4000), (126862583, 6000, 4000), (102146168, 5200, 3600))
ATLAS_IMAGES = (
    (100883869, 6000, 4400),
    (100883870, 6000, 4400),
    (100883871, 5600, 4000),
    (100883872, 5600, 4000),
)
#: Files `build_demo_sources` writes besides the manifest (it reports each one as it is written).
SOURCE_FILE_COUNT = 2 * len(ISH_IMAGES) + 2 + 2 * len(CONNECTIVITY_IMAGES) + (1 + len(ATLASES)) * len(ATLAS_IMAGES)
#: The seed's region of interest in image 69750516 at scale 1: left, top, width, height.
SEED_REGION = (6174, 2282, 1000, 1000)


@dataclass(frozen=True)
class DemoPlan:
    """Where the demo sources go and how big they are (scale 1 = the full demo)."""

    directory: Path
    scale: float = 1.0

    def size(self, width: int, height: int) -> tuple[int, int]:
        return max(64, round(width * self.scale)), max(64, round(height * self.scale))

    @property
    def manifest_path(self) -> Path:
        return self.directory / MANIFEST_NAME


#: Writes one source image under the plan's folder (once) and returns its file name.
Save = Callable[[pyvips.Image, str], str]


def build_demo_sources(plan: DemoPlan, on_file: Callable[[str], None] | None = None) -> Path:
    """Write the demo's source images and manifest under `plan.directory` (once); return the manifest.
    `on_file` is told each source's file name as it is written (or found already written)."""
    if plan.manifest_path.exists():
        return plan.manifest_path
    plan.directory.mkdir(parents=True, exist_ok=True)

    def save(image: pyvips.Image, name: str) -> str:
        path = plan.directory / name
        if not path.exists():
            scratch = path.with_name(f".{name}.part")
            _save(image, scratch, path.suffix)
            scratch.replace(path)
        if on_file is not None:
            on_file(name)
        return name

    ish = [*_ish_entries(plan, save), _sub_image_entry(plan, save)]
    manifest = _manifest(ish, _connectivity_entries(plan, save), _atlas_plate_entries(plan, save))
    scratch = plan.manifest_path.with_suffix(".part")
    scratch.write_text(yaml.safe_dump(manifest, sort_keys=False), encoding="utf-8")
    scratch.replace(plan.manifest_path)
    return plan.manifest_path


def _ish_entries(plan: DemoPlan, save: Save) -> list[dict[str, Any]]:
    """The ISH sections (`ISH_IMAGES`) with their expression masks; the first is a TIFF, the rest JPEGs."""
    entries = []
    for n, (image_id, w, h) in enumerate(ISH_IMAGES):
        slide, mask = synth.ish_section(*plan.size(w, h), seed=10 + n)
        kind = "tif" if n == 0 else "jpg"
        entries.append(
            {
                "id": image_id,
                "section_number": 40 + 8 * n,
                "resolution": 1.049,
                "source": save(slide, f"ish-{image_id}.{kind}"),
                "layers": [{"kind": "expression", "source": save(mask, f"ish-{image_id}-expression.png")}],
            }
        )
    return entries


def _sub_image_entry(plan: DemoPlan, save: Save) -> dict[str, Any]:
    """The ISH section that is a rectangle (`ISH_SUB_IMAGE`, scaled; in scan pixels) of a larger scan."""
    sub_id, scan, (x, y, w, h) = ISH_SUB_IMAGE
    scan_w, scan_h = plan.size(*scan)
    sx, sy = round(x * plan.scale), round(y * plan.scale)
    sw = max(1, min(round(w * plan.scale), scan_w - sx))
    sh = max(1, min(round(h * plan.scale), scan_h - sy))
    slide, mask = synth.ish_section(scan_w, scan_h, seed=30, section=(sx, sy, sw, sh))
    return {
        "id": sub_id,
        "section_number": 90,
        "resolution": 1.049,
        "x": sx,
        "y": sy,
        "width": sw,
        "height": sh,
        "source": save(slide, f"ish-{sub_id}-scan.tif"),
        "layers": [{"kind": "expression", "source": save(mask, f"ish-{sub_id}-scan-expression.tif")}],
    }


def _connectivity_entries(plan: DemoPlan, save: Save) -> list[dict[str, Any]]:
    """The 12-bit 3-channel fluorescence sections (`CONNECTIVITY_IMAGES`) with their projection masks."""
    entries = []
    for n, (image_id, w, h) in enumerate(CONNECTIVITY_IMAGES):
        image, projection = synth.fluorescence_section(*plan.size(w, h), seed=50 + n)
        entries.append(
            {
                "id": image_id,
                "section_number": 60 + 10 * n,
                "resolution": 0.35,
                "bits_per_component": 12,
                "source": save(image, f"connectivity-{image_id}.tif"),
                "layers": [
                    {
                        "kind": "projection",
                        "source": save(projection, f"connectivity-{image_id}-projection.png"),
                    }
                ],
            }
        )
    return entries


def _atlas_plate_entries(plan: DemoPlan, save: Save) -> list[dict[str, Any]]:
    """The Nissl-like atlas plates (`ATLAS_IMAGES`), each annotated for every atlas of `ATLASES`."""
    entries = []
    for n, (image_id, w, h) in enumerate(ATLAS_IMAGES):
        size = plan.size(w, h)
        layers = [
            {
                "kind": "annotation",
                "atlas": atlas["id"],
                "source": save(
                    synth.annotation_plate(*size, seed=70 + n, structures=24 + 40 * k),
                    f"atlas-{image_id}-annotation-{atlas['id']}.png",
                ),
            }
            for k, atlas in enumerate(ATLASES)
        ]
        entries.append(
            {
                "id": image_id,
                "section_number": 20 + 10 * n,
                "resolution": 1.0,
                "source": save(synth.nissl_plate(*size, seed=70 + n), f"atlas-{image_id}.jpg"),
                "layers": layers,
            }
        )
    return entries


def _manifest(
    ish: list[dict[str, Any]], connectivity: list[dict[str, Any]], plates: list[dict[str, Any]]
) -> dict[str, Any]:
    """The demo's manifest (docs/manifest.md) over the image entries of its three data sets."""
    return {
        "version": 1,
        "quality": 90,
        "atlases": list(ATLASES),
        "section_data_sets": [
            {
                "id": ISH_DATA_SET,
                "name": "Pdyn-like ISH (demo)",
                "expression": True,
                "plane_of_section_id": 2,
                "section_thickness": 25.0,
                "images": ish,
            },
            {
                "id": CONNECTIVITY_DATA_SET,
                "name": "Connectivity projection (demo)",
                "plane_of_section_id": 1,
                "section_thickness": 100.0,
                "red_channel": "autofluorescence",
                "green_channel": "rAAV-EGFP",
                "blue_channel": "none",
                "equalization": EQUALIZATION,
                "images": connectivity,
            },
        ],
        "atlas_data_sets": [
            {
                "id": ATLAS_DATA_SET,
                "name": "Coronal reference plates (demo)",
                "atlases": [atlas["id"] for atlas in ATLASES],
                "images": plates,
            },
        ],
    }


def _save(image: pyvips.Image, path: Path, suffix: str) -> None:
    if suffix == ".tif":
        compression = "deflate" if str(image.format) == "ushort" else "jpeg"
        image.tiffsave(str(path), tile=True, compression=compression, Q=95, bigtiff=True, predictor="horizontal")
    elif suffix == ".jpg":
        image.jpegsave(str(path), Q=95)
    else:
        image.pngsave(str(path), compression=1)


def example_urls(base: str, scale: float = 1.0) -> list[str]:
    """A few URLs worth trying on the demo built at `scale` (the seed's region of interest, scaled)."""
    api = f"{base}/api/v2"
    left, top, width, height = (max(1, round(value * scale)) for value in SEED_REGION)
    return [
        f"{api}/section_image_download/69750516?downsample=4",
        f"{api}/section_image_download/69750516?downsample=4&expression=true",
        f"{api}/section_image_download/69750516?left={left}&top={top}&width={width}&height={height}",
        f"{api}/section_image_download/71592261?downsample=3&quality=50",
        f"{api}/section_image_download/102146167?range=0,923,0,987,0,4095&downsample=4",
        f"{api}/projection_image_download/126862583?downsample=4&projection=true",
        f"{api}/atlas_image_download/100883869?downsample=4&annotation=true",
        f"{base}/docs",
    ]

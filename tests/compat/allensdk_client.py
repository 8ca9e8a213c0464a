"""Runs inside the client virtual environment (AllenSDK needs numpy<2): exercises AllenSDK's real
ImageDownloadApi against a tierserve base URL and prints what it got as JSON.

    python allensdk_client.py BASE_URL OUT_DIR
"""

import json
import sys

from allensdk.api.queries.image_download_api import ImageDownloadApi


def main() -> None:
    base, out = sys.argv[1], sys.argv[2]
    api = ImageDownloadApi(base_uri=base)
    result = {
        "section_image_query": [image["id"] for image in api.section_image_query(1001)],
        "section_image_query_records": api.section_image_query(1002),
        "get_section_image_ranges": api.get_section_image_ranges([2101]),
        "get_section_image_ranges_dicts": api.get_section_image_ranges([2101], as_lists=False),
        "atlas_image_query": [image["id"] for image in api.atlas_image_query(1)],
        "atlas_image_query_typed": [
            image["id"] for image in api.atlas_image_query(2, image_type_name="Atlas - Test B")
        ],
        "atlas_image_query_other_type": api.atlas_image_query(1, image_type_name="Atlas - Nothing"),
    }
    api.download_section_image(2001, file_path=f"{out}/section.jpg", downsample=2)
    api.download_section_image(
        2001, file_path=f"{out}/region.jpg", left=600, top=200, width=100, height=50, downsample=2, quality=90
    )
    api.download_section_image(2001, file_path=f"{out}/expression.jpg", expression=True, downsample=1)
    api.download_atlas_image(3001, file_path=f"{out}/atlas.jpg", annotation=True, atlas=2, downsample=1)
    api.download_projection_image(2101, file_path=f"{out}/projection.jpg", projection=True, downsample=1)
    ranges = api.get_section_image_ranges([2101])[0]
    api.download_projection_image(2101, file_path=f"{out}/ranged.jpg", range=ranges, downsample=1)
    api.download_section_image(
        2001, file_path=f"{out}/colormap.jpg", colormap=(0.9, "expression"), view="expression", downsample=2
    )
    api.download_section_image(
        2101, file_path=f"{out}/filters.jpg", rgb=[0.25, 0.5, 1], contrast=[0.5, 1], downsample=2
    )
    try:
        api.download_section_image(424242, file_path=f"{out}/missing.jpg")
        result["missing"] = "downloaded"
    except Exception as exc:  # AllenSDK raises on any non-2xx status
        result["missing"] = type(exc).__name__
    print(json.dumps(result))


if __name__ == "__main__":
    main()

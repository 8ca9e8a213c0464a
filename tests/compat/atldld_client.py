"""Runs inside the client virtual environment: atldld's real RMA paging and image download, pointed
at tierserve. atldld has no base-URL setting, so, as its users do, this sets
`atldld.requests._API_BASE_URL` and rewrites the hard-coded host in the URLs `atldld.utils` fetches.

    python atldld_client.py BASE_URL OUT_DIR
"""

import json
import sys

import atldld.requests
import atldld.utils
import requests

ALLEN = "https://api.brain-map.org"


def main() -> None:
    base, out = sys.argv[1], sys.argv[2]
    atldld.requests._API_BASE_URL = f"{base}/api/v2"
    real_get = requests.get
    atldld.utils.requests.get = lambda url, *a, **k: real_get(url.replace(ALLEN, base), *a, **k)

    data_sets = atldld.requests.rma_all(atldld.requests.RMAParameters("SectionDataSet", criteria={"id": 1001}))
    images = atldld.requests.rma_all(
        atldld.requests.RMAParameters("SectionImage", criteria={"section_data_set": {"id": 1001}})
    )
    by_data_set = atldld.requests.rma_all(atldld.requests.RMAParameters("SectionImage", criteria={"data_set_id": 1002}))
    primary = atldld.utils.get_image(2001, folder=out, downsample=2)
    expression = atldld.utils.get_image(2001, folder=out, downsample=3, expression=True)
    print(
        json.dumps(
            {
                "data_sets": [d["id"] for d in data_sets],
                "images": [i["id"] for i in images],
                "by_data_set": [i["id"] for i in by_data_set],
                "primary": [list(primary.shape), str(primary.dtype)],
                "expression": [list(expression.shape), str(expression.dtype)],
            }
        )
    )


if __name__ == "__main__":
    main()

"""IIIF Presentation 3.0 manifests and collection: parsed back into iiif-prezi3's models, and their
contents checked against the synthetic collection (tests/conftest.py) and a database made here."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from fastapi.testclient import TestClient
from iiif_prezi3 import Collection as PreziCollection
from iiif_prezi3 import Manifest as PreziManifest

from tests.conftest import EQUALIZATION, SUB_RECT, Collection
from tests.images import decode_jpeg
from tierserve.api.app import create_app
from tierserve.api.routes.iiif_presentation import wants_json_ld
from tierserve.db.database import Database
from tierserve.db.models import AtlasDataSet, Equalization, ImageLayer, SectionDataSet, SectionImage, SubImage
from tierserve.db.repository import LayerKey
from tierserve.errors import InvalidRequest
from tierserve.iiif.presentation import image_identifier, parse_data_set_id, thumbnail_size
from tierserve.settings import Settings

CONTEXT = "http://iiif.io/api/presentation/3/context.json"
JSON_LD = f'application/ld+json;profile="{CONTEXT}"'


def manifest_of(response: httpx2.Response) -> dict[str, Any]:
    """The served manifest, after checking that iiif-prezi3's Manifest model takes it whole: parsing it
    and writing it out again gives the same document (nothing unknown to the model, nothing lost)."""
    assert response.status_code == 200, response.text
    model = PreziManifest.model_validate_json(response.content)
    served: dict[str, Any] = response.json()
    assert json.loads(model.jsonld()) == served
    assert served["@context"] == CONTEXT
    return served


def collection_of(response: httpx2.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    model = PreziCollection.model_validate_json(response.content)
    served: dict[str, Any] = response.json()
    assert json.loads(model.jsonld()) == served
    return served


def metadata(resource: dict[str, Any]) -> dict[str, list[str]]:
    return {pair["label"]["none"][0]: pair["value"]["none"] for pair in resource.get("metadata", [])}


def painted(canvas: dict[str, Any]) -> list[dict[str, Any]]:
    """The images the canvas's painting annotation offers, the default first."""
    (page,) = canvas["items"]
    (annotation,) = page["items"]
    assert annotation["motivation"] == "painting"
    assert annotation["target"] == canvas["id"]
    body = annotation["body"]
    return body["items"] if body["type"] == "Choice" else [body]


def service_ids(canvas: dict[str, Any]) -> list[str]:
    ids = []
    for image in painted(canvas):
        (service,) = image["service"]
        assert (service["type"], service["profile"]) == ("ImageService3", "level2")
        assert image["id"] == service["id"] + "/full/max/0/default.jpg"
        assert (image["type"], image["format"]) == ("Image", "image/jpeg")
        assert (image["width"], image["height"]) == (canvas["width"], canvas["height"])
        ids.append(service["id"])
    return ids


def test_the_collection_lists_every_data_set_and_its_manifests_load(http: httpx2.Client) -> None:
    """Through the in-process client and a real server: every id starts at the base the client used."""
    base = str(http.base_url).rstrip("/")
    collection = collection_of(http.get("/iiif/presentation/3/collection"))
    assert collection["id"] == f"{base}/iiif/presentation/3/collection"
    items = collection["items"]
    manifests = [f"{base}/iiif/presentation/3/manifest/{i}" for i in (1001, 1002, 1003, 1004)]
    assert [item["id"] for item in items] == manifests
    assert [item["label"] for item in items] == [
        {"none": [name]} for name in ("ISH", "Connectivity", "Connectivity without equalization", "Plates")
    ]
    assert {item["type"] for item in items} == {"Manifest"}
    for item in items:
        document = manifest_of(http.get(item["id"].removeprefix(base)))
        assert document["id"] == item["id"]
        assert document["label"] == item["label"]
        assert document["partOf"] == [{"id": collection["id"], "type": "Collection"}]
        assert all(service.startswith(f"{base}/iiif/3/") for c in document["items"] for service in service_ids(c))


def test_section_data_set_manifest(client: TestClient, collection: Collection) -> None:
    base = "http://testserver"
    document = manifest_of(client.get("/iiif/presentation/3/manifest/1001"))
    first, second = document["items"]
    # section numbers 1 and 2; the second is the SUB_RECT section of a 1500 x 1100 scan
    assert [canvas["label"] for canvas in document["items"]] == [{"en": ["Section 1"]}, {"en": ["Section 2"]}]
    assert (first["width"], first["height"]) == (1500, 1100)
    assert (second["width"], second["height"]) == SUB_RECT[2:]
    assert first["id"] == f"{base}/iiif/presentation/3/manifest/1001/canvas/2001"
    assert service_ids(first) == [f"{base}/iiif/3/2001", f"{base}/iiif/3/2001~expression"]
    assert [image["label"] for image in painted(first)] == [{"en": ["Image"]}, {"en": ["Expression"]}]
    assert service_ids(second) == [f"{base}/iiif/3/2002"]
    assert first["items"][0]["items"][0]["body"]["type"] == "Choice"
    assert second["items"][0]["items"][0]["body"]["type"] == "Image"  # no layer to choose: a plain image

    (thumbnail,) = first["thumbnail"]
    assert thumbnail["id"] == f"{base}/iiif/3/2001/full/256,188/0/default.jpg"
    assert (thumbnail["width"], thumbnail["height"]) == (256, 188)  # 1100 * 256 / 1500 = 187.7
    assert thumbnail["service"][0]["id"] == f"{base}/iiif/3/2001"
    assert document["thumbnail"] == first["thumbnail"]
    for canvas in (first, second):  # every thumbnail URL is answered, at the size the manifest states
        (shown,) = canvas["thumbnail"]
        answer = client.get(shown["id"].removeprefix(base))
        assert answer.status_code == 200, answer.text
        assert decode_jpeg(answer.content).shape[:2] == (shown["height"], shown["width"])

    x, y, width, height = SUB_RECT
    database = Database(collection.settings.resolved_database_url)
    with database.session() as session:
        resolution = session.get_one(SubImage, 2002).resolution
    database.dispose()
    assert metadata(second) == {
        "type": ["SectionImage"],
        "id": ["2002"],
        "section_number": ["2"],
        "resolution": [f"{resolution:g} µm/pixel"],  # as ingest found it in the TIFF
        "x": [str(x)],
        "y": [str(y)],
        "width": [str(width)],
        "height": [str(height)],
        "image_width": ["1500"],
        "image_height": ["1100"],
        "bits_per_component": ["8"],
        "number_of_components": ["3"],
    }
    assert metadata(first)["resolution"] == ["1 µm/pixel"]
    assert metadata(document) == {"type": ["SectionDataSet"], "id": ["1001"], "name": ["ISH"], "failed": ["false"]}
    assert document["label"] == {"none": ["ISH"]}
    assert document["summary"] == {"en": ["SectionDataSet 1001: 2 images"]}
    assert document["seeAlso"][0]["id"] == f"{base}/api/v2/data/SectionDataSet/1001.json"
    assert first["seeAlso"][0]["id"] == f"{base}/api/v2/data/SectionImage/2001.json"
    assert first["rendering"][0]["id"] == f"{base}/api/v2/section_image_download/2001"
    # the links into the other APIs answer
    assert client.get("/api/v2/data/SectionImage/2001.json").json()["msg"][0]["section_number"] == 1
    assert client.head("/api/v2/section_image_download/2001").status_code == 200


def test_connectivity_manifest_carries_the_equalization_and_the_projection_layer(client: TestClient) -> None:
    document = manifest_of(client.get("/iiif/presentation/3/manifest/1002"))
    expected = ", ".join(f"{c} {lo}-{hi}" for c, (lo, hi) in zip(("red", "green", "blue"), EQUALIZATION, strict=True))
    assert metadata(document)["equalization"] == [expected]
    (canvas,) = document["items"]
    assert (canvas["width"], canvas["height"]) == (1300, 900)
    assert service_ids(canvas) == ["http://testserver/iiif/3/2101", "http://testserver/iiif/3/2101~projection"]
    assert metadata(canvas)["bits_per_component"] == ["12"]
    assert metadata(canvas)["resolution"] == ["0.35 µm/pixel"]
    without = manifest_of(client.get("/iiif/presentation/3/manifest/1003"))
    assert "equalization" not in metadata(without)


def test_atlas_manifest_offers_each_atlas_annotation(client: TestClient) -> None:
    document = manifest_of(client.get("/iiif/presentation/3/manifest/1004"))
    assert metadata(document) == {
        "type": ["AtlasDataSet"],
        "id": ["1004"],
        "name": ["Plates"],
        "atlases": ["1 Test atlas A (Atlas - Test A)", "2 Test atlas B (Atlas - Test B)"],
    }
    (canvas,) = document["items"]
    assert canvas["label"] == {"en": ["Section 5"]}
    assert (canvas["width"], canvas["height"]) == (700, 500)
    assert service_ids(canvas) == [
        "http://testserver/iiif/3/3001",
        "http://testserver/iiif/3/3001~annotation-1",
        "http://testserver/iiif/3/3001~annotation-2",
    ]
    assert [image["label"]["en"][0] for image in painted(canvas)] == [
        "Image",
        "Annotation: Test atlas A",
        "Annotation: Test atlas B",
    ]
    assert canvas["rendering"][0]["id"] == "http://testserver/api/v2/atlas_image_download/3001"


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("/iiif/presentation/3/manifest/abc", 400, "data set id must be a positive integer"),
        ("/iiif/presentation/3/manifest/0", 400, "data set id must be a positive integer"),
        ("/iiif/presentation/3/manifest/-5", 400, "data set id must be a positive integer"),
        ("/iiif/presentation/3/manifest/9223372036854775808", 400, "below 2^63"),
        ("/iiif/presentation/3/manifest/1001.json", 400, "got '1001.json'"),
        ("/iiif/presentation/3/manifest/2001", 404, "no SectionDataSet or AtlasDataSet with id 2001"),
        ("/iiif/presentation/3/manifest/9223372036854775807", 404, "no SectionDataSet or AtlasDataSet"),
        ("/iiif/presentation/3/manifest/1001/canvas/2001", 404, "no IIIF Presentation resource"),
        ("/iiif/presentation/3/manifest/", 404, "no IIIF Presentation resource"),
        ("/iiif/presentation/2/collection", 404, "no IIIF Presentation resource"),
    ],
)
def test_errors_have_this_routers_body(client: TestClient, path: str, status: int, message: str) -> None:
    response = client.get(path)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"}, body
    assert message in body["error"]


def test_json_ld_when_the_client_asks_for_it(client: TestClient) -> None:
    path = "/iiif/presentation/3/manifest/1001"
    plain = client.get(path)
    assert plain.headers["content-type"] == "application/json"
    for accept in ("application/ld+json", f"{JSON_LD}, application/json;q=0.5", "application/LD+JSON;q=0.3"):
        response = client.get(path, headers={"Accept": accept})
        assert response.headers["content-type"] == JSON_LD
        assert response.content == plain.content
    refused = client.get(path, headers={"Accept": "application/ld+json;q=0, application/json"})
    assert refused.headers["content-type"] == "application/json"
    listing = client.get("/iiif/presentation/3/collection", headers={"Accept": "application/ld+json"})
    assert listing.headers["content-type"] == JSON_LD


def test_wants_json_ld() -> None:
    assert not wants_json_ld(None)
    assert not wants_json_ld("*/*")
    assert not wants_json_ld("application/json")
    assert not wants_json_ld("application/ld+json;q=zero")
    assert wants_json_ld('application/ld+json; profile="x"')


def test_etag_304_and_head(client: TestClient) -> None:
    path = "/iiif/presentation/3/manifest/1004"
    response = client.get(path)
    tag = response.headers["etag"]
    assert response.headers["cache-control"] == "no-cache"
    assert "Accept" in response.headers["vary"]
    again = client.get(path, headers={"If-None-Match": tag})
    assert (again.status_code, again.content, again.headers["etag"]) == (304, b"", tag)
    assert client.get(path, headers={"If-None-Match": f'"other", W/{tag}'}).status_code == 304
    assert client.get(path, headers={"If-None-Match": '"other"'}).status_code == 200
    json_ld = client.get(path, headers={"Accept": "application/ld+json", "If-None-Match": tag})
    assert json_ld.status_code == 200 and json_ld.headers["etag"] != tag  # another representation
    assert client.get(path, headers={"Host": "example.org"}).headers["etag"] != tag  # other links

    head = client.head(path)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["etag"] == tag
    assert int(head.headers["content-length"]) == len(response.content)
    assert head.headers["content-type"] == "application/json"
    assert client.head("/iiif/presentation/3/manifest/77").status_code == 404
    assert client.head("/iiif/presentation/3/collection").status_code == 200


def test_cors(client: TestClient) -> None:
    origin = {"Origin": "https://viewer.example.org"}
    response = client.get("/iiif/presentation/3/manifest/1001", headers=origin)
    assert response.headers["access-control-allow-origin"] == "*"
    assert client.get("/iiif/presentation/3/manifest/abc", headers=origin).headers["access-control-allow-origin"] == "*"
    preflight = client.options(
        "/iiif/presentation/3/collection", headers={**origin, "Access-Control-Request-Method": "GET"}
    )
    assert preflight.status_code == 200
    assert "GET" in preflight.headers["access-control-allow-methods"]


def test_links_follow_the_host_and_root_path(collection: Collection) -> None:
    with TestClient(create_app(collection.settings), root_path="/atlas/v1") as proxied:
        response = proxied.get("/iiif/presentation/3/manifest/1001", headers={"Host": "images.example.org"})
        document = manifest_of(response)
    base = "http://images.example.org/atlas/v1"
    assert document["id"] == f"{base}/iiif/presentation/3/manifest/1001"
    assert service_ids(document["items"][0])[0] == f"{base}/iiif/3/2001"
    with TestClient(create_app(collection.settings)) as plain:
        # a Host header that makes no URL is not used: the server's own address is
        document = manifest_of(plain.get("/iiif/presentation/3/manifest/1001", headers={"Host": "a b<c>"}))
    assert document["id"] == "http://testserver/iiif/presentation/3/manifest/1001"


def test_public_url_setting_decides_the_links(collection: Collection) -> None:
    settings = collection.settings.model_copy(update={"public_url": "https://images.example.org/tierserve"})
    with TestClient(create_app(settings)) as public:
        collection_document = collection_of(public.get("/iiif/presentation/3/collection"))
        document = manifest_of(public.get("/iiif/presentation/3/manifest/1002"))
    assert collection_document["id"] == "https://images.example.org/tierserve/iiif/presentation/3/collection"
    assert document["id"] == "https://images.example.org/tierserve/iiif/presentation/3/manifest/1002"
    assert service_ids(document["items"][0])[0] == "https://images.example.org/tierserve/iiif/3/2101"
    assert Settings(public_url="https://a.org/x/").public_url == "https://a.org/x"
    assert Settings(public_url="").public_url is None
    for bad in ("ftp://a.org", "a.org", "https://a.org/?q=1", "https://a.org/#x"):
        with pytest.raises(ValueError, match="expected an http"):
            Settings(public_url=bad)


# A database made here: sections ingested out of order, every Allen field of a SectionDataSet set,
# an image with two tumour feature layers, an atlas data set without images.


@pytest.fixture(scope="module")
def allen_fields(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    data_dir: Path = tmp_path_factory.mktemp("presentation")
    settings = Settings(data_dir=data_dir)
    database = Database(settings.resolved_database_url)
    database.migrate()
    with database.session() as session:
        session.add(
            SectionDataSet(
                id=70,
                name="Pdyn ISH",
                description="In situ hybridization of Pdyn, coronal",
                failed=False,
                expression=True,
                delegate=True,
                plane_of_section_id=1,
                reference_space_id=9,
                specimen_id=70001,
                section_thickness=25.0,
                storage_directory="/external/aibs/prod/",
                red_channel="background",
                green_channel="Pdyn",
                blue_channel=None,
                qc_date="2008-05-02",
                weight=5470,
                equalization=Equalization(
                    red_lower=10, red_upper=900, green_lower=20, green_upper=950, blue_lower=0, blue_upper=4095
                ),
            )
        )
        session.add(AtlasDataSet(id=80, name="No plates yet"))
        for image_id, section_number in ((501, 30), (502, 10), (503, 20), (504, 10)):
            image = SectionImage(
                id=image_id,
                data_set_id=70,
                section_number=section_number,
                x=0,
                y=0,
                width=4000 + image_id,
                height=3000,
                image_width=4000 + image_id,
                image_height=3000,
                tier_count=4,
                resolution=1.049,
                bits_per_component=8,
                number_of_components=3,
                path=f"sub_images/{image_id}/primary.ome.tif",
                failed=image_id == 504,
            )
            kinds = ["primary"] + (["tumor_feature_boundary", "tumor_feature_annotation"] if image_id == 503 else [])
            image.layers = [
                ImageLayer(
                    kind=kind,
                    path=f"sub_images/{image_id}/{kind}.ome.tif",
                    width=image.width,
                    height=image.height,
                    tier_count=4,
                    bits_per_component=8,
                    number_of_components=3,
                    byte_size=1,
                )
                for kind in kinds
            ]
            session.add(image)
        session.commit()
    database.dispose()
    with TestClient(create_app(settings)) as client:
        yield client


def test_canvases_follow_section_numbers_not_ingest_order(allen_fields: TestClient) -> None:
    document = manifest_of(allen_fields.get("/iiif/presentation/3/manifest/70"))
    canvases = document["items"]
    # section 10 twice (ids 502, 504: by id), then 20, then 30
    assert [metadata(c)["id"][0] for c in canvases] == ["502", "504", "503", "501"]
    assert [c["label"]["en"][0] for c in canvases] == ["Section 10", "Section 10", "Section 20", "Section 30"]
    assert [c["width"] for c in canvases] == [4502, 4504, 4503, 4501]
    assert metadata(canvases[1])["failed"] == ["true"]
    assert "failed" not in metadata(canvases[0])
    assert service_ids(canvases[2]) == [
        "http://testserver/iiif/3/503",
        "http://testserver/iiif/3/503~tumor_feature_annotation",
        "http://testserver/iiif/3/503~tumor_feature_boundary",
    ]
    assert [image["label"]["en"][0] for image in painted(canvases[2])] == [
        "Image",
        "Tumor feature annotation",
        "Tumor feature boundary",
    ]


def test_every_allen_field_of_the_data_set_is_in_the_metadata(allen_fields: TestClient) -> None:
    document = manifest_of(allen_fields.get("/iiif/presentation/3/manifest/70"))
    assert document["label"] == {"none": ["Pdyn ISH"]}
    assert document["summary"] == {"none": ["In situ hybridization of Pdyn, coronal"]}
    assert metadata(document) == {
        "type": ["SectionDataSet"],
        "id": ["70"],
        "name": ["Pdyn ISH"],
        "failed": ["false"],
        "expression": ["true"],
        "delegate": ["true"],
        "plane_of_section_id": ["1"],
        "reference_space_id": ["9"],
        "specimen_id": ["70001"],
        "section_thickness": ["25 µm"],
        "red_channel": ["background"],
        "green_channel": ["Pdyn"],
        "qc_date": ["2008-05-02"],
        "weight": ["5470"],
        "equalization": ["red 10-900, green 20-950, blue 0-4095"],
    }  # storage_directory, a path on the server, is not shown
    assert metadata(document["items"][0])["resolution"] == ["1.049 µm/pixel"]


def test_the_etag_changes_with_the_data(allen_fields: TestClient) -> None:
    """The ETag is made from the records, not the bytes: a change in the database must change it."""
    path = "/iiif/presentation/3/manifest/70"
    before = allen_fields.get(path)
    tag = before.headers["etag"]
    assert allen_fields.get(path, headers={"If-None-Match": tag}).status_code == 304
    database = allen_fields.app.state.tierserve.database
    with database.session() as session:
        session.get_one(SectionImage, 503).section_number = 40
        session.commit()
    try:
        after = allen_fields.get(path, headers={"If-None-Match": tag})
        assert after.status_code == 200 and after.headers["etag"] != tag
        assert [c["label"]["en"][0] for c in after.json()["items"]][-1] == "Section 40"
    finally:
        with database.session() as session:
            session.get_one(SectionImage, 503).section_number = 20
            session.commit()
    assert allen_fields.get(path, headers={"If-None-Match": tag}).status_code == 304


def test_a_data_set_without_images_has_no_manifest_and_is_not_listed(allen_fields: TestClient) -> None:
    response = allen_fields.get("/iiif/presentation/3/manifest/80")
    assert response.status_code == 404
    assert response.json() == {"error": "data set 80 has no images"}
    listed = collection_of(allen_fields.get("/iiif/presentation/3/collection"))
    assert [item["id"] for item in listed["items"]] == ["http://testserver/iiif/presentation/3/manifest/70"]
    assert listed["summary"] == {"en": ["1 data set, one manifest each"]}


def test_the_openapi_document_describes_the_routes(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert "/iiif/presentation/3/collection" in paths
    assert "/iiif/presentation/3/manifest/{data_set_id}" in paths
    assert not any(path.startswith("/iiif/presentation/{") for path in paths)


@pytest.mark.parametrize(
    ("size", "fitted"),
    [((1500, 1100), (256, 188)), ((1100, 1500), (188, 256)), ((100, 50), (100, 50)), ((5000, 1), (256, 1))],
)
def test_thumbnail_size(size: tuple[int, int], fitted: tuple[int, int]) -> None:
    assert thumbnail_size(*size) == fitted


def test_identifiers_and_ids() -> None:
    assert image_identifier(7, LayerKey("primary", None)) == "7"
    assert image_identifier(7, LayerKey("expression", None)) == "7~expression"
    assert image_identifier(7, LayerKey("annotation", 12)) == "7~annotation-12"
    assert parse_data_set_id("0042") == 42
    assert parse_data_set_id(str(2**63 - 1)) == 2**63 - 1
    for bad in ("", " 1", "1 ", "+1", "1e3", "٣", str(2**63)):
        with pytest.raises(InvalidRequest):
            parse_data_set_id(bad)

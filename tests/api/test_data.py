"""The RMA data API through real HTTP: envelopes, XML, CSV, paging, includes, pipes and bad queries."""

from __future__ import annotations

from xml.etree import ElementTree as ET

import httpx2
import pytest

Q = "/api/v2/data/query.json?q="


def ok(http: httpx2.Client, url: str) -> dict[str, object]:
    response = http.get(url)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True
    return body


def ids(body: dict[str, object]) -> list[int]:
    return [record["id"] for record in body["msg"]]  # type: ignore[index, union-attr]


def test_seed_equalization_example_json(http: httpx2.Client) -> None:
    response = http.get("/api/v2/data/SectionDataSet/1002.json?include=equalization,section_images")
    assert response.headers["content-type"] == "application/json"
    assert response.headers["content-disposition"] == "inline; filename=query.json"
    body = response.json()
    assert {k: body[k] for k in ("success", "id", "start_row", "num_rows", "total_rows")} == {
        "success": True,
        "id": 0,
        "start_row": 0,
        "num_rows": 1,
        "total_rows": 1,
    }
    (data_set,) = body["msg"]
    assert data_set["id"] == 1002 and data_set["name"] == "Connectivity"
    equalization = data_set["equalization"]
    assert {
        k: equalization[k] for k in ("red_lower", "red_upper", "green_lower", "green_upper", "blue_lower", "blue_upper")
    } == {
        "red_lower": 0,
        "red_upper": 923,
        "green_lower": 0,
        "green_upper": 987,
        "blue_lower": 0,
        "blue_upper": 4095,
    }
    (image,) = data_set["section_images"]
    assert image["id"] == 2101 and image["bits_per_component"] == 12 and image["tier_count"] == 3
    assert (image["width"], image["height"], image["image_width"], image["resolution"]) == (1300, 900, 1300, 0.35)


def test_seed_equalization_example_xml(http: httpx2.Client) -> None:
    response = http.get("/api/v2/data/SectionDataSet/1002.xml?include=equalization,section_images")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    assert response.text.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    root = ET.fromstring(response.text)
    assert root.tag == "Response"
    assert root.attrib == {"success": "true", "id": "0", "start_row": "0", "num_rows": "1", "total_rows": "1"}
    data_set = root.find("section-data-sets/section-data-set")
    assert data_set is not None
    top_id = data_set.find("id")
    assert top_id is not None and top_id.text == "1002" and "type" not in top_id.attrib
    assert data_set.find("description").attrib == {"nil": "true"}  # type: ignore[union-attr]
    red_upper = data_set.find("equalization/red-upper")
    assert red_upper is not None and red_upper.text == "923" and red_upper.attrib == {"type": "integer"}
    image = data_set.find("section-images/section-image")
    assert image is not None
    assert image.find("resolution").attrib == {"type": "float"}  # type: ignore[union-attr]
    assert image.find("annotated").text == "false"  # type: ignore[union-attr]
    assert image.find("annotated").attrib == {"type": "boolean"}  # type: ignore[union-attr]


def test_section_images_of_a_data_set(http: httpx2.Client) -> None:
    body = ok(
        http, Q + "model::SectionImage,rma::criteria,[data_set_id$eq1001],rma::options[num_rows$eq'all'][count$eqfalse]"
    )
    assert ids(body) == [2001, 2002]
    sub = body["msg"][1]  # type: ignore[index]
    assert (sub["x"], sub["y"], sub["width"], sub["height"]) == (200, 150, 1000, 700)


def test_section_image_ranges(http: httpx2.Client) -> None:
    body = ok(
        http,
        Q + "model::Equalization,rma::criteria,section_data_set(section_images[id$in2101,2102,2001]),"
        "rma::options[only$eq'blue_lower,blue_upper,red_lower,red_upper,green_lower,green_upper'][num_rows$eq'all']",
    )
    assert body["msg"] == [
        {"red_lower": 0, "red_upper": 923, "green_lower": 0, "green_upper": 987, "blue_lower": 0, "blue_upper": 4095}
    ]


@pytest.mark.parametrize(
    ("type_filter", "expected"),
    [("$eq$type_name", [3001]), ("$eq'Atlas - Test B'", [3001]), ("$eq'Atlas - Other'", [])],
)
def test_atlas_image_query_with_pipe(http: httpx2.Client, type_filter: str, expected: list[int]) -> None:
    body = ok(
        http,
        Q + "model::Atlas,rma::criteria,[id$eq1],rma::options[only$eqimage_type],pipe::list[type_name$is'image_type'],"
        "model::AtlasImage,rma::criteria,[annotated$eqtrue],atlas_data_set(atlases[id$eq1]),"
        f"alternate_images[image_type{type_filter}],rma::options[num_rows$eq'all'][order$eqsub_images.section_number]",
    )
    assert ids(body) == expected
    assert body["total_rows"] == len(expected)


def test_paging_total_rows_and_past_the_end(http: httpx2.Client) -> None:
    base = Q + "model::SectionImage,rma::options[order$eq'id']"
    first = ok(http, base + "&num_rows=2")
    assert (first["num_rows"], first["total_rows"]) == (2, 4) and ids(first) == [2001, 2002]
    second = ok(http, base + "&numRows=2&startRow=2")
    assert ids(second) == [2101, 2102] and second["start_row"] == 2
    past = ok(http, base + "&num_rows=2&start_row=10")
    assert past["msg"] == [] and past["num_rows"] == 0 and past["total_rows"] == 4
    everything = ok(http, base + "&num_rows=all")
    assert len(everything["msg"]) == 4  # type: ignore[arg-type]


def test_total_rows_counts_roots_not_fan_out(http: httpx2.Client) -> None:
    body = ok(http, Q + "model::SectionDataSet,rma::criteria,section_images[id$gt0],rma::include,section_images")
    assert body["total_rows"] == len(body["msg"]) == 3  # type: ignore[arg-type]


def test_order_descending(http: httpx2.Client) -> None:
    body = ok(http, "/api/v2/data/SectionImage/query.json?criteria=[data_set_id$eq1001]&order=section_number+desc")
    assert ids(body) == [2002, 2001]


def test_model_query_legacy_forms(http: httpx2.Client) -> None:
    assert ids(ok(http, "/api/v2/data/SectionImage/query.json?id=2002")) == [2002]
    body = ok(http, "/api/v2/data/SectionDataSet/query.json?criteria=section_images[id$eq2101]&include=equalization")
    assert ids(body) == [1002]
    assert body["msg"][0]["equalization"]["red_upper"] == 923  # type: ignore[index]
    unequalized = ok(http, "/api/v2/data/SectionDataSet/1003.json?include=equalization")
    assert unequalized["msg"][0]["equalization"] is None  # type: ignore[index]


def test_missing_id_is_an_empty_page(http: httpx2.Client) -> None:
    body = ok(http, "/api/v2/data/SectionImage/999999.json")
    assert body["msg"] == [] and body["total_rows"] == 0


def test_atlas_data_set_and_alternate_images(http: httpx2.Client) -> None:
    body = ok(http, "/api/v2/data/AtlasDataSet/1004.json?include=atlases,atlas_images(alternate_images)")
    (data_set,) = body["msg"]  # type: ignore[misc]
    assert [a["id"] for a in data_set["atlases"]] == [1, 2]
    (plate,) = data_set["atlas_images"]
    assert plate["annotated"] is True
    assert sorted(a["image_type"] for a in plate["alternate_images"]) == ["Atlas - Test A", "Atlas - Test B"]


def test_section_image_with_equalization_convenience(http: httpx2.Client) -> None:
    body = ok(http, "/api/v2/data/SectionImage/2101.json?include=section_data_set(equalization),equalization")
    (image,) = body["msg"]  # type: ignore[misc]
    assert image["equalization"]["green_upper"] == 987
    assert image["section_data_set"]["equalization"]["green_upper"] == 987


def test_wildcards(http: httpx2.Client) -> None:
    assert ids(ok(http, Q + "model::SectionDataSet,rma::criteria,[name$li'Connect*']")) == [1002, 1003]
    assert ids(ok(http, Q + "model::SectionDataSet,rma::criteria,[name$il'*WITHOUT*']")) == [1003]
    assert ids(ok(http, Q + "model::SectionDataSet,rma::criteria,[name$li'%']")) == []


def test_csv_and_tabular(http: httpx2.Client) -> None:
    response = http.get("/api/v2/data/SectionImage/query.csv?criteria=[data_set_id$eq1001]&only=id,width,height")
    assert response.headers["content-type"].startswith("text/csv")
    assert response.text.splitlines() == ["id,width,height", "2001,1500,1100", "2002,1000,700"]
    tabular = http.get(
        "/api/v2/data/query.csv?criteria=model::SectionImage,rma::criteria,[data_set_id$eq1001],"
        "rma::options,[tabular$eq'sub_images.id+as+image_id','sub_images.section_number+as+section'],"
        "[order$eq'sub_images.section_number+desc']"
    )
    assert tabular.text.splitlines() == ["image_id,section", "2002,2", "2001,1"]
    empty = http.get("/api/v2/data/SectionImage/query.csv?id=1")
    assert empty.text.splitlines()[0].startswith("id,data_set_id,section_number")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("/api/v2/data/query.json", "needs a q (or criteria) parameter"),
        (Q + "model::Gene", "unknown or unsupported model 'Gene'"),
        (
            Q + "model::SectionDataSet,rma::criteria,products[id$eq1]",
            "association 'products' of SectionDataSet at position 36 is not supported",
        ),
        (Q + "model::SectionImage,rma::criteria,[colour$eq1]", "SectionImage has no field 'colour'"),
        (Q + "model::SectionImage,rma::criteria,[id$eq'x']", "id takes a number, got 'x'"),
        (Q + "model::SectionImage,rma::criteria,[failed$eqmaybe]", "failed takes true or false"),
        (Q + "model::SectionImage,rma::criteria,[id$eq99999999999999999999999]", "id takes a number"),
        (Q + "model::SectionImage,rma::criteria,[id$eq1", "missing ']' at position"),
        (Q + "model::SectionImage,rma::options[order$eqgenes.acronym]", "not a field of SectionImage"),
        (Q + "model::SectionImage,rma::options[only$eqnope]", "'nope' in only/except"),
        (Q + "model::AtlasImage,rma::criteria,alternate_images[image_type$eq$undefined]", "variable $undefined"),
        (Q + "model::SectionImage&bogus=1", "unknown parameter 'bogus'"),
        (Q + "model::SectionImage&num_rows=lots", "parameter num_rows: expected a non-negative integer"),
        (Q + "model::SectionImage&num_rows=1000000", "exceeds the limit of 100000"),
        ("/api/v2/data/query.html?q=model::SectionImage", "expected NAME.json, NAME.xml or NAME.csv"),
        ("/api/v2/data/other.json?q=model::SectionImage", "unknown data resource"),
        ("/api/v2/data/SectionImage/12x.json", "id must be a positive integer, got '12x'"),
        ("/api/v2/data/SectionImage/query.json?id=-1", "id must be a positive integer"),
    ],
)
def test_bad_queries_are_400_with_a_message(http: httpx2.Client, url: str, message: str) -> None:
    response = http.get(url)
    assert response.status_code == 400
    body = response.json()
    assert body["success"] is False
    assert message in body["msg"]


@pytest.mark.parametrize(
    "criteria",
    [
        "[name$eq'x'' OR 1=1 --']",
        "[name$eq'1; DROP TABLE sub_images; --']",
        "[name$eq'/* comment */']",
        "[name$li'%'' OR ''1''=''1']",
        '[name$eq"quote"]',
        "[id$in" + ",".join(str(i) for i in range(1, 1900)) + "]",
    ],
)
def test_injection_attempts_are_bound_parameters(http: httpx2.Client, criteria: str) -> None:
    response = http.get(Q + "model::SectionDataSet,rma::criteria," + criteria)
    assert response.status_code in (200, 400)
    assert response.json()["success"] is (response.status_code == 200)
    assert ids(ok(http, Q + "model::SectionImage&num_rows=all")) == [2001, 2002, 2101, 2102]


def test_xml_errors_are_xml(http: httpx2.Client) -> None:
    response = http.get("/api/v2/data/query.xml?q=model::Nope")
    assert response.status_code == 400
    root = ET.fromstring(response.text)
    assert root.attrib["success"] == "false"
    assert "unknown or unsupported model" in (root.findtext("msg") or "")

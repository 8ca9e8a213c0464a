from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from pydantic import ValidationError

from tierserve.errors import ManifestError
from tierserve.ingest.manifest import Manifest, load_manifest, manifest_json_schema

DOCS_SCHEMA = Path(__file__).parents[2] / "docs" / "manifest.schema.json"


def write(tmp_path: Path, data: object, name: str = "m.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data) if name.endswith(".yaml") else json.dumps(data))
    return path


def image(**extra: object) -> dict[str, object]:
    return {"id": 1, "section_number": 1, "source": "a.png", **extra}


def test_yaml_and_json_manifests_load(tmp_path: Path) -> None:
    data = {"section_data_sets": [{"id": 5, "images": [image()]}]}
    for name in ("m.yaml", "m.json"):
        manifest = load_manifest(write(tmp_path, data, name))
        assert manifest.section_data_sets[0].images[0].source == "a.png"
        assert manifest.quality == 90


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"section_data_sets": [{"id": 5, "images": [image(x=1)]}]},
            "images[0] (id 1): give all of x, y, width and height",
        ),
        (
            {"section_data_sets": [{"id": 5, "images": [image(layers=[{"kind": "annotation", "source": "b"}])]}]},
            "images[0] (id 1).layers[0]: annotation layers need an atlas id",
        ),
        (
            {
                "section_data_sets": [
                    {"id": 5, "images": [image(layers=[{"kind": "expression", "source": "b", "atlas": 1}])]}
                ]
            },
            "annotation layers need an atlas id, and only they take one",
        ),
        (
            {"section_data_sets": [{"id": 5, "images": [image(), image()]}]},
            "images[1] (id 1): duplicate image id 1 (also section_data_sets[0].images[0])",
        ),
        (
            {"section_data_sets": [{"id": 5}], "atlas_data_sets": [{"id": 5}]},
            "atlas_data_sets[0] (id 5): duplicate data set id 5 (also section_data_sets[0])",
        ),
        (
            {"atlas_data_sets": [{"id": 5, "atlases": [3]}]},
            "atlas_data_sets[0] (id 5).atlases: names undeclared atlases [3]",
        ),
        (
            {
                "section_data_sets": [
                    {"id": 5, "images": [image(layers=[{"kind": "annotation", "source": "b", "atlas": 9}])]}
                ]
            },
            "images[0] (id 1).layers[0].atlas: names undeclared atlas 9",
        ),
        (
            {
                "section_data_sets": [
                    {
                        "id": 5,
                        "equalization": {
                            "red_lower": 5,
                            "red_upper": 5,
                            "green_lower": 0,
                            "green_upper": 1,
                            "blue_lower": 0,
                            "blue_upper": 1,
                        },
                    }
                ]
            },
            "section_data_sets[0] (id 5).equalization: red_lower must be below red_upper",
        ),
        ({"section_data_sets": [{"id": -5}]}, "section_data_sets[0] (id -5).id: must be greater than 0 (got -5)"),
        ({"section_data_sets": [{"id": 5, "images": [image(colour="red")]}]}, "images[0] (id 1).colour: unknown field"),
        ({"version": 2}, "\n  - version: must be 1 (got 2)"),
    ],
)
def test_invalid_manifests_name_the_problem(tmp_path: Path, data: object, message: str) -> None:
    with pytest.raises(ManifestError) as raised:
        load_manifest(write(tmp_path, data))
    assert message in raised.value.message


def problems(tmp_path: Path, data: object) -> str:
    with pytest.raises(ManifestError) as raised:
        load_manifest(write(tmp_path, data))
    return raised.value.message


def test_field_errors_and_consistency_problems_are_reported_together(tmp_path: Path) -> None:
    no_source = {"id": 1, "section_number": 2}
    message = problems(tmp_path, {"section_data_sets": [{"id": 5, "images": [image(), no_source]}]})
    assert "section_data_sets[0] (id 5).images[1] (id 1).source: required" in message
    assert "images[1] (id 1): duplicate image id 1 (also section_data_sets[0].images[0])" in message


def test_ids_are_compared_as_the_model_reads_them(tmp_path: Path) -> None:
    message = problems(tmp_path, {"section_data_sets": [{"id": 5}, {"id": "5"}]})
    assert "section_data_sets[1] (id 5): duplicate data set id 5 (also section_data_sets[0])" in message


def test_messages_are_plain_words(tmp_path: Path) -> None:
    layer = {"kind": "foo", "source": "b.png"}
    data = {"quality": 0, "section_data_sets": [{"id": 5}, {"id": 5, "images": [image(layers=[layer])]}]}
    message = problems(tmp_path, data)
    for residue in ("Value error", "(top level)", "<LayerKind", "Input should be", "Field required"):
        assert residue not in message
    assert "  - quality: must be greater than or equal to 1 (got 0)\n" in message
    kinds = "expression, projection, annotation, tumor_feature_annotation, tumor_feature_boundary"
    assert f".images[0] (id 1).layers[0].kind: must be one of {kinds} (got 'foo')\n" in message
    assert message.endswith("  - section_data_sets[1] (id 5): duplicate data set id 5 (also section_data_sets[0])")


def test_the_message_lists_every_problem_with_its_documented_location(tmp_path: Path) -> None:
    data = {
        "atlases": [{"id": 1, "name": "A"}],
        "section_data_sets": [{"id": 5, "images": [image(), image(id=13, section_number=-1), image(id=13)]}],
        "atlas_data_sets": [{"id": 6}, {"id": 7, "atlases": [1, 3], "images": [image(id=14, colour="red")]}],
    }
    path = write(tmp_path, data)
    with pytest.raises(ManifestError) as raised:
        load_manifest(path)
    assert raised.value.message == "\n".join(
        [
            f"manifest {path} is invalid (4 problems):",
            "  - section_data_sets[0] (id 5).images[1] (id 13).section_number: "
            "must be greater than or equal to 0 (got -1)",
            "  - atlas_data_sets[1] (id 7).images[0] (id 14).colour: unknown field",
            "  - atlas_data_sets[1] (id 7).atlases: names undeclared atlases [3]",
            "  - section_data_sets[0] (id 5).images[2] (id 13): "
            "duplicate image id 13 (also section_data_sets[0].images[1])",
        ]
    )


def test_a_single_problem_is_counted_as_one(tmp_path: Path) -> None:
    assert "is invalid (1 problem):\n  - version: must be 1 (got 2)" in problems(tmp_path, {"version": 2})


def test_programmatic_construction_checks_the_same_rules() -> None:
    with pytest.raises(ValidationError, match=r"images\[1\] \(id 1\): duplicate image id 1"):
        Manifest.model_validate({"section_data_sets": [{"id": 5, "images": [image(), image()]}]})


def test_unreadable_and_malformed_manifests(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="cannot read manifest"):
        load_manifest(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("section_data_sets: [unclosed")
    with pytest.raises(ManifestError, match="not valid YAML/JSON"):
        load_manifest(bad)
    bad.write_text("- a list")
    with pytest.raises(ManifestError, match="must be a mapping"):
        load_manifest(bad)


def test_published_schema_is_current_and_validates_the_demo_manifest(tmp_path: Path) -> None:
    schema = manifest_json_schema()
    assert json.loads(DOCS_SCHEMA.read_text()) == schema, "regenerate: tierserve manifest-schema > docs/..."
    jsonschema.Draft202012Validator.check_schema(schema)
    example = {
        "atlases": [{"id": 1, "name": "A"}],
        "atlas_data_sets": [
            {"id": 2, "atlases": [1], "images": [image(layers=[{"kind": "annotation", "atlas": 1, "source": "x.png"}])]}
        ],
    }
    jsonschema.validate(example, schema)

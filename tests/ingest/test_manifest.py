from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from tierserve.errors import ManifestError
from tierserve.ingest.manifest import load_manifest, manifest_json_schema

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
        ({"section_data_sets": [{"id": 5, "images": [image(x=1)]}]}, "give all of x, y, width and height"),
        (
            {"section_data_sets": [{"id": 5, "images": [image(layers=[{"kind": "annotation", "source": "b"}])]}]},
            "annotation layers need an atlas id",
        ),
        (
            {
                "section_data_sets": [
                    {"id": 5, "images": [image(layers=[{"kind": "expression", "source": "b", "atlas": 1}])]}
                ]
            },
            "annotation layers need an atlas id, and only they take one",
        ),
        ({"section_data_sets": [{"id": 5, "images": [image(), image()]}]}, "duplicate image id 1"),
        ({"section_data_sets": [{"id": 5}], "atlas_data_sets": [{"id": 5}]}, "duplicate data set id 5"),
        ({"atlas_data_sets": [{"id": 5, "atlases": [3]}]}, "names undeclared atlases [3]"),
        (
            {
                "section_data_sets": [
                    {"id": 5, "images": [image(layers=[{"kind": "annotation", "source": "b", "atlas": 9}])]}
                ]
            },
            "annotation layer names undeclared atlas 9",
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
            "red_lower must be below red_upper",
        ),
        ({"section_data_sets": [{"id": -5}]}, "section_data_sets.0.id"),
        ({"section_data_sets": [{"id": 5, "images": [image(colour="red")]}]}, "colour: Extra inputs"),
        ({"version": 2}, "version"),
    ],
)
def test_invalid_manifests_name_the_problem(tmp_path: Path, data: object, message: str) -> None:
    with pytest.raises(ManifestError) as raised:
        load_manifest(write(tmp_path, data))
    assert message in raised.value.message


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

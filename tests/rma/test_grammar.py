"""The RMA parser on every URL shape real clients send (spec section 3.1) and on malformed text."""

from __future__ import annotations

import pytest

from tierserve.rma.grammar import MAX_DEPTH, MAX_LIST_VALUES, RmaSyntaxError, parse_options, parse_path, parse_query
from tierserve.rma.tree import Filter, OrderItem, PathElement, TabularColumn, Value


def test_allensdk_section_image_query() -> None:
    (stage,) = parse_query(
        "model::SectionImage,rma::criteria,[data_set_id$eq70813257],rma::options[num_rows$eq'all'][count$eqfalse]"
    ).stages
    assert stage.model == "SectionImage"
    assert stage.criteria == (PathElement(None, (Filter("data_set_id", "eq", (Value("70813257"),), 35),), (), 34),)
    assert stage.options.num_rows == "all"


def test_allensdk_section_image_ranges() -> None:
    (stage,) = parse_query(
        "model::Equalization,rma::criteria,section_data_set(section_images[id$in126862575,297225768]),"
        "rma::options[only$eq'blue_lower,blue_upper,red_lower,red_upper,green_lower,green_upper']"
        "[num_rows$eq'all'][count$eqfalse]"
    ).stages
    (element,) = stage.criteria
    assert element.association == "section_data_set"
    (child,) = element.children
    assert child.association == "section_images"
    assert child.filters[0].operator == "in"
    assert [v.text for v in child.filters[0].values] == ["126862575", "297225768"]
    assert [name for name, _ in stage.options.only] == [
        "blue_lower",
        "blue_upper",
        "red_lower",
        "red_upper",
        "green_lower",
        "green_upper",
    ]


def test_quoted_in_list_and_unquoted_list() -> None:
    (stage,) = parse_query(
        "model::SectionDataSet,rma::criteria,[failed$in'false','true'],products[id$in10,22],"
        "rma::options[num_rows$eq'all'][count$eqfalse]"
    ).stages
    failed, products = stage.criteria
    assert failed.filters[0].values == (Value("false", quoted=True), Value("true", quoted=True))
    assert products.association == "products"
    assert [v.text for v in products.filters[0].values] == ["10", "22"]


@pytest.mark.parametrize("type_filter", ["$eq$type_name", "$eq'Atlas - Adult Mouse'"])
def test_atlas_image_query_with_pipe(type_filter: str) -> None:
    query = parse_query(
        "model::Atlas,rma::criteria,[id$eq1],rma::options[only$eqimage_type],pipe::list[type_name$is'image_type'],"
        "model::AtlasImage,rma::criteria,[annotated$eqtrue],atlas_data_set(atlases[id$eq1]),"
        f"alternate_images[image_type{type_filter}],"
        "rma::options[num_rows$eq'all'][order$eqsub_images.section_number]"
    )
    atlas, images = query.stages
    assert atlas.pipes[0].variable == "type_name" and atlas.pipes[0].field == "image_type"
    assert [e.association for e in images.criteria] == [None, "atlas_data_set", "alternate_images"]
    value = images.criteria[2].filters[0].values[0]
    if "$type_name" in type_filter:
        assert value.variable == "type_name"
    else:
        assert value == Value("Atlas - Adult Mouse", quoted=True)
    assert images.options.order == (OrderItem("sub_images.section_number", False, images.options.order[0].position),)


def test_includes_with_nesting_and_order_with_direction() -> None:
    (stage,) = parse_query(
        "model::SectionDataSet,rma::criteria,[id$eq123],rma::include,specimen(stereotaxic_injections("
        "primary_injection_structure,structures,stereotaxic_injection_coordinates)),equalization,sub_images,"
        "rma::options[order$eq'sub_images.section_number$asc']"
    ).stages
    assert [e.association for e in stage.include] == ["specimen", "equalization", "sub_images"]
    assert [c.association for c in stage.include[0].children[0].children] == [
        "primary_injection_structure",
        "structures",
        "stereotaxic_injection_coordinates",
    ]
    assert stage.options.order[0].field == "sub_images.section_number"


def test_include_with_filter() -> None:
    (stage,) = parse_query(
        "model::SectionDataSet,rma::criteria,[id$eq123],rma::include,equalization,sub_images[section_number$eq456]"
    ).stages
    assert stage.include[1].filters[0] == Filter(
        "section_number", "eq", (Value("456"),), stage.include[1].filters[0].position
    )


def test_unquoted_only_list_with_qualified_names() -> None:
    (stage,) = parse_query(
        "model::SectionDataSet,rma::criteria,[id$in123],rma::include,equalization,products,"
        "rma::options[only$eqid,failed,red_lower,red_upper,donors.id]"
    ).stages
    assert [n for n, _ in stage.options.only] == ["id", "failed", "red_lower", "red_upper", "donors.id"]


def test_atldld_shapes() -> None:
    (a,) = parse_query(
        "model::SectionImage,rma::criteria,[data_set_id$eq123],rma::include,alignment2d,"
        "rma::options[start_row$eq0][num_rows$eq25000]"
    ).stages
    assert (a.options.start_row, a.options.num_rows) == (0, 25000)
    assert a.include[0].association == "alignment2d"
    (b,) = parse_query(
        "model::SectionImage,rma::criteria,section_data_set[id$eq7],rma::include,alignment2d,"
        "rma::options[num_rows$eq2000]"
    ).stages
    assert b.criteria[0].association == "section_data_set" and b.options.num_rows == 2000
    (c,) = parse_query(
        "model::SectionDataSet,rma::criteria,[failed$eq'false'],products[abbreviation$eq'Mouse'],"
        "plane_of_section[name$eq'sagittal'],genes[acronym$eq'Pvalb']"
    ).stages
    assert [e.association for e in c.criteria] == [None, "products", "plane_of_section", "genes"]
    (nested,) = parse_path("data_set[specimen_id$eq1](genes[acronym$eqGad1])")
    assert nested.association == "data_set" and nested.children[0].filters[0].values == (Value("Gad1"),)


def test_allenbrain_legacy_forms() -> None:
    path = parse_path("products[id$eq1],genes[acronym$eq'Prox1']")
    assert [e.association for e in path] == ["products", "genes"]
    (stage,) = parse_query(
        "model::SectionImage,rma::criteria,[data_set_id$eq5],rma::options,"
        "[tabular$eq'data_sets.id as experiment_id','genes.acronym as gene_symbol'],"
        "[order$eq'genes.acronym,data_sets.id']"
    ).stages
    assert stage.options.tabular == (
        TabularColumn("data_sets.id", "experiment_id", stage.options.tabular[0].position),
        TabularColumn("genes.acronym", "gene_symbol", stage.options.tabular[1].position),
    )
    assert [o.field for o in stage.options.order] == ["genes.acronym", "data_sets.id"]


def test_gist_forms() -> None:
    (stage,) = parse_query(
        "model::AtlasImage,rma::criteria,[annotated$eqtrue],atlas_data_set(atlases[id$eq265297126]),"
        "rma::options[order$eq'sub_images.section_number'][num_rows$eqall]"
    ).stages
    assert stage.options.num_rows == "all"


@pytest.mark.parametrize(
    ("text", "field", "descending"),
    [
        ("[order$eq'name desc']", "name", True),
        ("[order$eqname asc]", "name", False),
        ("[order$eq'sub_images.section_number$desc']", "sub_images.section_number", True),
    ],
)
def test_order_directions(text: str, field: str, descending: bool) -> None:
    (item,) = parse_options(text).order
    assert (item.field, item.descending) == (field, descending)


def test_operators_and_existence() -> None:
    (element,) = parse_path("[name$li'*Mouse*'][id$ge5][id$lt9][name$il'x'][name$ne'y'][specimen_id]")
    assert [f.operator for f in element.filters] == ["li", "ge", "lt", "il", "ne", None]


@pytest.mark.parametrize(
    ("text", "message", "position"),
    [
        ("rma::criteria,[id$eq1]", "must start with model::", 0),
        ("model::SectionImage,rma::criteria,[id$eq1", "missing ']'", 41),
        ("model::SectionImage,rma::criteria,[id$xx1]", "unknown operator", 37),
        ("model::SectionImage,rma::criteria,[id$eq1]]", "unbalanced ']'", 42),
        ("model::SectionImage,rma::criteria,[i d$eq1]", "invalid field name", 35),
        ("model::SectionImage,rma::criteria,[id$eq'1]", "unterminated quote", 43),
        ("model::SectionImage,rma::frobnicate", "unsupported stage", 20),
        ("model::SectionImage,[id$eq1]", "expected rma::criteria", 20),
        ("model::Section Image", "invalid model name", 0),
        ("model::SectionImage,rma::options[num_rows$eqmany]", "expected a non-negative integer", 44),
        ("model::SectionImage,rma::options[bogus$eq1]", "unknown option 'bogus'", 33),
        ("model::SectionImage,rma::criteria,a;b", "unexpected ';'", 35),
        ("model::SectionImage,rma::criteria,,", "empty item", 34),
        ("model::SectionImage,rma::criteria,[id$eq1'; DROP TABLE x; --]", "unterminated quote", 61),
        ("model::SectionImage,rma::criteria,[id$eq1';'--]", "malformed value", 40),
    ],
)
def test_malformed_queries_point_at_the_problem(text: str, message: str, position: int) -> None:
    with pytest.raises(RmaSyntaxError) as raised:
        parse_query(text)
    assert message in raised.value.message
    assert raised.value.position == position


def test_limits() -> None:
    with pytest.raises(RmaSyntaxError, match="nesting deeper"):
        parse_path("a(" * (MAX_DEPTH + 2) + "b" + ")" * (MAX_DEPTH + 2))
    with pytest.raises(RmaSyntaxError, match="the limit is"):
        parse_path("[id$in" + ",".join(["1"] * (MAX_LIST_VALUES + 1)) + "]")
    with pytest.raises(Exception, match="characters long"):
        parse_query("model::X," + "a" * 17000)

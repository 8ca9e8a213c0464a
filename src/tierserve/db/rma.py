"""Running an RMA query tree against the database: whitelist validation, compilation to
SQLAlchemy Core with bound parameters only, paging, includes and field selection."""

from __future__ import annotations

import math
import operator
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Boolean, ColumnElement, Float, FromClause, Integer, and_, exists, func, literal, select
from sqlalchemy.orm import Session

from tierserve.db.rma_schema import MODELS, Association, ModelSpec
from tierserve.errors import InvalidRequest
from tierserve.rma.records import Included, Record
from tierserve.rma.tree import Filter, Options, PathElement, Query, Stage, Value

DEFAULT_ROWS = 50
MAX_ROWS = 100_000
_BATCH = 900
_COMPARISONS: dict[str, Callable[[Any, Any], ColumnElement[bool]]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "lt": operator.lt,
    "gt": operator.gt,
    "le": operator.le,
    "ge": operator.ge,
}
_TRUE = {"true": True, "t": True, "1": True, "false": False, "f": False, "0": False}


class RmaError(InvalidRequest):
    """A query names something outside the whitelist, or values of the wrong type."""


@dataclass(frozen=True)
class RmaResult:
    """One page of root records; `models` are the root model and every included one."""

    model: ModelSpec
    records: list[Record]
    start_row: int
    total_rows: int
    models: tuple[ModelSpec, ...]


def _model(name: str, position: int | None = None) -> ModelSpec:
    spec = MODELS.get(name)
    if spec is None:
        where = f" at position {position}" if position is not None else ""
        raise RmaError(f"unknown or unsupported model {name!r}{where}; supported: {', '.join(MODELS)}")
    return spec


def _association(model: ModelSpec, name: str, position: int) -> Association:
    association = model.associations.get(name)
    if association is None:
        supported = ", ".join(model.associations) or "none"
        raise RmaError(
            f"association {name!r} of {model.name} at position {position} is not supported (supported: {supported})"
        )
    return association


def _field(model: ModelSpec, name: str, position: int) -> str:
    table, _, column = name.rpartition(".")
    if table and table != model.table:
        raise RmaError(f"field {name!r} at position {position} is not a field of {model.name} (table {model.table})")
    if column not in model.fields:
        raise RmaError(f"{model.name} has no field {column!r} (at position {position})")
    return column


class _Compiler:
    """Compiles paths of one query; `variables` holds the values collected by earlier pipes."""

    def __init__(self, variables: dict[str, list[Any]]) -> None:
        self.variables = variables

    def conditions(
        self, model: ModelSpec, source: FromClause, path: Sequence[PathElement]
    ) -> list[ColumnElement[bool]]:
        conditions: list[ColumnElement[bool]] = []
        for element in path:
            if element.association is None:
                conditions += self.filters(model, source, element.filters)
                conditions += self.conditions(model, source, element.children)
                continue
            association = _association(model, element.association, element.position)
            target = _model(association.target)
            child, restrictions = target.alias()
            inner = [
                _join(association, source, child),
                *restrictions,
                *self.filters(target, child, element.filters),
                *self.conditions(target, child, element.children),
            ]
            conditions.append(exists(select(literal(1)).select_from(child).where(*inner)))
        return conditions

    def filters(self, model: ModelSpec, source: FromClause, filters: Iterable[Filter]) -> list[ColumnElement[bool]]:
        return [self.filter(model, source, f) for f in filters]

    def filter(self, model: ModelSpec, source: FromClause, f: Filter) -> ColumnElement[bool]:
        column = source.c[_field(model, f.field, f.position)]
        if f.operator is None:
            return column.is_not(None)
        if any(v.variable for v in f.values):
            if f.operator != "eq" or len(f.values) != 1:
                raise RmaError(f"pipe variables are used as $eq$name (at position {f.position})")
            return column.in_(self.variable(f.values[0], f.position))
        values = [_convert(column, v, f) for v in f.values]
        if f.operator == "in":
            return column.in_(values)
        if f.operator in ("li", "il"):
            pattern = _pattern(values[0], f)
            return column.like(pattern, escape="\\") if f.operator == "li" else column.ilike(pattern, escape="\\")
        if values[0] is None and f.operator in ("eq", "ne"):
            return column.is_(None) if f.operator == "eq" else column.is_not(None)
        return _COMPARISONS[f.operator](column, values[0])

    def variable(self, value: Value, position: int) -> list[Any]:
        assert value.variable is not None
        if value.variable not in self.variables:
            raise RmaError(f"variable ${value.variable} at position {position} is not set by an earlier pipe::list")
        return self.variables[value.variable]


def _join(association: Association, parent: FromClause, child: FromClause) -> ColumnElement[bool]:
    if association.link is None:
        return child.c[association.child_key] == parent.c[association.parent_key]
    link, parent_side, child_side = association.link
    row = link.alias()
    return exists(
        select(literal(1))
        .select_from(row)
        .where(
            row.c[parent_side] == parent.c[association.parent_key], row.c[child_side] == child.c[association.child_key]
        )
    )


def _convert(column: ColumnElement[Any], value: Value, f: Filter) -> Any:
    text = value.text
    if not value.quoted and text.lower() == "null":
        return None
    kind = column.type
    try:
        if isinstance(kind, Boolean):
            return _TRUE[text.lower()]
        if isinstance(kind, Integer):
            number = int(text)
            if abs(number) >= 2**63:
                raise ValueError(text)
            return number
        if isinstance(kind, Float):
            real = float(text)
            if not math.isfinite(real):
                raise ValueError(text)
            return real
    except (KeyError, ValueError):
        expected = "true or false" if isinstance(kind, Boolean) else "a number"
        raise RmaError(f"{f.field} takes {expected}, got {text!r} (at position {f.position})") from None
    return text


def _pattern(value: Any, f: Filter) -> str:
    if not isinstance(value, str):
        raise RmaError(f"$li and $il need a text field (at position {f.position})")
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%")


def _rows(options: Options, final: bool) -> tuple[int, int | None]:
    start = options.start_row or 0
    count = options.num_rows if options.num_rows is not None else (DEFAULT_ROWS if final else "all")
    if count == "all":
        return start, None
    if count > MAX_ROWS:
        raise RmaError(f"num_rows={count} exceeds the limit of {MAX_ROWS}; page with start_row")
    return start, count


def _run_stage(session: Session, stage: Stage, variables: dict[str, list[Any]], final: bool) -> RmaResult:
    model = _model(stage.model, stage.position)
    source, restrictions = model.alias()
    compiler = _Compiler(variables)
    where = and_(*restrictions, *compiler.conditions(model, source, stage.criteria))
    total = session.scalar(select(func.count()).select_from(source).where(where)) or 0
    start, count = _rows(stage.options, final)
    order = [
        source.c[_field(model, item.field, item.position)].desc()
        if item.descending
        else source.c[_field(model, item.field, item.position)].asc()
        for item in stage.options.order
    ]
    statement = select(*(source.c[name] for name in model.fields)).where(where)
    statement = statement.order_by(*order, source.c.id).offset(start).limit(count)
    records = [dict(row._mapping) for row in session.execute(statement)]
    _include(session, compiler, model, records, stage.include)
    return RmaResult(model, records, start, total, (model, *_included_models(model, stage.include)))


def _included_models(model: ModelSpec, path: Sequence[PathElement]) -> list[ModelSpec]:
    found: list[ModelSpec] = []
    for element in path:
        if element.association is not None:
            target = _model(_association(model, element.association, element.position).target)
            found += [target, *_included_models(target, element.children)]
    return found


def _include(
    session: Session, compiler: _Compiler, model: ModelSpec, records: list[Record], path: Sequence[PathElement]
) -> None:
    """Attach included associations to `records`, one batched query per association and level."""
    for element in path:
        if element.association is None:
            raise RmaError(f"an include names an association (at position {element.position})")
        association = _association(model, element.association, element.position)
        target = _model(association.target)
        keys = sorted({r[association.parent_key] for r in records if r[association.parent_key] is not None})
        children = _children(session, compiler, association, target, element, keys)
        _include(session, compiler, target, [c for group in children.values() for c in group], element.children)
        for record in records:
            group = children.get(record[association.parent_key], [])
            value: Record | list[Record] | None = group if association.many else (group[0] if group else None)
            record[element.association] = Included(target.element, target.table, association.many, value)


def _children(
    session: Session,
    compiler: _Compiler,
    association: Association,
    target: ModelSpec,
    element: PathElement,
    keys: list[Any],
) -> dict[Any, list[Record]]:
    child, restrictions = target.alias()
    columns = [child.c[name] for name in target.fields]
    order = [child.c.section_number] if "section_number" in target.fields else []
    grouped: dict[Any, list[Record]] = defaultdict(list)
    for batch in (keys[i : i + _BATCH] for i in range(0, len(keys), _BATCH)):
        if association.link is None:
            parent = child.c[association.child_key]
            statement = select(*columns, parent.label("_parent")).where(parent.in_(batch))
        else:
            link, parent_side, child_side = association.link
            pairs = link.alias()
            statement = (
                select(*columns, pairs.c[parent_side].label("_parent"))
                .select_from(child.join(pairs, pairs.c[child_side] == child.c[association.child_key]))
                .where(pairs.c[parent_side].in_(batch))
            )
        statement = statement.where(*restrictions, *compiler.filters(target, child, element.filters))
        for row in session.execute(statement.order_by(*order, child.c.id)):
            record = dict(row._mapping)
            grouped[record.pop("_parent")].append(record)
    return grouped


def execute(session: Session, query: Query) -> RmaResult:
    """Run every stage; pipes feed later stages; the last stage's page is the result."""
    variables: dict[str, list[Any]] = {}
    result: RmaResult | None = None
    for index, stage in enumerate(query.stages):
        final = index == len(query.stages) - 1
        result = _run_stage(session, stage, variables, final)
        for pipe in stage.pipes:
            column = _field(result.model, pipe.field, pipe.position)
            variables[pipe.variable] = list(dict.fromkeys(r[column] for r in result.records))
    assert result is not None
    return result


def project(result: RmaResult, options: Options) -> list[Record]:
    """Apply ``only``/``except``: unqualified names select that field in every record type,
    ``table.field`` only in records of that table. Included associations are always kept."""
    if not options.only and not options.exclude:
        return result.records
    only = _selection(options.only, result.models)
    exclude = _selection(options.exclude, result.models)

    def keep(table: str, key: str) -> bool:
        if only is not None and (table, key) not in only:
            return False
        return exclude is None or (table, key) not in exclude

    def visit(table: str, record: Record) -> Record:
        kept: Record = {}
        for key, value in record.items():
            if isinstance(value, Included):
                kept[key] = _map_included(value, visit)
            elif keep(table, key):
                kept[key] = value
        return kept

    return [visit(result.model.table, record) for record in result.records]


def _map_included(included: Included, visit: Callable[[str, Record], Record]) -> Included:
    value = included.value
    if isinstance(value, list):
        mapped: Record | list[Record] | None = [visit(included.table, r) for r in value]
    else:
        mapped = None if value is None else visit(included.table, value)
    return Included(included.element, included.table, included.many, mapped)


def _selection(names: Sequence[tuple[str, int]], models: Sequence[ModelSpec]) -> set[tuple[str, str]] | None:
    if not names:
        return None
    selected: set[tuple[str, str]] = set()
    for name, position in names:
        table, _, column = name.rpartition(".")
        matching = [m for m in models if (not table or m.table == table) and column in m.fields]
        if not matching:
            raise RmaError(f"{name!r} in only/except (at position {position}) is not a field of the response")
        selected |= {(m.table, column) for m in matching}
    return selected


def tabulate(result: RmaResult, options: Options) -> tuple[list[str], list[list[Any]]] | None:
    """Columns ``table.field as alias`` of the root model (the ``tabular`` option), or None."""
    if not options.tabular:
        return None
    fields = [_field(result.model, column.field, column.position) for column in options.tabular]
    header = [column.alias for column in options.tabular]
    return header, [[record[name] for name in fields] for record in result.records]

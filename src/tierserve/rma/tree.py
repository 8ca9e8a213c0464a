"""The typed query tree an RMA query string parses into. Positions are 0-based offsets into the
decoded query text, so that errors can point at the offending place."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Operator = Literal["eq", "ne", "lt", "gt", "le", "ge", "in", "li", "il"]
OPERATORS: tuple[Operator, ...] = ("eq", "ne", "lt", "gt", "le", "ge", "in", "li", "il")


@dataclass(frozen=True, slots=True)
class Value:
    """A literal (quoted or not) or, with `variable`, a reference to a pipe variable (``$eq$name``)."""

    text: str
    quoted: bool = False
    variable: str | None = None


@dataclass(frozen=True, slots=True)
class Filter:
    """``[field$op value]``; with no operator (``[field]``) a test that the field is not null."""

    field: str
    operator: Operator | None
    values: tuple[Value, ...]
    position: int


@dataclass(frozen=True, slots=True)
class PathElement:
    """A step of a criteria or include path: an association (None = the current model), its
    filters, and nested elements in parentheses."""

    association: str | None
    filters: tuple[Filter, ...]
    children: tuple[PathElement, ...]
    position: int


@dataclass(frozen=True, slots=True)
class OrderItem:
    field: str
    descending: bool
    position: int


@dataclass(frozen=True, slots=True)
class TabularColumn:
    field: str
    alias: str
    position: int


@dataclass(frozen=True, slots=True)
class Options:
    """``rma::options``; None means "not given" so URL parameters and defaults can fill in."""

    num_rows: int | Literal["all"] | None = None
    start_row: int | None = None
    order: tuple[OrderItem, ...] = ()
    only: tuple[tuple[str, int], ...] = ()
    exclude: tuple[tuple[str, int], ...] = ()
    tabular: tuple[TabularColumn, ...] = ()


@dataclass(frozen=True, slots=True)
class Pipe:
    """``pipe::list[variable$is'field']``: collect `field` of the previous stage's rows."""

    variable: str
    field: str
    position: int


@dataclass(frozen=True, slots=True)
class Stage:
    """``model::X`` with its criteria, includes, options, and the pipes that follow it."""

    model: str
    position: int
    criteria: tuple[PathElement, ...] = ()
    include: tuple[PathElement, ...] = ()
    options: Options = field(default_factory=Options)
    pipes: tuple[Pipe, ...] = ()


@dataclass(frozen=True, slots=True)
class Query:
    """Stages run in order; the last one is the answer."""

    stages: tuple[Stage, ...]

"""Parsing RMA text (``model::X,rma::criteria,...``) into a `Query` tree.

The text is split on top-level commas (commas inside ``[...]``, ``(...)`` and quotes belong to
their item); ``model::``, ``rma::criteria``, ``rma::include``, ``rma::options`` and ``pipe::list``
items start stages and sections, the items after them are path elements or option groups.
Errors raise `RmaSyntaxError` with the position of the offending character.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Literal

from tierserve.errors import InvalidRequest
from tierserve.rma.tree import (
    OPERATORS,
    Filter,
    Operator,
    Options,
    OrderItem,
    PathElement,
    Pipe,
    Query,
    Stage,
    TabularColumn,
    Value,
)

MAX_QUERY_LENGTH = 16384
MAX_DEPTH = 8
MAX_LIST_VALUES = 2000
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")
_OPTION_NAMES = frozenset({"num_rows", "start_row", "count", "only", "except", "order", "tabular", "debug"})


_Section = Literal["criteria", "include", "options"] | None


class RmaSyntaxError(InvalidRequest):
    """Malformed RMA text; the message quotes the position and its surroundings."""

    def __init__(self, message: str, text: str, position: int) -> None:
        near = text[max(0, position - 15) : position + 15]
        super().__init__(f"{message} at position {position} (near {near!r})")
        self.position = position


def split_top_level(text: str, start: int, end: int, base: str) -> list[tuple[str, int]]:
    """Split `text[start:end]` on commas outside brackets, parentheses and quotes, with offsets."""
    items: list[tuple[str, int]] = []
    depth: list[str] = []
    quote: str | None = None
    item_start = start
    closing = {"[": "]", "(": ")"}
    for i in range(start, end):
        ch = text[i]
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch in closing:
            depth.append(closing[ch])
            if len(depth) > MAX_DEPTH * 2:
                raise RmaSyntaxError(f"nesting deeper than {MAX_DEPTH} levels", base, i)
        elif ch in ")]":
            if not depth or depth.pop() != ch:
                raise RmaSyntaxError(f"unbalanced {ch!r}", base, i)
        elif ch == "," and not depth:
            items.append((text[item_start:i], item_start))
            item_start = i + 1
    if quote:
        raise RmaSyntaxError("unterminated quote", base, end)
    if depth:
        raise RmaSyntaxError(f"missing {depth[-1]!r}", base, end)
    items.append((text[item_start:end], item_start))
    return items


class _Parser:
    def __init__(self, text: str) -> None:
        if len(text) > MAX_QUERY_LENGTH:
            raise InvalidRequest(f"query is {len(text)} characters long; the limit is {MAX_QUERY_LENGTH}")
        self.text = text

    def error(self, message: str, position: int) -> RmaSyntaxError:
        return RmaSyntaxError(message, self.text, position)

    # stages -----------------------------------------------------------------------------------
    def query(self) -> Query:
        stages: list[Stage] = []
        section: _Section = None
        for item, pos in split_top_level(self.text, 0, len(self.text), self.text):
            stripped = item.strip()
            pos += len(item) - len(item.lstrip())
            if not stripped:
                raise self.error("empty item", pos)
            if stripped.startswith("model::"):
                name = stripped[len("model::") :]
                if not _NAME.fullmatch(name):
                    raise self.error(f"invalid model name {name!r}", pos)
                stages.append(Stage(model=name, position=pos))
                section = None
                continue
            if not stages:
                raise self.error("the query must start with model::<Model>", pos)
            stages[-1], section = self.stage_item(stages[-1], section, stripped, pos)
        if not stages:
            raise self.error("the query is empty", 0)
        return Query(tuple(stages))

    def stage_item(self, stage: Stage, section: _Section, item: str, pos: int) -> tuple[Stage, _Section]:
        """Add one item after ``model::X`` to its stage; returns the stage and the current section."""
        if item in ("rma::criteria", "rma::include"):
            return stage, "criteria" if item == "rma::criteria" else "include"
        if item.startswith("rma::options"):
            rest = item[len("rma::options") :]
            return replace(stage, options=self.options(rest, pos + len("rma::options"), stage.options)), "options"
        if item.startswith("pipe::list"):
            pipe = self.pipe(item[len("pipe::list") :], pos + len("pipe::list"))
            return replace(stage, pipes=(*stage.pipes, pipe)), None
        if item.startswith(("rma::", "pipe::")):
            raise self.error(f"unsupported stage {item.split('[')[0]!r}", pos)
        if section == "criteria":
            return replace(stage, criteria=(*stage.criteria, self.element(item, pos, 0))), section
        if section == "include":
            return replace(stage, include=(*stage.include, self.element(item, pos, 0))), section
        if section == "options":
            return replace(stage, options=self.options(item, pos, stage.options)), section
        raise self.error("expected rma::criteria, rma::include, rma::options or pipe::list", pos)

    # paths ------------------------------------------------------------------------------------
    def path(self, text: str, offset: int, depth: int) -> tuple[PathElement, ...]:
        """A comma-separated list of path elements (a whole criteria/include parameter)."""
        items = split_top_level(text, 0, len(text), text)
        return tuple(self.element(item.strip(), offset + pos, depth) for item, pos in items if item.strip())

    def element(self, text: str, offset: int, depth: int) -> PathElement:
        if depth > MAX_DEPTH:
            raise self.error(f"nesting deeper than {MAX_DEPTH} levels", offset)
        match = _NAME.match(text)
        association = match.group(0) if match else None
        i = match.end() if match else 0
        filters: list[Filter] = []
        children: tuple[PathElement, ...] = ()
        while i < len(text):
            if text[i] == "[":
                close = _closing(text, i, "[", "]")
                filters.append(self.filter(text[i + 1 : close], offset + i + 1))
                i = close + 1
            elif text[i] == "(" and not children:
                close = _closing(text, i, "(", ")")
                inner = split_top_level(text, i + 1, close, text)
                children = tuple(
                    self.element(item.strip(), offset + pos + len(item) - len(item.lstrip()), depth + 1)
                    for item, pos in inner
                    if item.strip()
                )
                i = close + 1
            else:
                raise self.error(f"unexpected {text[i]!r}", offset + i)
        if association is None and not filters:
            raise self.error("expected an association name or a [filter]", offset)
        return PathElement(association, tuple(filters), children, offset)

    def filter(self, text: str, offset: int) -> Filter:
        field, dollar, rest = text.partition("$")
        field = field.strip()
        if not _FIELD.fullmatch(field):
            raise self.error(f"invalid field name {field!r}", offset)
        if not dollar:
            return Filter(field, None, (), offset)
        op_text = rest[:2]
        if op_text not in OPERATORS:
            raise self.error(f"unknown operator ${rest[:2]!r}; use one of {', '.join(OPERATORS)}", offset + len(field))
        operator: Operator = op_text
        raw = rest[2:]
        value_offset = offset + len(field) + 3
        values = self.values(raw, value_offset) if operator == "in" else (self.value(raw, value_offset),)
        return Filter(field, operator, values, offset)

    def values(self, raw: str, offset: int) -> tuple[Value, ...]:
        items = split_top_level(raw, 0, len(raw), raw)
        if len(items) > MAX_LIST_VALUES:
            raise self.error(f"list of {len(items)} values; the limit is {MAX_LIST_VALUES}", offset)
        return tuple(self.value(item, offset + pos) for item, pos in items)

    def value(self, raw: str, offset: int) -> Value:
        raw = raw.strip()
        if raw.startswith("$"):
            if not _NAME.fullmatch(raw[1:]):
                raise self.error(f"invalid variable {raw!r}", offset)
            return Value(raw[1:], variable=raw[1:])
        if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
            return Value(raw[1:-1], quoted=True)
        if any(ch in raw for ch in "'\"[]()"):
            raise self.error(f"malformed value {raw!r}", offset)
        return Value(raw)

    # options and pipes ------------------------------------------------------------------------
    def options(self, text: str, offset: int, options: Options) -> Options:
        i = 0
        while i < len(text):
            if text[i] != "[":
                raise self.error("expected [option$eqvalue]", offset + i)
            close = _closing(text, i, "[", "]")
            options = self.option(text[i + 1 : close], offset + i + 1, options)
            i = close + 1
        return options

    def option(self, text: str, offset: int, options: Options) -> Options:
        name, _, rest = text.partition("$")
        if name not in _OPTION_NAMES:
            raise self.error(f"unknown option {name!r}; supported: {', '.join(sorted(_OPTION_NAMES))}", offset)
        if not rest.startswith("eq"):
            raise self.error(f"option {name} takes $eq", offset + len(name))
        raw, at = rest[2:], offset + len(name) + 3
        words = [(w, p) for v, p in split_top_level(raw, 0, len(raw), raw) for w, p in _words(v, at + p)]
        if name == "num_rows":
            value = raw.strip().strip("'\"")
            return replace(options, num_rows="all" if value == "all" else self.row_count(raw, at))
        if name == "start_row":
            return replace(options, start_row=self.row_count(raw, at))
        if name == "only":
            return replace(options, only=options.only + tuple(words))
        if name == "except":
            return replace(options, exclude=options.exclude + tuple(words))
        if name == "order":
            return replace(options, order=options.order + tuple(self.order_item(w, p) for w, p in words))
        if name == "tabular":
            return replace(options, tabular=options.tabular + tuple(self.tabular(w, p) for w, p in words))
        return options  # count, debug: accepted and ignored

    def row_count(self, raw: str, offset: int) -> int:
        value = raw.strip().strip("'\"")
        if not value.isdigit() or len(value) > 9:
            raise self.error(f"expected a non-negative integer (or 'all' for num_rows), got {raw!r}", offset)
        return int(value)

    def order_item(self, word: str, offset: int) -> OrderItem:
        field, descending = word, False
        for separator in ("$", " "):
            head, sep, direction = word.rpartition(separator)
            if sep and direction.lower() in ("asc", "desc"):
                field, descending = head.strip(), direction.lower() == "desc"
                break
        if not _FIELD.fullmatch(field):
            raise self.error(f"invalid order field {field!r}", offset)
        return OrderItem(field, descending, offset)

    def tabular(self, word: str, offset: int) -> TabularColumn:
        parts = word.split()
        if len(parts) == 3 and parts[1].lower() == "as" and _FIELD.fullmatch(parts[0]) and _NAME.fullmatch(parts[2]):
            return TabularColumn(parts[0], parts[2], offset)
        if len(parts) == 1 and _FIELD.fullmatch(parts[0]):
            return TabularColumn(parts[0], parts[0].rsplit(".", 1)[-1], offset)
        raise self.error(f"invalid tabular column {word!r}; use 'table.field as name'", offset)

    def pipe(self, text: str, offset: int) -> Pipe:
        if not (text.startswith("[") and text.endswith("]")):
            raise self.error("expected pipe::list[variable$is'field']", offset)
        variable, sep, rest = text[1:-1].partition("$is")
        value = rest.strip().strip("'\"")
        if not sep or not _NAME.fullmatch(variable) or not _FIELD.fullmatch(value):
            raise self.error("expected pipe::list[variable$is'field']", offset)
        return Pipe(variable, value, offset)


def _closing(text: str, start: int, opening: str, closing: str) -> int:
    """Index of the bracket closing the one at `start` (brackets in quotes do not count)."""
    depth = 0
    quote: str | None = None
    for i in range(start, len(text)):
        ch = text[i]
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == opening:
            depth += 1
        elif ch == closing:
            depth -= 1
            if depth == 0:
                return i
    raise RmaSyntaxError(f"missing {closing!r}", text, len(text))


def _words(value: str, offset: int) -> list[tuple[str, int]]:
    """The comma-separated words of one option value, quotes removed (``'a,b'`` gives a and b)."""
    stripped = value.strip()
    if len(stripped) >= 2 and stripped[0] == stripped[-1] and stripped[0] in "'\"":
        stripped = stripped[1:-1]
        offset += 1
    words: list[tuple[str, int]] = []
    position = offset
    for word in stripped.split(","):
        if word.strip():
            words.append((word.strip(), position))
        position += len(word) + 1
    return words


def parse_query(text: str) -> Query:
    """Parse a ``q``/``criteria`` text that starts with ``model::``."""
    return _Parser(text).query()


def parse_path(text: str) -> tuple[PathElement, ...]:
    """Parse a bare path (the ``criteria`` or ``include`` URL parameter of ``/data/{Model}/query``)."""
    parser = _Parser(text)
    return parser.path(text, 0, 0)


def parse_options(text: str) -> Options:
    """Parse option groups ``[name$eqvalue]...`` (used for URL parameters given separately)."""
    parser = _Parser(text)
    return parser.options(text, 0, Options())

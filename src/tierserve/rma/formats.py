"""Writing data query results as the Allen API's JSON envelope, XML document, or CSV table."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal
from xml.etree import ElementTree as ET

from tierserve.rma.records import Included, Record

Format = Literal["json", "xml", "csv"]
MEDIA_TYPES: dict[Format, str] = {"json": "application/json", "xml": "application/xml", "csv": "text/csv"}


@dataclass(frozen=True, slots=True)
class Page:
    """What a response carries: root records of one model (`fields`: its columns, for an empty CSV),
    their paging, and optional tabular columns."""

    element: str
    collection: str
    fields: tuple[str, ...]
    records: list[Record]
    start_row: int
    total_rows: int
    table: tuple[list[str], list[list[Any]]] | None = None


def format_page(page: Page, fmt: Format) -> str:
    """The body of a data API answer: `page` as JSON, XML or CSV."""
    if fmt == "json":
        return _json(page)
    if fmt == "xml":
        return _xml(page)
    return _csv(page)


def format_error(message: str, fmt: Format) -> str:
    """The failure envelope: ``success: false`` and the message."""
    if fmt == "xml":
        root = _response_element(success=False, start_row=0, num_rows=0, total_rows=0)
        ET.SubElement(root, "msg").text = message
        return _document(root)
    if fmt == "csv":
        return _csv_text([["success", "msg"], ["false", message]])
    return json.dumps({"success": False, "id": 0, "start_row": 0, "num_rows": 0, "total_rows": 0, "msg": message})


def _plain(value: Any) -> Any:
    if isinstance(value, Included):
        if isinstance(value.value, list):
            return [_plain_record(r) for r in value.value]
        return None if value.value is None else _plain_record(value.value)
    return value


def _plain_record(record: Record) -> Record:
    return {key: _plain(value) for key, value in record.items()}


def _rows(page: Page) -> list[Any]:
    if page.table is not None:
        header, rows = page.table
        return [dict(zip(header, row, strict=True)) for row in rows]
    return [_plain_record(r) for r in page.records]


def _json(page: Page) -> str:
    rows = _rows(page)
    envelope = {
        "success": True,
        "id": 0,
        "start_row": page.start_row,
        "num_rows": len(rows),
        "total_rows": page.total_rows,
        "msg": rows,
    }
    return json.dumps(envelope)


def _response_element(success: bool, start_row: int, num_rows: int, total_rows: int) -> ET.Element:
    return ET.Element(
        "Response",
        {
            "success": "true" if success else "false",
            "id": "0",
            "start_row": str(start_row),
            "num_rows": str(num_rows),
            "total_rows": str(total_rows),
        },
    )


def _document(root: ET.Element) -> str:
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")


def _xml(page: Page) -> str:
    count = len(page.table[1]) if page.table is not None else len(page.records)
    root = _response_element(True, page.start_row, count, page.total_rows)
    collection = ET.SubElement(root, page.collection)
    if page.table is not None:
        header, rows = page.table
        for row in rows:
            _fields(ET.SubElement(collection, page.element), dict(zip(header, row, strict=True)), typed=False)
    else:
        for record in page.records:
            _fields(ET.SubElement(collection, page.element), record, typed=False)
    return _document(root)


def _fields(parent: ET.Element, record: Record, typed: bool) -> None:
    """Fields as child elements; nested (included) records carry type attributes, as Allen's do."""
    for key, value in record.items():
        name = key.replace("_", "-")
        if isinstance(value, Included):
            holder = ET.SubElement(parent, name)
            if isinstance(value.value, list):
                for item in value.value:
                    _fields(ET.SubElement(holder, value.element), item, typed=True)
            elif value.value is None:
                holder.set("nil", "true")
            else:
                _fields(holder, value.value, typed=True)
            continue
        element = ET.SubElement(parent, name)
        if value is None:
            element.set("nil", "true")
            continue
        if typed:
            kind = _xml_type(value)
            if kind:
                element.set("type", kind)
        element.text = _text(value)


def _xml_type(value: Any) -> str | None:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    return None


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _csv(page: Page) -> str:
    if page.table is not None:
        header, rows = page.table
        return _csv_text([header, *([_cell(v) for v in row] for row in rows)])
    first = page.records[0] if page.records else dict.fromkeys(page.fields)
    scalar = [key for key, value in first.items() if not isinstance(value, Included)]
    return _csv_text([scalar, *([_cell(record[key]) for key in scalar] for record in page.records)])


def _cell(value: Any) -> str:
    return "" if value is None else _text(value)


def _csv_text(rows: Sequence[Sequence[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerows(rows)
    return buffer.getvalue()

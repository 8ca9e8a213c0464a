"""Result records of a data query: plain dicts of field values, with included associations."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Record = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Included:
    """The records of an association inside a parent record: one record or None (has-one), or a list.

    `element` names one record in XML (e.g. 'section-image'); `table` is the records' table, which
    table-qualified ``only``/``except`` names refer to.
    """

    element: str
    table: str
    many: bool
    value: Record | list[Record] | None

"""The lean routes' query string parsing (`api.asgi.query_items`) against the standard library's."""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tierserve.api.asgi import query_items
from tierserve.errors import InvalidRequest

#: Bytes a query string is made of, separators, escapes and non-ASCII bytes included.
_QUERY_BYTES = st.lists(st.sampled_from([b"a", b"Z", b"0", b"=", b"&", b";", b"%", b"+", b"2", b"C", b"\xc3", b"\xa9"]))


@given(_QUERY_BYTES)
def test_query_items_is_parse_qsl(parts: list[bytes]) -> None:
    raw = b"".join(parts)
    text = raw.decode("latin-1")
    try:
        expected = parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        with pytest.raises(InvalidRequest, match="not valid UTF-8"):
            query_items(raw)
    else:
        assert query_items(raw) == expected


@pytest.mark.parametrize(
    ("raw", "items"),
    [
        (b"downsample=4&quality=75", [("downsample", "4"), ("quality", "75")]),
        (b"a&&b=&=c", [("a", ""), ("b", ""), ("", "c")]),
        (b"range=0,4095,0,4095,0,4095", [("range", "0,4095,0,4095,0,4095")]),
        (b"name=a+b%2Cc", [("name", "a b,c")]),
        (b"x=%C3%A9", [("x", "\u00e9")]),
        (b"", []),
    ],
)
def test_query_items(raw: bytes, items: list[tuple[str, str]]) -> None:
    assert query_items(raw) == items


def test_escape_of_invalid_utf8_is_a_bad_request() -> None:
    with pytest.raises(InvalidRequest, match="not valid UTF-8"):
        query_items(b"x=%FF")

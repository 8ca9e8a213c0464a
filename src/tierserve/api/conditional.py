"""Conditional GET (RFC 9110 section 13.1.2): does an If-None-Match header match an entity tag?"""

from __future__ import annotations


def none_match(header: str | None, etag: str) -> bool:
    """True when `header` (If-None-Match) names `etag` or is `*`, so the answer is 304 Not Modified.

    If-None-Match uses the weak comparison: `W/"x"` matches `"x"`. A list is comma-separated; entity
    tags cannot contain commas or spaces in the tags tierserve makes, so splitting on commas is exact
    for them, and anything malformed simply does not match.
    """
    if header is None:
        return False
    wanted = etag.removeprefix("W/")
    for candidate in header.split(","):
        tag = candidate.strip()
        if tag == "*" or tag.removeprefix("W/") == wanted:
            return True
    return False

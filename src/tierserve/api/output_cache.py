"""A worker's cache of small encoded answers, keyed by their entity tag, bounded in bytes.

A viewer asks for the same tiles again and again: the coarse tiles of a section's home view for every
visitor, the tiles around a position for every pan back. An entity tag names the exact bytes of an
answer (`downloads.entity_tag`: the planned job, the stored file's recorded version, the tierserve
version), so an answer found under its tag is the answer. Only the event loop uses the cache (the
answers rendered there), so it takes no lock. The least recently used answers leave first. Hits and
misses are in `/healthz` (this worker's) and in the metrics (every worker's).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from tierserve.metrics import OUTPUT_CACHE_HITS, OUTPUT_CACHE_MISSES


@dataclass
class CacheStats:
    """Hits and misses since the worker started, and what the cache holds now."""

    hits: int = 0
    misses: int = 0
    entries: int = 0
    bytes: int = 0

    @property
    def hit_rate(self) -> float:
        looked_up = self.hits + self.misses
        return self.hits / looked_up if looked_up else 0.0


class OutputCache:
    """Encoded answers by entity tag, at most `capacity` bytes of them (0: nothing is kept)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._answers: OrderedDict[str, bytes] = OrderedDict()
        self.stats = CacheStats()

    def peek(self, etag: str) -> bytes | None:
        """The answer kept under `etag`, if any, without counting a lookup or making it recent."""
        return self._answers.get(etag)

    def count(self, etag: str, hit: bool) -> None:
        """Count one lookup of `etag` (a request's, however many peeks it took); a hit makes its answer
        the most recently used."""
        if hit:
            self._answers.move_to_end(etag)
            self.stats.hits += 1
            OUTPUT_CACHE_HITS.inc()
        else:
            self.stats.misses += 1
            OUTPUT_CACHE_MISSES.inc()

    def put(self, etag: str, answer: bytes) -> None:
        """Keep `answer`, dropping the least recently used ones to make room; one larger than a
        sixteenth of the capacity is not kept (it would push out many small ones)."""
        if len(answer) > self.capacity // 16 or etag in self._answers:
            return
        self._answers[etag] = answer
        self.stats.bytes += len(answer)
        while self.stats.bytes > self.capacity:
            _, dropped = self._answers.popitem(last=False)
            self.stats.bytes -= len(dropped)
        self.stats.entries = len(self._answers)

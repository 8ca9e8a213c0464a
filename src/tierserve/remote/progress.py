"""Progress of a transfer from a source (mirror, download): images, regions and bytes.

On a terminal, Rich bars for images and regions with the bytes received and the retries so far; off a
terminal, one line per finished image and a line of totals at most every `LINE_SECONDS`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from tierserve.remote.source import SourceStats

#: Off a terminal, seconds between lines of totals.
LINE_SECONDS = 10.0


class TransferProgress:
    """Counts images and regions done out of their totals; reads bytes and retries from `stats`."""

    def __init__(self, console: Console, stats: SourceStats, progress: Progress | None) -> None:
        self.console = console
        self.stats = stats
        self.progress = progress
        self.images_done = 0
        self.images_total = 0
        self.regions_done = 0
        self.regions_total = 0
        self._last_line = time.monotonic()
        self._images: TaskID | None = None
        self._regions: TaskID | None = None
        if progress is not None:
            self._images = progress.add_task("images", total=0)
            self._regions = progress.add_task("regions", total=0)

    def add_images(self, count: int) -> None:
        self.images_total += count
        self._update()

    def add_regions(self, count: int) -> None:
        self.regions_total += count
        self._update()

    def region_done(self, count: int = 1) -> None:
        self.regions_done += count
        self._update()
        if self.progress is None and time.monotonic() - self._last_line >= LINE_SECONDS:
            self._last_line = time.monotonic()
            self._line(f"  {self.summary()}")

    def image_done(self, name: str, outcome: str) -> None:
        """An image finished: `outcome` is a word such as "fetched", "already present", "failed"."""
        self.images_done += 1
        self._update()
        if self.progress is None:
            self._line(f"{outcome} {self.images_done}/{self.images_total}: {name}")
        elif outcome not in ("fetched", "mirrored", "downloaded"):
            self.progress.console.print(f"{escape(name)}: {escape(outcome)}", highlight=False)

    def summary(self) -> str:
        """Totals so far, in one line."""
        return (
            f"images {self.images_done}/{self.images_total}, regions {self.regions_done}/{self.regions_total}, "
            f"{_megabytes(self.stats.bytes)} received in {self.stats.requests} requests "
            f"({self.stats.retries} retried)"
        )

    def _update(self) -> None:
        if self.progress is None or self._images is None or self._regions is None:
            return
        self.progress.update(self._images, total=self.images_total, completed=self.images_done)
        self.progress.update(
            self._regions,
            total=self.regions_total,
            completed=self.regions_done,
            description=f"regions ({_megabytes(self.stats.bytes)}, {self.stats.retries} retries)",
        )

    def _line(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False, soft_wrap=True)


def _megabytes(count: int) -> str:
    return f"{count / 1e6:.1f} MB"


@contextmanager
def transfer_progress(console: Console, stats: SourceStats) -> Iterator[TransferProgress]:
    """A TransferProgress drawing Rich bars on a terminal, plain lines otherwise."""
    if not console.is_terminal:
        yield TransferProgress(console, stats, None)
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        yield TransferProgress(console, stats, progress)

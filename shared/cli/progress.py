"""The progress bar of `itdr scan` on a terminal: MB read, records, rate and ETA, then detection.

Drawn with rich on standard error only when it is a terminal (`shared.cli.scan.run` decides); a pipe,
a file or ``--quiet`` gets nothing.
"""

from __future__ import annotations

from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from shared.cli.scan import ScanProgress


class RichScanProgress(ScanProgress):
    """Two bars: reading (bytes of the inputs, records so far) and detecting (records through the engine)."""

    def __init__(self, stream: TextIO) -> None:
        self._progress = Progress(
            TextColumn("{task.description:<9}"),
            BarColumn(),
            TextColumn("{task.fields[detail]}"),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=Console(file=stream, stderr=True),
            transient=False,
            refresh_per_second=4,
        )
        self._read: TaskID | None = None
        self._detect: TaskID | None = None
        self._bytes = 0
        self._records = 0
        self._progress.start()

    def reading(self, total_bytes: int | None) -> None:
        self._read = self._progress.add_task("reading", total=total_bytes, detail="", rate="")

    def advance_bytes(self, n: int) -> None:
        self._bytes += n
        if self._read is not None:
            self._progress.update(self._read, completed=self._bytes, detail=self._reading_detail())

    def records(self, n: int) -> None:
        self._records = n
        if self._read is not None:
            task = self._progress.tasks[self._read]
            speed = task.speed
            rate = f"{speed / 1e6:,.1f} MB/s" if speed else ""
            self._progress.update(self._read, detail=self._reading_detail(), rate=rate)

    def _reading_detail(self) -> str:
        return f"{self._bytes / 1e6:,.1f} MB  {self._records:,} records"

    def detecting(self, total: int) -> None:
        if self._read is not None:
            self._progress.update(self._read, total=self._bytes or 1, completed=self._bytes or 1)
        self._detect = self._progress.add_task("detecting", total=total or 1, detail="", rate="")

    def advance(self, n: int) -> None:
        if self._detect is None:
            return
        self._progress.advance(self._detect, n)
        task = self._progress.tasks[self._detect]
        speed = task.speed
        self._progress.update(
            self._detect,
            detail=f"{int(task.completed):,}/{int(task.total or 0):,} records",
            rate=f"{speed:,.0f} rec/s" if speed else "",
        )

    def close(self) -> None:
        self._progress.stop()

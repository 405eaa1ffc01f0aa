"""A camera's motion intervals, kept beside its footage for the review card's timeline.

Each interval (from the first moving frame to the last, wall-clock seconds) is appended as two
float64 to `<storage>/index/motion/<camera>/<YYYY-MM-DD>.bin`, one file per local day of its
start: 16 bytes per interval, a few KB a day under steady motion, read back by the days a range
covers. Days older than the camera's oldest clip are deleted as intervals are added, so the log
goes with the footage it describes. Blocking throughout (the glue runs it in the executor).
"""

from __future__ import annotations

from array import array
import contextlib
from pathlib import Path
import time

from .layout import index_dir

MOTION = "motion"
_DAY = 86400.0
_DAY_FORMAT = "%Y-%m-%d"


class MotionLog:
    """One camera's motion intervals on disk."""

    def __init__(self, storage: Path, camera: str) -> None:
        """The log of `camera` (a slug) under `storage`'s index folder."""
        self.folder = index_dir(storage) / MOTION / camera

    def _day_file(self, moment: float) -> Path:
        return self.folder / (time.strftime(_DAY_FORMAT, time.localtime(moment)) + ".bin")

    def append(self, start: float, end: float, keep_from: float | None = None) -> None:
        """Add an interval; with `keep_from` (the oldest clip's start), drop older days' files."""
        if not end >= start:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        with self._day_file(start).open("ab") as file:
            file.write(array("d", (start, end)).tobytes())
        if keep_from is not None:
            self.prune(keep_from)

    def prune(self, keep_from: float) -> None:
        """Delete the files of days that ended before `keep_from`."""
        oldest = self._day_file(keep_from).name
        with contextlib.suppress(FileNotFoundError):
            for file in self.folder.iterdir():
                if file.suffix == ".bin" and file.name < oldest:
                    file.unlink(missing_ok=True)

    def between(self, t0: float, t1: float) -> list[tuple[float, float]]:
        """Intervals overlapping [t0, t1], oldest first (an interval began on its start's day,
        so the day before t0 is read too)."""
        names: list[str] = []
        moment = t0 - _DAY
        while True:
            name = self._day_file(min(moment, t1)).name
            if name not in names:
                names.append(name)
            if moment >= t1:
                break
            moment += _DAY / 2  # (half days: a DST day is 23 or 25 hours long)
        found: list[tuple[float, float]] = []
        for name in names:
            values = array("d")
            try:
                data = (self.folder / name).read_bytes()
            except FileNotFoundError:
                continue
            values.frombytes(data[: len(data) - len(data) % 16])  # (a torn last write)
            found.extend(
                (values[i], values[i + 1])
                for i in range(0, len(values), 2)
                if values[i] <= t1 and values[i + 1] >= t0
            )
        found.sort()
        return found

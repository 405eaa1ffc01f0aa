"""Synthetic footage on disk for retention tests: clips in the recordings layout, five days old."""

from __future__ import annotations

from datetime import UTC, datetime
import os
from pathlib import Path
import time

from custom_components.pm_dvr.core.layout import clip_path
from custom_components.pm_dvr.core.retention import BYTES_PER_GB

SIZE = 10_000
CAMERAS = ("front", "garden", "garage")


def _five_days_ago_at_one() -> float:
    """01:00 local time five days ago: day folders older than today, and a test's clips (20
    hours at most) never cross midnight into a second day folder, whenever the suite runs."""
    day = time.localtime(time.time() - 5 * 86400)
    return time.mktime((day.tm_year, day.tm_mon, day.tm_mday, 1, 0, 0, 0, 0, -1))


BASE = _five_days_ago_at_one()


def gb(n_bytes: float) -> float:
    return n_bytes / BYTES_PER_GB


def write_clip(storage: Path, camera: str, start: float, size: int = SIZE) -> Path:
    """A closed clip in the recordings layout, with real bytes and the mtime of its end."""
    path = clip_path(storage, camera, start)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(os.urandom(size))
    os.utime(path, (start + 59, start + 59))
    return path


def make_clips(
    storage: Path, per_camera: int = 10, base: float = BASE, size: int = SIZE
) -> list[Path]:
    """Clips of every camera, interleaved in time; returned oldest first across cameras."""
    made = [
        (base + i * 60 + c * 7, write_clip(storage, camera, base + i * 60 + c * 7, size))
        for i in range(per_camera)
        for c, camera in enumerate(CAMERAS)
    ]
    return [path for _start, path in sorted(made)]


def iso(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, UTC).isoformat()

"""The clip index: every finished recording per camera, sorted by time, kept in memory.

Events and retention ask "which clips cover [t0, t1]" and "which are oldest" without walking
directories. Built once from disk at start-up (in an executor), then kept current by the recorder
(which adds each clip as it closes) and by retention (which removes what it deletes).
Thread-safe: the recorder threads add, the event loop reads.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
import heapq
import os
from pathlib import Path
import re
import threading
import time

CLIP_SUFFIX = ".mp4"
PART_SUFFIX = ".part"
_CLIP_NAME = re.compile(r"^(\d{4})(\d{2})(\d{2})-(\d{2})(\d{2})(\d{2})(?:-\d+)?\.mp4$")


@dataclass(frozen=True, slots=True, order=True)
class Clip:
    """One closed clip. Ordered by start time; `end` is the time of its last packet."""

    start: float
    end: float = field(compare=False)
    camera: str = field(compare=False)
    path: Path = field(compare=False)
    size: int = field(compare=False)
    inode: int = field(compare=False, default=0)

    @property
    def duration(self) -> float:
        """Seconds covered."""
        return max(0.0, self.end - self.start)


def clip_start_from_name(name: str) -> float | None:
    """Parse `YYYYmmdd-HHMMSS[-N].mp4` (local time) into epoch seconds, None if not a clip name."""
    match = _CLIP_NAME.match(name)
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in match.groups())
    return time.mktime((year, month, day, hour, minute, second, 0, 0, -1))


def clip_from_path(camera: str, path: Path) -> Clip | None:
    """Describe a clip file from its name and one stat (end = last modification). Blocking."""
    start = clip_start_from_name(path.name)
    if start is None:
        return None
    try:
        st = path.stat()
    except OSError:
        return None
    return Clip(start, max(start, st.st_mtime), camera, path, st.st_size, st.st_ino)


class ClipIndex:
    """Clips per camera, sorted by start time."""

    def __init__(self, recordings_dir: Path) -> None:
        self.recordings_dir = recordings_dir
        self._lock = threading.Lock()
        self._clips: dict[str, list[Clip]] = {}
        self._listeners: list[Callable[[Clip], None]] = []

    def scan(self) -> int:
        """(Re)build the index from `<recordings>/<camera>/<day>/*.mp4`. Blocking; returns count.

        Uses scandir so a clip costs one directory entry and one stat, not a tree walk per query.
        """
        found: dict[str, list[Clip]] = {}
        if self.recordings_dir.is_dir():
            for camera_entry in os.scandir(self.recordings_dir):
                if not camera_entry.is_dir(follow_symlinks=False):
                    continue
                clips: list[Clip] = []
                for day_entry in os.scandir(camera_entry.path):
                    if not day_entry.is_dir(follow_symlinks=False):
                        continue
                    for entry in os.scandir(day_entry.path):
                        start = clip_start_from_name(entry.name)
                        if start is None or not entry.is_file(follow_symlinks=False):
                            continue
                        st = entry.stat(follow_symlinks=False)
                        clips.append(
                            Clip(
                                start,
                                max(start, st.st_mtime),
                                camera_entry.name,
                                Path(entry.path),
                                st.st_size,
                                st.st_ino,
                            )
                        )
                clips.sort()
                found[camera_entry.name] = clips
        with self._lock:
            self._clips = found
        return sum(len(c) for c in found.values())

    def add(self, clip: Clip) -> None:
        """Learn a clip that just closed and tell the listeners (from the caller's thread)."""
        with self._lock:
            clips = self._clips.setdefault(clip.camera, [])
            if clips and clip.start >= clips[-1].start:
                clips.append(clip)
            else:
                insort(clips, clip)
            listeners = tuple(self._listeners)
        for listener in listeners:
            listener(clip)

    def remove(self, clip: Clip) -> bool:
        """Forget a clip (after retention deleted it)."""
        with self._lock:
            clips = self._clips.get(clip.camera)
            if not clips:
                return False
            i = bisect_left(clips, clip)
            while i < len(clips) and clips[i].start == clip.start:
                if clips[i].path == clip.path:
                    del clips[i]
                    return True
                i += 1
            return False

    def add_listener(self, listener: Callable[[Clip], None]) -> Callable[[], None]:
        """Be told of every clip added; returns a function that stops it."""
        with self._lock:
            self._listeners.append(listener)

        def remove() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return remove

    def cameras(self) -> list[str]:
        """Cameras with at least one clip."""
        with self._lock:
            return [camera for camera, clips in self._clips.items() if clips]

    def clips(self, camera: str) -> list[Clip]:
        """A copy of one camera's clips, oldest first."""
        with self._lock:
            return list(self._clips.get(camera, ()))

    def covering(self, camera: str, t0: float, t1: float) -> list[Clip]:
        """Clips of a camera that overlap [t0, t1], by bisection (no directory access)."""
        with self._lock:
            clips = self._clips.get(camera, [])
            # A clip starting before t0 may still run into the window: step back one.
            first = max(0, bisect_right(clips, Clip(t0, t0, "", Path(), 0)) - 1)
            last = bisect_right(clips, Clip(t1, t1, "", Path(), 0))
            return [c for c in clips[first:last] if c.end >= t0 and c.start <= t1]

    def oldest(self) -> Iterator[Clip]:
        """All clips across cameras, oldest first (a merge of the sorted lists, on a snapshot)."""
        with self._lock:
            lists = [list(clips) for clips in self._clips.values()]
        return heapq.merge(*lists)

    def count(self, camera: str | None = None) -> int:
        """Number of clips of one camera or of all."""
        with self._lock:
            if camera is not None:
                return len(self._clips.get(camera, ()))
            return sum(len(c) for c in self._clips.values())

    def total_size(self, camera: str | None = None) -> int:
        """Bytes of the indexed clips (not deduplicated by inode; retention does that)."""
        with self._lock:
            lists = [self._clips.get(camera, [])] if camera else list(self._clips.values())
            return sum(c.size for clips in lists for c in clips)

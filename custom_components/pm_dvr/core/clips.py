"""The clip index: every finished recording per camera, sorted by time, kept in memory.

Events and retention ask "which clips cover [t0, t1]" and "which are oldest" without walking
directories. Built once from disk at start-up (in an executor), then kept current by the recorder
(which adds each clip as it closes) and by retention (which removes what it deletes).
Thread-safe: the recorder threads add, the event loop reads.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
import heapq
import os
from pathlib import Path
import re
import stat
import threading

from . import walltime

CLIP_SUFFIX = ".mp4"
PART_SUFFIX = ".part"
_CLIP_NAME = re.compile(
    r"^(\d{4})(\d{2})(\d{2})-(\d{2})(\d{2})(\d{2})(?:"
    + walltime.MARKER.pattern
    + r")?(?:-(\d+))?\.mp4$"
)


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


def clip_starts_from_name(name: str) -> tuple[float, ...] | None:
    """Every start a clip name can mean, oldest first; None if not a clip name.

    One, except for a name without an offset marker in a repeated hour (written before names
    had markers): both passes. A time in a skipped hour reads as if the clocks had not moved yet.
    """
    match = _CLIP_NAME.match(name)
    if match is None:
        return None
    wall = [int(g) for g in match.groups()[:6]]
    try:
        if match.group(7) is not None:  # the offset is in the name: exact
            offset = walltime.marker_offset(*match.group(7, 8, 9, 10))
            return (float(walltime.naive(wall) - offset),)
        found = walltime.instants(wall)
        if not found:
            return (walltime.to_epoch(wall),)
        return tuple(float(t) for t in found)
    except (OverflowError, ValueError, OSError):
        return None


def clip_start_from_name(name: str, mtime: float | None = None) -> float | None:
    """Parse `YYYYmmdd-HHMMSS[_pHHMM|_mHHMM][-N].mp4` (local time, its UTC offset when in a
    repeated hour) into epoch seconds; None if not a clip name.

    A name without a marker in a repeated hour is the pass whose start is the last one at or
    before `mtime` (the clip's end, its modification time), else the first pass.
    """
    starts = clip_starts_from_name(name)
    return None if starts is None else _pick(starts, mtime)


def _pick(starts: tuple[float, ...], mtime: float | None) -> float:
    """The last start at or before the clip's end, else the first."""
    if mtime is not None and len(starts) > 1:
        for start in reversed(starts):
            if start <= mtime:
                return start
    return starts[0]


def clip_name_order(name: str, mtime: float | None = None) -> tuple[float, int]:
    """Sort key of a clip name: its start, then N of `-N` (later clips of the same second).

    Plain string order would put `...-1.mp4` before `....mp4`, its elder. `mtime` places a name
    of a repeated hour written without a marker (see clip_start_from_name).
    """
    match = _CLIP_NAME.match(name)
    if match is None:
        return (0.0, 0)
    start = clip_start_from_name(name, mtime)
    return (start or 0.0, int(match.group(11) or 0))


def _clip_order(clip: Clip) -> tuple[float, int]:
    match = _CLIP_NAME.match(clip.path.name)
    return clip.start, int(match.group(11) or 0) if match else 0


class _StartCache:
    """Clip start times by day: one day's base time instead of a time-zone lookup per clip.

    A day whose wall clock runs linearly (no DST change inside it) maps `HHMMSS` to
    midnight + seconds; other days, and names with a marker or `-N`, are parsed one by one, so
    the result always equals `clip_start_from_name`.
    """

    def __init__(self) -> None:
        self._midnight: dict[str, float | None] = {}

    def start(self, name: str, mtime: float | None = None) -> float | None:
        """Epoch start of a clip name (its file modified at `mtime`), None if not a clip name."""
        if len(name) != 19 or name[8] != "-" or not name.endswith(CLIP_SUFFIX):
            return clip_start_from_name(name, mtime)  # rare forms (marker, `-N`) and non-clips
        day, hms = name[:8], name[9:15]
        if not (day.isascii() and day.isdigit() and hms.isascii() and hms.isdigit()):
            return None
        midnight = self._midnight.get(day, -1.0)
        if midnight == -1.0:
            midnight = self._day_midnight(day)
            self._midnight[day] = midnight
        value = int(hms)
        hour, minute, second = value // 10000, value // 100 % 100, value % 100
        if midnight is None or hour > 23 or minute > 59 or second > 59:
            return clip_start_from_name(name, mtime)
        return midnight + hour * 3600 + minute * 60 + second

    @staticmethod
    def _day_midnight(day: str) -> float | None:
        """Midnight of a day whose every second happens once, None for other days."""
        year, month, mday = int(day[:4]), int(day[4:6]), int(day[6:])
        try:
            first = walltime.instants((year, month, mday))
            last = walltime.instants((year, month, mday, 23, 59, 59))
        except (OverflowError, ValueError, OSError):
            return None
        if len(first) == 1 and len(last) == 1 and last[0] - first[0] == 86399:
            return float(first[0])
        return None


def _start_of(clip: Clip) -> float:
    return clip.start


def _scan_day(camera: str, day_dir: str, starts: _StartCache, clips: list[Clip]) -> bool:
    """Append the clips of one day folder (opened without following a symlink).

    Returns whether one has a `-N` name (clips of the same second, ordered by N).
    """
    suffixed = False
    try:
        fd = os.open(day_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return suffixed
    try:
        prefix = day_dir + os.sep
        with os.scandir(fd) as entries:
            for entry in entries:
                if not entry.name.endswith(CLIP_SUFFIX):
                    continue
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if not stat.S_ISREG(st.st_mode):
                    continue
                # The end places a name of a repeated hour that has no offset marker.
                start = starts.start(entry.name, st.st_mtime)
                if start is None:
                    continue
                suffixed = suffixed or "-" in entry.name[15:]  # `-N`, not a marker
                clips.append(
                    Clip(
                        start,
                        max(start, st.st_mtime),
                        camera,
                        Path(prefix + entry.name),
                        st.st_size,
                        st.st_ino,
                    )
                )
    finally:
        os.close(fd)
    return suffixed


def clip_from_path(camera: str, path: Path) -> Clip | None:
    """Describe a clip file from its name and one stat (end = last modification). Blocking."""
    starts = clip_starts_from_name(path.name)
    if starts is None:
        return None
    try:
        st = path.stat()
    except OSError:
        return None
    start = _pick(starts, st.st_mtime)
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
        Day folders are listed through a descriptor (stat relative to it, no path lookup) and
        clip names are parsed against a per-day base time: 100,000 clips take well under a second.
        """
        found: dict[str, list[Clip]] = {}
        if self.recordings_dir.is_dir():
            starts = _StartCache()
            for camera_entry in os.scandir(self.recordings_dir):
                if not camera_entry.is_dir(follow_symlinks=False):
                    continue
                clips: list[Clip] = []
                suffixed = False
                for day_entry in os.scandir(camera_entry.path):
                    if day_entry.is_dir(follow_symlinks=False):
                        found_suffix = _scan_day(camera_entry.name, day_entry.path, starts, clips)
                        suffixed = suffixed or found_suffix
                clips.sort(key=_start_of)  # same order as Clip's (start only), without tuples
                if suffixed:
                    clips.sort(key=_clip_order)  # rare: clips of one second, by their -N
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

    def remove_many(self, clips: Iterable[Clip]) -> int:
        """Forget many clips at once (retention's batch). Returns how many were found.

        Located by bisection on start and identity (no Path hashing); the usual case, the
        oldest clips of a camera, is one slice deletion instead of a memmove per clip.
        """
        by_camera: dict[str, list[Clip]] = {}
        for clip in clips:
            by_camera.setdefault(clip.camera, []).append(clip)
        removed = 0
        with self._lock:
            for camera, gone in by_camera.items():
                current = self._clips.get(camera)
                if not current:
                    continue
                drop: set[int] = set()
                for clip in gone:
                    i = bisect_left(current, clip.start, key=_start_of)
                    while i < len(current) and current[i].start == clip.start:
                        found = current[i]
                        if i not in drop and (found is clip or found.path == clip.path):
                            drop.add(i)
                            break
                        i += 1
                if not drop:
                    continue
                removed += len(drop)
                if max(drop) == len(drop) - 1:
                    del current[: len(drop)]
                else:
                    self._clips[camera] = [c for i, c in enumerate(current) if i not in drop]
        return removed

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
        return heapq.merge(*lists, key=_start_of)  # same order as comparing Clips, cheaper

    def heads(self) -> list[Clip]:
        """The oldest clip of each camera (no copy of the lists, no merge)."""
        with self._lock:
            return [clips[0] for clips in self._clips.values() if clips]

    def oldest_start(self) -> float | None:
        """Start of the oldest clip of any camera, None when empty (no copy, no merge)."""
        with self._lock:
            firsts = [clips[0].start for clips in self._clips.values() if clips]
        return min(firsts, default=None)

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

"""The clip index: every finished recording per camera, sorted by time, kept in memory.

Events and retention ask "which clips cover [t0, t1]" and "which are oldest" without walking
directories. Built once from disk at start-up (in an executor), then kept current by the recorder
(which adds each clip as it closes) and by retention (which removes what it deletes).
Thread-safe: the recorder threads add, the event loop reads (totals only: O(1)).
Compact (parallel arrays, no object per clip) because it grows with what is on disk: a month of
eight cameras is two million clips.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Collection, Iterable, Iterator
import contextlib
from dataclasses import dataclass, field
from functools import lru_cache
import heapq
import itertools
import logging
import math
import operator
import os
from pathlib import Path
import re
import shutil
import stat
import struct
import threading
import time
from typing import Any, Final

import numpy as np

from . import walltime

_LOGGER = logging.getLogger(__name__)

CLIP_SUFFIX = ".mp4"
COVERAGE_JOIN_S = 2.0
"""Clips closer than this join into one recorded span on a timeline (a reconnect's gap)."""
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
        midnight = self.midnight(day)
        value = int(hms)
        hour, minute, second = value // 10000, value // 100 % 100, value % 100
        if midnight is None or hour > 23 or minute > 59 or second > 59:
            return clip_start_from_name(name, mtime)
        return midnight + hour * 3600 + minute * 60 + second

    def midnight(self, day: str) -> float | None:
        """Epoch midnight of a `YYYYmmdd` day whose every second happens once, else None."""
        midnight = self._midnight.get(day, -1.0)
        if midnight == -1.0:
            midnight = self._day_midnight(day)
            self._midnight[day] = midnight
        return midnight

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


_ODD: Final = 1 << 30
"""A tag at or above this is an odd path kept in a dict (its key is tag - _ODD)."""
_REACH: Final = 2 * 86400
"""A plain name's wall time lies within its UTC offset (at most a day) of its start."""
_CHUNK: Final = 64
"""Clips materialised per lock hold while walking the index (oldest): well under a ms."""
_BLOCK_HEAD: Final = struct.Struct("=8sqqqq")
"""A saved day block's header: magic, the folder's inode and mtime (ns), count, byte order."""
_BLOCK_MAGIC: Final = b"PMDVRIX1"
_BLOCK_ORDER: Final = 0x0102030405060708
_BLOCK_SUFFIX: Final = ".idx"
_STABLE_NS: Final = 120 * 10**9
"""A day folder untouched this long gets a saved block (today's, written every 10 s, does not)."""


@lru_cache(maxsize=4096)
def _day_texts(day: int) -> tuple[str, str]:
    """`YYYY-mm-dd` (the day folder) and `YYYYmmdd` (the name's date) of a wall-time day number."""
    t = time.gmtime(day * 86400)
    ymd = f"{t.tm_year:04d}{t.tm_mon:02d}{t.tm_mday:02d}"
    return f"{ymd[:4]}-{ymd[4:6]}-{ymd[6:]}", ymd


def _plain_name(wall: int) -> tuple[str, str]:
    """Day folder and clip name of a wall time read as UTC (see walltime.naive)."""
    day, second = divmod(wall, 86400)
    folder, ymd = _day_texts(day)
    hour, rest = divmod(second, 3600)
    minute, second = divmod(rest, 60)
    return folder, f"{ymd}-{hour:02d}{minute:02d}{second:02d}{CLIP_SUFFIX}"


@lru_cache(maxsize=1024)
def _folder_wall(folder: str) -> int | None:
    """Midnight (wall time read as UTC) of a canonical `YYYY-mm-dd` folder name, else None."""
    if len(folder) != 10 or folder[4] != "-" or folder[7] != "-":
        return None
    digits = folder[:4] + folder[5:7] + folder[8:]
    if not (digits.isascii() and digits.isdigit()):
        return None
    try:
        wall = walltime.naive((int(digits[:4]), int(digits[4:6]), int(digits[6:])))
    except (OverflowError, ValueError):
        return None
    return wall if _day_texts(wall // 86400)[0] == folder else None


def _reordered(column: array[Any], order: list[int]) -> array[Any]:
    return array(column.typecode, map(column.__getitem__, order))


class _Camera:
    """One camera's clips as parallel arrays sorted by start (36 bytes a clip), and its bytes.

    A clip's path is not stored: its tag is the wall time of its name minus its start (the UTC
    offset), so `<camera>/<day>/<YYYYmmdd-HHMMSS>.mp4` is rebuilt without the time zone (which
    may change while running). Rare names (`-N`, offset markers, elsewhere) keep their path in
    `odd`, their tag pointing to it.
    """

    __slots__ = (
        "bytes",
        "ends",
        "inodes",
        "name",
        "next_odd",
        "odd",
        "prefix",
        "sizes",
        "starts",
        "tags",
    )

    def __init__(self, name: str, prefix: str) -> None:
        self.name = name
        self.prefix = prefix  # `<recordings>/<camera>/`
        self.starts = array("d")
        self.ends = array("d")
        self.sizes = array("q")
        self.inodes = array("Q")
        self.tags = array("i")
        self.odd: dict[int, Path] = {}
        self.next_odd = 0
        self.bytes = 0

    def __len__(self) -> int:
        return len(self.starts)

    def columns(self) -> tuple[array[Any], ...]:
        """The parallel arrays, in the order a saved block holds them."""
        return (self.starts, self.ends, self.sizes, self.inodes, self.tags)

    def tag(self, start: float, path: Path) -> int:
        """The tag of a clip: its offset when the path is the plain one of its start, else odd."""
        tag = self.plain_tag_of(start, str(path))
        return self.odd_tag(path) if tag is None else tag

    def plain_tag_of(self, start: float, text: str) -> int | None:
        """The offset tag of a path (as text) that is the plain one of its start, else None."""
        rest = text[len(self.prefix) :]
        if len(rest) != 30 or rest[10] != os.sep or not text.startswith(self.prefix):
            return None
        midnight = _folder_wall(rest[:10])
        return None if midnight is None else self.plain_tag(midnight, rest[11:], start)

    @staticmethod
    def plain_tag(midnight: int, name: str, start: float) -> int | None:
        """The tag of a name in the folder of `midnight`, None unless it is the plain name."""
        # `<date of the folder>-HHMMSS.mp4`, so the name is rebuilt exactly from its wall time.
        hms = name[9:15]
        if (
            len(name) != 19
            or name[8] != "-"
            or not name.endswith(CLIP_SUFFIX)
            or not (hms.isascii() and hms.isdigit())
            or name[:8] != _day_texts(midnight // 86400)[1]
        ):
            return None
        value = int(hms)
        hour, minute, second = value // 10000, value // 100 % 100, value % 100
        if hour > 23 or minute > 59 or second > 59:
            return None
        wall = midnight + hour * 3600 + minute * 60 + second
        try:
            tag = wall - math.floor(start)
        except (OverflowError, ValueError):
            return None
        if not -_REACH < tag < _REACH:
            return None
        return tag

    def odd_tag(self, path: Path) -> int:
        """Keep a path that is not the plain one of its start; returns its tag."""
        key = self.next_odd
        while key in self.odd:
            key = (key + 1) % _ODD
        self.odd[key] = path
        self.next_odd = (key + 1) % _ODD
        return _ODD + key

    def path(self, i: int) -> Path:
        """The path of clip i."""
        tag = self.tags[i]
        if tag >= _ODD:
            return self.odd[tag - _ODD]
        folder, name = _plain_name(math.floor(self.starts[i]) + tag)
        return Path(self.prefix + folder + os.sep + name)

    def clip(self, i: int) -> Clip:
        """Clip i as an object (made on demand, never kept)."""
        return Clip(
            self.starts[i], self.ends[i], self.name, self.path(i), self.sizes[i], self.inodes[i]
        )

    def append(self, start: float, end: float, size: int, inode: int, tag: int) -> None:
        """Add a clip at the end (the caller keeps the order or sorts after)."""
        self.starts.append(start)
        self.ends.append(end)
        self.sizes.append(size)
        self.inodes.append(inode)
        self.tags.append(tag)
        self.bytes += size

    def add(self, start: float, end: float, size: int, inode: int, tag: int) -> None:
        """Add a clip in order: appended (the usual case), else after the clips of its start."""
        starts = self.starts
        if not starts or start >= starts[-1]:
            self.append(start, end, size, inode, tag)
            return
        i = bisect_right(starts, start)
        starts.insert(i, start)
        self.ends.insert(i, end)
        self.sizes.insert(i, size)
        self.inodes.insert(i, inode)
        self.tags.insert(i, tag)
        self.bytes += size

    def delete(self, lo: int, hi: int) -> int:
        """Drop clips [lo, hi); returns their bytes."""
        if self.odd:
            for tag in self.tags[lo:hi]:
                if tag >= _ODD:
                    del self.odd[tag - _ODD]
        size = sum(self.sizes[lo:hi])
        for column in (self.starts, self.ends, self.sizes, self.inodes, self.tags):
            del column[lo:hi]
        self.bytes -= size
        return size

    def find(self, clip: Clip, skip: Collection[int] = ()) -> int | None:
        """Position of a clip (same start and path), None if not indexed.

        A plain path is its tag (with the start), so it is compared without building a path.
        """
        starts, tags = self.starts, self.tags
        i = bisect_left(starts, clip.start)
        plain: int | None = None
        checked = False  # the clip's own tag: computed once, only if its start is there
        while i < len(starts) and starts[i] == clip.start:
            if i not in skip:
                tag = tags[i]
                if tag >= _ODD:
                    if self.odd[tag - _ODD] == clip.path:
                        return i
                else:
                    if not checked:
                        plain, checked = self.plain_tag_of(clip.start, str(clip.path)), True
                    if tag == plain:
                        return i
            i += 1
        return None

    def suffix(self, i: int) -> int:
        """N of a `-N` name (clips of one second), 0 for others."""
        tag = self.tags[i]
        if tag < _ODD:
            return 0
        match = _CLIP_NAME.match(self.odd[tag - _ODD].name)
        return int(match.group(11) or 0) if match else 0

    def sort(self, suffixed: bool, lo: int = 0) -> None:
        """Sort clips [lo:] by start (then N of `-N` names when there are some), after a scan."""
        starts = self.starts
        if suffixed:
            order = sorted(range(lo, len(starts)), key=lambda i: (starts[i], self.suffix(i)))
        else:
            order = sorted(range(lo, len(starts)), key=starts.__getitem__)
        for column in self.columns():
            column[lo:] = _reordered(column, order)

    def is_sorted(self) -> bool:
        """Whether starts never decrease (day folders scanned in order usually leave them so)."""
        starts = self.starts
        return all(map(operator.le, starts, itertools.islice(starts, 1, None)))

    def names_give_starts(self, i: int) -> bool:
        """Whether clip i's name still gives its start (it does not once the time zone changed)."""
        return clip_start_from_name(self.path(i).name, self.ends[i]) == self.starts[i]


def _scan_day(cam: _Camera, day_dir: str, day: str, starts: _StartCache) -> bool:
    """Add the clips of one day folder (opened without following a symlink), unsorted.

    Returns whether one has a `-N` name (clips of the same second, ordered by N).
    """
    suffixed = False
    try:
        fd = os.open(day_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return suffixed
    # Names of the plain form in their own day's folder store no path (see _Camera).
    midnight = _folder_wall(day) if day_dir == cam.prefix + day else None
    ymd = day.replace("-", "")
    # On a day without a clock change, such a name's start and tag follow from HHMMSS alone:
    # the common case, millions of times at start-up.
    linear = None if midnight is None else starts.midnight(ymd)
    base = 0.0 if linear is None else linear
    shift = 0 if midnight is None else midnight - int(base)
    fast = linear is not None and midnight is not None and -_REACH < shift < _REACH
    try:
        prefix = day_dir + os.sep
        with os.scandir(fd) as entries:
            for entry in entries:
                name = entry.name
                if not name.endswith(CLIP_SUFFIX):
                    continue
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if not stat.S_ISREG(st.st_mode):
                    continue
                hms = name[9:15]
                if (
                    fast
                    and len(name) == 19
                    and name[8] == "-"
                    and name.startswith(ymd)
                    and hms.isascii()
                    and hms.isdigit()
                ):
                    value = int(hms)
                    hour, minute, second = value // 10000, value // 100 % 100, value % 100
                    if hour < 24 and minute < 60 and second < 60:
                        begin = base + hour * 3600 + minute * 60 + second
                        cam.append(begin, max(begin, st.st_mtime), st.st_size, st.st_ino, shift)
                        continue
                # The end places a name of a repeated hour that has no offset marker.
                start = starts.start(name, st.st_mtime)
                if start is None:
                    continue
                tag = None
                if midnight is not None and len(name) == 19 and name.startswith(ymd):
                    tag = cam.plain_tag(midnight, name, start)
                if tag is None:
                    suffixed = suffixed or "-" in name[15:]  # `-N`, not a marker
                    tag = cam.odd_tag(Path(prefix + name))
                cam.append(start, max(start, st.st_mtime), st.st_size, st.st_ino, tag)
    finally:
        os.close(fd)
    return suffixed


class _Blocks:
    """One camera's saved index blocks, `<blocks>/<camera>/<day>.idx`: a day folder's clips.

    A start-up reads a month of clips from a few hundred files instead of stat-ing two million.
    A block is used only while its folder has the inode and mtime it was made from (a clip
    added, renamed or deleted since changes the mtime) and its clip names still give its start
    times (a changed time zone does not); otherwise the folder is scanned, as without blocks.
    Blocks are written only for folders untouched for a while (never today's, which changes
    every clip) and never with odd names in them, which keep their paths in a dict.
    """

    __slots__ = ("folder",)

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _path(self, day: str) -> Path:
        return self.folder / (day + _BLOCK_SUFFIX)

    def load(self, cam: _Camera, day: str, st: os.stat_result) -> bool:
        """Append the saved clips of a day folder to `cam`, or False (nothing appended)."""
        try:
            data = memoryview(self._path(day).read_bytes())
        except OSError:
            return False
        if not self.matches(data, st):
            return False
        count = _BLOCK_HEAD.unpack_from(data)[3]
        if len(data) != _BLOCK_HEAD.size + count * sum(c.itemsize for c in cam.columns()):
            return False
        mark, offset = len(cam), _BLOCK_HEAD.size
        for column in cam.columns():
            size = count * column.itemsize
            column.frombytes(data[offset : offset + size])
            offset += size
        if count and not (cam.names_give_starts(mark) and cam.names_give_starts(len(cam) - 1)):
            for column in cam.columns():
                del column[mark:]
            return False
        cam.bytes += sum(cam.sizes[mark:])
        return True

    @staticmethod
    def matches(data: memoryview | bytes, st: os.stat_result) -> bool:
        """Whether a block's header is that of the folder as it is now."""
        if len(data) < _BLOCK_HEAD.size:
            return False
        magic, inode, mtime, _count, order = _BLOCK_HEAD.unpack_from(data)
        return bool(
            magic == _BLOCK_MAGIC
            and order == _BLOCK_ORDER
            and inode == st.st_ino
            and mtime == st.st_mtime_ns
        )

    def is_current(self, day: str, st: os.stat_result) -> bool:
        """Whether the folder has a block made from it as it is now (its header alone)."""
        try:
            with self._path(day).open("rb") as file:
                return self.matches(file.read(_BLOCK_HEAD.size), st)
        except OSError:
            return False

    def save(self, cam: _Camera, mark: int, day: str, st: os.stat_result) -> None:
        """Keep clips [mark:] (just scanned from the folder `st` describes) for next time."""
        count = len(cam) - mark
        if time.time_ns() - st.st_mtime_ns < _STABLE_NS or (count and max(cam.tags[mark:]) >= _ODD):
            return
        path = self._path(day)
        temporary = path.with_suffix(".tmp")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            with temporary.open("wb") as file:
                file.write(
                    _BLOCK_HEAD.pack(_BLOCK_MAGIC, st.st_ino, st.st_mtime_ns, count, _BLOCK_ORDER)
                )
                for column in cam.columns():
                    file.write(memoryview(column)[mark:])
            temporary.replace(path)
        except OSError as err:  # a read-only or full disk: the next start scans the folder
            _LOGGER.debug("Cannot save the index block of %s/%s: %s", cam.name, day, err)

    def prune(self, days: Collection[str]) -> None:
        """Remove the blocks of day folders that are gone (and half-written ones)."""
        try:
            blocks = list(self.folder.iterdir())
        except OSError:
            return
        for block in blocks:
            if block.suffix != _BLOCK_SUFFIX or block.stem not in days:
                with contextlib.suppress(OSError):
                    block.unlink()


def day_folders(recordings: Path) -> Iterator[tuple[str, os.DirEntry[str]]]:
    """(camera, day folder entry) for every day folder, cameras and days in name order."""
    if not recordings.is_dir():
        return
    cameras = sorted(
        (e for e in os.scandir(recordings) if e.is_dir(follow_symlinks=False)),
        key=operator.attrgetter("name"),
    )
    for camera in cameras:
        days = sorted(
            (e for e in os.scandir(camera.path) if e.is_dir(follow_symlinks=False)),
            key=operator.attrgetter("name"),
        )
        for day in days:
            yield camera.name, day


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
    """Clips per camera, sorted by start time, with running totals.

    Kept compact (parallel arrays, about 36 bytes a clip) because it holds everything on disk,
    millions of clips for a month of cameras; counts and bytes are kept up to date on every
    add and remove, so status reads on the event loop cost O(1). `Clip` objects are made only
    for what a query returns.
    """

    def __init__(self, recordings_dir: Path, blocks_dir: Path | None = None) -> None:
        self.recordings_dir = recordings_dir
        self.blocks_dir = blocks_dir
        self._lock = threading.Lock()
        self._cameras: dict[str, _Camera] = {}
        self._count = 0
        self._bytes = 0
        self._listeners: list[Callable[[Clip], None]] = []

    def _camera(self, name: str) -> _Camera:
        """A camera's clips, created empty (the caller holds the lock)."""
        cam = self._cameras.get(name)
        if cam is None:
            cam = self._cameras[name] = _Camera(name, str(self.recordings_dir / name) + os.sep)
        return cam

    def scan(self) -> int:
        """(Re)build the index from `<recordings>/<camera>/<day>/*.mp4`. Blocking; returns count.

        A day folder with a current saved block (see _Blocks) is read from it; any other is
        listed with scandir, a clip costing one directory entry and one stat (day folders are
        listed through a descriptor, names parsed against a per-day base time), and saved as a
        block once it is no longer written to. Day folders go in name order, each sorted as
        it is read, so a camera is usually in order at the end without a sort of the whole.
        """
        found: dict[str, _Camera] = {}
        starts = _StartCache()
        suffixed: set[str] = set()
        days_of: dict[str, set[str]] = {}
        for name, day_entry in day_folders(self.recordings_dir):
            cam = found.get(name)
            if cam is None:
                cam = found[name] = _Camera(name, str(self.recordings_dir / name) + os.sep)
                days_of[name] = set()
            blocks = None if self.blocks_dir is None else _Blocks(self.blocks_dir / name)
            try:
                st = day_entry.stat(follow_symlinks=False)  # before listing: see _Blocks
            except OSError:
                continue
            day = day_entry.name
            days_of[name].add(day)
            if blocks is not None and blocks.load(cam, day, st):
                continue
            mark = len(cam)
            day_suffixed = _scan_day(cam, day_entry.path, day, starts)
            if day_suffixed:
                suffixed.add(name)
            cam.sort(day_suffixed, mark)
            if blocks is not None:
                blocks.save(cam, mark, day, st)
        for name, cam in found.items():
            if name in suffixed or not cam.is_sorted():
                cam.sort(name in suffixed)
        if self.blocks_dir is not None:
            self._prune_blocks(days_of)
        with self._lock:
            self._cameras = found
            self._count = sum(len(cam) for cam in found.values())
            self._bytes = sum(cam.bytes for cam in found.values())
            return self._count

    def _prune_blocks(self, days_of: dict[str, set[str]]) -> None:
        """Drop the blocks of folders and cameras that are gone."""
        assert self.blocks_dir is not None
        for name, days in days_of.items():
            _Blocks(self.blocks_dir / name).prune(days)
        with contextlib.suppress(OSError):
            for entry in os.scandir(self.blocks_dir):
                if entry.name not in days_of and entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)

    def folders_to_scan(self) -> list[Path]:
        """Day folders without a current saved block: the only ones a crash can have changed
        (recovering its clips looks in these alone). Blocking; a stat and a read of 40 bytes
        a folder."""
        folders = []
        for name, day_entry in day_folders(self.recordings_dir):
            if self.blocks_dir is not None:
                try:
                    st = day_entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if _Blocks(self.blocks_dir / name).is_current(day_entry.name, st):
                    continue
            folders.append(Path(day_entry.path))
        return folders

    def add(self, clip: Clip) -> None:
        """Learn a clip that just closed and tell the listeners (from the caller's thread)."""
        with self._lock:
            cam = self._camera(clip.camera)
            cam.add(clip.start, clip.end, clip.size, clip.inode, cam.tag(clip.start, clip.path))
            self._count += 1
            self._bytes += clip.size
            listeners = tuple(self._listeners)
        for listener in listeners:
            listener(clip)

    def remove(self, clip: Clip) -> bool:
        """Forget a clip (after retention deleted it)."""
        with self._lock:
            cam = self._cameras.get(clip.camera)
            i = None if cam is None else cam.find(clip)
            if cam is None or i is None:
                return False
            self._drop(cam, i, i + 1)
            return True

    def _drop(self, cam: _Camera, lo: int, hi: int) -> None:
        """Drop a camera's clips [lo, hi) and their share of the totals (lock held)."""
        self._bytes -= cam.delete(lo, hi)
        self._count -= hi - lo

    def remove_many(self, clips: Iterable[Clip]) -> int:
        """Forget many clips at once (retention's batch). Returns how many were found.

        Located by bisection on start and path; runs of neighbours (usually the oldest clips
        of a camera) go in one slice deletion each instead of a memmove per clip.
        """
        by_camera: dict[str, list[Clip]] = {}
        for clip in clips:
            by_camera.setdefault(clip.camera, []).append(clip)
        removed = 0
        with self._lock:
            for camera, gone in by_camera.items():
                cam = self._cameras.get(camera)
                if cam is None:
                    continue
                drop: set[int] = set()
                for clip in gone:
                    i = cam.find(clip, drop)
                    if i is not None:
                        drop.add(i)
                removed += len(drop)
                # Runs of positions, from the last so the earlier ones stay where they are.
                hi = lo = -2
                for i in sorted(drop, reverse=True):
                    if i == lo - 1:
                        lo = i
                        continue
                    if hi >= 0:
                        self._drop(cam, lo, hi)
                    lo, hi = i, i + 1
                if hi >= 0:
                    self._drop(cam, lo, hi)
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
            return [name for name, cam in self._cameras.items() if len(cam)]

    def clips(self, camera: str) -> list[Clip]:
        """All of one camera's clips, oldest first (one object each: keep it off the loop)."""
        with self._lock:
            cam = self._cameras.get(camera)
            return [] if cam is None else [cam.clip(i) for i in range(len(cam))]

    def starting(self, camera: str, t0: float, t1: float) -> list[Clip]:
        """Clips of a camera that start in [t0, t1), oldest first."""
        with self._lock:
            cam = self._cameras.get(camera)
            if cam is None:
                return []
            lo, hi = bisect_left(cam.starts, t0), bisect_left(cam.starts, t1)
            return [cam.clip(i) for i in range(lo, hi)]

    def starts(self, camera: str) -> array[float]:
        """A copy of one camera's start times, oldest first (a memory copy, no objects)."""
        with self._lock:
            cam = self._cameras.get(camera)
            return array("d") if cam is None else array("d", cam.starts)

    def covering(self, camera: str, t0: float, t1: float) -> list[Clip]:
        """Clips of a camera that overlap [t0, t1], by bisection (no directory access)."""
        with self._lock:
            cam = self._cameras.get(camera)
            if cam is None:
                return []
            starts, ends = cam.starts, cam.ends
            # A clip starting before t0 may still run into the window: step back one.
            first = max(0, bisect_right(starts, t0) - 1)
            last = bisect_right(starts, t1)
            return [cam.clip(i) for i in range(first, last) if ends[i] >= t0 and starts[i] <= t1]

    def coverage(
        self, camera: str, t0: float, t1: float, join: float = COVERAGE_JOIN_S
    ) -> list[tuple[float, float]]:
        """A camera's recorded time within [t0, t1] as merged (start, end) spans, for a timeline.

        Clips less than `join` seconds apart make one span: a reconnect's second is no hole
        worth drawing, a camera that was off for a minute is. The window is found by bisection
        and its clips merged as arrays (no object per clip): a month of one camera, 260,000
        clips, in a few milliseconds.
        """
        with self._lock:
            cam = self._cameras.get(camera)
            if cam is None:
                return []
            first = max(0, bisect_right(cam.starts, t0) - 1)
            count = bisect_right(cam.starts, t1) - first
            # copies, so the arrays are free to grow again once the lock is released
            starts = np.frombuffer(cam.starts, np.float64, count, first * 8).copy()
            ends = np.frombuffer(cam.ends, np.float64, count, first * 8).copy()
        inside = (ends >= t0) & (starts <= t1)
        starts, ends = starts[inside], np.maximum.accumulate(ends[inside])  # overlaps nest
        if not len(starts):
            return []
        breaks = np.flatnonzero(starts[1:] > ends[:-1] + join)
        span_starts = np.maximum(np.concatenate((starts[:1], starts[breaks + 1])), t0)
        span_ends = np.minimum(np.concatenate((ends[breaks], ends[-1:])), t1)
        return list(zip(span_starts.tolist(), span_ends.tolist(), strict=True))

    def oldest(self) -> Iterator[Clip]:
        """All clips across cameras, oldest first: a lazy merge, a few hundred at a time.

        Clips removed meanwhile are not given (unless already in the chunk being given); the
        caller (retention) removes what it was given, which does not disturb the walk.
        """
        with self._lock:
            names = list(self._cameras)
        return heapq.merge(*(self._walk(name) for name in names), key=_start_of)

    def _walk(self, camera: str) -> Iterator[Clip]:
        """One camera's clips, oldest first, `_CHUNK` per lock hold (resumed by start time)."""
        last: float | None = None
        given: set[Path] = set()  # paths given that start at `last`, to resume after them
        while True:
            with self._lock:
                cam = self._cameras.get(camera)
                if cam is None:
                    return
                starts, n = cam.starts, len(cam)
                i = 0 if last is None else bisect_left(starts, last)
                chunk: list[Clip] = []
                while i < n and len(chunk) < _CHUNK:
                    if starts[i] != last or cam.path(i) not in given:
                        chunk.append(cam.clip(i))
                    i += 1
            if not chunk:
                return
            yield from chunk
            tail = chunk[-1].start
            if tail != last:
                given = set()
                last = tail
            given.update(c.path for c in chunk if c.start == tail)

    def heads(self) -> list[Clip]:
        """The oldest clip of each camera."""
        with self._lock:
            return [cam.clip(0) for cam in self._cameras.values() if len(cam)]

    # The totals are read without the lock: one attribute or array read each (atomic under
    # the GIL), so the event loop never waits behind a scan's swap or a retention batch.

    def oldest_start(self) -> float | None:
        """Start of the oldest clip of any camera, None when empty (one look per camera)."""
        firsts = []
        for cam in list(self._cameras.values()):
            try:
                firsts.append(cam.starts[0])
            except IndexError:  # no clips (or the last just removed)
                continue
        return min(firsts, default=None)

    def count(self, camera: str | None = None) -> int:
        """Number of clips of one camera or of all (a running total)."""
        if camera is None:
            return self._count
        cam = self._cameras.get(camera)
        return 0 if cam is None else len(cam)

    def total_size(self, camera: str | None = None) -> int:
        """Bytes of the indexed clips, a running total (not deduplicated by inode; retention
        does that)."""
        if camera is None:
            return self._bytes
        cam = self._cameras.get(camera)
        return 0 if cam is None else cam.bytes

    def keyed_sizes(self) -> dict[int | str, int]:
        """Size of every clip by inode (by path when it has none), for retention's accounting.

        Built from copies of the arrays (taken under the lock, a memory copy each), without a
        `Clip` per clip. Blocking for millions of clips.
        """
        with self._lock:
            columns = [
                (cam, array("Q", cam.inodes), array("q", cam.sizes))
                for cam in self._cameras.values()
            ]
        sizes: dict[int | str, int] = {}
        for cam, inodes, sizes_of in columns:
            sizes.update(zip(inodes, sizes_of, strict=True))
            if 0 in sizes:  # clips without an inode (not from a stat): by path (rare, tests)
                del sizes[0]
                with self._lock:
                    for i, inode in enumerate(cam.inodes):
                        if not inode:
                            sizes[str(cam.path(i))] = cam.sizes[i]
        return sizes

"""Footage for a media browser: day/hour buckets of the clip index, the event catalog, safe paths,
and event videos made by stream copy.

Listings come from the in-memory clip index by bisection (one step per day or hour shown, never a
pass over every clip) and from the events folder's names (re-listed only when the folder changed),
so a year of footage lists as fast as a day. Everything that touches files is blocking: the glue
runs it in the executor.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Sequence
import contextlib
from dataclasses import dataclass
from datetime import date
from fractions import Fraction
import hashlib
import logging
import math
import os
from pathlib import Path
import re
import shutil
import stat
import threading
import time
from typing import TYPE_CHECKING, Final, cast

import av

from . import walltime
from .avcompat import add_template_stream
from .clips import Clip, clip_name_order, clip_start_from_name
from .errors import NoFootageError, StorageError
from .event import EventRecord, read_event
from .layout import EVENT_FILE, events_dir, exports_dir, free_bytes, recordings_dir
from .stream import encode_jpeg
from .writer import free_path

if TYPE_CHECKING:
    from .stream import Image

_LOGGER = logging.getLogger(__name__)

CACHE: Final = "cache"
DAY_FORMAT: Final = "%Y-%m-%d"
CAMERA_SLUG: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
DAY: Final = re.compile(r"^\d{4}-\d{2}-\d{2}$")
HOUR: Final = re.compile(r"^(?:[01]\d|2[0-3])$")
EVENT_ID: Final = re.compile(r"^\d{8}-\d{6}-\d{3}_[a-z0-9-]+$")  # core/capture.py's ids
EXPORT_NAME: Final = re.compile(r"^\d{8}-\d{6}_\d{1,6}s(?:-\d{1,4})?\.mp4$")  # export_range's
THUMBNAIL_WIDTH: Final = 320
CACHE_MAX_AGE: Final = 24 * 3600.0
CACHE_MAX_BYTES: Final = 2 * 1024**3


class MediaPathError(ValueError):
    """An identifier that does not name footage inside the storage folder."""


def _first(item: tuple[tuple[float, int], Path]) -> tuple[float, int]:
    return item[0]


@dataclass(frozen=True, slots=True)
class Bucket:
    """A run of consecutive clips sharing a day (key `YYYY-mm-dd`) or an hour (key `HH`)."""

    key: str
    start: float
    first: int
    count: int


def day_buckets(starts: Sequence[float]) -> list[Bucket]:
    """Days with footage among clip start times (sorted), oldest first: one bisection per day,
    whatever the number of clips."""
    buckets: list[Bucket] = []
    i, n = 0, len(starts)
    while i < n:
        start = starts[i]
        local = time.localtime(start)
        tomorrow = walltime.to_epoch((local.tm_year, local.tm_mon, local.tm_mday + 1))
        j = bisect_left(starts, tomorrow, lo=i + 1)
        buckets.append(Bucket(time.strftime(DAY_FORMAT, local), start, i, j - i))
        i = j
    return buckets


def hour_buckets(starts: Sequence[float], lo: int = 0, hi: int | None = None) -> list[Bucket]:
    """Hours with footage among the clip start times starts[lo:hi], oldest first.

    An hour ends at the first pass of the next one, so the hour repeated when the clocks go back
    is one bucket (both passes, in time order) and the one before it does not reach into it.
    """
    buckets: list[Bucket] = []
    i, n = lo, len(starts) if hi is None else hi
    while i < n:
        start = starts[i]
        local = time.localtime(start)
        next_hour = walltime.to_epoch(
            (local.tm_year, local.tm_mon, local.tm_mday, local.tm_hour + 1)
        )
        j = bisect_left(starts, next_hour, lo=i + 1, hi=n)
        buckets.append(Bucket(f"{local.tm_hour:02d}", start, i, j - i))
        i = j
    return buckets


def day_range(starts: Sequence[float], day: str) -> tuple[int, int]:
    """The slice of clip start times (sorted) on a local day (`YYYY-mm-dd`)."""
    if not DAY.match(day):
        raise MediaPathError(f"not a day: {day!r}")
    year, month, mday = (int(part) for part in day.split("-"))
    try:
        date(year, month, mday)
        t0 = walltime.to_epoch((year, month, mday))
        t1 = walltime.to_epoch((year, month, mday + 1))
    except (OverflowError, ValueError) as err:
        raise MediaPathError(f"not a day: {day!r}") from err
    return bisect_left(starts, t0), bisect_left(starts, t1)


def hour_range(starts: Sequence[float], day: str, hour: str) -> tuple[int, int]:
    """The slice of clip start times (sorted) in one local hour of a day."""
    if not HOUR.match(hour):
        raise MediaPathError(f"not an hour: {hour!r}")
    lo, hi = day_range(starts, day)
    for bucket in hour_buckets(starts, lo, hi):
        if bucket.key == hour:
            return bucket.first, bucket.first + bucket.count
    return lo, lo


def check_part(value: str, pattern: re.Pattern[str], what: str) -> str:
    """One identifier component, refused unless it matches its strict form (no `..`, no `/`)."""
    if not pattern.fullmatch(value):
        raise MediaPathError(f"invalid {what}: {value[:80]!r}")
    return value


def inside(root: Path, *parts: str) -> Path:
    """root/parts, refused when any part is not a plain name or the result leaves root. Blocking."""
    for part in parts:
        if part in ("", ".", "..") or "/" in part or "\\" in part or "\0" in part:
            raise MediaPathError(f"invalid path component: {part[:80]!r}")
    path = root.joinpath(*parts)
    resolved_root = root.resolve()
    resolved = path.resolve()
    if resolved != resolved_root and resolved_root not in resolved.parents:
        raise MediaPathError("path leaves the storage folder")
    return resolved


def clip_file(storage: Path, clip: Clip) -> Path:
    """The file of an indexed clip, checked to be inside the recordings folder. Blocking."""
    root = recordings_dir(storage)
    try:
        relative = clip.path.relative_to(root)
    except ValueError as err:
        raise MediaPathError("clip outside the recordings folder") from err
    path = inside(root, *relative.parts)
    if not path.is_file():
        raise MediaPathError("clip missing")
    return path


# ----------------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class EventSummary:
    """What a listing shows of one event, read from its event.json."""

    event_id: str
    label: str
    trigger: str
    cameras: tuple[str, ...]
    start: float | None
    end: float | None
    state: str
    clips: dict[str, tuple[str, ...]]
    keep: bool = False

    def duration(self) -> float | None:
        """Seconds requested (the window), None while it has no end."""
        if self.start is None or self.end is None:
            return None
        return max(0.0, self.end - self.start)


def _summary(event_id: str, record: EventRecord) -> EventSummary:
    """The listing's view: cameras and clip names that are safe as path parts only."""
    clips = {
        camera: tuple(c.name for c in entries if clip_start_from_name(c.name) is not None)
        for camera, entries in record.clips.items()
        if CAMERA_SLUG.match(camera)
    }
    return EventSummary(
        event_id=event_id,
        label=record.label,
        trigger=record.trigger,
        cameras=tuple(c for c in record.cameras if CAMERA_SLUG.match(c)),
        start=record.requested_start,
        end=record.requested_end,
        state=record.state,
        clips=clips,
        keep=record.keep,
    )


def event_time(event_id: str) -> float | None:
    """When an event started, from its id (`YYYYmmdd-HHMMSS-mmm_...`, local time)."""
    try:
        parsed = time.strptime(event_id[:15], "%Y%m%d-%H%M%S")
    except ValueError:
        return None
    return time.mktime(parsed) + int(event_id[16:19]) / 1000


class EventCatalog:
    """The events of a storage folder, newest first, from folder names and cached event.json.

    A listing costs one stat of the events folder (its names are re-read only when it changed)
    plus one stat per event shown (its event.json is parsed again only when it changed).
    """

    def __init__(self, storage: Path) -> None:
        self.root = events_dir(storage)
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._ids: list[str] = []
        self._docs: dict[str, tuple[int, EventSummary]] = {}

    def ids(self) -> list[str]:
        """Event ids, newest first. Blocking."""
        try:
            st = self.root.stat()
            # The link count changes with every folder added or removed, even within one mtime tick.
            stamp = (st.st_mtime_ns, st.st_nlink)
        except OSError:
            return []
        with self._lock:
            if stamp == self._stamp:
                return self._ids
        with os.scandir(self.root) as entries:
            ids = sorted(
                (e.name for e in entries if EVENT_ID.match(e.name) and e.is_dir()),
                reverse=True,
            )
        with self._lock:
            self._stamp, self._ids = stamp, ids
            for gone in self._docs.keys() - set(ids):
                del self._docs[gone]
        return ids

    def summary(self, event_id: str) -> EventSummary | None:
        """One event as its event.json says now, None when it has none. Blocking."""
        check_part(event_id, EVENT_ID, "event id")
        folder = self.root / event_id
        try:
            stamp = (folder / EVENT_FILE).stat().st_mtime_ns
        except OSError:
            return None
        with self._lock:
            cached = self._docs.get(event_id)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        record = read_event(folder)
        if record is None:
            return None
        summary = _summary(event_id, record)
        with self._lock:
            self._docs[event_id] = (stamp, summary)
        return summary

    def clip_paths(self, summary: EventSummary, camera: str) -> list[Path]:
        """The event's clips of one camera that are on disk, in time order. Blocking.

        A clip that resolves outside the events folder (a planted symlink) is left out. Its
        modification time (the recording's end) places a name of a repeated hour that has no
        offset marker, as in the clip index.
        """
        check_part(camera, CAMERA_SLUG, "camera")
        found: list[tuple[tuple[float, int], Path]] = []
        for name in summary.clips.get(camera, ()):
            try:
                path = inside(self.root, summary.event_id, camera, name)
                st = path.stat()
            except (MediaPathError, OSError):
                continue
            if stat.S_ISREG(st.st_mode):
                found.append((clip_name_order(name, st.st_mtime), path))
        found.sort(key=_first)
        return [path for _, path in found]


# ----------------------------------------------------------------------------------- videos


class MediaCache:
    """Event videos and thumbnails made on demand under `<storage>/cache`, pruned by age/size."""

    def __init__(self, storage: Path) -> None:
        self.root = storage / CACHE
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def _lock(self, key: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def event_video(self, event_id: str, camera: str, clips: Sequence[Path]) -> Path:
        """One MP4 of a camera's clips in an event, back to back, by stream copy. Blocking.

        Named after the clips it holds, so an event still recording gets a fresh file.
        """
        check_part(event_id, EVENT_ID, "event id")
        check_part(camera, CAMERA_SLUG, "camera")
        if not clips:
            raise MediaPathError("no clips")
        signature = hashlib.sha1(
            "\n".join(f"{p.name}:{p.stat().st_size}" for p in clips).encode(),
            usedforsecurity=False,
        ).hexdigest()[:12]
        folder = self.root / event_id
        dest = folder / f"{camera}-{signature}.mp4"
        with self._lock(str(dest)):
            if dest.is_file():
                os.utime(dest)
                return dest
            folder.mkdir(parents=True, exist_ok=True)
            for stale in folder.glob(f"{camera}-*.mp4"):
                stale.unlink(missing_ok=True)
            remux(clips, dest)
        return dest

    def thumbnail(self, event_id: str, clip: Path) -> bytes | None:
        """A small JPEG of the first frame of `clip`, cached per event. Blocking."""
        check_part(event_id, EVENT_ID, "event id")
        dest = self.root / event_id / "thumbnail.jpg"
        with self._lock(str(dest)):
            if dest.is_file():
                return dest.read_bytes()
            jpeg = first_frame_jpeg(clip, THUMBNAIL_WIDTH)
            if jpeg is None:
                return None
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(dest.name + ".part")
            tmp.write_bytes(jpeg)
            tmp.replace(dest)
        return jpeg

    def prune(
        self,
        events: set[str] | None = None,
        max_age: float = CACHE_MAX_AGE,
        max_bytes: int = CACHE_MAX_BYTES,
        now: float | None = None,
        keep: Path | None = None,
    ) -> int:
        """Delete what is older than max_age or of events not in `events`, then the oldest
        over max_bytes; never `keep` (the file being served). Returns the bytes freed. Blocking."""
        if not self.root.is_dir():
            return 0
        now = time.time() if now is None else now
        freed = 0
        kept: list[tuple[float, int, Path]] = []
        for folder in self.root.iterdir():
            gone = events is not None and folder.name not in events
            files = list(folder.iterdir()) if folder.is_dir() else [folder]
            for file in files:
                try:
                    st = file.stat()
                except OSError:
                    continue
                if file == keep:
                    continue
                if gone or now - st.st_mtime > max_age:
                    file.unlink(missing_ok=True)
                    freed += st.st_size
                else:
                    kept.append((st.st_mtime, st.st_size, file))
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        total = sum(size for _, size, _ in kept)
        for _, size, file in sorted(kept):
            if total <= max_bytes:
                break
            file.unlink(missing_ok=True)
            total -= size
            freed += size
        return freed

    def clear(self) -> None:
        """Remove the whole cache. Blocking."""
        shutil.rmtree(self.root, ignore_errors=True)


def remux(sources: Sequence[Path], dest: Path) -> None:
    """Concatenate clips into one MP4 by stream copy (no re-encoding); timestamps made continuous.

    Streams come from the first clip with video (its video, and audio if it has some); a clip
    that cannot be read is skipped. Written to `<dest>.part` and renamed, so a reader never sees
    half.
    """
    _write_file(dest, [(source, 0.0) for source in sources], None, None)


_SLACK = Fraction(1, 1000)
"""Wall-clock times are floats: a frame within a millisecond of a range's edge is inside it."""

FRAGMENTED: Final = {"movflags": "frag_keyframe+empty_moov+default_base_moof"}
"""A stream that plays while it is written: the header first, then a fragment per keyframe."""


def remux_range(sources: Sequence[tuple[Path, float]], t0: float, t1: float, dest: Path) -> None:
    """Join the footage from t0 to t1 (wall clock) of clips given as (path, start) into one MP4
    by stream copy. Blocking.

    A copy can only begin on a keyframe, so the export begins at the last keyframe at or before
    t0 (within one GOP of it) and ends with the last packet at or before t1. Clips wholly outside
    the range are skipped; one that cannot be read is skipped with a warning. Written to
    `<dest>.part` and renamed, as `remux` does.
    """
    _write_file(dest, sources, t0, t1)


class _Sink:
    """A write-only file for the muxer: each piece goes to `write` as it is produced."""

    def __init__(self, write: Callable[[bytes], object]) -> None:
        self._write = write

    def write(self, data: bytes) -> int:
        self._write(bytes(data))
        return len(data)

    def seekable(self) -> bool:
        return False


def stream_range(
    sources: Sequence[tuple[Path, float]], t0: float, t1: float, write: Callable[[bytes], object]
) -> None:
    """`remux_range` as a fragmented MP4 handed to `write` piece by piece, for playback that
    starts before the join ends. Blocking; an exception raised by `write` stops it.

    The header comes first and then a fragment per GOP, so a player shows the first frame once
    the first GOP is copied, whatever the length of the range.
    """
    out = av.open(_Sink(write), "w", format="mp4", options=FRAGMENTED)
    try:
        _join(out, sources, t0, t1)
    finally:
        out.close()


def playback_start(sources: Sequence[tuple[Path, float]], t0: float) -> float | None:
    """Where `stream_range` from t0 begins (wall clock): the keyframe at or before t0 in the
    first readable clip with video, or that clip's start when t0 lies before it (a gap in the
    footage plays from the next recording). None when no clip can be read. Blocking."""
    for source, start in sources:
        try:
            return start + _keyframe_at_or_before(source, t0 - start)
        except (av.error.FFmpegError, OSError, IndexError):
            continue
    return None


def _write_file(
    dest: Path, sources: Sequence[tuple[Path, float]], t0: float | None, t1: float | None
) -> None:
    tmp = dest.with_name(dest.name + ".part")
    out = av.open(str(tmp), "w", format="mp4", options={"movflags": "+faststart"})
    try:
        _join(out, sources, t0, t1)
    except BaseException:
        out.close()
        tmp.unlink(missing_ok=True)
        raise
    out.close()
    tmp.replace(dest)


def _join(
    out: av.container.OutputContainer,
    sources: Sequence[tuple[Path, float]],
    t0: float | None,
    t1: float | None,
) -> None:
    """Mux clips (path, wall-clock start) one after another, kept to [t0, t1] when given."""
    outputs: dict[str, av.stream.Stream] = {}
    last_dts: dict[int, Fraction] = {}
    base = Fraction(0)
    for source, start in sources:
        try:
            inp = av.open(str(source))
        except (av.error.FFmpegError, OSError) as err:
            _LOGGER.warning("Skipping unreadable clip %s: %s", source.name, err)
            continue
        with inp:
            begin = None
            if not outputs:
                video = inp.streams.video[:1]
                if not video:
                    continue
                if t0 is not None:  # the first clip with footage: begin on its keyframe
                    begin = _keyframe_at_or_before(source, t0 - start)
                for stream in (*video, *inp.streams.audio[:1]):
                    outputs[stream.type] = add_template_stream(out, stream)
            until = None if t1 is None else t1 - start
            base = _copy(inp, out, outputs, base, last_dts, window=(begin, until))
    _check_some(outputs)


def _keyframe_at_or_before(path: Path, offset: float) -> float:
    """Seconds into a clip of its last video keyframe at or before `offset` (0 if none)."""
    found = Fraction(0)
    with av.open(str(path)) as inp:
        stream = inp.streams.video[0]
        start = Fraction(inp.start_time or 0, 1_000_000)
        for packet in inp.demux(stream):
            if packet.pts is None or packet.time_base is None:
                continue
            at = packet.pts * packet.time_base - start
            if at > offset:
                break
            if packet.is_keyframe:
                found = at
    return float(found)


@dataclass(frozen=True, slots=True)
class Export:
    """A time range of one camera joined into one MP4 (`export_range`)."""

    path: Path
    camera: str
    start: float
    end: float
    size: int


def export_name(t0: float, t1: float) -> str:
    """`<local start>_<seconds>s.mp4`: sorts by time, says how long, and is a valid file name."""
    return time.strftime("%Y%m%d-%H%M%S", time.localtime(t0)) + f"_{round(t1 - t0)}s.mp4"


def export_range(
    storage: Path, camera: str, clips: Sequence[Clip], t0: float, t1: float, *, reserve: int
) -> Export:
    """Join a camera's footage from t0 to t1 into `<storage>/exports/<camera>/`. Blocking.

    `clips` are the camera's indexed clips overlapping the range. The copy needs at most their
    size; it is refused when that would leave less than `reserve` bytes free (retention's floor,
    which protects the disk Home Assistant lives on).
    """
    sources = []
    for clip in clips:
        try:  # (retention may have deleted the oldest meanwhile)
            sources.append((clip_file(storage, clip), clip.start))
        except MediaPathError:
            continue
    if not sources:
        raise NoFootageError(f"No footage of {camera} in the range")
    folder = exports_dir(storage) / camera
    needed = sum(clip.size for clip in clips)
    if free_bytes(storage) - needed < reserve:
        raise StorageError(f"Not enough free space to export {needed} bytes")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise StorageError(f"Cannot create {folder}: {err.strerror}") from err
    dest = free_path(folder / export_name(t0, t1))
    try:
        remux_range(sources, t0, t1, dest)
    except MediaPathError as err:  # no clip could be read
        raise NoFootageError(f"No readable footage of {camera} in the range") from err
    return Export(dest, camera, t0, t1, dest.stat().st_size)


def exports(storage: Path) -> list[tuple[str, str, int]]:
    """Every export as (camera, file name, size), newest first. Blocking."""
    found: list[tuple[float, str, str, int]] = []
    root = exports_dir(storage)
    with contextlib.suppress(FileNotFoundError):
        for folder in root.iterdir():
            if not CAMERA_SLUG.fullmatch(folder.name):
                continue
            with contextlib.suppress(OSError):
                for file in folder.iterdir():
                    if EXPORT_NAME.fullmatch(file.name):
                        with contextlib.suppress(FileNotFoundError):
                            info = file.stat()
                            found.append((info.st_mtime, folder.name, file.name, info.st_size))
    found.sort(reverse=True)
    return [(camera, name, size) for _, camera, name, size in found]


def export_file(storage: Path, camera: str, name: str) -> Path:
    """An export's file, checked to be one inside the exports folder. Blocking."""
    path = inside(exports_dir(storage), check_part(camera, CAMERA_SLUG, "camera"), name)
    if not EXPORT_NAME.fullmatch(name) or not path.is_file():
        raise MediaPathError("no such export")
    return path


def _check_some(outputs: dict[str, av.stream.Stream]) -> None:
    if not outputs:
        raise MediaPathError("no readable clip")


def _copy(
    inp: av.container.InputContainer,
    out: av.container.OutputContainer,
    outputs: dict[str, av.stream.Stream],
    base: Fraction,
    last_dts: dict[int, Fraction],
    *,
    window: tuple[float | None, float | None] = (None, None),
) -> Fraction:
    """Mux one clip's packets shifted to start at `base` (seconds); returns where it ends.

    `window` keeps only packets from `since` to `until` seconds into the clip (either may be
    None); the first kept moment is muxed at `base`.
    """
    streams = [s for s in (*inp.streams.video[:1], *inp.streams.audio[:1]) if s.type in outputs]
    since, until = window
    clip_start = Fraction(inp.start_time or 0, 1_000_000)
    start = clip_start + Fraction(since or 0)
    last = None if until is None else clip_start + Fraction(until)
    end = base
    for packet in inp.demux(*streams):
        if packet.is_corrupt:  # read past the end of a clip cut short: the rest is lost
            _LOGGER.warning("Clip %s is cut short: joined up to its last whole frame", inp.name)
            break
        if packet.dts is None or packet.pts is None or packet.time_base is None:
            continue
        tb = packet.time_base
        at = packet.pts * tb
        if (since is not None and at < start - _SLACK) or (last is not None and at > last + _SLACK):
            continue
        out_stream = outputs[packet.stream.type]
        shift = round((base - start) / tb)
        dts, pts = packet.dts + shift, packet.pts + shift
        previous = last_dts.get(out_stream.index)
        if previous is not None and dts * tb <= previous:
            bump = math.floor((previous - dts * tb) / tb) + 1
            dts, pts = dts + bump, pts + bump
        packet.dts, packet.pts = dts, pts
        last_dts[out_stream.index] = dts * tb
        end = max(end, (dts + (packet.duration or 0)) * tb)
        packet.stream = out_stream
        out.mux_one(packet)
    return end


def keyframe_jpeg(path: Path, offset: float, width: int) -> bytes | None:
    """JPEG of the keyframe at or before `offset` seconds into a clip (its first frame when the
    offset is before it), None when it has no video. Blocking.

    A seek to the keyframe and one decoded frame: a still of any moment within one GOP, without
    decoding the GOP up to it.
    """
    try:
        with av.open(str(path)) as inp:
            if not inp.streams.video:
                return None
            stream = inp.streams.video[0]
            if offset > 0 and stream.time_base:
                target = int(offset / stream.time_base) + (stream.start_time or 0)
                inp.seek(target, stream=stream, backward=True, any_frame=False)
            for frame in inp.decode(stream):
                return encode_jpeg(cast("Image", frame.to_ndarray(format="bgr24")), width)
    except (av.error.FFmpegError, OSError):
        return None
    return None


def first_frame_jpeg(path: Path, width: int) -> bytes | None:
    """JPEG of the first decodable video frame of a clip, None when it has none. Blocking."""
    return keyframe_jpeg(path, 0.0, width)

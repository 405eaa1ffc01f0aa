"""Events: reserve the footage around an incident by hard-linking clips into an event folder.

A capture links the clips already on disk for the pre-roll at once (zero copy, so retention can
delete the recording and the event keeps its inode), then links each clip the recorder closes until
the window end is covered. Persistent recording is an event whose end is unknown until switched off;
motion is an event whose end moves while motion continues. All file work runs in executor threads;
the state that must survive a restart is a plain JSON dict handed to `save_state`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping
import contextlib
from dataclasses import dataclass, field, replace
import errno
import inspect
import logging
import math
import os
from pathlib import Path
import re
import shutil
import threading
import time
from typing import Any, Final, Literal, get_args

from .clips import Clip, ClipIndex
from .errors import (
    CaptureError,
    EventNotFoundError,
    InvalidTriggerError,
    InvalidWindowError,
    LabelTooLongError,
    StorageError,
    UnknownCameraError,
)
from .event import (
    STATE_COMPLETE,
    STATE_RECORDING,
    ClipRecord,
    EventRecord,
    iso_time,
    read_event,
    write_event,
)
from .layout import EVENT_FILE, events_dir, slugify

_LOGGER = logging.getLogger(__name__)

Trigger = Literal["service", "automation", "mqtt", "motion", "persistent"]
TRIGGERS: Final[frozenset[str]] = frozenset(get_args(Trigger))
MAX_WINDOW_SECONDS: Final = 3600.0
MAX_LABEL_LENGTH: Final = 64
STATE_VERSION: Final = 1
DEFAULT_GRACE_SECONDS: Final = 30.0
DEFAULT_GAP_TOLERANCE: Final = 2.0
DEFAULT_WRITE_INTERVAL: Final = 5.0

# Errors after which a hard link can never work on this storage, so a copy is the only way.
_LINK_IMPOSSIBLE: Final = frozenset(
    {errno.EXDEV, errno.EPERM, errno.EMLINK, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS}
)
_CAMERA_SLUG: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_EVENT_ID: Final = re.compile(r"^\d{8}-\d{6}-\d{3}_[a-z0-9-]+$")


@dataclass(frozen=True, slots=True)
class EventInfo:
    """What the glue needs to tell the world about an event (bus event, MQTT, sensors)."""

    event_id: str
    label: str
    trigger: str
    cameras: tuple[str, ...]
    state: str
    path: Path
    start: float
    end: float | None
    persistent: bool
    offline: tuple[str, ...] = ()
    created: float | None = None  # when it was triggered (start is that minus the pre-roll)

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe form for HA's bus and MQTT."""
        return {
            "event_id": self.event_id,
            "label": self.label,
            "trigger": self.trigger,
            "cameras": list(self.cameras),
            "state": self.state,
            "path": str(self.path),
            "start": iso_time(self.start),
            "end": None if self.end is None else iso_time(self.end),
            "persistent": self.persistent,
            "offline": list(self.offline),
            "created": None if self.created is None else iso_time(self.created),
        }


@dataclass(frozen=True, slots=True)
class _Linked:
    """One clip in an event folder; `name` is also the recording's name (names carry the time)."""

    name: str
    size: int
    start: float
    end: float


@dataclass(slots=True)
class _Track:
    """One camera of an event: its window end (None while persistent) and what is linked."""

    camera: str
    end: float | None
    done: bool = False
    timed_out: bool = False
    seen: set[str] = field(default_factory=set)
    linked: list[_Linked] = field(default_factory=list)


@dataclass(eq=False, slots=True)
class _Event:
    """Mutable state of one event; touched only on the event loop."""

    event_id: str
    label: str
    trigger: str
    start: float
    created: float
    tracks: dict[str, _Track]
    path: Path | None = None
    state: str = STATE_RECORDING
    completed: float | None = None
    errors: list[str] = field(default_factory=list)
    pending: list[Clip] = field(default_factory=list)
    dirty: bool = True
    announced: bool = False
    keep: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)  # event.json fields kept as they are
    written_at: float | None = None
    task: asyncio.Task[None] | None = None
    timer: asyncio.TimerHandle | None = None
    flush: asyncio.TimerHandle | None = None

    @property
    def end(self) -> float | None:
        """Window end over all cameras, None while any camera records persistently."""
        ends = [t.end for t in self.tracks.values()]
        if any(e is None for e in ends):
            return None
        return max(e for e in ends if e is not None)

    @property
    def persistent(self) -> bool:
        """Whether some camera still records until switched off."""
        return any(t.end is None for t in self.tracks.values())


def _has_gap(linked: Iterable[_Linked], t0: float, t1: float, tolerance: float) -> bool:
    """Whether [t0, t1] has a hole longer than `tolerance` not covered by the clips."""
    cursor = t0
    for clip in sorted(linked, key=lambda c: c.start):
        if clip.start > cursor + tolerance:
            return True
        cursor = max(cursor, clip.end)
        if cursor >= t1:
            return False
    return cursor < t1 - tolerance


def _with_counter(base_id: str, counter: int) -> str:
    """The counter goes last so a clashing id still sorts after the first one."""
    return f"{base_id}-{counter}" if counter > 1 else base_id


def check_window(value: Any, name: str = "seconds") -> float:
    """A pre/post duration as float, or InvalidWindowError when not a number in 0..3600."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not 0 <= value <= MAX_WINDOW_SECONDS
    ):
        raise InvalidWindowError(f"{name} must be between 0 and {MAX_WINDOW_SECONDS:g}")
    return float(value)


def check_label(label: Any) -> str | None:
    """Printable label (None if empty), or LabelTooLongError beyond 64 characters."""
    if label is None:
        return None
    if not isinstance(label, str):
        raise CaptureError("label must be text")
    cleaned = "".join(ch for ch in label if ch.isprintable()).strip()
    if len(cleaned) > MAX_LABEL_LENGTH:
        raise LabelTooLongError(f"label longer than {MAX_LABEL_LENGTH} characters")
    return cleaned or None


def _write_keep(root: Path, event_id: str, keep: bool) -> bool:
    """Set `keep` in the event.json of an event folder (no symlinks); False if none. Blocking."""
    folder = root / event_id
    if folder.is_symlink() or not folder.is_dir():
        return False
    record = read_event(folder)
    if record is None:
        return False
    if record.keep is not keep:
        write_event(folder, replace(record, keep=keep))
    return True


def _create_folder(root: Path, base_id: str, counter: int) -> tuple[str, Path]:
    """Make a new event folder, bumping the counter if the id exists on disk. Blocking."""
    root.mkdir(parents=True, exist_ok=True)
    resolved_root = root.resolve()
    while True:
        event_id = _with_counter(base_id, counter)
        path = root / event_id
        if path.resolve().parent != resolved_root:
            raise StorageError("Event folder would leave the events folder")
        try:
            path.mkdir()
        except FileExistsError:
            counter += 1
            continue
        return event_id, path


class _Linker:
    """Hard-links clips into event folders, copying only where the file system refuses links."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._warned = False

    def link_all(self, folder: Path, clips: list[Clip]) -> list[tuple[Clip, _Linked | str]]:
        """Link a batch; each result is the linked clip or an error text. Blocking."""
        results: list[tuple[Clip, _Linked | str]] = []
        made: set[str] = set()
        for clip in clips:
            cam_dir = folder / clip.camera
            try:
                if clip.camera not in made:
                    cam_dir.mkdir(exist_ok=True)
                    made.add(clip.camera)
                results.append((clip, self._link(clip, cam_dir / clip.path.name)))
            except FileNotFoundError:
                results.append((clip, f"{clip.camera}/{clip.path.name}: clip missing"))
            except OSError as err:
                results.append((clip, f"{clip.camera}/{clip.path.name}: {err.strerror or err}"))
        return results

    def _link(self, clip: Clip, dest: Path) -> _Linked:
        try:
            os.link(clip.path, dest)
            size = clip.size
        except FileExistsError:
            # Same name in the same camera folder is the same clip (names carry the time):
            # linked before a restart, or by an overlapping extend.
            size = dest.stat().st_size
        except OSError as err:
            if err.errno not in _LINK_IMPOSSIBLE:
                raise
            with self._lock:
                warn, self._warned = not self._warned, True
            if warn:
                _LOGGER.warning(
                    "Hard links are not possible in the storage (%s); events copy clips instead",
                    err.strerror or err,
                )
            tmp = dest.with_name(dest.name + ".part")
            shutil.copy2(clip.path, tmp)
            tmp.replace(dest)
            size = dest.stat().st_size
        return _Linked(dest.name, size, clip.start, clip.end)


class CaptureManager:
    """Opens, feeds and completes events; one per hub storage."""

    def __init__(
        self,
        storage: Path,
        index: ClipIndex,
        *,
        save_state: Callable[[dict[str, Any]], Awaitable[None] | None] | None = None,
        on_event: Callable[[EventInfo], None] | None = None,
        cameras: Callable[[], Collection[str]] | None = None,
        grace_seconds: float = DEFAULT_GRACE_SECONDS,
        gap_tolerance: float = DEFAULT_GAP_TOLERANCE,
        write_interval: float = DEFAULT_WRITE_INTERVAL,
        now: Callable[[], float] = time.time,
    ) -> None:
        """`grace_seconds` should be the segment length plus a margin: how long after its
        window end an event waits for a camera's clip before calling the camera offline.
        `cameras` returns the known camera slugs (None accepts any well-formed slug).
        `write_interval` spaces the rewrites of event.json while recording (links are at once;
        the first and the final write are never delayed).
        """
        self.storage = storage
        self.events_root = events_dir(storage)
        self._index = index
        self._save_state = save_state
        self._on_event = on_event
        self._known = cameras
        self.grace_seconds = grace_seconds
        self.gap_tolerance = gap_tolerance
        self.write_interval = write_interval
        self._now = now
        self._linker = _Linker()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._events: dict[str, _Event] = {}
        self._persistent: dict[str, _Event] = {}
        self._motion: dict[str, _Event] = {}
        self._last: dict[str, _Event] = {}
        self._save_task: asyncio.Task[None] | None = None
        self._save_dirty = False

    # ----------------------------------------------------------------------- lifecycle

    async def start(self, state: Mapping[str, Any] | None = None) -> None:
        """Listen to the index and resume what `state` (from `save_state`) left recording."""
        if self._loop is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._unsubscribe = self._index.add_listener(self._listener)
        events = state.get("events") if isinstance(state, Mapping) else None
        if not isinstance(events, Mapping):
            return
        for event_id, entry in events.items():
            event = self._event_from_state(event_id, entry)
            if event is None:
                _LOGGER.warning("Dropping unreadable saved event %.80r", event_id)
                continue
            await self._resume(event)
        self._schedule_save()

    async def stop(self) -> None:
        """Stop listening and timers, let file work in flight finish, save what is in progress."""
        if self._loop is None:
            return
        self._loop = None
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        for event in self._events.values():
            _cancel_timers(event)
        tasks = [e.task for e in self._events.values() if e.task is not None and not e.task.done()]
        if self._save_task is not None:
            tasks.append(self._save_task)
        await asyncio.gather(*tasks, return_exceptions=True)
        self._save_task = None
        await self._call_save()
        self._events.clear()
        self._persistent.clear()
        self._motion.clear()

    # ----------------------------------------------------------------------- public API

    async def capture(
        self,
        cameras: Iterable[str],
        pre_seconds: float,
        post_seconds: float,
        label: str | None = None,
        trigger: str = "service",
    ) -> EventInfo:
        """Open an event over [now - pre, now + post]; returns once pre-roll and event.json exist."""
        cams = self._check_cameras(cameras)
        pre = check_window(pre_seconds, "pre_seconds")
        post = check_window(post_seconds, "post_seconds")
        text = check_label(label)
        now = self._now()
        event = self._new_event(cams, text, _check_trigger(trigger), now, pre=pre, post=post)
        return await self._open(event)

    async def start_persistent(
        self,
        cameras: Iterable[str],
        label: str | None = None,
        pre_seconds: float = 0.0,
        trigger: str = "persistent",
    ) -> EventInfo:
        """Record the cameras into one event until `stop_persistent`.

        Cameras already recording persistently stay in their event; if all of them are, this is
        a no-op returning the first camera's event.
        """
        cams = self._check_cameras(cameras)
        pre = check_window(pre_seconds, "pre_seconds")
        text = check_label(label)
        trig = _check_trigger(trigger)
        new = [c for c in cams if c not in self._persistent]
        if not new:
            return self._info(self._persistent[cams[0]])
        event = self._new_event(new, text, trig, self._now(), pre=pre, post=None)
        for camera in new:
            self._persistent[camera] = event
        return await self._open(event)

    async def stop_persistent(
        self, cameras: Iterable[str], post_seconds: float = 0.0
    ) -> list[EventInfo]:
        """End persistent recording of the cameras after `post_seconds`; returns touched events."""
        cams = self._check_cameras(cameras, must_be_known=False)
        post = check_window(post_seconds, "post_seconds")
        end = self._now() + post
        touched: dict[str, _Event] = {}
        for camera in cams:
            event = self._persistent.pop(camera, None)
            if event is None:
                continue
            track = event.tracks[camera]
            track.end = end
            track.done = any(c.end >= end for c in track.linked)
            touched[event.event_id] = event
        for event in touched.values():
            self._arm_timer(event)
            self._kick(event)
        self._schedule_save()
        return [self._info(e) for e in touched.values()]

    def extend(self, event_id: str, until: float) -> EventInfo:
        """Move the window end of an event in progress to `until` (never earlier)."""
        event = self._events.get(event_id)
        if event is None or event.state != STATE_RECORDING:
            raise EventNotFoundError(f"No event in progress with id {event_id[:80]!r}")
        if (
            isinstance(until, bool)
            or not isinstance(until, int | float)
            or not math.isfinite(until)
        ):
            raise InvalidWindowError("until must be a time")
        for track in event.tracks.values():
            if track.end is None or until <= track.end:
                continue
            old_end, track.end = track.end, float(until)
            track.done = track.timed_out = False
            # Clips that closed past the old end were passed over; take them now.
            for clip in self._index.covering(track.camera, old_end, track.end):
                self._offer(event, track, clip)
        self._arm_timer(event)
        self._kick(event)
        self._schedule_save()
        return self._info(event)

    async def motion(
        self, camera: str, pre_seconds: float, post_seconds: float, label: str | None = None
    ) -> EventInfo:
        """Open the camera's motion event, or extend it to now + post while it is in progress."""
        (cam,) = self._check_cameras([camera])
        pre = check_window(pre_seconds, "pre_seconds")
        post = check_window(post_seconds, "post_seconds")
        text = check_label(label)
        now = self._now()
        current = self._motion.get(cam)
        if current is not None and current.state == STATE_RECORDING:
            return self.extend(current.event_id, now + post)
        event = self._new_event([cam], text, "motion", now, pre=pre, post=post)
        self._motion[cam] = event
        return await self._open(event)

    def set_keep(self, event_id: str, keep: bool) -> EventInfo:
        """Mark an event in progress as kept; its next event.json write carries the flag.

        Edit event.json directly only once the event is complete: until then the manager
        rewrites the file.
        """
        event = self._events.get(event_id)
        if event is None or event.state != STATE_RECORDING:
            raise EventNotFoundError(f"No event in progress with id {event_id[:80]!r}")
        event.keep = bool(keep)
        event.written_at = None  # written at once, not after the write interval
        self._kick(event)
        return self._info(event)

    async def mark_keep(self, event_id: str, keep: bool) -> bool:
        """Mark any event of the storage as kept (or not); False when there is no such event.

        An event in progress through `set_keep`, a complete one by rewriting its event.json.
        Returns once event.json says so.
        """
        if not _EVENT_ID.fullmatch(event_id):
            return False
        loop = self._running_loop()
        event = self._events.get(event_id)
        if event is not None and event.state == STATE_RECORDING:
            self.set_keep(event_id, keep)
        if event is not None and event.task is not None:
            # Its writer (a final write may be in flight) first, so it cannot undo this one.
            with contextlib.suppress(Exception):
                await asyncio.shield(event.task)
        if event is not None and event.keep is keep and event.event_id in self._events:
            return True
        return await loop.run_in_executor(None, _write_keep, self.events_root, event_id, keep)

    def is_persistent(self, camera: str) -> bool:
        """Whether the camera records persistently now."""
        return camera in self._persistent

    def persistent_cameras(self) -> list[str]:
        """Cameras recording persistently now."""
        return list(self._persistent)

    def active_events(self) -> list[EventInfo]:
        """Events still recording, oldest first."""
        return [self._info(e) for e in self._events.values() if e.state == STATE_RECORDING]

    def last_event(self, camera: str) -> EventInfo | None:
        """The camera's most recent event (in progress or complete) since start."""
        event = self._last.get(camera)
        return None if event is None else self._info(event)

    def state(self) -> dict[str, Any]:
        """Plain JSON of what must survive a restart: events in progress and persistent cameras."""
        return {
            "version": STATE_VERSION,
            "events": {
                e.event_id: {
                    "label": e.label,
                    "trigger": e.trigger,
                    "start": e.start,
                    "created": e.created,
                    "ends": {t.camera: t.end for t in e.tracks.values()},
                }
                for e in self._events.values()
                if e.state == STATE_RECORDING and e.path is not None
            },
            "persistent": {c: e.event_id for c, e in self._persistent.items()},
        }

    # ----------------------------------------------------------------------- validation

    def _check_cameras(self, cameras: Iterable[str], must_be_known: bool = True) -> list[str]:
        if isinstance(cameras, str):
            cameras = [cameras]
        result: list[str] = []
        known = set(self._known()) if self._known is not None and must_be_known else None
        for camera in cameras:
            if not isinstance(camera, str) or not _CAMERA_SLUG.match(camera):
                raise UnknownCameraError(str(camera))
            if known is not None and camera not in known:
                raise UnknownCameraError(camera)
            if camera not in result:
                result.append(camera)
        if not result:
            raise UnknownCameraError("", "No camera given")
        return result

    # ----------------------------------------------------------------------- internals

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise CaptureError("The capture manager is not running")
        return self._loop

    def _new_event(
        self,
        cameras: list[str],
        label: str | None,
        trigger: str,
        now: float,
        *,
        pre: float,
        post: float | None,
    ) -> _Event:
        self._running_loop()
        text = label or trigger
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now)) + f"-{int(now % 1 * 1000):03d}"
        base_id = f"{stamp}_{slugify(text) or 'event'}"
        counter = 1
        # Events still creating their folder are only known here; the disk catches the rest.
        while _with_counter(base_id, counter) in self._events:
            counter += 1
        tracks = {c: _Track(c, None if post is None else now + post) for c in cameras}
        return _Event(_with_counter(base_id, counter), text, trigger, now - pre, now, tracks)

    async def _open(self, event: _Event) -> EventInfo:
        """Register the event, queue its pre-roll from the index, and wait for the first write."""
        # Registration and the index lookup happen in one loop step: a clip closing meanwhile
        # is either in the lookup or delivered after it (duplicates are dropped by name).
        self._events[event.event_id] = event
        for camera, track in event.tracks.items():
            self._last[camera] = event
            for clip in self._index.covering(camera, event.start, track.end or math.inf):
                self._offer(event, track, clip)
        self._arm_timer(event)
        task = self._kick(event)
        with contextlib.suppress(Exception):
            await asyncio.shield(task)
        if event.path is None:
            self._drop(event)
            raise StorageError(event.errors[-1] if event.errors else "Cannot create event folder")
        self._schedule_save()
        return self._info(event)

    async def _resume(self, event: _Event) -> None:
        folder = self.events_root / event.event_id
        record = await self._running_loop().run_in_executor(None, read_event, folder)
        if record is None and not await self._running_loop().run_in_executor(None, folder.is_dir):
            _LOGGER.warning("Event %s vanished while Home Assistant was down", event.event_id)
            return
        event.path = folder
        event.announced = True
        if record is not None:
            self._restore(event, record)
        for camera, track in event.tracks.items():
            if track.end is None:
                self._persistent[camera] = event
            elif event.trigger == "motion":
                self._motion[camera] = event
        await self._open(event)

    def _restore(self, event: _Event, record: EventRecord) -> None:
        """Take back the clip list, errors and unknown fields written before the restart."""
        event.keep = record.keep
        event.errors = list(record.errors)
        event.extra = record.extra
        for camera, track in event.tracks.items():
            for clip in record.clips.get(camera, ()):
                if clip.size is None or clip.start is None or clip.end is None:
                    continue
                track.seen.add(clip.name)
                track.linked.append(_Linked(clip.name, clip.size, clip.start, clip.end))
            if track.end is not None and any(c.end >= track.end for c in track.linked):
                track.done = True

    def _event_from_state(self, event_id: Any, entry: Any) -> _Event | None:
        if not isinstance(event_id, str) or not _EVENT_ID.match(event_id):
            return None
        if not isinstance(entry, Mapping):
            return None
        ends = entry.get("ends")
        start, created = entry.get("start"), entry.get("created")
        label, trigger = entry.get("label"), entry.get("trigger")
        if (
            not isinstance(ends, Mapping)
            or not ends
            or not isinstance(start, int | float)
            or not isinstance(created, int | float)
            or not isinstance(label, str)
            or trigger not in TRIGGERS
        ):
            return None
        tracks: dict[str, _Track] = {}
        for camera, end in ends.items():
            if not isinstance(camera, str) or not _CAMERA_SLUG.match(camera):
                return None
            if end is not None and not isinstance(end, int | float):
                return None
            tracks[camera] = _Track(camera, None if end is None else float(end))
        return _Event(event_id, label, str(trigger), float(start), float(created), tracks)

    def _listener(self, clip: Clip) -> None:
        """Runs in the recorder's thread: hop to the loop."""
        loop = self._loop
        if loop is None:
            return
        with contextlib.suppress(RuntimeError):  # loop closed during shutdown
            loop.call_soon_threadsafe(self._on_clip, clip)

    def _on_clip(self, clip: Clip) -> None:
        if self._loop is None:
            return
        for event in list(self._events.values()):
            track = event.tracks.get(clip.camera)
            if track is None or track.done or event.state != STATE_RECORDING:
                continue
            self._offer(event, track, clip)
            self._kick(event)

    def _offer(self, event: _Event, track: _Track, clip: Clip) -> None:
        """Queue a clip if it overlaps the window; note when the window end is covered."""
        if clip.end < event.start:
            return
        if track.end is not None and clip.start > track.end:
            track.done = True
            return
        if clip.path.name not in track.seen:
            track.seen.add(clip.path.name)
            event.pending.append(clip)
        if track.end is not None and clip.end >= track.end:
            track.done = True

    def _arm_timer(self, event: _Event) -> None:
        """Wake at the earliest window end + grace so an offline camera cannot hold the event."""
        if event.timer is not None:
            event.timer.cancel()
            event.timer = None
        deadlines = [
            t.end + self.grace_seconds
            for t in event.tracks.values()
            if not t.done and t.end is not None
        ]
        if not deadlines or self._loop is None:
            return
        delay = max(0.0, min(deadlines) - self._now())
        event.timer = self._loop.call_later(delay, self._on_deadline, event)

    def _on_deadline(self, event: _Event) -> None:
        event.timer = None
        now = self._now()
        for track in event.tracks.values():
            if not track.done and track.end is not None and track.end + self.grace_seconds <= now:
                track.done = track.timed_out = True
        self._arm_timer(event)
        self._kick(event)

    def _kick(self, event: _Event) -> asyncio.Task[None]:
        """Make sure the event's single writer runs (links and writes stay in order)."""
        event.dirty = True
        if event.task is None or event.task.done():
            event.task = self._running_loop().create_task(
                self._pump(event), name=f"pm_dvr event {event.event_id}"
            )
        return event.task

    def _flush(self, event: _Event) -> None:
        event.flush = None
        if self._loop is not None:
            self._kick(event)

    async def _pump(self, event: _Event) -> None:
        """The event's only writer: each round is one trip to a worker thread."""
        loop = self._running_loop()
        while event.dirty or event.pending:
            event.dirty = False
            batch, event.pending = event.pending, []
            final = event.state == STATE_RECORDING and all(t.done for t in event.tracks.values())
            write = True
            if final:
                event.state, event.completed = STATE_COMPLETE, self._now()
                _cancel_timers(event)
            elif event.written_at is not None:
                # Links at once, but a long persistent event must not rewrite a growing
                # event.json for every clip.
                wait = event.written_at + self.write_interval - loop.time()
                write = wait <= 0
                # Not once stopping: stop() has cancelled the timers and waits for this pump.
                if not write and event.flush is None and self._loop is not None:
                    event.flush = loop.call_later(wait, self._flush, event)
            if not batch and not write:
                continue
            work = _Work(
                self.events_root,
                event.event_id,
                event.path,
                batch,
                _snapshot(event) if write else None,
                final,
            )
            await loop.run_in_executor(None, _do_work, work, self._linker, self.gap_tolerance)
            if work.folder is None:
                event.errors.append(f"cannot create event folder: {work.error}")
                _LOGGER.warning("Cannot create event folder %s: %s", event.event_id, work.error)
                return
            if work.event_id != event.event_id:
                self._events.pop(event.event_id, None)
                event.event_id = work.event_id
                self._events[event.event_id] = event
            event.path = work.folder
            for clip, result in work.results:
                if isinstance(result, str):
                    event.errors.append(result)
                    _LOGGER.warning("Event %s: %s", event.event_id, result)
                else:
                    event.tracks[clip.camera].linked.append(result)
            if work.snapshot is None:
                continue
            if work.error is not None:
                event.errors.append(f"cannot write {EVENT_FILE}: {work.error}")
                _LOGGER.warning(
                    "Event %s: cannot write %s: %s", event.event_id, EVENT_FILE, work.error
                )
            else:
                event.written_at = loop.time()
            if not event.announced:
                event.announced = True
                self._notify(event)
        if event.state == STATE_COMPLETE and event.event_id in self._events:
            self._finish(event)

    def _finish(self, event: _Event) -> None:
        self._drop(event)
        _LOGGER.debug("Event %s complete", event.event_id)
        self._notify(event)
        self._schedule_save()

    def _drop(self, event: _Event) -> None:
        _cancel_timers(event)
        if self._events.get(event.event_id) is event:
            del self._events[event.event_id]
        for registry in (self._persistent, self._motion):
            for camera in [c for c, e in registry.items() if e is event]:
                del registry[camera]
        if event.path is None:
            for camera in [c for c, e in self._last.items() if e is event]:
                del self._last[camera]

    def _notify(self, event: _Event) -> None:
        if self._on_event is None:
            return
        try:
            self._on_event(self._info(event))
        except Exception:
            _LOGGER.exception("on_event callback failed for %s", event.event_id)

    def _info(self, event: _Event) -> EventInfo:
        return EventInfo(
            event_id=event.event_id,
            label=event.label,
            trigger=event.trigger,
            cameras=tuple(event.tracks),
            state=event.state,
            path=event.path or self.events_root / event.event_id,
            start=event.start,
            end=event.end,
            persistent=event.persistent,
            offline=tuple(_offline(event, self.gap_tolerance))
            if event.state == STATE_COMPLETE
            else (),
            created=event.created,
        )

    def _schedule_save(self) -> None:
        if self._save_state is None or self._loop is None:
            return
        self._save_dirty = True
        if self._save_task is None or self._save_task.done():
            self._save_task = self._loop.create_task(self._save_loop(), name="pm_dvr event state")

    async def _save_loop(self) -> None:
        while self._save_dirty:
            self._save_dirty = False
            await self._call_save()

    async def _call_save(self) -> None:
        if self._save_state is None:
            return
        try:
            result = self._save_state(self.state())
            if inspect.isawaitable(result):
                await result
        except Exception:
            _LOGGER.exception("Saving the event state failed")


def _offline(event: _Event, tolerance: float) -> list[str]:
    """Cameras with a hole in their footage (so far, while recording)."""
    offline = []
    for camera, track in event.tracks.items():
        if track.timed_out:
            offline.append(camera)
            continue
        if event.state == STATE_COMPLETE and track.end is not None:
            upto = track.end
        elif track.linked:
            upto = max(c.end for c in track.linked)
            if track.end is not None:
                upto = min(upto, track.end)
        else:
            continue
        if _has_gap(track.linked, event.start, upto, tolerance):
            offline.append(camera)
    return offline


def render_event(event: _Event, tolerance: float) -> EventRecord:
    """What event.json says of an event now."""
    linked = [c for t in event.tracks.values() for c in t.linked]
    return EventRecord(
        event_id=event.event_id,
        label=event.label,
        trigger=event.trigger,
        cameras=tuple(event.tracks),
        requested_start=event.start,
        requested_end=event.end,
        actual_start=min(c.start for c in linked) if linked else None,
        actual_end=max(c.end for c in linked) if linked else None,
        clips={
            camera: tuple(
                ClipRecord(c.name, c.size, c.start, c.end)
                for c in sorted(track.linked, key=lambda c: c.start)
            )
            for camera, track in event.tracks.items()
        },
        offline=tuple(_offline(event, tolerance)),
        state=event.state,
        keep=event.keep,
        errors=tuple(event.errors),
        created=event.created,
        completed=event.completed,
        extra=event.extra,
    )


def _snapshot(event: _Event) -> _Event:
    """A private copy for a worker thread to complete and render while the loop goes on."""
    return _Event(
        event.event_id,
        event.label,
        event.trigger,
        event.start,
        event.created,
        {
            c: _Track(c, t.end, t.done, t.timed_out, linked=list(t.linked))
            for c, t in event.tracks.items()
        },
        path=event.path,
        state=event.state,
        completed=event.completed,
        errors=list(event.errors),
        keep=event.keep,
        extra=event.extra,
    )


@dataclass(slots=True)
class _Work:
    """One trip to a worker thread: make the folder if needed, link, maybe write event.json.

    One trip, not three, because each hop between loop and pool costs more than the syscalls.
    """

    root: Path
    event_id: str
    folder: Path | None
    clips: list[Clip]
    snapshot: _Event | None
    durable: bool
    results: list[tuple[Clip, _Linked | str]] = field(default_factory=list)
    error: str | None = None


def _do_work(work: _Work, linker: _Linker, tolerance: float) -> None:
    """Blocking; fills in `work` (folder None after it means the folder could not be made)."""
    if work.folder is None:
        try:
            work.event_id, work.folder = _create_folder(work.root, work.event_id, 1)
        except (OSError, StorageError) as err:
            work.error = _reason(err)
            return
    if work.clips:
        work.results = linker.link_all(work.folder, work.clips)
    snapshot = work.snapshot
    if snapshot is None:
        return
    snapshot.event_id, snapshot.path = work.event_id, work.folder
    for clip, result in work.results:
        if isinstance(result, str):
            snapshot.errors.append(result)
        else:
            snapshot.tracks[clip.camera].linked.append(result)
    try:
        write_event(work.folder, render_event(snapshot, tolerance), durable=work.durable)
    except OSError as err:
        work.error = _reason(err)


def _cancel_timers(event: _Event) -> None:
    for handle in (event.timer, event.flush):
        if handle is not None:
            handle.cancel()
    event.timer = event.flush = None


def _check_trigger(trigger: str) -> str:
    if trigger not in TRIGGERS:
        raise InvalidTriggerError(f"trigger must be one of {', '.join(sorted(TRIGGERS))}")
    return trigger


def _reason(err: BaseException) -> str:
    if isinstance(err, OSError) and err.strerror:
        return err.strerror
    return str(err)

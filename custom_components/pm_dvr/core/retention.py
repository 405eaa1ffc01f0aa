"""Retention: recordings and events kept under their quotas and ages, and the disk never full.

Users lose disks to cleaners that run once a night, or not at all: here the glue calls `enforce`
every minute and as soon as `on_clip_added` reports a limit exceeded, and every run costs what it
deletes (the clip index is sorted, so nothing is walked or sorted per run).

Space is counted by inode, because event clips are hard links to recordings clips:
- an inode linked from any event counts toward *events*, once, however many links it has;
- *recordings* usage is the bytes of the recordings inodes that no event links, i.e. exactly what
  deleting recordings can free. Dropping the recordings link of a shared clip frees nothing and
  lowers nothing, so the recordings quota can never eat every recording chasing bytes that events
  hold. When an event goes, its inodes still linked in recordings count toward recordings again.

Under the free-space floor (the option, or the largest of 1 GB, 2 % of the disk and 10 minutes of
recording), the oldest recordings no event holds go first, then the oldest events neither kept
nor recording, each logged once by id: footage is lost before the disk Home Assistant may live on
fills. Lasting conditions (low space, an event quota only kept events exceed, files that cannot be
deleted, a storage folder that cannot be opened) are logged when they start and when they change,
never once per run.

Deletion goes through directory descriptors opened with O_NOFOLLOW from the storage folder down,
checks each file with lstat (regular, same inode as indexed) and never follows a symlink: nothing
outside `<storage>/recordings` and `<storage>/events` can be reached. Blocking methods are meant
for an executor thread; one run at a time, while recorder threads keep adding clips.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
import enum
import functools
import logging
import os
from pathlib import Path
import stat
import threading
import time

from .clips import CLIP_SUFFIX, Clip, ClipIndex
from .event import STATE_COMPLETE, read_event
from .layout import EVENT_FILE, EVENTS, RECORDINGS

_LOGGER = logging.getLogger(__name__)

BYTES_PER_GB = 1024**3
DAY_SECONDS = 86400.0
AUTO_FLOOR_MIN_BYTES = BYTES_PER_GB
AUTO_FLOOR_DISK_SHARE = 0.02
AUTO_FLOOR_SECONDS = 600.0
FLOOR_CLEAR_SHARE = 0.25  # low space ends with this share of the floor free above it

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_INDEX_BATCH = 256


@dataclass(frozen=True, slots=True)
class RetentionConfig:
    """Limits of one hub. Sizes in GB (1024**3 bytes); 0 means unlimited or off."""

    max_storage_gb: float
    max_age_days: float = 0
    max_event_storage_gb: float = 0
    max_event_age_days: float = 0
    min_free_gb: float | None = None

    def free_floor_bytes(self, bitrate_bps: float, disk_bytes: int = 0) -> int:
        """Free space to keep: the option, or the largest of 1 GB, 2 % of the disk (`disk_bytes`,
        its size) and 10 minutes at the current bitrate."""
        if self.min_free_gb is not None:
            return max(0, int(self.min_free_gb * BYTES_PER_GB))
        return max(
            AUTO_FLOOR_MIN_BYTES,
            int(disk_bytes * AUTO_FLOOR_DISK_SHARE),
            int(bitrate_bps / 8 * AUTO_FLOOR_SECONDS),
        )


@dataclass(frozen=True, slots=True)
class RetentionResult:
    """What a run did; `low_space_unresolved` stays set until free space is back above the floor.

    `emergency_events` are the ids of the events deleted (also counted in `events_deleted`)
    because free space stayed under the floor with every recording no event holds gone.
    `low_space` is set from the run free space fell under the floor until it is back a quarter
    of the floor above it (a hysteresis, so a disk held at the floor does not come and go).
    """

    files_deleted: int = 0
    bytes_freed: int = 0
    events_deleted: int = 0
    emergency: bool = False
    low_space_unresolved: bool = False
    emergency_events: tuple[str, ...] = ()
    low_space: bool = False


@dataclass(frozen=True, slots=True)
class RetentionUsage:
    """Accounting snapshot for sensors (see the module docstring for shared inodes)."""

    recordings_bytes: int
    events_bytes: int
    shared_bytes: int
    free_bytes: int | None
    free_floor_bytes: int | None  # the floor now (None if the disk cannot be read)
    oldest_recording: float | None
    recordings_count: int
    events_count: int
    events_protected: int
    low_space: bool


@dataclass(slots=True)
class _Event:
    """One indexed event: its files (path in the folder -> inode, size) and what protects it."""

    event_id: str
    state: str
    keep: bool
    when: float
    files: dict[str, tuple[int, int]]

    @property
    def deletable(self) -> bool:
        return self.state == STATE_COMPLETE and not self.keep


@dataclass(slots=True)
class _Tally:
    files: int = 0
    bytes: int = 0
    events: int = 0
    emergency: bool = False
    emergency_events: list[str] = field(default_factory=list)
    # Why files could not be checked or deleted: "<what>: <error>" -> the first file it hit.
    failures: dict[str, str] = field(default_factory=dict)


class _Conditions:
    """Conditions logged when they start and again when they change, never once per run.

    Each has a key and a state (any comparable value, None when the condition is over); a log
    line is written only when the state of a key changes.
    """

    def __init__(self) -> None:
        self._states: dict[str, object] = {}

    def set(self, key: str, state: object, level: int, msg: str, *args: object) -> bool:
        """Log `msg` if `key` was not in `state`; True if it was logged."""
        if state is None or self._states.get(key) == state:
            return False
        self._states[key] = state
        _LOGGER.log(level, msg, *args, stacklevel=2)
        return True

    def active(self, key: str) -> bool:
        """Whether a condition is on."""
        return key in self._states

    def clear(self, key: str, msg: str | None = None, *args: object) -> bool:
        """End a condition, logging `msg` at INFO if it was on; True if it was on."""
        if self._states.pop(key, None) is None:
            return False
        if msg is not None:
            _LOGGER.info(msg, *args, stacklevel=2)
        return True


class _Outcome(enum.Enum):
    DELETED = 1
    FORGOTTEN = 2  # gone or not what was indexed: dropped from the index, nothing touched
    SKIPPED = 3  # kept (error, or shared during an emergency)


class _Tree:
    """Folder descriptors for one run, each opened with O_NOFOLLOW from the storage folder.

    At most one day folder per camera is open: cameras' clips come oldest first, so a day left
    behind is done and is removed right away if empty (unless it is today's, still being written).
    """

    def __init__(self, storage: Path) -> None:
        self.root = os.open(storage, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self._subs: dict[str, int | None] = {}
        self._cameras: dict[str, int | None] = {}
        self._days: dict[str, tuple[str, int | None]] = {}
        self._touched: set[str] = set()
        self._today = time.strftime("%Y-%m-%d")

    def sub(self, name: str) -> int | None:
        """`recordings` or `events`, None if missing or not a real folder."""
        if name not in self._subs:
            self._subs[name] = _open_dir(name, self.root)
        return self._subs[name]

    def day(self, camera: str, day: str) -> int | None:
        """The day folder of a camera (closing and pruning the camera's previous day)."""
        current = self._days.get(camera)
        if current is not None and current[0] == day:
            return current[1]
        if current is not None:
            self._close_day(camera, *current)
        if camera not in self._cameras:
            recordings = self.sub(RECORDINGS)
            self._cameras[camera] = None if recordings is None else _open_dir(camera, recordings)
        camera_fd = self._cameras[camera]
        fd = None if camera_fd is None else _open_dir(day, camera_fd)
        self._days[camera] = (day, fd)
        return fd

    def touch(self, camera: str) -> None:
        """Note a deletion in the camera's open day folder."""
        self._touched.add(camera)

    def _close_day(self, camera: str, day: str, fd: int | None) -> None:
        if fd is None:
            return
        os.close(fd)
        camera_fd = self._cameras.get(camera)
        if camera in self._touched and camera_fd is not None and day < self._today:
            _rmdir(day, camera_fd)

    def close(self) -> None:
        """Prune the last days and emptied cameras, close every descriptor."""
        for camera, (day, fd) in self._days.items():
            self._close_day(camera, day, fd)
        recordings = self._subs.get(RECORDINGS)
        for camera, fd in self._cameras.items():
            if fd is not None:
                os.close(fd)
                if camera in self._touched and recordings is not None:
                    _rmdir(camera, recordings)
        for fd in self._subs.values():
            if fd is not None:
                os.close(fd)
        os.close(self.root)


def _open_dir(name: str, dir_fd: int) -> int | None:
    """A child folder by name, never through a symlink; None if it is not a real folder."""
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    except OSError:
        return None


def _rmdir(name: str, dir_fd: int) -> bool:
    """Remove a folder if it is empty (rmdir never follows a symlink)."""
    try:
        os.rmdir(name, dir_fd=dir_fd)
    except OSError:
        return False
    return True


def _read_event(events_fd: int, event_id: str, events: Path) -> _Event | None:
    """Index one event folder: its regular files one level deep and its event.json.

    A missing or unreadable event.json leaves the event protected (state ""), never deletable.
    `events` names the events folder in warnings; the files are reached through `events_fd`.
    """
    event_fd = _open_dir(event_id, events_fd)
    if event_fd is None:
        return None
    try:
        files: dict[str, tuple[int, int]] = {}
        _index_files(event_fd, "", files)
        with os.scandir(event_fd) as entries:
            subs = [e.name for e in entries if e.is_dir(follow_symlinks=False)]
        for sub in subs:
            sub_fd = _open_dir(sub, event_fd)
            if sub_fd is not None:
                try:
                    _index_files(sub_fd, sub + "/", files)
                finally:
                    os.close(sub_fd)
        record = read_event(events / event_id, dir_fd=event_fd) if EVENT_FILE in files else None
        mtime = os.fstat(event_fd).st_mtime
    finally:
        os.close(event_fd)
    if record is None:
        return _Event(event_id, "", False, mtime, files)
    when = record.completed or record.created or mtime
    return _Event(event_id, record.state, record.keep, when, files)


def _index_files(dir_fd: int, prefix: str, files: dict[str, tuple[int, int]]) -> None:
    with os.scandir(dir_fd) as entries:
        for entry in entries:
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                files[prefix + entry.name] = (st.st_ino, st.st_size)


class Retention:
    """Quota, age and free-space enforcement for one hub's storage folder.

    Call `load()` (in an executor, after `ClipIndex.scan()`), then `enforce()` every minute and
    whenever `on_over_quota` fires; tell it about events with `event_added`/`refresh_event`.
    """

    def __init__(
        self,
        storage: Path,
        index: ClipIndex,
        config: RetentionConfig,
        *,
        on_over_quota: Callable[[], None] | None = None,
    ) -> None:
        self.storage = storage
        self.index = index
        self._config = config
        self._on_over_quota = on_over_quota
        self._recordings_parts = (storage.absolute() / RECORDINGS).parts
        self._events_dir = storage.absolute() / EVENTS
        self._lock = threading.Lock()  # accounting; held briefly, recorder threads take it
        self._run_lock = threading.RLock()  # one run, load or event update at a time
        self._unsubscribe: Callable[[], None] | None = None
        self._bitrate = 0.0
        self._low_space = False
        self._conditions = _Conditions()
        self._failures: frozenset[str] = frozenset()  # kinds of failure of the last run
        self._rec: dict[int | str, int] = {}
        self._event_refs: dict[int, int] = {}
        self._event_sizes: dict[int, int] = {}
        self._events: dict[str, _Event] = {}
        self._rec_bytes = 0
        self._event_bytes = 0
        self._shared_bytes = 0

    @property
    def config(self) -> RetentionConfig:
        """Current limits."""
        return self._config

    def set_config(self, config: RetentionConfig) -> None:
        """New limits (options changed); the next run applies them."""
        self._config = config

    # Start-up and the clip hook

    def load(self) -> None:
        """Build the accounting from the (scanned) clip index and the events on disk. Blocking.

        Subscribes to the index first, so clips closing meanwhile are counted exactly once.
        """
        with self._run_lock:
            events = self._read_all_events()
            with self._lock:
                if self._unsubscribe is None:
                    self._unsubscribe = self.index.add_listener(self._clip_listener)
                rec = self.index.keyed_sizes()  # from the index's arrays, no Clip per clip
                self._rec = rec
                self._rec_bytes = sum(rec.values())
                self._shared_bytes = self._event_bytes = 0
                self._event_refs, self._event_sizes, self._events = {}, {}, {}
                for event in events:
                    self._set_event(event.event_id, event)

    def close(self) -> None:
        """Stop listening to the index."""
        with self._lock:
            unsubscribe, self._unsubscribe = self._unsubscribe, None
        if unsubscribe is not None:
            unsubscribe()

    def on_clip_added(self, clip: Clip) -> bool:
        """Count a clip that just closed; True if a limit is exceeded and a run should follow.

        Called from recorder threads (through the index listener): a dict update and, only to
        watch free space, one statvfs.
        """
        with self._lock:
            self._rec_add(clip.inode or str(clip.path), clip.size)
        return self.over_quota()

    def _clip_listener(self, clip: Clip) -> None:
        if self.on_clip_added(clip) and self._on_over_quota is not None:
            self._on_over_quota()

    def over_quota(self) -> bool:
        """Cheap check: would a run delete something now (quota, age or low free space)?"""
        config, now = self._config, time.time()
        with self._lock:
            if 0 < config.max_storage_gb * BYTES_PER_GB < self._rec_bytes:
                return True
            deletable = [e.when for e in self._events.values() if e.deletable]
            if deletable and 0 < config.max_event_storage_gb * BYTES_PER_GB < self._event_bytes:
                return True
        if (
            deletable
            and config.max_event_age_days > 0
            and min(deletable) < now - config.max_event_age_days * DAY_SECONDS
        ):
            return True
        if config.max_age_days > 0:
            cutoff = now - config.max_age_days * DAY_SECONDS
            if any(head.end < cutoff for head in self.index.heads()):
                return True
        space = self._disk_space()
        return space is not None and space[0] < config.free_floor_bytes(self._bitrate, space[1])

    # Events

    def event_added(self, path: Path) -> bool:
        """Index a new event (its folder or its event.json); False if not an event folder."""
        folder = path.parent if path.name == EVENT_FILE else path
        folder = folder.absolute()
        if folder.parent != self._events_dir or ".." in folder.parts:
            _LOGGER.warning("Not an event folder of %s: %s", self.storage, path)
            return False
        return self.refresh_event(folder.name)

    def refresh_event(self, event_id: str) -> bool:
        """Re-read an event (completed, kept, clips linked); False if it no longer exists."""
        if event_id in ("", ".", "..") or "/" in event_id:
            return False
        with self._run_lock:
            event = self._load_event(event_id)
            with self._lock:
                self._set_event(event_id, event)
        return event is not None

    def event_removed(self, event_id: str) -> None:
        """Forget an event the glue deleted itself."""
        with self._run_lock, self._lock:
            self._set_event(event_id, None)

    def _load_event(self, event_id: str) -> _Event | None:
        try:
            root = os.open(self.storage, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            events_fd = _open_dir(EVENTS, root)
            if events_fd is None:
                return None
            try:
                return _read_event(events_fd, event_id, self._events_dir)
            finally:
                os.close(events_fd)
        finally:
            os.close(root)

    def _read_all_events(self) -> list[_Event]:
        try:
            root = os.open(self.storage, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            return []
        events: list[_Event] = []
        try:
            events_fd = _open_dir(EVENTS, root)
            if events_fd is None:
                return []
            try:
                with os.scandir(events_fd) as entries:
                    ids = [
                        e.name
                        for e in entries
                        if not e.name.startswith(".") and e.is_dir(follow_symlinks=False)
                    ]
                for event_id in ids:
                    event = _read_event(events_fd, event_id, self._events_dir)
                    if event is not None:
                        events.append(event)
            finally:
                os.close(events_fd)
        finally:
            os.close(root)
        return events

    # Accounting (callers hold self._lock)

    def _rec_add(self, key: int | str, size: int) -> None:
        if key in self._rec:
            return
        self._rec[key] = size
        if key in self._event_refs:
            self._shared_bytes += size
        else:
            self._rec_bytes += size

    def _rec_drop(self, key: int | str) -> int | None:
        size = self._rec.pop(key, None)
        if size is None:
            return None
        if key in self._event_refs:
            self._shared_bytes -= size
        else:
            self._rec_bytes -= size
        return size

    def _set_event(self, event_id: str, event: _Event | None) -> None:
        old = self._events.pop(event_id, None)
        if old is not None:
            for inode, _size in old.files.values():
                self._event_unlink(inode)
        if event is not None:
            for inode, size in event.files.values():
                self._event_link(inode, size)
            self._events[event_id] = event

    def _event_link(self, inode: int, size: int) -> None:
        refs = self._event_refs.get(inode, 0)
        self._event_refs[inode] = refs + 1
        if refs:
            return
        self._event_sizes[inode] = size
        self._event_bytes += size
        rec = self._rec.get(inode)
        if rec is not None:
            self._rec_bytes -= rec
            self._shared_bytes += rec

    def _event_unlink(self, inode: int) -> None:
        refs = self._event_refs[inode] - 1
        if refs:
            self._event_refs[inode] = refs
            return
        del self._event_refs[inode]
        self._event_bytes -= self._event_sizes.pop(inode)
        rec = self._rec.get(inode)
        if rec is not None:
            self._rec_bytes += rec
            self._shared_bytes -= rec

    # Runs

    def enforce(self, bitrate_bps: float | None = None) -> RetentionResult:
        """Apply every limit now. Blocking; never raises on file-system errors.

        `bitrate_bps` is the current total recording bitrate (bits/s), for the automatic floor.
        """
        return self._run(None, bitrate_bps)

    def cleanup(
        self, target_gb: float | None = None, bitrate_bps: float | None = None
    ) -> RetentionResult:
        """Run retention now; `target_gb` shrinks recordings further, this once."""
        target = None if target_gb is None else max(0, int(target_gb * BYTES_PER_GB))
        return self._run(target, bitrate_bps)

    async def async_enforce(self, bitrate_bps: float | None = None) -> RetentionResult:
        """`enforce` in the default executor."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self.enforce, bitrate_bps)

    async def async_cleanup(
        self, target_gb: float | None = None, bitrate_bps: float | None = None
    ) -> RetentionResult:
        """`cleanup` in the default executor."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            None, functools.partial(self.cleanup, target_gb, bitrate_bps)
        )

    def _run(self, target: int | None, bitrate_bps: float | None) -> RetentionResult:
        if bitrate_bps is not None:
            self._bitrate = bitrate_bps
        tally = _Tally()
        with self._run_lock:
            now = time.time()
            try:
                tree = _Tree(self.storage)
            except OSError as err:
                self._conditions.set(
                    "open",
                    err.strerror or str(err),
                    logging.WARNING,
                    "Retention cannot open %s: %s",
                    self.storage,
                    err,
                )
                return RetentionResult(
                    low_space_unresolved=self._low_space,
                    low_space=self._conditions.active("low_space"),
                )
            self._conditions.clear("open", "Retention can open %s again", self.storage)
            try:
                self._enforce_events(tree, tally, now)
                self._enforce_recordings(tree, tally, now, target)
                self._emergency(tree, tally)
            finally:
                tree.close()
            self._report_failures(tally)
        if tally.files:
            _LOGGER.debug(
                "Retention deleted %d files (%d events), freed %d bytes",
                tally.files,
                tally.events,
                tally.bytes,
            )
        return RetentionResult(
            tally.files,
            tally.bytes,
            tally.events,
            tally.emergency,
            self._low_space,
            tuple(tally.emergency_events),
            self._conditions.active("low_space"),
        )

    def _report_failures(self, tally: _Tally) -> None:
        """Log each kind of failure once, when it first shows, not on every run it repeats.

        A run that tried nothing says nothing: the failures end with a run that deleted files
        without any.
        """
        kinds = frozenset(tally.failures)
        if not kinds and not tally.files:
            return
        for kind in sorted(kinds - self._failures):
            _LOGGER.warning(
                "Retention %s (%s); more files failing so are logged only once it changes",
                kind,
                tally.failures[kind],
            )
        if self._failures and not kinds:
            _LOGGER.info("Retention deletes files again")
        self._failures = kinds

    def _enforce_events(self, tree: _Tree, tally: _Tally, now: float) -> None:
        config = self._config
        quota = int(config.max_event_storage_gb * BYTES_PER_GB)
        cutoff = now - config.max_event_age_days * DAY_SECONDS
        if quota <= 0 and config.max_event_age_days <= 0:
            self._conditions.clear("event_quota")
            return
        with self._lock:
            candidates = sorted((e.when, e.event_id) for e in self._events.values() if e.deletable)
        for when, event_id in candidates:
            with self._lock:
                over = 0 < quota < self._event_bytes
            if not over and not (config.max_event_age_days > 0 and when < cutoff):
                break
            self._delete_event(tree, event_id, tally)
        with self._lock:
            event_bytes = self._event_bytes
        if 0 < quota < event_bytes:
            self._conditions.set(
                "event_quota",
                True,
                logging.WARNING,
                "Events take %d bytes, over their quota of %d: the rest are kept, still "
                "recording or could not be deleted",
                event_bytes,
                quota,
            )
        else:
            self._conditions.clear("event_quota", "Events are back under their quota")

    def _delete_event(self, tree: _Tree, event_id: str, tally: _Tally) -> None:
        """Delete an event's indexed files, event.json last, then its emptied folders.

        The event is re-read first: a `keep` set or a state changed on disk is honoured even if
        the glue has not said so yet, and only what is on disk now, checked, is unlinked.
        """
        events_fd = tree.sub(EVENTS)
        event = None if events_fd is None else _read_event(events_fd, event_id, self._events_dir)
        if event is None or not event.deletable or events_fd is None:
            with self._lock:
                self._set_event(event_id, event)
            return
        event_fd = _open_dir(event_id, events_fd)
        if event_fd is None:
            return
        try:
            names = sorted(event.files, key=lambda name: name == EVENT_FILE)
            subs: dict[str, int | None] = {}
            failed = False
            for name in names:
                sub, _, base = name.rpartition("/")
                if sub and sub not in subs:
                    subs[sub] = _open_dir(sub, event_fd)
                dir_fd = subs[sub] if sub else event_fd
                if name == EVENT_FILE and failed:
                    break  # keep the event whole and deletable: the next run retries
                outcome = _Outcome.SKIPPED
                if dir_fd is not None:
                    outcome = self._unlink_checked(dir_fd, base, event.files[name][0], tally)
                failed = failed or outcome is _Outcome.SKIPPED
                if name == EVENT_FILE and outcome is _Outcome.DELETED:
                    tally.events += 1  # no longer an event, even if a symlink keeps the folder
            for sub, fd in subs.items():
                if fd is not None:
                    os.close(fd)
                    _rmdir(sub, event_fd)
        finally:
            os.close(event_fd)
        remaining = (
            None
            if _rmdir(event_id, events_fd)
            else _read_event(events_fd, event_id, self._events_dir)
        )
        with self._lock:
            self._set_event(event_id, remaining)

    def _enforce_recordings(
        self, tree: _Tree, tally: _Tally, now: float, target: int | None
    ) -> None:
        config = self._config
        limit = int(config.max_storage_gb * BYTES_PER_GB) if config.max_storage_gb > 0 else None
        if target is not None:
            limit = target if limit is None else min(limit, target)
        aging = config.max_age_days > 0
        cutoff = now - config.max_age_days * DAY_SECONDS
        if limit is None and not aging:
            return
        done: list[Clip] = []
        for clip in self.index.oldest():
            with self._lock:
                over = limit is not None and self._rec_bytes > limit
            if not over and not (aging and clip.end < cutoff):
                if not aging or clip.start >= cutoff:
                    break
                continue
            if self._delete_clip(tree, clip, tally, exclusive_only=False) is not _Outcome.SKIPPED:
                done.append(clip)
                if len(done) >= _INDEX_BATCH:
                    self.index.remove_many(done)
                    done.clear()
        self.index.remove_many(done)

    def _emergency(self, tree: _Tree, tally: _Tally) -> None:
        """Below the free-space floor: delete the oldest recordings only events do not hold, then,
        if that is not enough, the oldest events not kept nor recording, until above the floor.

        Low space is logged when it starts, when it turns unresolved and when it ends, not per
        run. It ends with free space a quarter of the floor above it: held at the floor by
        emergency runs, free space goes just above it between clips, which changes nothing.
        """
        space = self._disk_space()
        if space is None:
            return
        free, disk = space
        floor = self._config.free_floor_bytes(self._bitrate, disk)
        if free >= floor:
            self._low_space = False
            self._conditions.clear("unresolved")
            if free >= floor + floor * FLOOR_CLEAR_SHARE:
                self._conditions.clear(
                    "low_space", "Free space on %s is back above the floor", self.storage
                )
            return
        tally.emergency = True
        self._conditions.set(
            "low_space",
            True,
            logging.WARNING,
            "Free space on %s (%d bytes) is under the floor of %d: deleting the oldest "
            "recordings early, then the oldest events not kept if that is not enough",
            self.storage,
            free,
            floor,
        )
        free = self._emergency_recordings(tree, tally, floor)
        if free < floor:
            free = self._emergency_events(tree, tally, floor)
        self._low_space = free < floor
        if self._low_space:
            self._conditions.set(
                "unresolved",
                True,
                logging.WARNING,
                "Free space on %s is still under the floor: kept events, events still recording "
                "or other files fill the disk",
                self.storage,
            )
        else:
            self._conditions.clear("unresolved")

    def _emergency_recordings(self, tree: _Tree, tally: _Tally, floor: int) -> int:
        """Delete the oldest recordings no event holds until free space reaches `floor`."""
        free = self._free_bytes() or 0
        done: list[Clip] = []
        for clip in self.index.oldest():
            if free >= floor:
                break
            with self._lock:
                shared = clip.inode in self._event_refs
            if shared:
                continue
            outcome = self._delete_clip(tree, clip, tally, exclusive_only=True)
            if outcome is not _Outcome.SKIPPED:
                done.append(clip)
            if outcome is _Outcome.DELETED:
                free = self._free_bytes() or 0
        self.index.remove_many(done)
        return free

    def _emergency_events(self, tree: _Tree, tally: _Tally, floor: int) -> int:
        """Delete the oldest deletable events until free space reaches `floor`, each logged once.

        An event's clips still linked in recordings free nothing with it; they become recordings
        no event holds, deleted right after it.
        """
        with self._lock:
            candidates = sorted((e.when, e.event_id) for e in self._events.values() if e.deletable)
        free = self._free_bytes() or 0
        for _when, event_id in candidates:
            if free >= floor:
                break
            with self._lock:
                event = self._events.get(event_id)
                shared = event is not None and any(
                    inode in self._rec for inode, _size in event.files.values()
                )
            deleted = tally.events
            self._delete_event(tree, event_id, tally)
            if tally.events == deleted:
                continue
            tally.emergency_events.append(event_id)
            _LOGGER.warning(
                "Deleted event %s: free space on %s was under the floor of %d bytes with every "
                "recording no event holds already deleted",
                event_id,
                self.storage,
                floor,
            )
            free = (
                self._emergency_recordings(tree, tally, floor)
                if shared
                else self._free_bytes() or 0
            )
        return free

    def _delete_clip(
        self, tree: _Tree, clip: Clip, tally: _Tally, *, exclusive_only: bool
    ) -> _Outcome:
        """Unlink one recordings clip if it still is the regular file indexed; update accounting.

        The clip leaves the accounting *before* the unlink: a clip closing right after it may
        reuse the freed inode number, and must then be counted as new, not as this one.
        """
        key = clip.inode or str(clip.path)
        with self._lock:
            size = self._rec_drop(key)
        parts = self._clip_parts(clip)
        outcome = _Outcome.FORGOTTEN
        if parts is None:
            _LOGGER.warning("Not deleting %s: not a clip path under %s", clip.path, self.storage)
        else:
            camera, day, name = parts
            dir_fd = tree.day(camera, day)
            if dir_fd is not None:
                outcome = self._unlink_checked(
                    dir_fd, name, clip.inode, tally, exclusive_only=exclusive_only
                )
                if outcome is _Outcome.DELETED:
                    tree.touch(camera)
        if outcome is _Outcome.SKIPPED and size is not None:
            with self._lock:
                self._rec_add(key, size)
        return outcome

    def _clip_parts(self, clip: Clip) -> tuple[str, str, str] | None:
        """`(camera, day, name)` of a clip path right under `<storage>/recordings`, else None."""
        parts = clip.path.absolute().parts
        root = self._recordings_parts
        if len(parts) != len(root) + 3 or parts[: len(root)] != root:
            return None
        camera, day, name = parts[len(root) :]
        if ".." in (camera, day, name) or not name.endswith(CLIP_SUFFIX):
            return None
        return camera, day, name

    @staticmethod
    def _unlink_checked(
        dir_fd: int, name: str, inode: int, tally: _Tally, *, exclusive_only: bool = False
    ) -> _Outcome:
        """Unlink `name` in `dir_fd` only if it is a regular file with the indexed inode."""
        try:
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            return _Outcome.FORGOTTEN
        except OSError as err:
            tally.failures.setdefault(f"cannot check files: {err.strerror or err}", name)
            return _Outcome.SKIPPED
        if not stat.S_ISREG(st.st_mode) or (inode and st.st_ino != inode):
            return _Outcome.FORGOTTEN
        if exclusive_only and st.st_nlink > 1:
            return _Outcome.SKIPPED
        try:
            os.unlink(name, dir_fd=dir_fd)
        except FileNotFoundError:
            return _Outcome.FORGOTTEN
        except OSError as err:
            tally.failures.setdefault(f"cannot delete files: {err.strerror or err}", name)
            return _Outcome.SKIPPED
        tally.files += 1
        if st.st_nlink == 1:
            tally.bytes += st.st_size
        return _Outcome.DELETED

    # Stats

    def _disk_space(self) -> tuple[int, int] | None:
        """(free bytes, disk size) of the storage's file system, None if it cannot be read."""
        try:
            st = os.statvfs(self.storage)
        except OSError:
            return None
        return st.f_bavail * st.f_frsize, st.f_blocks * st.f_frsize

    def _free_bytes(self) -> int | None:
        space = self._disk_space()
        return None if space is None else space[0]

    def usage(self) -> RetentionUsage:
        """Bytes and counts for sensors. Blocking (one statvfs)."""
        space = self._disk_space()
        free = None if space is None else space[0]
        floor = None if space is None else self._config.free_floor_bytes(self._bitrate, space[1])
        with self._lock:
            protected = sum(1 for e in self._events.values() if not e.deletable)
            counts = (self._rec_bytes, self._event_bytes, self._shared_bytes, len(self._events))
        return RetentionUsage(
            recordings_bytes=counts[0],
            events_bytes=counts[1],
            shared_bytes=counts[2],
            free_bytes=free,
            free_floor_bytes=floor,
            oldest_recording=self.index.oldest_start(),
            recordings_count=self.index.count(),
            events_count=counts[3],
            events_protected=protected,
            low_space=self._low_space,
        )

"""The event.json of an event folder: one model, one reader, one writer.

Capture writes it; retention, the media browser, sync and capture itself (on resume and when an
event is kept) read it. Keeping the format in one place means a field added here is read and
kept by every one of them. The reader is tolerant: a file written by an older pm_dvr (no
`version`), a newer one (fields it does not know, kept in `extra` and written back as they
were), or half-garbled (wrong types read as absent) still reads. A file that is not JSON at all
reads as None, with one warning per file rather than one per listing.

    {"id", "label", "trigger", "cameras": [...], "requested": {"start", "end"},
     "actual": {"start", "end"}, "clips": {camera: [{"name", "size", "start", "end"}]},
     "offline": [...], "state", "keep", "errors": [...], "created", "completed", "version"}

Times are ISO 8601 with the local UTC offset, to the millisecond; the model holds epoch seconds.
"""

from __future__ import annotations

from collections.abc import Mapping
import contextlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
import errno
import json
import logging
import os
from pathlib import Path
import secrets
import threading
from typing import Any, Final

from .layout import EVENT_FILE

_LOGGER = logging.getLogger(__name__)

EVENT_VERSION: Final = 1
STATE_RECORDING: Final = "recording"
STATE_COMPLETE: Final = "complete"  # retention may delete it (unless kept), sync uploads it
# A persistent event of a month of 10-s clips is about 30 MB; anything far beyond is not ours.
MAX_EVENT_BYTES: Final = 64 * 1024**2
_KNOWN: Final = frozenset(
    {
        "id",
        "label",
        "trigger",
        "cameras",
        "requested",
        "actual",
        "clips",
        "offline",
        "state",
        "keep",
        "errors",
        "created",
        "completed",
        "version",
    }
)
_WARNED_MAX: Final = 1024


def iso_time(timestamp: float) -> str:
    """ISO 8601 in local time with its UTC offset, to the millisecond."""
    return datetime.fromtimestamp(timestamp, tz=UTC).astimezone().isoformat(timespec="milliseconds")


def parse_time(value: object) -> float | None:
    """ISO 8601 to epoch seconds (naive means local time); None if absent or not a time."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class ClipRecord:
    """One clip linked into the event; size and times are None when the file lacks them."""

    name: str
    size: int | None = None
    start: float | None = None
    end: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON form, as event.json stores it."""
        return {
            "name": self.name,
            "size": self.size,
            "start": _iso_or_none(self.start),
            "end": _iso_or_none(self.end),
        }


@dataclass(frozen=True, slots=True)
class EventRecord:
    """What event.json says of one event. `extra` holds the fields this version does not know."""

    event_id: str
    label: str = ""
    trigger: str = ""
    cameras: tuple[str, ...] = ()
    requested_start: float | None = None
    requested_end: float | None = None
    actual_start: float | None = None
    actual_end: float | None = None
    clips: Mapping[str, tuple[ClipRecord, ...]] = field(default_factory=dict)
    offline: tuple[str, ...] = ()
    state: str = ""
    keep: bool = False
    errors: tuple[str, ...] = ()
    created: float | None = None
    completed: float | None = None
    version: int = EVENT_VERSION
    extra: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON form, as event.json stores it (the known fields first, then `extra`)."""
        doc: dict[str, Any] = {
            "id": self.event_id,
            "label": self.label,
            "trigger": self.trigger,
            "cameras": list(self.cameras),
            "requested": {
                "start": _iso_or_none(self.requested_start),
                "end": _iso_or_none(self.requested_end),
            },
            "actual": {
                "start": _iso_or_none(self.actual_start),
                "end": _iso_or_none(self.actual_end),
            },
            "clips": {
                camera: [clip.as_dict() for clip in clips] for camera, clips in self.clips.items()
            },
            "offline": list(self.offline),
            "state": self.state,
            "keep": self.keep,
            "errors": list(self.errors),
            "created": _iso_or_none(self.created),
            "completed": _iso_or_none(self.completed),
            "version": self.version,
        }
        doc.update((key, value) for key, value in self.extra.items() if key not in _KNOWN)
        return doc


def _iso_or_none(timestamp: float | None) -> str | None:
    return None if timestamp is None else iso_time(timestamp)


def _texts(value: object) -> tuple[str, ...]:
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _clips(value: object) -> dict[str, tuple[ClipRecord, ...]]:
    if not isinstance(value, dict):
        return {}
    clips: dict[str, tuple[ClipRecord, ...]] = {}
    for camera, entries in value.items():
        if not isinstance(camera, str) or not isinstance(entries, list):
            continue
        clips[camera] = tuple(
            ClipRecord(
                entry["name"],
                _int(entry.get("size")),
                parse_time(entry.get("start")),
                parse_time(entry.get("end")),
            )
            for entry in entries
            if isinstance(entry, dict) and isinstance(entry.get("name"), str)
        )
    return clips


def event_from_dict(doc: Mapping[str, Any], event_id: str) -> EventRecord:
    """The record of a parsed event.json; `event_id` (its folder's name) when it has no id.

    Fields of the wrong type read as absent; unknown fields go to `extra`.
    """
    requested = doc.get("requested")
    requested = requested if isinstance(requested, dict) else {}
    actual = doc.get("actual")
    actual = actual if isinstance(actual, dict) else {}
    clips = _clips(doc.get("clips"))
    cameras = doc.get("cameras")
    doc_id, label, trigger, state = (doc.get(k) for k in ("id", "label", "trigger", "state"))
    version = _int(doc.get("version"))
    errors = doc.get("errors")
    return EventRecord(
        event_id=doc_id if isinstance(doc_id, str) and doc_id else event_id,
        label=label if isinstance(label, str) else "",
        trigger=trigger if isinstance(trigger, str) else "",
        cameras=_texts(cameras) if isinstance(cameras, list) else tuple(clips),
        requested_start=parse_time(requested.get("start")),
        requested_end=parse_time(requested.get("end")),
        actual_start=parse_time(actual.get("start")),
        actual_end=parse_time(actual.get("end")),
        clips=clips,
        offline=_texts(doc.get("offline")),
        state=state if isinstance(state, str) else "",
        keep=doc.get("keep") is True,
        errors=tuple(str(e) for e in errors) if isinstance(errors, list) else (),
        created=parse_time(doc.get("created")),
        completed=parse_time(doc.get("completed")),
        # No version: written before versions were (the same fields as version 1).
        version=EVENT_VERSION if version is None or version < EVENT_VERSION else version,
        extra={key: value for key, value in doc.items() if key not in _KNOWN},
    )


# ----------------------------------------------------------------------------- reading


class _Warnings:
    """One warning per file and problem, not one per listing (media lists on every click)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[str, set[str]] = {}

    def warn(self, path: Path, problem: str, detail: object) -> None:
        with self._lock:
            problems = self._seen.get(str(path))
            if problems is not None and problem in problems:
                return
            if problems is None:
                if len(self._seen) >= _WARNED_MAX:
                    self._seen.clear()
                problems = self._seen[str(path)] = set()
            problems.add(problem)
        _LOGGER.warning("%s: %s (%s)", path, problem, detail)

    def forget(self, path: Path) -> None:
        """The file reads well again: its next problem is news."""
        if self._seen:
            with self._lock:
                self._seen.pop(str(path), None)


_WARNINGS = _Warnings()


def read_event(folder: Path, *, dir_fd: int | None = None) -> EventRecord | None:
    """The event.json of an event folder; None when it has none or it is not an event.json.

    With `dir_fd` (the folder opened by the caller), the file is opened relative to it and
    `folder` only names it. Never follows a symlink to the file. Blocking.
    """
    path = folder / EVENT_FILE
    try:
        fd = os.open(
            EVENT_FILE if dir_fd is not None else path,
            os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC,
            dir_fd=dir_fd,
        )
        with os.fdopen(fd, "rb") as file:
            data = file.read(MAX_EVENT_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as err:
        # ELOOP: a symlink where the file should be.
        _WARNINGS.warn(path, "cannot read", errno.errorcode.get(err.errno or 0, err))
        return None
    if len(data) > MAX_EVENT_BYTES:
        _WARNINGS.warn(path, "too large to be an event.json", f"over {MAX_EVENT_BYTES} bytes")
        return None
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError) as err:
        _WARNINGS.warn(path, "not valid JSON, ignored", str(err)[:100])
        return None
    if not isinstance(doc, dict):
        _WARNINGS.warn(path, "not a JSON object, ignored", type(doc).__name__)
        return None
    version = _int(doc.get("version"))
    if "version" in doc and (version is None or version > EVENT_VERSION):
        _WARNINGS.warn(path, "of an unknown version, read as far as known", doc["version"])
    else:
        _WARNINGS.forget(path)
    return event_from_dict(doc, folder.name)


# ----------------------------------------------------------------------------- writing


def write_event(folder: Path, record: EventRecord, *, durable: bool = True) -> None:
    """Replace the folder's event.json at once, so readers never see half a file. Blocking.

    The new file is written beside it under a fresh name (never through a planted symlink) and
    renamed over it; `durable` also syncs file and folder, so a power cut leaves the old file or
    the new one. Raises OSError, and leaves no temporary file behind.
    """
    data = json.dumps(record.as_dict(), indent=2, ensure_ascii=False).encode()
    tmp = folder / f".{EVENT_FILE}.{secrets.token_hex(4)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            if durable:
                file.flush()
                os.fsync(file.fileno())
        tmp.replace(folder / EVENT_FILE)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    if durable:
        _sync_folder(folder)


def _sync_folder(folder: Path) -> None:
    """Make the rename itself durable (best effort: not every file system allows it)."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)

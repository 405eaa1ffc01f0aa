"""The disk side of a camera's recorder: every file operation, in order, in a thread of its own.

The recorder muxes in the camera's session thread into a `Spool` (bytes, never a file), and
this writer puts those bytes on disk: open, write, close, rename, date, stat, and the index's
listeners (retention's free-space check among them). A NAS share that stalls or a USB disk
spinning up then only grows the writer's backlog; the camera is still read on time. The
recorder asks `backlog_seconds` at each keyframe and drops whole GOPs once it passes the
buffer (`BUFFER_SECONDS`), so memory stays bounded.

Bytes reach the OS as soon as the writer is not stalled, so the crash-safety promise (about a
second of footage lost on a power cut) holds as before.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
import contextlib
from dataclasses import dataclass, field
import enum
import logging
import os
from pathlib import Path
import threading
import time

from .clips import PART_SUFFIX

_LOGGER = logging.getLogger(__name__)

# How much a stalled disk may hold back before video is dropped: longer than a USB disk takes
# to spin up or a NAS to fail over, short enough to stay a few MB per camera.
BUFFER_SECONDS = 30.0
# The same bound in bytes, for cameras far above the usual 2-8 Mbit/s.
BUFFER_BYTES = 64 * 1024 * 1024
# How long stopping waits for a stalled disk before it gives the backlog up.
STOP_TIMEOUT = 10.0


def free_path(path: Path) -> Path:
    """`path`, or `path` with -1, -2 ... when that name (or its .part) already exists."""
    candidate = path
    n = 0
    while candidate.exists() or candidate.with_name(candidate.name + PART_SUFFIX).exists():
        n += 1
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
    return candidate


class Disk:
    """The file operations of a clip; tests subclass it to make the disk stall or fail."""

    def open(self, part: Path) -> int:
        """Create the `.part` file (and its day folder) for writing."""
        part.parent.mkdir(parents=True, exist_ok=True)
        return os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)

    def write(self, fd: int, data: bytes) -> None:
        """Write all of `data` (a short write is retried with the rest)."""
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]

    def close(self, fd: int) -> None:
        """Close the file."""
        os.close(fd)

    def finish(self, part: Path, final: Path, end: float) -> os.stat_result:
        """Rename a closed part to its clip name, dated by its end."""
        final.parent.mkdir(parents=True, exist_ok=True)
        part.rename(final)
        os.utime(final, (end, end))
        return final.stat()

    def remove(self, part: Path) -> None:
        """Delete a part that holds no footage."""
        part.unlink(missing_ok=True)


class _Op(enum.Enum):
    OPEN = enum.auto()
    WRITE = enum.auto()
    FINISH = enum.auto()
    DISCARD = enum.auto()


@dataclass(eq=False, slots=True)
class ClipFile:
    """One clip on its way to disk. `wanted` is its name by its start when it was opened."""

    wanted: Path
    part: Path | None = None
    fd: int = -1
    failed: bool = False
    written: int = 0


@dataclass(frozen=True, slots=True)
class Finish:
    """How a clip ends: its final start (moved back since it was named) and end, and whom to tell.

    `done` gets the clip's final path and stat, in the writer thread.
    """

    rename_to: Path | None
    end: float
    done: Callable[[Path, os.stat_result], None]


@dataclass(slots=True)
class _Item:
    op: _Op
    file: ClipFile
    queued: float
    chunks: tuple[bytes, ...] = ()
    size: int = 0
    finish: Finish | None = field(default=None)


class Spool:
    """What the clip's muxer writes to: bytes kept until `hand_over`, never a blocking call.

    The muxer writes a fragment in many small pieces; handing them over together wakes the
    writer thread once a fragment, not once a piece.
    """

    __slots__ = ("file", "pending", "writer")

    def __init__(self, writer: ClipWriter, file: ClipFile) -> None:
        self.writer = writer
        self.file = file
        self.pending: list[bytes] = []

    def write(self, data: bytes) -> int:
        """Keep a piece of the muxer's output."""
        self.pending.append(bytes(data))
        return len(data)

    def hand_over(self) -> None:
        """Queue what the muxer wrote since the last call, in one operation."""
        if self.pending:
            chunks = tuple(self.pending)
            self.pending.clear()
            self.writer.put(_Op.WRITE, self.file, chunks)


class ClipWriter:
    """One camera's writer thread and its queue of file operations.

    `on_error` is called (in the writer thread) with what failed and the error; each distinct
    failure is logged once, and recovery once, never on a timer.
    """

    def __init__(
        self,
        name: str,
        *,
        disk: Disk | None = None,
        on_error: Callable[[str, OSError], None] | None = None,
    ) -> None:
        self.name = name
        self.disk = disk or Disk()
        self._on_error = on_error
        self._items: deque[_Item] = deque()
        self._bytes = 0
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._logged: str | None = None
        self._healthy = True

    # -- the recorder's side (camera thread) ---------------------------------------------------

    def open(self, wanted: Path) -> Spool:
        """Start a clip that will be called `wanted` (or `wanted-N` if that is taken)."""
        file = ClipFile(wanted)
        self.put(_Op.OPEN, file)
        return Spool(self, file)

    def finish(self, spool: Spool, finish: Finish) -> None:
        """Close the clip once its bytes are written, rename, date and report it."""
        spool.hand_over()
        self.put(_Op.FINISH, spool.file, finish=finish)

    def discard(self, spool: Spool) -> None:
        """Drop a clip that holds no video."""
        spool.pending.clear()
        self.put(_Op.DISCARD, spool.file)

    def put(
        self,
        op: _Op,
        file: ClipFile,
        chunks: tuple[bytes, ...] = (),
        finish: Finish | None = None,
    ) -> None:
        """Queue one operation; O(1) in the queue's length, never waits for the disk."""
        size = sum(map(len, chunks))
        with self._cond:
            self._items.append(_Item(op, file, time.monotonic(), chunks, size, finish))
            self._bytes += size
            if self._thread is None:
                self._stopping = False
                self._thread = threading.Thread(
                    target=self._run, name=f"pm_dvr writer {self.name}", daemon=True
                )
                self._thread.start()
            self._cond.notify()

    def backlog_seconds(self) -> float:
        """How long the oldest unfinished operation has waited (0 when the disk keeps up).

        Past `BUFFER_BYTES` this is infinite: the buffer is full whatever its age.
        """
        with self._cond:
            if not self._items:
                return 0.0
            if self._bytes > BUFFER_BYTES:
                return float("inf")
            return time.monotonic() - self._items[0].queued

    @property
    def healthy(self) -> bool:
        """False from a failed file operation until a write succeeds again."""
        return self._healthy

    @property
    def backlog_bytes(self) -> int:
        """Bytes waiting for the disk."""
        return self._bytes

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything queued so far is on disk; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._items, timeout)

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Write what is queued (for up to `timeout` s), then end the thread."""
        with self._cond:
            thread = self._thread
            if thread is None:
                return
            self._stopping = True
            self._cond.notify()
        thread.join(timeout)
        if thread.is_alive():
            _LOGGER.warning(
                "%s: storage did not answer for %.0f s, %d MB of video not written",
                self.name,
                timeout,
                self._bytes // 1_000_000,
            )
        with self._cond:
            if self._thread is thread:
                self._thread = None

    # -- the writer thread ---------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._items or self._stopping)
                if not self._items:
                    self._thread = None
                    return
                item = self._items[0]  # stays queued while done: its age is the backlog
            try:
                self._do(item)
            finally:
                with self._cond:
                    self._items.popleft()
                    self._bytes -= item.size
                    self._cond.notify_all()

    def _do(self, item: _Item) -> None:
        file = item.file
        disk = self.disk
        if item.op is _Op.WRITE:
            if file.failed:
                return
            try:
                for chunk in item.chunks:
                    disk.write(file.fd, chunk)
                    file.written += len(chunk)
            except OSError as err:
                self._failed(file, "write failed, the clip is closed", err)
                return
            self._ok()
        elif item.op is _Op.OPEN:
            try:
                path = free_path(file.wanted)
                part = path.with_name(path.name + PART_SUFFIX)
                file.fd = disk.open(part)
                file.part = part
            except OSError as err:
                self._failed(file, "cannot open a clip", err)
        elif item.op is _Op.FINISH:
            assert item.finish is not None
            self._finish(file, item.finish)
        else:
            self._close(file)
            if file.part is not None:
                with contextlib.suppress(OSError):
                    disk.remove(file.part)

    def _finish(self, file: ClipFile, finish: Finish) -> None:
        self._close(file)
        part = file.part
        if part is None or file.written == 0:
            if part is not None:
                with contextlib.suppress(OSError):
                    self.disk.remove(part)
            return
        final = part.with_name(part.name[: -len(PART_SUFFIX)])
        try:
            if file.failed and not _trim_to_fragments(part):
                self.disk.remove(part)
                return
            if finish.rename_to is not None:
                final = free_path(finish.rename_to)
            st = self.disk.finish(part, final, finish.end)
        except OSError as err:
            self._report("cannot finish a clip", err)
            return
        finish.done(final, st)

    def _close(self, file: ClipFile) -> None:
        if file.fd < 0:
            return
        fd, file.fd = file.fd, -1
        try:
            self.disk.close(fd)
        except OSError as err:
            self._failed(file, "cannot close a clip", err)

    def _failed(self, file: ClipFile, what: str, err: OSError) -> None:
        file.failed = True
        if file.fd >= 0:
            fd, file.fd = file.fd, -1
            with contextlib.suppress(OSError):
                self.disk.close(fd)
        self._report(what, err)

    def _report(self, what: str, err: OSError) -> None:
        self._healthy = False
        key = f"{what}: {err.strerror or err}"
        if key != self._logged:
            _LOGGER.warning("%s: %s", self.name, key)
            self._logged = key
        if self._on_error is not None:
            self._on_error(what, err)

    def _ok(self) -> None:
        if not self._healthy:
            self._healthy = True
            self._logged = None
            _LOGGER.info("%s: storage writes work again", self.name)


def complete_end(path: Path) -> tuple[int, bool]:
    """Byte length of the playable head of an fMP4 (whole boxes up to the last full fragment).

    Returns (length, has_fragment). Top-level boxes are walked by their headers only.
    """
    size = path.stat().st_size
    good = 0
    pos = 0
    has_moov = False
    has_fragment = False
    in_fragment = False
    with path.open("rb") as f:
        while pos + 8 <= size:
            f.seek(pos)
            header = f.read(16)
            box_size = int.from_bytes(header[:4], "big")
            kind = header[4:8]
            if box_size == 1:
                if len(header) < 16:
                    break
                box_size = int.from_bytes(header[8:16], "big")
            elif box_size == 0:
                box_size = size - pos
            if box_size < 8 or pos + box_size > size:
                break
            pos += box_size
            if kind == b"moov":
                has_moov = True
                good = pos
            elif kind == b"moof":
                in_fragment = True
            elif kind == b"mdat" and in_fragment:
                in_fragment = False
                has_fragment = True
                good = pos
            elif not in_fragment:
                good = pos
    return (good if has_moov else 0), has_fragment


def _trim_to_fragments(part: Path) -> bool:
    """Cut a clip whose writes failed back to its last whole fragment; False if none is left."""
    end, has_fragment = complete_end(part)
    if has_fragment and end < part.stat().st_size:
        os.truncate(part, end)
    return has_fragment

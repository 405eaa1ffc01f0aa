"""What every sync target shares: the protocol, the upload result, streaming MD5, and the
watchdog that bounds a target's blocking calls."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
import functools
import hashlib
from pathlib import Path
import time
from typing import Any, Protocol, runtime_checkable

from .errors import TargetTimeoutError

CHUNK_SIZE = 1024 * 1024
# How long a target operation may go without an answer or any progress (seconds); the problem
# sensor of a hung target turns on this long after its upload started (well within 2 minutes).
DEFAULT_TIMEOUT = 60.0


class RunInExecutor(Protocol):
    """Runs blocking work off the loop: `asyncio.to_thread` or HA's `async_add_executor_job`."""

    def __call__[*Ts, T](self, func: Callable[[*Ts], T], /, *args: *Ts) -> Awaitable[T]:
        """Run func(*args) in a worker thread."""


def default_executor() -> RunInExecutor:
    """Use asyncio's default thread pool when the caller injects nothing."""
    return asyncio.to_thread


@dataclass(frozen=True, slots=True)
class UploadResult:
    """One verified remote copy; `skipped` when it already matched and nothing was sent."""

    remote_name: str
    size: int
    md5: str
    skipped: bool = False


@runtime_checkable
class SyncTarget(Protocol):
    """One off-box destination (Azure container, folder, rclone remote)."""

    async def validate(self) -> None:
        """Check the target can be used: reachable, authenticated and writable."""

    async def upload(self, local: Path, remote_name: str) -> UploadResult:
        """Upload local to remote_name, then verify size and MD5; raise on any mismatch."""

    async def exists_verified(self, local: Path, remote_name: str) -> bool:
        """Tell whether remote_name already holds exactly local (same size and MD5)."""

    async def close(self) -> None:
        """Release connections; the target must not be used afterwards."""


class OperationAbandonedError(Exception):
    """Raised in a worker thread at its next progress mark once its caller stopped waiting."""


class Progress:
    """Liveness marks a blocking worker leaves as it goes (each chunk read or written).

    `BlockingGuard` fails a call once no mark came for its timeout, then sets `abandoned`: the
    worker's next `tick` raises, so a thread that wakes up late stops instead of finishing work
    nobody waits for. A plain float store per mark: cheap, and safe enough across threads.
    """

    __slots__ = ("abandoned", "last")

    def __init__(self) -> None:
        self.last = time.monotonic()
        self.abandoned = False

    def tick(self) -> None:
        """Note progress (from the worker thread); raise if the caller gave up."""
        if self.abandoned:
            raise OperationAbandonedError
        self.last = time.monotonic()


class _Call:
    """Whether a call's worker thread began and ended (set from that thread)."""

    __slots__ = ("finished", "started")

    def __init__(self) -> None:
        self.started = False
        self.finished = False


class BlockingGuard:
    """Runs a target's blocking calls in worker threads, each bounded by a no-progress timeout.

    A call fails with TargetTimeoutError once `timeout` seconds passed without its worker
    reporting progress (calls that report none: since they started). A thread cannot be
    cancelled, so one that hangs in the kernel (a dead network mount) stays stuck: while any
    is, new calls fail at once instead of tying up more threads of the shared pool.
    """

    def __init__(self, run: RunInExecutor, timeout: float, what: str) -> None:
        self._run = run
        self.timeout = timeout
        self._what = what
        self._abandoned: list[_Call] = []

    @property
    def stuck(self) -> int:
        """Worker threads still busy with calls their callers gave up on."""
        self._abandoned = [c for c in self._abandoned if c.started and not c.finished]
        return len(self._abandoned)

    async def call[*Ts, T](
        self, func: Callable[[*Ts], T], /, *args: *Ts, progress: Progress | None = None
    ) -> T:
        """func(*args) in a thread; pass `progress` when func ticks it as it goes."""
        if self.stuck:
            raise TargetTimeoutError(
                f"{self._what} is still not answering (an earlier operation hangs)"
            )
        watch = progress or Progress()
        call = _Call()

        def tracked(*inner: *Ts) -> T:
            call.started = True
            try:
                return func(*inner)
            finally:
                call.finished = True

        functools.update_wrapper(tracked, func)  # keeps func's name for whoever runs it
        future = asyncio.ensure_future(self._run(tracked, *args))
        try:
            while (remaining := watch.last + self.timeout - time.monotonic()) > 0:
                done, _ = await asyncio.wait({future}, timeout=remaining)
                if done:
                    return future.result()
        except BaseException:  # cancelled: the thread runs on until its next progress mark
            self._abandon(future, watch, call)
            raise
        self._abandon(future, watch, call)
        raise TargetTimeoutError(f"{self._what} did not answer within {self.timeout:g} s")

    def _abandon(self, future: asyncio.Future[Any], watch: Progress, call: _Call) -> None:
        """Stop waiting: a call not begun never will; one running is stuck until it returns."""
        watch.abandoned = True
        if future.done() and not future.cancelled():
            future.exception()  # retrieved, so asyncio does not log it as never retrieved
        future.cancel()
        if call.started and not call.finished:
            self._abandoned.append(call)


def file_md5(path: Path, progress: Progress | None = None) -> tuple[int, bytes]:
    """Size and MD5 of a file, read in chunks so memory stays flat (blocking: use a thread)."""
    digest = hashlib.md5(usedforsecurity=False)
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_SIZE):
            digest.update(chunk)
            size += len(chunk)
            if progress is not None:
                progress.tick()
    return size, digest.digest()


def first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first real error inside a (nested) exception group from a TaskGroup."""
    first = group.exceptions[0]
    return first_error(first) if isinstance(first, BaseExceptionGroup) else first


def join_remote(*parts: str) -> str:
    """Join remote path parts with '/', ignoring empty parts and stray slashes."""
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))

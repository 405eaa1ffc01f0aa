"""What every sync target shares: the protocol, the upload result and streaming MD5 helpers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
import hashlib
from pathlib import Path
from typing import Protocol, runtime_checkable

CHUNK_SIZE = 1024 * 1024


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


def file_md5(path: Path) -> tuple[int, bytes]:
    """Size and MD5 of a file, read in chunks so memory stays flat (blocking: use a thread)."""
    digest = hashlib.md5(usedforsecurity=False)
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_SIZE):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.digest()


def first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first real error inside a (nested) exception group from a TaskGroup."""
    first = group.exceptions[0]
    return first_error(first) if isinstance(first, BaseExceptionGroup) else first


def join_remote(*parts: str) -> str:
    """Join remote path parts with '/', ignoring empty parts and stray slashes."""
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))

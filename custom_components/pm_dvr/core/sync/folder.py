"""Folder target: a local disk or a mounted share (NAS), written through temp file + rename.

Every file-system call runs in a worker thread under a BlockingGuard: a copy or a hash may take
as long as it needs while chunks keep moving, and fails after `timeout` seconds without any
(a share that stopped answering); a stat or a probe fails after `timeout` seconds. A thread
stuck in the kernel on a dead mount blocks further calls to this target until it returns.
"""

from __future__ import annotations

from dataclasses import dataclass
import errno
import hashlib
import os
from pathlib import Path
import uuid

from .base import (
    CHUNK_SIZE,
    DEFAULT_TIMEOUT,
    BlockingGuard,
    Progress,
    RunInExecutor,
    UploadResult,
    default_executor,
    file_md5,
)
from .errors import (
    LocalFileMissingError,
    SyncError,
    TargetNotWritableError,
    TargetUnreachableError,
    VerifyError,
)

_NOT_WRITABLE_ERRNOS = (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT)


@dataclass(frozen=True, slots=True)
class FolderConfig:
    """The destination folder; remote names become paths below it."""

    path: Path


def _copy_hashed(source: Path, dest: Path, progress: Progress | None = None) -> tuple[int, bytes]:
    """Copy source to dest via a hidden temp file, fsync, rename; return size and MD5 (blocking).

    `progress` is ticked after each chunk written (and raises there once the caller gave up).
    """
    try:
        reader = source.open("rb")
    except FileNotFoundError:
        raise LocalFileMissingError(f"local file {source.name} is missing") from None
    digest = hashlib.md5(usedforsecurity=False)
    size = 0
    temp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.part")
    with reader:
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            with temp.open("wb") as writer:
                while chunk := reader.read(CHUNK_SIZE):
                    digest.update(chunk)
                    writer.write(chunk)
                    size += len(chunk)
                    if progress is not None:
                        progress.tick()
                writer.flush()
                os.fsync(writer.fileno())
            temp.replace(dest)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
    return size, digest.digest()


def _os_error(exc: OSError, action: str) -> SyncError:
    """Full, read-only or forbidden means not writable; anything else means unreachable."""
    reason = exc.strerror or type(exc).__name__
    if isinstance(exc, PermissionError) or exc.errno in _NOT_WRITABLE_ERRNOS:
        return TargetNotWritableError(f"{action} is not writable ({reason})")
    return TargetUnreachableError(f"{action} failed ({reason})")


def _probe(root: Path) -> None:
    """Create the folder if needed and prove it is writable (blocking)."""
    root.mkdir(parents=True, exist_ok=True)
    probe = root / f".pm_dvr-probe-{uuid.uuid4().hex}"
    probe.write_bytes(b"pm_dvr write probe\n")
    probe.unlink()


class FolderTarget:
    """Copies files below a folder and verifies each copy by re-reading it."""

    def __init__(
        self,
        config: FolderConfig,
        run_in_executor: RunInExecutor | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self._root = Path(config.path)
        self._guard = BlockingGuard(
            run_in_executor or default_executor(), timeout, f"folder {self._root}"
        )

    def path_for(self, remote_name: str) -> Path:
        """The destination path of a remote name; refuses names that climb out of the folder."""
        parts = [p for p in remote_name.split("/") if p]
        if not parts or any(p in (".", "..") for p in parts):
            raise SyncError(f"invalid remote name {remote_name!r}")
        return self._root.joinpath(*parts)

    async def validate(self) -> None:
        """The folder exists (or can be created) and accepts a write."""
        try:
            await self._guard.call(_probe, self._root)
        except OSError as exc:
            raise _os_error(exc, f"folder {self._root}") from None

    async def upload(self, local: Path, remote_name: str) -> UploadResult:
        """Copy, then re-read the copy to check size and MD5."""
        dest = self.path_for(remote_name)
        call = self._guard.call
        try:
            copying, reading = Progress(), Progress()
            size, md5 = await call(_copy_hashed, local, dest, copying, progress=copying)
            remote_size, remote_md5 = await call(file_md5, dest, reading, progress=reading)
        except OSError as exc:
            raise _os_error(exc, f"copy to {self._root}") from None
        if remote_size != size or remote_md5 != md5:
            raise VerifyError(f"{remote_name}: the copy differs from the local file")
        return UploadResult(remote_name=remote_name, size=size, md5=md5.hex())

    async def exists_verified(self, local: Path, remote_name: str) -> bool:
        """True when the destination already holds the same bytes."""
        dest = self.path_for(remote_name)
        call = self._guard.call
        try:
            local_size = (await call(local.stat)).st_size
            if (await call(dest.stat)).st_size != local_size:
                return False
            remote, here = Progress(), Progress()
            return await call(file_md5, dest, remote, progress=remote) == await call(
                file_md5, local, here, progress=here
            )
        except (FileNotFoundError, NotADirectoryError):  # a file where a folder should be
            return False
        except OSError as exc:
            raise _os_error(exc, f"reading {self._root}") from None

    async def close(self) -> None:
        """Nothing to release."""

"""rclone target: any remote rclone knows (S3, B2, SFTP, azureblob, ...) through its CLI.

Each call is a bounded subprocess (its own retries capped, connect and idle timeouts set) that is
killed if the caller is cancelled or it takes too long: a check (mkdir, lsf, lsjson) gets
`command_timeout` seconds; a copy may take as long as it needs while its bytes keep moving
(rclone's JSON stats, read as they come) and is killed after `stall_timeout` seconds without.
The rclone config is passed by path or environment only; its contents, and the remote string
(which may carry inline keys), never reach a log or an error.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Mapping
import contextlib
from dataclasses import dataclass, field
import json
import logging
import os
from pathlib import Path
import re
import time
from typing import Any

from .base import DEFAULT_TIMEOUT, RunInExecutor, UploadResult, default_executor, file_md5
from .errors import (
    RcloneNotInstalledError,
    SyncError,
    TargetAuthError,
    TargetConfigError,
    TargetNotWritableError,
    TargetTimeoutError,
    TargetUnreachableError,
    VerifyError,
    redact,
)

_LOGGER = logging.getLogger(__name__)

# rclone's exit codes for "directory not found" and "file not found".
_NOT_FOUND_CODES = (3, 4)
_AUTH_RE = re.compile(
    r"authenticationfailed|authorizationfailure|unauthorized|invalid_grant|\b40[13]\b"
)
_UNREACHABLE_HINTS = (
    "connection refused",
    "no such host",
    "i/o timeout",
    "network is unreachable",
    "dial tcp",
    "connection reset",
)
_NOT_WRITABLE_HINTS = ("permission denied", "read-only file system", "no space left")
# rclone's log lines kept for classifying a failure (the last ones say why).
_KEPT_LINES = 200
# A JSON stats line of a big transfer can be long; asyncio's default line limit is 64 KiB.
_LINE_LIMIT = 1024 * 1024


@dataclass(frozen=True, slots=True)
class RcloneConfig:
    """An rclone destination `remote:path`; config_file and extra_env replace the user's setup."""

    remote: str = field(repr=False)
    rclone_binary: str = "rclone"
    config_file: str | None = None
    extra_env: Mapping[str, str] = field(default_factory=dict, repr=False)
    retries: int = 1
    low_level_retries: int = 3
    connect_timeout: float = 15.0
    io_timeout: float = 60.0
    command_timeout: float = DEFAULT_TIMEOUT
    stall_timeout: float = DEFAULT_TIMEOUT


@dataclass(frozen=True, slots=True)
class _Run:
    code: int
    stdout: bytes
    stderr: str


class RcloneTarget:
    """Uploads with `rclone copyto` and verifies with `rclone lsjson --stat --hash-type MD5`."""

    def __init__(self, config: RcloneConfig, run_in_executor: RunInExecutor | None = None) -> None:
        if not config.remote.strip():
            raise TargetConfigError("an rclone target needs a remote")
        self._config = config
        self._run_blocking = run_in_executor or default_executor()
        self._secrets = [config.remote, *config.extra_env.values()]

    def remote_path(self, remote_name: str) -> str:
        """`remote:path/<remote_name>` for a remote name."""
        base = self._config.remote
        name = remote_name.strip("/")
        if base.endswith((":", "/")):
            return f"{base}{name}"
        return f"{base}/{name}"

    async def validate(self) -> None:
        """The binary runs and the remote path can be created and listed."""
        base = self._config.remote
        self._raise_for(await self._rclone("mkdir", base), "mkdir")
        self._raise_for(await self._rclone("lsf", "--max-depth", "1", base), "lsf")

    async def upload(self, local: Path, remote_name: str) -> UploadResult:
        """Copy one file unconditionally, then compare rclone's size and MD5 with ours."""
        size, md5 = await self._run_blocking(file_md5, local)
        result = await self._rclone(
            "copyto", "--ignore-times", str(local), self.remote_path(remote_name), copying=True
        )
        self._raise_for(result, "copyto")
        remote = await self._stat(remote_name)
        if remote is None:
            raise VerifyError(f"{remote_name}: missing on the remote after the upload")
        remote_size, remote_md5 = remote
        if remote_size != size:
            raise VerifyError(f"{remote_name}: remote size {remote_size} differs from local {size}")
        if not remote_md5:
            raise VerifyError(f"{remote_name}: the remote reports no MD5, cannot verify")
        if remote_md5 != md5.hex():
            raise VerifyError(f"{remote_name}: remote MD5 differs from the local file")
        return UploadResult(remote_name=remote_name, size=size, md5=md5.hex())

    async def exists_verified(self, local: Path, remote_name: str) -> bool:
        """True when the remote file has the local size and MD5."""
        remote = await self._stat(remote_name)
        if remote is None or not remote[1]:
            return False
        size, md5 = await self._run_blocking(file_md5, local)
        return remote == (size, md5.hex())

    async def close(self) -> None:
        """Nothing stays open between calls."""

    async def _stat(self, remote_name: str) -> tuple[int, str] | None:
        """Size and MD5 (hex, maybe empty) of one remote file, None when it does not exist."""
        result = await self._rclone(
            "lsjson", "--stat", "--hash-type", "MD5", self.remote_path(remote_name)
        )
        if result.code in _NOT_FOUND_CODES:
            return None
        self._raise_for(result, "lsjson")
        try:
            info = json.loads(result.stdout)
            return int(info["Size"]), str(info.get("Hashes", {}).get("md5", "")).lower()
        except (ValueError, KeyError, TypeError, AttributeError):
            raise SyncError("rclone lsjson returned unexpected output") from None

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        if self._config.config_file:
            env["RCLONE_CONFIG"] = self._config.config_file
        env.update(self._config.extra_env)
        return env

    async def _rclone(self, *args: str, copying: bool = False) -> _Run:
        """Run one rclone command with bounded retries; kill it if cancelled or too slow.

        A copy is watched by its progress (the byte count in rclone's stats); anything else
        must finish within command_timeout.
        """
        cfg = self._config
        cmd = [
            cfg.rclone_binary,
            *args,
            "--retries",
            str(cfg.retries),
            "--low-level-retries",
            str(cfg.low_level_retries),
            "--contimeout",
            f"{cfg.connect_timeout}s",
            "--timeout",
            f"{cfg.io_timeout}s",
            "--use-json-log",
        ]
        if copying:
            interval = max(0.5, min(10.0, cfg.stall_timeout / 6))
            cmd += ["--stats", f"{interval:g}s", "--stats-log-level", "NOTICE"]
        try:
            proc = await asyncio.create_subprocess_exec(
                *cmd,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=self._env(),
                limit=_LINE_LIMIT,
            )
        except FileNotFoundError:
            raise RcloneNotInstalledError(
                f"rclone binary {cfg.rclone_binary!r} is not installed"
            ) from None
        except PermissionError:
            raise RcloneNotInstalledError(
                f"rclone binary {cfg.rclone_binary!r} is not executable"
            ) from None
        output = _Output()
        task = asyncio.ensure_future(output.collect(proc))
        try:
            if copying:
                while (
                    remaining := output.last_progress + cfg.stall_timeout - time.monotonic()
                ) > 0:
                    done, _ = await asyncio.wait({task}, timeout=remaining)
                    if done:
                        break
                else:
                    raise TargetTimeoutError(  # noqa: TRY301 - the cleanup below is shared
                        f"rclone {args[0]} made no progress for {cfg.stall_timeout:g} s"
                    )
                stdout = task.result()
            else:
                try:
                    async with asyncio.timeout(cfg.command_timeout):
                        stdout = await task
                except TimeoutError:
                    raise TargetTimeoutError(
                        f"rclone {args[0]} timed out after {cfg.command_timeout:g} s"
                    ) from None
        except BaseException:
            await _kill(proc)
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
            raise
        assert proc.returncode is not None
        return _Run(proc.returncode, stdout, "\n".join(output.lines))

    def _raise_for(self, result: _Run, what: str) -> None:
        """Classify a failed run from its exit code and stderr; the text is redacted."""
        if result.code == 0:
            return
        text = result.stderr.lower()
        lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
        failures = [line for line in lines if "Failed to" in line or "ERROR" in line]
        last = (failures or lines or ["no output"])[-1]
        detail = redact(last, self._secrets)[-300:]
        message = f"rclone {what} failed (exit {result.code}): {detail}"
        _LOGGER.debug("%s", message)
        if _AUTH_RE.search(text):
            raise TargetAuthError(message)
        if any(hint in text for hint in _NOT_WRITABLE_HINTS):
            raise TargetNotWritableError(message)
        if any(hint in text for hint in _UNREACHABLE_HINTS):
            raise TargetUnreachableError(message)
        raise SyncError(message)


class _Output:
    """An rclone child's stdout, and its log lines as they come (stats lines mark progress)."""

    def __init__(self) -> None:
        self.lines: deque[str] = deque(maxlen=_KEPT_LINES)
        self.last_progress = time.monotonic()
        self._bytes: int | None = None

    async def collect(self, proc: asyncio.subprocess.Process) -> bytes:
        """Read both pipes to their end and reap the child; returns stdout."""
        assert proc.stdout is not None
        assert proc.stderr is not None
        stdout, _ = await asyncio.gather(proc.stdout.read(), self._read_log(proc.stderr))
        await proc.wait()
        return stdout

    async def _read_log(self, stream: asyncio.StreamReader) -> None:
        while raw := await stream.readline():
            line = raw.decode(errors="replace").rstrip()
            entry = _json_line(line)
            if entry is None:
                self.lines.append(line)  # not JSON: printed before rclone's logging started
                continue
            stats = entry.get("stats")
            if isinstance(stats, dict):
                moved = stats.get("bytes")
                if moved != self._bytes:
                    self._bytes = moved
                    self.last_progress = time.monotonic()
                continue
            level = str(entry.get("level", "")).upper()
            self.lines.append(f"{level}: {entry.get('msg', '')}".strip())


def _json_line(line: str) -> dict[str, Any] | None:
    if not line.startswith("{"):
        return None
    try:
        entry = json.loads(line)
    except ValueError:
        return None
    return entry if isinstance(entry, dict) else None


async def _kill(proc: asyncio.subprocess.Process) -> None:
    """Stop a child that we gave up on and reap it, so no process outlives its call."""
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    await proc.wait()

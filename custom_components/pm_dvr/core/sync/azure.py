"""Azure Blob Storage target on the async SDK, running on an injected aiohttp session.

Large files go up as staged 8 MiB blocks read in a worker thread, at most `max_concurrency` on the
wire; each block is sent as soon as it is read while a thread feeds it to the whole-file MD5, so
hashing overlaps the network, memory stays flat and the event loop never reads the disk. The
file MD5 is set on the final Put Block List (the service stores it but does not check it there;
`validate_blocks` adds a per-block MD5 it does check), then read back with the blob's size to
verify the copy. Nothing is visible until that commit, so a failed upload never leaves a partial
blob behind; a retry stages fresh blocks and overwrites. A file up to one block goes up in one
Put Blob whose MD5, computed once as the file is read, the service checks on arrival.

Every request (with the SDK's own retries inside it) is bounded: `request_timeout` seconds, plus
the time its body needs at `min_request_rate`. An endpoint that accepts connections but never
answers fails the first request of a job (a Get Blob Properties) after `request_timeout`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
import contextlib
import contextvars
from dataclasses import dataclass, field
import hashlib
import logging
from pathlib import Path
from typing import Any
import uuid

import aiohttp
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.pipeline.transport import AioHttpTransport
from azure.storage.blob import BlobBlock, ContentSettings
from azure.storage.blob.aio import BlobClient, BlobServiceClient, ContainerClient

from .base import (
    DEFAULT_TIMEOUT,
    RunInExecutor,
    UploadResult,
    default_executor,
    file_md5,
    first_error,
    join_remote,
)
from .errors import (
    LocalFileMissingError,
    SyncError,
    TargetAuthError,
    TargetConfigError,
    TargetTimeoutError,
    TargetUnreachableError,
    VerifyError,
)

_LOGGER = logging.getLogger(__name__)

MIB = 1024 * 1024
# 8 MiB blocks (AzCopy's default) halve the requests, and the billed write operations, of the
# SDK's 4 MiB; three on the wire keep 24 MiB in flight, and memory is capped at four buffers
# (32 MiB), comfortable on a Raspberry Pi.
BLOCK_SIZE = 8 * MIB
SINGLE_PUT_MAX = BLOCK_SIZE
MAX_CONCURRENCY = 3
_PROBE_BODY = b"pm_dvr write probe\n"
# A fixed map: mimetypes reads system files on first use, which must not happen in the loop.
CONTENT_TYPES = {
    ".mp4": "video/mp4",
    ".mkv": "video/x-matroska",
    ".ts": "video/mp2t",
    ".json": "application/json",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
}


@dataclass(frozen=True, slots=True)
class AzureBlobConfig:
    """Where to upload: a connection string, or an account URL plus an account key or SAS token."""

    connection_string: str | None = field(repr=False)
    account_url: str | None
    credential: str | None = field(repr=False)
    container: str
    prefix: str = ""


@dataclass(frozen=True, slots=True)
class AzureTuning:
    """Transfer knobs; the defaults suit a home uplink, tests shorten the SDK's own retries.

    validate_blocks sends each block's MD5 so the service checks every block on arrival (Put
    Block List only stores the whole-file MD5, it does not check it). Off by default: on Azure
    (https) TLS already protects the bytes in transit, and it costs a second MD5 pass; turn it
    on for plain-http endpoints.

    retry_backoff is the SDK's first wait before retrying a failed request (its default, 15 s,
    then 18 s and 24 s); callers with their own retry loop shorten it so an outage surfaces fast.

    request_timeout bounds each request, the SDK's retries included; a request with a body gets
    the time that body needs at min_request_rate (bytes/s) on top (an 8 MiB block: 64 s more).
    """

    block_size: int = BLOCK_SIZE
    single_put_max: int = SINGLE_PUT_MAX
    max_concurrency: int = MAX_CONCURRENCY
    retry_total: int = 3
    retry_backoff: float = 15.0
    validate_blocks: bool = False
    connection_timeout: float = 20.0
    read_timeout: float = 60.0
    request_timeout: float = DEFAULT_TIMEOUT
    min_request_rate: float = 128 * 1024


# The aiohttp responses of the request the current task is sending (see _ClosingTransport).
_RESPONSES: contextvars.ContextVar[list[aiohttp.ClientResponse]] = contextvars.ContextVar(
    "pm_dvr_azure_responses"
)


class _TrackingSession:
    """The shared session as the SDK sees it: notes each response for _ClosingTransport."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self._session = session

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)

    async def request(self, *args: Any, **kwargs: Any) -> aiohttp.ClientResponse:
        response = await self._session.request(*args, **kwargs)
        if (responses := _RESPONSES.get(None)) is not None:
            responses.append(response)
        return response


class _ClosingTransport(AioHttpTransport):  # type: ignore[misc,unused-ignore]
    """Closes the response of a request that fails or is cancelled while its body is read.

    The SDK leaves it open, and with it the connection's read-timeout timer, which then fires up
    to read_timeout later on a connection nobody reads (an upload cancelled at unload, say).
    """

    async def send(self, request: Any, **config: Any) -> Any:
        token = _RESPONSES.set([])
        try:
            return await super().send(request, **config)
        except BaseException:
            for response in _RESPONSES.get():
                response.close()
            raise
        finally:
            _RESPONSES.reset(token)


def build_client(
    config: AzureBlobConfig, session: aiohttp.ClientSession, tuning: AzureTuning | None = None
) -> BlobServiceClient:
    """Build the async service client on the shared session (blocking: run it in an executor)."""
    tuning = tuning or AzureTuning()
    options: dict[str, Any] = {
        "transport": _ClosingTransport(session=_TrackingSession(session), session_owner=False),
        "max_block_size": tuning.block_size,
        "max_single_put_size": tuning.single_put_max,
        "retry_total": tuning.retry_total,
        "initial_backoff": tuning.retry_backoff,
        "connection_timeout": tuning.connection_timeout,
        "read_timeout": tuning.read_timeout,
    }
    try:
        if config.connection_string:
            return BlobServiceClient.from_connection_string(config.connection_string, **options)
        if config.account_url:
            credential = config.credential.lstrip("?") if config.credential else None
            return BlobServiceClient(config.account_url, credential=credential, **options)
    except (ValueError, TypeError):
        raise TargetConfigError("invalid Azure connection string or account URL") from None
    raise TargetConfigError("an Azure target needs a connection string or an account URL")


async def create_azure_target(
    config: AzureBlobConfig,
    session: aiohttp.ClientSession,
    run_in_executor: RunInExecutor | None = None,
    tuning: AzureTuning | None = None,
) -> AzureBlobTarget:
    """Build the client in the executor (its construction may touch files) and wrap it."""
    run = run_in_executor or default_executor()
    client = await run(build_client, config, session, tuning)
    return AzureBlobTarget(config, client, run_in_executor=run, tuning=tuning)


def _map_error(exc: BaseException) -> SyncError:
    """Turn an SDK, network or disk error into ours, keeping only non-secret facts."""
    if isinstance(exc, ClientAuthenticationError):
        return TargetAuthError(f"Azure refused the credentials ({_describe(exc)})")
    if isinstance(exc, HttpResponseError):
        if exc.status_code in (401, 403):
            return TargetAuthError(f"Azure refused the credentials ({_describe(exc)})")
        return SyncError(f"Azure request failed ({_describe(exc)})")
    if isinstance(exc, ServiceRequestError | ServiceResponseError | aiohttp.ClientError):
        return TargetUnreachableError(f"Azure is unreachable ({type(exc).__name__})")
    if isinstance(exc, TimeoutError):
        return TargetUnreachableError("Azure did not answer in time")
    if isinstance(exc, FileNotFoundError):
        return LocalFileMissingError(f"local file {Path(exc.filename or '').name} is missing")
    if isinstance(exc, OSError):
        return SyncError(f"reading the local file failed ({exc.strerror or type(exc).__name__})")
    return SyncError(f"Azure request failed ({type(exc).__name__})")


def _describe(exc: HttpResponseError) -> str:
    """HTTP status and storage error code: enough to act on, never the response text."""
    code = getattr(exc, "error_code", None) or "no error code"
    return f"HTTP {exc.status_code} {code}"


@contextlib.asynccontextmanager
async def _azure_errors() -> AsyncIterator[None]:
    """Re-raise SDK and network failures as sync errors without chaining the originals."""
    try:
        yield
    except (AzureError, aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise _map_error(exc) from None


def _is_container_missing(exc: BaseException) -> bool:
    return (
        isinstance(exc, ResourceNotFoundError)
        and getattr(exc, "error_code", None) == "ContainerNotFound"
    )


def _md5(data: bytes | bytearray | memoryview) -> bytes:
    """MD5 digest of one block (blocking; hashlib releases the GIL, so threads overlap)."""
    return hashlib.md5(data, usedforsecurity=False).digest()


def _read_small(path: Path) -> tuple[bytes, bytes]:
    """Read a small file whole and hash it (blocking; only for files up to single_put_max)."""
    data = path.read_bytes()
    return data, hashlib.md5(data, usedforsecurity=False).digest()


class _Lease:
    """One staged block's request slot and buffer permit, each given back exactly once.

    `end` runs as the block task's done callback, so it also runs for a task cancelled before
    it started (a finally would not).
    """

    __slots__ = ("_permit", "_slot")

    def __init__(self, slot: asyncio.Semaphore, permit: asyncio.Semaphore) -> None:
        self._slot: asyncio.Semaphore | None = slot
        self._permit: asyncio.Semaphore | None = permit

    def end_request(self) -> None:
        """The block's request is over: let another one go on the wire."""
        if self._slot is not None:
            self._slot.release()
            self._slot = None

    def end(self, _: object = None) -> None:
        """The block is done with (sent and hashed, failed or cancelled): free its buffer too."""
        self.end_request()
        if self._permit is not None:
            self._permit.release()
            self._permit = None


class AzureBlobTarget:
    """Uploads into one container (under an optional prefix) and verifies every copy."""

    def __init__(
        self,
        config: AzureBlobConfig,
        client: BlobServiceClient,
        *,
        run_in_executor: RunInExecutor | None = None,
        tuning: AzureTuning | None = None,
    ) -> None:
        self._config = config
        self._service = client
        self._container: ContainerClient = client.get_container_client(config.container)
        self._run = run_in_executor or default_executor()
        self._tuning = tuning or AzureTuning()
        # Shared by every upload of this target, however many files go at once: requests on the
        # wire, and block-sized buffers in use (in flight, being read, or held by a small put).
        self._slots = asyncio.Semaphore(self._tuning.max_concurrency)
        self._buffer_permits = asyncio.Semaphore(self._tuning.max_concurrency + 1)
        self._buffers: list[bytearray] = []

    def blob_name(self, remote_name: str) -> str:
        """The full blob name for a remote name (the configured prefix in front)."""
        return join_remote(self._config.prefix, remote_name)

    async def validate(self) -> None:
        """Write and delete a probe blob, creating the container when it is missing."""
        probe = self._container.get_blob_client(self.blob_name(f".pm_dvr-probe-{uuid.uuid4().hex}"))
        async with _azure_errors():
            await self._with_container(
                lambda: self._request(
                    probe.upload_blob(_PROBE_BODY, overwrite=True), len(_PROBE_BODY)
                )
            )
            await self._request(probe.delete_blob())

    async def upload(self, local: Path, remote_name: str) -> UploadResult:
        """Upload local (single put when small, staged blocks otherwise) and verify it."""
        blob = self._container.get_blob_client(self.blob_name(remote_name))
        content_type = CONTENT_TYPES.get(local.suffix.lower(), "application/octet-stream")
        async with _azure_errors():
            size: int = (await self._run(local.stat)).st_size
            if size <= self._tuning.single_put_max:
                size, md5 = await self._with_container(
                    lambda: self._put_small(blob, local, content_type)
                )
            else:
                size, md5 = await self._with_container(
                    lambda: self._put_blocks(blob, local, content_type)
                )
            await self._verify(blob, remote_name, size, md5)
        return UploadResult(remote_name=remote_name, size=size, md5=md5.hex())

    async def exists_verified(self, local: Path, remote_name: str) -> bool:
        """Compare the blob's size and stored MD5 with the local file; missing means False."""
        blob = self._container.get_blob_client(self.blob_name(remote_name))
        async with _azure_errors():
            try:
                props = await self._request(blob.get_blob_properties())
            except ResourceNotFoundError:
                return False
        remote_md5 = props.content_settings.content_md5
        size: int = (await self._run(local.stat)).st_size
        if props.size != size or not remote_md5:
            return False
        local_size, local_md5 = await self._run(file_md5, local)
        return local_size == props.size and bytes(remote_md5) == local_md5

    async def close(self) -> None:
        """Close the SDK pipeline; the shared aiohttp session stays open (we do not own it)."""
        await self._service.close()

    async def _request[T](self, call: Awaitable[T], body_size: int = 0) -> T:
        """Await one SDK request, failing it after request_timeout (plus its body's time)."""
        limit = self._tuning.request_timeout + body_size / self._tuning.min_request_rate
        try:
            async with asyncio.timeout(limit):
                return await call
        except TimeoutError:
            raise TargetTimeoutError(f"Azure did not answer within {limit:.3g} s") from None

    async def _with_container[T](self, action: Callable[[], Awaitable[T]]) -> T:
        """Run action; if the container is gone, create it once and run action again."""
        try:
            return await action()
        except ResourceNotFoundError as exc:
            if not _is_container_missing(exc):
                raise
        _LOGGER.info("Creating missing Azure container %s", self._config.container)
        with contextlib.suppress(ResourceExistsError):
            await self._request(self._container.create_container())
        return await action()

    async def _put_small(
        self, blob: BlobClient, local: Path, content_type: str
    ) -> tuple[int, bytes]:
        """One Put Blob with Content-MD5 that the service validates.

        The MD5 computed as the file was read goes as the transactional Content-MD5 (the SDK's
        validate_content would hash the body a second time, on the event loop).
        """
        async with self._buffer_permits, self._slots:
            data, md5 = await self._run(_read_small, local)
            await self._request(
                blob.upload_blob(
                    data,
                    length=len(data),
                    overwrite=True,
                    transactional_content_md5=bytearray(md5),
                    content_settings=ContentSettings(
                        content_type=content_type, content_md5=bytearray(md5)
                    ),
                ),
                len(data),
            )
        return len(data), md5

    async def _put_blocks(
        self, blob: BlobClient, local: Path, content_type: str
    ) -> tuple[int, bytes]:
        """Stage blocks, then commit them with the file MD5.

        A block goes on the wire as soon as it is read; its share of the file hash runs in a
        thread at the same time (in file order, each block after the previous one), so hashing
        never delays a send. A buffer is reused only once its block is both sent and hashed.
        Memory is max_concurrency + 1 block buffers for the whole target (files uploading at once
        share them), recycled across files.
        """
        tuning = self._tuning
        token = uuid.uuid4().hex[:16]
        whole = hashlib.md5(usedforsecurity=False)
        slots = self._slots
        permits = self._buffer_permits
        blocks: list[BlobBlock] = []
        size = 0
        hashed: asyncio.Task[None] | None = None

        async def digest(previous: asyncio.Task[None] | None, body: memoryview) -> None:
            if previous is not None:
                await previous
            await self._run(whole.update, body)

        async def stage(
            block_id: str,
            buffer: bytearray,
            length: int,
            hashing: asyncio.Task[None],
            lease: _Lease,
        ) -> None:
            body = buffer if length == len(buffer) else memoryview(buffer)[:length]
            kwargs: dict[str, Any] = {}
            if tuning.validate_blocks:
                kwargs["transactional_content_md5"] = await self._run(_md5, body)
            # Any buffer works as a body (aiohttp sends it as is); the SDK hints say bytes.
            await self._request(
                blob.stage_block(block_id, body, length=length, **kwargs),  # type: ignore[arg-type]
                length,
            )
            lease.end_request()  # the next block may go while this one is still being hashed
            await hashing
            # Only a block that is sent and hashed gives its buffer back: after a failure a
            # worker thread may still be reading it.
            self._release_buffer(buffer)

        handle = await self._run(local.open, "rb")
        try:
            async with asyncio.TaskGroup() as group:
                while True:
                    await permits.acquire()
                    buffer = self._take_buffer()
                    try:
                        length = await self._run(handle.readinto, buffer)
                        if length:
                            await slots.acquire()
                    except BaseException:
                        permits.release()
                        raise
                    if not length:
                        self._release_buffer(buffer)
                        permits.release()
                        break
                    block_id = f"{token}-{len(blocks):08d}"
                    blocks.append(BlobBlock(block_id=block_id))
                    size += length
                    hashed = group.create_task(digest(hashed, memoryview(buffer)[:length]))
                    lease = _Lease(slots, permits)
                    task = group.create_task(stage(block_id, buffer, length, hashed, lease))
                    task.add_done_callback(lease.end)
        except BaseExceptionGroup as group_error:
            raise first_error(group_error) from None
        finally:
            await self._run(handle.close)
        md5 = whole.digest()
        async with slots:  # the commit is a request like any other: it takes a slot too
            await self._request(
                blob.commit_block_list(
                    blocks,
                    content_settings=ContentSettings(
                        content_type=content_type, content_md5=bytearray(md5)
                    ),
                )
            )
        return size, md5

    def _take_buffer(self) -> bytearray:
        """A block buffer from the free list (or a new one)."""
        return self._buffers.pop() if self._buffers else bytearray(self._tuning.block_size)

    def _release_buffer(self, buffer: bytearray) -> None:
        """Keep up to one upload's worth of buffers for the next file."""
        if len(self._buffers) <= self._tuning.max_concurrency:
            self._buffers.append(buffer)

    async def _verify(self, blob: BlobClient, remote_name: str, size: int, md5: bytes) -> None:
        """Read back the blob's size and MD5 property and compare them with what we sent."""
        props = await self._request(blob.get_blob_properties())
        remote_md5 = props.content_settings.content_md5
        if props.size != size:
            raise VerifyError(f"{remote_name}: remote size {props.size} differs from local {size}")
        if not remote_md5 or bytes(remote_md5) != md5:
            raise VerifyError(f"{remote_name}: remote MD5 differs from the local file")

"""Sync core against real services: Azurite (Azure emulator), rclone and the local disk.

Every test that talks to Azurite requests `socket_enabled` so it also runs under the Home
Assistant pytest plugin (which blocks sockets); the rig itself opens no socket.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Callable, Iterator
import dataclasses
from datetime import UTC, datetime, timedelta
import hashlib
import json
import os
from pathlib import Path
import shutil
import time
from typing import Any, cast
import uuid

import aiohttp
from azure.core.exceptions import HttpResponseError
from azure.core.pipeline.transport import AioHttpTransport
from azure.storage.blob import ContainerSasPermissions, generate_container_sas
from azure.storage.blob.aio import BlobServiceClient
from blockbuster import blockbuster_ctx
import pytest
import pytest_asyncio

from custom_components.pm_dvr.core.sync import (
    AzureBlobConfig,
    AzureBlobTarget,
    AzureTuning,
    Backoff,
    FolderConfig,
    FolderTarget,
    JobResult,
    LocalFileMissingError,
    RcloneConfig,
    RcloneNotInstalledError,
    RcloneTarget,
    SqliteQueueStore,
    SyncEngine,
    SyncError,
    SyncQueue,
    SyncTarget,
    TargetAuthError,
    TargetConfigError,
    TargetNotWritableError,
    TargetSpec,
    TargetStatus,
    TargetUnreachableError,
    VerifyError,
    build_client,
    create_azure_target,
    file_md5,
    redact,
)
from custom_components.pm_dvr.core.sync.queue import WRITE_BATCH
from tests.rig.azurite import ACCOUNT_KEY, ACCOUNT_NAME, Azurite
from tests.rig.blocking import allow_queue_table

KIB = 1024
MIB = 1024 * KIB
FAST = Backoff(initial=0.1, factor=2.0, maximum=0.4, jitter=0.0)
SMALL_BLOCKS = AzureTuning(
    block_size=256 * KIB,
    single_put_max=256 * KIB,
    max_concurrency=3,
    retry_total=0,
    validate_blocks=True,
)
WRONG_KEY = "V3JvbmdLZXlXcm9uZ0tleVdyb25nS2V5V3JvbmdLZXlXcm9uZ0tleVdyb25nS2V5V3JvbmdLZXk="
RCLONE = shutil.which("rclone")


@pytest.fixture
def rclone_installed() -> None:
    """The rclone tests need Debian's rclone (scripts/setup installs it): fail, never skip."""
    if RCLONE is None:
        pytest.fail("rclone is not installed: run scripts/setup")


needs_rclone = pytest.mark.usefixtures("rclone_installed")


# ---------------------------------------------------------------- fixtures and helpers


@pytest.fixture(autouse=True)
def no_blocking_calls_in_loop() -> Iterator[None]:
    """Fail on any blocking call (file I/O, sleep, ...) the sync core makes in the event loop."""
    # Logging is left out: Home Assistant logs through a queue handler, so it never blocks there.
    with blockbuster_ctx("custom_components.pm_dvr.core.sync", excluded_modules=["logging"]) as bb:
        allow_queue_table(bb)
        yield


@pytest.fixture(scope="module")
def azurite() -> Iterator[Azurite]:
    """One in-memory Azurite for the module (about 1 s to start)."""
    with Azurite(memory_limit_mb=512) as server:
        yield server


@pytest_asyncio.fixture
async def session(socket_enabled: None) -> AsyncIterator[aiohttp.ClientSession]:
    """The shared aiohttp session (HA's in production)."""
    async with aiohttp.ClientSession() as client:
        yield client


def container_name() -> str:
    return f"t{uuid.uuid4().hex[:20]}"


def azure_config(server: Azurite, container: str, prefix: str = "") -> AzureBlobConfig:
    return AzureBlobConfig(
        connection_string=server.connection_string,
        account_url=None,
        credential=None,
        container=container,
        prefix=prefix,
    )


def write_file(path: Path, size: int) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = os.urandom(size)
    path.write_bytes(data)
    return data


def make_event(
    storage: Path,
    event_id: str,
    clips: dict[str, list[int]],
    label: str | None = "person",
) -> dict[str, bytes]:
    """An event folder: event.json plus clips per camera; returns relative name -> bytes."""
    event_dir = storage / "events" / event_id
    files: dict[str, bytes] = {}
    for camera, sizes in clips.items():
        for index, size in enumerate(sizes):
            name = f"{camera}/20260101-0000{index:02d}.mp4"
            files[name] = write_file(event_dir / name, size)
    meta = json.dumps({"id": event_id, "label": label, "cameras": sorted(clips)}).encode()
    (event_dir / "event.json").write_bytes(meta)
    files["event.json"] = meta
    return files


async def wait_for(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


class Recorder:
    """Collects the engine's callbacks."""

    def __init__(self) -> None:
        self.results: list[JobResult] = []
        self.lengths: list[int] = []
        self.statuses: list[tuple[str, TargetStatus]] = []
        self.times: list[float] = []

    def job(self, result: JobResult) -> None:
        self.results.append(result)
        self.times.append(time.monotonic())

    def length(self, length: int) -> None:
        self.lengths.append(length)

    def status(self, target_id: str, status: TargetStatus) -> None:
        self.statuses.append((target_id, status))

    def engine(self, storage: Path, queue: SyncQueue, *specs: TargetSpec, **kw: Any) -> SyncEngine:
        kw.setdefault("backoff", FAST)
        return SyncEngine(
            storage,
            queue,
            specs,
            on_job_finished=self.job,
            on_queue_length=self.length,
            on_target_status=self.status,
            **kw,
        )


async def blobs(
    server: Azurite, session: aiohttp.ClientSession, container: str
) -> dict[str, tuple[bytes, bytes | None]]:
    """Every committed blob: name -> (content, stored MD5)."""
    service = BlobServiceClient.from_connection_string(
        server.connection_string,
        transport=AioHttpTransport(session=session, session_owner=False),
    )
    found: dict[str, tuple[bytes, bytes | None]] = {}
    async with service:
        client = service.get_container_client(container)
        async for item in client.list_blobs():
            blob = client.get_blob_client(item.name)
            data = await (await blob.download_blob()).readall()
            md5 = item.content_settings.content_md5
            found[item.name] = (data, bytes(md5) if md5 else None)
    return found


def expected_blobs(prefix: str, event_id: str, files: dict[str, bytes]) -> dict[str, bytes]:
    return {"/".join(p for p in (prefix, event_id, name) if p): d for name, d in files.items()}


# ---------------------------------------------------------------- Azure target


async def test_azure_event_upload_names_content_and_md5(
    azurite: Azurite, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    container = container_name()
    target = await create_azure_target(
        azure_config(azurite, container, "site1"), session, None, SMALL_BLOCKS
    )
    files = make_event(tmp_path, "ev1", {"front": [700 * KIB, 10 * KIB], "back": [300 * KIB]})
    rec = Recorder()
    queue = SyncQueue()
    engine = rec.engine(tmp_path, queue, TargetSpec("az", target))
    await target.validate()
    engine.start()
    try:
        assert await engine.enqueue_event("ev1") == 1
        await wait_for(lambda: len(queue) == 0)
    finally:
        await engine.close()

    stored = await blobs(azurite, session, container)
    want = expected_blobs("site1", "ev1", files)
    assert set(stored) == set(want)
    for name, data in want.items():
        content, md5 = stored[name]
        assert content == data
        assert md5 == hashlib.md5(data).digest()
    service = BlobServiceClient.from_connection_string(
        azurite.connection_string, transport=AioHttpTransport(session=session, session_owner=False)
    )
    async with service:
        listing = service.get_container_client(container).list_blobs()
        types = {b.name.rsplit(".", 1)[1]: b.content_settings.content_type async for b in listing}
    assert types == {"mp4": "video/mp4", "json": "application/json"}
    [result] = rec.results
    assert result.ok
    assert result.event_id == "ev1"
    assert result.target_id == "az"
    assert result.bytes_uploaded == sum(len(d) for d in files.values())
    assert result.files_uploaded == len(files)
    assert not result.deleted_local
    assert rec.lengths == [1, 0]
    assert all((tmp_path / "events" / "ev1" / name).exists() for name in files)


class RequestLog:
    """Every request an aiohttp session makes: method, blob path, query, start and end order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, str, str, dict[str, str]]] = []
        self.trace = aiohttp.TraceConfig()
        self.trace.on_request_start.append(self._start)
        self.trace.on_request_end.append(self._end)
        self.trace.on_request_exception.append(self._end)

    async def _start(self, _: Any, __: Any, params: Any) -> None:
        url = params.url
        self.events.append(
            ("start", params.method, url.path, url.query_string, dict(params.headers))
        )

    async def _end(self, _: Any, __: Any, params: Any) -> None:
        self.events.append(("end", params.method, params.url.path, params.url.query_string, {}))

    def max_puts_in_flight(self) -> tuple[int, int]:
        """The most PUTs at once, and the most distinct blobs they were for."""
        active: list[str] = []
        most = most_blobs = 0
        for kind, method, path, query, _ in self.events:
            if method != "PUT" or "restype=container" in query:
                continue
            if kind == "start":
                active.append(path)
            else:
                active.remove(path)
            most = max(most, len(active))
            most_blobs = max(most_blobs, len(set(active)))
        return most, most_blobs


async def test_azure_files_of_an_event_overlap_within_one_block_budget(
    azurite: Azurite, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    """Clips go up two at a time, but all of them together keep max_concurrency requests (and
    buffers) in flight; event.json starts only once every clip is committed and verified."""
    log = RequestLog()
    container = container_name()
    files = make_event(tmp_path, "ev20", {"a": [2 * MIB, 2 * MIB], "b": [2 * MIB]})
    rec = Recorder()
    async with aiohttp.ClientSession(trace_configs=[log.trace]) as traced:
        target = await create_azure_target(
            azure_config(azurite, container), traced, None, SMALL_BLOCKS
        )
        await target.validate()
        engine = rec.engine(tmp_path, SyncQueue(), TargetSpec("az", target))
        engine.start()
        try:
            await engine.enqueue_event("ev20")
            await wait_for(lambda: len(rec.results) == 1)
        finally:
            await engine.close()
    assert rec.results[0].ok
    stored = await blobs(azurite, session, container)
    for name, data in expected_blobs("", "ev20", files).items():
        assert stored[name] == (data, hashlib.md5(data).digest())
    most, most_blobs = log.max_puts_in_flight()
    assert most <= SMALL_BLOCKS.max_concurrency
    assert most_blobs == 2  # two clips were on the wire at once
    meta = f"/{ACCOUNT_NAME}/{container}/ev20/event.json"
    first_meta = next(i for i, e in enumerate(log.events) if e[0] == "start" and e[2] == meta)
    clip_events = [i for i, e in enumerate(log.events) if e[2].endswith(".mp4")]
    assert max(clip_events) < first_meta
    # Azure's transactional Content-MD5 on the single Put Blob is the file's, computed once.
    [put] = [e for e in log.events if e[:3] == ("start", "PUT", meta)]
    assert (
        put[4]["Content-MD5"]
        == base64.b64encode(hashlib.md5(files["event.json"]).digest()).decode()
    )


async def test_azure_restart_skips_verified_and_replaces_changed(
    azurite: Azurite, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    container = container_name()
    target = await create_azure_target(
        azure_config(azurite, container), session, None, SMALL_BLOCKS
    )
    files = make_event(tmp_path, "ev2", {"cam": [600 * KIB, 20 * KIB]})
    rec = Recorder()
    engine = rec.engine(tmp_path, SyncQueue(), TargetSpec("az", target))
    engine.start()
    try:
        await engine.enqueue_event("ev2")
        await wait_for(lambda: len(rec.results) == 1)
        changed = write_file(tmp_path / "events/ev2/cam/20260101-000001.mp4", 30 * KIB)
        await engine.enqueue_event("ev2")
        await wait_for(lambda: len(rec.results) == 2)
    finally:
        await engine.close()
    second = rec.results[1]
    assert second.ok
    assert second.files_skipped == 2
    assert second.files_uploaded == 1
    assert second.bytes_uploaded == len(changed)
    stored = await blobs(azurite, session, container)
    assert stored["ev2/cam/20260101-000001.mp4"][0] == changed
    assert stored["ev2/cam/20260101-000000.mp4"][0] == files["cam/20260101-000000.mp4"]


async def test_azure_delete_after_upload_removes_event(
    azurite: Azurite, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    container = container_name()
    no_block_md5 = dataclasses.replace(SMALL_BLOCKS, validate_blocks=False)
    target = await create_azure_target(
        azure_config(azurite, container), session, None, no_block_md5
    )
    files = make_event(tmp_path, "ev3", {"a": [400 * KIB], "b": [5 * KIB]})
    rec = Recorder()
    engine = rec.engine(tmp_path, SyncQueue(), TargetSpec("az", target, delete_after_upload=True))
    engine.start()
    try:
        await engine.enqueue_event("ev3")
        await wait_for(lambda: len(rec.results) == 1)
    finally:
        await engine.close()
    assert rec.results[0].ok
    assert rec.results[0].deleted_local
    assert not (tmp_path / "events" / "ev3").exists()
    stored = await blobs(azurite, session, container)
    assert {n: c for n, (c, _) in stored.items()} == expected_blobs("", "ev3", files)


async def test_azure_wrong_key_is_auth_error_and_holds_target(
    azurite: Azurite, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    container = container_name()
    good = await create_azure_target(azure_config(azurite, container), session)
    await good.validate()
    bad_config = AzureBlobConfig(
        connection_string=azurite.connection_string_with_key(WRONG_KEY),
        account_url=None,
        credential=None,
        container=container,
    )
    assert WRONG_KEY not in repr(bad_config)
    bad = await create_azure_target(bad_config, session, tuning=SMALL_BLOCKS)
    with pytest.raises(TargetAuthError) as excinfo:
        await bad.validate()
    assert WRONG_KEY not in str(excinfo.value)
    assert excinfo.value.__cause__ is None
    make_event(tmp_path, "ev4", {"cam": [300 * KIB]})
    local = tmp_path / "events/ev4/cam/20260101-000000.mp4"
    with pytest.raises(TargetAuthError):
        await bad.upload(local, "x.mp4")
    with pytest.raises(TargetAuthError):
        await bad.exists_verified(local, "x.mp4")

    rec = Recorder()
    queue = SyncQueue()
    engine = rec.engine(tmp_path, queue, TargetSpec("az", bad))
    engine.start()
    try:
        await engine.enqueue_event("ev4")
        await wait_for(lambda: len(rec.results) == 1)
        await asyncio.sleep(0.5)  # several backoff periods: a held target is not retried
        assert len(rec.results) == 1
        status = engine.target_status("az")
        assert not status.ok
        assert status.reason == "auth_failed"
        assert status.held
        assert rec.statuses[-1] == ("az", status)
        assert WRONG_KEY not in (status.message or "")
        assert queue.jobs()[0]["last_error"]
        assert len(queue) == 1
        engine.set_target(TargetSpec("az", good))  # the reauth flow brings a working key
        await wait_for(lambda: len(queue) == 0)
    finally:
        await engine.close()
        await bad.close()
    assert rec.results[-1].ok
    assert engine.target_status("az").ok
    assert "ev4/cam/20260101-000000.mp4" in await blobs(azurite, session, container)


async def test_azure_validate_creates_container_and_leaves_no_probe(
    azurite: Azurite, session: aiohttp.ClientSession
) -> None:
    container = container_name()
    target = await create_azure_target(azure_config(azurite, container, "p"), session)
    try:
        await target.validate()
        await target.validate()
    finally:
        await target.close()
    assert await blobs(azurite, session, container) == {}


async def test_azure_upload_recreates_deleted_container(
    azurite: Azurite, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    container = container_name()
    small = tmp_path / "small.json"
    big = tmp_path / "big.mp4"
    small_data = write_file(small, 100)
    big_data = write_file(big, 600 * KIB)
    target = await create_azure_target(
        azure_config(azurite, container), session, tuning=SMALL_BLOCKS
    )
    try:
        first = await target.upload(small, "a/small.json")
        assert first.size == 100
        assert first.md5 == hashlib.md5(small_data).hexdigest()
        service = BlobServiceClient.from_connection_string(
            azurite.connection_string,
            transport=AioHttpTransport(session=session, session_owner=False),
        )
        async with service:
            await service.delete_container(container)
        await wait_for(lambda: True)
        # Azurite deletes containers at once: the block path must bring it back.
        result = await target.upload(big, "a/big.mp4")
        assert result.size == len(big_data)
        assert await target.exists_verified(big, "a/big.mp4")
        assert not await target.exists_verified(small, "a/missing.json")
        assert not await target.exists_verified(small, "a/big.mp4")  # other size
    finally:
        await target.close()
    assert (await blobs(azurite, session, container))["a/big.mp4"][0] == big_data


async def test_azure_account_url_with_key_and_with_sas(
    azurite: Azurite, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    container = container_name()
    keyed = await create_azure_target(
        AzureBlobConfig(None, azurite.blob_endpoint, ACCOUNT_KEY, container), session
    )
    await keyed.validate()
    await keyed.close()
    sas = generate_container_sas(
        ACCOUNT_NAME,
        container,
        account_key=ACCOUNT_KEY,
        permission=ContainerSasPermissions(
            read=True, write=True, delete=True, list=True, create=True
        ),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )
    sas_target = await create_azure_target(
        AzureBlobConfig(None, azurite.blob_endpoint, "?" + sas, container), session
    )
    local = tmp_path / "clip.mp4"
    data = write_file(local, 50 * KIB)
    try:
        await sas_target.validate()
        await sas_target.upload(local, "sas/clip.mp4")
    finally:
        await sas_target.close()
    assert (await blobs(azurite, session, container))["sas/clip.mp4"][0] == data

    read_only = generate_container_sas(
        ACCOUNT_NAME,
        container,
        account_key=ACCOUNT_KEY,
        permission=ContainerSasPermissions(read=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )
    ro_target = await create_azure_target(
        AzureBlobConfig(None, azurite.blob_endpoint, read_only, container), session
    )
    try:
        with pytest.raises(TargetAuthError) as excinfo:
            await ro_target.validate()
    finally:
        await ro_target.close()
    assert read_only not in str(excinfo.value)


async def test_azure_bad_config_and_unreachable(
    session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    with pytest.raises(TargetConfigError):
        build_client(AzureBlobConfig(None, None, None, "abc"), session)
    with pytest.raises(TargetConfigError) as excinfo:
        build_client(AzureBlobConfig("AccountKey=s3cr3t;nonsense", None, None, "abc"), session)
    assert "s3cr3t" not in str(excinfo.value)
    # A port nothing listens on: the stopped rig's old port.
    server = Azurite(memory_limit_mb=64).start()
    config = azure_config(server, "abc")
    server.close()
    target = await create_azure_target(config, session, tuning=SMALL_BLOCKS)
    local = tmp_path / "f.bin"
    write_file(local, 10)
    try:
        with pytest.raises(TargetUnreachableError):
            await target.validate()
        with pytest.raises(TargetUnreachableError):
            await target.upload(local, "f.bin")
    finally:
        await target.close()


async def test_azure_fault_mid_upload_then_resume_from_persisted_queue(
    session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    """Azurite stops while blocks are in flight; a new engine from the saved queue finishes."""
    storage = tmp_path / "storage"
    files = make_event(storage, "ev5", {"cam": [40 * KIB, 3 * MIB]})
    big_name = "ev5/cam/20260101-000001.mp4"
    store = SqliteQueueStore(tmp_path / "queue.db")
    container = container_name()
    server = Azurite(location=tmp_path / "azurite")
    server.start()
    try:
        reads = 0

        async def slow_disk[*Ts, T](func: Callable[[*Ts], T], /, *args: *Ts) -> T:
            nonlocal reads
            reads += 1
            if reads > 4:
                await asyncio.sleep(0.03)  # a slow disk, so the upload is still running
            return await asyncio.to_thread(func, *args)

        target = await create_azure_target(
            azure_config(server, container), session, slow_disk, SMALL_BLOCKS
        )
        await target.validate()
        rec = Recorder()
        queue = await SyncQueue.open(store)
        engine = rec.engine(
            storage,
            queue,
            TargetSpec("az", target, delete_after_upload=True),
            backoff=Backoff(initial=30.0),
        )
        engine.start()
        await engine.enqueue_event("ev5")
        probe = server.blob_endpoint
        assert probe
        checker = BlobServiceClient.from_connection_string(
            server.connection_string,
            transport=AioHttpTransport(session=session, session_owner=False),
        )
        async with checker:
            blob = checker.get_blob_client(container, big_name)

            async def staged() -> int:
                try:
                    _, uncommitted = await blob.get_block_list("uncommitted")
                except Exception:
                    return 0
                return len(uncommitted)

            deadline = time.monotonic() + 20
            while await staged() < 2:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.01)
        await asyncio.to_thread(server.stop)
        await wait_for(lambda: len(rec.results) == 1)
        await engine.stop()
        await queue.close()
        failed = rec.results[0]
        assert not failed.ok
        assert failed.will_retry
        assert failed.reason == "unreachable"
        assert all((storage / "events/ev5" / n).exists() for n in files)  # nothing deleted
        assert not engine.target_status("az").ok
        await target.close()

        server.start()  # same port, same --location: committed blobs and staged blocks survive
        stored = await blobs(server, session, container)
        assert big_name not in stored  # the half-sent file is not visible
        saved = await asyncio.to_thread(store.load)
        assert len(saved) == 1
        assert saved[0]["attempts"] == 1
        assert saved[0]["last_error"]

        target2 = await create_azure_target(
            azure_config(server, container), session, tuning=SMALL_BLOCKS
        )
        rec2 = Recorder()
        queue2 = await SyncQueue.open(store)
        engine2 = rec2.engine(storage, queue2, TargetSpec("az", target2, delete_after_upload=True))
        engine2.start()
        try:
            assert len(queue2) == 1, queue2.jobs()
            await engine2.sync_now()  # skip the 30 s backoff
            await wait_for(lambda: len(rec2.results) == 1)
        finally:
            await engine2.close()
            await queue2.close()
        done = rec2.results[-1]
        assert done.ok
        assert done.deleted_local
        assert done.files_skipped >= 1
        stored = await blobs(server, session, container)
        want = expected_blobs("", "ev5", files)
        assert {n: c for n, (c, _) in stored.items()} == want
        assert all(md5 == hashlib.md5(want[n]).digest() for n, (_, md5) in stored.items())
        assert not (storage / "events/ev5").exists()
        assert await asyncio.to_thread(store.load) == []
    finally:
        server.close()


# ---------------------------------------------------------------- folder target


async def test_folder_target_upload_verify_and_delete(tmp_path: Path) -> None:
    storage = tmp_path / "storage"
    dest = tmp_path / "nas" / "dvr"
    files = make_event(storage, "ev6", {"cam1": [200 * KIB, 3 * KIB], "cam2": [1 * KIB]})
    target = FolderTarget(FolderConfig(dest))
    await target.validate()
    assert isinstance(target, SyncTarget)
    rec = Recorder()
    engine = rec.engine(storage, SyncQueue(), TargetSpec("nas", target, delete_after_upload=True))
    engine.start()
    try:
        await engine.enqueue_event("ev6")
        await wait_for(lambda: len(rec.results) == 1)
    finally:
        await engine.close()
    assert rec.results[0].ok
    assert rec.results[0].deleted_local
    for name, data in files.items():
        assert (dest / "ev6" / name).read_bytes() == data
    assert not (storage / "events" / "ev6").exists()
    assert not [p for p in dest.rglob("*") if p.name.endswith(".part")]


async def test_folder_target_errors_and_checks(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_bytes(b"x")
    broken = FolderTarget(FolderConfig(blocker / "sub"))
    with pytest.raises(TargetUnreachableError):
        await broken.validate()
    local = tmp_path / "clip.mp4"
    write_file(local, 1000)
    with pytest.raises(TargetUnreachableError):
        await broken.upload(local, "a/clip.mp4")
    target = FolderTarget(FolderConfig(tmp_path / "dest"))
    with pytest.raises(SyncError):
        target.path_for("../escape")
    assert not await target.exists_verified(local, "a/clip.mp4")
    await target.upload(local, "a/clip.mp4")
    assert await target.exists_verified(local, "a/clip.mp4")
    (tmp_path / "dest/a/clip.mp4").write_bytes(b"y" * 1000)
    assert not await target.exists_verified(local, "a/clip.mp4")
    (tmp_path / "dest/a/clip.mp4").write_bytes(b"short")
    assert not await target.exists_verified(local, "a/clip.mp4")
    await target.close()


async def test_folder_permission_errors_are_not_writable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Root ignores file modes, so a read-only share is simulated at the OS call."""
    target = FolderTarget(FolderConfig(tmp_path / "ro"))
    local = tmp_path / "clip.mp4"
    write_file(local, 10)

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "mkdir", refuse)
    with pytest.raises(TargetNotWritableError):
        await target.validate()
    with pytest.raises(TargetNotWritableError):
        await target.upload(local, "clip.mp4")


# ---------------------------------------------------------------- engine behaviour


async def test_retries_back_off_then_succeed(tmp_path: Path) -> None:
    storage = tmp_path / "storage"
    make_event(storage, "ev7", {"cam": [2 * KIB]})
    dest = tmp_path / "dest"
    dest.write_bytes(b"not a folder yet")  # the share is "down": every copy fails
    rec = Recorder()
    queue = SyncQueue()
    engine = rec.engine(
        storage,
        queue,
        TargetSpec("nas", FolderTarget(FolderConfig(dest))),
        backoff=Backoff(initial=0.1, factor=2.0, maximum=10, jitter=0.0),
    )
    engine.start()
    try:
        await engine.enqueue_event("ev7")
        await wait_for(lambda: len(rec.results) >= 3)
        dest.unlink()  # the share is back
        await wait_for(lambda: len(queue) == 0)
    finally:
        await engine.close()
    failures = [r for r in rec.results if not r.ok]
    assert len(failures) >= 3
    assert all(r.will_retry for r in failures)
    gaps = [b - a for a, b in zip(rec.times, rec.times[1:], strict=False)][:2]
    assert gaps[0] >= 0.09
    assert gaps[1] >= 0.19
    assert gaps[1] > gaps[0]
    assert rec.results[-1].ok
    assert (dest / "ev7" / "cam" / "20260101-000000.mp4").exists()
    assert [s.ok for _, s in rec.statuses] == [False, True]


async def test_max_attempts_moves_to_failed_list_and_stop_leaves_job_queued(
    tmp_path: Path,
) -> None:
    storage = tmp_path / "storage"
    make_event(storage, "ev8", {"cam": [KIB]})
    blocker = tmp_path / "blocker"
    blocker.write_bytes(b"")
    rec = Recorder()
    queue = SyncQueue()
    engine = rec.engine(
        storage,
        queue,
        TargetSpec("nas", FolderTarget(FolderConfig(blocker / "x"))),
        max_attempts=2,
        backoff=Backoff(initial=0.01, jitter=0.0),
    )
    engine.start()
    engine.start()  # idempotent
    try:
        await engine.enqueue_event("ev8")
        await wait_for(lambda: len(queue) == 0)
    finally:
        await engine.stop()
    assert [r.will_retry for r in rec.results] == [True, False]
    assert [r.gave_up for r in rec.results] == [False, True]
    [failed] = queue.failed_jobs()
    assert failed["attempts"] == 2
    assert failed["failed"] is not None
    assert await engine.enqueue_event("ev8") == 0  # it is known: on the failed list

    gate = asyncio.Event()
    copying = asyncio.Event()

    async def stuck[*Ts, T](func: Callable[[*Ts], T], /, *args: *Ts) -> T:
        if getattr(func, "__name__", "") == "_copy_hashed":
            copying.set()
            await gate.wait()
        return await asyncio.to_thread(func, *args)

    engine2 = rec.engine(
        storage, queue, TargetSpec("nas", FolderTarget(FolderConfig(tmp_path / "d"), stuck))
    )
    engine2.start()
    assert await engine2.retry_failed("nas") == 1
    await wait_for(copying.is_set)
    await engine2.stop()  # cancels the upload mid-way
    assert len(queue) == 1
    assert queue.jobs()[0]["attempts"] == 0
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert not [t for t in tasks if "pm_dvr" in t.get_name()]


async def test_filters_multi_target_and_deferred_delete(tmp_path: Path) -> None:
    storage = tmp_path / "storage"
    files = make_event(storage, "ev9", {"front": [3 * KIB], "garden": [4 * KIB]}, label="person")
    make_event(storage, "ev10", {"front": [KIB]}, label="car")
    a_dir, b_dir, c_dir = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    a_done = asyncio.Event()

    async def after_a[*Ts, T](func: Callable[[*Ts], T], /, *args: *Ts) -> T:
        await a_done.wait()  # b's share is slow: a verifies ev9 first
        return await asyncio.to_thread(func, *args)

    a = TargetSpec("a", FolderTarget(FolderConfig(a_dir)), delete_after_upload=True)
    b = TargetSpec(
        "b",
        FolderTarget(FolderConfig(b_dir), after_a),
        cameras=frozenset({"front"}),
        labels=frozenset({"person"}),
    )
    c = TargetSpec("c", FolderTarget(FolderConfig(c_dir)), include_events=False)
    rec = Recorder()
    queue = SyncQueue()
    engine = rec.engine(storage, queue, a, b, c, concurrency=1)
    assert await engine.enqueue_event("ev9") == 2
    assert await engine.enqueue_event("ev9") == 0  # already queued
    assert await engine.enqueue_event("ev10") == 1  # b wants persons only
    assert [j["target"] for j in queue.jobs()] == ["a", "b", "a"]
    a_ev9 = queue.find("event", "events/ev9", "a")
    assert a_ev9 is not None
    a_ev9_id = a_ev9["id"]
    queue.add_listener(lambda _: a_done.set() if queue.get(a_ev9_id) is None else None)
    engine.start()
    try:
        await wait_for(lambda: len(queue) == 0)
    finally:
        await engine.close()
    assert (a_dir / "ev9" / "garden" / "20260101-000000.mp4").read_bytes() == files[
        "garden/20260101-000000.mp4"
    ]
    assert (b_dir / "ev9" / "front" / "20260101-000000.mp4").exists()
    assert not (b_dir / "ev9" / "garden").exists()
    assert not (b_dir / "ev10").exists()
    assert not c_dir.exists()
    # a deletes, but only once b (which still needed ev9) had its copy too: a's delete is
    # handed to b's job, which performs it when it verifies
    assert not (storage / "events" / "ev9").exists()
    assert not (storage / "events" / "ev10").exists()
    ev9 = [(r.target_id, r.deleted_local) for r in rec.results if r.path == "events/ev9"]
    assert ev9 == [("a", False), ("b", True)]


async def test_camera_filtered_delete_keeps_other_cameras(tmp_path: Path) -> None:
    storage = tmp_path / "storage"
    make_event(storage, "ev11", {"front": [KIB], "garden": [KIB]})
    spec = TargetSpec(
        "a",
        FolderTarget(FolderConfig(tmp_path / "a")),
        delete_after_upload=True,
        cameras=frozenset({"front"}),
    )
    rec = Recorder()
    queue = SyncQueue()
    engine = rec.engine(storage, queue, spec)
    engine.start()
    try:
        await engine.enqueue_event("ev11")
        await wait_for(lambda: len(queue) == 0)
    finally:
        await engine.close()
    event_dir = storage / "events" / "ev11"
    assert not (event_dir / "front").exists()
    assert (event_dir / "garden" / "20260101-000000.mp4").exists()
    assert (event_dir / "event.json").exists()


async def test_recordings_and_missing_local_files(tmp_path: Path) -> None:
    storage = tmp_path / "storage"
    rel = "recordings/front/2026-01-01/20260101-000000.mp4"
    data = write_file(storage / rel, 5 * KIB)
    write_file(storage / "recordings/back/2026-01-01/20260101-000000.mp4", KIB)
    dest = tmp_path / "dest"
    rec = Recorder()
    queue = SyncQueue()
    spec = TargetSpec(
        "nas",
        FolderTarget(FolderConfig(dest)),
        include_recordings=True,
        delete_after_upload=True,
        cameras=frozenset({"front"}),
    )
    engine = rec.engine(
        storage, queue, spec, TargetSpec("events-only", FolderTarget(FolderConfig(dest)))
    )
    assert await engine.enqueue_recording(storage / rel) == 1
    assert await engine.enqueue_recording("recordings/back/2026-01-01/20260101-000000.mp4") == 0
    with pytest.raises(ValueError, match="not a recording"):
        await engine.enqueue_recording("events/x/y.mp4")
    with pytest.raises(ValueError, match="invalid event id"):
        await engine.enqueue_event("../x")
    with pytest.raises(LocalFileMissingError):
        await engine.enqueue_event("nope")
    make_event(storage, "gone", {"front": [KIB]})
    assert await engine.enqueue_event("gone") == 2
    shutil.rmtree(storage / "events" / "gone")
    engine.start()
    try:
        await wait_for(lambda: len(queue) == 0)
    finally:
        await engine.close()
    assert (dest / rel).read_bytes() == data
    assert not (storage / rel).exists()
    assert not (storage / rel).parent.exists()
    missing = [r for r in rec.results if r.path == "events/gone"]
    assert len(missing) == 2
    assert all(r.reason == "local_missing" and not r.will_retry for r in missing)
    ok = [r for r in rec.results if r.kind == "recording"]
    assert ok[0].ok
    assert ok[0].event_id is None
    assert ok[0].deleted_local


async def test_sync_now_remove_target_and_callback_errors(tmp_path: Path) -> None:
    storage = tmp_path / "storage"
    make_event(storage, "ev12", {"cam": [KIB]})
    blocker = tmp_path / "blocker"
    blocker.write_bytes(b"")
    calls: list[JobResult] = []

    def broken_callback(result: JobResult) -> None:
        calls.append(result)
        raise RuntimeError("callback bug")

    queue = SyncQueue()
    spec = TargetSpec("nas", FolderTarget(FolderConfig(blocker / "x")))
    engine = SyncEngine(
        storage, queue, [spec], backoff=Backoff(initial=60.0), on_job_finished=broken_callback
    )
    engine.start()
    try:
        await engine.enqueue_event("ev12")
        await wait_for(lambda: len(calls) == 1)
        await engine.wait_idle()  # the job waits out a 60 s backoff: nothing due
        assert engine.queue is queue
        assert len(queue) == 1
        blocker.unlink()
        await engine.sync_now()
        await wait_for(lambda: len(calls) == 2)
        assert calls[-1].ok
        await engine.enqueue_event("ev12")
        engine.retry_target("nas")
        await engine.remove_target("nas")
        assert len(queue) == 0
        assert engine.target_status("nas").ok
    finally:
        await engine.close()


class _Exploding:
    """A target with a bug: the engine must survive it and retry later."""

    async def validate(self) -> None:
        return None

    async def upload(self, local: Path, remote_name: str) -> Any:
        raise KeyError("bug")

    async def exists_verified(self, local: Path, remote_name: str) -> bool:
        return False

    async def close(self) -> None:
        return None


async def test_unexpected_target_bug_is_retried(tmp_path: Path) -> None:
    make_event(tmp_path, "ev13", {"cam": [KIB]})
    rec = Recorder()
    engine = rec.engine(tmp_path, SyncQueue(), TargetSpec("x", _Exploding()))
    engine.start()
    try:
        await engine.enqueue_event("ev13")
        await wait_for(lambda: len(rec.results) == 2)
    finally:
        await engine.close()
    assert rec.results[0].error == "unexpected KeyError"
    assert rec.results[0].will_retry


# ---------------------------------------------------------------- rclone target


BAD_SIG = "QmFkU2lnbmF0dXJlQmFkU2lnbmF0dXJlQmFkU2lnbmE%3D"


def bad_sas_url(endpoint: str, container: str) -> str:
    """A container SAS URL with a forged signature (a full URL: rclone needs no DNS for it)."""
    query = f"sv=2021-08-06&se=2099-01-01T00%3A00%3A00Z&sr=c&sp=racwdl&sig={BAD_SIG}"
    return f"{endpoint}/{container}?{query}"


def rclone_conf(tmp_path: Path, server: Azurite | None = None, bad_sas: str | None = None) -> Path:
    """rclone config: a local remote, Azurite with the emulator account (explicit endpoint:
    rclone 1.60 ignores use_emulator without it), and optionally a remote with a forged SAS."""
    conf = tmp_path / "rclone.conf"
    lines = ["[local]", "type = local", ""]
    if server is not None:
        lines += ["[azurite]", "type = azureblob", "use_emulator = true"]
        lines += [f"endpoint = {server.blob_endpoint}", ""]
    if bad_sas:
        lines += ["[forged]", "type = azureblob", f"sas_url = {bad_sas}", ""]
    conf.write_text("\n".join(lines))
    return conf


@needs_rclone
async def test_rclone_local_remote(tmp_path: Path) -> None:
    storage = tmp_path / "storage"
    files = make_event(storage, "ev14", {"cam": [300 * KIB, KIB]})
    dest = tmp_path / "remote"
    config = RcloneConfig(
        remote=f"local:{dest}",
        config_file=str(rclone_conf(tmp_path)),
        retries=1,
        low_level_retries=1,
    )
    target = RcloneTarget(config)
    await target.validate()
    assert dest.is_dir()
    rec = Recorder()
    engine = rec.engine(storage, SyncQueue(), TargetSpec("rc", target, delete_after_upload=True))
    engine.start()
    try:
        await engine.enqueue_event("ev14")
        await wait_for(lambda: len(rec.results) == 1)
    finally:
        await engine.close()
    assert rec.results[0].ok
    assert rec.results[0].deleted_local
    for name, data in files.items():
        assert (dest / "ev14" / name).read_bytes() == data
    local = tmp_path / "again.bin"
    local.write_bytes(files["event.json"])
    assert await target.exists_verified(local, "ev14/event.json")
    assert not await target.exists_verified(local, "ev14/none.json")
    assert target.remote_path("x") == f"local:{dest}/x"
    assert RcloneTarget(RcloneConfig(remote="local:")).remote_path("/x") == "local:x"


@needs_rclone
async def test_rclone_to_azurite(
    azurite: Azurite, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    container = container_name()
    storage = tmp_path / "storage"
    files = make_event(storage, "ev15", {"cam": [2 * MIB, 10 * KIB]})
    config = RcloneConfig(
        remote=f"azurite:{container}/dvr",
        config_file=str(rclone_conf(tmp_path, azurite)),
        retries=1,
        low_level_retries=1,
    )
    target = RcloneTarget(config)
    await target.validate()
    rec = Recorder()
    engine = rec.engine(storage, SyncQueue(), TargetSpec("rc", target))
    engine.start()
    try:
        await engine.enqueue_event("ev15")
        await wait_for(lambda: len(rec.results) == 1)
    finally:
        await engine.close()
    assert rec.results[0].ok
    stored = await blobs(azurite, session, container)
    want = expected_blobs("dvr", "ev15", files)
    assert {n: c for n, (c, _) in stored.items()} == want
    assert all(md5 == hashlib.md5(want[n]).digest() for n, (_, md5) in stored.items())


@needs_rclone
async def test_rclone_errors_are_classified_without_secrets(
    azurite: Azurite, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    with pytest.raises(RcloneNotInstalledError):
        await RcloneTarget(
            RcloneConfig(remote="x:", rclone_binary=str(tmp_path / "no-rclone"))
        ).validate()
    not_exec = tmp_path / "rclone-not-exec"
    not_exec.write_text("")
    with pytest.raises(RcloneNotInstalledError):
        await RcloneTarget(RcloneConfig(remote="x:", rclone_binary=str(not_exec))).validate()
    with pytest.raises(TargetConfigError):
        RcloneTarget(RcloneConfig(remote=" "))

    container = container_name()
    forged = RcloneTarget(
        RcloneConfig(
            remote=f"forged:{container}",
            config_file=str(
                rclone_conf(tmp_path, bad_sas=bad_sas_url(azurite.blob_endpoint, container))
            ),
            retries=1,
            low_level_retries=1,
        )
    )
    with pytest.raises(TargetAuthError) as excinfo:
        await forged.validate()
    assert BAD_SIG not in str(excinfo.value)

    # An inline remote carrying a token, on a port where nothing listens.
    inline = ":webdav,url='http://127.0.0.1:1/',bearer_token=S3cretT0ken:x"
    unreachable = RcloneTarget(RcloneConfig(remote=inline, retries=1, low_level_retries=1))
    with pytest.raises(TargetUnreachableError) as excinfo2:
        await unreachable.validate()
    assert "S3cretT0ken" not in str(excinfo2.value)
    assert "connection refused" in str(excinfo2.value)

    local = tmp_path / "clip.bin"
    write_file(local, 100)
    nowhere = RcloneTarget(
        RcloneConfig(remote="nosuchremote:x", config_file=str(rclone_conf(tmp_path)), retries=1)
    )
    with pytest.raises(SyncError):
        await nowhere.upload(local, "clip.bin")

    missing_engine = Recorder()
    queue = SyncQueue()
    make_event(tmp_path / "s", "ev16", {"cam": [KIB]})
    engine = missing_engine.engine(
        tmp_path / "s",
        queue,
        TargetSpec(
            "rc", RcloneTarget(RcloneConfig(remote="x:", rclone_binary="/nonexistent/rclone"))
        ),
    )
    engine.start()
    try:
        await engine.enqueue_event("ev16")
        await wait_for(lambda: len(missing_engine.results) == 1)
        status = engine.target_status("rc")
        assert status.reason == "rclone_missing"
        assert status.held
    finally:
        await engine.close()


@needs_rclone
async def test_rclone_timeout_kills_the_process(tmp_path: Path) -> None:
    script = tmp_path / "slow-rclone"
    script.write_text("#!/bin/sh\nexec sleep 30\n")
    script.chmod(0o755)
    target = RcloneTarget(RcloneConfig(remote="x:", rclone_binary=str(script), command_timeout=0.3))
    started = time.monotonic()
    with pytest.raises(TargetUnreachableError, match="timed out"):
        await target.validate()
    assert time.monotonic() - started < 5


# ---------------------------------------------------------------- queue and helpers


async def test_queue_items_and_changes(tmp_path: Path) -> None:
    changes: list[int] = []
    queue = SyncQueue(
        [
            {"id": "a", "kind": "event", "path": "events/e1", "target": "t"},
            {"id": "b", "kind": "bogus", "path": "x", "target": "t"},
            {"kind": "event"},
            {"id": "a", "kind": "event", "path": "events/e9", "target": "t"},  # same id
            {"id": "c", "kind": "event", "path": "events/e1", "target": "t"},  # same job
            {"id": "d", "kind": "event", "path": "events/e2", "target": "t", "failed": 5.0},
        ]
    )
    queue.add_listener(changes.append)
    assert len(queue) == 1
    assert queue.failed_count("t") == 1
    assert queue.count("t") == 1
    assert queue.jobs()[0]["attempts"] == 0
    assert await queue.add("event", "events/e1", "t") is None
    assert await queue.add("event", "events/e2", "t") is None  # failed, but known
    job = await queue.add("recording", "recordings/c/d/f.mp4", "t")
    assert job is not None
    assert changes == [2]
    with pytest.raises(ValueError, match="kind"):
        await queue.add("other", "x", "t")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        job["attempts"] = 3  # type: ignore[index]  # a read-only view
    await queue.update("missing", attempts=3)
    await queue.fail("missing")
    assert await queue.remove("missing") is None
    assert queue.get("missing") is None
    assert queue.get("a") is not None
    assert queue.find("event", "events/e2", "t") is not None
    assert await queue.requeue_failed("nobody") == 0
    assert (
        await queue.import_items(
            [{"id": "a"}, {"id": "e", "kind": "event", "path": "events/e1", "target": "t"}]
        )
        == 0
    )
    assert await queue.remove_target("t") == 3
    assert len(queue) == 0
    assert queue.failed_jobs() == []
    assert await queue.remove_target("t") == 0
    await queue.flush()  # no store: nothing to do
    await queue.close()


async def test_queue_views_follow_their_job_and_keep_every_field(tmp_path: Path) -> None:
    """Jobs are tuples in memory; what callers see is a mapping with every stored field (an
    unknown one from a newer version too), showing later changes until the job is gone."""
    stored = {
        "id": "a",
        "kind": "event",
        "path": "events/e1",
        "target": "t",
        "deferred_delete": ["events/e1/clip.mp4"],
        "from_a_newer_version": 7,
    }
    queue = SyncQueue([stored])
    view = queue.get("a")
    assert view is not None
    unset = {"attempts": 0, "next_attempt": 0.0, "last_error": None, "added": 0.0}
    expected = stored | unset | {"first_failure": None, "failed": None}
    assert dict(view) == expected
    assert len(view) == len(expected)
    assert queue.jobs() == [expected]
    await queue.update("a", attempts=2, deferred_delete=[])
    assert view["attempts"] == 2
    assert view["deferred_delete"] == []
    assert view["from_a_newer_version"] == 7
    assert repr(view) == f"JobView({dict(view)!r})"
    removed = await queue.remove("a")
    assert removed is not None
    assert removed["attempts"] == view["attempts"] == 2  # as last seen
    with pytest.raises(KeyError):
        view["no_such_field"]


async def test_queue_in_sqlite_survives_reopen_and_damage(tmp_path: Path) -> None:
    """Only changed jobs are written, in one commit per batch; a reopened store has them all,
    failed ones included; a damaged file is set aside and the queue starts empty."""
    path = tmp_path / "q" / "queue.db"
    store = SqliteQueueStore(path)
    queue = await SyncQueue.open(store, save_delay=0.05)
    assert len(queue) == 0
    first = await queue.add("event", "events/e1", "t1")
    second = await queue.add("event", "events/e2", "t2")
    third = await queue.add("recording", "recordings/c/2026-01-01/x.mp4", "t1")
    assert first is not None
    assert second is not None
    assert third is not None
    await queue.fail(second["id"], last_error="gone for a week")
    await queue.update(third["id"], attempts=2, deferred_delete=["recordings/x"])
    written: list[dict[str, Any]] = []
    original = store.write

    def spy(changes: Any) -> None:
        written.append(dict(changes))
        original(changes)

    store.write = spy  # type: ignore[method-assign]
    await wait_for(lambda: bool(written))  # the batch goes out after save_delay, by itself
    assert set(written[0]) == {first["id"], second["id"], third["id"]}
    await queue.remove(first["id"])
    await queue.flush()
    assert written[-1] == {first["id"]: None}  # one row deleted, nothing else rewritten
    await queue.close()
    assert path.exists()

    again = await SyncQueue.open(SqliteQueueStore(path))
    assert [(j["path"], j["attempts"], j.get("deferred_delete")) for j in again.jobs()] == [
        ("recordings/c/2026-01-01/x.mp4", 2, ["recordings/x"])
    ]
    [failed] = again.failed_jobs("t2")
    assert failed["last_error"] == "gone for a week"
    assert again.take_due("t2", time.time() + 1e9) is None  # the failed list is not picked
    assert await again.requeue_failed("t2") == 1
    picked = again.take_due("t2", time.time() + 1)
    assert picked is not None
    assert picked["attempts"] == 0
    assert picked["failed"] is None
    await again.close()

    path.write_bytes(b"this is not a database" * 100)
    damaged = await SyncQueue.open(SqliteQueueStore(path))
    assert len(damaged) == 0
    assert [p.name.startswith("queue.db.damaged-") for p in path.parent.iterdir()].count(True) == 1
    await damaged.add("event", "events/e3", "t1")
    await damaged.close()
    reopened = SqliteQueueStore(path)
    assert [j["path"] for j in await asyncio.to_thread(reopened.load)] == ["events/e3"]
    await asyncio.to_thread(reopened.close)


async def test_queue_writes_big_changes_in_bounded_batches(tmp_path: Path) -> None:
    """Taking over 5,000 jobs at once is written in commits of at most WRITE_BATCH jobs."""
    store = SqliteQueueStore(tmp_path / "queue.db")
    queue = await SyncQueue.open(store)
    sizes: list[int] = []
    original = store.write

    def spy(changes: Any) -> None:
        sizes.append(len(changes))
        original(changes)

    store.write = spy  # type: ignore[method-assign]
    items = [
        {"id": f"j{i}", "kind": "recording", "path": f"recordings/c/d/{i}.mp4", "target": "t"}
        for i in range(5000)
    ]
    assert await queue.import_items(items) == 5000
    await queue.close()
    assert sum(sizes) == 5000
    assert max(sizes) <= WRITE_BATCH < 5000
    assert len(await asyncio.to_thread(store.load)) == 5000
    await asyncio.to_thread(store.close)


async def test_queue_write_failure_is_kept_and_retried(tmp_path: Path) -> None:
    """A store that cannot be written (its folder turned read-only) loses nothing: the batch
    is kept and written once it can be."""
    folder = tmp_path / "ro"
    folder.mkdir()
    store = SqliteQueueStore(folder / "queue.db")
    queue = await SyncQueue.open(store, save_delay=0.05)
    await queue.flush()
    blocker = folder / "queue.db"
    await asyncio.to_thread(store.close)
    blocker.unlink(missing_ok=True)
    blocker.mkdir()  # a directory where the database should be: every write fails
    await queue.add("event", "events/e1", "t")
    await queue.flush()
    await asyncio.sleep(0.1)
    blocker.rmdir()
    await wait_for(blocker.is_file, timeout=5)
    await queue.close()
    reopened = SqliteQueueStore(blocker)
    assert [j["path"] for j in await asyncio.to_thread(reopened.load)] == ["events/e1"]
    await asyncio.to_thread(reopened.close)


def test_redact_and_md5_helpers(tmp_path: Path) -> None:
    text = (
        "DefaultEndpointsProtocol=http;AccountName=a;AccountKey=abc123==;"
        " url?sv=1&sig=SECRETSIG&se=2 Authorization: SharedKey a:zzz mysecret"
    )
    clean = redact(text, ["mysecret", None, "ab"])
    for secret in ("abc123", "SECRETSIG", "zzz", "mysecret"):
        assert secret not in clean
    data = os.urandom(3 * MIB + 5)
    (tmp_path / "f").write_bytes(data)
    assert file_md5(tmp_path / "f") == (len(data), hashlib.md5(data).digest())
    assert Backoff(initial=1, factor=3, maximum=5, jitter=0).delay(1) == 1
    assert Backoff(initial=1, factor=3, maximum=5, jitter=0).delay(3) == 5
    assert isinstance(VerifyError("x"), SyncError)


async def test_azure_target_protocol_and_blob_name(
    azurite: Azurite, session: aiohttp.ClientSession
) -> None:
    client = await asyncio.to_thread(build_client, azure_config(azurite, "abc", "/pre/"), session)
    target = AzureBlobTarget(azure_config(azurite, "abc", "/pre/"), client)
    assert isinstance(target, SyncTarget)
    assert target.blob_name("ev/x.mp4") == "pre/ev/x.mp4"
    await target.close()
    assert not session.closed


async def test_verify_failure_keeps_local_files(tmp_path: Path) -> None:
    """The copy is damaged after it was written (a flaky share): no delete, a retry later."""
    storage = tmp_path / "storage"
    files = make_event(storage, "ev17", {"cam": [20 * KIB]})
    dest = tmp_path / "dest"
    damage = True

    async def flaky_share[*Ts, T](func: Callable[[*Ts], T], /, *args: *Ts) -> T:
        result = await asyncio.to_thread(func, *args)
        if damage and getattr(func, "__name__", "") == "_copy_hashed":
            copied = Path(cast(tuple[Any, ...], args)[1])
            await asyncio.to_thread(lambda: copied.write_bytes(b"!" * copied.stat().st_size))
        return result

    target = FolderTarget(FolderConfig(dest), flaky_share)
    with pytest.raises(VerifyError):
        await target.upload(storage / "events/ev17/event.json", "x.json")
    rec = Recorder()
    queue = SyncQueue()
    engine = rec.engine(storage, queue, TargetSpec("nas", target, delete_after_upload=True))
    engine.start()
    try:
        await engine.enqueue_event("ev17")
        await wait_for(lambda: len(rec.results) == 1)
        assert rec.results[0].reason == "verify_failed"
        assert all((storage / "events/ev17" / n).exists() for n in files)
        damage = False
        await wait_for(lambda: len(queue) == 0)
    finally:
        await engine.close()
    assert rec.results[-1].ok, [(r.ok, r.error, r.will_retry) for r in rec.results]
    assert not (storage / "events/ev17").exists()


async def test_remove_target_cancels_its_running_job(tmp_path: Path) -> None:
    make_event(tmp_path, "ev18", {"cam": [KIB]})
    gate = asyncio.Event()
    copying = asyncio.Event()

    async def stuck[*Ts, T](func: Callable[[*Ts], T], /, *args: *Ts) -> T:
        if getattr(func, "__name__", "") == "_copy_hashed":
            copying.set()
            await gate.wait()
        return await asyncio.to_thread(func, *args)

    rec = Recorder()
    queue = SyncQueue()
    target = FolderTarget(FolderConfig(tmp_path / "d"), stuck)
    engine = rec.engine(tmp_path, queue, TargetSpec("nas", target))
    engine.start()
    try:
        await engine.enqueue_event("ev18")
        await wait_for(copying.is_set)  # the job is running
        await engine.remove_target("nas")
        await engine.wait_idle()
    finally:
        await engine.close()
    assert len(queue) == 0
    assert rec.results == []
    assert (tmp_path / "events/ev18").exists()


async def test_empty_event_and_vanished_recording(tmp_path: Path) -> None:
    (tmp_path / "events" / "empty").mkdir(parents=True)
    rel = "recordings/cam/2026-01-01/20260101-000000.mp4"
    write_file(tmp_path / rel, KIB)
    rec = Recorder()
    queue = SyncQueue()
    spec = TargetSpec("nas", FolderTarget(FolderConfig(tmp_path / "d")), include_recordings=True)
    engine = rec.engine(tmp_path, queue, spec)
    assert await engine.enqueue_event("empty") == 1
    assert await engine.enqueue_recording(rel) == 1
    (tmp_path / rel).unlink()
    engine.start()
    try:
        await wait_for(lambda: len(queue) == 0)
    finally:
        await engine.close()
    assert sorted(r.reason or "" for r in rec.results) == ["local_missing", "local_missing"]
    assert not (tmp_path / "d").exists()


async def test_azure_request_errors_and_missing_local(
    azurite: Azurite, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    bad_name = await create_azure_target(azure_config(azurite, "ab"), session)  # 3-63 chars
    local = tmp_path / "clip.mp4"
    write_file(local, 10)
    try:
        with pytest.raises(SyncError, match="HTTP 400") as excinfo:
            await bad_name.upload(local, "clip.mp4")
        assert type(excinfo.value) is SyncError
    finally:
        await bad_name.close()
    target = await create_azure_target(azure_config(azurite, container_name()), session)
    try:
        with pytest.raises(LocalFileMissingError):
            await target.upload(tmp_path / "nope.mp4", "nope.mp4")
    finally:
        await target.close()


@needs_rclone
async def test_rclone_remote_without_md5_cannot_verify(tmp_path: Path) -> None:
    """A crypt remote reports no MD5: uploads must fail verification, never count as safe."""
    assert RCLONE is not None
    obscured = await asyncio.create_subprocess_exec(
        RCLONE, "obscure", "pw", stdout=asyncio.subprocess.PIPE
    )
    password = (await obscured.communicate())[0].decode().strip()
    conf = tmp_path / "rclone.conf"
    conf.write_text(
        f"[crypt]\ntype = crypt\nremote = {tmp_path / 'vault'}\npassword = {password}\n"
    )
    target = RcloneTarget(RcloneConfig(remote="crypt:dvr", config_file=str(conf)))
    local = tmp_path / "clip.mp4"
    write_file(local, 3 * KIB)
    with pytest.raises(VerifyError, match="no MD5"):
        await target.upload(local, "ev/clip.mp4")
    assert not await target.exists_verified(local, "ev/clip.mp4")
    assert list((tmp_path / "vault").rglob("*"))  # the data did arrive, only unverifiable


@needs_rclone
async def test_rclone_cancelled_call_kills_the_process(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    script = tmp_path / "hanging-rclone"
    script.write_text(f"#!/bin/sh\necho $$ > {pid_file}\nexec sleep 30\n")
    script.chmod(0o755)
    target = RcloneTarget(RcloneConfig(remote="x:", rclone_binary=str(script)))
    task = asyncio.create_task(target.validate())
    await wait_for(lambda: pid_file.exists() and pid_file.read_text().strip() != "")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


async def test_azurite_checks_block_md5(azurite: Azurite, session: aiohttp.ClientSession) -> None:
    """Why validate_blocks exists: the service refuses a block whose MD5 does not match."""
    service = BlobServiceClient.from_connection_string(
        azurite.connection_string, transport=AioHttpTransport(session=session, session_owner=False)
    )
    async with service:
        container = service.get_container_client(container_name())
        await container.create_container()
        blob = container.get_blob_client("b")
        with pytest.raises(HttpResponseError) as excinfo:
            await blob.stage_block(
                "0001", b"data", length=4, transactional_content_md5=hashlib.md5(b"other").digest()
            )
        assert excinfo.value.status_code == 400


def test_folder_copy_failures_leave_nothing_behind(tmp_path: Path) -> None:
    """A vanished source is reported as such; a copy that cannot be put in place leaves no temp."""
    from custom_components.pm_dvr.core.sync.errors import LocalFileMissingError
    from custom_components.pm_dvr.core.sync.folder import _copy_hashed

    dest_root = tmp_path / "dest"
    with pytest.raises(LocalFileMissingError):
        _copy_hashed(tmp_path / "gone.mp4", dest_root / "gone.mp4")
    source = tmp_path / "clip.mp4"
    source.write_bytes(b"x" * 1000)
    occupied = dest_root / "clip.mp4"
    (occupied / "inside").mkdir(parents=True)
    with pytest.raises(IsADirectoryError):
        _copy_hashed(source, occupied)
    assert sorted(p.name for p in dest_root.iterdir()) == ["clip.mp4"]

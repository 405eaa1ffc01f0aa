"""The queue's structure (an index by target and due time, nothing copied), lanes per target,
timeouts on every target operation, the retry limit and coalesced wake-ups.

Hangs are real: an endpoint that accepts TCP connections and never answers (tests/rig/sockets),
a FIFO that a read blocks on, an rclone that cannot reach its remote.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
import copy
import gc
import os
from pathlib import Path
import random
import shutil
import time
from typing import Any

import aiohttp
from blockbuster import blockbuster_ctx
import pytest
import pytest_asyncio

from custom_components.pm_dvr.core.sync import (
    AzureBlobConfig,
    AzureTuning,
    Backoff,
    FolderConfig,
    FolderTarget,
    RcloneConfig,
    RcloneTarget,
    SyncQueue,
    TargetSpec,
    TargetStatus,
    TargetTimeoutError,
    create_azure_target,
)
from tests.rig.azurite import ACCOUNT_KEY, ACCOUNT_NAME
from tests.rig.blocking import allow_queue_table
from tests.rig.sockets import SilentServer

from .test_sync import KIB, Recorder, make_event, wait_for, write_file

JOBS = 100_000
HUNG = AzureTuning(retry_total=0, retry_backoff=0.1, request_timeout=5.0)
RCLONE = shutil.which("rclone")


@pytest.fixture(autouse=True)
def no_blocking_calls_in_loop() -> Iterator[None]:
    """Fail on any blocking call the sync core makes in the event loop."""
    with blockbuster_ctx("custom_components.pm_dvr.core.sync", excluded_modules=["logging"]) as bb:
        allow_queue_table(bb)
        yield


@pytest_asyncio.fixture
async def session(socket_enabled: None) -> AsyncIterator[aiohttp.ClientSession]:
    """The shared aiohttp session (HA's in production)."""
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.fixture
def rclone_installed() -> None:
    """rclone comes from Debian (scripts/setup installs it): fail, never skip."""
    if RCLONE is None:
        pytest.fail("rclone is not installed: run scripts/setup")


def hung_azure(server: SilentServer) -> AzureBlobConfig:
    """An Azure account whose endpoint accepts connections and never answers."""
    return AzureBlobConfig(
        connection_string=(
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint=http://127.0.0.1:{server.port}/{ACCOUNT_NAME};"
        ),
        account_url=None,
        credential=None,
        container="hung",
    )


# ---------------------------------------------------------------- the queue's structure


def recording_job(
    job_id: str, index: int, target: str, next_attempt: float, added: float
) -> dict[str, Any]:
    """A queued recording upload as the queue stores it (its other fields take the defaults)."""
    return {
        "id": job_id,
        "kind": "recording",
        "path": f"recordings/cam/2026-01-01/{index:06d}.mp4",
        "target": target,
        "next_attempt": next_attempt,
        "added": added,
    }


async def test_pick_from_100k_jobs_is_an_index_lookup_and_copies_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """100k jobs on two targets: a pick is one lookup in an index ordered by target, state and
    due time (no scan, no sort), takes the earliest due job of that target only and hands out
    the queue's own job (a read-only view, no copy); leased, changed and removed jobs are
    skipped or found at their new time."""
    rng = random.Random(17)
    now = 1_000_000.0
    items = [
        recording_job(
            f"j{index:06d}",
            index,
            "a" if index % 2 else "b",
            now + rng.uniform(-3600, 3600),
            now - 7200 + index * 0.01,
        )
        for index in range(JOBS)
    ]
    queue = SyncQueue(items, clock=lambda: now)
    assert len(queue) == JOBS
    assert queue.count("a") == queue.count("b") == JOBS // 2
    plan = queue.pick_plan()
    assert "INDEX jobs_due (target=? AND state=?)" in plan
    assert "SCAN" not in plan
    assert "TEMP B-TREE" not in plan  # read in order from the index, never sorted

    def no_copies(*_: Any, **__: Any) -> Any:
        raise AssertionError("the queue copied a job")

    monkeypatch.setattr(copy, "deepcopy", no_copies)
    monkeypatch.setattr(copy, "copy", no_copies)

    due_a = sorted(
        (item["next_attempt"], item["added"], item["id"])
        for item in items
        if item["target"] == "a" and item["next_attempt"] <= now
    )
    picked: list[str] = []
    while (job := queue.take_due("a", now)) is not None:
        picked.append(job["id"])
        assert job["target"] == "a"
    assert picked == [job_id for _, _, job_id in due_a]  # every due job, earliest first
    assert queue.take_due("b", now - 3601) is None  # nothing of b is due that early
    later_a = min(
        i["next_attempt"] for i in items if i["target"] == "a" and i["next_attempt"] > now
    )
    assert queue.next_due("a") == later_a
    assert len(queue) == JOBS  # picked jobs are leased, still queued

    # The view is the queue's own job: a change shows through it, and it cannot be written.
    view = queue.take_due("b", now)
    assert view is not None
    await queue.update(view["id"], last_error="seen through the view")
    assert view["last_error"] == "seen through the view"
    with pytest.raises(TypeError):
        view["attempts"] = 1  # type: ignore[index]

    # Leased jobs come back at their (new) time; changed and removed ones are found where they
    # now are.
    await queue.update(picked[0], next_attempt=now + 10_000)
    queue.release(picked[0])
    queue.release(picked[1])
    assert queue.take_due("a", now)["id"] == picked[1]  # type: ignore[index]
    b_jobs = [i for i in items if i["target"] == "b" and i["id"] != view["id"]]
    for later in (now + 10_000, now + 20_000):
        for item in b_jobs[:30_000]:
            await queue.update(item["id"], next_attempt=later)
    for item in b_jobs[30_000:40_000]:
        await queue.remove(item["id"])
    assert queue.count("b") == JOBS // 2 - 10_000
    moved = {i["id"] for i in b_jobs[:30_000]}
    expected_b = sorted(
        (now + 20_000 if i["id"] in moved else i["next_attempt"], i["added"], i["id"])
        for i in b_jobs[:30_000] + b_jobs[40_000:]
    )
    got: list[str] = []
    while (job := queue.take_due("b", now + 30_000)) is not None:
        got.append(job["id"])
    assert got == [job_id for _, _, job_id in expected_b]
    assert queue.next_due("b") is None


def test_queued_jobs_give_the_cycle_collector_nothing_to_scan() -> None:
    """A full cycle collection holds the GIL, and so the event loop, for as long as it takes to
    scan every tracked object: queued jobs must not be such objects (100k jobs as sets and
    NamedTuples made each full collection 30 ms longer on Python 3.13; as dicts, 50 ms on 3.14,
    which tracks every dict)."""
    now = 1_000_000.0
    items = [
        recording_job(f"j{index:06d}-{target}", index, target, now + index, now - index)
        for index in range(20_000)
        for target in ("a", "b")  # two jobs per path
    ]
    gc.collect()
    before = len(gc.get_objects())
    queue = SyncQueue(items, clock=lambda: now)
    gc.collect()
    assert len(queue) == 40_000
    assert len(gc.get_objects()) - before < 100
    assert [view["id"] for view in queue.siblings("j000007-a")] == ["j000007-b"]
    view = queue.take_due("a", now + 7)
    assert view is not None
    assert dict(view) == items[0] | {"attempts": 0, "last_error": None} | {
        "first_failure": None,
        "failed": None,
    }


async def test_bulk_changes_go_in_chunks_with_the_loop_free_between() -> None:
    """Sync now, requeueing a target's failed jobs and removing a target each change thousands
    of jobs: every job is changed, the other target's jobs are not, and the loop runs other
    work between chunks instead of waiting for the whole change."""
    now = 1_000_000.0
    items = [
        recording_job(f"{target}{index:05d}", index, target, now + 3600 + index, now - index)
        for target, jobs in (("a", 5_000), ("b", 10))
        for index in range(jobs)
    ]
    queue = SyncQueue(items, clock=lambda: now)
    ticks = [0]

    async def other_work() -> None:
        while True:
            ticks[0] += 1
            await asyncio.sleep(0)

    beside = asyncio.create_task(other_work())
    await asyncio.sleep(0)

    async def ticked(change: Any) -> Any:
        before = ticks[0]
        result = await change
        assert ticks[0] - before >= 3, "the loop waited for the whole change"
        return result

    await ticked(queue.retry_all(now, "a"))
    assert all(job["next_attempt"] == now for job in queue.jobs() if job["target"] == "a")
    assert queue.next_due("b") == now + 3600
    for index in range(5_000):
        await queue.fail(f"a{index:05d}", last_error="gave up")
    assert (queue.count("a"), queue.failed_count("a"), len(queue)) == (0, 5_000, 10)
    assert await ticked(queue.requeue_failed("a")) == 5_000
    assert (queue.count("a"), queue.failed_count("a")) == (5_000, 0)
    requeued = queue.get("a04999")
    assert requeued is not None
    assert (requeued["attempts"], requeued["failed"], requeued["next_attempt"]) == (0, None, now)
    assert await ticked(queue.remove_target("a")) == 5_000
    assert queue.targets() == {"b"}
    assert len(queue) == queue.count("b") == 10
    beside.cancel()


async def test_new_jobs_and_sync_now_keep_the_order() -> None:
    """Jobs added later go after equal ones; sync_now brings every job of a target forward."""
    clock = [100.0]
    queue = SyncQueue(clock=lambda: clock[0])
    first = await queue.add("event", "events/e1", "t")
    second = await queue.add("event", "events/e2", "t")
    assert first is not None
    assert second is not None
    await queue.update(first["id"], next_attempt=500.0)
    assert queue.next_due("t") == 100.0
    assert queue.take_due("t", 100.0)["id"] == second["id"]  # type: ignore[index]
    assert queue.take_due("t", 100.0) is None
    await queue.retry_all(200.0, "t")
    assert queue.take_due("t", 200.0)["id"] == first["id"]  # type: ignore[index]
    queue.release(first["id"])
    queue.release(second["id"])
    await queue.retry_all(150.0)
    assert [queue.take_due("t", 150.0)["id"] for _ in range(2)] == [  # type: ignore[index]
        second["id"],
        first["id"],
    ]


# ---------------------------------------------------------------- lanes and timeouts


@pytest.mark.usefixtures("socket_enabled")
async def test_hung_azure_target_does_not_delay_a_folder_target(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    """Azure accepts connections and never answers: its two slots hang, yet every folder
    upload is done meanwhile; the hang then fails as a timeout and the target shows it."""
    storage = tmp_path / "storage"
    for index in range(4):
        make_event(storage, f"ev{index}", {"cam": [4 * KIB]})
    with SilentServer() as server:
        hung = await create_azure_target(hung_azure(server), session, tuning=HUNG)
        rec = Recorder()
        queue = SyncQueue()
        engine = rec.engine(
            storage,
            queue,
            TargetSpec("az", hung),
            TargetSpec("nas", FolderTarget(FolderConfig(tmp_path / "nas"))),
            backoff=Backoff(initial=60.0),
        )
        engine.start()
        try:
            for index in range(4):
                assert await engine.enqueue_event(f"ev{index}") == 2
            await wait_for(lambda: sum(r.ok for r in rec.results) == 4, timeout=4.0)
            assert {r.target_id for r in rec.results} == {"nas"}
            assert engine.running("az") == 2  # both Azure slots still hang
            assert engine.target_status("az").ok  # not failed yet: within its timeout
            await wait_for(lambda: len(rec.results) == 6, timeout=15)
        finally:
            await engine.close()
    failures = [r for r in rec.results if r.target_id == "az"]
    assert [(r.ok, r.reason, r.will_retry) for r in failures] == [(False, "timeout", True)] * 2
    status = engine.target_status("az")
    assert (status.ok, status.reason) == (False, "timeout")
    assert "did not answer within 5 s" in (status.message or "")
    assert server.accepted >= 2
    assert engine.target_status("nas").ok
    for index in range(4):
        assert (tmp_path / "nas" / f"ev{index}" / "event.json").exists()


@pytest.mark.usefixtures("socket_enabled")
async def test_every_azure_request_is_bounded(session: aiohttp.ClientSession) -> None:
    """Checking, validating and uploading against a hung endpoint all fail as timeouts."""
    tuning = AzureTuning(retry_total=3, retry_backoff=0.1, request_timeout=0.5)
    with SilentServer() as server:
        target = await create_azure_target(hung_azure(server), session, tuning=tuning)
        local = Path(__file__)
        try:
            for call in (
                lambda: target.exists_verified(local, "x"),
                target.validate,
                lambda: target.upload(local, "x"),
            ):
                started = time.monotonic()
                with pytest.raises(TargetTimeoutError, match=r"did not answer within 0\.\d+ s"):
                    await call()
                assert time.monotonic() - started < 5
        finally:
            await target.close()


async def test_folder_call_that_hangs_times_out_and_holds_off_the_next(tmp_path: Path) -> None:
    """A read that blocks in the kernel (a FIFO no one writes: like a dead network mount)
    fails after the timeout; while its thread is stuck, the target's next calls fail at once
    instead of taking another thread; once it returns, the target works again."""
    dest = tmp_path / "nas"
    (dest / "ev").mkdir(parents=True)
    os.mkfifo(dest / "ev" / "empty.mp4")
    local = tmp_path / "empty.mp4"
    local.write_bytes(b"")
    target = FolderTarget(FolderConfig(dest), timeout=0.5)
    with pytest.raises(TargetTimeoutError, match=r"did not answer within 0\.5 s"):
        await target.exists_verified(local, "ev/empty.mp4")
    with pytest.raises(TargetTimeoutError, match="still not answering"):  # at once, no wait
        await target.validate()
    # The blocked open returns once a writer comes and goes.
    writer = os.open(dest / "ev" / "empty.mp4", os.O_WRONLY | os.O_NONBLOCK)
    os.close(writer)

    async def works() -> bool:
        try:
            await target.validate()
        except TargetTimeoutError:
            return False
        return True

    deadline = time.monotonic() + 5
    while not await works():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    other = tmp_path / "clip.mp4"
    write_file(other, 3 * KIB)
    result = await target.upload(other, "ev/clip.mp4")
    assert result.size == 3 * KIB


@pytest.mark.usefixtures("socket_enabled", "rclone_installed")
async def test_rclone_without_progress_is_killed_and_with_progress_is_not(tmp_path: Path) -> None:
    """A check against a hung remote ends at command_timeout; a copy that moves no bytes ends
    after stall_timeout; a slow copy whose bytes keep moving runs past both."""
    conf = tmp_path / "rclone.conf"
    local = tmp_path / "clip.bin"
    data = write_file(local, 4 * 1024 * KIB)
    with SilentServer() as server:
        conf.write_text(
            f"[local]\ntype = local\n\n[hung]\ntype = azureblob\nuse_emulator = true\n"
            f"endpoint = http://127.0.0.1:{server.port}/{ACCOUNT_NAME}\n"
        )
        hung = RcloneTarget(
            RcloneConfig(
                remote="hung:c/dvr",
                config_file=str(conf),
                retries=1,
                low_level_retries=1,
                command_timeout=1.0,
                stall_timeout=2.0,
            )
        )
        started = time.monotonic()
        with pytest.raises(TargetTimeoutError, match="rclone lsjson timed out after 1 s"):
            await hung.exists_verified(local, "clip.bin")
        with pytest.raises(TargetTimeoutError, match="rclone copyto made no progress for 2 s"):
            await hung.upload(local, "clip.bin")
        assert time.monotonic() - started < 10
    slow = RcloneTarget(
        RcloneConfig(
            remote=f"local:{tmp_path / 'remote'}",
            config_file=str(conf),
            extra_env={"RCLONE_BWLIMIT": "1M"},  # 4 MiB at 1 MiB/s: about 4 s
            command_timeout=2.0,
            stall_timeout=2.0,
        )
    )
    started = time.monotonic()
    result = await slow.upload(local, "clip.bin")
    assert time.monotonic() - started > 2.0  # longer than either timeout, yet not killed
    assert result.size == len(data)
    assert (tmp_path / "remote" / "clip.bin").read_bytes() == data


# ---------------------------------------------------------------- retry limit, wake-ups


async def test_retry_limit_moves_jobs_to_the_failed_list_until_retried(tmp_path: Path) -> None:
    """Failures back off; once the first failure is older than the target's retry limit, the
    job moves to the failed list (never picked, not counted as queued); retry_failed puts it
    back with a fresh budget and it goes through once the target works."""
    storage = tmp_path / "storage"
    make_event(storage, "ev", {"cam": [KIB]})
    blocker = tmp_path / "nas"
    blocker.write_bytes(b"the share is not mounted")
    rec = Recorder()
    queue = SyncQueue()
    spec = TargetSpec("nas", FolderTarget(FolderConfig(blocker)), retry_limit=0.6)
    engine = rec.engine(
        storage, queue, spec, backoff=Backoff(initial=0.1, factor=2.0, maximum=0.2, jitter=0.0)
    )
    engine.start()
    try:
        await engine.enqueue_event("ev")
        await wait_for(lambda: any(r.gave_up for r in rec.results))
        assert len(queue) == 0
        [failed] = queue.failed_jobs("nas")
        assert failed["attempts"] == len(rec.results) >= 3
        assert failed["failed"] - failed["first_failure"] >= 0.6
        assert [r.will_retry for r in rec.results][-1] is False
        assert all(r.will_retry for r in rec.results[:-1])
        await asyncio.sleep(0.5)
        assert queue.take_due("nas", time.time() + 3600) is None
        count = len(rec.results)
        assert count == failed["attempts"]  # nothing more was tried
        blocker.unlink()
        assert await engine.retry_failed("nas") == 1
        await wait_for(lambda: rec.results[-1].ok)
    finally:
        await engine.close()
    assert queue.failed_jobs() == []
    assert len(queue) == 0
    assert (blocker / "ev" / "event.json").exists()


async def test_recordings_wake_only_lanes_that_can_start_them(tmp_path: Path) -> None:
    """A batch of closed clips wakes each target that takes recordings once; a target that
    takes events only, a held one, and one with every slot busy are not woken at all."""
    storage = tmp_path / "storage"
    paths = [f"recordings/cam/2026-01-01/20260101-0000{i:02d}.mp4" for i in range(6)]
    for path in paths:
        write_file(storage / path, KIB)
    gate = asyncio.Event()
    copying = asyncio.Event()

    async def slow_share[*Ts, T](func: Callable[[*Ts], T], /, *args: *Ts) -> T:
        if getattr(func, "__name__", "") == "_copy_hashed":
            copying.set()
            await gate.wait()
        return await asyncio.to_thread(func, *args)

    rec = Recorder()
    queue = SyncQueue()
    engine = rec.engine(
        storage,
        queue,
        TargetSpec(
            "rec", FolderTarget(FolderConfig(tmp_path / "a"), slow_share), include_recordings=True
        ),
        TargetSpec("events", FolderTarget(FolderConfig(tmp_path / "b"))),
        TargetSpec("held", FolderTarget(FolderConfig(tmp_path / "c")), include_recordings=True),
        concurrency=2,
    )
    engine.hold("held", TargetStatus(ok=False, reason="auth_failed", message="refused"))
    assert engine.target_status("held").held
    engine.start()
    try:
        await engine.wait_idle()
        assert await engine.enqueue_recordings(paths[:4]) == 8
        assert [engine.wakeups(t) for t in ("rec", "events", "held")] == [1, 0, 0]
        await wait_for(lambda: engine.running("rec") == 2)
        await wait_for(copying.is_set)
        assert await engine.enqueue_recording(paths[4]) == 2
        assert await engine.enqueue_recordings(paths[5:]) == 2
        assert [engine.wakeups(t) for t in ("rec", "events", "held")] == [1, 0, 0]
        gate.set()
        await wait_for(lambda: queue.count("rec") == 0)
        assert engine.running("held") == 0
        assert queue.count("held") == 6  # held: nothing tried
        engine.retry_target("held")
        await wait_for(lambda: len(queue) == 0)
    finally:
        await engine.close()
    assert engine.wakeups("held") == 1
    assert sorted(r.target_id for r in rec.results) == ["held"] * 6 + ["rec"] * 6
    assert all(r.ok for r in rec.results)
    assert engine.wakeups("nobody") == 0
    assert engine.running("nobody") == 0


async def test_a_lane_waiting_out_a_backoff_is_not_woken_for_it(tmp_path: Path) -> None:
    """A target whose only job waits out its backoff sleeps until then: asking it to retry
    (not held) or queueing the same job again does not wake it; sync_now does."""
    storage = tmp_path / "storage"
    make_event(storage, "ev", {"cam": [KIB]})
    blocker = tmp_path / "nas"
    blocker.write_bytes(b"not mounted")
    rec = Recorder()
    queue = SyncQueue()
    engine = rec.engine(
        storage,
        queue,
        TargetSpec("nas", FolderTarget(FolderConfig(blocker))),
        backoff=Backoff(initial=60.0, jitter=0.0),
    )
    engine.start()
    try:
        await engine.enqueue_event("ev")
        await wait_for(lambda: len(rec.results) == 1)
        await engine.wait_idle()
        woken = engine.wakeups("nas")
        engine.retry_target("nas")
        assert await engine.enqueue_event("ev") == 0
        assert engine.wakeups("nas") == woken
        blocker.unlink()
        await engine.sync_now()
        assert engine.wakeups("nas") == woken + 1
        await wait_for(lambda: len(queue) == 0)
    finally:
        await engine.close()
    assert rec.results[-1].ok

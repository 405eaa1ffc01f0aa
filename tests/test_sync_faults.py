"""Sync through Home Assistant when targets misbehave: a hung endpoint, refused credentials,
uploads that fail for good, and HA stopping with uploads in flight.

Real parts only: Azurite, rclone, folders, and an endpoint that accepts TCP connections and
never answers (tests/rig/sockets.py). Timeouts and the retry limit are shortened for the test.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
import logging
from pathlib import Path
from typing import Any

from homeassistant.components.repairs import repairs_flow_manager
from homeassistant.config_entries import SOURCE_REAUTH
from homeassistant.const import EVENT_HOMEASSISTANT_STOP, STATE_OFF, STATE_ON
from homeassistant.core import Event, HomeAssistant
from homeassistant.data_entry_flow import FlowResult, FlowResultType
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component
import pytest

from custom_components.pm_dvr import sync as sync_module
from custom_components.pm_dvr.const import DOMAIN, EVENT_PM_DVR_UPLOAD
from custom_components.pm_dvr.core.clips import Clip
from custom_components.pm_dvr.core.sync import SqliteQueueStore
from custom_components.pm_dvr.diagnostics import async_get_config_entry_diagnostics
from custom_components.pm_dvr.sync import failed_issue_id, held_issue_id, queue_path

from .common import wait_for
from .conftest import target_subentry
from .rig.azurite import ACCOUNT_KEY, ACCOUNT_NAME, Azurite
from .rig.sockets import SilentServer
from .test_sync import (
    BAD_KEY,
    ENTRY_ID,
    MIB,
    assert_uploaded,
    azure_target,
    blobs,
    entity_id,
    fast_retries,  # noqa: F401  (autouse: retries after 0.3 s)
    folder_target,
    hub_entry,
    make_event,
    no_secrets_logged,  # noqa: F401
    setup,
    state,
    unload,
)

PROBLEM = "binary_sensor"


@pytest.fixture
def uploads(hass: HomeAssistant) -> list[Event]:
    """Every pm_dvr_upload bus event."""
    fired: list[Event] = []
    hass.bus.async_listen(EVENT_PM_DVR_UPLOAD, fired.append)
    return fired


@pytest.fixture
def failures(caplog: pytest.LogCaptureFixture) -> Iterator[list[logging.LogRecord]]:
    """The engine's "Sync of ... failed" warnings, as they are logged."""
    caplog.set_level(logging.DEBUG, logger="custom_components.pm_dvr")
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.getMessage().startswith("Sync of "):
                records.append(record)

    handler = Collect()
    engine_logger = logging.getLogger("custom_components.pm_dvr.core.sync.engine")
    engine_logger.addHandler(handler)
    yield records
    engine_logger.removeHandler(handler)


def failed_for(records: list[logging.LogRecord], target_id: str) -> int:
    return sum(1 for r in records if f" to {target_id} failed" in r.getMessage())


def hung_connection_string(server: SilentServer) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};"
        f"BlobEndpoint=http://127.0.0.1:{server.port}/{ACCOUNT_NAME};"
    )


async def fix_issue(hass: HomeAssistant, issue_id: str) -> FlowResult:
    """Run an issue's repair flow as the UI does: open it, see the confirmation, submit."""
    assert await async_setup_component(hass, "repairs", {})
    manager = repairs_flow_manager(hass)
    assert manager is not None
    result: FlowResult = await manager.async_init(
        DOMAIN, context={"issue_id": issue_id}, data={"issue_id": issue_id}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "confirm"
    assert result["description_placeholders"]
    return await manager.async_configure(result["flow_id"], {})


@pytest.fixture
def short_day(monkeypatch: pytest.MonkeyPatch) -> None:
    """A retry limit of one "day" is 0.6 s."""
    monkeypatch.setattr(sync_module, "DAY", 0.6)


@pytest.fixture
def short_timeout(monkeypatch: pytest.MonkeyPatch) -> float:
    """Target operations time out after 4 s instead of 60 s."""
    monkeypatch.setattr(sync_module, "TIMEOUT", 4.0)
    return 4.0


@pytest.mark.usefixtures("socket_enabled", "no_secrets_logged")
async def test_hung_target_shows_a_problem_and_never_delays_another(
    hass: HomeAssistant,
    storage_path: Path,
    tmp_path: Path,
    uploads: list[Event],
    short_timeout: float,
) -> None:
    """An Azure endpoint that accepts connections and never answers takes both of its slots;
    the folder target uploads every event meanwhile. The hung target's problem sensor turns
    on once its timeout passes (reason `timeout`); the folder's stays off."""
    with SilentServer() as server:
        entry = hub_entry(
            storage_path,
            azure_target("t_hung", hung_connection_string(server), "hung"),
            folder_target("t_nas", tmp_path / "nas"),
        )
        sync = await setup(hass, entry)
        for index in range(3):
            event_id = f"20260101-00000{index}-000_hang"
            await hass.async_add_executor_job(
                make_event, storage_path, event_id, {"porch": [100_000]}
            )
            assert await sync.async_enqueue_event(event_id) == 2
        started = asyncio.get_running_loop().time()
        await wait_for(lambda: len(uploads) == 3, timeout=short_timeout * 0.75)
        assert {e.data["target_id"] for e in uploads} == {"t_nas"}
        assert all(e.data["result"] == "success" for e in uploads)
        assert sync.engine.running("t_hung") == 2  # still hanging, both slots
        assert state(hass, PROBLEM, "t_hung_problem") == STATE_OFF
        await wait_for(lambda: state(hass, PROBLEM, "t_hung_problem") == STATE_ON, timeout=15)
        took = asyncio.get_running_loop().time() - started
        assert took >= short_timeout * 0.9
        problem = hass.states.get(entity_id(hass, PROBLEM, "t_hung_problem"))
        assert problem is not None
        assert problem.attributes["reason"] == "timeout"
        assert state(hass, PROBLEM, "t_nas_problem") == STATE_OFF
        assert server.accepted >= 2
        await unload(hass, entry)


@pytest.mark.usefixtures("socket_enabled", "no_secrets_logged")
async def test_refused_target_waits_for_reauth_even_across_a_restart(
    hass: HomeAssistant,
    storage_path: Path,
    azurite: Azurite,
    uploads: list[Event],
    failures: list[logging.LogRecord],
) -> None:
    """Azure refuses the key once: nothing more is tried, not for later events, not after the
    hub restarts (the hold is kept); the reauth flow's new key resumes every upload."""
    entry = hub_entry(
        storage_path,
        azure_target("t_cloud", azurite.connection_string_with_key(BAD_KEY), "held"),
    )
    sync = await setup(hass, entry)
    files = {}
    for name in ("first", "second"):
        event_id = f"20260101-000000-000_{name}"
        files[event_id] = await hass.async_add_executor_job(
            make_event, storage_path, event_id, {"porch": [MIB]}
        )
    assert await sync.async_enqueue_event("20260101-000000-000_first") == 1
    await wait_for(lambda: state(hass, PROBLEM, "t_cloud_problem") == STATE_ON)
    assert await sync.async_enqueue_event("20260101-000000-000_second") == 1
    await asyncio.sleep(1.5)  # five backoff periods
    assert failed_for(failures, "t_cloud") == 1
    assert state(hass, "sensor", f"{ENTRY_ID}_sync_queue") == "2"

    await unload(hass, entry)
    sync = await setup(hass, entry)  # a restart: still held, still no attempt
    assert state(hass, PROBLEM, "t_cloud_problem") == STATE_ON
    problem = hass.states.get(entity_id(hass, PROBLEM, "t_cloud_problem"))
    assert problem is not None
    assert problem.attributes["reason"] == "auth_failed"
    await asyncio.sleep(1.0)
    assert failed_for(failures, "t_cloud") == 1
    flows = [
        flow
        for flow in hass.config_entries.flow.async_progress_by_handler(DOMAIN)
        if flow["context"]["source"] == SOURCE_REAUTH
    ]
    assert len(flows) == 1
    result = await hass.config_entries.flow.async_configure(
        flows[0]["flow_id"], {"connection_string": azurite.connection_string}
    )
    assert result["reason"] == "reauth_successful"
    await wait_for(lambda: len(uploads) == 2, timeout=30)
    assert all(e.data["result"] == "success" for e in uploads)
    found = await blobs(azurite, "held")
    for event_id, event_files in files.items():
        assert_uploaded(
            {k: v for k, v in found.items() if k.startswith(f"dvr/{event_id}/")},
            f"dvr/{event_id}",
            event_files,
        )
    assert state(hass, PROBLEM, "t_cloud_problem") == STATE_OFF
    await unload(hass, entry)


@pytest.mark.usefixtures("socket_enabled")
async def test_refused_rclone_target_gets_a_repair_issue_that_retries(
    hass: HomeAssistant,
    storage_path: Path,
    tmp_path: Path,
    azurite: Azurite,
    failures: list[logging.LogRecord],
) -> None:
    """rclone's login is refused (a forged SAS): the target holds and, having no reauth flow,
    gets a fixable repair issue. Its fix tries once more (refused again: the issue is back);
    a reconfigured remote resumes the uploads and clears the issue."""
    sig = "QmFkU2lnbmF0dXJlQmFkU2lnbmF0dXJlQmFkU2lnbmE%3D"
    query = f"sv=2021-08-06&se=2099-01-01T00%3A00%3A00Z&sr=c&sp=racwdl&sig={sig}"
    conf = tmp_path / "rclone.conf"
    conf.write_text(
        f"[forged]\ntype = azureblob\nsas_url = {azurite.blob_endpoint}/forged?{query}\n\n"
        f"[local]\ntype = local\n"
    )
    issue_registry = ir.async_get(hass)
    done: list[Event] = []
    hass.bus.async_listen(EVENT_PM_DVR_UPLOAD, done.append)
    rclone = target_subentry(
        "t_rc",
        "Offsite",
        {"target_type": "rclone", "remote": "forged:forged/dvr", "rclone_config": str(conf)},
    )
    entry = hub_entry(storage_path, rclone)
    sync = await setup(hass, entry)
    event_id = "20260101-000000-000_rclone"
    files = await hass.async_add_executor_job(
        make_event, storage_path, event_id, {"porch": [10_000]}
    )
    await sync.async_enqueue_event(event_id)
    await wait_for(
        lambda: issue_registry.async_get_issue(DOMAIN, held_issue_id("t_rc")) is not None
    )
    issue = issue_registry.async_get_issue(DOMAIN, held_issue_id("t_rc"))
    assert issue is not None
    assert issue.is_fixable
    assert issue.translation_key == "target_held"
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["target"] == "Offsite"
    assert sig not in issue.translation_placeholders["error"]
    assert not [
        f
        for f in hass.config_entries.flow.async_progress_by_handler(DOMAIN)
        if f["context"]["source"] == SOURCE_REAUTH
    ]
    await asyncio.sleep(1.0)
    assert failed_for(failures, "t_rc") == 1  # held: not retried

    result = await fix_issue(hass, held_issue_id("t_rc"))
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await wait_for(lambda: failed_for(failures, "t_rc") == 2)  # tried once more, refused
    await wait_for(
        lambda: issue_registry.async_get_issue(DOMAIN, held_issue_id("t_rc")) is not None
    )

    local = tmp_path / "offsite"
    hass.config_entries.async_update_subentry(
        entry, entry.subentries["t_rc"], data={**rclone["data"], "remote": f"local:{local}"}
    )
    await wait_for(lambda: bool(done), timeout=30)
    assert done[0].data["result"] == "success"
    for name, data in files.items():
        assert (local / event_id / name).read_bytes() == data
    assert issue_registry.async_get_issue(DOMAIN, held_issue_id("t_rc")) is None
    await unload(hass, entry)


@pytest.mark.usefixtures("short_day")
async def test_uploads_failing_past_the_retry_limit_get_a_repair_that_retries_them(
    hass: HomeAssistant,
    storage_path: Path,
    tmp_path: Path,
    uploads: list[Event],
) -> None:
    """A share down for longer than the target's retry limit (1 "day" of 0.6 s here): the job
    moves to the failed uploads (no longer counted as queued, announced as failed), a fixable
    issue says how many; after a restart it is still there; its fix retries them."""
    issue_registry = ir.async_get(hass)
    blocker = tmp_path / "nas"
    blocker.write_text("the share is not mounted")
    entry = hub_entry(storage_path, folder_target("t_nas", blocker, retry_days=1))
    sync = await setup(hass, entry)
    event_id = "20260101-000000-000_limit"
    files = await hass.async_add_executor_job(
        make_event, storage_path, event_id, {"porch": [20_000]}
    )
    await sync.async_enqueue_event(event_id)
    await wait_for(lambda: bool(uploads), timeout=20)
    assert uploads[0].data["result"] == "failed"
    assert uploads[0].data["error"]
    issue = issue_registry.async_get_issue(DOMAIN, failed_issue_id("t_nas"))
    assert issue is not None
    assert issue.is_fixable
    assert issue.translation_key == "failed_uploads"
    assert issue.translation_placeholders == {"target": "T_NAS", "count": "1", "days": "1"}
    assert state(hass, "sensor", f"{ENTRY_ID}_sync_queue") == "0"
    assert sync.failed_count("t_nas") == 1
    diagnostics = await async_get_config_entry_diagnostics(hass, entry)
    assert diagnostics["sync"]["targets"]["T_NAS"]["failed_uploads"] == 1

    await unload(hass, entry)
    store = SqliteQueueStore(queue_path(hass, ENTRY_ID))
    [saved] = await hass.async_add_executor_job(store.load)
    await hass.async_add_executor_job(store.close)
    assert saved["failed"] is not None
    ir.async_delete_issue(hass, DOMAIN, failed_issue_id("t_nas"))
    sync = await setup(hass, entry)
    assert issue_registry.async_get_issue(DOMAIN, failed_issue_id("t_nas")) is not None

    await hass.async_add_executor_job(blocker.unlink)
    result = await fix_issue(hass, failed_issue_id("t_nas"))
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await wait_for(lambda: len(uploads) == 2, timeout=20)
    assert uploads[1].data["result"] == "success"
    for name, data in files.items():
        assert (blocker / event_id / name).read_bytes() == data
    assert issue_registry.async_get_issue(DOMAIN, failed_issue_id("t_nas")) is None
    assert sync.failed_count("t_nas") == 0
    await unload(hass, entry)
    # Removing the target takes its failed uploads and their issue along.
    await setup(hass, entry)
    hass.config_entries.async_remove_subentry(entry, "t_nas")
    await hass.async_block_till_done()
    assert issue_registry.async_get_issue(DOMAIN, failed_issue_id("t_nas")) is None
    await unload(hass, entry)


async def test_fix_flow_of_a_target_gone_aborts(
    hass: HomeAssistant, storage_path: Path, tmp_path: Path, issue_registry: ir.IssueRegistry
) -> None:
    """A repair whose hub is not running (or whose target is gone) aborts, issue kept."""
    entry = hub_entry(storage_path, folder_target("t_nas", tmp_path / "nas"))
    await setup(hass, entry)
    for issue_id in (failed_issue_id("t_old"), held_issue_id("t_old")):
        ir.async_create_issue(
            hass,
            DOMAIN,
            issue_id,
            is_fixable=True,
            severity=ir.IssueSeverity.WARNING,
            translation_key=issue_id.rsplit("_t_old", 1)[0],
            translation_placeholders={"target": "Old", "count": "1", "days": "7", "error": "x"},
            data={"entry_id": ENTRY_ID, "target_id": "t_old"},
        )
        assert await async_setup_component(hass, "repairs", {})
        manager = repairs_flow_manager(hass)
        assert manager is not None
        result = await manager.async_init(
            DOMAIN, context={"issue_id": issue_id}, data={"issue_id": issue_id}
        )
        assert result["type"] is FlowResultType.ABORT
        assert result["reason"] == "target_gone"
        assert issue_registry.async_get_issue(DOMAIN, issue_id) is not None
    await unload(hass, entry)


@pytest.mark.usefixtures("socket_enabled")
async def test_stop_with_uploads_in_flight_logs_no_error(
    hass: HomeAssistant,
    storage_path: Path,
    azurite: Azurite,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """HA stops while one target sends a big event to Azurite and another hangs: the uploads
    are cancelled and awaited before HA closes its HTTP session, nothing is logged as failed,
    and both jobs are still queued (saved) for the next start, as is an event completed while
    HA was stopping."""
    caplog.set_level(logging.DEBUG)
    with SilentServer() as server:
        entry = hub_entry(
            storage_path,
            azure_target("t_cloud", azurite.connection_string, "stopping"),
            azure_target("t_hung", hung_connection_string(server), "hung", title="Hung"),
        )
        sync = await setup(hass, entry)
        event_id = "20260101-000000-000_stop"
        await hass.async_add_executor_job(
            make_event, storage_path, event_id, {"porch": [64 * MIB, 64 * MIB]}
        )
        assert await sync.async_enqueue_event(event_id) == 2
        late_id = "20260101-000010-000_late"
        await hass.async_add_executor_job(make_event, storage_path, late_id, {"porch": [1000]})

        async def completed_while_stopping(_event: Event) -> None:
            await asyncio.sleep(0.5)  # after sync has stopped and closed its queue
            assert await sync.async_enqueue_event(late_id) == 2

        hass.bus.async_listen_once(EVENT_HOMEASSISTANT_STOP, completed_while_stopping)
        await wait_for(lambda: sync.engine.running("t_cloud") and sync.engine.running("t_hung"))
        caplog.clear()
        await hass.async_stop()
        await asyncio.sleep(0.5)  # anything still running would fail now, on a closed session
    problems = [
        f"{r.name}: {r.getMessage()}"
        for r in caplog.records
        if r.levelno >= logging.WARNING
        and r.name.startswith(("custom_components.pm_dvr", "aiohttp", "azure", "asyncio"))
        and not r.getMessage().startswith("Executing <")  # asyncio's slow-callback note: load
    ]
    assert not problems, problems
    store = SqliteQueueStore(queue_path(hass, ENTRY_ID))
    saved = await hass.async_add_executor_job(store.load)
    await hass.async_add_executor_job(store.close)
    assert sorted((job["path"], job["target"]) for job in saved) == [
        (f"events/{event_id}", "t_cloud"),
        (f"events/{event_id}", "t_hung"),
        (f"events/{late_id}", "t_cloud"),
        (f"events/{late_id}", "t_hung"),
    ]
    assert all(job["attempts"] == 0 for job in saved)


async def test_jobs_kept_by_an_earlier_version_are_taken_over(
    hass: HomeAssistant, storage_path: Path, tmp_path: Path, hass_storage: dict[str, Any]
) -> None:
    """The Store held the jobs before: they move into the queue file (those of targets gone
    meanwhile are dropped, as is a hold of such a target) and leave the Store."""
    event_id = "20260101-000000-000_legacy"
    files = make_event(storage_path, event_id, {"porch": [5000]})
    key = f"{DOMAIN}.{ENTRY_ID}.sync"

    def legacy(job_id: str, target: str) -> dict[str, Any]:
        return {
            "id": job_id,
            "kind": "event",
            "path": f"events/{event_id}",
            "target": target,
            "attempts": 2,
            "next_attempt": 0.0,
            "last_error": "unreachable",
            "added": 1.0,
        }

    hass_storage[key] = {
        "version": 1,
        "minor_version": 1,
        "key": key,
        "data": {
            "items": [legacy("old1", "t_nas"), legacy("old2", "t_gone")],
            "last_upload": None,
            "failing_since": {},
            "held": {"t_gone": {"reason": "auth_failed", "message": "refused"}},
        },
    }
    fired: list[Event] = []
    hass.bus.async_listen(EVENT_PM_DVR_UPLOAD, fired.append)
    entry = hub_entry(storage_path, folder_target("t_nas", tmp_path / "nas"))
    await setup(hass, entry)
    await wait_for(lambda: bool(fired))
    assert [(e.data["target_id"], e.data["result"]) for e in fired] == [("t_nas", "success")]
    for name, data in files.items():
        assert (tmp_path / "nas" / event_id / name).read_bytes() == data
    await unload(hass, entry)
    assert "items" not in hass_storage[key]["data"]
    assert hass_storage[key]["data"]["held"] == {}
    store = SqliteQueueStore(queue_path(hass, ENTRY_ID))
    assert await hass.async_add_executor_job(store.load) == []
    await hass.async_add_executor_job(store.close)


async def test_clips_closing_together_are_queued_in_one_batch(
    hass: HomeAssistant, storage_path: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Clips that close at the same moment reach the loop in one hop and wake the target
    that takes recordings once; a target of events only is not woken; a path outside the
    recordings is logged and skipped, the others still go."""
    entry = hub_entry(
        storage_path,
        folder_target("t_all", tmp_path / "all", upload="all"),
        folder_target("t_events", tmp_path / "events"),
    )
    sync = await setup(hass, entry)

    def write_clips() -> list[Clip]:
        clips = []
        for index in range(3):
            path = storage_path / "recordings" / "porch" / "2026-01-01" / f"2026010{index}.mp4"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"clip" * 1000)
            clips.append(Clip(start=index, end=index + 1, camera="porch", path=path, size=4000))
        return clips

    clips = await hass.async_add_executor_job(write_clips)
    stray = Clip(start=9, end=10, camera="porch", path=tmp_path / "elsewhere.mp4", size=1)
    await sync.engine.wait_idle()
    for clip in [*clips, stray]:  # as recorder threads do, all before the loop's next turn
        sync._on_clip(clip)
    await wait_for(lambda: len(list((tmp_path / "all").rglob("*.mp4"))) == 3)
    assert sync.engine.wakeups("t_all") == 1
    assert sync.engine.wakeups("t_events") == 0
    assert not (tmp_path / "events").exists()
    assert "Not queued for upload" in caplog.text

    hass.config_entries.async_remove_subentry(entry, "t_all")
    await hass.async_block_till_done()
    sync._on_clip(clips[0])  # nobody takes recordings now: not even a hop to the loop
    await hass.async_block_till_done()
    assert len(sync.engine.queue) == 0
    await unload(hass, entry)


async def test_removing_the_hub_removes_its_queue_file(
    hass: HomeAssistant, storage_path: Path, tmp_path: Path
) -> None:
    """The queue file lives in HA's .storage and goes with its hub."""
    entry = hub_entry(storage_path, folder_target("t_nas", tmp_path / "nas"))
    sync = await setup(hass, entry)
    await sync.engine.queue.flush()
    path = queue_path(hass, ENTRY_ID)
    assert path.parent == Path(hass.config.path(".storage"))
    await sync.async_stop()
    assert await hass.async_add_executor_job(path.exists)
    assert await hass.config_entries.async_remove(ENTRY_ID)
    await hass.async_block_till_done()
    assert not await hass.async_add_executor_job(path.exists)


async def test_a_queue_file_that_cannot_be_opened_leaves_the_hub_working(
    hass: HomeAssistant, storage_path: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Something else sits where the queue file goes: the error is logged, the hub starts
    and uploads with a queue kept in memory."""
    path = queue_path(hass, ENTRY_ID)
    await hass.async_add_executor_job(lambda: path.mkdir(parents=True))
    fired: list[Event] = []
    hass.bus.async_listen(EVENT_PM_DVR_UPLOAD, fired.append)
    entry = hub_entry(storage_path, folder_target("t_nas", tmp_path / "nas"))
    sync = await setup(hass, entry)
    assert "Cannot open the sync queue" in caplog.text
    event_id = "20260101-000000-000_memory"
    await hass.async_add_executor_job(make_event, storage_path, event_id, {"porch": [1000]})
    assert await sync.async_enqueue_event(event_id) == 1
    await wait_for(lambda: bool(fired))
    assert fired[0].data["result"] == "success"
    await unload(hass, entry)

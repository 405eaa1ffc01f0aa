"""Sync through Home Assistant: events uploaded to real Azurite, folders and rclone remotes.

Faults are real too: Azurite stopped in the middle of an upload, a target that cannot be written,
a refused account key, a hub reloaded with uploads still queued.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
import hashlib
import json
import logging
import os
from pathlib import Path
import shutil
import time
from typing import Any

from azure.storage.blob.aio import BlobServiceClient
from homeassistant.config_entries import SOURCE_REAUTH, SOURCE_USER, ConfigSubentryData
from homeassistant.const import ATTR_ENTITY_ID, STATE_OFF, STATE_ON
from homeassistant.core import Event, HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import (
    device_registry as dr,
    entity_registry as er,
    issue_registry as ir,
)
from homeassistant.helpers.dispatcher import async_dispatcher_send
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from syrupy.assertion import SnapshotAssertion

from custom_components.pm_dvr import sync as sync_module
from custom_components.pm_dvr.compat import device_subentry_ids
from custom_components.pm_dvr.const import (
    CONF_STORAGE_PATH,
    DOMAIN,
    EVENT_PM_DVR_UPLOAD,
    SUBENTRY_TARGET,
    signal_event,
)
from custom_components.pm_dvr.core.capture import EventInfo
from custom_components.pm_dvr.core.sync import Backoff, SqliteQueueStore
from custom_components.pm_dvr.devices import find_device
from custom_components.pm_dvr.sync import (
    SyncCoordinator,
    invalid_issue_id,
    issue_id,
    queue_path,
)

from .common import wait_for
from .conftest import target_subentry
from .rig.azurite import ACCOUNT_KEY, Azurite

BAD_KEY = "QmFkS2V5" * 11
MIB = 1024 * 1024
ENTRY_ID = "01JPMDVRSYNC00000000000000"
FAST = Backoff(initial=0.3, factor=1.0, maximum=0.3, jitter=0.0)


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retry failed uploads after 0.3 s instead of 30 s (the engine's backoff is its own test)."""
    monkeypatch.setattr(sync_module, "BACKOFF", FAST)


@pytest.fixture
def no_secrets_logged(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Nothing pm_dvr logs (down to debug) holds an account key."""
    caplog.set_level(logging.DEBUG, logger="custom_components.pm_dvr")
    yield
    assert ACCOUNT_KEY not in caplog.text
    assert BAD_KEY not in caplog.text


@pytest.fixture
def rclone_installed() -> None:
    """rclone comes from Debian (scripts/setup installs it): fail, never skip."""
    if shutil.which("rclone") is None:
        pytest.fail("rclone is not installed: run scripts/setup")


@pytest.fixture
def uploads(hass: HomeAssistant) -> list[Event]:
    """Every pm_dvr_upload bus event."""
    fired: list[Event] = []
    hass.bus.async_listen(EVENT_PM_DVR_UPLOAD, fired.append)
    return fired


def hub_entry(storage_path: Path, *subentries: ConfigSubentryData) -> MockConfigEntry:
    """A hub without cameras (sync needs none) and the given subentries."""
    return MockConfigEntry(
        domain=DOMAIN,
        title=str(storage_path),
        unique_id=str(storage_path),
        data={CONF_STORAGE_PATH: str(storage_path)},
        options={"segment_seconds": 2, "max_storage_gb": 5.0, "max_age_days": 0},
        subentries_data=list(subentries),
        entry_id=ENTRY_ID,
    )


async def setup(hass: HomeAssistant, entry: MockConfigEntry) -> SyncCoordinator:
    if entry.entry_id not in hass.config_entries.async_entry_ids():
        entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    sync = entry.runtime_data.sync
    assert sync is not None
    return sync


async def unload(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


def azure_target(
    target_id: str, connection_string: str, container: str, title: str = "Cloud", **options: Any
) -> ConfigSubentryData:
    return target_subentry(
        target_id,
        title,
        {
            "target_type": "azure_blob",
            "connection_string": connection_string,
            "account_url": None,
            "credential": None,
            "container": container,
            "prefix": "dvr",
        },
        **options,
    )


def folder_target(target_id: str, path: Path, **options: Any) -> ConfigSubentryData:
    return target_subentry(
        target_id, target_id.upper(), {"target_type": "folder", "path": str(path)}, **options
    )


def make_event(
    storage: Path, event_id: str, clips: dict[str, list[int]], label: str = "person"
) -> dict[str, bytes]:
    """An event folder as the capture manager leaves it; returns relative name -> bytes."""
    folder = storage / "events" / event_id
    files: dict[str, bytes] = {}
    for camera, sizes in clips.items():
        for index, size in enumerate(sizes):
            name = f"{camera}/20260101-0000{index:02d}.mp4"
            (folder / camera).mkdir(parents=True, exist_ok=True)
            files[name] = os.urandom(size)
            (folder / name).write_bytes(files[name])
    files["event.json"] = json.dumps({"id": event_id, "label": label, "state": "complete"}).encode()
    (folder / "event.json").write_bytes(files["event.json"])
    return files


async def blobs(server: Azurite, container: str) -> dict[str, tuple[bytes, bytes | None]]:
    """Every committed blob: name -> (content, stored Content-MD5)."""
    found: dict[str, tuple[bytes, bytes | None]] = {}
    async with BlobServiceClient.from_connection_string(server.connection_string) as service:
        client = service.get_container_client(container)
        if not await client.exists():
            return found
        async for item in client.list_blobs():
            blob = client.get_blob_client(item.name)
            data = await (await blob.download_blob()).readall()
            md5 = item.content_settings.content_md5
            found[item.name] = (data, bytes(md5) if md5 else None)
    return found


def assert_uploaded(
    found: dict[str, tuple[bytes, bytes | None]], prefix: str, files: dict[str, bytes]
) -> None:
    """Exactly these blobs, each with the local bytes and their MD5 stored."""
    expected = {f"{prefix}/{name}": data for name, data in files.items()}
    assert set(found) == set(expected)
    for name, data in expected.items():
        content, md5 = found[name]
        assert content == data, name
        assert md5 == hashlib.md5(data).digest(), name


def entity_id(hass: HomeAssistant, platform: str, unique_id: str) -> str:
    found = er.async_get(hass).async_get_entity_id(platform, DOMAIN, unique_id)
    assert found is not None, unique_id
    return found


def state(hass: HomeAssistant, platform: str, unique_id: str) -> str:
    current = hass.states.get(entity_id(hass, platform, unique_id))
    assert current is not None
    return current.state


@pytest.fixture
async def azurite_persisted(tmp_path: Path) -> AsyncIterator[Azurite]:
    """An Azurite of the test's own, keeping blobs on disk across a stop and a start."""
    server = Azurite(location=tmp_path / "azurite")
    server.start()
    yield server
    server.close()


@pytest.mark.usefixtures("socket_enabled", "no_secrets_logged")
async def test_captured_event_and_recordings_upload(
    hass: HomeAssistant,
    storage_path: Path,
    camera_subentries: list[ConfigSubentryData],
    azurite: Azurite,
    uploads: list[Event],
) -> None:
    """A captured event reaches Azure whole (MD5 stored and equal); recordings of the chosen
    camera follow; the entities and the bus event say so."""
    entry = hub_entry(
        storage_path,
        *camera_subentries,
        azure_target(
            "t_cloud", azurite.connection_string, "e2e", upload="all", cameras=["front-door"]
        ),
    )
    await setup(hass, entry)
    await wait_for(lambda: all(c.session.available for c in entry.runtime_data.cameras.values()))
    index = entry.runtime_data.index
    await wait_for(lambda: len(index.clips("front-door")) >= 2, timeout=30)
    assert state(hass, "binary_sensor", "t_cloud_problem") == STATE_OFF
    problem = hass.states.get(entity_id(hass, "binary_sensor", "t_cloud_problem"))
    assert problem is not None
    assert problem.attributes["device_class"] == "problem"
    assert problem.attributes["friendly_name"] == "Cloud Upload problem"

    response = await hass.services.async_call(
        DOMAIN,
        "capture_event",
        {ATTR_ENTITY_ID: ["camera.front_door"], "pre_seconds": 2, "post_seconds": 0},
        blocking=True,
        return_response=True,
    )
    assert response is not None
    event_id = str(response["event_id"])
    await wait_for(lambda: any(e.data["event_id"] == event_id for e in uploads), timeout=40)
    [done] = [e for e in uploads if e.data["event_id"] == event_id]
    folder = Path(str(response["path"]))
    files = {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }
    assert "event.json" in files
    assert any(name.startswith("front-door/") for name in files)
    assert done.data == {
        "target": "Cloud",
        "target_id": "t_cloud",
        "event_id": event_id,
        "bytes": sum(len(data) for data in files.values()),
        "files": len(files),
        "result": "success",
        "error": None,
        "deleted_local": False,
    }
    found = await blobs(azurite, "e2e")
    assert_uploaded(
        {k: v for k, v in found.items() if k.startswith(f"dvr/{event_id}/")},
        f"dvr/{event_id}",
        files,
    )
    await wait_for(lambda: any(name.startswith("dvr/recordings/front-door/") for name in found))
    assert not any(name.startswith("dvr/recordings/garden/") for name in found)
    last = state(hass, "sensor", f"{ENTRY_ID}_last_upload")
    assert last not in ("unknown", "unavailable")
    assert int(state(hass, "sensor", f"{ENTRY_ID}_sync_queue")) >= 0
    assert state(hass, "binary_sensor", "t_cloud_problem") == STATE_OFF
    await unload(hass, entry)


@pytest.fixture
async def dead_connection_read_timers(hass: HomeAssistant) -> AsyncIterator[None]:
    """Cancel aiohttp read timeouts left on connections that are already closed.

    aiohttp 3.14 (HA 2026) starts a request's read timeout when its body writer task finishes,
    and that task can finish after a server that died mid-upload closed the connection: the
    timer then waits on a protocol with no transport. Timers of open connections stay, so the
    harness still catches a response pm_dvr leaves open.
    """
    yield
    for handle in list(hass.loop._scheduled):  # the timers the harness checks
        callback = getattr(handle, "_callback", None)
        owner = getattr(callback, "__self__", None)
        if (
            getattr(callback, "__name__", "") == "_on_read_timeout"
            and owner is not None
            and owner.transport is None
        ):
            handle.cancel()


@pytest.mark.usefixtures("socket_enabled", "no_secrets_logged", "dead_connection_read_timers")
async def test_azurite_stopped_mid_upload(
    hass: HomeAssistant, storage_path: Path, azurite_persisted: Azurite, uploads: list[Event]
) -> None:
    """Azurite dies during the big file: the local event stays, the target shows a problem;
    once Azurite is back and sync_now is called the event is uploaded whole, verified, and only
    then deleted locally. No blob is left half-written or extra."""
    server = azurite_persisted
    entry = hub_entry(
        storage_path,
        azure_target("t_cloud", server.connection_string, "fault", delete_after_upload=True),
    )
    sync = await setup(hass, entry)
    event_id = "20260101-000000-000_fault"
    files = await hass.async_add_executor_job(
        make_event, storage_path, event_id, {"front-door": [MIB, 48 * MIB]}
    )
    folder = storage_path / "events" / event_id
    retention = entry.runtime_data.retention
    assert retention is not None
    retention.async_refresh_event(event_id)
    await wait_for(lambda: retention.usage is not None and retention.usage.events_count == 1)
    assert await sync.async_enqueue_event(event_id) == 1
    first = f"dvr/{event_id}/front-door/20260101-000000.mp4"
    deadline = time.monotonic() + 30
    while first not in await blobs(server, "fault"):  # the small clip is in: the big one is next
        assert time.monotonic() < deadline
    await hass.async_add_executor_job(server.stop)

    await wait_for(lambda: state(hass, "binary_sensor", "t_cloud_problem") == STATE_ON, 60)
    [job] = sync.engine.queue.jobs()
    assert job["attempts"] >= 1
    assert job["last_error"]
    assert state(hass, "sensor", f"{ENTRY_ID}_sync_queue") == "1"
    on_disk = {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in folder.rglob("*")
        if path.is_file()
    }
    assert on_disk == files  # nothing deleted before verification
    assert not uploads

    await hass.async_add_executor_job(server.start)
    await hass.services.async_call(DOMAIN, "sync_now", {}, blocking=True)
    await wait_for(lambda: bool(uploads), timeout=60)
    assert uploads[0].data["result"] == "success"
    assert uploads[0].data["deleted_local"] is True
    assert_uploaded(await blobs(server, "fault"), f"dvr/{event_id}", files)
    assert not folder.exists()
    # Retention hears of the deletion: the event's footage no longer counts toward events.
    await wait_for(lambda: retention.usage is not None and retention.usage.events_count == 0)
    await wait_for(lambda: state(hass, "binary_sensor", "t_cloud_problem") == STATE_OFF)
    assert state(hass, "sensor", f"{ENTRY_ID}_sync_queue") == "0"
    await unload(hass, entry)


async def test_queue_survives_reload(
    hass: HomeAssistant,
    storage_path: Path,
    tmp_path: Path,
    hass_storage: dict[str, Any],
    uploads: list[Event],
) -> None:
    """A hub unloaded with an upload still queued resumes it once it is set up again."""
    blocker = tmp_path / "unmounted"
    blocker.write_text("not a folder")
    nas = blocker / "nas"
    entry = hub_entry(storage_path, folder_target("t_nas", nas))
    sync = await setup(hass, entry)
    event_id = "20260101-000000-000_restart"
    files = await hass.async_add_executor_job(
        make_event, storage_path, event_id, {"garden": [300_000]}
    )
    await sync.async_enqueue_event(event_id)
    await wait_for(lambda: state(hass, "binary_sensor", "t_nas_problem") == STATE_ON)
    assert state(hass, "sensor", f"{ENTRY_ID}_sync_queue") == "1"
    await unload(hass, entry)
    store = SqliteQueueStore(queue_path(hass, ENTRY_ID))
    saved = await hass.async_add_executor_job(store.load)
    await hass.async_add_executor_job(store.close)
    assert [(job["path"], job["target"]) for job in saved] == [(f"events/{event_id}", "t_nas")]
    assert "items" not in hass_storage[f"{DOMAIN}.{ENTRY_ID}.sync"]["data"]

    blocker.unlink()  # the share is mounted again
    await setup(hass, entry)
    await wait_for(lambda: bool(uploads))
    assert uploads[0].data["result"] == "success"
    for name, data in files.items():
        assert (nas / event_id / name).read_bytes() == data
    assert state(hass, "sensor", f"{ENTRY_ID}_sync_queue") == "0"
    assert state(hass, "binary_sensor", "t_nas_problem") == STATE_OFF
    await unload(hass, entry)


@pytest.mark.usefixtures("socket_enabled", "no_secrets_logged")
async def test_wrong_key_starts_reauth(
    hass: HomeAssistant, storage_path: Path, azurite: Azurite, uploads: list[Event]
) -> None:
    """A refused key holds the target and opens the hub's reauth flow for it; the new key
    resumes the upload. Two refused targets get their reauth one after the other."""
    bad = azurite.connection_string_with_key(BAD_KEY)
    entry = hub_entry(
        storage_path,
        azure_target("t_cloud", bad, "rauth"),
        azure_target("t_cloud2", bad, "rauth2", title="Cloud 2"),
    )
    sync = await setup(hass, entry)
    event_id = "20260101-000000-000_reauth"
    files = await hass.async_add_executor_job(
        make_event, storage_path, event_id, {"porch": [5 * MIB]}
    )
    assert await sync.async_enqueue_event(event_id) == 2
    for target_id in ("t_cloud", "t_cloud2"):
        unique_id = f"{target_id}_problem"
        await wait_for(lambda: state(hass, "binary_sensor", unique_id) == STATE_ON)  # noqa: B023
        problem = hass.states.get(entity_id(hass, "binary_sensor", unique_id))
        assert problem is not None
        assert problem.attributes["reason"] == "auth_failed"
    await hass.async_block_till_done()

    def reauth_flows() -> list[Any]:
        return [
            flow
            for flow in hass.config_entries.flow.async_progress_by_handler(DOMAIN)
            if flow["context"]["source"] == SOURCE_REAUTH
        ]

    names = {"Cloud": "t_cloud", "Cloud 2": "t_cloud2"}
    fixed: list[str] = []
    for _ in range(2):
        await wait_for(lambda: len(reauth_flows()) == 1)
        [flow] = reauth_flows()
        assert flow["context"]["entry_id"] == ENTRY_ID
        target_id = names.pop(flow["context"]["title_placeholders"]["name"])
        assert not [e for e in uploads if e.data["target_id"] == target_id]  # held, not failed
        result = await hass.config_entries.flow.async_configure(
            flow["flow_id"], {"connection_string": azurite.connection_string}
        )
        assert result["type"] is FlowResultType.ABORT
        assert result["reason"] == "reauth_successful"
        fixed.append(target_id)
        await wait_for(lambda: {e.data["target_id"] for e in uploads} == set(fixed), 30)
        await hass.async_block_till_done()
    assert sorted(fixed) == ["t_cloud", "t_cloud2"]
    assert all(e.data["result"] == "success" for e in uploads)
    assert_uploaded(await blobs(azurite, "rauth"), f"dvr/{event_id}", files)
    assert_uploaded(await blobs(azurite, "rauth2"), f"dvr/{event_id}", files)
    assert state(hass, "binary_sensor", "t_cloud_problem") == STATE_OFF
    assert state(hass, "binary_sensor", "t_cloud2_problem") == STATE_OFF
    assert not reauth_flows()
    await unload(hass, entry)


async def test_failing_target_raises_repair_issue(
    hass: HomeAssistant, storage_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After the grace period a failing target gets a repair issue, gone after a success."""
    monkeypatch.setattr(sync_module, "FAILING_ISSUE_AFTER", 0.5)
    blocker = tmp_path / "unmounted"
    blocker.write_text("not a folder")
    entry = hub_entry(storage_path, folder_target("t_nas", blocker / "nas"))
    sync = await setup(hass, entry)
    event_id = "20260101-000000-000_issue"
    await hass.async_add_executor_job(make_event, storage_path, event_id, {"garden": [1000]})
    await sync.async_enqueue_event(event_id)
    issues = ir.async_get(hass)
    await wait_for(lambda: issues.async_get_issue(DOMAIN, issue_id("t_nas")) is not None)
    issue = issues.async_get_issue(DOMAIN, issue_id("t_nas"))
    assert issue is not None
    assert issue.translation_key == "target_failing"
    assert issue.severity is ir.IssueSeverity.ERROR
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["target"] == "T_NAS"
    assert "Not a directory" in issue.translation_placeholders["error"]

    blocker.unlink()
    await hass.services.async_call(DOMAIN, "sync_now", {"config_entry_id": ENTRY_ID}, blocking=True)
    await wait_for(lambda: issues.async_get_issue(DOMAIN, issue_id("t_nas")) is None)
    assert state(hass, "binary_sensor", "t_nas_problem") == STATE_OFF
    await unload(hass, entry)


def rclone_conf(tmp_path: Path, server: Azurite) -> Path:
    """A local remote, and Azurite (rclone 1.60 needs the endpoint next to use_emulator)."""
    conf = tmp_path / "rclone.conf"
    conf.write_text(
        "[local]\ntype = local\n\n[azurite]\ntype = azureblob\nuse_emulator = true\n"
        f"endpoint = {server.blob_endpoint}\n"
    )
    return conf


@pytest.mark.usefixtures("socket_enabled", "rclone_installed")
async def test_rclone_and_folder_targets_with_filters(
    hass: HomeAssistant,
    storage_path: Path,
    tmp_path: Path,
    azurite: Azurite,
    uploads: list[Event],
) -> None:
    """One event to rclone (local and Azurite) and a folder; filters keep it off the others."""
    conf = str(rclone_conf(tmp_path, azurite))
    local_dest = tmp_path / "rclone-local"

    def rclone(target_id: str, remote: str) -> ConfigSubentryData:
        return target_subentry(
            target_id,
            target_id,
            {"target_type": "rclone", "remote": remote, "rclone_config": conf},
        )

    entry = hub_entry(
        storage_path,
        rclone("rc_local", f"local:{local_dest}"),
        rclone("rc_azure", "azurite:rclone-e2e/dvr"),
        folder_target("t_nas", tmp_path / "nas", cameras=["porch"], labels=["person"]),
        folder_target("t_cars", tmp_path / "cars", labels=["car"]),
        folder_target("t_garden", tmp_path / "garden", cameras=["garden"]),
    )
    await setup(hass, entry)
    event_id = "20260101-000000-000_person"
    files = await hass.async_add_executor_job(
        make_event, storage_path, event_id, {"porch": [200_000, 5 * MIB]}, "person"
    )
    # The capture manager announces the event as it starts and once it is complete.
    for event_state in ("recording", "complete"):
        info = EventInfo(
            event_id=event_id,
            label="person",
            trigger="service",
            cameras=("porch",),
            state=event_state,
            path=storage_path / "events" / event_id,
            start=0.0,
            end=1.0,
            persistent=False,
        )
        async_dispatcher_send(hass, signal_event(ENTRY_ID), info)
    await wait_for(lambda: len(uploads) == 3, timeout=60)
    assert {e.data["target_id"] for e in uploads} == {"rc_local", "rc_azure", "t_nas"}
    assert all(e.data["result"] == "success" for e in uploads)
    for dest in (local_dest, tmp_path / "nas"):
        for name, data in files.items():
            assert (dest / event_id / name).read_bytes() == data
    assert_uploaded(await blobs(azurite, "rclone-e2e"), f"dvr/{event_id}", files)
    assert not (tmp_path / "cars" / event_id).exists()
    assert not (tmp_path / "garden" / event_id).exists()
    assert (storage_path / "events" / event_id).is_dir()  # no delete_after_upload
    await unload(hass, entry)


async def test_targets_follow_subentries(
    hass: HomeAssistant, storage_path: Path, tmp_path: Path, uploads: list[Event]
) -> None:
    """Targets added, changed and removed while the hub runs; a broken one shows a problem."""
    broken = target_subentry(
        "t_broken",
        "Broken",
        {
            "target_type": "azure_blob",
            "connection_string": f"AccountKey={BAD_KEY};nonsense",
            "account_url": None,
            "credential": None,
            "container": "x-broken",
            "prefix": "",
        },
    )
    entry = hub_entry(storage_path, broken)
    sync = await setup(hass, entry)
    assert state(hass, "binary_sensor", "t_broken_problem") == STATE_ON
    problem = hass.states.get(entity_id(hass, "binary_sensor", "t_broken_problem"))
    assert problem is not None
    assert problem.attributes["reason"] == "invalid_config"
    invalid = ir.async_get(hass).async_get_issue(DOMAIN, invalid_issue_id("t_broken"))
    assert invalid is not None
    assert not invalid.is_fixable
    assert invalid.translation_placeholders is not None
    assert BAD_KEY not in invalid.translation_placeholders["error"]
    assert state(hass, "sensor", f"{ENTRY_ID}_sync_queue") == "0"
    assert state(hass, "sensor", f"{ENTRY_ID}_last_upload") == "unknown"
    assert await sync.async_enqueue_event("20260101-000000-000_missing") == 0

    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_TARGET), context={"source": SOURCE_USER}
    )
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"next_step_id": "folder"}
    )
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"name": "NAS", "path": str(tmp_path / "nas")}
    )
    result = await hass.config_entries.subentries.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    [nas_id] = [
        s.subentry_id
        for s in entry.subentries.values()
        if s.subentry_type == SUBENTRY_TARGET and s.title == "NAS"
    ]
    assert state(hass, "binary_sensor", f"{nas_id}_problem") == STATE_OFF
    assert sync.target_ids() == ["t_broken", nas_id]

    event_id = "20260101-000000-000_live"
    files = await hass.async_add_executor_job(make_event, storage_path, event_id, {"cam": [999]})
    assert await sync.async_enqueue_event(event_id) == 1  # the broken target is not running
    await wait_for(lambda: bool(uploads))
    assert (tmp_path / "nas" / event_id / "cam/20260101-000000.mp4").read_bytes() == files[
        "cam/20260101-000000.mp4"
    ]

    # Renamed: the entity follows the new name.
    hass.config_entries.async_update_subentry(entry, entry.subentries[nas_id], title="Attic")
    await hass.async_block_till_done()
    attic = hass.states.get(entity_id(hass, "binary_sensor", f"{nas_id}_problem"))
    assert attic is not None
    assert attic.attributes["friendly_name"] == "Attic Upload problem"

    hass.config_entries.async_remove_subentry(entry, nas_id)
    hass.config_entries.async_remove_subentry(entry, "t_broken")
    await hass.async_block_till_done()
    assert sync.target_ids() == []
    assert ir.async_get(hass).async_get_issue(DOMAIN, invalid_issue_id("t_broken")) is None
    assert (
        er.async_get(hass).async_get_entity_id("binary_sensor", DOMAIN, f"{nas_id}_problem") is None
    )
    await unload(hass, entry)


async def test_sync_now_unknown_hub(hass: HomeAssistant, storage_path: Path) -> None:
    """sync_now for a hub that is not loaded is a translated validation error."""
    entry = hub_entry(storage_path)
    await setup(hass, entry)
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN, "sync_now", {"config_entry_id": "nope"}, blocking=True
        )
    assert err.value.translation_key == "hub_not_loaded"
    await unload(hass, entry)


async def test_sync_entities_snapshot(
    hass: HomeAssistant, storage_path: Path, tmp_path: Path, snapshot: SnapshotAssertion
) -> None:
    """The hub's sync entities: registry entries and states."""
    entry = hub_entry(storage_path, folder_target("t_nas", tmp_path / "nas"))
    await setup(hass, entry)
    registry = er.async_get(hass)
    entities = [
        e
        for e in er.async_entries_for_config_entry(registry, entry.entry_id)
        if e.unique_id.endswith(("_sync_queue", "_last_upload", "_problem"))
    ]
    assert len(entities) == 3
    for entity_entry in sorted(entities, key=lambda e: e.entity_id):
        assert entity_entry == snapshot(name=f"{entity_entry.entity_id}-entry")
        assert hass.states.get(entity_entry.entity_id) == snapshot(
            name=f"{entity_entry.entity_id}-state"
        )
    await unload(hass, entry)


def subentries_of(device: dr.DeviceEntry) -> set[str | None]:
    return device_subentry_ids(device, ENTRY_ID)


async def test_each_target_has_its_own_device(
    hass: HomeAssistant,
    storage_path: Path,
    tmp_path: Path,
    device_registry: dr.DeviceRegistry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A target's entities sit on the target's device, in its subentry; the queue stays on the
    hub's device, which belongs to no subentry (HA 2026 would move a shared device)."""
    entry = hub_entry(
        storage_path, folder_target("t_nas", tmp_path / "nas"), folder_target("t_usb", tmp_path)
    )
    await setup(hass, entry)
    for target_id in ("t_nas", "t_usb"):
        device = find_device(device_registry, ENTRY_ID, target_id)
        assert device is not None
        assert (device.name, device.model) == (target_id.upper(), "Folder")
        assert subentries_of(device) == {target_id}
        problem = er.async_get(hass).async_get(
            entity_id(hass, "binary_sensor", f"{target_id}_problem")
        )
        assert problem is not None
        assert (problem.device_id, problem.config_subentry_id) == (device.id, target_id)
    hub = find_device(device_registry, ENTRY_ID, ENTRY_ID)
    assert hub is not None
    assert subentries_of(hub) == {None}
    queue = er.async_get(hass).async_get(entity_id(hass, "sensor", f"{ENTRY_ID}_sync_queue"))
    assert queue is not None
    assert (queue.device_id, queue.config_subentry_id) == (hub.id, None)
    assert "subentry" not in caplog.text
    await unload(hass, entry)


async def test_targets_on_the_hub_device_are_migrated(
    hass: HomeAssistant,
    storage_path: Path,
    tmp_path: Path,
    entity_registry: er.EntityRegistry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A registry from pm_dvr 0.4 (the target's problem sensor on the hub device, the hub
    device in the target's subentry): the entity keeps its id and moves to its own device."""
    device_registry = dr.async_get(hass)
    entry = hub_entry(storage_path, folder_target("t_nas", tmp_path / "nas"))
    entry.add_to_hass(hass)
    hub = device_registry.async_get_or_create(
        config_entry_id=ENTRY_ID,
        config_subentry_id="t_nas",
        identifiers={(DOMAIN, ENTRY_ID)},
        name="pm_dvr",
    )
    old = entity_registry.async_get_or_create(
        "binary_sensor",
        DOMAIN,
        "t_nas_problem",
        suggested_object_id="pm_dvr_nas_problem",
        config_entry=entry,
        config_subentry_id="t_nas",
        device_id=hub.id,
    )
    await setup(hass, entry)
    moved = entity_registry.async_get(old.entity_id)
    assert moved is not None
    target = find_device(device_registry, ENTRY_ID, "t_nas")
    assert target is not None
    assert moved.device_id == target.id
    assert subentries_of(target) == {"t_nas"}
    hub_now = device_registry.async_get(hub.id)
    assert hub_now is not None
    assert subentries_of(hub_now) == {None}
    assert hass.states.get(old.entity_id) is not None
    assert "will stop working" not in caplog.text
    await unload(hass, entry)
    # A second start finds nothing to migrate and changes nothing.
    await setup(hass, entry)
    assert entity_registry.async_get(old.entity_id).device_id == target.id  # type: ignore[union-attr]
    await unload(hass, entry)

"""Repair issues: a camera unreachable for 30 minutes and an unusable storage folder appear in
the issue registry, translated, and clear themselves once the cause is gone."""

from __future__ import annotations

from datetime import timedelta
import os
from pathlib import Path

from homeassistant.config_entries import ConfigSubentryData
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)

from custom_components.pm_dvr.const import DOMAIN
from custom_components.pm_dvr.issues import (
    StorageProblem,
    camera_issue_id,
    storage_issue_id,
    storage_problem,
)

from .common import wait_for
from .conftest import camera_subentry
from .rig.rtsp import RtspServer


@pytest.fixture
def camera_subentries(rtsp_private: RtspServer) -> list[ConfigSubentryData]:
    """One camera on a server of the test's own, which it stops like a camera losing power."""
    return [camera_subentry("Front door", rtsp_private.url("/cam"), "front-door")]


async def later(hass: HomeAssistant, delta: timedelta) -> None:
    """Time travel: fire every timer due within `delta`, then let the work they start finish."""
    async_fire_time_changed(hass, dt_util.utcnow() + delta)
    await hass.async_block_till_done()


async def test_camera_unreachable_for_30_minutes(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    rtsp_private: RtspServer,
    issue_registry: ir.IssueRegistry,
) -> None:
    """No issue for a short drop; one after 30 minutes; gone when the camera is back."""
    coordinator = init_integration.runtime_data.cameras["sub_front-door"]
    issue_id = camera_issue_id("sub_front-door")
    rtsp_private.stop()  # a short drop: back before 30 minutes
    await wait_for(lambda: not coordinator.session.available)
    await later(hass, timedelta(minutes=1, seconds=1))
    rtsp_private.start()
    await wait_for(lambda: coordinator.session.available, timeout=45)
    await later(hass, timedelta(minutes=1, seconds=1))
    await later(hass, timedelta(minutes=31))
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is None

    rtsp_private.stop()
    await wait_for(lambda: not coordinator.session.available)
    await later(hass, timedelta(minutes=1, seconds=1))
    await later(hass, timedelta(minutes=29))
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is None
    await later(hass, timedelta(minutes=31))
    issue = issue_registry.async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_key == "camera_unreachable"
    assert issue.severity is ir.IssueSeverity.ERROR
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["camera"] == "Front door"
    assert issue.translation_placeholders["minutes"] == "30"

    rtsp_private.start()
    await wait_for(lambda: coordinator.session.available, timeout=45)
    await later(hass, timedelta(minutes=1, seconds=1))
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is None


async def test_removed_camera_clears_its_issue(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    rtsp_private: RtspServer,
    issue_registry: ir.IssueRegistry,
) -> None:
    """A camera removed while unreachable loses its issue."""
    coordinator = init_integration.runtime_data.cameras["sub_front-door"]
    rtsp_private.stop()
    await wait_for(lambda: not coordinator.session.available)
    await later(hass, timedelta(minutes=1, seconds=1))
    await later(hass, timedelta(minutes=31))
    assert issue_registry.async_get_issue(DOMAIN, camera_issue_id("sub_front-door"))
    assert hass.config_entries.async_remove_subentry(init_integration, "sub_front-door")
    await hass.async_block_till_done()
    await later(hass, timedelta(minutes=1, seconds=1))
    assert issue_registry.async_get_issue(DOMAIN, camera_issue_id("sub_front-door")) is None


async def test_unload_clears_camera_issues(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    rtsp_private: RtspServer,
    issue_registry: ir.IssueRegistry,
) -> None:
    """An unloaded hub leaves no camera issue behind (nor a pending timer)."""
    coordinator = init_integration.runtime_data.cameras["sub_front-door"]
    rtsp_private.stop()
    await wait_for(lambda: not coordinator.session.available)
    await later(hass, timedelta(minutes=1, seconds=1))
    await later(hass, timedelta(minutes=31))
    assert issue_registry.async_get_issue(DOMAIN, camera_issue_id("sub_front-door"))
    assert await hass.config_entries.async_unload(init_integration.entry_id)
    assert issue_registry.async_get_issue(DOMAIN, camera_issue_id("sub_front-door")) is None
    assert await hass.config_entries.async_setup(init_integration.entry_id)
    await hass.async_block_till_done()  # down again: a timer is pending when the test unloads
    assert init_integration.runtime_data.cameras


@pytest.mark.parametrize("camera_subentries", [[]])
async def test_storage_missing_then_back(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    storage_path: Path,
    issue_registry: ir.IssueRegistry,
) -> None:
    """An unmounted storage folder is a critical issue until it is back; pm_dvr never recreates it."""
    issue_id = storage_issue_id(init_integration.entry_id)
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is None
    moved = storage_path.with_name("unplugged")
    await hass.async_add_executor_job(storage_path.rename, moved)
    await later(hass, timedelta(minutes=1, seconds=1))
    issue = issue_registry.async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_key == "storage_missing"
    assert issue.severity is ir.IssueSeverity.CRITICAL
    assert issue.translation_placeholders == {"path": str(storage_path)}
    assert not await hass.async_add_executor_job(storage_path.exists)
    await hass.async_add_executor_job(moved.rename, storage_path)
    await later(hass, timedelta(minutes=1, seconds=1))
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is None
    await hass.async_add_executor_job(storage_path.rename, moved)
    await later(hass, timedelta(minutes=1, seconds=1))
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is not None
    assert await hass.config_entries.async_unload(init_integration.entry_id)
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is None  # unloaded: not its to show
    await hass.async_add_executor_job(moved.rename, storage_path)


def test_storage_problem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Missing folder, missing recordings folder, a file instead of a folder, no permission."""
    assert storage_problem(tmp_path / "nothing") is StorageProblem.MISSING
    (tmp_path / "recordings").mkdir()
    assert storage_problem(tmp_path) is None
    (tmp_path / "recordings").rmdir()
    assert storage_problem(tmp_path) is StorageProblem.MISSING
    (tmp_path / "file").write_text("x")
    assert storage_problem(tmp_path / "file") is StorageProblem.MISSING
    (tmp_path / "recordings").mkdir()
    # Root may write anywhere; what another user sees is simulated at the permission check.
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    assert storage_problem(tmp_path) is StorageProblem.READ_ONLY

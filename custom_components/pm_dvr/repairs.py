"""Fix flows of pm_dvr's fixable repair issues (HA's `repairs` platform).

- `failed_uploads_<target>`: uploads that kept failing past the target's retry limit; the fix
  puts them back in the queue, due now, with a fresh retry budget.
- `target_held_<target>`: a target that stopped trying (rclone refused the login, rclone is
  missing, settings that cannot work) and has no reauth flow; the fix lets it try again.

Both ask for a confirmation, then act on the hub's sync coordinator. HA deletes the issue once
the flow ends with an entry; the coordinator raises it again if the cause is still there.
"""

from __future__ import annotations

from typing import Any

from homeassistant.components.repairs import RepairsFlow
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResult
from homeassistant.helpers import issue_registry as ir
import voluptuous as vol

from .const import DOMAIN
from .sync import ISSUE_ENTRY, ISSUE_FAILED_UPLOADS, ISSUE_TARGET, SyncCoordinator

ABORT_GONE = "target_gone"


class SyncTargetRepairFlow(RepairsFlow):
    """Confirm, then retry a target's failed uploads or release its hold."""

    def __init__(self, retry_failed: bool, entry_id: str, target_id: str) -> None:
        self._retry_failed = retry_failed
        self._entry_id = entry_id
        self._target_id = target_id

    def _sync(self) -> SyncCoordinator | None:
        entry = self.hass.config_entries.async_get_entry(self._entry_id)
        if entry is None or entry.state is not ConfigEntryState.LOADED:
            return None
        sync: SyncCoordinator | None = entry.runtime_data.sync
        if sync is None or self._target_id not in sync.target_ids():
            return None
        return sync

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> FlowResult:
        """Go to the confirmation."""
        return await self.async_step_confirm()

    async def async_step_confirm(self, user_input: dict[str, Any] | None = None) -> FlowResult:
        """Show what happens; on submit, do it."""
        sync = self._sync()
        if sync is None:
            return self.async_abort(reason=ABORT_GONE)
        if user_input is not None:
            if self._retry_failed:
                await sync.async_retry_failed(self._target_id)
            else:
                sync.async_release_hold(self._target_id)
            return self.async_create_entry(data={})
        issue = ir.async_get(self.hass).async_get_issue(DOMAIN, self.issue_id)
        return self.async_show_form(
            step_id="confirm",
            data_schema=vol.Schema({}),
            description_placeholders=issue.translation_placeholders if issue else None,
        )


async def async_create_fix_flow(
    hass: HomeAssistant, issue_id: str, data: dict[str, str | int | float | None] | None
) -> RepairsFlow:
    """The fix flow of one of pm_dvr's fixable issues (its data names the hub and target)."""
    data = data or {}
    return SyncTargetRepairFlow(
        retry_failed=issue_id.startswith(f"{ISSUE_FAILED_UPLOADS}_"),
        entry_id=str(data.get(ISSUE_ENTRY, "")),
        target_id=str(data.get(ISSUE_TARGET, "")),
    )

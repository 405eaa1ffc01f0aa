"""Switches of a camera: Recording and Motion detection (restored across restarts), and
Persistent recording (its state is the capture manager's, which survives restarts itself)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from homeassistant.components.switch import SwitchEntity, SwitchEntityDescription
from homeassistant.const import STATE_OFF, STATE_ON, Platform
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.restore_state import RestoreEntity

from .const import MOTION_SWITCH_KEY, PERSISTENT_SWITCH_KEY, RECORDING_SWITCH_KEY, signal_event
from .coordinator import CameraCoordinator, CameraStatus
from .data import PmDvrConfigEntry
from .entity import PmDvrCameraEntity, setup_camera_platform
from .events import async_service_start_persistent, async_service_stop_persistent

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class PmDvrSwitchDescription(SwitchEntityDescription):
    """A camera switch: how to read it, how to set it, and whether the camera has it."""

    is_on_fn: Callable[[CameraStatus], bool]
    set_fn: Callable[[CameraCoordinator, bool], None]
    exists_fn: Callable[[CameraCoordinator], bool]


SWITCHES: tuple[PmDvrSwitchDescription, ...] = (
    PmDvrSwitchDescription(
        key=RECORDING_SWITCH_KEY,
        translation_key=RECORDING_SWITCH_KEY,
        is_on_fn=lambda status: status.recording_enabled,
        set_fn=lambda coordinator, on: coordinator.async_set_recording(on),
        exists_fn=lambda coordinator: coordinator.recorder is not None,
    ),
    PmDvrSwitchDescription(
        key=MOTION_SWITCH_KEY,
        translation_key=MOTION_SWITCH_KEY,
        is_on_fn=lambda status: status.motion_enabled,
        set_fn=lambda coordinator, on: coordinator.async_set_motion(on),
        exists_fn=lambda coordinator: coordinator.motion_worker is not None,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PmDvrConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add each camera's switches."""
    setup_camera_platform(
        entry,
        Platform.SWITCH,
        async_add_entities,
        lambda coordinator: [
            *(
                PmDvrSwitch(coordinator, description)
                for description in SWITCHES
                if description.exists_fn(coordinator)
            ),
            *persistent_switches(coordinator),
        ],
    )


class PmDvrSwitch(PmDvrCameraEntity, SwitchEntity, RestoreEntity):
    """A camera switch that restores itself: it is added before its camera starts streaming."""

    entity_description: PmDvrSwitchDescription

    async def async_added_to_hass(self) -> None:
        """Put the feature back as it was before the restart (on when never set)."""
        await super().async_added_to_hass()
        last_state = await self.async_get_last_state()
        if last_state is not None and last_state.state in (STATE_ON, STATE_OFF):
            self.entity_description.set_fn(self.coordinator, last_state.state == STATE_ON)

    @property
    def is_on(self) -> bool:
        """Whether the feature is on."""
        return self.entity_description.is_on_fn(self.coordinator.data)

    async def async_turn_on(self, **kwargs: Any) -> None:
        """Turn the feature on."""
        self.entity_description.set_fn(self.coordinator, True)

    async def async_turn_off(self, **kwargs: Any) -> None:
        """Turn the feature off."""
        self.entity_description.set_fn(self.coordinator, False)


PERSISTENT_SWITCH = SwitchEntityDescription(
    key=PERSISTENT_SWITCH_KEY, translation_key=PERSISTENT_SWITCH_KEY
)


def persistent_switches(coordinator: CameraCoordinator) -> list[PersistentRecordingSwitch]:
    """Persistent recording links clips, so only cameras that record have it."""
    if coordinator.recorder is None:
        return []
    return [PersistentRecordingSwitch(coordinator, PERSISTENT_SWITCH)]


class PersistentRecordingSwitch(PmDvrCameraEntity, SwitchEntity):
    """On while the camera records into a persistent event (from the switch, a service or MQTT)."""

    @property
    def is_on(self) -> bool:
        """Whether the camera is in a persistent event now."""
        capture = self.coordinator.config_entry.runtime_data.capture
        return capture is not None and capture.is_persistent(self.coordinator.slug)

    async def async_added_to_hass(self) -> None:
        """Follow event changes, whoever started or stopped the recording."""
        await super().async_added_to_hass()
        self.async_on_remove(
            async_dispatcher_connect(
                self.hass,
                signal_event(self.coordinator.config_entry.entry_id),
                self._async_event_changed,
            )
        )

    @callback
    def _async_event_changed(self, *_: object) -> None:
        self.async_write_ha_state()

    async def async_turn_on(self, **kwargs: Any) -> None:
        """Start an event that links every clip until turned off."""
        await async_service_start_persistent(
            self.coordinator.config_entry, [self.coordinator], None
        )
        self.async_write_ha_state()

    async def async_turn_off(self, **kwargs: Any) -> None:
        """End the event after the camera's post-roll."""
        await async_service_stop_persistent(
            self.hass, self.coordinator.config_entry, [self.coordinator]
        )
        self.async_write_ha_state()

"""Buttons on the hub device: clean up now."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from homeassistant.components.button import ButtonEntity, ButtonEntityDescription
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .data import PmDvrConfigEntry
from .entity import PmDvrHubEntity

PARALLEL_UPDATES = 0


async def _async_cleanup(entry: PmDvrConfigEntry) -> None:
    retention = entry.runtime_data.retention
    assert retention is not None
    await retention.async_cleanup()


@dataclass(frozen=True, kw_only=True)
class HubButtonDescription(ButtonEntityDescription):
    """A hub button: what pressing it does."""

    press_fn: Callable[[PmDvrConfigEntry], Awaitable[Any]]


HUB_BUTTONS: tuple[HubButtonDescription, ...] = (
    HubButtonDescription(key="cleanup", translation_key="cleanup", press_fn=_async_cleanup),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PmDvrConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the hub buttons."""
    hub = entry.runtime_data.hub
    assert hub is not None
    async_add_entities(PmDvrHubButton(hub, description) for description in HUB_BUTTONS)


class PmDvrHubButton(PmDvrHubEntity, ButtonEntity):
    """A button of the hub."""

    entity_description: HubButtonDescription

    async def async_press(self) -> None:
        """Run the button's action (the figures update when it is done)."""
        await self.entity_description.press_fn(self.coordinator.config_entry)

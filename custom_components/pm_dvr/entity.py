"""Base entity of a camera's device, and the helper that adds entities for live-added cameras."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from homeassistant.const import Platform
from homeassistant.helpers.entity import Entity, EntityDescription
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .coordinator import CameraCoordinator, HubCoordinator
from .data import PmDvrConfigEntry
from .devices import camera_device_info, hub_device_info, target_device_info
from .sync import SyncCoordinator


class PmDvrCameraEntity(CoordinatorEntity[CameraCoordinator]):
    """An entity of one camera's device."""

    _attr_has_entity_name = True

    def __init__(self, coordinator: CameraCoordinator, description: EntityDescription) -> None:
        super().__init__(coordinator)
        self.entity_description = description
        self._attr_unique_id = f"{coordinator.subentry_id}_{description.key}"
        self._attr_device_info = camera_device_info(
            coordinator.subentry_id, coordinator.title, coordinator.settings
        )

    async def async_added_to_hass(self) -> None:
        """Register with the coordinator so a camera change can remove this entity."""
        await super().async_added_to_hass()
        self.coordinator.entities.append(self)
        self.async_on_remove(self._forget)

    def _forget(self) -> None:
        if self in self.coordinator.entities:
            self.coordinator.entities.remove(self)


def setup_camera_platform(
    entry: PmDvrConfigEntry,
    platform: Platform,
    async_add_entities: AddConfigEntryEntitiesCallback,
    build: Callable[[CameraCoordinator], Iterable[Entity]],
) -> None:
    """Add a platform's entities for every camera now, and for cameras added later."""

    def add(coordinator: CameraCoordinator) -> None:
        async_add_entities(list(build(coordinator)), config_subentry_id=coordinator.subentry_id)

    entry.runtime_data.entity_factories[platform] = add
    for coordinator in entry.runtime_data.cameras.values():
        add(coordinator)


class PmDvrHubEntity(CoordinatorEntity[HubCoordinator]):
    """An entity of the hub's device (storage-wide figures and actions)."""

    _attr_has_entity_name = True

    def __init__(self, coordinator: HubCoordinator, description: EntityDescription) -> None:
        super().__init__(coordinator)
        entry = coordinator.config_entry
        self.entity_description = description
        self._attr_unique_id = f"{entry.entry_id}_{description.key}"
        self._attr_device_info = hub_device_info(entry)


class PmDvrSyncEntity(CoordinatorEntity[SyncCoordinator]):
    """Sync state: the queue on the hub's device, or one target's state on that target's."""

    _attr_has_entity_name = True

    def __init__(
        self,
        coordinator: SyncCoordinator,
        description: EntityDescription,
        target_id: str | None = None,
    ) -> None:
        super().__init__(coordinator)
        entry = coordinator.config_entry
        self.entity_description = description
        self.target_id = target_id
        self._attr_unique_id = f"{target_id or entry.entry_id}_{description.key}"
        if target_id is None:
            self._attr_device_info = hub_device_info(entry)
        else:
            subentry = entry.subentries[target_id]
            self._attr_device_info = target_device_info(target_id, subentry.title, subentry.data)

    async def async_added_to_hass(self) -> None:
        """A target's entity is removed with its target (see SyncCoordinator)."""
        await super().async_added_to_hass()
        if self.target_id is not None:
            self.coordinator.target_entities.setdefault(self.target_id, []).append(self)


def setup_target_platform(
    entry: PmDvrConfigEntry,
    platform: Platform,
    async_add_entities: AddConfigEntryEntitiesCallback,
    build: Callable[[SyncCoordinator, str], Iterable[Entity]],
) -> None:
    """Add a platform's entities for every sync target now, and for targets added later."""
    sync = entry.runtime_data.sync
    assert sync is not None

    def add(target_id: str) -> None:
        async_add_entities(list(build(sync, target_id)), config_subentry_id=target_id)

    sync.target_entity_factories[platform] = add
    for target_id in sync.target_ids():
        add(target_id)

"""The few places where HA 2025.4 and HA 2026.x need different calls, each named once.

Everything else in pm_dvr uses API present in both lines (see the README's compatibility note).
"""

from __future__ import annotations

from homeassistant.core import callback
from homeassistant.helpers import device_registry as dr


def device_subentry_ids(device: dr.DeviceEntry, entry_id: str) -> set[str | None]:
    """The subentries of a config entry that a device belongs to (None: the entry itself).

    HA 2026.8 gave a device exactly one subentry (`config_subentry_id`); before, a set per entry.
    """
    if hasattr(device, "config_subentry_id"):  # pragma: no cover - HA 2026 (tested on that line)
        return {device.config_subentry_id}
    return set(device.config_entries_subentries.get(entry_id, ()))


@callback
def async_move_device_to_entry(
    registry: dr.DeviceRegistry, device: dr.DeviceEntry, entry_id: str
) -> None:
    """Make a device belong to the config entry itself, under no subentry."""
    subentries = device_subentry_ids(device, entry_id)
    if subentries == {None}:
        return
    if hasattr(device, "config_subentry_id"):  # pragma: no cover - HA 2026 (tested on that line)
        registry.async_update_device(device.id, new_config_subentry_id=None)  # type: ignore[call-arg,unused-ignore]
        return
    if None not in subentries:  # HA 2025.4: add the entry itself first, then drop the others
        registry.async_update_device(
            device.id, add_config_entry_id=entry_id, add_config_subentry_id=None
        )
    for subentry_id in subentries - {None}:
        registry.async_update_device(
            device.id, remove_config_entry_id=entry_id, remove_config_subentry_id=subentry_id
        )

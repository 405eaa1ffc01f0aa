"""Helpers for pm_dvr's tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import time

from homeassistant.helpers import device_registry as dr

from custom_components.pm_dvr.const import DOMAIN


async def wait_for(
    predicate: Callable[[], object], timeout: float = 20.0, step: float = 0.1
) -> None:
    """Poll until the predicate holds (the recorder and sessions run in their own threads)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(step)


def device_of(registry: dr.DeviceRegistry, entry_id: str, identifier: str) -> dr.DeviceEntry | None:
    """A pm_dvr device by its identifier (a lookup that HA 2025.4 and 2026.x both offer)."""
    return next(
        (
            device
            for device in dr.async_entries_for_config_entry(registry, entry_id)
            if (DOMAIN, identifier) in device.identifiers
        ),
        None,
    )

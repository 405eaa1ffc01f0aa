"""The typed runtime container of a hub config entry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.const import Platform

from .core.capture import CaptureManager
from .core.clips import ClipIndex
from .retention import RetentionManager

if TYPE_CHECKING:
    from .coordinator import CameraCoordinator, HubCoordinator
    from .mqtt import MqttTrigger
    from .sync import SyncCoordinator

type PmDvrConfigEntry = ConfigEntry[PmDvrData]
type CameraEntitiesFactory = Callable[[CameraCoordinator], list[Any]]


@dataclass
class PmDvrData:
    """What a running hub holds: its storage, clip index and one coordinator per camera."""

    storage: Path
    index: ClipIndex
    cameras: dict[str, CameraCoordinator] = field(default_factory=dict)
    hub: HubCoordinator | None = None
    capture: CaptureManager | None = None
    mqtt: MqttTrigger | None = None
    sync: SyncCoordinator | None = None
    retention: RetentionManager | None = None
    # Per platform: builds a camera's entities and adds them (used when a camera is added live).
    entity_factories: dict[Platform, Callable[[CameraCoordinator], None]] = field(
        default_factory=dict
    )
    # What the entry looked like at setup: a change here needs a reload, not a camera diff.
    settings_snapshot: tuple[dict[str, Any], dict[str, Any]] = field(
        default_factory=lambda: ({}, {})
    )

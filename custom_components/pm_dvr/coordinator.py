"""Per-camera coordinator: owns the camera's stream session and pushes its state to entities."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import timedelta
from types import MappingProxyType
from typing import Any

from homeassistant.config_entries import ConfigSubentry
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity import Entity
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator

from .const import CONF_NAME, CONF_SLUG, CONF_STREAM_URL, DOMAIN, LOGGER
from .core.probe import StreamInfo
from .core.stream import SessionState, StreamSession
from .data import PmDvrConfigEntry

STATS_INTERVAL = timedelta(seconds=10)


@dataclass(frozen=True, slots=True)
class CameraStatus:
    """A camera's state as entities see it: immutable, built from the session's counters."""

    state: SessionState
    info: StreamInfo | None
    last_error: str | None
    bitrate_kbps: float | None
    fps: float | None

    @property
    def available(self) -> bool:
        """Whether the camera is streaming."""
        return self.state is SessionState.STREAMING


class CameraCoordinator(DataUpdateCoordinator[CameraStatus]):
    """One camera: its session (thread) and the status pushed on every state change."""

    config_entry: PmDvrConfigEntry

    def __init__(
        self, hass: HomeAssistant, entry: PmDvrConfigEntry, subentry: ConfigSubentry
    ) -> None:
        super().__init__(
            hass,
            LOGGER,
            config_entry=entry,
            name=f"{DOMAIN} {subentry.title}",
            update_interval=STATS_INTERVAL,
        )
        self.subentry_id = subentry.subentry_id
        self.settings: MappingProxyType[str, Any] = subentry.data
        self.title = subentry.title
        self.slug: str = subentry.data[CONF_SLUG]
        self.entities: list[Entity] = []
        self.session = StreamSession(
            subentry.data[CONF_NAME], subentry.data[CONF_STREAM_URL], on_state=self._on_state
        )
        self._last_sample: tuple[float, int, int] | None = None
        self._task: asyncio.Task[None] | None = None
        self.data = self._status()

    @property
    def stream_url(self) -> str:
        """The camera URL (with credentials: never log or show it)."""
        return self.session.url

    async def async_start(self) -> None:
        """Run the session as a background task of the entry, so unload or shutdown ends it.

        An unreachable camera is retried in the session thread, never raised here.
        """
        self._task = self.config_entry.async_create_background_task(
            self.hass, self._async_run_session(), f"{DOMAIN} session {self.slug}"
        )

    async def _async_run_session(self) -> None:
        self.session.start()
        try:
            await asyncio.Event().wait()
        finally:
            # Joining the thread is blocking: in the executor, even while being cancelled.
            await self.hass.async_add_executor_job(self.session.stop)

    async def async_stop(self) -> None:
        """Stop the session and wait until its thread has ended and its clips are closed."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def async_snapshot(self, width: int | None, height: int | None) -> bytes | None:
        """JPEG of the latest keyframe, decoded in the executor."""
        return await self.hass.async_add_executor_job(self.session.snapshot_jpeg, width, height)

    def _on_state(self, state: SessionState, error: str | None) -> None:
        """Called from the session thread: hop to the loop."""
        self.hass.loop.call_soon_threadsafe(self._push)

    @callback
    def _push(self) -> None:
        self.async_set_updated_data(self._status())

    async def _async_update_data(self) -> CameraStatus:
        return self._status()

    def _status(self) -> CameraStatus:
        """Derive rates from the session's counters since the previous sample."""
        stats = self.session.stats
        now = self.hass.loop.time()
        bitrate = fps = None
        sample = (now, stats.total_bytes, stats.video_packets)
        if self._last_sample is not None and now > self._last_sample[0]:
            elapsed = now - self._last_sample[0]
            bitrate = round((sample[1] - self._last_sample[1]) * 8 / 1000 / elapsed, 1)
            fps = round((sample[2] - self._last_sample[2]) / elapsed, 2)
        self._last_sample = sample
        return CameraStatus(
            state=self.session.state,
            info=self.session.info,
            last_error=stats.last_error,
            bitrate_kbps=bitrate,
            fps=fps,
        )

"""Coordinators: one per camera (its session and recorder), one for the hub (storage)."""

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

from .const import (
    CONF_AUDIO,
    CONF_NAME,
    CONF_RECORD,
    CONF_SEGMENT_SECONDS,
    CONF_SLUG,
    CONF_STREAM_URL,
    DEFAULT_SEGMENT_SECONDS,
    DOMAIN,
    LOGGER,
)
from .core.clips import Clip
from .core.probe import StreamInfo
from .core.recorder import Recorder, RecorderState
from .core.stream import SessionState, StreamSession
from .data import PmDvrConfigEntry

STATS_INTERVAL = timedelta(seconds=10)
HUB_INTERVAL = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class CameraStatus:
    """A camera's state as entities see it: immutable, built from the session's counters."""

    state: SessionState
    info: StreamInfo | None
    last_error: str | None
    bitrate_kbps: float | None
    fps: float | None
    recording: RecorderState | None
    recording_enabled: bool
    dropped_packets: int
    clips: int

    @property
    def available(self) -> bool:
        """Whether the camera is streaming."""
        return self.state is SessionState.STREAMING


class CameraCoordinator(DataUpdateCoordinator[CameraStatus]):
    """One camera: its session (thread), its recorder, and the status pushed on every change."""

    config_entry: PmDvrConfigEntry

    def __init__(
        self,
        hass: HomeAssistant,
        entry: PmDvrConfigEntry,
        subentry: ConfigSubentry,
        *,
        recording_enabled: bool = True,
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
            subentry.data[CONF_NAME], subentry.data[CONF_STREAM_URL], on_state=self._on_change
        )
        self.recorder: Recorder | None = None
        if subentry.data.get(CONF_RECORD, True):
            self.recorder = Recorder(
                self.slug,
                entry.runtime_data.storage,
                entry.runtime_data.index,
                entry.options.get(CONF_SEGMENT_SECONDS, DEFAULT_SEGMENT_SECONDS),
                audio=subentry.data.get(CONF_AUDIO, "auto"),
                enabled=recording_enabled,
                on_state=self._on_change,
            )
            self.session.add_sink(self.recorder)
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
            # Joining the thread (and closing the clip) is blocking: in the executor.
            await self.hass.async_add_executor_job(self.session.stop)

    async def async_stop(self) -> None:
        """Stop the session and wait until its thread has ended and its clip is closed."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def async_snapshot(self, width: int | None, height: int | None) -> bytes | None:
        """JPEG of the latest keyframe, decoded in the executor."""
        return await self.hass.async_add_executor_job(self.session.snapshot_jpeg, width, height)

    @callback
    def async_set_recording(self, enabled: bool) -> None:
        """The Recording switch: off closes the clip in progress, the session stays up."""
        if self.recorder is not None:
            self.recorder.set_enabled(enabled)
            self._push()

    def _on_change(self, *_: object) -> None:
        """Called from the session thread (or the recorder's): hop to the loop."""
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
        recorder = self.recorder
        recorder_stats = recorder.stats if recorder else None
        return CameraStatus(
            state=self.session.state,
            info=self.session.info,
            last_error=stats.last_error,
            bitrate_kbps=bitrate,
            fps=fps,
            recording=recorder.state if recorder else None,
            recording_enabled=bool(recorder and recorder.enabled),
            dropped_packets=recorder_stats.dropped_packets if recorder_stats else 0,
            clips=recorder_stats.clips if recorder_stats else 0,
        )


@dataclass(frozen=True, slots=True)
class HubStatus:
    """The hub's storage figures."""

    recordings_bytes: int
    clips: int


class HubCoordinator(DataUpdateCoordinator[HubStatus]):
    """Storage figures of the hub, refreshed when clips close (throttled) and every minute."""

    config_entry: PmDvrConfigEntry

    def __init__(self, hass: HomeAssistant, entry: PmDvrConfigEntry) -> None:
        super().__init__(
            hass,
            LOGGER,
            config_entry=entry,
            name=f"{DOMAIN} hub",
            update_interval=HUB_INTERVAL,
        )
        self._refresh_pending = False
        self.data = self._status()

    def on_clip_added(self, clip: Clip) -> None:
        """Called from recorder threads; coalesces bursts into one refresh on the loop."""
        if not self._refresh_pending:
            self._refresh_pending = True
            self.hass.loop.call_soon_threadsafe(self._push)

    @callback
    def _push(self) -> None:
        self._refresh_pending = False
        self.async_set_updated_data(self._status())

    async def _async_update_data(self) -> HubStatus:
        return self._status()

    def _status(self) -> HubStatus:
        index = self.config_entry.runtime_data.index
        return HubStatus(recordings_bytes=index.total_size(), clips=index.count())

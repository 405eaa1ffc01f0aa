"""The session side of motion detection: a stream sink feeding a ``MotionWorker``, and zones.

No Home Assistant imports.
"""

from __future__ import annotations

import json
from typing import Any

import av
import av.container

from .motion import MotionConfig, MotionWorker, Zone
from .probe import StreamInfo


class MotionSink:
    """Hands a session's video packets to a motion worker (runs in the session thread).

    ``MotionWorker.feed`` only queues the packet; the worker decodes it later in its own thread.
    Meanwhile the recorder (the next sink) rewrites the same packet in place: it sets its
    stream, rebases its timestamps and muxes it (PyAV 13 muxes a new reference, so the data
    survives, but the struct is shared with the worker thread). So each video packet is copied
    here before it is queued: one memcpy of the compressed packet, cheap next to decoding it,
    and this sink is added to the session before the recorder so the copy has the original
    times.
    """

    def __init__(self, worker: MotionWorker) -> None:
        self.worker = worker
        self._video_index = -1

    def on_connect(self, container: av.container.InputContainer, info: StreamInfo) -> None:
        """A (re)connect: a fresh decoder for the new stream."""
        video = container.streams.video[0]
        self._video_index = video.index
        self.worker.start_stream(video)

    def on_packet(self, packet: av.Packet) -> None:
        """Queue a copy of each video packet; O(1) apart from the copy."""
        if packet.stream_index != self._video_index:
            return
        copy = av.Packet(bytes(packet))
        copy.pts = packet.pts
        copy.dts = packet.dts
        copy.time_base = packet.time_base
        copy.is_keyframe = packet.is_keyframe
        self.worker.feed(copy)

    def on_disconnect(self, reason: str) -> None:
        """Nothing to close: the worker outlives connections."""
        self._video_index = -1


def parse_zones(text: str | None) -> tuple[Zone, ...]:
    """Zones from the JSON text of a camera's settings; ValueError or TypeError when invalid.

    The text is a list of ``{"mode": "ignore" | "only", "points": [[x, y], ...]}`` in relative
    (0..1) frame coordinates.
    """
    if not text or not text.strip():
        return ()
    try:
        raw: Any = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"zones are not JSON: {err}") from err
    if not isinstance(raw, list):
        raise TypeError("zones must be a list")
    zones: list[Zone] = []
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("points"), list):
            raise TypeError("each zone needs points")
        try:
            points = tuple((float(x), float(y)) for x, y in item["points"])
        except (TypeError, ValueError) as err:
            raise ValueError("zone points are [x, y] pairs") from err
        zones.append(Zone(points, item.get("mode", "ignore")))
    return tuple(zones)


def motion_config(
    threshold: int | None, min_size: float | None, zones: tuple[Zone, ...]
) -> MotionConfig:
    """A detector configuration from a camera's settings (None: the detector's default)."""
    default = MotionConfig()
    return MotionConfig(
        threshold=int(threshold) if threshold is not None else default.threshold,
        min_area_percent=float(min_size) if min_size is not None else default.min_area_percent,
        zones=zones,
    )

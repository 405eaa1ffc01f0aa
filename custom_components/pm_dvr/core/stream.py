"""One camera connection: a thread that demuxes, reconnects with backoff, and fans packets out.

Cheap cameras allow a single RTSP client, so recording, snapshots and motion all hang off this one
session as sinks. Sinks run in the session thread and must be quick (the recorder muxes in place;
motion hands packets to its own thread through a bounded queue).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
import enum
import logging
import threading
import time
from typing import TYPE_CHECKING, Protocol, cast

import av
import av.container
import av.error
import av.stream
from av.video.codeccontext import VideoCodecContext

from .avcompat import release_decoder
from .errors import InvalidAuthError, PmDvrError, StreamError
from .probe import StreamInfo, is_network_url, open_stream, video_info
from .urls import mask_url

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    type Image = npt.NDArray[np.uint8]

_LOGGER = logging.getLogger(__name__)

# Reconnects: a dropped camera is retried once a second, and only a camera that keeps failing is
# retried less often, up to MAX_RETRY. A flapping camera (down for seconds, up for seconds) is back
# within a second or two of answering again, however often it flaps: any connection that delivers
# a keyframe starts the schedule over. FAST_RETRIES covers a camera's reboot (about a minute when
# refused at once; an attempt that waits out the timeouts stretches it).
FIRST_RETRY = 1.0
FAST_RETRIES = 60
MAX_RETRY = 30.0
JPEG_QUALITY = 85
# Network streams are read in bursts. Once the reader has caught up with the camera (its last read
# waited for data), it naps, the next packets pile up in the socket, and they are read back to
# back: waking the thread for every frame cost more than remuxing the frame did. A nap delays
# packets by at most this much; recording is unaffected, motion and snapshots barely.
# Live viewers switch the naps off (`low_latency`): they get each packet as it arrives.
BURST_NAP = 0.1
CAUGHT_UP = 0.005
# A snapshot decodes from the keyframe to the newest packet once the keyframe is this old.
FRESH_KEYFRAME = 1.0
# The packets after a keyframe are kept only while snapshots are being asked for (a dashboard
# refreshes a camera's picture every 10 s). A camera nobody looks at holds its newest keyframe
# alone, as HA's own stream does: up to a GOP of packets less per camera (about 0.5 MB at
# 4 Mbit/s), and the first snapshot after a quiet spell is at most one GOP old.
SNAPSHOT_INTEREST = 60.0
# The most of a GOP kept for snapshots here and for joining live viewers (core/live.py); a
# longer GOP is not kept until the next keyframe.
GOP_CACHE_BYTES = 16 * 1024 * 1024


class SessionState(enum.StrEnum):
    """Where a session is in its life."""

    CONNECTING = "connecting"
    STREAMING = "streaming"
    RECONNECTING = "reconnecting"
    STOPPED = "stopped"


class StreamSink(Protocol):
    """A consumer of one camera's packets, called from the session thread."""

    def on_connect(
        self, container: av.container.InputContainer, info: StreamInfo
    ) -> None:  # pragma: no cover - protocol
        """A (re)connection: streams and codec parameters may have changed."""

    def on_packet(self, packet: av.Packet) -> None:  # pragma: no cover - protocol
        """One demuxed packet of any stream; filter by `packet.stream_index`."""

    def on_disconnect(self, reason: str) -> None:  # pragma: no cover - protocol
        """The stream ended, failed, was stopped, or this sink was removed."""


@dataclass(slots=True)
class SessionStats:
    """Counters since the session started; rates are derived by whoever samples them."""

    connects: int = 0
    disconnects: int = 0
    video_packets: int = 0
    video_bytes: int = 0
    total_bytes: int = 0
    keyframes: int = 0
    last_error: str | None = None


@dataclass(slots=True)
class Backoff:
    """The wait before each attempt to reach a camera since it last delivered video.

    The retry after a drop and the next `fast_retries` come `first` apart, then the wait doubles
    up to `cap`: quick while a camera comes back, gentle on one that stays away. `reset()` once a
    connection delivers video, so a flapping camera never pays for its earlier outages.
    """

    first: float = FIRST_RETRY
    fast_retries: int = FAST_RETRIES
    cap: float = MAX_RETRY
    failures: int = 0

    def next_delay(self) -> float:
        """Count one more failed connection (or a drop) and say how long to wait now."""
        self.failures += 1
        slow = self.failures - 1 - self.fast_retries
        return self.first if slow <= 0 else min(self.first * 2**slow, self.cap)

    def reset(self) -> None:
        """The camera delivered video: its next drop is retried as quickly as the first."""
        self.failures = 0

    def refused(self) -> None:
        """The camera refused the credentials: skip the quick retries, since many cameras lock
        an account after a few failed logins in a row (the old password will not start working
        within a second)."""
        self.failures = max(self.failures, self.fast_retries + 1)


@dataclass(slots=True)
class _Gop:
    """The packets of the current GOP, for snapshots."""

    seq: int
    codec: str
    extradata: bytes | None
    started: float
    packets: list[av.Packet]


class StreamSession:
    """Owns the one connection to a camera; start() spawns its thread, stop() joins it."""

    def __init__(
        self,
        name: str,
        url: str,
        on_state: Callable[[SessionState, str | None], None] | None = None,
        open_timeout: float = 10.0,
        read_timeout: float = 5.0,
        *,
        backoff: Backoff | None = None,
    ) -> None:
        self.name = name
        self.url = url
        self.open_timeout = open_timeout
        self.read_timeout = read_timeout
        self.state = SessionState.STOPPED
        self.info: StreamInfo | None = None
        self.stats = SessionStats()
        self._on_state = on_state
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._sinks: tuple[StreamSink, ...] = ()
        self._added: list[StreamSink] = []
        self._removed: list[StreamSink] = []
        self._thread: threading.Thread | None = None
        self.backoff = backoff or Backoff()
        self._lost = False
        # The video packets since the latest keyframe (refcounted buffers: no copies).
        self._gop: _Gop | None = None
        self._snapshots_until = 0.0
        self._jpeg_cache: tuple[tuple[int, int, int | None, int | None], bytes] | None = None
        self.low_latency = False

    # -- life cycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Start the session thread; connection problems are retried there, never raised."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, name=f"pm_dvr stream {self.name}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Ask the thread to end and wait for it (at most a read timeout when stalled). Blocking."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout if timeout is not None else self.read_timeout * 3)
            self._thread = None

    @property
    def available(self) -> bool:
        """Whether packets are flowing."""
        return self.state is SessionState.STREAMING

    def add_sink(self, sink: StreamSink) -> None:
        """Attach a sink; the session thread connects it before the next packet."""
        with self._lock:
            self._added.append(sink)

    def remove_sink(self, sink: StreamSink) -> None:
        """Detach a sink; the session thread tells it so (or does it now if not running)."""
        with self._lock:
            if self._thread is None:
                self._sinks = tuple(s for s in self._sinks if s is not sink)
                self._added = [s for s in self._added if s is not sink]
                return
            self._removed.append(sink)

    # -- snapshots --------------------------------------------------------------------------

    def snapshot_jpeg(self, width: int | None = None, height: int | None = None) -> bytes | None:
        """JPEG of the newest frame, decoded on demand (no second connection). Blocking.

        A fresh keyframe is decoded alone; once it is older than FRESH_KEYFRAME, the packets
        after it are decoded too, so a snapshot is never a whole GOP stale (once snapshots are
        being asked for: see SNAPSHOT_INTEREST).
        """
        self._snapshots_until = time.monotonic() + SNAPSHOT_INTEREST
        gop = self._gop
        if gop is None:
            return None
        count = 1 if time.monotonic() - gop.started < FRESH_KEYFRAME else len(gop.packets)
        key = (gop.seq, count, width, height)
        cache = self._jpeg_cache
        if cache is not None and cache[0] == key:
            return cache[1]
        image = decode_latest(gop.codec, gop.extradata, [bytes(p) for p in gop.packets[:count]])
        if image is None:
            return None
        jpeg = encode_jpeg(image, width, height)
        self._jpeg_cache = (key, jpeg)
        return jpeg

    # -- the thread -------------------------------------------------------------------------

    def _set_state(self, state: SessionState, error: str | None = None) -> None:
        if state is self.state and error is None:
            return
        self.state = state
        if self._on_state is not None:
            self._on_state(state, error)

    def _run(self) -> None:
        backoff = self.backoff
        backoff.reset()
        self._set_state(SessionState.CONNECTING)
        while not self._stop.is_set():
            keyframes = self.stats.keyframes
            reason = self._stream_once()
            if self._stop.is_set():
                break
            if self.stats.keyframes > keyframes:
                # The camera delivered video (not merely accepted the connection): whatever
                # failed before is history, and this drop is retried as quickly as the first.
                backoff.reset()
            self.stats.disconnects += 1
            self.stats.last_error = reason
            if not self._lost:
                _LOGGER.warning("Camera %s unavailable: %s", self.name, reason)
                self._lost = True
            self._set_state(SessionState.RECONNECTING, reason)
            if self._stop.wait(backoff.next_delay()):
                break
        self._disconnect_sinks("stopped")
        self._set_state(SessionState.STOPPED)

    def _stream_once(self) -> str:
        """Open, stream until the end or an error, and return why it ended."""
        try:
            container = open_stream(self.url, self.open_timeout, self.read_timeout)
        except InvalidAuthError as err:
            self.backoff.refused()
            return str(err)
        except PmDvrError as err:
            return str(err)
        try:
            try:
                self.info = video_info(container)
            except StreamError as err:
                return str(err)
            release_decoder(container.streams.video[0].codec_context)
            self.stats.connects += 1
            with self._lock:
                self._sinks = (*self._sinks, *self._added)
                self._added.clear()
            for sink in self._sinks:
                sink.on_connect(container, self.info)
            if self._lost:
                _LOGGER.info("Camera %s is back", self.name)
                self._lost = False
            self._set_state(SessionState.STREAMING)
            return self._pump(container)
        finally:
            self._disconnect_sinks("stopped" if self._stop.is_set() else "disconnected")
            container.close()

    def _pump(self, container: av.container.InputContainer) -> str:
        """The per-packet loop: kept minimal, it runs for every packet of every camera."""
        video = container.streams.video[0]
        video_index = video.index
        codec = video.codec_context.name
        extradata = video.codec_context.extradata
        pace = not is_network_url(self.url)
        pace_origin: float | None = None
        stats = self.stats
        stop = self._stop
        monotonic = time.monotonic
        last_read = monotonic()
        gop_room = 0
        self._gop = None
        try:
            for packet in container.demux():
                size = packet.size
                if size == 0:
                    return "end of stream"
                if stop.is_set():
                    return "stopped"
                if self._added or self._removed:
                    self._apply_sink_changes(container)
                stats.total_bytes += size
                if packet.stream_index == video_index:
                    stats.video_packets += 1
                    stats.video_bytes += size
                    if packet.is_keyframe:
                        stats.keyframes += 1
                        now = monotonic()
                        self._gop = _Gop(stats.keyframes, codec, extradata, now, [packet])
                        gop_room = GOP_CACHE_BYTES if now < self._snapshots_until else 0
                    elif gop_room > 0 and self._gop is not None:
                        self._gop.packets.append(packet)
                        gop_room -= size
                    if pace and packet.pts is not None and packet.time_base is not None:
                        pace_origin = self._pace(packet, pace_origin)
                for sink in self._sinks:
                    sink.on_packet(packet)
                if not pace and not self.low_latency:
                    now = monotonic()
                    if now - last_read > CAUGHT_UP:
                        stop.wait(BURST_NAP)
                        now = monotonic()
                    last_read = now
        except av.error.FFmpegError as err:
            return f"read error ({type(err).__name__})"
        return "end of stream"

    def _pace(self, packet: av.Packet, origin: float | None) -> float:
        """Play files at their own speed, as a camera would, instead of as fast as disk allows."""
        assert packet.pts is not None
        assert packet.time_base is not None
        at = float(packet.pts * packet.time_base)
        now = time.monotonic()
        if origin is None:
            return now - at
        wait = origin + at - now
        if wait > 0:
            self._stop.wait(wait)
        return origin

    def _apply_sink_changes(self, container: av.container.InputContainer) -> None:
        with self._lock:
            added, self._added = self._added, []
            removed, self._removed = self._removed, []
            self._sinks = tuple(s for s in (*self._sinks, *added) if s not in removed)
        assert self.info is not None
        for sink in added:
            if sink not in removed:
                sink.on_connect(container, self.info)
        for sink in removed:
            sink.on_disconnect("removed")

    def _disconnect_sinks(self, reason: str) -> None:
        with self._lock:
            removed, self._removed = self._removed, []
            self._sinks = tuple(s for s in self._sinks if s not in removed)
            sinks = self._sinks
        for sink in (*sinks, *removed):
            try:
                sink.on_disconnect(reason)
            except Exception:
                _LOGGER.exception("Sink of camera %s failed to close", self.name)

    def __repr__(self) -> str:
        return f"StreamSession({self.name!r}, {mask_url(self.url)!r}, {self.state})"


def decode_latest(codec: str, extradata: bytes | None, packets: list[bytes]) -> Image | None:
    """Decode a keyframe and the packets after it; the newest frame as BGR. Blocking."""
    context = cast(VideoCodecContext, av.CodecContext.create(codec, "r"))
    if extradata:
        context.extradata = extradata
    frames: list[av.VideoFrame] = []
    try:
        for data in packets:
            frames += context.decode(av.Packet(data))
        frames += context.decode(None)
    except av.error.FFmpegError:
        pass  # a torn packet: the frames before it still show the scene
    if not frames:
        return None
    return cast("Image", frames[-1].to_ndarray(format="bgr24"))


def encode_jpeg(image: Image, width: int | None = None, height: int | None = None) -> bytes:
    """Encode as JPEG, scaled down to fit width/height when asked (aspect kept).

    OpenCV (and numpy) are imported here, on the first snapshot: recording alone never needs
    them, and they cost a camera-only install tens of MB.
    """
    import cv2

    src_h, src_w = image.shape[:2]
    scale = min(
        (width / src_w) if width else 1.0,
        (height / src_h) if height else 1.0,
        1.0,
    )
    if scale < 1.0:
        size = (max(1, round(src_w * scale)), max(1, round(src_h * scale)))
        image = cast("Image", cv2.resize(image, size, interpolation=cv2.INTER_AREA))
    ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:  # pragma: no cover - OpenCV always encodes a valid BGR image
        raise StreamError("JPEG encoding failed")
    return bytes(buffer)

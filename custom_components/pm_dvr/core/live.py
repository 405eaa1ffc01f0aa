"""Live viewers served from the one camera connection: HA's stream, go2rtc and players.

`LiveSource` is a StreamSink. It keeps the packets since the last keyframe (references, not
copies), so a viewer that joins gets a picture at once, and while anyone watches it turns each
packet into MPEG-TS (`ts.TsMuxer`, stream copy; G.711 audio becomes AAC as in recordings) and
hands the bytes to every viewer's bounded queue. Nothing a viewer does reaches the camera or
slows the session thread: a viewer that falls behind skips to the next keyframe, and one that
stops reading is dropped.

Timestamps are the live stream's own: continuous across camera reconnects and jumps, so a
viewer that stays connected through a camera restart carries on.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from fractions import Fraction
import logging
import threading
import time
from typing import Literal

import av
from av.audio.codeccontext import AudioCodecContext
from av.audio.stream import AudioStream
import av.container
import av.error

from .probe import StreamInfo
from .recorder import COPY_AUDIO, TRANSCODE_AUDIO

# The same bound as the session's snapshot GOP: a longer GOP is not kept until the next one.
from .stream import GOP_CACHE_BYTES
from .ts import (
    TS_CLOCK,
    TsMuxer,
    TsTracks,
    adts_header,
    annex_b,
    avcc_parameter_sets,
)

_LOGGER = logging.getLogger(__name__)

# A viewer may hold this much unsent video (about 8 s at 4 Mbit/s) before it skips ahead.
VIEWER_QUEUE_BYTES = 4 * 1024 * 1024
# A viewer whose queue overflows when it has read nothing for this long has stopped: dropped.
STALLED_SECONDS = 10.0
# A camera timestamp moving back, or ahead more than this, starts a new timeline (RTSP re-times
# its packets when the first RTCP report arrives, a restart starts from zero): the live clock
# carries on one frame later instead.
JUMP_AHEAD = 5 * TS_CLOCK
# The live timeline starts here (PCR runs behind the DTS and must not go negative).
FIRST_DTS = 10 * TS_CLOCK


@dataclass(slots=True)
class _Frame:
    """One packet as the live source keeps it: the session's packet and its live times."""

    packet: av.Packet
    video: bool
    keyframe: bool
    pts: int
    dts: int


class Viewer:
    """One live client: a bounded queue of TS bytes, filled by the session thread.

    The consumer iterates `chunks()` on an asyncio loop; `close()` ends it from either side.
    """

    def __init__(
        self, loop: asyncio.AbstractEventLoop, max_bytes: int = VIEWER_QUEUE_BYTES
    ) -> None:
        self.max_bytes = max_bytes
        self.queued_bytes = 0
        self.skips = 0
        self.closed = False
        self.reason: str | None = None
        self._loop = loop
        self._queue: deque[bytes] = deque()
        self._lock = threading.Lock()
        self._waiter: asyncio.Future[None] | None = None
        self._wake_pending = False
        # Until a keyframe chunk arrives (at join, and after a skip) nothing else is queued.
        self._need_keyframe = True
        self._last_take = time.monotonic()

    # -- session thread -------------------------------------------------------------------------

    def push(self, chunk: bytes, keyframe: bool) -> bool:
        """Queue one chunk; False when the viewer has to go (it stopped reading)."""
        with self._lock:
            if self.closed:
                return False
            if self._need_keyframe:
                if not keyframe:
                    return True
                self._need_keyframe = False
            if self.queued_bytes + len(chunk) > self.max_bytes:
                if time.monotonic() - self._last_take > STALLED_SECONDS:
                    self._close_locked("stopped reading")
                    return False
                self.skips += 1
                self._queue.clear()
                self.queued_bytes = 0
                self._need_keyframe = not keyframe
                if self._need_keyframe:
                    return True
            self._queue.append(chunk)
            self.queued_bytes += len(chunk)
            self._wake_locked()
            return True

    def close(self, reason: str) -> None:
        """End the viewer (from any thread); its consumer sees the end after the queued bytes."""
        with self._lock:
            self._close_locked(reason)

    def _close_locked(self, reason: str) -> None:
        if not self.closed:
            self.closed = True
            self.reason = reason
            self._wake_locked()

    def _wake_locked(self) -> None:
        if self._waiter is not None and not self._wake_pending:
            self._wake_pending = True
            self._loop.call_soon_threadsafe(self._wake)

    # -- event loop ----------------------------------------------------------------------------

    def _wake(self) -> None:
        with self._lock:
            self._wake_pending = False
            waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _take(self) -> bytes | None:
        with self._lock:
            if not self._queue:
                return None
            data = b"".join(self._queue)
            self._queue.clear()
            self.queued_bytes = 0
            self._last_take = time.monotonic()
            return data

    async def chunks(self) -> AsyncIterator[bytes]:
        """TS bytes as they come, until the viewer is closed."""
        while True:
            data = self._take()
            if data is not None:
                yield data
                continue
            with self._lock:
                if self._queue:
                    continue
                if self.closed:
                    return
                waiter = self._waiter = self._loop.create_future()
            await waiter


class LiveSource:
    """A StreamSink serving live viewers; `on_watching(True/False)` tells when anyone watches.

    Add it to the session before the recorder, which rewrites packets in place: the times read
    here are the camera's own.
    """

    def __init__(
        self,
        name: str,
        *,
        audio: Literal["auto", "off"] = "auto",
        on_watching: Callable[[bool], None] | None = None,
    ) -> None:
        self.name = name
        self.audio = audio
        self.connected = False
        # Viewers admitted since the source was made (for tests and diagnostics).
        self.served = 0
        self._on_watching = on_watching
        self._lock = threading.Lock()
        self._viewers: list[Viewer] = []
        self._joining: list[Viewer] = []
        self._changed = False
        self._gop: list[_Frame] = []
        self._gop_bytes = 0
        self._gop_full = False
        self._muxer: TsMuxer | None = None
        # The TS bytes since the last keyframe while muxing (GOP_CACHE_BYTES at most).
        self._ts_gop: list[bytes] = []
        self._ts_gop_bytes = 0
        self._warned_slow = False
        # Per connection:
        self._tracks: TsTracks | None = None
        self._video_index = -1
        self._audio_index = -2
        self._v_scale = 1.0
        self._a_scale = 1.0
        self._frame_ticks = TS_CLOCK // 25
        self._annex_b = True
        self._audio_config = b""
        self._audio_in: AudioStream | None = None
        self._encoder: AudioCodecContext | None = None
        # The live timeline (90 kHz), kept across connections:
        self._offset: int | None = None
        self._last_in: int | None = None
        self._last_dts: int | None = None
        self._last_audio = -1

    # -- viewers (any thread) -------------------------------------------------------------------

    @property
    def viewers(self) -> int:
        """Viewers connected or joining."""
        with self._lock:
            return len(self._viewers) + len(self._joining)

    def join(self, viewer: Viewer) -> None:
        """Start serving a viewer at the next packet, from the latest keyframe."""
        with self._lock:
            self._joining.append(viewer)
            self._changed = True

    def leave(self, viewer: Viewer) -> None:
        """Stop serving a viewer (its client went away)."""
        viewer.close("left")
        with self._lock:
            self._changed = True

    def close_viewers(self, reason: str) -> None:
        """End every viewer (the camera is gone for good, or its stream changed)."""
        with self._lock:
            viewers = [*self._viewers, *self._joining]
            self._viewers, self._joining = [], []
            self._changed = True
        for viewer in viewers:
            viewer.close(reason)

    # -- StreamSink (session thread) ------------------------------------------------------------

    def on_connect(self, container: av.container.InputContainer, info: StreamInfo) -> None:
        """A (re)connection: keep viewers when the stream is the same, else end them."""
        video = container.streams.video[0]
        context = video.codec_context
        extradata = bytes(context.extradata or b"")
        self._annex_b = not extradata or extradata[0] != 1
        parameter_sets = extradata if self._annex_b else avcc_parameter_sets(extradata)
        self._video_index = video.index
        time_base = video.time_base or Fraction(1, TS_CLOCK)
        self._v_scale = float(time_base * TS_CLOCK)
        rate = video.average_rate or video.guessed_rate
        self._frame_ticks = round(TS_CLOCK / float(rate)) if rate else TS_CLOCK // 25
        audio_codec = self._setup_audio(container)
        tracks = TsTracks(context.name, parameter_sets, audio_codec)
        if self._tracks is not None and tracks != self._tracks:
            self.close_viewers("stream changed")
            self._muxer = None
        self._tracks = tracks
        self._reset_gop()
        self._last_in = None
        self.connected = True

    def _setup_audio(self, container: av.container.InputContainer) -> str | None:
        self._audio_index = -2
        self._audio_in = None
        self._encoder = None
        self._audio_config = b""
        if self.audio == "off" or not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        codec = stream.codec_context.name
        rate = stream.codec_context.sample_rate or 8000
        if codec in COPY_AUDIO:
            self._audio_config = bytes(stream.codec_context.extradata or b"")
            if codec == "aac" and adts_header(self._audio_config, 0) is None:
                return None
            out_codec = codec
        elif codec in TRANSCODE_AUDIO:
            self._audio_in = stream
            encoder = av.CodecContext.create("aac", "w")
            assert isinstance(encoder, AudioCodecContext)
            encoder.sample_rate = rate
            encoder.layout = "mono"
            encoder.format = "fltp"
            encoder.time_base = Fraction(1, rate)
            encoder.open()
            self._encoder = encoder
            self._audio_config = bytes(encoder.extradata or b"")
            out_codec = "aac"
        else:
            return None
        self._audio_index = stream.index
        self._a_scale = float((stream.time_base or Fraction(1, rate)) * TS_CLOCK)
        return out_codec

    def on_packet(self, packet: av.Packet) -> None:
        """Stamp the packet on the live timeline, keep it for joiners, send it to viewers."""
        index = packet.stream_index
        frame: _Frame | None
        if index == self._video_index:
            frame = self._video_frame(packet)
        elif index == self._audio_index:
            frame = self._audio_frame(packet)
            if frame is None:
                return
        else:
            return
        if frame.keyframe:
            self._reset_gop()
            self._clear_ts_gop()
        if not self._gop_full and (frame.keyframe or self._gop):
            self._gop.append(frame)
            self._gop_bytes += packet.size
            if self._gop_bytes > GOP_CACHE_BYTES:
                self._reset_gop()
                self._gop_full = True
        if self._changed:
            self._apply_viewer_changes(frame)
        if self._muxer is not None:
            self._send(self._mux(frame), frame.keyframe)

    def on_disconnect(self, reason: str) -> None:
        """Viewers wait for the camera to come back; a stopped session ends them."""
        self.connected = False
        self._reset_gop()
        self._clear_ts_gop()
        self._encoder = None
        if reason in ("stopped", "removed"):
            self.close_viewers(reason)
            self._apply_viewer_changes(None)

    # -- the timeline ---------------------------------------------------------------------------

    def _video_frame(self, packet: av.Packet) -> _Frame:
        dts_in: int | None = packet.dts  # PyAV 13's stubs say int; RTSP's first is None
        raw = dts_in if dts_in is not None else packet.pts
        last_dts = self._last_dts
        if raw is None:
            dts = FIRST_DTS if last_dts is None else last_dts + self._frame_ticks
            self._last_in = None
            pts = dts
        else:
            source = int(raw * self._v_scale)
            last_in = self._last_in
            if (
                self._offset is None
                or last_in is None
                or source <= last_in
                or source > last_in + JUMP_AHEAD
            ):
                start = FIRST_DTS if last_dts is None else last_dts + self._frame_ticks
                self._offset = start - source
            self._last_in = source
            dts = source + self._offset
            if last_dts is not None and dts <= last_dts:
                dts = last_dts + 1
            pts = dts
            if packet.pts is not None and packet.dts is not None:
                pts = dts + max(0, int((packet.pts - packet.dts) * self._v_scale))
        self._last_dts = dts
        return _Frame(packet, True, packet.is_keyframe, pts, dts)

    def _audio_frame(self, packet: av.Packet) -> _Frame | None:
        raw = packet.pts if packet.pts is not None else packet.dts
        if raw is None or self._offset is None or self._last_in is None:
            return None
        pts = int(raw * self._a_scale) + self._offset
        if pts <= self._last_audio:
            return None
        self._last_audio = pts
        return _Frame(packet, False, False, pts, pts)

    def _reset_gop(self) -> None:
        self._gop = []
        self._gop_bytes = 0
        self._gop_full = False

    def _clear_ts_gop(self) -> None:
        self._ts_gop = []
        self._ts_gop_bytes = 0

    # -- muxing and fan-out ---------------------------------------------------------------------

    def _apply_viewer_changes(self, current: _Frame | None) -> None:
        """Admit joiners (with the cached GOP up to, not including, `current`), drop leavers."""
        with self._lock:
            self._changed = False
            joining = [v for v in self._joining if not v.closed]
            self._joining = []
            self._viewers = [v for v in self._viewers if not v.closed]
            was_watching = self._muxer is not None
            if self._tracks is None or not self.connected:
                # Not streaming: joiners wait for the next connection's first packet.
                self._joining, joining = joining, []
                self._changed = bool(self._joining)
            self._viewers += joining
            self.served += len(joining)
            watching = bool(self._viewers)
        if watching and self._muxer is None:
            assert self._tracks is not None
            self._muxer = TsMuxer(self._tracks)
            self._clear_ts_gop()
            for frame in self._gop:
                if frame is not current:
                    self._mux(frame)
        elif not watching:
            self._muxer = None
            self._clear_ts_gop()
        if joining and self._ts_gop:
            cached = b"".join(self._ts_gop)
            for viewer in joining:
                viewer.push(cached, keyframe=True)
        if watching != was_watching and self._on_watching is not None:
            self._on_watching(watching)

    def _mux(self, frame: _Frame) -> bytes:
        muxer = self._muxer
        assert muxer is not None
        packet = frame.packet
        if frame.video:
            data = bytes(packet)
            if not self._annex_b:
                data = annex_b(data)
            chunk = muxer.video(data, frame.pts, frame.dts, frame.keyframe)
        else:
            chunk = self._mux_audio(muxer, packet, frame.pts)
        if self._ts_gop_bytes <= GOP_CACHE_BYTES:
            self._ts_gop.append(chunk)
            self._ts_gop_bytes += len(chunk)
            if self._ts_gop_bytes > GOP_CACHE_BYTES:
                self._ts_gop = []  # joiners wait for the next keyframe
        return chunk

    def _mux_audio(self, muxer: TsMuxer, packet: av.Packet, pts: int) -> bytes:
        if self._encoder is None:
            data = bytes(packet)
            if muxer.tracks.audio_codec == "aac":
                header = adts_header(self._audio_config, len(data))
                assert header is not None  # checked on connect
                data = header + data
            return muxer.audio(data, pts)
        assert self._audio_in is not None
        rate = self._encoder.sample_rate
        out = []
        try:
            for decoded in self._audio_in.codec_context.decode(packet):
                # In samples, so the encoder's output carries the input's times (less its delay).
                decoded.pts = round(pts * rate / TS_CLOCK)
                decoded.time_base = Fraction(1, rate)
                for encoded in self._encoder.encode(decoded):
                    if encoded.pts is None:
                        continue
                    data = bytes(encoded)
                    header = adts_header(self._audio_config, len(data))
                    assert header is not None  # the encoder's own config
                    out.append(muxer.audio(header + data, round(encoded.pts * TS_CLOCK / rate)))
        except (av.error.FFmpegError, ValueError) as err:
            _LOGGER.debug("Live audio of %s dropped a packet: %s", self.name, err)
        return b"".join(out)

    def _send(self, chunk: bytes, keyframe: bool) -> None:
        if not chunk:
            return
        gone = False
        for viewer in self._viewers:
            before = viewer.skips
            if not viewer.push(chunk, keyframe):
                gone = True
                _LOGGER.info("Live viewer of %s dropped: %s", self.name, viewer.reason)
            elif viewer.skips != before and not self._warned_slow:
                self._warned_slow = True
                _LOGGER.warning(
                    "A live viewer of %s reads too slowly and skips ahead to keyframes",
                    self.name,
                )
        if gone:
            with self._lock:
                self._changed = True


async def serve_viewer(source: LiveSource, write: Callable[[bytes], Awaitable[object]]) -> str:
    """Serve one viewer until it ends; why it ended ("gone" when the client went away).

    `write` sends bytes to the client (an HTTP response's write); its back-pressure is what
    fills the viewer's queue when the client reads slowly.
    """
    viewer = Viewer(asyncio.get_running_loop())
    source.join(viewer)
    try:
        async for chunk in viewer.chunks():
            await write(chunk)
    except ConnectionError:
        return "gone"
    finally:
        source.leave(viewer)
    return viewer.reason or "ended"

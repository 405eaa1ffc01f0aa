"""Continuous recording: remux one camera's packets into crash-safe fragmented MP4 clips.

The recorder is a StreamSink, so everything here runs in the camera's session thread: packets are
muxed in place (stream copy, video is never decoded), a clip is cut on the first keyframe after
`segment_seconds`, and the keyframe that closes clip N opens clip N+1, so clips are gapless.
Clips are written as `<name>.mp4.part` in fragments of about a second (a power cut loses about a
second) and renamed when closed; `recover_partials` finalises what a crash left behind. The muxer
writes into memory and a `ClipWriter` thread puts the bytes on disk, so a slow disk never holds
up the camera: past `BUFFER_SECONDS` of backlog whole GOPs are dropped and the gap is counted.

Clip times are wall-clock arrival times: a clip starts when its first keyframe reached the
recorder. The camera's own clock only keeps back-to-back clips exactly joined, and only while it
agrees with arrival within CLOCK_TOLERANCE; so a camera that falls behind and then delivers its
backlog fast never gets clips named in the future, and a camera that stalls leaves a gap as long
as the stall.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
import contextlib
from dataclasses import dataclass
import enum
from fractions import Fraction
from functools import partial
import logging
import os
from pathlib import Path
import threading
import time
from typing import Literal

import av
from av.audio.stream import AudioStream
import av.container
import av.error
import av.stream

from .avcompat import add_template_stream, write_header
from .clips import PART_SUFFIX, Clip, ClipIndex, clip_start_from_name
from .layout import clip_path, recordings_dir
from .probe import StreamInfo
from .timestamps import TimestampRepair, Verdict, dts_of, known, parameter_sets
from .writer import BUFFER_SECONDS, ClipWriter, Disk, Finish, Spool, complete_end

_LOGGER = logging.getLogger(__name__)

FRAGMENT_SECONDS = 1.0
# Keyframes land one frame early on RTSP (the first packet has no timestamp): cut that much early.
CUT_TOLERANCE_FRAMES = 1.5
COPY_AUDIO = frozenset({"aac", "mp3"})
TRANSCODE_AUDIO = frozenset({"pcm_alaw", "pcm_mulaw"})
CODEC_TAGS = {"h264": "avc1", "hevc": "hvc1"}
PARAM_HEAD = 512
# After a clip could not be written, the next one is tried this much later (not at every GOP).
RETRY_OPEN_SECONDS = 5.0
# How far the camera's clock may place a keyframe before its arrival (delivery jitter, the session's
# burst reads) and still keep clips exactly back to back; beyond that arrival wins (never after it).
CLOCK_TOLERANCE = 1.0
# Video missing this long (or two frame intervals of a slower camera) is a recording gap.
STALL_SECONDS = 2.0
# Drift corrections closer together than this are one occurrence, logged once.
DRIFT_QUIET_SECONDS = 60.0

MUX_OPTIONS = {
    # Self-contained fragments after an empty moov: a file cut anywhere plays up to its last
    # complete fragment. frag_duration cuts within a GOP so a crash costs ~1 s, not a GOP.
    "movflags": "frag_keyframe+empty_moov+default_base_moof",
    "frag_duration": str(int(FRAGMENT_SECONDS * 1_000_000)),
    # Hand every finished fragment to the OS at once instead of buffering up to 256 KB.
    "flush_packets": "1",
    # Every clip starts at t=0 (like ffmpeg's -reset_timestamps), done by libavformat for free.
    "avoid_negative_ts": "make_zero",
    # A camera that declares audio but sends none must not hold video in the interleaving queue.
    "max_interleave_delta": "1000000",
}

type MuxError = av.error.FFmpegError | OSError | ValueError


class RecorderState(enum.StrEnum):
    """What the recording switch's camera is doing, for the HA enum sensor."""

    RECORDING = "recording"
    RECONNECTING = "reconnecting"
    STOPPED = "stopped"
    # The storage fails or is too slow: video is being lost although the camera streams.
    STORAGE_PROBLEM = "storage_problem"


@dataclass(slots=True)
class RecorderStats:
    """Counters since the recorder was made; bitrate and fps are those of the last closed clip."""

    clips: int = 0
    bytes: int = 0
    packets: int = 0
    dropped_packets: int = 0
    repaired_packets: int = 0
    timestamp_jumps: int = 0
    parameter_changes: int = 0
    gaps: int = 0
    gap_seconds: float = 0.0
    errors: int = 0
    bitrate: float | None = None
    fps: float | None = None
    last_clip: Path | None = None
    last_error: str | None = None


def _is_adts(packet: av.Packet) -> bool:
    """AAC with ADTS headers (MP4 needs raw AAC plus a config the header would lack)."""
    if packet.size < 2:
        return False
    head = bytes(memoryview(packet)[:2])
    return head[0] == 0xFF and head[1] & 0xF0 == 0xF0


class _Clip:
    """The clip being written: its container, output streams and where its time starts.

    `start` may still move back to `earliest` while the clip is open: the first keyframe of a
    connection reaches the recorder late (FFmpeg probes the stream first, about 0.6 s), which
    the next keyframes reveal; the file is then renamed as it closes (its `.part` keeps the
    name from `named`). `gap` is the recording gap counted when it opened. `file` is the
    writer's side of it.
    """

    __slots__ = (
        "audio_out",
        "audio_start",
        "earliest",
        "encoder",
        "file",
        "first_dts",
        "first_muxed",
        "gap",
        "named",
        "out",
        "spool",
        "start",
    )

    def __init__(self, out: av.container.OutputContainer, spool: Spool, start: float) -> None:
        self.out = out
        self.spool = spool
        self.file = spool.file
        self.start = self.named = self.earliest = start
        self.gap = 0.0
        self.first_dts = 0
        self.first_muxed = 0
        self.audio_out: av.stream.Stream | None = None
        self.audio_start = 0
        self.encoder: AudioStream | None = None


class Recorder:
    """A StreamSink that records one camera into clips of at least `segment_seconds`.

    `camera` is the camera's slug (its folder and its name in the index). `on_state` is called
    with every state change, from the session thread or from the thread calling set_enabled.
    `clock` is the wall clock read as each video packet arrives (tests pass a fake one). `disk`
    is what the writer thread writes through (tests pass one that stalls or fails).
    """

    def __init__(
        self,
        camera: str,
        storage: Path,
        index: ClipIndex,
        segment_seconds: float,
        *,
        audio: Literal["auto", "off"] = "auto",
        enabled: bool = True,
        on_state: Callable[[RecorderState], None] | None = None,
        clock: Callable[[], float] = time.time,
        disk: Disk | None = None,
        name: str | None = None,
    ) -> None:
        self.camera = camera
        self.name = name or camera  # what logs call it: the name the user gave, as the session's
        self.storage = storage
        self.index = index
        self.audio = audio
        self._stats = RecorderStats()
        self._muxed = 0
        self._segment_seconds = float(segment_seconds)
        self._enabled = enabled
        self._on_state = on_state
        self._state_lock = threading.Lock()
        # Held while a keyframe decides whether to cut and open a clip: once set_enabled(False)
        # returns, no clip opens (the one in progress closes at the next packet).
        self._switch_lock = threading.Lock()
        self._connected = False
        self.state = RecorderState.RECONNECTING if enabled else RecorderState.STOPPED
        self._clip: _Clip | None = None
        self._out: av.container.OutputContainer | None = None
        self._retry_open_at = 0.0
        self._writer = ClipWriter(f"Camera {self.name}", disk=disk, on_error=self._write_error)
        # The writer's backlog passed BUFFER_SECONDS: GOPs are dropped until half of it is left.
        self._storage_full = False
        # Per connection (set in on_connect):
        self._video: av.stream.Stream | None = None
        self._audio_in: AudioStream | None = None
        self._audio_mode: Literal["copy", "transcode"] | None = None
        self._v_index = -1
        self._a_index = -2
        self._v_tb = Fraction(1, 90000)
        self._v_tb_f = 1 / 90000
        self._v_last = 0
        self._v_gap = -1
        self._v_started = False
        self._codec = "h264"
        self._v_repair: TimestampRepair | None = None
        self._a_repair: TimestampRepair | None = None
        self._a_last: int | None = None
        self._a_shift = 0
        self._held: av.Packet | None = None
        self._cut_tolerance = 0
        self._params: bytes | None = None
        self._clock = clock
        # Wall time the current video packet arrived (0: none yet on this connection).
        self._arrival = 0.0
        self._stall_after = STALL_SECONDS
        # (wall, dts): the wall time of a video DTS is wall + (DTS - dts) * time base.
        self._anchor: tuple[float, int] | None = None
        # No video came for `_stall_gap` s: the next keyframe starts a clip at its arrival and
        # counts the gap (unless the connection drops first: then the reconnect counts it).
        self._stalled = False
        self._stall_gap = 0.0
        # Anchor corrections since the stream last kept time, and when they last went too far.
        self._drift = 0.0
        self._drift_at = -DRIFT_QUIET_SECONDS
        # Where the last recording stopped unintentionally: the next clip logs the gap.
        self._gap_from: float | None = None
        self._last_end = 0.0
        # Packets are being lost (not merely unrecorded) until a keyframe opens the next clip.
        self._lost_until_key = False

    # -- control (any thread) -----------------------------------------------------------------

    @property
    def enabled(self) -> bool:
        """Whether the recording switch is on."""
        return self._enabled

    @property
    def clip_open(self) -> bool:
        """Whether a clip is being recorded (after switching off: until the next packet)."""
        return self._clip is not None

    @property
    def stats(self) -> RecorderStats:
        """Counters (read from any thread; a consistent-enough snapshot for sensors)."""
        self._stats.packets = self._muxed
        return self._stats

    @property
    def segment_seconds(self) -> float:
        """Minimum clip length."""
        return self._segment_seconds

    def set_enabled(self, enabled: bool) -> None:
        """Switch recording; off closes the clip at the next packet (in the session thread)."""
        with self._switch_lock:
            self._enabled = enabled
        if not enabled:
            self._gap_from = None
            self._set_state(RecorderState.STOPPED)
        elif not self._connected:
            self._set_state(RecorderState.RECONNECTING)

    def set_segment_seconds(self, seconds: float) -> None:
        """Change the minimum clip length; applies from the next keyframe on."""
        if seconds <= 0:
            raise ValueError("segment_seconds must be positive")
        self._segment_seconds = float(seconds)

    def _set_state(self, state: RecorderState) -> None:
        with self._state_lock:
            if state is self.state:
                return
            self.state = state
        if self._on_state is not None:
            self._on_state(state)

    # -- StreamSink (session thread) ----------------------------------------------------------

    def on_connect(self, container: av.container.InputContainer, info: StreamInfo) -> None:
        """Learn the streams of a (new) connection; the first keyframe opens a clip."""
        self._close_clip()
        video = container.streams.video[0]
        self._video = video
        self._v_index = video.index
        tb = video.time_base or Fraction(1, 90000)
        self._v_tb = tb
        self._v_tb_f = float(tb)
        rate = video.average_rate or video.guessed_rate
        frame_seconds = 1 / float(rate) if rate else 0.04
        self._v_repair = TimestampRepair(tb, frame_seconds, bump=True)
        self._stall_after = max(STALL_SECONDS, 2 * frame_seconds)
        # Until the first packet is placed, every packet takes the slow path (gap -1).
        self._v_gap = -1
        self._v_last = 0
        self._v_started = False
        self._held = None
        self._codec = video.codec_context.name
        self._cut_tolerance = round(CUT_TOLERANCE_FRAMES * frame_seconds / self._v_tb_f)
        self._params = None
        self._anchor = None
        self._arrival = 0.0
        self._stalled = False
        self._drift = 0.0
        self._setup_audio(container)
        self._connected = True

    def _setup_audio(self, container: av.container.InputContainer) -> None:
        self._audio_in = None
        self._audio_mode = None
        self._a_index = -2
        self._a_last = None
        self._a_shift = 0
        if self.audio == "off" or not container.streams.audio:
            return
        stream = container.streams.audio[0]
        codec = stream.codec_context.name
        if codec in COPY_AUDIO:
            self._audio_mode = "copy"
        elif codec in TRANSCODE_AUDIO:
            self._audio_mode = "transcode"
        else:
            _LOGGER.info("Camera %s: audio codec %s is not recorded", self.name, codec)
            return
        self._audio_in = stream
        self._a_index = stream.index
        tb = stream.time_base or Fraction(1, stream.codec_context.sample_rate or 8000)
        self._a_repair = TimestampRepair(tb, 0.02, bump=False)

    def on_packet(self, packet: av.Packet) -> None:
        """Record one packet; what the muxer wrote for it goes to the writer in one piece."""
        self._record(packet)
        clip = self._clip
        if clip is not None and clip.spool.pending:
            clip.spool.hand_over()

    def _record(self, packet: av.Packet) -> None:
        """Per-packet path: one comparison chain and a mux for nearly every packet."""
        index = packet.stream_index
        if index == self._v_index:
            now = self._clock()
            if now - self._arrival > self._stall_after and self._out is not None:
                self._stall(now - self._arrival)
            self._arrival = now
            dts = packet.dts
            last = self._v_last
            if dts is None or dts <= last or dts - last > self._v_gap:
                self._video_slow(packet)
                return
            self._v_last = dts
            if packet.is_keyframe:
                self._keyframe(packet, dts)
                return
            out = self._out
            if out is not None:
                if not self._enabled:
                    self._close_clip()
                    return
                try:
                    out.mux_one(packet)
                except (av.error.FFmpegError, OSError, ValueError) as err:
                    self._fail(err)
                    return
                self._muxed += 1
            elif self._lost_until_key:
                self._stats.dropped_packets += 1
            return
        if index == self._a_index and self._out is not None:
            self._audio_packet(packet)

    def on_disconnect(self, reason: str) -> None:
        """The stream ended or failed: close the clip cleanly; the session reconnects."""
        was_recording = self._out is not None
        self._close_clip()
        self._connected = False
        self._held = None
        self._lost_until_key = False
        self._stalled = False  # packets flushed as the read timed out: the reconnect counts it
        if reason in ("stopped", "removed"):
            self._gap_from = None
            self._writer.stop()
            self._set_state(RecorderState.STOPPED)
        elif self._enabled:
            if was_recording:
                self._gap_from = self._last_end
            self._set_state(RecorderState.RECONNECTING)

    # -- video --------------------------------------------------------------------------------

    def _video_slow(self, packet: av.Packet) -> None:
        """Missing, late or jumping timestamps, and the first packet of a connection."""
        repair = self._v_repair
        assert repair is not None  # set with _v_index in on_connect
        if not self._v_started:
            self._first_video(packet, repair)
            return
        verdict = repair.repair(packet, self._v_last)
        if verdict is Verdict.JUMP:
            self._stats.timestamp_jumps += 1
            _LOGGER.info(
                "Camera %s: timestamps jumped by %.1f s, starting a new clip",
                self.name,
                ((dts_of(packet) or 0) - self._v_last) * self._v_tb_f,
            )
            if self._out is not None:
                self._close_clip()
                self._gap_from = self._last_end
            self._stalled = False  # counted with the jump's gap
            self._anchor = None
            self._v_last = known(dts_of(packet))
            self._lost_until_key = True
            if packet.is_keyframe:
                self._keyframe(packet, self._v_last)
            else:
                self._stats.dropped_packets += 1
            return
        self._stats.repaired_packets += 1
        self._v_last = known(dts_of(packet)) - 1  # so the normal path takes it from here
        self.on_packet(packet)

    def _first_video(self, packet: av.Packet, repair: TimestampRepair) -> None:
        """RTSP's first packet has no timestamps: hold it until the next one tells them."""
        held = self._held
        if held is None and dts_of(packet) is None and packet.pts is None:
            self._held = packet
            return
        self._v_started = True
        self._v_gap = repair.max_gap
        if held is not None:
            self._held = None
            repair.first(held, packet)
            self._v_last = known(dts_of(held)) - 1
            self.on_packet(held)
        else:
            repair.first(packet, None)
            self._v_last = known(dts_of(packet)) - 1
        self.on_packet(packet)

    def _keyframe(self, packet: av.Packet, dts: int) -> None:
        """Cut here when the clip is long enough or the codec parameters changed."""
        with self._switch_lock:
            self._cut(packet, dts)

    def _cut(self, packet: av.Packet, dts: int) -> None:
        clip = self._clip
        params = parameter_sets(self._codec, bytes(memoryview(packet)[:PARAM_HEAD]))
        changed = params is not None and self._params is not None and params != self._params
        if params is not None:
            self._params = params
        if not self._enabled:
            if clip is not None:
                self._close_clip()
            return
        if self._storage_behind():
            return
        clip = self._clip
        contiguous = False
        if clip is not None:
            # After a stall the clip ends by the old clock and the next starts at arrival.
            start = None if self._stalled else self._place(dts)
            if start is not None:
                self._settle(clip)
                contiguous = True
            if changed:
                self._stats.parameter_changes += 1
                _LOGGER.info("Camera %s: stream parameters changed, new clip", self.name)
            elif start is not None and (
                (dts - clip.first_dts + self._cut_tolerance) * self._v_tb_f < self._segment_seconds
                # A backlog delivered fast: one clip per second of wall time at most, so names
                # (whole seconds) stay unique and in recording order.
                or int(start) == int(clip.start)
            ):
                self._mux_video(packet, clip)
                return
            self._close_clip(end_dts=dts)
        clip = self._open_clip(dts, params if changed else None, contiguous)
        if clip is not None:
            self._mux_video(packet, clip)
        else:
            self._stats.dropped_packets += 1

    def _mux_video(self, packet: av.Packet, clip: _Clip) -> None:
        try:
            clip.out.mux_one(packet)
        except (av.error.FFmpegError, OSError, ValueError) as err:
            self._fail(err)
            return
        self._muxed += 1

    # -- audio --------------------------------------------------------------------------------

    def _audio_packet(self, packet: av.Packet) -> None:
        """Copy or transcode one audio packet into the open clip (about 10-50 per second)."""
        clip = self._clip
        if clip is None or clip.audio_out is None or self._a_repair is None:
            return
        last = self._a_last
        if last is None:
            if dts_of(packet) is None:
                self._stats.dropped_packets += 1
                return
            if self._audio_mode == "copy" and _is_adts(packet):
                _LOGGER.info("Camera %s: ADTS AAC audio is not recorded", self.name)
                self._a_index = -2
                return
        else:
            verdict = self._a_repair.repair(packet, last)
            if verdict is Verdict.DROP:
                self._stats.dropped_packets += 1
                return
            if verdict is Verdict.JUMP:
                # Re-anchor audio on the video clock; video decides where clips are cut.
                self._stats.timestamp_jumps += 1
                written = last - self._a_shift + self._a_repair.step
                target = max(self._rescale_video(self._v_last), written)
                self._a_shift = known(dts_of(packet)) - target
            elif verdict is Verdict.REPAIRED:
                self._stats.repaired_packets += 1
        dts = known(dts_of(packet))
        self._a_last = dts
        if self._a_shift:
            packet.dts = dts - self._a_shift
            packet.pts = (packet.pts if packet.pts is not None else dts) - self._a_shift
        if known(dts_of(packet)) < clip.audio_start:
            return  # before the clip's first video frame
        try:
            if self._audio_mode == "transcode":
                self._transcode(packet, clip)
            else:
                if packet.stream_index != clip.audio_out.index:
                    packet.stream = clip.audio_out
                clip.out.mux_one(packet)
        except (av.error.FFmpegError, OSError, ValueError) as err:
            self._stats.errors += 1
            self._stats.last_error = f"audio: {type(err).__name__}"
            _LOGGER.warning("Camera %s: audio dropped from this clip: %s", self.name, err)
            clip.audio_out = None

    def _transcode(self, packet: av.Packet, clip: _Clip) -> None:
        """G.711 to AAC, at the camera's rate (8 kHz mono is cheap); priming packets dropped."""
        assert self._audio_in is not None
        encoder = clip.encoder
        assert encoder is not None
        for frame in self._audio_in.codec_context.decode(packet):
            for encoded in encoder.encode(frame):
                if encoded.pts is not None and encoded.pts >= clip.audio_start:
                    clip.out.mux_one(encoded)

    def _rescale_video(self, dts: int) -> int:
        """A video DTS in the audio stream's ticks."""
        assert self._audio_in is not None
        a_tb = self._audio_in.time_base or Fraction(1, 8000)
        return int(dts * self._v_tb / a_tb)

    # -- clips --------------------------------------------------------------------------------

    def _stall(self, seconds: float) -> None:
        """No video for `seconds`: cut at the next keyframe, which counts the gap."""
        self._stall_gap = seconds + (self._stall_gap if self._stalled else 0.0)
        self._stalled = True

    def _wall(self, dts: int) -> float:
        """Wall time of a video DTS by the anchor (placed with the clip that is open)."""
        anchor = self._anchor
        assert anchor is not None
        return anchor[0] + (dts - anchor[1]) * self._v_tb_f

    def _place(self, dts: int) -> float:
        """Wall time of the keyframe at `dts` that just arrived; moves the anchor if needed.

        The camera's clock may put it up to CLOCK_TOLERANCE before its arrival (clips stay exactly
        back to back), never after it (a name in the future). Otherwise the keyframe is placed at
        its arrival: a backlog delivered fast, a camera clock that jumps or runs at another rate.
        Corrections add up until a keyframe needs none; past the tolerance that is logged, once
        for corrections that follow each other within DRIFT_QUIET_SECONDS.
        """
        now = self._arrival
        if self._anchor is not None:
            at = self._wall(dts)
            if now - CLOCK_TOLERANCE <= at <= now:
                self._drift = 0.0
                return at
            self._drift += at - now
            if abs(self._drift) > CLOCK_TOLERANCE:
                if now - self._drift_at > DRIFT_QUIET_SECONDS:
                    _LOGGER.info(
                        "Camera %s: stream time runs %s the wall clock (%.1f s so far); clip "
                        "times follow arrival",
                        self.name,
                        "ahead of" if self._drift > 0 else "behind",
                        abs(self._drift),
                    )
                self._drift_at = now
        self._anchor = (now, dts)
        return now

    def _settle(self, clip: _Clip) -> None:
        """Move the open clip's start back if the clock (just corrected) says it began earlier."""
        start = max(clip.earliest, self._wall(clip.first_dts))
        if start < clip.start:
            if clip.gap:
                moved = min(clip.gap, clip.start - start)
                clip.gap -= moved
                self._stats.gap_seconds -= moved
            clip.start = start

    def _open_clip(self, dts: int, params: bytes | None, contiguous: bool = False) -> _Clip | None:
        """Open `<day>/<name>.mp4.part` for a clip starting with the keyframe at `dts`.

        `contiguous`: it follows the previous clip without a break, so it starts where that one
        ended; so does one after a stall, at its arrival. Otherwise its start may still move
        back by up to CLOCK_TOLERANCE (`_settle`).
        """
        video = self._video
        if video is None or time.monotonic() < self._retry_open_at:
            return None
        stalled = self._stalled
        if stalled:  # counted by arrival: the clip starts as its keyframe arrived
            self._stalled = False
            self._anchor = None
        start = self._place(dts)
        spool = self._writer.open(clip_path(self.storage, self.camera, start))
        out: av.container.OutputContainer | None = None
        try:
            # PyAV's default 32-KB IO buffer, on purpose: a closed container keeps it until
            # Python's cycle collector runs, and 256-KB pieces cost 11 MB more at 16 cameras
            # (a fragment in flight stays in the camera thread's malloc arena), no CPU gained.
            out = av.open(spool, "w", format="mp4", container_options=MUX_OPTIONS)
            clip = _Clip(out, spool, start)
            if not (contiguous or stalled):
                clip.earliest = max(self._last_end, start - CLOCK_TOLERANCE)
            clip.first_dts = dts
            clip.first_muxed = self._muxed
            stream = add_template_stream(out, video)
            tag = CODEC_TAGS.get(video.codec_context.name)
            if tag:
                stream.codec_context.codec_tag = tag
            if params is not None:
                stream.codec_context.extradata = params
            self._add_audio(clip, dts)
            write_header(out, clip.encoder)
        except (av.error.FFmpegError, OSError, ValueError) as err:
            self._discard(out, spool)
            self._retry_open_at = time.monotonic() + RETRY_OPEN_SECONDS
            self._lost_until_key = True
            self._error(err, "cannot open a clip")
            return None
        if self._gap_from is not None:
            gap = max(0.0, start - self._gap_from)
            clip.gap = gap
            clip.earliest = max(clip.earliest, self._gap_from)
            self._stats.gaps += 1
            self._stats.gap_seconds += gap
            # While storage fails, every retry makes a gap: the writer logs the failure once
            # and its end once, the gaps are only counted.
            level = logging.WARNING if self._writer.healthy else logging.DEBUG
            _LOGGER.log(level, "Camera %s: recording gap of %.1f s", self.name, gap)
            self._gap_from = None
        elif stalled:  # in wall time, whatever the camera's clock says
            self._stats.gaps += 1
            self._stats.gap_seconds += self._stall_gap
            _LOGGER.warning(
                "Camera %s: recording gap of %.1f s (no video)", self.name, self._stall_gap
            )
        self._clip = clip
        self._out = out
        self._lost_until_key = False
        self._set_state(self._recording_state())
        return clip

    def _add_audio(self, clip: _Clip, video_dts: int) -> None:
        audio = self._audio_in
        if audio is None:
            return
        clip.audio_start = self._rescale_video(video_dts)
        if self._audio_mode == "transcode":
            rate = audio.codec_context.sample_rate or 8000
            encoder = clip.out.add_stream("aac", rate=rate, layout="mono")
            clip.encoder = encoder
            clip.audio_out = encoder
            return
        clip.audio_out = add_template_stream(clip.out, audio)

    def _close_clip(self, end_dts: int | None = None) -> None:
        """Finish the clip: flush, close, rename, date it, and add it to the index."""
        clip = self._clip
        if clip is None:
            return
        self._clip = None
        self._out = None
        if end_dts is None:
            end_dts = self._v_last + (self._v_repair.step if self._v_repair else 0)
        # By the clock the clip was placed with, but never in the future: at most the arrival of
        # the keyframe that cut it, or its last frame's length after the last arrival (up to now).
        # Never zero-length either: scans would read such a clip as empty.
        cap = self._arrival
        if end_dts > self._v_last:
            cap = min(self._clock(), cap + (end_dts - self._v_last) * self._v_tb_f)
        end = max(min(self._wall(end_dts), cap), clip.start + 0.001)
        self._last_end = end
        try:
            if clip.encoder is not None and clip.audio_out is not None:
                for encoded in clip.encoder.encode(None):
                    if encoded.pts is not None and encoded.pts >= clip.audio_start:
                        clip.out.mux_one(encoded)
        except (av.error.FFmpegError, OSError, ValueError) as err:
            self._error(err, "cannot flush audio")
        try:
            clip.out.close()
        except (av.error.FFmpegError, OSError, ValueError) as err:
            self._error(err, "cannot close a clip")
        video_packets = self._muxed - clip.first_muxed
        if video_packets == 0:
            self._writer.discard(clip.spool)
            return
        moved = int(clip.start) != int(clip.named)  # moved back into an earlier second
        rename_to = clip_path(self.storage, self.camera, clip.start) if moved else None
        done = partial(self._clip_written, clip.start, end, video_packets)
        self._writer.finish(clip.spool, Finish(rename_to, end, done))

    def _clip_written(
        self, start: float, end: float, video_packets: int, path: Path, st: os.stat_result
    ) -> None:
        """A clip is on disk under its final name (writer thread): count and index it."""
        stats = self._stats
        stats.clips += 1
        stats.bytes += st.st_size
        stats.last_clip = path
        duration = end - start
        if duration > 0:
            stats.bitrate = st.st_size * 8 / duration
            stats.fps = video_packets / duration
        self.index.add(Clip(start, end, self.camera, path, st.st_size, st.st_ino))

    def _discard(self, out: av.container.OutputContainer | None, spool: Spool) -> None:
        """Drop a clip that holds no video (opened on a keyframe that could not be written)."""
        if out is not None:
            with contextlib.suppress(av.error.FFmpegError, OSError, ValueError):
                out.close()
        self._writer.discard(spool)

    # -- storage ------------------------------------------------------------------------------

    def _storage_behind(self) -> bool:
        """At a keyframe: True (and the keyframe dropped) while the disk cannot take more video.

        A clip whose writes failed is closed here (the writer keeps its whole fragments) and the
        next one opens at once, unless its file could not even be created: then after
        RETRY_OPEN_SECONDS, not at every GOP. A backlog past BUFFER_SECONDS closes the clip
        and drops whole GOPs until half of it is written; the gap is counted as the next clip
        opens, and the state says so meanwhile.
        """
        clip = self._clip
        if clip is not None and clip.file.failed:
            if clip.file.written == 0:  # nothing of it reached the disk
                self._stats.dropped_packets += self._muxed - clip.first_muxed
                self._muxed = clip.first_muxed
            self._close_clip()
            self._gap_from = self._last_end
            if clip.file.part is None:
                self._retry_open_at = time.monotonic() + RETRY_OPEN_SECONDS
            self._lost_until_key = True
            self._set_state(RecorderState.STORAGE_PROBLEM)
        backlog = self._writer.backlog_seconds()
        if backlog <= (BUFFER_SECONDS / 2 if self._storage_full else BUFFER_SECONDS):
            if self._storage_full:
                self._storage_full = False
                _LOGGER.info("Camera %s: storage caught up, recording again", self.name)
            return False
        if not self._storage_full:
            self._storage_full = True
            _LOGGER.warning(
                "Camera %s: storage is more than %.0f s behind, video is dropped until it "
                "catches up",
                self.name,
                BUFFER_SECONDS,
            )
        if self._clip is not None:
            self._close_clip()
            self._gap_from = self._last_end
        self._lost_until_key = True
        self._stats.dropped_packets += 1
        self._set_state(RecorderState.STORAGE_PROBLEM)
        return True

    def _recording_state(self) -> RecorderState:
        """RECORDING, unless the storage is failing or too slow."""
        if self._storage_full or not self._writer.healthy:
            return RecorderState.STORAGE_PROBLEM
        return RecorderState.RECORDING

    def _write_error(self, what: str, err: OSError) -> None:
        """The writer could not write (writer thread; it logs each distinct failure once)."""
        self._stats.errors += 1
        self._stats.last_error = f"{what}: {type(err).__name__}"

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every closed clip is on disk and indexed; False on timeout."""
        return self._writer.flush(timeout)

    def _fail(self, err: MuxError) -> None:
        """A write failed: keep what was written, start over at the next keyframe."""
        self._stats.dropped_packets += 1
        self._error(err, "write failed, the clip is closed")
        self._close_clip()
        if self._enabled:
            self._gap_from = self._last_end  # from there, a stall just before it included
            self._lost_until_key = True

    def _error(self, err: MuxError, what: str) -> None:
        self._stats.errors += 1
        self._stats.last_error = f"{what}: {type(err).__name__}"
        _LOGGER.warning("Camera %s: %s: %s", self.name, what, err)

    def close(self) -> None:
        """Close the open clip and write it (when dropped without its session telling it)."""
        self._close_clip()
        self._writer.stop()


# -- crash recovery ---------------------------------------------------------------------------


def _video_seconds(path: Path) -> float:
    """Seconds of video in a clip by its packets' timestamps (0 when it cannot be read)."""
    first: int | None = None
    last = 0
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            for packet in container.demux(stream):
                dts = dts_of(packet)
                if dts is None or not packet.size:
                    continue
                if first is None:
                    first = dts
                last = dts + (packet.duration or 0)
            tb = stream.time_base or Fraction(1, 90000)
    except (av.error.FFmpegError, OSError, IndexError):
        return 0.0
    return float((last - first) * tb) if first is not None else 0.0


def _recovered_name(storage: Path, part: Path, modified: float) -> Path:
    """Where a part goes: its own name, unless that lies after its last write.

    Such a name came from a clock that ran ahead (versions before wall-clock names, or a clock
    set back while recording): the clip would sort after later ones and be read as empty (end
    = max(start, mtime)). It is named after what it holds instead: its last write minus its
    video's length.
    """
    final = part.with_name(part.name[: -len(PART_SUFFIX)])
    named = clip_start_from_name(final.name)
    if named is None or named <= modified:
        return final
    start = modified - max(_video_seconds(part), 1.0)  # a second at least: never empty
    _LOGGER.info("Clip %s was named %.0f s after it started: renamed", final.name, named - start)
    moved = clip_path(storage, part.parent.parent.name, start)
    moved.parent.mkdir(exist_ok=True)
    return moved


def recover_partials(storage: Path, folders: Iterable[Path] | None = None) -> list[Path]:
    """Finalise the `.part` clips a crash left behind (blocking; run before the index scan).

    Each is trimmed to its last complete fragment (a fragment cut short by the crash would stop
    browsers) and renamed to `.mp4` with its modification time kept (named by its content when
    its name lay in the future). Parts that hold no frame at all (0 bytes, or only the header)
    are removed. Returns the finished clip paths. `folders` limits the search to those day
    folders (`ClipIndex.folders_to_scan`: the others have not changed since they were indexed).
    """
    root = recordings_dir(storage)
    recovered: list[Path] = []
    if not root.is_dir():
        return recovered
    if folders is None:
        parts = sorted(root.glob(f"*/*/*{PART_SUFFIX}"))
    else:
        parts = sorted(part for folder in folders for part in folder.glob(f"*{PART_SUFFIX}"))
    for part in parts:
        try:
            st = part.stat()
            end, has_fragment = complete_end(part)
            if not has_fragment:
                _LOGGER.info("Removing %s: the crash left no footage in it", part.name)
                part.unlink()
                continue
            if end < st.st_size:
                os.truncate(part, end)
            target = final = _recovered_name(storage, part, st.st_mtime)
            n = 0
            while target.exists():
                n += 1
                target = final.with_name(f"{final.stem}-{n}{final.suffix}")
            part.rename(target)
            os.utime(target, (st.st_atime, st.st_mtime))
        except OSError as err:
            _LOGGER.warning("Cannot recover %s: %s", part.name, err)
            continue
        recovered.append(target)
    return recovered

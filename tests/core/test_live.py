"""Live viewers from the session (no HA): the MPEG-TS they get, slow and stalled viewers,
camera restarts, and the one camera connection under it all."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
import io
import itertools
from pathlib import Path
import time

import av
import cv2
import numpy as np
import pytest

from custom_components.pm_dvr.core import live as live_module
from custom_components.pm_dvr.core.clips import ClipIndex
from custom_components.pm_dvr.core.live import LiveSource, Viewer, serve_viewer
from custom_components.pm_dvr.core.recorder import Recorder
from custom_components.pm_dvr.core.stream import StreamSession
from custom_components.pm_dvr.core.ts import (
    TsMuxer,
    TsTracks,
    adts_header,
    annex_b,
    avcc_parameter_sets,
    crc32_mpeg2,
)

from ..rig.clipfiles import make_clip
from ..rig.rtsp import RtspServer


def wait_until(condition: Callable[[], object], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


class Live:
    """A session with a live source (and optionally a recorder) on a real RTSP server."""

    def __init__(self, url: str, tmp_path: Path | None = None, audio: str = "auto") -> None:
        self.session = StreamSession("cam", url)
        self.watching: list[bool] = []
        self.source = LiveSource("cam", audio=audio, on_watching=self._on_watching)  # type: ignore[arg-type]
        self.session.add_sink(self.source)
        self.recorder: Recorder | None = None
        if tmp_path is not None:
            self.recorder = Recorder("cam", tmp_path, ClipIndex(tmp_path / "recordings"), 2.0)
            self.session.add_sink(self.recorder)
        self.session.start()
        wait_until(lambda: self.session.available and self.session.stats.keyframes > 0)

    def _on_watching(self, active: bool) -> None:
        self.watching.append(active)
        self.session.low_latency = active

    def stop(self) -> None:
        self.session.stop()

    def watch(self, seconds: float) -> tuple[bytes, float | None]:
        """One viewer for `seconds`: its bytes, and how long the first took to come."""

        async def watch() -> tuple[bytes, float | None]:
            viewer = Viewer(asyncio.get_running_loop())
            self.source.join(viewer)
            try:
                return await read_for(viewer, seconds)
            finally:
                self.source.leave(viewer)

        return asyncio.run(watch())


async def read_for(
    viewer: Viewer, seconds: float, pause_after: float | None = None, pause: float = 0.0
) -> tuple[bytes, float | None]:
    """Read a viewer for `seconds` (pausing once when asked); the bytes and the first's delay."""
    started = time.monotonic()
    first: float | None = None
    data = bytearray()

    async def consume() -> None:
        nonlocal first
        paused = pause_after is None
        async for chunk in viewer.chunks():
            if first is None:
                first = time.monotonic() - started
            data.extend(chunk)
            if not paused and time.monotonic() - started > (pause_after or 0):
                paused = True
                await asyncio.sleep(pause)

    task = asyncio.ensure_future(consume())
    await asyncio.wait({task}, timeout=seconds)
    task.cancel()
    return bytes(data), first


def decode_ts(data: bytes) -> tuple[list[str], list[av.Packet], int]:
    """Streams, video packets, and the number of decoded frames of a TS byte stream."""
    with av.open(io.BytesIO(data), format="mpegts") as container:
        codecs = [s.codec_context.name for s in container.streams]
        packets = [p for p in container.demux(video=0) if p.size]
    with av.open(io.BytesIO(data), format="mpegts") as container:
        frames = sum(1 for _ in container.decode(video=0))
    return codecs, packets, frames


@pytest.fixture
def live(rtsp_server_core: RtspServer) -> Iterator[Live]:
    running = Live(rtsp_server_core.url("/cam"))
    yield running
    running.stop()


def test_viewer_starts_at_a_keyframe_and_decodes(live: Live) -> None:
    """A joining viewer gets the cached GOP at once: a keyframe first, every packet decodes."""
    data, first = live.watch(2.0)
    assert first is not None
    assert first < 0.3
    assert len(data) % 188 == 0
    assert data[0] == 0x47
    codecs, packets, frames = decode_ts(data)
    assert codecs == ["h264"]
    assert packets[0].is_keyframe
    assert frames == len(packets) > 25  # two seconds at 25 fps
    wait_until(lambda: live.watching == [True, False])
    assert live.session.low_latency is False


def test_two_viewers_get_the_same_stream(live: Live) -> None:
    """Two viewers, one muxer: both decode, and the camera still has one connection."""

    async def watch() -> list[bytes]:
        viewers = [Viewer(asyncio.get_running_loop()) for _ in range(2)]
        for viewer in viewers:
            live.source.join(viewer)
        assert live.source.viewers == 2
        results = await asyncio.gather(*(read_for(v, 1.5) for v in viewers))
        for viewer in viewers:
            live.source.leave(viewer)
        return [data for data, _ in results]

    for data in asyncio.run(watch()):
        _, packets, frames = decode_ts(data)
        assert packets[0].is_keyframe
        assert frames == len(packets)
    assert live.session.stats.connects == 1


def test_ten_viewers_and_a_flapping_one_make_no_connection(rtsp_private_core: RtspServer) -> None:
    """Ten viewers at once and one that reconnects five times a second: the camera keeps its
    one connection, and every viewer decodes from its first packet."""
    running = Live(rtsp_private_core.url("/cam"))
    try:

        async def crowd() -> list[bytes]:
            loop = asyncio.get_running_loop()
            viewers = [Viewer(loop) for _ in range(10)]
            for viewer in viewers:
                running.source.join(viewer)

            async def flap() -> int:
                rounds = 0
                deadline = time.monotonic() + 2.0
                while time.monotonic() < deadline:
                    viewer = Viewer(loop)
                    running.source.join(viewer)
                    await read_for(viewer, 0.2)
                    running.source.leave(viewer)
                    rounds += 1
                return rounds

            results = await asyncio.gather(flap(), *(read_for(v, 2.0) for v in viewers))
            for viewer in viewers:
                running.source.leave(viewer)
            assert results[0] >= 5
            return [data for data, _ in results[1:]]

        for data in asyncio.run(crowd()):
            _, packets, frames = decode_ts(data)
            assert packets[0].is_keyframe
            assert frames == len(packets)
        assert running.source.served >= 15
        assert running.session.stats.connects == 1
        assert rtsp_private_core.max_clients == 1
        assert rtsp_private_core.connections == 1
    finally:
        running.stop()


@pytest.mark.parametrize(
    ("source", "audio", "expected"),
    [
        ("synthetic-alaw", "auto", ["h264", "aac"]),
        ("synthetic-aac", "auto", ["h264", "aac"]),
        ("synthetic-opus", "auto", ["h264"]),
        ("synthetic-alaw", "off", ["h264"]),
    ],
    ids=["g711-to-aac", "aac-copied", "opus-left-out", "audio-off"],
)
def test_audio_as_recorded(source: str, audio: str, expected: list[str]) -> None:
    """Audio is served as recordings keep it: AAC copied, G.711 made AAC, others left out."""
    with RtspServer({"/cam": f"{source}:320x180@25:300:25"}) as server:
        running = Live(server.url("/cam"), audio=audio)
        try:
            data, _ = running.watch(2.5)
        finally:
            running.stop()
    codecs, _, frames = decode_ts(data)
    assert codecs == expected
    assert frames > 25
    if "aac" in codecs:
        with av.open(io.BytesIO(data), format="mpegts") as container:
            audio_stream = container.streams.audio[0]
            seconds = sum(f.samples for f in container.decode(audio=0)) / audio_stream.rate
        assert seconds > 1.0


def test_mp4_file_source_is_served(tmp_path: Path) -> None:
    """A file source (length-prefixed H.264 and an avcC record) is served as Annex B."""
    clip = tmp_path / "clip.mp4"
    make_clip(clip, seconds=6.0)
    running = Live(str(clip))
    try:
        data, _ = running.watch(2.0)
    finally:
        running.stop()
    _, packets, frames = decode_ts(data)
    assert packets[0].is_keyframe
    assert frames == len(packets) >= 10


def test_gop_larger_than_the_cache(live: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    """A GOP over the cache's size is not kept: joiners start at the next keyframe instead."""
    monkeypatch.setattr(live_module, "GOP_CACHE_BYTES", 2_000)

    async def watch() -> tuple[bytes, bytes]:
        loop = asyncio.get_running_loop()
        first, second = Viewer(loop), Viewer(loop)
        live.source.join(first)
        await asyncio.sleep(1.5)
        live.source.join(second)
        (one, _), (two, _) = await asyncio.gather(read_for(first, 2.5), read_for(second, 2.5))
        live.source.leave(first)
        live.source.leave(second)
        return one, two

    for data in asyncio.run(watch()):
        _, packets, frames = decode_ts(data)
        assert packets[0].is_keyframe
        assert frames == len(packets)


def test_serve_viewer_ends(live: Live) -> None:
    """serve_viewer says why a viewer ended: the client went away, or the camera stopped."""

    async def client_gone() -> str:
        async def write(_chunk: bytes) -> None:
            raise ConnectionResetError

        return await serve_viewer(live.source, write)

    assert asyncio.run(client_gone()) == "gone"

    async def camera_stopped() -> str:
        received: list[bytes] = []

        async def write(chunk: bytes) -> None:
            received.append(chunk)
            if len(received) == 3:
                asyncio.get_running_loop().run_in_executor(None, live.stop)

        reason = await serve_viewer(live.source, write)
        assert len(received) >= 3
        return reason

    assert asyncio.run(camera_stopped()) == "stopped"


def test_stalled_viewer_is_dropped_and_recording_loses_nothing(tmp_path: Path) -> None:
    """A viewer that stops reading for 30 s: its queue stays bounded, it skips ahead, then is
    dropped; the recorder beside it has no gap and drops nothing."""
    with RtspServer({"/cam": "synthetic:320x180@25:300:25"}) as server:
        running = Live(server.url("/cam"), tmp_path)
        try:
            queue_limit = 100_000  # about 6 s of this camera

            async def stall() -> tuple[Viewer, int, bytes]:
                viewer = Viewer(asyncio.get_running_loop(), max_bytes=queue_limit)
                running.source.join(viewer)
                data, _ = await read_for(viewer, 1.0)
                peak = 0
                for _ in range(300):  # 30 s without reading
                    peak = max(peak, viewer.queued_bytes)
                    await asyncio.sleep(0.1)
                return viewer, peak, data

            viewer, peak, data = asyncio.run(stall())
            assert peak <= queue_limit
            assert viewer.skips >= 1
            assert viewer.closed
            assert viewer.reason == "stopped reading"
            assert running.source.viewers == 0
            wait_until(lambda: running.watching[-1:] == [False])
            assert decode_ts(data)[2] > 0
            recorder = running.recorder
            assert recorder is not None
            assert recorder.stats.dropped_packets == 0
            assert recorder.stats.gaps == 0
            assert running.session.stats.connects == 1
            assert server.max_clients == 1
        finally:
            running.stop()


def test_slow_viewer_skips_to_keyframes(live: Live) -> None:
    """A viewer that reads, but too slowly, keeps getting pictures that start at keyframes."""

    async def slow() -> tuple[Viewer, bytes]:
        viewer = Viewer(asyncio.get_running_loop(), max_bytes=1_000)
        live.source.join(viewer)
        data = bytearray()
        deadline = time.monotonic() + 4
        async for chunk in viewer.chunks():
            data.extend(chunk)
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.3)
        live.source.leave(viewer)
        return viewer, bytes(data)

    viewer, data = asyncio.run(slow())
    assert viewer.skips >= 1
    assert not viewer.reason or viewer.reason == "left"
    _, packets, frames = decode_ts(data)
    assert packets[0].is_keyframe
    assert frames > 0


def test_camera_restart_keeps_viewers(rtsp_private_core: RtspServer, tmp_path: Path) -> None:
    """Viewers stay through a camera restart and carry on; the live clock never goes back."""
    running = Live(rtsp_private_core.url("/cam"), tmp_path)
    try:

        async def through_restart() -> tuple[Viewer, bytes]:
            viewer = Viewer(asyncio.get_running_loop())
            running.source.join(viewer)
            data = bytearray()

            async def consume() -> None:
                async for chunk in viewer.chunks():
                    data.extend(chunk)

            task = asyncio.ensure_future(consume())
            await asyncio.sleep(1.0)
            await asyncio.to_thread(rtsp_private_core.stop, True)
            await asyncio.to_thread(wait_until, lambda: not running.session.available)
            await asyncio.to_thread(rtsp_private_core.start)
            await asyncio.to_thread(wait_until, lambda: running.session.stats.connects == 2, 30)
            before = len(data)
            await asyncio.sleep(1.5)
            assert len(data) > before
            running.source.leave(viewer)
            await asyncio.wait_for(task, 5)
            return viewer, bytes(data)

        viewer, data = asyncio.run(through_restart())
        assert viewer.reason == "left"
        with av.open(io.BytesIO(data), format="mpegts") as container:
            dts = [p.dts for p in container.demux(video=0) if p.size and p.dts is not None]
        assert dts == sorted(dts)
        assert len(dts) > 50
        assert running.recorder is not None
        assert running.recorder.stats.gaps == 1
    finally:
        running.stop()


def test_stopping_the_session_ends_viewers(rtsp_server_core: RtspServer) -> None:
    """Stopping the camera (unload, removal) ends its viewers' streams cleanly."""
    running = Live(rtsp_server_core.url("/cam"))

    async def until_stopped() -> Viewer:
        viewer = Viewer(asyncio.get_running_loop())
        running.source.join(viewer)
        await read_for(viewer, 0.5)
        chunks = viewer.chunks()
        await asyncio.to_thread(running.stop)
        async for _ in chunks:
            pass
        return viewer

    viewer = asyncio.run(until_stopped())
    assert viewer.reason == "stopped"
    assert running.source.viewers == 0


def test_a_changed_stream_ends_viewers() -> None:
    """When a reconnect brings other codec parameters, viewers end (to reopen the new one)."""
    with RtspServer({"/cam": "synthetic:320x180@25:300:25"}) as server:
        running = Live(server.url("/cam"))
        try:

            async def through_change() -> Viewer:
                viewer = Viewer(asyncio.get_running_loop())
                running.source.join(viewer)
                await read_for(viewer, 0.5)
                server.mounts = {"/cam": "synthetic:640x360@25:300:25"}
                await asyncio.to_thread(server.restart)
                async for _ in viewer.chunks():
                    pass
                return viewer

            viewer = asyncio.run(asyncio.wait_for(through_change(), 40))
            assert viewer.reason == "stream changed"
        finally:
            running.stop()


def test_snapshot_is_the_newest_frame(tmp_path: Path) -> None:
    """Once snapshots are being asked for, a snapshot long after the keyframe shows the newest
    frame, not the keyframe (the packets after a keyframe are kept from the next one on)."""
    with RtspServer({"/cam": "synthetic:320x180@25:300:100"}) as server:  # a 4 s GOP
        session = StreamSession("cam", server.url("/cam"))
        session.start()
        try:
            wait_until(lambda: session._gop is not None)
            assert session.snapshot_jpeg() is not None  # asked: keep the next GOP's packets
            keyframes = session.stats.keyframes
            wait_until(lambda: session.stats.keyframes > keyframes)
            keyframe = session.snapshot_jpeg()
            time.sleep(1.5)
            first = session.snapshot_jpeg()
            time.sleep(0.5)
            second = session.snapshot_jpeg()
        finally:
            session.stop()
    assert keyframe is not None
    assert first is not None
    assert second is not None
    images = [
        cv2.imdecode(np.frombuffer(j, np.uint8), cv2.IMREAD_GRAYSCALE)
        for j in (keyframe, first, second)
    ]
    # The ball moves: each later snapshot differs from the one before.
    assert np.abs(images[1].astype(int) - images[0]).mean() > 1
    assert np.abs(images[2].astype(int) - images[1]).mean() > 1


def test_live_clock_carries_on_over_jumps() -> None:
    """Camera timestamps that go back (RTCP re-timing), leap ahead (a restart) or are missing
    never make the live clock stall or jump: it carries on a frame at a time."""
    source = LiveSource("clock")
    source._v_scale = 1.0  # camera ticks are 90 kHz here
    source._frame_ticks = 3600

    def stamp(dts: int | None, pts: int | None = None) -> tuple[int, int]:
        packet = av.Packet(b"\x00\x00\x01\x65")
        packet.dts = dts
        packet.pts = pts if pts is not None else dts
        frame = source._video_frame(packet)
        return frame.dts, frame.pts

    first = stamp(None)[0]
    dts = [first]
    for camera_dts in (5000, 8600, 12200, 1000, 4600, 4600 + 90000 * 60, 8200 + 90000 * 60):
        dts.append(stamp(camera_dts)[0])
    assert [b - a for a, b in itertools.pairwise(dts)] == [3600] * 7
    # A B-frame stream: presentation after decoding, by the camera's own offset.
    next_dts, next_pts = stamp(8200 + 90000 * 60 + 3600, 8200 + 90000 * 60 + 3600 + 7200)
    assert next_pts - next_dts == 7200


# -- the TS muxer on its own ------------------------------------------------------------------


def test_ts_muxer_mp4_input_and_aac(tmp_path: Path) -> None:
    """Length-prefixed H.264 (from MP4 files) is converted; AAC gets ADTS headers."""
    clip = tmp_path / "clip.mp4"
    make_clip(clip, seconds=2.0, audio=True)
    with av.open(str(clip)) as container:
        video = container.streams.video[0]
        audio = container.streams.audio[0]
        extradata = bytes(video.codec_context.extradata or b"")
        config = bytes(audio.codec_context.extradata or b"")
        muxer = TsMuxer(TsTracks("h264", avcc_parameter_sets(extradata), "aac"))
        out = bytearray()
        for packet in container.demux():
            if not packet.size or packet.pts is None:
                continue
            ticks = int(packet.pts * packet.time_base * 90000) + 900000
            if packet.stream.type == "video":
                out += muxer.video(annex_b(bytes(packet)), ticks, ticks, packet.is_keyframe)
            else:
                header = adts_header(config, packet.size)
                assert header is not None
                out += muxer.audio(header + bytes(packet), ticks)
    codecs, packets, frames = decode_ts(bytes(out))
    assert codecs == ["h264", "aac"]
    assert frames == len(packets) == 20


def test_ts_helpers_reject_what_they_cannot_carry() -> None:
    """Codecs and configs the muxer cannot carry are refused, not muxed wrong."""
    with pytest.raises(ValueError, match="mjpeg"):
        TsMuxer(TsTracks("mjpeg", b""))
    assert adts_header(b"\x00", 10) is None
    assert adts_header(b"\xf8\x00", 10) is None  # object type 31: not an ADTS profile
    assert avcc_parameter_sets(b"\x00\x01") == b""
    assert avcc_parameter_sets(b"\x01\x64\x00\x1f\xff\xe1\x00\x40") == b""  # cut short
    assert crc32_mpeg2(b"") == 0xFFFFFFFF

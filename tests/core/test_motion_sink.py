"""The motion sink: private packet copies survive the recorder's in-place muxing; zones."""

from __future__ import annotations

from fractions import Fraction
import io
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from custom_components.pm_dvr.core.avcompat import add_template_stream
from custom_components.pm_dvr.core.motion import MotionConfig, Zone
from custom_components.pm_dvr.core.motion_sink import MotionSink, motion_config, parse_zones
from custom_components.pm_dvr.core.probe import video_info


def write_clip(path: Path) -> None:
    """A short H.264 clip with a silent AAC track (so non-video packets exist too)."""
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=10)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio = out.add_stream("aac", rate=8000)
        for i in range(10):
            frame = av.VideoFrame.from_ndarray(
                np.full((48, 64, 3), i * 20, np.uint8), format="rgb24"
            )
            out.mux(video.encode(frame))
            samples = av.AudioFrame.from_ndarray(
                np.zeros((1, 800), np.float32), format="fltp", layout="mono"
            )
            samples.sample_rate, samples.pts = 8000, i * 800
            out.mux(audio.encode(samples))
        out.mux(video.encode(None))
        out.mux(audio.encode(None))


class FakeWorker:
    """Records what the sink hands over."""

    def __init__(self) -> None:
        self.streams: list[Any] = []
        self.fed: list[av.Packet] = []

    def start_stream(self, stream: Any) -> None:
        self.streams.append(stream)

    def feed(self, packet: av.Packet) -> None:
        self.fed.append(packet)


def test_sink_feeds_private_copies_of_video_packets(tmp_path: Path) -> None:
    """Copies keep their data and original times while the recorder rewrites the packet."""
    clip = tmp_path / "clip.mp4"
    write_clip(clip)
    worker = FakeWorker()
    sink = MotionSink(worker)  # type: ignore[arg-type]
    out = av.open(io.BytesIO(), "w", format="mp4")
    with av.open(str(clip)) as container:
        video = container.streams.video[0]
        out_stream = add_template_stream(out, video)
        sink.on_connect(container, video_info(container))
        assert worker.streams == [video]
        originals: list[tuple[bytes, int | None, bool, Fraction | None]] = []
        for packet in container.demux():
            if not packet.size:
                continue
            sink.on_packet(packet)  # the motion sink runs before the recorder ...
            if packet.stream_index != video.index:
                continue
            originals.append((bytes(packet), packet.pts, packet.is_keyframe, packet.time_base))
            # ... which rebases times and muxes in place, like core/recorder.py
            packet.stream = out_stream
            packet.pts = (packet.pts or 0) + 12345
            packet.dts = (packet.dts or 0) + 12345
            out.mux(packet)
        sink.on_disconnect("end of stream")
    out.close()
    assert len(worker.fed) == len(originals) == 10  # audio packets are not fed
    for copy, (data, pts, key, time_base) in zip(worker.fed, originals, strict=True):
        assert bytes(copy) == data
        assert copy.pts == pts
        assert copy.is_keyframe == key
        assert copy.time_base == time_base
    # The copies decode on their own.
    ctx = av.CodecContext.create("h264", "r")
    ctx.extradata = worker.streams[0].codec_context.extradata
    frames = [f for p in worker.fed for f in ctx.decode(p)]  # type: ignore[attr-defined]
    frames += ctx.decode(None)  # type: ignore[attr-defined]
    assert len(frames) == 10


def test_parse_zones_and_config() -> None:
    """Empty text means no zones; valid JSON gives Zones; the config falls back to defaults."""
    assert parse_zones(None) == ()
    assert parse_zones("  ") == ()
    zones = parse_zones(
        '[{"points": [[0, 0], [1, 0], [1, 1]]}, {"mode": "only", "points": '
        "[[0, 0.5], [1, 0.5], [0.5, 1]]}]"
    )
    assert zones == (
        Zone(((0.0, 0.0), (1.0, 0.0), (1.0, 1.0))),
        Zone(((0.0, 0.5), (1.0, 0.5), (0.5, 1.0)), "only"),
    )
    assert motion_config(None, None, ()) == MotionConfig()
    assert motion_config(30, 0.5, zones) == MotionConfig(30, 0.5, zones)
    with pytest.raises(ValueError, match="not JSON"):
        parse_zones("[")

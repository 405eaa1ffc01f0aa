"""The recorder's writer thread: a stalled disk never holds up the camera (issue #16, part 4).

A real RTSP camera streams numbered frames (tests/core/test_recorder.py's media) while the
writer's disk is made to block, as a NAS share that stalls or a USB disk spinning up would.
"""

from __future__ import annotations

from collections.abc import Iterator
import itertools
import logging
from pathlib import Path
import threading
import time

import av
import pytest

from custom_components.pm_dvr.core import recorder as recorder_module
from custom_components.pm_dvr.core.clips import PART_SUFFIX
from custom_components.pm_dvr.core.recorder import Recorder, RecorderState
from custom_components.pm_dvr.core.writer import (
    BUFFER_BYTES,
    ClipWriter,
    Disk,
    Finish,
    Spool,
)
from tests.rig.rtsp import RtspServer

from .test_recorder import FPS, GOP, Probe, make_recorder, make_video, run_session, wait_for

LOGGER = "custom_components.pm_dvr.core"


@pytest.fixture(scope="module")
def camera(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RtspServer]:
    """A camera streaming 25 s of numbered frames."""
    video = make_video(tmp_path_factory.mktemp("writer") / "numbered.mp4", 25 * FPS)
    server = RtspServer(mounts={"/numbered": f"file:{video}"}).start()
    yield server
    server.stop()


@pytest.fixture
def states() -> list[RecorderState]:
    return []


class StallingDisk(Disk):
    """Writes wait while the disk is stalled; `longest` is the longest a write waited."""

    def __init__(self) -> None:
        self.running = threading.Event()
        self.running.set()
        self.longest = 0.0

    def stall(self, seconds: float) -> threading.Timer:
        self.running.clear()
        timer = threading.Timer(seconds, self.running.set)
        timer.start()
        return timer

    def write(self, fd: int, data: bytes) -> None:
        began = time.monotonic()
        self.running.wait()
        self.longest = max(self.longest, time.monotonic() - began)
        super().write(fd, data)


class Arrivals:
    """A sink after the recorder: when the camera's packets were read."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def on_connect(self, container: av.container.InputContainer, info: object) -> None:
        """Nothing to learn."""

    def on_packet(self, packet: av.Packet) -> None:
        self.times.append(time.monotonic())

    def on_disconnect(self, reason: str) -> None:
        """Nothing to close."""

    def longest_wait(self, since: float, until: float) -> float:
        times = [t for t in self.times if since <= t <= until]
        return max(b - a for a, b in itertools.pairwise(times))


def numbers_of(recorder: Recorder) -> list[int]:
    numbers: list[int] = []
    for clip in recorder.index.clips("front-door"):
        probe = Probe(clip.path)
        assert probe.first_is_key
        assert len(probe.numbers) == probe.packets  # every frame decodes
        numbers += probe.numbers
    return numbers


def record_through_a_stall(
    camera: RtspServer, recorder: Recorder, disk: StallingDisk, seconds: float
) -> Arrivals:
    """Record two clips, stall the disk for `seconds`, record two more once it is back."""
    arrivals = Arrivals()
    session = run_session(camera.url("/numbered"), recorder)
    session.add_sink(arrivals)
    try:
        wait_for(lambda: recorder.index.count("front-door") >= 2, 20)
        began = time.monotonic()
        disk.stall(seconds).join()
        assert arrivals.longest_wait(began, time.monotonic()) < 1.5  # the camera was read on
        # Clips closed during the stall are indexed as the backlog drains; count from there.
        assert recorder.flush(30)
        indexed = recorder.index.count("front-door")
        wait_for(lambda: recorder.index.count("front-door") >= indexed + 2, 20)
    finally:
        session.stop()
    # The disk did stall: the first write after it began (a fragment a second) waited on.
    assert seconds - 1.5 < disk.longest <= seconds + 0.5
    assert not list(recorder.storage.rglob(f"*{PART_SUFFIX}"))
    return arrivals


def test_a_10_s_disk_stall_loses_nothing(
    camera: RtspServer,
    tmp_path: Path,
    states: list[RecorderState],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Shorter than the buffer: every frame is on disk in order, no gap, no state change."""
    disk = StallingDisk()
    recorder = make_recorder(tmp_path, states, disk=disk)
    record_through_a_stall(camera, recorder, disk, 10.0)
    numbers = numbers_of(recorder)
    assert numbers == list(range(len(numbers)))
    assert len(numbers) == recorder.stats.packets
    stats = recorder.stats
    assert (stats.gaps, stats.dropped_packets, stats.errors) == (0, 0, 0)
    assert states == [RecorderState.RECORDING, RecorderState.STOPPED]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_stall_longer_than_the_buffer_drops_whole_gops(
    camera: RtspServer,
    tmp_path: Path,
    states: list[RecorderState],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Past the buffer (2 s here, 30 s as shipped) whole GOPs go, with one gap and one line."""
    monkeypatch.setattr(recorder_module, "BUFFER_SECONDS", 2.0)
    caplog.set_level(logging.INFO, LOGGER)
    disk = StallingDisk()
    recorder = make_recorder(tmp_path, states, disk=disk)
    record_through_a_stall(camera, recorder, disk, 6.0)
    numbers = numbers_of(recorder)
    holes = [(a, b) for a, b in itertools.pairwise(numbers) if b != a + 1]
    assert len(holes) == 1
    (last, first) = holes[0]
    assert first % GOP == 0  # from a keyframe on
    lost = first - last - 1
    assert lost > 0
    stats = recorder.stats
    assert stats.dropped_packets == lost
    assert stats.gaps == 1
    assert stats.gap_seconds == pytest.approx(lost / 25, abs=0.2)
    assert states == [
        RecorderState.RECORDING,
        RecorderState.STORAGE_PROBLEM,
        RecorderState.RECORDING,
        RecorderState.STOPPED,
    ]
    messages = [r.getMessage() for r in caplog.records]
    assert sum("storage is more than 2 s behind" in m for m in messages) == 1
    assert sum("storage caught up" in m for m in messages) == 1


# -- the writer on its own ------------------------------------------------------------------


def test_failures_are_logged_once_and_recovery_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The same failure again is not logged again (no line every few seconds on a full disk)."""
    caplog.set_level(logging.INFO, LOGGER)
    errors: list[str] = []
    writer = ClipWriter("Camera x", on_error=lambda what, err: errors.append(what))
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    for _ in range(3):
        spool = writer.open(blocked / "day" / "a.mp4")
        spool.write(b"x")
        writer.finish(spool, Finish(None, 0.0, lambda path, st: None))
    assert writer.flush(5)
    assert not writer.healthy
    done: list[Path] = []
    spool = writer.open(tmp_path / "day" / "a.mp4")
    spool.write(b"moov")
    writer.finish(spool, Finish(tmp_path / "day" / "b.mp4", 5.0, lambda p, st: done.append(p)))
    writer.stop()
    assert writer.healthy
    assert done == [tmp_path / "day" / "b.mp4"]
    assert done[0].stat().st_mtime == 5.0
    assert errors == ["cannot open a clip"] * 3
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "Camera x: cannot open a clip: Not a directory",
        "Camera x: storage writes work again",
    ]


def test_a_failed_clip_keeps_its_whole_fragments(tmp_path: Path) -> None:
    """A write that fails mid-clip: what reached the disk up to the last fragment is kept."""

    class FailOnce(Disk):
        writes = 0

        def write(self, fd: int, data: bytes) -> None:
            FailOnce.writes += 1
            if FailOnce.writes == 3:
                raise OSError(5, "Input/output error")
            super().write(fd, data)

    def box(kind: bytes, size: int) -> bytes:
        return (8 + size).to_bytes(4, "big") + kind + b"\0" * size

    writer = ClipWriter("Camera x", disk=FailOnce())
    done: list[Path] = []
    for name in ("a", "b"):
        spool = writer.open(tmp_path / f"{name}.mp4")
        spool.write(box(b"ftyp", 8) + box(b"moov", 8))
        spool.write(box(b"moof", 8) + box(b"mdat", 16))
        spool.write(box(b"moof", 8) + box(b"mdat", 16))  # fails for "a", is kept for "b"
        writer.finish(spool, Finish(None, 0.0, lambda path, st: done.append(path)))
    spool = writer.open(tmp_path / "c.mp4")  # the header never made it: no clip at all
    writer.discard(spool)
    writer.stop()
    assert done == [tmp_path / "a.mp4", tmp_path / "b.mp4"]
    assert not (tmp_path / "c.mp4").exists()
    assert (tmp_path / "a.mp4").stat().st_size == 16 + 16 + 16 + 24
    assert (tmp_path / "b.mp4").stat().st_size == 16 + 16 + 2 * (16 + 24)
    assert not list(tmp_path.glob(f"*{PART_SUFFIX}"))


def test_stop_gives_up_on_a_hung_disk(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A disk that never answers delays shutdown by the stop timeout, not for ever."""
    disk = StallingDisk()
    writer = ClipWriter("Camera x", disk=disk)
    spool = writer.open(tmp_path / "a.mp4")
    disk.running.clear()
    spool.write(b"x" * 1000)
    spool.hand_over()
    assert not writer.flush(0.2)
    assert writer.backlog_bytes == 1000
    assert writer.backlog_seconds() > 0.2
    writer.stop(timeout=0.3)
    assert "storage did not answer for 0 s" in caplog.text
    disk.running.set()
    assert writer.flush(5)
    assert writer.backlog_seconds() == 0.0
    writer.stop()


def test_a_backlog_past_its_bytes_is_full_whatever_its_age(tmp_path: Path) -> None:
    disk = StallingDisk()
    writer = ClipWriter("Camera x", disk=disk)
    spool = Spool(writer, writer.open(tmp_path / "a.mp4").file)
    assert writer.flush(5)  # the file is open: nothing waits
    disk.running.clear()
    spool.write(b"\0" * (BUFFER_BYTES + 1))
    assert writer.backlog_seconds() == 0.0  # kept by the spool until handed over
    spool.hand_over()
    assert writer.backlog_seconds() == float("inf")
    disk.running.set()
    writer.stop()


class FullDisk(Disk):
    """A disk with no space left while `full` is set: clips cannot be created nor written."""

    def __init__(self) -> None:
        self.full = threading.Event()

    def open(self, part: Path) -> int:
        if self.full.is_set():
            raise OSError(28, "No space left on device")
        return super().open(part)

    def write(self, fd: int, data: bytes) -> None:
        if self.full.is_set():
            raise OSError(28, "No space left on device")
        super().write(fd, data)


def test_a_full_disk_is_logged_once_not_at_every_retry(
    camera: RtspServer,
    tmp_path: Path,
    states: list[RecorderState],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """While the disk is full the recorder retries every few seconds (here 0.2 s): the failure
    is logged once, the gaps it makes are counted, not logged at each retry, and recovery once."""
    monkeypatch.setattr(recorder_module, "RETRY_OPEN_SECONDS", 0.2)
    caplog.set_level(logging.INFO, LOGGER)
    disk = FullDisk()
    recorder = make_recorder(tmp_path, states, disk=disk)
    session = run_session(camera.url("/numbered"), recorder)
    try:
        wait_for(lambda: recorder.index.count("front-door") >= 1, 20)
        disk.full.set()
        wait_for(lambda: recorder.stats.gaps >= 3, 20)  # several retries, each a gap
        disk.full.clear()
        indexed = recorder.index.count("front-door")
        wait_for(lambda: recorder.index.count("front-door") >= indexed + 2, 20)
    finally:
        session.stop()
    messages = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("No space left on device" in m for m in messages)
    assert len(messages) == len(set(messages)), messages  # each distinct failure once
    assert not [m for m in messages if "recording gap" in m]
    assert recorder.stats.gaps >= 3
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert sum("storage writes work again" in m for m in infos) == 1

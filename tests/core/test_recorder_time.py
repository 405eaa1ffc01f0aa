"""Clip times are wall-clock arrival times: backlogs, stalls, clock drift and crash recovery.

Fake-clock tests feed a numbered file packet by packet, each packet "arriving" when the test
says; the real ones use a camera served faster than real time (tests/rig/paced_http.py), a
GStreamer RTSP server frozen with SIGSTOP, and a recording process killed with SIGKILL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
import itertools
import logging
import os
from pathlib import Path
import signal
import time

import av
import pytest

from custom_components.pm_dvr.core.clips import (
    Clip,
    ClipIndex,
    clip_name_order,
)
from custom_components.pm_dvr.core.layout import clip_name, clip_path
from custom_components.pm_dvr.core.probe import video_info
from custom_components.pm_dvr.core.recorder import (
    MUX_OPTIONS,
    STALL_SECONDS,
    Recorder,
    RecorderState,
    recover_partials,
)
from custom_components.pm_dvr.core.stream import StreamSession
from tests.rig import recorder_child
from tests.rig.paced_http import PacedHttpServer
from tests.rig.rtsp import RtspServer

from .test_recorder import FakeClock, Probe, make_video, wait_for

LOGGER = "custom_components.pm_dvr.core.recorder"
# A fake-clock origin at a half second: a start moved back by 0.6 s changes its name's second.
BASE = 1_800_000_000.5


@pytest.fixture(scope="module")
def numbered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """30 s of numbered frames, 320x180 at 25 fps, a keyframe every second."""
    return make_video(tmp_path_factory.mktemp("time") / "numbered.mp4", 30 * 25, w=320, h=180)


def recorder_on(tmp_path: Path, clock: Callable[[], float], segment: float = 2.0) -> Recorder:
    return Recorder("cam", tmp_path, ClipIndex(tmp_path / "recordings"), segment, clock=clock)


def play(
    recorder: Recorder,
    clock: FakeClock,
    path: Path,
    arrival: Callable[[float], float | None],
) -> list[tuple[Clip, float]]:
    """One connection: each packet arrives at arrival(its media seconds), or never (None).

    Returns every clip closed, with the clock as it closed: the clip after it was named then.
    """
    closed: list[tuple[Clip, float]] = []
    remove = recorder.index.add_listener(lambda clip: closed.append((clip, clock.now)))
    with av.open(str(path)) as container:
        recorder.on_connect(container, video_info(container))
        for packet in container.demux():
            if not packet.size or packet.dts is None or packet.time_base is None:
                continue
            at = arrival(float(packet.dts * packet.time_base))
            if at is None:
                continue
            clock.now = max(clock.now, at)
            recorder.on_packet(packet)
            assert recorder.flush(timeout=10)  # the disk keeps up: clips close as they are cut
        recorder.on_disconnect("end of stream")
    assert recorder.flush(timeout=10)
    remove()
    return closed


def assert_wall_clock_names(closed: list[tuple[Clip, float]], first_arrival: float) -> None:
    """Each clip starts at most CLOCK_TOLERANCE before it was opened and never after; names
    are unique, in recording order, and clips never overlap."""
    opened = [first_arrival] + [at for _, at in closed[:-1]]
    for (clip, at), open_at in zip(closed, opened, strict=True):
        assert open_at - 1.0 - 1e-6 <= clip.start <= open_at
        assert clip.path.name == clip_name(clip.start)
        assert clip.start < clip.end <= at
    names = [clip.path.name for clip, _ in closed]
    assert names == sorted(names)
    assert len(set(names)) == len(names)
    for (before, _), (after, _) in itertools.pairwise(closed):
        assert after.start >= before.end - 1e-6


def frame_numbers(clips: list[Clip]) -> list[int]:
    numbers: list[int] = []
    for clip in clips:
        probe = Probe(clip.path)
        assert probe.first_is_key
        assert len(probe.numbers) == probe.packets
        numbers += probe.numbers
    return numbers


# -- fake clock ---------------------------------------------------------------------------------


def test_backlog_names_stay_on_the_wall_clock(
    numbered: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Real time for 4 s, then 26 s of footage delivered at 4x: names follow arrival."""
    caplog.set_level(logging.INFO, LOGGER)
    clock = FakeClock(BASE)
    recorder = recorder_on(tmp_path, clock)

    def arrival(t: float) -> float:
        return BASE + (t if t < 4 else 4 + (t - 4) / 4)

    closed = play(recorder, clock, numbered, arrival)
    assert_wall_clock_names(closed, BASE)
    clips = [clip for clip, _ in closed]
    assert frame_numbers(clips) == list(range(30 * 25))
    assert clips[-1].end - clips[0].start == pytest.approx(4 + 26 / 4, abs=0.1)
    # A clip per wall-clock second at most while the backlog comes in (4 s of footage each).
    assert max(Probe(c.path).packets for c in clips) >= 4 * 25
    assert recorder.stats.gaps == 0
    drift = [r for r in caplog.records if "ahead of the wall clock" in r.getMessage()]
    assert len(drift) == 1  # one backlog, one line
    assert drift[0].levelno == logging.INFO


def test_stall_then_burst_is_a_gap_and_names_follow_arrival(
    numbered: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """What a frozen GStreamer server does: nothing for 10 s, then the missed frames at 4x."""
    caplog.set_level(logging.INFO, LOGGER)
    clock = FakeClock(BASE)
    recorder = recorder_on(tmp_path, clock)

    def arrival(t: float) -> float:
        return BASE + (t if t < 5.5 else max(t, 15.5 + (t - 5.5) / 4))

    closed = play(recorder, clock, numbered, arrival)
    assert_wall_clock_names(closed, BASE)
    stats = recorder.stats
    assert stats.gaps == 1
    assert stats.gap_seconds == pytest.approx(10.0, abs=0.05)  # 5.48 s -> 15.5 s of wall time
    gaps = [r for r in caplog.records if "recording gap" in r.getMessage()]
    assert [r.getMessage() for r in gaps] == ["Camera cam: recording gap of 10.0 s (no video)"]
    assert gaps[0].levelno == logging.WARNING
    clips = [clip for clip, _ in closed]
    holes = [b.start - a.end for a, b in itertools.pairwise(clips)]
    # The clip before the stall ends by the camera's clock (at the keyframe after the stall, a
    # half second of frames later); the next starts as that keyframe arrived.
    assert max(holes) == pytest.approx(10.0 - 0.5 + 0.5 / 4, abs=0.05)
    assert sorted(holes)[-2] == pytest.approx(0, abs=1e-6)
    assert frame_numbers(clips) == list(range(30 * 25))


def test_stall_with_the_camera_clock_running_on(numbered: Path, tmp_path: Path) -> None:
    """A camera that sends nothing for 7.5 s but whose clock runs on: the gap is counted, the
    clip holds the still picture (no frame is lost or invented)."""
    clock = FakeClock(BASE)
    recorder = recorder_on(tmp_path, clock)
    closed = play(recorder, clock, numbered, lambda t: None if 5.5 <= t < 13 else BASE + t)
    assert_wall_clock_names(closed, BASE)
    assert recorder.stats.gaps == 1
    assert recorder.stats.gap_seconds == pytest.approx(13 - 5.48, abs=0.01)
    clips = [clip for clip, _ in closed]
    assert all(b.start == a.end for a, b in itertools.pairwise(clips))
    numbers = frame_numbers(clips)
    assert numbers == [n for n in range(30 * 25) if not 5.5 * 25 <= n < 13 * 25]


def test_clock_drift_is_corrected_and_logged_once(
    numbered: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A camera clock 5 % slow: re-anchored every 20 s or so, one log line, no gap."""
    caplog.set_level(logging.INFO, LOGGER)
    clock = FakeClock(BASE)
    recorder = recorder_on(tmp_path, clock)
    closed = play(recorder, clock, numbered, lambda t: BASE + t * 1.05)
    assert_wall_clock_names(closed, BASE)
    assert recorder.stats.gaps == 0
    clips = [clip for clip, _ in closed]
    assert clips[-1].end == pytest.approx(BASE + 30 * 1.05, abs=1.0)
    assert all(b.start == a.end for a, b in itertools.pairwise(clips))
    drift = [r.getMessage() for r in caplog.records if "wall clock" in r.getMessage()]
    assert len(drift) == 1
    assert "behind the wall clock" in drift[0]


def test_late_first_keyframe_moves_the_start_back(numbered: Path, tmp_path: Path) -> None:
    """FFmpeg hands over the first 0.6 s at once after probing: the first clip starts as the
    camera's clock says (renamed into the earlier second), and a reconnect's gap counts from
    there too."""
    clock = FakeClock(BASE)
    recorder = recorder_on(tmp_path, clock)
    first = play(recorder, clock, numbered, lambda t: BASE + max(t, 0.6) if t < 10 else None)
    second_base = BASE + 15
    second = play(
        recorder, clock, numbered, lambda t: second_base + max(t, 0.6) if t < 10 else None
    )
    clips = [clip for clip, _ in first + second]
    assert clips[0].start == pytest.approx(BASE)
    assert clips[0].path.name == clip_name(BASE) != clip_name(BASE + 0.6)
    assert not list(tmp_path.rglob("*.part"))
    assert clips[0].duration == pytest.approx(2.0)
    restart = clips[len(first)]
    assert restart.start == pytest.approx(second_base)
    assert restart.path.name == clip_name(second_base)
    assert recorder.stats.gaps == 1
    assert recorder.stats.gap_seconds == pytest.approx(second_base - clips[len(first) - 1].end)
    assert recorder.stats.gap_seconds == pytest.approx(5.0, abs=0.05)
    assert_wall_clock_names(first, BASE + 0.6)


def test_stall_while_not_recording_is_no_gap(numbered: Path, tmp_path: Path) -> None:
    clock = FakeClock(BASE)
    recorder = recorder_on(tmp_path, clock)
    recorder.set_enabled(False)
    play(recorder, clock, numbered, lambda t: None if 3 <= t < 9 else BASE + t)
    assert recorder.stats.gaps == 0
    assert recorder.index.count() == 0


# -- crash recovery -----------------------------------------------------------------------------


def fragmented(source: Path, dest: Path, seconds: float) -> None:
    """The first `seconds` of `source` as the recorder writes a clip (fragmented MP4)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with (
        av.open(str(source)) as src,
        av.open(str(dest), "w", format="mp4", container_options=MUX_OPTIONS) as out,
    ):
        from custom_components.pm_dvr.core.avcompat import add_template_stream

        stream = add_template_stream(out, src.streams.video[0])
        for packet in src.demux(video=0):
            if packet.size and packet.dts is not None and packet.time_base is not None:
                if packet.dts * packet.time_base >= seconds:
                    break
                packet.stream = stream
                out.mux(packet)


def test_recovery_renames_a_part_named_in_the_future(numbered: Path, tmp_path: Path) -> None:
    """A part from a version whose clock ran ahead: named after what it holds, so it sorts
    before the clips recorded after the restart and is not read as empty."""
    written = time.time() - 120
    ahead = clip_path(tmp_path, "cam", written + 30)  # 30 s ahead, as the issue measured
    part = ahead.with_name(ahead.name + ".part")
    fragmented(numbered, part, 5.0)
    os.utime(part, (written, written))
    before = clip_path(tmp_path, "cam", written - 8)  # closed before the crash
    fragmented(numbered, before, 2.0)
    os.utime(before, (written - 6, written - 6))
    after = clip_path(tmp_path, "cam", written + 10)  # recorded after the restart
    fragmented(numbered, after, 2.0)
    os.utime(after, (written + 12, written + 12))
    assert recover_partials(tmp_path) == [clip_path(tmp_path, "cam", written - 5)]
    index = ClipIndex(tmp_path / "recordings")
    assert index.scan() == 3
    clips = index.clips("cam")
    assert [c.path for c in clips] == [before, clip_path(tmp_path, "cam", written - 5), after]
    assert all(c.duration > 0 for c in clips)
    assert clips[1].end == pytest.approx(written, abs=0.01)
    assert Probe(clips[1].path).packets == 5 * 25
    # Boxes without readable video: a second long, ending at its last write.
    ahead = clip_path(tmp_path, "cam", written + 50)
    broken = ahead.with_name(ahead.name + ".part")
    broken.write_bytes(b"\x00\x00\x00\x08moov\x00\x00\x00\x08moof\x00\x00\x00\x08mdat")
    os.utime(broken, (written + 20, written + 20))
    assert recover_partials(tmp_path) == [clip_path(tmp_path, "cam", written + 19)]
    assert index.scan() == 4
    assert all(c.duration >= 1 for c in index.clips("cam")[1:])


# -- real parts ---------------------------------------------------------------------------------


@pytest.fixture
def fast_camera(numbered: Path, socket_enabled: None) -> Iterator[PacedHttpServer]:
    """The numbered file as a camera delivering 4x faster than real time (a Python server)."""
    server = PacedHttpServer(numbered, speed=4).start()
    yield server
    server.stop()


class VideoArrivals:
    """A sink after the recorder: when each video packet was read (wall clock)."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def on_connect(self, container: av.container.InputContainer, info: object) -> None:
        """Nothing to learn."""

    def on_packet(self, packet: av.Packet) -> None:
        if packet.stream.type == "video":
            self.times.append(time.time())

    def on_disconnect(self, reason: str) -> None:
        """Nothing to close."""

    def silences(self, since: float, longer_than: float) -> list[float]:
        """The waits between video packets read after `since` longer than `longer_than`."""
        times = [t for t in self.times if t >= since]
        waits = (b - a for a, b in itertools.pairwise(times))
        return [wait for wait in waits if wait > longer_than]


class Recording:
    """A recorder on the real clock in a session, with when each clip closed and opened."""

    def __init__(self, storage: Path, url: str, read_timeout: float = 5.0) -> None:
        self.closed: list[tuple[Clip, float]] = []
        self.arrivals = VideoArrivals()
        self.states: list[tuple[RecorderState, float]] = []
        self.recorder = Recorder(
            "cam",
            storage,
            ClipIndex(storage / "recordings"),
            2.0,
            on_state=lambda state: self.states.append((state, time.time())),
        )
        self.recorder.index.add_listener(lambda clip: self.closed.append((clip, time.time())))
        self.session = StreamSession("cam", url, read_timeout=read_timeout)
        self.session.add_sink(self.recorder)
        self.session.add_sink(self.arrivals)
        self.session.start()

    def clips(self, until: float = float("inf")) -> list[Clip]:
        """The clips that started by `until` (they are indexed a moment after they close)."""
        return [clip for clip, _ in self.closed if clip.start <= until]

    def opened(self) -> list[float]:
        """When each closed clip was opened: as the one before closed, or on (re)connecting."""
        starts = [at for state, at in self.states if state is RecorderState.RECORDING]
        opened = []
        for i in range(len(self.closed)):
            previous = self.closed[i - 1][1] if i else 0.0
            later = [at for at in starts if at > previous]
            opened.append(later[0] if later and later[0] < self.closed[i][1] else previous)
        return opened

    def assert_names_on_the_wall_clock(self, slack: float = 0.5) -> list[float]:
        """Never named after it opened, at most a second (and a busy CPU's `slack`) before."""
        leads = []
        for (clip, closed_at), opened in zip(self.closed, self.opened(), strict=True):
            leads.append(clip.start - opened)
            assert opened - 1.0 - slack <= clip.start <= opened
            assert clip.end <= closed_at
        names = [clip.path.name for clip, _ in self.closed]
        assert names == sorted(names, key=clip_name_order)
        return leads


def test_camera_faster_than_real_time(
    fast_camera: PacedHttpServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """30 s of footage arriving in 7.5 s: every name within a second of the wall clock."""
    caplog.set_level(logging.INFO, LOGGER)
    rec = Recording(tmp_path, fast_camera.url())
    try:
        # The file plays once, then the session is between connections.
        wait_for(lambda: rec.recorder.state is RecorderState.RECONNECTING and rec.closed, 60)
    finally:
        rec.session.stop()
    ended = next(at for state, at in rec.states if state is RecorderState.RECONNECTING)
    rec.closed = rec.closed[: len(rec.clips(ended))]
    leads = rec.assert_names_on_the_wall_clock()
    print(f"name minus wall clock at opening: {min(leads):+.3f} .. {max(leads):+.3f} s")
    clips = rec.clips()
    numbers = frame_numbers(clips)
    assert numbers == list(range(len(numbers)))
    assert len(numbers) >= 29 * 25  # all of it (the last frames may be lost at the end)
    assert clips[-1].end - clips[0].start < 15  # 30 s of footage, placed as it arrived
    assert rec.recorder.stats.gaps == 0
    assert sum("ahead of the wall clock" in r.getMessage() for r in caplog.records) == 1


@pytest.mark.parametrize(
    "case",
    [
        # FFmpeg gives up after twice the read timeout: 30 s, so the freeze is seen in-stream.
        pytest.param((15.0, 1, 1.0, 10.0), id="frozen-while-connected"),
        # It gives up after 4 s; reconnecting (backoff 1 s, 2 s) may take a few seconds more.
        pytest.param((2.0, 2, 5.0, 10.0), id="read-timeout-reconnects"),
        # The case: 20 s with the default 5-s read timeout (it gives up after 10 s).
        pytest.param((5.0, 2, 5.0, 20.0), id="20-s-freeze-as-shipped"),
    ],
)
def test_frozen_camera_is_a_wall_clock_gap(
    rtsp_private_core: RtspServer,
    tmp_path: Path,
    case: tuple[float, int, float, float],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """SIGSTOP the camera: a gap as long as the freeze, and the names after it on the wall clock.

    As shipped (5-s read timeout) FFmpeg gives up after 10 s and the session reconnects; a longer
    read timeout shows the freeze in-stream.
    """
    read_timeout, connections, late, freeze = case
    caplog.set_level(logging.INFO, LOGGER)
    process = rtsp_private_core.process
    assert process is not None
    rec = Recording(tmp_path, rtsp_private_core.url("/cam"), read_timeout)
    try:
        wait_for(lambda: len(rec.closed) >= 1, 30)
        stopped = time.time()
        process.send_signal(signal.SIGSTOP)
        try:
            time.sleep(freeze)
        finally:
            resumed = time.time()
            process.send_signal(signal.SIGCONT)
        wait_for(lambda: len(rec.clips()) >= 2 and rec.clips()[-2].start > resumed, 60)
    finally:
        rec.session.stop()
    frozen = resumed - stopped
    stats = rec.recorder.stats
    logged = [r.getMessage() for r in caplog.records if "recording gap" in r.getMessage()]
    gaps = [float(message.split(" of ")[1].split()[0]) for message in logged]
    print(f"frozen {frozen:.2f} s, gaps logged {gaps}")
    assert rec.session.stats.connects == connections
    assert stats.gaps == len(gaps)
    later = gaps[1:]
    # The freeze's gap as counted: a clip's start may still settle back after it is logged.
    freeze_gap = stats.gap_seconds - sum(later)
    assert frozen - 1.0 <= freeze_gap <= frozen + late
    # A busy machine may leave a camera just back without video for a while: a gap of its own,
    # allowed only where no video was read (counted from the first packet after the freeze).
    back = next(t for t in rec.arrivals.times if t > resumed)
    silences = rec.arrivals.silences(back, STALL_SECONDS)
    assert all("(no video)" in message for message in logged[1:])
    assert len(later) <= len(silences)
    assert sorted(later) == pytest.approx(sorted(silences)[-len(later) :] if later else [], abs=0.5)
    clips = rec.clips()
    holes = [b.start - a.end for a, b in itertools.pairwise(clips)]
    # In-stream, the clip before the freeze ends by the camera's clock at the keyframe after it.
    assert max(holes) == pytest.approx(freeze_gap, abs=1.2)
    rec.assert_names_on_the_wall_clock()


def test_sigkill_during_a_backlog_then_restart(
    fast_camera: PacedHttpServer, rtsp_server_core: RtspServer, tmp_path: Path
) -> None:
    """Killed mid-clip while a backlog came in at 4x, restarted at once: the recovered clip
    sorts between the clips before and after, and none is empty in the index."""
    child = recorder_child.start(fast_camera.url(), tmp_path, 2.0, ("clips", 2))
    try:
        time.sleep(1.5)
        # Mid-clip means footage in the open part: its first fragment is written a keyframe
        # after it opens, and a loaded machine can put the kill in between.
        wait_for(lambda: recorder_child.open_part_has_footage(tmp_path), 10)
    finally:
        killed = time.time()
        recorder_child.stop(child)
    assert len(list(tmp_path.rglob("*.part"))) == 1
    recovered = recover_partials(tmp_path)
    assert len(recovered) == 1
    rec = Recording(tmp_path, rtsp_server_core.url("/cam"))  # restarted at once
    try:
        wait_for(lambda: len(rec.closed) >= 2, 30)
    finally:
        rec.session.stop()
    index = ClipIndex(tmp_path / "recordings")
    index.scan()
    clips = index.clips("cam")
    names = [c.path.name for c in clips]
    assert names == sorted(names, key=clip_name_order)
    at = names.index(recovered[0].name)
    assert 2 <= at <= len(clips) - 3  # two closed before the kill, two or three after
    for clip in clips:
        assert clip.duration > 0
        assert Probe(clip.path, cut=clip is clips[at]).first_is_key
    for before, after in itertools.pairwise(clips):
        assert before.end < after.end  # in the order they were recorded
        assert after.start >= before.end - 1  # names are whole seconds
    assert all(c.end <= killed for c in clips[: at + 1])
    assert clips[at + 1].end > killed
    assert clips[at + 1].start > killed - 1  # whole seconds: may share the recovered one's

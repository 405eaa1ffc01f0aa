"""Benchmark: pm_dvr's recorder against the ffmpeg CLI segmenter on the same RTSP streams.

Run from the repo root: .venv/bin/python bench/recording.py [--round R] [--quick], R one of
steady, fault, disk or all (the default).
A 1080p25 ~4 Mbit/s H.264 file (noise, so the bitrate is real) is served by the GStreamer rig
(tests/rig/rtsp.py) from one path per camera and contender. The last line is `RESULT {json}`.

Steady round: each contender runs alone in its own process(es), 1, 4, 8 and 16 cameras; CPU is
read from /proc/<pid>/stat over a steady-state window that starts after start-up (process start,
imports, probing), memory as PSS from /proc/<pid>/smaps_rollup at the end of that window.

Fault round (issue #16): 8 flapping cameras beside 8 steady ones, both contenders recording all
16 at once. Each flapping camera is an RTSP server process of its own, killed (SIGKILL, a camera
losing power), started again 10 s later and left up until 30 s after the kill, 10 times (5
minutes); the 8 cameras' cycles are staggered by 30/8 s. The steady cameras share one server.
Every camera has a mount per contender, so both lose the same camera at the same moment while
neither restarts the other's stream.
- pm_dvr: one StreamSession + Recorder per camera in one process, as in the steady round, with a
  tap sink before each recorder noting when every keyframe reached it (time.time()).
- anchor: the steady round's ffmpeg segmenter command, one per camera, each under a supervisor
  loop as a systemd unit with `Restart=always` and `RestartSec=10` runs it (ffmpeg exits, rc 0,
  as soon as its camera dies, and at once when the camera refuses the connection). The old pm_dvr
  seed's unit is not in this repository's history, so RestartSec is the issue's 10 s. FFmpeg keeps
  its default RTSP timeouts, as the steady round does: a killed camera closes the connection and
  a camera that is down refuses it, so nothing hangs without `-timeout`. Segments are named by
  ffmpeg's `-strftime 1` (`%Y%m%d-%H%M%S.mp4`, as a user's unit would, so a restart never
  overwrites the last run's files); the steady round uses the same command.
The rig's camera listens again about 0.1 s after it is started, and FFmpeg exits within 0.05 s of
the kill, so a camera down for 10 s and an anchor started again 10 s after its exit race: the
anchor either gets the camera at once or is refused and waits another RestartSec (counted as
"restarts refused"). pm_dvr's retries, a second apart, race it in the same way within a second.
Figures come from the files each contender wrote, never from their logs. A file's footage is
[end - duration, end]: duration from its video packets' timestamps (PyAV), end its last write on
the kernel's clock (the anchor's mtime; pm_dvr sets its clips' mtime itself, so its ctime, which
the kernel sets as pm_dvr does so, as it closes the clip). Per outage (kill to the server
listening again) and contender: lost = first footage after it - last footage before it -
downtime; resume = first footage after it - the moment the server listened again. Name drift
compares each pm_dvr clip's name (whole seconds: the interval [name, name + 1)) with the tap's
arrival time of the keyframe the clip starts with (found by the end of its bytes, in recording
order), so it cannot be fooled by the recorder's own naming. The tap also counts the video
packets that reached each recorder, to be found again in its clips.

Disk-stall round (issue #16): 4 cameras (1 with --quick) recorded by pm_dvr in this process
through one Disk (the recorder's writer seam) whose open, write and finish block for 10 s once
every camera has 2 clips (1), then 15 s (5) more. A tap before each recorder notes every video
packet read; lost = packets read that are not found, in order, in the clips after stop and
flush. Also the longest pause between packets read during the stall (the reader must not wait on
the disk). The anchor is not measured: FFmpeg writes from the thread that reads the camera, and
stalling its files would need a FUSE or dm-delay device.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
import itertools
import json
import logging
import os
from pathlib import Path
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.rig.rtsp import RtspServer  # noqa: E402

OUT = ROOT / "bench" / "out"
TICKS = os.sysconf("SC_CLK_TCK")
SEGMENT = 10.0
# Fault round: the pattern, and the anchor's supervisor (systemd's RestartSec).
FLAP_DOWN = 10.0
FLAP_CYCLE = 30.0
RESTART_SEC = 10.0
# Disk-stall round: how long the disk blocks (the 10 s).
STALL = 10.0
# Bytes at the end of a keyframe that find it in a clip (Annex B on the wire, length-prefixed NAL
# units in MP4: the end of the last NAL unit is the same).
TAIL = 48


def make_media(plays: int = 6) -> Path:
    """1080p25, 4 Mbit/s, GOP 2 s, no B-frames: 30 s played `plays` times (made once, reused).

    Scene-cut keyframes are off: on a noisy picture x264 would otherwise put one every third of a
    second, where cameras keep a fixed GOP.
    """
    media = OUT / f"cam1080p_gop2s_{plays * 30}s.mp4"
    if media.exists():
        return media
    OUT.mkdir(parents=True, exist_ok=True)
    base = OUT / "cam1080p_gop2s.mp4"
    if not base.exists():
        subprocess.run(
            ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
             "testsrc2=size=1920x1080:rate=25,noise=alls=12:allf=t", "-t", "30",
             "-c:v", "libx264", "-preset", "veryfast", "-bf", "0", "-g", "50", "-sc_threshold", "0",
             "-b:v", "4M", "-maxrate", "4M", "-bufsize", "8M", "-pix_fmt", "yuv420p", "-an",
             str(base)],
            check=True,
        )  # fmt: skip
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-stream_loop", str(plays - 1), "-i", str(base),
         "-c", "copy", str(media)],
        check=True,
    )  # fmt: skip
    return media


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (all its threads) from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def pss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return 0


def hwm_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def pct(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..1)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def tail_key(data: bytes) -> str:
    # Imported here, not at the top: the steady round's measured process must not load OpenSSL
    # (3.3 MB of PSS) for a function only the fault and disk rounds use.
    import hashlib

    return hashlib.blake2b(data[-TAIL:], digest_size=8).hexdigest()


def measure(procs: list[subprocess.Popen[str]], warmup: float, duration: float) -> dict[str, float]:
    """CPU over [warmup, warmup + duration] after start, memory at its end, for all processes."""
    started = time.monotonic()
    time.sleep(max(0.0, warmup - (time.monotonic() - started)))
    before = sum(cpu_seconds(p.pid) for p in procs)
    t0 = time.monotonic()
    time.sleep(duration)
    cpu = sum(cpu_seconds(p.pid) for p in procs) - before
    wall = time.monotonic() - t0
    for p in procs:
        if p.poll() is not None:
            raise RuntimeError(f"process {p.args!r} died during the measurement")
    return {
        "cpu_per_min": cpu * 60.0 / wall,
        "pss_mb": sum(pss_kb(p.pid) for p in procs) / 1024,
        "peak_rss_mb": sum(hwm_kb(p.pid) for p in procs) / 1024,
    }


# -- the contenders -----------------------------------------------------------------------------


def ffmpeg_cmd(url: str, out: Path) -> list[str]:
    """The anchor: FFmpeg's segmenter, stream copy, 10-s segments named by wall-clock time."""
    return ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-rtsp_transport", "tcp",
            "-i", url, "-c", "copy", "-f", "segment", "-segment_time", str(int(SEGMENT)),
            "-reset_timestamps", "1", "-strftime", "1", str(out / "%Y%m%d-%H%M%S.mp4")]  # fmt: skip


def wait_or_kill(process: subprocess.Popen[Any], timeout: float = 10) -> None:
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def stop_process(process: subprocess.Popen[Any]) -> None:
    """SIGINT (FFmpeg finishes its file), SIGKILL if it does not end."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    wait_or_kill(process)


def start_pm_dvr(urls: list[str], workdir: Path, mode: str = "steady") -> subprocess.Popen[str]:
    """pm_dvr in a process of its own (`child_main`), recording `urls` into `workdir`."""
    return subprocess.Popen(
        [sys.executable, __file__, "--child", str(workdir), mode, *urls],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def stop_pm_dvr(child: subprocess.Popen[str]) -> dict[str, Any]:
    """Ask the child to stop its sessions; its report (recorder and session counters)."""
    assert child.stdin is not None
    assert child.stdout is not None
    child.stdin.write("stop\n")
    child.stdin.flush()
    report: dict[str, Any] = json.loads(child.stdout.readline() or "{}")
    child.wait(timeout=60)
    child.stdin.close()
    child.stdout.close()
    return report


def run_ffmpeg(urls: list[str], workdir: Path, warmup: float, duration: float) -> dict[str, float]:
    procs = []
    for i, url in enumerate(urls):
        out = workdir / f"cam{i}"
        out.mkdir(parents=True)
        procs.append(subprocess.Popen(ffmpeg_cmd(url, out), stdout=subprocess.DEVNULL, text=True))
    try:
        result = measure(procs, warmup, duration)
    finally:
        for p in procs:
            p.send_signal(signal.SIGINT)
        for p in procs:
            wait_or_kill(p)
    result["bytes"] = dir_bytes(workdir)
    result["dropped"] = 0
    return result


def run_pm_dvr(urls: list[str], workdir: Path, warmup: float, duration: float) -> dict[str, float]:
    child = start_pm_dvr(urls, workdir)
    try:
        result = measure([child], warmup, duration)
    finally:
        report = stop_pm_dvr(child)
    result["bytes"] = dir_bytes(workdir)
    result["dropped"] = report.get("dropped", -1)
    result["errors"] = report.get("errors", -1)
    result["clips"] = report.get("clips", -1)
    return result


def _import_core_only() -> None:
    """Import the HA-free core without running the integration's __init__ (which loads HA).

    In Home Assistant, HA itself is already in memory; loading it here would charge ~65 MB of
    PSS to pm_dvr that ffmpeg is not charged, so only the recorder's own modules are imported.
    """
    import types

    for name, path in (
        ("custom_components", ROOT / "custom_components"),
        ("custom_components.pm_dvr", ROOT / "custom_components" / "pm_dvr"),
    ):
        if name not in sys.modules:
            package = types.ModuleType(name)
            package.__path__ = [str(path)]
            sys.modules[name] = package


class ArrivalTap:
    """A sink placed before a recorder: when each keyframe (and each connection's first video
    packet) reached it, on the wall clock, with the end of its bytes to find it in a clip."""

    def __init__(self) -> None:
        self.keyframes: list[tuple[float, str]] = []
        self.connects: list[float] = []
        self.packets = 0
        self._video = -1
        self._first = False

    def on_connect(self, container: Any, info: Any) -> None:
        self._video = container.streams.video[0].index
        self._first = True
        self.connects.append(time.time())

    def on_packet(self, packet: Any) -> None:
        if packet.stream_index != self._video or not packet.size:
            return
        self.packets += 1
        if packet.is_keyframe or self._first:
            self._first = False
            self.keyframes.append((time.time(), tail_key(bytes(packet))))

    def on_disconnect(self, reason: str) -> None:
        pass


def child_main(workdir: Path, mode: str, urls: list[str]) -> None:
    """pm_dvr as the integration runs it: one StreamSession + Recorder per camera, one process.

    mode "fault" adds an ArrivalTap before each recorder (written to tap.json) and logs to
    pm_dvr.log; "steady" adds nothing to the measured process.
    """
    _import_core_only()
    from custom_components.pm_dvr.core.clips import ClipIndex
    from custom_components.pm_dvr.core.recorder import Recorder
    from custom_components.pm_dvr.core.stream import StreamSession

    fault = mode == "fault"
    if fault:
        logging.basicConfig(
            filename=workdir / "pm_dvr.log",
            level=logging.INFO,
            format="%(created).3f %(levelname)s %(name)s: %(message)s",
        )
    index = ClipIndex(workdir / "recordings")
    cameras = []
    for i, url in enumerate(urls):
        recorder = Recorder(f"cam{i}", workdir, index, SEGMENT)
        session = StreamSession(f"cam{i}", url)
        tap = ArrivalTap() if fault else None
        if tap is not None:
            session.add_sink(tap)  # sinks run in the order added: the tap just before
        session.add_sink(recorder)
        session.start()
        cameras.append((session, recorder, tap))
    sys.stdin.readline()
    for session, _, _ in cameras:
        session.stop()
    if fault:
        taps = {f"cam{i}": {"keyframes": t.keyframes, "connects": t.connects, "packets": t.packets}
                for i, (_, _, t) in enumerate(cameras) if t is not None}  # fmt: skip
        (workdir / "tap.json").write_text(json.dumps(taps))
    report = {
        "dropped": sum(r.stats.dropped_packets for _, r, _ in cameras),
        "errors": sum(r.stats.errors for _, r, _ in cameras),
        "clips": sum(r.stats.clips for _, r, _ in cameras),
        "packets": sum(r.stats.packets for _, r, _ in cameras),
        "demuxed": sum(s.stats.video_packets for s, _, _ in cameras),
        "gaps": sum(r.stats.gaps for _, r, _ in cameras),
        "connects": sum(s.stats.connects for s, _, _ in cameras),
    }
    print(json.dumps(report), flush=True)


# -- steady round -------------------------------------------------------------------------------


def steady_round(quick: bool) -> dict[str, Any]:
    """CPU and memory of both contenders at 1, 4, 8 and 16 cameras; prints its table."""
    warmup, duration, rounds = (4.0, 15.0, 1) if quick else (5.0, 60.0, 3)
    media = make_media()
    server = RtspServer(mounts={f"/cam{i}": f"file:{media}" for i in range(16)}).start()
    runs = OUT / "runs"
    rows: list[tuple[str, int, dict[str, float]]] = []

    def one(kind: str, cameras: int, n: int) -> dict[str, float]:
        workdir = runs / f"{kind}-{cameras}-{n}"
        shutil.rmtree(workdir, ignore_errors=True)
        workdir.mkdir(parents=True)
        urls = [server.url(f"/cam{i}") for i in range(cameras)]
        runner = run_pm_dvr if kind == "pm_dvr" else run_ffmpeg
        result = runner(urls, workdir, warmup, duration)
        shutil.rmtree(workdir, ignore_errors=True)
        print(
            f"  {kind:7s} cams={cameras:2d} round={n}: {result['cpu_per_min']:.2f} CPU-s/min, "
            f"PSS {result['pss_mb']:.0f} MB, dropped {result['dropped']}",
            flush=True,
        )
        time.sleep(2)  # let every mount see its client leave, so the next starts at frame 0
        return result

    def alternating(cameras: int, times: int) -> None:
        results: dict[str, list[dict[str, float]]] = {"pm_dvr": [], "ffmpeg": []}
        for n in range(times):
            for kind, measured in results.items():
                measured.append(one(kind, cameras, n))
        for kind, measured in results.items():
            rows.append((kind, cameras, median_of(measured)))

    try:
        alternating(1, rounds)
        alternating(4, 1)
        alternating(8, 1)
        alternating(16, rounds)  # the headline ratio: as many rounds as one camera
    finally:
        server.stop()

    window = f"{duration:.0f} s window after {warmup:.0f} s start-up"
    print(
        f"\nSteady-state recording, 1080p25 ~4 Mbit/s, {window}; "
        f"1 and 16 cameras = median of {rounds} rounds"
    )
    print(
        f"{'recorder':8s} {'cams':>4s} {'CPU-s/min':>10s} {'cores':>6s} {'PSS MB':>7s} "
        f"{'peak RSS MB':>11s} {'MB written':>10s} {'dropped':>7s}"
    )
    for kind, cameras, r in rows:
        print(
            f"{kind:8s} {cameras:4d} {r['cpu_per_min']:10.2f} {r['cpu_per_min'] / 60:6.3f} "
            f"{r['pss_mb']:7.0f} {r['peak_rss_mb']:11.0f} {r['bytes'] / 1e6:10.1f} "
            f"{int(r['dropped']):7d}"
        )
    by = {(k, c): r for k, c, r in rows}
    print("\nratio pm_dvr / ffmpeg:")
    for cameras in (1, 4, 8, 16):
        pm, ff = by[("pm_dvr", cameras)], by[("ffmpeg", cameras)]
        print(
            f"  {cameras:2d} cams: CPU {pm['cpu_per_min'] / ff['cpu_per_min']:.2f}x, "
            f"PSS {pm['pss_mb'] / ff['pss_mb']:.2f}x, bytes {pm['bytes'] / max(1, ff['bytes']):.2f}x"
        )
    pm16, ff16 = by[("pm_dvr", 16)], by[("ffmpeg", 16)]
    pm1, ff1 = by[("pm_dvr", 1)], by[("ffmpeg", 1)]
    return {
        "cpu_ratio_vs_ffmpeg": round(pm16["cpu_per_min"] / ff16["cpu_per_min"], 3),
        "cpu_ratio_vs_ffmpeg_1cam": round(pm1["cpu_per_min"] / ff1["cpu_per_min"], 3),
        "cores_16_cameras": round(pm16["cpu_per_min"] / 60, 4),
        "dropped_packets": int(sum(r["dropped"] for k, _, r in rows if k == "pm_dvr")),
        "memory_ratio_vs_ffmpeg": round(pm16["pss_mb"] / ff16["pss_mb"], 3),
        "pss_mb_16": {"pm_dvr": round(pm16["pss_mb"], 1), "ffmpeg": round(ff16["pss_mb"], 1)},
        "cpu_s_per_min_16": {
            "pm_dvr": round(pm16["cpu_per_min"], 2),
            "ffmpeg": round(ff16["cpu_per_min"], 2),
        },
    }


def median_of(results: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(r[key] for r in results) for key in results[0]}


# -- fault round --------------------------------------------------------------------------------


class Supervisor:
    """A command as systemd runs a unit with `Restart=always` and `RestartSec=` `restart_sec`:
    started again that long after every exit, whatever its exit code."""

    def __init__(self, cmd: list[str], log: IO[str], restart_sec: float = RESTART_SEC) -> None:
        self.cmd = cmd
        self.log = log
        self.restart_sec = restart_sec
        self.exits: list[tuple[float, int]] = []  # (wall time, exit code)
        self._process: subprocess.Popen[str] | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Supervisor:
        self._thread.start()
        return self

    def _run(self) -> None:
        while True:
            with self._lock:
                if self._stop.is_set():
                    return
                self._process = subprocess.Popen(
                    self.cmd, stdout=subprocess.DEVNULL, stderr=self.log, text=True
                )
            code = self._process.wait()
            self.exits.append((time.time(), code))
            if self._stop.wait(self.restart_sec):
                return

    def stop(self) -> None:
        """`systemctl stop`: the running process is asked to end (SIGINT: FFmpeg finishes)."""
        with self._lock:
            self._stop.set()
            process = self._process
        if process is not None:
            stop_process(process)
        self._thread.join()


@dataclass(slots=True)
class Outage:
    """One kill of a flapping camera: from the kill to its server listening again."""

    camera: int
    killed: float
    back: float = 0.0

    @property
    def downtime(self) -> float:
        return self.back - self.killed


def flap(
    server: RtspServer,
    camera: int,
    first_kill: float,
    cycles: int,
    *,
    log: list[Outage],
    errors: list[BaseException],
) -> None:
    """Kill the camera, start it again FLAP_DOWN later, kill it again FLAP_CYCLE after the last
    kill, `cycles` times; the last restart is left up for the rest of a cycle."""
    try:
        for k in range(cycles):
            time.sleep(max(0.0, first_kill + k * FLAP_CYCLE - time.time()))
            outage = Outage(camera, time.time())
            server.stop(kill=True)
            time.sleep(max(0.0, outage.killed + FLAP_DOWN - time.time()))
            server.start()
            outage.back = time.time()
            log.append(outage)
        time.sleep(max(0.0, first_kill + cycles * FLAP_CYCLE - time.time()))
    except Exception as err:  # a server that did not come back: the round is void
        errors.append(err)


@dataclass(slots=True)
class Footage:
    """What one file holds, placed on the wall clock by its last write."""

    path: Path
    end: float
    duration: float
    packets: int
    first_key: str | None
    start: float = field(init=False)

    def __post_init__(self) -> None:
        self.start = self.end - self.duration


def read_footage(path: Path, end: float) -> Footage:
    """Video packets, seconds of video (first DTS to the last packet's end) and the first
    packet's tail; a file PyAV cannot read holds no footage."""
    import av

    first: int | None = None
    last = 0
    packets = 0
    key: str | None = None
    seconds = 0.0
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            for packet in container.demux(stream):
                if packet.dts is None or not packet.size:
                    continue
                if first is None:
                    first = packet.dts
                    key = tail_key(bytes(packet))
                last = max(last, packet.dts + (packet.duration or 0))
                packets += 1
            if first is not None and stream.time_base is not None:
                seconds = float((last - first) * stream.time_base)
    except (av.error.FFmpegError, IndexError):
        pass
    return Footage(path, end, seconds, packets, key)


def camera_footage(folder: Path, end_of: Callable[[os.stat_result], float]) -> list[Footage]:
    """Every clip under `folder`, in the order they were finished."""
    files = sorted(folder.rglob("*.mp4"))
    return sorted((read_footage(f, end_of(f.stat())) for f in files), key=lambda f: f.end)


@dataclass(slots=True)
class OutageResult:
    lost: float
    resume: float


def outage_result(
    footage: list[Footage], outage: Outage, since: float, until: float
) -> OutageResult:
    """Footage missing around one outage beyond its downtime, and when recording resumed.

    Footage before the outage is what ends before its middle, footage after it what starts
    after its middle and before the camera's next kill (`until`); `since` is the camera's
    previous restart. A file's end cannot lie after the kill nor its start before the server
    listened again (the last write is read a little late), so both are held to those.
    """
    middle = (outage.killed + outage.back) / 2
    before = [f.end for f in footage if f.packets and since < f.end <= middle]
    after = [f.start for f in footage if f.packets and middle <= f.start < until]
    last = min(max(before, default=since), outage.killed)
    first = max(min(after, default=until), outage.back)
    return OutageResult(lost=first - last - outage.downtime, resume=first - outage.back)


def name_interval_distance(name_start: float, true_start: float) -> float:
    """How far a start lies outside its name's second [name, name + 1)."""
    if true_start < name_start:
        return name_start - true_start
    return max(0.0, true_start - (name_start + 1.0))


def name_drifts(
    clips: list[Footage], keyframes: list[tuple[float, str]]
) -> tuple[list[float], int]:
    """Each clip's name against the arrival of the keyframe it starts with.

    The keyframe is the first one in the tap, after the one matched to the clip before, that
    arrived before the clip was finished and not before the clip before was (less a second),
    whose tail is the clip's first packet's: the file repeats every 30 s, clips last 10 s.
    Returns the drifts and how many clips had no such keyframe.
    """
    from custom_components.pm_dvr.core.clips import clip_start_from_name

    drifts: list[float] = []
    unmatched = 0
    at = 0
    previous_end = float("-inf")
    for clip in clips:
        name_start = clip_start_from_name(clip.path.name)
        match = next(
            (
                i
                for i in range(at, len(keyframes))
                if keyframes[i][1] == clip.first_key
                and previous_end - 1.0 <= keyframes[i][0] <= clip.end
            ),
            None,
        )
        previous_end = clip.end
        if match is None or name_start is None:
            unmatched += 1
            continue
        at = match + 1
        drifts.append(name_interval_distance(name_start, keyframes[match][0]))
    return drifts, unmatched


def footage_gaps(footage: list[Footage], threshold: float = 1.0) -> list[float]:
    """Holes longer than `threshold` between one camera's consecutive files."""
    holes = [b.start - a.end for a, b in itertools.pairwise(footage)]
    return [h for h in holes if h > threshold]


class PacketTap(ArrivalTap):
    """An ArrivalTap that also notes every video packet: when it was read (monotonic) and its
    tail, to find it again in the clips."""

    def __init__(self) -> None:
        super().__init__()
        self.read: list[tuple[float, str, bool]] = []

    def on_packet(self, packet: Any) -> None:
        if packet.stream_index == self._video and packet.size:
            self.read.append((time.monotonic(), tail_key(bytes(packet)), packet.is_keyframe))


def clip_tails(path: Path) -> list[str]:
    """The tail of every video packet in a clip, in order."""
    import av

    with av.open(str(path)) as container:
        return [tail_key(bytes(p)) for p in container.demux(video=0) if p.size]


def missing_runs(read: list[str], written: list[str]) -> tuple[int, int, int]:
    """Packets read but in no clip, the runs they form (holes), and packets in clips never read,
    the two matched in order by difflib (the media repeats every 30 s, so not as sets)."""
    import difflib

    matcher = difflib.SequenceMatcher(None, read, written, autojunk=False)
    lost = holes = extra = 0
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op in ("delete", "replace"):
            lost += i2 - i1
            holes += 1
        if op in ("insert", "replace"):
            extra += j2 - j1
    return lost, holes, extra


def disk_stall_round(media: Path, quick: bool) -> int:
    """Packets lost by pm_dvr while its disk stalls for 10 s (issue #16's third target).

    pm_dvr's StreamSession + Recorder per camera, in this process, writing through a Disk whose
    open, write and finish block for STALL seconds once every camera has closed a clip or two
    (a NAS share that hangs; one disk for all cameras). A PacketTap before each recorder notes
    every video packet read from its first keyframe on; lost = those not found, in order, in the
    camera's clips after stop and flush (the recorder's dropped packets among them). The reader
    must not wait on the disk: the longest pause between two packets read during the stall is
    compared with the longest before it. Prints its table, returns the packets lost.
    """
    _import_core_only()
    from custom_components.pm_dvr.core.clips import ClipIndex
    from custom_components.pm_dvr.core.recorder import Recorder
    from custom_components.pm_dvr.core.stream import StreamSession
    from custom_components.pm_dvr.core.writer import Disk

    class StallingDisk(Disk):
        """Open, write and finish wait while the disk is stalled."""

        def __init__(self) -> None:
            self.running = threading.Event()
            self.running.set()
            self.longest = 0.0

        def _wait(self) -> None:
            began = time.monotonic()
            self.running.wait()
            self.longest = max(self.longest, time.monotonic() - began)

        def open(self, part: Path) -> int:
            self._wait()
            return super().open(part)

        def write(self, fd: int, data: bytes) -> None:
            self._wait()
            super().write(fd, data)

        def finish(self, part: Path, final: Path, end: float) -> os.stat_result:
            self._wait()
            return super().finish(part, final, end)

    cameras, clips_before, after = (1, 1, 5.0) if quick else (4, 2, 15.0)
    workdir = OUT / "runs" / "disk"
    shutil.rmtree(workdir, ignore_errors=True)
    server = RtspServer(mounts={f"/cam{i}": f"file:{media}" for i in range(cameras)}).start()
    disk = StallingDisk()
    index = ClipIndex(workdir / "recordings")
    recorders = [Recorder(f"cam{i}", workdir, index, SEGMENT, disk=disk) for i in range(cameras)]
    taps = [PacketTap() for _ in range(cameras)]
    sessions = [StreamSession(f"cam{i}", server.url(f"/cam{i}")) for i in range(cameras)]
    try:
        for session, tap, recorder in zip(sessions, taps, recorders, strict=True):
            session.add_sink(tap)  # sinks run in the order added: the tap just before
            session.add_sink(recorder)
            session.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and any(
            index.count(f"cam{i}") < clips_before for i in range(cameras)
        ):
            time.sleep(0.2)
        stall_began = time.monotonic()
        disk.running.clear()
        time.sleep(STALL)
        disk.running.set()
        stall_ended = time.monotonic()
        time.sleep(after)
    finally:
        for session in sessions:
            session.stop()
        server.stop()
    flushed = all(r.flush(30) for r in recorders)

    lost = holes = extra = read_total = 0
    wait_before = wait_during = 0.0
    for i, tap in enumerate(taps):
        first_key = next(k for k, (_, _, key) in enumerate(tap.read) if key)
        read = tap.read[first_key:]
        read_total += len(read)
        written = [t for clip in index.clips(f"cam{i}") for t in clip_tails(clip.path)]
        found = missing_runs([t for _, t, _ in read], written)
        lost, holes, extra = lost + found[0], holes + found[1], extra + found[2]
        waits = [(b[0], b[0] - a[0]) for a, b in itertools.pairwise(read)]
        wait_before = max([w for t, w in waits if t < stall_began] + [wait_before])
        wait_during = max([w for t, w in waits if stall_began < t <= stall_ended + 1.0]
                          + [wait_during])  # fmt: skip
    packets = sum(r.stats.packets for r in recorders)
    dropped = sum(r.stats.dropped_packets for r in recorders)
    gaps = sum(r.stats.gaps for r in recorders)
    shutil.rmtree(workdir, ignore_errors=True)

    print(
        f"\nDisk-stall round: {cameras} camera(s), 1080p25 ~4 Mbit/s, one disk whose open, write "
        f"and finish block for {STALL:.0f} s after {clips_before} clip(s) per camera, "
        f"{after:.0f} s more, then stop and flush (flushed: {flushed}); "
        f"the longest disk call waited {disk.longest:.2f} s"
    )
    na = "n/a"
    print(f"{'metric':56s} {'anchor':>8s} {'pm_dvr':>8s}")
    for label, value in (
        ("packets lost (read but in no clip, in order)", lost),
        ("  of which dropped (recorder's counter)", dropped),
        ("holes in the packet sequence", holes),
        ("gaps (recorder's counter)", gaps),
        ("packets in clips never read", extra),
        ("packets read (from the first keyframe on)", read_total),
        ("packets recorded (recorder's counter)", packets),
    ):
        print(f"{label:56s} {na:>8s} {value:8d}")
    print(f"{'longest pause between packets read before the stall, s':56s} {na:>8s} "
          f"{wait_before:8.2f}")  # fmt: skip
    print(f"{'longest pause between packets read during the stall, s':56s} {na:>8s} "
          f"{wait_during:8.2f}")  # fmt: skip
    print(
        "  anchor n/a: ffmpeg writes from the thread that reads the camera, and stalling its "
        "files needs a FUSE or dm-delay device, not available here"
    )
    return lost


@dataclass(slots=True)
class FaultRun:
    """What the fault round recorded, and where."""

    flapping: int
    steady: int
    cycles: int
    pm_dir: Path
    ff_dir: Path
    started: float = 0.0
    ended: float = 0.0
    outages: list[Outage] = field(default_factory=list)
    report: dict[str, Any] = field(default_factory=dict)
    anchor_exits: list[tuple[float, int]] = field(default_factory=list)
    load: tuple[float, float] = (0.0, 0.0)


def record_faults(quick: bool, media: Path) -> FaultRun:
    """Both contenders recording flapping and steady cameras at once."""
    flapping, steady, cycles = (2, 2, 2) if quick else (8, 8, 10)
    workdir = OUT / "runs" / "fault"
    shutil.rmtree(workdir, ignore_errors=True)
    run = FaultRun(flapping, steady, cycles, workdir / "pm_dvr", workdir / "ffmpeg")
    run.pm_dir.mkdir(parents=True)
    mounts = {"/pm": f"file:{media}", "/ff": f"file:{media}"}
    flappers = [RtspServer(mounts=dict(mounts)).start() for _ in range(flapping)]
    rig = RtspServer(
        mounts={f"/{kind}{i}": f"file:{media}" for i in range(steady) for kind in ("pm", "ff")}
    ).start()
    pm_urls = [s.url("/pm") for s in flappers] + [rig.url(f"/pm{i}") for i in range(steady)]
    ff_urls = [s.url("/ff") for s in flappers] + [rig.url(f"/ff{i}") for i in range(steady)]
    load_before = os.getloadavg()[0]
    run.started = time.time()
    child = start_pm_dvr(pm_urls, run.pm_dir, "fault")
    anchor_log = (workdir / "ffmpeg.log").open("w")
    anchors = []
    for i, url in enumerate(ff_urls):
        (run.ff_dir / f"cam{i}").mkdir(parents=True)
        anchors.append(Supervisor(ffmpeg_cmd(url, run.ff_dir / f"cam{i}"), anchor_log).start())
    errors: list[BaseException] = []
    try:
        # Both record every camera before the first kill.
        deadline = time.time() + 60
        while time.time() < deadline and not all(
            any((run.pm_dir / "recordings" / f"cam{i}").rglob("*.part"))
            and any((run.ff_dir / f"cam{i}").glob("*.mp4"))
            for i in range(flapping + steady)
        ):
            time.sleep(0.5)
        time.sleep(5.0)
        first_kill = time.time() + 1.0
        print(
            f"  fault round: {flapping} cameras flapping {cycles} times, {steady} steady; "
            f"recording from {first_kill - run.started:.1f} s before the first kill",
            flush=True,
        )
        threads = [
            threading.Thread(
                target=flap,
                args=(server, i, first_kill + i * FLAP_CYCLE / flapping, cycles),
                kwargs={"log": run.outages, "errors": errors},
            )
            for i, server in enumerate(flappers)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        run.ended = time.time()
        if errors:
            raise RuntimeError(f"a flapping camera failed: {errors[0]!r}") from errors[0]
    finally:
        for anchor in anchors:
            anchor.stop()
            run.anchor_exits += anchor.exits
        anchor_log.close()
        run.report = stop_pm_dvr(child)
        for server in (*flappers, rig):
            server.stop()
    run.load = (load_before, os.getloadavg()[0])
    print(
        f"  recorded {run.ended - run.started:.0f} s; load average {run.load[0]:.1f} before, "
        f"{run.load[1]:.1f} after (1 min); pm_dvr's counters: {run.report}",
        flush=True,
    )
    return run


def fault_round(quick: bool, keep: bool = False) -> dict[str, Any]:
    """Record the faults, then measure both contenders from their files; prints its table."""
    _import_core_only()
    from custom_components.pm_dvr.core.clips import clip_start_from_name

    media = make_media(4 if quick else 14)  # longer than the round: steady cameras never end
    run = record_faults(quick, media)
    cameras = run.flapping + run.steady
    pm = [camera_footage(run.pm_dir / "recordings" / f"cam{i}", lambda st: st.st_ctime)
          for i in range(cameras)]  # fmt: skip
    ff = [camera_footage(run.ff_dir / f"cam{i}", lambda st: st.st_mtime) for i in range(cameras)]
    contenders = {"ffmpeg": ff, "pm_dvr": pm}
    taps = json.loads((run.pm_dir / "tap.json").read_text())

    # Per outage: footage lost and resume from the files; pm_dvr's first packet from the tap.
    results: dict[str, list[OutageResult]] = {kind: [] for kind in contenders}
    first_packet: list[float] = []
    print("\n  cam cycle  downtime  ffmpeg lost/resume  pm_dvr lost/resume  pm_dvr 1st packet")
    for camera in range(run.flapping):
        events = sorted((o for o in run.outages if o.camera == camera), key=lambda o: o.killed)
        arrivals = [t for t, _ in taps[f"cam{camera}"]["keyframes"]]
        for k, outage in enumerate(events):
            since = events[k - 1].back if k else run.started
            until = events[k + 1].killed if k + 1 < len(events) else run.ended
            line = f"  {camera:3d} {k:5d} {outage.downtime:9.2f}"
            for kind, footage in contenders.items():
                result = outage_result(footage[camera], outage, since, until)
                results[kind].append(result)
                line += f" {result.lost:11.2f} {result.resume:6.2f}"
            first_packet.append(next((t for t in arrivals if t > outage.back), until) - outage.back)
            print(f"{line} {first_packet[-1]:13.2f}")

    # Names: pm_dvr's against the tap; both contenders' against their files' footage.
    drifts: list[float] = []
    unmatched = 0
    for i in range(cameras):
        found, missing = name_drifts(pm[i], [tuple(k) for k in taps[f"cam{i}"]["keyframes"]])
        drifts += found
        unmatched += missing
    file_drift = {
        kind: max(
            name_interval_distance(clip_start_from_name(f.path.name) or 0.0, f.start)
            for cam in footage
            for f in cam
            if f.packets
        )
        for kind, footage in contenders.items()
    }
    # Sanity: nothing lost on the steady cameras, every packet that reached pm_dvr in a clip.
    steady_gaps = {
        kind: [round(g, 2) for cam in footage[run.flapping :] for g in footage_gaps(cam)]
        for kind, footage in contenders.items()
    }
    empty = {kind: sum(not f.packets for cam in fs for f in cam) for kind, fs in contenders.items()}
    in_clips = sum(f.packets for cam in pm for f in cam)
    arrived = sum(t["packets"] for t in taps.values())
    refused = sum(code != 0 for at, code in run.anchor_exits if at < run.ended)

    def spread(kind: str, attr: str) -> dict[str, float]:
        values = [getattr(r, attr) for r in results[kind]]
        return {"p50": pct(values, 0.5), "p95": pct(values, 0.95), "max": max(values)}

    loss = {kind: spread(kind, "lost") for kind in contenders}
    resume = {kind: spread(kind, "resume") for kind in contenders}
    downtimes = [o.downtime for o in run.outages]
    drift_max = max(drifts) if drifts else float("nan")
    print(
        f"\nFault round: {run.flapping} cameras killed and started again {FLAP_DOWN:.0f} s later, "
        f"{FLAP_CYCLE:.0f}-s cycles, {run.cycles} times, beside {run.steady} steady ones; "
        f"1080p25 ~4 Mbit/s; anchor restarted {RESTART_SEC:.0f} s after each exit; "
        f"{len(run.outages)} outages, downtime {min(downtimes):.2f}-{max(downtimes):.2f} s "
        f"(kill to listening again); load average {run.load[0]:.1f} before, {run.load[1]:.1f} after"
    )
    print(f"{'metric':56s} {'anchor':>8s} {'pm_dvr':>8s} {'ratio':>6s}")

    def row(label: str, anchor: float | None, ours: float | None, digits: int = 2) -> None:
        def cell(v: float | None) -> str:
            return "-" if v is None else f"{v:.{digits}f}"

        ratio = "-" if not anchor or ours is None else f"{ours / anchor:.2f}"
        print(f"{label:56s} {cell(anchor):>8s} {cell(ours):>8s} {ratio:>6s}")

    for q in ("p50", "p95", "max"):
        row(f"footage lost per outage beyond its downtime, {q}, s", loss["ffmpeg"][q],
            loss["pm_dvr"][q])  # fmt: skip
    for q in ("p50", "max"):
        row(f"recording resumed after the camera was back, {q}, s", resume["ffmpeg"][q],
            resume["pm_dvr"][q])  # fmt: skip
    row("first packet after the camera was back, max, s", None, max(first_packet))
    row("clip-name drift from arrival, max, s", None, drift_max)
    row("clip-name drift from the file's footage, max, s", file_drift["ffmpeg"],
        file_drift["pm_dvr"])  # fmt: skip
    row("restarts refused (camera not back yet)", refused, None, 0)
    row("steady cameras: footage gaps > 1 s", len(steady_gaps["ffmpeg"]),
        len(steady_gaps["pm_dvr"]), 0)  # fmt: skip
    row("files without video", empty["ffmpeg"], empty["pm_dvr"], 0)
    row("packets that reached the recorder but no clip", None, arrived - in_clips, 0)
    row("dropped packets (recorder's counter)", None, run.report.get("dropped", -1), 0)
    print(
        f"  clips checked for name drift: {len(drifts)} (unmatched {unmatched}); parts left: "
        f"{len(list(run.pm_dir.rglob('*.part')))}; steady gaps (s): {steady_gaps}"
    )
    if not keep:
        shutil.rmtree(run.pm_dir / "recordings", ignore_errors=True)  # gigabytes of video
        shutil.rmtree(run.ff_dir, ignore_errors=True)
    return {
        "outage_loss_p95_s": round(loss["pm_dvr"]["p95"], 2),
        "name_drift_max_s": round(drift_max, 3),
        "resume_max_s": round(resume["pm_dvr"]["max"], 2),
        "outage_loss_s": {k: {q: round(v, 2) for q, v in s.items()} for k, s in loss.items()},
        "resume_s": {k: {q: round(v, 2) for q, v in s.items()} for k, s in resume.items()},
        "first_packet_max_s": round(max(first_packet), 2),
        "outages": len(run.outages),
        "fault_dropped_packets": run.report.get("dropped", -1),
        "fault_packets_not_in_clips": arrived - in_clips,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short windows and rounds")
    parser.add_argument("--round", choices=("all", "steady", "fault", "disk"), default="all")
    parser.add_argument("--keep", action="store_true", help="keep the fault round's recordings")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(Path(args.child[0]), args.child[1], args.child[2:])
        return
    result: dict[str, Any] = {}
    if args.round in ("all", "steady"):
        result |= steady_round(args.quick)
    if args.round in ("all", "fault"):
        result |= fault_round(args.quick, args.keep)
    if args.round in ("all", "disk"):
        result["disk_stall_lost_packets"] = disk_stall_round(make_media(4), args.quick)
    result["quick"] = args.quick
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()

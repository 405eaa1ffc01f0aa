"""Benchmark: pm_dvr's recorder against the ffmpeg CLI segmenter on the same RTSP streams.

Run from the repo root: .venv/bin/python bench/recording.py [--quick]
A 1080p25 ~4 Mbit/s H.264 file (noise, so the bitrate is real) is served by the GStreamer rig
from one path per camera. Each contender runs in its own process(es); CPU is read from
/proc/<pid>/stat over a steady-state window that starts after start-up (process start, imports,
probing), memory as PSS from /proc/<pid>/smaps_rollup at the end of that window. The anchor names
its segments by wall-clock time (`-strftime 1`), as a user's unit would.
The last line is `RESULT {json}`.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import shutil
import signal
import statistics
import subprocess
import sys
import time
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.rig.rtsp import RtspServer  # noqa: E402

OUT = ROOT / "bench" / "out"
TICKS = os.sysconf("SC_CLK_TCK")
SEGMENT = 10.0


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


def start_pm_dvr(urls: list[str], workdir: Path) -> subprocess.Popen[str]:
    """pm_dvr in a process of its own (`child_main`), recording `urls` into `workdir`."""
    return subprocess.Popen(
        [sys.executable, __file__, "--child", str(workdir), *urls],
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


def child_main(workdir: Path, urls: list[str]) -> None:
    """pm_dvr as the integration runs it: one StreamSession + Recorder per camera, one process."""
    _import_core_only()
    from custom_components.pm_dvr.core.clips import ClipIndex
    from custom_components.pm_dvr.core.recorder import Recorder
    from custom_components.pm_dvr.core.stream import StreamSession

    index = ClipIndex(workdir / "recordings")
    pairs = []
    for i, url in enumerate(urls):
        recorder = Recorder(f"cam{i}", workdir, index, SEGMENT)
        session = StreamSession(f"cam{i}", url)
        session.add_sink(recorder)
        session.start()
        pairs.append((session, recorder))
    sys.stdin.readline()
    for session, _ in pairs:
        session.stop()
    report = {
        "dropped": sum(r.stats.dropped_packets for _, r in pairs),
        "errors": sum(r.stats.errors for _, r in pairs),
        "clips": sum(r.stats.clips for _, r in pairs),
        "packets": sum(r.stats.packets for _, r in pairs),
        "demuxed": sum(s.stats.video_packets for s, _ in pairs),
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short windows, one round")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(Path(args.child[0]), args.child[1:])
        return
    result = steady_round(args.quick)
    result["quick"] = args.quick
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()

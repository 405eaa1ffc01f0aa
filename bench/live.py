"""Benchmark of live view from the one camera connection, against opening the camera directly.

Run from the repo root: .venv/bin/python bench/live.py [--cameras 8] [--viewers 4] [--seconds 20]

Cameras: the real RTSP test server streaming a 1080p25 4 Mbit/s H.264 file per camera
(made once with GStreamer, cached in ~/.cache/pm_dvr/bench). pm_dvr runs in a process of its
own (`--serve`): one StreamSession per camera with its recorder, the live source and an HTTP
endpoint serving `core.live.serve_viewer`, as HA's view does. Viewers and measuring clients run
in this process.

Anchor: what a user has without pm_dvr's live source, i.e. HA's stream (or VLC) opening the
camera URL itself: one more RTSP connection per viewer, and a first picture only at the
camera's next keyframe after the RTSP set-up.

Rounds:
1. connections: per camera, recording + motion + 4 viewers (pm_dvr) against the session plus
   4 direct RTSP clients (anchor), counted by the RTSP server.
2. first frame: a viewer's request to its first decodable frame, against a direct RTSP open.
3. steady: all cameras recording with no viewer, then with `--viewers` each, for the CPU per
   viewer and the added latency (each measured viewer's frames matched by content to a direct
   RTSP client's: the time a frame's last byte leaves the endpoint minus the time it left the
   camera).
4. faults: per camera one viewer that stops reading and one that reconnects every second,
   beside the measured one; latency and recording must hold.
The last line is `RESULT {json}`.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import os
from pathlib import Path
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
from aiohttp import web  # noqa: E402
import av  # noqa: E402

from custom_components.pm_dvr.core.clips import ClipIndex  # noqa: E402
from custom_components.pm_dvr.core.live import LiveSource, serve_viewer  # noqa: E402
from custom_components.pm_dvr.core.motion import MotionConfig, MotionWorker  # noqa: E402
from custom_components.pm_dvr.core.motion_sink import MotionSink  # noqa: E402
from custom_components.pm_dvr.core.recorder import Recorder  # noqa: E402
from custom_components.pm_dvr.core.stream import StreamSession  # noqa: E402
from tests.rig.rtsp import RtspServer  # noqa: E402

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pm_dvr" / "bench"
SOURCE_SECONDS = 240
TAIL = 48  # bytes of a frame's end that identify it on both sides


def camera_file() -> Path:
    """A 1080p25 4 Mbit/s H.264 MP4 (noise, so the bitrate is real), made once."""
    path = CACHE / f"live-1080p25-4mbit-{SOURCE_SECONDS}s.mp4"
    if path.exists():
        return path
    CACHE.mkdir(parents=True, exist_ok=True)
    part = path.with_suffix(".part.mp4")
    subprocess.run(
        [
            "gst-launch-1.0",
            "-q",
            "videotestsrc",
            "pattern=snow",
            f"num-buffers={SOURCE_SECONDS * 25}",
            "!",
            "video/x-raw,width=1920,height=1080,framerate=25/1",
            "!",
            "x264enc",
            "bitrate=4000",
            "speed-preset=ultrafast",
            "key-int-max=50",
            "!",
            "video/x-h264,profile=baseline",
            "!",
            "h264parse",
            "!",
            "mp4mux",
            "!",
            "filesink",
            f"location={part}",
        ],
        check=True,
    )
    part.rename(path)
    return path


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def tail_key(data: bytes) -> bytes:
    return hashlib.blake2b(data[-TAIL:], digest_size=8).digest()


# -- the pm_dvr process -----------------------------------------------------------------------


def serve(urls: list[str], port: int, motion: bool) -> None:
    """pm_dvr's side: sessions, recorders, live sources and the endpoint. Runs until killed."""
    logging.basicConfig(format="pm_dvr: %(relativeCreated).0f ms %(message)s")
    logging.getLogger("custom_components.pm_dvr").setLevel(logging.INFO)
    storage = Path(tempfile.mkdtemp(prefix="pm_dvr-bench-live-"))
    index = ClipIndex(storage / "recordings")
    sessions: list[StreamSession] = []
    sources: list[LiveSource] = []
    recorders: list[Recorder] = []
    workers: list[MotionWorker] = []
    for number, url in enumerate(urls):
        session = StreamSession(f"cam{number}", url)
        source = LiveSource(
            f"cam{number}",
            on_watching=lambda active, s=session: setattr(s, "low_latency", active),
        )
        session.add_sink(source)
        if motion:
            worker = MotionWorker(MotionConfig(), lambda *_: None, name=f"motion {number}")
            workers.append(worker)
            session.add_sink(MotionSink(worker))
        recorder = Recorder(f"cam{number}", storage, index, 10.0)
        session.add_sink(recorder)
        session.start()
        sessions.append(session)
        sources.append(source)
        recorders.append(recorder)

    async def live(request: web.Request) -> web.StreamResponse:
        source = sources[int(request.match_info["camera"])]
        response = web.StreamResponse(headers={"Content-Type": "video/mp2t"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        await serve_viewer(source, response.write)
        return response

    async def stats(_request: web.Request) -> web.Response:
        return web.json_response(
            {
                "streaming": all(s.available for s in sessions),
                "connects": [s.stats.connects for s in sessions],
                "dropped": sum(r.stats.dropped_packets for r in recorders),
                "gaps": sum(r.stats.gaps for r in recorders),
                "gap_seconds": sum(r.stats.gap_seconds for r in recorders),
                "packets": sum(r.stats.packets for r in recorders),
                "viewers": [s.viewers for s in sources],
            }
        )

    app = web.Application()
    app.router.add_get("/live/{camera}", live)
    app.router.add_get("/stats", stats)
    try:
        web.run_app(app, host="127.0.0.1", port=port, print=None, handle_signals=True)
    finally:
        for session in sessions:
            session.stop()
        for worker in workers:
            worker.stop()
        shutil.rmtree(storage, ignore_errors=True)


class PmDvr:
    """The pm_dvr process, seen from here: start, stats, CPU seconds, stop."""

    def __init__(self, urls: list[str], motion: bool) -> None:
        self.port = free_port()
        cmd = [sys.executable, __file__, "--serve", "--port", str(self.port), *urls]
        if motion:
            cmd.append("--motion")
        self.process = subprocess.Popen(cmd)
        self.base = f"http://127.0.0.1:{self.port}"

    async def stats(self, session: aiohttp.ClientSession) -> dict[str, Any]:
        async with session.get(self.base + "/stats") as response:
            result: dict[str, Any] = await response.json()
            return result

    async def wait_streaming(self, session: aiohttp.ClientSession) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if (await self.stats(session))["streaming"]:
                    return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
        raise RuntimeError("pm_dvr did not start streaming")

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        # Threads included: utime and stime of the whole process, in clock ticks.
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- measuring clients ------------------------------------------------------------------------


class Direct(threading.Thread):
    """A direct RTSP client: the anchor's viewer (timing its first keyframe, and stopping there
    with `until_keyframe`), and with `record` the latency reference."""

    def __init__(self, url: str, record: bool = False, until_keyframe: bool = False) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.record = record
        self.until_keyframe = until_keyframe
        self.arrivals: dict[bytes, float] = {}
        self.first_frame: float | None = None
        self.started = time.monotonic()
        self.stop_event = threading.Event()

    def run(self) -> None:
        options = {"rtsp_transport": "tcp", "timeout": "10000000"}
        with av.open(self.url, options=options) as container:
            stream = container.streams.video[0]
            for packet in container.demux(stream):
                if self.stop_event.is_set():
                    return
                if not packet.size:
                    continue
                now = time.monotonic()
                if self.first_frame is None and packet.is_keyframe:
                    self.first_frame = now - self.started
                    if self.until_keyframe:
                        return
                if self.record:
                    self.arrivals[tail_key(bytes(packet))] = now


async def http_viewer(
    session: aiohttp.ClientSession,
    url: str,
    until: float,
    *,
    frames: dict[bytes, float] | None = None,
    first: list[float] | None = None,
    stall: bool = False,
) -> int:
    """One viewer over HTTP. With `frames`, parse the TS and time each frame's last byte."""
    started = time.monotonic()
    received = 0
    joined = False
    async with session.get(url) as response:
        buffer = bytearray()
        async for data, end_of_chunk in response.content.iter_chunks():
            received += len(data)
            if first is not None and not first:
                first.append(time.monotonic() - started)
            if stall:
                await asyncio.sleep(max(0.0, until - time.monotonic()))
                return received
            if frames is not None:
                buffer += data
                if end_of_chunk:
                    now = time.monotonic()
                    # The first write is the cached GOP (frames from the past, by design):
                    # latency counts the frames that come live after it.
                    if joined:
                        for payload in video_payloads(bytes(buffer)):
                            frames.setdefault(tail_key(payload), now)
                    joined = True
                    buffer.clear()
            if time.monotonic() > until:
                return received
    return received


def video_payloads(data: bytes) -> list[bytes]:
    """The PES payloads of PID 0x100 in whole TS packets (each server write ends a frame)."""
    payloads: list[bytes] = []
    current: bytearray | None = None
    for offset in range(0, len(data) - 187, 188):
        packet = data[offset : offset + 188]
        pid = ((packet[1] & 0x1F) << 8) | packet[2]
        if pid != 0x100:
            continue
        start = 4
        if packet[3] & 0x20:
            start += 1 + packet[4]
        payload = packet[start:]
        if packet[1] & 0x40:
            if current is not None:
                payloads.append(bytes(current))
            header_length = payload[8]
            current = bytearray(payload[9 + header_length :])
        elif current is not None:
            current += payload
    if current is not None:
        payloads.append(bytes(current))
    return payloads


async def first_decodable(url: str, timeout: float = 10.0) -> float:
    """Seconds from an HTTP request to the first decodable frame (its bytes, then a decode)."""
    started = time.monotonic()
    data = bytearray()
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        async for chunk, end_of_chunk in response.content.iter_chunks():
            data += chunk
            if end_of_chunk and await asyncio.to_thread(decodes, bytes(data)):
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                break
    raise RuntimeError("no decodable frame")


def decodes(data: bytes) -> bool:
    import io

    try:
        with av.open(io.BytesIO(data), format="mpegts") as container:
            for _ in container.decode(video=0):
                return True
    except av.error.FFmpegError:
        return False
    return False


# -- the rounds -------------------------------------------------------------------------------


async def round_connections(server: RtspServer, mounts: list[str], viewers: int) -> dict[str, Any]:
    """Camera connections per camera with recording + motion + viewers, both ways."""
    urls = [server.url(m) for m in mounts]
    server.reset_counts()
    pm = PmDvr(urls, motion=True)
    async with aiohttp.ClientSession() as session:
        await pm.wait_streaming(session)
        until = time.monotonic() + 4
        await asyncio.gather(
            *(
                http_viewer(session, f"{pm.base}/live/{c}", until)
                for c in range(len(urls))
                for _ in range(viewers)
            )
        )
        stats = await pm.stats(session)
    pm.stop()
    ours = server.max_clients / len(urls)
    ours_total = server.connections / len(urls)
    await asyncio.to_thread(wait_clients, server, 0)
    # The anchor: the recording session plus a direct RTSP client per viewer.
    server.reset_counts()
    pm = PmDvr(urls, motion=True)
    async with aiohttp.ClientSession() as session:
        await pm.wait_streaming(session)
        clients = [Direct(u) for u in urls for _ in range(viewers)]
        for client in clients:
            client.start()
        await asyncio.sleep(4)
        for client in clients:
            client.stop_event.set()
    pm.stop()
    anchor = server.max_clients / len(urls)
    for client in clients:
        client.join(10)
    await asyncio.to_thread(wait_clients, server, 0)
    return {
        "ours": ours,
        "ours_connections_made": ours_total,
        "anchor": anchor,
        "dropped": stats["dropped"],
    }


def wait_clients(server: RtspServer, count: int) -> None:
    deadline = time.monotonic() + 15
    while server.clients > count and time.monotonic() < deadline:
        time.sleep(0.1)


async def round_first_frame(server: RtspServer, mounts: list[str], trials: int) -> dict[str, Any]:
    urls = [server.url(m) for m in mounts]
    pm = PmDvr(urls, motion=False)
    ours: list[float] = []
    anchor: list[float] = []
    async with aiohttp.ClientSession() as session:
        await pm.wait_streaming(session)
        await asyncio.sleep(1)
        for trial in range(trials):
            camera = trial % len(urls)
            ours.append(await first_decodable(f"{pm.base}/live/{camera}"))
            direct = Direct(urls[camera], until_keyframe=True)
            direct.start()
            await asyncio.to_thread(direct.join, 15)
            # Stops at its first keyframe: the thread ends on its own once it has one.
            anchor.append(direct.first_frame if direct.first_frame is not None else 15.0)
            await asyncio.sleep(0.37)  # land at a different point of the GOP each time
    pm.stop()
    return {
        "ours": statistics.median(ours),
        "anchor": statistics.median(anchor),
        "ours_max": max(ours),
    }


async def round_steady_and_faults(
    server: RtspServer, mounts: list[str], viewers: int, seconds: float
) -> dict[str, Any]:
    urls = [server.url(m) for m in mounts]
    pm = PmDvr(urls, motion=False)
    result: dict[str, Any] = {}
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0), timeout=aiohttp.ClientTimeout(total=None)
    ) as session:
        await pm.wait_streaming(session)
        await asyncio.sleep(2)
        # Recording alone.
        cpu0, t0 = pm.cpu_seconds(), time.monotonic()
        await asyncio.sleep(seconds)
        idle_cpu = (pm.cpu_seconds() - cpu0) / (time.monotonic() - t0)
        before = await pm.stats(session)
        # Steady: `viewers` per camera, one of them measured against a direct client.
        refs = [Direct(u, record=True) for u in urls]
        for ref in refs:
            ref.start()
        frames: list[dict[bytes, float]] = [{} for _ in urls]
        until = time.monotonic() + seconds + 3
        tasks = [
            asyncio.ensure_future(
                http_viewer(
                    session,
                    f"{pm.base}/live/{c}",
                    until,
                    frames=frames[c] if v == 0 else None,
                )
            )
            for c in range(len(urls))
            for v in range(viewers)
        ]
        await asyncio.sleep(3)
        cpu0, t0 = pm.cpu_seconds(), time.monotonic()
        await asyncio.gather(*tasks)
        watched_cpu = (pm.cpu_seconds() - cpu0) / (time.monotonic() - t0)
        steady = latencies(refs, frames)
        # Faults: a viewer that stops reading and one that reconnects every second, per camera.
        frames = [{} for _ in urls]
        until = time.monotonic() + seconds
        measured = [
            http_viewer(session, f"{pm.base}/live/{c}", until, frames=frames[c])
            for c in range(len(urls))
        ]
        stalled = [
            http_viewer(session, f"{pm.base}/live/{c}", until, stall=True) for c in range(len(urls))
        ]
        flapping = [flap(session, f"{pm.base}/live/{c}", until) for c in range(len(urls))]
        await asyncio.gather(*measured, *stalled, *flapping)
        faults = latencies(refs, frames)
        for ref in refs:
            ref.stop_event.set()
        after = await pm.stats(session)
    pm.stop()
    result["idle_cpu"] = idle_cpu
    result["watched_cpu"] = watched_cpu
    result["cpu_per_viewer"] = max(0.0, watched_cpu - idle_cpu) / (len(urls) * viewers)
    result["steady_p50_ms"] = pct(steady, 0.5) * 1000
    result["steady_p99_ms"] = pct(steady, 0.99) * 1000
    result["fault_p99_ms"] = pct(faults, 0.99) * 1000
    result["matched"] = len(steady) + len(faults)
    result["dropped"] = after["dropped"] - before["dropped"]
    result["gaps"] = after["gaps"]
    result["gap_seconds"] = after["gap_seconds"]
    result["reconnects"] = sum(after["connects"]) - len(urls)
    return result


async def flap(session: aiohttp.ClientSession, url: str, until: float) -> None:
    while time.monotonic() < until:
        await http_viewer(session, url, min(until, time.monotonic() + 1.0))


def latencies(refs: list[Direct], frames: list[dict[bytes, float]]) -> list[float]:
    values = []
    for ref, seen in zip(refs, frames, strict=True):
        arrivals = dict(ref.arrivals)
        for key, at in seen.items():
            if key in arrivals:
                values.append(max(0.0, at - arrivals[key]))
    if not values:
        raise RuntimeError("no frame matched between the camera and the live endpoint")
    return values


async def run(args: argparse.Namespace) -> dict[str, Any]:
    source = camera_file()
    mounts = {f"/cam{n}": f"file:{source}" for n in range(args.cameras)}
    server = RtspServer(mounts)
    server.start()
    try:
        names = list(mounts)
        connections = await round_connections(server, names[:2], args.viewers)
        server.restart()
        first = await round_first_frame(server, names[:2], args.trials)
        server.restart()
        steady = await round_steady_and_faults(server, names, args.viewers, args.seconds)
    finally:
        server.stop()
    rows = [
        ("camera connections (rec+motion+viewers)", connections["anchor"], connections["ours"]),
        ("first decodable frame, s (median)", first["anchor"], first["ours"]),
        ("added latency p50, ms (steady)", 0.0, steady["steady_p50_ms"]),
        ("added latency p99, ms (steady)", 0.0, steady["steady_p99_ms"]),
        ("added latency p99, ms (faults)", 0.0, steady["fault_p99_ms"]),
        ("CPU of recording alone, cores", steady["idle_cpu"], steady["idle_cpu"]),
        ("CPU with viewers, cores", None, steady["watched_cpu"]),
        ("CPU per viewer, cores", None, steady["cpu_per_viewer"]),
        ("dropped recording packets", 0, steady["dropped"] + connections["dropped"]),
    ]
    print(f"{'metric':42} {'anchor':>10} {'pm_dvr':>10} {'ratio':>8}")
    for name, anchor, ours in rows:
        ratio = f"{ours / anchor:8.2f}" if anchor else "       -"
        anchor_text = "-" if anchor is None else f"{anchor:.3f}"
        print(f"{name:42} {anchor_text:>10} {ours:10.3f} {ratio}")
    print(
        f"cameras {args.cameras} x {args.viewers} viewers, 1080p25 4 Mbit/s; frames matched "
        f"{steady['matched']}; recording gaps {steady['gaps']} ({steady['gap_seconds']:.1f} s "
        f"in all); camera reconnects "
        f"{steady['reconnects']}; slowest first frame {first['ours_max']:.3f} s"
    )
    return {
        "camera_connections": connections["ours"],
        "added_latency_p99_ms": round(max(steady["steady_p99_ms"], steady["fault_p99_ms"]), 1),
        "first_frame_s": round(first["ours"], 3),
        "cpu_core_per_viewer": round(steady["cpu_per_viewer"], 4),
        "dropped_recording_packets": steady["dropped"] + connections["dropped"],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cameras", type=int, default=8)
    parser.add_argument("--viewers", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--motion", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("urls", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.urls, args.port, args.motion)
        return
    result = asyncio.run(run(args))
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()

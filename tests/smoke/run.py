"""Smoke test on a real Home Assistant release (no test harness exists for it yet).

Starts HA from the given venv, onboards, adds the hub, a camera and a folder sync target through
HA's HTTP API, watches the camera live (HA's HLS through the websocket API, and two players on
pm_dvr's live endpoint) while the RTSP server counts one connection, turns the camera's motion
detection off, then restarts HA twice. After every start
the hub must be loaded, every entity back (switch state kept), a new clip recorded, and nothing
from pm_dvr logged at error level or as a deprecation ("will stop working", "Detected that
custom integration"). Prints `smoke: N passed, N failed` last.

Usage: .venv-smoke/bin/python tests/smoke/run.py
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial
import io
from pathlib import Path
import shutil
import sys
import tempfile
import time
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.rig.checklist import Checklist  # noqa: E402
from tests.rig.ha import HomeAssistant, free_port  # noqa: E402
from tests.rig.rtsp import RtspServer  # noqa: E402

CAMERA = "camera.smoke_camera"
RECORDING = "switch.smoke_camera_recording"
MOTION = "switch.smoke_camera_motion_detection"
TARGET_PROBLEM = "binary_sensor.nas_upload_problem"
QUEUE = "sensor.pm_dvr_upload_queue"
BAD_LOG_WORDS = ("will stop working", "Detected that custom integration")
LIVE = "/api/pm_dvr/live/smoke-camera"


class Smoke(Checklist):
    def __init__(self, hass: HomeAssistant, storage: Path) -> None:
        super().__init__()
        self.hass = hass
        self.storage = storage
        self.logs: list[str] = []

    def clips(self) -> list[Path]:
        return sorted((self.storage / "recordings").glob("*/*/*.mp4"))

    def wait_for(self, what: str, predicate: Callable[[], bool], timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: not within {timeout} s")
            time.sleep(1)

    def hub_loaded(self) -> None:
        """HA answers before its integrations are set up: wait for the hub, fail on an error."""

        def state() -> str:
            entry = self.hass.hub_entry()
            assert entry is not None
            assert entry["state"] in ("not_loaded", "setup_in_progress", "loaded"), entry
            return str(entry["state"])

        self.wait_for("the hub loaded", lambda: state() == "loaded")

    def entities_back(self, motion_state: str) -> None:
        def ready() -> bool:
            states = self.hass.states()
            return all(
                entity in states and states[entity]["state"] not in ("unavailable", "unknown")
                for entity in (CAMERA, RECORDING, MOTION, TARGET_PROBLEM, QUEUE)
            )

        self.wait_for("every entity back", ready)
        states = self.hass.states()
        assert states[RECORDING]["state"] == "on", states[RECORDING]
        assert states[MOTION]["state"] == motion_state, states[MOTION]
        assert states[TARGET_PROBLEM]["state"] == "off", states[TARGET_PROBLEM]

    def new_clip(self, since: float) -> None:
        """A clip closed after `since` (clips close every segment, 10 s by default)."""
        self.wait_for(
            "a new clip", lambda: any(clip.stat().st_mtime > since for clip in self.clips()), 120
        )

    def stop_and_keep_log(self) -> None:
        """Stop HA and keep its log (HA moves it aside at the next start)."""
        code = self.hass.stop()
        print(f"==> Home Assistant stopped with exit code {code}", flush=True)
        self.logs.append(self.hass.log_file.read_text(errors="replace"))
        (self.hass.config / f"run-{len(self.logs)}.log").write_text(self.logs[-1])

    def clean_logs(self) -> None:
        bad = [
            line
            for text in self.logs
            for line in text.splitlines()
            if ("pm_dvr" in line and (" ERROR " in line or " CRITICAL " in line))
            or any(word in line for word in BAD_LOG_WORDS)
        ]
        assert not bad, "\n".join(bad)


async def hls_segments(hass: HomeAssistant, playlist_url: str) -> str:
    """Poll the camera's HLS playlist until HA's stream worker has made a segment."""
    import aiohttp

    async with aiohttp.ClientSession() as session:
        master_url = hass.base + playlist_url
        async with session.get(master_url) as response:
            master = await response.text()
        media_url = master_url.rsplit("/", 1)[0] + "/" + master.strip().splitlines()[-1]
        deadline = time.monotonic() + 60
        while True:
            async with session.get(media_url) as response:
                playlist = await response.text()
            if "#EXTINF" in playlist:
                return playlist
            assert time.monotonic() < deadline, playlist
            await asyncio.sleep(1)


async def read_live(hass: HomeAssistant, query: str, size: int = 200_000) -> bytes:
    """A player on pm_dvr's live endpoint (a long-lived token in the query, as VLC would)."""
    import aiohttp

    data = bytearray()
    async with aiohttp.ClientSession() as session, session.get(hass.base + LIVE + query) as reply:
        assert reply.status == 200, reply.status
        async for chunk in reply.content.iter_any():
            data += chunk
            if len(data) >= size:
                break
    return bytes(data)


def live_view(hass: HomeAssistant, camera: RtspServer) -> None:
    """HA's HLS and two players watch at once; the camera still sees exactly one connection."""
    import av

    assert camera.clients == 1, camera.clients
    camera.reset_counts()
    # As the frontend asks for it: websocket `camera/stream`.
    reply = hass.ws({"type": "camera/stream", "entity_id": CAMERA})
    assert reply["success"], reply
    asyncio.run(hls_segments(hass, reply["result"]["url"]))

    async def two_players() -> list[bytes]:
        query = f"?access_token={hass.token}"
        return await asyncio.wait_for(
            asyncio.gather(read_live(hass, query), read_live(hass, query)), 60
        )

    players = asyncio.run(two_players())
    for data in players:
        with av.open(io.BytesIO(data), format="mpegts") as container:
            packets = [p for p in container.demux(video=0) if p.size]
            assert packets[0].is_keyframe
    assert hass.states()[CAMERA]["state"] in ("recording", "streaming")
    assert camera.max_clients == 1, camera.max_clients
    assert camera.connections == 0, camera.connections


def created(result: dict[str, Any]) -> None:
    assert result["type"] == "create_entry", result


def main() -> int:
    camera = RtspServer({"/smoke": "synthetic"}).start()
    config = Path(tempfile.mkdtemp(prefix="pm_dvr-smoke-"))
    storage = config / "media" / "pm_dvr"
    hass = HomeAssistant(config, free_port(), sys.executable)
    hass.prepare()
    smoke = Smoke(hass, storage)
    finished = False
    try:
        print(f"==> Home Assistant from {sys.executable}, config {config}", flush=True)
        started = time.time()
        hass.start()
        hass.onboard()
        hass.confirm_http_config()
        version = hass.request("GET", "/api/config")["version"]
        print(f"==> Home Assistant {version} up in {time.time() - started:.0f} s", flush=True)
        entry_id = hass.add_hub(storage)
        result = hass.add_camera(entry_id, "Smoke camera", camera.url("/smoke"))
        smoke.check("camera added", partial(created, result))
        nas = config / "media" / "nas"
        nas.mkdir()
        target = hass.add_subentry(
            entry_id,
            "target",
            {"next_step_id": "folder"},
            {"name": "NAS", "path": str(nas)},
            {"upload": "events", "delete_after_upload": False},
        )
        smoke.check("target added", partial(created, target))
        smoke.check("hub loaded", smoke.hub_loaded)
        smoke.check("entities", lambda: smoke.entities_back("on"))
        smoke.check("clip recorded", lambda: smoke.new_clip(started))
        smoke.check(
            "live view: HLS and two players, one camera connection",
            partial(live_view, hass, camera),
        )
        hass.call("switch", "turn_off", {"entity_id": MOTION})
        for restart in (1, 2):
            smoke.stop_and_keep_log()
            since = time.time()
            hass.start()
            hass.login()
            smoke.check(f"restart {restart}: hub loaded", smoke.hub_loaded)
            smoke.check(
                f"restart {restart}: entities back, motion still off",
                lambda: smoke.entities_back("off"),
            )
            smoke.check(f"restart {restart}: new clip", partial(smoke.new_clip, since))
        smoke.stop_and_keep_log()
        smoke.check("no pm_dvr error or deprecation in the logs", smoke.clean_logs)
        finished = True
    finally:
        hass.stop()
        camera.stop()
        if smoke.failed or not finished:
            print(f"==> kept for a look: {config} (logs of every start in run-*.log)")
        else:
            shutil.rmtree(config, ignore_errors=True)
    print(f"smoke: {smoke.passed} passed, {len(smoke.failed)} failed", flush=True)
    return 1 if smoke.failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""Bring up Home Assistant with pm_dvr and a demo camera, onboarded, until Ctrl-C.

Everything goes through HA's own HTTP APIs (onboarding, config flows), as a user would click it,
so it keeps working across HA's storage format changes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
import signal
import subprocess
import sys
import time
from typing import Any
import urllib.error
import urllib.parse
import urllib.request

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.rig.rtsp import RtspServer  # noqa: E402

CONFIG = Path(os.environ.get("PM_DVR_CONFIG", ROOT / "config"))
PORT = int(os.environ.get("PM_DVR_HA_PORT", "8123"))
RTSP_PORT = int(os.environ.get("PM_DVR_DEMO_RTSP_PORT", "8554"))
BASE = f"http://127.0.0.1:{PORT}"
CLIENT_ID = f"http://localhost:{PORT}/"
USER = PASSWORD = "dev"
DEMO_SCENE = "launch:( videotestsrc is-live=true pattern=ball motion=sweep background-color=0xff3a5f3a ! video/x-raw,width=1280,height=720,framerate=15/1 ! x264enc tune=zerolatency speed-preset=ultrafast bitrate=1500 key-int-max=30 threads=1 ! video/x-h264,profile=baseline ! h264parse config-interval=-1 ! rtph264pay name=pay0 pt=96 config-interval=0 )"

CONFIGURATION = f"""\
homeassistant:
  name: pm_dvr dev
  unit_system: metric
  time_zone: UTC
  media_dirs:
    media: {CONFIG / "media"}
http:
  server_port: {PORT}
frontend:
config:
stream:
media_source:
history:
logbook:
logger:
  default: warning
  logs:
    custom_components.pm_dvr: info
"""


def request(
    method: str,
    path: str,
    body: Any = None,
    token: str | None = None,
    *,
    form: bool = False,
    timeout: float = 30,
) -> Any:
    """One HTTP call to HA; JSON in and out."""
    headers = {}
    data = None
    if body is not None:
        if form:
            data = urllib.parse.urlencode(body).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        else:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(BASE + path, data=data, headers=headers, method=method)
    with urllib.request.urlopen(req, timeout=timeout) as response:
        payload = response.read()
    return json.loads(payload) if payload else None


def wait_for_http(process: subprocess.Popen[bytes], timeout: float = 600) -> None:
    """HA installs the frontend's requirements on its first start: that can take minutes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(
                f"Home Assistant exited ({process.returncode}); see {CONFIG}/home-assistant.log"
            )
        try:
            request("GET", "/api/onboarding", timeout=5)
            return
        except urllib.error.HTTPError as err:
            if err.code == 404:  # onboarding finished on an earlier run: its views are gone
                return
            time.sleep(1)
        except (urllib.error.URLError, OSError):
            time.sleep(1)
    raise SystemExit("Home Assistant did not answer in time")


def onboard() -> str:
    """Create the owner dev/dev and finish onboarding; return an access token."""
    try:
        steps = {step["step"]: step["done"] for step in request("GET", "/api/onboarding")}
    except urllib.error.HTTPError as err:  # the onboarding views are gone once it is done
        if err.code != 404:
            raise
        steps = {"user": True}
    if not steps.get("user"):
        code = request(
            "POST",
            "/api/onboarding/users",
            {
                "client_id": CLIENT_ID,
                "name": "Dev",
                "username": USER,
                "password": PASSWORD,
                "language": "en",
            },
        )["auth_code"]
        token = request(
            "POST",
            "/auth/token",
            {"grant_type": "authorization_code", "code": code, "client_id": CLIENT_ID},
            form=True,
        )["access_token"]
        request("POST", "/api/onboarding/core_config", {}, token)
        request("POST", "/api/onboarding/analytics", {}, token)
        request(
            "POST",
            "/api/onboarding/integration",
            {"client_id": CLIENT_ID, "redirect_uri": CLIENT_ID},
            token,
        )
        return str(token)
    return login()


def login() -> str:
    """Log in as dev through the login flow, as the frontend does."""
    flow = request(
        "POST",
        "/auth/login_flow",
        {"client_id": CLIENT_ID, "handler": ["homeassistant", None], "redirect_uri": CLIENT_ID},
    )
    result = request(
        "POST",
        f"/auth/login_flow/{flow['flow_id']}",
        {"client_id": CLIENT_ID, "username": USER, "password": PASSWORD},
    )
    return str(
        request(
            "POST",
            "/auth/token",
            {"grant_type": "authorization_code", "code": result["result"], "client_id": CLIENT_ID},
            form=True,
        )["access_token"]
    )


def set_up_pm_dvr(token: str, camera_url: str) -> None:
    """Add the hub and the demo camera through pm_dvr's own config flows, once."""
    entries = request("GET", "/api/config/config_entries/entry?domain=pm_dvr", token=token)
    if entries:
        entry_id = entries[0]["entry_id"]
    else:
        flow = request("POST", "/api/config/config_entries/flow", {"handler": "pm_dvr"}, token)
        result = request(
            "POST",
            f"/api/config/config_entries/flow/{flow['flow_id']}",
            {"storage_path": str(CONFIG / "media" / "pm_dvr")},
            token,
        )
        entry_id = result["result"]["entry_id"]
    flow = request(
        "POST",
        "/api/config/config_entries/subentries/flow",
        {"handler": [entry_id, "camera"]},
        token,
    )
    result = request(
        "POST",
        f"/api/config/config_entries/subentries/flow/{flow['flow_id']}",
        {
            "name": "Demo camera",
            "stream_url": camera_url,
            "record": True,
            "audio": "auto",
            "pre_seconds": 10,
            "post_seconds": 30,
        },
        token,
    )
    if result["type"] == "abort" and result["reason"] == "already_configured":
        return
    if result["type"] != "create_entry":
        raise SystemExit(f"Adding the demo camera failed: {result}")


def main() -> None:
    CONFIG.mkdir(parents=True, exist_ok=True)
    (CONFIG / "media").mkdir(exist_ok=True)
    if not (CONFIG / "configuration.yaml").exists():
        (CONFIG / "configuration.yaml").write_text(CONFIGURATION)
    custom = CONFIG / "custom_components"
    custom.mkdir(exist_ok=True)
    link = custom / "pm_dvr"
    if not link.exists():
        link.symlink_to(ROOT / "custom_components" / "pm_dvr")

    camera = RtspServer({"/demo": DEMO_SCENE})
    camera.port = RTSP_PORT
    camera.start()
    print(f"==> demo camera: {camera.url('/demo')}", flush=True)
    hass = subprocess.Popen(
        [sys.executable, "-m", "homeassistant", "--config", str(CONFIG)],
        stdin=subprocess.DEVNULL,
    )
    # SIGTERM behaves like Ctrl-C: cleanup happens once, in `finally`, never inside a wait.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        print("==> starting Home Assistant (the first start installs the frontend)", flush=True)
        wait_for_http(hass)
        token = onboard()
        set_up_pm_dvr(token, camera.url("/demo"))
        print(
            f"==> ready: open http://localhost:{PORT}  (user {USER}, password {PASSWORD}); Ctrl-C stops",
            flush=True,
        )
        hass.wait()
    except KeyboardInterrupt:
        pass
    finally:
        print("\n==> stopping Home Assistant and the demo camera", flush=True)
        hass.send_signal(signal.SIGTERM)
        try:
            hass.wait(timeout=60)
        except subprocess.TimeoutExpired:
            hass.kill()
            hass.wait()
        camera.stop()


if __name__ == "__main__":
    main()

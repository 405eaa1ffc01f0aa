"""Bring up Home Assistant with pm_dvr and a demo camera, onboarded, until Ctrl-C.

Everything goes through HA's own HTTP APIs (onboarding, config flows), as a user would click it.
"""

from __future__ import annotations

import os
from pathlib import Path
import signal
import sys

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.rig.ha import PASSWORD, USER, HomeAssistant, port_taken  # noqa: E402
from tests.rig.rtsp import RtspServer  # noqa: E402

CONFIG = Path(os.environ.get("PM_DVR_CONFIG", ROOT / "config"))
PORT = int(os.environ.get("PM_DVR_HA_PORT", "8123"))
RTSP_PORT = int(os.environ.get("PM_DVR_DEMO_RTSP_PORT", "8554"))
DEMO_SCENE = "launch:( videotestsrc is-live=true pattern=ball motion=sweep background-color=0xff3a5f3a ! video/x-raw,width=1280,height=720,framerate=15/1 ! x264enc tune=zerolatency speed-preset=ultrafast bitrate=1500 key-int-max=30 threads=1 ! video/x-h264,profile=baseline ! h264parse config-interval=-1 ! rtph264pay name=pay0 pt=96 config-interval=0 )"


def main() -> int:
    for port, what, variable in (
        (PORT, "Home Assistant", "PM_DVR_HA_PORT"),
        (RTSP_PORT, "the demo camera", "PM_DVR_DEMO_RTSP_PORT"),
    ):
        if port_taken(port):
            print(
                f"Port {port} is taken: stop what uses it, or pick another for {what} with {variable}=PORT"
            )
            return 1
    hass = HomeAssistant(CONFIG, PORT, sys.executable)
    hass.prepare()
    camera = RtspServer({"/demo": DEMO_SCENE})
    camera.port = RTSP_PORT
    camera.start()
    print(f"==> demo camera: {camera.url('/demo')}", flush=True)
    # SIGTERM behaves like Ctrl-C: cleanup happens once, in `finally`, never inside a wait.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        print(
            "==> starting Home Assistant (a first start installs HA's frontend: minutes)",
            flush=True,
        )
        hass.start()
        hass.onboard()
        hass.confirm_http_config()
        entry_id = hass.add_hub(CONFIG / "media" / "pm_dvr")
        result = hass.add_camera(entry_id, "Demo camera", camera.url("/demo"))
        if result["type"] not in ("create_entry", "abort"):
            print(f"Adding the demo camera failed: {result}")
            return 1
        print(
            f"""==> ready: http://localhost:{PORT}  (user {USER}, password {PASSWORD})
    Try first: Settings > Devices & services > pm_dvr > Demo camera shows its live view,
    recording state and motion (the live stream is also at /api/pm_dvr/live/demo-camera);
    Media > pm_dvr has its clips; Developer tools > Actions > pm_dvr.capture_event makes an event.
    Logs: {hass.log_file}   Ctrl-C stops everything.""",
            flush=True,
        )
        assert hass.process is not None
        hass.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        print("\n==> stopping Home Assistant and the demo camera", flush=True)
        hass.stop(timeout=60)
        camera.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

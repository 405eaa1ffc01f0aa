"""The review card in a real browser: Debian's Chromium, driven by Playwright, against a real Home
Assistant (the newest release, as the smoke test runs it) recording a camera.

Checks that the card loads without console errors and draws the timeline, that a tap on a
recorded moment plays video whose time advances, that the live view plays, and that the export
button yields a file that plays. Saves screenshots (light, dark, phone width) to
`--screenshots DIR` when given. Prints `browser: N passed, N failed` last.

Usage: .venv-smoke/bin/python tests/browser/run.py [--screenshots docs/images]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
import io
import json
from pathlib import Path
import shutil
import sys
import tempfile
import time
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import av  # noqa: E402
from playwright.sync_api import ConsoleMessage, Page, sync_playwright  # noqa: E402

from tests.rig.checklist import Checklist  # noqa: E402
from tests.rig.ha import HomeAssistant, free_port  # noqa: E402
from tests.rig.rtsp import RtspServer  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
# As root in a closed network: no sandbox, and none of Chromium's own background connections.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]
CAMERA = "camera.yard"
CARD = "pm-dvr-card"
SCREENSHOTS: dict[str, dict[str, Any]] = {
    "card-dark": {"viewport": {"width": 1280, "height": 900}, "color_scheme": "dark"},
    "card-phone": {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2},
}
DASHBOARD = "pm-dvr-review"


def wait_until(what: str, predicate: Callable[[], object], timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def dashboard(hass: HomeAssistant, card: dict[str, Any]) -> str:
    """A new dashboard in storage mode, as a user adds one, with one view holding the card;
    returns its path."""
    created = hass.ws(
        {
            "type": "lovelace/dashboards/create",
            "url_path": DASHBOARD,
            "title": "Review",
            "mode": "storage",
            "show_in_sidebar": True,
        }
    )
    assert created["success"], created
    saved = hass.ws(
        {
            "type": "lovelace/config/save",
            "url_path": DASHBOARD,
            "config": {"views": [{"title": "Cameras", "path": "cameras", "cards": [card]}]},
        }
    )
    assert saved["success"], saved
    return f"/{DASHBOARD}/cameras"


def logged_in_script(hass: HomeAssistant, origin: str) -> str:
    """Runs before the frontend: the tokens it would keep after a login, and no "remember me"
    dialog."""
    tokens = {
        **hass.tokens,
        "hassUrl": origin,
        "clientId": f"{origin}/",
        "expires": int(time.time() * 1000) + int(hass.tokens["expires_in"]) * 1000,
    }
    return f"window.localStorage.setItem('hassTokens', {json.dumps(json.dumps(tokens))});"


def video_time(page: Page, selector: str) -> float:
    value = page.locator(selector).first.evaluate("v => v.currentTime")
    return float(value)


def advancing(page: Page, selector: str) -> None:
    """The video's time moves on by at least a second."""
    wait_until(f"{selector} to play", lambda: video_time(page, selector) > 0.2, 60)
    first = video_time(page, selector)
    wait_until(f"{selector} to advance", lambda: video_time(page, selector) > first + 1.0, 30)


def plays(data: bytes) -> int:
    """Decoded video frames of an MP4 held in memory."""
    with av.open(io.BytesIO(data)) as inp:
        return sum(1 for _ in inp.decode(video=0))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--screenshots", type=Path)
    args = parser.parse_args()
    camera = RtspServer({"/yard": "synthetic"}).start()
    config = Path(tempfile.mkdtemp(prefix="pm_dvr-browser-"))
    storage = config / "media" / "pm_dvr"
    hass = HomeAssistant(config, free_port(), sys.executable)
    hass.prepare()
    checks = Checklist()
    errors: list[str] = []
    finished = False
    origin = f"http://localhost:{hass.port}"
    try:
        hass.start()
        hass.onboard()
        hass.confirm_http_config()
        entry_id = hass.add_hub(storage)
        hass.add_camera(entry_id, "Yard", camera.url("/yard"))
        clips = storage / "recordings" / "yard"
        wait_until("three clips", lambda: len(list(clips.rglob("*.mp4"))) >= 3, 120)
        hass.call(
            "pm_dvr", "capture_event", {"entity_id": CAMERA, "pre_seconds": 5, "label": "Gate"}
        )
        view = dashboard(hass, {"type": f"custom:{CARD}", "cameras": [CAMERA], "hours": 1})
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            context.add_init_script(logged_in_script(hass, origin))
            page = context.new_page()

            def console(message: ConsoleMessage) -> None:
                if message.type == "error":
                    errors.append(message.text)

            page.on("console", console)
            page.on("pageerror", lambda err: errors.append(f"page error: {err}"))
            page.goto(f"{origin}{view}")
            card = page.locator(CARD)
            checks.check("card shows the timeline", lambda: timeline_drawn(page))
            checks.check(
                "live view plays", lambda: advancing(page, f"{CARD} ha-camera-stream video")
            )
            checks.check("a tap on the timeline plays from there", lambda: tap_plays(page))
            checks.check("export yields a file that plays", lambda: export_plays(page, context))
            checks.check("no console errors", lambda: no_errors(errors))
            if args.screenshots:
                args.screenshots.mkdir(parents=True, exist_ok=True)
                card.screenshot(path=str(args.screenshots / "card-light.png"))
                for name, options in SCREENSHOTS.items():
                    other = browser.new_context(**options)
                    other.add_init_script(logged_in_script(hass, origin))
                    shot = other.new_page()
                    shot.goto(f"{origin}{view}")
                    timeline_drawn(shot)
                    time.sleep(3)  # the live view's first frames
                    shot.locator(CARD).screenshot(path=str(args.screenshots / f"{name}.png"))
                    other.close()
            browser.close()
        finished = True
    finally:
        hass.stop()
        camera.stop()
        if checks.failed or not finished:
            print(f"==> kept for a look: {config}")
        else:
            shutil.rmtree(config, ignore_errors=True)
    print(f"browser: {checks.passed} passed, {len(checks.failed)} failed", flush=True)
    return 1 if checks.failed or not finished else 0


def timeline_drawn(page: Page) -> None:
    recorded = page.locator(f"{CARD} pm-dvr-timeline rect.recording")
    wait_until("recorded spans on the timeline", lambda: recorded.count() > 0, 60)
    box = recorded.first.bounding_box()
    assert box is not None
    assert box["width"] > 0


def tap_plays(page: Page) -> None:
    span = page.locator(f"{CARD} pm-dvr-timeline rect.recording").last
    box = span.bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + box["width"] * 0.3, box["y"] + box["height"] / 2)
    advancing(page, f"{CARD} pm-dvr-camera video")


def export_plays(page: Page, context: Any) -> None:
    page.locator(f"{CARD} button.export").click()
    link = page.locator(f"{CARD} a.download")
    link.wait_for(timeout=60_000)
    href = link.get_attribute("href")
    assert href
    origin = "/".join(page.url.split("/")[:3])
    data = context.request.get(f"{origin}{href}").body()
    frames = plays(data)
    assert frames > 25, frames


def no_errors(errors: list[str]) -> None:
    assert not errors, errors


if __name__ == "__main__":
    sys.exit(main())

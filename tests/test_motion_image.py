"""The Last motion image through HA: once per motion event at its start, once at its end.

A motion event runs from the Motion sensor turning on until it turns off (after its off-delay).
The image's state is when its picture was taken, so each new picture is a state change and, on
HA lines that log image entities, a logbook entry: at most two per event.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
import json
from pathlib import Path
import threading
from typing import Any
from unittest.mock import patch

import cv2
from homeassistant.components.frontend import DATA_EXTRA_MODULE_URL, UrlManager
from homeassistant.components.image import TOKEN_CHANGE_INTERVAL
from homeassistant.components.logbook.const import ALWAYS_CONTINUOUS_DOMAINS
from homeassistant.const import (
    ATTR_ENTITY_ID,
    SERVICE_TURN_OFF,
    SERVICE_TURN_ON,
    STATE_OFF,
    STATE_ON,
)
from homeassistant.core import Event, EventStateChangedData, HomeAssistant, callback
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
import numpy as np
from numpy.typing import NDArray
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
)
from pytest_homeassistant_custom_component.typing import (
    ClientSessionGenerator,
    MockHAClientWebSocket,
    WebSocketGenerator,
)

from custom_components.pm_dvr import coordinator as coordinator_module
from custom_components.pm_dvr.const import (
    CONF_MOTION_OFF_DELAY,
    CONF_MOTION_ZONES,
    CONF_STORAGE_PATH,
    DOMAIN,
)
from custom_components.pm_dvr.coordinator import CameraCoordinator
from custom_components.pm_dvr.core.motion import MotionResult, draw_outlines

from .common import wait_for
from .conftest import camera_subentry
from .rig.rtsp import RtspServer
from .rig.scenes import make_scene

IMAGE, SENSOR = "image.porch_last_motion", "binary_sensor.porch_motion"
OFF_DELAY = 5
# The real detector never reports motion here: the feeding tests hand it their own results.
WHOLE_FRAME_IGNORED = json.dumps([{"mode": "ignore", "points": [[0, 0], [1, 0], [1, 1], [0, 1]]}])
FRAME_H, FRAME_W = 360, 640

type Frame = NDArray[np.uint8]


@pytest.fixture
def mock_recorder_before_hass(recorder_db_url: str) -> None:
    """The recorder's database is prepared before hass (the logbook reads it)."""


async def _setup_logbook(hass: HomeAssistant) -> None:
    """HA's logbook on the test recorder. Its only use of the frontend is registering a panel,
    and the frontend's package is not installed here: that call is left out, and the list of
    extra modules (where pm_dvr registers its card) stands in for the rest."""
    hass.config.components.add("frontend")
    hass.data[DATA_EXTRA_MODULE_URL] = UrlManager(lambda *_: None, [])
    with patch("homeassistant.components.frontend.async_register_built_in_panel"):
        assert await async_setup_component(hass, "logbook", {})
    # Its routes are added before the test clients start (they freeze the router).
    assert await async_setup_component(hass, "websocket_api", {})


async def _logbook(
    hass: HomeAssistant, client: MockHAClientWebSocket, entity_id: str, since: datetime
) -> list[dict[str, Any]]:
    """The logbook's entries of one entity, as the frontend asks for them."""
    await async_wait_recording_done(hass)
    await client.send_json_auto_id(
        {"type": "logbook/get_events", "start_time": since.isoformat(), "entity_ids": [entity_id]}
    )
    msg = await client.receive_json()
    assert msg["success"], msg
    return list(msg["result"])


class Changes:
    """State changes of a camera's Motion sensor and Last motion image, by motion event.

    The sensor and the image change in the same update, in the order of the entities' listeners:
    an image change belongs to the event that is on then (or has just ended), told by the
    coordinator's own Motion state, whichever of the two HA writes first.
    """

    def __init__(self, hass: HomeAssistant, coordinator: CameraCoordinator, slug: str) -> None:
        self.sensor, self.image = f"binary_sensor.{slug}_motion", f"image.{slug}_last_motion"
        self.coordinator = coordinator
        self.sensor_states: list[str] = []
        self.pictures: list[bytes] = []  # shown, one per change of the image's state
        self.events: list[int] = []  # of each picture: the motion event (0, 1, ...)
        self.image_writes = 0  # every write of the image's state, attributes-only ones too
        self.picture_at_motion_on: list[bytes | None] = []
        hass.bus.async_listen("state_changed", self._on_change)

    @callback
    def _on_change(self, event: Event[EventStateChangedData]) -> None:
        entity_id, old, new = (event.data[k] for k in ("entity_id", "old_state", "new_state"))
        if new is None or entity_id not in (self.sensor, self.image):
            return
        if entity_id == self.image:
            self.image_writes += 1
        if old is not None and old.state == new.state:
            return
        ons = self.sensor_states.count(STATE_ON)
        if entity_id == self.sensor:
            self.sensor_states.append(new.state)
            if new.state == STATE_ON:
                self.picture_at_motion_on.append(self.coordinator.motion.image)
            return
        assert self.coordinator.motion.image is not None
        self.pictures.append(self.coordinator.motion.image)
        sensor_on = bool(self.sensor_states) and self.sensor_states[-1] == STATE_ON
        # Motion on, its sensor not written yet: the picture opens the next event.
        starting = self.coordinator.motion.detected and not sensor_on
        self.events.append(ons if starting else ons - 1)

    def per_event(self) -> list[int]:
        """Image changes of each motion event so far."""
        ons = self.sensor_states.count(STATE_ON)
        return [self.events.count(i) for i in range(ons)]


def _decode(jpeg: bytes) -> Frame:
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return np.asarray(image, np.uint8)


def _red_box(image: Frame) -> tuple[int, int, int, int]:
    """The bounding box (x0, y0, x1, y1) of the red outline's pixels."""
    b, g, r = (image[..., i].astype(int) for i in range(3))
    ys, xs = np.nonzero((r > 180) & (g < 80) & (b < 80))
    assert len(xs) > 0
    return int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())


def _shot(level: int, width: float) -> tuple[MotionResult, Frame]:
    """A frame told apart by its gray level, with one box of the given width (half as tall)."""
    return MotionResult(True, ((0.1, 0.1, width, 0.5),), 0.1), np.full(
        (FRAME_H, FRAME_W, 3), level, np.uint8
    )


def _shows(jpeg: bytes, level: int, width: float) -> bool:
    """Whether the picture is ``_shot(level, width)``'s: its gray level, its outline's place."""
    image = _decode(jpeg)
    x0, y0, x1, y1 = _red_box(image)
    expected = (0.1 * FRAME_W, 0.1 * FRAME_H, (0.1 + width) * FRAME_W, 0.6 * FRAME_H)
    return abs(int(np.median(image[330:, 560:])) - level) <= 3 and all(
        abs(got - want) <= 3 for got, want in zip((x0, y0, x1, y1), expected, strict=True)
    )


def _feed(coordinator: CameraCoordinator, shots: list[tuple[MotionResult, Frame]]) -> None:
    """Hand results over as the motion worker does, from a thread of its own.

    The loop waits for the thread, so the results are queued for the loop, not yet handled,
    when this returns: a test can turn Motion off while they are in flight.
    """
    worker = coordinator.motion_worker
    assert worker is not None
    on_result = worker._on_result  # the coordinator's callback
    thread = threading.Thread(target=lambda: [on_result(r, f) for r, f in shots])
    thread.start()
    thread.join()


def _motion_goes_off(hass: HomeAssistant) -> None:
    """The off-delay passes (the timer runs now, before anything queued)."""
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=OFF_DELAY + 1))


@pytest.fixture
def draw_threads(hass: HomeAssistant, monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """For each picture pm_dvr draws: whether it was drawn on the event loop."""
    on_loop: list[bool] = []

    def spy(frame: Frame, result: MotionResult) -> bytes:
        on_loop.append(threading.get_ident() == hass.loop_thread_id)
        return draw_outlines(frame, result)

    monkeypatch.setattr(coordinator_module, "draw_outlines", spy)
    return on_loop


async def _porch(
    hass: HomeAssistant, rtsp_server: RtspServer, storage_path: Path, hub_options: dict[str, Any]
) -> tuple[MockConfigEntry, CameraCoordinator]:
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=str(storage_path),
        data={CONF_STORAGE_PATH: str(storage_path)},
        options=hub_options,
        subentries_data=[
            camera_subentry(
                "Porch",
                rtsp_server.url("/cam2"),
                "porch",
                **{CONF_MOTION_ZONES: WHOLE_FRAME_IGNORED, CONF_MOTION_OFF_DELAY: OFF_DELAY},
            )
        ],
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry, entry.runtime_data.cameras["sub_porch"]


@pytest.mark.usefixtures("recorder_mock")
async def test_first_picture_at_once_best_at_the_end(  # noqa: PLR0917 (fixtures)
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    hass_ws_client: WebSocketGenerator,
    rtsp_server: RtspServer,
    storage_path: Path,
    hub_options: dict[str, Any],
    draw_threads: list[bool],
) -> None:
    """Many analysed frames, two image changes: the first frame at once, the best at the end."""
    await _setup_logbook(hass)
    since = dt_util.utcnow()
    entry, camera = await _porch(hass, rtsp_server, storage_path, hub_options)
    logbook = await hass_ws_client()
    changes = Changes(hass, camera, "porch")
    client = await hass_client()

    # Event 1: twelve frames (and a frame without motion); the fifth outlines the most.
    widths = [0.2, 0.1, 0.3, 0.25, 0.6, 0.35, 0.5, 0.4, 0.2, 0.3, 0.45, 0.1]
    shots = [_shot(20 + 10 * i, w) for i, w in enumerate(widths)]
    _feed(camera, [*shots[:6], (MotionResult(False), shots[0][1]), *shots[6:]])
    await hass.async_block_till_done()
    assert hass.states.get(SENSOR).state == STATE_ON
    assert changes.per_event() == [1]
    first_state = hass.states.get(IMAGE).state
    assert _shows(changes.pictures[-1], 20, 0.2)
    # A notification sent on Motion on gets the picture: it is up with the sensor's change.
    assert changes.picture_at_motion_on == [changes.pictures[0]]
    # One picture drawn so far (the first); the others only weighed.
    assert draw_threads == [False]

    _motion_goes_off(hass)
    await hass.async_block_till_done()
    assert hass.states.get(SENSOR).state == STATE_OFF
    assert changes.per_event() == [2]
    assert _shows(changes.pictures[-1], 60, 0.6)
    assert hass.states.get(IMAGE).state > first_state  # when the best frame was seen
    assert draw_threads == [False, False]  # the best one, drawn in the executor

    response = await client.get(f"/api/image_proxy/{IMAGE}")
    assert response.status == 200
    assert response.content_type == "image/jpeg"
    assert _shows(await response.read(), 60, 0.6)

    # Event 2: its first frame is its best, so it changes the image once.
    _feed(camera, [_shot(200, 0.5), _shot(210, 0.2), _shot(220, 0.4)])
    await hass.async_block_till_done()
    _motion_goes_off(hass)
    await hass.async_block_till_done()
    assert changes.per_event() == [2, 1]
    assert _shows(changes.pictures[-1], 200, 0.5)

    # Event 3, ended by turning detection off: that ends the event as well.
    _feed(camera, [_shot(100, 0.1), _shot(110, 0.4), _shot(120, 0.2)])
    await hass.async_block_till_done()
    await hass.services.async_call(
        "switch",
        SERVICE_TURN_OFF,
        {ATTR_ENTITY_ID: "switch.porch_motion_detection"},
        blocking=True,
    )
    await hass.async_block_till_done()
    assert hass.states.get(SENSOR).state == STATE_OFF
    assert changes.per_event() == [2, 1, 2]
    assert _shows(changes.pictures[-1], 110, 0.4)
    assert not any(draw_threads)
    assert len(draw_threads) == 5
    # Results the worker sends from the packets it still has queued are dropped while
    # detection is off; once it is on again, the next event's first picture is shown at once.
    _feed(camera, [_shot(130, 0.3)])
    await hass.async_block_till_done()
    assert hass.states.get(SENSOR).state == STATE_OFF
    assert changes.per_event() == [2, 1, 2]
    await hass.services.async_call(
        "switch", SERVICE_TURN_ON, {ATTR_ENTITY_ID: "switch.porch_motion_detection"}, blocking=True
    )
    _feed(camera, [_shot(140, 0.2), _shot(150, 0.3)])
    await hass.async_block_till_done()
    assert changes.per_event() == [2, 1, 2, 1]
    assert _shows(changes.pictures[-1], 140, 0.2)
    _motion_goes_off(hass)
    await hass.async_block_till_done()
    assert changes.per_event() == [2, 1, 2, 2]
    assert _shows(changes.pictures[-1], 150, 0.3)

    # HA itself renews the image's access token every few minutes: a write of its attributes,
    # not of its state, so not in the logbook.
    writes = changes.image_writes
    async_fire_time_changed(hass, dt_util.utcnow() + TOKEN_CHANGE_INTERVAL)
    await hass.async_block_till_done()
    assert changes.image_writes > writes
    assert changes.per_event() == [2, 1, 2, 2]

    # The logbook: one entry per image change (HA 2025), or none at all (HA 2026 leaves image
    # entities out of it, like counters).
    image_entries = await _logbook(hass, logbook, IMAGE, since)
    expected = 0 if "image" in ALWAYS_CONTINUOUS_DOMAINS else 7
    assert len(image_entries) == expected
    assert len(await _logbook(hass, logbook, SENSOR, since)) == 8  # 4 x on, off
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_results_in_flight_when_motion_goes_off(
    hass: HomeAssistant,
    rtsp_server: RtspServer,
    storage_path: Path,
    hub_options: dict[str, Any],
    draw_threads: list[bool],
) -> None:
    """Results the worker sent before an event ended start the next one: still two at most."""
    entry, camera = await _porch(hass, rtsp_server, storage_path, hub_options)
    changes = Changes(hass, camera, "porch")
    a, b, c, d, e = (
        _shot(40, 0.2),
        _shot(60, 0.4),
        _shot(80, 0.3),
        _shot(100, 0.5),
        _shot(120, 0.45),
    )

    # Event 1 shows a; b (bigger, handed over undrawn) is in flight when event 1 ends.
    _feed(camera, [a])
    await hass.async_block_till_done()
    _feed(camera, [b])
    _motion_goes_off(hass)
    await hass.async_block_till_done()
    # b starts event 2 without a picture. The worker draws c as the first picture of event 2,
    # but event 2 ends while c is in flight: c starts event 3 and is shown before b, event 2's
    # best, would be drawn, so b is not drawn at all (the newer event's picture stays).
    assert hass.states.get(SENSOR).state == STATE_ON
    _feed(camera, [c])
    _motion_goes_off(hass)
    await hass.async_block_till_done()
    assert _shows(changes.pictures[-1], 80, 0.3)
    # The worker draws d as event 3's first (it did not see c's), the loop takes it as the
    # best candidate; e outlines less. At the end d is shown as it is (already drawn).
    _feed(camera, [d, e])
    await hass.async_block_till_done()
    _motion_goes_off(hass)
    await hass.async_block_till_done()
    assert len(changes.pictures) == 3
    assert all(
        _shows(picture, *shot)
        for picture, shot in zip(changes.pictures, [(40, 0.2), (80, 0.3), (100, 0.5)], strict=True)
    )
    assert changes.per_event() == [1, 0, 2]
    assert draw_threads == [False] * 3  # a, c and d, in the worker's thread

    # Event 4 shows f; g (bigger) is in flight when it ends and starts event 5 without a
    # picture; event 5's first drawn picture h outlines less than g, so g is drawn at the end.
    f, g, h = _shot(140, 0.1), _shot(160, 0.6), _shot(180, 0.2)
    _feed(camera, [f])
    await hass.async_block_till_done()
    _feed(camera, [g])
    _motion_goes_off(hass)
    await hass.async_block_till_done()
    _feed(camera, [h])
    await hass.async_block_till_done()
    assert _shows(changes.pictures[-1], 180, 0.2)
    _motion_goes_off(hass)
    await hass.async_block_till_done()
    assert changes.per_event() == [1, 0, 2, 1, 2]
    assert _shows(changes.pictures[-1], 160, 0.6)
    assert draw_threads == [False] * 6  # and f, h, g (g in the executor)
    assert await hass.config_entries.async_unload(entry.entry_id)


@pytest.fixture
def walk_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RtspServer]:
    """People walking through a garden for 10 s (320x180), played once from the first client."""
    clip = tmp_path_factory.mktemp("motion_image") / "walk.mp4"
    make_scene("object", clip, 320, 180, 15, 10, seed=3)
    server = RtspServer({"/walk": f"file:{clip}"})
    server.start()
    yield server
    server.stop()


@pytest.mark.usefixtures("recorder_mock")
async def test_real_stream_pictures_per_event(
    hass: HomeAssistant,
    hass_ws_client: WebSocketGenerator,
    walk_server: RtspServer,
    storage_path: Path,
    hub_options: dict[str, Any],
) -> None:
    """The real detector on a real stream: each event's pictures are its first and best frame."""
    await _setup_logbook(hass)
    since = dt_util.utcnow()
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=str(storage_path),
        data={CONF_STORAGE_PATH: str(storage_path)},
        options=hub_options,
        subentries_data=[
            camera_subentry("Walk", walk_server.url("/walk"), "walk", **{CONF_MOTION_OFF_DELAY: 1})
        ],
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    camera = entry.runtime_data.cameras["sub_walk"]
    worker = camera.motion_worker
    assert worker is not None
    # What the worker hands over with motion, by event (the detector needs two seconds of
    # frames to learn the scene, so nothing is missed by looking on from here).
    seen: dict[int, list[tuple[MotionResult, Frame]]] = {}
    on_result: Callable[[MotionResult, Frame | None], None] = worker._on_result

    def look(result: MotionResult, image: Frame | None) -> None:
        if result.motion and image is not None:
            event = camera._picture_event  # (as the worker reads it)
            seen.setdefault(event, []).append((result, image))
        on_result(result, image)

    worker._on_result = look
    changes = Changes(hass, camera, "walk")
    await hass.async_block_till_done()

    await wait_for(lambda: worker.stats.analysed_frames >= 45, timeout=30)  # the clip's 10 s
    await wait_for(lambda: hass.states.get("binary_sensor.walk_motion").state == STATE_OFF, 10)
    await hass.async_block_till_done()
    counts = changes.per_event()
    assert counts
    assert all(1 <= n <= 2 for n in counts), counts
    frames = sum(len(v) for v in seen.values())
    assert frames > 2 * len(counts)  # many analysed frames with motion, few pictures
    # The last event's picture is its best frame: the first one that outlines the most.
    last = seen[max(seen)]
    best = max(last, key=lambda shot: shot[0].area)
    assert changes.pictures[-1] == draw_outlines(best[1], best[0])
    # Each event's first picture came with Motion on.
    assert all(picture is not None for picture in changes.picture_at_motion_on)
    logbook = await hass_ws_client()
    image_entries = await _logbook(hass, logbook, "image.walk_last_motion", since)
    assert len(image_entries) == (0 if "image" in ALWAYS_CONTINUOUS_DOMAINS else sum(counts))
    assert await hass.config_entries.async_unload(entry.entry_id)

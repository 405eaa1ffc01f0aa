"""MQTT triggers through Home Assistant's own MQTT integration (optional).

Every message on the hub's `mqtt_topic` captures an event (payloads: core/payload.py), and every
event change is published as JSON to `<mqtt_topic>/events`. Without the MQTT integration, or with
the topic empty, nothing here runs and pm_dvr works as before. A bad message is logged in one line
with the reason (never the payload) and ignored: nothing a publisher sends can raise here.
"""

from __future__ import annotations

import json
import logging

from homeassistant.components import mqtt
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.dispatcher import async_dispatcher_connect
import voluptuous as vol

from .const import CONF_MQTT_TOPIC, DEFAULT_MQTT_TOPIC, DOMAIN, LOGGER, signal_event
from .coordinator import CameraCoordinator
from .core.capture import EventInfo
from .core.errors import InvalidPayloadError, PmDvrError
from .core.payload import CaptureRequest, parse_capture_payload
from .data import PmDvrConfigEntry
from .events import (
    async_start_persistent,
    async_stop_persistent,
    capture_manager,
    event_window,
    is_recording,
)

EVENTS_SUBTOPIC = "events"
QOS = 1


@callback
def async_setup_mqtt(hass: HomeAssistant, entry: PmDvrConfigEntry) -> None:
    """Start listening if a topic is set; waiting for MQTT must not hold up the hub's setup."""
    topic = str(entry.options.get(CONF_MQTT_TOPIC) or "").strip()
    if not topic:
        return
    try:
        mqtt.valid_publish_topic(topic)
    except vol.Invalid:
        LOGGER.warning(
            "MQTT trigger topic %r is not a plain topic (no + or # wildcards): MQTT triggers are off",
            topic,
        )
        return
    trigger = entry.runtime_data.mqtt = MqttTrigger(hass, entry, topic)
    entry.async_create_background_task(hass, trigger.async_start(), f"{DOMAIN} mqtt")


class MqttTrigger:
    """The hub's subscription to its trigger topic and its publisher of event changes."""

    def __init__(self, hass: HomeAssistant, entry: PmDvrConfigEntry, topic: str) -> None:
        self.hass = hass
        self.entry = entry
        self.topic = topic
        self.events_topic = f"{topic}/{EVENTS_SUBTOPIC}"
        self.subscribed = False

    async def async_start(self) -> None:
        """Subscribe once HA's MQTT client is available; unload unsubscribes."""
        if not await mqtt.async_wait_for_mqtt_client(self.hass):
            # The default topic is on for every hub: without MQTT that is no news to the user.
            LOGGER.log(
                logging.DEBUG if self.topic == DEFAULT_MQTT_TOPIC else logging.INFO,
                "MQTT trigger topic %s is set, but the MQTT integration is not set up: "
                "MQTT triggers are off",
                self.topic,
            )
            return
        self.entry.async_on_unload(
            await mqtt.async_subscribe(
                self.hass, self.topic, self._async_message, qos=QOS, encoding=None
            )
        )
        self.entry.async_on_unload(
            async_dispatcher_connect(
                self.hass, signal_event(self.entry.entry_id), self._async_event_changed
            )
        )
        self.subscribed = True
        LOGGER.debug("Listening for capture messages on %s", self.topic)

    @callback
    def _async_message(self, message: mqtt.ReceiveMessage) -> None:
        """Parse at once (cheap); the capture itself runs as a task of the hub."""
        cameras = {camera.slug: camera for camera in self.entry.runtime_data.cameras.values()}
        names = {camera.title: camera.slug for camera in cameras.values()}
        try:
            request = parse_capture_payload(message.payload, names)
        except PmDvrError as err:
            self._ignore(err)
            return
        selected = [cameras[slug] for slug in request.cameras]
        if not selected:
            self._ignore(InvalidPayloadError("the hub has no cameras"))
            return
        self.entry.async_create_background_task(
            self.hass, self._async_run(request, selected), f"{DOMAIN} mqtt capture"
        )

    def _ignore(self, err: PmDvrError) -> None:
        reason = err.reason if isinstance(err, InvalidPayloadError) else str(err)
        LOGGER.warning("Ignoring the message on %s: %s", self.topic, reason)

    async def _async_run(self, request: CaptureRequest, cameras: list[CameraCoordinator]) -> None:
        try:
            if request.persistent is False:
                await async_stop_persistent(self.hass, self.entry, cameras, request.post_seconds)
                return
            recording = [camera for camera in cameras if is_recording(camera)]
            for camera in cameras:
                if camera not in recording:
                    LOGGER.warning(
                        "Message on %s: recording is off for %s, not captured",
                        self.topic,
                        camera.title,
                    )
            if not recording:
                return
            if request.persistent:
                await async_start_persistent(
                    self.entry, recording, request.label, "mqtt", request.pre_seconds
                )
                return
            pre, post = event_window(recording)
            await capture_manager(self.entry).capture(
                [camera.slug for camera in recording],
                pre if request.pre_seconds is None else request.pre_seconds,
                post if request.post_seconds is None else request.post_seconds,
                request.label,
                trigger="mqtt",
            )
        except PmDvrError as err:
            LOGGER.warning("Message on %s not captured: %s", self.topic, err)

    @callback
    def _async_event_changed(self, info: EventInfo) -> None:
        self.entry.async_create_background_task(
            self.hass, self._async_publish(info), f"{DOMAIN} mqtt publish"
        )

    async def _async_publish(self, info: EventInfo) -> None:
        try:
            await mqtt.async_publish(
                self.hass, self.events_topic, json.dumps(info.as_dict()), qos=QOS
            )
        except HomeAssistantError as err:
            LOGGER.debug("Event %s not published to %s: %s", info.event_id, self.events_topic, err)

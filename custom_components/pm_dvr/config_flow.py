"""Config flow: a hub per storage location; cameras as subentries, tested before they are saved."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from homeassistant.config_entries import (
    ConfigEntry,
    ConfigFlow,
    ConfigFlowResult,
    ConfigSubentryFlow,
    OptionsFlow,
    SubentryFlowResult,
)
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import selector
import voluptuous as vol

from .const import (
    AUDIO_AUTO,
    AUDIO_MODES,
    CONF_AUDIO,
    CONF_DETECT_STREAM_URL,
    CONF_MAX_AGE_DAYS,
    CONF_MAX_EVENT_AGE_DAYS,
    CONF_MAX_EVENT_STORAGE_GB,
    CONF_MAX_STORAGE_GB,
    CONF_MIN_FREE_GB,
    CONF_MOTION,
    CONF_MOTION_EVENTS,
    CONF_MOTION_MIN_SIZE,
    CONF_MOTION_OFF_DELAY,
    CONF_MOTION_THRESHOLD,
    CONF_MOTION_ZONES,
    CONF_MQTT_TOPIC,
    CONF_NAME,
    CONF_POST_SECONDS,
    CONF_PRE_SECONDS,
    CONF_RECORD,
    CONF_SEGMENT_SECONDS,
    CONF_SLUG,
    CONF_STORAGE_PATH,
    CONF_STREAM_INFO,
    CONF_STREAM_URL,
    DEFAULT_MAX_AGE_DAYS,
    DEFAULT_MAX_EVENT_AGE_DAYS,
    DEFAULT_MOTION_OFF_DELAY,
    DEFAULT_MQTT_TOPIC,
    DEFAULT_POST_SECONDS,
    DEFAULT_PRE_SECONDS,
    DEFAULT_SEGMENT_SECONDS,
    DEFAULT_STORAGE_FOLDER,
    DOMAIN,
    ENTRY_MINOR_VERSION,
    ENTRY_VERSION,
    EVENT_QUOTA_SHARE,
    MAX_MOTION_MIN_SIZE,
    MAX_MOTION_OFF_DELAY,
    MAX_SEGMENT_SECONDS,
    MAX_WINDOW_SECONDS,
    MIN_SEGMENT_SECONDS,
    QUOTA_SHARE_OF_FREE,
    SUBENTRY_CAMERA,
    SUBENTRY_TARGET,
)
from .core.errors import PmDvrError, StorageError
from .core.layout import ensure_storage, free_bytes, slugify
from .core.motion import MotionConfig
from .core.motion_sink import parse_zones
from .core.probe import probe_stream
from .core.urls import MASK, mask_url, strip_credentials
from .retention import default_event_quota_gb, event_quota_gb
from .sync_flow import TargetReauthFlow, TargetSubentryFlow

WINDOW_SELECTOR = selector.NumberSelector(
    selector.NumberSelectorConfig(
        min=0,
        max=MAX_WINDOW_SECONDS,
        step=1,
        unit_of_measurement="s",
        mode=selector.NumberSelectorMode.BOX,
    )
)


def default_storage_path(hass: HomeAssistant) -> str:
    """`<first media dir>/pm_dvr`, where HA's media browser already looks."""
    media = next(iter(hass.config.media_dirs.values()), hass.config.path("media"))
    return str(Path(media) / DEFAULT_STORAGE_FOLDER)


async def _async_validate_storage(hass: HomeAssistant, raw_path: str) -> tuple[str, str | None]:
    """Normalise the path and return (path, error key or None)."""
    path = Path(raw_path.strip())
    if not path.is_absolute():
        return str(path), "storage_not_absolute"
    # is_allowed_path resolves the path on disk: not on the event loop.
    if not await hass.async_add_executor_job(hass.config.is_allowed_path, str(path)):
        return str(path), "storage_not_allowed"
    try:
        await hass.async_add_executor_job(ensure_storage, path)
    except StorageError:
        return str(path), "storage_not_writable"
    return str(path), None


def _hub_options_schema(defaults: dict[str, Any]) -> vol.Schema:
    return vol.Schema(
        {
            vol.Required(
                CONF_SEGMENT_SECONDS, default=defaults[CONF_SEGMENT_SECONDS]
            ): selector.NumberSelector(
                selector.NumberSelectorConfig(
                    min=MIN_SEGMENT_SECONDS,
                    max=MAX_SEGMENT_SECONDS,
                    step=1,
                    unit_of_measurement="s",
                    mode=selector.NumberSelectorMode.BOX,
                )
            ),
            vol.Required(
                CONF_MAX_STORAGE_GB, default=defaults[CONF_MAX_STORAGE_GB]
            ): selector.NumberSelector(
                selector.NumberSelectorConfig(
                    min=0.1,
                    step=0.1,
                    unit_of_measurement="GB",
                    mode=selector.NumberSelectorMode.BOX,
                )
            ),
            vol.Required(
                CONF_MAX_AGE_DAYS, default=defaults[CONF_MAX_AGE_DAYS]
            ): selector.NumberSelector(
                selector.NumberSelectorConfig(
                    min=0,
                    max=3650,
                    step=1,
                    unit_of_measurement="d",
                    mode=selector.NumberSelectorMode.BOX,
                )
            ),
            **_retention_options_schema(defaults),
            vol.Optional(
                CONF_MQTT_TOPIC, description={"suggested_value": defaults[CONF_MQTT_TOPIC]}
            ): selector.TextSelector(),
        }
    )


def _gb_selector(minimum: float) -> selector.NumberSelector:
    return selector.NumberSelector(
        selector.NumberSelectorConfig(
            min=minimum, step=0.1, unit_of_measurement="GB", mode=selector.NumberSelectorMode.BOX
        )
    )


def _retention_options_schema(defaults: dict[str, Any]) -> dict[vol.Marker, Any]:
    """Event quota (proposed: its share of the storage quota) and age, and the free-space floor
    (empty: automatic)."""
    return {
        vol.Optional(
            CONF_MAX_EVENT_STORAGE_GB,
            description={"suggested_value": event_quota_gb(defaults)},
        ): _gb_selector(0),
        vol.Required(
            CONF_MAX_EVENT_AGE_DAYS,
            default=defaults.get(CONF_MAX_EVENT_AGE_DAYS, DEFAULT_MAX_EVENT_AGE_DAYS),
        ): selector.NumberSelector(
            selector.NumberSelectorConfig(
                min=0,
                max=3650,
                step=1,
                unit_of_measurement="d",
                mode=selector.NumberSelectorMode.BOX,
            )
        ),
        vol.Optional(
            CONF_MIN_FREE_GB, description={"suggested_value": defaults.get(CONF_MIN_FREE_GB)}
        ): _gb_selector(0),
    }


def _clean_event_quota(user_input: dict[str, Any], current: dict[str, Any]) -> float | None:
    """The event quota to store; None (automatic: its share of the storage quota) when left
    empty, or when still automatic and sent back as proposed (it then follows a new quota)."""
    value = user_input.get(CONF_MAX_EVENT_STORAGE_GB)
    if value is None:
        return None
    value = round(float(value), 1)
    automatic = current.get(CONF_MAX_EVENT_STORAGE_GB) is None
    proposed = default_event_quota_gb(float(current.get(CONF_MAX_STORAGE_GB, 0)))
    return None if automatic and value == proposed else value


def _clean_retention_options(user_input: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    min_free = user_input.get(CONF_MIN_FREE_GB)
    return {
        CONF_MAX_EVENT_STORAGE_GB: _clean_event_quota(user_input, current),
        CONF_MAX_EVENT_AGE_DAYS: int(user_input[CONF_MAX_EVENT_AGE_DAYS]),
        # None (the field left empty) is the automatic floor, and replaces a value set before.
        CONF_MIN_FREE_GB: None if min_free is None else round(float(min_free), 1),
    }


def _clean_hub_options(user_input: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    return {
        CONF_SEGMENT_SECONDS: int(user_input[CONF_SEGMENT_SECONDS]),
        CONF_MAX_STORAGE_GB: round(float(user_input[CONF_MAX_STORAGE_GB]), 1),
        CONF_MAX_AGE_DAYS: int(user_input[CONF_MAX_AGE_DAYS]),
        CONF_MQTT_TOPIC: (user_input.get(CONF_MQTT_TOPIC) or "").strip(),
        **_clean_retention_options(user_input, current),
    }


class PmDvrConfigFlow(TargetReauthFlow, ConfigFlow, domain=DOMAIN):
    """The hub: where footage is stored (and the reauth of its sync targets)."""

    VERSION = ENTRY_VERSION
    MINOR_VERSION = ENTRY_MINOR_VERSION

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Ask for the storage path and create the hub with sensible options."""
        errors: dict[str, str] = {}
        if user_input is not None:
            path, error = await _async_validate_storage(self.hass, user_input[CONF_STORAGE_PATH])
            if error is None:
                await self.async_set_unique_id(path)
                self._abort_if_unique_id_configured()
                free = await self.hass.async_add_executor_job(free_bytes, Path(path))
                # Recordings and events (automatic: a share of this) take the share together.
                share = QUOTA_SHARE_OF_FREE / (1 + EVENT_QUOTA_SHARE)
                quota = max(0.1, round(free * share / 1e9, 1))
                return self.async_create_entry(
                    title=path,
                    data={CONF_STORAGE_PATH: path},
                    options={
                        CONF_SEGMENT_SECONDS: DEFAULT_SEGMENT_SECONDS,
                        CONF_MAX_STORAGE_GB: quota,
                        CONF_MAX_AGE_DAYS: DEFAULT_MAX_AGE_DAYS,
                        CONF_MQTT_TOPIC: DEFAULT_MQTT_TOPIC,
                    },
                )
            errors[CONF_STORAGE_PATH] = error
        default = (user_input or {}).get(CONF_STORAGE_PATH) or default_storage_path(self.hass)
        return self.async_show_form(
            step_id="user",
            data_schema=vol.Schema({vol.Required(CONF_STORAGE_PATH, default=default): str}),
            errors=errors,
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Move the hub to another storage path (the update listener reloads it)."""
        entry = self._get_reconfigure_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            path, error = await _async_validate_storage(self.hass, user_input[CONF_STORAGE_PATH])
            if error is None:
                await self.async_set_unique_id(path)
                if path != entry.unique_id:
                    self._abort_if_unique_id_configured()
                self.hass.config_entries.async_update_entry(
                    entry, title=path, unique_id=path, data={**entry.data, CONF_STORAGE_PATH: path}
                )
                return self.async_abort(reason="reconfigure_successful")
            errors[CONF_STORAGE_PATH] = error
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=vol.Schema(
                {vol.Required(CONF_STORAGE_PATH, default=entry.data[CONF_STORAGE_PATH]): str}
            ),
            errors=errors,
        )

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: ConfigEntry) -> PmDvrOptionsFlow:
        """Hub options."""
        return PmDvrOptionsFlow()

    @classmethod
    @callback
    def async_get_supported_subentry_types(
        cls, config_entry: ConfigEntry
    ) -> dict[str, type[ConfigSubentryFlow]]:
        """Cameras and sync targets are subentries of the hub."""
        return {SUBENTRY_CAMERA: CameraSubentryFlow, SUBENTRY_TARGET: TargetSubentryFlow}


class PmDvrOptionsFlow(OptionsFlow):
    """Clip length, quotas, age limits, free-space floor and MQTT topic."""

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """One form with every hub option."""
        if user_input is not None:
            current = dict(self.config_entry.options)
            return self.async_create_entry(
                data={**current, **_clean_hub_options(user_input, current)}
            )
        return self.async_show_form(
            step_id="init", data_schema=_hub_options_schema(dict(self.config_entry.options))
        )


def unmask(submitted: str, stored: str | None) -> str:
    """The stored URL when the form sent back exactly what it showed (its secrets as `***`)."""
    submitted = submitted.strip()
    if stored is None or MASK not in submitted:
        return submitted
    shown = mask_url(stored)
    return stored if shown != stored and shown == submitted else submitted


def _camera_schema(defaults: dict[str, Any]) -> vol.Schema:
    return vol.Schema(
        {
            vol.Required(CONF_NAME, default=defaults.get(CONF_NAME, "")): str,
            vol.Required(CONF_STREAM_URL, default=defaults.get(CONF_STREAM_URL, "")): str,
            vol.Optional(
                CONF_DETECT_STREAM_URL,
                description={"suggested_value": defaults.get(CONF_DETECT_STREAM_URL)},
            ): str,
            vol.Required(CONF_RECORD, default=defaults.get(CONF_RECORD, True)): bool,
            vol.Required(CONF_AUDIO, default=defaults.get(CONF_AUDIO, AUDIO_AUTO)): (
                selector.SelectSelector(
                    selector.SelectSelectorConfig(options=AUDIO_MODES, translation_key=CONF_AUDIO)
                )
            ),
            vol.Required(
                CONF_PRE_SECONDS, default=defaults.get(CONF_PRE_SECONDS, DEFAULT_PRE_SECONDS)
            ): WINDOW_SELECTOR,
            vol.Required(
                CONF_POST_SECONDS, default=defaults.get(CONF_POST_SECONDS, DEFAULT_POST_SECONDS)
            ): WINDOW_SELECTOR,
            vol.Required(CONF_MOTION, default=defaults.get(CONF_MOTION, True)): bool,
            vol.Required(
                CONF_MOTION_THRESHOLD,
                default=defaults.get(CONF_MOTION_THRESHOLD, MOTION_DEFAULTS.threshold),
            ): selector.NumberSelector(
                selector.NumberSelectorConfig(
                    min=1, max=255, step=1, mode=selector.NumberSelectorMode.SLIDER
                )
            ),
            vol.Required(
                CONF_MOTION_MIN_SIZE,
                default=defaults.get(CONF_MOTION_MIN_SIZE, MOTION_DEFAULTS.min_area_percent),
            ): selector.NumberSelector(
                selector.NumberSelectorConfig(
                    min=0,
                    max=MAX_MOTION_MIN_SIZE,
                    step=0.01,
                    unit_of_measurement="%",
                    mode=selector.NumberSelectorMode.BOX,
                )
            ),
            vol.Required(
                CONF_MOTION_OFF_DELAY,
                default=defaults.get(CONF_MOTION_OFF_DELAY, DEFAULT_MOTION_OFF_DELAY),
            ): selector.NumberSelector(
                selector.NumberSelectorConfig(
                    min=0,
                    max=MAX_MOTION_OFF_DELAY,
                    step=1,
                    unit_of_measurement="s",
                    mode=selector.NumberSelectorMode.BOX,
                )
            ),
            vol.Optional(
                CONF_MOTION_ZONES, description={"suggested_value": defaults.get(CONF_MOTION_ZONES)}
            ): selector.TextSelector(selector.TextSelectorConfig(multiline=True)),
            vol.Required(CONF_MOTION_EVENTS, default=defaults.get(CONF_MOTION_EVENTS, False)): bool,
        }
    )


MOTION_DEFAULTS = MotionConfig()


def _clean_motion(camera: dict[str, Any]) -> str | None:
    """Normalise the motion settings in place; the zones' error key, if they are invalid."""
    camera[CONF_MOTION_THRESHOLD] = int(camera[CONF_MOTION_THRESHOLD])
    camera[CONF_MOTION_MIN_SIZE] = round(float(camera[CONF_MOTION_MIN_SIZE]), 3)
    camera[CONF_MOTION_OFF_DELAY] = int(camera[CONF_MOTION_OFF_DELAY])
    zones = (camera.get(CONF_MOTION_ZONES) or "").strip()
    camera[CONF_MOTION_ZONES] = zones or None
    try:
        parse_zones(zones)
    except (TypeError, ValueError):
        return "invalid_zones"
    return None


class CameraSubentryFlow(ConfigSubentryFlow):
    """Add or change a camera; the stream is tested before anything is saved."""

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        """Add a camera."""
        return await self._async_camera_form("user", user_input, None)

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Change a camera."""
        return await self._async_camera_form(
            "reconfigure", user_input, dict(self._get_reconfigure_subentry().data)
        )

    async def _async_camera_form(
        self, step_id: str, user_input: dict[str, Any] | None, current: dict[str, Any] | None
    ) -> SubentryFlowResult:
        errors: dict[str, str] = {}
        if user_input is not None:
            camera = dict(user_input)
            camera[CONF_NAME] = camera[CONF_NAME].strip()
            camera[CONF_PRE_SECONDS] = int(camera[CONF_PRE_SECONDS])
            camera[CONF_POST_SECONDS] = int(camera[CONF_POST_SECONDS])
            camera[CONF_STREAM_URL] = unmask(
                camera[CONF_STREAM_URL], current[CONF_STREAM_URL] if current else None
            )
            detect = unmask(
                camera.get(CONF_DETECT_STREAM_URL) or "",
                current.get(CONF_DETECT_STREAM_URL) if current else None,
            )
            camera[CONF_DETECT_STREAM_URL] = detect or None
            if self._is_duplicate(camera[CONF_STREAM_URL]):
                return self.async_abort(reason="already_configured")
            if not camera[CONF_NAME]:
                errors = {CONF_NAME: "name_required"}
            elif zones_error := _clean_motion(camera):
                errors = {CONF_MOTION_ZONES: zones_error}
            else:
                errors = await self._async_test(camera)
            if not errors:
                return self._save(camera, current)
            defaults = {
                **camera,
                CONF_STREAM_URL: mask_url(camera[CONF_STREAM_URL]),
                CONF_DETECT_STREAM_URL: detect and mask_url(detect),
            }
        else:
            defaults = {
                **(current or {}),
                CONF_STREAM_URL: mask_url((current or {}).get(CONF_STREAM_URL, "")),
            }
            if current and current.get(CONF_DETECT_STREAM_URL):
                defaults[CONF_DETECT_STREAM_URL] = mask_url(current[CONF_DETECT_STREAM_URL])
        return self.async_show_form(
            step_id=step_id, data_schema=_camera_schema(defaults), errors=errors
        )

    def _is_duplicate(self, url: str) -> bool:
        own = self._get_reconfigure_subentry().subentry_id if self.source == "reconfigure" else None
        key = strip_credentials(url)
        return any(
            subentry.subentry_type == SUBENTRY_CAMERA
            and subentry.subentry_id != own
            and strip_credentials(subentry.data[CONF_STREAM_URL]) == key
            for subentry in self._get_entry().subentries.values()
        )

    async def _async_test(self, camera: dict[str, Any]) -> dict[str, str]:
        """Open each stream with PyAV in the executor and read a keyframe."""
        for field in (CONF_STREAM_URL, CONF_DETECT_STREAM_URL):
            if not camera.get(field):
                continue
            try:
                info = await self.hass.async_add_executor_job(probe_stream, camera[field])
            except PmDvrError as err:
                return {field: err.translation_key}
            if field == CONF_STREAM_URL:
                camera[CONF_STREAM_INFO] = info.as_dict()
        return {}

    def _save(self, camera: dict[str, Any], current: dict[str, Any] | None) -> SubentryFlowResult:
        unique_id = strip_credentials(camera[CONF_STREAM_URL])
        if current is not None:
            camera[CONF_SLUG] = current[CONF_SLUG]
            return self.async_update_and_abort(
                self._get_entry(),
                self._get_reconfigure_subentry(),
                title=camera[CONF_NAME],
                unique_id=unique_id,
                data=camera,
            )
        camera[CONF_SLUG] = self._unique_slug(camera[CONF_NAME])
        return self.async_create_entry(title=camera[CONF_NAME], data=camera, unique_id=unique_id)

    def _unique_slug(self, name: str) -> str:
        """A folder name for the camera, fixed for its life (renaming keeps its footage)."""
        base = slugify(name) or "camera"
        taken = {
            subentry.data.get(CONF_SLUG)
            for subentry in self._get_entry().subentries.values()
            if subentry.subentry_type == SUBENTRY_CAMERA
        }
        slug, n = base, 1
        while slug in taken:
            n += 1
            slug = f"{base}-{n}"
        return slug

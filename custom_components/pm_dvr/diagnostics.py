"""Diagnostics: what a maintainer needs to debug a hub, with every secret removed.

Each section is one function in SECTIONS (adding one is one line); the whole document then goes
through `scrub`, which redacts secret keys anywhere (also in sections added later), credentials in
URLs (userinfo, secret query and path parameters) and error texts, and Azure connection strings,
account keys and SAS tokens in any string.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict
import re
from typing import Any, Final

from homeassistant.components.diagnostics import REDACTED, async_redact_data
from homeassistant.core import HomeAssistant

from .const import TARGET_SECRET_KEYS
from .core.layout import free_bytes
from .core.media import EventCatalog
from .core.urls import SECRET_PARAMS, mask_url
from .data import PmDvrConfigEntry

# Keys whose value is a secret wherever they appear (camera, hub or sync target data).
SECRET_KEY: Final = re.compile(
    r"pass|secret|token|key|sas|sig|credential|connection|auth|cookie|bearer", re.IGNORECASE
)
_URL: Final = re.compile(r"[a-z][a-z0-9+.-]*://[^\s\"'<>]+", re.IGNORECASE)
_URL_USERINFO: Final = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/\s@]+@", re.IGNORECASE)
# `password=...` and the like outside a URL too (`access_token=`: the name may end a longer one).
_SECRET_PARAM: Final = re.compile(
    rf"(?<![A-Za-z0-9])(?P<name>{'|'.join(sorted(SECRET_PARAMS, key=len, reverse=True))})="
    r"(?P<value>[^&\s\"'#]+)",
    re.IGNORECASE,
)
_AZURE_SECRET: Final = re.compile(
    r"(?P<name>AccountKey|SharedAccessSignature|SharedAccessKey|sig)=(?P<value>[^;&\s\"']+)",
    re.IGNORECASE,
)
_LONG_BASE64: Final = re.compile(r"(?<![\w/.-])[A-Za-z0-9+/]{40,}={0,2}")
LATEST_EVENTS: Final = 10
# The names pm_dvr and its sync targets use for secrets (SECRET_KEY also catches others).
TO_REDACT: Final = {
    "password",
    "account_key",
    "connection_string",
    "sas_token",
    "sas_url",
    *TARGET_SECRET_KEYS,
}

type Section = Callable[[HomeAssistant, PmDvrConfigEntry], Awaitable[Any]]


def scrub_text(text: str) -> str:
    """A string with URL credentials, Azure keys/SAS signatures and key-like blobs removed."""
    text = _URL.sub(lambda m: mask_url(m[0], REDACTED), text)
    text = _URL_USERINFO.sub(lambda m: f"{m['scheme']}{REDACTED}@", text)
    text = _SECRET_PARAM.sub(lambda m: f"{m['name']}={REDACTED}", text)
    text = _AZURE_SECRET.sub(lambda m: f"{m['name']}={REDACTED}", text)
    return _LONG_BASE64.sub(_key_like, text)


def _key_like(match: re.Match[str]) -> str:
    """A long base64 run with digits and both cases is a key; a long path or word is not."""
    blob = match[0]
    if (
        any(c.isdigit() for c in blob)
        and any(c.isupper() for c in blob)
        and any(c.islower() for c in blob)
    ):
        return REDACTED
    return blob


def scrub(value: Any) -> Any:
    """Redact secrets in a JSON-like document: by key name, then inside every string."""
    if isinstance(value, Mapping):
        return {
            key: REDACTED
            if isinstance(key, str) and SECRET_KEY.search(key) and value[key] not in (None, "")
            else scrub(value[key])
            for key in value
        }
    if isinstance(value, list | tuple):
        return [scrub(item) for item in value]
    if isinstance(value, str):
        return scrub_text(value)
    return value


async def _entry(hass: HomeAssistant, entry: PmDvrConfigEntry) -> dict[str, Any]:
    return {
        "title": entry.title,
        "data": dict(entry.data),
        "options": dict(entry.options),
        "subentries": [
            {
                "subentry_type": subentry.subentry_type,
                "title": subentry.title,
                "data": dict(subentry.data),  # scrubbed with the rest: URLs, keys, SAS
            }
            for subentry in entry.subentries.values()
        ],
    }


async def _cameras(hass: HomeAssistant, entry: PmDvrConfigEntry) -> dict[str, Any]:
    data = entry.runtime_data
    cameras: dict[str, Any] = {}
    for coordinator in data.cameras.values():
        status = coordinator.data
        stats = coordinator.session.stats
        recorder = coordinator.recorder
        cameras[coordinator.slug] = {
            "title": coordinator.title,
            "session": {
                "state": status.state.value,
                "connects": stats.connects,
                "disconnects": stats.disconnects,
                "last_error": stats.last_error,
            },
            "stream": {
                **(status.info.as_dict() if status.info else {}),
                "measured_fps": status.fps,
                "bitrate_kbps": status.bitrate_kbps,
            },
            "recording": None
            if recorder is None
            else {
                "state": status.recording.value if status.recording else None,
                "enabled": status.recording_enabled,
                "clips_written": status.clips,
                "dropped_packets": status.dropped_packets,
                "repaired_packets": recorder.stats.repaired_packets,
                "gaps": recorder.stats.gaps,
                "gap_seconds": round(recorder.stats.gap_seconds, 1),
                "errors": recorder.stats.errors,
                "last_error": recorder.stats.last_error,
            },
            "live": {
                "viewers": coordinator.live.viewers,
                "served": coordinator.live.served,
                "sub_stream_viewers": (
                    coordinator.detect_live.viewers if coordinator.detect_live else None
                ),
            },
            "motion": {
                "configured": coordinator.motion_worker is not None,
                "enabled": status.motion_enabled,
                "sub_stream": coordinator.detect_session is not None,
                "detected": coordinator.motion.detected,
            },
            "index": {
                "clips": data.index.count(coordinator.slug),
                "bytes": data.index.total_size(coordinator.slug),
            },
        }
    return cameras


async def _storage(hass: HomeAssistant, entry: PmDvrConfigEntry) -> dict[str, Any]:
    data = entry.runtime_data
    try:
        free: int | None = await hass.async_add_executor_job(free_bytes, data.storage)
    except OSError:
        free = None
    return {
        "path": str(data.storage),
        "free_bytes": free,
        "index": {
            "cameras": sorted(data.index.cameras()),
            "clips": data.index.count(),
            "bytes": data.index.total_size(),
            "oldest": data.index.oldest_start(),
        },
    }


async def _events(hass: HomeAssistant, entry: PmDvrConfigEntry) -> dict[str, Any]:
    data = entry.runtime_data
    catalog = EventCatalog(data.storage)

    def latest() -> tuple[int, list[dict[str, Any]]]:
        ids = catalog.ids()
        summaries = [catalog.summary(event_id) for event_id in ids[:LATEST_EVENTS]]
        return len(ids), [
            {
                "event_id": s.event_id,
                "label": s.label,
                "trigger": s.trigger,
                "cameras": list(s.cameras),
                "state": s.state,
                "clips": {camera: len(names) for camera, names in s.clips.items()},
            }
            for s in summaries
            if s is not None
        ]

    count, events = await hass.async_add_executor_job(latest)
    capture = data.capture
    return {
        "stored": count,
        "latest": events,
        "in_progress": [] if capture is None else [e.as_dict() for e in capture.active_events()],
        "persistent_cameras": [] if capture is None else capture.persistent_cameras(),
    }


async def _sync(hass: HomeAssistant, entry: PmDvrConfigEntry) -> dict[str, Any] | None:
    """The upload queue and each target's health (None when the hub has no sync)."""
    sync = entry.runtime_data.sync
    if sync is None:
        return None
    status = sync.data
    return {
        "queue_length": status.queue_length,
        "last_upload": status.last_upload.isoformat() if status.last_upload else None,
        "targets": {
            sync.target_title(target_id): {
                "ok": target.ok,
                "reason": target.reason,
                "message": target.message,
                "held": target.held,
                "failed_uploads": sync.failed_count(target_id),
            }
            for target_id, target in status.targets.items()
        },
    }


async def _retention(hass: HomeAssistant, entry: PmDvrConfigEntry) -> dict[str, Any] | None:
    """Limits in force, the accounting and the last run (None before retention has started)."""
    manager = entry.runtime_data.retention
    if manager is None:
        return None
    return {
        "config": asdict(manager.retention.config),
        "runs": manager.runs,
        "usage": None if manager.usage is None else asdict(manager.usage),
        "last_result": None if manager.last_result is None else asdict(manager.last_result),
    }


SECTIONS: dict[str, Section] = {
    "entry": _entry,
    "cameras": _cameras,
    "storage": _storage,
    "events": _events,
    "retention": _retention,
    "sync": _sync,
}


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: PmDvrConfigEntry
) -> dict[str, Any]:
    """Every section, then scrubbed of secrets as a whole."""
    document = {name: await section(hass, entry) for name, section in SECTIONS.items()}
    return dict(scrub(async_redact_data(document, TO_REDACT)))

"""Parse MQTT capture commands, so the glue only maps a request onto the capture manager.

Accepted: an empty payload (every camera, default window), a camera name or slug, or JSON
`{"cameras": [...], "pre_seconds": n, "post_seconds": n, "label": "...", "persistent": "on"|"off"}`.
Anything else raises a core error carrying a short reason, never the payload itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
import json
from typing import Any, Final

from .capture import check_label, check_window
from .errors import InvalidPayloadError, UnknownCameraError
from .layout import slugify

MAX_PAYLOAD_BYTES: Final = 4096
_KEYS: Final = frozenset(
    {"cameras", "camera", "pre_seconds", "post_seconds", "label", "persistent"}
)
_ON: Final = frozenset({"on", "true", "1", "start"})
_OFF: Final = frozenset({"off", "false", "0", "stop"})


@dataclass(frozen=True, slots=True)
class CaptureRequest:
    """A validated command; None fields mean "use the configured default"."""

    cameras: tuple[str, ...]
    pre_seconds: float | None = None
    post_seconds: float | None = None
    label: str | None = None
    persistent: bool | None = None


def parse_capture_payload(
    payload: bytes | bytearray | str, known_cameras: Mapping[str, str]
) -> CaptureRequest:
    """Turn an MQTT payload into a request; `known_cameras` maps names and slugs to slugs."""
    raw = payload.encode() if isinstance(payload, str) else bytes(payload)
    if len(raw) > MAX_PAYLOAD_BYTES:
        raise InvalidPayloadError(f"larger than {MAX_PAYLOAD_BYTES} bytes")
    try:
        text = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise InvalidPayloadError("not UTF-8 text") from None
    lookup = _lookup_table(known_cameras)
    everyone = tuple(dict.fromkeys(known_cameras.values()))
    if not text:
        return CaptureRequest(everyone)
    if text[0] not in '{["':
        return CaptureRequest((_camera(text, lookup),))
    try:
        data = json.loads(text)
    except ValueError:
        raise InvalidPayloadError("malformed JSON") from None
    if isinstance(data, str):
        return CaptureRequest((_camera(data, lookup),))
    if not isinstance(data, dict):
        raise InvalidPayloadError("JSON must be an object or a camera name")
    unknown = set(data) - _KEYS
    if unknown:
        raise InvalidPayloadError(f"unknown key {sorted(unknown)[0][:32]!r}")
    return CaptureRequest(
        cameras=_cameras(data.get("cameras", data.get("camera")), lookup, everyone),
        pre_seconds=_seconds(data, "pre_seconds"),
        post_seconds=_seconds(data, "post_seconds"),
        label=check_label(data.get("label")) if "label" in data else None,
        persistent=_switch(data.get("persistent")),
    )


def _lookup_table(known_cameras: Mapping[str, str]) -> dict[str, str]:
    table: dict[str, str] = {}
    for name, slug in known_cameras.items():
        for key in (name, slug):
            table.setdefault(key.casefold(), slug)
            table.setdefault(slugify(key), slug)
    return table


def _camera(name: Any, lookup: Mapping[str, str]) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidPayloadError("camera must be a non-empty name")
    text = name.strip()
    slug = lookup.get(text.casefold()) or lookup.get(slugify(text))
    if slug is None:
        raise UnknownCameraError(text)
    return slug


def _cameras(value: Any, lookup: Mapping[str, str], everyone: tuple[str, ...]) -> tuple[str, ...]:
    if value is None or (isinstance(value, str) and value.strip().casefold() == "all"):
        return everyone
    if isinstance(value, str):
        return (_camera(value, lookup),)
    if not isinstance(value, list):
        raise InvalidPayloadError("cameras must be a list of names")
    if not value:
        return everyone
    return tuple(dict.fromkeys(_camera(v, lookup) for v in value))


def _seconds(data: Mapping[str, Any], key: str) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise InvalidPayloadError(f"{key} must be a number") from None
    return check_window(value, key)


def _switch(value: Any) -> bool | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().casefold() in _ON | _OFF:
        return value.strip().casefold() in _ON
    raise InvalidPayloadError('persistent must be "on" or "off"')

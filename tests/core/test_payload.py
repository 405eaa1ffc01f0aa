"""MQTT capture payloads: what the glue accepts and what it logs and ignores."""

from __future__ import annotations

import json

import pytest

from custom_components.pm_dvr.core.errors import (
    InvalidPayloadError,
    InvalidWindowError,
    LabelTooLongError,
    PmDvrError,
    UnknownCameraError,
)
from custom_components.pm_dvr.core.payload import (
    MAX_PAYLOAD_BYTES,
    CaptureRequest,
    parse_capture_payload,
)

KNOWN = {"Front Door": "front-door", "front-door": "front-door", "Garage": "garage"}


@pytest.mark.parametrize(
    ("payload", "want"),
    [
        (b"", CaptureRequest(("front-door", "garage"))),
        ("  \n", CaptureRequest(("front-door", "garage"))),
        (b"garage", CaptureRequest(("garage",))),
        ("Front Door", CaptureRequest(("front-door",))),
        ("front door", CaptureRequest(("front-door",))),
        ("FRONT-DOOR", CaptureRequest(("front-door",))),
        ('"Garage"', CaptureRequest(("garage",))),
        ("{}", CaptureRequest(("front-door", "garage"))),
        (
            '{"cameras": ["Garage", "front-door", "garage"], "pre_seconds": 5, '
            '"post_seconds": 12.5, "label": "Doorbell", "persistent": "off"}',
            CaptureRequest(("garage", "front-door"), 5.0, 12.5, "Doorbell", False),
        ),
        ('{"camera": "garage", "persistent": "ON"}', CaptureRequest(("garage",), persistent=True)),
        ('{"cameras": "all", "pre_seconds": "30"}', CaptureRequest(("front-door", "garage"), 30.0)),
        (
            '{"cameras": [], "persistent": true}',
            CaptureRequest(("front-door", "garage"), None, None, None, True),
        ),
        ('{"cameras": "Garage", "label": "  "}', CaptureRequest(("garage",))),
        (
            '{"pre_seconds": null, "post_seconds": 0}',
            CaptureRequest(("front-door", "garage"), None, 0.0),
        ),
    ],
)
def test_good_payloads(payload: bytes | str, want: CaptureRequest) -> None:
    assert parse_capture_payload(payload, KNOWN) == want


@pytest.mark.parametrize(
    ("payload", "error", "reason"),
    [
        (b"\xff\xfe", InvalidPayloadError, "not UTF-8"),
        ("{not json", InvalidPayloadError, "malformed JSON"),
        ("[1, 2]", InvalidPayloadError, "object or a camera"),
        ('{"cameras": 3}', InvalidPayloadError, "list of names"),
        ('{"cameras": [3]}', InvalidPayloadError, "non-empty name"),
        ('{"cameras": [""]}', InvalidPayloadError, "non-empty name"),
        ('{"camera": "garage", "rm": "-rf"}', InvalidPayloadError, "unknown key 'rm'"),
        ('{"pre_seconds": "soon"}', InvalidPayloadError, "pre_seconds must be a number"),
        ('{"persistent": "maybe"}', InvalidPayloadError, "on"),
        ('{"persistent": 1}', InvalidPayloadError, "on"),
        ('{"pre_seconds": 3601}', InvalidWindowError, "between 0 and 3600"),
        ('{"post_seconds": -1}', InvalidWindowError, "between 0 and 3600"),
        ('{"post_seconds": true}', InvalidWindowError, "between 0 and 3600"),
        ('{"label": "' + "x" * 65 + '"}', LabelTooLongError, "64"),
        ("kitchen", UnknownCameraError, "kitchen"),
        ('{"cameras": ["garage", "../etc"]}', UnknownCameraError, "../etc"),
    ],
)
def test_bad_payloads(payload: bytes | str, error: type[PmDvrError], reason: str) -> None:
    with pytest.raises(error) as caught:
        parse_capture_payload(payload, KNOWN)
    assert reason in str(caught.value)
    assert isinstance(caught.value, PmDvrError)


def test_oversized_payload_is_refused_without_echo() -> None:
    payload = json.dumps({"label": "secret", "cameras": ["garage"] * 1000})
    assert len(payload.encode()) > MAX_PAYLOAD_BYTES
    with pytest.raises(InvalidPayloadError) as caught:
        parse_capture_payload(payload, KNOWN)
    assert caught.value.reason == f"larger than {MAX_PAYLOAD_BYTES} bytes"
    assert caught.value.translation_key == "invalid_payload"
    assert "secret" not in str(caught.value)
    # Just under the limit is parsed.
    small = json.dumps({"cameras": ["garage"] * 400})
    assert len(small) <= MAX_PAYLOAD_BYTES
    assert parse_capture_payload(small.encode(), KNOWN).cameras == ("garage",)


def test_unknown_camera_error_carries_the_name() -> None:
    with pytest.raises(UnknownCameraError) as caught:
        parse_capture_payload("x" * 200, KNOWN)
    assert caught.value.camera == "x" * 64
    assert caught.value.translation_key == "unknown_camera"


def test_no_cameras_known() -> None:
    assert parse_capture_payload(b"", {}) == CaptureRequest(())

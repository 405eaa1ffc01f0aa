"""Errors of the core library; each carries the translation key the HA glue shows for it."""

from __future__ import annotations


class PmDvrError(Exception):
    """Base of every core error. Messages never contain secrets (URLs are masked)."""

    translation_key = "unknown_error"


class StreamError(PmDvrError):
    """A camera stream could not be opened or read."""

    translation_key = "cannot_connect"


class CannotConnectError(StreamError):
    """No connection: refused, unreachable, or closed without an answer."""


class TimedOutError(StreamError):
    """The camera accepted the connection but did not answer in time (frozen, or busy)."""

    translation_key = "timed_out"


class InvalidAuthError(StreamError):
    """The camera answered 401: wrong user or password."""

    translation_key = "invalid_auth"


class StreamNotFoundError(StreamError):
    """The camera answered 404: wrong path."""

    translation_key = "not_found"


class UnsupportedCodecError(StreamError):
    """The stream's video is neither H.264 nor H.265, which browsers cannot play by copy."""

    translation_key = "unsupported_codec"


class InvalidUrlError(StreamError):
    """The URL is not rtsp://, rtsps://, http(s):// or an existing file."""

    translation_key = "invalid_url"


class StorageError(PmDvrError):
    """The storage folder is missing, not writable, or not allowed."""

    translation_key = "storage_not_writable"


class CaptureError(PmDvrError):
    """An event capture was refused or could not be stored."""

    translation_key = "capture_failed"


class InvalidWindowError(CaptureError):
    """pre/post seconds are not numbers between 0 and 3600."""

    translation_key = "invalid_window"


class LabelTooLongError(CaptureError):
    """The event label is longer than 64 characters."""

    translation_key = "label_too_long"


class UnknownCameraError(CaptureError):
    """A camera named in a request is not one of the hub's cameras (or no camera was named)."""

    translation_key = "unknown_camera"

    def __init__(self, camera: str, message: str | None = None) -> None:
        super().__init__(message or f"Unknown camera: {camera[:64]!r}")
        self.camera = camera[:64]


class InvalidTriggerError(CaptureError):
    """The trigger is not one of service, automation, mqtt, motion, persistent."""

    translation_key = "invalid_trigger"


class EventNotFoundError(CaptureError):
    """No event in progress has this id (unknown, or already complete)."""

    translation_key = "event_not_found"


class InvalidPayloadError(CaptureError):
    """An MQTT capture payload is malformed or too large; `reason` says why (no payload echo)."""

    translation_key = "invalid_payload"

    def __init__(self, reason: str) -> None:
        super().__init__(f"Invalid capture payload: {reason}")
        self.reason = reason


class NoFootageError(CaptureError):
    """A camera recorded nothing in the range asked for (an export of a gap)."""

    translation_key = "no_footage"

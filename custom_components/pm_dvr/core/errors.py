"""Errors of the core library; each carries the translation key the HA glue shows for it."""

from __future__ import annotations


class PmDvrError(Exception):
    """Base of every core error. Messages never contain secrets (URLs are masked)."""

    translation_key = "unknown_error"


class StreamError(PmDvrError):
    """A camera stream could not be opened or read."""

    translation_key = "cannot_connect"


class CannotConnectError(StreamError):
    """Nothing answered, the connection was refused or timed out."""


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

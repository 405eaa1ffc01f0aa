"""Stream URL helpers: validation and masking of credentials for logs and UI."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

NETWORK_SCHEMES = frozenset({"rtsp", "rtsps", "http", "https"})


def mask_url(url: str) -> str:
    """Return the URL with its password replaced by *** (rtsp://user:***@host/...)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid url>"
    if parts.password is None and "@" not in parts.netloc:
        return url
    user = parts.username or ""
    host = parts.netloc.rsplit("@", 1)[1]
    userinfo = f"{user}:***" if parts.password is not None else user
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{host}"))


def is_network_url(url: str) -> bool:
    """Whether the URL names a network stream (rather than a local file used for testing)."""
    return urlsplit(url).scheme.lower() in NETWORK_SCHEMES


def is_valid_stream_url(url: str) -> bool:
    """Whether the URL is a supported network stream or an absolute path of an existing file.

    Does file I/O for paths: call it from an executor thread.
    """
    url = url.strip()
    if not url:
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    if parts.scheme.lower() in NETWORK_SCHEMES:
        return bool(parts.hostname)
    path = Path(url)
    return path.is_absolute() and path.is_file()

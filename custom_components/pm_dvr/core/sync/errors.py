"""Errors raised by the sync core; messages are safe to log and never carry secrets."""

from __future__ import annotations

from collections.abc import Iterable
import re

# Patterns that look like credentials in free text coming from SDKs or rclone.
_SECRET_PATTERNS = (
    re.compile(
        r"(?i)((?:AccountKey|SharedAccessSignature|sig|key|sas_url|account_key)=)[^;&\s,'\"]+"
    ),
    re.compile(r"(?i)(Authorization:\s*)\S+(?:\s+\S+)?"),
)


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """Remove known secret values and credential-looking fragments from text."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(r"\1***", text)
    return text


class SyncError(Exception):
    """Base class: an upload, a verification or a target check failed."""

    reason = "error"


class TargetAuthError(SyncError):
    """The target refused the credentials (bad key, expired SAS): the user must re-authenticate."""

    reason = "auth_failed"


class TargetUnreachableError(SyncError):
    """The target could not be reached (network down, service stopped, DNS)."""

    reason = "unreachable"


class TargetTimeoutError(TargetUnreachableError):
    """The target accepted the connection but did not answer (or stopped making progress) in time."""

    reason = "timeout"


class TargetNotWritableError(SyncError):
    """The target answered but refused a write (permissions, read-only, missing path)."""

    reason = "not_writable"


class RcloneNotInstalledError(SyncError):
    """The rclone binary is missing, so an rclone target cannot work at all."""

    reason = "rclone_missing"


class VerifyError(SyncError):
    """The remote copy differs from the local file (size or MD5), so the local file must stay."""

    reason = "verify_failed"


class TargetConfigError(SyncError):
    """The target's settings cannot work (malformed connection string, empty remote)."""

    reason = "invalid_config"


class LocalFileMissingError(SyncError):
    """The local event or recording is gone (retention removed it): the job cannot succeed."""

    reason = "local_missing"

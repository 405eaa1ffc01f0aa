"""The one map from core errors to translated Home Assistant exceptions.

Setup, coordinators and services all raise through here, so every failure a user sees has a
translated message and no secret (core messages mask URLs; the placeholders carry no URLs).

A refused request raises `PmDvrValidationError`: a `ServiceValidationError` (the UI and
automations see its translation) that is also aiohttp's HTTP 400. HA's REST API
(`POST /api/services/<domain>/<service>`) answers a `ServiceValidationError` with 400 and its
message only from 2026.10 on; before, its view lets anything but `vol.Invalid` escape, and
aiohttp answered 500 with a traceback in the log. Raised as an HTTP 400 as well, the escaping
error is the answer itself: 400 with `{"message": ...}` as 2026.10 gives, nothing logged. The
WebSocket API and automations catch it as the `ServiceValidationError` it is first.
"""

from __future__ import annotations

import json

from aiohttp import web
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError

from .const import DOMAIN
from .core.errors import PmDvrError, StorageError


class _BadRequest(web.HTTPBadRequest):
    """HTTP 400 that takes the exception arguments HA's errors hand it."""

    def __init__(self, *args: object) -> None:
        super().__init__(content_type="application/json")
        # HTTPException made its reason the arguments: HA's own go back.
        Exception.__init__(self, *args)


class PmDvrValidationError(ServiceValidationError, _BadRequest):
    """A translated validation error that REST callers get as 400 with its message."""

    def __init__(self, translation_key: str, placeholders: dict[str, str]) -> None:
        """Raise on the event loop: the message is read from the loaded translations."""
        super().__init__(
            translation_domain=DOMAIN,
            translation_key=translation_key,
            translation_placeholders=placeholders,
        )
        self.text = json.dumps({"message": str(self)})

    def __repr__(self) -> str:
        """As HA's errors show (aiohttp's response repr says nothing of the error)."""
        return f"{type(self).__name__}({self.translation_key!r}, {self.translation_placeholders!r})"


def translated(
    err: PmDvrError,
    error_class: type[HomeAssistantError] = HomeAssistantError,
    **placeholders: str,
) -> HomeAssistantError:
    """A translated HA exception for a core error (raise it `from err`)."""
    return error_class(
        translation_domain=DOMAIN,
        translation_key=err.translation_key,
        translation_placeholders={"error": str(err), **placeholders},
    )


def validation_error(translation_key: str, **placeholders: str) -> PmDvrValidationError:
    """A translated validation error found by the glue itself (no core error behind it)."""
    return PmDvrValidationError(translation_key, placeholders)


def refused(err: PmDvrError) -> HomeAssistantError:
    """A core error in answer to a user's request: refused input is a validation error (400
    over REST); a storage that fails is Home Assistant's error, not the caller's."""
    if isinstance(err, StorageError):
        return translated(err)
    return validation_error(err.translation_key, error=str(err))

"""The one map from core errors to translated Home Assistant exceptions.

Setup, coordinators and services all raise through here, so every failure a user sees has a
translated message and no secret (core messages mask URLs; the placeholders carry no URLs).
`translate_errors` is the way in (a context manager, or a decorator of coroutine functions as
peblar's `peblar_exception_handler` is); which HA exception a core error becomes depends on
where it happens:

    setup    storage that fails: ConfigEntryError (the user must fix the folder); anything
             else: ConfigEntryNotReady (HA retries)
    request  a refused request (CaptureError: bad window, unknown camera or event...): the
             caller's fault, a validation error; anything else (storage): HomeAssistantError
    update   a coordinator's refresh: UpdateFailed

A refused request raises `PmDvrValidationError`: a `ServiceValidationError` (the UI and
automations see its translation) that is also aiohttp's HTTP 400. HA's REST API
(`POST /api/services/<domain>/<service>`) answers a `ServiceValidationError` with 400 and its
message only from 2026.10 on; before, its view lets anything but `vol.Invalid` escape, and
aiohttp answered 500 with a traceback in the log. Raised as an HTTP 400 as well, the escaping
error is the answer itself: 400 with `{"message": ...}` as 2026.10 gives, nothing logged. The
WebSocket API and automations catch it as the `ServiceValidationError` it is first.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
import functools
import json
from types import TracebackType
from typing import Any, Literal

from aiohttp import web
from homeassistant.exceptions import (
    ConfigEntryError,
    ConfigEntryNotReady,
    HomeAssistantError,
    ServiceValidationError,
)
from homeassistant.helpers.update_coordinator import UpdateFailed

from .const import DOMAIN
from .core.errors import CaptureError, PmDvrError, StorageError

type During = Literal["setup", "request", "update"]


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
    if isinstance(err, CaptureError):
        return validation_error(err.translation_key, error=str(err))
    return translated(err)


def ha_error(err: PmDvrError, during: During) -> HomeAssistantError:
    """The translated HA exception for a core error, by where it happened (see above)."""
    if during == "request":
        return refused(err)
    if during == "update":
        return translated(err, UpdateFailed)
    return translated(
        err, ConfigEntryError if isinstance(err, StorageError) else ConfigEntryNotReady
    )


class translate_errors:  # lower case: it reads as a function, `with translate_errors("setup"):`
    """Raise core errors as translated HA exceptions (a context manager or a decorator).

    Anything else passes unchanged: HA's own errors (a handler's validation errors) and bugs,
    which HA logs with their traceback.
    """

    def __init__(self, during: During = "request") -> None:
        """`during` picks the map: setup, a user's request, or a coordinator's update."""
        self.during: During = during

    def __enter__(self) -> None:
        """Nothing to set up."""

    def __exit__(
        self,
        error_type: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Re-raise a core error as its HA exception, chained to it."""
        if isinstance(error, PmDvrError):
            raise ha_error(error, self.during) from error

    def __call__[**P, T](
        self, func: Callable[P, Coroutine[Any, Any, T]]
    ) -> Callable[P, Coroutine[Any, Any, T]]:
        """Decorate a coroutine function (a service handler, an entity action, an update)."""

        @functools.wraps(func)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            with self:
                return await func(*args, **kwargs)

        return wrapper

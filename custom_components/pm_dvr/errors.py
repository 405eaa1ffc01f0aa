"""The one map from core errors to translated Home Assistant exceptions.

Setup, coordinators and services all raise through here, so every failure a user sees has a
translated message and no secret (core messages mask URLs; the placeholders carry no URLs).
"""

from __future__ import annotations

from homeassistant.exceptions import HomeAssistantError, ServiceValidationError

from .const import DOMAIN
from .core.errors import PmDvrError


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


def validation_error(translation_key: str, **placeholders: str) -> ServiceValidationError:
    """A translated validation error found by the glue itself (no core error behind it)."""
    return ServiceValidationError(
        translation_domain=DOMAIN,
        translation_key=translation_key,
        translation_placeholders=placeholders,
    )

"""Translations, icons and services agree with each other and with the code that uses them.

HA reads only translations/en.json for a custom integration, keeps the last of two equal JSON keys
without a word, and shows a raw key where a translation is missing: each check here stands for a
text a user would otherwise not see.
"""

from __future__ import annotations

from collections.abc import Iterator
import importlib
import inspect
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from custom_components.pm_dvr.core import errors as core_errors
from custom_components.pm_dvr.core.sync import errors as sync_errors

PACKAGE = Path(__file__).parents[1] / "custom_components" / "pm_dvr"
PLATFORMS = ("binary_sensor", "button", "camera", "image", "number", "sensor", "switch")


def load_unique(path: Path) -> dict[str, Any]:
    """Parse JSON, failing on a key that appears twice in one object."""

    def pairs_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [key for key, _ in pairs]
        duplicates = sorted({key for key in keys if keys.count(key) > 1})
        assert not duplicates, f"{path.name}: duplicate keys {duplicates}"
        return dict(pairs)

    result: dict[str, Any] = json.loads(
        path.read_text(encoding="utf-8"), object_pairs_hook=pairs_hook
    )
    return result


def descriptions() -> Iterator[tuple[str, Any]]:
    """Every entity description a platform module defines (alone or in a tuple or list)."""
    for platform in PLATFORMS:
        module = importlib.import_module(f"custom_components.pm_dvr.{platform}")
        for value in vars(module).values():
            items = value if isinstance(value, (tuple, list)) else (value,)
            for item in items:
                # HA's frozen-dataclass shim makes a class of its own per module: match by name.
                if any(cls.__name__ == "EntityDescription" for cls in type(item).__mro__):
                    yield platform, item


@pytest.fixture(name="strings")
def strings_fixture() -> dict[str, Any]:
    return load_unique(PACKAGE / "strings.json")


def test_english_translation_is_strings_json(strings: dict[str, Any]) -> None:
    """translations/en.json is what HA shows; strings.json is its source: the same text."""
    english = PACKAGE / "translations" / "en.json"
    assert load_unique(english) == strings
    assert english.read_text(encoding="utf-8") == (PACKAGE / "strings.json").read_text(
        encoding="utf-8"
    )


def test_every_entity_has_a_name_and_an_icon(strings: dict[str, Any]) -> None:
    icons = load_unique(PACKAGE / "icons.json")
    found = list(descriptions())
    assert len(found) >= 10
    for platform, description in found:
        key = description.translation_key
        if platform == "camera":  # the camera is its device's main feature: the device's name
            continue
        assert key, f"{platform}.{description.key} has no translation_key"
        assert key in strings["entity"].get(platform, {}), f"{platform}.{key}: no name"
        assert key in icons["entity"].get(platform, {}), f"{platform}.{key}: no icon"
    named = {(platform, key) for platform, keys in strings["entity"].items() for key in keys}
    used = {(platform, description.translation_key) for platform, description in found}
    assert named <= used, f"names no entity uses: {sorted(named - used)}"


def test_every_service_is_described_everywhere(strings: dict[str, Any]) -> None:
    icons = load_unique(PACKAGE / "icons.json")
    services = yaml.safe_load((PACKAGE / "services.yaml").read_text(encoding="utf-8"))
    assert set(services) == set(strings["services"]) == set(icons["services"])
    for name, service in services.items():
        fields = set((service or {}).get("fields", {}))
        assert fields == set(strings["services"][name].get("fields", {})), name


def test_every_core_error_has_a_translated_message(strings: dict[str, Any]) -> None:
    """The one error map raises HA errors by these keys: each needs its text."""
    keys = {
        cls.translation_key
        for module in (core_errors, sync_errors)
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if isinstance(getattr(cls, "translation_key", None), str)
    }
    assert keys, "no core error carries a translation key"
    missing = keys - set(strings["exceptions"])
    assert not missing, f"exceptions without text: {sorted(missing)}"

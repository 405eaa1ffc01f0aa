"""quality_scale.yaml marks every Bronze, Silver, Gold and Platinum rule, each done or exempt."""

from __future__ import annotations

from pathlib import Path

from homeassistant.util.yaml import load_yaml_dict

import custom_components.pm_dvr as integration

RULES = {
    "bronze": [
        "action-setup", "appropriate-polling", "brands", "common-modules",
        "config-flow-test-coverage", "config-flow", "dependency-transparency", "docs-actions",
        "docs-high-level-description", "docs-installation-instructions",
        "docs-removal-instructions", "entity-event-setup", "entity-unique-id", "has-entity-name",
        "runtime-data", "test-before-configure", "test-before-setup", "unique-config-entry",
    ],
    "silver": [
        "action-exceptions", "config-entry-unloading", "docs-configuration-parameters",
        "docs-installation-parameters", "entity-unavailable", "integration-owner",
        "log-when-unavailable", "parallel-updates", "reauthentication-flow", "test-coverage",
    ],
    "gold": [
        "devices", "diagnostics", "discovery-update-info", "discovery", "docs-data-update",
        "docs-examples", "docs-known-limitations", "docs-supported-devices",
        "docs-supported-functions", "docs-troubleshooting", "docs-use-cases", "dynamic-devices",
        "entity-category", "entity-device-class", "entity-disabled-by-default",
        "entity-translations", "exception-translations", "icon-translations",
        "reconfiguration-flow", "repair-issues", "stale-devices",
    ],
    "platinum": ["async-dependency", "inject-websession", "strict-typing"],
}  # fmt: skip
PACKAGE = Path(integration.__file__).parent


def test_every_rule_done_or_exempt_with_a_reason() -> None:
    rules = load_yaml_dict(PACKAGE / "quality_scale.yaml")["rules"]
    assert set(rules) == {rule for tier in RULES.values() for rule in tier}
    for name, rule in rules.items():
        status = rule if isinstance(rule, str) else rule["status"]
        assert status in {"done", "exempt"}, name
        if status == "exempt":
            assert len(rule["comment"]) > 20, name


def test_every_platform_sets_parallel_updates() -> None:
    for platform in integration.PLATFORMS:
        module = __import__(f"custom_components.pm_dvr.{platform.value}", fromlist=["x"])
        assert module.PARALLEL_UPDATES == 0, platform

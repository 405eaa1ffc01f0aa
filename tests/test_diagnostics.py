"""Diagnostics: the document (snapshot) and the guarantee that no planted secret survives."""

from __future__ import annotations

from collections.abc import AsyncGenerator
import json
from pathlib import Path
from typing import Any

from homeassistant.config_entries import ConfigSubentryDataWithId
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from syrupy.assertion import SnapshotAssertion
from syrupy.filters import props

from custom_components.pm_dvr.const import CONF_STORAGE_PATH, DOMAIN
from custom_components.pm_dvr.core.clips import ClipIndex
from custom_components.pm_dvr.data import PmDvrData
from custom_components.pm_dvr.diagnostics import SECTIONS, scrub, scrub_text

from .common import wait_for
from .conftest import camera_subentry
from .rig.rtsp import RtspServer

AZURE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
SAS_SIG = "sR2Xq9%2FhY7TkWb3nLp0Zr6uVc8eDf1gHj4kMn5oPq%3D"
VOLATILE = props(
    "usage",
    "last_result",
    "runs",
    "connects",
    "disconnects",
    "measured_fps",
    "bitrate_kbps",
    "clips_written",
    "dropped_packets",
    "repaired_packets",
    "gaps",
    "gap_seconds",
    "errors",
    "last_error",
    "clips",
    "bytes",
    "oldest",
    "free_bytes",
    "detected",
)


def normalised(document: dict[str, Any], *replace: tuple[str, str]) -> dict[str, Any]:
    text = json.dumps(document)
    for old, new in replace:
        text = text.replace(old, new)
    return json.loads(text)


async def test_diagnostics_snapshot(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    hass_client: ClientSessionGenerator,
    rtsp_server: RtspServer,
    snapshot: SnapshotAssertion,
) -> None:
    """Config, stream info, session and recording states, index sizes, events."""
    index = init_integration.runtime_data.index
    await wait_for(lambda: index.count("front-door") and index.count("garden"), timeout=30)
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, init_integration)
    camera = diagnostics["cameras"]["front-door"]
    assert camera["stream"]["video_codec"] == "h264"
    assert (camera["stream"]["width"], camera["stream"]["height"]) == (640, 360)
    assert camera["session"]["state"] == "streaming"
    assert camera["index"]["clips"] >= 1
    assert diagnostics["storage"]["index"]["clips"] >= 1
    assert diagnostics["storage"]["free_bytes"] > 0
    retention = diagnostics["retention"]
    assert retention["config"]["max_storage_gb"] == 5.0
    assert set(retention["usage"]) >= {"recordings_bytes", "events_bytes", "free_bytes"}
    storage = str(init_integration.runtime_data.storage)
    stable = normalised(diagnostics, (storage, "<storage>"), (str(rtsp_server.port), "<port>"))
    assert stable == snapshot(exclude=VOLATILE)


@pytest.fixture
async def secret_entry(
    hass: HomeAssistant, rtsp_auth: RtspServer, storage_path: Path, hub_options: dict[str, Any]
) -> AsyncGenerator[MockConfigEntry]:
    """A hub whose camera has a password and whose sync target holds Azure secrets."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="secrets",
        data={CONF_STORAGE_PATH: str(storage_path)},
        options=hub_options,
        subentries_data=secret_subentries(rtsp_auth),
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    yield entry
    assert await hass.config_entries.async_unload(entry.entry_id)


def secret_subentries(rtsp_auth: RtspServer) -> list[Any]:
    """A camera with passwords in both URLs, and a target with keys, SAS and a NAS password."""
    return [
        camera_subentry(
            "Front door",
            rtsp_auth.url("/cam", "admin:s3cret"),
            "front-door",
            detect_stream_url=rtsp_auth.url("/cam", "viewer:hunter2")
            + "?channel=1&user=viewer&PassWord=qu3rySecret",
        ),
        ConfigSubentryDataWithId(
            data={
                "target_type": "azure_blob",
                "container": "events",
                # A closed loopback port: nothing in this test may reach a real Azure host.
                "connection_string": "DefaultEndpointsProtocol=http;AccountName=dvr;"
                f"AccountKey={AZURE_KEY};BlobEndpoint=http://127.0.0.1:9/dvr;",
                "credential": AZURE_KEY,
                "account_key": AZURE_KEY,
                "sas_url": f"https://dvr.blob.core.windows.net/events?sv=2024-05-04&sig={SAS_SIG}",
                "endpoint": f"https://dvr.blob.core.windows.net/?sig={SAS_SIG}",
                "options": {"note": f"key {AZURE_KEY}", "nas": "smb://backup:n4sPass@nas/share"},
            },
            subentry_type="target",
            subentry_id="sub_target",
            title="Azure",
            unique_id="azure-dvr",
        ),
    ]


async def test_no_secret_survives(
    hass: HomeAssistant,
    secret_entry: MockConfigEntry,
    hass_client: ClientSessionGenerator,
    rtsp_auth: RtspServer,
) -> None:
    """Passwords in URLs and errors, Azure keys, SAS and connection strings are all redacted."""
    coordinator = next(iter(secret_entry.runtime_data.cameras.values()))
    await wait_for(lambda: coordinator.session.available)
    coordinator.session.stats.last_error = (
        f"cannot open {coordinator.session.url}: 401 (AccountKey={AZURE_KEY})"
    )
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, secret_entry)
    text = json.dumps(diagnostics)
    for secret in (
        "s3cret",
        "hunter2",
        "qu3rySecret",
        AZURE_KEY,
        AZURE_KEY[:40],
        SAS_SIG,
        "n4sPass",
    ):
        assert secret not in text, secret
    target = next(s for s in diagnostics["entry"]["subentries"] if s["subentry_type"] == "target")
    assert target["data"]["container"] == "events"  # what is not secret stays readable
    assert target["data"]["target_type"] == "azure_blob"
    assert target["data"]["credential"] == "**REDACTED**"
    assert "Azure" in diagnostics["sync"]["targets"]
    assert target["data"]["account_key"] == "**REDACTED**"
    camera = next(s for s in diagnostics["entry"]["subentries"] if s["subentry_type"] == "camera")
    assert camera["data"]["stream_url"] == f"rtsp://**REDACTED**@127.0.0.1:{rtsp_auth.port}/cam"
    assert camera["data"]["detect_stream_url"] == (
        f"rtsp://**REDACTED**@127.0.0.1:{rtsp_auth.port}/cam"
        "?channel=1&user=viewer&PassWord=**REDACTED**"
    )
    assert "127.0.0.1" in diagnostics["cameras"]["front-door"]["session"]["last_error"]


@pytest.mark.parametrize(
    ("text", "scrubbed"),
    [
        (
            "Cannot connect to rtsp://cam/s?user=admin&password=hunter2: ConnectionRefusedError",
            # A secret runs to the next separator: better the colon than a password's last char.
            "Cannot connect to rtsp://cam/s?user=admin&password=**REDACTED** ConnectionRefusedError",
        ),
        (
            "'http://cam/cgi?usr=admin&Pwd=hunter2#x' (401)",
            "'http://cam/cgi?usr=admin&Pwd=**REDACTED**#x' (401)",
        ),
        (
            "rtsps://admin:hunter2@cam/s?pass%77ord=hunter2&channel=1",
            "rtsps://**REDACTED**@cam/s?pass%77ord=**REDACTED**&channel=1",
        ),
        (
            "rtsp://dvr/user=admin&password=hunter2&channel=1&stream=0.sdp",
            "rtsp://dvr/user=admin&password=**REDACTED**&channel=1&stream=0.sdp",
        ),
        # Outside any URL too.
        (
            "login user=admin&password=hunter2 refused",
            "login user=admin&password=**REDACTED** refused",
        ),
        ("access_token=hunter2; key=hunter2", "access_token=**REDACTED** key=**REDACTED**"),
        ("keyframe=1 bypass=2", "keyframe=1 bypass=2"),
        ("http://[::1 is not a URL", "<invalid url> is not a URL"),
    ],
)
def test_scrub_url_secrets(text: str, scrubbed: str) -> None:
    """Secret query, path and userinfo parts of URLs in any text, and secret parameters alone."""
    assert scrub_text(text) == scrubbed


def test_scrub_keeps_what_is_not_secret() -> None:
    """Paths, words and numbers survive; an empty secret field stays visibly empty."""
    path = "/media/pm_dvr/recordings/frontdoorcameraoverthegaragedoorentrance"
    assert scrub_text(path) == path
    words = "clip frontdoorcameraoverthegaragedoorentrance"  # long, but no digits or capitals
    assert scrub_text(words) == words
    assert scrub({"password": "", "token": None, "n": 3, "items": ("a",)}) == {
        "password": "",
        "token": None,
        "n": 3,
        "items": ["a"],
    }


async def test_sections_of_a_hub_still_starting(hass: HomeAssistant, tmp_path: Path) -> None:
    """Before retention and sync have started (setup under way), their sections are empty."""
    entry = MockConfigEntry(domain=DOMAIN, data={CONF_STORAGE_PATH: str(tmp_path)})
    entry.runtime_data = PmDvrData(storage=tmp_path, index=ClipIndex(tmp_path / "recordings"))
    assert await SECTIONS["retention"](hass, entry) is None
    assert await SECTIONS["sync"](hass, entry) is None

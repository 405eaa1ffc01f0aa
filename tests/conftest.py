"""Fixtures shared by pm_dvr's Home Assistant tests: a real RTSP server, a hub with cameras."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterator
from pathlib import Path
from types import MappingProxyType
from typing import Any

from awesomeversion import AwesomeVersion
from blockbuster import BlockBuster, blockbuster_ctx
from homeassistant.config_entries import (
    ConfigSubentry,
    ConfigSubentryData,
    ConfigSubentryDataWithId,
)
from homeassistant.const import __version__ as HA_VERSION
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.syrupy import HomeAssistantSnapshotExtension
from syrupy.assertion import SnapshotAssertion
from syrupy.location import PyTestLocation

from custom_components.pm_dvr.const import (
    CONF_AUDIO,
    CONF_CAMERAS,
    CONF_DELETE_AFTER_UPLOAD,
    CONF_DETECT_STREAM_URL,
    CONF_LABELS,
    CONF_MAX_AGE_DAYS,
    CONF_MAX_STORAGE_GB,
    CONF_MQTT_TOPIC,
    CONF_NAME,
    CONF_POST_SECONDS,
    CONF_PRE_SECONDS,
    CONF_RECORD,
    CONF_SEGMENT_SECONDS,
    CONF_SLUG,
    CONF_STORAGE_PATH,
    CONF_STREAM_INFO,
    CONF_STREAM_URL,
    CONF_UPLOAD,
    DOMAIN,
    SUBENTRY_CAMERA,
    SUBENTRY_TARGET,
    UPLOAD_EVENTS,
)
from custom_components.pm_dvr.core.urls import strip_credentials
from custom_components.pm_dvr.core.writer import ClipWriter

from .common import wait_for
from .rig.azurite import Azurite
from .rig.blocking import allow_queue_table
from .rig.rtsp import RtspServer


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Load pm_dvr from custom_components."""


@pytest.fixture(autouse=True)
def stop_clip_writers(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """End the writer threads of recorders a test made but never stopped (as a session would).

    HA's fixtures fail a test that leaves a thread behind.
    """
    made: list[ClipWriter] = []
    init = ClipWriter.__init__

    def tracked(self: ClipWriter, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(ClipWriter, "__init__", tracked)
    yield
    for writer in made:
        writer.stop()


@pytest.fixture(autouse=True)
def no_deprecated_calls(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Fail a test in which HA reports pm_dvr using an API on its way out (the 2026 line
    warns of calls that later releases refuse)."""
    yield
    reported = [
        record.getMessage()
        for record in caplog.get_records("call")
        # FFmpeg's own deprecation notes (libav.*, once HA's stream routes them to logging)
        # are about test clips, not pm_dvr's calls into HA.
        if (not record.name.startswith("libav") and "will stop working" in record.getMessage())
        or "Detected that custom integration" in record.getMessage()
    ]
    assert not reported, reported


@pytest.fixture(autouse=True)
def blockbuster() -> Iterator[BlockBuster]:
    """Fail any test in which pm_dvr makes a blocking call (file, socket, sleep) on the loop.

    HA's own detector skips file calls under pytest, so this is what catches them.
    """
    with blockbuster_ctx("custom_components.pm_dvr") as bb:
        # Coverage's tracer takes its own data lock on every line it records: under load another
        # thread may hold it for a moment. That is the measuring, not pm_dvr, blocking.
        for name in ("threading.Lock.acquire", "threading.Lock.acquire_lock"):
            bb.functions[name].can_block_in("coverage/collector.py", "lock_data")
        # A log line written to the test's stderr is pytest's capture, not pm_dvr's I/O.
        bb.functions["io.TextIOWrapper.write"].can_block_in("logging/__init__.py", "emit")
        yield allow_queue_table(bb)


# HA's serialised registry entries and states differ between its lines (2026 added aliases,
# object_id_base and a device's single subentry): each line keeps its own snapshots.
HA_LINE = "ha2025" if AwesomeVersion(HA_VERSION) < AwesomeVersion("2026.1.0") else "ha2026"


class LineSnapshotExtension(HomeAssistantSnapshotExtension):
    """HA's snapshot format, in tests/snapshots/<line>/."""

    @classmethod
    def dirname(cls, *, test_location: PyTestLocation) -> str:
        return str(Path(super().dirname(test_location=test_location)) / HA_LINE)


@pytest.fixture
def snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    """Snapshots in HA's format (ids and times made stable), one set per HA line."""
    return snapshot.use_extension(LineSnapshotExtension)


@pytest.fixture(scope="session")
def rtsp_server() -> Iterator[RtspServer]:
    """One real GStreamer RTSP server for the session; each path its own pipeline."""
    server = RtspServer(
        {"/cam": "synthetic", "/cam2": "synthetic:320x180@15:300:30", "/alaw": "synthetic-alaw"}
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture
def rtsp_auth() -> Iterator[RtspServer]:
    """A server that wants user `admin`, password `s3cret`."""
    server = RtspServer({"/cam": "synthetic:320x180@15:300:30"}, auth="admin:s3cret")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def rtsp_private() -> Iterator[RtspServer]:
    """A server of the test's own, which it may kill and restart."""
    server = RtspServer({"/cam": "synthetic:320x180@25:300:25"})
    server.start()
    yield server
    server.stop()


@pytest.fixture
def storage_path(hass: HomeAssistant, tmp_path: Path) -> Path:
    """A storage folder that HA allows; HA's own config folder in tmp_path too (the sync queue
    keeps its file in .storage, which hass_storage does not cover)."""
    path = tmp_path / "storage"
    hass.config.config_dir = str(tmp_path / "config")
    hass.config.allowlist_external_dirs = {str(tmp_path)}
    hass.config.media_dirs = {"local": str(tmp_path / "media")}
    return path


def camera_data(name: str, url: str, slug: str, **overrides: Any) -> dict[str, Any]:
    """Subentry data as the camera flow stores it."""
    return {
        CONF_NAME: name,
        CONF_STREAM_URL: url,
        CONF_DETECT_STREAM_URL: None,
        CONF_RECORD: True,
        CONF_AUDIO: "auto",
        CONF_PRE_SECONDS: 10,
        CONF_POST_SECONDS: 30,
        CONF_SLUG: slug,
        CONF_STREAM_INFO: {
            "video_codec": "h264",
            "width": 640,
            "height": 360,
            "fps": 25.0,
            "audio_codec": None,
        },
        **overrides,
    }


def camera_subentry(name: str, url: str, slug: str, **overrides: Any) -> ConfigSubentryData:
    """A camera subentry for MockConfigEntry, with a stable id (`sub_<slug>`) for snapshots and
    the unique id the camera flow gives it."""
    return ConfigSubentryDataWithId(
        data=camera_data(name, url, slug, **overrides),
        subentry_type=SUBENTRY_CAMERA,
        subentry_id=f"sub_{slug}",
        title=name,
        unique_id=strip_credentials(url),
    )


def as_subentry(data: ConfigSubentryData) -> ConfigSubentry:
    """A ConfigSubentry to add to a running entry, from camera_subentry()'s data."""
    return ConfigSubentry(
        data=MappingProxyType(data["data"]),
        subentry_type=data["subentry_type"],
        title=data["title"],
        unique_id=data["unique_id"],
    )


@pytest.fixture
def hub_options() -> dict[str, Any]:
    """Hub options; tests override single values."""
    return {
        CONF_SEGMENT_SECONDS: 2,
        CONF_MAX_STORAGE_GB: 5.0,
        CONF_MAX_AGE_DAYS: 0,
        CONF_MQTT_TOPIC: "",
    }


def two_cameras(rtsp_server: RtspServer, **overrides: Any) -> list[ConfigSubentryData]:
    """Front door and Garden on the session's RTSP server; `overrides` go to both."""
    return [
        camera_subentry("Front door", rtsp_server.url("/cam"), "front-door", **overrides),
        camera_subentry(
            "Garden",
            rtsp_server.url("/cam2"),
            "garden",
            stream_info={
                "video_codec": "h264",
                "width": 320,
                "height": 180,
                "fps": 15.0,
                "audio_codec": None,
            },
            **overrides,
        ),
    ]


@pytest.fixture
def camera_subentries(rtsp_server: RtspServer) -> list[ConfigSubentryData]:
    """Two cameras on the session's RTSP server."""
    return two_cameras(rtsp_server)


@pytest.fixture
def mock_config_entry(
    storage_path: Path,
    hub_options: dict[str, Any],
    camera_subentries: list[ConfigSubentryData],
) -> MockConfigEntry:
    """A hub entry with cameras."""
    return MockConfigEntry(
        domain=DOMAIN,
        title=str(storage_path),
        unique_id=str(storage_path),
        data={CONF_STORAGE_PATH: str(storage_path)},
        options=hub_options,
        subentries_data=camera_subentries,
        entry_id="01JPMDVRHUB000000000000000",
    )


def hub_like(
    base: MockConfigEntry, unique_id: str, cameras: list[ConfigSubentryData]
) -> MockConfigEntry:
    """A hub with `base`'s storage and options but cameras of the test's own."""
    return MockConfigEntry(
        domain=DOMAIN,
        unique_id=unique_id,
        data=dict(base.data),
        options=dict(base.options),
        subentries_data=cameras,
    )


@pytest.fixture
async def init_integration(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry
) -> AsyncGenerator[MockConfigEntry]:
    """Set up the hub, wait until every camera streams, and unload it afterwards."""
    mock_config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    await wait_for(
        lambda: all(c.session.available for c in mock_config_entry.runtime_data.cameras.values())
    )
    yield mock_config_entry
    if mock_config_entry.state.recoverable:
        await hass.config_entries.async_unload(mock_config_entry.entry_id)
        await hass.async_block_till_done()


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    """One in-memory Azurite (Microsoft's Azure Storage emulator) for the session."""
    with Azurite(memory_limit_mb=512) as server:
        yield server


def target_subentry(
    target_id: str, title: str, data: dict[str, Any], **options: Any
) -> ConfigSubentryData:
    """A sync target subentry for MockConfigEntry, as the target flow stores it."""
    return ConfigSubentryDataWithId(
        data={
            **data,
            CONF_UPLOAD: UPLOAD_EVENTS,
            CONF_CAMERAS: [],
            CONF_LABELS: [],
            CONF_DELETE_AFTER_UPLOAD: False,
            **options,
        },
        subentry_type=SUBENTRY_TARGET,
        subentry_id=target_id,
        title=title,
        unique_id=f"test:{target_id}",
    )

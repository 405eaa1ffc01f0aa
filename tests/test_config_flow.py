"""Config flow: the hub, its options and reconfigure, and the camera subentry flow."""

from __future__ import annotations

from collections.abc import Iterator
import logging
from pathlib import Path
from typing import Any

import av
from homeassistant.config_entries import SOURCE_RECONFIGURE, SOURCE_USER
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
import numpy as np
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.pm_dvr.config_flow import default_storage_path, unmask
from custom_components.pm_dvr.const import (
    CONF_DETECT_STREAM_URL,
    CONF_MAX_AGE_DAYS,
    CONF_MAX_EVENT_AGE_DAYS,
    CONF_MAX_EVENT_STORAGE_GB,
    CONF_MAX_STORAGE_GB,
    CONF_MIN_FREE_GB,
    CONF_MQTT_TOPIC,
    CONF_SEGMENT_SECONDS,
    CONF_STORAGE_PATH,
    DOMAIN,
    SUBENTRY_CAMERA,
)
from custom_components.pm_dvr.core.urls import strip_credentials

from .common import form_text, wait_for
from .conftest import as_subentry, camera_subentry
from .rig.rtsp import VP8, RtspServer
from .rig.sockets import SilentServer, UnansweredPort, closed_port

CAMERA_FORM = {
    "name": "Porch",
    "record": True,
    "audio": "auto",
    "pre_seconds": 5,
    "post_seconds": 20,
}


async def test_user_flow_creates_hub(hass: HomeAssistant, storage_path: Path) -> None:
    """The hub stores its path and proposes quotas for recordings and events (a fifth of it)
    that take 80% of free space together."""
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    assert result["type"] is FlowResultType.FORM
    assert result["data_schema"]({})[CONF_STORAGE_PATH] == default_storage_path(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_STORAGE_PATH: str(storage_path)}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == {CONF_STORAGE_PATH: str(storage_path)}
    options = result["options"]
    assert options[CONF_SEGMENT_SECONDS] == 10
    assert options[CONF_MAX_AGE_DAYS] == 0
    assert options[CONF_MQTT_TOPIC] == "pm_dvr/capture"
    assert options[CONF_MAX_STORAGE_GB] > 0
    assert CONF_MAX_EVENT_STORAGE_GB not in options  # automatic: a fifth of the storage quota
    assert (storage_path / "recordings").is_dir()
    assert (storage_path / "events").is_dir()
    entry = result["result"]
    assert entry.unique_id == str(storage_path)
    await hass.config_entries.async_unload(entry.entry_id)


@pytest.mark.parametrize(
    ("path", "error"),
    [
        ("relative/path", "storage_not_absolute"),
        ("/etc/pm_dvr", "storage_not_allowed"),
        ("FILE/sub", "storage_not_writable"),
    ],
)
async def test_user_flow_storage_errors(
    hass: HomeAssistant, storage_path: Path, tmp_path: Path, path: str, error: str
) -> None:
    """Bad paths are shown on the form, and the flow recovers once fixed."""
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    path = path.replace("FILE", str(blocker))
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_STORAGE_PATH: path}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_STORAGE_PATH: error}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_STORAGE_PATH: str(storage_path)}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.config_entries.async_unload(result["result"].entry_id)


async def test_user_flow_duplicate_path(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, storage_path: Path
) -> None:
    """One hub per storage folder."""
    mock_config_entry.add_to_hass(hass)
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_STORAGE_PATH: str(storage_path)}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_reconfigure_moves_storage(
    hass: HomeAssistant, init_integration: MockConfigEntry, tmp_path: Path
) -> None:
    """Reconfigure validates the new path, updates the entry and reloads it."""
    entry = init_integration
    result = await entry.start_reconfigure_flow(hass)
    assert result["type"] is FlowResultType.FORM
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_STORAGE_PATH: "not/absolute"}
    )
    assert result["errors"] == {CONF_STORAGE_PATH: "storage_not_absolute"}
    new_path = tmp_path / "elsewhere"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_STORAGE_PATH: str(new_path)}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    assert entry.data[CONF_STORAGE_PATH] == str(new_path)
    assert entry.unique_id == str(new_path)
    assert entry.runtime_data.storage == new_path
    assert (new_path / "recordings").is_dir()


async def test_reconfigure_to_other_hubs_path(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, tmp_path: Path
) -> None:
    """Two hubs can never share a folder."""
    mock_config_entry.add_to_hass(hass)
    other_path = tmp_path / "other"
    other = MockConfigEntry(
        domain=DOMAIN, unique_id=str(other_path), data={CONF_STORAGE_PATH: str(other_path)}
    )
    other.add_to_hass(hass)
    result = await mock_config_entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_STORAGE_PATH: str(other_path)}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_options_flow(hass: HomeAssistant, init_integration: MockConfigEntry) -> None:
    """Options are stored as clean numbers and the hub reloads with them."""
    entry = init_integration
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["type"] is FlowResultType.FORM
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {
            CONF_SEGMENT_SECONDS: 6.0,
            CONF_MAX_STORAGE_GB: 12.34,
            CONF_MAX_AGE_DAYS: 7.0,
            CONF_MQTT_TOPIC: "  home/dvr  ",
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert entry.options == {
        CONF_SEGMENT_SECONDS: 6,
        CONF_MAX_STORAGE_GB: 12.3,
        CONF_MAX_AGE_DAYS: 7,
        CONF_MQTT_TOPIC: "home/dvr",
        CONF_MAX_EVENT_STORAGE_GB: None,  # automatic: a fifth of the storage quota
        CONF_MAX_EVENT_AGE_DAYS: 0,
        CONF_MIN_FREE_GB: None,
    }
    assert entry.runtime_data.settings_snapshot[1] == entry.options


async def test_options_flow_retention_limits(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """Event limits and the free-space floor are stored, shown again, and clearing the floor
    goes back to automatic; limits alone apply without reloading the hub."""
    entry = init_integration
    data = entry.runtime_data
    assert data.retention is not None
    retention = data.retention
    runs = retention.runs
    result = await hass.config_entries.options.async_init(entry.entry_id)
    form = {
        CONF_SEGMENT_SECONDS: 2,
        CONF_MAX_STORAGE_GB: 5.0,
        CONF_MAX_AGE_DAYS: 0,
        CONF_MAX_EVENT_STORAGE_GB: 2.26,
        CONF_MAX_EVENT_AGE_DAYS: 30.0,
        CONF_MIN_FREE_GB: 1.54,
    }
    result = await hass.config_entries.options.async_configure(result["flow_id"], form)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert entry.options[CONF_MAX_EVENT_STORAGE_GB] == 2.3
    assert entry.options[CONF_MAX_EVENT_AGE_DAYS] == 30
    assert entry.options[CONF_MIN_FREE_GB] == 1.5
    assert entry.runtime_data is data  # not reloaded: the cameras kept recording
    await wait_for(lambda: retention.runs > runs)  # the new limits were applied on a run
    assert retention.retention.config.min_free_gb == 1.5
    runs = retention.runs

    result = await hass.config_entries.options.async_init(entry.entry_id)
    schema = result["data_schema"].schema
    suggested = {
        str(key): key.description.get("suggested_value")
        for key in schema
        if getattr(key, "description", None)
    }
    assert suggested[CONF_MIN_FREE_GB] == 1.5
    assert suggested[CONF_MAX_EVENT_STORAGE_GB] == 2.3
    form.pop(CONF_MIN_FREE_GB)
    result = await hass.config_entries.options.async_configure(result["flow_id"], form)
    await hass.async_block_till_done()
    assert entry.options[CONF_MIN_FREE_GB] is None
    await wait_for(lambda: retention.runs > runs)
    assert retention.retention.config.min_free_gb is None


def suggested_values(result: Any) -> dict[str, Any]:
    schema = result["data_schema"].schema
    return {
        str(key): key.description.get("suggested_value")
        for key in schema
        if getattr(key, "description", None)
    }


async def test_options_flow_proposes_the_event_quota(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """A hub without an event quota gets a fifth of its storage quota: the form proposes it,
    and sent back as proposed it stays automatic, following a new storage quota; a value of the
    user's own (0 for unlimited included) is kept as set."""
    entry = init_integration
    retention = entry.runtime_data.retention
    assert retention is not None
    assert CONF_MAX_EVENT_STORAGE_GB not in entry.options
    assert retention.retention.config.max_event_storage_gb == 1.0  # 20 % of 5 GB
    form = {
        CONF_SEGMENT_SECONDS: 2,
        CONF_MAX_STORAGE_GB: 5.0,
        CONF_MAX_AGE_DAYS: 0,
        CONF_MAX_EVENT_AGE_DAYS: 0,
    }

    async def submit(**values: Any) -> dict[str, Any]:
        result = await hass.config_entries.options.async_init(entry.entry_id)
        proposed = suggested_values(result)
        result = await hass.config_entries.options.async_configure(
            result["flow_id"], {**form, **values}
        )
        assert result["type"] is FlowResultType.CREATE_ENTRY
        await hass.async_block_till_done()
        return proposed

    proposed = await submit(**{CONF_MAX_STORAGE_GB: 20.0, CONF_MAX_EVENT_STORAGE_GB: 1.0})
    assert proposed[CONF_MAX_EVENT_STORAGE_GB] == 1.0
    assert entry.options[CONF_MAX_EVENT_STORAGE_GB] is None
    await wait_for(lambda: retention.retention.config.max_event_storage_gb == 4.0)

    proposed = await submit(**{CONF_MAX_STORAGE_GB: 20.0, CONF_MAX_EVENT_STORAGE_GB: 2.5})
    assert proposed[CONF_MAX_EVENT_STORAGE_GB] == 4.0
    assert entry.options[CONF_MAX_EVENT_STORAGE_GB] == 2.5
    await wait_for(lambda: retention.retention.config.max_event_storage_gb == 2.5)

    # Set: shown as set, kept as set even if it equals the share; 0 is unlimited.
    proposed = await submit(**{CONF_MAX_STORAGE_GB: 20.0, CONF_MAX_EVENT_STORAGE_GB: 4.0})
    assert proposed[CONF_MAX_EVENT_STORAGE_GB] == 2.5
    assert entry.options[CONF_MAX_EVENT_STORAGE_GB] == 4.0
    await submit(**{CONF_MAX_STORAGE_GB: 20.0, CONF_MAX_EVENT_STORAGE_GB: 0})
    assert entry.options[CONF_MAX_EVENT_STORAGE_GB] == 0
    await wait_for(lambda: retention.retention.config.max_event_storage_gb == 0)

    # Left empty: automatic again.
    await submit(**{CONF_MAX_STORAGE_GB: 10.0})
    assert entry.options[CONF_MAX_EVENT_STORAGE_GB] is None
    await wait_for(lambda: retention.retention.config.max_event_storage_gb == 2.0)


async def _start_camera_flow(hass: HomeAssistant, entry: MockConfigEntry) -> dict[str, Any]:
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_CAMERA), context={"source": SOURCE_USER}
    )
    assert result["type"] is FlowResultType.FORM
    return result


@pytest.fixture
def empty_hub(
    hass: HomeAssistant, storage_path: Path, hub_options: dict[str, Any]
) -> MockConfigEntry:
    """A hub with no camera yet, not set up (the subentry flow needs only the entry)."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=str(storage_path),
        data={CONF_STORAGE_PATH: str(storage_path)},
        options=hub_options,
    )
    entry.add_to_hass(hass)
    return entry


async def test_camera_flow_adds_camera(
    hass: HomeAssistant, empty_hub: MockConfigEntry, rtsp_server: RtspServer
) -> None:
    """The stream is tested, and what it reports is stored with a folder slug."""
    result = await _start_camera_flow(hass, empty_hub)
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {**CAMERA_FORM, "stream_url": rtsp_server.url("/cam")}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    subentry = next(iter(empty_hub.subentries.values()))
    assert subentry.title == "Porch"
    assert subentry.unique_id == rtsp_server.url("/cam")
    assert subentry.data["slug"] == "porch"
    assert subentry.data["pre_seconds"] == 5
    assert subentry.data[CONF_DETECT_STREAM_URL] is None
    # Motion defaults (the detector's own for threshold and size).
    assert subentry.data["motion"] is True
    assert subentry.data["motion_threshold"] == 10
    assert subentry.data["motion_min_size"] == 0.02
    assert subentry.data["motion_off_delay"] == 30
    assert subentry.data["motion_zones"] is None
    assert subentry.data["motion_events"] is False
    assert subentry.data["stream_info"] == {
        "video_codec": "h264",
        "width": 640,
        "height": 360,
        "fps": 25.0,
        "audio_codec": None,
    }


async def test_camera_flow_slug_is_unique(
    hass: HomeAssistant, empty_hub: MockConfigEntry, rtsp_server: RtspServer
) -> None:
    """Two cameras with one name get separate folders; a sub-stream is tested too."""
    for path in ("/cam", "/cam2"):
        result = await _start_camera_flow(hass, empty_hub)
        result = await hass.config_entries.subentries.async_configure(
            result["flow_id"],
            {
                **CAMERA_FORM,
                "name": "Çam!",
                "stream_url": rtsp_server.url(path),
                CONF_DETECT_STREAM_URL: rtsp_server.url("/alaw"),
            },
        )
        assert result["type"] is FlowResultType.CREATE_ENTRY
    slugs = sorted(s.data["slug"] for s in empty_hub.subentries.values())
    assert slugs == ["cam", "cam-2"]


async def _camera_error(
    hass: HomeAssistant, entry: MockConfigEntry, form: dict[str, Any]
) -> dict[str, str]:
    result = await _start_camera_flow(hass, entry)
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {**CAMERA_FORM, **form}
    )
    assert result["type"] is FlowResultType.FORM
    assert not empty_hub_subentries(entry)
    # Credentials typed into the form are never echoed back in clear.
    shown = result["data_schema"]({})
    assert "s3cret" not in str(shown)
    errors: dict[str, str] = result["errors"]
    return errors


def empty_hub_subentries(entry: MockConfigEntry) -> list[str]:
    return list(entry.subentries)


def write_mpeg4_file(path: Path) -> None:
    """A short MPEG-4 Part 2 video: decodable, but not copyable into browser MP4."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(10):
            frame = av.VideoFrame.from_ndarray(
                np.full((48, 64, 3), i * 20, np.uint8), format="rgb24"
            )
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


async def test_camera_flow_errors(
    hass: HomeAssistant,
    empty_hub: MockConfigEntry,
    rtsp_server: RtspServer,
    rtsp_auth: RtspServer,
    tmp_path: Path,
) -> None:
    """Each failure of the stream test shows its own translated error."""
    closed_port = rtsp_server.url("/cam").replace(str(rtsp_server.port), "1")
    assert await _camera_error(hass, empty_hub, {"stream_url": closed_port}) == {
        "stream_url": "cannot_connect"
    }
    assert await _camera_error(
        hass, empty_hub, {"stream_url": rtsp_auth.url("/cam", "admin:wrong")}
    ) == {"stream_url": "invalid_auth"}
    assert await _camera_error(hass, empty_hub, {"stream_url": rtsp_server.url("/missing")}) == {
        "stream_url": "not_found"
    }
    assert await _camera_error(hass, empty_hub, {"stream_url": "ftp://camera/stream"}) == {
        "stream_url": "invalid_url"
    }
    mpeg4 = tmp_path / "old.avi"
    await hass.async_add_executor_job(write_mpeg4_file, mpeg4)
    assert await _camera_error(hass, empty_hub, {"stream_url": str(mpeg4)}) == {
        "stream_url": "unsupported_codec"
    }
    assert await _camera_error(
        hass,
        empty_hub,
        {"stream_url": rtsp_server.url("/cam"), CONF_DETECT_STREAM_URL: closed_port},
    ) == {CONF_DETECT_STREAM_URL: "cannot_connect"}
    assert await _camera_error(
        hass, empty_hub, {"stream_url": rtsp_server.url("/cam"), "name": "  "}
    ) == {"name": "name_required"}


@pytest.fixture
def silent_server(socket_enabled: None) -> Iterator[SilentServer]:
    """A port that accepts connections and never answers."""
    with SilentServer() as server:
        yield server


@pytest.fixture
def hanging_up_server(socket_enabled: None) -> Iterator[SilentServer]:
    """A port that accepts connections and closes them at once."""
    with SilentServer(close=True) as server:
        yield server


@pytest.fixture
def unanswered_port(socket_enabled: None) -> Iterator[UnansweredPort]:
    """A port whose connection attempts get no answer, as an unroutable address's."""
    with UnansweredPort() as port:
        yield port


@pytest.fixture
def rtsp_vp8() -> Iterator[RtspServer]:
    """A real RTSP camera whose video is VP8."""
    with RtspServer({"/vp8": VP8}) as server:
        yield server


async def test_camera_flow_unreachable_and_silent_cameras(
    hass: HomeAssistant,
    empty_hub: MockConfigEntry,
    silent_server: SilentServer,
    hanging_up_server: SilentServer,
    unanswered_port: UnansweredPort,
) -> None:
    """A camera that accepts the connection and never answers is "timed out"; one that cannot
    be reached or hangs up is "cannot connect". Neither is an unsupported codec (issue #16)."""
    assert await _camera_error(hass, empty_hub, {"stream_url": silent_server.url()}) == {
        "stream_url": "timed_out"
    }
    assert await _camera_error(hass, empty_hub, {"stream_url": hanging_up_server.url()}) == {
        "stream_url": "cannot_connect"
    }
    assert await _camera_error(hass, empty_hub, {"stream_url": unanswered_port.url()}) == {
        "stream_url": "cannot_connect"
    }
    assert silent_server.accepted == 1
    assert hanging_up_server.accepted == 1


async def test_camera_flow_other_codec_over_rtsp(
    hass: HomeAssistant, empty_hub: MockConfigEntry, rtsp_vp8: RtspServer
) -> None:
    """A camera that answers with video pm_dvr cannot copy: the one "unsupported codec"."""
    assert await _camera_error(hass, empty_hub, {"stream_url": rtsp_vp8.url("/vp8")}) == {
        "stream_url": "unsupported_codec"
    }


async def test_camera_flow_auth_masked_on_error(
    hass: HomeAssistant, empty_hub: MockConfigEntry, rtsp_auth: RtspServer
) -> None:
    """After an error the form shows the URL with its password masked, and accepts it back."""
    result = await _start_camera_flow(hass, empty_hub)
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {
            **CAMERA_FORM,
            "stream_url": rtsp_auth.url("/cam", "admin:s3cret"),
            CONF_DETECT_STREAM_URL: rtsp_auth.url("/nope", "admin:s3cret"),
        },
    )
    assert result["errors"] == {CONF_DETECT_STREAM_URL: "not_found"}
    assert "s3cret" not in str(result["data_schema"]({}))
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {**CAMERA_FORM, "stream_url": rtsp_auth.url("/cam", "admin:s3cret")}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    subentry = next(iter(empty_hub.subentries.values()))
    assert subentry.data["stream_url"] == rtsp_auth.url("/cam", "admin:s3cret")
    assert subentry.unique_id == rtsp_auth.url("/cam")


async def test_camera_flow_duplicate_url(
    hass: HomeAssistant, empty_hub: MockConfigEntry, rtsp_server: RtspServer
) -> None:
    """The same stream (whatever the login) is not recorded twice."""
    hass.config_entries.async_add_subentry(
        empty_hub,
        as_subentry(camera_subentry("Front", rtsp_server.url("/cam"), "front")),
    )
    result = await _start_camera_flow(hass, empty_hub)
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {**CAMERA_FORM, "stream_url": rtsp_server.url("/cam", "u:p")}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_camera_reconfigure(
    hass: HomeAssistant, empty_hub: MockConfigEntry, rtsp_auth: RtspServer, rtsp_server: RtspServer
) -> None:
    """Reconfigure shows a masked URL, keeps the password when left masked, keeps the slug."""
    url = rtsp_auth.url("/cam", "admin:s3cret")
    hass.config_entries.async_add_subentry(
        empty_hub, as_subentry(camera_subentry("Front", url, "front"))
    )
    hass.config_entries.async_add_subentry(
        empty_hub, as_subentry(camera_subentry("Other", rtsp_server.url("/cam2"), "other"))
    )
    subentry_id = next(s for s, v in empty_hub.subentries.items() if v.title == "Front")
    result = await hass.config_entries.subentries.async_init(
        (empty_hub.entry_id, SUBENTRY_CAMERA),
        context={"source": SOURCE_RECONFIGURE, "subentry_id": subentry_id},
    )
    assert result["type"] is FlowResultType.FORM
    shown = result["data_schema"]({})
    assert shown["stream_url"] == rtsp_auth.url("/cam", "admin:***")
    form = {**CAMERA_FORM, "name": "Front gate"}
    # Pointing it at another camera's stream is refused.
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {**form, "stream_url": rtsp_server.url("/cam2")}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    result = await hass.config_entries.subentries.async_init(
        (empty_hub.entry_id, SUBENTRY_CAMERA),
        context={"source": SOURCE_RECONFIGURE, "subentry_id": subentry_id},
    )
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {**form, "stream_url": shown["stream_url"]}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    subentry = empty_hub.subentries[subentry_id]
    assert subentry.title == "Front gate"
    assert subentry.data["stream_url"] == url
    assert subentry.data["slug"] == "front"


async def test_camera_reconfigure_with_substream(
    hass: HomeAssistant, empty_hub: MockConfigEntry, rtsp_server: RtspServer
) -> None:
    """A stored sub-stream is shown masked too."""
    hass.config_entries.async_add_subentry(
        empty_hub,
        as_subentry(
            camera_subentry(
                "Yard",
                rtsp_server.url("/cam"),
                "yard",
                detect_stream_url=rtsp_server.url("/cam2", "u:pw"),
            )
        ),
    )
    subentry_id = next(iter(empty_hub.subentries))
    result = await hass.config_entries.subentries.async_init(
        (empty_hub.entry_id, SUBENTRY_CAMERA),
        context={"source": SOURCE_RECONFIGURE, "subentry_id": subentry_id},
    )
    suggested = [
        key.description["suggested_value"]
        for key in result["data_schema"].schema
        if str(key) == CONF_DETECT_STREAM_URL
    ]
    assert suggested == [rtsp_server.url("/cam2", "u:***")]


@pytest.mark.parametrize(
    "zones",
    [
        "not json",
        '{"mode": "ignore"}',
        "[1]",
        '[{"points": [[0, 0], [1, 0]]}]',
        '[{"points": [[0, 0], [1, 0], [1, "x"]]}]',
        '[{"points": [[0, 0], [1, 0], [1, 2]]}]',
        '[{"mode": "maybe", "points": [[0, 0], [1, 0], [1, 1]]}]',
    ],
)
async def test_camera_flow_invalid_zones(
    hass: HomeAssistant, empty_hub: MockConfigEntry, zones: str
) -> None:
    """Zones that are not a list of polygons in 0..1 show a translated error (no stream test)."""
    assert await _camera_error(
        hass, empty_hub, {"stream_url": "rtsp://127.0.0.1:1/x", "motion_zones": zones}
    ) == {"motion_zones": "invalid_zones"}


async def test_camera_flow_motion_settings(
    hass: HomeAssistant, empty_hub: MockConfigEntry, rtsp_server: RtspServer
) -> None:
    """Motion settings are normalised and stored with the camera."""
    zones = '[{"mode": "only", "points": [[0, 0.5], [1, 0.5], [1, 1]]}]'
    result = await _start_camera_flow(hass, empty_hub)
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {
            **CAMERA_FORM,
            "stream_url": rtsp_server.url("/cam"),
            "motion": False,
            "motion_threshold": 25.0,
            "motion_min_size": 0.1234,
            "motion_off_delay": 5.0,
            "motion_zones": f"  {zones}\n",
            "motion_events": True,
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    data = next(iter(empty_hub.subentries.values())).data
    assert data["motion"] is False
    assert data["motion_threshold"] == 25
    assert data["motion_min_size"] == 0.123
    assert data["motion_off_delay"] == 5
    assert data["motion_zones"] == zones
    assert data["motion_events"] is True


def test_url_helpers() -> None:
    """Credential stripping and unmasking."""
    assert strip_credentials("rtsp://u:p@host:554/a") == "rtsp://host:554/a"
    assert strip_credentials("rtsp://host/a") == "rtsp://host/a"
    assert unmask("rtsp://u:***@h/a", "rtsp://u:p@h/a") == "rtsp://u:p@h/a"
    assert unmask("rtsp://u:***@h/b", "rtsp://u:p@h/a") == "rtsp://u:***@h/b"
    assert unmask("rtsp://h/a", "rtsp://u:p@h/a") == "rtsp://h/a"
    assert unmask("rtsp://u:***@h/a", "rtsp://h/a") == "rtsp://u:***@h/a"
    assert unmask(" rtsp://h/a ", None) == "rtsp://h/a"
    stored = "rtsp://h/a?user=admin&password=hunter2"
    assert unmask("rtsp://h/a?user=admin&password=***", stored) == stored
    assert unmask(" rtsp://h/a?user=admin&password=*** ", stored) == stored
    # Anything else changed: what was typed (the stored password goes nowhere new).
    assert unmask("rtsp://h/b?user=admin&password=***", stored) == (
        "rtsp://h/b?user=admin&password=***"
    )
    assert unmask("rtsp://h/a?user=admin&password=new", stored) == (
        "rtsp://h/a?user=admin&password=new"
    )


QUERY_LOGIN = "?user=admin&password=hunter2"


async def test_camera_flow_query_password_never_shown(
    hass: HomeAssistant,
    empty_hub: MockConfigEntry,
    rtsp_server: RtspServer,
    socket_enabled: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A Reolink-style URL (`?user=admin&password=...`): a failing test shows it masked; once it
    works, the camera's unique id has no login and the reconfigure form shows `password=***`,
    which keeps the stored password when sent back."""
    caplog.set_level(logging.DEBUG)
    closed = f"rtsp://127.0.0.1:{closed_port()}/cam{QUERY_LOGIN}"
    result = await _start_camera_flow(hass, empty_hub)
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {**CAMERA_FORM, "stream_url": closed, CONF_DETECT_STREAM_URL: closed},
    )
    assert result["errors"] == {"stream_url": "cannot_connect"}
    shown = result["data_schema"]({})
    assert shown["stream_url"] == closed.replace("hunter2", "***")
    assert "hunter2" not in form_text(result)

    url = rtsp_server.url("/cam") + QUERY_LOGIN
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {**CAMERA_FORM, "stream_url": url}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert "hunter2" not in form_text(result)
    subentry = next(iter(empty_hub.subentries.values()))
    assert subentry.data["stream_url"] == url
    assert subentry.unique_id == rtsp_server.url("/cam")
    assert subentry.title == "Porch"

    # The same stream with another login is the same camera.
    result = await _start_camera_flow(hass, empty_hub)
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {**CAMERA_FORM, "stream_url": rtsp_server.url("/cam") + "?user=viewer&PassWord=x"},
    )
    assert result["reason"] == "already_configured"

    result = await hass.config_entries.subentries.async_init(
        (empty_hub.entry_id, SUBENTRY_CAMERA),
        context={"source": SOURCE_RECONFIGURE, "subentry_id": subentry.subentry_id},
    )
    assert result["data_schema"]({})["stream_url"] == url.replace("hunter2", "***")
    assert "hunter2" not in form_text(result)
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {**CAMERA_FORM, "name": "Porch 2", "stream_url": url.replace("hunter2", "***")},
    )
    assert result["reason"] == "reconfigure_successful"
    assert subentry.subentry_id in empty_hub.subentries
    subentry = empty_hub.subentries[subentry.subentry_id]
    assert subentry.data["stream_url"] == url
    assert subentry.unique_id == rtsp_server.url("/cam")
    assert "hunter2" not in caplog.text

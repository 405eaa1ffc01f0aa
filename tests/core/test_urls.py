"""A camera's secrets in every URL form: masked for logs and forms, gone from its identity."""

from __future__ import annotations

import pytest

from custom_components.pm_dvr.core.urls import (
    INVALID_URL,
    SECRET_PARAMS,
    is_secret_param,
    mask_url,
    strip_credentials,
)

SECRET = "hunter2"


@pytest.mark.parametrize("name", sorted(SECRET_PARAMS))
@pytest.mark.parametrize("scheme", ["rtsp", "rtsps", "http"])
def test_every_secret_parameter(name: str, scheme: str) -> None:
    """Each secret parameter, in every scheme, upper or mixed case: masked, and not in the id."""
    for spelling in (name, name.upper(), name.capitalize()):
        url = f"{scheme}://cam:554/stream?user=admin&{spelling}={SECRET}&channel=1"
        assert mask_url(url) == f"{scheme}://cam:554/stream?user=admin&{spelling}=***&channel=1"
        assert strip_credentials(url) == f"{scheme}://cam:554/stream?channel=1"


@pytest.mark.parametrize(
    ("url", "masked", "identity"),
    [
        # Userinfo (the user stays readable; the id has no login at all).
        (
            "rtsp://admin:s3cret@cam:554/live",
            "rtsp://admin:***@cam:554/live",
            "rtsp://cam:554/live",
        ),
        ("rtsp://admin@cam/live", "rtsp://admin@cam/live", "rtsp://cam/live"),
        ("rtsp://admin:p@ss@cam/live", "rtsp://admin:***@cam/live", "rtsp://cam/live"),
        ("rtsp://admin:@cam/live", "rtsp://admin:***@cam/live", "rtsp://cam/live"),
        ("rtsp://cam/live", "rtsp://cam/live", "rtsp://cam/live"),
        # Reolink, Dahua, Foscam: the login in the query.
        (
            f"rtsp://cam/stream?user=admin&password={SECRET}",
            "rtsp://cam/stream?user=admin&password=***",
            "rtsp://cam/stream",
        ),
        (
            f"rtsp://cam/stream?User=admin&PassWord={SECRET}",
            "rtsp://cam/stream?User=admin&PassWord=***",
            "rtsp://cam/stream",
        ),
        (
            "http://cam/cgi-bin/CGIStream.cgi?cmd=GetMJStream&usr=admin&pwd=hun%74er2",
            "http://cam/cgi-bin/CGIStream.cgi?cmd=GetMJStream&usr=admin&pwd=***",
            "http://cam/cgi-bin/CGIStream.cgi?cmd=GetMJStream",
        ),
        # A %-encoded name, a value with = and ; (a password, not separators), several secrets.
        (f"rtsp://cam/s?pass%77ord={SECRET}", "rtsp://cam/s?pass%77ord=***", "rtsp://cam/s"),
        (
            f"rtsp://cam/s?channel=1&pwd={SECRET};x=y&token=t0k=&subtype=0",
            "rtsp://cam/s?channel=1&pwd=***&token=***&subtype=0",
            "rtsp://cam/s?channel=1&subtype=0",
        ),
        (
            f"rtsp://cam/s?channel=1;password={SECRET}",
            "rtsp://cam/s?channel=1;password=***",
            "rtsp://cam/s?channel=1",
        ),
        (
            f"rtsp://cam/s?password=a&password={SECRET}",
            "rtsp://cam/s?password=***&password=***",
            "rtsp://cam/s",
        ),
        # Userinfo and query together; a fragment kept, and masked too.
        (
            f"rtsps://admin:{SECRET}@cam:322/s?channel=2&password={SECRET}#view",
            "rtsps://admin:***@cam:322/s?channel=2&password=***#view",
            "rtsps://cam:322/s?channel=2#view",
        ),
        (
            f"http://cam/s?channel=2#user=admin&access_token={SECRET}",
            "http://cam/s?channel=2#user=admin&access_token=***",
            "http://cam/s?channel=2",
        ),
        # A longer name ending in a secret word; a parameter that merely starts like one.
        (f"http://cam/s?api-key={SECRET}", "http://cam/s?api-key=***", "http://cam/s"),
        ("rtsp://cam/s?keyframe=1&passive=1", "rtsp://cam/s?keyframe=1&passive=1", None),
        # Nothing to hide: empty values, a bare name, empty parameters.
        ("rtsp://cam/s?password=&a=1", "rtsp://cam/s?password=&a=1", "rtsp://cam/s?a=1"),
        ("rtsp://cam/s?password", "rtsp://cam/s?password", "rtsp://cam/s?password"),
        (f"rtsp://cam/s?&password={SECRET}&", "rtsp://cam/s?&password=***&", "rtsp://cam/s"),
        # XMEye and other DVRs: the login in the path.
        (
            f"rtsp://dvr:554/user=admin&password={SECRET}&channel=1&stream=0.sdp?real_stream",
            "rtsp://dvr:554/user=admin&password=***&channel=1&stream=0.sdp?real_stream",
            "rtsp://dvr:554/user=admin&password=&channel=1&stream=0.sdp?real_stream",
        ),
        (
            "rtsp://dvr:554/user=admin_password=hun_ter2_channel=1_stream=0.sdp",
            "rtsp://dvr:554/user=admin_password=***_channel=1_stream=0.sdp",
            "rtsp://dvr:554/user=admin_password=_channel=1_stream=0.sdp",
        ),
        # Typed without a scheme (urlsplit would read `admin:` as one).
        (
            f"admin:{SECRET}@cam/stream?password={SECRET}",
            "admin:***@cam/stream?password=***",
            "cam/stream",
        ),
        # Local files (tests) and nonsense.
        ("/tmp/clip.mp4", "/tmp/clip.mp4", "/tmp/clip.mp4"),
        ("/tmp/a?b.mp4", "/tmp/a?b.mp4", "/tmp/a?b.mp4"),
        ("", "", ""),
        ("http://[::1", INVALID_URL, INVALID_URL),
    ],
)
def test_url_forms(url: str, masked: str, identity: str | None) -> None:
    """Masked keeps everything but the secrets as typed; the identity has no login at all."""
    assert mask_url(url) == masked
    assert strip_credentials(url) == (url if identity is None else identity)
    for shown in (masked, strip_credentials(url)):
        assert SECRET not in shown
        assert "s3cret" not in shown


def test_mask_of_choice() -> None:
    """Diagnostics mask with HA's own marker."""
    assert mask_url(f"rtsp://a:b@cam/s?pwd={SECRET}", "X") == "rtsp://a:X@cam/s?pwd=X"


def test_identity_is_stable_and_trimmed() -> None:
    """A new password, another user or stray spaces: still the same camera."""
    ids = {
        strip_credentials(url)
        for url in (
            "rtsp://cam/s?channel=1&user=admin&password=old",
            " rtsp://cam/s?channel=1&username=viewer&password=new ",
            "rtsp://viewer:new@cam/s?channel=1",
        )
    }
    assert ids == {"rtsp://cam/s?channel=1"}


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("password", True),
        ("PASSWD", True),
        ("pass%77ord", True),
        ("access_token", True),
        ("x.sig", True),
        ("user", False),
        ("keyframe", False),
        ("passive", False),
        ("", False),
    ],
)
def test_is_secret_param(name: str, secret: bool) -> None:
    assert is_secret_param(name) is secret

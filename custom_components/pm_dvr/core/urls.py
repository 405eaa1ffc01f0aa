"""Stream URL helpers: validation, and a camera's secrets kept out of logs, forms and ids.

A camera URL can carry a secret in three places, and each is handled:

- its userinfo: `rtsp://admin:secret@host/stream`;
- its query (or fragment) parameters: `rtsp://host/stream?user=admin&password=secret`, as Reolink,
  Dahua and Foscam cameras take them; the names in SECRET_PARAMS, in any case, %-encoded or not;
- parameters in its path: `rtsp://host:554/user=admin&password=secret&channel=1&stream=0.sdp` or
  `.../user=admin_password=secret_channel=1...` (XMEye and other cheap DVRs).

`mask_url` shows a URL with every secret replaced by `***` (the rest kept as typed, so the form
can recognise its own mask), `strip_credentials` gives the camera's identity: the URL with no
login at all, stable when a password changes.
"""

from __future__ import annotations

from pathlib import Path
import re
from typing import Final, NamedTuple
from urllib.parse import SplitResult, unquote_plus, urlsplit, urlunsplit

NETWORK_SCHEMES = frozenset({"rtsp", "rtsps", "http", "https"})
MASK: Final = "***"
INVALID_URL: Final = "<invalid url>"
# Query parameters whose value is a secret (compared in lower case, after %-decoding), also as
# the last word of a longer name (`access_token`, `api-key`).
SECRET_PARAMS: Final = frozenset(
    {"password", "pass", "pwd", "passwd", "token", "key", "auth", "sig"}
)
_WORDS: Final = re.compile(r"[_.-]")
# Query parameters that name the login: shown, but no part of a camera's identity.
LOGIN_PARAMS: Final = frozenset({"user", "username", "usr", "login"})
# A `name=value` pair in a path: the name starts a segment or follows `&`, `;` or `_`; the value
# ends at the next separator, or at `_` when another pair follows (`user=a_password=b_channel=1`).
_PATH_PAIR: Final = re.compile(
    r"(?<![^/&;_])(?P<name>[A-Za-z]+)=(?P<value>[^/&;?#]*?)(?=[/&;]|_[A-Za-z]+=|$)"
)


class _Param(NamedTuple):
    """One parameter of a query: what came before it, its name, its value (None: no `=`)."""

    separator: str
    name: str
    value: str | None

    def text(self, value: str | None = None) -> str:
        value = self.value if value is None else value
        return f"{self.separator}{self.name}" + ("" if value is None else f"={value}")


def param_name(raw: str) -> str:
    """A parameter's name as compared: %-decoded, trimmed, in lower case."""
    return unquote_plus(raw).strip().lower()


def is_secret_param(name: str) -> bool:
    """Whether a parameter of this name holds a secret (`PassWord`, `pass%77ord`, `api_key`)."""
    return _WORDS.split(param_name(name))[-1] in SECRET_PARAMS


def _params(text: str) -> list[_Param]:
    """The `&`- or `;`-separated parameters of a query, as typed.

    A secret's value runs to the next `&`: a `;` in a password is part of it, never a separator
    that would leave the rest of the password in view.
    """
    params: list[_Param] = []
    start, separator = 0, ""
    while True:
        end = _find(text, start, "&;")
        name, equals, value = text[start:end].partition("=")
        if equals and is_secret_param(name):
            end = _find(text, start, "&")
            value = text[start:end].partition("=")[2]
        params.append(_Param(separator, name, value if equals else None))
        if end == len(text):
            return params
        separator, start = text[end], end + 1


def _find(text: str, start: int, separators: str) -> int:
    """The index of the first of `separators` at or after `start`, else the text's length."""
    found = [i for i in (text.find(s, start) for s in separators) if i >= 0]
    return min(found, default=len(text))


def _mask_params(text: str, mask: str) -> str:
    if not text:
        return text
    return "".join(
        param.text(mask) if param.value and is_secret_param(param.name) else param.text()
        for param in _params(text)
    )


def _in_identity(param: _Param) -> bool:
    """Whether a parameter is part of a camera's identity: neither a login, a secret nor empty."""
    if param.value is None:
        return bool(param.name)
    return not is_secret_param(param.name) and param_name(param.name) not in LOGIN_PARAMS


def _strip_params(text: str) -> str:
    """The parameters that neither hold a secret nor name the login, separators kept."""
    if not text:
        return text
    kept = [param for param in _params(text) if _in_identity(param)]
    if not kept:
        return ""
    return "".join([kept[0]._replace(separator="").text(), *(param.text() for param in kept[1:])])


def _replace_path_secrets(path: str, value: str) -> str:
    return _PATH_PAIR.sub(
        lambda m: f"{m['name']}={value}" if is_secret_param(m["name"]) and m["value"] else m[0],
        path,
    )


def _split(url: str) -> tuple[SplitResult, str] | None:
    """The URL's parts, and the prefix added to parse it (to take off again), or None if invalid.

    `admin:secret@host/stream` typed without its scheme would read as a scheme `admin` and a
    path holding the password: it is parsed as the network location it is.
    """
    prefix = "//" if "@" in url.split("/", 1)[0] and "//" not in url else ""
    try:
        return urlsplit(prefix + url), prefix
    except ValueError:
        return None


def mask_url(url: str, mask: str = MASK) -> str:
    """The URL with every secret replaced by `mask` (`rtsp://admin:***@host/s?pwd=***`).

    Everything else is kept as typed, so a form can show the URL and recognise its own mask.
    """
    split = _split(url)
    if split is None:
        return INVALID_URL
    parts, prefix = split
    netloc, path = parts.netloc, parts.path
    if netloc:
        user, at, host = netloc.rpartition("@")
        if ":" in user:
            netloc = f"{user.partition(':')[0]}:{mask}{at}{host}"
        path = _replace_path_secrets(path, mask)
    masked = urlunsplit(
        parts._replace(
            netloc=netloc,
            path=path,
            query=_mask_params(parts.query, mask),
            fragment=_mask_params(parts.fragment, mask),
        )
    )
    return masked.removeprefix(prefix)


def strip_credentials(url: str) -> str:
    """A camera's identity: its URL with no userinfo and no login or secret parameters.

    Cameras are the same whatever login reaches them, and the identity never holds a password:
    it becomes the camera's unique id, which Home Assistant shows and stores in the clear.
    """
    split = _split(url.strip())
    if split is None:
        return INVALID_URL
    parts, prefix = split
    stripped = urlunsplit(
        parts._replace(
            netloc=parts.netloc.rpartition("@")[2],
            path=_replace_path_secrets(parts.path, "") if parts.netloc else parts.path,
            query=_strip_params(parts.query),
            fragment=_strip_params(parts.fragment),
        )
    )
    return stripped.removeprefix(prefix)


def is_network_url(url: str) -> bool:
    """Whether the URL names a network stream (rather than a local file used for testing)."""
    return urlsplit(url).scheme.lower() in NETWORK_SCHEMES


def is_valid_stream_url(url: str) -> bool:
    """Whether the URL is a supported network stream or an absolute path of an existing file.

    Does file I/O for paths: call it from an executor thread.
    """
    url = url.strip()
    if not url:
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    if parts.scheme.lower() in NETWORK_SCHEMES:
        return bool(parts.hostname)
    path = Path(url)
    return path.is_absolute() and path.is_file()

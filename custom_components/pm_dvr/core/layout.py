"""Where things live under a hub's storage path, and safe names for them.

<storage>/recordings/<camera_slug>/<YYYY-MM-DD>/<YYYYmmdd-HHMMSS>[_pHHMM][-N].mp4
    (".part" while written; `_pHHMM`/`_mHHMM`, the UTC offset, only in an hour repeated by DST)
<storage>/events/<event_id>/event.json
<storage>/events/<event_id>/<camera_slug>/<clip name>                   (hard links)
<storage>/index/<camera_slug>/<YYYY-MM-DD>.idx   (the clip index of a day folder, see clips.py)
"""

from __future__ import annotations

from pathlib import Path
import re
import time
import unicodedata

from . import walltime

RECORDINGS = "recordings"
EVENTS = "events"
INDEX = "index"
EXPORTS = "exports"
EVENT_FILE = "event.json"

_NOT_SLUG = re.compile(r"[^a-z0-9]+")


def slugify(text: str, max_length: int = 40) -> str:
    """Lower-case ASCII words joined by "-": safe as one path component, never "." or "..".

    Returns "" when nothing usable is left (callers pick a fallback).
    """
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = _NOT_SLUG.sub("-", ascii_text.lower()).strip("-")
    return slug[:max_length].rstrip("-")


def recordings_dir(storage: Path) -> Path:
    """Folder of continuous recordings."""
    return storage / RECORDINGS


def events_dir(storage: Path) -> Path:
    """Folder of events."""
    return storage / EVENTS


def exports_dir(storage: Path) -> Path:
    """Folder of exported time ranges (`pm_dvr.export`), one folder per camera."""
    return storage / EXPORTS


def index_dir(storage: Path) -> Path:
    """Folder of the clip index's saved day blocks (rebuilt from the recordings if lost)."""
    return storage / INDEX


def clip_name(start: float) -> str:
    """File name of a clip starting at `start`: the local time of its first frame, with its UTC
    offset when that time happens twice (`20261025-023000_p0200.mp4`, see walltime)."""
    local = time.localtime(start)
    return time.strftime("%Y%m%d-%H%M%S", local) + walltime.offset_marker(local) + ".mp4"


def clip_path(storage: Path, camera: str, start: float) -> Path:
    """Where a camera's clip starting at `start` goes (without the .part suffix)."""
    day = time.strftime("%Y-%m-%d", time.localtime(start))
    return recordings_dir(storage) / camera / day / clip_name(start)


def ensure_storage(storage: Path) -> None:
    """Create the storage folders if needed and prove they are writable. Blocking.

    Raises StorageError (translated by the glue) rather than OSError, so the user sees why.
    """
    from .errors import StorageError

    if not storage.is_absolute():
        raise StorageError(f"Storage path {storage} is not absolute")
    try:
        for folder in (storage, recordings_dir(storage), events_dir(storage)):
            folder.mkdir(parents=True, exist_ok=True)
        probe = storage / ".pm_dvr_write_test"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as err:
        raise StorageError(f"Storage path {storage} is not writable: {err.strerror}") from err


def free_bytes(path: Path) -> int:
    """Free bytes on the filesystem holding `path` (or its nearest existing parent). Blocking."""
    import shutil

    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return shutil.disk_usage(probe).free

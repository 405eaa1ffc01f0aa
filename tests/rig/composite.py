"""Held-out labelled clips composited from real footage: a third, independent scene generator.

What it is for: a fresh held-out set for the motion detector. The detector was tuned on
tests/rig/scenes.py and judged on tests/rig/heldout.py; this module makes clips of yet another
design, and **the detector must never be tuned on these clips**: look at the figures, do not change
thresholds until they improve here, or the set stops being held out.

How it differs from scenes.py (screen-space drawings on smooth noise) and heldout.py (a 3-D world
of procedural textures and primitive people rendered through a pinhole camera):

- pixels: the background is a real camera's empty scene, the per-pixel temporal median of OpenCV's
  vtest.avi (people keep moving, so the median is the empty campus), shown whole, zoomed into
  (a crop rescaled to the output size), mirrored, or as a gray IR night picture;
- people: real people cut out of vtest.avi (background subtraction against that plate,
  morphology, person-sized connected components tracked over frames), each a whole gait cycle of
  soft-alpha cut-outs with the old background unmixed from the edge colours, so limbs and clothes
  move as in real life; the generator walks them along new paths through a ground-plane model
  fitted to vtest's own walkers (height grows linearly with the foot row's distance below the
  horizon), with soft contact shadows;
- vehicles: a synthetic side-view car sprite (rounded body, windows, wheels, soft shadow)
  crossing near or far in 1-3 s;
- nuisances, each with its own model: cloud shade from an advected, smoothstep-thresholded
  periodic cubic-noise field plus sun bursts (sun in/out) and a lagging auto-exposure loop driven by
  the scene's mean brightness; a synthetic hedge warped by a gusting wind field (vtest's small
  tree stays still); rain streaks, snow flakes with wobble (big and blurred near the lens), insects
  fluttering round the lamp; headlight pools sweeping the ground at night (the exposure reacting);
  a burned-in clock; Poisson-like sensor noise with row noise; x264 at a normal or starved
  bitrate.

Ground truth uses scenes.py's ``SceneTruth``/``ObjectInterval`` (written next to the clip with
``truth_path``). People and cars are objects; an interval starts at the first frame 2 % of the
object's box is in the picture, "appears" when half of it is, and ends at its last visible frame
(standing still counts as present); ``small`` means its largest on-screen height stays under 8 %
of the frame; ``box`` bounds its whole path in the picture. No object is visible before
``WARMUP_S``: every path starts outside the picture.

The cut-outs and the plate are extracted once and cached (``LIBRARY``); ``COMPOSITE_SET`` lists
the clips (cached under bench/out/composite/, rendered by ``ensure_composite``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
import datetime as dt
import itertools
import json
import math
import os
from pathlib import Path
import time
from typing import Any

import av
import cv2
import numpy as np
from numpy.typing import NDArray

from tests.rig.heldout import FOOTAGE_CACHE, _fetch_vtest
from tests.rig.scenes import (
    WARMUP_S,
    SceneTruth,
    TruthLog,
    encode_planes,
    finish_encoder,
    open_encoder,
    rendered,
)

U8 = NDArray[np.uint8]
F32 = NDArray[np.float32]
F64 = NDArray[np.float64]

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "bench" / "out" / "composite"
LIBRARY = FOOTAGE_CACHE / "composite_library_v1.npz"  # bump the version when extraction changes


OBJECT_TOKENS = (
    "walk_side",  # one person crosses sideways
    "walk_headon",  # one person walks towards the camera, later one walks away from it
    "walk_diagonal",
    "stop_go",  # a walker stops two or three times on the way
    "stand_still",  # a person walks in, stands still for 10-20 s, then leaves
    "group",  # 2-3 people walking together
    "small_far",  # far-away walkers (under 8 % of the frame height in a 4:3 full view)
    "car_near",  # cars crossing the path near the camera in 1-1.5 s
    "car_far",  # small cars crossing far away in 1.5-3 s
)
NUISANCE_TOKENS = (
    "clouds",  # cloud shade drifting over the scene + sun bursts (with auto-exposure lag)
    "ir_night",  # gray IR night picture: lamp hot-spot, dark corners, heavy noise
    "snow",
    "rain",
    "insects",  # at night: bright moths fluttering round the lamp, close to the lens
    "headlights",  # at night: headlight pools sweeping the ground
    "foliage",  # a hedge in the foreground, in gusts
    "clock",  # burned-in date/time overlay
    "lowrate",  # starved bitrate, short GOP: blocking and keyframe pumping
)

# vtest.avi's camera, fitted on its own walkers (median cut-out height per 50-px band of foot
# rows: 38 px at row 100, 70 at 225, 95 at 325, 144 at 525)
BASE_W, BASE_H = 768, 576
BASE_K = 0.26  # person height (px) per pixel of foot row below the horizon
BASE_HORIZON = -45.0  # horizon row: above the picture, the camera looks down on the campus
BASE_FOCAL = 700.0  # focal length in px (~57 deg across); only sets the lateral scale
BASE_CX = BASE_W / 2
PERSON_M = 1.75  # the fit's reference person height (m)
CAM_HEIGHT = PERSON_M / BASE_K  # so that foot row and height agree: about 6.7 m
# where the ground ends (the buildings start) above a foot row, by base column: (x0, x1, top row)
GROUND_TOP = ((0, 280, 58), (280, 312, 75), (312, 612, 113), (612, BASE_W, 100))
LAMP_HEAD = (421.0, 30.0)  # the street lamp's head in the base plate (the IR night hot-spot)

# views: a crop of the base plate as (x0, y0, width); its height follows the output's aspect
VIEWS: dict[str, tuple[float, float, float]] = {
    "full": (0.0, 0.0, 768.0),  # 4:3 whole scene; a 16:9 output centres rows 72-504
    "road": (330.0, 90.0, 438.0),  # zoom on the junction and the road at the right
    "lawn": (0.0, 150.0, 560.0),  # zoom on the path and the lawn at the bottom left
}

_FG_THRESHOLD = 35  # colour difference to the plate for a foreground pixel (vtest is clean)
_SPRITE_MIN_H = 55  # cut-outs smaller than this (px) are too coarse to scale up
_LOOP_MAX_COST = 0.2  # worst mask mismatch between a gait cycle's first and last frame


# --------------------------------------------------------------------------- the library


def _f32(a: Any) -> F32:
    """An OpenCV/numpy result as a float32 array (a no-op at run time; for the type checker)."""
    return np.asarray(a, np.float32)


def _smoothstep(e0: float, e1: float, x: NDArray[Any]) -> F32:
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return _f32(t * t * (3 - 2 * t))


def _frames() -> Any:
    """vtest.avi's frames (BGR), fetched like heldout.real_footage does."""
    avi = FOOTAGE_CACHE / "vtest.avi"
    if not avi.exists():
        FOOTAGE_CACHE.mkdir(parents=True, exist_ok=True)
        _fetch_vtest(avi)
    cap = cv2.VideoCapture(str(avi))
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                return
            yield frame
    finally:
        cap.release()


_K_OPEN = np.ones((3, 3), np.uint8)
_K_CLOSE = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 9))  # joins a body, keeps people apart
_K_GROW = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))


def _segment(frame: U8, plate: U8) -> tuple[NDArray[np.uint8], NDArray[np.int32], NDArray[Any]]:
    """Difference to the plate, component labels and their stats (x, y, w, h, area)."""
    diff = cv2.absdiff(frame, plate).max(axis=2)
    mask = (diff > _FG_THRESHOLD).astype(np.uint8)
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, _K_OPEN)
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, _K_CLOSE)
    _n, labels, stats, _c = cv2.connectedComponentsWithStats(mask)
    return np.asarray(diff, np.uint8), np.asarray(labels, np.int32), np.asarray(stats)


@dataclass(slots=True)
class _Blob:
    """One person-shaped component in one frame."""

    frame: int
    box: tuple[int, int, int, int]  # x, y, w, h
    isolated: bool  # no other component close by (its cut-out would not be clean otherwise)
    shape: F32  # its mask scaled to 16x40 (to compare gait phases)

    @property
    def foot(self) -> tuple[float, float]:
        x, y, w, h = self.box
        return x + w / 2, float(y + h)


def _blobs(labels: NDArray[np.int32], stats: NDArray[Any], i: int) -> list[_Blob]:
    out = []
    boxes = [tuple(int(v) for v in s[:4]) for s in stats[1:] if s[4] > 40]
    for j in range(1, len(stats)):
        x, y, w, h, area = (int(v) for v in stats[j])
        if not (area > 300 and h > 1.5 * w and h >= 35):
            continue
        if x <= 2 or y <= 2 or x + w >= BASE_W - 2 or y + h >= BASE_H - 2:
            continue  # cut by the frame edge
        others = [b for b in boxes if b != (x, y, w, h)]
        near = any(
            bx < x + w + 8 and x - 8 < bx + bw and by < y + h + 8 and y - 8 < by + bh
            for bx, by, bw, bh in others
        )
        crop = (labels[y : y + h, x : x + w] == j).astype(np.float32)
        shape = cv2.resize(crop, (16, 40), interpolation=cv2.INTER_AREA)
        out.append(_Blob(i, (x, y, w, h), not near, shape))
    return out


def _tracks(per_frame: list[list[_Blob]]) -> list[list[_Blob]]:
    """Link blobs frame to frame (nearest foot point, similar height)."""
    done: list[list[_Blob]] = []
    active: list[list[_Blob]] = []
    for blobs in per_frame:
        used: set[int] = set()
        still: list[list[_Blob]] = []
        for tr in active:
            last = tr[-1]
            lx, ly = last.foot
            best, best_d = -1, 14.0
            for j, b in enumerate(blobs):
                bx, by = b.foot
                d = math.hypot(bx - lx, by - ly)
                if j not in used and d < best_d and abs(b.box[3] - last.box[3]) < 0.2 * last.box[3]:
                    best, best_d = j, d
            if best >= 0:
                used.add(best)
                tr.append(blobs[best])
                still.append(tr)
            else:
                done.append(tr)
        still.extend([b] for j, b in enumerate(blobs) if j not in used)
        active = still
    return done + active


def _gait_cycle(track: list[_Blob]) -> tuple[int, int, float] | None:
    """The cleanest whole gait cycle in a track: (start, length, mismatch), or None."""
    best: tuple[int, int, float] | None = None
    for s in range(len(track)):
        for n in range(8, 17):  # a gait cycle (two steps) takes 0.8-1.6 s at 10 fps
            if s + n + 1 >= len(track):
                break
            win = track[s : s + n + 1]
            hs = [b.box[3] for b in win]
            if not all(b.isolated for b in win) or max(hs) > 1.15 * min(hs):
                continue
            if float(np.median(hs)) < _SPRITE_MIN_H:
                continue
            if float(np.median([b.box[2] for b in win])) > 0.5 * float(np.median(hs)):
                continue  # two people side by side, or someone with a bag out to the side
            cost = float(
                np.abs(track[s].shape - track[s + n].shape).mean()
                + np.abs(track[s + 1].shape - track[s + n + 1].shape).mean()
            )
            if best is None or cost < best[2]:
                best = (s, n, cost)
    return best if best is not None and best[2] < _LOOP_MAX_COST else None


def _cutout(frame: U8, plate: U8, blob: _Blob) -> tuple[U8, tuple[float, float, float, float]]:
    """BGRA cut-out (colours unmixed from the plate, premultiplied later) and its body box."""
    diff, labels, stats = _segment(frame, plate)
    j = next(
        k
        for k in range(1, len(stats))
        if tuple(int(v) for v in stats[k][:4]) == blob.box  # segmentation is deterministic
    )
    x, y, w, h = blob.box
    pad = 6
    x0, y0 = max(0, x - pad), max(0, y - pad)
    x1, y1 = min(BASE_W, x + w + pad), min(BASE_H, y + h + pad)
    lab = labels[y0:y1, x0:x1]
    own = cv2.dilate((lab == j).astype(np.uint8), _K_GROW).astype(np.float32)
    own[(lab > 0) & (lab != j)] = 0.0
    alpha = _smoothstep(14, 40, diff[y0:y1, x0:x1].astype(np.float32)) * own
    # drop the cast shadow at the feet (the ground darkened, colour kept): it was cast on vtest's
    # asphalt and would show as a gray patch elsewhere; the compositor draws its own
    img = frame[y0:y1, x0:x1].astype(np.float32)
    bg = plate[y0:y1, x0:x1].astype(np.float32)
    ratio = img / np.maximum(bg, 1.0)
    shade = (
        (ratio.max(axis=2) < 0.93)
        & (ratio.min(axis=2) > 0.35)
        & (ratio.max(axis=2) - ratio.min(axis=2) < 0.12)
    )
    shade[: y + int(0.75 * h) - y0] = False  # only near the feet: clothes can look like shade
    alpha[shade] = 0.0
    # keep the body only: bits of litter or tape next to it are not part of the person
    _n, parts, pstats, _c = cv2.connectedComponentsWithStats((alpha > 0.3).astype(np.uint8))
    body_part = 1 + int(np.argmax(pstats[1:, 4]))
    alpha *= cv2.dilate((parts == body_part).astype(np.uint8), _K_GROW).astype(np.float32)
    alpha = _f32(cv2.GaussianBlur(alpha, (0, 0), 0.7))
    a = np.maximum(alpha, 0.15)[..., None]
    fg = np.where(alpha[..., None] > 0.15, (img - (1 - a) * bg) / a, img)  # unmix the old ground
    out = np.dstack([np.clip(fg, 0, 255), alpha * 255]).astype(np.uint8)
    rows = np.flatnonzero(alpha.max(axis=1) > 0.5)
    cols = np.flatnonzero(alpha.max(axis=0) > 0.5)
    body = (float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1))
    return out, body


@dataclass(frozen=True, slots=True)
class _Sprite:
    """One real person's gait cycle: premultiplied BGRA cut-outs, feet at the anchor."""

    frames: tuple[F32, ...]
    bodies: tuple[tuple[float, float, float, float], ...]  # x0, y0, x1, y1 in each cut-out
    height: float  # median body height (px): the scale reference
    kind: str  # "side", "diag_toward", "diag_away", "toward", "away" (how it walked in vtest)
    facing: int  # +1 walking right in vtest, -1 left


@dataclass(frozen=True, slots=True)
class _Library:
    plate: U8
    sprites: tuple[_Sprite, ...]


def _build_library() -> dict[str, Any]:
    """Median plate and gait cycles of isolated walkers (about 15 s, cached in LIBRARY)."""
    sample = [f for i, f in enumerate(_frames()) if i % 8 == 0]
    plate = np.median(np.stack(sample), axis=0).astype(np.uint8)
    del sample
    per_frame = []
    for i, frame in enumerate(_frames()):
        _d, labels, stats = _segment(frame, plate)
        per_frame.append(_blobs(labels, stats, i))
    cycles = []
    for tr in _tracks(per_frame):
        found = _gait_cycle(tr)
        if found is not None:
            cycles.append((found[2], tr[found[0] : found[0] + found[1]]))
    cycles.sort(key=lambda c: c[0])
    wanted = {b.frame for _c, win in cycles for b in win}
    frames = {i: f for i, f in enumerate(_frames()) if i in wanted}
    arrays: dict[str, Any] = {"plate": plate}
    meta = []
    for k, (_cost, win) in enumerate(cycles):
        (fx0, fy0), (fx1, fy1) = win[0].foot, win[-1].foot
        dx, dy = fx1 - fx0, fy1 - fy0
        ang = math.degrees(math.atan2(abs(dy), abs(dx)))
        sense = "toward" if dy > 0 else "away"  # down the picture is towards the camera
        kind = "side" if ang < 30 else f"diag_{sense}" if ang < 60 else sense
        bodies = []
        for n, b in enumerate(win):
            cut, body = _cutout(frames[b.frame], plate, b)
            arrays[f"s{k}_{n}"] = cut
            bodies.append(body)
        meta.append({"n": len(win), "bodies": bodies, "kind": kind, "facing": 1 if dx >= 0 else -1})
    arrays["meta"] = np.array(json.dumps(meta))
    return arrays


def _library() -> _Library:
    if not LIBRARY.exists():
        LIBRARY.parent.mkdir(parents=True, exist_ok=True)
        arrays = _build_library()
        tmp = LIBRARY.with_suffix(f".{os.getpid()}.tmp.npz")  # (test workers may race)
        np.savez_compressed(tmp, **arrays)
        tmp.replace(LIBRARY)
    with np.load(LIBRARY, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        sprites = []
        for k, m in enumerate(meta):
            frames = []
            for n in range(m["n"]):
                c = z[f"s{k}_{n}"].astype(np.float32)
                c[..., :3] *= c[..., 3:] / 255  # premultiplied: resampling keeps edges clean
                frames.append(c)
            bodies = tuple(tuple(b) for b in m["bodies"])
            height = float(np.median([b[3] - b[1] for b in bodies]))
            sprites.append(_Sprite(tuple(frames), bodies, height, m["kind"], m["facing"]))
        return _Library(z["plate"].copy(), tuple(sprites))


# --------------------------------------------------------------------------- clip specs


@dataclass(frozen=True, slots=True)
class CompositeClip:
    """One composited clip: a kind (tokens joined by "+"), a view into the plate, a size."""

    name: str
    kind: str
    width: int
    height: int
    fps: int
    seconds: float
    seed: int
    view: str = "full"  # a key of VIEWS
    mirror: bool = False  # flip the plate (and everything on it) left to right

    @property
    def path(self) -> Path:
        return OUT / f"{self.name}.mp4"

    @property
    def tokens(self) -> set[str]:
        return {t for t in self.kind.split("+") if t}

    @property
    def positive(self) -> bool:
        return bool(self.tokens & set(OBJECT_TOKENS))


def _rng(spec: CompositeClip, stream: str) -> np.random.Generator:
    """One random stream per part, so that dropping the objects leaves the nuisances unchanged."""
    return np.random.default_rng([spec.seed, *stream.encode()])


# --------------------------------------------------------------------------- the view


class _View:
    """The output picture: a crop of the base plate (maybe mirrored), and its ground plane.

    A ground point (x across, z ahead, in metres) has its foot row at ``BASE_HORIZON +
    BASE_FOCAL * CAM_HEIGHT / z`` in the base plate, so a person's height in pixels is
    ``BASE_K`` times the foot row's distance below the horizon, as fitted on vtest's walkers.
    Rendering happens at a work size no finer than the plate's own detail (upscaled at the end).
    """

    def __init__(self, spec: CompositeClip) -> None:
        if spec.view not in VIEWS:
            raise ValueError(f"unknown view {spec.view}")
        x0, y0, cw = VIEWS[spec.view]
        ch = cw * spec.height / spec.width
        if spec.view == "full":
            y0 = (BASE_H - ch) / 2
        if x0 + cw > BASE_W + 1e-6 or y0 < 0 or y0 + ch > BASE_H + 1e-6:
            raise ValueError(f"view {spec.view} does not fit {spec.width}x{spec.height}")
        self.x0, self.y0, self.cw, self.ch = x0, y0, cw, ch
        self.w, self.h, self.mirror = spec.width, spec.height, spec.mirror
        self.s = spec.width / cw  # output px per base px
        d = max(1, int(self.s))
        self.ww, self.wh = spec.width // d, spec.height // d
        self.k = self.ww / spec.width  # work px per output px

    def plate(self, base: U8) -> F32:
        """The base plate cropped, mirrored and scaled to the work size."""
        src = base[:, ::-1] if self.mirror else base
        ws = self.s * self.k
        m = np.array([[ws, 0, -self.x0 * ws], [0, ws, -self.y0 * ws]], np.float64)
        if ws >= 1:
            out = cv2.warpAffine(src, m, (self.ww, self.wh), flags=cv2.INTER_CUBIC)
        else:  # shrink: crop at the native size first, then average down
            m1 = np.array([[1, 0, -self.x0], [0, 1, -self.y0]], np.float64)
            native = cv2.warpAffine(
                src, m1, (round(self.cw), round(self.ch)), flags=cv2.INTER_CUBIC
            )
            out = cv2.resize(native, (self.ww, self.wh), interpolation=cv2.INTER_AREA)
        return out.astype(np.float32)

    def foot(self, x: float, z: float) -> tuple[float, float, float]:
        """Output pixel of a ground point, and the output pixels per metre at that depth."""
        xb = BASE_CX + BASE_FOCAL * x / z
        yb = BASE_HORIZON + BASE_FOCAL * CAM_HEIGHT / z
        if self.mirror:
            xb = BASE_W - xb
        return (xb - self.x0) * self.s, (yb - self.y0) * self.s, BASE_FOCAL * self.s / z

    def ground(self, u: float, v: float) -> tuple[float, float]:
        """The ground point (x, z) seen at output pixel (u, v) (below the horizon)."""
        xb, yb = u / self.s + self.x0, v / self.s + self.y0
        if self.mirror:
            xb = BASE_W - xb
        z = BASE_FOCAL * CAM_HEIGHT / max(1.0, yb - BASE_HORIZON)
        return (xb - BASE_CX) * z / BASE_FOCAL, z

    def base_point(self, u: float, v: float) -> tuple[float, float]:
        """Base plate pixel of an output pixel."""
        xb, yb = u / self.s + self.x0, v / self.s + self.y0
        return (BASE_W - xb if self.mirror else xb), yb

    def output_point(self, xb: float, yb: float) -> tuple[float, float]:
        """Output pixel of a base plate pixel."""
        xb = BASE_W - xb if self.mirror else xb
        return (xb - self.x0) * self.s, (yb - self.y0) * self.s

    def on_ground(self, x: float, z: float) -> bool:
        """Whether a ground point is on vtest's ground (not inside a building); off the plate is."""
        xb = BASE_CX + BASE_FOCAL * x / z
        yb = BASE_HORIZON + BASE_FOCAL * CAM_HEIGHT / z
        return not any(a <= xb < b and yb < top + 2 for a, b, top in GROUND_TOP)


# --------------------------------------------------------------------------- actors


@dataclass(frozen=True, slots=True)
class _Leg:
    """Walking (or standing, when the ends are the same) from p0 to p1 between t0 and t1."""

    t0: float
    t1: float
    p0: tuple[float, float]
    p1: tuple[float, float]


@dataclass(frozen=True, slots=True)
class _Look:
    """What is drawn: premultiplied BGRA cut-outs with their anchors (feet) and body boxes."""

    frames: tuple[F32, ...]
    anchors: tuple[tuple[float, float], ...]
    bodies: tuple[tuple[float, float, float, float], ...]  # relative to the anchor
    ref_px: float  # the look's size in its own pixels (a person's height, a car's length)
    facing: int  # +1 facing right
    stand: int = 0  # the cut-out shown while standing (legs together: the narrowest)


@dataclass(slots=True)
class _Actor:
    kind: str  # "person" or "car"
    legs: list[_Leg]
    size_m: float  # a person's height or a car's length
    look: _Look
    gain: float = 1.0  # clothes a little lighter or darker than the cut-out's
    phase: int = 0  # where in its gait cycle it starts
    dirs: list[int] = field(default_factory=list)  # per leg: +1 moving right on screen, -1 left

    def state(self, t: float) -> tuple[float, float, float | None, int] | None:
        """(x, z, time spent walking so far or None when standing, facing) at t."""
        if t < self.legs[0].t0 or t > self.legs[-1].t1:
            return None
        walked = 0.0
        for leg, d in zip(self.legs, self.dirs, strict=True):
            moving = leg.p0 != leg.p1
            if t <= leg.t1:
                f = (t - leg.t0) / max(1e-9, leg.t1 - leg.t0)
                x = leg.p0[0] + (leg.p1[0] - leg.p0[0]) * f
                z = leg.p0[1] + (leg.p1[1] - leg.p0[1]) * f
                return x, z, (walked + t - leg.t0 if moving else None), d
            if moving:
                walked += leg.t1 - leg.t0
        return None


def _look_of(sprite: _Sprite) -> _Look:
    """Anchor each cut-out at its feet, horizontally at its torso (legs swing, the torso not)."""
    anchors, bodies = [], []
    for cut, (x0, y0, x1, y1) in zip(sprite.frames, sprite.bodies, strict=True):
        a = cut[int(y0) : int(y0 + 0.6 * (y1 - y0)), :, 3]
        cols = np.arange(a.shape[1], dtype=np.float32)
        ax = float((a.sum(axis=0) * cols).sum() / max(1e-6, float(a.sum())))
        anchors.append((ax, y1))
        bodies.append((x0 - ax, y0 - y1, x1 - ax, 0.0))
    stand = int(np.argmin([b[2] - b[0] for b in bodies]))
    return _Look(sprite.frames, tuple(anchors), tuple(bodies), sprite.height, sprite.facing, stand)


_CAR_COLOURS = (  # BGR: white, silver, black, dark blue, red, dark green
    (225, 228, 230),
    (170, 172, 175),
    (35, 35, 38),
    (110, 45, 30),
    (40, 40, 170),
    (50, 80, 45),
)


def _car_look(rng: np.random.Generator) -> _Look:
    """A side view of a car facing right: body, cabin with windows, wheels, lights."""
    ppm, ss = 40, 3  # drawn at 40 px/m, supersampled 3x for smooth edges
    length, height = float(rng.uniform(4.0, 4.8)), float(rng.uniform(1.4, 1.6))
    px = ppm * ss
    cw, chh = int((length + 0.4) * px), int((height + 0.3) * px)
    ground = int((height + 0.15) * px)

    def pt(xm: float, ym: float) -> tuple[int, int]:
        return int((0.2 + xm) * px), int(ground - ym * px)

    col = np.array(_CAR_COLOURS[int(rng.integers(len(_CAR_COLOURS)))], np.float64)
    img = np.zeros((chh, cw, 3), np.uint8)
    mask = np.zeros((chh, cw), np.uint8)
    r = int(0.22 * px)
    hull = [pt(0, 0.28), pt(length, 0.95)]
    for canvas, c in ((img, tuple(col)), (mask, 255)):
        x0, y1 = hull[0]
        x1, y0 = hull[1]
        cv2.rectangle(canvas, (x0 + r, y0), (x1 - r, y1), c, -1)
        cv2.rectangle(canvas, (x0, y0 + r), (x1, y1 - r // 2), c, -1)
        for cx, cy in ((x0 + r, y0 + r), (x1 - r, y0 + r)):
            cv2.circle(canvas, (cx, cy), r, c, -1)
        cabin = np.array(
            [
                pt(0.2 * length, 0.93),
                pt(0.34 * length, height),
                pt(0.74 * length, height),
                pt(0.9 * length, 0.93),
            ],
            np.int32,
        )
        cv2.fillPoly(canvas, [cabin], c)
    glass = np.array(
        [
            pt(0.25 * length, 0.97),
            pt(0.36 * length, height - 0.07),
            pt(0.72 * length, height - 0.07),
            pt(0.85 * length, 0.97),
        ],
        np.int32,
    )
    cv2.fillPoly(img, [glass], (70, 58, 50))
    cv2.line(
        img, pt(0.55 * length, 0.97), pt(0.55 * length, height - 0.07), tuple(col), int(0.08 * px)
    )
    cv2.line(
        img, pt(0.05, 0.62), pt(length - 0.05, 0.62), tuple(np.clip(col * 0.7, 0, 255)), max(1, ss)
    )
    cv2.rectangle(img, pt(length - 0.12, 0.8), pt(length, 0.68), (200, 235, 245), -1)  # headlamp
    cv2.rectangle(img, pt(0.0, 0.85), pt(0.1, 0.7), (30, 30, 200), -1)  # tail lamp
    for wx in (0.19 * length, 0.81 * length):
        c = pt(wx, 0.33)
        for canvas, v in ((img, (22, 22, 24)), (mask, 255)):
            cv2.circle(canvas, c, int(0.33 * px), v, -1)
        cv2.circle(img, c, int(0.17 * px), (120, 122, 125), -1)
    small = (cw // ss, chh // ss)
    bgr = cv2.resize(img, small, interpolation=cv2.INTER_AREA).astype(np.float32)
    ramp = np.linspace(1.15, 0.7, small[1], dtype=np.float32)  # lit from above: sills darker
    bgr = np.clip(bgr * ramp[:, None, None], 0, 255)
    a = cv2.resize(mask, small, interpolation=cv2.INTER_AREA).astype(np.float32)
    cut = np.dstack([bgr * (a[..., None] / 255), a])
    anchor = (small[0] / 2, ground / ss)
    rows = np.flatnonzero(a.max(axis=1) > 127)
    cols = np.flatnonzero(a.max(axis=0) > 127)
    body = (
        cols[0] - anchor[0],
        rows[0] - anchor[1],
        cols[-1] + 1 - anchor[0],
        rows[-1] + 1 - anchor[1],
    )
    return _Look((cut,), (anchor,), (tuple(float(b) for b in body),), length * ppm, 1)  # type: ignore[arg-type]


def _paste(  # noqa: PLR0917
    img: F32,
    cut: F32,
    anchor: tuple[float, float],
    scale: float,
    at: tuple[float, float],
    flip: bool,
    gain: float,
) -> None:
    """Blend a premultiplied BGRA cut-out into img, its anchor at `at`, scaled (sub-pixel)."""
    ax, ay = anchor
    rx = ry = scale
    if scale < 0.9:  # average down first: bilinear warping alone would alias
        h, w = cut.shape[:2]
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        cut = _f32(cv2.resize(cut, (nw, nh), interpolation=cv2.INTER_AREA))
        ax, ay = ax * nw / w, ay * nh / h
        rx, ry = scale * w / nw, scale * h / nh
    h, w = cut.shape[:2]
    fx = -rx if flip else rx
    u, v = at
    xs = (u - fx * ax, u + fx * (w - ax))
    x0, x1 = max(0, math.floor(min(xs))), min(img.shape[1], math.ceil(max(xs)) + 1)
    y0, y1 = max(0, math.floor(v - ry * ay)), min(img.shape[0], math.ceil(v + ry * (h - ay)) + 1)
    if x1 <= x0 or y1 <= y0:
        return
    m = np.array([[fx, 0, u - fx * ax - x0], [0, ry, v - ry * ay - y0]], np.float64)
    warped = cv2.warpAffine(cut, m, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR, borderValue=0)
    roi = img[y0:y1, x0:x1]
    roi *= 1 - warped[..., 3:] / 255
    roi += warped[..., :3] * gain


def _shadow(img: F32, at: tuple[float, float], width: float, depth: float) -> None:
    """A soft dark ellipse on the ground round the feet (contact shadow)."""
    u, v = at
    rx, ry = width / 2, max(1.0, width * 0.14)
    x0, x1 = max(0, int(u - 1.6 * rx)), min(img.shape[1], int(u + 1.6 * rx) + 1)
    y0, y1 = max(0, int(v - 1.6 * ry)), min(img.shape[0], int(v + 1.6 * ry) + 1)
    if x1 <= x0 or y1 <= y0:
        return
    xs = (np.arange(x0, x1, dtype=np.float32) - u) / rx
    ys = (np.arange(y0, y1, dtype=np.float32) - v) / ry
    blob = np.exp(-2.0 * (ys[:, None] ** 2 + xs[None, :] ** 2))
    img[y0:y1, x0:x1] *= (1 - depth * blob)[..., None]


# --------------------------------------------------------------------------- planning the actors


class _Planner:
    """Plans paths on the ground that start and end outside the picture and stay off buildings."""

    def __init__(
        self, rng: np.random.Generator, view: _View, lib: _Library, seconds: float
    ) -> None:
        self.rng, self.view, self.seconds = rng, view, seconds
        self.looks = [_look_of(s) for s in lib.sprites]
        self.kinds = [s.kind for s in lib.sprites]
        self.unused = [int(i) for i in rng.permutation(len(self.looks))]
        self.actors: list[_Actor] = []

    # geometry helpers (output pixels <-> ground metres)
    def z_at(self, frac: float) -> float:
        """Depth of the ground seen at output row frac * height."""
        return self.view.ground(self.view.w / 2, frac * self.view.h)[1]

    def z_at_base_row(self, yb: float) -> float:
        return BASE_FOCAL * CAM_HEIGHT / (yb - BASE_HORIZON)

    def x_at(self, ufrac: float, z: float) -> float:
        """Ground x seen at output column ufrac * width at depth z."""
        v = self.view.foot(0.0, z)[1]
        return self.view.ground(ufrac * self.view.w, v)[0]

    def x_off(self, side: int, z: float, margin_m: float = 1.2) -> float:
        """Ground x just outside the left (side -1) or right (+1) edge of the picture at depth z."""
        x_edge = self.x_at(0.0 if side < 0 else 1.0, z)
        x_other = self.x_at(1.0 if side < 0 else 0.0, z)
        outward = 1.0 if x_edge > x_other else -1.0  # mirrored views flip the ground's x
        return x_edge + outward * margin_m

    def z_below(self, size_m: float = 2.0) -> float:
        """Depth at which a person's head is below the bottom edge (just walked out of view)."""
        lo, hi = 0.3, 60.0
        for _ in range(40):
            mid = (lo + hi) / 2
            _u, v, ppm = self.view.foot(0.0, mid)
            if v - size_m * ppm > self.view.h:
                lo = mid
            else:
                hi = mid
        return lo * 0.97

    def valid(self, pts: list[tuple[float, float]]) -> bool:
        for (xa, za), (xb, zb) in itertools.pairwise(pts):
            for f in np.linspace(0, 1, 16):
                x, z = xa + (xb - xa) * f, za + (zb - za) * f
                if z <= 0.5 or not self.view.on_ground(x, z):
                    return False
        return True

    def side(self, pts: list[tuple[float, float]]) -> str:
        """Which cut-outs suit the path: the direction of its longest stretch."""
        best = max(
            itertools.pairwise(pts),
            key=lambda ab: math.hypot(ab[1][0] - ab[0][0], ab[1][1] - ab[0][1]),
        )
        dx, dz = best[1][0] - best[0][0], best[1][1] - best[0][1]
        if abs(dx) > 1.7 * abs(dz):
            return "side"
        return "toward" if dz < 0 else "away"

    def sprite(self, want: str) -> _Look:
        prefs = {
            "side": ("side", "diag_toward", "diag_away"),
            "toward": ("toward", "diag_toward", "side"),
            "away": ("away", "diag_away", "side"),
        }[want]
        for kind in prefs:
            for i in self.unused:
                if self.kinds[i] == kind:
                    self.unused.remove(i)
                    return self.looks[i]
        i = int(self.rng.integers(len(self.looks)))  # all used: someone comes by again
        return self.looks[i]

    def add(  # noqa: PLR0917
        self,
        kind: str,
        t0: float,
        pts: list[tuple[float, float]],
        speed: float,
        size_m: float,
        pauses: dict[int, float] | None = None,
        look: _Look | None = None,
    ) -> _Actor:
        """An actor walking (driving) through pts at speed, pausing at some of them."""
        pauses = pauses or {}
        legs: list[_Leg] = []
        t = t0
        for k, (a, b) in enumerate(itertools.pairwise(pts)):
            if k in pauses:
                legs.append(_Leg(t, t + pauses[k], a, a))
                t += pauses[k]
            dur = math.hypot(b[0] - a[0], b[1] - a[1]) / speed
            legs.append(_Leg(t, t + dur, a, b))
            t += dur
        dirs: list[int] = []
        for leg in legs:
            ua = self.view.foot(*leg.p0)[0]
            ub = self.view.foot(*leg.p1)[0]
            dirs.append((1 if ub >= ua else -1) if leg.p0 != leg.p1 else (dirs[-1] if dirs else 1))
        if look is None:
            look = self.sprite(self.side(pts))
        n = len(look.frames)
        actor = _Actor(
            kind,
            legs,
            size_m,
            look,
            gain=float(self.rng.uniform(0.85, 1.15)) if kind == "person" else 1.0,
            phase=int(self.rng.integers(n)),
            dirs=dirs,
        )
        self.actors.append(actor)
        return actor

    def tries(self, make: Any) -> None:
        """Call make() until it plans a path on the ground (it returns None when it could not)."""
        for _ in range(200):
            if make() is not None:
                return
        raise RuntimeError("could not plan a path on the ground for this view")

    # the object kinds
    def walk_side(self, t0: float, rows: tuple[float, float] = (0.42, 0.9), **kw: Any) -> None:
        def make() -> list[tuple[float, float]] | None:
            z0 = self.z_at(float(self.rng.uniform(*rows)))
            z1 = z0 * float(self.rng.uniform(0.9, 1.1))
            d = 1 if self.rng.random() < 0.5 else -1
            pts = [(self.x_off(-d, z0), z0), (self.x_off(d, z1), z1)]
            if not self.valid(pts):
                return None
            self.add("person", t0, pts, float(self.rng.uniform(1.1, 1.6)), self.height(), **kw)
            return pts

        self.tries(make)

    def height(self) -> float:
        return float(self.rng.uniform(1.6, 1.9))

    def stop_go(self, t0: float) -> None:
        def make() -> list[tuple[float, float]] | None:
            z0 = self.z_at(float(self.rng.uniform(0.45, 0.88)))
            z1 = z0 * float(self.rng.uniform(0.85, 1.15))
            d = 1 if self.rng.random() < 0.5 else -1
            a, b = (self.x_off(-d, z0), z0), (self.x_off(d, z1), z1)
            n = int(self.rng.integers(2, 4))
            stops = sorted(float(f) for f in self.rng.uniform(0.25, 0.8, n))
            pts = [a] + [(a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f) for f in stops] + [b]
            if not self.valid(pts):
                return None
            pauses = {k: float(self.rng.uniform(1.5, 4.0)) for k in range(1, n + 1)}
            self.add("person", t0, pts, float(self.rng.uniform(1.0, 1.4)), self.height(), pauses)
            return pts

        self.tries(make)

    def walk_diagonal(self, t0: float) -> None:
        def make() -> list[tuple[float, float]] | None:
            z_far = self.z_at(float(self.rng.uniform(0.3, 0.5)))
            z_near = self.z_at(float(self.rng.uniform(0.8, 1.0)))
            d = 1 if self.rng.random() < 0.5 else -1
            pts = [(self.x_off(-d, z_far), z_far), (self.x_off(d, z_near), z_near)]
            if self.rng.random() < 0.5:
                pts.reverse()
            if not self.valid(pts):
                return None
            self.add("person", t0, pts, float(self.rng.uniform(1.1, 1.6)), self.height())
            return pts

        self.tries(make)

    def walk_headon(self, t0: float) -> None:
        """One comes in far away and walks out under the camera; later one walks the other way."""

        def toward() -> list[tuple[float, float]] | None:
            z = self.z_at(float(self.rng.uniform(0.25, 0.4)))
            d = 1 if self.rng.random() < 0.5 else -1
            xc = self.x_at(float(self.rng.uniform(0.35, 0.65)), z)
            zb = self.z_below()
            xe = xc * zb / z + float(self.rng.uniform(-0.5, 0.5))  # nearly straight at the lens
            pts = [(self.x_off(-d, z), z), (xc, z), (xe, zb)]
            if not self.valid(pts):
                return None
            self.add("person", t0, pts, float(self.rng.uniform(1.1, 1.5)), self.height())
            return pts

        def away() -> list[tuple[float, float]] | None:
            zb = self.z_below()
            z = self.z_at(float(self.rng.uniform(0.25, 0.4)))
            xs = self.x_at(float(self.rng.uniform(0.3, 0.7)), zb)
            xc = xs * z / zb + float(self.rng.uniform(-1, 1))
            d = 1 if self.rng.random() < 0.5 else -1
            pts = [(xs, zb), (xc, z), (self.x_off(d, z), z)]
            if not self.valid(pts):
                return None
            t1 = t0 + max(8.0, 0.3 * (self.seconds - t0))
            self.add("person", t1, pts, float(self.rng.uniform(1.1, 1.5)), self.height())
            return pts

        self.tries(toward)
        self.tries(away)

    def stand_still(self, t0: float) -> None:
        def make() -> list[tuple[float, float]] | None:
            z = self.z_at(float(self.rng.uniform(0.45, 0.85)))
            d = 1 if self.rng.random() < 0.5 else -1
            stop = (
                self.x_at(float(self.rng.uniform(0.3, 0.7)), z),
                z * float(self.rng.uniform(0.95, 1.05)),
            )
            back = self.rng.random() < 0.35  # turns back the way it came
            pts = [(self.x_off(-d, z), z), stop, (self.x_off(-d if back else d, z), z)]
            if not self.valid(pts):
                return None
            self.add(
                "person",
                t0,
                pts,
                float(self.rng.uniform(1.0, 1.4)),
                self.height(),
                {1: float(self.rng.uniform(10, 20))},
            )
            return pts

        self.tries(make)

    def group(self, t0: float) -> None:
        def make() -> list[tuple[float, float]] | None:
            n = int(self.rng.integers(2, 4))
            z0 = self.z_at(float(self.rng.uniform(0.45, 0.8)))
            z1 = z0 * float(self.rng.uniform(0.75, 1.25))
            d = 1 if self.rng.random() < 0.5 else -1
            base = [(self.x_off(-d, z0, 3.0), z0), (self.x_off(d, z1, 3.0), z1)]
            paths = []
            for k in range(n):
                back, dz = (
                    -d * 0.9 * k + float(self.rng.uniform(-0.3, 0.3)),
                    float(self.rng.uniform(-0.6, 0.6)),
                )
                paths.append([(x + back, z + dz * (k > 0)) for x, z in base])
            if not all(self.valid(p) for p in paths):
                return None
            speed = float(self.rng.uniform(1.0, 1.4))
            for p in paths:
                self.add("person", t0 + float(self.rng.uniform(0, 0.3)), p, speed, self.height())
            return base

        self.tries(make)

    def small_far(self, t0: float) -> None:
        """Walkers on the far lawn strip (base rows 114-122: about 7 % of a 4:3 frame tall)."""
        for k in range(int(self.rng.integers(1, 3))):

            def make(k: int = k) -> list[tuple[float, float]] | None:
                z = self.z_at_base_row(float(self.rng.uniform(114, 122)))
                d = 1 if self.rng.random() < 0.5 else -1
                pts = [(self.x_off(-d, z), z), (self.x_off(d, z), z)]
                if not self.valid(pts):
                    return None
                size = float(self.rng.uniform(1.55, 1.7))
                self.add("person", t0 + 9.0 * k, pts, float(self.rng.uniform(1.2, 1.6)), size)
                return pts

            self.tries(make)

    def cars(self, t0: float, far: bool) -> None:
        n = int(self.rng.integers(2, 5) if far else self.rng.integers(1, 4))
        span = max(4.0, self.seconds - t0 - 6.0)
        for k in range(n):

            def make(k: int = k) -> list[tuple[float, float]] | None:
                if far:  # where the far lawn meets the car park: 6-7 % of a 4:3 frame tall
                    z = self.z_at_base_row(float(self.rng.uniform(130, 138)))
                    kmh = float(self.rng.uniform(50, 80))
                else:  # the paved band right across the middle of the plate
                    z = self.z_at_base_row(float(self.rng.uniform(210, 235)))
                    kmh = float(self.rng.uniform(30, 50))
                d = 1 if self.rng.random() < 0.5 else -1
                pts = [(self.x_off(-d, z, 3.5), z), (self.x_off(d, z, 3.5), z)]
                if not self.valid(pts):
                    return None
                look = _car_look(self.rng)
                t = t0 + span * k / n + float(self.rng.uniform(0, 2))
                self.add("car", t, pts, kmh / 3.6, look.ref_px / 40.0, look=look)
                return pts

            self.tries(make)


def _plan(spec: CompositeClip, view: _View, lib: _Library) -> list[_Actor]:
    rng = _rng(spec, "actors")
    p = _Planner(rng, view, lib, spec.seconds)
    wanted = [tok for tok in OBJECT_TOKENS if tok in spec.tokens]
    span = max(1.0, spec.seconds - WARMUP_S - 20)
    for k, tok in enumerate(wanted):
        t0 = WARMUP_S + 0.5 + span * k / max(1, len(wanted)) + float(rng.uniform(0, 2))
        if tok in {"car_near", "car_far"}:
            p.cars(t0, tok == "car_far")
        else:
            getattr(p, tok)(t0)
    return p.actors


# --------------------------------------------------------------------------- nuisances


def _periodic_noise(rng: np.random.Generator, w: int, h: int, cells: tuple[int, int]) -> F32:
    """Smooth noise that tiles (random grid, wrapped, cubic upsampling), about mean 0, std 1."""
    gx, gy = cells
    cw, ch = math.ceil(w / gx), math.ceil(h / gy)
    grid = np.pad(rng.random((gy, gx)).astype(np.float32), 2, mode="wrap")
    up = cv2.resize(grid, ((gx + 4) * cw, (gy + 4) * ch), interpolation=cv2.INTER_CUBIC)
    tile = up[2 * ch : 2 * ch + gy * ch, 2 * cw : 2 * cw + gx * cw]
    tile = cv2.resize(tile, (w, h), interpolation=cv2.INTER_LINEAR)
    return _f32((tile - tile.mean()) / max(1e-6, float(tile.std())))


class _Clouds:
    """Cloud shade: an advected noise field, thresholded with a soft edge; sun in/out bursts.

    The field is the sum of two tiling noise fields drifting at slightly different velocities
    (so the clouds change shape as they go); the shade is where it exceeds a threshold, with an
    edge softness that itself varies slowly. When the sun goes in (a burst), the whole scene
    darkens by 15-40 % within 0.3-1 s and the cloud shadows vanish (no direct light).
    """

    def __init__(self, rng: np.random.Generator, sw: int, sh: int, seconds: float) -> None:
        self.sw, self.sh = sw, sh
        tw, th = 2 * sw, 2 * sh
        self.f1 = _periodic_noise(rng, tw, th, (int(rng.integers(3, 7)), int(rng.integers(2, 5))))
        self.f2 = _periodic_noise(rng, tw, th, (int(rng.integers(5, 10)), int(rng.integers(4, 8))))
        speed = float(rng.uniform(0.02, 0.3)) * sw  # 2-30 % of the width per second
        ang = float(rng.uniform(0, 2 * math.pi))
        self.vel = (speed * math.cos(ang), speed * math.sin(ang))
        self.cut = float(rng.uniform(-0.3, 0.5))  # higher: fewer clouds
        self.soft0 = float(rng.uniform(0.05, 0.6))  # edge softness (noise std units)
        self.soft_period = float(rng.uniform(15, 40))
        self.depth = float(rng.uniform(0.25, 0.6))
        ys, xs = np.mgrid[0:sh, 0:sw].astype(np.float32)
        self.xs, self.ys = xs, ys
        # sun bursts: the sun goes in and comes out again now and then
        self.bursts: list[tuple[float, float, float]] = []  # (time, duration, dimness after)
        t, dim = float(rng.uniform(4, 12)), 0.0
        while t < seconds:
            dim = 0.0 if dim > 0 else float(rng.uniform(0.15, 0.4))
            self.bursts.append((t, float(rng.uniform(0.3, 1.0)), dim))
            t += float(rng.uniform(6, 18))

    def dimness(self, t: float) -> float:
        level = 0.0
        for t0, dur, dim in self.bursts:
            if t >= t0:
                f = min(1.0, (t - t0) / dur)
                level += (dim - level) * f * f * (3 - 2 * f)
        return level

    def light(self, t: float) -> F32:
        """Light factor per pixel at the small size (1 = full sun, no cloud)."""
        vx, vy = self.vel
        a = cv2.remap(
            self.f1,
            self.xs - vx * t,
            self.ys - vy * t,
            cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_WRAP,
        )
        b = cv2.remap(
            self.f2,
            self.xs - 1.4 * vx * t + 5,
            self.ys - 0.7 * vy * t,
            cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_WRAP,
        )
        n = 0.75 * a + 0.45 * b
        soft = self.soft0 * (1 + 0.6 * math.sin(2 * math.pi * t / self.soft_period))
        shade = _smoothstep(self.cut - soft, self.cut + soft, n)
        dim = self.dimness(t)
        direct = 1 - dim / 0.4  # no cloud shadows once the sun has gone in
        return ((1 - dim) * (1 - self.depth * max(0.0, direct) * shade)).astype(np.float32)


class _Gusts:
    """Wind strength over time: a breeze with gusts of 2-6 s."""

    def __init__(self, rng: np.random.Generator, seconds: float) -> None:
        self.gusts = []
        t = float(rng.uniform(1, 6))
        while t < seconds:
            self.gusts.append((t, float(rng.uniform(2, 6)), float(rng.uniform(0.7, 1.6))))
            t += float(rng.uniform(3, 12))

    def at(self, t: float) -> float:
        s = 0.25
        for t0, dur, peak in self.gusts:
            if t0 <= t <= t0 + dur:
                s += peak * math.sin(math.pi * (t - t0) / dur) ** 2
        return s


class _Hedge:
    """A synthetic hedge along the bottom of the picture, swaying in the wind (warped per frame)."""

    def __init__(self, rng: np.random.Generator, ww: int, wh: int) -> None:
        hh = int(wh * rng.uniform(0.1, 0.16))
        span = int(ww * rng.uniform(0.45, 0.8))
        x0 = 0 if rng.random() < 0.5 else ww - span
        pad = max(4, hh // 3)  # the top edge sways into this
        self.box = (x0, wh - hh - pad, x0 + span, wh)
        h, w = hh + pad, span
        coarse = _periodic_noise(rng, w, h, (max(2, w // 40), max(2, h // 30)))
        leaves = _periodic_noise(rng, w, h, (max(4, w // 3), max(4, h // 3)))
        fine = _periodic_noise(rng, w, h, (max(4, w), max(4, h)))
        tone = np.clip(0.5 + 0.18 * coarse + 0.25 * leaves + 0.12 * fine, 0, 1)
        dark, light = np.array([25, 55, 30], np.float32), np.array([70, 150, 95], np.float32)
        col = dark + (light - dark) * tone[..., None]
        edge_n = _periodic_noise(rng, w, 1, (max(2, w // 25), 1))[0]
        top = pad + 0.35 * hh * (0.5 + 0.35 * edge_n)  # a lumpy top edge
        top[: max(1, w // 20)] += np.linspace(0.3 * hh, 0, max(1, w // 20))  # rounded ends
        top[-max(1, w // 20) :] += np.linspace(0, 0.3 * hh, max(1, w // 20))
        rows = np.arange(h, dtype=np.float32)[:, None]
        ragged = top[None, :] + 2.5 * leaves
        alpha = _smoothstep(-1.5, 1.5, rows - ragged)
        self.rgba = np.dstack([col * alpha[..., None], alpha * 255]).astype(np.float32)
        self.lean = np.clip((h - rows) / h, 0, 1) ** 1.5  # the top sways, the roots do not
        self.turb = _periodic_noise(rng, 2 * w // 4 + 8, 2 * h // 4 + 8, (8, 4))
        self.amp = 0.012 * ww  # sway in a strong gust (px)
        self.lam = float(rng.uniform(0.15, 0.3)) * w
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        self.xs, self.ys = xs, ys

    def draw(self, img: F32, t: float, wind: float) -> None:
        x0, y0, x1, y1 = self.box
        tx, ty = self.turb.shape[1], self.turb.shape[0]
        sx, sy = (self.xs / 2 + 14 * t) % tx, (self.ys / 2) % ty
        turb = cv2.remap(self.turb, sx, sy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)
        wave = np.sin(2 * np.pi * (0.9 * t - self.xs / self.lam))
        dx = self.amp * wind * self.lean * (0.6 * wave + 0.7 * turb)
        dy = 0.3 * np.abs(dx)
        warped = _f32(
            cv2.remap(
                self.rgba,
                self.xs + dx,
                self.ys + dy,
                cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_REPLICATE,
            )
        )
        roi = img[y0:y1, x0:x1]
        roi *= 1 - warped[..., 3:] / 255
        roi += warped[..., :3]


class _Rain:
    """Thin, motion-blurred streaks at an angle (each lasts one frame) and a few near the lens."""

    def __init__(self, rng: np.random.Generator, w: int, h: int) -> None:
        self.rng, self.w, self.h = rng, w, h
        self.n = int(w * h / 1e4 * rng.uniform(2.5, 5.0))
        self.angle = math.radians(float(rng.uniform(-25, 25)))
        self.length = (0.03 * h, 0.08 * h)

    def layer(self, night: bool) -> F32:
        rng, w, h = self.rng, self.w, self.h
        out = np.zeros((h, w), np.uint8)
        x = rng.uniform(-0.1 * w, 1.1 * w, self.n)
        y = rng.uniform(-0.1 * h, h, self.n)
        ln = rng.uniform(*self.length, self.n)
        ang = self.angle + rng.normal(0, 0.04, self.n)
        x1, y1 = x + ln * np.sin(ang), y + ln * np.cos(ang)
        lines = np.stack([x, y, x1, y1], axis=1).astype(np.int32).reshape(-1, 2, 2)
        for k, level in enumerate((35, 60, 90)):
            cv2.polylines(out, list(lines[k::3]), False, level, 1, cv2.LINE_AA)
        near = np.zeros((h // 4, w // 4), np.uint8)
        for _ in range(int(rng.integers(2, 6))):  # drops right in front of the lens
            nx, ny = float(rng.uniform(0, w / 4)), float(rng.uniform(-h / 8, h / 4))
            nl = float(rng.uniform(0.15, 0.3)) * h / 4
            p1 = (int(nx + nl * math.sin(self.angle)), int(ny + nl * math.cos(self.angle)))
            cv2.line(
                near,
                (int(nx), int(ny)),
                p1,
                40,
                max(1, int(rng.uniform(1, 3) * h / 1000 * 4)),
                cv2.LINE_AA,
            )
        near_f = cv2.GaussianBlur(near.astype(np.float32), (0, 0), max(1.0, h / 600))
        lay = out.astype(np.float32) + cv2.resize(near_f, (w, h), interpolation=cv2.INTER_LINEAR)
        return _f32(lay * (1.8 if night else 1.0))


class _Snow:
    """Flakes falling with a sideways wobble; the big ones are near the lens, blurred and bright."""

    def __init__(self, rng: np.random.Generator, w: int, h: int) -> None:
        self.rng, self.w, self.h = rng, w, h
        n = int(w * h / 1e4 * rng.uniform(1.0, 2.5))
        self.depth = rng.uniform(0, 1, n) ** 2  # 0: near the lens
        self.x = rng.uniform(0, w, n)
        self.y = rng.uniform(0, h, n)
        scale = h / 576
        self.r = scale * (0.7 + 2.5 * (1 - self.depth) ** 4)
        self.vy = scale * (25 + 70 * (1 - self.depth))
        self.wob = scale * rng.uniform(3, 15, n)
        self.freq = rng.uniform(0.3, 1.2, n)
        self.ph = rng.uniform(0, 2 * math.pi, n)
        self.wind = float(rng.uniform(-20, 20)) * scale
        nb = int(rng.integers(4, 11))
        self.big = np.stack(
            [
                rng.uniform(0, w, nb),
                rng.uniform(0, h, nb),
                scale * rng.uniform(8, 25, nb),
                scale * rng.uniform(150, 260, nb),
            ],
            axis=1,
        )
        self.t = 0.0

    def layer(self, t: float, night: bool) -> F32:
        dt, self.t = t - self.t, t
        self.y += self.vy * dt
        self.x += self.wind * dt * (1.5 - self.depth)
        self.y %= self.h + 10
        self.x %= self.w
        xs = self.x + self.wob * np.sin(2 * math.pi * self.freq * t + self.ph)
        out: F32 = np.zeros((self.h, self.w), np.float32)
        lev = 110 + 120 * (1 - self.depth)
        for x, y, r, v in zip(xs, self.y - 5, self.r, lev, strict=True):
            cv2.circle(
                out, (int(x * 4), int(y * 4)), max(2, int(r * 4)), float(v), -1, cv2.LINE_AA, 2
            )
        out = _f32(cv2.GaussianBlur(out, (0, 0), 0.8))
        big = self.big
        big[:, 1] = (big[:, 1] + big[:, 3] * dt) % (self.h + 60)
        near: F32 = np.zeros((self.h // 4, self.w // 4), np.float32)
        for x, y, r, _v in big:
            xx = x + 20 * math.sin(0.7 * t + r)
            cv2.circle(
                near, (int(xx / 4), int((y - 30) / 4)), max(1, int(r / 4)), 140.0, -1, cv2.LINE_AA
            )
        near = _f32(cv2.GaussianBlur(near, (0, 0), max(1.0, self.h / 400)))
        out += _f32(cv2.resize(near, (self.w, self.h), interpolation=cv2.INTER_LINEAR))
        return out * (1.3 if night else 0.9)


class _Insects:
    """Moths fluttering erratically round the lamp, close to the lens: bright, smeared blobs."""

    def __init__(
        self, rng: np.random.Generator, w: int, h: int, centre: tuple[float, float], seconds: float
    ) -> None:
        self.rng, self.w, self.h, self.c = rng, w, h, centre
        n = int(rng.integers(3, 7))
        self.pos = np.array(centre) + rng.normal(0, 0.1 * h, (n, 2))
        self.vel: F64 = np.zeros((n, 2))
        self.r = rng.uniform(2, 10, n) * h / 576
        self.spans = []  # each moth comes and goes
        for _ in range(n):
            a = float(rng.uniform(0, seconds * 0.6))
            self.spans.append((a, a + float(rng.uniform(4, seconds))))
        self.t = 0.0

    def layer(self, t: float) -> F32:
        dt, self.t = max(1e-3, t - self.t), t
        pull = (np.array(self.c) - self.pos) * 1.5
        kick = self.rng.normal(0, 1.2 * self.h, self.pos.shape)
        self.vel = 0.5 * self.vel + (pull + kick) * dt
        prev = self.pos.copy()
        self.pos += self.vel * dt
        out = np.zeros((self.h, self.w), np.float32)
        for k in range(len(self.r)):
            a, b = self.spans[k]
            if not a <= t <= b:
                continue
            p0 = (int(prev[k, 0]), int(prev[k, 1]))
            p1 = (int(self.pos[k, 0]), int(self.pos[k, 1]))
            cv2.line(out, p0, p1, 230.0, max(1, int(self.r[k])), cv2.LINE_AA)
            cv2.circle(out, p1, max(1, int(self.r[k])), 255.0, -1, cv2.LINE_AA)
        return _f32(cv2.GaussianBlur(out, (0, 0), max(1.0, self.h / 500)))


class _Headlights:
    """Two-lamp light pools of unseen cars sweeping across the ground for 2-4 s now and then."""

    def __init__(self, rng: np.random.Generator, seconds: float) -> None:
        self.events = []
        t = float(rng.uniform(4, 10))
        while t < seconds - 1:
            d = 1 if rng.random() < 0.5 else -1
            self.events.append(
                (
                    t,
                    float(rng.uniform(2, 4)),
                    d,
                    float(rng.uniform(0.5, 0.85)),
                    float(rng.uniform(0.5, 1.0)),
                )
            )
            t += float(rng.uniform(6, 16))

    def pool(self, t: float, sw: int, sh: int) -> F32:
        out = np.zeros((sh, sw), np.float32)
        xs = np.arange(sw, dtype=np.float32)[None, :]
        ys = np.arange(sh, dtype=np.float32)[:, None]
        for t0, dur, d, row, peak in self.events:
            if not t0 <= t <= t0 + dur:
                continue
            f = (t - t0) / dur
            cx = sw * (0.5 + d * (1.4 * f - 0.7))
            env = peak * math.sin(math.pi * f) ** 0.6
            for off in (-0.07, 0.07):
                gx = ((xs - cx - off * sw) / (0.1 * sw)) ** 2
                gy = ((ys - row * sh) / (0.06 * sh)) ** 2
                out += env * np.exp(-0.5 * (gx + gy))
        return out


def _ir_of(img: F32) -> F32:
    """Near-infrared look of a colour image: grass and leaves are bright, the rest gray."""
    b, g, r = img[..., 0], img[..., 1], img[..., 2]
    veg = np.clip((g - np.maximum(r, b)) / 25.0, 0.0, 1.0)
    return _f32((0.25 * b + 0.4 * g + 0.35 * r) * (1 + 0.9 * veg))


def _clock_masks(
    w: int, h: int, when: dt.datetime, corner: int
) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """Burned-in date/time: text and outline masks (the text drawn by the camera, after noise)."""
    scale = h / 800
    th = max(1, round(2 * scale))
    text = np.zeros((h, w), np.uint8)
    edge = np.zeros((h, w), np.uint8)
    stamp = when.strftime("%Y-%m-%d %H:%M:%S")
    (tw, tht), _ = cv2.getTextSize(stamp, cv2.FONT_HERSHEY_SIMPLEX, scale, th)
    m = round(16 * scale)
    x = m if corner in {0, 2} else w - tw - m
    y = m + tht if corner in {0, 1} else h - m
    cv2.putText(edge, stamp, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, 255, th + 2, cv2.LINE_AA)
    cv2.putText(text, stamp, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, 255, th, cv2.LINE_AA)
    return text > 100, edge > 100


# --------------------------------------------------------------------------- rendering

_NIGHT_LEVEL = 72.0  # mean gray level the IR camera's exposure aims at
_LENS_FPS = 10.0  # the cut-outs were filmed at 10 fps: one cut-out per 0.1 s of walking


class _Renderer:
    """Everything static about one clip, and the per-frame rendering."""

    def __init__(self, spec: CompositeClip) -> None:
        unknown = spec.tokens - set(OBJECT_TOKENS) - set(NUISANCE_TOKENS)
        if unknown:
            raise ValueError(f"unknown kind: {sorted(unknown)}")
        if spec.width % 2 or spec.height % 2:
            raise ValueError("width and height must be even (yuv420p)")
        if spec.tokens & {"insects", "headlights"} and "ir_night" not in spec.tokens:
            raise ValueError("insects and headlights are night nuisances: add ir_night")
        self.spec, self.tokens = spec, spec.tokens
        self.view = view = _View(spec)
        lib = _library()
        self.plate = view.plate(lib.plate)
        self.night = "ir_night" in self.tokens
        self.actors = _plan(spec, view, lib) if spec.positive else []
        w, h, ww, wh = spec.width, spec.height, view.ww, view.wh
        self.sw, self.sh = max(16, ww // 4), max(12, wh // 4)
        small = _f32(cv2.resize(self.plate, (self.sw, self.sh), interpolation=cv2.INTER_AREA))
        self.lum_small = (
            _ir_of(small) if self.night else small @ np.array([0.114, 0.587, 0.299], np.float32)
        )
        rng = _rng(spec, "camera")
        self.tau = float(rng.uniform(1.0, 2.5))  # auto-exposure lag (s)
        self.clouds = (
            _Clouds(_rng(spec, "clouds"), self.sw, self.sh, spec.seconds)
            if "clouds" in self.tokens
            else None
        )
        self.headlights = (
            _Headlights(_rng(spec, "headlights"), spec.seconds)
            if "headlights" in self.tokens
            else None
        )
        self.lamp = view.output_point(*LAMP_HEAD)
        self.illum = self._night_light() if self.night else None
        self.hedge = _Hedge(_rng(spec, "foliage"), ww, wh) if "foliage" in self.tokens else None
        self.gusts = _Gusts(_rng(spec, "wind"), spec.seconds)
        self.rain = _Rain(_rng(spec, "rain"), w, h) if "rain" in self.tokens else None
        self.snow = _Snow(_rng(spec, "snow"), w, h) if "snow" in self.tokens else None
        lamp_in_view = 0 <= self.lamp[0] < w and 0 <= self.lamp[1] + 0.05 * h < h
        centre = (self.lamp[0], self.lamp[1] + 0.05 * h) if lamp_in_view else (0.5 * w, 0.35 * h)
        self.insects = (
            _Insects(_rng(spec, "insects"), w, h, centre, spec.seconds)
            if "insects" in self.tokens
            else None
        )
        self.clock0 = dt.datetime(2025, 1, 1, 0, 0) + dt.timedelta(
            days=int(rng.integers(0, 365)), seconds=int(rng.integers(0, 86400))
        )
        self.corner = int(rng.integers(0, 4))
        self.clock_cache: tuple[int, NDArray[np.bool_], NDArray[np.bool_]] | None = None
        nrng = _rng(spec, "noise")
        self.noise_rng = nrng
        self.bank = nrng.standard_normal((h + 64, w + 64), dtype=np.float32)
        self.shot, self.floor, self.rows = (0.5, 4.0, 1.5) if self.night else (0.06, 0.8, 0.5)
        self.gain = self._gain_target(0.0)  # settled on the first frame

    def _night_light(self) -> F32:
        """IR illumination at the small size: the camera's lamp hot-spot, the street lamp, dark corners."""
        sw, sh = self.sw, self.sh
        xs = (np.arange(sw, dtype=np.float32)[None, :] + 0.5) / sw
        ys = (np.arange(sh, dtype=np.float32)[:, None] + 0.5) / sh
        spot = np.exp(-0.5 * (((xs - 0.5) / 0.3) ** 2 + ((ys - 0.65) / 0.35) ** 2))
        lx, ly = self.lamp[0] / self.view.w, self.lamp[1] / self.view.h
        glow = np.exp(-0.5 * (((xs - lx) / 0.04) ** 2 + ((ys - ly) / 0.05) ** 2))
        return (0.12 + 1.1 * spot + 1.5 * glow).astype(np.float32)

    def _light(self, t: float) -> F32:
        """Scene light at the small size (before the exposure)."""
        if self.night:
            assert self.illum is not None
            if self.headlights is None:
                return self.illum
            return self.illum + self.headlights.pool(t, self.sw, self.sh)
        if self.clouds is None:
            return np.ones((self.sh, self.sw), np.float32)
        return self.clouds.light(t)

    def _gain_target(self, t: float) -> float:
        """What the auto-exposure wants: it makes up for three quarters of a brightness change."""
        mean = float((self.lum_small * self._light(t)).mean())
        ref = _NIGHT_LEVEL if self.night else float(self.lum_small.mean())
        return float((ref / max(1e-3, mean)) ** 0.75)

    def actors_at(
        self, t: float
    ) -> list[tuple[_Actor, float, float, float, int, tuple[float, float, float, float]]]:
        """Visible actors far to near: actor, foot u, v, scale (output px per cut-out px), frame, box."""
        out: list[tuple[_Actor, float, float, float, int, tuple[float, float, float, float], float]]
        out = []
        for a in self.actors:
            st = a.state(t)
            if st is None:
                continue
            x, z, walked, d = st
            u, v, ppm = self.view.foot(x, z)
            sc = a.size_m * ppm / a.look.ref_px
            n = len(a.look.frames)
            k = a.look.stand if walked is None else (a.phase + int(walked * _LENS_FPS)) % n
            bx0, by0, bx1, by1 = a.look.bodies[k]
            flip = d != a.look.facing
            xs = (u - bx1 * sc, u - bx0 * sc) if flip else (u + bx0 * sc, u + bx1 * sc)
            box = (xs[0], v + by0 * sc, xs[1], v + by1 * sc)
            out.append((a, u, v, sc, k, box, z))
        out.sort(key=lambda r: -r[6])
        return [r[:6] for r in out]

    def render(
        self, t: float, dt_s: float
    ) -> tuple[U8, list[tuple[_Actor, tuple[float, float, float, float]]]]:
        """One frame as yuv420p planes, and the actors drawn with their boxes (output px)."""
        view, kw = self.view, self.view.k
        img = self.plate.copy()
        drawn = []
        for a, u, v, sc, k, box in self.actors_at(t):
            st = a.state(t)
            assert st is not None
            flip = st[3] != a.look.facing
            size_px = a.size_m * view.foot(st[0], st[1])[2] * kw
            if a.kind == "car":
                _shadow(img, (u * kw, v * kw), 1.05 * size_px, 0.25 if self.night else 0.5)
            else:
                _shadow(img, (u * kw, v * kw), 0.45 * size_px, 0.12 if self.night else 0.3)
            _paste(
                img, a.look.frames[k], a.look.anchors[k], sc * kw, (u * kw, v * kw), flip, a.gain
            )
            drawn.append((a, box))
        if self.hedge is not None:
            self.hedge.draw(img, t, self.gusts.at(t))
        # light and exposure
        light = self._light(t)
        target = self._gain_target(t)
        self.gain += (target - self.gain) * (1 - math.exp(-dt_s / self.tau))
        full = cv2.resize(light * self.gain, (view.ww, view.wh), interpolation=cv2.INTER_LINEAR)
        pic = _f32(_ir_of(img) * full if self.night else img * full[..., None])
        if (view.ww, view.wh) != (view.w, view.h):
            pic = _f32(cv2.resize(pic, (view.w, view.h), interpolation=cv2.INTER_LINEAR))
        layer = None
        for src in (self.rain, self.snow, self.insects):
            if src is None:
                continue
            lay = (
                src.layer(self.night)
                if isinstance(src, _Rain)
                else src.layer(t, self.night)
                if isinstance(src, _Snow)
                else src.layer(t)
            )
            layer = lay if layer is None else layer + lay
        if layer is not None:
            pic = pic + (layer if self.night else layer[..., None])
        u8 = np.clip(pic, 0, 255).astype(np.uint8)
        h, w = view.h, view.w
        if self.night:
            planes: U8 = np.full((h * 3 // 2, w), 128, np.uint8)
            planes[:h] = cv2.convertScaleAbs(u8, alpha=219 / 255, beta=16)
        else:
            yuv = av.VideoFrame.from_ndarray(u8, format="bgr24").reformat(format="yuv420p")
            planes = np.asarray(yuv.to_ndarray(), np.uint8)
        # sensor noise: shot noise (variance grows with the level) and row noise
        y = planes[:h].astype(np.float32)
        ox, oy = self.noise_rng.integers(0, 64, 2)
        sigma = _f32(cv2.sqrt(self.shot * y + self.floor))
        rows = self.noise_rng.normal(0, self.rows, (h, 1)).astype(np.float32)
        y += self.bank[oy : oy + h, ox : ox + w] * sigma + rows
        planes[:h] = np.clip(y, 0, 255).astype(np.uint8)
        if "clock" in self.tokens:
            sec = int(t)
            if self.clock_cache is None or self.clock_cache[0] != sec:
                when = self.clock0 + dt.timedelta(seconds=sec)
                self.clock_cache = (sec, *_clock_masks(w, h, when, self.corner))
            _s, text, edge = self.clock_cache
            planes[:h][edge] = 20
            planes[:h][text] = 232
            chroma = (
                cv2.resize(edge.astype(np.uint8), (w // 2, h // 2), interpolation=cv2.INTER_NEAREST)
                > 0
            )
            u_pl = planes[h : h + h // 4].reshape(h // 2, w // 2)
            v_pl = planes[h + h // 4 :].reshape(h // 2, w // 2)
            u_pl[chroma] = 128
            v_pl[chroma] = 128
        return planes, drawn


def _open_writer(
    path: Path, spec: CompositeClip, lowrate: bool
) -> tuple[av.container.OutputContainer, Any]:
    """This generator's bitrates (3.2 Mbit/s at 1080p15) and GOPs (2 s; starved: 1 s)."""
    px = spec.width * spec.height * spec.fps / (1920 * 1080 * 15)
    kbps = max(100, int(3200 * px**0.8 * (0.08 if lowrate else 1.0)))
    gop = spec.fps * (1 if lowrate else 2)
    return open_encoder(
        path, spec.width, spec.height, spec.fps, kbps, gop, kbps // (2 if lowrate else 1)
    )


def _visible(box: tuple[float, float, float, float], w: int, h: int) -> float:
    x0, y0, x1, y1 = box
    area = max(1e-6, (x1 - x0) * (y1 - y0))
    ix = max(0.0, min(x1, w) - max(x0, 0.0))
    iy = max(0.0, min(y1, h) - max(y0, 0.0))
    return ix * iy / area


def render_composite(spec: CompositeClip, path: Path | None = None) -> SceneTruth:
    """Render and encode one clip (to spec.path unless given) and return its truth."""
    path = path or spec.path
    r = _Renderer(spec)
    w, h = spec.width, spec.height
    n_frames = round(spec.seconds * spec.fps)
    log = TruthLog(w, h)
    index = {id(a): k for k, a in enumerate(r.actors)}
    path.parent.mkdir(parents=True, exist_ok=True)
    out, stream = _open_writer(path, spec, "lowrate" in spec.tokens)
    try:
        for i in range(n_frames):
            t = i / spec.fps
            planes, drawn = r.render(t, 1 / spec.fps)
            any_visible = False
            for a, box in drawn:
                inside = (
                    max(0.0, box[0]),
                    max(0.0, box[1]),
                    min(float(w), box[2]),
                    min(float(h), box[3]),
                )
                height = (box[3] - box[1]) / h
                any_visible |= log.seen(index[id(a)], t, _visible(box, w, h), inside, height)
            log.present.append(any_visible)
            encode_planes(out, stream, planes, i, spec.fps)
        finish_encoder(out, stream)
    finally:
        out.close()
    log.check_warmup(spec.name)
    return log.truth(spec.kind, path, spec.fps, spec.seconds, spec.seed)


def ensure_composite(spec: CompositeClip) -> SceneTruth:
    """Render the clip unless it is cached (clip and truth next to it)."""
    return rendered(spec.path, lambda: render_composite(spec), f"{spec.name} ({spec.kind})")


# --------------------------------------------------------------------------- the set

VGA, HD, FHD = (768, 576), (1280, 720), (1920, 1080)


def _clip(  # noqa: PLR0917
    name: str,
    kind: str,
    size: tuple[int, int],
    fps: int,
    seconds: float,
    seed: int,
    view: str = "full",
    mirror: bool = False,
) -> CompositeClip:
    return CompositeClip(name, kind, size[0], size[1], fps, seconds, seed, view, mirror)


COMPOSITE_SET: list[CompositeClip] = [
    # positives: people and cars, most with nuisances
    _clip("p01_clouds_standing", "walk_diagonal+stand_still+clouds", HD, 12, 55, 9001),
    _clip("p02_headon_clouds", "walk_headon+clouds", HD, 15, 45, 9002, "road"),
    _clip("p03_ir_snow_diagonal", "walk_diagonal+ir_night+snow", VGA, 10, 45, 9003, mirror=True),
    _clip(
        "p04_ir_rain_insects_walker", "walk_side+ir_night+rain+insects", HD, 12, 40, 9004, "lawn"
    ),
    _clip("p05_fast_cars_far_walkers_clock", "car_far+car_near+small_far+clock", VGA, 15, 45, 9005),
    _clip("p06_stand_still_foliage_clock", "stand_still+foliage+clock", FHD, 10, 50, 9006, "lawn"),
    _clip("p07_group_lowrate_clouds", "group+lowrate+clouds", HD, 12, 45, 9007, mirror=True),
    _clip("p08_stop_go_diagonal", "stop_go+walk_diagonal", VGA, 15, 40, 9008, "road"),
    _clip("p09_small_far_foliage", "small_far+walk_side+foliage", VGA, 15, 50, 9009),
    _clip(
        "p10_ir_headon_headlights",
        "walk_headon+ir_night+headlights",
        FHD,
        10,
        40,
        9010,
        mirror=True,
    ),
    # negatives: nuisances only
    _clip("n01_clouds_sun_bursts", "clouds", HD, 15, 55, 9011),
    _clip("n02_ir_snow_insects", "ir_night+snow+insects", VGA, 10, 45, 9012, "road"),
    _clip("n03_ir_rain_headlights", "ir_night+rain+headlights", HD, 12, 50, 9013, mirror=True),
    _clip("n04_foliage_clock_lowrate", "foliage+clock+lowrate+clouds", HD, 15, 45, 9014, "lawn"),
]


if __name__ == "__main__":
    cv2.setNumThreads(1)  # one core: leave the other to whatever else runs
    t_all = time.monotonic()
    for clip in COMPOSITE_SET:
        ensure_composite(clip)
    minutes = sum(c.seconds for c in COMPOSITE_SET) / 60
    print(f"  {len(COMPOSITE_SET)} clips, {minutes:.1f} min, {time.monotonic() - t_all:.0f} s")

"""Camera-like labelled test clips for the motion detector (tests and bench).

Each clip is an H.264 (yuv420p, no B-frames, fixed GOP, CBR-like) MP4 of a static textured
outdoor scene with per-frame ground truth. A kind is one name or several joined by "+"
(e.g. "object+rain"), so positives can carry the same nuisances as the negatives:

- ``object``: people walk in from the frame edges (person-sized, 22-40 % of frame height)
- ``small_object``: far-away people (about 5 % of frame height) step out from behind a shed
- ``light_ramp``: slow sunset/cloud gain changes with a moving left/right tilt
- ``ir_switch``: the camera toggles day (colour) and night (IR gray) with exposure settling
- ``night_noise``: dark gray IR picture with heavy, slightly blotchy sensor noise
- ``rain``: dense thin streaks plus big blurry drops close to the lens
- ``snow``: drifting flakes, some large and close to the lens
- ``foliage``: a bush/tree region that sways and gusts
- ``clock``: a burned-in date/time overlay (crossing minute and hour changes)
- ``compression``: a starved bitrate (blocking, keyframe pulsing)

The field's known hard cases (``HARD_KINDS``; kept out of ``KINDS``, which the tests iterate):

- ``cloud_shadows``: soft-edged cloud shadows (20-50 % darker, edges 2.5-5 % of the width) drifting
  across the ground, and now and then the sun going in or out (the scene 20-40 % darker or back
  within 0.2-1 s, the exposure making up part of it within seconds); combine with ``object``
- ``storm_clouds``: the same, wind-driven: in any direction at 15-35 % of the width per second,
  with crisper edges (0.5-2 % of the width) and deeper shadows (40-70 % darker)
- ``ir_particles``: IR night with snow, rain or insects right in front of the IR lamp: big
  (3-15 % of the frame height), bright, out-of-focus blobs, streaks and erratic moths that come and
  go within a few frames
- ``ir_snowstorm``: IR night in a snowstorm: flakes at 0.1-5 m from the lens, each in view for
  seconds, falling through a gusting wind, fluttering, and hovering or rising in the eddies round
  the camera housing (near ones big, bright and smeared, far ones small and sharp)
- ``ir_insects``: IR night; moths (a few, up to a summer swarm) circling a light in loops for
  2-20 s each, at changing depth (growing and shrinking), flickering with their wing beats,
  turning and changing loops now and then
- ``headlights``: IR night; a car's headlights sweep a bright two-lamp pool over the ground or the
  buildings for 2-4 s, several times a minute (no object in view)
- ``headlight_shadows``: as ``headlights``, but the beams have hard edges and shine through a fence
  and past poles: sharp stripes of light and shadow sweep with the pool, the fence's slower than
  the pool and the poles' the other way, faster (parallax: the light moves, the fence does not)
- ``fast_vehicle`` (positive): small far-away cars (3-6 % of frame height) crossing in 1-3 s on a
  road behind the sheds, several per clip, labelled small
- ``near_vehicle`` (positive): cars close to the camera (15-35 % of frame height, 6-15 m away)
  crossing at 30-60 km/h in 0.7-3 s, in front of everything
- ``standing`` (positive): a person walks in, stands still for 10-20 s (still present), then walks
  on (or turns back)
- ``approach`` (positive): a person steps out from behind a shed and walks straight at the camera
  (growing until they pass under it), and one comes from under the camera and walks away
  (shrinking) until hidden behind a shed

Everything is seeded, so the same arguments give the same clip. The truth is also written next
to the clip as JSON (``load_truth`` reads it back), which lets benchmarks cache clips.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
import datetime as dt
from fractions import Fraction
import itertools
import json
import math
from pathlib import Path
import time
from typing import Any, Protocol

import av
import cv2
import numpy as np
from numpy.typing import NDArray

U8 = NDArray[np.uint8]
F32 = NDArray[np.float32]

KINDS = (
    "object",
    "small_object",
    "light_ramp",
    "ir_switch",
    "night_noise",
    "rain",
    "snow",
    "foliage",
    "clock",
    "compression",
)
POSITIVE_KINDS = ("object", "small_object")
# the field's known hard cases; kept out of KINDS so that what iterates over the original kinds
# (tests, cached clips) is unchanged
HARD_KINDS = (
    "cloud_shadows",
    "ir_particles",
    "headlights",
    "fast_vehicle",
    "standing",
    "approach",
    "storm_clouds",
    "ir_snowstorm",
    "ir_insects",
    "near_vehicle",
    "headlight_shadows",  # (new kinds go last: a kind's place seeds its random stream, _hard_rng)
)
HARD_POSITIVE_KINDS = ("fast_vehicle", "standing", "approach", "near_vehicle")
ALL_KINDS = KINDS + HARD_KINDS
ALL_POSITIVE_KINDS = POSITIVE_KINDS + HARD_POSITIVE_KINDS
_NIGHT_KINDS = {
    "night_noise",
    "ir_particles",
    "headlights",
    "headlight_shadows",
    "ir_snowstorm",
    "ir_insects",
}  # IR gray, dark, noisy
WARMUP_S = 3.0  # no object appears before this: detectors need a few frames to learn the scene
HORIZON = 0.36
VISIBLE_PRESENT = 0.02  # an object counts as present once this fraction of it is visible
VISIBLE_APPEAR = 0.5  # ... and as "appeared" (for recall/latency) once half of it is
SMALL_HEIGHT = 0.08  # an object is small if it never gets taller than this share of the frame


@dataclass(frozen=True, slots=True)
class ObjectInterval:
    """One object's life on screen: first visible, half visible ("appearance"), last visible."""

    start: float
    appear: float
    end: float
    small: bool
    box: tuple[float, float, float, float] = (0.0, 0.0, 1.0, 1.0)  # relative x, y, w, h of its path


@dataclass(frozen=True, slots=True)
class SceneTruth:
    """Ground truth of one generated clip."""

    kind: str
    path: str
    width: int
    height: int
    fps: int
    seconds: float
    seed: int
    present: tuple[bool, ...]  # per frame: is any object visible?
    intervals: tuple[ObjectInterval, ...] = field(default=())

    @property
    def positive(self) -> bool:
        """Whether the clip contains objects at all."""
        return bool(self.intervals)

    def present_at(self, t: float, margin: float = 0.0) -> bool:
        """Whether an object is visible at time t (with a margin in seconds either side)."""
        return any(iv.start - margin <= t <= iv.end + margin for iv in self.intervals)

    def to_json(self) -> str:
        """Serialise (for caching next to the clip)."""
        return json.dumps(asdict(self))

    @staticmethod
    def from_json(text: str) -> SceneTruth:
        """Inverse of to_json."""
        raw = json.loads(text)
        raw["present"] = tuple(raw["present"])
        raw["intervals"] = tuple(
            ObjectInterval(**{**iv, "box": tuple(iv.get("box", (0.0, 0.0, 1.0, 1.0)))})
            for iv in raw["intervals"]
        )
        return SceneTruth(**raw)


def truth_path(path: Path) -> Path:
    """Where the truth of a clip is stored."""
    return path.with_suffix(".json")


def load_truth(path: Path) -> SceneTruth | None:
    """The cached truth of a clip, or None when the clip or its truth is missing."""
    tp = truth_path(path)
    if not path.exists() or not tp.exists():
        return None
    return SceneTruth.from_json(tp.read_text())


# --------------------------------------------------------------------------- background


def _smooth(rng: np.random.Generator, w: int, h: int, cells: tuple[int, int]) -> F32:
    """Smooth noise in 0..1 (random grid upscaled with cubic interpolation)."""
    small = rng.random((cells[1], cells[0])).astype(np.float32)
    out = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


@dataclass(slots=True)
class _Layout:
    """The static scene: background image and the sheds that hide far-away walkers."""

    bg: U8
    sheds: list[tuple[int, int, int, int]]  # x0, y0, x1, y1 in pixels
    foliage: tuple[int, int, int, int]  # x0, y0, x1, y1 of the bush/tree region


def _background(rng: np.random.Generator, w: int, h: int) -> _Layout:
    """A textured outdoor scene: sky, ground, a path, buildings, sheds, a bush."""
    hz = int(HORIZON * h)
    img = np.zeros((h, w, 3), np.float32)
    sky = _smooth(rng, w, h, (6, 4))
    for c, base in enumerate((225.0, 200.0, 170.0)):
        img[:hz, :, c] = base - 40 * sky[:hz] - np.linspace(0, 30, hz, dtype=np.float32)[:, None]
    mix = _smooth(rng, w, h, (10, 6))
    blot = _smooth(rng, w, h, (max(8, w // 24), max(6, h // 24)))
    grass = np.stack([60 + 30 * blot, 110 + 50 * blot, 70 + 30 * blot], axis=-1)
    paving = np.repeat((120 + 60 * blot)[..., None], 3, axis=-1)
    m = (mix > 0.5).astype(np.float32)[..., None]
    img[hz:] = (m * grass + (1 - m) * paving)[hz:]
    # a path across the foreground, where the near walkers go
    py0, py1 = int(0.72 * h), int(0.9 * h)
    img[py0:py1] = 0.6 * img[py0:py1] + 0.4 * np.array([150, 150, 155], np.float32)
    # buildings on the horizon with windows
    for _ in range(3):
        bw, bh = int(rng.uniform(0.1, 0.2) * w), int(rng.uniform(0.12, 0.25) * h)
        bx = int(rng.uniform(0, w - bw))
        col = rng.uniform(70, 200, 3)
        img[hz - bh : hz, bx : bx + bw] = col
        for wy in range(hz - bh + bh // 8, hz - bh // 6, max(4, bh // 5)):
            for wx in range(bx + bw // 10, bx + bw - bw // 10, max(4, bw // 6)):
                img[wy : wy + max(2, bh // 10), wx : wx + max(2, bw // 12)] = rng.uniform(20, 90)
    # two sheds just below the horizon (far walkers hide behind them)
    sheds = []
    for x_rel in (rng.uniform(0.12, 0.3), rng.uniform(0.6, 0.8)):
        sw, sh = int(0.09 * w), int(0.16 * h)
        sx, sy = int(x_rel * w), hz - int(0.05 * h)
        img[sy : sy + sh, sx : sx + sw] = rng.uniform(60, 160, 3)
        img[sy : sy + max(2, sh // 8), sx : sx + sw] = rng.uniform(30, 80)
        sheds.append((sx, sy, sx + sw, sy + sh))
    # fine texture everywhere (gravel, grass blades, brickwork): detectors must not see it move
    tex = rng.normal(0.0, 9.0, (h, w)).astype(np.float32)
    img += np.asarray(cv2.GaussianBlur(tex, (3, 3), 0), np.float32)[..., None]
    fx0, fy0 = int(0.78 * w), int(0.42 * h)
    foliage = (fx0, fy0, min(w, fx0 + int(0.22 * w)), min(h, fy0 + int(0.36 * h)))
    bg = np.clip(img, 0, 255).astype(np.uint8)
    return _Layout(bg, sheds, foliage)


# --------------------------------------------------------------------------- objects


@dataclass(slots=True)
class _Walker:
    """A person walking along a straight horizontal line at a constant speed."""

    t0: float
    x0: float  # pixels, centre
    x1: float
    feet_y: float
    height: float
    speed: float  # pixels per second (signed by direction)
    shirt: tuple[float, float, float]
    pants: tuple[float, float, float]
    small: bool
    phase: float

    def x_at(self, t: float) -> float | None:
        """Centre x at time t, or None when not on its path."""
        if t < self.t0:
            return None
        x = self.x0 + self.speed * (t - self.t0)
        if (self.speed > 0 and x > self.x1) or (self.speed < 0 and x < self.x1):
            return None
        return x


def _person(walker: _Walker, t: float, swing: float | None = None) -> tuple[U8, U8]:
    """Render a person sprite (BGR, alpha mask) with swinging legs and arms (or a given swing)."""
    h = max(6, round(walker.height))
    w = max(3, round(0.45 * h))
    img = np.zeros((h, w, 3), np.uint8)
    mask = np.zeros((h, w), np.uint8)
    sc = 16  # sub-pixel drawing precision (shift=4)
    if swing is None:
        swing = math.sin(2 * math.pi * 0.9 * t + walker.phase)
    cx = w / 2
    hip = (cx, 0.52 * h)

    def pt(x: float, y: float) -> tuple[int, int]:
        return round(x * sc), round(y * sc)

    def limb(a: tuple[float, float], b: tuple[float, float], col: tuple[float, ...]) -> None:
        th = max(1, round(0.09 * h))
        cv2.line(img, pt(*a), pt(*b), col, th, cv2.LINE_AA, 4)
        cv2.line(mask, pt(*a), pt(*b), 255, th, cv2.LINE_AA, 4)

    for s in (swing, -swing):
        limb(hip, (cx + 0.18 * h * s, h - 1), walker.pants)
    torso = (pt(cx, 0.36 * h), pt(0.13 * h, 0.19 * h))
    cv2.ellipse(img, torso[0], torso[1], 0, 0, 360, walker.shirt, -1, cv2.LINE_AA, 4)
    cv2.ellipse(mask, torso[0], torso[1], 0, 0, 360, 255, -1, cv2.LINE_AA, 4)
    for s in (swing, -swing):
        limb((cx, 0.22 * h), (cx - 0.14 * h * s, 0.5 * h), walker.shirt)
    head = (pt(cx, 0.09 * h), round(0.085 * h * sc))
    skin = (walker.shirt[0] * 0.3 + 70, walker.shirt[1] * 0.3 + 95, walker.shirt[2] * 0.3 + 130)
    cv2.circle(img, head[0], head[1], skin, -1, cv2.LINE_AA, 4)
    cv2.circle(mask, head[0], head[1], 255, -1, cv2.LINE_AA, 4)
    return img, mask


def _contrasting(rng: np.random.Generator, local: float) -> tuple[float, float, float]:
    """A clothing colour whose brightness differs from the local background by 22-70 levels."""
    delta = rng.uniform(22, 70) * (
        1 if (local < 100 or (local < 170 and rng.random() < 0.5)) else -1
    )
    lum = float(np.clip(local + delta, 5, 250))
    tint = rng.uniform(-25, 25, 3)
    return (lum + tint[0], lum + tint[1], lum + tint[2])


def _plan_walkers(
    rng: np.random.Generator, lay: _Layout, kind: set[str], *, w: int, h: int, seconds: float
) -> list[_Walker]:
    """Schedule the clip's walkers one after another, each after the warm-up."""
    walkers: list[_Walker] = []
    t = WARMUP_S + rng.uniform(0.0, 1.0)
    gray = cv2.cvtColor(lay.bg, cv2.COLOR_BGR2GRAY)
    hz = HORIZON * h
    while t < seconds - 2.0:
        small = "small_object" in kind and ("object" not in kind or rng.random() < 0.5)
        if small:
            shed = lay.sheds[int(rng.integers(0, len(lay.sheds)))]
            height = rng.uniform(0.045, 0.06) * h
            feet = shed[3] - 0.03 * h
            speed = rng.uniform(0.02, 0.04) * w * (1 if rng.random() < 0.5 else -1)
            x0 = (shed[0] + shed[2]) / 2
            dur = rng.uniform(4.0, 8.0)
        else:
            feet = rng.uniform(0.7, 0.97) * h
            height = 0.62 * (feet - hz) * rng.uniform(0.9, 1.1)
            dur = rng.uniform(3.5, 7.0)
            speed = (w + 0.6 * height) / dur * (1 if rng.random() < 0.5 else -1)
            x0 = -0.25 * height if speed > 0 else w + 0.25 * height
        x1 = x0 + speed * dur
        yb = int(np.clip(feet - height / 2, 0, h - 1))
        xs = np.clip(np.linspace(x0, x1, 8), 0, w - 1).astype(int)
        local = float(np.mean(gray[yb, xs]))
        walkers.append(
            _Walker(
                t0=t,
                x0=x0,
                x1=x1,
                feet_y=feet,
                height=height,
                speed=speed,
                shirt=_contrasting(rng, local),
                pants=_contrasting(rng, local),
                small=small,
                phase=rng.uniform(0, 6.28),
            )
        )
        t += dur + rng.uniform(1.5, 3.5)
    return walkers


def _draw_walker(
    frame: U8, lay: _Layout, wk: _Walker, t: float
) -> tuple[float, tuple[int, int, int, int]]:
    """Draw one walker (hidden behind the sheds): visible fraction of its body, its pixel box."""
    x = wk.x_at(t)
    nothing = (0.0, (0, 0, 0, 0))
    if x is None:
        return nothing
    sprite, alpha = _person(wk, t)
    sh, sw = alpha.shape
    h, w = frame.shape[:2]
    x0, y0 = round(x - sw / 2), round(wk.feet_y - sh)
    fx0, fy0, fx1, fy1 = max(0, x0), max(0, y0), min(w, x0 + sw), min(h, y0 + sh)
    total = float(alpha.sum())
    if fx1 <= fx0 or fy1 <= fy0 or total <= 0:
        return nothing
    a = alpha[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0].astype(np.float32) / 255.0
    for sx0, sy0, sx1, sy1 in lay.sheds:
        ox0, oy0, ox1, oy1 = max(fx0, sx0), max(fy0, sy0), min(fx1, sx1), min(fy1, sy1)
        if ox1 > ox0 and oy1 > oy0:
            a[oy0 - fy0 : oy1 - fy0, ox0 - fx0 : ox1 - fx0] = 0.0
    visible = float(a.sum()) * 255.0 / total
    if visible > 0:
        s = sprite[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0].astype(np.float32)
        region = frame[fy0:fy1, fx0:fx1].astype(np.float32)
        a3 = a[..., None]
        frame[fy0:fy1, fx0:fx1] = (a3 * s + (1 - a3) * region).astype(np.uint8)
    return visible, (fx0, fy0, fx1, fy1)


# --------------------------------------------------------------------------- nuisances


class _Foliage:
    """A bush/tree whose leaves sway (stronger at the top) with random gusts."""

    def __init__(self, rng: np.random.Generator, lay: _Layout) -> None:
        x0, y0, x1, y1 = lay.foliage
        self.box = lay.foliage
        w, h = x1 - x0, y1 - y0
        leaves = _smooth(rng, w, h, (max(4, w // 5), max(4, h // 5)))
        fine = rng.random((h, w)).astype(np.float32)
        fine = np.asarray(cv2.GaussianBlur(fine, (0, 0), max(1.0, w / 300)), np.float32)
        tex = 0.55 * leaves + 0.45 * (fine - fine.min()) / max(1e-6, float(np.ptp(fine)))
        self.tex = np.stack([40 + 60 * tex, 80 + 120 * tex, 40 + 60 * tex], -1).astype(np.uint8)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        shape = ((xx - w / 2) / (w / 2)) ** 2 + ((yy - h * 0.55) / (h * 0.55)) ** 2
        self.alpha = np.clip((1.0 - shape) * 4.0, 0, 1).astype(np.float32)[..., None]
        self.xx, self.yy = xx, yy
        self.lean = ((h - yy) / h) ** 1.5  # the top moves most
        self.amp = max(2.0, 0.012 * w / 0.22)
        self.period = rng.uniform(1.2, 2.5)
        self.gusts = [(rng.uniform(0, 60), rng.uniform(1.5, 4.0)) for _ in range(8)]
        self.phase = rng.uniform(0, 6.28)

    def apply(self, frame: U8, t: float) -> None:
        gust = sum(2.5 * math.exp(-(((t - g0) / gd) ** 2)) for g0, gd in self.gusts)
        sway = self.amp * (1 + gust) * math.sin(2 * math.pi * t / self.period + self.phase)
        flutter = 0.35 * self.amp * math.sin(2 * math.pi * t * 3.1 + 1.3 * self.phase)
        dx = self.lean * sway + flutter * np.sin(self.yy / 7.0 + t * 9.0)
        mapx = (self.xx + dx).astype(np.float32)
        warped = cv2.remap(self.tex, mapx, self.yy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        x0, y0, x1, y1 = self.box
        region = frame[y0:y1, x0:x1].astype(np.float32)
        frame[y0:y1, x0:x1] = (self.alpha * warped + (1 - self.alpha) * region).astype(np.uint8)


class _Snow:
    """Flakes falling with drift; a few large close ones."""

    def __init__(self, rng: np.random.Generator, w: int, h: int) -> None:
        n = int(260 * (w * h) / (1280 * 720)) + 40
        self.rng, self.w, self.h = rng, w, h
        self.pos = rng.random((n, 2)) * (w, h)
        near = rng.random(n) < 0.06
        self.size = np.where(near, rng.uniform(5, 11, n), rng.uniform(0.8, 2.5, n)) * h / 720
        speed = np.where(near, rng.uniform(250, 500, n), rng.uniform(30, 90, n)) * h / 720
        self.vel = np.stack([rng.uniform(-0.3, 0.3, n) * speed, speed], -1)
        self.bright = rng.uniform(40, 110, n)

    def apply(self, frame: U8, dt_s: float) -> None:
        self.pos += self.vel * dt_s
        self.pos[:, 0] += self.rng.normal(0, 0.6, len(self.pos)) * self.size
        gone = self.pos[:, 1] > self.h + 20
        self.pos[gone, 1] = -10
        self.pos[gone, 0] = self.rng.random(int(gone.sum())) * self.w
        layer = np.zeros(frame.shape[:2], np.uint8)
        for (x, y), r, b in zip(self.pos, self.size, self.bright, strict=True):
            cv2.circle(
                layer, (round(x * 16), round(y * 16)), round(r * 16), float(b), -1, cv2.LINE_AA, 4
            )
        layer = np.asarray(cv2.GaussianBlur(layer, (5, 5), 0), np.uint8)
        cv2.add(frame, cv2.cvtColor(layer, cv2.COLOR_GRAY2BGR), dst=frame)


def _rain(rng: np.random.Generator, frame: U8) -> None:
    """Dense thin streaks, plus now and then big blurry drops near the lens (one frame each)."""
    h, w = frame.shape[:2]
    s = h / 720
    layer = np.zeros((h, w), np.uint8)
    n = int(350 * (w * h) / (1280 * 720))
    xs, ys = rng.random(n) * w, rng.random(n) * h
    lens = rng.uniform(12, 45, n) * s
    bright = rng.uniform(20, 60, n)
    slant = 0.18
    for x, y, ln, b in zip(xs, ys, lens, bright, strict=True):
        cv2.line(
            layer, (int(x), int(y)), (int(x + slant * ln), int(y + ln)), float(b), 1, cv2.LINE_AA
        )
    for _ in range(int(rng.poisson(1.2))):
        x, y = rng.random() * w, rng.random() * h
        ln, th = rng.uniform(90, 260) * s, max(3, int(rng.uniform(5, 14) * s))
        cv2.line(
            layer, (int(x), int(y)), (int(x + slant * ln), int(y + ln)), rng.uniform(40, 90), th
        )
    blurred = np.asarray(cv2.GaussianBlur(layer, (3, 3), 0), np.uint8)
    cv2.add(frame, cv2.cvtColor(blurred, cv2.COLOR_GRAY2BGR), dst=frame)


def _draw_clock(y: U8, when: dt.datetime, name: str) -> None:
    """Burn a white timestamp with a black outline into the luma plane, like cameras do."""
    h, w = y.shape
    scale = h / 720 * 1.1
    th = max(1, round(h / 720 * 2))
    text = np.zeros_like(y)
    org = (round(0.02 * w), round(0.06 * h))
    cv2.putText(text, when.strftime("%Y-%m-%d %H:%M:%S"), org, 0, scale, 255, th, cv2.LINE_AA)
    org2 = (round(0.02 * w), round(0.97 * h))
    cv2.putText(text, name, org2, cv2.FONT_HERSHEY_SIMPLEX, scale * 0.8, 255, th, cv2.LINE_AA)
    outline = cv2.dilate(text, np.ones((3, 3), np.uint8), iterations=max(1, th // 2 + 1))
    y[outline > 0] = 0
    np.maximum(y, (text.astype(np.float32) * (235 / 255)).astype(np.uint8), out=y)


# --------------------------------------------------------------------------- illumination


def _ir_matrix(gain: float) -> NDArray[np.float32]:
    """Colour to IR-gray: vegetation (green) turns bright, everything lands in 3 equal channels."""
    # near infrared: foliage reflects strongly, blue sky and red paint much less than in daylight
    row = np.array([-0.3, 1.15, 0.15], np.float32) * gain
    out: NDArray[np.float32] = np.stack([row, row, row]).astype(np.float32)
    return out


@dataclass(slots=True)
class _Light:
    """Per-frame illumination: global gain, left/right tilt, IR mode, additive offset."""

    gain: float = 1.0
    tilt: float = 0.0
    ir: bool = False
    offset: float = 0.0


def _light_schedule(
    kind: set[str], rng: np.random.Generator, seconds: float
) -> Callable[[float], _Light]:
    """A function of time giving the illumination for this clip kind."""
    clouds = [
        (rng.uniform(0, seconds), rng.uniform(2.0, 6.0), rng.uniform(0.1, 0.3)) for _ in range(4)
    ]
    ramp_to = rng.uniform(0.45, 0.6)
    switches = sorted(rng.uniform(WARMUP_S + 1, max(WARMUP_S + 2, seconds - 2), 3))
    tilt_f = rng.uniform(0.02, 0.06)
    night = bool(kind & _NIGHT_KINDS)

    def light(t: float) -> _Light:
        out = _Light()
        if "light_ramp" in kind:
            out.gain = 1.0 + (ramp_to - 1.0) * min(1.0, t / max(seconds, 1e-6))
            for c0, cd, depth in clouds:
                out.gain *= 1.0 - depth * math.exp(-(((t - c0) / cd) ** 2))
            out.tilt = 0.25 * math.sin(2 * math.pi * tilt_f * t)
        if night:
            out.ir, out.gain, out.offset = True, 0.42, 8.0
        if "ir_switch" in kind:
            n = sum(1 for s in switches if s <= t)
            is_ir = (n % 2 == 1) != night
            last = max([s for s in switches if s <= t], default=-100.0)
            settle = 1.0 + 0.6 * math.exp(-(t - last) / 0.5) * (1 if is_ir else -0.5)
            out.ir = is_ir
            out.gain = (0.5 if is_ir else 1.0) * settle
            out.offset = 10.0 if is_ir else 0.0
        return out

    return light


# --------------------------------------------------------------------------- encoder


def open_encoder(  # noqa: PLR0917
    path: Path,
    width: int,
    height: int,
    fps: int,
    kbps: int,
    gop: int | None = None,
    buffer_kbps: int | None = None,
) -> tuple[av.container.OutputContainer, Any]:
    """An MP4 with camera-like H.264: no B-frames, a fixed GOP (2 s unless given), a bitrate
    capped by the VBV (its buffer one second of the bitrate unless given)."""
    out = av.open(str(path), "w", format="mp4")
    stream: Any = out.add_stream("libx264", rate=fps)  # a VideoStream (stubs differ by version)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    gop = gop or 2 * fps
    buffer_kbps = buffer_kbps or kbps
    stream.codec_context.max_b_frames = 0
    stream.codec_context.gop_size = gop
    stream.options = {
        "preset": "superfast",
        # one encoder thread: threaded rate control makes the clip vary from run to run
        "x264-params": (
            f"threads=1:keyint={gop}:min-keyint={gop}:scenecut=0:bframes=0:bitrate={kbps}"
            f":vbv-maxrate={kbps}:vbv-bufsize={buffer_kbps}"
        ),
    }
    stream.time_base = Fraction(1, fps)
    return out, stream


def encode_planes(
    out: av.container.OutputContainer, stream: Any, planes: NDArray[Any], index: int, fps: int
) -> None:
    """Encode one picture (its yuv420p planes stacked, as ``VideoFrame.to_ndarray`` gives
    them) as the clip's frame ``index``."""
    frame = av.VideoFrame.from_ndarray(planes, format="yuv420p")
    frame.pts = index
    frame.time_base = Fraction(1, fps)
    for packet in stream.encode(frame):
        out.mux(packet)


def finish_encoder(out: av.container.OutputContainer, stream: Any) -> None:
    """Flush what the encoder still holds into the file."""
    for packet in stream.encode(None):
        out.mux(packet)


@dataclass
class TruthLog:
    """The ground truth gathered frame by frame while a clip is rendered: when each object was
    first visible, half visible ("appeared") and last visible, the box of its whole path in the
    picture (pixels) and its tallest on-screen height (share of the frame)."""

    width: int
    height: int
    present: list[bool] = field(default_factory=list)
    first: dict[int, float] = field(default_factory=dict)
    appeared: dict[int, float] = field(default_factory=dict)
    last: dict[int, float] = field(default_factory=dict)
    boxes: dict[int, tuple[float, float, float, float]] = field(default_factory=dict)
    tallest: dict[int, float] = field(default_factory=dict)

    def seen(
        self,
        key: int,
        t: float,
        visible: float,
        box: tuple[float, float, float, float],
        height: float = 0.0,
    ) -> bool:
        """Object ``key`` drawn at ``t`` with this share of it in the picture, ``box`` (x0, y0,
        x1, y1) its part in the picture and ``height`` its on-screen height (share of the
        frame); whether it counts as present."""
        if visible < VISIBLE_PRESENT:
            return False
        self.first.setdefault(key, t)
        self.last[key] = t
        if visible >= VISIBLE_APPEAR:
            self.appeared.setdefault(key, t)
        x0, y0, x1, y1 = self.boxes.get(key, box)
        self.boxes[key] = (min(x0, box[0]), min(y0, box[1]), max(x1, box[2]), max(y1, box[3]))
        self.tallest[key] = max(self.tallest.get(key, 0.0), height)
        return True

    def check_warmup(self, name: str) -> None:
        """Refuse a clip with an object in view before ``WARMUP_S`` (detectors are learning)."""
        early = {k: t for k, t in self.first.items() if t < WARMUP_S}
        if early:
            raise RuntimeError(f"{name}: objects visible before the warm-up: {early}")

    def truth(  # noqa: PLR0917
        self,
        kind: str,
        path: Path,
        fps: int,
        seconds: float,
        seed: int,
        small: dict[int, bool] | None = None,
    ) -> SceneTruth:
        """The clip's truth, written next to it. ``small`` overrides what the tallest height
        says (a generator that knows its objects' sizes)."""
        w, h = self.width, self.height
        intervals = tuple(
            ObjectInterval(
                start=self.first[k],
                appear=self.appeared.get(k, self.first[k]),
                end=self.last[k],
                small=small[k] if small is not None else bool(self.tallest[k] < SMALL_HEIGHT),
                box=(
                    float(self.boxes[k][0] / w),
                    float(self.boxes[k][1] / h),
                    float((self.boxes[k][2] - self.boxes[k][0]) / w),
                    float((self.boxes[k][3] - self.boxes[k][1]) / h),
                ),
            )
            for k in sorted(self.first)
        )
        truth = SceneTruth(
            kind=kind,
            path=str(path),
            width=w,
            height=h,
            fps=fps,
            seconds=float(seconds),
            seed=seed,
            present=tuple(self.present),
            intervals=intervals,
        )
        truth_path(path).write_text(truth.to_json())
        return truth


def rendered(path: Path, render: Callable[[], SceneTruth], label: str) -> SceneTruth:
    """The clip's truth, rendering it first unless it is cached (clip and truth side by side)."""
    truth = load_truth(path)
    if truth is None:
        t0 = time.monotonic()
        truth = render()
        print(f"  rendered {label} in {time.monotonic() - t0:.1f} s", flush=True)
    return truth


def default_kbps(width: int, height: int, fps: int, starved: bool = False) -> int:
    """A typical camera bitrate for the size (2 Mbit/s at 720p25), or a starved one."""
    kbps = 2000 * (width * height * fps) / (1280 * 720 * 25)
    return max(150, int(kbps * (0.15 if starved else 1.0)))


# --------------------------------------------------------------------------- hard cases
#
# The field's known hard cases (HARD_KINDS). Each draws from its own random streams derived from
# the seed (``_hard_rng``), and none of this runs unless one of these kinds is in the clip, so the
# original kinds render exactly as before.


def _hard_rng(clip: list[int], parts: set[str], name: str) -> np.random.Generator:
    """A random stream of its own for one hard-case feature of one clip (seed, w, h, fps)."""
    idx = sorted(ALL_KINDS.index(p) for p in parts)
    return np.random.default_rng([*clip, 1000 + ALL_KINDS.index(name), *idx])


def _smoothstep(x: float) -> float:
    x = min(1.0, max(0.0, x))
    return x * x * (3 - 2 * x)


def _blit(
    frame: U8, lay: _Layout, sprite: tuple[U8, U8], at: tuple[int, int], *, behind_sheds: bool
) -> tuple[float, tuple[int, int, int, int]]:
    """Composite a sprite (optionally hidden behind the sheds): visible fraction, pixel box."""
    sprite_img, alpha = sprite
    x0, y0 = at
    sh, sw = alpha.shape
    h, w = frame.shape[:2]
    nothing = (0.0, (0, 0, 0, 0))
    fx0, fy0, fx1, fy1 = max(0, x0), max(0, y0), min(w, x0 + sw), min(h, y0 + sh)
    total = float(alpha.sum())
    if fx1 <= fx0 or fy1 <= fy0 or total <= 0:
        return nothing
    a = alpha[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0].astype(np.float32) / 255.0
    if behind_sheds:
        for sx0, sy0, sx1, sy1 in lay.sheds:
            ox0, oy0, ox1, oy1 = max(fx0, sx0), max(fy0, sy0), min(fx1, sx1), min(fy1, sy1)
            if ox1 > ox0 and oy1 > oy0:
                a[oy0 - fy0 : oy1 - fy0, ox0 - fx0 : ox1 - fx0] = 0.0
    visible = float(a.sum()) * 255.0 / total
    if visible <= 0:
        return nothing
    s = sprite_img[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0].astype(np.float32)
    region = frame[fy0:fy1, fx0:fx1].astype(np.float32)
    a3 = a[..., None]
    frame[fy0:fy1, fx0:fx1] = (a3 * s + (1 - a3) * region).astype(np.uint8)
    return visible, (fx0, fy0, fx1, fy1)


def _local_gray(lay: _Layout, y: float, x0: float, x1: float) -> float:
    """Mean background brightness along a horizontal path (to pick contrasting colours)."""
    gray = cv2.cvtColor(lay.bg, cv2.COLOR_BGR2GRAY)
    h, w = gray.shape
    yb = int(np.clip(y, 0, h - 1))
    xs = np.clip(np.linspace(x0, x1, 8), 0, w - 1).astype(int)
    return float(np.mean(gray[yb, xs]))


class _Actor(Protocol):
    """A labelled object of the hard cases: draws itself, says whether it is small."""

    small: bool

    def draw(
        self, frame: U8, lay: _Layout, t: float
    ) -> tuple[float, tuple[int, int, int, int]]: ...


def _person_at(
    frame: U8,
    lay: _Layout,
    wk: _Walker,
    t: float,
    *,
    x: float,
    feet: float,
    height: float,
    swing: float | None,
    behind_sheds: bool,
) -> tuple[float, tuple[int, int, int, int]]:
    """Draw a person of the given height with the feet at (x, feet)."""
    sprite, alpha = _person(
        _Walker(wk.t0, x, x, feet, height, 0.0, wk.shirt, wk.pants, wk.small, wk.phase), t, swing
    )
    sh, sw = alpha.shape
    at = (round(x - sw / 2), round(feet - sh))
    return _blit(frame, lay, (sprite, alpha), at, behind_sheds=behind_sheds)


# ---- fast_vehicle: small far-away cars crossing in 1-3 s


@dataclass(slots=True)
class _Vehicle:
    t0: float
    x0: float  # left edge at t0, pixels
    speed: float  # pixels per second (signed)
    road_y: float  # bottom of the wheels
    height: float
    length: float
    body: tuple[float, float, float]
    cross_s: float
    small: bool = True
    near: bool = False  # in front of everything (a far car passes behind the sheds)

    def sprite(self) -> tuple[U8, U8]:
        h, w = max(4, round(self.height)), max(8, round(self.length))
        img = np.zeros((h, w, 3), np.uint8)
        mask = np.zeros((h, w), np.uint8)
        sc = 16

        def poly(pts: list[tuple[float, float]], col: tuple[float, ...]) -> None:
            arr = np.array([[round(x * sc), round(y * sc)] for x, y in pts], np.int32)
            cv2.fillPoly(img, [arr], col, cv2.LINE_AA, 4)
            cv2.fillPoly(mask, [arr], 255, cv2.LINE_AA, 4)

        front = self.speed > 0  # the bonnet faces the direction of travel
        cab0, cab1 = (0.22 * w, 0.72 * w) if front else (0.28 * w, 0.78 * w)
        poly([(0, 0.42 * h), (w, 0.42 * h), (w, 0.85 * h), (0, 0.85 * h)], self.body)
        poly(
            [
                (cab0, 0.42 * h),
                (cab0 + 0.1 * w, 0.05 * h),
                (cab1 - 0.08 * w, 0.05 * h),
                (cab1, 0.42 * h),
            ],
            self.body,
        )
        glass = tuple(0.35 * c + 20 for c in self.body)
        poly(
            [
                (cab0 + 0.05 * w, 0.38 * h),
                (cab0 + 0.12 * w, 0.12 * h),
                (cab1 - 0.1 * w, 0.12 * h),
                (cab1 - 0.04 * w, 0.38 * h),
            ],
            glass,
        )
        for wx in (0.2 * w, 0.8 * w):
            c = (round(wx * sc), round(0.82 * h * sc))
            cv2.circle(img, c, round(0.18 * h * sc), (25, 25, 25), -1, cv2.LINE_AA, 4)
            cv2.circle(mask, c, round(0.18 * h * sc), 255, -1, cv2.LINE_AA, 4)
        lamp_x = w - 3 if front else 0
        img[round(0.5 * h) : round(0.62 * h), lamp_x : lamp_x + 3] = (200, 230, 240)
        return img, mask

    def draw(self, frame: U8, lay: _Layout, t: float) -> tuple[float, tuple[int, int, int, int]]:
        if t < self.t0 or t > self.t0 + self.cross_s:
            return 0.0, (0, 0, 0, 0)
        sprite, alpha = self.sprite()
        x = self.x0 + self.speed * (t - self.t0)
        y0 = round(self.road_y - alpha.shape[0])
        return _blit(frame, lay, (sprite, alpha), (round(x), y0), behind_sheds=not self.near)


def _crossing_car(
    rng: np.random.Generator,
    lay: _Layout,
    w: int,
    at: tuple[float, float, float],
    *,
    length: float,
    cross: float,
    near: bool = False,
) -> _Vehicle:
    """A car entering at time ``at[0]`` on a road at ``at[1]``, ``at[2]`` pixels tall, from a
    random side, in a colour that stands out from the road."""
    t, road, height = at
    speed = (w + length) / cross * (1 if rng.random() < 0.5 else -1)
    x0 = -length if speed > 0 else float(w)
    body = _contrasting(rng, _local_gray(lay, road - height / 2, 0, w))
    return _Vehicle(t, x0, speed, road, height, length, body, cross, not near, near)


def _plan_vehicles(
    rng: np.random.Generator, lay: _Layout, w: int, h: int, seconds: float
) -> list[_Actor]:
    """Vehicles on a far road just below the horizon, several per clip, 1-3 s per crossing."""
    out: list[_Actor] = []
    hz = HORIZON * h
    t = WARMUP_S + rng.uniform(0.0, 1.5)
    while t < seconds - 1.0:
        height = rng.uniform(0.03, 0.06) * h
        road = min(hz + height / 0.53, lay.sheds[0][3] - 0.01 * h)  # behind the sheds
        length = height * rng.uniform(2.2, 3.2)
        cross = rng.uniform(1.0, 3.0)  # 30-90 km/h over a 25-m-wide far view
        out.append(_crossing_car(rng, lay, w, (t, road, height), length=length, cross=cross))
        t += rng.uniform(0.6, 2.0) * cross + rng.uniform(1.0, 5.0)
    return out


def _plan_near_vehicles(
    rng: np.random.Generator, lay: _Layout, w: int, h: int, seconds: float
) -> list[_Actor]:
    """Cars on a road close to the camera, a few per clip.

    A car 1.5 m tall fills ``frac`` of the picture's height at ``1.5 / (0.67 * frac)`` m (a
    37-degree vertical field of view); the view there is 1.2 times that distance wide, so at
    30-60 km/h a 4.5-m car crosses it in 0.7-3 s.
    """
    out: list[_Actor] = []
    t = WARMUP_S + rng.uniform(0.0, 1.5)
    while t < seconds - 1.0:
        frac = rng.uniform(0.15, 0.35)
        height = frac * h
        distance = 1.5 / (0.67 * frac)
        cross = (1.2 * distance + 4.5) / rng.uniform(8.3, 16.7)
        length = height * rng.uniform(2.2, 3.2)
        road = rng.uniform(0.88, 0.99) * h
        out.append(
            _crossing_car(rng, lay, w, (t, road, height), length=length, cross=cross, near=True)
        )
        t += cross + rng.uniform(2.0, 8.0)
    return out


# ---- standing: walks in, stands still for 10-20 s, walks on


@dataclass(slots=True)
class _Stander:
    wk: _Walker
    x_in: float  # start (off frame)
    x_stop: float
    x_out: float  # end (off frame)
    speed: float  # pixels per second, positive
    t_stop: float
    t_go: float
    t_end: float
    small: bool = False

    def draw(self, frame: U8, lay: _Layout, t: float) -> tuple[float, tuple[int, int, int, int]]:
        wk = self.wk
        if t < wk.t0 or t > self.t_end:
            return 0.0, (0, 0, 0, 0)
        swing: float | None = None
        if t < self.t_stop:
            x = self.x_in + math.copysign(self.speed, self.x_stop - self.x_in) * (t - wk.t0)
        elif t < self.t_go:  # still: feet together, a faint sway of the body
            x = self.x_stop + 0.01 * wk.height * math.sin(2 * math.pi * 0.15 * t)
            swing = 0.12 + 0.04 * math.sin(2 * math.pi * 0.1 * t)
        else:
            x = self.x_stop + math.copysign(self.speed, self.x_out - self.x_stop) * (t - self.t_go)
        return _person_at(
            frame,
            lay,
            wk,
            t,
            x=x,
            feet=wk.feet_y,
            height=wk.height,
            swing=swing,
            behind_sheds=False,
        )


def _plan_standers(
    rng: np.random.Generator, lay: _Layout, w: int, h: int, seconds: float
) -> list[_Actor]:
    out: list[_Actor] = []
    hz = HORIZON * h
    t = WARMUP_S + rng.uniform(0.0, 1.0)
    while t < seconds - 4.0:
        feet = rng.uniform(0.7, 0.97) * h
        height = 0.62 * (feet - hz) * rng.uniform(0.9, 1.1)
        speed = (w + 0.6 * height) / rng.uniform(3.5, 7.0)
        left = rng.random() < 0.5
        x_in = -0.25 * height if left else w + 0.25 * height
        x_stop = rng.uniform(0.2, 0.8) * w
        back = rng.random() < 0.3  # turns round and leaves the way they came
        x_out = x_in if back else (w + 0.25 * height if left else -0.25 * height)
        local = _local_gray(lay, feet - height / 2, 0, w)
        wk = _Walker(
            t,
            x_in,
            x_out,
            feet,
            height,
            speed,
            _contrasting(rng, local),
            _contrasting(rng, local),
            False,
            rng.uniform(0, 6.28),
        )
        t_stop = t + abs(x_stop - x_in) / speed
        t_go = t_stop + rng.uniform(10.0, 20.0)
        t_end = t_go + abs(x_out - x_stop) / speed
        out.append(_Stander(wk, x_in, x_stop, x_out, speed, t_stop, t_go, t_end))
        t = t_end + rng.uniform(1.0, 4.0)
    return out


# ---- approach: head-on toward the camera (growing) and away from it (shrinking)

_PERSON_M = 1.75  # metres


@dataclass(slots=True)
class _Approacher:
    """Steps out from behind a shed, turns and walks straight at the camera until it passes
    under it (or, reversed in time, comes from under the camera and walks away behind a shed)."""

    wk: _Walker
    away: bool
    x_hide: float  # behind the shed
    x_turn: float  # where the person turns toward (or away from) the camera
    x_near: float  # lateral position when passing under the camera
    feet_far: float  # feet y behind the shed
    d_far: float  # metres, at the shed
    d_near: float  # metres, when the head leaves the bottom of the frame
    hz: float  # horizon, pixels
    side_s: float
    total_s: float
    small: bool = False

    def draw(self, frame: U8, lay: _Layout, t: float) -> tuple[float, tuple[int, int, int, int]]:
        u = t - self.wk.t0
        if u < 0 or u > self.total_s:
            return 0.0, (0, 0, 0, 0)
        if self.away:
            u = self.total_s - u
        h_far = 0.62 * (self.feet_far - self.hz)
        if u < self.side_s:  # sideways, out from behind the shed
            x = self.x_hide + (self.x_turn - self.x_hide) * u / self.side_s
            return _person_at(
                frame,
                lay,
                self.wk,
                t,
                x=x,
                feet=self.feet_far,
                height=h_far,
                swing=None,
                behind_sheds=True,
            )
        f = (u - self.side_s) / (self.total_s - self.side_s)
        d = self.d_far + (self.d_near - self.d_far) * f
        height = h_far * self.d_far / d
        feet = self.hz + height / 0.62
        x = self.x_turn + (self.x_near - self.x_turn) * (1 - d / self.d_far)
        # seen from the front: legs apart, the gait shows as a small change of stride and a bob
        gait = math.sin(2 * math.pi * 0.9 * t + self.wk.phase)
        swing = 0.35 + 0.1 * gait
        feet -= 0.012 * height * abs(gait)
        shed_bottom = max(s[3] for s in lay.sheds)
        return _person_at(
            frame,
            lay,
            self.wk,
            t,
            x=x,
            feet=feet,
            height=height,
            swing=swing,
            behind_sheds=feet < shed_bottom,
        )


def _plan_approachers(
    rng: np.random.Generator, lay: _Layout, w: int, h: int, seconds: float
) -> list[_Actor]:
    """One person toward the camera and one away from it (random order, may overlap)."""
    out: list[_Actor] = []
    hz = HORIZON * h
    t = WARMUP_S + rng.uniform(0.0, 1.0)
    first_away = rng.random() < 0.5
    order = [k % 2 for k in range(4)] if not first_away else [(k + 1) % 2 for k in range(4)]
    for n, away in enumerate(order):
        if t >= seconds - 3.0:
            break
        shed = lay.sheds[n % len(lay.sheds)]
        left = shed[0] + shed[2] < w  # the shed in the left half: step out to its right
        feet_far = shed[3] - 0.03 * h
        h_far = 0.62 * (feet_far - hz)
        d_far = 38.0
        d_near = d_far * h_far / ((h - hz) / 0.613 * 1.02)
        x_hide = (shed[0] + shed[2]) / 2
        step = (shed[2] - shed[0]) / 2 + rng.uniform(0.02, 0.06) * w
        x_turn = x_hide + (step if left else -step)
        x_near = float(np.clip(x_turn + rng.uniform(-0.15, 0.15) * w, 0.15 * w, 0.85 * w))
        v = rng.uniform(1.3, 1.9)  # m/s
        px_per_m = h_far / _PERSON_M
        side_s = abs(x_turn - x_hide) / (v * px_per_m)
        total = side_s + (d_far - d_near) / v
        local = _local_gray(lay, 0.75 * h, x_turn - 0.1 * w, x_turn + 0.1 * w)
        wk = _Walker(
            t,
            x_hide,
            x_near,
            feet_far,
            h_far,
            0.0,
            _contrasting(rng, local),
            _contrasting(rng, local),
            False,
            rng.uniform(0, 6.28),
        )
        out.append(
            _Approacher(
                wk, bool(away), x_hide, x_turn, x_near, feet_far, d_far, d_near, hz, side_s, total
            )
        )
        t += rng.uniform(5.0, 0.6 * total)
    return out


# ---- cloud_shadows: drifting soft shadows and sudden sun bursts


class _CloudShadows:
    """A drifting darkening mask (soft edges) and the sun going in and out (with exposure).

    ``storm``: wind-driven clouds instead: any direction at 15-35 % of the width per second,
    crisper edges (10-90 % within 0.5-2 % of the width) and deeper shadows (40-70 %).
    """

    def __init__(
        self, rng: np.random.Generator, lay: _Layout, seconds: float, storm: bool = False
    ) -> None:
        h, w = lay.bg.shape[:2]
        self.w, self.h = w, h
        self.lw, self.lh = max(32, w // 8), max(18, h // 8)
        cell = self.lw / w  # low-res pixels per pixel
        self.vy = 0.0
        if storm:
            angle = rng.uniform(0.0, 2.0 * math.pi)
            speed = rng.uniform(0.15, 0.35) * w
            self.vx, self.vy = speed * math.cos(angle), speed * math.sin(angle)
        else:
            self.vx = rng.uniform(0.04, 0.2) * w * (1 if rng.random() < 0.5 else -1)
        travel = abs(self.vx) * seconds * cell
        travel_y = abs(self.vy) * seconds * cell
        fw, fh = int(self.lw + travel + 4), int(self.lh + travel_y + (4 if storm else 0))
        size = rng.uniform(0.35, 0.8) * self.lw  # cloud patches 35-80 % of the frame wide
        field = _smooth(rng, fw, fh, (max(3, int(fw / size)), max(3, int(fh / size))))
        cover = rng.uniform(0.3, 0.55)
        hard = (field > np.quantile(field, 1 - cover)).astype(np.float32)
        # sigma: the 10-90 % edge is 2.56 sigmas (2.5-5 % of the width; storm 0.5-2 %)
        edge = rng.uniform(0.002, 0.008) if storm else rng.uniform(0.01, 0.02)
        self.field = np.asarray(
            cv2.GaussianBlur(hard, (0, 0), max(0.3 if storm else 0.6, edge * self.lw)), np.float32
        )
        self.x_start = 2.0 + (0 if self.vx > 0 else travel)
        self.y_start = 2.0 + (0 if self.vy > 0 else travel_y) if storm else 0.0
        self.cell = cell
        self.depth = rng.uniform(0.4, 0.7) if storm else rng.uniform(0.2, 0.5)
        # no shadow on the sky: it is the only place where B-R and G-R are exactly the painted ones
        bg = lay.bg.astype(np.int16)
        sky = (np.abs(bg[..., 0] - bg[..., 2] - 55) <= 4) & (
            np.abs(bg[..., 1] - bg[..., 2] - 30) <= 4
        )
        sky[int(HORIZON * h) :] = False
        ground = 1.0 - cv2.GaussianBlur(sky.astype(np.float32), (0, 0), max(1.0, h / 240))
        self.ground = np.asarray(ground, np.float32)
        # the sun: in (1.0) or behind a cloud (0.6-0.8), switching within 0.2-1 s
        self.events: list[tuple[float, float, float, float]] = []  # t, dur, from, to
        level, sunny = 1.0, rng.random() < 0.7
        if not sunny:
            level = 1.0 - rng.uniform(0.2, 0.4)
        self.level0 = level
        t = WARMUP_S + rng.uniform(1.0, 8.0)
        while t < seconds:
            new = 1.0 if not sunny else 1.0 - rng.uniform(0.2, 0.4)
            dur = rng.uniform(0.2, 1.0)
            self.events.append((t, dur, level, new))
            level, sunny = new, not sunny
            t += dur + (rng.uniform(8.0, 20.0) if sunny else rng.uniform(3.0, 8.0))

    def sun(self, t: float) -> tuple[float, float]:
        """Scene gain from the sun and the camera's exposure, and how sunny it is (0..1)."""
        level, ae = self.level0, 1.0
        for t0, dur, a, b in self.events:
            if t < t0:
                break
            level = a + (b - a) * _smoothstep((t - t0) / dur)
            if t > t0 + dur:  # the exposure makes up for 40 % of the change within seconds
                ae *= (a / b) ** (0.4 * (1 - math.exp(-(t - t0 - dur) / 2.0)))
        sunny = (level - 0.6) / 0.4
        return level * ae, min(1.0, max(0.0, sunny))

    def apply(self, frame: U8, t: float) -> U8:
        gain, sunny = self.sun(t)
        cx = self.x_start + self.vx * t * self.cell + self.lw / 2
        cy = self.y_start + self.vy * t * self.cell + self.lh / 2 - 0.5
        win = cv2.getRectSubPix(self.field, (self.lw, self.lh), (cx, cy))
        mask = cv2.resize(win, (self.w, self.h), interpolation=cv2.INTER_LINEAR)
        depth = self.depth * (0.15 + 0.85 * sunny)  # no crisp shadows when the sun is hidden
        factor = gain * (1.0 - depth * mask * self.ground)
        out = frame.astype(np.float32) * factor[..., None]
        return np.clip(out, 0, 255).astype(np.uint8)


# ---- ir_particles: snow, rain and insects right in front of the IR lamp


def _stamp(layer: F32, patch: F32, x0: int, y0: int) -> None:
    """Add ``patch`` into ``layer`` with its top-left corner at (x0, y0), clipped to the layer."""
    h, w = layer.shape
    ph, pw = patch.shape
    sx0, sy0, sx1, sy1 = max(0, x0), max(0, y0), min(w, x0 + pw), min(h, y0 + ph)
    if sx1 > sx0 and sy1 > sy0:
        layer[sy0:sy1, sx0:sx1] += patch[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0]


@dataclass(slots=True)
class _Particle:
    kind: str  # "flake", "drop", "moth"
    x: float
    y: float
    vx: float
    vy: float
    r: float  # radius in pixels
    bright: float
    life: int  # frames
    age: int = 0


class _LensParticles:
    """Out-of-focus flakes, streaks and moths lit by the IR lamp, a few frames each."""

    def __init__(self, rng: np.random.Generator, w: int, h: int, fps: int) -> None:
        self.rng, self.w, self.h, self.fps = rng, w, h, fps
        weather = int(rng.integers(0, 3))  # 0 snow, 1 rain, 2 dry (insects only)
        self.rates = {
            "flake": rng.uniform(1.5, 5.0) if weather == 0 else 0.0,
            "drop": rng.uniform(2.0, 6.0) if weather == 1 else 0.0,
            "moth": rng.uniform(1.0, 3.0) if weather == 2 else rng.uniform(0.2, 0.6),
        }
        self.live: list[_Particle] = []

    def _spawn(self, kind: str) -> _Particle:
        rng, w, h = self.rng, self.w, self.h
        x, y = rng.uniform(-0.05, 1.05) * w, rng.uniform(-0.05, 1.05) * h
        if kind == "flake":
            r = rng.uniform(0.015, 0.075) * h  # 3-15 % of the frame height across
            v = rng.uniform(0.5, 2.0) * h
            ang = rng.uniform(-0.6, 0.6)
            return _Particle(
                kind,
                x,
                y,
                v * math.sin(ang),
                v * math.cos(ang),
                r,
                rng.uniform(90, 220),
                int(rng.integers(2, 7)),
            )
        if kind == "drop":
            r = rng.uniform(0.006, 0.02) * h
            v = rng.uniform(3.0, 8.0) * h
            return _Particle(
                kind, x, y, 0.18 * v, v, r, rng.uniform(80, 200), int(rng.integers(1, 3))
            )
        r = rng.uniform(0.015, 0.05) * h
        v = rng.uniform(0.6, 2.5) * h
        ang = rng.uniform(0, 2 * math.pi)
        return _Particle(
            kind,
            x,
            y,
            v * math.cos(ang),
            v * math.sin(ang),
            r,
            rng.uniform(120, 240),
            int(rng.integers(3, max(4, round(1.5 * self.fps)))),
        )

    def apply(self, frame: U8) -> None:
        rng, dt_s = self.rng, 1.0 / self.fps
        for kind, rate in self.rates.items():
            self.live += [self._spawn(kind) for _ in range(int(rng.poisson(rate * dt_s)))]
        if not self.live:
            return
        layer = np.zeros(frame.shape[:2], np.float32)
        for p in self.live:
            if p.kind == "moth":  # erratic: sharp random turns and speed changes
                p.vx += rng.normal(0, 3.0) * self.h * dt_s * 4
                p.vy += rng.normal(0, 3.0) * self.h * dt_s * 4
                sp = math.hypot(p.vx, p.vy)
                cap = 3.0 * self.h
                if sp > cap:
                    p.vx, p.vy = p.vx * cap / sp, p.vy * cap / sp
            p.x += p.vx * dt_s
            p.y += p.vy * dt_s
            fade = min(1.0, (p.age + 1) / 2, (p.life - p.age) / 2)  # in and out within frames
            b = p.bright * fade
            if p.kind == "moth":
                b *= rng.uniform(0.5, 1.0)  # wing beats
            self._draw(layer, p, b, dt_s)
            p.age += 1
        self.live = [p for p in self.live if p.age < p.life]
        add = np.clip(layer, 0, 255).astype(np.uint8)
        cv2.add(frame, cv2.cvtColor(add, cv2.COLOR_GRAY2BGR), dst=frame)

    def _draw(self, layer: F32, p: _Particle, b: float, dt_s: float) -> None:
        h, w = layer.shape
        dx, dy = p.vx * dt_s, p.vy * dt_s  # motion blur over one exposure
        blur = max(1.0, (0.25 if p.kind != "drop" else 0.6) * p.r)
        pad = int(p.r + 3 * blur + max(abs(dx), abs(dy)) / 2 + 2)
        cx, cy = int(p.x), int(p.y)
        x0, y0, x1, y1 = cx - pad, cy - pad, cx + pad, cy + pad
        if x1 <= 0 or y1 <= 0 or x0 >= w or y0 >= h:
            return
        patch = np.zeros((y1 - y0, x1 - x0), np.float32)
        sc = 16
        ox, oy = p.x - x0, p.y - y0
        a = (round((ox - dx / 2) * sc), round((oy - dy / 2) * sc))
        c = (round((ox + dx / 2) * sc), round((oy + dy / 2) * sc))
        if p.kind == "moth":  # body and two wings at a random beat angle
            spread = self.rng.uniform(0.3, 1.0)
            ax = (max(1, round(p.r * sc)), max(1, round(p.r * spread * 0.6 * sc)))
            ang = math.degrees(math.atan2(p.vy, p.vx)) + 90
            cv2.ellipse(patch, (a[0], a[1]), ax, ang, 0, 360, 1.0, -1, cv2.LINE_AA, 4)
            cv2.line(patch, a, c, 0.8, max(1, round(0.5 * p.r)), cv2.LINE_AA, 4)
        else:
            thick = max(1, round(2 * p.r))
            cv2.line(patch, a, c, 1.0, thick, cv2.LINE_AA, 4)  # a round-capped capsule
            if p.kind == "flake":  # out-of-focus discs have a slightly brighter rim
                cv2.circle(
                    patch, c, round(p.r * sc), 1.15, max(1, round(0.12 * p.r)), cv2.LINE_AA, 4
                )
        _stamp(layer, cv2.GaussianBlur(patch, (0, 0), blur) * b, x0, y0)


# ---- ir_snowstorm / ir_insects: particles that stay in view for seconds, near and far


@dataclass(slots=True)
class _Mote:
    """A snowflake or an insect in front of the camera, in metres (x right, y down, z depth)."""

    x: float
    y: float
    z: float
    size: float  # metres across
    life: float  # seconds in view
    age: float = 0.0
    vx: float = 0.0  # snow: velocity (m/s)
    vy: float = 0.0
    vz: float = 0.0
    fall: float = 0.0  # snow: fall speed in still air
    updraft: float = 0.0  # snow: what the eddies round the housing lift it by
    flutter: float = 0.0  # snow: sideways flutter (Hz) ...
    amp: float = 0.0  # ... and its speed (m/s)
    phase: float = 0.0
    radius: float = 0.0  # insects: the loop's radius (m) ...
    spin: float = 0.0  # ... its angular speed (rad/s) ...
    tilt: float = 0.0  # ... how much of it goes in depth ...
    angle: float = 0.0  # ... where on it the insect is ...
    dx: float = 0.0  # ... and how far the loop's centre has wandered from the light
    dy: float = 0.0
    dz: float = 0.0
    beat: float = 0.0  # insects: wing beats (Hz)
    seen: tuple[float, float] | None = None  # where it was drawn on the last frame (pixels)


class _Swarm:
    """Particles in depth in front of an IR camera, each in view for seconds, not frames.

    Each particle has a distance ``z`` from the lens (0.1-5 m): its picture size and speed go with
    ``1/z``, the IR lamp's light on it with ``1/z**2``, and its defocus blur with ``1/z`` (a small
    lens focused on the yard: near things blur a little; mostly they are big and bright). Each is
    drawn smeared along its path over the frame's exposure. ``snow`` flakes fall through a
    gusting wind, flutter sideways and swirl in eddies round the camera housing; ``insects`` circle
    a light in loops at changing depth, beat their wings (flicker), turn and change loops. The
    lamp lights the middle of the ground more than the corners (a hot-spot), and the picture's
    noise grows with its brightness (``shot_noise``).
    """

    _FOCAL = 1.0  # picture heights per metre at 1 m (about a 53-degree vertical field of view)

    def __init__(self, rng: np.random.Generator, w: int, h: int, kind: str) -> None:
        self.rng, self.w, self.h, self.kind = rng, w, h, kind
        self.t = 0.0
        self.wind = rng.uniform(-0.8, 0.8)  # m/s sideways; gusts vary it
        self.gust_f = rng.uniform(0.05, 0.2, 2)
        self.gust_p = rng.uniform(0, 2 * math.pi, 2)
        # flakes a second; moths coming to the light a second (a few to a summer swarm)
        self.rate = rng.uniform(25, 60) if kind == "snow" else rng.uniform(0.4, 4.0)
        self.power = rng.uniform(0.25, 0.8)  # the lamp's strength (and the camera's gain)
        # the light the insects circle, as a point in the picture and a depth
        self.centre = (rng.uniform(0.2, 0.8), rng.uniform(0.15, 0.6), rng.uniform(0.4, 2.5))
        self.live: list[_Mote] = []
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        hx, hy = rng.uniform(0.35, 0.65) * w, rng.uniform(0.55, 0.8) * h
        r2 = ((xx - hx) / (0.45 * w)) ** 2 + ((yy - hy) / (0.45 * h)) ** 2
        self.hotspot = (0.55 + 1.5 * np.exp(-r2)).astype(np.float32)[..., None]

    def light(self, frame: U8) -> U8:
        """The scene under the IR lamp's uneven light."""
        lit: U8 = np.clip(frame.astype(np.float32) * self.hotspot, 0, 255).astype(np.uint8)
        return lit

    @staticmethod
    def shot_noise(noise: F32, y: U8) -> None:
        """Scale the picture's noise (in place) with the square root of its brightness."""
        noise *= np.sqrt(np.maximum(y, 8).astype(np.float32) / 48.0)

    def _gust(self) -> float:
        t = self.t
        return self.wind * (
            1.0
            + 0.5 * math.sin(2 * math.pi * self.gust_f[0] * t + self.gust_p[0])
            + 0.3 * math.sin(2 * math.pi * self.gust_f[1] * t + self.gust_p[1])
        )

    def _spawn(self) -> _Mote:
        rng = self.rng
        if self.kind == "snow":
            z = float(np.exp(rng.uniform(math.log(0.1), math.log(5.0))))
            half = 0.5 * z / self._FOCAL  # half the picture's height, in metres at that depth
            return _Mote(
                x=rng.uniform(-1.4, 1.4) * half * self.w / self.h,
                y=rng.uniform(-1.3, 1.0) * half,
                z=z,
                size=rng.uniform(0.004, 0.012),
                life=rng.uniform(2.0, 12.0),
                vx=rng.normal(0, 0.15),
                vz=rng.normal(0, 0.1),
                fall=rng.uniform(0.4, 1.2),
                updraft=rng.uniform(0.0, 1.4),
                flutter=rng.uniform(0.5, 2.0),
                amp=rng.uniform(0.05, 0.3),
                phase=rng.uniform(0, 2 * math.pi),
            )
        return _Mote(
            x=0.0,
            y=0.0,
            z=self.centre[2],
            size=rng.uniform(0.015, 0.05),
            life=rng.uniform(2.0, 20.0),
            radius=rng.uniform(0.05, 0.5),
            spin=rng.uniform(0.3, 6.0) * rng.choice((-1, 1)),
            tilt=rng.uniform(0.2, 1.0),
            angle=rng.uniform(0, 2 * math.pi),
            beat=rng.uniform(8, 20),
        )

    def _insect_step(self, m: _Mote, dt_s: float) -> None:
        rng = self.rng
        if rng.random() < 0.5 * dt_s:  # now and then it turns or changes its loop
            m.spin = rng.uniform(0.3, 6.0) * rng.choice((-1, 1))
            m.radius = float(np.clip(m.radius * rng.uniform(0.5, 1.8), 0.04, 0.7))
        # the loop's centre wanders: a random walk pulled back to the light
        m.dx += rng.normal(0, 0.4) * math.sqrt(dt_s) - 0.5 * m.dx * dt_s
        m.dy += rng.normal(0, 0.4) * math.sqrt(dt_s) - 0.5 * m.dy * dt_s
        m.dz += rng.normal(0, 0.4) * math.sqrt(dt_s) - 0.5 * m.dz * dt_s
        m.angle += m.spin * dt_s
        cx, cy, cz = self.centre
        half = 0.5 * cz / self._FOCAL
        m.x = (cx - 0.5) * 2 * half * self.w / self.h + m.dx + m.radius * math.cos(m.angle)
        m.y = (cy - 0.5) * 2 * half + m.dy + 0.6 * m.radius * math.sin(m.angle)
        m.z = max(0.15, cz + m.dz + m.tilt * m.radius * math.sin(m.angle))

    def _snow_step(self, m: _Mote, dt_s: float) -> None:
        rng = self.rng
        near = m.z < 1.0  # eddies round the housing: the air swirls near the lens
        turb = 0.8 if near else 0.25
        m.vx += rng.normal(0, turb) * math.sqrt(dt_s) + (self._gust() - m.vx) * dt_s
        m.vz += rng.normal(0, 0.3 * turb) * math.sqrt(dt_s) - m.vz * dt_s
        target = m.fall - (m.updraft if near else 0.0)
        m.vy += rng.normal(0, 0.5 * turb) * math.sqrt(dt_s) + 2.0 * (target - m.vy) * dt_s
        m.x += (m.vx + m.amp * math.sin(2 * math.pi * m.flutter * m.age + m.phase)) * dt_s
        m.y += m.vy * dt_s
        m.z = max(0.15, m.z + m.vz * dt_s)

    def apply(self, frame: U8, dt_s: float) -> None:
        rng, w, h = self.rng, self.w, self.h
        self.t += dt_s
        self.live += [self._spawn() for _ in range(int(rng.poisson(self.rate * dt_s)))]
        layer = np.zeros((h, w), np.float32)
        for m in self.live:
            (self._snow_step if self.kind == "snow" else self._insect_step)(m, dt_s)
            m.age += dt_s
            px = w / 2 + m.x * self._FOCAL / m.z * h
            py = h / 2 + m.y * self._FOCAL / m.z * h
            last, m.seen = m.seen or (px, py), (px, py)
            r = 0.5 * m.size * self._FOCAL / m.z * h
            blur = max(0.6, 0.002 * h / m.z)  # the defocus blur
            light = min(1.5, self.power / m.z**2)  # the lamp falls off with distance squared
            fade = min(1.0, m.age / 0.3, (m.life - m.age) / 0.3)
            b = 255 * light * max(0.0, fade) * (r / (r + blur)) ** 0.5 * 1.6
            if self.kind == "insects":
                b *= 0.6 + 0.4 * abs(math.sin(math.pi * m.beat * m.age))
            if b < 4 or not (-0.2 * w < px < 1.2 * w and -0.2 * h < py < 1.2 * h):
                continue
            self._draw(layer, m, (px, py), last, r, blur, b)
        # (a flake that reaches the lens is gone; a moth there turns away)
        self.live = [
            m for m in self.live if m.age < m.life and (m.z > 0.15 or self.kind == "insects")
        ]
        add = np.clip(layer, 0, 255).astype(np.uint8)
        cv2.add(frame, cv2.cvtColor(add, cv2.COLOR_GRAY2BGR), dst=frame)

    def _draw(  # noqa: PLR0917
        self,
        layer: F32,
        m: _Mote,
        at: tuple[float, float],
        last: tuple[float, float],
        r: float,
        blur: float,
        b: float,
    ) -> None:
        h = layer.shape[0]
        (px, py), smear = at, max(abs(at[0] - last[0]), abs(at[1] - last[1]))
        if smear > 0.3 * h:  # a jump (it came round the back of the loop): no smear
            last, smear = at, 0.0
        if self.kind == "snow":
            b *= (2 * r + 1) / (2 * r + 1 + smear)  # the light spreads along the smear
        pad = int(r + 3 * blur + smear / 2 + 2)
        x0, y0 = int((px + last[0]) / 2) - pad, int((py + last[1]) / 2) - pad
        size = 2 * pad + 1
        canvas = np.zeros((size, size), np.float32)
        c = (round((px - x0) * 16), round((py - y0) * 16))
        if self.kind == "insects":  # wings: a flat ellipse across its loop
            axes = (max(1, round(r * 16)), max(1, round(0.4 * r * 16)))
            angle = math.degrees(m.angle) % 180
            cv2.ellipse(canvas, c, axes, angle, 0, 360, 1.0, -1, cv2.LINE_AA, 4)
        else:  # a round-capped smear
            c0 = (round((last[0] - x0) * 16), round((last[1] - y0) * 16))
            cv2.line(canvas, c0, c, 1.0, max(1, round(2 * r)), cv2.LINE_AA, 4)
        patch: F32 = np.asarray(cv2.GaussianBlur(canvas, (0, 0), blur), np.float32)
        patch *= b / max(float(patch.max()), 1e-6)
        _stamp(layer, patch, x0, y0)


# ---- headlights: a car's light pool sweeping over the ground or a wall (nothing in view)


class _Headlights:
    """Several sweeps a minute of a bright soft ellipse (two lamps) across the scene, 2-4 s each."""

    falloff = 1.5  # a lamp's light falls as exp(-r^(2 x this)) from the beam's axis: soft-edged

    def __init__(self, rng: np.random.Generator, w: int, h: int, seconds: float) -> None:
        self.w, self.h = w, h
        self.lw, self.lh = max(32, w // 4), max(18, h // 4)
        self.sweeps: list[tuple[float, float, NDArray[np.float64], float, float, float, float]] = []
        t = WARMUP_S + rng.uniform(0.5, 6.0)
        while t < seconds - 1.0:
            dur = rng.uniform(2.0, 4.0)
            ground = rng.random() < 0.6
            if ground:  # a wide, flat pool sliding over the path and lawn
                ys = rng.uniform(0.6, 0.95, 3)
                ax, ay = rng.uniform(0.15, 0.3), rng.uniform(0.06, 0.12)
            else:  # over the buildings and sheds near the horizon
                ys = rng.uniform(0.22, 0.5, 3)
                ax, ay = rng.uniform(0.1, 0.2), rng.uniform(0.1, 0.2)
            left = rng.random() < 0.5
            xs = (
                np.array([-0.3, rng.uniform(0.2, 0.8), 1.3])
                if left
                else np.array([1.3, rng.uniform(0.2, 0.8), -0.3])
            )
            path = np.stack([xs, ys], -1)  # a quadratic Bezier: the car turns
            self.sweeps.append((t, dur, path, ax, ay, rng.uniform(0.8, 2.0), rng.uniform(15, 45)))
            t += dur + rng.uniform(6.0, 20.0)
        yy, xx = np.mgrid[0 : self.lh, 0 : self.lw].astype(np.float32)
        self.xx, self.yy = xx / self.lw, yy / self.lh

    def _lobes(self, t: float) -> Iterator[tuple[float, F32, float, float]]:
        """Every sweep under way at ``t``: the lamps' x, their light on the coarse grid (0..1),
        and the sweep's gain and added light."""
        for t0, dur, path, ax, ay, gain, add in self.sweeps:
            if not t0 <= t <= t0 + dur:
                continue
            u = (t - t0) / dur
            px, py = (1 - u) ** 2 * path[0] + 2 * u * (1 - u) * path[1] + u**2 * path[2]
            env = math.sin(math.pi * u) ** 0.5
            lobe = np.zeros((self.lh, self.lw), np.float32)
            for lamp in (-0.3, 0.3):  # two lamps, overlapping
                r2 = ((self.xx - px - lamp * ax) / ax) ** 2 + ((self.yy - py) / ay) ** 2
                lobe += 0.6 * env * np.exp(-(r2**self.falloff))
            yield float(px), lobe, gain, add

    def apply(self, frame: U8, t: float) -> U8:
        pool = np.zeros((self.lh, self.lw), np.float32)  # 0..1 light where the beam falls
        mul = np.zeros((self.lh, self.lw), np.float32)
        plus = np.zeros((self.lh, self.lw), np.float32)
        for _, lobe, gain, add in self._lobes(t):
            pool += lobe
            mul += gain * lobe
            plus += add * lobe
        if not pool.any():
            return frame
        size = (self.w, self.h)
        m = np.asarray(cv2.resize(mul, size, interpolation=cv2.INTER_LINEAR), np.float32)
        a = np.asarray(cv2.resize(plus, size, interpolation=cv2.INTER_LINEAR), np.float32)
        return self._lit(frame, float(pool.max()), m, a)

    @staticmethod
    def _lit(frame: U8, brightest: float, gain: F32, added: F32) -> U8:
        """``frame`` under the lamps: scaled by 1 + ``gain`` and ``added`` to (full-size maps),
        the camera stopping down a little for the ``brightest`` light (0..1)."""
        exposure = 1.0 - 0.12 * min(1.0, brightest)
        out = frame.astype(np.float32) * (exposure * (1 + gain))[..., None] + added[..., None]
        return np.clip(out, 0, 255).astype(np.uint8)


class _ShadowedHeadlights(_Headlights):
    """Headlights with hard-edged beams through a fence and past a few poles (on a wall).

    A shadow falls where the line from the lamp through the fence or pole meets the wall: as the
    lamp moves, a fence just in front of the wall throws stripes that slide slower than the pool,
    a pole nearer the lamp throws one that sweeps the other way, faster. The shadows are worked
    out along the picture's width at full resolution (they are vertical), so that a slat a few
    pixels wide is not lost on the light's coarse grid.
    """

    falloff = 3.0  # hard-edged beams

    def __init__(self, rng: np.random.Generator, w: int, h: int, seconds: float) -> None:
        super().__init__(rng, w, h, seconds)
        self.poles = [  # (x on the wall, half width, how much farther the lamp is than the pole)
            (rng.uniform(0.1, 0.9), rng.uniform(0.008, 0.03), rng.uniform(0.5, 2.0))
            for _ in range(int(rng.integers(2, 5)))
        ]
        self.fence = rng.random() < 0.6
        self.slat = rng.uniform(0.02, 0.05)  # the fence's period, of the picture's width
        self.fence_depth = rng.uniform(0.2, 0.6)  # how far the stripes slide as the lamp moves
        self.x = (np.arange(w, dtype=np.float32) + 0.5) / w

    def _shade(self, lamp_x: float) -> F32:
        """How much of the light reaches each column of the wall (1: all, 0.15 behind a pole)."""
        x = self.x
        shade = np.ones_like(x)
        for x0, half, depth in self.poles:
            edge = np.abs(x - (x0 + (x0 - lamp_x) * depth)) - half
            shade *= 1.0 - 0.85 * np.clip(1.0 - edge / 0.006, 0.0, 1.0)
        if self.fence:
            phase = ((x - lamp_x * self.fence_depth) / self.slat) % 1.0
            shade *= np.where(phase < 0.35, np.float32(0.2), np.float32(1.0))
        return np.asarray(shade, np.float32)

    def apply(self, frame: U8, t: float) -> U8:
        size = (self.w, self.h)
        mul = np.zeros((self.h, self.w), np.float32)
        plus = np.zeros((self.h, self.w), np.float32)
        brightest = 0.0
        for px, lobe, gain, add in self._lobes(t):
            brightest = max(brightest, float(lobe.max()))
            lit = cv2.resize(lobe, size, interpolation=cv2.INTER_LINEAR) * self._shade(px)
            mul += gain * lit
            plus += add * lit
        if not brightest:
            return frame
        return self._lit(frame, brightest, mul, plus)


# --------------------------------------------------------------------------- main entry


def make_scene(  # noqa: PLR0917 (the rig's agreed positional API)
    kind: str,
    path: Path,
    width: int = 1280,
    height: int = 720,
    fps: int = 25,
    seconds: float = 10,
    seed: int = 0,
    *,
    sensor_noise: float | None = None,
) -> SceneTruth:
    """Render and encode one labelled clip to ``path`` (.mp4) and return its truth.

    ``sensor_noise``: the noise's standard deviation in gray levels (default: 13 at night, as a
    cheap camera's gain gives, and 2.5 by day; a good sensor at night is as clean as by day).
    """
    parts = set(kind.split("+"))
    unknown = parts - set(ALL_KINDS)
    if unknown:
        raise ValueError(f"unknown scene kind(s): {sorted(unknown)}")
    if width % 2 or height % 2:
        raise ValueError("width and height must be even (yuv420p)")
    rng = np.random.default_rng(
        [seed, width, height, fps, *sorted(ALL_KINDS.index(p) for p in parts)]
    )
    lay = _background(rng, width, height)
    walkers = (
        _plan_walkers(rng, lay, parts, w=width, h=height, seconds=seconds)
        if parts & set(POSITIVE_KINDS)
        else []
    )
    light = _light_schedule(parts, rng, seconds)
    foliage = _Foliage(rng, lay) if "foliage" in parts else None
    snow = _Snow(rng, width, height) if "snow" in parts else None
    night = bool(parts & _NIGHT_KINDS)
    noise_sigma = sensor_noise if sensor_noise is not None else 13.0 if night else 2.5
    clock0 = dt.datetime(2026, 11, 22, 23, 59, 0) - dt.timedelta(seconds=int(rng.integers(5, 25)))
    cam_name = f"CAM {int(rng.integers(1, 9))} GARDEN"
    kbps = default_kbps(width, height, fps, starved="compression" in parts)

    def hard(name: str) -> np.random.Generator:
        return _hard_rng([seed, width, height, fps], parts, name)

    actors: list[_Actor] = []
    if "fast_vehicle" in parts:
        actors += _plan_vehicles(hard("fast_vehicle"), lay, width, height, seconds)
    if "standing" in parts:
        actors += _plan_standers(hard("standing"), lay, width, height, seconds)
    if "approach" in parts:
        actors += _plan_approachers(hard("approach"), lay, width, height, seconds)
    if "near_vehicle" in parts:  # (last: in front of everything)
        actors += _plan_near_vehicles(hard("near_vehicle"), lay, width, height, seconds)
    clouds = None
    if "cloud_shadows" in parts:
        clouds = _CloudShadows(hard("cloud_shadows"), lay, seconds)
    elif "storm_clouds" in parts:
        clouds = _CloudShadows(hard("storm_clouds"), lay, seconds, storm=True)
    particles = (
        _LensParticles(hard("ir_particles"), width, height, fps)
        if "ir_particles" in parts
        else None
    )
    headlights = None
    if "headlights" in parts:
        headlights = _Headlights(hard("headlights"), width, height, seconds)
    elif "headlight_shadows" in parts:
        headlights = _ShadowedHeadlights(hard("headlight_shadows"), width, height, seconds)
    swarms = [
        _Swarm(hard(name), width, height, what)
        for name, what in (("ir_snowstorm", "snow"), ("ir_insects", "insects"))
        if name in parts
    ]
    smalls = dict(enumerate([wk.small for wk in walkers] + [ac.small for ac in actors]))

    n_frames = round(seconds * fps)
    log = TruthLog(width, height)
    nh, nw = height // 2, width // 2
    # per-pixel noise: a few precomputed fields picked at random (drawing 2 M normals per frame
    # would dominate the generation time)
    fine_bank = [
        (rng.standard_normal((height, width), dtype=np.float32) * noise_sigma * 0.4).astype(
            np.int16
        )
        for _ in range(6)
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    out, stream = open_encoder(path, width, height, fps, kbps)
    try:
        for i in range(n_frames):
            t = i / fps
            frame = lay.bg.copy()
            if foliage is not None:
                foliage.apply(frame, t)
            any_visible = False
            drawn = (_draw_walker(frame, lay, wk, t) for wk in walkers)
            if actors:
                drawn = itertools.chain(drawn, (ac.draw(frame, lay, t) for ac in actors))
            for k, (vis, box) in enumerate(drawn):
                any_visible |= log.seen(k, t, vis, box)
            log.present.append(any_visible)
            if clouds is not None:
                frame = clouds.apply(frame, t)
            li = light(t)
            if li.ir:
                frame = np.asarray(cv2.transform(frame, _ir_matrix(li.gain)), np.uint8)
            elif li.gain != 1.0 or li.tilt != 0.0:
                if li.tilt:
                    ramp = np.linspace(1 - li.tilt / 2, 1 + li.tilt / 2, width, dtype=np.float32)
                    scaled = frame.astype(np.float32) * (ramp * li.gain)[None, :, None]
                    frame = np.clip(scaled, 0, 255).astype(np.uint8)
                else:
                    frame = np.asarray(cv2.convertScaleAbs(frame, alpha=li.gain), np.uint8)
            if li.offset:
                frame = np.asarray(cv2.add(frame, np.full_like(frame, int(li.offset))), np.uint8)
            if headlights is not None:
                frame = headlights.apply(frame, t)
            if particles is not None:
                particles.apply(frame)
            if swarms:  # one lamp lights the scene, whatever it draws in
                frame = swarms[0].light(frame)
            for swarm in swarms:
                swarm.apply(frame, 1.0 / fps)
            if snow is not None:
                snow.apply(frame, 1.0 / fps)
            if "rain" in parts:
                _rain(rng, frame)
            yuv = av.VideoFrame.from_ndarray(frame, format="bgr24").reformat(format="yuv420p")
            planes = yuv.to_ndarray()
            y = np.asarray(planes[:height], np.uint8)
            noise = rng.standard_normal((nh, nw), dtype=np.float32) * noise_sigma
            if night:  # night noise is blotchy after the camera's own denoiser
                noise = cv2.GaussianBlur(noise, (3, 3), 0) * 1.6
            noise_full = np.asarray(
                cv2.resize(noise, (width, height), interpolation=cv2.INTER_LINEAR), np.float32
            )
            fine = fine_bank[int(rng.integers(0, len(fine_bank)))]
            if swarms:  # under the lamp's hot-spot the noise grows with the light
                _Swarm.shot_noise(noise_full, y)
            noise16 = cv2.add(noise_full.astype(np.int16), fine)
            planes[:height] = cv2.add(y, noise16, dtype=cv2.CV_8U)
            if li.ir:
                planes[height:] = 128
            if "clock" in parts:
                _draw_clock(y, clock0 + dt.timedelta(seconds=t), cam_name)
            encode_planes(out, stream, planes, i, fps)
        finish_encoder(out, stream)
    finally:
        out.close()
    return log.truth(kind, path, fps, seconds, seed, smalls)

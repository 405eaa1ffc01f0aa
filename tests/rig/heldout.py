"""Held-out labelled clips for the motion detector: a second, independent scene generator.

What it is for: judging how the motion detector generalizes. The detector was tuned on clips from
tests/rig/scenes.py; this module renders a different world on purpose, and **the detector must
never be tuned on these clips** (nor on vtest.avi from ``real_footage``): look at the figures, do
not change thresholds until they improve here, or the set stops being held out.

How it differs from scenes.py (which draws screen-space walkers sideways at constant speed on a
smooth-noise background with global gain changes):

- geometry: a camera with a mounting height, tilt, horizontal field of view and optional barrel
  distortion looks at a world in metres (ground plane, fences/walls/facades, trees); everything
  is projected, so objects grow or shrink with distance and parallax is right;
- textures: procedural world-space materials (pavers in running bond, mown lawn with blades and
  stripes, gravel, asphalt with lane marks, planked fences, brick walls with windows), rendered
  supersampled so perspective foreshortening is right;
- lighting: albedo x (ambient + sun x cloud mask) with a world-space cloud-shadow texture blown
  by the wind (sharp-ish edges), sudden sun bursts, sunrise ramps, cast shadows of objects, a
  camera auto-exposure loop with lag and 1/16-EV steps, an IR night mode (near-infrared
  reflectance, lamp with 1/r^2 and beam falloff, blotchy gain-dependent sensor noise) and the
  day/night IR-cut switch;
- motion: articulated 3D people (gait phase locked to distance walked), walking head-on towards or
  away from the camera, diagonally, stopping and starting, standing still, in groups; a cyclist,
  a dog, cars in a near lane and small fast cars on a far road (30-90 km/h);
- nuisances: cloud shadows and sun bursts (also with people in view), snow, rain and insects in
  3D in front of the lens (near ones are big, defocused and, under the IR lamp, bright),
  headlight pools sweeping a wall at night, trees and a foreground shrub in gusts, a burned-in
  clock, a starved bitrate with keyframe pumping.

Ground truth uses scenes.py's ``SceneTruth``/``ObjectInterval`` (written next to the clip with
``truth_path``), so the benchmark scorer reads it unchanged. People, cyclists, dogs and vehicles
are objects; an interval starts at the first frame 2 % of the object's box is in the picture,
"appears" when half of it is, and ends at its last visible frame (standing still counts as
present). ``small`` means the object's largest on-screen height stays under 8 % of the frame.
No object is visible before ``WARMUP_S``.

``HELDOUT_SET`` lists the clips (cached under bench/out/heldout/, rendered by ``ensure_heldout``);
``real_footage`` adds real pedestrian footage (OpenCV's vtest.avi from Debian's opencv-doc).
"""

from __future__ import annotations

from dataclasses import dataclass, field
import datetime as dt
from fractions import Fraction
import math
import os
from pathlib import Path
import shutil
import subprocess
import tempfile
from typing import Any

import av
import cv2
import numpy as np
from numpy.typing import NDArray

from tests.rig.scenes import (
    WARMUP_S,
    ObjectInterval,
    SceneTruth,
    TruthLog,
    encode_planes,
    finish_encoder,
    load_truth,
    open_encoder,
    rendered,
    truth_path,
)

U8 = NDArray[np.uint8]
F32 = NDArray[np.float32]
F64 = NDArray[np.float64]

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "bench" / "out" / "heldout"
FOOTAGE_CACHE = Path.home() / ".cache" / "pm_dvr" / "footage"


OBJECT_TOKENS = (
    "walk_headon",  # one person walks towards the camera, one away from it (head-on)
    "walk_diagonal",
    "stop_go",  # a walker stops two or three times on the way
    "stand_still",  # a person walks in, stands perfectly still for ~half a minute, walks on
    "group",  # 2-3 people walking together
    "cyclist",
    "dog",
    "car_near",  # near lane, 30-50 km/h
    "car_far",  # far road, 60-90 km/h: small and fast
)
NUISANCE_TOKENS = (
    "clouds",  # cloud shadows drifting over the ground + sudden sun bursts
    "sunrise",  # light ramps up over the clip (with auto-exposure steps)
    "ir_night",  # IR night picture
    "ir_switch",  # colour dusk -> IR (and back, for negatives)
    "snow",
    "rain",
    "insects",  # moths fluttering around the IR lamp, close to the lens
    "headlights",  # light pools of unseen cars sweeping a wall at night
    "foliage",  # trees and a foreground shrub in gusts
    "clock",  # burned-in date/time overlay
    "lowrate",  # starved bitrate, short GOP: blocking and keyframe pumping
)
SCENES = ("garden", "street", "yard")


# --------------------------------------------------------------------------- camera


class _Camera:
    """A pinhole camera at (0, 0, mount) looking along +Y, tilted down, with barrel distortion.

    Rendering happens on an undistorted canvas of the output size; the barrel distortion is a
    remap of that canvas which keeps the corners (so the centre is slightly magnified).
    """

    def __init__(  # noqa: PLR0917
        self, w: int, h: int, mount: float, tilt_deg: float, hfov_deg: float, k1: float = 0.0
    ) -> None:
        self.w, self.h, self.mount, self.k1 = w, h, mount, k1
        self.tilt = math.radians(tilt_deg)
        self.f = (w / 2) / math.tan(math.radians(hfov_deg) / 2)
        self.cx, self.cy = (w - 1) / 2, (h - 1) / 2
        st, ct = math.sin(self.tilt), math.cos(self.tilt)
        self.st, self.ct = st, ct
        self.fwd = np.array([0.0, ct, -st])
        self.down = np.array([0.0, -st, -ct])
        self.rnorm = math.hypot(w / 2, h / 2)
        self.maps: tuple[Any, Any] | None = None
        if k1:
            ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
            dx, dy = (xs - self.cx) / self.rnorm, (ys - self.cy) / self.rnorm
            s = (1 + k1 * (dx * dx + dy * dy)) / (1 + k1)
            mx = (self.cx + dx * s * self.rnorm).astype(np.float32)
            my = (self.cy + dy * s * self.rnorm).astype(np.float32)
            self.maps = cv2.convertMaps(mx, my, cv2.CV_16SC2)

    def to_cam(self, pts: F64) -> F64:
        """World points (N, 3) to camera coordinates (x right, y down, z forward)."""
        r = pts - np.array([0.0, 0.0, self.mount])
        return np.stack([r[:, 0], r @ self.down, r @ self.fwd], axis=1)

    def project(self, pts: F64) -> tuple[F64, F64]:
        """World points to canvas pixels (undistorted) and their depth along the optical axis."""
        c = self.to_cam(pts)
        z = c[:, 2]
        zs = np.maximum(z, 1e-3)
        return np.stack([self.cx + self.f * c[:, 0] / zs, self.cy + self.f * c[:, 1] / zs], 1), z

    def distort(self, uv: F64) -> F64:
        """Canvas pixels to output pixels (inverse of the remap)."""
        if not self.k1:
            return uv
        d = (uv - [self.cx, self.cy]) / self.rnorm
        ru = np.hypot(d[:, 0], d[:, 1]) * (1 + self.k1)
        rd = ru / (1 + self.k1)
        for _ in range(6):  # Newton on rd * (1 + k rd^2) = ru
            rd -= (rd * (1 + self.k1 * rd * rd) - ru) / (1 + 3 * self.k1 * rd * rd)
        scale = np.where(ru > 1e-9, rd * (1 + self.k1) / np.maximum(ru, 1e-9), 1 / (1 + 0 * ru))
        return np.array([self.cx, self.cy]) + (uv - [self.cx, self.cy]) * scale[:, None]

    def edge_x(self, y: float) -> float:
        """Half-width of the view on the ground at depth y (metres)."""
        return (self.w / 2) * (y * self.ct + self.mount * self.st) / self.f

    def near_y(self) -> float:
        """Ground depth seen at the bottom edge of the picture."""
        yc = (self.h / 2) / self.f
        dz, dy = -yc * self.ct - self.st, -yc * self.st + self.ct
        return self.mount * dy / -dz if dz < 0 else 0.0


# --------------------------------------------------------------------------- procedural textures


def _hash(ix: NDArray[Any], iy: NDArray[Any], seed: int) -> F32:
    """A deterministic per-lattice-cell random value in [0, 1)."""
    h = (
        ix.astype(np.int64) * 374761393 + iy.astype(np.int64) * 668265263 + seed * 1442695041
    ) & 0xFFFFFFFF
    h = ((h ^ (h >> 13)) * 1274126177) & 0xFFFFFFFF
    h ^= h >> 16
    return ((h & 0xFFFFFF).astype(np.float32)) / np.float32(16777216.0)


def _vnoise(x: F32, y: F32, seed: int) -> F32:
    """Smooth value noise on the unit lattice."""
    ix, iy = np.floor(x), np.floor(y)
    fx, fy = x - ix, y - iy
    fx, fy = fx * fx * (3 - 2 * fx), fy * fy * (3 - 2 * fy)
    a, b = _hash(ix, iy, seed), _hash(ix + 1, iy, seed)
    c, d = _hash(ix, iy + 1, seed), _hash(ix + 1, iy + 1, seed)
    return (a + (b - a) * fx) * (1 - fy) + (c + (d - c) * fx) * fy


def _fbm(x: F32, y: F32, seed: int, octaves: int = 3) -> F32:
    """Fractal value noise in [0, 1]."""
    total, amp, norm = np.zeros_like(x), 1.0, 0.0
    for o in range(octaves):
        total += _vnoise(x * (2**o), y * (2**o), seed + 17 * o) * amp
        norm += amp
        amp *= 0.5
    return total / np.float32(norm)


def _smoothstep(e0: float, e1: float, x: NDArray[Any]) -> F32:
    t = np.clip((x - e0) / (e1 - e0), 0, 1).astype(np.float32)
    return t * t * (3 - 2 * t)


def _bond(  # noqa: PLR0917
    u: F32, v: F32, bw: float, bh: float, mortar: float, seed: int
) -> tuple[F32, F32, F32]:
    """Running bond (bricks/pavers): mortar mask, per-unit random value, fine speckle."""
    row = np.floor(v / bh)
    xo = u / bw + 0.5 * (row % 2)
    col = np.floor(xo)
    fx, fy = (xo - col) * bw, (v / bh - row) * bh
    joint = np.minimum(np.minimum(fx, bw - fx), np.minimum(fy, bh - fy))
    mort = 1 - _smoothstep(mortar * 0.5, mortar, joint)
    unit = _hash(col, row, seed)
    speck = _hash(np.floor(u / 0.006), np.floor(v / 0.006), seed + 5)
    return mort, unit, speck


def _mix(mask: F32, a: F32, b: F32) -> F32:
    return a + (b - a) * mask[..., None]


def _colour(bgr: tuple[float, float, float], shape: tuple[int, ...]) -> F32:
    return np.broadcast_to(np.array(bgr, np.float32), (*shape, 3)).copy()


def _lawn(x: F32, y: F32, seed: int, tone: float = 1.0) -> F32:
    patches = _fbm(x / 2.5, y / 2.5, seed, 3)
    stripes = 0.93 + 0.07 * np.sign(np.sin(np.pi * x / 0.9)).astype(np.float32)
    blades = _hash(np.floor(x / 0.011), np.floor(y / 0.02), seed + 1)
    clumps = _vnoise(x / 0.07, y / 0.07, seed + 2)
    lum = (0.55 + 0.5 * patches) * stripes * (0.7 + 0.35 * blades) * (0.85 + 0.3 * clumps) * tone
    base = _colour((0.16, 0.42, 0.27), x.shape)
    dry = _colour((0.30, 0.50, 0.52), x.shape)
    col = _mix(_smoothstep(0.62, 0.75, patches), base, dry)
    return col * lum[..., None]


def _pavers(x: F32, y: F32, seed: int, tint: tuple[float, float, float]) -> F32:
    mort, unit, speck = _bond(x, y, 0.20, 0.10, 0.008, seed)
    lum = (0.8 + 0.35 * unit) * (0.88 + 0.24 * speck)
    col = _colour(tint, x.shape) * lum[..., None]
    return _mix(mort, col, _colour((0.32, 0.34, 0.35), x.shape))


def _slabs(x: F32, y: F32, seed: int) -> F32:
    mort, unit, speck = _bond(x, y, 0.6, 0.6, 0.012, seed)
    stain = _fbm(x / 0.8, y / 0.8, seed + 3, 2)
    lum = (0.85 + 0.15 * unit) * (0.9 + 0.2 * speck) * (0.85 + 0.25 * stain)
    col = _colour((0.55, 0.56, 0.56), x.shape) * lum[..., None]
    return _mix(mort, col, _colour((0.30, 0.31, 0.31), x.shape))


def _gravel(x: F32, y: F32, seed: int) -> F32:
    stone = _hash(np.floor(x / 0.025 + 0.5 * np.floor(y / 0.025)), np.floor(y / 0.025), seed)
    edge = _hash(np.floor(x / 0.011), np.floor(y / 0.011), seed + 1)
    warm = _fbm(x / 1.5, y / 1.5, seed + 2, 2)
    lum = 0.45 + 0.5 * stone * (0.75 + 0.25 * edge)
    base = _mix(warm, _colour((0.52, 0.56, 0.60), x.shape), _colour((0.44, 0.53, 0.62), x.shape))
    return base * lum[..., None]


def _asphalt(x: F32, y: F32, seed: int) -> F32:
    speck = _hash(np.floor(x / 0.008), np.floor(y / 0.008), seed)
    patch = _fbm(x / 3, y / 3, seed + 1, 3)
    lum = (0.21 + 0.07 * speck) * (0.8 + 0.4 * patch)
    return _colour((1.0, 1.0, 1.0), x.shape) * lum[..., None]


def _planks(x: F32, z: F32, seed: int) -> F32:
    u = x / 0.145
    plank = np.floor(u)
    gap = 1 - _smoothstep(0.03, 0.07, np.minimum(u - plank, plank + 1 - u))
    grain = _vnoise(x / 0.004, z / 0.25, seed) * 0.5 + _vnoise(x / 0.02, z / 0.6, seed + 1) * 0.5
    unit = _hash(plank, plank * 0, seed + 2)
    lum = (0.75 + 0.3 * unit) * (0.8 + 0.35 * grain)
    col = _colour((0.20, 0.33, 0.46), x.shape) * lum[..., None]
    post = (np.abs(((x + 1.2) % 2.4) - 1.2) < 0.05).astype(np.float32)
    col = _mix(post, col, _colour((0.13, 0.22, 0.30), x.shape))
    return _mix(gap, col, _colour((0.05, 0.07, 0.08), x.shape))


def _bricks(x: F32, z: F32, seed: int) -> F32:
    mort, unit, speck = _bond(x, z, 0.225, 0.075, 0.01, seed)
    dirt = _fbm(x / 1.2, z / 1.2, seed + 4, 2)
    lum = (0.72 + 0.4 * unit) * (0.85 + 0.3 * speck) * (0.85 + 0.2 * dirt)
    col = _colour((0.20, 0.30, 0.56), x.shape) * lum[..., None]
    return _mix(mort, col, _colour((0.55, 0.58, 0.60), x.shape))


def _render(x: F32, z: F32, seed: int) -> F32:
    n = _fbm(x / 0.5, z / 0.5, seed, 3)
    speck = _hash(np.floor(x / 0.01), np.floor(z / 0.01), seed + 1)
    lum = (0.85 + 0.2 * n) * (0.92 + 0.12 * speck)
    return _colour((0.62, 0.74, 0.80), x.shape) * lum[..., None]


def _windows(x: F32, z: F32, col: F32, spacing: float, seed: int) -> F32:
    """Windows (dark glass with white frames) in rows on a facade."""
    cell = np.floor(x / spacing)
    fx = x / spacing - cell
    for z0, z1 in ((0.9, 2.2), (3.6, 4.9), (6.3, 7.6)):
        inside = (fx > 0.3) & (fx < 0.7) & (z > z0) & (z < z1)
        frame = inside & ((fx < 0.33) | (fx > 0.67) | (z < z0 + 0.08) | (z > z1 - 0.08))
        glass = inside & ~frame
        lit = _hash(cell, np.floor(z0) + 0 * cell, seed) * 0.25
        col[frame] = (0.85, 0.87, 0.88)
        col[glass] = np.stack([0.22 + lit[glass], 0.18 + lit[glass], 0.15 + lit[glass]], -1)
    return col


# --------------------------------------------------------------------------- the world


@dataclass(slots=True)
class _World:
    """Static layout of one scene (metres), its canvas maps and albedos."""

    scene: str
    walls: list[tuple[float, float, str]]  # (depth y, height, material), nearest first
    walk_far: float  # people walk no deeper than this
    lanes: list[float] = field(default_factory=list)  # road lane centres (y), near first
    path: tuple[float, float] = (0.0, 0.0)  # garden path: x at the near and at the far end
    # canvas maps (output resolution, undistorted)
    surface: NDArray[np.int8] = field(default_factory=lambda: np.zeros((0, 0), np.int8))
    wx: F32 = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    wy: F32 = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    wz: F32 = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    range_: F32 = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    cos_in: F32 = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    albedo: U8 = field(default_factory=lambda: np.zeros((0, 0, 3), np.uint8))
    albedo_ir: U8 = field(default_factory=lambda: np.zeros((0, 0), np.uint8))


SKY, GROUND, WALL = 0, 1, 2


def _plan_world(rng: np.random.Generator, scene: str) -> _World:
    if scene == "garden":
        fence = float(rng.uniform(15, 24))
        return _World(
            scene,
            walls=[(fence, 1.8, "planks"), (fence + float(rng.uniform(20, 35)), 7.5, "render")],
            walk_far=fence - 1.5,
            path=(float(rng.uniform(-1.5, 1.5)), float(rng.uniform(-4, 4))),
        )
    if scene == "street":
        r0 = float(rng.uniform(9, 12))
        far = r0 + 7 + float(rng.uniform(22, 30))
        return _World(
            scene,
            walls=[(far + float(rng.uniform(14, 20)), 9.0, "bricks")],
            walk_far=r0 - 0.6,
            lanes=[r0 + 1.75, r0 + 5.25, far + 1.8, far + 5.4],
        )
    wall = float(rng.uniform(10, 14))
    return _World(
        scene,
        walls=[(wall, 2.6, "bricks"), (wall + float(rng.uniform(8, 14)), 6.5, "render")],
        walk_far=wall - 1.0,
    )


def _surfaces(cam: _Camera, world: _World, ss: float) -> dict[str, F32]:
    """Per canvas pixel (at supersampling ss): which surface the ray hits and where."""
    w, h = round(cam.w * ss), round(cam.h * ss)
    u = ((np.arange(w, dtype=np.float32) + 0.5) / ss - 0.5 - cam.cx) / cam.f
    v = ((np.arange(h, dtype=np.float32) + 0.5) / ss - 0.5 - cam.cy) / cam.f
    xc, yc = np.broadcast_to(u[None, :], (h, w)), np.broadcast_to(v[:, None], (h, w))
    st, ct = np.float32(cam.st), np.float32(cam.ct)
    dx, dy, dz = xc, ct - yc * st, -yc * ct - st
    best = np.full((h, w), np.inf, np.float32)
    surface = np.full((h, w), SKY, np.int8)
    wall_id = np.full((h, w), -1, np.int8)
    with np.errstate(divide="ignore", invalid="ignore"):
        sg = np.where(dz < 0, cam.mount / -dz, np.inf).astype(np.float32)
        sg[sg * dy > 400] = np.inf
        hit = sg < best
        best[hit], surface[hit] = sg[hit], GROUND
        for k, (depth, height, _mat) in enumerate(world.walls):
            sw = np.where(dy > 0, depth / dy, np.inf).astype(np.float32)
            zw = cam.mount + sw * dz
            hit = (sw < best) & (zw >= 0) & (zw <= height)
            best[hit], surface[hit], wall_id[hit] = sw[hit], WALL, k
    s = np.where(np.isfinite(best), best, 500.0).astype(np.float32)
    norm = np.sqrt(dx * dx + dy * dy + dz * dz)
    out = {
        "surface": surface.astype(np.float32),
        "wall": wall_id.astype(np.float32),
        "x": (s * dx).astype(np.float32),
        "y": (s * dy).astype(np.float32),
        "z": np.maximum(0, cam.mount + s * dz).astype(np.float32),
        "range": (s * norm).astype(np.float32),
        "elev": (-dz / norm).astype(np.float32),
    }
    out["cos"] = np.where(surface == GROUND, -dz / norm, dy / norm).astype(np.float32)
    return out


def _albedo(world: _World, m: dict[str, F32], seed: int) -> tuple[F32, F32]:
    """Colour albedo (BGR in [0, 1]) and near-infrared reflectance for the surface maps."""
    x, y, z = m["x"], m["y"], m["z"]
    surf = m["surface"]
    col = np.zeros((*x.shape, 3), np.float32)
    veg = np.zeros(x.shape, np.float32)
    g = surf == GROUND
    if world.scene == "garden":
        gx, gy = x[g], y[g]
        lawn = _lawn(gx, gy, seed)
        fence = world.walls[0][0]
        beyond = gy > fence
        lawn[beyond] = _lawn(gx[beyond], gy[beyond], seed + 9, tone=0.85)
        c = lawn
        v = np.ones_like(gx)
        px0, px1 = world.path
        centre = px0 + (px1 - px0) * np.clip(gy / fence, 0, 1)
        on_path = (np.abs(gx - centre) < 0.7) & (gy < fence)
        patio = gy < 3.5
        gravel = (gy > fence - 1.0) & (gy < fence)
        c[gravel] = _gravel(gx[gravel], gy[gravel], seed + 3)
        c[on_path] = _pavers(gx[on_path], gy[on_path], seed + 4, (0.45, 0.55, 0.66))
        c[patio] = _slabs(gx[patio], gy[patio], seed + 5)
        v[gravel | on_path | patio] = 0
    elif world.scene == "street":
        gx, gy = x[g], y[g]
        c = _pavers(gx, gy, seed + 1, (0.40, 0.42, 0.50))
        v = np.zeros_like(gx)
        r0 = world.lanes[0] - 1.75
        far = world.lanes[2] - 1.8
        walk = (gy > r0 - 2.5) & (gy < r0)
        c[walk] = _slabs(gx[walk], gy[walk], seed + 2)
        kerb = (gy > r0 - 0.18) & (gy < r0)
        c[kerb] = 0.62
        for a, b in ((r0, r0 + 7), (far, far + 7.2)):
            road = (gy >= a) & (gy < b)
            c[road] = _asphalt(gx[road], gy[road], seed + 3)
            mid = road & (np.abs(gy - (a + b) / 2) < 0.06) & ((gx % 6.0) < 3.0)
            edge = road & ((np.abs(gy - a - 0.3) < 0.05) | (np.abs(gy - b + 0.3) < 0.05))
            c[mid | edge] = 0.8
        verge = (gy >= r0 + 7) & (gy < far)
        c[verge] = _lawn(gx[verge], gy[verge], seed + 4, tone=0.9)
        v[verge] = 1
        field_ = gy >= far + 7.2
        c[field_] = _lawn(gx[field_], gy[field_], seed + 5, tone=0.8)
        v[field_] = 1
    else:
        gx, gy = x[g], y[g]
        c = _gravel(gx, gy, seed + 1)
        v = np.zeros_like(gx)
        slab = np.abs(gx - 0.8 * np.sin(gy / 4)) < 0.9
        c[slab] = _slabs(gx[slab], gy[slab], seed + 2)
        moss = _fbm(gx / 2, gy / 2, seed + 3, 2) > 0.74
        c[moss & ~slab] = _lawn(gx[moss & ~slab], gy[moss & ~slab], seed + 4, 0.8)
        v[moss & ~slab] = 1
    col[g], veg[g] = c, v
    for k, (_d, _h, mat) in enumerate(world.walls):
        sel = (surf == WALL) & (m["wall"] == k)
        wx, wz = x[sel], z[sel]
        if mat == "planks":
            c = _planks(wx, wz, seed + 10 + k)
        elif mat == "bricks":
            c = _bricks(wx, wz, seed + 10 + k)
            if k > 0 or world.scene == "street":
                c = _windows(wx, wz, c, 4.5, seed + 20 + k)
        else:
            c = _windows(wx, wz, _render(wx, wz, seed + 10 + k), 3.8, seed + 20 + k)
        col[sel] = c
    sky = surf == SKY
    elev = np.clip(m["elev"][sky] * -1, 0, 1)  # upward elevation of the ray
    sc = _colour((0.93, 0.86, 0.80), elev.shape)
    top = _colour((0.88, 0.66, 0.45), elev.shape)
    clouds = _fbm(m["x"][sky] / 400 + elev * 3, elev * 12, seed + 30, 3)
    c = _mix(np.clip(elev * 3, 0, 1), sc, top)
    c = _mix(_smoothstep(0.5, 0.7, clouds) * 0.7, c, _colour((0.92, 0.92, 0.92), elev.shape))
    col[sky] = c
    gray = col @ np.array([0.3, 0.35, 0.35], np.float32)
    ir = np.clip(gray * 0.85 + veg * 0.22, 0, 1)
    ir[sky] = 0.03
    return col, ir


# --------------------------------------------------------------------------- foliage


class _Foliage:
    """A tree or shrub: a leaf layer with holes, swaying with a height-dependent weight."""

    def __init__(  # noqa: PLR0917
        self,
        rng: np.random.Generator,
        cam: _Camera,
        x: float,
        y: float,
        height: float,
        radius: float,
        trunk: bool = True,
    ) -> None:
        (cu, cv), _ = (a[0] for a in cam.project(np.array([[x, y, height - radius]])))
        (fu, fv), zf = (a[0] for a in cam.project(np.array([[x, y, 0.0]])))
        r = float(cam.f * radius / max(float(zf), 0.5))
        self.x0 = int(max(0, cu - 1.35 * r))
        self.x1 = int(min(cam.w, cu + 1.35 * r))
        self.y0 = int(max(0, cv - 1.35 * r))
        self.y1 = int(min(cam.h, max(fv, cv + 1.2 * r)))
        self.empty = self.x1 - self.x0 < 4 or self.y1 - self.y0 < 4
        if self.empty:
            return
        seed = int(rng.integers(1 << 30))
        ys, xs = np.mgrid[self.y0 : self.y1, self.x0 : self.x1].astype(np.float32)
        nx, ny = (xs - cu) / r, (ys - cv) / (r * 1.1)
        d = np.sqrt(nx * nx + ny * ny)
        lobes = _fbm(nx * 2.2, ny * 2.2, seed, 3)
        holes = _vnoise(nx * 9, ny * 9, seed + 1)
        alpha = _smoothstep(1.0, 0.9, d + 0.45 * (lobes - 0.5)) * _smoothstep(0.28, 0.42, holes)
        leaf = _hash(np.floor(xs / max(1.5, r / 40)), np.floor(ys / max(1.5, r / 40)), seed + 2)
        lum = (0.45 + 0.5 * lobes + 0.35 * leaf) * (1.1 - 0.35 * ny.clip(-1, 1))
        tone = float(rng.uniform(0.8, 1.2))
        col = np.stack([0.10 * lum, 0.36 * lum * tone, 0.22 * lum], -1)
        ir = np.clip(0.55 * lum + 0.1, 0, 1)
        if trunk:
            bark = np.zeros_like(alpha)
            tw = max(1, round(cam.f * 0.14 / max(zf, 0.5)))
            cv2.line(
                bark,
                (round(fu - self.x0), round(fv - self.y0)),
                (round(cu - self.x0), round(cv - self.y0)),
                1.0,
                tw,
            )
            bark *= 1 - alpha
            col = col * (1 - bark[..., None]) + bark[..., None] * np.array([0.12, 0.18, 0.24])
            ir = ir * (1 - bark) + bark * 0.35
            alpha = np.maximum(alpha, bark)
        self.col = np.clip(col * 255, 0, 255).astype(np.float32)
        self.ir = (ir * 255).astype(np.float32)
        self.alpha = alpha.astype(np.float32)
        sway = np.clip((fv - ys) / max(1.0, fv - (cv - r)), 0, 1) ** 1.5
        n1 = (_vnoise(nx * 3, ny * 3, seed + 3) - 0.5) * 2
        n2 = (_vnoise(nx * 3, ny * 3, seed + 4) - 0.5) * 2
        self.sway = sway.astype(np.float32)
        self.n1, self.n2 = (n1 * sway).astype(np.float32), (n2 * sway).astype(np.float32)
        self.gx, self.gy = xs - self.x0, ys - self.y0
        self.r = r
        self.phase = float(rng.uniform(0, 2 * np.pi))

    def apply(self, img: U8, t: float, amp: float, ir: bool) -> None:
        """Composite the swaying layer into img (amp in fractions of the crown radius)."""
        if self.empty:
            return
        a = amp * self.r
        w1 = 2 * math.pi * 0.45
        big = a * math.sin(w1 * t + self.phase)
        flick = a * 0.35
        mx = (
            self.gx
            - big * self.sway
            - flick * (self.n1 * math.cos(5.3 * t) + self.n2 * math.sin(4.1 * t))
        )
        my = self.gy - flick * 0.5 * (self.n2 * math.cos(4.7 * t) - self.n1 * math.sin(3.9 * t))
        alpha = cv2.remap(self.alpha, mx, my, cv2.INTER_LINEAR, borderValue=0)
        src = self.ir if ir else self.col
        layer = cv2.remap(src, mx, my, cv2.INTER_LINEAR, borderValue=0)
        region = img[self.y0 : self.y1, self.x0 : self.x1].astype(np.float32)
        if not ir:
            alpha = alpha[..., None]
        region += (layer - region) * alpha
        img[self.y0 : self.y1, self.x0 : self.x1] = np.clip(region, 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- actors


@dataclass(slots=True)
class _Actor:
    """Something worth an alert, moving along world waypoints (with waits) from time t0."""

    kind: str  # person, cyclist, dog, car
    t0: float
    way: list[tuple[float, float]]
    speed: float  # m/s
    waits: dict[int, float] = field(default_factory=dict)  # waypoint index -> seconds
    size: float = 1.75  # person/dog height, car length
    colours: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    phase0: float = 0.0
    legs: list[tuple[float, float, F64, F64, float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        t = self.t0
        for i in range(len(self.way) - 1):
            p0, p1 = np.array(self.way[i], float), np.array(self.way[i + 1], float)
            if self.waits.get(i):
                self.legs.append((t, t + self.waits[i], p0, p0 + (p1 - p0) * 1e-6, 0.0))
                t += self.waits[i]
            dur = float(np.linalg.norm(p1 - p0)) / self.speed
            self.legs.append((t, t + dur, p0, p1, self.speed))
            t += dur

    @property
    def t_end(self) -> float:
        return self.legs[-1][1]

    def state(self, t: float) -> tuple[float, float, float, float, bool] | None:
        """(x, y, heading, distance walked, moving) at time t, or None when not in the world."""
        if t < self.t0 or t > self.t_end:
            return None
        dist = 0.0
        for t0, t1, p0, p1, v in self.legs:
            seg = float(np.linalg.norm(p1 - p0)) if v else 0.0
            if t <= t1:
                a = (t - t0) / max(1e-9, t1 - t0)
                p = p0 + (p1 - p0) * a
                d = p1 - p0
                return float(p[0]), float(p[1]), math.atan2(d[1], d[0]), dist + seg * a, v > 0
            dist += seg
        return None


def _person_colours(rng: np.random.Generator) -> dict[str, tuple[float, float, float]]:
    tops = [
        (0.15, 0.15, 0.6),
        (0.5, 0.3, 0.1),
        (0.2, 0.45, 0.2),
        (0.75, 0.75, 0.75),
        (0.12, 0.12, 0.12),
        (0.2, 0.55, 0.85),
        (0.55, 0.25, 0.45),
        (0.3, 0.3, 0.35),
    ]
    legs = [(0.35, 0.2, 0.1), (0.15, 0.15, 0.15), (0.4, 0.4, 0.42), (0.3, 0.45, 0.55)]
    skin = [(0.55, 0.68, 0.85), (0.35, 0.48, 0.65), (0.2, 0.3, 0.42)]
    hair = [(0.08, 0.1, 0.12), (0.15, 0.3, 0.45), (0.5, 0.65, 0.75), (0.1, 0.15, 0.25)]

    def pick(opts: list[tuple[float, float, float]]) -> tuple[float, float, float]:
        c = opts[int(rng.integers(len(opts)))]
        k = float(rng.uniform(0.85, 1.15))
        return (min(1, c[0] * k), min(1, c[1] * k), min(1, c[2] * k))

    return {
        "top": pick(tops),
        "legs": pick(legs),
        "skin": pick(skin),
        "hair": pick(hair),
        "shoes": (0.1, 0.1, 0.1),
    }


# A drawing primitive: (kind, points in world metres, width in metres, colour BGR 0..1, ir 0..1)
_Prim = tuple[str, F64, float, tuple[float, float, float], float]


def _ir_of(c: tuple[float, float, float]) -> float:
    """Near-infrared reflectance of a fabric/paint colour (dyes often reflect NIR)."""
    return float(np.clip(0.25 + 0.5 * (0.3 * c[0] + 0.3 * c[1] + 0.4 * c[2]), 0, 1))


def _frame_of(x: float, y: float, hd: float) -> tuple[F64, F64, F64]:
    base = np.array([x, y, 0.0])
    fw = np.array([math.cos(hd), math.sin(hd), 0.0])
    rt = np.array([math.sin(hd), -math.cos(hd), 0.0])
    return base, fw, rt


def _local(base: F64, fw: F64, rt: F64, f: float, r: float, z: float) -> F64:  # noqa: PLR0917
    return base + fw * f + rt * r + np.array([0.0, 0.0, z])


def _person_prims(a: _Actor, st: tuple[float, float, float, float, bool], t: float) -> list[_Prim]:
    x, y, hd, dist, moving = st
    s = a.size / 1.75
    base, fw, rt = _frame_of(x, y, hd)
    c = a.colours
    ph = a.phase0 + 2 * math.pi * dist / (1.45 * s)
    amp = 0.42 if moving else 0.0
    bob = 0.025 * abs(math.cos(ph)) * (1 if moving else 0)

    def p(f: float, r: float, z: float) -> F64:
        return _local(base, fw, rt, f * s, r * s, (z + bob) * s)

    sides = []
    for side, sgn in (("l", -1.0), ("r", 1.0)):
        al = amp * math.sin(ph) * (1 if side == "l" else -1)
        hip = p(0, 0.09 * sgn, 0.92)
        knee = p(0.46 * math.sin(al) + 0.05 * amp, 0.1 * sgn, 0.92 - 0.46 * math.cos(al))
        lift = 0.08 * max(0.0, math.sin(al + 0.6)) if moving else 0.0
        foot = p(0.9 * math.sin(al) * 0.95, 0.1 * sgn, max(0.05, 0.92 - 0.9 * math.cos(al)) + lift)
        toe = foot + fw * 0.14 * s
        sh = p(0, 0.2 * sgn, 1.43)
        arm = -0.7 * al
        elbow = p(0.28 * math.sin(arm), 0.23 * sgn, 1.43 - 0.29 * math.cos(arm))
        hand = p(0.58 * math.sin(arm) + 0.06 * amp, 0.24 * sgn, 1.43 - 0.58 * math.cos(arm * 0.9))
        limb = [
            ("line", np.array([hip, knee, foot]), 0.15 * s, c["legs"], _ir_of(c["legs"])),
            ("line", np.array([foot, toe]), 0.1 * s, c["shoes"], 0.2),
            ("line", np.array([sh, elbow, hand]), 0.09 * s, c["top"], _ir_of(c["top"])),
            ("disc", np.array([hand]), 0.045 * s, c["skin"], 0.6),
        ]
        sides.append((hip, limb))
    torso = np.array([p(f, r, z) for f in (-0.11, 0.11) for r in (-0.2, 0.2) for z in (0.86, 1.47)])
    trunk: list[_Prim] = [
        ("hull", torso, 0.0, c["top"], _ir_of(c["top"])),
        ("line", np.array([p(0, 0, 1.44), p(0.01, 0, 1.54)]), 0.11 * s, c["skin"], 0.6),
        ("disc", np.array([p(0.0, 0, 1.645)]), 0.108 * s, c["hair"], 0.45),
        ("face", np.array([p(0.03, 0, 1.625)]), 0.095 * s, c["skin"], 0.6),
    ]
    return _order_sides(sides, trunk)


def _order_sides(sides: list[tuple[F64, list[_Prim]]], trunk: list[_Prim]) -> list[_Prim]:
    """Draw the limb side away from the camera first (painter's order, decided when drawing)."""
    n = float(len(sides[0][1]))
    return [
        ("sides", np.array([sides[0][0], sides[1][0]]), n, (0, 0, 0), 0.0),
        *sides[0][1],
        *sides[1][1],
        *trunk,
    ]


def _cyclist_prims(a: _Actor, st: tuple[float, float, float, float, bool], t: float) -> list[_Prim]:
    x, y, hd, dist, _moving = st
    base, fw, rt = _frame_of(x, y, hd)
    c = a.colours
    wr = 0.34

    def p(f: float, r: float, z: float) -> F64:
        return _local(base, fw, rt, f, r, z)

    prims: list[_Prim] = []
    ang = np.linspace(0, 2 * np.pi, 19)
    for fc in (-0.52, 0.52):
        ring = np.array([p(fc + wr * math.cos(q), 0, wr + wr * math.sin(q)) for q in ang])
        prims.append(("line", ring, 0.045, (0.08, 0.08, 0.08), 0.15))
    crank = p(0.0, 0, 0.3)
    seat, bar = p(-0.2, 0, 0.95), p(0.42, 0, 1.02)
    frame_c = c["top"] if "bike" not in c else c["bike"]
    prims.append(
        ("line", np.array([p(-0.52, 0, wr), crank, seat, p(-0.52, 0, wr)]), 0.035, frame_c, 0.6)
    )
    prims.append(("line", np.array([crank, p(0.38, 0, 0.85), bar]), 0.035, frame_c, 0.6))
    prims.append(("line", np.array([p(0.52, 0, wr), p(0.4, 0, 0.9)]), 0.03, frame_c, 0.6))
    q = dist / (2 * math.pi * wr) * 2 * math.pi * 0.55
    sides = []
    for sgn in (-1.0, 1.0):
        qq = q + (0 if sgn < 0 else math.pi)
        pedal = p(0.17 * math.cos(qq), 0.12 * sgn, 0.3 + 0.17 * math.sin(qq))
        hip = p(-0.18, 0.09 * sgn, 1.0)
        mid = (hip + pedal) / 2 + fw * 0.22 + np.array([0, 0, 0.1])
        sides.append(
            (
                hip,
                [
                    ("line", np.array([hip, mid, pedal]), 0.14, c["legs"], _ir_of(c["legs"])),
                    (
                        "line",
                        np.array(
                            [
                                p(-0.05, 0.2 * sgn, 1.45),
                                p(0.15, 0.22 * sgn, 1.2),
                                p(0.42, 0.22 * sgn, 1.04),
                            ]
                        ),
                        0.085,
                        c["top"],
                        _ir_of(c["top"]),
                    ),
                ],
            )
        )
    torso = np.array(
        [p(f, r, z) for f in (-0.28, -0.06) for r in (-0.19, 0.19) for z in (0.98, 1.02)]
        + [p(f, r, 1.48) for f in (0.0, 0.2) for r in (-0.19, 0.19)]
    )
    trunk: list[_Prim] = [
        ("hull", torso, 0.0, c["top"], _ir_of(c["top"])),
        ("disc", np.array([p(0.18, 0, 1.64)]), 0.12, c["hair"], 0.5),  # helmet
    ]
    return prims + _order_sides(sides, trunk)


def _dog_prims(a: _Actor, st: tuple[float, float, float, float, bool], t: float) -> list[_Prim]:
    x, y, hd, dist, moving = st
    s = a.size / 0.6
    base, fw, rt = _frame_of(x, y, hd)
    c = a.colours["coat"]
    ph = 2 * math.pi * dist / (0.9 * s)
    amp = 0.45 if moving else 0.0

    def p(f: float, r: float, z: float) -> F64:
        return _local(base, fw, rt, f * s, r * s, z * s)

    legs: list[_Prim] = []
    for f0, r0, off in (
        (0.26, -0.08, 0),
        (0.26, 0.08, math.pi),
        (-0.26, -0.08, math.pi),
        (-0.26, 0.08, 0),
    ):
        al = amp * math.sin(ph + off)
        legs.append(
            (
                "line",
                np.array([p(f0, r0, 0.4), p(f0 + 0.34 * math.sin(al), r0, 0.04)]),
                0.07 * s,
                c,
                _ir_of(c),
            )
        )
    body = np.array([p(f, r, z) for f in (-0.33, 0.3) for r in (-0.12, 0.12) for z in (0.34, 0.58)])
    wag = 0.15 * math.sin(9 * t)
    return [
        *legs,
        ("hull", body, 0.0, c, _ir_of(c)),
        ("line", np.array([p(-0.32, 0, 0.55), p(-0.5, wag, 0.72)]), 0.05 * s, c, _ir_of(c)),
        ("line", np.array([p(0.3, 0, 0.55), p(0.42, 0, 0.66)]), 0.12 * s, c, _ir_of(c)),
        ("disc", np.array([p(0.44, 0, 0.68)]), 0.1 * s, c, _ir_of(c)),
        ("line", np.array([p(0.48, 0, 0.66), p(0.6, 0, 0.62)]), 0.07 * s, c, _ir_of(c)),
        ("disc", np.array([p(0.61, 0, 0.625)]), 0.03 * s, (0.05, 0.05, 0.05), 0.1),
    ]


def _box(  # noqa: PLR0917
    base: F64,
    fw: F64,
    rt: F64,
    f: tuple[float, float],
    r: tuple[float, float],
    z: tuple[float, float],
) -> F64:
    return np.array([_local(base, fw, rt, ff, rr, zz) for ff in f for rr in r for zz in z])


def _car_prims(a: _Actor, st: tuple[float, float, float, float, bool], t: float) -> list[_Prim]:
    x, y, hd, _dist, _moving = st
    base, fw, rt = _frame_of(x, y, hd)
    c = a.colours["body"]
    hl = a.size / 2
    prims: list[_Prim] = []
    ang = np.linspace(0, 2 * np.pi, 13)
    for fc in (-hl * 0.62, hl * 0.62):
        for rc in (-0.86, 0.86):
            ring = np.array(
                [
                    _local(base, fw, rt, fc + 0.32 * math.cos(q), rc, 0.32 + 0.32 * math.sin(q))
                    for q in ang
                ]
            )
            prims.append(("poly", ring, 0.0, (0.06, 0.06, 0.06), 0.1))
    prims.append(
        ("box", _box(base, fw, rt, (-hl, hl), (-0.9, 0.9), (0.3, 0.98)), 0.0, c, _ir_of(c))
    )
    prims.append(
        (
            "box",
            _box(base, fw, rt, (-hl * 0.6, hl * 0.35), (-0.78, 0.78), (0.98, 1.45)),
            0.0,
            (0.28, 0.22, 0.18),
            0.25,
        )
    )
    for sgn in (-1, 1):
        prims.append(
            (
                "lamp",
                np.array([_local(base, fw, rt, hl + 0.01, 0.62 * sgn, 0.72)]),
                0.1,
                (0.85, 0.95, 1.0),
                1.0,
            )
        )
        prims.append(
            (
                "lamp",
                np.array([_local(base, fw, rt, -hl - 0.01, 0.66 * sgn, 0.8)]),
                0.08,
                (0.1, 0.1, 0.8),
                0.6,
            )
        )
    return prims


_PRIMS = {"person": _person_prims, "cyclist": _cyclist_prims, "dog": _dog_prims, "car": _car_prims}


# --------------------------------------------------------------------------- drawing actors

_SHIFT = 3
_ONE = 1 << _SHIFT
_BOX_FACES = ((0, 1, 3, 2), (4, 5, 7, 6), (0, 1, 5, 4), (2, 3, 7, 6), (0, 2, 6, 4), (1, 3, 7, 5))
_FACE_SHADE = (0.8, 1.0, 0.85, 0.85, 0.5, 1.12)


def _fix(uv: F64) -> NDArray[np.int32]:
    return np.round(np.clip(uv, -30000, 30000) * _ONE).astype(np.int32)


class _Painter:
    """Draws primitives on the albedo image (anti-aliased) and on the light map (flat)."""

    def __init__(self, cam: _Camera, ir: bool) -> None:
        self.cam, self.ir = cam, ir
        self.campos = np.array([0.0, 0.0, cam.mount])

    def value(self, colour: tuple[float, float, float], ir: float, k: float = 1.0) -> Any:
        if self.ir:
            return min(255.0, ir * 255 * k)
        return tuple(min(255.0, ch * 255 * k) for ch in colour)

    def prims(
        self, prims: list[_Prim], img: U8 | None, light: F32 | None, lval: float, lamps: float
    ) -> tuple[float, float, float, float] | None:
        """Draw; return the canvas bounding box (x0, y0, x1, y1) or None when behind the camera."""
        cam = self.cam
        allpts = np.concatenate([pr[1] for pr in prims])
        _uv, zz = cam.project(allpts)
        if zz.min() < 0.05:
            return None
        box = [np.inf, np.inf, -np.inf, -np.inf]

        def grow(uv: F64, pad: float) -> None:
            box[0] = min(box[0], float(uv[:, 0].min()) - pad)
            box[1] = min(box[1], float(uv[:, 1].min()) - pad)
            box[2] = max(box[2], float(uv[:, 0].max()) + pad)
            box[3] = max(box[3], float(uv[:, 1].max()) + pad)

        order = list(range(len(prims)))
        for i, pr in enumerate(prims):
            if pr[0] == "sides":
                n = int(pr[2])
                _, zh = cam.project(pr[1])
                if zh[0] < zh[1]:  # the first side is nearer: draw the second first
                    order[i + 1 : i + 1 + 2 * n] = [
                        *range(i + 1 + n, i + 1 + 2 * n),
                        *range(i + 1, i + 1 + n),
                    ]
                break
        hair_z = None
        for i in order:
            kind, pts, width, colour, irv = prims[i]
            if kind == "sides":
                continue
            uv, z = cam.project(pts)
            targets: list[tuple[Any, Any, int]] = []
            if img is not None:
                targets.append((img, self.value(colour, irv), cv2.LINE_AA))
            if light is not None:
                targets.append((light, lval, cv2.LINE_8))
            if kind == "line":
                th = max(1, round(cam.f * width / float(z.mean())))
                grow(uv, th / 2)
                for tgt, val, lt in targets:
                    cv2.polylines(tgt, [_fix(uv)], False, val, th, lt, _SHIFT)
            elif kind in {"disc", "face", "lamp"}:
                r = cam.f * width / float(z[0])
                if kind == "disc":
                    hair_z = float(z[0])
                if kind == "face" and hair_z is not None and z[0] > hair_z:
                    continue  # seen from behind: the hair hides the face
                grow(uv, r)
                if kind == "lamp":
                    if lamps <= 0:
                        continue
                    targets = [(t, v, lt) for t, v, lt in targets if t is img]
                    if light is not None:
                        targets.append((light, lval * lamps, cv2.LINE_8))
                for tgt, val, lt in targets:
                    c = _fix(uv[0])
                    cv2.circle(
                        tgt, (int(c[0]), int(c[1])), max(1, round(r * _ONE)), val, -1, lt, _SHIFT
                    )
            elif kind in {"hull", "poly"}:
                grow(uv, 0.5)
                poly = _fix(cv2.convexHull(uv.astype(np.float32))[:, 0] if kind == "hull" else uv)
                for tgt, val, lt in targets:
                    cv2.fillPoly(tgt, [poly], val, lt, _SHIFT)
            elif kind == "box":
                grow(uv, 0.5)
                centre = pts.mean(0)
                for face, shade in zip(_BOX_FACES, _FACE_SHADE, strict=True):
                    fc = pts[list(face)].mean(0)
                    if np.dot(fc - centre, self.campos - fc) <= 0:
                        continue
                    poly = _fix(uv[list(face)])
                    for tgt, val, lt in targets:
                        v = self.value(colour, irv, shade) if tgt is img else val
                        cv2.fillConvexPoly(tgt, poly, v, lt, _SHIFT)
        return (box[0], box[1], box[2], box[3])

    def shadow(self, prims: list[_Prim], light: F32, sun: F64) -> None:
        """The object's cast shadow on the ground (sun = direction the light travels, z < 0)."""
        cam = self.cam
        for kind, pts, width, _c, _i in prims:
            if kind in {"sides", "face", "lamp"}:
                continue
            g = pts - np.outer(pts[:, 2] / sun[2], sun)
            uv, z = cam.project(g)
            if z.min() < 0.05:
                continue
            if kind == "line":
                th = max(1, round(cam.f * width / float(z.mean())))
                cv2.polylines(light, [_fix(uv)], False, 0.0, th, cv2.LINE_8, _SHIFT)
            elif kind == "disc":
                c = _fix(uv[0])
                r = max(1, round(cam.f * width / float(z[0]) * _ONE))
                cv2.circle(light, (int(c[0]), int(c[1])), r, 0.0, -1, cv2.LINE_8, _SHIFT)
            else:
                hull = cv2.convexHull(uv.astype(np.float32))[:, 0]
                cv2.fillPoly(light, [_fix(hull)], 0.0, cv2.LINE_8, _SHIFT)


# --------------------------------------------------------------------------- particles near the lens


_SPRITES: dict[int, F32] = {}


def _bokeh(radius: int) -> F32:
    """A defocused disc (soft edge, slightly brighter rim), peak 1."""
    spr = _SPRITES.get(radius)
    if spr is None:
        yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1].astype(np.float32)
        d = np.sqrt(xx * xx + yy * yy) / max(1, radius)
        edge = max(0.08, 1.5 / max(1, radius))
        spr = (1 - _smoothstep(1 - edge, 1.0, d)) * (0.8 + 0.2 * d * d)
        _SPRITES[radius] = spr = spr.astype(np.float32)
    return spr


def _add_sprite(img: U8, u: float, v: float, radius: int, level: float) -> None:
    h, w = img.shape[:2]
    x0, y0 = round(u) - radius, round(v) - radius
    x1, y1 = x0 + 2 * radius + 1, y0 + 2 * radius + 1
    cx0, cy0, cx1, cy1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    if cx0 >= cx1 or cy0 >= cy1:
        return
    spr = _bokeh(radius)[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0] * np.float32(level)
    region = img[cy0:cy1, cx0:cx1]
    if region.ndim == 3:
        spr = spr[..., None]
    img[cy0:cy1, cx0:cx1] = np.clip(region + spr, 0, 255).astype(np.uint8)


class _Particles:
    """Snow, rain or insects in camera space (metres), projected; near ones defocused."""

    APERTURE = 0.004  # lens entrance pupil (m): sets how big near things blur
    FOCUS = 8.0

    def __init__(
        self, kind: str, rng: np.random.Generator, cam: _Camera, fps: int, density: float = 1.0
    ) -> None:
        self.kind, self.rng, self.cam, self.dt = kind, rng, cam, 1.0 / fps
        scale = math.sqrt(cam.w * cam.h / (1280 * 720))
        if kind == "snow":
            n_far, n_near, self.size = int(900 * density * scale), int(28 * density), 0.004
        elif kind == "rain":
            n_far, n_near, self.size = int(700 * density * scale), int(6 * density), 0.0015
        else:
            n_far, n_near, self.size = int(4 * density), int(6 * density), 0.009
        far = self._spawn(n_far, 0.8, 12.0, anywhere=True)
        near = self._spawn(n_near, 0.03, 0.6, anywhere=True)
        self.p = np.concatenate([far, near])
        self.near = np.arange(len(self.p)) >= n_far
        self.v = np.zeros_like(self.p)
        self.wind = float(rng.uniform(-0.8, 0.8))
        self.ph = rng.uniform(0, 2 * np.pi, len(self.p))
        st, ct = cam.st, cam.ct
        self.down = np.array([0.0, ct, st])  # world down in camera coordinates

    def _spawn(self, n: int, z0: float, z1: float, anywhere: bool) -> F64:
        cam, rng = self.cam, self.rng
        if self.kind == "insects":
            z = rng.uniform(z0, min(z1, 4.0), n)
            return np.stack([rng.uniform(-0.3, 0.3, n) * z, rng.uniform(-0.45, 0.1, n) * z, z], 1)
        z = (rng.uniform(z0**2, z1**2, n)) ** (1 / 2) if z1 > 2 else rng.uniform(z0, z1, n)
        hx, hy = (cam.w / 2) / cam.f * 1.15, (cam.h / 2) / cam.f * 1.15
        x = rng.uniform(-hx, hx, n) * z
        y = (rng.uniform(-hy, hy, n) if anywhere else np.full(n, -hy)) * z
        return np.stack([x, y, z], 1)

    def step(self, t: float) -> None:
        rng, n = self.rng, len(self.p)
        if self.kind == "insects":
            acc = rng.normal(0, 14.0, (n, 3))
            home = np.array([0.0, -0.08, 0.3])
            acc += (home - self.p) * 6.0
            self.v = np.clip(self.v + acc * self.dt, -2.5, 2.5)
            self.p += self.v * self.dt
            out = (self.p[:, 2] < 0.03) | (self.p[:, 2] > 4.5)
            if out.any():
                self.p[out] = self._spawn(int(out.sum()), 0.05, 0.9, True)
                self.v[out] = 0
            return
        fall = 1.1 if self.kind == "snow" else 7.5
        wob = 0.45 if self.kind == "snow" else 0.0
        self.v = np.broadcast_to(self.down * fall + np.array([self.wind, 0, 0]), (n, 3)).copy()
        self.v[:, 0] += wob * np.sin(1.7 * t + self.ph)
        self.v[:, 2] += wob * 0.5 * np.cos(1.3 * t + self.ph)
        self.p += self.v * self.dt
        cam = self.cam
        z = self.p[:, 2]
        u = self.p[:, 0] / np.maximum(z, 1e-3) * cam.f
        v = self.p[:, 1] / np.maximum(z, 1e-3) * cam.f
        out = (v > cam.h * 0.6) | (np.abs(u) > cam.w * 0.62) | (z < 0.03) | (z > 17)
        out |= self.near & (z > 1.0)
        if out.any():
            k = int(out.sum())
            near = self.near[out]
            # near ones cross the picture in a frame or two: they come back anywhere in view
            fresh = np.where(
                near[:, None], self._spawn(k, 0.03, 0.6, True), self._spawn(k, 0.8, 12.0, False)
            )
            self.p[out] = fresh

    def draw(self, img: U8, ir: bool, lamp_gain: float) -> None:
        cam = self.cam
        z = self.p[:, 2]
        u = cam.cx + cam.f * self.p[:, 0] / z
        v = cam.cy + cam.f * self.p[:, 1] / z
        r_img = cam.f * self.size / z
        blur = self.APERTURE * cam.f * np.abs(1 / z - 1 / self.FOCUS) / 2
        rad = np.sqrt(r_img**2 + blur**2)
        conc = (r_img / rad) ** 2  # how concentrated the light is
        lit = np.clip((1.5 / z) ** 2, 0.03, 12.0) * lamp_gain if ir else np.ones_like(z)
        if self.kind == "insects":
            lit = lit * (0.55 + 0.45 * np.abs(np.sin(37 * np.arange(len(z)) + 40 * self.ph[0])))
        if self.kind == "insects":
            near = np.flatnonzero(rad >= 2.5)
        else:
            # streaks (motion blur over a 1/30-s exposure), added onto the picture
            q = self.p - self.v * min(self.dt, 1 / 30)
            u2 = cam.cx + cam.f * q[:, 0] / q[:, 2]
            v2 = cam.cy + cam.f * q[:, 1] / q[:, 2]
            layer = np.zeros(img.shape[:2], np.uint8)
            small = ~self.near & (rad < 2.5)
            if ir:
                lvl = np.minimum(255, 45 + 150 * lit * np.minimum(1, conc))
            else:
                lvl = np.full_like(z, 130.0 if self.kind == "snow" else 38.0)
            th = np.maximum(1, np.round(rad)).astype(int)
            for i in np.flatnonzero(small):
                cv2.line(
                    layer,
                    (int(u[i] * 4), int(v[i] * 4)),
                    (int(u2[i] * 4), int(v2[i] * 4)),
                    float(lvl[i]),
                    int(th[i]),
                    cv2.LINE_AA,
                    2,
                )
            if img.ndim == 3:
                layer = cv2.cvtColor(layer, cv2.COLOR_GRAY2BGR)
            cv2.add(img, layer, dst=img)
            near = np.flatnonzero(~small)
            if self.kind == "rain":  # big drops close to the lens flash by
                near = near[self.rng.random(len(near)) < 0.5]
        for i in near:
            rr = int(min(cam.w * 0.12, rad[i]))
            if rr < 1:
                continue
            base = 0.9 if self.kind == "snow" else 0.5 if self.kind == "rain" else 1.0
            lvl = 255 * min(1.0, base * float(lit[i] * max(conc[i], 0.02)) * (1.6 if ir else 0.55))
            _add_sprite(img, float(u[i]), float(v[i]), rr, lvl)


# --------------------------------------------------------------------------- overlays


def _clock(img: U8, when: dt.datetime, name: str) -> None:
    """A burned-in date/time (top right) and camera name (bottom left), white with a dark edge."""
    h, w = img.shape[:2]
    scale = h / 900
    th = max(1, round(2 * scale))
    white = (235, 235, 235) if img.ndim == 3 else 235
    black = (20, 20, 20) if img.ndim == 3 else 20
    stamp = when.strftime("%d/%m/%Y %a %H:%M:%S")
    (tw, tht), _ = cv2.getTextSize(stamp, cv2.FONT_HERSHEY_DUPLEX, scale, th)
    for text, org in (
        (stamp, (w - tw - round(20 * scale), round(20 * scale) + tht)),
        (name, (round(20 * scale), h - round(22 * scale))),
    ):
        cv2.putText(img, text, org, cv2.FONT_HERSHEY_DUPLEX, scale, black, th + 2, cv2.LINE_AA)
        cv2.putText(img, text, org, cv2.FONT_HERSHEY_DUPLEX, scale, white, th, cv2.LINE_AA)


# --------------------------------------------------------------------------- planning the actors


def _plan_actors(
    rng: np.random.Generator, tokens: set[str], cam: _Camera, world: _World, seconds: float
) -> list[_Actor]:
    near = max(cam.near_y(), 1.5)
    far = world.walk_far
    acts: list[_Actor] = []
    wanted = [tok for tok in OBJECT_TOKENS if tok in tokens]
    span = max(1.0, seconds - WARMUP_S - 18)
    starts = {
        tok: WARMUP_S + 0.3 + span * k / max(1, len(wanted)) + float(rng.uniform(0, 2))
        for k, tok in enumerate(wanted)
    }

    def off(y: float, side: float) -> float:
        return side * (cam.edge_x(y) * 1.12 + 2.0)

    def inside(y: float, share: float) -> float:
        return float(rng.uniform(-share, share)) * cam.edge_x(y)

    def person(t0: float, way: list[tuple[float, float]], **kw: Any) -> _Actor:
        return _Actor(
            "person",
            t0,
            way,
            kw.pop("speed", float(rng.uniform(1.1, 1.6))),
            size=kw.pop("size", float(rng.uniform(1.55, 1.92))),
            colours=_person_colours(rng),
            phase0=float(rng.uniform(0, 6.3)),
            **kw,
        )

    side = float(rng.choice([-1.0, 1.0]))
    if "walk_headon" in tokens:
        t0 = starts["walk_headon"]
        yf = min(far, near + 16)
        x1 = inside(yf, 0.25)
        acts.append(person(t0, [(off(yf, side), yf), (x1, yf), (x1 + inside(3, 0.2), 0.0)]))
        x2 = inside(near, 0.3)
        acts.append(
            person(
                t0 + 9,
                [
                    (x2, 0.0),
                    (x2 * 0.5 + inside(yf, 0.15), yf * 0.9),
                    (off(yf * 0.9, -side), yf * 0.9),
                ],
            )
        )
    if "walk_diagonal" in tokens:
        y0, y1 = near + 1.0, far * 0.85
        way = [(off(y0, side), y0), (off(y1, -side), y1)]
        acts.append(person(starts["walk_diagonal"], way if rng.random() < 0.5 else way[::-1]))
    if "stop_go" in tokens:
        ya, yb, yc = far * 0.7, (near + far) / 2, near + 2.5
        way = [
            (off(ya, -side), ya),
            (inside(ya, 0.3), ya),
            (inside(yb, 0.4), yb),
            (inside(yc, 0.3), yc),
            (off(yc, side), yc),
        ]
        acts.append(
            person(
                starts["stop_go"],
                way,
                waits={
                    1: float(rng.uniform(3, 6)),
                    2: float(rng.uniform(5, 8)),
                    3: float(rng.uniform(2, 4)),
                },
            )
        )
    if "stand_still" in tokens:
        ym = float(rng.uniform(near + 3, min(far, near + 9)))
        xm = inside(ym, 0.35)
        acts.append(
            person(
                starts["stand_still"],
                [(off(ym, side), ym), (xm, ym), (xm, 0.0)],
                waits={1: float(rng.uniform(24, 30))},
            )
        )
    if "group" in tokens:
        t0 = starts["group"]
        y0, y1 = near + 0.5, far * 0.9
        x0, x1 = inside(y0, 0.2), off(y1, side)
        for k in range(int(rng.integers(2, 4))):
            dx = (k - 1) * 0.65 + float(rng.uniform(-0.1, 0.1))
            acts.append(
                person(
                    t0 + 0.4 * k,
                    [
                        (x0 + dx - 1.0, -0.5 - 0.4 * k),
                        (x0 + dx, y0 + 1.0 - 0.5 * k),
                        (x1, y1 + dx * 0.5),
                    ],
                    speed=1.3 + float(rng.uniform(-0.05, 0.05)),
                )
            )
    if "cyclist" in tokens:
        y = world.lanes[0] - 0.9 if world.lanes else float(rng.uniform(near + 3, far * 0.7))
        c = _person_colours(rng)
        c["bike"] = (0.1, 0.1, 0.7) if rng.random() < 0.5 else (0.6, 0.6, 0.1)
        acts.append(
            _Actor(
                "cyclist",
                starts["cyclist"],
                [(off(y, side), y), (off(y * 1.05, -side), y * 1.05)],
                float(rng.uniform(4.5, 6.5)),
                colours=c,
            )
        )
    if "dog" in tokens:
        pts = [(off(near + 3, -side), near + 3)]
        pts += [(inside(yy, 0.6), yy) for yy in rng.uniform(near + 1.0, far * 0.6, 5)]
        pts.append((off(near + 2, side), near + 2))
        coat = [(0.15, 0.3, 0.5), (0.08, 0.08, 0.08), (0.7, 0.75, 0.8), (0.2, 0.45, 0.7)]
        acts.append(
            _Actor(
                "dog",
                starts["dog"],
                [(float(a), float(b)) for a, b in pts],
                float(rng.uniform(1.8, 3.2)),
                waits={2: float(rng.uniform(1, 3)), 4: float(rng.uniform(1, 2))},
                size=float(rng.uniform(0.45, 0.7)),
                colours={"coat": coat[int(rng.integers(len(coat)))]},
            )
        )
    cars = [("car_near", 0, 30, 50, 2), ("car_far", 2, 60, 90, 3)]
    for tok, lane0, v0, v1, count in cars:
        if tok not in tokens:
            continue
        if not world.lanes:
            raise ValueError(f"{tok} needs the street scene")
        for k in range(count):
            lane = lane0 + (k % 2)
            y = world.lanes[lane]
            d = 1.0 if lane % 2 == 0 else -1.0
            t0 = starts[tok] + k * float(rng.uniform(6, 10))
            paint = [
                (0.7, 0.7, 0.72),
                (0.15, 0.15, 0.6),
                (0.1, 0.1, 0.1),
                (0.55, 0.35, 0.15),
                (0.85, 0.87, 0.88),
            ][int(rng.integers(5))]
            acts.append(
                _Actor(
                    "car",
                    t0,
                    [(off(y, -d) - 4, y), (off(y, d) + 4, y)],
                    float(rng.uniform(v0, v1)) / 3.6,
                    size=float(rng.uniform(4.0, 4.8)),
                    colours={"body": paint},
                )
            )
    return acts


# --------------------------------------------------------------------------- lighting


@dataclass(slots=True)
class _Light:
    mode: str  # day, ir, magenta
    amb: tuple[float, float, float]
    sun: tuple[float, float, float]
    gate: float  # share of the sun getting through (sun bursts)
    pool: tuple[float, float] | None = None  # headlight pool: (x on the wall, strength)


class _Sky:
    """The lighting schedule of one clip."""

    def __init__(self, rng: np.random.Generator, tokens: set[str], seconds: float) -> None:
        self.tokens, self.seconds = tokens, seconds
        self.bursts: list[tuple[float, float, float]] = []  # (time, level, ramp seconds)
        if "clouds" in tokens:
            t, level = 0.0, 1.0
            while t < seconds:
                t += float(rng.uniform(5, 12))
                level = float(rng.uniform(0.2, 0.45)) if level > 0.6 else 1.0
                self.bursts.append((t, level, float(rng.uniform(0.15, 0.7))))
        self.switches: list[float] = []
        if "ir_switch" in tokens:
            self.switches.append(seconds * float(rng.uniform(0.38, 0.48)))
            if not tokens & set(OBJECT_TOKENS):
                self.switches.append(seconds * float(rng.uniform(0.72, 0.8)))
        self.sweeps: list[tuple[float, float, float]] = []  # (start, duration, direction)
        if "headlights" in tokens:
            t = WARMUP_S + float(rng.uniform(1, 4))
            while t < seconds - 4:
                self.sweeps.append((t, float(rng.uniform(2.2, 4.0)), float(rng.choice([-1, 1]))))
                t += float(rng.uniform(7, 14))

    def gate(self, t: float) -> float:
        level = 1.0
        for t0, new, ramp in self.bursts:
            if t < t0:
                break
            a = min(1.0, (t - t0) / ramp)
            level = level + (new - level) * a
        return level

    def at(self, t: float, fps: int) -> _Light:
        tok = self.tokens
        amb, sun = (0.50, 0.46, 0.42), (0.50, 0.58, 0.64)
        if "sunrise" in tok:
            k = 0.1 + 0.9 * float(_smoothstep(0, 1, np.array(t / self.seconds)))
            warm = 1 - k
            amb = (0.5 * k, 0.46 * k, 0.42 * k * (1 + 0.3 * warm))
            sun = (0.5 * k * (1 - 0.5 * warm), 0.58 * k, 0.64 * k * (1 + 0.6 * warm))
        if "ir_night" in tok or "headlights" in tok:
            mode = "ir"
        elif self.switches:
            n = sum(1 for s in self.switches if t >= s)
            mode = "ir" if n % 2 else "day"
            if any(0 <= t - s < 2.5 / fps for s in self.switches):
                mode = "magenta"
            amb = (0.12, 0.11, 0.10)
            sun = (0.0, 0.0, 0.0)
        else:
            mode = "day"
        pool = None
        for t0, d, direction in self.sweeps:
            if t0 <= t <= t0 + d:
                s = (t - t0) / d
                pool = (direction * (-14 + 28 * s), math.sin(math.pi * s) ** 0.3)
        return _Light(mode, amb, sun, self.gate(t), pool)


# --------------------------------------------------------------------------- clip specs


@dataclass(frozen=True, slots=True)
class HeldoutClip:
    """One held-out clip: a kind (tokens joined by "+"), a scene and a camera."""

    name: str
    kind: str
    scene: str
    width: int
    height: int
    fps: int
    seconds: float
    seed: int
    mount: float = 4.0  # camera height (m)
    tilt: float = 22.0  # degrees down
    hfov: float = 85.0  # horizontal field of view (degrees)
    k1: float = 0.0  # barrel distortion

    @property
    def path(self) -> Path:
        return OUT / f"{self.name}.mp4"

    @property
    def tokens(self) -> set[str]:
        return set(self.kind.split("+"))

    @property
    def positive(self) -> bool:
        return bool(self.tokens & set(OBJECT_TOKENS))


def _open_writer(
    path: Path, spec: HeldoutClip, lowrate: bool
) -> tuple[av.container.OutputContainer, Any]:
    """This generator's bitrates (3 Mbit/s at 1080p15) and GOPs (3 s; starved: 1 s)."""
    px = spec.width * spec.height * spec.fps / (1920 * 1080 * 15)
    kbps = max(120, int(3000 * px**0.8 * (0.1 if lowrate else 1.0)))
    gop = spec.fps * (1 if lowrate else 3)
    return open_encoder(
        path, spec.width, spec.height, spec.fps, kbps, gop, kbps // (2 if lowrate else 1)
    )


# --------------------------------------------------------------------------- rendering


class _Renderer:
    """Everything static about one clip, and the per-frame rendering."""

    def __init__(self, spec: HeldoutClip) -> None:
        tokens = spec.tokens
        unknown = tokens - set(OBJECT_TOKENS) - set(NUISANCE_TOKENS)
        if unknown or spec.scene not in SCENES:
            raise ValueError(f"unknown kind/scene: {sorted(unknown)} {spec.scene}")
        if spec.width % 2 or spec.height % 2:
            raise ValueError("width and height must be even (yuv420p)")
        self.spec, self.tokens = spec, tokens
        w, h = spec.width, spec.height
        rng = np.random.default_rng([spec.seed, 2718])
        self.cam = cam = _Camera(w, h, spec.mount, spec.tilt, spec.hfov, spec.k1)
        self.world = world = _plan_world(rng, spec.scene)
        ss = 2.0 if w * h <= 1280 * 720 else 1.5
        hi = _surfaces(cam, world, ss)
        col, ir = _albedo(world, hi, spec.seed)
        del hi
        self.albedo = cv2.resize(
            np.clip(col * 255, 0, 255).astype(np.uint8), (w, h), interpolation=cv2.INTER_AREA
        )
        self.albedo_ir = cv2.resize(
            np.clip(ir * 255, 0, 255).astype(np.uint8), (w, h), interpolation=cv2.INTER_AREA
        )
        del col, ir
        m = _surfaces(cam, world, 1.0)
        self.maps = m
        surf = m["surface"]
        self.sunfac = np.where(surf == GROUND, 1.0, np.where(surf == WALL, 0.6, 0.0)).astype(
            np.float32
        )
        self.skyterm = (surf == SKY).astype(np.float32)
        az, el = (
            float(rng.uniform(-2.4, 2.4)),
            math.radians(
                float(rng.uniform(10, 16)) if "sunrise" in tokens else float(rng.uniform(30, 50))
            ),
        )
        self.sun_dir = np.array(
            [-math.cos(el) * math.sin(az), -math.cos(el) * math.cos(az), -math.sin(el)]
        )
        # cloud shadows: a world-space texture (0.5 m texels) sampled along the sun's rays
        self.clouds = None
        if "clouds" in tokens:
            n = 1024
            gx, gy = np.meshgrid(np.arange(n, dtype=np.float32), np.arange(n, dtype=np.float32))
            scale = float(rng.uniform(50, 80))  # texels per noise cell (25-40 m)
            noise = _fbm(gx / scale, gy / scale, spec.seed + 99, 4)
            th = float(np.quantile(noise, float(rng.uniform(0.4, 0.55))))
            self.clouds = (0.12 + 0.88 * _smoothstep(th - 0.02, th + 0.02, noise)).astype(
                np.float32
            )
            hx = m["x"] - m["z"] * self.sun_dir[0] / self.sun_dir[2]
            hy = m["y"] - m["z"] * self.sun_dir[1] / self.sun_dir[2]
            half = (w // 2, h // 2)
            self.cmx = cv2.resize((hx / 0.5).astype(np.float32), half, interpolation=cv2.INTER_AREA)
            self.cmy = cv2.resize((hy / 0.5).astype(np.float32), half, interpolation=cv2.INTER_AREA)
            ang = float(rng.uniform(0, 2 * np.pi))
            speed = float(rng.uniform(5, 9))
            self.wind = (speed * math.cos(ang) / 0.5, speed * math.sin(ang) / 0.5)
        # the IR lamp: 1/r^2 with incidence, and its beam pattern around the picture centre
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        rr = np.hypot((xs - cam.cx) / cam.rnorm, (ys - cam.cy * 0.85) / cam.rnorm)
        self.beam = np.exp(-((rr / 0.95) ** 2)).astype(np.float32)
        self.lamp_r = 6.5  # range (m) at which the lamp's light has fallen to half
        lamp = np.sqrt(np.clip(m["cos"], 0.02, 1)) / (1 + (m["range"] / self.lamp_r) ** 2)
        self.lamp = (lamp * self.beam + 0.02).astype(np.float32)
        # foliage: trees behind the fence/wall, and a foreground shrub for "foliage"
        self.trees: list[_Foliage] = []
        back = world.walls[0][0]
        for _ in range(int(rng.integers(2, 5))):
            y = back + float(rng.uniform(1.5, 8))
            self.trees.append(
                _Foliage(
                    rng,
                    cam,
                    float(rng.uniform(-0.8, 0.8)) * cam.edge_x(y),
                    y,
                    float(rng.uniform(5, 9)),
                    float(rng.uniform(1.8, 3.2)),
                )
            )
        if "foliage" in tokens:
            yb = max(cam.near_y(), 1.5) + 1.5
            self.trees.append(
                _Foliage(
                    rng,
                    cam,
                    float(rng.choice([-1, 1])) * cam.edge_x(yb) * 0.95,
                    yb,
                    2.2,
                    1.1,
                    trunk=False,
                )
            )
        self.gusts = [
            (float(t), float(rng.uniform(2, 6)), float(rng.uniform(0.04, 0.09)))
            for t in np.sort(rng.uniform(1, spec.seconds, int(spec.seconds / 6)))
        ]
        self.actors = _plan_actors(rng, tokens, cam, world, spec.seconds) if spec.positive else []
        self.sky = _Sky(rng, tokens, spec.seconds)
        self.particles = [
            _Particles(k, rng, cam, spec.fps, 2.2 if k == "snow" else 1.0)
            for k in ("snow", "rain", "insects")
            if k in tokens
        ]
        ir_like = tokens & {"ir_night", "headlights", "ir_switch"}
        pad = 48
        bank = rng.standard_normal((h + pad, w + pad), dtype=np.float32)
        if ir_like:
            bank = cv2.GaussianBlur(bank, (0, 0), 0.9) * 2.2
        self.bank, self.pad = bank, pad
        self.noise_rng = np.random.default_rng([spec.seed, 31])
        self.clock0 = dt.datetime(2026, 3, 14, 6, 11) + dt.timedelta(
            seconds=int(rng.integers(0, 50))
        )
        self.cam_name = f"CAM-{int(rng.integers(1, 9)):02d} {spec.scene.upper()}"
        self.gain = 1.0
        self.painter_day, self.painter_ir = _Painter(cam, False), _Painter(cam, True)

    def _wind(self, t: float) -> float:
        amp = 0.004
        strong = "foliage" in self.tokens
        for t0, d, a in self.gusts:
            if t0 <= t <= t0 + d:
                amp += (a if strong else a * 0.15) * math.sin(math.pi * (t - t0) / d) ** 2
        return amp

    def _pool(self, x_c: float, strength: float) -> F32:
        """Headlight pool on the nearest wall and the ground in front of it (world metres)."""
        m = self.maps
        depth = self.world.walls[0][0]
        on_wall = (m["surface"] == WALL) & (m["wall"] == 0)
        dw = ((m["x"] - x_c) / 2.4) ** 2 + ((m["z"] - 1.0) / 1.2) ** 2
        dg = ((m["x"] - x_c * 0.8) / 2.8) ** 2 + ((m["y"] - (depth - 2.0)) / 2.6) ** 2
        pool = np.where(
            on_wall,
            1 - _smoothstep(0.35, 1.0, dw),
            np.where(m["surface"] == GROUND, 0.6 * (1 - _smoothstep(0.3, 1.0, dg)), 0),
        )
        return (pool * 1.3 * strength).astype(np.float32)

    def render(self, t: float) -> tuple[U8, list[tuple[_Actor, tuple[float, float, float, float]]]]:
        """The picture at time t (before lens particles, overlay and noise) and actor boxes."""
        sp, cam = self.spec, self.cam
        li = self.sky.at(t, sp.fps)
        ir = li.mode == "ir"
        img = (self.albedo_ir if ir else self.albedo).copy()
        amp = self._wind(t)
        for tree in self.trees:
            tree.apply(img, t, amp, ir)
        if ir:
            light = self.lamp.copy()
            if li.pool is not None:
                light += self._pool(*li.pool)
        elif self.clouds is not None:
            ox, oy = self.wind[0] * t, self.wind[1] * t
            c = cv2.remap(
                self.clouds,
                self.cmx + np.float32(ox),
                self.cmy + np.float32(oy),
                cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_WRAP,
            )
            c = cv2.resize(c, (sp.width, sp.height), interpolation=cv2.INTER_LINEAR)
            light = c * self.sunfac * np.float32(li.gate) + self.skyterm
        else:
            light = self.sunfac * np.float32(li.gate) + self.skyterm
        # actors, far to near; their light is the light where they stand
        states = [(a, a.state(t)) for a in self.actors]
        live = [(a, s) for a, s in states if s is not None]
        live.sort(key=lambda a_s: -math.hypot(a_s[1][0], a_s[1][1]))
        painter = self.painter_ir if ir else self.painter_day
        drawn: list[tuple[_Actor, list[_Prim], float]] = []
        for a, s in live:
            prims = _PRIMS[a.kind](a, s, t)
            (fu, fv), fz = (q[0] for q in cam.project(np.array([[s[0], s[1], 0.5]])))
            fu, fv = int(np.clip(fu, 0, sp.width - 1)), int(np.clip(fv, 0, sp.height - 1))
            if ir:
                rng_m = max(1.0, float(math.hypot(s[0], s[1], cam.mount - 1.0)))
                lval = float(self.beam[fv, fu]) / (1 + (rng_m / self.lamp_r) ** 2) + 0.02
                if li.pool is not None:
                    lval += float(self._pool(*li.pool)[fv, fu]) * 0.3
            else:
                lval = float(light[fv, fu]) if fz > 0 else 1.0
            drawn.append((a, prims, lval))
        if not ir and li.mode == "day":
            for _a, prims, _l in drawn:
                painter.shadow(prims, light, self.sun_dir)
        boxes = []
        for a, prims, lval in drawn:
            box = painter.prims(prims, img, light, lval, 4.0 if ir else 1.0)
            if box is not None:
                boxes.append((a, box))
        if ir:
            out = cv2.multiply(img, light, scale=self.gain, dtype=cv2.CV_8U)
        else:
            chans = [cv2.addWeighted(light, li.sun[c], light, 0.0, li.amb[c]) for c in range(3)]
            if li.mode == "magenta":
                chans = [ch * k + 0.35 for ch, k in zip(chans, (1.3, 0.6, 1.35), strict=True)]
            out = cv2.multiply(img, cv2.merge(chans), scale=self.gain, dtype=cv2.CV_8U)
        if cam.maps is not None:
            out = cv2.remap(out, cam.maps[0], cam.maps[1], cv2.INTER_LINEAR)
        return out, boxes

    def expose(self, out: U8, ir: bool) -> None:
        """Auto-exposure: move the gain towards a target mean with a lag, in 1/16-EV steps."""
        mean = max(1.0, float(out[::8, ::8].mean()))
        target = 100.0 if ir else 112.0
        want = self.gain * (target / mean) ** min(1.0, 1.0 / (0.9 * self.spec.fps))
        want = float(np.clip(want, 0.2, 10.0))
        self.gain = 2 ** (round(16 * math.log2(want)) / 16)

    def finish(self, out: U8, t: float, ir: bool) -> NDArray[np.uint8]:
        """Lens particles, overlay, colour conversion and sensor noise: yuv420p planes."""
        sp = self.spec
        for p in self.particles:
            p.step(t)
            p.draw(out, ir, min(2.0, self.gain))
        if "clock" in self.tokens:
            _clock(out, self.clock0 + dt.timedelta(seconds=t), self.cam_name)
        h, w = sp.height, sp.width
        if out.ndim == 2:
            planes = np.full((h * 3 // 2, w), 128, np.uint8)
            planes[:h] = cv2.convertScaleAbs(out, alpha=219 / 255, beta=16)
        else:
            vf = av.VideoFrame.from_ndarray(out, format="bgr24").reformat(format="yuv420p")
            planes = vf.to_ndarray()
        sigma = (4.5 if ir else 1.4) * math.sqrt(max(0.5, self.gain))
        ox, oy = self.noise_rng.integers(0, self.pad, 2)
        noise = self.bank[oy : oy + h, ox : ox + w] * np.float32(sigma)
        planes[:h] = cv2.add(planes[:h], noise, dtype=cv2.CV_8U)
        return planes


def _visible(cam: _Camera, box: tuple[float, float, float, float]) -> tuple[float, F64]:
    """Share of the box inside the output picture, and the box in output pixels."""
    x0, y0, x1, y1 = box
    xs, ys = np.linspace(x0, x1, 5), np.linspace(y0, y1, 5)
    ring = np.array(
        [(x, y0) for x in xs]
        + [(x, y1) for x in xs]
        + [(x0, y) for y in ys]
        + [(x1, y) for y in ys]
    )
    d = cam.distort(ring)
    bx0, by0 = d[:, 0].min(), d[:, 1].min()
    bx1, by1 = d[:, 0].max(), d[:, 1].max()
    area = max(1e-6, (bx1 - bx0) * (by1 - by0))
    ix = max(0.0, min(bx1, cam.w) - max(bx0, 0.0))
    iy = max(0.0, min(by1, cam.h) - max(by0, 0.0))
    return ix * iy / area, np.array([bx0, by0, bx1, by1])


def render_heldout(spec: HeldoutClip, path: Path | None = None) -> SceneTruth:
    """Render and encode one held-out clip (to spec.path unless given) and return its truth."""
    path = path or spec.path
    r = _Renderer(spec)
    cam = r.cam
    n_frames = round(spec.seconds * spec.fps)
    # settle the auto-exposure on the empty scene before the first frame
    for _ in range(3):
        first, _b = r.render(0.0)
        r.gain *= (100.0 if r.sky.at(0, spec.fps).mode == "ir" else 112.0) / max(
            1.0, float(first[::8, ::8].mean())
        )
    log = TruthLog(spec.width, spec.height)
    index = {id(a): k for k, a in enumerate(r.actors)}
    path.parent.mkdir(parents=True, exist_ok=True)
    out, stream = _open_writer(path, spec, "lowrate" in spec.tokens)
    try:
        for i in range(n_frames):
            t = i / spec.fps
            img, drawn = r.render(t)
            ir = img.ndim == 2
            r.expose(img, ir)
            any_visible = False
            for a, box in drawn:
                vis, ob = _visible(cam, box)
                x0, y0, x1, y1 = (float(v) for v in np.clip(ob, 0, [cam.w, cam.h, cam.w, cam.h]))
                height = float(ob[3] - ob[1]) / cam.h
                any_visible |= log.seen(index[id(a)], t, vis, (x0, y0, x1, y1), height)
            log.present.append(any_visible)
            encode_planes(out, stream, r.finish(img, t, ir), i, spec.fps)
        finish_encoder(out, stream)
    finally:
        out.close()
    log.check_warmup(spec.name)
    return log.truth(spec.kind, path, spec.fps, spec.seconds, spec.seed)


def ensure_heldout(spec: HeldoutClip) -> SceneTruth:
    """Render the clip unless it is cached (clip and truth next to it)."""
    return rendered(spec.path, lambda: render_heldout(spec), f"{spec.name} ({spec.kind})")


# --------------------------------------------------------------------------- the held-out set


def _clip(  # noqa: PLR0917
    name: str,
    kind: str,
    scene: str,
    size: tuple[int, int],
    fps: int,
    seconds: float,
    seed: int,
    cam: tuple[float, float, float, float],
) -> HeldoutClip:
    mount, tilt, hfov, k1 = cam
    return HeldoutClip(
        name, kind, scene, size[0], size[1], fps, seconds, seed, mount, tilt, hfov, k1
    )


HD, FHD = (1280, 720), (1920, 1080)
HELDOUT_SET: list[HeldoutClip] = [
    # positives: objects, most with nuisances
    _clip(
        "p01_headon_clouds", "walk_headon+clouds", "garden", HD, 15, 50, 4101, (3.2, 21, 82, 0.08)
    ),
    _clip(
        "p02_diagonal_stopgo_sunrise",
        "walk_diagonal+stop_go+sunrise",
        "yard",
        FHD,
        12,
        55,
        4102,
        (4.5, 26, 95, 0.12),
    ),
    _clip(
        "p03_stand_still_clock", "stand_still+clock", "garden", HD, 20, 60, 4103, (2.6, 16, 72, 0.0)
    ),
    _clip(
        "p04_group_dog_foliage",
        "group+dog+foliage",
        "garden",
        FHD,
        15,
        45,
        4104,
        (3.8, 24, 100, 0.18),
    ),
    _clip(
        "p05_street_cars_cyclist_clouds",
        "car_near+car_far+cyclist+clouds",
        "street",
        HD,
        25,
        40,
        4105,
        (6.0, 13, 88, 0.0),
    ),
    _clip(
        "p06_ir_heavy_snow_walkers",
        "ir_night+snow+walk_headon",
        "yard",
        FHD,
        10,
        50,
        4106,
        (3.0, 25, 105, 0.2),
    ),
    _clip(
        "p07_ir_rain_insects_walker",
        "ir_night+rain+insects+walk_diagonal",
        "garden",
        HD,
        15,
        40,
        4107,
        (3.4, 20, 90, 0.1),
    ),
    _clip(
        "p08_ir_switch_walkers",
        "ir_switch+walk_diagonal+stop_go",
        "yard",
        HD,
        10,
        50,
        4108,
        (3.5, 22, 85, 0.0),
    ),
    _clip(
        "p09_lowrate_clouds_group",
        "lowrate+clouds+group",
        "street",
        HD,
        25,
        35,
        4109,
        (5.0, 18, 80, 0.0),
    ),
    _clip(
        "p10_far_fast_cars_clock",
        "car_far+car_near+walk_diagonal+clock",
        "street",
        FHD,
        15,
        40,
        4110,
        (7.0, 10, 75, 0.0),
    ),
    # negatives: nuisances only
    _clip("n01_clouds_sun_bursts", "clouds", "garden", HD, 15, 60, 4201, (3.0, 18, 80, 0.1)),
    _clip("n02_clouds_foliage", "clouds+foliage", "yard", FHD, 12, 50, 4202, (4.0, 22, 95, 0.15)),
    _clip("n03_sunrise_clock", "sunrise+clock", "street", HD, 10, 60, 4203, (5.5, 14, 90, 0.0)),
    _clip("n04_ir_heavy_snow", "ir_night+snow", "yard", FHD, 15, 45, 4204, (3.0, 24, 105, 0.2)),
    _clip("n05_ir_insects", "ir_night+insects", "garden", HD, 15, 40, 4205, (3.2, 20, 90, 0.1)),
    _clip("n06_ir_rain", "ir_night+rain", "street", HD, 20, 35, 4206, (5.0, 16, 85, 0.0)),
    _clip("n07_headlights_wall", "headlights", "yard", FHD, 10, 50, 4207, (3.0, 18, 90, 0.0)),
    _clip(
        "n08_ir_switch_flapping", "ir_switch+clock", "garden", HD, 15, 40, 4208, (3.0, 20, 85, 0.0)
    ),
    _clip("n09_lowrate_foliage", "lowrate+foliage", "garden", HD, 25, 35, 4209, (2.8, 15, 75, 0.0)),
]


# --------------------------------------------------------------------------- real footage

_VTEST = "./usr/share/doc/opencv-doc/examples/data/vtest.avi"


def _fetch_vtest(dest: Path) -> None:
    """vtest.avi out of Debian's opencv-doc package (apt-get download, no root needed; as root,
    a machine that never read its package lists reads them first)."""
    with tempfile.TemporaryDirectory() as tmp:
        download = ["apt-get", "download", "opencv-doc"]
        if subprocess.run(download, cwd=tmp, check=False, capture_output=True).returncode:
            if os.geteuid() == 0:
                subprocess.run(["apt-get", "update", "-q"], check=True, capture_output=True)
            subprocess.run(download, cwd=tmp, check=True, capture_output=True)
        deb = next(Path(tmp).glob("opencv-doc_*.deb"))
        with subprocess.Popen(["dpkg", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE) as dpkg:
            subprocess.run(["tar", "-x", "-C", tmp, _VTEST], stdin=dpkg.stdout, check=True)
        shutil.move(str(Path(tmp) / _VTEST), dest)


def real_footage() -> list[tuple[Path, SceneTruth]]:
    """Real static-camera footage, converted to camera-like H.264 MP4 and labelled.

    vtest.avi (OpenCV's sample; 768x576, 10 fps, 79.5 s): a fixed camera above a campus path and
    lawn. Checked by eye (frames every 2.5 s): several people walk in view in every frame,
    from the first to the last, so it is one positive interval from ``WARMUP_S`` to the end
    (``present`` is true for every frame). It therefore measures recall and latency only (and
    a detector that learns its background while people are in view); it has no negative time.

    The package's other two videos are not used: tree.avi is 68 frames (4.5 s) of a tree seen
    through a window, ending with a hand in front of the lens, shorter than the detector's
    start-up learning; Megamind.avi is a film, shot with a moving camera.
    """
    FOOTAGE_CACHE.mkdir(parents=True, exist_ok=True)
    mp4 = FOOTAGE_CACHE / "vtest.mp4"
    truth = load_truth(mp4)
    if truth is None:
        avi = FOOTAGE_CACHE / "vtest.avi"
        if not avi.exists():
            _fetch_vtest(avi)
        n = 0
        with av.open(str(avi)) as src:
            vin = src.streams.video[0]
            fps = round(float(vin.average_rate or 10))
            out, stream = open_encoder(mp4, vin.width, vin.height, fps, 1200)
            with out:
                for frame in src.decode(vin):
                    vf = frame.reformat(format="yuv420p")
                    vf.pts, vf.time_base = n, Fraction(1, fps)
                    for pkt in stream.encode(vf):
                        out.mux(pkt)
                    n += 1
                finish_encoder(out, stream)
        truth = SceneTruth(
            kind="real_vtest",
            path=str(mp4),
            width=768,
            height=576,
            fps=fps,
            seconds=n / fps,
            seed=0,
            present=(True,) * n,
            intervals=(
                ObjectInterval(WARMUP_S, WARMUP_S, (n - 1) / fps, False, (0.0, 0.05, 1.0, 0.85)),
            ),
        )
        truth_path(mp4).write_text(truth.to_json())
    return [(mp4, truth)]


if __name__ == "__main__":
    for clip in HELDOUT_SET:
        ensure_heldout(clip)
    for path, tr in real_footage():
        print(f"  real footage {path} ({tr.seconds:.1f} s)")

"""Motion detection for pm_dvr: a cheap, robust detector and its per-camera worker thread.

No Home Assistant imports: plain numpy, OpenCV, PyAV and threading, so it can be tested and
benchmarked on its own (tests/core/test_motion.py, bench/motion.py).

The detector works on small gray frames (``analysis_size``: 180 px tall) at a few frames per
second. Per frame it:

1. explains changes of light before looking for objects: the frame's gain over a running-average
   background is estimated per 8x8 cell and taken as the median of its 5x5 cell neighbourhood
   (shadows, sun bursts, lamps and auto exposure change the light smoothly over many cells; an
   object smaller than half that window does not move the median); while the picture is noisy
   (night) it averages noise down with a 3x3 box;
2. marks pixels whose difference from the light-corrected background exceeds the largest of:
   the user's ``threshold`` (scaled down where contrast is lower: in dark scenes, and in shade
   that has fallen since the background was learned), a multiple of the slowly tracked noise
   level, a multiple of the pixel's own learned deviation (foliage, water, flickering
   overlays), and what the gain's uncertainty there can explain (at a shadow's edge the gain
   is only known to within its change from cell to cell);
3. recalibrates instead of firing when the frame changes as a whole (IR day/night switch,
   a moved camera), reporting ``recalibrating`` for a second;
4. keeps blobs that are big and dense enough, that cover new ground since the last analysed
   frame (a flipped clock digit, a fading compression ghost or a parked car do not), whose
   edges rise as steeply as an object in focus (light pools and shadows fade in; by day a blob
   soft as a whole is read again at its outline, and kept if that is steep and the blob hides
   the ground's texture inside, away from its edges: a near car of one colour; or kept if one
   of its parts would be kept as a blob of its own: a car joined to a shadow's edge; in the noisy
   night picture, whose noise and box filter blur a person's edges too, a soft blob is
   followed all the same, but its track counts one frame later and only once its blob was
   sharp on some frame) and that, in a
   noisy night picture, are not mostly brightened to the sensor's clip level (a clipped light
   shows nothing of what it lights: headlight pools, glare; by day a clipped blob is a bright
   object, a white car in the sun);
5. follows blobs with a small constant-velocity tracker and reports motion once a blob has been
   followed over two analysed frames (three or four while rain or snow make many blobs pop up;
   a new blob next to an object already reported is a piece of it, not one of those),
   at a plausible speed for its size (drops and flakes near the lens fall too fast); a faster
   blob that does not fall (a far car) needs one more frame on its predicted path. Each frame
   the track's blob votes on what it is: an object hides the ground, so where the ground has
   texture, a blob whose local contrast still matches the background's is light or shade on it;
   and a blob whose texture stays put while the blob moves is light or shade passing over the
   ground. A track that votes more often "light" than "object" reports nothing;
6. accumulates weak evidence for what one frame cannot show (a far-away person at night or in
   rain: a few gray levels above the noise): pixels above half the threshold whose
   neighbourhood changed three analysed frames in a row, in compact blobs followed over three
   frames along a slow path that has really moved and does not fall (noise, rain and snow are
   short-lived or fall), and none for a second after the exposure jumps (an IR switch settling
   changes the whole picture a little every frame);
7. in noisy pictures, also looks at half-size averages of the difference, where a big, faint
   person shows as one blob instead of fragments (again: not falling, voting like the others on
   what it is, and followed over one more frame while the noise makes blobs pop up there at
   random).

``analysis_frame`` scales a decoded frame straight from its Y plane by halving steps (OpenCV's
fast path), several times cheaper than converting and resizing the full picture.
"""

from __future__ import annotations

from collections.abc import Callable
import contextlib
from dataclasses import dataclass, field
import logging
import math
import os
import queue
import threading
import time
from typing import Literal, cast

import av
from av.video.stream import VideoStream
import cv2
import numpy as np
from numpy.typing import NDArray

_LOGGER = logging.getLogger(__name__)

# Motion analysis is the one CPU-heavy thing pm_dvr does (its decoder runs in the worker thread
# itself). On a small machine busy with it, Home Assistant's event loop must still get the CPU
# at once when it wakes, so the worker runs this much nicer (Linux keeps nice values per thread).
ANALYSIS_NICE = 10

ANALYSIS_HEIGHT = 180
"""Analysis frames are this tall (width keeps the aspect ratio): plenty for a person far away."""

DRAW_MAX_HEIGHT = 720
"""Frames handed to ``on_result`` for drawing are at most this tall."""

type Gray = NDArray[np.uint8]
type F32 = NDArray[np.float32]
type Box = tuple[float, float, float, float]

# Tuning constants (seconds are converted to per-frame rates using the real frame interval).
_BRIGHT = 110.0  # mean gray level at which ``threshold`` applies as is; darker scenes scale it
_MIN_DIM = 0.4  # ... but by no more than this: noise, not contrast, limits dark pictures
_SMOOTH = 3  # box filter size used while the picture is noisy
_NOISY, _CLEAN = 2.5, 0.8  # median absolute difference switching smoothing on / off
_NOISE_K = 4.0  # threshold >= this x the median absolute background difference
_DEV_K = 3.0  # threshold >= this x the pixel's learned mean absolute deviation
_DEV_INIT = 4.0  # a new pixel's deviation before it is learned: a little above clean noise
_DEV_RISE_S = 1.0  # the deviation learns a new nuisance quickly ...
_DEV_FALL_S = 30.0  # ... and forgets it slowly (a clock's minute digit flips once a minute)
_DEV_RISE_LEARN_S, _LEARN_S = 0.2, 3.0  # ... very quickly during the first seconds
_DEV_RISE_MOVING_S = 15.0  # pixels under confirmed motion learn slowly: people are not nuisance
_BG_S = 4.0  # background time constant for unchanged pixels
_BG_CHANGED_S = 60.0  # ... and for changed ones (a parked car slowly becomes background)
_STILL_S = 60.0  # the still background: the scene as it has been for the last minute
_STILL_K = 0.7  # x the threshold: a change must stand out from it too (less than the threshold:
# two masks' noisy borders would eat into each other's blobs)
_NOISE_S = 2.0  # time constant of the noise level estimate
_GLOBAL_K = 3.0  # the median difference jumping this much above the noise is a global change
_RECAL_FRACTION = 0.35  # this much of the frame changing at once is a global change
_RECAL_S = 1.0  # relearning after a global change: exposure and IR filters settle in a second
_JUMP = 0.1  # the frame's mean light changing by 10 % in one analysed frame: exposure jumped
_START_S = 2.0  # a new stream: also learn how much foliage and the like move
_PERSIST_FRAMES = 2  # a blob must be followed over this many analysed frames ...
_CLUTTER_1, _CLUTTER_2 = 0.3, 1.0  # ... one more when this many new blobs/frame pop up (rain)
_CLUTTER_RATE = 0.05  # clutter is averaged over ~20 analysed frames
_PIECE_REACH = 1.5  # x its size: a new blob this near a reported object may be a piece of it
_MAX_SPEED = 5.0  # blob sizes (square root of the box area) per second: a sprinting person
_GATE = 0.6  # x blob size: how far from the predicted position a tracked blob may be
_AREA_RATIO = 3.0  # a blob's area, and its outline's width/height, change less per frame
_COAST_FRAMES = 1  # a followed track survives this many frames without a blob
_MAX_GAP_S = 1.5  # tracks do not survive a longer gap between analysed frames
_MIN_MOVING_FRACTION = 0.05  # of a blob's pixels that must differ from the previous frame
_MAX_BLOBS = 64  # the most blobs and tracks kept: bounds the work per frame in a storm
_WEAK = 0.5  # x the threshold: weak evidence, counted only when it persists along a slow path
_WEAK_NOISE_K = 3.0  # ... and at least this x the noise level (the user threshold may be far lower)
_COARSE = 0.65  # x the averaged threshold: a 2x2 average of the (already smoothed) difference has
# about a third less noise than one pixel, so coarse evidence (noisy pictures, half size) needs less
_RUN_FRAMES = 3  # analysed frames in a row a weak pixel's neighbourhood must have changed
_RUN_CAP = 16  # the run count saturates (a uint8 that never overflows)
_WEAK_FRAMES = 3  # a weak blob must be followed over this many frames ...
_WEAK_FILL = 0.3  # a weak blob is compact (loose flakes or streaks drifting together are not)
_WEAK_SPEED = 1.8  # blob sizes per second: weak evidence only holds along a slow path
_FALL_TAN = 0.84  # tan(40 deg): steeper than this is up or down (falling: snow or rain)
_TRAVEL = 0.4  # ... and have moved this many times its size since it was first seen
_MIN_FILL = 0.12  # a blob must fill this much of its box (snow joined into a loose cluster doesn't)
_CROSS_S = 0.5  # nothing worth reporting crosses the whole frame in less than this
_OFFSET = 4.0  # gray levels added before taking ratios, so that black pixels do not blow them up
_CELL = 8  # the light is estimated per 8x8 cell, its median over 5x5 cells (40 px)
_NEAR_CELLS = np.ones((3, 3), np.uint8)  # a cell and its eight neighbours (a pixel and its eight)
_SOFT_PX = 4.0  # an in-focus object's edge rises within this many pixels; light and shade don't
_INSIDE = np.ones((2 * int(_SOFT_PX) + 1,) * 2, np.uint8)  # (what lies farther from an outline)
_VOTE_MARGIN = 0.3  # correlation margin by which a texture must clearly stay put to veto
_GLARE = 250  # gray level at which a picture is clipped: no detail left (full range, after scaling)
_GLARE_SHARE = 0.3  # of a blob's pixels brightened to the clip level: the blob is mostly a light
_SEE_NOISE_K = 1.5  # ... where the ground's detail stands this far above the noise
_SEE_THROUGH = 0.6  # correlation with the ground's texture above which a blob is light or shade
_HIDDEN = _SEE_THROUGH / 2  # ... and below half of which the ground is hidden: something in front
_TEX_PX = 5  # texture is the detail within this many pixels (a person's parts, a wall's bricks)
_STREAK = np.ones((1, 3), np.uint8)  # narrower than 3 px sideways: a falling streak, no object
_AREA_GRID = 256  # cells per side of the grid on which MotionResult.area is measured


@dataclass(frozen=True, slots=True)
class Zone:
    """A polygon in relative 0..1 frame coordinates.

    ``ignore`` masks motion inside it; when any ``only`` zone exists, only motion inside the
    ``only`` zones counts (ignore zones still apply on top).
    """

    points: tuple[tuple[float, float], ...]
    mode: Literal["ignore", "only"] = "ignore"

    def __post_init__(self) -> None:
        if len(self.points) < 3:
            raise ValueError("a zone needs at least 3 points")
        if any(not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0) for x, y in self.points):
            raise ValueError("zone points are relative coordinates in 0..1")
        if self.mode not in ("ignore", "only"):
            raise ValueError(f"unknown zone mode {self.mode!r}")


@dataclass(frozen=True, slots=True)
class MotionConfig:
    """User tuning of the detector.

    ``threshold`` (1-255, default 10) is the minimum brightness difference, in gray levels of the
    analysis frame, for a pixel to count as changed: lower is more sensitive. It applies as is
    to a normally lit picture; the detector scales it down in dark scenes and raises it by
    itself where and when the picture is noisy. ``min_area_percent`` (default 0.02) is the
    minimum size of a moving object in % of the frame area: a person 5 % of the frame height tall
    covers about 0.05 %. ``zones`` restrict where motion counts. ``analysis_fps`` is how many
    frames per second are analysed (the others are only decoded).
    """

    threshold: int = 10
    min_area_percent: float = 0.02
    zones: tuple[Zone, ...] = ()
    analysis_fps: float = 5.0

    def __post_init__(self) -> None:
        if not 1 <= self.threshold <= 255:
            raise ValueError("threshold must be within 1..255")
        if not 0.0 <= self.min_area_percent <= 100.0:
            raise ValueError("min_area_percent must be within 0..100")
        if not 0.0 < self.analysis_fps <= 30.0:
            raise ValueError("analysis_fps must be within (0, 30]")


@dataclass(frozen=True, slots=True)
class MotionResult:
    """The verdict for one analysed frame.

    ``boxes`` are relative (x, y, w, h) of the moving areas (``area``: the part of the frame they
    outline); ``score`` is the fraction of the watched frame area that differs from the
    background; ``recalibrating`` is true while the detector relearns the scene after a global
    change (motion is then never reported).
    """

    motion: bool
    boxes: tuple[Box, ...] = ()
    score: float = 0.0
    recalibrating: bool = False
    timestamp: float = 0.0

    @property
    def area(self) -> float:
        """The fraction of the frame inside the outlines (the union of ``boxes``, which may
        overlap), measured on a ``_AREA_GRID`` square grid: what ranks a motion event's frames.
        """
        if not self.boxes:
            return 0.0
        grid = np.zeros((_AREA_GRID, _AREA_GRID), np.bool_)
        for x, y, w, h in self.boxes:
            x0, y0 = round(x * _AREA_GRID), round(y * _AREA_GRID)
            grid[y0 : round((y + h) * _AREA_GRID), x0 : round((x + w) * _AREA_GRID)] = True
        return float(np.count_nonzero(grid)) / _AREA_GRID**2


def analysis_size(width: int, height: int) -> tuple[int, int]:
    """The (width, height) a frame of the given size should be scaled to for ``process``."""
    if height <= 0 or width <= 0:
        raise ValueError("frame size must be positive")
    h = min(ANALYSIS_HEIGHT, height)
    w = max(2, round(width * h / height / 2) * 2)
    return w, h - h % 2


_LIMITED_RANGE = frozenset(("yuv420p", "yuv422p", "yuv444p", "nv12", "nv21"))
_FULL_RANGE = frozenset(("yuvj420p", "yuvj422p", "yuvj444p", "gray"))
_EXPAND = np.clip(np.round((np.arange(256) - 16) * 255 / 219), 0, 255).astype(np.uint8)
"""Video luma 16..235 to gray 0..255, as swscale's conversion to gray does it."""


def analysis_frame(frame: av.VideoFrame) -> Gray:
    """A decoded frame as ``process`` wants it: gray, full range, at ``analysis_size``.

    8-bit YUV frames are scaled straight from a view of their Y plane (no conversion of the
    full-size picture), then brought to full range on the small picture.
    """
    name = frame.format.name
    if name not in _LIMITED_RANGE and name not in _FULL_RANGE:
        return to_analysis(cast(Gray, frame.to_ndarray(format="gray")))
    plane = frame.planes[0]
    rows = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)
    small = to_analysis(rows[: frame.height, : frame.width])
    return cast(Gray, cv2.LUT(small, _EXPAND)) if name in _LIMITED_RANGE else small


def to_analysis(gray: Gray) -> Gray:
    """Scale a full-size gray picture down to its ``analysis_size``, cheaply.

    Halving steps with area averaging (OpenCV's fast path for exact factors of two: 0.07 ms for
    720p against 0.4 ms for one area resize by four), then one bilinear step for the rest.
    """
    w, h = analysis_size(gray.shape[1], gray.shape[0])
    img = gray
    while img.shape[0] >= 2 * h and img.shape[1] >= 2 * w:
        half = (img.shape[1] // 2, img.shape[0] // 2)
        img = cast(Gray, cv2.resize(img, half, interpolation=cv2.INTER_AREA))
    if img.shape != (h, w):
        img = cast(Gray, cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR))
    return np.ascontiguousarray(img)


@dataclass(slots=True)
class _Blob:
    """A moving blob in analysis pixels."""

    x: int
    y: int
    w: int
    h: int
    area: int
    soft: bool = False  # its change fades in like light or shade (only kept at night)

    @property
    def core(self) -> int:
        """The area of the box before the join dilation grew it by 2 px on each side."""
        return max(1, self.w - 4) * max(1, self.h - 4)

    @property
    def cx(self) -> float:
        return self.x + self.w / 2

    @property
    def cy(self) -> float:
        return self.y + self.h / 2


@dataclass(slots=True)
class _Track:
    """A blob followed over consecutive analysed frames."""

    blob: _Blob
    vx: float
    vy: float
    age: int  # frames seen
    missed: int  # consecutive frames coasted without a blob
    confirmed: bool
    ox: float  # where the track was born
    oy: float
    fast: bool = False  # linked faster than a walker: needs one more frame on its path
    prev: _Blob | None = None  # the blob it was linked from on the last frame
    moves: int = 0  # frames on which its texture moved with it ...
    stays: int = 0  # ... and on which the texture stayed put (a shadow or light moving over it)
    softs: int = 0  # frames on which its blob was soft

    def falling(self) -> bool:
        """Whether the blob moves down, within 40 degrees of vertical: what snow and rain do."""
        return self.vy > 0 and abs(self.vx) < _FALL_TAN * self.vy

    def back(self) -> tuple[int, int] | None:
        """The whole-pixel step from the blob to where it was on the last frame (None: born
        now): where the texture vote reads last frame's patch."""
        p = self.prev
        if p is None:
            return None
        return round(p.cx - self.blob.cx), round(p.cy - self.blob.cy)

    def voted_light(self) -> bool:
        """Whether its blob voted "light or shade" more often than "object" (see ``_vote``)."""
        return self.stays > self.moves

    def scaled(self, k: int) -> tuple[_Blob, tuple[int, int] | None]:
        """The blob and its step back (``back``) in pixels ``k`` times finer (a coarse track's
        in analysis pixels)."""
        b, step = self.blob, self.back()
        if k == 1:
            return b, step
        fine = _Blob(k * b.x, k * b.y, k * b.w, k * b.h, k * k * b.area)
        return fine, None if step is None else (k * step[0], k * step[1])

    def near(self, b: _Blob) -> bool:
        """Whether blob ``b`` is within ``_PIECE_REACH`` of its sizes from where this track was
        predicted to be."""
        own = self.blob
        return (
            abs(b.cx - own.cx - self.vx) <= _PIECE_REACH * own.w
            and abs(b.cy - own.cy - self.vy) <= _PIECE_REACH * own.h
        )

    def travelled(self) -> float:
        """How far the blob has moved since the track was born (analysis pixels)."""
        return math.hypot(self.blob.cx - self.ox, self.blob.cy - self.oy)


class _BoxedMask:
    """A mask kept from frame to frame and written only inside a box: clearing the last box
    costs less than a fresh mask of the whole picture, which must come back from memory every
    frame (the decoder runs in between)."""

    __slots__ = ("_box", "_mask")

    def __init__(self) -> None:
        self._mask: Gray = np.zeros((1, 1), np.uint8)
        self._box: tuple[slice, slice] | None = None

    def cleared(self, shape: tuple[int, ...], box: tuple[slice, slice] | None) -> Gray:
        """The mask, all zero, for the caller to write inside ``box`` (valid until the next
        call)."""
        if self._mask.shape != shape:
            self._mask = np.zeros(shape, np.uint8)
        elif self._box is not None:
            self._mask[self._box] = 0
        self._box = box
        return self._mask


def _has_partner(tr: _Track, others: list[_Track]) -> bool:
    """Whether another of ``others`` moves beside the (moving) track at its velocity: within
    a blob's size of it, its velocity within the prediction gate."""
    b = tr.blob
    if math.hypot(tr.vx, tr.vy) <= 1.0:  # (still pieces side by side: a bush, not a car)
        return False
    for other in others:
        o = other.blob
        size = math.sqrt(max(b.core, o.core))
        apart = max(abs(o.cx - b.cx) - (b.w + o.w) / 2, abs(o.cy - b.cy) - (b.h + o.h) / 2)
        if (
            other is not tr
            and apart <= size
            and math.hypot(other.vx - tr.vx, other.vy - tr.vy) <= _GATE * size + 1.5
        ):
            return True
    return False


def _p90(values: F32) -> float:
    """The 90th percentile (the lower neighbour), a lot cheaper than np.percentile's."""
    k = (values.size - 1) * 9 // 10
    return float(np.partition(values, k, axis=None)[k])


def _median(values: F32) -> float:
    """The median (the lower middle one), a third of np.median's cost. Reorders ``values``."""
    k = (len(values) - 1) // 2
    values.partition(k)
    return float(values[k])


def _at_least[A: (F32, Gray)](img: A, floor: float, out: A | None = None) -> A:
    """``np.maximum(img, floor, out=out)`` at a third of its cost (NumPy's scalar path is not
    vectorised)."""
    return cast(A, cv2.max(img, floor, dst=out))  # type: ignore[call-overload]


def _at_most[A: (F32, Gray)](img: A, ceiling: float, out: A | None = None) -> A:
    """``np.minimum(img, ceiling, out=out)``, as ``_at_least``."""
    return cast(A, cv2.min(img, ceiling, dst=out))  # type: ignore[call-overload]


def _mean(values: F32) -> np.float32:
    """The mean of a float32 vector, as ``values.mean()`` works it out (a float32 sum over the
    count) without its Python-level overhead, which dominates for a blob's few pixels."""
    return cast(np.float32, values.sum() / values.size)


def _std(values: F32) -> float:
    """The standard deviation of a float32 vector, as ``values.std()`` works it out."""
    dev = values - _mean(values)
    dev *= dev
    return float(np.sqrt(dev.sum() / values.size))


def _ncc(a: F32, b: F32) -> float:
    """Normalised correlation of two equal patches (1: same pattern, whatever the gain)."""
    da, db = a - _mean(a), b - _mean(b)
    den = math.sqrt(float((da * da).sum()) * float((db * db).sum()))
    return float((da * db).sum()) / den if den > 1e-6 else 0.0


def _texture(f: F32) -> tuple[F32, F32]:
    """The picture's detail (what differs from its neighbourhood's mean) and its local
    contrast (detail over that mean). Light and shade scale a surface's detail but leave its
    contrast alone, so a light pool or a shadow moving over a wall keeps the wall's texture in
    place; an object carries its own along."""
    mean = cast(F32, cv2.blur(f, (_TEX_PX, _TEX_PX)))
    detail = f - mean
    return detail, cast(F32, cv2.divide(detail, mean + _OFFSET))


def _texture_in(f: F32, region: tuple[int, int, int, int]) -> tuple[F32, F32]:
    """``_texture`` worked out only inside ``region`` (x0, y0, x1, y1, which must reach
    ``_TEX_PX // 2`` beyond every pixel read, or the picture's border); undefined elsewhere.
    The votes read a few boxes: the whole picture's would cost ten times more."""
    x0, y0, x1, y1 = region
    detail, contrast = np.empty_like(f), np.empty_like(f)
    detail[y0:y1, x0:x1], contrast[y0:y1, x0:x1] = _texture(f[y0:y1, x0:x1])
    return detail, contrast


def _widened(box: tuple[int, int, int, int], shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """``box`` (x0, y0, x1, y1) widened by the texture's reach (what ``_texture_in`` needs
    around every pixel it reads), clipped to a picture of ``shape``."""
    reach = _TEX_PX // 2
    x0, y0, x1, y1 = box
    h, w = shape[:2]
    return max(0, x0 - reach), max(0, y0 - reach), min(w, x1 + reach), min(h, y1 + reach)


def _cell_means(img: F32) -> F32:
    """The mean of every ``_CELL`` x ``_CELL`` cell, the border's cells padded by repeating the
    picture's last row and column. (OpenCV averages exact factors five times faster; only the
    last, partial row of cells is padded, not a copy of the whole picture.)"""
    h, w = img.shape
    if pad_w := -w % _CELL:
        img = cast(F32, cv2.copyMakeBorder(img, 0, 0, 0, pad_w, cv2.BORDER_REPLICATE))
        w += pad_w
    whole = h - h % _CELL
    rows = whole // _CELL
    cells = np.empty((rows + (whole < h), w // _CELL), np.float32)
    if whole:
        cv2.resize(img[:whole], (w // _CELL, rows), dst=cells[:rows], interpolation=cv2.INTER_AREA)
    if whole < h:
        last = cv2.copyMakeBorder(img[whole:], 0, whole + _CELL - h, 0, 0, cv2.BORDER_REPLICATE)
        cv2.resize(last, (w // _CELL, 1), dst=cells[rows:], interpolation=cv2.INTER_AREA)
    return cells


def _cell_gains(f_cells: F32, bg_lit: F32) -> F32:
    """Per cell, the light's gain of a frame (its cell means ``f_cells``) over a background
    (``bg_lit``: plus ``_OFFSET``, as the frame's).

    Each cell's mean over the background's (a mean of per-pixel ratios is mostly the noise of
    dark pixels), then the median of each 5x5 cell neighbourhood: a change of light covers many
    cells smoothly; an object smaller than half the window does not move the median.
    """
    cells = cv2.divide(f_cells, _cell_means(bg_lit))
    return np.clip(cast(F32, cv2.medianBlur(cells, 5)), 0.25, 4.0)


def _full_size(cells: F32, shape: tuple[int, ...]) -> F32:
    """Cell values interpolated to every pixel of a picture of ``shape``."""
    h, w = shape
    full = (w - w % -_CELL, h - h % -_CELL)
    return cast(F32, cv2.resize(cells, full, interpolation=cv2.INTER_LINEAR))[:h, :w]


def _full_size_in(cells: F32, box: tuple[slice, slice]) -> F32:
    """``_full_size(cells, ...)[box]``, interpolating only the cells its pixels read (those
    under the box and one around it), not the whole picture."""
    rows, cols = box
    cy0, cx0 = max(0, rows.start // _CELL - 1), max(0, cols.start // _CELL - 1)
    cy1 = min(cells.shape[0], (rows.stop - 1) // _CELL + 2)
    cx1 = min(cells.shape[1], (cols.stop - 1) // _CELL + 2)
    size = ((cx1 - cx0) * _CELL, (cy1 - cy0) * _CELL)
    part = cv2.resize(cells[cy0:cy1, cx0:cx1], size, interpolation=cv2.INTER_LINEAR)
    y, x = rows.start - cy0 * _CELL, cols.start - cx0 * _CELL
    return cast(F32, part[y : y + rows.stop - rows.start, x : x + cols.stop - cols.start])


def _rate(dt: float, tau: float) -> float:
    """The per-frame update weight of an exponential average with time constant tau."""
    return 1.0 - math.exp(-dt / tau)


class MotionDetector:
    """Background-model motion detector; feed it small gray frames in time order.

    Not thread-safe: one thread calls ``process``; ``update_config`` may be called from another
    thread (the new config is picked up at the next frame).
    """

    def __init__(self, config: MotionConfig | None = None) -> None:
        self._config = config or MotionConfig()
        self._bg: NDArray[np.float32] | None = None
        self._still: NDArray[np.float32] = np.zeros((1, 1), np.float32)
        self._dev: NDArray[np.float32] = np.zeros((1, 1), np.float32)
        self._prev: NDArray[np.float32] = np.zeros((1, 1), np.float32)
        self._signed: F32 = np.zeros((1, 1), np.float32)  # this frame's light-corrected difference
        self._diff: F32 = np.zeros((1, 1), np.float32)  # ... and its magnitude
        self._now: F32 = self._diff  # this frame (smoothed while noisy)
        self._tracks: list[_Track] = []
        self._weak_tracks: list[_Track] = []
        self._coarse_tracks: list[_Track] = []
        self._prev_coarse: Gray = np.zeros((1, 1), np.uint8)
        self._run: Gray = np.zeros((1, 1), np.uint8)
        self._prev_weak: Gray = np.zeros((1, 1), np.uint8)
        self._near = np.ones((5, 5), np.uint8)
        self._moving, self._weak_moving = _BoxedMask(), _BoxedMask()  # new ground, per evidence
        self._clutter = 0.0  # new blobs per analysed frame (averaged) ...
        self._coarse_clutter = 0.0  # ... and on the half-size averages
        self._smooth = False
        self._noise = 0.0
        self._join = np.ones((5, 5), np.uint8)
        self._prev_fg: Gray = np.zeros((1, 1), np.uint8)
        self._last_ts = 0.0
        self._recal_until = 0.0
        self._settled_at = 0.0  # weak evidence counts again from here (see _JUMP)
        self._frames = 0
        self._mask_key: tuple[tuple[Zone, ...], tuple[int, int]] | None = None
        self._mask: Gray | None = None
        self._kernel = np.ones((3, 3), np.uint8)
        self._glare: Gray = np.zeros((1, 1), np.uint8)
        self._texture: tuple[F32, F32] = (self._diff, self._diff)  # this frame's detail, contrast
        self._bg_texture: tuple[F32, F32] = (self._diff, self._diff)  # ... the background's

    @property
    def config(self) -> MotionConfig:
        """The active configuration."""
        return self._config

    def update_config(self, config: MotionConfig) -> None:
        """Apply new tuning without losing the learned background."""
        self._config = config

    def reset(self) -> None:
        """Forget the scene; the next frame starts a recalibration."""
        self._bg = None

    def _zone_mask(self, shape: tuple[int, int]) -> Gray | None:
        """255 where motion counts, 0 elsewhere; None when the whole frame counts."""
        zones = self._config.zones
        if (zones, shape) == self._mask_key:
            return self._mask
        mask: Gray | None = None
        if zones:
            h, w = shape
            only = [z for z in zones if z.mode == "only"]
            mask = np.zeros(shape, np.uint8) if only else np.full(shape, 255, np.uint8)
            for value, group in ((255, only), (0, [z for z in zones if z.mode == "ignore"])):
                for z in group:
                    pts = np.array([[x * w, y * h] for x, y in z.points], np.float32)
                    cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], value)
        self._mask_key, self._mask = (zones, shape), mask
        return mask

    def _start(self, f: NDArray[np.float32], ts: float, seconds: float = _RECAL_S) -> MotionResult:
        """(Re)learn the scene from this frame on, without reporting motion for a while."""
        self._bg = f.copy()
        self._still = f.copy()
        self._dev = np.full(f.shape, _DEV_INIT, np.float32)
        self._prev = f
        self._tracks = []
        self._weak_tracks = []
        self._coarse_tracks = []
        self._prev_fg = np.zeros(f.shape, np.uint8)
        self._run = np.zeros(f.shape, np.uint8)
        self._prev_weak = np.zeros(f.shape, np.uint8)
        self._recal_until = ts + seconds
        self._frames = 0
        self._last_ts = ts
        return MotionResult(False, (), 1.0, True, ts)

    @staticmethod
    def _track(
        tracks: list[_Track],
        blobs: list[_Blob],
        dt: float,
        *,
        max_speed: float = _MAX_SPEED,
        fast_width: int = 0,
    ) -> tuple[list[_Track], int]:
        """Link blobs to last frame's tracks: the new tracks and how many of them were born.

        A link needs a plausible change of size and outline (an object does not flip from
        tall to wide within an analysed frame; a moth at the lamp does), a plausible speed
        (people move less than a few times their own size per second; rain and snow near the
        lens fall much faster) and, once the track has a velocity, a position close to the
        predicted one (sideways, less half its box's change of width). With ``fast_width`` (the
        frame width), faster links sideways are allowed too (a far car moves several lengths per
        analysed frame): such a track needs one more frame on its predicted path before it
        counts, and one found again after a frame hidden (behind a post, a shed) has been
        followed through that frame: two frames ahead is a tighter test than one link.

        A new blob near an object already reported is not counted as born: a car at night or
        a person in storm shade tears into pieces, and counted as clutter (as rain) they would
        hold back the next object.
        """
        pairs: list[tuple[float, int, int, bool]] = []
        for ti, tr in enumerate(tracks):
            px, py = tr.blob.cx + tr.vx, tr.blob.cy + tr.vy
            # (a blob cut by the frame's side is part of its object: coming into view, it may
            # grow by the ratio twice over)
            cut = fast_width and (tr.blob.x <= 0 or tr.blob.x + tr.blob.w >= fast_width)
            most = _AREA_RATIO ** (2 if cut else 1)
            for bi, b in enumerate(blobs):
                ratio = b.area / tr.blob.area
                if not 1 / _AREA_RATIO <= ratio <= most:
                    continue
                shape = (b.w * tr.blob.h) / (b.h * tr.blob.w)
                if not 1 / _AREA_RATIO <= shape <= _AREA_RATIO:
                    continue
                size = math.sqrt(max(tr.blob.core, b.core))
                sx, sy = b.cx - tr.blob.cx, b.cy - tr.blob.cy
                step = math.hypot(sx, sy)
                fast = step > max_speed * dt * size + 1.5
                if fast and (
                    not fast_width
                    or step > dt * fast_width / _CROSS_S
                    # up or down fast: in the air or on the lens (rain, snow, moths), or a
                    # shadow's edge along the picture's border; a far car crosses sideways
                    or abs(sx) < _FALL_TAN * abs(sy)
                ):
                    continue
                d = 0.0
                if tr.age > 1:
                    # (a box's centre also moves by half its growth: the end of a car coming
                    # into view or out from behind something, or parts of it joining; not
                    # allowed for up and down, where rain's streaks grow)
                    off_x = max(0.0, abs(b.cx - px) - abs(b.w - tr.blob.w) / 2)
                    d = math.hypot(off_x, b.cy - py) / (_GATE * size + 1.5)
                    if d > 1.0:
                        continue
                pairs.append((d + step / (size + 1.0) + 10 * fast, ti, bi, fast))
        pairs.sort()
        used_t: set[int] = set()
        used_b: set[int] = set()
        out: list[_Track] = []
        for _, ti, bi, fast in pairs:
            if ti in used_t or bi in used_b:
                continue
            used_t.add(ti)
            used_b.add(bi)
            tr, b = tracks[ti], blobs[bi]
            vx, vy = b.cx - tr.blob.cx, b.cy - tr.blob.cy
            if tr.age > 1:
                vx, vy = 0.5 * (vx + tr.vx), 0.5 * (vy + tr.vy)
            out.append(
                _Track(
                    b,
                    vx,
                    vy,
                    tr.age + 1 + (tr.missed if tr.fast and fast else 0),
                    0,
                    tr.confirmed,
                    tr.ox,
                    tr.oy,
                    tr.fast or fast,
                    tr.blob,
                    tr.moves,
                    tr.stays,
                    tr.softs + b.soft,
                )
            )
        births = 0
        for bi, b in enumerate(blobs):
            if bi not in used_b:
                births += not any(tr.confirmed and tr.near(b) for tr in tracks)
                out.append(_Track(b, 0.0, 0.0, 1, 0, False, b.cx, b.cy, softs=int(b.soft)))
        for ti, tr in enumerate(tracks):
            if ti not in used_t and tr.missed < _COAST_FRAMES and tr.age > 1:
                b = tr.blob
                ahead = _Blob(round(b.x + tr.vx), round(b.y + tr.vy), b.w, b.h, b.area)
                out.append(
                    _Track(
                        ahead,
                        tr.vx,
                        tr.vy,
                        tr.age,
                        tr.missed + 1,
                        tr.confirmed,
                        tr.ox,
                        tr.oy,
                        tr.fast,
                        None,
                        tr.moves,
                        tr.stays,
                        tr.softs,
                    )
                )
        return out[:_MAX_BLOBS], births

    def _glared(self, rect: tuple[int, int, int, int], area: int) -> bool:
        """Whether much of the blob (its box and area at analysis size) is a light clipped at
        the sensor's ceiling."""
        x, y, w, h = rect
        return cv2.countNonZero(self._glare[y : y + h, x : x + w]) >= _GLARE_SHARE * area

    def _sharp_part(
        self,
        rect: tuple[int, int, int, int],
        masks: tuple[Gray, Gray],
        min_px: float,
        min_fill: float,
    ) -> bool:
        """Whether a blob soft as a whole has a part that would be kept as a blob of its own,
        edges and all (``masks``: fg and moving). The join dilation merges a car or a person
        with the fragments of a shadow's edge next to it, whose soft slopes then outvote the
        object's steep ones."""
        x, y, w, h = rect
        fg, _ = masks
        n, _, stats, _ = cv2.connectedComponentsWithStats(fg[y : y + h, x : x + w])
        if n <= 2:  # (one part: the blob itself)
            return False
        reach = self._join.shape[0] // 2  # (boxed as the join dilation boxes a blob)
        for px, py, pw, ph, _ in cast(list[list[int]], stats[1:].tolist()):
            x0, y0 = x + max(0, px - reach), y + max(0, py - reach)
            x1, y1 = x + min(w, px + pw + reach), y + min(h, py + ph + reach)
            part = (x0, y0, x1 - x0, y1 - y0)
            if self._new_ground(part, masks, min_px, min_fill) and not self._soft(*part, fg):
                return True
        return False

    @staticmethod
    def _new_ground(
        rect: tuple[int, int, int, int], masks: tuple[Gray, Gray], min_px: float, min_fill: float
    ) -> int:
        """The area of a blob (its box grown by the join dilation) if it is big and dense enough
        and covers new ground since the last analysed frame; else 0."""
        x, y, w, h = rect
        fg, moving = masks
        area = cv2.countNonZero(fg[y : y + h, x : x + w])
        # (the box grew by the join dilation: measure the fill inside the undilated box)
        if area < min_px or area < min_fill * max(1, w - 4) * max(1, h - 4):
            return 0
        moved = cv2.countNonZero(moving[y : y + h, x : x + w])
        return area if moved >= max(2.0, _MIN_MOVING_FRACTION * area) else 0

    def _soft(self, x: int, y: int, w: int, h: int, fg: Gray) -> bool:
        """Whether the change fades in over more pixels than an object in focus: a light, a shadow.

        The box and ``fg`` are at analysis size (a coarse blob's scaled up)."""
        fg_box = fg[y : y + h, x : x + w]
        if not cv2.countNonZero(fg_box):
            return False
        sel = fg_box > 0
        amp = _p90(self._diff[y : y + h, x : x + w][sel])
        if amp <= _SOFT_PX * 1e-3:
            return False
        # how steeply the difference rises, per pixel (Sobel's 3x3 kernels sum to 8)
        y0, x0 = max(0, y - 1), max(0, x - 1)  # (one pixel around: the box's own edges count)
        box = self._signed[y0 : y + h + 1, x0 : x + w + 1]
        gx = cv2.Sobel(box, cv2.CV_32F, 1, 0, ksize=3)
        gy = cv2.Sobel(box, cv2.CV_32F, 0, 1, ksize=3)
        mag = cast(F32, cv2.magnitude(gx, gy))[y - y0 : y - y0 + h, x - x0 : x - x0 + w]
        # Sharp if the slope's 90th percentile reaches the amplitude over ``_SOFT_PX`` pixels:
        # counted (a tenth of the box at least that steep), not sorted.
        steep = cv2.compare(mag, 8.0 / _SOFT_PX * amp, cv2.CMP_GE)  # type: ignore[call-overload]
        if cv2.countNonZero(steep) >= mag.size - (mag.size - 1) * 9 // 10:
            return False
        # (at night the noise's blobs have outlines as steep as an object's)
        return self._smooth or not self._opaque_outline((x, y, w, h), sel, mag, amp)

    def _opaque_outline(
        self, rect: tuple[int, int, int, int], sel: NDArray[np.bool_], mag: F32, amp: float
    ) -> bool:
        """Whether a blob soft as a whole is an object of one colour after all (a near car).

        Its box is mostly inside, where the difference is the ground's blurred texture: its
        edge (``mag``, the difference's slope per pixel times 8) is at its outline. Read it
        there, and believe it only where the blob hides a textured ground inside, ``_SOFT_PX``
        away from the outline (a shadow's edge can be as steep, but the ground shows through
        the shadow; near its edge, the edge itself is all the texture there is).
        """
        outline = sel.view(np.uint8)
        ring = cv2.dilate(outline, _NEAR_CELLS) > cv2.erode(
            outline, _NEAR_CELLS, borderType=cv2.BORDER_CONSTANT, borderValue=0
        )
        if amp > _SOFT_PX * max(_p90(mag[ring]) / 8.0, 1e-3):
            return False
        x, y, w, h = rect
        x0, y0, x1, y1 = _widened((x, y, x + w, y + h), self._diff.shape)
        inside = (slice(y - y0, y - y0 + h), slice(x - x0, x - x0 + w))
        ground, ground_contrast = (t[inside] for t in _texture(cast(F32, self._bg)[y0:y1, x0:x1]))
        contrast = _texture(self._now[y0:y1, x0:x1])[1][inside]
        away = cv2.erode(outline, _INSIDE, borderType=cv2.BORDER_CONSTANT, borderValue=0) > 0
        same = self._ground_match(away, contrast, ground, ground_contrast)
        return same is not None and same < _HIDDEN

    @staticmethod
    def _soft_ok(tr: _Track, need: int) -> bool:
        """Whether a track followed over ``need`` frames counts, given its soft frames.

        At night the noise and the box filter blur a person's edges as much as a defocused
        flake's or a light pool's: a soft blob is weaker evidence, so its track needs one more
        frame, and a blob that never once shows an edge is light or a blur, not an object.
        """
        return not tr.softs or (tr.age > need and tr.softs < tr.age)

    @staticmethod
    def _new_ground_mask(
        step: F32,
        level: float,
        masks: tuple[Gray, Gray],
        box: tuple[slice, slice] | None,
        out: _BoxedMask,
    ) -> Gray:
        """The changed pixels (``masks``: now, before) that changed since the last analysed
        frame too (``step`` above ``level``) but had not changed then: new ground covered.
        Worked out only in ``box`` (where ``_blobs`` reads it: ``_around`` its seed), zero
        elsewhere; written into ``out``'s mask."""
        changed, before = masks
        mask = out.cleared(changed.shape, box)
        if box is not None:
            mask[box] = cv2.bitwise_and(
                cv2.compare(step[box], level, cv2.CMP_GT),  # type: ignore[call-overload]
                cv2.bitwise_and(changed[box], cv2.bitwise_not(before[box])),
            )
        return mask

    def _around(self, seed: Gray) -> tuple[slice, slice] | None:
        """Where blobs grown from ``seed`` can lie: its bounding box widened by the join's
        reach and a pixel of empty border (clipped to the picture); None: an empty seed."""
        x, y, w, h = cv2.boundingRect(seed)
        if not w:
            return None
        reach = self._join.shape[0] // 2 + 1
        return slice(max(0, y - reach), y + h + reach), slice(max(0, x - reach), x + w + reach)

    def _blobs(
        self,
        seed: Gray,
        fg: Gray,
        moving: Gray,
        min_px: float,
        min_fill: float = _MIN_FILL,
        *,
        around: tuple[slice, slice] | None,
        fine_fg: Gray | None = None,
        no_streaks: bool = False,
    ) -> list[_Blob]:
        """Blobs around ``seed`` (``around``: ``_around`` it) whose ``fg`` is big and dense
        enough and covers new ground.

        Outer contours of the dilated seed mask (much cheaper than labelling); the dilation
        joins the fragments of one person (legs, torso, head). ``fine_fg``: for half-size
        masks (coarse), ``fg`` at analysis size, where edges are judged. ``no_streaks`` (in
        rain): what is too narrow sideways to be anything but a falling streak seeds no blob,
        neither alone nor joined to an object, whose box it would stretch past any track;
        unless it changed in the last analysed frame too (a streak is gone by then; the thin
        parts of a car that moves less than its length are not).
        """
        if no_streaks:
            seed = cast(
                Gray,
                cv2.bitwise_or(
                    cv2.morphologyEx(seed, cv2.MORPH_OPEN, _STREAK),
                    cv2.bitwise_and(seed, self._prev_fg),
                ),
            )
            around = self._around(seed)
        if around is None:
            return []
        rows, cols = around
        contours, _ = cv2.findContours(
            cv2.dilate(seed[around], self._join),
            cv2.RETR_EXTERNAL,
            cv2.CHAIN_APPROX_SIMPLE,
            offset=(cols.start, rows.start),
        )
        rects = [cv2.boundingRect(c) for c in contours]
        rects = [r for r in rects if r[2] * r[3] >= min_px]
        if len(rects) > _MAX_BLOBS:
            rects = sorted(rects, key=lambda r: r[2] * r[3])[-_MAX_BLOBS:]
        blobs: list[_Blob] = []
        for x, y, bw, bh in rects:
            area = self._new_ground((x, y, bw, bh), (fg, moving), min_px, min_fill)
            if not area:
                continue
            k = 1 if fine_fg is None else 2  # (edges and glare are judged at analysis size)
            fine = (k * x, k * y, k * bw, k * bh)
            soft = self._soft(*fine, fg if fine_fg is None else fine_fg)
            # By day a soft blob is light or shade, unless part of it is an object in focus
            # (at night soft blobs are followed: see _soft_ok; coarse ones are made at night).
            if soft and not self._smooth:
                if not self._sharp_part((x, y, bw, bh), (fg, moving), min_px, min_fill):
                    continue
                soft = False
            if self._smooth and self._glared(fine, k * k * area):
                continue
            blobs.append(_Blob(x, y, bw, bh, area, soft))
        return blobs

    @staticmethod
    def _gain_map(f_cells: F32, bg_lit: F32) -> tuple[F32, F32]:
        """Local light gain of the frame over the background (shadows, sun, lamps), and how
        much it changes from one cell to its neighbours (how well it is known there).

        ``f_cells`` are the frame's cell means (``_cell_means`` of the frame plus
        ``_OFFSET``), ``bg_lit`` is the background plus ``_OFFSET``.
        """
        cells = _cell_gains(f_cells, bg_lit)
        spread = cast(F32, cv2.dilate(cells, _NEAR_CELLS)) - cast(
            F32, cv2.erode(cells, _NEAR_CELLS)
        )
        return _full_size(cells, bg_lit.shape), _full_size(spread, bg_lit.shape)

    def _judged_region(self, coarse: list[_Track]) -> tuple[int, int, int, int] | None:
        """Where the votes read textures: every followed blob's box now and where it was on the
        last frame, widened by the texture's reach (clipped to the picture); None: no vote."""
        boxes = []
        judged = [(tr, 1) for tr in (*self._tracks, *self._weak_tracks)] + [
            (tr, 2) for tr in coarse
        ]
        for tr, k in judged:
            if tr.missed:
                continue
            b, step = tr.scaled(k)
            boxes.append((b.x, b.y, b.x + b.w, b.y + b.h))
            if step is not None:
                dx, dy = step
                boxes.append((b.x + dx, b.y + dy, b.x + b.w + dx, b.y + b.h + dy))
        if not boxes:
            return None
        lefts, tops, rights, bottoms = zip(*boxes, strict=True)
        x0, y0, x1, y1 = _widened(
            (min(lefts), min(tops), max(rights), max(bottoms)), self._diff.shape
        )
        return (x0, y0, x1, y1) if x0 < x1 and y0 < y1 else None

    def _see_through(self, b: _Blob, fg: Gray) -> bool:
        """Whether the ground's own texture shows through the blob: light or shade on it.

        An object hides what is behind it; a shadow, a light or a cloud's edge only scales it,
        so the blob's local contrast matches the background's. Only where the background has
        texture above the noise can this tell.
        """
        box = (slice(b.y, b.y + b.h), slice(b.x, b.x + b.w))
        (ground, ground_contrast), (_, contrast) = self._bg_texture, self._texture
        same = self._ground_match(fg[box] > 0, contrast[box], ground[box], ground_contrast[box])
        return same is not None and same >= _SEE_THROUGH

    def _ground_match(
        self, sel: NDArray[np.bool_], contrast: F32, ground: F32, ground_contrast: F32
    ) -> float | None:
        """How well a blob's local contrast (``sel`` of a box's ``contrast``) matches the
        background's there (normalised correlation); None where the ground's detail
        (``ground``) does not stand above the noise, or the blob is too small to tell."""
        if np.count_nonzero(sel) < 8 or _std(ground[sel]) < _SEE_NOISE_K * self._noise:
            return None
        return _ncc(contrast[sel], ground_contrast[sel])

    def _vote(
        self,
        tr: _Track,
        frames: tuple[F32, F32],
        before: tuple[F32, F32],
        fg: Gray,
        noise: float,
        *,
        scale: int = 1,
    ) -> None:
        """Does the blob's texture move with it (an object) or stay put (light or shadow)?

        Compares the blob's patch now with last frame's patch where the blob was (moved) and
        where it is now (static), by normalised correlation, which ignores gain. Only a
        pattern well above the noise can tell. ``frames`` are this frame and the last,
        ``before`` the last frame's texture (this frame's is ``self._texture``). ``scale``: the
        track's pixels are this many analysis pixels (``fg`` is at analysis size).
        """
        f, prev = frames
        if tr.missed:
            return
        b, step = tr.scaled(scale)
        if self._see_through(b, fg):
            tr.stays += 1
            return
        if step is None:
            return
        dx, dy = step
        if abs(dx) + abs(dy) < 2:
            return  # too slow to tell
        h, w = f.shape
        x0, y0, x1, y1 = max(b.x, 0), max(b.y, 0), min(b.x + b.w, w), min(b.y + b.h, h)
        if min(x0 + dx, y0 + dy) < 0 or x1 + dx > w or y1 + dy > h:
            return
        if (x1 - x0) * (y1 - y0) < 16:
            return
        sel = fg[y0:y1, x0:x1] > 0
        if np.count_nonzero(sel) < 8:
            return
        ground = self._bg_texture[0]
        if _std(ground[y0:y1, x0:x1][sel]) >= _NOISE_K * noise:
            # ground with a texture well above the noise: compare textures, whatever the light
            cur, last = self._texture[1], before[1]
        elif _std(f[y0:y1, x0:x1][sel]) >= _NOISE_K * noise:
            cur, last = f, prev  # no texture to speak of: the blob's own shape must tell
        else:
            return
        pat = cur[y0:y1, x0:x1][sel]
        static = _ncc(pat, last[y0:y1, x0:x1][sel])
        moved = _ncc(pat, last[y0 + dy : y1 + dy, x0 + dx : x1 + dx][sel])
        if moved >= static:
            tr.moves += 1
        elif static > moved + _VOTE_MARGIN:
            tr.stays += 1

    def process(self, frame: Gray, timestamp: float) -> MotionResult:
        """Analyse one gray frame (``analysis_size`` of the camera) taken at ``timestamp`` s."""
        if frame.ndim != 2:
            raise ValueError("process() wants a 2-D gray frame")
        cfg = self._config
        f = frame.astype(np.float32)
        if self._smooth:  # noisy picture (night): average noise down before differencing
            f = cast(F32, cv2.blur(f, (_SMOOTH, _SMOOTH)))
        bg = self._bg
        if bg is None or bg.shape != f.shape or timestamp < self._last_ts - 1.0:
            return self._start(f, timestamp, _START_S)
        dt = min(max(timestamp - self._last_ts, 0.02), 2.0)
        gap = timestamp - self._last_ts > _MAX_GAP_S
        self._last_ts = timestamp
        self._frames += 1
        total = f.size

        mean_f, mean_bg = float(cv2.mean(f)[0]), float(cv2.mean(bg)[0])
        gain = min(4.0, max(0.25, mean_f / max(1.0, mean_bg)))
        bg_lit = bg + _OFFSET
        f_lit = f + _OFFSET
        f_cells = _cell_means(f_lit)
        gmap, spread = self._gain_map(f_cells, bg_lit)
        if self._signed.shape != f.shape:
            self._signed, self._diff = np.empty_like(f), np.empty_like(f)
        signed, diff = self._signed, self._diff
        np.multiply(bg_lit, gmap, out=signed)
        signed = cast(F32, cv2.subtract(f_lit, signed, dst=signed))
        np.abs(signed, out=diff)
        self._now = f
        now = _median(diff[::3, ::3].flatten())  # (a copy: reordered)
        # The noise level follows the median difference slowly, so that a sudden global change
        # (which raises the median at once) is seen as a change and not taken for noise.
        noise = self._noise
        if timestamp < self._recal_until:
            noise = now
        self._noise = noise + _rate(dt, _NOISE_S) * (now - noise)
        if not self._smooth and noise > _NOISY:
            self._smooth = True
            cv2.blur(bg, (_SMOOTH, _SMOOTH), dst=bg)
            cv2.blur(self._still, (_SMOOTH, _SMOOTH), dst=self._still)
            self._prev = cast(F32, cv2.blur(self._prev, (_SMOOTH, _SMOOTH)))
            mean_bg = float(cv2.mean(bg)[0])
        elif self._smooth and noise < _CLEAN:
            self._smooth = False
        # Contrast scales with light: in a dark picture the same object differs less ...
        dim = min(1.0, max(_MIN_DIM, mean_bg * gain / _BRIGHT))
        level = max(cfg.threshold * dim, _NOISE_K * noise)
        # ... and where a shadow has fallen since the background was learned, less still there.
        # (worked out in place, as are the other full-picture chains: every array a frame
        # touches must come back from memory after the decoder has run, which costs more
        # than the arithmetic)
        level_here = _at_most(gmap, 1.0, out=gmap)
        np.multiply(level_here, dim, out=level_here)
        level_here = _at_least(level_here, _MIN_DIM, out=level_here)
        np.multiply(level_here, cfg.threshold, out=level_here)
        level_here = _at_least(level_here, _NOISE_K * noise, out=level_here)
        # Where the light changes from cell to cell (a shadow's edge), the gain is only known to
        # within that change: so is the difference it explains.
        unsure = np.multiply(bg_lit, spread, out=spread)
        del bg_lit
        thr = np.multiply(self._dev, _DEV_K)
        np.maximum(thr, level_here, out=thr)
        np.maximum(thr, unsure, out=thr)
        del level_here
        fg = cv2.compare(diff, thr, cv2.CMP_GT)
        # A change must also stand out from the still background. The background learns the
        # lit ground in seconds (it must: the light changes), so a light that sweeps past
        # (headlights) leaves its print there, a faint trail that moves with it; where the
        # picture is back to how it has been for the last minute, nothing is there.
        x, y, w, h = cv2.boundingRect(fg)
        if w:  # (worked out only where something changed: often nothing did, or little)
            still_lit = self._still + _OFFSET
            box = (slice(y, y + h), slice(x, x + w))
            still_gain = _full_size_in(_cell_gains(f_cells, still_lit), box)
            from_still = cv2.absdiff(f_lit[box], still_lit[box] * still_gain)
            changed_here = cast(Gray, fg[box])  # (a view: cleared in place)
            changed_here &= cast(Gray, cv2.compare(from_still, thr[box] * _STILL_K, cv2.CMP_GT))
            del still_lit, still_gain
        del f_lit
        changed = cv2.countNonZero(fg) / total

        if changed > _RECAL_FRACTION or now > _GLOBAL_K * noise + 2.0:
            return self._start(f, timestamp)
        if timestamp < self._recal_until:
            # Learn fast: the picture may still be settling (exposure, IR cut filter).
            cv2.accumulateWeighted(f, bg, 0.5)
            np.copyto(self._still, bg)  # (the first frame alone is as noisy as any)
            cv2.accumulateWeighted(diff, self._dev, 1.0 / (self._frames + 1))
            self._prev = f
            return MotionResult(False, (), changed, True, timestamp)

        mask = self._zone_mask(fg.shape)
        if self._smooth:
            # In a noisy night picture, brightened up to the sensor's ceiling: a clipped light
            # (headlights, a lamp's pool, glare) shows no detail of what it lights, so it is no
            # evidence of an object. (By day the rule does not apply, so it is not worked out.)
            self._glare = cast(
                Gray,
                cv2.bitwise_and(
                    cv2.compare(frame, _GLARE, cv2.CMP_GE),  # type: ignore[call-overload]
                    cv2.compare(signed, 0.0, cv2.CMP_GT),  # type: ignore[call-overload]
                ),
            )
        if mask is not None:
            fg = cv2.bitwise_and(fg, mask)
        prev_gain = mean_f / max(1.0, float(cv2.mean(self._prev)[0]))
        if abs(math.log(max(prev_gain, 1e-3))) > _JUMP:
            # The exposure jumped (the IR filter switched, the camera adjusted): for a second, as
            # it settles, the whole picture changes a little every frame, and the gain map leaves
            # a faint trace of it wherever the light did not change in proportion.
            self._settled_at = timestamp + _RECAL_S
        step = np.multiply(self._prev, prev_gain)
        step = cast(F32, cv2.absdiff(f, step, dst=step))
        # Moving = changed now, changed since the last analysed frame, and not changed before
        # (new ground covered): a fading ghost, a flipped clock digit or a flickering light
        # covers no new ground on the next frame.
        around = self._around(cast(Gray, fg))
        moving = self._new_ground_mask(
            step, level, (cast(Gray, fg), self._prev_fg), around, self._moving
        )

        # In clutter (snow, rain) small blobs need to be bigger to count.
        min_px = max(3.0, cfg.min_area_percent / 100.0 * total)
        blobs = self._blobs(
            cast(Gray, fg),
            cast(Gray, fg),
            moving,
            min_px * (1.0 + self._clutter / 2.0),
            around=around,
            no_streaks=self._clutter > _CLUTTER_1,
        )
        if gap:
            self._tracks = []
        self._tracks, births = self._track(self._tracks, blobs, dt, fast_width=fg.shape[1])
        self._clutter += _CLUTTER_RATE * (births - self._clutter)
        # Weak evidence: pixels changed a little, but along a slow path for several analysed
        # frames in a row (far-away people at night or in rain; noise, rain and snow flakes
        # rarely hit the same neighbourhood three frames running).
        weak_thr = np.multiply(thr, _WEAK)
        weak_thr = _at_least(weak_thr, _WEAK_NOISE_K * noise, out=weak_thr)
        weak_thr = cast(F32, cv2.max(weak_thr, unsure, dst=weak_thr))
        weak = cast(Gray, cv2.compare(diff, weak_thr, cv2.CMP_GT))
        del weak_thr
        if mask is not None:
            weak = cast(Gray, cv2.bitwise_and(weak, mask))
        # per pixel: for how many analysed frames in a row its 5x5 neighbourhood changed
        run = cast(Gray, cv2.dilate(self._run, self._near))
        np.add(run, 1, out=run)  # (no overflow: at most _RUN_CAP before)
        self._run = cast(Gray, cv2.bitwise_and(_at_most(run, _RUN_CAP), weak, dst=self._run))
        steady = cast(Gray, cv2.compare(self._run, _RUN_FRAMES, cv2.CMP_GE))  # type: ignore[call-overload]
        learning = timestamp < self._recal_until + _LEARN_S
        # (not while the deviations are still being learned: half of a threshold that is not
        # known yet is no evidence; nor while the exposure settles: a faint change along a path
        # is what it leaves behind)
        weak_blobs = []
        if not learning and timestamp >= self._settled_at:
            weak_around = self._around(steady)
            weak_moving = self._new_ground_mask(
                step, level * _WEAK, (weak, self._prev_weak), weak_around, self._weak_moving
            )
            weak_blobs = self._blobs(
                steady, weak, weak_moving, min_px, _WEAK_FILL, around=weak_around
            )
        if gap:
            self._weak_tracks = []
        self._weak_tracks, _ = self._track(self._weak_tracks, weak_blobs, dt, max_speed=_WEAK_SPEED)
        self._prev_weak = weak

        # Coarse evidence (noisy pictures only): half-size averages of the difference and the
        # threshold, so that a big, faint person at night shows as one blob, not as fragments.
        coarse: list[_Track] = []
        if self._smooth and not learning:  # (not while the deviations are still being learned)
            ch, cw = fg.shape[0] // 2, fg.shape[1] // 2
            cdiff = cv2.resize(diff, (cw, ch), interpolation=cv2.INTER_AREA)
            cthr = cv2.resize(thr, (cw, ch), interpolation=cv2.INTER_AREA) * _COARSE
            cmask_fg = cast(Gray, cv2.compare(cdiff, cthr, cv2.CMP_GT))
            if mask is not None:
                czone = cv2.resize(mask, (cw, ch), interpolation=cv2.INTER_NEAREST)
                cmask_fg = cast(Gray, cv2.bitwise_and(cmask_fg, czone))
            cstep = cv2.resize(step, (cw, ch), interpolation=cv2.INTER_AREA)
            if self._prev_coarse.shape != cmask_fg.shape:
                self._prev_coarse = np.zeros_like(cmask_fg)
            cmoving = cast(
                Gray,
                cv2.bitwise_and(
                    cv2.compare(cstep, level * _COARSE, cv2.CMP_GT),  # type: ignore[call-overload]
                    cv2.bitwise_and(cmask_fg, cv2.bitwise_not(self._prev_coarse)),
                ),
            )
            coarse_fg = cast(
                Gray, cv2.resize(cmask_fg, fg.shape[::-1], interpolation=cv2.INTER_NEAREST)
            )
            cblobs = self._blobs(
                cmask_fg,
                cmask_fg,
                cmoving,
                min_px / 4 * (1.0 + self._clutter / 2.0),
                around=self._around(cmask_fg),
                fine_fg=coarse_fg,
            )
            self._prev_coarse = cmask_fg
            self._coarse_tracks, births = self._track(
                [] if gap else self._coarse_tracks, cblobs, dt
            )
            self._coarse_clutter += _CLUTTER_RATE * (births - self._coarse_clutter)
            coarse = self._coarse_tracks
        else:
            self._coarse_tracks = []
            self._coarse_clutter = 0.0
            self._prev_coarse = np.zeros((1, 1), np.uint8)
        del thr, step

        h, w = fg.shape
        need = _PERSIST_FRAMES + (self._clutter > _CLUTTER_1) + (self._clutter > _CLUTTER_2)
        boxes: list[Box] = []
        confirmed = np.zeros(fg.shape, np.uint8)  # (filled only when boxes are reported)
        region = self._judged_region(coarse)
        if region is not None:  # (textures only around the blobs to judge)
            self._texture, self._bg_texture = _texture_in(f, region), _texture_in(bg, region)
            before = _texture_in(self._prev, region)
            frames = (f, self._prev)
            for tr in self._tracks:
                self._vote(tr, frames, before, cast(Gray, fg), noise)
            for tr in self._weak_tracks:
                self._vote(tr, frames, before, weak, noise)
            if coarse:
                for tr in coarse:
                    self._vote(tr, frames, before, coarse_fg, noise, scale=2)
        # In clutter, a track with a partner moving in step beside it needs one frame less: the
        # pieces of one object (a near car's body and wheels) bear each other out, and rain or
        # snow do not move in step sideways.
        partners = (
            [t for t in self._tracks if t.age >= 2 and t.missed == 0 and not t.voted_light()]
            if need > _PERSIST_FRAMES
            else []
        )
        for tr in self._tracks:
            if tr.voted_light():
                continue
            # (a track born now has no velocity, so no partner; one coasting is not confirmed)
            own_need = need - (bool(partners) and _has_partner(tr, partners))
            followed = tr.age >= own_need + tr.fast and self._soft_ok(tr, own_need)
            if tr.missed == 0 and (followed or (tr.confirmed and tr.age >= 2)):
                tr.confirmed = True
        for tr in self._weak_tracks:
            size = math.sqrt(tr.blob.core)
            if (
                tr.missed == 0
                and tr.age >= _WEAK_FRAMES
                and tr.travelled() >= _TRAVEL * size
                and not tr.falling()
                and self._soft_ok(tr, _WEAK_FRAMES)
            ):
                tr.confirmed = True
        # Half-size averages of a noisy picture show noise as blobs popping up at random: while
        # they do, coarse tracks need one more frame (only one: there a faint person in a storm
        # shows).
        cneed = max(need, _PERSIST_FRAMES + (self._coarse_clutter > _CLUTTER_1))
        for tr in coarse:
            if (
                tr.missed == 0
                and not tr.voted_light()
                and not tr.falling()
                and ((tr.age >= cneed and self._soft_ok(tr, cneed)) or tr.confirmed)
            ):
                tr.confirmed = True
                b = tr.blob
                boxes.append((2 * b.x / w, 2 * b.y / h, 2 * b.w / w, 2 * b.h / h))
                confirmed[2 * b.y : 2 * (b.y + b.h), 2 * b.x : 2 * (b.x + b.w)] = 255
        for tr in (*self._tracks, *self._weak_tracks):
            if tr.confirmed and tr.missed == 0 and not tr.voted_light():
                b = tr.blob
                boxes.append((b.x / w, b.y / h, b.w / w, b.h / h))
                confirmed[b.y : b.y + b.h, b.x : b.x + b.w] = 255

        # Learn: background (slowly where changed), and each pixel's typical deviation.
        cv2.accumulateWeighted(f, bg, _rate(dt, _BG_S), cv2.bitwise_not(fg))
        cv2.accumulateWeighted(f, bg, _rate(dt, _BG_CHANGED_S), fg)
        # What the light's uncertainty explains is not the pixel's own: a crisp shadow's edge
        # passing once must not blind the pixel for the half minute its deviation takes to fall.
        # (In a noisy picture the cells' gains are noisy too: their spread is no light's edge.)
        if self._smooth:
            own = diff
        else:
            own = np.subtract(diff, unsure, out=unsure)
            own = _at_least(own, 0.0, out=own)
        rising = cv2.compare(own, self._dev, cv2.CMP_GT)
        calm = cv2.bitwise_not(rising)
        cv2.accumulateWeighted(own, self._dev, _rate(dt, _DEV_FALL_S), calm)
        rise = _rate(dt, _DEV_RISE_LEARN_S if learning else _DEV_RISE_S)
        unconfirmed = cv2.bitwise_not(confirmed)
        if boxes:
            cv2.accumulateWeighted(own, self._dev, rise, cv2.bitwise_and(rising, unconfirmed))
            cv2.accumulateWeighted(
                own, self._dev, _rate(dt, _DEV_RISE_MOVING_S), cv2.bitwise_and(rising, confirmed)
            )
        else:  # (nothing reported: no pixel is under confirmed motion)
            cv2.accumulateWeighted(own, self._dev, rise, rising)
        cv2.accumulateWeighted(f, self._still, _rate(dt, _STILL_S), unconfirmed)
        self._prev = f
        self._prev_fg = cast(Gray, fg)
        score = cv2.countNonZero(fg) / total
        return MotionResult(bool(boxes), tuple(boxes), score, False, timestamp)


def draw_outlines(frame_bgr_or_gray: NDArray[np.uint8], result: MotionResult) -> bytes:
    """A JPEG of the frame with the moving areas outlined in red."""
    img = frame_bgr_or_gray
    img = cast(Gray, cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)) if img.ndim == 2 else img.copy()
    h, w = img.shape[:2]
    thick = max(2, round(h / 240))
    for x, y, bw, bh in result.boxes:
        p0 = (round(x * w), round(y * h))
        p1 = (round((x + bw) * w), round((y + bh) * h))
        cv2.rectangle(img, p0, p1, (0, 0, 255), thick)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 85])
    if not ok:  # pragma: no cover - OpenCV only fails on invalid input, which we never build
        raise RuntimeError("JPEG encoding failed")
    return buf.tobytes()


@dataclass(frozen=True, slots=True)
class MotionStats:
    """Counters of a ``MotionWorker`` (a snapshot)."""

    decoded_frames: int = 0
    analysed_frames: int = 0
    dropped_packets: int = 0
    decode_errors: int = 0
    analysis_cpu_s: float = 0.0


@dataclass(slots=True)
class _Counters:
    decoded_frames: int = 0
    analysed_frames: int = 0
    dropped_packets: int = 0
    decode_errors: int = 0
    analysis_cpu_s: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)


type ResultCallback = Callable[[MotionResult, NDArray[np.uint8] | None], None]
type _Item = tuple[int, av.Packet, float | None]


def _lower_priority(increment: int) -> None:
    """Make the calling thread nicer by `increment` (only this thread on Linux; a system
    without per-thread priorities, or one that refuses, leaves it as it is)."""
    try:
        thread = threading.get_native_id()
        now = os.getpriority(os.PRIO_PROCESS, thread)
        os.setpriority(os.PRIO_PROCESS, thread, now + increment)
    except (AttributeError, OSError) as err:
        _LOGGER.debug("Motion analysis keeps its priority: %s", err)


class MotionWorker:
    """Decodes one camera's video packets and runs the detector in its own thread.

    The camera's session thread calls ``start_stream`` on every (re)connect and ``feed`` for
    every video packet. ``feed`` never blocks: packets go into a bounded queue and, when it is
    full, packets are dropped up to the next keyframe (P-frames cannot be decoded after a gap).
    ``on_result`` is called from the worker thread for every analysed frame with the result and,
    when there is motion, the frame as a BGR array at most ``DRAW_MAX_HEIGHT`` tall (for
    ``draw_outlines``; a new array each time, which the callback may keep); otherwise with None.
    """

    def __init__(
        self,
        config: MotionConfig,
        on_result: ResultCallback,
        *,
        queue_size: int = 100,
        name: str = "pm_dvr motion",
    ) -> None:
        self._detector = MotionDetector(config)
        self._on_result = on_result
        self._queue: queue.Queue[_Item | None] = queue.Queue(maxsize=queue_size)
        self._stats = _Counters()
        self._generation = 0
        self._contexts: dict[int, av.CodecContext] = {}
        self._contexts_lock = threading.Lock()
        self._need_keyframe = True
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def config(self) -> MotionConfig:
        """The active detector configuration."""
        return self._detector.config

    def update_config(self, config: MotionConfig) -> None:
        """Live tuning; the background model is kept."""
        self._detector.update_config(config)

    @property
    def stats(self) -> MotionStats:
        """A snapshot of the counters."""
        s = self._stats
        with s.lock:
            return MotionStats(
                s.decoded_frames,
                s.analysed_frames,
                s.dropped_packets,
                s.decode_errors,
                s.analysis_cpu_s,
            )

    @property
    def alive(self) -> bool:
        """Whether the worker thread runs."""
        return self._thread.is_alive()

    def start_stream(self, stream: VideoStream) -> None:
        """Prepare a fresh decoder for a new connection's video stream (session thread)."""
        cc = stream.codec_context
        ctx = av.CodecContext.create(cc.name, "r")
        if cc.extradata:
            ctx.extradata = cc.extradata
        ctx.thread_count = 1  # no frame-threading delay: each packet gives its own frame
        with self._contexts_lock:
            self._generation += 1
            self._contexts[self._generation] = ctx
        self._need_keyframe = True

    def feed(self, packet: av.Packet) -> None:
        """Queue one video packet for analysis; O(1) and never blocking (session thread)."""
        if self._stopping.is_set():
            return
        if self._generation == 0 or (self._need_keyframe and not packet.is_keyframe):
            self._count_drop()
            return
        pts, tb = packet.pts, packet.time_base
        # Read the timestamp now: the recorder may rebase the packet's time in place later.
        t = float(pts * tb) if pts is not None and tb is not None else None
        try:
            self._queue.put_nowait((self._generation, packet, t))
        except queue.Full:
            self._need_keyframe = True
            self._count_drop()
            return
        self._need_keyframe = False

    def _count_drop(self) -> None:
        with self._stats.lock:
            self._stats.dropped_packets += 1

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread and wait for it (pending packets are discarded)."""
        self._stopping.set()
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        with contextlib.suppress(queue.Full):  # only if feed() raced the drain
            self._queue.put_nowait(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        _lower_priority(ANALYSIS_NICE)
        ctx: av.CodecContext | None = None
        generation = 0
        next_due: float | None = None
        last_t = -math.inf
        frame_no = 0
        while not self._stopping.is_set():
            try:
                item = self._queue.get(timeout=0.5)
            except queue.Empty:
                continue
            if item is None:
                break
            gen, packet, t = item
            if gen != generation:
                with self._contexts_lock:
                    ctx = self._contexts.pop(gen, None)
                    for old in [g for g in self._contexts if g < gen]:
                        del self._contexts[old]
                generation, next_due = gen, None
            if ctx is None:
                continue
            try:
                frames = cast(list[av.VideoFrame], ctx.decode(packet))  # type: ignore[attr-defined]
            except av.FFmpegError as err:
                with self._stats.lock:
                    self._stats.decode_errors += 1
                _LOGGER.debug("motion decode error: %s", err)
                continue
            for frame in frames:
                frame_no += 1
                with self._stats.lock:
                    self._stats.decoded_frames += 1
                ts = t if t is not None else frame_no / 25.0
                if ts < last_t - 1.0:  # timestamps restarted (reconnect): resample from here
                    next_due = None
                last_t = ts
                period = 1.0 / self._detector.config.analysis_fps
                if next_due is not None and ts < next_due - 1e-3:
                    continue
                next_due = (
                    ts + period if next_due is None or ts > next_due + period else next_due + period
                )
                self._analyse(frame, ts)

    def _analyse(self, frame: av.VideoFrame, ts: float) -> None:
        c0 = time.thread_time()
        small = analysis_frame(frame)
        result = self._detector.process(small, ts)
        image: NDArray[np.uint8] | None = None
        if result.motion:
            dh = min(DRAW_MAX_HEIGHT, frame.height)
            dw = max(2, round(frame.width * dh / frame.height / 2) * 2)
            image = cast(Gray, frame.reformat(width=dw, height=dh, format="bgr24").to_ndarray())
        with self._stats.lock:
            self._stats.analysed_frames += 1
            self._stats.analysis_cpu_s += time.thread_time() - c0
        try:
            self._on_result(result, image)
        except Exception:
            _LOGGER.exception("motion result callback failed")

"""Benchmark pm_dvr's motion detector against three anchors on two labelled sets.

Run from the repo root: ``.venv/bin/python bench/motion.py`` (``--quick`` for smaller sets,
``--set dev|heldout|fresh|all``, ``--tune-mog2`` to pick MOG2's parameters on the development
set, ``--set screens`` for the development-side screens, ``SCREENS``: extra scenes.py clips
that probe one weakness each, which a motion change is checked on before the held-out set).
Clips are cached under bench/out/ (gitignored).

Three sets, made apart:
- development (tests/rig/scenes.py): what the detector and MOG2 are tuned on;
- held-out (tests/rig/heldout.py, another generator design, plus real footage): never tuned
  on; it says what users get on scenes nobody tuned for;
- fresh held-out (tests/rig/composite.py, a third design: real footage's empty scene and real
  people cut out of it, composited along new paths with nuisances of their own models): made
  after the held-out set's figures had been read while diagnosing, so that one set is still
  unseen. Never tuned on either.

Anchors, as their users run them: the original pm_dvr's frame difference and contours, MOG2
(tuned on the development set), and Frigate's ImprovedMotionDetector with its defaults.

All detectors see the same decoded frames (the luma plane at full resolution), sampled at the
same 5 fps; each does its own scaling inside the timed call, so the CPU figures cover analysis
only (decoding excluded). Scoring (times are clip seconds):

- recall: an object appearance (the moment half of it is visible) counts as detected when
  the detector's per-frame motion flag is on at some analysed frame between the object's first
  visible frame and 1 s after its appearance;
- latency: from appearance to the first "on" frame while the object is visible (0 if earlier);
- false alarm: a rising edge of the motion flag outside every object interval (widened by 0.5 s
  before and 1 s after, for detectors that lag by a frame); counted from 3 s into each clip (the
  scene generators' warm-up, before which no object appears);
- notification: what a user gets: the Motion sensor (on while motion, off 30 s after the last)
  turning on, or a motion event opening, in negative time;
- negative time: all analysed time outside the widened intervals, after the warm-up; "on" is the
  fraction of it with the flag set.
pm_dvr is also scored on the development clips re-encoded as a camera's 640x360 sub-stream (what
the worker analyses when a camera has one), to show what the sub-stream costs in accuracy.
The last line is ``RESULT {json}``: pm_dvr on the development set, pm_dvr and every anchor on
the held-out set, and pm_dvr and the anchors on the fresh held-out set (``pm_dvr_fresh``,
``anchors_fresh``); with ``--set screens``, ``screens``: every detector on each screen.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
import functools
import json
from pathlib import Path
import statistics
import sys
import time
from typing import Protocol

import av
import cv2
import numpy as np
from numpy.typing import NDArray

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from custom_components.pm_dvr.core.motion import (  # noqa: E402
    MotionConfig,
    MotionDetector,
    analysis_frame,
)
from tests.rig.scenes import (  # noqa: E402
    WARMUP_S,
    SceneTruth,
    default_kbps,
    load_truth,
    make_scene,
    open_encoder,
)

OUT = ROOT / "bench" / "out"
ANALYSIS_FPS = 5.0
RECALL_WINDOW_S = 1.0
BEFORE_S, AFTER_S = 0.5, 1.0
OFF_DELAY_S = 30.0  # the Motion sensor's default off-delay (const.DEFAULT_MOTION_OFF_DELAY)

Gray = NDArray[np.uint8]


@dataclass(frozen=True)
class Clip:
    """One benchmark clip specification."""

    kind: str
    width: int
    height: int
    fps: int
    seconds: int
    seed: int
    sensor_noise: float | None = None  # the rig's default (13 at night, 2.5 by day) if None

    @property
    def path(self) -> Path:
        name = self.kind.replace("+", "-")
        noise = "" if self.sensor_noise is None else f"_n{self.sensor_noise:g}"
        return OUT / f"{name}_{self.height}p{self.fps}_{self.seconds}s_s{self.seed}{noise}.mp4"


class Scored(Protocol):
    """A clip as the scorer needs it (a development clip, a held-out one, real footage)."""

    @property
    def path(self) -> Path: ...

    @property
    def height(self) -> int: ...

    @property
    def kind(self) -> str: ...


@dataclass(frozen=True)
class Footage:
    """Real footage (or any clip with its truth already on disk)."""

    path: Path
    height: int
    kind: str


P180, P360, P720, P1080 = (320, 180), (640, 360), (1280, 720), (1920, 1080)
FULL_SET = [
    # positives: 60 s each, several walkers per clip, with and without nuisances
    Clip("object", *P720, 25, 60, 1),
    Clip("object+clock", *P1080, 15, 60, 2),
    Clip("small_object", *P720, 25, 60, 3),
    Clip("small_object+clock", *P1080, 15, 60, 4),
    Clip("object+small_object+rain", *P720, 25, 60, 5),
    Clip("object+night_noise", *P720, 25, 60, 6),
    Clip("small_object+night_noise", *P720, 15, 60, 7),
    Clip("object+foliage+light_ramp", *P1080, 15, 60, 8),
    Clip("object+small_object+snow", *P720, 25, 60, 9),
    Clip("small_object+compression", *P720, 25, 60, 10),
    # negatives: 60 s each
    Clip("light_ramp", *P720, 25, 60, 11),
    Clip("ir_switch", *P1080, 15, 60, 12),
    Clip("night_noise", *P720, 25, 60, 13),
    Clip("rain", *P720, 25, 60, 14),
    Clip("snow", *P720, 25, 60, 15),
    Clip("foliage", *P1080, 15, 60, 16),
    Clip("clock", *P720, 25, 60, 17),
    Clip("compression", *P1080, 15, 60, 18),
    Clip("rain+night_noise+clock", *P720, 25, 60, 19),
    Clip("foliage+light_ramp+clock", *P720, 25, 60, 20),
    Clip("ir_switch+clock", *P720, 25, 60, 21),
    # the field's hard cases (scenes.HARD_KINDS): positives ...
    Clip("object+cloud_shadows", *P720, 25, 60, 22),
    Clip("fast_vehicle", *P1080, 15, 60, 23),
    Clip("fast_vehicle+cloud_shadows", *P720, 25, 60, 24),
    Clip("small_object+ir_particles", *P720, 25, 60, 25),
    Clip("standing+clock", *P1080, 15, 60, 26),
    Clip("approach+light_ramp", *P720, 25, 60, 27),
    # ... and negatives
    Clip("cloud_shadows", *P1080, 15, 60, 28),
    Clip("ir_particles", *P720, 25, 60, 29),
    Clip("headlights+night_noise", *P720, 25, 60, 30),
    Clip("cloud_shadows+foliage", *P720, 25, 60, 31),
    # cloud shadows through a starved bitrate (blocking blurs the ground's texture away)
    Clip("object+cloud_shadows+compression", *P720, 25, 60, 32),
    Clip("cloud_shadows+compression", *P1080, 15, 60, 33),
    # wind-driven clouds: any direction, fast, crisp and deep shadows
    Clip("object+storm_clouds", *P720, 25, 60, 34),
    Clip("storm_clouds", *P1080, 15, 60, 35),
    Clip("object+storm_clouds+compression", *P720, 25, 60, 36),
    Clip("storm_clouds+foliage", *P720, 25, 60, 37),
    # IR night: moths circling a light and snowstorms, particles in view for seconds
    Clip("object+ir_insects", *P720, 25, 60, 38),
    Clip("ir_insects", *P1080, 15, 60, 39),
    Clip("approach+ir_snowstorm", *P720, 25, 60, 40),
    Clip("ir_snowstorm", *P720, 25, 60, 41),
    # small night pictures: a sub-stream or an old camera, analysed at its own size (no
    # downscale averages its noise away)
    Clip("night_noise", *P180, 15, 60, 42),
    Clip("small_object+night_noise", *P360, 15, 60, 43),
    Clip("object+ir_insects", *P360, 15, 60, 44),
    Clip("ir_snowstorm", *P180, 15, 60, 45),
    # a noisy picture by day (dusk, a cheap sensor's gain): clouds' shade where the picture is
    # smoothed as at night
    Clip("object+cloud_shadows+night_noise", *P720, 25, 60, 46),
    Clip("cloud_shadows+night_noise", *P720, 25, 60, 47),
    Clip("object+storm_clouds+night_noise", *P720, 25, 60, 48),
    Clip("storm_clouds+compression+night_noise", *P720, 15, 60, 49),
    # cars close to the camera: big, uniform, across the frame in 0.7-3 s
    Clip("near_vehicle", *P720, 25, 60, 50),
    Clip("near_vehicle+cloud_shadows", *P720, 25, 60, 51),
    Clip("near_vehicle", *P1080, 15, 60, 52),
    Clip("near_vehicle+night_noise", *P720, 25, 60, 53),
    # headlights through a fence and past poles: hard-edged stripes of light and shadow that
    # sweep with the pool (the light's own contrast, not the ground's)
    Clip("headlight_shadows", *P720, 25, 60, 54),
    Clip("object+headlight_shadows", *P720, 25, 60, 55),
]
QUICK_SET = [c for c in FULL_SET if c.kind in ("object", "small_object", "rain", "clock")]


_SCREEN_SIZES = ((*P720, 25), (*P360, 15), (*P720, 25), (*P1080, 15))


def _screen(
    kinds: tuple[str, ...],
    seed: int,
    seconds: int,
    sizes: tuple[tuple[int, int, int], ...] = _SCREEN_SIZES,
    noise: float | None = None,
) -> list[Clip]:
    """Each kind at each of ``sizes`` (width, height, fps), seeds counting up from ``seed``."""
    specs = [(kind, size) for kind in kinds for size in sizes]
    return [
        Clip(kind, w, h, fps, seconds, seed + i, noise)
        for i, (kind, (w, h, fps)) in enumerate(specs)
    ]


# Development-side screens (scenes.py, seeds none of the sets use): the extra clips a motion
# change is checked on before the held-out set sees it. Named by what they probe.
SCREENS = {
    "cars_in_shade": _screen(
        (
            "fast_vehicle+cloud_shadows",
            "near_vehicle+cloud_shadows",
            "fast_vehicle+storm_clouds",
            "near_vehicle+storm_clouds",
            "object+cloud_shadows",
            "small_object+storm_clouds",
        ),
        2601,
        24,
    ),
    "cars": _screen(("fast_vehicle", "near_vehicle"), 2701, 24),
    "clean_ir_particles": _screen(
        (
            "ir_snowstorm",
            "ir_insects",
            "ir_particles",
            "object+ir_snowstorm",
            "object+ir_insects",
            "object+ir_particles",
        ),
        2901,
        24,
        ((*P720, 25), (*P360, 15)),
        noise=3.0,  # a good sensor: a clean picture, so none of the noisy picture's rules
    ),
    "headlight_shadows": [
        Clip(kind, w, h, fps, 40, 2401 + i, noise)
        for i, (kind, (w, h), fps, noise) in enumerate(
            (
                ("headlight_shadows", P720, 25, None),
                ("headlight_shadows", P720, 25, 3.0),
                ("headlight_shadows", P720, 25, None),
                ("headlight_shadows", P720, 25, 3.0),
                ("headlight_shadows", P360, 15, None),
                ("headlight_shadows", P360, 15, 3.0),
                ("headlight_shadows", P1080, 15, 3.0),
                ("headlight_shadows+night_noise", P720, 25, None),
                ("object+headlight_shadows", P720, 25, None),
                ("small_object+headlight_shadows", P720, 25, 3.0),
                ("near_vehicle+headlight_shadows", P720, 25, 3.0),
                ("approach+headlight_shadows", P720, 25, None),
            )
        )
    ],
}


# --------------------------------------------------------------------------- detectors


class Detector(Protocol):
    """A detector fed the decoded frame and its full-resolution gray picture, at the analysis
    rate (the anchors take the gray picture, converted outside the timed call)."""

    def __call__(self, frame: av.VideoFrame, gray: Gray, t: float) -> bool: ...


class PmDvr:
    """pm_dvr's detector on the worker's own path: the analysis picture is scaled straight from
    the frame's Y plane (``analysis_frame``), inside the timed call."""

    def __init__(self) -> None:
        self.det = MotionDetector(MotionConfig(analysis_fps=ANALYSIS_FPS))

    def __call__(self, frame: av.VideoFrame, gray: Gray, t: float) -> bool:
        return self.det.process(analysis_frame(frame), t).motion


class FrameDiff:
    """Naive: blur 21, difference to the previous frame, threshold 25, dilate, contour > 500 px."""

    def __init__(self) -> None:
        self.prev: Gray | None = None

    def __call__(self, frame: av.VideoFrame, gray: Gray, t: float) -> bool:
        g = np.asarray(cv2.GaussianBlur(gray, (21, 21), 0), np.uint8)
        prev, self.prev = self.prev, g
        if prev is None:
            return False
        _, th = cv2.threshold(cv2.absdiff(prev, g), 25, 255, cv2.THRESH_BINARY)
        th = cv2.dilate(th, None, iterations=2)  # type: ignore[call-overload]
        contours, _ = cv2.findContours(th, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        return any(cv2.contourArea(c) > 500 for c in contours)


class Mog2:
    """OpenCV MOG2 at 640 px wide, shadows dropped, a blob over `min_area` px is motion.

    Its variance threshold and blob size were picked on the development set with
    `bench/motion.py --tune-mog2` (the fewest false alarms at the best recall).
    """

    def __init__(self, var_threshold: int = 16, min_area: int = 100) -> None:
        self.sub = cv2.createBackgroundSubtractorMOG2(history=500, varThreshold=var_threshold)
        self.min_area = min_area

    def __call__(self, frame: av.VideoFrame, gray: Gray, t: float) -> bool:
        h, w = gray.shape
        small = cv2.resize(gray, (640, round(h * 640 / w)), interpolation=cv2.INTER_AREA)
        fg = self.sub.apply(small)
        _, fg = cv2.threshold(fg, 200, 255, cv2.THRESH_BINARY)
        contours, _ = cv2.findContours(fg, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        return any(cv2.contourArea(c) > self.min_area for c in contours)


class Frigate:
    """Frigate's ImprovedMotionDetector (frigate/motion/improved_motion.py, December 2026) with
    its current defaults: 100 px tall, contrast stretched to the average 4th-96th percentiles
    of the last 50 frames, Gaussian blur (sigma 1, radius 1), difference to a running average
    (alpha 0.01, 0.2 while calibrating) thresholded at 30, dilated, contours over 10 px; the
    average is refreshed only after 10 frames of motion; over 80 % changed recalibrates.
    Frigate runs it at its detect rate (5 fps by default), as here, and uses it only to gate
    its object detector: its "motion" is not a user-facing alert on its own.
    """

    THRESHOLD, CONTOUR_AREA, FRAME_ALPHA, LIGHTNING, HEIGHT = 30, 10, 0.01, 0.8, 100

    def __init__(self) -> None:
        self.avg: NDArray[np.float32] | None = None
        self.contrast = np.zeros((50, 2), np.uint8)
        self.contrast[:, 1] = 255
        self.contrast_index = 0
        self.calibrating = True
        self.motion_frames = 0

    def __call__(self, frame: av.VideoFrame, gray: Gray, t: float) -> bool:
        h, w = gray.shape
        size = (self.HEIGHT * w // h, self.HEIGHT)
        frame = cv2.resize(gray, size, interpolation=cv2.INTER_NEAREST)
        if self.avg is None:
            self.avg = np.zeros((size[1], size[0]), np.float32)
        low = np.percentile(frame, 4).astype(np.uint8)
        high = np.percentile(frame, 96).astype(np.uint8)
        if low < high:
            self.contrast[self.contrast_index] = [low, high]
            self.contrast_index = (self.contrast_index + 1) % len(self.contrast)
            avg_min, avg_max = np.mean(self.contrast, axis=0)
            frame = np.clip(frame, avg_min, avg_max)
            frame = (((frame - avg_min) / (avg_max - avg_min)) * 255).astype(np.uint8)
        # scipy's gaussian_filter(sigma=1, radius=1, mode="reflect") is this 3x3 kernel.
        frame = cv2.GaussianBlur(frame, (3, 3), 1, borderType=cv2.BORDER_REFLECT)
        delta = cv2.absdiff(frame, cv2.convertScaleAbs(self.avg))
        thresh = cv2.threshold(delta, self.THRESHOLD, 255, cv2.THRESH_BINARY)[1]
        thresh = cv2.dilate(thresh, None, iterations=1)  # type: ignore[call-overload]
        contours, _ = cv2.findContours(thresh, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        total = 0.0
        boxes = 0
        for contour in contours:
            area = cv2.contourArea(contour)
            total += area
            if area > self.CONTOUR_AREA:
                boxes += 1
        pct = total / (size[0] * size[1])
        if pct < 0.05 and boxes <= 4:
            self.calibrating = False
        if self.calibrating or pct > self.LIGHTNING:
            self.calibrating = True
        alpha = 0.2 if self.calibrating else self.FRAME_ALPHA
        if boxes:
            self.motion_frames += 1
            if self.motion_frames >= 10:
                cv2.accumulateWeighted(frame, self.avg, alpha)
        else:
            cv2.accumulateWeighted(frame, self.avg, alpha)
            self.motion_frames = 0
        return boxes > 0


DETECTORS: dict[str, Callable[[], Detector]] = {
    "pm_dvr": PmDvr,
    "frame_diff": FrameDiff,
    "mog2": Mog2,
    "frigate": Frigate,
}


# --------------------------------------------------------------------------- scoring


@dataclass
class Score:
    """Accumulated figures of one detector over the whole set."""

    appearances: int = 0
    detected: int = 0
    latencies: list[float] = field(default_factory=list)
    false_alarms: int = 0
    neg_seconds: float = 0.0
    neg_on_seconds: float = 0.0
    cpu: dict[int, float] = field(default_factory=dict)  # by frame height
    video_s: dict[int, float] = field(default_factory=dict)
    fa_by_kind: dict[str, int] = field(default_factory=dict)
    missed: list[str] = field(default_factory=list)
    notifications: int = 0


def score_clip(sc: Score, truth: SceneTruth, flags: list[tuple[float, bool]], clip: Scored) -> None:
    """Add one clip's flags (time, motion) to the detector's score."""
    for iv in truth.intervals:
        sc.appearances += 1
        if any(on and iv.start <= t <= iv.appear + RECALL_WINDOW_S for t, on in flags):
            sc.detected += 1
        else:
            sc.missed.append(f"{clip.path.name}@{iv.appear:.1f}")
        first = next((t for t, on in flags if on and iv.start <= t <= iv.end), None)
        if first is not None:
            sc.latencies.append(max(0.0, first - iv.appear))
    step = 1.0 / ANALYSIS_FPS
    prev_on = False
    sensor_until = -1.0  # the Motion binary_sensor: on until OFF_DELAY_S after the last motion
    for t, on in flags:
        negative = (
            t >= WARMUP_S
            and not truth.present_at(t, margin=0.0)
            and not any(iv.start - BEFORE_S <= t <= iv.end + AFTER_S for iv in truth.intervals)
        )
        if on and t > sensor_until and negative:
            sc.notifications += 1  # the sensor turns on (a motion event opens) for nothing
        if on:
            sensor_until = t + OFF_DELAY_S
        if negative:
            sc.neg_seconds += step
            if on:
                sc.neg_on_seconds += step
                if not prev_on:
                    sc.false_alarms += 1
                    sc.fa_by_kind[clip.kind] = sc.fa_by_kind.get(clip.kind, 0) + 1
        prev_on = on


def summary(sc: Score) -> dict[str, float]:
    """The RESULT figures of one detector."""
    hours = sc.neg_seconds / 3600
    per_min = {h: sc.cpu[h] / (sc.video_s[h] / 60) for h in sc.cpu}
    return {
        "recall": round(sc.detected / max(1, sc.appearances), 4),
        "false_alarms_per_hour": round(sc.false_alarms / hours, 1) if hours else 0.0,
        "notifications_per_hour": round(sc.notifications / hours, 1) if hours else 0.0,
        "negative_on_fraction": round(sc.neg_on_seconds / max(1e-9, sc.neg_seconds), 4),
        "on_negative_pct": round(100 * sc.neg_on_seconds / max(1e-9, sc.neg_seconds), 2),
        "median_latency_s": round(statistics.median(sc.latencies), 2) if sc.latencies else -1.0,
        "cpu_s_per_video_min": round(per_min.get(720, float("nan")), 3),
        "cpu_s_per_video_min_1080p": round(per_min.get(1080, float("nan")), 3),
        "cpu_s_per_video_min_360p": round(per_min.get(360, float("nan")), 3),
        "false_alarms": sc.false_alarms,
        "appearances": sc.appearances,
    }


# --------------------------------------------------------------------------- running


def ensure_clip(clip: Clip) -> SceneTruth:
    """Generate the clip unless it is cached."""
    truth = load_truth(clip.path)
    if truth is None:
        t0 = time.monotonic()
        truth = make_scene(
            clip.kind,
            clip.path,
            clip.width,
            clip.height,
            clip.fps,
            clip.seconds,
            clip.seed,
            sensor_noise=clip.sensor_noise,
        )
        print(f"  generated {clip.path.name} in {time.monotonic() - t0:.0f} s", flush=True)
    return truth


def run_clip(
    clip: Scored,
    truth: SceneTruth,
    scores: dict[str, Score],
    detectors: dict[str, Callable[[], Detector]] | None = None,
) -> None:
    """Decode once, feed every analysed frame to every detector, score each."""
    dets = {name: make() for name, make in (detectors or DETECTORS).items()}
    flags: dict[str, list[tuple[float, bool]]] = {name: [] for name in dets}
    cpu = dict.fromkeys(dets, 0.0)
    next_due = 0.0
    with av.open(str(clip.path)) as container:
        stream = container.streams.video[0]
        stream.thread_count = 1  # no decoder threads running while a detector is timed
        for frame in container.decode(stream):
            t = float(frame.time or 0.0)
            if t < next_due - 1e-3:
                continue
            next_due += 1.0 / ANALYSIS_FPS
            gray = frame.to_ndarray(format="gray")
            for name, det in dets.items():
                c0 = time.process_time()
                on = det(frame, gray, t)
                cpu[name] += time.process_time() - c0
                flags[name].append((t, on))
    for name in dets:
        sc = scores[name]
        score_clip(sc, truth, flags[name], clip)
        sc.cpu[clip.height] = sc.cpu.get(clip.height, 0.0) + cpu[name]
        sc.video_s[clip.height] = sc.video_s.get(clip.height, 0.0) + truth.seconds


def decode_cost(path: Path, keyframes_only: bool) -> float:
    """CPU seconds per video minute to decode a clip (all frames or keyframes only)."""
    c0 = time.process_time()
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        if keyframes_only:
            stream.codec_context.skip_frame = "NONKEY"
        for _ in container.decode(stream):
            pass
        seconds = float((stream.duration or 0) * (stream.time_base or 0)) or 60.0
    return (time.process_time() - c0) / (seconds / 60.0)


def score_set(
    name: str, clips: list[tuple[Scored, SceneTruth]], detectors: dict[str, Callable[[], Detector]]
) -> dict[str, Score]:
    """Run every detector over one set of clips."""
    scores = {det: Score() for det in detectors}
    t0 = time.monotonic()
    for clip, truth in clips:
        run_clip(clip, truth, scores, detectors)
        fa = {n: s.fa_by_kind.get(clip.kind, 0) for n, s in scores.items()}
        print(
            f"  [{name}] {clip.path.name:52s} objects={len(truth.intervals):2d} false alarms {fa}",
            flush=True,
        )
    print(f"  [{name}] scored in {time.monotonic() - t0:.0f} s wall", flush=True)
    return scores


def print_table(title: str, scores: dict[str, Score], res: dict[str, dict[str, float]]) -> None:
    ours = scores["pm_dvr"]
    print(
        f"\n{title}: {len(ours.video_s) and sum(ours.video_s.values()) / 60:.1f} min of video, "
        f"{ours.appearances} object appearances, {ours.neg_seconds / 60:.1f} min of negative "
        f"time, analysis at {ANALYSIS_FPS:g} fps"
    )
    head = (
        f"{'detector':12s} {'recall':>7s} {'FA/h':>8s} {'notif/h':>8s} {'on%':>6s} "
        f"{'lat s':>6s} {'cpu720':>7s} {'cpu1080':>7s}"
    )
    print(head)
    print("-" * len(head))
    for name, r in res.items():
        print(
            f"{name:12s} {r['recall']:7.3f} {r['false_alarms_per_hour']:8.1f} "
            f"{r['notifications_per_hour']:8.1f} {r['on_negative_pct']:6.2f} "
            f"{r['median_latency_s']:6.2f} {r['cpu_s_per_video_min']:7.3f} "
            f"{r['cpu_s_per_video_min_1080p']:7.3f}"
        )
    for name, sc in scores.items():
        print(f"  false alarms by kind, {name:10s} {dict(sorted(sc.fa_by_kind.items()))}")
    if ours.missed:
        print(f"  pm_dvr missed: {ours.missed}")


SUB_W, SUB_H = 640, 360


def substream(clip: Clip) -> Footage:
    """The clip as a camera's 640x360 sub-stream would carry it (same scene, re-encoded at the
    sub-stream's size and bitrate); cached next to the clip, and made again when the clip was
    rendered after it (a stale sub-stream would be scored against the new clip's truth)."""
    path = OUT / "sub" / clip.path.name
    if not path.exists() or path.stat().st_mtime < clip.path.stat().st_mtime:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".part.mp4")
        out, stream = open_encoder(
            tmp, SUB_W, SUB_H, clip.fps, default_kbps(SUB_W, SUB_H, clip.fps)
        )
        with av.open(str(clip.path)) as src, out:
            for i, frame in enumerate(src.decode(video=0)):
                small = frame.reformat(width=SUB_W, height=SUB_H, format="yuv420p")
                small.pts, small.time_base = i, Fraction(1, clip.fps)
                out.mux(stream.encode(small))
            out.mux(stream.encode(None))
        tmp.rename(path)
    return Footage(path, SUB_H, clip.kind)


def development_set(quick: bool) -> list[tuple[Scored, SceneTruth]]:
    clips = QUICK_SET if quick else FULL_SET
    return [(clip, ensure_clip(clip)) for clip in clips]


def heldout_set(quick: bool) -> list[tuple[Scored, SceneTruth]]:
    """The held-out set: another generator and real footage. Never tune on it."""
    from tests.rig import heldout

    specs = heldout.HELDOUT_SET[::3] if quick else heldout.HELDOUT_SET
    clips: list[tuple[Scored, SceneTruth]] = [
        (spec, heldout.ensure_heldout(spec)) for spec in specs
    ]
    for path, truth in heldout.real_footage():
        clips.append((Footage(path, truth.height, f"real:{path.stem}"), truth))
    return clips


def fresh_set(quick: bool) -> list[tuple[Scored, SceneTruth]]:
    """The fresh held-out set: a third generator, composited from real footage. Never tune on it."""
    from tests.rig import composite

    specs = composite.COMPOSITE_SET[::3] if quick else composite.COMPOSITE_SET
    return [(spec, composite.ensure_composite(spec)) for spec in specs]


def tune_mog2(clips: list[tuple[Scored, SceneTruth]]) -> None:
    """Pick MOG2's parameters on the development set: the fewest false alarms at the best
    recall. Prints the table; the chosen values go into Mog2's defaults by hand."""
    grid = [(var, area) for var in (16, 25, 40, 64) for area in (100, 300, 1000)]
    detectors: dict[str, Callable[[], Detector]] = {
        f"v{var}_a{area}": functools.partial(Mog2, var, area) for var, area in grid
    }
    scores = score_set("tune", clips, detectors)
    ranked = sorted(
        ((summary(sc), name) for name, sc in scores.items()),
        key=lambda item: (-item[0]["recall"], item[0]["false_alarms_per_hour"]),
    )
    for result, name in ranked:
        print(f"  {name:10s} recall {result['recall']:.3f} FA/h {result['false_alarms_per_hour']}")


def main() -> None:
    cv2.setNumThreads(1)  # CPU is measured per call: keep OpenCV's work on this thread
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sets")
    parser.add_argument(
        "--set", choices=("dev", "heldout", "fresh", "all", "screens"), default="all"
    )
    parser.add_argument("--tune-mog2", action="store_true", help="tune MOG2 on the dev set")
    args = parser.parse_args()
    dev = development_set(args.quick)
    if args.tune_mog2:
        tune_mog2(dev)
        return
    results: dict[str, dict[str, dict[str, float]]] = {}
    if args.set in ("dev", "all"):
        scores = score_set("dev", dev, DETECTORS)
        results["dev"] = {name: summary(sc) for name, sc in scores.items()}
        print_table("Development set (scenes.py; tuned on)", scores, results["dev"])
        # The worker can analyse a camera's sub-stream instead: the same scenes at 640x360.
        subs: list[tuple[Scored, SceneTruth]] = [
            (substream(clip), truth) for clip, truth in dev if isinstance(clip, Clip)
        ]
        sub_scores = score_set("dev 640x360", subs, {"pm_dvr": PmDvr})
        results["substream"] = {"pm_dvr": summary(sub_scores["pm_dvr"])}
        print_table(
            "Development set as a 640x360 sub-stream (pm_dvr only)",
            sub_scores,
            results["substream"],
        )
    if args.set in ("heldout", "all"):
        scores = score_set("held-out", heldout_set(args.quick), DETECTORS)
        results["heldout"] = {name: summary(sc) for name, sc in scores.items()}
        print_table(
            "Held-out set (heldout.py and real footage; never tuned on)", scores, results["heldout"]
        )
    if args.set in ("fresh", "all"):
        scores = score_set("fresh", fresh_set(args.quick), DETECTORS)
        results["fresh"] = {name: summary(sc) for name, sc in scores.items()}
        print_table(
            "Fresh held-out set (composite.py: real footage composited; never tuned on)",
            scores,
            results["fresh"],
        )

    if args.set == "screens":
        results["screens"] = {}
        for name, specs in SCREENS.items():
            clips: list[tuple[Scored, SceneTruth]] = [(c, ensure_clip(c)) for c in specs]
            scores = score_set(name, clips, DETECTORS)
            results["screens"][name] = {det: summary(sc) for det, sc in scores.items()}
            print_table(f"Development-side screen {name!r}", scores, results["screens"][name])

    sub = Clip("object+clock", 640, 360, 25, 60, 99)
    ensure_clip(sub)
    dec720 = next(c for c in FULL_SET if c.height == 720).path
    dec1080 = next(c for c in FULL_SET if c.height == 1080).path
    decode = {
        "decode_720p_all": round(decode_cost(dec720, False), 3),
        "decode_720p_keyframes": round(decode_cost(dec720, True), 3),
        "decode_360p_all": round(decode_cost(sub.path, False), 3),
    }
    if dec1080.exists():
        decode["decode_1080p_all"] = round(decode_cost(dec1080, False), 3)
        decode["decode_1080p_keyframes"] = round(decode_cost(dec1080, True), 3)
    print("\ndecode CPU s per video minute:", decode)
    keys = (
        "recall",
        "false_alarms_per_hour",
        "on_negative_pct",
        "median_latency_s",
        "cpu_s_per_video_min",
        "notifications_per_hour",
    )
    result: dict[str, object] = {}
    if "dev" in results:
        result["pm_dvr"] = results["dev"]["pm_dvr"]
        sub = results["substream"]["pm_dvr"]
        result["pm_dvr_substream"] = {k: sub[k] for k in keys} | {
            "cpu_s_per_video_min": sub["cpu_s_per_video_min_360p"]
        }
    if "heldout" in results:
        held = results["heldout"]
        result["pm_dvr_heldout"] = {k: held["pm_dvr"][k] for k in keys}
        for name in DETECTORS:
            if name != "pm_dvr":
                result[name] = {k: held[name][k] for k in keys}
        if "dev" in results:
            result["recall_drop"] = round(
                results["dev"]["pm_dvr"]["recall"] - held["pm_dvr"]["recall"], 4
            )
    if "fresh" in results:
        fresh = results["fresh"]
        result["pm_dvr_fresh"] = {k: fresh["pm_dvr"][k] for k in keys}
        result["anchors_fresh"] = {
            name: {k: fresh[name][k] for k in keys} for name in DETECTORS if name != "pm_dvr"
        }
        if "dev" in results:
            result["recall_drop_fresh"] = round(
                results["dev"]["pm_dvr"]["recall"] - fresh["pm_dvr"]["recall"], 4
            )
    if "screens" in results:
        result["screens"] = {
            name: {
                det: {k: res[det][k] for k in (*keys, "false_alarms", "appearances")} for det in res
            }
            for name, res in results["screens"].items()
        }
    result["decode_cpu_s_per_video_min"] = decode
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()

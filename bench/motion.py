"""Benchmark pm_dvr's motion detector against three well-known anchors on labelled clips.

Run from the repo root: ``.venv/bin/python bench/motion.py`` (``--quick`` for a smaller set).
Clips come from tests/rig/scenes.py and are cached under bench/out/ (gitignored).

All detectors see the same decoded frames (the luma plane at full resolution), sampled at the
same 5 fps; each does its own scaling inside the timed call, so the CPU figures cover analysis
only (decoding excluded). Scoring (times are clip seconds):

- recall: an object appearance (the moment half of the person is visible) counts as detected when
  the detector's per-frame motion flag is on at some analysed frame between the object's first
  visible frame and 1 s after its appearance;
- latency: from appearance to the first "on" frame while the object is visible (0 if earlier);
- false alarm: a rising edge of the motion flag outside every object interval (widened by 0.5 s
  before and 1 s after, for detectors that lag by a frame); counted from 3 s into each clip (the
  scene generator's warm-up, before which no object appears);
- negative time: all analysed time outside the widened intervals, after the warm-up; "on" is the
  fraction of it with the flag set.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
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
    to_analysis,
)
from tests.rig.scenes import WARMUP_S, SceneTruth, load_truth, make_scene  # noqa: E402

OUT = ROOT / "bench" / "out"
ANALYSIS_FPS = 5.0
RECALL_WINDOW_S = 1.0
BEFORE_S, AFTER_S = 0.5, 1.0

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

    @property
    def path(self) -> Path:
        name = self.kind.replace("+", "-")
        return OUT / f"{name}_{self.height}p{self.fps}_{self.seconds}s_s{self.seed}.mp4"


P720, P1080 = (1280, 720), (1920, 1080)
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
]
QUICK_SET = [c for c in FULL_SET if c.kind in ("object", "small_object", "rain", "clock")]


# --------------------------------------------------------------------------- detectors


class Detector(Protocol):
    """A detector fed full-resolution gray frames at the analysis rate."""

    def __call__(self, gray: Gray, t: float) -> bool: ...


class PmDvr:
    """pm_dvr's detector; scaling to its analysis size is part of the timed call."""

    def __init__(self) -> None:
        self.det = MotionDetector(MotionConfig(analysis_fps=ANALYSIS_FPS))

    def __call__(self, gray: Gray, t: float) -> bool:
        return self.det.process(to_analysis(gray), t).motion


class FrameDiff:
    """Naive: blur 21, difference to the previous frame, threshold 25, dilate, contour > 500 px."""

    def __init__(self) -> None:
        self.prev: Gray | None = None

    def __call__(self, gray: Gray, t: float) -> bool:
        g = np.asarray(cv2.GaussianBlur(gray, (21, 21), 0), np.uint8)
        prev, self.prev = self.prev, g
        if prev is None:
            return False
        _, th = cv2.threshold(cv2.absdiff(prev, g), 25, 255, cv2.THRESH_BINARY)
        th = cv2.dilate(th, None, iterations=2)  # type: ignore[call-overload]
        contours, _ = cv2.findContours(th, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        return any(cv2.contourArea(c) > 500 for c in contours)


class Mog2:
    """OpenCV MOG2 (history 500, varThreshold 16) at 640 px wide; shadows dropped; blob > 100 px."""

    def __init__(self) -> None:
        self.sub = cv2.createBackgroundSubtractorMOG2(history=500, varThreshold=16)

    def __call__(self, gray: Gray, t: float) -> bool:
        h, w = gray.shape
        small = cv2.resize(gray, (640, round(h * 640 / w)), interpolation=cv2.INTER_AREA)
        fg = self.sub.apply(small)
        _, fg = cv2.threshold(fg, 200, 255, cv2.THRESH_BINARY)
        contours, _ = cv2.findContours(fg, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        return any(cv2.contourArea(c) > 100 for c in contours)


class FrigateStyle:
    """Running average at 100 px tall: blur 3, alpha 0.01, threshold 30, contour > 10 px,
    reset the average when more than 80 % of the frame changed."""

    def __init__(self) -> None:
        self.avg: NDArray[np.float32] | None = None

    def __call__(self, gray: Gray, t: float) -> bool:
        h, w = gray.shape
        small = cv2.resize(gray, (round(w * 100 / h), 100), interpolation=cv2.INTER_AREA)
        small = cv2.GaussianBlur(small, (3, 3), 0)
        if self.avg is None:
            self.avg = small.astype(np.float32)
            return False
        diff = cv2.absdiff(small, cv2.convertScaleAbs(self.avg))
        cv2.accumulateWeighted(small, self.avg, 0.01)
        _, th = cv2.threshold(diff, 30, 255, cv2.THRESH_BINARY)
        th = cv2.dilate(th, None, iterations=1)  # type: ignore[call-overload]
        if cv2.countNonZero(th) > 0.8 * th.size:
            self.avg = small.astype(np.float32)
            return False
        contours, _ = cv2.findContours(th, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        return any(cv2.contourArea(c) > 10 for c in contours)


DETECTORS: dict[str, type] = {
    "pm_dvr": PmDvr,
    "frame_diff": FrameDiff,
    "mog2": Mog2,
    "frigate_style": FrigateStyle,
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


def score_clip(sc: Score, truth: SceneTruth, flags: list[tuple[float, bool]], clip: Clip) -> None:
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
    for t, on in flags:
        negative = (
            t >= WARMUP_S
            and not truth.present_at(t, margin=0.0)
            and not any(iv.start - BEFORE_S <= t <= iv.end + AFTER_S for iv in truth.intervals)
        )
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
        "negative_on_fraction": round(sc.neg_on_seconds / max(1e-9, sc.neg_seconds), 4),
        "median_latency_s": round(statistics.median(sc.latencies), 2) if sc.latencies else -1.0,
        "cpu_s_per_video_min": round(per_min.get(720, float("nan")), 3),
        "cpu_s_per_video_min_1080p": round(per_min.get(1080, float("nan")), 3),
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
            clip.kind, clip.path, clip.width, clip.height, clip.fps, clip.seconds, clip.seed
        )
        print(f"  generated {clip.path.name} in {time.monotonic() - t0:.0f} s", flush=True)
    return truth


def run_clip(clip: Clip, truth: SceneTruth, scores: dict[str, Score]) -> None:
    """Decode once, feed every analysed frame to every detector, score each."""
    dets = {name: cls() for name, cls in DETECTORS.items()}
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
                on = det(gray, t)
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


def main() -> None:
    cv2.setNumThreads(1)  # CPU is measured per call: keep OpenCV's work on this thread
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 4-clip subset")
    args = parser.parse_args()
    clips = QUICK_SET if args.quick else FULL_SET
    print(f"preparing {len(clips)} clips under {OUT} ...", flush=True)
    truths = [ensure_clip(c) for c in clips]
    sub = Clip("object+clock", 640, 360, 25, 60, 99)
    sub_truth = ensure_clip(sub)
    del sub_truth

    scores = {name: Score() for name in DETECTORS}
    t0 = time.monotonic()
    for clip, truth in zip(clips, truths, strict=True):
        run_clip(clip, truth, scores)
        fa = {n: s.fa_by_kind.get(clip.kind, 0) for n, s in scores.items()}
        print(
            f"  {clip.path.name:48s} objects={len(truth.intervals):2d} false alarms {fa}",
            flush=True,
        )
    print(f"scored in {time.monotonic() - t0:.0f} s wall")

    dec720 = next(c for c in clips if c.height == 720).path
    dec1080 = next((c for c in clips if c.height == 1080), None)
    decode = {
        "decode_720p_all": round(decode_cost(dec720, False), 3),
        "decode_720p_keyframes": round(decode_cost(dec720, True), 3),
        "decode_360p_all": round(decode_cost(sub.path, False), 3),
    }
    if dec1080 is not None:
        decode["decode_1080p_all"] = round(decode_cost(dec1080.path, False), 3)
        decode["decode_1080p_keyframes"] = round(decode_cost(dec1080.path, True), 3)

    res = {name: summary(sc) for name, sc in scores.items()}
    neg_min = scores["pm_dvr"].neg_seconds / 60
    print()
    print(
        f"{len(clips)} clips, {res['pm_dvr']['appearances']} object appearances, "
        f"{neg_min:.1f} min of negative time, analysis at {ANALYSIS_FPS:g} fps"
    )
    head = (
        f"{'detector':14s} {'recall':>7s} {'FA/h':>8s} {'on%':>6s} {'lat s':>6s}"
        f" {'cpu720':>7s} {'cpu1080':>7s}"
    )
    print(head)
    print("-" * len(head))
    for name, r in res.items():
        print(
            f"{name:14s} {r['recall']:7.3f} {r['false_alarms_per_hour']:8.1f} "
            f"{100 * r['negative_on_fraction']:6.2f} {r['median_latency_s']:6.2f} "
            f"{r['cpu_s_per_video_min']:7.3f} {r['cpu_s_per_video_min_1080p']:7.3f}"
        )
    ours = res["pm_dvr"]
    print("\npm_dvr vs anchors (anchor / pm_dvr; >1 means pm_dvr is better, except recall):")
    for name, r in res.items():
        if name == "pm_dvr":
            continue
        fa_ratio = (
            r["false_alarms_per_hour"] / ours["false_alarms_per_hour"]
            if ours["false_alarms_per_hour"]
            else float("inf")
        )
        print(
            f"  {name:14s} recall {ours['recall']:.3f} vs {r['recall']:.3f}; "
            f"false alarms x{fa_ratio:.1f}; "
            f"CPU x{r['cpu_s_per_video_min'] / ours['cpu_s_per_video_min']:.2f}"
        )
    print("\nfalse alarms by clip kind:")
    for name, sc in scores.items():
        print(f"  {name:14s} {dict(sorted(sc.fa_by_kind.items()))}")
    if scores["pm_dvr"].missed:
        print(f"pm_dvr missed: {scores['pm_dvr'].missed}")
    print("\ndecode CPU s per video minute:", decode)
    print("RESULT " + json.dumps({**res, "decode_cpu_s_per_video_min": decode}))


if __name__ == "__main__":
    main()

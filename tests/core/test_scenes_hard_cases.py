"""The hard development scene kinds render, decode and carry consistent ground truth."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
from numpy.typing import NDArray
import pytest

from tests.rig.scenes import (
    HARD_KINDS,
    HARD_POSITIVE_KINDS,
    HORIZON,
    KINDS,
    WARMUP_S,
    SceneTruth,
    _Approacher,
    _background,
    _plan_approachers,
    _Swarm,
    make_scene,
)

W, H, FPS = 320, 180, 15
SECONDS = {  # long enough for each kind to show what it is about
    "cloud_shadows": 12,
    "storm_clouds": 12,
    "ir_particles": 8,
    "headlights": 14,
    "fast_vehicle": 16,
    "standing": 30,
    "approach": 30,
    "ir_snowstorm": 8,
    "ir_insects": 12,
    "near_vehicle": 16,
    "headlight_shadows": 14,
}

Gray = NDArray[np.uint8]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[SceneTruth, Gray]]:
    """Each hard kind once: its truth and its decoded luma frames."""
    root: Path = tmp_path_factory.mktemp("hard")
    out: dict[str, tuple[SceneTruth, Gray]] = {}
    for kind, seconds in SECONDS.items():
        truth = make_scene(kind, root / f"{kind}.mp4", W, H, FPS, seconds, seed=22)
        with av.open(truth.path) as container:
            frames = [f.to_ndarray(format="gray") for f in container.decode(video=0)]
        out[kind] = (truth, np.asarray(frames, np.uint8))
    return out


def test_the_original_kinds_are_unchanged() -> None:
    assert set(HARD_KINDS).isdisjoint(KINDS)
    assert len(KINDS) == 10


@pytest.mark.parametrize("kind", HARD_KINDS)
def test_truth_matches_the_frames(kind: str, rendered: dict[str, tuple[SceneTruth, Gray]]) -> None:
    truth, frames = rendered[kind]
    assert len(frames) == len(truth.present) == SECONDS[kind] * FPS
    if kind not in HARD_POSITIVE_KINDS:
        assert not truth.intervals
        assert not any(truth.present)
        return
    assert truth.intervals
    for iv in truth.intervals:
        assert WARMUP_S <= iv.start <= iv.appear <= iv.end
        assert truth.present[round(iv.start * FPS)]
        assert truth.present[round(iv.end * FPS)]
        x, y, w, h = iv.box
        assert min(x, y) >= 0
        assert max(x + w, y + h) <= 1.0 + 1e-6
    for i, on in enumerate(truth.present):
        if on:
            assert truth.present_at(i / FPS), f"frame {i} present outside every interval"


@pytest.mark.parametrize(
    ("kind", "small", "heights"),
    [("fast_vehicle", True, (0.0, 0.07)), ("near_vehicle", False, (0.15, 0.36))],
)
def test_vehicles_cross_within_3_s(
    rendered: dict[str, tuple[SceneTruth, Gray]],
    kind: str,
    small: bool,
    heights: tuple[float, float],
) -> None:
    """Far cars are 3-6 % of the frame's height and labelled small; near ones 15-35 %."""
    truth, _ = rendered[kind]
    assert len(truth.intervals) >= 2
    for iv in truth.intervals:
        assert iv.small is small
        assert heights[0] <= iv.box[3] <= heights[1]
        if iv.end < truth.seconds - 0.5:  # not cut off by the end of the clip
            assert iv.end - iv.start <= 3.1
            assert iv.box[2] > 0.9  # it crossed the whole frame


def test_a_standing_person_stays_present_while_still(
    rendered: dict[str, tuple[SceneTruth, Gray]],
) -> None:
    truth, frames = rendered["standing"]
    present = np.array(truth.present)
    # the longest run of presence: walking in, 10-20 s still, walking on
    best, run, end = 0, 0, 0
    for i, on in enumerate(present):
        run = run + 1 if on else 0
        if run > best:
            best, end = run, i
    assert best / FPS >= 10.0
    start = end - best + 1
    mid = (start + end) // 2  # always inside the still phase (walks take under ~6 s)
    iv = next(iv for iv in truth.intervals if iv.start <= mid / FPS <= iv.end)
    x, y, w, h = iv.box
    x0, x1 = int(x * W), int((x + w) * W)
    y0, y1 = int(y * H), int((y + h) * H)
    a = frames[mid - 2 * FPS, y0:y1, x0:x1].astype(np.int16)
    b = frames[mid + 2 * FPS, y0:y1, x0:x1].astype(np.int16)
    walking = frames[start + FPS // 2, y0:y1, x0:x1].astype(np.int16)
    still = float(np.abs(a - b).mean())
    assert still < 4.0, still  # only noise and a faint sway
    assert still < 0.5 * float(np.abs(walking - a).mean())


def test_approachers_grow_and_leavers_shrink() -> None:
    rng = np.random.default_rng(5)
    lay = _background(np.random.default_rng(1), W, H)
    actors = _plan_approachers(rng, lay, W, H, 60.0)
    assert {a.away for a in actors if isinstance(a, _Approacher)} == {False, True}
    for ac in actors:
        assert isinstance(ac, _Approacher)
        heights = []
        for k in range(40):
            t = ac.wk.t0 + ac.total_s * (0.05 + 0.9 * k / 39)
            vis, (_, y0, _, y1) = ac.draw(lay.bg.copy(), lay, t)
            if vis > 0.5 and y1 < H - 1:  # whole and not cut by the bottom edge
                heights.append(y1 - y0)
        assert len(heights) > 10
        grows = heights[-1] > 2 * heights[0]
        shrinks = heights[0] > 2 * heights[-1]
        assert shrinks if ac.away else grows, heights


def test_the_nuisances_are_there(rendered: dict[str, tuple[SceneTruth, Gray]]) -> None:
    _, clouds = rendered["cloud_shadows"]
    ground = clouds[:, int(HORIZON * H) :].reshape(len(clouds), -1).mean(axis=1)
    assert ground.max() / ground.min() > 1.15  # the sun went in or came out
    _, particles = rendered["ir_particles"]
    med = np.median(particles[::4], axis=0).astype(np.int16)
    blobs = ((particles.astype(np.int16) - med) > 60).sum(axis=(1, 2))
    assert (blobs > 20).mean() > 0.05
    _, lights = rendered["headlights"]
    med = np.median(lights[::4], axis=0).astype(np.int16)
    lit = ((lights.astype(np.int16) - med) > 40).mean(axis=(1, 2))
    assert lit.max() > 0.01
    _, striped = rendered["headlight_shadows"]
    med = np.median(striped[::4], axis=0).astype(np.int16)
    lit_now = (striped.astype(np.int16) - med) > 25
    frame, row = np.unravel_index(int(np.argmax(lit_now.sum(axis=2))), lit_now.shape[:2])
    runs = np.count_nonzero(np.diff(lit_now[frame, row].astype(np.int8)) == 1)
    assert runs >= 3  # the brightest row crosses several lit stripes, with shadow between


def test_ir_swarms_show_bright_under_a_hot_spot(
    rendered: dict[str, tuple[SceneTruth, Gray]],
) -> None:
    """Snow and moths show up bright under the lamp's uneven light ..."""
    for kind in ("ir_snowstorm", "ir_insects"):
        _, frames = rendered[kind]
        med = np.median(frames[::3], axis=0).astype(np.int16)
        lit = ((frames.astype(np.int16) - med) > 90).sum(axis=(1, 2))
        assert (lit > 4).mean() > 0.3, kind  # something bright in view much of the time
        h = frames.shape[1]
        hot = float(med[h // 2 :, W // 3 : 2 * W // 3].mean())
        c = W // 6
        corners = float(np.concatenate([med[: h // 6, :c], med[: h // 6, W - c :]]).mean())
        assert hot > 1.2 * corners, kind


@pytest.mark.parametrize("kind", ["snow", "insects"])
def test_ir_swarm_particles_live_for_seconds(kind: str) -> None:
    """... and each particle stays for seconds, not frames (``ir_particles`` come and go)."""
    swarm = _Swarm(np.random.default_rng(3), W, H, kind)
    frame = np.zeros((H, W, 3), np.uint8)
    lives: list[float] = []
    for _ in range(20 * FPS):
        before = {id(m): m for m in swarm.live}
        swarm.apply(frame, 1.0 / FPS)
        after = {id(m) for m in swarm.live}
        lives += [m.age for key, m in before.items() if key not in after]
    assert len(lives) >= 5
    assert float(np.median(lives)) >= 1.5

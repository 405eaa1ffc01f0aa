"""The detector on the field's hard cases, over several seeds and from both scene generators.

tests/rig/scenes.py is the generator the detector is tuned on; tests/rig/heldout.py is another
design (a 3-D camera model, other textures, light and motion). Seeds here are none of the
benchmark's, so neither set's clips are reused.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from custom_components.pm_dvr.core.motion import MotionResult
from tests.core.test_motion import RECALL_WINDOW_S, run
from tests.rig.heldout import HeldoutClip, render_heldout
from tests.rig.scenes import WARMUP_S, SceneTruth, make_scene

W, H, FPS, SECONDS = 640, 360, 15, 20
MAX_ON = 0.03  # of the analysed frames after the warm-up: the bench's target is 2 %


def _on_fraction(results: list[MotionResult], truth: SceneTruth) -> float:
    """How much of the negative time the detector reports motion: after the warm-up, and
    outside each object interval widened as bench/motion.py does (0.5 s before, 1 s after)."""
    negative = [
        r
        for r in results
        if r.timestamp >= WARMUP_S
        and not any(iv.start - 0.5 <= r.timestamp <= iv.end + 1.0 for iv in truth.intervals)
    ]
    return sum(r.motion for r in negative) / max(1, len(negative))


def _caught(results: list[MotionResult], truth: SceneTruth) -> list[bool]:
    """Per object appearance: was motion reported within RECALL_WINDOW_S of it?"""
    return [
        any(r.motion and iv.start <= r.timestamp <= iv.appear + RECALL_WINDOW_S for r in results)
        for iv in truth.intervals
    ]


def _scene(tmp_path: Path, kind: str, seed: int) -> tuple[list[MotionResult], SceneTruth]:
    truth = make_scene(kind, tmp_path / "clip.mp4", W, H, FPS, SECONDS, seed)
    return run(str(tmp_path / "clip.mp4")), truth


@pytest.mark.parametrize(
    ("kind", "seed"),
    [
        ("cloud_shadows", 101),
        ("cloud_shadows", 102),
        ("storm_clouds", 101),
        ("storm_clouds", 102),
        ("headlights+night_noise", 101),
        ("headlights+night_noise", 102),
        ("ir_particles", 101),
        ("ir_particles", 102),
        ("ir_snowstorm", 101),
        ("ir_snowstorm", 102),
        ("ir_insects", 101),
        ("ir_insects", 102),
    ],
)
def test_light_shade_and_lens_particles_stay_quiet(tmp_path: Path, kind: str, seed: int) -> None:
    """Drifting and storm-driven cloud shadows, sun bursts, sweeping headlights, flakes at the
    IR lamp, snowstorms and moths circling a light for seconds."""
    results, truth = _scene(tmp_path, kind, seed)
    assert _on_fraction(results, truth) <= MAX_ON


@pytest.mark.parametrize(("fps", "seed"), [(15, 50), (25, 53)])
def test_small_noisy_night_pictures_stay_quiet(tmp_path: Path, fps: int, seed: int) -> None:
    """A 320x180 night picture is analysed at its own size: no downscale averages its noise
    away, and the noise's blobs on the half-size averages must not chain into a track."""
    truth = make_scene("night_noise", tmp_path / "clip.mp4", 320, 180, fps, 60, seed)
    results = run(str(tmp_path / "clip.mp4"))
    assert _on_fraction(results, truth) == 0.0


@pytest.mark.parametrize("seed", [903, 905])
def test_the_ir_switch_in_a_noisy_picture_stays_quiet(tmp_path: Path, seed: int) -> None:
    """The IR filter switching at dusk: the exposure settles for a second, changing the whole
    picture a little every frame. That faint change must not pass for a slow figure (each seed
    reported motion there before weak evidence waited for the exposure to settle)."""
    results, truth = _scene(tmp_path, "ir_switch+night_noise", seed)
    assert _on_fraction(results, truth) == 0.0


@pytest.mark.parametrize("seed", [1302, 1305])
def test_headlights_in_a_clean_night_picture_stay_quiet(tmp_path: Path, seed: int) -> None:
    """A good sensor at night (no noise to smooth, so no night rules): a headlight's pool
    sweeping the ground leaves its print in the background, which learns the lit ground in
    seconds; a change must also stand out from the still background (each seed reported motion
    in quiet time before)."""
    truth = make_scene(
        "headlights", tmp_path / "clip.mp4", W, H, FPS, SECONDS, seed, sensor_noise=3.0
    )
    results = run(str(tmp_path / "clip.mp4"))
    assert _on_fraction(results, truth) == 0.0


def _reported_in_view(results: list[MotionResult], truth: SceneTruth) -> list[bool]:
    """Per object: was motion reported at any time while it was in view (an event recorded)?"""
    return [
        any(r.motion and iv.start <= r.timestamp <= iv.end for r in results)
        for iv in truth.intervals
    ]


@pytest.mark.parametrize("seed", [207, 211, 212])
def test_walkers_among_moths_at_the_ir_lamp_are_reported(tmp_path: Path, seed: int) -> None:
    """At night the noise and the box filter blur a walker's edges like a moth's: soft blobs
    are followed, not dropped (seeds 207 and 211 each had a walker never reported before)."""
    results, truth = _scene(tmp_path, "object+ir_insects", seed)
    reported = _reported_in_view(results, truth)
    assert len(reported) >= 2
    assert all(reported), reported
    assert _on_fraction(results, truth) <= MAX_ON


@pytest.mark.parametrize("seed", [103, 104])
def test_fast_far_cars_are_caught(tmp_path: Path, seed: int) -> None:
    """Cars crossing far away in 1-3 s move several times their length per analysed frame."""
    results, truth = _scene(tmp_path, "fast_vehicle", seed)
    caught = _caught(results, truth)
    assert len(caught) >= 3
    assert sum(caught) >= len(caught) - 1, caught


@pytest.mark.parametrize("seed", [1601, 1602, 1605])
def test_fast_far_cars_in_rain_are_caught(tmp_path: Path, seed: int) -> None:
    """In rain a track must be followed longer, and a far car crosses in under 2 s: it must
    lose no frame to the streaks falling across it or to a shed it passes behind (each seed
    had at most one car reported in time).

    Not solved: a far car in rain is still missed as often as caught (issue #15), so half of
    them is the bar.
    """
    results, truth = _scene(tmp_path, "fast_vehicle+rain", seed)
    caught = _caught(results, truth)
    assert len(caught) >= 3
    assert 2 * sum(caught) >= len(caught), caught
    assert _on_fraction(results, truth) <= MAX_ON


@pytest.mark.parametrize(
    ("kind", "seed"),
    [
        ("near_vehicle", 115),
        ("near_vehicle", 119),
        ("near_vehicle", 125),
        ("near_vehicle+cloud_shadows", 118),
        ("near_vehicle+cloud_shadows", 125),
    ],
)
def test_near_cars_by_day_are_caught(tmp_path: Path, kind: str, seed: int) -> None:
    """A near car of one colour is mostly inside in its box: its edge is read at its outline,
    where it hides the ground (each seed had a car never reported when only the box told)."""
    results, truth = _scene(tmp_path, kind, seed)
    caught = _caught(results, truth)
    assert len(caught) >= 2
    assert all(caught), caught
    assert _on_fraction(results, truth) <= MAX_ON


@pytest.mark.parametrize("seed", [801, 823])
def test_cars_joined_to_a_shadows_edge_are_caught(tmp_path: Path, seed: int) -> None:
    """A car passing a cloud shadow's edge is joined into one blob with the edge's soft
    fragments; the blob is kept for its sharp part (each seed had a car never reported when
    the blob was judged only as a whole)."""
    results, truth = _scene(tmp_path, "near_vehicle+cloud_shadows", seed)
    caught = _caught(results, truth)
    assert len(caught) >= 3
    assert all(caught), caught
    assert _on_fraction(results, truth) <= MAX_ON


@pytest.mark.parametrize(
    ("kind", "seed"),
    [("cloud_shadows", 105), ("cloud_shadows", 106), ("storm_clouds", 107), ("storm_clouds", 108)],
)
def test_people_in_cloud_shade_are_caught(tmp_path: Path, kind: str, seed: int) -> None:
    """Walking in and out of drifting shade, and of crisp, fast, deep storm-cloud shadows.

    Storm shade is not solved: one walker of seed 107's two is never reported (a known miss,
    issue #15), so a storm scene may miss one walker; drifting shade may miss none.
    """
    results, truth = _scene(tmp_path, f"object+{kind}", seed)
    caught = _caught(results, truth)
    assert caught
    allowed_misses = 1 if kind == "storm_clouds" else 0
    assert sum(caught) >= len(caught) - allowed_misses, caught
    assert _on_fraction(results, truth) <= MAX_ON


def _heldout(
    tmp_path: Path, kind: str, scene: str, seed: int
) -> tuple[list[MotionResult], SceneTruth]:
    spec = HeldoutClip(f"t_{seed}", kind, scene, 640, 360, 10, 24, seed, 3.5, 22, 90, 0.1)
    truth = render_heldout(spec, tmp_path / "clip.mp4")
    return run(str(tmp_path / "clip.mp4")), truth


@pytest.mark.parametrize("seed", [7001, 7002])
def test_heldout_design_walkers_are_caught(tmp_path: Path, seed: int) -> None:
    """The other generator: people coming head-on and diagonally, stopping and going."""
    results, truth = _heldout(tmp_path, "walk_headon+walk_diagonal+stop_go", "garden", seed)
    caught = _caught(results, truth)
    assert caught
    assert all(caught), caught


@pytest.mark.parametrize(
    ("kind", "scene", "seed"),
    [
        ("clouds+foliage", "garden", 7003),
        ("headlights", "yard", 7004),
        ("clouds", "street", 7005),
        ("insects+ir_night", "yard", 7006),
        ("snow+ir_night", "garden", 7007),
    ],
)
def test_heldout_design_nuisances_stay_quiet(
    tmp_path: Path, kind: str, scene: str, seed: int
) -> None:
    results, truth = _heldout(tmp_path, kind, scene, seed)
    assert not truth.intervals
    assert _on_fraction(results, truth) <= MAX_ON

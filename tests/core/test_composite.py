"""The composited held-out clips (tests/rig/composite.py): decodable, truthful ground truth.

A walker is rendered over clouds and the same clip without the walker (its nuisances come from
their own random streams, so they are identical): the two differ where and when the truth says a
person is, and nowhere before it says one appears.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
import subprocess

import av
import cv2
import numpy as np
from numpy.typing import NDArray
import pytest

from tests.rig.composite import NUISANCE_TOKENS, CompositeClip, _library, render_composite
from tests.rig.scenes import WARMUP_S, SceneTruth, load_truth

WALKER = CompositeClip("t_walker", "walk_side+clouds", 384, 288, 10, 10.0, 77)
PLATE_ONLY = replace(WALKER, name="t_plate", kind="clouds")
BLOCK_PERSON = 30  # mean luma difference over 8x8 pixels where a person is
BLOCK_NOISE = 8  # ... where nothing is (only a sliver, under 2 % of the walker, before start)
BLOCK_NOISE_OUTSIDE = 20  # ... away from the walker, once x264 spends its bits differently


def _decode(path: Path) -> NDArray[np.uint8]:
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        assert stream.codec_context.name == "h264"
        frames = [f.to_ndarray(format="gray") for f in c.decode(stream)]
    return np.stack(frames)


def _library_or_skip() -> None:
    """The real footage the clips are made of (fetched once, then cached), or skip."""
    try:
        _library()
    except subprocess.CalledProcessError as err:  # pragma: no cover - a machine without apt
        pytest.skip(f"OpenCV's vtest.avi could not be fetched: {err}")


@pytest.fixture(scope="module")
def rendered(
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, tuple[SceneTruth, NDArray[np.uint8]]]:
    _library_or_skip()
    root = tmp_path_factory.mktemp("composite")
    out = {}
    for spec in (WALKER, PLATE_ONLY):
        path = root / f"{spec.name}.mp4"
        truth = render_composite(spec, path)
        assert load_truth(path) == truth
        out[spec.name] = (truth, _decode(path))
    return out


def test_clip_decodes_to_spec(rendered: dict[str, tuple[SceneTruth, NDArray[np.uint8]]]) -> None:
    for spec in (WALKER, PLATE_ONLY):
        truth, frames = rendered[spec.name]
        n = round(spec.seconds * spec.fps)
        assert frames.shape == (n, spec.height, spec.width)
        assert len(truth.present) == n
        for i, on in enumerate(truth.present):
            assert on == truth.present_at(i / spec.fps), f"frame {i}: intervals disagree"


def test_walker_truth(rendered: dict[str, tuple[SceneTruth, NDArray[np.uint8]]]) -> None:
    truth, _frames = rendered[WALKER.name]
    assert truth.positive
    (iv,) = truth.intervals
    assert WARMUP_S <= iv.start <= iv.appear <= iv.end <= WALKER.seconds
    assert iv.end - iv.appear >= 1.0
    x, y, w, h = iv.box
    assert 0 <= x <= x + w <= 1
    assert 0 <= y <= y + h <= 1
    assert not iv.small


def test_walker_is_where_the_truth_says(
    rendered: dict[str, tuple[SceneTruth, NDArray[np.uint8]]],
) -> None:
    truth, with_walker = rendered[WALKER.name]
    _t, without = rendered[PLATE_ONLY.name]
    (iv,) = truth.intervals
    m = 0.03 * WALKER.width  # the contact shadow reaches a little past the body
    x, y, w, h = iv.box
    box = np.zeros((WALKER.height, WALKER.width), bool)
    box[
        max(0, int(y * WALKER.height - m)) : int((y + h) * WALKER.height + m) + 1,
        max(0, int(x * WALKER.width - m)) : int((x + w) * WALKER.width + m) + 1,
    ] = True
    for i in range(len(with_walker)):
        t = i / WALKER.fps
        # 8x8 means of the difference: a person, not the codec's noise
        diff = np.abs(with_walker[i].astype(np.float32) - without[i].astype(np.float32))
        blocks = cv2.blur(diff, (8, 8))
        inside, outside = float(blocks[box].max()), float(blocks[~box].max())
        if t < iv.start:
            assert inside < BLOCK_NOISE, f"frame {i}: the walker is in view before its start"
        elif iv.appear <= t <= iv.end:
            assert inside > BLOCK_PERSON, f"frame {i}: no walker inside the truth box"
        assert outside < BLOCK_NOISE_OUTSIDE, f"frame {i}: changes outside the walker's path"


def test_plate_only_is_negative(rendered: dict[str, tuple[SceneTruth, NDArray[np.uint8]]]) -> None:
    truth, _frames = rendered[PLATE_ONLY.name]
    assert not truth.positive
    assert not any(truth.present)


@pytest.mark.parametrize("nuisance", NUISANCE_TOKENS)
def test_every_nuisance_renders(tmp_path: Path, nuisance: str) -> None:
    """Each nuisance of the fresh held-out set renders (the rain's drops in front of the lens
    once drew from every streak's position at once, and only a cached clip hid it)."""
    _library_or_skip()
    kind = f"{nuisance}+ir_night" if nuisance in {"insects", "headlights"} else nuisance
    spec = CompositeClip(f"t_{nuisance}", kind, 192, 144, 5, 4.0, 78)
    truth = render_composite(spec, tmp_path / "clip.mp4")
    assert not truth.intervals
    assert _decode(tmp_path / "clip.mp4").shape == (20, 144, 192)

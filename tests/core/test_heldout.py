"""The held-out scene generator (tests/rig/heldout.py) renders decodable clips with sane truth."""

from __future__ import annotations

from pathlib import Path

import av
import pytest

from tests.rig.heldout import HeldoutClip, _Renderer, render_heldout
from tests.rig.scenes import WARMUP_S, SceneTruth, load_truth

POSITIVE = HeldoutClip(
    "t_pos", "walk_headon+clouds", "garden", 320, 180, 8, 13, 11, 3.0, 20, 80, 0.1
)
NEGATIVE = HeldoutClip(
    "t_neg", "ir_night+snow+insects+clock", "yard", 320, 180, 10, 5, 12, 3.0, 22, 100, 0.2
)


def _decoded_frames(path: Path) -> int:
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        assert stream.codec_context.name == "h264"
        return sum(1 for _ in c.decode(stream))


def _consistent(truth: SceneTruth, spec: HeldoutClip, path: Path) -> None:
    assert load_truth(path) == truth
    assert len(truth.present) == round(spec.seconds * spec.fps) == _decoded_frames(path)
    for i, on in enumerate(truth.present):
        t = i / spec.fps
        assert on == truth.present_at(t), f"frame {i}: present={on} but intervals disagree"


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, SceneTruth]]:
    root = tmp_path_factory.mktemp("heldout")
    out = {}
    for spec in (POSITIVE, NEGATIVE):
        path = root / f"{spec.name}.mp4"
        out[spec.name] = (path, render_heldout(spec, path))
    return out


def test_positive_clip(rendered: dict[str, tuple[Path, SceneTruth]]) -> None:
    path, truth = rendered["t_pos"]
    _consistent(truth, POSITIVE, path)
    assert truth.positive
    for iv in truth.intervals:
        assert WARMUP_S <= iv.start <= iv.appear <= iv.end
        x, y, w, h = iv.box
        assert 0 <= x <= x + w <= 1
        assert 0 <= y <= y + h <= 1


def test_negative_clip(rendered: dict[str, tuple[Path, SceneTruth]]) -> None:
    path, truth = rendered["t_neg"]
    _consistent(truth, NEGATIVE, path)
    assert not truth.intervals
    assert not any(truth.present)


def test_approaching_person_grows() -> None:
    r = _Renderer(POSITIVE)
    walker = r.actors[0]  # walk_headon: the first one comes towards the camera
    head_on = walker.legs[-1]  # its last leg runs straight at the camera
    heights = []
    for t in (head_on[0] + 1.0, head_on[0] + 4.0, head_on[0] + 7.0):
        _img, boxes = r.render(t)
        (box,) = [b for a, b in boxes if a is walker]
        heights.append(box[3] - box[1])
    assert heights[0] < heights[1] < heights[2]
    assert heights[2] > 1.4 * heights[0]

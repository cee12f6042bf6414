"""Drifted input: the corruptions are real image transforms, seeded per image, and a
scenario's drift block is checked against its device groups."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import yaml
from test_scenario import BASE, write

from fogsim.data.corruptions import corrupt
from fogsim.scenario import ScenarioError, load_scenario
from fogsim.scenario.drift import Blur, Brightness, GroupDrift, Noise, Rotation


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    """Eight 28x28 grey images with structure (a bright square on a gradient)."""
    rng = np.random.default_rng(0)
    out = np.zeros((8, 28, 28, 1), np.uint8)
    out[:] = np.linspace(0, 120, 28, dtype=np.uint8)[None, None, :, None]
    for i in range(8):
        y, x = rng.integers(4, 14, size=2)
        out[i, y : y + 10, x : x + 10] = 230
    return out


IDS = np.arange(100, 108)


def sharpness(x: np.ndarray) -> float:
    """Mean squared difference between neighbouring pixels: blur lowers it."""
    f = x.astype(np.float64)
    return float((np.diff(f, axis=1) ** 2).mean() + (np.diff(f, axis=2) ** 2).mean())


def test_noise_is_seeded_per_image_and_has_the_asked_spread(images: np.ndarray) -> None:
    spec = [Noise(kind="noise", std=0.1)]
    a = corrupt(images, IDS, spec, seed=3, stream="drift/cams/corruption")
    again = corrupt(images, IDS, spec, seed=3, stream="drift/cams/corruption")
    other = corrupt(images, IDS, spec, seed=4, stream="drift/cams/corruption")
    assert a.dtype == np.uint8 and a.shape == images.shape
    np.testing.assert_array_equal(a, again)
    assert (a != other).mean() > 0.5
    # Unclipped pixels (mid grey) moved by N(0, 0.1 x 255), rounded.
    mid = (images > 40) & (images < 200)
    moved = a.astype(float)[mid] - images.astype(float)[mid]
    assert abs(moved.mean()) < 1.5
    assert moved.std() == pytest.approx(25.5, rel=0.1)
    # An image's corruption does not depend on which other images come with it.
    alone = corrupt(images[3:4], IDS[3:4], spec, seed=3, stream="drift/cams/corruption")
    np.testing.assert_array_equal(alone[0], a[3])


def test_blur_brightness_and_rotation_transform_the_image(images: np.ndarray) -> None:
    blurred = corrupt(images, IDS, [Blur(kind="blur", sigma=1.5)], 0, "s")
    assert sharpness(blurred) < 0.5 * sharpness(images)
    assert blurred.astype(float).mean() == pytest.approx(images.astype(float).mean(), rel=0.05)
    darker = corrupt(images, IDS, [Brightness(kind="brightness", factor=0.5)], 0, "s")
    np.testing.assert_allclose(darker.astype(float), images.astype(float) * 0.5, atol=0.51)
    turned = corrupt(images, IDS, [Rotation(kind="rotation", degrees=45)], 0, "s")
    assert (turned != images).mean() > 0.2
    again = corrupt(images, IDS, [Rotation(kind="rotation", degrees=45)], 0, "s")
    np.testing.assert_array_equal(turned, again)
    # A vanishing angle leaves the image as it was: the transform, not noise, moved pixels.
    still = corrupt(images[:1], IDS[:1], [Rotation(kind="rotation", degrees=1e-9)], 0, "s")
    np.testing.assert_array_equal(still, images[:1])


def test_corruptions_apply_in_order(images: np.ndarray) -> None:
    noise_then_blur = [Noise(kind="noise", std=0.2), Blur(kind="blur", sigma=1.0)]
    a = corrupt(images, IDS, noise_then_blur, 1, "s")
    b = corrupt(images, IDS, noise_then_blur[::-1], 1, "s")
    assert sharpness(a) < sharpness(b)


def drifted(entry: dict, **group: object) -> dict:
    data = copy.deepcopy(BASE)
    data["devices"][0].update(group)
    data["drift"] = [entry]
    return data


ADAPT = {"trigger": {"exit_rate_below": 0.5, "window": 50}}


def test_a_drift_block_loads(tmp_path: Path) -> None:
    entry = {
        "group": "cams",
        "start": "30 s",
        "corruptions": [{"kind": "noise", "std": 0.1}, {"kind": "rotation", "degrees": 20}],
        "classes": ["Sneaker", 3],
        "adaptation": {**ADAPT, "cooldown": "1 min"},
    }
    scenario = load_scenario(write(tmp_path, drifted(entry)))
    (d,) = scenario.drift
    assert isinstance(d, GroupDrift) and d.start == 30.0
    assert d.adaptation is not None and d.adaptation.cooldown == 60.0
    assert load_scenario(write(tmp_path, BASE)).drift == []


@pytest.mark.parametrize(
    ("entry", "group", "expected"),
    [
        ({"group": "nobody", "corruptions": [{"kind": "blur", "sigma": 1}]}, {}, "nobody"),
        ({"group": "cams", "corruptions": [{"kind": "fog", "sigma": 1}]}, {}, "fog"),
        ({"group": "cams", "corruptions": [{"kind": "noise", "std": 2}]}, {}, "std"),
        ({"group": "cams"}, {}, "nothing changes"),
        ({"group": "cams", "adaptation": {"trigger": {}}}, {}, "either at"),
        (
            {"group": "cams", "adaptation": {"trigger": {"at": ["20 s", "10 s"]}}},
            {},
            "increasing",
        ),
        ({"group": "cams", "adaptation": ADAPT}, {"queue_capacity": 4}, "queue_capacity"),
        ({"group": "cams", "start": "-1 s", "classes": [1]}, {}, "start"),
    ],
)
def test_a_bad_drift_block_is_a_clear_error(
    tmp_path: Path, entry: dict, group: dict, expected: str
) -> None:
    with pytest.raises(ScenarioError, match=expected) as info:
        load_scenario(write(tmp_path, drifted(entry, **group)))
    assert "drift" in str(info.value)


def test_the_shipped_drift_scenarios_differ_only_in_adaptation() -> None:
    root = Path(__file__).resolve().parents[1] / "scenarios"
    adapt = yaml.safe_load((root / "drift-adapt.yaml").read_text())
    static = yaml.safe_load((root / "drift-static.yaml").read_text())
    assert adapt["drift"][0].pop("adaptation")
    for data in (adapt, static):
        data.pop("name"), data.pop("description")
    assert adapt == static

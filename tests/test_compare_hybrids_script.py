"""scripts/compare_hybrids.py: two hybrids at the same exit rate, image by image."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "compare_hybrids.py"
_spec = importlib.util.spec_from_file_location("compare_hybrids", SCRIPT)
compare_hybrids = importlib.util.module_from_spec(_spec)
sys.modules["compare_hybrids"] = compare_hybrids  # its dataclass looks itself up there
_spec.loader.exec_module(compare_hybrids)


def _outcomes(entropy, exit_pred, cloud_pred, labels):
    entropy = np.asarray(entropy, dtype=np.float32).reshape(len(labels), -1)
    return SimpleNamespace(
        exit_entropy=entropy,
        exit_maxprob=np.exp(-entropy),  # unread by the entropy rule
        exit_pred=np.asarray(exit_pred).reshape(len(labels), -1),
        cloud_pred=np.asarray(cloud_pred),
        labels=np.asarray(labels),
    )


N = 1000
LABELS = np.zeros(N, dtype=np.int64)
CALM_FIRST = np.linspace(0.0, 2.0, N)  # image i is the i-th least uncertain


@pytest.mark.parametrize("rate", [0.0, 0.25, 0.6, 1.0])
def test_exactly_the_share_asked_for_exits_the_least_uncertain_first(rate):
    # The exit is right on every image and the cloud on none: accuracy is the share that exits.
    o = _outcomes(CALM_FIRST[::-1], np.zeros(N), np.ones(N), LABELS)
    correct = compare_hybrids.hybrid_correct(o, rate)
    assert correct.mean() == rate
    assert correct[::-1][: int(rate * N)].all()  # the calmest (highest index) images


def test_a_network_wrong_on_50_exiting_images_is_five_points_worse_with_its_paired_error():
    old = _outcomes(CALM_FIRST, np.zeros(N), np.zeros(N), LABELS)
    worse = np.zeros(N)
    worse[:50] = 1  # wrong answers at its 50 calmest exits
    new = _outcomes(CALM_FIRST, worse, np.zeros(N), LABELS)
    p = compare_hybrids.compare(old, new, 0.6)
    d = np.r_[-np.ones(50), np.zeros(N - 50)]
    assert (p.old, p.new) == (1.0, 0.95)
    assert p.diff == pytest.approx(-0.05)
    assert p.se == pytest.approx(d.std(ddof=1) / np.sqrt(N))
    assert p.z == pytest.approx(-0.05 / p.se)
    # Past the 50 images, the two agree everywhere: the same network is no different.
    same = compare_hybrids.compare(old, old, 0.6)
    assert same.diff == same.se == same.z == 0.0


def test_an_image_leaves_at_its_first_exit_under_the_shared_threshold():
    # Two exits: exit 1 is confident on the first half, exit 2 on the second; each answers
    # with its own label, so the answer shows which exit took each image.
    entropy = np.stack([np.r_[np.zeros(N // 2), np.full(N // 2, 5.0)], np.full(N, 0.1)], 1)
    preds = np.stack([np.zeros(N), np.ones(N)], 1)
    o = _outcomes(entropy, preds, np.full(N, 2), LABELS)
    correct = compare_hybrids.hybrid_correct(o, 1.0)
    assert correct[: N // 2].all() and not correct[N // 2 :].any()


def test_bad_exit_rates_are_refused_before_any_work(capsys):
    assert compare_hybrids.main(["a.pt", "b.pt", "--exit-rates", "0.6,1.5"]) == 2
    assert "between 0 and 1" in capsys.readouterr().err

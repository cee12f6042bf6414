"""Is a retrained hybrid better than the one it would replace? A paired comparison.

Runs both checkpoints on the same images (by default the training images their recipes held
out, never the test split), sets each one's exit threshold so that the same share of images
exits, and compares their hybrid accuracy image by image: the mean difference, its paired
standard error, and z = difference / SE. Two networks on the same 5,000 images disagree on
few of them, so the paired SE (about 0.3 to 0.4 points for CIFAR-10 hybrids) is far below
what two separate accuracies' errors suggest; a z under 2 is within the noise.

    python scripts/compare_hybrids.py OLD.pt models/cifar10-binary.pt
    python scripts/compare_hybrids.py OLD.pt NEW.pt --split test --exit-rates 0.6,0.65,0.7
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

import numpy as np

from fogsim.data import load_dataset
from fogsim.data.dataset import Dataset
from fogsim.errors import FogsimError
from fogsim.inference import InferenceOutcomes, run_inference
from fogsim.nn.checkpoint import load_checkpoint
from fogsim.nn.evaluate import exit_index
from fogsim.nn.setup import held_out_images


@dataclass(frozen=True)
class Paired:
    """Two hybrids' accuracy at one exit rate, and their difference image by image."""

    exit_rate: float
    old: float
    new: float
    diff: float  # new - old, as a fraction
    se: float  # paired standard error of diff

    @property
    def z(self) -> float:
        return 0.0 if self.se == 0 else self.diff / self.se


def hybrid_correct(o: InferenceOutcomes, rate: float) -> np.ndarray:
    """Which images the hybrid answers right under the one entropy threshold that lets the
    share RATE of images exit, the least uncertain first (ties at that threshold exit together).
    An image leaves at its first exit under it (``exit_index``), so it leaves where the least of
    its exits' entropies is under it."""
    calm = np.sort(o.exit_entropy.min(axis=1)) if o.exit_entropy.shape[1] else np.array([])
    n_exit = int(round(rate * len(o.labels)))
    # Just above the n-th least entropy, at float32 where exit_index compares.
    threshold = (
        float(np.nextafter(np.float32(calm[n_exit - 1]), np.float32(np.inf)))
        if n_exit and len(calm)
        else -np.inf
    )
    idx = exit_index(o, "entropy", threshold)
    rows = np.arange(len(idx))
    pred = np.where(idx >= 0, o.exit_pred[rows, np.maximum(idx, 0)], o.cloud_pred)
    return pred == o.labels


def compare(old: InferenceOutcomes, new: InferenceOutcomes, rate: float) -> Paired:
    """OLD against NEW at exit rate RATE, on the same images."""
    if not np.array_equal(old.labels, new.labels):
        raise FogsimError("the two networks were run on different images")
    a, b = hybrid_correct(old, rate), hybrid_correct(new, rate)
    d = b.astype(float) - a.astype(float)
    se = float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else 0.0
    return Paired(rate, float(a.mean()), float(b.mean()), float(d.mean()), se)


def _images(old: str, new: str, split: str) -> Dataset:
    ckpts = [load_checkpoint(p) for p in (old, new)]
    names = {c.card.get("dataset") for c in ckpts}
    if len(names) != 1:
        raise FogsimError(f"the checkpoints were trained on different datasets: {names}")
    name = names.pop()
    if split == "test":
        return load_dataset(name, split="test")
    train = load_dataset(name, split="train")
    held = [held_out_images(train, c.card, str(c.path)) for c in ckpts]
    if held[0].fingerprint != held[1].fingerprint:
        raise FogsimError(
            "the two recipes held out different training images; compare them on --split test"
        )
    return held[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("old", help="the checkpoint in use")
    parser.add_argument("new", help="the retrained checkpoint")
    parser.add_argument("--split", choices=("holdout", "test"), default="holdout")
    parser.add_argument("--exit-rates", default="0.6,0.65,0.7", help="comma list of shares")
    args = parser.parse_args(argv)
    try:
        rates = [float(r) for r in args.exit_rates.split(",")]
        if not all(0 <= r <= 1 for r in rates):
            raise ValueError
    except ValueError:
        print(f"--exit-rates {args.exit_rates!r}: give shares between 0 and 1", file=sys.stderr)
        return 2
    try:
        data = _images(args.old, args.new, args.split)
        old, new = (run_inference(p, data, progress=False) for p in (args.old, args.new))
    except FogsimError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{len(data)} {data.split} images of {data.name}: {args.old} -> {args.new}")
    print("exit rate | old hybrid | new hybrid | difference | paired SE | z")
    for rate in rates:
        p = compare(old, new, rate)
        print(
            f"{p.exit_rate:9.2f} | {p.old:10.2%} | {p.new:10.2%} | {100 * p.diff:+7.2f} pts "
            f"| {100 * p.se:6.2f} pts | {p.z:+.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

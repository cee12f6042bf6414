"""Draw the shipped CIFAR-10 hybrids' exit-rate curves beside the seed paper's headline
(models/seed-tradeoff.png, shown in models/README.md): `fogsim eval --json --reference` for
each hybrid, on the test split, then `fogsim.exit_figures.seed_tradeoff`. Rerun it when a
CIFAR-10 hybrid ships.

    python scripts/draw_seed_tradeoff.py
    python scripts/draw_seed_tradeoff.py --pair models/NEW.pt=models/cifar10-fp32.pt -o /tmp/fig
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from fogsim.exit_figures import seed_tradeoff

ROOT = Path(__file__).resolve().parents[1]
PAIRS = (
    "models/cifar10-resnet32-binary.pt=models/cifar10-resnet32-fp32.pt",
    "models/cifar10-binary.pt=models/cifar10-fp32.pt",
    "models/cifar10-int4.pt=models/cifar10-fp32.pt",
)


def report(checkpoint: Path, reference: Path) -> dict:
    command = [sys.executable, "-m", "fogsim", "eval", str(checkpoint), "--json"]
    command += ["--reference", str(reference)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"fogsim eval {checkpoint} failed:\n{done.stderr.strip()}")
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--pair",
        action="append",
        metavar="HYBRID=REFERENCE",
        help="a hybrid checkpoint and its fp32 reference (repeatable; default: the shipped ones)",
    )
    parser.add_argument("-o", "--out", type=Path, default=ROOT / "models", help="folder")
    args = parser.parse_args()
    reports = {}
    for pair in args.pair or PAIRS:
        hybrid, sep, reference = pair.partition("=")
        if not sep:
            parser.error(f"--pair {pair!r}: write it as HYBRID.pt=REFERENCE.pt")
        hybrid_path, reference_path = ROOT / hybrid, ROOT / reference
        for path in (hybrid_path, reference_path):
            if not path.is_file():
                parser.error(f"{path} does not exist")
        reports[hybrid_path.stem] = report(hybrid_path, reference_path)
        print(f"{hybrid_path.stem}: exit rate {reports[hybrid_path.stem]['exit_rate']:.4f}")
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "seed-tradeoff.png"
    # No software tag: the same reports give the same bytes.
    seed_tradeoff(reports).savefig(path, dpi=100, bbox_inches="tight", metadata={"Software": None})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

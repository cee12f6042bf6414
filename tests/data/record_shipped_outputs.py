"""Record what a shipped checkpoint outputs, for
``test_shipped_checkpoints_give_the_outputs_they_gave_before_three_parts``: run it once for a
checkpoint that was just trained, never to make a failing check pass.

    .venv/bin/python tests/data/record_shipped_outputs.py models/cifar10-int4.pt [...]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from fogsim.nn.checkpoint import load_checkpoint

N_IMAGES = 3
RECORD = Path(__file__).with_name("shipped_outputs.json")


def outputs(path: Path) -> dict:
    ckpt = load_checkpoint(path)
    model = ckpt.build()
    x = torch.rand(N_IMAGES, *model.input_shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        exits, final = model(x)
    return {
        "sha256": ckpt.sha256,
        "input_seed": 0,
        "n_images": N_IMAGES,
        "state_dict_keys": sorted(model.state_dict()),
        "final_logits": final.tolist(),
        "exit_logits": [e.tolist() for e in exits],
    }


if __name__ == "__main__":
    recorded = json.loads(RECORD.read_text())
    for name in sys.argv[1:]:
        recorded[Path(name).name] = outputs(Path(name))
    RECORD.write_text(json.dumps(recorded, indent=1) + "\n")

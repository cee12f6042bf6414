"""What does sending binary split features cost a binary device part's cloud path?

Freezes a trained two-part network's device part, computes its pre-boundary features once
for a random subset of the training images and for the held-out images (the recipe's split,
never the test split), then fine-tunes a copy of the cloud part with the boundary quantizer at
each precision in turn, the network's own precision first as the control. Prints held-out
cloud-path accuracy after each epoch. Features are computed once, so the fine-tuning sees
no augmentation.

    python scripts/split_precision_ab.py models/cifar10-binary.pt \\
        models/recipes/cifar10-binary.yaml --train-images 20000 --epochs 3
"""

from __future__ import annotations

import argparse
import copy

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from fogsim.data import load_dataset
from fogsim.nn.checkpoint import load_checkpoint
from fogsim.nn.evaluate import to_input
from fogsim.nn.hybrid import HybridNet
from fogsim.nn.layers import ActQuant
from fogsim.nn.recipe import load_recipe
from fogsim.nn.setup import split_train_holdout


def device_features(net: HybridNet, images: np.ndarray, batch: int = 500) -> Tensor:
    """The device part's output before the boundary quantizer."""
    out = []
    with torch.inference_mode():
        for s in range(0, len(images), batch):
            h, _ = net.edge_features(to_input(images[s : s + batch]))
            out.append(h.clone())
    return torch.cat(out)


class CloudWithBoundary(nn.Module):
    """The network's boundary BatchNorm, a quantizer at ``precision``, then its cloud part."""

    def __init__(self, net: HybridNet, precision: str) -> None:
        super().__init__()
        self.norm = copy.deepcopy(net.split_quant[0])
        self.quant = nn.Identity() if precision == "fp32" else ActQuant(precision)
        self.blocks = copy.deepcopy(net.blocks[net.split :])
        self.final = copy.deepcopy(net.final)

    def forward(self, h: Tensor) -> Tensor:
        h = self.quant(self.norm(h))
        for block in self.blocks:
            h = block(h)
        return self.final(h)


def accuracy(model: nn.Module, features: Tensor, labels: Tensor) -> float:
    model.eval()
    with torch.inference_mode():
        pred = torch.cat(
            [model(features[s : s + 1000]).argmax(1) for s in range(0, len(features), 1000)]
        )
    return float((pred == labels).float().mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("recipe", help="the network's recipe (its held-out split)")
    ap.add_argument("--train-images", type=int, default=20000)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--precisions", default="int8,int4,int2,fp32")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    ckpt = load_checkpoint(args.checkpoint)
    net = ckpt.build()
    net.load_state_dict(ckpt.state_dict)
    net.eval()
    if not isinstance(net.split_quant, nn.Sequential):
        raise SystemExit(f"{args.checkpoint} sends fp32 features: there is no quantizer to vary")
    own = net.edge_act_precision
    recipe = load_recipe(args.recipe)
    data = load_dataset(**recipe.dataset_args(), split="train")
    train, held = split_train_holdout(len(data.labels), recipe)
    # The training images are stored class by class: take a random subset, not a prefix.
    train = np.sort(np.random.default_rng(recipe.seed).permutation(train)[: args.train_images])
    f_train, f_held = (
        device_features(net, data.images[train]),
        device_features(net, data.images[held]),
    )
    y_train = torch.from_numpy(data.labels[train]).long()
    y_held = torch.from_numpy(data.labels[held]).long()

    for precision in [own, *(p for p in args.precisions.split(",") if p != own)]:
        torch.manual_seed(0)
        model = CloudWithBoundary(net, precision)
        before = accuracy(model, f_held, y_held)
        opt = torch.optim.Adam(model.parameters(), lr=args.lr)
        for epoch in range(1, args.epochs + 1):
            model.train()
            perm = torch.randperm(len(f_train))
            for s in range(0, len(perm), 128):
                b = perm[s : s + 128]
                loss = F.cross_entropy(model(f_train[b]), y_train[b])
                opt.zero_grad()
                loss.backward()
                opt.step()
            held_acc = accuracy(model, f_held, y_held)
            print(
                f"{precision:>6} split, epoch {epoch}: held-out cloud path {held_acc:.4f} "
                f"(before fine-tuning {before:.4f})",
                flush=True,
            )


if __name__ == "__main__":
    main()

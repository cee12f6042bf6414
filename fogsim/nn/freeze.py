"""Parts of a HybridNet held fixed while the rest trains (a recipe's ``freeze:``).

``device`` is the stem, the device blocks and the split boundary; ``exits`` every exit head;
``fog`` the fog blocks and the fog boundary; ``cloud`` the cloud blocks and the final head.
A frozen part keeps its weights and its BatchNorm statistics: it runs in evaluation mode in
training too, so the parts after it learn from the features it will send when deployed.
"""

from __future__ import annotations

from collections.abc import Iterable

from torch import nn

from fogsim.nn.hybrid import HybridNet
from fogsim.nn.ops import part_of

FREEZABLE: tuple[str, ...] = ("device", "exits", "fog", "cloud")


def group_of(name: str, model: HybridNet) -> str:
    """The ``freeze:`` group of the top-level module or parameter ``name`` of ``model``."""
    if name.partition(".")[0] == "exits":
        return "exits"
    return part_of(name, model)


def frozen_modules(model: HybridNet, groups: Iterable[str]) -> list[nn.Module]:
    """The top-level modules (the stem, each block, each exit head, the boundaries, the final
    head) that ``groups`` hold."""
    wanted = set(groups)
    found = []
    for name, module in model.named_children():
        if isinstance(module, nn.ModuleList):
            found += [m for i, m in enumerate(module) if group_of(f"{name}.{i}", model) in wanted]
        elif group_of(name, model) in wanted:
            found.append(module)
    return found


def freeze(model: HybridNet, groups: Iterable[str]) -> int:
    """Stop the gradients of ``groups``' parameters; return how many parameters still train."""
    wanted = set(groups)
    for name, p in model.named_parameters():
        if group_of(name, model) in wanted:
            p.requires_grad_(False)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def hold_statistics(model: HybridNet, groups: Iterable[str]) -> None:
    """Put the frozen modules in evaluation mode (call after ``model.train()``)."""
    for module in frozen_modules(model, groups):
        module.eval()

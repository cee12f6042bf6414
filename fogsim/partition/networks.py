"""The network that ``fogsim profile MODEL`` names: a torchvision architecture with random
weights, a zoo network, or a fogsim checkpoint (its main path, device to cloud, without exits).
"""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from fogsim.errors import UserInputError

# Scission's networks (Lockhart et al. 2020) that torchvision has, and three newer ones.
TORCHVISION = {
    "vgg16": "vgg16",
    "vgg19": "vgg19",
    "resnet50": "resnet50",
    "resnet101": "resnet101",
    "resnet152": "resnet152",
    "mobilenetv2": "mobilenet_v2",
    "densenet121": "densenet121",
    "densenet169": "densenet169",
    "densenet201": "densenet201",
    "inceptionv3": "inception_v3",
    "mobilenetv3": "mobilenet_v3_large",
    "efficientnetb0": "efficientnet_b0",
}


@dataclass(frozen=True)
class Network:
    """A network in eval mode, what it is called, and the shape of one input (N, C, H, W)."""

    name: str
    module: nn.Module
    input_shape: tuple[int, ...]


def build(model: str) -> Network:
    """The network ``model`` names: a checkpoint path, a zoo name or a torchvision name."""
    from fogsim.nn.zoo import create_model, list_models

    if model.endswith(".pt") or Path(model).is_file():
        return _from_checkpoint(Path(model))
    key = model.lower().replace("-", "").replace("_", "")
    if model in list_models():
        net = create_model(model).eval()
        return Network(model, MainPath(net), (1, *net.input_shape))
    if key in TORCHVISION:
        return _torchvision(key)
    known = ", ".join([*TORCHVISION, *list_models()])
    raise UserInputError(
        f"unknown model {model!r}: give a fogsim checkpoint (.pt) or one of {known}"
    )


class MainPath(nn.Module):
    """A HybridNet run straight through, device part to cloud head, skipping its exits."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features, _ = self.net.edge(x)
        features, _ = self.net.fog(features)
        return self.net.cloud(features)


def _from_checkpoint(path: Path) -> Network:
    from fogsim.nn.checkpoint import load_checkpoint

    ckpt = load_checkpoint(path)  # raises CheckpointError with the reason
    net = ckpt.build()
    return Network(path.stem, MainPath(net), (1, *net.input_shape))


def _torchvision(key: str) -> Network:
    models = import_torchvision_models()
    with torch.random.fork_rng():
        # Random weights, but the same ones every time: timings and sizes repeat.
        torch.manual_seed(0)
        kwargs = {"init_weights": False, "aux_logits": False} if key == "inceptionv3" else {}
        module = getattr(models, TORCHVISION[key])(weights=None, **kwargs).eval()
    side = 299 if key == "inceptionv3" else 224
    return Network(key, module, (1, 3, side, side))


def import_torchvision_models() -> types.ModuleType:
    """``torchvision.models``, importable beside the CPU build of torch.

    PyPI's torchvision is built against CUDA torch: its C++ operators (nms, roi_align,
    image decoding) cannot load beside the CPU wheel, and torchvision's
    ``_meta_registrations`` then fails on import ("operator torchvision::nms does not
    exist"). The classification models use none of those operators, so that one module is
    stood in for by an empty one. Where the operators do load, nothing is replaced.
    """
    if "torchvision.models" in sys.modules:
        return sys.modules["torchvision.models"]
    name = "torchvision._meta_registrations"
    if name not in sys.modules and not _torchvision_ops_load():
        sys.modules[name] = types.ModuleType(name)
    try:
        import torchvision.models as models
    except ImportError as exc:
        raise UserInputError(
            f"torchvision cannot be imported ({exc}); install the version pyproject.toml pins "
            "(`pip install -e .`) to profile torchvision networks"
        ) from None
    return models


def _torchvision_ops_load() -> bool:
    """Whether torchvision's compiled operators load beside this torch."""
    from importlib.util import find_spec

    spec = find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return False
    folder = Path(next(iter(spec.submodule_search_locations)))
    for library in folder.glob("_C*.so"):
        try:
            torch.ops.load_library(str(library))
            return True
        except OSError:
            return False
    return False

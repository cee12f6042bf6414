"""Corrupted copies of dataset images: noise, blur, brightness and rotation, seeded.

The transforms are torchvision's (``transforms.v2.functional``) on the images in [0, 1],
and the result is stored back as uint8, as a camera would deliver it. What is random
(the noise field, the angle) is drawn per image from its own stream, named by the drift and
the image's index in the split, so an image is corrupted the same way whichever other
images are corrupted with it, in whatever order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from fogsim.partition.networks import import_torchvision_models
from fogsim.scenario.drift import Blur, Brightness, Corruption, Noise, Rotation
from fogsim.sim.rng import Streams


def _functional() -> Any:
    """torchvision's functional transforms, importable beside the CPU build of torch."""
    import_torchvision_models()  # stands in for the operators the CPU wheel cannot load
    from torchvision.transforms.v2 import functional

    return functional


def corrupt(
    images: np.ndarray,
    image_ids: np.ndarray,
    corruptions: Sequence[Corruption],
    seed: int,
    stream: str,
) -> np.ndarray:
    """``images`` (uint8, N x H x W x C; image ``image_ids[i]`` of the split) with each
    corruption applied in order; the randomness of image ``k`` comes from stream
    ``{stream}/{k}`` of ``seed``."""
    if len(images) != len(image_ids):
        raise ValueError("one image id per image")
    if not corruptions or len(images) == 0:
        return images.copy()
    tf = _functional()
    streams = Streams(seed)
    rngs = [streams.stream(f"{stream}/{int(k)}") for k in image_ids]
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255.0
    for c in corruptions:
        x = _apply(tf, c, x, rngs).clamp(0.0, 1.0)
    out = torch.round(x * 255.0).to(torch.uint8).permute(0, 2, 3, 1)
    return np.ascontiguousarray(out.numpy())


def _apply(tf: Any, c: Corruption, x: torch.Tensor, rngs: list[np.random.Generator]) -> Any:
    if isinstance(c, Noise):
        shape = tuple(x.shape[1:])
        noise = np.stack([rng.standard_normal(shape, dtype=np.float32) for rng in rngs])
        return x + c.std * torch.from_numpy(noise)
    if isinstance(c, Blur):
        size = 2 * math.ceil(3 * c.sigma) + 1
        return tf.gaussian_blur(x, [size, size], [c.sigma, c.sigma])
    if isinstance(c, Brightness):
        return tf.adjust_brightness(x, c.factor)
    if isinstance(c, Rotation):
        angles = [float(rng.uniform(-c.degrees, c.degrees)) for rng in rngs]
        return torch.stack([tf.rotate(img, angle) for img, angle in zip(x, angles, strict=True)])
    raise TypeError(f"no transform for {type(c).__name__}")

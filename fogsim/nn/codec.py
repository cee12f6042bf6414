"""Bit-packing and lossless compression of the split tensor, as the edge would send it."""

from __future__ import annotations

import zlib

import numpy as np
import torch

from fogsim.nn.quant import BITS

ZLIB_LEVEL = 6


def feature_codes(features: torch.Tensor, precision: str) -> np.ndarray:
    """Integer codes (uint8, one row per image) of features lying on ``precision``'s grid."""
    x = features.detach().reshape(len(features), -1)
    if precision == "binary":
        codes = x > 0
    elif precision == "ternary":
        codes = torch.round(x) + 1
    else:
        n = 2 ** BITS[precision] - 1
        codes = torch.round((x + 1) / 2 * n)
    return codes.to(torch.uint8).numpy()


def pack_features(features: torch.Tensor, precision: str) -> np.ndarray:
    """One row of bytes per image: codes packed at the precision's bitwidth (fp32: raw floats)."""
    if precision == "fp32":
        flat = features.detach().reshape(len(features), -1).to(torch.float32).numpy()
        return flat.view(np.uint8).reshape(len(features), -1)
    codes = feature_codes(features, precision)
    bits = BITS[precision]
    planes = (codes[:, :, None] >> np.arange(bits, dtype=np.uint8)) & 1
    return np.packbits(planes.reshape(len(codes), -1), axis=1)


def compressed_sizes(features: torch.Tensor, precision: str) -> np.ndarray:
    """Bytes of each image's packed split tensor after zlib (level 6) compression."""
    packed = pack_features(features, precision)
    return np.array(
        [len(zlib.compress(row.tobytes(), ZLIB_LEVEL)) for row in packed], dtype=np.int64
    )

"""Bit-packing and lossless compression of the split tensor, as the edge would send it.

A payload is either a zlib stream, whose first byte is always 0x78 (deflate with a 32 KiB
window), or the marker byte 0x00 followed by the packed bytes as they are: the receiver tells
them apart by the first byte. Incompressible features therefore cost their packed size plus
one byte, never zlib's framing on top.
"""

from __future__ import annotations

import zlib

import numpy as np
import torch

from fogsim.nn.quant import BITS

ZLIB_LEVEL = 6
RAW_MARKER = b"\x00"


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


def encode(packed: bytes) -> bytes:
    """What the edge sends: the zlib stream of ``packed``, or the raw marker and ``packed``
    itself when zlib would not make it smaller."""
    compressed = zlib.compress(packed, ZLIB_LEVEL)
    return compressed if len(compressed) <= len(packed) + 1 else RAW_MARKER + packed


def decode(payload: bytes) -> bytes:
    """What the cloud receives back: the packed bytes of one image's split tensor."""
    return payload[1:] if payload[:1] == RAW_MARKER else zlib.decompress(payload)


def compressed_sizes(features: torch.Tensor, precision: str) -> np.ndarray:
    """Bytes the edge sends for each image's split tensor: bit-packed, then zlib (level 6)
    compressed, or sent raw with a one-byte marker where that is smaller."""
    packed = pack_features(features, precision)
    return np.array([len(encode(row.tobytes())) for row in packed], dtype=np.int64)

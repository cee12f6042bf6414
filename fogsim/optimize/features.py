"""What the learned predictor reads of a design: its work and traffic on the device, as
expected over the request kinds it produces, and what real inference says of it."""

from __future__ import annotations

import numpy as np

from fogsim.optimize.designs import DesignSpace
from fogsim.optimize.population import FEATURES as DEVICE_FEATURES
from fogsim.optimize.population import PRECISIONS
from fogsim.sim.device import device_traffic
from fogsim.sim.routes import Kinds

DESIGN_FEATURES = (
    *(f"log_macs_{p}" for p in PRECISIONS),
    "log_bytes_moved",
    "layers",
    "log_bits_sent",
    "send_share",
    "accuracy",
    "exit_rate",
    "threshold",
)
# Columns of pair_features: the log first-order estimates of energy and latency.
ENERGY_ESTIMATE, LATENCY_ESTIMATE = -2, -1


def design_features(space: DesignSpace) -> np.ndarray:
    """(designs, len(DESIGN_FEATURES)): per-request expectations over each design's kinds."""
    rows = []
    for design in space.designs:
        kinds = Kinds(space.models[design.model])
        macs = np.array(
            [[kinds.device_ops(k).get(p, 0) for p in PRECISIONS] for k in range(kinds.count)],
            dtype=np.float64,
        )
        traffic, layers = device_traffic(kinds)
        share = design.kind_share
        rows.append(
            [
                *np.log1p(share @ macs),
                np.log1p(share @ traffic),
                share @ layers,
                np.log1p(share @ design.kind_bits),
                share @ (design.kind_bits > 0),
                design.accuracy,
                design.exit_rate,
                design.threshold,
            ]
        )
    return np.array(rows)


def pair_features(design_x: np.ndarray, device_x: np.ndarray) -> np.ndarray:
    """(devices, designs, ...): both feature sets, and first-order estimates from them (the
    expected MACs over the device's throughputs, bytes over its memory bandwidth, bits over
    its uplink and at its energy per bit), as logs, for the predictor to correct."""
    n, d = device_x.shape[0], design_x.shape[0]
    macs = np.expm1(design_x[:, : len(PRECISIONS)])  # (designs, precisions)
    seconds_per_mac = np.exp(-device_x[:, : len(PRECISIONS)])  # 0 throughput: log 0 -> 1 s
    compute = seconds_per_mac @ macs.T
    col = {name: i for i, name in enumerate(DEVICE_FEATURES)}
    des = {name: i for i, name in enumerate(DESIGN_FEATURES)}
    memory = np.expm1(design_x[:, des["log_bytes_moved"]])[None] * 8.0
    memory = memory / np.exp(device_x[:, col["log_memory_bandwidth"]])[:, None]
    bits = np.expm1(design_x[:, des["log_bits_sent"]])[None]
    sends = design_x[:, des["send_share"]][None]
    send_s = bits / np.exp(device_x[:, col["log_uplink"]])[:, None]
    send_s = send_s + sends * device_x[:, col["radio_delay_s"]][:, None]
    send_j = bits * np.exp(device_x[:, col["log_tx_joules_per_bit"]])[:, None]
    power = np.exp(device_x[:, col["log_active_power"]])[:, None]
    tiny = 1e-12
    estimates = np.stack(
        [
            np.log(compute + tiny),
            np.log(memory + tiny),
            np.log(send_s + tiny),
            np.log(send_j + tiny),
            np.log(np.maximum(compute, memory) * power + send_j + tiny),
            np.log(np.maximum(compute, memory) + send_s + tiny),
        ],
        axis=2,
    )
    both = [np.repeat(design_x[None], n, 0), np.repeat(device_x[:, None], d, 1)]
    return np.concatenate([*both, estimates], axis=2)

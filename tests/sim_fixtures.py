"""Helpers for simulator tests: synthetic inference outcomes and small scenarios.

The simulator reads a network's per-image outcomes as data, so its own tests
can give it outcomes with known properties; the end-to-end tests in
``test_run.py`` use the real shipped networks instead.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np

from fogsim.inference import InferenceOutcomes
from fogsim.scenario import Scenario, scenario_from_data


def synthetic_outcomes(n: int = 500, exits: int = 1, seed: int = 0) -> InferenceOutcomes:
    """Outcomes of an imaginary 10-class network: exits right 80% of the time, cloud 90%."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    entropy = rng.uniform(0.0, 2.3, (n, exits)).astype(np.float32)
    exit_pred = np.where(rng.random((n, exits)) < 0.8, labels[:, None], (labels[:, None] + 1) % 10)
    cloud_pred = np.where(rng.random(n) < 0.9, labels, (labels + 1) % 10)
    return InferenceOutcomes(
        checkpoint_sha256="0" * 64,
        dataset_fingerprint="synthetic",
        class_names=tuple(str(c) for c in range(10)),
        labels=labels.astype(np.int64),
        exit_entropy=entropy,
        exit_maxprob=(1.0 - entropy / 2.3).astype(np.float32),
        exit_pred=exit_pred.astype(np.int64),
        cloud_pred=cloud_pred.astype(np.int64),
        feature_bytes=1024,
        compressed_feature_bytes=rng.integers(300, 1024, n).astype(np.int64),
        input_bytes=784,
        edge_ops_to_exit=tuple(
            {"fp32": 100_000, "binary": 1_000_000 * (e + 1)} for e in range(exits)
        ),
        edge_ops={"fp32": 100_000, "binary": 1_000_000 * exits},
        cloud_ops={"fp32": 5_000_000},
        full_ops={"fp32": 5_100_000, "binary": 1_000_000},
        default_threshold=1.0,
        default_rule="entropy",
    )


BASE: dict[str, Any] = {
    "name": "small",
    "seed": 3,
    "duration": "20 s",
    "dataset": {"name": "fashion-mnist"},
    "model": {"checkpoint": "net.pt"},
    "devices": [
        {
            "name": "pis",
            "count": 3,
            "profile": "rpi4",
            "radio": "wifi",
            "arrival": {"process": "poisson", "rate": "5 /s"},
            "gateway": "gw",
        }
    ],
    "network": {
        "gateways": [{"name": "gw", "backhaul": {"bandwidth": "10 Mbps", "delay": "5 ms"}}],
        "cloud_link": {"bandwidth": "1 Gbps", "delay": "20 ms"},
    },
    "cloud": {"profile": "t4", "workers": 1, "batching": {"max_batch": 4, "max_wait": "2 ms"}},
    "policy": {"name": "early_exit", "threshold": 1.0},
}


def small_scenario(tmp_path: Path, **changes: Any) -> Scenario:
    """``BASE`` with top-level keys replaced; a placeholder checkpoint file is made."""
    (tmp_path / "net.pt").write_bytes(b"placeholder")
    data = copy.deepcopy(BASE)
    data.update(copy.deepcopy(changes))
    return scenario_from_data(data, base_dir=tmp_path)


def three_part_outcomes(n: int = 500, seed: int = 1) -> InferenceOutcomes:
    """An imaginary network in three parts: an exit on the device, one on the fog, then the
    cloud; the fog part is 2,000,000 int8 MACs (its exit head 10,000 more) and sends
    2,000 to 3,000 bytes on to the cloud."""
    two = synthetic_outcomes(n, exits=2, seed=seed)
    rng = np.random.default_rng(seed + 1)
    fields = {name: getattr(two, name) for name in two.__dataclass_fields__}
    fields.update(
        edge_ops_to_exit=({"fp32": 100_000, "binary": 1_000_000},) * 2,
        edge_ops={"fp32": 100_000, "binary": 1_000_000},
        tiers=("device", "fog", "cloud"),
        exit_tiers=("device", "fog"),
        fog_ops={"int8": 2_010_000},
        fog_ops_to_exit=({}, {"int8": 2_010_000}),
        fog_feature_bytes=4096,
        compressed_fog_feature_bytes=rng.integers(2000, 3000, n).astype(np.int64),
        default_thresholds=(1.0, 1.0),
    )
    return InferenceOutcomes(**fields)


FOG_NETWORK: dict[str, Any] = {
    "nodes": [
        {"name": "gw", "kind": "gateway"},
        {"name": "metro", "kind": "switch"},
        {"name": "dc", "kind": "site"},
    ],
    "links": [
        {"from": "gw", "to": "metro", "bandwidth": "10 Mbps", "delay": "5 ms"},
        {"name": "core", "from": "metro", "to": "dc", "bandwidth": "1 Gbps", "delay": "20 ms"},
    ],
}
FOG_SERVER: dict[str, Any] = {"name": "box", "at": "gw", "profile": "edge-server"}


def fog_scenario(tmp_path: Path, **changes: Any) -> Scenario:
    """``BASE`` on an explicit network with a fog server at the gateway and the cloud in dc."""
    cloud = {**copy.deepcopy(BASE["cloud"]), "at": "dc"}
    fog = {"network": FOG_NETWORK, "fog": [FOG_SERVER], "cloud": cloud}
    return small_scenario(tmp_path, **{**fog, **changes})

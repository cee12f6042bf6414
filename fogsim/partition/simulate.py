"""Partition candidates as fogsim runs: each candidate becomes the network a scenario runs,
so that queueing and contention count (``fogsim partition --simulate K``).

The simulator charges a part MACs over its tier's throughput; a candidate's part is given
as many fp32 MACs as that throughput does in the part's profiled seconds, so that one
request alone takes exactly the candidate's compute times. Its features cross at the
profile's ``output_bytes`` of the cut rows. One exit, always taken (entropy 0) where the
candidate answers on the device or the fog and never (entropy 10) where the cloud runs the
last part, routes every request on the candidate's path under an ``early_exit`` policy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from fogsim.inference import InferenceOutcomes
from fogsim.partition.network import TierNetwork
from fogsim.partition.search import Rows, fp32_energy_per_mac
from fogsim.policies import EarlyExit
from fogsim.scenario import Scenario, scenario_from_data
from fogsim.scenario.models import DeviceProfile

ROUTE_EVERY_REQUEST = EarlyExit(threshold=1.0, rule="entropy")
_TAKEN, _NOT_TAKEN = 0.0, 10.0


def part_seconds(rows: Rows, cuts: tuple[int, int]) -> dict[str, float]:
    """Each tier's compute seconds for the partition ``cuts`` (a, b)."""
    a, b = cuts
    spans = {"device": (1, a), "fog": (a + 1, b), "cloud": (b + 1, rows.last)}
    return {t: float(rows.seconds[t][first : end + 1].sum()) for t, (first, end) in spans.items()}


def candidate_outcomes(rows: Rows, net: TierNetwork, cuts: tuple[int, int]) -> InferenceOutcomes:
    """What the simulator reads of a network cut at ``cuts``, for every request."""
    a, b = cuts
    last = rows.last
    seconds = part_seconds(rows, cuts)
    ops = {
        tier: {"fp32": seconds[tier] * _fp32_rate(getattr(net, tier), tier)}
        for tier in ("device", "fog", "cloud")
    }
    if b == last:  # answered on the device (a == last) or on the fog
        exit_tier = "device" if a == last else "fog"
        entropy, fog_to_exit, fog_ops = _TAKEN, ops["fog"], {}
    else:
        exit_tier, entropy, fog_to_exit = "device", _NOT_TAKEN, {}
        fog_ops = ops["fog"] if b > a else {}  # a fog that runs nothing is passed by
    one = np.zeros(1, np.int64)
    return InferenceOutcomes(
        checkpoint_sha256="partition",
        dataset_fingerprint="partition",
        class_names=("any",),
        labels=one,
        exit_entropy=np.full((1, 1), entropy, np.float32),
        exit_maxprob=np.ones((1, 1), np.float32),
        exit_pred=one[:, None],
        cloud_pred=one,
        feature_bytes=int(rows.output_bytes[a]),
        compressed_feature_bytes=rows.output_bytes[[a]].astype(np.int64),
        input_bytes=int(rows.output_bytes[0]),
        edge_ops_to_exit=(ops["device"],),
        edge_ops=ops["device"],
        cloud_ops=ops["cloud"],
        full_ops={"fp32": 0.0},
        default_threshold=ROUTE_EVERY_REQUEST.threshold,
        default_rule="entropy",
        tiers=("device", "fog", "cloud"),
        exit_tiers=(exit_tier,),
        fog_ops=fog_ops,
        fog_ops_to_exit=(fog_to_exit,),
        fog_feature_bytes=int(rows.output_bytes[b]),
        compressed_fog_feature_bytes=rows.output_bytes[[b]].astype(np.int64),
    )


def _fp32_rate(profile: Any, tier: str) -> float:
    rate = profile.throughput.get("fp32")
    if rate is None:
        from fogsim.errors import UserInputError

        raise UserInputError(
            f"--simulate: the {tier} profile has no fp32 throughput, which turns the part's "
            "seconds into the MACs the simulator charges; give it one"
        )
    return float(rate)


def routed(scenario: Scenario, rows: Rows, net: TierNetwork, cuts: tuple[int, int]) -> Scenario:
    """``scenario`` with every request sent on the candidate's path: its policy replaced,
    no deadline fallback to replace late answers, and per_op devices' energy per MAC
    rescaled from the part's real MACs to the MACs the simulator is given."""
    groups = [
        group.model_copy(update={"profile": _per_real_mac(group.profile, rows, net, cuts)})
        for group in scenario.devices
    ]
    update = {"policy": ROUTE_EVERY_REQUEST, "deadline": None, "devices": groups}
    return scenario.model_copy(update=update)


def _per_real_mac(
    profile: DeviceProfile, rows: Rows, net: TierNetwork, cuts: tuple[int, int]
) -> DeviceProfile:
    given = part_seconds(rows, cuts)["device"] * _fp32_rate(net.device, "device")
    if profile.compute_energy != "per_op" or given == 0 or rows.macs is None:
        return profile
    real = float(rows.macs[1 : cuts[0] + 1].sum())
    per_mac = fp32_energy_per_mac(profile) * real / given
    scaled = {**profile.energy_per_mac, "fp32": per_mac}
    return profile.model_copy(update={"energy_per_mac": scaled})


def simulate(scenario: Scenario, rows: Rows, net: TierNetwork, cuts: tuple[int, int]) -> Any:
    """The simulator's per-request columns for the candidate ``cuts`` run in ``scenario``."""
    from fogsim.sim.engine import simulate as run

    return run(routed(scenario, rows, net, cuts), candidate_outcomes(rows, net, cuts)).columns


def summary(columns: dict[str, np.ndarray]) -> dict[str, Any]:
    """What `fogsim partition --simulate` reports of a candidate's run."""
    from fogsim.sim.records import ANSWERED

    answered = np.isin(columns["status"], ANSWERED)
    latency = columns["latency_s"][answered]
    device_j = (columns["energy_compute_j"] + columns["energy_radio_j"])[answered]
    total_j = columns["energy_j"][answered]

    def q(values: np.ndarray, p: float) -> float | None:
        return float(np.percentile(values, p)) if values.size else None

    return {
        "requests": int(len(answered)),
        "answered": int(answered.sum()),
        "latency_p50_s": q(latency, 50),
        "latency_p95_s": q(latency, 95),
        "latency_mean_s": float(latency.mean()) if latency.size else None,
        "device_energy_p50_j": q(device_j, 50),
        "device_energy_p95_j": q(device_j, 95),
        "device_energy_mean_j": float(device_j.mean()) if device_j.size else None,
        "energy_mean_j": float(total_j.mean()) if total_j.size else None,
    }


def alone_scenario(net: dict[str, Any], seed: int = 0) -> Scenario:
    """One device sending one request into an otherwise empty network described by ``net``
    (the NET.yaml form, without ``direct``): the radio is the device-fog hop, the fog server
    sits at the gateway and the fog-cloud hop is the one link to the cloud. Answers have no
    size and servers no batch overhead, which the partition's cost leaves out."""
    hop1, hop2 = net["hops"]
    radio = {"base": net.get("radio", "wifi"), "uplink": hop1["bandwidth"]}
    radio.update(delay=hop1.get("delay", "0 s"), downlink=hop1["bandwidth"])
    # One arrival at a random phase of a period far longer than any request's latency.
    period = "1000 s"
    data = {
        "name": "partition-alone",
        "seed": seed,
        "duration": period,
        "dataset": {"name": "partition"},
        "model": {"checkpoint": __file__},  # never read: the outcomes come from the candidate
        "devices": [
            {
                "name": "device",
                "count": 1,
                "profile": net["device"],
                "radio": radio,
                "arrival": {"process": "periodic", "period": period},
                "gateway": "gw",
            }
        ],
        "network": {
            "nodes": [{"name": "gw", "kind": "gateway"}, {"name": "dc", "kind": "site"}],
            "links": [{"from": "gw", "to": "dc", **hop2}],
            "answer_size": "0 bit",
        },
        "fog": [{"name": "fog", "at": "gw", "profile": _no_overhead(net["fog"])}],
        "cloud": {"name": "cloud", "at": "dc", "profile": _no_overhead(net["cloud"])},
        "policy": {"name": "early_exit", "threshold": 1.0},
    }
    return scenario_from_data(data, base_dir=Path.cwd())


def _no_overhead(profile: str | dict[str, Any]) -> dict[str, Any]:
    base = {"base": profile} if isinstance(profile, str) else dict(profile)
    return {**base, "batch_overhead": "0 s"}

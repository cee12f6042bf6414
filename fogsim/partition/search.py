"""Every partition of a network over device, fog and cloud, its cost, and the best ones.

A partition is a pair of cut points ``a <= b``: the device runs rows 1..a, the fog rows
a+1..b and the cloud the rest. Its latency is the compute on each tier plus, for each hop
crossed, the hop's delay plus the bytes over its bandwidth. All pairs are costed at once
with numpy: a network with C cut points has C(C+1)/2 partitions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fogsim.errors import FogsimError, UserInputError
from fogsim.partition.network import TIERS, Hop, TierNetwork
from fogsim.scenario.models import DeviceProfile

OBJECTIVES = ("latency", "device-energy", "weighted")


class InfeasibleError(FogsimError):
    """No partition meets the constraints; the message names the one that binds."""

    exit_code = 1


@dataclass(frozen=True)
class Rows:
    """What the search needs of a profiled network: per-tier seconds of every row, the bytes
    each row outputs, its MACs and which rows are cut points."""

    seconds: dict[str, np.ndarray]
    output_bytes: np.ndarray
    cut_points: np.ndarray
    macs: np.ndarray | None = None

    @property
    def last(self) -> int:
        return len(self.output_bytes) - 1


@dataclass(frozen=True)
class Constraints:
    """Scission's constraints and more; ``None`` or empty means unconstrained."""

    pins: tuple[tuple[int, int, str], ...] = ()  # (first row, last row, tier)
    exclude: tuple[str, ...] = ()
    max_upload_bytes: float | None = None
    min_device_rows: int | None = None
    max_device_energy_j: float | None = None
    deadline_s: float | None = None


@dataclass
class Costs:
    """Every partition's costs, one array entry per partition."""

    a: np.ndarray
    b: np.ndarray
    compute: dict[str, np.ndarray]
    transfer: list[np.ndarray]
    latency: np.ndarray
    energy: np.ndarray
    upload: np.ndarray
    hop_names: list[str] = field(default_factory=list)

    def candidate(self, i: int, last: int) -> dict[str, Any]:
        a, b = int(self.a[i]), int(self.b[i])
        spans = {"device": (1, a), "fog": (a + 1, b), "cloud": (b + 1, last)}
        return {
            "cuts": [a, b],
            "tiers": {t: list(s) if s[0] <= s[1] else None for t, s in spans.items()},
            "latency_s": float(self.latency[i]),
            "device_energy_j": float(self.energy[i]),
            "upload_bytes": int(self.upload[i]),
            "compute_s": {t: float(self.compute[t][i]) for t in TIERS},
            "transfer_s": [float(t[i]) for t in self.transfer],
        }


def costs(rows: Rows, net: TierNetwork) -> Costs:
    """The costs of every partition (a, b), a <= b, both cut points."""
    cuts = np.asarray(rows.cut_points)
    i, j = np.triu_indices(len(cuts))
    a, b = cuts[i], cuts[j]
    last = rows.last
    prefix = {t: np.concatenate([[0.0], np.cumsum(rows.seconds[t][1:])]) for t in TIERS}
    compute = {
        "device": prefix["device"][a],
        "fog": prefix["fog"][b] - prefix["fog"][a],
        "cloud": prefix["cloud"][last] - prefix["cloud"][b],
    }
    sent, forwarded = rows.output_bytes[a].astype(float), rows.output_bytes[b].astype(float)
    fog_runs, leaves, cloud_runs = b > a, a < last, b < last
    skip_fog = leaves & ~fog_runs  # the fog runs nothing, the cloud runs the rest
    hop1, hop2 = net.hops
    to_fog = np.where(leaves & (fog_runs | (net.direct is None)), _cost(hop1, sent), 0.0)
    on_to_cloud = np.where(fog_runs & cloud_runs, _cost(hop2, forwarded), 0.0)
    transfer = [to_fog, on_to_cloud]
    names = ["device-fog", "fog-cloud"]
    if net.direct is None:
        transfer[1] = np.where(skip_fog, _cost(hop2, sent), on_to_cloud)
    else:
        transfer.append(np.where(skip_fog, _cost(net.direct, sent), 0.0))
        names.append("device-cloud")
    upload = np.where(leaves, rows.output_bytes[a], 0)
    first_hop = np.where(skip_fog & (net.direct is not None), _rate(net.direct), hop1.bandwidth)
    energy = _compute_energy(rows, net, a, compute["device"]) + _radio_energy(
        net, upload, first_hop
    )
    latency = sum(compute.values()) + sum(transfer)
    return Costs(a, b, compute, transfer, latency, energy, upload, names)


def _cost(hop: Hop, nbytes: np.ndarray) -> np.ndarray:
    return hop.delay + 8 * nbytes / hop.bandwidth


def _rate(hop: Hop | None) -> float:
    return hop.bandwidth if hop is not None else np.nan


def _compute_energy(rows: Rows, net: TierNetwork, a: np.ndarray, seconds: np.ndarray):
    device = net.device
    if device.compute_energy == "active_power":
        return device.active_power * seconds
    if rows.macs is None:
        raise UserInputError(
            "the device profile counts energy per MAC, but the device's profile has no macs; "
            "give a profile with its macs column filled"
        )
    per_mac = fp32_energy_per_mac(device)
    return per_mac * np.concatenate([[0.0], np.cumsum(rows.macs[1:])])[a]


def fp32_energy_per_mac(device: DeviceProfile) -> float:
    """A per_op device's joules per fp32 MAC: its own figure, else its energy table's."""
    from fogsim.energy import energy_per_mac

    table = energy_per_mac(device.energy_table) if device.energy_table else {}
    per_mac = {**table, **device.energy_per_mac}.get("fp32")
    if per_mac is None:
        raise UserInputError(
            "the device profile counts energy per MAC but gives no fp32 energy_per_mac, which "
            "the profiled layers (fp32) need; add one, e.g. energy_per_mac: {fp32: 1 nJ}"
        )
    return per_mac


def _radio_energy(net: TierNetwork, upload: np.ndarray, rate: np.ndarray) -> np.ndarray:
    """What the device's radio spends sending the upload (none without a radio)."""
    radio = net.radio
    if radio is None:
        return np.zeros(len(upload))
    bits = 8 * upload.astype(float)
    energy = radio.energy
    if energy.model == "per_bit":
        return energy.tx * bits
    sending = (energy.tx_per_bps * rate + energy.tx_base) * bits / rate
    return np.where(bits > 0, sending + energy.tail_power * energy.tail, 0.0)


def feasible(c: Costs, rows: Rows, limits: Constraints) -> dict[str, np.ndarray]:
    """One mask per constraint given, named as the user wrote it: True where it holds."""
    last = rows.last
    masks: dict[str, np.ndarray] = {}
    for first, end, tier in limits.pins:
        held = {
            "device": c.a >= end,
            "fog": (c.a < first) & (c.b >= end),
            "cloud": c.b < first,
        }[tier]
        masks[f"--pin {first}-{end}={tier}"] = held
    for tier in limits.exclude:
        masks[f"--exclude {tier}"] = {"device": c.a == 0, "fog": c.a == c.b, "cloud": c.b == last}[
            tier
        ]
    if limits.max_upload_bytes is not None:
        masks[f"--max-upload {limits.max_upload_bytes:g} bytes"] = (
            c.upload <= limits.max_upload_bytes
        )
    if limits.min_device_rows is not None:
        masks[f"--min-device-layers {limits.min_device_rows}"] = c.a >= limits.min_device_rows
    if limits.max_device_energy_j is not None:
        masks[f"--max-energy {limits.max_device_energy_j:g} J"] = (
            c.energy <= limits.max_device_energy_j
        )
    if limits.deadline_s is not None:
        masks[f"--deadline {limits.deadline_s:g} s"] = c.latency <= limits.deadline_s
    return masks


def rank(
    rows: Rows,
    net: TierNetwork,
    limits: Constraints = Constraints(),
    objective: str = "latency",
    weight: float = 0.5,
) -> tuple[Costs, np.ndarray]:
    """All partitions' costs and the feasible ones' positions, best first; raises
    InfeasibleError naming the binding constraint when none is feasible."""
    c = costs(rows, net)
    masks = feasible(c, rows, limits)
    ok = np.logical_and.reduce([*masks.values(), np.ones(len(c.a), bool)])
    if not ok.any():
        raise InfeasibleError(_why_infeasible(c, masks))
    chosen = np.flatnonzero(ok)
    score = _score(c, chosen, objective, weight)
    # Ties go to the lower latency, then to the earlier cuts: the order is total.
    order = np.lexsort((c.b[chosen], c.a[chosen], c.latency[chosen], score))
    return c, chosen[order]


def _score(c: Costs, chosen: np.ndarray, objective: str, weight: float) -> np.ndarray:
    if objective == "latency":
        return c.latency[chosen]
    if objective == "device-energy":
        return c.energy[chosen]
    return weight * _spread(c.latency[chosen]) + (1 - weight) * _spread(c.energy[chosen])


def _spread(x: np.ndarray) -> np.ndarray:
    """``x`` scaled onto [0, 1] between its least and greatest value (0 where all are equal)."""
    span = x.max() - x.min()
    return (x - x.min()) / span if span > 0 else np.zeros_like(x)


def _why_infeasible(c: Costs, masks: dict[str, np.ndarray]) -> str:
    total = len(c.a)
    binding = []
    for name in masks:
        others = [m for other, m in masks.items() if other != name]
        rest = np.logical_and.reduce([*others, np.ones(total, bool)])
        if rest.any():
            best = float(c.latency[rest].min())
            binding.append(f"{name} (without it {int(rest.sum())} would, the fastest {best:.4g} s)")
    if binding:
        return (
            f"no partition of the {total} meets every constraint; the binding constraint: "
            + "; or ".join(binding)
            + ". Relax it"
        )
    alone = [f"{name} rules out {int((~m).sum())}" for name, m in masks.items()]
    return (
        f"no partition of the {total} meets every constraint, and dropping any one alone "
        f"does not help: {', '.join(alone)}. Relax several"
    )

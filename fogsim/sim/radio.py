"""What a device's radio spends: sending its request, receiving the answer, and the tail after.

The radio draws its power for as long as a transfer actually keeps it busy. On
the device's own link that is the bits over its own rate; on a shared cell it
is the time the cell took, which contention can stretch far beyond that.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from fogsim.scenario.models import PowerRadioEnergy, RadioProfile, Scenario
from fogsim.sim.ordering import by_key_then

CHUNK_ROWS = 1 << 20  # requests whose radio energy is computed at once (see _by_devices)


@dataclass
class RadioUse:
    """When each request kept its device's radio busy; NaN where it did not."""

    tx_start_s: np.ndarray
    tx_end_s: np.ndarray  # the last bit left the radio (serialization end, no propagation)
    bits_sent: np.ndarray
    rx_start_s: np.ndarray
    rx_end_s: np.ndarray  # the answer's last bit reached the device
    bits_received: np.ndarray


def send_energy(radio: RadioProfile, bits: np.ndarray, airtime_s: np.ndarray) -> np.ndarray:
    """Joules to send ``bits`` over ``airtime_s`` seconds (no tail).

    A per-bit figure was measured at the profile's uplink rate, so it stands for a
    power of tx x uplink; Huang et al.'s power rises with the rate actually reached.
    """
    energy = radio.energy
    if isinstance(energy, PowerRadioEnergy):
        return energy.tx_per_bps * bits + energy.tx_base * airtime_s
    return energy.tx * radio.uplink * airtime_s


def receive_energy(radio: RadioProfile, bits: np.ndarray, airtime_s: np.ndarray) -> np.ndarray:
    """Joules to receive ``bits`` over ``airtime_s`` seconds (no tail)."""
    energy = radio.energy
    if isinstance(energy, PowerRadioEnergy):
        return energy.rx_per_bps * bits + energy.tx_base * airtime_s
    return energy.rx * radio.downlink * airtime_s


def radio_energy(
    scenario: Scenario, group: np.ndarray, device: np.ndarray, use: RadioUse
) -> np.ndarray:
    """Joules each request's radio spent: sending, receiving and the tails that follow."""
    joules = np.zeros(group.size)
    for g, spec in enumerate(scenario.devices):
        for rows in _by_devices(np.flatnonzero(group == g), device):
            use_g = _subset(use, rows)
            joules[rows] = _group_energy(spec.radio, device[rows], use_g, scenario.duration)
    return joules


def _by_devices(rows: np.ndarray, device: np.ndarray) -> Iterator[np.ndarray]:
    """``rows`` in parts of about ``CHUNK_ROWS``, each the rows (in order) of a range of
    devices: a request's energy depends only on its own device's transfers, so each part is
    computed on its own, and the temporaries (tens of bytes a request) are a part's."""
    if rows.size <= CHUNK_ROWS:
        if rows.size:
            yield rows
        return
    of = device[rows]
    edges = np.linspace(of.min(), of.max() + 1, -(-rows.size // CHUNK_ROWS) + 1)
    for low, high in itertools.pairwise(edges):
        part = rows[(of >= low) & (of < high)]
        if part.size:
            yield part


def resend_energy(
    scenario: Scenario, group: np.ndarray, use: RadioUse, retries: np.ndarray
) -> np.ndarray:
    """Joules each request's radio spent sending it again, once per retry, each send as long
    as the one recorded (no tail: the retries' tails overlap the sends they follow)."""
    joules = np.zeros(group.size)
    airtime = np.nan_to_num(use.tx_end_s - use.tx_start_s)
    for g, spec in enumerate(scenario.devices):
        rows = np.flatnonzero((group == g) & (retries > 0))
        if rows.size:
            once = send_energy(spec.radio, use.bits_sent[rows], airtime[rows])
            joules[rows] = retries[rows] * once
    return joules


def _subset(use: RadioUse, rows: np.ndarray) -> RadioUse:
    return RadioUse(*(getattr(use, name)[rows] for name in RadioUse.__dataclass_fields__))


def _group_energy(
    radio: RadioProfile, device: np.ndarray, use: RadioUse, duration_s: float
) -> np.ndarray:
    sent = ~np.isnan(use.tx_end_s)
    received = ~np.isnan(use.rx_end_s)
    tx_s = np.where(sent, use.tx_end_s - use.tx_start_s, 0.0)
    rx_s = np.where(received, use.rx_end_s - use.rx_start_s, 0.0)
    joules = send_energy(radio, np.where(sent, use.bits_sent, 0.0), tx_s)
    joules += receive_energy(radio, np.where(received, use.bits_received, 0.0), rx_s)
    energy = radio.energy
    if isinstance(energy, PowerRadioEnergy) and energy.tail > 0:
        tail_s = _tail_s(device, use, sent, received, energy.tail, duration_s)
        joules += energy.tail_power * tail_s
    return joules


def _tail_s(
    device: np.ndarray,
    use: RadioUse,
    sent: np.ndarray,
    received: np.ndarray,
    tail_s: float,
    duration_s: float,
) -> np.ndarray:
    """Tail seconds charged to each request: after each of its transfers the radio stays
    in its high-power tail until the device's next transfer begins, for at most ``tail_s``."""
    n = device.size
    owner = np.concatenate([np.flatnonzero(sent), np.flatnonzero(received)])
    start = np.concatenate([use.tx_start_s[sent], use.rx_start_s[received]])
    end = np.concatenate([use.tx_end_s[sent], use.rx_end_s[received]])
    if owner.size == 0:
        return np.zeros(n)
    order = by_key_then(device[owner], start)  # np.lexsort((start, device[owner]))
    owner, start, end, who = owner[order], start[order], end[order], device[owner][order]
    last = np.append(who[1:] != who[:-1], True)
    # Transfers may overlap (an answer arriving while the next request is sent): the
    # radio is free only once every transfer begun so far has ended.
    busy_until = _running_max_by_device(end, who)
    next_start = np.append(start[1:], np.inf)
    next_start[last] = duration_s
    tail = np.clip(next_start - busy_until, 0.0, tail_s)
    return np.bincount(owner, weights=tail, minlength=n)


def _running_max_by_device(values: np.ndarray, device: np.ndarray) -> np.ndarray:
    """Running maximum of ``values`` restarting at each device (rows sorted by device)."""
    out = values.copy()
    same = np.append(False, device[1:] == device[:-1])
    # Each pass carries a maximum one row further; overlaps are short chains, so few passes.
    while True:
        previous = np.append(-np.inf, out[:-1])
        lower = same & (previous > out)
        if not lower.any():
            return out
        out[lower] = previous[lower]

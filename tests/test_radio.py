"""Device radio energy: sending, receiving and the tail, on hand-computed timelines."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sim_fixtures import small_scenario

from fogsim.sim import radio
from fogsim.sim.radio import RadioUse, radio_energy, receive_energy, send_energy


def use(tx: list, rx: list, bits_sent: float = 1e6, bits_received: float = 1e3) -> RadioUse:
    """One row per request: its (start, end) sending and receiving, None for neither."""
    nan = (np.nan, np.nan)
    tx = np.array([t or nan for t in tx], dtype=float)
    rx = np.array([r or nan for r in rx], dtype=float)
    n = len(tx)
    return RadioUse(
        tx[:, 0], tx[:, 1], np.full(n, bits_sent), rx[:, 0], rx[:, 1], np.full(n, bits_received)
    )


def test_per_bit_radio_on_its_own_link_costs_its_figure_per_bit(tmp_path: Path) -> None:
    radio = small_scenario(tmp_path).devices[0].radio  # Wi-Fi: 0.65 uJ/bit at 2 Mbps
    bits = np.array([2e6, 5e5])
    assert send_energy(radio, bits, bits / 2e6) == pytest.approx(bits * 0.65e-6)
    assert receive_energy(radio, bits, bits / 2e6) == pytest.approx(bits * 0.2e-6)


def test_lte_tail_runs_from_the_last_transfer_until_the_next_or_its_end(tmp_path: Path) -> None:
    """Hand-computed. Request 0 sends over [0, 1] s and receives its answer over [0.5, 2];
    request 1 sends over [1.5, 1.6] meanwhile. The radio is busy until 2 s, then tails for
    the full 11.576 s; request 2 sends over [20, 21] and tails until the run ends at 25 s."""
    scenario = small_scenario(tmp_path, duration="25 s", devices=[_lte_device()])
    timeline = use([(0.0, 1.0), (1.5, 1.6), (20.0, 21.0)], [(0.5, 2.0), None, None])
    joules = radio_energy(scenario, np.zeros(3, int), np.zeros(3, int), timeline)
    beta, tail_w = 1.28804, 1.06
    send = [0.43839e-6 * 1e6 + beta * s for s in (1.0, 0.1, 1.0)]
    receive = 0.05197e-6 * 1e3 + beta * 1.5
    # The tail after 2 s is charged to the transfer that began last before it.
    expected = [send[0] + receive, send[1] + tail_w * 11.576, send[2] + tail_w * 4.0]
    np.testing.assert_allclose(joules, expected, rtol=1e-12)


def _lte_device() -> dict:
    return {
        "name": "phones",
        "count": 1,
        "profile": "rpi4",
        "radio": "lte",
        "arrival": {"process": "poisson", "rate": "1 /s"},
        "gateway": "gw",
    }


def test_energy_computed_in_parts_of_devices_is_the_same_to_the_bit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Large groups are computed a range of devices at a time (``radio._by_devices``): the
    tails link each device's own transfers only, so the parts give the whole's bits."""
    device = _lte_device() | {"count": 40}
    scenario = small_scenario(tmp_path, duration="60 s", devices=[device])
    rng = np.random.default_rng(7)
    n = 500
    devices = rng.integers(0, 40, n)
    tx_start = np.round(rng.uniform(0, 55, n), 1)  # rounded: ties between a device's sends
    tx = [
        (a, a + d) if k else None
        for a, d, k in zip(tx_start, rng.uniform(0, 2, n), rng.random(n) < 0.9, strict=True)
    ]
    rx = [
        (a + 1, a + 1.5) if k else None for a, k in zip(tx_start, rng.random(n) < 0.7, strict=True)
    ]
    timeline = use(tx, rx)
    whole = radio_energy(scenario, np.zeros(n, int), devices, timeline)
    monkeypatch.setattr(radio, "CHUNK_ROWS", 37)
    assert len(list(radio._by_devices(np.arange(n), devices))) > 5
    parts = radio_energy(scenario, np.zeros(n, int), devices, timeline)
    assert whole.tobytes() == parts.tobytes()

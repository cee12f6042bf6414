"""The Check: a partition's analytic cost equals the simulated cost of one request alone in
an empty network; and `fogsim partition --simulate` runs candidates under load."""

from __future__ import annotations

import json

import numpy as np
import pytest
from cli_fixtures import invoke
from hypothesis import given, settings
from hypothesis import strategies as st

from fogsim.partition import search
from fogsim.partition import simulate as ps
from fogsim.partition.network import network_from_data
from fogsim.sim.radio import receive_energy, send_energy

TIERS = ("device", "fog", "cloud")


def random_rows(seed: int, n: int) -> search.Rows:
    rng = np.random.default_rng(seed)
    return search.Rows(
        seconds={t: np.r_[0.0, rng.uniform(1e-4, 0.05, n)] for t in TIERS},
        output_bytes=rng.integers(100, 300_000, n + 1),
        cut_points=np.arange(n + 1),
        macs=rng.integers(10**5, 10**8, n + 1).astype(float),
    )


def net_data(up: float, up_ms: float, back: float, back_ms: float, **tiers: str) -> dict:
    return {
        "device": tiers.get("device", "rpi4"),
        "fog": tiers.get("fog", "edge-server"),
        "cloud": tiers.get("cloud", "t4"),
        "radio": tiers.get("radio", "wifi"),
        "hops": [
            {"bandwidth": f"{up} Mbps", "delay": f"{up_ms} ms"},
            {"bandwidth": f"{back} Mbps", "delay": f"{back_ms} ms"},
        ],
    }


def alone(data: dict, rows: search.Rows, cuts: tuple[int, int]) -> dict:
    """One request's simulated times: until its last part finishes, and until its answer is
    back at the device; its device energy (compute and radio); and how far that energy can
    stray by rounding alone (the simulator times the radio by differences of absolute float64
    timestamps, each good to one ulp of the arrival time)."""
    columns = ps.simulate(ps.alone_scenario(data), rows, network_from_data(data), cuts)
    assert columns["status"][0].startswith("answered")
    ends = [columns[k][0] for k in ("t_edge_end_s", "t_fog_end_s", "t_cloud_end_s")]
    start = columns["t_arrival_s"][0]
    return {
        "done_s": np.nanmax(ends) - start,
        "latency_s": columns["latency_s"][0],
        "energy_j": columns["energy_compute_j"][0] + columns["energy_radio_j"][0],
        "energy_rounding_j": 8 * np.spacing(start) * max_radio_power_w(data),
    }


def max_radio_power_w(data: dict) -> float:
    """The most the device's radio draws, sending or receiving, in watts."""
    radio = ps.alone_scenario(data).devices[0].radio
    one_second = np.ones(1)
    send = send_energy(radio, radio.uplink * one_second, one_second)
    receive = receive_energy(radio, radio.downlink * one_second, one_second)
    return float(max(send[0], receive[0]))


def back_delay(data: dict, cuts: tuple[int, int], last: int) -> float:
    """Delays the answer crosses back: the radio from the fog, and the link from the cloud."""
    a, b = cuts
    delays = [float(h["delay"].split()[0]) / 1e3 for h in data["hops"]]
    if a == last:
        return 0.0
    return delays[0] + (delays[1] if b < last else 0.0)


def test_every_partition_alone_matches_its_cost():
    rows = random_rows(1, 4)
    data = net_data(1.6, 66.7, 50, 20)
    net = network_from_data(data)
    costs, order = search.rank(rows, net)
    assert len(order) == 15  # C(5+1, 2) pairs of 5 cut points
    for i in order:
        c = costs.candidate(int(i), rows.last)
        cuts = (c["cuts"][0], c["cuts"][1])
        sim = alone(data, rows, cuts)
        assert sim["done_s"] == pytest.approx(c["latency_s"], rel=1e-9, abs=1e-12)
        assert sim["energy_j"] == pytest.approx(
        c["device_energy_j"], rel=1e-12, abs=sim["energy_rounding_j"]
    )
        # The simulator also brings the answer back (size 0 here): only the hops' delays.
        expected = c["latency_s"] + back_delay(data, cuts, rows.last)
        assert sim["latency_s"] == pytest.approx(expected, rel=1e-9)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    up=st.floats(0.1, 1000),
    up_ms=st.floats(0, 200),
    back=st.floats(1, 10_000),
    back_ms=st.floats(0, 100),
    device=st.sampled_from(["rpi4", "jetson-nano"]),
    # Radios without a tail: with one, the simulator also counts the tail after the answer.
    radio=st.sampled_from(["wifi"]),
    pick=st.integers(0, 10**6),
)
def test_random_partitions_alone_match_their_cost(
    seed, up, up_ms, back, back_ms, device, radio, pick
):
    rows = random_rows(seed, 5)
    data = net_data(up, up_ms, back, back_ms, device=device, radio=radio)
    costs, order = search.rank(rows, network_from_data(data))
    c = costs.candidate(int(order[pick % len(order)]), rows.last)
    sim = alone(data, rows, (c["cuts"][0], c["cuts"][1]))
    assert sim["done_s"] == pytest.approx(c["latency_s"], rel=1e-9, abs=1e-12)
    assert sim["energy_j"] == pytest.approx(
        c["device_energy_j"], rel=1e-12, abs=sim["energy_rounding_j"]
    )


def test_a_hand_computed_partition():
    # Rows of 10 ms each on every tier; the device runs 2, the fog 1, the cloud 1.
    rows = search.Rows(
        seconds={t: np.array([0.0, 0.01, 0.01, 0.01, 0.01]) for t in TIERS},
        output_bytes=np.array([4000, 1000, 2000, 3000, 500]),
        cut_points=np.arange(5),
    )
    data = net_data(1.6, 66.7, 50, 20)
    sim = alone(data, rows, (2, 3))
    # compute 40 ms; 2000 B over 1.6 Mbps = 10 ms + 66.7 ms; 3000 B over 50 Mbps + 20 ms.
    expected = 0.04 + 0.01 + 0.0667 + 24_000 / 50e6 + 0.02
    assert sim["done_s"] == pytest.approx(expected, rel=1e-12)


def test_simulate_needs_a_scenario(tmp_path):
    net = tmp_path / "net.yaml"
    net.write_text(json.dumps(net_data(1.6, 66.7, 50, 20)))
    result = invoke("partition", "--network", str(net), "--model", "smallcnn", "--simulate", "2")
    assert result.code == 2
    assert "--simulate needs --scenario" in result.stderr


def test_under_load_the_best_partition_alone_is_not_the_best(tmp_path):
    figure = tmp_path / "under-load.png"
    result = invoke(
        "partition",
        "--scenario",
        "scenarios/partition-under-load.yaml",
        "--profile",
        "models/profiles/resnet50.parquet",
        "--simulate",
        "3",
        "--top",
        "3",
        "--json",
        "--figure",
        str(figure),
    )
    assert result.code == 0, result.stderr
    candidates = json.loads(result.stdout)["candidates"]
    assert [c["latency_s"] for c in candidates] == sorted(c["latency_s"] for c in candidates)
    sims = [c["simulated"] for c in candidates]
    assert all(s["answered"] > 0.9 * s["requests"] for s in sims[1:])
    # Queueing and the answer's way back only add to a partition's latency alone.
    for c, s in zip(candidates, sims, strict=True):
        assert s["latency_p50_s"] >= c["latency_s"]
        assert s["latency_p95_s"] >= s["latency_p50_s"]
    # The single fog worker that makes the first best alone saturates under the cameras.
    best_under_load = min(range(3), key=lambda i: sims[i]["latency_p50_s"])
    assert best_under_load != 0
    assert sims[0]["latency_p50_s"] > 5 * sims[best_under_load]["latency_p50_s"]
    assert figure.stat().st_size > 0


@pytest.mark.parametrize(
    "device",
    [
        {"base": "rpi4", "compute_energy": "per_op", "energy_per_mac": {"fp32": "2 nJ/MAC"}},
        {"base": "rpi4", "compute_energy": "per_op", "energy_table": "horowitz45nm-braintta"},
    ],
    ids=["own-figure", "energy-table"],
)
def test_per_mac_devices_alone_match_their_cost(device):
    rows = random_rows(2, 4)
    data = {**net_data(1.6, 66.7, 50, 20), "device": device}
    costs, order = search.rank(rows, network_from_data(data))
    for i in order:
        c = costs.candidate(int(i), rows.last)
        a = c["cuts"][0]
        sim = alone(data, rows, (a, c["cuts"][1]))
        assert sim["energy_j"] == pytest.approx(
        c["device_energy_j"], rel=1e-12, abs=sim["energy_rounding_j"]
    )
        if a > 0 and "energy_per_mac" in device:  # 2 nJ per MAC, by hand
            compute_j = c["device_energy_j"] - 0.65e-6 * 8 * c["upload_bytes"]
            assert compute_j == pytest.approx(2e-9 * rows.macs[1 : a + 1].sum(), rel=1e-9)

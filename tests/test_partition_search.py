"""The partition search: hand-computed cases, constraints, and a brute-force loop under
Hypothesis over random profiles and networks."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fogsim.partition.network import Hop, network_from_data
from fogsim.partition.search import Constraints, InfeasibleError, Rows, rank


def _net(hops=("8 Mbps", "10 ms", "80 Mbps", "5 ms"), direct=None, radio=None):
    data = {
        "device": "rpi4",
        "fog": "edge-server",
        "cloud": "t4",
        "hops": [
            {"bandwidth": hops[0], "delay": hops[1]},
            {"bandwidth": hops[2], "delay": hops[3]},
        ],
    }
    if direct:
        data["direct"] = {"bandwidth": direct[0], "delay": direct[1]}
    if radio:
        data["radio"] = radio
    return network_from_data(data)


def _rows(device, fog, cloud, out_bytes, cuts) -> Rows:
    return Rows(
        seconds={"device": np.array(device), "fog": np.array(fog), "cloud": np.array(cloud)},
        output_bytes=np.array(out_bytes),
        cut_points=np.array(cuts),
    )


# Three rows after the input; row 2 is not a cut point.
HAND = _rows(
    device=[0, 1.0, 2.0, 3.0],
    fog=[0, 0.1, 0.2, 0.3],
    cloud=[0, 0.01, 0.02, 0.03],
    out_bytes=[1000, 4000, 2000, 10],
    cuts=[0, 1, 3],
)


def test_a_hand_computed_partition():
    net = _net()
    costs, order = rank(HAND, net)
    by_cuts = {tuple(costs.candidate(i, 3)["cuts"]): costs.candidate(i, 3) for i in order}
    assert len(by_cuts) == 6  # pairs a <= b of three cut points
    c = by_cuts[(1, 3)]  # device runs row 1 (1 s), fog rows 2-3 (0.5 s); 4000 B cross hop 1
    assert c["tiers"] == {"device": [1, 1], "fog": [2, 3], "cloud": None}
    assert c["compute_s"] == pytest.approx({"device": 1.0, "fog": 0.5, "cloud": 0.0})
    assert c["transfer_s"] == pytest.approx([0.010 + 4000 * 8 / 8e6, 0.0])
    assert c["latency_s"] == pytest.approx(1.5 + 0.014)
    assert c["upload_bytes"] == 4000
    assert c["device_energy_j"] == pytest.approx(6.4 * 1.0)  # rpi4 active power, no radio
    # All in the cloud: the input crosses both hops (no direct link), the cloud computes.
    cloud = by_cuts[(0, 0)]
    assert cloud["transfer_s"] == pytest.approx([0.010 + 0.001, 0.005 + 0.0001])
    assert cloud["latency_s"] == pytest.approx(0.06 + 0.011 + 0.0051)
    assert by_cuts[(3, 3)]["transfer_s"] == [0.0, 0.0]
    best = costs.candidate(order[0], 3)
    assert best["cuts"] == [0, 0]  # 0.0761 s, before the fog running all (0.6 s + 0.011 s)


def test_direct_link_carries_what_skips_the_fog():
    costs, order = rank(HAND, _net(direct=("2 Mbps", "50 ms")))
    c = {tuple(costs.candidate(i, 3)["cuts"]): costs.candidate(i, 3) for i in order}
    assert c[(1, 1)]["transfer_s"] == pytest.approx([0.0, 0.0, 0.05 + 4000 * 8 / 2e6])
    assert c[(1, 3)]["transfer_s"] == pytest.approx([0.014, 0.0, 0.0])


def test_radio_energy_per_bit_on_the_upload():
    costs, order = rank(HAND, _net(radio="wifi"), objective="device-energy")
    best = costs.candidate(order[0], 3)
    assert best["cuts"][0] == 0  # the device computes nothing; it sends the 1000 B input
    assert best["device_energy_j"] == pytest.approx(0.65e-6 * 8000)


def test_constraints_exclude_pin_upload_and_min_device():
    costs, order = rank(HAND, _net(), Constraints(exclude=("fog",)))
    assert all(costs.a[i] == costs.b[i] for i in order)
    costs, order = rank(HAND, _net(), Constraints(pins=((2, 3, "cloud"),)))
    assert all(costs.b[i] <= 1 for i in order)
    costs, order = rank(HAND, _net(), Constraints(max_upload_bytes=500))
    assert [costs.candidate(i, 3)["cuts"] for i in order] == [[3, 3]]
    costs, order = rank(HAND, _net(), Constraints(min_device_rows=1))
    assert min(costs.a[order]) == 1


def test_infeasible_names_the_binding_constraint():
    with pytest.raises(InfeasibleError, match="--deadline") as info:
        rank(HAND, _net(), Constraints(deadline_s=0.01, exclude=("device",)))
    assert info.value.exit_code == 1
    assert "--exclude device" not in str(info.value).split("binding constraint:")[1]


def _brute(rows: Rows, net, limits: Constraints):
    """The plain loop: every pair of cut points, costed one row at a time."""
    last = len(rows.output_bytes) - 1
    hop1, hop2 = net.hops
    out = []
    for a in rows.cut_points:
        for b in rows.cut_points:
            if b < a:
                continue
            compute = sum(rows.seconds["device"][r] for r in range(1, a + 1))
            compute += sum(rows.seconds["fog"][r] for r in range(a + 1, b + 1))
            compute += sum(rows.seconds["cloud"][r] for r in range(b + 1, last + 1))
            moved = 0.0
            if a < b:
                moved += hop1.seconds(rows.output_bytes[a])
                if b < last:
                    moved += hop2.seconds(rows.output_bytes[b])
            elif a < last:
                if net.direct is not None:
                    moved += net.direct.seconds(rows.output_bytes[a])
                else:
                    moved += hop1.seconds(rows.output_bytes[a]) + hop2.seconds(rows.output_bytes[a])
            upload = rows.output_bytes[a] if a < last else 0
            ok = (limits.max_upload_bytes is None or upload <= limits.max_upload_bytes) and (
                limits.deadline_s is None or compute + moved <= limits.deadline_s
            )
            if ok:
                out.append((compute + moved, int(a), int(b)))
    return out


seconds = st.floats(0, 2, allow_nan=False)


@st.composite
def problems(draw):
    n = draw(st.integers(1, 12))
    rows = _rows(
        *([0.0, *draw(st.lists(seconds, min_size=n, max_size=n))] for _ in range(3)),
        out_bytes=draw(st.lists(st.integers(1, 10**7), min_size=n + 1, max_size=n + 1)),
        cuts=sorted({0, n, *draw(st.lists(st.integers(1, n), max_size=n))}),
    )
    rate = st.floats(1e4, 1e10)
    delay = st.floats(0, 0.2)
    hop = st.builds(lambda r, d: Hop.model_construct(bandwidth=r, delay=d), rate, delay)
    net = _net().model_copy(
        update={
            "hops": [draw(hop), draw(hop)],
            "direct": draw(st.none() | hop),
        }
    )
    limits = Constraints(
        max_upload_bytes=draw(st.none() | st.integers(0, 10**7)),
        deadline_s=draw(st.none() | st.floats(0, 10)),
    )
    return rows, net, limits


@settings(max_examples=300, deadline=None)
@given(problems())
def test_enumeration_finds_the_brute_force_optimum(problem):
    rows, net, limits = problem
    expected = _brute(rows, net, limits)
    if not expected:
        with pytest.raises(InfeasibleError):
            rank(rows, net, limits)
        return
    costs, order = rank(rows, net, limits)
    assert len(order) == len(expected)
    best = costs.candidate(order[0], rows.last)
    assert math.isclose(best["latency_s"], min(expected)[0], rel_tol=1e-9, abs_tol=1e-12)
    assert best["latency_s"] == pytest.approx(
        sum(best["compute_s"].values()) + sum(best["transfer_s"])
    )

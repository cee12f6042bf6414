"""The design space and its ground truth: real inference outcomes and the simulator's
own device model, per device."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fogsim.optimize.designs import THRESHOLDS, design_space
from fogsim.optimize.population import population
from fogsim.optimize.truth import ground_truth, kind_costs
from fogsim.scenario import load_scenario
from fogsim.sim.device import device_tables
from fogsim.sim.rng import Streams
from fogsim.sim.routes import Kinds
from fogsim.sim.workload import generate_workload

ROOT = Path(__file__).resolve().parents[1]
CITY = ROOT / "scenarios/city-heterogeneous.yaml"
SMALL = ["duration=30 s"] + [f"devices[{i}].count=25" for i in range(4)]


@pytest.fixture(scope="module")
def city():
    scenario = load_scenario(CITY, SMALL)
    return scenario, design_space(scenario), population(scenario)


def test_the_space_is_every_fitting_checkpoint_at_every_threshold(city):
    scenario, space, _ = city
    stems = sorted({d.checkpoint.stem for d in space.designs})
    assert all(stem.startswith("fmnist-") for stem in stems)  # cifar10 ones do not fit
    assert {"fmnist-binary", "fmnist-int8", "fmnist-fp32"} <= set(stems)
    assert "fmnist-3tier" not in stems  # the city has no fog server for its middle part
    assert len(space.designs) == len(stems) * len(THRESHOLDS)
    assert len(set(space.names)) == len(space.names)
    for design in space.designs:
        assert design.kind_share.sum() == pytest.approx(1.0)


def test_accuracy_and_exit_rate_come_from_the_outcomes(city):
    _, space, _ = city
    for m, outcomes in enumerate(space.models):
        mine = [d for d in space.designs if d.model == m]
        # Threshold 0: nothing exits, every answer is the cloud's.
        assert mine[0].exit_rate == 0.0
        assert mine[0].accuracy == pytest.approx(np.mean(outcomes.cloud_pred == outcomes.labels))
        # Above ln 10 every image exits at the first exit.
        assert mine[-1].exit_rate == 1.0
        first = np.mean(outcomes.exit_pred[:, 0] == outcomes.labels)
        assert mine[-1].accuracy == pytest.approx(first)
        rates = [d.exit_rate for d in mine]
        assert rates == sorted(rates)


def test_kind_costs_are_the_simulators_own_per_device(city):
    scenario, space, devices = city
    for outcomes in space.models[:3]:
        kinds = Kinds(outcomes)
        workload = generate_workload(scenario, outcomes.labels, Streams(scenario.seed))
        kind = np.arange(workload.size) % (kinds.n_exits + 1)  # every exit and the features
        seconds, joules, _ = device_tables(scenario, workload, kinds, kind)
        kind_s, kind_j, _, _ = kind_costs(scenario, outcomes, devices, np.arange(devices.size))
        np.testing.assert_allclose(seconds, kind_s[workload.device, kind], rtol=1e-12)
        np.testing.assert_allclose(joules, kind_j[workload.device, kind], rtol=1e-12)


def test_sending_adds_the_uplink_time_and_the_radio_delay(city):
    scenario, space, devices = city
    truth = ground_truth(scenario, space, devices)
    names = space.names
    never, always = names.index("fmnist-binary@0.00"), names.index("fmnist-binary@2.40")
    kind_s, _, _, _ = kind_costs(
        scenario, space.models[space.designs[never].model], devices, np.arange(devices.size)
    )
    # All exit: compute to the exit only.
    np.testing.assert_allclose(truth.latency_s[:, always], kind_s[:, 0], rtol=1e-12)
    # None exits: the whole device part, then its features over the device's own uplink.
    g = devices.group
    radio_delay = np.array([grp.radio.delay for grp in scenario.devices])[g]
    uplink = np.array([grp.radio.uplink for grp in scenario.devices])[g]
    uplink = uplink * np.concatenate([f.uplink for f in devices.factors])
    bits = space.designs[never].kind_bits[1]
    expected = kind_s[:, 1] + bits / uplink + radio_delay
    np.testing.assert_allclose(truth.latency_s[:, never], expected, rtol=1e-12)
    assert (truth.energy_j[:, never] > truth.energy_j[:, always]).all()

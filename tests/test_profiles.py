"""The shipped profile library: every power figure sourced, and no field that does nothing."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from sim_fixtures import BASE, small_scenario

from fogsim.scenario import ScenarioError
from fogsim.scenario.models import CloudProfile, DeviceProfile, RadioProfile
from fogsim.scenario.profiles import expand, library

KINDS = {"device": DeviceProfile, "radio": RadioProfile, "cloud": CloudProfile}
SOURCED = {
    "device": ("throughput", "idle_power", "active_power"),
    "radio": ("uplink", "downlink", "delay", "energy"),
    "cloud": ("throughput", "batch_overhead", "power", "idle_power"),
}


@pytest.mark.parametrize(
    ("kind", "name"), [(kind, name) for kind in KINDS for name in library(kind)]
)
def test_every_shipped_profile_validates_and_sources_its_figures(kind: str, name: str) -> None:
    profile = KINDS[kind].model_validate(expand(kind, name))
    for field in SOURCED[kind]:
        assert profile.sources.get(field), f"{kind} {name}: {field} has no source"


def test_shipped_devices_spend_energy_by_their_own_power() -> None:
    for name in library("device"):
        profile = DeviceProfile.model_validate(expand("device", name))
        assert profile.compute_energy == "active_power"
        assert 0 < profile.idle_power < profile.active_power


def device_with(tmp_path: Path, **profile) -> dict:
    group = copy.deepcopy(BASE["devices"][0])
    group["profile"] = {"base": "rpi4", **profile}
    return group


def test_energy_per_mac_without_per_op_is_an_error_not_ignored(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="compute_energy: per_op"):
        small_scenario(
            tmp_path, devices=[device_with(tmp_path, energy_per_mac={"fp32": "1 pJ/MAC"})]
        )


def test_active_power_below_idle_power_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="below idle_power"):
        small_scenario(tmp_path, devices=[device_with(tmp_path, active_power="1 W")])


def test_radio_and_cloud_profiles_must_give_receive_and_idle_figures(tmp_path: Path) -> None:
    group = copy.deepcopy(BASE["devices"][0])
    energy = {"model": "per_bit", "tx": "1 uJ/bit"}
    group["radio"] = {"uplink": "1 Mbps", "downlink": "1 Mbps", "delay": "1 ms", "energy": energy}
    with pytest.raises(ScenarioError, match="rx"):
        small_scenario(tmp_path, devices=[group])
    profile = {"throughput": "1 TMAC/s", "batch_overhead": "1 ms", "power": "70 W"}
    cloud = {**BASE["cloud"], "profile": profile}
    with pytest.raises(ScenarioError, match="idle_power"):
        small_scenario(tmp_path, cloud=cloud)

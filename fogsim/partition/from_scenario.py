"""A scenario's tiers for `fogsim partition --scenario`: its first device group, the fog
server that serves it and the cloud nearest that server, with the routes between them.

A route of several links becomes one hop: carried store-and-forward, a message of B bytes
takes the sum of the delays plus 8B times the sum of 1/bandwidth, which is one hop with
the summed delay and the harmonic bandwidth.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from fogsim.errors import UserInputError
from fogsim.partition.network import Hop, TierNetwork, network_from_data
from fogsim.scenario import profiles

if TYPE_CHECKING:
    from fogsim.scenario import Scenario


def load(path: Path) -> Scenario:
    """The scenario at ``path``; its problems as one UserInputError."""
    from fogsim.scenario.load import ScenarioError, load_scenario

    try:
        return load_scenario(path)
    except ScenarioError as exc:
        raise UserInputError(str(exc)) from None


def network_of_scenario(path: Path) -> TierNetwork:
    from fogsim.topology import Topology

    scenario = load(path)
    topology = Topology(scenario)
    group = scenario.devices[0]
    gateway = group.gateways[0]
    fog = topology.fog_for(0, gateway)
    if fog is None:
        raise UserInputError(
            f"{path}: no fog server serves device group {group.name!r} at {gateway!r}; "
            "add one to the scenario, or describe the tiers with --network NET.yaml"
        )
    fog_node = topology.node_of(fog)
    cloud = topology.cloud_for(fog_node)
    if cloud is None:
        raise UserInputError(f"{path}: no cloud is reachable from fog server {fog!r}")
    access = Hop.model_construct(bandwidth=group.radio.uplink, delay=group.radio.delay)
    cloud_node = topology.node_of(cloud)
    chain = [topology.links[name] for name in topology.route(fog_node, cloud_node) or []]
    direct = topology.route(gateway, cloud_node)
    data = {
        "device": group.profile,
        "fog": topology.fog[fog].profile,
        "cloud": topology.clouds[cloud].profile,
        "radio": group.radio,
        "hops": [
            _chain([access, *(topology.links[n] for n in topology.route(gateway, fog_node))]),
            _chain(chain),
        ],
        "direct": None
        if direct is None
        else _chain([access, *(topology.links[n] for n in direct)]),
    }
    net = network_from_data(data, origin=str(path))
    names = {
        "device": _name_of("device", group.profile),
        "fog": _name_of("server", topology.fog[fog].profile),
        "cloud": _name_of("server", topology.clouds[cloud].profile),
    }
    return net.model_copy(update={"names": names})


def _chain(links: list) -> Hop:
    if not links:
        return Hop.model_construct(bandwidth=float("inf"), delay=0.0)
    # Built from floats already in base units, which the unit-string validators refuse.
    return Hop.model_construct(
        bandwidth=1 / sum(1 / link.bandwidth for link in links),
        delay=sum(link.delay for link in links),
    )


def _name_of(kind: str, profile: object) -> str:
    """The library name of a profile the scenario took unchanged (else no name)."""
    model = type(profile)
    for name, data in profiles.library(kind).items():
        if model.model_validate(data) == profile:
            return name
    return ""

"""The tiers a partition spreads a network over, and the hops between them.

``fogsim partition --network NET.yaml`` reads this form (profile names from the library)::

    device: rpi4
    fog: edge-server
    cloud: t4
    hops:                                   # device to fog, then fog to cloud
      - {bandwidth: 1.6 Mbps, delay: 66.7 ms}
      - {bandwidth: 50 Mbps, delay: 20 ms}
    direct: {bandwidth: 1.6 Mbps, delay: 100 ms}   # optional: device to cloud
    radio: wifi                             # optional: the device's radio, for its energy
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from fogsim.errors import UserInputError
from fogsim.scenario import profiles
from fogsim.scenario.models import DeviceProfile, RadioProfile, ServerProfile
from fogsim.scenario.quantities import BitRate, Seconds

TIERS = ("device", "fog", "cloud")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Hop(Strict):
    """A transfer: each costs the delay plus its bytes over the bandwidth."""

    bandwidth: BitRate
    delay: Seconds = 0.0

    def seconds(self, nbytes: float) -> float:
        return self.delay + 8 * nbytes / self.bandwidth


def _named(kind: str):
    return BeforeValidator(lambda value: profiles.expand(kind, value))


class TierNetwork(Strict):
    """Three tiers (library profiles, by name) and the hops between them."""

    device: Annotated[DeviceProfile, _named("device")]
    fog: Annotated[ServerProfile, _named("server")]
    cloud: Annotated[ServerProfile, _named("server")]
    hops: list[Hop] = Field(min_length=2, max_length=2, description="device-fog, fog-cloud")
    direct: Hop | None = None
    radio: Annotated[RadioProfile, _named("radio")] | None = None
    names: dict[str, str] = Field(default_factory=dict, description="tier: its profile's name")


def load_network(path: Path) -> TierNetwork:
    """Read NET.yaml; a UserInputError names each bad key with its path in the file."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise UserInputError(f"cannot read network file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise UserInputError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise UserInputError(f"{path}: expected a mapping with device, fog, cloud and hops")
    return network_from_data(data, origin=str(path))


def network_from_data(data: dict[str, Any], origin: str = "network") -> TierNetwork:
    names = {tier: _profile_name(data.get(tier)) for tier in TIERS}
    try:
        return TierNetwork.model_validate({**data, "names": names})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc'][:3])}: {error['msg']}"
            for error in exc.errors()
        )
        raise UserInputError(f"{origin}: {problems}") from None


def _profile_name(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("base"), str):
        return value["base"]
    return ""

"""The scenario: typed, frozen models of everything a run needs, units resolved.

Every model forbids unknown keys. Quantities are floats in base units (see
``fogsim.units``); paths are absolute, resolved against the scenario file.
"""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PositiveInt,
    ValidationInfo,
    model_validator,
)

from fogsim.policies import EarlyExit, PolicySpec
from fogsim.scenario import profiles
from fogsim.scenario.drift import GroupDrift
from fogsim.scenario.failures import Failures, Recovery
from fogsim.scenario.mobility import Mobility

# The network's models live in their own module; these names stay importable from here.
from fogsim.scenario.network import Gateway as Gateway
from fogsim.scenario.network import LinkSpec as LinkSpec
from fogsim.scenario.network import NetLink as NetLink
from fogsim.scenario.network import Network
from fogsim.scenario.network import Node as Node
from fogsim.scenario.quantities import (
    BitRate,
    Joules,
    JoulesPerBit,
    JoulesPerMac,
    MacsPerSecond,
    PositiveSeconds,
    Rate,
    Seconds,
    Watts,
    WattsPerBitRate,
)

Precision = Literal["fp32", "int8", "int4", "int2", "ternary", "binary"]
Name = Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _resolve_path(value: Any, info: ValidationInfo) -> Any:
    """Resolve a relative path against the scenario file's folder."""
    base = (info.context or {}).get("base_dir")
    if isinstance(value, str | Path) and base is not None:
        return (Path(base) / Path(value).expanduser()).resolve()
    return value


ScenarioPath = Annotated[Path, BeforeValidator(_resolve_path)]


def _existing_file(what: str, hint: str = "") -> AfterValidator:
    def exists(path: Path) -> Path:
        if not path.is_file():
            extra = f"; {hint}" if hint else ""
            raise ValueError(
                f"{what} not found: {path} (paths are relative to the scenario file{extra})"
            )
        return path

    return AfterValidator(exists)


# ---------------------------------------------------------------- profiles
class DeviceProfile(Strict):
    """What a device can compute, how fast, and at what power."""

    description: str = ""
    throughput: dict[Precision, MacsPerSecond]
    idle_power: Watts = Field(description="the whole device, outside compute")
    active_power: Watts = Field(description="the whole device while it computes")
    compute_energy: Literal["active_power", "per_op"] = Field(
        default="active_power",
        description="active_power: active_power x compute time; "
        "per_op: MACs x the device's own energy per MAC (energy_per_mac)",
    )
    energy_table: str | None = Field(
        default=None, description="per_op only: a named table under energy_per_mac"
    )
    energy_per_mac: dict[Precision, JoulesPerMac] = Field(
        default_factory=dict, description="per_op only: the device's energy per MAC, by precision"
    )
    memory_bandwidth: BitRate | None = Field(
        default=None,
        description="sustained memory bandwidth (e.g. '4 GB/s'); with it, compute is a "
        "roofline: max(MACs / throughput, bytes moved / memory_bandwidth)",
    )
    layer_overhead: Seconds = Field(
        default=0.0, description="fixed time per conv/linear layer run (dispatch, setup)"
    )
    sources: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _fields_in_use(self) -> DeviceProfile:
        # A field that changes nothing misleads whoever sets it.
        if self.compute_energy == "active_power" and (self.energy_table or self.energy_per_mac):
            raise ValueError(
                "energy_per_mac and energy_table count only with compute_energy: per_op; "
                "add compute_energy: per_op, or remove them (compute energy is then "
                "active_power x compute time)"
            )
        if self.active_power < self.idle_power:
            raise ValueError(
                f"active_power ({self.active_power} W) is below idle_power "
                f"({self.idle_power} W); active_power is the whole device while computing"
            )
        return self


class PerBitRadioEnergy(Strict):
    """Energy per bit sent (tx) and received (rx), measured at the profile's link rates."""

    model: Literal["per_bit"]
    tx: JoulesPerBit
    rx: JoulesPerBit


class PowerRadioEnergy(Strict):
    """Huang et al. (2012): power linear in the rate while sending or receiving, then a tail."""

    model: Literal["power"]
    tx_per_bps: WattsPerBitRate
    rx_per_bps: WattsPerBitRate
    tx_base: Watts = Field(description="drawn whenever the radio sends or receives")
    tail: Seconds = 0.0
    tail_power: Watts = 0.0


class RadioProfile(Strict):
    """The device's access link to its gateway and the energy it spends on it."""

    description: str = ""
    uplink: BitRate
    downlink: BitRate
    delay: Seconds
    energy: Annotated[PerBitRadioEnergy | PowerRadioEnergy, Field(discriminator="model")]
    sources: dict[str, str] = Field(default_factory=dict)


def _every_precision(value: Any) -> Any:
    """One throughput for every precision becomes a mapping with that figure for each."""
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return dict.fromkeys(typing.get_args(Precision), value)
    return value


class ServerProfile(Strict):
    """A fog or cloud server's worker: a batch takes batch_overhead + the sum of its
    requests' work, each the MACs it runs over the throughput at each precision, or a
    fixed ``request_time`` (a server whose work is not a network's layers)."""

    description: str = ""
    throughput: Annotated[dict[Precision, MacsPerSecond], BeforeValidator(_every_precision)] = (
        Field(
            default_factory=dict,
            description="one figure for every precision, or one per precision",
        )
    )
    request_time: PositiveSeconds | None = Field(
        default=None,
        description="a fixed time per request in place of its MACs over the throughput "
        "(e.g. 0.05 ms, as a YAFS or iFogSim service is given); give this or throughput",
    )
    batch_overhead: Seconds
    power: Watts = Field(description="one worker while it runs a batch")
    idle_power: Watts = Field(description="one worker while it waits for a batch")
    sources: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_time_model(self) -> ServerProfile:
        # A throughput that request_time overrides would change nothing, and mislead.
        if self.request_time is not None and self.throughput:
            raise ValueError(
                "give throughput (work as MACs over it) or request_time (a fixed time per "
                "request), not both; a profile with a base keeps the base's throughput, so "
                "write the profile in full with request_time"
            )
        if self.request_time is None and not self.throughput:
            raise ValueError(
                "give throughput (e.g. 4 TMAC/s) or request_time (e.g. 0.05 ms per request)"
            )
        return self

    def seconds(self, macs: dict[str, int]) -> float:
        """Time one worker takes for ``macs`` (MACs by precision), without the overhead."""
        if self.request_time is not None:
            return self.request_time
        total = 0.0
        for precision, count in macs.items():
            rate = self.rate(precision)
            if rate is None:
                raise ValueError(f"no {precision} throughput")
            total += count / rate
        return total

    def rate(self, precision: str) -> float | None:
        return self.throughput.get(precision)  # type: ignore[call-overload]


CloudProfile = ServerProfile  # its name before fog servers shared it


def _profile(kind: str):
    return BeforeValidator(lambda value: profiles.expand(kind, value))


# ---------------------------------------------------------------- arrivals
class Poisson(Strict):
    process: Literal["poisson"]
    rate: Rate


class Periodic(Strict):
    process: Literal["periodic"]
    period: PositiveSeconds
    jitter: Seconds = 0.0


class Bursty(Strict):
    """On/off: Poisson at ``on_rate`` during exponential on-periods, silent in off-periods."""

    process: Literal["bursty"]
    on_rate: Rate
    mean_on: PositiveSeconds
    mean_off: PositiveSeconds


class CsvTimestamps(Strict):
    process: Literal["csv"]
    path: Annotated[ScenarioPath, _existing_file("timestamp file")]
    column: str = "time_s"
    device_column: str | None = None

    @model_validator(mode="after")
    def _rows_are_readable(self) -> CsvTimestamps:
        # Read here, so that validation finds what the run would trip over.
        from fogsim.sim.arrivals import read_trace  # fogsim.sim imports these models

        read_trace(self.path, self.column, self.device_column)
        return self


Arrival = Annotated[Poisson | Periodic | Bursty | CsvTimestamps, Field(discriminator="process")]


# ---------------------------------------------------------------- devices
class UniformSpread(Strict):
    """Each device's figure is the profile's times a factor drawn uniformly in [low, high]."""

    distribution: Literal["uniform"]
    low: float = Field(gt=0, description="smallest factor on the profile's figure")
    high: float = Field(gt=0, description="largest factor on the profile's figure")

    @model_validator(mode="after")
    def _ordered(self) -> UniformSpread:
        if self.low > self.high:
            raise ValueError(f"low ({self.low}) is above high ({self.high}); swap them")
        return self


class LognormalSpread(Strict):
    """Each device's figure is the profile's times exp(N(0, sigma)): the profile is the median."""

    distribution: Literal["lognormal"]
    sigma: float = Field(gt=0, le=2, description="standard deviation of the log factor")


Spread = Annotated[UniformSpread | LognormalSpread, Field(discriminator="distribution")]


class DeviceSpread(Strict):
    """How a group's devices differ from its profile: one factor per device and figure,
    drawn from the run's seed (stream ``population/<group>``)."""

    throughput: Spread | None = Field(default=None, description="every precision's throughput")
    memory_bandwidth: Spread | None = None
    power: Spread | None = Field(
        default=None, description="active_power (and energy_per_mac with per_op)"
    )
    uplink: Spread | None = Field(default=None, description="the radio's uplink rate")


class DeviceGroup(Strict):
    """``count`` identical devices: same profile, arrivals, radio and gateway(s)."""

    name: Name
    count: int = Field(gt=0, le=2**31 - 1, description="devices; indices are 32-bit integers")
    profile: Annotated[DeviceProfile, _profile("device")]
    radio: Annotated[RadioProfile, _profile("radio")]
    arrival: Arrival
    gateway: Name | list[Name] = Field(
        description="a gateway name, or a list that devices are spread over in turn"
    )
    queue_capacity: PositiveInt | None = Field(
        default=None, description="most requests a device holds, the one computing included"
    )
    battery: Joules | None = None
    fog: Name | None = Field(
        default=None,
        description="the fog server that serves the group: 'gateway' (the one at its "
        "gateway), 'nearest' (by route) or a fog server's name; default: nearest, "
        "where the scenario has fog servers",
    )
    class_skew: float | None = Field(
        default=None,
        gt=0,
        description="Dirichlet concentration of each device's class mix; "
        "small is skewed, none draws images uniformly",
    )

    spread: DeviceSpread | None = Field(
        default=None,
        description="per-device draws around the profile and radio; none: identical devices",
    )

    @model_validator(mode="after")
    def _spread_has_a_figure(self) -> DeviceGroup:
        spread = self.spread
        if (
            spread is not None
            and spread.memory_bandwidth is not None
            and self.profile.memory_bandwidth is None
        ):
            raise ValueError(
                "spread.memory_bandwidth needs the profile's memory_bandwidth to spread "
                "around; add one to the profile (e.g. profile: {base: ..., "
                "memory_bandwidth: 4 GB/s}) or remove spread.memory_bandwidth"
            )
        return self

    @property
    def gateways(self) -> list[str]:
        return [self.gateway] if isinstance(self.gateway, str) else list(self.gateway)


# ---------------------------------------------------------------- cloud
class Batching(Strict):
    max_batch: PositiveInt = 1
    max_wait: Seconds = 0.0


class Server(Strict):
    """Workers with dynamic batching at a node of the network."""

    profile: Annotated[ServerProfile, _profile("server")]
    workers: PositiveInt = 1
    batching: Batching = Batching()
    queue_capacity: PositiveInt | None = None
    failures: Failures | None = None  # each worker fails on its own schedule


class FogServer(Server):
    """A fog server: ``at`` a gateway or any other node of the network."""

    name: Name
    at: Name


def _one_or_many(value: Any) -> Any:
    """One cloud is a list of one: its errors keep their place in the file (see load)."""
    return [value] if isinstance(value, dict) else value


class Cloud(Server):
    """A cloud. The short form's one cloud sits beyond the cloud link; with the explicit
    form, or with several clouds, ``at`` names its node."""

    name: Name = "cloud"
    at: Name | None = None


# ---------------------------------------------------------------- the rest
class DatasetSpec(Strict):
    name: str | None = None
    path: ScenarioPath | None = None
    split: Literal["train", "test"] = "test"


class ModelSpec(Strict):
    checkpoint: Annotated[
        ScenarioPath, _existing_file("checkpoint", "shipped checkpoints are in models/")
    ]
    allow_dataset_mismatch: bool = Field(
        default=False,
        description="run although the dataset's name or class names differ from the "
        "checkpoint card's (a different image shape or class count is always an error)",
    )


class Deadline(Strict):
    latency: PositiveSeconds
    fallback: Literal["none", "device", "edge"] = Field(
        default="none",
        description="device (or its older name edge): a late answer is replaced, at the "
        "deadline, by the device's last exit",
    )


class Outputs(Strict):
    dir: Path | None = Field(default=None, description="run directory; default runs/<name>")
    figures: bool = True


class Scenario(Strict):
    """One simulation: who sends what, over which links, to which cloud, under which policy."""

    name: Name
    description: str = ""
    seed: int = Field(ge=0)
    duration: PositiveSeconds
    dataset: DatasetSpec
    model: ModelSpec
    devices: list[DeviceGroup] = Field(min_length=1)
    network: Network
    fog: list[FogServer] = Field(default_factory=list)
    cloud: Annotated[list[Cloud], BeforeValidator(_one_or_many)] = Field(
        description="one cloud, or a list of named clouds"
    )
    policy: PolicySpec = EarlyExit()
    deadline: Deadline | None = None
    drift: list[GroupDrift] = Field(
        default_factory=list, description="drifted input per device group, and adaptation"
    )
    recovery: Recovery | None = Field(
        default=None, description="retries and fallback when work is lost or an answer is late"
    )
    mobility: Mobility | None = Field(
        default=None, description="gateway sites, moving device groups and handovers"
    )
    plan: (
        Annotated[
            ScenarioPath,
            _existing_file(
                "plan",
                "--set plan=P is relative to where it is typed; make one with `fogsim optimize`",
            ),
        ]
        | None
    ) = Field(default=None, description="a per-device plan: each device runs its own design")
    outputs: Outputs = Outputs()

    @model_validator(mode="after")
    def _answers_where_needed(self) -> Scenario:
        # Each of these acts on an answer reaching its device; without replies none does.
        if self.network.reply:
            return self
        needs = []
        if self.policy.name == "adaptive_exit":
            needs.append("policy adaptive_exit (it watches answers come back)")
        if self.recovery is not None:
            needs.append("recovery (it retries when no answer comes back in time)")
        if self.deadline is not None and self.deadline.fallback != "none":
            needs.append("deadline.fallback (it replaces a late answer)")
        if self.mobility is not None:
            needs.append("mobility (it forwards answers to a moving device)")
        if needs:
            raise ValueError(
                f"network.reply is false, but {'; '.join(needs)} needs answers to come "
                "back; remove it, or set network.reply: true"
            )
        return self

    @property
    def clouds(self) -> list[Cloud]:
        return list(self.cloud)

    @property
    def device_count(self) -> int:
        return sum(group.count for group in self.devices)

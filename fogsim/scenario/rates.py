"""A link bandwidth that varies over time: a trace (CSV of time and rate) or a generator.

In a scenario, a link's ``bandwidth`` is either a plain rate (``50 Mbps``) or one of

    bandwidth: {trace: traces/5g-downtown.csv, mean: 20 Mbps}
    bandwidth: {generator: step, at: [10 s], values: [50 Mbps, 5 Mbps]}
    bandwidth: {generator: markov, up: 50 Mbps, down: 0 bit/s, mean_up: 5 s, mean_down: 1 s}
    bandwidth: {generator: sinusoid, mean: 30 Mbps, amplitude: 20 Mbps, period: 60 s}
    bandwidth: {generator: random_walk, start: 30 Mbps, min: 5 Mbps, max: 50 Mbps,
                sigma: 2 Mbps, every: 1 s}

Every profile is piecewise constant: ``changes(rng)`` yields ``(time_s, rate_bps)`` pairs,
each rate holding until the next change. The field's value is a :class:`VaryingRate`, a
float equal to the profile's positive ``nominal`` rate (what code that reads one number per
link sees) that carries its profile for the links of the simulation.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    model_validator,
)

from fogsim import units
from fogsim.scenario.quantities import BitRate, PositiveSeconds, Seconds

Changes = Iterator[tuple[float, float]]
NonNegativeRate = Annotated[
    float,
    PlainValidator(units.BANDWIDTH.parse),
    Field(ge=0),
    PlainSerializer(units.BANDWIDTH.format, return_type=str),
]


class _Profile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def changes(self, rng: np.random.Generator) -> Changes:
        """``(time_s, rate_bps)`` from time 0 on, times increasing; the last rate holds."""
        raise NotImplementedError

    @property
    def nominal(self) -> float:
        """The one positive rate that stands for the profile where one number is read."""
        raise NotImplementedError


class TraceProfile(_Profile):
    """Replays a CSV: a header row, then ``time_s,rate_bps`` rows; scaled to ``mean`` if given."""

    trace: Path
    mean: BitRate | None = Field(
        default=None, description="scale the trace so its time-weighted mean is this rate"
    )
    rows: tuple[tuple[float, float], ...] = Field(default=(), exclude=True)

    @model_validator(mode="after")
    def _read(self) -> TraceProfile:
        rows = read_trace(self.trace)
        if self.mean is not None:
            mean = _time_weighted_mean(rows)
            if not mean > 0:
                raise ValueError(f"{self.trace.name}: the mean rate is 0, so it cannot be scaled")
            scale = self.mean / mean
            rows = tuple((t, r * scale) for t, r in rows)
        object.__setattr__(self, "rows", rows)
        return self

    @property
    def nominal(self) -> float:
        return _time_weighted_mean(self.rows) or self.rows[-1][1]

    def changes(self, rng: np.random.Generator) -> Changes:
        yield 0.0, self.rows[0][1]
        yield from ((t, r) for t, r in self.rows if t > 0)


class StepProfile(_Profile):
    """``values[0]`` until ``at[0]``, ``values[1]`` until ``at[1]``, and so on."""

    generator: Literal["step"]
    at: list[Seconds] = Field(min_length=1)
    values: list[NonNegativeRate]

    @model_validator(mode="after")
    def _shape(self) -> StepProfile:
        if len(self.values) != len(self.at) + 1:
            raise ValueError(
                f"give one more value than change times: {len(self.at)} times in 'at' need "
                f"{len(self.at) + 1} values, got {len(self.values)}"
            )
        if any(b <= a for a, b in zip(self.at, self.at[1:], strict=False)) or self.at[0] <= 0:
            raise ValueError("the times in 'at' must be positive and increasing")
        if self.values[-1] <= 0:
            raise ValueError("the last value must be positive, or transfers would never end")
        return self

    @property
    def nominal(self) -> float:
        return max(self.values)

    def changes(self, rng: np.random.Generator) -> Changes:
        yield 0.0, self.values[0]
        yield from zip(self.at, self.values[1:], strict=True)


class MarkovProfile(_Profile):
    """Up and down in turn, for exponential periods of mean ``mean_up`` and ``mean_down``.

    (Not ``on``/``off``: YAML reads those words as booleans.)
    """

    generator: Literal["markov"]
    up: BitRate
    down: NonNegativeRate = 0.0
    mean_up: PositiveSeconds
    mean_down: PositiveSeconds
    start: Literal["up", "down"] = "up"

    @property
    def nominal(self) -> float:
        return self.up

    def changes(self, rng: np.random.Generator) -> Changes:
        t, up = 0.0, self.start == "up"
        while True:
            yield t, self.up if up else self.down
            t += rng.exponential(self.mean_up if up else self.mean_down)
            up = not up


class SinusoidProfile(_Profile):
    """``mean + amplitude * sin(2 pi t / period + phase)``, held constant over each ``step``
    at its exact average over that step (so the bits sent per step are exact)."""

    generator: Literal["sinusoid"]
    mean: BitRate
    amplitude: NonNegativeRate
    period: PositiveSeconds
    phase: float = Field(default=0.0, description="radians")
    step: PositiveSeconds = 0.1

    @model_validator(mode="after")
    def _positive(self) -> SinusoidProfile:
        if self.amplitude >= self.mean:
            raise ValueError("amplitude must be below mean, so that the rate stays positive")
        return self

    @property
    def nominal(self) -> float:
        return self.mean

    def changes(self, rng: np.random.Generator) -> Changes:
        omega = 2 * math.pi / self.period
        for k in range(2**62):
            a, b = k * self.step, (k + 1) * self.step
            swing = (math.cos(omega * a + self.phase) - math.cos(omega * b + self.phase)) / (
                omega * self.step
            )
            yield a, self.mean + self.amplitude * swing


class RandomWalkProfile(_Profile):
    """A Gaussian random walk from ``start``, one step of deviation ``sigma`` per ``every``,
    reflected into ``[min, max]``."""

    generator: Literal["random_walk"]
    start: BitRate
    min: BitRate
    max: BitRate
    sigma: NonNegativeRate
    every: PositiveSeconds = 1.0

    @model_validator(mode="after")
    def _bounds(self) -> RandomWalkProfile:
        if not self.min <= self.start <= self.max:
            raise ValueError("need min <= start <= max")
        return self

    @property
    def nominal(self) -> float:
        return self.start

    def changes(self, rng: np.random.Generator) -> Changes:
        rate, span = self.start, self.max - self.min
        for k in range(2**62):
            yield k * self.every, rate
            rate = _reflect(rate + rng.normal(0.0, self.sigma), self.min, span)


Profile = Annotated[
    StepProfile | MarkovProfile | SinusoidProfile | RandomWalkProfile,
    Field(discriminator="generator"),
]
GENERATORS = ("step", "markov", "sinusoid", "random_walk")
_GENERATED: TypeAdapter[Any] = TypeAdapter(Profile)


class VaryingRate(float):
    """A bandwidth that follows ``profile``; as a float, the profile's nominal rate."""

    profile: TraceProfile | StepProfile | MarkovProfile | SinusoidProfile | RandomWalkProfile

    def __new__(cls, profile: Any, nominal_bps: float) -> VaryingRate:
        rate = super().__new__(cls, nominal_bps)
        rate.profile = profile
        return rate

    def __reduce__(self) -> tuple[Any, ...]:
        return VaryingRate, (self.profile, float(self))


def _parse(value: Any, info: ValidationInfo) -> float:
    if isinstance(value, VaryingRate):
        return value
    if not isinstance(value, dict):
        rate = units.BANDWIDTH.parse(value)
        if not rate > 0:
            # Worded as the plain quantity fields word it.
            raise ValueError(f"Input should be greater than 0 (got {value!r})")
        return rate
    profile = _profile(value, info)
    return VaryingRate(profile, profile.nominal)


def _profile(value: dict[str, Any], info: ValidationInfo) -> Any:
    try:
        if "trace" in value:
            data = dict(value)
            base = (info.context or {}).get("base_dir")
            if isinstance(data["trace"], str) and base is not None:
                data["trace"] = (Path(base) / Path(data["trace"]).expanduser()).resolve()
            return TraceProfile.model_validate(data)
        if "generator" not in value:
            raise ValueError(
                "a varying bandwidth needs 'trace: FILE.csv' or 'generator: NAME' "
                f"(one of {', '.join(GENERATORS)})"
            )
        if value["generator"] not in GENERATORS:
            raise ValueError(
                f"unknown generator {value['generator']!r}; expected one of {', '.join(GENERATORS)}"
            )
        return _GENERATED.validate_python(value)
    except ValidationError as exc:
        raise ValueError(_first_error(exc)) from None


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(step) for step in error["loc"] if step not in GENERATORS)
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown key"
    elif error["type"] == "missing":
        message = "required key is missing"
    return f"{where}: {message}" if where else message


def _serialize(value: float) -> Any:
    if isinstance(value, VaryingRate):
        return value.profile.model_dump(mode="json", exclude_none=True)
    return units.BANDWIDTH.format(value)


LinkRate = Annotated[
    float,
    PlainValidator(_parse, json_schema_input_type=str | dict[str, Any]),
    PlainSerializer(_serialize),
]


def read_trace(path: Path) -> tuple[tuple[float, float], ...]:
    """The ``(time_s, rate_bps)`` rows of a trace CSV, checked; ValueError names the row."""
    if not path.is_file():
        raise ValueError(f"trace not found: {path} (paths are relative to the scenario file)")
    with path.open(newline="") as handle:
        lines = list(csv.reader(handle))
    rows: list[tuple[float, float]] = []
    for number, line in enumerate(lines[1:], start=2):
        if not line or not "".join(line).strip():
            continue
        try:
            t, rate = (float(cell) for cell in line)
        except ValueError:
            raise ValueError(
                f"{path.name} row {number}: expected two numbers 'time_s,rate_bps', got {line!r}"
            ) from None
        if not (math.isfinite(t) and math.isfinite(rate)) or t < 0 or rate < 0:
            raise ValueError(f"{path.name} row {number}: times and rates must be >= 0 and finite")
        if rows and t <= rows[-1][0]:
            raise ValueError(f"{path.name} row {number}: times must increase")
        rows.append((t, rate))
    if not rows:
        raise ValueError(f"{path.name}: no rows after the header 'time_s,rate_bps'")
    if rows[-1][1] <= 0:
        raise ValueError(f"{path.name}: the last rate holds after the trace, so it must be > 0")
    return tuple(rows)


def _time_weighted_mean(rows: tuple[tuple[float, float], ...]) -> float:
    if len(rows) < 2:
        return rows[0][1]
    times = np.array([t for t, _ in rows])
    rates = np.array([r for _, r in rows[:-1]])
    return float(np.sum(rates * np.diff(times)) / (times[-1] - times[0]))


def _reflect(rate: float, low: float, span: float) -> float:
    if span == 0:
        return low
    offset = (rate - low) % (2 * span)
    return low + (offset if offset <= span else 2 * span - offset)

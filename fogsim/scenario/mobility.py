"""Devices that move (``mobility:``): where the gateways stand and how far they reach, how
each mobile device group moves (a random waypoint over the city's area, or a CSV of
positions), and what a handover costs the device's radio.

A mobile group's ``gateway:`` list names the gateways its devices may attach to; each of
them needs a place here. Devices of groups not named here stay where they are.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from fogsim.scenario.quantities import Metres, PositiveMetres, Seconds, Speed


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GatewaySite(_Strict):
    """A gateway's position (metres, in the area's frame) and the radius it covers."""

    name: str = Field(min_length=1)
    x: Metres
    y: Metres
    coverage: PositiveMetres = Field(description="devices within this distance can attach")


class Area(_Strict):
    """The city's area, from (0, 0) to (width, height): where random waypoints are drawn."""

    width: PositiveMetres
    height: PositiveMetres


def _a_range(value: Any) -> Any:
    """One time is the range from it to itself."""
    return [value, value] if isinstance(value, str | int | float) else value


class _Walk(_Strict):
    """A walk between random points at speeds drawn in a range, with pauses between legs."""

    group: str = Field(min_length=1)
    speed: tuple[Speed, Speed] = Field(description="[slowest, fastest], e.g. [1 m/s, 15 m/s]")
    pause: Annotated[tuple[Seconds, Seconds], BeforeValidator(_a_range)] = Field(
        default=(0.0, 0.0), description="the stop at each waypoint: a time, or [shortest, longest]"
    )

    @model_validator(mode="after")
    def _ordered(self) -> _Walk:
        if self.speed[0] > self.speed[1]:
            raise ValueError(f"speed: {self.speed[0]} m/s is above {self.speed[1]} m/s; swap them")
        if self.pause[0] > self.pause[1]:
            raise ValueError(f"pause: {self.pause[0]} s is above {self.pause[1]} s; swap them")
        return self


class RandomWaypoint(_Walk):
    """Each device starts at a uniform point of the area, walks in a straight line to another
    uniform point at a speed drawn uniformly in ``speed``, pauses (``pause``: a time, or a
    range drawn uniformly), and so on (Johnson and Maltz 1996)."""

    model: Literal["random_waypoint"]


def _resolve(value: Any, info: ValidationInfo) -> Any:
    from fogsim.scenario.models import _resolve_path  # models imports this module

    return _resolve_path(value, info)


def _read_now(value: Any, info: ValidationInfo, reader: str) -> Any:
    """The file resolved against the scenario's folder, read now by ``reader`` of
    fogsim.sim.movement, so that validation finds what the run would trip over."""
    from fogsim.sim import movement  # fogsim.sim imports these models

    path = _resolve(value, info)
    getattr(movement, reader)(path)
    return path


class PositionTrace(_Strict):
    """Positions from a CSV (header ``time_s,device,x_m,y_m``; ``device`` indexes the group's
    devices from 0): each device moves in a straight line from one of its rows to the next,
    stays at its first position before it and at its last after it."""

    group: str = Field(min_length=1)
    model: Literal["trace"]
    path: Path = Field(description="the CSV, relative to the scenario file")

    @field_validator("path", mode="before")
    @classmethod
    def _readable(cls, value: Any, info: ValidationInfo) -> Any:
        return _read_now(value, info, "read_positions")


class RoadGraph(_Walk):
    """Random waypoints on roads: each device starts at a uniform crossing of the road network
    (a CSV of straight two-way roads, ``x1_m,y1_m,x2_m,y2_m``, joined where their ends meet),
    drives the shortest way to another uniform crossing at a speed drawn uniformly in
    ``speed``, pauses, and so on."""

    model: Literal["road_graph"]
    roads: Path = Field(description="the roads' CSV, relative to the scenario file")

    @field_validator("roads", mode="before")
    @classmethod
    def _readable(cls, value: Any, info: ValidationInfo) -> Any:
        return _read_now(value, info, "read_roads")


Movement = Annotated[RandomWaypoint | PositionTrace | RoadGraph, Field(discriminator="model")]


class Handover(_Strict):
    """What a handover costs: the device's radio is down for ``interruption``, and what becomes
    of the requests in flight (see ``fogsim.sim.mobility``)."""

    interruption: Seconds = Field(
        default=0.05, description="the radio's outage at each handover (e.g. 50 ms)"
    )
    in_flight: Literal["finish", "retry"] = Field(
        default="finish",
        description="finish: a request keeps the path it started on (sends pause over the "
        "radio's outages), its answer forwarded to the device's new gateway; retry: a request "
        "in flight at a handover is abandoned on its old path and sent again, whole, through "
        "the new gateway once the radio is up (lost in flight out of coverage)",
    )


class Mobility(_Strict):
    """Gateway sites, the area, how each mobile group moves, and the handover's cost."""

    area: Area | None = Field(default=None, description="needed by random_waypoint")
    gateways: list[GatewaySite] = Field(min_length=1)
    devices: list[Movement] = Field(min_length=1)
    handover: Handover = Handover()

    @model_validator(mode="after")
    def _consistent(self) -> Mobility:
        names = [site.name for site in self.gateways]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"gateway {repeated[0]!r} has two sites; give each gateway one")
        groups = [move.group for move in self.devices]
        repeated = sorted({name for name in groups if groups.count(name) > 1})
        if repeated:
            raise ValueError(f"group {repeated[0]!r} moves twice; give each group one movement")
        if self.area is None and any(isinstance(m, RandomWaypoint) for m in self.devices):
            raise ValueError(
                "random_waypoint draws points in the city's area; add area: {width: ..., "
                "height: ...}"
            )
        return self

    def site(self, name: str) -> GatewaySite | None:
        return next((site for site in self.gateways if site.name == name), None)

    def movement(self, group: str) -> Movement | None:
        return next((move for move in self.devices if move.group == group), None)


def problems(scenario: Any) -> list[tuple[tuple[str | int, ...], str]]:
    """What makes a valid ``mobility`` block unusable with the rest of the scenario, each with
    its YAML path: unknown groups and gateways, gateways a mobile group may use without a site
    or with a shared cell, traces that miss devices, and the adaptive policy under
    ``in_flight: retry``."""
    mobility: Mobility | None = scenario.mobility
    if mobility is None:
        return []
    from fogsim.sim.movement import read_positions

    found: list[tuple[tuple[str | int, ...], str]] = []
    nodes = {node.name: node for node in scenario.network.gateway_nodes}
    for i, site in enumerate(mobility.gateways):
        if site.name not in nodes:
            known = ", ".join(sorted(nodes))
            message = f"unknown gateway {site.name!r}; known: {known}"
            found.append((("mobility", "gateways", i, "name"), message))
    groups = {group.name: group for group in scenario.devices}
    for i, move in enumerate(mobility.devices):
        group = groups.get(move.group)
        if group is None:
            found.append(
                (
                    ("mobility", "devices", i, "group"),
                    f"unknown device group {move.group!r}; known: {', '.join(groups)}",
                )
            )
            continue
        for name in group.gateways:
            node = nodes.get(name)
            if mobility.site(name) is None:
                found.append(
                    (
                        ("mobility", "devices", i, "group"),
                        f"group {move.group!r} may attach to gateway {name!r}, which has no "
                        "site; add it under mobility.gateways (name, x, y, coverage)",
                    )
                )
            elif node is not None and node.access == "shared":
                found.append(
                    (
                        ("mobility", "devices", i, "group"),
                        f"gateway {name!r} has a shared cell; mobile devices need dedicated "
                        "access for now (a handover pauses the device's own radio)",
                    )
                )
        if isinstance(move, PositionTrace):
            present = set(read_positions(move.path).device.tolist())
            beyond = sorted(d for d in present if d >= group.count)
            missing = sorted(set(range(group.count)) - present)
            if beyond or missing:
                what = (
                    f"device {beyond[0]} is beyond the group's {group.count} devices"
                    if beyond
                    else f"device {missing[0]} has no position"
                )
                found.append(
                    (
                        ("mobility", "devices", i, "path"),
                        f"{move.path}: {what}; give rows for devices 0 to {group.count - 1}",
                    )
                )
    if scenario.policy.name == "adaptive_exit" and mobility.handover.in_flight == "retry":
        found.append(
            (
                ("mobility", "handover", "in_flight"),
                "adaptive_exit with in_flight: retry is not supported yet (the adaptive policy "
                "sends over the device's radio itself, as it decides); use in_flight: finish, "
                "or a fixed policy",
            )
        )
    return found


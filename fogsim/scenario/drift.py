"""Drifted input per device group, and how a group adapts to it on the device.

``drift:`` in a scenario is a list, one entry per drifted group: from ``start`` on, the
group's images are corrupted (real image transforms, ``fogsim.data.corruptions``) and/or
drawn from a subset of the classes. With ``adaptation``, the group fine-tunes its device
part with RCT on labelled samples it collected (``fogsim.sim.adaptation``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, model_validator

from fogsim.scenario.quantities import Seconds


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Noise(_Strict):
    """Gaussian noise added to every pixel (in units of the full pixel range), clipped."""

    kind: Literal["noise"]
    std: float = Field(gt=0, le=1, description="standard deviation, 0..1 of the pixel range")


class Blur(_Strict):
    """Gaussian blur of ``sigma`` pixels (kernel 2 ceil(3 sigma) + 1 wide)."""

    kind: Literal["blur"]
    sigma: float = Field(gt=0, le=10, description="in pixels")


class Brightness(_Strict):
    """Every pixel times ``factor`` (below 1 darker, above 1 brighter), clipped."""

    kind: Literal["brightness"]
    factor: float = Field(ge=0, le=10)


class Rotation(_Strict):
    """Each image turned by an angle drawn uniformly in [-degrees, degrees]."""

    kind: Literal["rotation"]
    degrees: float = Field(gt=0, le=180)


Corruption = Annotated[Noise | Blur | Brightness | Rotation, Field(discriminator="kind")]


class Trigger(_Strict):
    """When a group adapts: at fixed times, or when a measure over its last ``window``
    requests (labelled requests, for accuracy) falls below a level."""

    at: list[Seconds] | None = Field(default=None, description="adapt at these times")
    exit_rate_below: float | None = Field(default=None, gt=0, le=1)
    accuracy_below: float | None = Field(
        default=None, gt=0, le=1, description="the device exit's accuracy on labelled requests"
    )
    window: PositiveInt = Field(default=200, description="requests the measure is taken over")

    @model_validator(mode="after")
    def _one_kind(self) -> Trigger:
        levels = [self.exit_rate_below, self.accuracy_below]
        if (self.at is not None) == any(v is not None for v in levels):
            raise ValueError(
                "give the trigger either at: [times] or a level "
                "(exit_rate_below and/or accuracy_below)"
            )
        if self.at is not None and list(self.at) != sorted(self.at):
            raise ValueError("trigger.at: times must be in increasing order")
        return self


class Adaptation(_Strict):
    """RCT fine-tuning of the group's device part (its blocks and exit heads) on the last
    ``samples`` labelled requests; every device of the group runs it, in its compute queue."""

    method: Literal["rct"] = "rct"
    trigger: Trigger
    labelled: float = Field(
        default=1.0, gt=0, le=1, description="fraction of requests whose label the device learns"
    )
    samples: PositiveInt = Field(default=512, description="labelled images trained on")
    epochs: PositiveInt = 3
    batch_size: PositiveInt = 32
    lr: float = Field(default=0.02, gt=0)
    weight_decay: float = Field(default=0.0, ge=0)
    max_adaptations: PositiveInt = 3
    cooldown: Seconds = Field(
        default=0.0, description="after an adaptation, no level trigger before this time passed"
    )


class GroupDrift(_Strict):
    """What a device group sees from ``start`` on, and whether it adapts."""

    group: str
    start: Seconds = 0.0
    corruptions: list[Corruption] = Field(
        default_factory=list, description="applied in order to every image"
    )
    classes: list[str | int] | None = Field(
        default=None, description="images drawn only from these classes (names or indices)"
    )
    adaptation: Adaptation | None = None

    @model_validator(mode="after")
    def _drifts(self) -> GroupDrift:
        if not self.corruptions and self.classes is None and self.adaptation is None:
            raise ValueError("give corruptions, classes or adaptation (else nothing changes)")
        if self.classes is not None and not self.classes:
            raise ValueError("classes: give at least one class")
        return self


def cross_checks(data: dict[str, Any]) -> list[tuple[tuple[str | int, ...], str]]:
    """Each drift entry names a device group once; an adapting group has no queue capacity
    (a training job must never be turned away)."""
    found: list[tuple[tuple[str | int, ...], str]] = []
    entries = data.get("drift")
    if not isinstance(entries, list):
        return found
    groups = {str(g.get("name")): g for g in data.get("devices") or [] if isinstance(g, dict)}
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            continue
        name = str(entry.get("group"))
        if name not in groups:
            known = ", ".join(sorted(groups)) or "none"
            found.append((("drift", index, "group"), f"unknown device group {name!r} ({known})"))
            continue
        if name in seen:
            found.append((("drift", index, "group"), f"group {name!r} drifts twice; merge them"))
        seen.add(name)
        if entry.get("adaptation") is not None and groups[name].get("queue_capacity") is not None:
            found.append(
                (
                    ("drift", index, "adaptation"),
                    f"group {name!r} has a queue_capacity, which could turn a training job "
                    "away; remove queue_capacity from the group to let it adapt",
                )
            )
    return found


def run_problems(
    devices: list[Any], drift: list[GroupDrift], exit_tiers: tuple[str, ...], classes: list[str]
) -> list[tuple[tuple[str | int, ...], str]]:
    """What would stop a valid drift block once the network is known (``fogsim validate``):
    classes the network does not have, and an adaptation that cannot train (no exit on the
    device, no int8 throughput for RCT's GEMMs)."""
    found: list[tuple[tuple[str | int, ...], str]] = []
    by_name = {group.name: group for group in devices}
    for i, d in enumerate(drift):
        for c in d.classes or []:
            if not (c in classes or (isinstance(c, int) and 0 <= c < len(classes))):
                found.append(
                    (
                        ("drift", i, "classes"),
                        f"{c!r} is no class of the network's dataset "
                        f"(classes: {', '.join(classes)}, or their indices)",
                    )
                )
        if d.adaptation is None:
            continue
        if "device" not in exit_tiers:
            found.append(
                (
                    ("drift", i, "adaptation"),
                    "the network has no exit on the device, so the devices cannot measure or "
                    "train it; use a checkpoint with a device exit, or remove adaptation",
                )
            )
        if "int8" not in by_name[d.group].profile.throughput:
            found.append(
                (
                    ("drift", i, "adaptation"),
                    f"group {d.group!r}: RCT trains with int8 GEMMs, but its device profile "
                    "gives no int8 throughput; add one, e.g. profile: {base: ..., "
                    "throughput: {int8: ...}}",
                )
            )
    return found

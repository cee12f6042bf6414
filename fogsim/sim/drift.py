"""Drifted input and on-device adaptation in a run, prepared before the event simulation.

A drifted group's requests from the drift's start on see corrupted images (and/or images
of fewer classes). Their outcomes are real inference on those images, and, after each
adaptation, on them with the group's fine-tuned weights (``fogsim.sim.adaptation``). Each
(model version, clean or drifted) form of a group's images is one more block of per-image
outcomes, cached on disk like the shipped network's (keyed by checkpoint and image
content); the blocks are appended to the shipped outcomes, and each request's image index
points into its block. Everything downstream (policy, device, network, records) then reads
the outcomes as usual; only the ``image`` column is set back to the dataset's index.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fogsim.data import load_dataset
from fogsim.data.dataset import Dataset, fingerprint
from fogsim.errors import UserInputError
from fogsim.inference import _ARRAYS, InferenceOutcomes, default_cache_dir, run_inference
from fogsim.policies import Tier
from fogsim.scenario.drift import GroupDrift
from fogsim.scenario.models import Scenario
from fogsim.sim.adaptation import (
    Adapted,
    adapt_checkpoint,
    device_training_time_and_energy,
    fine_tune_settings,
    next_trigger,
)
from fogsim.sim.device_jobs import DeviceJobs
from fogsim.sim.rng import Streams
from fogsim.sim.workload import Workload

_OP_FIELDS = ("edge_ops", "cloud_ops", "fog_ops", "full_ops", "feature_bytes", "edge_bytes")


class DriftedGroup:
    """One drifted group: its requests in time order, the images they see, and the outcomes
    of each model version on them."""

    def __init__(
        self,
        scenario: Scenario,
        spec: GroupDrift,
        where: str,
        workload: Workload,
        dataset: Dataset,
        base: InferenceOutcomes,
        cache_dir: Path,
    ) -> None:
        self.scenario, self.spec, self.where = scenario, spec, where
        self.index = [g.name for g in scenario.devices].index(spec.group)
        self.dataset, self.base, self.cache_dir = dataset, base, cache_dir
        self.streams = Streams(scenario.seed)
        rows = np.flatnonzero(workload.group == self.index)
        self.rows = rows[np.lexsort((workload.device[rows], workload.arrival_s[rows]))]
        self.arrival = workload.arrival_s[self.rows]
        self.drifted = self.arrival >= spec.start
        self.ids = workload.image_id[self.rows].astype(np.int64)
        if spec.classes is not None:
            self._draw_classes()
        self.checkpoints: list[Path] = [scenario.model.checkpoint]
        self.adaptations: list[Adapted] = []
        self._variants: dict[tuple[int, bool], tuple[np.ndarray, InferenceOutcomes]] = {}

    def _draw_classes(self) -> None:
        """From the start on, images only of the drift's classes (uniform over them)."""
        wanted = []
        for c in self.spec.classes or []:
            if isinstance(c, int) and 0 <= c < len(self.dataset.classes):
                wanted.append(c)
            elif isinstance(c, str) and c in self.dataset.classes:
                wanted.append(self.dataset.classes.index(c))
            else:
                raise UserInputError(
                    f"{self.where}.classes: {c!r} is no class of {self.dataset.name} "
                    f"(classes: {', '.join(self.dataset.classes)}, or their indices)"
                )
        pool = np.flatnonzero(np.isin(self.dataset.labels, wanted))
        rng = self.streams.stream(f"drift/{self.spec.group}/images")
        self.ids[self.drifted] = rng.choice(pool, size=int(self.drifted.sum()))

    def images(self, ids: np.ndarray, drifted: bool) -> np.ndarray:
        """The dataset's images ``ids`` as the group's devices see them."""
        from fogsim.data.corruptions import corrupt  # torchvision loads only when needed

        clean = self.dataset.images[ids]
        if not drifted:
            return clean
        stream = f"drift/{self.spec.group}/corruption"
        return corrupt(clean, ids, self.spec.corruptions, self.scenario.seed, stream)

    def variant(self, version: int, drifted: bool) -> tuple[np.ndarray, InferenceOutcomes]:
        """The dataset indices and real outcomes of model ``version`` on every image the
        group sees in that form (drifted or not)."""
        key = (version, drifted)
        if key not in self._variants:
            if key == (0, False):
                self._variants[key] = (np.arange(self.base.n_images), self.base)
            else:
                ids = np.unique(self.ids[self.drifted == drifted])
                self._variants[key] = (ids, self._infer(self.checkpoints[version], ids, drifted))
        return self._variants[key]

    def _infer(self, checkpoint: Path, ids: np.ndarray, drifted: bool) -> InferenceOutcomes:
        images, labels = self.images(ids, drifted), self.dataset.labels[ids]
        subset = Dataset(
            name=self.dataset.name,
            split=self.dataset.split,
            images=images,
            labels=labels,
            classes=self.dataset.classes,
            fingerprint=fingerprint(images, labels),
            source=f"{self.dataset.source} ({len(ids)} images as {self.spec.group} sees them)",
        )
        outcomes = run_inference(checkpoint, subset, cache_dir=self.cache_dir, progress=False)
        for name in _OP_FIELDS:
            if getattr(outcomes, name) != getattr(self.base, name):
                raise ValueError(f"{checkpoint} changed the network's {name}")
        return outcomes

    def local(self, version: int, positions: np.ndarray) -> list[tuple[bool, np.ndarray, Any]]:
        """For the requests at ``positions``, split by form: (drifted, which of them, their
        indices into the variant's outcomes)."""
        parts = []
        for drifted in (False, True):
            which = np.flatnonzero(self.drifted[positions] == drifted)
            if which.size:
                ids, _ = self.variant(version, drifted)
                parts.append((drifted, which, np.searchsorted(ids, self.ids[positions[which]])))
        return parts

    def measure(self, version: int, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """What the devices know of these requests under ``version``: whether they exited on
        the device, and whether the device's exit was right."""
        exited = np.zeros(positions.size, dtype=bool)
        correct = np.zeros(positions.size, dtype=bool)
        for drifted, which, local in self.local(version, positions):
            outcomes = self.variant(version, drifted)[1]
            exited[which], correct[which] = device_answers(self.scenario, outcomes, local)
        return exited, correct

    def adapt(self) -> None:
        """Run the trigger pass: fine-tune at each trigger, on the last labelled images."""
        a = self.spec.adaptation
        if a is None:
            return
        if "device" not in self.base.exit_tiers:
            raise UserInputError(
                f"{self.where}.adaptation: {self.scenario.model.checkpoint.name} has no exit "
                "on the device, so the devices cannot measure or train it; use a checkpoint "
                "with an exit in its device part, or remove adaptation"
            )
        name = self.spec.group
        labelled = self.streams.stream(f"drift/{name}/labels").random(self.rows.size) < a.labelled
        seeds = self.streams.stream(f"drift/{name}/train")
        group = self.scenario.devices[self.index]
        after = -np.inf
        while len(self.adaptations) < a.max_adaptations:
            version = len(self.adaptations)
            positions = np.flatnonzero(self.arrival > after)
            exited, correct = self.measure(version, positions)
            at = next_trigger(
                a.trigger,
                self.arrival[positions],
                exited,
                correct,
                labelled[positions],
                after,
                a.cooldown if version else 0.0,
            )
            known = np.flatnonzero(labelled)
            if at is None or known.size < a.samples:
                break
            # Not before the devices hold enough labelled images.
            at = max(at, float(self.arrival[known[a.samples - 1]]))
            if at >= self.scenario.duration:
                break
            picked = known[self.arrival[known] <= at][-a.samples :]
            images, labels = self.training_set(picked)
            how = fine_tune_settings(a, int(seeds.integers(0, 2**31 - 1)))
            path, cost = adapt_checkpoint(
                self.checkpoints[-1],
                images,
                labels,
                how,
                self.cache_dir / "adapted",
                group.profile.energy_table,
            )
            where = f"devices[{self.index}].profile"
            seconds, joules = device_training_time_and_energy(group.profile, cost, where)
            self.checkpoints.append(path)
            self.adaptations.append(
                Adapted(name, version + 1, at, picked, path, seconds, joules, cost)
            )
            after = at

    def devices(self) -> np.ndarray:
        """The group's global device indices."""
        first = sum(group.count for group in self.scenario.devices[: self.index])
        return np.arange(first, first + self.scenario.devices[self.index].count)

    def training_set(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The images of the requests at ``positions`` as the devices saw them, and labels."""
        forms = [(d, positions[self.drifted[positions] == d]) for d in (False, True)]
        images = np.concatenate([self.images(self.ids[p], d) for d, p in forms])
        labels = np.concatenate([self.dataset.labels[self.ids[p]] for _, p in forms])
        return images, labels

    def versions(self) -> np.ndarray:
        """Each request's model version: the adaptations triggered before it arrived."""
        times = np.array([a.at_s for a in self.adaptations])
        return np.searchsorted(times, self.arrival, side="left").astype(np.int16)

    def heldout(self, adapted: Adapted) -> dict[str, Any]:
        """Device exit accuracy, exit rate and cloud accuracy before and after an adaptation,
        on the drifted images the group saw after it, less those it trained on."""
        later = np.flatnonzero((self.arrival > adapted.at_s) & self.drifted)
        trained = set(self.ids[adapted.sample_rows].tolist())
        ids = np.unique(self.ids[later])
        ids = ids[~np.isin(ids, list(trained))]
        out: dict[str, Any] = {"heldout_images": int(ids.size)}
        if ids.size == 0:
            return out
        for when, version in (("before", adapted.index - 1), ("after", adapted.index)):
            variant_ids, outcomes = self.variant(version, True)
            local = np.searchsorted(variant_ids, ids)
            exited, correct = device_answers(self.scenario, outcomes, local)
            cloud = outcomes.cloud_pred[local] == outcomes.labels[local]
            out[f"exit_accuracy_{when}"] = float(correct.mean())
            out[f"exit_rate_{when}"] = float(exited.mean())
            out[f"cloud_accuracy_{when}"] = float(cloud.mean())
        return out


def device_answers(
    scenario: Scenario, outcomes: InferenceOutcomes, local: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Whether each image exits on the device under the scenario's policy, and whether the
    device's answer (its exit, or its last exit where the request goes on) is right."""
    decision = scenario.policy.route(outcomes, local)
    if decision.raw.any():
        raise UserInputError(
            f"policy {scenario.policy.name!r} sends raw images, so the devices run no part of "
            "the network and cannot adapt; use a policy that runs the device part (early_exit)"
        )
    device_exits = np.flatnonzero(np.array(outcomes.exit_tiers) == "device")
    exited = decision.tier == Tier.DEVICE
    used = np.where(exited, decision.exit_index, device_exits[-1])
    return exited, outcomes.exit_pred[local, used] == outcomes.labels[local]


@dataclass
class DriftPlan:
    """The run's outcomes with every group's drifted and adapted blocks appended, the
    workload pointing into them, and the training jobs for the device queues."""

    outcomes: InferenceOutcomes
    workload: Workload
    image: np.ndarray  # per request, the dataset's index
    version: np.ndarray  # per request, its group's model version (0: the shipped weights)
    drifted: np.ndarray  # per request
    groups: list[DriftedGroup]
    jobs: DeviceJobs = field(default_factory=DeviceJobs.none)

    def finish_columns(self, columns: dict[str, np.ndarray]) -> None:
        """The per-request table's image is the dataset's; add the model version, the drift
        and the training energy charged to the request (within its ``energy_compute_j``)."""
        columns["image"] = self.image.astype(np.int32)
        columns["model_version"] = self.version
        columns["drifted"] = self.drifted
        columns["energy_adaptation_j"] = self.jobs.per_request_j(self.image.size)

    def summary(self) -> dict[str, Any]:
        """The summary's ``drift`` key: each group's drift and every adaptation's cost."""
        events = []
        for g in self.groups:
            devices = g.devices()
            for a in g.adaptations:
                mine = np.isin(self.jobs.device, devices) & (self.jobs.at_s == a.at_s)
                events.append(
                    {
                        "group": a.group,
                        "adaptation": a.index,
                        "at_s": a.at_s,
                        "samples": int(a.sample_rows.size),
                        "devices": int(devices.size),
                        "device_seconds": a.seconds,
                        "device_energy_j": a.energy_j,
                        "energy_j": a.energy_j * devices.size,
                        "job_start_s": _nanmin(self.jobs.start_s[mine]),
                        "job_end_s": _nanmax(self.jobs.end_s[mine]),
                        "training_macs": int(a.cost["training_macs"]),
                        "gemm_energy_j": float(a.cost["gemm_energy_j"]),
                        "param_movement_energy_j": float(a.cost["param_movement_energy_j"]),
                        "peak_param_bytes": int(a.cost["peak_param_bytes"]),
                        **g.heldout(a),
                    }
                )
        return {
            "groups": {
                g.spec.group: {
                    "start_s": g.spec.start,
                    "corruptions": [c.model_dump() for c in g.spec.corruptions],
                    "classes": g.spec.classes,
                    "adapts": g.spec.adaptation is not None,
                    "adaptations": len(g.adaptations),
                }
                for g in self.groups
            },
            "adaptations": events,
            "adaptation_energy_j": float(sum(e["energy_j"] for e in events)),
            "adaptation_device_s": float(sum(e["device_seconds"] * e["devices"] for e in events)),
        }


def _nanmin(values: np.ndarray) -> float | None:
    return float(np.nanmin(values)) if np.isfinite(values).any() else None


def _nanmax(values: np.ndarray) -> float | None:
    return float(np.nanmax(values)) if np.isfinite(values).any() else None


def prepare_drift(
    scenario: Scenario,
    outcomes: InferenceOutcomes,
    workload: Workload,
    *,
    cache_dir: Path | None = None,
) -> DriftPlan | None:
    """The drifted run's outcomes, workload and device jobs; None when nothing drifts."""
    if not scenario.drift:
        return None
    cache_dir = default_cache_dir() if cache_dir is None else Path(cache_dir)
    spec = scenario.dataset
    dataset = load_dataset(spec.name, path=spec.path, split=spec.split)
    if dataset.fingerprint != outcomes.dataset_fingerprint:
        raise ValueError("the outcomes are not of the scenario's dataset")
    groups = [
        DriftedGroup(scenario, d, f"drift[{i}]", workload, dataset, outcomes, cache_dir)
        for i, d in enumerate(scenario.drift)
    ]
    for g in groups:
        g.adapt()
    return _compose(scenario, outcomes, workload, groups)


def _compose(
    scenario: Scenario, base: InferenceOutcomes, workload: Workload, groups: list[DriftedGroup]
) -> DriftPlan:
    image_id = workload.image_id.astype(np.int64)
    image = image_id.copy()
    version = np.zeros(workload.size, np.int16)
    drifted = np.zeros(workload.size, bool)
    blocks: list[InferenceOutcomes] = [base]
    offset = base.n_images
    jobs: list[tuple[np.ndarray, float, float, float]] = []  # devices, at, seconds, joules
    plan_groups = []
    for g in groups:
        rows, versions = g.rows, g.versions()
        image[rows], version[rows], drifted[rows] = g.ids, versions, g.drifted
        for v in np.unique(versions).tolist():
            positions = np.flatnonzero(versions == v)
            for is_drifted, which, local in g.local(v, positions):
                if (v, is_drifted) == (0, False):
                    image_id[rows[positions[which]]] = local
                    continue
                _, outcomes = g.variant(v, is_drifted)
                image_id[rows[positions[which]]] = offset + local
                blocks.append(outcomes)
                offset += outcomes.n_images
        jobs += [(g.devices(), a.at_s, a.seconds, a.energy_j) for a in g.adaptations]
        plan_groups.append(g)
    composite = dataclasses.replace(
        base, **{name: np.concatenate([getattr(b, name) for b in blocks]) for name in _ARRAYS}
    )
    device_jobs = DeviceJobs(
        np.concatenate([d for d, _, _, _ in jobs] or [np.zeros(0)]).astype(np.int32),
        np.concatenate([np.full(d.size, t) for d, t, _, _ in jobs] or [np.zeros(0)]),
        np.concatenate([np.full(d.size, s) for d, _, s, _ in jobs] or [np.zeros(0)]),
        np.concatenate([np.full(d.size, j) for d, _, _, j in jobs] or [np.zeros(0)]),
    )
    return DriftPlan(
        composite,
        dataclasses.replace(workload, image_id=image_id.astype(np.int32)),
        image,
        version,
        drifted,
        plan_groups,
        device_jobs,
    )

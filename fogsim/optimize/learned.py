"""Approach 2: a predictor over (design, device) pairs and an optimiser network (torch).

The predictor maps a design's features and a device's features to its log latency, log
energy and accuracy; it trains on sampled pairs of training devices, each measured under
the true model. The optimiser maps a device's features and the goal's bounds straight to a
design: it trains on the predictor's choices for training devices under bounds drawn
around the goal's, so planning a device is one forward pass. Small, seeded, on the CPU.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from fogsim.optimize.features import ENERGY_ESTIMATE, LATENCY_ESTIMATE, pair_features
from fogsim.optimize.goal import Goal, metric
from fogsim.optimize.truth import Truth

HIDDEN = 128


@contextmanager
def one_thread() -> Iterator[None]:
    """Torch on one thread: these networks are small, and more threads only contend (on a
    shared 2-core machine, many times slower)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass(frozen=True)
class Scaler:
    """Standardises columns with the training set's mean and spread."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray) -> Scaler:
        std = x.std(axis=0)
        return cls(x.mean(axis=0), np.where(std > 0, std, 1.0))

    def __call__(self, x: np.ndarray) -> torch.Tensor:
        return torch.as_tensor((x - self.mean) / self.std, dtype=torch.float32)


def _mlp(inputs: int, outputs: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(inputs, HIDDEN),
        nn.SiLU(),
        nn.Linear(HIDDEN, HIDDEN),
        nn.SiLU(),
        nn.Linear(HIDDEN, outputs),
    )


def _train(
    net: nn.Module, x: torch.Tensor, loss_of, steps: int, seed: int, batch: int = 512
) -> None:  # noqa: ANN001 - loss_of(output rows, batch indices) -> loss
    generator = torch.Generator().manual_seed(seed)
    optimiser = torch.optim.Adam(net.parameters(), lr=3e-3)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=3e-3, total_steps=steps)
    for _ in range(steps):
        index = torch.randint(0, x.shape[0], (min(batch, x.shape[0]),), generator=generator)
        optimiser.zero_grad()
        loss_of(net(x[index]), index).backward()
        optimiser.step()
        schedule.step()


@dataclass
class Predictor:
    """(design features, device features) -> latency (s), energy (J), accuracy."""

    net: nn.Module
    scaler: Scaler
    target: Scaler

    @classmethod
    def fit(
        cls,
        design_x: np.ndarray,
        device_x: np.ndarray,
        truth: Truth,
        pairs: int,
        seed: int,
        steps: int = 2000,
    ) -> Predictor:
        """Train on ``pairs`` (device, design) pairs drawn from ``truth``'s devices."""
        rng = np.random.default_rng(seed)
        dev = rng.integers(0, device_x.shape[0], pairs)
        des = rng.integers(0, design_x.shape[0], pairs)
        x = pair_features(design_x, device_x)[dev, des]
        # The network learns the correction to the first-order estimates (grey-box):
        # what they miss is small and smooth, so a small network gets it close.
        y = np.column_stack(
            [
                np.log(truth.latency_s[dev, des]) - x[:, LATENCY_ESTIMATE],
                np.log(truth.energy_j[dev, des]) - x[:, ENERGY_ESTIMATE],
                truth.accuracy[des],
            ]
        )
        torch.manual_seed(seed)
        scaler, target = Scaler.fit(x), Scaler.fit(y)
        net = _mlp(x.shape[1], 3)
        xt, yt = scaler(x), target(y)
        _train(net, xt, lambda out, i: nn.functional.mse_loss(out, yt[i]), steps, seed)
        return cls(net.eval(), scaler, target)

    def predict(self, design_x: np.ndarray, device_x: np.ndarray) -> Truth:
        """Predicted (devices, designs) latency and energy, and (devices, designs) accuracy."""
        n, d = device_x.shape[0], design_x.shape[0]
        x = pair_features(design_x, device_x)
        with torch.no_grad():
            out = self.net(self.scaler(x.reshape(n * d, -1))).numpy()
        y = (out * self.target.std + self.target.mean).reshape(n, d, 3)
        latency = np.exp(y[:, :, 0] + x[:, :, LATENCY_ESTIMATE])
        energy = np.exp(y[:, :, 1] + x[:, :, ENERGY_ESTIMATE])
        return Truth(latency, energy, y[:, :, 2], np.zeros(d))


def bounds_vector(goal: Goal) -> np.ndarray:
    """The goal's bounds as the optimiser reads them: shares as they are, times and
    energies as logs."""
    return np.array([_encode(c.metric, c.bound) for c in goal.constraints], dtype=np.float64)


def _encode(name: str, bound):  # noqa: ANN001, ANN202 - a float or an array of them
    return np.log(bound) if name in ("latency", "energy") else bound


@dataclass
class Optimiser:
    """(device features, goal bounds) -> design, one forward pass per device."""

    net: nn.Module
    scaler: Scaler
    allowed: np.ndarray  # (designs,) bool: meets the goal's device-independent bounds

    @classmethod
    def fit(
        cls,
        predictor: Predictor,
        design_x: np.ndarray,
        device_x: np.ndarray,
        goal: Goal,
        exact: Truth,
        samples: int,
        seed: int,
        steps: int = 1500,
    ) -> Optimiser:
        """Train on the predictor's best design for training devices under bounds drawn
        around the goal's (``exact`` gives the designs' device-independent figures)."""
        rng = np.random.default_rng(seed + 1)
        predicted = predictor.predict(design_x, device_x)
        dev = rng.integers(0, device_x.shape[0], samples)
        # Accuracy is the same on every device and known exactly from inference.
        rows = Truth(
            predicted.latency_s[dev], predicted.energy_j[dev], exact.accuracy, exact.exit_rate
        )
        bounds = _draw_bounds(goal, rng, samples)
        ok = np.ones(rows.latency_s.shape, dtype=bool)
        fixed = np.ones_like(ok)  # what the device-independent bounds allow
        for c, constraint in enumerate(goal.constraints):
            values = metric(rows, constraint.metric)
            bound = bounds[:, c, None]
            holds = values <= bound if constraint.op == "<=" else values >= bound
            ok &= holds
            if _design_only(constraint.metric):
                fixed &= holds
        labels = np.where(ok, goal.cost(rows), np.inf).argmin(axis=1)
        keep = ok.any(axis=1)
        encoded = [_encode(c.metric, bounds[:, i]) for i, c in enumerate(goal.constraints)]
        x = np.column_stack([device_x[dev], *encoded])[keep]
        y = torch.as_tensor(labels[keep])
        # The designs the exact bounds rule out are masked, in training as in planning, so
        # that the network learns to rank what is left rather than where accuracy ends.
        mask = torch.as_tensor(fixed[keep])
        torch.manual_seed(seed + 1)
        scaler = Scaler.fit(x)
        net = _mlp(x.shape[1], design_x.shape[0])
        xt = scaler(x)
        _train(
            net,
            xt,
            lambda out, i: nn.functional.cross_entropy(out.masked_fill(~mask[i], -1e9), y[i]),
            steps,
            seed + 1,
        )
        only = tuple(c for c in goal.constraints if _design_only(c.metric))
        allowed = Goal(goal.objective, only).feasible(_row(rows, 0))[0]
        return cls(net.eval(), scaler, allowed)

    def choose(self, device_x: np.ndarray, goal: Goal) -> np.ndarray:
        """Each device's design under ``goal``: the likeliest one its bounds allow. One
        batched forward pass; the last layer computes only the allowed designs' logits."""
        bounds = bounds_vector(goal)
        x = np.hstack([device_x, np.broadcast_to(bounds, (device_x.shape[0], bounds.size))])
        allowed = np.flatnonzero(self.allowed)
        *body, last = self.net
        with torch.inference_mode():
            hidden = self.scaler(x)
            for layer in body:
                hidden = layer(hidden)
            logits = nn.functional.linear(hidden, last.weight[allowed], last.bias[allowed])
            return allowed[logits.argmax(dim=1).numpy()]


def _row(costs: Truth, i: int) -> Truth:
    return Truth(
        costs.latency_s[i : i + 1], costs.energy_j[i : i + 1], costs.accuracy, costs.exit_rate
    )


def _design_only(name: str) -> bool:
    return name in ("accuracy", "error", "exit_rate")


def _draw_bounds(goal: Goal, rng: np.random.Generator, samples: int) -> np.ndarray:
    """(samples, constraints): each bound of the goal moved at random, shares by up to 0.02,
    times and energies by up to a factor of 2 either way."""
    columns = []
    for c in goal.constraints:
        if c.metric in ("latency", "energy"):
            columns.append(c.bound * np.exp(rng.uniform(-np.log(2), np.log(2), samples)))
        else:
            columns.append(c.bound + rng.uniform(-0.02, 0.02, samples))
    return np.column_stack(columns) if columns else np.zeros((samples, 0))

"""On-device adaptation: training jobs in the device queues, triggers, and the real
fine-tuning (deterministic for a seed; better on held-out drifted images)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from fogsim.data import load_dataset
from fogsim.data.corruptions import corrupt
from fogsim.nn.adapt import FineTune, fine_tune, fine_tune_cost
from fogsim.nn.checkpoint import load_checkpoint
from fogsim.nn.evaluate import predict
from fogsim.nn.ops import part_of
from fogsim.scenario.drift import Blur, Noise, Trigger
from fogsim.sim.adaptation import adapt_checkpoint, next_trigger
from fogsim.sim.device_jobs import DeviceJobs, charge_jobs, solve_with_jobs
from fogsim.sim.fifo import solve_fifo

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINT = ROOT / "models/fmnist-rct.pt"
DRIFT = [Noise(kind="noise", std=0.15), Blur(kind="blur", sigma=0.6)]


def lindley(arrivals: list[float], services: list[float]) -> list[float]:
    end, ends = -np.inf, []
    for a, s in zip(arrivals, services, strict=True):
        end = max(end, a) + s
        ends.append(end)
    return ends


def test_a_job_takes_its_turn_in_the_device_queue() -> None:
    device = np.array([0, 0, 0, 1, 1])
    arrival = np.array([0.0, 1.0, 1.5, 0.0, 2.0])
    service = np.array([0.5, 0.5, 0.5, 1.0, 1.0])
    jobs = DeviceJobs(
        np.array([0, 1], np.int32), np.array([1.0, 5.0]), np.array([2.0, 1.0]), np.array([7.0, 3.0])
    )
    got = solve_with_jobs(device, arrival, service, None, jobs)
    # Device 0: request at 1.0 first (same instant: the request queues first), then the job
    # (1.5..3.5), then the request that arrived at 1.5 waits for it.
    want0 = lindley([0.0, 1.0, 1.0, 1.5], [0.5, 0.5, 2.0, 0.5])
    np.testing.assert_allclose(got.end_s[:3], [want0[0], want0[1], want0[3]])
    assert jobs.start_s[0] == pytest.approx(1.5) and jobs.end_s[0] == pytest.approx(3.5)
    # Device 1: the job comes after both requests and delays nobody.
    np.testing.assert_allclose(got.end_s[3:], [1.0, 3.0])
    assert jobs.start_s[1] == 5.0 and jobs.end_s[1] == 6.0
    plain = solve_fifo(device, arrival, service)
    assert (got.end_s >= plain.end_s).all()
    # The request that waited behind the job is charged its energy, and the idle gap
    # before it held the job: that idle energy is given back. Device 1's job came last.
    job_j, idle_j = charge_jobs(jobs, device, got.start_s, np.full(5, 2.0))
    np.testing.assert_allclose(job_j, [0.0, 0.0, 7.0, 0.0, 0.0])
    np.testing.assert_allclose(idle_j, [0.0, 0.0, 4.0, 0.0, 0.0])
    assert jobs.charged_to.tolist() == [2, -1]
    np.testing.assert_allclose(jobs.per_request_j(5), job_j)


def test_no_jobs_is_the_plain_fifo() -> None:
    device, arrival, service = np.array([0, 0]), np.array([0.0, 0.1]), np.array([0.3, 0.3])
    elsewhere = DeviceJobs(np.array([7], np.int32), np.ones(1), np.ones(1), np.ones(1))
    for jobs in (None, DeviceJobs.none(), elsewhere):
        got = solve_with_jobs(device, arrival, service, 2, jobs)  # type: ignore[arg-type]
        np.testing.assert_array_equal(got.end_s, solve_fifo(device, arrival, service, 2).end_s)


def test_the_trigger_fires_at_the_first_low_window() -> None:
    arrival = np.arange(10.0)
    exited = np.array([1, 1, 1, 1, 0, 0, 0, 1, 0, 0], bool)
    correct = np.ones(10, bool)
    labelled = np.ones(10, bool)
    low = Trigger(exit_rate_below=0.5, window=4)
    # Windows of 4 end at 3..9 with exit rates 1, .75, .5, .25 -> first below 0.5 ends at 6.
    assert next_trigger(low, arrival, exited, correct, labelled, -np.inf, 0.0) == 6.0
    assert next_trigger(low, arrival, exited, correct, labelled, 2.0, 5.0) == 7.0
    accuracy = Trigger(accuracy_below=0.9, window=3)
    assert next_trigger(accuracy, arrival, exited, correct, labelled, -np.inf, 0.0) is None
    correct[6], labelled[6] = False, False  # the device never learns it was wrong
    assert next_trigger(accuracy, arrival, exited, correct, labelled, -np.inf, 0.0) is None
    correct[7] = False  # labelled requests 4, 5, 7: 2/3 right, below 0.9, at 7
    assert next_trigger(accuracy, arrival, exited, correct, labelled, -np.inf, 0.0) == 7.0
    scheduled = Trigger(at=["3 s", "8 s"])
    assert next_trigger(scheduled, arrival, exited, correct, labelled, 3.0, 0.0) == 8.0
    assert next_trigger(scheduled, arrival, exited, correct, labelled, 8.0, 0.0) is None


@pytest.fixture(scope="module")
def drifted() -> tuple[np.ndarray, np.ndarray]:
    """1,200 Fashion-MNIST test images, noisy and blurred as in scenarios/drift-adapt.yaml."""
    data = load_dataset("fashion-mnist", split="test")
    ids = np.arange(1200)
    return corrupt(data.images[ids], ids, DRIFT, 15, "drift/street/corruption"), data.labels[ids]


HOW = FineTune(epochs=3, batch_size=32, lr=0.02, weight_decay=0.0, seed=5)


def exit_accuracy(model: torch.nn.Module, images: np.ndarray, labels: np.ndarray) -> float:
    out = predict(model, images, labels, progress=False)
    return float((out.exit_pred[:, 0] == labels).mean())


def test_adaptation_is_deterministic_and_helps_on_held_out_drifted_images(drifted) -> None:
    images, labels = drifted
    train, held_out = slice(0, 256), slice(256, 1200)
    ckpt = load_checkpoint(CHECKPOINT)
    before = exit_accuracy(ckpt.build(), images[held_out], labels[held_out])
    models = []
    for _ in range(2):
        model = ckpt.build()
        log = fine_tune(model, images[train], labels[train], HOW)
        models.append(model)
    second = models[1].state_dict()
    for name, value in models[0].state_dict().items():
        assert torch.equal(value, second[name]), name
    # Only the device part learnt: the cloud's weights are the shipped ones.
    shipped = ckpt.state_dict
    cloud = [n for n in shipped if part_of(n, models[0]) == "cloud"]
    assert cloud
    for name in cloud:
        assert torch.equal(models[0].state_dict()[name], shipped[name]), name
    assert any(not torch.equal(v, shipped[k]) for k, v in models[0].state_dict().items())
    after = exit_accuracy(models[0], images[held_out], labels[held_out])
    assert after > before + 0.1, (before, after)
    cost = fine_tune_cost(models[0], 256, HOW, log, None)
    # Three GEMMs per layer, image and epoch, over the device part's MACs.
    assert cost["training_macs"] % (3 * 256 * 3) == 0
    assert cost["gemm_energy_j"] > 0 and cost["param_movement_energy_j"] > 0


def test_adapted_checkpoints_are_cached_by_what_they_learnt_from(drifted, tmp_path) -> None:
    images, labels = drifted
    first, cost = adapt_checkpoint(CHECKPOINT, images[:64], labels[:64], HOW, tmp_path, None)
    again, cost_again = adapt_checkpoint(CHECKPOINT, images[:64], labels[:64], HOW, tmp_path, None)
    assert first == again and cost == cost_again
    other, _ = adapt_checkpoint(CHECKPOINT, images[64:128], labels[64:128], HOW, tmp_path, None)
    assert other != first
    card = load_checkpoint(first).card
    assert card["adaptation"]["parent_sha256"] == load_checkpoint(CHECKPOINT).sha256
    assert card["default_threshold"] == load_checkpoint(CHECKPOINT).card["default_threshold"]


def test_training_time_and_energy_follow_the_device_profile() -> None:
    from fogsim.errors import UserInputError
    from fogsim.scenario.models import DeviceProfile
    from fogsim.sim.adaptation import device_training_time_and_energy

    cost = {
        "training_macs": 2e9,
        "param_bytes_moved": 4e8,
        "gemm_energy_j": 0.5,
        "param_movement_energy_j": 0.25,
    }
    base = {"throughput": {"int8": "1 GMAC/s"}, "idle_power": "1 W", "active_power": "3 W"}
    seconds, joules = device_training_time_and_energy(DeviceProfile(**base), cost, "p")
    assert (seconds, joules) == (pytest.approx(2.0), pytest.approx(6.0))
    # Memory-bound: 400 MB at 100 MB/s is 4 s, more than the 2 s of compute.
    slow = DeviceProfile(**base, memory_bandwidth="100 MB/s")
    assert device_training_time_and_energy(slow, cost, "p")[0] == pytest.approx(4.0)
    per_op = DeviceProfile(**base, compute_energy="per_op", energy_table="horowitz45nm-braintta")
    assert device_training_time_and_energy(per_op, cost, "p")[1] == pytest.approx(0.75)
    fp32_only = DeviceProfile(**{**base, "throughput": {"fp32": "1 GMAC/s"}})
    with pytest.raises(UserInputError, match="int8 throughput"):
        device_training_time_and_energy(fp32_only, cost, "devices[0].profile")


@pytest.mark.parametrize("method", ["fp32", "qat", "rct"])
def test_fine_tuning_can_keep_the_batchnorm_statistics(drifted, method) -> None:
    images, labels = drifted
    ckpt = load_checkpoint(CHECKPOINT)
    stats = [k for k in ckpt.state_dict if k.endswith(("running_mean", "running_var"))]
    device = [k for k in stats if part_of(k, ckpt.build()) == "device"]
    assert device
    for keep in (True, False):
        model = ckpt.build()
        how = FineTune(1, 32, 0.02, 0.0, 5, method, keep_bn_stats=keep)
        log = fine_tune(model, images[:64], labels[:64], how)
        assert len(log) == (0 if method == "fp32" else 1)
        now = model.state_dict()
        same = [torch.equal(now[k], ckpt.state_dict[k]) for k in device]
        assert all(same) if keep else not any(same)
        assert not model.training and not any(m.training for m in model.modules())

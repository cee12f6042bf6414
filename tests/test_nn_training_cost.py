"""Training cost (fogsim.nn.training_cost) against hand counts, and against the tensors a
wrapped network really stores."""

import pytest
import torch

from fogsim.nn.rct import Bitwidth, LowPrecisionTraining
from fogsim.nn.train import joint_loss
from fogsim.nn.training_cost import (
    Layer,
    Schedule,
    network_layers,
    training_cost,
    training_from_card,
)
from fogsim.nn.zoo import create_model

PJ = 1e-12
DRAM_J_PER_BYTE = 8 * 1.3e-9 / 64  # Horowitz: 1.3 nJ per 64-bit access
# One layer of 100 weights in 4 output channels, 1000 MACs per image; 10 other parameters;
# two epochs of 10 images in batches of 4: 3 steps an epoch, 6 in all.
LAYERS = [Layer("a", weights=100, channels=4, macs=1000)]
SCHEDULE = Schedule(epochs=2, images_per_epoch=10, batch_size=4)


def test_fp32_training_by_hand() -> None:
    cost = training_cost(LAYERS, 10, "fp32", None, SCHEDULE)
    assert cost["steps"] == 6
    assert cost["peak_param_bytes"] == 4 * 110
    assert cost["peak_grad_bytes"] == 4 * 110
    assert cost["peak_optimizer_bytes"] == 0
    # 20 images x 1000 MACs x 3 GEMMs x 4.6 pJ
    assert cost["gemm_energy_j"] == pytest.approx(20 * 1000 * 3 * 4.6 * PJ)
    # Per step: 4 accesses of 110 fp32 values = 1760 bytes.
    assert cost["param_bytes_moved"] == 6 * 1760
    assert cost["param_movement_energy_j"] == pytest.approx(6 * 1760 * DRAM_J_PER_BYTE)


def test_rct_training_by_hand() -> None:
    bits = [{"a": 8}, {"a": 4}]
    cost = training_cost(LAYERS, 10, "rct", bits, SCHEDULE)
    # int8 weights + 4 fp32 scales + 10 fp32 others
    assert cost["peak_param_bytes"] == 100 + 16 + 40
    # Epoch 1: three int8 GEMMs (0.23 pJ); epoch 2: two 4x8-bit ones (0.23 x 32/64) and the
    # 8x8-bit weight gradient.
    per_image = (3 * 0.23 + 2 * 0.115 + 0.23) * PJ
    assert cost["gemm_energy_j"] == pytest.approx(10 * 1000 * per_image)
    assert cost["param_bytes_moved"] == 6 * (4 * 116 + 4 * 40)


def test_qat_with_momentum_by_hand() -> None:
    schedule = Schedule(2, 10, 4, optimizer="sgd", momentum=0.9)
    cost = training_cost(LAYERS, 10, "qat", [{"a": 8}, {"a": 8}], schedule)
    assert cost["peak_param_bytes"] == 400 + 116 + 40  # master, int8 copy and scales, others
    assert cost["peak_optimizer_bytes"] == 4 * 110  # one fp32 momentum per parameter
    # master 3 x 400, int8 copy 3 x 116, others 4 x 40, momentum read and written
    assert cost["param_bytes_moved"] == 6 * (1200 + 348 + 160 + 880)
    assert cost["gemm_energy_j"] == pytest.approx(20 * 1000 * 3 * 0.23 * PJ)


def test_rct_with_momentum_by_hand() -> None:
    schedule = Schedule(2, 10, 4, optimizer="sgd", momentum=0.9)
    cost = training_cost(LAYERS, 10, "rct", [{"a": 8}, {"a": 12}], schedule)
    # int8 momentum a weight and an fp32 scale a channel, whatever the weights' bits; fp32
    # momentum for the 10 others.
    assert cost["peak_optimizer_bytes"] == 100 + 4 * 4 + 4 * 10
    assert cost["peak_param_bytes"] == 200 + 16 + 40  # the int16 epoch; momentum not in it
    # Weights and scales 4 times (int8, then int16), others 4 times, the state read and written.
    assert cost["param_bytes_moved"] == 3 * (4 * 116 + 160 + 2 * 156) + 3 * (
        4 * 216 + 160 + 2 * 156
    )
    plain = training_cost(LAYERS, 10, "rct", [{"a": 8}, {"a": 12}], SCHEDULE)
    assert cost["gemm_energy_j"] == plain["gemm_energy_j"]


def test_the_stem_of_smallcnn_is_counted_by_hand() -> None:
    layers, other = network_layers(create_model("smallcnn"))
    stem = next(layer for layer in layers if layer.name == "stem.0")
    assert stem.macs == 28 * 28 * 16 * 9 and stem.weights == 16 * 9 and stem.channels == 16


@pytest.mark.parametrize("method", ["rct", "fp32"])
@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_peak_bytes_are_what_the_training_network_and_optimizer_store(
    method: str, momentum: float
) -> None:
    torch.manual_seed(0)
    model = create_model("smallcnn")
    layers, other = network_layers(model)
    bits = [{layer.name: 8 for layer in layers}]
    schedule = Schedule(1, 1, 1, momentum=momentum)
    expected = training_cost(layers, other, method, bits, schedule)
    low = None
    if method == "rct":
        low = LowPrecisionTraining(model, "rct", Bitwidth(), momentum=momentum > 0)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=momentum)
    exits, final = model(torch.rand(2, 1, 28, 28))
    joint_loss(exits, final, torch.tensor([0, 1]), (0.3,)).backward()
    opt.step()
    if low is not None:
        low.step(0.01, 0.0, momentum)
    buffers = dict(model.named_buffers())
    stored = [t for t in model.parameters()]
    stored += [b for n, b in buffers.items() if n.endswith(("weight_int", "weight_scale"))]
    assert sum(t.numel() * t.element_size() for t in stored) == expected["peak_param_bytes"]
    state = [t for s in opt.state.values() for t in s.values() if t is not None]
    state += [b for n, b in buffers.items() if n.endswith(("momentum_int", "momentum_scale"))]
    assert sum(t.numel() * t.element_size() for t in state) == expected["peak_optimizer_bytes"]


def test_an_older_card_gets_fp32_training_counted_from_its_recipe() -> None:
    model = create_model("smallcnn")
    card = {"epochs": 2, "train_images": 10, "recipe": {"batch_size": 4, "momentum": 0.0}}
    t = training_from_card(card, model)
    assert t is not None and t["method"] == "fp32"
    assert t["gemm_energy_j"] == t["fp32_gemm_energy_j"]
    layers, _ = network_layers(model)
    assert t["gemm_energy_j"] == pytest.approx(20 * 3 * 4.6 * PJ * sum(x.macs for x in layers))
    assert training_from_card({"epochs": 2}, model) is None  # nothing to count from


def test_rct_above_8_bits_stores_int16_and_counts_its_wider_macs() -> None:
    bits = [{"a": 12}, {"a": 8}]
    cost = training_cost(LAYERS, 10, "rct", bits, SCHEDULE)
    # Epoch 1 holds int16 weights (the peak), epoch 2 int8; scales and others fp32 in both.
    assert cost["peak_param_bytes"] == 200 + 16 + 40
    assert cost["param_bytes_moved"] == 3 * (4 * 216 + 160) + 3 * (4 * 116 + 160)
    # A 12-bit by 8-bit MAC costs the int8 MAC x 96/64.
    per_image = (2 * 0.23 * 1.5 + 0.23) + 3 * 0.23
    assert cost["gemm_energy_j"] == pytest.approx(10 * 1000 * per_image * PJ)


def test_low_precision_training_needs_the_bits_of_every_epoch() -> None:
    with pytest.raises(ValueError, match="each of its epochs"):
        training_cost(LAYERS, 10, "rct", [{"a": 8}], SCHEDULE)

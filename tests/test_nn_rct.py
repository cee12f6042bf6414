"""RCT and QAT training (fogsim.nn.rct): integer-only weights, unbiased rounding, bitwidths."""

import pytest
import torch
from torch import nn

from fogsim.nn.rct import (
    MOMENTUM_STORAGE,
    STORAGE,
    WIDE_STORAGE,
    Bitwidth,
    LowPrecisionTraining,
    fake_quantize,
    qmax,
    quantize_momentum,
    stochastic_round,
    storage,
)
from fogsim.nn.train import joint_loss
from fogsim.nn.zoo import create_model


def _batch(n: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.rand(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n,), generator=g)


def test_stochastic_rounding_is_unbiased() -> None:
    torch.manual_seed(0)
    x = torch.tensor([0.1, 0.5, -0.3, 2.75, -7.9]).repeat(200_000, 1)
    rounded = stochastic_round(x)
    assert torch.equal(rounded, torch.round(rounded))  # every draw lands on an integer
    assert ((rounded - x).abs() < 1).all()  # on one of the two neighbours
    # Mean error within 4 standard errors (at most 0.5 / sqrt(200000) each) of zero.
    assert (rounded - x).mean(0).abs().max() < 4 * 0.5 / 200_000**0.5


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_no_fp32_copy_of_the_weights_exists_during_an_rct_step(momentum: float) -> None:
    torch.manual_seed(0)
    model = create_model("smallcnn")
    layers = [(n, m) for n, m in model.named_modules() if hasattr(m, "in_channels")]
    weights = {n: m.weight.numel() for n, m in layers}
    channels = {n: m.weight.shape[0] for n, m in layers}
    low = LowPrecisionTraining(model, "rct", Bitwidth(), momentum=momentum > 0)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=momentum, nesterov=momentum > 0)
    seen: list[dict[str, tuple[torch.dtype, int]]] = []

    def inspect(*_: object) -> None:
        # Everything the network stores, in the middle of the step's forward pass.
        seen.append({n: (t.dtype, t.numel()) for n, t in model.state_dict().items()})

    model.blocks[1].register_forward_hook(inspect)
    x, y = _batch()
    for _ in range(2):  # the second step's forward pass sees the first step's momentum
        exits, final = model(x)
        opt.zero_grad()
        joint_loss(exits, final, y, (0.3,)).backward()
        opt.step()
        low.step(0.1, 0.0, momentum)
        inspect()
    # The optimizer keeps state for BatchNorm and biases only (fp32, one value each).
    kept = [t for state in opt.state.values() for t in state.values()]
    assert all(t.dtype == torch.float32 and t.dim() == 1 for t in kept)
    fp32_params = sum(p.numel() for p in model.parameters())
    assert sum(t.numel() for t in kept) == (fp32_params if momentum else 0)
    for stored in seen:
        for name, count in weights.items():
            assert stored[f"{name}.weight_int"] == (STORAGE, count)
            assert f"{name}.weight" not in stored
            if momentum:
                assert stored[f"{name}.momentum_int"] == (MOMENTUM_STORAGE, count)
                assert stored[f"{name}.momentum_scale"] == (torch.float32, channels[name])
            else:
                assert f"{name}.momentum_int" not in stored
        floats = [n for n, (dtype, k) in stored.items() if dtype.is_floating_point and k > 512]
        assert not floats  # no float tensor of a layer's size: scales, BatchNorm, biases only
    stored_floats = sum(t.numel() for t in model.parameters())
    assert stored_floats < 0.02 * sum(weights.values())  # BatchNorm and biases only
    assert all(p.dtype == torch.float32 and p.dim() == 1 for p in model.parameters())
    # After the step no float weight tensor is left on the layers, nor held by the wrapper.
    assert all(m.__dict__.get("weight") is None for _, m in layers)
    assert not low._live


def test_rct_momentum_is_stored_without_bias() -> None:
    torch.manual_seed(0)
    buf = torch.randn(3, 40) * torch.tensor([[1e-4], [1.0], [30.0]])
    draws = 20_000
    q, scale = quantize_momentum(buf.repeat(draws, 1))
    assert q.dtype == MOMENTUM_STORAGE and scale.shape == (3 * draws, 1)
    assert q.abs().max() == qmax(8)  # each channel's largest value spans its grid
    stored = (q.float() * scale).view(draws, 3, 40)
    step = scale.view(draws, 3, 1)[0]
    assert ((stored - buf).abs() <= step).all()  # one of the two neighbours on the grid
    # Mean error within 4 standard errors (at most half a step / sqrt(draws)) of zero.
    assert ((stored.mean(0) - buf).abs() <= 4 * 0.5 * step / draws**0.5).all()


def test_rct_momentum_takes_nesterovs_step_with_an_int8_buffer() -> None:
    torch.manual_seed(0)
    model = create_model("smallcnn")
    low = LowPrecisionTraining(model, "rct", Bitwidth(), momentum=True)
    conv = model.blocks[0].conv
    x, y = _batch()
    expected = torch.zeros_like(conv.weight_scale)
    for _ in range(2):
        exits, final = model(x)
        joint_loss(exits, final, y, (0.3,)).backward()
        w = low._live["blocks.0.conv"]
        g = (w.grad + 0.01 * w.detach()).clone()
        before, scale = conv.weight_int.float(), conv.weight_scale.clone()
        buf = 0.9 * expected + g  # torch's SGD: the buffer starts at zero
        low.step(0.05, 0.01, 0.9)
        expected = conv.momentum_int.float() * conv.momentum_scale
        assert ((expected - buf).abs() <= conv.momentum_scale).all()
        target = before - 0.05 * (g + 0.9 * buf) / scale
        # A channel that outgrows its grid doubles its step, as without momentum.
        over = 1 + (target.abs().amax(dim=(1, 2, 3), keepdim=True) > qmax(8)).float()
        assert torch.equal(conv.weight_scale, scale * over)
        target = target / over
        assert ((conv.weight_int.float() - target).abs() < 1).all()
    assert not torch.equal(conv.momentum_int, torch.zeros_like(conv.momentum_int))


def test_an_rct_step_with_momentum_needs_a_buffer() -> None:
    low = LowPrecisionTraining(create_model("smallcnn"), "rct", Bitwidth())
    with pytest.raises(ValueError, match="momentum"):
        low.step(0.1, 0.0, 0.9)


def test_a_qat_step_leaves_momentum_to_the_optimizer() -> None:
    model = create_model("smallcnn")
    low = LowPrecisionTraining(model, "qat", Bitwidth(), momentum=True)
    x, y = _batch()
    exits, final = model(x)
    joint_loss(exits, final, y, (0.3,)).backward()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    low.step(0.1, 0.0, 0.9)  # nothing to do: the torch optimizer updates the master
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert not [n for n in model.state_dict() if "momentum" in n]


def test_finish_drops_the_momentum_buffer() -> None:
    model = create_model("smallcnn")
    LowPrecisionTraining(model, "rct", Bitwidth(), momentum=True).finish()
    assert not [n for n in model.state_dict() if "momentum" in n]


def test_rct_updates_land_on_the_grid_and_move_the_weights() -> None:
    torch.manual_seed(0)
    model = create_model("smallcnn")
    low = LowPrecisionTraining(model, "rct", Bitwidth(start=6))
    conv = model.blocks[0].conv
    before = conv.weight_int.clone()
    x, y = _batch()
    exits, final = model(x)
    joint_loss(exits, final, y, (0.3,)).backward()
    low.step(0.5, 0.0)
    assert conv.weight_int.dtype == STORAGE and not torch.equal(conv.weight_int, before)
    assert conv.weight_int.abs().max() <= qmax(6)


def test_a_layer_gains_a_bit_when_its_updates_vanish_and_loses_one_when_they_are_large() -> None:
    torch.manual_seed(0)
    model = create_model("smallcnn")
    low = LowPrecisionTraining(model, "rct", Bitwidth(start=6, grow_below=0.05, shrink_above=0.2))
    values = {n: m.weight_int.float() * m.weight_scale for n, m in low.layers}
    low._gavg = {n: [0.001] for n, _ in low.layers}
    low._gavg["final.fc"] = [10.0]
    entry = low.end_epoch()
    assert entry["stem.0"] == {"bits": 6, "gavg": 0.001}
    bits = low.bits()
    assert bits.pop("final.fc") == 5 and set(bits.values()) == {7}
    for name, m in low.layers:
        now = m.weight_int.float() * m.weight_scale
        if name == "final.fc":  # one step coarser: within one new step of before
            assert ((now - values[name]).abs() <= m.weight_scale + 1e-7).all()
        else:  # one bit more halves the step: the same values exactly
            assert torch.allclose(now, values[name])


def test_qat_keeps_an_fp32_master_and_the_forward_sees_its_quantized_values() -> None:
    torch.manual_seed(0)
    model = create_model("smallcnn")
    low = LowPrecisionTraining(model, "qat", Bitwidth(start=4))
    conv = model.blocks[0].conv
    assert conv.weight_master.dtype == torch.float32
    q = fake_quantize(conv.weight_master, 4).detach()
    scale = conv.weight_master.detach().abs().amax(dim=(1, 2, 3), keepdim=True) / qmax(4)
    assert torch.allclose(q / scale, torch.round(q / scale), atol=1e-4)
    plain = low.finish()
    assert torch.equal(plain.blocks[0].conv.weight.detach(), q)
    assert isinstance(plain.blocks[0].conv.weight, nn.Parameter)


def test_rct_trains_a_toy_problem_better_than_chance() -> None:
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    centers = torch.randn(4, 16, generator=g) * 2
    y = torch.randint(0, 4, (512,), generator=g)
    x = centers[y] + torch.randn(512, 16, generator=g)
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))
    low = LowPrecisionTraining(model, "rct", Bitwidth(start=8))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(5):
        for idx in torch.randperm(400, generator=g).split(32):
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            low.step(0.1, 0.0)
        low.end_epoch()
    model.eval()
    with torch.no_grad():
        accuracy = (model(x[400:]).argmax(1) == y[400:]).float().mean()
    assert accuracy > 0.8  # chance is 0.25
    assert all(m.weight_int.dtype == STORAGE for _, m in low.layers)


def test_a_layer_above_8_bits_is_stored_as_int16_with_the_same_values() -> None:
    torch.manual_seed(0)
    model = create_model("smallcnn")
    low = LowPrecisionTraining(model, "rct", Bitwidth(start=8, max=16))
    conv = model.blocks[0].conv
    before = conv.weight_int.float() * conv.weight_scale
    for bits in (9, 10):
        low._gavg = {n: [0.0] for n, _ in low.layers}  # updates vanish: one bit more
        low.end_epoch()
        assert low.bits()["blocks.0.conv"] == bits
        assert conv.weight_int.dtype == WIDE_STORAGE
        assert torch.equal(conv.weight_int.float() * conv.weight_scale, before)
    x, y = _batch()
    exits, final = model(x)
    joint_loss(exits, final, y, (0.3,)).backward()
    low.step(0.1, 0.0)
    assert conv.weight_int.dtype == WIDE_STORAGE and conv.weight_int.abs().max() <= qmax(10)
    assert conv.weight_int.abs().max() > qmax(8)  # the wider grid is used
    for _ in range(2):
        low._gavg = {n: [10.0] for n, _ in low.layers}  # large updates: one bit fewer
        low.end_epoch()
    assert low.bits()["blocks.0.conv"] == 8 and conv.weight_int.dtype == STORAGE


def test_a_state_at_16_bits_loads_into_a_fresh_8_bit_network_without_wrapping() -> None:
    torch.manual_seed(0)
    model = create_model("smallcnn")
    low = LowPrecisionTraining(model, "rct", Bitwidth(start=16, min=2, max=16))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    assert state["blocks.0.conv.weight_int"].abs().max() > 127
    fresh = create_model("smallcnn")
    LowPrecisionTraining(fresh, "rct", Bitwidth(start=8, max=16))
    fresh.load_state_dict(state)
    for key, value in fresh.state_dict().items():
        assert torch.equal(value, state[key]), key
    assert low.bits()["stem.0"] == 16


def test_rct_bits_outside_2_to_16_have_no_storage() -> None:
    with pytest.raises(ValueError, match="2..16"):
        storage(17)

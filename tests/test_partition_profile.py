"""Profiles: rows and cut points from the traced graph, counts by hand and from published
figures, every shipped checkpoint (quantized too) against fogsim's own op counts, the
profile file's contract, derived times, and the commands' errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from cli_fixtures import invoke
from torch import nn

from fogsim.errors import UserInputError
from fogsim.nn.checkpoint import load_checkpoint
from fogsim.nn.layers import QConv2d
from fogsim.nn.ops import count_ops
from fogsim.partition import graph, networks, profiler, timemodel
from fogsim.partition.network import network_from_data

ROOT = Path(__file__).resolve().parents[1]


class Branchy(nn.Module):
    """conv -> relu -> two parallel convs added -> flatten -> linear."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.left = nn.Conv2d(4, 4, 1, bias=False)
        self.right = nn.Conv2d(4, 4, 3, padding=1, groups=2, bias=False)
        self.fc = nn.Linear(4 * 8 * 8, 10)

    def forward(self, x):
        h = torch.relu(self.conv(x))
        h = self.left(h) + self.right(h)
        return self.fc(torch.flatten(h, 1))


def test_cut_points_and_counts_by_hand():
    rows = graph.rows_of(graph.trace(Branchy()), torch.rand(1, 3, 8, 8))
    names = [r.layer for r in rows]
    assert names == ["input", "conv", "relu", "left", "right", "add", "flatten", "fc"]
    cuts = [r.layer for r in rows if r.cut_point]
    # Between the two branches two tensors are live (relu's and left's): no cut there.
    assert cuts == ["input", "conv", "relu", "add", "flatten", "fc"]
    macs = {r.layer: r.macs for r in rows}
    assert macs["conv"] == 4 * 64 * 3 * 9
    assert macs["left"] == 4 * 64 * 4
    assert macs["right"] == 4 * 64 * 2 * 9  # groups=2: two input channels per output
    assert macs["fc"] == 10 * 256
    assert {r.layer: r.params for r in rows}["fc"] == 2570
    assert rows[0].output_bytes == 3 * 64 * 4 and rows[-1].output_bytes == 40


@pytest.mark.parametrize(
    ("name", "gmacs", "params"),
    # Published figures (torchvision's model table: GFLOPS there are GMACs; parameters).
    [("resnet50", 4.09, 25_557_032), ("mobilenetv2", 0.30, 3_504_872)],
)
def test_torchvision_counts_match_published_figures(name, gmacs, params):
    network = networks.build(name)
    rows = graph.rows_of(graph.trace(network.module), torch.rand(network.input_shape))
    assert sum(r.params for r in rows) == params
    assert sum(r.macs for r in rows) / 1e9 == pytest.approx(gmacs, abs=0.01)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(networks.TORCHVISION))
def test_every_scission_network_traces_with_cut_points(name):
    network = networks.build(name)
    rows = graph.rows_of(graph.trace(network.module), torch.rand(network.input_shape))
    assert rows[0].cut_point and rows[-1].cut_point
    assert sum(r.cut_point for r in rows) >= 5


def test_profile_command_writes_the_contract(tmp_path):
    path = tmp_path / "p.parquet"
    outcome = invoke("profile", "smallcnn", "-o", str(path), "--repeats", "2", "--threads", "1")
    assert outcome.code == 0, outcome.stderr
    table = pd.read_parquet(path)
    for column in ("layer", "index", "cut_point", "macs", "params", "output_bytes", "time_s"):
        assert column in table.columns
    assert table["index"].tolist() == list(range(len(table)))
    assert table.loc[0, "time_s"] == 0 and table.loc[0, "macs"] == 0
    assert table.loc[0, "output_bytes"] == 1 * 28 * 28 * 4  # one fp32 Fashion-MNIST image
    assert table.loc[0, "bytes_binary"] == 98  # 784 bits
    assert (table["time_s"].iloc[1:] > 0).all()
    meta = profiler.load(path).meta
    assert meta["machine"]["threads"] == 1 and meta["calibration"]["gemm_macs_per_s"] > 0
    assert json.loads(table.loc[1, "output_shape"])[0] == 1


def test_unknown_model_is_named():
    outcome = invoke("profile", "resnet5")
    assert outcome.code == 2 and "resnet50" in outcome.stderr


def test_derived_times_scale_with_the_rates():
    table = pd.DataFrame({"macs": [0, 100, 0], "memory_bytes": [0, 0, 50], "time_s": [0, 2, 3]})
    here = timemodel.Rates(compute=10, memory=10)
    same = timemodel.derive(table, here, here)
    assert same.tolist() == [0, 2, 3]
    faster = timemodel.derive(table, here, timemodel.Rates(compute=40, memory=20))
    assert faster.tolist() == pytest.approx([0, 0.5, 1.5])


def test_derivation_reaches_a_library_profile():
    rates = timemodel.tier_rates("rpi4", 11.9e9)
    assert rates.memory == pytest.approx(12.8e9 * 0.7)
    with pytest.raises(UserInputError, match="memory bandwidth"):
        timemodel.tier_rates("no-such-board", 1e9)


def test_network_file_errors_name_the_key():
    with pytest.raises(UserInputError, match="hops.0.bandwidth"):
        network_from_data(
            {"device": "rpi4", "fog": "t4", "cloud": "t4", "hops": [{"bandwidth": 5}, {}]}
        )


def _profile_file(path, layers, cuts):
    n = len(layers)
    table = pd.DataFrame(
        {
            "layer": layers,
            "index": np.arange(n),
            "cut_point": cuts,
            "macs": [None] * n,
            "params": [None] * n,
            "output_bytes": [100] * n,
            "time_s": [0.0] + [0.01] * (n - 1),
        }
    )
    table.to_parquet(path)
    return str(path)


def test_measured_profiles_per_tier_and_their_disagreement(tmp_path):
    net = tmp_path / "net.yaml"
    net.write_text(
        "device: rpi4\nfog: edge-server\ncloud: t4\n"
        "hops: [{bandwidth: 1.6 Mbps, delay: 66.7 ms}, {bandwidth: 50 Mbps, delay: 20 ms}]\n"
    )
    layers, cuts = ["input", "a", "b"], [True, True, True]
    d = _profile_file(tmp_path / "d.parquet", layers, cuts)
    f = _profile_file(tmp_path / "f.parquet", layers, cuts)
    args = ["partition", "--network", str(net), "--json", "--top", "3"]
    outcome = invoke(
        *args, "--profile", f"device={d}", "--profile", f"fog={f}", "--profile", f"cloud={f}"
    )
    assert outcome.code == 0, outcome.stderr
    result = json.loads(outcome.stdout)
    assert result["best"] == result["candidates"][0] and len(result["candidates"]) == 3
    assert result["best"]["cuts"] == [2, 2]  # 20 ms on the device beats any transfer
    other = _profile_file(tmp_path / "o.parquet", ["input", "a", "c"], cuts)
    outcome = invoke(
        *args, "--profile", f"device={d}", "--profile", f"fog={other}", "--profile", f"cloud={f}"
    )
    assert outcome.code == 2 and "row 2" in outcome.stderr
    # The cloud has no measured profile and none given carries a calibration to derive it.
    outcome = invoke(*args, "--profile", f"device={d}", "--profile", f"fog={f}")
    assert outcome.code == 2 and "--profile cloud=" in outcome.stderr
    outcome = invoke(
        *args,
        "--profile",
        f"device={d}",
        "--profile",
        f"fog={f}",
        "--profile",
        f"cloud={f}",
        "--deadline",
        "1 ms",
    )
    assert outcome.code == 1 and "--deadline" in outcome.stderr


def test_partition_from_a_scenario_and_option_errors(tmp_path):
    path = tmp_path / "s.parquet"
    profiler.profile(networks.build("smallcnn"), repeats=1, warmup=0, progress=False).save(path)
    outcome = invoke(
        "partition", "--scenario", "scenarios/three-tier.yaml", "--profile", str(path), "--json"
    )
    assert outcome.code == 0, outcome.stderr
    best = json.loads(outcome.stdout)["best"]
    assert best["latency_s"] == pytest.approx(
        sum(best["compute_s"].values()) + sum(best["transfer_s"])
    )
    outcome = invoke("partition", "--profile", str(path))
    assert outcome.code == 2 and "--network" in outcome.stderr
    outcome = invoke(
        "partition",
        "--scenario",
        "scenarios/three-tier.yaml",
        "--profile",
        str(path),
        "--pin",
        "1-3-device",
    )
    assert outcome.code == 2 and "FIRST-LAST=TIER" in outcome.stderr


SHIPPED = sorted((ROOT / "models").glob("*.pt"))


@pytest.fixture(scope="module", params=SHIPPED, ids=lambda p: p.stem)
def shipped(request):
    """A shipped checkpoint (binary, int4, int8, fp32, three-part), profiled once."""
    torch.set_num_threads(1)
    network = networks.build(str(request.param))
    result = profiler.profile(network, repeats=2, warmup=0, progress=False)
    return load_checkpoint(request.param).build(), result.table


def test_every_shipped_checkpoint_profiles_one_row_per_layer(shipped):
    model, table = shipped
    layers = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    # Every conv and linear layer, quantized or not, is one row of its own, under its name.
    rows = table[table["macs"] > 0]
    assert sorted(rows["layer"]) == sorted(f"net.{n}" for n in layers)
    quantized = [f"net.{n}" for n, m in model.named_modules() if isinstance(m, QConv2d)]
    assert set(table.loc[table["op"] == "QConv2d", "layer"]) == set(quantized)
    assert (table["time_s"].iloc[1:] > 0).all()
    assert table["cut_point"].iloc[0] and table["cut_point"].iloc[-1]


def test_shipped_profiles_count_what_fogsim_counts(shipped):
    model, table = shipped
    report = count_ops(model)
    assert table["macs"].sum() == sum(sum(p.macs.values()) for p in report.parts.values())
    names = table["layer"].tolist()
    split = max(i for i, n in enumerate(names) if n.split(".")[:2] == ["net", "split_quant"])
    # The device part's rows: its MACs, and the features it sends at its own precision.
    assert table["macs"].iloc[: split + 1].sum() == sum(report.edge.macs.values())
    sent = report.boundaries[0]
    assert table[f"bytes_{sent.precision}"].iloc[split] == sent.bytes
    assert json.loads(table["output_shape"].iloc[split]) == [1, *sent.shape]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no checkpoint file at"),
        (b"junk", "broken.pt is not a readable checkpoint"),
        (b"not a checkpoint", "broken.pt is not a readable checkpoint"),
        ((ROOT / "models/fmnist-int4.pt").read_bytes()[:5000], "broken.pt is not a readable"),
    ],
    ids=["missing", "four-bytes", "text", "truncated"],
)
def test_a_missing_or_corrupt_checkpoint_is_a_clear_error(tmp_path, content, message):
    path = tmp_path / "broken.pt"
    if content is not None:
        path.write_bytes(content)
    outcome = invoke("profile", str(path), "-o", str(tmp_path / "p.parquet"))
    assert outcome.code != 0
    assert re.search(message, outcome.stderr, re.IGNORECASE), outcome.stderr
    assert not (tmp_path / "p.parquet").exists()

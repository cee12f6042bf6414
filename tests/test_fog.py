"""The fog tier: explicit networks, fog servers, three-part networks, stages and their checks."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sim_fixtures import (
    BASE,
    FOG_NETWORK,
    FOG_SERVER,
    fog_scenario,
    small_scenario,
    synthetic_outcomes,
    three_part_outcomes,
)

from fogsim.errors import UserInputError
from fogsim.results import stages_frame
from fogsim.scenario import ScenarioError
from fogsim.scenario.models import ServerProfile
from fogsim.sim.engine import simulate

OUTCOMES = synthetic_outcomes()
THREE = three_part_outcomes()


def test_explicit_form_of_the_short_form_gives_the_same_run(tmp_path: Path) -> None:
    short = small_scenario(tmp_path)
    explicit = {
        "nodes": [
            {"name": "gw", "kind": "gateway"},
            {"name": "region", "kind": "switch"},
            {"name": "cloud", "kind": "site"},
        ],
        "links": [
            {
                "name": "backhaul:gw",
                "from": "gw",
                "to": "region",
                "bandwidth": "10 Mbps",
                "delay": "5 ms",
            },
            {
                "name": "cloud_link",
                "from": "region",
                "to": "cloud",
                "bandwidth": "1 Gbps",
                "delay": "20 ms",
            },
        ],
    }
    same = small_scenario(tmp_path, network=explicit, cloud={**BASE["cloud"], "at": "cloud"})
    first, second = simulate(short, OUTCOMES), simulate(same, OUTCOMES)
    for name, column in first.columns.items():
        np.testing.assert_array_equal(column, second.columns[name], err_msg=name)
    assert first.links == second.links


def test_fog_only_answers_every_request_at_the_fog_server(tmp_path: Path) -> None:
    scenario = fog_scenario(tmp_path, policy={"name": "fog_only"})
    result = simulate(scenario, OUTCOMES)
    columns = result.columns
    answered = columns["status"] == "answered_fog"
    assert answered.mean() > 0.9
    assert set(columns["answered_at"][answered]) == {"fog"}
    assert set(columns["fog"]) == {"box"}
    assert (columns["bytes_sent"][answered] == OUTCOMES.input_bytes).all()
    assert (columns["energy_compute_j"] == 0).all()
    # The raw image crosses the radio only (the box sits at the gateway), then the whole
    # network runs there: 5,100,000 fp32 MACs at 0.94 TMAC/s and 1,000,000 binary at 25.
    work_s = 5_100_000 / 0.94e12 + 1_000_000 / 25e12
    served = columns["t_fog_end_s"] - columns["t_fog_start_s"]
    single = answered & np.isclose(served, 0.002 + work_s, rtol=0, atol=1e-12)
    assert single.sum() > 0.5 * answered.sum()
    assert result.servers["box"]["completed"] >= answered.sum()


def test_three_part_requests_exit_at_the_first_confident_tier(tmp_path: Path) -> None:
    columns = simulate(fog_scenario(tmp_path), THREE).columns
    image = columns["image"]
    device_ok = THREE.exit_entropy[image, 0] < 1.0
    fog_ok = THREE.exit_entropy[image, 1] < 1.0
    answered = np.isin(columns["status"], ["answered_edge", "answered_fog", "answered_cloud"])
    at = columns["answered_at"]
    assert (at[answered & device_ok] == "device").all()
    assert (at[answered & ~device_ok & fog_ok] == "fog").all()
    assert (at[answered & ~device_ok & ~fog_ok] == "cloud").all()
    for tier in ("device", "fog", "cloud"):
        assert (at == tier).sum() > 50
    fog = at == "fog"
    assert (columns["prediction"][fog] == THREE.exit_pred[image[fog], 1]).all()
    cloud = at == "cloud"
    assert (columns["prediction"][cloud] == THREE.cloud_pred[image[cloud]]).all()
    # Requests the cloud answers passed the fog part first, and it ended before the cloud's.
    assert (columns["t_fog_end_s"][cloud] <= columns["t_cloud_start_s"][cloud]).all()


def test_a_threshold_per_exit_moves_answers_between_tiers(tmp_path: Path) -> None:
    never_on_fog = fog_scenario(tmp_path, policy={"name": "early_exit", "threshold": [1.0, 0.0]})
    columns = simulate(never_on_fog, THREE).columns
    assert not (columns["answered_at"] == "fog").any()
    assert (columns["answered_at"] == "device").any() and (columns["answered_at"] == "cloud").any()
    wrong = fog_scenario(tmp_path, policy={"name": "early_exit", "threshold": [1.0]})
    with pytest.raises(UserInputError, match="1 thresholds for a network with 2 exits"):
        simulate(wrong, THREE)


def test_server_energy_attributed_to_requests_adds_up_to_the_servers_active_energy(
    tmp_path: Path,
) -> None:
    scenario = fog_scenario(
        tmp_path, fog=[{**FOG_SERVER, "batching": {"max_batch": 4, "max_wait": "5 ms"}}]
    )
    result = simulate(scenario, THREE)
    columns = result.columns
    for tier, server, power in (("fog", "box", 25.0), ("cloud", "cloud", 70.0)):
        counted = columns[f"energy_{tier}_j"].sum()
        # Counted a second way: batch by batch (one worker, so a batch is its start and end).
        times = np.stack([columns[f"t_{tier}_start_s"], columns[f"t_{tier}_end_s"]], axis=1)
        batches = np.unique(times[~np.isnan(times[:, 0])], axis=0)
        assert counted == pytest.approx(power * (batches[:, 1] - batches[:, 0]).sum(), rel=1e-9)
        assert 0 < counted <= power * result.servers[server]["busy_worker_s"] * (1 + 1e-12)


def test_stages_follow_each_other_and_sum_to_the_latency(tmp_path: Path) -> None:
    result = simulate(fog_scenario(tmp_path), THREE)
    stages = stages_frame(*result.stages.columns())
    assert list(stages.columns) == [
        "request",
        "stage",
        "kind",
        "at",
        "bytes",
        "t_enqueue_s",
        "t_start_s",
        "t_end_s",
    ]
    for _, one in stages.groupby("request"):
        assert list(one["stage"]) == list(range(len(one)))
        ends, enqueues = one["t_end_s"].to_numpy()[:-1], one["t_enqueue_s"].to_numpy()[1:]
        np.testing.assert_allclose(ends, enqueues, rtol=0, atol=1e-12)
    columns = result.columns
    cloud = np.flatnonzero(columns["answered_at"] == "cloud")[:50]
    for request in cloud:
        one = stages[stages["request"] == request]
        assert list(one["at"].astype(str)) == [
            "device:pis",
            "radio:gw",
            "box",
            "gw->metro",
            "core",
            "cloud",
        ]
        sent = one[one["kind"] == "transfer"]["bytes"].to_numpy()
        image = columns["image"][request]
        assert sent[0] == THREE.compressed_feature_bytes[image]
        assert (sent[1:] == THREE.compressed_fog_feature_bytes[image]).all()
    parts = ("device", "network", "fog", "cloud")
    answered = ~np.isnan(columns["latency_s"])
    total = sum(columns[f"latency_{p}_s"][answered] for p in parts)
    np.testing.assert_allclose(total, columns["latency_s"][answered], rtol=1e-9, atol=1e-12)
    assert (columns["latency_network_s"][answered] >= -1e-12).all()


def test_a_downlink_makes_answers_share_the_way_back(tmp_path: Path) -> None:
    network = copy.deepcopy(FOG_NETWORK)
    network["links"][1]["downlink"] = {"bandwidth": "2 kbps", "delay": "20 ms"}
    slow_back = simulate(fog_scenario(tmp_path, network=network), THREE)
    fast_back = simulate(fog_scenario(tmp_path), THREE)
    cloud = slow_back.columns["answered_at"] == "cloud"
    # A 512-bit answer takes 256 ms alone on a 2 kbps downlink, more when answers queue.
    back_s = slow_back.columns["t_answer_s"] - slow_back.columns["t_cloud_end_s"]
    assert (back_s[cloud] >= 0.256 + 0.020 - 1e-9).all()
    assert back_s[cloud].max() > 0.6
    assert slow_back.links["core:down"]["transfers"] > 0
    faster = fast_back.columns["t_answer_s"] - fast_back.columns["t_cloud_end_s"]
    assert faster[fast_back.columns["answered_at"] == "cloud"].max() < 0.1


def test_same_seed_same_stages(tmp_path: Path) -> None:
    first = simulate(fog_scenario(tmp_path), THREE).stages.columns()
    again = simulate(fog_scenario(tmp_path), THREE).stages.columns()
    assert first[1] == again[1]
    for name, column in first[0].items():
        np.testing.assert_array_equal(column, again[0][name], err_msg=name)


def test_nearest_fog_is_by_route_and_named_fog_is_obeyed(tmp_path: Path) -> None:
    fog = [FOG_SERVER, {"name": "metro-gpu", "at": "metro", "profile": "regional-gpu"}]
    nearest = simulate(fog_scenario(tmp_path, fog=fog), THREE).columns
    assert set(nearest["fog"][nearest["answered_at"] == "fog"]) == {"box"}
    group = {**BASE["devices"][0], "fog": "metro-gpu"}
    named = simulate(fog_scenario(tmp_path, fog=fog, devices=[group]), THREE).columns
    assert set(named["fog"][named["answered_at"] == "fog"]) == {"metro-gpu"}


def test_a_server_profile_without_the_precision_is_a_clear_error(tmp_path: Path) -> None:
    fp32_only = {**FOG_SERVER, "profile": {"base": "t4"}}
    fp32_only["profile"]["throughput"] = {"fp32": "1 TMAC/s"}
    with pytest.raises(UserInputError, match="server 'box'.*int8"):
        simulate(fog_scenario(tmp_path, fog=[fp32_only]), THREE)


def test_server_profiles_give_time_by_precision() -> None:
    profile = ServerProfile.model_validate(
        {
            "throughput": {"fp32": "1 TMAC/s", "int8": "4 TMAC/s"},
            "batch_overhead": "1 ms",
            "power": "10 W",
            "idle_power": "1 W",
        }
    )
    assert profile.seconds({"fp32": 10**12, "int8": 2 * 10**12}) == pytest.approx(1.5)


@pytest.mark.parametrize(
    "change, where, words",
    [
        (
            lambda d: d["network"]["links"][0].update({"to": "nowhere"}),
            "network.links[0].to",
            "unknown node 'nowhere'",
        ),
        (
            lambda d: d["network"]["links"][1].pop("bandwidth"),
            "network.links[1].bandwidth",
            "required",
        ),
        (
            lambda d: d["network"]["nodes"].append({"name": "gw", "kind": "switch"}),
            "network.nodes[3].name",
            "repeats",
        ),
        (lambda d: d["fog"][0].update({"at": "attic"}), "fog[0].at", "unknown node 'attic'"),
        (
            lambda d: d["devices"][0].update({"fog": "boxx"}),
            "devices[0].fog",
            "unknown fog server 'boxx'",
        ),
        (
            lambda d: d.update(fog=[], policy={"name": "fog_only"}),
            "devices[0].fog",
            "any fog server",
        ),
        (lambda d: d["network"]["links"].pop(1), "devices[0].gateway", "to any cloud"),
        (lambda d: d["fog"].append({**FOG_SERVER}), "fog[1].name", "another server's"),
    ],
)
def test_bad_networks_are_named_with_their_place(tmp_path: Path, change, where, words) -> None:
    import yaml

    from fogsim.scenario import load_scenario

    data = copy.deepcopy(BASE)
    data.update(network=copy.deepcopy(FOG_NETWORK), fog=[dict(FOG_SERVER)])
    data["cloud"] = {**data["cloud"], "at": "dc"}
    change(data)
    (tmp_path / "net.pt").write_bytes(b"placeholder")
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    text = str(info.value)
    assert where in text and words in text, text
    assert "(line " in text


@st.composite
def fog_scenarios(draw) -> dict:
    """Small explicit networks: one or two gateways (one perhaps a shared cell), a switch,
    fog servers at a gateway and at the switch, a cloud; random rates, sharing, downlinks,
    queues, batching, policies and deadlines."""
    sharing = st.sampled_from(["ps", "fifo"])
    nodes = [{"name": "gw", "kind": "gateway"}, {"name": "sw"}, {"name": "dc", "kind": "site"}]
    two = draw(st.booleans())
    if two:
        nodes.append(
            {
                "name": "cellgw",
                "kind": "gateway",
                "access": "shared",
                "cell": {"bandwidth": "1 Mbps", "delay": "4 ms", "sharing": draw(sharing)},
            }
        )
    links = [
        {
            "from": "gw",
            "to": "sw",
            "bandwidth": draw(st.sampled_from(["200 kbps", "20 Mbps"])),
            "delay": "3 ms",
            "sharing": draw(sharing),
        },
        {
            "from": "sw",
            "to": "dc",
            "bandwidth": draw(st.sampled_from(["1 Mbps", "1 Gbps"])),
            "delay": "10 ms",
            "sharing": draw(sharing),
        },
    ]
    if draw(st.booleans()):
        links[1]["downlink"] = {
            "bandwidth": draw(st.sampled_from(["20 kbps", "10 Mbps"])),
            "delay": "10 ms",
            "sharing": draw(sharing),
        }
    if two:
        links.append({"from": "cellgw", "to": "sw", "bandwidth": "5 Mbps", "delay": "2 ms"})
    server = st.fixed_dictionaries(
        {
            "workers": st.integers(1, 2),
            "batching": st.fixed_dictionaries(
                {"max_batch": st.integers(1, 4), "max_wait": st.sampled_from(["0 s", "3 ms"])}
            ),
            "queue_capacity": st.sampled_from([None, 1, 3]),
        }
    )
    fog = [{"name": "at-sw", "at": "sw", "profile": "edge-server", **draw(server)}]
    if draw(st.booleans()):
        fog.append({"name": "at-gw", "at": "gw", "profile": "edge-server", **draw(server)})
    groups = [
        {
            **BASE["devices"][0],
            "name": "pis",
            "count": draw(st.integers(1, 4)),
            "arrival": {"process": "poisson", "rate": draw(st.sampled_from(["2 /s", "20 /s"]))},
            "gateway": ["gw", "cellgw"] if two else "gw",
            "fog": draw(st.sampled_from([None, "nearest", "at-sw"])),
            "queue_capacity": draw(st.sampled_from([None, 2])),
            "battery": draw(st.sampled_from([None, "5 J"])),
        },
    ]
    policy = draw(
        st.sampled_from(
            [
                {"name": "early_exit", "threshold": 1.0},
                {"name": "early_exit", "threshold": [0.5, 1.5]},
                {"name": "early_exit", "rule": "maxprob", "threshold": 0.6},
                {"name": "device_only"},
                {"name": "edge_only"},
                {"name": "fog_only"},
                {"name": "cloud_only"},
            ]
        )
    )
    return dict(
        network={"nodes": nodes, "links": links},
        fog=fog,
        cloud={"profile": "t4", "at": "dc", **draw(server)},
        devices=groups,
        policy=policy,
        deadline=draw(
            st.sampled_from(
                [None, {"latency": "150 ms", "fallback": "edge"}, {"latency": "150 ms"}]
            )
        ),
        duration="6 s",
        seed=draw(st.integers(0, 10_000)),
    )


DROP_REASONS = {"device_queue_full", "battery_empty", "fog_queue_full", "cloud_queue_full"}


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(changes=fog_scenarios(), three=st.booleans())
def test_accounting_holds_on_random_small_topologies(
    changes: dict, three: bool, tmp_path: Path
) -> None:
    outcomes = THREE if three else synthetic_outcomes(exits=2)
    result = simulate(small_scenario(tmp_path, **changes), outcomes)
    columns = result.columns  # simulate itself checks accounting; these are the invariants
    status, at = columns["status"], columns["answered_at"]
    answered = at != ""
    # Text columns are categoricals (codes into their names): compare them as text here.
    assert (answered == np.char.startswith(np.asarray(status, dtype=str), "answered")).all()
    assert (columns["t_answer_s"][answered] <= 6.0 + 1e-9).all()
    assert ((status == "dropped") == np.isin(columns["reason"], list(DROP_REASONS))).all()
    assert (columns["energy_fog_j"] >= 0).all() and (columns["energy_cloud_j"] >= 0).all()
    assert not (columns["energy_fog_j"][columns["fog"] == ""] > 0).any()
    for name, stats in result.servers.items():
        if stats["tier"] == "fog":
            assert stats["completed"] >= ((at == "fog") & (columns["fog"] == name)).sum()
        assert stats["completed"] + stats["dropped"] <= stats["submitted"]
    for stats in result.links.values():
        assert stats["bits_carried"] <= stats["bandwidth_bps"] * 6.0 * (1 + 1e-9)
    stage_columns, _ = result.stages.columns()
    request, stage = stage_columns["request"], stage_columns["stage"]
    first = np.append(True, request[1:] != request[:-1])
    assert (stage[first] == 0).all() and (np.diff(stage)[~first[1:]] == 1).all()
    follows = ~first[1:]
    ends, enqueues = (
        stage_columns["t_end_s"][:-1][follows],
        stage_columns["t_enqueue_s"][1:][follows],
    )
    finished = ~np.isnan(ends)
    np.testing.assert_allclose(ends[finished], enqueues[finished], rtol=0, atol=1e-9)
    # An answer from the fog comes after the fog server finished its part.
    fog_answered = at == "fog"
    assert (columns["t_fog_end_s"][fog_answered] <= columns["t_answer_s"][fog_answered]).all()


ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "change, where, words",
    [
        (lambda d: d.pop("fog"), "devices[0].fog", "the network has a fog part"),
        (
            lambda d: d.update(policy={"name": "early_exit", "threshold": [1.0, 1.0, 1.0]}),
            "policy.threshold",
            "3 thresholds, but the network has 2 exits (device, fog)",
        ),
    ],
)
def test_a_three_part_checkpoint_is_checked_against_the_scenario(
    tmp_path: Path, change, where, words
) -> None:
    import yaml

    from fogsim.scenario import load_scenario

    data = copy.deepcopy(BASE)
    data.update(network=copy.deepcopy(FOG_NETWORK), fog=[dict(FOG_SERVER)])
    data["cloud"] = {**data["cloud"], "at": "dc"}
    data["model"] = {"checkpoint": str(ROOT / "models/fmnist-3tier.pt")}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    load_scenario(path, preflight=True)  # as it is, it runs
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(ScenarioError) as info:
        load_scenario(path, preflight=True)
    text = str(info.value)
    assert where in text and words in text and "(line " in text, text


def test_a_request_goes_to_the_nearest_of_several_clouds(tmp_path: Path) -> None:
    network = copy.deepcopy(FOG_NETWORK)
    network["nodes"].append({"name": "near-dc", "kind": "site"})
    network["links"].append(
        {"from": "metro", "to": "near-dc", "bandwidth": "1 Gbps", "delay": "2 ms"}
    )
    clouds = [
        {**BASE["cloud"], "name": "far", "at": "dc"},
        {**BASE["cloud"], "name": "near", "at": "near-dc"},
    ]
    result = simulate(fog_scenario(tmp_path, network=network, cloud=clouds), OUTCOMES)
    assert result.servers["far"]["submitted"] == 0
    assert result.servers["near"]["submitted"] == result.cloud["submitted"] > 0


def test_deadline_fallback_device_is_the_older_edge(tmp_path: Path) -> None:
    network = copy.deepcopy(FOG_NETWORK)
    network["links"][0]["bandwidth"] = "20 kbps"
    runs = [
        simulate(
            fog_scenario(
                tmp_path, network=network, deadline={"latency": "100 ms", "fallback": name}
            ),
            THREE,
        ).columns
        for name in ("device", "edge")
    ]
    fallback = runs[0]["reason"] == "deadline_fallback"
    assert fallback.any() and (runs[0]["answered_at"][fallback] == "device").all()
    np.testing.assert_array_equal(runs[0]["reason"], runs[1]["reason"])

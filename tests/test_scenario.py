"""The scenario language: valid files load; every malformed one gets a clear, anchored error."""

from __future__ import annotations

import copy
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fogsim.scenario import ScenarioError, load_scenario
from fogsim.scenario.overrides import apply_overrides, format_steps, parse_path

BASE = {
    "name": "tiny",
    "seed": 1,
    "duration": "10 s",
    "dataset": {"name": "fashion-mnist", "split": "test"},
    "model": {"checkpoint": "net.pt"},
    "devices": [
        {
            "name": "cams",
            "count": 3,
            "profile": "rpi4",
            "radio": "wifi",
            "arrival": {"process": "poisson", "rate": "1 /s"},
            "gateway": "gw",
        }
    ],
    "network": {
        "gateways": [{"name": "gw", "backhaul": {"bandwidth": "10 Mbps", "delay": "5 ms"}}],
        "cloud_link": {"bandwidth": "1 Gbps", "delay": "20 ms"},
    },
    "cloud": {"profile": "t4", "workers": 2, "batching": {"max_batch": 8, "max_wait": "2 ms"}},
    "policy": {"name": "early_exit", "threshold": 0.5},
}


def write(tmp_path: Path, data: dict | str) -> Path:
    (tmp_path / "net.pt").write_bytes(b"placeholder: validation only checks that it exists")
    path = tmp_path / "scenario.yaml"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return path


def mutate(change) -> dict:
    data = copy.deepcopy(BASE)
    change(data)
    return data


def test_valid_scenario_loads_with_units_resolved(tmp_path: Path) -> None:
    scenario = load_scenario(write(tmp_path, BASE))
    assert scenario.duration == 10.0
    assert scenario.network.gateways[0].backhaul.bandwidth == 10e6
    assert scenario.network.cloud_link.delay == pytest.approx(0.020)
    assert scenario.devices[0].profile.idle_power == 2.9
    assert scenario.devices[0].radio.energy.tx == pytest.approx(0.65e-6)
    assert scenario.model.checkpoint == (tmp_path / "net.pt").resolve()
    assert scenario.policy.threshold == 0.5


def test_scenario_is_frozen(tmp_path: Path) -> None:
    scenario = load_scenario(write(tmp_path, BASE))
    with pytest.raises(Exception, match="frozen"):
        scenario.seed = 3  # type: ignore[misc]


def test_profile_override_changes_only_the_named_fields(tmp_path: Path) -> None:
    data = mutate(
        lambda d: d["devices"][0].update(
            profile={"base": "rpi4", "idle_power": "3 W", "throughput": {"binary": "1 TMAC/s"}}
        )
    )
    profile = load_scenario(write(tmp_path, data)).devices[0].profile
    assert profile.idle_power == 3.0
    assert profile.active_power == 6.4
    assert profile.throughput["binary"] == 1e12
    assert profile.throughput["fp32"] == 11.9e9


def test_resolved_scenario_round_trips(tmp_path: Path) -> None:
    scenario = load_scenario(write(tmp_path, BASE))
    dumped = scenario.model_dump(mode="json")
    again = load_scenario(write(tmp_path, dumped))
    assert again == scenario


def test_set_overrides_apply_before_validation(tmp_path: Path) -> None:
    path = write(tmp_path, BASE)
    scenario = load_scenario(
        path, ["network.gateways[0].backhaul.bandwidth=50 Mbps", "devices[0].count=100"]
    )
    assert scenario.network.gateways[0].backhaul.bandwidth == 50e6
    assert scenario.devices[0].count == 100


@pytest.mark.parametrize("value", ["[1", "{a: 1", "'open", "@x", ": :", "&a [*a]"])
def test_set_with_unreadable_yaml_names_the_option(tmp_path: Path, value: str) -> None:
    with pytest.raises(ScenarioError) as info:
        load_scenario(write(tmp_path, BASE), [f"policy={value}"])
    message = str(info.value)
    assert "--set: policy: the value" in message and "not readable YAML" in message, message


def test_set_value_with_nested_aliases_is_bounded(tmp_path: Path) -> None:
    # Seven levels of ten aliases each: 10**7 values once expanded, from 300 characters.
    levels = ["a0: &a0 [" + ",".join(["1"] * 10) + "]"]
    levels += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 7)]
    value = "{" + ", ".join(levels) + "}"
    with pytest.raises(ScenarioError, match="expands to more than"):
        load_scenario(write(tmp_path, BASE), [f"policy={value}"])


def test_override_paths_parse() -> None:
    assert parse_path("devices[2].radio.uplink") == ["devices", 2, "radio", "uplink"]
    with pytest.raises(ValueError):
        parse_path("devices[x]")
    with pytest.raises(ValueError, match="does not exist"):
        apply_overrides({"devices": []}, ["devices[3].count=1"])


# Each case: a change to the valid scenario, the path the error must name, and words it must say.
MALFORMED = {
    "unknown top-level key": (lambda d: d.update(sed=3), "sed", "did you mean 'seed'"),
    "missing duration": (lambda d: d.pop("duration"), "duration", "required"),
    "duration without unit": (lambda d: d.update(duration=10), "duration", "no unit"),
    "duration in wrong unit": (lambda d: d.update(duration="10 Mbps"), "duration", "not a time"),
    "zero duration": (lambda d: d.update(duration="0 s"), "duration", "greater than 0"),
    # pint's parser raises TokenError, AssertionError, ZeroDivisionError on these.
    "unbalanced bracket": (lambda d: d.update(duration="1 (s"), "duration", "cannot read"),
    "dangling operator": (lambda d: d.update(duration="**"), "duration", "cannot read"),
    "division by zero": (lambda d: d.update(duration="1/0 s"), "duration", "cannot read"),
    "too many digits": (lambda d: d.update(duration="9" * 400 + " s"), "duration", "not a finite"),
    "count past 32 bits": (
        lambda d: d["devices"][0].update(count=2**31),
        "devices[0].count",
        "less than or equal to 2147483647",
    ),
    "negative seed": (lambda d: d.update(seed=-1), "seed", "greater than or equal to 0"),
    "seed not a number": (lambda d: d.update(seed="abc"), "seed", "integer"),
    "zero device count": (
        lambda d: d["devices"][0].update(count=0),
        "devices[0].count",
        "greater than 0",
    ),
    "no device groups": (lambda d: d.update(devices=[]), "devices", "at least 1"),
    "unknown device profile": (
        lambda d: d["devices"][0].update(profile="rpi5"),
        "devices[0].profile",
        "did you mean 'rpi4'",
    ),
    "unknown radio profile": (
        lambda d: d["devices"][0].update(radio="5g"),
        "devices[0].radio",
        "unknown radio profile",
    ),
    "typo in profile override": (
        lambda d: d["devices"][0].update(profile={"base": "rpi4", "idle_pwr": "1 W"}),
        "devices[0].profile.idle_pwr",
        "did you mean 'idle_power'",
    ),
    "uplink with a time unit": (
        lambda d: d["devices"][0].update(radio={"base": "wifi", "uplink": "10 ms"}),
        "devices[0].radio.uplink",
        "not a bandwidth",
    ),
    "negative arrival rate": (
        lambda d: d["devices"][0]["arrival"].update(rate="-1 /s"),
        "devices[0].arrival.rate",
        "greater than 0",
    ),
    "unknown arrival process": (
        lambda d: d["devices"][0]["arrival"].update(process="poison"),
        "devices[0].arrival",
        "expected one of",
    ),
    "missing arrival process": (
        lambda d: d["devices"][0]["arrival"].pop("process"),
        "devices[0].arrival",
        "process",
    ),
    "unknown gateway": (
        lambda d: d["devices"][0].update(gateway="gw2"),
        "devices[0].gateway",
        "did you mean 'gw'",
    ),
    "zero backhaul bandwidth": (
        lambda d: d["network"]["gateways"][0]["backhaul"].update(bandwidth="0 Mbps"),
        "network.gateways[0].backhaul.bandwidth",
        "greater than 0",
    ),
    "bandwidth as a bare number": (
        lambda d: d["network"]["cloud_link"].update(bandwidth=1000),
        "network.cloud_link.bandwidth",
        "no unit",
    ),
    "unreadable unit": (
        lambda d: d["network"]["cloud_link"].update(bandwidth="fast"),
        "network.cloud_link.bandwidth",
        "cannot read",
    ),
    "unknown link sharing": (
        lambda d: d["network"]["cloud_link"].update(sharing="fair"),
        "network.cloud_link.sharing",
        "'ps' or 'fifo'",
    ),
    "shared access without a cell": (
        lambda d: d["network"]["gateways"][0].update(access="shared"),
        "network.gateways[0].cell",
        "shared cell",
    ),
    "no gateways": (lambda d: d["network"].update(gateways=[]), "network.gateways", "at least 1"),
    "repeated gateway names": (
        lambda d: d["network"]["gateways"].append(copy.deepcopy(d["network"]["gateways"][0])),
        "network.gateways[1].name",
        "repeats",
    ),
    "workers not an integer": (
        lambda d: d["cloud"].update(workers="two"),
        "cloud.workers",
        "integer",
    ),
    "zero cloud workers": (
        lambda d: d["cloud"].update(workers=0),
        "cloud.workers",
        "greater than 0",
    ),
    "unknown cloud profile": (
        lambda d: d["cloud"].update(profile="a100"),
        "cloud.profile",
        "known",
    ),
    "typo in policy parameter": (
        lambda d: d["policy"].update(treshold=0.4),
        "policy.treshold",
        "did you mean 'threshold'",
    ),
    "unknown policy": (lambda d: d["policy"].update(name="greedy"), "policy", "early_exit"),
    "missing checkpoint file": (
        lambda d: d["model"].update(checkpoint="missing.pt"),
        "model.checkpoint",
        "not found",
    ),
    "missing dataset name and path": (lambda d: d.update(dataset={}), "dataset", "dataset name"),
    "unknown dataset split": (
        lambda d: d["dataset"].update(split="validation"),
        "dataset.split",
        "'train' or 'test'",
    ),
    "negative battery": (
        lambda d: d["devices"][0].update(battery="-5 J"),
        "devices[0].battery",
        "greater than 0",
    ),
    "deadline in wrong unit": (
        lambda d: d.update(deadline={"latency": "5 W"}),
        "deadline.latency",
        "not a time",
    ),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_scenario_names_the_path(case: str, tmp_path: Path) -> None:
    change, where, words = MALFORMED[case]
    with pytest.raises(ScenarioError) as info:
        load_scenario(write(tmp_path, mutate(change)))
    message = str(info.value)
    assert f"  - {where} (line " in message, message
    assert words in message, message


@pytest.mark.parametrize(
    "text, words",
    [
        ("name: x\ndevices: [\n", "YAML syntax error"),
        ("name: x\n  seed: 1\n", "YAML syntax error"),
        ("- just\n- a list\n", "expected a mapping"),
        ("", "empty"),
    ],
)
def test_unreadable_files_are_reported(text: str, words: str, tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=words):
        load_scenario(write(tmp_path, text))


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    def many(d: dict) -> None:
        d.update(seed=-1, duration="3 Mbps")
        d["cloud"].update(workers=0)

    with pytest.raises(ScenarioError) as info:
        load_scenario(write(tmp_path, mutate(many)))
    assert len(info.value.problems) == 3


def test_reference_errors_come_with_field_errors(tmp_path: Path) -> None:
    def both(d: dict) -> None:
        d["devices"][0].update(gateway="gw9", count=0)

    with pytest.raises(ScenarioError) as info:
        load_scenario(write(tmp_path, mutate(both)))
    where = {format_steps(problem.loc) for problem in info.value.problems}
    assert where == {"devices[0].gateway", "devices[0].count"}


def test_error_line_points_into_the_file(tmp_path: Path) -> None:
    text = yaml.safe_dump(mutate(lambda d: d["cloud"].update(workers=0)), sort_keys=False)
    expected = next(i for i, line in enumerate(text.splitlines(), 1) if "workers" in line)
    with pytest.raises(ScenarioError) as info:
        load_scenario(write(tmp_path, text))
    assert info.value.problems[0].line == expected


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "fogsim", *args], capture_output=True, text=True, timeout=120
    )


def test_validate_command_prints_ok_and_exits_zero(tmp_path: Path) -> None:
    path = write(tmp_path, BASE)
    # validate reads the checkpoint as a run would, so it must be a real one.
    shutil.copyfile(Path(__file__).parents[1] / "models/fmnist-binary.pt", tmp_path / "net.pt")
    result = run_cli("validate", str(path))
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout


def test_validate_command_exits_two_without_traceback(tmp_path: Path) -> None:
    bad = mutate(lambda d: (d.update(sed=1), d["cloud"].update(workers=0)))
    result = run_cli("validate", str(write(tmp_path, bad)))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr + result.stdout
    assert "cloud.workers" in result.stderr and "sed" in result.stderr


def test_shipped_scenarios_validate() -> None:
    for path in sorted(Path(__file__).parents[1].glob("scenarios/*.yaml")):
        load_scenario(path)

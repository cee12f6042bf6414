"""`fogsim validate` finds before a run what the run would reject: files, traces, memory."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import pytest
import yaml
from cli_fixtures import invoke
from test_scenario import BASE

from fogsim.scenario import ScenarioError, load_scenario

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINT = ROOT / "models/fmnist-binary.pt"


def scenario_file(tmp_path: Path, change=None, name: str = "scenario.yaml") -> Path:
    """BASE with a real checkpoint beside it, changed by ``change``."""
    shutil.copyfile(CHECKPOINT, tmp_path / "net.pt")
    data = copy.deepcopy(BASE)
    if change:
        change(data)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def with_trace(text: str, **arrival):
    def change(data: dict) -> None:
        data["devices"][0]["arrival"] = {"process": "csv", "path": "trace.csv", **arrival}

    def make(tmp_path: Path) -> Path:
        (tmp_path / "trace.csv").write_text(text)
        return scenario_file(tmp_path, change)

    return make


def test_ok_reports_the_expected_requests(tmp_path: Path) -> None:
    result = invoke("validate", str(scenario_file(tmp_path)))
    assert result.code == 0, result.stderr
    # 3 devices x 1 request/s x 10 s.
    assert "OK: " in result.stdout and "about 30 requests" in result.stdout


def test_several_files_each_reported_and_any_failure_exits_two(tmp_path: Path) -> None:
    good = scenario_file(tmp_path, name="good.yaml")
    bad = scenario_file(tmp_path, lambda d: d["cloud"].update(workers=0), name="bad.yaml")
    result = invoke("validate", str(good), str(bad), str(good))
    assert result.code == 2
    assert result.stdout.count("OK: ") == 2
    assert "bad.yaml" in result.stderr and "cloud.workers" in result.stderr
    assert "1 of 3 files have errors" in result.stderr
    assert invoke("validate", str(good), str(good)).code == 0


def test_a_placeholder_checkpoint_is_caught(tmp_path: Path) -> None:
    path = scenario_file(tmp_path)
    (tmp_path / "net.pt").write_bytes(b"placeholder")
    result = invoke("validate", str(path))
    assert result.code == 2
    assert "model.checkpoint (line " in result.stderr
    assert "not a readable checkpoint" in result.stderr


def test_a_torch_file_that_is_no_fogsim_checkpoint_is_caught(tmp_path: Path) -> None:
    import torch

    path = scenario_file(tmp_path)
    torch.save({"weights": torch.zeros(2)}, tmp_path / "net.pt")
    result = invoke("validate", str(path))
    assert result.code == 2 and "not a fogsim checkpoint" in result.stderr


@pytest.mark.parametrize("layout", ["missing", "empty folder", "not a zip"])
def test_a_dataset_path_without_images_is_caught(tmp_path: Path, layout: str) -> None:
    where = {"missing": "nowhere", "empty folder": "empty", "not a zip": "test.zip"}[layout]
    (tmp_path / "empty").mkdir()
    (tmp_path / "test.zip").write_bytes(b"not a zip archive")
    path = scenario_file(tmp_path, lambda d: d.update(dataset={"path": where}))
    result = invoke("validate", str(path))
    assert result.code == 2
    assert "dataset.path (line " in result.stderr and where in result.stderr


def test_an_unknown_dataset_name_is_caught(tmp_path: Path) -> None:
    path = scenario_file(tmp_path, lambda d: d["dataset"].update(name="no-such-set"))
    result = invoke("validate", str(path))
    assert result.code == 2 and "no-such-set" in result.stderr


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("time_s\n0.5\nsoon\n", "line 3: 'soon' in column 'time_s' is not a number"),
        ("time_s\n0.5\n-2\n", "line 3: '-2' in column 'time_s' is not a finite number >= 0"),
        ("when\n0.5\n", "line 1: no such column 'time_s'"),
        ("time_s\n", "no rows"),
        ("", "is empty"),
        ("time_s\n0.5,1\n", "line 2: 2 fields where the header has 1"),
    ],
)
def test_bad_arrival_traces_are_caught_with_file_and_line(
    tmp_path: Path, text: str, words: str
) -> None:
    path = with_trace(text)(tmp_path)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    message = str(info.value)
    assert "devices[0].arrival (line " in message, message
    assert str(tmp_path / "trace.csv") in message and words in message


def test_a_good_trace_validates_and_counts_its_rows(tmp_path: Path) -> None:
    # Every one of the 3 devices replays the 4 rows before 10 s; 12.5 s is after the run.
    path = with_trace("time_s\n0.5\n1.5\n\n2.5\n9.9\n12.5\n")(tmp_path)
    result = invoke("validate", str(path))
    assert result.code == 0, result.stderr
    assert "about 12 requests" in result.stdout


def test_a_run_too_large_for_memory_is_refused_with_its_estimate(tmp_path: Path) -> None:
    path = scenario_file(tmp_path, lambda d: d["devices"][0].update(count=1_000_000_000))
    result = invoke("validate", str(path))
    assert result.code == 2
    # 1e9 devices x 1 request/s x 10 s.
    assert "about 10,000,000,000 requests" in result.stderr
    assert "over the limit of" in result.stderr and "--max-memory" in result.stderr
    raised = invoke("validate", str(path), "--max-memory", "100 TB")
    assert raised.code == 0, raised.stderr


def test_a_bad_max_memory_is_a_usage_error(tmp_path: Path) -> None:
    path = scenario_file(tmp_path)
    for value in ("8", "lots", "8 Mbps", "0 GB"):
        result = invoke("validate", str(path), "--max-memory", value)
        assert result.code == 2 and "--max-memory" in result.stderr, value


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe", "not a text file"),
        (b"", "got empty"),
        (None, "is a directory"),
    ],
)
def test_binary_empty_and_directory_paths_are_clear_errors(
    tmp_path: Path, content: bytes | None, words: str
) -> None:
    path = tmp_path / "scenario.yaml"
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    for command in ("validate", "run"):
        result = invoke(command, str(path), *(["-o", str(tmp_path / "out")] * (command == "run")))
        assert result.code == 2 and words in result.stderr, (command, result.stderr)
    assert not (tmp_path / "out").exists()


def _digits(tmp_path: Path, shape: tuple[int, ...], classes: int) -> None:
    """An ImageFolder of random images: ``classes`` folders named d0, d1, ... (not the
    Fashion-MNIST class names the checkpoint's card records)."""
    import numpy as np
    from data_fixtures import imagefolder_files, images_for, write_imagefolder

    labels = np.repeat(np.arange(classes), 2)
    images = images_for(labels, shape)
    by_class = {f"d{c}": list(images[labels == c]) for c in range(classes)}
    write_imagefolder(tmp_path / "digits" / "test", imagefolder_files(by_class))


def _on_digits(allow: bool = False):
    def change(data: dict) -> None:
        data["dataset"] = {"path": "digits", "split": "test"}
        if allow:
            data["model"]["allow_dataset_mismatch"] = True

    return change


def test_images_of_another_shape_are_caught(tmp_path: Path) -> None:
    _digits(tmp_path, (16, 16), 10)
    result = invoke("validate", str(scenario_file(tmp_path, _on_digits(allow=True))))
    assert result.code == 2
    assert "model.checkpoint (line " in result.stderr and "16x16x1" in result.stderr


def test_a_checkpoint_trained_on_other_data_is_refused_unless_the_scenario_insists(
    tmp_path: Path,
) -> None:
    _digits(tmp_path, (28, 28), 10)
    refused = invoke("validate", str(scenario_file(tmp_path, _on_digits())))
    assert refused.code == 2
    assert "allow_dataset_mismatch" in refused.stderr and "fashion-mnist" in refused.stderr
    assert invoke("validate", str(scenario_file(tmp_path, _on_digits(allow=True)))).code == 0


def test_a_run_that_insists_warns_of_each_difference(tmp_path: Path) -> None:
    import fogsim
    from fogsim.runner import DatasetMismatchWarning

    _digits(tmp_path, (28, 28), 10)
    path = scenario_file(tmp_path, _on_digits(allow=True))
    with pytest.warns(DatasetMismatchWarning) as warned:
        fogsim.run(path, write=False)
    messages = [str(w.message) for w in warned]
    assert any("trained on 'fashion-mnist'" in m for m in messages)
    assert any("class names differ" in m for m in messages)

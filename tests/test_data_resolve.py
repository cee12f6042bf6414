"""Finding datasets by name: the order of places, the not-found report, downloads."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
from data_fixtures import (
    imagefolder_files,
    images_for,
    isolate,
    write_idx,
    write_imagefolder,
    write_zip,
)

import fogsim.data.download as download
import fogsim.data.resolve as resolve
from fogsim.data import load_dataset, resolve_dataset
from fogsim.data.download import DownloadFailed, download_split
from fogsim.data.registry import DatasetSpec
from fogsim.errors import DatasetNotFoundError, UserInputError

LABELS = np.array([1, 0, 2], dtype=np.uint8)


@pytest.fixture(autouse=True)
def places(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Path]:
    isolate(monkeypatch, tmp_path)
    monkeypatch.setenv("FOGSIM_DATA_DIR", str(tmp_path / "data-dir"))
    return {
        "data_dir": tmp_path / "data-dir",
        "cache": tmp_path / "xdg-cache" / "fogsim" / "datasets",
        "system": tmp_path / "system",
    }


def _put_mnist(root: Path) -> Path:
    write_idx(root / "mnist", "test", images_for(LABELS, (2, 2)), LABELS)
    return root / "mnist"


def test_order_data_dir_then_cache_then_system(places: dict[str, Path]) -> None:
    dirs = [_put_mnist(places[k]) for k in ("data_dir", "cache", "system")]
    for expected in dirs:
        assert resolve_dataset("mnist") == expected
        shutil.rmtree(expected)
    with pytest.raises(DatasetNotFoundError):
        resolve_dataset("mnist")


def test_explicit_path_wins(places: dict[str, Path], tmp_path: Path) -> None:
    _put_mnist(places["data_dir"])
    mine = _put_mnist(tmp_path / "mine")
    assert resolve_dataset("mnist", path=mine) == mine
    assert load_dataset("mnist", path=mine).source.startswith(str(mine))


def test_folder_without_the_split_is_skipped_and_reported(places: dict[str, Path]) -> None:
    (places["data_dir"] / "mnist").mkdir(parents=True)
    system = _put_mnist(places["system"])
    assert resolve_dataset("mnist") == system
    with pytest.raises(DatasetNotFoundError, match="exists, but holds no train split"):
        resolve_dataset("mnist", split="train")


def test_broken_links_are_named(places: dict[str, Path], tmp_path: Path) -> None:
    # The cache's links into a share that moved: the report says so, not "no split".
    folder = places["cache"] / "cifar10"
    folder.mkdir(parents=True)
    (folder / "train.zip").symlink_to(tmp_path / "gone" / "train.zip")
    with pytest.raises(DatasetNotFoundError, match=r"train\.zip -> .*gone.*make data"):
        resolve_dataset("cifar10", split="train")


def test_cifar10_zips_in_the_cache(places: dict[str, Path]) -> None:
    folder = places["cache"] / "cifar10"
    folder.mkdir(parents=True)
    files = imagefolder_files({"cat": [np.zeros((2, 2, 3), np.uint8)]})
    for split in ("train", "test"):
        write_zip(folder / f"{split}.zip", files, prefix=f"{split}/")
    assert resolve_dataset("cifar10", split="train") == folder / "train.zip"
    assert resolve_dataset("cifar10") == folder / "test.zip"


def test_split_folder_layout(places: dict[str, Path]) -> None:
    files = imagefolder_files({"a": [np.zeros((2, 2), np.uint8)]})
    write_imagefolder(places["data_dir"] / "mine" / "test", files)
    assert resolve_dataset("mine") == places["data_dir"] / "mine" / "test"


def test_not_found_lists_every_place_and_the_fix(places: dict[str, Path]) -> None:
    with pytest.raises(DatasetNotFoundError) as info:
        resolve_dataset("fashion-mnist")
    message = str(info.value)
    for where in (places["data_dir"], places["cache"], places["system"]):
        assert f"{where / 'fashion-mnist'}): does not exist" in message
    assert "download: disabled (FOGSIM_OFFLINE is set)" in message
    assert "sudo apt-get install dataset-fashion-mnist" in message
    assert "make data" in message


def test_data_dir_unset_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FOGSIM_DATA_DIR")
    with pytest.raises(DatasetNotFoundError, match="FOGSIM_DATA_DIR is not set"):
        resolve_dataset("mnist")


def test_unknown_name_lists_known_ones() -> None:
    with pytest.raises(DatasetNotFoundError, match=r"not in the registry(.|\n)*Known datasets: ci"):
        load_dataset("imagenet")


def test_name_that_is_a_path() -> None:
    with pytest.raises(UserInputError, match="looks like a path"):
        resolve_dataset("../etc")


def test_missing_explicit_path(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="nowhere does not exist"):
        load_dataset(path=tmp_path / "nowhere")


def test_unknown_file_format(tmp_path: Path) -> None:
    (tmp_path / "data.csv").write_text("1,2")
    with pytest.raises(UserInputError, match="cannot tell this file's format"):
        load_dataset(path=tmp_path / "data.csv")


def test_resolve_never_downloads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FOGSIM_OFFLINE")
    monkeypatch.setattr(resolve, "download_split", _must_not_be_called)
    with pytest.raises(DatasetNotFoundError, match="not attempted; loading would fetch"):
        resolve_dataset("mnist")


def _must_not_be_called(*args: object, **kwargs: object) -> None:
    raise AssertionError("resolve_dataset tried to download")


# Downloads, served from file:// URLs so no network is needed.

def _spec(server: Path, checksums: dict[str, dict[str, str]]) -> DatasetSpec:
    return DatasetSpec(
        name="mnist", title="t", url=server.as_uri() + "/",
        splits={"test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
                "train": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")},
        checksums=checksums, classes=("a", "b", "c"),
    )


def _server(tmp_path: Path) -> tuple[Path, dict[str, dict[str, str]]]:
    server = _put_mnist(tmp_path / "server")
    sums = {f.name: {"sha256": hashlib.sha256(f.read_bytes()).hexdigest()}
            for f in server.iterdir()}
    return server, sums


def test_download_into_cache_then_load(
    monkeypatch: pytest.MonkeyPatch, places: dict[str, Path], tmp_path: Path
) -> None:
    server, sums = _server(tmp_path)
    monkeypatch.delenv("FOGSIM_OFFLINE")
    monkeypatch.setattr(resolve, "spec_for", lambda name: _spec(server, sums))
    dataset = load_dataset("mnist")
    assert dataset.source.startswith(str(places["cache"] / "mnist"))
    np.testing.assert_array_equal(dataset.labels, LABELS)
    assert sorted(p.name for p in (places["cache"] / "mnist").iterdir()) == sorted(sums)


def test_download_with_wrong_checksum_is_discarded(tmp_path: Path) -> None:
    server, sums = _server(tmp_path)
    sums["t10k-images-idx3-ubyte.gz"] = {"md5": hashlib.md5(b"other").hexdigest()}
    dest = tmp_path / "dest"
    with pytest.raises(DownloadFailed, match=r"t10k-images-idx3-ubyte.gz.part: md5 is .*expected"):
        download_split(_spec(server, sums), "test", dest)
    assert not (dest / "t10k-images-idx3-ubyte.gz").exists()
    assert not (dest / "t10k-images-idx3-ubyte.gz.part").exists()


def test_network_failure_is_a_clear_not_found(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def offline_urlopen(url: str, timeout: float) -> None:
        raise URLError("[Errno -2] Name or service not known")

    monkeypatch.delenv("FOGSIM_OFFLINE")
    monkeypatch.setattr(download, "urlopen", offline_urlopen)
    with pytest.raises(DatasetNotFoundError, match=r"downloading http\S+ failed: \[Errno -2\]"):
        load_dataset("fashion-mnist")
    assert not (tmp_path / "xdg-cache" / "fogsim" / "datasets" / "fashion-mnist").exists()


def test_registry_refuses_unverifiable_downloads(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="has no checksum"):
        _spec(tmp_path, {})


"""scripts/provision-data.sh: CIFAR-10 lands in the user cache as files of its own."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from fogsim.data import resolve_dataset

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "provision-data.sh"
FMNIST = Path("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")

pytestmark = pytest.mark.skipif(
    not FMNIST.is_file() or shutil.which("bash") is None,
    reason="the script provisions Fashion-MNIST first (from the Debian package), absent here",
)


def _provision(shared: Path, cache_home: Path) -> str:
    env = {**os.environ, "FOGSIM_SHARED": str(shared), "XDG_CACHE_HOME": str(cache_home)}
    done = subprocess.run(
        ["bash", str(SCRIPT)], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout


def test_the_cache_outlives_the_shared_folder_it_was_provisioned_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A clone in a temporary folder provisions from its own ../shared, which then goes:
    # the cache must still hold the images, not links into the vanished folder.
    shared = tmp_path / "clone" / "shared"
    source = shared / "datasets" / "cifar10-jpeg"
    source.mkdir(parents=True)
    for split in ("train", "test"):
        (source / f"{split}.zip").write_bytes(f"{split} zip bytes".encode())
    cache_home = tmp_path / "cache"

    assert "copied into" in _provision(shared, cache_home)
    cached = cache_home / "fogsim" / "datasets" / "cifar10"
    for split in ("train", "test"):
        assert not (cached / f"{split}.zip").is_symlink()
        assert (cached / f"{split}.zip").read_bytes() == f"{split} zip bytes".encode()
    assert "up to date" in _provision(shared, cache_home)

    (source / "test.zip").write_bytes(b"a newer test zip")
    assert "copied into" in _provision(shared, cache_home)
    assert (cached / "test.zip").read_bytes() == b"a newer test zip"
    assert not list(cached.glob("*.partial"))

    shutil.rmtree(tmp_path / "clone")
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache_home))
    monkeypatch.delenv("FOGSIM_DATA_DIR", raising=False)
    assert resolve_dataset("cifar10", split="test") == cached / "test.zip"


def test_links_from_an_older_provisioning_are_replaced_by_copies(tmp_path: Path) -> None:
    # One link points at nothing; the other still resolves, into a folder that may go.
    shared = tmp_path / "shared"
    source = shared / "datasets" / "cifar10-jpeg"
    source.mkdir(parents=True)
    for split in ("train", "test"):
        (source / f"{split}.zip").write_bytes(split.encode())
    cached = tmp_path / "cache" / "fogsim" / "datasets" / "cifar10"
    cached.mkdir(parents=True)
    (cached / "test.zip").symlink_to(tmp_path / "gone" / "test.zip")
    (cached / "train.zip").symlink_to(source / "train.zip")

    assert "copied into" in _provision(shared, tmp_path / "cache")
    for split in ("train", "test"):
        assert not (cached / f"{split}.zip").is_symlink()
        assert (cached / f"{split}.zip").read_bytes() == split.encode()

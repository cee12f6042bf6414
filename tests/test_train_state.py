"""A long training run's resumable state: what it keeps, and which weights ship."""

import pytest
import torch
from test_nn_train import RECIPE, fit, toy_dataset

from fogsim.errors import UserInputError
from fogsim.nn.evaluate import hybrid_metrics, predict
from fogsim.nn.recipe import recipe_from_dict
from fogsim.nn.setup import split_train_holdout
from fogsim.nn.train import STATE_FILE


def _train(tmp_path, recipe, log=lambda _: None) -> None:
    fit(recipe, tmp_path / "work", tmp_path / "net.pt", log)


def test_the_state_keeps_the_best_held_out_weights_and_those_ship(tmp_path):
    # A learning rate this high makes the held-out score jump about between epochs.
    recipe = recipe_from_dict({**RECIPE, "epochs": 4, "lr": 0.05, "lr_schedule": "constant"})
    scores: list[float] = []
    _train(
        tmp_path,
        recipe,
        lambda line: (
            scores.append(float(line.split("cloud ")[1].split()[0]))
            if line.startswith("epoch ")
            else None
        ),
    )
    state = torch.load(tmp_path / "work" / STATE_FILE, weights_only=True)
    assert state["epoch"] == 4 and isinstance(state["torch_rng"], torch.Tensor)
    best = state["best"]
    assert best["score"] == pytest.approx(max(scores), abs=1e-4)
    assert best["epoch"] == 1 + scores.index(max(scores))
    shipped = torch.load(tmp_path / "net.pt", weights_only=True)["state_dict"]
    # The state holds no second copy when the best epoch is the one it saved.
    best_weights = state["model"] if best["epoch"] == state["epoch"] else best["model"]
    for key, value in best_weights.items():
        assert torch.equal(shipped[key], value), key
    # Counted again from the shipped network on the held-out images themselves.
    from fogsim.nn.checkpoint import load_checkpoint

    train = toy_dataset(split="train")
    _, hold = split_train_holdout(len(train.labels), recipe)
    model = load_checkpoint(tmp_path / "net.pt").build()
    metrics = hybrid_metrics(predict(model, train.images[hold], train.labels[hold]), "entropy", 1)
    assert metrics["accuracy"]["cloud"] == pytest.approx(best["score"], abs=1e-6)


def test_a_damaged_state_is_a_clear_error_that_says_how_to_start_again(tmp_path):
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / STATE_FILE).write_bytes(b"half a file")
    with pytest.raises(UserInputError, match="delete it"):
        _train(tmp_path, recipe_from_dict({**RECIPE, "epochs": 1}))


@pytest.mark.parametrize("stop_after", [1, 2])
def test_a_run_resumed_after_any_epoch_ships_the_weights_an_unbroken_run_ships(
    tmp_path, stop_after
):
    # Jumpy held-out scores: over these 3 epochs the best is epoch 2, so a run stopped after
    # epoch 2 resumes from a state that keeps the best weights once (as the model's own), and
    # one stopped after epoch 1 finds its best later.
    recipe = recipe_from_dict({**RECIPE, "epochs": 3, "lr": 0.05, "lr_schedule": "constant"})
    fit(recipe, tmp_path / "whole", tmp_path / "whole.pt")
    whole = torch.load(tmp_path / "whole.pt", weights_only=True)
    assert whole["card"]["kept_epoch"] == 2

    def stop(line: str) -> None:
        if line.startswith(f"epoch {stop_after}:"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(recipe, tmp_path / "broken", tmp_path / "broken.pt", stop)
    assert torch.load(tmp_path / "broken" / STATE_FILE, weights_only=True)["epoch"] == stop_after
    fit(recipe, tmp_path / "broken", tmp_path / "broken.pt")
    resumed = torch.load(tmp_path / "broken.pt", weights_only=True)
    assert resumed["card"]["kept_epoch"] == 2
    for key, value in whole["state_dict"].items():
        assert torch.equal(resumed["state_dict"][key], value), key

"""Fuzzing recipes: whatever the mapping or the YAML text, a Recipe or a UserInputError.

Random values of wrong and odd types for known keys, random YAML text, and the network
built from a recipe that validates, for images of random shapes.
"""

import dataclasses
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fogsim.errors import UserInputError
from fogsim.nn.recipe import Recipe, load_recipe, recipe_from_dict
from fogsim.nn.setup import _build

KEYS = [f.name for f in dataclasses.fields(Recipe)]
VALID = {"name": "fuzz", "dataset": "fashion-mnist", "architecture": "smallcnn", "epochs": 1}

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["1e-3", "5e-4", "2", "-1", "nan", "inf", "1e400", "binary", "int4", "bf16"]),
    st.sampled_from(["smallcnn", "resnet20", "conv", "linear", "entropy", "adam", "cosine"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.one_of(st.sampled_from(["path", "name", "teacher", "weight", "hflip"]), st.text()),
            inner,
            max_size=4,
        ),
    ),
    max_leaves=8,
)
# Mostly known keys, sometimes one that is not.
keys = st.one_of(st.sampled_from(KEYS), st.text(max_size=8))


def _only_user_errors(call) -> object:
    try:
        return call()
    except UserInputError:
        return None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(changes=st.dictionaries(keys, values, max_size=4), drop=st.sets(st.sampled_from(KEYS)))
def test_any_recipe_mapping_is_a_recipe_or_a_user_error(changes, drop):
    raw = {k: v for k, v in {**VALID, **changes}.items() if k not in drop}
    _only_user_errors(lambda: recipe_from_dict(raw, "fuzz.yaml"))


@settings(max_examples=150, deadline=None)
@given(
    changes=st.dictionaries(st.sampled_from(KEYS), scalars, max_size=3),
    shape=st.tuples(st.integers(0, 70), st.integers(0, 70), st.integers(0, 20)),
)
def test_a_valid_recipe_builds_its_network_or_says_why_not(changes, shape):
    recipe = _only_user_errors(lambda: recipe_from_dict({**VALID, **changes}, "fuzz.yaml"))
    if recipe is None:
        return
    images = np.zeros((1, *shape), np.uint8)
    data = SimpleNamespace(name="fuzz", images=images, classes=("a", "b", "c"))
    _only_user_errors(lambda: _build(recipe, data))


# Values as a user might type them, and as they go wrong: numbers YAML keeps as strings,
# impossible dates, unclosed brackets, anchors, tags, nested mappings.
yaml_values = st.one_of(
    st.text(max_size=20),
    st.sampled_from(
        [
            "1e-3", "5e-4", "two", "1.5", "-3", ".nan", ".inf", "2024-13-01", "2024-01-01",
            "[1, 2", "[7]", "[]", "{}", "{path: x}", "{teacher: t.pt, weight: 2}", "&a [1]",
            "*a", "!!binary aGVsbG8=", "!!python/object:os.system ls", "null", "yes", "~",
            "{crop_padding: 4, hflip: maybe}", "'bf16'", "0x1F", "0o17", "1_000",
        ]
    ),
)
yaml_text = st.one_of(
    st.text(max_size=200),
    st.lists(
        st.tuples(st.sampled_from([*KEYS, "x"]), yaml_values).map(lambda kv: f"{kv[0]}: {kv[1]}"),
        max_size=8,
    ).map("\n".join),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=yaml_text)
def test_any_yaml_text_is_a_recipe_or_a_user_error(text, tmp_path_factory):
    path = Path(tmp_path_factory.mktemp("fuzz")) / "r.yaml"
    path.write_text("name: fuzz\ndataset: fashion-mnist\n" + text)
    _only_user_errors(lambda: load_recipe(path))
    path.write_text(text)
    _only_user_errors(lambda: load_recipe(path))

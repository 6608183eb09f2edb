"""TrainConfig.validate: every bad value is refused with a message naming the field, the value and the fix."""

from __future__ import annotations

from dataclasses import FrozenInstanceError, replace

import pytest

from core.config import TrainConfig
from core.errors import ConfigError


def test_defaults_are_the_seeds_setting_and_valid():
    config = TrainConfig()
    config.validate(n_train=50_000)
    assert (config.sizes, config.activation, config.cost, config.eta, config.lmbda, config.batch_size, config.epochs) == (
        (784, 100, 10), "sigmoid", "cross-entropy", 0.5, 5.0, 10, 30
    )
    with pytest.raises(FrozenInstanceError):
        config.eta = 1.0  # type: ignore[misc]


@pytest.mark.parametrize(
    "changes, n_train, words",
    [
        ({"eta": 0.0}, None, ["eta=0.0", "> 0"]),
        ({"eta": -0.1}, None, ["eta=-0.1"]),
        ({"eta": float("nan")}, None, ["eta=nan"]),
        ({"lmbda": -1.0}, None, ["lmbda=-1.0", ">= 0"]),
        ({"dropout": 1.0}, None, ["dropout=1.0", "[0, 1)"]),
        ({"dropout": -0.1}, None, ["dropout=-0.1"]),
        ({"sizes": (784, 0, 10)}, None, ["sizes=", ">= 1", "0"]),
        ({"sizes": (784,)}, None, ["sizes=", "at least"]),
        ({"sizes": (784, 2.5, 10)}, None, ["sizes=", "2.5"]),
        ({"activation": "swish"}, None, ["activation=", "swish", "sigmoid"]),
        ({"sizes": (784, 30, 20, 10), "activation": "relu,tanh,sigmoid"}, None, ["activation=", "2 hidden layers"]),
        ({"cost": "hinge"}, None, ["cost=", "hinge", "log-likelihood"]),
        ({"init": "xavier"}, None, ["init=", "xavier", "scaled"]),
        ({"dtype": "float16"}, None, ["dtype=", "float16", "float64"]),
        ({"batch_size": 0}, None, ["batch_size=0"]),
        ({"batch_size": 100}, 50, ["batch_size=100", "50 training examples", "--batch-size 50"]),
        ({"epochs": 0}, None, ["epochs=0"]),
        ({"patience": 0}, None, ["patience=0", "None"]),
        ({"seed": -1}, None, ["seed=-1"]),
        ({"eta_schedule": True, "patience": None}, None, ["eta_schedule", "patience"]),
        ({"momentum": 1.0}, None, ["momentum=1.0", "[0, 1)", "--momentum"]),
        ({"momentum": -0.5}, None, ["momentum=-0.5"]),
        ({"momentum": "0.9"}, None, ["momentum='0.9'"]),
        ({"nesterov": True}, None, ["nesterov=True", "momentum > 0"]),
        ({"nesterov": 1, "momentum": 0.9}, None, ["nesterov=1", "True or False"]),
        ({"max_norm": -1.0}, None, ["max_norm=-1.0", ">= 0", "0 turns it off"]),
        ({"max_norm": float("inf")}, None, ["max_norm=inf", "finite"]),
        ({"schedule": "exponential"}, None, ["schedule=", "exponential", "cosine", "onecycle"]),
        ({"shift": -1.0}, None, ["shift=-1.0", ">= 0", "pixels"]),
        ({"rotate": 180.0}, None, ["rotate=180.0", "< 180", "degrees"]),
        ({"scale": 1.0}, None, ["scale=1.0", "< 1"]),
        ({"shear": 90.0}, None, ["shear=90.0", "< 90"]),
        ({"elastic_alpha": float("nan")}, None, ["elastic_alpha=nan", "finite"]),
        ({"elastic_sigma": 0.0}, None, ["elastic_sigma=0.0", "> 0", "--elastic-sigma"]),
        ({"sizes": (101, 10), "shift": 1.0}, None, ["sizes[0]=101", "square", "784 = 28×28"]),
    ],
)
def test_bad_values_are_named_with_the_fix(changes, n_train, words):
    with pytest.raises(ConfigError) as caught:
        replace(TrainConfig(), **changes).validate(n_train=n_train)
    for word in words:
        assert word in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_per_layer_activations():
    config = TrainConfig(sizes=(784, 30, 20, 10), activation="relu, tanh")
    config.validate()
    assert config.hidden_activations() == ("relu", "tanh")
    assert TrainConfig(sizes=(784, 30, 20, 10), activation="relu").hidden_activations() == ("relu", "relu")


def test_sizes_from_a_list_are_accepted():
    TrainConfig(sizes=[784, 30, 10]).validate()  # type: ignore[arg-type]


def test_new_options_default_to_todays_training():
    config = TrainConfig()
    assert (config.momentum, config.nesterov, config.max_norm, config.schedule) == (0.0, False, 0.0, "constant")
    assert not config.distorts()
    assert replace(config, elastic_alpha=8.0).distorts() and replace(config, shift=1.0).distorts()
    replace(config, momentum=0.9, nesterov=True, max_norm=3.0, schedule="onecycle", shift=2.0, rotate=10.0,
            scale=0.1, shear=5.0, elastic_alpha=34.0, elastic_sigma=4.0).validate(n_train=50_000)

"""Run names say what was trained: sizes, activation, η and λ always, then only what differs from the defaults."""

from __future__ import annotations

import pytest

from core.config import TrainConfig
from tracking.run_names import describe


@pytest.mark.parametrize(
    ("config", "name"),
    [
        (TrainConfig(sizes=(784, 30, 10), lmbda=0), "784-30-10 sigmoid η0.5 λ0"),
        (TrainConfig(sizes=(784, 30, 10), activation="step", lmbda=0), "784-30-10 step η0.5 λ0"),
        (TrainConfig(sizes=(784, 100, 10), lmbda=0, dropout=0.5), "784-100-10 sigmoid η0.5 λ0 dropout0.5"),
        (TrainConfig(sizes=(784, 30, 10), lmbda=0, batch_size=100), "784-30-10 sigmoid η0.5 λ0 batch100"),
        (
            TrainConfig(sizes=(784, 30, 10), init="large", cost="quadratic", lmbda=0),
            "784-30-10 sigmoid quadratic η0.5 λ0 init-large",
        ),
        (
            TrainConfig(sizes=(784, 321, 64, 10), activation="relu,tanh", eta=0.353563, lmbda=0.2335881, batch_size=32),
            "784-321-64-10 relu,tanh η0.354 λ0.234 batch32",
        ),
        (TrainConfig(sizes=(784, 10), cost="log-likelihood", eta=0.05), "784-10 log-likelihood η0.05 λ5"),
        (TrainConfig(sizes=(784, 30, 4), output_encoding="binary"), "784-30-4 sigmoid η0.5 λ5 binary-outputs"),
        (TrainConfig(eta_schedule=True), "784-100-10 sigmoid η0.5 λ5 η-halving"),
        (TrainConfig(momentum=0.9, nesterov=True, max_norm=3), "784-100-10 sigmoid η0.5 λ5 μ0.9 nesterov max-norm3"),
        (TrainConfig(schedule="onecycle", shift=2, rotate=15), "784-100-10 sigmoid η0.5 λ5 onecycle shift2 rotate15"),
        (
            TrainConfig(scale=0.1, shear=5, elastic_alpha=34, elastic_sigma=4),
            "784-100-10 sigmoid η0.5 λ5 scale0.1 shear5 elastic34/σ4",
        ),
    ],
)
def test_a_name_says_the_sizes_activation_rates_and_what_differs_from_the_defaults(config, name):
    assert describe(config) == name


def test_runs_that_differ_in_a_named_setting_get_different_names():
    base = TrainConfig(sizes=(784, 30, 10), lmbda=0)
    variants = [
        base,
        TrainConfig(sizes=(784, 30, 10), lmbda=5),
        TrainConfig(sizes=(784, 30, 10), lmbda=0, eta=0.1),
        TrainConfig(sizes=(784, 30, 10), lmbda=0, cost="quadratic"),
        TrainConfig(sizes=(784, 30, 10), lmbda=0, dropout=0.2),
        TrainConfig(sizes=(784, 100, 10), lmbda=0),
        TrainConfig(sizes=(784, 30, 10), lmbda=0, momentum=0.9),
        TrainConfig(sizes=(784, 30, 10), lmbda=0, elastic_alpha=34),
        TrainConfig(sizes=(784, 30, 10), lmbda=0, elastic_alpha=34, elastic_sigma=6),
        TrainConfig(sizes=(784, 30, 10), lmbda=0, shift=1),
        TrainConfig(sizes=(784, 30, 10), lmbda=0, rotate=1),
    ]
    assert len({describe(config) for config in variants}) == len(variants)

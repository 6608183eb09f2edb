"""Learning-rate schedules by name, and the η each epoch of train() used."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core.config import SCHEDULE_NAMES, TrainConfig
from core.errors import ConfigError
from core.network import Network
from core.schedules import eta_factor, momentum_factor
from core.training import train


def factors(schedule, epochs, of=eta_factor):
    return [of(schedule, e, epochs) for e in range(1, epochs + 1)]


def test_constant_is_one_throughout():
    assert factors("constant", 7) == [1.0] * 7
    assert factors("constant", 7, momentum_factor) == [1.0] * 7


def test_step_drops_tenfold_after_half_and_three_quarters_of_the_epochs():
    assert factors("step", 8) == pytest.approx([1, 1, 1, 1, 0.1, 0.1, 0.01, 0.01])


def test_cosine_starts_at_one_and_falls_to_near_zero():
    values = factors("cosine", 10)
    assert values[0] == 1.0 and all(a > b for a, b in zip(values, values[1:]))
    assert values[-1] == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.9)))
    assert values[4] == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.4)))


def test_onecycle_rises_then_falls_while_momentum_dips_and_returns():
    eta, mu = factors("onecycle", 10), factors("onecycle", 10, momentum_factor)
    peak = int(np.argmax(eta))
    assert eta[0] == pytest.approx(0.1) and eta[peak] == pytest.approx(1.0) and peak == 2
    assert all(a < b for a, b in zip(eta[: peak + 1], eta[1 : peak + 1]))
    assert all(a > b for a, b in zip(eta[peak:], eta[peak + 1 :])) and eta[-1] == pytest.approx(0.001)
    assert mu[0] == 1.0 and mu[peak] == pytest.approx(0.85 / 0.95) and mu[-1] == pytest.approx(1.0)


@pytest.mark.parametrize("epochs", [1, 2, 3])
def test_every_schedule_gives_positive_factors_for_short_runs(epochs):
    for name in SCHEDULE_NAMES:
        assert all(0 < f <= 1 for f in factors(name, epochs)), name


def test_unknown_schedule_is_refused():
    with pytest.raises(ConfigError, match="schedule='linear'"):
        eta_factor("linear", 1, 5)


@pytest.mark.parametrize("schedule", SCHEDULE_NAMES)
def test_train_uses_the_scheduled_eta_in_each_epoch(schedule):
    rng = np.random.default_rng(0)
    X, y = rng.uniform(0, 1, (60, 6)), rng.integers(0, 3, 60)
    config = TrainConfig(sizes=(6, 5, 3), eta=0.4, lmbda=0.0, batch_size=10, epochs=6, patience=None,
                         schedule=schedule, momentum=0.5)
    result = train(Network.from_config(config), X, y, X, y, config)
    assert [m.eta for m in result.history] == pytest.approx([0.4 * f for f in factors(schedule, 6)])


def test_a_time_budget_shortens_the_schedule_so_eta_comes_down_before_it_ends():
    rng = np.random.default_rng(0)
    X, y = rng.uniform(0, 1, (60, 6)), rng.integers(0, 3, 60)
    config = TrainConfig(sizes=(6, 5, 3), eta=0.4, lmbda=0.0, batch_size=10, epochs=8, patience=None, schedule="cosine")
    seen = []

    def four_fit(history):
        seen.append(len(history))
        return 4

    result = train(Network.from_config(config), X, y, X, y, config, epochs_that_fit=four_fit)
    assert seen == [1, 2, 3, 4]
    assert (result.stopped_epoch, result.stop_reason) == (4, "budget")  # the shortened schedule is over
    etas = [m.eta for m in result.history]
    # epoch 1 planned over 8 epochs, the others over the 4 that fit
    assert etas == pytest.approx([0.4 * eta_factor("cosine", e, s) for e, s in zip(range(1, 5), [8, 4, 4, 4])])
    assert etas[3] < 0.15 * 0.4 and all(later < earlier for earlier, later in zip(etas, etas[1:]))


def test_a_schedule_once_shortened_never_grows_back():
    rng = np.random.default_rng(0)
    X, y = rng.uniform(0, 1, (60, 6)), rng.integers(0, 3, 60)
    config = TrainConfig(sizes=(6, 5, 3), eta=0.4, lmbda=0.0, batch_size=10, epochs=8, patience=None, schedule="cosine")
    fits = iter([5, 8, 8, 8, 8])  # the machine got faster after the first epoch
    result = train(Network.from_config(config), X, y, X, y, config, epochs_that_fit=lambda history: next(fits))
    assert result.stopped_epoch == 5 and result.stop_reason == "budget"
    assert [m.eta for m in result.history][1:] == pytest.approx([0.4 * eta_factor("cosine", e, 5) for e in range(2, 6)])


def test_without_a_budget_the_schedule_spans_the_configured_epochs():
    rng = np.random.default_rng(0)
    X, y = rng.uniform(0, 1, (60, 6)), rng.integers(0, 3, 60)
    config = TrainConfig(sizes=(6, 5, 3), eta=0.4, lmbda=0.0, batch_size=10, epochs=5, patience=None, schedule="cosine")
    plenty = train(Network.from_config(config), X, y, X, y, config, epochs_that_fit=lambda history: 1_000)
    assert [m.eta for m in plenty.history] == pytest.approx([0.4 * f for f in factors("cosine", 5)])
    assert plenty.stop_reason == "max_epochs"  # every epoch it was given, not a budget's stop

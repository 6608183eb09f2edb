"""Optuna's pictures of a study: drawn when there are enough finished trials, skipped (never failing) otherwise."""

from __future__ import annotations

import optuna
import pytest

from tracking import study_plots

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def study_with(trials: int) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))

    def objective(trial):
        eta = trial.suggest_float("eta", 0.01, 1.0, log=True)
        n_hidden = trial.suggest_int("n_hidden", 1, 2)
        for i in range(1, n_hidden + 1):
            trial.suggest_int(f"hidden_{i}", 16, 64)
        return eta

    study.optimize(objective, n_trials=trials)
    return study


def test_no_finished_trial_draws_nothing(tmp_path):
    assert study_plots.study_plots(study_with(0), tmp_path) == []


@pytest.mark.parametrize("trials", [1, 2])
def test_too_few_trials_for_importances_still_draw_the_other_pictures(tmp_path, trials):
    names = [p.name for p in study_plots.study_plots(study_with(trials), tmp_path)]
    assert names == ["optimization_history.png", "parallel_coordinate.png", "slice.png"]


def test_enough_trials_draw_all_four(tmp_path):
    paths = study_plots.study_plots(study_with(study_plots.MIN_TRIALS_FOR_IMPORTANCES + 2), tmp_path)
    assert [p.name for p in paths] == list(study_plots.PICTURES)
    assert all(p.read_bytes()[:8] == PNG_SIGNATURE for p in paths)


def test_a_picture_that_cannot_be_drawn_is_left_out(tmp_path, monkeypatch):
    def broken(study, path):
        raise RuntimeError("boom")

    monkeypatch.setitem(study_plots.PICTURES, "slice.png", broken)
    names = [p.name for p in study_plots.study_plots(study_with(1), tmp_path)]
    assert names == ["optimization_history.png", "parallel_coordinate.png"]

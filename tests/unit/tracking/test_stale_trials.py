"""A trial Optuna's heartbeat failed (its worker killed, hung or cut off from the storage): its reason,
and the worker that comes back to it and must go on with its next trials."""

from __future__ import annotations

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from tracking import studies
from tracking.objective import failed_elsewhere


def test_a_trial_failed_by_the_heartbeat_says_so_and_names_its_retry():
    study = optuna.create_study()
    dist = {"eta": FloatDistribution(0.01, 1.0)}
    study.add_trial(create_trial(state=TrialState.FAIL, params={"eta": 0.1}, distributions=dist))
    study.add_trial(create_trial(state=TrialState.FAIL, params={"eta": 0.2}, distributions=dist, user_attrs={"fail_reason": "diverged: nan"}))
    study.add_trial(create_trial(value=0.9, params={"eta": 0.1}, distributions=dist, system_attrs={"failed_trial": 0}))
    trials = study.get_trials()
    assert studies.fail_reason(trials[0], trials) == f"{studies.STALE_REASON}; retried as trial 2"
    assert studies.fail_reason(trials[1], trials) == "diverged: nan"
    assert studies.fail_reason(trials[2], trials) is None
    assert studies.summary(study)["fail_reasons"] == sorted(["diverged: nan", f"{studies.STALE_REASON}; retried as trial 2"])


def test_a_worker_knows_its_running_trial_was_failed_elsewhere(tmp_path):
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'o.db'}")
    trial = study.ask()
    assert not failed_elsewhere(study, trial) and not failed_elsewhere(study, None)
    study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)  # what another worker's heartbeat check does
    assert failed_elsewhere(study, trial)
    with pytest.raises(ValueError, match="Cannot tell a FAIL trial"):  # what the worker meets when it comes back
        optuna.study._tell._tell_with_warning(study, trial, 0.5)

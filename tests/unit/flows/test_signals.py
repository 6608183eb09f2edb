"""A signal asks for a stop instead of raising; a stopped trial is FAIL `interrupted`, queued again, and no trial follows it."""

from __future__ import annotations

import os
import signal

import optuna
import pytest

from flows import signals
from tracking import interruption, studies
from tracking.objective import _record_interrupted, stop_when_asked


@pytest.fixture(autouse=True)
def fresh_stop():
    interruption.reset()
    signals._received.clear()
    yield
    interruption.reset()
    signals._received.clear()


def test_a_signal_inside_asks_for_a_stop_and_the_handlers_are_restored_after():
    before = {sig: signal.getsignal(sig) for sig in signals.HANDLED}
    with signals.stop_on_signals():
        with signals.stop_on_signals():  # the flow's own, inside the command's
            os.kill(os.getpid(), signal.SIGTERM)  # no exception: the study loop sees the request
        assert interruption.stop_requested() and interruption.why() == "SIGTERM"
        assert signals.exit_code() == 143
        assert signals._timer and signals._timer[0].is_alive(), "the forced exit is armed"
        timer = signals._timer[0]
    assert {sig: signal.getsignal(sig) for sig in signals.HANDLED} == before
    assert timer.finished.is_set() and not signals._timer, "leaving cancels the forced exit"
    with pytest.raises(interruption.Interrupted, match="interrupted .SIGTERM."):
        interruption.check()


def test_a_stopped_trial_fails_interrupted_is_queued_again_and_no_trial_follows(tmp_path):
    from tracking.search_space import default_space

    study = studies.create_or_load("s", studies.open_storage(str(tmp_path / "j.log")), default_space(), "random", "none")

    def objective(trial):
        x = trial.suggest_float("x", 0, 1)
        if trial.number == 1:
            interruption.request_stop("SIGINT")
        try:
            interruption.check()
        except interruption.Interrupted:
            _record_interrupted(trial)
            raise
        return x

    study.optimize(objective, n_trials=10, catch=(Exception,), callbacks=[stop_when_asked])

    trials = study.get_trials(deepcopy=False)
    assert [t.state.name for t in trials] == ["COMPLETE", "FAIL", "WAITING"]
    assert trials[1].user_attrs["fail_reason"] == "interrupted" and trials[1].user_attrs["interrupted_by"] == "SIGINT"
    assert trials[2].user_attrs["retry_of"] == 1 and trials[2].system_attrs["fixed_params"] == trials[1].params

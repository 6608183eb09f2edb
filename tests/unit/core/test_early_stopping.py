"""EarlyStopping: stops after exactly `patience` epochs without a strictly better score; the schedule halves first."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from core.early_stopping import EarlyStopping

scores = st.lists(st.sampled_from([0.1, 0.2, 0.3, 0.4, 0.5]), min_size=1, max_size=40)


@given(scores, st.integers(1, 6))
def test_stops_after_exactly_patience_non_improving_epochs(values, patience):
    stopper = EarlyStopping(patience)
    best, best_epoch, since = float("-inf"), 0, 0
    for epoch, score in enumerate(values, start=1):
        decision = stopper.update(epoch, score)
        if score > best:
            best, best_epoch, since = score, epoch, 0
            assert decision == "improved"
        else:
            since += 1
            assert decision == ("stop" if since == patience else "wait")
        assert stopper.best_epoch == best_epoch and stopper.best == best
        if decision == "stop":
            assert epoch - best_epoch == patience
            break


@given(scores)
def test_no_patience_never_stops_but_tracks_the_best(values):
    stopper = EarlyStopping(None)
    decisions = [stopper.update(e, s) for e, s in enumerate(values, start=1)]
    assert "stop" not in decisions and "halve" not in decisions
    assert stopper.best == max(values)
    assert values[stopper.best_epoch - 1] == max(values) and max(values) not in values[: stopper.best_epoch - 1]


def test_ties_do_not_count_as_improvement():
    stopper = EarlyStopping(2)
    assert [stopper.update(e, s) for e, s in enumerate([0.5, 0.5, 0.5], start=1)] == ["improved", "wait", "stop"]


def test_schedule_halves_on_each_stall_then_stops():
    stopper = EarlyStopping(patience=2, halvings=2)
    decisions = [stopper.update(e, 0.5 if e == 1 else 0.1) for e in range(1, 8)]
    assert decisions == ["improved", "wait", "halve", "wait", "halve", "wait", "stop"]


def test_improvement_resets_the_stall_count():
    stopper = EarlyStopping(patience=2)
    decisions = [stopper.update(e, s) for e, s in enumerate([0.1, 0.1, 0.2, 0.2, 0.2], start=1)]
    assert decisions == ["improved", "wait", "improved", "wait", "stop"]

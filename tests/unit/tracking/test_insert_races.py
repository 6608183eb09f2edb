"""Two studies starting or finishing together on one tracking server race on MLflow's inserts:
the same split's datasets, and the champion alias. The loser of a race gets a unique-key error
from MLflow's database; it links the existing dataset, and takes the alias only if still better."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from mlflow.exceptions import MlflowException

from tracking.champion import promote_if_better
from tracking.datasets import log_inputs_once_inserted

DUPLICATE = (
    'BAD_REQUEST: (psycopg.errors.UniqueViolation) duplicate key value violates unique constraint "dataset_pk"\n'
    "DETAIL:  Key (experiment_id, name, digest)=(1, mnist-train, 210595e416644ddd) already exists."
)


class Client:
    def __init__(self, *errors: str):
        self.errors, self.calls = list(errors), 0

    def log_inputs(self, run_id, datasets):
        self.calls += 1
        if self.errors:
            raise MlflowException(self.errors.pop(0))


def test_a_lost_insert_race_is_logged_on_the_next_attempt():
    client = Client(DUPLICATE)
    log_inputs_once_inserted(client, "run", [])
    assert client.calls == 2


def test_other_errors_are_not_retried():
    client = Client("RESOURCE_DOES_NOT_EXIST: Run 'run' not found")
    with pytest.raises(MlflowException, match="not found"):
        log_inputs_once_inserted(client, "run", [])
    assert client.calls == 1


def test_a_duplicate_that_persists_is_raised_after_three_attempts():
    client = Client(DUPLICATE, DUPLICATE, DUPLICATE)
    with pytest.raises(MlflowException, match="UniqueViolation"):
        log_inputs_once_inserted(client, "run", [])
    assert client.calls == 3


class Registry:
    """The champion alias as a tracking server keeps it; the first set loses the race to ANOTHER's set."""

    def __init__(self, champion_val: float | None, another: tuple[str, float] | None = None):
        self.alias, self.vals, self.another = None, {}, another
        if champion_val is not None:
            self.vals["1"], self.alias = champion_val, "1"

    def get_model_version_by_alias(self, name, alias):
        if self.alias is None:
            raise MlflowException("RESOURCE_DOES_NOT_EXIST: alias champion not found")
        return SimpleNamespace(tags={"val_accuracy": str(self.vals[self.alias])})

    def set_registered_model_alias(self, name, alias, version):
        if self.another:  # another study set the alias between our read and our write
            other, val = self.another
            self.vals[other], self.alias, self.another = val, other, None
            raise MlflowException('BAD_REQUEST: (psycopg.errors.UniqueViolation) ... "registered_model_alias_pk"')
        self.alias = version


def test_the_loser_of_the_alias_race_takes_it_only_if_still_better():
    registry = Registry(champion_val=0.90, another=("2", 0.95))
    registry.vals["3"] = 0.93
    assert promote_if_better(registry, "3", 0.93) is False
    assert registry.alias == "2"


def test_the_loser_of_the_alias_race_that_beats_the_winner_takes_it():
    registry = Registry(champion_val=None, another=("2", 0.95))
    registry.vals["3"] = 0.97
    assert promote_if_better(registry, "3", 0.97) is True
    assert registry.alias == "3"


def test_a_worse_model_never_takes_the_alias():
    registry = Registry(champion_val=0.95)
    assert promote_if_better(registry, "2", 0.94) is False
    assert registry.alias == "1"

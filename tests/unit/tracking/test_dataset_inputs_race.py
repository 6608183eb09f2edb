"""Two studies starting together on one tracking server log the same split: the loser of the
insert race gets a unique-key error from MLflow's database and links the existing dataset instead."""

from __future__ import annotations

import pytest
from mlflow.exceptions import MlflowException

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

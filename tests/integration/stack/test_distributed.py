"""The multi-machine topology, run for real on 127.0.0.1: one study, two flow runs, two Prefect workers.

PostgreSQL holds three fresh databases (Prefect, MLflow, Optuna); `prefect server start`
and `mlflow server --serve-artifacts` run on them; a process work pool has two
`prefect worker` processes (one flow run at a time each). The study flow is deployed to
the pool from this checkout (`flow.from_source(...).deploy`) and two flow runs of the same
study are triggered at once (2,000 training images, 2 trials of 2 epochs each). Asserted:
both flow runs COMPLETED, each on another worker; the study holds 4 trials with distinct
numbers, each once; every trial has its child run on the MLflow server; nothing is left
RUNNING in Prefect, Optuna or MLflow. Each flow run opens its own parent run and makes its
own final evaluation: two parents, by design.
"""

from __future__ import annotations

import time
import uuid

import pytest
from support.spaces import space_toml

pytestmark = pytest.mark.integration

SPACE = space_toml(n_hidden=(1, 1), hidden_1=(16, 48, "log"), batch_size=[32, 64], activation=["sigmoid", "relu"])
TRIALS_PER_RUN = 2
FLOW_RUNS = 2
FLOW_RUN_TIMEOUT = 900.0


@pytest.mark.timeout(1500)  # the stack starts (up to 240 s), then the flow runs get FLOW_RUN_TIMEOUT
def test_two_workers_share_one_study_on_postgresql(pg_databases, stack_helpers, tmp_path, tmp_path_factory, mnist_dir, repo_root):
    conftest = stack_helpers
    started = time.monotonic()
    stack = conftest.start_stack(
        tmp_path / "stack", pg_databases, workers=2, mnist_dir=mnist_dir,
        data_dir=tmp_path_factory.getbasetemp() / "shared-data-cache",
    )  # fmt: skip
    try:
        stack_ready = time.monotonic() - started
        study = f"dist-{uuid.uuid4().hex[:8]}"
        space = tmp_path / "space.toml"
        space.write_text(SPACE)
        parameters = {"request": {
            "name": study, "trials": TRIALS_PER_RUN, "workers": 1, "sampler": "tpe", "pruner": "none",
            "space_file": str(space), "epochs": 2, "patience": 2, "seed": 0, "train_size": 2_000, "val_size": 500,
        }}  # fmt: skip
        with conftest.prefect_client(stack.prefect_api) as client:
            deployment_id = deploy_study(stack, repo_root)
            triggered = time.monotonic()
            run_ids = [trigger(stack, deployment_id, parameters) for _ in range(FLOW_RUNS)]
            runs = wait_for_final_states(client, run_ids, stack, conftest)
            flow_seconds = time.monotonic() - triggered
            assert [r.state_type.value for r in runs] == ["COMPLETED"] * FLOW_RUNS, [
                (r.name, r.state_type.value, r.state.message) for r in runs
            ]

            # picked up by both workers: each flow run's log says which worker submitted it
            workers_of = wait_for_worker_logs(stack, runs)
            assert all(len(w) == 1 for w in workers_of.values()), workers_of
            assert {w.pop() for w in workers_of.values()} == {"worker-a", "worker-b"}
            for name in ("worker-a", "worker-b"):  # and each worker's own log agrees
                assert "submitting flow run" in stack.worker_log(name).read_text()
            pids = {run.infrastructure_pid for run in runs}
            assert len(pids) == FLOW_RUNS and None not in pids, pids

            from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType

            active = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=["RUNNING", "PENDING"])))
            )
            assert active == []

        check_study_and_runs(stack, study)
        total = time.monotonic() - started
        print(
            f"\ndistributed test: stack ready in {stack_ready:.0f} s "
            f"({', '.join(f'{k} {v:.0f} s' for k, v in stack.seconds_to_ready.items())}); "
            f"{FLOW_RUNS} flow runs x {TRIALS_PER_RUN} trials in {flow_seconds:.0f} s; total {total:.0f} s"
        )
    finally:
        conftest.stop_stack(stack)


def deploy_study(stack, repo_root) -> str:
    """The study flow on the stack's process pool, its code taken from this checkout."""
    from prefect import flow

    deployment = flow.from_source(source=str(repo_root), entrypoint="flows/study.py:mnist_study")
    return str(deployment.deploy(name="distributed-test", work_pool_name=stack.pool, print_next_steps=False, ignore_warnings=True))


def trigger(stack, deployment_id: str, parameters: dict) -> str:
    """One flow run of the deployment, returned at once (timeout=0)."""
    from prefect.deployments import run_deployment

    return str(run_deployment(deployment_id, parameters=parameters, timeout=0, as_subflow=False).id)


def wait_for_final_states(client, run_ids: list[str], stack, conftest) -> list:
    deadline = time.monotonic() + FLOW_RUN_TIMEOUT
    while True:
        runs = [client.read_flow_run(run_id) for run_id in run_ids]
        if all(r.state is not None and r.state.is_final() for r in runs):
            return runs
        for name, process in stack.workers.items():
            assert process.poll() is None, f"{name} exited with {process.returncode}\n{conftest.tail(stack.worker_log(name))}"
        if time.monotonic() > deadline:
            logs = "\n".join(conftest.tail(stack.worker_log(n)) for n in stack.workers)
            pytest.fail(f"flow runs not finished within {FLOW_RUN_TIMEOUT:.0f} s: {[r.state_type for r in runs]}\n{logs}")
        time.sleep(2)


def wait_for_worker_logs(stack, runs, timeout: float = 60.0) -> dict:
    """Each run's submitting workers, from the workers' own log files (the API gets logs in batches, late)."""
    deadline = time.monotonic() + timeout
    while True:
        workers_of = {run.id: submitting_workers(stack, run.id) for run in runs}
        if all(workers_of.values()) or time.monotonic() > deadline:
            return workers_of
        time.sleep(0.5)


def submitting_workers(stack, flow_run_id) -> set[str]:
    """Names of the workers whose log says "Worker 'NAME' submitting flow run 'ID'" and did not abort it."""
    import re

    names = set()
    for name in ("worker-a", "worker-b"):
        text = stack.worker_log(name).read_text(errors="replace") if stack.worker_log(name).exists() else ""
        submitted = re.search(rf"Worker '{name}' submitting flow run '{flow_run_id}'", text)
        aborted = f"Aborted submission of flow run '{flow_run_id}'" in text  # the other worker got it first
        if submitted and not aborted:
            names.add(name)
    return names


def check_study_and_runs(stack, study: str) -> None:
    import optuna
    from mlflow.tracking import MlflowClient

    storage = optuna.storages.RDBStorage(stack.optuna_url)
    try:
        trials = optuna.load_study(study_name=study, storage=storage).get_trials(deepcopy=False)
    finally:
        storage.engine.dispose()
    numbers = [t.number for t in trials]
    assert sorted(numbers) == list(range(FLOW_RUNS * TRIALS_PER_RUN)), numbers
    states = {t.state.name for t in trials}
    assert states == {"COMPLETE"}, states

    client = MlflowClient(tracking_uri=stack.mlflow_uri)
    experiment = client.get_experiment_by_name(study)
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    children = [r for r in runs if r.data.tags.get("kind") == "trial"]
    parents = [r for r in runs if r.data.tags.get("kind") == "study"]
    assert len(parents) == FLOW_RUNS  # one parent run and one final evaluation per flow run
    assert sorted(int(r.data.tags["optuna.trial_number"]) for r in children) == sorted(numbers)
    by_id = {r.info.run_id: r for r in children}
    for trial in trials:
        run = by_id[trial.user_attrs["mlflow_run_id"]]
        assert run.info.run_name == f"trial-{trial.number}"
        assert run.data.tags["mlflow.parentRunId"] in {p.info.run_id for p in parents}
        assert run.info.status == "FINISHED"
        assert run.data.metrics["val/best_accuracy"] == pytest.approx(trial.value, abs=1e-6)
    assert [r.info.run_name for r in runs if r.info.status == "RUNNING"] == []
    for parent in parents:
        assert "test/accuracy" in parent.data.metrics  # its own final evaluation
        artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
        assert "trials.csv" in artifacts  # served by the MLflow server from its artifact store


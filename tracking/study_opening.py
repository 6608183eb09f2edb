"""Opening a study: the Optuna study created or continued, and its MLflow parent run.

What a dead process left RUNNING is recovered first (journal storages have no heartbeat);
the warm-start trials are enqueued once; the parent run records the sampler, the pruner,
the search space and the split. The flow's ``open-study`` task calls :func:`open_study`.
"""

from __future__ import annotations

import json
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from mnist.split import read_manifest
from runtime.settings import Settings
from tracking import mlflow_store, studies
from tracking.datasets import log_split_inputs
from tracking.objective import StudyContext
from tracking.orphans import end_orphaned_parent_runs, fail_orphaned_trials, process_identity
from tracking.study_request import StudyRequest


def open_study(
    settings: Settings, request: StudyRequest, storage: str, split_path: str, deadline: float | None = None
) -> tuple[StudyContext, list[int]]:
    """The context the workers share, and the numbers of the orphaned trials failed (and enqueued again)."""
    name, sampler, pruner = request.name, request.sampler, request.pruner
    client = mlflow_store.configure(settings)
    space = request.space()
    seed = space.fixed["seed"]
    split = read_manifest(split_path)["spec"]
    study = studies.create_or_load(name, studies.open_storage(storage), space, sampler, pruner, seed, split=split)
    orphans: list[int] = []
    if studies.is_journal(storage):  # a database has heartbeats instead (see tracking.studies.open_storage)
        orphans = fail_orphaned_trials(study, client)
    known = {json.dumps(t.params, sort_keys=True) for t in study.get_trials(deepcopy=False)}
    for params in request.warm_start(space):
        if json.dumps(params, sort_keys=True) not in known:
            study.enqueue_trial(params, skip_if_exists=True)
    experiment_id = mlflow_store.experiment_id(client, name, settings)
    end_orphaned_parent_runs(client, experiment_id, name)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    parent = client.create_run(
        experiment_id,
        run_name=f"study-{name}-{stamp}",
        tags={
            "kind": "study",
            "optuna.study": name,
            "optuna.sampler": sampler,
            "optuna.pruner": pruner,
            "optuna.storage": mlflow_store.masked(storage),
            **{key: str(value) for key, value in process_identity().items()},
        },
    ).info.run_id
    client.log_param(parent, "trials", request.trials)
    client.log_param(parent, "workers", request.workers)
    client.log_param(parent, "sampler", sampler)
    client.log_param(parent, "pruner", pruner)
    with tempfile.TemporaryDirectory() as tmp:
        space_json = Path(tmp) / "search_space.json"
        space_json.write_text(json.dumps(space.describe(), indent=2))
        client.log_artifact(parent, str(space_json))
    log_split_inputs(split_path, run_id=parent)
    context = StudyContext(
        study_name=name,
        storage=storage,
        sampler=sampler,
        pruner=pruner,
        space=space,
        split_path=split_path,
        experiment_id=experiment_id,
        parent_run_id=parent,
        seed=seed,
        settings=settings,
        deadline=deadline,
        diagnostics=request.diagnostics,
    )
    return context, orphans

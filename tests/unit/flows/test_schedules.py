"""flows/schedules.py is the one place the schedules are declared; prefect.yaml must say the same."""

from __future__ import annotations

import pytest
import yaml

from flows import schedules
from flows.defaults import MAIN_JOB
from tracking.study_request import StudyRequest


@pytest.fixture(scope="module")
def prefect_yaml(repo_root) -> dict:
    return yaml.safe_load((repo_root / "prefect.yaml").read_text())


def test_prefect_yaml_registers_the_same_deployments_as_redes_serve(prefect_yaml):
    deployments = {d["name"]: d for d in prefect_yaml["deployments"]}
    assert set(deployments) == {spec.name for spec in schedules.SCHEDULED}
    for spec in schedules.SCHEDULED:
        deployment = deployments[spec.name]
        assert deployment["entrypoint"] == spec.entrypoint
        assert deployment["schedules"] == [{"cron": spec.cron, "timezone": spec.timezone}]
        assert deployment["description"] == spec.description
        assert deployment["tags"] == list(schedules.TAGS)
        assert deployment["work_pool"]["name"] == "redes"


def test_prefect_yaml_parameters_are_the_ones_redes_serve_uses(prefect_yaml):
    deployments = {d["name"]: d for d in prefect_yaml["deployments"]}
    assert deployments[schedules.NIGHTLY.name]["parameters"] == schedules.nightly_parameters()
    assert deployments[schedules.WEEKLY_REFRESH.name]["parameters"] == schedules.refresh_parameters()


def test_the_nightly_study_continues_the_study_of_redes_run():
    """Optuna refuses to continue a study with another search space: the fixed options must be `redes run`'s."""
    nightly = schedules.nightly_request()
    assert nightly.name == MAIN_JOB.name == "mnist"
    assert nightly.trials == schedules.NIGHTLY_TRIALS and nightly.enqueue == () and nightly.timeout_seconds is None
    assert nightly.space().describe() == MAIN_JOB.space().describe()
    assert nightly.space().fixed == {"epochs": 40, "patience": 10, "seed": 0, "eta_schedule": False}
    assert nightly.space_file == "main" and "momentum" in nightly.space().dimensions
    assert (nightly.sampler, nightly.pruner, nightly.train_size, nightly.val_size) == (
        MAIN_JOB.sampler, MAIN_JOB.pruner, MAIN_JOB.train_size, MAIN_JOB.val_size,
    )


def test_the_study_flow_reads_the_deployment_parameters_back_into_the_request():
    """What a deployment stores is JSON; Prefect validates it into the flow's one typed parameter."""
    from flows.study import main_job, mnist_study

    parameters = mnist_study.validate_parameters(schedules.nightly_parameters())
    assert parameters["request"] == schedules.nightly_request()
    changed = mnist_study.validate_parameters(schedules.nightly_parameters(name="other", mirrors=("/data/mnist",)))
    assert changed["request"] == schedules.nightly_request(name="other", mirrors=("/data/mnist",))
    assert main_job.validate_parameters({"request": MAIN_JOB.parameters()})["request"] == MAIN_JOB


def test_the_request_field_names_are_the_study_flows_parameters_in_prefect_yaml(prefect_yaml):
    """prefect.yaml spells the request out field by field: no field missing, none misspelt."""
    nightly = {d["name"]: d for d in prefect_yaml["deployments"]}[schedules.NIGHTLY.name]["parameters"]
    assert set(nightly) == {"request"}
    assert set(nightly["request"]) == set(StudyRequest().parameters())


def test_entrypoints_name_the_flows_they_schedule(repo_root):
    from flows.refresh import refresh
    from flows.study import mnist_study

    flows = {schedules.NIGHTLY: mnist_study, schedules.WEEKLY_REFRESH: refresh}
    for spec, flow in flows.items():
        assert flow.name == spec.flow_name
        path, function = spec.entrypoint.split(":")
        assert (repo_root / path).is_file() and flow.fn.__name__ == function
        assert spec.module_entrypoint == f"{flow.fn.__module__}.{function}"


@pytest.mark.parametrize(
    ("cron", "interval", "expected"),
    [(None, None, {"cron": "0 2 * * *"}), ("*/5 * * * *", None, {"cron": "*/5 * * * *"}), (None, 5.0, {"interval": 5.0})],
)
def test_cron_and_interval_replace_the_declared_schedule(cron, interval, expected):
    schedule = schedules.schedule_for(schedules.NIGHTLY, cron=cron, interval=interval)
    if "cron" in expected:
        assert schedule.cron == expected["cron"] and schedule.interval is None
    else:
        assert schedule.interval.total_seconds() == expected["interval"] and schedule.cron is None
    assert schedule.timezone == "UTC"


def test_cron_and_interval_together_are_refused():
    with pytest.raises(ValueError, match="not both"):
        schedules.schedule_for(schedules.NIGHTLY, cron="0 2 * * *", interval=5)

"""A longer `redes run --timeout` trains each trial longer, in a study of its own; the default stays as it was."""

from flows.defaults import GRACE_SECONDS, MAIN_JOB, MAIN_JOB_SECONDS, main_job


def test_the_default_budget_is_the_main_job_itself():
    assert main_job() == MAIN_JOB
    assert main_job(MAIN_JOB_SECONDS, workers=3).workers == 3 and main_job(MAIN_JOB_SECONDS, workers=3).name == "mnist"


def test_an_hour_trains_ten_times_longer_in_its_own_study():
    hour = main_job(3600.0)
    assert (hour.epochs, hour.patience) == (MAIN_JOB.epochs * 10, MAIN_JOB.patience * 10)
    assert hour.name == "mnist-60m"
    assert (hour.timeout_seconds, hour.hard_timeout_seconds) == (3600.0, 3600.0 + GRACE_SECONDS)
    assert hour.enqueue == MAIN_JOB.enqueue and hour.space_file == MAIN_JOB.space_file


def test_a_shorter_budget_keeps_the_default_study_and_a_given_name_wins():
    short = main_job(60.0)
    assert (short.name, short.epochs, short.patience, short.hard_timeout_seconds) == (
        "mnist", MAIN_JOB.epochs, MAIN_JOB.patience, 60.0 + GRACE_SECONDS)
    assert main_job(3600.0, name="mine").name == "mine"
    assert main_job(3600.0, mirrors=None).mirrors == MAIN_JOB.mirrors

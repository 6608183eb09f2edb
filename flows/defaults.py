"""The main job's request, shared by `redes run` and the nightly schedule that continues its study."""

from dataclasses import replace

from tracking.study_request import KNOWN_GOOD, StudyRequest

#: Trials still running when the main job's time budget ends train this long more, then stop with their best epoch.
GRACE_SECONDS = 60.0
MAIN_JOB_SECONDS = 6 * 60.0

#: Sized so the whole job takes about ten minutes on a 2-core machine (see README).
MAIN_JOB = StudyRequest(
    name="mnist",
    trials=200,
    timeout_seconds=MAIN_JOB_SECONDS,
    hard_timeout_seconds=MAIN_JOB_SECONDS + GRACE_SECONDS,
    workers=2,
    space_file="main",  # tracking/main_space.toml: the default space with momentum, η schedule and expanded data
    enqueue=KNOWN_GOOD,
    epochs=40,
    patience=10,
    eta_schedule=False,  # η follows the searched schedule (the known-good sets: cosine)
    seed=0,
)


def main_job(budget_seconds: float = MAIN_JOB_SECONDS, **changes) -> StudyRequest:
    """The main job for a search budget: a longer budget trains every trial longer, in a study of its own.

    A known-good network keeps improving well past 40 epochs when its data are distorted afresh
    each epoch (784-800-10: 99.11 % test after 40 epochs, 99.22 % after 120), so a budget k times
    the default's gives each trial k times the epochs and the patience. The epochs are part of a
    study's identity, so a longer budget gets its own study, ``mnist-60m`` for 60 minutes, unless
    ``name`` is given; a shorter one keeps the default's epochs and study.
    """
    scale = max(1.0, budget_seconds / MAIN_JOB_SECONDS)
    scaled = replace(
        MAIN_JOB, timeout_seconds=budget_seconds, hard_timeout_seconds=budget_seconds + GRACE_SECONDS,
        epochs=round(MAIN_JOB.epochs * scale), patience=round(MAIN_JOB.patience * scale),
        name=MAIN_JOB.name if scale == 1.0 else f"{MAIN_JOB.name}-{budget_seconds / 60:g}m",
    )  # fmt: skip
    return replace(scaled, **{key: value for key, value in changes.items() if value is not None})

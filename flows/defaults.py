"""The main job's request, shared by `redes run` and the nightly schedule that continues its study."""

from tracking.study_request import KNOWN_GOOD, StudyRequest

#: Trials still running when the main job's time budget ends train this long more, then stop with their best epoch.
GRACE_SECONDS = 90.0
MAIN_JOB_SECONDS = 7 * 60.0

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

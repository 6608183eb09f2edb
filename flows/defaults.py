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
    enqueue=KNOWN_GOOD,
    epochs=40,
    patience=4,
    eta_schedule=True,
    seed=0,
)

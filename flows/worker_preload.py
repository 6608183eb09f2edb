"""Imported last by a study's fork server (see flows.study_workers.WORKER_MODULES): what the server loaded is frozen.

Python's recipe for processes forked without exec: `gc.freeze()` before the forks, so that neither
the workers' collections nor the server's own exit walk the objects of Prefect, MLflow and Optuna
loaded once for all of them; the server's exit, after a `kill -9` of redes, took seconds of
garbage collection with everything else the machine was doing.
"""

import gc

gc.freeze()

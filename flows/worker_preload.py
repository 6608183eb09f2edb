"""Imported last by a study's fork server (see flows.study_workers.WORKER_MODULES): what the server loaded is frozen.

Python's recipe for processes forked without exec: `gc.freeze()` before the forks, so that neither
the workers' collections nor the server's own exit walk the objects of Prefect, MLflow and Optuna
loaded once for all of them; the server's exit, after a `kill -9` of redes, took seconds of
garbage collection with everything else the machine was doing.

The fork server `redes up`'s launcher keeps takes a process group of its own (:data:`OWN_GROUP`),
and so do the workers it forks: `redes down` stops the launcher's group, and the studies the
launcher started go on, as its other commands do.
"""

import gc
import os

#: Set in the environment of the fork server that should leave its parent's process group (removed here).
OWN_GROUP = "REDES_FORK_SERVER_OWN_GROUP"

if os.environ.pop(OWN_GROUP, None):
    os.setpgid(0, 0)
gc.freeze()

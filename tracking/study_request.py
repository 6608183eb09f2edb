"""One study to create or continue, as one typed request with its defaults defined once.

`redes study` and `redes run` build a :class:`StudyRequest`, the study flow takes it as its
one typed parameter (Prefect validates a deployment's JSON into it), and the tasks and
:mod:`tracking.study_opening` read their values from it. The defaults here are `redes
study`'s; the main job's are one request in ``flows.defaults``.

Light on purpose (the standard library and ``mnist.sizes``): the command line reads these
defaults for its ``--help`` without loading NumPy, Optuna or MLflow.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from mnist.sizes import TRAIN_SIZE, VAL_SIZE

if TYPE_CHECKING:
    from tracking.search_space import SearchSpace

#: What a study holds fixed when neither an option nor the space file's [fixed] says otherwise.
FIXED_DEFAULTS: dict[str, Any] = {"epochs": 30, "patience": 5, "seed": 0, "eta_schedule": False}

#: What a known-good set means by "none of it": no momentum, no distortion, η constant (TrainConfig's defaults).
PLAIN: dict[str, Any] = {"momentum": 0.0, "schedule": "constant", "shift": 0.0, "rotate": 0.0, "scale": 0.0,
                         "shear": 0.0, "elastic_alpha": 0.0, "elastic_sigma": 4.0}

#: Known-good parameter sets for MNIST, tried first with ``--enqueue`` and by `redes run` (warm start). The first
#: three reach 99 % in 40 epochs (README, "What `make run` does"): momentum, η on a cosine schedule and training
#: data expanded with fresh distortions every epoch (Simard et al. 2003). The first, two hidden layers without
#: dropout after Ciresan et al. 2010, is the one that goes on improving with hours of training (99.3 % after
#: 40-50 epochs in core). A space that does not search one of a set's non-plain values skips the set
#: (:meth:`StudyRequest.warm_start`).
_EXPANDED: dict[str, Any] = {
    "eta": 0.05, "lmbda": 5.0, "batch_size": 64, "activation": "relu", "cost": "log-likelihood", **PLAIN,
    "momentum": 0.9, "schedule": "cosine", "shift": 2.0, "rotate": 10.0, "scale": 0.1,
}  # fmt: skip
_ELASTIC: dict[str, Any] = {"shear": 10.0, "elastic_alpha": 20.0, "elastic_sigma": 5.0}
KNOWN_GOOD: tuple[dict[str, Any], ...] = (
    {**_EXPANDED, **_ELASTIC, "dropout": 0.0, "n_hidden": 2, "hidden_1": 1000, "hidden_2": 500},
    {**_EXPANDED, **_ELASTIC, "dropout": 0.2, "n_hidden": 1, "hidden_1": 800},
    {**_EXPANDED, "dropout": 0.2, "n_hidden": 1, "hidden_1": 800},
    {"eta": 0.1, "lmbda": 5.0, "dropout": 0.3, "batch_size": 32, "activation": "relu", "cost": "log-likelihood",
     "n_hidden": 2, "hidden_1": 500, "hidden_2": 500, **PLAIN},
    {"eta": 0.1, "lmbda": 5.0, "dropout": 0.3, "batch_size": 32, "activation": "relu", "cost": "log-likelihood",
     "n_hidden": 1, "hidden_1": 800, **PLAIN},
    {"eta": 0.5, "lmbda": 5.0, "dropout": 0.0, "batch_size": 16, "activation": "sigmoid", "cost": "cross-entropy",
     "n_hidden": 1, "hidden_1": 100, **PLAIN},
)


@dataclass(frozen=True)
class StudyRequest:
    """A study NAME, how to search it, what each trial trains on, and for how long.

    ``epochs``, ``patience``, ``seed`` and ``eta_schedule`` left None come from the space
    file's ``[fixed]``, else :data:`FIXED_DEFAULTS`; together they are stored with the study's
    space, so a study continues only with the same values. The Optuna storage is not part of
    the request: its URL may hold a password, which Prefect would store with the flow run's
    parameters (the flow reads it from the settings).
    """

    name: str = "mnist"
    trials: int = 20
    timeout_seconds: float | None = None  # no new trial after this long
    hard_timeout_seconds: float | None = None  # trials still running after this long stop with their best epoch
    sampler: str = "tpe"
    pruner: str = "median"
    workers: int = 1
    space_file: str | None = None  # a path on the machine that runs the flow, or a built-in space's name (main)
    space_text: str | None = None  # the text of a space file: what a deployment's runs on other machines can read
    epochs: int | None = None
    patience: int | None = None
    eta_schedule: bool | None = None
    seed: int | None = None
    enqueue: tuple[dict[str, Any], ...] = ()  # parameter sets tried first (KNOWN_GOOD with --enqueue)
    diagnostics: bool = False  # per-layer gradient norms, weight norms and saturation in every trial
    train_size: int = TRAIN_SIZE
    val_size: int = VAL_SIZE
    mirrors: tuple[str, ...] | None = None  # MNIST sources replacing REDES_MNIST_MIRRORS

    def given(self) -> dict[str, Any]:
        """The training options the request sets itself, to be merged with the space file's [fixed]."""
        options = {"epochs": self.epochs, "patience": self.patience, "seed": self.seed, "eta_schedule": self.eta_schedule}
        return {name: value for name, value in options.items() if value is not None}

    def space(self) -> SearchSpace:
        """The search space: the space file over the defaults, with the request's fixed options."""
        from tracking.search_space import load_space

        return load_space(self.space_file, self.given(), FIXED_DEFAULTS, text=self.space_text)

    def warm_start(self, space: SearchSpace) -> list[dict[str, Any]]:
        """The enqueued sets this space can run: a parameter the space does not search must be plain in
        the set (no momentum, no distortion, η constant), and is then left out."""
        return [
            {k: v for k, v in params.items() if k in space.dimensions}
            for params in self.enqueue
            if all(k in space.dimensions or PLAIN.get(k) == v for k, v in params.items())
        ]

    def parameters(self) -> dict[str, Any]:
        """The request as JSON values, as a deployment's parameters hold it (prefect.yaml, `redes serve`)."""
        values = asdict(self)
        values["enqueue"] = [dict(params) for params in self.enqueue]
        values["mirrors"] = list(self.mirrors) if self.mirrors is not None else None
        return values


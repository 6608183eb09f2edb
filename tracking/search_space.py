"""The search space of a study, declared once as data, and the one function that suggests from it.

A parameter's name is the same string in the search space, in Optuna, in the training
config (`core.config.TrainConfig`) and in MLflow. Hidden sizes are the exception that
proves the rule: Optuna cannot suggest a tuple, so it suggests `n_hidden` and
`hidden_1`..`hidden_3`, and `sizes` is built from them.

The defaults can be overridden by a TOML file (``--space``)::

    [space.eta]            # a float range
    low = 0.05
    high = 1.0
    log = true

    [space.batch_size]     # a choice
    choices = [16, 32]

    [space.elastic_alpha]  # no keys: the declared range (EXTRA_SPACE: momentum, distortions...)

    [fixed]                # not searched: any TrainConfig field
    epochs = 20

    [grid]                 # values for the grid sampler
    eta = [0.1, 0.5]
    lmbda = [1.0, 5.0]
"""

from __future__ import annotations

import math
import os
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Union

from core.config import SCHEDULE_NAMES, TrainConfig
from mnist.sizes import N_CLASSES, N_PIXELS

MAX_HIDDEN_LAYERS = 3
HIDDEN_NAMES = tuple(f"hidden_{i}" for i in range(1, MAX_HIDDEN_LAYERS + 1))


class SearchSpaceError(ValueError):
    """The search-space file or option is wrong; the message names the key and the fix."""


@dataclass(frozen=True)
class FloatRange:
    low: float
    high: float
    log: bool = False


@dataclass(frozen=True)
class IntRange:
    low: int
    high: int
    log: bool = False


@dataclass(frozen=True)
class Choice:
    choices: tuple[Any, ...]


Dimension = Union[FloatRange, IntRange, Choice]

#: Sensible defaults for MNIST: the ranges within which good networks are known to lie.
DEFAULT_SPACE: dict[str, Dimension] = {
    "eta": FloatRange(0.01, 1.0, log=True),
    "lmbda": FloatRange(0.01, 10.0, log=True),
    "dropout": FloatRange(0.0, 0.6),
    "n_hidden": IntRange(1, MAX_HIDDEN_LAYERS),
    "hidden_1": IntRange(32, 1024, log=True),
    "hidden_2": IntRange(32, 1024, log=True),
    "hidden_3": IntRange(32, 1024, log=True),
    "batch_size": Choice((16, 32, 64, 128)),
    "activation": Choice(("relu", "sigmoid", "tanh")),
    "cost": Choice(("log-likelihood", "cross-entropy")),
}

#: Searchable by name in a ``--space`` file, not by default: ``[space.shift]`` with no keys searches the range
#: below, or give low/high or choices. Ranges from the literature: momentum around 0.9 (Sutskever et al. 2013),
#: max-norm 3–4 (Srivastava et al. 2014), elastic α up to 40 with σ 4–8 (Simard et al. 2003: α 34, σ 4),
#: shifts up to 3 px, rotation up to 15° and zoom up to ±15 % (Cireşan et al. 2010); shear up to 15° like rotation.
#: Not in the default space: each is a dimension more for a short study, and distortion pays only over
#: long training (it is a regulariser: a few epochs on distorted images score below a few on clean ones).
EXTRA_SPACE: dict[str, Dimension] = {
    "momentum": FloatRange(0.0, 0.95),
    "max_norm": Choice((0.0, 2.0, 3.0, 4.0)),  # 0: off
    "schedule": Choice(SCHEDULE_NAMES),
    "shift": FloatRange(0.0, 3.0),
    "rotate": FloatRange(0.0, 15.0),
    "scale": FloatRange(0.0, 0.15),
    "shear": FloatRange(0.0, 15.0),
    "elastic_alpha": FloatRange(0.0, 40.0),
    "elastic_sigma": FloatRange(4.0, 8.0),
}

#: Fields of TrainConfig that a study may fix (everything but `sizes`, built from the hidden sizes).
CONFIG_FIELDS = {f.name for f in fields(TrainConfig)} - {"sizes"}
SEARCHABLE = set(DEFAULT_SPACE) | set(EXTRA_SPACE)


@dataclass(frozen=True)
class SearchSpace:
    """Dimensions to search, values held fixed, and (for the grid sampler) the grid."""

    dimensions: dict[str, Dimension]
    fixed: dict[str, Any]
    grid: dict[str, list[Any]] | None = None

    def describe(self) -> dict[str, Any]:
        """A JSON-able description, stored on the study so a changed space is noticed."""
        return {
            "dimensions": {k: {"type": type(v).__name__, **_as_dict(v)} for k, v in sorted(self.dimensions.items())},
            "fixed": dict(sorted(self.fixed.items())),
            "grid": dict(sorted(self.grid.items())) if self.grid else None,
        }


def _as_dict(dim: Dimension) -> dict[str, Any]:
    if isinstance(dim, Choice):
        return {"choices": list(dim.choices)}
    return {"low": dim.low, "high": dim.high, "log": dim.log}


#: Search spaces shipped with redes, by name (``--space main``): TOML files next to this module.
BUILTIN_SPACES = {"main": Path(__file__).with_name("main_space.toml")}


def space_path(space: str | Path) -> Path:
    """A space file's path: a built-in space's name (``main``), else the path given."""
    if isinstance(space, str) and space in BUILTIN_SPACES and not Path(space).exists():
        return BUILTIN_SPACES[space]
    return Path(space)


def default_space(fixed: dict[str, Any] | None = None) -> SearchSpace:
    return SearchSpace(dimensions=dict(DEFAULT_SPACE), fixed=dict(fixed or {}))


def load_space(
    path: str | Path | None,
    fixed: dict[str, Any] | None = None,
    defaults: dict[str, Any] | None = None,
    text: str | None = None,
) -> SearchSpace:
    """Read a TOML search-space file (or its TEXT, as a deployment carries it) over the defaults.

    Held fixed: ``defaults`` (the options' defaults), then the file's ``[fixed]``, then
    ``fixed`` (the options given); an option given with another value than ``[fixed]``
    is refused rather than one of them silently ignored.
    """
    if path is None and text is None:
        return default_space({**(defaults or {}), **(fixed or {})})
    if text is not None and path is not None:
        raise SearchSpaceError("give the search space as a file or as its text, not both")
    path = space_path(path) if text is None else "the search space given as text (the request's `space_text`)"
    try:
        document = tomllib.loads(path.read_text() if text is None else text)
    except FileNotFoundError:
        raise SearchSpaceError(
            f"search-space file {path} does not exist on this machine; pass an existing TOML file to --space, "
            "or, to a deployment whose runs execute on other machines, the file's text as the request's `space_text`"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        label = f"search-space file {path}" if text is None else path
        raise SearchSpaceError(f"{label} is not valid TOML: {exc}") from None
    if not document:  # a wrong or unsaved file, more likely than a wish for the default space
        raise SearchSpaceError(
            f"{path} holds no setting; give it a [space.NAME], [fixed] or [grid] section, or leave out --space "
            "for the default search space"
        )
    unknown_sections = set(document) - {"space", "fixed", "grid"}
    if unknown_sections:
        raise SearchSpaceError(
            f"{path}: unknown section(s) {sorted(unknown_sections)}; the sections are [space.NAME], [fixed] and [grid]"
        )
    dimensions = dict(DEFAULT_SPACE)
    for name, spec in document.get("space", {}).items():
        dimensions[name] = _parse_dimension(path, name, spec)
    file_fixed = document.get("fixed", {})
    for name in file_fixed:
        if name not in CONFIG_FIELDS and name not in SEARCHABLE:
            raise SearchSpaceError(
                f"{path}: [fixed] has unknown key {name!r}; known keys: {sorted(CONFIG_FIELDS | SEARCHABLE)}"
            )
    grid = document.get("grid")
    if grid is not None:
        for name, values in grid.items():
            if name not in SEARCHABLE:
                raise SearchSpaceError(f"{path}: [grid] has unknown key {name!r}; known keys: {sorted(SEARCHABLE)}")
            if not isinstance(values, list) or not values:
                raise SearchSpaceError(f"{path}: [grid] {name} must be a non-empty list of values, got {values!r}")
    for name, value in (fixed or {}).items():
        if name in file_fixed and file_fixed[name] != value:
            raise SearchSpaceError(
                f"{path}: [fixed] {name} = {file_fixed[name]!r} but --{name.replace('_', '-')} {value!r}; "
                "give it in one place only"
            )
    return SearchSpace(dimensions=dimensions, fixed={**(defaults or {}), **file_fixed, **(fixed or {})}, grid=grid)


def _parse_dimension(path: Path | str, name: str, spec: Any) -> Dimension:
    where = f"{path}: [space.{name}]"
    if name not in SEARCHABLE:
        raise SearchSpaceError(f"{where}: unknown parameter; searchable parameters: {sorted(SEARCHABLE)}")
    if not isinstance(spec, dict):
        raise SearchSpaceError(f"{where} must be a table with low/high[/log] or choices")
    keys = set(spec)
    if not keys:  # the declared range
        return EXTRA_SPACE.get(name) or DEFAULT_SPACE[name]
    if keys == {"choices"}:
        choices = spec["choices"]
        if not isinstance(choices, list) or not choices:
            raise SearchSpaceError(f"{where}: choices must be a non-empty list")
        return Choice(tuple(choices))
    if not keys <= {"low", "high", "log"} or not {"low", "high"} <= keys:
        raise SearchSpaceError(f"{where}: keys {sorted(keys)}; expected low and high (and optionally log), or choices")
    low, high, log = spec["low"], spec["high"], bool(spec.get("log", False))
    for bound in (low, high):
        if isinstance(bound, bool) or not isinstance(bound, (int, float)) or not math.isfinite(bound):
            raise SearchSpaceError(f"{where}: low and high must be finite numbers, got low={low!r} high={high!r}")
    if low > high:
        raise SearchSpaceError(f"{where}: an empty range low={low!r} high={high!r}; low must not exceed high")
    if log and low <= 0:
        raise SearchSpaceError(f"{where}: a log range needs low > 0, got {low!r}")
    if isinstance({**EXTRA_SPACE, **DEFAULT_SPACE}[name], IntRange):
        if not (isinstance(low, int) and isinstance(high, int)):
            raise SearchSpaceError(f"{where}: {name} is an integer; use integer low and high")
        return IntRange(low, high, log)
    return FloatRange(float(low), float(high), log)


#: A small, valid trial: the background against which each range end or choice is checked.
PROBE = {"eta": 0.1, "lmbda": 1.0, "dropout": 0.0, "batch_size": 1, "activation": "sigmoid", "cost": "cross-entropy",
         "n_hidden": 1, "hidden_1": 30, "hidden_2": 30, "hidden_3": 30}


def check_space(space: SearchSpace, n_train: int | None = None, workers: int = 1, where: str = "--space") -> None:
    """Before any work: every fixed value, both ends of every range, every choice and every grid value
    is a valid training option (as the CLI flags are checked), and the largest network fits in memory."""
    from core.errors import ConfigError

    def check(label: str, values: dict[str, Any]) -> None:
        try:
            config_from_params({**PROBE, **space.fixed, **values}, SearchSpace({}, {})).validate(n_train=n_train)
        except (ConfigError, TypeError, ValueError) as exc:
            raise SearchSpaceError(f"{where}: {label}: {exc}") from None

    check("[fixed]", {})
    for name, dim in sorted(space.dimensions.items()):
        if name in space.fixed or (space.grid is not None and name not in space.grid):
            continue
        ends = dim.choices if isinstance(dim, Choice) else (dim.low, dim.high)
        for value in ends:
            check(f"[space.{name}] {value!r}", {name: value})
    for name, values in sorted((space.grid or {}).items()):
        for value in values:
            check(f"[grid] {name} = {value!r}", {name: value})
    n_hidden = largest(space, "n_hidden")
    if not isinstance(n_hidden, int) or not 0 <= n_hidden <= MAX_HIDDEN_LAYERS:
        raise SearchSpaceError(f"{where}: n_hidden goes up to {n_hidden!r}; use 0 to {MAX_HIDDEN_LAYERS} hidden layers")
    hidden = [largest(space, name) for name in HIDDEN_NAMES[:n_hidden]]
    sizes = (N_PIXELS, *hidden, N_CLASSES)
    check_network_fits(
        sizes, largest(space, "batch_size"), space.fixed.get("dtype", "float32"), workers,
        f"{where}: the largest network of this space", "lower the high end of the hidden sizes",
    )


def check_network_fits(
    sizes: tuple[int, ...], batch_size: int, dtype: str, workers: int, what: str, fix: str
) -> None:
    """Refuse before any work a network that would not fit in memory: a `MemoryError` per trial (or the
    machine swapping) after minutes of loading is what it gave instead."""
    itemsize = 8 if dtype == "float64" else 4
    need, budget = network_bytes(tuple(sizes), batch_size, itemsize), memory_budget(workers)
    if need > budget:
        raise SearchSpaceError(
            f"{what}, {'-'.join(map(str, sizes))}, needs about {need / 2**30:.1f} GiB per trial, more than "
            f"{budget / 2**30:.1f} GiB (this machine's memory / {workers} worker(s)); {fix}"
        )


def largest(space: SearchSpace, name: str) -> Any:
    """The largest value NAME can take in SPACE (fixed, grid, range or choice)."""
    if name in space.fixed:
        return space.fixed[name]
    if space.grid is not None:
        return max(space.grid[name]) if name in space.grid else PROBE[name]
    dim = space.dimensions[name]
    return max(dim.choices) if isinstance(dim, Choice) else dim.high


def network_bytes(sizes: tuple[int, ...], batch_size: int, itemsize: int = 4) -> int:
    """A rough peak memory of one trial: weights, gradients, the best epoch's copy and update temporaries
    (5 copies of the parameters), and 3 activation buffers per layer for the larger of a mini-batch and an
    evaluation chunk."""
    from core.network import CHUNK

    params = sum((n_in + 1) * n_out for n_in, n_out in zip(sizes[:-1], sizes[1:]))
    rows = max(int(batch_size), CHUNK)
    return itemsize * (5 * params + 3 * rows * sum(sizes[1:]))


def memory_budget(workers: int) -> int:
    """This machine's memory shared by W workers (each runs one trial at a time)."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return total // max(1, workers)


def suggest(trial: Any, space: SearchSpace) -> dict[str, Any]:
    """Ask the trial for every searched parameter; the only place that calls ``trial.suggest_*``.

    Returns the parameters under their Optuna names. Parameters in ``space.fixed`` are
    not suggested. With a grid, only the grid's parameters are suggested (from the grid).
    """
    params: dict[str, Any] = {}

    def ask(name: str) -> Any:
        if name in space.fixed:
            return space.fixed[name]
        if space.grid is not None:
            if name not in space.grid:
                return None
            params[name] = trial.suggest_categorical(name, space.grid[name])
            return params[name]
        dim = space.dimensions[name]
        if isinstance(dim, Choice):
            params[name] = trial.suggest_categorical(name, list(dim.choices))
        elif isinstance(dim, IntRange):
            params[name] = trial.suggest_int(name, dim.low, dim.high, log=dim.log)
        else:
            params[name] = trial.suggest_float(name, dim.low, dim.high, log=dim.log)
        return params[name]

    for name in ("eta", "lmbda", "dropout", "batch_size", "activation", "cost"):
        ask(name)
    for name in EXTRA_SPACE:  # only when a space file searches them
        if name in space.dimensions or name in (space.grid or {}):
            ask(name)
    n_hidden = ask("n_hidden")
    n_hidden = 1 if n_hidden is None else int(n_hidden)
    for name in HIDDEN_NAMES[:n_hidden]:
        ask(name)
    return params


def config_from_params(params: dict[str, Any], space: SearchSpace) -> TrainConfig:
    """Build the training config of a trial from its suggested and fixed parameters."""
    values = {**space.fixed, **params}
    n_hidden = int(values.get("n_hidden", 1))
    hidden = [int(values.get(name, 100)) for name in HIDDEN_NAMES[:n_hidden]]
    config_values = {k: v for k, v in values.items() if k in CONFIG_FIELDS}
    return TrainConfig(sizes=(N_PIXELS, *hidden, N_CLASSES), **config_values)


def grid_size(space: SearchSpace) -> int:
    """How many points the grid holds (the natural trial count of a grid search)."""
    return math.prod(len(v) for v in (space.grid or {}).values()) if space.grid else 0

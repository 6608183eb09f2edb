"""Optuna's own pictures of a study, as PNGs on the study's MLflow parent run.

The optimization history, the parameter importances, the parallel coordinates and the
slice plot, drawn by ``optuna.visualization.matplotlib`` with the Agg backend, so that the
MLflow UI alone tells the story of a study, even without optuna-dashboard. One function
per picture; :func:`log_study_plots` draws them all and logs them under ``study/``.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any, Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import optuna  # noqa: E402
from optuna.visualization import matplotlib as optuna_plots  # noqa: E402

STUDY_PLOTS = "study"  # artifact folder on the parent run
TARGET_NAME = "validation accuracy"
#: fANOVA on fewer finished trials says nothing (Optuna refuses below 2); below this the picture is skipped.
MIN_TRIALS_FOR_IMPORTANCES = 3
PANELS_PER_ROW = 4  # slice plot: parameters per row

log = logging.getLogger(__name__)


def complete_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))


def optimization_history(study: optuna.Study, path: Path) -> Path | None:
    """Each trial's validation accuracy in the order it ran, with the best so far."""
    if not complete_trials(study):
        return None
    return _draw(lambda: optuna_plots.plot_optimization_history(study, target_name=TARGET_NAME), path)


def param_importances(study: optuna.Study, path: Path) -> Path | None:
    """How much of the variation in validation accuracy each parameter explains (fANOVA); None with too few trials."""
    trials = complete_trials(study)
    varying = {name for name in _common_params(trials) if len({repr(t.params[name]) for t in trials}) > 1}
    if len(trials) < MIN_TRIALS_FOR_IMPORTANCES or not varying:
        return None
    return _draw(lambda: optuna_plots.plot_param_importances(study, params=sorted(varying), target_name=TARGET_NAME), path)


def parallel_coordinate(study: optuna.Study, path: Path) -> Path | None:
    """Every trial as a line through its parameter values, coloured by validation accuracy."""
    trials = complete_trials(study)
    if not trials:
        return None
    axes_count = len(set().union(*(t.params for t in trials))) + 1  # one vertical axis per parameter, and the value
    size = (max(7.0, 1.2 * axes_count), 5.0)
    return _draw(lambda: optuna_plots.plot_parallel_coordinate(study, target_name=TARGET_NAME), path, min_size=size)


def slice_plot(study: optuna.Study, path: Path) -> Path | None:
    """Validation accuracy against each parameter on its own."""
    if not complete_trials(study):
        return None
    return _draw(lambda: optuna_plots.plot_slice(study, target_name=TARGET_NAME), path, wrap=True)


PICTURES: dict[str, Callable[[optuna.Study, Path], Path | None]] = {
    "optimization_history.png": optimization_history,
    "param_importances.png": param_importances,
    "parallel_coordinate.png": parallel_coordinate,
    "slice.png": slice_plot,
}


def study_plots(study: optuna.Study, folder: Path) -> list[Path]:
    """Draw every picture the study has enough finished trials for into ``folder``; return their paths.

    A picture that Optuna cannot draw is logged as a warning and left out: the pictures
    explain a study, they never fail it.
    """
    folder.mkdir(parents=True, exist_ok=True)
    drawn = []
    for name, draw in PICTURES.items():
        try:
            path = draw(study, folder / name)
        except Exception as exc:  # noqa: BLE001 - a picture is never worth failing the study for
            log.warning("could not draw %s for study %s: %s: %s", name, study.study_name, type(exc).__name__, exc)
            plt.close("all")
            continue
        if path is not None:
            drawn.append(path)
    return drawn


def log_study_plots(client: Any, run_id: str, study: optuna.Study, workdir: Path) -> list[str]:
    """Draw the study's pictures and log them under ``study/`` on ``run_id``; return the artifact paths."""
    paths = study_plots(study, workdir / STUDY_PLOTS)
    for path in paths:
        client.log_artifact(run_id, str(path), STUDY_PLOTS)
    return [f"{STUDY_PLOTS}/{path.name}" for path in paths]


def _common_params(trials: list[optuna.trial.FrozenTrial]) -> set[str]:
    """Parameters every trial has (a dynamic space leaves e.g. hidden_2 out of one-layer trials)."""
    return set.intersection(*(set(t.params) for t in trials)) if trials else set()


def _draw(plot: Callable[[], Any], path: Path, wrap: bool = False, min_size: tuple[float, float] = (7.0, 4.5)) -> Path:
    """Call an Optuna matplotlib plot, quietly, and save the figure it drew at a readable size.

    ``wrap``: Optuna draws one panel per parameter in a single row (ten parameters make a
    figure 29 inches wide); lay them out in rows of :data:`PANELS_PER_ROW` instead.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ExperimentalWarning, and matplotlib on a one-value axis
        axes = plot()
        panels = list(axes.flat) if hasattr(axes, "flat") else [axes]
        fig = panels[0].figure
        try:
            if wrap and len(panels) > PANELS_PER_ROW:
                _wrap_panels(fig, panels)
            else:
                width, height = fig.get_size_inches()
                fig.set_size_inches(max(width, min_size[0]), max(height, min_size[1]))
                fig.tight_layout()
            fig.savefig(path, dpi=100)
        finally:
            plt.close(fig)
    return path


def _wrap_panels(fig, panels: list) -> None:
    """Move one-row panels into a grid of rows, the colour bar (any other axes) at the right."""
    from matplotlib.gridspec import GridSpec

    cols = PANELS_PER_ROW
    rows = -(-len(panels) // cols)
    fig.set_size_inches(3.6 * cols + 0.8, 3.2 * rows + 0.6)
    grid = GridSpec(rows, cols, figure=fig)
    for i, ax in enumerate(panels):
        ax.set_subplotspec(grid[i // cols, i % cols])
    others = [ax for ax in fig.axes if ax not in panels]
    fig.tight_layout(rect=(0, 0, 0.93, 0.96) if others else (0, 0, 1, 0.96))
    for ax in others:
        ax.set_position((0.945, 0.1, 0.012, 0.78))

"""After a search: the best trial's network evaluated once on the test set, logged and registered.

The test set is touched here and nowhere else. The network is registered in the Model
Registry under one name, and the alias ``champion`` moves only when the new model's
validation accuracy beats the current champion's.
"""

from __future__ import annotations

import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

import core
from core.network import Network
from tracking import plots
from tracking.mlflow_store import is_duplicate_key
from tracking.tracked_training import WEIGHTS_ARTIFACT, WEIGHTS_FILE

REGISTERED_MODEL = "redes-mnist"
CHAMPION_ALIAS = "champion"
MODEL_CODE = Path(__file__).with_name("pyfunc_network.py")
CORE_CODE = Path(core.__file__).parent
PICTURES = "plots"  # artifact folder of the receptive fields and the learning-speed plot
PLOTTED_DIAGNOSTICS = ("/grad_norm", "/saturated")


@dataclass
class Evaluation:
    test_accuracy: float
    test_loss: float
    confusion: np.ndarray
    predictions: np.ndarray


def evaluate(network: Network, X: np.ndarray, y: np.ndarray) -> Evaluation:
    loss, accuracy = network.evaluate(X, y)
    predictions = network.predict(X)
    confusion = np.bincount(np.asarray(y) * 10 + predictions, minlength=100).reshape(10, 10)
    return Evaluation(float(accuracy), float(loss), confusion, predictions)


def download_network(client: MlflowClient, run_id: str, workdir: Path) -> Path:
    """The saved best-epoch weights of a trial's run."""
    return Path(client.download_artifacts(run_id, f"{WEIGHTS_ARTIFACT}/{WEIGHTS_FILE}", str(workdir)))


def log_test_evaluation(client: MlflowClient, run_id: str, evaluation: Evaluation, split: Any, workdir: Path) -> None:
    """test/accuracy, test/loss, the confusion matrix (PNG and CSV), per-class accuracy and a grid of mistakes on ``run_id``."""
    client.log_metric(run_id, "test/accuracy", evaluation.test_accuracy)
    client.log_metric(run_id, "test/loss", evaluation.test_loss)
    frame = pd.DataFrame(evaluation.confusion, index=[f"true_{d}" for d in range(10)], columns=[f"pred_{d}" for d in range(10)])
    csv = workdir / "confusion_matrix.csv"
    frame.to_csv(csv)
    client.log_artifact(run_id, str(csv), "evaluation")
    png = plots.confusion_matrix_plot(evaluation.confusion, workdir / "confusion_matrix.png")
    client.log_artifact(run_id, str(png), "evaluation")
    bars = plots.per_class_accuracy(split.y_test, evaluation.predictions, workdir / "per_class_accuracy.png")
    client.log_artifact(run_id, str(bars), "evaluation")
    y_test = np.asarray(split.y_test)
    wrong = np.flatnonzero(evaluation.predictions != y_test)[:64]
    grid = plots.misclassified_grid(
        np.asarray(split.X_test[wrong]), y_test[wrong], evaluation.predictions[wrong], workdir / "misclassified.png"
    )
    client.log_artifact(run_id, str(grid), "evaluation")


def log_network_pictures(
    client: MlflowClient, run_id: str, network: Network, per_epoch: Sequence[tuple[int, Mapping[str, float]]], workdir: Path
) -> list[str]:
    """What the network learned and how fast, under ``plots/`` on ``run_id``; returns the artifact paths.

    The first layer's incoming weights as 28×28 tiles (``receptive_fields.png``), and,
    when the run computed diagnostics (``per_epoch`` not empty), the gradient norm and
    saturation per layer per epoch (``learning_speed.png``).
    """
    folder = workdir / PICTURES
    folder.mkdir(parents=True, exist_ok=True)
    drawn = [plots.receptive_fields(network.weights[0], folder / "receptive_fields.png")]
    if per_epoch:
        drawn.append(plots.learning_speed(per_epoch, folder / "learning_speed.png", title=describe(network)))
    for path in drawn:
        client.log_artifact(run_id, str(path), PICTURES)
    return [f"{PICTURES}/{path.name}" for path in drawn]


def describe(network: Network) -> str:
    """``784-30-10 sigmoid, quadratic cost``: the architecture in a few words, for picture titles."""
    hidden = sorted(set(network.activations[:-1]), key=network.activations.index)
    return f"{'-'.join(map(str, network.sizes))} {','.join(hidden) or network.activations[-1]}, {network.cost.name} cost"


def logged_diagnostics(client: MlflowClient, run_id: str) -> list[tuple[int, dict[str, float]]]:
    """The (epoch, diagnostics) pairs a run logged as ``diag/...`` metrics (``step`` = epoch); empty without diagnostics."""
    keys = [k for k in client.get_run(run_id).data.metrics if k.startswith("diag/") and k.endswith(PLOTTED_DIAGNOSTICS)]
    epochs: dict[int, dict[str, float]] = {}
    for key in keys:
        for point in client.get_metric_history(run_id, key):
            epochs.setdefault(point.step, {})[key] = point.value
    return sorted(epochs.items())


def register(client: MlflowClient, run_id: str, weights: Path, val_accuracy: float) -> tuple[str, bool]:
    """Log the network as a pyfunc model on ``run_id``, register a version, move the champion alias if it wins."""
    with mlflow.start_run(run_id=run_id), registry_prints_silenced():
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(MODEL_CODE),
            artifacts={"network": str(weights)},
            code_paths=[str(CORE_CODE)],
            pip_requirements=[f"numpy=={np.__version__}", f"mlflow=={mlflow.__version__}"],
            registered_model_name=REGISTERED_MODEL,
        )
    version = str(info.registered_model_version)
    client.set_model_version_tag(REGISTERED_MODEL, version, "val_accuracy", f"{val_accuracy:.6f}")
    client.set_model_version_tag(REGISTERED_MODEL, version, "source_run_id", run_id)
    return version, promote_if_better(client, version, val_accuracy)


@contextmanager
def registry_prints_silenced() -> Iterator[None]:
    """MLflow prints "Successfully registered model…" and "Created version…" straight to its stream, not
    through its logger: the stream is muted here unless MLflow's logger shows INFO (``redes --verbose``).

    Muted through MLflow's own counter of mutes: logging a model from code mutes and unmutes the
    stream inside, and a plain ``disable_logging()`` would be undone there.
    """
    from mlflow.utils.autologging_utils.logging_and_warnings import MlflowEventsAndWarningsBehaviorGlobally

    from flows.terminal import libraries_verbose

    if libraries_verbose():
        yield
        return
    with MlflowEventsAndWarningsBehaviorGlobally(disable_event_logs=True, disable_warnings=False, reroute_warnings=False):
        yield


def promote_if_better(client: MlflowClient, version: str, val_accuracy: float, attempts: int = 3) -> bool:
    """Point the champion alias at VERSION if it beats the current champion's validation accuracy.

    Two studies finishing together both set the alias; MLflow's server then fails one on the
    alias's unique key. The loser compares again with the winner and moves the alias only if
    it is still better.
    """
    for attempt in range(attempts):
        try:
            current = client.get_model_version_by_alias(REGISTERED_MODEL, CHAMPION_ALIAS)
            current_val = float(current.tags.get("val_accuracy", "-1"))
        except MlflowException:
            current_val = -1.0
        if val_accuracy <= current_val:
            return False
        try:
            client.set_registered_model_alias(REGISTERED_MODEL, CHAMPION_ALIAS, version)
            return True
        except MlflowException as exc:
            if attempt == attempts - 1 or not is_duplicate_key(exc):
                raise
    return False


def evaluate_best_trial(client: MlflowClient, parent_run_id: str, best_run_id: str, val_accuracy: float, split: Any) -> dict:
    """Evaluate the best trial once on the test set; log everything on the parent run and register it.

    The parent run also gets the champion's pictures (see :func:`log_network_pictures`);
    its learning-speed plot needs a study run with ``--diagnostics``.
    """
    with tempfile.TemporaryDirectory(prefix="redes-champion-") as tmp:
        workdir = Path(tmp)
        weights = download_network(client, best_run_id, workdir)
        network = Network.load(weights)
        evaluation = evaluate(network, split.X_test, split.y_test)
        log_test_evaluation(client, parent_run_id, evaluation, split, workdir)
        log_network_pictures(client, parent_run_id, network, logged_diagnostics(client, best_run_id), workdir)
        version, promoted = register(client, parent_run_id, weights, val_accuracy)
    return {
        "test_accuracy": evaluation.test_accuracy,
        "test_loss": evaluation.test_loss,
        "model_version": version,
        "champion": promoted,
    }

"""After a search: the best trial's network evaluated once on the test set, logged and registered.

The test set is touched here and nowhere else. A champion is only compared with networks
validated on the same images: studies on the standard split (train 50,000 / validation
10,000 / the full test set) register under ``redes-mnist``, and every other slice under a
name of its own (``redes-mnist-train2000-val1000``), with its own alias ``champion``, which
moves only when the new model's validation accuracy beats the current champion's. The
epochs budget is not part of the name: on the same validation images a network found with
a larger budget is simply a better network. Each version says in its tags and description
which study, trial and split it came from.
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
from mnist.sizes import N_TEST_FILE, TRAIN_SIZE, VAL_SIZE
from tracking import plots
from tracking.mlflow_store import is_duplicate_key
from tracking.tracked_training import WEIGHTS_ARTIFACT, WEIGHTS_FILE

REGISTERED_MODEL = "redes-mnist"
CHAMPION_ALIAS = "champion"
STANDARD_SIZES = {"train": TRAIN_SIZE, "val": VAL_SIZE, "test": N_TEST_FILE}
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


EXPANDED_BATCH = 36  # training images drawn in expanded_batch.png


def log_expanded_batch(client: MlflowClient, run_id: str, config: Any, X_train: np.ndarray, workdir: Path) -> str | None:
    """When ``config`` distorts its training images: the first few, as stored and distorted as training does
    (its settings and its distortion seed), as ``plots/expanded_batch.png`` on ``run_id``; else nothing."""
    from core.distort import Distorter

    if not config.distorts():
        return None
    originals = np.asarray(X_train[:EXPANDED_BATCH], dtype=np.float32)
    distorted = Distorter.from_config(config, np.random.default_rng([config.seed, 2]))(originals)
    path = plots.expanded_batch(originals, distorted, workdir / PICTURES / "expanded_batch.png", distortion_settings(config))
    client.log_artifact(run_id, str(path), PICTURES)
    return f"{PICTURES}/{path.name}"


def distortion_settings(config: Any) -> str:
    """The distortions a config turns on, in words: ``shift ±2 px, rotate ±15°, elastic α 34 σ 4``."""
    words = []
    if config.shift:
        words.append(f"shift ±{config.shift:g} px")
    if config.rotate:
        words.append(f"rotate ±{config.rotate:g}°")
    if config.scale:
        words.append(f"scale ±{100 * config.scale:g} %")
    if config.shear:
        words.append(f"shear ±{config.shear:g}°")
    if config.elastic_alpha:
        words.append(f"elastic α {config.elastic_alpha:g} σ {config.elastic_sigma:g}")
    return ", ".join(words)


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


def is_standard_split(manifest: Mapping[str, Any]) -> bool:
    """The book's split: the first 50,000 training images, the last 10,000 to validate, the official test set."""
    spec = manifest.get("spec", {})
    return dict(manifest["sizes"]) == STANDARD_SIZES and spec.get("seed") is None and not spec.get("stratify")


def registered_model_name(manifest: Mapping[str, Any]) -> str:
    """``redes-mnist`` for the standard split, else a name for the slice (``redes-mnist-train2000-val1000``)."""
    if is_standard_split(manifest):
        return REGISTERED_MODEL
    sizes, spec = manifest["sizes"], manifest.get("spec", {})
    name = f"{REGISTERED_MODEL}-train{sizes['train']}-val{sizes['val']}"
    if sizes["test"] != STANDARD_SIZES["test"]:
        name += f"-test{sizes['test']}"
    if spec.get("seed") is not None:
        name += f"-seed{spec['seed']}"
    return name + ("-stratified" if spec.get("stratify") else "")


def describe_split(manifest: Mapping[str, Any]) -> str:
    """``train 2,000 / validation 1,000 / test 10,000`` (and how the images were chosen, if not in file order)."""
    sizes, spec = manifest["sizes"], manifest.get("spec", {})
    text = f"train {sizes['train']:,} / validation {sizes['val']:,} / test {sizes['test']:,}"
    how = [f"shuffled with seed {spec['seed']}"] if spec.get("seed") is not None else []
    how += ["stratified"] if spec.get("stratify") else []
    return text + (f" ({', '.join(how)})" if how else "")


@dataclass(frozen=True)
class Provenance:
    """Where a registered network came from: its study, trial, split and epochs budget."""

    study: str
    trial: int
    parent_run_id: str
    trial_run_id: str
    epochs: int
    split: Mapping[str, Any]  # the split's manifest

    @property
    def model_name(self) -> str:
        return registered_model_name(self.split)

    def tags(self) -> dict[str, str]:
        """The version's tags, under the names the trial runs use where they have one."""
        sizes = self.split["sizes"]
        return {
            "optuna.study": self.study,
            "optuna.trial_number": str(self.trial),
            "parent_run_id": self.parent_run_id,
            "trial_run_id": self.trial_run_id,
            "train_size": str(sizes["train"]),
            "val_size": str(sizes["val"]),
            "test_size": str(sizes["test"]),
            "split_key": str(self.split.get("key", "")),
            "epochs": str(self.epochs),
        }

    def description(self) -> str:
        return (
            f"The best network of study '{self.study}' (trial {self.trial}, at most {self.epochs} epochs), "
            f"on the split {describe_split(self.split)}; tested once on the test set in run {self.parent_run_id}."
        )

    def registry_note(self, version: str, promoted: bool) -> str:
        """One or two sentences for the study's summary: where the network is registered, whether it won, and why there."""
        name = self.model_name
        note = f"Registered as `{name}` version {version}: " + (
            f"now `{name}@{CHAMPION_ALIAS}`, the best validation accuracy of the studies on this split."
            if promoted
            else f"`{name}@{CHAMPION_ALIAS}` stays where it was: this network does not beat it on validation accuracy."
        )
        if name != REGISTERED_MODEL:
            note += (
                f" This study ran on a slice ({describe_split(self.split)}), so its network competes only with "
                f"studies on the same slice; `{REGISTERED_MODEL}` holds networks of the standard split "
                f"({describe_split({'sizes': STANDARD_SIZES})}) only."
            )
        return note


def model_description(manifest: Mapping[str, Any]) -> str:
    """The registered model's own description: which networks it holds and what its champion is compared with."""
    return (
        f"Networks found by redes studies on the MNIST split {describe_split(manifest)}, one version per study "
        f"invocation. The alias '{CHAMPION_ALIAS}' points at the best validation accuracy among them; other splits "
        f"register under other names, so validation accuracies are only compared on the same images."
    )


def register(
    client: MlflowClient, run_id: str, weights: Path, val_accuracy: float, provenance: Provenance | None = None
) -> tuple[str, bool]:
    """Log the network as a pyfunc model on ``run_id``, register a version, move the champion alias if it wins.

    With ``provenance`` (a study's best trial), the version goes under the name of its split
    with tags and a description saying where it came from; without, under ``redes-mnist``.
    """
    name = provenance.model_name if provenance else REGISTERED_MODEL
    existing = registered_versions(client, name, provenance)
    if existing:  # another flow run of the same study (on another worker) registered this trial already
        return existing[0], promote_if_better(client, existing[0], val_accuracy, name)
    with mlflow.start_run(run_id=run_id), registry_prints_silenced():
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(MODEL_CODE),
            artifacts={"network": str(weights)},
            code_paths=[str(CORE_CODE)],
            pip_requirements=[f"numpy=={np.__version__}", f"mlflow=={mlflow.__version__}"],
            registered_model_name=name,
        )
    version = str(info.registered_model_version)
    tags = {"val_accuracy": f"{val_accuracy:.6f}", "source_run_id": run_id, **(provenance.tags() if provenance else {})}
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)
    if provenance:
        first = registered_versions(client, name, provenance)[0]
        if first != version:  # registered at the same moment by another flow run: keep the first, once
            client.delete_model_version(name, version)
            return first, promote_if_better(client, first, val_accuracy, name)
        client.update_model_version(name, version, description=provenance.description())
        client.update_registered_model(name, description=model_description(provenance.split))
    return version, promote_if_better(client, version, val_accuracy, name)


def registered_versions(client: MlflowClient, name: str, provenance: Provenance | None) -> list[str]:
    """The versions of NAME that hold PROVENANCE's study and trial, oldest first (none without provenance).

    Several flow runs of one study, on several workers, each end with the same best trial.
    """
    if provenance is None:
        return []
    try:
        versions = client.search_model_versions(f"name = '{name}'")
    except MlflowException:
        return []
    same = [
        int(v.version) for v in versions
        if v.tags.get("optuna.study") == provenance.study and v.tags.get("optuna.trial_number") == str(provenance.trial)
    ]  # fmt: skip
    return [str(v) for v in sorted(same)]


@contextmanager
def registry_prints_silenced() -> Iterator[None]:
    """MLflow prints "Successfully registered model…" and "Created version…" straight to its stream, not
    through its logger: the stream is muted here unless MLflow's logger shows INFO (``redes --verbose``).

    Muted through MLflow's own counter of mutes: logging a model from code mutes and unmutes the
    stream inside, and a plain ``disable_logging()`` would be undone there.
    """
    from mlflow.utils.autologging_utils.logging_and_warnings import MlflowEventsAndWarningsBehaviorGlobally

    from runtime.terminal import libraries_verbose

    if libraries_verbose():
        yield
        return
    with MlflowEventsAndWarningsBehaviorGlobally(disable_event_logs=True, disable_warnings=False, reroute_warnings=False):
        yield


def promote_if_better(
    client: MlflowClient, version: str, val_accuracy: float, name: str = REGISTERED_MODEL, attempts: int = 3
) -> bool:
    """Point the champion alias of NAME at VERSION if it beats the current champion's validation accuracy.

    Two studies finishing together both set the alias; MLflow's server then fails one on the
    alias's unique key. The loser compares again with the winner and moves the alias only if
    it is still better.
    """
    for attempt in range(attempts):
        try:
            current = client.get_model_version_by_alias(name, CHAMPION_ALIAS)
            current_val = float(current.tags.get("val_accuracy", "-1"))
        except MlflowException:
            current_val = -1.0
        if val_accuracy <= current_val:
            return False
        try:
            client.set_registered_model_alias(name, CHAMPION_ALIAS, version)
            return True
        except MlflowException as exc:
            if attempt == attempts - 1 or not is_duplicate_key(exc):
                raise
    return False


def evaluate_best_trial(client: MlflowClient, provenance: Provenance, val_accuracy: float, split: Any) -> dict:
    """Evaluate the best trial once on the test set; log everything on the study's parent run and register it.

    The parent run also gets the champion's pictures (see :func:`log_network_pictures`);
    its learning-speed plot needs a study run with ``--diagnostics``.
    """
    parent_run_id = provenance.parent_run_id
    with tempfile.TemporaryDirectory(prefix="redes-champion-") as tmp:
        workdir = Path(tmp)
        weights = download_network(client, provenance.trial_run_id, workdir)
        network = Network.load(weights)
        evaluation = evaluate(network, split.X_test, split.y_test)
        log_test_evaluation(client, parent_run_id, evaluation, split, workdir)
        log_network_pictures(client, parent_run_id, network, logged_diagnostics(client, provenance.trial_run_id), workdir)
        version, promoted = register(client, parent_run_id, weights, val_accuracy, provenance)
    return {
        "test_accuracy": evaluation.test_accuracy,
        "test_loss": evaluation.test_loss,
        "model_name": provenance.model_name,
        "model_version": version,
        "champion": promoted,
        "registry_note": provenance.registry_note(version, promoted),
    }

"""A run's MLflow calls are made on a background thread: in order, all of them before the run ends,
a failed one raised at the next epoch; learning curves drawn after their runs end, never stopping a study."""

from __future__ import annotations

import pytest
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from core.training import EpochMetrics
from tracking.run_logger import RunLogger, writer
from tracking.tracked_training import CURVE_ERROR_TAG, CurveDrawer


def store(tmp_path, uri) -> tuple[MlflowClient, str]:
    client = MlflowClient(uri)
    return client, client.create_experiment("x", artifact_location=(tmp_path / "artifacts").as_uri())


def epoch(n: int) -> EpochMetrics:
    return EpochMetrics(epoch=n, train_loss=1.0 / n, train_accuracy=0.5, val_loss=1.1 / n, val_accuracy=0.4 + n / 100, seconds=0.1, eta=0.5)


class Refusing:
    """A client whose calls named in REFUSED fail, like a server that died mid-answer."""

    def __init__(self, client: MlflowClient, *refused: str):
        self.client, self.refused = client, refused

    def __getattr__(self, name):
        if name in self.refused:
            def refuse(*args, **kwargs):
                raise MlflowException(f"API request for {name} failed: Response body: ''")

            return refuse
        return getattr(self.client, name)


def test_every_call_reaches_the_run_in_order_before_it_ends(tmp_path, mlflow_db):
    client, experiment = store(tmp_path, mlflow_db)
    logger = RunLogger(client, experiment, "trial-0")
    logger.log_params({"eta": 0.5, "sizes": (784, 10)})
    for n in (1, 2, 3):
        logger.log_epoch(epoch(n))
    logger.log_outcome(3, 3, "max_epochs", {"val/best_accuracy": 0.43})
    logger.end("FINISHED")
    run = client.get_run(logger.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params == {"eta": "0.5", "sizes": "784,10"}
    assert [m.step for m in client.get_metric_history(logger.run_id, "val/accuracy")] == [1, 2, 3]
    assert run.data.metrics["val/best_accuracy"] == 0.43 and run.data.tags["stop_reason"] == "max_epochs"


def test_a_call_that_failed_in_the_background_stops_training_at_the_next_epoch(tmp_path, mlflow_db):
    client, experiment = store(tmp_path, mlflow_db)
    logger = RunLogger(Refusing(client, "log_batch"), experiment, "trial-0")
    logger.log_params({"eta": 0.5})  # fails on the writer thread
    writer().submit(lambda: None).result()  # the writer is past it: one thread, calls in order
    with pytest.raises(MlflowException, match="log_batch"):
        logger.log_epoch(epoch(1))
    logger.end("FAILED")
    assert client.get_run(logger.run_id).info.status == "FAILED"


def test_a_failed_call_fails_the_run_when_it_ends(tmp_path, mlflow_db):
    client, experiment = store(tmp_path, mlflow_db)
    logger = RunLogger(client, experiment, "trial-0")
    run_folder = tmp_path / "artifacts" / logger.run_id
    run_folder.mkdir(parents=True)
    (run_folder / "artifacts").write_text("a file where the run's artifact folder should be")
    weights = tmp_path / "network.npz"
    weights.write_bytes(b"weights")
    logger.log_artifact(weights, "model")
    with pytest.raises(OSError):
        logger.end("FINISHED")
    assert client.get_run(logger.run_id).info.status == "FAILED"


def test_an_artifact_goes_where_the_run_keeps_its_artifacts(tmp_path, mlflow_db):
    client, experiment = store(tmp_path, mlflow_db)
    logger = RunLogger(client, experiment, "trial-0")
    weights = tmp_path / "network.npz"
    weights.write_bytes(b"weights")
    logger.log_artifact(weights, "model")
    logger.end("FINISHED")
    assert [f.path for f in client.list_artifacts(logger.run_id, "model")] == ["model/network.npz"]


@pytest.mark.parametrize("painter", [True, False], ids=["by the painter process", "on the thread"])
def test_curves_are_drawn_and_logged_after_their_runs_end(tmp_path, mlflow_db, painter):
    client, experiment = store(tmp_path, mlflow_db)
    runs = []
    with CurveDrawer(painter=painter) as curves:
        for _ in range(2):
            logger = RunLogger(client, experiment, "trial")
            logger.end("FINISHED")
            curves.submit(client, logger.run_id, [epoch(1), epoch(2)], 2)
            runs.append(logger.run_id)
    for run_id in runs:
        assert [a.path for a in client.list_artifacts(run_id, "plots")] == ["plots/learning_curve.png"]
        png = client.download_artifacts(run_id, "plots/learning_curve.png", str(tmp_path))
        assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def test_a_curve_that_cannot_be_logged_is_tagged_and_the_study_goes_on(tmp_path, mlflow_db):
    client, experiment = store(tmp_path, mlflow_db)
    logger = RunLogger(client, experiment, "trial")
    logger.end("FINISHED")
    with CurveDrawer() as curves:
        curves.submit(Refusing(client, "log_artifact"), logger.run_id, [epoch(1)], 1)
    run = client.get_run(logger.run_id)
    assert "log_artifact failed" in run.data.tags[CURVE_ERROR_TAG]
    assert run.info.status == "FINISHED" and client.list_artifacts(logger.run_id) == []


def test_a_painter_that_died_leaves_the_curves_to_the_thread(tmp_path, mlflow_db):
    client, experiment = store(tmp_path, mlflow_db)
    with CurveDrawer(painter=True) as curves:
        painter = curves._painter._process
        painter.kill()
        painter.wait()
        logger = RunLogger(client, experiment, "trial")
        logger.end("FINISHED")
        curves.submit(client, logger.run_id, [epoch(1), epoch(2)], 2)
    assert [a.path for a in client.list_artifacts(logger.run_id, "plots")] == ["plots/learning_curve.png"]
    assert CURVE_ERROR_TAG not in client.get_run(logger.run_id).data.tags


def test_the_painter_says_why_a_curve_cannot_be_drawn_and_exits_when_its_input_closes(tmp_path):
    from tracking.curve_painter import Painter, PainterError

    painter = Painter()
    path = painter.draw([epoch(1), epoch(2)], 1, tmp_path / "curve.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(PainterError, match="(FileExists|NotADirectory)Error"):  # a folder where a file is
        painter.draw([epoch(1)], 1, tmp_path / "curve.png" / "curve.png")
    assert painter.draw([epoch(1)], 1, tmp_path / "again.png").exists()  # and it goes on
    painter.close(timeout=10)
    assert painter._process.returncode == 0



def test_a_ctrl_c_at_the_terminal_does_not_reach_the_painter_even_while_it_imports(tmp_path):
    """A terminal sends Ctrl-C to its whole foreground process group; the painter is not in it."""
    import subprocess
    import sys

    script = f"""
import os, signal
from pathlib import Path
from types import SimpleNamespace
from tracking.curve_painter import Painter
signal.signal(signal.SIGINT, lambda *_: None)  # this process stands for the study, which handles it
painter = Painter()
os.killpg(0, signal.SIGINT)  # at once: the painter is still importing
epoch = SimpleNamespace(epoch=1, train_accuracy=0.5, val_accuracy=0.5, train_loss=1.0, val_loss=1.0)
print(painter.draw([epoch], 1, Path({str(tmp_path / "curve.png")!r})).exists())
painter.close(timeout=10)
print(painter._process.returncode)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, start_new_session=True
    )
    assert done.stdout.split() == ["True", "0"], done.stderr
    assert "KeyboardInterrupt" not in done.stderr, done.stderr

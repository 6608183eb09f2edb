"""Issue #18: names that are paths, space files that were ignored or accepted when wrong, options that crashed
late. Each stops the command before any work: one line naming the problem, exit code 2, nothing written."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from cli.main import app

BAD_NAMES = ["../../x", "/tmp/redes-x", "a/b", "..", "", "x" * 810, "a\\b", " x"]
SMALL = ["--train-size", "1000", "--val-size", "100"]


def one_line(output: str) -> str:
    return " ".join(output.split())


def files_in(folder) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize("name", BAD_NAMES)
@pytest.mark.parametrize(
    "command", [["study", "--name"], ["run", "--name"], ["train", "--epochs", "1", *SMALL, "--experiment"],
                ["baselines", "--no-svm", *SMALL, "--experiment"], ["serve", "--name"]],
)  # fmt: skip
def test_a_name_that_is_a_path_empty_or_too_long_exits_2_and_writes_nothing(workdir, command, name):
    result = CliRunner().invoke(app, [*command, name])
    assert result.exit_code == 2, result.output
    output = one_line(result.output)
    assert command[-1] in output and "Traceback" not in output
    assert any(word in output for word in ("is a path", "is empty", "characters long", "control character")), output
    assert files_in(workdir) == []
    assert not (workdir.parent.parent / "x").exists()


def test_an_artifact_folder_that_is_a_link_out_of_the_artifact_root_exits_2(workdir, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside")
    (workdir / "mlartifacts").mkdir()
    (workdir / "mlartifacts" / "linked").symlink_to(outside, target_is_directory=True)
    result = CliRunner().invoke(app, ["train", "--epochs", "1", *SMALL, "--experiment", "linked"])
    assert result.exit_code == 2, result.output
    output = one_line(result.output)
    assert "outside the artifact root" in output and str(outside) in output
    assert list(outside.iterdir()) == []
    assert files_in(workdir) == ["mlartifacts", "mlartifacts/linked"]


def test_experiment_id_never_places_artifacts_outside_the_root(workdir):
    """The last line of defence, where the folder is made: a name that slipped past the options is still refused."""
    from mlflow.tracking import MlflowClient

    from runtime.settings import Settings
    from tracking import mlflow_store
    from tracking.names import BadName

    settings = Settings.from_env()
    client = MlflowClient(settings.tracking_uri)
    for name in ("../../escaped", "/tmp/escaped", "a/../../b"):
        with pytest.raises(BadName):
            mlflow_store.experiment_id(client, name, settings)
    (workdir / "mlartifacts").mkdir()
    (workdir / "mlartifacts" / "link").symlink_to("/tmp", target_is_directory=True)
    with pytest.raises(BadName, match="outside the artifact root"):
        mlflow_store.experiment_id(client, "link", settings)
    experiment = client.get_experiment(mlflow_store.experiment_id(client, "fine", settings))
    assert experiment.artifact_location == (workdir / "mlartifacts" / "fine").as_uri()


@pytest.mark.parametrize(
    "text, message",
    [
        ("[space.eta]\nlow = 1.0\nhigh = 0.1\n", "[space.eta]"),
        ("[spaces.eta]\nlow = 1.0\n", "the sections are [space.NAME], [fixed] and [grid]"),
        ("[fixed]\nwarp_speed = 0.9\n", "[fixed] has unknown key 'warp_speed'"),
        ("[grid]\nwarp_speed = [0.1]\n", "[grid] has unknown key 'warp_speed'"),
    ],
)
def test_key_names_are_printed_literally_not_read_as_markup(workdir, text, message):
    (workdir / "space.toml").write_text(text)
    result = CliRunner().invoke(app, ["study", "--space", "space.toml", *SMALL])
    assert result.exit_code == 2, result.output
    assert message in one_line(result.output)


@pytest.mark.parametrize(
    "text, message",
    [
        ("[space.eta]\nlow = -0.5\nhigh = 0.1\n", "[space.eta] -0.5: eta=-0.5"),
        ("[space.dropout]\nlow = 0.0\nhigh = 1.5\n", "[space.dropout] 1.5: dropout=1.5"),
        ("[space.batch_size]\nchoices = [0, 16]\n", "[space.batch_size] 0: batch_size=0"),
        ("[space.batch_size]\nchoices = [16, 5000]\n", "larger than the 1000 training examples"),
        ("[space.lmbda]\nlow = nan\nhigh = 1.0\n", "[space.lmbda]: low and high must be finite"),
        ("[space.eta]\nlow = 0.1\nhigh = inf\n", "[space.eta]: low and high must be finite"),
        ("[space.activation]\nchoices = ['relu', 'swish']\n", "activation='swish'"),
        ("[space.hidden_1]\nlow = 0\nhigh = 10\n", "[space.hidden_1] 0"),
        ("[space.n_hidden]\nlow = 1\nhigh = 5\n", "n_hidden goes up to 5"),
        ("[space.hidden_1]\nlow = 32\nhigh = 10000000\n", "784-10000000-1024-1024-10, needs about"),
        ("[fixed]\nepochs = 0\n", "[fixed]: epochs=0"),
        ("[fixed]\nhidden_1 = 10000000\nn_hidden = 1\n", "784-10000000-10, needs about"),
        ("[grid]\neta = [0.1, -1.0]\n", "[grid] eta = -1.0"),
        ("[fixed]\nepochs = 2\n", "[fixed] epochs = 2 but --epochs 3"),
    ],
)
def test_every_range_choice_and_fixed_value_is_checked_like_the_flags(workdir, text, message):
    (workdir / "space.toml").write_text(text)
    args = ["study", "--space", "space.toml", "--sampler", "grid" if "[grid]" in text else "tpe", *SMALL]
    result = CliRunner().invoke(app, args + (["--epochs", "3"] if "epochs = 2" in text else []))
    assert result.exit_code == 2, result.output
    output = one_line(result.output)
    assert message in output and "space.toml" in output and "Traceback" not in output
    assert files_in(workdir) == ["space.toml"]


def test_fixed_in_the_space_file_is_honoured_and_options_win_only_where_given(tmp_path):
    from tracking.study_request import FIXED_DEFAULTS, StudyRequest

    path = tmp_path / "space.toml"
    path.write_text("[fixed]\nepochs = 2\npatience = 1\n")
    space = StudyRequest(space_file=str(path), seed=7).space()
    assert space.fixed == {"epochs": 2, "patience": 1, "seed": 7, "eta_schedule": False}
    assert StudyRequest(seed=7).space().fixed == {**FIXED_DEFAULTS, "seed": 7}


@pytest.mark.parametrize(
    "args, message",
    [
        (["study", "--train-size", "55000", "--val-size", "10000"], "exceeds the 60,000 training images"),
        (["train", "--train-size", "55000", "--val-size", "10000"], "exceeds the 60,000 training images"),
        (["baselines", "--train-size", "55000", "--val-size", "10000"], "exceeds the 60,000 training images"),
        (["run", "--timeout", "soon"], "--timeout 'soon' is not a duration"),
        (["run", "--timeout", "0"], "must be positive"),
        (["study", "--epochs", "0", *SMALL], "epochs=0"),
        (["study", "--patience", "0", *SMALL], "patience=0"),
        (["study", "--seed", "-1", *SMALL], "seed=-1"),
        (["study", "--storage", ".", *SMALL], "is a folder; give a journal file"),
        (["train", "--sizes", "784,10000000,10"], "--sizes, 784-10000000-10, needs about"),
    ],
)
def test_options_that_crashed_late_exit_2_before_any_work(workdir, args, message):
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    output = one_line(result.output)
    assert message in output and "Traceback" not in output
    assert files_in(workdir) == []

"""`redes train`'s momentum, max-norm, schedule and expanded-data flags: each bad value stops the command
with one line naming the setting, exit code 2, before any work."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from cli.main import app

NEW_FLAGS = (
    "--momentum", "--nesterov", "--no-nesterov", "--max-norm", "--schedule", "--shift", "--rotate", "--scale",
    "--shear", "--elastic-alpha", "--elastic-sigma",
)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--momentum", "1.0"], "momentum=1.0"),
        (["--momentum", "-0.1"], "momentum=-0.1"),
        (["--momentum", "nan"], "momentum=nan"),
        (["--momentum", "much"], "--momentum"),  # not a number: Typer's own message
        (["--nesterov"], "nesterov=True needs a momentum > 0"),
        (["--max-norm", "-1"], "max_norm=-1.0"),
        (["--max-norm", "inf"], "max_norm=inf"),
        (["--schedule", "exponential"], "schedule='exponential' is unknown"),
        (["--shift", "-2"], "shift=-2.0"),
        (["--rotate", "180"], "rotate=180.0"),
        (["--scale", "1"], "scale=1.0"),
        (["--shear", "90"], "shear=90.0"),
        (["--elastic-alpha", "-34"], "elastic_alpha=-34.0"),
        (["--elastic-sigma", "0"], "elastic_sigma=0.0"),
    ],
)
def test_bad_values_exit_2_with_one_line_naming_the_setting_and_write_nothing(workdir, args, message):
    result = CliRunner().invoke(app, ["train", *args])
    assert result.exit_code == 2, result.output
    assert message.lower() in " ".join(result.output.lower().split())  # rich wraps long lines
    assert list(workdir.iterdir()) == []


def test_the_help_lists_every_new_flag():
    result = CliRunner().invoke(app, ["train", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for flag in NEW_FLAGS:
        assert flag in result.output, flag



def test_every_training_field_is_a_redes_train_option_with_the_configs_default():
    """A new TrainConfig field needs its option here (the command passes options to the config by name),
    and an option's default is the config's: the defaults are TrainConfig's, checked rather than typed twice."""
    import inspect
    from dataclasses import fields

    from cli.train import NOT_OPTIONS, train
    from core.config import TrainConfig

    options = inspect.signature(train).parameters
    for field in fields(TrainConfig):
        if field.name in NOT_OPTIONS:
            assert field.name not in options, field.name
            continue
        assert field.name in options, f"TrainConfig.{field.name} has no `redes train` option"
        default = options[field.name].default
        expected = ",".join(map(str, field.default)) if field.name == "sizes" else field.default
        assert default == expected, f"--{field.name.replace('_', '-')} defaults to {default!r}, TrainConfig to {expected!r}"

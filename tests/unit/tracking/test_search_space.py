"""The search space: suggested through FixedTrial, one name per parameter everywhere, strict files."""

import re
from dataclasses import fields

import optuna
import pytest

from core.config import TrainConfig
from tracking.search_space import (
    DEFAULT_SPACE,
    SearchSpaceError,
    config_from_params,
    default_space,
    grid_size,
    load_space,
    suggest,
)
from tracking.study_request import KNOWN_GOOD
from tracking.run_logger import RunLogger  # noqa: F401  (tracking imports cleanly)
from tracking.tracked_training import config_params

PARAMS = {
    "eta": 0.2, "lmbda": 1.5, "dropout": 0.3, "batch_size": 32, "activation": "relu", "cost": "log-likelihood",
    "n_hidden": 2, "hidden_1": 300, "hidden_2": 100,
}


def test_fixed_trial_gives_exactly_the_searched_parameters():
    space = default_space()
    params = suggest(optuna.trial.FixedTrial(PARAMS), space)
    assert params == PARAMS
    config = config_from_params(params, space)
    assert config.sizes == (784, 300, 100, 10)
    assert (config.eta, config.lmbda, config.dropout, config.batch_size) == (0.2, 1.5, 0.3, 32)
    assert config.activation == "relu" and config.cost == "log-likelihood"


def test_a_parameter_name_is_the_same_in_config_optuna_and_mlflow():
    config_names = {f.name for f in fields(TrainConfig)}
    space = default_space()
    params = suggest(optuna.trial.FixedTrial(PARAMS), space)
    mlflow_keys = set(config_params(config_from_params(params, space))) | set(params)
    for name in set(DEFAULT_SPACE) - {"n_hidden", "hidden_1", "hidden_2", "hidden_3"}:
        assert name in config_names, name
        assert name in params and name in mlflow_keys


def test_fixed_values_are_not_suggested():
    space = default_space({"epochs": 3, "dropout": 0.0})
    trial_params = {k: v for k, v in PARAMS.items() if k != "dropout"}
    params = suggest(optuna.trial.FixedTrial(trial_params), space)
    assert "dropout" not in params
    config = config_from_params(params, space)
    assert config.dropout == 0.0 and config.epochs == 3


def test_known_good_sets_are_valid_configs():
    for params in KNOWN_GOOD:
        config_from_params(params, default_space()).validate(n_train=50_000)


def test_space_file_overrides_and_grid(tmp_path):
    path = tmp_path / "space.toml"
    path.write_text(
        "[space.eta]\nlow = 0.05\nhigh = 2.0\nlog = true\n\n[space.batch_size]\nchoices = [8, 16]\n\n"
        "[fixed]\nepochs = 4\n\n[grid]\neta = [0.1, 0.5]\nlmbda = [1.0, 5.0, 10.0]\n"
    )
    space = load_space(path)
    assert space.dimensions["eta"].low == 0.05 and space.dimensions["eta"].log
    assert space.dimensions["batch_size"].choices == (8, 16)
    assert space.fixed == {"epochs": 4}
    assert grid_size(space) == 6
    params = suggest(optuna.trial.FixedTrial({"eta": 0.5, "lmbda": 10.0}), space)
    assert params == {"eta": 0.5, "lmbda": 10.0}


@pytest.mark.parametrize(
    "text, message",
    [
        ("[space.bogus]\nlow = 1\nhigh = 2\n", "unknown parameter"),
        ("[space.eta]\nlow = 2.0\nhigh = 1.0\n", "empty range"),
        ("[space.eta]\nlow = 0.0\nhigh = 1.0\nlog = true\n", "log range"),
        ("[fixed]\nnope = 1\n", "unknown key"),
        ("[colours]\nx = 1\n", "unknown section"),
        ("[space.eta\nlow = 1", "not valid TOML"),
        ("[grid]\neta = []\n", "non-empty list"),
        ("", "holds no setting"),
        ("# only a comment\n", "holds no setting"),
    ],
)
def test_bad_space_files_are_named(tmp_path, text, message):
    path = tmp_path / "space.toml"
    path.write_text(text)
    with pytest.raises(SearchSpaceError, match=message):
        load_space(path)


def test_grid_workers_share_one_grid_order_and_other_samplers_get_their_own_seed(tmp_path):
    """GridSampler maps trial number → grid point through a shuffle seeded by its seed: workers must agree."""
    from tracking import studies
    from runtime.settings import Settings
    from tracking.objective import StudyContext, worker_seed

    grid = tmp_path / "grid.toml"
    grid.write_text("[grid]\neta = [0.1, 2.0]\nlmbda = [0.1, 5.0]\n")
    space = load_space(grid)

    def context(sampler):
        return StudyContext(study_name="s", storage="j.log", sampler=sampler, pruner="none", space=space,
                            split_path="split", experiment_id="1", parent_run_id="p", settings=Settings.from_env(), seed=0)

    assert [worker_seed(context("tpe"), i) for i in range(3)] == [0, 1, 2]
    # two workers taking turns on one study visit the four grid points once each
    storage = optuna.storages.InMemoryStorage()
    workers = [
        optuna.create_study(study_name="g", storage=storage, direction="maximize", load_if_exists=True,
                            sampler=studies.make_sampler("grid", space, seed=worker_seed(context("grid"), i)))
        for i in range(2)
    ]
    seen = []
    for turn in range(4):
        workers[turn % 2].optimize(lambda trial: seen.append(tuple(suggest(trial, space).values())) or 0.0, n_trials=1)
    assert sorted(seen) == [(0.1, 0.1), (0.1, 5.0), (2.0, 0.1), (2.0, 5.0)]


def test_the_extra_dimensions_are_config_fields_searched_only_when_a_space_file_names_them(tmp_path):
    from tracking.search_space import EXTRA_SPACE, FloatRange, check_space

    assert set(EXTRA_SPACE) <= {f.name for f in fields(TrainConfig)}
    assert set(EXTRA_SPACE).isdisjoint(DEFAULT_SPACE)
    assert EXTRA_SPACE["elastic_alpha"] == FloatRange(0.0, 40.0) and EXTRA_SPACE["elastic_sigma"] == FloatRange(4.0, 8.0)
    assert EXTRA_SPACE["shift"] == FloatRange(0.0, 3.0) and EXTRA_SPACE["rotate"] == FloatRange(0.0, 15.0)
    assert "momentum" not in suggest(optuna.trial.FixedTrial(PARAMS), default_space())
    path = tmp_path / "space.toml"
    path.write_text("".join(f"[space.{name}]\n" for name in EXTRA_SPACE))  # no keys: the declared ranges
    space = load_space(path)
    assert {name: space.dimensions[name] for name in EXTRA_SPACE} == EXTRA_SPACE
    check_space(space, n_train=1000)  # every declared range end is a valid training option
    chosen = {"momentum": 0.9, "max_norm": 3.0, "schedule": "cosine", "shift": 2.5, "rotate": 12.0, "scale": 0.1,
              "shear": 5.0, "elastic_alpha": 34.0, "elastic_sigma": 4.0}
    params = suggest(optuna.trial.FixedTrial({**PARAMS, **chosen}), space)
    assert {k: params[k] for k in chosen} == chosen
    config = config_from_params(params, space)
    assert {k: getattr(config, k) for k in chosen} == chosen and config.distorts()
    assert {k: config_params(config)[k] for k in chosen} == chosen  # the same names in MLflow


def test_extra_dimensions_in_fixed_and_grid(tmp_path):
    from tracking.search_space import check_space

    path = tmp_path / "space.toml"
    path.write_text("[fixed]\nmomentum = 0.9\nnesterov = true\nelastic_alpha = 34.0\n\n[grid]\nshift = [0.0, 2.0]\n")
    space = load_space(path)
    check_space(space, n_train=1000)
    params = suggest(optuna.trial.FixedTrial({"shift": 2.0}), space)
    assert params == {"shift": 2.0}
    config = config_from_params(params, space)
    assert (config.momentum, config.nesterov, config.elastic_alpha, config.shift) == (0.9, True, 34.0, 2.0)


@pytest.mark.parametrize(
    "text, message",
    [
        ("[fixed]\nmomentum = 1.0\n", "momentum=1.0"),
        ("[fixed]\nnesterov = true\n", "nesterov=True needs a momentum > 0"),
        ("[fixed]\nrotate = 200.0\n", "rotate=200.0"),
        ("[fixed]\nschedule = 'exponential'\n", "schedule='exponential'"),
        ("[space.rotate]\nlow = 0.0\nhigh = 180.0\n", "[space.rotate] 180.0"),
        ("[space.elastic_sigma]\nlow = 0.0\nhigh = 8.0\n", "elastic_sigma=0.0"),
        ("[space.max_norm]\nchoices = [0.0, -1.0]\n", "max_norm=-1.0"),
        ("[space.schedule]\nchoices = ['cosine', 'linear']\n", "schedule='linear'"),
        ("[grid]\nshear = [0.0, 90.0]\n", "shear=90.0"),
    ],
)
def test_bad_extra_values_are_refused_as_the_flags_refuse_them(tmp_path, text, message):
    from tracking.search_space import check_space

    path = tmp_path / "space.toml"
    path.write_text(text)
    with pytest.raises(SearchSpaceError, match=re.escape(message)):
        check_space(load_space(path), n_train=1000, where=str(path))


def test_the_main_space_is_the_default_one_with_momentum_schedule_and_expanded_data():
    from tracking.search_space import EXTRA_SPACE, check_space

    space = load_space("main")
    assert set(DEFAULT_SPACE) < set(space.dimensions)
    assert {"momentum", "schedule", "shift", "rotate", "elastic_alpha"} <= set(space.dimensions)
    assert space.dimensions["momentum"] == EXTRA_SPACE["momentum"]
    check_space(space, n_train=50_000, workers=2, where="main")


def test_known_good_sets_need_what_the_space_searches():
    from tracking.study_request import StudyRequest

    request = StudyRequest(enqueue=KNOWN_GOOD)
    main = request.warm_start(load_space("main"))
    assert main[0]["momentum"] == 0.9 and main[0]["elastic_alpha"] > 0  # the 99 % set goes first
    for params in main:
        config_from_params(params, load_space("main")).validate(n_train=50_000)
    plain = request.warm_start(default_space())
    assert plain and all(set(params) <= set(DEFAULT_SPACE) for params in plain)
    assert len(plain) == len([p for p in KNOWN_GOOD if p.get("momentum", 0.0) == 0.0])


def test_a_file_named_like_a_builtin_space_is_the_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "main").write_text("[fixed]\nepochs = 3\n")
    assert load_space("main").fixed == {"epochs": 3}


def test_a_space_given_as_text_is_the_space_of_the_same_file(tmp_path):
    """A deployment carries the space's text: its runs execute on workers where the file's path means nothing."""
    text = "[space.hidden_1]\nlow = 16\nhigh = 48\nlog = true\n\n[fixed]\nepochs = 3\n"
    path = tmp_path / "space.toml"
    path.write_text(text)
    assert load_space(None, text=text).describe() == load_space(path).describe()
    with pytest.raises(SearchSpaceError, match="not both"):
        load_space(path, text=text)
    with pytest.raises(SearchSpaceError, match="given as text.*unknown section"):
        load_space(None, text="[spaces.eta]\nlow = 1\n")
    with pytest.raises(SearchSpaceError, match="does not exist on this machine.*space_text"):
        load_space(tmp_path / "on-another-machine.toml")

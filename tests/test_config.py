"""attendnext_keras.config: typed configs, one per mode, with their defaults in one place; files name bad keys."""

import dataclasses

import pytest

from attendnext_keras import config as configs
from attendnext_keras.config import (ConfigError, RunConfig, TrainConfig, example_configs, from_dict, load_config,
                                     save_config)


@pytest.mark.parametrize("values, message", [
    ({"train": {"learning_rate": "fast"}}, "train.learning_rate: expected a number, got 'fast'"),
    ({"train": {"learning_rate": float("nan")}}, "train.learning_rate: expected a finite number, got nan"),
    ({"train": {"weight_decay": -1}}, "train.weight_decay: must be >= 0, got -1.0"),
    ({"train": {"momentum": -5}}, "train.momentum: must be in [0, 1), got -5.0"),
    ({"train": {"learning_rate": 0.01, "min_learning_rate": 0.1}}, "train.min_learning_rate: must be in [0, "),
    ({"train": {"epochs": 3, "warmup_epochs": 3}}, "train.warmup_epochs: must be >= 0 and below epochs=3"),
    ({"train": {"epochs": True}}, "train.epochs: expected an integer, got True"),
    ({"train": {"seed": "abc"}}, "train.seed: expected an integer, got 'abc'"),
    ({"train": {"optimizer": "adam"}}, "train.optimizer: expected one of 'adamw', 'sgd', got 'adam'"),
    ({"train": {"optimiser": "sgd"}}, "train.optimiser: unknown key; did you mean 'optimizer'?"),
    ({"trian": {}}, "trian: unknown key; did you mean 'train'?"),
    ({"model": {"input_size": 0}}, "model.input_size: must be a positive number of pixels, got 0"),
    ({"export": {"modes": ["int9"]}}, "export.modes[0]: expected one of 'float32'"),
    ({"steps": ["qat", "train"]}, "steps: must be in the order"),
    ({"steps": ["qat"]}, "steps: 'qat' needs 'train'"),
    ({"explore": {"space": {"blur_sizes": [1, 3]}}}, "explore.space.blur_sizes: is a [min, max] range within 2–7"),
    ({"data": "folder"}, "data: expected a mapping of settings, got 'folder'"),
    ({"study": {"models": ["specs/a.json"], "candidates": ["./specs/a.json"]}},
     "study.candidates: lists models that `models` has too: ['specs/a.json']"),
])
def test_bad_values_name_their_path(values, message):
    with pytest.raises(ConfigError) as error:
        from_dict(RunConfig, values)
    assert str(error.value).startswith(message)


def test_python_construction_is_checked_too():
    with pytest.raises(ConfigError, match="epochs: expected an integer, got '3'"):
        TrainConfig(epochs="3")
    with pytest.raises(ConfigError, match="learning_rate: expected a finite number"):
        TrainConfig(learning_rate=float("inf"))
    assert TrainConfig(learning_rate=1).learning_rate == 1.0 and isinstance(TrainConfig(learning_rate=1).learning_rate,
                                                                           float)
    assert TrainConfig(epochs=1).warmup == 0.0 and TrainConfig(epochs=5).warmup == 1.0


def test_files_round_trip_and_errors_name_the_file(tmp_path):
    config = from_dict(RunConfig, {"train": {"epochs": 7}, "model": {"name": "mobilenet_v3_small", "input_size": 96}})
    for suffix in (".yaml", ".json"):
        path = save_config(config, tmp_path / f"run{suffix}")
        assert load_config(path) == config
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  epochs: [1\n")
    with pytest.raises(ConfigError, match=r"Config file '.*bad.yaml' is not valid YAML \(line 3"):
        load_config(bad)
    bad.write_text("train:\n  epochs: 1\n  epochs: 2\n")  # YAML's safe_load would keep 2 silently
    with pytest.raises(ConfigError, match=r"not valid YAML \(line 3, column 3\): key 'epochs' is given twice"):
        load_config(bad)
    bad.write_text("train:\n  learning_rate: '0.01'\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: train.learning_rate: expected a number, got '0.01'"):
        load_config(bad)
    (tmp_path / "bad.json").write_text("{oops")
    with pytest.raises(ValueError, match=r"Config file '.*bad.json' is not valid JSON"):
        load_config(tmp_path / "bad.json")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="must end in .yaml"):
        load_config(tmp_path / "run.txt")


def test_flat_recipe_files_still_load(tmp_path):
    path = tmp_path / "train.yaml"
    path.write_text("epochs: 5\noptimizer: sgd\nlearning_rate: 0.1\n")
    config = TrainConfig.from_file(path)
    assert (config.epochs, config.optimizer, config.learning_rate) == (5, "sgd", 0.1)
    path.write_text("epochs: 5\nlearnig_rate: 0.1\n")
    with pytest.raises(ConfigError, match=r"train.yaml: learnig_rate: unknown key; did you mean 'learning_rate'"):
        TrainConfig.from_file(path)


def test_example_configs_ship_and_load():
    examples = example_configs()
    assert {"main", "flowers160_micro96", "ptq_only", "explore_micro"} <= set(examples)
    for name, path in examples.items():
        assert isinstance(load_config(path), RunConfig), name
    # main.yaml documents the main job: it is exactly the defaults `attendnext run` uses.
    assert load_config(examples["main"]) == RunConfig()


def test_defaults_live_in_one_place():
    """The CLI's help shows the config's defaults instead of repeating them."""
    from attendnext_keras.cli import build_parser

    run = next(a for a in build_parser()._actions if a.dest == "command").choices["run"]
    helps = {a.dest: a.help for a in run._actions}
    assert f"default: {TrainConfig().learning_rate}" in helps["lr"]
    assert all(a.default is None or isinstance(a.default, bool) for a in run._actions if a.dest != "help")
    assert configs.QATConfig().learning_rate < TrainConfig().learning_rate
    assert dataclasses.fields(configs.QATConfig)  # a subclass of the training recipe: same keys

"""The ImageNet recipes (attendnext_keras/configs/imagenet_<variant>.yaml): what they say, and that they train end to
end for a few steps on TFDS mock data for imagenet2012 under the strategies that run here (one device, and
MirroredStrategy over two logical CPUs). Nobody can download ImageNet here; missing archives are a one-line error."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

from attendnext_keras import data
from attendnext_keras.config import ConfigError, TrainConfig, example_configs, load_config

REPO = pathlib.Path(__file__).resolve().parents[1]
HELPER = str(REPO / "tests" / "helpers" / "imagenet_mock_train.py")
VARIANTS = ("micro", "tiny", "small", "small_v2", "medium", "base")


@pytest.mark.parametrize("variant", VARIANTS)
def test_recipe_says_what_imagenet_training_needs(variant):
    config = load_config(example_configs()[f"imagenet_{variant}"])
    assert config.model.name == f"attendnext_{variant}"
    assert config.data.source == "tfds:imagenet2012" and config.data.val_split == "validation"
    assert config.data.crop_scale_min == 0.08 and config.train.epochs == 300
    train = config.train
    assert (train.optimizer, train.warmup, train.label_smoothing, train.ema_momentum) == ("sgd", 5, 0.1, 0.9998)
    assert train.learning_rate * train.lr_scale == pytest.approx(0.1 * train.batch_size / 256)  # linear scaling


def test_linear_learning_rate_scaling():
    assert TrainConfig(batch_size=1024, learning_rate=0.1, reference_batch_size=256).lr_scale == 4
    assert TrainConfig(batch_size=64).lr_scale == 1
    with pytest.raises(ConfigError, match="reference_batch_size: must be at least 1"):
        TrainConfig(reference_batch_size=0)


def test_imagenet_without_archives_is_one_line(tmp_path):
    with pytest.raises(ValueError, match=r"imagenet2012.*pass their folder as data.manual_dir.*ILSVRC2012_img_train"):
        data.load_source("tfds:imagenet2012", "train", data_dir=tmp_path / "tfds")
    with pytest.raises(ValueError, match=r"'.*empty' lacks them"):
        (tmp_path / "empty").mkdir()
        data.load_source("tfds:imagenet2012", "train", data_dir=tmp_path / "tfds", manual_dir=tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="manual_dir '.*nowhere' is not a folder"):
        data.load_source("tfds:imagenet2012", "train", data_dir=tmp_path / "tfds", manual_dir=tmp_path / "nowhere")


def test_recipe_trains_on_mock_imagenet(tmp_path):
    """One epoch of 16 random 1000-class images at 32 px, batch 8, with the recipe's optimizer, EMA and label
    smoothing, under the default strategy and MirroredStrategy over two logical CPUs: each run finishes and leaves a
    1000-class model and its metrics (about 2 minutes, mostly tracing the training step twice)."""
    done = subprocess.run([sys.executable, HELPER, str(example_configs()["imagenet_micro"]), str(tmp_path)],
                          capture_output=True, text=True, timeout=900, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr[-3000:]
    for strategy in ("default", "mirrored"):
        run = tmp_path / strategy
        assert (run / "final.keras").exists() and (run / "metrics.csv").read_text().count("\n") == 2  # header + 1
        assert len(json.loads((run / "class_names.json").read_text())) == 1000

"""The chain of `attendnext run` (attendnext_keras.pipeline) on the trained model of `conftest.trained_run`: every
artefact, a model that learned, every format agreeing with the others, and the summary's provenance."""

import json
import math
import os

import pytest

from attendnext_keras import config as configs
from attendnext_keras.pipeline import run

CHANCE = 0.2  # 5 classes


@pytest.fixture(scope="module")
def summary(trained_run):
    return json.loads((trained_run / "summary.json").read_text())


def test_run_writes_every_artefact(trained_run):
    files = set(os.listdir(trained_run))
    assert {"model_float32.tflite", "model_float32.json", "model_int8.tflite", "model_int8.json", "float", "qat",
            "tflite", "summary.json", "summary.md", "class_names.json", "config.yaml"} <= files
    assert not [f for f in files if f.startswith(".tmp-")]
    assert sorted(os.listdir(trained_run / "tflite")) == ["attendnext_model.cc", "attendnext_model.h",
                                                          "attendnext_model_op_resolver.h"]
    saved = configs.load_config(trained_run / "config.yaml")
    assert saved.train.epochs == 12 and saved.model.input_size == 32


def _chance_p_value(top1, examples):
    """P(at least this many correct of `examples` when guessing among 5 classes): a one-sided binomial test."""
    correct = round(top1 * examples)
    return sum(math.comb(examples, k) * CHANCE ** k * (1 - CHANCE) ** (examples - k)
               for k in range(correct, examples + 1))


def test_the_trained_model_beats_chance_by_a_margin(summary):
    """12 epochs at 32 px on 400 photographs: measured 46 % float top-1 on the 100 held-out ones (chance 20 %) on a
    VNNI machine, and 34 % int8 on an AVX2-only one (training follows the CPU's float rounding). The margin is a
    binomial test against guessing: p < 0.01 needs 31 % or more of the 100 images."""
    rows = {row["format"]: row for row in summary["rows"]}
    assert list(rows) == ["Keras float32", "Keras QAT (fake-quant)", "TFLite float32", "TFLite int8 (QAT)",
                          "TFLite int8 on TFLM"]
    assert all(row["examples"] == 100 for row in rows.values())
    for name in ("Keras float32", "TFLite int8 (QAT)"):
        assert _chance_p_value(rows[name]["top1"], 100) < 0.01, (name, rows[name]["top1"])


def test_formats_agree_with_each_other(summary):
    rows = {row["format"]: row for row in summary["rows"]}
    assert abs(rows["TFLite float32"]["top1"] - rows["Keras float32"]["top1"]) <= 0.02  # same maths in float32
    assert abs(rows["TFLite int8 (QAT)"]["top1"] - rows["Keras QAT (fake-quant)"]["top1"]) <= 0.08
    assert abs(rows["TFLite int8 on TFLM"]["top1"] - rows["TFLite int8 (QAT)"]["top1"]) <= 0.08
    int8 = rows["TFLite int8 (QAT)"]
    assert int8["partitions"] == 1 and summary["int8_report"]["fully_int8"]
    assert int8["size_kib"] < rows["TFLite float32"]["size_kib"] and int8["latency_ms"] > 0
    assert rows["TFLite int8 on TFLM"]["arena_kib"] > 0


def test_summary_carries_command_date_and_machine(trained_run, summary):
    machine = summary["machine"]
    assert machine["date"].startswith("20") and machine["cpu_model"] and machine["command"]
    assert summary["config"]["model"]["name"] == "attendnext_micro"
    text = (trained_run / "summary.md").read_text()
    assert "| TFLite int8 on TFLM |" in text and "Command: `" in text and "Machine: " in text


def test_a_step_without_its_input_is_refused_before_any_training(tmp_path):
    with pytest.raises(configs.ConfigError, match="'micro' runs an int8 model"):
        configs.RunConfig(steps=("train", "export", "micro"), export=configs.ExportConfig(modes=("float32",)))
    with pytest.raises(configs.ConfigError, match="export.modes: 'int8' exports the model of the 'qat' step"):
        configs.RunConfig(steps=("train", "export"), export=configs.ExportConfig(modes=("int8",)))
    with pytest.raises(configs.ConfigError, match="'benchmark' times the exported models"):
        configs.RunConfig(steps=("train", "benchmark"))
    with pytest.raises(ValueError, match="model.alpha applies to AttendNeXt models"):
        run(configs.RunConfig(model=configs.ModelConfig(name="mobilenet_v2", alpha=0.5), out_dir=str(tmp_path)))
    assert os.listdir(tmp_path) == []  # refused before anything was written

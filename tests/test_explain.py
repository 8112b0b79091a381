"""attendnext explain (attendnext_keras.experiments.explain): the int8 model's attention is the QAT model's, maps
depend on the image, and the command writes one picture per photograph."""

import json
import pathlib

import numpy as np

from attendnext_keras import data
from attendnext_keras.cli import main
from attendnext_keras.deploy.litert import read_tflite
from attendnext_keras.experiments import explain
from attendnext_keras.saving import load_model


def test_int8_attention_matches_the_qat_model_and_depends_on_the_image(trained_run):
    images = data.calibration_images(data.load_source("default", "val"), 32, count=8, seed=1)
    keras_maps = explain.keras_attention(load_model(trained_run / "qat" / "final.h5"), images)
    int8_maps = explain.tflite_attention(read_tflite(trained_run / "model_int8.tflite"), images)
    assert sorted(keras_maps) == sorted(int8_maps) and len(keras_maps) == 8  # 3 + 3 + 2 DC-AC modules in micro
    assert keras_maps["stage1_col1_block2_dcac"].shape == (8, 2, 2)  # 32 px: stride 4, condensed ×4 → 2×2
    for module, maps in keras_maps.items():
        assert np.abs(maps - int8_maps[module]).max() <= 0.03, module  # int8 sigmoid: 1/256 steps
    spread = max(m.std(axis=0).mean() for m in keras_maps.values())
    assert spread > 0.005  # the maps change from one photograph to the next


def test_explain_command_writes_a_picture_per_image(trained_run, tmp_path, capsys):
    photos = [str(p) for p in sorted((data.default_data_dir() / "val" / "roses").glob("*.jpg"))[:2]]
    for model in ("float/final.keras", "model_int8.tflite"):
        out = tmp_path / model.replace("/", "_")
        assert main(["explain", *photos, "--model", str(trained_run / model), "--out", str(out)]) == 0
        pictures = sorted(out.glob("*_attention.png"))
        assert len(pictures) == 2 and all(p.read_bytes()[:4] == b"\x89PNG" for p in pictures)
        summary = json.loads((out / "attention.json").read_text())
        assert len(summary["modules"]) == 8 and summary["images"] == photos
    assert main(["explain", photos[0], "--model", str(tmp_path / "missing.keras")]) == 2
    assert "does not exist" in capsys.readouterr().err
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(pathlib.Path(photos[0]).read_bytes()[:2000])
    assert main(["explain", photos[0], str(cut), "--model", str(trained_run / "model_int8.tflite"),
                 "--out", str(tmp_path / "cut")]) == 2
    assert f"Cannot read image file '{cut}': image file is truncated" in capsys.readouterr().err
    assert not (tmp_path / "cut").exists()  # nothing written for a batch with a bad image

"""`attendnext train` → `attendnext qat` → `attendnext export --mode int8` on tiny settings, and `benchmark --list`."""

import json
import os

from attendnext_keras.cli import main


def test_train_qat_export_chain(tmp_path, capsys):
    float_dir, qat_dir = tmp_path / "float", tmp_path / "qat"
    assert main(["train", "--data", "default", "--input-size", "32", "--epochs", "1", "--batch-size", "50",
                 "--bn-momentum", "0.9", "--out", str(float_dir)]) == 0
    assert "val top-1" in capsys.readouterr().out
    assert {"final.keras", "best.keras", "class_names.json", "metrics.csv", "checkpoints"} <= set(os.listdir(float_dir))

    # Resuming a finished run trains nothing more and keeps the checkpoint's epoch.
    assert main(["train", "--data", "default", "--input-size", "32", "--epochs", "1", "--batch-size", "50",
                 "--out", str(float_dir), "--resume"]) == 0
    assert "Resuming from" in capsys.readouterr().out

    # A checkpoint from another model is refused in one line.
    assert main(["train", "--data", "default", "--variant", "small", "--input-size", "32", "--epochs", "1",
                 "--out", str(float_dir), "--resume"]) == 2
    assert "does not fit this model" in capsys.readouterr().err

    assert main(["qat", "--model", str(float_dir / "final.keras"), "--data", "default", "--epochs", "1",
                 "--batch-size", "50", "--out", str(qat_dir)]) == 0
    assert "QAT model:" in capsys.readouterr().out
    assert (qat_dir / "final.h5").exists()

    target = tmp_path / "m.tflite"
    assert main(["export", "--model", str(qat_dir / "final.h5"), "--mode", "int8", "--out", str(target)]) == 0
    out = capsys.readouterr().out
    assert "float activation tensors: 0; float ops: 0" in out and "XNNPACK partitions: 1" in out
    meta = json.loads((tmp_path / "m.json").read_text())
    assert meta["class_names"] == ["daisy", "dandelion", "roses", "sunflowers", "tulips"] and meta["fully_int8"]


def test_benchmark_lists_its_models(capsys):
    assert main(["benchmark", "--list"]) == 0
    names = capsys.readouterr().out.split()
    assert {"attendnext_base", "mobilenet_v3_large", "fbnet_c", "mobilevit_xs", "mobileone_s1"} <= set(names)

"""The `attendnext` command line: every command on tiny settings, output fit for people, one-line errors."""

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from attendnext_keras.cli import build_parser, main
from attendnext_keras.deploy.micro import read_c_array, strip_for_micro
from conftest import REPO

FLOWERS = ["daisy", "dandelion", "roses", "sunflowers", "tulips"]


def test_models_lists_the_registry(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ("attendnext_base", "attendnext_micro", "mobilenet_v3_large_075",
                                        "mobilenet_v2_035", "fbnet_c"))
    assert main(["models", "attendnext*", "-v"]) == 0
    assert "stage4" in capsys.readouterr().out


def test_profile_json_reflects_flags(capsys):
    assert main(["profile", "--variant", "micro", "--input-size", "64", "--classes", "5", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["layers"][-1]["name"] == "predictions" and result["params"] > 0
    assert result["groups"]["head"]["macs"] == 112 * 5  # GAP → Dense(5) on 112 channels
    assert main(["profile", "--arch", "mobilenet_v3_small_075", "--input-size", "96", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["params"] == 2_051_552


def test_profile_table_shows_the_built_spec(capsys):
    assert main(["profile", "--variant", "micro", "--input-size", "64", "--alpha", "2"]) == 0
    out = capsys.readouterr().out
    assert "input 64×64" in out and "width ×0.6" in out and "total" in out


def test_tensorflow_start_up_noise_is_hidden():
    done = subprocess.run([sys.executable, "-m", "attendnext_keras.cli", "profile", "--variant", "micro",
                           "--input-size", "64"], capture_output=True, text=True, cwd=REPO,
                          env={k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"})
    assert done.returncode == 0 and "total" in done.stdout
    for noise in ("oneDNN", "cuda", "cuInit", "absl"):
        assert noise not in done.stderr, done.stderr


# ---------------------------------------------------------------------------------------------------------------------
# Commands on the trained run (conftest.trained_run)


def test_evaluate_keras_and_tflite(trained_run, capsys):
    assert main(["evaluate", "--model", str(trained_run / "float" / "final.keras"), "--json"]) == 0
    keras_result = json.loads(capsys.readouterr().out)
    assert main(["evaluate", "--model", str(trained_run / "model_float32.tflite"), "--json"]) == 0
    tflite_result = json.loads(capsys.readouterr().out)
    assert keras_result["examples"] == tflite_result["examples"] == 100
    assert abs(keras_result["top1"] - tflite_result["top1"]) <= 0.02  # same pixels, float32 kernels
    summary = json.loads((trained_run / "summary.json").read_text())
    assert keras_result["top1"] == pytest.approx(summary["rows"][0]["top1"])


def test_predict_prints_labels_and_skips_a_bad_file(trained_run, tmp_path, capsys):
    from attendnext_keras.data import default_data_dir

    image = str(sorted((default_data_dir() / "val" / "roses").glob("*.jpg"))[0])
    assert main(["predict", image, "--model", str(trained_run / "model_int8.tflite"), "--top-k", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert len(result) == 1 and len(result[0]["predictions"]) == 2
    assert {p["label"] for p in result[0]["predictions"]} <= set(FLOWERS)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n broken")
    assert main(["predict", str(bad), image, "--model", str(trained_run / "model_int8.tflite")]) == 2
    captured = capsys.readouterr()
    assert "roses" in captured.out or "daisy" in captured.out or image in captured.out  # the good image still ran
    assert f"skipped {bad}" in captured.err and "1 of 2 image(s) could not be read" in captured.err


def test_micro_writes_c_sources(trained_run, tmp_path, capsys):
    assert main(["micro", "--model", str(trained_run / "model_int8.tflite"), "--images", "8",
                 "--out-dir", str(tmp_path), "--name", "flowers", "--per-op"]) == 0
    out = capsys.readouterr().out
    assert "TFLite Micro arena:" in out and "top-1 agreement" in out
    assert re.search(r"DEPTHWISE_CONV_2D\s+\d+ ops\s+≤ [01] LSB", out)
    assert sorted(os.listdir(tmp_path)) == ["flowers.cc", "flowers.h", "flowers_op_resolver.h"]
    exported = (trained_run / "model_int8.tflite").read_bytes()
    array = read_c_array((tmp_path / "flowers.cc").read_text())
    assert array == strip_for_micro(exported) and f"C array: {len(array):,} bytes ({len(exported):,} in" in out
    alone = shutil.copy(trained_run / "model_int8.tflite", tmp_path / "alone.tflite")  # without its JSON
    assert main(["micro", "--model", str(alone), "--images", "1", "--no-strip",
                 "--out-dir", str(tmp_path / "kept")]) == 0
    source = (tmp_path / "kept" / "attendnext_model.cc").read_text()
    assert read_c_array(source) == exported
    names = json.loads((trained_run / "model_int8.json").read_text())["class_names"]
    assert len(names) == 5 and all(f'"{name}"' in source for name in names)  # read from inside the .tflite


def test_export_int8_ptq_from_the_trained_model(trained_run, tmp_path, capsys):
    target = tmp_path / "ptq.tflite"
    assert main(["export", "--model", str(trained_run / "float" / "final.keras"), "--mode", "int8-ptq",
                 "--data", "default", "--calibration-images", "16", "--out", str(target)]) == 0
    assert "XNNPACK partitions: 1" in capsys.readouterr().out
    meta = json.loads((tmp_path / "ptq.json").read_text())
    assert meta["class_names"] == FLOWERS  # from class_names.json beside the run
    stem = ["export", "--model", str(trained_run / "float" / "final.keras"), "--mode", "int8-ptq-float-stem",
            "--out", str(tmp_path / "stem.tflite")]
    assert main(stem) == 2
    assert "--mode int8-ptq-float-stem calibrates on real images" in capsys.readouterr().err
    assert main(stem + ["--data", "default", "--calibration-images", "16"]) == 0
    out = capsys.readouterr().out
    assert "XNNPACK partitions: 1" in out and "mode int8-ptq-float-stem" in out


def _three_class_folder(tmp_path, names=("daisy", "roses", "tulips")):
    from attendnext_keras.data import default_data_dir

    for split in ("train", "val"):
        for name in names:
            (tmp_path / split / name).mkdir(parents=True)
            source = sorted((default_data_dir() / split / "daisy").glob("*.jpg"))[:3]
            for path in source:
                (tmp_path / split / name / path.name).write_bytes(path.read_bytes())
    return tmp_path


def test_models_and_data_with_other_classes_are_refused(trained_run, tmp_path, capsys):
    folder = str(_three_class_folder(tmp_path / "three"))
    for model in ("float/final.keras", "model_int8.tflite"):
        assert main(["evaluate", "--model", str(trained_run / model), "--data", folder]) == 2
        err = capsys.readouterr().err
        assert "has 5 outputs but three/val has 3 classes" in err and len(err.strip().splitlines()) == 1
    renamed = str(_three_class_folder(tmp_path / "renamed", ("a", "b", "c", "d", "e")))
    assert main(["evaluate", "--model", str(trained_run / "model_int8.tflite"), "--data", renamed]) == 2
    assert "names or order differ" in capsys.readouterr().err
    assert main(["qat", "--model", str(trained_run / "float" / "final.keras"), "--data", folder, "--epochs", "1",
                 "--out", str(tmp_path / "q")]) == 2
    assert "has 5 outputs but three/train has 3 classes" in capsys.readouterr().err
    assert not (tmp_path / "q").exists()


def test_train_qat_export_chain(tmp_path, capsys, tiny_spec_file):
    float_dir, qat_dir = tmp_path / "float", tmp_path / "qat"
    tiny = ["--arch", tiny_spec_file]  # the chain, not the model, is under test: the tiny AttendNeXt traces fastest
    assert main(["train", "--data", "default", *tiny, "--input-size", "32", "--epochs", "1", "--batch-size", "50",
                 "--out", str(float_dir)]) == 0
    assert "val top-1" in capsys.readouterr().out
    assert {"final.keras", "best.keras", "class_names.json", "metrics.csv", "checkpoints", "config.json"} <= set(
        os.listdir(float_dir))

    # Resuming a finished run trains nothing more and keeps the checkpoint's epoch.
    assert main(["train", "--data", "default", *tiny, "--input-size", "32", "--epochs", "1", "--batch-size", "50",
                 "--out", str(float_dir), "--resume"]) == 0
    assert "Resuming from" in capsys.readouterr().err

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
    assert meta["class_names"] == FLOWERS and meta["fully_int8"]


def test_run_takes_a_config_file_and_flags_override_it(tmp_path, capsys, tiny_spec_file):
    config = tmp_path / "run.yaml"
    config.write_text(f"steps: [train, export, evaluate]\nout_dir: {tmp_path / 'out'}\n"
                      f"model: {{name: '{tiny_spec_file}', input_size: 32}}\n"
                      "train: {epochs: 1}\nexport: {modes: [float32]}\n")
    assert main(["run", "--config", str(config), "--batch-size", "50"]) == 0
    assert "| TFLite float32 |" in capsys.readouterr().out
    saved = (tmp_path / "out" / "config.yaml").read_text()
    assert "batch_size: 50" in saved and "epochs: 1" in saved


# ---------------------------------------------------------------------------------------------------------------------
# Mistakes: one line, exit 2


@pytest.mark.parametrize("argv, message", [
    (["evaluate", "--model", "missing.keras"], "does not exist"),
    (["export", "--model", "model.onnx", "--out", "m.tflite"], "does not exist"),
    (["predict", "x.jpg", "--model", "missing.tflite"], "missing.tflite"),
    (["train", "--data", "/no/such/folder", "--epochs", "1"], "/no/such/folder"),
    (["train", "--variant", "micro", "--input-size", "100"], "multiples of 32"),
    (["train", "--input-size", "0"], "model.input_size: must be a positive number of pixels, got 0"),
    (["train", "--lr", "nan"], "train.learning_rate: expected a finite number, got nan"),
    (["train", "--variant", "huge"], "Unknown model 'huge'"),
    (["run", "--data", "tfds:no_such_dataset_xyz"], "no_such_dataset_xyz"),
    (["profile", "--variant", "micro", "--input-size", "100"], "multiples of 32"),
    (["explore", "--storage", "bogus", "--trials", "0"], "--storage must be a database URL"),
    (["micro", "--model", "m.tflite", "--images", "0"], "micro.images: must be at least 1, got 0"),
    (["qat", "--model", "m.keras", "--epochs", "0"], "qat.epochs"),  # qat's own section, not train's
    (["models", "zzz*"], "No model matches 'zzz*'"),
    (["profile", "--variant", "micro", "--arch", "mobilenet_v2"], "both name the model: give one"),
    (["predict", "x.jpg", "--model", "m.tflite", "--top-k", "0"], "--top-k must be at least 1, got 0"),
    (["train", "--resume", "--overwrite", "--epochs", "1"], "`resume` and `overwrite` exclude each other"),
])
def test_user_errors_are_one_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"attendnext {argv[0]}: ") and message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize("text, message", [
    ("train:\n  learning_rate: '0.01'\n", "train.learning_rate: expected a number, got '0.01'"),
    ("train: [oops\n", "is not valid YAML"),
    ("train:\n  seed: abc\n", "train.seed: expected an integer, got 'abc'"),
    ("trian: {}\n", "trian: unknown key; did you mean 'train'?"),
])
def test_bad_config_files_are_one_line(tmp_path, text, message, capsys):
    path = tmp_path / "run.yaml"
    path.write_text(text)
    assert main(["train", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("attendnext train: config error:") and str(path) in err and message in err
    assert len(err.strip().splitlines()) == 1


def test_files_that_are_not_what_they_claim(tmp_path, capsys):
    text = tmp_path / "model.keras"
    text.write_text("not a zip file")
    assert main(["export", "--model", str(text), "--out", str(tmp_path / "m.tflite")]) == 2
    assert "is not a Keras model: a .keras file is a zip archive" in capsys.readouterr().err
    afile = tmp_path / "afile.txt"
    afile.write_text("x")
    assert main(["micro", "--model", str(text), "--out-dir", str(afile)]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["afile.txt", "model.keras"]


def test_argument_errors_are_one_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["micro", "--layout", "zephyr"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and len(err.strip().splitlines()) == 1
    assert err.startswith("attendnext micro: error: argument --layout: invalid choice") and "--help" in err


def test_models_that_are_not_image_classifiers_are_refused_by_name(tmp_path, capsys):
    import keras

    vector = keras.Sequential([keras.Input((10,)), keras.layers.Dense(5)])
    vector.save(tmp_path / "vector.keras")
    for argv in (["evaluate", "--model", str(tmp_path / "vector.keras")],
                 ["export", "--model", str(tmp_path / "vector.keras"), "--out", str(tmp_path / "v.tflite")]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "'vector.keras' takes input of shape (None, 10); attendnext works with image classifiers" in err.replace(
            str(tmp_path) + os.sep, "")
    assert not (tmp_path / "v.tflite").exists()


def test_micro_and_benchmark_refuse_files_that_do_not_describe_what_they_claim(trained_run, tmp_path, capsys):
    model = tmp_path / "m.tflite"
    shutil.copy(trained_run / "model_int8.tflite", model)
    metadata = json.loads((trained_run / "model_int8.json").read_text())
    (tmp_path / "m.json").write_text(json.dumps({**metadata, "class_names": ["a", "b"]}))
    assert main(["micro", "--model", str(model), "--out-dir", str(tmp_path / "c")]) == 2
    assert "gives 2 class names (the model has 5 classes)" in capsys.readouterr().err
    (tmp_path / "peers.json").write_text('{"foo": 1}')
    assert main(["benchmark", "--from-json", str(tmp_path / "peers.json"), "--out", str(tmp_path / "b")]) == 2
    assert "is not an `attendnext benchmark` result" in capsys.readouterr().err
    assert not (tmp_path / "c").exists() and not (tmp_path / "b").exists()


def test_every_flag_has_help():
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command").choices
    assert {"run", "train", "qat", "export", "evaluate", "predict", "profile", "benchmark", "micro", "explore",
            "models"} <= set(subparsers)
    for name, sub in subparsers.items():
        for action in sub._actions:
            if action.dest != "help":
                assert action.help, f"attendnext {name} {action.option_strings or action.dest} has no help"

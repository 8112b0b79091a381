"""The `attendnext` command line: happy paths on tiny settings and one-line errors."""

import json
import re

from attendnext_keras.cli import main


def test_variants(capsys):
    assert main(["variants"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ("base", "small", "micro"))


def test_profile_json_reflects_flags(capsys):
    assert main(["profile", "--variant", "micro", "--input-size", "64", "--classes", "5", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["layers"][-1]["name"] == "predictions" and result["params"] > 0
    assert result["groups"]["head"]["macs"] == 112 * 5  # GAP → Dense(5) on 112 channels


def test_profile_table_shows_the_built_spec(capsys):
    assert main(["profile", "--variant", "micro", "--input-size", "64", "--alpha", "2"]) == 0
    out = capsys.readouterr().out
    assert "input 64×64" in out and "width ×0.6" in out and "total" in out


def test_bad_input_size_is_a_one_line_error(capsys):
    assert main(["profile", "--variant", "micro", "--input-size", "100"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("attendnext profile: error:") and "multiples of 32" in err and "Traceback" not in err


# ---------------------------------------------------------------------------------------------------------------------
# The main job and the commands that use its outputs (one tiny run shared by the module)

import os  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(scope="module")
def main_job(tmp_path_factory):
    out = tmp_path_factory.mktemp("main")
    code = main(["run", "--epochs", "1", "--qat-epochs", "1", "--input-size", "32", "--runs", "5", "--out", str(out)])
    assert code == 0
    return out


def test_run_writes_every_artefact_and_a_summary(main_job):
    files = set(os.listdir(main_job))
    assert {"model_float32.tflite", "model_float32.json", "model_int8.tflite", "model_int8.json", "float", "qat",
            "tflite", "summary.json", "summary.md", "class_names.json"} <= files
    summary = json.loads((main_job / "summary.json").read_text())
    formats = [row["format"] for row in summary["rows"]]
    assert formats == ["Keras float32", "Keras QAT (fake-quant)", "TFLite float32", "TFLite int8 (QAT)",
                       "TFLite int8 on TFLM"]
    assert all(row["examples"] == 100 and 0 <= row["top1"] <= 1 for row in summary["rows"])
    int8 = summary["rows"][3]
    assert int8["partitions"] == 1 and summary["int8_report"]["fully_int8"]
    assert summary["micro"]["arena_bytes"] > 0 and summary["micro"]["max_lsb_vs_litert_reference"] <= 8
    assert summary["micro"]["top1_agreement"] >= 0.875
    assert "| TFLite int8 on TFLM |" in (main_job / "summary.md").read_text()
    assert sorted(os.listdir(main_job / "tflite")) == ["attendnext_model.cc", "attendnext_model.h",
                                                       "attendnext_model_op_resolver.h"]


def test_evaluate_keras_and_tflite(main_job, capsys):
    assert main(["evaluate", "--model", str(main_job / "float" / "final.keras"), "--json"]) == 0
    keras_result = json.loads(capsys.readouterr().out)
    assert main(["evaluate", "--model", str(main_job / "model_float32.tflite"), "--json"]) == 0
    tflite_result = json.loads(capsys.readouterr().out)
    assert keras_result["examples"] == tflite_result["examples"] == 100
    assert abs(keras_result["top1"] - tflite_result["top1"]) <= 0.02  # same pixels, float32 kernels


def test_predict_prints_labels(main_job, capsys):
    from attendnext_keras.data import default_data_dir

    image = str(sorted((default_data_dir() / "val" / "roses").glob("*.jpg"))[0])
    assert main(["predict", image, "--model", str(main_job / "model_int8.tflite"), "--top-k", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert len(result) == 1 and len(result[0]["predictions"]) == 2
    assert {p["label"] for p in result[0]["predictions"]} <= {"daisy", "dandelion", "roses", "sunflowers", "tulips"}


def test_micro_writes_c_sources(main_job, tmp_path, capsys):
    assert main(["micro", "--model", str(main_job / "model_int8.tflite"), "--images", "4",
                 "--out-dir", str(tmp_path), "--name", "flowers", "--per-op"]) == 0
    out = capsys.readouterr().out
    assert "TFLite Micro arena:" in out and "top-1 agreement" in out
    assert re.search(r"DEPTHWISE_CONV_2D\s+\d+ ops\s+≤ [01] LSB", out)
    assert sorted(os.listdir(tmp_path)) == ["flowers.cc", "flowers.h", "flowers_op_resolver.h"]


def test_export_int8_ptq_from_the_trained_model(main_job, tmp_path, capsys):
    target = tmp_path / "ptq.tflite"
    assert main(["export", "--model", str(main_job / "float" / "final.keras"), "--mode", "int8-ptq",
                 "--data", "default", "--calibration-images", "16", "--out", str(target)]) == 0
    assert "XNNPACK partitions: 1" in capsys.readouterr().out
    meta = json.loads((tmp_path / "ptq.json").read_text())
    assert meta["class_names"] == ["daisy", "dandelion", "roses", "sunflowers", "tulips"]  # from class_names.json


@pytest.mark.parametrize("argv, message", [
    (["evaluate", "--model", "missing.keras"], "does not exist"),
    (["export", "--model", "model.onnx", "--out", "m.tflite"], "does not exist"),
    (["predict", "x.jpg", "--model", "missing.tflite"], "missing.tflite"),
    (["train", "--data", "/no/such/folder", "--epochs", "1"], "/no/such/folder"),
    (["train", "--variant", "micro", "--input-size", "100"], "multiples of 32"),
    (["run", "--data", "tfds:no_such_dataset_xyz"], "no_such_dataset_xyz"),
])
def test_user_errors_are_one_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"attendnext {argv[0]}: error:") and message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_wrong_variant_name_is_refused_by_argparse(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--variant", "huge"])
    assert exit_info.value.code == 2 and "invalid choice: 'huge'" in capsys.readouterr().err


def test_export_refuses_a_file_that_is_not_a_model(tmp_path, capsys):
    bogus = tmp_path / "model.keras"
    bogus.write_bytes(b"not a zip file")
    assert main(["export", "--model", str(bogus), "--out", str(tmp_path / "m.tflite")]) == 2
    assert "Cannot load" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["model.keras"]


def test_every_flag_has_help():
    from attendnext_keras.cli import build_parser

    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command").choices
    assert {"run", "train", "qat", "export", "evaluate", "predict", "profile", "benchmark", "micro"} <= set(subparsers)
    for name, sub in subparsers.items():
        for action in sub._actions:
            if action.dest != "help":
                assert action.help, f"attendnext {name} {action.option_strings or action.dest} has no help"

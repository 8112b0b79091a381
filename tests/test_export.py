"""Export: .tflite + metadata JSON, the conversion report (deploy.report, deploy.metadata), and bad input."""

import json
import os
import re

import numpy as np
import pytest

import attendnext_keras as an
from attendnext_keras.deploy.export import export
from attendnext_keras.deploy.litert import load_interpreter
from attendnext_keras.deploy.metadata import load_metadata
from attendnext_keras.deploy.report import conversion_report

CLASSES = ["daisy", "dandelion", "roses", "sunflowers", "tulips"]


@pytest.fixture(scope="module")
def images(flower_images):
    return flower_images  # 8 real photographs, 64×64, pixels in [0, 255]


@pytest.fixture(scope="module")
def micro_export(tmp_path_factory, images):
    """The micro variant at 64 px, 5 classes, logits, exported to int8 (PTQ on real photographs)."""
    import keras

    keras.utils.set_random_seed(0)  # the same weights on every run and worker, so the LSB figures below are stable
    model = an.AttendNeXt(variant="micro", input_shape=(64, 64, 3), classes=5, classifier_activation=None)
    path = tmp_path_factory.mktemp("export") / "micro.tflite"
    return model, export(model, path, "int8-ptq", representative_data=images, class_names=CLASSES)


def _tiny(activation="relu", pool="max"):
    import keras

    inp = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", name="conv")(inp)
    x = keras.layers.Activation(activation, name="act")(x)
    x = (keras.layers.MaxPooling2D(2, name="pool") if pool == "max" else keras.layers.AveragePooling2D(2, name="pool"))(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inp, keras.layers.Dense(3, name="head")(x), name="tiny")


def _calibration():
    return np.random.default_rng(0).uniform(0, 255, (8, 16, 16, 3)).astype("float32")


def test_export_writes_model_and_metadata(micro_export):
    model, result = micro_export
    assert os.path.getsize(result.path) == result.report.size_bytes
    assert load_metadata(result.path) == result.metadata
    meta = result.metadata
    detail = load_interpreter(open(result.path, "rb").read()).get_input_details()[0]
    assert meta["input"]["scale"] == pytest.approx(detail["quantization"][0])
    assert meta["input"]["zero_point"] == detail["quantization"][1]
    assert meta["input"]["dtype"] == "int8" and meta["output"]["dtype"] == "int8"
    assert meta["output"]["kind"] == "logits" and meta["class_names"] == CLASSES
    assert meta["input_size"] == [64, 64] and meta["preprocessing"]["crop_pct"] == 0.875
    assert sorted(os.listdir(os.path.dirname(result.path))) == ["micro.json", "micro.tflite"]


def test_int8_report_is_clean(micro_export):
    report = micro_export[1].report
    assert report.fully_int8 and report.float_ops == [] and report.float_activation_tensors == 0
    assert report.partitions == 1 and report.outside_xnnpack == []
    assert report.micro_unsupported == [] and report.problems() == []
    assert 0 < report.weight_bytes < report.size_bytes
    assert "XNNPACK partitions: 1" in report.summary()


def test_float_io_keeps_quantize_at_the_edges_only(tmp_path):
    result = export(_tiny(), tmp_path / "t.tflite", "int8-ptq", representative_data=_calibration(), int8_io=False)
    report = result.report
    assert report.input["dtype"] == "float32" and report.output["dtype"] == "float32"
    assert {"QUANTIZE", "DEQUANTIZE"} <= set(report.op_histogram)
    assert report.fully_int8 and report.problems() == []


def test_float32_export_metadata(tmp_path):
    result = export(_tiny(), tmp_path / "f.tflite", "float32")
    assert result.metadata["input"]["dtype"] == "float32" and result.metadata["class_names"] is None
    assert result.report.micro_unsupported is None  # not checked for float exports unless asked


def test_report_names_the_layers_that_leave_xnnpack(tmp_path, caplog):
    result = export(_tiny("hard_swish", "avg"), tmp_path / "h.tflite", "int8-ptq", representative_data=_calibration())
    logged = " ".join(r.getMessage() for r in caplog.records if r.levelname == "WARNING")
    assert re.search(r"HARD_SWISH \(layer 'act'\).*AVERAGE_POOL_2D \(layer 'pool'\)", logged)
    assert result.report.partitions == 2
    assert [(i.op, i.layer) for i in result.report.outside_xnnpack] == [("HARD_SWISH", "act"),
                                                                         ("AVERAGE_POOL_2D", "pool")]


def test_strict_export_refuses_and_writes_nothing(tmp_path):
    with pytest.raises(ValueError, match="nothing written.*HARD_SWISH"):
        export(_tiny("hard_swish"), tmp_path / "h.tflite", "int8-ptq", representative_data=_calibration(),
               strict=True)
    assert list(tmp_path.iterdir()) == []


def test_float_ops_in_dynamic_mode_are_named():
    """Dynamic-range quantization keeps float activations: every op is a float op, named by its layer (the
    convolution's output carries the fused activation's name; the last op points at the layer feeding it)."""
    from attendnext_keras.deploy.conversion import to_tflite

    model = _tiny()
    report = conversion_report(to_tflite(model, "dynamic"), model=model, mode="int8-ptq", check_micro=False)
    assert not report.fully_int8 and len(report.float_ops) == sum(report.op_histogram.values())
    assert {i.layer for i in report.float_ops} == {"act", "pool", "gap", "after gap"}
    assert "compute in float" in report.problems()[0]


def test_float_stem_export_reports_float_only_where_it_should(tmp_path):
    """An int8-ptq-float-stem export has float ops in its stem by design, which the report does not call a problem,
    while a float op after the stem (HARD_SWISH has no int8 kernel in the converter's builtins here) is one."""
    model = _tiny()
    result = export(model, tmp_path / "fs.tflite", "int8-ptq-float-stem", representative_data=_calibration())
    assert result.report.problems() == [] and result.report.partitions == 1
    assert [i.op for i in result.report.float_ops] == ["DEQUANTIZE", "CONV_2D", "QUANTIZE"]
    assert result.metadata["mode"] == "int8-ptq-float-stem"
    with open(result.path, "rb") as f:
        report = conversion_report(f.read(), model=model, mode="int8-ptq-float-stem", check_micro=False)
    report.float_ops.append(report.float_ops[1])  # a float op after the stem's QUANTIZE
    assert "after the float32 stem: CONV_2D" in report.problems()[0]


def test_calibrated_modes_refuse_a_qat_model_and_the_float_stem_refuses_npus(tmp_path):
    from attendnext_keras.deploy.conversion import to_tflite
    from attendnext_keras.quantization import quantize_model

    qat = quantize_model(_tiny())
    for mode in ("int8-ptq", "int8-ptq-float-stem"):
        with pytest.raises(ValueError, match="quantization-aware model.*mode='int8'"):
            to_tflite(qat, mode, representative_data=_calibration())
    with pytest.raises(ValueError, match="Ethos-U NPUs run int8 models"):
        export(_tiny(), tmp_path / "m.tflite", "int8-ptq-float-stem", representative_data=_calibration(),
               target="ethos-u55-128")
    assert list(tmp_path.iterdir()) == []


def test_float_stem_that_quantizes_the_stem_anyway_is_an_error(monkeypatch):
    """TensorFlow ignores denylisted names it cannot find: a silent fully int8 model is refused."""
    from attendnext_keras.deploy import conversion

    real = conversion._ops_through_first_conv
    monkeypatch.setattr(conversion, "_ops_through_first_conv",
                        lambda blob: [dict(op, outputs=["no such tensor"]) for op in real(blob)])
    with pytest.raises(ValueError, match="quantized the first convolution anyway"):
        conversion.to_tflite(_tiny(), "int8-ptq-float-stem", representative_data=_calibration())


def test_float_stem_refuses_a_model_with_work_before_its_first_convolution():
    import keras

    from attendnext_keras.deploy.conversion import to_tflite

    inp = keras.Input((8, 8, 3))
    x = keras.layers.Dense(3)(inp)  # FULLY_CONNECTED before the first convolution
    model = keras.Model(inp, keras.layers.Conv2D(4, 3)(x))
    with pytest.raises(ValueError, match="ops before the first convolution.*FULLY_CONNECTED"):
        to_tflite(model, "int8-ptq-float-stem", representative_data=[np.zeros((2, 8, 8, 3))])


# ---------------------------------------------------------------------------------------------------------------------
# Bad input


def test_export_to_a_missing_or_impossible_folder_fails_before_converting(tmp_path, monkeypatch):
    import attendnext_keras.deploy.export as export_module

    def never(*args, **kwargs):
        raise AssertionError("converted although the output path cannot be written")

    monkeypatch.setattr(export_module, "to_tflite", never)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        export(_tiny(), tmp_path / "missing" / "m.tflite", "float32")
    (tmp_path / "afile").write_text("x")  # a parent that is a file fails for root too (CI runs as root)
    with pytest.raises(NotADirectoryError, match="is a file, not a folder"):
        export(_tiny(), tmp_path / "afile" / "m.tflite", "float32")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def test_export_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match=r"end in \.tflite"):
        export(_tiny(), tmp_path / "m.bin", "float32")
    with pytest.raises(ValueError, match="3 outputs but 2 class names"):
        export(_tiny(), tmp_path / "m.tflite", "float32", class_names=["a", "b"])
    with pytest.raises(ValueError, match=r"shape \(16, 16, 3\)"):
        export(_tiny(), tmp_path / "m.tflite", "int8-ptq", representative_data=np.zeros((4, 32, 32, 3)))
    assert list(tmp_path.iterdir()) == []


def test_metadata_that_is_not_ours(tmp_path):
    (tmp_path / "m.tflite").write_bytes(b"x")
    assert load_metadata(tmp_path / "m.tflite") is None
    (tmp_path / "m.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_metadata(tmp_path / "m.tflite")
    (tmp_path / "m.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(ValueError, match="not attendnext_keras metadata"):
        load_metadata(tmp_path / "m.tflite")

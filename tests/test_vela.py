"""Arm Ethos-U through Vela (deploy.vela): per-target upsampling (same outputs, other TFLite ops), Vela's report
(NPU and CPU ops named by layer, SRAM, flash, estimated time), export --target, and the errors a user can meet."""

import importlib.util
import json
import os
import sys

import numpy as np
import pytest

import attendnext_keras as an
from attendnext_keras import layers
from attendnext_keras._keras import get_keras
from attendnext_keras.cli import main
from attendnext_keras.deploy import vela
from attendnext_keras.deploy.conversion import to_tflite
from attendnext_keras.deploy.export import export
from attendnext_keras.deploy.litert import graph_ops
from attendnext_keras.deploy.report import conversion_report

needs_vela = pytest.mark.skipif(importlib.util.find_spec("ethosu") is None, reason="ethos-u-vela is not installed")


def _ops(blob) -> set:
    return {op["op"] for op in graph_ops(blob)}


def _lowerings(model) -> set:
    found = set()
    for layer in model.layers:
        layer = getattr(layer, "layer", layer)  # a tfmot QuantizeWrapper holds the real layer
        if hasattr(layer, "lowering"):
            found.add(layer.lowering)
        if hasattr(layer, "expansion"):
            found.add(layer.expansion)
    return found


def _tiny(flavour="keras", condenser_layer=False):
    """Conv → DC-AC (flat built-in layers, or the composite layer) → NearestUpsample2D → logits; 16 px."""
    keras = get_keras(flavour)
    L = layers.for_flavour(flavour)
    inp = keras.Input((16, 16, 3), name="image")
    x = keras.layers.Conv2D(8, 3, padding="same", name="conv")(inp)
    if condenser_layer:
        x = L.DoubleCondensingAttentionCondenser(condense_factor=2, embed_channels=4, name="dcac")(x)
    else:
        x = layers.apply_dcac(x, name="dcac", keras=flavour, condense_factor=2, embed_channels=4)
    x = keras.layers.MaxPooling2D(4, name="pool")(x)
    x = L.NearestUpsample2D(2, name="up")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inp, keras.layers.Dense(3, name="head")(x), name="tiny")


def _images(size=16, count=8):
    return np.random.default_rng(0).uniform(0, 255, (count, size, size, 3)).astype("float32")


@pytest.fixture(scope="module")
def micro():
    """The micro variant at 64 px, 5 classes: (model, its Ethos-U twin, int8 of each) — PTQ on noise."""
    import keras

    keras.utils.set_random_seed(0)
    model = an.create_model("attendnext_micro", input_size=64, classes=5)
    npu_model = vela.for_target(model, "ethos-u55-128")
    images = _images(64, 8)
    return (model, npu_model, to_tflite(model, "int8-ptq", representative_data=images),
            to_tflite(npu_model, "int8-ptq", representative_data=images))


# ---------------------------------------------------------------------------------------------------------------------
# NearestUpsample2D's lowering


@pytest.mark.parametrize("flavour", ["keras", "tf_keras"])
@pytest.mark.parametrize("size", [1, 2, 3, 4])
def test_upsample_lowerings_give_identical_values(flavour, size, rng):
    L = layers.for_flavour(flavour)
    x = rng.normal(size=(2, 3, 5, 4)).astype("float32")
    a = np.asarray(L.NearestUpsample2D(size)(x))
    b = np.asarray(L.NearestUpsample2D(size, lowering="resize")(x))
    assert np.abs(a - b).max() == 0
    np.testing.assert_array_equal(b, np.repeat(np.repeat(x, size, axis=1), size, axis=2))


@pytest.mark.parametrize("flavour", ["keras", "tf_keras"])
def test_upsample_lowering_round_trips(flavour):
    cls = layers.for_flavour(flavour).NearestUpsample2D
    layer = cls(4, lowering="resize", name="up")
    assert layer.get_config()["lowering"] == "resize"
    assert cls.from_config(layer.get_config()).get_config() == layer.get_config()
    assert cls(2).lowering == "depth_to_space"
    with pytest.raises(ValueError, match="`lowering` must be one of"):
        cls(2, lowering="bilinear")


@pytest.mark.parametrize("lowering,expected,absent", [("depth_to_space", {"CONCATENATION", "DEPTH_TO_SPACE"},
                                                       "RESIZE_NEAREST_NEIGHBOR"),
                                                      ("resize", {"RESIZE_NEAREST_NEIGHBOR"}, "DEPTH_TO_SPACE")])
def test_upsample_lowering_tflite_ops(lowering, expected, absent):
    keras = get_keras("keras")
    inp = keras.Input((6, 6, 3))
    model = keras.Model(inp, layers.NearestUpsample2D(2, lowering=lowering, name="up")(inp))
    for mode in ("float32", "int8-ptq"):
        ops = _ops(to_tflite(model, mode, representative_data=_images(6)))
        assert expected <= ops and absent not in ops, (mode, ops)


# ---------------------------------------------------------------------------------------------------------------------
# for_target


@pytest.mark.parametrize("flavour", ["keras", "tf_keras"])
@pytest.mark.parametrize("condenser_layer", [False, True])
def test_retargeting_keeps_outputs_and_swaps_the_upsampling(flavour, condenser_layer):
    model = _tiny(flavour, condenser_layer)
    npu = vela.for_target(model, "ethos-u65-256")
    x = _images()
    np.testing.assert_array_equal(np.asarray(model(x)), np.asarray(npu(x)))
    assert _lowerings(model) == {"depth_to_space"} and _lowerings(npu) == {"resize"}
    assert [layer.name for layer in npu.layers] == [layer.name for layer in model.layers]
    assert _lowerings(vela.for_target(npu, "xnnpack")) == {"depth_to_space"}
    assert vela.for_target(npu, "ethos-u55-128") is npu  # nothing to change: the model itself


def test_retargeting_the_micro_variant(micro):
    model, npu_model, blob, npu_blob = micro
    x = _images(64, 4)
    np.testing.assert_array_equal(model.predict(x, verbose=0), npu_model.predict(x, verbose=0))
    assert "DEPTH_TO_SPACE" in _ops(blob) and "RESIZE_NEAREST_NEIGHBOR" not in _ops(blob)
    assert "RESIZE_NEAREST_NEIGHBOR" in _ops(npu_blob) and "DEPTH_TO_SPACE" not in _ops(npu_blob)


def test_a_model_without_upsampling_is_returned_as_it_is():
    keras = get_keras("keras")
    inp = keras.Input((8, 8, 3))
    model = keras.Model(inp, keras.layers.Conv2D(4, 3, name="conv")(inp))
    assert vela.for_target(model, "ethos-u55-128") is model


def test_retargeted_qat_model_exports_fully_int8():
    from attendnext_keras.quantization import quantize_model

    qat = quantize_model(_tiny("keras"))
    npu = vela.for_target(qat, "ethos-u55-128")
    x = _images()
    np.testing.assert_array_equal(qat.predict(x, verbose=0), npu.predict(x, verbose=0))
    assert _lowerings(npu) == {"resize"}
    blob = to_tflite(npu, "int8")
    report = conversion_report(blob, model=npu, mode="int8", check_micro=False)
    assert report.fully_int8, report.summary()
    assert "RESIZE_NEAREST_NEIGHBOR" in report.op_histogram and "DEPTH_TO_SPACE" not in report.op_histogram
    assert "QUANTIZE" not in report.op_histogram and "DEQUANTIZE" not in report.op_histogram


# ---------------------------------------------------------------------------------------------------------------------
# compile_for_npu


@needs_vela
def test_vela_runs_the_retargeted_micro_entirely_on_the_npu(micro):
    _, npu_model, _, npu_blob = micro
    report = vela.compile_for_npu(npu_blob, "ethos-u55-128", model=npu_model, per_layer=True)
    assert report.cpu_ops == [] and report.problems() == [] and report.npu_partitions == 1
    assert sum(report.npu_ops.values()) == len(graph_ops(npu_blob))
    assert report.npu_ops["RESIZE_NEAREST_NEIGHBOR"] > 0
    assert report.sram_bytes > 0 and report.flash_bytes > 0 and report.cycles > 0 and report.macs > 0
    assert report.clock_mhz == 500 and report.inference_ms == pytest.approx(report.cycles / 500e3, rel=1e-3)
    assert report.system_config and report.memory_mode and report.vela_version.startswith("5.")
    assert report.compiled[4:8] == b"TFL3" and _ops(report.compiled) == {"ethos-u"}
    assert report.compiled_bytes == len(report.compiled)
    assert sum(row["cycles"] for row in report.per_layer) == report.cycles
    layer_names = {layer.name for layer in npu_model.layers}
    assert "stem_conv" in report.cycles_by_layer() or "stem_relu" in report.cycles_by_layer()
    assert sum(name in layer_names for name in report.cycles_by_layer()) > 0.9 * len(report.cycles_by_layer())
    assert json.loads(json.dumps(report.as_dict()))["accelerator"] == "ethos-u55-128"
    assert "compiled" not in report.as_dict()


@needs_vela
def test_vela_names_the_cpu_fallbacks_of_the_xnnpack_graph(micro):
    model, _, blob, _ = micro
    report = vela.compile_for_npu(blob, "ethos-u55-128", model=model)
    assert report.cpu_ops and {issue.op for issue in report.cpu_ops} == {"DEPTH_TO_SPACE"}
    assert all(issue.layer and issue.layer.endswith("_dcac_upsample") for issue in report.cpu_ops)
    assert report.npu_partitions == len(report.cpu_ops) + 1
    assert sum(report.npu_ops.values()) + len(report.cpu_ops) == len(graph_ops(blob))
    (problem,) = report.problems()
    assert "fall back to the CPU on ethos-u55-128" in problem and "_dcac_upsample" in problem


@needs_vela
def test_vela_accelerators_are_velas_own():
    from ethosu.vela.architecture_features import Accelerator

    assert set(vela.ETHOS_U) == set(Accelerator.member_list())


# ---------------------------------------------------------------------------------------------------------------------
# export --target


@needs_vela
def test_export_for_an_npu_writes_velas_file_and_metadata(tmp_path):
    path = tmp_path / "tiny.tflite"
    result = export(_tiny(), path, "int8-ptq", representative_data=_images(), target="ethos-u55-128")
    blob = path.read_bytes()
    assert _ops(blob) == {"ethos-u"} and result.report.vela.compiled in blob
    meta = json.loads((tmp_path / "tiny.json").read_text())
    assert meta["target"] == "ethos-u55-128" and meta["xnnpack_partitions"] is None
    assert meta["vela"]["cpu_ops"] == [] and meta["vela"]["inference_ms"] > 0 and meta["vela"]["sram_bytes"] > 0
    assert meta["input"]["dtype"] == "int8" and meta["fully_int8"]
    assert "RESIZE_NEAREST_NEIGHBOR" in result.report.op_histogram
    summary = result.report.summary()
    assert "ethos-u55-128" in summary and "PROBLEM" not in summary and "estimated" in summary
    assert json.loads(json.dumps(result.report.as_dict()))["vela"]["npu_partitions"] == 1
    from attendnext_keras.deploy.predictor import Predictor

    with pytest.raises(ValueError, match="compiled for an Arm Ethos-U NPU .*Export without --target"):
        Predictor(path)  # it runs on the device, not on LiteRT: say so instead of "unresolved custom op"


@needs_vela
def test_a_failed_vela_compile_leaves_nothing(tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise RuntimeError("Vela could not compile the model for ethos-u55-128: boom")

    monkeypatch.setattr(vela, "compile_for_npu", fail)
    with pytest.raises(RuntimeError, match="boom"):
        export(_tiny(), tmp_path / "tiny.tflite", "int8-ptq", representative_data=_images(), target="ethos-u55-128")
    assert os.listdir(tmp_path) == []


def test_bad_targets_are_one_line_errors(tmp_path):
    model = _tiny()
    with pytest.raises(ValueError, match=r"Unknown target 'ethos-u99'\. Known targets: xnnpack, ethos-u55-32, .*"
                                         r"ethos-u85-2048\."):
        export(model, tmp_path / "m.tflite", "int8-ptq", representative_data=_images(), target="ethos-u99")
    with pytest.raises(ValueError, match="Ethos-U NPUs run int8 models"):
        export(model, tmp_path / "m.tflite", "float32", target="ethos-u55-128")
    with pytest.raises(ValueError, match="Unknown Ethos-U accelerator 'xnnpack'"):
        vela.compile_for_npu(b"1234TFL3", "xnnpack")
    assert os.listdir(tmp_path) == []


def test_missing_vela_is_one_line_naming_the_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ethosu.vela", None)  # `import ethosu.vela` now raises ImportError
    hint = r'pip install "attendnext_keras\[vela\]"'
    with pytest.raises(RuntimeError, match=hint):
        export(_tiny(), tmp_path / "m.tflite", "int8-ptq", representative_data=_images(), target="ethos-u55-128")
    with pytest.raises(RuntimeError, match=hint):
        vela.compile_for_npu(b"1234TFL3", "ethos-u55-128")
    assert os.listdir(tmp_path) == []


def test_cli_export_target_errors(tmp_path, capsys, monkeypatch):
    out = str(tmp_path / "m.tflite")
    assert main(["export", "--model", str(tmp_path / "none.keras"), "--out", out, "--target", "npu"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Unknown target 'npu'" in err and "ethos-u55-128" in err
    monkeypatch.setitem(sys.modules, "ethosu.vela", None)
    assert main(["export", "--model", str(tmp_path / "none.keras"), "--out", out, "--target", "ethos-u55-128"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and 'pip install "attendnext_keras[vela]"' in err


@needs_vela
def test_cli_export_target(tmp_path, capsys):
    model_path = tmp_path / "tiny.keras"
    _tiny().save(model_path)
    out = tmp_path / "tiny.tflite"
    assert main(["export", "--model", str(model_path), "--out", str(out), "--mode", "int8-ptq", "--data",
                 "default", "--calibration-images", "8", "--target", "ethos-u55-128"]) == 0
    printed = capsys.readouterr().out
    assert "Vela" in printed and "ethos-u55-128" in printed and "0 on the CPU" in printed
    assert _ops(out.read_bytes()) == {"ethos-u"}
    assert json.loads((tmp_path / "tiny.json").read_text())["target"] == "ethos-u55-128"

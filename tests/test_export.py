"""Export: .tflite + metadata JSON, the conversion report, C sources for TFLite Micro, and bad input."""

import json
import os
import shutil
import subprocess

import numpy as np
import pytest

import attendnext_keras as an
from attendnext_keras.export import ExportWarning, conversion_report, export, load_metadata
from attendnext_keras.micro import (compare_ops_with_litert, compare_with_litert, model_ops, read_c_array,
                                    resolver_method, write_c_sources)
from attendnext_keras.runtime import load_interpreter

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


def test_report_names_the_layers_that_leave_xnnpack(tmp_path):
    with pytest.warns(ExportWarning, match=r"HARD_SWISH \(layer 'act'\).*AVERAGE_POOL_2D \(layer 'pool'\)"):
        result = export(_tiny("hard_swish", "avg"), tmp_path / "h.tflite", "int8-ptq",
                        representative_data=_calibration())
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
    from attendnext_keras.conversion import to_tflite

    model = _tiny()
    report = conversion_report(to_tflite(model, "dynamic"), model=model, mode="int8-ptq", check_micro=False)
    assert not report.fully_int8 and len(report.float_ops) == sum(report.op_histogram.values())
    assert {i.layer for i in report.float_ops} == {"act", "pool", "gap", "after gap"}
    assert "compute in float" in report.problems()[0]


# ---------------------------------------------------------------------------------------------------------------------
# TensorFlow Lite Micro and C sources


@pytest.fixture(scope="module")
def micro_blob(micro_export):
    with open(micro_export[1].path, "rb") as f:
        return f.read()


@pytest.fixture(scope="module")
def litert_comparison(micro_blob, images):
    return compare_with_litert(micro_blob, images)


def test_tflm_matches_litert_on_real_images(litert_comparison):
    result = litert_comparison
    assert result["images"] == 8 and 0 < result["arena_bytes"] < 256 * 1024
    # Each op differs by at most 1 LSB (test below), but ~170 ops in sequence accumulate it: over six random-weight
    # micro models and 40 photographs the logits differed by 2-5 LSB from LiteRT's built-in kernels and 3-5 LSB from
    # XNNPACK, with top-1 always the same.
    assert result["max_lsb_vs_litert_reference"] <= 6
    assert result["max_lsb_vs_xnnpack"] <= 6 and result["top1_agreement"] >= 0.875


def test_tflm_ops_round_within_one_lsb(micro_export, micro_blob, litert_comparison, images):
    """Op by op on identical inputs, TFLM equals LiteRT bit for bit except convolutions' requantization, 1 LSB."""
    rows = compare_ops_with_litert(micro_blob, images)
    assert len(rows) == sum(micro_export[1].report.op_histogram.values())
    own = [row for row in rows if row["max_lsb_equal_inputs"] is not None]
    assert own[0]["index"] == 0 and len(own) >= 10  # the first op sees the same input in both runtimes
    assert max(row["max_lsb_equal_inputs"] for row in own) <= 1
    assert {row["op"] for row in own if row["max_lsb_equal_inputs"]} <= {"CONV_2D", "DEPTHWISE_CONV_2D"}
    with pytest.raises(ValueError, match=r"Images must have shape \(64, 64, 3\)"):
        compare_ops_with_litert(micro_blob, images[:, :32, :32])
    assert rows[-1]["max_lsb_out"] == litert_comparison["max_lsb_vs_litert_reference"]


def test_resolver_method_names():
    assert [resolver_method(op) for op in ("CONV_2D", "DEPTHWISE_CONV_2D", "MAX_POOL_2D", "FULLY_CONNECTED",
                                           "DEPTH_TO_SPACE", "BATCH_MATMUL", "RESIZE_NEAREST_NEIGHBOR")] == [
        "AddConv2D", "AddDepthwiseConv2D", "AddMaxPool2D", "AddFullyConnected", "AddDepthToSpace", "AddBatchMatMul",
        "AddResizeNearestNeighbor"]


@pytest.fixture(scope="module")
def c_sources(micro_export, micro_blob, tmp_path_factory):
    blob = micro_blob
    folder = tmp_path_factory.mktemp("c")
    return blob, write_c_sources(blob, folder, "flower_model", metadata=micro_export[1].metadata)


def test_c_array_round_trip(c_sources):
    blob, paths = c_sources
    source = open(paths["source"]).read()
    assert read_c_array(source) == blob
    assert "alignas(16) const unsigned char g_flower_model[]" in source
    assert f"const unsigned int g_flower_model_len = {len(blob)};" in source
    header = open(paths["header"]).read()
    assert "constexpr int kInputHeight = 64;" in header and "constexpr int kNumClasses = 5;" in header
    assert '"daisy", "dandelion", "roses", "sunflowers", "tulips"' in source


def test_op_resolver_lists_every_op(c_sources):
    blob, paths = c_sources
    resolver = open(paths["op_resolver"]).read()
    ops = model_ops(blob)
    assert f"MicroMutableOpResolver<kNumOps>" in resolver and f"constexpr int kNumOps = {len(ops)};" in resolver
    for op in ops:
        assert f"resolver.{resolver_method(op)}()" in resolver
    assert {"CONV_2D", "DEPTH_TO_SPACE", "LOGISTIC"} <= set(ops)


@pytest.mark.skipif(shutil.which("g++") is None, reason="no C++ compiler on this machine")
def test_c_array_compiles_and_holds_the_model(c_sources, tmp_path):
    """The generated .cc compiles as C++17, and the program built from it writes back exactly the .tflite bytes."""
    blob, paths = c_sources
    main = tmp_path / "main.cc"
    main.write_text('#include <cstdio>\n#include "flower_model.h"\n'
                    "int main() { static_assert(flower_model::kTensorArenaSize % 16 == 0, \"aligned\");\n"
                    "  if (reinterpret_cast<unsigned long>(g_flower_model) % 16) return 3;\n"
                    "  fwrite(g_flower_model, 1, g_flower_model_len, stdout);\n"
                    "  return flower_model::kNumClasses == 5 ? 0 : 2; }\n")
    binary = tmp_path / "dump"
    subprocess.run(["g++", "-std=c++17", "-O0", "-I", os.path.dirname(paths["header"]), str(main), paths["source"],
                    "-o", str(binary)], check=True, capture_output=True)
    assert subprocess.run([str(binary)], capture_output=True, check=True).stdout == blob


# ---------------------------------------------------------------------------------------------------------------------
# Bad input


def test_export_to_missing_or_readonly_folder_fails_before_converting(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        export(_tiny(), tmp_path / "missing" / "m.tflite", "float32")
    readonly = tmp_path / "ro"
    readonly.mkdir()
    readonly.chmod(0o500)
    try:
        if os.access(readonly, os.W_OK):
            pytest.skip("running as root: permissions are not enforced")
        with pytest.raises(PermissionError, match="not writable"):
            export(_tiny(), readonly / "m.tflite", "float32")
        assert list(readonly.iterdir()) == []
    finally:
        readonly.chmod(0o700)


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


def test_c_sources_refuse_bad_names_and_non_models(tmp_path, micro_blob):
    blob = micro_blob
    with pytest.raises(ValueError, match="C identifier"):
        write_c_sources(blob, tmp_path, "1model-name", arena_bytes=1000)
    with pytest.raises(ValueError, match="Not a TFLite model"):
        write_c_sources(b"not a model at all", tmp_path, "model", arena_bytes=1000)
    assert list(tmp_path.iterdir()) == []

"""Conversion to TFLite, the XNNPACK delegation report and TensorFlow Lite Micro, on the micro variant."""

import numpy as np
import pytest

import attendnext_keras as an
from attendnext_keras.deploy.conversion import to_tflite
from attendnext_keras.deploy.litert import delegation_report, load_interpreter, quantize_input, weight_bytes
from attendnext_keras.deploy.micro import MicroRunner

KB = 1024


@pytest.fixture(scope="module")
def micro_model():
    # Logits out: SOFTMAX is outside XNNPACK in int8, and TFLM aborts on a 1000-wide int8 SOFTMAX.
    return an.AttendNeXt(variant="micro", classifier_activation=None)


@pytest.fixture(scope="module")
def calibration(flower_images):
    """Real photographs resized to 96×96, pixels in [0, 255]."""
    import tensorflow as tf

    return np.asarray(tf.image.resize(flower_images, (96, 96)))


@pytest.fixture(scope="module")
def micro_int8(micro_model, calibration):
    return to_tflite(micro_model, "int8-ptq", representative_data=[calibration])


def _run_litert(blob, x, xnnpack):
    interpreter = load_interpreter(blob, xnnpack=xnnpack)
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


def _quantize_input(blob, images):
    return quantize_input(images, load_interpreter(blob, xnnpack=False).get_input_details()[0])


def test_micro_int8_is_one_xnnpack_partition_and_fully_int8(micro_int8):
    report = delegation_report(micro_int8)
    assert report["partitions"] == 1 and report["ops_outside"] == []
    interpreter = load_interpreter(micro_int8, xnnpack=False)
    dtypes = {d["dtype"] for d in interpreter.get_tensor_details()}
    assert dtypes <= {np.int8, np.int32}, dtypes  # int8 activations and weights, int32 biases only
    assert interpreter.get_input_details()[0]["dtype"] == np.int8
    assert interpreter.get_output_details()[0]["dtype"] == np.int8
    assert {"QUANTIZE", "DEQUANTIZE"}.isdisjoint(report["op_histogram"])
    assert {"DEPTH_TO_SPACE", "LOGISTIC", "MUL", "CONCATENATION"} <= set(report["op_histogram"])


def test_micro_fits_a_microcontroller(micro_int8):
    assert weight_bytes(micro_int8) <= 256 * KB
    assert MicroRunner(micro_int8).arena_bytes <= 256 * KB


def test_arena_usage_splits_planned_and_persistent(micro_model, micro_int8):
    runner = MicroRunner(micro_int8)
    usage = runner.arena_usage
    assert usage["total"] == usage["planned"] + usage["persistent"] == runner.arena_bytes
    assert usage["planned"] > 0 and usage["persistent"] > 0
    # the profile's activation estimate approximates the planned part (the head), not the whole arena
    estimate = an.profile(micro_model).peak_activation_bytes
    assert 0.5 * usage["planned"] <= estimate <= 1.5 * usage["planned"]


def test_tflm_matches_litert(micro_int8, calibration):
    x = _quantize_input(micro_int8, calibration[:1])
    micro = MicroRunner(micro_int8).run(x).astype(int)
    reference = _run_litert(micro_int8, x, xnnpack=False).astype(int)
    xnnpack = _run_litert(micro_int8, x, xnnpack=True).astype(int)
    assert np.abs(micro - reference).max() <= 1  # same reference kernels, at most 1 LSB of rounding
    assert np.abs(micro - xnnpack).max() <= 2


def test_float32_conversion_matches_keras(micro_model, calibration):
    blob = to_tflite(micro_model, "float32")
    assert delegation_report(blob)["partitions"] == 1
    expected = np.asarray(micro_model(calibration[:1]))
    np.testing.assert_allclose(_run_litert(blob, calibration[:1], xnnpack=True), expected, rtol=1e-4, atol=1e-4)


def test_report_names_ops_that_leave_xnnpack():
    import keras

    inp = keras.Input((8, 8, 4))
    x = keras.layers.Conv2D(4, 3, padding="same")(inp)
    x = keras.layers.Activation("hard_swish")(x)
    blob = to_tflite(keras.Model(inp, keras.layers.Conv2D(4, 1)(x)), "int8-ptq",
                     representative_data=[np.random.default_rng(0).normal(size=(4, 8, 8, 4))])
    report = delegation_report(blob)
    assert report["ops_outside"] == ["HARD_SWISH"] and report["partitions"] == 2


def _dequantized_outputs(blob, images):
    interpreter = load_interpreter(blob)
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    results = []
    for image in images:
        interpreter.set_tensor(inp["index"], quantize_input(image[None], inp))
        interpreter.invoke()
        scale, zero_point = out["quantization"]
        results.append((interpreter.get_tensor(out["index"]).astype(np.float32) - zero_point) * scale)
    return np.concatenate(results)


def test_float_stem_leaves_the_first_convolution_in_float32_in_one_partition(micro_model, calibration, micro_int8):
    """int8-ptq-float-stem: int8 input → DEQUANTIZE → float32 input scaling and stem → QUANTIZE → the int8 rest, all
    in one XNNPACK partition, with the int8 model's accuracy against the float model."""
    from attendnext_keras.deploy.litert import graph_ops

    blob = to_tflite(micro_model, "int8-ptq-float-stem", representative_data=[calibration])
    ops = [op["op"] for op in graph_ops(blob)]
    assert ops[:5] == ["DEQUANTIZE", "MUL", "ADD", "CONV_2D", "QUANTIZE"]
    assert ops.count("QUANTIZE") == 1 and ops.count("DEQUANTIZE") == 1  # int8 from the stem's output on
    assert ops[5:] == [op["op"] for op in graph_ops(micro_int8)][3:]
    report = delegation_report(blob)
    assert report["partitions"] == 1 and report["ops_outside"] == []
    interpreter = load_interpreter(blob, xnnpack=False)
    assert interpreter.get_input_details()[0]["dtype"] == np.int8
    assert interpreter.get_output_details()[0]["dtype"] == np.int8
    expected = np.asarray(micro_model(calibration))
    error = np.abs(_dequantized_outputs(blob, calibration) - expected).mean()
    int8_error = np.abs(_dequantized_outputs(micro_int8, calibration) - expected).mean()
    assert error <= 0.1 * np.abs(expected).mean() and error <= 1.5 * int8_error, (error, int8_error)


def test_float_stem_with_float_io_and_without_a_convolution():
    import keras

    inp = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, strides=2)(inp)
    model = keras.Model(inp, keras.layers.Dense(2)(keras.layers.Flatten()(x)))
    data = [np.random.default_rng(0).uniform(0, 255, (4, 8, 8, 3))]
    blob = to_tflite(model, "int8-ptq-float-stem", representative_data=data, int8_io=False)
    interpreter = load_interpreter(blob, xnnpack=False)
    assert interpreter.get_input_details()[0]["dtype"] == np.float32
    assert interpreter.get_output_details()[0]["dtype"] == np.float32
    dense_only = keras.Model(inp, keras.layers.Dense(2)(keras.layers.Flatten()(inp)))
    with pytest.raises(ValueError, match="no CONV_2D"):
        to_tflite(dense_only, "int8-ptq-float-stem", representative_data=data)
    with pytest.raises(ValueError, match="representative_data"):
        to_tflite(model, "int8-ptq-float-stem")


# ---------------------------------------------------------------------------------------------------------------------
# Bad input


def test_not_a_tflite_file():
    with pytest.raises(ValueError, match="Not a TFLite model"):
        load_interpreter(b"PK\x03\x04 this is a zip file")
    with pytest.raises(ValueError, match="Not a TFLite model"):
        MicroRunner(b"\x00" * 64)


def test_representative_data_of_the_wrong_shape(micro_model):
    with pytest.raises(ValueError, match=r"shape \(96, 96, 3\)"):
        to_tflite(micro_model, "int8-ptq", representative_data=[np.zeros((2, 64, 64, 3))])


def test_bad_mode_and_missing_calibration(micro_model):
    with pytest.raises(ValueError, match="mode"):
        to_tflite(micro_model, "int4")
    with pytest.raises(ValueError, match="representative_data"):
        to_tflite(micro_model, "int8-ptq")


def test_unknown_input_size_is_refused():
    import keras

    inp = keras.Input((None, None, 3))
    with pytest.raises(ValueError, match="unknown size"):
        to_tflite(keras.Model(inp, keras.layers.Conv2D(2, 3)(inp)), "float32")


def test_recurrent_layers_are_refused_in_int8_and_reported_in_float32():
    """TensorFlow's converter crashes the process calibrating an LSTM for int8: refused before converting. In float32
    the report handles the optional (index -1) tensors such ops have."""
    import keras

    from attendnext_keras.deploy.report import conversion_report

    inp = keras.Input((8, 8, 3))
    x = keras.layers.Reshape((8, 24))(inp)
    model = keras.Model(inp, keras.layers.Dense(2)(keras.layers.Bidirectional(keras.layers.LSTM(4))(x)))
    with pytest.raises(ValueError, match="int8 conversion of recurrent layers \\(LSTM '.*'\\)"):
        to_tflite(model, "int8-ptq", representative_data=np.zeros((2, 8, 8, 3), np.float32))
    report = conversion_report(to_tflite(model, "float32"), model, mode="float32", check_micro=False)
    assert report.partitions >= 1 and "WHILE" in report.op_histogram


def test_micro_runner_checks_its_input(micro_int8):
    with pytest.raises(ValueError, match="int8 of shape"):
        MicroRunner(micro_int8).run(np.zeros((1, 96, 96, 3), np.float32))


@pytest.mark.parametrize("mode", ["float32", "int8-ptq"])
def test_model_of_our_layers_is_one_xnnpack_partition(mode):
    """Every layer class (BlurPool2D with 'same' padding) stays inside one XNNPACK partition; 'reflect' padding
    lowers to MIRROR_PAD, which XNNPACK does not run, and the report says so."""
    import keras

    def model(pad_mode):
        inp = keras.Input((32, 32, 8))
        x = an.layers.BlurPool2D(3, 2, pad_mode, name="blur")(inp)
        x = an.layers.DoubleCondensingAttentionCondenser(condense_factor=2, name="dcac")(x)
        x = an.layers.AttentionCondenser(condense_factor=4, name="ac")(x)
        x = an.layers.NearestUpsample2D(2, name="up")(x)
        return keras.Model(inp, keras.layers.Conv2D(4, 3, name="conv")(x))

    data = [np.random.default_rng(0).normal(size=(8, 32, 32, 8))]
    report = delegation_report(to_tflite(model("same"), mode, representative_data=data))
    assert report["partitions"] == 1 and report["ops_outside"] == []
    reflect = delegation_report(to_tflite(model("reflect"), mode, representative_data=data))
    assert reflect["ops_outside"] == ["MIRROR_PAD"]
def test_one_export_for_several_formats_gives_to_tflite_s_models():
    """`to_tflite_formats` (one SavedModel export, then a converter per mode) gives `to_tflite`'s flatbuffers: the
    same bytes but for the source model type in the conversion metadata."""
    import keras
    import numpy as np

    from attendnext_keras.deploy.conversion import to_tflite, to_tflite_formats

    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs)
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu")(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same")(x)
    outputs = keras.layers.Dense(4)(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, outputs)
    images = np.random.default_rng(0).uniform(0, 255, (4, 16, 16, 3)).astype("float32")
    both = to_tflite_formats(model, ["float32", "int8-ptq"], representative_data=[images])
    for mode in ("float32", "int8-ptq"):
        single = to_tflite(model, mode, representative_data=[images])
        assert len(both[mode]) == len(single)
        assert sum(a != b for a, b in zip(both[mode], single)) <= 1, mode
    with pytest.raises(ValueError, match="representative_data"):
        to_tflite_formats(model, ["float32", "int8-ptq"])



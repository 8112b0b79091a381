"""Keras model → TFLite flatbuffer.

Modes: "float32", "float16", "dynamic" (int8 weights, float activations), "int8" (from a QAT model: fake-quant
ranges are used, no calibration), "int8-ptq" (post-training quantization calibrated on a representative dataset) and
"int8-ptq-float-stem" (the same, with every op up to the first convolution left in float32: for Arm cores without
dot-product instructions, such as the Cortex-A72 and A53, where XNNPACK's int8 kernel for a 3-channel first layer
is slower than its float32 one; `benchmarks/bench_arm_cpu.py` counts both). int8 models get int8 inputs and outputs
unless `int8_io=False`.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import tempfile

import numpy as np
import tensorflow as tf

from attendnext_keras import _io, _keras
from attendnext_keras.config import CALIBRATED_MODES, MODES  # one list for the CLI, configs and here
from attendnext_keras.deploy import litert


def _checked_calibration(data, input_shape, limit=200):
    """The first `limit` images of an iterable of images or batches (an (x, y) tuple counts as x), checked against
    the model's input shape before the converter starts, so a wrong shape fails in seconds, not after tracing."""
    expected = tuple(input_shape[1:])
    images = []
    for item in data:
        batch = np.asarray(item[0] if isinstance(item, tuple) else item, dtype=np.float32)
        if batch.shape == expected:
            batch = batch[None]
        if batch.shape[1:] != expected:
            raise ValueError(f"Representative data must be images of shape {expected} (or batches of them). "
                             f"Received an item of shape {batch.shape}")
        images.extend(batch[: limit - len(images)])
        if len(images) >= limit:
            break
    if not images:
        raise ValueError("`representative_data` holds no images.")
    return images


def to_tflite(model, mode="float32", representative_data=None, int8_io=True, calibration_steps=200,
              batch_size=1) -> bytes:
    """Converts a Keras 3 or tf-keras model to a TFLite flatbuffer (bytes). See the module docstring for modes.

    The batch size is fixed (1 by default): a dynamic batch adds SHAPE/STRIDED_SLICE/PACK ops around reshapes
    that XNNPACK does not run, and microcontrollers need static shapes anyway.
    """
    return to_tflite_formats(model, [mode], representative_data, int8_io, calibration_steps, batch_size)[mode]


def to_tflite_formats(model, modes=("float32", "int8-ptq"), representative_data=None, int8_io=True,
                      calibration_steps=200, batch_size=1) -> dict:
    """{mode: flatbuffer} for several modes of one model, with `to_tflite`'s settings, exporting the model once.

    `TFLiteConverter.from_keras_model` first saves the whole Keras model as a SavedModel; for tf-keras that
    serializes every layer's call functions, which took 100 of the 108 s a 32-px QAT micro model needed. Here the
    SavedModel holds only the weights and one serving function (Keras 3: the `ExportArchive` endpoint the converter
    itself writes; tf-keras: a plain tf.Module), written once for every mode: the same flatbuffers, 4× faster.
    """
    modes = list(dict.fromkeys([modes] if isinstance(modes, str) else modes))
    images = {mode: _check_request(model, mode, representative_data, calibration_steps, batch_size) for mode in modes}
    fixed = _with_batch_size(model, batch_size)
    signature = [tf.TensorSpec(x.shape, dtype=x.dtype, name="image") for x in fixed.inputs]
    with tempfile.TemporaryDirectory(prefix="attendnext-export-") as folder:
        if _keras.flavour_of(model) == "keras":
            archive = _keras.get_keras("keras").export.ExportArchive()
            archive.track(fixed)
            archive.add_endpoint("serve", functools.partial(fixed.__call__, training=False), signature)
            with contextlib.redirect_stdout(io.StringIO()), _quiet_tensorflow_logger():
                archive.write_out(folder)
        else:
            module = tf.Module()
            module.weights = list(fixed.weights)  # tracked, so the function's captured variables are saved
            module.serve = tf.function(lambda image: fixed(image, training=False), input_signature=signature)
            with _quiet_tensorflow_logger():
                tf.saved_model.save(module, folder, signatures={"serving_default": module.serve})
        return {mode: _convert(tf.lite.TFLiteConverter.from_saved_model(folder), mode, images[mode], int8_io)
                for mode in modes}


def _check_request(model, mode, representative_data, calibration_steps, batch_size):
    """Checks a conversion request before any tracing; returns the calibration images (int8-ptq) or None."""
    if mode not in MODES:
        raise ValueError(f"`mode` must be one of {MODES}. Received: mode={mode!r}")
    if mode in CALIBRATED_MODES and representative_data is None:
        raise ValueError(f"mode={mode!r} calibrates activation ranges and needs `representative_data`: an iterable "
                         "of images shaped like the model input (100–500 real images is typical).")
    quantized = any(type(layer).__name__.startswith("Quantize") for layer in model.layers)
    if mode in CALIBRATED_MODES and quantized:
        raise ValueError(f"'{model.name}' is a quantization-aware model: its fake-quant ranges are its int8 "
                         f"calibration. Use mode='int8', or mode={mode!r} with the float model it was trained from.")
    if mode == "int8" and not quantized:
        raise ValueError(f"mode='int8' converts a quantization-aware model (attendnext_keras.quantization."
                         f"quantize_model); '{model.name}' has no quantizers. Use mode='int8-ptq' with "
                         f"representative_data to quantize a float model.")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive integer. Received: batch_size={batch_size!r}")
    if len(model.inputs) != 1:
        raise ValueError(f"Expected a model with one image input. Received {len(model.inputs)} inputs.")
    if any(d is None for d in model.inputs[0].shape[1:]):
        raise ValueError(f"Model '{model.name}' has an input of unknown size {tuple(model.inputs[0].shape)}; TFLite "
                         f"needs static shapes. Build it with a fixed `input_shape`, e.g. (224, 224, 3).")
    if mode == "int8" or mode in CALIBRATED_MODES:
        _check_no_recurrent_layers(model)
    if mode in CALIBRATED_MODES:
        return _checked_calibration(representative_data, model.inputs[0].shape, calibration_steps)
    return None


def _check_no_recurrent_layers(model):
    """TensorFlow 2.21's converter crashes the process (a segmentation fault, no Python error) when it calibrates a
    recurrent layer for int8: refuse such a model before converting."""
    stack = list(model.layers)
    while stack:
        layer = stack.pop()
        stack.extend(getattr(layer, "layers", []) or [])
        stack.extend(inner for inner in (getattr(layer, "layer", None), getattr(layer, "forward_layer", None))
                     if inner is not None)
        if any(cls.__name__ == "RNN" for cls in type(layer).__mro__):
            raise ValueError(f"int8 conversion of recurrent layers ({type(layer).__name__} '{layer.name}') crashes "
                             f"TensorFlow's converter; attendnext exports convolutional image classifiers in int8. "
                             f"Export '{model.name}' as float32, float16 or dynamic instead.")


def _convert(converter, mode, images, int8_io):
    """Applies a mode's settings to a TFLiteConverter and converts."""
    if mode != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if mode in CALIBRATED_MODES:
        converter.representative_dataset = lambda: ([image[None]] for image in images)
    if mode == "int8-ptq":
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if mode in ("int8", "int8-ptq") and int8_io:
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    if mode == "int8-ptq-float-stem":
        return _quantize_with_float_stem(converter, images, int8_io)
    return _quiet_call(converter.convert)


STEM_PREFIX_OPS = frozenset({"QUANTIZE", "DEQUANTIZE", "CAST", "MUL", "ADD", "SUB", "PAD"})
"""Ops that may come before the first convolution in a float stem: input scaling and padding. Anything else there
(a patch embedding, dense layers) would leave real work in float32: refused."""


def _quantize_with_float_stem(converter, images, int8_io):
    """int8 post-training quantization by a converter `_convert` set up for calibration, with the ops up to and
    including the first CONV_2D (input scaling and stem) left in float32, through TensorFlow's selective quantization
    (`QuantizationDebugger` with denylisted nodes: output tensors named as in its own calibrated model).

    With int8 I/O the graph starts DEQUANTIZE → float stem → QUANTIZE; XNNPACK runs it all in one partition.
    """
    options = tf.lite.experimental.QuantizationDebugOptions(fully_quantize=bool(int8_io))
    debugger = _quiet_call(tf.lite.experimental.QuantizationDebugger, converter=converter,
                           debug_dataset=lambda: ([image[None]] for image in images[:1]), debug_options=options)
    # The quantizer reads the denylist when it writes the model: names from the model it quantizes always match.
    stem = _ops_through_first_conv(debugger.calibrated_model)
    options.denylisted_nodes = [name for op in stem for name in op["outputs"]]
    blob = _quiet_call(debugger.get_nondebug_quantized_model)
    conv = next(op for op in litert.graph_ops(blob) if op["op"] == "CONV_2D")
    if conv.get("output_dtype") != "float32":  # an unmatched name is ignored by TensorFlow, not reported
        raise ValueError("mode='int8-ptq-float-stem': the converter quantized the first convolution anyway (its "
                         "tensor names did not match); use mode='int8-ptq'.")
    return blob


def _ops_through_first_conv(model_content) -> list:
    """The ops up to and including the first CONV_2D (graph_ops entries): the float stem."""
    ops = []
    for op in litert.graph_ops(model_content):
        ops.append(op)
        if op["op"] == "CONV_2D":
            others = sorted({o["op"] for o in ops[:-1]} - STEM_PREFIX_OPS)
            if others:
                raise ValueError(f"mode='int8-ptq-float-stem' keeps the ops before the first convolution in float32, "
                                 f"and this model has {', '.join(others)} there; use mode='int8-ptq'.")
            return ops
    raise ValueError("mode='int8-ptq-float-stem' keeps the first convolution in float32; the model has no CONV_2D.")


def _quiet_call(function, *args, **kwargs):
    """`function(...)` with TensorFlow's chatter held back: the Keras 3 export path prints its traced signature,
    TensorFlow logs "Assets written to", the calibrator prints "fully_quantize: 0, ..." on descriptor 2 from C++."""
    with contextlib.redirect_stdout(io.StringIO()), _quiet_tensorflow_logger(), _io.native_stderr_captured():
        return function(*args, **kwargs)


@contextlib.contextmanager
def _quiet_tensorflow_logger():
    tf_logger = logging.getLogger("tensorflow")
    level = tf_logger.level
    tf_logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        tf_logger.setLevel(level)


def _with_batch_size(model, batch_size):
    """The same model (shared weights) behind an input of fixed batch size."""
    K = _keras.get_keras(_keras.flavour_of(model))
    shape = tuple(model.inputs[0].shape[1:])
    image = K.Input(batch_shape=(batch_size,) + shape, name="image")
    return K.Model(image, model(image, training=False), name=model.name)

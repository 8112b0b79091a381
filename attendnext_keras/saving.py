"""Loading saved models with AttendNeXt's layers (and, for QAT models, tfmot's quantizers) registered.

    model = attendnext_keras.load_model("runs/train/final.keras")     # Keras 3
    qat = attendnext_keras.load_model("runs/qat/final.h5")            # tf-keras, quantization-aware
"""

from __future__ import annotations

import contextlib
import os
import zipfile

from attendnext_keras import _keras, layers, preset_store
from attendnext_keras.quantization import quantize_scope


def load_model(path):
    """Loads `.keras` (Keras 3) or `.h5` (tf-keras, including quantization-aware models, loaded inside
    quantize_scope()). A missing file, a folder (a preset folder: the error names `from_preset`), a file of another
    kind or a broken one is a one-line error."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"Model file '{path}' does not exist.")
    if os.path.isdir(path):
        if preset_store.is_preset_reference(path):
            raise IsADirectoryError(f"'{path}' is a preset folder; load it with "
                                    f"attendnext_keras.from_preset('{path}').")
        raise IsADirectoryError(f"Model file '{path}' is a folder; give a .keras or .h5 file.")
    if path.endswith(".keras"):
        if not zipfile.is_zipfile(path):
            raise ValueError(f"'{path}' is not a Keras model: a .keras file is a zip archive and this one is not.")
        layers.for_flavour("keras")  # defines and registers our layer classes
        loader, scope = _keras.get_keras("keras").models.load_model, contextlib.nullcontext()
    elif path.endswith(".h5"):
        with open(path, "rb") as f:
            if f.read(8) != b"\x89HDF\r\n\x1a\n":
                raise ValueError(f"'{path}' is not a Keras model: a .h5 file is an HDF5 file and this one is not.")
        _check_h5_holds_a_model(path)
        loader, scope = _keras.get_keras("tf_keras").models.load_model, quantize_scope()
    else:
        raise ValueError(f"Model files are .keras (Keras 3) or .h5 (tf-keras, QAT). Received: {path}")
    try:
        with scope:
            return loader(path)
    except (ValueError, OSError, TypeError, KeyError) as error:
        raise ValueError(f"Cannot load '{path}' as a model: {str(error).splitlines()[0]}") from error


def _check_h5_holds_a_model(path):
    import h5py  # a TensorFlow dependency

    try:
        with h5py.File(path, "r") as h5:
            has_config = "model_config" in h5.attrs
    except OSError as error:
        raise ValueError(f"Cannot load '{path}' as a model: {str(error).splitlines()[0]}") from error
    if not has_config:  # save_weights' files (Keras 3's .weights.h5 too) hold no architecture
        raise ValueError(f"'{path}' holds weights only, no model: build the model and call "
                         f"model.load_weights('{path}'), or load a file written by model.save.")


IMAGE_CLASSIFIER = "one RGB image input (batch, height, width, 3) and one (batch, classes) output"


def check_image_classifier(model, source="the model"):
    """Raises a one-line ValueError naming `source` unless `model` (Keras 3 or tf-keras) is what every attendnext
    tool trains, converts and runs: an image classifier with IMAGE_CLASSIFIER; returns the model."""
    inputs = [tuple(t.shape) for t in model.inputs]
    outputs = [tuple(t.shape) for t in model.outputs]
    if len(inputs) != 1 or len(inputs[0]) != 4 or inputs[0][-1] != 3:
        raise ValueError(f"'{source}' takes {_describe_shapes(inputs, 'input')}; attendnext works with image "
                         f"classifiers: {IMAGE_CLASSIFIER}.")
    if len(outputs) != 1 or len(outputs[0]) != 2:
        raise ValueError(f"'{source}' gives {_describe_shapes(outputs, 'output')}; attendnext works with image "
                         f"classifiers: {IMAGE_CLASSIFIER}.")
    return model


def _describe_shapes(shapes, what) -> str:
    if len(shapes) == 1:
        return f"{what} of shape {shapes[0]}"
    return f"{len(shapes)} {what}s of shapes {', '.join(map(str, shapes))}"

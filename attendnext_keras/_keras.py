"""The one place that picks the Keras flavour.

Users build with Keras 3 (``import keras``); tensorflow-model-optimization only works with tf-keras (Keras 2). Both
live in one process, so every layer and block takes its flavour from here and one source builds both.
"""

from __future__ import annotations

import functools
import importlib
import os

FLAVOURS = ("keras", "tf_keras")


def resolve_flavour(keras_module=None) -> str:
    """Returns "keras" or "tf_keras" for a flavour name, a Keras module or None (the default, Keras 3)."""
    if keras_module is None:
        return "keras"
    if isinstance(keras_module, str):
        name = {"keras3": "keras", "tf-keras": "tf_keras", "keras2": "tf_keras"}.get(
            keras_module, keras_module
        )
        if name not in FLAVOURS:
            raise ValueError(
                f"Unknown Keras flavour. Expected one of {FLAVOURS} (or a keras module). Received: keras={keras_module!r}"
            )
        return name
    module_name = getattr(keras_module, "__name__", "")
    if module_name.startswith("tf_keras"):
        return "tf_keras"
    if module_name.startswith("keras"):
        return "keras"
    raise ValueError(f"Expected the `keras` or `tf_keras` module. Received: keras={keras_module!r}")


@functools.lru_cache(maxsize=None)
def get_keras(flavour: str = "keras"):
    """Imports and returns the Keras module of a flavour ("keras" for Keras 3, "tf_keras" for Keras 2)."""
    flavour = resolve_flavour(flavour)
    module = importlib.import_module(flavour)
    if flavour == "keras":
        backend = module.backend.backend()
        if backend != "tensorflow":
            raise RuntimeError(
                "attendnext_keras needs the TensorFlow backend of Keras 3 (TFLite conversion and tfmot are "
                f"TensorFlow tools). Set KERAS_BACKEND=tensorflow before importing keras. Received: backend={backend!r}"
            )
    return module


def flavour_of(obj) -> str:
    """The flavour of a Keras layer, model or tensor-producing object."""
    for cls in type(obj).__mro__:
        module = cls.__module__ or ""
        if module.startswith("tf_keras"):
            return "tf_keras"
        if module.startswith("keras"):
            return "keras"
    raise TypeError(f"Expected a Keras 3 or tf-keras layer or model. Received: {type(obj).__name__}")


def register_serializable(flavour: str, package: str = "attendnext_keras"):
    """The decorator that registers a class for deserialization in a flavour's own registry."""
    keras = get_keras(flavour)
    if flavour == "keras":
        return keras.saving.register_keras_serializable(package=package)
    return keras.utils.register_keras_serializable(package=package)


def quiet_tensorflow() -> None:
    """Silences TensorFlow's C++ start-up chatter unless the user asked for it."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _weighted_parts(model):
    """{path: layer} of the leaf layers holding weights; our composite layers expose their parts as `.ops`."""
    parts = {}
    for layer in model.layers:
        ops = getattr(layer, "ops", None)
        if hasattr(ops, "items"):
            for key, sub in ops.items():
                if sub.weights:
                    parts[f"{layer.name}/{key}"] = sub
        elif hasattr(layer, "layers") and layer.layers:  # nested model
            parts.update({f"{layer.name}/{k}": v for k, v in _weighted_parts(layer).items()})
        elif layer.weights:
            parts[layer.name] = layer
    return parts


def copy_weights(source, target, skip=()) -> int:
    """Copies weights between two models of the same layer names, across Keras flavours; returns the count copied.

    Layers are matched by name (the builder gives every layer a fixed name) and each layer's weights by position,
    which is the same for the built-in layers of Keras 3 and tf-keras. A layer missing on either side or a shape
    mismatch raises ValueError naming the layer. Layers named in `skip` are left alone.
    """
    src, dst = _weighted_parts(source), _weighted_parts(target)
    for name in skip:
        src.pop(name, None)
        dst.pop(name, None)
    missing = sorted(set(src) ^ set(dst))
    if missing:
        raise ValueError(f"Cannot copy weights from '{source.name}' to '{target.name}': layers with weights present in "
                         f"only one of them: {missing[:10]}")
    copied = 0
    for path, layer in src.items():
        values = layer.get_weights()
        expected = [tuple(w.shape) for w in dst[path].get_weights()]
        if [tuple(v.shape) for v in values] != expected:
            raise ValueError(f"Cannot copy weights of layer '{path}': shapes {[v.shape for v in values]} do not match "
                             f"{expected}.")
        dst[path].set_weights(values)
        copied += len(values)
    return copied


def output_kind(model) -> str:
    """'probabilities' when a model ends in a softmax, else 'logits' (which runtimes turn into scores)."""
    layer = model.layers[-1]
    layer = getattr(layer, "layer", layer)  # a tfmot QuantizeWrapper holds the real layer
    activation = getattr(layer, "activation", None)
    name = getattr(activation, "__name__", str(activation))
    return "probabilities" if "softmax" in name.lower() or type(layer).__name__ == "Softmax" else "logits"


class LazyModule:
    """A module imported on first attribute access: `tf = LazyModule("tensorflow")` at the top of a module that must
    stay importable without paying for (or having) the heavy dependency until a function needs it."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attribute):
        return getattr(importlib.import_module(self._name), attribute)

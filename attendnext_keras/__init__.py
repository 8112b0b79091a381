"""attendnext_keras: AttendNeXt (double-condensing attention condensers, anti-aliased downsampling) for Keras,
and its path to int8 TFLite on ARM CPUs and microcontrollers.

Importing this package is cheap: TensorFlow is imported on first use of a model or layer (PEP 562 lazy attributes).
"""

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "attendnext_keras.models": ("AttendNeXt", "AttendNeXtBase", "AttendNeXtSmall", "AttendNeXtMicro",
                                "feature_extractor", "feature_info", "preprocess_input", "load_model"),
    "attendnext_keras.specs": ("VARIANTS", "ModelSpec", "StageSpec", "ColumnSpec", "BlockSpec", "DCACSpec",
                               "StemSpec", "HeadSpec", "ConstraintError", "check_constraints", "list_variants",
                               "get_spec", "summarize_spec", "save_spec", "load_spec"),
    "attendnext_keras.profiling": ("profile",),
    "attendnext_keras.conversion": ("to_tflite",),
    "attendnext_keras.quantization": ("quantize_model", "fine_tune"),
    "attendnext_keras.training": ("train", "TrainConfig"),
    "attendnext_keras.runtime": ("Predictor",),
    "attendnext_keras.peers": ("PEERS",),
    "attendnext_keras._keras": ("copy_weights",),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_WHERE) + ["layers"]


def __getattr__(name):
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    if name == "layers":
        return importlib.import_module("attendnext_keras.layers")
    raise AttributeError(f"module 'attendnext_keras' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)

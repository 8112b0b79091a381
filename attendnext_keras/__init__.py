"""attendnext_keras: AttendNeXt (double-condensing attention condensers, anti-aliased downsampling) for Keras,
and its path to int8 TFLite on ARM CPUs and microcontrollers.

Importing this package is cheap: TensorFlow is imported on first use of a model or layer (PEP 562 lazy attributes).

    import attendnext_keras as an
    model = an.AttendNeXt(variant="micro", classes=5)               # keras.applications signature
    model = an.create_model("mobilenet_v3_small", input_size=96)    # any registered model (an.list_models())
"""

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "attendnext_keras.models": ("AttendNeXt", "AttendNeXtBase", "AttendNeXtSmall", "AttendNeXtMicro",
                                "feature_extractor", "feature_info", "preprocess_input"),
    "attendnext_keras.registry": ("list_models", "create_model", "model_info", "register_model", "ModelInfo"),
    "attendnext_keras.specs": ("VARIANTS", "ModelSpec", "StageSpec", "ColumnSpec", "BlockSpec", "DCACSpec",
                               "StemSpec", "HeadSpec", "ConstraintError", "check_constraints", "list_variants",
                               "get_spec", "summarize_spec", "save_spec", "load_spec"),
    "attendnext_keras.config": ("RunConfig", "TrainConfig", "QATConfig", "load_config"),
    "attendnext_keras.profiling": ("profile",),
    "attendnext_keras.saving": ("load_model",),
    "attendnext_keras.quantization": ("quantize_model", "fine_tune"),
    "attendnext_keras.training": ("train",),
    "attendnext_keras.deploy.conversion": ("to_tflite",),
    "attendnext_keras.deploy.export": ("export",),
    "attendnext_keras.deploy.predictor": ("Predictor",),
    "attendnext_keras._keras": ("copy_weights",),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
_SUBPACKAGES = ("layers", "deploy", "experiments", "data", "peers", "pipeline")

__all__ = sorted(_WHERE) + list(_SUBPACKAGES)


def __getattr__(name):
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    if name in _SUBPACKAGES:
        return importlib.import_module(f"attendnext_keras.{name}")
    raise AttributeError(f"module 'attendnext_keras' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)

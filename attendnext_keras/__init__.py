"""attendnext_keras: AttendNeXt (double-condensing attention condensers, anti-aliased downsampling) for Keras,
and its path to int8 TFLite on ARM CPUs and microcontrollers.

Importing this package is cheap: TensorFlow is imported on first use of a model or layer (PEP 562 lazy attributes).

    import attendnext_keras as an
    model = an.AttendNeXt(variant="micro", classes=5)               # keras.applications signature
    model = an.create_model("mobilenet_v3_small", input_size=96)    # any registered model (an.list_models())
"""

import importlib
import importlib.abc
import importlib.util
import sys

__version__ = "0.1.0"

_EXPORTS = {
    "attendnext_keras.models": ("AttendNeXt", "AttendNeXtBase", "AttendNeXtSmall", "AttendNeXtMicro", "AttendNeXtMedium",
                                "feature_extractor", "feature_info", "preprocess_input"),
    "attendnext_keras.registry": ("list_models", "create_model", "model_info", "register_model", "ModelInfo"),
    "attendnext_keras.specs": ("VARIANTS", "ModelSpec", "StageSpec", "ColumnSpec", "BlockSpec", "DCACSpec",
                               "StemSpec", "HeadSpec", "ConstraintError", "check_constraints", "list_variants",
                               "get_spec", "summarize_spec", "save_spec", "load_spec"),
    "attendnext_keras.config": ("RunConfig", "TrainConfig", "QATConfig", "load_config"),
    "attendnext_keras.profiling": ("profile",),
    "attendnext_keras.saving": ("load_model",),
    "attendnext_keras.presets": ("save_preset", "from_preset", "list_presets", "preset_info", "decode_predictions",
                                 "upload_preset", "fine_tune_from_preset"),
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


# --------------------------------------------------------------------------------------------------------------------
# Saved models load after `import attendnext_keras` alone: Keras 3 finds custom layers only in its registry, so our
# layer classes are registered as soon as Keras is imported (now, if it already is; else right after its import),
# without importing Keras or TensorFlow here.


def _register_layers():
    importlib.import_module("attendnext_keras.layers").for_flavour("keras")


class _RegisterAfterKeras(importlib.abc.MetaPathFinder):
    """Finds nothing itself: when `keras` is imported, it wraps the real loader to register our layers after it."""

    def find_spec(self, name, path=None, target=None):
        if name != "keras":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        execute = spec.loader.exec_module

        def exec_module(module):
            execute(module)
            _register_layers()

        spec.loader.exec_module = exec_module
        return spec


if "keras" in sys.modules:
    _register_layers()
elif not any(isinstance(finder, _RegisterAfterKeras) for finder in sys.meta_path):
    sys.meta_path.insert(0, _RegisterAfterKeras())

"""Imports tensorflow-model-optimization, which works with tf-keras (Keras 2) only.

tfmot sets TF_USE_LEGACY_KERAS=1 when imported; `import keras` still returns Keras 3 afterwards, so users' Keras 3
code in the same process is unaffected.
"""

from __future__ import annotations

import functools
import importlib

from attendnext_keras import _keras


@functools.lru_cache(maxsize=None)
def tfmot():
    # Deferred until QAT is used: importing tfmot sets TF_USE_LEGACY_KERAS=1 and loads tf-keras (seconds).
    try:
        return importlib.import_module("tensorflow_model_optimization")
    except ImportError as error:  # pragma: no cover - an install problem, reported plainly
        raise ImportError("Quantization-aware training needs tensorflow-model-optimization and tf-keras: "
                          "pip install 'tensorflow-model-optimization>=0.8' tf-keras") from error


def tf_keras():
    return _keras.get_keras("tf_keras")

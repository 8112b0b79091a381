"""Keras layers of AttendNeXt, for Keras 3 (the default) and tf-keras (for tensorflow-model-optimization).

    from attendnext_keras.layers import DoubleCondensingAttentionCondenser   # Keras 3 class
    tfk_layers = attendnext_keras.layers.for_flavour("tf_keras")             # the tf-keras classes, same maths

Importing a class registers it with its flavour's serialization registry, so saved models load without
`custom_objects`. To load a tf-keras model, call `for_flavour("tf_keras")` first (quantize_scope() does).
"""

from __future__ import annotations

import functools
import types

from attendnext_keras import _keras
from attendnext_keras.layers import blurpool, dcac, upsample
from attendnext_keras.layers.blurpool import PAD_MODES, apply_aads, binomial_filter  # noqa: F401
from attendnext_keras.layers.dcac import EXPANSIONS, apply_attention_condenser, apply_dcac  # noqa: F401

CLASS_NAMES = ("BlurPool2D", "NearestUpsample2D", "DoubleCondensingAttentionCondenser", "AttentionCondenser")


def for_flavour(flavour="keras") -> types.SimpleNamespace:
    """The layer classes defined for one Keras flavour ("keras" or "tf_keras", or the module), created and
    registered once."""
    return _define_all(_keras.resolve_flavour(flavour))


@functools.lru_cache(maxsize=None)
def _define_all(flavour):
    classes = {}
    for module in (blurpool, upsample, dcac):
        classes.update(module._define(flavour))  # each names its classes' module attendnext_keras.layers
    return types.SimpleNamespace(**classes)


def __getattr__(name):
    if name in CLASS_NAMES:
        return getattr(for_flavour("keras"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(CLASS_NAMES))

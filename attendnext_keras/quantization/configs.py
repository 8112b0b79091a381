"""tfmot QuantizeConfigs for the layers the default 8-bit registry refuses, and the scope that knows them.

* Multiply (DC-AC's A ⊙ B, the attention condenser's V ⊙ A), BlurPool2D and Rescaling: no weights to quantize, one
  8-bit output quantizer (asymmetric, per tensor, moving average) — what the int8 MUL / DEPTHWISE_CONV_2D / input
  scaling need. BlurPool2D's kernel is a constant, so nothing of it can be trained; the converter still quantizes it
  into an int8 DEPTHWISE_CONV_2D with the binomial values.
* NearestUpsample2D only copies values (CONCATENATION + DEPTH_TO_SPACE, or RESIZE_NEAREST_NEIGHBOR for Ethos-U, keep
  their input's scale), so it gets no quantizer at all: a second range would add a requantize op.
"""

from __future__ import annotations

import functools

from attendnext_keras import layers
from attendnext_keras.quantization import tfmot_compat


@functools.lru_cache(maxsize=None)
def _classes():
    tfmot = tfmot_compat.tfmot()
    quantizers = tfmot.quantization.keras.quantizers
    QuantizeConfig = tfmot.quantization.keras.QuantizeConfig
    register = tfmot_compat.tf_keras().utils.register_keras_serializable

    @register(package="attendnext_keras")
    class OutputQuantizeConfig(QuantizeConfig):
        """Quantizes a layer's output only (8-bit, asymmetric, per tensor); the layer has no weights to quantize."""

        def get_weights_and_quantizers(self, layer):
            return []

        def get_activations_and_quantizers(self, layer):
            return []

        def set_quantize_weights(self, layer, quantize_weights):
            pass

        def set_quantize_activations(self, layer, quantize_activations):
            pass

        def get_output_quantizers(self, layer):
            return [quantizers.MovingAverageQuantizer(num_bits=8, per_axis=False, symmetric=False,
                                                      narrow_range=False)]

        def get_config(self):
            return {}

        def __eq__(self, other):
            return type(self) is type(other)

    @register(package="attendnext_keras")
    class PassThroughQuantizeConfig(OutputQuantizeConfig):
        """No quantizers: the layer moves values without changing them, so its output keeps its input's range."""

        def get_output_quantizers(self, layer):
            return []

    return OutputQuantizeConfig, PassThroughQuantizeConfig


def output_quantize_config():
    return _classes()[0]()


def pass_through_quantize_config():
    return _classes()[1]()


# Layer class name → QuantizeConfig factory, for classes the default registry refuses.
CUSTOM_CONFIGS = {
    "Multiply": output_quantize_config,
    "BlurPool2D": output_quantize_config,
    "Rescaling": output_quantize_config,
    "NearestUpsample2D": pass_through_quantize_config,
}


def quantize_scope():
    """tfmot's quantize_scope with our layers and QuantizeConfigs added: wrap every load, clone or quantize_apply
    of a quantization-aware model in it."""
    tfmot = tfmot_compat.tfmot()
    objects = {name: getattr(layers.for_flavour("tf_keras"), name) for name in layers.CLASS_NAMES}
    objects.update({cls.__name__: cls for cls in _classes()})
    return tfmot.quantization.keras.quantize_scope(objects)

"""Quantization-aware training with tensorflow-model-optimization, towards fully int8 TFLite models.

    qat_model = attendnext_keras.quantization.quantize_model(model)   # Keras 3 or tf-keras float model in
    ... fine-tune qat_model (tf-keras) ...
    blob = attendnext_keras.to_tflite(qat_model, "int8")               # no calibration data needed
"""

from attendnext_keras.quantization.configs import CUSTOM_CONFIGS, quantize_scope  # noqa: F401
from attendnext_keras.quantization.qat import quantize_model, to_tf_keras  # noqa: F401

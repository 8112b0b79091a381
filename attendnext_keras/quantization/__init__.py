"""Quantization-aware training with tensorflow-model-optimization, towards fully int8 TFLite models.

    qat_model = attendnext_keras.quantization.quantize_model(model)   # Keras 3 or tf-keras float model in
    result = attendnext_keras.quantization.fine_tune(model, train_ds, val_ds)   # or: quantize + train yourself
    attendnext_keras.export(result.model, "model.tflite", "int8")     # no calibration data needed
"""

from attendnext_keras.quantization.configs import CUSTOM_CONFIGS, quantize_scope  # noqa: F401
from attendnext_keras.quantization.qat import fine_tune, is_quantized, quantize_model, to_tf_keras  # noqa: F401

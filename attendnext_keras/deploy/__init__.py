"""From a trained Keras model to a model running on a device.

conversion (Keras → .tflite), litert (the LiteRT interpreter: loading, XNNPACK partitions, latency timing, accuracy),
metadata (the JSON a .tflite carries beside it), report (what a converted model is made of), export (conversion +
report + metadata, written atomically), predictor (runs a .tflite with no TensorFlow), micro (TensorFlow Lite Micro:
runner, arena, agreement with LiteRT, C sources), vela (Arm Ethos-U NPUs: per-target lowering, Vela's compile and
report).

Nothing is imported here, so `deploy.predictor` stays usable with the runtime-only install (no TensorFlow).
"""

"""quantize_model: a float Keras model (Keras 3 or tf-keras) → a quantization-aware tf-keras model (tfmot).

A Keras 3 model is first rebuilt layer by layer in tf-keras from its layers' configs (same classes, same names,
same wiring) and its weights are copied by layer name; the float outputs of both are compared before quantization
starts, so a translation error can never pass silently into QAT.
"""

from __future__ import annotations

import functools
import inspect

import numpy as np

from attendnext_keras import _keras
from attendnext_keras import layers as our_layers
from attendnext_keras.config import QATConfig
from attendnext_keras.quantization import tfmot_compat
from attendnext_keras.quantization.configs import CUSTOM_CONFIGS, quantize_scope
from attendnext_keras.training import train

COMPOSITE = {"DoubleCondensingAttentionCondenser", "AttentionCondenser"}


def _plain(value):
    """A Keras 3 config value in the form tf-keras takes: dtype policies become their name, and initializers,
    regularizers and constraints become tf-keras objects, keeping the arguments tf-keras knows (Keras 3 added
    some, e.g. GlorotUniform's `input_axes`)."""
    if not (isinstance(value, dict) and "class_name" in value):
        return value
    if value["class_name"] in ("DTypePolicy", "FloatDTypePolicy"):
        return value["config"]["name"]
    kind = str(value.get("module", "")).rsplit(".", 1)[-1]
    if kind in ("initializers", "regularizers", "constraints"):
        cls = getattr(getattr(tfmot_compat.tf_keras(), kind), value["class_name"], None)
        if cls is not None:
            accepted = inspect.signature(cls.__init__).parameters
            return cls(**{k: v for k, v in (value.get("config") or {}).items() if k in accepted})
    return value


def _tf_keras_layer(layer):
    tf_keras = tfmot_compat.tf_keras()
    name = type(layer).__name__
    if name == "Rescaling":
        # Rescaling lowers to MUL + ADD with no quantization range between them, which the converter leaves in
        # float. A 1×1 depthwise convolution with bias computes the same x·scale + offset as one int8 op.
        return tf_keras.layers.DepthwiseConv2D(1, use_bias=True, name=layer.name)
    cls = getattr(our_layers.for_flavour("tf_keras"), name, None) or getattr(tf_keras.layers, name, None)
    if cls is None:
        raise ValueError(f"Cannot carry layer '{layer.name}' ({name}) into tf-keras for QAT: tf-keras has no layer of "
                         f"that class. Build the model from Keras built-in layers and attendnext_keras layers.")
    accepted = {"name", "trainable", "dtype"}
    for klass in cls.__mro__:  # arguments passed on through **kwargs count too
        if "__init__" in vars(klass) and klass is not object:
            accepted |= set(inspect.signature(klass.__init__).parameters)
    config, dropped = {}, {}
    for key, value in layer.get_config().items():
        (config if key in accepted else dropped)[key] = _plain(value)
    unknown = {k: v for k, v in dropped.items() if v not in (None, False, 0, {}, [])}
    if unknown:  # a Keras 3 feature in use that tf-keras lacks: refuse rather than silently drop it
        raise ValueError(f"Cannot carry layer '{layer.name}' ({name}) into tf-keras: its settings {unknown} have no "
                         f"tf-keras equivalent.")
    return cls.from_config(config)


def _set_rescaling_weights(rescaling, output_tensor):
    depthwise = output_tensor._keras_history[0]
    channels = depthwise.depthwise_kernel.shape[2]
    scale = np.broadcast_to(np.asarray(rescaling.scale, "float32"), (channels,))
    offset = np.broadcast_to(np.asarray(rescaling.offset, "float32"), (channels,))
    depthwise.set_weights([scale.reshape(1, 1, channels, 1).copy(), offset.copy()])


def to_tf_keras(model, check=True):
    """Rebuilds a Keras 3 functional model in tf-keras with the same weights (a tf-keras model is returned as is).

    Layers keep their class, name and wiring, except Rescaling, which becomes the equivalent 1×1 depthwise
    convolution (fixed to scale and offset) so that int8 conversion keeps the input scaling in int8.

    With check=True, both models run on the same random input and must agree to 1e-4 (relative to the output
    scale); a ValueError names the largest difference otherwise.
    """
    if _keras.flavour_of(model) == "tf_keras":
        return model
    tf_keras = tfmot_compat.tf_keras()
    tensors = {}
    for tensor in model.inputs:
        layer = tensor._keras_history[0]
        tensors[layer.name] = tf_keras.Input(shape=tuple(tensor.shape[1:]), name=layer.name, dtype=tensor.dtype)
    for layer in model.layers:
        if type(layer).__name__ == "InputLayer":
            continue
        if len(getattr(layer, "_inbound_nodes", [])) > 1:
            raise ValueError(f"Layer '{layer.name}' is called more than once; quantize_model supports functional "
                             f"models whose layers are used once.")
        inbound = layer.input if isinstance(layer.input, (list, tuple)) else [layer.input]
        args = [tensors[t._keras_history[0].name] for t in inbound]
        tensors[layer.name] = _tf_keras_layer(layer)(args if isinstance(layer.input, (list, tuple)) else args[0])
        if type(layer).__name__ == "Rescaling":
            _set_rescaling_weights(layer, tensors[layer.name])
    outputs = [tensors[t._keras_history[0].name] for t in model.outputs]
    inputs = [tensors[t._keras_history[0].name] for t in model.inputs]
    clone = tf_keras.Model(inputs if len(inputs) > 1 else inputs[0], outputs if len(outputs) > 1 else outputs[0],
                           name=model.name)
    _keras.copy_weights(model, clone, skip=[l.name for l in model.layers if type(l).__name__ == "Rescaling"])
    if check:
        check_same_outputs(model, clone)
    return clone


def check_same_outputs(reference, candidate, atol=1e-4, seed=0):
    shape = (1,) + tuple(reference.inputs[0].shape[1:])
    x = np.random.default_rng(seed).uniform(0, 255, shape).astype("float32")
    expected = np.asarray(reference(x, training=False))
    got = np.asarray(candidate(x, training=False))
    scale = max(1.0, float(np.abs(expected).max()))
    diff = float(np.abs(expected - got).max())
    if diff > atol * scale:
        raise ValueError(f"The tf-keras copy of '{reference.name}' computes different outputs (max difference "
                         f"{diff:.3g}); QAT would not start from the float model.")
    return diff


@functools.lru_cache(maxsize=None)
def _default_registry():
    return tfmot_compat.tfmot().quantization.keras.default_8bit.Default8BitQuantizeScheme().get_quantize_registry()


def _annotate(layer):
    tfmot = tfmot_compat.tfmot()
    name = type(layer).__name__
    if name in CUSTOM_CONFIGS:
        return tfmot.quantization.keras.quantize_annotate_layer(layer, quantize_config=CUSTOM_CONFIGS[name]())
    # tfmot's own registry decides for built-ins; BatchNormalization is folded into its convolution by tfmot's
    # transforms, so it is annotated although the registry does not list it.
    if _default_registry().supports(layer) or name == "BatchNormalization":
        return tfmot.quantization.keras.quantize_annotate_layer(layer)
    if name in COMPOSITE:
        raise ValueError(f"Layer '{layer.name}' ({name}) holds several layers and cannot be quantized as one. Build "
                         f"the block with attendnext_keras.layers.apply_dcac / apply_attention_condenser (the same "
                         f"maths as flat built-in layers) for QAT.")
    raise ValueError(f"Layer '{layer.name}' ({name}) cannot be quantized: tfmot's default 8-bit registry does not "
                     f"know it. Give it a tfmot QuantizeConfig (add one to "
                     f"attendnext_keras.quantization.CUSTOM_CONFIGS) or replace it with a supported layer.")


def quantize_model(model, check=True):
    """A quantization-aware tf-keras copy of a float model, ready for fine-tuning and int8 conversion.

    Every layer is annotated: ours through CUSTOM_CONFIGS, built-ins through tfmot's default 8-bit scheme (which
    folds BatchNormalization into the preceding convolution). A layer nobody can quantize raises ValueError naming
    it. Load saved QAT models inside `quantize_scope()`.
    """
    tfmot = tfmot_compat.tfmot()
    tf_keras = tfmot_compat.tf_keras()
    float_model = to_tf_keras(model, check=check)
    annotated = tf_keras.models.clone_model(float_model, clone_function=_annotate)
    with quantize_scope():
        return tfmot.quantization.keras.quantize_apply(annotated)


def is_quantized(model) -> bool:
    return any(type(layer).__name__.startswith("Quantize") for layer in model.layers)


def fine_tune(model, train_data, val_data=None, config=None, out_dir="runs/qat", resume=False, strategy=None,
              steps_per_epoch=None, verbose=1, overwrite=False):
    """Quantization-aware fine-tuning from float weights: quantize_model(model), then train with the QAT recipe
    (`QATConfig`: few epochs, learning rate ~20× lower, no warmup, BatchNorm statistics frozen).

    Takes a float model (Keras 3 or tf-keras) or an already quantized one; returns training.TrainResult whose
    `.model` is the QAT tf-keras model to export with mode="int8". Checkpoints, best/final models (.h5, load
    inside quantize_scope()) and metrics land in out_dir; resume=True continues an interrupted fine-tuning.
    """
    config = config or QATConfig()
    build = (lambda: model) if is_quantized(model) else (lambda: quantize_model(model))
    return train(build, train_data, val_data, config, out_dir=out_dir, resume=resume, strategy=strategy,
                 steps_per_epoch=steps_per_epoch, verbose=verbose, overwrite=overwrite)

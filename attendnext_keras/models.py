"""The AttendNeXt builder, with the signature of `keras.applications`.

    model = attendnext_keras.AttendNeXt(variant="base")                     # Keras 3, 224×224, 1000 classes
    model = attendnext_keras.AttendNeXt(variant="micro", classes=10, input_shape=(96, 96, 3))
    backbone = attendnext_keras.AttendNeXt(include_top=False, pooling="avg")
    qat_ready = attendnext_keras.AttendNeXt(variant="micro", keras="tf_keras")  # same graph in tf-keras for tfmot
    trained = attendnext_keras.AttendNeXt(weights="micro_flowers_mini64")     # a shipped preset: its spec, size, classes
"""

from __future__ import annotations

import os
import re

from attendnext_keras import _keras, preset_store
from attendnext_keras.blocks import apply_conv_bn_relu, apply_stage
from attendnext_keras.specs import (ATTENTIONS, ModelSpec, check_constraints, check_structure, get_spec, scaled,
                                    VARIANTS)

# ImageNet weights, once published: {variant: (url, sha256 of the file with top, sha256 without top)}.
# Empty until AttendNeXt has been trained on ImageNet. Meanwhile `weights` takes a preset (a trained model shipped in
# attendnext_keras/presets/, `preset_store.list_presets()`, or a preset folder) or a local weights file.
WEIGHTS: dict = {}

POOLINGS = (None, "avg", "max")


def obtain_input_shape(input_shape, spec: ModelSpec):
    """Checks `input_shape` against the spec (the one place for these checks); returns a (H, W, C) tuple."""
    shape = (spec.input_size, spec.input_size, 3) if input_shape is None else tuple(input_shape)
    if len(shape) != 3:
        raise ValueError(f"`input_shape` must be (height, width, channels) with channels last. "
                         f"Received: input_shape={input_shape}")
    height, width, channels = shape
    if channels is None or channels < 1:
        raise ValueError(f"`input_shape` needs a known, positive channel count. Received: input_shape={input_shape}")
    divisor = spec.size_divisor
    for size in (height, width):
        if size is None:
            continue
        if size < divisor or size % divisor:
            raise ValueError(
                f"AttendNeXt '{spec.name}' needs height and width that are multiples of {divisor} (its output stride "
                f"and DC-AC condensed grids), at least {divisor}; e.g. {divisor * 3}, {divisor * 5}, {divisor * 7}. "
                f"Received: input_shape={input_shape}"
            )
    return shape


def _validate_args(weights, pooling, include_top, classes, classifier_activation, spec):
    if weights is not None:
        if not isinstance(weights, (str, os.PathLike)):
            raise ValueError(f"`weights` must be None, a preset name or the path to a weights file. "
                             f"Received: weights={weights!r}")
        if not os.path.exists(weights):
            presets = ", ".join(preset_store.list_presets()) or "none shipped"
            if weights == "imagenet" or weights in WEIGHTS:
                raise ValueError(f"No pretrained weights are published for AttendNeXt '{spec.name}' on ImageNet yet; "
                                 f"`weights` must be None, a preset ({presets}) or the path to a weights file. "
                                 f"Received: weights={weights!r}")
            raise ValueError(f"`weights` must be None, a preset ({presets}) or the path to an existing weights "
                             f"file; no file at that path. Received: weights={weights!r}")
    if pooling not in POOLINGS:
        raise ValueError(f"`pooling` must be one of None, 'avg', 'max'. Received: pooling={pooling!r}")
    if include_top and (not isinstance(classes, int) or classes < 1):
        raise ValueError(f"`classes` must be a positive integer. Received: classes={classes!r}")
    if classifier_activation is not None and not isinstance(classifier_activation, str) \
            and not callable(classifier_activation):
        raise ValueError(f"`classifier_activation` must be None, a name or a callable. "
                         f"Received: classifier_activation={classifier_activation!r}")


def _resolve_spec(variant, spec, alpha, attention, antialias):
    spec = get_spec(spec if spec is not None else variant)
    changes = {}
    if alpha is not None:
        if not alpha > 0:
            raise ValueError(f"`alpha` must be positive. Received: alpha={alpha!r}")
        changes["width"] = spec.width * alpha
    if attention is not None:
        if attention not in ATTENTIONS:
            raise ValueError(f"`attention` must be one of {ATTENTIONS}. Received: attention={attention!r}")
        changes["attention"] = attention
    if antialias is not None:
        changes["antialias"] = bool(antialias)
    return spec.replace(**changes) if changes else spec


def _resolve_with_preset(preset, variant, spec, alpha, attention, antialias, classes, include_top):
    """(spec, classes) of the model to build. With a preset, its spec unless `variant`/`spec` name one (which must
    then build the same layers), its input size, and its class count unless `classes` says otherwise (an error with
    the classifier on: the head's weights would not fit)."""
    if preset is None:
        return _resolve_spec(variant or "base", spec, alpha, attention, antialias), 1000 if classes is None else classes
    requested = preset.spec if spec is None and variant is None else spec
    resolved = _resolve_spec(variant, requested, alpha, attention, antialias)
    if not preset_store.same_architecture(resolved, preset.spec):
        raise ValueError(f"Preset '{preset.name}' holds weights for AttendNeXt '{preset.spec.name}', but the requested "
                         f"architecture differs (variant, spec, alpha, attention or antialias); leave them unset to "
                         f"build the preset's. Received: variant={variant!r}, spec={getattr(spec, 'name', spec)!r}, "
                         f"alpha={alpha!r}, attention={attention!r}, antialias={antialias!r}")
    if classes is None:
        classes = preset.num_classes
    if include_top and classes != preset.num_classes:
        raise ValueError(f"Preset '{preset.name}' classifies {preset.num_classes} classes "
                         f"({', '.join(preset.class_names[:5])}{', ...' if preset.num_classes > 5 else ''}), so "
                         f"`classes` must be {preset.num_classes} or None; for a new head use attendnext_keras."
                         f"from_preset('{preset.name}', classes={classes}). Received: classes={classes!r}")
    return resolved.replace(input_size=preset.spec.input_size), classes


def _load_preset_weights(model, preset, include_top):
    """Loads a preset's weights into `model` (either flavour, with or without the classifier) by layer name: the
    preset's own model is built in Keras 3, loaded, and copied over (`_keras.copy_weights`)."""
    source = AttendNeXt(spec=preset.spec, classes=preset.num_classes, classifier_activation=None,
                        enforce_constraints=False,
                        include_preprocessing=preset.builder_config.get("include_preprocessing", True))
    source.load_weights(preset.weights_path)
    _keras.copy_weights(source, model, skip=() if include_top else preset_store.HEAD_LAYERS)


def _image_input(K, flavour, input_tensor, input_shape, spec):
    """The model's image input: `input_tensor` (of the model's flavour, its shape checked) or a new Input."""
    if input_tensor is not None:
        try:
            tensor_flavour = _keras.flavour_of(input_tensor)
        except TypeError:
            tensor_flavour = None
        if tensor_flavour != flavour:
            raise ValueError(f"`input_tensor` must be a symbolic tensor of the model's Keras flavour ({flavour}), "
                             f"e.g. from {flavour}.Input(...). Received: {type(input_tensor).__name__}")
        input_shape = tuple(input_tensor.shape[1:])
    input_shape = obtain_input_shape(input_shape, spec)
    return K.layers.Input(shape=input_shape, name="image") if input_tensor is None else input_tensor


def AttendNeXt(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None, classes=None,
               classifier_activation="softmax", variant=None, spec=None, alpha=None, attention=None,
               antialias=None, include_preprocessing=True, enforce_constraints=True, keras=None, name=None):
    """Instantiates an AttendNeXt network (Wong et al. 2022) as a functional Keras model.

    Args:
        include_top: whether to include the classifier head (global pooling → dense → classes).
        weights: None (random initialisation), a preset (the name of one shipped with the package, see
            `list_presets()`, or a preset folder from `save_preset`: its spec, input size, class count and weights;
            with include_top=False only the backbone's), or the path to a weights file saved from the same
            architecture (`.weights.h5` for Keras 3, `.h5` for tf-keras). No ImageNet weights are published yet.
        input_tensor: optional Keras tensor to use as the image input.
        input_shape: optional (height, width, channels); height and width must be multiples of the variant's
            `size_divisor` (32 for the registered variants). Defaults to the variant's input size, 3 channels.
        pooling: with include_top=False, None (4-D feature map), "avg" or "max" (2-D features).
        classes: number of classes of the classifier; None: the preset's with a preset as `weights`, else 1000.
        classifier_activation: activation of the last layer ("softmax", None for logits, ...).
        variant: a name from `list_variants()` ("base", "small", "micro", "medium", …); None: the preset's spec
            with a preset as `weights`, else "base".
        spec: a `ModelSpec` to build instead of a registered variant.
        alpha: width multiplier on top of the spec's `width` (like MobileNet's alpha).
        attention: ablation switch: "dcac" (default), "ac" (original attention condenser) or "none".
        antialias: ablation switch: False replaces every AADS with plain strided downsampling.
        include_preprocessing: the model takes pixels in [0, 255] and rescales them to [-1, 1] itself.
        enforce_constraints: refuse specs that break the paper's design constraints (`specs.check_constraints`).
            The ablations attention="none" and antialias=False need False.
        keras: the Keras flavour: None or "keras" (Keras 3) or "tf_keras" (Keras 2, needed by tfmot for QAT).
        name: model name; defaults to "attendnext_<variant>".

    Returns:
        A Keras `Model`. Layer names are fixed (`stem_conv`, `stage2_col1_block1_pw`, `predictions`), so weights
        move between flavours by name.
    """
    flavour = _keras.resolve_flavour(keras)
    preset = preset_store.load_preset(weights) if preset_store.is_preset_reference(weights) else None
    spec, classes = _resolve_with_preset(preset, variant, spec, alpha, attention, antialias, classes, include_top)
    # A preset's spec was built and trained already (an ablation preset may break the paper's rules on purpose).
    check_constraints(spec) if enforce_constraints and preset is None else check_structure(spec)
    _validate_args(None if preset else weights, pooling, include_top, classes, classifier_activation, spec)
    K = _keras.get_keras(flavour)
    img_input = _image_input(K, flavour, input_tensor, input_shape, spec)

    x = img_input
    if include_preprocessing:
        x = K.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="rescaling")(x)
    x = apply_conv_bn_relu(x, filters=scaled(spec.stem.filters, spec.width), kernel_size=spec.stem.kernel_size,
                           strides=spec.stem.strides, name="stem", keras=flavour)
    tensors = [x]
    for index, stage in enumerate(spec.stages, 1):
        tensors = apply_stage(tensors, stage, spec=spec, index=index, keras=flavour)
    (x,) = tensors

    if include_top:
        x = K.layers.GlobalAveragePooling2D(name="head_pool")(x)
        if spec.head.hidden:
            x = K.layers.Dense(scaled(spec.head.hidden, spec.width), name="head_fc")(x)
            x = K.layers.ReLU(name="head_relu")(x)
        if spec.head.dropout:
            x = K.layers.Dropout(spec.head.dropout, name="head_dropout")(x)
        x = K.layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    elif pooling == "avg":
        x = K.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif pooling == "max":
        x = K.layers.GlobalMaxPooling2D(name="max_pool")(x)

    inputs = K.utils.get_source_inputs(input_tensor) if input_tensor is not None else img_input
    model = K.Model(inputs, x, name=name or f"attendnext_{spec.name}")
    if preset is not None:
        _load_preset_weights(model, preset, include_top)
    elif weights is not None:
        model.load_weights(os.fspath(weights))
    return model


def _variant_builder(variant_name):
    def builder(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None, classes=None,
                classifier_activation="softmax", **kwargs):
        return AttendNeXt(include_top=include_top, weights=weights, input_tensor=input_tensor,
                          input_shape=input_shape, pooling=pooling, classes=classes,
                          classifier_activation=classifier_activation, variant=variant_name, **kwargs)

    builder.__name__ = builder.__qualname__ = f"AttendNeXt{variant_name.capitalize()}"
    builder.__doc__ = f"AttendNeXt '{variant_name}': {VARIANTS[variant_name].description}\n\nArguments as `AttendNeXt`."
    return builder


AttendNeXtBase = _variant_builder("base")
AttendNeXtSmall = _variant_builder("small")
AttendNeXtMicro = _variant_builder("micro")
AttendNeXtMedium = _variant_builder("medium")


def preprocess_input(x, data_format=None):
    """A placeholder for API compatibility, like keras.applications' MobileNetV3: the models rescale [0, 255]
    pixels themselves (include_preprocessing=True), so inputs pass through unchanged."""
    return x


# --------------------------------------------------------------------------------------------------------------------
# Multi-scale features


def stage_output_layers(model) -> dict:
    """{stage index: [names of the layers that end the stage's columns]} found by the builder's fixed names."""
    names = [layer.name for layer in model.layers]
    stages = sorted({int(m.group(1)) for n in names if (m := re.match(r"stage(\d+)_", n))})
    out = {}
    for i in stages:
        if f"stage{i}_merge" in names:
            out[i] = [f"stage{i}_merge"]
            continue
        columns = sorted({int(m.group(1)) for n in names if (m := re.match(rf"stage{i}_col(\d+)_", n))})
        ends = []
        for j in columns:
            col_layers = [n for n in names if n.startswith(f"stage{i}_col{j}_") and "_down_" not in n]
            ends.append(col_layers[-1])
        out[i] = ends
    return out


def feature_extractor(model, levels=("P2", "P3", "P4", "P5")):
    """A model returning AttendNeXt's multi-scale feature maps as a dict keyed "P2" (stride 4) … "P5" (stride 32).

    Works on any model built by `AttendNeXt` (with or without top, either flavour, also after save/load): the stage
    ends are found by their fixed layer names. A stage whose columns are still independent is returned as the
    concatenation of its columns (a layer `stage{i}_features` added for that purpose). Feed the result to an FPN or
    segmentation head.
    """
    K = _keras.get_keras(_keras.flavour_of(model))
    input_size = model.inputs[0].shape[1]
    features = {}
    for i, layer_names in stage_output_layers(model).items():
        tensors = [model.get_layer(n).output for n in layer_names]
        x = tensors[0] if len(tensors) == 1 else K.layers.Concatenate(name=f"stage{i}_features")(tensors)
        stride = input_size // x.shape[1] if input_size and x.shape[1] else 2 ** (i + 1)
        features[f"P{stride.bit_length() - 1}"] = x
    missing = [level for level in levels if level not in features]
    if missing:
        raise ValueError(f"Model '{model.name}' has no feature maps at {missing}. Available: {sorted(features)}")
    return K.Model(model.inputs, {level: features[level] for level in levels}, name=f"{model.name}_features")


def feature_info(spec) -> list:
    """[dict(num_chs, reduction, name)] for each stage of a spec, as timm's feature_info. A stage whose columns stay
    independent reports the channels of all its columns together (what `feature_extractor` concatenates)."""
    spec = get_spec(spec)
    widths = [scaled(spec.stem.filters, spec.width)]  # one entry per tensor passed on: shared, or one per column
    info = []
    for i, (stage, stride) in enumerate(zip(spec.stages, spec.strides), 1):
        incoming = widths if len(widths) == len(stage.columns) else widths * len(stage.columns)
        outs = []
        for column, width in zip(stage.columns, incoming):
            if stage.downsample == "conv":
                width = scaled(stage.downsample_filters, spec.width)
            for block in column.blocks:
                width = scaled(block.filters, spec.width) if block.filters else width
            outs.append(width)
        if stage.merge == "concat":
            outs = [sum(outs)]
        elif stage.merge == "add":
            outs = outs[:1]
        widths = outs
        info.append(dict(num_chs=sum(widths), reduction=stride, name=f"stage{i}"))
    return info

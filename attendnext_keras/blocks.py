"""AttendNeXt building blocks: small functions that take a tensor and return one, with fixed layer names.

Fixed names make weight copies between Keras flavours, QAT annotation and TFLite op listings line up by name:
`stage2_col1_block1_dw`, `stage2_col1_block3_dcac_attend`, `stage3_down_blur`, ...
"""

from __future__ import annotations

from attendnext_keras import _keras
from attendnext_keras.layers.blurpool import apply_aads
from attendnext_keras.layers.dcac import apply_attention_condenser, apply_dcac
from attendnext_keras.specs import DCACSpec, scaled


def apply_conv_bn_relu(x, *, filters, kernel_size, strides=1, name, keras):
    K = _keras.get_keras(keras)
    x = K.layers.Conv2D(filters, kernel_size, strides=strides, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = K.layers.BatchNormalization(name=f"{name}_bn")(x)
    return K.layers.ReLU(name=f"{name}_relu")(x)


def apply_dwsep(x, *, filters, kernel_size=3, name, keras):
    """Depthwise k×k → BN → ReLU → 1×1 → BN → ReLU, plus the input when the width is unchanged."""
    K = _keras.get_keras(keras)
    shortcut = x
    x = K.layers.DepthwiseConv2D(kernel_size, padding="same", use_bias=False, name=f"{name}_dw")(x)
    x = K.layers.BatchNormalization(name=f"{name}_dw_bn")(x)
    x = K.layers.ReLU(name=f"{name}_dw_relu")(x)
    x = K.layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_pw")(x)
    x = K.layers.BatchNormalization(name=f"{name}_pw_bn")(x)
    x = K.layers.ReLU(name=f"{name}_pw_relu")(x)
    if shortcut.shape[-1] == filters:
        x = K.layers.Add(name=f"{name}_add")([shortcut, x])
    return x


def apply_inverted_residual(x, *, filters, kernel_size=3, expansion=4.0, fused=False, name, keras):
    """MobileNetV2's inverted residual (`fused=False`: 1×1 expand → depthwise k×k → 1×1 project) or its fused form
    (`fused=True`: k×k conv expand → 1×1 project, EfficientNetV2's Fused-MBConv), ReLU, linear projection, plus the
    input when the width is unchanged. Never strided: the stage downsamples."""
    K = _keras.get_keras(keras)
    shortcut = x
    hidden = max(8, int(round(x.shape[-1] * expansion / 8)) * 8)
    if fused:
        x = K.layers.Conv2D(hidden, kernel_size, padding="same", use_bias=False, name=f"{name}_expand")(x)
    else:
        x = K.layers.Conv2D(hidden, 1, use_bias=False, name=f"{name}_expand")(x)
    x = K.layers.BatchNormalization(name=f"{name}_expand_bn")(x)
    x = K.layers.ReLU(name=f"{name}_expand_relu")(x)
    if not fused:
        x = K.layers.DepthwiseConv2D(kernel_size, padding="same", use_bias=False, name=f"{name}_dw")(x)
        x = K.layers.BatchNormalization(name=f"{name}_dw_bn")(x)
        x = K.layers.ReLU(name=f"{name}_dw_relu")(x)
    x = K.layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_project")(x)
    x = K.layers.BatchNormalization(name=f"{name}_project_bn")(x)
    if shortcut.shape[-1] == filters:
        x = K.layers.Add(name=f"{name}_add")([shortcut, x])
    return x


def apply_attention(x, *, dcac: DCACSpec, attention: str, name, keras):
    """The attention block of a column: DC-AC, the original attention condenser (ablation), or nothing."""
    settings = dict(condense_factor=dcac.condense_factor, embed_channels=dcac.embed_channels,
                    embed_ratio=dcac.embed_ratio, kernel_size=dcac.kernel_size, expansion=dcac.expansion)
    if attention == "dcac":
        return apply_dcac(x, name=f"{name}_dcac", keras=keras, residual=dcac.residual, **settings)
    if attention == "ac":
        return apply_attention_condenser(x, name=f"{name}_ac", keras=keras, **settings)
    return x


def apply_block(x, block, *, spec, name, keras):
    if block.kind == "conv":
        return apply_conv_bn_relu(x, filters=scaled(block.filters, spec.width), kernel_size=block.kernel_size,
                                  name=name, keras=keras)
    if block.kind == "dwsep":
        return apply_dwsep(x, filters=scaled(block.filters, spec.width), kernel_size=block.kernel_size, name=name,
                           keras=keras)
    if block.kind in ("ir", "fused"):
        return apply_inverted_residual(x, filters=scaled(block.filters, spec.width), kernel_size=block.kernel_size,
                                       expansion=block.expansion, fused=block.kind == "fused", name=name, keras=keras)
    return apply_attention(x, dcac=block.dcac or DCACSpec(), attention=spec.attention, name=name, keras=keras)


def apply_column(x, column, *, spec, name, keras):
    for k, block in enumerate(column.blocks, 1):
        x = apply_block(x, block, spec=spec, name=f"{name}_block{k}", keras=keras)
    return x


def apply_downsample(x, stage, *, spec, name, keras):
    """The stage's downsampling: an AADS pattern, or its plain strided twin when spec.antialias is False."""
    filters = scaled(stage.downsample_filters, spec.width) if stage.downsample_filters else None
    return apply_aads(x, pattern=stage.downsample, filters=filters, filter_size=stage.blur_size, strides=2,
                      pad_mode=spec.blur_pad_mode, antialias=spec.antialias, plain=spec.plain_downsample, name=name,
                      keras=keras)


def apply_stage(inputs, stage, *, spec, index, keras):
    """Runs one stage on a list of tensors (one shared tensor, or one per independent column); returns the list the
    next stage takes."""
    K = _keras.get_keras(keras)
    n = len(stage.columns)
    prefix = f"stage{index}"
    if stage.downsample:
        if len(inputs) == 1:
            inputs = [apply_downsample(inputs[0], stage, spec=spec, name=f"{prefix}_down", keras=keras)]
        else:
            inputs = [apply_downsample(t, stage, spec=spec, name=f"{prefix}_col{j}_down", keras=keras)
                      for j, t in enumerate(inputs, 1)]
    if len(inputs) == 1:
        inputs = inputs * n
    outputs = [apply_column(t, column, spec=spec, name=f"{prefix}_col{j}", keras=keras)
               for j, (t, column) in enumerate(zip(inputs, stage.columns), 1)]
    if stage.merge == "none" or n == 1:
        return outputs
    merge = K.layers.Concatenate if stage.merge == "concat" else K.layers.Add
    return [merge(name=f"{prefix}_merge")(outputs)]

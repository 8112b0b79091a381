"""The networks AttendNeXt is benchmarked against, all as float Keras 3 models taking [0, 255] pixels.

Peers that `keras.applications` ships are built from there with `weights=None`; MobileViT-XS, MobileOne-S1 (in its
inference-time, re-parameterised form) and FBNet-C are rebuilt here from their papers' architecture tables (and the
authors' reference code where a table leaves a detail open). They are for latency and size only: random weights,
parameter counts within 5 % of the published figures (`PUBLISHED_PARAMS`, checked in tests/test_peers.py).

    model = attendnext_keras.create_model("mobilevit_xs")       # logits, via the registry
    model = attendnext_keras.peers.MobileViTXS()                # softmax, like keras.applications

Every peer takes float pixels in [0, 255] and rescales them inside the model (Rescaling(1/127.5, offset=-1) for
the rebuilt ones, as keras.applications' MobileNetV3 with include_preprocessing), so the benchmark feeds them all the
same input, and every op converts to TFLite builtins at the fixed batch size of `conversion.to_tflite`: MobileViT's
unfold/fold are static Reshape/Permute, attention is `keras.layers.MultiHeadAttention` (einsums that convert to
BATCH_MATMUL), and feature maps whose size is not a multiple of the patch (7×7 at 224 px) are resized bilinearly to
the next multiple and back, as the reference implementation does.

Layer names are fixed (`stem_conv`, `stage3_block2_dw`, `stage4_mvit_t1_attention`, `head_conv`, `predictions`) and
follow `profiling`'s grouping: `profile(model).by_group()` reports the stem, each stage and the head.

Importing this module imports neither Keras nor TensorFlow.
"""

from __future__ import annotations

from attendnext_keras import _keras as flavours

# --------------------------------------------------------------------------------------------------------------------
# Architecture tables

# MobileViT-XS (Mehta & Rastegari 2022, appendix A architecture table; apple/ml-cvnets
# cvnets/models/classification/config/mobilevit.py, mode "x_small"). The stem is a 3×3/2 conv with 16 filters, the
# head a 1×1 conv to 4 × 96 = 384 channels. "mv2" stages are MobileNetV2 inverted residuals (SiLU); a "mobilevit"
# stage is one strided inverted residual followed by one MobileViT block with `layers` transformer layers of width
# `dim`, an MLP of `ffn_dim`, `heads` heads and `patch`×`patch` patches.
MOBILEVIT_XS_STEM = 16
MOBILEVIT_XS_HEAD = 384
MOBILEVIT_XS_STAGES = [
    dict(kind="mv2", filters=32, blocks=1, strides=1, expansion=4),
    dict(kind="mv2", filters=48, blocks=3, strides=2, expansion=4),
    dict(kind="mobilevit", filters=64, strides=2, expansion=4, dim=96, ffn_dim=192, layers=2, heads=4, patch=2),
    dict(kind="mobilevit", filters=80, strides=2, expansion=4, dim=120, ffn_dim=240, layers=4, heads=4, patch=2),
    dict(kind="mobilevit", filters=96, strides=2, expansion=4, dim=144, ffn_dim=288, layers=3, heads=4, patch=2),
]

# MobileOne-S1 (Vasu et al. 2023, network specification table: stage widths 64·1.5, 128·1.5, 256·2.0, 512·2.5, blocks
# 2, 8, 10, 1; apple/ml-mobileone mobileone.py, width multipliers (1.5, 1.5, 2.0, 2.5), no SE in S1). Inference form:
# after re-parameterisation every MobileOne block is one conv with bias followed by ReLU. The stem is a 3×3/2 conv
# with min(64, 64·1.5) = 64 filters; each block of a stage is a 3×3 depthwise conv (stride 2 in the first block) and
# a 1×1 conv to the stage width.
MOBILEONE_S1_STEM = 64
MOBILEONE_S1_STAGES = [
    dict(filters=96, blocks=2),
    dict(filters=192, blocks=8),
    dict(filters=512, blocks=10),
    dict(filters=1280, blocks=1),
]

# FBNet-C (Wu et al. 2019, Fig. 4 and the macro-architecture of Table 1; facebookresearch/mobile-vision
# fbnet_modeldef_cls.py "fbnet_c", the same in maskrcnn-benchmark's fbnet_modeldef.py). Each entry is
# (op, kernel, expansion, filters, stride); "ir" is the paper's block: 1×1 expansion (none at expansion 1, as in
# mobile-vision) → BN → ReLU → k×k depthwise → BN → ReLU → 1×1 projection → BN (+ input when stride 1 and widths
# match); "skip" is the identity. FBNet-C picks no
# group-conv ("_g2") candidate, so it has neither grouped 1×1 convs nor channel shuffle (FBNet-A/B do).
FBNET_C_STEM = 16
FBNET_C_HEAD = 1984
FBNET_C_STAGES = [
    [("ir", 3, 1, 16, 1)],
    [("ir", 3, 6, 24, 2), ("skip", 3, 1, 24, 1), ("ir", 3, 1, 24, 1), ("ir", 3, 1, 24, 1)],
    [("ir", 5, 6, 32, 2), ("ir", 5, 3, 32, 1), ("ir", 5, 6, 32, 1), ("ir", 3, 6, 32, 1)],
    [("ir", 5, 6, 64, 2), ("ir", 5, 3, 64, 1), ("ir", 5, 6, 64, 1), ("ir", 5, 6, 64, 1)],
    [("ir", 5, 6, 112, 1), ("ir", 5, 6, 112, 1), ("ir", 5, 6, 112, 1), ("ir", 5, 3, 112, 1)],
    [("ir", 5, 6, 184, 2), ("ir", 5, 6, 184, 1), ("ir", 5, 6, 184, 1), ("ir", 5, 6, 184, 1)],
    [("ir", 3, 6, 352, 1)],
]

# Parameter counts as published, for ImageNet-1k (1000 classes) at 224 px (MobileViT at 256 px; its parameter count
# does not depend on the input size).
PUBLISHED_PARAMS = {
    # Mehta & Rastegari, "MobileViT", ICLR 2022, ImageNet-1k results (MobileViT-XS: 2.3 M, 74.8 % top-1, 0.7 GFLOPs).
    "mobilevit_xs": 2.3e6,
    # Vasu et al., "MobileOne", CVPR 2023, ImageNet-1k comparison table (MobileOne-S1: 4.8 M, 825 M FLOPs, 75.9 %).
    "mobileone_s1": 4.8e6,
    # Wu et al., "FBNet", CVPR 2019, Table 2 (FBNet-C: 5.5 M, 375 M FLOPs, 74.9 % top-1).
    "fbnet_c": 5.5e6,
    # Howard et al., "Searching for MobileNetV3", ICCV 2019, Table 3 (Large 1.0: 5.4 M, 219 M MAdds; Small 1.0: 2.5 M,
    # 56 M MAdds).
    "mobilenet_v3_large": 5.4e6,
    "mobilenet_v3_small": 2.5e6,
    # Sandler et al., "MobileNetV2", CVPR 2018, Table 4 (MobileNetV2: 3.4 M, 300 M MAdds; the Keras Applications
    # table lists 3.5 M, its count with BatchNormalization).
    "mobilenet_v2": 3.4e6,
    # Tan & Le, "EfficientNet", ICML 2019, Table 2 (EfficientNet-B0: 5.3 M, 0.39 B FLOPs).
    "efficientnet_b0": 5.3e6,
}

peer_info = {
    "mobilevit_xs": dict(
        citation="S. Mehta, M. Rastegari. MobileViT: Light-weight, General-purpose, and Mobile-friendly Vision "
                 "Transformer. ICLR 2022.",
        url="https://arxiv.org/abs/2110.02178",
        notes="Rebuilt from the architecture table and apple/ml-cvnets (random weights). Dropout omitted (inference). "
              "Attention is keras.layers.MultiHeadAttention over the patches of each of the 2×2 pixel positions. "
              "A feature map whose size is not a multiple of the patch (7×7 in the last stage at 224 px) is resized "
              "bilinearly to the next multiple and back, as ml-cvnets does. The paper reports 0.7 GFLOPs (at 256 px, "
              "its training size); counting every matmul of this architecture gives 1.03 G MACs at 256 px (timm's "
              "model card: 1.1 GMACs) and 0.77 G at the benchmark's 224 px."),
    "mobileone_s1": dict(
        citation="P. K. A. Vasu, J. Gabriel, J. Zhu, O. Tuzel, A. Ranjan. MobileOne: An Improved One millisecond "
                 "Mobile Backbone. CVPR 2023.",
        url="https://arxiv.org/abs/2206.04040",
        notes="Inference-time (re-parameterised) form: each block is a single conv with bias + ReLU, no branches, "
              "no BatchNormalization, no residuals. 'same' padding (PyTorch pads 1 on every side; same shapes and "
              "cost)."),
    "fbnet_c": dict(
        citation="B. Wu, X. Dai, P. Zhang, Y. Wang, F. Sun, Y. Wu, Y. Tian, P. Vajda, Y. Jia, K. Keutzer. FBNet: "
                 "Hardware-Aware Efficient ConvNet Design via Differentiable Neural Architecture Search. CVPR 2019.",
        url="https://arxiv.org/abs/1812.03443",
        notes="Rebuilt from the paper's macro-architecture and FBNet-C block choices (as in facebookresearch/"
              "mobile-vision). FBNet-C selects no group-conv block, so there are no grouped 1×1 convs or channel "
              "shuffles. An 'ir' block at expansion 1 has no 1×1 expansion conv (as mobile-vision's IRFBlock; "
              "maskrcnn-benchmark's older one keeps it: +6.8 M MACs, +1.4 k parameters). "
              "Head: 1×1 conv to 1984 channels (mobile-vision; the paper's table is ambiguous, timm uses 1984 too)."),
    "mobilenet_v3_large": dict(
        citation="A. Howard et al. Searching for MobileNetV3. ICCV 2019.", url="https://arxiv.org/abs/1905.02244",
        notes="keras.applications.MobileNetV3Large, weights=None, include_preprocessing=True. Its 5.5 M parameters "
              "include BatchNormalization."),
    "mobilenet_v3_small": dict(
        citation="A. Howard et al. Searching for MobileNetV3. ICCV 2019.", url="https://arxiv.org/abs/1905.02244",
        notes="keras.applications.MobileNetV3Small, weights=None, include_preprocessing=True."),
    "mobilenet_v2": dict(
        citation="M. Sandler, A. Howard, M. Zhu, A. Zhmoginov, L.-C. Chen. MobileNetV2: Inverted Residuals and "
                 "Linear Bottlenecks. CVPR 2018.",
        url="https://arxiv.org/abs/1801.04381",
        notes="keras.applications.MobileNetV2, weights=None, behind a Rescaling(1/127.5, offset=-1) so it takes "
              "[0, 255] pixels like the other peers."),
    "efficientnet_b0": dict(
        citation="M. Tan, Q. V. Le. EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks. "
                 "ICML 2019.",
        url="https://arxiv.org/abs/1905.11946",
        notes="keras.applications.EfficientNetB0, weights=None; it rescales [0, 255] pixels itself (Rescaling + "
              "Normalization layers)."),
}


# --------------------------------------------------------------------------------------------------------------------
# Shared pieces


def _keras():
    return flavours.get_keras("keras")


def _check_input_shape(input_shape, divisor, model_name):
    shape = tuple(input_shape)
    if len(shape) != 3 or any(d is None or d < 1 for d in shape):
        raise ValueError(f"{model_name} needs a fixed (height, width, channels) `input_shape`. "
                         f"Received: input_shape={input_shape}")
    if shape[0] % divisor or shape[1] % divisor:
        raise ValueError(f"{model_name} needs height and width that are multiples of {divisor}. "
                         f"Received: input_shape={input_shape}")
    return shape


def _stem_and_input(input_shape, include_preprocessing):
    K = _keras()
    image = K.Input(shape=input_shape, name="image")
    x = K.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="rescaling")(image) if include_preprocessing else image
    return image, x


def _classifier(x, classes, classifier_activation):
    K = _keras()
    x = K.layers.GlobalAveragePooling2D(name="head_pool")(x)
    return K.layers.Dense(classes, activation=classifier_activation, name="predictions")(x)


def _init(kind):
    """Variance-preserving random initialisers, so activations keep their scale through a random network (Keras'
    Glorot default shrinks them by orders of magnitude over 20 ReLU blocks, more so through depthwise convolutions,
    whose fan-in Keras counts over all channels): He for convolutions before ReLU/SiLU, LeCun for linear ones, and
    He over the k×k taps for depthwise ones."""
    K = _keras()
    if kind == "depthwise":
        return K.initializers.VarianceScaling(2.0, mode="fan_out", distribution="truncated_normal")
    return K.initializers.get("he_normal" if kind == "act" else "lecun_normal")


def _conv_bn_act(x, filters, kernel_size, *, strides=1, activation, name):
    K = _keras()
    x = K.layers.Conv2D(filters, kernel_size, strides=strides, padding="same", use_bias=False,
                        kernel_initializer=_init("act" if activation else "linear"), name=f"{name}_conv")(x)
    x = K.layers.BatchNormalization(name=f"{name}_bn")(x)
    if activation is not None:
        x = K.layers.Activation(activation, name=f"{name}_{activation}")(x) if activation != "relu" \
            else K.layers.ReLU(name=f"{name}_relu")(x)
    return x


def _inverted_residual(x, filters, *, kernel_size=3, strides=1, expansion, activation, name):
    """1×1 expansion → BN → act → k×k depthwise → BN → act → 1×1 projection → BN (+ input when shapes match). The
    expansion is left out when it would keep the width (expansion 1), as in MobileNetV2, ml-cvnets and mobile-vision."""
    K = _keras()
    shortcut = x
    in_channels = x.shape[-1]
    hidden = int(round(in_channels * expansion))
    if hidden != in_channels:
        x = _conv_bn_act(x, hidden, 1, activation=activation, name=f"{name}_expand")
    x = K.layers.DepthwiseConv2D(kernel_size, strides=strides, padding="same", use_bias=False,
                                 depthwise_initializer=_init("depthwise"), name=f"{name}_dw")(x)
    x = K.layers.BatchNormalization(name=f"{name}_dw_bn")(x)
    x = K.layers.Activation(activation, name=f"{name}_dw_{activation}")(x) if activation != "relu" \
        else K.layers.ReLU(name=f"{name}_dw_relu")(x)
    x = _conv_bn_act(x, filters, 1, activation=None, name=f"{name}_project")
    if strides == 1 and in_channels == filters:
        x = K.layers.Add(name=f"{name}_add")([shortcut, x])
    return x


# --------------------------------------------------------------------------------------------------------------------
# MobileViT-XS


def _unfold(x, patch, name):
    """(H, W, d) → (P, N, d): P = patch² pixel positions, N = (H/patch)·(W/patch) patches. Static Reshape/Permute."""
    K = _keras()
    h, w, d = x.shape[1:]
    nh, nw = h // patch, w // patch
    x = K.layers.Reshape((nh, patch, nw, patch, d), name=f"{name}_split")(x)
    x = K.layers.Permute((2, 4, 1, 3, 5), name=f"{name}_transpose")(x)
    return K.layers.Reshape((patch * patch, nh * nw, d), name=f"{name}_merge")(x)


def _fold(x, patch, size, name):
    """The inverse of `_unfold`: (P, N, d) → (H, W, d)."""
    K = _keras()
    h, w = size
    d = x.shape[-1]
    nh, nw = h // patch, w // patch
    x = K.layers.Reshape((patch, patch, nh, nw, d), name=f"{name}_split")(x)
    x = K.layers.Permute((3, 1, 4, 2, 5), name=f"{name}_transpose")(x)
    return K.layers.Reshape((h, w, d), name=f"{name}_merge")(x)


def _transformer_layer(x, *, heads, ffn_dim, name):
    """Pre-norm transformer layer on (P, N, d): attention among the N patches of each pixel position, then an MLP."""
    K = _keras()
    dim = x.shape[-1]
    y = K.layers.LayerNormalization(epsilon=1e-5, name=f"{name}_ln1")(x)
    y = K.layers.MultiHeadAttention(heads, dim // heads, attention_axes=(2,), name=f"{name}_attention")(y, y)
    x = K.layers.Add(name=f"{name}_add1")([x, y])
    y = K.layers.LayerNormalization(epsilon=1e-5, name=f"{name}_ln2")(x)
    y = K.layers.Dense(ffn_dim, name=f"{name}_fc1")(y)
    y = K.layers.Activation("swish", name=f"{name}_fc1_swish")(y)
    y = K.layers.Dense(dim, name=f"{name}_fc2")(y)
    return K.layers.Add(name=f"{name}_add2")([x, y])


def _mobilevit_block(x, *, dim, ffn_dim, layers, heads, patch, name):
    """Local 3×3 conv → 1×1 to `dim` → unfold → transformer layers → LayerNorm → fold → 1×1 back → concat with the
    input → 3×3 fusion conv (MobileViT v1 block)."""
    K = _keras()
    shortcut = x
    channels = x.shape[-1]
    x = _conv_bn_act(x, channels, 3, activation="swish", name=f"{name}_local")
    x = K.layers.Conv2D(dim, 1, use_bias=False, kernel_initializer=_init("linear"), name=f"{name}_to_tokens")(x)
    size = tuple(x.shape[1:3])
    padded = tuple(-(-s // patch) * patch for s in size)
    if padded != size:  # ml-cvnets resizes bilinearly to a multiple of the patch size, and back after folding
        x = K.layers.Resizing(*padded, interpolation="bilinear", name=f"{name}_resize_in")(x)
    x = _unfold(x, patch, name=f"{name}_unfold")
    for t in range(1, layers + 1):
        x = _transformer_layer(x, heads=heads, ffn_dim=ffn_dim, name=f"{name}_t{t}")
    x = K.layers.LayerNormalization(epsilon=1e-5, name=f"{name}_ln")(x)
    x = _fold(x, patch, padded, name=f"{name}_fold")
    if padded != size:
        x = K.layers.Resizing(*size, interpolation="bilinear", name=f"{name}_resize_out")(x)
    x = _conv_bn_act(x, channels, 1, activation="swish", name=f"{name}_from_tokens")
    x = K.layers.Concatenate(name=f"{name}_concat")([shortcut, x])
    return _conv_bn_act(x, channels, 3, activation="swish", name=f"{name}_fusion")


def MobileViTXS(input_shape=(224, 224, 3), classes=1000, classifier_activation="softmax",
                include_preprocessing=True, name="mobilevit_xs"):
    """MobileViT-XS (Mehta & Rastegari 2022) with random weights; height and width must be multiples of 32."""
    K = _keras()
    input_shape = _check_input_shape(input_shape, 32, "MobileViT-XS")
    image, x = _stem_and_input(input_shape, include_preprocessing)
    x = _conv_bn_act(x, MOBILEVIT_XS_STEM, 3, strides=2, activation="swish", name="stem")
    for i, stage in enumerate(MOBILEVIT_XS_STAGES, 1):
        if stage["kind"] == "mv2":
            for j in range(1, stage["blocks"] + 1):
                x = _inverted_residual(x, stage["filters"], strides=stage["strides"] if j == 1 else 1,
                                       expansion=stage["expansion"], activation="swish", name=f"stage{i}_block{j}")
        else:
            x = _inverted_residual(x, stage["filters"], strides=stage["strides"], expansion=stage["expansion"],
                                   activation="swish", name=f"stage{i}_block1")
            x = _mobilevit_block(x, dim=stage["dim"], ffn_dim=stage["ffn_dim"], layers=stage["layers"],
                                 heads=stage["heads"], patch=stage["patch"], name=f"stage{i}_mvit")
    x = _conv_bn_act(x, MOBILEVIT_XS_HEAD, 1, activation="swish", name="head")
    return K.Model(image, _classifier(x, classes, classifier_activation), name=name)


# --------------------------------------------------------------------------------------------------------------------
# MobileOne-S1 (inference form)


def _conv_bias_relu(x, filters, kernel_size, *, strides=1, depthwise=False, name):
    K = _keras()
    if depthwise:
        x = K.layers.DepthwiseConv2D(kernel_size, strides=strides, padding="same",
                                     depthwise_initializer=_init("depthwise"), name=name)(x)
    else:
        x = K.layers.Conv2D(filters, kernel_size, strides=strides, padding="same", kernel_initializer=_init("act"),
                            name=name)(x)
    return K.layers.ReLU(name=f"{name}_relu")(x)


def MobileOneS1(input_shape=(224, 224, 3), classes=1000, classifier_activation="softmax",
                include_preprocessing=True, name="mobileone_s1"):
    """MobileOne-S1 (Vasu et al. 2023) after re-parameterisation, with random weights; sizes multiples of 32."""
    K = _keras()
    input_shape = _check_input_shape(input_shape, 32, "MobileOne-S1")
    image, x = _stem_and_input(input_shape, include_preprocessing)
    x = _conv_bias_relu(x, MOBILEONE_S1_STEM, 3, strides=2, name="stem_conv")
    for i, stage in enumerate(MOBILEONE_S1_STAGES, 1):
        for j in range(1, stage["blocks"] + 1):
            x = _conv_bias_relu(x, None, 3, strides=2 if j == 1 else 1, depthwise=True, name=f"stage{i}_block{j}_dw")
            x = _conv_bias_relu(x, stage["filters"], 1, name=f"stage{i}_block{j}_pw")
    return K.Model(image, _classifier(x, classes, classifier_activation), name=name)


# --------------------------------------------------------------------------------------------------------------------
# FBNet-C


def FBNetC(input_shape=(224, 224, 3), classes=1000, classifier_activation="softmax", include_preprocessing=True,
           name="fbnet_c"):
    """FBNet-C (Wu et al. 2019) with random weights; height and width must be multiples of 32."""
    K = _keras()
    input_shape = _check_input_shape(input_shape, 32, "FBNet-C")
    image, x = _stem_and_input(input_shape, include_preprocessing)
    x = _conv_bn_act(x, FBNET_C_STEM, 3, strides=2, activation="relu", name="stem")
    for i, stage in enumerate(FBNET_C_STAGES, 1):
        for j, (op, kernel, expansion, filters, strides) in enumerate(stage, 1):
            if op == "skip":
                continue
            x = _inverted_residual(x, filters, kernel_size=kernel, strides=strides, expansion=expansion,
                                   activation="relu", name=f"stage{i}_block{j}")
    x = _conv_bn_act(x, FBNET_C_HEAD, 1, activation="relu", name="head")
    return K.Model(image, _classifier(x, classes, classifier_activation), name=name)


# --------------------------------------------------------------------------------------------------------------------
# keras.applications peers: float Keras 3 models with logits, taking [0, 255] pixels (the registry's builders)


def mobilenet_v3(size="large", input_shape=(224, 224, 3), classes=1000, classifier_activation=None, alpha=1.0,
                 name=None):
    """keras.applications' MobileNetV3Large/Small (random weights, include_preprocessing=True)."""
    K = _keras()
    builder = {"large": K.applications.MobileNetV3Large, "small": K.applications.MobileNetV3Small}[size]
    return builder(input_shape=tuple(input_shape), alpha=alpha, weights=None, classes=classes,
                   classifier_activation=classifier_activation, include_preprocessing=True,
                   name=name or f"mobilenet_v3_{size}")


def mobilenet_v2(input_shape=(224, 224, 3), classes=1000, classifier_activation=None, alpha=1.0, name=None):
    """keras.applications' MobileNetV2 (random weights) behind a Rescaling, so it takes [0, 255] pixels."""
    K = _keras()
    image = K.Input(shape=tuple(input_shape), name="image")
    x = K.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="rescaling")(image)  # MobileNetV2 expects [-1, 1]
    base = K.applications.MobileNetV2(input_tensor=x, alpha=alpha, weights=None, classes=classes,
                                      classifier_activation=classifier_activation)
    return K.Model(image, base.output, name=name or "mobilenet_v2")  # the same layers, with one input


def efficientnet_b0(input_shape=(224, 224, 3), classes=1000, classifier_activation=None, name=None):
    """keras.applications' EfficientNetB0 (random weights; it rescales [0, 255] pixels itself)."""
    return _keras().applications.EfficientNetB0(input_shape=tuple(input_shape), weights=None, classes=classes,
                                                classifier_activation=classifier_activation,
                                                name=name or "efficientnet_b0")

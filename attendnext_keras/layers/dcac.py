"""Attention condensers: the original (AC) and the double-condensing one (DC-AC) of AttendNeXt.

The maths, for an input V of shape (H, W, C), condense factor s, embedding channels E, kernel k:

    Q      = MaxPool_s(V)                                   condenser layer: (H/s, W/s, C), keeps strong activations
    Emb(Q) = ReLU(BN(PW_E(BN(DW_k(Q)))))                     embedding: local (depthwise k×k) + cross-channel (1×1 → E)

  Original attention condenser (Wong et al. 2020, TinySpeech / AttendNets):
    A  = σ(PW_C(Emb_a(Q)))                                  attention values at the condensed resolution
    V' = V ⊙ Up_s(S ⊙ A)                                     S: a learned per-channel scale (initialised to 1)

  Double-condensing attention condenser (AttendNeXt, Wong et al. 2022):
    A  = σ(PW_C(Emb_a(Q)))                                  attention branch
    B  = PW_C(Emb_b(Q))                                     feature branch: V condensed too, its own embedding
    V' = Up_s(A ⊙ B)            (+ V when residual=True)     selective attention F(A, B), no scale S

Up_s is the expansion layer back to V's size. Both branches condense V with the same parameter-free max-pool, so it
is computed once. With nearest-neighbour expansion Up_s(A) ⊙ Up_s(B) = Up_s(A ⊙ B) exactly, so the product and the
sigmoid run at the condensed resolution (s² times fewer elements) and only the result is expanded. For "bilinear"
expansion Up_s(A ⊙ B) is the definition.

The same two functions (`_make_sublayers`, `_forward`) serve the Layer classes (for users' own models) and
`apply_dcac` / `apply_attention_condenser` (flat graphs of built-in layers with fixed names, which the AttendNeXt
builder, tfmot and the TFLite converter need).
"""

from __future__ import annotations

import contextlib
import functools

from attendnext_keras import _keras
from attendnext_keras.layers import upsample

# Deferred: the layer classes are defined per Keras flavour on first use, and importing the package stays cheap.
tf = _keras.LazyModule("tensorflow")

EXPANSIONS = ("depth_to_space", "resize", "nearest", "bilinear")
"""Up_s: nearest as CONCATENATION + DEPTH_TO_SPACE (XNNPACK keeps it), nearest as one RESIZE_NEAREST_NEIGHBOR (Ethos-U
NPUs run it; the same values), UpSampling2D nearest, or UpSampling2D bilinear."""


def embed_width(channels: int, embed_channels=None, embed_ratio=0.25) -> int:
    """Channels E of the condensed embedding: `embed_channels` if given, else max(8, round(ratio · C)) capped at C."""
    if embed_channels is not None:
        return int(embed_channels)
    return max(1, min(int(channels), max(8, int(round(channels * embed_ratio)))))


def check_condenser_args(condense_factor, embed_channels, embed_ratio, kernel_size, expansion) -> None:
    if not isinstance(condense_factor, int) or isinstance(condense_factor, bool) or condense_factor < 1:
        raise ValueError(f"`condense_factor` must be a positive integer. Received: condense_factor={condense_factor!r}")
    if embed_channels is not None and (not isinstance(embed_channels, int) or embed_channels < 1):
        raise ValueError(f"`embed_channels` must be None or a positive integer. Received: embed_channels={embed_channels!r}")
    if not embed_ratio > 0:
        raise ValueError(f"`embed_ratio` must be positive. Received: embed_ratio={embed_ratio!r}")
    if not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"`kernel_size` must be a positive odd integer. Received: kernel_size={kernel_size!r}")
    if expansion not in EXPANSIONS:
        raise ValueError(f"`expansion` must be one of {EXPANSIONS}. Received: expansion={expansion!r}")


def check_condenser_input(input_shape, condense_factor, name, filters=None, residual=False) -> int:
    """Validates a (batch, H, W, C) shape against the condenser's settings; returns C."""
    shape = tuple(input_shape)
    if len(shape) != 4:
        raise ValueError(
            f"'{name}' expects a 4-D input (batch, height, width, channels). Received: input_shape={shape}"
        )
    channels = shape[-1]
    if channels is None:
        raise ValueError(f"'{name}' needs a known channel count. Received: input_shape={shape}")
    for size in shape[1:3]:
        if size is not None and size % condense_factor:
            raise ValueError(
                f"'{name}': height and width must be divisible by condense_factor={condense_factor} so that the "
                f"expansion restores the input size. Received: input_shape={shape}"
            )
    if filters is not None and filters != channels:
        raise ValueError(
            f"'{name}': the condenser's output has the input's channels ({channels})"
            + (", and residual=True adds V to it" if residual else "")
            + f", so `filters` must equal the input channels. Received: filters={filters}"
        )
    return int(channels)


def _make_sublayers(keras, flavour, *, kind, channels, condense_factor, embed_channels, embed_ratio, kernel_size,
                    expansion, residual, prefix):
    """Creates the built-in layers of a condenser, named `{prefix}{part}`. kind is "dcac" or "ac"."""
    L = keras.layers
    embed = embed_width(channels, embed_channels, embed_ratio)
    s = condense_factor
    ops = {}
    if s > 1:
        ops["condense"] = L.MaxPooling2D(pool_size=s, strides=s, padding="valid", name=f"{prefix}condense")
    branches = ("attention", "feature") if kind == "dcac" else ("attention",)
    for branch in branches:
        ops[f"{branch}_dw"] = L.DepthwiseConv2D(kernel_size, padding="same", use_bias=False, name=f"{prefix}{branch}_dw")
        ops[f"{branch}_dw_bn"] = L.BatchNormalization(name=f"{prefix}{branch}_dw_bn")
        ops[f"{branch}_embed"] = L.Conv2D(embed, 1, use_bias=False, name=f"{prefix}{branch}_embed")
        ops[f"{branch}_embed_bn"] = L.BatchNormalization(name=f"{prefix}{branch}_embed_bn")
        ops[f"{branch}_relu"] = L.ReLU(name=f"{prefix}{branch}_relu")
        ops[f"{branch}_expand"] = L.Conv2D(channels, 1, use_bias=True, name=f"{prefix}{branch}_expand")
    ops["sigmoid"] = L.Activation("sigmoid", name=f"{prefix}sigmoid")
    if kind == "ac":
        ops["scale"] = L.DepthwiseConv2D(1, use_bias=False, depthwise_initializer="ones", name=f"{prefix}scale")
    else:
        ops["attend"] = L.Multiply(name=f"{prefix}attend")
    if s > 1:
        if expansion in upsample.LOWERINGS:  # "depth_to_space" or "resize": NearestUpsample2D, lowered either way
            ops["expand"] = upsample._define(flavour)["NearestUpsample2D"](s, lowering=expansion,
                                                                           name=f"{prefix}upsample")
        else:
            ops["expand"] = L.UpSampling2D(s, interpolation=expansion, name=f"{prefix}upsample")
    if kind == "ac":
        ops["apply"] = L.Multiply(name=f"{prefix}apply")
    elif residual:
        ops["residual"] = L.Add(name=f"{prefix}residual")
    return ops


def _embed(ops, branch, q):
    for part in ("dw", "dw_bn", "embed", "embed_bn", "relu", "expand"):
        q = ops[f"{branch}_{part}"](q)
    return q


def _forward(ops, v):
    """The condenser maths of the module docstring, on a dict of sublayers."""
    q = ops["condense"](v) if "condense" in ops else v
    a = ops["sigmoid"](_embed(ops, "attention", q))
    if "scale" in ops:  # original attention condenser: V' = V ⊙ Up(S ⊙ A)
        a = ops["scale"](a)
        return ops["apply"]([v, ops["expand"](a) if "expand" in ops else a])
    y = ops["attend"]([a, _embed(ops, "feature", q)])  # DC-AC: V' = Up(A ⊙ B) (+ V)
    if "expand" in ops:
        y = ops["expand"](y)
    return ops["residual"]([v, y]) if "residual" in ops else y


def _build_sublayers(ops, input_shape, flavour):
    """Builds sublayers in forward order so that weights exist before any call (needed to load saved weights)."""
    def chain(shape, *names):
        for name in names:
            if name in ops:
                # tf-keras names variables by the active name scope; without one, both branches' kernels would be
                # called "depthwise_kernel:0" and collide in an H5 file.
                with tf.name_scope(ops[name].name) if flavour == "tf_keras" else contextlib.nullcontext():
                    ops[name].build(shape)
                shape = ops[name].compute_output_shape(shape)
        return shape

    q = chain(tuple(input_shape), "condense")
    branches = [b for b in ("attention", "feature") if f"{b}_dw" in ops]
    for branch in branches:
        parts = [f"{branch}_{p}" for p in ("dw", "dw_bn", "embed", "embed_bn", "relu", "expand")]
        a = chain(q, *parts)
    a = chain(a, "sigmoid", "scale")
    if "attend" in ops:
        ops["attend"].build([a, a])
    y = chain(a, "expand")
    for merge in ("apply", "residual"):
        if merge in ops:
            ops[merge].build([tuple(input_shape), y])


def _condenser_config(layer):
    return dict(
        condense_factor=layer.condense_factor,
        embed_channels=layer.embed_channels,
        embed_ratio=layer.embed_ratio,
        kernel_size=layer.kernel_size,
        expansion=layer.expansion,
    )


@functools.lru_cache(maxsize=None)
def _define(flavour: str) -> dict:
    """The condenser classes for one Keras flavour, defined and registered once."""
    base = _condenser_base(flavour)
    classes = {"DoubleCondensingAttentionCondenser": _define_dcac(base, flavour),
               "AttentionCondenser": _define_ac(base, flavour)}
    for cls in classes.values():
        cls.__module__ = "attendnext_keras.layers"  # where users import it from
    return classes


def _condenser_base(flavour: str):
    keras = _keras.get_keras(flavour)

    class _Condenser(keras.layers.Layer):
        kind = None

        def __init__(self, condense_factor=2, embed_channels=None, embed_ratio=0.25, kernel_size=3,
                     expansion="depth_to_space", **kwargs):
            super().__init__(**kwargs)
            check_condenser_args(condense_factor, embed_channels, embed_ratio, kernel_size, expansion)
            self.condense_factor = condense_factor
            self.embed_channels = embed_channels
            self.embed_ratio = float(embed_ratio)
            self.kernel_size = kernel_size
            self.expansion = expansion

        def build(self, input_shape):
            residual = getattr(self, "residual", False)  # only DC-AC has `residual` and `filters`
            channels = check_condenser_input(input_shape, self.condense_factor, self.name,
                                             getattr(self, "filters", None), residual)
            self.ops = _make_sublayers(
                keras, flavour, kind=self.kind, channels=channels, condense_factor=self.condense_factor,
                embed_channels=self.embed_channels, embed_ratio=self.embed_ratio, kernel_size=self.kernel_size,
                expansion=self.expansion, residual=residual, prefix="",
            )
            _build_sublayers(self.ops, input_shape, flavour)
            super().build(input_shape)

        def call(self, inputs):
            return _forward(self.ops, inputs)

        def compute_output_shape(self, input_shape):
            return tuple(input_shape)

    return _Condenser


def _define_dcac(_Condenser, flavour: str):
    @_keras.register_serializable(flavour)
    class DoubleCondensingAttentionCondenser(_Condenser):
        """Double-condensing attention condenser (DC-AC), the self-attention block of AttendNeXt.

        V' = Up_s(σ(PW_C(Emb_a(Q))) ⊙ PW_C(Emb_b(Q))) (+ V),  Q = MaxPool_s(V),
        Emb(Q) = ReLU(BN(PW_E(BN(DW_k(Q))))); the full derivation is in this module's docstring.

        Args:
            condense_factor: s, the max-pool size and stride of the condenser layer and the expansion factor.
                Height and width must be divisible by it.
            embed_channels: E, the channels of each branch's condensed embedding. None uses `embed_ratio`.
            embed_ratio: E = max(8, round(ratio · C)) (capped at C) when `embed_channels` is None.
            kernel_size: side of the depthwise embedding convolution (odd).
            expansion: "depth_to_space" (nearest, kept by XNNPACK in int8), "resize" (nearest as one
                RESIZE_NEAREST_NEIGHBOR, run by Ethos-U NPUs), "nearest" (UpSampling2D) or "bilinear".
            residual: add V to the output (V' = V + Up(A ⊙ B)), which makes the block a gated residual.
            filters: optional check of the output width: None, or the input channels (anything else is an error).
            **kwargs: base layer arguments.

        Call arguments:
            inputs: (batch, H, W, C); the output has the same shape.

        Example:
            >>> layer = DoubleCondensingAttentionCondenser(condense_factor=2, embed_channels=8)
            >>> layer(np.zeros((1, 16, 16, 32), "float32")).shape
            TensorShape([1, 16, 16, 32])

        Reference: A. Wong et al., "Faster Attention Is What You Need: A Fast Self-Attention Neural Network Backbone
        Architecture for the Edge via Double-Condensing Attention Condensers", 2022.
        """

        kind = "dcac"

        def __init__(self, condense_factor=2, embed_channels=None, embed_ratio=0.25, kernel_size=3,
                     expansion="depth_to_space", residual=True, filters=None, **kwargs):
            super().__init__(condense_factor, embed_channels, embed_ratio, kernel_size, expansion, **kwargs)
            self.residual = bool(residual)
            self.filters = filters

        def get_config(self):
            config = super().get_config()
            config.update(_condenser_config(self), residual=self.residual, filters=self.filters)
            return config

    return DoubleCondensingAttentionCondenser


def _define_ac(_Condenser, flavour: str):
    @_keras.register_serializable(flavour)
    class AttentionCondenser(_Condenser):
        """The original attention condenser (Wong et al. 2020), kept for ablations against DC-AC.

        V' = V ⊙ Up_s(S ⊙ σ(PW_C(Emb(Q)))),  Q = MaxPool_s(V), S a learned per-channel scale initialised to 1.

        Args:
            condense_factor, embed_channels, embed_ratio, kernel_size, expansion: as in
                `DoubleCondensingAttentionCondenser`.
            **kwargs: base layer arguments.

        Call arguments:
            inputs: (batch, H, W, C); the output has the same shape.

        Example:
            >>> AttentionCondenser(condense_factor=2)(np.zeros((1, 8, 8, 16), "float32")).shape
            TensorShape([1, 8, 8, 16])

        Reference: A. Wong et al., "TinySpeech: Attention condensers for deep speech recognition neural networks on
        edge devices", arXiv:2008.04245; "AttendNets", arXiv:2009.14385.
        """

        kind = "ac"

        def get_config(self):
            config = super().get_config()
            config.update(_condenser_config(self))
            return config

    return AttentionCondenser


def _apply(kind, x, *, name, keras, condense_factor, embed_channels, embed_ratio, kernel_size, expansion, residual):
    flavour = _keras.resolve_flavour(keras)
    check_condenser_args(condense_factor, embed_channels, embed_ratio, kernel_size, expansion)
    channels = check_condenser_input(x.shape, condense_factor, name, residual=residual)
    ops = _make_sublayers(
        _keras.get_keras(flavour), flavour, kind=kind, channels=channels, condense_factor=condense_factor,
        embed_channels=embed_channels, embed_ratio=embed_ratio, kernel_size=kernel_size, expansion=expansion,
        residual=residual, prefix=f"{name}_",
    )
    return _forward(ops, x)


def apply_dcac(x, *, name, keras=None, condense_factor=2, embed_channels=None, embed_ratio=0.25, kernel_size=3,
               expansion="depth_to_space", residual=True):
    """DC-AC as flat built-in layers named `{name}_condense`, `{name}_attention_dw`, …, `{name}_attend`.

    Same maths and arguments as `DoubleCondensingAttentionCondenser`; used by the AttendNeXt builder so that tfmot
    can annotate every layer and the converter sees only ops it knows.
    """
    return _apply("dcac", x, name=name, keras=keras, condense_factor=condense_factor, embed_channels=embed_channels,
                  embed_ratio=embed_ratio, kernel_size=kernel_size, expansion=expansion, residual=residual)


def apply_attention_condenser(x, *, name, keras=None, condense_factor=2, embed_channels=None, embed_ratio=0.25,
                              kernel_size=3, expansion="depth_to_space"):
    """The original attention condenser as flat built-in layers (see `AttentionCondenser`)."""
    return _apply("ac", x, name=name, keras=keras, condense_factor=condense_factor, embed_channels=embed_channels,
                  embed_ratio=embed_ratio, kernel_size=kernel_size, expansion=expansion, residual=False)

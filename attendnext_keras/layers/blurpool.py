"""Anti-aliased downsampling (AADS): BlurPool2D and the patterns built from it.

Zhang (2019), "Making convolutional networks shift-invariant again" (arXiv:1904.11486): low-pass filter with a fixed,
normalised binomial kernel before subsampling, so that a one-pixel shift of the input changes the output less.
Reimplemented from the paper; no code of the reference implementation is used.

    y = subsample_s( pad(x) * (b ⊗ b) ),   b = [C(k-1, 0) … C(k-1, k-1)] / 2^(k-1)

applied depthwise (each channel with the same kernel). Output spatial size is ceil(H / s) for every padding mode.

Padding modes:
  * "reflect" (Zhang's default): mirror the border, (k-1)//2 pixels before and the rest after. A constant image
    stays constant everywhere. Lowers to MIRROR_PAD + DEPTHWISE_CONV_2D.
  * "zero": the same amounts as "reflect", filled with zeros (PAD + DEPTHWISE_CONV_2D). Border pixels darken.
  * "same": TensorFlow's SAME padding folded into the convolution (one DEPTHWISE_CONV_2D, no pad op): zero padding
    aligned as TensorFlow's strided convolutions are, putting the extra pixel after. The fastest; AttendNeXt uses it.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from attendnext_keras import _keras

# Deferred: the layer classes are defined per Keras flavour on first use, and importing the package stays cheap.
tf = _keras.LazyModule("tensorflow")

PAD_MODES = ("reflect", "zero", "same")
MAX_FILTER_SIZE = 7


def binomial_filter(size: int) -> np.ndarray:
    """The normalised 2-D binomial low-pass kernel of a size (1–7), shape (size, size), summing to 1."""
    _check_filter_size(size)
    row = np.array([math.comb(size - 1, k) for k in range(size)], dtype=np.float64) / 2 ** (size - 1)
    return np.outer(row, row).astype(np.float32)


def _check_filter_size(size) -> None:
    if not isinstance(size, (int, np.integer)) or isinstance(size, bool) or not 1 <= size <= MAX_FILTER_SIZE:
        raise ValueError(f"`filter_size` must be an integer from 1 to {MAX_FILTER_SIZE}. Received: filter_size={size!r}")


def blur_padding(filter_size: int) -> tuple[int, int]:
    """Pixels padded (before, after) on each spatial axis in the "reflect" and "zero" modes."""
    return (filter_size - 1) // 2, filter_size // 2


def check_blurpool_args(filter_size, strides, pad_mode) -> None:
    _check_filter_size(filter_size)
    if not isinstance(strides, (int, np.integer)) or isinstance(strides, bool) or strides < 1:
        raise ValueError(f"`strides` must be a positive integer. Received: strides={strides!r}")
    if pad_mode not in PAD_MODES:
        raise ValueError(f"`pad_mode` must be one of {PAD_MODES}. Received: pad_mode={pad_mode!r}")


def check_blurpool_input(input_shape, filter_size, pad_mode, layer_name) -> int:
    """Validates a (batch, height, width, channels) shape; returns the channel count."""
    if len(input_shape) != 4:
        raise ValueError(
            f"Layer '{layer_name}' expects a 4-D input (batch, height, width, channels). "
            f"Received: input_shape={tuple(input_shape)}"
        )
    channels = input_shape[-1]
    if channels is None:
        raise ValueError(f"Layer '{layer_name}' needs a known channel count. Received: input_shape={tuple(input_shape)}")
    if pad_mode == "reflect":
        before, after = blur_padding(filter_size)
        for size in input_shape[1:3]:
            if size is not None and size <= max(before, after):
                raise ValueError(
                    f"Layer '{layer_name}': reflect padding of {max(before, after)} pixels needs a spatial size larger "
                    f"than that. Use a smaller `filter_size` or pad_mode='same'. Received: input_shape={tuple(input_shape)}"
                )
    return int(channels)


def blurpool_output_size(size, strides):
    return None if size is None else -(-size // strides)


@functools.lru_cache(maxsize=None)
def _define(flavour: str) -> dict:
    """The classes of this module for one Keras flavour, defined and registered once (both flavours run on
    TensorFlow: one lowering for both)."""
    keras = _keras.get_keras(flavour)

    @_keras.register_serializable(flavour)
    class BlurPool2D(keras.layers.Layer):
        """Anti-aliased downsampling: a fixed binomial blur applied depthwise, then subsampling by `strides`.

        The kernel is a constant, not a weight: it adds no parameters, never trains, and a model using it loads the
        weights of the same model without it (Zhang 2019).

        Args:
            filter_size: side of the binomial kernel, 1–7 (1 is plain subsampling, 3 is [1, 2, 1]/4, 5 is [1, 4, 6, 4, 1]/16).
            strides: subsampling factor (1 blurs without downsampling).
            pad_mode: "reflect", "zero" or "same"; see the module docstring.
            **kwargs: base layer arguments (`name`, `dtype`, ...).

        Call arguments:
            inputs: a (batch, height, width, channels) tensor; output is (batch, ceil(height/s), ceil(width/s), channels).

        Example:
            >>> layer = BlurPool2D(filter_size=3, strides=2)
            >>> layer(np.ones((1, 8, 8, 4), "float32")).shape
            TensorShape([1, 4, 4, 4])

        Reference: R. Zhang, "Making convolutional networks shift-invariant again", ICML 2019.
        """

        def __init__(self, filter_size=3, strides=2, pad_mode="reflect", **kwargs):
            super().__init__(**kwargs)
            check_blurpool_args(filter_size, strides, pad_mode)
            self.filter_size = int(filter_size)
            self.strides = int(strides)
            self.pad_mode = pad_mode

        def build(self, input_shape):
            channels = check_blurpool_input(tuple(input_shape), self.filter_size, self.pad_mode, self.name)
            kernel = binomial_filter(self.filter_size)[:, :, None, None]
            self._kernel = np.ascontiguousarray(np.tile(kernel, (1, 1, channels, 1)))
            super().build(input_shape)

        def call(self, inputs):
            x = inputs
            if self.pad_mode in ("reflect", "zero"):
                before, after = blur_padding(self.filter_size)
                if before or after:
                    paddings = [[0, 0], [before, after], [before, after], [0, 0]]
                    x = tf.pad(x, paddings, mode="REFLECT" if self.pad_mode == "reflect" else "CONSTANT")
            padding = "SAME" if self.pad_mode == "same" else "VALID"
            kernel = tf.constant(self._kernel, dtype=x.dtype)
            strides = [1, self.strides, self.strides, 1]
            return tf.nn.depthwise_conv2d(x, kernel, strides=strides, padding=padding)

        def compute_output_shape(self, input_shape):
            batch, height, width, channels = tuple(input_shape)
            return (batch, blurpool_output_size(height, self.strides), blurpool_output_size(width, self.strides), channels)

        def get_config(self):
            config = super().get_config()
            config.update(filter_size=self.filter_size, strides=self.strides, pad_mode=self.pad_mode)
            return config

    BlurPool2D.__module__ = "attendnext_keras.layers"  # where users import it from
    return {"BlurPool2D": BlurPool2D}


PLAIN_DOWNSAMPLES = ("max", "avg", "dwconv", "decimate")


def apply_aads(x, *, pattern="max", filters=None, kernel_size=3, filter_size=3, strides=2, pad_mode="same",
               antialias=True, plain="max", name, keras=None):
    """Anti-aliased downsampling patterns of Zhang (2019), as functional layers with fixed names.

    * pattern="max":  MaxPool(2, stride 1) → BlurPool(stride s)      (replaces MaxPool(2, stride 2))
    * pattern="conv": Conv(k×k, stride 1) → BN → ReLU → BlurPool(s)  (replaces a strided Conv → BN → ReLU)
    * pattern="blur": BlurPool(s) alone (replaces plain subsampling)

    With `antialias=False` the ablation baseline is built instead, what ordinary networks do: the "conv" pattern
    strides its convolution; "max" and "blur" downsample with `plain`: "max" (MaxPool 2×2 / s), "avg" (AvgPool
    2×2 / s), "dwconv" (3×3 depthwise conv / s → BN → ReLU, as MobileNets do) or "decimate" (keep every s-th pixel,
    no filtering at all). A 1×1 convolution is never strided (the paper's constraint (2)).
    """
    flavour = _keras.resolve_flavour(keras)
    k = _keras.get_keras(flavour)
    if pattern not in ("max", "conv", "blur"):
        raise ValueError(f"`pattern` must be 'max', 'conv' or 'blur'. Received: pattern={pattern!r}")
    if plain not in PLAIN_DOWNSAMPLES:
        raise ValueError(f"`plain` must be one of {PLAIN_DOWNSAMPLES}. Received: plain={plain!r}")
    if pattern == "conv" and kernel_size == 1 and strides > 1 and not antialias:
        raise ValueError(f"'{name}': a strided point-wise (1×1) convolution loses information; use kernel_size > 1.")
    if pattern == "conv" and filters is None:
        raise ValueError(f"'{name}': pattern='conv' needs `filters`.")
    if pattern == "conv":
        x = k.layers.Conv2D(filters, kernel_size, strides=1 if antialias else strides, padding="same", use_bias=False,
                            name=f"{name}_conv")(x)
        x = k.layers.BatchNormalization(name=f"{name}_bn")(x)
        x = k.layers.ReLU(name=f"{name}_relu")(x)
    elif not antialias:
        return _plain_downsample(x, plain, strides, name, k)
    elif pattern == "max":
        x = k.layers.MaxPooling2D(pool_size=2, strides=1, padding="same", name=f"{name}_maxpool")(x)
    if antialias:
        blur_cls = _define(flavour)["BlurPool2D"]
        x = blur_cls(filter_size=filter_size, strides=strides, pad_mode=pad_mode, name=f"{name}_blur")(x)
    return x


def _plain_downsample(x, plain, strides, name, k):
    if plain == "max":
        return k.layers.MaxPooling2D(pool_size=2, strides=strides, padding="same", name=f"{name}_maxpool")(x)
    if plain == "avg":
        return k.layers.AveragePooling2D(pool_size=2, strides=strides, padding="same", name=f"{name}_avgpool")(x)
    if plain == "dwconv":
        x = k.layers.DepthwiseConv2D(3, strides=strides, padding="same", use_bias=False, name=f"{name}_dw")(x)
        x = k.layers.BatchNormalization(name=f"{name}_bn")(x)
        return k.layers.ReLU(name=f"{name}_relu")(x)
    return k.layers.MaxPooling2D(pool_size=1, strides=strides, padding="same", name=f"{name}_subsample")(x)

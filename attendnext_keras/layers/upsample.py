"""NearestUpsample2D: nearest-neighbour upsampling lowered to the TFLite ops the target runs best.

`UpSampling2D` lowers to RESIZE_NEAREST_NEIGHBOR (tf-keras) or TILE/RESHAPE (Keras 3); XNNPACK runs neither, so a model
using them splits into several partitions. Copying the tensor s² times along channels and rearranging with
DEPTH_TO_SPACE(s) gives exactly the same values (every output pixel of a s×s block takes its input pixel), and both ops
stay delegated. Factors that are powers of two are done in ×2 steps to keep each CONCATENATION at four inputs. This is
the default lowering, "depth_to_space".

Arm's Ethos-U NPUs are the opposite: they run RESIZE_NEAREST_NEIGHBOR (factors 2, 4 and 8 on U55/U65) and leave
DEPTH_TO_SPACE to the CPU. lowering="resize" emits one RESIZE_NEAREST_NEIGHBOR (no align_corners, no half-pixel centres:
output pixel i reads input pixel i // s), the same values again. The layer has no weights, so a model can switch
lowering without retraining (`attendnext_keras.deploy.vela.for_target`).
"""

from __future__ import annotations

import functools

from attendnext_keras import _keras

# Deferred: the layer class is defined per Keras flavour on first use.
tf = _keras.LazyModule("tensorflow")

LOWERINGS = ("depth_to_space", "resize")
"""How NearestUpsample2D becomes TFLite ops: CONCATENATION + DEPTH_TO_SPACE (XNNPACK) or RESIZE_NEAREST_NEIGHBOR
(Ethos-U)."""


def upsample_steps(size: int) -> list[int]:
    """Factors applied one after the other: ×2 steps for powers of two, otherwise one step."""
    if size == 1:
        return []
    if size & (size - 1) == 0:
        return [2] * (size.bit_length() - 1)
    return [size]


def check_upsample_args(size, lowering) -> None:
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise ValueError(f"`size` must be a positive integer. Received: size={size!r}")
    if lowering not in LOWERINGS:
        raise ValueError(f"`lowering` must be one of {LOWERINGS}. Received: lowering={lowering!r}")


def resize_nearest(x, size: int):
    """x upsampled by `size` with one ResizeNearestNeighbor op (→ RESIZE_NEAREST_NEIGHBOR): output pixel i takes
    input pixel i // size, as UpSampling2D(size) and the depth_to_space lowering do."""
    if size == 1:
        return x
    height, width = x.shape[1], x.shape[2]
    if height is None or width is None:  # static sizes keep SHAPE/STRIDED_SLICE ops out of the converted model
        target = tf.shape(x)[1:3] * size
    else:
        target = [height * size, width * size]
    return tf.raw_ops.ResizeNearestNeighbor(images=x, size=target, align_corners=False, half_pixel_centers=False)


@functools.lru_cache(maxsize=None)
def _define(flavour: str) -> dict:
    """NearestUpsample2D for one Keras flavour, defined and registered once."""
    keras = _keras.get_keras(flavour)

    @_keras.register_serializable(flavour)
    class NearestUpsample2D(keras.layers.Layer):
        """Nearest-neighbour upsampling by an integer factor, lowered to CONCATENATION + DEPTH_TO_SPACE or to
        RESIZE_NEAREST_NEIGHBOR (identical values).

        Args:
            size: integer upsampling factor (≥ 1) for both spatial axes.
            lowering: "depth_to_space" (CONCATENATION + DEPTH_TO_SPACE, which LiteRT's XNNPACK delegate keeps) or
                "resize" (one RESIZE_NEAREST_NEIGHBOR, which Arm Ethos-U NPUs run).
            **kwargs: base layer arguments.

        Call arguments:
            inputs: (batch, height, width, channels); output is (batch, size·height, size·width, channels), equal to
                `UpSampling2D(size, interpolation="nearest")`.

        Example:
            >>> NearestUpsample2D(2)(np.arange(4, dtype="float32").reshape(1, 2, 2, 1))[0, :, :, 0]
            [[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]]
        """

        def __init__(self, size=2, lowering="depth_to_space", **kwargs):
            super().__init__(**kwargs)
            check_upsample_args(size, lowering)
            self.size = size
            self.lowering = lowering

        def build(self, input_shape):
            if len(input_shape) != 4:
                raise ValueError(
                    f"Layer '{self.name}' expects a 4-D input (batch, height, width, channels). "
                    f"Received: input_shape={tuple(input_shape)}"
                )
            super().build(input_shape)

        def call(self, inputs):
            if self.lowering == "resize":
                return resize_nearest(inputs, self.size)
            x = inputs
            for step in upsample_steps(self.size):
                x = tf.nn.depth_to_space(tf.concat([x] * (step * step), axis=-1), step)
            return x

        def compute_output_shape(self, input_shape):
            batch, height, width, channels = tuple(input_shape)
            scale = lambda d: None if d is None else d * self.size  # noqa: E731
            return (batch, scale(height), scale(width), channels)

        def get_config(self):
            config = super().get_config()
            config.update(size=self.size)
            if self.lowering != "depth_to_space":
                # At its default the option is left out, so configs saved before it existed (and the accuracy
                # study's architecture hashes) stay the same; from_config restores the default.
                config.update(lowering=self.lowering)
            return config

    NearestUpsample2D.__module__ = "attendnext_keras.layers"  # where users import it from
    return {"NearestUpsample2D": NearestUpsample2D}

"""NearestUpsample2D: nearest-neighbour upsampling that LiteRT's XNNPACK delegate keeps in int8.

`UpSampling2D` lowers to RESIZE_NEAREST_NEIGHBOR (tf-keras) or TILE/RESHAPE (Keras 3); XNNPACK runs neither, so a model
using them splits into several partitions. Copying the tensor s² times along channels and rearranging with
DEPTH_TO_SPACE(s) gives exactly the same values (every output pixel of a s×s block takes its input pixel), and both ops
stay delegated. Factors that are powers of two are done in ×2 steps to keep each CONCATENATION at four inputs.
"""

from __future__ import annotations

import functools

from attendnext_keras import _keras

# Deferred: the layer class is defined per Keras flavour on first use.
tf = _keras.LazyModule("tensorflow")


def upsample_steps(size: int) -> list[int]:
    """Factors applied one after the other: ×2 steps for powers of two, otherwise one step."""
    if size == 1:
        return []
    if size & (size - 1) == 0:
        return [2] * (size.bit_length() - 1)
    return [size]


@functools.lru_cache(maxsize=None)
def _define(flavour: str) -> dict:
    """NearestUpsample2D for one Keras flavour, defined and registered once."""
    keras = _keras.get_keras(flavour)

    @_keras.register_serializable(flavour)
    class NearestUpsample2D(keras.layers.Layer):
        """Nearest-neighbour upsampling by an integer factor, lowered to CONCATENATION + DEPTH_TO_SPACE.

        Args:
            size: integer upsampling factor (≥ 1) for both spatial axes.
            **kwargs: base layer arguments.

        Call arguments:
            inputs: (batch, height, width, channels); output is (batch, size·height, size·width, channels), equal to
                `UpSampling2D(size, interpolation="nearest")`.

        Example:
            >>> NearestUpsample2D(2)(np.arange(4, dtype="float32").reshape(1, 2, 2, 1))[0, :, :, 0]
            [[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]]
        """

        def __init__(self, size=2, **kwargs):
            super().__init__(**kwargs)
            if not isinstance(size, int) or isinstance(size, bool) or size < 1:
                raise ValueError(f"`size` must be a positive integer. Received: size={size!r}")
            self.size = size

        def build(self, input_shape):
            if len(input_shape) != 4:
                raise ValueError(
                    f"Layer '{self.name}' expects a 4-D input (batch, height, width, channels). "
                    f"Received: input_shape={tuple(input_shape)}"
                )
            super().build(input_shape)

        def call(self, inputs):
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
            return config

    NearestUpsample2D.__module__ = "attendnext_keras.layers"  # where users import it from
    return {"NearestUpsample2D": NearestUpsample2D}

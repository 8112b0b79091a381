"""Evaluation and inference preprocessing with NumPy and Pillow only (no TensorFlow), for LiteRT on small devices.

This module is the definition of how an image becomes model input outside training; the tf.data evaluation pipeline
(`attendnext_keras.data`) reproduces it in TensorFlow (same pixels within 0.01 of a level, see tests/test_data.py).

    from attendnext_keras.preprocessing import preprocess_image
    x = preprocess_image("photo.jpg", 96)          # float32 (96, 96, 3), pixels in [0, 255]

The transform is timm's evaluation "resize then center crop": resize (bilinear, antialiased) so that the image covers
`floor(size / crop_pct)` pixels on both sides, keeping its aspect ratio, then cut out the central `size`. With the
default crop_pct=0.875 a 96 px model sees the middle 87.5 % of the shorter side, as ImageNet models are evaluated;
crop_pct=1.0 keeps the whole shorter side. Pixels stay in [0, 255] because the models rescale themselves.

Colour handling (`to_rgb`) follows what TensorFlow's decoders do, so both paths agree: grey is replicated to three
channels, palettes are expanded, alpha is dropped (not composited), CMYK is converted by Pillow, 16-bit samples keep
their high byte (as libpng and TensorFlow do), and EXIF orientation is ignored (TensorFlow ignores it too).
"""

from __future__ import annotations

import math
import os

import numpy as np
from PIL import Image

DEFAULT_CROP_PCT = 0.875
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")


def image_size_pair(image_size) -> tuple[int, int]:
    """`image_size` as (height, width): an int gives a square."""
    size = (image_size, image_size) if isinstance(image_size, (int, np.integer)) else tuple(image_size)
    if len(size) != 2 or not all(isinstance(s, (int, np.integer)) and s > 0 for s in size):
        raise ValueError(f"`image_size` must be a positive int or (height, width). Received: image_size={image_size!r}")
    return int(size[0]), int(size[1])


def scaled_size(image_size, crop_pct=DEFAULT_CROP_PCT) -> tuple[int, int]:
    """The (height, width) the resized image must cover before the center crop: floor(size / crop_pct), as timm."""
    if not isinstance(crop_pct, (int, float)) or not 0 < crop_pct <= 1:
        raise ValueError(f"`crop_pct` must be in (0, 1]. Received: crop_pct={crop_pct!r}")
    height, width = image_size_pair(image_size)
    return math.floor(height / crop_pct), math.floor(width / crop_pct)


def eval_geometry(height, width, image_size, crop_pct=DEFAULT_CROP_PCT) -> tuple[int, int, int, int]:
    """(resized_height, resized_width, top, left) of the evaluation transform for a height × width image.

    Integer arithmetic only, so the TensorFlow pipeline computes exactly the same numbers: the side that needs the
    larger scale gets its target, the other side is floor(side × target / binding side).
    """
    target_h, target_w = image_size_pair(image_size)
    scaled_h, scaled_w = scaled_size(image_size, crop_pct)
    if scaled_h * width >= scaled_w * height:  # height needs the larger scale
        resized_h, resized_w = scaled_h, (width * scaled_h) // height
    else:
        resized_h, resized_w = (height * scaled_w) // width, scaled_w
    return resized_h, resized_w, (resized_h - target_h) // 2, (resized_w - target_w) // 2


def _read_file(path) -> np.ndarray:
    """An image file → uint8 (H, W, 3); a missing, corrupt or truncated file is an error naming it."""
    try:
        with Image.open(path) as opened:
            return to_rgb(opened)  # the first frame of an animation, as tf.io.decode_image(expand_animations=False)
    except FileNotFoundError as error:
        raise FileNotFoundError(f"Image file '{os.fspath(path)}' does not exist.") from error
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        # UnidentifiedImageError and truncated data are OSErrors; a decompression bomb (more pixels than Pillow's
        # limit) is refused like a corrupt file
        raise ValueError(f"Cannot read image file '{os.fspath(path)}': {error}") from error


def to_rgb(image) -> np.ndarray:
    """A PIL image, an array (H, W), (H, W, 1|3|4) or a file path → uint8 array (H, W, 3). See the module docstring.

    Arrays: uint8 as is, uint16 keeps the high byte, other numbers are pixel values clipped to [0, 255] and rounded.
    """
    if isinstance(image, (str, os.PathLike)):
        return _read_file(image)
    if isinstance(image, Image.Image):
        if image.mode.startswith("I"):  # 16-bit ("I;16*") or 32-bit ("I", how older Pillow opens 16-bit PNG) grey
            array = np.asarray(image).astype(np.int64)
            return _grey_to_rgb(np.clip(array, 0, 65535) >> 8)
        if image.mode == "F":
            return to_rgb(np.asarray(image))
        return np.asarray(image if image.mode == "RGB" else image.convert("RGB"))
    array = np.asarray(image)
    if not (array.ndim == 2 or array.ndim == 3 and array.shape[-1] in (1, 3, 4)) or array.size == 0:
        raise ValueError(f"An image array must be (H, W) or (H, W, 1|3|4) and not empty. Received: shape={array.shape}")
    if array.ndim == 3:
        array = array[..., 0] if array.shape[-1] == 1 else array[..., :3]
    if array.dtype == np.uint16:
        array = array >> 8
    elif array.dtype != np.uint8:
        array = array.astype(np.float64)
        if not np.isfinite(array).all():
            raise ValueError(f"An image array holds non-finite pixel values (NaN or infinity): "
                             f"{int((~np.isfinite(array)).sum())} of {array.size}.")
        array = np.round(np.clip(array, 0, 255))
    array = array.astype(np.uint8)
    return _grey_to_rgb(array) if array.ndim == 2 else array


def _grey_to_rgb(grey):
    return np.repeat(grey.astype(np.uint8)[..., None], 3, axis=-1)


def resize_bilinear(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Antialiased bilinear resize of an (H, W, C) array → float32, one channel at a time in Pillow's float mode.

    Float mode because Pillow rounds 8-bit images to integers after each of its two passes; in float it equals
    tf.image.resize(method="bilinear", antialias=True) to about 1e-3 of a level.
    """
    channels = [Image.fromarray(np.ascontiguousarray(image[..., c], dtype=np.float32)).resize(
        (width, height), Image.BILINEAR) for c in range(image.shape[-1])]
    return np.stack([np.asarray(c, dtype=np.float32) for c in channels], axis=-1)


def preprocess_image(image, image_size, crop_pct=DEFAULT_CROP_PCT) -> np.ndarray:
    """A PIL image, an image array or a file path → float32 (height, width, 3) model input, pixels in [0, 255].

    Resize so that the image covers floor(size / crop_pct) on both sides, then center crop `image_size` (an int or
    (height, width)). Add the batch axis yourself: `x[None]`.
    """
    target_h, target_w = image_size_pair(image_size)
    rgb = to_rgb(image)
    resized_h, resized_w, top, left = eval_geometry(rgb.shape[0], rgb.shape[1], (target_h, target_w), crop_pct)
    resized = resize_bilinear(rgb, resized_h, resized_w)
    return np.clip(resized[top:top + target_h, left:left + target_w], 0.0, 255.0)  # float weights overshoot by 1e-4


def describe(crop_pct=DEFAULT_CROP_PCT) -> dict:
    """The evaluation preprocessing as data, for the metadata JSON written next to an exported model."""
    scaled_size(1, crop_pct)  # validates crop_pct
    return {"function": "attendnext_keras.preprocessing.preprocess_image", "color": "RGB",
            "resize": "bilinear, antialiased, to cover floor(size / crop_pct) keeping the aspect ratio",
            "crop": "center", "crop_pct": float(crop_pct), "pixel_range": [0, 255], "dtype": "float32"}

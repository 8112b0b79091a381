"""Shift consistency (Zhang 2019, "Making convolutional networks shift-invariant again"): how often a classifier
keeps its answer when the image moves by a few pixels, the property anti-aliased downsampling is meant to improve.

For each test image, evaluated at `size + max_shift` pixels, two `size` × `size` crops are cut at offsets (dx, dy)
drawn uniformly from [0, max_shift)²: consistency is the fraction of images whose top-1 class is the same for both
crops; the feature measure is the mean cosine similarity of the two crops' feature maps where the classifier pools
them (the input of the model's *last* global pooling: MobileNetV3's squeeze-and-excitation blocks pool too).
"""

from __future__ import annotations

import warnings

import numpy as np

from attendnext_keras import _keras

MEASURE_VERSION = 2
"""Stored with every result; raised when what is measured changes (2, 2026-12-02: features read before the *last*
global pooling, not the first: version 1 read MobileNetV3's first squeeze-and-excitation input, a 12×12×72 map)."""


def crop_pairs(images, size: int, max_shift: int = 16, seed: int = 0):
    """Two crops of each image (N, size + max_shift, size + max_shift, C) at random offsets: (a, b, offsets)."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[1] != images.shape[2] or images.shape[1] != size + max_shift:
        raise ValueError(f"Images must be (N, {size + max_shift}, {size + max_shift}, C) for {size}-px crops shifted "
                         f"by up to {max_shift}. Received: {images.shape}")
    rng = np.random.default_rng(seed)
    offsets = rng.integers(0, max_shift, size=(len(images), 2, 2))  # image, crop, (dy, dx)
    a = np.stack([im[o[0, 0]:o[0, 0] + size, o[0, 1]:o[0, 1] + size] for im, o in zip(images, offsets)])
    b = np.stack([im[o[1, 0]:o[1, 0] + size, o[1, 1]:o[1, 1] + size] for im, o in zip(images, offsets)])
    return a, b, offsets


def shift_consistency(predict, images, size: int, max_shift: int = 16, seed: int = 0, batch: int = 64) -> dict:
    """`predict(batch) -> (scores (N, classes), features (N, ...) or None)`; see the module docstring."""
    a, b, _ = crop_pairs(images, size, max_shift, seed)
    same, cosines = [], []
    for start in range(0, len(a), batch):
        scores_a, feats_a = predict(a[start:start + batch])
        scores_b, feats_b = predict(b[start:start + batch])
        same.append(np.argmax(scores_a, -1) == np.argmax(scores_b, -1))
        if feats_a is not None:
            fa = np.asarray(feats_a, np.float64).reshape(len(scores_a), -1)
            fb = np.asarray(feats_b, np.float64).reshape(len(scores_b), -1)
            norms = np.linalg.norm(fa, axis=1) * np.linalg.norm(fb, axis=1)
            cosines.append(np.where(norms > 0, (fa * fb).sum(1) / np.maximum(norms, 1e-30), 1.0))
    same = np.concatenate(same)
    return {"consistency": float(same.mean()), "images": int(same.size), "max_shift": max_shift,
            "feature_cosine": float(np.concatenate(cosines).mean()) if cosines else None,
            "measure_version": MEASURE_VERSION}


def pooling_layer(model):
    """The model's last global pooling layer: its input is the feature map the classifier pools."""
    for layer in reversed(model.layers):
        if type(layer).__name__ in ("GlobalAveragePooling2D", "GlobalMaxPooling2D"):
            return layer
    raise ValueError(f"Model '{model.name}' has no global pooling layer to read features before.")


def keras_predictor(model):
    """`predict` for `shift_consistency` from a Keras classifier: its outputs and its pre-pooling features."""
    K = _keras.get_keras(_keras.flavour_of(model))
    both = K.Model(model.inputs, [model.outputs[0], pooling_layer(model).input])

    def predict(images):
        with warnings.catch_warnings():  # keras.applications models list their one input; Keras warns on a tensor
            warnings.filterwarnings("ignore", message="The structure of `inputs` doesn't match")
            scores, features = both(np.asarray(images, np.float32), training=False)
        return np.asarray(scores), np.asarray(features)

    return predict

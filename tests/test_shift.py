"""Shift consistency (attendnext_keras.experiments.shift) against models whose answer is known."""

import numpy as np
import pytest

from attendnext_keras.experiments import shift


def _images(n=40, size=24, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (n, size, size, 3)).astype(np.float32)


def test_a_global_pool_model_is_perfectly_consistent_on_constant_images():
    """Global average pooling cannot see a shift of a constant image: consistency and feature cosine are 1."""
    images = np.stack([np.full((24, 24, 3), c, np.float32) for c in np.linspace(0, 255, 12)])

    def predict(batch):
        pooled = batch.mean(axis=(1, 2))
        return np.stack([pooled[:, 0], 255 - pooled[:, 0]], 1), batch

    result = shift.shift_consistency(predict, images, size=16, max_shift=8)
    assert result["consistency"] == 1.0 and result["feature_cosine"] == pytest.approx(1.0)
    assert result["images"] == 12 and result["max_shift"] == 8


def test_a_model_that_reads_one_pixel_changes_its_mind_where_the_offset_does():
    """The top-left pixel's parity decides the class: consistency equals the fraction of images whose two crops
    start on pixels of the same parity, computed from the same offsets."""
    images = np.zeros((200, 24, 24, 1), np.float32)
    images[:, :, :, 0] = (np.arange(24)[None, :] % 2)[None]  # columns alternate 0, 1

    def predict(batch):
        bit = batch[:, 0, 0, 0]
        return np.stack([bit, 1 - bit], 1), None

    _, _, offsets = shift.crop_pairs(images, 16, 8, seed=3)
    expected = float(np.mean(offsets[:, 0, 1] % 2 == offsets[:, 1, 1] % 2))
    result = shift.shift_consistency(predict, images, 16, 8, seed=3)
    assert result["consistency"] == pytest.approx(expected) and 0.3 < expected < 0.7
    assert result["feature_cosine"] is None


def test_crops_are_the_requested_windows():
    images = _images(3)
    a, b, offsets = shift.crop_pairs(images, 16, 8, seed=1)
    for i in range(3):
        (ya, xa), (yb, xb) = offsets[i]
        np.testing.assert_array_equal(a[i], images[i, ya:ya + 16, xa:xa + 16])
        np.testing.assert_array_equal(b[i], images[i, yb:yb + 16, xb:xb + 16])
    assert offsets.min() >= 0 and offsets.max() < 8
    with pytest.raises(ValueError, match=r"\(N, 24, 24, C\)"):
        shift.crop_pairs(images[:, :20, :20], 16, 8)


def test_keras_predictor_reads_features_before_the_last_global_pooling():
    import keras

    image = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", name="early")(image)
    gate = keras.layers.GlobalAveragePooling2D(keepdims=True)(x)  # squeeze-and-excitation pools early maps too
    x = keras.layers.Multiply()([x, keras.layers.Activation("sigmoid")(gate)])
    x = keras.layers.Conv2D(6, 3, strides=2, padding="same", name="features")(x)
    model = keras.Model(image, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x)))
    scores, features = shift.keras_predictor(model)(_images(2, 16))
    assert scores.shape == (2, 2) and features.shape == (2, 8, 8, 6)
    flat = keras.Model(image, keras.layers.Dense(2)(keras.layers.Flatten()(image)))
    with pytest.raises(ValueError, match="no global pooling layer"):
        shift.pooling_layer(flat)


def test_mobilenet_v3_features_are_its_last_map_not_a_squeeze_excitation_input():
    from attendnext_keras import registry

    model = registry.create_model("mobilenet_v3_small", input_size=32, classes=5)
    _, features = shift.keras_predictor(model)(_images(1, 32))
    assert features.shape == (1, 1, 1, 576)  # the 576-channel map the head pools (version 1 read a 16-channel SE input)

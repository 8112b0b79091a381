"""DC-AC, AC, BlurPool2D and NearestUpsample2D: maths against NumPy, both Keras flavours, serialization, errors."""

import numpy as np
import pytest

import reference as ref
from attendnext_keras import layers
from attendnext_keras._keras import copy_weights, get_keras

TOL = dict(rtol=1e-5, atol=1e-5)  # float32 against float64 NumPy
WEIGHTED_PARTS = [f"{b}_{p}" for b in ("attention", "feature") for p in ("dw", "dw_bn", "embed", "embed_bn", "expand")]


def randomize(sublayers, rng):
    """Random weights for every part, BN variances positive, so that each term of the maths matters."""
    weights = {}
    for part, layer in sublayers.items():
        values = []
        for w in layer.get_weights():
            values.append(rng.uniform(0.5, 1.5, w.shape).astype("float32") if "bn" in part
                          else rng.normal(0, 0.5, w.shape).astype("float32"))
        if values:
            layer.set_weights(values)
            weights[part] = values
    return weights


def weights_of(sublayers):
    return {part: layer.get_weights() for part, layer in sublayers.items() if layer.get_weights()}


@pytest.mark.parametrize("flavour", ["keras", "tf_keras"])
@pytest.mark.parametrize("s,expansion,residual", [(2, "depth_to_space", True), (4, "nearest", False),
                                                  (1, "depth_to_space", True), (2, "nearest", True),
                                                  (4, "resize", True)])
def test_dcac_matches_numpy(flavour, s, expansion, residual, rng):
    layer = layers.for_flavour(flavour).DoubleCondensingAttentionCondenser(
        condense_factor=s, embed_channels=6, kernel_size=3, expansion=expansion, residual=residual)
    v = rng.normal(size=(2, 8, 8, 12)).astype("float32")
    layer(v)
    w = randomize(layer.ops, rng)
    np.testing.assert_allclose(np.asarray(layer(v)), ref.dcac(v, w, s, residual), **TOL)


@pytest.mark.parametrize("flavour", ["keras", "tf_keras"])
def test_attention_condenser_matches_numpy(flavour, rng):
    layer = layers.for_flavour(flavour).AttentionCondenser(condense_factor=2, embed_ratio=0.5, kernel_size=3)
    v = rng.normal(size=(2, 8, 8, 16)).astype("float32")
    layer(v)
    w = randomize(layer.ops, rng)
    assert layer.ops["scale"].get_weights()[0].shape == (1, 1, 16, 1)  # S: one learned scale per channel
    np.testing.assert_allclose(np.asarray(layer(v)), ref.attention_condenser(v, w, 2), **TOL)


def test_dcac_has_no_scale_and_two_branches():
    layer = layers.DoubleCondensingAttentionCondenser(condense_factor=2, embed_channels=4)
    layer(np.zeros((1, 8, 8, 16), "float32"))
    assert "scale" not in layer.ops and {"attention_embed", "feature_embed"} <= set(layer.ops)
    # Per branch: depthwise 3×3·C + BN 4·C + embed C·E + BN 4·E + expand E·C + C (bias).
    c, e = 16, 4
    assert layer.count_params() == 2 * (9 * c + 4 * c + c * e + 4 * e + e * c + c)


@pytest.mark.parametrize("kind", ["dcac", "ac"])
def test_flat_block_equals_layer(kind, rng):
    """apply_dcac / apply_attention_condenser (the builder's flat graph) compute what the layer computes."""
    keras = get_keras("keras")
    cls = layers.DoubleCondensingAttentionCondenser if kind == "dcac" else layers.AttentionCondenser
    layer = cls(condense_factor=2, embed_channels=5)
    v = rng.normal(size=(1, 8, 8, 10)).astype("float32")
    layer(v)
    randomize(layer.ops, rng)
    apply = layers.apply_dcac if kind == "dcac" else layers.apply_attention_condenser
    inp = keras.Input((8, 8, 10))
    model = keras.Model(inp, apply(inp, name="blk", condense_factor=2, embed_channels=5))
    for part, sub in layer.ops.items():
        if sub.get_weights():
            model.get_layer(f"blk_{part}").set_weights(sub.get_weights())
    np.testing.assert_allclose(model(v), layer(v), **TOL)
    assert model.count_params() == layer.count_params()


# ---------------------------------------------------------------------------------------------------------------------
# BlurPool2D


@pytest.mark.parametrize("size", range(1, 8))
def test_binomial_filter_values(size):
    kernel = layers.binomial_filter(size)
    assert kernel.shape == (size, size)
    assert kernel.sum() == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(kernel, ref.binomial(size), atol=1e-7)
    np.testing.assert_allclose(kernel, kernel.T)


def test_binomial_filter_known_rows():
    np.testing.assert_allclose(layers.binomial_filter(3), np.outer([1, 2, 1], [1, 2, 1]) / 16)
    np.testing.assert_allclose(layers.binomial_filter(5)[2], np.array([1, 4, 6, 4, 1]) * 6 / 256)


@pytest.mark.parametrize("flavour", ["keras", "tf_keras"])
@pytest.mark.parametrize("size,stride,pad_mode", [(3, 2, "reflect"), (5, 2, "zero"), (4, 2, "same"), (7, 3, "reflect"),
                                                  (2, 1, "zero"), (1, 2, "same"), (6, 2, "reflect")])
def test_blurpool_matches_numpy(flavour, size, stride, pad_mode, rng):
    x = rng.normal(size=(2, 9, 10, 3)).astype("float32")
    y = np.asarray(layers.for_flavour(flavour).BlurPool2D(size, stride, pad_mode)(x))
    expected = ref.blurpool(x, size, stride, pad_mode)
    assert y.shape == (2, -(-9 // stride), -(-10 // stride), 3) == expected.shape
    np.testing.assert_allclose(y, expected, **TOL)


def test_blurpool_constant_image_stays_constant():
    x = np.full((1, 12, 12, 5), 3.0, "float32")
    np.testing.assert_allclose(layers.BlurPool2D(5, 2, "reflect")(x), 3.0, rtol=1e-6)
    # Zero padding darkens the border only: the interior keeps DC gain 1.
    y = np.asarray(layers.BlurPool2D(5, 2, "zero")(x))
    np.testing.assert_allclose(y[:, 1:-1, 1:-1], 3.0, rtol=1e-6)
    assert y[0, 0, 0, 0] < 3.0


def test_blurpool_is_not_trainable(rng):
    keras = get_keras("keras")
    inp = keras.Input((8, 8, 2))
    blur = layers.BlurPool2D(3, 2, name="blur")
    x = keras.layers.Conv2D(2, 3, padding="same")(inp)
    model = keras.Model(inp, keras.layers.GlobalAveragePooling2D()(blur(x)))
    assert blur.weights == [] and blur.count_params() == 0
    model.compile(optimizer=keras.optimizers.SGD(1.0), loss="mse")
    data = rng.normal(size=(8, 8, 8, 2)).astype("float32")
    model.fit(data, rng.normal(size=(8, 2)).astype("float32"), epochs=2, verbose=0)
    probe = rng.normal(size=(1, 8, 8, 2)).astype("float32")
    np.testing.assert_allclose(blur(probe), ref.blurpool(probe, 3, 2, "reflect"), **TOL)


def test_blurpool_reduces_shift_sensitivity(flower_images):
    """A one-pixel shift moves the output of a random conv stack less with BlurPool than with strided subsampling."""
    keras = get_keras("keras")
    x = flower_images / 127.5 - 1.0

    def stack(downsample):
        inp = keras.Input((64, 64, 3))
        y = inp
        for i in range(3):
            y = keras.layers.Conv2D(16, 3, padding="same", activation="relu",
                                    kernel_initializer=keras.initializers.HeNormal(seed=i))(y)
            y = downsample()(y)
        return keras.Model(inp, y)

    def sensitivity(model):
        base = np.asarray(model(x))
        shifted = np.asarray(model(np.roll(x, 1, axis=2)))
        return np.abs(shifted - base).mean() / np.abs(base).mean()

    plain = sensitivity(stack(lambda: keras.layers.MaxPooling2D(pool_size=1, strides=2)))
    blurred = sensitivity(stack(lambda: layers.BlurPool2D(5, 2, "reflect")))
    assert blurred < 0.6 * plain, (blurred, plain)


# ---------------------------------------------------------------------------------------------------------------------
# NearestUpsample2D


@pytest.mark.parametrize("size", [1, 2, 3, 4])
def test_nearest_upsample_equals_repeat(size, rng):
    x = rng.normal(size=(2, 3, 5, 4)).astype("float32")
    np.testing.assert_array_equal(layers.NearestUpsample2D(size)(x), ref.upsample_nearest(x, size))


# ---------------------------------------------------------------------------------------------------------------------
# Both flavours, serialization


def _demo_model(flavour):
    """A small model using every layer class, with fixed-seed weights."""
    keras = get_keras(flavour)
    L = layers.for_flavour(flavour)
    inp = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", name="conv")(inp)
    x = L.BlurPool2D(3, 2, "reflect", name="blur")(x)
    x = L.DoubleCondensingAttentionCondenser(condense_factor=2, embed_channels=4, name="dcac")(x)
    x = L.AttentionCondenser(condense_factor=2, name="ac")(x)
    x = L.NearestUpsample2D(2, name="up")(x)
    return keras.Model(inp, x)


def _seeded_weights(model, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.uniform(0.5, 1.5, w.shape).astype("float32") for w in model.get_weights()]


def test_flavours_agree(rng):
    k3, k2 = _demo_model("keras"), _demo_model("tf_keras")
    assert k3.count_params() == k2.count_params()
    k3.set_weights(_seeded_weights(k3))
    assert copy_weights(k3, k2) == len(k3.weights)
    x = rng.normal(size=(2, 16, 16, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(k3(x)), np.asarray(k2(x)), rtol=1e-5, atol=1e-5)


def test_keras3_save_load_round_trip(tmp_path, rng):
    keras = get_keras("keras")
    model = _demo_model("keras")
    model.set_weights(_seeded_weights(model))
    path = tmp_path / "demo.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)  # no custom_objects: the classes are registered
    x = rng.normal(size=(1, 16, 16, 3)).astype("float32")
    np.testing.assert_array_equal(model(x), loaded(x))
    assert loaded.get_layer("dcac").get_config() == model.get_layer("dcac").get_config()


@pytest.mark.parametrize("fmt", ["h5", "tf"])
def test_tf_keras_save_load_round_trip(tmp_path, fmt, rng):
    tf_keras = get_keras("tf_keras")
    model = _demo_model("tf_keras")
    model.set_weights(_seeded_weights(model))
    path = str(tmp_path / ("demo.h5" if fmt == "h5" else "demo_savedmodel"))
    model.save(path, save_format=fmt)
    loaded = tf_keras.models.load_model(path)
    x = rng.normal(size=(1, 16, 16, 3)).astype("float32")
    np.testing.assert_array_equal(model(x), loaded(x))


@pytest.mark.parametrize("cls_name,kwargs", [
    ("DoubleCondensingAttentionCondenser", dict(condense_factor=4, embed_channels=3, kernel_size=5,
                                                expansion="bilinear", residual=False, filters=None)),
    ("AttentionCondenser", dict(condense_factor=2, embed_ratio=0.5)),
    ("BlurPool2D", dict(filter_size=5, strides=3, pad_mode="zero")),
    ("NearestUpsample2D", dict(size=3)),
])
def test_get_config_round_trip(cls_name, kwargs):
    cls = getattr(layers, cls_name)
    layer = cls(**kwargs, name="x")
    clone = cls.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    for key, value in kwargs.items():
        assert layer.get_config()[key] == value


# ---------------------------------------------------------------------------------------------------------------------
# Bad input


@pytest.mark.parametrize("make,shape,message", [
    (lambda L: L.DoubleCondensingAttentionCondenser(), (2, 8, 8), "4-D input"),
    (lambda L: L.DoubleCondensingAttentionCondenser(condense_factor=4), (1, 10, 8, 4), "divisible by condense_factor=4"),
    (lambda L: L.DoubleCondensingAttentionCondenser(filters=16), (1, 8, 8, 8), "must equal the input channels"),
    (lambda L: L.AttentionCondenser(), (1, 8, 8, 3, 1), "4-D input"),
    (lambda L: L.BlurPool2D(), (4, 4), "4-D input"),
    (lambda L: L.BlurPool2D(7, pad_mode="reflect"), (1, 3, 3, 2), "reflect padding"),
])
def test_bad_inputs_raise(make, shape, message):
    with pytest.raises(ValueError, match=message):
        make(layers)(np.zeros(shape, "float32"))


@pytest.mark.parametrize("kwargs,message", [
    (dict(filter_size=0), "filter_size"), (dict(filter_size=8), "filter_size"),
    (dict(filter_size=3.0), "filter_size"), (dict(strides=0), "strides"), (dict(pad_mode="circular"), "pad_mode"),
])
def test_blurpool_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        layers.BlurPool2D(**kwargs)


@pytest.mark.parametrize("kwargs,message", [
    (dict(condense_factor=0), "condense_factor"), (dict(kernel_size=2), "kernel_size"),
    (dict(expansion="cubic"), "expansion"), (dict(embed_channels=0), "embed_channels"),
])
def test_condenser_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        layers.DoubleCondensingAttentionCondenser(**kwargs)

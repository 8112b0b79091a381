"""The AttendNeXt builder: variants, Keras Applications behaviour, specs and constraints, features, profile."""

import dataclasses

import numpy as np
import pytest

import attendnext_keras as an
from attendnext_keras import specs
from attendnext_keras._keras import copy_weights


@pytest.fixture(scope="module")
def micro_pair():
    """The micro variant (5 classes) in both flavours, each with its own random weights."""
    k3 = an.AttendNeXt(variant="micro", classes=5)
    k2 = an.AttendNeXt(variant="micro", classes=5, keras="tf_keras")
    return k3, k2


@pytest.fixture(scope="module")
def default_build():
    """Each registered variant with default arguments, built once per flavour for the whole module."""
    cache = {}

    def build(variant, flavour="keras"):
        if (variant, flavour) not in cache:
            cache[variant, flavour] = an.AttendNeXt(variant=variant, keras=flavour)
        return cache[variant, flavour]

    return build


@pytest.mark.parametrize("variant", an.list_variants())
def test_variant_builds_in_both_flavours(variant, default_build):
    k3 = default_build(variant)
    k2 = default_build(variant, "tf_keras")
    size = an.VARIANTS[variant].input_size
    assert k3.input_shape == k2.input_shape == (None, size, size, 3)
    assert k3.output_shape == k2.output_shape == (None, 1000)
    assert k3.count_params() == k2.count_params()
    assert [l.name for l in k3.layers] == [l.name for l in k2.layers]


def test_flavours_give_the_same_outputs(micro_pair, flower_images):
    k3, k2 = micro_pair
    copy_weights(k3, k2)
    x = np.pad(flower_images[:2], ((0, 0), (16, 16), (16, 16), (0, 0)), mode="edge")  # 64 → 96 px
    np.testing.assert_allclose(np.asarray(k3(x)), np.asarray(k2(x)), atol=1e-5)


def test_parameter_budgets(default_build):
    base = default_build("base")
    assert base.count_params() == 3_255_256 <= 4_000_000  # paper: > 1.37× smaller than MobileNetV3-L (5.4 M)
    # Paper scale means capacity in the backbone: the 1000-class head holds 31 % (base_v0's held 75 %).
    assert base.get_layer("predictions").count_params() == 1_025_000
    first = default_build("base_v0")
    head = sum(first.get_layer(n).count_params() for n in ("head_fc", "predictions"))
    assert head / first.count_params() > 0.74
    assert default_build("micro").count_params() <= 256_000
    # tiny is small_v2 at width 0.75: below MobileNetV3-Small 0.75 (2.05 M) in parameters.
    assert default_build("tiny").count_params() == 839_440 < default_build("small_v2").count_params() == 1_237_272


@pytest.mark.parametrize("pooling,shape", [(None, (None, 3, 3, 112)), ("avg", (None, 112)), ("max", (None, 112))])
def test_include_top_false_pooling(pooling, shape):
    model = an.AttendNeXt(variant="micro", include_top=False, pooling=pooling)
    assert model.output_shape == shape
    assert not any(l.name == "predictions" for l in model.layers)


def test_classes_activation_and_input_size():
    model = an.AttendNeXt(variant="micro", classes=7, classifier_activation=None, input_shape=(64, 128, 3))
    assert model.output_shape == (None, 7)
    assert model.get_layer("predictions").get_config()["activation"] == "linear"
    probs = an.AttendNeXt(variant="micro", classes=7, input_shape=(64, 64, 3))(np.zeros((1, 64, 64, 3)))
    np.testing.assert_allclose(np.sum(probs), 1.0, rtol=1e-5)


def test_input_tensor():
    import keras

    tensor = keras.Input((64, 64, 3))
    model = an.AttendNeXt(variant="micro", input_tensor=tensor, include_top=False, pooling="avg")
    assert model.inputs[0] is tensor


@pytest.mark.parametrize("variant", an.list_variants())
def test_feature_maps_have_the_declared_strides_and_channels(variant):
    spec = an.VARIANTS[variant]
    size = spec.size_divisor * 2
    features = an.feature_extractor(an.AttendNeXt(variant=variant, include_top=False, input_shape=(size, size, 3)))
    info = an.feature_info(variant)
    for level, entry in zip(("P2", "P3", "P4", "P5"), info):
        shape = features.output[level].shape
        assert shape[1] == shape[2] == size // entry["reduction"]
        assert shape[-1] == entry["num_chs"]
    assert [e["reduction"] for e in info] == [4, 8, 16, 32]


def test_weights_path_round_trip(tmp_path, micro_pair):
    k3, _ = micro_pair
    path = tmp_path / "micro.weights.h5"
    k3.save_weights(path)
    loaded = an.AttendNeXt(variant="micro", classes=5, weights=str(path))
    x = np.random.default_rng(0).uniform(0, 255, (1, 96, 96, 3)).astype("float32")
    np.testing.assert_array_equal(k3(x), loaded(x))


@pytest.mark.parametrize("kwargs,message", [
    (dict(weights="imagenet"), "No pretrained weights are published"),
    (dict(weights="/nonexistent/file.weights.h5"), "no file at that path"),
    (dict(input_shape=(100, 100, 3)), "multiples of 32"),
    (dict(input_shape=(96, 96)), "height, width, channels"),
    (dict(include_top=False, pooling="mean"), "pooling"),
    (dict(classes=0), "classes"),
    (dict(variant="huge"), "Unknown AttendNeXt variant"),
    (dict(attention="transformer"), "attention"),
    (dict(alpha=0), "alpha"),
])
def test_bad_arguments(kwargs, message):
    kwargs.setdefault("variant", "micro")
    with pytest.raises(ValueError, match=message):
        an.AttendNeXt(**kwargs)


# ---------------------------------------------------------------------------------------------------------------------
# Ablation switches and the spec


def _layer_kinds(model):
    return {type(l).__name__ for l in model.layers}


def test_ablation_switches(default_build):
    ac = an.AttendNeXt(variant="micro", attention="ac")
    assert any("_ac_" in l.name for l in ac.layers) and not any("_dcac_" in l.name for l in ac.layers)
    with pytest.raises(specs.ConstraintError, match="at least two"):
        an.AttendNeXt(variant="micro", attention="none")
    none = an.AttendNeXt(variant="micro", attention="none", enforce_constraints=False)
    assert "Multiply" not in _layer_kinds(none)
    with pytest.raises(specs.ConstraintError, match=r"constraint \(3\)"):
        an.AttendNeXt(variant="micro", antialias=False)
    plain = an.AttendNeXt(variant="micro", antialias=False, enforce_constraints=False)
    assert "BlurPool2D" not in _layer_kinds(plain) and "BlurPool2D" in _layer_kinds(default_build("micro"))
    assert plain.output_shape == none.output_shape == (None, 1000)
    # Without anti-aliasing every stage downsamples as ordinary networks do (default: 2×2 max-pool / 2).
    downsamplers = [l for l in plain.layers if "_down" in l.name]
    assert {type(l).__name__ for l in downsamplers} == {"MaxPooling2D"}
    assert all(l.pool_size == (2, 2) and l.strides == (2, 2) for l in downsamplers)
    for kind, layer in (("avg", "AveragePooling2D"), ("dwconv", "DepthwiseConv2D")):
        spec = an.VARIANTS["micro"].replace(antialias=False, plain_downsample=kind)
        model = an.AttendNeXt(spec=spec, enforce_constraints=False)
        assert layer in {type(l).__name__ for l in model.layers if "_down" in l.name}, kind
    with pytest.raises(ValueError, match="`plain_downsample` must be one of"):
        an.AttendNeXt(spec=an.VARIANTS["micro"].replace(plain_downsample="bilinear"))


def test_width_multiplier_scales_widths():
    narrow = an.AttendNeXt(variant="base_v0", alpha=0.5, include_top=False)
    assert narrow.output_shape[-1] == 256  # 512 × 0.5
    assert narrow.count_params() < an.AttendNeXt(variant="base_v0", include_top=False).count_params() / 3


def test_spec_is_plain_data():
    base = an.VARIANTS["base_v0"]
    copy = dataclasses.replace(base)
    assert copy == base and hash(copy) == hash(base)
    assert base.replace(width=0.5) != base
    text = an.summarize_spec("base_v0")
    assert "stage1" in text and "3 column(s)" in text and "DCAC(s=4)" in text
    model = an.AttendNeXt(spec=base.replace(name="custom", width=0.5, input_size=64))
    assert model.name == "attendnext_custom" and model.input_shape == (None, 64, 64, 3)


def _stage(columns=2, merge="concat", downsample="max", kinds=("dwsep", "dcac")):
    blocks = tuple(specs.BlockSpec(k, filters=16 if k != "dcac" else None) for k in kinds)
    return specs.StageSpec(columns=tuple(specs.ColumnSpec(blocks) for _ in range(columns)), downsample=downsample,
                           merge=merge)


def _tiny_spec(**changes):
    spec = specs.ModelSpec(name="tiny", input_size=32, stem=specs.StemSpec(8),
                           stages=(_stage(2), _stage(1)), head=specs.HeadSpec(hidden=0, dropout=0.0))
    return spec.replace(**changes)


@pytest.mark.parametrize("changes,message", [
    (dict(stem=specs.StemSpec(filters=8, kernel_size=1, strides=2)), r"constraint \(2\).*point-wise"),
    (dict(antialias=False), r"constraint \(3\)"),
    (dict(stages=(_stage(1), _stage(1))), r"constraint \(1\).*no stage has two"),
    (dict(stages=(_stage(1), _stage(2))), r"constraint \(1\).*may not grow"),
    (dict(stages=(_stage(2), _stage(1, kinds=("dwsep",)))), "at least two"),
])
def test_constraint_checker_rejects(changes, message):
    with pytest.raises(specs.ConstraintError, match=message):
        specs.check_constraints(_tiny_spec(**changes))
    with pytest.raises(specs.ConstraintError):
        an.AttendNeXt(spec=_tiny_spec(**changes), classes=10)


def test_blur_size_one_is_not_antialiased():
    stage = dataclasses.replace(_stage(2), blur_size=1)
    with pytest.raises(specs.ConstraintError, match=r"constraint \(3\)"):
        specs.check_constraints(_tiny_spec(stages=(stage, _stage(1))))


@pytest.mark.parametrize("stages,message", [
    ((_stage(2, merge="none"), _stage(1)), "needs 2 columns"),
    ((_stage(2), _stage(1, merge="none")), "last stage must merge"),
    ((_stage(2, kinds=("dcac",), merge="add"), _stage(1)), "same width"),
])
def test_structure_errors(stages, message):
    with pytest.raises(ValueError, match=message):
        specs.check_constraints(_tiny_spec(stages=stages))


def test_registered_variants_pass_the_constraints():
    for name in an.list_variants():
        specs.check_constraints(an.VARIANTS[name])


# ---------------------------------------------------------------------------------------------------------------------
# Profile


def test_macs_match_a_hand_count():
    """32×32×3 input, stem 3×3/2 → 8; stage1: max-pool/1 + blur3/2, two columns [dwsep 8, DC-AC s=2 E=4], concat;
    stage2: blur3/2, one column [dwsep 16, DC-AC s=2 E=4]; head: dense 16 → 10."""
    dcac = specs.DCACSpec(condense_factor=2, embed_channels=4)
    col1 = specs.ColumnSpec((specs.BlockSpec("dwsep", filters=8), specs.BlockSpec("dcac", dcac=dcac)))
    col2 = specs.ColumnSpec((specs.BlockSpec("dwsep", filters=16), specs.BlockSpec("dcac", dcac=dcac)))
    spec = _tiny_spec(stages=(specs.StageSpec((col1, col1), "max"), specs.StageSpec((col2,), "blur")))
    result = an.profile(an.AttendNeXt(spec=spec, classes=10))
    stem = 16 * 16 * 8 * 27                                   # 55,296
    stage1 = 8 * 8 * 8 * 9 + 2 * (                            # blur on 8×8×8
        8 * 8 * 8 * 9 + 8 * 8 * 8 * 8                         # dwsep: depthwise + pointwise
        + 2 * (4 * 4 * 8 * 9 + 4 * 4 * 4 * 8 + 4 * 4 * 8 * 4)  # DC-AC branches on the 4×4 grid
        + 4 * 4 * 8)                                          # A ⊙ B
    stage2 = 4 * 4 * 16 * 9 + (4 * 4 * 16 * 9 + 4 * 4 * 16 * 16) + 2 * (2 * 2 * 16 * 9 + 2 * 2 * 4 * 16 * 2) + 2 * 2 * 16
    head = 16 * 10
    groups = result.by_group()
    assert groups["stem"]["macs"] == stem == 55_296
    assert groups["stage1"]["macs"] == stage1
    assert groups["stage2"]["macs"] == stage2
    assert groups["head"]["macs"] == head
    assert result.macs == stem + stage1 + stage2 + head == 97_376
    assert result.params == sum(l.params for l in result.layers)
    assert "total" in result.table() and "stage1" in result.table()


def test_profile_activation_peak(default_build):
    """The micro variant's largest live set is the stem: its 96×96×3 input and 48×48×8 output (int8)."""
    result = an.profile(default_build("micro"))
    assert result.peak_activation_bytes == 96 * 96 * 3 + 48 * 48 * 8
    assert result.peak_after == "stem_conv"


@pytest.mark.parametrize("change, message", [
    (("block", "filters", -24), r"stages\[0\].columns\[0\].blocks\[0\].filters: expected a positive integer, got -24"),
    (("block", "filters", "24"), r"blocks\[0\].filters: expected a positive integer, got '24'"),
    (("block", "kernel_size", 0), r"blocks\[0\].kernel_size: expected a positive integer, got 0"),
    (("spec", "width", float("nan")), r"width: expected a positive number, got nan"),
    (("spec", "input_size", True), r"input_size: expected a positive integer, got True"),
])
def test_spec_numbers_are_checked_with_their_path(change, message):
    kind, field, value = change
    spec = an.VARIANTS["micro"]
    if kind == "spec":
        spec = spec.replace(**{field: value})
    else:
        stage = spec.stages[0]
        column = stage.columns[0]
        block = dataclasses.replace(column.blocks[0], **{field: value})
        column = dataclasses.replace(column, blocks=(block,) + column.blocks[1:])
        spec = spec.replace(stages=(dataclasses.replace(stage, columns=(column,) * 3),) + spec.stages[1:])
    with pytest.raises(ValueError, match=message):
        an.AttendNeXt(spec=spec)


def test_inverted_residual_and_fused_blocks_build_count_and_stay_one_int8_partition():
    import numpy as np

    from attendnext_keras.deploy.conversion import to_tflite
    from attendnext_keras.deploy.litert import delegation_report
    from attendnext_keras.specs import BlockSpec, ColumnSpec

    micro = an.VARIANTS["micro"]
    blocks = (BlockSpec("ir", filters=384, expansion=4.0), BlockSpec("fused", filters=384, expansion=2.0))
    spec = micro.replace(name="mixed", stages=micro.stages[:3] + (
        dataclasses.replace(micro.stages[3], columns=(ColumnSpec(blocks),)),))
    assert "ir3(×4)→112 → fused3(×2)→112" in an.summarize_spec(spec)
    model = an.AttendNeXt(spec=spec, input_shape=(64, 64, 3), classes=5, classifier_activation=None,
                          include_top=False)
    # stage4 input: 80 channels (the blur keeps them); ir: 1×1 80→320, dw 3×3, 1×1 320→112; fused: 3×3 112→224,
    # 1×1 224→112 (+ a shortcut, same width); BatchNormalization 4 weights per channel.
    expected = (80 * 320 + 4 * 320) + (9 * 320 + 4 * 320) + (320 * 112 + 4 * 112) \
        + (9 * 112 * 224 + 4 * 224) + (224 * 112 + 4 * 112)
    assert sum(l.count_params() for l in model.layers if l.name.startswith("stage4_col1")) == expected
    assert "stage4_col1_block2_add" in [l.name for l in model.layers]
    full = an.AttendNeXt(spec=spec, input_shape=(64, 64, 3), classes=5, classifier_activation=None)
    images = np.random.default_rng(0).uniform(0, 255, (4, 64, 64, 3)).astype("float32")
    report = delegation_report(to_tflite(full, "int8-ptq", representative_data=[images]))
    assert report["partitions"] == 1 and report["ops_outside"] == []
    with pytest.raises(ValueError, match="`expansion` belongs to 'ir' and 'fused' blocks"):
        an.AttendNeXt(spec=spec.replace(stages=micro.stages[:3] + (dataclasses.replace(
            micro.stages[3], columns=(ColumnSpec((BlockSpec("ir", filters=384),)),)),)))

"""attendnext_keras.registry: one table of model names that the CLI, benchmarks, exploration and tests enumerate."""

import pytest

import attendnext_keras as an
from attendnext_keras import registry


def test_every_family_the_study_compares_is_registered():
    names = an.list_models()
    assert names[:3] == ["attendnext_base", "attendnext_small", "attendnext_micro"]
    assert an.list_models("mobilenet_v3*") == ["mobilenet_v3_large", "mobilenet_v3_large_075", "mobilenet_v3_small",
                                               "mobilenet_v3_small_075"]
    assert an.list_models(family="mobilenet_v2") == ["mobilenet_v2", "mobilenet_v2_075", "mobilenet_v2_050",
                                                     "mobilenet_v2_035"]
    assert {"efficientnet_b0", "mobilevit_xs", "mobileone_s1", "fbnet_c"} <= set(names)
    assert len(names) == len(set(names))
    for name in names:
        info = registry.model_info(name)
        assert info.display_name and info.family in registry.FAMILIES and info.input_size > 0


@pytest.mark.parametrize("name, params", [("mobilenet_v3_large_075", 4_012_616), ("mobilenet_v2_035", 1_691_208),
                                          ("attendnext_micro", 180_496)])
def test_create_model_builds_logits_models_of_the_named_width(name, params):
    model = an.create_model(name, input_size=96)
    assert tuple(model.inputs[0].shape) == (None, 96, 96, 3) and tuple(model.outputs[0].shape) == (None, 1000)
    assert model.count_params() == params
    assert an.create_model(name, input_size=96, classes=5).outputs[0].shape[-1] == 5


def test_attendnext_entries_build_both_flavours_and_spec_files(tmp_path):
    tf_keras_model = an.create_model("attendnext_micro", input_size=64, classes=3, keras="tf_keras")
    assert type(tf_keras_model).__module__.startswith("tf_keras")
    spec = an.get_spec("micro").replace(name="mine", input_size=64)
    path = an.save_spec(spec, tmp_path / "mine.json")
    model = an.create_model(path, classes=3)
    assert model.inputs[0].shape[1] == 64 and registry.model_info(path).family == "attendnext"
    # Benchmarked like a registered variant: a microcontroller-sized spec at its own size, others at the peers' 224.
    assert registry.model_info(path).benchmark_size == 64
    big = an.save_spec(an.get_spec("small").replace(name="big"), tmp_path / "big.json")
    assert registry.model_info(big).benchmark_size is None
    with pytest.raises(ValueError, match="built in keras only"):
        an.create_model("mobilenet_v2", keras="tf_keras")


def test_unknown_names_suggest_close_ones():
    with pytest.raises(ValueError, match=r"Unknown model 'mobilenet_v3_larg'\. Did you mean mobilenet_v3_large"):
        an.create_model("mobilenet_v3_larg")
    with pytest.raises(ValueError, match="`input_size` must be a positive number of pixels"):
        an.create_model("attendnext_micro", input_size=0)
    with pytest.raises(ValueError, match="`family` must be one of"):
        an.list_models(family="resnet")

"""Presets: save → load round trip, the shipped presets, decode_predictions, one-line errors, uploads (against fakes),
and fine-tuning from a preset against training from scratch."""

import json
import os
import pathlib
import sys
import types

import numpy as np
import pytest

import attendnext_keras as an
from attendnext_keras import data, specs
from attendnext_keras.config import TrainConfig
from attendnext_keras.metrics import top_k_accuracy
from attendnext_keras.training import evaluate, train

SHIPPED = ("micro_flowers160_96", "micro_flowers_mini64")
FLOWERS = ["daisy", "dandelion", "roses", "sunflowers", "tulips"]


def _one_line(error):
    return "\n" not in str(error.value).strip()


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A micro model at 32 px with perturbed weights and BatchNorm statistics (so every weight matters), saved."""
    model = an.create_model("attendnext_micro", input_size=32, classes=3)
    rng = np.random.default_rng(0)
    for variable in model.weights:
        value = np.asarray(variable)
        if "moving_variance" in variable.path:
            variable.assign(rng.uniform(0.5, 1.5, value.shape).astype("float32"))
        else:
            variable.assign((value + rng.normal(0, 0.05, value.shape)).astype("float32"))
    path = tmp_path_factory.mktemp("presets") / "tiny"
    recipe = TrainConfig(epochs=2)
    an.save_preset(model, path, class_names=["cat", "dog", "fox"], recipe=recipe, description="A test preset.",
                   metrics={"test_top1": 0.5, "how": "by hand"}, training_data="nothing")
    return model, path, recipe


def _images(size, count=4, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (count, size, size, 3)).astype("float32")


# --------------------------------------------------------------------------------------------------------------------
# Round trip


def test_round_trip(saved):
    model, path, recipe = saved
    assert sorted(os.listdir(path)) == ["README.md", "config.json", "metadata.json", "model.weights.h5", "spec.json"]
    loaded = an.from_preset(path)
    x = _images(32)
    np.testing.assert_array_equal(np.asarray(loaded(x)), np.asarray(model(x)))
    info = an.preset_info(path)
    assert info.class_names == ["cat", "dog", "fox"]
    assert info.spec == specs.VARIANTS["micro"].replace(input_size=32)
    assert specs.load_spec(path / "spec.json") == info.spec
    assert info.metadata["recipe"] == recipe.to_dict() and info.metadata["metrics"]["test_top1"] == 0.5
    assert info.metadata["parameter_count"] == model.count_params()
    config = json.loads((path / "config.json").read_text())
    assert config["class_name"] == "AttendNeXt" and config["config"]["classes"] == 3
    card = (path / "README.md").read_text()
    for section in ("## Intended use", "## Data", "## Accuracy", "## Latency", "## Limitations", "## Licence"):
        assert section in card
    assert "test_top1: 50.0%" in card and "cat, dog, fox" in card


def test_flavours_and_builder_agree(saved):
    model, path, _ = saved
    x = _images(32)
    expected = np.asarray(model(x))
    qat_ready = an.from_preset(path, flavour="tf_keras")
    assert type(qat_ready).__module__.startswith("tf_keras")
    np.testing.assert_allclose(np.asarray(qat_ready(x)), expected, atol=1e-5)
    probabilities = an.AttendNeXt(weights=str(path))  # the builder: softmax by default, the preset's size and classes
    assert probabilities.input_shape == (None, 32, 32, 3) and probabilities.output_shape == (None, 3)
    shifted = np.exp(expected - expected.max(1, keepdims=True))
    np.testing.assert_allclose(np.asarray(probabilities(x)), shifted / shifted.sum(1, keepdims=True), atol=1e-6)
    backbone = an.AttendNeXt(weights=str(path), include_top=False, pooling="avg")
    np.testing.assert_array_equal(backbone.get_layer("stem_conv").get_weights()[0],
                                  model.get_layer("stem_conv").get_weights()[0])
    bigger = an.from_preset(path, input_size=64)  # the weights fit any multiple of 32
    assert bigger.input_shape == (None, 64, 64, 3)


def test_new_head_keeps_the_backbone(saved):
    model, path, _ = saved
    new = an.from_preset(path, classes=4)
    assert new.output_shape == (None, 4)
    for name in ("stem_conv", "stage4_col1_block3_pw"):
        for a, b in zip(new.get_layer(name).get_weights(), model.get_layer(name).get_weights()):
            np.testing.assert_array_equal(a, b)
    same = an.from_preset(path, class_names=["cat", "dog", "fox"])  # the preset's classes: its head is kept
    np.testing.assert_array_equal(np.asarray(same(_images(32))), np.asarray(model(_images(32))))
    renamed = an.from_preset(path, class_names=["cat", "fox", "dog"])  # same count, other order: a new head
    assert not np.array_equal(renamed.get_layer("predictions").get_weights()[0],
                              model.get_layer("predictions").get_weights()[0])


def test_spec_recorded_or_required(tmp_path):
    custom = an.AttendNeXt(spec=specs.VARIANTS["micro"].replace(name="mine", width=0.25), input_shape=(32, 32, 3),
                           classes=2, classifier_activation=None)
    with pytest.raises(ValueError, match="does not carry its AttendNeXt spec") as error:
        an.save_preset(custom, tmp_path / "a", class_names=["a", "b"])
    assert _one_line(error)
    narrow = an.AttendNeXt(variant="micro", alpha=0.5, input_shape=(32, 32, 3), classes=2)  # named attendnext_micro
    with pytest.raises(ValueError, match="does not match AttendNeXt spec 'micro'"):
        an.save_preset(narrow, tmp_path / "b", class_names=["a", "b"])
    path = an.save_preset(custom, tmp_path / "c", class_names=["a", "b"], spec=specs.VARIANTS["micro"].replace(
        name="mine", width=0.25))
    assert an.preset_info(path).spec.width == 0.25 and an.from_preset(path).output_shape == (None, 2)


# --------------------------------------------------------------------------------------------------------------------
# The shipped presets


def test_shipped_presets_are_listed_and_small():
    assert an.list_presets() == list(SHIPPED)
    for name in SHIPPED:
        info = an.preset_info(name)  # checks the weights' SHA-256 too
        size = sum(f.stat().st_size for f in pathlib.Path(info.path).iterdir())
        assert size < 1.1e6, f"{name} is {size} bytes"
        assert info.class_names == FLOWERS and info.metadata["metrics"]["how"]
        assert info.metadata["metrics"]["test_top1"] >= 0.45


def test_builder_loads_a_shipped_preset_that_predicts_the_embedded_photos():
    """The trained 64 px preset on the 100 embedded val photographs (never trained on): 5 classes, chance 20 %; the
    preset recorded its top-1 on exactly these images, and the builder's model must reproduce it."""
    model = an.AttendNeXt(weights="micro_flowers_mini64")
    assert model.input_shape == (None, 64, 64, 3) and model.output_shape == (None, 5)
    val = data.load_source("default", "val")
    assert val.class_names == an.preset_info("micro_flowers_mini64").class_names
    top1 = top_k_accuracy(lambda x: model(x, training=False), data.make_dataset(val, 64, 50, training=False))["top1"]
    assert top1 >= 0.45
    assert abs(top1 - an.preset_info("micro_flowers_mini64").metadata["metrics"]["test_top1"]) <= 0.011
    top = an.decode_predictions(model(data.calibration_images(val, 64, count=2)), top=3,
                                class_names="micro_flowers_mini64")
    assert len(top) == 2 and all(len(row) == 3 and row[0][0] in FLOWERS for row in top)


# --------------------------------------------------------------------------------------------------------------------
# decode_predictions


def test_decode_predictions_by_hand():
    logits = [[1.0, 2.0, 3.0], [0.0, -1.0, 0.0]]
    e = np.exp([1.0, 2.0, 3.0])
    top = an.decode_predictions(logits, top=2, class_names=["a", "b", "c"])
    assert [name for name, _ in top[0]] == ["c", "b"]
    np.testing.assert_allclose([s for _, s in top[0]], [e[2] / e.sum(), e[1] / e.sum()], rtol=1e-12)
    assert top[1][0][0] == "a" and top[1][1][0] == "c"  # ties keep the class order
    np.testing.assert_allclose(top[1][0][1], 1 / (2 + np.exp(-1)), rtol=1e-12)
    probabilities = [[0.1, 0.7, 0.2]]
    assert an.decode_predictions(probabilities, top=5) == [[("class_1", 0.7), ("class_2", 0.2), ("class_0", 0.1)]]
    positive_logits = [[2.0, 5.0, 1.0]]  # positive, but the row sums to 8: logits
    assert an.decode_predictions(positive_logits, top=1)[0][0][1] == pytest.approx(
        np.exp(5) / np.exp([2.0, 5.0, 1.0]).sum())


@pytest.mark.parametrize("kwargs, message", [
    (dict(predictions=[1.0, 2.0]), "shape \\(images, classes\\)"),
    (dict(predictions=[[1.0, 2.0]], class_names=["a"]), "2 classes but 1 class names"),
    (dict(predictions=[[1.0, 2.0]], top=0), "`top` must be a positive integer"),
    (dict(predictions=[[np.nan, 2.0]]), "NaN"),
])
def test_decode_predictions_errors(kwargs, message):
    with pytest.raises(ValueError, match=message) as error:
        an.decode_predictions(**kwargs)
    assert _one_line(error)


# --------------------------------------------------------------------------------------------------------------------
# Errors: one line each


def test_missing_and_broken_presets(tmp_path):
    with pytest.raises(FileNotFoundError, match="No preset 'nope'.*micro_flowers_mini64") as error:
        an.from_preset("nope")
    assert _one_line(error)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="lacks config.json, spec.json, model.weights.h5") as error:
        an.from_preset(empty)
    assert _one_line(error)
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError, match="is a file"):
        an.from_preset(tmp_path / "file")
    with pytest.raises(ValueError, match="a preset \\(micro_flowers160_96, micro_flowers_mini64\\).*no file at that"):
        an.AttendNeXt(weights="micro_flowers_mini65")  # neither a preset nor a file


def test_damaged_preset(saved, tmp_path):
    _, path, _ = saved
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in os.listdir(path):
        (copy / name).write_bytes((path / name).read_bytes())
    weights = bytearray((copy / "model.weights.h5").read_bytes())
    weights[-100] ^= 0xFF
    (copy / "model.weights.h5").write_bytes(bytes(weights))
    with pytest.raises(ValueError, match="does not have the SHA-256") as error:
        an.from_preset(copy)
    assert _one_line(error)
    (copy / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        an.from_preset(copy)
    with pytest.raises(IsADirectoryError, match="is a preset folder; load it with attendnext_keras.from_preset"):
        an.load_model(path)


def test_builder_errors_name_both_sides():
    with pytest.raises(ValueError, match="classifies 5 classes .*`classes` must be 5 or None.*classes=3") as error:
        an.AttendNeXt(weights="micro_flowers_mini64", classes=3)
    assert _one_line(error)
    assert an.AttendNeXt(weights="micro_flowers_mini64", classes=3, include_top=False).output_shape[-1] == 112
    with pytest.raises(ValueError, match="No pretrained weights are published.*micro_flowers160_96, "
                                         "micro_flowers_mini64") as error:
        an.AttendNeXt(weights="imagenet")
    assert _one_line(error)
    with pytest.raises(ValueError, match="holds weights for AttendNeXt 'micro'.*variant='base'"):
        an.AttendNeXt(weights="micro_flowers_mini64", variant="base")
    with pytest.raises(ValueError, match="alpha=0.5"):
        an.AttendNeXt(weights="micro_flowers_mini64", alpha=0.5)


def test_save_errors(saved, tmp_path):
    model, path, _ = saved
    with pytest.raises(ValueError, match="not empty: pass overwrite=True"):
        an.save_preset(model, path, class_names=["a", "b", "c"])
    with pytest.raises(ValueError, match="name each of the model's 3 outputs once"):
        an.save_preset(model, tmp_path / "a", class_names=["a", "b"])
    with pytest.raises(ValueError, match="no 'how' saying how they were measured"):
        an.save_preset(model, tmp_path / "b", class_names=["a", "b", "c"], metrics={"test_top1": 0.5})


# --------------------------------------------------------------------------------------------------------------------
# Uploads, against fakes (no hub is reachable here)


class _Recorder(types.ModuleType):
    def __init__(self, name, *functions):
        super().__init__(name)
        self.calls = []
        for function in functions:
            setattr(self, function, self._record(function))

    def _record(self, function):
        def call(*args, **kwargs):
            self.calls.append((function, args, kwargs))
            return types.SimpleNamespace(repo_id="user/" + kwargs.get("repo_id", "").split("/")[-1])
        return call


def test_upload_to_hugging_face(saved, monkeypatch):
    _, path, _ = saved
    card = (path / "README.md").read_bytes()
    hub = _Recorder("huggingface_hub", "create_repo", "upload_folder")
    monkeypatch.setitem(sys.modules, "huggingface_hub", hub)
    assert an.upload_preset(path, "hf://user/tiny") == "hf://user/tiny"
    (create, _, create_kwargs), (upload, _, upload_kwargs) = hub.calls
    assert (create, create_kwargs) == ("create_repo", {"repo_id": "user/tiny", "exist_ok": True})
    assert upload == "upload_folder" and upload_kwargs["repo_id"] == "user/tiny"
    assert upload_kwargs["folder_path"] == str(path)
    assert (path / "README.md").read_bytes() == card  # our model card is sent as it is
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # not installed
    needs = r"needs the 'huggingface_hub' package: pip install -e \".\[hub\]\" \(or huggingface_hub\)"
    with pytest.raises(ImportError, match=needs):
        an.upload_preset(path, "hf://user/tiny")


def test_upload_to_kaggle(saved, monkeypatch):
    _, path, _ = saved
    keras_hub = _Recorder("keras_hub", "upload_preset")
    monkeypatch.setitem(sys.modules, "keras_hub", keras_hub)
    an.upload_preset(path, "kaggle://user/tiny/keras/v1")
    assert keras_hub.calls == [("upload_preset", ("kaggle://user/tiny/keras/v1", str(path)), {})]
    monkeypatch.setitem(sys.modules, "keras_hub", None)
    kagglehub = _Recorder("kagglehub", "model_upload")
    monkeypatch.setitem(sys.modules, "kagglehub", kagglehub)
    an.upload_preset(path, "kaggle://user/tiny/keras/v1")
    assert kagglehub.calls == [("model_upload", ("user/tiny/keras/v1", str(path)), {})]
    monkeypatch.setitem(sys.modules, "kagglehub", None)
    with pytest.raises(ImportError, match=r"pip install -e \".\[hub\]\" \(or kagglehub\)") as error:
        an.upload_preset(path, "kaggle://user/tiny/keras/v1")
    assert _one_line(error)
    for handle, message in (("kaggle://user/tiny", "kaggle://USER/MODEL/FRAMEWORK/VARIATION"),
                            ("s3://bucket/x", "must start with hf:// or kaggle://"), ("hf://", "hf://\\[USER/\\]NAME")):
        with pytest.raises(ValueError, match=message):
            an.upload_preset(path, handle)
    with pytest.raises(FileNotFoundError, match="No preset"):
        an.upload_preset(path.parent / "missing", "hf://user/tiny")


# --------------------------------------------------------------------------------------------------------------------
# Fine-tuning from a preset beats training from scratch


def _three_class_folder(root, per_class_train):
    """daisy/roses/tulips of the embedded photographs as an image folder of symbolic links."""
    for split, count in (("train", per_class_train), ("val", None)):
        for name in ("daisy", "roses", "tulips"):
            target = root / split / name
            target.mkdir(parents=True)
            for photo in sorted((data.default_data_dir() / split / name).glob("*.jpg"))[:count]:
                (target / photo.name).symlink_to(photo)
    return data.load_splits(root)


def test_fine_tuning_from_a_preset_beats_scratch(tmp_path):
    """Same recipe, epochs and seed; 3 classes, 20 training photographs each, 60 held-out photographs, 64 px. The
    preset (micro_flowers_mini64) was trained on all five classes of these photographs, so this checks the mechanism
    (backbone loaded, new head) rather than transfer to unseen classes; benchmarks/bench_preset_fine_tune.py measures
    it on flowers160 photographs the preset never saw. Measured: fine-tuned 0.53, scratch 0.33 (seed 0;
    0.55 / 0.57 at learning rate 1e-3 for 8 / 12 epochs)."""
    train_source, val_source = _three_class_folder(tmp_path / "three", per_class_train=20)
    config = TrainConfig(epochs=8, seed=0)
    fine = an.fine_tune_from_preset("micro_flowers_mini64", train_source, config=config, out_dir=tmp_path / "fine",
                                    verbose=0)
    assert fine.model.output_shape == (None, 3)
    train_ds = data.make_dataset(train_source, 64, 32, training=True, seed=0, crop_scale=(0.25, 1.0))
    scratch = train(lambda: an.create_model("attendnext_micro", input_size=64, classes=3), train_ds, None, config,
                    out_dir=tmp_path / "scratch", verbose=0)
    val_ds = data.make_dataset(val_source, 64, 60, training=False)
    fine_top1, scratch_top1 = evaluate(fine.model, val_ds)["top1"], evaluate(scratch.model, val_ds)["top1"]
    assert fine_top1 >= scratch_top1 + 0.15 and fine_top1 >= 0.5, (fine_top1, scratch_top1)


# --------------------------------------------------------------------------------------------------------------------
# Command line: preset list / show / save, train --weights PRESET


def test_cli_lists_shows_and_saves_presets(trained_run, tmp_path, capsys):
    from attendnext_keras.cli import main

    assert main(["preset", "list"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in SHIPPED)
    assert main(["preset", "show", "micro_flowers_mini64"]) == 0
    assert "daisy" in capsys.readouterr().out
    folder = tmp_path / "mine"
    model_file = trained_run / "float" / "final.keras"  # class_names.json sits one folder up, where `run` wrote it
    assert main(["preset", "save", "--model", str(model_file), "--out", str(folder), "--description", "mine"]) == 0
    model = an.from_preset(folder)  # logits, as the trained model
    assert an.preset_info(folder).class_names == FLOWERS
    reference = an.load_model(model_file)
    images = _images(32)
    np.testing.assert_allclose(model.predict(images, verbose=0), reference.predict(images, verbose=0), atol=1e-5)
    assert main(["preset", "save", "--model", str(model_file), "--out", str(folder)]) == 2  # not empty, no overwrite
    assert "not empty" in capsys.readouterr().err
    assert main(["preset", "save", "--model", str(model_file), "--out", str(tmp_path / "x"),
                 "--class-names", str(tmp_path / "none.json")]) == 2
    assert "none.json' does not exist" in capsys.readouterr().err
    assert main(["preset", "show", "no_such_preset"]) == 2


def test_cli_train_starts_from_a_preset(tmp_path, capsys):
    """`attendnext train --weights PRESET` on a 3-class folder: the preset's architecture and size, a new head."""
    from attendnext_keras.cli import main

    _three_class_folder(tmp_path / "three", per_class_train=4)
    out = tmp_path / "run"
    assert main(["train", "--weights", "micro_flowers_mini64", "--data", str(tmp_path / "three"), "--epochs", "1",
                 "--out", str(out)]) == 0
    model = an.load_model(out / "final.keras")
    assert model.output_shape == (None, 3) and model.input_shape == (None, 64, 64, 3)
    backbone = an.from_preset("micro_flowers_mini64")
    head = "predictions"
    assert (model.count_params() - model.get_layer(head).count_params()
            == backbone.count_params() - backbone.get_layer(head).count_params())
    assert main(["train", "--weights", "no_such_preset", "--data", str(tmp_path / "three"), "--out",
                 str(tmp_path / "bad")]) == 2
    assert "no_such_preset" in capsys.readouterr().err and not (tmp_path / "bad").exists()

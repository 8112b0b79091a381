"""Predictor: an exported .tflite + metadata → top-k labels with LiteRT, NumPy and Pillow only; bad input."""

import ast
import io
import json
import pathlib
import shutil
import re
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from PIL import Image

from attendnext_keras.deploy import tflite_metadata
from attendnext_keras.deploy.export import export
from attendnext_keras.deploy.litert import load_interpreter
from attendnext_keras.deploy.metadata import load_metadata
from attendnext_keras.deploy.micro import strip_for_micro
from attendnext_keras.deploy.predictor import Prediction, Predictor, format_predictions, softmax
from attendnext_keras.preprocessing import preprocess_image
from conftest import REPO

CLASSES = ["daisy", "dandelion", "roses", "sunflowers", "tulips"]


@pytest.fixture(scope="module")
def photos(flowers_dir):
    """Eight validation photographs of various sizes (two of each of the first four classes), as files."""
    return [path for class_dir in sorted((flowers_dir / "val").iterdir())[:4]
            for path in sorted(class_dir.glob("*.jpg"))[2:4]]


@pytest.fixture(scope="module")
def calibration(flowers_dir):
    """Twenty training photographs (four per class) through the evaluation transform at 64 px."""
    return np.stack([preprocess_image(path, 64) for class_dir in sorted((flowers_dir / "train").iterdir())
                     for path in sorted(class_dir.glob("*.jpg"))[:4]])


@pytest.fixture(scope="module")
def model(calibration):
    """The micro AttendNeXt at 64 px, 5 classes, logits, with spread-out, image-dependent logits.

    Freshly initialised, this network's logits are nearly uniform and barely depend on the image (its activations
    shrink about tenfold per depthwise block; random BatchNorm statistics, as in test_quantization.py, make it worse:
    the features then vary by 3e-4 of their size between photographs), so top-1 comparisons would compare noise.
    So: (1) BatchNorm statistics are set to the calibration photographs' own (one forward pass in training mode
    with momentum 0), which keeps every layer's activations at unit scale, and (2) the classifier is a random
    projection of the features centred on their mean over those photographs, scaled so that logits spread over a
    few units and the top class differs between photographs.
    """
    import keras

    import attendnext_keras as an

    keras.utils.set_random_seed(0)
    model = an.AttendNeXt(variant="micro", input_shape=(64, 64, 3), classes=5, classifier_activation=None)
    batchnorms = [layer for layer in model.layers if type(layer).__name__ == "BatchNormalization"]
    for layer in batchnorms:
        layer.momentum = 0.0
    model(calibration, training=True)
    for layer in batchnorms:
        layer.momentum = 0.99
    head = model.get_layer("predictions")
    features = np.asarray(keras.Model(model.inputs[0], head.input)(calibration))
    kernel = np.random.default_rng(0).normal(size=(features.shape[1], 5)) * 4 / np.sqrt(features.shape[1])
    head.set_weights([kernel.astype("float32"), (-features.mean(0) @ kernel).astype("float32")])
    return model


@pytest.fixture(scope="module")
def exported(tmp_path_factory, model, calibration, photos):
    """{mode: ExportResult} for float32 and int8-ptq. int8 is calibrated on the training photographs and the eight
    test photographs: some of those give logits far outside the training photographs' range (±11 against ±5), which
    int8 would clip; this file tests the Predictor's int8 I/O, not PTQ's range coverage."""
    folder = tmp_path_factory.mktemp("runtime")
    representative = np.concatenate([calibration, [preprocess_image(path, 64) for path in photos]])
    return {"float32": export(model, folder / "f32.tflite", "float32", class_names=CLASSES),
            "int8-ptq": export(model, folder / "int8.tflite", "int8-ptq", representative_data=representative,
                               class_names=CLASSES, check_micro=False)}


@pytest.fixture(scope="module")
def keras_logits(model, photos):
    """The Keras model's logits on the photographs through the same preprocessing as the Predictor's."""
    return np.asarray(model(np.stack([preprocess_image(path, 64) for path in photos])))


def test_logits_are_spread_enough_to_compare(keras_logits):
    top2 = np.sort(keras_logits, axis=1)[:, -2:]
    assert (top2[:, 1] - top2[:, 0]).min() > 0.05  # margins far above float32 conversion error (1e-5)
    assert len(set(keras_logits.argmax(1))) >= 3  # the top class depends on the photograph


def test_float32_predictions_equal_keras(exported, keras_logits, photos):
    predictor = Predictor(exported["float32"].path)
    np.testing.assert_allclose(predictor.predict_outputs(photos), keras_logits, atol=1e-4)
    np.testing.assert_allclose(predictor.predict_scores(photos), softmax(keras_logits), atol=1e-4)
    assert [top[0].index for top in predictor.predict(photos, top_k=1)] == list(keras_logits.argmax(1))


def test_int8_predictions_track_keras(exported, keras_logits, photos):
    """int8 PTQ of this network against Keras float: top-1 agrees on at least 7 of the 8 photographs (8 seen),
    probabilities differ by less than 0.2 (0.12 seen) and logits correlate above 0.98 (0.995 seen; logits span
    ±11, the largest difference seen is 1.7)."""
    predictor = Predictor(exported["int8-ptq"].path)
    top1 = np.array([top[0].index for top in predictor.predict(photos, top_k=1)])
    assert (top1 == keras_logits.argmax(1)).sum() >= 7
    assert np.abs(predictor.predict_scores(photos) - softmax(keras_logits)).max() < 0.2
    assert np.corrcoef(predictor.predict_outputs(photos).ravel(), keras_logits.ravel())[0, 1] > 0.98


def test_int8_io_uses_the_interpreters_quantization(exported, photos):
    """The Predictor's int8 path equals quantize → invoke → dequantize by hand with the interpreter's parameters."""
    result = exported["int8-ptq"]
    interpreter = load_interpreter(pathlib.Path(result.path).read_bytes())
    detail_in, detail_out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    (scale_in, zero_in), (scale_out, zero_out) = detail_in["quantization"], detail_out["quantization"]
    assert result.metadata["input"]["scale"] == pytest.approx(scale_in) and detail_in["dtype"] == np.int8
    x = preprocess_image(photos[0], 64)
    quantized = np.clip(np.round(x / scale_in + zero_in), -128, 127).astype(np.int8)
    interpreter.set_tensor(detail_in["index"], quantized[None])
    interpreter.invoke()
    expected = (interpreter.get_tensor(detail_out["index"])[0].astype(np.float32) - zero_out) * scale_out
    np.testing.assert_array_equal(Predictor(result.path).predict_outputs(photos[0])[0], expected)


def test_metadata_round_trip_and_properties(exported):
    for result in exported.values():
        predictor = Predictor(result.path)
        assert predictor.metadata == load_metadata(result.path) == result.metadata
        assert predictor.input_size == (64, 64) and predictor.class_names == CLASSES and predictor.num_classes == 5
        assert predictor.output_kind == "logits" and predictor.crop_pct == 0.875
    predictor.metadata["class_names"][0] = "changed"  # a copy: the Predictor is not changed through it
    assert predictor.class_names[0] == "daisy" and predictor.metadata["class_names"][0] == "daisy"


def test_scores_sum_to_one_and_top_k_is_ordered(exported, photos):
    predictor = Predictor(exported["int8-ptq"].path, num_threads=2)
    scores = predictor.predict_scores(photos)
    assert scores.shape == (8, 5) and scores.dtype == np.float32
    np.testing.assert_allclose(scores.sum(1), 1, atol=1e-6)
    results = predictor.predict(photos, top_k=3)
    assert len(results) == 8 and all(len(top) == 3 for top in results)
    for row, top in zip(scores, results):
        assert all(isinstance(p, Prediction) and p.label == CLASSES[p.index] for p in top)
        assert [p.score for p in top] == sorted((p.score for p in top), reverse=True)
        assert [p.index for p in top] == list(np.argsort(-row, kind="stable")[:3])
        assert top[0].score == pytest.approx(row.max())
    assert len(predictor.predict(photos[:1], top_k=50)[0]) == 5  # more than the classes: all of them
    assert predictor.predict(photos[0]) == predictor.predict([photos[0]])  # one image: a list of one
    with pytest.raises(ValueError, match="top_k"):
        predictor.predict(photos, top_k=0)


def test_images_of_every_kind_and_size(exported, photos):
    """Paths, PIL images and arrays of any size go through preprocess_image; preprocess=False takes model-size
    arrays as they are and refuses any other size."""
    predictor = Predictor(exported["float32"].path)
    expected = predictor.predict_scores(photos[:2])
    pil = [Image.open(path) for path in photos[:2]]
    arrays = [np.asarray(image.convert("RGB")) for image in pil]
    assert all(a.shape[:2] != (64, 64) for a in arrays)
    np.testing.assert_array_equal(predictor.predict_scores(pil), expected)
    np.testing.assert_array_equal(predictor.predict_scores(arrays), expected)
    np.testing.assert_array_equal(predictor.predict_scores([a.astype(np.float32) for a in arrays]), expected)
    small = np.asarray(Image.fromarray(arrays[0]).resize((37, 23)))  # any size is resized and center cropped
    assert predictor.predict_scores(small).shape == (1, 5)

    model_input = np.stack([preprocess_image(path, 64) for path in photos[:2]])
    np.testing.assert_array_equal(predictor.predict_scores(model_input, preprocess=False), expected)
    with pytest.raises(ValueError, match=r"preprocess=False.*\(64, 64, 3\).*\(23, 37, 3\)"):
        predictor.predict_scores([small], preprocess=False)
    with pytest.raises(ValueError, match=r"preprocess=False.*\(64, 64, 3\)"):
        predictor.predict_scores(photos[:1], preprocess=False)  # a photograph of another size, not resized
    nan = model_input[0].copy()
    nan[3, 4, 1] = np.nan
    for preprocess in (True, False):  # a NaN pixel would be cast to an arbitrary uint8 or int8 value
        with pytest.raises(ValueError, match="non-finite pixel values"):
            predictor.predict_scores([nan], preprocess=preprocess)
    with pytest.raises(ValueError, match="`num_threads` must be a positive integer"):
        Predictor(exported["float32"].path, num_threads=0)


def test_unreadable_images_are_named(exported, photos, tmp_path):
    predictor = Predictor(exported["float32"].path)
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    truncated = tmp_path / "cut.jpg"
    truncated.write_bytes(photos[0].read_bytes()[:2000])
    for bad in (text, truncated):
        with pytest.raises(ValueError, match=f"Cannot read image file '{bad}'"):
            predictor.predict([photos[0], bad])
    with pytest.raises(FileNotFoundError, match="missing.jpg"):
        predictor.predict([tmp_path / "missing.jpg"])
    with pytest.raises(ValueError, match="image 1"):
        predictor.predict([photos[0], np.zeros((5, 5, 2))])  # two channels: not an image


def test_model_copied_without_its_json_reads_the_metadata_inside(exported, photos, tmp_path, caplog):
    """`export` packs the metadata JSON into the .tflite too: a model file copied alone keeps its class names."""
    result = exported["int8-ptq"]
    alone = shutil.copy(result.path, tmp_path / "alone.tflite")
    caplog.clear()
    predictor = Predictor(alone)
    assert not [r for r in caplog.records if r.levelname == "WARNING"]
    assert predictor.metadata == result.metadata and predictor.class_names == CLASSES
    assert predictor.predict(photos[:3]) == Predictor(result.path).predict(photos[:3])
    blob = pathlib.Path(result.path).read_bytes()
    assert Predictor.from_bytes(blob).class_names == CLASSES  # in memory too
    beside = {**result.metadata, "class_names": ["a", "b", "c", "d", "e"]}
    (tmp_path / "alone.json").write_text(json.dumps(beside))
    assert Predictor(alone).class_names == ["a", "b", "c", "d", "e"]  # the JSON beside the model wins


def _with_packed_json(blob: bytes, text: str) -> bytes:
    """The model with its packed files replaced by one attendnext_keras.json holding `text`."""
    stream = io.BytesIO(blob[:tflite_metadata._zip_start(blob)])
    stream.seek(0, io.SEEK_END)
    with zipfile.ZipFile(stream, "a") as archive:
        archive.writestr(tflite_metadata.EXPORT_METADATA_FILE, text)
    return stream.getvalue()


def test_unreadable_metadata_inside_the_model_is_named(exported, tmp_path):
    blob = pathlib.Path(exported["int8-ptq"].path).read_bytes()
    cases = {"not JSON": ("{not json", r"attendnext_keras.json is not JSON"),
             "too new": (json.dumps({**exported["int8-ptq"].metadata, "version": 99}), "metadata version 99"),
             "another format": (json.dumps({"format": "other"}), "is not attendnext_keras metadata"),
             "another model": (json.dumps({**exported["int8-ptq"].metadata, "input_size": [96, 96]}),
                               r"does not describe.*input size.*changed after export")}
    for name, (text, message) in cases.items():
        path = tmp_path / f"{name.replace(' ', '_')}.tflite"
        path.write_bytes(_with_packed_json(blob, text))
        with pytest.raises(ValueError, match=rf"the metadata inside '{path}'.*{message}"):
            Predictor(path)


def test_model_without_metadata(exported, photos, tmp_path, caplog):
    """A .tflite without metadata (neither beside it nor inside it): class_0… and crop_pct 0.875 with one warning,
    the output kind read from the graph; explicit arguments stand in for the metadata; from_bytes with the metadata
    equals the file beside its JSON."""
    result = exported["int8-ptq"]
    alone = tmp_path / "alone.tflite"  # the same model without its TFLite metadata (and in TFLM's compact form)
    alone.write_bytes(strip_for_micro(pathlib.Path(result.path).read_bytes()))
    caplog.clear()
    bare = Predictor(alone)
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warned) == 1 and re.search("no metadata.*class_0…class_4.*crop_pct=0.875", warned[0])
    assert bare.metadata is None and bare.class_names == [f"class_{i}" for i in range(5)]
    assert bare.output_kind == "logits"  # no SOFTMAX at the end of the graph
    reference = Predictor(result.path)
    np.testing.assert_array_equal(bare.predict_scores(photos[:3]), reference.predict_scores(photos[:3]))
    caplog.clear()
    explicit = Predictor(alone, class_names=CLASSES, crop_pct=0.875, output_kind="logits")
    from_bytes = Predictor.from_bytes(pathlib.Path(result.path).read_bytes(), metadata=result.metadata)
    assert not [r for r in caplog.records if r.levelname == "WARNING"]
    assert explicit.predict(photos[:3]) == reference.predict(photos[:3]) == from_bytes.predict(photos[:3])
    assert from_bytes.metadata == result.metadata
    Predictor.from_bytes(pathlib.Path(result.path).read_bytes(), metadata={**result.metadata, "class_names": None})
    assert re.search(r"has metadata without them.*class_0", caplog.records[-1].getMessage())  # exported without names
    with pytest.raises(ValueError, match="5 classes but 2 class names"):
        Predictor(alone, class_names=["a", "b"])
    with pytest.raises(ValueError, match="output_kind"):
        Predictor(alone, class_names=CLASSES, crop_pct=1.0, output_kind="scores")
    with pytest.raises(ValueError, match="crop_pct"):
        Predictor(alone, class_names=CLASSES, crop_pct=0)


def test_softmax_output_is_read_from_the_graph(caplog):
    """Without metadata, a model ending in SOFTMAX gives probabilities, which are not put through softmax again
    (XNNPACK runs the float SOFTMAX inside its DELEGATE node, which the graph walk looks through)."""
    import keras

    from attendnext_keras.deploy.conversion import to_tflite

    image = keras.Input((16, 16, 3))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(image))
    blob = to_tflite(keras.Model(image, keras.layers.Dense(3, activation="softmax")(x)), "float32")
    predictor = Predictor.from_bytes(blob)
    assert "has no metadata" in caplog.records[-1].getMessage()
    assert predictor.output_kind == "probabilities"
    x = np.random.default_rng(0).uniform(0, 255, (2, 16, 16, 3))
    scores = predictor.predict_scores(x, preprocess=False)
    np.testing.assert_array_equal(scores, predictor.predict_outputs(x, preprocess=False))
    np.testing.assert_allclose(scores.sum(1), 1, atol=1e-6)
    logits = Predictor.from_bytes(blob, class_names=["a", "b", "c"], crop_pct=1.0, output_kind="logits")
    np.testing.assert_allclose(logits.predict_scores(x, preprocess=False), softmax(scores), atol=1e-6)


def test_corrupt_or_missing_model_files(exported, photos, tmp_path):
    blob = pathlib.Path(exported["float32"].path).read_bytes()
    cases = {"photo.tflite": photos[0].read_bytes(), "empty.tflite": b"",
             "half.tflite": blob[: len(blob) // 2], "zeros.tflite": blob[:8] + bytes(len(blob) - 8)}
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(ValueError, match=f"Cannot load '{tmp_path / name}' as a TFLite model"):
            Predictor(tmp_path / name)
    with pytest.raises(FileNotFoundError, match="nothing.tflite"):
        Predictor(tmp_path / "nothing.tflite")
    with pytest.raises(ValueError, match="Not a TFLite model"):
        Predictor.from_bytes(b"not a model")


def test_metadata_that_disagrees_with_the_model(exported, tmp_path):
    int8, f32 = exported["int8-ptq"], exported["float32"]
    # The float32 model beside the int8 model's JSON: dtypes and quantization differ.
    shutil.copy(f32.path, tmp_path / "mixed.tflite")
    shutil.copy(int8.metadata_path, tmp_path / "mixed.json")
    with pytest.raises(ValueError, match=r"'.*mixed.json' does not describe '.*mixed.tflite'.*input dtype int8"):
        Predictor(tmp_path / "mixed.tflite")
    blob = pathlib.Path(int8.path).read_bytes()
    changes = {"input shape": ("input", "shape", [1, 96, 96, 3]), "input scale": ("input", "scale", 0.5),
               "input zero point": ("input", "zero_point", 3), "output shape": ("output", "shape", [1, 4]),
               "output scale": ("output", "scale", 1.0)}
    for message, (key, field, value) in changes.items():
        metadata = json.loads(json.dumps(int8.metadata))
        metadata[key][field] = value
        with pytest.raises(ValueError, match=f"does not describe.*{message}"):
            Predictor.from_bytes(blob, metadata=metadata)
    for field, value, message in (("class_names", CLASSES[:4], "4 class names"),
                                  ("input_size", [96, 96], "input size"), ("format", "other", "not attendnext")):
        with pytest.raises(ValueError, match=message):
            Predictor.from_bytes(blob, metadata={**int8.metadata, field: value})


def test_format_predictions():
    predictions = [[Prediction("daisy", 0, 0.75), Prediction("tulips", 4, 0.25)], [Prediction("roses", 2, 1.0)]]
    table = format_predictions(["a.jpg", "photos/b.jpg"], predictions)
    assert table.splitlines() == ["image         rank  label    score",
                                  "a.jpg            1  daisy   0.7500",
                                  "                 2  tulips  0.2500",
                                  "photos/b.jpg     1  roses   1.0000"]
    parsed = json.loads(format_predictions(["a.jpg", "photos/b.jpg"], predictions, as_json=True))
    assert parsed[0] == {"image": "a.jpg", "predictions": [{"rank": 1, "label": "daisy", "index": 0, "score": 0.75},
                                                           {"rank": 2, "label": "tulips", "index": 4, "score": 0.25}]}
    assert parsed[1]["predictions"][0]["label"] == "roses"
    with pytest.raises(ValueError, match="2 image names for 1 predictions"):
        format_predictions(["a.jpg", "b.jpg"], predictions[:1])


_NO_TENSORFLOW = r"""
import importlib.abc, importlib.metadata, json, sys

HEAVY = {"tensorflow", "keras", "tf_keras", "tensorflow_model_optimization", "tensorflow_datasets", "tflite_micro"}

class Missing(importlib.abc.MetaPathFinder):  # as if only the runtime dependencies were installed
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in HEAVY:
            raise ModuleNotFoundError(f"No module named {name!r} (blocked)")

sys.meta_path.insert(0, Missing())
from attendnext_keras.deploy.predictor import Predictor

top = Predictor(sys.argv[1]).predict([sys.argv[2]], top_k=5)[0]
roots = {m.split(".")[0] for m in list(sys.modules)} - set(sys.stdlib_module_names) - {"__main__", "attendnext_keras"}
owners = importlib.metadata.packages_distributions()
print(json.dumps({"top": [[p.label, p.score] for p in top], "heavy": sorted(HEAVY & set(sys.modules)),
                  "third_party": {r: owners.get(r, ["?"]) for r in sorted(roots) if not r.startswith("_")}}))
"""


def _runtime_requires():
    """RUNTIME_REQUIRES of setup.py: what README's runtime-only install installs besides the package."""
    tree = ast.parse((REPO / "setup.py").read_text())
    found = [node.value for node in ast.walk(tree) if isinstance(node, ast.Assign)
             and any(getattr(t, "id", None) == "RUNTIME_REQUIRES" for t in node.targets)]
    return ast.literal_eval(found[0])


def test_predictor_runs_without_tensorflow(exported, photos):
    """The runtime-only install (README: pip install --no-deps, then RUNTIME_REQUIRES) is enough: with TensorFlow,
    Keras, tf-keras, tfmot, tfds and tflite-micro made unimportable, Predictor loads and predicts the same, and
    every third-party module it imported comes from RUNTIME_REQUIRES or their own dependencies."""
    import importlib.metadata
    import re

    result = exported["int8-ptq"]
    done = subprocess.run([sys.executable, "-c", _NO_TENSORFLOW, result.path, str(photos[0])], capture_output=True,
                          text=True, cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    expected = Predictor(result.path).predict([photos[0]], top_k=5)[0]
    assert out["top"] == [[p.label, p.score] for p in expected]
    assert out["heavy"] == []

    def name(requirement):
        return re.split(r"[\s;<>=!~\[]", requirement)[0].lower().replace("_", "-")

    allowed = {name(r) for r in _runtime_requires()}
    allowed |= {name(r) for d in list(allowed) for r in importlib.metadata.requires(d) or () if "extra ==" not in r}
    assert {"ai-edge-litert", "numpy", "pillow"} <= allowed
    for root, dists in out["third_party"].items():
        assert {name(d) for d in dists} & allowed, f"{root} (from {dists}) is not a runtime dependency"
    readme = (REPO / "README.md").read_text()
    assert "pip install --no-deps" in readme and all(f'"{r}"' in readme for r in _runtime_requires())


def _bomb_png(width=30_000, height=30_000):
    """A PNG header announcing 900 M pixels (Pillow refuses above twice its 89 M limit) with no real data."""
    import struct
    import zlib

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


def test_a_decompression_bomb_is_refused_by_name(exported, photos, tmp_path):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_bomb_png())
    predictor = Predictor(exported["float32"].path)
    with pytest.raises(ValueError, match=f"Cannot read image file '{bomb}'"):
        predictor.predict([bomb])
    assert len(predictor.predict([photos[0]])) == 1  # the predictor still works

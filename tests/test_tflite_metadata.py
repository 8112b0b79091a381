"""Standard TFLite metadata inside the .tflite (deploy.tflite_metadata): the embedded model computes exactly what the
original did on LiteRT (XNNPACK on and off), TFLite Micro and Vela; name, normalisation and labels read back."""

import importlib.util
import io
import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from attendnext_keras.deploy import tflite_metadata as tm
from attendnext_keras.deploy.litert import load_interpreter, random_input

CLASSES = ["daisy", "Löwenzahn", "玫瑰"]  # non-ASCII labels must survive labels.txt
MODES = ("float32", "int8-ptq")


@pytest.fixture(scope="module")
def converted():
    """{mode: (original flatbuffer, sidecar metadata, embedded flatbuffer)} of Conv2D → GAP → Dense(3) at 16 px."""
    import keras

    from attendnext_keras.deploy.conversion import to_tflite_formats
    from attendnext_keras.deploy.metadata import build_metadata
    from attendnext_keras.deploy.report import conversion_report

    inp = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inp)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inp, keras.layers.Dense(3)(x), name="tiny")
    noise = np.random.default_rng(0).uniform(0, 255, (8, 16, 16, 3)).astype("float32")
    blobs = to_tflite_formats(model, MODES, representative_data=noise)
    out = {}
    for mode, blob in blobs.items():
        report = conversion_report(blob, model=model, mode=mode, check_micro=False)
        metadata = build_metadata(model, report, mode, CLASSES)
        out[mode] = blob, metadata, tm.embed(blob, metadata)
    return out


def _outputs(blob, inputs, xnnpack):
    interpreter = load_interpreter(blob, xnnpack=xnnpack)
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    results = []
    for x in inputs:
        interpreter.set_tensor(inp["index"], x)
        interpreter.invoke()
        results.append(interpreter.get_tensor(out["index"]).copy())
    return results


def _random_inputs(blob, count=8):
    detail = load_interpreter(blob, xnnpack=False).get_input_details()[0]
    rng = np.random.default_rng(7)
    return [random_input(detail, rng) for _ in range(count)]


@pytest.mark.parametrize("xnnpack", [True, False], ids=["xnnpack", "builtin-kernels"])
@pytest.mark.parametrize("mode", MODES)
def test_litert_outputs_are_byte_identical(converted, mode, xnnpack):
    original, _, embedded = converted[mode]
    inputs = _random_inputs(original)
    for a, b in zip(_outputs(original, inputs, xnnpack), _outputs(embedded, inputs, xnnpack)):
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes()


def test_tflite_micro_outputs_are_identical(converted):
    from attendnext_keras.deploy.micro import MicroRunner

    original, _, embedded = converted["int8-ptq"]
    a, b = MicroRunner(original), MicroRunner(embedded)
    for x in _random_inputs(original):
        assert np.array_equal(a.run(x), b.run(x)) and a.run(x).dtype == np.int8


def test_original_flatbuffer_is_kept_whole_and_aligned(converted):
    """The original bytes follow the new root table, moved by a multiple of 64 (all their alignments hold); the
    model's own metadata entries stay, TFLITE_METADATA is added (read with the flatc-generated TFLite schema)."""
    from ai_edge_litert import schema_py_generated as schema

    for original, _, embedded in converted.values():
        shift = embedded.index(original)
        assert shift % 64 == 0 and embedded[4:8] == b"TFL3"
        before, after = schema.Model.GetRootAsModel(original, 0), schema.Model.GetRootAsModel(embedded, 0)
        names = [after.Metadata(i).Name().decode() for i in range(after.MetadataLength())]
        assert names == [before.Metadata(i).Name().decode() for i in range(before.MetadataLength())] + [tm.METADATA_NAME]
        assert after.BuffersLength() == before.BuffersLength() + 1
        assert after.Metadata(len(names) - 1).Buffer() == before.BuffersLength()
        assert after.Buffers(before.BuffersLength()).DataAsNumpy().tobytes()[4:8] == b"M001"
        assert (after.Version(), after.Description(), after.SubgraphsLength(), after.SignatureDefsLength()) == \
               (before.Version(), before.Description(), before.SubgraphsLength(), before.SignatureDefsLength())
        with zipfile.ZipFile(io.BytesIO(embedded)) as archive:  # associated files: zipped onto the end, stored
            assert sorted(archive.namelist()) == [tm.EXPORT_METADATA_FILE, tm.LABELS_FILE]
            assert all(info.compress_type == zipfile.ZIP_STORED for info in archive.infolist())
            assert archive.read(tm.LABELS_FILE).decode("utf-8") == "daisy\nLöwenzahn\n玫瑰\n"


@pytest.mark.parametrize("mode", MODES)
def test_metadata_reads_back(converted, mode, tmp_path):
    from attendnext_keras import _io

    original, metadata, embedded = converted[mode]
    info = tm.read(embedded, reader="builtin")
    _io.write_json(tmp_path / "model.json", metadata)  # the packed JSON is the sidecar file, byte for byte
    with zipfile.ZipFile(io.BytesIO(embedded)) as archive:
        assert archive.read(tm.EXPORT_METADATA_FILE) == (tmp_path / "model.json").read_bytes()
    assert info["name"] == "tiny" and info["version"] == metadata["created"]
    assert info["description"].startswith("tiny: image classifier, 3 classes (labels.txt), 16×16 RGB input")
    assert info["min_parser_version"] == "1.0.0"
    assert info["labels"] == CLASSES and info["output"]["labels_file"] == "labels.txt"
    assert info["export_metadata"] == metadata
    image = info["input"]
    assert image["color_space"] == "RGB" and image["size"] == [16, 16] and image["name"] == "image"
    assert image["normalization"] == {"mean": [0.0], "std": [1.0]}  # pixels in [0, 255] as they are
    assert "[0, 255]" in image["description"] and "crop_pct 0.875" in image["description"]
    if mode == "float32":
        assert image["stats"] == {"min": [0.0], "max": [255.0]}
    else:  # the int8 tensor's values for pixels 0 and 255
        scale, zero_point = metadata["input"]["scale"], metadata["input"]["zero_point"]
        expected = [float(np.clip(round(p / scale) + zero_point, -128, 127)) for p in (0, 255)]
        assert [image["stats"]["min"][0], image["stats"]["max"][0]] == expected
        assert f"z = {zero_point}" in image["description"]
    assert info["output"]["name"] == "logits" and info["output"]["stats"] is None
    assert tm.read(original) is None  # no metadata


def test_standard_reader_agrees(converted):
    """tflite-support's MetadataDisplayer (when it imports: it does not install beside TensorFlow 2.21) reads the
    same metadata and labels as the builtin reader."""
    if tm._standard_reader() is None:
        pytest.skip("tflite-support's metadata module does not import here")
    for _, _, embedded in converted.values():
        standard, builtin = tm.read(embedded, reader="standard"), tm.read(embedded, reader="builtin")
        assert standard["reader"] == "tflite_support"
        assert standard["metadata_json"] == builtin["metadata_json"]
        assert standard["labels"] == builtin["labels"] == CLASSES
        assert standard["export_metadata"] == builtin["export_metadata"]


def test_reading_needs_only_the_standard_library(converted, tmp_path):
    path = tmp_path / "m.tflite"
    path.write_bytes(converted["int8-ptq"][2])
    code = ("import sys, json; from attendnext_keras.deploy import tflite_metadata as tm; "
            f"info = tm.read(open({str(path)!r}, 'rb').read(), reader='builtin'); "
            "print(json.dumps([info['labels'], [m for m in ('numpy', 'flatbuffers', 'tensorflow', 'ai_edge_litert') "
            "if m in sys.modules]]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == [CLASSES, []]


def test_embedding_again_replaces_the_metadata(converted):
    from ai_edge_litert import schema_py_generated as schema

    original, metadata, embedded = converted["int8-ptq"]
    renamed = tm.embed(embedded, {**metadata, "class_names": ["a", "b", "c"]}, name="tiny v2",
                       include_export_metadata=False)
    info = tm.read(renamed)
    assert info["name"] == "tiny v2" and info["labels"] == ["a", "b", "c"]
    assert info["associated_files"] == [tm.LABELS_FILE]
    model = schema.Model.GetRootAsModel(renamed, 0)
    names = [model.Metadata(i).Name().decode() for i in range(model.MetadataLength())]
    assert names.count(tm.METADATA_NAME) == 1
    assert model.BuffersLength() == schema.Model.GetRootAsModel(embedded, 0).BuffersLength()  # its buffer reused
    inputs = _random_inputs(original, 4)
    assert all(np.array_equal(a, b) for a, b in zip(_outputs(original, inputs, True), _outputs(renamed, inputs, True)))


def test_without_class_names_and_with_probabilities(converted):
    original, metadata, _ = converted["float32"]
    info = tm.read(tm.embed(original, {**metadata, "class_names": None, "output": {**metadata["output"],
                                                                                   "kind": "probabilities"}}))
    assert info["labels"] is None and info["output"]["labels_file"] is None
    assert "labels.txt" not in info["description"] + info["output"]["description"]
    assert info["associated_files"] == [tm.EXPORT_METADATA_FILE]
    assert info["output"]["name"] == "probability" and info["output"]["stats"] == {"min": [0.0], "max": [1.0]}


def test_bad_input_is_a_clear_error(converted, tmp_path):
    original, metadata, embedded = converted["int8-ptq"]
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("labels.txt", "a\n")
    for junk in (b"", b"not a model at all, just text", archive.getvalue(), b"\0" * 64):
        with pytest.raises(ValueError, match="Not a TFLite model"):
            tm.embed(junk, metadata)
        with pytest.raises(ValueError, match="Not a TFLite model"):
            tm.read(junk)
    with pytest.raises(ValueError, match="Not a TFLite model"):
        tm.read("model.tflite")
    with pytest.raises(ValueError, match="malformed"):
        tm.read(original[:8] + b"\xff" * 8)  # the right identifier, a root offset past the end
    with pytest.raises(ValueError, match=r"2 class names \(the model has 3 classes\)"):
        tm.embed(original, {**metadata, "class_names": ["a", "b"]})
    with pytest.raises(ValueError, match=r"input dtype float32 \(the model's is int8\)"):
        tm.embed(original, {**metadata, "input": {**metadata["input"], "dtype": "float32"}})
    with pytest.raises(ValueError, match="no line break"):
        tm.embed(original, {**metadata, "class_names": ["a", "b\nc", "d"]})
    with pytest.raises(ValueError, match="`reader` must be one of"):
        tm.read(embedded, reader="netron")


@pytest.mark.skipif(importlib.util.find_spec("ethosu") is None, reason="ethos-u-vela is not installed")
def test_vela_compiles_the_embedded_model_alike(converted, tmp_path):
    """Vela compiles the embedded int8 model to the same NPU plan as the original (its summary, less the name), and
    metadata embedded into Vela's own output keeps its entries (TFLite Micro's OfflineMemoryAllocation) and buffers."""
    from ai_edge_litert import schema_py_generated as schema

    original, metadata, embedded = converted["int8-ptq"]
    summaries = []
    for name, blob in (("original", original), ("embedded", embedded)):
        path = tmp_path / f"{name}.tflite"
        path.write_bytes(blob)
        out = tmp_path / f"{name}_out"
        run = subprocess.run([sys.executable, "-c", "import sys; from ethosu.vela.vela import main; sys.exit(main())",
                              str(path), "--accelerator-config", "ethos-u55-128", "--output-dir", str(out)],
                             capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
        assert os.path.getsize(out / f"{name}_vela.tflite") > 0
        (csv,) = out.glob("*_summary_*.csv")
        header, row = csv.read_text().splitlines()[:2]
        summaries.append(dict(zip(header.split(","), row.split(","))))
    for summary in summaries:
        summary.pop("network")
    assert summaries[0] == summaries[1]

    compiled = (tmp_path / "original_out" / "original_vela.tflite").read_bytes()
    with_metadata = tm.embed(compiled, metadata)
    assert tm.read(with_metadata)["labels"] == CLASSES
    before, after = schema.Model.GetRootAsModel(compiled, 0), schema.Model.GetRootAsModel(with_metadata, 0)
    entries = [(m.Metadata(i).Name().decode(), m.Metadata(i).Buffer()) for m in (before, after)
               for i in range(m.MetadataLength())]
    assert "OfflineMemoryAllocation" in [name for name, _ in entries[:before.MetadataLength()]]
    assert entries[before.MetadataLength():] == entries[:before.MetadataLength()] + [
        (tm.METADATA_NAME, before.BuffersLength())]
    assert all(before.Buffers(i).DataAsNumpy().tobytes() == after.Buffers(i).DataAsNumpy().tobytes()
               for i in range(before.BuffersLength()) if not before.Buffers(i).DataIsNone())

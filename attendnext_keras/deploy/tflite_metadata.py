"""The standard TFLite metadata inside a `.tflite`: what Android's ML Model Binding, the TFLite Task Library,
MediaPipe and Netron read (the `TFLITE_METADATA` buffer of the TFLite metadata schema, `metadata_schema.fbs`, plus
`labels.txt` zipped onto the end of the file, as the standard tooling packs associated files).

    blob = embed(open("model.tflite", "rb").read(), export_result.metadata)   # the sidecar dict (deploy.metadata)
    info = read(blob)            # {"name", "description", "version", "input": {"normalization", "stats", ...},
                                 #  "output": {...}, "labels": [...], "export_metadata": {...}, ...}

What is written: the model's name, description and version; the input as an RGB image of the model's size whose
values are pixels in [0, 255] (our models rescale pixels themselves, so NormalizationOptions mean [0], std [1]: the
identity; an int8 input is then quantized with its own scale and zero point, as the schema prescribes for quantized
models), with the input tensor's value range as its stats; the output (logits or probabilities) with the class
names as `labels.txt` (TENSOR_AXIS_LABELS, UTF-8, one per line); and the sidecar JSON itself as
`attendnext_keras.json`, so one file carries everything `Predictor` needs.

How: the metadata flatbuffer is built with the `flatbuffers` Builder (a dependency of LiteRT, so no new package)
from the field order of `metadata_schema.fbs` (schema 1.5.0, identifier "M001"; only 1.0.0 fields are written).
The model itself is not re-serialized: a new root `Model` table that copies every field of the old one, with a
`buffers` vector one longer (the metadata) and a `metadata` vector with the `TFLITE_METADATA` entry, is written in
front of the untouched original flatbuffer (flatbuffer offsets point forwards, and the original is moved by a
multiple of 64 bytes, so every alignment in it holds). Operators, tensors and weights are the original bytes, so
LiteRT, XNNPACK, TFLite Micro and Vela compute exactly what they computed before. Embedding again replaces the
metadata (the earlier zip is dropped; the earlier metadata buffer stays in the file, unreferenced).

`read` uses tflite-support's `MetadataDisplayer` when that package imports (it does not install beside
TensorFlow 2.21: it needs protobuf < 4) and its own reader otherwise; both give the flatc JSON of the metadata, which
`read` summarises the same way. The reader needs only the standard library (no NumPy, no TensorFlow, no flatbuffers),
so the Predictor's runtime-only install can read labels from a model.
"""

from __future__ import annotations

import importlib
import io
import json
import math
import struct
import zipfile
import zlib

from attendnext_keras import _io

METADATA_NAME = "TFLITE_METADATA"
"""The name of the model's `metadata` entry whose buffer holds the metadata flatbuffer (the standard tooling's)."""
METADATA_IDENTIFIER = b"M001"
MIN_PARSER_VERSION = "1.0.0"
"""Every field written here exists since metadata schema 1.0.0 (ModelMetadata.min_parser_version)."""
LABELS_FILE = "labels.txt"
EXPORT_METADATA_FILE = "attendnext_keras.json"
READERS = ("auto", "standard", "builtin")

_ALIGN = 64  # the original flatbuffer moves by a multiple of this (buffers need 16: `force_align: 16`)
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed, so that the same model and metadata give the same bytes

# ---------------------------------------------------------------------------------------------------------------------
# The metadata schema (metadata_schema.fbs of tensorflow/tflite-support, Apache-2.0, schema 1.5.0; read for its field
# order, nothing copied): the tables this module writes and reads, fields in declaration order, so a field's index is
# its vtable slot. A union field takes two slots, `<name>_type` (ubyte) then `<name>`, as flatc lays them out. Field
# types: string, [string], [float], int32, uint32, enum:<Enum>, utype:<Union>, union:<Union>, <Table>, [<Table>];
# None marks a field this module neither writes nor reads (skipped when reading).

_ENUMS = {
    "AssociatedFileType": ("UNKNOWN", "DESCRIPTIONS", "TENSOR_AXIS_LABELS", "TENSOR_VALUE_LABELS",
                           "TENSOR_AXIS_SCORE_CALIBRATION", "VOCABULARY", "SCANN_INDEX_FILE"),
    "ColorSpaceType": ("UNKNOWN", "RGB", "GRAYSCALE"),
}
_UNIONS = {
    "ContentProperties": ("NONE", "FeatureProperties", "ImageProperties", "BoundingBoxProperties", "AudioProperties"),
    "ProcessUnitOptions": ("NONE", "NormalizationOptions", "ScoreCalibrationOptions", "ScoreThresholdingOptions",
                           "BertTokenizerOptions", "SentencePieceTokenizerOptions", "RegexTokenizerOptions"),
}
_TABLES = {
    "ModelMetadata": (("name", "string"), ("description", "string"), ("version", "string"),
                      ("subgraph_metadata", "[SubGraphMetadata]"), ("author", "string"), ("license", "string"),
                      ("associated_files", "[AssociatedFile]"), ("min_parser_version", "string")),
    "SubGraphMetadata": (("name", "string"), ("description", "string"),
                         ("input_tensor_metadata", "[TensorMetadata]"), ("output_tensor_metadata", "[TensorMetadata]"),
                         ("associated_files", "[AssociatedFile]"), ("input_process_units", "[ProcessUnit]"),
                         ("output_process_units", "[ProcessUnit]"), ("input_tensor_groups", None),
                         ("output_tensor_groups", None), ("custom_metadata", None)),
    "TensorMetadata": (("name", "string"), ("description", "string"), ("dimension_names", "[string]"),
                       ("content", "Content"), ("process_units", "[ProcessUnit]"), ("stats", "Stats"),
                       ("associated_files", "[AssociatedFile]")),
    "Content": (("content_properties_type", "utype:ContentProperties"),
                ("content_properties", "union:ContentProperties"), ("range", "ValueRange")),
    "ValueRange": (("min", "int32"), ("max", "int32")),
    "FeatureProperties": (),
    "ImageProperties": (("color_space", "enum:ColorSpaceType"), ("default_size", "ImageSize")),
    "ImageSize": (("width", "uint32"), ("height", "uint32")),
    "AudioProperties": (("sample_rate", "uint32"), ("channels", "uint32")),
    "ProcessUnit": (("options_type", "utype:ProcessUnitOptions"), ("options", "union:ProcessUnitOptions")),
    "NormalizationOptions": (("mean", "[float]"), ("std", "[float]")),
    "Stats": (("max", "[float]"), ("min", "[float]")),
    "AssociatedFile": (("name", "string"), ("description", "string"), ("type", "enum:AssociatedFileType"),
                       ("locale", "string"), ("version", "string")),
}

# The TFLite model schema (tensorflow/compiler/mlir/lite/schema/schema.fbs): the slots read or copied here.
_MODEL_SLOTS = 10  # version, operator_codes, subgraphs, description, buffers, metadata_buffer, metadata,
#                    signature_defs, external_buffer_groups, external_buffers: slot 0 a uint, the others offsets
_MODEL_SUBGRAPHS, _MODEL_BUFFERS, _MODEL_METADATA = 2, 4, 6
_SUBGRAPH_TENSORS, _SUBGRAPH_INPUTS, _SUBGRAPH_OUTPUTS = 0, 1, 2
_TENSOR_SHAPE, _TENSOR_TYPE, _TENSOR_QUANTIZATION = 0, 1, 4
_QUANTIZATION_SCALE, _QUANTIZATION_ZERO_POINT = 2, 3
_BUFFER_DATA, _BUFFER_OFFSET = 0, 1
_METADATA_ENTRY_NAME, _METADATA_ENTRY_BUFFER = 0, 1
_TENSOR_TYPES = {0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 6: "bool", 7: "int16", 9: "int8",
                 10: "float64", 15: "uint16"}


# ---------------------------------------------------------------------------------------------------------------------
# Reading flatbuffers (standard library only)


class _Flatbuffer:
    """Bounds-checked little-endian reads of a flatbuffer; anything out of range is a ValueError."""

    def __init__(self, data: bytes, what: str):
        self.data, self.what = data, what

    def _unpack(self, fmt, pos):
        size = struct.calcsize(fmt)
        if pos < 0 or pos + size > len(self.data):
            raise ValueError(f"{self.what} is malformed: a read at byte {pos} runs past its end ({len(self.data)}).")
        return struct.unpack_from(fmt, self.data, pos)[0]

    def table(self, pos):
        return _Table(self, pos)

    def offset(self, pos):
        """Where the uoffset at `pos` points."""
        return pos + self._unpack("<I", pos)

    def vector(self, pos, size):
        """(start, length) of the vector at `pos` with elements of `size` bytes."""
        length = self._unpack("<I", pos)
        if pos + 4 + length * size > len(self.data):
            raise ValueError(f"{self.what} is malformed: a vector at byte {pos} runs past its end.")
        return pos + 4, length

    def string(self, pos):
        start, length = self.vector(pos, 1)
        try:
            return self.data[start:start + length].decode("utf-8")
        except UnicodeDecodeError as error:
            raise ValueError(f"{self.what} is malformed: a string at byte {pos} is not UTF-8 ({error}).") from None


class _Table:
    def __init__(self, fb: _Flatbuffer, pos: int):
        self.fb, self.pos = fb, pos
        self.vtable = pos - fb._unpack("<i", pos)
        self.vtable_size = fb._unpack("<H", self.vtable)
        if self.vtable_size < 4 or self.vtable_size % 2:
            raise ValueError(f"{fb.what} is malformed: the table at byte {pos} has a vtable of {self.vtable_size} "
                             f"bytes.")

    @property
    def slots(self):
        return (self.vtable_size - 4) // 2

    def field(self, slot):
        """The position of field `slot`, or None when it is absent (its default)."""
        if slot >= self.slots:
            return None
        offset = self.fb._unpack("<H", self.vtable + 4 + 2 * slot)
        return self.pos + offset if offset else None

    def scalar(self, slot, fmt, default=0):
        pos = self.field(slot)
        return default if pos is None else self.fb._unpack(fmt, pos)

    def target(self, slot):
        """Where the offset field `slot` points (None when absent)."""
        pos = self.field(slot)
        return None if pos is None else self.fb.offset(pos)

    def child(self, slot):
        pos = self.target(slot)
        return None if pos is None else self.fb.table(pos)

    def string(self, slot):
        pos = self.target(slot)
        return None if pos is None else self.fb.string(pos)

    def tables(self, slot):
        pos = self.target(slot)
        if pos is None:
            return []
        start, length = self.fb.vector(pos, 4)
        return [self.fb.table(self.fb.offset(start + 4 * i)) for i in range(length)]

    def scalars(self, slot, fmt):
        pos = self.target(slot)
        if pos is None:
            return []
        size = struct.calcsize(fmt)
        start, length = self.fb.vector(pos, size)
        return [self.fb._unpack(fmt, start + size * i) for i in range(length)]


def _metadata_to_json(table: _Table, name: str) -> dict:
    """A metadata table as flatc prints it in JSON (field names of the schema, enums by name, defaults left out)."""
    out = {}
    for slot, (field, kind) in enumerate(_TABLES[name]):
        if kind is None or table.field(slot) is None:
            continue
        if kind == "string":
            out[field] = table.string(slot)
        elif kind in ("int32", "uint32"):
            out[field] = table.scalar(slot, "<i" if kind == "int32" else "<I")
        elif kind == "[float]":
            out[field] = [_shortest(x) for x in table.scalars(slot, "<f")]
        elif kind == "[string]":
            pos = table.target(slot)
            start, length = table.fb.vector(pos, 4)
            out[field] = [table.fb.string(table.fb.offset(start + 4 * i)) for i in range(length)]
        elif kind.startswith(("enum:", "utype:")):
            names = _ENUMS.get(kind[5:]) or _UNIONS[kind[6:]]
            value = table.scalar(slot, "<B" if kind.startswith("utype:") else "<b")
            if value:
                out[field] = names[value] if 0 <= value < len(names) else value
        elif kind.startswith("union:"):
            member = out.get(field + "_type")
            if member in _TABLES:
                out[field] = _metadata_to_json(table.child(slot), member)
        elif kind.startswith("["):
            out[field] = [_metadata_to_json(t, kind[1:-1]) for t in table.tables(slot)]
        else:
            out[field] = _metadata_to_json(table.child(slot), kind)
    return out


def _shortest(value: float) -> float:
    """A float32 as the shortest decimal that reads back as the same float32 (0.1, not 0.10000000149011612).
    flatc's JSON, which the standard reader returns, rounds to 6 decimal places instead (0.333333 for 1/3)."""
    packed = struct.pack("<f", value)
    for digits in range(6, 10):
        short = float(f"{value:.{digits}g}")
        if struct.pack("<f", short) == packed:
            return short
    return value


def _check_model(model_content) -> bytes:
    if isinstance(model_content, (bytearray, memoryview)):
        model_content = bytes(model_content)
    if not isinstance(model_content, bytes):
        raise ValueError(f"Not a TFLite model: expected the flatbuffer's bytes, got {type(model_content).__name__}.")
    if len(model_content) < 16 or model_content[4:8] != b"TFL3":
        raise ValueError("Not a TFLite model: the flatbuffer identifier 'TFL3' is missing at bytes 4–8.")
    return model_content


def _model(model_content: bytes) -> _Table:
    fb = _Flatbuffer(model_content, "The TFLite model")
    return fb.table(fb.offset(0))


def _metadata_entries(model: _Table) -> list:
    """[(name, buffer index, Metadata table)] of the model's `metadata` vector."""
    return [(t.string(_METADATA_ENTRY_NAME), t.scalar(_METADATA_ENTRY_BUFFER, "<I"), t)
            for t in model.tables(_MODEL_METADATA)]


def _metadata_buffer(model: _Table) -> bytes | None:
    """The TFLITE_METADATA buffer's bytes, or None when the model has none."""
    for name, index, _ in _metadata_entries(model):
        if name == METADATA_NAME:
            buffers = model.tables(_MODEL_BUFFERS)
            if index >= len(buffers):
                raise ValueError(f"The TFLite model is malformed: its {METADATA_NAME} entry names buffer {index} of "
                                 f"{len(buffers)}.")
            pos = buffers[index].target(_BUFFER_DATA)
            if pos is None:
                return b""
            start, length = model.fb.vector(pos, 1)
            return model.fb.data[start:start + length]
    return None


def _packed_files(model_content: bytes) -> dict:
    """{name: bytes} of the files zipped onto the end of the model (empty when there is no zip)."""
    try:
        with zipfile.ZipFile(io.BytesIO(model_content)) as archive:
            return {info.filename: archive.read(info) for info in archive.infolist()}
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError, ValueError, zlib.error):
        return {}


def export_metadata(model_content: bytes):
    """The attendnext_keras JSON that `embed` packs into a model (parsed), or None when the model carries none; only
    that file is read, so a model from elsewhere with metadata this module cannot read gives None, not an error.
    Raises ValueError when the file is there but is not JSON."""
    packed = _packed_files(_check_model(model_content)).get(EXPORT_METADATA_FILE)
    if packed is None:
        return None
    try:
        return json.loads(packed.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"its packed {EXPORT_METADATA_FILE} is not JSON ({error})") from None


def _zip_start(model_content: bytes) -> int | None:
    """Where the zip of associated files begins (None when there is none)."""
    try:
        with zipfile.ZipFile(io.BytesIO(model_content)) as archive:
            offsets = [info.header_offset for info in archive.infolist()]
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError):
        return None
    return min(offsets) if offsets else None


# ---------------------------------------------------------------------------------------------------------------------
# Reading


def read(model_content: bytes, reader: str = "auto") -> dict | None:
    """The standard metadata of a `.tflite` (bytes), summarised; None when the model has none.

    Returns {"name", "description", "version", "author", "license", "min_parser_version", "input", "output",
    "labels", "associated_files", "export_metadata", "metadata_json", "reader"}: "input" has "name", "description",
    "color_space", "size" ([height, width]), "normalization" ({"mean", "std"}) and "stats" ({"min", "max"});
    "output" has "name", "description", "stats" and "labels_file"; "labels" is the TENSOR_AXIS_LABELS file of the
    output as a list (None without one); "export_metadata" the packed attendnext_keras JSON (None without it);
    "metadata_json" the whole metadata as flatc's JSON. Fields the metadata lacks are None.

    reader: "standard" (tflite-support's MetadataDisplayer; ImportError when it does not import), "builtin" (this
    module's, standard library only) or "auto" (standard when it imports, else builtin). The two agree, except that
    the standard reader's floats are rounded to 6 decimal places (flatc's JSON); the builtin gives float32 exactly.
    """
    if reader not in READERS:
        raise ValueError(f"`reader` must be one of {READERS}. Received: reader={reader!r}")
    model_content = _check_model(model_content)
    buffer = _metadata_buffer(_model(model_content))
    if buffer is None:
        return None
    standard = None if reader == "builtin" else _standard_reader()
    if reader == "standard" and standard is None:
        raise ImportError("tflite-support's metadata reader does not import here (`pip install tflite-support`; "
                          "it needs protobuf < 4, which TensorFlow 2.21 does not allow). Use reader='builtin'.")
    if standard is not None:
        displayer = standard.MetadataDisplayer.with_model_buffer(model_content)
        tree = json.loads(displayer.get_metadata_json())
        files = {name: bytes(displayer.get_associated_file_buffer(name))
                 for name in displayer.get_packed_associated_file_list()}
        return _summary(tree, files, "tflite_support")
    return _summary(metadata_json(model_content), _packed_files(model_content), "builtin")


def metadata_json(model_content: bytes) -> dict | None:
    """The model's metadata flatbuffer as flatc prints it in JSON (the builtin reader); None without metadata."""
    model_content = _check_model(model_content)
    buffer = _metadata_buffer(_model(model_content))
    if buffer is None:
        return None
    if buffer[4:8] != METADATA_IDENTIFIER:
        raise ValueError(f"The model's {METADATA_NAME} buffer is not TFLite metadata: identifier "
                         f"{bytes(buffer[4:8])!r}, expected {METADATA_IDENTIFIER!r}.")
    fb = _Flatbuffer(bytes(buffer), f"The model's {METADATA_NAME} buffer")
    return _metadata_to_json(fb.table(fb.offset(0)), "ModelMetadata")


_STANDARD = []


def _standard_reader():
    """tflite-support's metadata module when it imports (cached), else None."""
    if not _STANDARD:
        module = None
        for name in ("tflite_support.metadata", "tensorflow_lite_support.metadata.python.metadata"):
            try:
                module = importlib.import_module(name)
                break
            except Exception:  # not installed, or installed against another protobuf: ImportError, TypeError, …
                continue
        _STANDARD.append(module)
    return _STANDARD[0]


def _summary(tree: dict, files: dict, reader: str) -> dict:
    subgraph = (tree.get("subgraph_metadata") or [{}])[0]
    inputs, outputs = subgraph.get("input_tensor_metadata") or [{}], subgraph.get("output_tensor_metadata") or [{}]
    image, scores = inputs[0], outputs[0]
    properties = (image.get("content") or {}).get("content_properties") or {}
    size = properties.get("default_size")
    normalization = next((unit.get("options", {}) for unit in image.get("process_units") or []
                          if unit.get("options_type") == "NormalizationOptions"), None)
    labels_file = next((f["name"] for f in scores.get("associated_files") or []
                        if f.get("type") == "TENSOR_AXIS_LABELS"), None)
    labels = None
    if labels_file is not None and labels_file in files:
        labels = [line.removesuffix("\r") for line in files[labels_file].decode("utf-8").split("\n")]
        if labels and labels[-1] == "":
            labels.pop()  # the file ends in a newline
    export_metadata = None
    if EXPORT_METADATA_FILE in files:
        export_metadata = json.loads(files[EXPORT_METADATA_FILE].decode("utf-8"))

    def stats(tensor):
        found = tensor.get("stats")
        return None if found is None else {"min": found.get("min"), "max": found.get("max")}

    return {
        "name": tree.get("name"), "description": tree.get("description"), "version": tree.get("version"),
        "author": tree.get("author"), "license": tree.get("license"),
        "min_parser_version": tree.get("min_parser_version"),
        "input": {"name": image.get("name"), "description": image.get("description"),
                  "color_space": properties.get("color_space"),
                  "size": None if size is None else [size.get("height", 0), size.get("width", 0)],
                  "normalization": None if normalization is None else {"mean": normalization.get("mean", []),
                                                                      "std": normalization.get("std", [])},
                  "stats": stats(image)},
        "output": {"name": scores.get("name"), "description": scores.get("description"), "stats": stats(scores),
                   "labels_file": labels_file},
        "labels": labels,
        "associated_files": sorted(files),
        "export_metadata": export_metadata,
        "metadata_json": tree,
        "reader": reader,
    }


# ---------------------------------------------------------------------------------------------------------------------
# Writing


def embed(model_content: bytes, metadata: dict, *, name: str | None = None, description: str | None = None,
          version: str | None = None, author: str | None = None, license: str | None = None,
          include_export_metadata: bool = True) -> bytes:
    """The model with the standard TFLite metadata and its associated files: `labels.txt` (when the metadata has
    class names) and, unless include_export_metadata=False, the sidecar JSON as `attendnext_keras.json`.

    Args:
        model_content: a `.tflite` flatbuffer (bytes): an image classifier with one input (1, H, W, 3) and one
            output (1, classes), as `attendnext_keras.export` writes them.
        metadata: the export's metadata dict (`deploy.metadata.build_metadata`, the `.json` beside the model); its
            shapes, dtypes and class count must be the model's.
        name, description, version, author, license: override what is written (defaults: the metadata's
            model_name; a description of the classifier, its input and preprocessing; the export's creation time;
            none; none).

    Raises ValueError for bytes that are not a TFLite model, a model that is not a one-image classifier, metadata
    of another model, and class names that cannot be lines of labels.txt (empty, or holding a line break).
    """
    model_content = _check_model(model_content)
    if not isinstance(metadata, dict):
        raise TypeError(f"`metadata` must be the export's metadata dict. Received: {type(metadata).__name__}")
    model = _model(model_content)
    existing = _metadata_buffer(model) is not None
    if existing:  # embedded before: drop the earlier associated files, the metadata entry is replaced below
        start = _zip_start(model_content)
        if start is not None:
            model_content = model_content[:start]
            model = _model(model_content)
    image, scores = _io_tensors(model)
    tree, files = _describe(image, scores, metadata, name, description, version, author, license,
                            include_export_metadata)
    blob = _with_metadata_buffer(model_content, model, _build_metadata(tree))
    stream = io.BytesIO(blob)
    stream.seek(0, io.SEEK_END)
    with zipfile.ZipFile(stream, "a", compression=zipfile.ZIP_STORED) as archive:
        for filename, data in files.items():  # stored, not deflated: the C++ and Java extractors map them
            archive.writestr(zipfile.ZipInfo(filename, date_time=_ZIP_DATE), data)
    return stream.getvalue()


def _io_tensors(model: _Table):
    """(input, output) of the main subgraph as {"shape", "dtype", "scale", "zero_point"}; a model that is not a
    one-image classifier is a ValueError."""
    subgraphs = model.tables(_MODEL_SUBGRAPHS)
    if not subgraphs:
        raise ValueError("The TFLite model has no subgraph.")
    subgraph = subgraphs[0]
    tensors = subgraph.tables(_SUBGRAPH_TENSORS)
    inputs, outputs = subgraph.scalars(_SUBGRAPH_INPUTS, "<i"), subgraph.scalars(_SUBGRAPH_OUTPUTS, "<i")
    if len(inputs) != 1 or len(outputs) != 1:
        raise ValueError(f"The TFLite model has {len(inputs)} inputs and {len(outputs)} outputs; the standard "
                         f"metadata written here describes image classifiers with one of each.")

    def detail(index):
        if not 0 <= index < len(tensors):
            raise ValueError(f"The TFLite model is malformed: tensor {index} of {len(tensors)}.")
        tensor = tensors[index]
        quantization = tensor.child(_TENSOR_QUANTIZATION)
        scales = [] if quantization is None else quantization.scalars(_QUANTIZATION_SCALE, "<f")
        zero_points = [] if quantization is None else quantization.scalars(_QUANTIZATION_ZERO_POINT, "<q")
        type_code = tensor.scalar(_TENSOR_TYPE, "<b")
        return {"shape": tensor.scalars(_TENSOR_SHAPE, "<i"), "dtype": _TENSOR_TYPES.get(type_code, str(type_code)),
                "scale": float(scales[0]) if len(scales) == 1 else 0.0,
                "zero_point": int(zero_points[0]) if len(zero_points) == 1 else 0}

    image, scores = detail(inputs[0]), detail(outputs[0])
    if len(image["shape"]) != 4 or image["shape"][0] != 1 or image["shape"][3] != 3:
        raise ValueError(f"The TFLite model takes input of shape {image['shape']}; the standard metadata written "
                         f"here describes one RGB image, [1, height, width, 3].")
    if len(scores["shape"]) != 2 or scores["shape"][0] != 1:
        raise ValueError(f"The TFLite model gives output of shape {scores['shape']}; the standard metadata written "
                         f"here describes classifiers, [1, classes].")
    return image, scores


def _class_names(image, scores, metadata) -> list | None:
    """The metadata's class names, after checking that the metadata describes this model (shapes, dtypes, input
    scale, class count) and that the names can be lines of labels.txt."""
    problems = []
    for which, tensor in (("input", image), ("output", scores)):
        entry = metadata.get(which) or {}
        if "shape" in entry and [int(d) for d in entry["shape"]] != tensor["shape"]:
            problems.append(f"{which} shape {list(entry['shape'])} (the model's is {tensor['shape']})")
        if "dtype" in entry and entry["dtype"] != tensor["dtype"]:
            problems.append(f"{which} dtype {entry['dtype']} (the model's is {tensor['dtype']})")
        elif tensor["scale"] and "scale" in entry and not math.isclose(entry["scale"], tensor["scale"],
                                                                       rel_tol=1e-6):
            problems.append(f"{which} scale {entry['scale']} (the model's is {tensor['scale']})")
    size, classes = image["shape"][1:3], scores["shape"][1]
    if "input_size" in metadata and [int(d) for d in metadata["input_size"]] != size:
        problems.append(f"input size {list(metadata['input_size'])} (the model's is {size})")
    class_names = metadata.get("class_names")
    if class_names is not None and len(class_names) != classes:
        problems.append(f"{len(class_names)} class names (the model has {classes} classes)")
    if problems:
        raise ValueError("The metadata does not describe this model: it gives " + "; ".join(problems) + ".")
    if class_names is None:
        return None
    class_names = [str(c) for c in class_names]
    bad = [c for c in class_names if not c or "\n" in c or "\r" in c]
    if bad:
        raise ValueError(f"Class names become the lines of {LABELS_FILE}: they must be non-empty and hold no line "
                         f"break. Received: {bad[:5]}")
    return class_names


def _describe(image, scores, metadata, name, description, version, author, license, include_export_metadata):
    """(the ModelMetadata as flatc JSON, {associated file name: bytes}) for a classifier and its export metadata."""
    class_names = _class_names(image, scores, metadata)
    height, width, classes = image["shape"][1], image["shape"][2], scores["shape"][1]
    preprocessing = metadata.get("preprocessing") or {}
    low, high = (float(v) for v in preprocessing.get("pixel_range", (0, 255)))
    if not high > low:
        raise ValueError(f"preprocessing.pixel_range must be [low, high] with high > low. Received: {[low, high]}")
    # NormalizationOptions map pixels p in [0, 255] to the input's values (p - mean) / std: here [low, high].
    std = 255.0 / (high - low)
    mean = 0.0 - low * std + 0.0  # + 0.0: no -0.0
    if image["dtype"] in ("int8", "uint8", "int16") and image["scale"]:
        bounds = {"int8": (-128, 127), "uint8": (0, 255), "int16": (-32768, 32767)}[image["dtype"]]

        def quantize(value):
            return float(min(max(round(value / image["scale"]) + image["zero_point"], bounds[0]), bounds[1]))

        value_range = quantize(low), quantize(high)
        quantized = (f" The {image['dtype']} tensor takes them quantized: q = round(value / s) + z, s = "
                     f"{image['scale']:g}, z = {image['zero_point']}.")
    else:
        value_range, quantized = (low, high), ""
    kind = (metadata.get("output") or {}).get("kind", "logits")
    crop_pct = preprocessing.get("crop_pct")
    recipe = ""
    if crop_pct is not None:
        recipe = (f" Preprocessing (as in training's evaluation): resize {preprocessing.get('resize', 'bilinear')}, "
                  f"then {preprocessing.get('crop', 'center')} crop {height}×{width} (crop_pct {crop_pct:g}).")
    pixels = ("pixel values in [0, 255] (the model rescales them itself)" if (low, high) == (0.0, 255.0)
              else f"pixels p in [0, 255] mapped to (p - {mean:g}) / {std:g}, in [{low:g}, {high:g}]")
    input_description = f"One RGB image, {height}×{width}, {pixels}.{quantized}{recipe}"
    listed = f" in {LABELS_FILE}" if class_names is not None else ""
    if kind == "probabilities":
        output_description = f"Probabilities of the {classes} classes{listed}."
    else:
        output_description = f"Logits of the {classes} classes{listed} (softmax gives probabilities)."
    if scores["dtype"] in ("int8", "uint8", "int16") and scores["scale"]:
        output_description += (f" The {scores['dtype']} tensor holds them quantized: value = (q - z) × s, s = "
                               f"{scores['scale']:g}, z = {scores['zero_point']}.")
    model_name = name or metadata.get("model_name") or "model"
    mode = metadata.get("mode")
    package = metadata.get("attendnext_keras_version")
    facts = [f"{classes} classes" + (f" ({LABELS_FILE})" if class_names is not None else ""),
             f"{height}×{width} RGB input"]
    if mode:
        facts.append(f"{mode} TFLite")
    if package:
        facts.append(f"exported by attendnext_keras {package}")
    default_description = f"{model_name}: image classifier, " + ", ".join(facts) + "."

    image_md = {"name": "image", "description": input_description,
                "content": {"content_properties_type": "ImageProperties",
                            "content_properties": {"color_space": "RGB",
                                                   "default_size": {"width": width, "height": height}}},
                "process_units": [{"options_type": "NormalizationOptions",
                                   "options": {"mean": [mean], "std": [std]}}],
                "stats": {"max": [value_range[1]], "min": [value_range[0]]}}
    scores_md = {"name": "probability" if kind == "probabilities" else "logits", "description": output_description,
                 "content": {"content_properties_type": "FeatureProperties", "content_properties": {}}}
    if kind == "probabilities" and scores["dtype"] == "float32":
        scores_md["stats"] = {"max": [1.0], "min": [0.0]}
    files = {}
    if class_names is not None:
        scores_md["associated_files"] = [{"name": LABELS_FILE, "type": "TENSOR_AXIS_LABELS",
                                          "description": "The class names, one per line, in output order."}]
        files[LABELS_FILE] = ("\n".join(class_names) + "\n").encode("utf-8")
    tree = {"name": model_name, "description": description or default_description,
            "version": version or metadata.get("created") or package,
            "subgraph_metadata": [{"input_tensor_metadata": [image_md], "output_tensor_metadata": [scores_md]}],
            "author": author, "license": license, "min_parser_version": MIN_PARSER_VERSION}
    if include_export_metadata:
        tree["associated_files"] = [{"name": EXPORT_METADATA_FILE,
                                     "description": "attendnext_keras export metadata (the JSON written beside the "
                                                    ".tflite): preprocessing, input and output quantization, classes."}]
        # as `_io.write_json` writes the sidecar, so the packed file is the .json beside the model byte for byte
        files[EXPORT_METADATA_FILE] = (json.dumps(metadata, indent=1, ensure_ascii=False, default=_io._jsonable)
                                       + "\n").encode("utf-8")
    return _without_none(tree), files


def _without_none(value):
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value]
    return value


def _build_metadata(tree: dict) -> bytes:
    """The metadata flatbuffer (identifier M001) of a ModelMetadata given as flatc JSON."""
    import flatbuffers  # LiteRT's dependency; imported here so that reading needs nothing beyond the stdlib

    builder = flatbuffers.Builder(1024)
    root = _build_table(builder, "ModelMetadata", tree)
    builder.Finish(root, file_identifier=METADATA_IDENTIFIER)
    return bytes(builder.Output())


def _build_table(builder, name: str, value: dict) -> int:
    fields = _TABLES[name]
    unknown = set(value) - {field for field, kind in fields if kind is not None}
    if unknown:
        raise ValueError(f"{name} has no field {sorted(unknown)} this module writes.")
    children = {}  # offsets (strings, vectors, tables) must be built before the table that holds them
    for field, kind in fields:
        if field not in value or kind is None:
            continue
        item = value[field]
        if kind == "string":
            children[field] = builder.CreateString(item)
        elif kind == "[float]":
            builder.StartVector(4, len(item), 4)
            for x in reversed(item):
                builder.PrependFloat32(float(x))
            children[field] = builder.EndVector()
        elif kind == "[string]":
            children[field] = _offset_vector(builder, [builder.CreateString(s) for s in item])
        elif kind.startswith("union:"):
            children[field] = _build_table(builder, value[field + "_type"], item)
        elif kind.startswith("["):
            children[field] = _offset_vector(builder, [_build_table(builder, kind[1:-1], t) for t in item])
        elif kind in _TABLES:
            children[field] = _build_table(builder, kind, item)
    builder.StartObject(len(fields))
    for slot, (field, kind) in enumerate(fields):
        if field not in value or kind is None:
            continue
        if field in children:
            builder.PrependUOffsetTRelativeSlot(slot, children[field], 0)
        elif kind.startswith("enum:"):
            builder.PrependInt8Slot(slot, _ENUMS[kind[5:]].index(value[field]), 0)
        elif kind.startswith("utype:"):
            builder.PrependUint8Slot(slot, _UNIONS[kind[6:]].index(value[field]), 0)
        elif kind == "uint32":
            builder.PrependUint32Slot(slot, int(value[field]), 0)
        elif kind == "int32":
            builder.PrependInt32Slot(slot, int(value[field]), 0)
    return builder.EndObject()


def _offset_vector(builder, offsets) -> int:
    builder.StartVector(4, len(offsets), 4)
    for offset in reversed(offsets):
        builder.PrependUOffsetTRelative(offset)
    return builder.EndVector()


class _Prefix:
    """Flatbuffer objects laid out forwards, to go in front of an existing flatbuffer. A uoffset must point forwards,
    so parents are written before their children: links name their target by a key ("new", key) of an object
    written later here, or by its position in the flatbuffer behind (("old", position)); `finish` resolves them once
    the prefix's length is known."""

    def __init__(self):
        self.data = bytearray(8)  # the root uoffset and the file identifier
        self.links = []  # (position of a uoffset, ("new", key) | ("old", position in the original))
        self.objects = {}  # key → position

    def pad(self, alignment, before=0):
        """Pads so that `before` bytes from here the position is a multiple of `alignment`."""
        self.data += bytes(-(len(self.data) + before) % alignment)

    def table(self, key, fields: list):
        """A table of 4-byte fields [(slot, "u32" | "new" | "old", value)], in slot order."""
        slots = max(slot for slot, _, _ in fields) + 1
        self.pad(2)
        vtable = len(self.data)
        entries = [0] * slots
        for i, (slot, _, _) in enumerate(fields):
            entries[slot] = 4 + 4 * i
        self.data += struct.pack(f"<HH{slots}H", 4 + 2 * slots, 4 + 4 * len(fields), *entries)
        self.pad(4)
        self.objects[key] = table = len(self.data)
        self.data += struct.pack("<i", table - vtable)
        for _, kind, value in fields:
            if kind == "u32":
                self.data += struct.pack("<I", value)
            else:
                self._link(kind, value)

    def _link(self, kind, target):
        self.links.append((len(self.data), (kind, target)))
        self.data += bytes(4)

    def vector(self, key, targets: list):
        """A vector of uoffsets [("new", key) | ("old", position)]."""
        self.pad(4)
        self.objects[key] = len(self.data)
        self.data += struct.pack("<I", len(targets))
        for kind, target in targets:
            self._link(kind, target)

    def string(self, key, text: str):
        encoded = text.encode("utf-8")
        self.pad(4)
        self.objects[key] = len(self.data)
        self.data += struct.pack("<I", len(encoded)) + encoded + b"\0"

    def bytes_vector(self, key, payload: bytes, alignment: int):
        """A [ubyte] vector whose first byte sits at a multiple of `alignment`."""
        self.pad(alignment, before=4)
        self.objects[key] = len(self.data)
        self.data += struct.pack("<I", len(payload)) + payload

    def finish(self, root_key, identifier: bytes, alignment: int) -> bytes:
        """The prefix, padded to a multiple of `alignment` (the shift of the flatbuffer behind it)."""
        self.pad(alignment)
        shift = len(self.data)
        struct.pack_into("<I", self.data, 0, self.objects[root_key])
        self.data[4:8] = identifier
        for pos, (kind, target) in self.links:
            target = target + shift if kind == "old" else self.objects[target]
            if target <= pos:
                raise AssertionError("a uoffset must point forwards")  # a layout bug, never the input's fault
            struct.pack_into("<I", self.data, pos, target - pos)
        return bytes(self.data)


def _with_metadata_buffer(model_content: bytes, model: _Table, metadata_buffer: bytes) -> bytes:
    """The model with `metadata_buffer` as its TFLITE_METADATA: a new root table in front of the original bytes."""
    if model.slots > _MODEL_SLOTS and any(model.field(s) is not None for s in range(_MODEL_SLOTS, model.slots)):
        raise ValueError(f"The TFLite model's root table has fields this module does not know (slots "
                         f"{_MODEL_SLOTS}..{model.slots - 1}): a newer schema; cannot add metadata safely.")
    buffers = model.tables(_MODEL_BUFFERS)
    if any(b.scalar(_BUFFER_OFFSET, "<Q") > 1 for b in buffers):
        raise ValueError("The TFLite model keeps buffers outside its flatbuffer (Buffer.offset, models over 2 GB); "
                         "adding metadata to those is not supported.")
    entries = _metadata_entries(model)
    index = next((i for n, i, _ in entries if n == METADATA_NAME), len(buffers))
    buffer_refs = [("old", b.pos) for b in buffers]
    if index < len(buffers):  # replaces the earlier metadata's buffer
        buffer_refs[index] = ("new", "buffer")
    else:
        buffer_refs.append(("new", "buffer"))
    fields = []  # the root Model: every field of the original, buffers and metadata replaced
    for slot in range(_MODEL_SLOTS):
        if slot == _MODEL_BUFFERS:
            fields.append((slot, "new", "buffers"))
        elif slot == _MODEL_METADATA:
            fields.append((slot, "new", "metadata"))
        elif model.field(slot) is None:
            continue
        elif slot == 0:  # version: a uint
            fields.append((slot, "u32", model.scalar(0, "<I")))
        else:
            fields.append((slot, "old", model.target(slot)))

    prefix = _Prefix()
    prefix.table("model", fields)
    prefix.vector("buffers", buffer_refs)
    prefix.vector("metadata", [("old", t.pos) for n, _, t in entries if n != METADATA_NAME] + [("new", "entry")])
    prefix.table("entry", [(_METADATA_ENTRY_NAME, "new", "name"), (_METADATA_ENTRY_BUFFER, "u32", index)])
    prefix.string("name", METADATA_NAME)
    prefix.table("buffer", [(_BUFFER_DATA, "new", "data")])
    prefix.bytes_vector("data", metadata_buffer, 16)  # Buffer.data is `force_align: 16`
    return prefix.finish("model", b"TFL3", _ALIGN) + model_content

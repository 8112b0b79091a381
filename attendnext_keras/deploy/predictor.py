"""Predictor: an exported `.tflite` and its metadata → top-k labels, with LiteRT, NumPy and Pillow only (no
TensorFlow), so a device needs only the runtime install (README, "Running exported models").

    predictor = Predictor("out/model.tflite")            # reads out/model.json beside it
    print(format_predictions(["a.jpg"], predictor.predict(["a.jpg"], top_k=3)))
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import math
import os

import numpy as np
from PIL import Image

from attendnext_keras import preprocessing
from attendnext_keras.deploy.litert import load_interpreter, quantize_input
from attendnext_keras.deploy.metadata import METADATA_FORMAT, find_metadata, load_metadata

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Prediction:
    label: str
    index: int
    score: float


OUTPUT_KINDS = ("logits", "probabilities")


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, in float64 for accuracy, returned as float32."""
    shifted = np.asarray(logits, dtype=np.float64)
    shifted = shifted - shifted.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return (exp / exp.sum(axis=-1, keepdims=True)).astype(np.float32)


def _quantization(detail):
    """(scale, zero_point) of a per-tensor quantized I/O tensor; (0.0, 0) for float tensors."""
    scales = detail.get("quantization_parameters", {}).get("scales", ())
    if len(scales) > 1:
        raise ValueError(f"Tensor '{detail['name']}' is quantized per channel ({len(scales)} scales); a Predictor "
                         f"needs per-tensor input and output quantization.")
    scale, zero_point = detail["quantization"]
    return float(scale), int(zero_point)


def _ends_in_softmax(interpreter) -> bool:
    """Whether the graph's output comes from a SOFTMAX op (looking through QUANTIZE/DEQUANTIZE at the edge; the
    interpreter also lists XNNPACK's DELEGATE nodes as producers of the tensors they compute, which are skipped)."""
    ops = interpreter._get_ops_details()
    producer = {int(t): op for op in ops if op["op_name"] != "DELEGATE" for t in op["outputs"]}
    tensor = interpreter.get_output_details()[0]["index"]
    while tensor in producer:
        op = producer[tensor]
        if op["op_name"] == "SOFTMAX":
            return True
        if op["op_name"] not in ("QUANTIZE", "DEQUANTIZE") or not len(op["inputs"]):
            return False
        tensor = int(op["inputs"][0])
    return False


def _is_single_image(images) -> bool:
    return (isinstance(images, (str, os.PathLike, Image.Image))
            or isinstance(images, np.ndarray) and images.ndim <= 3)


def _image_name(image, index):
    if isinstance(image, (str, os.PathLike)):
        return os.fspath(image)
    return f"image {index}"


class Predictor:
    """An exported `.tflite` and its metadata JSON, ready to label images with LiteRT (no TensorFlow needed).

        predictor = Predictor("out/model.tflite")            # reads out/model.json beside it
        for top in predictor.predict(["a.jpg", "b.png"], top_k=3):
            print([(p.label, round(p.score, 3)) for p in top])

    Images (paths, PIL images, or arrays (H, W), (H, W, 1|3|4) of any size, uint8 or float pixels in [0, 255]) go
    through `preprocess_image` with the metadata's input size and crop_pct: the evaluation transform of training, so
    any image size is resized and center cropped. Arrays already at the model's size, pixels as the model takes them,
    skip it with `preprocess=False` (another size is then a ValueError). int8 inputs are quantized and int8 outputs
    dequantized with the interpreter's own scale and zero point (which must agree with the metadata); logits become
    probabilities by softmax. The model has batch size 1, so a batch is run one image at a time.

    The metadata is the JSON `export` writes beside the model, else the copy it packs inside the `.tflite` (so a
    model file copied alone keeps it). Without either (`--no-embed-metadata`, a model from elsewhere) pass
    `class_names` and `crop_pct`; otherwise the classes are called "class_0", "class_1", …, crop_pct is 0.875, and
    one logged warning says so. The output
    kind is read from the graph (a final SOFTMAX means probabilities) unless `output_kind` is given. Explicit
    arguments take precedence over the metadata.

    Args:
        model_path: the `.tflite` file.
        metadata: the metadata dict or the path of its JSON; default: the JSON beside the model, else the copy
            `export` packs into the .tflite (its standard TFLite metadata), if there is one.
        class_names, crop_pct, output_kind: override or stand in for the metadata's.
        num_threads: threads for LiteRT's CPU kernels and XNNPACK (default 1).
        xnnpack: run on the XNNPACK delegate (LiteRT's default CPU path); False uses LiteRT's own kernels.
    """

    def __init__(self, model_path, metadata=None, *, class_names=None, crop_pct=None, output_kind=None,
                 num_threads: int = 1, xnnpack: bool = True):
        model_path = os.fspath(model_path)
        with open(model_path, "rb") as f:
            blob = f.read()
        if metadata is None:  # looked up once the file has loaded as a model: beside it, else inside it
            metadata, metadata_source = _FindMetadata(model_path), None
        elif isinstance(metadata, (str, os.PathLike)):
            metadata_source = os.fspath(metadata)
            if not os.path.exists(metadata_source):
                raise FileNotFoundError(f"Metadata file '{metadata_source}' does not exist.")
            metadata = load_metadata(metadata_source)
        else:
            metadata_source = "the metadata given"
        self._setup(blob, model_path, metadata, metadata_source, class_names, crop_pct, output_kind, num_threads,
                    xnnpack)

    @classmethod
    def from_bytes(cls, model_content: bytes, metadata: dict | None = None, **kwargs) -> "Predictor":
        """A Predictor over a flatbuffer in memory; `metadata` is the export's metadata dict (default: the copy
        packed inside the model, if any). Keyword arguments as for the constructor."""
        self = cls.__new__(cls)
        source = "the metadata given"
        if metadata is None:  # the copy packed inside the model, if there is one
            metadata, source = _FindMetadata(None), None
        options = {"class_names": None, "crop_pct": None, "output_kind": None, "num_threads": 1, "xnnpack": True}
        unknown = set(kwargs) - set(options)
        if unknown:
            raise TypeError(f"Predictor.from_bytes() got unexpected keyword arguments: {sorted(unknown)}")
        options.update(kwargs)
        self._setup(model_content, "the model given", metadata, source, **options)
        return self

    def _setup(self, blob, source, metadata, metadata_source, class_names, crop_pct, output_kind, num_threads,
               xnnpack):
        try:
            self.interpreter = load_interpreter(blob, num_threads=num_threads, xnnpack=xnnpack)
        except (ValueError, RuntimeError) as error:
            raise ValueError(f"Cannot load {_quote(source)} as a TFLite model: {error}") from error
        inputs, outputs = self.interpreter.get_input_details(), self.interpreter.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ValueError(f"{_quote(source)} has {len(inputs)} inputs and {len(outputs)} outputs; attendnext runs "
                             f"image classifiers with one of each.")
        self._input, self._output = inputs[0], outputs[0]
        shape, out_shape = tuple(int(d) for d in self._input["shape"]), tuple(int(d) for d in self._output["shape"])
        if len(shape) != 4 or shape[0] != 1 or shape[3] != 3:
            raise ValueError(f"{_quote(source)} takes input of shape {shape}; attendnext runs image "
                             f"classifiers with one RGB image input, (1, height, width, 3).")
        if len(out_shape) != 2 or out_shape[0] != 1:
            raise ValueError(f"{_quote(source)} gives output of shape {out_shape}; attendnext runs image "
                             f"classifiers with one (1, classes) output.")
        self._input_q, self._output_q = _quantization(self._input), _quantization(self._output)
        for detail, (scale, _) in ((self._input, self._input_q), (self._output, self._output_q)):
            if np.issubdtype(detail["dtype"], np.integer) and scale <= 0:
                raise ValueError(f"{_quote(source)} has an {np.dtype(detail['dtype']).name} tensor "
                                 f"'{detail['name']}' without a quantization scale.")
        classes = out_shape[1]
        if isinstance(metadata, _FindMetadata):
            metadata, metadata_source = find_metadata(metadata.model_path, blob)
        if metadata is not None:
            if not isinstance(metadata, dict):
                raise TypeError(f"`metadata` must be a dict, a JSON path or None. Received: {type(metadata).__name__}")
            self._check_metadata(metadata, metadata_source, source)
        self._metadata = copy.deepcopy(metadata)
        metadata = metadata or {}

        guessed = []
        if class_names is None:
            class_names = metadata.get("class_names")
        if class_names is None:
            class_names = [f"class_{i}" for i in range(classes)]
            guessed.append(f"class names class_0…class_{classes - 1}")
        class_names = [str(c) for c in class_names]
        if len(class_names) != classes:
            raise ValueError(f"{_quote(source)} has {classes} classes but {len(class_names)} class names were given: "
                             f"{class_names[:10]}")
        if crop_pct is None:
            crop_pct = (metadata.get("preprocessing") or {}).get("crop_pct")
        if crop_pct is None:
            crop_pct = preprocessing.DEFAULT_CROP_PCT
            guessed.append(f"crop_pct={preprocessing.DEFAULT_CROP_PCT}")
        preprocessing.scaled_size(1, crop_pct)  # validates crop_pct
        if output_kind is None:
            output_kind = (metadata.get("output") or {}).get("kind")
        if output_kind is None:
            output_kind = "probabilities" if _ends_in_softmax(self.interpreter) else "logits"
        if output_kind not in OUTPUT_KINDS:
            raise ValueError(f"`output_kind` must be one of {OUTPUT_KINDS}. Received: output_kind={output_kind!r}")
        if guessed:
            why = ("has no metadata" if self._metadata is None
                   else f"has metadata without them ({_quote(metadata_source)})")
            logger.warning("%s %s: using %s. Export with attendnext_keras.export (it writes the JSON) or pass "
                           "them to Predictor.", _quote(source), why, " and ".join(guessed))
        self._class_names, self._crop_pct, self._output_kind = class_names, float(crop_pct), output_kind
        self._input_size = shape[1], shape[2]

    def _check_metadata(self, metadata, metadata_source, source):
        """The metadata must describe this model: I/O shapes and dtypes, quantization, class count, input size."""
        where = _quote(metadata_source)
        if metadata.get("format", METADATA_FORMAT) != METADATA_FORMAT:
            raise ValueError(f"{where} is not attendnext_keras metadata (expected \"format\": \"{METADATA_FORMAT}\").")
        problems = []
        for name, detail, (scale, zero_point) in (("input", self._input, self._input_q),
                                                  ("output", self._output, self._output_q)):
            entry = metadata.get(name) or {}
            actual = [int(d) for d in detail["shape"]]
            if "shape" in entry and [int(d) for d in entry["shape"]] != actual:
                problems.append(f"{name} shape {list(entry['shape'])} (the model's is {actual})")
            dtype = np.dtype(detail["dtype"]).name
            if "dtype" in entry and entry["dtype"] != dtype:
                problems.append(f"{name} dtype {entry['dtype']} (the model's is {dtype})")
            elif np.issubdtype(detail["dtype"], np.integer):
                if "scale" in entry and not math.isclose(entry["scale"], scale, rel_tol=1e-6):
                    problems.append(f"{name} scale {entry['scale']} (the model's is {scale})")
                if "zero_point" in entry and int(entry["zero_point"]) != zero_point:
                    problems.append(f"{name} zero point {entry['zero_point']} (the model's is {zero_point})")
        classes = int(self._output["shape"][-1])
        names = metadata.get("class_names")
        if names is not None and len(names) != classes:
            problems.append(f"{len(names)} class names (the model has {classes} classes)")
        size = [int(d) for d in self._input["shape"][1:3]]
        if "input_size" in metadata and [int(d) for d in metadata["input_size"]] != size:
            problems.append(f"input size {list(metadata['input_size'])} (the model's is {size})")
        kind = (metadata.get("output") or {}).get("kind")
        if kind is not None and kind not in OUTPUT_KINDS:
            problems.append(f"output kind {kind!r} (expected one of {OUTPUT_KINDS})")
        if problems:
            hint = ("Was the model changed after export?" if metadata_source.startswith("the metadata inside")
                    else "Is it the JSON of another export?")
            raise ValueError(f"{where} does not describe {_quote(source)}: it gives " + "; ".join(problems)
                             + f". {hint}")

    @property
    def metadata(self) -> dict | None:
        """The export's metadata (a copy), or None when the Predictor runs without it."""
        return copy.deepcopy(self._metadata)

    @property
    def input_size(self) -> tuple[int, int]:
        """(height, width) of the model input."""
        return self._input_size

    @property
    def class_names(self) -> list[str]:
        return list(self._class_names)

    @property
    def num_classes(self) -> int:
        return len(self._class_names)

    @property
    def crop_pct(self) -> float:
        return self._crop_pct

    @property
    def output_kind(self) -> str:
        return self._output_kind

    def preprocess(self, image, preprocess: bool = True, name: str = "image") -> np.ndarray:
        """One image → float32 (height, width, 3) model input, pixels in [0, 255]."""
        height, width = self._input_size
        try:
            if preprocess:
                return preprocessing.preprocess_image(image, (height, width), self._crop_pct)
            if isinstance(image, (str, os.PathLike, Image.Image)):
                image = preprocessing.to_rgb(image)
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
            if isinstance(image, (str, os.PathLike)):
                raise  # preprocessing names the file
            raise ValueError(f"Cannot use {name}: {error}") from error
        array = np.asarray(image, dtype=np.float32)
        if array.shape != (height, width, 3):
            raise ValueError(f"With preprocess=False, {name} must be an array of shape {(height, width, 3)} (the "
                             f"model's input). Received: shape={array.shape}. Leave preprocess=True to resize "
                             f"and center crop images of any size.")
        if not np.isfinite(array).all():
            raise ValueError(f"Cannot use {name}: it holds non-finite pixel values (NaN or infinity).")
        return array

    def _images(self, images):
        if _is_single_image(images):
            images = [images]
        elif isinstance(images, np.ndarray) and images.ndim != 4:
            raise ValueError(f"An array of images must be (N, H, W, C). Received: shape={images.shape}")
        return list(images)

    def _run(self, x: np.ndarray) -> np.ndarray:
        self.interpreter.set_tensor(self._input["index"], quantize_input(x[None], self._input))
        self.interpreter.invoke()
        y = self.interpreter.get_tensor(self._output["index"])[0]
        if np.issubdtype(y.dtype, np.integer):
            scale, zero_point = self._output_q
            return (y.astype(np.float32) - zero_point) * scale
        return y.astype(np.float32)

    def predict_outputs(self, images, preprocess: bool = True) -> np.ndarray:
        """The model's outputs (N, classes), dequantized to float32: logits or probabilities, as `output_kind`."""
        images = self._images(images)
        outputs = np.empty((len(images), self.num_classes), np.float32)
        for i, image in enumerate(images):
            outputs[i] = self._run(self.preprocess(image, preprocess, _image_name(image, i)))
        return outputs

    def predict_scores(self, images, preprocess: bool = True) -> np.ndarray:
        """Class probabilities (N, classes), float32, each row summing to 1."""
        outputs = self.predict_outputs(images, preprocess)
        if self._output_kind == "logits":
            return softmax(outputs)
        return outputs  # an int8 softmax output is dequantized as is (rows sum to 1 within a few 1/256)

    def predict(self, images, top_k: int = 5, preprocess: bool = True) -> list[list[Prediction]]:
        """The `top_k` classes of each image, best first (ties in class order), as Prediction(label, index, score).

        `images`: a list (or (N, H, W, C) array) of images, or one image (a path, PIL image or (H, W[, C]) array),
        which still gives a list of one. top_k larger than the class count gives all classes.
        """
        if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1:
            raise ValueError(f"`top_k` must be a positive int. Received: top_k={top_k!r}")
        scores = self.predict_scores(images, preprocess)
        results = []
        for row in scores:
            order = np.argsort(-row, kind="stable")[:top_k]
            results.append([Prediction(self._class_names[i], int(i), float(row[i])) for i in order])
        return results

    def __repr__(self):
        return (f"Predictor(input_size={self._input_size}, classes={self.num_classes}, "
                f"input={np.dtype(self._input['dtype']).name}, output={self._output_kind}, crop_pct={self._crop_pct})")


@dataclasses.dataclass
class _FindMetadata:
    """Placeholder for metadata still to be found beside `model_path` (None: a model in memory) or inside the model."""
    model_path: str | None


def _quote(source):
    return f"'{source}'" if source and not source.startswith("the ") else source


def format_predictions(paths, predictions, as_json: bool = False) -> str:
    """Predictions of `Predictor.predict` as a text table (image, rank, label, score) or as JSON:
    [{"image": ..., "predictions": [{"rank", "label", "index", "score"}, ...]}, ...]."""
    paths = [os.fspath(p) if isinstance(p, (str, os.PathLike)) else str(p) for p in paths]
    if len(paths) != len(predictions):
        raise ValueError(f"{len(paths)} image names for {len(predictions)} predictions.")
    if as_json:
        return json.dumps([{"image": path, "predictions": [{"rank": r + 1, "label": p.label, "index": p.index,
                                                           "score": p.score} for r, p in enumerate(top)]}
                           for path, top in zip(paths, predictions)], indent=1)
    rows = [(path if r == 0 else "", str(r + 1), p.label, f"{p.score:.4f}")
            for path, top in zip(paths, predictions) for r, p in enumerate(top)]
    header = ("image", "rank", "label", "score")
    widths = [max(len(row[c]) for row in [header] + rows) for c in range(4)]
    lines = [f"{header[0]:<{widths[0]}}  {header[1]:>{widths[1]}}  {header[2]:<{widths[2]}}  {header[3]:>{widths[3]}}"]
    lines += [f"{a:<{widths[0]}}  {b:>{widths[1]}}  {c:<{widths[2]}}  {d:>{widths[3]}}" for a, b, c, d in rows]
    return "\n".join(line.rstrip() for line in lines)

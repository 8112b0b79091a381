"""What a `.tflite` carries beside it: the metadata JSON that deployment code reads (input size, preprocessing,
input/output dtype with scale and zero point, logits or probabilities, class names).

NumPy-free and TensorFlow-free, so the Predictor (runtime-only install) can read it.
"""

from __future__ import annotations

import datetime
import os

from attendnext_keras import __version__, _io, _keras
from attendnext_keras import preprocessing as preprocessing_module
from attendnext_keras.deploy import tflite_metadata

METADATA_FORMAT = "attendnext-tflite-metadata"
METADATA_VERSION = 1


def build_metadata(model, report, mode: str, class_names=None, preprocessing=None) -> dict:
    """The JSON written next to a `.tflite`: what deployment code needs to feed it and read it. `report` is the
    export's `ConversionReport` (its input/output details, partitions, whether the model is fully int8, and for an
    Ethos-U target Vela's report)."""
    height, width = report.input["shape"][1:3]
    classes = report.output["shape"][-1]
    if class_names is not None:
        class_names = [str(c) for c in class_names]
        if len(class_names) != classes:
            raise ValueError(f"The model has {classes} outputs but {len(class_names)} class names were given. "
                             f"Received: class_names={class_names[:10]}")
    return {
        "format": METADATA_FORMAT,
        "version": METADATA_VERSION,
        "model_name": model.name,
        "mode": mode,
        "input_size": [int(height), int(width)],
        "preprocessing": preprocessing or preprocessing_module.describe(),
        "input": report.input,
        "output": {**report.output, "kind": _keras.output_kind(model)},
        "class_names": class_names,
        "xnnpack_partitions": report.partitions if report.vela is None else None,
        "fully_int8": report.fully_int8,
        # Where the file runs: "xnnpack" (LiteRT's CPU) or an Ethos-U configuration, whose file Vela compiled
        # (its "ethos-u" ops need TFLite Micro with the Ethos-U driver); "vela": what runs where, SRAM, flash, time.
        "target": report.target or "xnnpack",
        "vela": report.vela.as_dict() if report.vela is not None else None,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "attendnext_keras_version": __version__,
    }


def metadata_path(model_path) -> str:
    return os.path.splitext(os.fspath(model_path))[0] + ".json"


def load_metadata(model_path) -> dict | None:
    """The metadata JSON next to a `.tflite` (None when there is none); a malformed one raises ValueError."""
    path = metadata_path(model_path)
    if not os.path.exists(path):
        return None
    return _checked(_io.read_json(path, "Metadata file"), f"'{path}'")


def find_metadata(model_path, model_content: bytes) -> tuple[dict | None, str | None]:
    """(metadata, where it was found) for a `.tflite` and its bytes: the JSON beside the file, else the copy that
    `export` packs into the .tflite's standard TFLite metadata (`attendnext_keras.json`, `tflite_metadata.embed`),
    so a model file copied alone keeps its class names and preprocessing; (None, None) when neither exists.
    `model_path` None: the bytes only (a model in memory)."""
    if model_path is not None:
        metadata = load_metadata(model_path)
        if metadata is not None:
            return metadata, metadata_path(model_path)
    where = "the metadata inside " + ("the model" if model_path is None else f"'{os.fspath(model_path)}'")
    try:
        embedded = tflite_metadata.export_metadata(model_content)
    except ValueError as error:
        raise ValueError(f"Cannot read {where}: {error}") from None
    return (None, None) if embedded is None else (_checked(embedded, where), where)


def _checked(metadata, where: str) -> dict:
    if not isinstance(metadata, dict) or metadata.get("format") != METADATA_FORMAT:
        raise ValueError(f"{where} is not attendnext_keras metadata (expected \"format\": \"{METADATA_FORMAT}\").")
    if metadata.get("version", 0) > METADATA_VERSION:
        raise ValueError(f"{where} has metadata version {metadata['version']}; this attendnext_keras reads up to "
                         f"{METADATA_VERSION}. Upgrade the package.")
    return metadata

"""Export: a Keras model → `.tflite` + metadata JSON + a conversion report that says loudly what went wrong.

    result = attendnext_keras.export(qat_model, "out/model.tflite", mode="int8", class_names=names)
    print(result.report.summary())     # ops, float tensors, XNNPACK partitions, size, TFLM compatibility

Next to `model.tflite` lands `model.json` (`deploy.metadata`). Both files are written atomically (never half a model),
and only after the conversion and its checks succeeded, so a failed export leaves no artefact behind. Problems the
report finds (float ops in an int8 export, several XNNPACK partitions, ops TFLM lacks) are logged as warnings naming
the Keras layers; `strict=True` refuses instead.
"""

from __future__ import annotations

import dataclasses
import logging
import os

from attendnext_keras import _io
from attendnext_keras.deploy.conversion import MODES, to_tflite
from attendnext_keras.deploy.metadata import build_metadata, metadata_path
from attendnext_keras.deploy.report import ConversionReport, conversion_report

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class ExportResult:
    path: str
    metadata_path: str
    report: ConversionReport
    metadata: dict


def export(model, path, mode="int8", representative_data=None, class_names=None, int8_io=True,
           preprocessing=None, check_micro=None, strict=False, calibration_steps=200) -> ExportResult:
    """Converts `model` to `path` (.tflite) in `mode` and writes `<path stem>.json` metadata beside it.

    Args:
        model: a Keras 3 float model, or a QAT tf-keras model for mode="int8".
        mode: one of "float32", "float16", "dynamic", "int8" (QAT model), "int8-ptq" (needs representative_data).
        representative_data: images (or batches, or (images, labels) pairs) shaped like the model input, pixels
            as the model takes them; 100–500 real images from the training data calibrate int8-ptq well.
        class_names: one name per output, stored in the metadata.
        int8_io: int8 input/output tensors for int8 modes (what microcontrollers want); False keeps float I/O
            with QUANTIZE/DEQUANTIZE at the edges.
        preprocessing: the metadata's preprocessing entry (default: the evaluation preprocessing of
            attendnext_keras.preprocessing).
        check_micro: run the model once on TFLite Micro to list ops it lacks (default: for int8 modes).
        strict: raise instead of warning when the report finds problems (nothing is written then).

    Returns an ExportResult with both paths, the ConversionReport and the metadata. Problems (float ops in an
    int8 export, several XNNPACK partitions, ops TFLM lacks) are logged as warnings naming the layers.
    """
    path = os.fspath(path)
    if mode not in MODES:
        raise ValueError(f"`mode` must be one of {MODES}. Received: mode={mode!r}")
    if not path.endswith(".tflite"):
        raise ValueError(f"The output path should end in .tflite. Received: path={path!r}")
    _io.check_writable(path)  # before a conversion that can take minutes
    if check_micro is None:
        check_micro = mode in ("int8", "int8-ptq")
    blob = to_tflite(model, mode, representative_data=representative_data, int8_io=int8_io,
                     calibration_steps=calibration_steps)
    report = conversion_report(blob, model=model, mode=mode, check_micro=check_micro)
    problems = report.problems()
    if problems and strict:
        raise ValueError(f"Export of '{model.name}' to {mode} has problems (nothing written): " + " ".join(problems))
    for problem in problems:
        logger.warning("%s → %s: %s", model.name, os.path.basename(path), problem)
    metadata = build_metadata(model, report, mode, class_names, preprocessing)
    meta_path = metadata_path(path)
    _io.write_atomic(path, blob)
    try:
        _io.write_json(meta_path, metadata)
    except BaseException:  # a model without its metadata is a partial artefact
        os.unlink(path)
        raise
    return ExportResult(path, meta_path, report, metadata)

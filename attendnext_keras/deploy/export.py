"""Export: a Keras model → `.tflite` + metadata JSON + a conversion report that says loudly what went wrong.

    result = attendnext_keras.export(qat_model, "out/model.tflite", mode="int8", class_names=names)
    print(result.report.summary())     # ops, float tensors, XNNPACK partitions, size, TFLM compatibility

Next to `model.tflite` lands `model.json` (`deploy.metadata`). Both files are written atomically (never half a model),
and only after the conversion and its checks succeeded, so a failed export leaves no artefact behind. Problems the
report finds (float ops in an int8 export, several XNNPACK partitions, ops TFLM lacks) are logged as warnings naming
the Keras layers; `strict=True` refuses instead.

    result = attendnext_keras.export(qat_model, "out/model.tflite", mode="int8", target="ethos-u55-128")

`target` picks the hardware: None or "xnnpack" (LiteRT's CPU delegate, the default) or an Arm Ethos-U configuration
(`deploy.vela.ETHOS_U`). For an Ethos-U the model is rebuilt with the NPU's upsampling (`vela.for_target`), converted
to int8 and compiled by Vela; the `.tflite` written is Vela's, and the report and metadata carry Vela's figures (NPU
and CPU ops, SRAM, flash, estimated time).

The `.tflite` also carries the standard TFLite metadata (`deploy.tflite_metadata`: name, description, input
normalisation, `labels.txt` and the JSON itself), as Android's ML Model Binding, the TFLite Task Library, MediaPipe and
Netron read it; ops, tensors and weights stay the converter's (or Vela's) bytes. `embed_metadata=False` leaves it out
(about 4 KiB less flash on a microcontroller).
"""

from __future__ import annotations

import dataclasses
import logging
import os

from attendnext_keras import _io
from attendnext_keras.deploy import tflite_metadata, vela
from attendnext_keras.config import FULLY_INT8_MODES
from attendnext_keras.deploy.conversion import MODES, to_tflite
from attendnext_keras.deploy.metadata import build_metadata, metadata_path
from attendnext_keras.deploy.report import ConversionReport, conversion_report
from attendnext_keras.saving import check_image_classifier

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class ExportResult:
    path: str
    metadata_path: str
    report: ConversionReport
    metadata: dict


def export(model, path, mode="int8", representative_data=None, class_names=None, int8_io=True,
           preprocessing=None, check_micro=None, strict=False, calibration_steps=200, target=None,
           embed_metadata=True) -> ExportResult:
    """Converts `model` to `path` (.tflite) in `mode` and writes `<path stem>.json` metadata beside it.

    Args:
        model: a Keras 3 float model, or a QAT tf-keras model for mode="int8".
        mode: one of "float32", "float16", "dynamic", "int8" (QAT model), "int8-ptq" (needs representative_data),
            "int8-ptq-float-stem" (int8-ptq with the input scaling and first convolution in float32).
        representative_data: images (or batches, or (images, labels) pairs) shaped like the model input, pixels
            as the model takes them; 100–500 real images from the training data calibrate int8-ptq well.
        class_names: one name per output, stored in the metadata.
        int8_io: int8 input/output tensors for int8 modes (what microcontrollers want); False keeps float I/O
            with QUANTIZE/DEQUANTIZE at the edges.
        preprocessing: the metadata's preprocessing entry (default: the evaluation preprocessing of
            attendnext_keras.preprocessing).
        check_micro: run the model once on TFLite Micro to list ops it lacks (default: for int8 modes on the CPU
            target; an Ethos-U file needs TFLite Micro's Ethos-U driver, which the Python interpreter lacks).
        strict: raise instead of warning when the report finds problems (nothing is written then).
        target: None or "xnnpack" (LiteRT's CPU), or an Ethos-U configuration such as "ethos-u55-128" (int8
            modes only; needs `pip install "attendnext_keras[vela]"`): the file written is Vela's.
        embed_metadata: also write the standard TFLite metadata (name, normalisation, labels.txt) into the .tflite
            (`deploy.tflite_metadata`); the model computes the same either way.

    Returns an ExportResult with both paths, the ConversionReport and the metadata. Problems (float ops in an
    int8 export, several XNNPACK partitions, ops TFLM lacks) are logged as warnings naming the layers.
    """
    path = os.fspath(path)
    if mode not in MODES:
        raise ValueError(f"`mode` must be one of {MODES}. Received: mode={mode!r}")
    check_image_classifier(model, getattr(model, "name", "the model"))
    if not path.endswith(".tflite"):
        raise ValueError(f"The output path should end in .tflite. Received: path={path!r}")
    npu = vela.check_request(target, mode)
    _io.check_writable(path)  # before a conversion that can take minutes
    if check_micro is None:
        check_micro = mode in FULLY_INT8_MODES and not npu
    if target is not None:
        model = vela.for_target(model, target)  # the upsampling the target runs best; same weights, same outputs
    blob = to_tflite(model, mode, representative_data=representative_data, int8_io=int8_io,
                     calibration_steps=calibration_steps)
    report = conversion_report(blob, model=model, mode=mode, check_micro=check_micro)
    report.target = target
    if npu:  # the file is Vela's: NPU parts as "ethos-u" ops, the rest left to TFLite Micro's kernels
        report.vela = vela.compile_for_npu(blob, target, model=model)
        blob = report.vela.compiled
    problems = report.problems()
    if problems and strict:
        raise ValueError(f"Export of '{model.name}' to {mode} has problems (nothing written): " + " ".join(problems))
    for problem in problems:
        logger.warning("%s → %s: %s", model.name, os.path.basename(path), problem)
    metadata = build_metadata(model, report, mode, class_names, preprocessing)
    if embed_metadata:
        blob = tflite_metadata.embed(blob, metadata)
        report.size_bytes = len(blob)  # the file written; its ops and weights are the converter's (or Vela's) bytes
    meta_path = metadata_path(path)
    _io.write_atomic(path, blob)
    try:
        _io.write_json(meta_path, metadata)
    except BaseException:  # a model without its metadata is a partial artefact
        os.unlink(path)
        raise
    return ExportResult(path, meta_path, report, metadata)

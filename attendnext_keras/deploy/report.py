"""What a converted model is made of, and what would keep it from running fast or on a microcontroller: the op
histogram, float ops and tensors, XNNPACK partitions and the ops outside them (named by Keras layer), weight bytes,
and the ops TensorFlow Lite Micro lacks (checked in a child process, so an abort in TFLM's C code cannot take the
caller with it). Exports for an Arm Ethos-U NPU carry Vela's report instead of the XNNPACK verdict (`deploy.vela`).
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
import tempfile

import numpy as np

from attendnext_keras.config import FULLY_INT8_MODES
from attendnext_keras.deploy import litert

FLOAT_DTYPES = (np.float32, np.float16, np.float64)


@dataclasses.dataclass
class OpIssue:
    op: str
    tensor: str  # the op's output tensor, as the converter named it
    layer: str | None  # the Keras layer the tensor name points to, when it does

    def __str__(self):
        return f"{self.op} (layer '{self.layer}')" if self.layer else f"{self.op} (tensor '{self.tensor}')"


@dataclasses.dataclass
class ConversionReport:
    """What a converted model is made of, and what would keep it from running fast or on a microcontroller."""

    mode: str | None
    size_bytes: int
    weight_bytes: int
    op_histogram: dict
    partitions: int
    outside_xnnpack: list  # [OpIssue]: ops the XNNPACK delegate leaves to LiteRT's own kernels
    float_ops: list  # [OpIssue]: ops with float activations (inputs or outputs)
    float_activation_tensors: int
    input: dict
    output: dict
    micro_unsupported: list  # op names TFLite Micro cannot run (None when not checked)
    micro_error: str | None = None
    target: str | None = None  # None: LiteRT's CPU (XNNPACK); an Ethos-U configuration for Vela-compiled exports
    vela: object | None = None  # deploy.vela.VelaReport of the compiled model (NPU/CPU ops, SRAM, flash, time)

    @property
    def fully_int8(self) -> bool:
        return not self.float_ops and self.float_activation_tensors == 0

    def float_ops_after_stem(self) -> list:
        """The float ops after the first QUANTIZE (the end of an int8-ptq-float-stem model's float32 stem)."""
        ends = [i for i, issue in enumerate(self.float_ops) if issue.op == "QUANTIZE"]
        return self.float_ops[ends[0] + 1:] if ends else list(self.float_ops)

    def problems(self) -> list[str]:
        """Sentences naming what falls short of the mode's promise (empty when nothing does)."""
        found = []
        if self.mode in FULLY_INT8_MODES and not self.fully_int8:
            found.append(f"{len(self.float_ops)} op(s) compute in float in an int8 export: "
                         f"{_listing(self.float_ops)}")
        if self.mode == "int8-ptq-float-stem" and (rest := self.float_ops_after_stem()):
            found.append(f"{len(rest)} op(s) compute in float after the float32 stem: {_listing(rest)}")
        if self.vela is not None:  # an NPU export: XNNPACK does not run it, Vela says what falls back to the CPU
            found.extend(self.vela.problems())
        elif self.partitions != 1 or self.outside_xnnpack:
            found.append(f"XNNPACK runs the model in {self.partitions} partition(s); "
                         f"{len(self.outside_xnnpack)} op(s) run outside it: {_listing(self.outside_xnnpack)}")
        if self.micro_unsupported:
            found.append(f"TFLite Micro cannot run: {', '.join(self.micro_unsupported)}"
                         + (f" ({self.micro_error})" if self.micro_error else ""))
        return found

    def summary(self) -> str:
        ops = ", ".join(f"{k}×{v}" for k, v in sorted(self.op_histogram.items(), key=lambda kv: -kv[1]))
        lines = [
            f"mode {self.mode}: {self.size_bytes / 1024:.1f} KiB file{' before Vela' if self.vela else ''}, "
            f"{self.weight_bytes / 1024:.1f} KiB of weights",
            f"input {self.input['dtype']} {self.input['shape']}, output {self.output['dtype']} {self.output['shape']}",
            f"ops: {ops}",
            f"float activation tensors: {self.float_activation_tensors}; float ops: {len(self.float_ops)}",
            f"XNNPACK partitions: {self.partitions}; ops outside: {len(self.outside_xnnpack)}" if self.vela is None
            else f"target {self.target}: XNNPACK does not run this file",
            "TFLite Micro: " + ("not checked" if self.micro_unsupported is None else
                                "runs" if not self.micro_unsupported else
                                "cannot run " + ", ".join(self.micro_unsupported)),
        ]
        if self.vela is not None:
            lines.append(self.vela.summary())
        lines += [f"PROBLEM: {p}" for p in self.problems()]
        return "\n".join(lines)

    def as_dict(self) -> dict:
        result = dataclasses.asdict(dataclasses.replace(self, vela=None))  # asdict would copy the compiled model
        result["vela"] = self.vela.as_dict() if self.vela is not None else None
        result["fully_int8"] = self.fully_int8
        result["problems"] = self.problems()
        return result


def _listing(issues, limit=8):
    text = "; ".join(str(issue) for issue in issues[:limit])
    return text + (f"; and {len(issues) - limit} more" if len(issues) > limit else "")


def _tensor_layer(tensor_name, layer_names):
    """The Keras layer a converter tensor name points to. The converter names tensors after the TF ops' scopes
    ("model/stage1_conv_1/Conv2D", fused ops joined with ';'), where Keras 3 may add a '_N' suffix to the scope."""
    for part in re.split(r"[;/]", tensor_name):
        if part in layer_names:
            return part
        base = re.sub(r"_\d+$", "", part)
        if base in layer_names:
            return base
    return None


def _io_detail(detail):
    scale, zero_point = detail["quantization"]
    return {"shape": [int(d) for d in detail["shape"]], "dtype": np.dtype(detail["dtype"]).name,
            "scale": float(scale), "zero_point": int(zero_point)}


def conversion_report(model_content: bytes, model=None, mode: str | None = None,
                      check_micro: bool = True) -> ConversionReport:
    """Analyses a `.tflite` flatbuffer. With the Keras `model` it came from, problems name Keras layers.

    check_micro loads the model into TFLite Micro in a child process (an unsupported op can abort TFLM's C code,
    which must not take the caller's process with it) and lists the ops it lacks.
    """
    model_content = litert.check_tflite(model_content)
    layer_names = {layer.name for layer in model.layers} if model is not None else set()
    interpreter = litert.load_interpreter(model_content, xnnpack=False)
    tensors = {d["index"]: d for d in interpreter.get_tensor_details()}
    ops = interpreter._get_ops_details()
    produced = {int(t) for op in ops for t in op["outputs"] if t >= 0}  # -1: an optional tensor left out
    graph_inputs = {d["index"] for d in interpreter.get_input_details()}
    activations = produced | graph_inputs

    def issue(op):
        name = tensors[int(op["outputs"][0])]["name"] if len(op["outputs"]) else ""
        layer = _tensor_layer(name, layer_names)
        if layer is None:  # an unnamed output (the model's last op): point at the layer feeding it
            for t in op["inputs"]:
                if t >= 0 and (layer := _tensor_layer(tensors[int(t)]["name"], layer_names)):
                    layer = f"after {layer}"
                    break
        return OpIssue(op["op_name"], name, layer)

    # Float I/O (int8_io=False) puts a QUANTIZE after the input and a DEQUANTIZE before the output by request;
    # those edges and the float graph inputs/outputs they touch are not float compute.
    graph_outputs = {d["index"] for d in interpreter.get_output_details()}
    edges = {op["index"] for op in ops
             if (op["op_name"] == "QUANTIZE" and set(map(int, op["inputs"])) <= graph_inputs)
             or (op["op_name"] == "DEQUANTIZE" and set(map(int, op["outputs"])) <= graph_outputs)}
    edge_tensors = {int(t) for op in ops if op["index"] in edges for t in list(op["inputs"]) + list(op["outputs"])
                    if (int(t) in graph_inputs or int(t) in graph_outputs)}
    inner = activations - edge_tensors
    float_ops = [issue(op) for op in ops if op["index"] not in edges
                 and any(t in inner and tensors[t]["dtype"] in FLOAT_DTYPES
                         for t in [int(t) for t in list(op["inputs"]) + list(op["outputs"]) if t >= 0])]
    float_activations = sum(tensors[t]["dtype"] in FLOAT_DTYPES for t in inner)
    delegation = litert.delegation_report(model_content)
    outside = [issue(op) for op in ops if op["index"] in set(delegation["ops_outside_indices"])]
    micro_unsupported, micro_error = (micro_compatibility(model_content) if check_micro else (None, None))
    return ConversionReport(
        mode=mode, size_bytes=len(model_content), weight_bytes=litert.weight_bytes(model_content),
        op_histogram=delegation["op_histogram"], partitions=delegation["partitions"], outside_xnnpack=outside,
        float_ops=float_ops, float_activation_tensors=int(float_activations),
        input=_io_detail(interpreter.get_input_details()[0]), output=_io_detail(interpreter.get_output_details()[0]),
        micro_unsupported=micro_unsupported, micro_error=micro_error)


_MICRO_CHECK = r"""
import sys
from attendnext_keras.deploy.micro import MicroRunner
runner = MicroRunner(open(sys.argv[1], "rb").read())
import numpy as np
detail = runner.interpreter.get_input_details(0)
runner.run(np.zeros(detail["shape"], detail["dtype"]))
print("ARENA", runner.arena_bytes)
"""


def micro_compatibility(model_content: bytes, timeout: float = 120.0):
    """(ops TFLite Micro lacks, error text or None): loads and runs the model once on the `tflite-micro`
    interpreter in a child process. An empty list means the model runs."""
    check = micro_check(model_content, timeout)
    return check["missing"], check["error"]


def micro_check(model_content: bytes, timeout: float = 120.0) -> dict:
    """Loads and runs the model once on the `tflite-micro` interpreter in a child process (an abort in TFLM's C code
    cannot take the caller with it): {"missing": ops TFLM lacks ([] when it runs), "error": text or None,
    "arena_bytes": the arena it used, or None when it did not run}."""
    with tempfile.NamedTemporaryFile(suffix=".tflite") as f:
        f.write(model_content)
        f.flush()
        try:
            done = subprocess.run([sys.executable, "-c", _MICRO_CHECK, f.name], capture_output=True, text=True,
                                  timeout=timeout, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        except subprocess.TimeoutExpired:
            return {"missing": ["(timed out)"], "arena_bytes": None,
                    "error": f"TFLite Micro did not finish one inference in {timeout:.0f} s"}
    arena = re.search(r"^ARENA (\d+)$", done.stdout, re.M)
    if done.returncode == 0 and arena:
        return {"missing": [], "error": None, "arena_bytes": int(arena.group(1))}
    log = done.stdout + done.stderr
    missing = sorted(set(re.findall(r"Didn't find op for builtin opcode '(\w+)'", log)))
    last = [line for line in log.strip().splitlines() if line.strip()][-3:]
    reason = " | ".join(last) or f"exit code {done.returncode}"
    if done.returncode < 0:
        reason = f"TFLite Micro crashed (signal {-done.returncode}): {reason}"
    return {"missing": missing or ["(see error)"], "error": reason, "arena_bytes": None}

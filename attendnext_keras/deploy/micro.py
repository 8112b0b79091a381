"""TensorFlow Lite Micro: run an int8 model on the `tflite-micro` Python interpreter and read its arena size.

The interpreter is the reference TFLM runtime compiled for the host, with the same kernels and memory planner as on a
Cortex-M, so its arena figure is the tensor arena an application must reserve (plus a little per-op overhead).
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile

import numpy as np
from ai_edge_litert.tools import flatbuffer_utils

from attendnext_keras import __version__, _io
from attendnext_keras.deploy import cortex_m
from attendnext_keras.deploy.litert import check_tflite, load_interpreter, quantize_input
from attendnext_keras.deploy.tflite_metadata import METADATA_NAME


@contextlib.contextmanager
def _capture_c_stdio():
    """Captures what C code prints to file descriptors 1 and 2 (TFLM logs through stdio, not Python)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        captured = []
        try:
            yield captured
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            sink.seek(0)
            captured.append(sink.read().decode(errors="replace"))


class MicroRunner:
    """A TFLM interpreter over a .tflite flatbuffer. `run(x)` takes one batch-1 input array and returns the output."""

    def __init__(self, model_content: bytes, arena_size: int | None = None, preserve_all_tensors: bool = False):
        # Deferred: tflite-micro's extension is only loaded where a TFLM model is actually run.
        from tflite_micro.python.tflite_micro import runtime

        model_content = check_tflite(model_content)
        config = (runtime.InterpreterConfig.kPreserveAllTensors if preserve_all_tensors
                  else runtime.InterpreterConfig.kAllocationRecording)
        try:
            with _capture_c_stdio() as log:
                self.interpreter = runtime.Interpreter.from_bytes(model_content, arena_size=arena_size,
                                                                  intrepreter_config=config)
        except RuntimeError as error:
            raise RuntimeError(f"TFLite Micro cannot load this model: {error}. Its log: {log[0][-500:]}") from error

    @property
    def arena_bytes(self) -> int:
        """Bytes of tensor arena the model's plan uses (`print_allocations`' "Arena allocation total")."""
        return self.arena_usage["total"]

    @property
    def arena_usage(self) -> dict:
        """The arena as TFLM's allocator splits it, in bytes: {"total", "planned", "persistent", "allocations"}.

        "planned" (the arena head) holds the memory-planned activation tensors and the kernels' scratch buffers:
        what `profiling.profile`'s peak activation estimate approximates. "persistent" (the tail) holds TFLM's
        per-tensor and per-op data: eval tensors, node structs, per-channel quantization parameters and the
        kernels' persistent buffers, which grow with the number of ops rather than with the image size.
        "allocations" is TFLM's record of the persistent part, {what: {"bytes", "count"}} (empty when the
        interpreter was made with preserve_all_tensors=True, which does not record).
        """
        with _capture_c_stdio() as log:
            self.interpreter.print_allocations()
        found = {key: re.search(rf"Arena allocation {key} (\d+) bytes", log[0]) for key in ("total", "head", "tail")}
        if not all(found.values()):
            raise RuntimeError(f"TFLite Micro did not report its arena size. Its log: {log[0][:500]}")
        records = re.findall(r"'([^']+)' used (\d+) bytes with alignment overhead \(requested \d+ bytes for (\d+)",
                             log[0])
        return {"total": int(found["total"].group(1)), "planned": int(found["head"].group(1)),
                "persistent": int(found["tail"].group(1)),
                "allocations": {what: {"bytes": int(used), "count": int(count)} for what, used, count in records}}

    def run(self, x: np.ndarray) -> np.ndarray:
        detail = self.interpreter.get_input_details(0)
        x = np.asarray(x)
        if tuple(x.shape) != tuple(detail["shape"]) or x.dtype != detail["dtype"]:
            raise ValueError(f"TFLite Micro input must be {detail['dtype'].__name__} of shape {tuple(detail['shape'])}. "
                             f"Received: {x.dtype} of shape {x.shape}")
        self.interpreter.set_input(x, 0)
        self.interpreter.invoke()
        return np.array(self.interpreter.get_output(0))

    def tensor(self, index: int) -> np.ndarray:
        """A tensor's values after `run` (only with preserve_all_tensors=True; the planner reuses memory otherwise)."""
        return np.asarray(self.interpreter.GetTensor(int(index), 0)["tensor_data"])


def compare_with_litert(model_content: bytes, images, runner: MicroRunner | None = None) -> dict:
    """Runs each image through TFLite Micro and through LiteRT (its reference kernels and XNNPACK) and reports
    the largest output differences in quantization steps (LSB) and the top-1 agreement.

    `images` are float pixels shaped like the model input without the batch axis (or a batch of them); `runner`, a
    MicroRunner already holding this model, saves loading it again.
    """
    runner = runner or MicroRunner(model_content)
    reference = load_interpreter(model_content, xnnpack=False)
    xnnpack = load_interpreter(model_content, xnnpack=True)
    detail = reference.get_input_details()[0]
    images = _image_batch(images, detail)
    diffs = {"reference": 0, "xnnpack": 0}
    agree = 0
    for image in images:
        x = quantize_input(image[None], detail)
        micro = runner.run(x).astype(np.int64)
        outputs = {}
        for key, interpreter in (("reference", reference), ("xnnpack", xnnpack)):
            interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
            interpreter.invoke()
            outputs[key] = interpreter.get_tensor(interpreter.get_output_details()[0]["index"]).astype(np.int64)
            diffs[key] = max(diffs[key], int(np.abs(micro - outputs[key]).max()))
        agree += int(np.argmax(micro) == np.argmax(outputs["xnnpack"]))
    return {"images": len(images), "arena_bytes": runner.arena_bytes,
            "max_lsb_vs_litert_reference": diffs["reference"], "max_lsb_vs_xnnpack": diffs["xnnpack"],
            "top1_agreement": agree / len(images)}


def _image_batch(images, detail) -> np.ndarray:
    """Float images as a batch shaped like the model input (one image may come without the batch axis)."""
    images = np.asarray(images, dtype=np.float32)
    shape = tuple(int(d) for d in detail["shape"][1:])
    if images.shape == shape:
        images = images[None]
    if images.shape[1:] != shape:
        raise ValueError(f"Images must have shape {shape}. Received: {images.shape[1:]}")
    return images


def compare_ops_with_litert(model_content: bytes, images) -> list[dict]:
    """Op-by-op comparison of TFLite Micro with LiteRT's built-in kernels (no delegate), to see where outputs part.

    For each op: `max_lsb_in`, the largest difference of its int8 inputs between the runtimes; `max_lsb_out`, of its
    output; and `max_lsb_equal_inputs`, of its output over the images where its inputs were bit-identical (None when
    they never were) — the op's own rounding difference, as opposed to the difference it inherits.
    """
    reference = load_interpreter(model_content, xnnpack=False, preserve_all_tensors=True)
    tensors = reference.get_tensor_details()
    tensor_bytes = sum(int(np.prod(t["shape"])) * np.dtype(t["dtype"]).itemsize for t in tensors)
    micro = MicroRunner(model_content, arena_size=2 * tensor_bytes + (1 << 20), preserve_all_tensors=True)
    detail = reference.get_input_details()[0]
    ops = reference._get_ops_details()  # the built-in resolver: no DELEGATE nodes
    used = {int(i) for op in ops for i in (*op["inputs"], *op["outputs"]) if i >= 0}
    int8 = {t["index"] for t in tensors if t["dtype"] == np.int8 and t["index"] in used}
    rows = [{"index": op["index"], "op": op["op_name"], "max_lsb_in": 0, "max_lsb_out": 0,
             "max_lsb_equal_inputs": None} for op in ops]
    for image in _image_batch(images, detail):
        x = quantize_input(image[None], detail)
        reference.set_tensor(detail["index"], x)
        reference.invoke()
        micro.run(x)
        lsb = {}  # each int8 tensor's difference, once per image (a tensor feeds several ops)
        for index in int8:
            a = reference.get_tensor(index)
            lsb[index] = int(np.abs(a.astype(np.int64) - micro.tensor(index).reshape(a.shape).astype(np.int64)).max())
        for op, row in zip(ops, rows):
            inputs = [lsb[i] for i in op["inputs"] if i in int8]
            out = lsb.get(op["outputs"][0], 0)
            row["max_lsb_in"] = max(row["max_lsb_in"], *inputs, 0)
            row["max_lsb_out"] = max(row["max_lsb_out"], out)
            if not any(inputs):
                row["max_lsb_equal_inputs"] = max(row["max_lsb_equal_inputs"] or 0, out)
    return rows


def own_rounding_by_op(model_content: bytes, images) -> dict:
    """{op type: (count, largest LSB difference of TFLM's output on bit-identical inputs)} from
    `compare_ops_with_litert`: each op type's own rounding, as opposed to the difference it inherits."""
    own = {}
    for row in compare_ops_with_litert(model_content, images):
        if row["max_lsb_equal_inputs"] is not None:
            count, worst = own.get(row["op"], (0, 0))
            own[row["op"]] = (count + 1, max(worst, row["max_lsb_equal_inputs"]))
    return own


def strip_for_micro(model_content: bytes) -> bytes:
    """The model in the form TensorFlow Lite Micro reads with the least flash. Dropped: tensor and subgraph names,
    the description and the signature defs (LiteRT's `flatbuffer_utils.strip_strings`), and the TFLite Support
    metadata with its associated files (the generated header carries the labels and the input/output quantization
    instead). Shortened: the zero points of per-channel weights and biases (all 0, int64, one per output channel) to
    one value, TFLM's documented space-saving form (micro_allocator reads it as the zero point of every channel);
    LiteRT refuses that form, so `litert.load_interpreter` repeats it back per channel. Ops, weights, scales and
    zero-point values are untouched, so outputs are bit-identical; weight buffers stay 4-byte aligned, as in the
    converter's own output (which does not 16-align them either; tested). Measured 2026-12-01: the main job's QAT
    int8 model (names included) 238,124 → 166,352 bytes without the strings, 131,720 with one zero point; `micro` at
    96 px with 1000 classes 317,864 → 281,504 → 238,912 bytes."""
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(check_tflite(model_content)))
    flatbuffer_utils.strip_strings(model)
    for entry in [m for m in model.metadata or [] if (m.name or b"").decode() == METADATA_NAME]:
        model.buffers[entry.buffer].data = None  # the buffer stays (indices must not move), empty
        model.metadata.remove(entry)
    for graph in model.subgraphs:
        for tensor in graph.tensors:
            _one_zero_point(tensor.quantization)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _one_zero_point(quantization) -> None:
    """Per-channel zero points that are all equal (symmetric weights and biases: all 0) shortened to one value."""
    zero_points = getattr(quantization, "zeroPoint", None)
    if zero_points is not None and len(zero_points) > 1 and np.all(zero_points == zero_points[0]):
        quantization.zeroPoint = np.asarray(zero_points[:1], dtype=np.int64)


# ---------------------------------------------------------------------------------------------------------------
# C sources for a TFLM application: the model as an aligned array, its settings, and the op resolver it needs.

# MicroMutableOpResolver method names that do not follow CamelCase of the builtin op name.
_RESOLVER_EXCEPTIONS = {"BATCH_MATMUL": "BatchMatMul", "CUMSUM": "CumSum", "PADV2": "PadV2", "SPLIT_V": "SplitV",
                        "ADD_N": "AddN", "SPACE_TO_BATCH_ND": "SpaceToBatchNd", "BATCH_TO_SPACE_ND": "BatchToSpaceNd",
                        "UNIDIRECTIONAL_SEQUENCE_LSTM": "UnidirectionalSequenceLSTM", "L2_POOL_2D": "L2Pool2D"}


def resolver_method(op_name: str) -> str:
    """The MicroMutableOpResolver method that registers a builtin op: CONV_2D → AddConv2D."""
    if op_name in _RESOLVER_EXCEPTIONS:
        return "Add" + _RESOLVER_EXCEPTIONS[op_name]
    return "Add" + "".join(part if re.fullmatch(r"\d+D", part) else part.capitalize() for part in op_name.split("_"))


def model_ops(model_content: bytes) -> list[str]:
    """The builtin ops a model uses (sorted, once each): what its op resolver must register."""
    ops = {op["op_name"] for op in load_interpreter(model_content, xnnpack=False)._get_ops_details()}
    return sorted(ops - {"DELEGATE"})


def check_c_identifier(name):
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError(f"`name` must be a C identifier (letters, digits, underscores; not starting with a digit). "
                         f"Received: name={name!r}")
    return name


def _c_float(value):
    text = repr(float(value))
    return (text if any(c in text for c in ".e") else text + ".0") + "f"


def _c_string(text):
    """A C string literal of any text: UTF-8 bytes, with quotes, backslashes, control and non-ASCII bytes escaped as
    octal (an octal escape stops after three digits, so a following digit cannot join it as it would a hex escape)."""
    out = []
    for byte in str(text).encode("utf-8"):
        char = chr(byte)
        if char in '"\\':
            out.append("\\" + char)
        elif 32 <= byte < 127 and char != "?":  # "?" escaped too: "??/" would be a trigraph in older C++
            out.append(char)
        else:
            out.append(f"\\{byte:03o}")
    return '"' + "".join(out) + '"'


def c_array_source(model_content: bytes, name: str, bytes_per_line: int = 12) -> str:
    """The .cc body: `alignas(16) const unsigned char g_<name>[]` holding the flatbuffer, and its length.
    TFLM reads tensors in place from the array, so it must be 16-byte aligned."""
    lines = []
    for start in range(0, len(model_content), bytes_per_line):
        chunk = model_content[start:start + bytes_per_line]
        lines.append("    " + ", ".join(f"0x{b:02x}" for b in chunk) + ",")
    return (f"alignas(16) const unsigned char g_{name}[] = {{\n" + "\n".join(lines) + "\n};\n"
            f"const unsigned int g_{name}_len = {len(model_content)};\n")


def read_c_array(source: str) -> bytes:
    """The bytes of the first array in a generated .cc source (the inverse of c_array_source)."""
    match = re.search(r"\[\]\s*=\s*\{(.*?)\};", source, re.S)
    if not match:
        raise ValueError("No C array initialiser found in the source.")
    return bytes(int(token, 16) for token in re.findall(r"0x([0-9a-fA-F]{2})", match.group(1)))


def c_class_names(model_content: bytes, metadata: dict | None = None) -> list[str]:
    """The class names the C sources carry: the export metadata's, else class_0 … class_{n-1} for n outputs."""
    names = (metadata or {}).get("class_names")
    if names:
        return [str(name) for name in names]
    out = load_interpreter(model_content, xnnpack=False).get_output_details()[0]
    return [f"class_{i}" for i in range(int(out["shape"][-1]))]


def write_c_sources(model_content: bytes, folder, name: str = "attendnext_model", metadata: dict | None = None,
                    arena_bytes: int | None = None, arena_margin: float = 0.1, arena_usage: dict | None = None,
                    layout: str | None = None) -> dict:
    """Writes `<name>.h`, `<name>.cc` and `<name>_op_resolver.h` into `folder` (see tflite/README.md), and with
    `layout` ("arduino" or "cmake") a project around them (`cortex_m.write_layout`).

    The header carries the input size, the int8 input/output scale and zero point, the class names (from the
    export metadata when given), the tensor arena size: the TFLM plan's measured arena plus `arena_margin` for
    per-op scratch and alignment (measured here when not given; `arena_usage`, `MicroRunner.arena_usage`, adds
    its split), and, as a comment, the Cortex-M part budgets (`cortex_m.part_budgets`). Returns {kind: path}.
    """
    model_content = check_tflite(model_content)
    name = check_c_identifier(name)
    if layout is not None and layout not in cortex_m.LAYOUTS:
        raise ValueError(f"`layout` must be one of {', '.join(cortex_m.LAYOUTS)}. Received: layout={layout!r}")
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"Cannot write C sources: folder '{folder}' does not exist.")
    if arena_bytes is None:
        arena_usage = MicroRunner(model_content).arena_usage
        arena_bytes = arena_usage["total"]
    class_names = c_class_names(model_content, metadata)
    budgets = cortex_m.part_budgets(model_content, class_names, arena_bytes, arena_margin, arena_usage)
    origin = f" from '{metadata.get('model_name')}' ({metadata.get('mode')})" if metadata else ""
    origin = "".join(c if " " <= c <= "~" else "?" for c in origin)  # a comment line holds printable ASCII only
    banner = f"// Generated by attendnext_keras {__version__}{origin}. Do not edit.\n"
    texts = {"header": _header_text(model_content, name, banner, metadata, class_names, budgets),
             "source": (f'{banner}#include "{name}.h"\n\n' + c_array_source(model_content, name)
                        + f"\nnamespace {name} {{\nconst char* const kClassNames[kNumClasses] = {{"
                        + ", ".join(_c_string(c) for c in class_names) + f"}};\n}}  // namespace {name}\n"),
             "op_resolver": _resolver_text(model_content, name, banner)}
    paths = {"header": os.path.join(folder, f"{name}.h"), "source": os.path.join(folder, f"{name}.cc"),
             "op_resolver": os.path.join(folder, f"{name}_op_resolver.h")}
    for kind, text in texts.items():
        _io.write_atomic(paths[kind], text)
    if layout is not None:
        paths.update(cortex_m.write_layout(layout, paths, name))
    return paths


def _header_text(model_content, name, banner, metadata, class_names, budgets) -> str:
    interpreter = load_interpreter(model_content, xnnpack=False)
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    guard = name.upper()
    return f"""{banner}#ifndef {guard}_H_
#define {guard}_H_

#include <cstddef>

extern const unsigned char g_{name}[];  // the .tflite flatbuffer, 16-byte aligned
extern const unsigned int g_{name}_len;

namespace {name} {{
constexpr int kInputHeight = {int(inp['shape'][1])};
constexpr int kInputWidth = {int(inp['shape'][2])};
constexpr int kInputChannels = {int(inp['shape'][3])};
// x_int8 = round(pixel / kInputScale) + kInputZeroPoint, pixel in the range the model was trained on
constexpr float kInputScale = {_c_float(inp['quantization'][0])};
constexpr int kInputZeroPoint = {int(inp['quantization'][1])};
// value = (y_int8 - kOutputZeroPoint) * kOutputScale; the output is {(metadata or {}).get('output', {}).get('kind', 'logits')}
constexpr float kOutputScale = {_c_float(out['quantization'][0])};
constexpr int kOutputZeroPoint = {int(out['quantization'][1])};
constexpr int kNumClasses = {len(class_names)};
extern const char* const kClassNames[kNumClasses];
// TFLM's measured plan ({budgets['arena_bytes']} bytes) plus {budgets['arena_margin']:.0%} for scratch buffers and alignment.
constexpr size_t kTensorArenaSize = {budgets['tensor_arena_size']};
}}  // namespace {name}

// Cortex-M budgets (attendnext_keras.deploy.cortex_m):
{cortex_m.format_part_budgets(budgets, prefix="// ")}
#endif  // {guard}_H_
"""


def _resolver_text(model_content, name, banner) -> str:
    ops = model_ops(model_content)
    guard = name.upper()
    registrations = "\n".join(f"  TF_LITE_ENSURE_STATUS(resolver.{resolver_method(op)}());" for op in ops)
    return f"""{banner}#ifndef {guard}_OP_RESOLVER_H_
#define {guard}_OP_RESOLVER_H_

#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"

namespace {name} {{
// The {len(ops)} builtin ops of the model: {", ".join(ops)}.
constexpr int kNumOps = {len(ops)};
using OpResolver = tflite::MicroMutableOpResolver<kNumOps>;

inline TfLiteStatus RegisterOps(OpResolver& resolver) {{
{registrations}
  return kTfLiteOk;
}}
}}  // namespace {name}

#endif  // {guard}_OP_RESOLVER_H_
"""

"""Cortex-M budgets and project layouts for a TensorFlow Lite Micro model written by `micro.write_c_sources`.

`part_budgets` says which common microcontroller parts a model fits and what each has left: the model data (the
.tflite array, its length and the class names, all `const`, so in flash) against the part's flash, and the tensor
arena (`kTensorArenaSize`) against its largest contiguous SRAM block (the arena is one static array).

`write_layout` adds an Arduino library or a CMake target around the generated sources (see tflite/README.md).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import textwrap

from attendnext_keras import __version__, _io
from attendnext_keras.deploy import litert

KIB = 1024
ARENA_ALIGNMENT = 16  # TFLM aligns arena buffers to 16 bytes; kTensorArenaSize is a multiple of it


@dataclasses.dataclass(frozen=True)
class Part:
    """A microcontroller's memory for a TFLM model: `flash` for the model data, `sram` the largest contiguous RAM
    block the tensor arena can take (bytes). `board` names a board that carries it."""

    name: str
    core: str
    flash: int
    sram: int
    board: str


# Figures from each part's datasheet (1 KB = 1024 bytes, as the datasheets count them).
PARTS = (
    # ST DS11451 (STM32L432KB/KC): 256 KB flash; 64 KB SRAM = SRAM1 48 KB + SRAM2 16 KB, one range from 0x20000000.
    Part("STM32L432KC", "Cortex-M4", 256 * KIB, 64 * KIB, "NUCLEO-L432KC"),
    # ST DS10693 (STM32F446xC/E): 512 KB flash; 128 KB SRAM = SRAM1 112 KB + SRAM2 16 KB, contiguous.
    Part("STM32F446RE", "Cortex-M4", 512 * KIB, 128 * KIB, "NUCLEO-F446RE"),
    # Nordic nRF52840 Product Specification: 1 MB flash, 256 KB RAM (the Arduino Mbed core's bootloader keeps 64 KB
    # of the flash: the IDE reports 983,040 bytes for sketches).
    Part("nRF52840", "Cortex-M4", 1024 * KIB, 256 * KIB, "Arduino Nano 33 BLE Sense"),
    # ST DS10916 (STM32F745xx/746xx): 1 MB flash; 320 KB SRAM = DTCM 64 KB + SRAM1 240 KB + SRAM2 16 KB, one range
    # from 0x20000000.
    Part("STM32F746NG", "Cortex-M7", 1024 * KIB, 320 * KIB, "32F746GDISCOVERY"),
    # ST DS12110 (STM32H742/743/753/750): 2 MB flash; 1 MB RAM in banks (DTCM 128 KB, AXI SRAM 512 KB, SRAM1-3
    # 288 KB, SRAM4 64 KB, ITCM 64 KB): the 512 KB AXI SRAM is the largest one an arena can take.
    Part("STM32H743ZI", "Cortex-M7", 2048 * KIB, 512 * KIB, "NUCLEO-H743ZI2"),
    # Arm Corstone-300 (SSE-300; MPS3 FPGA image AN552 and its FVP), as ARM-software/ml-embedded-evaluation-kit's
    # scripts/cmake/subsystem-profiles/corstone-sse-300.cmake sizes it: 2 MiB BRAM (code SRAM) for the program and
    # model; DTCM 4 x 128 KiB = 512 KiB for data. (The kit itself puts models in DDR and large arenas in its 2 x 2
    # MiB internal SRAM; this row is the tightly coupled budget.)
    Part("Corstone-300", "Cortex-M55", 2048 * KIB, 512 * KIB, "MPS3 AN552 / FVP"),
)

# TFLM allocations made only of pointers and 4-byte fields, recorded by name by its RecordingMicroAllocator: with
# 4-byte pointers (a 32-bit Cortex-M) they take half their 64-bit host size. TfLiteEvalTensor = {data*, dims*, type}:
# 24 -> 12 bytes; NodeAndRegistration = {TfLiteNode (6 pointers + an int), registration*}: 64 -> 32 bytes.
_HALVED_ON_32_BIT = ("TfLiteEvalTensor data", "NodeAndRegistration struct")


def tensor_arena_size(arena_bytes: int, arena_margin: float) -> int:
    """`kTensorArenaSize`: the measured arena plus `arena_margin`, rounded up to TFLM's 16-byte alignment."""
    return int(math.ceil(arena_bytes * (1 + arena_margin) / ARENA_ALIGNMENT) * ARENA_ALIGNMENT)


def model_data_bytes(tflite_bytes: int, class_names) -> int:
    """Flash that `<name>.cc` takes on a 32-bit target: the array, its 4-byte length, a 4-byte pointer per class
    name and the names' UTF-8 bytes with their terminating NUL (plus up to 15 bytes to align the array to 16)."""
    return tflite_bytes + 4 + sum(4 + len(str(name).encode("utf-8")) + 1 for name in class_names)


def arena_on_32_bit(arena_usage: dict | None) -> int | None:
    """An estimate of the arena on a 32-bit target from the host measurement (`MicroRunner.arena_usage`): the
    tensor and node structs halve; everything else is kept at its host size, so it is still an upper bound for the
    persistent part. None without the allocation records."""
    allocations = (arena_usage or {}).get("allocations") or {}
    if not all(key in allocations for key in _HALVED_ON_32_BIT):
        return None
    return arena_usage["total"] - sum(allocations[key]["bytes"] // 2 for key in _HALVED_ON_32_BIT)


def part_budgets(model_content: bytes, class_names, arena_bytes: int, arena_margin: float = 0.1,
                 arena_usage: dict | None = None, parts=PARTS) -> dict:
    """Which `parts` the model fits, as data (JSON-ready): the model's flash and SRAM needs, how they were
    measured, and per part its budgets, the bytes left (negative: short by) and whether it fits.

    `arena_bytes` is TFLM's arena measured on this host; `arena_usage` (`MicroRunner.arena_usage`, optional) adds
    its planned/persistent split and a 32-bit estimate.
    """
    flash = model_data_bytes(len(model_content), class_names)
    arena = tensor_arena_size(arena_bytes, arena_margin)
    rows = []
    for part in parts:
        short = [what for what, left in (("flash", part.flash - flash), ("arena", part.sram - arena)) if left < 0]
        rows.append({**dataclasses.asdict(part), "flash_left": part.flash - flash, "sram_left": part.sram - arena,
                     "fits": not short, "short_of": short})
    usage = arena_usage or {}
    return {"tflite_bytes": len(model_content), "weight_bytes": int(litert.weight_bytes(model_content)),
            "model_data_bytes": flash, "arena_bytes": int(arena_bytes), "arena_margin": float(arena_margin),
            "tensor_arena_size": arena, "arena_planned": usage.get("planned"),
            "arena_persistent": usage.get("persistent"), "arena_32_bit_estimate": arena_on_32_bit(arena_usage),
            "measured_on": "the tflite-micro interpreter (TFLM's reference kernels) on a 64-bit host",
            "parts": rows}


def _kib(value: int, sign: bool = False) -> str:
    return f"{value / KIB:{'+' if sign else ''}.1f} KiB"


def _arena_text(budgets: dict) -> str:
    arena, margin = budgets["arena_bytes"], budgets["arena_margin"]
    text = (f"SRAM: kTensorArenaSize {budgets['tensor_arena_size']:,} bytes = {arena:,} measured + {margin:.0%}. "
            f"Measured with {budgets['measured_on']}")
    if budgets["arena_persistent"] is not None:
        text += (f": {budgets['arena_planned']:,} planned (activations, scratch) + {budgets['arena_persistent']:,} "
                 f"persistent (per-tensor and per-op structs, kernel data)")
    estimate = budgets["arena_32_bit_estimate"]
    text += (". On a 32-bit Cortex-M pointers take 4 bytes, not 8: the persistent structs shrink, so the host "
             "figure is an upper bound for them"
             + (f" (about {estimate:,} bytes there: tensor and node structs halved, the rest kept)" if estimate else "")
             + f". The {margin:.0%} margin is for scratch buffers that optimized kernels (CMSIS-NN) request and the "
               f"host's reference kernels do not; arena_used_bytes() after AllocateTensors() gives the target's "
               f"figure.")
    return text


def format_part_budgets(budgets: dict, prefix: str = "") -> str:
    """`part_budgets` as text (printable ASCII; `prefix="// "` makes it a C comment)."""
    wrap = functools.partial(textwrap.wrap, width=112, subsequent_indent="  ")
    lines = [*wrap(f"Flash: model data {budgets['model_data_bytes']:,} bytes = flatbuffer {budgets['tflite_bytes']:,} "
                   f"(weights {budgets['weight_bytes']:,}) + length and class names."),
             *wrap(_arena_text(budgets)),
             *wrap("Parts: flash for the model data, the largest contiguous SRAM block for the arena; what is left "
                   "must also hold the TFLM runtime and kernels, the application, stack and heap (not counted here)."),
             f"  {'part':<13} {'core':<11} {'board':<26} {'flash':>10} {'left':>11} {'SRAM':>10} {'left':>11}  fits"]
    for row in budgets["parts"]:
        verdict = "yes" if row["fits"] else "no: " + " and ".join(row["short_of"])
        lines.append(f"  {row['name']:<13} {row['core']:<11} {row['board']:<26} {_kib(row['flash']):>10} "
                     f"{_kib(row['flash_left'], True):>11} {_kib(row['sram']):>10} {_kib(row['sram_left'], True):>11}"
                     f"  {verdict}")
    return "\n".join((prefix + line).rstrip() for line in lines) + "\n"


# ---------------------------------------------------------------------------------------------------------------
# Project layouts around the generated sources.

LAYOUTS = ("arduino", "cmake")

_LIBRARY_PROPERTIES = """name={name}
version={version}
author=attendnext_keras
maintainer=attendnext_keras
sentence=The int8 AttendNeXt model {name} for TensorFlow Lite Micro.
paragraph=The .tflite flatbuffer as a 16-byte aligned const array, its input and output quantization, class names, tensor arena size and op resolver. Needs TensorFlow Lite Micro's Arduino library (Arduino_TensorFlowLite, github.com/tensorflow/tflite-micro-arduino-examples).
category=Data Processing
architectures=*
includes={name}.h
"""

_SKETCH = """// Classifies images with {name} on TensorFlow Lite Micro. Generated by attendnext_keras {version}.
// Needs TFLM's Arduino library (github.com/tensorflow/tflite-micro-arduino-examples) and this library.
#include <TensorFlowLite.h>

#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_log.h"
#include "tensorflow/lite/micro/system_setup.h"
#include "tensorflow/lite/schema/schema_generated.h"

#include <{name}.h>
#include <{name}_op_resolver.h>

namespace {{
constexpr int kPixels = {name}::kInputHeight * {name}::kInputWidth * {name}::kInputChannels;
alignas(16) uint8_t tensor_arena[{name}::kTensorArenaSize];
{name}::OpResolver resolver;
tflite::MicroInterpreter* interpreter = nullptr;
}}  // namespace

// The functions are static, not in the namespace: the Arduino builder declares a sketch's functions at its top.

// Writes one RGB image (0-255, resized and center-cropped to kInputHeight x kInputWidth as in
// attendnext_keras.preprocessing) into `rgb`, kPixels bytes. Replace with your camera; returns false when none.
static bool ReadImage(uint8_t* rgb) {{
  for (int i = 0; i < kPixels; ++i) rgb[i] = 128;  // placeholder: a grey image
  return true;
}}

// x_int8 = round(pixel / kInputScale) + kInputZeroPoint, in place (the pixels were written into the input tensor).
static void QuantizeInPlace(int8_t* input) {{
  const uint8_t* rgb = reinterpret_cast<const uint8_t*>(input);
  for (int i = 0; i < kPixels; ++i) {{
    int value = static_cast<int>(lroundf(rgb[i] / {name}::kInputScale)) + {name}::kInputZeroPoint;
    input[i] = static_cast<int8_t>(value < -128 ? -128 : (value > 127 ? 127 : value));
  }}
}}

void setup() {{
  tflite::InitializeTarget();
  const tflite::Model* model = tflite::GetModel(g_{name});
  if (model->version() != TFLITE_SCHEMA_VERSION || {name}::RegisterOps(resolver) != kTfLiteOk) {{
    MicroPrintf("{name}: schema version or op registration failed");
    return;
  }}
  static tflite::MicroInterpreter static_interpreter(model, resolver, tensor_arena, sizeof(tensor_arena));
  if (static_interpreter.AllocateTensors() != kTfLiteOk) {{
    MicroPrintf("{name}: AllocateTensors failed: raise kTensorArenaSize");
    return;
  }}
  interpreter = &static_interpreter;
  MicroPrintf("{name}: arena used %d of %d bytes", static_cast<int>(interpreter->arena_used_bytes()),
              static_cast<int>(sizeof(tensor_arena)));
}}

void loop() {{
  if (interpreter == nullptr) return;
  int8_t* input = interpreter->input(0)->data.int8;
  if (!ReadImage(reinterpret_cast<uint8_t*>(input))) return;
  QuantizeInPlace(input);
  if (interpreter->Invoke() != kTfLiteOk) {{
    MicroPrintf("{name}: Invoke failed");
    return;
  }}
  const int8_t* logits = interpreter->output(0)->data.int8;  // the arg-max needs no softmax
  int best = 0;
  for (int i = 1; i < {name}::kNumClasses; ++i) {{
    if (logits[i] > logits[best]) best = i;
  }}
  MicroPrintf("%s", {name}::kClassNames[best]);
  delay(1000);
}}
"""

_CMAKE = """# Generated by attendnext_keras {version}: the model {name} as a library target for a TensorFlow Lite Micro
# application. In the application's CMakeLists.txt:
#
#   set(TFLM_DIR /path/to/tflm_tree)     # TFLM sources, e.g. from tflite-micro's
#                                        # tensorflow/lite/micro/tools/project_generation/create_tflm_tree.py
#   add_subdirectory(path/to/this/folder {name})
#   target_link_libraries(app PRIVATE {name})   # and the application's TFLM library target
#
# The target compiles {name}.cc (it needs only <cstddef>) and puts this folder and TFLM_DIR's headers
# (tensorflow/lite/micro, flatbuffers, gemmlowp, ruy: for {name}_op_resolver.h) on its users' include path.
cmake_minimum_required(VERSION 3.16)

if(NOT DEFINED TFLM_DIR)  # a plain set() in the parent or -DTFLM_DIR=... wins
  set(TFLM_DIR "" CACHE PATH "TensorFlow Lite Micro source tree: the folder that holds tensorflow/lite/micro")
endif()

add_library({name} STATIC {name}.cc)
target_include_directories({name} PUBLIC ${{CMAKE_CURRENT_SOURCE_DIR}})
target_compile_features({name} PUBLIC cxx_std_17)
if(TFLM_DIR)
  target_include_directories({name} PUBLIC ${{TFLM_DIR}} ${{TFLM_DIR}}/third_party/flatbuffers/include
                             ${{TFLM_DIR}}/third_party/gemmlowp ${{TFLM_DIR}}/third_party/ruy)
endif()
"""


def _read(path) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _write_arduino(c_paths: dict, folder: str, name: str) -> dict:
    """An Arduino library `arduino/<name>/`: library.properties, src/ (the sources; .cpp, which every Arduino
    core compiles) and examples/<name>/<name>.ino."""
    root = os.path.join(folder, "arduino", name)
    src, example = os.path.join(root, "src"), os.path.join(root, "examples", name)
    for path in (src, example):
        os.makedirs(path, exist_ok=True)
    paths = {"library_properties": os.path.join(root, "library.properties"),
             "arduino_header": os.path.join(src, f"{name}.h"), "arduino_source": os.path.join(src, f"{name}.cpp"),
             "arduino_op_resolver": os.path.join(src, f"{name}_op_resolver.h"),
             "sketch": os.path.join(example, f"{name}.ino")}
    texts = {"library_properties": _LIBRARY_PROPERTIES.format(name=name, version=__version__),
             "arduino_header": _read(c_paths["header"]), "arduino_source": _read(c_paths["source"]),
             "arduino_op_resolver": _read(c_paths["op_resolver"]),
             "sketch": _SKETCH.format(name=name, version=__version__)}
    for kind, path in paths.items():
        _io.write_atomic(path, texts[kind])
    return paths


def write_layout(layout: str, c_paths: dict, name: str) -> dict:
    """Writes `layout` ("arduino" or "cmake") beside the C sources `c_paths` (`write_c_sources`' result for
    `name`). Returns {kind: path}."""
    if layout not in LAYOUTS:
        raise ValueError(f"`layout` must be one of {', '.join(LAYOUTS)}. Received: layout={layout!r}")
    folder = os.path.dirname(c_paths["source"])
    if layout == "arduino":
        return _write_arduino(c_paths, folder, name)
    path = os.path.join(folder, "CMakeLists.txt")
    _io.write_atomic(path, _CMAKE.format(name=name, version=__version__))
    return {"cmake": path}

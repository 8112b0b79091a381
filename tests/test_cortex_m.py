"""Cortex-M budgets and layouts (attendnext_keras.deploy.cortex_m): the part table, the 32-bit arena estimate, the
model data compiled for Cortex-M4/M7/M55 with the Arm embedded toolchain (its .rodata against the .tflite size), and
the Arduino library and CMake target written around the C sources.

The model is a tiny int8 network (conversion takes seconds): budgets and layouts do not depend on what it computes.
No TFLM sources exist here, so the sketch is compiled against stand-in TFLM/Arduino headers (the API shape only) and
the CMake target builds the model library alone.
"""

import json
import os
import re
import shutil
import subprocess

import keras
import numpy as np
import pytest

from attendnext_keras.cli import main
from attendnext_keras.deploy import cortex_m
from attendnext_keras.deploy.conversion import to_tflite
from attendnext_keras.deploy.micro import MicroRunner, model_ops, resolver_method, write_c_sources

NAMES = ["daisy", 'say "cheese"', "rosé ✿", "back\\slash", "tulips"]  # UTF-8 and escapes: their bytes count
ARM_GXX = shutil.which("arm-none-eabi-g++")
needs_arm = pytest.mark.skipif(ARM_GXX is None or shutil.which("arm-none-eabi-size") is None,
                               reason="no Arm embedded toolchain (apt-get install gcc-arm-none-eabi "
                                      "libstdc++-arm-none-eabi-dev)")
ARM_CPUS = ["cortex-m4", "cortex-m7", "cortex-m55"]


@pytest.fixture(scope="module")
def blob():
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu")(inputs)
    x = keras.layers.DepthwiseConv2D(3)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(len(NAMES))(x))
    images = np.random.default_rng(0).uniform(0, 255, (8, 32, 32, 3)).astype(np.float32)
    return to_tflite(model, "int8-ptq", representative_data=[images], calibration_steps=8)


@pytest.fixture(scope="module")
def usage(blob):
    return MicroRunner(blob).arena_usage


def _sources(blob, folder, usage, layout=None, name="tiny"):
    metadata = {"model_name": "tiny", "mode": "int8", "class_names": NAMES}
    return write_c_sources(blob, folder, name, metadata=metadata, arena_bytes=usage["total"], arena_usage=usage,
                           layout=layout)


def test_part_table_names_real_parts_for_m4_m7_m55():
    parts = {part.name: part for part in cortex_m.PARTS}
    assert {part.core for part in parts.values()} == {"Cortex-M4", "Cortex-M7", "Cortex-M55"}
    assert (parts["STM32L432KC"].flash, parts["STM32L432KC"].sram) == (256 * 1024, 64 * 1024)
    assert (parts["STM32F746NG"].flash, parts["STM32F746NG"].sram) == (1024 * 1024, 320 * 1024)
    assert (parts["Corstone-300"].flash, parts["Corstone-300"].sram) == (2048 * 1024, 512 * 1024)
    source = open(cortex_m.__file__, encoding="utf-8").read()
    for name in parts:  # each figure has its source in a comment above its row
        assert re.search(rf"#[^\n]*\n(#[^\n]*\n)*\s*Part\(\"{name}\"", source), name


def test_budgets_give_the_headroom_and_what_is_short(blob, usage):
    small = cortex_m.Part("Tiny-M0", "Cortex-M0+", 2 * 1024, 1024, "none")
    budgets = cortex_m.part_budgets(blob, NAMES, 50_000, 0.1, usage, parts=(*cortex_m.PARTS, small))
    json.dumps(budgets)  # data for JSON as it is
    strings = sum(len(n.encode("utf-8")) + 1 for n in NAMES)
    assert budgets["model_data_bytes"] == len(blob) + 4 + 4 * len(NAMES) + strings
    assert budgets["tflite_bytes"] == len(blob) and 0 < budgets["weight_bytes"] < len(blob)
    assert budgets["tensor_arena_size"] == 55008  # 50,000 + 10 %, rounded up to 16
    rows = {row["name"]: row for row in budgets["parts"]}
    f746 = rows["STM32F746NG"]
    assert f746["flash_left"] == 1024 * 1024 - budgets["model_data_bytes"] and f746["sram_left"] == 320 * 1024 - 55008
    assert f746["fits"] and f746["short_of"] == []
    assert rows["STM32L432KC"]["fits"] is True  # 55 KB arena in 64 KB
    assert rows["Tiny-M0"]["fits"] is False and rows["Tiny-M0"]["short_of"] == ["flash", "arena"]
    text = cortex_m.format_part_budgets(budgets)
    assert text.isascii() and "no: flash and arena" in text and "64-bit host" in text and "upper bound" in text
    assert all(name in text for name in rows)


def test_arena_on_32_bit_halves_the_tensor_and_node_structs(usage):
    """On this 64-bit host TfLiteEvalTensor takes 24 bytes and NodeAndRegistration 64: structs of pointers and
    4-byte fields, 12 and 32 bytes with a Cortex-M's 4-byte pointers. The rest of the arena is kept."""
    records = usage["allocations"]
    tensors, nodes = records["TfLiteEvalTensor data"], records["NodeAndRegistration struct"]
    assert tensors["bytes"] == 24 * tensors["count"] and nodes["bytes"] == 64 * nodes["count"]
    estimate = cortex_m.arena_on_32_bit(usage)
    assert estimate == usage["total"] - 12 * tensors["count"] - 32 * nodes["count"]
    assert usage["planned"] < estimate < usage["total"]
    assert cortex_m.arena_on_32_bit({"total": 1000}) is None


def test_the_header_records_the_budgets(blob, usage, tmp_path):
    header = open(_sources(blob, tmp_path, usage)["header"]).read()
    comment = header[header.index("// Cortex-M budgets"):header.index("#endif")]
    assert all(line.startswith("//") for line in comment.strip().splitlines())
    assert comment.isascii() and not re.search(r"\\$|\?\?", comment, re.M)  # no line splice or trigraph
    assert "STM32F746NG" in comment and "Corstone-300" in comment and "Cortex-M55" in comment
    assert f"= {usage['total']:,} measured + 10%" in comment and "64-bit host" in comment


def _arm_sizes(obj):
    sizes = subprocess.run(["arm-none-eabi-size", "-A", str(obj)], capture_output=True, text=True, check=True).stdout
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\.\S+)\s+(\d+)", sizes, re.M)}


@needs_arm
@pytest.mark.parametrize("cpu", ARM_CPUS)
def test_model_data_compiles_for_cortex_m_and_its_rodata_is_the_tflite(blob, usage, tmp_path, cpu):
    """arm-none-eabi-g++ -mcpu=<cpu> -mthumb -std=c++17 -Os: the header (with only <cstddef>) and the source compile
    without warnings; .rodata holds the .tflite, its length and the class-name pointers, .rodata.str the names."""
    paths = _sources(blob, tmp_path, usage)
    main_cc = tmp_path / "use.cc"
    main_cc.write_text('#include "tiny.h"\nstatic_assert(tiny::kTensorArenaSize % 16 == 0, "");\n'
                       "int first() { return g_tiny[0] + tiny::kNumClasses + tiny::kClassNames[0][0]; }\n")
    flags = [f"-mcpu={cpu}", "-mthumb", "-std=c++17", "-Os", "-Wall", "-Wextra", "-Werror", "-c", "-I", str(tmp_path)]
    for source in (paths["source"], main_cc):
        subprocess.run([ARM_GXX, *flags, str(source), "-o", f"{source}.o"], check=True, capture_output=True)
    sections = _arm_sizes(f"{paths['source']}.o")
    assert sections.get(".text", 0) == 0 and sections.get(".data", 0) == 0 and sections.get(".bss", 0) == 0
    rodata = sum(size for section, size in sections.items() if section.startswith(".rodata"))
    strings = sum(size for section, size in sections.items() if section.startswith(".rodata.str"))
    assert strings == sum(len(n.encode("utf-8")) + 1 for n in NAMES)
    expected = cortex_m.model_data_bytes(len(blob), NAMES)
    assert expected <= rodata < expected + 16  # + the padding that aligns the array to 16
    symbols = subprocess.run(["arm-none-eabi-nm", "-S", f"{paths['source']}.o"], capture_output=True, text=True,
                             check=True).stdout
    address, size = re.search(r"^([0-9a-f]+) ([0-9a-f]+) R g_tiny$", symbols, re.M).groups()
    assert int(size, 16) == len(blob) and int(address, 16) % 16 == 0


def test_arduino_library_layout(blob, usage, tmp_path):
    paths = _sources(blob, tmp_path, usage, layout="arduino")
    root = tmp_path / "arduino" / "tiny"
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert files == ["examples/tiny/tiny.ino", "library.properties", "src/tiny.cpp", "src/tiny.h",
                     "src/tiny_op_resolver.h"]
    assert set(paths.values()) >= {str(root / f) for f in files}
    properties = dict(line.split("=", 1) for line in (root / "library.properties").read_text().splitlines())
    assert properties["name"] == "tiny" and properties["includes"] == "tiny.h" and properties["architectures"] == "*"
    assert re.fullmatch(r"\d+\.\d+\.\d+", properties["version"])
    assert {"author", "maintainer", "sentence", "paragraph", "category"} <= set(properties)
    for generated, copied in (("tiny.cc", "src/tiny.cpp"), ("tiny.h", "src/tiny.h"),
                              ("tiny_op_resolver.h", "src/tiny_op_resolver.h")):
        assert (tmp_path / generated).read_bytes() == (root / copied).read_bytes()
    sketch = (root / "examples" / "tiny" / "tiny.ino").read_text()
    for needed in ("#include <TensorFlowLite.h>", "#include <tiny.h>", "#include <tiny_op_resolver.h>",
                   "tensor_arena[tiny::kTensorArenaSize]", "tiny::OpResolver resolver", "tiny::RegisterOps(resolver)",
                   "tflite::GetModel(g_tiny)", "tiny::kInputScale", "tiny::kInputZeroPoint", "AllocateTensors()",
                   "Invoke()", "tiny::kClassNames[best]", "void setup()", "void loop()"):
        assert needed in sketch, needed
    assert "{name}" not in sketch and "{{" not in sketch


# Stand-ins for the TFLM and Arduino headers the sketch includes: the API shape it uses, nothing more.
_STUBS = {
    "Arduino.h": "#include <stdint.h>\nlong lroundf(float);\nvoid delay(unsigned long);\n",
    "TensorFlowLite.h": "",
    "tensorflow/lite/micro/micro_log.h": "void MicroPrintf(const char*, ...);\n",
    "tensorflow/lite/micro/system_setup.h": "namespace tflite { void InitializeTarget(); }\n",
    "tensorflow/lite/schema/schema_generated.h": "#define TFLITE_SCHEMA_VERSION 3\n",
    "tensorflow/lite/micro/micro_interpreter.h":
        "#include <stddef.h>\n#include <stdint.h>\n#include \"tensorflow/lite/micro/micro_mutable_op_resolver.h\"\n"
        "struct TfLiteTensor { union { int8_t* int8; uint8_t* uint8; } data; };\n"
        "namespace tflite {\nstruct Model { int version() const; };\nconst Model* GetModel(const void*);\n"
        "class MicroInterpreter { public:\n  template <typename R> MicroInterpreter(const Model*, R&, uint8_t*, "
        "size_t);\n  TfLiteStatus AllocateTensors(); TfLiteStatus Invoke(); size_t arena_used_bytes() const;\n"
        "  TfLiteTensor* input(size_t); TfLiteTensor* output(size_t);\n};\n}  // namespace tflite\n",
}


@pytest.mark.skipif(ARM_GXX is None, reason="no Arm embedded toolchain")
def test_the_sketch_compiles_against_the_tflm_api_shape(blob, usage, tmp_path):
    _sources(blob, tmp_path, usage, layout="arduino")
    stubs = tmp_path / "stubs"
    methods = "".join(f"  TfLiteStatus {resolver_method(op)}();\n" for op in model_ops(blob))
    resolver = ("#pragma once\ntypedef enum { kTfLiteOk = 0, kTfLiteError = 1 } TfLiteStatus;\n"
                "#define TF_LITE_ENSURE_STATUS(a) do { if ((a) != kTfLiteOk) return kTfLiteError; } while (0)\n"
                "namespace tflite {\ntemplate <unsigned N> class MicroMutableOpResolver { public:\n"
                f"{methods}}};\n}}\n")
    for path, text in {**_STUBS, "tensorflow/lite/micro/micro_mutable_op_resolver.h": resolver}.items():
        (stubs / path).parent.mkdir(parents=True, exist_ok=True)
        (stubs / path).write_text(text)
    sketch = tmp_path / "arduino" / "tiny" / "examples" / "tiny" / "tiny.ino"
    subprocess.run([ARM_GXX, "-mcpu=cortex-m4", "-mthumb", "-std=c++17", "-ffreestanding", "-Wall", "-Werror",
                    "-fsyntax-only", "-x", "c++", "-include", "Arduino.h", "-I", str(stubs),
                    "-I", str(tmp_path / "arduino" / "tiny" / "src"), str(sketch)], check=True, capture_output=True)


def test_cmake_layout(blob, usage, tmp_path):
    paths = _sources(blob, tmp_path, usage, layout="cmake")
    assert paths["cmake"] == str(tmp_path / "CMakeLists.txt")
    text = (tmp_path / "CMakeLists.txt").read_text()
    assert "add_library(tiny STATIC tiny.cc)" in text and "target_compile_features(tiny PUBLIC cxx_std_17)" in text
    assert "add_subdirectory(path/to/this/folder tiny)" in text and "target_link_libraries(app PRIVATE tiny)" in text
    assert "TFLM_DIR" in text and "{name}" not in text
    assert sorted(os.listdir(tmp_path)) == ["CMakeLists.txt", "tiny.cc", "tiny.h", "tiny_op_resolver.h"]


@needs_arm
@pytest.mark.skipif(shutil.which("cmake") is None or shutil.which("make") is None, reason="no cmake or make")
def test_the_cmake_target_builds_for_cortex_m(blob, usage, tmp_path):
    """An application adds the folder with add_subdirectory and links the target; built for a Cortex-M7."""
    model = tmp_path / "model"
    model.mkdir()
    _sources(blob, model, usage, layout="cmake")
    app = tmp_path / "app"
    app.mkdir()
    (app / "app.cc").write_text('#include "tiny.h"\nint first() { return g_tiny[0] + tiny::kNumClasses; }\n')
    (app / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.16)\nproject(app CXX)\nset(TFLM_DIR /opt/tflm)\n"
        f"add_subdirectory({model} tiny)\nadd_library(app STATIC app.cc)\ntarget_link_libraries(app PRIVATE tiny)\n"
        "get_target_property(dirs tiny INTERFACE_INCLUDE_DIRECTORIES)\nmessage(STATUS \"tiny includes: ${dirs}\")\n")
    configure = subprocess.run(["cmake", "-S", str(app), "-B", str(app / "build"), "-G", "Unix Makefiles",
                                "-DCMAKE_SYSTEM_NAME=Generic", f"-DCMAKE_CXX_COMPILER={ARM_GXX}",
                                "-DCMAKE_TRY_COMPILE_TARGET_TYPE=STATIC_LIBRARY", "-DCMAKE_BUILD_TYPE=MinSizeRel",
                                "-DCMAKE_CXX_FLAGS=-mcpu=cortex-m7 -mthumb"], capture_output=True, text=True)
    assert configure.returncode == 0, configure.stderr[-2000:]
    assert f"tiny includes: {model};/opt/tflm;/opt/tflm/third_party/flatbuffers/include" in configure.stdout
    build = subprocess.run(["cmake", "--build", str(app / "build")], capture_output=True, text=True)
    assert build.returncode == 0, build.stdout[-2000:]
    assert (app / "build" / "tiny" / "libtiny.a").exists() and (app / "build" / "libapp.a").exists()


def test_cli_micro_prints_the_parts_and_writes_a_layout(blob, tmp_path, capsys):
    model = tmp_path / "tiny.tflite"
    model.write_bytes(blob)
    out = tmp_path / "out"
    assert main(["micro", "--model", str(model), "--images", "2", "--out-dir", str(out), "--name", "tiny",
                 "--layout", "cmake"]) == 0
    printed = capsys.readouterr().out
    assert "Flash: model data" in printed and "kTensorArenaSize" in printed and "64-bit host" in printed
    assert re.search(r"STM32F746NG\s+Cortex-M7\s+32F746GDISCOVERY\s+1024\.0 KiB\s+\+\d", printed)
    assert sorted(os.listdir(out)) == ["CMakeLists.txt", "tiny.cc", "tiny.h", "tiny_op_resolver.h"]


def test_bad_layouts_are_refused_before_writing(blob, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["micro", "--model", "m.tflite", "--layout", "zephyr"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "argument --layout: invalid choice: 'zephyr'" in err.strip().splitlines()[-1] and "Traceback" not in err
    with pytest.raises(ValueError, match="`layout` must be one of arduino, cmake"):
        write_c_sources(blob, tmp_path, "tiny", arena_bytes=1000, layout="zephyr")
    assert list(tmp_path.iterdir()) == []
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert main(["micro", "--model", "m.tflite", "--out-dir", str(afile), "--layout", "arduino"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "is a file, not a folder" in err

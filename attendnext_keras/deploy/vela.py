"""Arm Ethos-U microNPUs (U55, U65, U85) through Vela, Arm's compiler (`pip install "attendnext_keras[vela]"`).

    npu_model = vela.for_target(model, "ethos-u55-128")      # DC-AC upsampling as RESIZE_NEAREST_NEIGHBOR
    blob = conversion.to_tflite(npu_model, "int8-ptq", representative_data=images)
    report = vela.compile_for_npu(blob, "ethos-u55-128", model=npu_model)
    print(report.summary())                                  # NPU/CPU ops, SRAM, flash, estimated ms
    report.compiled                                          # the .tflite TFLite Micro's Ethos-U driver runs

or all in one, files written: `attendnext_keras.export(model, "model.tflite", "int8", target="ethos-u55-128")`.

What runs fast differs by target: XNNPACK keeps nearest ×2 upsampling only as CONCATENATION + DEPTH_TO_SPACE, while
the Ethos-U NPUs run RESIZE_NEAREST_NEIGHBOR and leave DEPTH_TO_SPACE to the CPU (each CPU op splits the NPU graph
and moves tensors between them). `for_target` rebuilds a model with the target's lowering (same maths, same weights).

Vela's figures are estimates of the NPU part at its default system configuration, not measurements: cycles and time
at the configuration's NPU clock (500 MHz for Ethos_U55_High_End_Embedded), SRAM and flash (or DRAM) use. Vela runs
in a child process: its compiler core is C++, prints through C stdio, and an abort there must not take the caller
with it.
"""

from __future__ import annotations

import collections
import contextlib
import csv
import dataclasses
import glob
import importlib
import os
import subprocess
import sys
import tempfile

from attendnext_keras import _io, _keras
from attendnext_keras.config import FULLY_INT8_MODES
from attendnext_keras.deploy import litert
from attendnext_keras.deploy.report import OpIssue, _listing, _tensor_layer
from attendnext_keras.layers.upsample import LOWERINGS

ETHOS_U = ("ethos-u55-32", "ethos-u55-64", "ethos-u55-128", "ethos-u55-256", "ethos-u65-256", "ethos-u65-512",
           "ethos-u85-128", "ethos-u85-256", "ethos-u85-512", "ethos-u85-1024", "ethos-u85-2048")
"""Vela's accelerator configurations (ethos-u-vela 5.2): NPU and MACs per cycle."""
TARGETS = ("xnnpack",) + ETHOS_U
"""What `export(target=)` and `attendnext export --target` take: LiteRT's CPU delegate (the default) or an NPU."""
LOWERING = {"xnnpack": "depth_to_space", **{name: "resize" for name in ETHOS_U}}
"""NearestUpsample2D's lowering per target: none of Vela's targets runs DEPTH_TO_SPACE; all run the resize."""
INSTALL = 'pip install "attendnext_keras[vela]"'
CONDENSERS = ("DoubleCondensingAttentionCondenser", "AttentionCondenser")
CYCLE_PARTS = ("npu", "sram_access", "dram_access", "on_chip_flash_access", "off_chip_flash_access")
PER_LAYER_PARTS = {"npu": "NPU", "sram_access": "SRAM AC", "dram_access": "DRAM AC",
                   "on_chip_flash_access": "OnFlash AC", "off_chip_flash_access": "OffFlash AC"}
"""Vela's per-layer columns: an op's cycles are the largest of its compute and memory-access cycles."""


@dataclasses.dataclass
class VelaReport:
    """What Vela made of an int8 `.tflite` for one Ethos-U configuration (estimates of the NPU part)."""

    accelerator: str
    system_config: str  # Vela's system configuration (clocks, memories), e.g. Ethos_U55_High_End_Embedded
    memory_mode: str  # e.g. Shared_Sram
    clock_mhz: float  # the NPU clock the cycle estimates are converted at
    npu_ops: dict  # {TFLite op: count} of the input model's ops that run on the NPU
    cpu_ops: list  # [OpIssue]: ops left to the CPU (TFLite Micro's kernels), named by Keras layer when known
    npu_partitions: int  # "ethos-u" custom ops in the compiled model: CPU ops split the NPU graph
    sram_bytes: int
    dram_bytes: int
    on_chip_flash_bytes: int
    off_chip_flash_bytes: int
    cycles: int  # estimated NPU cycles per inference (memory accesses included)
    inference_ms: float  # cycles at clock_mhz
    cycles_breakdown: dict  # {"npu", "sram_access", "dram_access", "on_chip_flash_access", "off_chip_flash_access"}
    weights_area: str  # where the weights live, e.g. "Off-chip Flash" (U55 embedded) or "DRAM" (U65 client-server)
    feature_map_area: str  # where the activations live, e.g. "SRAM"
    macs: int
    vela_version: str
    compiled_bytes: int
    per_layer: list | None = None  # [{"layer", "op", "cycles", "macs", "bound_by", ...}] on request (_per_layer)
    compiled: bytes = dataclasses.field(default=b"", repr=False)  # the Vela-compiled flatbuffer

    @property
    def flash_bytes(self) -> int:
        return self.on_chip_flash_bytes + self.off_chip_flash_bytes

    def problems(self) -> list[str]:
        if not self.cpu_ops:
            return []
        return [f"{len(self.cpu_ops)} op(s) fall back to the CPU on {self.accelerator} (each splits the NPU graph): "
                f"{_listing(self.cpu_ops)}"]

    def summary(self) -> str:
        npu = sum(self.npu_ops.values())
        return "\n".join([
            f"Vela {self.vela_version}, {self.accelerator} ({self.system_config}, {self.memory_mode}): "
            f"{npu} of {npu + len(self.cpu_ops)} ops on the NPU in {self.npu_partitions} part(s), "
            f"{len(self.cpu_ops)} on the CPU; compiled file {self.compiled_bytes / 1024:.1f} KiB",
            f"estimated {self.inference_ms:.3f} ms ({self.cycles:,} cycles at {self.clock_mhz:g} MHz); "
            f"SRAM {self.sram_bytes / 1024:.1f} KiB, DRAM {self.dram_bytes / 1024:.1f} KiB, flash "
            f"{self.on_chip_flash_bytes / 1024:.1f} KiB on-chip + {self.off_chip_flash_bytes / 1024:.1f} KiB off-chip "
            f"(weights in {self.weights_area}, activations in {self.feature_map_area})",
        ])

    def as_dict(self) -> dict:
        """Every figure (JSON-ready), without the compiled flatbuffer."""
        result = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "compiled"}
        result["cpu_ops"] = [dataclasses.asdict(issue) for issue in self.cpu_ops]
        result["flash_bytes"] = self.flash_bytes
        result["problems"] = self.problems()
        return result

    def cycles_by_layer(self) -> dict:
        """{Keras layer (or Vela's tensor name): estimated cycles}, largest first (needs per_layer=True)."""
        if self.per_layer is None:
            raise ValueError("This report has no per-layer estimates: compile with per_layer=True.")
        totals = collections.Counter()
        for row in self.per_layer:
            totals[row["layer"]] += row["cycles"]
        return dict(totals.most_common())


# --------------------------------------------------------------------------------------------------------------------
# Targets


def check_target(target) -> str:
    """The target's name ("xnnpack" for None); an unknown one is a one-line error listing the known ones."""
    if target is None:
        return "xnnpack"
    if target not in TARGETS:
        raise ValueError(f"Unknown target {target!r}. Known targets: {', '.join(TARGETS)}.")
    return target


def is_npu(target) -> bool:
    return check_target(target) in ETHOS_U


def check_request(target, mode) -> bool:
    """Whether `target` is an NPU. An unknown target, a float mode for an NPU or a missing Vela is a one-line error,
    raised in milliseconds (before a conversion that takes minutes)."""
    if not is_npu(target):
        return False
    if mode not in FULLY_INT8_MODES:
        raise ValueError(f"Ethos-U NPUs run int8 models: use mode 'int8' (a QAT model) or 'int8-ptq' with target "
                         f"{target!r}. Received: mode={mode!r}")
    require_vela()
    return True


def require_vela() -> str:
    """Vela's version; a one-line error with the install command when it is missing."""
    try:
        # Deferred: an optional dependency, needed only for Ethos-U targets (this imports just its version).
        module = importlib.import_module("ethosu.vela")
    except ImportError:
        raise RuntimeError(f"Arm Ethos-U targets need Vela (ethos-u-vela), which is not installed: {INSTALL}") from None
    return str(module.__version__)


def for_target(model, target=None):
    """`model` rebuilt with `target`'s lowering of nearest upsampling (NearestUpsample2D layers and the condenser
    layers' expansion) and its weights copied by layer name: the same outputs. A model that already has the target's
    lowering (or has none to change, such as MobileNet) is returned as it is. Keras 3, tf-keras and QAT models."""
    lowering = LOWERING[check_target(target)]
    if not _relower(model.get_config(), lowering):
        return model
    rebuilt = _clone(model, lowering)
    _keras.copy_weights(model, rebuilt)
    return rebuilt


def _relower(node, lowering) -> int:
    """Sets `lowering` in every NearestUpsample2D (and condenser) config under `node`; returns how many changed."""
    if isinstance(node, list):
        return sum(_relower(item, lowering) for item in node)
    if not isinstance(node, dict):
        return 0
    changed = 0
    inner = node.get("config")
    name = str(node.get("class_name", "")).split(">")[-1]  # tf-keras may write "attendnext_keras>NearestUpsample2D"
    if isinstance(inner, dict) and name == "NearestUpsample2D" and inner.get("lowering", LOWERINGS[0]) != lowering:
        inner["lowering"] = lowering
        changed += 1
    if isinstance(inner, dict) and name in CONDENSERS and inner.get("expansion") in LOWERINGS \
            and inner["expansion"] != lowering:
        inner["expansion"] = lowering
        changed += 1
    return changed + sum(_relower(value, lowering) for value in node.values())


def _clone(model, lowering):
    """clone_model with every layer made from its relowered config. (Model.from_config of a whole QAT model builds
    tfmot's QuantizeLayer twice, with two extra variables; cloning layer by layer does not.)"""
    flavour = _keras.flavour_of(model)

    def clone(layer):
        config = layer.get_config()
        _relower({"class_name": type(layer).__name__, "config": config}, lowering)  # the layer and what it wraps
        return type(layer).from_config(config)

    scope = contextlib.nullcontext()
    if flavour == "tf_keras" and any(type(layer).__name__.startswith("Quantize") for layer in model.layers):
        # Deferred: the quantization package loads tfmot (and sets TF_USE_LEGACY_KERAS); only QAT models need it.
        from attendnext_keras.quantization.configs import quantize_scope

        scope = quantize_scope()
    try:
        with scope:
            return _keras.get_keras(flavour).models.clone_model(model, clone_function=clone)
    except (NotImplementedError, TypeError, ValueError) as error:
        raise ValueError(f"Cannot rebuild '{model.name}' for another target: cloning {type(model).__name__} failed "
                         f"({str(error).splitlines()[0] if str(error) else type(error).__name__}). Build it as a "
                         f"functional model.") from error


# --------------------------------------------------------------------------------------------------------------------
# Compiling


def compile_for_npu(model_content: bytes, accelerator: str = "ethos-u55-128", model=None, system_config=None,
                    memory_mode=None, per_layer: bool = False, timeout: float = 900.0) -> VelaReport:
    """Compiles an int8 `.tflite` with Vela for `accelerator` and reports it (VelaReport).

    model: the Keras model the flatbuffer came from, so that CPU ops and per-layer rows name Keras layers.
    system_config, memory_mode: sections of Vela's Arm/vela.ini (default: Vela's own choice for the accelerator).
    per_layer: also read Vela's per-layer estimates (`--verbose-performance`): cycles and MACs of every NPU op.
    """
    if accelerator not in ETHOS_U:
        raise ValueError(f"Unknown Ethos-U accelerator {accelerator!r}. Known: {', '.join(ETHOS_U)}.")
    version = require_vela()
    model_content = litert.check_tflite(model_content)
    layer_names = {layer.name for layer in model.layers} if model is not None else set()
    with tempfile.TemporaryDirectory(prefix="attendnext-vela-") as folder:
        network = _io.write_atomic(os.path.join(folder, "model.tflite"), model_content)
        out = os.path.join(folder, "out")
        _run_vela(network, out, accelerator, system_config, memory_mode, per_layer, timeout)
        summary = _read_csv(glob.glob(os.path.join(out, "model_summary_*.csv")), "summary")[0]
        with open(os.path.join(out, "model_vela.tflite"), "rb") as f:
            compiled = f.read()
        rows = _read_csv([os.path.join(out, "model_per-layer.csv")], "per-layer") if per_layer else None
    if rows is not None:
        rows = _per_layer(rows, layer_names, _output_layers(model_content, model))
    npu_ops, cpu_ops, partitions = _placement(model_content, compiled, layer_names)
    return VelaReport(
        accelerator=accelerator, system_config=summary["system_config"], memory_mode=summary["memory_mode"],
        clock_mhz=float(summary["core_clock"]) / 1e6, npu_ops=npu_ops, cpu_ops=cpu_ops, npu_partitions=partitions,
        sram_bytes=_kib(summary["sram_memory_used"]), dram_bytes=_kib(summary["dram_memory_used"]),
        on_chip_flash_bytes=_kib(summary["on_chip_flash_memory_used"]),
        off_chip_flash_bytes=_kib(summary["off_chip_flash_memory_used"]),
        cycles=int(float(summary["cycles_total"])), inference_ms=float(summary["inference_time"]) * 1e3,
        cycles_breakdown={part: int(float(summary[f"cycles_{part}"])) for part in CYCLE_PARTS},
        weights_area=summary["weights_storage_area"], feature_map_area=summary["feature_map_storage_area"],
        macs=int(float(summary["nn_macs"])), vela_version=version, compiled_bytes=len(compiled), per_layer=rows,
        compiled=compiled)


def _run_vela(network, out, accelerator, system_config, memory_mode, per_layer, timeout):
    command = [sys.executable, "-m", "ethosu.vela", network, "--accelerator-config", accelerator,
               "--output-dir", out]
    command += ["--system-config", system_config] if system_config else []
    command += ["--memory-mode", memory_mode] if memory_mode else []
    command += ["--verbose-performance"] if per_layer else []
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"Vela did not finish compiling for {accelerator} in {timeout:.0f} s.") from None
    if done.returncode != 0 or not os.path.exists(os.path.join(out, "model_vela.tflite")):
        lines = [line.strip() for line in (done.stdout + done.stderr).splitlines() if line.strip()]
        reason = " | ".join(lines[-3:]) or f"exit code {done.returncode}"
        raise RuntimeError(f"Vela could not compile the model for {accelerator}: {reason}")
    return done.stdout


def _read_csv(paths, what) -> list:
    if not paths or not os.path.exists(paths[0]):
        raise RuntimeError(f"Vela wrote no {what} CSV; this attendnext_keras reads ethos-u-vela 5.2's ({INSTALL}).")
    with open(paths[0], newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _kib(value) -> int:
    """Vela's summary gives memory in KiB."""
    return int(round(float(value) * 1024))


def _per_layer(rows, layer_names, outputs) -> list:
    """Vela's per-layer rows with cycles (ops fused into the previous one have none), named by Keras layer (`outputs`:
    {graph output tensor name: layer}, for the tensors the converter leaves unnamed). "bound_by" says which of compute
    ("npu") and the memory accesses took the op's cycles."""
    result = []
    for row in rows:
        cycles = int(float(row["Op Cycles"]))
        if cycles == 0:
            continue
        parts = {part: int(float(row[column])) for part, column in PER_LAYER_PARTS.items()}
        layer = _tensor_layer(row["Name"], layer_names) or outputs.get(row["Name"])
        result.append({"layer": layer or row["Name"], "op": row["Original Operator"], "vela_op": row["NNG Operator"],
                       "cycles": cycles, "macs": int(float(row["MAC Count"])),
                       "mac_utilisation": float(row["Util% (MAC)"]) / 100, "bound_by": max(parts, key=parts.get),
                       **{f"{part}_cycles": value for part, value in parts.items()}})
    return result


def _output_layers(model_content, model) -> dict:
    """{name of a graph output tensor: the Keras layer giving the model's output}."""
    if model is None:
        return {}
    return {name: model.layers[-1].name for op in litert.graph_ops(model_content) if op["graph_output"]
            for name in op["outputs"]}


def _placement(model_content, compiled, layer_names):
    """({op: count} on the NPU, [OpIssue] on the CPU, NPU parts): every op left in the compiled model other than
    Vela's "ethos-u" custom ops runs on the CPU; the input model's other ops went into the NPU parts."""
    cpu, partitions = [], 0
    for op in litert.graph_ops(compiled):
        if op["op"] == "ethos-u":
            partitions += 1
            continue
        tensor = op["outputs"][0] if op["outputs"] else ""
        cpu.append(OpIssue(op["op"], tensor, _tensor_layer(tensor, layer_names)))
    npu = collections.Counter(op["op"] for op in litert.graph_ops(model_content))
    npu.subtract(issue.op for issue in cpu)
    return {op: count for op, count in sorted(npu.items()) if count > 0}, cpu, partitions

"""Where, when, with what and by which command a result was made: every result file the package writes carries it.

Latency ratios differ between machines (and under load), so the CPU (model, family, the SIMD flags XNNPACK uses)
and the load average are recorded beside every measurement.

    info = provenance.machine_info()          # {"date", "command", "cpu_model", "cpu_flags", "load_average", ...}
    print(provenance.describe(info))          # one line for a report header
"""

from __future__ import annotations

import datetime
import os
import platform
import shlex
import sys
from importlib import metadata

PACKAGES = ("attendnext_keras", "tensorflow", "keras", "tf-keras", "tensorflow-model-optimization", "ai-edge-litert",
            "tflite-micro", "numpy")
SIMD_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_int8", "asimd", "asimddp", "i8mm",
              "sve")
"""The CPU flags that decide which XNNPACK kernels run (int8 dot products, bf16)."""

_ARM_PARTS = {"0xd03": "Cortex-A53", "0xd04": "Cortex-A35", "0xd05": "Cortex-A55", "0xd07": "Cortex-A57",
              "0xd08": "Cortex-A72", "0xd09": "Cortex-A73", "0xd0a": "Cortex-A75", "0xd0b": "Cortex-A76"}


def _cpuinfo() -> dict:
    fields = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return fields


def cpu_model(fields=None) -> str:
    """The CPU's name ("model name" on x86; "Model"/"Hardware"/"CPU part" on ARM boards)."""
    fields = _cpuinfo() if fields is None else fields
    part = _ARM_PARTS.get(fields.get("CPU part", "").lower())
    for key in ("model name", "Model", "Hardware"):
        if fields.get(key):
            return f"{fields[key]} ({part})" if part and part not in fields[key] else fields[key]
    if fields.get("CPU part"):
        return part or f"ARM CPU part {fields['CPU part']}"
    return platform.processor() or platform.machine()


def load_average():
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def command_line(argv=None) -> str:
    argv = list(sys.argv if argv is None else argv)
    if argv and argv[0].endswith(".py"):
        argv = ["python"] + argv
    elif argv and os.path.basename(argv[0]) == "attendnext":
        argv[0] = "attendnext"
    return shlex.join(argv)


def _version(package):
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def machine_info(command=None) -> dict:
    """The provenance of a result: date (UTC), command line, CPU, platform, package versions, load average."""
    fields = _cpuinfo()
    flags = set(fields.get("flags", fields.get("Features", "")).split())
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": command if command is not None else command_line(),
        "cpu_model": cpu_model(fields),
        "cpu_family": fields.get("cpu family") or fields.get("CPU architecture"),
        "cpu_model_number": fields.get("model") or fields.get("CPU part"),
        "cpu_flags": [f for f in SIMD_FLAGS if f in flags],
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {package: _version(package) for package in PACKAGES},
        "load_average": load_average(),
    }


def describe_cpu(info: dict) -> str:
    """The CPU of a result: model name, family and model number, SIMD flags (what its latency ratios depend on)."""
    flags = ", ".join(info.get("cpu_flags") or []) or "no SIMD flags read"
    family = f", family {info['cpu_family']} model {info['cpu_model_number']}" if info.get("cpu_family") else ""
    return f"{info.get('cpu_model')}{family} ({flags})"


def describe(info: dict) -> str:
    """One line: CPU, flags, CPUs, load average, date."""
    return (f"{describe_cpu(info)}, {info.get('cpu_count')} CPUs, load average {info.get('load_average')}, "
            f"{info.get('date')}")

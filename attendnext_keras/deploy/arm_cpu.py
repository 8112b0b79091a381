"""Instructions an Arm Cortex-A72 (or A76) executes per inference, counted under emulation: the paper's CPU, no board.

The paper times AttendNeXt on a Cortex-A72 (a Raspberry Pi 4's core: ARMv8.0-A, NEON, no dot-product
instructions). Here LiteRT's aarch64 wheel runs under QEMU user-mode emulation with `-cpu cortex-a72`, so that the
hardware capabilities LiteRT and XNNPACK read are the A72's and they pick the kernels they would pick on it (int8
GEMMs with widening multiplies, not SDOT); `cortex-a76` (a Raspberry Pi 5's core) has SDOT. cpuinfo, which XNNPACK
asks, also reads /proc/cpuinfo: it is shown one naming the core (its MIDR part number), bind-mounted in a private
mount namespace (the host's x86 one makes it crash). A QEMU plugin of this project (`tools/arm_marks.c`) counts the
guest instructions executed and logs the count wherever the program marks a point, so that each invoke is counted
on its own, inside one process, after a warm-up invoke: start-up, model loading and XNNPACK's weight packing are
left out, and the invokes' counts show that the count repeats.

What this is: a count of the work the core's code path does, the same on a loaded machine: the invokes of one run
count the same to the instruction, and runs differ by a few hundred instructions in tens of millions (where the
interpreter's buffers land in memory).
What it is not: time. An A72 issues up to three instructions a cycle and stalls on memory; dense NEON GEMMs run near
that, depthwise convolutions and elementwise ops wait on loads, so a ratio of counts is a ratio of time only as far
as two models' mixes of kernels agree.

Set-up (Debian 12, root; about 300 MB): `sudo bash tools/setup_arm_cpu.sh` puts everything in one folder,
`$ATTENDNEXT_ARM_CPU` or `~/.cache/attendnext_keras/arm_cpu` (under sudo: the invoking user's):

    from attendnext_keras.deploy import arm_cpu
    arm_cpu.count_instructions(tflite_bytes, cpu="cortex-a72")   # {"per_inference", "invokes", "output"}
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import tempfile

SETUP_SCRIPT = "tools/setup_arm_cpu.sh"
CPUS = {"cortex-a72": ("0xd08", "fp asimd evtstrm crc32 cpuid"),
        "cortex-a76": ("0xd0b", "fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm "
                                "lrcpc dcpop asimddp")}
"""QEMU CPU model → (MIDR part number, /proc/cpuinfo features) of the core: the A72 of the paper and a Raspberry Pi 4,
the A76 of a Raspberry Pi 5."""
MARK_BASE = 0x4137320000
"""`tools/arm_marks.c` logs the instruction count at lseek(-1, MARK_BASE + label, SEEK_SET), label < 2 ** 16."""
MAX_INVOKES = 2 ** 15
"""Two marks per invoke, 16-bit labels."""
RUNNER = r'''
import os
import sys
import numpy as np
from ai_edge_litert.interpreter import Interpreter

interpreter = Interpreter(model_path=sys.argv[1], num_threads=1)
interpreter.allocate_tensors()
detail = interpreter.get_input_details()[0]
rng = np.random.default_rng(0)
if np.issubdtype(detail["dtype"], np.integer):
    info = np.iinfo(detail["dtype"])
    x = rng.integers(info.min, info.max + 1, detail["shape"]).astype(detail["dtype"])
else:
    x = rng.uniform(0, 255, detail["shape"]).astype(detail["dtype"])
interpreter.set_tensor(detail["index"], x)
interpreter.invoke()  # warm-up: first-invoke work is not the steady state


def mark(label):
    try:
        os.lseek(-1, int(sys.argv[3]) + label, os.SEEK_SET)
    except OSError:
        pass


for i in range(int(sys.argv[2])):  # marks around each invoke: the same constant overhead in every span
    mark(2 * i)
    interpreter.invoke()
    mark(2 * i + 1)
print("output", interpreter.get_tensor(interpreter.get_output_details()[0]["index"]).ravel()[:4].tolist())
'''
"""The program run on the emulated core: only LiteRT and NumPy exist there (no TensorFlow wheel is needed)."""


class EmulationError(RuntimeError):
    """The emulation is not set up, or the emulated program failed."""


@dataclasses.dataclass(frozen=True)
class Emulator:
    root: str
    qemu: str

    @property
    def python(self):
        return os.path.join(self.root, "rootfs", "usr", "bin", "python3.11")

    def path(self, *parts):
        return os.path.join(self.root, *parts)


def default_root() -> str:
    return os.environ.get("ATTENDNEXT_ARM_CPU") or os.path.expanduser("~/.cache/attendnext_keras/arm_cpu")


def emulator(root=None) -> Emulator:
    """The set-up emulation under `root` (default: `default_root()`); raises `EmulationError` naming what is missing."""
    root = os.path.abspath(root or default_root())
    found = Emulator(root, shutil.which("qemu-aarch64") or "")
    needed = {"qemu-aarch64 (Debian's qemu-user)": found.qemu, "unshare (util-linux)": shutil.which("unshare"),
              "the aarch64 Python": os.path.exists(found.python),
              "LiteRT for aarch64": os.path.isdir(found.path("site", "ai_edge_litert")),
              "the instruction-count plugin": os.path.exists(found.path("libmarks.so"))}
    missing = [what for what, ok in needed.items() if not ok]
    if missing:
        raise EmulationError(f"Arm CPU emulation is not set up in {root}: missing {', '.join(missing)}; run "
                             f"`sudo bash {SETUP_SCRIPT}` (Debian) first")
    return found


def cpuinfo_text(cpu) -> str:
    """A one-core /proc/cpuinfo of `cpu` (a `CPUS` key), as the kernel writes it on arm64."""
    part, features = CPUS[cpu]
    return (f"processor\t: 0\nBogoMIPS\t: 108.00\nFeatures\t: {features}\nCPU implementer\t: 0x41\n"
            f"CPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: {part}\nCPU revision\t: 0\n\n")


def command(emu: Emulator, cpu, model_path, invokes, cpuinfo_path, log_path) -> list:
    """The argv that runs `RUNNER` on `model_path` for `invokes` marked invokes on the emulated `cpu`, logging the
    marks to `log_path` (`RUNNER` is written beside it), with `cpuinfo_path` bind-mounted over /proc/cpuinfo in a
    private mount namespace."""
    namespace = ["unshare", "--mount"] + (["--map-root-user"] if os.geteuid() != 0 else [])
    mount = 'mount --bind "$0" /proc/cpuinfo && exec "$@"'
    runner = os.path.join(os.path.dirname(log_path), "runner.py")
    qemu = [emu.qemu, "-cpu", cpu, "-L", emu.path("rootfs"), "-plugin", emu.path("libmarks.so"), "-d", "plugin",
            "-D", log_path, emu.python, runner, model_path, str(invokes), str(MARK_BASE)]
    return namespace + ["sh", "-c", mount, cpuinfo_path] + qemu


def parse_marks(log_text) -> list:
    """The instruction counts `tools/arm_marks.c` logged, in label order ("mark <label> <count>"): the runner marks
    before (even labels) and after (odd labels) each invoke."""
    marks = dict(map(int, m) for m in re.findall(r"^mark (\d+) (\d+)$", log_text, flags=re.MULTILINE))
    if len(marks) < 2 or sorted(marks) != list(range(len(marks))):
        raise EmulationError(f"the instruction-count plugin logged marks {sorted(marks)}, not 0..n: is libmarks.so "
                             f"built from tools/arm_marks.c?")
    return [marks[i] for i in range(len(marks))]


def count_instructions(model, cpu="cortex-a72", invokes=3, root=None, timeout=1800) -> dict:
    """Guest instructions per inference of a .tflite model (bytes or a path) on the emulated `cpu`, 1 thread, XNNPACK
    as LiteRT applies it, after one warm-up invoke: {"per_inference" (the median invoke), "invokes" (each one's
    count), "output"}."""
    if cpu not in CPUS:
        raise ValueError(f"Unknown Arm CPU {cpu!r}; known: {', '.join(CPUS)}")
    if not 1 <= invokes <= MAX_INVOKES:
        raise ValueError(f"invokes must be between 1 and {MAX_INVOKES}; got {invokes}")
    emu = emulator(root)
    with tempfile.TemporaryDirectory(prefix="arm_cpu_") as workdir:
        path = model if isinstance(model, (str, os.PathLike)) else _write(os.path.join(workdir, "model.tflite"),
                                                                          bytes(model))
        if not os.path.isfile(path):
            raise FileNotFoundError(f"No such model file: {path}")
        _write(os.path.join(workdir, "runner.py"), RUNNER.encode())
        cpuinfo = _write(os.path.join(workdir, "cpuinfo"), cpuinfo_text(cpu).encode())
        log_path = os.path.join(workdir, "marks.log")
        done = _run(command(emu, cpu, os.path.abspath(path), invokes, cpuinfo, log_path), emu, cpu, path, timeout)
        if not os.path.exists(log_path):
            raise EmulationError(f"the emulated {cpu} run of {os.path.basename(str(path))} wrote no instruction "
                                 f"counts: is libmarks.so built from tools/arm_marks.c?")
        with open(log_path) as f:
            marks = parse_marks(f.read())
    if len(marks) != 2 * invokes:
        raise EmulationError(f"the instruction-count plugin logged {len(marks)} marks for {invokes} invokes")
    each = [marks[2 * i + 1] - marks[2 * i] for i in range(invokes)]
    return {"per_inference": sorted(each)[(invokes - 1) // 2], "invokes": each, "output": done.stdout.strip()}


def _run(argv, emu, cpu, path, timeout):
    # A clean environment: nothing of the host's (LD_PRELOAD, PYTHONHOME…) reaches QEMU or the guest, and NumPy's
    # OpenBLAS starts no worker threads, which would add to the plugin's one counter.
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": emu.path("site"), "PYTHONHASHSEED": "0",
           "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "LANG": "C.UTF-8"}
    name = os.path.basename(str(path))
    try:
        done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise EmulationError(f"the emulated {cpu} run of {name} took over {timeout} s") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise EmulationError(f"the emulated {cpu} run of {name} failed (exit {done.returncode}): {last}")
    return done


def best_format(counts: dict) -> tuple:
    """(format, instructions) of the format with the fewest instructions, from {format: {"per_inference": n}}."""
    fmt = min(counts, key=lambda f: counts[f]["per_inference"])
    return fmt, counts[fmt]["per_inference"]


def _write(path, data: bytes) -> str:
    with open(path, "wb") as f:
        f.write(data)
    return path

"""TensorFlow Lite Micro: run an int8 model on the `tflite-micro` Python interpreter and read its arena size.

The interpreter is the reference TFLM runtime compiled for the host, with the same kernels and memory planner as on a
Cortex-M, so its arena figure is the tensor arena an application must reserve (plus a little per-op overhead).
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile

import numpy as np


@contextlib.contextmanager
def _capture_c_stdio():
    """Captures what C code prints to file descriptors 1 and 2 (TFLM logs through stdio, not Python)."""
    import sys

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

    def __init__(self, model_content: bytes, arena_size: int | None = None):
        from tflite_micro.python.tflite_micro import runtime

        from attendnext_keras.runtime import check_tflite

        model_content = check_tflite(model_content)
        try:
            with _capture_c_stdio() as log:
                self.interpreter = runtime.Interpreter.from_bytes(model_content, arena_size=arena_size)
        except RuntimeError as error:
            raise RuntimeError(f"TFLite Micro cannot load this model: {error}. Its log: {log[0][-500:]}") from error

    @property
    def arena_bytes(self) -> int:
        """Bytes of tensor arena the model's plan uses (`print_allocations`' "Arena allocation total")."""
        with _capture_c_stdio() as log:
            self.interpreter.print_allocations()
        match = re.search(r"Arena allocation total (\d+) bytes", log[0])
        if not match:
            raise RuntimeError(f"TFLite Micro did not report its arena size. Its log: {log[0][:500]}")
        return int(match.group(1))

    def run(self, x: np.ndarray) -> np.ndarray:
        detail = self.interpreter.get_input_details(0)
        x = np.asarray(x)
        if tuple(x.shape) != tuple(detail["shape"]) or x.dtype != detail["dtype"]:
            raise ValueError(f"TFLite Micro input must be {detail['dtype'].__name__} of shape {tuple(detail['shape'])}. "
                             f"Received: {x.dtype} of shape {x.shape}")
        self.interpreter.set_input(x, 0)
        self.interpreter.invoke()
        return np.array(self.interpreter.get_output(0))

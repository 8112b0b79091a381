"""Running TFLite models with the LiteRT interpreter (`ai_edge_litert`), XNNPACK partition analysis and timing."""

from __future__ import annotations

import collections
import time

import numpy as np


def check_tflite(model_content) -> bytes:
    """Returns the flatbuffer as bytes, or raises ValueError when it is not a TFLite model."""
    if not isinstance(model_content, (bytes, bytearray)) or model_content[4:8] != b"TFL3":
        raise ValueError("Not a TFLite model: the flatbuffer identifier 'TFL3' is missing at bytes 4–8.")
    return bytes(model_content)


def load_interpreter(model_content: bytes, num_threads: int = 1, xnnpack: bool = True):
    """A LiteRT interpreter with tensors allocated; XNNPACK (the default CPU delegate) on unless xnnpack=False."""
    from ai_edge_litert import interpreter as litert

    model_content = check_tflite(model_content)
    resolver = (litert.OpResolverType.AUTO if xnnpack
                else litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interpreter = litert.Interpreter(model_content=model_content, num_threads=num_threads,
                                     experimental_op_resolver_type=resolver)
    interpreter.allocate_tensors()
    return interpreter


def delegation_report(model_content: bytes) -> dict:
    """Which ops XNNPACK runs: partitions (DELEGATE nodes), ops left outside, and the op histogram.

    The interpreter lists each DELEGATE node and still lists the original ops; an op is delegated when it lies
    between a delegate node's inputs and outputs, found by tracing back from the delegate's outputs.
    """
    interpreter = load_interpreter(model_content, num_threads=1, xnnpack=True)
    ops = interpreter._get_ops_details()
    delegates = [op for op in ops if op["op_name"] == "DELEGATE"]
    original = [op for op in ops if op["op_name"] != "DELEGATE"]
    producer = {int(t): op["index"] for op in original for t in op["outputs"]}
    by_index = {op["index"]: op for op in original}
    delegated = set()
    for node in delegates:
        boundary = {int(t) for t in node["inputs"]}
        stack = [int(t) for t in node["outputs"]]
        while stack:
            tensor = stack.pop()
            if tensor in boundary or tensor not in producer:
                continue
            index = producer[tensor]
            if index in delegated:
                continue
            delegated.add(index)
            stack.extend(int(t) for t in by_index[index]["inputs"] if t >= 0)
    outside = [op for op in original if op["index"] not in delegated]
    return {
        "partitions": len(delegates),
        "ops": len(original),
        "ops_outside": [op["op_name"] for op in outside],
        "ops_outside_indices": [op["index"] for op in outside],
        "op_histogram": dict(collections.Counter(op["op_name"] for op in original)),
    }


def weight_bytes(model_content: bytes) -> int:
    """Bytes of constant tensors (weights, biases) in a TFLite model: its flash footprint without the flatbuffer's
    structure. A constant is an op input that no op produces and that is not a graph input (op temporaries, such
    as im2col scratch, are neither and are not counted)."""
    interpreter = load_interpreter(model_content, xnnpack=False)
    ops = interpreter._get_ops_details()
    produced = {int(t) for op in ops for t in op["outputs"]}
    consumed = {int(t) for op in ops for t in op["inputs"] if t >= 0}
    inputs = {d["index"] for d in interpreter.get_input_details()}
    total = 0
    for index in sorted(consumed - produced - inputs):
        try:
            total += interpreter.get_tensor(index).nbytes
        except ValueError:  # tensors without data (variables)
            continue
    return total


def measure_latency(model_content: bytes, num_threads: int = 1, runs: int = 50, warmup: int = 5, seed: int = 0):
    """Per-invoke latencies in milliseconds on random input (a numpy array of `runs` values)."""
    if runs < 1:
        raise ValueError(f"`runs` must be at least 1. Received: runs={runs}")
    interpreter = load_interpreter(model_content, num_threads=num_threads)
    detail = interpreter.get_input_details()[0]
    rng = np.random.default_rng(seed)
    if np.issubdtype(detail["dtype"], np.integer):
        info = np.iinfo(detail["dtype"])
        x = rng.integers(info.min, info.max, size=detail["shape"], endpoint=True).astype(detail["dtype"])
    else:
        x = rng.uniform(0, 255, size=detail["shape"]).astype(detail["dtype"])
    interpreter.set_tensor(detail["index"], x)
    for _ in range(warmup):
        interpreter.invoke()
    times = np.empty(runs)
    for i in range(runs):
        start = time.perf_counter()
        interpreter.invoke()
        times[i] = (time.perf_counter() - start) * 1e3
    return times

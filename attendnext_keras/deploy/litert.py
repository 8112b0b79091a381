"""TFLite models on the LiteRT interpreter (`ai_edge_litert`): loading, XNNPACK partition analysis, weight bytes,
latency timing and accuracy. NumPy and LiteRT only: no TensorFlow, so deployment code can use it.

    samples = time_interleaved({"a": blob_a, "b": blob_b}, num_threads=1, runs=100)    # the package's one timer
    print(delegation_report(blob_a)["partitions"], latency_stats(samples["a"])["median"])
"""

from __future__ import annotations

import collections
import contextlib
import math
import os
import time

import numpy as np
from ai_edge_litert import interpreter as litert

from attendnext_keras import _io
from attendnext_keras.metrics import top_k_accuracy


def check_tflite(model_content) -> bytes:
    """Returns the flatbuffer as bytes, or raises ValueError when it is not a TFLite model."""
    if not isinstance(model_content, (bytes, bytearray)) or model_content[4:8] != b"TFL3":
        raise ValueError("Not a TFLite model: the flatbuffer identifier 'TFL3' is missing at bytes 4–8.")
    return bytes(model_content)


def load_interpreter(model_content: bytes, num_threads: int = 1, xnnpack: bool = True,
                     preserve_all_tensors: bool = False):
    """A LiteRT interpreter with tensors allocated; XNNPACK (the default CPU delegate) on unless xnnpack=False.
    `preserve_all_tensors` keeps every intermediate tensor readable after `invoke` (for op-by-op comparisons)."""
    model_content = check_tflite(model_content)
    if isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 1:
        raise ValueError(f"`num_threads` must be a positive integer. Received: num_threads={num_threads!r}")
    resolver = (litert.OpResolverType.AUTO if xnnpack
                else litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    try:
        with _first_delegate_quietly(xnnpack):
            interpreter = _interpreter(model_content, num_threads=num_threads, experimental_op_resolver_type=resolver,
                                       experimental_preserve_all_tensors=preserve_all_tensors)
            interpreter.allocate_tensors()
    except (RuntimeError, ValueError) as error:
        if "ethos-u" in str(error):
            raise ValueError("This model is compiled for an Arm Ethos-U NPU (Vela): it runs on the device, through "
                             "TFLite Micro's Ethos-U driver, not on LiteRT. Export without --target to run it on "
                             "the CPU.") from None
        raise
    return interpreter


def _interpreter(model_content: bytes, **kwargs):
    """litert.Interpreter over the model, also when it is in TFLite Micro's space-saving form (one zero point for a
    per-channel tensor, `micro.strip_for_micro`), which LiteRT refuses: then over the same model with the zero point
    repeated per channel, the value TFLM reads for every channel."""
    try:
        return litert.Interpreter(model_content=model_content, **kwargs)
    except ValueError as error:
        if "zero_point values and" not in str(error):
            raise
    return litert.Interpreter(model_content=expand_zero_points(model_content), **kwargs)


def expand_zero_points(model_content: bytes) -> bytes:
    """The model with every per-channel tensor's single zero point repeated once per scale (LiteRT's form)."""
    from ai_edge_litert.tools import flatbuffer_utils  # deferred: only TFLM-form models need it

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(model_content))
    for graph in model.subgraphs:
        for tensor in graph.tensors:
            q = tensor.quantization
            if q is not None and q.scale is not None and q.zeroPoint is not None and len(q.zeroPoint) == 1 < len(
                    q.scale):
                q.zeroPoint = np.full(len(q.scale), q.zeroPoint[0], dtype=np.int64)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


_announced = []


@contextlib.contextmanager
def _first_delegate_quietly(xnnpack):
    """LiteRT's C++ prints "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." on file descriptor 2 the first
    time a process creates the delegate; that once, descriptor 2 is captured (and replayed if loading fails)."""
    if not xnnpack or _announced:
        yield
        return
    with _io.native_stderr_captured():
        yield
    _announced.append(True)


def graph_ops(model_content: bytes) -> list:
    """[{"op": name, "outputs": [tensor names], "output_dtype": the first output's dtype name ("int8", "float32"…),
    "graph_output": whether it writes a model output}] of every op in execution order, read without allocating
    tensors, so models with custom ops no kernel here runs (a Vela-compiled model's "ethos-u") can be listed too."""
    resolver = litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    interpreter = _interpreter(check_tflite(model_content), experimental_op_resolver_type=resolver)
    details = {d["index"]: d for d in interpreter.get_tensor_details()}
    outputs = {d["index"] for d in interpreter.get_output_details()}
    ops = []
    for op in interpreter._get_ops_details():
        tensors = [int(t) for t in op["outputs"] if t >= 0]
        ops.append({"op": op["op_name"], "outputs": [details[t]["name"] if t in details else "" for t in tensors],
                    "output_dtype": np.dtype(details[tensors[0]]["dtype"]).name if tensors and tensors[0] in details
                    else None,
                    "graph_output": any(t in outputs for t in tensors)})
    return ops


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


def random_input(detail, rng) -> np.ndarray:
    """A random input for a LiteRT input detail: the full integer range, or float pixels in [0, 255]."""
    if np.issubdtype(detail["dtype"], np.integer):
        info = np.iinfo(detail["dtype"])
        return rng.integers(info.min, info.max, size=detail["shape"], endpoint=True).astype(detail["dtype"])
    return rng.uniform(0, 255, size=detail["shape"]).astype(detail["dtype"])


def quantize_input(images, detail) -> np.ndarray:
    """Float pixels → the model's input dtype with the scale and zero point of a LiteRT input detail (no-op for
    float inputs)."""
    images = np.asarray(images, dtype=np.float32)
    dtype = np.dtype(detail["dtype"])
    if not np.issubdtype(dtype, np.integer):
        return images.astype(dtype)
    scale, zero_point = detail["quantization"]
    info = np.iinfo(dtype)
    return np.clip(np.round(images / scale + zero_point), info.min, info.max).astype(dtype)


def time_interleaved(blobs: dict, num_threads: int = 1, runs: int = 100, warmup: int = 10, block: int = 10,
                     seed: int = 0, log=None) -> dict:
    """{key: latency samples in ms} for flatbuffers `{key: bytes}`, timed in turn at one thread count: the one timer
    of the package (benchmarks, exploration, the main job and `measure_latency` all use it).

    Each model gets one interpreter (XNNPACK on) and `warmup` untimed runs; then in rounds, in a shuffled order each
    round, every model runs one untimed invoke (its caches refill after another model ran) and `block` timed ones,
    until each has at least `runs` samples, so that machine noise hits all models alike.
    """
    if runs < 1 or block < 1 or warmup < 0 or num_threads < 1:
        raise ValueError(f"Need runs >= 1, block >= 1, warmup >= 0, num_threads >= 1. Received: runs={runs}, "
                         f"block={block}, warmup={warmup}, num_threads={num_threads}")
    rng = np.random.default_rng(seed)
    block = min(block, runs)
    interpreters = {}
    for key, blob in blobs.items():
        interpreter = load_interpreter(blob, num_threads=num_threads)
        detail = interpreter.get_input_details()[0]
        interpreter.set_tensor(detail["index"], random_input(detail, rng))
        for _ in range(warmup):
            interpreter.invoke()
        interpreters[key] = interpreter
    samples = {key: [] for key in blobs}
    keys = list(blobs)
    rounds = math.ceil(runs / block)
    for r in range(rounds):
        for i in rng.permutation(len(keys)):
            interpreter, times = interpreters[keys[i]], samples[keys[i]]
            interpreter.invoke()
            for _ in range(block):
                start = time.perf_counter()
                interpreter.invoke()
                times.append((time.perf_counter() - start) * 1e3)
        if log and (r + 1) % max(1, rounds // 4) == 0:
            log(f"  {num_threads} thread(s): round {r + 1}/{rounds}")
    return samples


def measure_latency(model_content: bytes, num_threads: int = 1, runs: int = 50, warmup: int = 5, seed: int = 0):
    """Per-invoke latencies in milliseconds of one model on random input (a numpy array of at least `runs`
    values); `time_interleaved` with a single model."""
    samples = time_interleaved({"model": model_content}, num_threads=num_threads, runs=runs, warmup=warmup,
                               block=runs, seed=seed)
    return np.asarray(samples["model"])


def latency_stats(samples) -> dict:
    """Median, p90, p99, mean, min, max and the count of latency samples (ms), plus the samples rounded."""
    t = np.asarray(samples, dtype=np.float64)
    return {"median": float(np.median(t)), "p90": float(np.percentile(t, 90)), "p99": float(np.percentile(t, 99)),
            "mean": float(t.mean()), "min": float(t.min()), "max": float(t.max()), "runs": int(t.size),
            "samples": [round(float(x), 4) for x in t]}


# ---------------------------------------------------------------------------------------------------------------------
# Files and accuracy


def read_tflite(path) -> bytes:
    """The flatbuffer of a .tflite file; a missing file, a folder or a file that is not a TFLite model is a one-line
    error naming the path."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"Model file '{path}' does not exist.")
    if os.path.isdir(path):
        raise IsADirectoryError(f"Model file '{path}' is a folder, not a .tflite file.")
    with open(path, "rb") as f:
        blob = f.read()
    try:
        return check_tflite(blob)
    except ValueError as error:
        raise ValueError(f"'{path}' is not a TFLite model: {error}") from None


def input_size(model_content: bytes) -> tuple:
    """(height, width) of a TFLite model's image input."""
    detail = load_interpreter(model_content, xnnpack=False).get_input_details()[0]
    return tuple(int(d) for d in detail["shape"][1:3])


def output_classes(model_content: bytes) -> int:
    """The width of a TFLite classifier's output."""
    return int(load_interpreter(model_content, xnnpack=False).get_output_details()[0]["shape"][-1])


def evaluate_tflite(model_content: bytes, dataset, runner=None) -> dict:
    """Top-1 accuracy of a .tflite model (batch 1) on (images, labels) batches, with LiteRT (XNNPACK) or a TFLM
    runner (anything with `run(x) -> outputs`)."""
    interpreter = load_interpreter(model_content, xnnpack=runner is None)  # with a runner: only its I/O details
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]

    def scores(images):
        outputs = []
        for image in images:
            x = quantize_input(image[None], inp)
            if runner is not None:
                outputs.append(np.asarray(runner.run(x))[0])
                continue
            interpreter.set_tensor(inp["index"], x)
            interpreter.invoke()
            outputs.append(interpreter.get_tensor(out["index"])[0])
        return np.stack(outputs).astype(np.float32)

    return top_k_accuracy(scores, dataset, ks=(1,))

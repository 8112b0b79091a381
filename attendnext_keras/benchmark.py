"""AttendNeXt against the paper's peers, on this machine, in one run, with the same converter settings.

For every model: parameters and MACs (`profiling.profile`), the `.tflite` size in float32 and in int8 (post-training
quantization, "int8-ptq", int8 input and output), the XNNPACK partitions of each (`runtime.delegation_report`) and
LiteRT latency (median, p90, p99) at each thread count; then speed and size ratios and a verdict on each of the
paper's claims. Models are timed interleaved: one thread count at a time, every (model, format) gets a block of
`block` timed runs in turn (in a shuffled order each round, one untimed run at the start of each block), rounds
repeat until each has at least `runs`, so that machine noise hits all models alike.

    from attendnext_keras import benchmark
    result = benchmark.run_benchmark(["attendnext_base", "mobilenet_v3_large", "fbnet_c"], runs=100)
    paths = benchmark.write_reports(result, "benchmarks/results")   # {"json": ..., "md": ..., "png": ...}

Model names: "attendnext_base", "attendnext_small", "attendnext_micro" and the keys of `peers.PEERS`. By default
every model runs at the peers' 224 px, except `attendnext_micro`, which runs at its own 96 px and is reported
separately (no ratios against 224-px models); `input_size` puts every model at one size. All weights are random:
latency and size do not depend on them, accuracy does (pass accuracies measured elsewhere for the Pareto plot).

Relative throughput in the Figure 3 plot is normalised to FBNet-C, the paper's baseline (then MobileNetV3-Large,
then the slowest model, when FBNet-C is not in the run); relative model size to the same model's parameters.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import pathlib
import platform
import shlex
import sys
import time

import numpy as np

ATTENDNEXT_MODELS = {"attendnext_base": "base", "attendnext_small": "small", "attendnext_micro": "micro"}
"""Benchmark name → AttendNeXt variant."""

DISPLAY_NAMES = {
    "attendnext_base": "AttendNeXt base",
    "attendnext_small": "AttendNeXt small",
    "attendnext_micro": "AttendNeXt micro",
    "mobilenet_v3_large": "MobileNetV3-Large",
    "mobilenet_v3_small": "MobileNetV3-Small",
    "mobilenet_v2": "MobileNetV2",
    "efficientnet_b0": "EfficientNet-B0",
    "mobilevit_xs": "MobileViT-XS",
    "mobileone_s1": "MobileOne-S1",
    "fbnet_c": "FBNet-C",
    "ofa_62": "OFA-62",
}

COMPARISON_SIZE = 224
"""The peers' (and the paper's) input resolution."""

OWN_SIZE_BY_DEFAULT = ("attendnext_micro",)
"""Models that run at their own input size unless `input_size` is given (micro: 96 px, for microcontrollers)."""

REFERENCES = ("mobilenet_v3_large", "fbnet_c")
"""Every model's speed and size are also given relative to these (FBNet-C is the paper's Figure 3 baseline)."""

FORMATS = {"float32": "float32", "int8": "int8-ptq"}
"""Report name → `conversion.to_tflite` mode."""

CLAIM_SUBJECTS = ("attendnext_base", "attendnext_small", "attendnext_micro")
"""The AttendNeXt model the paper's claims are checked on: the first of these in the run at the comparison size."""

PAPER_CLAIMS = (
    # Wong et al. 2022, Figure 3 and its text; measured on an ARM Cortex-A72. `threshold` is what "holds" needs:
    # a speed-up (peer latency / AttendNeXt latency) or a size ratio (peer parameters / AttendNeXt parameters) above
    # `threshold`.
    dict(peer="mobilenet_v3_large", kind="speed", text="> 6× faster than MobileNetV3-L", threshold=6.0),
    dict(peer="ofa_62", kind="speed", text="> 6× faster than OFA-62", threshold=6.0),
    dict(peer="fbnet_c", kind="speed", text="> 10× faster than FBNet-C", threshold=10.0),
    dict(peer="mobileone_s1", kind="speed", text="> 10× faster than MobileOne-S1", threshold=10.0),
    # "~4×": counted as holding above 3.5× (what rounds to 4 or more).
    dict(peer="mobilevit_xs", kind="speed", text="~4× faster than MobileViT-XS (holds above 3.5×)", threshold=3.5),
    dict(peer="mobilenet_v3_large", kind="size", text="> 1.37× smaller than MobileNetV3-L (parameters)",
         threshold=1.37),
)

NOT_REBUILT = {
    "ofa_62": "OFA-62 (a Once-for-All subnet, Cai et al. 2020) is not rebuilt here, so its claim is not measured.",
}

HOLDS, DOES_NOT_HOLD = "holds", "does not hold yet"


# --------------------------------------------------------------------------------------------------------------------
# Models


def known_models() -> list:
    """Every name `run_benchmark` takes: the AttendNeXt variants, then the peers."""
    from attendnext_keras.peers import PEERS

    return list(ATTENDNEXT_MODELS) + list(PEERS)


def resolve_models(models=None) -> list:
    """The names to run, in order, without repeats; None or "all" (alone) → every known model.

    Raises ValueError naming the known models when a name is unknown."""
    known = known_models()
    if models is None or models == "all" or list(models) == ["all"]:
        return known
    if isinstance(models, str):
        models = [models]
    names = list(dict.fromkeys(models))
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(f"Unknown model name(s) {unknown}. Known models: {known}")
    if not names:
        raise ValueError(f"No models to benchmark. Known models: {known}")
    return names


def model_input_size(name, input_size=None) -> int:
    """The square input size `name` runs at: `input_size` when given, else 224 (micro: its own 96)."""
    if input_size is not None:
        return int(input_size)
    if name in OWN_SIZE_BY_DEFAULT:
        from attendnext_keras.specs import get_spec

        return get_spec(ATTENDNEXT_MODELS[name]).input_size
    return COMPARISON_SIZE


def build_model(name, input_size, classes=1000):
    """A float Keras 3 model with logits, taking [0, 255] pixels of shape (input_size, input_size, 3)."""
    shape = (input_size, input_size, 3)
    if name in ATTENDNEXT_MODELS:
        from attendnext_keras.models import AttendNeXt

        # Logits out, as deployed: softmax is outside XNNPACK in int8 and argmax does not need it.
        return AttendNeXt(variant=ATTENDNEXT_MODELS[name], input_shape=shape, classes=classes,
                          classifier_activation=None)
    from attendnext_keras.peers import PEERS

    if name not in PEERS:
        resolve_models([name])  # raises, naming the known models
    return PEERS[name](shape, classes)


# --------------------------------------------------------------------------------------------------------------------
# Machine


def _cpu_model() -> str:
    """The CPU's name from /proc/cpuinfo ("model name" on x86; "Model"/"Hardware"/"CPU part" on ARM boards)."""
    fields = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        return platform.processor() or platform.machine()
    arm_parts = {"0xd03": "Cortex-A53", "0xd04": "Cortex-A35", "0xd05": "Cortex-A55", "0xd07": "Cortex-A57",
                 "0xd08": "Cortex-A72", "0xd09": "Cortex-A73", "0xd0a": "Cortex-A75", "0xd0b": "Cortex-A76"}
    for key in ("model name", "Model", "Hardware"):
        if fields.get(key):
            part = arm_parts.get(fields.get("CPU part", "").lower())
            return f"{fields[key]} ({part})" if part and part not in fields[key] else fields[key]
    if fields.get("CPU part"):
        return arm_parts.get(fields["CPU part"].lower(), f"ARM CPU part {fields['CPU part']}")
    return platform.processor() or platform.machine()


def _version(package):
    from importlib import metadata

    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _command_line() -> str:
    argv = list(sys.argv)
    if argv and argv[0].endswith(".py"):
        argv = ["python"] + argv
    return shlex.join(argv)


def machine_info(command=None) -> dict:
    """Where and with what the benchmark ran."""
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "versions": {package: _version(package) for package in
                     ("tensorflow", "keras", "ai-edge-litert", "numpy", "matplotlib")},
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": command if command is not None else _command_line(),
    }


def _load_average():
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


# --------------------------------------------------------------------------------------------------------------------
# Measuring


def _log_to_stderr(message):
    print(message, file=sys.stderr, flush=True)


def calibration_images(size, data=None, count=64, seed=0):
    """(images, description) for int8 calibration: `count` images of `data`'s val split (a `data.load_source`
    spec: a folder, "default", a TFDS name) through the evaluation transform, or uniform noise in [0, 255]."""
    if data is None:
        rng = np.random.default_rng(seed)
        return (rng.uniform(0, 255, (count, size, size, 3)).astype(np.float32),
                f"{count} random uniform [0, 255] images")
    from attendnext_keras.data import load_source, representative_images

    source = load_source(os.fspath(data) if isinstance(data, os.PathLike) else data, "val")
    images = representative_images(source, size, count, seed=seed)
    return images, f"{len(images)} images of {source.name}/{source.split} ({data})"


def _stats(samples) -> dict:
    t = np.asarray(samples, dtype=np.float64)
    return {"median": float(np.median(t)), "p90": float(np.percentile(t, 90)), "p99": float(np.percentile(t, 99)),
            "mean": float(t.mean()), "min": float(t.min()), "max": float(t.max()), "runs": int(t.size),
            "samples": [round(float(x), 4) for x in t]}


def time_interleaved(blobs: dict, num_threads: int, runs: int = 100, warmup: int = 10, block: int = 10, seed: int = 0,
                     log=None) -> dict:
    """{key: latency samples in ms} for flatbuffers `{key: bytes}`, timed in turn at one thread count.

    Each model gets one interpreter (XNNPACK on, like `runtime.measure_latency`) and `warmup` untimed runs; then in
    rounds, in a shuffled order each round, every model runs one untimed invoke and `block` timed ones, until each has
    at least `runs` samples.
    """
    from attendnext_keras.runtime import load_interpreter, random_input

    if runs < 1 or block < 1 or warmup < 0:
        raise ValueError(f"Need runs >= 1, block >= 1, warmup >= 0. Received: runs={runs}, block={block}, "
                         f"warmup={warmup}")
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
            interpreter = interpreters[keys[i]]
            interpreter.invoke()  # after another model ran: caches refilled outside the timed runs
            times = samples[keys[i]]
            for _ in range(block):
                start = time.perf_counter()
                interpreter.invoke()
                times.append((time.perf_counter() - start) * 1e3)
        if log and (r + 1) % max(1, rounds // 4) == 0:
            log(f"  {num_threads} thread(s): round {r + 1}/{rounds}")
    return samples


def _speedups(slow_row, fast_row, threads) -> dict:
    """{threads: {"best", "float32", "int8"}}: slow latency / fast latency (median), by format and best format."""
    out = {}
    for t in threads:
        t = str(t)
        out[t] = {fmt: slow_row["formats"][fmt]["latency_ms"][t]["median"]
                  / fast_row["formats"][fmt]["latency_ms"][t]["median"] for fmt in FORMATS}
        out[t]["best"] = slow_row["best"][t]["median"] / fast_row["best"][t]["median"]
    return out


def _ratios(slow_row, fast_row, threads) -> dict:
    """How `fast_row` compares with `slow_row`: speed-ups (slow / fast latency) and size ratios (slow / fast)."""
    return {
        "speedup": _speedups(slow_row, fast_row, threads),
        "params_ratio": slow_row["params"] / fast_row["params"],
        "macs_ratio": slow_row["macs"] / fast_row["macs"],
        "tflite_bytes_ratio": {fmt: slow_row["formats"][fmt]["tflite_bytes"] / fast_row["formats"][fmt]["tflite_bytes"]
                               for fmt in FORMATS},
    }


def _verdict(holds: dict) -> str:
    """'holds' when it holds at every thread count, 'does not hold yet' at none, otherwise which ones."""
    if all(holds.values()):
        return HOLDS
    if not any(holds.values()):
        return DOES_NOT_HOLD
    return f"{HOLDS} at {', '.join(t for t, ok in holds.items() if ok)} thread(s) only"


def evaluate_claims(result) -> list:
    """The paper's claims (`PAPER_CLAIMS`) against the AttendNeXt model of `result["claim_subject"]`."""
    subject = result.get("claim_subject")
    comparisons = result["comparisons"].get(subject, {}) if subject else {}
    threads = [str(t) for t in result["settings"]["threads"]]
    claims = []
    for claim in PAPER_CLAIMS:
        entry = dict(claim, model=subject, measured=None, holds=None)
        peer = claim["peer"]
        if peer in NOT_REBUILT:
            entry["verdict"] = "not measured (not rebuilt)"
            entry["note"] = NOT_REBUILT[peer]
        elif subject is None:
            entry["verdict"] = "not measured (no AttendNeXt model at the comparison size in this run)"
        elif peer not in comparisons:
            entry["verdict"] = "not measured (peer not in this run)"
        elif claim["kind"] == "size":
            ratio = comparisons[peer]["params_ratio"]
            entry["measured"] = ratio
            entry["holds"] = ratio > claim["threshold"]
            entry["verdict"] = HOLDS if entry["holds"] else DOES_NOT_HOLD
        else:
            speedup = comparisons[peer]["speedup"]
            entry["measured"] = {t: speedup[t]["best"] for t in threads}
            entry["measured_by_format"] = {t: {fmt: speedup[t][fmt] for fmt in FORMATS} for t in threads}
            entry["holds"] = {t: speedup[t]["best"] > claim["threshold"] for t in threads}
            entry["verdict"] = _verdict(entry["holds"])
        claims.append(entry)
    return claims


def load_accuracies(accuracies) -> dict | None:
    """{model: top-1} from a dict or a JSON file; values are numbers or dicts with a "top1" entry."""
    if accuracies is None:
        return None
    if isinstance(accuracies, (str, os.PathLike)):
        with open(accuracies, encoding="utf-8") as f:
            accuracies = json.load(f)
    if not isinstance(accuracies, dict):
        raise ValueError(f"Accuracies must be a JSON object {{model_name: top1}}. "
                         f"Received: {type(accuracies).__name__}")
    out = {}
    for name, value in accuracies.items():
        if isinstance(value, dict):
            value = value.get("top1")
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            raise ValueError(f"Accuracy of {name!r} must be a number (or a dict with a numeric 'top1'). "
                             f"Received: {accuracies[name]!r}")
        out[str(name)] = float(value)
    return out


def run_benchmark(models=None, runs=100, threads=(1, 2), data=None, accuracies=None, out_dir="benchmarks/results",
                  input_size=None, warmup=10, block=10, classes=1000, calibration_count=64, references=REFERENCES,
                  command=None, log=_log_to_stderr) -> dict:
    """Builds, profiles, converts and times `models` (see the module docstring); returns the result as a dict.

    Args:
        models: names (`known_models()`); None → all. Unknown names raise ValueError before anything runs.
        runs: timed runs per model, format and thread count (at least; a multiple of `block`).
        threads: LiteRT thread counts.
        data: calibration images for int8: a `data.load_source` spec (its val split); None → random uniform images.
        accuracies: {model: top-1} or a JSON file of it, for the Pareto plot (kept in the result).
        out_dir: where `write_reports` puts files when called without one (kept in the result; nothing written).
        input_size: one square size for every model; None → 224 (micro at its own 96).
        warmup: untimed runs per interpreter before timing. block: timed runs per turn.
        classes: classifier width (1000, the ImageNet head of the paper's models).
        calibration_count: images for int8 calibration.
        references: every model's speed and size are also given relative to these (those in the run).
        command: the command line to record (default: this process's).
        log: callable taking progress lines (default: stderr); None for silence.
    """
    from attendnext_keras.conversion import to_tflite_formats
    from attendnext_keras.peers import PUBLISHED_PARAMS
    from attendnext_keras.profiling import profile
    from attendnext_keras.runtime import delegation_report, weight_bytes

    log = log or (lambda message: None)
    names = resolve_models(models)
    threads = [int(t) for t in ([threads] if isinstance(threads, int) else threads)]
    if not threads or any(t < 1 for t in threads):
        raise ValueError(f"`threads` must be positive integers. Received: threads={threads}")
    threads = list(dict.fromkeys(threads))
    if runs < 1 or warmup < 0 or block < 1 or calibration_count < 1:
        raise ValueError(f"Need runs >= 1, warmup >= 0, block >= 1, calibration_count >= 1. Received: runs={runs}, "
                         f"warmup={warmup}, block={block}, calibration_count={calibration_count}")
    accuracies = load_accuracies(accuracies)
    references = [resolve_models([ref])[0] for ref in ([references] if isinstance(references, str) else references)]
    comparison_size = int(input_size) if input_size is not None else COMPARISON_SIZE
    started = time.time()
    info = machine_info(command)
    info["load_average_before"] = _load_average()

    # Build everything first: a size a builder refuses fails in seconds, not after an hour of conversions.
    built = {}
    for i, name in enumerate(names, 1):
        size = model_input_size(name, input_size)
        log(f"[{i}/{len(names)}] building {name} at {size} px")
        built[name] = build_model(name, size, classes)

    rows, blobs, calibration = {}, {}, {}
    for i, name in enumerate(names, 1):
        model = built.pop(name)
        size = model_input_size(name, input_size)
        prof = profile(model)
        if size not in calibration:
            calibration[size] = calibration_images(size, data, calibration_count)
        images, source = calibration[size]
        row = {"display_name": DISPLAY_NAMES.get(name, name),
               "family": "attendnext" if name in ATTENDNEXT_MODELS else "peer",
               "input_size": size, "same_resolution": size == comparison_size,
               "params": int(prof.params), "macs": int(prof.macs),
               "published_params": PUBLISHED_PARAMS.get(name), "calibration": source, "formats": {}}
        start = time.time()
        converted = to_tflite_formats(model, list(FORMATS.values()), representative_data=[images],
                                      calibration_steps=len(images))
        seconds = time.time() - start
        for fmt, mode in FORMATS.items():
            blob = converted[mode]
            report = delegation_report(blob)
            blobs[(name, fmt)] = blob
            row["formats"][fmt] = {
                "mode": mode, "tflite_bytes": len(blob), "weight_bytes": weight_bytes(blob),
                "partitions": report["partitions"], "ops": report["ops"],
                "ops_outside": sorted(set(report["ops_outside"])), "ops_outside_count": len(report["ops_outside"]),
                "latency_ms": {}}
            log(f"[{i}/{len(names)}] {name} {fmt}: {len(blob) / 1024:.0f} KB, {report['partitions']} XNNPACK "
                f"partition(s)")
        row["conversion_s"] = round(seconds, 1)
        log(f"[{i}/{len(names)}] {name}: both formats converted in {seconds:.0f} s")
        rows[name] = row
        del model

    for t in threads:
        log(f"timing {len(blobs)} models at {t} thread(s), {runs} runs each, interleaved in blocks of "
            f"{min(block, runs)}")
        samples = time_interleaved(blobs, t, runs=runs, warmup=warmup, block=block, log=log)
        for (name, fmt), values in samples.items():
            rows[name]["formats"][fmt]["latency_ms"][str(t)] = _stats(values)
    for row in rows.values():
        row["best"] = {}
        for t in map(str, threads):
            fmt = min(FORMATS, key=lambda f: row["formats"][f]["latency_ms"][t]["median"])
            row["best"][t] = {"format": fmt, "median": row["formats"][fmt]["latency_ms"][t]["median"]}

    # Ratios: every model against the references, every AttendNeXt model against every peer (same resolution only).
    for name, row in rows.items():
        row["relative_to"] = {ref: _ratios(rows[ref], row, threads) for ref in references
                              if ref in rows and rows[ref]["input_size"] == row["input_size"]}
    comparisons = {}
    for name, row in rows.items():
        if row["family"] != "attendnext":
            continue
        comparisons[name] = {peer: _ratios(other, row, threads) for peer, other in rows.items()
                             if other["family"] == "peer" and other["input_size"] == row["input_size"]}
    subject = next((n for n in CLAIM_SUBJECTS if n in rows and rows[n]["input_size"] == comparison_size), None)

    info["load_average_after"] = _load_average()
    result = {
        "schema": 1,
        "machine": info,
        "settings": {
            "models": names, "runs": runs, "warmup": warmup, "block": min(block, runs), "threads": threads,
            "comparison_input_size": comparison_size, "input_size": input_size, "classes": classes, "batch_size": 1,
            "weights": "random (latency and size do not depend on them)",
            "formats": dict(FORMATS), "int8_io": True,
            "converter": "attendnext_keras.conversion.to_tflite_formats: one SavedModel export per model, "
                         "TFLiteConverter.from_saved_model per format, with to_tflite's settings",
            "calibration": {"data": os.fspath(data) if data is not None else None, "count": calibration_count},
            "runtime": "LiteRT (ai_edge_litert) with XNNPACK, default op resolver",
            "timing": "one thread count at a time; rounds of blocks of `block` timed runs per (model, format), "
                      "shuffled order per round, one untimed run at the start of each block",
            "out_dir": os.fspath(out_dir),
        },
        "references": [ref for ref in references if ref in rows],
        "claim_subject": subject,
        "models": rows,
        "comparisons": comparisons,
        "not_rebuilt": dict(NOT_REBUILT),
        "accuracies": accuracies,
        "elapsed_s": None,
    }
    result["claims"] = evaluate_claims(result)
    result["elapsed_s"] = round(time.time() - started, 1)
    log(f"benchmark done in {result['elapsed_s']:.0f} s")
    return result


# --------------------------------------------------------------------------------------------------------------------
# Reports


def figure_baseline(result) -> str:
    """The model the Figure 3 plot normalises to: FBNet-C (the paper's), else MobileNetV3-Large, else the slowest
    model (best format, first thread count) among those at the comparison size."""
    rows = {n: r for n, r in result["models"].items() if r["same_resolution"]}
    for ref in ("fbnet_c", "mobilenet_v3_large"):
        if ref in rows:
            return ref
    t = str(result["settings"]["threads"][0])
    return max(rows, key=lambda n: rows[n]["best"][t]["median"])


def _fmt_ms(x):
    return f"{x:.2f}" if x >= 0.1 else f"{x:.3f}"


def _fmt_count(x):
    return f"{x / 1e6:.2f} M" if x >= 1e5 else f"{x / 1e3:.1f} k"


def _fmt_ratio(x):
    return "—" if x is None else f"{x:.2f}×"


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def markdown_report(result, figure_name="peers.png", pareto_name="pareto.png") -> str:
    """The report as markdown (tables, claims with verdicts, figures and notes)."""
    m, s = result["machine"], result["settings"]
    threads = [str(t) for t in s["threads"]]
    rows = result["models"]
    name = lambda n: rows[n]["display_name"] if n in rows else DISPLAY_NAMES.get(n, n)  # noqa: E731
    # In the per-model tables, a model at another resolution is marked (it is left out of every comparison).
    row_name = lambda n: name(n) + ("" if rows[n]["same_resolution"] else  # noqa: E731
                                    f" (own {rows[n]['input_size']} px, not compared)")
    size = s["comparison_input_size"]
    main = [n for n, r in rows.items() if r["same_resolution"]]
    own = [n for n, r in rows.items() if not r["same_resolution"]]
    v = m["versions"]
    calibration = sorted({r["calibration"] for r in rows.values()})
    out = [
        "# AttendNeXt against the paper's peers",
        "",
        f"Machine: {m['cpu_model']}, {m['cpu_count']} logical CPUs, {m['platform']}; Python {m['python']}, "
        f"TensorFlow {v.get('tensorflow')}, Keras {v.get('keras')}, ai-edge-litert {v.get('ai-edge-litert')}. "
        f"Date: {m['date']}. Load average before / after: {m.get('load_average_before')} / "
        f"{m.get('load_average_after')}.",
        "",
        f"Command: `{m['command']}`",
        "",
        f"Every model converted the same way (batch {s['batch_size']}, {s['classes']} classes, logits, random "
        f"weights): float32, and int8 by post-training quantization (int8 input and output) calibrated on "
        f"{'; '.join(calibration)}. LiteRT with XNNPACK; {s['runs']} timed runs per model, format and thread count "
        f"after {s['warmup']} warm-up runs, interleaved in shuffled rounds of {s['block']}-run blocks. Parameters "
        f"include BatchNormalization statistics (they fold away on conversion).",
        "",
        "## Models",
        "",
        _table(["model", "input", "params", "MACs", "float32 KB", "int8 KB", "XNNPACK partitions (fp32 / int8)",
                "ops outside XNNPACK (int8)"],
               [[row_name(n), r["input_size"], _fmt_count(r["params"]), _fmt_count(r["macs"]),
                 f"{r['formats']['float32']['tflite_bytes'] / 1024:.0f}",
                 f"{r['formats']['int8']['tflite_bytes'] / 1024:.0f}",
                 f"{r['formats']['float32']['partitions']} / {r['formats']['int8']['partitions']}",
                 ", ".join(r["formats"]["int8"]["ops_outside"]) or "—"] for n, r in rows.items()]),
        "",
        "## Latency",
        "",
        "Milliseconds, median / p90 / p99; **best** is the faster format's median.",
        "",
        _table(["model"] + [f"{fmt} {t}T" for t in threads for fmt in FORMATS] + [f"best {t}T" for t in threads],
               [[row_name(n)] + [" / ".join(_fmt_ms(r["formats"][fmt]["latency_ms"][t][k])
                                            for k in ("median", "p90", "p99"))
                                 for t in threads for fmt in FORMATS]
                + [f"**{_fmt_ms(r['best'][t]['median'])}** ({r['best'][t]['format']})" for t in threads]
                for n, r in rows.items()]),
        "",
    ]
    if result["references"]:
        refs = result["references"]
        out += [
            f"## Relative to {' and '.join(name(ref) for ref in refs)}",
            "",
            "Speed-up = reference latency / model latency (best format of each); size = reference parameters / "
            f"model parameters. Models at {size} px only.",
            "",
            _table(["model"] + [f"speed-up vs {name(ref)} {t}T" for ref in refs for t in threads]
                   + [f"smaller than {name(ref)}" for ref in refs],
                   [[name(n)] + [_fmt_ratio(rows[n]["relative_to"][ref]["speedup"][t]["best"])
                                 if ref in rows[n]["relative_to"] else "—" for ref in refs for t in threads]
                    + [_fmt_ratio(rows[n]["relative_to"][ref]["params_ratio"])
                       if ref in rows[n]["relative_to"] else "—" for ref in refs] for n in main]),
            "",
        ]
    for subject, peers in result["comparisons"].items():
        if not peers:
            continue
        out += [
            f"## {name(subject)} against each peer",
            "",
            "Speed-up = peer latency / AttendNeXt latency: by best format, float32 vs float32 and int8 vs int8; size = "
            "peer parameters / AttendNeXt parameters.",
            "",
            _table(["peer", "smaller (params)"] + [f"{k} {t}T" for t in threads for k in ("best", "fp32", "int8")],
                   [[name(p), _fmt_ratio(c["params_ratio"])]
                    + [_fmt_ratio(c["speedup"][t][k]) for t in threads for k in ("best", "float32", "int8")]
                    for p, c in peers.items()]),
            "",
        ]
    subject = name(result["claim_subject"]) if result["claim_subject"] else "—"

    def measured(claim):
        if claim["measured"] is None:
            return "—"
        if claim["kind"] == "size":
            return _fmt_ratio(claim["measured"])
        return ", ".join(f"{_fmt_ratio(x)} ({t}T)" for t, x in claim["measured"].items())

    out += [
        "## The paper's claims",
        "",
        "Wong et al. 2022 (Figure 3) measured on an ARM Cortex-A72; this run is on "
        f"{m['cpu_model']} ({m['machine']}) with LiteRT/XNNPACK, so these verdicts say where ours stands here, not "
        f"whether the paper's numbers are right. Checked on **{subject}** at {size} px, best format per model; a "
        f"speed claim holds when it holds at every thread count timed.",
        "",
        _table(["claim", "measured", "verdict"], [[c["text"], measured(c), c["verdict"]] for c in result["claims"]]),
        "",
    ]
    out += ["## Figures", ""]
    if main:
        base = figure_baseline(result)
        why = ("the paper's baseline" if base == "fbnet_c" else
               "FBNet-C, the paper's baseline, is not in this run" if base == "mobilenet_v3_large" else
               "the slowest model: neither FBNet-C nor MobileNetV3-Large is in this run")
        out += [f"![Relative throughput and model size]({figure_name})", "",
                f"In the style of the paper's Figure 3: (a) throughput relative to **{name(base)}** ({why}): "
                f"{name(base)} latency / model latency, best format, per thread count; (b) model size relative to "
                f"{name(base)}: parameters and int8 .tflite bytes. Models at {size} px only.", ""]
    accuracies = result.get("accuracies")
    plotted = _pareto_models(result)
    if plotted:
        out += [f"![Accuracy against latency]({pareto_name})", "",
                f"Top-1 accuracy (from the accuracies file: {', '.join(name(n) for n in plotted)}) against int8 and "
                f"best-format latency at {threads[0]} thread(s); the line joins the Pareto-optimal models.", ""]
    elif accuracies:
        out += ["Pareto plot skipped: the accuracies given name none of the models in this run.", ""]
    else:
        out += ["Pareto plot (accuracy against latency) skipped: no accuracies given (`--accuracies FILE`, "
                "a JSON object {model_name: top1}).", ""]
    notes = ["Weights are random: latency and size do not depend on them; accuracy is not measured here."]
    if own:
        listed = ", ".join(f"{name(n)} ({rows[n]['input_size']} px)" for n in own)
        notes.append(f"{listed} ran at its own resolution, not {size} px: listed in the tables, left out of ratios, "
                     f"claims and Figure 3.")
    notes += [text for text in result["not_rebuilt"].values()]
    notes.append(f"The paper timed on an ARM Cortex-A72; this run used {m['cpu_model']} ({m['machine']}), where "
                 f"XNNPACK runs other kernels: speed ratios measured here need not transfer to the A72.")
    out += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    return "\n".join(out)


def _pareto_models(result) -> list:
    accuracies = result.get("accuracies") or {}
    return [n for n in result["models"] if n in accuracies]


def _figure(width, height, ncols):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=120)
    FigureCanvasAgg(fig)
    return fig, [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]


def _bar_colours(names, rows):
    return ["#c0392b" if rows[n]["family"] == "attendnext" else "#7f8c8d" for n in names]


def plot_figure3(result, path) -> str:
    """Relative throughput (a) and relative model size (b), grouped bars per model, like the paper's Figure 3."""
    rows = result["models"]
    names = [n for n, r in rows.items() if r["same_resolution"]]
    base = figure_baseline(result)
    threads = [str(t) for t in result["settings"]["threads"]]
    fig, (ax_a, ax_b) = _figure(max(10, 1.5 * len(names) + 4), 4.8, 2)
    labels = [rows[n]["display_name"].replace(" ", "\n", 1) for n in names]
    x = np.arange(len(names))

    from matplotlib.patches import Patch

    width = 0.8 / len(threads)
    handles = []
    for k, t in enumerate(threads):
        values = [rows[base]["best"][t]["median"] / rows[n]["best"][t]["median"] for n in names]
        alpha = 1.0 - 0.55 * k / max(1, len(threads) - 1)
        bars = ax_a.bar(x + (k - (len(threads) - 1) / 2) * width, values, width, color=_bar_colours(names, rows),
                        alpha=alpha)
        ax_a.bar_label(bars, fmt="%.1f×", fontsize=7)
        handles.append(Patch(color="#7f8c8d", alpha=alpha, label=f"{t} thread(s)"))
    handles.append(Patch(color="#c0392b", label="AttendNeXt"))
    ax_a.axhline(1.0, color="black", lw=0.8, ls="--")
    ax_a.set_title(f"(a) Throughput relative to {rows[base]['display_name']} (best format)", fontsize=10)
    ax_a.set_ylabel("relative throughput (×)")

    width = 0.4
    params = [rows[n]["params"] / rows[base]["params"] for n in names]
    int8 = [rows[n]["formats"]["int8"]["tflite_bytes"] / rows[base]["formats"]["int8"]["tflite_bytes"] for n in names]
    colours = _bar_colours(names, rows)
    bars = ax_b.bar(x - width / 2, params, width, color=colours)
    ax_b.bar_label(bars, fmt="%.2f", fontsize=7)
    bars = ax_b.bar(x + width / 2, int8, width, color=colours, alpha=0.45, hatch="//")
    ax_b.bar_label(bars, fmt="%.2f", fontsize=7)
    size_handles = [Patch(color="#7f8c8d", label="parameters"),
                    Patch(facecolor="#7f8c8d", alpha=0.45, hatch="//", label="int8 .tflite bytes"),
                    Patch(color="#c0392b", label="AttendNeXt")]
    ax_b.axhline(1.0, color="black", lw=0.8, ls="--")
    ax_b.set_title(f"(b) Model size relative to {rows[base]['display_name']}", fontsize=10)
    ax_b.set_ylabel("relative size (×)")
    for ax, legend in ((ax_a, handles), (ax_b, size_handles)):
        ax.set_xticks(x, labels, fontsize=7)
        ax.legend(handles=legend, fontsize=7)
        ax.grid(axis="y", alpha=0.3)
    m = result["machine"]
    fig.suptitle(f"{m['cpu_model']} ({m['cpu_count']} CPUs), LiteRT + XNNPACK, "
                 f"{result['settings']['comparison_input_size']} px, random weights", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    return os.fspath(path)


def _pareto_front(points):
    """Indices of (latency, accuracy) points no other point beats in both (lower latency, higher accuracy), in
    order of latency (for drawing the front as a line)."""
    from attendnext_keras.explore import pareto_front

    return sorted(pareto_front(points, ("minimize", "maximize")), key=lambda i: points[i])


def plot_pareto(result, path) -> str | None:
    """Accuracy against int8 and best-format latency (first thread count); None when no accuracy matches."""
    names = _pareto_models(result)
    if not names:
        return None
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    rows, accuracies = result["models"], result["accuracies"]
    t = str(result["settings"]["threads"][0])
    values = [accuracies[n] for n in names]
    scale, unit = (100.0, "%") if all(0 <= a <= 1 for a in values) else (1.0, "")
    fig, axes = _figure(11, 4.6, 2)
    for ax, kind in zip(axes, ("int8", "best")):
        points = [((rows[n]["formats"]["int8"]["latency_ms"][t]["median"] if kind == "int8"
                    else rows[n]["best"][t]["median"]), accuracies[n] * scale) for n in names]
        ax.scatter([p[0] for p in points], [p[1] for p in points], c=_bar_colours(names, rows), zorder=3)
        for n, p in zip(names, points):
            label = rows[n]["display_name"] + ("" if rows[n]["same_resolution"] else f" ({rows[n]['input_size']} px)")
            ax.annotate(label, p, textcoords="offset points", xytext=(4, 4), fontsize=7)
        front = [points[i] for i in _pareto_front(points)]
        ax.plot([p[0] for p in front], [p[1] for p in front], color="#c0392b", lw=1, ls="--", zorder=2,
                label="Pareto front")
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(f"{'int8' if kind == 'int8' else 'best-format'} latency, ms ({t} thread(s), log scale)")
        ax.set_ylabel(f"top-1 accuracy{' (' + unit + ')' if unit else ''}")
        ax.set_title(f"Accuracy against {'int8' if kind == 'int8' else 'best-format'} latency", fontsize=10)
        ax.grid(alpha=0.3)
        ax.margins(x=0.2, y=0.1)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    return os.fspath(path)


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def write_reports(result, out_dir=None, stem="peers", accuracies=None) -> dict:
    """Writes `{stem}.json`, `{stem}.md`, `{stem}.png` (Figure 3 style) and, when accuracies are known,
    `pareto.png` into `out_dir` (default: the run's). `accuracies` ({model: top1} or a JSON file) replaces the
    run's. Returns {"json", "md", "png"[, "pareto"]: path}."""
    from attendnext_keras.conversion import write_atomic

    out_dir = pathlib.Path(out_dir if out_dir is not None else result["settings"]["out_dir"])
    out_dir.mkdir(parents=True, exist_ok=True)
    if accuracies is not None:
        result = dict(result, accuracies=load_accuracies(accuracies))
    result = _jsonable(result)
    paths = {}
    has_main = any(r["same_resolution"] for r in result["models"].values())
    if has_main:
        paths["png"] = plot_figure3(result, out_dir / f"{stem}.png")
    pareto = plot_pareto(result, out_dir / "pareto.png")
    if pareto:
        paths["pareto"] = pareto
    md = write_atomic(out_dir / f"{stem}.md", markdown_report(result, f"{stem}.png", "pareto.png").encode("utf-8"))
    js = write_atomic(out_dir / f"{stem}.json",
                      (json.dumps(result, indent=1, ensure_ascii=False) + "\n").encode("utf-8"))
    return {"json": js, "md": md, **paths}


# --------------------------------------------------------------------------------------------------------------------
# Command line (benchmarks/bench_peers.py; `attendnext benchmark`)


def add_arguments(parser, default_out="benchmarks/results"):
    """The benchmark's flags, for an argparse parser or sub-parser."""
    parser.add_argument("--models", nargs="+", default=None, metavar="NAME",
                        help="Models to run (default: all): attendnext_base, attendnext_small, attendnext_micro and "
                             "the peers mobilenet_v3_large, mobilenet_v3_small, mobilenet_v2, efficientnet_b0, "
                             "mobilevit_xs, mobileone_s1, fbnet_c. Each 224-px model takes 10–90 s per format to "
                             "convert.")
    parser.add_argument("--list", action="store_true", help="Print the known model names and exit.")
    parser.add_argument("--runs", type=int, default=100,
                        help="Timed runs per model, format and thread count, at least (default: 100).")
    parser.add_argument("--warmup", type=int, default=10,
                        help="Untimed runs per interpreter before timing starts (default: 10).")
    parser.add_argument("--block", type=int, default=10,
                        help="Timed runs a model gets per turn in the round-robin interleaving (default: 10).")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                        help="LiteRT thread counts to time (default: 1 2).")
    parser.add_argument("--input-size", type=int, default=None,
                        help="One square input size for every model (default: 224, and attendnext_micro at its "
                             "own 96, reported separately).")
    parser.add_argument("--classes", type=int, default=1000, help="Classifier width (default: 1000, ImageNet).")
    parser.add_argument("--data", default=None,
                        help="int8 calibration images: a folder (its val/ split), 'default' (the embedded "
                             "flowers_mini) or a TFDS name. Default: random uniform [0, 255] images.")
    parser.add_argument("--calibration-count", type=int, default=64,
                        help="Images for int8 calibration (default: 64).")
    parser.add_argument("--accuracies", default=None, metavar="FILE",
                        help="JSON {model_name: top1} (e.g. from the training benchmark) for the accuracy/latency "
                             "Pareto plot; without it the plot is skipped.")
    parser.add_argument("--out", default=default_out,
                        help=f"Folder for peers.json, peers.md, peers.png and pareto.png (default: {default_out}).")
    parser.add_argument("--from-json", default=None, metavar="FILE",
                        help="Rewrite the reports from an earlier run's peers.json (e.g. to add --accuracies later) "
                             "without building, converting or timing anything.")
    parser.add_argument("--quiet", action="store_true", help="No progress lines on stderr.")
    return parser


def run_from_args(args) -> dict:
    """Runs the benchmark from parsed `add_arguments` flags, writes the reports, returns their paths."""
    if args.list:
        print("\n".join(known_models()))
        return {}
    if args.from_json:
        with open(args.from_json, encoding="utf-8") as f:
            result = json.load(f)
        paths = write_reports(result, args.out, accuracies=args.accuracies)
        for kind, path in paths.items():
            print(f"wrote {kind}: {path}", file=sys.stderr)
        return paths
    result = run_benchmark(args.models, runs=args.runs, threads=tuple(args.threads), data=args.data,
                           accuracies=args.accuracies, out_dir=args.out, input_size=args.input_size,
                           warmup=args.warmup, block=args.block, classes=args.classes,
                           calibration_count=args.calibration_count, log=None if args.quiet else _log_to_stderr)
    paths = write_reports(result, args.out)
    print(pathlib.Path(paths["md"]).read_text(encoding="utf-8"))
    for kind, path in paths.items():
        print(f"wrote {kind}: {path}", file=sys.stderr)
    return paths

"""AttendNeXt against the paper's peers, on this machine, in one run, with the same converter settings.

For every model: parameters and MACs (`profiling.profile`), the `.tflite` size in each format of `FORMATS` (float32;
int8 by post-training quantization, "int8-ptq", int8 input and output; int8 with a float32 stem), the XNNPACK
partitions of each (`deploy.litert.delegation_report`)
and LiteRT latency (median, p90, p99) at each thread count, timed interleaved by `deploy.litert.time_interleaved`;
then speed and size ratios and a verdict on each of the paper's claims. Reports: `benchmark_report.write_reports`.

    from attendnext_keras.experiments import benchmark, benchmark_report
    result = benchmark.run_benchmark(BenchmarkConfig(models=("attendnext_base", "mobilenet_v3_large")))
    paths = benchmark_report.write_reports(result, "benchmarks/results")   # {"json", "md", "png"}

Model names come from `attendnext_keras.list_models()`. Every model runs at the peers' 224 px except microcontroller
variants (`attendnext_micro`, at their own size, reported separately); `input_size` puts every model at one size.
All weights are random: latency and size do not depend on them, accuracy does (pass accuracies measured elsewhere).
"""

from __future__ import annotations

import logging
import math
import time

from attendnext_keras import _io, data, profiling, provenance, registry
from attendnext_keras.config import BenchmarkConfig
from attendnext_keras.deploy import conversion, litert

logger = logging.getLogger(__name__)

COMPARISON_SIZE = 224
"""The peers' (and the paper's) input resolution."""

REFERENCES = ("mobilenet_v3_large", "fbnet_c")
"""Every model's speed and size are also given relative to these (FBNet-C is the paper's Figure 3 baseline)."""

FORMATS = {"float32": "float32", "int8": "int8-ptq", "int8-float-stem": "int8-ptq-float-stem"}
"""Report name → `conversion.to_tflite` mode. Every model gets every format, peers included, and is compared in its
fastest: "int8-float-stem" is int8 with the input scaling and first convolution left in float32, because XNNPACK's
int8 kernels run a 3-channel first layer slowly (results/study/latency.md; Arm: results/arm_cpu.md)."""

CLAIM_SUBJECTS = ("attendnext_base", "attendnext_small", "attendnext_micro")
"""The AttendNeXt model the paper's claims are checked on: the first of these in the run at the comparison size."""

PAPER_CLAIMS = (
    # Wong et al. 2022, Figure 3 and its text; measured on an ARM Cortex-A72. `threshold` is what "holds" needs:
    # a speed-up (peer latency / AttendNeXt latency) or a size ratio (peer parameters / AttendNeXt parameters).
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
SPEED_CAVEAT = ("These are speed and size ratios of randomly initialised models, not a comparison at equal accuracy: "
                "the models differ in capacity, so a faster model is not a better one until the study "
                "(`attendnext study`) shows its accuracy.")


def resolve_models(models=None) -> list:
    """The names to run, in order, without repeats; None, () or ["all"] → every registered model."""
    if not models or list(models) == ["all"]:
        return registry.list_models()
    names = list(dict.fromkeys([models] if isinstance(models, str) else models))
    for name in names:
        registry.model_info(name)  # raises, naming the known models
    return names


def model_input_size(name, input_size=None) -> int:
    """The square size `name` runs at: `input_size` when given, else 224 (microcontroller variants: their own)."""
    if input_size is not None:
        return int(input_size)
    return registry.model_info(name).benchmark_size or COMPARISON_SIZE


def build_model(name, input_size, classes=1000):
    """A float Keras 3 model with logits (softmax is outside XNNPACK in int8 and argmax does not need it)."""
    return registry.create_model(name, input_size=input_size, classes=classes)


# --------------------------------------------------------------------------------------------------------------------
# Measuring


def run_benchmark(config: BenchmarkConfig | None = None, accuracies=None, out_dir="benchmarks/results",
                  command=None, references=REFERENCES) -> dict:
    """Builds, profiles, converts and times `config.models` (None or (): all registered); returns the result.

    `accuracies` ({model: top-1} or a JSON file of it) is kept for the accuracy–latency plot; `out_dir` is where
    `benchmark_report.write_reports` puts files when called without one (nothing is written here).
    """
    config = config or BenchmarkConfig()
    names = resolve_models(config.models)
    accuracies = load_accuracies(accuracies)
    references = resolve_models(references) if references else []
    info = provenance.machine_info(command)
    started = time.time()
    sizes = {name: model_input_size(name, config.input_size) for name in names}
    # Build everything first: a size a builder refuses fails in seconds, not after an hour of conversions.
    built = {}
    for i, name in enumerate(names, 1):
        logger.info("[%d/%d] building %s at %d px", i, len(names), name, sizes[name])
        built[name] = build_model(name, sizes[name], config.classes)
    rows, blobs = {}, {}
    for i, name in enumerate(names, 1):
        rows[name], converted = _convert(name, built.pop(name), sizes[name], config, f"[{i}/{len(names)}]")
        blobs.update({(name, fmt): blob for fmt, blob in converted.items()})
    _time_all(rows, blobs, config)
    comparison_size = config.input_size or COMPARISON_SIZE
    info["load_average_after"] = provenance.load_average()
    result = _result(rows, names, references, comparison_size, config, accuracies, out_dir, info)
    result["elapsed_s"] = round(time.time() - started, 1)
    logger.info("benchmark done in %.0f s", result["elapsed_s"])
    return result


def _convert(name, model, size, config, prefix):
    """The row of one model (profile, sizes, partitions) and its flatbuffers {format: bytes}."""
    info = registry.model_info(name)
    prof = profiling.profile(model)
    images = data.calibration_images(config.calibration_data, size, config.calibration_images,
                                     split="val")
    row = {"display_name": info.display_name, "family": info.family,
           "input_size": size, "same_resolution": size == (config.input_size or COMPARISON_SIZE),
           "params": int(prof.params), "macs": int(prof.macs), "published_params": info.published_params,
           "calibration": data.describe_source(config.calibration_data, "val"), "formats": {}}
    start = time.time()
    converted = conversion.to_tflite_formats(model, list(FORMATS.values()), representative_data=[images],
                                             calibration_steps=len(images))
    blobs = {}
    for fmt, mode in FORMATS.items():
        blob = blobs[fmt] = converted[mode]
        report = litert.delegation_report(blob)
        row["formats"][fmt] = {
            "mode": mode, "tflite_bytes": len(blob), "weight_bytes": litert.weight_bytes(blob),
            "partitions": report["partitions"], "ops": report["ops"],
            "ops_outside": sorted(set(report["ops_outside"])), "ops_outside_count": len(report["ops_outside"]),
            "latency_ms": {}}
        logger.info("%s %s %s: %.0f KB, %d XNNPACK partition(s)", prefix, name, fmt, len(blob) / 1024,
                    report["partitions"])
    row["conversion_s"] = round(time.time() - start, 1)
    return row, blobs


def _time_all(rows, blobs, config):
    """Latency of every (model, format) at each thread count, interleaved; the best format per thread count."""
    for t in config.threads:
        logger.info("timing %d models at %d thread(s), %d runs each, interleaved in blocks of %d", len(blobs), t,
                    config.runs, min(config.block, config.runs))
        samples = litert.time_interleaved(blobs, t, runs=config.runs, warmup=config.warmup, block=config.block,
                                          log=logger.info)
        for (name, fmt), values in samples.items():
            rows[name]["formats"][fmt]["latency_ms"][str(t)] = litert.latency_stats(values)
    for row in rows.values():
        row["best"] = best_formats(row["formats"], map(str, config.threads))


def best_formats(formats: dict, threads) -> dict:
    """{threads: {"format", "median"}}: the format with the lowest median latency at each thread count, from a
    row's {format: {"latency_ms": {threads: {"median"...}}}}."""
    best = {}
    for t in threads:
        fmt = min(formats, key=lambda f: formats[f]["latency_ms"][t]["median"])
        best[t] = {"format": fmt, "median": formats[fmt]["latency_ms"][t]["median"]}
    return best


def _result(rows, names, references, comparison_size, config, accuracies, out_dir, info) -> dict:
    threads = list(config.threads)
    for row in rows.values():
        row["relative_to"] = {ref: ratios(rows[ref], row, threads) for ref in references
                              if ref in rows and rows[ref]["input_size"] == row["input_size"]}
    comparisons = {name: {peer: ratios(other, row, threads) for peer, other in rows.items()
                          if other["family"] != "attendnext" and other["input_size"] == row["input_size"]}
                   for name, row in rows.items() if row["family"] == "attendnext"}
    subject = next((n for n in CLAIM_SUBJECTS if n in rows and rows[n]["input_size"] == comparison_size), None)
    result = {
        "schema": 2, "machine": info,
        "settings": {**config.to_dict(), "models": names, "block": min(config.block, config.runs),
                     "comparison_input_size": comparison_size, "batch_size": 1, "formats": dict(FORMATS),
                     "weights": "random (latency and size do not depend on them)", "int8_io": True,
                     "runtime": "LiteRT (ai_edge_litert) with XNNPACK, default op resolver",
                     "timing": "deploy.litert.time_interleaved: one thread count at a time; rounds of blocks of "
                               "`block` timed runs per (model, format), shuffled order per round",
                     "out_dir": str(out_dir)},
        "references": [ref for ref in references if ref in rows], "claim_subject": subject, "models": rows,
        "comparisons": comparisons, "not_rebuilt": dict(NOT_REBUILT), "accuracies": accuracies, "elapsed_s": None}
    result["claims"] = evaluate_claims(result)
    return result


# --------------------------------------------------------------------------------------------------------------------
# Ratios and the paper's claims


def _speedups(slow_row, fast_row, threads) -> dict:
    """{threads: {"best", format...}}: slow latency / fast latency (median), by best format and by each format both
    rows have."""
    out = {}
    for t in map(str, threads):
        out[t] = {fmt: slow_row["formats"][fmt]["latency_ms"][t]["median"]
                  / fast_row["formats"][fmt]["latency_ms"][t]["median"] for fmt in _common_formats(slow_row, fast_row)}
        out[t]["best"] = slow_row["best"][t]["median"] / fast_row["best"][t]["median"]
    return out


def ratios(slow_row, fast_row, threads) -> dict:
    """How `fast_row` compares with `slow_row`: speed-ups (slow / fast latency) and size ratios (slow / fast)."""
    return {
        "speedup": _speedups(slow_row, fast_row, threads),
        "params_ratio": slow_row["params"] / fast_row["params"],
        "macs_ratio": slow_row["macs"] / fast_row["macs"],
        "tflite_bytes_ratio": {fmt: slow_row["formats"][fmt]["tflite_bytes"] / fast_row["formats"][fmt]["tflite_bytes"]
                               for fmt in _common_formats(slow_row, fast_row)},
    }


def _common_formats(*rows) -> list:
    """The formats every row has (results written before a format was added lack it)."""
    return [fmt for fmt in rows[0]["formats"] if all(fmt in row["formats"] for row in rows)]


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
    return [_claim(claim, subject, comparisons, threads) for claim in PAPER_CLAIMS]


def _claim(claim, subject, comparisons, threads) -> dict:
    entry = dict(claim, model=subject, measured=None, holds=None)
    peer = claim["peer"]
    if peer in NOT_REBUILT:
        return dict(entry, verdict="not measured (not rebuilt)", note=NOT_REBUILT[peer])
    if subject is None:
        return dict(entry, verdict="not measured (no AttendNeXt model at the comparison size in this run)")
    if peer not in comparisons:
        return dict(entry, verdict="not measured (peer not in this run)")
    if claim["kind"] == "size":
        ratio = comparisons[peer]["params_ratio"]
        return dict(entry, measured=ratio, holds=ratio > claim["threshold"],
                    verdict=HOLDS if ratio > claim["threshold"] else DOES_NOT_HOLD)
    speedup = comparisons[peer]["speedup"]
    holds = {t: speedup[t]["best"] > claim["threshold"] for t in threads}
    return dict(entry, measured={t: speedup[t]["best"] for t in threads}, holds=holds, verdict=_verdict(holds),
                measured_by_format={t: {fmt: v for fmt, v in speedup[t].items() if fmt != "best"} for t in threads})


def load_accuracies(accuracies) -> dict | None:
    """{model: top-1} from a dict or a JSON file; values are numbers or dicts with a "top1" entry."""
    if accuracies is None:
        return None
    if not isinstance(accuracies, dict):
        accuracies = _io.read_json(accuracies, "Accuracies file")
    if not isinstance(accuracies, dict):
        raise ValueError(f"Accuracies must be a JSON object {{model_name: top1}}. Received: {type(accuracies).__name__}")
    out = {}
    for name, value in accuracies.items():
        if isinstance(value, dict):
            value = value.get("top1")
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            raise ValueError(f"Accuracy of {name!r} must be a number (or a dict with a numeric 'top1'). "
                             f"Received: {accuracies[name]!r}")
        out[str(name)] = float(value)
    return out

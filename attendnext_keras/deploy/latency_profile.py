"""Where the time goes: int8 LiteRT/XNNPACK latency per stage, beside MACs, and the MAC rate each stage reaches
against this CPU's peak (a large 1×1 convolution, the best case for int8 GEMM kernels).

    profile = latency_profile(model, threads=1)      # {"stages": [...], "total_ms", "peak_gmacs", ...}
    print(format_profile(profile))

LiteRT's Python API has no per-op profiler, so stages are measured by truncation: the model cut after the stem, after
stage 1, … is converted to int8 and timed interleaved with the whole model (`litert.time_interleaved`); a stage's
latency is the difference between consecutive cuts, and the head is the whole model minus the last cut. Memory-bound
layers (depthwise convolutions, small tensors, concatenations) show up as stages far below the peak MAC rate.
With `float32=True` every cut is also converted to float32 and timed in the same rounds, so each stage shows its int8
time against its float32 time: where int8 is no faster (a CPU without int8 dot products, or ops that leave XNNPACK's
int8 kernels), the stage says so.
"""

from __future__ import annotations

import numpy as np

from attendnext_keras import _keras, data, profiling
from attendnext_keras.deploy import conversion, litert

PEAK_SHAPE = (28, 28, 512)
"""Input of the peak-rate probe: a 1×1 convolution 512 → 512 on 28×28 (205.5 M MACs)."""


def stage_cuts(model) -> list:
    """[(group, tensors)] for each group before the head: the tensors of that group that later layers read."""
    groups = [g for g in dict.fromkeys(profiling.group_of(layer.name) for layer in model.layers
                                       if type(layer).__name__ != "InputLayer") if g not in ("input", "head")]
    cuts = []
    for i, group in enumerate(groups):
        later = set(groups[i + 1:]) | {"head"}
        tensors = []
        for layer in model.layers:
            if profiling.group_of(layer.name) not in later:
                continue
            for name in profiling.inbound_names(layer):
                if profiling.group_of(name) == group:
                    tensors.append(model.get_layer(name).output)
        cuts.append((group, list({id(t): t for t in tensors}.values())))
    return cuts


def _int8(model, calibration) -> bytes:
    return conversion.to_tflite(model, "int8-ptq", representative_data=[calibration],
                                calibration_steps=len(calibration))


def _blobs(model, cuts, calibration, float32) -> dict:
    """{key: flatbuffer} of every cut and the whole model in int8, and in float32 under "float32:<key>" if asked."""
    K = _keras.get_keras(_keras.flavour_of(model))
    models = {group: K.Model(model.inputs, tensors) for group, tensors in cuts} | {"whole": model}
    blobs = {}
    for key, part in models.items():
        if float32:
            formats = conversion.to_tflite_formats(part, ("int8-ptq", "float32"), representative_data=[calibration],
                                                   calibration_steps=len(calibration))
            blobs[key], blobs[f"float32:{key}"] = formats["int8-ptq"], formats["float32"]
        else:
            blobs[key] = _int8(part, calibration)
    return blobs


def _differences(medians, groups, prefix="") -> list:
    """Each stage's time: its cut's median minus the previous cut's; the head: the whole model minus the last cut."""
    out, previous = [], 0.0
    for group in groups:
        end = medians[prefix + ("whole" if group == "head" else group)]
        out.append(end - previous)
        previous = end
    return out


def peak_rate(threads: int = 1, runs: int = 30, mode: str = "int8-ptq") -> float:
    """MACs per second of a large 1×1 convolution on this CPU, in int8 (the physical limit a stage can approach) or
    in float32 (`mode="float32"`: whether this CPU's int8 kernels beat float at all)."""
    K = _keras.get_keras("keras")
    image = K.Input(PEAK_SHAPE)
    model = K.Model(image, K.layers.Conv2D(PEAK_SHAPE[-1], 1, use_bias=False)(image))
    calibration = np.random.default_rng(0).normal(size=(8, *PEAK_SHAPE)).astype(np.float32)
    blob = conversion.to_tflite(model, mode, representative_data=[calibration], calibration_steps=len(calibration))
    samples = litert.time_interleaved({"peak": blob}, num_threads=threads, runs=runs)
    macs = PEAK_SHAPE[0] * PEAK_SHAPE[1] * PEAK_SHAPE[2] * PEAK_SHAPE[2]
    return macs / (np.median(samples["peak"]) / 1e3)


def latency_profile(model, threads: int = 1, runs: int = 50, calibration_images: int = 8,
                    float32: bool = False) -> dict:
    """Per-stage int8 latency (ms, median), MACs, share of the total and achieved MAC rate against the peak; with
    `float32`, each stage's float32 time and int8 ÷ float32 too."""
    size = tuple(int(d) for d in model.inputs[0].shape[1:3])
    calibration = data.calibration_images(None, size, calibration_images)
    cuts = stage_cuts(model)
    blobs = _blobs(model, cuts, calibration, float32)
    medians = {k: float(np.median(v)) for k, v in litert.time_interleaved(blobs, threads, runs=runs).items()}
    group_macs = profiling.profile(model).by_group()
    peak = peak_rate(threads)
    names = [g for g, _ in cuts] + ["head"]
    float_ms = _differences(medians, names, "float32:") if float32 else [None] * len(names)
    stages = []
    for group, ms, fms in zip(names, _differences(medians, names), float_ms):
        macs = group_macs.get(group, {}).get("macs", 0) + (group_macs.get("input", {}).get("macs", 0)
                                                            if group == "stem" else 0)
        rate = macs / (ms / 1e3) if ms > 0 else None
        stage = {"stage": group, "ms": ms, "macs": macs, "share": ms / medians["whole"],
                 "gmacs": None if rate is None else rate / 1e9, "of_peak": None if rate is None else rate / peak}
        if float32:
            stage |= {"float32_ms": fms, "int8_vs_float32": ms / fms if fms > 0 else None}
        stages.append(stage)
    out = {"model": model.name, "input_size": list(size), "threads": threads, "runs": runs, "stages": stages,
           "total_ms": medians["whole"], "sum_of_stages_ms": sum(s["ms"] for s in stages),
           "peak_gmacs": peak / 1e9, "cut_ms": medians}
    if float32:
        out |= {"float32_total_ms": medians["float32:whole"],
                "int8_vs_float32": medians["whole"] / medians["float32:whole"],
                "float32_peak_gmacs": peak_rate(threads, mode="float32") / 1e9}
    return out


def format_profile(profile: dict) -> str:
    with_float = "float32_total_ms" in profile
    lines = [f"int8 LiteRT/XNNPACK latency by stage, {profile['threads']} thread(s), median of {profile['runs']} "
             f"(truncated models, timed interleaved); peak int8 rate on this CPU: {profile['peak_gmacs']:.1f} GMAC/s "
             f"(1×1 convolution 512→512 on 28×28)"
             + (f", float32 {profile['float32_peak_gmacs']:.1f} GMAC/s" if with_float else ""),
             f"{'stage':<10}{'MACs':>14}{'ms':>9}{'share':>8}{'GMAC/s':>9}{'of peak':>9}"
             + (f"{'fp32 ms':>9}{'int8/fp32':>11}" if with_float else "")]
    for s in profile["stages"]:
        rate = "—" if s["gmacs"] is None else f"{s['gmacs']:.1f}"
        peak = "—" if s["of_peak"] is None else f"{100 * s['of_peak']:.0f} %"
        line = f"{s['stage']:<10}{s['macs']:>14,}{s['ms']:>9.3f}{100 * s['share']:>7.0f}%{rate:>9}{peak:>9}"
        if with_float:
            ratio = "—" if s["int8_vs_float32"] is None else f"{s['int8_vs_float32']:.2f}×"
            line += f"{s['float32_ms']:>9.3f}{ratio:>11}"
        lines.append(line)
    total = f"{'total':<10}{sum(s['macs'] for s in profile['stages']):>14,}{profile['total_ms']:>9.3f}"
    if with_float:
        total += f"{'':>26}{profile['float32_total_ms']:>9.3f}{profile['int8_vs_float32']:>10.2f}×"
    lines.append(total)
    return "\n".join(lines)

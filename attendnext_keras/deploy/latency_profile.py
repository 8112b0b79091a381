"""Where the time goes: int8 LiteRT/XNNPACK latency per stage, beside MACs, and the MAC rate each stage reaches
against this CPU's peak (a large 1×1 convolution, the best case for int8 GEMM kernels).

    profile = latency_profile(model, threads=1)      # {"stages": [...], "total_ms", "peak_gmacs", ...}
    print(format_profile(profile))

LiteRT's Python API has no per-op profiler, so stages are measured by truncation: the model cut after the stem, after
stage 1, … is converted to int8 and timed interleaved with the whole model (`litert.time_interleaved`); a stage's
latency is the difference between consecutive cuts, and the head is the whole model minus the last cut. Memory-bound
layers (depthwise convolutions, small tensors, concatenations) show up as stages far below the peak MAC rate.
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


def peak_rate(threads: int = 1, runs: int = 30) -> float:
    """int8 MACs per second of a large 1×1 convolution on this CPU (the physical limit a stage can approach)."""
    K = _keras.get_keras("keras")
    image = K.Input(PEAK_SHAPE)
    model = K.Model(image, K.layers.Conv2D(PEAK_SHAPE[-1], 1, use_bias=False)(image))
    calibration = np.random.default_rng(0).normal(size=(8, *PEAK_SHAPE)).astype(np.float32)
    samples = litert.time_interleaved({"peak": _int8(model, calibration)}, num_threads=threads, runs=runs)
    macs = PEAK_SHAPE[0] * PEAK_SHAPE[1] * PEAK_SHAPE[2] * PEAK_SHAPE[2]
    return macs / (np.median(samples["peak"]) / 1e3)


def latency_profile(model, threads: int = 1, runs: int = 50, calibration_images: int = 8) -> dict:
    """Per-stage int8 latency (ms, median), MACs, share of the total and achieved MAC rate against the peak."""
    size = tuple(int(d) for d in model.inputs[0].shape[1:3])
    calibration = data.calibration_images(None, size, calibration_images)
    K = _keras.get_keras(_keras.flavour_of(model))
    cuts = stage_cuts(model)
    blobs = {group: _int8(K.Model(model.inputs, tensors), calibration) for group, tensors in cuts}
    blobs["whole"] = _int8(model, calibration)
    medians = {k: float(np.median(v)) for k, v in litert.time_interleaved(blobs, threads, runs=runs).items()}
    groups = profiling.profile(model).by_group()
    peak = peak_rate(threads)
    stages, previous = [], 0.0
    for group in [g for g, _ in cuts] + ["head"]:
        end = medians["whole"] if group == "head" else medians[group]
        ms = end - previous
        previous = end
        macs = groups.get(group, {}).get("macs", 0) + (groups.get("input", {}).get("macs", 0) if group == "stem" else 0)
        rate = macs / (ms / 1e3) if ms > 0 else None
        stages.append({"stage": group, "ms": ms, "macs": macs, "share": ms / medians["whole"],
                       "gmacs": None if rate is None else rate / 1e9,
                       "of_peak": None if rate is None else rate / peak})
    return {"model": model.name, "input_size": list(size), "threads": threads, "runs": runs, "stages": stages,
            "total_ms": medians["whole"], "sum_of_stages_ms": sum(s["ms"] for s in stages),
            "peak_gmacs": peak / 1e9, "cut_ms": medians}


def format_profile(profile: dict) -> str:
    lines = [f"int8 LiteRT/XNNPACK latency by stage, {profile['threads']} thread(s), median of {profile['runs']} "
             f"(truncated models, timed interleaved); peak int8 rate on this CPU: {profile['peak_gmacs']:.1f} GMAC/s "
             f"(1×1 convolution 512→512 on 28×28)",
             f"{'stage':<10}{'MACs':>14}{'ms':>9}{'share':>8}{'GMAC/s':>9}{'of peak':>9}"]
    for s in profile["stages"]:
        rate = "—" if s["gmacs"] is None else f"{s['gmacs']:.1f}"
        peak = "—" if s["of_peak"] is None else f"{100 * s['of_peak']:.0f} %"
        lines.append(f"{s['stage']:<10}{s['macs']:>14,}{s['ms']:>9.3f}{100 * s['share']:>7.0f}%{rate:>9}{peak:>9}")
    lines.append(f"{'total':<10}{sum(s['macs'] for s in profile['stages']):>14,}{profile['total_ms']:>9.3f}")
    return "\n".join(lines)

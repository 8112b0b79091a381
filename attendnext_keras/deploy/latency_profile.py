"""Where the time goes: int8 LiteRT/XNNPACK latency per stage, beside MACs, and the MAC rate each stage reaches
against this CPU's peak (a large 1×1 convolution, the best case for int8 GEMM kernels).

    profile = latency_profile(model, threads=1)      # {"stages": [...], "total_ms", "peak_gmacs", ...}
    print(format_profile(profile))
    instruction_profiles(model, cpus=("cortex-a72",))  # the same cuts, in instructions on emulated Arm cores

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
from attendnext_keras.deploy import arm_cpu, conversion, litert

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
    peak = peak_rate(threads)
    names = [g for g, _ in cuts] + ["head"]
    float_ms = _differences(medians, names, "float32:") if float32 else [None] * len(names)
    stages = []
    for group, ms, fms, macs in zip(names, _differences(medians, names), float_ms, _stage_macs(model, names)):
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


def _stage_macs(model, names) -> list:
    """MACs of each stage in `names` (the stem's include the input layers')."""
    group_macs = profiling.profile(model).by_group()
    return [group_macs.get(group, {}).get("macs", 0) + (group_macs.get("input", {}).get("macs", 0)
                                                        if group == "stem" else 0) for group in names]


def instruction_profiles(model, cpus=("cortex-a72",), calibration_images: int = 8, float32: bool = False) -> list:
    """Where an Arm core's work goes: the same truncated models, converted once and counted on each emulated core
    of `cpus` (`arm_cpu.count_instructions`: repeatable, so a stage, the difference of two counts, carries next to
    no noise), with each stage's MACs per instruction; with `float32`, each stage's float32 count too. One profile
    per core."""
    size = tuple(int(d) for d in model.inputs[0].shape[1:3])
    cuts = stage_cuts(model)
    blobs = _blobs(model, cuts, data.calibration_images(None, size, calibration_images), float32)
    names = [g for g, _ in cuts] + ["head"]
    macs = _stage_macs(model, names)
    return [_counted_profile(model.name, size, cpu, blobs, names, macs, float32) for cpu in cpus]


def _counted_profile(model_name, size, cpu, blobs, names, stage_macs, float32) -> dict:
    counts = {key: arm_cpu.count_instructions(blob, cpu=cpu, invokes=1)["per_inference"] / 1e6
              for key, blob in blobs.items()}
    float_counts = _differences(counts, names, "float32:") if float32 else [None] * len(names)
    stages = []
    for group, n, fn, macs in zip(names, _differences(counts, names), float_counts, stage_macs):
        stage = {"stage": group, "m_instructions": n, "macs": macs, "share": n / counts["whole"],
                 "macs_per_instruction": macs / (n * 1e6) if n > 0 else None}
        if float32:
            stage |= {"float32_m_instructions": fn, "int8_vs_float32": n / fn if fn > 0 else None}
        stages.append(stage)
    return {"model": model_name, "input_size": list(size), "cpu": cpu, "stages": stages,
            "total_m_instructions": counts["whole"], "float32_total_m_instructions": counts.get("float32:whole")}


def instruction_rows(profile: dict) -> tuple:
    """(header, rows) of one `instruction_profiles` profile, float32 columns when it has them, for a table."""
    with_float = profile.get("float32_total_m_instructions") is not None
    header = ["stage", "M MACs", "int8 M instr", "share", "MACs per instr"]
    header += ["float32 M instr", "int8 ÷ float32"] if with_float else []
    rows = []
    for s in profile["stages"]:
        row = [s["stage"], f"{s['macs'] / 1e6:.1f}", f"{s['m_instructions']:.2f}", f"{100 * s['share']:.0f} %",
               "—" if s["macs_per_instruction"] is None else f"{s['macs_per_instruction']:.2f}"]
        if with_float:
            row += [f"{s['float32_m_instructions']:.2f}",
                    "—" if s["int8_vs_float32"] is None else f"{s['int8_vs_float32']:.2f}"]
        rows.append(row)
    total = ["total", f"{sum(s['macs'] for s in profile['stages']) / 1e6:.1f}",
             f"{profile['total_m_instructions']:.2f}", "100 %", ""]
    if with_float:
        total += [f"{profile['float32_total_m_instructions']:.2f}",
                  f"{profile['total_m_instructions'] / profile['float32_total_m_instructions']:.2f}"]
    return header, rows + [total]


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

"""The study's models on the paper's CPU: instructions per inference on an emulated Arm Cortex-A72 (and A76).

Every model of the study (`config.FRONT_MODELS`: the AttendNeXt family, its first design and the MobileNet
peers) is built by `registry.create_model` (random weights, 1000 classes, logits) at 224 px (microcontroller variants
at their own size), converted to float32, to int8 by post-training quantization calibrated on uniform noise
(latency does not depend on the pixels) and to int8 with a float32 stem (`int8-ptq-float-stem`), and run by LiteRT's aarch64 wheel under QEMU with the core's CPU model
(`attendnext_keras.deploy.arm_cpu`): 1 thread, XNNPACK as LiteRT applies it, one warm-up invoke, then
`--invokes` invokes counted one by one. Each model's best format on a core is the one with fewer instructions.

    sudo bash tools/setup_arm_cpu.sh        # once: QEMU, an aarch64 Python, LiteRT for aarch64 (Debian)
    python benchmarks/bench_arm_cpu.py      # ~15 min on 2 cores (the conversions; the counts take ~5 min)
    python benchmarks/bench_arm_cpu.py --markdown-only
    python benchmarks/bench_arm_cpu.py --profile attendnext_tiny attendnext_medium   # stage by stage

Instruction counts repeat to a few hundred in tens of millions (the same on a loaded machine), and they are not time: the study report
(`study.arm_counts`) puts them in its iso-accuracy table and goals beside the x86 latencies and Vela's estimates, named
as counts. Writes results/arm_cpu.json and results/arm_cpu.md atomically, with the command, date, machine, QEMU and
LiteRT versions.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

CALIBRATION_IMAGES = 32
REFERENCE = "mobilenet_v3_large"


def measure(name, cpus, invokes) -> dict:
    """One model's profile and, per core and format, its instructions per inference."""
    from attendnext_keras import data, profiling, registry
    from attendnext_keras.deploy import arm_cpu, conversion
    from attendnext_keras.experiments.benchmark import FORMATS, build_model, model_input_size

    size = model_input_size(name)
    model = build_model(name, size)
    prof = profiling.profile(model)
    images = data.calibration_images(None, size, CALIBRATION_IMAGES)
    blobs = conversion.to_tflite_formats(model, list(FORMATS.values()), representative_data=[images],
                                         calibration_steps=len(images))
    row = {"model": name, "display_name": registry.display_name(name), "family": registry.model_info(name).family,
           "input_size": size, "params": int(prof.params), "macs": int(prof.macs), "counts": {}}
    for cpu in cpus:
        row["counts"][cpu] = {}
        for fmt, mode in FORMATS.items():
            counted = arm_cpu.count_instructions(blobs[mode], cpu=cpu, invokes=invokes)
            row["counts"][cpu][fmt] = {"per_inference": counted["per_inference"], "invokes": counted["invokes"]}
            print(f"{name} {size}px {cpu} {fmt}: {counted['per_inference'] / 1e6:.2f} M instructions "
                  f"(invokes {counted['invokes']})", file=sys.stderr)
    return row


def qemu_version(emu) -> str:
    first = subprocess.run([emu.qemu, "--version"], capture_output=True, text=True).stdout
    return first.splitlines()[0].replace("qemu-aarch64 version ", "") if first else "unknown"


def main(argv=None):
    from attendnext_keras import config as config_module

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cpus", nargs="+", default=["cortex-a72", "cortex-a76"],
                        help="QEMU CPU models (default: cortex-a72 cortex-a76).")
    parser.add_argument("--models", nargs="+", default=list(config_module.FRONT_MODELS),
                        help="Registry names (default: the study's models, config.FRONT_MODELS).")
    parser.add_argument("--invokes", type=int, default=3, help="Counted invokes per model and format (default: 3).")
    parser.add_argument("--out", default=str(HERE / "results"), help="Output folder (default: benchmarks/results).")
    parser.add_argument("--markdown-only", action="store_true",
                        help="Rewrite arm_cpu.md from arm_cpu.json (with --profile: arm_cpu_profile.md from its JSON).")
    parser.add_argument("--profile", nargs="+", metavar="MODEL",
                        help="Instead: where each core's instructions go in these AttendNeXt models, stage by stage "
                             "(deploy.latency_profile.instruction_profiles) → arm_cpu_profile.{json,md}.")
    args = parser.parse_args(argv)

    from attendnext_keras import _io, provenance
    from attendnext_keras.deploy import arm_cpu

    out = pathlib.Path(args.out)
    if args.markdown_only and args.profile:
        stored = _io.read_json(out / "arm_cpu_profile.json", "Arm CPU profile")
        return _io.write_atomic(out / "arm_cpu_profile.md", profile_markdown(stored["profiles"], stored["machine"]))
    if args.markdown_only:
        result = _io.read_json(out / "arm_cpu.json", "Arm CPU result")
    else:
        emu = _check(args, parser, out)
        command = provenance.command_line(["benchmarks/bench_arm_cpu.py", *(sys.argv[1:] if argv is None else argv)])
        info = provenance.machine_info(command)
        info["versions"]["qemu-user"] = qemu_version(emu)
        try:
            if args.profile:
                return write_profiles(args.profile, args.cpus, info, out)
            started = time.time()
            rows = [measure(name, args.cpus, args.invokes) for name in args.models]
        except arm_cpu.EmulationError as error:  # nothing written: the result file is whole or absent
            sys.exit(f"bench_arm_cpu.py: {error}")
        result = {"machine": info, "cpus": args.cpus, "invokes": args.invokes, "threads": 1,
                  "calibration_images": CALIBRATION_IMAGES, "rows": rows, "seconds": round(time.time() - started)}
        _io.write_json(out / "arm_cpu.json", result)
    text = markdown(result)
    _io.write_atomic(out / "arm_cpu.md", text)
    print(text)
    print(f"\nwrote {out / 'arm_cpu.json'} and {out / 'arm_cpu.md'}", file=sys.stderr)


def _check(args, parser, out):
    """Every argument, the emulation (returned) and the output folder, before minutes of conversions: one line
    each."""
    from attendnext_keras import _io, registry
    from attendnext_keras.deploy import arm_cpu

    for cpu in args.cpus:
        if cpu not in arm_cpu.CPUS:
            parser.error(f"unknown Arm CPU {cpu!r}; known: {', '.join(arm_cpu.CPUS)}")
    if not 1 <= args.invokes <= arm_cpu.MAX_INVOKES:
        parser.error(f"--invokes must be between 1 and {arm_cpu.MAX_INVOKES}; got {args.invokes}")
    try:
        for name in args.profile or args.models:
            if args.profile and registry.model_info(name).family != "attendnext":
                parser.error(f"--profile takes AttendNeXt models (their stages are named); {name} is not one")
            registry.model_info(name)
        emu = arm_cpu.emulator()
        _io.check_writable(out / ("arm_cpu_profile.json" if args.profile else "arm_cpu.json"))
    except (ValueError, arm_cpu.EmulationError, OSError) as error:
        parser.error(str(error).splitlines()[0])
    return emu


def write_profiles(names, cpus, info, out):
    """Stage-by-stage instructions of each AttendNeXt model on each core, int8 and float32 → arm_cpu_profile.*"""
    from attendnext_keras import _io
    from attendnext_keras.deploy.latency_profile import instruction_profiles
    from attendnext_keras.experiments.benchmark import build_model, model_input_size

    profiles = []
    for name in names:
        model = build_model(name, model_input_size(name))
        for profile in instruction_profiles(model, cpus=cpus, float32=True):
            profiles.append(profile)
            print(f"{name} {profile['cpu']}: {profile['total_m_instructions']:.2f} M instructions", file=sys.stderr)
    _io.write_json(out / "arm_cpu_profile.json", {"machine": info, "profiles": profiles})
    text = profile_markdown(profiles, info)
    _io.write_atomic(out / "arm_cpu_profile.md", text)
    print(text)


# --------------------------------------------------------------------------------------------------------------------
# Report


def best(row, cpu) -> tuple:
    """(format, instructions per inference) of the format with fewer instructions on `cpu`."""
    from attendnext_keras.deploy import arm_cpu

    return arm_cpu.best_format(row["counts"][cpu])


def markdown(result) -> str:
    from attendnext_keras.experiments.reports import provenance_lines

    lines = ["# The study's front on emulated Arm cores: instructions per inference", ""]
    lines += provenance_lines(result["machine"])
    lines += [f"LiteRT's aarch64 wheel under QEMU user-mode emulation (`attendnext_keras.deploy.arm_cpu`), 1 thread, "
              f"XNNPACK as LiteRT applies it; random weights, 1000 classes, 224 px (micro at its own size); int8 by "
              f"post-training quantization on {result['calibration_images']} noise images (float-stem: the input scaling "
              f"and first convolution left in float32, `int8-ptq-float-stem`). Guest instructions per "
              f"inference, the median of {result['invokes']} invokes counted one by one after a warm-up invoke. "
              "**Counts, not time**: repeatable to a few hundred instructions, but an A72 runs dense NEON GEMMs at up to 3 instructions "
              "a cycle and memory-bound depthwise and elementwise ops at far fewer, so a ratio of counts is a ratio "
              "of time only as far as two models' kernel mixes agree.", ""]
    for cpu in result["cpus"]:
        lines += [f"## {cpu}", "", *_cpu_table(result, cpu), ""]
    return "\n".join(lines)


def _cpu_table(result, cpu) -> list:
    from attendnext_keras.experiments.reports import fmt_count, table

    rows = result["rows"]
    ref = next((r for r in rows if r["model"] == REFERENCE), None)
    ref_best = best(ref, cpu)[1] if ref else None
    out = []
    for r in sorted(rows, key=lambda r: best(r, cpu)[1]):
        counts = r["counts"][cpu]
        fmt, n = best(r, cpu)
        stem = counts.get("int8-float-stem")  # absent from results written before the format was counted
        out.append([r["display_name"], r["input_size"], fmt_count(r["params"]), fmt_count(r["macs"]),
                    f"{counts['int8']['per_inference'] / 1e6:.2f}", f"{counts['float32']['per_inference'] / 1e6:.2f}",
                    f"{stem['per_inference'] / 1e6:.2f}" if stem else "—",
                    f"{counts['int8']['per_inference'] / counts['float32']['per_inference']:.2f}",
                    f"{r['macs'] / counts['int8']['per_inference']:.2f}", fmt,
                    f"{ref_best / n:.2f}×" if ref_best else "—"])
    return [table(["model", "px", "params", "MACs", "int8 M instr", "float32 M instr", "int8 float-stem M instr",
                   "int8 / float32",
                   "MACs per int8 instr", "best", f"× fewer than {REFERENCE} (best)"], out)]


def profile_markdown(profiles, machine) -> str:
    from attendnext_keras.deploy.latency_profile import instruction_rows
    from attendnext_keras.experiments.reports import provenance_lines, table

    lines = ["# Where an Arm core's instructions go, stage by stage", "", *provenance_lines(machine),
             "Each stage's count is the difference between the model cut after it and the model cut before it "
             "(`deploy.latency_profile.instruction_profiles`: the cuts of `attendnext profile --latency`, counted on "
             "the emulated core; counts repeat, so the differences carry next to no noise); the head is the whole model "
             "minus the last cut. Random weights, 1000 classes, int8 by post-training quantization, 1 thread. "
             "Counts, not time.", ""]
    for p in profiles:
        lines += [f"## {p['model']} on {p['cpu']} ({p['input_size'][0]} px)", "", table(*instruction_rows(p)), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()

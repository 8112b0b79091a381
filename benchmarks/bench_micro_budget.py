"""Microcontroller budgets of the `micro` AttendNeXt: TFLite Micro arena and int8 flash at 96 px, against the goals of
issue 15 (arena at most 128 KiB, int8 flash at most 256 KiB), with the 1000-class head the variant is specified with
and with the 5-class head of a flowers deployment.

    python benchmarks/bench_micro_budget.py

Each model is converted to int8 by post-training quantization (16 uniform-noise calibration images, random weights:
sizes and arenas depend on neither) and loaded by the tflite-micro interpreter, which
reports its arena (a 64-bit host measurement: `cortex_m.arena_on_32_bit` estimates a 32-bit target's). The .tflite
bytes are split into the constant tensors (`litert.weight_bytes`), the tensor names, the quantization parameters
(float32 scales and int64 zero points per tensor, per output channel for per-channel weights and biases) and the rest
of the flatbuffer's structure, read with LiteRT's `flatbuffer_utils`. Flash is what `attendnext micro` ships: the
flatbuffer without names, signatures and Support metadata, its per-channel zero points (all 0) shortened to the one
value TFLM reads for every channel (`deploy.micro.strip_for_micro`); the C sources add its
length, a pointer per class and the class names on top (`cortex_m.model_data_bytes`; ~4 KiB of pointers alone for
1000 classes), which depend on the labels and are not counted here. Writes
results/micro_budget.{json,md} with command, date and machine.
"""

import argparse
import os
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
ARENA_GOAL, FLASH_GOAL = 128 * 1024, 256 * 1024  # issue 15: bytes (KiB as the "KB")


def flatbuffer_parts(blob: bytes) -> dict:
    """Bytes of tensor names and of quantization parameters in a .tflite (its first subgraph)."""
    from ai_edge_litert.tools import flatbuffer_utils

    graph = flatbuffer_utils.convert_bytearray_to_object(bytearray(blob)).subgraphs[0]
    names = sum(len(t.name or b"") for t in graph.tensors)
    quant = [t.quantization for t in graph.tensors if t.quantization is not None]
    scales = sum(4 * len(q.scale) for q in quant if q.scale is not None)
    zero_points = sum(8 * len(q.zeroPoint) for q in quant if q.zeroPoint is not None)
    per_channel = sum(1 for q in quant if q.scale is not None and len(q.scale) > 1)
    return {"tensors": len(graph.tensors), "ops": len(graph.operators), "name_bytes": names,
            "quantization_bytes": scales + zero_points, "scale_bytes": scales, "zero_point_bytes": zero_points,
            "per_channel_tensors": per_channel}


def measure(name: str, size: int, classes: int) -> dict:
    import attendnext_keras as an
    from attendnext_keras import data
    from attendnext_keras.deploy import conversion, cortex_m, litert
    from attendnext_keras.deploy.micro import MicroRunner, strip_for_micro

    model = an.create_model(name, input_size=size, classes=classes)
    blob = conversion.to_tflite(model, "int8-ptq", representative_data=data.calibration_images(None, (size, size), 16))
    shipped = strip_for_micro(blob)
    usage = MicroRunner(shipped).arena_usage
    parts = flatbuffer_parts(blob)
    weights = int(litert.weight_bytes(blob))
    structure = len(blob) - weights - parts["name_bytes"] - parts["quantization_bytes"]
    return {"model": name, "input_size": size, "classes": classes, "params": int(model.count_params()),
            "tflite_bytes": len(blob), "c_array_bytes": len(shipped), "weight_bytes": weights, **parts,
            "other_structure_bytes": structure,
            "arena_bytes": usage["total"], "arena_planned": usage["planned"], "arena_persistent": usage["persistent"],
            "arena_32_bit_estimate": cortex_m.arena_on_32_bit(usage),
            "arena_goal_met": usage["total"] <= ARENA_GOAL, "flash_goal_met": len(shipped) <= FLASH_GOAL}


def _kib(value) -> str:
    return f"{value / 1024:.1f}"


def markdown(rows, machine) -> str:
    from attendnext_keras import provenance

    lines = ["# `micro` on microcontrollers: TFLM arena and int8 flash", "", f"Command: `{machine['command']}`", "",
             f"Machine: {provenance.describe(machine)}", "",
             f"Goals (issue 15): TFLM arena ≤ {_kib(ARENA_GOAL)} KiB, int8 flash (the C array `attendnext micro` "
             f"writes: the .tflite without names, signatures and Support metadata, one zero point per per-channel "
             f"tensor) ≤ {_kib(FLASH_GOAL)} KiB. The .tflite splits into weights, tensor names, quantization "
             "parameters (float32 scales, int64 zero points) and other structure. int8 by "
             "post-training quantization; arena measured by the tflite-micro interpreter on this "
             "64-bit host (the 32-bit column estimates a Cortex-M's: TFLM's tensor and node structs halve).", "",
             "| model | px | classes | params | int8 .tflite KiB | C array KiB | weights KiB | tensor names KiB | scales "
             "KiB | zero points KiB | other structure KiB | tensors / ops | arena KiB (planned + persistent) | arena "
             "32-bit KiB | arena goal | flash goal |", "|" + "---|" * 16]
    for r in rows:
        verdict = {True: "met", False: "**missed**"}
        lines.append(
            f"| {r['model']} | {r['input_size']} | {r['classes']} | {r['params']:,} | {_kib(r['tflite_bytes'])} | "
            f"{_kib(r['c_array_bytes'])} | "
            f"{_kib(r['weight_bytes'])} | {_kib(r['name_bytes'])} | {_kib(r['scale_bytes'])} | "
            f"{_kib(r['zero_point_bytes'])} | "
            f"{_kib(r['other_structure_bytes'])} | {r['tensors']} / {r['ops']} | {_kib(r['arena_bytes'])} "
            f"({_kib(r['arena_planned'])} + {_kib(r['arena_persistent'])}) | {_kib(r['arena_32_bit_estimate'])} | "
            f"{verdict[r['arena_goal_met']]} | {verdict[r['flash_goal_met']]} "
            f"({'+' if r['c_array_bytes'] > FLASH_GOAL else '−'}{_kib(abs(r['c_array_bytes'] - FLASH_GOAL))} KiB) |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="attendnext_micro", help="A registry model name or spec .json file.")
    parser.add_argument("--input-size", type=int, default=96, help="Input size in pixels.")
    parser.add_argument("--classes", type=int, nargs="+", default=[1000, 5], help="Head sizes to measure.")
    parser.add_argument("--out", default=str(HERE / "results"), help="Output folder.")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from attendnext_keras import _io, provenance

    rows = []
    for classes in args.classes:
        rows.append(measure(args.model, args.input_size, classes))
        print(f"{args.model} {args.input_size}px {classes} classes: {rows[-1]['c_array_bytes']:,} B, arena "
              f"{rows[-1]['arena_bytes']:,} B", file=sys.stderr)
    machine = provenance.machine_info()
    text = markdown(rows, machine)
    _io.write_result(args.out, "micro_budget", {"machine": machine, "args": vars(args), "goals": {
        "arena_bytes": ARENA_GOAL, "flash_bytes": FLASH_GOAL}, "rows": rows}, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

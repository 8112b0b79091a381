"""Where the int8 time goes, per stage, for AttendNeXt variants at their deployment size: the table
`attendnext profile --latency` prints (`deploy.latency_profile`: truncated models timed interleaved on
LiteRT/XNNPACK, each stage's MAC rate against this CPU's peak for a large 1×1 convolution), for several models in
one run, written with the command, date and machine.

    python benchmarks/bench_latency_profile.py                         # base and large, 224 px, 1000 classes
    python benchmarks/bench_latency_profile.py --models attendnext_small attendnext_medium --runs 100

Random weights (latency does not depend on them), int8 by post-training quantization on uniform noise; every cut is
also timed in float32 in the same rounds (`--no-float32` leaves it out), so each stage shows int8 ÷ float32: where
int8 does not pay on this CPU, and in which stage. Run it on a quiet machine: it times. Writes
results/latency_profile.{json,md} (`--name` another name).
"""

import argparse
import os
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent


def markdown(profiles, machine) -> str:
    from attendnext_keras import provenance

    lines = ["# int8 latency by stage (LiteRT/XNNPACK)", "", f"Command: `{machine['command']}`", "",
             f"Machine: {provenance.describe(machine)}", "",
             "Each stage's time is the difference between the int8 model cut after it and the model cut before it "
             "(timed interleaved with the whole model); the head is the whole model minus the last cut. \"of peak\": "
             "the stage's MACs per second against a 1×1 convolution 512→512 on 28×28, the best case of this CPU's "
             "int8 kernels; \"int8 ÷ fp32\": the stage's int8 time over its float32 time, timed in the same rounds. "
             "Random weights, 1000 classes.", ""]
    for p in profiles:
        lines += [f"## {p['model']} ({p['input_size'][0]} px, {p['threads']} thread, median of {p['runs']})", "",
                  f"Whole model {p['total_ms']:.3f} ms; stages add up to {p['sum_of_stages_ms']:.3f} ms; peak "
                  f"{p['peak_gmacs']:.1f} GMAC/s" + (f" (float32 {p['float32_peak_gmacs']:.1f})" if "float32_total_ms" in p
                                                      else "") + ".", ""]
        if "float32_total_ms" in p:
            lines[-1:-1] = [f"float32: whole model {p['float32_total_ms']:.3f} ms; int8 ÷ float32 "
                            f"{p['int8_vs_float32']:.2f}×.", ""]
        lines += ["| stage | MACs | ms | share | GMAC/s | of peak | fp32 ms | int8 ÷ fp32 |",
                  "|---|---|---|---|---|---|---|---|"]
        for s in p["stages"]:
            rate = "—" if s["gmacs"] is None else f"{s['gmacs']:.1f}"
            peak = "—" if s["of_peak"] is None else f"{100 * s['of_peak']:.0f} %"
            fp32 = "—" if s.get("float32_ms") is None else f"{s['float32_ms']:.3f}"
            ratio = "—" if s.get("int8_vs_float32") is None else f"{s['int8_vs_float32']:.2f}×"
            lines.append(f"| {s['stage']} | {s['macs'] / 1e6:.1f} M | {s['ms']:.3f} | {100 * s['share']:.0f} % | "
                         f"{rate} | {peak} | {fp32} | {ratio} |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["attendnext_base", "attendnext_small", "attendnext_base_v0"],
                        help="AttendNeXt registry names or spec .json files.")
    parser.add_argument("--input-size", type=int, default=224, help="Input size in pixels.")
    parser.add_argument("--threads", type=int, default=1, help="LiteRT threads.")
    parser.add_argument("--runs", type=int, default=50, help="Timed runs per truncated model.")
    parser.add_argument("--no-float32", dest="float32", action="store_false",
                        help="Time int8 only (by default every cut is timed in float32 too).")
    parser.add_argument("--out", default=str(HERE / "results"), help="Output folder.")
    parser.add_argument("--name", default="latency_profile",
                        help="Result name: writes <out>/<name>.{json,md} (another name keeps another CPU's run).")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from attendnext_keras import _io, provenance, registry
    from attendnext_keras.deploy.latency_profile import format_profile, latency_profile

    profiles = []
    for name in args.models:
        model = registry.create_model(name, input_size=args.input_size, classes=1000)
        timing = latency_profile(model, threads=args.threads, runs=args.runs, float32=args.float32)
        profiles.append({**timing, "model": name})
        print(format_profile(profiles[-1]), file=sys.stderr)
    machine = provenance.machine_info()
    text = markdown(profiles, machine)
    _io.write_result(args.out, args.name, {"machine": machine, "args": vars(args), "profiles": profiles}, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

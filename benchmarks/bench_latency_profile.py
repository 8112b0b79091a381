"""Where the int8 time goes, per stage, for AttendNeXt variants at their deployment size: the table
`attendnext profile --latency` prints (`deploy.latency_profile`: truncated models timed interleaved on
LiteRT/XNNPACK, each stage's MAC rate against this CPU's peak for a large 1×1 convolution), for several models in
one run, written with the command, date and machine.

    python benchmarks/bench_latency_profile.py                         # base and large, 224 px, 1000 classes
    python benchmarks/bench_latency_profile.py --models attendnext_small attendnext_medium --runs 100

Random weights (latency does not depend on them), int8 by post-training quantization on uniform noise. Run it on a
quiet machine: it times. Writes results/latency_profile.{json,md}.
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
             "int8 kernels. Random weights, 1000 classes.", ""]
    for p in profiles:
        lines += [f"## {p['model']} ({p['input_size'][0]} px, {p['threads']} thread, median of {p['runs']})", "",
                  f"Whole model {p['total_ms']:.3f} ms; stages add up to {p['sum_of_stages_ms']:.3f} ms; peak "
                  f"{p['peak_gmacs']:.1f} GMAC/s.", "",
                  "| stage | MACs | ms | share | GMAC/s | of peak |", "|---|---|---|---|---|---|"]
        for s in p["stages"]:
            rate = "—" if s["gmacs"] is None else f"{s['gmacs']:.1f}"
            peak = "—" if s["of_peak"] is None else f"{100 * s['of_peak']:.0f} %"
            lines.append(f"| {s['stage']} | {s['macs'] / 1e6:.1f} M | {s['ms']:.3f} | {100 * s['share']:.0f} % | "
                         f"{rate} | {peak} |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["attendnext_base", "attendnext_small", "attendnext_base_v0"],
                        help="AttendNeXt registry names or spec .json files.")
    parser.add_argument("--input-size", type=int, default=224, help="Input size in pixels.")
    parser.add_argument("--threads", type=int, default=1, help="LiteRT threads.")
    parser.add_argument("--runs", type=int, default=50, help="Timed runs per truncated model.")
    parser.add_argument("--out", default=str(HERE / "results"), help="Output folder.")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from attendnext_keras import _io, provenance, registry
    from attendnext_keras.deploy.latency_profile import format_profile, latency_profile

    profiles = []
    for name in args.models:
        model = registry.create_model(name, input_size=args.input_size, classes=1000)
        profiles.append({**latency_profile(model, threads=args.threads, runs=args.runs), "model": name})
        print(format_profile(profiles[-1]), file=sys.stderr)
    machine = provenance.machine_info()
    text = markdown(profiles, machine)
    _io.write_result(args.out, "latency_profile", {"machine": machine, "args": vars(args), "profiles": profiles}, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

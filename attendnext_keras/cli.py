"""The `attendnext` command line. Each subcommand is a thin call into a library function."""

from __future__ import annotations

import argparse
import json
import os
import sys


def _variants():
    from attendnext_keras.specs import list_variants

    return list_variants()


def cmd_variants(args):
    from attendnext_keras.specs import get_spec, summarize_spec

    for name in _variants():
        print(summarize_spec(get_spec(name)) if args.verbose else f"{name:8} {get_spec(name).description}")


def _build(args):
    """The model and the spec it was built from (with --alpha and --input-size applied)."""
    from attendnext_keras.models import AttendNeXt, _resolve_spec

    spec = _resolve_spec(args.variant, None, args.alpha, None, None)
    if args.input_size:
        spec = spec.replace(input_size=args.input_size)
    return AttendNeXt(spec=spec, classes=args.classes), spec


def cmd_profile(args):
    from attendnext_keras.profiling import profile
    from attendnext_keras.specs import summarize_spec

    model, spec = _build(args)
    result = profile(model)
    if args.json:
        print(json.dumps(result.as_dict(), indent=1))
        return
    print(summarize_spec(spec))
    print(result.table(per_layer=args.per_layer))


def cmd_demo(args):
    """Build a variant, profile it, convert to float32 and int8 TFLite, report XNNPACK partitions and latency."""
    import numpy as np

    from attendnext_keras.conversion import to_tflite
    from attendnext_keras.profiling import profile
    from attendnext_keras.runtime import delegation_report, measure_latency
    from attendnext_keras.specs import summarize_spec

    model, spec = _build(args)
    print(summarize_spec(spec))
    print(profile(model).table())
    shape = tuple(model.inputs[0].shape[1:])
    rng = np.random.default_rng(0)
    # The weights are random until a model is trained, so calibration only needs inputs of the right range.
    calibration = [rng.uniform(0, 255, (1,) + shape).astype("float32") for _ in range(16)]
    print(f"\n{'format':<10}{'size KB':>10}{'partitions':>12}{'ops outside XNNPACK':>24}{'median ms (1 thread)':>24}")
    for mode in ("float32", "int8-ptq"):
        blob = to_tflite(model, mode, representative_data=calibration)
        report = delegation_report(blob)
        latency = np.median(measure_latency(blob, num_threads=1, runs=args.runs))
        outside = ",".join(sorted(set(report["ops_outside"]))) or "-"
        print(f"{mode:<10}{len(blob) / 1024:>10.1f}{report['partitions']:>12}{outside:>24}{latency:>24.2f}")


def build_parser():
    parser = argparse.ArgumentParser(prog="attendnext", description="AttendNeXt for Keras: build, profile, convert.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("variants", help="List the registered AttendNeXt variants.")
    p.add_argument("-v", "--verbose", action="store_true", help="Print each variant's full layout.")
    p.set_defaults(func=cmd_variants)

    def model_args(p):
        p.add_argument("--variant", default="micro", choices=_variants(), help="Registered variant to build.")
        p.add_argument("--input-size", type=int, default=None,
                       help="Square input size in pixels (default: the variant's own; a multiple of 32).")
        p.add_argument("--classes", type=int, default=1000, help="Number of classes of the classifier head.")
        p.add_argument("--alpha", type=float, default=None, help="Width multiplier on top of the variant's width.")

    p = sub.add_parser("profile", help="Parameters, MACs and activation memory per stage (and per layer).")
    model_args(p)
    p.add_argument("--per-layer", action="store_true", help="Also list every layer.")
    p.add_argument("--json", action="store_true", help="Print the profile as JSON instead of a table.")
    p.set_defaults(func=cmd_profile)

    p = sub.add_parser("demo", help="Build, profile, convert to float32/int8 TFLite and time a variant with LiteRT.")
    model_args(p)
    p.add_argument("--runs", type=int, default=50, help="Timed invocations per format (after 5 warm-up runs).")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv=None):
    from attendnext_keras._keras import quiet_tensorflow

    quiet_tensorflow()
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (ValueError, FileNotFoundError, RuntimeError) as error:
        print(f"attendnext {args.command}: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

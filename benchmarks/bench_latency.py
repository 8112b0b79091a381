"""AttendNeXt against keras.applications peers: params, MACs, TFLite size, XNNPACK partitions and LiteRT latency.

Every model is converted the same way (batch 1; float32, and int8 by post-training quantization calibrated on real
photographs from flowers160 when present) and timed in the same run, interleaved in rounds so that machine noise hits
all models alike. Ratios are against MobileNetV3-Large's best format (float32 or int8) at the same thread count.

    python benchmarks/bench_latency.py                    # full: base, micro, MobileNetV3-L/S, MobileNetV2
    python benchmarks/bench_latency.py --runs 20 --models base mobilenet_v3_small   # quicker
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import sys
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

HERE = pathlib.Path(__file__).resolve().parent
FLOWERS = HERE.parent.parent / "shared" / "data" / "flowers160"


def build(name):
    import keras

    import attendnext_keras as an

    if name in an.list_variants():
        # Logits out, as deployed: softmax is outside XNNPACK in int8 and argmax does not need it.
        return an.AttendNeXt(variant=name, classifier_activation=None)
    shape = (224, 224, 3)
    peers = {
        "mobilenet_v3_large": lambda: keras.applications.MobileNetV3Large(input_shape=shape, weights=None,
                                                                         classifier_activation=None),
        "mobilenet_v3_small": lambda: keras.applications.MobileNetV3Small(input_shape=shape, weights=None,
                                                                         classifier_activation=None),
        "mobilenet_v2": lambda: keras.applications.MobileNetV2(input_shape=shape, weights=None,
                                                               classifier_activation=None),
        "efficientnet_b0": lambda: keras.applications.EfficientNetB0(input_shape=shape, weights=None,
                                                                     classifier_activation=None),
    }
    if name not in peers:
        raise SystemExit(f"Unknown model {name!r}. Choose from {an.list_variants() + list(peers)}")
    return peers[name]()


def calibration_images(size, count=64):
    """Real photographs when the shared flowers160 folder is there; uniform noise in pixel range otherwise."""
    files = sorted(FLOWERS.glob("train/*/*.jpg"))[::40][:count] if FLOWERS.is_dir() else []
    if not files:
        return np.random.default_rng(0).uniform(0, 255, (8, size, size, 3)).astype("float32"), "uniform noise"
    import tensorflow as tf

    images = [tf.image.resize(tf.io.decode_jpeg(tf.io.read_file(str(f)), channels=3), (size, size)) for f in files]
    return np.stack(images).astype("float32"), f"{len(files)} flowers160 photographs"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+",
                        default=["base", "micro", "mobilenet_v3_large", "mobilenet_v3_small", "mobilenet_v2"],
                        help="AttendNeXt variants and keras.applications peers to compare.")
    parser.add_argument("--runs", type=int, default=100, help="Timed invocations per model, format and thread count.")
    parser.add_argument("--rounds", type=int, default=5, help="Interleaving rounds the runs are split into.")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="LiteRT thread counts to time.")
    parser.add_argument("--out", type=pathlib.Path, default=HERE / "results",
                        help="Folder for latency.json and latency.md.")
    args = parser.parse_args(argv)

    from attendnext_keras.conversion import to_tflite
    from attendnext_keras.profiling import profile
    from attendnext_keras.runtime import delegation_report, measure_latency

    rows, blobs = {}, {}
    for name in args.models:
        model = build(name)
        size = model.inputs[0].shape[1]
        prof = profile(model)
        images, source = calibration_images(size)
        rows[name] = {"input": size, "params": prof.params, "macs": prof.macs, "calibration": source}
        for mode in ("float32", "int8-ptq"):
            start = time.time()
            blob = to_tflite(model, mode, representative_data=[images])
            report = delegation_report(blob)
            fmt = "int8" if mode != "float32" else "float32"
            blobs[(name, fmt)] = blob
            rows[name][fmt] = {"size_kb": round(len(blob) / 1024, 1), "partitions": report["partitions"],
                               "ops_outside": sorted(set(report["ops_outside"])), "latency_ms": {}}
            print(f"converted {name} {fmt} in {time.time() - start:.0f}s: {report['partitions']} partition(s)",
                  file=sys.stderr)

    per_round = max(1, args.runs // args.rounds)
    for threads in args.threads:
        samples = {key: [] for key in blobs}
        for _ in range(args.rounds):
            for key, blob in blobs.items():
                samples[key].append(measure_latency(blob, num_threads=threads, runs=per_round, warmup=3))
        for (name, fmt), chunks in samples.items():
            t = np.concatenate(chunks)
            rows[name][fmt]["latency_ms"][threads] = {"median": round(float(np.median(t)), 3),
                                                      "p90": round(float(np.percentile(t, 90)), 3),
                                                      "p99": round(float(np.percentile(t, 99)), 3), "runs": len(t)}

    reference = "mobilenet_v3_large" if "mobilenet_v3_large" in rows else None
    lines = [f"Device: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; LiteRT with XNNPACK; "
             f"median of {per_round * args.rounds} runs in {args.rounds} interleaved rounds.", "",
             "| model | input | params | MACs | float32 KB | int8 KB | int8 partitions | ops outside XNNPACK (int8) | "
             + " | ".join(f"fp32 ms {t}T | int8 ms {t}T" for t in args.threads)
             + (" | " + " | ".join(f"speed-up vs MNV3-L {t}T" for t in args.threads) if reference else "") + " |",
             "|" + "---|" * (8 + 2 * len(args.threads) + (len(args.threads) if reference else 0))]
    for name, row in rows.items():
        cells = [name, str(row["input"]), f"{row['params'] / 1e6:.2f} M", f"{row['macs'] / 1e6:.1f} M",
                 str(row["float32"]["size_kb"]), str(row["int8"]["size_kb"]), str(row["int8"]["partitions"]),
                 ", ".join(row["int8"]["ops_outside"]) or "—"]
        for t in args.threads:
            cells += [f"{row['float32']['latency_ms'][t]['median']:.2f}", f"{row['int8']['latency_ms'][t]['median']:.2f}"]
        if reference:
            for t in args.threads:
                best = lambda r: min(r["float32"]["latency_ms"][t]["median"], r["int8"]["latency_ms"][t]["median"])  # noqa: E731
                ratio = best(rows[reference]) / best(row)
                row.setdefault("speedup_vs_mnv3l", {})[t] = round(ratio, 2)
                cells.append(f"{ratio:.2f}×")
        lines.append("| " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latency.json").write_text(json.dumps(rows, indent=1))
    (args.out / "latency.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()

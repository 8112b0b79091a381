"""QAT against PTQ against float, on real photographs, after the same fine-tuning budget; float32 vs int8 latency.

1. Train the float model (`--variant`, `--size`, `--epochs`) on an image folder (default: flowers160).
2. From that model, spend the same budget (`--qat-epochs` of the QAT recipe, `QATConfig`) two ways:
   a. quantization-aware fine-tuning → int8 (no calibration);
   b. float fine-tuning → float32 TFLite, and int8 by post-training quantization on 200 training images.
3. Top-1 on the validation split of every format, with LiteRT (XNNPACK).
4. LiteRT latency of float32 and int8 for `base` (224 px, random weights) and the trained model, 1 and 2 threads,
   interleaved (`deploy.litert.time_interleaved`).

    python benchmarks/bench_qat.py --data ../shared/data/flowers160 --size 64 --epochs 25 --qat-epochs 3

Writes results/qat.json and results/qat.md (atomically, with the command, date and machine:
`attendnext_keras.provenance.machine_info()`); the training runs go to results/qat_runs/.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

THREADS = (1, 2)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(HERE.parent.parent / "shared" / "data" / "flowers160"),
                        help="Image folder with train/ and val/ ('default': the embedded photographs) "
                             "(default: ../shared/data/flowers160).")
    parser.add_argument("--variant", default="micro", help="AttendNeXt variant to train (default: micro).")
    parser.add_argument("--size", type=int, default=64, help="Input size for training (default: 64).")
    parser.add_argument("--epochs", type=int, default=25, help="Float training epochs (default: 25).")
    parser.add_argument("--qat-epochs", type=int, default=3, help="Fine-tuning budget for QAT and float (default: 3).")
    parser.add_argument("--batch-size", type=int, default=64, help="Batch size (default: 64).")
    parser.add_argument("--runs", type=int, default=100, help="Timed runs per model and thread count.")
    parser.add_argument("--out", default=str(HERE / "results"), help="Output folder (default: benchmarks/results).")
    args = parser.parse_args(argv)

    from attendnext_keras import cli

    cli.setup_logging()  # the package's notices and progress on stderr, as `attendnext` shows them

    import numpy as np

    import attendnext_keras as an
    from attendnext_keras import _io, data, provenance
    from attendnext_keras.config import TrainConfig
    from attendnext_keras.deploy.conversion import to_tflite, to_tflite_formats
    from attendnext_keras.deploy.litert import delegation_report, evaluate_tflite, latency_stats, time_interleaved
    from attendnext_keras.experiments.benchmark import build_model
    from attendnext_keras.experiments.reports import provenance_lines
    from attendnext_keras.quantization import fine_tune
    from attendnext_keras.training import evaluate, train

    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    _io.check_writable(out / "qat.json")  # before minutes of training
    command = provenance.command_line(["benchmarks/bench_qat.py", *(sys.argv[1:] if argv is None else argv)])
    info = provenance.machine_info(command)
    started = time.time()
    work = out / "qat_runs"
    train_src, val_src = data.load_splits(args.data, "train", "val")
    train_ds = data.make_dataset(train_src, args.size, args.batch_size, training=True, seed=0, crop_scale=(0.25, 1))
    val_ds = data.make_dataset(val_src, args.size, args.batch_size, training=False)
    classes = len(train_src.class_names)

    def build():
        return an.AttendNeXt(variant=args.variant, input_shape=(args.size, args.size, 3), classes=classes,
                             classifier_activation=None)

    base_config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size)  # the default recipe, seed 0
    float_model = train(build, train_ds, val_ds, base_config, out_dir=str(work / "float"), overwrite=True).model
    float_weights = float_model.get_weights()
    float_top1 = evaluate(float_model, val_ds)["top1"]

    budget = TrainConfig.qat(epochs=args.qat_epochs, batch_size=args.batch_size)  # a QATConfig
    qat_model = fine_tune(float_model, train_ds, val_ds, budget, out_dir=str(work / "qat"), overwrite=True).model
    # The same budget spent in float (same recipe, no fake quantization), from the same weights.
    tuned = build()
    tuned.set_weights(float_weights)
    tuned = train(tuned, train_ds, val_ds, budget, out_dir=str(work / "float_tuned"), overwrite=True).model

    calibration = data.calibration_images(train_src, args.size, count=200)
    tuned_blobs = to_tflite_formats(tuned, ["float32", "int8-ptq"], representative_data=calibration)  # one export
    blobs = {"float32": tuned_blobs["float32"], "int8 QAT": to_tflite(qat_model, "int8"),
             "int8 PTQ": tuned_blobs["int8-ptq"]}
    accuracy = {"Keras float (before fine-tuning)": float(float_top1),
                "Keras float (after fine-tuning)": float(evaluate(tuned, val_ds)["top1"]),
                "Keras QAT (fake-quant)": float(evaluate(qat_model, val_ds)["top1"])}
    for name, blob in blobs.items():
        accuracy[f"TFLite {name}"] = float(evaluate_tflite(blob, val_ds)["top1"])

    # Latency does not depend on the weights or the pixels: base at 224 px, random weights, calibrated on noise.
    base_blobs = to_tflite_formats(build_model("attendnext_base", 224), ["float32", "int8-ptq"],
                                   representative_data=data.calibration_images(None, 224, count=32))
    latency_blobs = {f"{args.variant} {args.size}px float32": blobs["float32"],
                     f"{args.variant} {args.size}px int8": blobs["int8 QAT"],
                     "base 224px float32": base_blobs["float32"], "base 224px int8": base_blobs["int8-ptq"]}
    latency, stats = {}, {}
    for threads in THREADS:
        samples = time_interleaved(latency_blobs, threads, runs=args.runs)
        latency[threads] = {k: float(np.median(v)) for k, v in samples.items()}
        stats[threads] = {k: latency_stats(v) for k, v in samples.items()}
    partitions = {k: delegation_report(b)["partitions"] for k, b in latency_blobs.items()}

    info["load_average_after"] = provenance.load_average()
    result = {"machine": info, "args": vars(args), "classes": train_src.class_names,
              "train_images": train_src.num_examples, "val_images": val_src.num_examples,
              "recipes": {"float": base_config.to_dict(), "fine_tuning": budget.to_dict()},
              "accuracy": accuracy, "latency_ms": latency, "latency_stats_ms": stats, "partitions": partitions,
              "sizes": {k: len(b) for k, b in latency_blobs.items()}, "seconds": time.time() - started}
    paths = [_io.write_json(out / "qat.json", result)]
    ref = accuracy["TFLite float32"]
    lines = [*provenance_lines(info),
             f"{train_src.num_examples} training / {val_src.num_examples} validation images, "
             f"{args.variant} at {args.size} px, {args.epochs} float epochs, then {args.qat_epochs} epochs of "
             f"fine-tuning each way ({result['seconds'] / 60:.0f} min)", "",
             "| format | top-1 | vs TFLite float32 |", "|---|---|---|"]
    lines += [f"| {k} | {v:.1%} | {100 * (v - ref):+.1f} pt |" for k, v in accuracy.items()]
    lines += ["", "| model | size KiB | XNNPACK partitions | "
              + " | ".join(f"median ms, {t} thread{'s' if t > 1 else ''}" for t in THREADS) + " |",
              "|---|---|---|" + "---|" * len(THREADS)]
    lines += [f"| {k} | {result['sizes'][k] / 1024:.0f} | {partitions[k]} | "
              + " | ".join(f"{latency[t][k]:.3f}" for t in THREADS) + " |" for k in latency_blobs]
    paths.append(_io.write_atomic(out / "qat.md", "\n".join(lines) + "\n"))
    print("\n".join(lines))
    print("\nwrote " + ", ".join(map(str, paths)), file=sys.stderr)


if __name__ == "__main__":
    main()

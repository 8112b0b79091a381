"""Training benchmark: throughput of AttendNeXt against keras.applications MobileNetV3, and proxy accuracy from
scratch with one recipe, on this machine, in one run.

1. Throughput: images/s of a training step (forward, backward, AdamW update) for each model at each size, measured
   after the first (tracing) step on cached batches, models in turn.
2. Proxy accuracy: each model trained from scratch on an image folder (default flowers160) with the same recipe,
   epochs, input size and seed (attendnext_keras.training.train, the default TrainConfig recipe); validation top-1
   of the final weights.

Models are names from `attendnext_keras.list_models()`, built by `attendnext_keras.create_model` (random weights,
logits).

    python benchmarks/bench_training.py --sizes 128 224 --steps 10 --accuracy-size 64 --epochs 12

Writes results/training.json, results/training.md and results/accuracy.json ({model: {"top1": ..., settings,
"machine": ...}}, which `bench_peers.py --accuracies` draws against latency), each atomically and each with the
command, date and machine (`attendnext_keras.provenance.machine_info()`).
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

MODELS = ("attendnext_base", "mobilenet_v3_large", "mobilenet_v3_small")


def throughput(name, size, batch, steps):
    import keras
    import numpy as np

    from attendnext_keras.experiments.benchmark import build_model

    model = build_model(name, size, 1000)  # logits
    model.compile(optimizer=keras.optimizers.AdamW(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (batch, size, size, 3)).astype("float32")
    y = rng.integers(0, 1000, batch)
    start = time.perf_counter()
    model.train_on_batch(x, y)
    first = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)
    return {"images_per_second": steps * batch / (time.perf_counter() - start), "first_step_s": first}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(MODELS),
                        help=f"Registered models (attendnext models) (default: {' '.join(MODELS)}).")
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 224], help="Throughput input sizes.")
    parser.add_argument("--batch-size", type=int, default=32, help="Batch size (default: 32).")
    parser.add_argument("--steps", type=int, default=10, help="Timed training steps per model and size.")
    parser.add_argument("--data", default=str(HERE.parent.parent / "shared" / "data" / "flowers160"),
                        help="Image folder with train/ and val/ ('default': the embedded photographs) for the proxy "
                             "accuracy run.")
    parser.add_argument("--accuracy-size", type=int, default=64, help="Input size of the proxy accuracy run.")
    parser.add_argument("--epochs", type=int, default=12, help="Epochs of the proxy accuracy run (0 skips it).")
    parser.add_argument("--out", default=str(HERE / "results"), help="Output folder (default: benchmarks/results).")
    args = parser.parse_args(argv)

    from attendnext_keras import cli

    cli.setup_logging()  # the package's notices and progress on stderr, as `attendnext` shows them

    from attendnext_keras import _io, data, provenance, registry
    from attendnext_keras.config import TrainConfig
    from attendnext_keras.experiments.benchmark import build_model, resolve_models
    from attendnext_keras.experiments.reports import provenance_lines
    from attendnext_keras.training import evaluate, train

    try:
        models = resolve_models(args.models)
    except ValueError as error:
        parser.error(str(error))
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    _io.check_writable(out / "training.json")  # before minutes of training
    command = provenance.command_line(["benchmarks/bench_training.py", *(sys.argv[1:] if argv is None else argv)])
    info = provenance.machine_info(command)
    started = time.time()
    speed = {name: {size: throughput(name, size, args.batch_size, args.steps) for size in args.sizes}
             for name in models}
    accuracy, histories, config = {}, {}, None
    if args.epochs:
        train_src, val_src = data.load_splits(args.data, "train", "val")
        size = args.accuracy_size
        train_ds = data.make_dataset(train_src, size, args.batch_size, training=True, seed=0, crop_scale=(0.25, 1))
        val_ds = data.make_dataset(val_src, size, args.batch_size, training=False)
        config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size)  # the default recipe, seed 0
        for name in models:
            run = train(lambda: build_model(name, size, len(train_src.class_names)), train_ds, val_ds, config,
                        out_dir=str(out / "training_runs" / name), verbose=0, overwrite=True)
            accuracy[name] = float(evaluate(run.model, val_ds)["top1"])
            histories[name] = run.history.get("val_accuracy")

    info["load_average_after"] = provenance.load_average()
    result = {"machine": info, "args": vars(args), "models": models,
              "display_names": {name: registry.display_name(name) for name in models},
              "recipe": config.to_dict() if config else None,
              "throughput": speed, "accuracy": accuracy, "val_accuracy_history": histories,
              "seconds": time.time() - started}
    paths = [_io.write_json(out / "training.json", result)]
    if accuracy:
        # {model: {"top1": ...}}: what `load_accuracies` (bench_peers.py --accuracies) reads, with its provenance.
        settings = {"data": args.data, "split": "val", "input_size": args.accuracy_size, "epochs": args.epochs,
                    "batch_size": args.batch_size}
        paths.append(_io.write_json(out / "accuracy.json", {name: {"top1": top1, **settings, "machine": info}
                                                            for name, top1 in accuracy.items()}))
    ref = models[1] if len(models) > 1 else models[0]
    lines = [*provenance_lines(info),
             f"{result['seconds'] / 60:.0f} min; batch {args.batch_size}, AdamW, {info['cpu_count']} CPU(s)", "",
             "| model | " + " | ".join(f"img/s at {s} px | vs {ref}" for s in args.sizes) +
             (f" | val top-1 ({args.epochs} epochs, {args.accuracy_size} px) |" if accuracy else " |"),
             "|---|" + "---|---|" * len(args.sizes) + ("---|" if accuracy else "")]
    for name in models:
        cells = [f"{speed[name][s]['images_per_second']:.1f} | "
                 f"{speed[name][s]['images_per_second'] / speed[ref][s]['images_per_second']:.2f}×"
                 for s in args.sizes]
        lines.append(f"| {name} | " + " | ".join(cells)
                     + (f" | {accuracy[name]:.1%} |" if accuracy else " |"))
    paths.append(_io.write_atomic(out / "training.md", "\n".join(lines) + "\n"))
    print("\n".join(lines))
    print("\nwrote " + ", ".join(map(str, paths)), file=sys.stderr)


if __name__ == "__main__":
    main()

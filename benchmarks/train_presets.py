"""Trains the presets shipped with the package and records how each was measured.

    python benchmarks/train_presets.py                                   # both presets (~2 + ~10 min on 2 cores)
    python benchmarks/train_presets.py --only micro_flowers_mini64
    python benchmarks/train_presets.py --flowers ../shared/data/flowers160 --epochs 30

Each preset: the micro AttendNeXt, the main job's float recipe (TrainConfig defaults: AdamW, lr 3e-3, cosine with one
warm-up epoch, label smoothing 0.1, BatchNorm momentum 0.9, batch 32, seed 0; random resized crops of at least 25 %
of the area), a fixed number of epochs chosen before training, and the final weights (nothing is selected on a held-out
image). Accuracy: top-1 of the final float model through the evaluation transform (crop_pct 0.875). Latency: the
int8 post-training-quantized .tflite (200 training images for calibration), LiteRT/XNNPACK, 1 thread, median.

    micro_flowers_mini64   the embedded photographs (400 train) at 64 px; top-1 on the 100 embedded val photographs
    micro_flowers160_96    flowers160 train (2,934) at 96 px; top-1 on the test half of val (data.holdout_split, 368
                           images), the selection half reported beside it

Writes attendnext_keras/presets/<name>/ (save_preset) and benchmarks/results/presets.json + presets.md; the training
runs stay in runs/presets/ (git-ignored).
"""

import argparse
import os
import pathlib
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
LICENCE = ("Apache-2.0 (weights, as the package). The training photographs are TensorFlow's flower_photos, CC-BY 2.0; "
           "their authors are credited in the archive's LICENSE.txt.")
PRESETS = {
    "micro_flowers_mini64": dict(
        source="default", size=64, description="AttendNeXt micro, 64 px, 5 flower classes, trained on the 400 "
                                               "photographs embedded in the package (a demonstration).",
        limitations="Five flower classes and 400 small training photographs: a demonstration, a test fixture and a "
                    "start for fine-tuning, not a general flower classifier. The embedded val photographs were "
                    "looked at while "
                    "the package's default recipe was set (BatchNorm momentum), so they are not a pristine test "
                    "set. Float weights; int8 comes from `attendnext qat` + `export` or post-training quantization."),
    "micro_flowers160_96": dict(
        source=None, size=96, description="AttendNeXt micro, 96 px, 5 flower classes, trained on flowers160 "
                                          "(2,934 photographs of TensorFlow's flower_photos).",
        limitations="Five flower classes (daisy, dandelion, roses, sunflowers, tulips) of one photo collection; "
                    "not evaluated on other photographs. Float weights; int8 comes from `attendnext qat` + "
                    "`export` or post-training quantization."),
}


def _splits(source, flowers):
    """(train, monitor, test, data description): what trains, what is only watched, what is reported."""
    from attendnext_keras import data

    if source == "default":
        train, val = data.load_splits("default")
        about = {"train": f"flowers_mini/train, {train.num_examples} photographs (80 per class, shorter side 80 px)",
                 "test": f"flowers_mini/val, {val.num_examples} photographs (20 per class), never trained on",
                 "source": "TensorFlow flower_photos (tf_flowers), CC-BY 2.0, via the package's embedded copy"}
        return train, None, val, about
    train, val = data.load_splits(flowers)
    selection, test = data.holdout_split(val)
    about = {"train": f"flowers160/train, {train.num_examples} photographs (shorter side 160 px)",
             "selection": f"flowers160/val selection half, {selection.num_examples} photographs (watched only)",
             "test": f"flowers160/val test half (data.holdout_split(val)[1], seed 0), {test.num_examples} "
                     f"photographs, nothing chosen on it",
             "source": "TensorFlow flower_photos (tf_flowers), CC-BY 2.0"}
    return train, selection, test, about


def _int8_latency(model, train, size):
    from attendnext_keras import data, provenance
    from attendnext_keras.deploy import conversion, litert

    blob = conversion.to_tflite(model, "int8-ptq", representative_data=data.calibration_images(train, size, 200))
    stats = litert.latency_stats(litert.measure_latency(blob, num_threads=1, runs=200))
    return {"int8_median_ms": round(stats["median"], 4), "int8_p90_ms": round(stats["p90"], 4),
            "int8_tflite_kib": round(len(blob) / 1024, 1),
            "how": f"int8 post-training quantization (200 training images), LiteRT/XNNPACK, 1 thread, 200 runs on "
                   f"random input; {provenance.describe(provenance.machine_info())} (a shared machine: with a "
                   f"load average above 2, an upper bound)"}


def train_preset(name, flowers, epochs, out_root):
    from attendnext_keras import data, presets, registry
    from attendnext_keras.config import TrainConfig
    from attendnext_keras.training import evaluate, train

    recipe = PRESETS[name]
    size = recipe["size"]
    train_src, monitor, test, about = _splits(recipe["source"], flowers)
    config = TrainConfig(epochs=epochs, seed=0)
    train_ds = data.make_dataset(train_src, size, config.batch_size, training=True, seed=config.seed,
                                 crop_scale=(0.25, 1.0))
    monitor_ds = None if monitor is None else data.make_dataset(monitor, size, 64, training=False)
    started = time.perf_counter()
    result = train(lambda: registry.create_model("attendnext_micro", input_size=size, classes=train_src.num_classes),
                   train_ds, monitor_ds, config, out_dir=str(out_root / name), overwrite=True, verbose=0)
    seconds = time.perf_counter() - started
    model = result.model
    metrics = {"test_top1": evaluate(model, data.make_dataset(test, size, 64, training=False))["top1"],
               "test_images": test.num_examples}
    if monitor is not None:
        metrics["selection_top1"] = evaluate(model, monitor_ds)["top1"]
    metrics["how"] = (f"final weights after {epochs} epochs (nothing selected on held-out images), float Keras, "
                      f"evaluation transform (resize, center crop 0.875) at {size} px; test: {about['test']}")
    latency = _int8_latency(model, train_src, size)
    error = 100 * (metrics["test_top1"] * (1 - metrics["test_top1"]) / test.num_examples) ** 0.5
    limitations = (f"{recipe['limitations']} One seed; the binomial standard error of the test top-1 is about "
                   f"{error:.1f} points ({test.num_examples} images).")
    path = presets.save_preset(
        model, ROOT / "attendnext_keras" / "presets" / name, class_names=train_src.class_names, recipe=config,
        metrics=metrics, latency=latency, description=recipe["description"], training_data=about,
        licence=LICENCE, limitations=limitations, overwrite=True,
        intended_use=f"Classifying {size}×{size} photographs of the five flower classes; a small trained start for "
                     f"fine-tuning (`from_preset(name, classes=N)`), for QAT (`flavour='tf_keras'`) and for the "
                     f"int8 / TensorFlow Lite Micro path; examples and tests.")
    return {"name": name, "path": str(pathlib.Path(path).relative_to(ROOT)), "input_size": size, "epochs": epochs,
            "train_seconds": round(seconds, 1), "metrics": metrics, "latency": latency, "data": about,
            "recipe": config.to_dict(), "weights_bytes": os.path.getsize(pathlib.Path(path) / "model.weights.h5"),
            "parameter_count": int(model.count_params()),
            "val_curve": [round(v, 4) for v in result.history.get("val_accuracy", [])]}


def _markdown(results, info):
    from attendnext_keras import provenance

    lines = [f"Command: `{info['command']}`", "", f"Machine: {provenance.describe(info)}", "",
             "| preset | px | epochs | train s | params | weights KiB | test top-1 | test images | selection top-1 | "
             "int8 ms (1 thread) |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        m = r["metrics"]
        selection = f"{m['selection_top1']:.1%}" if "selection_top1" in m else "—"
        lines.append(f"| {r['name']} | {r['input_size']} | {r['epochs']} | {r['train_seconds']:.0f} | "
                     f"{r['parameter_count']:,} | {r['weights_bytes'] / 1024:.0f} | {m['test_top1']:.1%} | "
                     f"{m['test_images']} | {selection} | {r['latency']['int8_median_ms']:.3f} |")
    lines += ["", *(f"* {r['name']}: {r['metrics']['how']}" for r in results), ""]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=sorted(PRESETS), default=None, help="Train one preset.")
    parser.add_argument("--flowers", default=str(ROOT.parent / "shared" / "data" / "flowers160"),
                        help="The flowers160 image folder (default: %(default)s).")
    parser.add_argument("--epochs", type=int, default=30, help="Epochs of every preset (default: %(default)s).")
    parser.add_argument("--out", default="runs/presets", help="Training runs (default: %(default)s).")
    args = parser.parse_args(argv)

    from attendnext_keras import _io, provenance

    info = provenance.machine_info()
    results_path = HERE / "results" / "presets.json"
    previous = _io.read_json(results_path)["presets"] if results_path.exists() else []
    names = [args.only] if args.only else list(PRESETS)
    results = {r["name"]: r for r in previous}
    out_root = pathlib.Path(args.out)
    out_root.mkdir(parents=True, exist_ok=True)
    for name in names:
        results[name] = train_preset(name, args.flowers, args.epochs, out_root)
        results[name]["provenance"] = provenance.machine_info()
        ordered = [results[n] for n in PRESETS if n in results]
        _io.write_json(results_path, {"provenance": info, "presets": ordered})
        _io.write_atomic(HERE / "results" / "presets.md", _markdown(ordered, info))
        print(f"{name}: test top-1 {results[name]['metrics']['test_top1']:.1%}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    sys.exit(main())

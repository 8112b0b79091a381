"""Fine-tuning from a preset against training from scratch, on a small image folder made from flowers160.

    python benchmarks/bench_preset_fine_tune.py                                 # both presets, seeds 0 and 1 (~5 min)
    python benchmarks/bench_preset_fine_tune.py --classes daisy roses tulips --train-per-class 30 --epochs 30

The folder: `--classes` of ../shared/data/flowers160 (default: the first three, sorted), `--train-per-class` training
photographs each drawn at random (seed 0) from flowers160/train *outside* the 80 per class embedded in the package
(so micro_flowers_mini64 never saw them), and all their val photographs, halved by `data.holdout_split`: the
selection half is watched, the test half reported. Each preset's model is fine-tuned with a new 3-class head
(`fine_tune_from_preset`), and the same architecture at the same size is trained from scratch, with one recipe
(TrainConfig defaults, `--epochs`) and the same seeds; final weights, top-1 on the test half.

What it shows and what not: the presets were trained on all five flower classes, these three among them, and
micro_flowers160_96 on all of flowers160/train (these training photographs included), so this measures the value of
a same-domain preset on a small folder, not transfer to classes the preset never saw.

Writes benchmarks/results/preset_fine_tune.json + .md.
"""

import argparse
import os
import pathlib
import sys
import tempfile

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
EMBEDDED_PER_CLASS = 80  # flowers_mini/train holds the first 80 names per class of flowers160/train (its README)


def make_folder(flowers, classes, per_class, root, seed=0):
    """root/train/<class>/ (per_class photographs outside the embedded ones) and root/val/<class>/ (all), as links."""
    rng = np.random.default_rng(seed)
    for name in classes:
        photos = sorted((flowers / "train" / name).glob("*.jpg"))[EMBEDDED_PER_CLASS:]
        chosen = [photos[i] for i in sorted(rng.choice(len(photos), per_class, replace=False))]
        for split, files in (("train", chosen), ("val", sorted((flowers / "val" / name).glob("*.jpg")))):
            folder = root / split / name
            folder.mkdir(parents=True)
            for photo in files:
                (folder / photo.name).symlink_to(photo.resolve())
    return root


def run(preset, start, train_source, selection, test, epochs, seed, out_dir):
    from attendnext_keras import data, presets, registry
    from attendnext_keras.config import TrainConfig
    from attendnext_keras.training import evaluate, train

    size = presets.preset_info(preset).input_size
    config = TrainConfig(epochs=epochs, seed=seed)
    monitor = data.make_dataset(selection, size, 64, training=False)
    if start == "preset":
        result = presets.fine_tune_from_preset(preset, train_source, selection, config=config, out_dir=out_dir,
                                               verbose=0)
    else:
        train_ds = data.make_dataset(train_source, size, config.batch_size, training=True, seed=seed,
                                     crop_scale=(0.25, 1.0))
        result = train(lambda: registry.create_model("attendnext_micro", input_size=size,
                                                     classes=train_source.num_classes),
                       train_ds, monitor, config, out_dir=out_dir, verbose=0)
    test_ds = data.make_dataset(test, size, 64, training=False)
    return {"preset": preset, "start": start, "seed": seed, "input_size": size, "epochs": epochs,
            "test_top1": evaluate(result.model, test_ds)["top1"],
            "selection_top1": evaluate(result.model, monitor)["top1"]}


def _summary(runs):
    rows = {}
    for r in runs:
        rows.setdefault((r["preset"], r["start"]), []).append(r["test_top1"])
    return [{"preset": p, "start": s, "test_top1_mean": float(np.mean(v)), "test_top1_per_seed": v}
            for (p, s), v in rows.items()]


def _markdown(result, info):
    from attendnext_keras import provenance

    setup = result["setup"]
    lines = [f"Command: `{info['command']}`", "", f"Machine: {provenance.describe(info)}", "",
             f"Classes {', '.join(setup['classes'])}; {setup['train_images']} training photographs, "
             f"{setup['selection_images']} selection (watched only), {setup['test_images']} test; {setup['epochs']} "
             f"epochs, TrainConfig defaults; seeds {setup['seeds']}; final weights.", "",
             "| preset (size) | start | test top-1, mean | per seed |", "|---|---|---|---|"]
    for row in result["summary"]:
        per_seed = ", ".join(f"{v:.1%}" for v in row["test_top1_per_seed"])
        lines.append(f"| {row['preset']} | {row['start']} | {row['test_top1_mean']:.1%} | {per_seed} |")
    lines += ["", setup["caveat"], ""]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--flowers", default=str(ROOT.parent / "shared" / "data" / "flowers160"))
    parser.add_argument("--classes", nargs="+", default=["daisy", "dandelion", "roses"])
    parser.add_argument("--train-per-class", type=int, default=30)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--presets", nargs="+", default=["micro_flowers_mini64", "micro_flowers160_96"])
    args = parser.parse_args(argv)

    from attendnext_keras import _io, data, provenance

    info = provenance.machine_info()
    with tempfile.TemporaryDirectory(prefix="preset-fine-tune-") as tmp:
        root = make_folder(pathlib.Path(args.flowers), args.classes, args.train_per_class, pathlib.Path(tmp) / "few")
        train_source, val_source = data.load_splits(root)
        selection, test = data.holdout_split(val_source)
        runs = []
        for preset in args.presets:
            for seed in args.seeds:
                for start in ("preset", "scratch"):
                    out = pathlib.Path(tmp) / "runs" / f"{preset}_{start}_{seed}"
                    runs.append(run(preset, start, train_source, selection, test, args.epochs, seed, out))
                    print(runs[-1], file=sys.stderr)
    result = {"provenance": info, "runs": runs, "summary": _summary(runs), "setup": {
        "classes": args.classes, "train_images": train_source.num_examples, "selection_images": selection.num_examples,
        "test_images": test.num_examples, "epochs": args.epochs, "seeds": args.seeds,
        "caveat": "The presets were trained on all five flower classes (these three among them); micro_flowers160_96 "
                  "also on these training photographs (all of flowers160/train), micro_flowers_mini64 not (they lie "
                  "outside the embedded 80 per class). Same-domain value, not transfer to unseen classes."}}
    _io.write_json(HERE / "results" / "preset_fine_tune.json", result)
    _io.write_atomic(HERE / "results" / "preset_fine_tune.md", _markdown(result, info))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    sys.exit(main())

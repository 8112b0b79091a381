"""What ImageNet training costs: training throughput of each ImageNet recipe's model on this CPU, and estimates for
8 GPUs scaled from a published MobileNetV3 training log.

    python benchmarks/bench_imagenet_throughput.py                 # the configs/imagenet_*.yaml models + MobileNetV3

Each model trains `--steps` steps of `--batch-size` synthetic 224-px images (its recipe's size; 1000 classes) with
its recipe's optimizer and schedule (`training.make_optimizer`), after one untimed pass that traces the step; input
decoding is left out (it is the data pipeline's cost, not the model's). What this CPU does is measured. What 8 GPUs
would do is an **estimate**: GluonCV's published ImageNet log of MobileNetV3-Large (8 GPUs, float16, MXNet,
https://raw.githubusercontent.com/dmlc/web-data/master/gluoncv/logs/classification/imagenet/mobilenetv3_large.log)
runs at about 9,000 images/s; each model's rate is taken as that × (its CPU rate / MobileNetV3-Large's CPU rate),
which assumes the GPU favours the models as this CPU does (depthwise-heavy models usually do worse on GPUs). No
published MobileNet training rate for TPU v4 was available here, so no TPU estimate is made. Writes
results/imagenet_throughput.{json,md} with command, date and machine.
"""

import argparse
import os
import pathlib
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
IMAGENET_TRAIN_IMAGES = 1_281_167
GLUONCV_MNV3_LARGE_8GPU = 9000.0  # images/s, read off the log above (batches 150-350 of epoch 0: 8,800-9,140)
REFERENCE = "mobilenet_v3_large"


def measure(name, size, recipe, steps):
    import keras
    import numpy as np

    from attendnext_keras import registry
    from attendnext_keras.training import make_optimizer

    keras.backend.clear_session()
    model = registry.create_model(name, input_size=size, classes=1000)
    model.compile(optimizer=make_optimizer(keras, recipe, steps_per_epoch=1000),
                  loss=keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=recipe.label_smoothing))
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (recipe.batch_size, size, size, 3)).astype("float32")
    labels = np.eye(1000, dtype="float32")[rng.integers(0, 1000, recipe.batch_size)]
    model.train_on_batch(images, labels)  # traces the step
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(images, labels)
    return steps * recipe.batch_size / (time.perf_counter() - start)


def _row(name, size, rate, reference_rate, epochs):
    gpu_rate = GLUONCV_MNV3_LARGE_8GPU * rate / reference_rate
    cpu_days = epochs * IMAGENET_TRAIN_IMAGES / rate / 86400
    gpu_hours = epochs * IMAGENET_TRAIN_IMAGES / gpu_rate / 3600
    return {"model": name, "input_size": size, "cpu_images_per_s": round(rate, 2),
            "relative_to_mnv3_large": round(rate / reference_rate, 3), "cpu_days": round(cpu_days, 1),
            "est_8gpu_images_per_s": round(gpu_rate), "est_8gpu_wall_hours": round(gpu_hours, 1),
            "est_gpu_hours": round(8 * gpu_hours)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=5, help="Timed steps per model.")
    parser.add_argument("--batch-size", type=int, default=32, help="Per-step batch on this CPU.")
    parser.add_argument("--out", default=str(HERE / "results"), help="Output folder.")
    args = parser.parse_args(argv)

    from attendnext_keras import _io, provenance, registry
    from attendnext_keras.config import example_configs, load_config

    recipes = {name: load_config(path) for name, path in sorted(example_configs().items())
               if name.startswith("imagenet_")}
    plan = [(c.model.name, c.model.input_size or registry.model_info(c.model.name).input_size, c) for c in
            recipes.values()]
    base = next(iter(recipes.values()))
    plan += [(REFERENCE, 224, base), ("mobilenet_v3_small", 224, base)]
    rates = {}
    for name, size, config in plan:
        recipe = config.train.replace(batch_size=args.batch_size)
        rates[name] = (size, measure(name, size, recipe, args.steps), config.train.epochs)
        print(f"{name} {size}px: {rates[name][1]:.1f} img/s", file=sys.stderr)
    reference = rates[REFERENCE][1]
    rows = [_row(name, size, rate, reference, epochs) for name, (size, rate, epochs) in rates.items()]
    machine = provenance.machine_info()
    os.makedirs(args.out, exist_ok=True)
    _io.write_json(os.path.join(args.out, "imagenet_throughput.json"),
                   {"machine": machine, "args": vars(args), "epochs": base.train.epochs,
                    "reference_8gpu_images_per_s": GLUONCV_MNV3_LARGE_8GPU, "rows": rows})
    _io.write_atomic(os.path.join(args.out, "imagenet_throughput.md"), _markdown(rows, machine, args, base))
    print(_markdown(rows, machine, args, base))
    return 0


def _markdown(rows, machine, args, base):
    from attendnext_keras import provenance

    lines = [f"Command: `{machine['command']}`", "", f"Machine: {provenance.describe(machine)}", "",
             f"Training throughput with each recipe's optimizer, batch {args.batch_size} of synthetic images, "
             f"{args.steps} timed steps after one untimed step, 1000 classes. Days on this CPU and the 8-GPU columns "
             f"are for {base.train.epochs} epochs of {IMAGENET_TRAIN_IMAGES:,} images. **The 8-GPU columns are "
             f"estimates**: {GLUONCV_MNV3_LARGE_8GPU:,.0f} img/s (GluonCV's MobileNetV3-Large log, 8 GPUs, fp16) "
             f"scaled by the CPU ratio; no TPU v4 estimate (no published rate to scale).", "",
             "| model | px | img/s (this CPU) | × MobileNetV3-L | days (this CPU) | est. img/s (8 GPUs) | "
             "est. hours (8 GPUs) | est. GPU-hours |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['input_size']} | {r['cpu_images_per_s']:.1f} | "
                     f"{r['relative_to_mnv3_large']:.2f} | {r['cpu_days']:,.0f} | {r['est_8gpu_images_per_s']:,} | "
                     f"{r['est_8gpu_wall_hours']:.1f} | {r['est_gpu_hours']:,} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.exit(main())

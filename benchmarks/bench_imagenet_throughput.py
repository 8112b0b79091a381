"""What ImageNet training costs: training throughput of each ImageNet recipe's model on this CPU, and estimates for
8 GPUs scaled from a published MobileNetV3 training log.

    python benchmarks/bench_imagenet_throughput.py                 # the configs/imagenet_*.yaml models + MobileNetV3

Each model trains `--steps` steps of `--batch-size` synthetic 224-px images (its recipe's size; 1000 classes) with
its recipe's optimizer and schedule (`training.make_optimizer`), after one untimed pass that traces the step; input
decoding is left out (it is the data pipeline's cost, not the model's). What this CPU does is measured. What 8 GPUs
would do is an **estimate** from GluonCV's published ImageNet logs, 8 GPUs, float16, MXNet
(https://raw.githubusercontent.com/dmlc/web-data/master/gluoncv/logs/classification/imagenet/mobilenetv3_large.log
and mobilenetv3_small.log): MobileNetV3-Large about 9,000 images/s, MobileNetV3-Small about 10,500. On this CPU Small
trains ~2.9× faster than Large; on those GPUs only ~1.17× (small mobile networks are bound by memory traffic and input
decoding there, not by MACs). So the estimate is 9,000 × (CPU ratio to MobileNetV3-Large)^k, with k fitted so that
MobileNetV3-Small lands on its published rate (k = ln 1.17 / ln 2.9 ≈ 0.15 on the reference machine). No published
MobileNet training rate for TPU v4 was available here, so no TPU estimate is made. `--from-json` recomputes the
tables from a saved run without measuring. Writes results/imagenet_throughput.{json,md} with command, date and machine.
"""

import argparse
import math
import os
import pathlib
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
IMAGENET_TRAIN_IMAGES = 1_281_167
GLUONCV_8GPU = {"mobilenet_v3_large": 9000.0,  # images/s read off the logs above (epoch 0, batches 150-350: 8,840-9,140)
                "mobilenet_v3_small": 10500.0}  # (batches 100-350: 10,340-11,270)
REFERENCE, SECOND = "mobilenet_v3_large", "mobilenet_v3_small"


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


def gpu_exponent(rates) -> float:
    """k such that MobileNetV3-Small's published 8-GPU rate = Large's × (their CPU ratio)^k."""
    cpu_ratio = rates[SECOND] / rates[REFERENCE]
    return math.log(GLUONCV_8GPU[SECOND] / GLUONCV_8GPU[REFERENCE]) / math.log(cpu_ratio)


def _row(name, size, rate, rates, epochs):
    ratio = rate / rates[REFERENCE]
    gpu_rate = GLUONCV_8GPU[REFERENCE] * ratio ** gpu_exponent(rates)
    cpu_days = epochs * IMAGENET_TRAIN_IMAGES / rate / 86400
    gpu_hours = epochs * IMAGENET_TRAIN_IMAGES / gpu_rate / 3600
    return {"model": name, "input_size": size, "cpu_images_per_s": round(rate, 2),
            "relative_to_mnv3_large": round(ratio, 3), "cpu_days": round(cpu_days, 1),
            "est_8gpu_images_per_s": round(gpu_rate), "est_8gpu_wall_hours": round(gpu_hours, 1),
            "est_gpu_hours": round(8 * gpu_hours)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=5, help="Timed steps per model.")
    parser.add_argument("--batch-size", type=int, default=32, help="Per-step batch on this CPU.")
    parser.add_argument("--out", default=str(HERE / "results"), help="Output folder.")
    parser.add_argument("--from-json", default=None, help="Recompute the tables from a saved run's JSON.")
    args = parser.parse_args(argv)

    from attendnext_keras import _io, provenance, registry
    from attendnext_keras.config import example_configs, load_config

    recipes = {name: load_config(path) for name, path in sorted(example_configs().items())
               if name.startswith("imagenet_")}
    plan = [(c.model.name, c.model.input_size or registry.model_info(c.model.name).input_size, c) for c in
            recipes.values()]
    base = next(iter(recipes.values()))
    plan += [(REFERENCE, 224, base), (SECOND, 224, base)]
    if args.from_json:
        saved = _io.read_json(args.from_json, what="throughput results")
        measured = {r["model"]: (r["input_size"], r["cpu_images_per_s"], saved["epochs"]) for r in saved["rows"]}
    else:
        measured = {}
        for name, size, config in plan:
            recipe = config.train.replace(batch_size=args.batch_size)
            measured[name] = (size, measure(name, size, recipe, args.steps), config.train.epochs)
            print(f"{name} {size}px: {measured[name][1]:.1f} img/s", file=sys.stderr)
    rates = {name: rate for name, (_, rate, _) in measured.items()}
    rows = [_row(name, size, rate, rates, epochs) for name, (size, rate, epochs) in measured.items()]
    machine = saved["machine"] if args.from_json else provenance.machine_info()  # where the rates were measured
    text = _markdown(rows, machine, args, base, gpu_exponent(rates))
    _io.write_result(args.out, "imagenet_throughput", {
        "machine": machine, "args": vars(args), "epochs": base.train.epochs,
        "published_8gpu_images_per_s": GLUONCV_8GPU, "gpu_exponent": round(gpu_exponent(rates), 3), "rows": rows}, text)
    print(text)
    return 0


def _markdown(rows, machine, args, base, k):
    from attendnext_keras import provenance

    lines = [f"Command: `{machine['command']}`", "", f"Machine: {provenance.describe(machine)}", "",
             f"Training throughput with each recipe's optimizer, batch {args.batch_size} of synthetic images, "
             f"{args.steps} timed steps after one untimed step, 1000 classes. Days on this CPU and the 8-GPU columns "
             f"are for {base.train.epochs} epochs of {IMAGENET_TRAIN_IMAGES:,} images. **The 8-GPU columns are "
             f"estimates**: GluonCV's published 8-GPU fp16 logs (MobileNetV3-Large 9,000 img/s, Small 10,500) "
             f"and each model's CPU ratio to MobileNetV3-Large raised to k = {k:.3f} (fitted so that Small lands on "
             f"its published rate: GPUs compress the differences between small networks). Input decoding can "
             f"bound the fastest models lower. No TPU v4 estimate (no published rate to scale).", "",
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

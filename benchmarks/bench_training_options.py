"""Cheaper training without changing results: training throughput of the study's recipe under options that should
not change what is learned — bfloat16 mixed precision (the CPU has AVX512-BF16), XLA compilation of the training
step, and the decoded-image cache of the data pipeline (on in every run; here measured off too).

    python benchmarks/bench_training_options.py --data ../shared/data/flowers160 --models attendnext_base mobilenet_v3_small

Each (model, option) trains `--steps` steps twice on the same data; the second pass is timed (the first traces and
fills the cache). Writes results/training_options.{json,md} with command, date and machine.
"""

import argparse
import os
import pathlib
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
OPTIONS = {
    "float32 (baseline)": dict(policy="float32", jit=False, cache=True),
    "mixed_bfloat16": dict(policy="mixed_bfloat16", jit=False, cache=True),
    "XLA (jit_compile)": dict(policy="float32", jit=True, cache=True),
    "no decoded-image cache": dict(policy="float32", jit=False, cache=False),
}


def measure(name, option, source, size, batch, steps):
    import keras

    from attendnext_keras import data, registry

    keras.backend.clear_session()
    keras.mixed_precision.set_global_policy(option["policy"])
    try:
        model = registry.create_model(name, input_size=size, classes=source.num_classes)
        model.compile(optimizer=keras.optimizers.AdamW(3e-3), jit_compile=option["jit"],
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        ds = data.make_dataset(source, size, batch, training=True, seed=0, cache=option["cache"],
                               drop_remainder=True).take(steps)
        model.fit(ds, epochs=1, verbose=0)  # traces the step, fills the cache
        start = time.perf_counter()
        model.fit(ds, epochs=1, verbose=0)
        return steps * batch / (time.perf_counter() - start)
    finally:
        keras.mixed_precision.set_global_policy("float32")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="../shared/data/flowers160", help="Image folder with train/.")
    parser.add_argument("--models", nargs="+", default=["attendnext_base", "mobilenet_v3_small"], help="Models.")
    parser.add_argument("--size", type=int, default=96, help="Input size (the study's: 96).")
    parser.add_argument("--batch-size", type=int, default=32, help="Batch size (the study's: 32).")
    parser.add_argument("--steps", type=int, default=40, help="Timed steps per model and option.")
    parser.add_argument("--out", default=str(HERE / "results"), help="Output folder.")
    args = parser.parse_args(argv)

    from attendnext_keras import _io, data, provenance

    source = data.load_source(args.data, "train")
    rows = {}
    for name in args.models:
        rows[name] = {label: round(measure(name, option, source, args.size, args.batch_size, args.steps), 1)
                      for label, option in OPTIONS.items()}
        print(name, rows[name], file=sys.stderr)
    machine = provenance.machine_info()
    labels = list(OPTIONS)
    table = ["| model | " + " | ".join(f"{label} img/s" for label in labels) + " |", "|---|" + "---|" * len(labels)]
    for name, row in rows.items():
        base = row[labels[0]]
        table.append(f"| {name} | " + " | ".join(f"{row[l]:.1f} ({row[l] / base:.2f}×)" for l in labels) + " |")
    os.makedirs(args.out, exist_ok=True)
    _io.write_json(os.path.join(args.out, "training_options.json"),
                   {"machine": machine, "args": vars(args), "options": OPTIONS, "images_per_second": rows})
    _io.write_atomic(os.path.join(args.out, "training_options.md"),
                     "\n".join([f"Command: `{machine['command']}`", "", f"Machine: {provenance.describe(machine)}", "",
                                f"{args.steps} timed steps of batch {args.batch_size} at {args.size} px after one "
                                f"untimed pass; AdamW, logits, flowers160 training photographs.", ""] + table) + "\n")
    print("\n".join(table))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.exit(main())

"""The main job, end to end: train a float AttendNeXt, fine-tune it with QAT, export float32 and int8 `.tflite`,
evaluate every format on held-out data, run the int8 model on TensorFlow Lite Micro, and summarise.

    summary = attendnext_keras.pipeline.run(PipelineConfig(data="default", variant="micro", input_size=64))

`attendnext run` is this function. On the embedded photographs (`data="default"`) it takes a few minutes on two CPU
cores; `data=<image folder or tfds:NAME>` with `variant="base"` and more epochs is the full-size job.
Everything lands in `out_dir`: float/ and qat/ training runs, the .tflite files with their metadata JSON, C sources
for a microcontroller in tflite/, and summary.json / summary.md.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time

import numpy as np


@dataclasses.dataclass
class PipelineConfig:
    data: str = "default"  # "default" (embedded photographs), an image folder, or "tfds:NAME"
    train_split: str = "train"
    val_split: str = "val"
    data_dir: str | None = None  # TFDS data_dir
    variant: str = "micro"
    input_size: int | None = 64  # None: the variant's own
    alpha: float | None = None
    epochs: int = 30
    qat_epochs: int = 3
    batch_size: int = 32
    learning_rate: float = 3e-3
    bn_momentum: float = 0.9  # BatchNorm statistics must settle within a short run (Keras' 0.99 lags: chance-level
    #                           validation accuracy after 30 epochs on the embedded data)
    crop_scale_min: float = 0.25  # random-resized-crop area floor; ImageNet's 0.08 crops 80-px photos to mush
    seed: int = 0
    out_dir: str = "runs/main"
    latency_runs: int = 50
    threads: int = 1
    micro: bool = True  # run the int8 model on TensorFlow Lite Micro
    resume: bool = False


def evaluate_tflite(model_content: bytes, dataset, runner=None) -> dict:
    """Top-1 accuracy of a .tflite model (batch 1) on (images, labels) batches, with LiteRT (XNNPACK) or a TFLM
    runner."""
    from attendnext_keras.runtime import load_interpreter, quantize_input

    interpreter = load_interpreter(model_content, xnnpack=runner is None)  # with a runner: only its I/O details
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    correct = total = 0
    for images, labels in dataset:
        labels = np.asarray(labels)
        labels = labels.argmax(-1) if labels.ndim == 2 else labels.reshape(-1)
        for image, label in zip(np.asarray(images), labels):
            x = quantize_input(image[None], inp)
            if runner is not None:
                y = runner.run(x)
            else:
                interpreter.set_tensor(inp["index"], x)
                interpreter.invoke()
                y = interpreter.get_tensor(out["index"])
            correct += int(np.argmax(y) == label)
            total += 1
    if total == 0:
        raise ValueError("The evaluation dataset is empty.")
    return {"top1": correct / total, "examples": total}


def _table(rows):
    header = "| format | top-1 | size KiB | latency ms (LiteRT, {t} thread) | XNNPACK partitions | TFLM arena KiB |"
    lines = [header, "|---|---|---|---|---|---|"]
    for row in rows:
        def cell(key, fmt):
            value = row.get(key)
            return fmt.format(value) if value is not None else "—"

        lines.append(f"| {row['format']} | {cell('top1', '{:.1%}')} | {cell('size_kib', '{:.1f}')} | "
                     f"{cell('latency_ms', '{:.3f}')} | {cell('partitions', '{}')} | {cell('arena_kib', '{:.1f}')} |")
    return "\n".join(lines)


def run(config: PipelineConfig | None = None, verbose: int = 1) -> dict:
    """Runs the main job and returns its summary (also written to out_dir/summary.json and summary.md)."""
    from attendnext_keras import data
    from attendnext_keras.export import export
    from attendnext_keras.micro import MicroRunner, compare_with_litert, write_c_sources
    from attendnext_keras.models import AttendNeXt, _resolve_spec
    from attendnext_keras.quantization import fine_tune
    from attendnext_keras.runtime import measure_latency
    from attendnext_keras.training import TrainConfig, evaluate, train

    config = config or PipelineConfig()
    say = print if verbose else (lambda *a, **k: None)
    started = time.time()
    spec = _resolve_spec(config.variant, None, config.alpha, None, None)
    size = config.input_size or spec.input_size
    os.makedirs(config.out_dir, exist_ok=True)

    say(f"[1/6] data: {config.data} ({config.train_split}/{config.val_split}) at {size}×{size}")
    train_source = data.load_source(config.data, config.train_split, config.data_dir)
    val_source = data.load_source(config.data, config.val_split, config.data_dir)
    if train_source.class_names != val_source.class_names:
        raise ValueError(f"The {config.train_split} and {config.val_split} splits have different classes: "
                         f"{train_source.class_names} vs {val_source.class_names}")
    classes = train_source.class_names
    train_ds = data.make_dataset(train_source, size, config.batch_size, training=True, seed=config.seed,
                                 crop_scale=(config.crop_scale_min, 1.0))
    val_ds = data.make_dataset(val_source, size, config.batch_size, training=False)
    say(f"      {train_source.num_examples} training / {val_source.num_examples} held-out images, "
        f"{len(classes)} classes: {', '.join(classes[:10])}{' …' if len(classes) > 10 else ''}")
    with open(os.path.join(config.out_dir, "class_names.json"), "w", encoding="utf-8") as f:
        json.dump(classes, f)

    say(f"[2/6] float training: {config.variant} ({spec.name}), {config.epochs} epochs")
    float_config = TrainConfig(epochs=config.epochs, batch_size=config.batch_size,
                               learning_rate=config.learning_rate, seed=config.seed, mixed_precision="float32",
                               bn_momentum=config.bn_momentum)
    float_run = train(lambda: AttendNeXt(spec=spec.replace(input_size=size), input_shape=(size, size, 3),
                                         classes=len(classes), classifier_activation=None),
                      train_ds, val_ds, float_config, out_dir=os.path.join(config.out_dir, "float"),
                      resume=config.resume, verbose=verbose)
    float_model = float_run.model

    say(f"[3/6] quantization-aware fine-tuning: {config.qat_epochs} epochs")
    qat_run = fine_tune(float_model, train_ds, val_ds,
                        TrainConfig.qat(epochs=config.qat_epochs, batch_size=config.batch_size, seed=config.seed),
                        out_dir=os.path.join(config.out_dir, "qat"), resume=config.resume, verbose=verbose)
    qat_model = qat_run.model

    say("[4/6] export: float32 and int8 .tflite with metadata")
    exports = {
        "float32": export(float_model, os.path.join(config.out_dir, "model_float32.tflite"), "float32",
                          class_names=classes),
        "int8": export(qat_model, os.path.join(config.out_dir, "model_int8.tflite"), "int8", class_names=classes,
                       check_micro=config.micro),
    }
    blobs = {mode: open(result.path, "rb").read() for mode, result in exports.items()}

    say("[5/6] evaluation on held-out images")
    rows = [{"format": "Keras float32", **_accuracy(evaluate(float_model, val_ds))},
            {"format": "Keras QAT (fake-quant)", **_accuracy(evaluate(qat_model, val_ds))}]
    for mode, label in (("float32", "TFLite float32"), ("int8", "TFLite int8 (QAT)")):
        report = exports[mode].report
        latency = float(np.median(measure_latency(blobs[mode], num_threads=config.threads,
                                                  runs=config.latency_runs)))
        rows.append({"format": label, **_accuracy(evaluate_tflite(blobs[mode], val_ds)),
                     "size_kib": report.size_bytes / 1024, "latency_ms": latency, "partitions": report.partitions,
                     "path": exports[mode].path})

    micro = None
    if config.micro:
        say("[6/6] TensorFlow Lite Micro: int8 model, arena, agreement with LiteRT, C sources")
        runner = MicroRunner(blobs["int8"])
        sample = np.concatenate([np.asarray(x) for x, _ in val_ds.take(1)])[:8]
        micro = compare_with_litert(blobs["int8"], sample, runner=runner)
        tflm = evaluate_tflite(blobs["int8"], val_ds, runner=runner)
        c_dir = os.path.join(config.out_dir, "tflite")
        os.makedirs(c_dir, exist_ok=True)
        micro["c_sources"] = write_c_sources(blobs["int8"], c_dir, "attendnext_model",
                                             metadata=exports["int8"].metadata, arena_bytes=micro["arena_bytes"])
        rows.append({"format": "TFLite int8 on TFLM", **_accuracy(tflm),
                     "size_kib": exports["int8"].report.size_bytes / 1024,
                     "arena_kib": micro["arena_bytes"] / 1024})

    summary = {
        "config": dataclasses.asdict(config), "input_size": size, "classes": classes, "rows": rows,
        "int8_report": exports["int8"].report.as_dict(), "micro": micro,
        "float_history": float_run.history, "qat_history": qat_run.history,
        "seconds": time.time() - started,
    }
    table = _table(rows).replace("{t}", str(config.threads))
    with open(os.path.join(config.out_dir, "summary.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=1, default=str)
    with open(os.path.join(config.out_dir, "summary.md"), "w", encoding="utf-8") as f:
        f.write(table + "\n")
    say("\n" + table)
    if micro:
        say(f"\nTFLM vs LiteRT on {micro['images']} images: ≤ {micro['max_lsb_vs_litert_reference']} LSB (reference "
            f"kernels), ≤ {micro['max_lsb_vs_xnnpack']} LSB (XNNPACK), top-1 agreement {micro['top1_agreement']:.0%}")
    problems = exports["int8"].report.problems()
    say(f"int8 export: {'fully int8, ' if exports['int8'].report.fully_int8 else ''}"
        f"{exports['int8'].report.partitions} XNNPACK partition(s)" + ("; " + "; ".join(problems) if problems else ""))
    say(f"Done in {summary['seconds']:.0f} s. Outputs in {config.out_dir}/")
    return summary


def _accuracy(result):
    return {"top1": result["top1"], "examples": result["examples"]}

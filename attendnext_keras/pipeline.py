"""The chain train → QAT → export → evaluate → TensorFlow Lite Micro → benchmark, driven by one `RunConfig`
(`attendnext run [--config FILE]`; the main job is its defaults).

    summary = attendnext_keras.pipeline.run(load_config("attendnext_keras/configs/flowers160_micro96.yaml"))

On the embedded photographs (the defaults) it takes a few minutes on two CPU cores. Everything lands in `out_dir`:
float/ and qat/ training runs, the .tflite files with their metadata JSON, C sources for a microcontroller in
tflite/, the resolved config.yaml, and summary.json / summary.md (with the command, date and machine).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time

import numpy as np

from attendnext_keras import _io, data, preset_store, presets, provenance, registry
from attendnext_keras.config import FULLY_INT8_MODES, ModelConfig, RunConfig, save_config
from attendnext_keras.deploy import conversion, litert
from attendnext_keras.deploy.export import export
from attendnext_keras.deploy.micro import MicroRunner, compare_with_litert, strip_for_micro, write_c_sources
from attendnext_keras.quantization import fine_tune
from attendnext_keras.training import evaluate, train

logger = logging.getLogger(__name__)

FORMAT_LABELS = {"float32": "TFLite float32", "float16": "TFLite float16", "dynamic": "TFLite dynamic-range",
                 "int8": "TFLite int8 (QAT)", "int8-ptq": "TFLite int8 (PTQ)",
                 "int8-ptq-float-stem": "TFLite int8 (PTQ, float32 stem)"}


@dataclasses.dataclass
class _Run:
    """What the steps of one run share."""

    config: RunConfig
    size: int
    train_source: object
    val_source: object
    train_ds: object
    val_ds: object
    models: dict = dataclasses.field(default_factory=dict)  # "float" / "qat" → Keras model
    exports: dict = dataclasses.field(default_factory=dict)  # mode → ExportResult
    blobs: dict = dataclasses.field(default_factory=dict)  # mode → flatbuffer
    rows: list = dataclasses.field(default_factory=list)
    micro: dict | None = None
    latency: dict | None = None
    histories: dict = dataclasses.field(default_factory=dict)

    @property
    def class_names(self):
        return self.train_source.class_names

    def path(self, *parts):
        return os.path.join(self.config.out_dir, *parts)


def run(config: RunConfig | None = None, verbose: int = 1) -> dict:
    """Runs the steps of `config` and returns the summary (also written to out_dir/summary.json and summary.md;
    `summary["table"]` is the markdown table of accuracy, size, latency and arena per format)."""
    config = config or RunConfig()
    started = time.time()
    state = _prepare(config)
    with _io.folder_lock(config.out_dir, "run"):
        save_config(config, state.path("config.yaml"))
        steps = {"train": _train, "qat": _qat, "export": _export, "evaluate": _evaluate, "micro": _micro,
                 "benchmark": _benchmark}
        for i, step in enumerate(config.steps, 1):
            logger.info("[%d/%d] %s", i, len(config.steps), step)
            steps[step](state, verbose)
        return _summarise(state, time.time() - started)


def model_input_size(model: ModelConfig) -> int:
    """The square input size a run trains at: `model.input_size`, else the preset's (`model.weights`), else the
    model's own. Checks the model config first (an unknown model or preset, alpha on a peer: one-line errors)."""
    if model.weights is not None:
        info = preset_store.load_preset(model.weights)
        if model.alpha is not None:
            raise ValueError(f"model.alpha cannot change the width of preset '{info.name}': its weights fit its own "
                             f"architecture.")
        return model.input_size or info.input_size
    info = registry.model_info(model.name)
    if model.alpha is not None and info.family != "attendnext":
        raise ValueError(f"model.alpha applies to AttendNeXt models; '{model.name}' carries its width in its "
                         f"name (e.g. mobilenet_v3_large_075).")
    return model.input_size or info.input_size


def build_model(model: ModelConfig, size: int, class_names, keras=None):
    """The model a run trains: from the preset `model.weights` (its classifier kept for the same class names, a new
    one otherwise), or `model.name` from the registry, freshly initialised."""
    if model.weights is not None:
        return presets.from_preset(model.weights, flavour=keras or "keras", class_names=class_names, input_size=size)
    extra = {"alpha": model.alpha} if model.alpha is not None else {}
    if keras is not None:
        extra["keras"] = keras
    return registry.create_model(model.name, input_size=size, classes=len(class_names), **extra)


def _prepare(config: RunConfig) -> _Run:
    size = model_input_size(config.model)
    d = config.data
    train_source, val_source = data.load_splits(d.source, d.train_split, d.val_split, d.data_dir, d.manual_dir)
    os.makedirs(config.out_dir, exist_ok=True)
    logger.info("data: %s (%s/%s) at %d×%d: %d training / %d held-out images, %d classes", d.source, d.train_split,
                d.val_split, size, size, train_source.num_examples, val_source.num_examples,
                train_source.num_classes)
    train_ds = data.make_dataset(train_source, size, config.train.batch_size, training=True, seed=config.train.seed,
                                 crop_scale=(d.crop_scale_min, 1.0), mixup=d.mixup)
    val_ds = data.make_dataset(val_source, size, config.evaluate.batch_size, training=False)
    _io.write_json(os.path.join(config.out_dir, "class_names.json"), train_source.class_names)
    return _Run(config, size, train_source, val_source, train_ds, val_ds)


def _train(state: _Run, verbose):
    result = train(lambda: build_model(state.config.model, state.size, state.class_names), state.train_ds, state.val_ds, state.config.train,
                   out_dir=state.path("float"), resume=state.config.resume, overwrite=state.config.overwrite,
                   verbose=verbose)
    state.models["float"], state.histories["float"] = result.model, result.history


def _qat(state: _Run, verbose):
    result = fine_tune(state.models["float"], state.train_ds, state.val_ds, state.config.qat, out_dir=state.path("qat"),
                       resume=state.config.resume, overwrite=state.config.overwrite, verbose=verbose)
    state.models["qat"], state.histories["qat"] = result.model, result.history


def _export(state: _Run, verbose):
    cfg = state.config.export
    for mode in cfg.modes:
        model = state.models["qat" if mode == "int8" else "float"]  # RunConfig checked that the step ran
        calibration = (data.calibration_images(state.train_source, state.size, count=min(
            cfg.calibration_images, state.train_source.num_examples)) if mode in conversion.CALIBRATED_MODES else None)
        result = export(model, state.path(f"model_{mode.replace('-', '_')}.tflite"), mode,
                        representative_data=calibration, class_names=state.class_names, int8_io=cfg.int8_io,
                        strict=cfg.strict, check_micro="micro" in state.config.steps and mode in FULLY_INT8_MODES)
        state.exports[mode], state.blobs[mode] = result, litert.read_tflite(result.path)


def _evaluate(state: _Run, verbose):
    for key, label in (("float", "Keras float32"), ("qat", "Keras QAT (fake-quant)")):
        if key in state.models:
            state.rows.append({"format": label, **_accuracy(evaluate(state.models[key], state.val_ds))})
    for mode, result in state.exports.items():
        state.rows.append({"format": FORMAT_LABELS[mode], "mode": mode,
                           **_accuracy(litert.evaluate_tflite(state.blobs[mode], state.val_ds)),
                           "size_kib": result.report.size_bytes / 1024, "partitions": result.report.partitions,
                           "path": result.path})


def _micro(state: _Run, verbose):
    cfg = state.config.micro
    mode = next(m for m in FULLY_INT8_MODES if m in state.blobs)  # RunConfig checked there is one
    blob = strip_for_micro(state.blobs[mode]) if cfg.strip else state.blobs[mode]
    runner = MicroRunner(blob)
    images = data.calibration_images(state.val_source, state.size, count=min(cfg.images, state.val_source.num_examples),
                                     seed=1)
    state.micro = compare_with_litert(blob, images, runner=runner)
    state.micro.update(mode=mode, flash_bytes=len(blob), stripped=cfg.strip)
    tflm = litert.evaluate_tflite(blob, state.val_ds, runner=runner)
    c_dir = cfg.out_dir or state.path("tflite")
    os.makedirs(c_dir, exist_ok=True)
    state.micro["c_sources"] = write_c_sources(blob, c_dir, cfg.name, metadata=state.exports[mode].metadata,
                                               arena_bytes=state.micro["arena_bytes"], arena_margin=cfg.arena_margin,
                                               arena_usage=runner.arena_usage)
    state.rows.append({"format": "TFLite int8 on TFLM", **_accuracy(tflm), "size_kib": len(blob) / 1024,
                       "arena_kib": state.micro["arena_bytes"] / 1024})


def _benchmark(state: _Run, verbose):
    """The run's exported models (and any registry models named in benchmark.models, converted at the same size)
    timed interleaved on LiteRT/XNNPACK."""
    cfg = state.config.benchmark
    blobs = {FORMAT_LABELS[mode]: blob for mode, blob in state.blobs.items()}
    for name in cfg.models:
        model = registry.create_model(name, input_size=state.size, classes=state.train_source.num_classes)
        images = data.calibration_images(None, state.size, cfg.calibration_images)
        for mode, blob in conversion.to_tflite_formats(model, ["float32", "int8-ptq"], representative_data=[images],
                                                       calibration_steps=len(images)).items():
            blobs[f"{registry.display_name(name)} {mode}"] = blob
    state.latency = {}
    for threads in cfg.threads:
        samples = litert.time_interleaved(blobs, threads, runs=cfg.runs, warmup=cfg.warmup, block=cfg.block)
        state.latency[str(threads)] = {k: float(np.median(v)) for k, v in samples.items()}
    first = state.latency[str(cfg.threads[0])]
    for row in state.rows:
        row["latency_ms"] = first.get(row["format"])


def _accuracy(result):
    return {"top1": result["top1"], "examples": result["examples"]}


def _table(rows, threads) -> str:
    lines = [f"| format | top-1 | size KiB | latency ms (LiteRT, {threads} thread) | XNNPACK partitions | "
             f"TFLM arena KiB |", "|---|---|---|---|---|---|"]
    for row in rows:
        def cell(key, fmt):
            value = row.get(key)
            return fmt.format(value) if value is not None else "—"

        lines.append(f"| {row['format']} | {cell('top1', '{:.1%}')} | {cell('size_kib', '{:.1f}')} | "
                     f"{cell('latency_ms', '{:.3f}')} | {cell('partitions', '{}')} | {cell('arena_kib', '{:.1f}')} |")
    return "\n".join(lines)


def _summarise(state: _Run, seconds: float) -> dict:
    config, machine = state.config, provenance.machine_info()
    threads = state.config.benchmark.threads[0]
    summary = {"machine": machine, "config": config.to_dict(), "input_size": state.size,
               "classes": state.class_names, "examples": {"train": state.train_source.num_examples,
                                                          "held_out": state.val_source.num_examples},
               "rows": state.rows, "micro": state.micro, "latency_ms": state.latency,
               "int8_report": next((state.exports[m].report.as_dict() for m in FULLY_INT8_MODES if m in state.exports),
                                   None),
               "histories": state.histories, "seconds": round(seconds, 1)}
    table = _table(state.rows, threads)
    notes = []
    if state.micro:
        notes.append(f"TFLM vs LiteRT on {state.micro['images']} held-out images: ≤ "
                     f"{state.micro['max_lsb_vs_litert_reference']} LSB (LiteRT reference kernels), ≤ "
                     f"{state.micro['max_lsb_vs_xnnpack']} LSB (XNNPACK), top-1 agreement "
                     f"{state.micro['top1_agreement']:.0%}.")
    header = [f"# attendnext run: {config.model.name} at {state.size} px on {config.data.source}", "",
              f"Command: `{machine['command']}`", "", f"Machine: {provenance.describe(machine)}", "",
              f"{state.train_source.num_examples} training / {state.val_source.num_examples} held-out images, "
              f"{len(state.class_names)} classes; {seconds:.0f} s.", ""]
    summary["table"] = table + ("\n\n" + "\n".join(notes) if notes else "")
    _io.write_json(state.path("summary.json"), summary)
    _io.write_atomic(state.path("summary.md"), "\n".join(header + [table, ""] + notes) + "\n")
    return summary

"""Machine-driven design exploration: a constrained search over AttendNeXt specs on your data and your device.

The paper designs AttendNeXt by generative synthesis: a generator proposes architectures, an indicator function
rejects those that break the design constraints, and the search maximises a universal performance function such as
NetScore. This module does the same, openly, with Optuna:

    from attendnext_keras.explore import explore
    result = explore(data="path/to/images", study_name="flowers", storage="sqlite:///runs/explore/study.db",
                     n_trials=20, objective="netscore", base_variant="micro", input_sizes=(64,), epochs=5,
                     max_tflite_bytes=256_000, max_arena_bytes=256_000)
    model = attendnext_keras.AttendNeXt(spec=attendnext_keras.load_spec(result.paths["spec"]), classes=5)

Each trial, in order (cheap checks first, so a rejected candidate costs milliseconds to a second):

1. `sample_spec` turns the trial's choices (define-by-run) into a ModelSpec derived from the base variant.
2. `check_candidate` applies the builder's rules (`specs.check_constraints`: columnar design, no strided point-wise
   convolutions, anti-aliased downsampling, DC-AC in ≥ 2 stages; plus an input size the spec can take). A spec that
   breaks one is never built or trained: the trial is pruned with the reason in its user attributes.
3. The model is built and profiled (parameters, MACs); `max_params` / `max_macs` are checked before training.
4. Proxy training (`epochs` on the user's data), int8 post-training quantization, top-1 of the int8 model on the
   held-out split, `.tflite` size, XNNPACK partitions, TFLite Micro arena, and LiteRT latency timed interleaved with a
   reference int8 model (`reference`, default the `micro` variant at the same input size, converted once per study
   and input size) in the same process, so latency is recorded in ms and as a ratio to the reference.
5. `max_tflite_bytes`, `max_arena_bytes`, `max_latency_ms` (ms of this process) and `min_accuracy` are checked.

Every trial stores its constraint values (> 0: violated) in `trial.user_attrs["constraints"]`; the sampler's
`constraints_func` reads them, so TPE and NSGA-II learn to avoid infeasible regions. Reports recompute feasibility
from the stored metrics, the stored spec and the current limits: a trial that breaks a rule or a limit is listed in
the table but never reported as best or on the Pareto front.

Objectives: "netscore" (maximise Ω = 20·log10(a^α / (p^β·m^γ)), a = int8 top-1 in %, p = parameters in M,
m = MACs in G; Wong 2018), "pareto" (maximise int8 top-1, minimise latency relative to the reference) or
"pareto-size" (the same and minimise int8 `.tflite` bytes).

Studies live in an Optuna storage: SQLite by default, any RDB URL (several machines can share a study), resumed with
`load_if_exists=True`; finished trials are never lost, and trials of a killed process are failed by the heartbeat
and retried once.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import time
from dataclasses import dataclass
from typing import Optional

from attendnext_keras.specs import (BlockSpec, ColumnSpec, ConstraintError, DCACSpec, ModelSpec, StageSpec,
                                    check_constraints, get_spec, save_spec, summarize_spec)

OBJECTIVES = {
    # name: ((metric, direction), ...)
    "netscore": (("netscore", "maximize"),),
    "pareto": (("top1", "maximize"), ("latency_ratio", "minimize")),
    "pareto-size": (("top1", "maximize"), ("latency_ratio", "minimize"), ("tflite_bytes", "minimize")),
}
SAMPLERS = ("tpe", "nsga2", "random")
MAX_FAILURES_IN_A_ROW = 3
"""`explore` stops when this many trials in a row raise (a systematic error should not cost every training run)."""
CONSTRAINT_NAMES = ("spec_rules", "params", "macs", "tflite_bytes", "arena_bytes", "latency_ms", "accuracy")
"""The order of `trial.user_attrs["constraints"]`; a value > 0 means violated (relative excess over the limit)."""


# --------------------------------------------------------------------------------------------------------------------
# NetScore


def netscore(accuracy_percent: float, params_m: float, macs_g: float, alpha: float = 2.0, beta: float = 0.5,
             gamma: float = 0.5) -> float:
    """NetScore (Wong 2018): Ω = 20·log10(a^α / (p^β · m^γ)), with a the top-1 accuracy in percent, p the parameters
    in millions and m the multiply-accumulates in billions (G). Higher is better."""
    if not accuracy_percent > 0 or not params_m > 0 or not macs_g > 0:
        raise ValueError(f"NetScore needs positive accuracy (%), parameters (M) and MACs (G). Received: "
                         f"accuracy_percent={accuracy_percent}, params_m={params_m}, macs_g={macs_g}")
    return 20.0 * (alpha * math.log10(accuracy_percent) - beta * math.log10(params_m) - gamma * math.log10(macs_g))


# --------------------------------------------------------------------------------------------------------------------
# User constraints


@dataclass(frozen=True)
class Limits:
    """User constraints on top of the builder's rules. None: no limit. `min_accuracy` is int8 top-1 in [0, 1];
    `max_latency_ms` is the median LiteRT latency measured in the exploring process."""

    max_params: Optional[int] = None
    max_macs: Optional[int] = None
    max_tflite_bytes: Optional[int] = None
    max_arena_bytes: Optional[int] = None
    max_latency_ms: Optional[float] = None
    min_accuracy: Optional[float] = None

    def __post_init__(self):
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is not None and not value > 0:
                raise ValueError(f"`{f.name}` must be positive or None. Received: {f.name}={value!r}")
        if self.min_accuracy is not None and self.min_accuracy > 1:
            raise ValueError(f"`min_accuracy` is a top-1 fraction in (0, 1]. Received: {self.min_accuracy}")

    # (constraint name, metric, limit field, "max" or "min"); checked before training when `cheap`
    _CHECKS = (("params", "params", "max_params", True), ("macs", "macs", "max_macs", True),
               ("tflite_bytes", "tflite_bytes", "max_tflite_bytes", False),
               ("arena_bytes", "arena_bytes", "max_arena_bytes", False),
               ("latency_ms", "latency_ms", "max_latency_ms", False), ("accuracy", "top1", "min_accuracy", False))

    def values(self, metrics: dict, cheap_only: bool = False) -> dict:
        """{constraint name: value} for the constraints after `spec_rules`: the relative excess over the limit
        (> 0 violated, ≤ 0 met), 0.0 without a limit or before the metric is measured, 1.0 when a limit is set but
        the metric could not be measured (e.g. TFLite Micro cannot load the model)."""
        out = {}
        for name, metric, field, cheap in self._CHECKS:
            limit = getattr(self, field)
            value = metrics.get(metric)
            if limit is None or (cheap_only and not cheap):
                out[name] = 0.0
            elif value is None:
                out[name] = 1.0 if not cheap_only and metric in metrics else 0.0
            elif field.startswith("max"):
                out[name] = (value - limit) / limit
            else:
                out[name] = (limit - value) / limit
        return out

    def violations(self, metrics: dict) -> list:
        """Names of the limits `metrics` break (unmeasured metrics count as broken when limited)."""
        out = []
        for name, metric, field, _ in self._CHECKS:
            limit = getattr(self, field)
            if limit is None:
                continue
            value = metrics.get(metric)
            if value is None or (value > limit if field.startswith("max") else value < limit):
                out.append(name)
        return out

    def describe(self) -> str:
        parts = [f"{f.name}={getattr(self, f.name)}" for f in dataclasses.fields(self) if getattr(self, f.name)]
        return ", ".join(parts) or "none"


def constraint_vector(metrics: dict, limits: Limits, rejected: bool = False, cheap_only: bool = False) -> list:
    """The values stored in `trial.user_attrs["constraints"]`, in CONSTRAINT_NAMES order."""
    values = limits.values(metrics, cheap_only=cheap_only)
    return [1.0 if rejected else 0.0] + [float(values[name]) for name in CONSTRAINT_NAMES[1:]]


def constraints_func(trial) -> list:
    """The samplers' `constraints_func` (Optuna < 5): the trial's stored constraint values (unknown: infeasible)."""
    return list(trial.user_attrs.get("constraints", [1.0] * len(CONSTRAINT_NAMES)))


def _native_constraints() -> bool:
    """Optuna ≥ 5 takes constraints from `Trial.set_constraint` (and deprecates samplers' `constraints_func`)."""
    import optuna

    return hasattr(optuna.trial.Trial, "set_constraint")


def record_constraints(trial, values) -> None:
    """Stores constraint values (CONSTRAINT_NAMES order) in `user_attrs["constraints"]`, where `constraints_func`
    reads them, and with `Trial.set_constraint` where Optuna has it, so the sampler sees them either way."""
    values = [float(v) for v in values]
    trial.set_user_attr("constraints", values)
    if _native_constraints():
        for name, value in zip(CONSTRAINT_NAMES, values):
            trial.set_constraint(name, value)


# --------------------------------------------------------------------------------------------------------------------
# The search space


@dataclass(frozen=True)
class SearchSpace:
    """The structural choices a trial samples; everything else comes from the base variant.

    width_multipliers: on the base variant's width (channels stay multiples of 8).
    max_columns: parallel columns per stage, 1 … this; a stage never has more than the stage before.
    max_blocks: cap on the depth-wise separable blocks per column (None: the base stage's count; the widths are the
        base stage's).
    max_condense_factor: DC-AC condense factors are powers of two from 2 up to this, and only those whose condensed
        grid divides the stage's feature map at the sampled input size are offered.
    embed_ratios: DC-AC embedding width ÷ input width.
    blur_sizes: (min, max) BlurPool filter size of each anti-aliased downsampling.
    downsamples: AADS patterns ("max": max-pool/1 → blur/2; "blur": blur/2).
    merges: how a stage joins its columns ("none" keeps them independent into the next stage).
    head_hidden: hidden width of the classifier head before the width multiplier (0: none).
    """

    width_multipliers: tuple = (0.75, 1.0, 1.25, 1.5)
    max_columns: int = 3
    max_blocks: Optional[int] = None
    max_condense_factor: int = 4
    embed_ratios: tuple = (0.125, 0.25, 0.5)
    blur_sizes: tuple = (2, 5)
    downsamples: tuple = ("max", "blur")
    merges: tuple = ("none", "concat", "add")
    head_hidden: tuple = (0, 256, 512)

    def __post_init__(self):
        if self.max_columns < 1 or (self.max_blocks is not None and self.max_blocks < 1):
            raise ValueError(f"`max_columns` and `max_blocks` must be at least 1. Received: {self}")
        if not 2 <= self.blur_sizes[0] <= self.blur_sizes[1] <= 7:
            raise ValueError(f"`blur_sizes` is a (min, max) range within 2–7 (AADS needs ≥ 2). "
                             f"Received: {self.blur_sizes}")
        if self.max_condense_factor < 2 or self.max_condense_factor & (self.max_condense_factor - 1):
            raise ValueError(f"`max_condense_factor` must be a power of two ≥ 2. Received: {self.max_condense_factor}")
        if not set(self.merges) <= {"none", "concat", "add"} or not set(self.merges) - {"none"}:
            raise ValueError(f"`merges` must name 'concat' or 'add' (and may name 'none'). Received: {self.merges}")
        if not set(self.downsamples) <= {"max", "blur"} or not self.downsamples:
            raise ValueError(f"`downsamples` must be 'max' and/or 'blur'. Received: {self.downsamples}")
        for name in ("width_multipliers", "embed_ratios", "head_hidden"):
            if not getattr(self, name):
                raise ValueError(f"`{name}` needs at least one choice.")

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


def _dwsep_widths(stage: StageSpec) -> list:
    widths = [b.filters for b in stage.columns[0].blocks if b.kind in ("dwsep", "conv") and b.filters]
    if not widths:
        raise ValueError("Every stage of the base variant needs a depth-wise separable block to take widths from.")
    return widths


def sample_spec(trial, base="micro", input_sizes=(64,), space: SearchSpace = SearchSpace()) -> ModelSpec:
    """A ModelSpec from a trial's choices (Optuna define-by-run; works with `optuna.trial.FixedTrial`).

    Per stage i: `stage{i}_columns` (1 … min(max_columns, previous stage's), or the previous stage's when that one
    passes its columns on unmerged), `stage{i}_blocks` (depth-wise separable blocks per column, widths from the base
    stage), `stage{i}_dcac_at` (0: no DC-AC; k: a DC-AC module after the k-th block, offered only where a condense
    factor fits), `stage{i}_condense_log2` and `stage{i}_embed_ratio` (its settings), `stage{i}_downsample` and
    `stage{i}_blur` (the AADS), `stage{i}_merge` (for ≥ 2 columns); globally `input_size`, `width_multiplier` and
    `head_hidden`. Columns of a stage are identical. The spec is *not* checked here: see `check_candidate`.
    """
    base = get_spec(base)
    input_size = int(trial.suggest_categorical("input_size", list(input_sizes)))
    multiplier = float(trial.suggest_categorical("width_multiplier", list(space.width_multipliers)))
    stride = base.stem.strides
    previous_columns, previous_merge = None, None
    stages = []
    for i, stage in enumerate(base.stages, 1):
        last = i == len(base.stages)
        if stage.downsample:
            stride *= 2
        if previous_columns is None:
            columns = trial.suggest_int(f"stage{i}_columns", 1, space.max_columns)
        elif previous_merge == "none":
            columns = previous_columns
        else:
            columns = trial.suggest_int(f"stage{i}_columns", 1, min(space.max_columns, previous_columns))
        widths = _dwsep_widths(stage)
        max_blocks = len(widths) if space.max_blocks is None else min(len(widths), space.max_blocks)
        blocks_n = min(max_blocks, trial.suggest_int(f"stage{i}_blocks", 1, max_blocks))  # FixedTrial: any value
        dwsep = [BlockSpec("dwsep", filters=widths[k]) for k in range(blocks_n)]

        # DC-AC: offered where some condense factor 2^e (e ≥ 1) divides the stage's feature map.
        grid = input_size // stride if input_size % stride == 0 else 0
        max_log2 = 0
        while grid and grid % (2 ** (max_log2 + 1)) == 0 and 2 ** (max_log2 + 1) <= space.max_condense_factor:
            max_log2 += 1
        if max_log2 >= 1:
            dcac_at = trial.suggest_int(f"stage{i}_dcac_at", 0, max_blocks)
            if dcac_at:
                condense = 2 ** trial.suggest_int(f"stage{i}_condense_log2", 1, max_log2)
                ratio = float(trial.suggest_categorical(f"stage{i}_embed_ratio", list(space.embed_ratios)))
                dwsep.insert(min(dcac_at, blocks_n),
                             BlockSpec("dcac", dcac=DCACSpec(condense_factor=condense, embed_ratio=ratio)))
        if stage.downsample:
            downsample = trial.suggest_categorical(f"stage{i}_downsample", list(space.downsamples))
            blur = trial.suggest_int(f"stage{i}_blur", space.blur_sizes[0], space.blur_sizes[1])
        else:
            downsample, blur = None, stage.blur_size
        merges = [m for m in space.merges if not (last and m == "none")]
        merge = trial.suggest_categorical(f"stage{i}_merge", merges) if columns > 1 else "concat"
        stages.append(StageSpec(columns=tuple(ColumnSpec(tuple(dwsep)) for _ in range(columns)),
                                downsample=downsample, blur_size=blur, merge=merge))
        previous_columns, previous_merge = columns, merge
    hidden = int(trial.suggest_categorical("head_hidden", list(space.head_hidden)))
    number = getattr(trial, "number", None)
    return base.replace(
        name=f"{base.name}_explore" + (f"_t{number}" if number is not None else ""),
        input_size=input_size, width=round(base.width * multiplier, 6), stages=tuple(stages),
        head=dataclasses.replace(base.head, hidden=hidden),
        description=f"Found by design exploration from '{base.name}'" + (f" (trial {number})." if number is not None
                                                                          else "."))


def check_candidate(spec: ModelSpec) -> None:
    """The builder's rules for a candidate: `specs.check_constraints` and an input size the spec can take. Raises
    ConstraintError naming the broken rule."""
    from attendnext_keras.models import obtain_input_shape

    try:
        check_constraints(spec)
    except ConstraintError:
        raise
    except ValueError as error:  # check_structure: the spec cannot be built at all
        raise ConstraintError(str(error), rule=str(error).split(": ", 1)[0]) from error
    try:
        obtain_input_shape(None, spec)
    except ValueError as error:
        raise ConstraintError(str(error), rule=f"input size {spec.input_size}") from error


# --------------------------------------------------------------------------------------------------------------------
# Evaluating one model: proxy training, int8, accuracy, size, arena, latency against the reference


class Evaluator:
    """Data, calibration images and reference models for one exploration (shared by its trials and by benchmarks).

    `evaluate(build, out_dir)` trains the model `build()` returns with the proxy budget and measures it; the
    reference int8 model for an input size is converted once and kept in `reference_dir`.
    """

    def __init__(self, data="default", train_split="train", val_split="val", data_dir=None, epochs=1,
                 batch_size=32, learning_rate=3e-3, seed=0, reference="micro", reference_dir=None,
                 calibration_images=64, latency_runs=50, threads=1):
        from attendnext_keras import data as data_module

        self.train_source = data_module.load_source(data, train_split, data_dir)
        self.val_source = data_module.load_source(data, val_split, data_dir)
        if self.train_source.class_names != self.val_source.class_names:
            raise ValueError(f"The {train_split} and {val_split} splits have different classes: "
                             f"{self.train_source.class_names} vs {self.val_source.class_names}")
        self.classes = len(self.train_source.class_names)
        self.epochs, self.batch_size, self.learning_rate, self.seed = epochs, batch_size, learning_rate, seed
        self.reference = get_spec(reference)  # a variant name or a ModelSpec
        self.reference_dir = reference_dir
        self.calibration_count = calibration_images
        self.latency_runs, self.threads = latency_runs, threads
        self._datasets, self._calibration, self._references = {}, {}, {}

    def datasets(self, size):
        from attendnext_keras import data as data_module

        if size not in self._datasets:
            # Full batches only: a smaller last batch would trace the training step a second time (seconds per
            # candidate); the shuffle changes which images are left out each epoch.
            full = self.train_source.num_examples >= self.batch_size
            self._datasets[size] = (
                data_module.make_dataset(self.train_source, size, self.batch_size, training=True, seed=self.seed,
                                         crop_scale=(0.25, 1.0), drop_remainder=full),
                data_module.make_dataset(self.val_source, size, self.batch_size, training=False))
        return self._datasets[size]

    def calibration(self, size):
        import warnings

        from attendnext_keras import data as data_module

        if size not in self._calibration:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # fewer images than asked: all of them
                self._calibration[size] = data_module.representative_images(self.train_source, size,
                                                                            count=self.calibration_count)
        return self._calibration[size]

    def reference_blob(self, size) -> bytes:
        """The reference int8 model at `size` (random weights: latency does not depend on them), converted once."""
        if size in self._references:
            return self._references[size]
        from attendnext_keras.conversion import to_tflite, write_atomic
        from attendnext_keras.models import AttendNeXt

        path = (os.path.join(self.reference_dir, f"reference_{self.reference.name}_{size}px_{self.classes}cls.tflite")
                if self.reference_dir else None)
        if path and os.path.exists(path):
            blob = open(path, "rb").read()
        else:
            spec = self.reference.replace(input_size=size)
            model = AttendNeXt(spec=spec, input_shape=(size, size, 3), classes=self.classes,
                               classifier_activation=None)
            blob = to_tflite(model, "int8-ptq", representative_data=self.calibration(size))
            if path:
                os.makedirs(self.reference_dir, exist_ok=True)
                write_atomic(path, blob)
        self._references[size] = blob
        return blob

    def train_config(self):
        from attendnext_keras.training import TrainConfig

        return TrainConfig(epochs=self.epochs, batch_size=self.batch_size, learning_rate=self.learning_rate,
                           seed=self.seed, mixed_precision="float32", bn_momentum=0.9)

    def evaluate(self, model, out_dir, size=None, on_profile=None) -> dict:
        """Trains `model` (a Keras model or a function building one), converts it to int8 and measures it.

        `on_profile(metrics)` runs after profiling, before training: raising there (a cheap constraint) skips the
        rest. Returns the metrics: params, macs, peak_activation_bytes, float_top1, top1 (int8, LiteRT),
        tflite_bytes, weight_bytes, partitions, ops_outside, arena_bytes, latency_ms, reference_latency_ms,
        latency_ratio, seconds (train, convert, measure), tflite_path."""
        import numpy as np

        from attendnext_keras.benchmark import time_interleaved
        from attendnext_keras.conversion import to_tflite, write_atomic
        from attendnext_keras.export import micro_check
        from attendnext_keras.pipeline import evaluate_tflite
        from attendnext_keras.profiling import profile
        from attendnext_keras.runtime import delegation_report, weight_bytes
        from attendnext_keras.training import evaluate, train

        model = model() if callable(model) and not hasattr(model, "layers") else model
        size = size or int(model.inputs[0].shape[1])
        prof = profile(model)
        metrics = {"params": prof.params, "macs": prof.macs, "peak_activation_bytes": prof.peak_activation_bytes}
        if on_profile is not None:
            on_profile(metrics)
        reference = self.reference_blob(size)  # converted on first use of a size: not the candidate's cost
        started = time.perf_counter()
        train_ds, val_ds = self.datasets(size)
        # No validation inside fit (its step would be traced too); the float model is scored once, eagerly.
        result = train(model, train_ds, None, self.train_config(), out_dir=os.path.join(out_dir, "train"), verbose=0)
        metrics["float_top1"] = float(evaluate(result.model, val_ds)["top1"])
        trained = time.perf_counter()

        blob = to_tflite(result.model, "int8-ptq", representative_data=self.calibration(size))
        converted = time.perf_counter()
        tflite_path = write_atomic(os.path.join(out_dir, "model_int8.tflite"), blob)
        metrics["top1"] = float(evaluate_tflite(blob, val_ds)["top1"])
        metrics["tflite_bytes"] = len(blob)
        metrics["weight_bytes"] = int(weight_bytes(blob))
        report = delegation_report(blob)
        metrics["partitions"] = int(report["partitions"])
        metrics["ops_outside"] = list(report["ops_outside"])
        metrics["arena_bytes"] = micro_check(blob)["arena_bytes"]  # None when TFLM cannot run it
        samples = time_interleaved({"candidate": blob, "reference": reference}, num_threads=self.threads,
                                   runs=self.latency_runs, seed=self.seed)
        metrics["latency_ms"] = float(np.median(samples["candidate"]))
        metrics["reference_latency_ms"] = float(np.median(samples["reference"]))
        metrics["latency_ratio"] = metrics["latency_ms"] / metrics["reference_latency_ms"]
        metrics["seconds"] = {"train": trained - started, "convert": converted - trained,
                              "measure": time.perf_counter() - converted}
        metrics["tflite_path"] = tflite_path
        return metrics


def netscore_of(metrics: dict, alpha=2.0, beta=0.5, gamma=0.5) -> float:
    """NetScore of measured metrics: int8 top-1 (floored at 0.01 % so a 0 % proxy stays finite), params, MACs."""
    return netscore(max(100.0 * metrics["top1"], 0.01), metrics["params"] / 1e6, metrics["macs"] / 1e9,
                    alpha, beta, gamma)


# --------------------------------------------------------------------------------------------------------------------
# The study


@dataclass
class ExploreResult:
    """What `explore` found. `best_trials`: the feasible best trial ("netscore") or the feasible Pareto front;
    `winner`: the trial whose spec is written to `paths["spec"]` (best NetScore, or on a front the most accurate);
    `rows`: one dict per trial (what the table shows); `paths`: the files written."""

    study: object
    objective: str
    best_trials: list
    winner: object
    winner_spec: Optional[ModelSpec]
    rows: list
    paths: dict


def _sqlite_folder(storage):
    if isinstance(storage, str) and storage.startswith("sqlite:///"):
        path = storage[len("sqlite:///"):]
        folder = os.path.dirname(os.path.abspath(path)) if path and path != ":memory:" else None
        if folder:
            os.makedirs(folder, exist_ok=True)


def open_study(study_name, storage, objective="netscore", sampler="tpe", seed=0):
    """Creates or loads (load_if_exists) a study with the objective's directions and a constrained sampler.

    `storage`: None (in memory), an RDB URL ("sqlite:///runs/explore/study.db", "postgresql://…", "mysql://…") or
    an optuna storage object. RDB URLs get a heartbeat: trials of a killed process are marked failed and retried
    once when the study resumes."""
    import inspect
    import warnings

    import optuna

    if objective not in OBJECTIVES:
        raise ValueError(f"`objective` must be one of {list(OBJECTIVES)}. Received: objective={objective!r}")
    if sampler not in SAMPLERS:
        raise ValueError(f"`sampler` must be one of {SAMPLERS}. Received: sampler={sampler!r}")
    if isinstance(storage, str):
        _sqlite_folder(storage)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            # Optuna ≥ 4.9 renamed the retry callback and its argument.
            if "heartbeat_stale_trial_callback" in inspect.signature(optuna.storages.RDBStorage).parameters:
                retry = {"heartbeat_stale_trial_callback": optuna.storages.RetryHeartbeatStaleTrialCallback(1)}
            else:
                retry = {"failed_trial_callback": optuna.storages.RetryFailedTrialCallback(max_retry=1)}
            storage = optuna.storages.RDBStorage(storage, heartbeat_interval=60, grace_period=180, **retry)
    directions = [direction for _, direction in OBJECTIVES[objective]]
    # A different seed per resumption, so a resumed study does not repeat the first run's random proposals.
    existing = 0
    if storage is not None:
        try:
            existing = len(optuna.load_study(study_name=study_name, storage=storage).trials)
        except KeyError:
            existing = 0
    seed = None if seed is None else seed + existing
    constrained = {} if _native_constraints() else {"constraints_func": constraints_func}
    if sampler == "tpe":
        chosen = optuna.samplers.TPESampler(seed=seed, n_startup_trials=5, **constrained)
    elif sampler == "nsga2":
        chosen = optuna.samplers.NSGAIISampler(seed=seed, population_size=8, **constrained)
    else:
        chosen = optuna.samplers.RandomSampler(seed=seed)
    try:
        study = optuna.create_study(study_name=study_name, storage=storage, directions=directions, sampler=chosen,
                                    load_if_exists=True)
    except ValueError as error:
        raise ValueError(f"Study '{study_name}' exists with other objectives than '{objective}' "
                         f"({directions}); use another --study-name. ({error})") from error
    stored = study.user_attrs.get("objective")
    if stored is None:
        study.set_user_attr("objective", objective)
    elif stored != objective:
        raise ValueError(f"Study '{study_name}' was created for objective '{stored}', not '{objective}'; use "
                         f"another study name or the same objective.")
    return study


def explore(data="default", study_name="attendnext-explore", storage="sqlite:///runs/explore/study.db",
            n_trials=20, objective="netscore", base_variant="micro", input_sizes=(64,), epochs=3, batch_size=32,
            learning_rate=3e-3, max_params=None, max_macs=None, max_tflite_bytes=None, max_arena_bytes=None,
            max_latency_ms=None, min_accuracy=None, out_dir="runs/explore", seed=0, timeout=None,
            space: SearchSpace | None = None, sampler="tpe", reference="micro", train_split="train",
            val_split="val", data_dir=None, latency_runs=50, threads=1, calibration_images=64, max_proposals=None,
            verbose=1) -> ExploreResult:
    """Searches the AttendNeXt spec space on `data` under the builder's rules and the user's limits.

    Args:
        data / train_split / val_split / data_dir: as `data.load_source` ("default": the embedded photographs).
        study_name / storage: the Optuna study; a resumed study keeps its finished trials. `storage=None`: memory.
        n_trials: candidates to train and measure in this call (specs rejected by a rule or a cheap limit are
            recorded too but cost no training and do not count).
        objective: "netscore", "pareto" (int8 top-1 vs latency ratio) or "pareto-size" (and int8 bytes).
        base_variant: the registered variant (or a ModelSpec) the space derives from: stem, stage layout, widths.
        input_sizes: square input sizes to choose from (multiples of the base's output stride, 32).
        epochs / batch_size / learning_rate: the proxy training budget of every candidate.
        max_params / max_macs: checked on the built model before training.
        max_tflite_bytes / max_arena_bytes / max_latency_ms / min_accuracy: checked after int8 conversion
            (latency: median ms of LiteRT in this process, `threads` threads; accuracy: int8 top-1 in [0, 1]).
        out_dir: trial folders, reference models, results.md/json, history.png, pareto.png, best_spec.json and the
            winner's report.
        seed: training, data and sampler seed. timeout: seconds for this call (Optuna's timeout).
        space: a SearchSpace (default SearchSpace()). sampler: "tpe" (default; multi-objective and constrained),
            "nsga2" or "random". reference: the variant whose int8 model is timed beside each candidate.
        max_proposals: stop after this many proposals in this call even if fewer than n_trials trained
            (default 20 × n_trials): a guard when the limits can hardly be met.
    """
    import optuna

    space = space or SearchSpace()
    limits = Limits(max_params=max_params, max_macs=max_macs, max_tflite_bytes=max_tflite_bytes,
                    max_arena_bytes=max_arena_bytes, max_latency_ms=max_latency_ms, min_accuracy=min_accuracy)
    base = get_spec(base_variant)
    if not isinstance(n_trials, int) or n_trials < 0:
        raise ValueError(f"`n_trials` must be a non-negative integer. Received: n_trials={n_trials!r}")
    input_sizes = tuple(int(s) for s in input_sizes)
    final_stride = base.strides[-1]
    bad = [s for s in input_sizes if s < final_stride or s % final_stride]
    if not input_sizes or bad:
        raise ValueError(f"Input sizes must be multiples of {final_stride} (the output stride of '{base.name}'). "
                         f"Received: input_sizes={input_sizes}")
    say = print if verbose else (lambda *a, **k: None)
    if verbose < 2:  # our one line per trial replaces Optuna's (which lists every parameter)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
    os.makedirs(out_dir, exist_ok=True)
    study = open_study(study_name, storage, objective, sampler, seed)
    settings = {"base_variant": base.name, "input_sizes": list(input_sizes), "space": space.to_dict(),
                "epochs": epochs, "batch_size": batch_size, "learning_rate": learning_rate, "data": str(data),
                "reference": get_spec(reference).name, "threads": threads}
    if "settings" not in study.user_attrs:
        study.set_user_attr("settings", settings)

    if n_trials:
        evaluator = Evaluator(data, train_split, val_split, data_dir, epochs=epochs, batch_size=batch_size,
                              learning_rate=learning_rate, seed=seed, reference=reference,
                              reference_dir=os.path.join(out_dir, "reference"), calibration_images=calibration_images,
                              latency_runs=latency_runs, threads=threads)
        if "classes" not in study.user_attrs.get("settings", {}):
            study.set_user_attr("settings", {**study.user_attrs.get("settings", {}), "classes": evaluator.classes})
        evaluated, failures = [], []
        objective_fn = _make_objective(evaluator, base, input_sizes, space, limits, objective, out_dir, say)

        def stop_when_done(study_, trial):
            if trial.user_attrs.get("evaluated") and trial.state == optuna.trial.TrialState.COMPLETE:
                evaluated.append(trial.number)
            if trial.state == optuna.trial.TrialState.FAIL:
                failures.append(trial.user_attrs.get("error", "unknown error"))
            elif trial.state == optuna.trial.TrialState.COMPLETE:
                failures.clear()
            # Enough candidates, or the same failure keeps costing a training run: stop.
            if len(evaluated) >= n_trials or len(failures) >= MAX_FAILURES_IN_A_ROW:
                study_.stop()

        say(f"exploring: study '{study_name}' ({len(study.trials)} trials so far), objective {objective}, "
            f"{n_trials} candidate(s) to train, base '{base.name}', input {list(input_sizes)}, "
            f"{epochs} epoch(s) each; limits: {limits.describe()}")
        study.optimize(objective_fn, n_trials=max_proposals or 20 * n_trials, timeout=timeout,
                       callbacks=[stop_when_done], catch=(Exception,), gc_after_trial=True)
        if len(failures) >= MAX_FAILURES_IN_A_ROW:
            write_report(study, out_dir, limits, objective, verbose=0)
            raise RuntimeError(f"Exploration stopped: {len(failures)} candidates in a row failed; the last with "
                               f"{failures[-1]}. Finished trials are kept in the study.")
    return write_report(study, out_dir, limits, objective, verbose=verbose)


def _make_objective(evaluator, base, input_sizes, space, limits, objective, out_dir, say):
    import optuna

    metric_names = [metric for metric, _ in OBJECTIVES[objective]]

    def objective_fn(trial):
        from attendnext_keras import _keras
        from attendnext_keras.models import AttendNeXt

        _keras.get_keras("keras").backend.clear_session()
        spec = sample_spec(trial, base, input_sizes, space)
        trial.set_user_attr("spec", spec.to_dict())
        trial.set_user_attr("classes", evaluator.classes)
        try:
            check_candidate(spec)
        except ConstraintError as error:
            reason = str(error).splitlines()[0]
            trial.set_user_attr("rejected", f"spec rules: {error.rule}")
            record_constraints(trial, constraint_vector({}, limits, rejected=True))
            say(f"  trial {trial.number}: rejected by the builder's rules ({reason})")
            raise optuna.TrialPruned(reason) from None

        trial_dir = os.path.join(out_dir, "trials", f"trial_{trial.number:04d}")
        os.makedirs(trial_dir, exist_ok=True)
        save_spec(spec, os.path.join(trial_dir, "spec.json"))

        def cheap_limits(metrics):
            trial.set_user_attr("metrics", dict(metrics))
            broken = [name for name in limits.violations(metrics) if name in ("params", "macs")]
            if broken:
                trial.set_user_attr("rejected", "limits: " + ", ".join(broken))
                record_constraints(trial, constraint_vector(metrics, limits, cheap_only=True))
                say(f"  trial {trial.number}: {metrics['params']:,} params, {metrics['macs']:,} MACs break "
                    f"{', '.join(broken)}; not trained")
                raise optuna.TrialPruned(f"breaks {broken}")

        try:
            metrics = evaluator.evaluate(
                lambda: AttendNeXt(spec=spec, input_shape=(spec.input_size, spec.input_size, 3),
                                   classes=evaluator.classes, classifier_activation=None),
                trial_dir, size=spec.input_size, on_profile=cheap_limits)
        except optuna.TrialPruned:
            raise
        except Exception as error:
            trial.set_user_attr("error", f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}")
            raise
        metrics["netscore"] = netscore_of(metrics)
        trial.set_user_attr("metrics", metrics)
        record_constraints(trial, constraint_vector(metrics, limits))
        trial.set_user_attr("evaluated", True)
        broken = limits.violations(metrics)
        say(f"  trial {trial.number}: top-1 {metrics['top1']:.1%} (int8), {metrics['params']:,} params, "
            f"{metrics['tflite_bytes'] / 1024:.1f} KiB, {metrics['latency_ms']:.3f} ms "
            f"(×{metrics['latency_ratio']:.2f} of {evaluator.reference.name}), NetScore {metrics['netscore']:.1f}"
            + (f"; breaks {', '.join(broken)}" if broken else ""))
        values = [float(metrics[name]) for name in metric_names]
        return values[0] if len(values) == 1 else values

    return objective_fn


# --------------------------------------------------------------------------------------------------------------------
# Reporting


def _rule(error: ValueError) -> str:
    """The rule a stored spec broke, briefly: ConstraintError.rule, or the first clause of another error."""
    return getattr(error, "rule", None) or str(error).splitlines()[0].split(": ", 1)[0]


def _feasibility(trial, limits: Limits):
    """(feasible, reason) of a finished trial under the current limits, re-checking its spec against the rules."""
    import optuna

    if trial.state != optuna.trial.TrialState.COMPLETE or not trial.user_attrs.get("evaluated"):
        rejected = trial.user_attrs.get("rejected") or ""
        return False, rejected or trial.user_attrs.get("error") or trial.state.name.lower()
    try:
        check_candidate(ModelSpec.from_dict(trial.user_attrs["spec"]))
    except (ValueError, KeyError, TypeError) as error:
        return False, f"spec rules: {_rule(error)}"
    broken = limits.violations(trial.user_attrs.get("metrics", {}))
    return (not broken), ("limits: " + ", ".join(broken) if broken else "")


def pareto_front(points, directions) -> list:
    """Indices of the points no other point dominates (at least as good in every objective, better in one)."""
    signs = [1.0 if d == "minimize" else -1.0 for d in directions]
    keyed = [[s * v for s, v in zip(signs, p)] for p in points]
    front = []
    for i, p in enumerate(keyed):
        dominated = any(all(q[k] <= p[k] for k in range(len(p))) and any(q[k] < p[k] for k in range(len(p)))
                        for j, q in enumerate(keyed) if j != i)
        if not dominated:
            front.append(i)
    return front


def select_best(trials, limits: Limits, objective: str) -> list:
    """The reported trials: the feasible trial with the best NetScore ("netscore"), or the Pareto front of the
    feasible trials. Trials that break a rule or a limit (recomputed from stored metrics) are never selected."""
    feasible = [t for t in trials if _feasibility(t, limits)[0]]
    if not feasible:
        return []
    metrics = [t.user_attrs["metrics"] for t in feasible]
    if objective == "netscore":
        best = max(range(len(feasible)), key=lambda i: (metrics[i]["netscore"], -feasible[i].number))
        return [feasible[best]]
    names = OBJECTIVES[objective]
    front = pareto_front([[m[name] for name, _ in names] for m in metrics], [d for _, d in names])
    return sorted((feasible[i] for i in front), key=lambda t: (-t.user_attrs["metrics"]["top1"],
                                                              t.user_attrs["metrics"]["latency_ratio"]))


def _spec_summary(spec_dict) -> dict:
    try:
        spec = ModelSpec.from_dict(spec_dict)
    except (ValueError, TypeError, KeyError):
        return {}
    columns = [len(s.columns) for s in spec.stages]
    blocks = [sum(b.kind != "dcac" for b in s.columns[0].blocks) for s in spec.stages]
    dcac = [f"{i}(s{b.dcac.condense_factor},e{b.dcac.embed_ratio:g})" for i, s in enumerate(spec.stages, 1)
            for b in s.columns[0].blocks if b.kind == "dcac"]
    merges = ["-" if len(s.columns) == 1 else s.merge for s in spec.stages]
    return {"input": spec.input_size, "width": spec.width, "columns": "-".join(map(str, columns)),
            "blocks": "-".join(map(str, blocks)), "dcac": " ".join(dcac) or "—", "merge": "/".join(merges),
            "blur": "/".join(str(s.blur_size) for s in spec.stages if s.downsample),
            "aads": "/".join(s.downsample for s in spec.stages if s.downsample), "head": spec.head.hidden}


def trial_rows(trials, limits: Limits, best_numbers=()) -> list:
    rows = []
    for t in trials:
        feasible, reason = _feasibility(t, limits)
        metrics = t.user_attrs.get("metrics", {})
        status = ("best" if t.number in best_numbers else "feasible") if feasible else (reason or t.state.name.lower())
        rows.append({"trial": t.number, "state": t.state.name, "status": status, "feasible": feasible,
                     **_spec_summary(t.user_attrs.get("spec", {})), **{k: v for k, v in metrics.items()
                                                                        if k not in ("ops_outside", "seconds")},
                     "values": t.values, "constraints": t.user_attrs.get("constraints")})
    return rows


def _fmt(value, fmt, scale=None):
    return "—" if value is None else fmt.format(value if scale is None else value * scale)


def markdown_table(rows, best_label="best") -> str:
    header = ("| trial | status | input | width | columns | blocks | DC-AC (stage(s,e)) | merge | blur | params | "
              "MACs | int8 top-1 | int8 KiB | arena KiB | latency ms | × ref | NetScore |")
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    for r in rows:
        status = r["status"]
        status = f"**{best_label}**" if status == "best" else status
        lines.append(
            f"| {r['trial']} | {status[:70]} | {r.get('input', '—')} | {_fmt(r.get('width'), '{:g}')} | "
            f"{r.get('columns', '—')} | {r.get('blocks', '—')} | {r.get('dcac', '—')} | {r.get('merge', '—')} | "
            f"{r.get('blur', '—')} | {_fmt(r.get('params'), '{:,}')} | {_fmt(r.get('macs'), '{:,}')} | "
            f"{_fmt(r.get('top1'), '{:.1%}')} | {_fmt(r.get('tflite_bytes'), '{:.1f}', 1 / 1024)} | "
            f"{_fmt(r.get('arena_bytes'), '{:.1f}', 1 / 1024)} | {_fmt(r.get('latency_ms'), '{:.3f}')} | "
            f"{_fmt(r.get('latency_ratio'), '{:.2f}')} | {_fmt(r.get('netscore'), '{:.1f}')} |")
    return "\n".join(lines)


def _plot_history(rows, objective, path):
    from attendnext_keras.benchmark import _figure

    done = [r for r in rows if r.get("top1") is not None]
    names = [name for name, _ in OBJECTIVES[objective]]
    labels = {"netscore": "NetScore Ω", "top1": "int8 top-1", "latency_ratio": "latency ÷ reference",
              "tflite_bytes": "int8 .tflite KiB"}
    fig, axes = _figure(4.5 * len(names), 3.8, len(names))
    for ax, (name, direction) in zip(axes, OBJECTIVES[objective]):
        scale = 1 / 1024 if name == "tflite_bytes" else 100 if name == "top1" else 1
        for feasible, marker, colour in ((True, "o", "#c0392b"), (False, "x", "#7f8c8d")):
            pts = [(r["trial"], r[name] * scale) for r in done if r["feasible"] == feasible]
            if pts:
                ax.scatter(*zip(*pts), marker=marker, color=colour, zorder=3,
                           label="feasible" if feasible else "breaks a limit")
        best, line = None, []
        for r in sorted((r for r in done if r["feasible"]), key=lambda r: r["trial"]):
            v = r[name] * scale
            best = v if best is None else (max(best, v) if direction == "maximize" else min(best, v))
            line.append((r["trial"], best))
        if line:
            ax.step(*zip(*line), where="post", color="#c0392b", lw=1, label="best so far")
        ax.set_xlabel("trial")
        ax.set_ylabel(labels[name] + (" (%)" if name == "top1" else ""))
        ax.set_title(f"{labels[name]} ({direction})", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    return os.fspath(path)


def _plot_pareto(rows, best_numbers, path, reference):
    from attendnext_keras.benchmark import _figure

    done = [r for r in rows if r.get("top1") is not None]
    fig, (ax,) = _figure(6.5, 4.6, 1)
    for feasible, marker, colour, label in ((True, "o", "#e59866", "feasible"),
                                            (False, "x", "#7f8c8d", "breaks a limit")):
        pts = [(r["latency_ratio"], 100 * r["top1"]) for r in done if r["feasible"] == feasible]
        if pts:
            ax.scatter(*zip(*pts), marker=marker, color=colour, zorder=3, label=label)
    front = sorted(((r["latency_ratio"], 100 * r["top1"], r["trial"]) for r in done if r["trial"] in best_numbers))
    if front:
        ax.plot([p[0] for p in front], [p[1] for p in front], "o--", color="#c0392b", lw=1, zorder=4,
                label="reported (best / front)")
        for x, y, n in front:
            ax.annotate(f"t{n}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.axvline(1.0, color="black", lw=0.8, ls=":", label=f"reference ({reference}) latency")
    ax.set_xlabel(f"int8 LiteRT latency ÷ {reference}'s (same process)")
    ax.set_ylabel("int8 top-1 (%)")
    ax.set_title("Accuracy against measured int8 latency", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    return os.fspath(path)


def winner_report(trial, classes=None) -> str:
    """The full report of a trial: layout, profile per stage, int8 size, partitions, arena, latency, accuracy."""
    from attendnext_keras.models import AttendNeXt
    from attendnext_keras.profiling import profile

    spec = ModelSpec.from_dict(trial.user_attrs["spec"])
    m = trial.user_attrs["metrics"]
    classes = classes or trial.user_attrs.get("classes") or 1000  # the head's width only changes the profile
    model = AttendNeXt(spec=spec, input_shape=(spec.input_size, spec.input_size, 3), classes=classes,
                       classifier_activation=None)
    lines = [f"# Trial {trial.number}: {spec.name}", "", "```", summarize_spec(spec), "```", "",
             "## Profile (Keras model, BatchNormalization statistics included)", "", "```", profile(model).table(),
             "```", "", "## int8 (post-training quantization, int8 input/output)", "",
             f"- top-1 on the held-out split: {m['top1']:.2%} (float before conversion: "
             f"{_fmt(m.get('float_top1'), '{:.2%}')})",
             f"- NetScore: {m['netscore']:.2f}",
             f"- .tflite: {m['tflite_bytes']:,} bytes (weights {m.get('weight_bytes', 0):,} bytes)",
             f"- XNNPACK partitions: {m['partitions']}"
             + (f"; ops outside XNNPACK: {', '.join(m['ops_outside'])}" if m.get("ops_outside") else
                "; every op inside XNNPACK"),
             "- TFLite Micro arena: " + (f"{m['arena_bytes']:,} bytes" if m.get("arena_bytes") else
                                          "— (TFLite Micro could not load the model)"),
             f"- LiteRT latency: {m['latency_ms']:.3f} ms, reference {m['reference_latency_ms']:.3f} ms "
             f"(×{m['latency_ratio']:.2f}), timed interleaved in one process",
             "- proxy cost: " + ", ".join(f"{k} {v:.0f} s" for k, v in m.get("seconds", {}).items())]
    return "\n".join(lines) + "\n"


def write_report(study, out_dir, limits: Limits | None = None, objective=None, verbose=1) -> ExploreResult:
    """Writes results.md, results.json, history.png, pareto.png, best_spec.json (+ pareto/ specs) and winner/ from a
    study's trials; the same files `explore` writes (useful for a study other machines filled)."""
    from attendnext_keras.conversion import write_atomic

    limits = limits or Limits()
    objective = objective or study.user_attrs.get("objective", "netscore")
    os.makedirs(out_dir, exist_ok=True)
    trials = study.get_trials(deepcopy=False)
    best = select_best(trials, limits, objective)
    best_numbers = {t.number for t in best}
    rows = trial_rows(trials, limits, best_numbers)
    winner = best[0] if best else None
    paths = {}
    settings = study.user_attrs.get("settings", {})
    counts = {}
    for r in rows:
        key = "evaluated" if r.get("top1") is not None else "rejected" if r["state"] == "PRUNED" else r["state"].lower()
        counts[key] = counts.get(key, 0) + 1
    label = "best" if objective == "netscore" else "front"
    table = markdown_table(rows, best_label=label)
    header = [f"# Design exploration: study '{study.study_name}'", "",
              f"Objective: {objective} ({', '.join(f'{n} {d}' for n, d in OBJECTIVES[objective])}); "
              f"limits: {limits.describe()}; base '{settings.get('base_variant', '?')}', "
              f"{settings.get('epochs', '?')} proxy epoch(s), reference {settings.get('reference', 'micro')}.",
              "Trials: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) + ".", ""]
    if winner is not None:
        m = winner.user_attrs["metrics"]
        header += [f"Winner: trial {winner.number}, int8 top-1 {m['top1']:.1%}, {m['params']:,} params, "
                   f"{m['macs']:,} MACs, NetScore {m['netscore']:.1f}, {m['latency_ms']:.3f} ms "
                   f"(×{m['latency_ratio']:.2f} of the reference). Spec: `best_spec.json`.", ""]
    else:
        header += ["No feasible trial yet: nothing is reported as best.", ""]
    paths["table"] = write_atomic(os.path.join(out_dir, "results.md"),
                                  ("\n".join(header) + "\n" + table + "\n").encode("utf-8"))
    results = {"study": study.study_name, "objective": objective, "limits": dataclasses.asdict(limits),
               "settings": settings, "best": sorted(best_numbers), "winner": None if winner is None else winner.number,
               "trials": [{**r, "spec": t.user_attrs.get("spec"), "params_sampled": t.params}
                          for r, t in zip(rows, trials)]}
    paths["json"] = write_atomic(os.path.join(out_dir, "results.json"),
                                 json.dumps(results, indent=1, default=str).encode("utf-8"))
    if any(r.get("top1") is not None for r in rows):
        paths["history_png"] = _plot_history(rows, objective, os.path.join(out_dir, "history.png"))
        paths["pareto_png"] = _plot_pareto(rows, best_numbers, os.path.join(out_dir, "pareto.png"),
                                           settings.get("reference", "micro"))
    winner_spec = None
    if winner is None and os.path.exists(os.path.join(out_dir, "best_spec.json")):
        os.remove(os.path.join(out_dir, "best_spec.json"))  # from an earlier report: no longer feasible
    if winner is not None:
        winner_spec = ModelSpec.from_dict(winner.user_attrs["spec"])
        paths["spec"] = save_spec(winner_spec, os.path.join(out_dir, "best_spec.json"))
        if objective != "netscore":
            front_dir = os.path.join(out_dir, "pareto")
            shutil.rmtree(front_dir, ignore_errors=True)
            os.makedirs(front_dir)
            paths["front_specs"] = [save_spec(ModelSpec.from_dict(t.user_attrs["spec"]),
                                              os.path.join(front_dir, f"trial_{t.number:04d}.json")) for t in best]
        winner_dir = os.path.join(out_dir, "winner")
        os.makedirs(winner_dir, exist_ok=True)
        classes = winner.user_attrs.get("classes") or settings.get("classes")
        paths["winner_report"] = write_atomic(os.path.join(winner_dir, "report.md"),
                                              winner_report(winner, classes).encode("utf-8"))
        source = winner.user_attrs["metrics"].get("tflite_path")
        if source and os.path.exists(source):
            paths["winner_tflite"] = shutil.copyfile(source, os.path.join(winner_dir, "model_int8.tflite"))
    if verbose:
        print("\n" + table)
        print(f"\nwrote {', '.join(str(p) for k, p in paths.items() if k != 'front_specs')}")
    return ExploreResult(study=study, objective=objective, best_trials=best, winner=winner, winner_spec=winner_spec,
                         rows=rows, paths=paths)

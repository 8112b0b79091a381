"""Machine-driven design exploration: a constrained search over AttendNeXt specs on your data and your device.

The paper designs AttendNeXt by generative synthesis: a generator proposes architectures, an indicator function
rejects those that break the design constraints, and the search maximises a universal performance function such as
NetScore. This module does the same, openly, with Optuna:

    from attendnext_keras.config import DataConfig, ExploreConfig
    from attendnext_keras.experiments.explore import explore
    result = explore(ExploreConfig(study_name="flowers", trials=20, objective="netscore", base_variant="micro",
                                   input_sizes=(64,), epochs=5, max_tflite_bytes=256_000, max_arena_bytes=256_000),
                     data=DataConfig(source="path/to/images"))
    model = attendnext_keras.AttendNeXt(spec=attendnext_keras.load_spec(result.paths["spec"]), classes=5)

Each trial, in order (cheap checks first, so a rejected candidate costs milliseconds to a second):

1. `sample_spec` turns the trial's choices (define-by-run) into a ModelSpec derived from the base variant.
2. `check_candidate` applies the builder's rules (`specs.check_constraints`: columnar design, no strided point-wise
   convolutions, anti-aliased downsampling, DC-AC in ≥ 2 stages; plus an input size the spec can take). A spec that
   breaks one is never built or trained: the trial is pruned with the reason in its user attributes.
3. The model is built and profiled (parameters, MACs); `max_params` / `max_macs` are checked before training.
4. Proxy training (`epochs` on the user's data), int8 post-training quantization, top-1 of the int8 model on the
   selection half of the held-out split (what the search optimises; the test half is measured and reported only), `.tflite` size, XNNPACK partitions, TFLite Micro arena, and LiteRT latency timed interleaved with a
   reference int8 model (`reference`, default the `micro` variant at the same input size, converted once per study
   and input size) in the same process, so latency is recorded in ms and as a ratio to the reference.
5. `max_tflite_bytes`, `max_arena_bytes`, `max_latency_ms` (ms of this process), `min_accuracy` and
   `max_partitions` (XNNPACK partitions plus ops left outside them: 1 = the whole int8 graph in one partition) are
   checked.

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

import inspect
import logging
import os
import time
import warnings

import numpy as np
import optuna

from attendnext_keras import _io, _keras, profiling
from attendnext_keras.config import DataConfig, ExploreConfig
from attendnext_keras import data as data_module
from attendnext_keras.deploy import conversion, litert
from attendnext_keras.deploy.report import micro_check
from attendnext_keras.experiments.explore.report import ExploreResult, write_report
from attendnext_keras.experiments.explore.space import (CONSTRAINT_NAMES, OBJECTIVES, SAMPLERS, Limits,
                                                        _native_constraints,
                                                        check_candidate, constraint_vector, constraints_func,
                                                        netscore_of, record_constraints, sample_spec)
from attendnext_keras.models import AttendNeXt
from attendnext_keras.specs import ConstraintError, get_spec, load_spec, save_spec
from attendnext_keras.training import TrainConfig, evaluate, train

logger = logging.getLogger(__name__)

MAX_FAILURES_IN_A_ROW = 3
"""`explore` stops when this many trials in a row raise (a systematic error should not cost every training run)."""


class Evaluator:
    """Data, calibration images and reference models for one exploration (shared by its trials and by benchmarks).

    The held-out split is halved once (`data.holdout_split`, or `test_split` when given): candidates are scored
    and chosen on the selection half; the test half is measured for the report only, so the reported accuracy of
    the winner is not the one that selected it. `evaluate(build, out_dir)` trains the model `build()` returns with
    the proxy budget and measures it; the reference int8 model for an input size is converted once.
    """

    def __init__(self, data="default", train_split="train", val_split="val", data_dir=None, epochs=1,
                 batch_size=32, learning_rate=3e-3, seed=0, reference="micro", reference_dir=None,
                 calibration_images=64, latency_runs=50, threads=1, test_split=None):
        self.train_source, val_source = data_module.load_splits(data, train_split, val_split, data_dir)
        if test_split:
            self.select_source = val_source
            self.test_source = data_module.load_source(data, test_split, data_dir)
        else:
            self.select_source, self.test_source = data_module.holdout_split(val_source, seed=0)
        self.classes = len(self.train_source.class_names)
        self.epochs, self.batch_size, self.learning_rate, self.seed = epochs, batch_size, learning_rate, seed
        # A variant name, a ModelSpec or a spec JSON file.
        self.reference = load_spec(reference) if str(reference).endswith(".json") else get_spec(reference)
        self.reference_dir = reference_dir
        self.calibration_count = calibration_images
        self.latency_runs, self.threads = latency_runs, threads
        self._datasets, self._calibration, self._references = {}, {}, {}

    def datasets(self, size):
        """(train, selection, test) pipelines at `size`, built once."""
        if size not in self._datasets:
            # Full batches only: a smaller last batch would trace the training step a second time (seconds per
            # candidate); the shuffle changes which images are left out each epoch.
            full = self.train_source.num_examples >= self.batch_size
            self._datasets[size] = (
                data_module.make_dataset(self.train_source, size, self.batch_size, training=True, seed=self.seed,
                                         crop_scale=(0.25, 1.0), drop_remainder=full),
                data_module.make_dataset(self.select_source, size, self.batch_size, training=False),
                data_module.make_dataset(self.test_source, size, self.batch_size, training=False))
        return self._datasets[size]

    def calibration(self, size):
        if size not in self._calibration:
            count = min(self.calibration_count, self.train_source.num_examples)
            self._calibration[size] = data_module.calibration_images(self.train_source, size, count=count)
        return self._calibration[size]

    def reference_blob(self, size) -> bytes:
        """The reference int8 model at `size` (random weights: latency does not depend on them), converted once."""
        if size in self._references:
            return self._references[size]
        path = (os.path.join(self.reference_dir, f"reference_{self.reference.name}_{size}px_{self.classes}cls.tflite")
                if self.reference_dir else None)
        if path and os.path.exists(path):
            blob = litert.read_tflite(path)
        else:
            model = AttendNeXt(spec=self.reference.replace(input_size=size), input_shape=(size, size, 3),
                               classes=self.classes, classifier_activation=None)
            blob = conversion.to_tflite(model, "int8-ptq", representative_data=self.calibration(size))
            if path:
                os.makedirs(self.reference_dir, exist_ok=True)
                _io.write_atomic(path, blob)
        self._references[size] = blob
        return blob

    def train_config(self):
        return TrainConfig(epochs=self.epochs, batch_size=self.batch_size, learning_rate=self.learning_rate,
                           seed=self.seed, mixed_precision="float32")

    def evaluate(self, model, out_dir, size=None, on_profile=None, resume=False) -> dict:
        """Trains `model` (a Keras model or a function building one), converts it to int8 and measures it.

        `on_profile(metrics)` runs after profiling, before training: raising there (a cheap constraint) skips the
        rest. Returns the metrics: params, macs, peak_activation_bytes, float_top1, top1 (int8, LiteRT, selection
        half: what the search optimises), test_top1 (int8, test half: reported only), tflite_bytes, weight_bytes,
        partitions, ops_outside, arena_bytes, latency_ms, reference_latency_ms, latency_ratio, seconds, tflite_path.
        """
        model = model() if callable(model) and not hasattr(model, "layers") else model
        size = size or int(model.inputs[0].shape[1])
        prof = profiling.profile(model)
        metrics = {"params": prof.params, "macs": prof.macs, "peak_activation_bytes": prof.peak_activation_bytes}
        if on_profile is not None:
            on_profile(metrics)
        reference = self.reference_blob(size)  # converted on first use of a size: not the candidate's cost
        started = time.perf_counter()
        train_ds, select_ds, test_ds = self.datasets(size)
        # No validation inside fit (its step would be traced too); the float model is scored once, eagerly. `resume`:
        # continue an interrupted evaluation of the same model in `out_dir` (a benchmark's baseline started again);
        # without it an earlier run there is refused, never silently continued with another model's weights.
        result = train(model, train_ds, None, self.train_config(), out_dir=os.path.join(out_dir, "train"),
                       resume=resume, verbose=0)
        metrics["float_top1"] = float(evaluate(result.model, select_ds)["top1"])
        trained = time.perf_counter()
        blob = conversion.to_tflite(result.model, "int8-ptq", representative_data=self.calibration(size))
        converted = time.perf_counter()
        metrics["tflite_path"] = _io.write_atomic(os.path.join(out_dir, "model_int8.tflite"), blob)
        metrics["top1"] = float(litert.evaluate_tflite(blob, select_ds)["top1"])
        metrics["test_top1"] = float(litert.evaluate_tflite(blob, test_ds)["top1"])
        metrics.update(self._deployment(blob, reference))
        metrics["seconds"] = {"train": trained - started, "convert": converted - trained,
                              "measure": time.perf_counter() - converted}
        return metrics

    def _deployment(self, blob, reference) -> dict:
        """Size, partitions, TFLM arena and latency (timed interleaved with the reference) of an int8 model."""
        report = litert.delegation_report(blob)
        samples = litert.time_interleaved({"candidate": blob, "reference": reference}, num_threads=self.threads,
                                          runs=self.latency_runs, seed=self.seed)
        latency, reference_latency = float(np.median(samples["candidate"])), float(np.median(samples["reference"]))
        return {"tflite_bytes": len(blob), "weight_bytes": int(litert.weight_bytes(blob)),
                "partitions": int(report["partitions"]), "ops_outside": list(report["ops_outside"]),
                # what `max_partitions` limits: 1 only when the whole graph is one XNNPACK partition
                "graph_segments": int(report["partitions"]) + len(report["ops_outside_indices"]),
                "arena_bytes": micro_check(blob)["arena_bytes"],  # None when TFLM cannot run it
                "latency_ms": latency, "reference_latency_ms": reference_latency,
                "latency_ratio": latency / reference_latency}


def _sqlite_path(storage):
    """The database file of a "sqlite:///…" URL; None for other storages and in-memory SQLite."""
    if isinstance(storage, str) and storage.startswith("sqlite:///"):
        path = storage[len("sqlite:///"):]
        return path if path and path != ":memory:" else None
    return None


def _sqlite_folder(storage):
    path = _sqlite_path(storage)
    if path:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)


def open_study(study_name, storage, objective="netscore", sampler="tpe", seed=0):
    """Creates or loads (load_if_exists) a study with the objective's directions and a constrained sampler.

    `storage`: None (in memory), an RDB URL ("sqlite:///runs/explore/study.db", "postgresql://…", "mysql://…") or
    an optuna storage object. RDB URLs get a heartbeat: trials of a killed process are marked failed and retried
    once when the study resumes."""
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


def evaluated_trials(study_name, storage) -> int:
    """How many candidates the stored study `study_name` has trained and scored; 0 when there is none (and nothing is
    created). `ExploreConfig.trials` counts what one call trains: a caller that wants N in all, across
    interruptions, asks for N minus this."""
    path = _sqlite_path(storage)
    if path and not os.path.exists(path):
        return 0
    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        return 0
    return sum(1 for t in study.get_trials(deepcopy=False)
               if t.state == optuna.trial.TrialState.COMPLETE and t.user_attrs.get("evaluated"))


def explore(config: ExploreConfig | None = None, data: DataConfig | None = None, verbose: int = 1,
            **overrides) -> ExploreResult:
    """Searches the AttendNeXt spec space on `data` under the builder's rules and the limits of `config`.

    `config` (an ExploreConfig; its fields are documented there) with `overrides` applied, e.g.
    `explore(data=DataConfig(source="flowers"), trials=5, epochs=1)`; `data` (a DataConfig, default the embedded
    photographs) gives the images and splits. A resumed study keeps its finished trials. Candidates are chosen on
    the held-out split's selection half; the test half is reported only. Returns an ExploreResult.
    """
    config = (config or ExploreConfig()).replace(**overrides)
    data = data or DataConfig()
    base = get_spec(config.base_variant)
    final_stride = base.strides[-1]
    bad = [s for s in config.input_sizes if s < final_stride or s % final_stride]
    if bad:
        raise ValueError(f"Input sizes must be multiples of {final_stride} (the output stride of '{base.name}'). "
                         f"Received: input_sizes={list(config.input_sizes)}")
    limits = Limits.of(config)
    if verbose < 2:  # our one line per trial replaces Optuna's (which lists every parameter)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
    # The data and the reference are checked before anything is written: a bad folder leaves no study behind.
    evaluator = evaluator_for(config, data) if config.trials else None
    os.makedirs(config.out_dir, exist_ok=True)
    study = open_study(config.study_name, config.storage, config.objective, config.sampler, config.seed)
    if "settings" not in study.user_attrs:
        study.set_user_attr("settings", {**config.to_dict(), "base_variant": base.name, "data": data.to_dict()})
    if config.trials:
        _search(study, config, evaluator, base, limits, verbose)
    return write_report(study, config.out_dir, limits, config.objective, verbose=verbose)


def evaluator_for(config: ExploreConfig, data: DataConfig) -> Evaluator:
    """The Evaluator of an exploration's settings (benchmarks train their baselines with the same one)."""
    return Evaluator(data.source, data.train_split, data.val_split, data.data_dir, epochs=config.epochs,
                     batch_size=config.batch_size, learning_rate=config.learning_rate, seed=config.seed,
                     reference=config.reference, reference_dir=os.path.join(config.out_dir, "reference"),
                     calibration_images=config.calibration_images, latency_runs=config.latency_runs,
                     threads=config.threads, test_split=config.test_split)


def _search(study, config, evaluator, base, limits, verbose):
    """Proposes and evaluates candidates until `config.trials` trained, or too many failed in a row."""
    stored = {len(t.user_attrs["constraints"]) for t in study.get_trials(deepcopy=False)
              if "constraints" in t.user_attrs}
    if stored - {len(CONSTRAINT_NAMES)}:  # the samplers refuse to compare trials with other constraint counts
        raise ValueError(f"Study '{config.study_name}' holds trials with {sorted(stored)} constraints, stored before "
                         f"'{CONSTRAINT_NAMES[-1]}' was one (now {len(CONSTRAINT_NAMES)}); its reports still work "
                         f"(--trials 0), but new trials need another study name.")
    if "classes" not in study.user_attrs.get("settings", {}):
        study.set_user_attr("settings", {**study.user_attrs.get("settings", {}), "classes": evaluator.classes})
    say = logger.info if verbose else logger.debug
    evaluated, failures = [], []

    def stop_when_done(study_, trial):
        if trial.user_attrs.get("evaluated") and trial.state == optuna.trial.TrialState.COMPLETE:
            evaluated.append(trial.number)
        if trial.state == optuna.trial.TrialState.FAIL:
            failures.append(trial.user_attrs.get("error", "unknown error"))
        elif trial.state == optuna.trial.TrialState.COMPLETE:
            failures.clear()
        if len(evaluated) >= config.trials or len(failures) >= MAX_FAILURES_IN_A_ROW:
            study_.stop()  # enough candidates, or the same failure keeps costing a training run

    say(f"exploring: study '{config.study_name}' ({len(study.trials)} trials so far), objective {config.objective}, "
        f"{config.trials} candidate(s) to train, base '{base.name}', input {list(config.input_sizes)}, "
        f"{config.epochs} epoch(s) each; limits: {limits.describe()}")
    objective_fn = _make_objective(evaluator, base, config, limits, say)
    study.optimize(objective_fn, n_trials=config.max_proposals or 20 * config.trials, timeout=config.timeout,
                   callbacks=[stop_when_done], catch=(Exception,), gc_after_trial=True)
    if len(failures) >= MAX_FAILURES_IN_A_ROW:
        write_report(study, config.out_dir, limits, config.objective, verbose=0)
        raise RuntimeError(f"Exploration stopped: {len(failures)} candidates in a row failed; the last with "
                           f"{failures[-1]}. Finished trials are kept in the study.")


def _make_objective(evaluator, base, config, limits, say):
    metric_names = [metric for metric, _ in OBJECTIVES[config.objective]]

    def objective_fn(trial):
        _keras.get_keras("keras").backend.clear_session()
        spec = sample_spec(trial, base, config.input_sizes, config.space)
        trial.set_user_attr("spec", spec.to_dict())
        trial.set_user_attr("classes", evaluator.classes)
        _check_or_prune(trial, spec, limits, say, config.builds_at)
        # Trial numbers restart in each stored study: one folder per study, so two never share a trial's run.
        trial_dir = os.path.join(config.out_dir, "trials", config.study_name, f"trial_{trial.number:04d}")
        os.makedirs(trial_dir, exist_ok=True)
        save_spec(spec, os.path.join(trial_dir, "spec.json"))
        try:
            metrics = evaluator.evaluate(
                lambda: AttendNeXt(spec=spec, input_shape=(spec.input_size, spec.input_size, 3),
                                   classes=evaluator.classes, classifier_activation=None),
                trial_dir, size=spec.input_size, on_profile=_cheap_limits(trial, limits, say))
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
        say(f"  trial {trial.number}: top-1 {metrics['top1']:.1%} (int8, selection half), {metrics['params']:,} "
            f"params, {metrics['tflite_bytes'] / 1024:.1f} KiB, {metrics['latency_ms']:.3f} ms "
            f"(×{metrics['latency_ratio']:.2f} of {evaluator.reference.name}), NetScore {metrics['netscore']:.1f}"
            + (f"; breaks {', '.join(broken)}" if broken else ""))
        values = [float(metrics[name]) for name in metric_names]
        return values[0] if len(values) == 1 else values

    return objective_fn


def _check_or_prune(trial, spec, limits, say, also_sizes=()):
    """Prunes a proposal that breaks the builder's rules, or cannot take `also_sizes`, before anything is built."""
    try:
        check_candidate(spec, also_sizes)
    except ConstraintError as error:
        reason = str(error).splitlines()[0]
        trial.set_user_attr("rejected", f"spec rules: {error.rule}")
        record_constraints(trial, constraint_vector({}, limits, rejected=True))
        say(f"  trial {trial.number}: rejected by the builder's rules ({reason})")
        raise optuna.TrialPruned(reason) from None


def _cheap_limits(trial, limits, say):
    """The check run after profiling, before training: parameter and MAC limits prune the trial."""
    def check(metrics):
        trial.set_user_attr("metrics", dict(metrics))
        broken = [name for name in limits.violations(metrics) if name in ("params", "macs")]
        if broken:
            trial.set_user_attr("rejected", "limits: " + ", ".join(broken))
            record_constraints(trial, constraint_vector(metrics, limits, cheap_only=True))
            say(f"  trial {trial.number}: {metrics['params']:,} params, {metrics['macs']:,} MACs break "
                f"{', '.join(broken)}; not trained")
            raise optuna.TrialPruned(f"breaks {broken}")

    return check

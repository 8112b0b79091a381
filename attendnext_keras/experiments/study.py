"""The proxy-accuracy study: does AttendNeXt beat the MobileNet families at equal accuracy, and do DC-AC and AADS help?

    attendnext study --stage front --data ../shared/data/flowers160 --out benchmarks/results/study   # models × seeds
    attendnext study --stage ablations ...     # the paper's ablations of one fixed spec
    attendnext study --stage latency ...       # every studied model timed at deployment size, one interleaved run
    attendnext study --stage report ...        # tables and plots again from results.json, without training

Protocol. Every model is trained from scratch with one recipe (the config's `train` section; `--recipe FILE`) at
`input_size` for `epochs`, once per seed. The data folder's `train/` trains; its `val/` is halved once,
deterministically and stratified (`data.holdout_split`): the selection half picks the best epoch (the only choice
made), the test half is only ever reported. A `test/` folder (or `test_split`) replaces the halves. Each run records
test top-1, which test images it got right (for paired statistics), the selection curve, parameters and MACs, training
time, and the shift consistency of its best model (`experiments.shift`).

Resumption. `DIR/results.json` holds one entry per (model, seed) with a hash of the model's architecture (not its
name: a renamed model keeps its runs), the recipe, the input size, the epochs and the data listing. A rerun skips
entries whose hash matches; a killed run continues from its last epoch checkpoint in `DIR/runs/` (git-ignored); a
changed recipe or data listing gives a new hash, so its runs are new entries, never mixed with the old (reports use the
current hash only). A run one stage already trained (the ablations' default arm is a front model) is recorded again
for the other, not trained twice. One process at a time holds `DIR`.
"""

from __future__ import annotations

import csv
import dataclasses
import gc
import glob
import hashlib
import json
import logging
import os
import re
import time
import warnings

import numpy as np

from attendnext_keras import _io, _keras, data, profiling, provenance, registry
from attendnext_keras.config import STUDY_RUN_ORDER, BenchmarkConfig, DataConfig, StudyConfig, TrainConfig
from attendnext_keras.experiments import ablations, benchmark, benchmark_report, shift, study_report
from attendnext_keras.saving import load_model
from attendnext_keras.specs import VARIANTS, ModelSpec, get_spec, load_spec, save_spec
from attendnext_keras.training import train

logger = logging.getLogger(__name__)
SCHEMA = 1
PROTOCOL = 2
"""Part of every run's hash: raised when the code changes what a run computes for the same inputs (2: the data stream
and random state continue across a resume, 2026-12-01), so runs of different code are never mixed."""


@dataclasses.dataclass
class Candidate:
    """A model the study trains: `label` names it in results, `name` is what the registry builds (a registry name or
    a spec file), `arm` is its ablation arm (None on the front)."""

    label: str
    name: str
    family: str
    arm: str | None = None
    spec: ModelSpec | None = None  # an ablation arm's spec, written to `name` (a spec file) once the folder is held

    def build(self, input_size, classes):
        extra = {"enforce_constraints": False} if self.family == "attendnext" else {}
        return registry.create_model(self.spec or self.name, input_size=input_size, classes=classes, **extra)

    def write_spec(self):
        if self.spec is not None:
            os.makedirs(os.path.dirname(self.name), exist_ok=True)
            save_spec(self.spec, self.name)


@dataclasses.dataclass
class StudyData:
    train: object
    select: object
    test: object
    listing_hash: str
    description: dict


def load_study_data(source: DataConfig, test_split=None) -> StudyData:
    """The three splits of the protocol; fails before any training when the held-out split cannot be halved."""
    train_source, val_source = data.load_splits(source.source, source.train_split, source.val_split, source.data_dir)
    if test_split is None and os.path.isdir(os.path.join(str(source.source), "test")):
        test_split = "test"
    if test_split:
        select, test = val_source, data.load_source(source.source, test_split, source.data_dir)
        data.check_classes(test.num_classes, test.class_names, train_source, f"Test split '{test_split}'")
    else:
        select, test = data.holdout_split(val_source, seed=0)
    root = data.default_data_dir() if source.source == "default" else source.source
    listing = {part.split: [[_relative(f, root), label] for f, label in zip(part.files, part.labels)]
               for part in (train_source, select, test)}
    listing["classes"] = train_source.class_names
    digest = hashlib.sha256(json.dumps(listing, sort_keys=True).encode()).hexdigest()
    description = {"source": str(source.source), "classes": train_source.class_names,
                   "train": train_source.num_examples, "selection": select.num_examples, "test": test.num_examples,
                   "selection_split": select.split, "test_split": test.split}
    return StudyData(train_source, select, test, digest, description)


def _relative(path, root):
    try:
        return os.path.relpath(path, root)
    except ValueError:
        return path


def stage_models(config: StudyConfig, out_dir) -> list:
    """The stage's models: the front's registry names (or spec files) and then its candidates, or the ablation arms
    (their spec files are written by `_train_stage`, once the study folder is held)."""
    if config.stage == "front":
        return [Candidate(label=n, name=n, family=registry.model_info(n).family) for n in front_names(config)]
    base = get_spec(config.ablation_base[len("attendnext_"):] if config.ablation_base.startswith("attendnext_")
                    else config.ablation_base)
    specs_dir = os.path.join(out_dir, "specs")
    return [Candidate(label=f"attendnext_{base.name}:{arm}", name=os.path.join(specs_dir, f"{spec.name}.json"),
                      family="attendnext", arm=arm, spec=spec)
            for arm, spec in ablations.ablation_specs(base, config.input_size).items()]


def front_names(config: StudyConfig) -> list:
    """What the front stage trains and the latency stage times: `models`, then `candidates`."""
    return list(dict.fromkeys(config.models + config.candidates))


# Recipe fields added after the study's protocol was fixed, with the value that trains exactly as before: left out of
# the hash at that value, so that a new option does not orphan the runs already trained.
LATER_RECIPE_FIELDS = {"reference_batch_size": None}


def run_hash(candidate: Candidate, recipe: TrainConfig, config: StudyConfig, study_data: StudyData, classes) -> str:
    """The hash of what makes a run: architecture (not the model's name), recipe (without the seed), input size,
    epochs, data listing."""
    return run_hashes(candidate, recipe, config, study_data, classes)[0]


def run_hashes(candidate: Candidate, recipe: TrainConfig, config: StudyConfig, study_data: StudyData,
               classes) -> tuple:
    """(hash, legacy hash): the legacy hash (runs trained until 2026-12-02) also covered the model's own name, so a
    renamed model lost its runs; `_rekey_legacy` moves those runs to the hash without it."""
    keras = _keras.get_keras("keras")
    keras.backend.clear_session()  # Keras names unnamed layers by a global counter: start it afresh for each build
    described = _architecture(json.loads(candidate.build(config.input_size, classes).to_json()))
    keras.backend.clear_session()
    unnamed = {**described, "config": {k: v for k, v in described["config"].items() if k != "name"}}
    recipe_values = {k: v for k, v in recipe.to_dict().items() if k not in ("seed", "epochs")  # both set per run
                     and not (k in LATER_RECIPE_FIELDS and v == LATER_RECIPE_FIELDS[k])}

    def digest(architecture):
        material = {"architecture": hashlib.sha256(json.dumps(architecture, sort_keys=True).encode()).hexdigest(),
                    "recipe": recipe_values, "input_size": config.input_size, "epochs": config.epochs,
                    "data": study_data.listing_hash, "protocol": PROTOCOL}
        return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:16]

    return digest(unnamed), digest(described)


def _architecture(value):
    """A model's JSON config without where its classes live in Python (`module`, `registered_name`): the same
    architecture hashes the same whichever module defines a layer class."""
    if isinstance(value, dict):
        return {k: _architecture(v) for k, v in value.items() if k not in ("module", "registered_name")}
    if isinstance(value, list):
        return [_architecture(v) for v in value]
    return value


# --------------------------------------------------------------------------------------------------------------------
# Results file


def results_path(out_dir) -> str:
    return os.path.join(out_dir, "results.json")


def load_results(out_dir) -> dict:
    path = results_path(out_dir)
    if not os.path.exists(path):
        return {"schema": SCHEMA, "runs": []}
    results = _io.read_json(path, "Study results")
    if not isinstance(results, dict) or not isinstance(results.get("runs"), list):
        raise ValueError(f"'{path}' is not a study results file (no list 'runs').")
    return results


def _save(out_dir, results):
    _io.write_json(results_path(out_dir), results)


def _matching(results, seed, digest, stage=None):
    """The first stored run of (seed, hash), in `stage` if given."""
    return next((r for r in results["runs"] if r["seed"] == seed and r["hash"] == digest
                 and stage in (None, r.get("stage"))), None)


def find_run(results, label, seed, digest, name=None, stage=None):
    """The finished run of (architecture hash, seed) in `stage` (any stage if None), whatever its model was called:
    a renamed model is the same run, and takes its new label (and registry name) here."""
    run = _matching(results, seed, digest, stage)
    if run is not None and run["model"] != label:
        run["model"], run["name"] = label, name or run["name"]
    return run


def _share_run(results, candidate, seed, digest, stage):
    """A run another stage already trained with the same architecture, recipe and seed (the ablations' default arm
    is a front model): recorded again under this stage's label, not trained twice. Returns it, or None."""
    other = _matching(results, seed, digest)
    if other is None:
        return None
    shared = {**other, "model": candidate.label, "name": candidate.name, "family": candidate.family,
              "arm": candidate.arm, "stage": stage, "shared_from": other.get("shared_from", other.get("stage"))}
    results["runs"].append(shared)
    return shared


def _rekey_legacy(out_dir, results, keyed) -> int:
    """Moves runs stored under a legacy hash (`run_hashes`) to the current one, with their run folders (a killed
    run's checkpoints too), so that a model renamed later keeps them. `keyed`: [(candidate, seed, hash, legacy
    hash)]. Returns how many finished runs moved."""
    moved = 0
    for candidate, seed, digest, legacy in keyed:
        if digest == legacy:
            continue
        folder, target = _run_dir(out_dir, candidate.label, seed, legacy), _run_dir(out_dir, candidate.label, seed,
                                                                                     digest)
        if os.path.isdir(folder) and not os.path.exists(target):
            os.replace(folder, target)
        run = _matching(results, seed, legacy)
        if run is not None and _matching(results, seed, digest) is None:
            run["hash"] = digest
            moved += 1
    if moved:
        logger.info("study: %d runs moved to the name-free architecture hash", moved)
    return moved


# --------------------------------------------------------------------------------------------------------------------
# Running


def run_study(config: StudyConfig, data_config: DataConfig, recipe: TrainConfig, verbose: int = 1) -> dict:
    """Runs one stage of the study into `config.out_dir` and rewrites its reports; returns the results. Stage "all"
    runs front, ablations and latency in turn (`STUDY_RUN_ORDER`): the whole study in one resumable command."""
    if config.stage == "all":
        for stage in STUDY_RUN_ORDER:
            results = run_study(config.replace(stage=stage), data_config, recipe, verbose)
        return results
    out_dir = config.out_dir
    # Data, models and input size are checked before the study folder is made: bad input leaves nothing behind.
    planned = _plan(config, data_config, recipe) if config.stage in ("front", "ablations") else None
    with _io.folder_lock(out_dir, "study"):
        results = load_results(out_dir)
        if planned is not None:
            _train_stage(config, data_config, recipe, results, verbose, planned)
        elif config.stage == "latency":
            _latency_stage(config, results)
        study_report.write_report(out_dir, config)
    return results


def _plan(config, data_config, recipe):
    """(study data, [(candidate, seed, hash)], {label: (hash, legacy hash)}) of a training stage; building every
    model for its hash checks the models and the input size before anything trains."""
    study_data = load_study_data(data_config, config.test_split)
    classes = study_data.train.num_classes
    todo = stage_models(config, config.out_dir)
    keyed = {c.label: run_hashes(c, recipe, config, study_data, classes) for c in todo}
    # Seed-major order: every model's first seed before any second seed, so a partial study already has a front.
    return study_data, [(c, seed, keyed[c.label][0]) for seed in config.seeds for c in todo], keyed


def _train_stage(config, data_config, recipe, results, verbose, planned):
    study_data, plan, keyed = planned
    for candidate in {c.label: c for c, _, _ in plan}.values():
        candidate.write_spec()
    _rekey_legacy(config.out_dir, results, [(c, s, d, keyed[c.label][1]) for c, s, d in plan])
    results["study"] = {"data": study_data.description, "recipe": recipe.to_dict(), "input_size": config.input_size,
                        "epochs": config.epochs}
    results.setdefault("plans", {})[config.stage] = [[c.label, seed, digest] for c, seed, digest in plan]
    _save(config.out_dir, results)
    done = sum(find_run(results, c.label, s, d, c.name, config.stage) is not None for c, s, d in plan)
    _save(config.out_dir, results)  # find_run gave renamed models' runs their new labels: the report reads the file
    _refresh_measurements(config, results, study_data, plan)
    logger.info("study %s: %d of %d runs done; %d to train", config.stage, done, len(plan), len(plan) - done)
    for i, (candidate, seed, digest) in enumerate(plan, 1):
        if find_run(results, candidate.label, seed, digest, candidate.name, config.stage) is not None:
            continue
        if _share_run(results, candidate, seed, digest, config.stage) is not None:
            _save(config.out_dir, results)
            logger.info("[%d/%d] %s, seed %d: the same run as in another stage, not trained again", i, len(plan),
                        candidate.label, seed)
            continue
        logger.info("[%d/%d] %s, seed %d", i, len(plan), candidate.label, seed)
        entry = train_one(candidate, seed, digest, config, data_config, recipe, study_data, verbose)
        results["runs"].append(entry)
        _save(config.out_dir, results)
        logger.info("      test top-1 %.1f %% (best selection epoch %d), %.0f s", 100 * entry["test_top1"],
                    entry["best_epoch"], entry["train_seconds"])


def _refresh_measurements(config, results, study_data, plan):
    """Measures finished runs again whose shift measurement is older than `shift.MEASURE_VERSION`, from the best
    model their run folder kept (training is not repeated); runs whose folder is gone keep their old values."""
    stale = [run for c, s, d in plan if (run := find_run(results, c.label, s, d, stage=config.stage)) is not None
             and run.get("shift", {}).get("measure_version", 1) < shift.MEASURE_VERSION]
    for run in stale:
        found = glob.glob(os.path.join(config.out_dir, "runs", f"*__seed{run['seed']}__{run['hash']}", "best.keras"))
        if not found:
            logger.warning("%s seed %d: no best.keras left to measure again; its shift figures stay version %d.",
                           run["model"], run["seed"], run.get("shift", {}).get("measure_version", 1))
            continue
        model = load_model(found[0])
        run["shift"] = _shift(model, study_data, config)
        _save(config.out_dir, results)
        logger.info("%s seed %d: shift consistency measured again (version %d)", run["model"], run["seed"],
                    shift.MEASURE_VERSION)
        del model
        _keras.get_keras("keras").backend.clear_session()


def _run_dir(out_dir, label, seed, digest):
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", label)
    return os.path.join(out_dir, "runs", f"{safe}__seed{seed}__{digest}")


def train_one(candidate, seed, digest, config, data_config, recipe, study_data, verbose=1) -> dict:
    """Trains one (model, seed), continuing from its checkpoint if a killed run left one; returns its entry."""
    keras = _keras.get_keras("keras")
    keras.backend.clear_session()
    size, classes = config.input_size, study_data.train.num_classes
    run_dir = _run_dir(config.out_dir, candidate.label, seed, digest)
    recipe = recipe.replace(seed=seed, epochs=config.epochs)
    train_ds = data.make_dataset(study_data.train, size, recipe.batch_size, training=True, seed=seed,
                                 crop_scale=(data_config.crop_scale_min, 1.0), mixup=data_config.mixup)
    select_ds = data.make_dataset(study_data.select, size, recipe.batch_size, training=False)
    started = time.perf_counter()
    result = train(lambda: candidate.build(size, classes), train_ds, select_ds, recipe, out_dir=run_dir, resume=True,
                   verbose=verbose)
    seconds = time.perf_counter() - started
    best = _best_model(result)
    history = _history(run_dir)
    entry = _evaluate_run(best, study_data, config)
    prof = profiling.profile(best)
    entry.update({"model": candidate.label, "name": candidate.name, "family": candidate.family, "arm": candidate.arm,
                  "stage": config.stage, "seed": seed, "hash": digest, "input_size": size, "epochs": config.epochs,
                  "params": int(prof.params), "macs": int(prof.macs), "train_seconds": round(seconds, 1),
                  "resumed_from_epoch": result.initial_epoch, "history": history,
                  "val_top1": max(history["val_accuracy"]) if history["val_accuracy"] else None,
                  "best_epoch": int(np.argmax(history["val_accuracy"])) + 1 if history["val_accuracy"] else None,
                  "machine": provenance.machine_info()})
    del best, result
    keras.backend.clear_session()
    gc.collect()
    return entry


def _best_model(result):
    return load_model(result.best_path) if result.best_path else result.model


def _history(run_dir) -> dict:
    """The whole run's curves from metrics.csv (a resumed run appends to it)."""
    path = os.path.join(run_dir, "metrics.csv")
    rows = list(csv.DictReader(open(path, encoding="utf-8"))) if os.path.exists(path) else []
    by_epoch = {int(r["epoch"]): r for r in rows}  # a repeated epoch (killed after logging) keeps its last line
    ordered = [by_epoch[e] for e in sorted(by_epoch)]
    pick = lambda key: [round(float(r[key]), 5) for r in ordered if r.get(key) not in (None, "")]  # noqa: E731
    return {"loss": pick("loss"), "accuracy": pick("accuracy"), "val_accuracy": pick("val_accuracy"),
            "images_per_second": pick("images_per_second")}


def _evaluate_run(model, study_data, config) -> dict:
    """Test top-1 (and which test images were right), selection top-1 of the best model, shift consistency."""
    size = config.input_size
    test_ds = data.make_dataset(study_data.test, size, 64, training=False)
    with warnings.catch_warnings():  # keras.applications models list their one input; Keras warns on a tensor
        warnings.filterwarnings("ignore", message="The structure of `inputs` doesn't match")
        predictions = np.concatenate([np.argmax(np.asarray(model(x, training=False)), -1) for x, _ in test_ds])
    labels = np.asarray(study_data.test.labels)
    correct = (predictions == labels).astype(int)
    return {"test_top1": float(correct.mean()), "test_examples": int(correct.size),
            "test_correct": "".join(map(str, correct)), "shift": _shift(model, study_data, config)}


def _shift(model, study_data, config) -> dict:
    """Shift consistency of a trained model on the test half (`experiments.shift`)."""
    size = config.input_size
    big = np.concatenate([x.numpy() for x, _ in
                          data.make_dataset(study_data.test, size + config.shift_max, 64, training=False)])
    return shift.shift_consistency(shift.keras_predictor(model), big, size, config.shift_max, seed=0)


def _deploy_arms_at_their_base_size(spec_files):
    """Arm spec files written before 2026-12-02 carried the training size (96 px), which a spec file is now
    benchmarked at (microcontroller-sized): give them back the deployment size of the variant they ablate."""
    for path in dict.fromkeys(spec_files):
        if not (registry.is_spec_file(path) and os.path.exists(path)):
            continue
        spec = load_spec(path)
        base = spec.name.split("__")[0]
        if base in VARIANTS and spec.input_size != VARIANTS[base].input_size:
            save_spec(spec.replace(input_size=VARIANTS[base].input_size), path)


def _latency_stage(config, results):
    """Every studied model at its deployment size (224 px, 1000 classes; micro at its own), in every format of
    `benchmark.FORMATS` at each thread count, in one interleaved benchmark run (`experiments.benchmark`)."""
    # The front's models even before they are trained (one timing run can serve a study still training), then the
    # ablation arms' spec files. Front runs are timed by the front's names: a run may carry a name since renamed.
    front = front_names(config) if config.stage == "latency" else []
    arms = [r["name"] for r in results["runs"] if r.get("stage") == "ablations"]
    _deploy_arms_at_their_base_size(arms)
    names = list(dict.fromkeys(front + arms))
    if not names:
        raise ValueError(f"No trained runs in {results_path(config.out_dir)} to time: run the front or ablations "
                         f"stage first.")
    result = benchmark.run_benchmark(BenchmarkConfig(models=tuple(names), runs=config.latency_runs,
                                                     threads=config.latency_threads), out_dir=config.out_dir,
                                     references=())
    benchmark_report.write_reports(result, config.out_dir, stem="latency")

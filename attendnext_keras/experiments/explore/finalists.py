"""The full protocol for a search's finalists: the proxy budget screens, the study's recipe decides.

A search trains each candidate for a few epochs: cheap, and noisy in a known direction (small models win by learning
fast). Its finalists, up to `ExploreConfig.finalists` feasible trials spread along the front (from the most accurate
to the fastest; with the NetScore objective, the winner), are trained again by the study runner with the study's
recipe, input size, epochs and seeds, beside the hand-designed variant the search started from, and timed at that
variant's deployment size in one interleaved run:

    attendnext explore --config attendnext_keras/configs/explore_micro.yaml --finalists 3 \\
        --finalist-protocol attendnext_keras/configs/study_flowers160.yaml

The finalist chosen is the one with the best mean accuracy on the selection half (`val_top1`, the split the search
scored on); test accuracy is reported only. Everything lives in `<explore out_dir>/finalists/` (the study's
results.json, study.md and latency.md, `chosen_spec.json`, `finalists.json`) and resumes like any study.
"""

from __future__ import annotations

import json
import logging
import os

import numpy as np

from attendnext_keras import _io, provenance
from attendnext_keras.config import DataConfig, StudyConfig, TrainConfig, load_config
from attendnext_keras.experiments.explore.report import feasible_trials, select_best
from attendnext_keras.experiments.explore.space import Limits
from attendnext_keras.experiments.study import load_results, run_study
from attendnext_keras.experiments.study_report import aggregate, current_runs
from attendnext_keras.models import obtain_input_shape
from attendnext_keras.specs import ModelSpec, get_spec, load_spec, save_spec

log = logging.getLogger(__name__)


def pick_finalists(best_trials, count: int) -> list:
    """Up to `count` trials spread evenly along `best_trials` (sorted from most accurate to fastest), ends included."""
    if count < 1 or not best_trials:
        return []
    if len(best_trials) <= count:
        return list(best_trials)
    picks = np.unique(np.round(np.linspace(0, len(best_trials) - 1, count)).astype(int))
    return [best_trials[i] for i in picks]


def load_protocol(path, data: DataConfig) -> tuple:
    """(study, recipe, data) of the full protocol in config file `path`: its `study` and `train` sections and its
    augmentation; the images stay those of `data`."""
    protocol = load_config(path)
    return (protocol.study, protocol.train,
            data.replace(crop_scale_min=protocol.data.crop_scale_min, mixup=protocol.data.mixup))


def _finalist_specs(trials, deploy_size, folder) -> list:
    """The trials' specs as files, each deployed (and so timed) at `deploy_size`: a search over input sizes must not
    win on latency at a size whose accuracy the study, training every model at its one size, never measures."""
    os.makedirs(folder, exist_ok=True)
    paths = []
    for trial in trials:
        spec = ModelSpec.from_dict(trial.user_attrs["spec"])
        spec = spec.replace(input_size=deploy_size, name=f"trial_{trial.number:04d}")
        paths.append(save_spec(spec, os.path.join(folder, f"trial_{trial.number:04d}.json")))
    return paths


def _design(spec: ModelSpec) -> str:
    """A spec's architecture without its name, description and deployment size: what the study's run hash sees."""
    values = {k: v for k, v in spec.to_dict().items() if k not in ("name", "description", "input_size")}
    return json.dumps(values, sort_keys=True)


def distinct_designs(trials, base: ModelSpec) -> list:
    """`trials` without those repeating an earlier trial's design or the base variant's (a search over input sizes
    finds one layout at two sizes; trained at the study's one size they are one model, and one run)."""
    seen, out = {_design(base)}, []
    for trial in trials:
        design = _design(ModelSpec.from_dict(trial.user_attrs["spec"]))
        if design not in seen:
            seen.add(design)
            out.append(trial)
    return out


def trainable_at(trials, *sizes) -> list:
    """`trials` whose layout builds at every one of `sizes` (the builder's own check, `models.obtain_input_shape`: a
    multiple of its output stride and DC-AC grids): a search at one input size can find layouts that the study's
    size, or the deployment size, cannot take."""
    out = []
    for trial in trials:
        spec = ModelSpec.from_dict(trial.user_attrs["spec"])
        try:
            for size in sizes:
                obtain_input_shape((size, size, 3), spec)
        except ValueError as error:
            log.info("Trial %d is not a finalist: %s", trial.number, str(error).splitlines()[0])
            continue
        out.append(trial)
    return out


def finalist_front(study, explore_config, *sizes) -> list:
    """The search's best trials (its front, or its best NetScore) among the feasible ones that build at `sizes`,
    without repeated designs or the base variant's: a trial on the whole front that the study's size cannot take
    leaves its place to the next one, which it had dominated."""
    limits = Limits.of(explore_config)
    feasible = feasible_trials(study.get_trials(deepcopy=False), limits)
    best = select_best(trainable_at(feasible, *sizes), limits, explore_config.objective)
    return distinct_designs(best, get_spec(explore_config.base_variant))


def check_protocol(study: StudyConfig, explore_config) -> StudyConfig:
    """The study settings the finalists train with, checked before any search: an input size the base variant can
    take, and the search's own test split (the finalists' test must be what the search never chose on)."""
    stride = get_spec(explore_config.base_variant).strides[-1]
    if study.input_size % stride:
        raise ValueError(f"The finalist protocol's study.input_size {study.input_size} is not a multiple of "
                         f"{stride}, the output stride of '{explore_config.base_variant}'.")
    if study.test_split and explore_config.test_split and study.test_split != explore_config.test_split:
        raise ValueError(f"The finalist protocol's study.test_split '{study.test_split}' is not the search's "
                         f"explore.test_split '{explore_config.test_split}': the finalists' test would be data the "
                         f"search chose on.")
    return study.replace(test_split=study.test_split or explore_config.test_split)


def finalist_sizes(study: StudyConfig, explore_config) -> tuple:
    """The input sizes a finalist must build at: the study's (it trains there) and the base variant's deployment size
    (it is timed there). A search given them as `ExploreConfig.builds_at` proposes no layout the finalists cannot
    use."""
    return tuple(sorted({study.input_size, get_spec(explore_config.base_variant).input_size}))


def run_finalists(result, explore_config, study: StudyConfig, recipe: TrainConfig, data: DataConfig,
                  verbose: int = 1) -> dict:
    """Trains and times the finalists of `result` (an ExploreResult) with the full protocol; returns the summary
    written to `finalists/finalists.json` (per model: mean selection and test top-1, seeds; the chosen spec)."""
    if explore_config.finalists < 1:
        raise ValueError("`finalists` is 0: there is nothing to train with the full protocol.")
    study = check_protocol(study, explore_config)
    base = get_spec(explore_config.base_variant)
    sizes = finalist_sizes(study, explore_config)
    trials = pick_finalists(finalist_front(result.study, explore_config, *sizes), explore_config.finalists)
    if not trials:
        raise ValueError(f"No feasible trial other than the base variant's design that builds at "
                         f"{' and '.join(map(str, sizes))} px to train with the full protocol "
                         f"(see {os.path.join(explore_config.out_dir, 'results.md')}).")
    out_dir = os.path.join(explore_config.out_dir, "finalists")
    baseline = f"attendnext_{explore_config.base_variant}"
    names = _finalist_specs(trials, base.input_size, os.path.join(out_dir, "specs"))
    # The protocol file's own front and candidates are not the finalists' study: only the finalists and the baseline.
    config = study.replace(models=(*names, baseline), candidates=(), out_dir=out_dir, npu_estimates=None,
                           arm_counts=None)
    for stage in ("front", "latency", "report"):
        run_study(config.replace(stage=stage), data, recipe, verbose)
    return summarize(out_dir, names, baseline)


def summarize(out_dir, finalists, baseline) -> dict:
    """The finalists' summary from a finished finalists study; the one with the best mean selection top-1 is chosen
    and its spec copied to `chosen_spec.json`."""
    front = aggregate(current_runs(load_results(out_dir), "front"))
    missing = [n for n in (*finalists, baseline) if n not in front]
    if missing:
        raise ValueError(f"The finalists study in {out_dir} has no runs of {', '.join(missing)}: run it again.")
    rows = {name: {"selection_top1": front[name]["selection"]["mean"], "test_top1": front[name]["test"]["mean"],
                   "test_std": front[name]["test"]["std"], "seeds": front[name]["seeds"],
                   "params": front[name]["params"], "macs": front[name]["macs"]}
            for name in (*finalists, baseline)}
    chosen = max(finalists, key=lambda name: (rows[name]["selection_top1"], -rows[name]["macs"]))
    spec_path = save_spec(load_spec(chosen), os.path.join(out_dir, "chosen_spec.json"))
    summary = {"chosen": chosen, "chosen_spec": spec_path, "baseline": baseline, "models": rows,
               "rule": "best mean selection-half top-1 (ties: fewer MACs); test top-1 reported only",
               "machine": provenance.machine_info()}
    _io.write_json(os.path.join(out_dir, "finalists.json"), summary)
    _io.write_atomic(os.path.join(out_dir, "finalists.md"), describe(summary) + "\n")
    return summary


def describe(summary) -> str:
    """The summary as a markdown table and one line naming the chosen spec."""
    lines = ["| model | params | MACs | selection top-1 (mean) | test top-1 (mean ± std) | seeds |",
             "|---|---|---|---|---|---|"]
    for name, row in summary["models"].items():
        role = " (chosen)" if name == summary["chosen"] else " (hand-designed)" if name == summary["baseline"] else ""
        lines.append(f"| {os.path.basename(name)}{role} | {row['params']:,} | {row['macs']:,} | "
                     f"{row['selection_top1']:.1%} | {row['test_top1']:.1%} ± {row['test_std']:.1%} | "
                     f"{len(row['seeds'])} |")
    return "\n".join(lines + ["", f"Chosen: {os.path.basename(summary['chosen'])}, written to `chosen_spec.json` "
                                   f"({summary['rule']}); latency, fronts and paired statistics in `study.md` beside "
                                   "it."])

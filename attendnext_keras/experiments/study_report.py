"""The study's outputs, regenerated from `results.json` (and `latency.json`) without training: the per-model table
(mean ± std over seeds), the accuracy–latency fronts per family, the iso-accuracy table, the ablation table with
paired statistics, shift consistency, validation curves and the noise floor. Incomplete stages are labelled PARTIAL.
"""

from __future__ import annotations

import collections
import logging
import os

import numpy as np

from attendnext_keras import _io
from attendnext_keras.deploy import arm_cpu
from attendnext_keras.experiments import ablations, stats
from attendnext_keras.experiments.reports import (FAMILY_COLOURS, figure, fmt_count, fmt_ms, fmt_pct,
                                                  log_latency_axis, save_figure, table)

logger = logging.getLogger(__name__)
PEER_FAMILIES = ("mobilenet_v3", "mobilenet_v2")
FAMILY_NAMES = {"attendnext": "AttendNeXt", "mobilenet_v3": "MobileNetV3", "mobilenet_v2": "MobileNetV2",
                "other": "other"}

def _mean_std(summary, seeds, percent=False):
    """"mean ± std", or the mean alone from one seed (a std of 0.0 would read as no noise)."""
    mean = fmt_pct(summary["mean"]) if percent else f"{summary['mean']:.3f}"
    std = f"{100 * summary['std']:.1f}" if percent else f"{summary['std']:.3f}"
    return f"{mean} ± {std}" if len(seeds) > 1 else mean


def _iso_cells(iso) -> list:
    """Speed-up (a bound outside the front), front latency and accuracy gain of one `stats.iso_accuracy` row."""
    bound = {"at least": "≥ ", "at most": "≤ "}.get(iso["bound"], "")
    gain = "—" if iso["accuracy_gain"] is None else f"{100 * iso['accuracy_gain']:+.1f} pt"
    return [f"{bound}{iso['speedup']:.2f}×", f"{fmt_ms(iso['front_latency'])} ({iso['where']})", gain]


def current_runs(results, stage) -> list:
    """The runs of a stage's current plan (its latest hashes): runs of an older recipe or data are never mixed in."""
    plan = {tuple(p) for p in results.get("plans", {}).get(stage, [])}
    return [r for r in results["runs"] if r.get("stage") == stage and (r["model"], r["seed"], r["hash"]) in plan]


def aggregate(runs) -> dict:
    """{model: summary over its seeds} in first-seen order."""
    by_model = {}
    for r in runs:
        by_model.setdefault(r["model"], []).append(r)
    out = {}
    for model, rs in by_model.items():
        rs = sorted(rs, key=lambda r: r["seed"])
        out[model] = {"family": rs[0]["family"], "name": rs[0]["name"], "arm": rs[0].get("arm"),
                      "params": rs[0]["params"], "macs": rs[0]["macs"], "seeds": [r["seed"] for r in rs],
                      "test": stats.summarize([r["test_top1"] for r in rs]),
                      "selection": stats.summarize([r["val_top1"] for r in rs if r.get("val_top1") is not None]
                                                   or [float("nan")]),
                      "by_seed": {r["seed"]: r["test_top1"] for r in rs},
                      "correct": [[int(c) for c in r["test_correct"]] for r in rs],
                      "examples": rs[0]["test_examples"],
                      "shift": stats.summarize([r["shift"]["consistency"] for r in rs]),
                      "shift_by_seed": {r["seed"]: r["shift"]["consistency"] for r in rs},
                      "feature_cosine": stats.summarize([r["shift"]["feature_cosine"] for r in rs
                                                         if r["shift"].get("feature_cosine") is not None] or [0.0]),
                      "train_seconds": float(np.mean([r["train_seconds"] for r in rs])),
                      "curves": [r["history"]["val_accuracy"] for r in rs]}
    return out


LATENCY_PERCENTILES = {"median": 50, "p10": 10}
"""`StudyConfig.latency_statistic`: which percentile of a format's timed runs stands for its latency."""


def load_latency(out_dir, statistic="median") -> dict:
    """{registry name or spec file: {threads: best-format latency ms, "input_size"}} from the latency stage, if it ran;
    each format's latency is `statistic` (`LATENCY_PERCENTILES`) of its timed runs."""
    path = os.path.join(out_dir, "latency.json")
    if not os.path.exists(path):
        return {}
    return latency_table(_io.read_json(path, "Latency result"), statistic)


def latency_table(result, statistic="median") -> dict:
    """`load_latency` of a benchmark result already read."""
    return {name: {t: _best_latency(row, t, statistic) for t in row["best"]} | {"input_size": row["input_size"]}
            for name, row in result["models"].items()}


def _best_latency(row, threads, statistic):
    if statistic == "median":
        return row["best"][threads]["median"]
    samples = {name: fmt["latency_ms"].get(threads, {}).get("samples") for name, fmt in row["formats"].items()}
    missing = [name for name, values in samples.items() if not values]
    if missing:
        raise ValueError(f"Latency result: {row.get('display_name')} {missing[0]} has no timed samples at {threads} "
                         f"thread(s), which latency_statistic '{statistic}' needs; time it again or use 'median'.")
    return min(float(np.percentile(values, LATENCY_PERCENTILES[statistic])) for values in samples.values())


def latency_words(statistic) -> str:
    return "median" if statistic == "median" else f"{statistic} (the {LATENCY_PERCENTILES[statistic]}th percentile)"


def _optional_result(path, setting, what, tables, key):
    """The JSON result at `path` (a study setting), or None when the setting is empty, the file missing or not `what`
    (no `key`): a warning, not an error, and the report still writes, without `tables`."""
    if not path:
        return None
    if not os.path.exists(path):
        logger.warning("study.%s: '%s' does not exist (paths are relative to the current folder); the report leaves "
                       "out the %s", setting, path, tables)
        return None
    result = _io.read_json(path, what)
    if not isinstance(result, dict) or key not in result:
        logger.warning("study.%s: '%s' is not a %s (no \"%s\"); the report leaves out the %s", setting, path, what,
                       key, tables)
        return None
    return result


def load_npu_estimates(path) -> dict:
    """{model: {"input_size", accelerator: estimated ms}} from a `benchmarks/bench_vela.py` result, keeping for each
    model and accelerator the fastest run that Vela put wholly on the NPU (a CPU op is counted by Vela, not timed, so
    a run with one would look faster than it is; for AttendNeXt that is the NPU's own lowering). A model with CPU
    fallbacks only is left out."""
    result = _optional_result(path, "npu_estimates", "bench_vela.py result", "Ethos-U tables", "runs")
    out = {}
    for run in (result or {}).get("runs", ()):
        for accelerator, estimate in run["vela"].items():
            if estimate and not estimate["cpu_ops"]:
                row = out.setdefault(run["model"], {"input_size": run["input_size"]})
                row[accelerator] = min(row.get(accelerator, np.inf), estimate["inference_ms"])
    return out


def load_arm_counts(path) -> dict:
    """{model: {"input_size", cpu: million instructions per inference}} from a `benchmarks/bench_arm_cpu.py` result,
    each model's best format per core (the one with fewer instructions)."""
    result = _optional_result(path, "arm_counts", "bench_arm_cpu.py result", "Arm instruction-count tables", "rows")
    out = {}
    for row in (result or {}).get("rows", ()):
        out[row["model"]] = {"input_size": row["input_size"]}
        for cpu, formats in row["counts"].items():
            out[row["model"]][cpu] = arm_cpu.best_format(formats)[1] / 1e6
    return out


def write_report(out_dir, config) -> dict:
    """Writes study.md, fronts.png and curves.png into `out_dir` from its results; returns the paths."""
    results = _io.read_json(os.path.join(out_dir, "results.json"), "Study results")
    latency = load_latency(out_dir, config.latency_statistic)
    front = aggregate(current_runs(results, "front"))
    arms = aggregate(current_runs(results, "ablations"))
    lines = _header(results, config)
    lines += _front_section(front, latency, config)
    lines += _iso_section(front, latency, config)
    npu = load_npu_estimates(config.npu_estimates)
    arm = load_arm_counts(config.arm_counts)
    lines += _goals_section(front, latency, config, npu, arm)
    lines += _npu_section(front, npu)
    lines += _arm_section(front, arm)
    lines += _ablation_section(arms, latency, config)
    lines += _shift_section(front, arms)
    lines += _noise_section(front, arms)
    lines += _epochs_section(front)
    paths = {"md": _io.write_atomic(os.path.join(out_dir, "study.md"), "\n".join(lines) + "\n")}
    if front and latency:
        paths["fronts"] = plot_fronts(front, latency, os.path.join(out_dir, "fronts.png"))
    if front or arms:
        paths["curves"] = plot_curves({**front, **arms}, os.path.join(out_dir, "curves.png"))
    return paths


def _progress(results, stage) -> str:
    plan = results.get("plans", {}).get(stage, [])
    done = len(current_runs(results, stage))
    if not plan:
        return "not run"
    return "complete" if done == len(plan) else f"PARTIAL: {done} of {len(plan)} runs"


def _header(results, config) -> list:
    study = results.get("study", {})
    d = study.get("data", {})
    machines = {r["machine"]["cpu_model"] for r in results["runs"]}
    dates = sorted(r["machine"]["date"] for r in results["runs"]) or ["—"]
    return ["# Proxy-accuracy study", "",
            f"Data: {d.get('source')} ({len(d.get('classes', []))} classes): {d.get('train')} training images; "
            f"{d.get('selection')} selection images ({d.get('selection_split')}: best epoch chosen here) and "
            f"{d.get('test')} test images ({d.get('test_split')}: reported only, never selected on). "
            f"Input {study.get('input_size')} px, {study.get('epochs')} epochs, seeds {list(config.seeds)}; recipe: "
            f"`{study.get('recipe')}`.", "",
            f"Stages: front {_progress(results, 'front')}; ablations {_progress(results, 'ablations')}. Runs "
            f"trained {dates[0]} – {dates[-1]} on {', '.join(sorted(machines)) or '—'}.", ""]


def _latency_cells(latency, name):
    row = latency.get(name)
    return [fmt_ms(row.get("1")) if row else "—", fmt_ms(row.get("2")) if row else "—"]


def _front_section(front, latency, config) -> list:
    if not front:
        return ["## Models", "", "No front runs yet.", ""]
    rows = [[m, FAMILY_NAMES.get(s["family"], s["family"]), fmt_count(s["params"]), fmt_count(s["macs"]),
             len(s["seeds"]), _mean_std(s["test"], s["seeds"], percent=True),
             fmt_pct(s["selection"]["mean"]), *_latency_cells(latency, s["name"]),
             f"{s['shift']['mean']:.3f}"] for m, s in front.items()]
    return ["## Models", "",
            "Test top-1: mean ± std over seeds on the test half. Params and MACs at the study's input size and class "
            f"count. Latency: LiteRT/XNNPACK {latency_words(config.latency_statistic)} of the timed runs, best format "
            "(float32, int8 or int8 with a float32 stem, as the run timed them), at deployment size (224 px, 1000 classes; micro at its own), computed from the "
            "samples the latency stage keeps in `latency.json` (`latency.md` shows medians)."
            f"{_STATISTIC_REASONS.get(config.latency_statistic, '')}", "",
            table(["model", "family", "params", "MACs", "seeds", "test top-1", "selection top-1", "latency 1T ms",
                   "latency 2T ms", "shift consistency"], rows), ""]


_STATISTIC_REASONS = {
    "p10": " The 10th percentile (`study.latency_statistic`): on a shared machine other work only ever adds time, so a "
           "low percentile moves less between runs than the median."}


def _points(front, latency, family, threads):
    return [(latency[s["name"]][threads], s["test"]["mean"], m) for m, s in front.items()
            if s["family"] == family and s["name"] in latency and threads in latency[s["name"]]]


def _timed_size(front, latency, model):
    """The input size the latency stage timed `model` at (224 for the peers' deployment; micro at its own)."""
    return latency[front[model]["name"]].get("input_size")


def iso_accuracy_rows(front, latency, threads="1") -> list:
    """[(AttendNeXt model, peer family, stats.iso_accuracy(...))] for every AttendNeXt model and peer front, among
    models timed at the same deployment size (micro, timed at its own 96 px, is not compared with 224-px peers)."""
    out = []
    size = lambda model: _timed_size(front, latency, model)  # noqa: E731
    for family in PEER_FAMILIES:
        points = _points(front, latency, family, threads)
        if not points:
            continue
        front_points = [points[i][:2] for i in stats.pareto_front([p[:2] for p in points])]
        sizes = {size(p[2]) for p in points}
        for latency_ms, accuracy, model in _points(front, latency, "attendnext", threads):
            if size(model) in sizes:
                out.append((model, family, stats.iso_accuracy((latency_ms, accuracy), front_points)))
    return out


def _iso_section(front, latency, config) -> list:
    if not latency:
        return ["## Iso-accuracy", "", "Needs the latency stage (`attendnext study --stage latency`).", ""]
    rows = []
    for threads in ("1", "2"):
        for model, family, iso in iso_accuracy_rows(front, latency, threads):
            rows.append([model, FAMILY_NAMES[family], threads, *_iso_cells(iso)])
    return ["## Iso-accuracy", "",
            "For each AttendNeXt model: the latency the peer family's front needs to reach the same test accuracy "
            "(interpolated between front points in log-latency) ÷ the AttendNeXt latency — the paper's \"× faster at "
            "comparable accuracy\" — and the accuracy difference at equal latency. Outside the front's range the "
            "speed-up is a bound (≥ or ≤). Best format of every model, on this machine. Only models timed at the "
            "peers' deployment size are compared (not micro, timed at its own 96 px).", "",
            table(["AttendNeXt model", "against", "threads", "speed-up at equal accuracy", "front latency ms",
                   "accuracy gain at equal latency"], rows) if rows else "No AttendNeXt or peer model timed yet.", ""]


# The family's goals (issue 15): `base` at or above MobileNetV3-Large's accuracy (a tie counts only if it is also
# faster); the AttendNeXt front this many times faster than a peer at the peer's accuracy; and the AttendNeXt front
# above MobileNetV2's wherever both have a model.
ACCURACY_GOAL = ("attendnext_base", "mobilenet_v3_large")
SPEED_GOALS = (("mobilenet_v3_large", 3.0), ("mobilenet_v3_small", 1.2))
NPU_SPEED_GOAL = 1.0  # on Arm Ethos-U (issue 16): ahead of MobileNetV3 at its accuracy
ABOVE_FAMILY = "mobilenet_v2"


def _family_front(front, latency, family, threads, size):
    """The family's Pareto front among models timed at `size`."""
    points = [p for p in _points(front, latency, family, threads)
              if latency[front[p[2]]["name"]]["input_size"] == size]
    return [points[i] for i in stats.pareto_front([p[:2] for p in points])]


def _noise(accuracy, front):
    """Two standard errors of one accuracy on the test half: what the split alone cannot tell apart."""
    return stats.TIE_STANDARD_ERRORS * stats.split_standard_error(accuracy, next(iter(front.values()))["examples"])


def _on_common_seeds(a, b):
    """Both summaries' per-image results (`correct`) on the seeds both have, so that a bootstrap pairs the same seeds
    while a stage is partial (all of them when they share none)."""
    common = [seed for seed in a.get("seeds", ()) if seed in b.get("seeds", ())]
    if not common:
        return a["correct"], b["correct"]
    return tuple([x["correct"][x["seeds"].index(seed)] for seed in common] for x in (a, b))


def _accuracy_goal(front, latency, config):
    model, peer_name = ACCURACY_GOAL
    base, peer = front.get(model), front.get(peer_name)
    if base is None or peer is None:
        return None
    diff = base["test"]["mean"] - peer["test"]["mean"]
    boot = stats.paired_bootstrap(*_on_common_seeds(base, peer), config.bootstrap_samples)
    tie = not boot["significant"]
    faster = base["name"] in latency and peer["name"] in latency and \
        latency[base["name"]]["1"] < latency[peer["name"]]["1"]
    verdict = ("met" if diff >= 0 else "met: a tie, and faster" if tie and faster
               else f"missed by {100 * -diff:.1f} pt" + (" (a tie, but not faster)" if tie else ""))
    measured = (f"{fmt_pct(base['test']['mean'])} vs {fmt_pct(peer['test']['mean'])}: {100 * diff:+.1f} pt "
                f"(bootstrap 95 % [{100 * boot['ci95'][0]:+.1f}, {100 * boot['ci95'][1]:+.1f}])")
    return [f"{model} at or above {peer_name}'s test top-1", "—", measured, "≥ 0 pt or a tie "
            "and faster", verdict]


def _speed_goal(front, latency, peer, target, threads, on, unit="ms"):
    s = front.get(peer)
    if s is None or s["name"] not in latency:
        return None
    size = latency[s["name"]]["input_size"]
    ours = [p[:2] for p in _family_front(front, latency, "attendnext", threads, size)]
    if not ours:
        return None
    accuracy, peer_ms = s["test"]["mean"], latency[s["name"]][threads]
    needed, where = stats.latency_at_accuracy(ours, accuracy)
    less = "faster" if unit == "ms" else "fewer instructions"
    goal = f"AttendNeXt front at {peer}'s accuracy ({fmt_pct(accuracy)}), × {less} than it"
    if where == "above front":  # no AttendNeXt model reaches it: a tie counts at the most accurate one
        gap = accuracy - ours[-1][1]
        tie = gap < _noise(accuracy, front)
        measured = f"not reached: best {fmt_pct(ours[-1][1])} ({100 * -gap:+.1f} pt); {peer_ms / needed:.2f}× there"
        met = tie and peer_ms / needed >= target
        return [goal, on, measured, f"≥ {target}×", ("met at a tie in accuracy" if met else "missed")]
    bound = "≥ " if where == "below front" else ""
    speedup = peer_ms / needed
    verdict = "met" if speedup >= target else f"missed ({speedup / target:.0%} of the goal)"
    return [goal, on, f"{bound}{speedup:.2f}× ({fmt_ms(needed)} vs {fmt_ms(peer_ms)} {unit})", f"≥ {target}×",
            verdict]


def _front_goal(front, latency, threads, on):
    sizes = {row["input_size"] for row in latency.values()}
    if not sizes:
        return None
    size = 224 if 224 in sizes else max(sizes)
    ours = [p[:2] for p in _family_front(front, latency, "attendnext", threads, size)]
    theirs = [p[:2] for p in _family_front(front, latency, ABOVE_FAMILY, threads, size)]
    if not ours or not theirs:
        return None
    margins = stats.front_margins(ours, theirs)
    goal = f"AttendNeXt front above the {FAMILY_NAMES[ABOVE_FAMILY]} front wherever both have a model"
    if not margins:
        return [goal, on, "no overlap in latency", "≥ 0 pt", "—"]  # theirs all faster than ours
    low = min(m for _, m in margins)
    verdict = ("met" if low >= 0 else "met within the noise" if -low < _noise(theirs[0][1], front)
               else f"missed by {100 * -low:.1f} pt")
    return [goal, on, f"{100 * low:+.1f} pt at worst ({len(margins)} points, "
                           f"{fmt_ms(margins[0][0])}–{fmt_ms(margins[-1][0])} ms)", "≥ 0 pt", verdict]


CPU_THREADS = (("1", "CPU, 1 thread"), ("2", "CPU, 2 threads"))
"""The latency stage's thread counts the goals are judged at, and how a goal row names them."""


def goal_rows(front, latency, config, npu=None, arm=None) -> list:
    """[goal, where, measured, target, verdict] for each of the family's goals the results can answer: on the CPU
    (latency-stage keys "1", "2": threads), from Vela's estimates on each Ethos-U (ahead of MobileNetV3), and from
    emulated instruction counts on each Arm core (the CPU's speed goals, in instructions).
    The goals judge the study's `models` only: its `candidates`, and runs of models no longer listed, stay in the tables
    as evidence."""
    front = _listed(front, config)
    rows = [_accuracy_goal(front, latency, config)]
    for threads, on in CPU_THREADS:
        rows += _speed_goals(front, latency, threads, on)
        rows.append(_front_goal(front, latency, threads, on))
    accelerators = _keys(npu)
    rows += [_speed_goal(front, npu, peer, NPU_SPEED_GOAL, a, f"{a} (Vela)") for a in accelerators
             for peer, _ in SPEED_GOALS]
    rows += [_speed_goal(front, arm, peer, target, cpu, f"{cpu} (emulated, instructions)", unit="M instr")
             for cpu in _keys(arm) for peer, target in SPEED_GOALS]
    return [r for r in rows if r is not None]


def _keys(costs) -> list:
    """The cost columns of an `npu`/`arm` table: accelerators or cores."""
    return sorted({k for row in (costs or {}).values() for k in row if k != "input_size"})


def speed_goal_rows(front, latency, config, threads, on) -> list:
    """The CPU speed goals (`SPEED_GOALS`) at one thread count, as `goal_rows` gives them."""
    return [r for r in _speed_goals(_listed(front, config), latency, threads, on) if r is not None]


def _speed_goals(listed_front, latency, threads, on) -> list:
    return [_speed_goal(listed_front, latency, peer, target, threads, on) for peer, target in SPEED_GOALS]


def _listed(front, config):
    listed = {os.path.normpath(name) for name in config.models}
    return {label: s for label, s in front.items() if os.path.normpath(label) in listed}


def _goals_section(front, latency, config, npu=None, arm=None) -> list:
    rows = goal_rows(front, latency, config, npu, arm) if front and (latency or npu or arm) else []
    if not rows:
        return []
    return ["## Goals", "",
            "The family's goals, from the tables above (mean test top-1 over seeds; best-format latency at 224 px, "
            f"{latency_words(config.latency_statistic)}; on Ethos-U, Vela's estimates). A tie: a difference inside "
            "the noise (the paired bootstrap's 95 % interval holds 0, or under two standard errors of one accuracy on "
            "the test half). On the Arm cores the cost is instructions per inference (emulated), not time. The "
            "AttendNeXt front here is the registered family's: the study's candidates (designs "
            "tried and not registered) and models no longer in `study.models` stay in the tables above, not in the "
            "goals.",
            "",
            table(["goal", "on", "measured", "target", "verdict"], rows), ""]


def _npu_section(front, npu) -> list:
    """The iso-accuracy table again, with Vela's estimated Arm Ethos-U latency in place of the CPU's."""
    return _cost_section(
        front, npu, "## Iso-accuracy on Arm Ethos-U (Vela estimates)",
        "The same computation with each model's estimated inference time on the NPU (int8, deployment size, Vela's "
        "default system configuration; from `npu_estimates`, a `benchmarks/bench_vela.py` result): estimates of the "
        "NPU part, not measurements on a board; models with a CPU fallback are left out.",
        ["NPU", "AttendNeXt ms", "speed-up at equal accuracy", "front latency ms", "accuracy gain at equal latency"],
        "NPU estimates")


def _arm_section(front, arm) -> list:
    """The iso-accuracy table again, with instructions per inference on each emulated Arm core in place of time."""
    return _cost_section(
        front, arm, "## Iso-accuracy on Arm Cortex-A cores (emulated instruction counts)",
        "The same computation with each model's instructions per inference on an emulated Arm core (best format, "
        "1 thread, LiteRT + XNNPACK under QEMU; from `arm_counts`, a `benchmarks/bench_arm_cpu.py` result); the "
        "Cortex-A72 is the paper's CPU. Counts of work, not time: the front's column is its instructions (millions) "
        "at equal accuracy.",
        ["core", "AttendNeXt M instr", "fewer instructions at equal accuracy", "front M instr",
         "accuracy gain at equal instructions"], "instruction counts")


def _cost_section(front, costs, title, intro, columns, what) -> list:
    """The iso-accuracy table with another cost (`costs`: {model: {"input_size", key: cost}}) in place of latency."""
    if not costs:
        return []
    rows = [[model, FAMILY_NAMES[family], key, fmt_ms(costs[front[model]["name"]][key]), *_iso_cells(iso)]
            for key in _keys(costs) for model, family, iso in iso_accuracy_rows(front, costs, key)]
    return [title, "", intro, "",
            table(["AttendNeXt model", "against", *columns], rows) if rows
            else f"No AttendNeXt model and peer front with {what} yet.", ""]


def _ablation_section(arms, latency, config) -> list:
    if not arms:
        return ["## Ablations", "", "Not run yet (`attendnext study --stage ablations`).", ""]
    default = next((s for s in arms.values() if s["arm"] == "default"), None)
    lines = ["## Ablations", "",
             f"One fixed spec ({config.ablation_base}) with one choice changed per arm. Δ: arm − default, paired by "
             f"seed (mean ± std; a tie when |Δ| < 2 standard errors) and by a paired bootstrap over the test images "
             f"({config.bootstrap_samples} samples; 95 % interval, p-value of no difference). Shift consistency (the "
             f"section below) is compared the same way, paired by seed: every arm is measured on the same crop pairs.",
             ""]
    for group, names in ablations.GROUPS.items():
        rows = [_ablation_row(s, default, latency, config) for s in arms.values() if s["arm"] in names]
        lines += [f"### {group}", "", table(["arm", "test top-1", "Δ by seed", "seed verdict", "bootstrap Δ [95 %]",
                                             "p", "params", "MACs", "latency 1T ms", "shift consistency",
                                             "Δ shift by seed"], rows), ""]
    return lines


def _ablation_row(s, default, latency, config):
    cells = [s["arm"], _mean_std(s["test"], s["seeds"], percent=True)]
    if default is None or s is default:
        cells += ["—", "—", "—", "—"]
    else:
        paired = stats.paired_seeds(s["by_seed"], default["by_seed"])
        boot = stats.paired_bootstrap(*_on_common_seeds(s, default), config.bootstrap_samples)
        cells += [f"{100 * paired['mean']:+.1f} ± {100 * paired['std']:.1f} pt",
                  "tie" if paired["tie"] else ("better" if paired["mean"] > 0 else "worse"),
                  f"{100 * boot['difference']:+.1f} [{100 * boot['ci95'][0]:+.1f}, {100 * boot['ci95'][1]:+.1f}]",
                  f"{boot['p_value']:.3f}"]
    return cells + [fmt_count(s["params"]), fmt_count(s["macs"]), _latency_cells(latency, s["name"])[0],
                    _mean_std(s["shift"], s["seeds"]), shift_difference(s, default)]


def shift_difference(arm, default) -> str:
    """The arm's shift consistency minus the default's, paired by seed, with its verdict: a tie under 2 standard
    errors of the mean difference over seeds (or from one seed), or under 2 standard errors of one consistency on the
    test images (the split's own noise, as for accuracy)."""
    if default is None or arm is default:
        return "—"
    paired = stats.paired_seeds(arm["shift_by_seed"], default["shift_by_seed"])
    floor = stats.split_standard_error(default["shift"]["mean"], default["examples"])
    tie = paired["tie"] or stats.is_tie(paired["mean"], floor)
    verdict = "tie" if tie else ("more consistent" if paired["mean"] > 0 else "less consistent")
    return f"{paired['mean']:+.3f} ± {paired['std']:.3f} ({verdict})"


def _shift_section(front, arms) -> list:
    rows = [[m, _mean_std(s["shift"], s["seeds"]), f"{s['feature_cosine']['mean']:.3f}"]
            for m, s in {**front, **arms}.items()]
    if not rows:
        return []
    return ["## Shift consistency", "",
            "Zhang (2019): the fraction of test images whose top-1 class is the same for two crops offset by random "
            "(dx, dy) in [0, 16) px; and the mean cosine similarity of the two crops' feature maps where the "
            "classifier pools them (the input of the last global pooling). Mean ± std over seeds. The cosine "
            "compares arms of one architecture (the ablations); across families it also reflects the activation "
            "(ReLU maps are non-negative, so their cosines start high).", "",
            table(["model", "consistency", "feature cosine"], rows), ""]


def noise_floor(summaries) -> dict:
    stds = [s["test"]["std"] for s in summaries.values() if s["test"]["n"] > 1]
    if not summaries:
        return {}
    mean_accuracy = float(np.mean([s["test"]["mean"] for s in summaries.values()]))
    examples = next(iter(summaries.values()))["examples"]
    return {"median_seed_std": float(np.median(stds)) if stds else None,
            "split_standard_error": stats.split_standard_error(mean_accuracy, examples), "examples": examples}


def _noise_section(front, arms) -> list:
    floor = noise_floor({**front, **arms})
    if not floor:
        return []
    seed_std = "—" if floor["median_seed_std"] is None else f"{100 * floor['median_seed_std']:.1f} pt"
    return ["## Noise floor", "",
            f"Median std of test top-1 over seeds: {seed_std}; standard error of one accuracy on "
            f"{floor['examples']} test images: {100 * floor['split_standard_error']:.1f} pt. Differences under two "
            f"standard errors are ties.", ""]


def mean_curves(summaries) -> dict:
    """{model: selection accuracy per epoch, averaged over its seeds}."""
    out = {}
    for model, s in summaries.items():
        curves = [c for c in s["curves"] if c]
        if curves:
            length = min(len(c) for c in curves)
            out[model] = list(np.mean([c[:length] for c in curves], axis=0))
    return out


def _epochs_section(front) -> list:
    stability = stats.ranking_stability(mean_curves(front))
    if not stability:
        return []
    settled = stats.settled_epoch(stability)
    shown = [f"{epoch}: {tau:.2f}" for epoch, tau in stability if epoch % 5 == 0 or epoch == stability[-1][0]]
    verdict = (f"the ranking stays within τ ≥ 0.9 of the final one from epoch {settled} on" if settled
               else "the ranking has not settled (τ < 0.9 late in training): more epochs would change it")
    return ["## Were the epochs enough?", "",
            f"Kendall's τ between the models' ranking (mean selection accuracy over seeds) at each epoch and at the "
            f"last: {', '.join(shown)}; {verdict}. Curves: `curves.png`.", ""]


def plot_fronts(front, latency, path, threads="1") -> str:
    """Test top-1 (mean ± std) against best-format latency, each family's Pareto front drawn as a line."""
    fig, (ax,) = figure(8, 5.2, 1)
    size = lambda model: _timed_size(front, latency, model)  # noqa: E731
    common = collections.Counter(size(m) for m in front if front[m]["name"] in latency).most_common(1)
    for family, colour in FAMILY_COLOURS.items():
        points = [(latency[s["name"]][threads], 100 * s["test"]["mean"], 100 * s["test"]["std"], m)
                  for m, s in front.items() if s["family"] == family and s["name"] in latency]
        if not points:
            continue
        ax.errorbar([p[0] for p in points], [p[1] for p in points], yerr=[p[2] for p in points], fmt="o",
                    color=colour, capsize=3, label=FAMILY_NAMES[family])
        for x, y, _, name in points:
            # a model timed at another size (micro at its own 96 px) is labelled so, and left off the front line
            other = f" ({size(name)} px)" if common and size(name) != common[0][0] else ""
            ax.annotate(name.replace("attendnext_", "").replace("mobilenet_", "mnv") + other, (x, y),
                        textcoords="offset points", xytext=(4, 3), fontsize=7)
        points = [p for p in points if not common or size(p[3]) == common[0][0]]
        line = [points[i] for i in stats.pareto_front([(p[0], p[1]) for p in points])] if points else []
        ax.plot([p[0] for p in line], [p[1] for p in line], color=colour, lw=1, ls="--")
    log_latency_axis(ax, f"best-format latency at deployment size, ms ({threads} thread, log scale)")
    ax.set_ylabel("test top-1 (%)")
    at = f" of the {common[0][0]}-px models" if common and common[0][0] else ""
    ax.set_title(f"Proxy accuracy against latency; dashed: each family's front{at}", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def plot_curves(summaries, path) -> str:
    """Selection-half accuracy per epoch, mean over seeds, one line per model: where the ranking settles."""
    fig, (ax,) = figure(8, 5.2, 1)
    for model, s in summaries.items():
        curves = [c for c in s["curves"] if c]
        if not curves:
            continue
        length = min(len(c) for c in curves)
        mean = 100 * np.mean([c[:length] for c in curves], axis=0)
        ax.plot(np.arange(1, length + 1), mean, color=FAMILY_COLOURS.get(s["family"], "#555555"), lw=1,
                alpha=0.9, label=model)
    ax.set_xlabel("epoch")
    ax.set_ylabel("selection top-1 (%)")
    ax.set_title("Validation curves (selection half, mean over seeds)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, ncol=2)
    return save_figure(fig, path)

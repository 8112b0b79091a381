"""How much the study's latency ratios move between runs of the same models on the same kind of CPU, for each
statistic the study can report (`StudyConfig.latency_statistic`: the median or the 10th percentile of each format's
timed runs, best format per model).

    python benchmarks/latency_stability.py                      # the study's current run and its archived runs
    python benchmarks/latency_stability.py a/latency.json b/latency.json --reference mobilenet_v3_small

Nothing is timed: every latency stage keeps its samples (`latency.json`), so any statistic can be computed again from
runs already committed. Runs are grouped by CPU (model name, family, model number, SIMD flags); within a group, each
model's speed-up over the reference (reference latency ÷ model latency, the quantity the study's goals are made of)
is listed run by run with its spread: largest ÷ smallest − 1, each model in its best format among the formats every
run of the group timed (`common_formats`). Then the study's CPU goals (`study_report.goal_rows`,
the study's front from its `results.json`) are given again for every run and statistic, so that one run's verdict can
be read against the others'. Writes results/study/latency_stability.{json,md} with command, date and machine.
"""

import argparse
import collections
import glob
import os
import pathlib
import sys

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
STUDY = HERE / "results" / "study"


def load_runs(paths) -> dict:
    """{CPU: [(label, result)]} in date order; a path that is missing or not a latency result is a one-line error.
    The first file says which architecture a name means: a model that another run timed under the same name with other
    parameters or MACs (a variant redesigned since, e.g. `medium` on 2026-12-02) is left out of that run."""
    from attendnext_keras import _io, provenance

    groups = collections.defaultdict(list)
    current = None
    for path in paths:
        result = _io.read_json(path, "Latency result")
        if not (isinstance(result, dict) and isinstance(result.get("models"), dict) and "machine" in result
                and "formats" in result.get("settings", {})):
            raise ValueError(f"'{path}' is not a latency result (a benchmark's JSON with 'models', 'machine' and "
                             f"'settings').")
        current = current or result["models"]
        result["models"] = {name: row for name, row in result["models"].items()
                            if name not in current or _size(current[name]) == _size(row)}
        label = result["machine"]["date"][:16].replace("T", " ")
        groups[provenance.describe_cpu(result["machine"])].append((label, result))
    return {cpu: sorted(runs, key=lambda run: run[0]) for cpu, runs in groups.items()}


def _size(row):
    return row["params"], row["macs"]


def speedups(runs, reference, statistic, threads) -> dict:
    """{model: [reference ÷ model latency per run, None where a run did not time it]} for the models at least two runs
    timed at the reference's size; {} when a run lacks the reference at that thread count."""
    from attendnext_keras.experiments.study_report import latency_table

    tables = [latency_table(result, statistic) for _, result in runs]
    if any(threads not in t.get(reference, {}) for t in tables):
        return {}
    names = dict.fromkeys(m for t in tables for m in t if m != reference)
    rows = {m: [t[reference][threads] / t[m][threads] if threads in t.get(m, {})
                and t[m]["input_size"] == t[reference]["input_size"] else None for t in tables] for m in names}
    return {m: v for m, v in rows.items() if sum(x is not None for x in v) >= 2} | {
        f"{reference} (ms)": [t[reference][threads] for t in tables]}


def common_formats(runs) -> list:
    """The runs with only the formats all of them timed (a run with int8-float-stem against runs without it): a
    format added between runs would otherwise move the best-format speed-ups, which is not run-to-run noise."""
    from attendnext_keras.experiments.benchmark import best_formats

    shared = set.intersection(*(set(result["settings"]["formats"]) for _, result in runs))
    if not shared:
        raise ValueError(f"The runs {', '.join(label for label, _ in runs)} share no format to compare.")
    out = []
    for label, result in runs:
        models = {}
        for name, row in result["models"].items():
            formats = {fmt: v for fmt, v in row["formats"].items() if fmt in shared}
            models[name] = dict(row, formats=formats, best=best_formats(formats, row["best"]))
        settings = result["settings"]
        formats = {fmt: mode for fmt, mode in settings["formats"].items() if fmt in shared}
        out.append((label, dict(result, models=models, settings=dict(settings, formats=formats))))
    return out


def spread(values) -> float:
    values = [v for v in values if v is not None]
    return max(values) / min(values) - 1


def measure(groups, reference, threads) -> list:
    from attendnext_keras.experiments.study_report import LATENCY_PERCENTILES

    out = []
    for cpu, runs in groups.items():
        runs = [run for run in runs if reference in run[1]["models"]]
        if len(runs) < 2:
            continue
        runs = common_formats(runs)
        for statistic in LATENCY_PERCENTILES:
            rows = speedups(runs, reference, statistic, threads)
            if len(rows) < 2:  # the reference alone, or not even it
                continue
            out.append({"cpu": cpu, "runs": [label for label, _ in runs], "statistic": statistic,
                        "formats": list(runs[0][1]["settings"]["formats"]),
                        "threads": threads, "rows": rows,
                        "spreads": {m: spread(v) for m, v in rows.items()}})
    return out


def goals_by_run(groups, config) -> list:
    """[CPU, run, statistic, threads, goal, measured, verdict] of the study's CPU speed goals for every run."""
    from attendnext_keras import _io
    from attendnext_keras.experiments import study_report as report

    out_dir = config.out_dir if os.path.isabs(config.out_dir) else HERE.parent / config.out_dir  # the repo's paths
    results = _io.read_json(os.path.join(out_dir, "results.json"), "Study results")
    front = report.aggregate(report.current_runs(results, "front"))
    rows = []
    for cpu, runs in groups.items():
        # A run with more formats than the others is also given in the formats all of them timed: the difference
        # is what its extra format bought, in the same run.
        variants = [(run, None) for run in runs] + [
            (restricted, "+".join(restricted[1]["settings"]["formats"]))
            for run, restricted in zip(runs, common_formats(runs))
            if len(runs) > 1 and run[1]["settings"]["formats"] != restricted[1]["settings"]["formats"]]
        for (label, result), only in sorted(variants, key=lambda v: (v[0][0], v[1] or "")):
            for statistic in report.LATENCY_PERCENTILES:
                latency = report.latency_table(result, statistic)
                for threads, on in report.CPU_THREADS:
                    timed = {m: row for m, row in latency.items() if threads in row}
                    for goal, _, measured, _, verdict in report.speed_goal_rows(front, timed, config, threads, on):
                        rows.append([cpu, label, only or "all", statistic, on, goal.split("'s accuracy")[0], measured,
                                     verdict])
    return rows


def markdown(groups_measured, reference, machine, command, goals) -> str:
    from attendnext_keras import provenance

    lines = ["# Latency ratios between runs", "", f"Command: `{command}`", "",
             f"Machine (of this script, which times nothing): {provenance.describe(machine)}", "",
             f"Speed-up over {reference} (its best-format latency ÷ the model's), run by run, and the spread between "
             f"runs (largest ÷ smallest − 1); the reference's own latency in ms. Each statistic is computed from "
             f"the same committed samples.", ""]
    for g in groups_measured:
        spreads = sorted(v for m, v in g["spreads"].items() if not m.endswith("(ms)"))
        middle = float(np.median(spreads))
        lines += [f"## {g['cpu']}: {g['statistic']}, {g['threads']} thread(s)", "",
                  f"Runs: {', '.join(g['runs'])}; best of {', '.join(g['formats'])}. Spread of the speed-ups: median {100 * middle:.0f} %, largest "
                  f"{100 * spreads[-1]:.0f} % ({len(spreads)} models).", "",
                  "| model | " + " | ".join(g["runs"]) + " | spread |", "|---|" + "---|" * (len(g["runs"]) + 1)]
        lines += [f"| {m} | " + " | ".join("—" if x is None else f"{x:.2f}" for x in v)
                  + f" | {100 * g['spreads'][m]:.0f} % |" for m, v in g["rows"].items()]
        lines.append("")
    lines += ["## The study's speed goals, run by run", "",
              "Each latency run with the study's front (mean test top-1 over seeds, `results.json`); the goal is "
              "≥ 3× at MobileNetV3-Large's accuracy and ≥ 1.2× at MobileNetV3-Small's. Formats: each model's best of "
              "all the run timed, and, for a run that timed more formats than the other runs on its CPU, again in "
              "the formats they share.", "",
              "| CPU | run | formats | statistic | threads | goal | measured | verdict |",
              "|---|---|---|---|---|---|---|---|"]
    lines += ["| " + " | ".join(row) + " |" for row in goals]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="*", help="latency.json files (default: the study's and its archive's).")
    parser.add_argument("--reference", default="mobilenet_v3_large", help="The model the speed-ups are over.")
    parser.add_argument("--threads", nargs="+", default=["1", "2"], help="Thread counts to compare.")
    parser.add_argument("--study-config", default=str(HERE.parent / "attendnext_keras/configs/study_flowers160.yaml"),
                        help="The study whose front the goals use (its `study` section).")
    parser.add_argument("--out", default=str(STUDY), help="Output folder.")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from attendnext_keras import _io, provenance
    from attendnext_keras.config import ConfigError, load_config

    paths = args.paths or [str(STUDY / "latency.json")] + sorted(glob.glob(str(STUDY / "archive" / "*" /
                                                                              "latency.json")))
    try:
        groups = load_runs(paths)
        goals = goals_by_run(groups, load_config(args.study_config).study)
    except (OSError, ValueError, ConfigError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    measured = [g for t in args.threads for g in measure(groups, args.reference, t)]
    machine = provenance.machine_info()
    text = markdown(measured, args.reference, machine, machine["command"], goals)
    _io.write_result(args.out, "latency_stability", {"machine": machine, "args": vars(args), "paths": paths,
                                                     "groups": measured, "goals": goals}, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

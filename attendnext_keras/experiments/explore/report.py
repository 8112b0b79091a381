"""Reports of a design exploration: which trials are feasible and best (or on the Pareto front), the trial table,
history and Pareto plots, the best spec and the winner's full report, all recomputed from the study's storage.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import shutil
from dataclasses import dataclass
from typing import Optional

import optuna

from attendnext_keras import _io, profiling, provenance
from attendnext_keras.experiments.explore.space import OBJECTIVES, Limits, check_candidate
from attendnext_keras.experiments.reports import ATTENDNEXT_COLOUR, PEER_COLOUR, figure, pareto_front, save_figure
from attendnext_keras.models import AttendNeXt
from attendnext_keras.specs import ModelSpec, save_spec, summarize_spec


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


def _rule(error: ValueError) -> str:
    """The rule a stored spec broke, briefly: ConstraintError.rule, or the first clause of another error."""
    return getattr(error, "rule", None) or str(error).splitlines()[0].split(": ", 1)[0]


def _feasibility(trial, limits: Limits):
    """(feasible, reason) of a finished trial under the current limits, re-checking its spec against the rules."""
    if trial.state != optuna.trial.TrialState.COMPLETE or not trial.user_attrs.get("evaluated"):
        rejected = trial.user_attrs.get("rejected") or ""
        return False, rejected or trial.user_attrs.get("error") or trial.state.name.lower()
    try:
        check_candidate(ModelSpec.from_dict(trial.user_attrs["spec"]))
    except (ValueError, KeyError, TypeError) as error:
        return False, f"spec rules: {_rule(error)}"
    broken = limits.violations(trial.user_attrs.get("metrics", {}))
    return (not broken), ("limits: " + ", ".join(broken) if broken else "")


def feasible_trials(trials, limits: Limits) -> list:
    """The trials that were trained and break no rule or limit (recomputed from their stored spec and metrics)."""
    return [t for t in trials if _feasibility(t, limits)[0]]


def select_best(trials, limits: Limits, objective: str) -> list:
    """The reported trials: the feasible trial with the best NetScore ("netscore"), or the Pareto front of the
    feasible trials. Trials that break a rule or a limit (recomputed from stored metrics) are never selected."""
    feasible = feasible_trials(trials, limits)
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
              "MACs | int8 top-1 (selection) | int8 top-1 (test) | int8 KiB | arena KiB | latency ms | × ref | NetScore |")
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    for r in rows:
        status = r["status"]
        status = f"**{best_label}**" if status == "best" else status
        lines.append(
            f"| {r['trial']} | {status[:70]} | {r.get('input', '—')} | {_fmt(r.get('width'), '{:g}')} | "
            f"{r.get('columns', '—')} | {r.get('blocks', '—')} | {r.get('dcac', '—')} | {r.get('merge', '—')} | "
            f"{r.get('blur', '—')} | {_fmt(r.get('params'), '{:,}')} | {_fmt(r.get('macs'), '{:,}')} | "
            f"{_fmt(r.get('top1'), '{:.1%}')} | {_fmt(r.get('test_top1'), '{:.1%}')} | "
            f"{_fmt(r.get('tflite_bytes'), '{:.1f}', 1 / 1024)} | "
            f"{_fmt(r.get('arena_bytes'), '{:.1f}', 1 / 1024)} | {_fmt(r.get('latency_ms'), '{:.3f}')} | "
            f"{_fmt(r.get('latency_ratio'), '{:.2f}')} | {_fmt(r.get('netscore'), '{:.1f}')} |")
    return "\n".join(lines)


def _plot_history(rows, objective, path):
    done = [r for r in rows if r.get("top1") is not None]
    names = [name for name, _ in OBJECTIVES[objective]]
    labels = {"netscore": "NetScore Ω", "top1": "int8 top-1", "latency_ratio": "latency ÷ reference",
              "tflite_bytes": "int8 .tflite KiB"}
    fig, axes = figure(4.5 * len(names), 3.8, len(names))
    for ax, (name, direction) in zip(axes, OBJECTIVES[objective]):
        scale = 1 / 1024 if name == "tflite_bytes" else 100 if name == "top1" else 1
        for feasible, marker, colour in ((True, "o", ATTENDNEXT_COLOUR), (False, "x", PEER_COLOUR)):
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
            ax.step(*zip(*line), where="post", color=ATTENDNEXT_COLOUR, lw=1, label="best so far")
        ax.set_xlabel("trial")
        ax.set_ylabel(labels[name] + (" (%)" if name == "top1" else ""))
        ax.set_title(f"{labels[name]} ({direction})", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return save_figure(fig, path)


def _plot_pareto(rows, best_numbers, path, reference):
    done = [r for r in rows if r.get("top1") is not None]
    fig, (ax,) = figure(6.5, 4.6, 1)
    for feasible, marker, colour, label in ((True, "o", "#e59866", "feasible"),
                                            (False, "x", PEER_COLOUR, "breaks a limit")):
        pts = [(r["latency_ratio"], 100 * r["top1"]) for r in done if r["feasible"] == feasible]
        if pts:
            ax.scatter(*zip(*pts), marker=marker, color=colour, zorder=3, label=label)
    front = sorted(((r["latency_ratio"], 100 * r["top1"], r["trial"]) for r in done if r["trial"] in best_numbers))
    if front:
        ax.plot([p[0] for p in front], [p[1] for p in front], "o--", color=ATTENDNEXT_COLOUR, lw=1, zorder=4,
                label="reported (best / front)")
        for x, y, n in front:
            ax.annotate(f"t{n}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.axvline(1.0, color="black", lw=0.8, ls=":", label=f"reference ({reference}) latency")
    ax.set_xlabel(f"int8 LiteRT latency ÷ {reference}'s (same process)")
    ax.set_ylabel("int8 top-1 (%)")
    ax.set_title("Accuracy against measured int8 latency", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return save_figure(fig, path)


def winner_report(trial, classes=None) -> str:
    """The full report of a trial: layout, profile per stage, int8 size, partitions, arena, latency, accuracy."""
    spec = ModelSpec.from_dict(trial.user_attrs["spec"])
    m = trial.user_attrs["metrics"]
    classes = classes or trial.user_attrs.get("classes") or 1000  # the head's width only changes the profile
    model = AttendNeXt(spec=spec, input_shape=(spec.input_size, spec.input_size, 3), classes=classes,
                       classifier_activation=None)
    lines = [f"# Trial {trial.number}: {spec.name}", "", "```", summarize_spec(spec), "```", "",
             "## Profile (Keras model, BatchNormalization statistics included)", "", "```",
             profiling.profile(model).table(),
             "```", "", "## int8 (post-training quantization, int8 input/output)", "",
             f"- top-1 on the test half of the held-out split (never used to select): "
             f"{_fmt(m.get('test_top1'), '{:.2%}')}; on the selection half that chose it: {m['top1']:.2%} "
             f"(float before conversion: {_fmt(m.get('float_top1'), '{:.2%}')})",
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
    limits = limits or Limits()
    objective = objective or study.user_attrs.get("objective", "netscore")
    os.makedirs(out_dir, exist_ok=True)
    trials = study.get_trials(deepcopy=False)
    best = select_best(trials, limits, objective)
    best_numbers = {t.number for t in best}
    rows = trial_rows(trials, limits, best_numbers)
    winner = best[0] if best else None
    settings = study.user_attrs.get("settings", {})
    table = markdown_table(rows, best_label="best" if objective == "netscore" else "front")
    paths = {"table": _io.write_atomic(os.path.join(out_dir, "results.md"),
                                       "\n".join(_header(study, rows, limits, objective, winner)) + "\n" + table + "\n"),
             "json": _io.write_json(os.path.join(out_dir, "results.json"), {
                 "study": study.study_name, "objective": objective, "limits": dataclasses.asdict(limits),
                 "settings": settings, "best": sorted(best_numbers),
                 "winner": None if winner is None else winner.number, "machine": provenance.machine_info(),
                 "trials": [{**r, "spec": t.user_attrs.get("spec"), "params_sampled": t.params}
                            for r, t in zip(rows, trials)]})}
    if any(r.get("top1") is not None for r in rows):
        paths["history_png"] = _plot_history(rows, objective, os.path.join(out_dir, "history.png"))
        paths["pareto_png"] = _plot_pareto(rows, best_numbers, os.path.join(out_dir, "pareto.png"),
                                           settings.get("reference", "micro"))
    winner_spec = _write_winner(out_dir, winner, best, objective, settings, paths)
    if verbose:
        print("\n" + table)
        print(f"\nwrote {', '.join(str(p) for k, p in paths.items() if k != 'front_specs')}")
    return ExploreResult(study=study, objective=objective, best_trials=best, winner=winner, winner_spec=winner_spec,
                         rows=rows, paths=paths)


def _header(study, rows, limits, objective, winner) -> list:
    settings = study.user_attrs.get("settings", {})
    counts = {}
    for r in rows:
        key = "evaluated" if r.get("top1") is not None else "rejected" if r["state"] == "PRUNED" else r["state"].lower()
        counts[key] = counts.get(key, 0) + 1
    lines = [f"# Design exploration: study '{study.study_name}'", "",
             f"Objective: {objective} ({', '.join(f'{n} {d}' for n, d in OBJECTIVES[objective])}); "
             f"limits: {limits.describe()}; base '{settings.get('base_variant', '?')}', "
             f"{settings.get('epochs', '?')} proxy epoch(s), reference {settings.get('reference', 'micro')}. "
             "Candidates are chosen on the selection half of the held-out split; the test half is reported only.",
             "Trials: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) + ".", ""]
    if winner is None:
        return lines + ["No feasible trial yet: nothing is reported as best.", ""]
    m = winner.user_attrs["metrics"]
    return lines + [f"Winner: trial {winner.number}, int8 top-1 {_fmt(m.get('test_top1'), '{:.1%}')} on the test half "
                    f"({m['top1']:.1%} on the selection half that chose it), {m['params']:,} params, {m['macs']:,} "
                    f"MACs, NetScore {m['netscore']:.1f}, {m['latency_ms']:.3f} ms (×{m['latency_ratio']:.2f} of the "
                    f"reference). Spec: `best_spec.json`.", ""]


def _write_winner(out_dir, winner, best, objective, settings, paths):
    """best_spec.json, the front's specs and winner/ (report, int8 model); removes a stale best spec."""
    if winner is None:
        if os.path.exists(os.path.join(out_dir, "best_spec.json")):
            os.remove(os.path.join(out_dir, "best_spec.json"))  # from an earlier report: no longer feasible
        return None
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
    paths["winner_report"] = _io.write_atomic(os.path.join(winner_dir, "report.md"), winner_report(winner, classes))
    source = winner.user_attrs["metrics"].get("tflite_path")
    if source and os.path.exists(source):
        paths["winner_tflite"] = _io.write_atomic(os.path.join(winner_dir, "model_int8.tflite"),
                                                  pathlib.Path(source).read_bytes())
    return winner_spec

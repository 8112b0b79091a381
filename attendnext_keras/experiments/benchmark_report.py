"""The peer benchmark's reports: markdown (models, latency, ratios, the paper's claims), a Figure-3-style plot of
relative throughput and size, and, when accuracies are given, accuracy against latency.

    paths = write_reports(result, "benchmarks/results")    # {"json", "md", "png"[, "pareto"]}
"""

from __future__ import annotations

import pathlib

import numpy as np

from attendnext_keras import _io, registry
from attendnext_keras.experiments import benchmark
from attendnext_keras.experiments.reports import (ATTENDNEXT_COLOUR, PEER_COLOUR, figure, fmt_count, fmt_ms,
                                                  fmt_ratio, latency_accuracy_front, log_latency_axis,
                                                  provenance_lines, save_figure, table)


def figure_baseline(result) -> str:
    """The model the Figure 3 plot normalises to: FBNet-C (the paper's), else MobileNetV3-Large, else the slowest
    model (best format, first thread count) among those at the comparison size."""
    rows = {n: r for n, r in result["models"].items() if r["same_resolution"]}
    for ref in ("fbnet_c", "mobilenet_v3_large"):
        if ref in rows:
            return ref
    t = str(result["settings"]["threads"][0])
    return max(rows, key=lambda n: rows[n]["best"][t]["median"])


def _name(result, n):
    rows = result["models"]
    return rows[n]["display_name"] if n in rows else registry.display_name(n)


def _row_name(result, n):
    row = result["models"][n]
    return _name(result, n) + ("" if row["same_resolution"] else f" (own {row['input_size']} px, not compared)")


def markdown_report(result, figure_name="peers.png", pareto_name="pareto.png") -> str:
    """The report as markdown: provenance, tables, the paper's claims with verdicts, figures and notes."""
    sections = [_header(result), _models_table(result), _latency_table(result), _relative_table(result),
                _comparison_tables(result), _claims_section(result), _figures_section(result, figure_name, pareto_name),
                _notes(result)]
    return "\n".join(line for section in sections for line in section)


def _header(result):
    s = result["settings"]
    calibration = sorted({r["calibration"] for r in result["models"].values()})
    return ["# AttendNeXt against the paper's peers", "", *provenance_lines(result["machine"]),
            f"Every model converted the same way (batch {s['batch_size']}, {s['classes']} classes, logits, random "
            f"weights): float32, and int8 by post-training quantization (int8 input and output) calibrated on "
            f"{'; '.join(calibration)}"
            + (" — also with the input scaling and first convolution left in float32 (int8-float-stem)"
               if "int8-float-stem" in s["formats"] else "")
            + f". LiteRT with XNNPACK; {s['runs']} timed runs per model, format and thread "
            f"count after {s['warmup']} warm-up runs, interleaved in shuffled rounds of {s['block']}-run blocks. "
            f"Parameters include BatchNormalization statistics (they fold away on conversion).", "",
            f"**{benchmark.SPEED_CAVEAT}**", ""]


def _models_table(result):
    rows = result["models"]
    formats = list(result["settings"]["formats"])
    return ["## Models", "", table(
        ["model", "input", "params", "MACs", "float32 KB", "int8 KB",
         f"XNNPACK partitions ({' / '.join(formats)})", "ops outside XNNPACK (int8)"],
        [[_row_name(result, n), r["input_size"], fmt_count(r["params"]), fmt_count(r["macs"]),
          f"{r['formats']['float32']['tflite_bytes'] / 1024:.0f}", f"{r['formats']['int8']['tflite_bytes'] / 1024:.0f}",
          " / ".join(str(r["formats"][f]["partitions"]) for f in formats),
          ", ".join(r["formats"]["int8"]["ops_outside"]) or "—"] for n, r in rows.items()]), ""]


def _latency_table(result):
    threads = [str(t) for t in result["settings"]["threads"]]
    formats = list(result["settings"]["formats"])  # the run's own (results before int8-float-stem have two)
    rows = [[_row_name(result, n)]
            + [" / ".join(fmt_ms(r["formats"][f]["latency_ms"][t][k]) for k in ("median", "p90", "p99"))
               for t in threads for f in formats]
            + [f"**{fmt_ms(r['best'][t]['median'])}** ({r['best'][t]['format']})" for t in threads]
            for n, r in result["models"].items()]
    return ["## Latency", "", "Milliseconds, median / p90 / p99; **best** is the faster format's median.", "",
            table(["model"] + [f"{f} {t}T" for t in threads for f in formats] + [f"best {t}T" for t in threads],
                  rows), ""]


def _relative_table(result):
    refs, rows = result["references"], result["models"]
    if not refs:
        return []
    threads = [str(t) for t in result["settings"]["threads"]]
    main = [n for n, r in rows.items() if r["same_resolution"]]

    def cell(n, ref, value):
        return value(rows[n]["relative_to"][ref]) if ref in rows[n]["relative_to"] else "—"

    body = [[_name(result, n)]
            + [cell(n, ref, lambda c: fmt_ratio(c["speedup"][t]["best"])) for ref in refs for t in threads]
            + [cell(n, ref, lambda c: fmt_ratio(c["params_ratio"])) for ref in refs] for n in main]
    names = [_name(result, ref) for ref in refs]
    return [f"## Relative to {' and '.join(names)}", "",
            "Speed-up = reference latency / model latency (best format of each); size = reference parameters / "
            f"model parameters. Models at {result['settings']['comparison_input_size']} px only.", "",
            table(["model"] + [f"speed-up vs {r} {t}T" for r in names for t in threads]
                  + [f"smaller than {r}" for r in names], body), ""]


def _comparison_tables(result):
    threads = [str(t) for t in result["settings"]["threads"]]
    out = []
    for subject, peers in result["comparisons"].items():
        if not peers:
            continue
        out += [f"## {_name(result, subject)} against each peer", "",
                "Speed-up = peer latency / AttendNeXt latency: by best format, float32 vs float32 and int8 vs int8; "
                "size = peer parameters / AttendNeXt parameters.", "",
                table(["peer", "smaller (params)"] + [f"{k} {t}T" for t in threads for k in ("best", "fp32", "int8")],
                      [[_name(result, p), fmt_ratio(c["params_ratio"])]
                       + [fmt_ratio(c["speedup"][t][k]) for t in threads for k in ("best", "float32", "int8")]
                       for p, c in peers.items()]), ""]
    return out


def _claims_section(result):
    m, s = result["machine"], result["settings"]
    subject = _name(result, result["claim_subject"]) if result["claim_subject"] else "—"

    def measured(claim):
        if claim["measured"] is None:
            return "—"
        if claim["kind"] == "size":
            return fmt_ratio(claim["measured"])
        return ", ".join(f"{fmt_ratio(x)} ({t}T)" for t, x in claim["measured"].items())

    return ["## The paper's claims", "",
            f"Wong et al. 2022 (Figure 3) measured on an ARM Cortex-A72; this run is on {m['cpu_model']} "
            f"({m['machine']}) with LiteRT/XNNPACK, so these verdicts say where ours stands here, not whether the "
            f"paper's numbers are right. Checked on **{subject}** at {s['comparison_input_size']} px, best format "
            f"per model; a speed claim holds when it holds at every thread count timed. The paper claims its speed "
            f"at comparable ImageNet accuracy; these random-weight models have not been compared at equal accuracy.",
            "", table(["claim", "measured", "verdict"],
                      [[c["text"], measured(c), c["verdict"]] for c in result["claims"]]), ""]


def _figures_section(result, figure_name, pareto_name):
    rows, threads = result["models"], [str(t) for t in result["settings"]["threads"]]
    out = ["## Figures", ""]
    if any(r["same_resolution"] for r in rows.values()):
        base = figure_baseline(result)
        why = ("the paper's baseline" if base == "fbnet_c" else
               "FBNet-C, the paper's baseline, is not in this run" if base == "mobilenet_v3_large" else
               "the slowest model: neither FBNet-C nor MobileNetV3-Large is in this run")
        out += [f"![Relative throughput and model size]({figure_name})", "",
                f"In the style of the paper's Figure 3: (a) throughput relative to **{_name(result, base)}** ({why}): "
                f"its latency / model latency, best format, per thread count; (b) model size relative to it: "
                f"parameters and int8 .tflite bytes. Models at {result['settings']['comparison_input_size']} px only.",
                ""]
    plotted = _pareto_models(result)
    if plotted:
        out += [f"![Accuracy against latency]({pareto_name})", "",
                f"Top-1 accuracy (from the accuracies file: {', '.join(_name(result, n) for n in plotted)}) against "
                f"int8 and best-format latency at {threads[0]} thread(s); the line joins the Pareto-optimal models.", ""]
    else:
        out += ["Accuracy–latency plot skipped: no accuracies given for the models of this run (`--accuracies "
                "FILE`, a JSON object {model_name: top1}).", ""]
    return out


def _notes(result):
    rows, m = result["models"], result["machine"]
    notes = ["Weights are random: latency and size do not depend on them; accuracy is not measured here."]
    own = [n for n, r in rows.items() if not r["same_resolution"]]
    if own:
        listed = ", ".join(f"{_name(result, n)} ({rows[n]['input_size']} px)" for n in own)
        notes.append(f"{listed} ran at its own resolution, not {result['settings']['comparison_input_size']} px: "
                     f"listed in the tables, left out of ratios, claims and Figure 3.")
    notes += list(result["not_rebuilt"].values())
    notes.append(f"The paper timed on an ARM Cortex-A72; this run used {m['cpu_model']} ({m['machine']}), where "
                 f"XNNPACK runs other kernels: speed ratios measured here need not transfer to the A72.")
    return ["## Notes", ""] + [f"- {n}" for n in notes] + [""]


def _pareto_models(result) -> list:
    accuracies = result.get("accuracies") or {}
    return [n for n in result["models"] if n in accuracies]


def _colours(names, rows):
    return [ATTENDNEXT_COLOUR if rows[n]["family"] == "attendnext" else PEER_COLOUR for n in names]


def plot_figure3(result, path) -> str:
    """Relative throughput (a) and relative model size (b), grouped bars per model, like the paper's Figure 3."""
    rows = result["models"]
    names = [n for n, r in rows.items() if r["same_resolution"]]
    base = figure_baseline(result)
    fig, (ax_a, ax_b) = figure(max(10, 1.5 * len(names) + 4), 4.8, 2)
    _throughput_bars(ax_a, result, names, base)
    _size_bars(ax_b, result, names, base)
    x = np.arange(len(names))
    for ax in (ax_a, ax_b):
        ax.set_xticks(x, [rows[n]["display_name"].replace(" ", "\n", 1) for n in names], fontsize=7)
        ax.axhline(1.0, color="black", lw=0.8, ls="--")
        ax.grid(axis="y", alpha=0.3)
    m = result["machine"]
    fig.suptitle(f"{m['cpu_model']} ({m['cpu_count']} CPUs), LiteRT + XNNPACK, "
                 f"{result['settings']['comparison_input_size']} px, random weights", fontsize=9)
    return save_figure(fig, path)


def _throughput_bars(ax, result, names, base):
    from matplotlib.patches import Patch

    rows, threads = result["models"], [str(t) for t in result["settings"]["threads"]]
    x, width, handles = np.arange(len(names)), 0.8 / len(threads), []
    for k, t in enumerate(threads):
        values = [rows[base]["best"][t]["median"] / rows[n]["best"][t]["median"] for n in names]
        alpha = 1.0 - 0.55 * k / max(1, len(threads) - 1)
        bars = ax.bar(x + (k - (len(threads) - 1) / 2) * width, values, width, color=_colours(names, rows),
                      alpha=alpha)
        ax.bar_label(bars, fmt="%.1f×", fontsize=7)
        handles.append(Patch(color=PEER_COLOUR, alpha=alpha, label=f"{t} thread(s)"))
    handles.append(Patch(color=ATTENDNEXT_COLOUR, label="AttendNeXt"))
    ax.set_title(f"(a) Throughput relative to {rows[base]['display_name']} (best format)", fontsize=10)
    ax.set_ylabel("relative throughput (×)")
    ax.legend(handles=handles, fontsize=7)


def _size_bars(ax, result, names, base):
    from matplotlib.patches import Patch

    rows, x, width = result["models"], np.arange(len(names)), 0.4
    params = [rows[n]["params"] / rows[base]["params"] for n in names]
    int8 = [rows[n]["formats"]["int8"]["tflite_bytes"] / rows[base]["formats"]["int8"]["tflite_bytes"] for n in names]
    ax.bar_label(ax.bar(x - width / 2, params, width, color=_colours(names, rows)), fmt="%.2f", fontsize=7)
    ax.bar_label(ax.bar(x + width / 2, int8, width, color=_colours(names, rows), alpha=0.45, hatch="//"),
                 fmt="%.2f", fontsize=7)
    ax.set_title(f"(b) Model size relative to {rows[base]['display_name']}", fontsize=10)
    ax.set_ylabel("relative size (×)")
    ax.legend(handles=[Patch(color=PEER_COLOUR, label="parameters"),
                       Patch(facecolor=PEER_COLOUR, alpha=0.45, hatch="//", label="int8 .tflite bytes"),
                       Patch(color=ATTENDNEXT_COLOUR, label="AttendNeXt")], fontsize=7)


def plot_pareto(result, path) -> str | None:
    """Accuracy against int8 and best-format latency (first thread count); None when no accuracy matches."""
    names = _pareto_models(result)
    if not names:
        return None
    rows, accuracies = result["models"], result["accuracies"]
    t = str(result["settings"]["threads"][0])
    scale = 100.0 if all(0 <= accuracies[n] <= 1 for n in names) else 1.0
    fig, axes = figure(11, 4.6, 2)
    for ax, kind in zip(axes, ("int8", "best")):
        points = [((rows[n]["formats"]["int8"]["latency_ms"][t]["median"] if kind == "int8"
                    else rows[n]["best"][t]["median"]), accuracies[n] * scale) for n in names]
        ax.scatter([p[0] for p in points], [p[1] for p in points], c=_colours(names, rows), zorder=3)
        for n, p in zip(names, points):
            label = rows[n]["display_name"] + ("" if rows[n]["same_resolution"] else f" ({rows[n]['input_size']} px)")
            ax.annotate(label, p, textcoords="offset points", xytext=(4, 4), fontsize=7)
        front = [points[i] for i in latency_accuracy_front(points)]
        ax.plot([p[0] for p in front], [p[1] for p in front], color=ATTENDNEXT_COLOUR, lw=1, ls="--", zorder=2,
                label="Pareto front")
        log_latency_axis(ax, f"{kind if kind == 'int8' else 'best-format'} latency, ms ({t} thread(s), log scale)")
        ax.set_ylabel("top-1 accuracy" + (" (%)" if scale == 100.0 else ""))
        ax.set_title(f"Accuracy against {'int8' if kind == 'int8' else 'best-format'} latency", fontsize=10)
        ax.grid(alpha=0.3)
        ax.margins(x=0.2, y=0.1)
        ax.legend(fontsize=7)
    return save_figure(fig, path)


def write_reports(result, out_dir=None, stem="peers", accuracies=None) -> dict:
    """Writes `{stem}.json`, `{stem}.md`, `{stem}.png` (Figure 3 style) and, when accuracies are known,
    `pareto.png` into `out_dir` (default: the run's). `accuracies` ({model: top1} or a JSON file) replaces the
    run's. Returns {"json", "md", "png"[, "pareto"]: path}."""
    out_dir = pathlib.Path(out_dir if out_dir is not None else result["settings"]["out_dir"])
    out_dir.mkdir(parents=True, exist_ok=True)
    if accuracies is not None:
        result = dict(result, accuracies=benchmark.load_accuracies(accuracies))
    paths = {}
    if any(r["same_resolution"] for r in result["models"].values()):
        paths["png"] = plot_figure3(result, out_dir / f"{stem}.png")
    pareto = plot_pareto(result, out_dir / "pareto.png")
    if pareto:
        paths["pareto"] = pareto
    paths["md"] = _io.write_atomic(out_dir / f"{stem}.md", markdown_report(result, f"{stem}.png", "pareto.png"))
    paths["json"] = _io.write_json(out_dir / f"{stem}.json", result)
    return paths

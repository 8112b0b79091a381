"""Shared pieces of every experiment report: markdown tables and number formats, Pareto fronts, matplotlib figures
(drawn off-screen, written atomically) and the provenance header each report starts with."""

from __future__ import annotations

import os

from attendnext_keras import _io, provenance

ATTENDNEXT_COLOUR = "#c0392b"
PEER_COLOUR = "#7f8c8d"
FAMILY_COLOURS = {"attendnext": ATTENDNEXT_COLOUR, "mobilenet_v3": "#2980b9", "mobilenet_v2": "#27ae60",
                  "other": PEER_COLOUR}


def fmt_ms(x) -> str:
    return "—" if x is None else f"{x:.2f}" if x >= 0.1 else f"{x:.3f}"


def fmt_count(x) -> str:
    return "—" if x is None else f"{x / 1e6:.2f} M" if x >= 1e5 else f"{x / 1e3:.1f} k"


def fmt_ratio(x) -> str:
    return "—" if x is None else f"{x:.2f}×"


def fmt_pct(x, digits=1) -> str:
    return "—" if x is None else f"{100 * x:.{digits}f} %"


def table(header, rows) -> str:
    """A markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def provenance_lines(machine: dict) -> list:
    """The header lines of a report: command, date, machine (CPU, flags, load), package versions."""
    versions = machine.get("versions") or {}
    shown = ", ".join(f"{k} {v}" for k, v in versions.items() if v)
    return [f"Command: `{machine.get('command')}`", "",
            f"Machine: {provenance.describe(machine)}; {machine.get('platform')}; Python {machine.get('python')}"
            + (f"; {shown}" if shown else "") + ".", ""]


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


def latency_accuracy_front(points) -> list:
    """Indices of (latency, accuracy) points on the front (lower latency, higher accuracy), by latency."""
    return sorted(pareto_front(points, ("minimize", "maximize")), key=lambda i: points[i])


def figure(width, height, ncols=1):
    """A matplotlib Figure with `ncols` axes, drawn without a display (Agg), and its axes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # deferred: matplotlib is only needed for plots
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=120)
    FigureCanvasAgg(fig)
    return fig, [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]


def save_figure(fig, path) -> str:
    """Writes a figure as PNG atomically."""
    fig.tight_layout()
    with _io.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return os.fspath(path)


def log_latency_axis(ax, label):
    """A log-scale x axis with plain tick labels (1, 2, 5, 10 ms ...)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(label)

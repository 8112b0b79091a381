"""The design space of exploration: the NetScore objective, user limits (constraints), the structural choices a
trial samples (`SearchSpace`, `sample_spec`) and the builder's rules every candidate must pass (`check_candidate`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Optional

import optuna

from attendnext_keras.config import SearchSpace  # noqa: F401 (the space's definition lives with the configs)
from attendnext_keras.models import obtain_input_shape
from attendnext_keras.specs import (BlockSpec, ColumnSpec, ConstraintError, DCACSpec, ModelSpec, StageSpec,
                                    check_constraints, get_spec)

OBJECTIVES = {
    # name: ((metric, direction), ...)
    "netscore": (("netscore", "maximize"),),
    "pareto": (("top1", "maximize"), ("latency_ratio", "minimize")),
    "pareto-size": (("top1", "maximize"), ("latency_ratio", "minimize"), ("tflite_bytes", "minimize")),
}
SAMPLERS = ("tpe", "nsga2", "random")
CONSTRAINT_NAMES = ("spec_rules", "params", "macs", "tflite_bytes", "arena_bytes", "latency_ms", "accuracy",
                    "partitions")
"""The order of `trial.user_attrs["constraints"]`; a value > 0 means violated (relative excess over the limit). A
study stored with fewer takes no new trials (`search._search` says so): its samplers cannot compare the two."""


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
    max_partitions: Optional[int] = None  # XNNPACK partitions plus ops outside them (1: the int8 graph in one)

    @classmethod
    def of(cls, config) -> "Limits":
        """The limits set in `config` (an ExploreConfig, or anything with these fields)."""
        return cls(**{f.name: getattr(config, f.name) for f in dataclasses.fields(cls)})

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
               ("latency_ms", "latency_ms", "max_latency_ms", False), ("accuracy", "top1", "min_accuracy", False),
               ("partitions", "graph_segments", "max_partitions", False))

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


def _dwsep_widths(stage: StageSpec) -> list:
    widths = [b.filters for b in stage.columns[0].blocks if b.kind != "dcac" and b.filters]
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


def check_candidate(spec: ModelSpec, also_sizes=()) -> None:
    """The builder's rules for a candidate: `specs.check_constraints` and an input size the spec can take (its own,
    and each of `also_sizes`: where else it must build, e.g. the finalists' study size). Raises ConstraintError
    naming the broken rule."""
    try:
        check_constraints(spec)
    except ConstraintError:
        raise
    except ValueError as error:  # check_structure: the spec cannot be built at all
        raise ConstraintError(str(error), rule=str(error).split(": ", 1)[0]) from error
    for size in (spec.input_size, *also_sizes):
        try:
            obtain_input_shape((size, size, 3), spec)
        except ValueError as error:
            raise ConstraintError(str(error), rule=f"input size {size}") from error

def netscore_of(metrics: dict, alpha=2.0, beta=0.5, gamma=0.5) -> float:
    """NetScore of measured metrics: int8 top-1 (floored at 0.01 % so a 0 % proxy stays finite), params, MACs."""
    return netscore(max(100.0 * metrics["top1"], 0.01), metrics["params"] / 1e6, metrics["macs"] / 1e9,
                    alpha, beta, gamma)

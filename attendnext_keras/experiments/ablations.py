"""The paper's ablations as specs: one fixed AttendNeXt spec and its arms, each changing one design choice.

    arms = ablation_specs(get_spec("base"))     # {"default": spec, "dcac_no_residual": spec, ...}

Attention: DC-AC with residual (the default), DC-AC without residual, the original attention condenser, none.
Downsampling: AADS as specified, against what ordinary networks do: strided 2×2 max-pool, strided 2×2 average pool and
a strided 3×3 depthwise convolution (MobileNet's way). Columns: the columnar spec against a single-column spec whose
widths are scaled so that its parameters come within 10 % (`single_column`; its MACs are reported beside).
"""

from __future__ import annotations

import dataclasses

from attendnext_keras import models, profiling
from attendnext_keras.specs import ColumnSpec, DCACSpec, ModelSpec, get_spec

GROUPS = {"attention": ("default", "dcac_no_residual", "attention_condenser", "no_attention"),
          "downsampling": ("default", "strided_max", "strided_avg", "strided_dwconv"),
          "columns": ("default", "single_column")}
ARMS = tuple(dict.fromkeys(arm for arms in GROUPS.values() for arm in arms))
MATCH_TOLERANCE = 0.10


def _without_residual(spec: ModelSpec) -> ModelSpec:
    def block(b):
        return dataclasses.replace(b, dcac=dataclasses.replace(b.dcac or DCACSpec(), residual=False)) \
            if b.kind == "dcac" else b

    stages = tuple(dataclasses.replace(s, columns=tuple(ColumnSpec(tuple(block(b) for b in c.blocks))
                                                        for c in s.columns)) for s in spec.stages)
    return spec.replace(stages=stages)


def _scaled_filters(spec: ModelSpec, early: float, late: float) -> ModelSpec:
    """Block widths × `early` in the first half of the stages and × `late` in the rest (multiples of 8)."""
    half = len(spec.stages) // 2

    def block(b, factor):
        return dataclasses.replace(b, filters=max(8, int(round(b.filters * factor / 8)) * 8)) if b.filters else b

    stages = tuple(dataclasses.replace(s, columns=tuple(ColumnSpec(tuple(block(b, early if i < half else late)
                                                                         for b in c.blocks)) for c in s.columns))
                   for i, s in enumerate(spec.stages))
    return spec.replace(stages=stages)


def _one_column(spec: ModelSpec) -> ModelSpec:
    stages = tuple(dataclasses.replace(s, columns=s.columns[:1], merge="concat") for s in spec.stages)
    return spec.replace(stages=stages)


def _size(spec: ModelSpec, input_size: int, classes: int):
    model = models.AttendNeXt(spec=spec, input_shape=(input_size, input_size, 3), classes=classes,
                              classifier_activation=None, enforce_constraints=False)
    prof = profiling.profile(model)
    return prof.params, prof.macs


def _bisect(measure, target, low, high, steps=10):
    """The factor in [low, high] whose measure (increasing in the factor) comes closest to `target`."""
    best = None
    for _ in range(steps):
        factor = (low + high) / 2
        value = measure(factor)
        if best is None or abs(value - target) < abs(best[1] - target):
            best = (factor, value)
        low, high = (factor, high) if value < target else (low, factor)
    return best[0]


def single_column(spec: ModelSpec, input_size: int, classes: int = 1000) -> ModelSpec:
    """One column per stage (the first column's blocks), with the widths of the early and the late stages scaled
    separately so that both parameters (mostly late) and MACs (mostly early, at high resolution) come close to the
    columnar spec's: alternate bisections, three rounds."""
    params, macs = _size(spec, input_size, classes)
    one = _one_column(spec)
    early, late = 1.0, 1.0
    for _ in range(3):
        early = _bisect(lambda f: _size(_scaled_filters(one, f, late), input_size, classes)[1], macs, 0.5, 4.0)
        late = _bisect(lambda f: _size(_scaled_filters(one, early, f), input_size, classes)[0], params, 0.5, 4.0)
    return _scaled_filters(one, early, late).replace(
        name=f"{spec.name}_single_column",
        description=f"{spec.name} with one column per stage; early widths ×{early:.2f}, late ×{late:.2f} to match "
                    f"its parameters and MACs.")


def ablation_specs(spec, input_size: int | None = None, classes: int = 1000) -> dict:
    """{arm: ModelSpec} for every arm of `GROUPS`, from a spec (or variant name). Every arm keeps the spec's own
    (deployment) input size; `input_size` is the size the single-column arm's parameters and MACs are matched at (the
    size it is trained at; default the spec's)."""
    spec = get_spec(spec)
    size = input_size or spec.input_size
    arms = {
        "default": spec,
        "dcac_no_residual": _without_residual(spec),
        "attention_condenser": spec.replace(attention="ac"),
        "no_attention": spec.replace(attention="none"),
        "strided_max": spec.replace(antialias=False, plain_downsample="max"),
        "strided_avg": spec.replace(antialias=False, plain_downsample="avg"),
        "strided_dwconv": spec.replace(antialias=False, plain_downsample="dwconv"),
        "single_column": single_column(spec, size, classes),
    }
    return {arm: s.replace(name=f"{spec.name}__{arm}") for arm, s in arms.items()}


def size_match(spec: ModelSpec, other: ModelSpec, input_size: int, classes: int = 1000) -> dict:
    """Parameter and MAC ratios of `other` to `spec` (the columns arm must be within MATCH_TOLERANCE in params)."""
    (p0, m0), (p1, m1) = _size(spec, input_size, classes), _size(other, input_size, classes)
    return {"params_ratio": p1 / p0, "macs_ratio": m1 / m0,
            "params_within_tolerance": abs(p1 / p0 - 1) <= MATCH_TOLERANCE,
            "macs_within_tolerance": abs(m1 / m0 - 1) <= MATCH_TOLERANCE}

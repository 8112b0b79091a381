"""AttendNeXt architecture as data: frozen dataclasses and the registered variants.

A spec is a plain value: it prints, compares and hashes, and a variant is a spec you can copy and change:

    spec = dataclasses.replace(VARIANTS["base"], width=0.75, input_size=160)
    model = attendnext_keras.AttendNeXt(spec=spec)

Layout (the paper's Figure 1 is not published in the text, so the concrete layout is ours; see the variants below):

    stem (strided 3×3 conv) → stages (each: AADS downsample, parallel columns of blocks, a merge) → head

Columns: each stage holds parallel columns. A stage whose `merge` is "none" passes each column on to the column of
the same index in the next stage (columns stay independent); "concat" and "add" join them into one tensor that every
column of the next stage reads (columns interact). Early stages keep more independent columns, later stages fewer,
as the paper prescribes.

The paper's design constraints are checked by `check_constraints(spec)` before a model is built:
  (1) columnar: some stage has ≥ 2 parallel columns and the number of columns never grows with depth;
  (2) no point-wise (1×1) convolution with stride > 1 anywhere;
  (3) every downsampling after the stem is anti-aliased (BlurPool-based AADS);
  and DC-AC modules sit in at least two stages.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from typing import Optional

from attendnext_keras import _io
from attendnext_keras.layers.blurpool import PLAIN_DOWNSAMPLES
from attendnext_keras.layers.dcac import check_condenser_args

BLOCK_KINDS = ("conv", "dwsep", "ir", "fused", "dcac")
DOWNSAMPLES = ("max", "conv", "blur")
MERGES = ("none", "concat", "add")
ATTENTIONS = ("dcac", "ac", "none")


class ConstraintError(ValueError):
    """A spec breaks one of AttendNeXt's design constraints; `rule` names it briefly (e.g. "constraint (3)")."""

    def __init__(self, message: str, rule: str | None = None):
        super().__init__(message)
        self.rule = rule or message.splitlines()[0]


@dataclass(frozen=True)
class DCACSpec:
    """Settings of one DC-AC module (see attendnext_keras.layers.dcac for the maths)."""

    condense_factor: int = 2
    embed_ratio: float = 0.25
    embed_channels: Optional[int] = None
    kernel_size: int = 3
    expansion: str = "depth_to_space"
    residual: bool = True


@dataclass(frozen=True)
class BlockSpec:
    """One block of a column.

    kind: "conv" (k×k conv → BN → ReLU), "dwsep" (depthwise k×k → BN → ReLU → 1×1 conv → BN → ReLU, plus an identity
    shortcut when input and output widths match), "ir" (MobileNetV2's inverted residual: 1×1 expansion to
    `expansion` × the input width → BN → ReLU → depthwise k×k → BN → ReLU → 1×1 projection → BN, linear, plus the
    shortcut), "fused" (fused inverted residual: k×k conv expanding → BN → ReLU → 1×1 projection → BN, plus the
    shortcut) or "dcac" (a DC-AC module keeping the width). Every block keeps the resolution: downsampling is the
    stage's (anti-aliased), so no 1×1 convolution is ever strided. ReLU throughout: it stays inside XNNPACK in int8,
    where hard-swish falls out.
    """

    kind: str
    filters: Optional[int] = None
    kernel_size: int = 3
    dcac: Optional[DCACSpec] = None
    expansion: Optional[float] = None  # "ir" and "fused" only: hidden width ÷ input width


@dataclass(frozen=True)
class ColumnSpec:
    blocks: tuple


@dataclass(frozen=True)
class StageSpec:
    """A stage: optional anti-aliased downsampling (stride 2) of its inputs, parallel columns, then a merge.

    downsample: None (keep the resolution) or an AADS pattern: "max" (max-pool 2×2/1 → blur/2), "conv" (3×3 conv/1
    → blur/2, widening to `downsample_filters`) or "blur" (blur/2 alone).
    """

    columns: tuple
    downsample: Optional[str] = "max"
    downsample_filters: Optional[int] = None
    blur_size: int = 3
    merge: str = "concat"


@dataclass(frozen=True)
class StemSpec:
    filters: int = 16
    kernel_size: int = 3
    strides: int = 2


@dataclass(frozen=True)
class HeadSpec:
    """Classifier head: global pooling → optional Dense(hidden) + ReLU → dropout → Dense(classes).

    Pooling first (as in MobileNetV3) keeps the wide hidden layer cheap: its MACs equal its parameters.
    """

    hidden: int = 1280
    dropout: float = 0.2


@dataclass(frozen=True)
class ModelSpec:
    """A whole AttendNeXt. `width` scales every convolution width (rounded to multiples of 8) like MobileNet's
    alpha; the head's hidden layer scales too. `attention` and `antialias` are the ablation switches."""

    name: str
    input_size: int
    stem: StemSpec
    stages: tuple
    head: HeadSpec = field(default_factory=HeadSpec)
    width: float = 1.0
    attention: str = "dcac"
    antialias: bool = True
    plain_downsample: str = "max"  # with antialias=False: "max", "avg", "dwconv" or "decimate" (layers.blurpool)
    blur_pad_mode: str = "same"
    description: str = ""

    def replace(self, **changes) -> "ModelSpec":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """The spec as nested plain values (dicts, lists, numbers, strings, None) for JSON; `from_dict` inverts it."""
        return _plain(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, values: dict) -> "ModelSpec":
        """The spec `to_dict` wrote (unknown or missing keys are an error naming them)."""
        return _from_plain(cls, values, "spec")

    @property
    def strides(self) -> list:
        """Output stride of each stage."""
        stride, out = self.stem.strides, []
        for stage in self.stages:
            stride *= 2 if stage.downsample else 1
            out.append(stride)
        return out

    @property
    def size_divisor(self) -> int:
        """Input height and width must be multiples of this (final stride and every DC-AC's condensed grid)."""
        divisor = self.strides[-1] if self.stages else self.stem.strides
        for stride, stage in zip(self.strides, self.stages):
            for column in stage.columns:
                for block in column.blocks:
                    if block.kind == "dcac":
                        divisor = math.lcm(divisor, stride * (block.dcac or DCACSpec()).condense_factor)
        return divisor


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


# Which dataclass each nested field holds (tuples of them for `stages`, `columns`, `blocks`).
_NESTED = {"stem": "StemSpec", "head": "HeadSpec", "stages": "StageSpec", "columns": "ColumnSpec",
           "blocks": "BlockSpec", "dcac": "DCACSpec"}


def _from_plain(cls, values, where):
    if not isinstance(values, dict):
        raise ValueError(f"Invalid spec data at '{where}': expected a mapping for {cls.__name__}. "
                         f"Received: {type(values).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ValueError(f"Invalid spec data at '{where}': unknown keys {unknown} for {cls.__name__}; "
                         f"known: {sorted(fields)}")
    missing = sorted(name for name, f in fields.items() if name not in values
                     and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING)
    if missing:
        raise ValueError(f"Invalid spec data at '{where}': missing keys {missing} for {cls.__name__}")
    out = {}
    for name, value in values.items():
        nested = globals().get(_NESTED.get(name, ""))
        if nested is not None and value is not None:
            if name in ("stages", "columns", "blocks"):
                if not isinstance(value, (list, tuple)):
                    raise ValueError(f"Invalid spec data at '{where}.{name}': expected a list. Received: {value!r}")
                value = tuple(_from_plain(nested, v, f"{where}.{name}[{i}]") for i, v in enumerate(value))
            else:
                value = _from_plain(nested, value, f"{where}.{name}")
        out[name] = value
    return cls(**out)


def save_spec(spec: ModelSpec, path) -> str:
    """Writes a spec as JSON (`ModelSpec.to_dict`); `load_spec(path)` gives it back and `AttendNeXt(spec=...)` builds
    it. Returns the path."""
    return _io.write_json(path, get_spec(spec).to_dict())


def load_spec(path) -> ModelSpec:
    """The ModelSpec in a JSON file written by `save_spec` (or by `attendnext explore`)."""
    path = os.fspath(path)
    values = _io.read_json(path, "Spec file")
    try:
        return ModelSpec.from_dict(values)
    except (TypeError, ValueError) as error:
        raise ValueError(f"Spec file '{path}': {error}") from error


def make_divisible(value: float, divisor: int = 8) -> int:
    """MobileNet's rounding of scaled widths: nearest multiple of `divisor`, never below 90 % of the value."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def scaled(filters: int, width: float) -> int:
    return filters if width == 1.0 else make_divisible(filters * width)


# --------------------------------------------------------------------------------------------------------------------
# Constraint checking


def check_constraints(spec: ModelSpec) -> None:
    """Raises ConstraintError naming the first broken rule of the paper's design space (see the module docstring)."""
    check_structure(spec)
    multi = [len(s.columns) for s in spec.stages]
    if not any(n >= 2 for n in multi):
        raise ConstraintError(
            f"Spec '{spec.name}' breaks constraint (1) columnar design: no stage has two or more parallel columns. "
            f"Columns per stage: {multi}",
            rule="constraint (1) columnar design",
        )
    if any(b > a for a, b in zip(multi, multi[1:])):
        raise ConstraintError(
            f"Spec '{spec.name}' breaks constraint (1) columnar design: columns must be more independent early and "
            f"interact more later, so their number may not grow with depth. Columns per stage: {multi}",
            rule="constraint (1) columnar design",
        )
    if spec.stem.kernel_size == 1 and spec.stem.strides > 1:
        raise ConstraintError(
            f"Spec '{spec.name}' breaks constraint (2): the stem is a point-wise (1×1) convolution with stride "
            f"{spec.stem.strides}. Use kernel_size ≥ 3.",
            rule="constraint (2)",
        )
    for i, stage in enumerate(spec.stages, 1):
        if stage.downsample and not spec.antialias:
            raise ConstraintError(
                f"Spec '{spec.name}' breaks constraint (3): stage{i} downsamples without anti-aliasing "
                f"(antialias=False). Every downsampling after the stem must use AADS (BlurPool). Pass "
                f"enforce_constraints=False to build this ablation anyway.",
                rule="constraint (3)",
            )
        if stage.downsample and stage.blur_size < 2:
            raise ConstraintError(
                f"Spec '{spec.name}' breaks constraint (3): stage{i} downsamples with blur_size={stage.blur_size}, "
                f"which is plain subsampling. Use blur_size ≥ 2 for anti-aliased downsampling (AADS).",
                rule="constraint (3)",
            )
    attention_stages = [i for i, s in enumerate(spec.stages, 1)
                        if any(b.kind == "dcac" for c in s.columns for b in c.blocks)]
    if spec.attention == "none" or len(attention_stages) < 2:
        raise ConstraintError(
            f"Spec '{spec.name}' breaks the DC-AC placement rule: attention condensers must sit in at least two "
            f"stages. Stages with DC-AC: {attention_stages}, attention={spec.attention!r}. Pass "
            f"enforce_constraints=False to build this ablation anyway.",
            rule="the DC-AC placement rule",
        )


def _is_int(value, minimum) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _number_problems(spec: ModelSpec):
    """(path, what was expected, value) of every numeric field with the wrong type or sign."""
    ints = [("input_size", spec.input_size, 1), ("stem.filters", spec.stem.filters, 1),
            ("stem.kernel_size", spec.stem.kernel_size, 1), ("stem.strides", spec.stem.strides, 1),
            ("head.hidden", spec.head.hidden, 0)]
    for i, stage in enumerate(spec.stages):
        ints.append((f"stages[{i}].blur_size", stage.blur_size, 1))
        if stage.downsample_filters is not None:
            ints.append((f"stages[{i}].downsample_filters", stage.downsample_filters, 1))
        for j, column in enumerate(stage.columns):
            for k, block in enumerate(column.blocks):
                where = f"stages[{i}].columns[{j}].blocks[{k}]"
                ints.append((f"{where}.kernel_size", block.kernel_size, 1))
                if block.filters is not None:
                    ints.append((f"{where}.filters", block.filters, 1))
    for path, value, minimum in ints:
        if not _is_int(value, minimum):
            yield path, "a positive integer" if minimum else "an integer >= 0", value
    if not (_is_number(spec.width) and spec.width > 0):
        yield "width", "a positive number", spec.width
    if not (_is_number(spec.head.dropout) and 0 <= spec.head.dropout < 1):
        yield "head.dropout", "a number in [0, 1)", spec.head.dropout


def check_structure(spec: ModelSpec) -> None:
    """Checks that a spec can be built at all (types, names, column wiring); raises ValueError."""
    def fail(msg):
        raise ValueError(f"Invalid spec '{spec.name}': {msg}")

    for path, expected, value in _number_problems(spec):
        fail(f"{path}: expected {expected}, got {value!r}")

    if spec.attention not in ATTENTIONS:
        fail(f"`attention` must be one of {ATTENTIONS}. Received: attention={spec.attention!r}")
    if spec.plain_downsample not in PLAIN_DOWNSAMPLES:
        fail(f"`plain_downsample` must be one of {PLAIN_DOWNSAMPLES}. Received: {spec.plain_downsample!r}")
    if not spec.width > 0:
        fail(f"`width` must be positive. Received: width={spec.width!r}")
    if not spec.stages:
        fail("it has no stages.")
    if spec.input_size < 1:
        fail(f"`input_size` must be positive. Received: {spec.input_size}")
    if min(spec.stem.strides, spec.stem.filters, spec.stem.kernel_size) < 1:
        fail(f"stem filters, kernel_size and strides must be positive. Received: {spec.stem}")
    for i, stage in enumerate(spec.stages, 1):
        if not stage.columns:
            fail(f"stage{i} has no columns.")
        if stage.merge not in MERGES:
            fail(f"stage{i}.merge must be one of {MERGES}. Received: {stage.merge!r}")
        if stage.downsample not in (None,) + DOWNSAMPLES:
            fail(f"stage{i}.downsample must be None or one of {DOWNSAMPLES}. Received: {stage.downsample!r}")
        if stage.downsample == "conv" and not stage.downsample_filters:
            fail(f"stage{i}.downsample='conv' needs `downsample_filters`.")
        if not 1 <= stage.blur_size <= 7:
            fail(f"stage{i}.blur_size must be 1–7. Received: {stage.blur_size}")
        for j, column in enumerate(stage.columns, 1):
            if not column.blocks:
                fail(f"stage{i} column {j} has no blocks.")
            for k, block in enumerate(column.blocks, 1):
                where = f"stage{i} column {j} block {k}"
                if block.kind not in BLOCK_KINDS:
                    fail(f"{where}: kind must be one of {BLOCK_KINDS}. Received: {block.kind!r}")
                if block.kind in ("conv", "dwsep", "ir", "fused") and not block.filters:
                    fail(f"{where}: a {block.kind!r} block needs `filters`.")
                if (block.kind in ("ir", "fused")) != (block.expansion is not None):
                    fail(f"{where}: `expansion` belongs to 'ir' and 'fused' blocks, which need it. Received: "
                         f"kind={block.kind!r}, expansion={block.expansion!r}")
                if block.expansion is not None and not (_is_number(block.expansion) and block.expansion >= 1):
                    fail(f"{where}: `expansion` must be a number >= 1. Received: {block.expansion!r}")
                if block.kind == "dcac" and block.filters:
                    fail(f"{where}: a DC-AC block keeps its input width; leave `filters` unset.")
                if block.kernel_size < 1:
                    fail(f"{where}: kernel_size must be positive. Received: {block.kernel_size}")
                if block.kind == "dcac":
                    d = block.dcac or DCACSpec()
                    try:
                        check_condenser_args(d.condense_factor, d.embed_channels, d.embed_ratio, d.kernel_size,
                                             d.expansion)
                    except ValueError as error:
                        fail(f"{where}: {error}")
        if stage.merge == "none":
            if i == len(spec.stages):
                fail("the last stage must merge its columns ('concat' or 'add'), not 'none'.")
            if len(spec.stages[i].columns) != len(stage.columns):
                fail(f"stage{i} passes {len(stage.columns)} independent columns on (merge='none'), so stage{i + 1} "
                     f"needs {len(stage.columns)} columns too. Received: {len(spec.stages[i].columns)}")
        if stage.merge == "add":
            widths = {column_width(c) for c in stage.columns}
            if None in widths or len(widths) != 1:
                fail(f"stage{i} merges by 'add', so its columns must end at the same width, set by a conv/dwsep block.")


def column_width(column: ColumnSpec) -> Optional[int]:
    widths = [b.filters for b in column.blocks if b.filters]
    return widths[-1] if widths else None


# --------------------------------------------------------------------------------------------------------------------
# Variants


def _dwsep(filters, kernel_size=3):
    return BlockSpec("dwsep", filters=filters, kernel_size=kernel_size)


def _dcac(condense_factor=2, embed_ratio=0.25):
    return BlockSpec("dcac", dcac=DCACSpec(condense_factor=condense_factor, embed_ratio=embed_ratio))


def _columns(n, *blocks):
    return tuple(ColumnSpec(tuple(blocks)) for _ in range(n))


def _ir(filters, expansion=4.0):
    return BlockSpec("ir", filters=filters, expansion=expansion)


# The family (issue 15; named 2026-12-02 from the accuracy study, benchmarks/results/study/study.md). What the profile
# of the first design (`base_v0` below; benchmarks/results/latency_profile.md, 2026-12-01) showed: its stem and 56×56
# / 28×28 stages took 66 % of the int8 time at 9–25 % of this CPU's peak int8 MAC rate (depthwise convolutions,
# condensing and concatenations move memory, not MACs), its 14×14 and 7×7 stages ran at about half the peak, and 75 %
# of its parameters sat in the classifier head. So the family keeps two columns early (the paper's columnar rule),
# puts its capacity into 14×14 and 7×7 inverted residuals, and drops the head's hidden layer (global pooling →
# classes), so that the parameters sit in the backbone.
#
# Measured by the study (benchmarks/results/study/study.md, front complete 2026-12-02): flowers160 test top-1 at 96 px,
# 30 epochs, mean ± std of 3 seeds; latency on LiteRT/XNNPACK, best format, 224 px, 1000 classes, 1 thread, in two runs
# on two CPUs. On a 2-core AMD EPYC family 26 with int8 dot products (AVX512-VNNI; 2026-12-02 14:51,
# benchmarks/results/study/archive/) the AttendNeXt front reaches MobileNetV3-Large's accuracy 3.80× faster than it; on
# an AMD EPYC family 25 model 1 with AVX2 only (21:51, benchmarks/results/study/archive/), where int8 is barely faster
# than float32 and MobileNetV3 runs in float32 either way, 1.80×; with `small_v2` added, in three more AVX2 runs
# (2026-12-03 04:31, 07:15 and 09:31, benchmarks/results/study/archive/), 2.35×, 2.22× and 2.21× by the 10th percentile
# the study reports on that shared CPU (2.58×, 2.14×, 2.33× by the median;
# benchmarks/results/study/latency_stability.md); with `tiny` added, 3.05× and 3.20× (13:11, archived, and 13:31,
# benchmarks/results/study/latency.md), a verdict that rests on accuracies inside the proxy's noise (see `tiny`). On
# both CPUs it lies above the MobileNetV2 front everywhere both have a model. On a 2-core Intel Xeon with AVX512-VNNI
# (2026-12-03 18:50 and 19:03, archived, and 19:50, benchmarks/results/study/latency.md; the last two also time int8
# with a float32 stem) 3.57×, 4.69× and 4.48× (3.89× and 3.67× without the float32 stem). The ms below are from the
# AMD VNNI run unless they say otherwise ("AVX2 run": 2026-12-02; "Intel VNNI": 2026-12-03 19:03, archived, 10th
# percentile; at 19:50 the registered AttendNeXt models ran 0.00–0.05 ms faster, MobileNetV3-Large 0.30).
#
# `base`, paper scale (the study's `large` until 2026-12-02). At 224 px with 1000 classes (`attendnext profile --arch
# attendnext_base`): 3.26 M parameters (MobileNetV3-Large 5.4 M; paper: ≤ 4.0 M) and 204 M MACs. Where they go:
# stem 0.5 k / 5.4 M MACs, stage 1 (56×56) 4.4 k / 4.2 M, stage 2 (28×28) 41 k / 26.3 M, stage 3 (14×14) 471 k /
# 84.9 M, stage 4 (7×7) 1.71 M / 82.5 M, head 1.03 M / 1.0 M: 68 % of the parameters and 83 % of the MACs in the
# 14×14 and 7×7 stages, 69 % of the parameters in the backbone. int8 runs at 0.43× its float32 latency with VNNI
# (1.15 vs 2.67 ms, 1 thread, benchmarks/results/study/archive/; Intel VNNI by the median 0.60×, and 0.52× with the
# float32 stem of int8-ptq-float-stem: 1.93 vs 3.71 ms) and 0.95× with AVX2 only (7.62 vs 8.01 ms,
# benchmarks/results/latency_profile_avx2.md says why); with VNNI its 14×14 and 7×7 stages take 66 % of the int8
# time at 42 % and 73 % of this CPU's peak int8 MAC rate (benchmarks/results/latency_profile.md, 2026-12-02).
# Proxy accuracy 83.0 % ± 0.4 against MobileNetV3-Large's 82.2 % ± 0.8 (a tie: paired bootstrap 95 % [−1.6, +3.3]
# points) at 1.15 against 3.43 ms: the top of the front, ≥ 2.99× faster than the MobileNetV3 front at its accuracy
# (AVX2 run: 7.62 against 9.79 ms, ≥ 1.28×).
BASE = ModelSpec(
    name="base",
    input_size=224,
    description="Paper scale: 3.3 M parameters (1.0 M in the head), 204 M MACs at 224 px; one XNNPACK partition in "
                "int8.",
    stem=StemSpec(filters=16, kernel_size=3, strides=2),
    stages=(
        StageSpec(columns=_columns(2, _dwsep(24), _dcac(condense_factor=4)), downsample="max", merge="none"),
        StageSpec(columns=_columns(2, _ir(40, 3.0), _ir(40, 3.0), _dcac()), downsample="max", merge="concat"),
        StageSpec(columns=_columns(2, _ir(96), _ir(96), _dcac(), _ir(96)), downsample="blur", merge="concat"),
        StageSpec(columns=_columns(1, _ir(256), _ir(256), _ir(256), _dwsep(1024)), downsample="blur",
                  merge="concat"),
    ),
    head=HeadSpec(hidden=0, dropout=0.2),
)

# `medium` (since 2026-12-02 evening): base's 14×14 and 7×7 stages, which hold its accuracy, with the time taken out
# where the profile found it spent for little: no DC-AC at 56×56 (the no-attention ablation on `small` tied on
# accuracy and saved 20 % of its time; DC-AC stays in stages 2 and 3, the paper's rule), one inverted residual at
# 28×28 instead of two, and stage 3's inverted residuals expanding ×3 instead of ×4 (stage 3 was 42 % of base's int8
# time). At 224 px with 1000 classes: 3.12 M parameters and 166 M MACs: stem 0.5 k / 5.4 M MACs, stage 1 1.4 k /
# 3.8 M, stage 2 18 k / 9.5 M, stage 3 360 k / 64.0 M, stage 4 1.71 M / 82.5 M, head 1.03 M / 1.0 M (67 % of the
# parameters in the backbone). Proxy accuracy 82.5 % ± 1.1 (seeds 83.4 / 82.8 / 81.2; MobileNetV3-Large 82.2 % ±
# 0.8), trained 2026-12-02 20:47–21:43 under the study's protocol (benchmarks/results/study/study.md). Its latency
# comes from the study's second latency run (2026-12-02 21:51, a 2-core AMD EPYC family 25 model 1 with AVX2 only, no
# VNNI): 6.29 ms int8 against base's 7.62 and base_v0's 4.26, on the front between them; ≥ 1.56× faster than the
# MobileNetV3 front at its accuracy there, and on Ethos-U55-128 (Vela) 11.11 ms, ≥ 1.87× faster than it. Intel VNNI:
# 1.38 ms (int8, float32 stem) against base's 1.81 and MobileNetV3-Large's 4.90.
# The first `medium` (base's layout narrower: 2.06 M parameters, 122 M MACs; 80.7 % ± 1.6 at 0.86 ms on the family-26
# EPYC) was just off the front: narrowing the 14×14 and 7×7 stages lost more accuracy than it saved time.
MEDIUM = BASE.replace(
    name="medium",
    description="base's 14×14 and 7×7 stages, lighter early stages: 3.1 M parameters, 166 M MACs at 224 px.",
    stages=(
        StageSpec(columns=_columns(2, _dwsep(24)), downsample="max", merge="none"),
        StageSpec(columns=_columns(2, _ir(40, 3.0), _dcac()), downsample="max", merge="concat"),
        StageSpec(columns=_columns(2, _ir(96, 3.0), _ir(96, 3.0), _dcac(), _ir(96, 3.0)), downsample="blur",
                  merge="concat"),
        BASE.stages[3],
    ),
)

# `small` (the study's `compact` until 2026-12-02): MobileNetV3-Small's scale. 1.24 M parameters (0.64 M in the 1000-
# class head), 54 M MACs at 224 px: stage 3 (14×14) 106 k / 17.7 M, stage 4 (7×7) 480 k / 22.9 M. The fastest AttendNeXt
# at 224 px in the first two latency runs (`small_v2` and `tiny` are faster since) and the spec the study's ablations
# change. Proxy accuracy 80.3 % ± 2.8 (seeds 83.4 / 79.6 / 77.9: the noisiest AttendNeXt) at 0.53 ms, against
# MobileNetV3-Small's 76.5 % ± 1.1 at 1.03 ms: on the front, 3.14× faster than the MobileNetV3 front at its accuracy
# (AVX2 run: 2.69 ms, 1.84×). Its ablations (benchmarks/RESULTS.md, 3 seeds per arm): DC-AC without its residual loses
# 5.5 points; DC-AC, the original attention condenser and no attention tie on accuracy (DC-AC is 20 % of its int8 time),
# one column ties two; AADS ties strided max-pooling on accuracy and keeps more test images' class under a shift (0.924
# against 0.891).
SMALL = BASE.replace(
    name="small",
    description="MobileNetV3-Small scale: 1.2 M parameters (0.6 M in the head), 54 M MACs at 224 px.",
    stages=(
        StageSpec(columns=_columns(2, _dwsep(16), _dcac(condense_factor=4)), downsample="max", merge="none"),
        StageSpec(columns=_columns(2, _ir(24, 3.0), _dcac()), downsample="max", merge="concat"),
        StageSpec(columns=_columns(2, _ir(64, 3.0), _ir(64, 3.0), _dcac()), downsample="blur", merge="concat"),
        StageSpec(columns=_columns(1, _ir(160), _ir(160), _dwsep(640)), downsample="blur", merge="concat"),
    ),
)


# `small_v2` (2026-12-03): `small` without its DC-AC at 56×56, as `medium` dropped it, for CPUs without int8 dot
# products (AVX2; the paper's Cortex-A72), where every AttendNeXt runs fastest in float32 and the no-attention ablation
# had tied on accuracy. DC-AC stays in stages 2 and 3 (the paper's rule). Same size as `small` (1.24 M parameters, 54 M
# MACs at 224 px; 0.60 M and 9.8 M at 96 px with 5 classes). Trained under the study's protocol (2026-12-03,
# benchmarks/results/study/study.md): 81.8 % ± 0.6 (seeds 82.3 / 81.2 / 82.0) against `small`'s 80.3 % ± 2.8 (a tie,
# with a third of the spread). On the study's AVX2 CPU (AMD EPYC family 25 model 1) it looked faster by the median (1.99
# against 2.15 ms at 04:31, 2.41 against 2.68 at 07:15; float32, 1 thread); by the 10th percentile, the report's
# statistic since 2026-12-03 09:31, it ties `small` in time (speed-ups over MobileNetV3-Large 4.16 / 3.75 / 3.52 against
# 3.93 / 3.71 / 3.54 in three runs, benchmarks/results/study/latency_stability.md): as fast, 1.5 points more accurate,
# it dominates `base_v0` and `small_v0` there (`small` stays as the spec the ablations change) and is 3.10× faster than
# the MobileNetV3 front at its accuracy (09:31). Intel VNNI: 0.92 ms (int8, float32 stem) against `small`'s 1.02. A
# heavier sibling trained in the same run (stage 3 at width 80 with a third inverted residual: 1.42 M parameters, 80 M
# MACs, 2.83 ms at 09:31) reached 81.6 % ± 0.4, no more accurate, so it was not registered
# (benchmarks/results/study/specs/small_plus_candidate.json). Nor were two siblings with a heavier 7×7 stage (2026-12-03
# morning; +17–22 M MACs, as `base` and `medium` hold their parameters there): two inverted residuals at width 224
# reached 81.3 % ± 1.6 at 2.63 ms, three at width 192 80.7 % ± 0.8 at 2.82 ms (09:31)
# (specs/small_v2_{wide,deep}_candidate.json): layouts of ≤ 80 M MACs have all landed at 80.3–81.8 % on this proxy (and
# `tiny`, 38.5 M, at 82.0 %).
SMALL_V2 = SMALL.replace(
    name="small_v2",
    description="small without DC-AC at 56×56: 1.2 M parameters, 54 M MACs at 224 px; as fast as small on CPUs "
                "without int8 dot products, more steadily accurate.",
    stages=(StageSpec(columns=_columns(2, _dwsep(16)), downsample="max", merge="none"),) + SMALL.stages[1:],
)

# `tiny` (2026-12-03 afternoon): `small_v2` at width 0.75, MobileNet's alpha (the stem and the 56×56 stage stay at 16
# channels: 16 × 0.75 rounds up to the nearest multiple of 8), for the MobileNetV3-Small end of the front, where the
# AttendNeXt family had nothing below `small`'s 54 M MACs and its speed-up at MobileNetV3-Small's accuracy was only a
# bound (≥ 1.08–1.29× in three AVX2 runs). At 224 px with 1000 classes: 0.84 M parameters (0.48 M in the head) and 38.5
# M MACs, between MobileNetV3-Small 0.75 (2.05 M, 43.6 M MACs) and `micro`; 0.36 M parameters and 7.0 M MACs at 96 px
# with 5 classes. Designed and timed once for size before any training. Trained under the study's protocol (2026-12-03
# 12:39–13:10, benchmarks/results/study/study.md): 82.0 % ± 2.2 (seeds 82.0 / 79.8 / 84.2; selection half 82.2 % against
# `small_v2`'s 82.9 %), a tie with `small_v2` (81.8 % ± 0.6) and with MobileNetV3-Large (82.2 % ± 0.8; paired bootstrap
# in benchmarks/RESULTS.md): on 5 classes at 96 px the proxy no longer tells 38 M MACs from 217 M, which ImageNet would
# (MobileNetV3-Small 0.75, 44 M MACs, 65.4 % against MobileNetV3-Large's 75.2 % top-1 in its paper). On the study's AVX2
# CPU (two runs, 2026-12-03 13:11 and 13:31, 10th percentile, float32, 1 thread) 1.67 and 1.49 ms against `small_v2`'s
# 2.11 and 1.95 and MobileNetV3-Small's 2.66 and 2.69: with it the AttendNeXt front (between `tiny` and `medium`)
# reaches MobileNetV3-Large's accuracy 3.05× and 3.20× faster than it, and MobileNetV3-Small's ≥ 1.59× and ≥ 1.81×. The
# most shift-consistent model of the study (0.947). Ethos-U55-128 (Vela): 5.28 ms against `small_v2`'s 6.13. Intel VNNI:
# 0.87 ms in int8 with the float32 stem (0.97 in float32 at 18:50, before that format), the fastest registered
# AttendNeXt at 224 px there too. On an emulated Cortex-A72 (the paper's CPU; instructions, not time:
# benchmarks/results/arm_cpu.md and arm_cpu_profile.md) 22.19 M instructions against MobileNetV3-Large's 87.04 M, of
# which the int8 stem (3 → 16 channels, 3×3 stride 2, 14 % of the MACs) takes 6.82 M, 31 %, at 0.79 MACs per
# instruction: XNNPACK runs that layer far better in float32 (3.95 M) or with SDOT (A76: 1.85 M). The stem is where the
# A72 count said the next gain was: with it in float32 (int8-ptq-float-stem) `tiny` takes 19.77 M instructions
# (benchmarks/results/arm_cpu.md, 2026-12-03 19:15).
TINY = SMALL_V2.replace(
    name="tiny",
    width=0.75,
    description="small_v2 at width 0.75: 0.84 M parameters, 38.5 M MACs at 224 px.",
)

# The first design (2026-11), `base` and `small` until 2026-12-02, kept under these names for the results that
# measured them and because `micro` is built from it: depthwise-separable blocks throughout, three columns early, and
# a 1280-unit hidden head layer that holds 75 % of its 2.59 M parameters (1000 classes). Both are on the AttendNeXt
# front: base_v0 81.7 % ± 0.3 at 0.79 ms, small_v0 80.9 % ± 0.8 at 0.72 ms (3.65× and 2.95× faster than the
# MobileNetV3 front at their accuracy).
BASE_V0 = ModelSpec(
    name="base_v0",
    input_size=224,
    description="The first base (until 2026-12-02): 2.6 M parameters, 75 % of them in the classifier head.",
    stem=StemSpec(filters=16, kernel_size=3, strides=2),
    stages=(
        # stride 4, 56×56: three independent columns, strong early condensation (DC-AC on a 14×14 grid).
        StageSpec(columns=_columns(3, _dwsep(24), _dcac(condense_factor=4)), downsample="max", merge="none"),
        # stride 8, 28×28: the columns go on independently, then concatenate.
        StageSpec(columns=_columns(3, _dwsep(48), _dwsep(48), _dcac(condense_factor=2)), downsample="max",
                  merge="concat"),
        # stride 16, 14×14: two columns read the joined features and interact through the concat.
        StageSpec(columns=_columns(2, _dwsep(128), _dwsep(128), _dcac(condense_factor=2), _dwsep(128)),
                  downsample="blur", merge="concat"),
        # stride 32, 7×7: one column, full interaction.
        StageSpec(columns=_columns(1, _dwsep(384), _dwsep(384), _dwsep(512)), downsample="blur", merge="concat"),
    ),
    head=HeadSpec(hidden=1280, dropout=0.2),
)

SMALL_V0 = BASE_V0.replace(
    name="small_v0",
    input_size=160,
    width=0.75,
    head=HeadSpec(hidden=1024, dropout=0.2),
    description="The first small (until 2026-12-02): base_v0 at 160×160, width 0.75.",
)

MICRO = BASE_V0.replace(
    name="micro",
    input_size=96,
    width=0.3,
    # The 1000-class classifier dominates flash at this size, so the last stage stays at 384 (×0.3 → 112). Measured
    # (benchmarks/results/micro_budget.md, 2026-12-01; int8, 1000 classes): 180 k parameters, 178 KiB of weights in
    # a 233 KiB C array (goal ≤ 256 KiB; names and per-channel zero points dropped by micro.strip_for_micro, the
    # .tflite is 310 KiB) and a 113 KiB TFLM arena (goal ≤ 128 KiB; 54 KiB of activations, 59 KiB of TFLM's
    # per-tensor and per-op structs). Proxy accuracy 76.8 % ± 0.9 at its own 96 px (0.10 ms; not compared with the
    # 224-px peers).
    stages=BASE_V0.stages[:3] + (StageSpec(columns=_columns(1, _dwsep(384), _dwsep(384), _dwsep(384)),
                                        downsample="blur", merge="concat"),),
    head=HeadSpec(hidden=0, dropout=0.1),
    description="TensorFlow Lite Micro scale: 96×96; int8 with 1000 classes: 233 KiB flash, 113 KiB tensor arena.",
)

VARIANTS = {spec.name: spec for spec in (BASE, SMALL, MICRO, MEDIUM, SMALL_V2, TINY, BASE_V0, SMALL_V0)}
"""The family first (base, small, micro, medium, small_v2, tiny), then the first design's base and small."""


def list_variants() -> list:
    return list(VARIANTS)


def get_spec(variant) -> ModelSpec:
    if isinstance(variant, ModelSpec):
        return variant
    if variant not in VARIANTS:
        raise ValueError(f"Unknown AttendNeXt variant. Expected one of {list(VARIANTS)}. Received: variant={variant!r}")
    return VARIANTS[variant]


def summarize_spec(spec: ModelSpec) -> str:
    """A human-readable layout of a spec, one line per stage."""
    spec = get_spec(spec)
    lines = [f"AttendNeXt '{spec.name}': input {spec.input_size}×{spec.input_size}, width ×{spec.width}, "
             f"attention={spec.attention}, antialias={spec.antialias}",
             f"  stem      conv{spec.stem.kernel_size}×{spec.stem.kernel_size}/{spec.stem.strides} → "
             f"{scaled(spec.stem.filters, spec.width)}"]
    for i, (stage, stride) in enumerate(zip(spec.stages, spec.strides), 1):
        down = ("no downsample" if not stage.downsample else f"AADS-{stage.downsample}(blur{stage.blur_size})/2"
                if spec.antialias else f"plain-{spec.plain_downsample}/2")
        cols = []
        for column in stage.columns:
            parts = []
            for b in column.blocks:
                if b.kind == "dcac":
                    d = b.dcac or DCACSpec()
                    parts.append(f"{spec.attention.upper() if spec.attention != 'none' else 'skip'}(s={d.condense_factor})")
                else:
                    expansion = f"(×{b.expansion:g})" if b.expansion is not None else ""
                    parts.append(f"{b.kind}{b.kernel_size}{expansion}→{scaled(b.filters, spec.width)}")
            cols.append(" → ".join(parts))
        lines.append(f"  stage{i}    stride {stride:>2}, {down}, {len(stage.columns)} column(s) ×[{cols[0]}]"
                     + ("" if len(set(cols)) == 1 else f" (+ {len(set(cols)) - 1} other)") + f", merge={stage.merge}")
    head = spec.head
    lines.append("  head      global avg pool → "
                 + (f"dense {scaled(head.hidden, spec.width)} → " if head.hidden else "")
                 + f"dropout {head.dropout} → classes")
    return "\n".join(lines)

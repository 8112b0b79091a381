"""Typed configuration: one dataclass per mode, their defaults (here and nowhere else), and YAML/JSON loading.

A run is described the way STM32 model-zoo users know, as one file with a section per stage; every command reads the
sections it needs, and `attendnext run --config FILE` runs the chain its `steps` name:

    steps: [train, qat, export, evaluate, micro, benchmark]
    out_dir: runs/flowers
    data: {source: ../shared/data/flowers160}
    model: {name: attendnext_micro, input_size: 96}
    train: {epochs: 60, learning_rate: 0.003}
    qat: {epochs: 3}

    config = load_config("flowers.yaml")            # RunConfig; a bad key or value is one line naming its path:
                                                    # "train.learning_rate: expected a number, got 'fast'"
    config.train.epochs                             # 60

Every field is checked when a config is made, from a file or in Python (`TrainConfig(epochs="3")` fails too): types
(an int is not a bool, a float must be finite), choices and ranges. Example files ship in `attendnext_keras/configs/`.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import os
import typing
from typing import Literal, Optional

from attendnext_keras import _io


class ConfigError(ValueError):
    """A config value or key is wrong; the message starts with the key's path (`train.learning_rate: ...`)."""


# --------------------------------------------------------------------------------------------------------------------
# Checking values against their declared types


def _describe(value) -> str:
    return repr(value) if isinstance(value, (str, int, float, bool, type(None))) else f"a {type(value).__name__}"


def _check(value, hint, path):
    """`value` converted to `hint` (lists become tuples, mappings become dataclasses) or ConfigError at `path`."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union:
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _check(value, inner, path)
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{path}: expected one of {', '.join(repr(a) for a in args)}, got {_describe(value)}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: expected a list, got {_describe(value)}")
        item = args[0] if args else typing.Any
        return tuple(_check(v, item, f"{path}[{i}]") for i, v in enumerate(value))
    if dataclasses.is_dataclass(hint):
        return value if isinstance(value, hint) else from_dict(hint, value, path)
    return _check_scalar(value, hint, path)


def _check_scalar(value, hint, path):
    if hint is typing.Any:
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true or false, got {_describe(value)}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: expected an integer, got {_describe(value)}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: expected a number, got {_describe(value)}")
        if not math.isfinite(value):
            raise ConfigError(f"{path}: expected a finite number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected a string, got {_describe(value)}")
        return value
    raise TypeError(f"{path}: unsupported config type {hint!r}")  # a programming error, not a user's


def _hints(cls) -> dict:
    return typing.get_type_hints(cls)


def check_fields(obj, path: str = "") -> None:
    """Checks (and normalises: lists → tuples, ints → floats) every field of a config dataclass against its type."""
    hints = _hints(type(obj))
    for field in dataclasses.fields(obj):
        where = f"{path}.{field.name}" if path else field.name
        object.__setattr__(obj, field.name, _check(getattr(obj, field.name), hints[field.name], where))


def require(condition: bool, field: str, message: str) -> None:
    """A range check inside `__post_init__`: ConfigError `field: message` unless `condition`."""
    if not condition:
        raise ConfigError(f"{field}: {message}")


def from_dict(cls, values, path: str = ""):
    """An instance of the config dataclass `cls` from plain values (parsed YAML/JSON): unknown keys, wrong types and
    out-of-range values raise ConfigError naming the key's full path; missing keys take the defaults."""
    where = path or cls.__name__
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: expected a mapping of settings, got {_describe(values)}")
    names = [f.name for f in dataclasses.fields(cls)]
    for key in values:
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else f"; known keys: {', '.join(names)}"
            raise ConfigError(f"{path + '.' if path else ''}{key}: unknown key{hint}")
    hints = _hints(cls)
    converted = {k: _check(v, hints[k], f"{path}.{k}" if path else k) for k, v in values.items()}
    try:
        return cls(**converted)
    except ConfigError as error:
        raise ConfigError(f"{path}.{error}" if path else str(error)) from None


def to_dict(config) -> dict:
    """Plain values (tuples as lists) for YAML/JSON; `from_dict` gives the config back."""
    def plain(value):
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        return value

    return plain(dataclasses.asdict(config))


class _Config:
    """Base of the config dataclasses: checked on creation, `from_dict`/`to_dict`, `replace`."""

    def __post_init__(self):
        check_fields(self)
        self.validate()

    def validate(self) -> None:
        """Range and consistency checks beyond the types (ConfigError naming the field)."""

    @classmethod
    def from_dict(cls, values, path: str = ""):
        return from_dict(cls, values, path)

    def to_dict(self) -> dict:
        return to_dict(self)

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)


# --------------------------------------------------------------------------------------------------------------------
# The modes


@dataclasses.dataclass
class DataConfig(_Config):
    """Where images come from: "default" (photographs embedded in the package), an image folder with
    <split>/<class>/ sub-folders, or "tfds:NAME" for a TensorFlow Datasets name."""

    source: str = "default"
    train_split: str = "train"
    val_split: str = "val"
    data_dir: Optional[str] = None  # TensorFlow Datasets' data_dir
    manual_dir: Optional[str] = None  # TFDS's manual_dir: archives of data sets that cannot be downloaded (ImageNet)
    crop_scale_min: float = 0.25  # random-resized-crop area floor; ImageNet's 0.08 crops small photos to mush
    mixup: float = 0.0  # Beta parameter of mixup (0 disables; 0.2 is common)

    def validate(self):
        require(0 < self.crop_scale_min <= 1, "crop_scale_min", f"must be in (0, 1], got {self.crop_scale_min}")
        require(self.mixup >= 0, "mixup", f"must be >= 0, got {self.mixup}")


@dataclasses.dataclass
class ModelConfig(_Config):
    """Which network: a name from `attendnext_keras.list_models()` or the path of a spec JSON file."""

    name: str = "attendnext_micro"
    input_size: Optional[int] = None  # square input in pixels; None: the model's own
    alpha: Optional[float] = None  # AttendNeXt width multiplier on top of the variant's width
    # A preset (name from `list_presets()` or a preset folder) to start from: its architecture and weights replace
    # `name` and `alpha`; its classifier is kept for the same classes, replaced by a new one otherwise.
    weights: Optional[str] = None

    def validate(self):
        require(self.weights is None or (isinstance(self.weights, str) and self.weights.strip() != ""), "weights",
                f"must be a preset name or folder, got {self.weights!r}")
        require(self.input_size is None or self.input_size >= 1, "input_size",
                f"must be a positive number of pixels, got {self.input_size}")
        require(self.alpha is None or self.alpha > 0, "alpha", f"must be positive, got {self.alpha}")


OPTIMIZERS = ("adamw", "sgd")
PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")


@dataclasses.dataclass
class TrainConfig(_Config):
    """The float training recipe (AdamW or SGD, cosine schedule with warm-up, label smoothing)."""

    epochs: int = 30
    batch_size: int = 32  # global batch: tf.distribute splits it across replicas
    optimizer: Literal["adamw", "sgd"] = "adamw"
    learning_rate: float = 3e-3  # peak, reached after warm-up; cosine decay to min_learning_rate
    min_learning_rate: float = 0.0
    # Linear scaling (Goyal et al. 2017): with a reference batch, learning_rate (and min_learning_rate) are per that
    # batch and scale by batch_size / reference_batch_size, so one recipe serves 8 GPUs and a TPU pod alike.
    reference_batch_size: Optional[int] = None
    warmup_epochs: Optional[float] = None  # None: 1 epoch, or none for a 1-epoch run; set values must be < epochs
    weight_decay: float = 0.05
    momentum: float = 0.9  # SGD only
    label_smoothing: float = 0.1
    ema_momentum: Optional[float] = None  # e.g. 0.999: evaluate and save the moving average of the weights
    freeze_batchnorm: bool = False  # moving statistics only: what QAT fine-tuning wants once ranges settle
    # BatchNorm statistics must settle within a short run: Keras' 0.99 left validation at chance after 30 short
    # epochs on the embedded photographs (28 % → 58 % with 0.9).
    bn_momentum: Optional[float] = 0.9
    mixed_precision: Literal["auto", "float32", "mixed_float16", "mixed_bfloat16"] = "auto"  # auto: fp16 on GPU, bf16 on TPU
    seed: Optional[int] = 0

    def validate(self):
        require(self.epochs >= 1, "epochs", f"must be at least 1, got {self.epochs}")
        require(self.batch_size >= 1, "batch_size", f"must be at least 1, got {self.batch_size}")
        require(self.learning_rate > 0, "learning_rate", f"must be positive, got {self.learning_rate}")
        require(0 <= self.min_learning_rate <= self.learning_rate, "min_learning_rate",
                f"must be in [0, learning_rate={self.learning_rate}], got {self.min_learning_rate}")
        require(self.warmup_epochs is None or 0 <= self.warmup_epochs < self.epochs or self.warmup_epochs == 0,
                "warmup_epochs", f"must be >= 0 and below epochs={self.epochs}, got {self.warmup_epochs}")
        require(self.reference_batch_size is None or self.reference_batch_size >= 1, "reference_batch_size",
                f"must be at least 1 or null, got {self.reference_batch_size}")
        require(self.weight_decay >= 0, "weight_decay", f"must be >= 0, got {self.weight_decay}")
        require(0 <= self.momentum < 1, "momentum", f"must be in [0, 1), got {self.momentum}")
        require(0 <= self.label_smoothing < 1, "label_smoothing", f"must be in [0, 1), got {self.label_smoothing}")
        require(self.ema_momentum is None or 0 < self.ema_momentum < 1, "ema_momentum",
                f"must be in (0, 1) or null, got {self.ema_momentum}")
        require(self.bn_momentum is None or 0 <= self.bn_momentum < 1, "bn_momentum",
                f"must be in [0, 1) or null, got {self.bn_momentum}")

    @property
    def lr_scale(self) -> float:
        """The factor on learning_rate and min_learning_rate: batch_size / reference_batch_size, or 1."""
        return self.batch_size / self.reference_batch_size if self.reference_batch_size else 1.0

    @property
    def warmup(self) -> float:
        """Warm-up epochs in effect (`warmup_epochs`, or its default: 1 epoch when there are more than one)."""
        if self.warmup_epochs is not None:
            return self.warmup_epochs
        return 1.0 if self.epochs > 1 else 0.0

    @classmethod
    def qat(cls, **overrides) -> "QATConfig":
        """The quantization-aware fine-tuning recipe (`QATConfig`), with `overrides`."""
        return QATConfig(**overrides)

    @classmethod
    def from_file(cls, path, section: Optional[str] = None):
        """This recipe from a YAML/JSON file: its `section` (e.g. "train") or, without one, the whole file."""
        values = load_mapping(path)
        where = section or ""
        if section is not None:
            values = values.get(section, {}) if isinstance(values, dict) else values
        try:
            return from_dict(cls, values, where)
        except ConfigError as error:
            raise ConfigError(f"{path}: {error}") from None


@dataclasses.dataclass
class QATConfig(TrainConfig):
    """Quantization-aware fine-tuning from float weights: a few epochs at a learning rate ~30× below float training,
    no warm-up (the weights are already good) and BatchNorm statistics frozen, so the folded weights and the
    fake-quant ranges stop moving against each other."""

    epochs: int = 3
    learning_rate: float = 1e-4
    warmup_epochs: Optional[float] = 0.0
    weight_decay: float = 0.0
    freeze_batchnorm: bool = True
    mixed_precision: Literal["auto", "float32", "mixed_float16", "mixed_bfloat16"] = "float32"


MODES = ("float32", "float16", "dynamic", "int8", "int8-ptq", "int8-ptq-float-stem")
"""TFLite conversion modes (`deploy.conversion`)."""
CALIBRATED_MODES = ("int8-ptq", "int8-ptq-float-stem")
"""Modes that calibrate activation ranges on representative images."""
FULLY_INT8_MODES = ("int8", "int8-ptq")
"""Modes whose every op computes in int8: what microcontrollers (TFLite Micro) and Ethos-U NPUs run."""


@dataclasses.dataclass
class ExportConfig(_Config):
    """TFLite conversion: which formats, int8 I/O, calibration for post-training quantization, strictness."""

    modes: tuple[Literal["float32", "float16", "dynamic", "int8", "int8-ptq", "int8-ptq-float-stem"], ...] = ("float32", "int8")
    int8_io: bool = True  # int8 input/output tensors for int8 models (what microcontrollers want)
    calibration_images: int = 200  # images for int8-ptq(-float-stem) calibration
    strict: bool = False  # refuse (write nothing) when the report finds float ops, several partitions, TFLM gaps
    target: Optional[str] = None  # None/"xnnpack": LiteRT's CPU; "ethos-u55-128" etc.: Vela's NPU file (int8 modes)
    embed_metadata: bool = True  # the standard TFLite metadata and labels.txt inside the .tflite

    def validate(self):
        require(len(self.modes) >= 1, "modes", "needs at least one format")
        require(self.calibration_images >= 1, "calibration_images", f"must be at least 1, got {self.calibration_images}")


@dataclasses.dataclass
class EvaluateConfig(_Config):
    """Top-1 accuracy on a split."""

    split: str = "val"
    batch_size: int = 32

    def validate(self):
        require(self.batch_size >= 1, "batch_size", f"must be at least 1, got {self.batch_size}")


@dataclasses.dataclass
class MicroConfig(_Config):
    """TensorFlow Lite Micro: agreement with LiteRT on `images` held-out images, arena, C sources."""

    images: int = 64
    name: str = "attendnext_model"  # C identifier of the generated array and namespace
    out_dir: Optional[str] = None  # default: <run out_dir>/tflite
    per_op: bool = False  # also compare op by op
    arena_margin: float = 0.1  # added to the measured arena in the generated header
    strip: bool = True  # the C array without what TFLM never needs (micro.strip_for_micro)

    def validate(self):
        require(self.images >= 1, "images", f"must be at least 1, got {self.images}")
        require(0 <= self.arena_margin <= 4, "arena_margin", f"must be in [0, 4], got {self.arena_margin}")


@dataclasses.dataclass
class BenchmarkConfig(_Config):
    """Latency on LiteRT/XNNPACK, every model interleaved in one run (`experiments.benchmark`)."""

    models: tuple[str, ...] = ()  # registry names; in `attendnext benchmark` none means all
    runs: int = 100  # timed runs per model, format and thread count
    warmup: int = 10
    block: int = 10  # timed runs a model gets per turn
    threads: tuple[int, ...] = (1, 2)
    input_size: Optional[int] = None  # one size for every model; None: 224 (micro: its own)
    classes: int = 1000
    calibration_images: int = 64
    calibration_data: Optional[str] = None  # None: random uniform images (latency does not depend on them)

    def validate(self):
        require(self.runs >= 1 and self.block >= 1 and self.warmup >= 0, "runs",
                f"need runs >= 1, block >= 1, warmup >= 0, got {self.runs}, {self.block}, {self.warmup}")
        require(len(self.threads) >= 1 and min(self.threads) >= 1, "threads",
                f"must be positive thread counts, got {list(self.threads)}")
        require(self.input_size is None or self.input_size >= 1, "input_size", f"must be positive, got {self.input_size}")
        require(self.classes >= 1, "classes", f"must be at least 1, got {self.classes}")
        require(self.calibration_images >= 1, "calibration_images", f"must be at least 1, got {self.calibration_images}")


@dataclasses.dataclass
class SearchSpace(_Config):
    """The structural choices a design-exploration trial samples; everything else comes from the base variant.

    width_multipliers: on the base variant's width (channels stay multiples of 8).
    max_columns: parallel columns per stage, 1 … this; a stage never has more than the stage before.
    max_blocks: cap on the depth-wise separable blocks per column (None: the base stage's count; the widths are the
        base stage's).
    max_condense_factor: DC-AC condense factors are powers of two from 2 up to this, and only those whose condensed
        grid divides the stage's feature map at the sampled input size are offered.
    embed_ratios: DC-AC embedding width ÷ input width.
    blur_sizes: (min, max) BlurPool filter size of each anti-aliased downsampling.
    downsamples: AADS patterns ("max": max-pool/1 → blur/2; "blur": blur/2).
    merges: how a stage joins its columns ("none" keeps them independent into the next stage).
    head_hidden: hidden width of the classifier head before the width multiplier (0: none).
    """

    width_multipliers: tuple[float, ...] = (0.75, 1.0, 1.25, 1.5)
    max_columns: int = 3
    max_blocks: Optional[int] = None
    max_condense_factor: int = 4
    embed_ratios: tuple[float, ...] = (0.125, 0.25, 0.5)
    blur_sizes: tuple[int, ...] = (2, 5)
    downsamples: tuple[Literal["max", "blur"], ...] = ("max", "blur")
    merges: tuple[Literal["none", "concat", "add"], ...] = ("none", "concat", "add")
    head_hidden: tuple[int, ...] = (0, 256, 512)

    def validate(self):
        require(self.max_columns >= 1, "max_columns", f"must be at least 1, got {self.max_columns}")
        require(self.max_blocks is None or self.max_blocks >= 1, "max_blocks", f"must be at least 1, got {self.max_blocks}")
        require(len(self.blur_sizes) == 2 and 2 <= self.blur_sizes[0] <= self.blur_sizes[1] <= 7, "blur_sizes",
                f"is a [min, max] range within 2–7 (AADS needs ≥ 2), got {list(self.blur_sizes)}")
        require(self.max_condense_factor >= 2 and not self.max_condense_factor & (self.max_condense_factor - 1),
                "max_condense_factor", f"must be a power of two ≥ 2, got {self.max_condense_factor}")
        require(bool(set(self.merges) - {"none"}), "merges", f"must name 'concat' or 'add', got {list(self.merges)}")
        for name in ("width_multipliers", "embed_ratios", "head_hidden", "downsamples"):
            require(len(getattr(self, name)) >= 1, name, "needs at least one choice")
        require(min(self.width_multipliers) > 0, "width_multipliers", "must be positive")


@dataclasses.dataclass
class ExploreConfig(_Config):
    """Design exploration (`attendnext explore`): an Optuna search over AttendNeXt specs under the builder's rules
    and these limits, each candidate trained briefly (the proxy budget) and measured in int8."""

    study_name: str = "attendnext-explore"
    storage: Optional[str] = "sqlite:///runs/explore/study.db"  # an RDB URL (several machines can share it); null: memory
    trials: int = 20  # candidates to train in this call; 0 rewrites the reports from the storage
    objective: Literal["netscore", "pareto", "pareto-size"] = "netscore"
    base_variant: str = "micro"  # the registered variant the space derives from
    input_sizes: tuple[int, ...] = (64,)
    # Sizes every candidate must also build at (the finalists' study and deployment sizes: `finalists.finalist_sizes`),
    # checked before training; () : only its own.
    builds_at: tuple[int, ...] = ()
    epochs: int = 3  # proxy training budget per candidate
    batch_size: int = 32
    learning_rate: float = 3e-3
    max_params: Optional[int] = None  # limits; params and MACs are checked before training
    max_macs: Optional[int] = None
    max_tflite_bytes: Optional[int] = None
    max_arena_bytes: Optional[int] = None
    max_latency_ms: Optional[float] = None
    min_accuracy: Optional[float] = None  # int8 top-1 on the selection half, a fraction
    max_partitions: Optional[int] = None  # XNNPACK partitions plus ops left outside; 1: the int8 graph in one partition
    test_split: Optional[str] = None  # a split reported only; None: the held-out split's test half
    sampler: Literal["tpe", "nsga2", "random"] = "tpe"
    reference: str = "micro"  # variant whose int8 model is timed beside every candidate
    latency_runs: int = 50
    threads: int = 1
    calibration_images: int = 64
    timeout: Optional[float] = None  # seconds for this call
    max_proposals: Optional[int] = None  # default 20 × trials: a guard when the limits can hardly be met
    seed: int = 0
    out_dir: str = "runs/explore"
    # The full protocol for finalists (`explore.finalists`): this many trials spread along the front are trained again
    # with the study's recipe and seeds beside the base variant; 0: none. `finalist_protocol`: a config file whose
    # `train` and `study` sections are that protocol (e.g. configs/study_flowers160.yaml); null: this file's own.
    finalists: int = 0
    finalist_protocol: Optional[str] = None
    space: SearchSpace = dataclasses.field(default_factory=SearchSpace)

    def validate(self):
        require(self.trials >= 0, "trials", f"must be >= 0, got {self.trials}")
        require(self.finalists >= 0, "finalists", f"must be >= 0, got {self.finalists}")
        require(len(self.input_sizes) >= 1 and min(self.input_sizes) >= 1, "input_sizes",
                f"must be positive sizes, got {list(self.input_sizes)}")
        require(all(size >= 1 for size in self.builds_at), "builds_at",
                f"must be positive sizes, got {list(self.builds_at)}")
        require(self.epochs >= 1 and self.batch_size >= 1 and self.learning_rate > 0, "epochs",
                "epochs, batch_size and learning_rate must be positive")
        for name in ("max_params", "max_macs", "max_tflite_bytes", "max_arena_bytes", "max_latency_ms", "min_accuracy",
                     "max_partitions", "timeout", "max_proposals"):
            value = getattr(self, name)
            require(value is None or value > 0, name, f"must be positive or null, got {value}")
        require(self.min_accuracy is None or self.min_accuracy <= 1, "min_accuracy",
                f"is a top-1 fraction in (0, 1], got {self.min_accuracy}")
        require(self.latency_runs >= 1 and self.threads >= 1 and self.calibration_images >= 1, "latency_runs",
                "latency_runs, threads and calibration_images must be at least 1")


STUDY_STAGES = ("front", "ablations", "latency", "report", "all")
STUDY_RUN_ORDER = ("front", "ablations", "latency")
"""What stage "all" runs, in order (each writes the report)."""
FRONT_MODELS = ("attendnext_base_v0", "attendnext_small_v0", "attendnext_micro", "mobilenet_v3_large",
                "mobilenet_v3_large_075", "mobilenet_v3_small", "mobilenet_v3_small_075", "mobilenet_v2",
                "mobilenet_v2_075", "mobilenet_v2_050", "mobilenet_v2_035", "attendnext_base", "attendnext_medium",
                "attendnext_small", "attendnext_small_v2", "attendnext_tiny")
"""In the order the study trains them (seed by seed): the first design, the peers, then the family candidates."""


@dataclasses.dataclass
class StudyConfig(_Config):
    """The proxy-accuracy study (`attendnext study`): every model trained with one recipe (the `train` section) for
    several seeds, chosen on the selection half of the held-out split and scored on the test half (a `test/` folder,
    or `test_split`, replaces the halves); then latency at deployment size, fronts, iso-accuracy and ablations."""

    stage: Literal["front", "ablations", "latency", "report", "all"] = "front"
    models: tuple[str, ...] = FRONT_MODELS  # the front stage's models (registry names or spec .json files)
    # Designs tried and not registered (spec files or names): trained and timed with the front and shown in its tables
    # as evidence, but left out of the AttendNeXt front that the family's goals are judged on.
    candidates: tuple[str, ...] = ()
    ablation_base: str = "attendnext_small"  # the spec the ablations change one choice of
    seeds: tuple[int, ...] = (0, 1, 2)
    input_size: int = 96
    epochs: int = 30
    out_dir: str = "runs/study"
    test_split: Optional[str] = None
    shift_max: int = 16  # shift consistency: crops offset by up to this many pixels
    bootstrap_samples: int = 10_000
    latency_runs: int = 100
    latency_threads: tuple[int, ...] = (1, 2)
    # Which percentile of a format's timed runs the report calls its latency: "median", or "p10" where other work
    # shares the CPU (contention only adds time, so the 10th percentile moves less between runs).
    latency_statistic: Literal["median", "p10"] = "median"
    npu_estimates: Optional[str] = None  # a bench_vela.py vela.json: fronts and iso-accuracy on Arm Ethos-U too
    arm_counts: Optional[str] = None  # a bench_arm_cpu.py arm_cpu.json: iso-accuracy in emulated Arm instructions too

    def validate(self):
        require(len(self.seeds) >= 1, "seeds", "needs at least one seed")
        both = sorted({os.path.normpath(m) for m in self.models} & {os.path.normpath(c) for c in self.candidates})
        require(not both, "candidates", f"lists models that `models` has too: {both}")
        require(self.input_size >= 32, "input_size", f"must be at least 32, got {self.input_size}")
        require(self.epochs >= 1, "epochs", f"must be at least 1, got {self.epochs}")
        require(self.shift_max >= 1, "shift_max", f"must be at least 1, got {self.shift_max}")
        require(self.bootstrap_samples >= 100, "bootstrap_samples", f"must be at least 100, got {self.bootstrap_samples}")
        require(self.latency_runs >= 1 and len(self.latency_threads) >= 1 and min(self.latency_threads) >= 1,
                "latency_runs", "latency_runs and latency_threads must be positive")


STEPS = ("train", "qat", "export", "evaluate", "micro", "benchmark")


def _default_model():
    return ModelConfig(name="attendnext_micro", input_size=64)


def _run_benchmark():
    # The main job times its own float32 and int8 models (name peers in `models` to add them to the same run).
    return BenchmarkConfig(models=(), runs=50, threads=(1,))


@dataclasses.dataclass
class RunConfig(_Config):
    """The chain train → QAT → export → evaluate → TFLite Micro → benchmark (`attendnext run`); each command
    reads its own sections of the same file."""

    steps: tuple[Literal["train", "qat", "export", "evaluate", "micro", "benchmark"], ...] = STEPS
    out_dir: str = "runs/main"
    resume: bool = False  # continue the interrupted training runs in out_dir
    overwrite: bool = False  # replace an earlier run in out_dir (without either, an earlier run is refused)
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    model: ModelConfig = dataclasses.field(default_factory=_default_model)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    qat: QATConfig = dataclasses.field(default_factory=QATConfig)
    export: ExportConfig = dataclasses.field(default_factory=ExportConfig)
    evaluate: EvaluateConfig = dataclasses.field(default_factory=EvaluateConfig)
    micro: MicroConfig = dataclasses.field(default_factory=MicroConfig)
    benchmark: BenchmarkConfig = dataclasses.field(default_factory=_run_benchmark)
    explore: ExploreConfig = dataclasses.field(default_factory=ExploreConfig)  # `attendnext explore` reads it
    study: StudyConfig = dataclasses.field(default_factory=StudyConfig)  # `attendnext study` reads it

    def validate(self):
        require(len(self.steps) >= 1, "steps", "needs at least one step")
        require(not (self.resume and self.overwrite), "overwrite", "resume and overwrite exclude each other")
        order = [STEPS.index(s) for s in self.steps]
        require(order == sorted(set(order)), "steps", f"must be in the order {list(STEPS)}, once each, got "
                f"{list(self.steps)}")
        require("qat" not in self.steps or "train" in self.steps, "steps",
                "'qat' needs 'train' in the same run (it continues from its model)")
        if "export" in self.steps:
            for mode in self.export.modes:
                source = "qat" if mode == "int8" else "train"
                require(source in self.steps, "export.modes", f"'{mode}' exports the model of the '{source}' step, "
                        f"which is not in steps {list(self.steps)}")
        require("micro" not in self.steps or ("export" in self.steps and set(FULLY_INT8_MODES) & set(self.export.modes)),
                "steps", "'micro' runs an int8 model: it needs 'export' with 'int8' or 'int8-ptq' in export.modes")
        require("benchmark" not in self.steps or "export" in self.steps or self.benchmark.models, "steps",
                "'benchmark' times the exported models (or benchmark.models): add 'export' or name models")


# --------------------------------------------------------------------------------------------------------------------
# Files


@functools.lru_cache(maxsize=None)
def _unique_key_loader():
    """PyYAML's safe loader, refusing a key given twice in one mapping (safe_load keeps the last silently)."""
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        def construct_mapping(self, node, deep=False):
            seen = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                if not isinstance(key, typing.Hashable):
                    break  # PyYAML's own error for an unhashable key follows
                if key in seen:
                    raise yaml.constructor.ConstructorError(None, None, f"key {key!r} is given twice",
                                                            key_node.start_mark)
                seen.add(key)
            return super().construct_mapping(node, deep)

    return UniqueKeyLoader


def load_mapping(path) -> dict:
    """The mapping in a YAML (.yaml/.yml) or JSON file; a missing, unreadable or malformed file is one line."""
    import yaml  # deferred: PyYAML is only needed when a config file is read

    path = os.fspath(path)
    if not str(path).endswith((".yaml", ".yml", ".json")):
        raise ConfigError(f"Config file '{path}' must end in .yaml, .yml or .json.")
    if not str(path).endswith(".json"):
        if not os.path.isfile(path):
            raise FileNotFoundError(f"Config file '{path}' does not exist." if not os.path.exists(path) else
                                    f"Config file '{path}' is a folder, not a file.")
        try:
            with open(path, encoding="utf-8") as f:
                values = yaml.load(f, Loader=_unique_key_loader())
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
            raise ConfigError(f"Config file '{path}' is not valid YAML{where}: "
                              f"{getattr(error, 'problem', None) or error}") from None
        except UnicodeDecodeError as error:
            raise ConfigError(f"Config file '{path}' is not UTF-8 text: {error}") from None
    else:
        values = _io.read_json(path, "Config file")
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ConfigError(f"Config file '{path}' must hold a mapping of settings, got {_describe(values)}")
    return values


def load_config(path, cls=RunConfig):
    """A config dataclass (default RunConfig) from a YAML/JSON file; errors name the file and the key's path."""
    values = load_mapping(path)
    try:
        return from_dict(cls, values)
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None


def save_config(config, path) -> str:
    """Writes the resolved config next to a run's outputs (YAML for .yaml/.yml, else JSON), atomically."""
    if str(path).endswith((".yaml", ".yml")):
        import yaml

        return _io.write_atomic(path, yaml.safe_dump(to_dict(config), sort_keys=False))
    return _io.write_json(path, to_dict(config))


def example_configs() -> dict:
    """{name: path} of the example configs shipped in `attendnext_keras/configs/`."""
    folder = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs")
    return {os.path.splitext(n)[0]: os.path.join(folder, n) for n in sorted(os.listdir(folder))
            if n.endswith((".yaml", ".yml"))}

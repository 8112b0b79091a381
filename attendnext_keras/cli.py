"""The `attendnext` command line: one `add_<command>_parser` and one `cmd_<command>` per command, each a thin call
into the library. Settings come from the typed configs (`attendnext_keras.config`): `--config FILE` loads a file and
flags override it; flags never repeat a default (their help shows the config's). A mistake a user can fix ends with
one line on stderr and exit code 2; TensorFlow's start-up noise is hidden unless `--verbose`.

Each command imports its implementation when it runs, so `attendnext --help` and `attendnext predict` start without
TensorFlow.
"""

from __future__ import annotations

import argparse
import dataclasses
import errno
import json
import logging
import os
import sys

from attendnext_keras import _io, config as configs, registry
from attendnext_keras.config import ConfigError, RunConfig

logger = logging.getLogger("attendnext_keras")
USER_ERRORS = (ValueError, FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError, RuntimeError,
               OSError)


def _default(cls, field):
    """A config field's default, for help texts."""
    value = next(f for f in dataclasses.fields(cls) if f.name == field)
    default = value.default if value.default is not dataclasses.MISSING else value.default_factory()
    return list(default) if isinstance(default, tuple) else default


# --------------------------------------------------------------------------------------------------------------------
# Flags → config


def _load(args) -> RunConfig:
    return configs.load_config(args.config) if getattr(args, "config", None) else RunConfig()


def _override(section, **flags):
    """`section` with the flags that were given (not None) replacing its values, checked like a file's."""
    given = {k: v for k, v in flags.items() if v is not None}
    if not given:
        return section
    values = {**section.to_dict(), **given}
    return configs.from_dict(type(section), values, _SECTIONS.get(type(section).__name__, ""))


_SECTIONS = {"DataConfig": "data", "ModelConfig": "model", "TrainConfig": "train", "QATConfig": "qat",
             "ExportConfig": "export", "MicroConfig": "micro", "BenchmarkConfig": "benchmark",
             "ExploreConfig": "explore", "SearchSpace": "explore.space", "StudyConfig": "study"}


def _model_name(args, default):
    if getattr(args, "arch", None) and getattr(args, "variant", None):
        raise ValueError(f"--arch {args.arch} and --variant {args.variant} both name the model: give one.")
    name = getattr(args, "arch", None) or getattr(args, "variant", None)
    if name is None:
        return default
    if name in registry.list_models() or registry.is_spec_file(name):
        return name
    if f"attendnext_{name}" in registry.list_models():  # --variant micro
        return f"attendnext_{name}"
    registry.model_info(name)  # raises, naming the known models
    return name


def _apply_data_flags(config: RunConfig, args) -> RunConfig:
    """The run config with the data flags of `args` applied (commands whose other flags are their own section's)."""
    data = _override(config.data, source=getattr(args, "data", None), data_dir=getattr(args, "data_dir", None),
                     manual_dir=getattr(args, "manual_dir", None),
                     train_split=getattr(args, "train_split", None), val_split=getattr(args, "val_split", None),
                     crop_scale_min=getattr(args, "crop_scale_min", None), mixup=getattr(args, "mixup", None))
    return dataclasses.replace(config, data=data)


def _apply_flags(config: RunConfig, args) -> RunConfig:
    """The run config with every data, model and training flag of `args` applied."""
    config = _apply_data_flags(config, args)
    model = _override(config.model, name=_model_name(args, config.model.name),
                      input_size=getattr(args, "input_size", None), alpha=getattr(args, "alpha", None),
                      weights=getattr(args, "weights", None))
    train_flags = dict(epochs=getattr(args, "epochs", None), batch_size=getattr(args, "batch_size", None),
                       learning_rate=getattr(args, "lr", None), optimizer=getattr(args, "optimizer", None),
                       seed=getattr(args, "seed", None), bn_momentum=getattr(args, "bn_momentum", None))
    return dataclasses.replace(config, model=model, train=_override(config.train, **train_flags))


# --------------------------------------------------------------------------------------------------------------------
# Shared flags


def _config_arg(p):
    p.add_argument("--config", default=None, metavar="FILE",
                   help="A YAML/JSON run config (see attendnext_keras/configs/); flags override its values.")


def _data_args(p, split=None, required_for=None):
    default = None if required_for else _default(configs.DataConfig, "source")
    p.add_argument("--data", default=None,
                   help=f"'default' (photographs embedded in the package), an image folder with <split>/<class>/ "
                        f"sub-folders, or tfds:NAME (default: {required_for or default}).")
    p.add_argument("--data-dir", default=None, help="TensorFlow Datasets data_dir (where prepared datasets live).")
    p.add_argument("--manual-dir", default=None,
                   help="TensorFlow Datasets manual_dir: the archives of a data set TFDS cannot download (ImageNet).")
    if split:
        p.add_argument("--split", default=split, help=f"Split to read (default: {split}).")
    else:
        p.add_argument("--train-split", default=None, help="Training split (default: train).")
        p.add_argument("--val-split", default=None,
                       help="Held-out split (default: val; TFDS sets often call it 'validation' or 'test').")


def _model_args(p, weights=False):
    p.add_argument("--arch", default=None, metavar="NAME",
                   help="A model from `attendnext models` (AttendNeXt variants and peers) or a spec .json file.")
    p.add_argument("--variant", default=None, help="An AttendNeXt variant (micro, small, base); same as --arch "
                                                    "attendnext_<variant>.")
    p.add_argument("--input-size", type=int, default=None,
                   help="Square input size in pixels, a multiple of 32 (default: the model's own).")
    p.add_argument("--alpha", type=float, default=None, help="AttendNeXt width multiplier on top of the variant's.")
    if weights:
        p.add_argument("--weights", default=None, metavar="PRESET",
                       help="Start from a preset (`attendnext preset list`, or a preset folder): its architecture "
                            "and weights; a new classifier when the data's classes differ from the preset's.")


def _train_args(p, section=configs.TrainConfig):
    p.add_argument("--epochs", type=int, default=None, help=f"Epochs (default: {_default(section, 'epochs')}).")
    p.add_argument("--batch-size", type=int, default=None,
                   help=f"Global batch size (default: {_default(section, 'batch_size')}).")
    p.add_argument("--lr", type=float, default=None,
                   help=f"Peak learning rate of the cosine schedule (default: {_default(section, 'learning_rate')}).")
    p.add_argument("--optimizer", choices=configs.OPTIMIZERS, default=None, help="Optimizer (default: adamw).")
    p.add_argument("--seed", type=int, default=None, help="Seed for initialisation, shuffling and augmentation.")
    p.add_argument("--bn-momentum", type=float, default=None,
                   help=f"BatchNorm moving-average momentum (default: {_default(section, 'bn_momentum')}).")
    p.add_argument("--crop-scale-min", type=float, default=None,
                   help=f"Smallest area fraction of the random resized crop (default: "
                        f"{_default(configs.DataConfig, 'crop_scale_min')}).")
    p.add_argument("--resume", action="store_true", help="Continue from the newest checkpoint in --out.")
    p.add_argument("--overwrite", action="store_true", help="Replace an earlier run in --out (without --resume or "
                                                            "--overwrite, a folder holding one is refused).")


# --------------------------------------------------------------------------------------------------------------------
# Models


def add_models_parser(sub):
    p = sub.add_parser("models", help="List the registered models (AttendNeXt variants and peers).")
    p.add_argument("pattern", nargs="?", default="*", help="fnmatch pattern, e.g. 'mobilenet*'.")
    p.add_argument("-v", "--verbose-list", action="store_true", help="Also print each AttendNeXt variant's layout.")
    return p


def cmd_models(args):
    from attendnext_keras.specs import get_spec, summarize_spec

    names = registry.list_models(args.pattern)
    if not names:
        raise ValueError(f"No model matches '{args.pattern}'; `attendnext models` lists them all.")
    for name in names:
        info = registry.model_info(name)
        print(f"{name:26} {info.family:13} {info.display_name}")
        if args.verbose_list and info.family == "attendnext":
            print(summarize_spec(get_spec(name[len("attendnext_"):])))


def add_profile_parser(sub):
    p = sub.add_parser("profile", help="Parameters, MACs and activation memory per stage (and per layer).")
    _model_args(p)
    p.add_argument("--classes", type=int, default=1000, help="Classes of the classifier head (default: 1000).")
    p.add_argument("--per-layer", action="store_true", help="Also list every layer.")
    p.add_argument("--json", action="store_true", help="Print the profile as JSON instead of a table.")
    p.add_argument("--latency", action="store_true",
                   help="Also time the int8 model by stage on LiteRT/XNNPACK (truncated models, interleaved), with "
                        "each stage's MAC rate against this CPU's peak for a large 1×1 convolution.")
    p.add_argument("--float32", action="store_true",
                   help="With --latency (--arm-cpu): also time (count) each stage in float32 and print int8 ÷ float32 "
                        "per stage.")
    p.add_argument("--threads", type=int, default=1, help="LiteRT threads for --latency (default: 1).")
    p.add_argument("--runs", type=int, default=50, help="Timed runs per truncated model for --latency (default: 50).")
    from attendnext_keras.deploy.arm_cpu import CPUS

    p.add_argument("--arm-cpu", nargs="+", metavar="CPU", choices=tuple(CPUS),
                   help=f"Also count each stage's instructions on these emulated Arm cores ({', '.join(CPUS)}; the "
                        f"same cuts; deploy.arm_cpu, set up once by tools/setup_arm_cpu.sh).")
    return p


def cmd_profile(args):
    from attendnext_keras.profiling import profile
    from attendnext_keras.specs import get_spec, summarize_spec

    name = _model_name(args, "attendnext_micro")
    info = registry.model_info(name)
    extra = {"alpha": args.alpha} if args.alpha is not None else {}
    model = registry.create_model(name, input_size=args.input_size, classes=args.classes, **extra)
    result = profile(model)
    if args.arm_cpu:  # before minutes of timing: one line if the emulation is not set up or the model has no stages
        from attendnext_keras.deploy import arm_cpu

        if info.family != "attendnext":
            raise ValueError(f"--arm-cpu counts AttendNeXt models stage by stage; {name} is not one")
        arm_cpu.emulator()
    timing = None
    if args.latency:
        from attendnext_keras.deploy.latency_profile import format_profile, latency_profile

        timing = latency_profile(model, threads=args.threads, runs=args.runs, float32=args.float32)
    counted = []
    if args.arm_cpu:
        from attendnext_keras.deploy.latency_profile import instruction_profiles

        counted = instruction_profiles(model, cpus=args.arm_cpu, float32=args.float32)
    if args.json:
        print(json.dumps({**result.as_dict(), **({"latency": timing} if timing else {}),
                          **({"instructions": counted} if counted else {})}, indent=1))
        return
    if info.family == "attendnext" and not registry.is_spec_file(name):
        spec = get_spec(name[len("attendnext_"):])
        print(summarize_spec(spec.replace(input_size=int(model.inputs[0].shape[1]), width=spec.width * (args.alpha or 1))))
    print(result.table(per_layer=args.per_layer))
    if timing:
        print("\n" + format_profile(timing))
    _print_instruction_profiles(counted)


def _print_instruction_profiles(profiles):
    from attendnext_keras.deploy.latency_profile import instruction_rows
    from attendnext_keras.experiments.reports import table

    for counted in profiles:
        print(f"\nInstructions by stage on an emulated {counted['cpu']} (1 thread; counts, not time):\n"
              + table(*instruction_rows(counted)))


# --------------------------------------------------------------------------------------------------------------------
# The chain and its steps


def add_run_parser(sub):
    p = sub.add_parser("run", help="The main job: train, QAT, export float32/int8, evaluate each, run on TFLM, time "
                                   "(a few minutes on the embedded data); --config FILE runs any chain.")
    _config_arg(p)
    _data_args(p)
    _model_args(p, weights=True)
    _train_args(p)
    p.add_argument("--qat-epochs", type=int, default=None,
                   help=f"Quantization-aware fine-tuning epochs (default: {_default(configs.QATConfig, 'epochs')}).")
    p.add_argument("--out", default=None, help=f"Output folder (default: {_default(RunConfig, 'out_dir')}).")
    p.add_argument("--no-micro", action="store_true", help="Skip TensorFlow Lite Micro (evaluation and C sources).")
    return p


def cmd_run(args):
    from attendnext_keras.pipeline import run

    config = _apply_flags(_load(args), args)
    config = dataclasses.replace(
        config, resume=config.resume or args.resume, overwrite=config.overwrite or args.overwrite,
        out_dir=args.out or config.out_dir,
        qat=_override(config.qat, epochs=args.qat_epochs, seed=args.seed),
        steps=tuple(s for s in config.steps if not (args.no_micro and s == "micro")))
    summary = run(config)
    print("\n" + summary["table"])
    print(f"\nDone in {summary['seconds']:.0f} s. Outputs in {config.out_dir}/")


def add_train_parser(sub):
    p = sub.add_parser("train", help="Train a float model (checkpoints every epoch, --resume, tf.distribute).")
    _config_arg(p)
    _data_args(p)
    _model_args(p, weights=True)
    _train_args(p)
    p.add_argument("--mixup", type=float, default=None, help="Mixup Beta parameter (default: 0, off; 0.2 is common).")
    p.add_argument("--strategy", default="auto", choices=("auto", "default", "mirrored", "multiworker", "tpu"),
                   help="tf.distribute strategy; 'auto' picks TPU, multi-worker (TF_CONFIG), several GPUs or one "
                        "device. Multi-worker training builds the tf-keras flavour of the model.")
    p.add_argument("--out", default="runs/train", help="Output folder (checkpoints, best/final model, logs).")
    return p


def cmd_train(args):
    from attendnext_keras import data, pipeline
    from attendnext_keras.training import configure_mixed_precision, make_strategy, train

    strategy = make_strategy(args.strategy)  # first: multi-worker collectives must be set up before other ops
    config = _apply_flags(_load(args), args)
    flavour = "tf_keras" if type(strategy).__name__.startswith("MultiWorker") else "keras"
    configure_mixed_precision(config.train.mixed_precision, flavour)
    size = pipeline.model_input_size(config.model)
    train_source, val_source = data.load_splits(config.data.source, config.data.train_split, config.data.val_split,
                                                config.data.data_dir, config.data.manual_dir)
    train_ds = data.make_dataset(train_source, size, config.train.batch_size, training=True, seed=config.train.seed,
                                 mixup=config.data.mixup, crop_scale=(config.data.crop_scale_min, 1.0))
    val_ds = data.make_dataset(val_source, size, config.train.batch_size, training=False)
    keras = None if flavour == "keras" else flavour
    result = train(lambda: pipeline.build_model(config.model, size, train_source.class_names, keras=keras),
                   train_ds, val_ds, config.train, out_dir=args.out, resume=args.resume, strategy=strategy,
                   overwrite=args.overwrite)
    _io.write_json(os.path.join(args.out, "class_names.json"), train_source.class_names)
    if result.history.get("val_accuracy"):
        print(f"val top-1 {result.history['val_accuracy'][-1]:.1%} after {config.train.epochs} epochs")
    print(f"final model: {result.final_path}; best: {result.best_path}")


def add_qat_parser(sub):
    p = sub.add_parser("qat", help="Quantization-aware fine-tuning of a trained float model (.keras).")
    p.add_argument("--model", required=True, help="Float model file (.keras from `attendnext train`).")
    _config_arg(p)
    _data_args(p)
    _train_args(p, configs.QATConfig)
    p.add_argument("--out", default="runs/qat", help="Output folder (checkpoints, best/final QAT model .h5).")
    return p


def cmd_qat(args):
    from attendnext_keras import data
    from attendnext_keras.quantization import fine_tune

    config = _apply_data_flags(_load(args), args)
    qat = _override(config.qat, epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr,
                    optimizer=args.optimizer, seed=args.seed, bn_momentum=args.bn_momentum)
    model = _load_classifier(args.model)
    size = _model_size(model)
    train_source, val_source = data.load_splits(config.data.source, config.data.train_split, config.data.val_split,
                                                config.data.data_dir, config.data.manual_dir)
    _check_classes(model, args.model, train_source)
    train_ds = data.make_dataset(train_source, size, qat.batch_size, training=True, seed=qat.seed,
                                 crop_scale=(config.data.crop_scale_min, 1.0))
    val_ds = data.make_dataset(val_source, size, qat.batch_size, training=False)
    result = fine_tune(model, train_ds, val_ds, qat, out_dir=args.out, resume=args.resume, overwrite=args.overwrite)
    _io.write_json(os.path.join(args.out, "class_names.json"), train_source.class_names)
    if result.history.get("val_accuracy"):
        print(f"QAT val top-1 {result.history['val_accuracy'][-1]:.1%}")
    print(f"QAT model: {result.final_path} (export it with: attendnext export --model {result.final_path} "
          f"--mode int8)")


def _load_classifier(path):
    """A .keras / .h5 model file that is an image classifier (one-line errors otherwise)."""
    from attendnext_keras.saving import check_image_classifier, load_model

    return check_image_classifier(load_model(path), path)


def _tflite_classifier(path):
    """(flatbuffer, metadata) of a .tflite image classifier, checked as `predict` checks it: a TFLite model that
    loads, one RGB image input, one (1, classes) output, and metadata (beside it or inside it) that describes it."""
    from attendnext_keras import preprocessing
    from attendnext_keras.deploy import litert
    from attendnext_keras.deploy.predictor import Predictor

    blob = litert.read_tflite(path)
    quiet = logging.getLogger(Predictor.__module__)  # its advice on missing metadata is for Predictor's callers
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        predictor = Predictor(path, xnnpack=False, crop_pct=preprocessing.DEFAULT_CROP_PCT, output_kind="logits")
    finally:
        quiet.setLevel(level)
    if predictor.metadata is None:
        logger.warning("%s has no metadata (neither a JSON beside it nor inside it): its class names cannot be "
                       "checked.", path)
    return blob, predictor.metadata


def _model_size(model):
    shape = model.inputs[0].shape
    if shape[1] is None or shape[1] != shape[2]:
        raise ValueError(f"Expected a model with a square, fixed input size. Received input shape {tuple(shape)}")
    return int(shape[1])


def add_export_parser(sub):
    p = sub.add_parser("export", help="Convert a model to .tflite plus metadata JSON, with a conversion report.")
    p.add_argument("--model", required=True, help="Model file: .keras (float) or .h5 (QAT, for --mode int8).")
    p.add_argument("--mode", default="int8", choices=configs.MODES,
                   help="int8 needs a QAT model; int8-ptq calibrates a float model on --data; int8-ptq-float-stem "
                        "also keeps the input scaling and first convolution in float32 (faster on Arm cores "
                        "without dot products, e.g. Cortex-A72/A53) (default: int8).")
    p.add_argument("--out", required=True, help="Output .tflite path (the metadata .json goes beside it).")
    _config_arg(p)
    _data_args(p, split="train", required_for="none; int8-ptq and int8-ptq-float-stem need it")
    p.add_argument("--calibration-images", type=int, default=None,
                   help=f"Images for int8-ptq(-float-stem) calibration (default: "
                        f"{_default(configs.ExportConfig, 'calibration_images')}).")
    p.add_argument("--float-io", action="store_true", help="Keep float32 input/output on int8 models.")
    p.add_argument("--strict", action="store_true",
                   help="Fail (write nothing) when the report finds float ops, several partitions or TFLM gaps.")
    p.add_argument("--target", default=None, metavar="NAME",
                   help="Hardware to build for: xnnpack (LiteRT's CPU, the default) or an Arm Ethos-U NPU through "
                        "Vela (ethos-u55-32/64/128/256, ethos-u65-256/512, ethos-u85-128…2048; int8 modes; "
                        "pip install \"attendnext_keras[vela]\"): writes Vela's compiled .tflite.")
    p.add_argument("--no-embed-metadata", action="store_true",
                   help="Leave the standard TFLite metadata (labels.txt, normalisation) out of the .tflite.")
    return p


def _export_target(args):
    """--target, checked before any model loads: an unknown name lists the known ones; an NPU needs an int8 mode and
    Vela installed."""
    from attendnext_keras.deploy import vela

    if args.target is not None:
        vela.check_request(args.target, args.mode)
    return args.target


def cmd_export(args):
    from attendnext_keras import data
    from attendnext_keras.deploy.export import export

    cfg = _override(_load(args).export, calibration_images=args.calibration_images,
                    int8_io=False if args.float_io else None, strict=True if args.strict else None,
                    target=args.target, embed_metadata=False if args.no_embed_metadata else None)
    _io.check_writable(args.out)
    args.target = cfg.target
    target = _export_target(args)
    model = _load_classifier(args.model)
    representative = None
    if args.mode in configs.CALIBRATED_MODES:
        if not args.data:
            raise ValueError(f"--mode {args.mode} calibrates on real images: give --data (an image folder, 'default' "
                             "or tfds:NAME).")
        source = data.load_source(args.data, args.split, args.data_dir, args.manual_dir)
        representative = data.calibration_images(source, _model_size(model), count=cfg.calibration_images)
    names = _class_names_for(args.model, int(model.outputs[0].shape[-1]))
    result = export(model, args.out, args.mode, representative_data=representative, class_names=names,
                    int8_io=cfg.int8_io, strict=cfg.strict, target=target, embed_metadata=cfg.embed_metadata)
    print(result.report.summary())
    print(f"wrote {result.path} and {result.metadata_path}")


def _check_classes(model, model_path, source):
    """The model's outputs (and the class names saved beside it, if any) must be the data's classes."""
    from attendnext_keras import data

    classes = int(model.outputs[0].shape[-1])
    data.check_classes(classes, _class_names_for(model_path, classes, warn=False), source, model_path)


def _class_names_for(model_path, classes, warn=True):
    """class_names.json written by `attendnext train`/`qat` beside the model (or one folder up), if it matches."""
    folder = os.path.dirname(os.path.abspath(model_path))
    for candidate in (folder, os.path.dirname(folder)):
        path = os.path.join(candidate, "class_names.json")
        if os.path.exists(path):
            names = _io.read_json(path, "Class names file")
            if isinstance(names, list) and len(names) == classes:
                return names
            if warn:
                    logger.warning("%s lists %s class names but the model has %d outputs; exporting without names.",
                               path, len(names) if isinstance(names, list) else "no", classes)
    return None


def add_evaluate_parser(sub):
    p = sub.add_parser("evaluate", help="Top-1 accuracy of a .keras, .h5 or .tflite model on a data split.")
    p.add_argument("--model", required=True, help="Model file (.keras, .h5 or .tflite with its metadata JSON).")
    _data_args(p, split="val")
    p.add_argument("--batch-size", type=int, default=_default(configs.EvaluateConfig, "batch_size"),
                   help="Batch size of the evaluation pipeline.")
    p.add_argument("--json", action="store_true", help="Print the result as JSON.")
    return p


def cmd_evaluate(args):
    from attendnext_keras import data

    source = data.load_source(args.data or "default", args.split, args.data_dir, args.manual_dir)
    if args.model.endswith(".tflite"):
        from attendnext_keras.deploy import litert

        blob, metadata = _tflite_classifier(args.model)
        size = litert.input_size(blob)[0]
        data.check_classes(litert.output_classes(blob), (metadata or {}).get("class_names"), source, args.model)
        result = litert.evaluate_tflite(blob, data.make_dataset(source, size, args.batch_size, training=False))
    else:
        from attendnext_keras.training import evaluate

        model = _load_classifier(args.model)
        _check_classes(model, args.model, source)
        result = evaluate(model, data.make_dataset(source, _model_size(model), args.batch_size, training=False))
    print(json.dumps(result) if args.json else
          f"{args.model}: top-1 {result['top1']:.2%} on {result['examples']} images ({args.data or 'default'}, "
          f"{args.split})")


def add_predict_parser(sub):
    p = sub.add_parser("predict", help="Top-k labels for images with a .tflite model (LiteRT, no TensorFlow).")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="Image files (JPEG, PNG, BMP, GIF).")
    p.add_argument("--model", required=True,
                   help=".tflite model (its metadata .json beside it gives labels and preprocessing).")
    p.add_argument("--top-k", type=int, default=5, help="Labels to show per image.")
    p.add_argument("--threads", type=int, default=1, help="LiteRT threads.")
    p.add_argument("--json", action="store_true", help="Print JSON instead of a table.")
    return p


def cmd_predict(args):
    from attendnext_keras.deploy.predictor import Predictor, format_predictions

    if args.top_k < 1:
        raise ValueError(f"--top-k must be at least 1, got {args.top_k}")
    predictor = Predictor(args.model, num_threads=args.threads)
    paths, predictions, failed = [], [], []
    for image in args.images:  # one bad file is reported and skipped, the others still run
        try:
            predictions += predictor.predict([image], top_k=args.top_k)
            paths.append(image)
        except (ValueError, FileNotFoundError, OSError) as error:
            failed.append(image)
            logger.error("skipped %s: %s", image, str(error).splitlines()[0])
    if paths:
        print(format_predictions(paths, predictions, as_json=args.json))
    if failed:
        raise ValueError(f"{len(failed)} of {len(args.images)} image(s) could not be read: {', '.join(failed[:5])}")


def add_micro_parser(sub):
    p = sub.add_parser("micro", help="Run an int8 .tflite on TensorFlow Lite Micro: arena, agreement with LiteRT, "
                                     "C sources for a microcontroller project.")
    p.add_argument("--model", required=True, help="int8 .tflite model.")
    _config_arg(p)
    _data_args(p, split="val")
    p.add_argument("--images", type=int, default=None,
                   help=f"Held-out images to compare TFLM and LiteRT on (default: "
                        f"{_default(configs.MicroConfig, 'images')}).")
    p.add_argument("--per-op", action="store_true", help="Also compare op by op and print, per op type, how far "
                   "TFLM's output differs from LiteRT's when the op's inputs are bit-identical (its own rounding).")
    p.add_argument("--out-dir", default="tflite/models/attendnext_model", help="Folder for the .h/.cc files.")
    p.add_argument("--name", default=None, help="C identifier for the array and the namespace (default: "
                                                f"{_default(configs.MicroConfig, 'name')}).")
    p.add_argument("--no-strip", dest="strip", action="store_false", default=None,
                   help="Write the .tflite as it is (by default the C array drops the tensor names, signatures and "
                        "TFLite Support metadata TFLM never reads and keeps one zero point per per-channel tensor, "
                        "TFLM's space-saving form: a quarter to nearly half of a small model's flash).")
    p.add_argument("--layout", choices=("arduino", "cmake"), default=None,
                   help="Also write a project around the C sources: arduino, an Arduino library (arduino/<name>/ "
                        "with library.properties, src/ and an example sketch); cmake, a CMakeLists.txt with a "
                        "library target <name> to add_subdirectory() next to TensorFlow Lite Micro.")
    return p


def cmd_micro(args):
    from attendnext_keras import data
    from attendnext_keras.deploy import cortex_m, litert, micro

    cfg = _override(_load(args).micro, images=args.images, name=args.name, per_op=args.per_op or None,
                    strip=args.strip)
    micro.check_c_identifier(cfg.name)
    if os.path.exists(args.out_dir) and not os.path.isdir(args.out_dir):
        raise NotADirectoryError(f"--out-dir '{args.out_dir}' is a file, not a folder.")
    exported, metadata = _tflite_classifier(args.model)  # metadata: the class names for the header
    source = data.load_source(args.data or "default", args.split, args.data_dir, args.manual_dir)  # images only
    blob = micro.strip_for_micro(exported) if cfg.strip else exported
    images = data.calibration_images(source, litert.input_size(blob), count=min(cfg.images, source.num_examples))
    runner = micro.MicroRunner(blob)
    usage = runner.arena_usage
    result = micro.compare_with_litert(blob, images, runner=runner)
    os.makedirs(args.out_dir, exist_ok=True)
    paths = micro.write_c_sources(blob, args.out_dir, cfg.name, metadata=metadata, arena_bytes=usage["total"],
                                  arena_margin=cfg.arena_margin, arena_usage=usage, layout=args.layout)
    if cfg.strip:
        print(f"C array: {len(blob):,} bytes ({len(exported):,} in the .tflite; names, signatures, Support metadata "
              "and repeated zero points dropped, outputs identical)")
    print(f"TFLite Micro arena: {result['arena_bytes']:,} bytes")
    print(f"TFLM vs LiteRT on {result['images']} images: ≤ {result['max_lsb_vs_litert_reference']} LSB (reference "
          f"kernels), ≤ {result['max_lsb_vs_xnnpack']} LSB (XNNPACK), top-1 agreement {result['top1_agreement']:.0%}")
    if cfg.per_op:
        print("Each op's own difference (TFLM vs LiteRT built-in kernels, on bit-identical inputs):")
        for op, (count, worst) in sorted(micro.own_rounding_by_op(blob, images).items()):
            print(f"  {op:<24} {count:>4} ops  ≤ {worst} LSB")
    budgets = cortex_m.part_budgets(blob, micro.c_class_names(blob, metadata), usage["total"], cfg.arena_margin,
                                    usage)
    print(cortex_m.format_part_budgets(budgets), end="")
    print("wrote " + ", ".join(paths.values()))


# --------------------------------------------------------------------------------------------------------------------
# Experiments


def add_benchmark_parser(sub):
    p = sub.add_parser("benchmark", help="AttendNeXt against its peers: size, MACs, LiteRT latency, partitions, "
                                         "ratios, Figure-3-style plot.")
    _config_arg(p)
    p.add_argument("--models", nargs="+", default=None, metavar="NAME",
                   help="Models to run (default: all of `attendnext models`). Each 224-px model takes 10–90 s per "
                        "format to convert.")
    p.add_argument("--list", action="store_true", help="Print the known model names and exit.")
    p.add_argument("--runs", type=int, default=None, help="Timed runs per model, format and thread count, at least "
                                                          f"(default: {_default(configs.BenchmarkConfig, 'runs')}).")
    p.add_argument("--warmup", type=int, default=None, help="Untimed runs per interpreter before timing.")
    p.add_argument("--block", type=int, default=None, help="Timed runs a model gets per turn in the interleaving.")
    p.add_argument("--threads", type=int, nargs="+", default=None,
                   help=f"LiteRT thread counts (default: {_default(configs.BenchmarkConfig, 'threads')}).")
    p.add_argument("--input-size", type=int, default=None,
                   help="One square input size for every model (default: 224; micro variants at their own).")
    p.add_argument("--classes", type=int, default=None, help="Classifier width (default: 1000, ImageNet).")
    p.add_argument("--data", default=None, help="int8 calibration images: a folder (its val/ split), 'default' or "
                                                "tfds:NAME (default: random uniform [0, 255] images).")
    p.add_argument("--calibration-count", type=int, default=None, help="Images for int8 calibration (default: 64).")
    p.add_argument("--accuracies", default=None, metavar="FILE",
                   help="JSON {model_name: top1} for the accuracy/latency plot; without it the plot is skipped.")
    p.add_argument("--out", default="benchmarks/results", help="Folder for peers.json, peers.md, peers.png.")
    p.add_argument("--from-json", default=None, metavar="FILE",
                   help="Rewrite the reports from an earlier run's peers.json without measuring anything.")
    return p


def cmd_benchmark(args):
    from attendnext_keras.experiments import benchmark, benchmark_report

    if args.list:
        print("\n".join(registry.list_models()))
        return
    _io.check_creatable_folder(args.out)  # before minutes of timing
    if args.from_json:
        result = _io.read_json(args.from_json, "Benchmark result")
        if not (isinstance(result, dict) and isinstance(result.get("models"), dict) and "settings" in result):
            raise ValueError(f"'{args.from_json}' is not an `attendnext benchmark` result (peers.json): it has no "
                             f"'models' and 'settings'.")
        paths = benchmark_report.write_reports(result, args.out, accuracies=args.accuracies)
    else:
        base = _load(args).benchmark if args.config else configs.BenchmarkConfig()
        cfg = _override(base, models=args.models, runs=args.runs, warmup=args.warmup, block=args.block,
                        threads=args.threads, input_size=args.input_size, classes=args.classes,
                        calibration_images=args.calibration_count, calibration_data=args.data)
        result = benchmark.run_benchmark(cfg, accuracies=args.accuracies, out_dir=args.out)
        paths = benchmark_report.write_reports(result, args.out)
        print(open(paths["md"], encoding="utf-8").read())
    for kind, path in paths.items():
        logger.info("wrote %s: %s", kind, path)


def add_explore_parser(sub):
    p = sub.add_parser("explore", help="Machine-driven design exploration: an Optuna search over AttendNeXt specs "
                                       "under the builder's rules and your limits, trained briefly on your data.")
    _config_arg(p)
    _data_args(p)
    fields = {f.name: f for f in dataclasses.fields(configs.ExploreConfig)}
    flags = {"study_name": str, "storage": str, "trials": int, "objective": str, "base_variant": str,
             "input_sizes": int, "epochs": int, "batch_size": int, "learning_rate": float, "max_params": int,
             "max_macs": int, "max_tflite_bytes": int, "max_arena_bytes": int, "max_latency_ms": float,
             "min_accuracy": float, "max_partitions": int, "test_split": str, "sampler": str, "reference": str,
             "latency_runs": int, "threads": int, "timeout": float, "max_proposals": int, "seed": int, "out_dir": str,
             "finalists": int, "finalist_protocol": str}
    aliases = {"out_dir": ["--out"], "base_variant": ["--variant"], "learning_rate": ["--lr"],
               "latency_runs": ["--runs"]}
    for name, kind in flags.items():
        nargs = "+" if name == "input_sizes" else None
        p.add_argument("--" + name.replace("_", "-"), *aliases.get(name, []), dest=name, type=kind, nargs=nargs,
                       default=None, help=f"explore.{name} (default: {_default(configs.ExploreConfig, name)}).")
    p.add_argument("--widths", type=float, nargs="+", default=None, help="explore.space.width_multipliers.")
    p.add_argument("--max-columns", type=int, default=None, help="explore.space.max_columns.")
    p.add_argument("--max-blocks", type=int, default=None, help="explore.space.max_blocks.")
    p.add_argument("--head-hidden", type=int, nargs="+", default=None, help="explore.space.head_hidden.")
    p.add_argument("--blur-sizes", type=int, nargs=2, default=None, metavar=("MIN", "MAX"),
                   help="explore.space.blur_sizes.")
    assert set(flags) <= set(fields)  # every flag is a config key
    return p


def cmd_explore(args):
    from attendnext_keras.experiments.explore import explore, finalists

    config = _apply_data_flags(_load(args), args)
    cfg = config.explore
    space = _override(cfg.space, width_multipliers=args.widths, max_columns=args.max_columns,
                      max_blocks=args.max_blocks, head_hidden=args.head_hidden, blur_sizes=args.blur_sizes)
    flags = {f.name: getattr(args, f.name, None) for f in dataclasses.fields(configs.ExploreConfig)
             if f.name != "space"}
    cfg = dataclasses.replace(_override(cfg, **flags), space=space)
    if cfg.storage and "://" not in cfg.storage:
        raise ValueError(f"--storage must be a database URL such as sqlite:///runs/explore/study.db. "
                         f"Received: {cfg.storage!r}")
    protocol = None
    if cfg.finalists:  # read and checked before the search
        study, recipe, data = (finalists.load_protocol(cfg.finalist_protocol, config.data) if cfg.finalist_protocol
                               else (config.study, config.train, config.data))
        protocol = (finalists.check_protocol(study, cfg), recipe, data)
        cfg = cfg.replace(builds_at=finalists.finalist_sizes(study, cfg))
    elif cfg.finalist_protocol:
        logger.warning("--finalist-protocol is not used: --finalists is 0 (no finalists to train).")
    result = explore(cfg, data=config.data)
    if result.winner is None:
        print("no feasible candidate yet: nothing reported as best (see the table for what each trial broke)")
        return
    print(f"best spec: {result.paths['spec']} (build it with attendnext_keras.create_model(path))")
    if protocol:
        study, recipe, data = protocol
        summary = finalists.run_finalists(result, cfg, study, recipe, data, verbose=int(sys.stderr.isatty()))
        print(finalists.describe(summary))


def add_explain_parser(sub):
    p = sub.add_parser("explain", help="Draw each DC-AC module's attention over photographs (Keras or .tflite model).")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="Image files.")
    p.add_argument("--model", required=True, help="A .keras, QAT .h5 or .tflite model.")
    p.add_argument("--out", default="runs/explain", help="Folder for the PNGs and attention.json (default: "
                                                         "runs/explain).")
    return p


def cmd_explain(args):
    from attendnext_keras.experiments.explain import explain

    for path in explain(args.images, args.model, args.out):
        print(f"wrote {path}")


def add_study_parser(sub):
    p = sub.add_parser("study", help="The proxy-accuracy study: models × seeds with one recipe, a test split nothing "
                                     "is selected on, latency, fronts, iso-accuracy, ablations, shift consistency.")
    _config_arg(p)
    _data_args(p)
    p.add_argument("--stage", choices=configs.STUDY_STAGES, default=None,
                   help=f"front (train the models), ablations (train the arms of --ablation-base), latency (time every "
                        f"studied model), report (rewrite the outputs), all (front, ablations, then latency; "
                        f"resumable like each of them) (default: "
                        f"{_default(configs.StudyConfig, 'stage')}).")
    p.add_argument("--models", nargs="+", default=None, metavar="NAME",
                   help="Front models: names from `attendnext models` or spec .json files (default: the AttendNeXt "
                        "variants, MobileNetV3-Large/Small at 1.0 and 0.75, MobileNetV2 at 1.0/0.75/0.5/0.35).")
    p.add_argument("--candidates", nargs="*", default=None, metavar="NAME",
                   help="Designs tried beside the front (names or spec .json files): trained and timed with it and "
                        "shown in its tables, but not counted in the family's goals (default: none; the flag alone "
                        "clears a config's list).")
    p.add_argument("--ablation-base", default=None, help="The AttendNeXt variant the ablations change (default: "
                                                         f"{_default(configs.StudyConfig, 'ablation_base')}).")
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="Seeds (default: 0 1 2).")
    p.add_argument("--input-size", type=int, default=None,
                   help=f"Training input size (default: {_default(configs.StudyConfig, 'input_size')}).")
    p.add_argument("--epochs", type=int, default=None,
                   help=f"Epochs per run (default: {_default(configs.StudyConfig, 'epochs')}).")
    p.add_argument("--test-split", default=None, help="A split reported only (default: test/ if the folder has one, "
                                                      "else the test half of --val-split).")
    p.add_argument("--recipe", default=None, metavar="FILE",
                   help="YAML/JSON training recipe (TrainConfig keys, or a run config's train section); default: the "
                        "config's train section.")
    p.add_argument("--out", default=None, help=f"Study folder (default: {_default(configs.StudyConfig, 'out_dir')}).")
    return p


def cmd_study(args):
    from attendnext_keras.experiments.study import run_study
    from attendnext_keras.experiments.study_report import write_report

    config = _apply_data_flags(_load(args), args)
    study = _override(config.study, stage=args.stage, models=args.models, candidates=args.candidates,
                      ablation_base=args.ablation_base, seeds=args.seeds, input_size=args.input_size,
                      epochs=args.epochs, test_split=args.test_split, out_dir=args.out)
    recipe = config.train
    if args.recipe:
        values = configs.load_mapping(args.recipe)
        recipe = configs.TrainConfig.from_file(args.recipe, section="train" if "train" in values else None)
    if study.stage == "report":
        paths = write_report(study.out_dir, study)
    else:  # progress bars only on a terminal: a study in the background logs one line per run
        run_study(study, config.data, recipe, verbose=int(sys.stderr.isatty()))
        paths = write_report(study.out_dir, study)
    print(open(paths["md"], encoding="utf-8").read())


# --------------------------------------------------------------------------------------------------------------------
# Entry point


def add_preset_parser(sub):
    p = sub.add_parser("preset", help="Trained models to load, share and fine-tune: list, show, save, upload.")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION",
                               help="list | show PRESET | save --model FILE --out DIR | upload PRESET HANDLE")
    actions.add_parser("list", help="The presets shipped with the package.")
    show = actions.add_parser("show", help="A preset's model card (classes, accuracy, recipe, size).")
    show.add_argument("preset", help="A shipped preset's name or a preset folder.")
    save = actions.add_parser("save", help="Save a trained float model (.keras from `attendnext train`) as a preset.")
    save.add_argument("--model", required=True, help="The trained .keras file.")
    save.add_argument("--out", required=True, help="The preset folder to write.")
    save.add_argument("--class-names", default=None, metavar="FILE",
                      help="JSON list of class names (default: class_names.json beside the model or one folder up, "
                           "as `attendnext train` writes it).")
    save.add_argument("--description", default="", help="One line for the model card.")
    save.add_argument("--metrics", default=None, metavar="FILE",
                      help="JSON object of measurements with a 'how' (e.g. {\"test_top1\": 0.8, \"how\": \"...\"}).")
    save.add_argument("--overwrite", action="store_true", help="Replace the preset in a non-empty folder.")
    upload = actions.add_parser("upload", help="Upload a preset folder to hf://[USER/]NAME or kaggle://... .")
    upload.add_argument("preset", help="The preset folder.")
    upload.add_argument("handle", help="hf://USER/NAME or kaggle://USER/MODEL/keras/VARIATION.")
    return p


def cmd_preset(args):
    from attendnext_keras import presets

    if args.action == "list":
        for name in presets.list_presets():
            info = presets.preset_info(name)
            print(f"{name:24s} {info.metadata.get('description', '')}")
    elif args.action == "show":
        info = presets.preset_info(args.preset)
        with open(os.path.join(info.path, "README.md"), encoding="utf-8") as f:
            print(f.read())
    elif args.action == "save":
        model = _load_classifier(args.model)
        names = (_io.read_json(args.class_names, what="Class names file") if args.class_names else
                 _class_names_for(args.model, int(model.outputs[0].shape[-1]), warn=False))
        if names is None:
            raise FileNotFoundError(f"No class names for '{args.model}': no class_names.json with one name per output "
                                    f"beside it or one folder up; pass --class-names FILE.")
        metrics = _io.read_json(args.metrics, what="metrics") if args.metrics else None
        folder = presets.save_preset(model, args.out, class_names=names, metrics=metrics,
                                     description=args.description, overwrite=args.overwrite)
        print(f"preset saved: {folder} (load it with attendnext_keras.from_preset({folder!r}))")
    else:
        print(f"uploaded: {presets.upload_preset(args.preset, args.handle)}")


COMMANDS = {
    "run": (add_run_parser, cmd_run), "train": (add_train_parser, cmd_train), "qat": (add_qat_parser, cmd_qat),
    "export": (add_export_parser, cmd_export), "evaluate": (add_evaluate_parser, cmd_evaluate),
    "predict": (add_predict_parser, cmd_predict), "micro": (add_micro_parser, cmd_micro),
    "models": (add_models_parser, cmd_models), "profile": (add_profile_parser, cmd_profile),
    "benchmark": (add_benchmark_parser, cmd_benchmark), "explore": (add_explore_parser, cmd_explore),
    "study": (add_study_parser, cmd_study), "explain": (add_explain_parser, cmd_explain),
    "preset": (add_preset_parser, cmd_preset),
}


class _Parser(argparse.ArgumentParser):
    """argparse with its errors on one line, naming the command and where its help is (argparse's own prints the
    whole usage block first)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser():
    parser = _Parser(
        prog="attendnext", description="AttendNeXt for Keras: build, train, quantize (QAT), export to int8 TFLite, "
                                       "run on LiteRT and TensorFlow Lite Micro. `attendnext run` is the main job.")
    parser.add_argument("--verbose", action="store_true",
                        help="Show TensorFlow's start-up messages and debug logs (hidden by default).")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (add_parser, command) in COMMANDS.items():
        add_parser(sub).set_defaults(func=command)
    return parser


def setup_logging(verbose: bool = False) -> None:
    """Our notices (skipped images, fallbacks, progress) on stderr through `logging`, where PYTHONWARNINGS cannot
    hide them; TensorFlow's C++ start-up chatter (oneDNN, CUDA probing) off unless `verbose`."""
    if not verbose:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"  # read when TensorFlow loads, which no command has done yet
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s" if verbose else "%(message)s"))
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    logger.propagate = False
    for name in ("tensorflow", "absl", "h5py", "matplotlib"):
        logging.getLogger(name).setLevel(logging.INFO if verbose else logging.ERROR)


def start_tensorflow_quietly() -> None:
    """Imports TensorFlow and Keras and initialises the devices with file descriptor 2 captured: their C++ start-up
    lines (oneDNN notice, "Could not find cuda drivers", "failed call to cuInit") bypass every logging setting. What
    was captured is printed if the start fails."""
    with _io.native_stderr_captured():
        import keras  # noqa: F401
        import tensorflow as tf

        tf.config.list_physical_devices()


WITHOUT_TENSORFLOW = ("predict", "models")


def main(argv=None):
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose)
    if not args.verbose and args.command not in WITHOUT_TENSORFLOW:
        start_tensorflow_quietly()
    try:
        args.func(args)
    except ConfigError as error:
        print(f"attendnext {args.command}: config error: {error}", file=sys.stderr)
        return 2
    except USER_ERRORS as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        if isinstance(error, OSError) and error.errno == errno.ENOSPC and not isinstance(error, _io.DiskFullError):
            message = f"no space left on the device while writing {error.filename or 'the outputs'}"
        print(f"attendnext {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"attendnext {args.command}: interrupted (a training run continues with --resume)", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

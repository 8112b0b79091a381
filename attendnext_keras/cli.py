"""The `attendnext` command line. Each subcommand is a thin call into a library function; `attendnext run` is the
main job (attendnext_keras.pipeline). Errors a user can fix end with one line and exit code 2."""

from __future__ import annotations

import argparse
import json
import os
import sys


def _variants():
    from attendnext_keras.specs import list_variants

    return list_variants()


# --- model-building commands ---------------------------------------------------------------------------------


def cmd_variants(args):
    from attendnext_keras.specs import get_spec, summarize_spec

    for name in _variants():
        print(summarize_spec(get_spec(name)) if args.verbose else f"{name:8} {get_spec(name).description}")


def _build(args):
    """The model and the spec it was built from (with --alpha and --input-size applied)."""
    from attendnext_keras.models import AttendNeXt, _resolve_spec

    spec = _resolve_spec(args.variant, None, args.alpha, None, None)
    if args.input_size:
        spec = spec.replace(input_size=args.input_size)
    return AttendNeXt(spec=spec, classes=args.classes, classifier_activation=None), spec


def cmd_profile(args):
    from attendnext_keras.profiling import profile
    from attendnext_keras.specs import summarize_spec

    model, spec = _build(args)
    result = profile(model)
    if args.json:
        print(json.dumps(result.as_dict(), indent=1))
        return
    print(summarize_spec(spec))
    print(result.table(per_layer=args.per_layer))


# --- training ------------------------------------------------------------------------------------------------


def _train_config(args, qat=False):
    from attendnext_keras.training import TrainConfig

    values = TrainConfig.from_file(args.config).to_dict() if args.config else {}
    for flag, key in (("epochs", "epochs"), ("batch_size", "batch_size"), ("lr", "learning_rate"),
                      ("optimizer", "optimizer"), ("seed", "seed"), ("bn_momentum", "bn_momentum")):
        if getattr(args, flag, None) is not None:
            values[key] = getattr(args, flag)
    return TrainConfig.qat(**values) if qat else TrainConfig(**values)


def _datasets(args, size, batch_size, seed, mixup=0.0):
    from attendnext_keras import data

    train_source = data.load_source(args.data, args.train_split, args.data_dir)
    val_source = data.load_source(args.data, args.val_split, args.data_dir)
    train_ds = data.make_dataset(train_source, size, batch_size, training=True, seed=seed, mixup=mixup,
                                 crop_scale=(args.crop_scale_min, 1.0))
    val_ds = data.make_dataset(val_source, size, batch_size, training=False)
    return train_source, train_ds, val_ds


def _read_tflite(path):
    """(flatbuffer, input height and width) of a .tflite file, with clear errors for a missing or foreign file."""
    from attendnext_keras.runtime import check_tflite, load_interpreter

    if not os.path.exists(path):
        raise FileNotFoundError(f"Model file '{path}' does not exist.")
    with open(path, "rb") as f:
        blob = check_tflite(f.read())
    size = tuple(int(d) for d in load_interpreter(blob, xnnpack=False).get_input_details()[0]["shape"][1:3])
    return blob, size


def _model_size(model):
    shape = model.inputs[0].shape
    if shape[1] is None or shape[1] != shape[2]:
        raise ValueError(f"Expected a model with a square, fixed input size. Received input shape {tuple(shape)}")
    return int(shape[1])


def _save_class_names(out_dir, names):
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "class_names.json"), "w", encoding="utf-8") as f:
        json.dump(names, f)


def _class_names_for(model_path, classes):
    """class_names.json written by `attendnext train` beside the model (or one folder up), if any."""
    folder = os.path.dirname(os.path.abspath(model_path))
    for candidate in (folder, os.path.dirname(folder)):
        path = os.path.join(candidate, "class_names.json")
        if os.path.exists(path):
            names = json.load(open(path, encoding="utf-8"))
            if len(names) == classes:
                return names
    return None


def cmd_train(args):
    from attendnext_keras.models import AttendNeXt, _resolve_spec
    from attendnext_keras.training import configure_mixed_precision, make_strategy, train

    strategy = make_strategy(args.strategy)  # first: multi-worker collectives must be set up before other ops
    config = _train_config(args)
    flavour = "tf_keras" if type(strategy).__name__.startswith("MultiWorker") else "keras"
    configure_mixed_precision(config.mixed_precision, flavour)
    spec = _resolve_spec(args.variant, None, args.alpha, None, None)
    size = args.input_size or spec.input_size
    spec = spec.replace(input_size=size)
    source, train_ds, val_ds = _datasets(args, size, config.batch_size, config.seed, args.mixup)
    _save_class_names(args.out, source.class_names)
    result = train(lambda: AttendNeXt(spec=spec, input_shape=(size, size, 3), classes=len(source.class_names),
                                      classifier_activation=None, keras=flavour),
                   train_ds, val_ds, config, out_dir=args.out, resume=args.resume, strategy=strategy)
    if result.history.get("val_accuracy"):
        print(f"val top-1 {result.history['val_accuracy'][-1]:.1%} after {config.epochs} epochs")
    print(f"final model: {result.final_path}; best: {result.best_path}")


def cmd_qat(args):
    from attendnext_keras.models import load_model
    from attendnext_keras.quantization import fine_tune

    model = load_model(args.model)
    config = _train_config(args, qat=True)
    source, train_ds, val_ds = _datasets(args, _model_size(model), config.batch_size, config.seed)
    _save_class_names(args.out, source.class_names)
    result = fine_tune(model, train_ds, val_ds, config, out_dir=args.out, resume=args.resume)
    if result.history.get("val_accuracy"):
        print(f"QAT val top-1 {result.history['val_accuracy'][-1]:.1%}")
    print(f"QAT model: {result.final_path} (export it with: attendnext export --model {result.final_path} "
          f"--mode int8)")


def cmd_evaluate(args):
    from attendnext_keras import data

    if args.model.endswith(".tflite"):
        from attendnext_keras.pipeline import evaluate_tflite

        blob, (size, _) = _read_tflite(args.model)
        evaluate_fn = lambda ds: evaluate_tflite(blob, ds)  # noqa: E731
    else:
        from attendnext_keras.models import load_model
        from attendnext_keras.training import evaluate

        model = load_model(args.model)
        size = _model_size(model)
        evaluate_fn = lambda ds: evaluate(model, ds)  # noqa: E731
    source = data.load_source(args.data, args.split, args.data_dir)
    result = evaluate_fn(data.make_dataset(source, size, args.batch_size, training=False))
    print(json.dumps(result) if args.json else
          f"{args.model}: top-1 {result['top1']:.2%} on {result['examples']} images ({args.data}, {args.split})")


# --- deployment ----------------------------------------------------------------------------------------------


def cmd_export(args):
    from attendnext_keras.export import export
    from attendnext_keras.models import load_model

    model = load_model(args.model)
    size = _model_size(model)
    representative = None
    if args.mode == "int8-ptq":
        from attendnext_keras import data

        if not args.data:
            raise ValueError("--mode int8-ptq calibrates on real images: give --data (an image folder, 'default' "
                             "or tfds:NAME).")
        representative = data.representative_images(data.load_source(args.data, args.split, args.data_dir), size,
                                                    count=args.calibration_images)
    classes = int(model.outputs[0].shape[-1])
    names = _class_names_for(args.model, classes)
    result = export(model, args.out, args.mode, representative_data=representative, class_names=names,
                    int8_io=not args.float_io, strict=args.strict)
    print(result.report.summary())
    print(f"wrote {result.path} and {result.metadata_path}")


def cmd_predict(args):
    from attendnext_keras.runtime import Predictor, format_predictions

    predictor = Predictor(args.model, num_threads=args.threads)
    predictions = predictor.predict(args.images, top_k=args.top_k)
    print(format_predictions(args.images, predictions, as_json=args.json))


def cmd_micro(args):
    from attendnext_keras import data
    from attendnext_keras.export import load_metadata
    from attendnext_keras.micro import compare_ops_with_litert, compare_with_litert, write_c_sources

    blob, size = _read_tflite(args.model)
    images = data.representative_images(data.load_source(args.data, args.split, args.data_dir), size,
                                        count=args.images)
    result = compare_with_litert(blob, images)
    os.makedirs(args.out_dir, exist_ok=True)
    paths = write_c_sources(blob, args.out_dir, args.name, metadata=load_metadata(args.model),
                            arena_bytes=result["arena_bytes"])
    print(f"TFLite Micro arena: {result['arena_bytes']:,} bytes")
    print(f"TFLM vs LiteRT on {result['images']} images: ≤ {result['max_lsb_vs_litert_reference']} LSB (reference "
          f"kernels), ≤ {result['max_lsb_vs_xnnpack']} LSB (XNNPACK), top-1 agreement {result['top1_agreement']:.0%}")
    if args.per_op:
        own = {}
        for row in compare_ops_with_litert(blob, images):
            if row["max_lsb_equal_inputs"] is not None:
                count, worst = own.get(row["op"], (0, 0))
                own[row["op"]] = (count + 1, max(worst, row["max_lsb_equal_inputs"]))
        print("Each op's own difference (TFLM vs LiteRT built-in kernels, on bit-identical inputs):")
        for op, (count, worst) in sorted(own.items()):
            print(f"  {op:<24} {count:>4} ops  ≤ {worst} LSB")
    print("wrote " + ", ".join(paths.values()))


def cmd_benchmark(args):
    from attendnext_keras.benchmark import run_from_args

    run_from_args(args)


def cmd_run(args):
    from attendnext_keras.pipeline import PipelineConfig, run

    run(PipelineConfig(data=args.data, train_split=args.train_split, val_split=args.val_split,
                       data_dir=args.data_dir, variant=args.variant, input_size=args.input_size, alpha=args.alpha,
                       epochs=args.epochs, qat_epochs=args.qat_epochs, batch_size=args.batch_size,
                       learning_rate=args.lr, bn_momentum=args.bn_momentum, crop_scale_min=args.crop_scale_min,
                       seed=args.seed, out_dir=args.out, latency_runs=args.runs,
                       threads=args.threads, micro=not args.no_micro, resume=args.resume))


def cmd_explore(args):
    from attendnext_keras.explore import SearchSpace, explore

    space = SearchSpace(**{key: value for key, value in (
        ("width_multipliers", tuple(args.widths) if args.widths else None), ("max_columns", args.max_columns),
        ("max_blocks", args.max_blocks), ("head_hidden", tuple(args.head_hidden) if args.head_hidden else None),
        ("blur_sizes", tuple(args.blur_sizes) if args.blur_sizes else None)) if value is not None})
    result = explore(data=args.data, train_split=args.train_split, val_split=args.val_split, data_dir=args.data_dir,
                     study_name=args.study_name, storage=args.storage, n_trials=args.trials,
                     objective=args.objective, base_variant=args.variant, input_sizes=tuple(args.input_sizes),
                     epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr,
                     max_params=args.max_params, max_macs=args.max_macs, max_tflite_bytes=args.max_tflite_bytes,
                     max_arena_bytes=args.max_arena_bytes, max_latency_ms=args.max_latency_ms,
                     min_accuracy=args.min_accuracy, out_dir=args.out, seed=args.seed, timeout=args.timeout,
                     space=space, sampler=args.sampler, reference=args.reference, latency_runs=args.runs,
                     threads=args.threads, max_proposals=args.max_proposals)
    if result.winner is None:
        print("no feasible candidate yet: nothing reported as best (see the table for what each trial broke)")
    else:
        print(f"best spec: {result.paths['spec']} (build it with AttendNeXt(spec=load_spec(path)))")


# --- parser --------------------------------------------------------------------------------------------------


def build_parser():
    parser = argparse.ArgumentParser(
        prog="attendnext", description="AttendNeXt for Keras: build, train, quantize (QAT), export to int8 TFLite, "
                                       "run on LiteRT and TensorFlow Lite Micro. `attendnext run` is the main job.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def model_args(p, input_default=None):
        p.add_argument("--variant", default="micro", choices=_variants(), help="Registered variant to build.")
        p.add_argument("--input-size", type=int, default=input_default,
                       help="Square input size in pixels, a multiple of 32 (default: the variant's own"
                            + (f", here {input_default}" if input_default else "") + ").")
        p.add_argument("--alpha", type=float, default=None, help="Width multiplier on top of the variant's width.")

    def data_args(p, split=False):
        p.add_argument("--data", default="default",
                       help="'default' (photographs embedded in the package), an image folder with <split>/<class>/ "
                            "sub-folders, or tfds:NAME for a TensorFlow Datasets name.")
        p.add_argument("--data-dir", default=None, help="TensorFlow Datasets data_dir (where prepared datasets live).")
        if split:
            p.add_argument("--split", default="val", help="Split to read (default: val).")
        else:
            p.add_argument("--train-split", default="train", help="Training split (default: train).")
            p.add_argument("--val-split", default="val",
                           help="Held-out split (default: val; TFDS sets often call it 'validation' or 'test').")

    def train_args(p):
        p.add_argument("--config", default=None, help="YAML or JSON file of TrainConfig settings; flags override it.")
        p.add_argument("--epochs", type=int, default=None, help="Epochs (default: the config's or the recipe's).")
        p.add_argument("--batch-size", type=int, default=None, help="Global batch size.")
        p.add_argument("--lr", type=float, default=None, help="Peak learning rate of the cosine schedule.")
        p.add_argument("--optimizer", choices=("adamw", "sgd"), default=None, help="Optimizer.")
        p.add_argument("--seed", type=int, default=None, help="Seed for initialisation, shuffling and augmentation.")
        p.add_argument("--resume", action="store_true", help="Continue from the newest checkpoint in --out.")
        p.add_argument("--bn-momentum", type=float, default=None,
                       help="BatchNorm moving-average momentum (Keras default 0.99; ~0.9 for short runs).")
        p.add_argument("--crop-scale-min", type=float, default=0.25,
                       help="Smallest area fraction of the random resized crop (ImageNet recipes use 0.08).")

    p = sub.add_parser("variants", help="List the registered AttendNeXt variants.")
    p.add_argument("-v", "--verbose", action="store_true", help="Print each variant's full layout.")
    p.set_defaults(func=cmd_variants)

    p = sub.add_parser("profile", help="Parameters, MACs and activation memory per stage (and per layer).")
    model_args(p)
    p.add_argument("--classes", type=int, default=1000, help="Number of classes of the classifier head.")
    p.add_argument("--per-layer", action="store_true", help="Also list every layer.")
    p.add_argument("--json", action="store_true", help="Print the profile as JSON instead of a table.")
    p.set_defaults(func=cmd_profile)

    p = sub.add_parser("run", help="The main job: train, QAT, export float32/int8, evaluate each, run on TFLM, "
                                   "summarise (a few minutes on the embedded data).")
    data_args(p)
    model_args(p, input_default=64)
    p.add_argument("--epochs", type=int, default=30, help="Float training epochs.")
    p.add_argument("--qat-epochs", type=int, default=3, help="Quantization-aware fine-tuning epochs.")
    p.add_argument("--batch-size", type=int, default=32, help="Batch size.")
    p.add_argument("--lr", type=float, default=3e-3, help="Peak learning rate of float training (AdamW, cosine).")
    p.add_argument("--bn-momentum", type=float, default=0.9, help="BatchNorm moving-average momentum.")
    p.add_argument("--crop-scale-min", type=float, default=0.25,
                   help="Smallest area fraction of the random resized crop.")
    p.add_argument("--seed", type=int, default=0, help="Seed for initialisation, shuffling and augmentation.")
    p.add_argument("--out", default="runs/main", help="Output folder.")
    p.add_argument("--runs", type=int, default=50, help="Timed LiteRT invocations per format.")
    p.add_argument("--threads", type=int, default=1, help="LiteRT threads for the latency figures.")
    p.add_argument("--no-micro", action="store_true", help="Skip TensorFlow Lite Micro (evaluation and C sources).")
    p.add_argument("--resume", action="store_true", help="Continue interrupted training runs in --out.")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("train", help="Train a float AttendNeXt (checkpoints every epoch, --resume, tf.distribute).")
    data_args(p)
    model_args(p)
    train_args(p)
    p.add_argument("--mixup", type=float, default=0.0, help="Mixup Beta parameter (0 disables; 0.2 is common).")
    p.add_argument("--strategy", default="auto", choices=("auto", "default", "mirrored", "multiworker", "tpu"),
                   help="tf.distribute strategy; 'auto' picks TPU, multi-worker (TF_CONFIG), several GPUs or one "
                        "device. Multi-worker training builds the tf-keras flavour of the model.")
    p.add_argument("--out", default="runs/train", help="Output folder (checkpoints, best/final model, logs).")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("qat", help="Quantization-aware fine-tuning of a trained float model (.keras).")
    p.add_argument("--model", required=True, help="Float model file (.keras from `attendnext train`).")
    data_args(p)
    train_args(p)
    p.add_argument("--out", default="runs/qat", help="Output folder (checkpoints, best/final QAT model .h5).")
    p.set_defaults(func=cmd_qat)

    p = sub.add_parser("export", help="Convert a model to .tflite plus metadata JSON, with a conversion report.")
    p.add_argument("--model", required=True, help="Model file: .keras (float) or .h5 (QAT, for --mode int8).")
    p.add_argument("--mode", default="int8", choices=("float32", "float16", "dynamic", "int8", "int8-ptq"),
                   help="int8 needs a QAT model; int8-ptq calibrates a float model on --data.")
    p.add_argument("--out", required=True, help="Output .tflite path (the metadata .json goes beside it).")
    data_args(p, split=True)
    p.add_argument("--calibration-images", type=int, default=200, help="Images for int8-ptq calibration.")
    p.add_argument("--float-io", action="store_true", help="Keep float32 input/output on int8 models.")
    p.add_argument("--strict", action="store_true",
                   help="Fail (write nothing) when the report finds float ops, several partitions or TFLM gaps.")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("evaluate", help="Top-1 accuracy of a .keras, .h5 or .tflite model on a data split.")
    p.add_argument("--model", required=True, help="Model file (.keras, .h5 or .tflite with its metadata JSON).")
    data_args(p, split=True)
    p.add_argument("--batch-size", type=int, default=32, help="Batch size of the evaluation pipeline.")
    p.add_argument("--json", action="store_true", help="Print the result as JSON.")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("predict", help="Top-k labels for images with a .tflite model (LiteRT, no TensorFlow).")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="Image files (JPEG, PNG, BMP, GIF).")
    p.add_argument("--model", required=True, help=".tflite model (its metadata .json beside it gives labels and "
                                                  "preprocessing).")
    p.add_argument("--top-k", type=int, default=5, help="Labels to show per image.")
    p.add_argument("--threads", type=int, default=1, help="LiteRT threads.")
    p.add_argument("--json", action="store_true", help="Print JSON instead of a table.")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("micro", help="Run an int8 .tflite on TensorFlow Lite Micro: arena, agreement with LiteRT, "
                                     "C sources for a microcontroller project.")
    p.add_argument("--model", required=True, help="int8 .tflite model.")
    data_args(p, split=True)
    p.add_argument("--images", type=int, default=16, help="Images to compare TFLM and LiteRT on.")
    p.add_argument("--per-op", action="store_true", help="Also compare op by op and print, per op type, how far "
                   "TFLM's output differs from LiteRT's when the op's inputs are bit-identical (its own rounding).")
    p.add_argument("--out-dir", default="tflite/models/attendnext_model", help="Folder for the .h/.cc files.")
    p.add_argument("--name", default="attendnext_model", help="C identifier for the array and the namespace.")
    p.set_defaults(func=cmd_micro)

    p = sub.add_parser("explore", help="Machine-driven design exploration: an Optuna search over AttendNeXt specs "
                                       "under the builder's rules and your limits, trained briefly on your data.")
    data_args(p)
    p.add_argument("--study-name", default="attendnext-explore", help="Optuna study name (resumed if it exists).")
    p.add_argument("--storage", default="sqlite:///runs/explore/study.db",
                   help="Optuna storage URL: SQLite by default; a PostgreSQL/MySQL URL lets several machines share "
                        "the study. Finished trials survive an interruption; run again to resume.")
    p.add_argument("--trials", type=int, default=20,
                   help="Candidates to train and measure in this run (specs the rules reject cost nothing and do "
                        "not count); 0 rewrites the reports from the storage.")
    p.add_argument("--objective", default="netscore", choices=("netscore", "pareto", "pareto-size"),
                   help="netscore: maximise NetScore (int8 top-1, params, MACs); pareto: int8 top-1 against latency "
                        "relative to the reference; pareto-size: and int8 .tflite size.")
    p.add_argument("--variant", default="micro", choices=_variants(), help="Base variant the search space derives "
                                                                           "from (stem, stages, widths).")
    p.add_argument("--input-sizes", type=int, nargs="+", default=[64], help="Input sizes to choose from "
                                                                            "(multiples of 32).")
    p.add_argument("--epochs", type=int, default=3, help="Proxy training epochs per candidate.")
    p.add_argument("--batch-size", type=int, default=32, help="Batch size of proxy training.")
    p.add_argument("--lr", type=float, default=3e-3, help="Peak learning rate of proxy training.")
    p.add_argument("--max-params", type=int, default=None, help="Limit on parameters (checked before training).")
    p.add_argument("--max-macs", type=int, default=None, help="Limit on MACs (checked before training).")
    p.add_argument("--max-tflite-bytes", type=int, default=None, help="Limit on the int8 .tflite size in bytes.")
    p.add_argument("--max-arena-bytes", type=int, default=None, help="Limit on the TensorFlow Lite Micro arena.")
    p.add_argument("--max-latency-ms", type=float, default=None,
                   help="Limit on median int8 LiteRT latency, measured on this machine in the exploring process.")
    p.add_argument("--min-accuracy", type=float, default=None, help="Floor on int8 top-1 after proxy training, "
                                                                    "a fraction (0.6 = 60%%).")
    p.add_argument("--widths", type=float, nargs="+", default=None,
                   help="Width multipliers on the base variant's width to choose from (default 0.75 1.0 1.25 1.5).")
    p.add_argument("--max-columns", type=int, default=None, help="Most parallel columns per stage (default 3).")
    p.add_argument("--max-blocks", type=int, default=None,
                   help="Most depth-wise separable blocks per column (default: the base stage's count).")
    p.add_argument("--head-hidden", type=int, nargs="+", default=None,
                   help="Hidden widths of the classifier head to choose from, 0 for none (default 0 256 512).")
    p.add_argument("--blur-sizes", type=int, nargs=2, default=None, metavar=("MIN", "MAX"),
                   help="Range of AADS blur filter sizes (default 2 5).")
    p.add_argument("--sampler", default="tpe", choices=("tpe", "nsga2", "random"),
                   help="Optuna sampler: TPE (default; constrained, multi-objective), NSGA-II or random.")
    p.add_argument("--reference", default="micro", choices=_variants(),
                   help="Variant whose int8 model is timed beside every candidate (latency ratios).")
    p.add_argument("--runs", type=int, default=50, help="Timed LiteRT runs per candidate (and reference).")
    p.add_argument("--threads", type=int, default=1, help="LiteRT threads for latency.")
    p.add_argument("--timeout", type=float, default=None, help="Stop starting trials after this many seconds.")
    p.add_argument("--max-proposals", type=int, default=None,
                   help="Stop after this many proposals even if fewer candidates trained (default 20 × --trials).")
    p.add_argument("--seed", type=int, default=0, help="Seed of the sampler, data and training.")
    p.add_argument("--out", default="runs/explore", help="Output folder (results.md, plots, best_spec.json, "
                                                         "winner/, trials/).")
    p.set_defaults(func=cmd_explore)

    p = sub.add_parser("benchmark", help="AttendNeXt against its peers: size, MACs, LiteRT latency, partitions, "
                                         "ratios, Figure-3-style plot.")
    from attendnext_keras.benchmark import add_arguments

    add_arguments(p, default_out="benchmarks/results")
    p.set_defaults(func=cmd_benchmark)
    return parser


def main(argv=None):
    from attendnext_keras._keras import quiet_tensorflow

    quiet_tensorflow()
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (ValueError, FileNotFoundError, PermissionError, IsADirectoryError, RuntimeError) as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        print(f"attendnext {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"attendnext {args.command}: interrupted (a training run continues with --resume)", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Design exploration on real photographs: what a constrained search finds against the hand-designed variants.

1. Screening: `attendnext_keras.experiments.explore.explore` on an image folder (default flowers160) at a small
   resolution: `--trials` candidates from the `micro` space, each trained for `--epochs` (the cheap proxy budget),
   converted to int8 and timed beside the `micro` reference; the objective is the accuracy–latency Pareto front
   (`--objective`), under one XNNPACK partition. Candidates are scored and chosen on the *selection half* of the
   validation split; the *test half* is never used to choose. The search lives in `<out>/explore/study.db`
   (committed with the results, so that a fresh checkout resumes it too): `--trials` is the search's total, and a
   rerun after an interruption trains only the candidates still missing.
2. The hand-designed AttendNeXt `micro` and `base` and keras.applications MobileNetV3-Small, trained with the same
   proxy budget, input size, seed and data halves (the search's `Evaluator`), converted the same way.
3. For the winner and every baseline: int8 top-1 on the test half next to the selection-half score (the winner's
   selection score is biased upwards by the choice; its test score is not), and the float32 TFLite model of the
   same trained weights beside the int8 one. Every model is timed again in both formats, interleaved in one LiteRT
   process, so that the latencies compare as ratios: int8 against int8, and each model's best format (float32 or
   int8, whichever is faster here) against the others' best.
4. The decision: `--finalists` trials spread along the front trained again with the full protocol of `--protocol`
   (the study's recipe, input size, epochs and seeds) beside `micro`, timed at micro's deployment size
   (`experiments.explore.finalists`, resumable, in `<out>/explore/finalists/`); the finalist with the best mean
   selection-half accuracy is chosen, its test accuracy reported.

    python benchmarks/bench_explore.py --data ../shared/data/flowers160 --size 64 --trials 12 --epochs 5

Screening is sized for under an hour on 2 CPU cores (a NetScore search with the command above took 29 min on
2026-11-25: 12 trained candidates, baselines 8 min); the finalists take what the study takes for as many models
(30 epochs × 3 seeds at 96 px: about 20 minutes per micro-sized model here, from the study's `micro` runs).
`--timeout` stops the search from starting new trials (default 35 minutes). Writes results/explore_bench.json and results/explore_bench.md (atomically, with the
command, date and machine: `provenance.machine_info()`); the search's own table, plots, best_spec.json and winner
report are in <out>/explore/.
"""

from __future__ import annotations

import argparse
import functools
import os
import pathlib
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

BASELINES = ("attendnext_micro", "attendnext_base", "mobilenet_v3_small")
REFERENCE = "reference micro (random weights)"
FORMATS = ("float32", "int8")


def _display_name(name):
    from attendnext_keras import registry

    if name not in registry.list_models():
        return name
    info = registry.model_info(name)
    kind = "hand-designed" if info.family == "attendnext" else "keras.applications"
    return f"{info.display_name} ({kind})"


def _float32_blob(tflite_path, rebuild):
    """The float32 flatbuffer of the model trained beside `tflite_path` (`<dir>/train/final.keras`), or of
    `rebuild()` (random weights: enough for latency, not for accuracy) when that file is gone; and its source."""
    from attendnext_keras.deploy.conversion import to_tflite
    from attendnext_keras.saving import load_model

    trained = os.path.join(os.path.dirname(tflite_path), "train", "final.keras")
    if os.path.exists(trained):
        return to_tflite(load_model(trained), "float32"), trained
    return to_tflite(rebuild(), "float32"), None


def _row(name, metrics, stats, reference):
    """One table row: accuracy on both halves, sizes, and latency per format with ratios to the reference."""
    from attendnext_keras.experiments.explore import netscore_of

    int8 = stats[(name, "int8")]["median"]
    f32 = stats[(name, "float32")]["median"]
    best = "int8" if int8 <= f32 else "float32"
    ref_int8 = stats[(reference, "int8")]["median"]
    ref_best = min(stats[(reference, fmt)]["median"] for fmt in FORMATS)
    test = metrics.get("test_top1")
    return {"model": name, "display_name": _display_name(name), "params": metrics["params"], "macs": metrics["macs"],
            "top1_selection": metrics["top1"], "top1_test": test,
            "float_top1_selection": metrics.get("float_top1"),
            "float32_tflite_top1_test": metrics.get("float32_top1_test"),
            "tflite_bytes": metrics["tflite_bytes"], "float32_tflite_bytes": metrics.get("float32_tflite_bytes"),
            "arena_bytes": metrics.get("arena_bytes"), "partitions": metrics.get("partitions"),
            "float32_partitions": metrics.get("float32_partitions"),
            "latency_ms": {"int8": int8, "float32": f32, "best": min(int8, f32)}, "best_format": best,
            "ratio_to_micro": {"int8": int8 / ref_int8, "best": min(int8, f32) / ref_best},
            "netscore_selection": netscore_of(metrics),
            "netscore_test": None if test is None else netscore_of({**metrics, "top1": test}),
            "float32_weights": metrics.get("float32_weights")}


def _markdown(rows, settings, machine, reference):
    from attendnext_keras.experiments.reports import provenance_lines

    def pct(x):
        return "—" if x is None else f"{x:.1%}"

    def num(x, fmt):
        return "—" if x is None else fmt.format(x)

    lines = [*provenance_lines(machine),
             f"Proxy budget: {settings['epochs']} epoch(s) at {settings['size']} px on {settings['data']} "
             f"(seed {settings['seed']}); int8 by post-training quantization, float32 from the same trained weights; "
             f"LiteRT + XNNPACK, {settings['threads']} thread(s), {settings['runs']} interleaved runs per model and "
             f"format, median. Top-1 on the validation split's two halves: *selection* (what the search scored and "
             f"chose on) and *test* ({settings['test_images']} images, never used to choose). Ratios are to "
             f"{_display_name(reference)}: int8 to its int8, best to its best format.", "",
             "| model | params | MACs | int8 top-1 (test) | int8 top-1 (selection) | float32 top-1 (test) | "
             "int8 KiB | TFLM arena KiB | partitions (int8 / fp32) | int8 ms | float32 ms | best | int8 × micro | "
             "best × micro | NetScore (test) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lat = r["latency_ms"]
        lines.append(
            f"| {r['display_name']} | {r['params']:,} | {r['macs']:,} | {pct(r['top1_test'])} | "
            f"{pct(r['top1_selection'])} | {pct(r['float32_tflite_top1_test'])} | {r['tflite_bytes'] / 1024:.1f} | "
            f"{num(r['arena_bytes'] and r['arena_bytes'] / 1024, '{:.1f}')} | "
            f"{r['partitions']} / {num(r['float32_partitions'], '{}')} | {lat['int8']:.3f} | {lat['float32']:.3f} | "
            f"{r['best_format']} {lat['best']:.3f} | {r['ratio_to_micro']['int8']:.2f} | "
            f"{r['ratio_to_micro']['best']:.2f} | {num(r['netscore_test'], '{:.1f}')} |")
    random = [r["display_name"] for r in rows if r.get("float32_weights") == "random"]
    if random:
        lines += ["", f"float32 of {', '.join(random)}: random weights (the trained model file was gone), so its "
                      f"float32 top-1 is not reported; its latency is unaffected."]
    return "\n".join(lines)


def _finalists_section(summary) -> str:
    """The finalists trained with the full protocol: what decides, where the screening above only proposes."""
    if not summary:
        return ""
    from attendnext_keras.experiments.explore import finalists

    study_md = os.path.join(os.path.dirname(summary["chosen_spec"]), "study.md")
    return ("\n\n## Finalists under the full protocol\n\nThe study's recipe, input size, epochs and seeds for each "
            "finalist and the hand-designed variant; chosen on the selection half, the test half reported only "
            f"(latency, fronts and paired statistics: `{study_md}`).\n\n" + finalists.describe(summary))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(HERE.parent.parent / "shared" / "data" / "flowers160"),
                        help="Image folder with train/ and val/ ('default': the embedded photographs) "
                             "(default: ../shared/data/flowers160).")
    parser.add_argument("--size", type=int, default=64, help="Input size of every model (default: 64).")
    parser.add_argument("--trials", type=int, default=12, help="Candidates to train in the search (default: 12).")
    parser.add_argument("--epochs", type=int, default=5, help="Proxy training epochs of every model (default: 5).")
    parser.add_argument("--batch-size", type=int, default=32, help="Batch size (default: 32).")
    parser.add_argument("--objective", default="pareto", choices=("netscore", "pareto", "pareto-size"),
                        help="Search objective (default: pareto).")
    parser.add_argument("--finalists", type=int, default=3,
                        help="Trials along the front trained again with the full protocol (default: 3; 0: none).")
    parser.add_argument("--protocol", default=str(HERE.parent / "attendnext_keras" / "configs" /
                                                  "study_flowers160.yaml"),
                        help="Config file whose train and study sections are the full protocol (default: "
                             "attendnext_keras/configs/study_flowers160.yaml).")
    parser.add_argument("--timeout", type=float, default=2100,
                        help="Seconds after which the search starts no new trial (default: 2100).")
    parser.add_argument("--baselines", nargs="*", default=list(BASELINES),
                        help=f"Models trained with the same budget for comparison (default: {' '.join(BASELINES)}).")
    parser.add_argument("--runs", type=int, default=100, help="Interleaved timed runs per model and format at the end.")
    parser.add_argument("--threads", type=int, default=1, help="LiteRT threads (default: 1).")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the search, data and training.")
    parser.add_argument("--out", default=str(HERE / "results"), help="Output folder (default: benchmarks/results).")
    args = parser.parse_args(argv)

    from attendnext_keras import cli

    cli.setup_logging()  # the package's notices and progress on stderr, as `attendnext` shows them

    from attendnext_keras import _io, provenance
    from attendnext_keras.config import DataConfig, ExploreConfig
    from attendnext_keras.deploy import litert
    from attendnext_keras.deploy.conversion import to_tflite
    from attendnext_keras.experiments.benchmark import build_model, resolve_models
    from attendnext_keras.experiments.explore import evaluated_trials, evaluator_for, explore, finalists
    from attendnext_keras.models import AttendNeXt
    from attendnext_keras.specs import ModelSpec

    try:
        baselines = resolve_models(args.baselines) if args.baselines else []
    except ValueError as error:
        parser.error(str(error))
    out = pathlib.Path(os.path.relpath(args.out))  # relative: the model names the finalists' study records are paths
    out.mkdir(parents=True, exist_ok=True)
    _io.check_writable(out / "explore_bench.json")  # before an hour of training
    command = provenance.command_line(["benchmarks/bench_explore.py", *(sys.argv[1:] if argv is None else argv)])
    info = provenance.machine_info(command)
    started = time.time()
    search_dir = out / "explore"
    data = DataConfig(source=args.data)
    storage = f"sqlite:///{search_dir / 'study.db'}"
    config = ExploreConfig(storage=storage, objective=args.objective, base_variant="micro", input_sizes=(args.size,),
                           epochs=args.epochs, batch_size=args.batch_size, out_dir=str(search_dir), seed=args.seed,
                           timeout=args.timeout, threads=args.threads, max_partitions=1, finalists=args.finalists)
    protocol, sizes = None, ()
    if args.finalists:  # read and checked before the search; candidates must build where the finalists train
        study, recipe, protocol_data = finalists.load_protocol(args.protocol, data)
        protocol = (finalists.check_protocol(study, config), recipe, protocol_data)
        sizes = finalists.finalist_sizes(study, config)
    # One stored study per setting; --trials is its total: a rerun after an interruption trains only what is missing.
    study_name = f"bench-{args.objective}-{args.size}px" + "".join(f"-builds-{size}" for size in sizes)
    config = config.replace(study_name=study_name, builds_at=sizes,
                            trials=max(args.trials - evaluated_trials(study_name, storage), 0))
    result = explore(config, data=data)
    searched = time.time() - started
    if result.winner is None:
        raise SystemExit("The search found no feasible candidate; see " + str(search_dir / "results.md"))
    winner_name = f"explored (trial {result.winner.number})"
    winner_spec = ModelSpec.from_dict(result.winner.user_attrs["spec"])

    # The search's own evaluator settings, so that the baselines get the same budget, data halves and reference.
    evaluator = evaluator_for(config, data)
    metrics = {winner_name: dict(result.winner.user_attrs["metrics"])}
    builders = {winner_name: lambda: AttendNeXt(spec=winner_spec, input_shape=(args.size, args.size, 3),
                                                classes=evaluator.classes, classifier_activation=None)}
    for name in baselines:
        print(f"baseline {name}: training {args.epochs} epoch(s) at {args.size} px", file=sys.stderr, flush=True)
        builders[name] = functools.partial(build_model, name, args.size, evaluator.classes)
        # One folder per model and budget, so that a rerun continues exactly this evaluation and nothing else.
        folder = out / "explore_baselines" / f"{name}_{args.size}px_{args.epochs}ep_seed{args.seed}"
        metrics[name] = evaluator.evaluate(builders[name], str(folder), size=args.size, resume=True)

    _, _, test_ds = evaluator.datasets(args.size)
    blobs = {}
    for name, m in metrics.items():
        blobs[(name, "int8")] = litert.read_tflite(m["tflite_path"])
        if m.get("test_top1") is None:  # a trial stored before the test half existed: measure it now
            m["test_top1"] = float(litert.evaluate_tflite(blobs[(name, "int8")], test_ds)["top1"])
        blob, trained = _float32_blob(m["tflite_path"], builders[name])
        blobs[(name, "float32")] = blob
        m["float32_weights"] = "trained" if trained else "random"
        m["float32_top1_test"] = (float(litert.evaluate_tflite(blob, test_ds)["top1"]) if trained else None)
        m["float32_tflite_bytes"] = len(blob)
        m["float32_partitions"] = litert.delegation_report(blob)["partitions"]

    reference = "attendnext_micro" if "attendnext_micro" in metrics else REFERENCE
    if reference == REFERENCE:
        blobs[(REFERENCE, "int8")] = evaluator.reference_blob(args.size)
        blobs[(REFERENCE, "float32")] = to_tflite(
            AttendNeXt(spec=evaluator.reference.replace(input_size=args.size), input_shape=(args.size, args.size, 3),
                       classes=evaluator.classes, classifier_activation=None), "float32")
    print(f"timing {len(blobs)} models ({', '.join(FORMATS)}), {args.runs} runs each, interleaved", file=sys.stderr,
          flush=True)
    samples = litert.time_interleaved(blobs, num_threads=args.threads, runs=args.runs, seed=args.seed)
    stats = {key: litert.latency_stats(values) for key, values in samples.items()}
    rows = [_row(name, m, stats, reference) for name, m in metrics.items()]
    settings = {"data": args.data, "size": args.size, "epochs": args.epochs, "trials": args.trials,
                "objective": args.objective, "seed": args.seed, "threads": args.threads, "runs": args.runs,
                "baselines": baselines, "reference": reference,
                "selection_images": evaluator.select_source.num_examples,
                "test_images": evaluator.test_source.num_examples,
                "search_seconds": searched, "total_seconds": time.time() - started}
    spec_path = os.path.relpath(result.paths["spec"], out)  # relative, so the markdown reads the same anywhere
    record = {"settings": settings, "machine": info, "rows": rows, "winner_trial": result.winner.number,
              "winner_spec": winner_spec.to_dict(),
              "latency_ms": {f"{name} / {fmt}": {k: v for k, v in s.items() if k != "samples"}
                             for (name, fmt), s in stats.items()},
              "latency_ms_samples": {f"{name} / {fmt}": s["samples"] for (name, fmt), s in stats.items()}}
    paths = _write(out, record, reference, spec_path)  # the screening's results first: the finalists take hours
    if protocol:
        summary = finalists.run_finalists(result, config, *protocol, verbose=0)
        settings["finalists"] = _relative_paths(summary, out)
        settings["total_seconds"] = time.time() - started
        paths = _write(out, record, reference, spec_path)
    print(open(paths[0], encoding="utf-8").read())
    print(f"\nsearch {searched / 60:.1f} min, total {(time.time() - started) / 60:.1f} min; wrote "
          f"{', '.join(map(str, paths))}")


def _write(out, record, reference, spec_path) -> list:
    from attendnext_keras import _io, provenance

    record["machine"]["load_average_after"] = provenance.load_average()
    table = (_markdown(record["rows"], record["settings"], record["machine"], reference)
             + _finalists_section(record["settings"].get("finalists")))
    return [_io.write_atomic(out / "explore_bench.md", table + "\n\nWinner spec: `" + spec_path + "`\n"),
            _io.write_json(out / "explore_bench.json", record)]


def _relative_paths(summary, out):
    """The finalists' summary with its paths relative to `out`, so that the committed files read the same anywhere."""
    def rel(path):
        return os.path.relpath(path, out) if os.path.isabs(path) or os.path.exists(path) else path

    return {**summary, "chosen": rel(summary["chosen"]), "chosen_spec": rel(summary["chosen_spec"]),
            "models": {rel(name): row for name, row in summary["models"].items()}}


if __name__ == "__main__":
    main()

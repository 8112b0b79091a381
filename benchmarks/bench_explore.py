"""Design exploration on real photographs: what a constrained search finds against the hand-designed variants.

1. `attendnext_keras.explore.explore` on an image folder (default flowers160) at a small resolution: `--trials`
   candidates from the `micro` space, each trained for `--epochs` (the proxy budget), converted to int8 and timed
   beside the `micro` reference; the objective is NetScore (or `--objective pareto`). The study lives in
   `<out>/explore/study.db`: an interrupted run resumes where it stopped when started again.
2. The hand-designed AttendNeXt `micro` and `base` and keras.applications MobileNetV3-Small, trained with the same
   proxy budget, input size and seed, converted the same way.
3. Every int8 model (the winner and the baselines) timed again, interleaved in one LiteRT process, so the latencies
   compare as ratios.

    python benchmarks/bench_explore.py --data ../shared/data/flowers160 --size 64 --trials 12 --epochs 5

Sized for under an hour on 2 CPU cores: the command above took 29 min (search 21 min: 12 trained candidates, 2
rejected by the spec rules without training; baselines 8 min). `--timeout` stops the search from starting new trials (default 35
minutes); the three baselines then take the same proxy budget each. Writes
results/explore_bench.json and results/explore_bench.md; the search's own table, plots, best_spec.json and winner
report are in <out>/explore/.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import pathlib
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

BASELINES = ("attendnext_micro", "attendnext_base", "mobilenet_v3_small")
DISPLAY = {"attendnext_micro": "AttendNeXt micro (hand-designed)", "attendnext_base": "AttendNeXt base (hand-designed)",
           "mobilenet_v3_small": "MobileNetV3-Small (keras.applications)"}


def _row(name, metrics, latency, reference_ms):
    from attendnext_keras.explore import netscore_of

    return {"model": name, "display_name": DISPLAY.get(name, name), "params": metrics["params"],
            "macs": metrics["macs"], "top1": metrics["top1"], "float_top1": metrics.get("float_top1"),
            "tflite_bytes": metrics["tflite_bytes"], "arena_bytes": metrics.get("arena_bytes"),
            "partitions": metrics.get("partitions"), "latency_ms": latency, "ratio_to_micro": latency / reference_ms,
            "netscore": netscore_of(metrics)}


def _markdown(rows, settings):
    lines = [f"Proxy budget: {settings['epochs']} epoch(s) at {settings['size']} px on {settings['data']} "
             f"(seed {settings['seed']}); int8 post-training quantization; LiteRT + XNNPACK, {settings['threads']} "
             f"thread(s), {settings['runs']} interleaved runs per model, median.", "",
             "| model | params | MACs | int8 top-1 | float top-1 | int8 KiB | TFLM arena KiB | partitions | "
             "latency ms | × micro | NetScore |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        arena = "—" if r["arena_bytes"] is None else f"{r['arena_bytes'] / 1024:.1f}"
        fl = "—" if r["float_top1"] is None else f"{r['float_top1']:.1%}"
        lines.append(f"| {r['display_name']} | {r['params']:,} | {r['macs']:,} | {r['top1']:.1%} | {fl} | "
                     f"{r['tflite_bytes'] / 1024:.1f} | {arena} | {r['partitions']} | {r['latency_ms']:.3f} | "
                     f"{r['ratio_to_micro']:.2f} | {r['netscore']:.1f} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(HERE.parent.parent / "shared" / "data" / "flowers160"),
                        help="Image folder with train/ and val/ (default: ../shared/data/flowers160).")
    parser.add_argument("--size", type=int, default=64, help="Input size of every model (default: 64).")
    parser.add_argument("--trials", type=int, default=12, help="Candidates to train in the search (default: 12).")
    parser.add_argument("--epochs", type=int, default=5, help="Proxy training epochs of every model (default: 5).")
    parser.add_argument("--batch-size", type=int, default=32, help="Batch size (default: 32).")
    parser.add_argument("--objective", default="netscore", choices=("netscore", "pareto", "pareto-size"),
                        help="Search objective (default: netscore).")
    parser.add_argument("--timeout", type=float, default=2100,
                        help="Seconds after which the search starts no new trial (default: 2100).")
    parser.add_argument("--baselines", nargs="*", default=list(BASELINES),
                        help=f"Models trained with the same budget for comparison (default: {' '.join(BASELINES)}).")
    parser.add_argument("--runs", type=int, default=100, help="Interleaved timed runs per model at the end.")
    parser.add_argument("--threads", type=int, default=1, help="LiteRT threads (default: 1).")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the search, data and training.")
    parser.add_argument("--out", default=str(HERE / "results"), help="Output folder (default: benchmarks/results).")
    args = parser.parse_args(argv)

    import numpy as np

    from attendnext_keras.benchmark import build_model, machine_info, time_interleaved
    from attendnext_keras.explore import Evaluator, explore

    started = time.time()
    out = pathlib.Path(args.out)
    search_dir = out / "explore"
    result = explore(data=args.data, study_name=f"bench-{args.objective}-{args.size}px",
                     storage=f"sqlite:///{search_dir / 'study.db'}", n_trials=args.trials, objective=args.objective,
                     base_variant="micro", input_sizes=(args.size,), epochs=args.epochs, batch_size=args.batch_size,
                     out_dir=str(search_dir), seed=args.seed, timeout=args.timeout, threads=args.threads)
    searched = time.time() - started
    if result.winner is None:
        raise SystemExit("The search found no feasible candidate; see " + str(search_dir / "results.md"))
    winner = result.winner.user_attrs["metrics"]

    evaluator = Evaluator(args.data, epochs=args.epochs, batch_size=args.batch_size, seed=args.seed,
                          reference_dir=str(search_dir / "reference"), threads=args.threads)
    metrics = {f"explored (trial {result.winner.number})": winner}
    for name in args.baselines:
        print(f"baseline {name}: training {args.epochs} epoch(s) at {args.size} px", file=sys.stderr, flush=True)
        metrics[name] = evaluator.evaluate(functools.partial(build_model, name, args.size, evaluator.classes), str(out / "explore_baselines"
                                                                                              / name), size=args.size)

    blobs = {name: open(m["tflite_path"], "rb").read() for name, m in metrics.items()}
    blobs["reference micro (random weights)"] = evaluator.reference_blob(args.size)
    samples = time_interleaved(blobs, num_threads=args.threads, runs=args.runs, seed=args.seed)
    medians = {name: float(np.median(t)) for name, t in samples.items()}
    reference_ms = medians.get("attendnext_micro", medians["reference micro (random weights)"])
    rows = [_row(name, m, medians[name], reference_ms) for name, m in metrics.items()]
    settings = {"data": args.data, "size": args.size, "epochs": args.epochs, "trials": args.trials,
                "objective": args.objective, "seed": args.seed, "threads": args.threads, "runs": args.runs,
                "search_seconds": searched, "total_seconds": time.time() - started}
    table = _markdown(rows, settings)
    out.mkdir(parents=True, exist_ok=True)
    spec_path = os.path.relpath(result.paths["spec"], out)  # relative, so the markdown reads the same anywhere
    (out / "explore_bench.md").write_text(table + "\n\nWinner spec: `" + spec_path + "`\n",
                                          encoding="utf-8")
    with open(out / "explore_bench.json", "w", encoding="utf-8") as f:
        json.dump({"settings": settings, "machine": machine_info(), "rows": rows, "winner_trial": result.winner.number,
                   "winner_spec": result.winner_spec.to_dict(), "latency_ms_samples": {k: [round(x, 4) for x in v]
                                                                                         for k, v in samples.items()}},
                  f, indent=1)
    print(table)
    print(f"\nsearch {searched / 60:.1f} min, total {(time.time() - started) / 60:.1f} min; wrote "
          f"{out / 'explore_bench.md'} and {out / 'explore_bench.json'}")


if __name__ == "__main__":
    main()
